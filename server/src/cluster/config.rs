//! The cluster's settings, and their command-line flags ([`ClusterArgs`], which a game
//! flattens into its parser beside [`Config`](crate::Config)).

use std::net::SocketAddr;
use std::time::Duration;

/// The longest lease, ticket lifetime and retain time taken: an hour, far past any use, and
/// short enough that time arithmetic on it cannot overflow (a lease of `u64::MAX` ms panicked
/// the writer thread at its first heartbeat).
const MAX_SPAN: Duration = Duration::from_secs(3600);

/// How a node takes part in a cluster. Absent ([`Config::cluster`](crate::Config::cluster)
/// `None`, the default), the server is a single node and never talks to Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Where the registry and the nodes' inboxes live: `redis://HOST:PORT[/DB]`.
    pub redis_url: String,
    /// This node's name, unique in the cluster. `None`: the address it listens on.
    pub node_name: Option<String>,
    /// The URL clients reach this node at, which redirects to it carry. `None`:
    /// `ws://ADDRESS/` with the address it listens on.
    pub public_url: Option<String>,
    /// How long a node, its users, groups and rooms outlive its last renewal (renewed every
    /// third of it). Default 5 s: a dead node's players and rooms are gone from every other
    /// node's answers within 5 s, while a node stalled for a second or two (a long GC-free
    /// pause is rare here, but a loaded VM drifts) is not declared dead.
    pub lease: Duration,
    /// How long a redirect's ticket stays valid. Default 10 s: a client connects within a
    /// round trip or two; a stolen ticket is worth little after that.
    pub ticket_lifetime: Duration,
    /// Cross-node deliveries held on this node while Redis is unreachable (and the logic
    /// thread's channel to the bridge). Past it, a send to another node fails: counted in
    /// `ticksock_cluster_dropped_total` and logged. Default 65 536: 13 s of a 5 000-messages/s
    /// node's cross-node traffic, at most a few tens of MiB.
    pub queue: usize,
    /// How long a delivery Redis took is kept to be written again if Redis fails (and may
    /// have restarted without it). Default 2 s: receivers read their inbox within
    /// milliseconds; a receiver further behind than this when Redis restarts loses the
    /// difference, and counts it.
    pub retain: Duration,
    /// Each inbox stream is capped near this many entries (`XADD MAXLEN ~`). Default 100 000:
    /// far more than a live receiver lets pile up, and it bounds what a dead node's inbox holds
    /// in Redis.
    pub inbox_len: usize,
}

/// The command-line flags of [`ClusterConfig`].
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// Join the cluster whose registry is in this Redis (`redis://HOST:PORT`). Without it the
    /// server is a single node and needs no Redis.
    #[arg(long = "cluster", value_name = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// This node's name, unique in the cluster [default: the listen address].
    #[arg(long)]
    pub node_name: Option<String>,
    /// The URL clients reach this node at; redirects to this node carry it [default:
    /// ws://LISTEN/].
    #[arg(long)]
    pub public_url: Option<String>,
    /// How long a node's registry entries outlive its last renewal, in milliseconds.
    #[arg(long = "cluster-lease-ms", default_value_t = 5000)]
    pub lease_ms: u64,
    /// How long a redirect's ticket stays valid, in milliseconds.
    #[arg(long = "cluster-ticket-ms", default_value_t = 10_000)]
    pub ticket_ms: u64,
    /// Cross-node deliveries held while Redis is unreachable; past it sends to other nodes fail.
    #[arg(long = "cluster-queue", default_value_t = 65_536)]
    pub queue: usize,
    /// How long a delivery Redis took is kept to be written again after a Redis failure, in
    /// milliseconds.
    #[arg(long = "cluster-retain-ms", default_value_t = 2000)]
    pub retain_ms: u64,
    /// Each node's inbox stream is capped near this many entries.
    #[arg(long = "cluster-inbox-len", default_value_t = 100_000)]
    pub inbox_len: usize,
}

impl ClusterArgs {
    /// The cluster configuration these flags ask for; `None` without `--cluster`.
    pub fn resolve(&self) -> Option<ClusterConfig> {
        let redis_url = self.redis_url.clone()?;
        Some(ClusterConfig {
            redis_url,
            node_name: self.node_name.clone(),
            public_url: self.public_url.clone(),
            lease: Duration::from_millis(self.lease_ms),
            ticket_lifetime: Duration::from_millis(self.ticket_ms),
            queue: self.queue,
            retain: Duration::from_millis(self.retain_ms),
            inbox_len: self.inbox_len,
        })
    }
}

impl ClusterConfig {
    /// This node's name, for a node listening on `listen`.
    pub fn node_name_at(&self, listen: SocketAddr) -> String {
        self.node_name.clone().unwrap_or_else(|| listen.to_string())
    }

    /// This node's public URL, for a node listening on `listen`.
    pub fn public_url_at(&self, listen: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("ws://{listen}/"))
    }

    /// What is wrong with these settings, if anything, naming the flags.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.redis_url.starts_with("redis://") {
            problems.push(format!("--cluster must be a redis:// URL, not `{}`", self.redis_url));
        }
        if self.node_name.as_ref().is_some_and(|n| n.is_empty() || n.len() > 128) {
            problems.push("--node-name must be 1 to 128 bytes".to_owned());
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("ws://") || url.starts_with("wss://"))
        {
            problems.push(format!("--public-url must be a ws:// or wss:// URL, not `{url}`"));
        }
        let max = MAX_SPAN.as_millis();
        if self.lease < Duration::from_millis(300) || self.lease > MAX_SPAN {
            problems.push(format!("--cluster-lease-ms must be 300 to {max}"));
        }
        if self.ticket_lifetime.is_zero() || self.ticket_lifetime > MAX_SPAN {
            problems.push(format!("--cluster-ticket-ms must be 1 to {max}"));
        }
        if self.retain > MAX_SPAN {
            problems.push(format!("--cluster-retain-ms must be at most {max}"));
        }
        if self.queue == 0 || self.inbox_len == 0 {
            problems.push("--cluster-queue and --cluster-inbox-len must be at least 1".to_owned());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lease_ms: u64, ticket_ms: u64, retain_ms: u64) -> ClusterConfig {
        ClusterConfig {
            redis_url: "redis://127.0.0.1:6379".into(),
            node_name: None,
            public_url: None,
            lease: Duration::from_millis(lease_ms),
            ticket_lifetime: Duration::from_millis(ticket_ms),
            queue: 1,
            retain: Duration::from_millis(retain_ms),
            inbox_len: 1,
        }
    }

    #[test]
    fn spans_too_long_for_time_arithmetic_are_refused_naming_their_flag() {
        assert!(config(5000, 10_000, 2000).problems().is_empty());
        assert!(config(3_600_000, 3_600_000, 3_600_000).problems().is_empty());
        let problems = config(u64::MAX, u64::MAX, u64::MAX).problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        for (problem, flag) in
            problems.iter().zip(["--cluster-lease-ms", "--cluster-ticket-ms", "--cluster-retain-ms"])
        {
            assert!(problem.starts_with(flag), "{problem}");
        }
        assert_eq!(config(299, 1, 0).problems().len(), 1);
    }
}
