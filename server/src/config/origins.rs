//! The `--allowed-origins` value: which web pages may open a WebSocket to the server, and the
//! pure check of an upgrade's `Origin` and `Host` headers against it.
//!
//! A browser sends the page's origin with every WebSocket upgrade, and sends the player's
//! cookies for the server's site whatever page opens the socket; so without this check any
//! site a player visits could open a socket to the game as that player (cross-site WebSocket
//! hijacking). A request without `Origin` does not come from a page (native apps, the Rust
//! client, bots) and is always allowed: such a client can send any `Origin` it likes, so
//! refusing it would protect nothing.

use std::fmt;
use std::str::FromStr;

/// One web origin, `scheme://host[:port]` (RFC 6454), as browsers send it in `Origin`: scheme
/// and host in lower case, and the port left out when it is the scheme's default, so that two
/// spellings of the same origin compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http`, `https`, ...: lower case.
    scheme: Box<str>,
    /// A name, an IPv4 address, or an IPv6 address in brackets: lower case.
    host: Box<str>,
    /// The port, unless it is the scheme's default (or none was given).
    port: Option<u16>,
}

/// What an origin looks like, for every error.
const EXPECTED: &str = "expected scheme://host[:port] with no path, such as https://game.example.com";

impl Origin {
    /// Reads `text`, an origin as `Origin` carries it or as a user types it. An error says
    /// what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, authority) =
            text.split_once("://").ok_or_else(|| format!("`{text}` has no scheme: {EXPECTED}"))?;
        let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err(format!("`{text}` has no valid scheme: {EXPECTED}"));
        }
        if authority.contains(['/', '?', '#']) {
            return Err(format!("`{text}` has a path: {EXPECTED}"));
        }
        if authority.contains('@') {
            return Err(format!("`{text}` has a user name: {EXPECTED}"));
        }
        let (host, port) =
            split_host_port(authority).map_err(|why| format!("`{text}`: {why}: {EXPECTED}"))?;
        let scheme = scheme.to_ascii_lowercase();
        let port = port.filter(|&p| Some(p) != default_port(&scheme));
        Ok(Self { scheme: scheme.into(), host: host.to_ascii_lowercase().into(), port })
    }

    /// Whether this origin is the site that `host`, a request's `Host` header, names: the same
    /// host (in any case) and the same port, a `Host` without a port meaning the default of
    /// this origin's scheme.
    fn is_host(&self, host: &str) -> bool {
        let Ok((name, port)) = split_host_port(host.trim()) else { return false };
        let port = port.filter(|&p| Some(p) != default_port(&self.scheme));
        name.eq_ignore_ascii_case(&self.host) && port == self.port
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// The port a URL of `scheme` has when it names none (`ws` and `wss` for a `Host` seen on a
/// WebSocket URL's behalf; browsers send `http` and `https` origins).
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (an IPv6 host in brackets) into the host and the port, if any.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or("an IPv6 address without its closing bracket")?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':').ok_or("text after the IPv6 address")?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("no host");
    }
    if host.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err("a space in the host");
    }
    let port = match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.parse().map_err(|_| "a port over 65535")?)
        }
        Some(_) => return Err("a port that is not a number"),
        None => None,
    };
    Ok((host, port))
}

/// The origins whose pages may open a WebSocket to the server (the `--allowed-origins` flag):
/// a comma-separated list of `scheme://host[:port]` origins, `self` for the server's own host,
/// or `*` for any. Requests without `Origin` are always allowed (see the module's doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigins {
    /// Any origin (`*`): a server whose clients are not browsers, or a public one that holds
    /// nothing a cookie would unlock.
    pub any: bool,
    /// The server's own host (`self`): an origin whose `host[:port]` equals the request's
    /// `Host` header, so that the page a server serves itself may connect, under whatever name
    /// it is reached.
    pub same_host: bool,
    /// These origins, compared exactly: scheme, host (in any case) and port.
    pub listed: Vec<Origin>,
}

impl AllowedOrigins {
    /// The default, `self`: the server's own host, and clients that send no `Origin`.
    pub const fn same_host() -> Self {
        Self { any: false, same_host: true, listed: Vec::new() }
    }

    /// `*`: every origin.
    pub const fn any() -> Self {
        Self { any: true, same_host: false, listed: Vec::new() }
    }

    /// Whether an upgrade with `origin` (its `Origin` header, `None` without one) and `host`
    /// (its `Host` header) may open a WebSocket.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        if self.any {
            return true;
        }
        // `null` (a sandboxed page, a file) and anything else that is not an origin matches
        // no entry but `*`.
        let Ok(origin) = Origin::parse(origin.trim()) else { return false };
        (self.same_host && host.is_some_and(|host| origin.is_host(host))) || self.listed.contains(&origin)
    }
}

impl Default for AllowedOrigins {
    fn default() -> Self {
        Self::same_host()
    }
}

impl FromStr for AllowedOrigins {
    type Err = String;

    /// Reads a comma-separated list of origins, `self` and `*` (spaces around each are
    /// ignored).
    fn from_str(text: &str) -> Result<Self, String> {
        let mut allowed = Self { any: false, same_host: false, listed: Vec::new() };
        for entry in text.split(',').map(str::trim) {
            match entry {
                "" => return Err(format!("an empty entry in `{text}`: list origins, `self` or `*`")),
                "*" => allowed.any = true,
                "self" => allowed.same_host = true,
                origin => allowed.listed.push(Origin::parse(origin)?),
            }
        }
        Ok(allowed)
    }
}

impl fmt::Display for AllowedOrigins {
    /// The list as the flag takes it: `*`, then `self`, then the origins.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let listed = self.listed.iter().map(ToString::to_string);
        let entries: Vec<String> =
            [self.any.then(|| "*".to_owned()), self.same_host.then(|| "self".to_owned())]
                .into_iter()
                .flatten()
                .chain(listed)
                .collect();
        f.write_str(&entries.join(","))
    }
}

/// The `--allowed-origins` value parser.
pub(crate) fn parse(text: &str) -> Result<AllowedOrigins, String> {
    text.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &str) -> AllowedOrigins {
        list.parse().unwrap_or_else(|e| panic!("{list}: {e}"))
    }

    #[test]
    fn by_default_the_own_host_and_no_origin_are_allowed() {
        let default = AllowedOrigins::default();
        assert!(default.allows(Some("http://127.0.0.1:7777"), Some("127.0.0.1:7777")));
        assert!(default.allows(Some("https://Game.Example.com"), Some("game.example.COM")));
        assert!(default.allows(Some("http://[::1]:7777"), Some("[::1]:7777")));
        assert!(default.allows(None, Some("127.0.0.1:7777")));
        assert!(default.allows(None, None));
    }

    #[test]
    fn by_default_another_host_or_port_is_refused() {
        let default = AllowedOrigins::default();
        assert!(!default.allows(Some("https://evil.example"), Some("game.example.com")));
        // The same host on another port is another origin: another program may serve it.
        assert!(!default.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:7777")));
        assert!(!default.allows(Some("http://127.0.0.1"), Some("127.0.0.1:7777")));
        // A host that merely starts or ends with the server's.
        assert!(!default.allows(Some("http://game.example.com.evil"), Some("game.example.com")));
        assert!(!default.allows(Some("http://x.game.example.com"), Some("game.example.com")));
        // No `Host` to compare with; `null`; not an origin at all.
        assert!(!default.allows(Some("http://127.0.0.1:7777"), None));
        assert!(!default.allows(Some("null"), Some("127.0.0.1:7777")));
        assert!(!default.allows(Some("127.0.0.1:7777"), Some("127.0.0.1:7777")));
        assert!(!default.allows(Some("http://127.0.0.1:7777/"), Some("127.0.0.1:7777")));
    }

    #[test]
    fn a_host_without_a_port_means_the_origin_schemes_default() {
        let default = AllowedOrigins::default();
        assert!(default.allows(Some("http://game.example.com"), Some("game.example.com")));
        assert!(default.allows(Some("http://game.example.com"), Some("game.example.com:80")));
        assert!(default.allows(Some("https://game.example.com"), Some("game.example.com")));
        assert!(!default.allows(Some("https://game.example.com"), Some("game.example.com:80")));
        assert!(!default.allows(Some("http://game.example.com:8080"), Some("game.example.com")));
    }

    #[test]
    fn a_listed_origin_is_allowed_and_only_it() {
        let list = allowed("https://game.example.com, http://localhost:8080");
        assert_eq!(list.listed.len(), 2);
        assert!(!list.same_host && !list.any);
        assert!(list.allows(Some("https://game.example.com"), Some("anything")));
        assert!(list.allows(Some("https://GAME.example.com:443"), None));
        assert!(list.allows(Some("http://localhost:8080"), Some("127.0.0.1:7777")));
        assert!(list.allows(None, Some("127.0.0.1:7777")));
        // Another scheme, port or host is another origin.
        assert!(!list.allows(Some("http://game.example.com"), None));
        assert!(!list.allows(Some("https://game.example.com:8443"), None));
        assert!(!list.allows(Some("http://localhost:8081"), None));
        assert!(!list.allows(Some("https://www.game.example.com"), None));
        // A list without `self` does not allow the server's own host.
        assert!(!list.allows(Some("http://127.0.0.1:7777"), Some("127.0.0.1:7777")));
        let with_self = allowed("self,http://localhost:8080");
        assert!(with_self.allows(Some("http://127.0.0.1:7777"), Some("127.0.0.1:7777")));
        assert!(with_self.allows(Some("http://localhost:8080"), Some("127.0.0.1:7777")));
        assert!(!with_self.allows(Some("http://localhost:8081"), Some("127.0.0.1:7777")));
    }

    #[test]
    fn a_star_allows_every_origin() {
        for list in [allowed("*"), allowed("https://a.example, *"), AllowedOrigins::any()] {
            assert!(list.allows(Some("https://evil.example"), Some("game.example.com")));
            assert!(list.allows(Some("null"), None));
            assert!(list.allows(None, None));
        }
    }

    #[test]
    fn the_list_is_comma_separated_and_prints_as_it_parses() {
        let list = allowed(" https://A.example:443 ,self,http://b.example:8080");
        assert_eq!(list.to_string(), "self,https://a.example,http://b.example:8080");
        assert_eq!(allowed(&list.to_string()), list);
        assert_eq!(AllowedOrigins::default().to_string(), "self");
        assert_eq!(allowed("self"), AllowedOrigins::default());
        assert_eq!(allowed("*"), AllowedOrigins::any());
        assert_eq!(allowed("http://[::1]:7777").to_string(), "http://[::1]:7777");
    }

    #[test]
    fn a_bad_entry_is_refused_with_what_is_wrong() {
        let error = |text: &str| text.parse::<AllowedOrigins>().expect_err(text);
        assert!(error("").contains("empty entry"), "{}", error(""));
        assert!(error("https://a.example,").contains("empty entry"));
        assert!(error("game.example.com").contains("no scheme"));
        assert!(error("https://a.example/").contains("has a path"));
        assert!(error("https://a.example/game").contains("has a path"));
        assert!(error("https://u@a.example").contains("user name"));
        assert!(error("https://").contains("no host"));
        assert!(error("https://a.example:http").contains("not a number"));
        assert!(error("https://a.example:70000").contains("over 65535"));
        assert!(error("https://[::1").contains("closing bracket"));
        assert!(error("1http://a.example").contains("no valid scheme"));
    }
}
