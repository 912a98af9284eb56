//! The load simulator (work in progress: see issue 4).

fn main() {}
