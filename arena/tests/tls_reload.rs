//! The binary with `--tls-cert` and `--tls-key`: it says `wss://` where it listens, and on
//! SIGHUP it loads the files again, so that new connections get the new certificate.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A new CA and a certificate it signs for `localhost`, written over `dir`'s cert.pem and
/// key.pem; returns the CA's certificate.
fn issue(dir: &Path) -> CertificateDer<'static> {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "ticksock reload test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate").der().clone();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let cert = params.signed_by(&key, &issuer).expect("certificate");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key");
    ca
}

/// Whether a TLS handshake with the server at `addr` succeeds trusting only `ca`.
fn trusted_by(addr: SocketAddr, ca: &CertificateDer<'static>) -> bool {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("the CA");
    #[allow(deprecated)] // ring, as the server uses.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let conn = ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut tls = StreamOwned::new(conn, tcp);
    loop {
        match tls.conn.complete_io(&mut tls.sock) {
            Ok(_) if tls.conn.is_handshaking() => continue,
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections() {
    let dir = std::env::temp_dir().join(format!("ticksock-arena-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let first = issue(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ticksock-arena"))
        .args(["--listen", "127.0.0.1:0", "--shutdown-timeout-secs", "5", "--tls-cert"])
        .arg(dir.join("cert.pem"))
        // Its database in the target dir, not the source tree (the default is the working dir).
        .args(["--db", concat!(env!("CARGO_TARGET_TMPDIR"), "/tls_reload.db")])
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    // The log, line by line: the reloads say there whether they worked.
    let stderr = child.stderr.take().expect("piped stderr");
    let (log_tx, log) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let logged = |wanted: &str| loop {
        match log.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains(wanted) => return line,
            Ok(_) => {}
            Err(e) => panic!("no log line with {wanted:?}: {e}"),
        }
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("the server prints where it listens");
    let addr: SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("wss://"))
        .and_then(|w| w.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no wss:// address in {line:?}"));
    assert!(line.contains("https://"), "the page is on https: {line}");
    assert!(trusted_by(addr, &first), "the first certificate is served");

    let second = issue(&dir);
    let status = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    // The reload runs on the server's signal thread, which logs when it is done.
    logged("reloaded the TLS certificate");
    assert!(trusted_by(addr, &second), "new connections get the new certificate");
    assert!(!trusted_by(addr, &first), "the old certificate is no longer served");

    // A reload that fails keeps the certificate in use, and the process.
    std::fs::write(dir.join("key.pem"), "not a key").expect("break the key");
    let status = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let why = logged("SIGHUP");
    assert!(why.contains("--tls-key") && why.contains("keeping"), "{why}");
    assert!(child.try_wait().expect("wait").is_none(), "a failed reload does not stop the server");
    assert!(trusted_by(addr, &second), "and keeps the certificate in use");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    assert!(child.wait().expect("exits").success());
    std::fs::remove_dir_all(&dir).ok();
}
