//! `client-sim`: drives protocol-true bots against a ticksock server and reports what it saw.
//!
//! ```text
//! client-sim --url ws://127.0.0.1:7777/ --bots 5000 --rate 20 --duration 30 --json out.json
//! ```
//!
//! The exit status is 1 when the errors exceed `--max-errors` (default 0) or, with
//! `--server-pid`, when the server's open descriptors are not back at their baseline after the
//! run; 2 when the run could not start.

use std::process::ExitCode;

use clap::Parser;
use client_sim::Options;

fn main() -> ExitCode {
    let opts = Options::parse();
    let report = match client_sim::run(&opts) {
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
