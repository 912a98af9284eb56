//! Helpers shared by integration tests. Each test binary compiles all of it and uses a part,
//! hence the `dead_code` allowance.
#![allow(dead_code)]
pub mod arena;
pub mod cluster;
