//! What is known about a connection before any request on it: the TCP
//! peer and, if the connection began with one, the PROXY header (owned, so
//! it can ride along in request extensions and be shown by the echo app).

use std::net::SocketAddr;
use std::sync::Arc;

use realip_core::proxy_protocol::{Addresses, Command, ProxyHeader, Version};
use realip_core::Proxied;
use serde::{Serialize, Serializer};

/// The peer of a connection and its PROXY header, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The accepted PROXY header.
    pub proxy: Option<Arc<ProxyInfo>>,
}

impl ConnectionInfo {
    /// A connection without a PROXY header.
    pub fn new(peer: SocketAddr) -> ConnectionInfo {
        ConnectionInfo { peer, proxy: None }
    }

    /// What resolution needs of the PROXY header.
    pub fn proxied(&self) -> Proxied {
        self.proxy.as_ref().map_or(Proxied::No, |p| p.proxied)
    }
}

/// An owned, printable PROXY header. Serializes to the JSON of
/// `realip pp decode --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProxyInfo {
    /// 1 or 2.
    pub version: u8,
    /// `proxy` or `local`.
    pub command: &'static str,
    /// `tcp4`, `tcp6`, `udp4`, `udp6`, `unix` or `unspec`.
    pub family: &'static str,
    /// Source endpoint (serialized as `ip:port`, `[ip]:port` or a UNIX
    /// path).
    pub src: Option<Endpoint>,
    /// Destination endpoint.
    pub dst: Option<Endpoint>,
    /// TLVs in wire order.
    pub tlvs: Vec<TlvInfo>,
    /// What resolution needs.
    #[serde(skip)]
    pub proxied: Proxied,
}

/// An address carried by a PROXY header, kept typed: an IP endpoint is
/// used per request (the hop's port, the access log) without parsing it
/// again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP or UDP over IPv4 or IPv6.
    Inet(SocketAddr),
    /// A UNIX socket path (lossy UTF-8).
    Unix(String),
}

impl Endpoint {
    /// The IP endpoint, if this is one.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Inet(a) => Some(*a),
            Endpoint::Unix(_) => None,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Inet(a) => a.fmt(f),
            Endpoint::Unix(p) => f.write_str(p),
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One TLV, as hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlvInfo {
    /// The type byte.
    #[serde(rename = "type")]
    pub kind: u8,
    /// The value, lower-case hex.
    pub hex: String,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]).map(char::from).collect()
}

impl From<&ProxyHeader<'_>> for ProxyInfo {
    fn from(h: &ProxyHeader<'_>) -> ProxyInfo {
        let (src, dst) = match (h.command, h.addresses) {
            (Command::Proxy, Addresses::Inet { src, dst }) => (Some(Endpoint::Inet(src)), Some(Endpoint::Inet(dst))),
            (Command::Proxy, Addresses::Unix { src, dst }) => (
                Some(Endpoint::Unix(String::from_utf8_lossy(src).into_owned())),
                Some(Endpoint::Unix(String::from_utf8_lossy(dst).into_owned())),
            ),
            _ => (None, None),
        };
        ProxyInfo {
            version: match h.version {
                Version::V1 => 1,
                Version::V2 => 2,
            },
            command: match h.command {
                Command::Proxy => "proxy",
                Command::Local => "local",
            },
            family: h.family_name(),
            src,
            dst,
            tlvs: h.tlvs().map(|t| TlvInfo { kind: t.kind, hex: hex(t.bytes) }).collect(),
            proxied: h.proxied(),
        }
    }
}
