//! TLS (`--tls-cert`, `--tls-key`): a wss round trip through the reactor, a plain client
//! refused cleanly, slow TLS handshakes closed at the handshake deadline, bad files refused at
//! start, and a reload that new connections see. The certificates are made here, at test
//! time, by a throwaway CA: no key is committed.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use ticksock_server::{Config, Echo, Error, Server};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

/// A CA and a server certificate for `localhost` and 127.0.0.1, written as PEM files.
struct Pki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ticksock-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut pki = Self {
            dir: dir.clone(),
            ca: CertificateDer::from(Vec::new()),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        pki.issue();
        pki
    }

    /// A new CA, and a server certificate it signs, over the files.
    fn issue(&mut self) {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "ticksock test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        std::fs::write(&self.cert, cert.pem()).expect("write cert");
        std::fs::write(&self.key, key.serialize_pem()).expect("write key");
        self.ca = ca_cert.der().clone();
    }

    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("the test CA");
        #[allow(deprecated)] // ring, as the server uses (see server/src/net/certs.rs).
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(pki: &Pki) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        tls_cert: Some(pki.cert.clone()),
        tls_key: Some(pki.key.clone()),
        close_timeout: Duration::from_millis(300),
        ..Config::echo()
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A blocking TLS connection to `addr` trusting `client`, its handshake done.
fn tls_connect(addr: SocketAddr, client: Arc<ClientConfig>) -> Result<Tls, io::Error> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::try_from("localhost").expect("a name");
    let conn = ClientConnection::new(client, name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// How long after `start` the server closes a socket that sends nothing more: reads until
/// end of stream (or a reset), at most 10 s.
fn closed_after(mut tcp: TcpStream, start: Instant) -> Duration {
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
                panic!("still open after {:?}", start.elapsed())
            }
            Err(_) => return start.elapsed(),
        }
    }
}

#[test]
fn a_wss_round_trip_through_the_reactor() {
    let pki = Pki::new("round-trip");
    let server = Server::start(config(&pki), Echo).expect("server starts");
    let addr = server.local_addr();
    let tls = tls_connect(addr, pki.client_config()).expect("TLS handshake");
    let request = format!("wss://localhost:{}/", addr.port()).into_client_request().expect("request");
    let (mut ws, response) = tungstenite::client::client(request, tls).expect("upgrade over TLS");
    assert_eq!(response.status(), 101);
    // Small, and large enough to span many TLS records and socket writes.
    let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    for message in
        [Message::Text("héllo".into()), Message::Binary(big.into()), Message::Binary(vec![1].into())]
    {
        ws.send(message.clone()).expect("send");
        assert_eq!(ws.read().expect("echo"), message);
    }
    ws.close(None).expect("close");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn the_page_is_served_over_https_too() {
    let pki = Pki::new("https");
    let server = Server::start(config(&pki), Echo).expect("server starts");
    let mut tls = tls_connect(server.local_addr(), pki.client_config()).expect("TLS handshake");
    tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("request");
    let mut answer = Vec::new();
    // The server closes after its answer; without a close_notify rustls says UnexpectedEof.
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_plain_ws_client_against_a_tls_server_fails_at_once() {
    let pki = Pki::new("plain-client");
    let config = Config { handshake_timeout: Duration::from_secs(30), ..config(&pki) };
    let server = Server::start(config, Echo).expect("server starts");
    let started = Instant::now();
    let tcp = TcpStream::connect(server.local_addr()).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let request = format!("ws://{}/", server.local_addr()).into_client_request().expect("request");
    let err = tungstenite::client::client(request, tcp).expect_err("no WebSocket without TLS");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once, not at a deadline ({:?}): {err}",
        started.elapsed()
    );
    // And the server goes on serving TLS clients.
    tls_connect(server.local_addr(), pki.client_config()).expect("a TLS client still gets in");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_silent_or_dribbling_tls_handshake_is_closed_at_the_deadline() {
    let pki = Pki::new("slow");
    let deadline = Duration::from_millis(400);
    let config = Config { handshake_timeout: deadline, ..config(&pki) };
    let server = Server::start(config, Echo).expect("server starts");
    let addr = server.local_addr();

    // TCP open, nothing sent.
    let silent = (TcpStream::connect(addr).expect("connect"), Instant::now());

    // The first bytes of a real ClientHello, then nothing more.
    let name = ServerName::try_from("localhost").expect("a name");
    let mut hello = Vec::new();
    ClientConnection::new(pki.client_config(), name)
        .expect("client")
        .write_tls(&mut hello)
        .expect("a ClientHello");
    let mut dribbling = (TcpStream::connect(addr).expect("connect"), Instant::now());
    dribbling.0.write_all(&hello[..hello.len() / 2]).expect("half a ClientHello");

    for (what, (tcp, connected)) in [("silent", silent), ("dribbling", dribbling)] {
        let waited = closed_after(tcp, connected);
        assert!(waited >= deadline / 2, "{what}: closed before the deadline ({waited:?})");
        assert!(waited < deadline * 5, "{what}: closed at the deadline, not later ({waited:?})");
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_tls_handshake_over_the_byte_limit_is_dropped() {
    let pki = Pki::new("big-hello");
    let config =
        Config { max_handshake_bytes: 1024, handshake_timeout: Duration::from_secs(30), ..config(&pki) };
    let server = Server::start(config, Echo).expect("server starts");
    let mut tcp = TcpStream::connect(server.local_addr()).expect("connect");
    // A handshake record header announcing 16 KiB, then that much filler: past 1 KiB the
    // server stops waiting for the rest.
    let mut record = vec![0x16, 0x03, 0x01, 0x40, 0x00];
    record.extend(std::iter::repeat_n(0u8, 4096));
    let start = Instant::now();
    let _ = tcp.write_all(&record);
    let waited = closed_after(tcp, start);
    assert!(waited < Duration::from_secs(5), "dropped for its size, not the deadline ({waited:?})");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn files_that_do_not_load_stop_the_start_with_the_flag_named() {
    let pki = Pki::new("bad-files");
    let missing = Config { tls_key: Some(pki.dir.join("missing.pem")), ..config(&pki) };
    match Server::start(missing, Echo) {
        Err(Error::Tls(why)) => assert!(why.starts_with("--tls-key "), "{why}"),
        other => panic!("expected a TLS error, got {:?}", other.err()),
    }
    let only_cert = Config { tls_key: None, ..config(&pki) };
    match Server::start(only_cert, Echo) {
        Err(Error::Config(why)) => assert!(why.contains("--tls-key"), "{why}"),
        other => panic!("expected a config error, got {:?}", other.err()),
    }
}

/// The certificate the server presents to a new connection.
fn presented(addr: SocketAddr, pki: &Pki) -> Result<CertificateDer<'static>, io::Error> {
    let tls = tls_connect(addr, pki.client_config())?;
    let chain = tls.conn.peer_certificates().expect("a certificate");
    Ok(chain[0].clone().into_owned())
}

fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read")
}

#[test]
fn a_reload_serves_new_connections_the_new_certificate_and_a_bad_one_keeps_the_old() {
    let mut pki = Pki::new("reload");
    let server = Server::start(config(&pki), Echo).expect("server starts");
    let addr = server.local_addr();
    let first = presented(addr, &pki).expect("the first certificate");
    let old_ca = pki.client_config();
    // An open connection keeps its session through the reload.
    let open = tls_connect(addr, pki.client_config()).expect("open before the reload");

    pki.issue();
    let new_cert = read_file(&pki.cert);
    server.reload_tls().expect("reloads");
    let second = presented(addr, &pki).expect("a new connection trusts the new CA");
    assert_ne!(first, second);
    let name = ServerName::try_from("localhost").expect("name");
    let mut stale = StreamOwned::new(
        ClientConnection::new(old_ca, name).expect("client"),
        TcpStream::connect(addr).expect("connect"),
    );
    stale.sock.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let refused = loop {
        match stale.conn.complete_io(&mut stale.sock) {
            Ok(_) if stale.conn.is_handshaking() => continue,
            other => break other,
        }
    };
    assert!(refused.is_err(), "the old CA no longer verifies what new connections get");
    drop(open);

    std::fs::write(&pki.key, "not a key").expect("break the key");
    assert!(matches!(server.reload_tls(), Err(Error::Tls(_))));
    std::fs::write(&pki.cert, new_cert).expect("restore");
    assert_eq!(presented(addr, &pki).expect("still served"), second, "a failed reload keeps the old one");
    server.shutdown().expect("clean shutdown");
}
