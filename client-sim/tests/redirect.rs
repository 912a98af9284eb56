//! Bots following redirects (PROTOCOL.md 12.2), against mock nodes: no real cluster exists in
//! this crate's tests. A node here is a small tungstenite server that speaks just enough of
//! the arena: `home` answers `login`, and answers `join` with Error `redirect` to a URL with a
//! ticket; the node the URL names welcomes the connection, then answers `join` (and the
//! moves), or refuses the ticket with a 4002 close right after its welcome.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use client_sim::{Options, Scenario};
use ticksock_arena::proto::{Joined, LoggedIn, ROUTE_JOIN, ROUTE_LOGIN};
use ticksock_protocol::{CLOSE_BAD_TICKET, Encoding, error_code};
use tungstenite::Message;
use tungstenite::handshake::server::{Request, Response};
use tungstenite::protocol::CloseFrame;

/// What a mock node does with a `join`.
#[derive(Clone)]
enum OnJoin {
    /// Redirect to this URL (a ticket is added).
    RedirectTo(Arc<Mutex<String>>),
    /// Enter the arena.
    Enter,
}

/// What a mock node saw.
#[derive(Debug, Default)]
struct Seen {
    /// The query of each upgrade (`ticket=...`).
    queries: Vec<String>,
    /// Each request's route.
    routes: Vec<String>,
    /// The close codes the client sent.
    close_codes: Vec<u16>,
}

/// Starts a mock node; its address, and what it saw.
fn node(on_join: OnJoin, refuse_tickets: bool) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (on_join, seen) = (on_join.clone(), shared.clone());
            std::thread::spawn(move || serve(tcp, &on_join, refuse_tickets, &seen));
        }
    });
    (addr, seen)
}

// The upgrade callback's `Result<Response, ErrorResponse>` is tungstenite's signature.
#[allow(clippy::result_large_err)]
fn serve(tcp: TcpStream, on_join: &OnJoin, refuse_tickets: bool, seen: &Mutex<Seen>) {
    let mut query = String::new();
    let upgrade = |request: &Request, mut response: Response| {
        query = request.uri().query().unwrap_or_default().to_owned();
        let value = ticksock_protocol::SUBPROTOCOL.parse().expect("header value");
        response.headers_mut().insert("Sec-WebSocket-Protocol", value);
        Ok(response)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(tcp, upgrade) else { return };
    let ticketed = query.starts_with("ticket=");
    seen.lock().expect("not poisoned").queries.push(query);
    let mut out = Vec::new();
    ticksock_protocol::write_welcome(Encoding::Binary, &mut out, 30, 1);
    if ws.send(Message::Binary(out.into())).is_err() {
        return;
    }
    if ticketed && refuse_tickets {
        let frame = CloseFrame { code: CLOSE_BAD_TICKET.into(), reason: "invalid or expired ticket".into() };
        let _ = ws.close(Some(frame));
        while ws.read().is_ok() {}
        return;
    }
    loop {
        let message = match ws.read() {
            Ok(Message::Binary(bytes)) => bytes,
            Ok(Message::Close(frame)) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                seen.lock().expect("not poisoned").close_codes.push(code);
                while ws.read().is_ok() {}
                return;
            }
            Ok(_) => continue,
            Err(_) => return,
        };
        let request = ticksock_protocol::decode_request(Encoding::Binary, &message).expect("a request");
        seen.lock().expect("not poisoned").routes.push(request.route.to_owned());
        let mut out = Vec::new();
        match (request.route, on_join) {
            (ROUTE_LOGIN, _) => {
                let me = LoggedIn { player_id: 7 };
                ticksock_protocol::write_reply(Encoding::Binary, &mut out, request.id, &me).expect("encodes");
            }
            (ROUTE_JOIN, OnJoin::RedirectTo(url)) => {
                let url = format!("{}?ticket=AAECAwQ.ZXhhbXBsZQ", url.lock().expect("not poisoned"));
                ticksock_protocol::write_error(
                    Encoding::Binary,
                    &mut out,
                    request.id,
                    error_code::REDIRECT,
                    &url,
                );
            }
            (ROUTE_JOIN, OnJoin::Enter) => {
                let joined = Joined { room: "arena-0".into(), players: Vec::new(), roster: Vec::new() };
                ticksock_protocol::write_reply(Encoding::Binary, &mut out, request.id, &joined)
                    .expect("encodes");
            }
            _ => {
                ticksock_protocol::write_reply(Encoding::Binary, &mut out, request.id, &()).expect("encodes")
            }
        }
        if ws.send(Message::Binary(out.into())).is_err() {
            return;
        }
    }
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

fn arena_bots(home: SocketAddr) -> Options {
    Options {
        scenario: Scenario::Arena,
        bots: 3,
        rate: 5.0,
        duration: 1.0,
        chat_interval: 100.0,
        quiet: true,
        ..Options::new(&url(home))
    }
}

#[test]
fn a_redirected_join_goes_on_on_the_named_node_without_a_login_and_the_old_link_closes_1000() {
    let (there, there_seen) = node(OnJoin::Enter, false);
    let (home, home_seen) = node(OnJoin::RedirectTo(Arc::new(Mutex::new(url(there)))), false);
    let report = client_sim::run(&arena_bots(home)).expect("runs");
    println!("{}", report.table());
    let c = &report.counters;
    assert_eq!(report.errors, 0, "{:?} {:?}", report.error_codes, report.connect_errors);
    assert_eq!(c.redirects_followed, 3, "one per bot");
    assert_eq!(c.redirects_failed_closed + c.redirects_failed_too_many + c.redirects_failed_bad_url, 0);
    assert_eq!(c.connections, 6, "each bot: home, then the redirect's node");
    assert_eq!(report.connected_at_end, 3);
    let home_seen = home_seen.lock().expect("not poisoned");
    assert_eq!(home_seen.close_codes, [1000; 3], "the old links closed normally");
    let there_seen = there_seen.lock().expect("not poisoned");
    assert_eq!(there_seen.queries, ["ticket=AAECAwQ.ZXhhbXBsZQ"; 3], "the URL taken as it is");
    assert!(!there_seen.routes.iter().any(|r| r == ROUTE_LOGIN), "no login: the ticket logs in");
    assert_eq!(there_seen.routes.iter().filter(|r| *r == ROUTE_JOIN).count(), 3, "the join again");
    assert!(there_seen.routes.iter().any(|r| r == "move"), "and then the bots play there");
    assert!(report.table().contains("redirects followed / FAILED"));
}

#[test]
fn a_refused_ticket_fails_the_redirect_and_the_bot_goes_home_to_try_again() {
    let (refusing, refusing_seen) = node(OnJoin::Enter, true);
    let (home, home_seen) = node(OnJoin::RedirectTo(Arc::new(Mutex::new(url(refusing)))), false);
    // Long enough for two rounds (each with a reconnect backoff of 0.5 s and jitter) on a
    // loaded machine.
    let opts = Options { bots: 1, duration: 6.0, ..arena_bots(home) };
    let report = client_sim::run(&opts).expect("runs");
    println!("{}", report.table());
    let c = &report.counters;
    assert!(c.redirects_failed_closed >= 2, "the 4002 close fails each redirect: {c:?}");
    assert_eq!(c.timed_out, 0, "no call waits, queued, for a link that is not coming: {c:?}");
    // Every redirect followed failed, but the last one, which may be under way at the end.
    assert!(c.redirects_followed - c.redirects_failed_closed <= 1, "{c:?}");
    assert!(c.disconnected_calls >= c.redirects_failed_closed, "the join failed each time (an error)");
    assert!(report.errors > 0);
    assert!(refusing_seen.lock().expect("not poisoned").routes.is_empty(), "it handled no request");
    // Back home: a new connection, a login and the join again (and redirected again).
    let home_seen = home_seen.lock().expect("not poisoned");
    assert!(home_seen.queries.len() >= 2, "{home_seen:?}");
    assert!(home_seen.routes.iter().filter(|r| *r == ROUTE_LOGIN).count() >= 2, "{home_seen:?}");
}

#[test]
fn a_call_follows_three_redirects_at_most() {
    // A node that redirects every join to itself: each bot follows 3, and fails the 4th.
    let target = Arc::new(Mutex::new(String::new()));
    let (looping, _) = node(OnJoin::RedirectTo(target.clone()), false);
    *target.lock().expect("not poisoned") = url(looping);
    let opts = Options { bots: 2, duration: 0.5, ..arena_bots(looping) };
    let report = client_sim::run(&opts).expect("runs");
    println!("{}", report.table());
    let c = &report.counters;
    assert!(c.redirects_failed_too_many >= 2, "{c:?}");
    assert_eq!(c.redirects_followed, 3 * c.redirects_failed_too_many, "3 followed before each failure");
    assert_eq!(report.error_codes.get(&error_code::REDIRECT), Some(&c.redirects_failed_too_many));
}
