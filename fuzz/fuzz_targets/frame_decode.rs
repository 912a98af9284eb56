//! Fuzz target `frame_decode`. Frame decoding: `ClientFrame::decode` and `ServerFrame::decode` on
//! arbitrary bytes, with a re-encode round trip for every frame that decodes. The check lives in
//! `src/lib.rs`; `docs/FUZZING.md` says how to run it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ticksock_fuzz::check_frame_decode(data));
