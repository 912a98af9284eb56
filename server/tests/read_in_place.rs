//! Reads in place: whole data frames are taken from the reactor's buffer, and everything else
//! (control frames, fragments, large frames, frames cut by a read, frames past the budget)
//! goes to tungstenite in order. Checked end to end in echo mode, with frames written by hand.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use ticksock_server::{Config, Echo, Server};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// A masked client frame.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    out
}

fn binary(i: u32) -> Vec<u8> {
    format!("message {i}").into_bytes()
}

fn server(read_budget: usize) -> ticksock_server::RunningServer {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        read_budget,
        close_timeout: Duration::from_millis(300),
        ..Config::echo()
    };
    Server::start(config, Echo).expect("server starts")
}

/// The data messages echoed, in order, and the pongs, until `data` data messages came.
fn read_echoes(ws: &mut WebSocket<TcpStream>, data: usize) -> (Vec<Message>, Vec<Vec<u8>>) {
    let (mut echoes, mut pongs) = (Vec::new(), Vec::new());
    while echoes.len() < data {
        match ws.read().expect("an echo") {
            Message::Pong(payload) => pongs.push(payload.to_vec()),
            message => echoes.push(message),
        }
    }
    (echoes, pongs)
}

#[test]
fn frames_of_every_kind_in_one_write_come_back_in_order() {
    // A budget of 8 messages a turn: the 120 frames below take many turns.
    let server = server(8);
    let stream = common::raw_upgrade_offering(server.local_addr(), None);
    let mut ws = WebSocket::from_raw_socket(stream, Role::Client, None);

    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for i in 0..120 {
        match i {
            // A ping among the data frames: tungstenite answers it.
            40 => bytes.extend(frame(0x89, b"are you there")),
            // A message in two fragments, with a ping between them.
            60 => {
                bytes.extend(frame(0x01, "frag".as_bytes()));
                bytes.extend(frame(0x89, b"between"));
                bytes.extend(frame(0x80, "ment é".as_bytes()));
                expected.push(Message::Text("fragment é".into()));
            }
            // Larger than the read buffer (2 KiB): read by tungstenite.
            80 => {
                let big = vec![0xA5; 5000];
                bytes.extend(frame(0x82, &big));
                expected.push(Message::Binary(big.into()));
            }
            // Text, taken in place.
            90 => {
                bytes.extend(frame(0x81, "texte à lire".as_bytes()));
                expected.push(Message::Text("texte à lire".into()));
            }
            _ => {}
        }
        bytes.extend(frame(0x82, &binary(i)));
        expected.push(Message::Binary(binary(i).into()));
    }
    ws.get_mut().write_all(&bytes).expect("write");

    let (echoes, pongs) = read_echoes(&mut ws, expected.len());
    assert_eq!(echoes, expected);
    // tungstenite may answer the second ping before the first pong is written: both come,
    // and a pong's place among the echoes is not promised (PROTOCOL.md 7.3).
    ws.send(Message::Ping(b"last".to_vec().into())).expect("ping");
    let mut all_pongs = pongs;
    while all_pongs.len() < 3 {
        match ws.read().expect("a pong") {
            Message::Pong(payload) => all_pongs.push(payload.to_vec()),
            other => panic!("unexpected {other:?}"),
        }
    }
    all_pongs.sort();
    assert_eq!(all_pongs, [b"are you there".to_vec(), b"between".to_vec(), b"last".to_vec()]);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn frames_cut_anywhere_by_the_network_come_back_whole() {
    let server = server(64);
    let stream = common::raw_upgrade_offering(server.local_addr(), None);
    stream.set_nodelay(true).expect("nodelay");
    let mut ws = WebSocket::from_raw_socket(stream, Role::Client, None);

    // Three frames written a few bytes at a time, each piece its own segment: frames cut in
    // their header, their key, their payload, and frames sharing a piece.
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for (i, len) in [3usize, 130, 40].into_iter().enumerate() {
        let payload: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
        bytes.extend(frame(0x82, &payload));
        expected.push(Message::Binary(payload.into()));
    }
    for piece in bytes.chunks(5) {
        ws.get_mut().write_all(piece).expect("write");
        std::thread::sleep(Duration::from_millis(2));
    }
    let (echoes, _) = read_echoes(&mut ws, expected.len());
    assert_eq!(echoes, expected);
    server.shutdown().expect("clean shutdown");
}

#[test]
fn a_bad_frame_after_good_ones_closes_after_answering_them() {
    let server = server(64);
    let stream = common::raw_upgrade_offering(server.local_addr(), None);
    let mut ws = WebSocket::from_raw_socket(stream, Role::Client, None);
    let mut bytes = frame(0x82, b"one");
    bytes.extend(frame(0x82, b"two"));
    // An unmasked frame: a protocol error (1002), judged by tungstenite.
    bytes.extend([0x82, 0x01, 0x00]);
    ws.get_mut().write_all(&bytes).expect("write");
    let (echoes, _) = read_echoes(&mut ws, 2);
    assert_eq!(echoes, [Message::Binary(b"one".to_vec().into()), Message::Binary(b"two".to_vec().into())]);
    match ws.read() {
        Ok(Message::Close(Some(close))) => assert_eq!(u16::from(close.code), 1002),
        other => panic!("expected a 1002 close, got {other:?}"),
    }
    server.shutdown().expect("clean shutdown");
}

#[test]
fn invalid_utf8_in_a_whole_text_frame_closes_with_1007() {
    let server = server(64);
    let stream = common::raw_upgrade_offering(server.local_addr(), None);
    let mut ws = WebSocket::from_raw_socket(stream, Role::Client, None);
    let mut bytes = frame(0x81, "fine".as_bytes());
    bytes.extend(frame(0x81, &[0x66, 0xff, 0x66]));
    ws.get_mut().write_all(&bytes).expect("write");
    let (echoes, _) = read_echoes(&mut ws, 1);
    assert_eq!(echoes, [Message::Text("fine".into())]);
    match ws.read() {
        Ok(Message::Close(Some(close))) => assert_eq!(u16::from(close.code), 1007),
        other => panic!("expected a 1007 close, got {other:?}"),
    }
    server.shutdown().expect("clean shutdown");
}
