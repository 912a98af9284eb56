//! A redirect over real sockets (`docs/PROTOCOL.md` section 12.2), between two mock nodes in
//! this test: node A answers `join` with Error `redirect` naming node B's URL and a ticket; B
//! checks that its upgrade carried the ticket and that the request is the same route and body,
//! and answers it. The `BlockingClient`'s call returns B's answer, and A sees a Close 1000.

// tungstenite's upgrade callback returns its own large error type; not ours to shrink.
#![allow(clippy::result_large_err)]

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ticksock_client::{BlockingClient, Config, Event, Versions};
use ticksock_protocol::{ClientFrame, ServerFrame, error_code};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::{Message, WebSocket};

/// What a mock node saw: its upgrade's URI, the request (route, body), and the close code.
#[derive(Debug, Default)]
struct Seen {
    uri: String,
    request: Option<(String, Vec<u8>)>,
    close: Option<u16>,
}

/// Accepts one WebSocket on `listener` selecting `ticksock.v1`, sends the welcome, reads one
/// request and answers it with `answer(id)`, then reads until the client closes.
fn mock_node(listener: TcpListener, answer: impl FnOnce(u32) -> Vec<u8>) -> Seen {
    let (stream, _) = listener.accept().expect("accept");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut seen = Seen::default();
    let mut ws: WebSocket<TcpStream> =
        tungstenite::accept_hdr(stream, |request: &Request, mut response: Response| {
            seen.uri = request.uri().to_string();
            let protocol = ticksock_protocol::SUBPROTOCOL.parse().expect("a header value");
            response.headers_mut().insert("Sec-WebSocket-Protocol", protocol);
            Ok(response)
        })
        .expect("upgrade");
    let welcome =
        ServerFrame::Welcome { version: ticksock_protocol::PROTOCOL_VERSION, tick_hz: 30, conn_id: 1 };
    ws.send(Message::Binary(welcome.to_vec().into())).expect("welcome");
    let mut answer = Some(answer);
    loop {
        match ws.read() {
            Ok(Message::Binary(frame)) => {
                let ClientFrame::Request { id, route, body } =
                    ClientFrame::decode(&frame).expect("a request");
                seen.request = Some((route.to_owned(), body.to_vec()));
                let reply = answer.take().expect("one request only")(id);
                ws.send(Message::Binary(reply.into())).expect("answer");
            }
            Ok(Message::Close(frame)) => seen.close = frame.map(|f| f.code.into()),
            Ok(_) => {}
            Err(_) => return seen, // Closed (after the close handshake), or the test is over.
        }
    }
}

#[test]
fn a_blocking_call_redirected_by_one_node_returns_the_answer_of_the_other() {
    let node_a = TcpListener::bind("127.0.0.1:0").expect("bind");
    let node_b = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url_a = format!("ws://{}/", node_a.local_addr().expect("addr"));
    let url_b = format!("ws://{}/?ticket=abc", node_b.local_addr().expect("addr"));
    let redirect_to = url_b.clone();
    let (seen_a_tx, seen_a) = mpsc::channel();
    let (seen_b_tx, seen_b) = mpsc::channel();
    thread::spawn(move || {
        let seen = mock_node(node_a, |id| {
            ServerFrame::Error { id, code: error_code::REDIRECT, message: redirect_to.as_str().into() }
                .to_vec()
        });
        let _ = seen_a_tx.send(seen);
    });
    thread::spawn(move || {
        let answer = ticksock_protocol::encode_body(&42u32).expect("encodes");
        let seen = mock_node(node_b, |id| ServerFrame::Reply { id, body: &answer }.to_vec());
        let _ = seen_b_tx.send(seen);
    });

    let config = Config { versions: Versions::V1Only, ..Config::default() };
    let mut client = BlockingClient::connect(&url_a, config, Duration::from_secs(5)).expect("connects to A");
    let answer: u32 = client.call("join", &"a1").expect("B's answer");
    assert_eq!(answer, 42);
    let moved = std::iter::from_fn(|| client.poll_event()).find_map(|e| match e {
        Event::Redirected { url, .. } => Some(url),
        _ => None,
    });
    assert_eq!(moved.as_deref(), Some(url_b.trim_end_matches("?ticket=abc")), "the game is told where it is");

    // A sees the close (1000) once the call has gone to B; the client is pumped meanwhile.
    let seen_a = loop {
        if let Ok(seen) = seen_a.recv_timeout(Duration::from_millis(20)) {
            break seen;
        }
        let _ = client.wait_event(Duration::from_millis(20));
    };
    let body = ticksock_protocol::encode_body(&"a1").expect("encodes");
    assert_eq!(seen_a.request, Some(("join".to_owned(), body.clone())));
    assert_eq!(seen_a.close, Some(1000), "A is closed normally");
    client.close();
    let seen_b = seen_b.recv_timeout(Duration::from_secs(10)).expect("B is done");
    assert_eq!(seen_b.uri, "/?ticket=abc", "the ticket is in B's upgrade URL");
    assert_eq!(seen_b.request, Some(("join".to_owned(), body)), "the same route and body");
    assert_eq!(seen_b.close, Some(1000));
}
