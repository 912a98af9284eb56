//! The worker threads. Each takes the next job from one bounded queue, runs it (catching a
//! panic), sends its outcome back and rings the logic thread's doorbell.
//!
//! Shutdown: once the logic thread has stopped (its sender dropped), the workers run what is
//! still queued, then exit; the server joins them last, so a queued database write is done
//! before the process ends.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::{Done, Job, Jobs, run};
use crate::bridge::Doorbell;

/// The running workers.
pub(crate) struct Workers {
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Waits for every worker to finish what was queued.
    pub(crate) fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Starts `workers` threads with a queue of `queue` jobs; the logic thread's side is the
/// returned [`Jobs`].
pub(crate) fn start(
    workers: usize,
    queue: usize,
    doorbell: Arc<Doorbell>,
) -> std::io::Result<(Jobs, Workers)> {
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(queue);
    // Unbounded: at most `queue + workers` outcomes can be outstanding, as each came from a
    // queued job.
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
    let mut threads = Vec::with_capacity(workers);
    for i in 0..workers {
        let (jobs, done, doorbell) = (job_rx.clone(), done_tx.clone(), doorbell.clone());
        threads.push(std::thread::Builder::new().name(format!("job-{i}")).spawn(move || {
            for job in jobs {
                if done.send(run(job)).is_ok() {
                    doorbell.ring();
                }
            }
        })?);
    }
    Ok((Jobs::pool(job_tx, done_rx), Workers { threads }))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::jobs::{JobFor, Then};

    #[test]
    fn workers_run_jobs_catch_panics_and_finish_the_queue_when_the_sender_goes() {
        let (mut jobs, workers) = start(2, 8, Arc::new(Doorbell::default())).expect("threads");
        assert!(jobs.submit(JobFor::Game, Box::new(|| Box::new(41u32 + 1)), Then::Auth));
        assert!(jobs.submit(JobFor::Game, Box::new(|| panic!("a failing job")), Then::Auth));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut outcomes = Vec::new();
        while outcomes.len() < 2 && Instant::now() < deadline {
            match jobs.poll_done() {
                Some(done) => {
                    outcomes.push((done.id, done.result.map(|v| v.downcast::<u32>().ok().map(|v| *v))))
                }
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        outcomes.sort_by_key(|(id, _)| *id);
        assert!(matches!(outcomes[0], (1, Ok(Some(42)))));
        assert!(matches!(outcomes[1], (2, Err(_))), "the panic came back as an outcome");
        assert_eq!(jobs.counters.in_flight, 0);
        drop(jobs);
        workers.join();
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        // No worker: nothing leaves the queue.
        let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(1);
        let (_done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
        let mut jobs = Jobs::pool(job_tx, done_rx);
        assert!(jobs.submit(JobFor::Game, Box::new(|| Box::new(())), Then::Auth));
        assert!(!jobs.submit(JobFor::Game, Box::new(|| Box::new(())), Then::Auth));
        assert_eq!((jobs.counters.submitted, jobs.counters.refused), (1, 1));
        drop(job_rx);
    }
}
