//! `client-sim`: drives protocol-true bots against a ticksock server and reports what it saw.
//!
//! ```text
//! client-sim --url ws://127.0.0.1:7777/ --bots 5000 --rate 20 --duration 30 --json out.json
//! ```
//!
//! The exit status is 1 when the errors exceed `--max-errors` (default 0), with `--faults`
//! when any of its checks fails (whatever `--max-errors` says), in the whisper scenario when
//! a whisper was lost or duplicated (likewise), or, with `--server-pid`, when
//! the server's open descriptors are not back at their baseline after the run; 2 when the run could not start (or no bot connected within `--first-connect-timeout`);
//! 130 when it was interrupted (Ctrl-C or SIGTERM), after the report of the run so far. A
//! second Ctrl-C exits at once, with 130.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use client_sim::Options;

/// The exit status of an interrupted run, as shells report a process ended by SIGINT.
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let opts = Options::parse();
    let interrupt = match interrupt_on_signals() {
        Ok(flag) => flag,
        Err(e) => {
            eprintln!("client-sim: cannot install the signal handlers: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match client_sim::run_until(&opts, &interrupt) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("client-sim: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.table());
    if let Some(path) = &opts.json
        && let Err(e) = std::fs::write(path, report.json())
    {
        eprintln!("client-sim: cannot write {}: {e}", path.display());
        return ExitCode::from(2);
    }
    if let Some(secs) = report.interrupted_after_secs {
        eprintln!("client-sim: interrupted after {secs:.1} s; the report above covers the run so far");
        return ExitCode::from(INTERRUPTED);
    }
    let failed = report.failed_checks();
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(|(name, n)| format!("{name}: {n}")).collect();
        let which = if report.whisper.is_some() {
            "whisper"
        } else if report.replica.is_some() {
            "--replication"
        } else {
            "--faults"
        };
        eprintln!("client-sim: {which} checks failed: {}", list.join(", "));
        return ExitCode::FAILURE;
    }
    if report.errors > opts.max_errors {
        eprintln!("client-sim: {} errors, more than --max-errors {}", report.errors, opts.max_errors);
        return ExitCode::FAILURE;
    }
    if let Some(server) = report.server
        && !server.fds_back
    {
        eprintln!(
            "client-sim: the server holds {} descriptors {} s after the run, {} before it (--max-fd-growth {})",
            server.fds_settled, server.settle_secs, server.fds_before, opts.max_fd_growth
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// A flag that the first SIGINT or SIGTERM sets (the run then stops and reports); a second
/// one exits the process at once.
fn interrupt_on_signals() -> std::io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // In this order: the second signal finds the flag set by the first, and exits.
        signal_hook::flag::register_conditional_shutdown(signal, i32::from(INTERRUPTED), flag.clone())?;
        signal_hook::flag::register(signal, flag.clone())?;
    }
    Ok(flag)
}
