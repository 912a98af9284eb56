//! Which version of the wire format a link speaks, and in which encoding: both chosen by the
//! WebSocket subprotocol (`docs/PROTOCOL.md` sections 1.2 and 11.1).

use crate::{Encoding, SUBPROTOCOL, SUBPROTOCOL_JSON};

/// The WebSocket subprotocol that selects version 2 ([`crate::v2`]) in bincode frames.
pub const SUBPROTOCOL_V2: &str = "ticksock.v2";

/// The WebSocket subprotocol that selects version 2 in JSON frames.
pub const SUBPROTOCOL_V2_JSON: &str = "ticksock.v2.json";

/// The wire format version a version 2 Welcome carries.
pub const PROTOCOL_VERSION_2: u16 = 2;

/// Which version a link speaks (chosen with its subprotocol), beside its [`Encoding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// `ticksock.v1`: a link is a session; nothing survives a dropped link.
    #[default]
    V1,
    /// `ticksock.v2`: sessions with sequence numbers, acknowledgements and resume.
    V2,
}

impl Version {
    /// The number its Welcome carries: [`crate::PROTOCOL_VERSION`] or [`PROTOCOL_VERSION_2`].
    pub fn number(self) -> u16 {
        match self {
            Version::V1 => crate::PROTOCOL_VERSION,
            Version::V2 => PROTOCOL_VERSION_2,
        }
    }
}

/// Every subprotocol a server speaks, in its order of preference (section 11.1): bincode before
/// JSON, and within an encoding the newer version first.
pub const SERVER_PREFERENCE: [(Version, Encoding); 4] = [
    (Version::V2, Encoding::Binary),
    (Version::V1, Encoding::Binary),
    (Version::V2, Encoding::Json),
    (Version::V1, Encoding::Json),
];

/// The subprotocol name of `version` in `encoding`.
pub fn subprotocol(version: Version, encoding: Encoding) -> &'static str {
    match (version, encoding) {
        (Version::V1, Encoding::Binary) => SUBPROTOCOL,
        (Version::V1, Encoding::Json) => SUBPROTOCOL_JSON,
        (Version::V2, Encoding::Binary) => SUBPROTOCOL_V2,
        (Version::V2, Encoding::Json) => SUBPROTOCOL_V2_JSON,
    }
}

/// The server's choice among the subprotocols a client offers: the first of
/// [`SERVER_PREFERENCE`] that is offered, whatever the client's order; `None` when none is.
///
/// Each item may be one name or a whole `Sec-WebSocket-Protocol` header value (names
/// separated by commas); names are compared after trimming spaces and tabs, ignoring ASCII
/// case, as the server's handshake compares header tokens.
pub fn choose_subprotocol<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<(Version, Encoding)> {
    // Bit i set: the i-th entry of SERVER_PREFERENCE was offered.
    let mut seen = 0u8;
    for name in offered.into_iter().flat_map(|value| value.split(',')) {
        let name = name.trim_matches([' ', '\t']);
        for (i, &(version, encoding)) in SERVER_PREFERENCE.iter().enumerate() {
            if name.eq_ignore_ascii_case(subprotocol(version, encoding)) {
                seen |= 1 << i;
            }
        }
    }
    SERVER_PREFERENCE.iter().enumerate().find(|&(i, _)| seen & (1 << i) != 0).map(|(_, &choice)| choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_and_encoding_has_its_own_name() {
        assert_eq!(subprotocol(Version::V1, Encoding::Binary), "ticksock.v1");
        assert_eq!(subprotocol(Version::V1, Encoding::Json), "ticksock.v1.json");
        assert_eq!(subprotocol(Version::V2, Encoding::Binary), "ticksock.v2");
        assert_eq!(subprotocol(Version::V2, Encoding::Json), "ticksock.v2.json");
        assert_eq!((Version::V1.number(), Version::V2.number()), (1, 2));
        assert_eq!(Version::default(), Version::V1);
    }

    #[test]
    fn the_server_prefers_v2_then_v1_then_v2_json_then_v1_json_whatever_the_client_order() {
        let pick = |offered: &[&str]| choose_subprotocol(offered.iter().copied());
        assert_eq!(
            pick(&["ticksock.v1.json", "ticksock.v2.json", "ticksock.v1", "ticksock.v2"]),
            Some((Version::V2, Encoding::Binary))
        );
        assert_eq!(
            pick(&["ticksock.v1.json", "ticksock.v2.json", "ticksock.v1"]),
            Some((Version::V1, Encoding::Binary))
        );
        assert_eq!(pick(&["ticksock.v1.json", "ticksock.v2.json"]), Some((Version::V2, Encoding::Json)));
        assert_eq!(pick(&["ticksock.v1.json"]), Some((Version::V1, Encoding::Json)));
        assert_eq!(pick(&["ticksock.v1"]), Some((Version::V1, Encoding::Binary)), "a v1 client gets v1");
    }

    #[test]
    fn header_values_are_split_trimmed_and_compared_without_case() {
        assert_eq!(
            choose_subprotocol(["chat, ticksock.v1.json", " TickSock.V2 "]),
            Some((Version::V2, Encoding::Binary))
        );
        assert_eq!(
            choose_subprotocol(["ticksock.v1,\tticksock.v2.json"]),
            Some((Version::V1, Encoding::Binary))
        );
    }

    #[test]
    fn nothing_the_server_speaks_is_none() {
        assert_eq!(choose_subprotocol([]), None);
        assert_eq!(choose_subprotocol(["", "chat", "ticksock.v3", "ticksock.v2x", "ticksock"]), None);
    }
}
