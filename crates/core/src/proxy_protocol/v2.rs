//! PROXY v2: a 16-byte fixed part (signature, version/command,
//! family/transport, big-endian length), the address block of the family,
//! then TLVs up to the declared length.
//!
//! LOCAL headers are accepted whatever their family, and their block is
//! skipped unread, as the specification requires. TLVs of PROXY headers are
//! validated here once (structure, known value sizes, CRC32C) so readers of
//! a decoded header never meet a malformed one.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::reader::Reader;
use super::{tlv, Addresses, Command, Decoded, ProxyHeader, Transport, Version};
use crate::Error;

/// The 12-byte v2 signature.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Signature, version/command, family/transport, length.
pub(super) const FIXED_LEN: usize = 16;

pub(super) const INET_LEN: usize = 12;
pub(super) const INET6_LEN: usize = 36;
pub(super) const UNIX_LEN: usize = 216;
const UNIX_PATH: usize = 108;

pub(super) fn decode(buf: &[u8]) -> Result<Decoded<'_>, Error> {
    let n = buf.len().min(SIGNATURE.len());
    if buf.get(..n) != SIGNATURE.get(..n) {
        return Ok(Decoded::NotProxy);
    }
    let mut r = Reader::new(buf);
    let (Some(_sig), Some(ver_cmd), Some(fam), Some(len)) = (r.take(12), r.u8(), r.u8(), r.u16()) else {
        return Ok(Decoded::Incomplete { needed: FIXED_LEN - buf.len() });
    };
    if ver_cmd >> 4 != 2 {
        return Err(Error::V2BadVersion(ver_cmd >> 4));
    }
    let command = match ver_cmd & 0x0f {
        0 => Command::Local,
        1 => Command::Proxy,
        c => return Err(Error::V2BadCommand(c)),
    };
    let transport = match fam & 0x0f {
        0 => Transport::Unspec,
        1 => Transport::Stream,
        2 => Transport::Dgram,
        t => return Err(Error::V2BadTransport(t)),
    };
    let family = fam >> 4;
    if family > 3 {
        return Err(Error::V2BadFamily(family));
    }
    let len = usize::from(len);
    let Some(mut body) = r.sub(len) else {
        return Ok(Decoded::Incomplete { needed: len - r.left() });
    };
    let total = FIXED_LEN + len;
    if command == Command::Local {
        let header = ProxyHeader { version: Version::V2, command, transport, addresses: Addresses::Unspec, tlvs: &[] };
        return Ok(Decoded::Header { header, len: total });
    }
    let need = match family {
        1 => INET_LEN,
        2 => INET6_LEN,
        3 => UNIX_LEN,
        _ => 0,
    };
    let block = body.take(need).ok_or(Error::V2AddressTooShort { needed: need, declared: len })?;
    let addresses = addresses(family, block);
    let tlvs = body.rest();
    let header_bytes = buf.get(..total).unwrap_or_default();
    tlv::validate(tlvs, header_bytes, total - tlvs.len())?;
    let header = ProxyHeader { version: Version::V2, command, transport, addresses, tlvs };
    Ok(Decoded::Header { header, len: total })
}

fn addresses(family: u8, block: &[u8]) -> Addresses<'_> {
    let mut r = Reader::new(block);
    match family {
        1 => {
            let (Some(s), Some(d), Some(sp), Some(dp)) = (r.array::<4>(), r.array::<4>(), r.u16(), r.u16()) else {
                return Addresses::Unspec;
            };
            Addresses::Inet {
                src: SocketAddr::new(Ipv4Addr::from(s).into(), sp),
                dst: SocketAddr::new(Ipv4Addr::from(d).into(), dp),
            }
        }
        2 => {
            let (Some(s), Some(d), Some(sp), Some(dp)) = (r.array::<16>(), r.array::<16>(), r.u16(), r.u16()) else {
                return Addresses::Unspec;
            };
            Addresses::Inet {
                src: SocketAddr::new(Ipv6Addr::from(s).into(), sp),
                dst: SocketAddr::new(Ipv6Addr::from(d).into(), dp),
            }
        }
        3 => {
            let (Some(s), Some(d)) = (r.take(UNIX_PATH), r.take(UNIX_PATH)) else {
                return Addresses::Unspec;
            };
            Addresses::Unix { src: trim_nul(s), dst: trim_nul(d) }
        }
        _ => Addresses::Unspec,
    }
}

fn trim_nul(path: &[u8]) -> &[u8] {
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    path.get(..end).unwrap_or_default()
}
