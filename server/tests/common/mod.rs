//! A blocking test client over real loopback sockets, written against the wire format.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ticksock_protocol::{ClientFrame, ServerFrame};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// A decoded server frame that owns its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Welcome { version: u16, tick_hz: u16, conn_id: u64 },
    Reply { id: u32, body: Vec<u8> },
    TickReply { id: u32, tick: u64, body: Vec<u8> },
    Error { id: u32, code: u16, message: String },
    Push { topic: String, body: Vec<u8> },
}

impl Frame {
    fn from_bytes(bytes: &[u8]) -> Frame {
        match ServerFrame::decode(bytes).expect("server frames decode") {
            ServerFrame::Welcome { version, tick_hz, conn_id } => {
                Frame::Welcome { version, tick_hz, conn_id }
            }
            ServerFrame::Reply { id, body } => Frame::Reply { id, body: body.to_vec() },
            ServerFrame::TickReply { id, tick, body } => Frame::TickReply { id, tick, body: body.to_vec() },
            ServerFrame::Error { id, code, message } => Frame::Error { id, code, message: message.into() },
            ServerFrame::Push { topic, body } => Frame::Push { topic: topic.into(), body: body.to_vec() },
        }
    }
}

pub struct Client {
    pub ws: WebSocket<TcpStream>,
    pub conn_id: u64,
}

/// Connects offering `subprotocols` (comma-separated) and returns the socket and the response.
pub fn connect_raw(
    addr: SocketAddr,
    subprotocols: Option<&str>,
) -> Result<WebSocket<TcpStream>, tungstenite::Error> {
    let stream = TcpStream::connect(addr).expect("tcp connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    let mut request = format!("ws://{addr}/").into_client_request().expect("request");
    if let Some(p) = subprotocols {
        request.headers_mut().insert("Sec-WebSocket-Protocol", p.parse().expect("header"));
    }
    tungstenite::client(request, stream).map(|(ws, _)| ws).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => panic!("blocking handshake interrupted"),
    })
}

impl Client {
    /// Connects with the ticksock subprotocol and reads the welcome frame.
    pub fn connect(addr: SocketAddr) -> Client {
        let ws = connect_raw(addr, Some(ticksock_protocol::SUBPROTOCOL)).expect("upgrade");
        let mut client = Client { ws, conn_id: 0 };
        match client.recv() {
            Frame::Welcome { version, conn_id, .. } => {
                assert_eq!(version, ticksock_protocol::PROTOCOL_VERSION);
                client.conn_id = conn_id;
            }
            other => panic!("expected welcome, got {other:?}"),
        }
        client
    }

    pub fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).expect("send");
    }

    pub fn request(&mut self, id: u32, route: &str, body: &[u8]) {
        self.send_raw(ClientFrame::Request { id, route, body }.to_vec());
    }

    pub fn request_typed<T: serde::Serialize>(&mut self, id: u32, route: &str, body: &T) {
        self.request(id, route, &ticksock_protocol::encode_body(body).expect("encode"));
    }

    /// The next frame, skipping nothing.
    pub fn recv(&mut self) -> Frame {
        loop {
            match self.ws.read().expect("read") {
                Message::Binary(b) => return Frame::from_bytes(&b),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// The next reply or error, skipping pushes.
    pub fn recv_answer(&mut self) -> Frame {
        loop {
            match self.recv() {
                Frame::Push { .. } => continue,
                other => return other,
            }
        }
    }

    /// Calls and waits for the answer (skipping pushes).
    pub fn call<T: serde::Serialize>(&mut self, id: u32, route: &str, body: &T) -> Frame {
        self.request_typed(id, route, body);
        let answer = self.recv_answer();
        match &answer {
            Frame::Reply { id: got, .. } | Frame::Error { id: got, .. } => assert_eq!(*got, id),
            _ => unreachable!(),
        }
        answer
    }

    /// Calls and decodes the reply body, panicking on an error reply.
    pub fn call_ok<T: serde::Serialize, R: serde::de::DeserializeOwned>(
        &mut self,
        id: u32,
        route: &str,
        body: &T,
    ) -> R {
        match self.call(id, route, body) {
            Frame::Reply { body, .. } => ticksock_protocol::decode_body(&body).expect("reply decodes"),
            other => panic!("{route} failed: {other:?}"),
        }
    }

    /// Reads pushes until one on `topic` satisfies `pred`, within `within`.
    pub fn wait_push<T: serde::de::DeserializeOwned>(
        &mut self,
        topic: &str,
        within: Duration,
        mut pred: impl FnMut(&T) -> bool,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            assert!(Instant::now() < deadline, "no matching push on {topic} in {within:?}");
            if let Frame::Push { topic: t, body } = self.recv()
                && t == topic
            {
                let value: T = ticksock_protocol::decode_body(&body).expect("push decodes");
                if pred(&value) {
                    return value;
                }
            }
        }
    }

    /// Reads until the server closes; returns the close code it sent, if any.
    pub fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.ws.read() {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return None,
                Err(tungstenite::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    panic!("server did not close: {e}")
                }
                Err(_) => return None,
            }
        }
    }
}

/// Static files holding one page, `<p>game</p>` at `/`.
pub fn a_page() -> ticksock_server::StaticFiles {
    const PAGE: &[ticksock_server::StaticFile] = &[ticksock_server::StaticFile {
        path: "/index.html",
        content_type: "text/html",
        body: b"<p>game</p>",
    }];
    ticksock_server::StaticFiles::embedded(PAGE)
}

/// A raw socket upgraded with the binary subprotocol, its 101 head read byte by byte (so that
/// nothing after it is consumed), for tests that write frames by hand.
pub fn raw_upgrade(addr: SocketAddr) -> TcpStream {
    raw_upgrade_offering(addr, Some("ticksock.v1"))
}

/// [`raw_upgrade`], offering `subprotocol` (`None`: none, as a plain WebSocket client that an
/// echo server takes).
pub fn raw_upgrade_offering(addr: SocketAddr, subprotocol: Option<&str>) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let offer = subprotocol.map_or_else(String::new, |p| format!("Sec-WebSocket-Protocol: {p}\r\n"));
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{offer}\r\n"
    )
    .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("the 101 head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    s
}
