//! Request paths as the upstream will act on them, so that routing and
//! allow lists see the same resource the upstream serves.
//!
//! [`normalize`] does what nginx does before `location` matching, and the
//! result is what the upstream receives:
//! - percent-encoded unreserved characters are decoded (`%61` → `a`,
//!   `%2e` → `.`), other escapes are kept with upper-case hex;
//! - `//` becomes `/`; `.` and `..` segments are resolved (RFC 3986
//!   §5.2.4);
//! - rejected (400): a path not starting with `/`, invalid escapes, an
//!   encoded `/` or NUL (`%2F`, `%00`: a segment boundary the upstream may
//!   or may not honour), `..` above the root, and backslashes (raw or
//!   `%5C`, which some servers treat as `/`) unless allowed.
//!
//! Invariant: the output starts with `/`, holds no `//`, no `.`/`..`
//! segment, no escape of an unreserved character, and normalizing it again
//! changes nothing. The common path (nothing to do) does not allocate.

use std::borrow::Cow;

/// Why a path cannot be normalized safely (answered with 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Occurs when the path does not start with `/`.
    #[error("the path must start with /")]
    NotAbsolute,
    /// Occurs on `%` not followed by two hex digits.
    #[error("invalid percent-encoding in the path")]
    BadEscape,
    /// Occurs on `%2F`: a `/` inside a segment.
    #[error("encoded / (%2F) in the path")]
    EncodedSlash,
    /// Occurs on `%00`.
    #[error("encoded NUL (%00) in the path")]
    Nul,
    /// Occurs on `\` or `%5C` when backslashes are not allowed.
    #[error("backslash in the path")]
    Backslash,
    /// Occurs when `..` climbs above the root.
    #[error("the path climbs above the root with ..")]
    AboveRoot,
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The normalized form of `path` (without the query).
pub fn normalize(path: &str, allow_backslash: bool) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let backslash_ok = allow_backslash || !bytes.contains(&b'\\');
    let clean = backslash_ok
        && !bytes.contains(&b'%')
        && !path.contains("//")
        && !path.contains("/./")
        && !path.contains("/../")
        && !path.ends_with("/.")
        && !path.ends_with("/..");
    if clean {
        return Ok(Cow::Borrowed(path));
    }
    // 1. Escapes: decode unreserved, refuse dangerous ones.
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) =
                    (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
                else {
                    return Err(PathError::BadEscape);
                };
                let v = hi * 16 + lo;
                match v {
                    b'/' => return Err(PathError::EncodedSlash),
                    0 => return Err(PathError::Nul),
                    b'\\' if !allow_backslash => return Err(PathError::Backslash),
                    v if unreserved(v) => decoded.push(char::from(v)),
                    v => {
                        const HEX: &[u8; 16] = b"0123456789ABCDEF";
                        decoded.push('%');
                        decoded.push(char::from(HEX[usize::from(v >> 4)]));
                        decoded.push(char::from(HEX[usize::from(v & 15)]));
                    }
                }
                i += 3;
            }
            b'\\' if !allow_backslash => return Err(PathError::Backslash),
            _ => {
                // Copy the run up to the next escape at once (UTF-8 safe:
                // `%` is ASCII, so the run ends on a char boundary).
                let end = bytes.get(i..).and_then(|r| r.iter().position(|&c| c == b'%')).map_or(bytes.len(), |p| i + p);
                let run = path.get(i..end).unwrap_or_default();
                if !allow_backslash && run.contains('\\') {
                    return Err(PathError::Backslash);
                }
                decoded.push_str(run);
                i = end;
            }
        }
    }
    // 2. Segments: merge slashes, resolve dot segments.
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            s => out.push(s),
        }
    }
    let mut norm = String::with_capacity(decoded.len());
    for s in &out {
        norm.push('/');
        norm.push_str(s);
    }
    if trailing || norm.is_empty() {
        norm.push('/');
    }
    Ok(Cow::Owned(norm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_upstream_would_see() {
        let table = [
            ("/", "/"),
            ("/admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/%41DMIN", "/ADMIN"),
            ("/public/../admin", "/admin"),
            ("/./admin", "/admin"),
            ("//admin", "/admin"),
            ("/%2e/admin", "/admin"),
            ("/a/%2e%2e/admin", "/admin"),
            ("/admin/", "/admin/"),
            ("/admin/.", "/admin/"),
            ("/admin/x/..", "/admin/"),
            ("/a//b///c", "/a/b/c"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/a%20b", "/a%20b"),
            ("/a%3fb", "/a%3Fb"),
            ("/~user/%7euser", "/~user/~user"),
            ("/é", "/é"),
        ];
        for (input, want) in table {
            let got = normalize(input, false).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
            assert_eq!(normalize(&got, false).unwrap(), got, "idempotent for {input}");
        }
    }

    #[test]
    fn unsafe_encodings_are_refused() {
        let table = [
            ("admin", PathError::NotAbsolute),
            ("/a%2Fb", PathError::EncodedSlash),
            ("/a%2fb", PathError::EncodedSlash),
            ("/a%00", PathError::Nul),
            ("/a%zz", PathError::BadEscape),
            ("/a%4", PathError::BadEscape),
            ("/a%", PathError::BadEscape),
            ("/a\\admin", PathError::Backslash),
            ("/a%5cadmin", PathError::Backslash),
            ("/..", PathError::AboveRoot),
            ("/a/../../admin", PathError::AboveRoot),
            ("/%2e%2e/admin", PathError::AboveRoot),
        ];
        for (input, want) in table {
            assert_eq!(normalize(input, false), Err(want), "{input}");
        }
        assert_eq!(normalize("/a\\b", true).unwrap(), "/a\\b");
        assert_eq!(normalize("/a%5Cb", true).unwrap(), "/a%5Cb");
    }

    #[test]
    fn clean_paths_are_borrowed() {
        for p in ["/", "/api/v1/users", "/a.b/c..d/.e", "/x?"] {
            assert!(matches!(normalize(p, false), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    proptest::proptest! {
        /// Whatever the bytes: no panic, and an accepted path meets the
        /// invariants of the module docs.
        #[test]
        fn normalized_paths_keep_their_invariants(raw in "/[a-zA-Z0-9%./\\\\_~-]{0,40}") {
            if let Ok(n) = normalize(&raw, false) {
                proptest::prop_assert!(n.starts_with('/'));
                proptest::prop_assert!(!n.contains("//"));
                proptest::prop_assert!(!n.contains("/./") && !n.contains("/../"));
                proptest::prop_assert!(!n.ends_with("/.") && !n.ends_with("/.."));
                proptest::prop_assert!(!n.contains('\\'));
                let again = normalize(&n, false).unwrap();
                proptest::prop_assert_eq!(again.as_ref(), n.as_ref());
            }
        }
    }
}
