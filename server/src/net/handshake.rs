//! The HTTP side of a connection, before it speaks WebSocket: a pure function from the bytes
//! received so far to a decision. The reactor feeds it bytes as they arrive and writes
//! whatever response it returns.
//!
//! A partial request is a normal state ([`Decision::NeedMore`]), not an error.
//!
//! Over 400 lines because more than half of it is the tests: one per kind of HTTP answer,
//! `HEAD` variants included, each checked byte for byte.

use ticksock_protocol::{Encoding, Version};
use tungstenite::handshake::derive_accept_key;

use crate::StaticFiles;
use crate::bridge::Credentials;
use crate::config::AllowedOrigins;

/// The subprotocols of the game server, in its order of preference (PROTOCOL.md 11.1): binary
/// first, the fast path, and of each encoding the newer version first.
pub const GAME_SUBPROTOCOLS: &[(&str, Version, Encoding)] = &[
    (ticksock_protocol::SUBPROTOCOL_V2, Version::V2, Encoding::Binary),
    (ticksock_protocol::SUBPROTOCOL, Version::V1, Encoding::Binary),
    (ticksock_protocol::SUBPROTOCOL_V2_JSON, Version::V2, Encoding::Json),
    (ticksock_protocol::SUBPROTOCOL_JSON, Version::V1, Encoding::Json),
];

/// The bodies of the server's HTTP refusals, all in one place: `docs/PROTOCOL.md` section 10
/// gives each with its status line and headers, and `server/tests/protocol_doc.rs` checks that
/// table against [`ALL`](refusal::ALL). Each is plain text (`text/plain; charset=utf-8`) ending
/// with a line feed.
pub mod refusal {
    /// Declares each body as a constant, and [`ALL`] listing them all with their statuses, so
    /// that no body can be left out of the list the protocol document is checked against.
    macro_rules! bodies {
        ($($(#[$doc:meta])* $name:ident = ($status:literal, $text:literal);)*) => {
            $($(#[$doc])* pub const $name: &str = $text;)*

            /// Every body above with the status it is sent with, in the order of the document.
            pub const ALL: &[(u16, &str)] = &[$(($status, $name)),*];
        };
    }

    bodies! {
        /// 400: the request does not parse as HTTP/1.x.
        MALFORMED = (400, "malformed HTTP request\n");
        /// 431: a request with more headers than the server reads (32).
        TOO_MANY_HEADERS = (431, "too many headers\n");
        /// 431: a request head over the handshake limit.
        TOO_LARGE = (431, "request too large\n");
        /// 400: an upgrade (`Upgrade: websocket`) by a method other than `GET`, or not HTTP/1.1.
        UPGRADE_NOT_GET = (400, "a WebSocket upgrade must be an HTTP/1.1 GET\n");
        /// 400: an upgrade without the `upgrade` token in `Connection`.
        NO_CONNECTION_UPGRADE = (400, "missing `Connection: upgrade`\n");
        /// 426, with `Sec-WebSocket-Version: 13`: an upgrade for another WebSocket version.
        VERSION = (426, "only WebSocket version 13 is supported\n");
        /// 400: an upgrade without `Sec-WebSocket-Key`.
        NO_KEY = (400, "missing Sec-WebSocket-Key\n");
        /// 403: an upgrade whose `Origin` the server does not allow
        /// ([`AllowedOrigins`](crate::config::AllowedOrigins)).
        FORBIDDEN_ORIGIN = (403, "WebSocket upgrades from this Origin are not allowed\n");
        /// 400: an upgrade offering none of [`GAME_SUBPROTOCOLS`](super::GAME_SUBPROTOCOLS),
        /// which it names (a unit test checks that it names each).
        NO_SUBPROTOCOL = (
            400,
            "this server speaks the WebSocket subprotocols ticksock.v2, ticksock.v1, ticksock.v2.json, ticksock.v1.json; offer one in Sec-WebSocket-Protocol\n"
        );
        /// 503, with `Retry-After: 5`: the server is at its connection limit.
        FULL = (503, "server is at its connection limit\n");
        /// 404: a plain `GET` or `HEAD` of a path the server does not serve.
        NOT_FOUND = (404, "not found\n");
        /// 405, with `Allow: GET, HEAD`: a plain request by another method.
        METHOD_NOT_ALLOWED = (405, "method not allowed\n");
    }
}

/// How the server answers upgrades.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The subprotocols the server speaks, in its order of preference when a client offers
    /// several; empty accepts clients that offer none, and picks none (echo mode).
    pub subprotocols: &'static [(&'static str, Version, Encoding)],
    /// Requests larger than this are refused with `431`.
    pub max_bytes: usize,
    /// What a plain `GET` is answered with.
    pub static_files: StaticFiles,
    /// The pages whose upgrades are accepted; others are refused with `403`.
    pub allowed_origins: AllowedOrigins,
}

impl Policy {
    /// The policy `config` implies: every game subprotocol, or none in echo mode.
    pub fn of(config: &crate::Config) -> Self {
        Self {
            subprotocols: if config.echo { &[] } else { GAME_SUBPROTOCOLS },
            max_bytes: config.max_handshake_bytes,
            static_files: config.static_files.clone(),
            allowed_origins: config.allowed_origins.clone(),
        }
    }
}

/// What to do with the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request is not complete yet: read more.
    NeedMore,
    /// Write `response`, then speak WebSocket. `leftover` holds bytes that followed the
    /// request (the client's first frames, if it did not wait).
    Upgrade {
        /// The `101 Switching Protocols` response.
        response: Vec<u8>,
        /// Bytes received after the request's end.
        leftover: Vec<u8>,
        /// The encoding the chosen subprotocol selects.
        encoding: Encoding,
        /// The protocol version it selects.
        version: Version,
        /// The ticket and the token the request offered (PROTOCOL.md 12.3, 13.1), as sent,
        /// and whether it asked for tick-stamped replies (`?ticks=1`, 4.3).
        credentials: Option<Box<Credentials>>,
    },
    /// A plain `GET /metrics`: answer with the server's metrics, then close.
    Metrics,
    /// A `GET` of a static file: write `head`, then `body` (shared with every other response
    /// sending the same file, never copied), then close.
    File {
        /// The status line and headers.
        head: Vec<u8>,
        /// The file.
        body: bytes::Bytes,
    },
    /// Write `response`, then close: a refused upgrade or a plain HTTP request.
    Respond {
        /// A complete HTTP response with `Connection: close`.
        response: Vec<u8>,
    },
}

/// Decides what to do with `received`, the bytes read so far on a new connection.
///
/// Every answer to a `HEAD` request, refusals included, leaves its body out and keeps its
/// status and headers, `Content-Length` included (`HEAD /metrics` has none: see
/// `docs/PROTOCOL.md` section 10).
pub fn decide(received: &[u8], policy: &Policy) -> Decision {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(received);
    // httparse keeps the method once it has read it, even when the rest is partial or bad.
    let head = request.method == Some("HEAD");
    let refuse = |status, reason, body: &str| refuse(head, status, reason, body);
    let end = match parsed {
        Ok(httparse::Status::Complete(end)) => end,
        Ok(httparse::Status::Partial) if received.len() > policy.max_bytes => {
            return refuse(431, "Request Header Fields Too Large", refusal::TOO_LARGE);
        }
        Ok(httparse::Status::Partial) => return NeedMore,
        Err(httparse::Error::TooManyHeaders) => {
            return refuse(431, "Request Header Fields Too Large", refusal::TOO_MANY_HEADERS);
        }
        Err(_) => return refuse(400, "Bad Request", refusal::MALFORMED),
    };
    if end > policy.max_bytes {
        return refuse(431, "Request Header Fields Too Large", refusal::TOO_LARGE);
    }
    let headers: &[httparse::Header<'_>] = request.headers;
    let header = |name: &'static str| header_values(headers, name);
    let has_token = |name: &'static str, token: &str| {
        header(name).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    };

    if !has_token("Upgrade", "websocket") {
        return plain_http(request.method, request.path, &policy.static_files);
    }
    if request.method != Some("GET") || request.version != Some(1) {
        return refuse(400, "Bad Request", refusal::UPGRADE_NOT_GET);
    }
    if !has_token("Connection", "upgrade") {
        return refuse(400, "Bad Request", refusal::NO_CONNECTION_UPGRADE);
    }
    if !header("Sec-WebSocket-Version").any(|v| v.trim() == "13") {
        return Respond {
            response: response(
                head,
                426,
                "Upgrade Required",
                &[("Content-Type", TEXT), ("Sec-WebSocket-Version", "13")],
                refusal::VERSION,
            ),
        };
    }
    let Some(key) = header("Sec-WebSocket-Key").next().map(str::trim) else {
        return refuse(400, "Bad Request", refusal::NO_KEY);
    };
    if !origin_allowed(headers, &policy.allowed_origins) {
        return refuse(403, "Forbidden", refusal::FORBIDDEN_ORIGIN);
    }
    let chosen = if policy.subprotocols.is_empty() {
        None
    } else {
        match policy.subprotocols.iter().find(|(name, ..)| has_token("Sec-WebSocket-Protocol", name)) {
            Some(&chosen) => Some(chosen),
            None => return refuse(400, "Bad Request", refusal::NO_SUBPROTOCOL),
        }
    };

    let accept = derive_accept_key(key.as_bytes());
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some((name, ..)) = chosen {
        response.push_str("Sec-WebSocket-Protocol: ");
        response.push_str(name);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");
    let (version, encoding) = chosen.map_or((Version::V1, Encoding::Binary), |(_, v, e)| (v, e));
    let query = |name| request.path.and_then(|path| query_parameter(path, name));
    let bearer =
        header("Authorization").find_map(|v| v.trim().strip_prefix("Bearer ")).map(|t| Box::from(t.trim()));
    let credentials = Credentials {
        ticket: query("ticket"),
        token: bearer.or_else(|| query("token")),
        tick_stamps: query(ticksock_protocol::QUERY_TICKS).is_some_and(|v| &*v == "1"),
    };
    let credentials = (credentials != Credentials::default()).then(|| Box::new(credentials));
    Upgrade {
        response: response.into_bytes(),
        leftover: received[end..].to_vec(),
        encoding,
        version,
        credentials,
    }
}

/// The value of query parameter `name` in a request target, if it has one.
fn query_parameter(path: &str, name: &str) -> Option<Box<str>> {
    let (_, query) = path.split_once('?')?;
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')).map(Box::from)
}

use Decision::{NeedMore, Respond, Upgrade};

/// Whether `allowed` lets the request with `headers` open a WebSocket: its `Origin` against
/// its `Host`. A browser sends one `Origin`; a request with several must have each allowed,
/// and one that is not text is not allowed (it is not left out, which would allow it).
fn origin_allowed(headers: &[httparse::Header<'_>], allowed: &AllowedOrigins) -> bool {
    let host = header_values(headers, "Host").next();
    let mut origins = headers.iter().filter(|h| h.name.eq_ignore_ascii_case("Origin")).peekable();
    if origins.peek().is_none() {
        return allowed.allows(None, host);
    }
    origins.all(|h| std::str::from_utf8(h.value).is_ok_and(|origin| allowed.allows(Some(origin), host)))
}

fn header_values<'h>(
    headers: &'h [httparse::Header<'h>],
    name: &'static str,
) -> impl Iterator<Item = &'h str> {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
}

/// The answer to a plain HTTP request (one that is not an upgrade). The query string, if
/// any, is ignored on every path.
fn plain_http(method: Option<&str>, path: Option<&str>, static_files: &StaticFiles) -> Decision {
    let path = path.map(|p| p.split('?').next().unwrap_or(p));
    match (method, path) {
        (Some("GET"), Some("/metrics")) => Decision::Metrics,
        // The metrics are rendered by the reactor, not here, so their length is not known:
        // the headers of `GET /metrics` without `Content-Length` (optional for `HEAD`).
        (Some("HEAD"), Some("/metrics")) => {
            Respond { response: header(200, "OK", &[("Content-Type", METRICS_CONTENT_TYPE)], None) }
        }
        (Some(method @ ("GET" | "HEAD")), Some(path)) => match static_files.get_shared(path) {
            Some((body, content_type)) => {
                let head = header(200, "OK", &[("Content-Type", content_type)], Some(body.len()));
                if method == "GET" { Decision::File { head, body } } else { Respond { response: head } }
            }
            None => refuse(method == "HEAD", 404, "Not Found", refusal::NOT_FOUND),
        },
        _ => Respond {
            response: response(
                false,
                405,
                "Method Not Allowed",
                &[("Content-Type", TEXT), ("Allow", "GET, HEAD")],
                refusal::METHOD_NOT_ALLOWED,
            ),
        },
    }
}

/// The answer to a connection that arrives while the server is full.
pub fn service_unavailable() -> Vec<u8> {
    service_unavailable_to(b"")
}

/// The answer to `received`, a request that arrives while the server is full: as
/// [`service_unavailable`], without the body if the request is a `HEAD`.
pub fn service_unavailable_to(received: &[u8]) -> Vec<u8> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let _ = request.parse(received);
    let head = request.method == Some("HEAD");
    response(head, 503, "Service Unavailable", &[("Content-Type", TEXT), ("Retry-After", "5")], refusal::FULL)
}

const TEXT: &str = "text/plain; charset=utf-8";
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A plain-text refusal; `head` leaves the body out.
fn refuse(head: bool, status: u16, reason: &str, body: &str) -> Decision {
    Respond { response: response(head, status, reason, &[("Content-Type", TEXT)], body) }
}

/// The answer to `GET /metrics`.
pub fn metrics_response(text: &str) -> Vec<u8> {
    response(false, 200, "OK", &[("Content-Type", METRICS_CONTENT_TYPE)], text)
}

/// A complete response; `head` leaves the body out but keeps its `Content-Length`.
fn response(head: bool, status: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = header(status, reason, headers, Some(body.len()));
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

fn header(status: u16, reason: &str, headers: &[(&str, &str)], content_length: Option<usize>) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    if let Some(length) = content_length {
        out.push_str(&format!("Content-Length: {length}\r\n"));
    }
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &[crate::StaticFile] =
        &[crate::StaticFile { path: "/index.html", content_type: "text/html", body: b"<p>a game</p>" }];
    const GAME: Policy = Policy {
        subprotocols: GAME_SUBPROTOCOLS,
        max_bytes: 8192,
        static_files: StaticFiles::embedded(PAGE),
        allowed_origins: AllowedOrigins::same_host(),
    };
    const ECHO: Policy = Policy {
        subprotocols: &[],
        max_bytes: 8192,
        static_files: StaticFiles::none(),
        allowed_origins: AllowedOrigins::any(),
    };

    fn upgrade(protocol: Option<&str>) -> String {
        let mut r = String::from(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        );
        if let Some(p) = protocol {
            r.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
        }
        r.push_str("\r\n");
        r
    }

    fn status(decision: &Decision) -> u16 {
        let bytes = match decision {
            Upgrade { response, .. } | Respond { response } | Decision::File { head: response, .. } => {
                response
            }
            NeedMore => return 0,
            Decision::Metrics => return 1,
        };
        let text = String::from_utf8_lossy(bytes);
        text[9..12].parse().expect("status code")
    }

    #[test]
    fn accepts_the_offered_subprotocol_with_the_rfc_accept_key() {
        let d = decide(upgrade(Some("chat, ticksock.v1")).as_bytes(), &GAME);
        let Upgrade { response, leftover, encoding, version, .. } = d else {
            panic!("expected upgrade, got {d:?}")
        };
        assert_eq!((version, encoding), (Version::V1, Encoding::Binary));
        let text = String::from_utf8(response).expect("ascii");
        // The example key and accept value of RFC 6455 section 1.3.
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{text}");
        assert!(text.contains("Sec-WebSocket-Protocol: ticksock.v1\r\n"), "{text}");
        assert!(leftover.is_empty());
    }

    #[test]
    fn the_server_prefers_binary_then_the_newer_version() {
        let chosen = |offered: &str| match decide(upgrade(Some(offered)).as_bytes(), &GAME) {
            Upgrade { version, encoding, .. } => (version, encoding),
            d => panic!("expected upgrade, got {d:?}"),
        };
        let all = "ticksock.v1.json, ticksock.v2.json, ticksock.v1, ticksock.v2";
        assert_eq!(chosen(all), (Version::V2, Encoding::Binary));
        assert_eq!(chosen("ticksock.v1.json, ticksock.v1"), (Version::V1, Encoding::Binary));
        assert_eq!(chosen("ticksock.v1.json, ticksock.v2.json"), (Version::V2, Encoding::Json));
        assert_eq!(chosen("ticksock.v1.json"), (Version::V1, Encoding::Json));
    }

    #[test]
    fn the_json_subprotocol_selects_json() {
        let Upgrade { response, encoding, .. } = decide(upgrade(Some("ticksock.v1.json")).as_bytes(), &GAME)
        else {
            panic!("expected upgrade")
        };
        assert_eq!(encoding, Encoding::Json);
        assert!(String::from_utf8_lossy(&response).contains("Sec-WebSocket-Protocol: ticksock.v1.json\r\n"));
    }

    #[test]
    fn refuses_a_client_without_the_subprotocol_with_a_clear_400() {
        for offered in [None, Some("chat")] {
            let d = decide(upgrade(offered).as_bytes(), &GAME);
            assert_eq!(status(&d), 400);
            let Respond { response } = d else { panic!("expected a refusal") };
            assert!(response.ends_with(refusal::NO_SUBPROTOCOL.as_bytes()));
        }
        // The body is a constant: it must name every subprotocol the game server speaks.
        let named = refusal::NO_SUBPROTOCOL.split_once("subprotocols ").and_then(|(_, r)| r.split_once(';'));
        let named: Vec<&str> = named.expect("a list of names").0.split(", ").collect();
        let spoken: Vec<&str> = GAME_SUBPROTOCOLS.iter().map(|(name, ..)| *name).collect();
        assert_eq!(named, spoken);
    }

    #[test]
    fn echo_mode_accepts_no_subprotocol_and_names_none() {
        let Upgrade { response, .. } = decide(upgrade(None).as_bytes(), &ECHO) else {
            panic!("expected upgrade")
        };
        assert!(!String::from_utf8_lossy(&response).contains("Sec-WebSocket-Protocol"));
    }

    #[test]
    fn a_partial_request_needs_more_and_bytes_after_it_are_kept() {
        let full = upgrade(Some("ticksock.v1"));
        assert_eq!(decide(&full.as_bytes()[..full.len() - 2], &GAME), NeedMore);
        let mut with_frame = full.into_bytes();
        with_frame.extend_from_slice(&[0x82, 0x80]);
        let Upgrade { leftover, .. } = decide(&with_frame, &GAME) else { panic!("upgrade") };
        assert_eq!(leftover, [0x82, 0x80]);
    }

    #[test]
    fn oversized_and_malformed_requests_are_refused() {
        let policy = Policy { max_bytes: 64, ..GAME };
        let mut big = upgrade(Some("ticksock.v1"));
        big.insert_str(16, &format!("X-Pad: {}\r\n", "a".repeat(100)));
        assert_eq!(status(&decide(big.as_bytes(), &policy)), 431);
        // Incomplete and already over the limit: refused without waiting for the rest.
        assert_eq!(status(&decide(&[b'G'; 65], &policy)), 431);
        assert_eq!(status(&decide(b"GET / HTTP/1.1\r\nHost: x\r\n", &policy)), 0);
        assert_eq!(status(&decide(b"\x00\x01garbage\r\n\r\n", &GAME)), 400);
    }

    #[test]
    fn wrong_version_gets_426() {
        let r = upgrade(Some("ticksock.v1")).replace("Version: 13", "Version: 8");
        assert_eq!(status(&decide(r.as_bytes(), &GAME)), 426);
    }

    #[test]
    fn plain_http_gets_a_small_answer() {
        assert_eq!(status(&decide(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &GAME)), 200);
        let Decision::File { head, body } = decide(b"GET /?v=1 HTTP/1.1\r\n\r\n", &GAME) else {
            panic!("a static file")
        };
        assert!(
            String::from_utf8_lossy(&head).contains(&format!("Content-Length: {}\r\n", PAGE[0].body.len()))
        );
        assert_eq!(&body[..], PAGE[0].body, "the file itself, shared, after the head");
        assert_eq!(status(&decide(b"GET /nope HTTP/1.1\r\n\r\n", &GAME)), 404);
        assert_eq!(status(&decide(b"POST / HTTP/1.1\r\n\r\n", &GAME)), 405);
        assert_eq!(decide(b"GET /metrics HTTP/1.1\r\n\r\n", &GAME), Decision::Metrics);
    }

    /// The head and the body of a `Respond` decision, split at the blank line.
    fn split(decision: &Decision) -> (String, Vec<u8>) {
        let Respond { response } = decision else { panic!("expected a response, got {decision:?}") };
        let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("blank line") + 4;
        (String::from_utf8(response[..end].to_vec()).expect("ascii head"), response[end..].to_vec())
    }

    #[test]
    fn head_answers_never_carry_a_body_but_state_the_get_length() {
        let upgrade_by_head = upgrade(Some("ticksock.v1")).replacen("GET", "HEAD", 1);
        let cases: [(&[u8], u16, usize); 5] = [
            (b"HEAD / HTTP/1.1\r\n\r\n", 200, PAGE[0].body.len()),
            (b"HEAD /nope HTTP/1.1\r\n\r\n", 404, "not found\n".len()),
            (b"HEAD /nope?x=1 HTTP/1.1\r\n\r\n", 404, "not found\n".len()),
            (upgrade_by_head.as_bytes(), 400, "a WebSocket upgrade must be an HTTP/1.1 GET\n".len()),
            (b"HEAD / HTTP/1.1\r\nBad Header\r\n\r\n", 400, "malformed HTTP request\n".len()),
        ];
        for (request, want, length) in cases {
            let d = decide(request, &GAME);
            assert_eq!(status(&d), want, "{}", String::from_utf8_lossy(request));
            let (head, body) = split(&d);
            assert!(
                body.is_empty(),
                "a HEAD answer carries a body: {head}{}",
                String::from_utf8_lossy(&body)
            );
            assert!(head.contains(&format!("Content-Length: {length}\r\n")), "{head}");
        }
        // Too large before it is complete: the method is known, so no body either.
        let policy = Policy { max_bytes: 64, ..GAME };
        let big = format!("HEAD / HTTP/1.1\r\nX-Pad: {}", "a".repeat(100));
        let d = decide(big.as_bytes(), &policy);
        assert_eq!(status(&d), 431);
        assert!(split(&d).1.is_empty());
        // The same refusals to a GET keep their bodies.
        assert_eq!(split(&decide(b"GET /nope HTTP/1.1\r\n\r\n", &GAME)).1, b"not found\n");
    }

    #[test]
    fn a_405_names_the_allowed_methods() {
        for request in [&b"POST / HTTP/1.1\r\n\r\n"[..], b"DELETE /metrics HTTP/1.1\r\n\r\n"] {
            let d = decide(request, &GAME);
            assert_eq!(status(&d), 405);
            let (head, body) = split(&d);
            assert!(head.contains("\r\nAllow: GET, HEAD\r\n"), "{head}");
            assert_eq!(body, b"method not allowed\n");
        }
    }

    #[test]
    fn metrics_ignores_the_query_and_head_gets_only_its_headers() {
        assert_eq!(decide(b"GET /metrics?name=x HTTP/1.1\r\n\r\n", &GAME), Decision::Metrics);
        assert_eq!(decide(b"GET /metrics? HTTP/1.1\r\n\r\n", &GAME), Decision::Metrics);
        for request in [&b"HEAD /metrics HTTP/1.1\r\n\r\n"[..], b"HEAD /metrics?x HTTP/1.1\r\n\r\n"] {
            let d = decide(request, &GAME);
            assert_eq!(status(&d), 200);
            let (head, body) = split(&d);
            assert!(body.is_empty());
            assert!(head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "{head}");
            assert!(head.contains("Connection: close\r\n"), "{head}");
            assert!(!head.contains("Content-Length"), "{head}");
        }
        // Only the path before `?` counts: these are other paths.
        assert_eq!(status(&decide(b"GET /metricsx HTTP/1.1\r\n\r\n", &GAME)), 404);
        assert_eq!(status(&decide(b"GET /metrics/ HTTP/1.1\r\n\r\n", &GAME)), 404);
    }

    /// A game upgrade to the server at `host`, from a page of `origin` if any.
    fn upgrade_from(host: &str, origin: Option<&str>) -> String {
        let mut r = upgrade(Some("ticksock.v2")).replace("Host: x\r\n", &format!("Host: {host}\r\n"));
        if let Some(origin) = origin {
            r.insert_str(r.len() - 2, &format!("Origin: {origin}\r\n"));
        }
        r
    }

    /// The exact answer to an upgrade from an origin that is not allowed.
    const FORBIDDEN: &str = "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 52\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\r\nWebSocket upgrades from this Origin are not allowed\n";

    fn is_forbidden(decision: &Decision) -> bool {
        matches!(decision, Respond { response } if response == FORBIDDEN.as_bytes())
    }

    fn is_upgrade(decision: &Decision) -> bool {
        matches!(decision, Upgrade { .. })
    }

    #[test]
    fn by_default_an_upgrade_from_the_servers_own_host_or_without_origin_is_accepted() {
        let d = |host, origin| decide(upgrade_from(host, origin).as_bytes(), &GAME);
        assert!(is_upgrade(&d("127.0.0.1:7777", Some("http://127.0.0.1:7777"))));
        assert!(is_upgrade(&d("Game.Example.com", Some("https://game.example.com"))));
        assert!(is_upgrade(&d("127.0.0.1:7777", None)));
    }

    #[test]
    fn an_upgrade_from_an_origin_not_allowed_gets_403_byte_for_byte() {
        let d = |host, origin| decide(upgrade_from(host, origin).as_bytes(), &GAME);
        let evil = d("127.0.0.1:7777", Some("https://evil.example"));
        assert!(is_forbidden(&evil), "{evil:?}");
        // The same host on another port is another site.
        assert!(is_forbidden(&d("127.0.0.1:7777", Some("http://127.0.0.1:8080"))));
        assert!(is_forbidden(&d("127.0.0.1:7777", Some("null"))));
        // An `Origin` that is not text is not taken for a missing one.
        let mut binary = upgrade_from("x", None).into_bytes();
        binary.splice(binary.len() - 2..binary.len() - 2, b"Origin: http://x\xff\r\n".iter().copied());
        assert!(is_forbidden(&decide(&binary, &GAME)));
        // Two origins: each must be allowed.
        let two = upgrade_from("x", Some("http://x")).replacen(
            "Origin: http://x\r\n",
            "Origin: http://x\r\nOrigin: http://y\r\n",
            1,
        );
        assert!(is_forbidden(&decide(two.as_bytes(), &GAME)));
        // `HEAD` is refused as not `GET` first; a malformed upgrade keeps its own answer.
        let by_head = upgrade_from("x", Some("http://y")).replacen("GET", "HEAD", 1);
        assert_eq!(status(&decide(by_head.as_bytes(), &GAME)), 400);
        let no_key = upgrade_from("x", Some("http://y"))
            .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        assert_eq!(split(&decide(no_key.as_bytes(), &GAME)).1, refusal::NO_KEY.as_bytes());
        // The origin is checked before the subprotocol: a foreign page learns nothing more.
        let no_protocol =
            upgrade_from("x", Some("http://y")).replace("Sec-WebSocket-Protocol: ticksock.v2\r\n", "");
        assert!(is_forbidden(&decide(no_protocol.as_bytes(), &GAME)));
    }

    #[test]
    fn listed_origins_and_a_star_are_allowed() {
        let listed = Policy { allowed_origins: "http://localhost:8080".parse().expect("a list"), ..GAME };
        let d =
            |origin, policy: &Policy| decide(upgrade_from("127.0.0.1:7777", Some(origin)).as_bytes(), policy);
        assert!(is_upgrade(&d("http://localhost:8080", &listed)));
        assert!(is_upgrade(&d("http://LOCALHOST:8080", &listed)));
        assert!(is_forbidden(&d("http://localhost:8081", &listed)));
        // A list without `self` replaces the default.
        assert!(is_forbidden(&d("http://127.0.0.1:7777", &listed)));
        let any = Policy { allowed_origins: AllowedOrigins::any(), ..GAME };
        assert!(is_upgrade(&d("https://evil.example", &any)));
        assert!(is_upgrade(&decide(upgrade_from("x", Some("https://evil.example")).as_bytes(), &ECHO)));
    }

    #[test]
    fn plain_requests_are_not_checked_for_their_origin() {
        let get =
            |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n");
        assert!(matches!(decide(get("/").as_bytes(), &GAME), Decision::File { .. }));
        assert_eq!(decide(get("/metrics").as_bytes(), &GAME), Decision::Metrics);
    }

    #[test]
    fn the_503_drops_its_body_for_head_only() {
        assert_eq!(service_unavailable(), service_unavailable_to(b"GET / HTTP/1.1\r\n\r\n"));
        let full = String::from_utf8(service_unavailable()).expect("ascii");
        assert!(full.starts_with("HTTP/1.1 503 ") && full.ends_with("server is at its connection limit\n"));
        let head = String::from_utf8(service_unavailable_to(b"HEAD / HTTP/1.1\r\n\r\n")).expect("ascii");
        assert!(head.starts_with("HTTP/1.1 503 ") && head.ends_with("\r\n\r\n"), "{head}");
        assert!(head.contains("Content-Length: 34\r\n"), "{head}");
    }

    fn credentials_of(target: &str) -> Option<Box<Credentials>> {
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: ticksock.v1\r\n\r\n"
        );
        let policy = Policy {
            subprotocols: GAME_SUBPROTOCOLS,
            max_bytes: 8192,
            static_files: StaticFiles::none(),
            allowed_origins: AllowedOrigins::any(),
        };
        match decide(request.as_bytes(), &policy) {
            Upgrade { credentials, .. } => credentials,
            other => panic!("{target}: not upgraded: {other:?}"),
        }
    }

    #[test]
    fn ticks_1_in_the_query_asks_for_stamps_and_nothing_else_does() {
        let asked = credentials_of("/?ticks=1").expect("asked for something");
        assert_eq!(*asked, Credentials { tick_stamps: true, ..Credentials::default() });
        let both = credentials_of("/?token=abc&ticks=1").expect("asked for both");
        assert_eq!((both.token.as_deref(), both.tick_stamps), (Some("abc"), true));
        for other in ["/", "/?ticks=0", "/?ticks=yes", "/?ticks", "/?xticks=1"] {
            assert_eq!(credentials_of(other), None, "{other}");
        }
    }
}
