//! The fuzz targets' checks, run on stable without a fuzzer, in every `cargo test`:
//!
//! - every file in `fuzz/regressions/<target>/` (inputs that once crashed a target) and in
//!   `fuzz/seeds/<target>/` (the seed corpus) goes through its target's check;
//! - a few thousand deterministic pseudo-random inputs (seeded xorshift; random bytes and
//!   mutations of the seeds) go through every check.
//!
//! The checks are the fuzz crate's own (`fuzz/src/lib.rs`, included here by path), so this
//! test and `cargo fuzz run` exercise exactly the same code. See `docs/FUZZING.md`.

#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::fs;
use std::path::{Path, PathBuf};

/// `fuzz/<kind>/<target>/`.
fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz").join(kind).join(target)
}

/// The files of `fuzz/<kind>/<target>/`, sorted by name (none when it does not exist).
fn files(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = fs::read_dir(dir(kind, target)) else { return Vec::new() };
    let mut paths: Vec<PathBuf> =
        entries.map(|e| e.expect("a directory entry").path()).filter(|p| p.is_file()).collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).expect("a readable input file");
            (p, bytes)
        })
        .collect()
}

/// Runs `target`'s check on `data`, naming the input if it panics.
fn run(target: &str, what: &dyn std::fmt::Display, data: &[u8]) {
    let outcome = std::panic::catch_unwind(|| targets::check(target, data));
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        panic!("fuzz target `{target}` panicked on {what} ({} bytes: {data:02x?}): {message}", data.len());
    }
}

#[test]
fn every_regression_input_passes_its_target() {
    for target in targets::TARGETS {
        for (path, data) in files("regressions", target) {
            run(target, &path.display(), &data);
        }
    }
}

#[test]
fn every_seed_passes_its_target() {
    for target in targets::TARGETS {
        let seeds = files("seeds", target);
        assert!(!seeds.is_empty(), "no seeds in {}", dir("seeds", target).display());
        for (path, data) in seeds {
            run(target, &path.display(), &data);
        }
    }
}

/// xorshift64*: deterministic, good enough to scatter bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        // Favour the bytes that mean something to varints, lengths and WebSocket headers.
        const INTERESTING: &[u8] =
            &[0, 1, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x88, 0x89, 0xfb, 0xfc, 0xfd, 0xfe, 0xff];
        if self.below(4) == 0 { INTERESTING[self.below(INTERESTING.len())] } else { self.next() as u8 }
    }
}

/// A pseudo-random input: fresh bytes, or a seed mutated a few times.
fn input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if seeds.is_empty() || rng.below(4) == 0 {
        let len = rng.below(64);
        return (0..len).map(|_| rng.byte()).collect();
    }
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.byte();
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            2 => {
                let i = rng.below(data.len() + 1);
                data.insert(i, rng.byte());
            }
            3 if !data.is_empty() => data.truncate(rng.below(data.len())),
            _ => {
                // Splice the tail of another seed in.
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let at = rng.below(data.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}

#[test]
fn seeded_pseudo_random_inputs_pass_every_target() {
    const PER_TARGET: usize = 2000;
    let mut rng = Rng(0x7469_636b_736f_636b); // "ticksock"
    let started = std::time::Instant::now();
    for target in targets::TARGETS {
        let seeds: Vec<Vec<u8>> = files("seeds", target).into_iter().map(|(_, data)| data).collect();
        for i in 0..PER_TARGET {
            let data = input(&mut rng, &seeds);
            run(target, &format!("pseudo-random input #{i}"), &data);
        }
    }
    eprintln!("{} inputs in {:?}", PER_TARGET * targets::TARGETS.len(), started.elapsed());
}
