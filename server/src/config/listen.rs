//! The `--listen` value: `HOST:PORT`, `[IPv6]:PORT` or a bare `PORT`, read in two steps: what
//! the text names (pure), then, for a host name, one lookup at the edge.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

/// What a `--listen` value names, before any host name is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ListenSpec<'a> {
    /// An address given as numbers (`127.0.0.1:7777`, `[::1]:7777`), or a bare port.
    Addr(SocketAddr),
    /// A host name and a port (`localhost:7777`).
    Name {
        /// The name, as typed.
        host: &'a str,
        /// The port.
        port: u16,
    },
}

/// What the value should look like, for every error.
const EXPECTED: &str = "expected HOST:PORT, [IPv6]:PORT or a bare PORT (on 127.0.0.1)";

/// Reads what `text` names; no lookup.
fn classify(text: &str) -> Result<ListenSpec<'_>, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // A bare port means loopback, as the default does: a server reachable from other
        // machines is something to ask for by naming the address.
        let port = port_of(text)?;
        return Ok(ListenSpec::Addr(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(ListenSpec::Addr(addr));
    }
    if text.starts_with('[') {
        // Only an IPv6 address goes in brackets, and the parser above refused this one.
        return Err(format!("`{text}` is not [IPv6]:PORT: {EXPECTED}"));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("no port in `{text}`: {EXPECTED}"));
    };
    if host.is_empty() {
        return Err(format!("no host in `{text}`: {EXPECTED}"));
    }
    if host.contains(':') {
        return Err(format!("`{text}`: an IPv6 address goes in brackets, [ADDRESS]:PORT"));
    }
    Ok(ListenSpec::Name { host, port: port_of(port)? })
}

/// A port number, or an error that says what was wrong with it.
fn port_of(text: &str) -> Result<u16, String> {
    text.parse().map_err(|_| format!("`{text}` is not a port (0 to 65535): {EXPECTED}"))
}

/// The `--listen` value parser: the address `text` names; a host name is resolved here, once,
/// to the first address the system resolver returns (the one a client on the same machine
/// tries first).
pub(crate) fn parse(text: &str) -> Result<SocketAddr, String> {
    match classify(text)? {
        ListenSpec::Addr(addr) => Ok(addr),
        ListenSpec::Name { host, port } => (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
            .next()
            .ok_or_else(|| format!("`{host}` resolves to no address")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a literal test address")
    }

    #[test]
    fn numeric_addresses_are_taken_as_they_are() {
        assert_eq!(classify("0.0.0.0:80"), Ok(ListenSpec::Addr(addr("0.0.0.0:80"))));
        assert_eq!(classify("[::1]:7777"), Ok(ListenSpec::Addr(addr("[::1]:7777"))));
        assert_eq!(classify("[::]:0"), Ok(ListenSpec::Addr(addr("[::]:0"))));
    }

    #[test]
    fn a_bare_port_is_on_loopback() {
        assert_eq!(classify("7777"), Ok(ListenSpec::Addr(addr("127.0.0.1:7777"))));
        assert_eq!(classify("0"), Ok(ListenSpec::Addr(addr("127.0.0.1:0"))));
        assert_eq!(parse("65535"), Ok(addr("127.0.0.1:65535")));
    }

    #[test]
    fn a_name_and_port_is_left_to_the_resolver() {
        assert_eq!(classify("localhost:7777"), Ok(ListenSpec::Name { host: "localhost", port: 7777 }));
        assert_eq!(classify("game.example:1"), Ok(ListenSpec::Name { host: "game.example", port: 1 }));
    }

    #[test]
    fn localhost_resolves_to_a_loopback_address() {
        let resolved = parse("localhost:7777").expect("localhost resolves");
        assert!(resolved.ip().is_loopback(), "{resolved}");
        assert_eq!(resolved.port(), 7777);
    }

    #[test]
    fn malformed_values_say_what_is_wrong() {
        for (text, says) in [
            ("", "no port in ``"),
            ("localhost", "no port in `localhost`"),
            ("[::1]", "`[::1]` is not [IPv6]:PORT"),
            (":7777", "no host in `:7777`"),
            ("65536", "`65536` is not a port"),
            ("localhost:", "`` is not a port"),
            ("localhost:http", "`http` is not a port"),
            ("1.2.3.4:99999", "`99999` is not a port"),
            ("::1:7777", "goes in brackets"),
            ("[::1:7777", "`[::1:7777` is not [IPv6]:PORT"),
            ("[localhost]:7777", "is not [IPv6]:PORT"),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.contains(says), "{text:?}: {error}");
        }
    }
}
