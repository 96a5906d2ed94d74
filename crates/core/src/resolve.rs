//! Deciding who the client is: sources, strategies and the [`Resolution`].
//!
//! Input is the TCP peer, an optional PROXY header and the request headers;
//! the policy is a [`Resolver`] (trusted proxies, ordered sources, strategy).
//! The invariants, from DESIGN.md:
//! - nothing is trusted by default, and a source is read only when the hop
//!   that delivered it (the *effective peer*) is trusted;
//! - an accepted PROXY header replaces the TCP peer as the effective peer
//!   (layer 4 first); header sources are then walked from it;
//! - header sources are tried in order and the first one present wins;
//! - a non-IP entry stops the walk with a warning, keeping the last good
//!   address to its right.
//!
//! Resolution never allocates: entries are walked in place and warnings are
//! `Copy` values in a fixed array.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::forwarded::forwarded_rev;
use crate::headers::{x_real_ip_rev, xff_rev, Entry, Field, Headers, NamedHeader};
use crate::proxy_protocol::ProxyHeader;
use crate::trust::{unmap, TrustedProxies};
use crate::Error;

/// Where a client address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The TCP peer of the connection.
    Peer,
    /// The source address of an accepted PROXY header.
    ProxyProtocol,
    /// `X-Forwarded-For`.
    Xff,
    /// RFC 7239 `Forwarded` (`for=`).
    Forwarded,
    /// `X-Real-IP`.
    XRealIp,
    /// A custom header holding one address (`header:NAME`, e.g.
    /// `CF-Connecting-IP`), trusted like X-Real-IP.
    Header(NamedHeader),
}

impl Source {
    /// Every fixed source, in the order of the CLI documentation
    /// (`header:NAME` takes a name, so it is not listed).
    pub const ALL: [Source; 5] = [Source::Peer, Source::ProxyProtocol, Source::Xff, Source::Forwarded, Source::XRealIp];

    /// The name used in configuration, CLI flags and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Peer => "peer",
            Source::ProxyProtocol => "proxy-protocol",
            Source::Xff => "xff",
            Source::Forwarded => "forwarded",
            Source::XRealIp => "x-real-ip",
            Source::Header(h) => h.label(),
        }
    }

    /// The header this source reads, if it is a header source.
    pub fn field(self) -> Option<Field> {
        match self {
            Source::Xff => Some(Field::XForwardedFor),
            Source::Forwarded => Some(Field::Forwarded),
            Source::XRealIp => Some(Field::XRealIp),
            Source::Header(h) => Some(Field::Named(h)),
            Source::Peer | Source::ProxyProtocol => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = Error;
    fn from_str(s: &str) -> Result<Source, Error> {
        if let Some(name) = s.strip_prefix("header:") {
            return NamedHeader::new(name).map(Source::Header);
        }
        Source::ALL.into_iter().find(|src| src.as_str() == s).ok_or_else(|| Error::UnknownSource(s.to_owned()))
    }
}

/// How to pick the client out of a trusted header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Walk from the right skipping trusted proxies; the first untrusted
    /// address is the client (nginx `real_ip_recursive on`).
    #[default]
    RightmostUntrusted,
    /// The Nth address from the right; 0 is the peer (Envoy
    /// `xff_num_trusted_hops` with `use_remote_address`).
    TrustedHops(u16),
    /// The leftmost address: forgeable by any client; diagnostics only.
    Leftmost,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::RightmostUntrusted => f.write_str("rightmost-untrusted"),
            Strategy::TrustedHops(n) => write!(f, "trusted-hops:{n}"),
            Strategy::Leftmost => f.write_str("leftmost"),
        }
    }
}

impl FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Strategy, Error> {
        match s {
            "rightmost-untrusted" => Ok(Strategy::RightmostUntrusted),
            "leftmost" => Ok(Strategy::Leftmost),
            _ => s
                .strip_prefix("trusted-hops:")
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
                .map(Strategy::TrustedHops)
                .ok_or_else(|| Error::UnknownStrategy(s.to_owned())),
        }
    }
}

/// Something worth telling the operator about one resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warning {
    /// A header entry was not an IP address; the walk stopped there.
    InvalidEntry {
        /// The header.
        source: Source,
        /// Its position counted from the right (1 = rightmost).
        hop: u16,
    },
    /// `trusted-hops:N` met a header with fewer than N entries.
    TooFewHops {
        /// The header.
        source: Source,
        /// N.
        wanted: u16,
        /// Entries present.
        found: u16,
    },
    /// The leftmost strategy was used: any client can forge the answer.
    LeftmostIsForgeable,
}

impl Warning {
    /// A fixed name for the kind of warning (a metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            Warning::InvalidEntry { .. } => "invalid_entry",
            Warning::TooFewHops { .. } => "too_few_hops",
            Warning::LeftmostIsForgeable => "leftmost",
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Warning::InvalidEntry { source, hop } => {
                write!(f, "invalid entry in {source} at hop {hop} (not an IP address); using the address to its right")
            }
            Warning::TooFewHops { source, wanted, found } => {
                write!(f, "{source} has {found} entries, fewer than the {wanted} trusted hops; using the peer")
            }
            Warning::LeftmostIsForgeable => {
                f.write_str("leftmost strategy: any client can forge the leftmost entry; diagnostics only")
            }
        }
    }
}

/// The warnings of one resolution, `Copy` and inline: a flag and at most one
/// warning that ended the walk (a walk stops at its first problem).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Warnings {
    leftmost: bool,
    walk: Option<Warning>,
}

impl Warnings {
    fn push(&mut self, w: Warning) {
        match w {
            Warning::LeftmostIsForgeable => self.leftmost = true,
            Warning::InvalidEntry { .. } | Warning::TooFewHops { .. } => self.walk = Some(w),
        }
    }

    /// The warnings: strategy, then walk.
    pub fn iter(&self) -> impl Iterator<Item = Warning> + '_ {
        [self.leftmost.then_some(Warning::LeftmostIsForgeable), self.walk].into_iter().flatten()
    }

    /// True when there is nothing to report.
    pub fn is_empty(&self) -> bool {
        !self.leftmost && self.walk.is_none()
    }
}

/// The answer: who the client is, and why we believe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The client address (IPv4-mapped IPv6 unwrapped).
    pub ip: IpAddr,
    /// Where it came from.
    pub source: Source,
    /// How many hops left of the effective peer: 0 is the peer (or PROXY
    /// source), 1 the rightmost header entry, and so on.
    pub hop: u16,
    /// Anything odd met on the way.
    pub warnings: Warnings,
}

/// Ordered sources, without duplicates and with at most one `header:NAME`,
/// stored inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sources {
    items: [Source; 6],
    len: u8,
}

impl Sources {
    /// Builds an ordered list; a repeated source is an error.
    pub fn new(list: &[Source]) -> Result<Sources, Error> {
        let mut s = Sources { items: [Source::Peer; 6], len: 0 };
        for &src in list {
            if s.contains(src) {
                return Err(Error::DuplicateSource(src.as_str()));
            }
            if let (Source::Header(h), true) = (src, s.as_slice().iter().any(|x| matches!(x, Source::Header(_)))) {
                return Err(Error::InvalidHeaderSource {
                    input: h.name().to_owned(),
                    reason: "only one header:NAME source may be listed",
                });
            }
            if let Some(slot) = s.items.get_mut(usize::from(s.len)) {
                *slot = src;
                s.len += 1;
            }
        }
        Ok(s)
    }

    /// Parses names such as `["proxy-protocol", "xff", "header:cf-connecting-ip"]`.
    pub fn parse<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Result<Sources, Error> {
        let list = names.into_iter().map(|n| n.as_ref().parse()).collect::<Result<Vec<Source>, Error>>()?;
        Sources::new(&list)
    }

    /// The sources in order.
    pub fn as_slice(&self) -> &[Source] {
        self.items.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Whether `src` is listed.
    pub fn contains(&self, src: Source) -> bool {
        self.as_slice().contains(&src)
    }
}

impl Default for Sources {
    /// `proxy-protocol`, then `xff`: the proxy's documented default.
    fn default() -> Sources {
        Sources {
            items: [Source::ProxyProtocol, Source::Xff, Source::Peer, Source::Peer, Source::Peer, Source::Peer],
            len: 2,
        }
    }
}

/// What a connection's PROXY header said, as resolution needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Proxied {
    /// The connection had no PROXY header.
    #[default]
    No,
    /// LOCAL command, `UNKNOWN` or a non-IP family: use the peer.
    Local,
    /// The relayed client's address; accepted only if the peer is trusted.
    Client(IpAddr),
    /// The relayed client's address from a header the listener already
    /// accepted from an allowed sender (its own `proxy_protocol_from`).
    Accepted(IpAddr),
}

/// A client-IP policy: whom to trust, what to read, how to pick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolver {
    /// Proxies whose forwarding information is believed.
    pub trusted: TrustedProxies,
    /// Sources in order of preference.
    pub sources: Sources,
    /// How a header list is read.
    pub strategy: Strategy,
}

impl Resolver {
    /// A resolver with the given parts.
    pub fn new(trusted: TrustedProxies, sources: Sources, strategy: Strategy) -> Resolver {
        Resolver { trusted, sources, strategy }
    }

    /// Resolves the client of one request.
    ///
    /// `proxy` is the PROXY header the connection began with, if any. It is
    /// used when `proxy-protocol` is a source, and then only if `peer` is
    /// trusted: otherwise the answer is [`Error::UntrustedProxySender`] and
    /// the connection should be closed.
    pub fn resolve<H: Headers + ?Sized>(
        &self,
        peer: IpAddr,
        proxy: Option<&ProxyHeader<'_>>,
        headers: &H,
    ) -> Result<Resolution, Error> {
        self.resolve_proxied(peer, proxy.map_or(Proxied::No, ProxyHeader::proxied), headers)
    }

    /// [`Resolver::resolve`] for callers that kept only what the PROXY
    /// header said (a connection's header outlives its bytes).
    pub fn resolve_proxied<H: Headers + ?Sized>(
        &self,
        peer: IpAddr,
        proxied: Proxied,
        headers: &H,
    ) -> Result<Resolution, Error> {
        let peer = unmap(peer);
        let warnings = Warnings::default();
        // An accepted PROXY header's source is the effective peer whether
        // or not `proxy-protocol` is listed in `sources`, so headers are
        // never walked from the load balancer's own address (it speaks
        // PROXY; it never writes X-Forwarded-For: trusting it for headers
        // would let every client forge).
        let (eff, eff_source) = match proxied {
            Proxied::No => (peer, Source::Peer),
            Proxied::Accepted(ip) => (unmap(ip), Source::ProxyProtocol),
            _ if !self.trusted.contains(peer) => return Err(Error::UntrustedProxySender(peer)),
            Proxied::Client(ip) => (unmap(ip), Source::ProxyProtocol),
            Proxied::Local => (peer, Source::Peer), // LOCAL / UNKNOWN: use the peer
        };
        let at_peer = Resolution { ip: eff, source: eff_source, hop: 0, warnings };
        for &src in self.sources.as_slice() {
            let Some(field) = src.field() else {
                if src == Source::Peer {
                    return Ok(at_peer);
                }
                continue; // proxy-protocol was applied above, at layer 4
            };
            let mut lines = headers.lines(field);
            let Some(last) = lines.next_back() else {
                continue; // absent: try the next source
            };
            if !self.trusted.contains(eff) {
                // Present but delivered by an untrusted hop: never read.
                return Ok(at_peer);
            }
            // One lookup: the walk goes on from the line already taken.
            let lines = Rejoin { rest: lines, last: Some(last) };
            return Ok(match field {
                Field::XForwardedFor => self.walk(at_peer, src, xff_rev(lines)),
                Field::Forwarded => self.walk(at_peer, src, forwarded_rev(lines)),
                Field::XRealIp | Field::Named(_) => self.walk(at_peer, src, x_real_ip_rev(lines)),
            });
        }
        Ok(at_peer)
    }

    /// Applies the strategy to entries given right to left; `at_peer` is the
    /// answer for hop 0.
    fn walk(&self, mut at_peer: Resolution, source: Source, entries: impl Iterator<Item = Entry>) -> Resolution {
        let (wanted, skip_trusted) = match self.strategy {
            Strategy::RightmostUntrusted => (None, true),
            Strategy::TrustedHops(0) => return at_peer,
            Strategy::TrustedHops(n) => (Some(n), false),
            Strategy::Leftmost => {
                at_peer.warnings.push(Warning::LeftmostIsForgeable);
                (None, false)
            }
        };
        // The last good address walked, and its hop.
        let mut last: Option<(IpAddr, u16)> = None;
        let mut hop: u16 = 0;
        for entry in entries {
            hop = hop.saturating_add(1);
            let Entry::Ip(ip) = entry else {
                at_peer.warnings.push(Warning::InvalidEntry { source, hop });
                break;
            };
            last = Some((ip, hop));
            if wanted == Some(hop) || (skip_trusted && !self.trusted.contains(ip)) {
                break;
            }
        }
        match (wanted, last) {
            // trusted-hops:N that did not reach hop N falls back to the peer.
            (Some(n), Some((_, h))) if h < n && at_peer.warnings.walk.is_none() => {
                at_peer.warnings.push(Warning::TooFewHops { source, wanted: n, found: hop });
                at_peer
            }
            (Some(n), None) if at_peer.warnings.walk.is_none() => {
                at_peer.warnings.push(Warning::TooFewHops { source, wanted: n, found: 0 });
                at_peer
            }
            (_, Some((ip, hop))) => Resolution { ip, source, hop, warnings: at_peer.warnings },
            (_, None) => at_peer,
        }
    }
}

/// Header lines after the last was taken off the back to test presence;
/// the walk, which goes from the back, sees it first.
struct Rejoin<'a, I> {
    rest: I,
    last: Option<&'a [u8]>,
}

impl<'a, I: DoubleEndedIterator<Item = &'a [u8]>> Iterator for Rejoin<'a, I> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        self.rest.next().or_else(|| self.last.take())
    }
}

impl<'a, I: DoubleEndedIterator<Item = &'a [u8]>> DoubleEndedIterator for Rejoin<'a, I> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        self.last.take().or_else(|| self.rest.next_back())
    }
}
