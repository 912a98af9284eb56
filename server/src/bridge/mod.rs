//! What crosses between the reactor thread and the logic thread, and the channels it crosses
//! on. Nothing here belongs to either thread: [`crate::net`] and [`crate::logic`] both import
//! this module, and it imports neither of them (nor the game API).
//!
//! - [`messages`]: [`ToLogic`] (reactor to logic) and [`Command`] (logic to reactor).
//! - [`batch`]: [`Batch`], the logic thread's commands with their payloads in one buffer.
//! - [`routes`]: [`RouteTable`], the route names the reactor resolves before a request crosses.
//! - [`doorbell`]: how the reactor wakes the logic thread; [`wake`]: how the logic thread wakes
//!   the reactor.

pub mod batch;
pub(crate) mod doorbell;
pub mod messages;
pub mod routes;
pub(crate) mod wake;

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

pub use batch::{Batch, DataOpcode, Frame, Payload};
pub(crate) use doorbell::{Bell, Doorbell, InboundCount};
pub use messages::{Command, Credentials, StateTopic, ToLogic};
pub use routes::{RouteId, RouteTable};

/// The most messages the reactor puts in one batch for the logic thread. Big enough that a
/// busy turn costs a few channel hops instead of one per request; small enough that the
/// logic thread starts on a turn's first requests while the reactor reads the rest.
pub const TO_LOGIC_BATCH: usize = 64;

/// The reactor's ends of the channels between the threads.
pub(crate) struct ReactorEnds {
    /// What it read, in batches of up to [`TO_LOGIC_BATCH`], to the logic thread (bounded:
    /// full means stop reading).
    pub(crate) to_logic: Sender<Vec<ToLogic>>,
    /// The logic thread's batches.
    pub(crate) from_logic: Receiver<Batch>,
    /// Applied batches, emptied, going back for reuse.
    pub(crate) spent: Sender<Batch>,
    /// Its own batches, emptied by the logic thread, back for reuse.
    pub(crate) handled: Receiver<Vec<ToLogic>>,
    /// Messages sent and not handled yet (see [`InboundCount`]).
    pub(crate) queued: InboundCount,
    /// Rung after every batch sent on `to_logic`, and when the reactor goes away.
    pub(crate) doorbell: Bell,
}

/// The logic thread's ends of the channels between the threads.
pub(crate) struct LogicEnds {
    /// What the reactor read, in batches.
    pub(crate) inbound: Receiver<Vec<ToLogic>>,
    /// Batches of commands for the reactor.
    pub(crate) outbound: Sender<Batch>,
    /// Empty batches with their capacity, so that a tick's thousands of commands do not
    /// regrow (and page-fault) a fresh `Vec` every time.
    pub(crate) spent: Receiver<Batch>,
    /// The reactor's batches once handled, emptied with their capacity, so the reactor does
    /// not allocate one per turn (short-lived allocations among the connections' buffers
    /// fragment the heap: ~0.35 KiB of RSS per idle connection, measured).
    pub(crate) handled: Sender<Vec<ToLogic>>,
    /// Messages sent and not handled yet (see [`InboundCount`]).
    pub(crate) queued: InboundCount,
    /// What the logic thread waits on for `inbound`.
    pub(crate) doorbell: Arc<Doorbell>,
}

/// How many emptied batches each side may hand back to the other for reuse.
pub(crate) const SPARE_BATCHES: usize = 16;

/// The channels between the reactor and the logic thread, bounded as configured:
/// `inbound_queue` messages (the reactor checks [`InboundCount`]; the channel holds as many
/// batches, since a batch holds at least one) and `outbound_queue` batches.
pub(crate) fn channels(inbound_queue: usize, outbound_queue: usize) -> (ReactorEnds, LogicEnds) {
    let (to_logic, inbound) = crossbeam_channel::bounded(inbound_queue);
    let queued = InboundCount::default();
    let (outbound, from_logic) = crossbeam_channel::bounded(outbound_queue);
    // Spare batches, so that batches are reused rather than allocated and grown. One being
    // filled, one in flight and one being applied would do at a trickle; under load the
    // reactor reads a thousand connections in a turn and sends a batch per 64 messages, and
    // the logic thread answers each group of them with a batch, so dozens are in flight at
    // once. With 4 spares a side, one echo call in 12 reallocated a batch buffer (issue 18's
    // profile); 16 spares a side cost at most 16 kept buffers (see `Batch::clear`).
    let (spent_tx, spent_rx) = crossbeam_channel::bounded(SPARE_BATCHES);
    let (handled_tx, handled_rx) = crossbeam_channel::bounded(SPARE_BATCHES);
    let doorbell = Arc::new(Doorbell::default());
    (
        ReactorEnds {
            to_logic,
            from_logic,
            spent: spent_tx,
            handled: handled_rx,
            queued: queued.clone(),
            doorbell: Bell(doorbell.clone()),
        },
        LogicEnds { inbound, outbound, spent: spent_rx, handled: handled_tx, queued, doorbell },
    )
}
