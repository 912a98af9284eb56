//! Version 2 frames: each writer's output decodes back to what was written, in both encodings;
//! the bytes of section 11's examples; and what fails to decode, with or without a callback id.

use std::borrow::Cow;

use super::*;
use crate::json::JsonFrameError;
use crate::{PROTOCOL_VERSION_2, error_code, resume_reason};

const BOTH: [Encoding; 2] = [Encoding::Binary, Encoding::Json];

/// The secret of section 11's examples: 00 11 22 ... ff.
const SECRET: Secret =
    [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];

/// The epoch of section 11's examples, above 2^63 so that it takes all of a u64.
const EPOCH: u64 = 11_400_714_819_323_198_485;

/// Bytes from `aa bb cc`.
fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|pair| u8::from_str_radix(pair, 16).expect("test hex is well-formed"))
        .collect()
}

fn client(encoding: Encoding, message: &[u8]) -> ClientFrame<'_> {
    decode_client_frame(encoding, message).unwrap_or_else(|e| {
        panic!("{encoding:?} {:?} does not decode: {e}", String::from_utf8_lossy(message))
    })
}

fn server(encoding: Encoding, message: &[u8]) -> ServerFrame<'_> {
    decode_server_frame(encoding, message).unwrap_or_else(|e| {
        panic!("{encoding:?} {:?} does not decode: {e}", String::from_utf8_lossy(message))
    })
}

/// The callback id of a client frame that fails to decode: `Err` if it decodes.
fn client_error_id(encoding: Encoding, message: &[u8]) -> Result<Option<u32>, String> {
    match decode_client_frame(encoding, message) {
        Ok(frame) => Err(format!("{:?} decodes as {frame:?}", String::from_utf8_lossy(message))),
        Err(e) => Ok(e.callback_id()),
    }
}

fn json_client_error_id(text: &str) -> Result<Option<u32>, String> {
    client_error_id(Encoding::Json, text.as_bytes())
}

#[test]
fn every_client_frame_round_trips_in_both_encodings() {
    for encoding in BOTH {
        let mut out = Vec::new();
        write_request(encoding, &mut out, u64::MAX, u64::MAX - 1, u32::MAX, "add", &5u64).expect("encodes");
        let ClientFrame::Request { seq, ack, request } = client(encoding, &out) else {
            panic!("not a request")
        };
        assert_eq!((seq, ack, request.id, request.route), (u64::MAX, u64::MAX - 1, u32::MAX, "add"));
        assert_eq!(crate::decode_body_as::<u64>(encoding, request.body).expect("body"), 5);

        let raw_body: &[u8] = if encoding.is_text() { br#"{"a":[1,2]}"# } else { &[0xde, 0xad] };
        out.clear();
        write_raw_request(encoding, &mut out, 1, 0, 0, "echo", raw_body).expect("encodes");
        assert_eq!(
            client(encoding, &out),
            ClientFrame::Request {
                seq: 1,
                ack: 0,
                request: Request { id: 0, route: "echo", body: raw_body }
            }
        );

        out.clear();
        write_client_ack(encoding, &mut out, 300);
        assert_eq!(client(encoding, &out), ClientFrame::Ack { ack: 300 });

        let every_byte: Secret = std::array::from_fn(|i| (i * 17) as u8 ^ 0x5a);
        for (session, epoch, secret, received) in
            [(0, 0, [0; SECRET_LEN], 0), (u64::MAX, EPOCH, every_byte, 70_000)]
        {
            out.clear();
            write_resume(encoding, &mut out, session, epoch, &secret, received);
            assert_eq!(client(encoding, &out), ClientFrame::Resume { session, epoch, secret, received });
        }
    }
}

#[test]
fn every_server_frame_round_trips_in_both_encodings() {
    for encoding in BOTH {
        let mut out = Vec::new();
        write_welcome(encoding, &mut out, 30, u64::MAX, EPOCH, &SECRET);
        assert_eq!(
            server(encoding, &out),
            ServerFrame::Welcome {
                version: PROTOCOL_VERSION_2,
                tick_hz: 30,
                conn_id: u64::MAX,
                epoch: EPOCH,
                secret: SECRET
            }
        );
        out.clear();
        write_resumed(encoding, &mut out, u64::MAX, &[0xff; SECRET_LEN]);
        assert_eq!(
            server(encoding, &out),
            ServerFrame::Resumed { received: u64::MAX, secret: [0xff; SECRET_LEN] }
        );
        out.clear();
        write_resume_failed(encoding, &mut out, resume_reason::GAP_LOST, "a \"quoted\" é");
        assert_eq!(
            server(encoding, &out),
            ServerFrame::ResumeFailed { reason: resume_reason::GAP_LOST, message: "a \"quoted\" é".into() }
        );
        out.clear();
        write_server_ack(encoding, &mut out, 7);
        assert_eq!(server(encoding, &out), ServerFrame::Ack { received: 7 });
    }
}

#[test]
fn version_1_reply_error_and_push_are_version_2_frames() {
    for encoding in BOTH {
        let mut out = Vec::new();
        crate::write_reply(encoding, &mut out, 9, "ok").expect("reply");
        let ServerFrame::Reply { id, body } = server(encoding, &out) else { panic!("not a reply") };
        assert_eq!((id, crate::decode_body_as::<String>(encoding, body).expect("body")), (9, "ok".into()));
        out.clear();
        crate::write_error(encoding, &mut out, 3, error_code::STALE_REQUEST, "gone");
        assert_eq!(
            server(encoding, &out),
            ServerFrame::Error { id: 3, code: error_code::STALE_REQUEST, message: "gone".into() }
        );
        out.clear();
        crate::write_push(encoding, &mut out, "state", &vec![1u8, 2]).expect("push");
        let ServerFrame::Push { topic, body } = server(encoding, &out) else { panic!("not a push") };
        assert_eq!(topic, "state");
        assert_eq!(crate::decode_body_as::<Vec<u8>>(encoding, body).expect("body"), [1, 2]);
        out.clear();
        crate::write_reply_at(encoding, &mut out, 4, Some(300), "ok").expect("tick reply");
        let ServerFrame::TickReply { id, tick, body } = server(encoding, &out) else {
            panic!("not a tick reply")
        };
        assert_eq!((id, tick), (4, 300));
        assert_eq!(crate::decode_body_as::<String>(encoding, body).expect("body"), "ok");
    }
}

#[test]
fn binary_frames_are_the_bytes_of_section_11() {
    let mut out = Vec::new();
    write_raw_request(Encoding::Binary, &mut out, 1, 0, 1, "echo", &[0xde, 0xad]).expect("encodes");
    assert_eq!(out, hex("00 01 00 01 04 65 63 68 6f de ad"));
    out.clear();
    write_client_ack(Encoding::Binary, &mut out, 300);
    assert_eq!(out, hex("01 fb 2c 01"));
    out.clear();
    write_resume(Encoding::Binary, &mut out, 1 << 32, EPOCH, &SECRET, 5);
    assert_eq!(
        out,
        hex("02 fd 00 00 00 00 01 00 00 00 fd 15 7c 4a 7f b9 79 37 9e
             00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 05")
    );
    out.clear();
    write_welcome(Encoding::Binary, &mut out, 30, 1 << 32, EPOCH, &SECRET);
    assert_eq!(
        out,
        hex("00 02 1e fd 00 00 00 00 01 00 00 00 fd 15 7c 4a 7f b9 79 37 9e
             00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff")
    );
    out.clear();
    let mut reversed = SECRET;
    reversed.reverse();
    write_resumed(Encoding::Binary, &mut out, 3, &reversed);
    assert_eq!(out, hex("04 03 ff ee dd cc bb aa 99 88 77 66 55 44 33 22 11 00"));
    out.clear();
    write_resume_failed(Encoding::Binary, &mut out, resume_reason::ENDED, "session ended");
    assert_eq!(out, hex("05 02 0d 73 65 73 73 69 6f 6e 20 65 6e 64 65 64"));
    out.clear();
    write_server_ack(Encoding::Binary, &mut out, 7);
    assert_eq!(out, hex("06 07"));
}

#[test]
fn json_frames_are_written_in_the_order_of_section_11_8() {
    let mut out = Vec::new();
    write_request(Encoding::Json, &mut out, 1, 0, 1, "login", &serde_json::json!({"name": "ann"}))
        .expect("encodes");
    assert_eq!(out, br#"{"type":"request","seq":1,"ack":0,"id":1,"route":"login","body":{"name":"ann"}}"#);
    out.clear();
    write_resume(Encoding::Json, &mut out, 1 << 32, EPOCH, &SECRET, 5);
    assert_eq!(
        out,
        br#"{"type":"resume","session":"4294967296","epoch":"11400714819323198485","secret":"00112233445566778899aabbccddeeff","received":5}"#
    );
    out.clear();
    write_welcome(Encoding::Json, &mut out, 30, 1 << 32, EPOCH, &SECRET);
    assert_eq!(
        out,
        br#"{"type":"welcome","version":2,"tick_hz":30,"conn_id":"4294967296","epoch":"11400714819323198485","secret":"00112233445566778899aabbccddeeff"}"#
    );
}

#[test]
fn writers_append_and_a_failed_write_leaves_the_buffer_alone() {
    let mut out = b"kept".to_vec();
    assert!(write_raw_request(Encoding::Json, &mut out, 1, 0, 1, "echo", b"{not json").is_err());
    assert_eq!(out, b"kept");
    write_client_ack(Encoding::Binary, &mut out, 2);
    assert_eq!(out, b"kept\x01\x02");
}

#[test]
fn debug_output_never_shows_a_secret() {
    let secret = [0xab; SECRET_LEN];
    let frames = [
        format!("{:?}", ClientFrame::Resume { session: 1, epoch: 2, secret, received: 3 }),
        format!("{:?}", ServerFrame::Welcome { version: 2, tick_hz: 30, conn_id: 1, epoch: 2, secret }),
        format!("{:?}", ServerFrame::Resumed { received: 3, secret }),
    ];
    for text in frames {
        assert!(text.contains("<secret>") && !text.contains("171"), "{text}");
    }
}

#[test]
fn a_binary_request_without_a_readable_seq_ack_or_id_has_no_callback_id() {
    let cases: [(&str, &str); 7] = [
        ("", "empty"),
        ("00", "no seq"),
        ("00 fd 01 02", "seq cut short"),
        ("00 ff", "seq with the invalid marker ff"),
        ("00 01", "no ack"),
        ("00 01 fc 01", "ack cut short"),
        ("00 01 00 fd 00 00 00 00 01 00 00 00 04 65 63 68 6f", "an id wider than u32"),
    ];
    for (bytes, what) in cases {
        assert_eq!(client_error_id(Encoding::Binary, &hex(bytes)), Ok(None), "{what}");
    }
    let err = decode_client_frame(Encoding::Binary, &hex("00 01 fc 01")).expect_err("ack cut short");
    assert!(matches!(err, FrameError::Malformed { field: "ack", .. }), "{err:?}");
}

#[test]
fn a_binary_request_whose_route_fails_after_the_id_carries_the_id() {
    for (bytes, what) in [
        ("00 01 00 2a", "no route"),
        ("00 01 00 2a 04 65 63", "route cut short"),
        ("00 01 00 2a 02 ff fe", "route not UTF-8"),
        ("00 01 00 2a fd ff ff ff ff ff ff ff 7f", "route claiming 2^63 bytes, past the decode limit"),
    ] {
        assert_eq!(client_error_id(Encoding::Binary, &hex(bytes)), Ok(Some(42)), "{what}");
    }
}

#[test]
fn binary_acks_and_resumes_that_do_not_decode_have_no_callback_id() {
    for (bytes, field) in [
        ("01", "ack"),
        ("01 fb 2c", "ack"),
        ("02", "session"),
        ("02 05 fd 00", "epoch"),
        ("02 05 06 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee", "secret"),
        ("02 05 06 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff", "received"),
    ] {
        let err = decode_client_frame(Encoding::Binary, &hex(bytes)).expect_err(bytes);
        assert_eq!(err.callback_id(), None, "{bytes}");
        assert!(matches!(err, FrameError::Malformed { field: f, .. } if f == field), "{bytes}: {err:?}");
    }
    let err = decode_client_frame(Encoding::Binary, &[3]).expect_err("tag 3");
    assert!(matches!(err, FrameError::UnknownKind { tag: Some(3) }), "{err:?}");
}

#[test]
fn binary_server_frames_that_do_not_decode_are_errors() {
    for (bytes, what) in [
        ("00 02 1e fd 00 00 00 00 01 00 00 00 07 00 11 22", "welcome secret cut short"),
        ("00 02 1e 05", "welcome without epoch"),
        ("04 03 ff ee dd", "resumed secret cut short"),
        ("05 fc 02 00 00 00 00", "resume_failed reason wider than u16"),
        ("05 02 02 ff fe", "resume_failed message not UTF-8"),
        ("06", "ack without received"),
        ("07", "unknown tag"),
        ("", "empty"),
    ] {
        assert!(decode_server_frame(Encoding::Binary, &hex(bytes)).is_err(), "{what}");
    }
}

#[test]
fn a_json_request_without_a_readable_seq_ack_or_id_has_no_callback_id() {
    for text in [
        r#"{"seq":1,"ack":0,"id":1,"route":"x"}"#,
        r#"{"type":null,"seq":1,"ack":0,"id":1,"route":"x"}"#,
        r#"{"type":"requ\u0065st","seq":1,"ack":0,"id":1,"route":"x"}"#,
        r#"{"type":"reply","seq":1,"ack":0,"id":1,"route":"x"}"#,
        r#"{"type":"request","ack":0,"id":1,"route":"x"}"#,
        r#"{"type":"request","seq":null,"ack":0,"id":1,"route":"x"}"#,
        r#"{"type":"request","seq":"1","ack":0,"id":1,"route":"x"}"#,
        r#"{"type":"request","seq":1.0,"ack":0,"id":1,"route":"x"}"#,
        r#"{"type":"request","seq":-1,"ack":0,"id":1,"route":"x"}"#,
        r#"{"type":"request","seq":1,"id":1,"route":"x"}"#,
        r#"{"type":"request","seq":1,"ack":18446744073709551616,"id":1,"route":"x"}"#,
        r#"{"type":"request","seq":1,"ack":0,"route":"x"}"#,
        r#"{"type":"request","seq":1,"ack":0,"id":4294967296,"route":"x"}"#,
        r#"{"type":"request","seq":1,"seq":2,"ack":0,"id":1,"route":"x"}"#,
        r#"{"type":"request","seq":1,"ack":0,"id":1,"route":"x","secret":1,"secret":2}"#,
        r#"{"type":"request","seq":1,"ack":0,"id":1,"route":"x""#,
        "[1, 2]",
        "",
    ] {
        assert_eq!(json_client_error_id(text), Ok(None), "{text}");
    }
    assert_eq!(client_error_id(Encoding::Json, b"\xff"), Ok(None), "not UTF-8");
}

#[test]
fn a_json_request_whose_route_fails_after_the_id_carries_the_id() {
    for text in [
        r#"{"type":"request","seq":1,"ack":0,"id":7}"#,
        r#"{"type":"request","seq":1,"ack":0,"id":7,"route":5}"#,
        r#"{"type":"request","seq":1,"ack":0,"id":7,"route":"a\u0062"}"#,
    ] {
        assert_eq!(json_client_error_id(text), Ok(Some(7)), "{text}");
    }
}

#[test]
fn a_json_request_borrows_its_route_and_body_and_ignores_other_keys() {
    let text = r#"{"trace":[1],"type":"request","seq":3,"ack":2,"secret":5,"id":1,"route":"echo","body": {"a": 1} }"#;
    let ClientFrame::Request { seq, ack, request } = client(Encoding::Json, text.as_bytes()) else {
        panic!("not a request")
    };
    assert_eq!((seq, ack, request.id, request.route, request.body), (3, 2, 1, "echo", &br#"{"a": 1}"#[..]));
    let no_body = br#"{"type":"request","seq":1,"ack":0,"id":1,"route":"rooms"}"#;
    let ClientFrame::Request { request, .. } = client(Encoding::Json, no_body) else {
        panic!("not a request")
    };
    assert_eq!(request.body, b"null", "a request without a body has a null body, as in version 1");
}

#[test]
fn json_acks_and_resumes_that_do_not_decode_have_no_callback_id() {
    let resume = |session: &str, epoch: &str, secret: &str| {
        format!(r#"{{"type":"resume","session":{session},"epoch":{epoch},"secret":{secret},"received":5}}"#)
    };
    let good_secret = r#""00112233445566778899aabbccddeeff""#;
    assert_eq!(
        client(Encoding::Json, resume(r#""18446744073709551615""#, r#""0""#, good_secret).as_bytes()),
        ClientFrame::Resume { session: u64::MAX, epoch: 0, secret: SECRET, received: 5 }
    );
    let mut bad = vec![
        r#"{"type":"ack"}"#.to_owned(),
        r#"{"type":"ack","ack":"5"}"#.to_owned(),
        r#"{"type":"resume","session":"1","epoch":"2","secret":"00112233445566778899aabbccddeeff"}"#
            .to_owned(),
    ];
    for session in
        ["1", r#""""#, r#""+1""#, r#""-1""#, r#""01""#, r#"" 1""#, r#""1e3""#, r#""18446744073709551616""#]
    {
        bad.push(resume(session, r#""2""#, good_secret));
        bad.push(resume(r#""1""#, session, good_secret));
    }
    for secret in [
        r#""00112233445566778899aabbccddeef""#,   // 31 digits
        r#""00112233445566778899aabbccddeeff0""#, // 33 digits
        r#""00112233445566778899AABBCCDDEEFF""#,  // upper case
        r#""0011223344556677889900aabbccddgg""#,  // not hex
        r#""00112233445566778899aabbccdde\u0065ff""#,
        r#""0011223344556677889900aabbccdd""#, // 30 digits: 15 bytes
        "null",
        "[0,17,34,51,68,85,102,119,136,153,170,187,204,221,238,255]",
    ] {
        bad.push(resume(r#""1""#, r#""2""#, secret));
    }
    for text in &bad {
        let err = decode_client_frame(Encoding::Json, text.as_bytes()).expect_err(text);
        assert!(matches!(err, FrameError::Json(JsonFrameError::NoId(_))), "{text}: {err:?}");
    }
}

#[test]
fn json_server_frames_that_do_not_decode_are_errors() {
    for text in [
        r#"{"version":2,"tick_hz":30,"conn_id":"1","epoch":"2","secret":"00112233445566778899aabbccddeeff"}"#,
        r#"{"type":"welcome","version":2,"tick_hz":30,"conn_id":"1","secret":"00112233445566778899aabbccddeeff"}"#,
        r#"{"type":"welcome","version":2,"tick_hz":30,"conn_id":1,"epoch":"2","secret":"00112233445566778899aabbccddeeff"}"#,
        r#"{"type":"welcome","version":2,"tick_hz":30,"conn_id":"1","epoch":"2","secret":"0011"}"#,
        r#"{"type":"resumed","received":3}"#,
        r#"{"type":"resume_failed","reason":70000,"message":"x"}"#,
        r#"{"type":"resume_failed","reason":2}"#,
        r#"{"type":"ack","ack":7}"#,
        r#"{"type":"reply"}"#,
        r#"{"type":"hello"}"#,
    ] {
        assert!(decode_server_frame(Encoding::Json, text.as_bytes()).is_err(), "{text}");
    }
    let escaped = br#"{"type":"resume_failed","reason":2,"message":"a\nb"}"#;
    let ServerFrame::ResumeFailed { message, .. } = server(Encoding::Json, escaped) else {
        panic!("not one")
    };
    assert!(matches!(message, Cow::Owned(ref m) if m == "a\nb"));
    let plain = br#"{"type":"resume_failed","reason":2,"message":"ab"}"#;
    let ServerFrame::ResumeFailed { message, .. } = server(Encoding::Json, plain) else { panic!("not one") };
    assert!(matches!(message, Cow::Borrowed("ab")));
}
