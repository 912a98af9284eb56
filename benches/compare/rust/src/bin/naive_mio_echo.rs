//! A WebSocket echo server on mio + tungstenite written the naive way: one thread, tungstenite
//! with its default configuration (128 KiB read buffer), the handshake done blocking at
//! accept, and one write (`send`: write and flush) per echoed message.
//!
//! ```text
//! naive_mio_echo 127.0.0.1:PORT
//! ```

use std::io;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use tungstenite::WebSocket;

const LISTENER: Token = Token(usize::MAX);

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9000".into());
    let mut listener = TcpListener::bind(addr.parse().map_err(io::Error::other)?)?;
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Slab<WebSocket<TcpStream>> = Slab::new();
    let mut events = Events::with_capacity(1024);
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    let (stream, _) = match listener.accept() {
                        Ok(accepted) => accepted,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    };
                    // Blocking handshake: the peer sends its upgrade request at once.
                    let std_stream = std::net::TcpStream::from(stream);
                    std_stream.set_nonblocking(false)?;
                    std_stream.set_nodelay(true)?;
                    let Ok(ws) = tungstenite::accept(std_stream) else { continue };
                    let std_stream = ws.into_inner();
                    std_stream.set_nonblocking(true)?;
                    let mut stream = TcpStream::from_std(std_stream);
                    let entry = conns.vacant_entry();
                    poll.registry().register(&mut stream, Token(entry.key()), Interest::READABLE)?;
                    entry.insert(WebSocket::from_raw_socket(
                        stream,
                        tungstenite::protocol::Role::Server,
                        None,
                    ));
                }
                continue;
            }
            let key = event.token().0;
            let Some(ws) = conns.get_mut(key) else { continue };
            let closed = loop {
                match ws.read() {
                    Ok(message) if message.is_binary() || message.is_text() => match ws.send(message) {
                        Ok(()) => {}
                        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => break true,
                    },
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break false,
                    Err(_) => break true,
                }
            };
            if closed {
                let mut ws = conns.remove(key);
                let _ = poll.registry().deregister(ws.get_mut());
            }
        }
    }
}
