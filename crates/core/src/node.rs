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
#[inline]
pub fn parse_node(entry: &[u8]) -> Option<IpAddr> {
    let entry = entry.trim_ascii();
    let ip = if let Some(rest) = entry.strip_prefix(b"[") {
        let close = rest.iter().position(|&b| b == b']')?;
        let (inner, after) = rest.split_at(close);
        let after = after.get(1..)?;
        if !after.is_empty() {
            valid_port(after.strip_prefix(b":")?).then_some(())?;
        }
        IpAddr::V6(parse_str::<Ipv6Addr>(inner)?)
    } else {
        match colons(entry) {
            0 => IpAddr::V4(parse_str::<Ipv4Addr>(entry)?),
            1 => {
                let colon = entry.iter().position(|&b| b == b':')?;
                let (host, port) = entry.split_at(colon);
                valid_port(port.get(1..)?).then_some(())?;
                IpAddr::V4(parse_str::<Ipv4Addr>(host)?)
            }
            _ => IpAddr::V6(parse_str::<Ipv6Addr>(entry)?),
        }
    };
    Some(unmap(ip))
}

fn colons(s: &[u8]) -> usize {
    s.iter().filter(|&&b| b == b':').count()
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
            !rest.is_empty()
                && rest
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
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
        ];
        for (input, want) in table {
            let got = parse_node(input.as_bytes()).map(|ip| ip.to_string());
            assert_eq!(got.as_deref(), *want, "entry {input:?}");
        }
    }
}
