//! The sans-I/O session against a fake server made of frames: timeouts, id wraparound,
//! outcomes, the offline queue, backoff, heartbeat. Time is simulated, so these are exact and
//! fast. (Over 600 lines: a list of independent tests, one behaviour each, that share one
//! small fake server at the top.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ticksock_client::{CallId, CallOptions, Config, Error, Event, LinkCommand, LinkState, Outcome, Session};
use ticksock_protocol::{ClientFrame, ServerFrame, Version};

const MS: Duration = Duration::from_millis(1);

fn config() -> Config {
    Config {
        call_timeout: 1000 * MS,
        heartbeat_interval: 100 * MS,
        idle_timeout: 350 * MS,
        connect_timeout: 500 * MS,
        backoff_initial: 100 * MS,
        backoff_max: 1000 * MS,
        backoff_jitter: 0.5,
        max_attempts: Some(5),
        stable_after: 2000 * MS,
        jitter_seed: Some(42),
        ..Config::default()
    }
}

fn welcome() -> Vec<u8> {
    ServerFrame::Welcome { version: ticksock_protocol::PROTOCOL_VERSION, tick_hz: 30, conn_id: 7 }.to_vec()
}

fn reply(id: u32, body: &[u8]) -> Vec<u8> {
    ServerFrame::Reply { id, body }.to_vec()
}

fn reply_u32(id: u32, value: u32) -> Vec<u8> {
    reply(id, &ticksock_protocol::encode_body(&value).expect("encodes"))
}

/// A session connected at `t0` (welcome received).
fn connected(config: Config, t0: Instant) -> Session {
    let mut s = Session::new(config, t0);
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V1, t0);
    s.handle_frame(&welcome(), t0);
    assert!(matches!(s.poll_event(), Some(Event::Connected { tick_hz: 30, conn_id: 7 })));
    assert!(s.is_connected());
    s
}

/// Every request frame the session wants sent: (id, route, body).
fn sent(s: &mut Session) -> Vec<(u32, String, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(frame) = s.poll_transmit() {
        match ClientFrame::decode(&frame).expect("a valid request") {
            ClientFrame::Request { id, route, body } => out.push((id, route.to_owned(), body.to_vec())),
        }
    }
    out
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn outcomes(s: &mut Session) -> Vec<(CallId, Outcome)> {
    events(s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Outcome { id, outcome, .. } => Some((id, outcome)),
            _ => None,
        })
        .collect()
}

#[test]
fn answers_are_matched_by_id_in_any_order() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0);
    let ids: Vec<CallId> = (0..5u32).map(|n| s.call("double", &n, t0).expect("call")).collect();
    let wire = sent(&mut s);
    assert_eq!(wire.iter().map(|w| CallId(w.0)).collect::<Vec<_>>(), ids);
    // Answer in reverse order, each with its own value.
    for (n, (id, _, _)) in wire.iter().enumerate().rev() {
        s.handle_frame(&reply_u32(*id, n as u32 * 2), t0 + 5 * MS);
    }
    let got = outcomes(&mut s);
    assert_eq!(got.len(), 5);
    for (id, outcome) in got {
        let n = ids.iter().position(|i| *i == id).expect("a known id") as u32;
        assert_eq!(outcome.decode::<u32>().expect("a reply"), n * 2);
    }
    assert_eq!(s.pending_calls(), 0);
}

#[test]
fn a_timeout_frees_the_entry_and_a_late_answer_is_dropped() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0);
    let id = s.call_with("never", &(), CallOptions::default().timeout(200 * MS), t0).expect("call");
    let other = s.call("double", &1u32, t0).expect("call");
    assert_eq!(sent(&mut s).len(), 2);
    assert_eq!(s.poll_timeout(), Some(t0 + 100 * MS), "the heartbeat comes first");
    s.handle_frame(&reply_u32(other.0, 2), t0 + 10 * MS);
    s.handle_timeout(t0 + 199 * MS);
    assert!(s.is_pending(id), "not before its deadline");
    s.handle_timeout(t0 + 200 * MS);
    let got = outcomes(&mut s);
    assert_eq!(got, vec![(other, Outcome::Reply(vec![2])), (id, Outcome::Timeout)]);
    assert!(!s.is_pending(id), "the entry is freed on timeout");
    assert_eq!(s.pending_calls(), 0);
    // The answer after the timeout is dropped and counted, and produces no second outcome.
    s.handle_frame(&reply(id.0, &[]), t0 + 300 * MS);
    assert_eq!(s.stats().late_answers, 1);
    assert!(outcomes(&mut s).is_empty());
    assert_eq!(s.stats().timeouts, 1);
}

#[test]
fn ids_wrap_around_u32_and_never_reuse_an_id_in_flight() {
    let t0 = Instant::now();
    let mut s = connected(Config { call_timeout: Duration::from_secs(60), ..config() }, t0);
    s.set_next_call_id(u32::MAX - 2);
    let held = s.call("never", &(), t0).expect("call");
    let wrapped: Vec<CallId> = (0..3).map(|_| s.call("double", &1u32, t0).expect("call")).collect();
    assert_eq!(held, CallId(u32::MAX - 2));
    assert_eq!(wrapped, vec![CallId(u32::MAX - 1), CallId(u32::MAX), CallId(0)]);
    let wire: Vec<u32> = sent(&mut s).into_iter().map(|w| w.0).collect();
    assert_eq!(wire, vec![u32::MAX - 2, u32::MAX - 1, u32::MAX, 0]);
    for id in &wrapped {
        s.handle_frame(&reply_u32(id.0, 2), t0 + MS);
    }
    assert_eq!(outcomes(&mut s).len(), 3);
    assert!(s.is_pending(held));

    // The counter comes round again (as after 2^32 calls) while `held` is still in flight.
    s.set_next_call_id(u32::MAX - 3);
    let a = s.call("double", &1u32, t0).expect("call");
    let b = s.call("double", &1u32, t0).expect("call");
    assert_eq!(a, CallId(u32::MAX - 3));
    assert_eq!(b, CallId(u32::MAX - 1), "the id in flight is skipped");
    assert_ne!(b, held);
    sent(&mut s);
    // Answers still reach the right calls.
    s.handle_frame(&reply_u32(held.0, 99), t0 + 2 * MS);
    s.handle_frame(&reply_u32(b.0, 5), t0 + 2 * MS);
    s.handle_frame(&reply_u32(a.0, 4), t0 + 2 * MS);
    let got = outcomes(&mut s);
    assert_eq!(
        got,
        vec![(held, Outcome::Reply(vec![99])), (b, Outcome::Reply(vec![5])), (a, Outcome::Reply(vec![4]))]
    );
    assert_eq!(s.pending_calls(), 0);
}

#[test]
fn every_call_gets_exactly_one_outcome_through_its_callback() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0);
    let calls = Arc::new(AtomicUsize::new(0));
    let count = |calls: &Arc<AtomicUsize>| {
        let calls = calls.clone();
        move |_: &mut Session, _: Outcome| {
            calls.fetch_add(1, Ordering::SeqCst);
        }
    };
    let replied = s.call_then("a", &(), t0, count(&calls)).expect("call");
    let errored = s.call_then("b", &(), t0, count(&calls)).expect("call");
    let _timed_out =
        s.call_with("c", &(), CallOptions::default().timeout(50 * MS).then(count(&calls)), t0).expect("call");
    let dropped = s.call_then("d", &(), t0, count(&calls)).expect("call");
    sent(&mut s);
    s.handle_frame(&reply(replied.0, &[]), t0 + MS);
    s.handle_frame(&ServerFrame::Error { id: errored.0, code: 1001, message: "no".into() }.to_vec(), t0 + MS);
    s.handle_timeout(t0 + 50 * MS);
    s.handle_disconnect(t0 + 60 * MS); // `dropped` was in flight.
    let queued = s.call_then("e", &(), t0 + 70 * MS, count(&calls)).expect("queued offline");
    s.close(t0 + 80 * MS); // `queued` was never sent.
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    // Nothing more can happen to them.
    s.handle_frame(&reply(replied.0, &[]), t0 + 90 * MS);
    s.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(s.pending_calls(), 0);
    let st = *s.stats();
    assert_eq!((st.replies, st.errors, st.timeouts, st.disconnected, st.closed), (1, 1, 1, 1, 1));
    assert!(outcomes(&mut s).is_empty(), "callbacks, not events");
    let _ = (dropped, queued);
    assert!(matches!(s.call("f", &(), t0), Err(Error::Closed)));
}

#[test]
fn a_queued_call_can_be_withdrawn_and_is_then_never_sent_nor_answered() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0);
    let sent_call = s.call("a", &1u32, t0).expect("call");
    sent(&mut s);
    s.handle_disconnect(t0 + 10 * MS);
    events(&mut s);
    // Offline: two calls queue; the first is withdrawn.
    let withdrawn = s.call("b", &2u32, t0 + 20 * MS).expect("queued");
    let kept = s.call("c", &3u32, t0 + 20 * MS).expect("queued");
    assert!(s.withdraw_queued(withdrawn));
    assert!(!s.withdraw_queued(withdrawn), "once");
    assert!(!s.withdraw_queued(sent_call), "a call already sent (and failed) is not queued");
    assert_eq!((s.queued_calls(), s.pending_calls()), (1, 1));
    // Its deadline went with it: long after, only the kept call times out.
    s.handle_timeout(t0 + 60 * 1000 * MS);
    let timed_out: Vec<CallId> = events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            Event::Outcome { id, outcome: Outcome::Timeout, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(timed_out, [kept]);
    // A call sent cannot be withdrawn: it goes on.
    let mut s = connected(config(), t0);
    let on_the_wire = s.call("d", &4u32, t0).expect("call");
    assert_eq!(sent(&mut s).len(), 1);
    assert!(!s.withdraw_queued(on_the_wire));
    assert!(s.is_pending(on_the_wire));
}

#[test]
fn a_callback_can_make_the_next_call_like_ajax() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0);
    s.call_then("login", &(), t0, |s, outcome| {
        assert!(outcome.is_reply());
        let now = s.now();
        s.call("join", &(), now).expect("chained call");
    })
    .expect("call");
    let first = sent(&mut s);
    assert_eq!(first[0].1, "login");
    s.handle_frame(&reply(first[0].0, &[]), t0 + MS);
    let second = sent(&mut s);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].1, "join");
}

#[test]
fn calls_in_flight_fail_on_disconnect_and_queued_calls_go_out_in_order_after_reconnect() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0);
    let in_flight = s.call("a", &1u32, t0).expect("call");
    sent(&mut s);
    s.handle_disconnect(t0 + 10 * MS);
    let evs = events(&mut s);
    assert!(matches!(&evs[0], Event::Outcome { id, outcome: Outcome::Disconnected, .. } if *id == in_flight));
    assert!(matches!(evs[1], Event::Disconnected));
    let Event::Reconnecting { attempt: 1, delay } = evs[2] else { panic!("{evs:?}") };
    assert!(delay <= 100 * MS && delay >= 50 * MS, "{delay:?}");

    // Offline: calls queue and nothing is sent.
    let queued: Vec<CallId> = (10..15u32).map(|n| s.call("b", &n, t0 + 20 * MS).expect("queued")).collect();
    assert_eq!(s.queued_calls(), 5);
    assert!(s.poll_transmit().is_none());
    assert!(!s.poll_connect(t0 + 10 * MS + delay - MS), "not before the backoff");
    assert!(s.poll_connect(t0 + 10 * MS + delay));
    s.handle_connected(Version::V1, t0 + 200 * MS);
    assert!(s.poll_transmit().is_none(), "nothing before the welcome");
    s.handle_frame(&welcome(), t0 + 201 * MS);
    // The queue waits until the game has seen Connected and polled again.
    assert!(s.poll_transmit().is_none());
    assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
    assert!(s.poll_transmit().is_none());
    assert!(s.poll_event().is_none());
    let wire = sent(&mut s);
    let bodies: Vec<u32> = wire.iter().map(|w| ticksock_protocol::decode_body(&w.2).expect("u32")).collect();
    assert_eq!(bodies, vec![10, 11, 12, 13, 14], "flushed in call order");
    assert_eq!(wire.iter().map(|w| CallId(w.0)).collect::<Vec<_>>(), queued);
    assert_eq!(s.queued_calls(), 0);
    assert_eq!(s.queued_bytes(), 0);
}

#[test]
fn the_offline_queue_is_bounded_by_count_and_by_bytes() {
    let t0 = Instant::now();
    let mut s = Session::new(Config { max_queued_calls: 3, max_queued_bytes: 100, ..config() }, t0);
    for n in 0..3u8 {
        s.call_raw("x", &[n; 10], CallOptions::default(), t0).expect("fits");
    }
    match s.call_raw("x", &[0; 1], CallOptions::default(), t0) {
        Err(Error::QueueFull { calls: 3, max_calls: 3, .. }) => {}
        other => panic!("expected QueueFull by count, got {other:?}"),
    }
    let mut s = Session::new(Config { max_queued_calls: 3, max_queued_bytes: 100, ..config() }, t0);
    s.call_raw("x", &[0; 60], CallOptions::default(), t0).expect("fits");
    let err = s.call_raw("x", &[0; 60], CallOptions::default(), t0).expect_err("over the bytes");
    assert!(matches!(err, Error::QueueFull { calls: 1, max_bytes: 100, .. }), "{err:?}");
    assert!(err.to_string().contains("offline queue full"), "{err}");
    assert_eq!(s.pending_calls(), 1, "the refused call left nothing behind");
    // A timed-out queued call leaves the queue and frees its bytes.
    s.handle_timeout(t0 + Duration::from_secs(1));
    assert_eq!((s.queued_calls(), s.queued_bytes()), (0, 0));
    s.call_raw("x", &[0; 60], CallOptions::default(), t0 + Duration::from_secs(1)).expect("room again");
    // Over the server's message limit: refused whether online or not.
    let mut s = connected(Config { max_frame_bytes: 64, ..config() }, t0);
    assert!(matches!(s.call_raw("x", &[0; 100], CallOptions::default(), t0), Err(Error::TooLarge { .. })));
    // Online, the queue bound does not apply: frames go straight out.
    for _ in 0..10 {
        s.call_raw("x", &[0; 20], CallOptions::default(), t0).expect("online");
    }
}

#[test]
fn reconnects_back_off_exponentially_with_jitter_then_give_up() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut now = t0;
    let mut delays = Vec::new();
    loop {
        assert!(s.poll_connect(now), "an attempt is due");
        s.handle_disconnect(now + MS); // connection refused
        now += MS;
        match events(&mut s).pop() {
            Some(Event::Reconnecting { attempt, delay }) => {
                assert_eq!(attempt as usize, delays.len() + 1);
                delays.push(delay);
                assert_eq!(s.poll_timeout(), Some(now + delay));
                now += delay;
            }
            Some(Event::Stopped { reason: Error::GaveUp { attempts } }) => {
                assert_eq!(attempts, 5);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delays.len(), 5);
    for (n, d) in delays.iter().enumerate() {
        let ceiling = (100 * MS * (1 << n)).min(1000 * MS);
        assert!(
            *d <= ceiling && *d >= ceiling / 2,
            "attempt {}: {d:?} not in [{:?}, {ceiling:?}]",
            n + 1,
            ceiling / 2
        );
    }
    assert_eq!(s.link_state(), LinkState::Closed);
    assert!(!s.poll_connect(now + Duration::from_secs(100)));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn the_failure_count_resets_once_a_connection_stays_up() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    let mut now = t0;
    // Three failed attempts.
    for _ in 0..3 {
        now += Duration::from_secs(2);
        assert!(s.poll_connect(now));
        s.handle_disconnect(now);
    }
    assert_eq!(s.reconnect_failures(), 3);
    // A connection that drops quickly still counts as a failure.
    now += Duration::from_secs(2);
    assert!(s.poll_connect(now));
    s.handle_connected(Version::V1, now);
    s.handle_frame(&welcome(), now);
    s.handle_disconnect(now + 100 * MS);
    assert_eq!(s.reconnect_failures(), 4);
    // One that stays up for `stable_after` resets it, while still up.
    now += Duration::from_secs(2);
    assert!(s.poll_connect(now));
    s.handle_connected(Version::V1, now);
    s.handle_frame(&welcome(), now);
    assert_eq!(s.poll_timeout(), Some(now + 100 * MS), "heartbeat");
    let mut t = now;
    while t < now + 2000 * MS {
        t += 50 * MS;
        s.handle_frame(&ServerFrame::Push { topic: "state".into(), body: &[] }.to_vec(), t);
        s.handle_timeout(t);
    }
    assert_eq!(s.reconnect_failures(), 0);
    s.handle_disconnect(t);
    assert_eq!(s.reconnect_failures(), 1, "a fresh count: the next delay is the initial one");
    match events(&mut s).pop() {
        Some(Event::Reconnecting { attempt: 1, delay }) => assert!(delay <= 100 * MS),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn one_heartbeat_timer_per_connection_pings_when_quiet_and_drops_a_silent_link() {
    let t0 = Instant::now();
    let mut s = Session::new(Config { max_attempts: None, ..config() }, t0);
    let mut now = t0;
    for round in 0..5 {
        assert_eq!(s.heartbeat_timers(), 0, "no timer while down");
        now = s.poll_timeout().expect("a reconnect is scheduled").max(now);
        assert!(s.poll_connect(now), "round {round}");
        s.handle_connected(Version::V1, now);
        s.handle_frame(&welcome(), now);
        assert_eq!(s.heartbeat_timers(), 1);
        // Quiet: one ping per interval, however many connections came before.
        let pings_before = s.stats().pings;
        let mut pings = 0;
        let mut closed = false;
        for _ in 0..40 {
            now += 10 * MS;
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            while let Some(cmd) = s.poll_link() {
                match cmd {
                    LinkCommand::Ping => pings += 1,
                    LinkCommand::Close { code: 1001, .. } => closed = true,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert!(s.heartbeat_timers() <= 1);
            if closed {
                break;
            }
        }
        // Pings at 100, 200, 300 ms of silence; dropped at the idle timeout (350 ms).
        assert_eq!(pings, 3, "round {round}");
        assert_eq!(s.stats().pings - pings_before, 3);
        assert!(closed, "the silent link is dropped");
        assert_eq!(s.link_state(), LinkState::Down);
        assert_eq!(s.heartbeat_timers(), 0);
        events(&mut s);
    }
    // A pong resets the silence: no ping while the server is heard from.
    assert!(s.poll_connect(s.poll_timeout().expect("scheduled")));
    now = s.poll_timeout().expect("connect timeout");
    let start = now - 500 * MS;
    s.handle_connected(Version::V1, start);
    s.handle_frame(&welcome(), start);
    let mut t = start;
    for _ in 0..50 {
        t += 20 * MS;
        s.handle_heard(t);
        if s.poll_timeout().is_some_and(|at| at <= t) {
            s.handle_timeout(t);
        }
        assert_eq!(s.poll_link(), None);
    }
    assert!(s.is_connected());
}

#[test]
fn a_connection_that_never_welcomes_times_out_and_retries() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V1, t0 + 10 * MS);
    assert_eq!(s.poll_timeout(), Some(t0 + 110 * MS), "heartbeat first");
    s.handle_timeout(t0 + 500 * MS);
    assert_eq!(s.poll_link(), Some(LinkCommand::Close { code: 1000, reason: "connect timeout" }));
    assert!(matches!(events(&mut s).pop(), Some(Event::Reconnecting { attempt: 1, .. })));
}

#[test]
fn garbage_or_a_frame_before_the_welcome_drops_the_link_and_a_version_mismatch_stops() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), t0);
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V1, t0);
    s.handle_frame(&reply(1, &[]), t0);
    assert_eq!(s.poll_link(), Some(LinkCommand::Close { code: 1002, reason: "protocol error" }));
    let evs = events(&mut s);
    assert!(matches!(&evs[0], Event::ProtocolError { problem } if problem.contains("before the welcome")));
    assert!(matches!(evs[1], Event::Reconnecting { .. }));

    let mut s = connected(config(), t0);
    s.handle_frame(&[9, 9, 9], t0);
    assert_eq!(s.link_state(), LinkState::Down);
    assert!(matches!(events(&mut s)[0], Event::ProtocolError { .. }));

    let mut s = Session::new(config(), t0);
    assert!(s.poll_connect(t0));
    s.handle_connected(Version::V1, t0);
    let queued = s.call("x", &(), t0).expect("queued");
    s.handle_frame(&ServerFrame::Welcome { version: 2, tick_hz: 30, conn_id: 1 }.to_vec(), t0);
    assert_eq!(s.link_state(), LinkState::Closed);
    let evs = events(&mut s);
    assert!(
        evs.iter().any(|e| matches!(e, Event::Outcome { id, outcome: Outcome::Closed, .. } if *id == queued))
    );
    assert!(matches!(evs.last(), Some(Event::Stopped { reason: Error::Protocol(_) })));
}

#[test]
fn the_server_s_count_of_dropped_events_becomes_an_event_and_a_stat_even_past_the_push_bound() {
    let t0 = Instant::now();
    let mut s = connected(Config { max_queued_pushes: 1, ..config() }, t0);
    let dropped = |count: u64| {
        let body = ticksock_protocol::encode_body(&count).expect("enc");
        ServerFrame::Push { topic: ticksock_protocol::TOPIC_DROPPED.into(), body: &body }.to_vec()
    };
    s.handle_frame(&ServerFrame::Push { topic: "chat".into(), body: &[1] }.to_vec(), t0);
    s.handle_frame(&dropped(300), t0);
    s.handle_frame(&dropped(2), t0);
    s.handle_frame(
        &ServerFrame::Push { topic: ticksock_protocol::TOPIC_DROPPED.into(), body: &[] }.to_vec(),
        t0,
    );
    let evs = events(&mut s);
    assert!(matches!(&evs[0], Event::Push { topic, .. } if topic == "chat"));
    assert!(matches!(evs[1], Event::EventsDropped { count: 300 }), "{evs:?}");
    assert!(matches!(evs[2], Event::EventsDropped { count: 2 }), "not dropped past max_queued_pushes");
    assert!(
        matches!(&evs[3], Event::BadPush { topic, error: Error::Decode(_) } if topic == "ticksock.dropped"),
        "an empty body is not a count: {evs:?}"
    );
    assert_eq!(s.stats().server_dropped_events, 302);
    assert_eq!(s.stats().pushes_dropped, 0);
}

#[test]
fn pushes_go_to_handlers_by_topic_typed_or_raw_and_the_rest_become_bounded_events() {
    let t0 = Instant::now();
    let mut s = connected(Config { max_queued_pushes: 2, ..config() }, t0);
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    s.on_push_typed::<u32>("count", move |n| {
        seen2.fetch_add(n as usize, Ordering::SeqCst);
    });
    let raw = Arc::new(AtomicUsize::new(0));
    let raw2 = raw.clone();
    s.on_push("raw", move |body| {
        raw2.fetch_add(body.len(), Ordering::SeqCst);
    });
    let push = |topic: &str, body: &[u8]| ServerFrame::Push { topic: topic.into(), body }.to_vec();
    s.handle_frame(&push("count", &ticksock_protocol::encode_body(&5u32).expect("enc")), t0);
    s.handle_frame(&push("count", &ticksock_protocol::encode_body(&6u32).expect("enc")), t0);
    s.handle_frame(&push("raw", &[1, 2, 3]), t0);
    s.handle_frame(&push("count", &[0xff]), t0); // not a u32
    for _ in 0..3 {
        s.handle_frame(&push("other", &[7]), t0);
    }
    assert_eq!(seen.load(Ordering::SeqCst), 11);
    assert_eq!(raw.load(Ordering::SeqCst), 3);
    let evs = events(&mut s);
    assert!(matches!(&evs[0], Event::BadPush { topic, error: Error::Decode(_) } if topic == "count"));
    assert_eq!(evs.iter().filter(|e| matches!(e, Event::Push { topic, .. } if topic == "other")).count(), 2);
    assert_eq!(s.stats().pushes_dropped, 1);
    assert_eq!(s.stats().pushes, 7);
    // A sink sees pushes without a handler, borrowed.
    let mut sunk = 0;
    s.handle_frame_with(&push("other", &[1]), t0, |topic, body| {
        sunk += usize::from(topic == "other") * body.len();
        true
    });
    assert_eq!(sunk, 1);
    assert!(events(&mut s).is_empty());
}

#[test]
fn timeouts_of_different_lengths_fire_in_deadline_order_and_answered_calls_leave_no_timer() {
    let t0 = Instant::now();
    let config = Config {
        heartbeat_interval: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(180),
        ..config()
    };
    let mut s = connected(config, t0);
    let long = s.call("a", &(), t0).expect("call"); // 1000 ms
    let short = s.call_with("b", &(), CallOptions::default().timeout(100 * MS), t0).expect("call");
    let mid = s.call_with("c", &(), CallOptions::default().timeout(500 * MS), t0 + 10 * MS).expect("call");
    let last = s.call("d", &(), t0 + 20 * MS).expect("call"); // 1020 ms
    sent(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + 100 * MS));
    s.handle_timeout(t0 + 100 * MS);
    assert_eq!(outcomes(&mut s), vec![(short, Outcome::Timeout)]);
    assert_eq!(s.poll_timeout(), Some(t0 + 510 * MS));
    s.handle_frame(&reply(mid.0, &[]), t0 + 200 * MS);
    s.handle_frame(&reply(long.0, &[]), t0 + 200 * MS);
    assert_eq!(s.poll_timeout(), Some(t0 + 1020 * MS), "answered calls leave no deadline behind");
    s.handle_timeout(t0 + 1019 * MS);
    assert_eq!(outcomes(&mut s).len(), 2, "the two replies, nothing else");
    s.handle_timeout(t0 + 1020 * MS);
    assert_eq!(outcomes(&mut s), vec![(last, Outcome::Timeout)]);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(60)), "only the heartbeat is left");
}

// ----- issue 19, defect 9: `Duration::MAX` means "wait forever" -----

/// A long time, but one an `Instant` can still count to.
const A_YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

#[test]
fn a_per_call_timeout_of_duration_max_waits_forever() {
    let t0 = Instant::now();
    let config = Config { heartbeat_interval: A_YEAR, idle_timeout: 3 * A_YEAR, ..config() };
    let mut s = connected(config, t0);
    let forever = s.call_with("slow", &(), CallOptions::default().timeout(Duration::MAX), t0).expect("call");
    let bounded = s.call("slow", &(), t0).expect("call"); // the default, 1000 ms
    assert_eq!(sent(&mut s).len(), 2);
    assert_eq!(s.poll_timeout(), Some(t0 + 1000 * MS), "only the bounded call has a deadline");
    s.handle_timeout(t0 + 1000 * MS);
    assert_eq!(outcomes(&mut s), vec![(bounded, Outcome::Timeout)]);
    assert_eq!(s.poll_timeout(), Some(t0 + A_YEAR), "the heartbeat is all that is left");
    s.handle_frame(&reply(forever.0, &[1]), t0 + A_YEAR / 2);
    assert_eq!(outcomes(&mut s), vec![(forever, Outcome::Reply(vec![1]))]);
    assert_eq!(s.pending_calls(), 0);
}

#[test]
fn a_default_call_timeout_of_duration_max_waits_forever() {
    let t0 = Instant::now();
    let mut s = Session::new(Config { call_timeout: Duration::MAX, ..config() }, t0);
    let queued = s.call("x", &(), t0).expect("queued offline");
    // Only the first connection attempt is scheduled, not the call.
    assert_eq!(s.poll_timeout(), Some(t0));
    s.handle_timeout(t0 + A_YEAR);
    assert!(s.is_pending(queued), "no timeout, however long it waits");
    assert!(outcomes(&mut s).is_empty());
    // A call that sets its own timeout still gets it.
    let bounded = s.call_with("y", &(), CallOptions::default().timeout(10 * MS), t0 + A_YEAR).expect("call");
    s.handle_timeout(t0 + A_YEAR + 10 * MS);
    assert_eq!(outcomes(&mut s), vec![(bounded, Outcome::Timeout)]);
    assert!(s.is_pending(queued));
}

#[test]
fn a_connect_timeout_of_duration_max_waits_forever_for_the_connection_and_the_welcome() {
    let t0 = Instant::now();
    let mut s = Session::new(Config { connect_timeout: Duration::MAX, ..config() }, t0);
    assert!(s.poll_connect(t0));
    assert_eq!(s.poll_timeout(), None, "nothing to wait for but the TCP connect");
    s.handle_timeout(t0 + A_YEAR);
    assert_eq!(s.link_state(), LinkState::Connecting);
    assert_eq!(s.poll_link(), None);
    // The WebSocket opens: the heartbeat is the only timer; the welcome may take its time
    // while the server keeps the link alive.
    let open = t0 + A_YEAR;
    s.handle_connected(Version::V1, open);
    assert_eq!(s.poll_timeout(), Some(open + 100 * MS));
    s.handle_heard(open + 90 * MS);
    s.handle_timeout(open + 100 * MS);
    assert_eq!(s.link_state(), LinkState::AwaitingWelcome);
    s.handle_frame(&welcome(), open + 150 * MS);
    assert!(s.is_connected());
}

/// Found by the randomized runs (`session_random.rs`): the first heartbeat was armed for the
/// first ping only, so with an idle timeout shorter than the ping interval a silent link
/// outlived its idle timeout.
#[test]
fn a_silent_link_is_dropped_at_the_idle_timeout_even_when_it_is_shorter_than_the_ping_interval() {
    let t0 = Instant::now();
    let mut s = connected(Config { heartbeat_interval: 1000 * MS, idle_timeout: 300 * MS, ..config() }, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + 300 * MS));
    s.handle_timeout(t0 + 300 * MS);
    assert_eq!(s.poll_link(), Some(LinkCommand::Close { code: 1001, reason: "no sign of life" }));
    assert_eq!(s.link_state(), LinkState::Down);
}

// ----- issue 19, defect 10: the connection events, and logging in again before the queue -----

#[test]
fn a_callback_that_closes_the_session_while_the_link_drops_still_reports_the_disconnect() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0);
    s.call_then("a", &(), t0, |s, outcome| {
        assert_eq!(outcome, Outcome::Disconnected);
        let now = s.now();
        s.close(now);
    })
    .expect("call");
    let other = s.call("b", &(), t0).expect("call");
    assert_eq!(sent(&mut s).len(), 2);
    s.handle_disconnect(t0 + 10 * MS);
    assert_eq!(s.link_state(), LinkState::Closed);
    let evs = events(&mut s);
    let names: Vec<&str> = evs
        .iter()
        .map(|e| match e {
            Event::Outcome { .. } => "Outcome",
            Event::Disconnected => "Disconnected",
            Event::Stopped { reason: Error::Closed } => "Stopped(Closed)",
            _ => "other",
        })
        .collect();
    assert_eq!(names, ["Outcome", "Disconnected", "Stopped(Closed)"], "{evs:?}");
    assert!(matches!(&evs[0], Event::Outcome { id, outcome: Outcome::Disconnected, .. } if *id == other));
    // The same when the heartbeat finds the link dead.
    let mut s = connected(config(), t0);
    s.call_then("a", &(), t0, |s, _| {
        let now = s.now();
        s.close(now);
    })
    .expect("call");
    sent(&mut s);
    s.handle_timeout(t0 + 350 * MS);
    assert_eq!(s.poll_link(), Some(LinkCommand::Close { code: 1001, reason: "no sign of life" }));
    let evs = events(&mut s);
    assert!(matches!(evs[..], [Event::Disconnected, Event::Stopped { .. }]), "{evs:?}");
}

#[test]
fn a_login_made_on_connected_goes_out_before_the_calls_queued_offline() {
    let t0 = Instant::now();
    let mut s = connected(config(), t0);
    s.handle_disconnect(t0 + 10 * MS);
    events(&mut s);
    // Offline, the game keeps calling arena routes; they wait in the queue.
    let queued: Vec<CallId> = (0..3u32).map(|n| s.call("move", &n, t0 + 20 * MS).expect("queued")).collect();
    let at = s.poll_timeout().expect("a reconnect is scheduled");
    assert!(s.poll_connect(at));
    s.handle_connected(Version::V1, at);
    s.handle_frame(&welcome(), at);
    // The I/O layer sends what it is given as soon as the welcome is in: nothing yet.
    assert!(sent(&mut s).is_empty(), "the queue waits for the game to see Connected");
    // The game takes Connected and logs in again (a server session belongs to one connection).
    assert!(matches!(s.poll_event(), Some(Event::Connected { .. })));
    let login = s.call("login", &(), at).expect("call");
    let first = sent(&mut s);
    assert_eq!(first.iter().map(|w| CallId(w.0)).collect::<Vec<_>>(), [login], "the login goes first");
    // Its next poll releases the queue, in call order.
    assert!(s.poll_event().is_none());
    let rest = sent(&mut s);
    assert_eq!(rest.iter().map(|w| CallId(w.0)).collect::<Vec<_>>(), queued);
    assert_eq!(s.queued_calls(), 0);
}

#[test]
fn a_tick_reply_ends_its_call_with_its_stamp_and_reads_as_a_reply() {
    let t0 = Instant::now();
    let mut s = connected(Config { tick_stamps: true, ..config() }, t0);
    let stamped = s.call("move", &1u32, t0).expect("call");
    let plain = s.call("move", &2u32, t0).expect("call");
    let refused = s.call("move", &3u32, t0).expect("call");
    assert_eq!(sent(&mut s).len(), 3);
    let body = ticksock_protocol::encode_body(&7u32).expect("encodes");
    s.handle_frame(&ServerFrame::TickReply { id: stamped.0, tick: 300, body: &body }.to_vec(), t0 + MS);
    s.handle_frame(&reply_u32(plain.0, 8), t0 + MS);
    let error = ServerFrame::Error { id: refused.0, code: 1001, message: "no".into() };
    s.handle_frame(&error.to_vec(), t0 + MS);
    let got = outcomes(&mut s);
    assert_eq!(got[0], (stamped, Outcome::TickReply { tick: 300, body: body.clone() }));
    let (_, outcome) = &got[0];
    assert_eq!(
        (outcome.tick(), outcome.reply_body(), outcome.is_reply()),
        (Some(300), Some(&body[..]), true)
    );
    assert_eq!(outcome.clone().decode::<u32>().expect("a reply"), 7);
    let (_, outcome) = &got[1];
    assert_eq!((outcome.tick(), outcome.clone().decode::<u32>().expect("a reply")), (None, 8));
    let (_, outcome) = &got[2];
    assert_eq!((outcome.tick(), outcome.reply_body(), outcome.is_reply()), (None, None, false));
    assert_eq!((s.stats().replies, s.stats().errors), (2, 1));
    // A stamp that does not decode is a broken frame, as any other.
    s.handle_frame(&[7, 9, 252, 1], t0 + 2 * MS);
    assert!(events(&mut s).iter().any(|e| matches!(e, Event::ProtocolError { .. })));
}
