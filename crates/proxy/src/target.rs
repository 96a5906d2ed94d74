//! The request target — host and path — decided once, so that the route
//! is chosen on exactly what the upstream will receive.
//!
//! Host (RFC 9112 §3.2, RFC 9113 §8.3.1):
//! - an absolute URI in the request line wins over `Host`, and the
//!   upstream gets that host in `Host`;
//! - HTTP/1.1 without `Host`, two `Host` headers, an invalid host or port,
//!   or h2 `:authority` differing from a `host` header → 400;
//! - matching and the upstream use one form: lower case, without a
//!   trailing dot, with the port only when one was given.
//!
//! Path: [`crate::path::normalize`]; the query is passed on untouched.

use std::fmt::Write as _;

use http::header::HOST;
use http::{Method, Request, Version};

use crate::path::{normalize, PathError};

/// Why a request target is refused (400, or 405 for `CONNECT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Occurs when an HTTP/1.1 request has no `Host`.
    #[error("HTTP/1.1 request without Host")]
    MissingHost,
    /// Occurs when `Host` appears more than once.
    #[error("more than one Host header")]
    TwoHosts,
    /// Occurs when the host or its port is not valid.
    #[error("invalid host or port")]
    BadHost,
    /// Occurs when h2 `:authority` and `host` name different hosts.
    #[error(":authority and host differ")]
    AuthorityMismatch,
    /// Occurs on `CONNECT` (this is not a forward proxy).
    #[error("CONNECT is not supported")]
    Connect,
    /// Occurs on `OPTIONS *`.
    #[error("asterisk-form request target is not supported")]
    Asterisk,
    /// Occurs when the path cannot be normalized safely.
    #[error(transparent)]
    Path(#[from] PathError),
}

/// Where a request goes, in the one form used for routing and upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Host, lower case, no trailing dot, no port (IPv6 without brackets);
    /// empty for an HTTP/1.0 request without `Host`.
    pub host: String,
    /// `Host` for the upstream: `host`, bracketed if IPv6, `:port` if given.
    pub authority: String,
    /// Normalized path.
    pub path: String,
    /// Path and query for the upstream.
    pub path_and_query: String,
}

/// Decides the target of `req`.
pub fn target<B>(req: &Request<B>, allow_backslash: bool) -> Result<Target, TargetError> {
    if req.method() == Method::CONNECT {
        return Err(TargetError::Connect);
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err(TargetError::TwoHosts);
    }
    let header = match header {
        Some(v) => Some(v.to_str().map_err(|_| TargetError::BadHost)?),
        None => None,
    };
    let uri_authority = req.uri().authority().map(http::uri::Authority::as_str);
    let raw = match (req.version(), uri_authority, header) {
        (Version::HTTP_2 | Version::HTTP_3, Some(a), Some(h)) => {
            if parse_host(a)? != parse_host(h)? {
                return Err(TargetError::AuthorityMismatch);
            }
            Some(a)
        }
        (Version::HTTP_11, _, None) => return Err(TargetError::MissingHost),
        (_, Some(a), _) => Some(a),
        (_, None, h) => h,
    };
    let (host, port) = match raw {
        Some(r) => parse_host(r)?,
        None => (String::new(), None),
    };
    let mut authority = if host.contains(':') { format!("[{host}]") } else { host.clone() };
    if let Some(p) = port {
        let _ = write!(authority, ":{p}");
    }
    let raw_path = req.uri().path();
    if raw_path == "*" {
        return Err(TargetError::Asterisk);
    }
    let path = normalize(raw_path, allow_backslash)?.into_owned();
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    Ok(Target { host, authority, path, path_and_query })
}

/// `host[:port]` → (lower-case host without trailing dot, port).
fn parse_host(raw: &str) -> Result<(String, Option<u16>), TargetError> {
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(TargetError::BadHost)?;
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| TargetError::BadHost)?;
        match after {
            "" => (v6, None),
            p => (v6, Some(p.strip_prefix(':').ok_or(TargetError::BadHost)?)),
        }
    } else {
        match raw.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (raw, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| TargetError::BadHost)?)
        }
        Some(_) => return Err(TargetError::BadHost),
    };
    if raw.starts_with('[') {
        return Ok((host.to_ascii_lowercase(), port));
    }
    // One trailing dot names the same host (the root); what remains must
    // be labels, none empty: `a.example..` would match no route here and
    // the same host upstream.
    let host = host.strip_suffix('.').unwrap_or(host);
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| !label.is_empty() && label.len() <= 63)
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid {
        return Err(TargetError::BadHost);
    }
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, uri: &str, hosts: &[&str]) -> Request<()> {
        let mut b = Request::builder().version(version).uri(uri);
        for h in hosts {
            b = b.header(HOST, *h);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn absolute_uri_wins_and_forms_are_normalized() {
        let t = target(&req(Version::HTTP_11, "http://public.example.com/x?q=1", &["internal.example.com"]), false)
            .unwrap();
        assert_eq!((t.host.as_str(), t.authority.as_str()), ("public.example.com", "public.example.com"));
        assert_eq!(t.path_and_query, "/x?q=1");
        let t = target(&req(Version::HTTP_11, "/%61dmin", &["Internal.Example.COM.:8080"]), false).unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority.as_str(), t.path.as_str()),
            ("internal.example.com", "internal.example.com:8080", "/admin")
        );
        let t = target(&req(Version::HTTP_11, "/", &["[2001:DB8::1]:443"]), false).unwrap();
        assert_eq!((t.host.as_str(), t.authority.as_str()), ("2001:db8::1", "[2001:db8::1]:443"));
        let t = target(&req(Version::HTTP_10, "/", &[]), false).unwrap();
        assert_eq!(t.host, "");
        let t = target(&req(Version::HTTP_2, "https://app.example.com/", &["app.example.com"]), false).unwrap();
        assert_eq!(t.host, "app.example.com");
    }

    #[test]
    fn ambiguous_hosts_are_refused() {
        let table: [(Version, &str, &[&str], TargetError); 10] = [
            (Version::HTTP_11, "/", &[], TargetError::MissingHost),
            (Version::HTTP_11, "/", &["a.example", "b.example"], TargetError::TwoHosts),
            (Version::HTTP_11, "/", &["internal.example.com:abc"], TargetError::BadHost),
            (Version::HTTP_11, "/", &["internal.example.com:99999"], TargetError::BadHost),
            (Version::HTTP_11, "/", &["a b"], TargetError::BadHost),
            (Version::HTTP_11, "/", &["[::1"], TargetError::BadHost),
            (Version::HTTP_11, "/", &["evil.com/x"], TargetError::BadHost),
            (Version::HTTP_11, "/", &["internal.example.com.."], TargetError::BadHost),
            (Version::HTTP_2, "https://public.example.com/", &["internal.example.com"], TargetError::AuthorityMismatch),
            (Version::HTTP_11, "/a%2fb", &["x"], TargetError::Path(PathError::EncodedSlash)),
        ];
        for (v, uri, hosts, want) in table {
            assert_eq!(target(&req(v, uri, hosts), false), Err(want), "{uri} {hosts:?}");
        }
        let connect = Request::builder().method(Method::CONNECT).uri("a.example:443").body(()).unwrap();
        assert_eq!(target(&connect, false), Err(TargetError::Connect));
    }
}
