//! Slow work off the tick (`Ctx::spawn_job`): in the in-memory harness, where jobs run only
//! when the test says so, and once over the real server with its worker pool.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use ticksock_protocol::{Encoding, error_code};
use ticksock_server::testing::TestServer;
use ticksock_server::{AppError, Caller, Ctx, Game, JobFor, Router};

/// A game whose `slow` route computes on the pool and answers the call then; `boom` is a job
/// that panics; `later` pushes the result to the connection rather than answering.
#[derive(Default)]
struct Slow {
    applied: Vec<u32>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Doubled(u32);

impl Game for Slow {
    fn routes(router: &mut Router<Self>) {
        router.deferred("slow", |_: &mut Slow, ctx: &mut Ctx<'_>, caller: Caller, n: u32| {
            ctx.spawn_job(
                JobFor::Call(caller),
                move || n * 2,
                move |game: &mut Slow, ctx, doubled| {
                    game.applied.push(doubled);
                    ctx.reply(caller, &Doubled(doubled));
                },
            )
        });
        router.deferred("boom", |_: &mut Slow, ctx: &mut Ctx<'_>, caller: Caller, (): ()| {
            ctx.spawn_job(
                JobFor::Call(caller),
                || -> u32 { panic!("the database is on fire") },
                |_: &mut Slow, _, _| {},
            )
        });
        router.route("later", |_: &mut Slow, ctx: &mut Ctx<'_>, caller: Caller, n: u32| {
            let conn = caller.conn;
            ctx.spawn_job(
                JobFor::Connection(conn),
                move || n + 1,
                move |game: &mut Slow, ctx, v| {
                    game.applied.push(v);
                    ctx.push(conn, "later", &v);
                },
            )
        });
    }
}

#[test]
fn a_deferred_call_is_answered_when_its_job_comes_back_and_not_before() {
    let mut server = TestServer::new(Slow::default());
    let client = server.connect(Encoding::Binary);
    let id = server.send(client, "slow", &21u32);
    server.advance_ticks(3);
    assert!(server.answer::<Doubled>(client, id).is_none(), "the job has not run");
    assert_eq!(server.job_counters().in_flight, 1);
    assert_eq!(server.run_jobs(), 1);
    assert_eq!(server.answer::<Doubled>(client, id), Some(Ok(Doubled(42))));
    assert_eq!(server.game().applied, [42]);
    assert_eq!(server.job_counters().in_flight, 0);
}

#[test]
fn a_result_for_a_connection_that_has_gone_is_dropped_not_given_to_a_newcomer() {
    let mut server = TestServer::new(Slow::default());
    let gone = server.connect(Encoding::Binary);
    server.send(gone, "slow", &1u32);
    server.call::<_, ()>(gone, "later", &1u32).expect("queued");
    server.disconnect(gone);
    let newcomer = server.connect(Encoding::Binary);
    assert_eq!(server.run_jobs(), 2);
    assert!(server.game().applied.is_empty(), "neither continuation ran");
    assert_eq!(server.job_counters().dropped, 2);
    assert!(server.pushes::<u32>(newcomer, "later").is_empty());
}

#[test]
fn a_full_job_queue_answers_busy_at_once() {
    let mut server = TestServer::new(Slow::default());
    server.set_job_queue(2);
    let client = server.connect(Encoding::Binary);
    let first = server.send(client, "slow", &1u32);
    let second = server.send(client, "slow", &2u32);
    let third = server.send(client, "slow", &3u32);
    let refused = server.answer::<Doubled>(client, third).expect("answered at once").expect_err("busy");
    assert_eq!(refused.code, error_code::BUSY);
    assert_eq!(server.job_counters().refused, 1);
    server.run_jobs();
    assert_eq!(server.answer::<Doubled>(client, first), Some(Ok(Doubled(2))));
    assert_eq!(server.answer::<Doubled>(client, second), Some(Ok(Doubled(4))));
    // Room again.
    let fourth = server.send(client, "slow", &4u32);
    server.run_jobs();
    assert_eq!(server.answer::<Doubled>(client, fourth), Some(Ok(Doubled(8))));
}

#[test]
fn a_panicking_job_fails_its_call_and_nothing_else() {
    let mut server = TestServer::new(Slow::default());
    let client = server.connect(Encoding::Binary);
    let boom = server.send(client, "boom", &());
    let fine = server.send(client, "slow", &5u32);
    assert_eq!(server.run_jobs(), 2);
    let failed = server.answer::<()>(client, boom).expect("answered").expect_err("internal");
    assert_eq!(failed.code, error_code::INTERNAL);
    assert_eq!(server.answer::<Doubled>(client, fine), Some(Ok(Doubled(10))));
    assert_eq!(server.job_counters().panicked, 1);
    assert_eq!(server.call::<_, ()>(client, "later", &1u32), Ok(()), "the connection goes on");
}

/// Jobs of [`Sleepy`] running now, and the most that ever ran at once.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST: AtomicUsize = AtomicUsize::new(0);

/// A game whose job does what a database call does: it waits.
struct Sleepy;

impl Game for Sleepy {
    fn routes(router: &mut Router<Self>) {
        router.deferred("nap", |_: &mut Sleepy, ctx: &mut Ctx<'_>, caller: Caller, ms: u64| {
            let nap = move || {
                let now = RUNNING.fetch_add(1, SeqCst) + 1;
                MOST.fetch_max(now, SeqCst);
                std::thread::sleep(Duration::from_millis(ms));
                RUNNING.fetch_sub(1, SeqCst);
            };
            ctx.spawn_job(JobFor::Call(caller), nap, move |_: &mut Sleepy, ctx, ()| ctx.reply(caller, &ms))
                .map_err(|e| AppError::new(e.code, e.message))
        });
    }
}

#[test]
fn over_the_real_server_slow_jobs_run_beside_the_tick_and_answer_their_calls() {
    use ticksock_client::{BlockingClient, Config as ClientConfig};
    let config =
        ticksock_server::Config { listen: "127.0.0.1:0".parse().expect("addr"), ..Default::default() };
    let server = ticksock_server::Server::start(config, Sleepy).expect("starts");
    let url = format!("ws://{}/", server.local_addr());
    let mut client =
        BlockingClient::connect(&url, ClientConfig::default(), Duration::from_secs(10)).expect("connects");
    // Four jobs of 300 ms on four workers run side by side, and the tick goes on meanwhile.
    let ticks_before = server.metrics().logic().ticks;
    let ids: Vec<_> = (0..4).map(|_| client.client_mut().call("nap", &300u64).expect("sent")).collect();
    for id in ids {
        assert_eq!(client.wait_outcome(id).decode::<u64>().expect("answered"), 300);
    }
    assert!(MOST.load(SeqCst) >= 2, "jobs ran side by side: at most {} at once", MOST.load(SeqCst));
    assert!(server.metrics().logic().ticks > ticks_before + 3, "the tick went on meanwhile");
    assert_eq!(server.metrics().logic().jobs.submitted, 4);
    server.shutdown().expect("stops");
}
