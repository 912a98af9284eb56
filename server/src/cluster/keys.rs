//! Every key the cluster uses in Redis, in one place (docs/CLUSTER.md lists them with their
//! lifetimes).

/// The cluster's secret, which signs tickets: random, set once by the first node.
pub const SECRET: &str = "ticksock:secret";
/// The set of node names that have joined (a dead node's name is removed by the first node
/// that finds its info key gone).
pub const NODES: &str = "ticksock:nodes";
/// The registry stream: every node's changes and heartbeats.
pub const REGISTRY: &str = "ticksock:registry";
/// The registry stream is capped near this many entries: what a reader that lost its place
/// replaces with snapshots of the nodes' keys.
pub const REGISTRY_LEN: usize = 100_000;

/// A node's info (epoch and URL), under its lease.
pub fn node(name: &str) -> String {
    format!("ticksock:node:{name}")
}

/// The prefix of [`node`], for the claim script.
pub const NODE_PREFIX: &str = "ticksock:node:";

/// A node's connections per user (a hash), under its lease.
pub fn users(name: &str) -> String {
    format!("ticksock:node:{name}:users")
}

/// A node's members per group (a hash), under its lease.
pub fn groups(name: &str) -> String {
    format!("ticksock:node:{name}:groups")
}

/// The rooms a node holds (a set), under its lease.
pub fn rooms(name: &str) -> String {
    format!("ticksock:node:{name}:rooms")
}

/// A node's inbox stream.
pub fn inbox(name: &str) -> String {
    format!("ticksock:inbox:{name}")
}

/// A room's claim: the name of the node holding it, under that node's lease.
pub fn room(name: &str) -> String {
    format!("ticksock:room:{name}")
}
