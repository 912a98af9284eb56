//! What nodes write to Redis for each other: the entries of the registry stream and of each
//! node's inbox stream, in bincode, decoded with a size limit (Redis is shared; a bad entry is
//! logged and skipped, never trusted).

use serde::{Deserialize, Serialize};

/// The largest entry a node decodes. A push crosses in both encodings, so twice the largest
/// message a node sends, with room to spare.
pub const MAX_ENTRY_BYTES: usize = 64 << 20;

/// A push, encoded once on the sending node in both encodings (the sender does not know which
/// its recipients speak): complete frames, as a connection of that encoding receives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushFrames {
    /// The frame for binary connections.
    pub binary: Vec<u8>,
    /// The frame for JSON connections.
    pub json: Vec<u8>,
}

/// What one node asks another to do for its local connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// Push to every connection of a user.
    User {
        /// The user.
        user: String,
        /// The push.
        push: PushFrames,
    },
    /// Push to every member of a group (the sender's `except` named its own connections only).
    Group {
        /// The group.
        group: String,
        /// The push.
        push: PushFrames,
    },
    /// Push to every connection.
    All {
        /// The push.
        push: PushFrames,
    },
    /// Close every connection of a user: the game closed the user (a ban, a kick), or it
    /// bound a connection on the sending node under `UserPolicy::ReplaceOld`.
    CloseUser {
        /// The user.
        user: String,
        /// The close code.
        code: u16,
        /// The close frame's reason.
        reason: String,
    },
    /// Give every connection of a user these roles (the game changed them on the sending
    /// node: a promotion, a demotion).
    SetRoles {
        /// The user.
        user: String,
        /// The roles, replacing the old ones.
        roles: Vec<String>,
    },
}

/// A delivery as it travels through an inbox: who sent it, to which incarnation of the
/// receiver, and its place in the sender's sequence to that receiver (for exactly-once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending node's name.
    pub from: String,
    /// The sending node's epoch (a random number per start).
    pub from_epoch: u64,
    /// The receiver's epoch the sender addressed: an older incarnation's mail is dropped.
    pub to_epoch: u64,
    /// 1, 2, 3, ... per (sender epoch, receiver epoch).
    pub seq: u64,
    /// What to do.
    pub delivery: Delivery,
}

/// A node's share of the registry, as it announces it on the registry stream. Counts are
/// absolute (0: gone), so an event applied twice, or after a snapshot, changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryEvent {
    /// The node is alive (sent every third of a lease); `url` is where clients reach it.
    Heartbeat {
        /// The node.
        node: String,
        /// Its epoch.
        epoch: u64,
        /// Its public URL.
        url: String,
    },
    /// How many connections the node holds per user.
    Users {
        /// The node.
        node: String,
        /// Its epoch.
        epoch: u64,
        /// (user, connections on that node).
        entries: Vec<(String, u32)>,
    },
    /// How many of the node's connections are in each group.
    Groups {
        /// The node.
        node: String,
        /// Its epoch.
        epoch: u64,
        /// (group, members on that node).
        entries: Vec<(String, u32)>,
    },
    /// Rooms the node holds (true) or gave up (false).
    Rooms {
        /// The node.
        node: String,
        /// Its epoch.
        epoch: u64,
        /// (room, held).
        entries: Vec<(String, bool)>,
    },
    /// The node is shutting down: forget it now rather than at the end of its lease.
    Left {
        /// The node.
        node: String,
        /// Its epoch.
        epoch: u64,
    },
    /// The node's whole share, which replaces everything known of it: written when it joins,
    /// when it can write Redis again after a failure (what changed meanwhile, a user who left
    /// included, was never announced one by one), and when it finds its lease had lapsed (its
    /// keys expired, and the other nodes forgot it).
    Share(NodeSnapshot),
}

/// A whole node's share: read from its keys (on start, and after Redis came back), or as the
/// node announced it ([`RegistryEvent::Share`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The node.
    pub node: String,
    /// Its epoch.
    pub epoch: u64,
    /// Its public URL.
    pub url: String,
    /// (user, connections).
    pub users: Vec<(String, u32)>,
    /// (group, members).
    pub groups: Vec<(String, u32)>,
    /// Rooms it holds.
    pub rooms: Vec<String>,
}

/// What a node keeps in its info key: its epoch and URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its epoch.
    pub epoch: u64,
    /// Its public URL.
    pub url: String,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_ENTRY_BYTES>()
}

/// Encodes an entry.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Only these plain types are encoded, which always encode (strings, integers, bytes).
    bincode::serde::encode_to_vec(value, config()).unwrap_or_default()
}

/// Decodes an entry; `None` if it does not decode in full, within the limit.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match bincode::serde::decode_from_slice(bytes, config()) {
        Ok((value, used)) if used == bytes.len() => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_garbage_is_refused() {
        let env = Envelope {
            from: "n1".into(),
            from_epoch: 7,
            to_epoch: 9,
            seq: 3,
            delivery: Delivery::Group {
                group: "lobby".into(),
                push: PushFrames { binary: vec![1, 2], json: b"[1]".to_vec() },
            },
        };
        let bytes = encode(&env);
        assert_eq!(decode::<Envelope>(&bytes), Some(env));
        assert_eq!(decode::<Envelope>(&bytes[..bytes.len() - 1]), None, "truncated");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode::<Envelope>(&longer), None, "trailing bytes");
        // A length prefix claiming more than the limit is refused before any allocation.
        assert_eq!(decode::<RegistryEvent>(&[1, 0xfc, 0xff, 0xff, 0xff, 0x7f]), None);
    }
}
