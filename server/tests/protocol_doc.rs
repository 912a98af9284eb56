//! Checks two tables of `docs/PROTOCOL.md` against the texts the server's code defines, the
//! way `arena/tests/vectors.rs` checks the test vectors: the close reasons of section 7.5
//! against `close::REASONS` (and the two reasons the game-facing API sends), and the HTTP
//! refusals of section 10 against `handshake::refusal::ALL`. Each table must list exactly
//! those texts, with their codes, in the same order; so a reason or a body added, changed or
//! removed on one side only fails here.

use ticksock_server::__internals::close;
use ticksock_server::__internals::handshake::refusal;
use ticksock_server::api::{CLOSE_BAD_TICKET_REASON, CLOSE_REPLACED, CLOSE_REPLACED_REASON};

/// Where the specification lives, relative to this crate.
const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");

fn doc() -> String {
    std::fs::read_to_string(DOC_PATH).unwrap_or_else(|e| panic!("cannot read {DOC_PATH}: {e}"))
}

/// The body rows of the first table after the line that starts with `marker`, each split
/// into its trimmed cells.
fn table_after(doc: &str, marker: &str) -> Vec<Vec<String>> {
    let start = doc.lines().position(|l| l.starts_with(marker)).unwrap_or_else(|| panic!("no `{marker}`"));
    let rows: Vec<Vec<String>> = doc
        .lines()
        .skip(start + 1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        // No cell of these tables holds a `|` of its own.
        .map(|l| l.trim().trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect())
        .collect();
    assert!(rows.len() > 2, "no table after `{marker}`");
    // The header row and the `|---|` row.
    rows.into_iter().skip(2).collect()
}

/// The text of a Markdown code span: `` `a` `` or ``` `` a `b` `` ```.
fn code_span(cell: &str) -> String {
    if let Some(inner) = cell.strip_prefix("``").and_then(|c| c.strip_suffix("``")) {
        let inner = inner.strip_prefix(' ').and_then(|i| i.strip_suffix(' ')).unwrap_or(inner);
        return inner.to_owned();
    }
    match cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
        Some(inner) => inner.to_owned(),
        None => panic!("not a code span: {cell}"),
    }
}

#[test]
fn the_close_reason_table_lists_exactly_the_reasons_the_server_sends() {
    let documented: Vec<(u16, String)> = table_after(&doc(), "**Close reasons.**")
        .iter()
        .map(|row| {
            let code = row[0].parse().unwrap_or_else(|e| panic!("code {:?}: {e}", row[0]));
            (code, code_span(&row[1]))
        })
        .collect();
    let mut defined: Vec<(u16, String)> = close::REASONS.iter().map(|&(c, r)| (c, r.to_owned())).collect();
    defined.push((CLOSE_REPLACED, CLOSE_REPLACED_REASON.to_owned()));
    defined.push((ticksock_protocol::CLOSE_BAD_TICKET, CLOSE_BAD_TICKET_REASON.to_owned()));
    defined.push((
        ticksock_protocol::CLOSE_AUTH_FAILED,
        ticksock_server::api::CLOSE_AUTH_FAILED_REASON.to_owned(),
    ));
    defined.push((
        ticksock_protocol::CLOSE_AUTH_EXPIRED,
        ticksock_server::api::CLOSE_AUTH_EXPIRED_REASON.to_owned(),
    ));
    defined.push((
        ticksock_protocol::CLOSE_STALLED_READER,
        ticksock_server::__internals::STALLED_READER_REASON.to_owned(),
    ));
    assert_eq!(documented, defined, "docs/PROTOCOL.md section 7.5 against the code");
    for (code, reason) in &defined {
        // RFC 6455 section 5.5: a close payload is at most 125 bytes, 2 of them the code.
        assert!(reason.len() < 123, "the reason of {code} is too long: {reason}");
    }
}

#[test]
fn the_refusal_table_lists_exactly_the_bodies_the_server_sends() {
    let documented: Vec<(u16, String)> = table_after(&doc(), "### Refusals")
        .iter()
        .map(|row| {
            let status_line = code_span(&row[0]);
            let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok());
            let status = status.unwrap_or_else(|| panic!("no status in {status_line}"));
            (status, format!("{}\n", code_span(&row[2])))
        })
        .collect();
    let defined: Vec<(u16, String)> = refusal::ALL.iter().map(|&(s, b)| (s, b.to_owned())).collect();
    assert_eq!(documented, defined, "docs/PROTOCOL.md section 10 against the code");
}
