//! PROXY protocol v1 and v2 (HAProxy's specification): incremental decoder
//! and encoder.
//!
//! [`decode`] looks at the bytes received so far and answers one of three
//! things: [`Decoded::Incomplete`] (read more; nothing consumed),
//! [`Decoded::NotProxy`] (no signature: hand the bytes on untouched, for
//! `optional` listeners), or [`Decoded::Header`] with the number of bytes
//! the header used. Anything malformed is a named [`Error`](crate::Error).
//! The decoded [`ProxyHeader`] borrows from the input: addresses are copied
//! out (they are small), TLVs stay as a validated slice.
//!
//! Limits: a v1 header is at most [`V1_MAX_LEN`] bytes; a v2 header at most
//! 16 + 65535 bytes, the most its length field can say.

mod crc32c;
mod encode;
mod reader;
mod tlv;
mod v1;
mod v2;

use std::net::SocketAddr;

pub use encode::{encode_v1, V2Builder};
pub use tlv::{kinds, Ssl, Tlv, TlvValue, Tlvs};
pub use v1::V1_MAX_LEN;
pub use v2::SIGNATURE as V2_SIGNATURE;

use crate::Error;

/// Protocol version of a decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// The text format: `PROXY TCP4 a b p q\r\n`.
    V1,
    /// The binary format with TLVs.
    V2,
}

/// What the sender asks of the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// The connection was made by the proxy itself (health check): use the
    /// real connection endpoints.
    Local,
    /// The connection was relayed for the client in the addresses.
    Proxy,
}

/// Transport of the relayed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Unknown or unspecified.
    Unspec,
    /// TCP (`SOCK_STREAM`).
    Stream,
    /// UDP (`SOCK_DGRAM`).
    Dgram,
}

/// The endpoints a header carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addresses<'a> {
    /// None: v1 `UNKNOWN`, v2 `AF_UNSPEC`, or a LOCAL command.
    Unspec,
    /// IPv4 or IPv6 source and destination (always the same family).
    Inet {
        /// The client side of the relayed connection.
        src: SocketAddr,
        /// The address the client connected to.
        dst: SocketAddr,
    },
    /// `AF_UNIX` paths (108 bytes each on the wire, trailing NULs removed).
    Unix {
        /// Source path.
        src: &'a [u8],
        /// Destination path.
        dst: &'a [u8],
    },
}

/// A decoded PROXY header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyHeader<'a> {
    /// v1 or v2.
    pub version: Version,
    /// LOCAL or PROXY (always PROXY for v1).
    pub command: Command,
    /// Stream, datagram or unspecified.
    pub transport: Transport,
    /// The relayed endpoints.
    pub addresses: Addresses<'a>,
    /// Validated TLV area (empty for v1 and LOCAL).
    tlvs: &'a [u8],
}

impl<'a> ProxyHeader<'a> {
    /// The client address this header vouches for: `None` for LOCAL,
    /// unspecified and UNIX headers, which mean "use the connection's peer".
    pub fn source(&self) -> Option<SocketAddr> {
        match (self.command, self.addresses) {
            (Command::Proxy, Addresses::Inet { src, .. }) => Some(src),
            _ => None,
        }
    }

    /// What this header means for resolution.
    pub fn proxied(&self) -> crate::resolve::Proxied {
        self.source().map_or(crate::resolve::Proxied::Local, |s| crate::resolve::Proxied::Client(s.ip()))
    }

    /// The destination address, where known.
    pub fn destination(&self) -> Option<SocketAddr> {
        match (self.command, self.addresses) {
            (Command::Proxy, Addresses::Inet { dst, .. }) => Some(dst),
            _ => None,
        }
    }

    /// TLVs in wire order (CRC32C and NOOP included).
    pub fn tlvs(&self) -> Tlvs<'a> {
        Tlvs::new(self.tlvs)
    }

    /// The family name used in JSON: `tcp4`, `tcp6`, `udp4`, `udp6`,
    /// `unix` or `unspec` (v1 UNKNOWN and every LOCAL are `unspec`).
    pub fn family_name(&self) -> &'static str {
        if self.command == Command::Local {
            return "unspec";
        }
        match (self.addresses, self.transport) {
            (Addresses::Inet { src: SocketAddr::V4(_), .. }, Transport::Dgram) => "udp4",
            (Addresses::Inet { src: SocketAddr::V6(_), .. }, Transport::Dgram) => "udp6",
            (Addresses::Inet { src: SocketAddr::V4(_), .. }, _) => "tcp4",
            (Addresses::Inet { src: SocketAddr::V6(_), .. }, _) => "tcp6",
            (Addresses::Unix { .. }, _) => "unix",
            (Addresses::Unspec, _) => "unspec",
        }
    }

    /// The first TLV of a type, typed.
    pub fn tlv(&self, kind: u8) -> Option<TlvValue<'a>> {
        self.tlvs().find(|t| t.kind == kind).map(|t| t.value())
    }
}

/// The three answers of the incremental decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A prefix of a valid header: read at least `needed` more bytes.
    Incomplete {
        /// A lower bound on the bytes still missing (exact for v2 once the
        /// 16-byte fixed part is in).
        needed: usize,
    },
    /// The bytes do not start with a PROXY signature.
    NotProxy,
    /// A complete header, which used the first `len` bytes.
    Header {
        /// The header.
        header: ProxyHeader<'a>,
        /// Bytes consumed; the application stream starts after them.
        len: usize,
    },
}

/// Decodes a PROXY header at the start of `buf`, incrementally.
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, Error> {
    let Some(&first) = buf.first() else {
        return Ok(Decoded::Incomplete { needed: 1 });
    };
    match first {
        b'P' => v1::decode(buf),
        b'\r' => v2::decode(buf),
        _ => Ok(Decoded::NotProxy),
    }
}

/// Decodes a header from input that is expected to be whole (a capture, a
/// CLI argument): running out of bytes is an error naming what was missing.
pub fn decode_complete(buf: &[u8]) -> Result<(ProxyHeader<'_>, usize), Error> {
    match decode(buf)? {
        Decoded::Header { header, len } => Ok((header, len)),
        Decoded::NotProxy => Err(Error::NotProxyProtocol),
        Decoded::Incomplete { needed } => match buf.first() {
            Some(b'\r') if buf.len() >= v2::FIXED_LEN => Err(Error::V2Truncated {
                declared: buf.len() + needed - v2::FIXED_LEN,
                available: buf.len() - v2::FIXED_LEN,
            }),
            Some(b'\r') => Err(Error::V2Incomplete { available: buf.len() }),
            _ => Err(Error::V1Incomplete { available: buf.len() }),
        },
    }
}

#[cfg(test)]
mod tests;
