//! `wss://`: the client over TLS against the real server, with a CA made at test time and
//! trusted through `Config::trust_pem`; without that root the connection fails, at once.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{fast_config, pump_until, server_config, start_game};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use ticksock_client::{BlockingClient, Client, Config, Error, Event};

/// A test CA's PEM, and the server's certificate and key files it signed (for `localhost`
/// and 127.0.0.1), in a directory removed on drop.
struct Pki {
    dir: PathBuf,
    ca_pem: String,
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ticksock-client-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "ticksock client test CA");
        let ca_pem = ca_params.self_signed(&ca_key).expect("CA certificate").pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write cert");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key");
        Self { dir, ca_pem }
    }

    fn server(&self) -> ticksock_server::RunningServer {
        let config = ticksock_server::Config {
            tls_cert: Some(self.dir.join("cert.pem")),
            tls_key: Some(self.dir.join("key.pem")),
            ..server_config("127.0.0.1:0".parse().expect("addr"))
        };
        start_game(config).0
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_wss_round_trip_with_the_test_ca_trusted() {
    let pki = Pki::new("round-trip");
    let server = pki.server();
    let port = server.local_addr().port();
    let config = fast_config().trust_pem(pki.ca_pem.as_bytes()).expect("the test CA");
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("wss://{host}:{port}/");
        let mut client = BlockingClient::connect(&url, config.clone(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        for n in [1u32, 21, 1 << 20] {
            let doubled: u32 = client.call("double", &n).expect("a reply over TLS");
            assert_eq!(doubled, n * 2);
        }
        client.close();
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn without_the_root_the_connection_fails_at_once() {
    let pki = Pki::new("untrusted");
    let server = pki.server();
    let url = format!("wss://localhost:{}/", server.local_addr().port());
    let config = Config { max_attempts: Some(1), ..fast_config() };
    let started = Instant::now();
    let mut client = Client::new(&url, config).expect("client");
    pump_until(&mut client, Duration::from_secs(10), |e| matches!(e, Event::Stopped { .. }));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused by TLS, not by a timeout ({:?})",
        started.elapsed()
    );
    let why = client.last_error().map(ToString::to_string).unwrap_or_default();
    assert!(why.contains("UnknownIssuer"), "the certificate is what failed: {why}");
    server.shutdown().expect("clean shutdown");
}

#[test]
fn roots_that_do_not_parse_are_refused_when_given() {
    assert!(matches!(Config::default().trust_pem(b"no certificate here"), Err(Error::Tls(_))));
    let missing = std::env::temp_dir().join("ticksock-no-such-root.pem");
    assert!(matches!(Config::default().trust_pem_file(missing), Err(Error::Tls(_))));
}
