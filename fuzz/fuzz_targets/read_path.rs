//! Fuzz target `read_path`. The server's whole read path on arbitrary bytes:
//! `ticksock_server::__internals::inbound::run_read_path` (HTTP upgrade, tungstenite framing with the server's limits,
//! classification), in game and echo mode. The check lives in `src/lib.rs`; `docs/FUZZING.md` says how
//! to run it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ticksock_fuzz::check_read_path(data));
