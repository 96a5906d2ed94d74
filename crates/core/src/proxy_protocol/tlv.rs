//! PROXY v2 TLVs: type, 16-bit big-endian length, value.
//!
//! [`validate`] checks a whole TLV area once at decode time; afterwards
//! [`Tlvs`] walks it and [`Tlv::value`] gives typed views of the types the
//! specification and the big clouds define, raw bytes for the rest.

use super::crc32c::Crc32c;
use super::reader::Reader;
use crate::Error;

/// TLV type numbers.
pub mod kinds {
    /// `PP2_TYPE_ALPN`: the negotiated application protocol.
    pub const ALPN: u8 = 0x01;
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for (SNI).
    pub const AUTHORITY: u8 = 0x02;
    /// `PP2_TYPE_CRC32C`: checksum of the whole header.
    pub const CRC32C: u8 = 0x03;
    /// `PP2_TYPE_NOOP`: padding.
    pub const NOOP: u8 = 0x04;
    /// `PP2_TYPE_UNIQUE_ID`: opaque connection id, at most 128 bytes.
    pub const UNIQUE_ID: u8 = 0x05;
    /// `PP2_TYPE_SSL`: TLS details, with sub-TLVs.
    pub const SSL: u8 = 0x20;
    /// `PP2_SUBTYPE_SSL_VERSION`.
    pub const SSL_VERSION: u8 = 0x21;
    /// `PP2_SUBTYPE_SSL_CN`.
    pub const SSL_CN: u8 = 0x22;
    /// `PP2_SUBTYPE_SSL_CIPHER`.
    pub const SSL_CIPHER: u8 = 0x23;
    /// `PP2_SUBTYPE_SSL_SIG_ALG`.
    pub const SSL_SIG_ALG: u8 = 0x24;
    /// `PP2_SUBTYPE_SSL_KEY_ALG`.
    pub const SSL_KEY_ALG: u8 = 0x25;
    /// `PP2_TYPE_NETNS`: network namespace name.
    pub const NETNS: u8 = 0x30;
    /// Google Cloud Private Service Connect: 8-byte connection id.
    pub const GCP: u8 = 0xE0;
    /// AWS: subtype 0x01 carries the VPC endpoint id.
    pub const AWS: u8 = 0xEA;
    /// Azure: subtype 0x01 carries the Private Link `LinkID`.
    pub const AZURE: u8 = 0xEE;
}

/// Longest UNIQUE_ID value the specification allows.
pub const MAX_UNIQUE_ID: usize = 128;

/// One TLV as it stands on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The type byte.
    pub kind: u8,
    /// The value bytes.
    pub bytes: &'a [u8],
}

/// Typed view of a TLV value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlvValue<'a> {
    /// ALPN protocol id, e.g. `h2`.
    Alpn(&'a [u8]),
    /// Authority (SNI host name).
    Authority(&'a str),
    /// CRC32C of the header (already verified when decoded).
    Crc32c(u32),
    /// Padding.
    Noop,
    /// Opaque unique id.
    UniqueId(&'a [u8]),
    /// TLS details.
    Ssl(Ssl<'a>),
    /// Network namespace.
    Netns(&'a str),
    /// AWS VPC endpoint id (`vpce-...`).
    AwsVpceId(&'a str),
    /// Azure Private Link LinkID.
    AzureLinkId(u32),
    /// GCP Private Service Connect connection id.
    GcpPscConnectionId(u64),
    /// A type without a typed view (or a cloud subtype we do not know).
    Other(&'a [u8]),
}

/// The `PP2_TYPE_SSL` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ssl<'a> {
    /// `PP2_CLIENT_*` bit field (SSL, CERT_CONN, CERT_SESS).
    pub client: u8,
    /// 0 when the client certificate verified.
    pub verify: u32,
    sub: &'a [u8],
}

impl<'a> Ssl<'a> {
    /// Sub-TLVs (version, CN, cipher, algorithms).
    pub fn sub_tlvs(&self) -> Tlvs<'a> {
        Tlvs::new(self.sub)
    }

    /// The `SSL_VERSION` sub-TLV as text, e.g. `TLSv1.3`.
    pub fn version(&self) -> Option<&'a str> {
        self.sub_tlvs().find(|t| t.kind == kinds::SSL_VERSION).and_then(|t| std::str::from_utf8(t.bytes).ok())
    }
}

impl<'a> Tlv<'a> {
    /// The typed view. Values were validated at decode, so a known type
    /// only falls back to `Other` for unknown cloud subtypes.
    pub fn value(&self) -> TlvValue<'a> {
        typed(self.kind, self.bytes).unwrap_or(TlvValue::Other(self.bytes))
    }
}

fn utf8(kind: u8, b: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(b).map_err(|_| Error::V2BadTlv { kind, reason: "value is not UTF-8" })
}

fn typed(kind: u8, b: &[u8]) -> Result<TlvValue<'_>, Error> {
    let bad = |reason| Error::V2BadTlv { kind, reason };
    Ok(match kind {
        kinds::ALPN => TlvValue::Alpn(b),
        kinds::AUTHORITY => TlvValue::Authority(utf8(kind, b)?),
        kinds::CRC32C => TlvValue::Crc32c(u32::from_be_bytes(b.try_into().map_err(|_| bad("length is not 4"))?)),
        kinds::NOOP => TlvValue::Noop,
        kinds::UNIQUE_ID if b.len() > MAX_UNIQUE_ID => return Err(bad("longer than 128 bytes")),
        kinds::UNIQUE_ID => TlvValue::UniqueId(b),
        kinds::SSL => {
            let mut r = Reader::new(b);
            let (Some(client), Some(verify)) = (r.u8(), r.u32()) else {
                return Err(bad("shorter than its 5-byte client/verify fields"));
            };
            let sub = r.rest();
            structure(sub)?;
            TlvValue::Ssl(Ssl { client, verify, sub })
        }
        kinds::NETNS => TlvValue::Netns(utf8(kind, b)?),
        kinds::AWS => match b.split_first() {
            Some((0x01, id)) => TlvValue::AwsVpceId(utf8(kind, id)?),
            Some(_) => TlvValue::Other(b),
            None => return Err(bad("missing subtype")),
        },
        kinds::AZURE => match b.split_first() {
            Some((0x01, id)) => {
                TlvValue::AzureLinkId(u32::from_le_bytes(id.try_into().map_err(|_| bad("LinkID is not 4 bytes"))?))
            }
            Some(_) => TlvValue::Other(b),
            None => return Err(bad("missing subtype")),
        },
        kinds::GCP => {
            TlvValue::GcpPscConnectionId(u64::from_be_bytes(b.try_into().map_err(|_| bad("length is not 8"))?))
        }
        _ => TlvValue::Other(b),
    })
}

/// Checks that `area` is a sequence of whole TLVs.
fn structure(area: &[u8]) -> Result<(), Error> {
    let mut r = Reader::new(area);
    while !r.is_empty() {
        let kind = r.u8().unwrap_or_default();
        let Some(len) = r.u16() else {
            return Err(Error::V2TlvTruncated { kind, declared: 3, available: r.left() + 1 });
        };
        let available = r.left();
        if r.take(usize::from(len)).is_none() {
            return Err(Error::V2TlvTruncated { kind, declared: usize::from(len), available });
        }
    }
    Ok(())
}

/// Validates the TLV area of a header: whole TLVs, known values well formed,
/// at most one CRC32C and, if present, matching. `header` is the entire
/// header; `offset` is where `area` starts in it.
pub(super) fn validate(area: &[u8], header: &[u8], offset: usize) -> Result<(), Error> {
    structure(area)?;
    let mut crc_seen = false;
    let mut pos = offset;
    for tlv in Tlvs::new(area) {
        typed(tlv.kind, tlv.bytes)?;
        if tlv.kind == kinds::CRC32C {
            if crc_seen {
                return Err(Error::V2BadTlv { kind: tlv.kind, reason: "CRC32C appears twice" });
            }
            crc_seen = true;
            let value_at = pos + 3;
            let expected = u32::from_be_bytes(tlv.bytes.try_into().unwrap_or_default());
            let before = header.get(..value_at).unwrap_or_default();
            let after = header.get(value_at + 4..).unwrap_or_default();
            let computed = Crc32c::new().update(before).update(&[0; 4]).update(after).finish();
            if computed != expected {
                return Err(Error::V2ChecksumMismatch { expected, computed });
            }
        }
        pos += 3 + tlv.bytes.len();
    }
    Ok(())
}

/// Iterator over a validated TLV area.
#[derive(Clone, Debug)]
pub struct Tlvs<'a> {
    r: Reader<'a>,
}

impl<'a> Tlvs<'a> {
    pub(super) fn new(area: &'a [u8]) -> Tlvs<'a> {
        Tlvs { r: Reader::new(area) }
    }
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        let kind = self.r.u8()?;
        let len = self.r.u16()?;
        let bytes = self.r.take(usize::from(len))?;
        Some(Tlv { kind, bytes })
    }
}
