//! The hop between the reactor thread and the logic thread, as one round trip of one message.
//!
//! The bench thread plays the reactor: it sends a `ToLogic::Echo` on a bounded crossbeam
//! channel, then waits. A second thread plays the logic thread: it blocks in `recv`, turns the
//! message into a one-command `Batch`, and sends it back on a second bounded channel.
//!
//! - `with_waker`: as the server does, the logic side then calls `mio::Waker::wake` and the
//!   reactor side waits in `mio::Poll::poll` (epoll + eventfd) before draining the channel.
//! - `without_waker`: the reactor side blocks in the channel's own `recv` instead (futex).
//!
//! The difference is the cost of waking a reactor that sleeps in epoll rather than on the
//! channel. Why: every batch of replies crosses this hop once, so it is paid per batch (not
//! per call) under load, but in full for every call of a lone client. On a 2-core machine the
//! two threads may share a core, and these figures include the OS's wake-up latency: they are
//! the noisiest of the suite.

use std::thread;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use crossbeam_channel::{Receiver, Sender, bounded};
use mio::{Events, Poll, Token, Waker};
use ticksock_server::__internals::{Batch, DataOpcode, ToLogic};
use ticksock_server::ConnId;

const WAKER: Token = Token(0);

/// The logic side: echo every message back as a batch, waking the reactor if it has a waker.
fn logic_side(inbound: Receiver<ToLogic>, outbound: Sender<Batch>, waker: Option<Waker>) {
    while let Ok(message) = inbound.recv() {
        let ToLogic::Echo { conn, opcode, payload } = message else { break };
        let mut batch = Batch::default();
        batch.send(conn, opcode, &payload);
        if outbound.send(batch).is_err() {
            break;
        }
        if let Some(waker) = &waker {
            waker.wake().expect("the reactor's poll is alive");
        }
    }
}

fn channel_hop(c: &mut Criterion) {
    let conn = ConnId::new(1, 1);
    let payload = Bytes::from_static(&[0xA5; 32]);
    let mut g = c.benchmark_group("channel_hop");
    g.throughput(Throughput::Elements(1));

    for with_waker in [true, false] {
        // The server's default queue sizes (`inbound_queue`, `outbound_queue`).
        let (to_logic, inbound) = bounded::<ToLogic>(8192);
        let (outbound, from_logic) = bounded::<Batch>(1024);
        let mut poll = Poll::new().expect("epoll");
        let mut events = Events::with_capacity(64);
        let waker = with_waker.then(|| Waker::new(poll.registry(), WAKER).expect("eventfd"));
        let logic = thread::spawn(move || logic_side(inbound, outbound, waker));

        let name = if with_waker { "round_trip_with_waker" } else { "round_trip_without_waker" };
        g.bench_function(name, |b| {
            b.iter(|| {
                let sent = ToLogic::Echo { conn, opcode: DataOpcode::Binary, payload: payload.clone() };
                to_logic.send(sent).expect("the logic side is alive");
                if !with_waker {
                    return from_logic.recv().expect("the logic side answers");
                }
                // A wake may be left over from the previous round (wakes can coalesce), so
                // wait until the batch is really there.
                loop {
                    if let Ok(batch) = from_logic.try_recv() {
                        return batch;
                    }
                    poll.poll(&mut events, Some(Duration::from_secs(1))).expect("epoll_wait");
                }
            })
        });

        drop(to_logic);
        logic.join().expect("the logic side stops cleanly");
    }
    g.finish();
}

fn main() {
    benches::run(&[channel_hop]);
}
