//! TLS for `wss://` URLs: the trusted roots, and a rustls `ClientConnection` driven over the
//! non-blocking socket (sans-IO: rustls does no I/O of its own).
//!
//! - **Reading** takes the plaintext rustls has decrypted; when there is none it reads TLS
//!   records from the socket (`read_tls`), decrypts them (`process_new_packets`) and tries
//!   again, until the socket says `WouldBlock` or the stream ends. What processing produced
//!   for the server (handshake messages, alerts) is written at once, as far as the socket
//!   takes it.
//! - **Writing** hands plaintext to rustls, which encrypts it into its own buffer, and writes
//!   that buffer (`write_tls`) until it is empty or the socket says `WouldBlock`. While records
//!   of an earlier write still wait, a write takes nothing and says `WouldBlock`, so frames
//!   wait in tungstenite's buffer (and the session's queue), not in rustls.
//!   Flushing the stream writes what rustls holds; tungstenite's flush does.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::Error;

/// The certificates in `pem` (every `CERTIFICATE` block; other blocks are skipped).
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Tls(format!("trusted roots: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Tls("trusted roots: no CERTIFICATE in the PEM".into()));
    }
    Ok(certs)
}

/// The certificates in the PEM file at `path`.
pub fn certs_from_pem_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = std::fs::read(path).map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
    certs_from_pem(&pem).map_err(|e| Error::Tls(format!("{}: {e}", path.display())))
}

/// The client's TLS settings: Mozilla's roots (`webpki-roots`) and `extra_roots`.
pub fn client_config(extra_roots: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for root in extra_roots {
        roots.add(root.clone()).map_err(|e| Error::Tls(format!("an extra root does not parse: {e}")))?;
    }
    // ring builds with a C compiler alone, as the server's does. rustls 0.23.48 deprecates
    // ring's provider only because it lacks post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(format!("TLS settings: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS client connection to `host` (the name its certificate must carry, or an IP address).
pub(crate) fn connect(config: Arc<ClientConfig>, host: &str) -> Result<ClientConnection, Error> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| Error::Url(format!("{host}: not a name for TLS: {e}")))?;
    ClientConnection::new(config, name).map_err(|e| Error::Tls(e.to_string()))
}

/// A TLS connection and the socket under it, borrowed for one read or write.
pub(crate) struct TlsLink<'a> {
    pub(crate) tls: &'a mut ClientConnection,
    pub(crate) tcp: &'a mut TcpStream,
}

impl TlsLink<'_> {
    /// Writes rustls' records until none is left (`Ok`) or the socket is full (`WouldBlock`).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn flush_now(&mut self) -> io::Result<()> {
        match self.flush() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    /// Reads plaintext (see the module's doc).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The TCP stream ended without a close_notify: the end of the stream.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(self.tcp) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // rustls queued an alert that says why; send it if the socket takes it.
                let _ = self.flush_now();
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")));
            }
            self.flush_now()?;
        }
    }

    /// Writes plaintext (see the module's doc).
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.flush()?;
        let n = self.tls.writer().write(buf)?;
        self.flush_now()?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }
}
