//! One address entry of a forwarding header, as proxies actually write it.
//!
//! Accepted: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]`,
//! `[2001:db8::1]:8080`, and RFC 7239 obfuscated ports (`192.0.2.1:_p1`).
//! Surrounding spaces and tabs are trimmed; IPv4-mapped IPv6 becomes IPv4.
//! Anything else (`unknown`, `_hidden`, zone ids, leading zeros, garbage) is
//! not an address: the caller decides what that means. Never allocates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::trust::unmap;

/// Parses one entry; `None` when it is not an IP address.
// Inlined into the header walks: returning the 17-byte `IpAddr` through
// memory costs a store-forwarding stall per entry.
#[inline(always)]
#[allow(clippy::inline_always)] // measured: see the comment above
pub fn parse_node(entry: &[u8]) -> Option<IpAddr> {
    let entry = entry.trim_ascii();
    if let Some(rest) = entry.strip_prefix(b"[") {
        let close = rest.iter().position(|&b| b == b']')?;
        let (inner, after) = rest.split_at(close);
        let after = after.get(1..)?;
        if !after.is_empty() {
            valid_port(after.strip_prefix(b":")?).then_some(())?;
        }
        return Some(unmap(IpAddr::V6(parse_str::<Ipv6Addr>(inner)?)));
    }
    // The common case, a bare or ported IPv4 address, in one pass.
    if let Some((v4, rest)) = ipv4_prefix(entry) {
        match rest {
            [] => return Some(IpAddr::V4(v4)),
            [b':', port @ ..] if valid_port(port) => return Some(IpAddr::V4(v4)),
            _ => {} // e.g. `2001:db8::1` starts like a number: try IPv6
        }
    }
    if entry.contains(&b':') {
        return Some(unmap(IpAddr::V6(parse_str::<Ipv6Addr>(entry)?)));
    }
    None
}

/// Parses a strict dotted quad at the start of `b` and returns it with the
/// bytes after it. Octets are 1 to 3 digits, at most 255, without leading
/// zeros (which some parsers read as octal).
#[inline]
fn ipv4_prefix(b: &[u8]) -> Option<(Ipv4Addr, &[u8])> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut n: u16 = 0;
        while let Some(&d) = b.get(i) {
            if !d.is_ascii_digit() || i - start == 3 {
                break;
            }
            n = n * 10 + u16::from(d - b'0');
            i += 1;
        }
        let len = i - start;
        if len == 0 || (len > 1 && b.get(start) == Some(&b'0')) || b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        *octet = u8::try_from(n).ok()?;
    }
    Some((Ipv4Addr::from(octets), b.get(i..).unwrap_or_default()))
}

/// Strict dotted quad and nothing else.
#[inline]
pub fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    match ipv4_prefix(b)? {
        (ip, []) => Some(ip),
        _ => None,
    }
}

fn parse_str<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
    // Longest textual IPv6 (with embedded IPv4) is 45 bytes; reject early so
    // attacker-sized input costs nothing.
    if b.is_empty() || b.len() > 45 {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// A decimal port 0..=65535, or an RFC 7239 obfuscated port `_[A-Za-z0-9._-]+`.
fn valid_port(p: &[u8]) -> bool {
    match p.split_first() {
        Some((b'_', rest)) => {
            !rest.is_empty() && rest.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        }
        _ => {
            !p.is_empty()
                && p.len() <= 5
                && p.iter().all(u8::is_ascii_digit)
                && p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn ipv4_matches_std(s in "[0-9.]{0,18}") {
            proptest::prop_assert_eq!(parse_ipv4(s.as_bytes()), s.parse::<Ipv4Addr>().ok());
        }

        #[test]
        fn ipv4_round_trips(a: [u8; 4]) {
            let ip = Ipv4Addr::from(a);
            proptest::prop_assert_eq!(parse_ipv4(ip.to_string().as_bytes()), Some(ip));
        }
    }

    #[test]
    fn entries_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("192.0.2.1", Some("192.0.2.1")),
            ("  192.0.2.1\t", Some("192.0.2.1")),
            ("192.0.2.1:8080", Some("192.0.2.1")),
            ("192.0.2.1:_abc", Some("192.0.2.1")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("2001:DB8:0:0:0:0:0:1", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            ("::ffff:198.51.100.7", Some("198.51.100.7")),
            ("[::ffff:198.51.100.7]:1", Some("198.51.100.7")),
            ("unknown", None),
            ("_hidden", None),
            ("", None),
            ("192.0.2.1:", None),
            ("192.0.2.1:65536", None),
            ("192.0.2.1:80:80", None),
            ("[2001:db8::1", None),
            ("[2001:db8::1]x", None),
            ("[2001:db8::1]:", None),
            ("[192.0.2.1]", None),
            ("fe80::1%eth0", None),
            ("01.2.3.4", None),
            ("1.2.3", None),
            ("192.0.2.1 192.0.2.2", None),
            ("\u{fffd}", None),
            ("255.255.255.255", Some("255.255.255.255")),
            ("0.0.0.0", Some("0.0.0.0")),
            ("256.1.1.1", None),
            ("1.2.3.4.5", None),
            ("1..3.4", None),
            ("1.2.3.4.", None),
            ("1.2.3.0004", None),
            ("1.2.3.-4", None),
        ];
        for (input, want) in table {
            let got = parse_node(input.as_bytes()).map(|ip| ip.to_string());
            assert_eq!(got.as_deref(), *want, "entry {input:?}");
        }
    }
}
