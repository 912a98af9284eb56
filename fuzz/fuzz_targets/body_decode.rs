//! Fuzz target `body_decode`. The body decoder: `ticksock_protocol::decode_body` for the arena's types,
//! `Vec<u64>` and `String` (the first byte picks the type), with a round trip for every value that
//! decodes. The check lives in `src/lib.rs`; `docs/FUZZING.md` says how to run it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ticksock_fuzz::check_body_decode(data));
