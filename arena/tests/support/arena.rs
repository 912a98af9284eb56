//! The real `ticksock-arena` binary on a database file of its own, for tests that need the
//! process (a kill, a restart on the same file, the upgrade's token).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running arena binary; killed when dropped.
pub struct ArenaProcess {
    child: Child,
    url: String,
}

impl ArenaProcess {
    /// Starts the binary on a free loopback port with `--db db`, and waits until it says where
    /// it listens (after the database opened). Its log goes to the test's stderr.
    pub fn start(db: &Path) -> Self {
        Self::start_with(db, &[], Stdio::inherit())
    }

    /// [`ArenaProcess::start`] with more flags, and its log (stderr) sent to `log`.
    pub fn start_with(db: &Path, args: &[&str], log: Stdio) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ticksock-arena"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        lines.read_line(&mut line).expect("the server prints where it listens");
        // The rest of its output is read and dropped, so a later print never fails.
        std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("ws://"))
            .unwrap_or_else(|| panic!("no address in {line:?} (did the database open?)"))
            .to_owned();
        Self { child, url }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        let addr = self.url.trim_start_matches("ws://").trim_end_matches('/');
        addr.parse().unwrap_or_else(|_| panic!("{} names no address", self.url))
    }

    /// Its process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its `ws://127.0.0.1:PORT/` URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGKILL and reap, if it still runs.
    pub fn kill_if_running(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ArenaProcess {
    fn drop(&mut self) {
        self.kill_if_running();
    }
}

/// A database path in a directory of the test's own (`name`), emptied first.
pub fn fresh_db(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the target dir is writable");
    dir.join("arena.db")
}
