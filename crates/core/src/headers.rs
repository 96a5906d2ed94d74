//! Access to request headers without copying them, and the right-to-left
//! walk over X-Forwarded-For and X-Real-IP entries.
//!
//! Resolution reads headers through the [`Headers`] trait so the same engine
//! runs over `http::HeaderMap` (feature `http`), a slice of `(name, value)`
//! pairs (the CLI, tests), or anything else. Several lines of one header are
//! one list, joined in order (RFC 9110 §5.3), which is why the walk iterates
//! lines from the last and entries from the right within each line.

use std::net::IpAddr;

use crate::node::parse_node;

/// Lower-case names of the header sources.
pub mod names {
    /// `X-Forwarded-For`.
    pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
    /// RFC 7239 `Forwarded`.
    pub const FORWARDED: &str = "forwarded";
    /// `X-Real-IP`.
    pub const X_REAL_IP: &str = "x-real-ip";
}

/// Read-only, zero-copy access to request header lines.
pub trait Headers {
    /// Lines of one header, first to last.
    type Values<'a>: DoubleEndedIterator<Item = &'a [u8]>
    where
        Self: 'a;

    /// Every line of header `name` (lower-case ASCII), in request order.
    fn values(&self, name: &'static str) -> Self::Values<'_>;
}

/// Lines of one header in a `[(name, value)]` slice.
#[derive(Clone, Debug)]
pub struct PairValues<'a, N, V> {
    pairs: std::slice::Iter<'a, (N, V)>,
    name: &'static str,
}

impl<'a, N: AsRef<str>, V: AsRef<[u8]>> Iterator for PairValues<'a, N, V> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let name = self.name;
        self.pairs
            .by_ref()
            .find(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> DoubleEndedIterator for PairValues<'_, N, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let name = self.name;
        self.pairs
            .by_ref()
            .rfind(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> Headers for [(N, V)] {
    type Values<'a>
        = PairValues<'a, N, V>
    where
        Self: 'a;

    fn values(&self, name: &'static str) -> PairValues<'_, N, V> {
        PairValues {
            pairs: self.iter(),
            name,
        }
    }
}

#[cfg(feature = "http")]
impl Headers for http::HeaderMap {
    type Values<'a> = std::iter::Map<
        http::header::ValueIter<'a, http::HeaderValue>,
        fn(&'a http::HeaderValue) -> &'a [u8],
    >;

    fn values(&self, name: &'static str) -> Self::Values<'_> {
        self.get_all(name).iter().map(http::HeaderValue::as_bytes)
    }
}

/// One entry met while walking a header from the right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A well-formed address (ports and brackets stripped, IPv4 unmapped).
    Ip(IpAddr),
    /// `unknown`, an obfuscated identifier, or garbage.
    Invalid,
}

impl Entry {
    pub(crate) fn parse(raw: &[u8]) -> Entry {
        parse_node(raw).map_or(Entry::Invalid, Entry::Ip)
    }
}

/// X-Forwarded-For entries of every line, right to left. Empty list
/// elements (`a,,b`, a blank line) are skipped as RFC 9110 §5.6.1 allows.
pub fn xff_rev<'a, I>(lines: I) -> impl Iterator<Item = Entry> + 'a
where
    I: DoubleEndedIterator<Item = &'a [u8]> + 'a,
{
    lines
        .rev()
        .flat_map(|line| line.rsplit(|&b| b == b','))
        .filter(|e| !e.trim_ascii().is_empty())
        .map(Entry::parse)
}

/// X-Real-IP lines, right to left: each line must be exactly one address.
pub fn x_real_ip_rev<'a, I>(lines: I) -> impl Iterator<Item = Entry> + 'a
where
    I: DoubleEndedIterator<Item = &'a [u8]> + 'a,
{
    lines.rev().map(Entry::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(lines: &[&str]) -> Vec<String> {
        xff_rev(lines.iter().map(|l| l.as_bytes()))
            .map(|e| match e {
                Entry::Ip(ip) => ip.to_string(),
                Entry::Invalid => "!".into(),
            })
            .collect()
    }

    #[test]
    fn xff_lines_join_in_order_and_walk_from_the_right() {
        assert_eq!(
            walk(&["203.0.113.1, 10.0.0.1", "10.0.0.2"]),
            ["10.0.0.2", "10.0.0.1", "203.0.113.1"]
        );
        assert_eq!(
            walk(&[" 192.0.2.1:99 ,[2001:db8::2]:1 ,, unknown"]),
            ["!", "2001:db8::2", "192.0.2.1"]
        );
        assert!(walk(&[""]).is_empty());
        assert!(walk(&[]).is_empty());
    }

    #[test]
    fn pair_headers_match_names_case_insensitively_both_ways() {
        let h = [
            ("X-Forwarded-For", "1.1.1.1"),
            ("Host", "x"),
            ("x-forwarded-for", "2.2.2.2"),
        ];
        let fwd: Vec<_> = h.values(names::X_FORWARDED_FOR).collect();
        assert_eq!(fwd, [b"1.1.1.1".as_slice(), b"2.2.2.2"]);
        let back: Vec<_> = h.values(names::X_FORWARDED_FOR).rev().collect();
        assert_eq!(back, [b"2.2.2.2".as_slice(), b"1.1.1.1"]);
    }

    #[test]
    fn x_real_ip_takes_whole_lines() {
        let got: Vec<_> =
            x_real_ip_rev([b"192.0.2.1".as_slice(), b"192.0.2.1, 192.0.2.2"].into_iter()).collect();
        assert_eq!(
            got,
            [Entry::Invalid, Entry::Ip("192.0.2.1".parse().unwrap())]
        );
    }
}
