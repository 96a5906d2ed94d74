//! Writing PROXY headers: what HAProxy `send-proxy` / `send-proxy-v2` and
//! cloud load balancers put in front of a relayed connection.

use std::io::Write as _;
use std::net::SocketAddr;

use super::crc32c::crc32c;
use super::tlv::kinds;
use super::v2::SIGNATURE;
use super::{Command, Transport};
use crate::Error;

/// Appends a v1 header (`PROXY TCP4|TCP6 ...\r\n`, or `PROXY UNKNOWN\r\n`
/// when `addrs` is `None`) to `out`.
pub fn encode_v1(addrs: Option<(SocketAddr, SocketAddr)>, out: &mut Vec<u8>) -> Result<(), Error> {
    // Writing into a Vec cannot fail.
    let _ = match addrs {
        None => out.write_all(b"PROXY UNKNOWN\r\n"),
        Some((SocketAddr::V4(s), SocketAddr::V4(d))) => {
            write!(out, "PROXY TCP4 {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port())
        }
        Some((SocketAddr::V6(s), SocketAddr::V6(d))) => {
            write!(out, "PROXY TCP6 {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port())
        }
        Some(_) => return Err(Error::CannotEncode("source and destination are of different IP families")),
    };
    Ok(())
}

/// Builds a v2 header.
///
/// ```
/// use realip_core::proxy_protocol::{V2Builder, decode_complete};
/// let bytes = V2Builder::proxy("203.0.113.7:51234".parse().unwrap(), "10.0.0.1:443".parse().unwrap())
///     .tlv(0x02, b"app.example.com")
///     .crc32c(true)
///     .encode()
///     .unwrap();
/// let (header, len) = decode_complete(&bytes).unwrap();
/// assert_eq!(len, bytes.len());
/// assert_eq!(header.source(), Some("203.0.113.7:51234".parse().unwrap()));
/// ```
#[derive(Clone, Debug)]
pub struct V2Builder<'a> {
    command: Command,
    transport: Transport,
    addrs: Option<(SocketAddr, SocketAddr)>,
    tlvs: Vec<(u8, &'a [u8])>,
    crc: bool,
}

impl<'a> V2Builder<'a> {
    /// A PROXY command over TCP for `src` → `dst`.
    pub fn proxy(src: SocketAddr, dst: SocketAddr) -> V2Builder<'a> {
        V2Builder {
            command: Command::Proxy,
            transport: Transport::Stream,
            addrs: Some((src, dst)),
            tlvs: Vec::new(),
            crc: false,
        }
    }

    /// A LOCAL command (health check): no addresses.
    pub fn local() -> V2Builder<'a> {
        V2Builder { command: Command::Local, transport: Transport::Unspec, addrs: None, tlvs: Vec::new(), crc: false }
    }

    /// A PROXY command with family `AF_UNSPEC` (no addresses).
    pub fn unspec() -> V2Builder<'a> {
        V2Builder { command: Command::Proxy, transport: Transport::Unspec, addrs: None, tlvs: Vec::new(), crc: false }
    }

    /// Sets the transport (default: stream for PROXY with addresses).
    #[must_use]
    pub fn transport(mut self, t: Transport) -> V2Builder<'a> {
        self.transport = t;
        self
    }

    /// Appends a TLV.
    #[must_use]
    pub fn tlv(mut self, kind: u8, value: &'a [u8]) -> V2Builder<'a> {
        self.tlvs.push((kind, value));
        self
    }

    /// Appends a CRC32C TLV last, computed over the finished header.
    #[must_use]
    pub fn crc32c(mut self, on: bool) -> V2Builder<'a> {
        self.crc = on;
        self
    }

    /// Writes the header.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the header to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        out.extend_from_slice(&SIGNATURE);
        let cmd = match self.command {
            Command::Local => 0x20,
            Command::Proxy => 0x21,
        };
        let transport = match self.transport {
            Transport::Unspec => 0,
            Transport::Stream => 1,
            Transport::Dgram => 2,
        };
        let family = match self.addrs {
            None => 0x00,
            Some((SocketAddr::V4(_), SocketAddr::V4(_))) => 0x10,
            Some((SocketAddr::V6(_), SocketAddr::V6(_))) => 0x20,
            Some(_) => return Err(Error::CannotEncode("source and destination are of different IP families")),
        };
        out.extend_from_slice(&[cmd, family | transport, 0, 0]);
        match self.addrs {
            Some((SocketAddr::V4(s), SocketAddr::V4(d))) => {
                out.extend_from_slice(&s.ip().octets());
                out.extend_from_slice(&d.ip().octets());
                out.extend_from_slice(&s.port().to_be_bytes());
                out.extend_from_slice(&d.port().to_be_bytes());
            }
            Some((SocketAddr::V6(s), SocketAddr::V6(d))) => {
                out.extend_from_slice(&s.ip().octets());
                out.extend_from_slice(&d.ip().octets());
                out.extend_from_slice(&s.port().to_be_bytes());
                out.extend_from_slice(&d.port().to_be_bytes());
            }
            _ => {}
        }
        for &(kind, value) in &self.tlvs {
            let len =
                u16::try_from(value.len()).map_err(|_| Error::CannotEncode("a TLV is longer than 65535 bytes"))?;
            out.push(kind);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(value);
        }
        let crc_at = self.crc.then(|| {
            out.extend_from_slice(&[kinds::CRC32C, 0, 4]);
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            at
        });
        let body = out.len() - start - 16;
        let len = u16::try_from(body).map_err(|_| Error::CannotEncode("header is longer than 65535 bytes"))?;
        if let Some(slot) = out.get_mut(start + 14..start + 16) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
        if let Some(at) = crc_at {
            let sum = crc32c(out.get(start..).unwrap_or_default());
            if let Some(slot) = out.get_mut(at..at + 4) {
                slot.copy_from_slice(&sum.to_be_bytes());
            }
        }
        Ok(())
    }
}
