//! Echo mode: every data message comes back unchanged, and no subprotocol is required.

mod common;

use std::time::Duration;

use ticksock_server::Echo;
use ticksock_server::{Config, Server};
use tungstenite::Message;

#[test]
fn text_and_binary_come_back_unchanged_without_a_subprotocol() {
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        close_timeout: Duration::from_millis(300),
        ..Config::echo()
    };
    let server = Server::start(config, Echo).expect("server starts");
    let mut ws = common::connect_raw(server.local_addr(), None).expect("upgrade without subprotocol");
    let big = vec![7u8; 200_000];
    for message in
        [Message::Text("héllo".into()), Message::Binary(vec![1, 2, 3].into()), Message::Binary(big.into())]
    {
        ws.send(message.clone()).expect("send");
        assert_eq!(ws.read().expect("echo"), message);
    }
    server.shutdown().expect("clean shutdown");
}
