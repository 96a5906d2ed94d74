//! PROXY v1: one ASCII line, `PROXY TCP4|TCP6|UNKNOWN ...\r\n`, at most
//! 107 bytes including the CRLF.
//!
//! Strict: single spaces between fields, CRLF only, addresses of the family
//! the protocol names, decimal ports without sign or leading zeros. After
//! `UNKNOWN` the rest of the line is ignored, as the specification says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Addresses, Command, Decoded, ProxyHeader, Transport, Version};
use crate::Error;

/// Longest v1 header, CRLF included.
pub const V1_MAX_LEN: usize = 107;

const PREFIX: &[u8] = b"PROXY ";

pub(super) fn decode(buf: &[u8]) -> Result<Decoded<'_>, Error> {
    let n = buf.len().min(PREFIX.len());
    if buf.get(..n) != PREFIX.get(..n) {
        return Ok(Decoded::NotProxy);
    }
    let window = buf.get(..buf.len().min(V1_MAX_LEN)).unwrap_or_default();
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= V1_MAX_LEN {
            return Err(Error::V1TooLong);
        }
        return Ok(Decoded::Incomplete { needed: 1 });
    };
    let cr = lf.checked_sub(1).and_then(|cr| window.get(..cr).zip(window.get(cr)));
    let Some((line, b'\r')) = cr else {
        return Err(Error::V1BadLineEnding);
    };
    if line.iter().any(|&b| !(0x20..0x7f).contains(&b)) {
        return Err(Error::V1BadLineEnding);
    }
    let header = parse_line(line)?;
    Ok(Decoded::Header { header, len: lf + 1 })
}

fn parse_line(line: &[u8]) -> Result<ProxyHeader<'static>, Error> {
    let mut fields = line.split(|&b| b == b' ');
    let _proxy = fields.next();
    let proto = fields.next().ok_or(Error::V1BadFieldCount)?;
    let v6 = match proto {
        b"UNKNOWN" => {
            return Ok(ProxyHeader {
                version: Version::V1,
                command: Command::Proxy,
                transport: Transport::Unspec,
                addresses: Addresses::Unspec,
                tlvs: &[],
            })
        }
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return Err(Error::V1BadProtocol),
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(Error::V1BadFieldCount);
    };
    let src = address(src, v6).ok_or(Error::V1BadAddress { which: "source" })?;
    let dst = address(dst, v6).ok_or(Error::V1BadAddress { which: "destination" })?;
    let sport = port(sport).ok_or(Error::V1BadPort { which: "source" })?;
    let dport = port(dport).ok_or(Error::V1BadPort { which: "destination" })?;
    Ok(ProxyHeader {
        version: Version::V1,
        command: Command::Proxy,
        transport: Transport::Stream,
        addresses: Addresses::Inet { src: SocketAddr::new(src, sport), dst: SocketAddr::new(dst, dport) },
        tlvs: &[],
    })
}

fn address(field: &[u8], v6: bool) -> Option<IpAddr> {
    let s = std::str::from_utf8(field).ok()?;
    if v6 {
        s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

fn port(field: &[u8]) -> Option<u16> {
    let ok = matches!(field, [b'0'] | [b'1'..=b'9', ..]) && field.len() <= 5 && field.iter().all(u8::is_ascii_digit);
    if !ok {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}
