//! What decoding a hostile body allocates, measured with a counting allocator. One test in
//! this binary, so no other test's allocations are counted with it.

use std::alloc::System;
use std::collections::HashMap;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes `f` allocated (reallocations that grew included).
fn allocated<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let region = Region::new(GLOBAL);
    let result = f();
    let change = region.change();
    (result, change.bytes_allocated + change.bytes_reallocated.max(0) as usize)
}

/// A length prefix claiming 2^32 elements (bincode varint: 253, then a little-endian u64).
const HUGE_LENGTH: [u8; 9] = [253, 0, 0, 0, 0, 1, 0, 0, 0];

#[test]
fn a_sequence_claiming_billions_of_elements_allocates_by_the_input_not_the_claim() {
    // Uncapped, serde preallocates 1 MiB for each of these (131 072 u64s).
    let (decoded, bytes) = allocated(|| ticksock_protocol::decode_body::<Vec<u64>>(&HUGE_LENGTH));
    assert!(decoded.is_err(), "nine bytes cannot hold the elements");
    assert!(bytes <= 16 << 10, "decoding 9 bytes allocated {bytes} bytes");

    let (decoded, bytes) = allocated(|| ticksock_protocol::decode_body::<HashMap<u64, u64>>(&HUGE_LENGTH));
    assert!(decoded.is_err());
    assert!(bytes <= 16 << 10, "decoding 9 bytes as a map allocated {bytes} bytes");

    // Nested: the inner sequence's claim is capped too.
    let mut nested = vec![1u8]; // Option: Some
    nested.extend_from_slice(&HUGE_LENGTH);
    let (decoded, bytes) = allocated(|| ticksock_protocol::decode_body::<Option<Vec<[u64; 4]>>>(&nested));
    assert!(decoded.is_err());
    assert!(bytes <= 16 << 10, "decoding 10 bytes allocated {bytes} bytes");
}
