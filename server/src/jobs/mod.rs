//! Slow work off the tick: a fixed pool of worker threads that run what handlers and hooks hand
//! them (a database write, a call to another service), with the result coming back to the logic
//! thread as an event between ticks ([`Ctx::spawn_job`](crate::Ctx::spawn_job)).
//!
//! - The queue is bounded ([`Config::job_queue`](crate::Config::job_queue)): a job that does not
//!   fit is refused at once with `BUSY`, never waited for.
//! - Each job says whom it is for ([`JobFor`]); a result for a connection that has gone since
//!   is dropped, never handed to whoever has its slot now (connection ids carry a generation).
//! - A job that panics fails the call it was for (`INTERNAL`), not the server.
//!
//! The pool (`pool`) is the only part with threads. Without one (the in-memory test harness),
//! jobs wait in a queue until the harness runs them, one by one, in the test's thread.

pub(crate) mod pool;

use std::any::Any;
use std::collections::{HashMap, VecDeque};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::ConnId;
use crate::api::Caller;

/// How long a shutting-down logic thread waits for the jobs in flight, so that their calls are
/// answered with their results rather than `SHUTTING_DOWN`.
pub const JOB_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Whom a job's result is for: what must still be there for it to be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFor {
    /// A call the handler deferred: the result is dropped if the caller's connection has gone;
    /// if the job panics, the call is answered `INTERNAL`.
    Call(Caller),
    /// A connection: the result is dropped if it has gone (or the game has closed it).
    Connection(ConnId),
    /// The game itself: the result is always applied. For a room or an entity that may be
    /// gone by then, keep its generation in the continuation and compare.
    Game,
}

/// A job's work, type-erased for the queue.
pub(crate) type Work = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;

/// A job on its way to a worker.
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) work: Work,
}

/// A job's outcome on its way back: its value, or the panic's payload.
pub(crate) struct Done {
    pub(crate) id: u64,
    pub(crate) result: std::thread::Result<Box<dyn Any + Send>>,
}

/// Runs a job's work, catching a panic.
pub(crate) fn run(job: Job) -> Done {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job.work));
    Done { id: job.id, result }
}

/// Where jobs go: a pool's channels, or a queue the test harness runs.
enum Runner {
    Pool { jobs: Sender<Job>, done: Receiver<Done> },
    Inline { queue: VecDeque<Job>, capacity: usize },
}

/// What runs when a job's result is back.
pub(crate) enum Then {
    /// The game's continuation: a `Then<G>` of `api::ctx`, boxed as `Any` because this part of
    /// the logic does not know the game's type.
    Game(Box<dyn Any + Send>),
    /// The server's own: a token verified for the connection's upgrade (`Call` unused) or for
    /// an `auth` request.
    Auth,
}

/// A job waiting for its result: whom it is for, and what runs then.
pub(crate) struct Waiting {
    pub(crate) job_for: JobFor,
    pub(crate) then: Then,
}

/// Counters of the job pool, as the logic thread sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounters {
    /// Jobs submitted and accepted.
    pub submitted: u64,
    /// Jobs refused because the queue was full (`BUSY`).
    pub refused: u64,
    /// Results applied.
    pub applied: u64,
    /// Results dropped because whom they were for had gone.
    pub dropped: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs submitted whose result has not come back yet.
    pub in_flight: u64,
}

/// The logic thread's side of the jobs: submitting, and what waits for a result.
pub(crate) struct Jobs {
    runner: Runner,
    next_id: u64,
    pub(crate) waiting: HashMap<u64, Waiting>,
    pub(crate) counters: JobCounters,
}

impl Jobs {
    /// Jobs that wait for the harness to run them, `capacity` at most.
    pub(crate) fn inline(capacity: usize) -> Self {
        Self::with(Runner::Inline { queue: VecDeque::new(), capacity })
    }

    /// Jobs sent to a pool through `jobs`, their results back through `done`.
    pub(crate) fn pool(jobs: Sender<Job>, done: Receiver<Done>) -> Self {
        Self::with(Runner::Pool { jobs, done })
    }

    fn with(runner: Runner) -> Self {
        Self { runner, next_id: 1, waiting: HashMap::new(), counters: JobCounters::default() }
    }

    /// Queues `work`, its continuation kept as `then`. `false` if the queue is full.
    pub(crate) fn submit(&mut self, job_for: JobFor, work: Work, then: Then) -> bool {
        let id = self.next_id;
        let job = Job { id, work };
        let queued = match &mut self.runner {
            Runner::Pool { jobs, .. } => match jobs.try_send(job) {
                Ok(()) => true,
                // A pool that has stopped (the server is shutting down) takes nothing more.
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            Runner::Inline { queue, capacity } => {
                let fits = queue.len() < *capacity;
                if fits {
                    queue.push_back(job);
                }
                fits
            }
        };
        if !queued {
            self.counters.refused += 1;
            return false;
        }
        self.next_id += 1;
        self.counters.submitted += 1;
        self.counters.in_flight += 1;
        self.waiting.insert(id, Waiting { job_for, then });
        true
    }

    /// A result that has come back, if any: from the pool, or (inline) by running the next
    /// queued job now.
    pub(crate) fn poll_done(&mut self) -> Option<Done> {
        let done = match &mut self.runner {
            Runner::Pool { done, .. } => done.try_recv().ok()?,
            Runner::Inline { queue, .. } => run(queue.pop_front()?),
        };
        self.counters.in_flight = self.counters.in_flight.saturating_sub(1);
        Some(done)
    }

    /// Whether a pool's result waits to be handled (inline jobs wait for the harness).
    pub(crate) fn has_news(&self) -> bool {
        matches!(&self.runner, Runner::Pool { done, .. } if !done.is_empty())
    }
}
