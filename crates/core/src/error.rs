//! The one error type of realip-core.
//!
//! Every variant is named after the fault and documents when it occurs.
//! Variants raised on the network path (PROXY decoding, resolution) carry
//! only `Copy` data so reporting them never allocates.

use std::fmt;
use std::net::IpAddr;

/// Everything realip-core can reject.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Occurs when a trusted-proxy entry is not an address, CIDR or preset.
    InvalidCidr {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Occurs when a list of settings has several bad entries; each is kept.
    Many(Vec<Error>),
    /// Occurs when a source name is not one of `peer`, `proxy-protocol`,
    /// `xff`, `forwarded`, `x-real-ip`.
    UnknownSource(String),
    /// Occurs when a source is listed twice.
    DuplicateSource(&'static str),
    /// Occurs when a `header:NAME` source names no valid header, a header
    /// with its own source, or is listed next to another `header:` source
    /// (one custom header per policy).
    InvalidHeaderSource {
        /// The name as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Occurs when a strategy is not `rightmost-untrusted`, `leftmost` or
    /// `trusted-hops:N`.
    UnknownStrategy(String),

    /// Occurs when a PROXY header arrives from a peer not allowed to send one.
    UntrustedProxySender(IpAddr),
    /// Occurs when the input starts with neither the PROXY v1 nor v2 signature.
    NotProxyProtocol,
    /// Occurs when a v1 header has no CRLF within its 107-byte limit.
    V1TooLong,
    /// Occurs when a v1 header ends before its CRLF (complete input expected).
    V1Incomplete {
        /// Bytes available.
        available: usize,
    },
    /// Occurs when a v1 line ends with a bare LF or contains a control byte.
    V1BadLineEnding,
    /// Occurs when the v1 protocol field is not `TCP4`, `TCP6` or `UNKNOWN`.
    V1BadProtocol,
    /// Occurs when a v1 header does not have exactly the fields
    /// `PROXY proto src dst sport dport`, separated by single spaces.
    V1BadFieldCount,
    /// Occurs when a v1 address is not of the family its protocol names.
    V1BadAddress {
        /// `source` or `destination`.
        which: &'static str,
    },
    /// Occurs when a v1 port is not a decimal from 0 to 65535.
    V1BadPort {
        /// `source` or `destination`.
        which: &'static str,
    },
    /// Occurs when the v2 version nibble is not 2.
    V2BadVersion(u8),
    /// Occurs when the v2 command nibble is neither LOCAL (0) nor PROXY (1).
    V2BadCommand(u8),
    /// Occurs when the v2 address family nibble is above UNIX (3).
    V2BadFamily(u8),
    /// Occurs when the v2 transport nibble is above DGRAM (2).
    V2BadTransport(u8),
    /// Occurs when input ends inside the 16-byte fixed part of a v2
    /// header (complete input expected).
    V2Incomplete {
        /// Bytes available.
        available: usize,
    },
    /// Occurs when a v2 length field declares more bytes than follow the
    /// 16-byte fixed part (complete input expected).
    V2Truncated {
        /// The length field.
        declared: usize,
        /// Bytes after the fixed part.
        available: usize,
    },
    /// Occurs when the v2 length is too small for the address family.
    V2AddressTooShort {
        /// Bytes the family needs.
        needed: usize,
        /// Bytes the header declares after the fixed part.
        declared: usize,
    },
    /// Occurs when a TLV declares more bytes than remain in the header.
    V2TlvTruncated {
        /// The TLV type.
        kind: u8,
        /// The length it declares (or 3 for a cut-off TLV header).
        declared: usize,
        /// Bytes left.
        available: usize,
    },
    /// Occurs when a known TLV's value has the wrong size or encoding.
    V2BadTlv {
        /// The TLV type.
        kind: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// Occurs when the CRC32C TLV does not match the header's checksum.
    V2ChecksumMismatch {
        /// The value in the TLV.
        expected: u32,
        /// The checksum computed over the header.
        computed: u32,
    },
    /// Occurs when a header to encode mixes IPv4 and IPv6 endpoints, puts
    /// TLVs in a v1 header, or does not fit the 16-bit length.
    CannotEncode(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidCidr { input, reason } => write!(f, "`{input}` is not a CIDR: {reason}"),
            Error::Many(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Error::UnknownSource(s) => write!(
                f,
                "`{s}` is not a client-IP source (expected peer, proxy-protocol, xff, forwarded, x-real-ip or header:NAME)"
            ),
            Error::DuplicateSource(s) => write!(f, "source `{s}` is listed twice"),
            Error::InvalidHeaderSource { input, reason } => write!(f, "source `header:{input}`: {reason}"),
            Error::UnknownStrategy(s) => {
                write!(f, "`{s}` is not a strategy (expected rightmost-untrusted, leftmost or trusted-hops:N)")
            }
            Error::UntrustedProxySender(ip) => {
                write!(f, "PROXY header from {ip}, which is not a trusted sender")
            }
            Error::NotProxyProtocol => f.write_str("input is not a PROXY protocol header (no v1 or v2 signature)"),
            Error::V1TooLong => f.write_str("PROXY v1: no CRLF within the 107-byte limit"),
            Error::V1Incomplete { available } => {
                write!(f, "PROXY v1: header ends after {available} bytes without CRLF")
            }
            Error::V1BadLineEnding => f.write_str("PROXY v1: line must end in CRLF and hold no control bytes"),
            Error::V1BadProtocol => f.write_str("PROXY v1: protocol must be TCP4, TCP6 or UNKNOWN"),
            Error::V1BadFieldCount => {
                f.write_str("PROXY v1: expected `PROXY <proto> <src> <dst> <sport> <dport>` separated by single spaces")
            }
            Error::V1BadAddress { which } => {
                write!(f, "PROXY v1: {which} address is not valid for the protocol")
            }
            Error::V1BadPort { which } => {
                write!(f, "PROXY v1: {which} port is not a decimal from 0 to 65535")
            }
            Error::V2BadVersion(v) => write!(f, "PROXY v2: version is {v}, expected 2"),
            Error::V2BadCommand(c) => write!(f, "PROXY v2: command {c} is neither LOCAL (0) nor PROXY (1)"),
            Error::V2BadFamily(x) => write!(f, "PROXY v2: address family {x} is unknown"),
            Error::V2BadTransport(x) => write!(f, "PROXY v2: transport protocol {x} is unknown"),
            Error::V2Incomplete { available } => {
                write!(f, "PROXY v2: input ends after {available} bytes, inside the 16-byte fixed header")
            }
            Error::V2Truncated { declared, available } => {
                write!(f, "PROXY v2: declared length {declared} exceeds the {available} bytes available")
            }
            Error::V2AddressTooShort { needed, declared } => {
                write!(f, "PROXY v2: length {declared} is shorter than the {needed} address bytes its family needs")
            }
            Error::V2TlvTruncated { kind, declared, available } => {
                write!(f, "PROXY v2: TLV 0x{kind:02x} declares {declared} bytes but only {available} remain")
            }
            Error::V2BadTlv { kind, reason } => write!(f, "PROXY v2: TLV 0x{kind:02x}: {reason}"),
            Error::V2ChecksumMismatch { expected, computed } => {
                write!(f, "PROXY v2: CRC32C TLV says 0x{expected:08x} but the header checksums to 0x{computed:08x}")
            }
            Error::CannotEncode(why) => write!(f, "cannot encode PROXY header: {why}"),
        }
    }
}

impl std::error::Error for Error {}
