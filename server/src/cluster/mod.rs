//! The cluster: several nodes sharing one push API through Redis (issue 15; the design is in
//! `docs/CLUSTER.md`). A node without [`ClusterConfig`] never loads any of this.
//!
//! Three parts, by thread:
//! - the **logic thread** keeps [`Registry`], its copy of who is where (in its
//!   [`Hub`](crate::Hub), so "is this user online" counts every node), and a link to the bridge
//!   (`link`): pushes for other nodes, its share of the registry, room claims, tickets;
//! - the **bridge** (`bridge`): a writer thread and a reader thread, the only code that talks
//!   to Redis, with a timeout on every call;
//! - pure parts both use: the entries in Redis ([`wire`]), exactly-once numbering
//!   ([`sequence`]), redirect tickets ([`ticket`]), the Redis keys (`keys`).
//!
//! Public: [`ClusterConfig`] and [`ClusterArgs`] (settings and flags), [`Registry`] (what a
//! game can ask through `ctx.hub().cluster()`), [`ClusterMetrics`]. The rest is internal.

pub(crate) mod bridge;
mod config;
pub(crate) mod keys;
pub(crate) mod link;
mod metrics;
pub(crate) mod reasons;
pub mod registry;
pub mod sequence;
pub mod ticket;
pub mod wire;

pub use config::{ClusterArgs, ClusterConfig};
pub use metrics::ClusterMetrics;
pub use registry::Registry;
