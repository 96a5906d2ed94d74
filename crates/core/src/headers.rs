//! Access to request headers without copying them, and the right-to-left
//! walk over X-Forwarded-For and X-Real-IP entries.
//!
//! Resolution reads headers through the [`Headers`] trait so the same engine
//! runs over `http::HeaderMap` (feature `http`), a slice of `(name, value)`
//! pairs (the CLI, tests), or anything else. Several lines of one header are
//! one list, joined in order (RFC 9110 §5.3), which is why the walk iterates
//! lines from the last and entries from the right within each line.

use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::node::parse_node;
use crate::Error;

/// The forwarding headers realip reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `X-Forwarded-For`.
    XForwardedFor,
    /// RFC 7239 `Forwarded`.
    Forwarded,
    /// `X-Real-IP`.
    XRealIp,
    /// A header named in configuration (`header:NAME`), read like
    /// X-Real-IP: each line is one address.
    Named(NamedHeader),
}

impl Field {
    /// The lower-case header name.
    pub const fn name(self) -> &'static str {
        match self {
            Field::XForwardedFor => "x-forwarded-for",
            Field::Forwarded => "forwarded",
            Field::XRealIp => "x-real-ip",
            Field::Named(h) => h.name,
        }
    }
}

/// Headers that frame a message, belong to one hop, or route it (lower
/// case): never a client-address header, and never removed as a forwarding
/// header from untrusted hops (`strip_untrusted`), since taking them away
/// changes where a request goes or where it ends, not who sent it.
/// (Pseudo-headers such as `:authority` are not tokens, so no name check
/// lets them through.)
pub const FRAMING_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
];

/// Whether `name` (any case) is one of [`FRAMING_HEADERS`].
pub fn is_framing_header(name: &str) -> bool {
    FRAMING_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The name of a custom client-address header such as `CF-Connecting-IP`
/// or `True-Client-IP` (source `header:NAME`).
///
/// Invariants: the name is a valid RFC 9110 token of at most
/// [`NamedHeader::MAX_LEN`] bytes, stored lower-case, and is not one of the
/// headers realip reads with their own parsers (X-Forwarded-For,
/// Forwarded, X-Real-IP) nor one of [`FRAMING_HEADERS`]. Names are interned once per process (a name
/// configured again, e.g. on every reload, reuses the first copy), so the
/// type is `Copy` and resolution and its provenance (`header:NAME` as a
/// `&'static str` for logs and metric labels) never allocate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NamedHeader {
    /// `header:` + name.
    label: &'static str,
    /// The name alone (a suffix of `label`).
    name: &'static str,
}

/// Interned `header:NAME` labels: bounded by the distinct names ever
/// configured, which come from the operator, never from the network.
static INTERNED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

impl NamedHeader {
    /// Longest accepted name. Header lookups in `http::HeaderMap` stay on
    /// the stack up to this length.
    pub const MAX_LEN: usize = 64;

    /// Validates and interns a header name (any case).
    pub fn new(name: &str) -> Result<NamedHeader, Error> {
        let bad = |reason| Err(Error::InvalidHeaderSource { input: name.to_owned(), reason });
        if name.is_empty() {
            return bad("the header name is empty");
        }
        if name.len() > NamedHeader::MAX_LEN {
            return bad("the header name is longer than 64 bytes");
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
            return bad("the header name has a character a header name cannot have");
        }
        let lower = name.to_ascii_lowercase();
        if [Field::XForwardedFor, Field::Forwarded, Field::XRealIp].iter().any(|f| f.name() == lower) {
            return bad("this header has its own source: use `xff`, `forwarded` or `x-real-ip`");
        }
        if is_framing_header(&lower) {
            return bad("this header frames or routes the request (Host, Content-Length, Transfer-Encoding, Connection, Upgrade, TE, Trailer, Keep-Alive, Proxy-Connection): it never carries a client address");
        }
        let label = format!("header:{lower}");
        let mut table = INTERNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let label: &'static str = if let Some(l) = table.iter().find(|l| **l == label) {
            l
        } else {
            let l: &'static str = Box::leak(label.into_boxed_str());
            table.push(l);
            l
        };
        let name = label.get("header:".len()..).unwrap_or_default();
        Ok(NamedHeader { label, name })
    }

    /// The lower-case header name.
    pub const fn name(self) -> &'static str {
        self.name
    }

    /// `header:NAME`, as configured and reported.
    pub const fn label(self) -> &'static str {
        self.label
    }
}

impl fmt::Debug for NamedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label)
    }
}

/// Read-only, zero-copy access to request header lines.
pub trait Headers {
    /// Lines of one header, first to last.
    type Values<'a>: DoubleEndedIterator<Item = &'a [u8]>
    where
        Self: 'a;

    /// Every line of header `field`, in request order.
    fn lines(&self, field: Field) -> Self::Values<'_>;
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
        self.pairs.by_ref().find(|(n, _)| n.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> DoubleEndedIterator for PairValues<'_, N, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let name = self.name;
        self.pairs.by_ref().rfind(|(n, _)| n.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

impl<N: AsRef<str>, V: AsRef<[u8]>> Headers for [(N, V)] {
    type Values<'a>
        = PairValues<'a, N, V>
    where
        Self: 'a;

    fn lines(&self, field: Field) -> PairValues<'_, N, V> {
        PairValues { pairs: self.iter(), name: field.name() }
    }
}

#[cfg(feature = "http")]
impl Headers for http::HeaderMap {
    type Values<'a> =
        std::iter::Map<http::header::ValueIter<'a, http::HeaderValue>, fn(&'a http::HeaderValue) -> &'a [u8]>;

    #[inline]
    fn lines(&self, field: Field) -> Self::Values<'_> {
        // Pre-built names: no parsing or validating of the name per lookup.
        static XFF: http::HeaderName = http::HeaderName::from_static(Field::XForwardedFor.name());
        static FORWARDED: http::HeaderName = http::HeaderName::from_static(Field::Forwarded.name());
        static X_REAL_IP: http::HeaderName = http::HeaderName::from_static(Field::XRealIp.name());
        let values = match field {
            Field::XForwardedFor => self.get_all(&XFF),
            Field::Forwarded => self.get_all(&FORWARDED),
            Field::XRealIp => self.get_all(&X_REAL_IP),
            // Already lower-case and at most 64 bytes: looked up without
            // allocating.
            Field::Named(h) => self.get_all(h.name()),
        };
        values.iter().map(http::HeaderValue::as_bytes)
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
    #[inline]
    pub(crate) fn parse(raw: &[u8]) -> Entry {
        parse_node(raw).map_or(Entry::Invalid, Entry::Ip)
    }
}

/// X-Forwarded-For entries of every line, right to left. Empty list
/// elements (`a,,b`, a blank line) are skipped as RFC 9110 §5.6.1 allows.
pub fn xff_rev<'a, I>(lines: I) -> XffRev<'a, I>
where
    I: DoubleEndedIterator<Item = &'a [u8]>,
{
    XffRev { lines, line: None }
}

/// Iterator returned by [`xff_rev`].
#[derive(Clone, Debug)]
pub struct XffRev<'a, I> {
    lines: I,
    /// What is left of the current line (entries not yet walked).
    line: Option<&'a [u8]>,
}

impl<'a, I: DoubleEndedIterator<Item = &'a [u8]>> Iterator for XffRev<'a, I> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        loop {
            let line = match self.line {
                Some(line) => line,
                None => self.lines.next_back()?,
            };
            let (rest, entry) = match line.iter().rposition(|&b| b == b',') {
                Some(comma) => (line.get(..comma), line.get(comma + 1..).unwrap_or_default()),
                None => (None, line),
            };
            self.line = rest;
            let entry = entry.trim_ascii();
            if !entry.is_empty() {
                return Some(Entry::parse(entry));
            }
        }
    }
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
        assert_eq!(walk(&["203.0.113.1, 10.0.0.1", "10.0.0.2"]), ["10.0.0.2", "10.0.0.1", "203.0.113.1"]);
        assert_eq!(walk(&[" 192.0.2.1:99 ,[2001:db8::2]:1 ,, unknown"]), ["!", "2001:db8::2", "192.0.2.1"]);
        assert!(walk(&[""]).is_empty());
        assert!(walk(&[]).is_empty());
    }

    #[test]
    fn pair_headers_match_names_case_insensitively_both_ways() {
        let h = [("X-Forwarded-For", "1.1.1.1"), ("Host", "x"), ("x-forwarded-for", "2.2.2.2")];
        let fwd: Vec<_> = h.lines(Field::XForwardedFor).collect();
        assert_eq!(fwd, [b"1.1.1.1".as_slice(), b"2.2.2.2"]);
        let back: Vec<_> = h.lines(Field::XForwardedFor).rev().collect();
        assert_eq!(back, [b"2.2.2.2".as_slice(), b"1.1.1.1"]);
    }

    #[test]
    fn named_headers_are_validated_lowercased_and_interned() {
        let a = NamedHeader::new("CF-Connecting-IP").unwrap();
        let b = NamedHeader::new("cf-connecting-ip").unwrap();
        assert_eq!((a.name(), a.label()), ("cf-connecting-ip", "header:cf-connecting-ip"));
        assert!(std::ptr::eq(a.label(), b.label()), "the second parse reuses the interned copy");
        let h = [("CF-Connecting-IP", "192.0.2.1"), ("x", "y")];
        assert_eq!(h.lines(Field::Named(a)).collect::<Vec<_>>(), [b"192.0.2.1".as_slice()]);
        for (bad, why) in [
            ("", "empty"),
            ("bad name", "character"),
            ("X-Forwarded-For", "own source"),
            ("x-real-ip", "own source"),
            ("Host", "frames or routes"),
            ("transfer-encoding", "frames or routes"),
            ("Proxy-Connection", "frames or routes"),
            (":authority", "character"),
            (&"a".repeat(65), "longer than 64"),
        ] {
            let e = NamedHeader::new(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn x_real_ip_takes_whole_lines() {
        let got: Vec<_> = x_real_ip_rev([b"192.0.2.1".as_slice(), b"192.0.2.1, 192.0.2.2"].into_iter()).collect();
        assert_eq!(got, [Entry::Invalid, Entry::Ip("192.0.2.1".parse().unwrap())]);
    }
}
