//! The server's TLS certificate and key: loaded from PEM files at start, and again on demand
//! (SIGHUP under `RunningServer::run_until_signal`, or `RunningServer::reload_tls`).
//!
//! The reactor takes the current [`ServerConfig`] for each connection it accepts; a reload
//! swaps it, so new connections use the new certificate while existing ones keep the
//! settings they started with (rustls holds its own `Arc` per connection). A reload that fails
//! keeps the old ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate files and the settings made from them.
#[derive(Debug)]
pub(crate) struct Certs {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<Arc<ServerConfig>>,
}

impl Certs {
    /// Loads the certificate chain from `cert` and the private key from `key` (both PEM).
    /// The error says which file and why.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Self, String> {
        let config = server_config(cert, key)?;
        Ok(Self { cert: cert.to_owned(), key: key.to_owned(), current: Mutex::new(Arc::new(config)) })
    }

    /// The settings for a new connection.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.current.lock().clone()
    }

    /// Loads the files again. On success new connections use them; on failure nothing
    /// changes, and the error says why.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.cert, &self.key)?;
        *self.current.lock() = Arc::new(config);
        Ok(())
    }
}

/// The rustls settings for the chain in `cert` and the key in `key`: TLS 1.2 and 1.3 with the
/// ring provider's safe defaults, ALPN `http/1.1` (a WebSocket upgrade is HTTP/1.1).
fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("--tls-cert {}: no CERTIFICATE in the file", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    // ring builds with a C compiler alone (aws-lc-rs needs more of the machine). rustls
    // 0.23.48 deprecates ring's provider only because it lacks post-quantum key exchange; its
    // X25519 and P-256 key exchange and its ciphers are rustls' own defaults otherwise.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("--tls-cert {} with --tls-key {}: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ticksock-certs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn self_signed() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn loads_a_certificate_and_key_and_names_the_flag_of_a_bad_file() {
        let dir = temp_dir("load");
        let (cert_pem, key_pem) = self_signed();
        let cert = write(&dir, "cert.pem", &cert_pem);
        let key = write(&dir, "key.pem", &key_pem);
        Certs::load(&cert, &key).expect("a good pair loads");

        let missing = dir.join("missing.pem");
        let err = Certs::load(&missing, &key).expect_err("no such file");
        assert!(err.starts_with("--tls-cert "), "{err}");
        let err = Certs::load(&cert, &missing).expect_err("no such file");
        assert!(err.starts_with("--tls-key "), "{err}");
        let err = Certs::load(&key, &key).expect_err("a key is not a certificate");
        assert!(err.contains("no CERTIFICATE"), "{err}");
        let (_, other_key) = self_signed();
        let other = write(&dir, "other-key.pem", &other_key);
        let err = Certs::load(&cert, &other).expect_err("a key that does not match");
        assert!(err.contains("--tls-key"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_reload_swaps_the_settings_and_a_failed_one_keeps_the_old() {
        let dir = temp_dir("reload");
        let (cert_pem, key_pem) = self_signed();
        let cert = write(&dir, "cert.pem", &cert_pem);
        let key = write(&dir, "key.pem", &key_pem);
        let certs = Certs::load(&cert, &key).expect("loads");
        let first = certs.current();

        let (cert_pem, key_pem) = self_signed();
        write(&dir, "cert.pem", &cert_pem);
        write(&dir, "key.pem", &key_pem);
        certs.reload().expect("reloads");
        let second = certs.current();
        assert!(!Arc::ptr_eq(&first, &second), "new connections get the new settings");

        write(&dir, "key.pem", "not a key");
        certs.reload().expect_err("a broken key fails the reload");
        assert!(Arc::ptr_eq(&second, &certs.current()), "and keeps the settings it had");
        std::fs::remove_dir_all(&dir).ok();
    }
}
