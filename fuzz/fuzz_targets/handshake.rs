//! Fuzz target `handshake`. The HTTP upgrade decision: `ticksock_server::__internals::handshake::decide` on arbitrary bytes,
//! under the game, echo and a small-limit policy. The check lives in `src/lib.rs`; `docs/FUZZING.md`
//! says how to run it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ticksock_fuzz::check_handshake(data));
