//! RFC 7239 `Forwarded` header: a strict, zero-copy parser of the full ABNF.
//!
//! ```text
//! Forwarded         = 1#forwarded-element
//! forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//! forwarded-pair    = token "=" value
//! value             = token / quoted-string
//! ```
//!
//! Optional whitespace is accepted around `,` and `;` (real proxies emit
//! `for=a; proto=https`), never around `=`. Parameter names are
//! case-insensitive and may appear once per element. Values are returned
//! as borrowed slices; a quoted value containing `\` escapes is flagged so
//! that address parsing rejects it rather than guessing.
//!
//! Quoted strings may contain commas, so the right-to-left walk cannot split
//! on `,`: [`forwarded_rev`] parses each line forward and keeps the last
//! [`MAX_ELEMENTS`] `for=` nodes in a fixed ring on the stack.

use crate::headers::Entry;

/// Elements per line remembered for the right-to-left walk. A walk that
/// must look further left than this stops with an invalid entry.
pub const MAX_ELEMENTS: usize = 32;

/// A parameter value: token or the inside of a quoted-string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> Value<'a> {
    /// The value if it contains no quoted-pair escapes (true of every
    /// legitimate node, proto and host).
    pub fn as_str(&self) -> Option<&'a str> {
        (!self.escaped).then_some(self.raw)
    }

    /// The raw text between quotes (escapes not resolved).
    pub fn raw(&self) -> &'a str {
        self.raw
    }
}

/// One `forwarded-element`: the well-known parameters it carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Element<'a> {
    /// `for=`: the node that made the request to this proxy.
    pub for_: Option<Value<'a>>,
    /// `by=`: the interface where the request came in to the proxy.
    pub by: Option<Value<'a>>,
    /// `host=`: the Host request header as received by the proxy.
    pub host: Option<Value<'a>>,
    /// `proto=`: the protocol used to make the request.
    pub proto: Option<Value<'a>>,
}

/// Why a `Forwarded` line does not follow RFC 7239.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardedError {
    /// Occurs when a parameter name is missing or has a non-token byte.
    BadName {
        /// Byte offset in the line.
        at: usize,
    },
    /// Occurs when a parameter name is not followed by `=`.
    MissingEquals {
        /// Byte offset in the line.
        at: usize,
    },
    /// Occurs when a value is empty or has a byte not allowed in a token.
    BadValue {
        /// Byte offset in the line.
        at: usize,
    },
    /// Occurs when a quoted-string has no closing quote.
    UnterminatedQuote {
        /// Byte offset in the line.
        at: usize,
    },
    /// Occurs when one element names the same parameter twice.
    DuplicateParameter {
        /// Byte offset in the line.
        at: usize,
    },
    /// Occurs when something other than `;` or `,` follows a value.
    UnexpectedByte {
        /// Byte offset in the line.
        at: usize,
    },
}

impl std::fmt::Display for ForwardedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, at) = match *self {
            ForwardedError::BadName { at } => ("parameter name expected", at),
            ForwardedError::MissingEquals { at } => ("`=` expected after parameter name", at),
            ForwardedError::BadValue { at } => ("value is empty or not a token", at),
            ForwardedError::UnterminatedQuote { at } => ("quoted-string is not terminated", at),
            ForwardedError::DuplicateParameter { at } => ("parameter repeated in one element", at),
            ForwardedError::UnexpectedByte { at } => ("`;` or `,` expected", at),
        };
        write!(f, "Forwarded: {what} at byte {at}")
    }
}

impl std::error::Error for ForwardedError {}

/// Parses one header line into its elements, left to right. Empty list
/// elements are skipped. After the first error the iterator ends.
pub fn elements(line: &[u8]) -> Elements<'_> {
    Elements { line, pos: 0, failed: false }
}

/// Iterator returned by [`elements`].
#[derive(Clone, Debug)]
pub struct Elements<'a> {
    line: &'a [u8],
    pos: usize,
    failed: bool,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl<'a> Elements<'a> {
    fn peek(&self) -> Option<u8> {
        self.line.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        self.line.get(start..self.pos).unwrap_or_default()
    }

    fn value(&mut self) -> Result<Value<'a>, ForwardedError> {
        let start = self.pos;
        if self.peek() != Some(b'"') {
            let tok = self.token();
            // A token is ASCII, so this cannot fail; stay panic-free anyway.
            return match std::str::from_utf8(tok) {
                Ok(raw) if !raw.is_empty() => Ok(Value { raw, escaped: false }),
                _ => Err(ForwardedError::BadValue { at: start }),
            };
        }
        self.pos += 1;
        let inner = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(ForwardedError::UnterminatedQuote { at: start }),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                    match self.line.get(self.pos + 1) {
                        Some(&b) if b == b'\t' || b >= 0x20 && b != 0x7f => self.pos += 2,
                        _ => return Err(ForwardedError::BadValue { at: self.pos }),
                    }
                }
                // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
                Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => self.pos += 1,
                Some(_) => return Err(ForwardedError::BadValue { at: self.pos }),
            }
        }
        let raw = self.line.get(inner..self.pos).unwrap_or_default();
        self.pos += 1; // closing quote
        match std::str::from_utf8(raw) {
            Ok(raw) => Ok(Value { raw, escaped }),
            Err(_) => Err(ForwardedError::BadValue { at: inner }),
        }
    }

    fn element(&mut self) -> Result<Element<'a>, ForwardedError> {
        let mut el = Element::default();
        loop {
            self.skip_ows();
            match self.peek() {
                // Empty pair (`a=b;;c=d`) or the end of the element.
                Some(b';') => {
                    self.pos += 1;
                    continue;
                }
                None | Some(b',') => return Ok(el),
                _ => {}
            }
            let at = self.pos;
            let name = self.token();
            if name.is_empty() {
                return Err(ForwardedError::BadName { at });
            }
            if self.peek() != Some(b'=') {
                return Err(ForwardedError::MissingEquals { at: self.pos });
            }
            self.pos += 1;
            let value = self.value()?;
            let slot = if name.eq_ignore_ascii_case(b"for") {
                Some(&mut el.for_)
            } else if name.eq_ignore_ascii_case(b"by") {
                Some(&mut el.by)
            } else if name.eq_ignore_ascii_case(b"host") {
                Some(&mut el.host)
            } else if name.eq_ignore_ascii_case(b"proto") {
                Some(&mut el.proto)
            } else {
                None // extension parameter: validated, ignored
            };
            if let Some(slot) = slot {
                if slot.replace(value).is_some() {
                    return Err(ForwardedError::DuplicateParameter { at });
                }
            }
            self.skip_ows();
            match self.peek() {
                Some(b';') => self.pos += 1,
                None | Some(b',') => return Ok(el),
                Some(_) => return Err(ForwardedError::UnexpectedByte { at: self.pos }),
            }
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Element<'a>, ForwardedError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            self.skip_ows();
            match self.peek() {
                None => return None,
                Some(b',') => self.pos += 1, // empty list element
                Some(_) => break,
            }
        }
        let r = self.element();
        match r {
            Ok(_) => {
                if self.peek() == Some(b',') {
                    self.pos += 1;
                }
            }
            Err(_) => self.failed = true,
        }
        Some(r)
    }
}

/// The `for=` node of every element of every line, right to left.
///
/// An element without `for=`, a `for=unknown` or obfuscated node, and a line
/// that does not parse all yield [`Entry::Invalid`]: the walk stops there.
/// A broken line is one invalid entry, since nothing to the right of a
/// syntax error can be attributed to an element.
pub fn forwarded_rev<'a, I>(lines: I) -> impl Iterator<Item = Entry> + 'a
where
    I: DoubleEndedIterator<Item = &'a [u8]> + 'a,
{
    lines.rev().flat_map(LineRev::new)
}

/// Right-to-left `for=` entries of one line, from a fixed ring.
struct LineRev {
    ring: [Entry; MAX_ELEMENTS],
    /// Elements in the line (may exceed the ring).
    total: usize,
    /// How many have been yielded.
    taken: usize,
}

impl LineRev {
    fn new(line: &[u8]) -> LineRev {
        let mut ring = [Entry::Invalid; MAX_ELEMENTS];
        let mut total = 0;
        for el in elements(line) {
            let entry = match el {
                Ok(el) => el.for_.and_then(|v| v.as_str()).map_or(Entry::Invalid, |s| Entry::parse(s.as_bytes())),
                Err(_) => {
                    // Everything right of the error is unknowable: the line
                    // ends (on the right) with one invalid entry.
                    Entry::Invalid
                }
            };
            if let Some(slot) = ring.get_mut(total % MAX_ELEMENTS) {
                *slot = entry;
            }
            total += 1;
        }
        LineRev { ring, total, taken: 0 }
    }
}

impl Iterator for LineRev {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.taken >= self.total {
            return None;
        }
        if self.taken >= MAX_ELEMENTS {
            // Older elements were overwritten: stop the walk here.
            self.taken = self.total;
            return Some(Entry::Invalid);
        }
        self.taken += 1;
        let idx = (self.total - self.taken) % MAX_ELEMENTS;
        self.ring.get(idx).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fors(line: &str) -> Vec<Result<Option<String>, ForwardedError>> {
        elements(line.as_bytes()).map(|r| r.map(|e| e.for_.map(|v| v.raw().to_owned()))).collect()
    }

    #[test]
    fn rfc7239_examples_parse() {
        // RFC 7239 §4 and §7.
        let ok: &[(&str, &[&str])] = &[
            (r#"for="_gazonk""#, &["_gazonk"]),
            (r#"For="[2001:db8:cafe::17]:4711""#, &["[2001:db8:cafe::17]:4711"]),
            ("for=192.0.2.60;proto=http;by=203.0.113.43", &["192.0.2.60"]),
            ("for=192.0.2.43, for=198.51.100.17", &["192.0.2.43", "198.51.100.17"]),
            (
                "for=192.0.2.43,for=\"[2001:db8:cafe::17]\",for=unknown",
                &["192.0.2.43", "[2001:db8:cafe::17]", "unknown"],
            ),
            ("for=192.0.2.43; proto=https , ,for=198.51.100.1", &["192.0.2.43", "198.51.100.1"]),
            (r#"host="a,b;c";for=192.0.2.1"#, &["192.0.2.1"]),
        ];
        for (line, want) in ok {
            let got: Vec<String> = fors(line).into_iter().map(|r| r.unwrap().unwrap()).collect();
            assert_eq!(&got, want, "{line}");
        }
    }

    #[test]
    fn malformed_lines_are_named_errors() {
        let bad: &[(&str, ForwardedError)] = &[
            ("for", ForwardedError::MissingEquals { at: 3 }),
            ("for =1.2.3.4", ForwardedError::MissingEquals { at: 3 }),
            ("for=", ForwardedError::BadValue { at: 4 }),
            ("for=\"1.2.3.4", ForwardedError::UnterminatedQuote { at: 4 }),
            ("for=1.2.3.4;for=5.6.7.8", ForwardedError::DuplicateParameter { at: 12 }),
            ("for=1.2.3.4 x", ForwardedError::UnexpectedByte { at: 12 }),
            ("=x", ForwardedError::BadName { at: 0 }),
            ("for=[2001:db8::1]", ForwardedError::BadValue { at: 4 }),
        ];
        for (line, want) in bad {
            let last = fors(line).pop().unwrap();
            assert_eq!(last, Err(*want), "{line}");
        }
    }

    fn walk(lines: &[&str]) -> Vec<String> {
        forwarded_rev(lines.iter().map(|l| l.as_bytes()))
            .map(|e| match e {
                Entry::Ip(ip) => ip.to_string(),
                Entry::Invalid => "!".into(),
            })
            .collect()
    }

    #[test]
    fn walk_right_to_left_over_lines() {
        assert_eq!(
            walk(&["for=192.0.2.1, for=\"[2001:db8::1]:80\"", "for=10.0.0.1;proto=https"]),
            ["10.0.0.1", "2001:db8::1", "192.0.2.1"]
        );
        assert_eq!(walk(&["for=192.0.2.1, proto=http"]), ["!", "192.0.2.1"]);
        assert_eq!(walk(&["for=192.0.2.1, for=10.0.0.1 garbage"]), ["!", "192.0.2.1"]);
        assert_eq!(walk(&["for=\"1.2.3\\.4\""]), ["!"]);
    }

    #[test]
    fn ring_overflow_stops_the_walk() {
        let line = (0..40).map(|i| format!("for=10.0.0.{i}")).collect::<Vec<_>>().join(",");
        let got = walk(&[&line]);
        assert_eq!(got.len(), MAX_ELEMENTS + 1);
        assert_eq!(got[0], "10.0.0.39");
        assert_eq!(got[MAX_ELEMENTS - 1], "10.0.0.8");
        assert_eq!(got[MAX_ELEMENTS], "!");
    }
}
