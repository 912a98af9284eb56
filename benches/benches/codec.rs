//! The wire codec on its own: encoding and decoding the three frames of the hot path (a
//! request, its reply, and a push) with a 32-byte body, an arena `State` body with 50 players
//! (what each room pushes every tick), and the body of the hottest route, `move`.
//!
//! Why: every call crosses the codec twice on the server (decode the request, encode the reply)
//! and every tick encodes one state body per room, so the codec sets a floor under the cost
//! per call. Encodes write into a reused buffer, so they measure the codec, not the allocator;
//! `encode_body` of the state allocates its `Vec`, as the protocol API does.

use std::hint::black_box;

use benches::state_with;
use criterion::{Criterion, Throughput};
use ticksock_arena::proto::{Move, State};
use ticksock_protocol::{ClientFrame, ServerFrame, decode_body, encode_body};

const BODY: [u8; 32] = [0xA5; 32];

fn frames(c: &mut Criterion) {
    let request = ClientFrame::Request { id: 1_000_000, route: "echo", body: &BODY };
    let reply = ServerFrame::Reply { id: 1_000_000, body: &BODY };
    let push = ServerFrame::Push { topic: "state".into(), body: &BODY };
    let (request_bytes, reply_bytes, push_bytes) = (request.to_vec(), reply.to_vec(), push.to_vec());

    let mut g = c.benchmark_group("codec");
    let mut out = Vec::with_capacity(256);

    g.throughput(Throughput::Bytes(request_bytes.len() as u64));
    g.bench_function("encode_request_32B", |b| {
        b.iter(|| {
            out.clear();
            black_box(request).encode_into(&mut out);
            black_box(out.len())
        })
    });
    g.bench_function("decode_request_32B", |b| {
        b.iter(|| ClientFrame::decode(black_box(&request_bytes)).expect("decodes"))
    });

    g.throughput(Throughput::Bytes(reply_bytes.len() as u64));
    g.bench_function("encode_reply_32B", |b| {
        b.iter(|| {
            out.clear();
            black_box(&reply).encode_into(&mut out);
            black_box(out.len())
        })
    });
    g.bench_function("decode_reply_32B", |b| {
        b.iter(|| ServerFrame::decode(black_box(&reply_bytes)).expect("decodes"))
    });

    g.throughput(Throughput::Bytes(push_bytes.len() as u64));
    g.bench_function("encode_push_32B", |b| {
        b.iter(|| {
            out.clear();
            black_box(&push).encode_into(&mut out);
            black_box(out.len())
        })
    });
    g.bench_function("decode_push_32B", |b| {
        b.iter(|| ServerFrame::decode(black_box(&push_bytes)).expect("decodes"))
    });
    g.finish();
}

fn bodies(c: &mut Criterion) {
    let state = state_with(50);
    let state_body = encode_body(&state).expect("encodes");
    let mut push_frame = Vec::new();
    ticksock_protocol::frame::write_push_header(&mut push_frame, "state");
    push_frame.extend_from_slice(&state_body);
    let move_body = encode_body(&Move { dx: -1, dy: 1 }).expect("encodes");

    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(state_body.len() as u64));
    g.bench_function("encode_body_state_50_players", |b| {
        b.iter(|| encode_body(black_box(&state)).expect("encodes"))
    });
    g.throughput(Throughput::Bytes(push_frame.len() as u64));
    g.bench_function("decode_push_state_50_players", |b| {
        b.iter(|| {
            let ServerFrame::Push { body, .. } =
                ServerFrame::decode(black_box(&push_frame)).expect("decodes")
            else {
                unreachable!("a push frame")
            };
            decode_body::<State>(body).expect("decodes")
        })
    });
    g.throughput(Throughput::Bytes(move_body.len() as u64));
    g.bench_function("decode_body_move", |b| {
        b.iter(|| decode_body::<Move>(black_box(&move_body)).expect("decodes"))
    });
    g.finish();
}

fn main() {
    benches::run(&[frames, bodies]);
}
