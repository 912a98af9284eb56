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

/// Every crate path in `text`, from `crate::` (or `super::super::`, which from a file of a
/// top-level folder is the crate root) to its end, with `use` groups expanded at every level
/// (`use crate::{a, b::{c, d}}` gives `a`, `b::c`, `b::d`), whatever lines they span. Comment
/// lines are skipped.
fn crate_paths(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("super::super::", "crate::");
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let used = expand(rest, String::new(), &mut found);
        rest = &rest[used..];
    }
    found
}

/// Reads one path (or group of paths) at the start of `text`, pushing each full path with
/// `prefix` in front; returns how many bytes it read.
fn expand(text: &str, prefix: String, found: &mut Vec<String>) -> usize {
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let name_len = text.find(|c: char| !is_name(c)).unwrap_or(text.len());
    let name = text[..name_len].trim_end_matches("::");
    let path = if name.is_empty() { prefix.clone() } else { format!("{prefix}{name}") };
    let after = &text[name_len..];
    if !after.starts_with('{') {
        found.push(path);
        return name_len;
    }
    // A group: each item, split at the commas of this level.
    let group_prefix = if path.is_empty() { String::new() } else { format!("{path}::") };
    let mut read = name_len + 1;
    loop {
        let item = &text[read..];
        let skipped = item.len() - item.trim_start_matches(|c: char| c.is_whitespace() || c == ',').len();
        read += skipped;
        if text[read..].starts_with('}') || read >= text.len() {
            return read + 1;
        }
        read += expand(&text[read..], group_prefix.clone(), found);
        // Skip to this item's end: `as name`, spaces.
        while read < text.len() && !text[read..].starts_with([',', '}']) {
            read += text[read..].chars().next().map_or(1, char::len_utf8);
        }
    }
}

/// The first segment of each crate path in `text`: the module or root item it reaches.
fn crate_roots(text: &str) -> Vec<String> {
    crate_paths(text).iter().map(|p| p.split("::").next().unwrap_or("").to_owned()).collect()
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
            for name in crate_roots(&text) {
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
fn the_testing_harness_takes_only_the_close_codes_from_the_reactor() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join("testing");
    let mut from_net = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("server/src/testing") {
        let path = entry.expect("a directory entry").path();
        let text = std::fs::read_to_string(&path).expect("source is UTF-8");
        from_net.extend(crate_paths(&text).into_iter().filter(|p| p.starts_with("net")));
    }
    assert!(from_net.iter().all(|p| p.starts_with("net::inbound::close")), "{from_net:?}");
}

#[test]
fn the_path_reader_sees_plain_grouped_and_multi_line_paths_and_skips_comments() {
    let text =
        "use crate::net::x;\nuse crate::{Game, bridge::Batch};\n// crate::logic\nlet a = crate::api::f();";
    assert_eq!(crate_roots(text), ["net", "Game", "bridge", "api"]);
    let multi = "use crate::{\n    api::Ctx,\n    bridge::{Batch, wake::Wake as W},\n    logic::tick::Tick,\n};\nuse super::super::net::read;";
    let paths = ["api::Ctx", "bridge::Batch", "bridge::wake::Wake", "logic::tick::Tick", "net::read"];
    assert_eq!(crate_paths(multi), paths);
    // A rule is seen to fail when it is broken.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join("net");
    assert!(dir.join("read.rs").exists(), "the reactor's files are where the rules look");
    assert!(!violations("net", &[&["bridge"]]).is_empty(), "net does use the bridge");
}
