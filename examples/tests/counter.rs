//! The counter game through the test harness, on a simulated clock: `add` and its refusals, the
//! total pushed at connect and then every `push_every` ticks exactly, in both encodings and in
//! the JSON text the page reads. No socket and no waiting: what a call or a tick pushes is
//! queued when it returns. (The program serving its page over HTTP is tested in `programs.rs`.)

use std::time::Duration;

use serde_json::json;
use ticksock_examples::counter::{self, Counter, ERR_OVERFLOW, GROUP, ROUTE_ADD, TOPIC_TOTAL};
use ticksock_server::testing::{CallError, Encoding, TestClient, TestServer, error_code};

const BOTH: [Encoding; 2] = [Encoding::Binary, Encoding::Json];

/// So many ticks between pushes that none comes in a test that never ticks that far.
const NEVER: u32 = u32::MAX;

fn add(server: &mut TestServer<Counter>, client: TestClient, n: i64) -> Result<i64, CallError> {
    server.call(client, ROUTE_ADD, &n)
}

/// The totals pushed to `client` so far, taken.
fn totals(server: &mut TestServer<Counter>, client: TestClient) -> Vec<i64> {
    server.pushes(client, TOPIC_TOTAL)
}

/// The error code of a call that must fail.
fn code<T: std::fmt::Debug>(answer: Result<T, CallError>) -> u16 {
    answer.expect_err("the call must fail").code
}

#[test]
fn add_answers_the_new_total_which_every_connection_shares() {
    let mut server = TestServer::new(Counter::new(NEVER));
    let [ann, bob] = BOTH.map(|encoding| server.connect(encoding));
    assert_eq!(add(&mut server, ann, 5), Ok(5));
    assert_eq!(add(&mut server, bob, -2), Ok(3));
    assert_eq!(add(&mut server, ann, 0), Ok(3));
    assert_eq!(server.game().total(), 3);
    for client in [ann, bob] {
        assert_eq!(totals(&mut server, client), [0], "only the push at connect: an add pushes nothing");
        assert_eq!(server.frames(client).count(), 0, "{:?}: nothing else", client.encoding());
    }
}

#[test]
fn an_add_that_would_overflow_is_refused_and_leaves_the_total() {
    for encoding in BOTH {
        let mut server = TestServer::new(Counter::new(NEVER));
        let client = server.connect(encoding);
        assert_eq!(add(&mut server, client, i64::MAX), Ok(i64::MAX));
        let refused = add(&mut server, client, 1).expect_err("past i64::MAX");
        assert_eq!(
            refused,
            CallError { code: ERR_OVERFLOW, message: format!("adding 1 to {} overflows", i64::MAX) },
            "{encoding:?}"
        );
        assert_eq!(
            add(&mut server, client, -1),
            Ok(i64::MAX - 1),
            "the total was left, the connection goes on"
        );
        assert_eq!(add(&mut server, client, i64::MIN), Ok(-2));
        assert_eq!(add(&mut server, client, i64::MIN + 2), Ok(i64::MIN));
        assert_eq!(code(add(&mut server, client, -1)), ERR_OVERFLOW, "past i64::MIN");
        assert_eq!(server.game().total(), i64::MIN);
    }
}

#[test]
fn a_body_that_is_not_an_i64_is_refused_as_bad_body() {
    let mut server = TestServer::new(Counter::new(NEVER));
    let [binary, json] = BOTH.map(|encoding| server.connect(encoding));
    assert_eq!(add(&mut server, binary, 4), Ok(4));
    assert_eq!(code(server.call::<_, i64>(binary, ROUTE_ADD, "one")), error_code::BAD_BODY);
    assert_eq!(code(server.call::<_, i64>(binary, ROUTE_ADD, &())), error_code::BAD_BODY, "no body at all");
    // What a page could send for a number: a fraction, a string, null, or past i64.
    for bad in [json!(1.5), json!("5"), json!(null), json!(u64::MAX)] {
        assert_eq!(code(server.call::<_, i64>(json, ROUTE_ADD, &bad)), error_code::BAD_BODY, "{bad}");
    }
    assert_eq!(server.game().total(), 4, "no refused call changed it");
    assert_eq!(add(&mut server, json, 1), Ok(5), "both connections go on");
    assert_eq!(add(&mut server, binary, 1), Ok(6));
}

#[test]
fn a_new_connection_gets_the_total_at_once_and_the_others_do_not() {
    let mut server = TestServer::new(Counter::new(NEVER));
    let ann = server.connect(Encoding::Binary);
    assert_eq!(totals(&mut server, ann), [0]);
    assert_eq!(add(&mut server, ann, 7), Ok(7));
    let bob = server.connect(Encoding::Json);
    assert_eq!(totals(&mut server, bob), [7], "the total as it is, without waiting for a tick");
    assert_eq!(server.ticks_run(), 0);
    assert_eq!(totals(&mut server, ann), [] as [i64; 0], "bob's connect pushes to bob alone");
}

#[test]
fn the_total_is_pushed_to_everyone_every_push_every_ticks_and_not_before() {
    let mut server = TestServer::new(Counter::new(3));
    let [ann, bob] = BOTH.map(|encoding| server.connect(encoding));
    for client in [ann, bob] {
        totals(&mut server, client);
    }
    // Tick by tick: which ticks pushed, and what each client got.
    let mut pushed = Vec::new();
    for n in 1..=9 {
        assert_eq!(add(&mut server, ann, 1), Ok(n));
        server.advance_ticks(1);
        let (to_ann, to_bob) = (totals(&mut server, ann), totals(&mut server, bob));
        assert_eq!(to_ann, to_bob, "after tick {n}: everyone gets the same push");
        if !to_ann.is_empty() {
            pushed.push((server.ticks_run(), to_ann));
        }
    }
    assert_eq!(pushed, [(3, vec![3]), (6, vec![6]), (9, vec![9])], "the total as it is on every third tick");
}

#[test]
fn a_late_joiner_is_pushed_on_the_games_cadence_and_a_leaver_is_not() {
    let mut server = TestServer::new(Counter::new(3));
    let ann = server.connect(Encoding::Binary);
    server.advance_ticks(2);
    let bob = server.connect(Encoding::Json);
    assert_eq!(totals(&mut server, bob), [0], "at connect");
    server.advance_ticks(1);
    assert_eq!(totals(&mut server, bob), [0], "on tick 3, one tick after it connected");
    assert_eq!(totals(&mut server, ann), [0, 0], "at connect and on tick 3");

    server.disconnect(bob);
    assert_eq!(server.hub().members(GROUP).collect::<Vec<_>>(), [ann.conn()], "bob left the group");
    server.advance_ticks(3);
    assert_eq!(totals(&mut server, ann), [0]);
}

#[test]
fn at_the_programs_tick_rate_the_total_is_pushed_once_a_second() {
    // As `examples/counter.rs` runs it: 10 ticks a second, a push every 10 ticks.
    const TICK_HZ: u16 = 10;
    let mut server = TestServer::with_tick_hz(Counter::new(u32::from(TICK_HZ)), TICK_HZ);
    let start = server.now();
    let client = server.connect(Encoding::Json);
    assert_eq!(totals(&mut server, client), [0]);
    server.advance(Duration::from_millis(999));
    assert_eq!(totals(&mut server, client), [] as [i64; 0], "not before a second");
    server.advance(Duration::from_millis(1));
    assert_eq!(totals(&mut server, client), [0], "at one second");
    assert_eq!(add(&mut server, client, 2), Ok(2));
    server.advance(Duration::from_secs(2));
    assert_eq!(totals(&mut server, client), [2, 2], "at two and three seconds");
    assert_eq!(server.now() - start, Duration::from_secs(3));
}

#[test]
fn the_page_gets_add_and_total_as_plain_json_numbers() {
    let mut server = TestServer::new(Counter::new(1));
    let page = server.connect(Encoding::Json);
    let frames = |server: &TestServer<Counter>| -> Vec<String> {
        server.frames(page).map(|f| String::from_utf8(f.to_vec()).expect("JSON text")).collect()
    };
    assert_eq!(frames(&server), [r#"{"type":"push","topic":"total","body":0}"#]);
    totals(&mut server, page);
    // As the page calls it: `client.call("add", n)` sends `{"id":..,"route":"add","body":5}`.
    let id = server.send(page, ROUTE_ADD, &json!(5));
    assert_eq!(frames(&server), [format!(r#"{{"type":"reply","id":{id},"body":5}}"#)]);
    assert_eq!(server.answer::<serde_json::Value>(page, id), Some(Ok(json!(5))));
    server.advance_ticks(1);
    assert_eq!(frames(&server), [r#"{"type":"push","topic":"total","body":5}"#]);
    totals(&mut server, page);
    // An error reply carries the code and message the page shows.
    let id = server.send(page, ROUTE_ADD, &json!(i64::MAX));
    let [error] = frames(&server).try_into().expect("one frame, the error");
    let error: serde_json::Value = serde_json::from_str(&error).expect("JSON");
    assert_eq!(
        error,
        json!({"type": "error", "id": id, "code": ERR_OVERFLOW, "message": format!("adding {} to 5 overflows", i64::MAX)})
    );
}

#[test]
fn the_page_calls_add_listens_for_total_and_imports_the_browser_client() {
    let files = counter::page();
    let (page, content_type) = files.get("/").expect("a page at /");
    assert_eq!(content_type, "text/html; charset=utf-8");
    let page = std::str::from_utf8(page).expect("UTF-8");
    for needed in [
        r#"import { TicksockClient } from "/ticksock.js";"#,
        r#"client.call("add", n)"#,
        r#"client.on("total""#,
    ] {
        assert!(page.contains(needed), "the page has {needed}");
    }
    let (script, content_type) = files.get("/ticksock.js").expect("the browser client");
    assert_eq!(content_type, "text/javascript; charset=utf-8");
    assert_eq!(script, include_bytes!("../../web/dist/ticksock.js"));
}
