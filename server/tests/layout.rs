//! Keeps the crate doc's layout rules true: the reactor (`net/`) never reaches the game API or
//! the logic thread, the logic thread never reaches the reactor, what crosses between them
//! (`bridge/`) depends on neither side, and the game API (`api/`) only on the bridge.
//!
//! It reads the sources as text: every `crate::NAME` path in a folder's files names what the
//! folder depends on (the crate's own modules, or items the crate root re-exports from them).

use std::path::Path;

/// Names that lead into the game API: its module and what the crate root re-exports from it.
const API: &[&str] = &[
    "api",
    "Game",
    "Ctx",
    "HubMut",
    "Router",
    "Caller",
    "AppError",
    "Hub",
    "Rooms",
    "UserPolicy",
    "BindError",
    "CLOSE_REPLACED",
    "Echo",
    "testing",
];
/// Names that lead into the logic thread.
const LOGIC: &[&str] = &["logic", "LogicStats"];
/// Names that lead into the reactor.
const NET: &[&str] = &["net"];

/// The first segment after each `crate::` in `text`, skipping comment lines.
fn crate_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if name.is_empty() && rest.starts_with('{') {
                // `use crate::{a, b::c}`: every name in the group.
                let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
                found.extend(group.split(',').map(|n| n.trim().split("::").next().unwrap_or("").to_owned()));
            } else {
                found.push(name);
            }
        }
    }
    found
}

/// Every `(file, name)` in `folder` (under `server/src`) whose `crate::name` is forbidden.
fn violations(folder: &str, forbidden: &[&[&str]]) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(folder);
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            for name in crate_paths(&text) {
                if forbidden.iter().any(|names| names.contains(&name.as_str())) {
                    out.push((path.display().to_string(), name));
                }
            }
        }
    }
    out
}

#[test]
fn the_reactor_never_reaches_the_game_api_or_the_logic_thread() {
    assert_eq!(violations("net", &[API, LOGIC]), Vec::<(String, String)>::new());
}

#[test]
fn the_logic_thread_never_reaches_the_reactor() {
    assert_eq!(violations("logic", &[NET]), Vec::<(String, String)>::new());
}

#[test]
fn the_bridge_depends_on_neither_thread_nor_the_game_api() {
    assert_eq!(violations("bridge", &[NET, LOGIC, API]), Vec::<(String, String)>::new());
}

#[test]
fn the_game_api_depends_only_on_the_bridge() {
    assert_eq!(violations("api", &[NET, LOGIC]), Vec::<(String, String)>::new());
}

#[test]
fn the_path_reader_sees_plain_and_grouped_paths_and_skips_comments() {
    let text =
        "use crate::net::x;\nuse crate::{Game, bridge::Batch};\n// crate::logic\nlet a = crate::api::f();";
    assert_eq!(crate_paths(text), ["net", "Game", "bridge", "api"]);
    // A rule is seen to fail when it is broken.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join("net");
    assert!(dir.join("read.rs").exists(), "the reactor's files are where the rules look");
    assert!(!violations("net", &[&["bridge"]]).is_empty(), "net does use the bridge");
}
