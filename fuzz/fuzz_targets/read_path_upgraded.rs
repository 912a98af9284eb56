//! Fuzz target `read_path_upgraded`. The read path past a valid upgrade request, so every input reaches
//! the WebSocket framing and the frame decoder (the first byte picks binary, JSON or echo mode). The
//! check lives in `src/lib.rs`; `docs/FUZZING.md` says how to run it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ticksock_fuzz::check_read_path_upgraded(data));
