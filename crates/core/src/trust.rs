//! Trusted-proxy sets: which hops may tell us who the client is.
//!
//! A [`TrustedProxies`] is built once from CIDRs and then only queried. It
//! keeps IPv4 and IPv6 ranges as sorted, merged, non-overlapping `[start, end]`
//! intervals, so membership is a binary search over integers, never a scan
//! of strings. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are unwrapped
//! before matching, both when building and when querying, so an IPv4 CIDR
//! matches the mapped form of its addresses and nothing else of IPv6.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::Error;

/// Returns the IPv4 address inside an IPv4-mapped IPv6 address, or the
/// address unchanged.
///
/// Only the mapped form `::ffff:0:0/96` is unwrapped; the deprecated
/// IPv4-compatible form `::a.b.c.d` stays IPv6, as in every kernel API.
#[inline]
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

/// One IPv4 or IPv6 network: an address and a prefix length.
///
/// Host bits are cleared on construction (`10.1.2.3/8` is `10.0.0.0/8`), as
/// nginx `set_real_ip_from` does. A bare address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Builds a network, clearing host bits. IPv4-mapped IPv6 networks of
    /// prefix 96 or more become the equivalent IPv4 network.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, Error> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(Error::InvalidCidr {
                input: format!("{addr}/{prefix}"),
                reason: "prefix length is larger than the address",
            });
        }
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (addr, prefix),
            },
            _ => (addr, prefix),
        };
        let addr = match addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix))),
        };
        Ok(Cidr { addr, prefix })
    }

    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` (after unmapping) lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, unmap(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => u32::from(ip) & mask32(self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => u128::from(ip) & mask128(self.prefix) == u128::from(net),
            _ => false,
        }
    }

    /// True for `0.0.0.0/0` and `::/0`: networks that trust the whole internet.
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Cidr, Error> {
        let invalid = |reason| Error::InvalidCidr { input: s.to_owned(), reason };
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| invalid("not an IPv4 or IPv6 address"))?;
        let prefix = match prefix {
            None => {
                if addr.is_ipv4() {
                    32
                } else {
                    128
                }
            }
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| invalid("prefix length is not a number from 0 to 128"))?
            }
            Some(_) => return Err(invalid("prefix length is not a number from 0 to 128")),
        };
        Cidr::new(addr, prefix).map_err(|_| invalid("prefix length is larger than the address"))
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// Named sets accepted wherever a CIDR is: `loopback` and `private`.
const PRESETS: &[(&str, &[&str])] = &[
    ("loopback", &["127.0.0.0/8", "::1/128"]),
    (
        "private",
        &[
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "fc00::/7",
            "::1/128",
            "fe80::/10",
        ],
    ),
];

/// The set of proxies whose forwarding information we believe.
///
/// Empty by default: nothing is trusted unless configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// Sorted, merged, non-overlapping inclusive ranges.
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    /// The networks as given, for display and for audits.
    cidrs: Vec<Cidr>,
}

impl TrustedProxies {
    /// A set that trusts nobody.
    pub fn none() -> TrustedProxies {
        TrustedProxies::default()
    }

    /// True when every IPv4 or every IPv6 address is trusted, whether
    /// written as `0.0.0.0/0` or as smaller networks that add up to it.
    pub fn covers_all_of_a_family(&self) -> bool {
        self.v4.first() == Some(&(0, u32::MAX)) || self.v6.first() == Some(&(0, u128::MAX))
    }

    /// Builds a set from networks.
    pub fn from_cidrs<I: IntoIterator<Item = Cidr>>(cidrs: I) -> TrustedProxies {
        let cidrs: Vec<Cidr> = cidrs.into_iter().collect();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for c in &cidrs {
            match c.addr {
                IpAddr::V4(a) => {
                    let start = u32::from(a);
                    v4.push((start, start | !mask32(c.prefix)));
                }
                IpAddr::V6(a) => {
                    let start = u128::from(a);
                    v6.push((start, start | !mask128(c.prefix)));
                }
            }
        }
        TrustedProxies { v4: merge(v4), v6: merge(v6), cidrs }
    }

    /// Parses CIDRs, bare addresses and the presets `loopback` and `private`.
    /// Every bad entry is reported, not only the first.
    pub fn parse<I, S>(items: I) -> Result<TrustedProxies, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut cidrs = Vec::new();
        let mut errors = Vec::new();
        for item in items {
            let item = item.as_ref().trim();
            if let Some((_, preset)) = PRESETS.iter().find(|(name, _)| *name == item) {
                cidrs.extend(preset.iter().filter_map(|c| c.parse::<Cidr>().ok()));
                continue;
            }
            match item.parse::<Cidr>() {
                Ok(c) => cidrs.push(c),
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(TrustedProxies::from_cidrs(cidrs)),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Many(errors)),
        }
    }

    /// Whether `ip` belongs to a trusted proxy. IPv4-mapped IPv6 is unwrapped.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match unmap(ip) {
            IpAddr::V4(a) => in_ranges(&self.v4, u32::from(a)),
            IpAddr::V6(a) => in_ranges(&self.v6, u128::from(a)),
        }
    }

    /// True when nothing is trusted.
    pub fn is_empty(&self) -> bool {
        self.cidrs.is_empty()
    }

    /// The networks as configured.
    pub fn cidrs(&self) -> &[Cidr] {
        &self.cidrs
    }

    /// True when a `/0` network makes every address of a family trusted.
    pub fn trusts_everyone(&self) -> bool {
        self.cidrs.iter().any(Cidr::is_everything)
    }
}

fn merge<T: Ord + Copy + Into<u128>>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            // Overlapping or adjacent: extend. `end + 1` cannot overflow
            // in u128 for u32 values; for u128 an end of MAX covers all.
            Some(last) if start.into() <= last.1.into().saturating_add(1) => {
                if end > last.1 {
                    last.1 = end;
                }
            }
            _ => out.push((start, end)),
        }
    }
    out
}

#[inline]
fn in_ranges<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    // Index of the first range starting after x; the candidate is the one before.
    let i = ranges.partition_point(|r| r.0 <= x);
    i > 0 && ranges.get(i - 1).is_some_and(|r| x <= r.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parsing_table() {
        let ok = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("192.0.2.7", "192.0.2.7/32"),
            ("2001:db8::1", "2001:db8::1/128"),
            ("2001:DB8::/32", "2001:db8::/32"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
        ];
        for (input, want) in ok {
            assert_eq!(input.parse::<Cidr>().unwrap().to_string(), want, "{input}");
        }
        let bad =
            ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0/8", "10.0.0.0/-1", "10.0.0.0/+8", "", "x/8", "010.0.0.1"];
        for input in bad {
            let err = input.parse::<Cidr>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{input}`")), "{input}: {err}");
        }
    }

    #[test]
    fn membership_is_numeric_not_textual() {
        let t = TrustedProxies::parse(["10.0.0.0/8", "192.0.2.1", "2001:db8::/48"]).unwrap();
        assert!(t.contains(ip("10.255.255.255")));
        assert!(!t.contains(ip("11.0.0.0")));
        // A string-prefix comparison would accept these.
        assert!(!t.contains(ip("100.0.0.1")));
        assert!(!t.contains(ip("192.0.2.10")));
        assert!(t.contains(ip("192.0.2.1")));
        assert!(t.contains(ip("2001:db8:0:ffff::1")));
        assert!(!t.contains(ip("2001:db8:1::1")));
    }

    #[test]
    fn mapped_addresses_are_unwrapped_and_families_never_mix() {
        let t = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        assert!(t.contains(ip("::ffff:10.1.2.3")));
        assert!(!t.contains(ip("::10.1.2.3")));
        assert!(!t.contains(ip("::a01:203")));
        let all4 = TrustedProxies::parse(["0.0.0.0/0"]).unwrap();
        assert!(!all4.contains(ip("2001:db8::1")));
        assert!(all4.contains(ip("::ffff:203.0.113.9")));
    }

    #[test]
    fn presets_and_merging() {
        let t = TrustedProxies::parse(["private", "10.0.0.0/9", "10.128.0.0/9"]).unwrap();
        assert!(t.contains(ip("172.31.0.1")));
        assert!(!t.contains(ip("172.32.0.1")));
        assert!(t.contains(ip("fd00::1")));
        assert!(t.contains(ip("::1")));
        assert!(!t.contains(ip("203.0.113.1")));
        assert_eq!(t.v4.iter().filter(|r| r.0 == u32::from(Ipv4Addr::new(10, 0, 0, 0))).count(), 1);
        let l = TrustedProxies::parse(["loopback"]).unwrap();
        assert!(l.contains(ip("127.9.9.9")) && !l.contains(ip("10.0.0.1")));
    }

    #[test]
    fn every_bad_entry_is_reported() {
        let err = TrustedProxies::parse(["10.0.0.0/33", "ok?", "10.0.0.0/8"]).unwrap_err().to_string();
        assert!(err.contains("10.0.0.0/33") && err.contains("ok?"), "{err}");
    }

    #[test]
    fn nothing_is_trusted_by_default() {
        let t = TrustedProxies::default();
        assert!(!t.contains(ip("127.0.0.1")) && !t.contains(ip("::1")));
        assert!(TrustedProxies::parse(["::/0"]).unwrap().contains(ip("2001:db8::9")));
    }

    proptest::proptest! {
        #[test]
        fn membership_matches_naive_scan(nets in proptest::collection::vec((proptest::num::u32::ANY, 0u8..=32), 0..24), probe: u32) {
            let cidrs: Vec<Cidr> = nets.iter().map(|&(a, p)| Cidr::new(IpAddr::V4(Ipv4Addr::from(a)), p).unwrap()).collect();
            let naive = cidrs.iter().any(|c| c.contains(IpAddr::V4(Ipv4Addr::from(probe))));
            let set = TrustedProxies::from_cidrs(cidrs);
            proptest::prop_assert_eq!(set.contains(IpAddr::V4(Ipv4Addr::from(probe))), naive);
        }
    }
}
