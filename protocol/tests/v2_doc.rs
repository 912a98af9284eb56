//! Checks what `docs/PROTOCOL.md` says of version 2 that the hex vectors do not cover (those are
//! checked by `arena/tests/vectors.rs`): the JSON examples of section 11.8, the table of resume
//! reasons of section 11.5, and the `stale_request` row of section 6.

use serde_json::Value;
use ticksock_protocol::v2::{self, ClientFrame, ServerFrame};
use ticksock_protocol::{Encoding, Request, Secret, error_code, resume_reason};

/// Where the specification lives, relative to this crate.
const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");

/// The secret and epoch of section 11's examples.
const SECRET: Secret =
    [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
const EPOCH: u64 = 11_400_714_819_323_198_485;

fn doc() -> String {
    std::fs::read_to_string(DOC_PATH).unwrap_or_else(|e| panic!("cannot read {DOC_PATH}: {e}"))
}

/// The text of the section whose heading starts with `heading`, up to the next heading of any
/// level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc.find(heading).unwrap_or_else(|| panic!("no section `{heading}`"));
    let body = &doc[start + heading.len()..];
    let end = body.find("\n#").unwrap_or(body.len());
    &body[..end]
}

/// The lines of each ```json block of `text`, block by block.
fn json_blocks(text: &str) -> Vec<Vec<&str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match (line.trim(), current.take()) {
            ("```json", None) => current = Some(Vec::new()),
            ("```", Some(block)) => blocks.push(block),
            (_, Some(mut block)) => {
                block.push(line);
                current = Some(block);
            }
            (_, None) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```json block");
    blocks
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{:?} is not JSON: {e}", String::from_utf8_lossy(bytes)))
}

/// What the crate writes for `frame`.
fn write_client(frame: &ClientFrame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match *frame {
        ClientFrame::Request { seq, ack, request } => {
            v2::write_raw_request(
                Encoding::Json,
                &mut out,
                seq,
                ack,
                request.id,
                request.route,
                request.body,
            )
            .expect("the example's body is JSON");
        }
        ClientFrame::Ack { ack } => v2::write_client_ack(Encoding::Json, &mut out, ack),
        ClientFrame::Resume { session, epoch, secret, received } => {
            v2::write_resume(Encoding::Json, &mut out, session, epoch, &secret, received)
        }
    }
    out
}

/// What the crate writes for `frame` (a version 2 frame: not Reply, Error or Push).
fn write_server(frame: &ServerFrame<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match frame {
        &ServerFrame::Welcome { version, tick_hz, conn_id, epoch, ref secret } => {
            assert_eq!(version, ticksock_protocol::PROTOCOL_VERSION_2);
            v2::write_welcome(Encoding::Json, &mut out, tick_hz, conn_id, epoch, secret)
        }
        ServerFrame::Resumed { received, secret } => {
            v2::write_resumed(Encoding::Json, &mut out, *received, secret)
        }
        ServerFrame::ResumeFailed { reason, message } => {
            v2::write_resume_failed(Encoding::Json, &mut out, *reason, message)
        }
        ServerFrame::Ack { received } => v2::write_server_ack(Encoding::Json, &mut out, *received),
        other => panic!("{other:?} is a version 1 frame; section 11.8 shows none"),
    }
    out
}

#[test]
fn the_json_examples_of_section_11_8_decode_to_their_frames_and_are_what_the_crate_writes() {
    let doc = doc();
    let blocks = json_blocks(section(&doc, "### 11.8 "));
    let [client_lines, server_lines] = &blocks[..] else {
        panic!("section 11.8 should have two ```json blocks (client, server), has {}", blocks.len())
    };

    let body = br#"{"name": "ann"}"#;
    let client_frames = [
        ClientFrame::Request { seq: 1, ack: 0, request: Request { id: 1, route: "login", body } },
        ClientFrame::Ack { ack: 5 },
        ClientFrame::Resume { session: 1 << 32, epoch: EPOCH, secret: SECRET, received: 5 },
    ];
    assert_eq!(client_lines.len(), client_frames.len(), "client examples: {client_lines:?}");
    for (line, expected) in client_lines.iter().zip(&client_frames) {
        let decoded = v2::decode_client_frame(Encoding::Json, line.as_bytes())
            .unwrap_or_else(|e| panic!("`{line}` does not decode: {e}"));
        match (decoded, expected) {
            (
                ClientFrame::Request { seq, ack, request },
                ClientFrame::Request { seq: want_seq, ack: want_ack, request: want },
            ) => {
                assert_eq!(
                    (seq, ack, request.id, request.route),
                    (*want_seq, *want_ack, want.id, want.route),
                    "{line}"
                );
                assert_eq!(json(request.body), json(want.body), "{line}");
            }
            (decoded, expected) => assert_eq!(&decoded, expected, "{line}"),
        }
        assert_eq!(json(&write_client(expected)), json(line.as_bytes()), "the crate writes another `{line}`");
    }

    let mut reversed = SECRET;
    reversed.reverse();
    let server_frames = [
        ServerFrame::Welcome { version: 2, tick_hz: 30, conn_id: 1 << 32, epoch: EPOCH, secret: SECRET },
        ServerFrame::Resumed { received: 3, secret: reversed },
        ServerFrame::ResumeFailed { reason: resume_reason::ENDED, message: "session ended".into() },
        ServerFrame::Ack { received: 7 },
    ];
    assert_eq!(server_lines.len(), server_frames.len(), "server examples: {server_lines:?}");
    for (line, expected) in server_lines.iter().zip(&server_frames) {
        let decoded = v2::decode_server_frame(Encoding::Json, line.as_bytes())
            .unwrap_or_else(|e| panic!("`{line}` does not decode: {e}"));
        assert_eq!(&decoded, expected, "{line}");
        assert_eq!(json(&write_server(expected)), json(line.as_bytes()), "the crate writes another `{line}`");
    }
}

/// The rows `| <number> | `<name>` | ...` of a table in `text`.
fn numbered_rows(text: &str) -> Vec<(u16, &str)> {
    text.lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix('|')?.split('|').map(str::trim);
            let number = cells.next()?.parse().ok()?;
            let name = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((number, name))
        })
        .collect()
}

#[test]
fn the_reasons_of_section_11_5_are_the_crates() {
    let doc = doc();
    let rows = numbered_rows(section(&doc, "### 11.5 "));
    let numbers: Vec<u16> = rows.iter().map(|&(number, _)| number).collect();
    assert_eq!(numbers, (1..=8).collect::<Vec<u16>>(), "section 11.5 lists reasons 1 to 8 in order");
    for (number, name) in rows {
        assert_eq!(resume_reason::name(number), name, "reason {number}");
    }
}

#[test]
fn section_6_names_code_7_stale_request() {
    let doc = doc();
    let rows = numbered_rows(section(&doc, "## 6. Error codes"));
    assert!(rows.contains(&(error_code::STALE_REQUEST, "stale_request")), "section 6: {rows:?}");
    for (code, name) in rows {
        assert_eq!(error_code::name(code), name, "code {code}");
    }
}

/// The bytes of `text` if it is hex bytes separated by whitespace (`aa bb cc`).
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    text.split_whitespace()
        .map(|pair| {
            let lower_hex =
                pair.len() == 2 && pair.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
            if lower_hex { u8::from_str_radix(pair, 16).ok() } else { None }
        })
        .collect::<Option<Vec<u8>>>()
        .filter(|bytes| !bytes.is_empty())
}

/// Whether `part` occurs in `whole` as a contiguous run.
fn contains(whole: &[u8], part: &[u8]) -> bool {
    whole.windows(part.len()).any(|window| window == part)
}

#[test]
fn every_byte_example_of_section_11_3_is_part_of_a_version_2_vector() {
    let doc = doc();
    // The vectors themselves are checked against the crate by arena/tests/vectors.rs.
    let vectors: Vec<(&str, Vec<u8>)> = doc
        .lines()
        .filter_map(|line| line.strip_prefix("vector: v2_")?.split_once(" = "))
        .map(|(name, bytes)| {
            (name, hex_bytes(bytes).unwrap_or_else(|| panic!("vector v2_{name} is not hex")))
        })
        .collect();
    assert!(vectors.len() >= 8, "the version 2 vectors are missing: {vectors:?}");

    let frames = section(&doc, "### 11.3 ");
    let mut prose = String::new();
    let mut fenced: Option<Vec<u8>> = None;
    let mut checked = 0;
    for line in frames.lines() {
        match (line.trim().starts_with("```"), fenced.take()) {
            (true, None) => fenced = Some(Vec::new()),
            (true, Some(bytes)) => {
                // A fenced example is a whole frame, one field per line, comments after the bytes.
                assert!(
                    vectors.iter().any(|(_, v)| *v == bytes),
                    "fenced example {bytes:02x?} is no v2 vector"
                );
                checked += 1;
            }
            (false, Some(mut bytes)) => {
                let hex: Vec<&str> =
                    line.split_whitespace().take_while(|word| hex_bytes(word).is_some()).collect();
                bytes.extend(hex_bytes(&hex.join(" ")).unwrap_or_default());
                fenced = Some(bytes);
            }
            (false, None) => {
                prose.push_str(line);
                prose.push(' ');
            }
        }
    }
    // Backticked spans alternate with the text around them; spans may wrap onto a new line.
    for span in prose.split('`').skip(1).step_by(2) {
        if let Some(bytes) = hex_bytes(span) {
            let found = vectors.iter().any(|(_, v)| contains(v, &bytes));
            assert!(found, "section 11.3's `{span}` is part of no version 2 vector");
            checked += 1;
        }
    }
    assert!(checked >= 10, "section 11.3 should hold the byte examples of every new frame, found {checked}");
}
