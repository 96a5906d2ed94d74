//! What a Gateway API route does beyond matching, compiled once per
//! snapshot: HTTPRoute filters (`RequestHeaderModifier`,
//! `ResponseHeaderModifier`, `RequestRedirect`, `URLRewrite`) and weighted
//! `backendRefs`.
//!
//! Invariants:
//! - header edits never touch the headers the proxy computes from the
//!   resolved client (X-Forwarded-For, Forwarded, X-Real-IP,
//!   X-Forwarded-Proto/-Host/-Port, the `strip_untrusted` and `header:NAME`
//!   source headers), nor framing and hop-by-hop headers nor `Host`: such
//!   edits are dropped (and reported) by [`crate::kubernetes`] before they
//!   get here, and [`HeaderOps::compile`] refuses them again, so a route
//!   can never forge a client address the proxy did not resolve;
//! - request header edits are applied *after* the forwarding headers were
//!   written, so they cannot feed a forged value into a trusted chain;
//! - weighted choice: each backend gets `weight / sum` of the requests
//!   (weight 0: none); the share of a backend that did not resolve, and
//!   every request of a rule whose weights are all 0, is answered 500.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use realip_kube::routes::{Filter, HeaderEdit, PathRewrite};

use crate::upstream::Pool;

/// Request headers only the proxy writes (the controller reports edits of
/// them from the same list).
pub use realip_kube::routes::PROTECTED_REQUEST;

/// Response headers only the proxy (or hyper) writes: framing and
/// hop-by-hop headers.
pub const PROTECTED_RESPONSE: [&str; 8] =
    ["content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"];

/// A compiled header modifier: set (replace), add (append), remove.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeaderOps {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl HeaderOps {
    /// Compiles `edit`; a name or value that is not valid HTTP, or a name
    /// `protected` says only the proxy may write, is an error naming it.
    pub fn compile(edit: &HeaderEdit, protected: &[&str]) -> Result<HeaderOps, String> {
        let name = |n: &str| {
            let lower = n.trim().to_ascii_lowercase();
            if protected.contains(&realip_kube::routes::protected_form(n).as_str()) {
                return Err(format!("header `{n}` is written by the proxy only"));
            }
            HeaderName::from_bytes(lower.as_bytes()).map_err(|_| format!("`{n}` is not a header name"))
        };
        let pair = |(n, v): &(String, String)| {
            let value = HeaderValue::from_str(v).map_err(|_| format!("header `{n}`: `{v}` is not a header value"))?;
            Ok::<_, String>((name(n)?, value))
        };
        Ok(HeaderOps {
            set: edit.set.iter().map(pair).collect::<Result<_, _>>()?,
            add: edit.add.iter().map(pair).collect::<Result<_, _>>()?,
            remove: edit.remove.iter().map(|n| name(n)).collect::<Result<_, _>>()?,
        })
    }

    /// Applies the edits to `h`: set, then add, then remove.
    pub fn apply(&self, h: &mut HeaderMap) {
        for (n, v) in &self.set {
            h.insert(n.clone(), v.clone());
        }
        for (n, v) in &self.add {
            h.append(n.clone(), v.clone());
        }
        for n in &self.remove {
            h.remove(n);
        }
    }
}

/// `path` with `edit` applied, `matched` being the route's path match
/// (for `ReplacePrefixMatch`, which replaces whole segments: the Gateway
/// API table — `/foo/bar` with prefix `/foo` and replacement `/xyz` or
/// `/xyz/` is `/xyz/bar`; replacement `` or `/` gives `/bar`; `/foo` alone
/// becomes `/xyz`, `/foo/` becomes `/xyz/`).
pub fn rewrite_path(edit: &PathRewrite, matched: &str, path: &str) -> String {
    match edit {
        PathRewrite::Full(p) => p.clone(),
        PathRewrite::Prefix(to) => {
            let prefix = matched.trim_end_matches('/');
            let rest = path.strip_prefix(prefix).unwrap_or(path);
            let out = format!("{}{rest}", to.trim_end_matches('/'));
            if out.is_empty() {
                "/".to_owned()
            } else {
                out
            }
        }
    }
}

/// A compiled `RequestRedirect`.
#[derive(Clone, Debug, PartialEq)]
pub struct Redirect {
    scheme: Option<String>,
    hostname: Option<String>,
    path: Option<PathRewrite>,
    port: Option<u16>,
    /// 301, 302, 303, 307 or 308.
    pub status: StatusCode,
}

/// What the redirect needs to know about the request.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'a> {
    /// `http` or `https`, as the client reached us.
    pub scheme: &'a str,
    /// Host the client asked for, without port.
    pub host: &'a str,
    /// The Gateway listener port the client reached, if known.
    pub listener_port: Option<u16>,
    /// Normalized path.
    pub path: &'a str,
    /// Query string, if any.
    pub query: Option<&'a str>,
    /// The route's path match (for `ReplacePrefixMatch`).
    pub matched: &'a str,
}

impl Redirect {
    /// The `Location` of the redirect (the query string is kept). The
    /// port, when not given, is the scheme's well-known one when the
    /// scheme is given, else the Gateway listener's; it is left out for
    /// http on 80 and https on 443, as the spec asks.
    pub fn location(&self, req: &RequestFacts<'_>) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(req.scheme);
        let port = self.port.or(match self.scheme.as_deref() {
            Some("http") => Some(80),
            Some("https") => Some(443),
            _ => req.listener_port,
        });
        let host = self.hostname.as_deref().unwrap_or(req.host);
        let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
        let port = match (scheme, port) {
            ("http", Some(80)) | ("https", Some(443)) | (_, None) => String::new(),
            (_, Some(p)) => format!(":{p}"),
        };
        let path = self.path.as_ref().map_or_else(|| req.path.to_owned(), |e| rewrite_path(e, req.matched, req.path));
        let query = req.query.map(|q| format!("?{q}")).unwrap_or_default();
        format!("{scheme}://{host}{port}{path}{query}")
    }
}

/// A compiled `URLRewrite`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rewrite {
    /// New `Host` for the upstream.
    pub hostname: Option<HeaderValue>,
    /// New path.
    pub path: Option<PathRewrite>,
}

/// Every filter of a route, compiled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filters {
    /// `RequestHeaderModifier`s, in order.
    pub request: Vec<HeaderOps>,
    /// `ResponseHeaderModifier`s, in order.
    pub response: Vec<HeaderOps>,
    /// `RequestRedirect`: answered by the proxy.
    pub redirect: Option<Redirect>,
    /// `URLRewrite`.
    pub rewrite: Option<Rewrite>,
}

impl Filters {
    /// Compiles `filters`; the first that cannot be served is an error
    /// naming it (the controller's check,
    /// [`realip_kube::routes::filters_problem`], so both agree).
    pub fn compile(filters: &[Filter]) -> Result<Filters, String> {
        if let Some((i, why)) = realip_kube::routes::filters_problem(filters) {
            return Err(format!("filters[{i}].{why}"));
        }
        let mut out = Filters::default();
        for f in filters {
            match f {
                Filter::RequestHeaders(e) => out.request.push(
                    HeaderOps::compile(e, &PROTECTED_REQUEST).map_err(|m| format!("RequestHeaderModifier: {m}"))?,
                ),
                Filter::ResponseHeaders(e) => out.response.push(
                    HeaderOps::compile(e, &PROTECTED_RESPONSE).map_err(|m| format!("ResponseHeaderModifier: {m}"))?,
                ),
                Filter::Redirect { scheme, hostname, path, port, status } => {
                    let status = StatusCode::from_u16(*status)
                        .ok()
                        .filter(|s| matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308))
                        .ok_or_else(|| {
                            format!("RequestRedirect: statusCode {status} is not 301, 302, 303, 307 or 308")
                        })?;
                    out.redirect = Some(Redirect {
                        scheme: scheme.clone(),
                        hostname: hostname.clone(),
                        path: path.clone(),
                        port: *port,
                        status,
                    });
                }
                Filter::Rewrite { hostname, path } => {
                    let hostname = match hostname.as_deref() {
                        Some(h) => Some(
                            HeaderValue::from_str(&h.to_ascii_lowercase())
                                .map_err(|_| format!("URLRewrite: hostname `{h}` is not a host name"))?,
                        ),
                        None => None,
                    };
                    out.rewrite = Some(Rewrite { hostname, path: path.clone() });
                }
            }
        }
        Ok(out)
    }
}

/// Weighted backends: `None` is a reference that did not resolve.
#[derive(Debug)]
pub struct Weighted {
    choices: Vec<(Option<Arc<Pool>>, u64)>,
    total: u64,
    next: AtomicU64,
}

/// A copy shares the pools and starts where the original's rotation is.
impl Clone for Weighted {
    fn clone(&self) -> Weighted {
        Weighted {
            choices: self.choices.clone(),
            total: self.total,
            next: AtomicU64::new(self.next.load(Ordering::Relaxed)),
        }
    }
}

impl Weighted {
    /// A copy with the pools found in `replaced` (by the address of the
    /// old pool) swapped for their new ones, or `None` when it uses none
    /// of them.
    pub(crate) fn replacing(&self, replaced: &std::collections::HashMap<*const Pool, Arc<Pool>>) -> Option<Weighted> {
        let hit = |p: &Option<Arc<Pool>>| p.as_ref().and_then(|p| replaced.get(&Arc::as_ptr(p)));
        if !self.choices.iter().any(|(p, _)| hit(p).is_some()) {
            return None;
        }
        let choices = self.choices.iter().map(|(p, w)| (hit(p).cloned().or_else(|| p.clone()), *w)).collect();
        Some(Weighted { choices, total: self.total, next: AtomicU64::new(self.next.load(Ordering::Relaxed)) })
    }

    /// Whether `current(name, pool)` holds for every pool it uses (by
    /// the pool's upstream name): a route compiled with these pools can
    /// be kept by a reload that kept them.
    pub(crate) fn holds_only(&self, mut current: impl FnMut(&str, &Arc<Pool>) -> bool) -> bool {
        self.choices.iter().all(|(p, _)| p.as_ref().is_none_or(|p| current(&p.config().name, p)))
    }

    /// The pools (`None`: unresolved) and their weights, in order.
    pub fn choices(&self) -> impl Iterator<Item = (Option<&Arc<Pool>>, u64)> {
        self.choices.iter().map(|(p, w)| (p.as_ref(), *w))
    }

    /// From backends and weights.
    pub fn new(choices: Vec<(Option<Arc<Pool>>, u32)>) -> Weighted {
        let choices: Vec<(Option<Arc<Pool>>, u64)> = choices.into_iter().map(|(p, w)| (p, u64::from(w))).collect();
        let total = choices.iter().map(|(_, w)| w).sum();
        Weighted { choices, total, next: AtomicU64::new(0) }
    }

    /// The backend of the next request: `None` answers 500 (an unresolved
    /// backend's share, or all weights 0). Requests are spread by a
    /// low-discrepancy sequence (the golden ratio), so every window of
    /// requests follows the weights closely, not only the long run.
    pub fn pick(&self) -> Option<&Arc<Pool>> {
        if self.total == 0 {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let spread = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = u64::try_from((u128::from(spread) * u128::from(self.total)) >> 64).unwrap_or(0);
        let mut acc = 0;
        for (pool, w) in &self.choices {
            acc += w;
            if slot < acc {
                return pool.as_ref();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_prefix_match_follows_the_spec_table() {
        let p = |to: &str| PathRewrite::Prefix(to.into());
        let table = [
            ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
            ("/foo", "/foo", "/xyz", "/xyz"),
            ("/foo/", "/foo", "/xyz", "/xyz/"),
            ("/foo/bar", "/foo", "", "/bar"),
            ("/foo/", "/foo", "", "/"),
            ("/foo", "/foo", "", "/"),
            ("/foo/", "/foo", "/", "/"),
            ("/foo", "/foo", "/", "/"),
            ("/a/b", "/", "/x", "/x/a/b"),
        ];
        for (path, prefix, to, want) in table {
            assert_eq!(rewrite_path(&p(to), prefix, path), want, "{path} {prefix} {to}");
        }
        assert_eq!(rewrite_path(&PathRewrite::Full("/new".into()), "/foo", "/foo/bar"), "/new");
    }

    #[test]
    fn redirect_location_follows_the_port_rules() {
        let req = RequestFacts {
            scheme: "http",
            host: "app.example.com",
            listener_port: Some(8080),
            path: "/a/b",
            query: Some("x=1"),
            matched: "/a",
        };
        let r = |scheme: Option<&str>, host: Option<&str>, port: Option<u16>, path: Option<PathRewrite>| Redirect {
            scheme: scheme.map(Into::into),
            hostname: host.map(Into::into),
            path,
            port,
            status: StatusCode::FOUND,
        };
        let table = [
            (r(Some("https"), None, None, None), "https://app.example.com/a/b?x=1"),
            (r(Some("http"), None, None, None), "http://app.example.com/a/b?x=1"),
            (r(None, None, None, None), "http://app.example.com:8080/a/b?x=1"),
            (r(Some("https"), Some("new.example.com"), Some(8443), None), "https://new.example.com:8443/a/b?x=1"),
            (r(None, None, Some(80), Some(PathRewrite::Prefix("/z".into()))), "http://app.example.com/z/b?x=1"),
            (r(Some("https"), None, Some(443), Some(PathRewrite::Full("/".into()))), "https://app.example.com/?x=1"),
        ];
        for (redirect, want) in table {
            assert_eq!(redirect.location(&req), want, "{redirect:?}");
        }
        let v6 = RequestFacts { host: "2001:db8::1", listener_port: None, query: None, ..req };
        assert_eq!(r(None, None, None, None).location(&v6), "http://[2001:db8::1]/a/b");
    }

    #[test]
    fn header_edits_apply_in_order_and_refuse_protected_names() {
        let edit = HeaderEdit {
            set: vec![("x-a".into(), "1".into())],
            add: vec![("x-b".into(), "2".into())],
            remove: vec!["x-c".into()],
        };
        let ops = HeaderOps::compile(&edit, &PROTECTED_REQUEST).unwrap();
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("old"));
        h.append("x-a", HeaderValue::from_static("older"));
        h.append("x-b", HeaderValue::from_static("kept"));
        h.append("x-c", HeaderValue::from_static("gone"));
        ops.apply(&mut h);
        assert_eq!(h.get_all("x-a").iter().collect::<Vec<_>>(), ["1"]);
        assert_eq!(h.get_all("x-b").iter().collect::<Vec<_>>(), ["kept", "2"]);
        assert!(!h.contains_key("x-c"));
        // Underscore spellings too: many apps read `X_Real_IP` as X-Real-IP (review 20 MED-1).
        for name in
            ["X-Forwarded-For", "x-real-ip", "Forwarded", "host", "content-length", "X_Forwarded_For", "x_real_ip"]
        {
            let forge = HeaderEdit { set: vec![(name.into(), "203.0.113.9".into())], ..HeaderEdit::default() };
            let e = HeaderOps::compile(&forge, &PROTECTED_REQUEST).unwrap_err();
            assert!(e.contains(name), "{e}");
        }
        let bad = HeaderEdit { add: vec![("bad name".into(), "x".into())], ..HeaderEdit::default() };
        assert!(HeaderOps::compile(&bad, &PROTECTED_REQUEST).unwrap_err().contains("not a header name"));
    }

    #[test]
    fn weighted_choice_follows_the_weights_and_zero_gets_nothing() {
        let pool = |n: &str| Some(Arc::new(Pool::for_tests(n)));
        let w = Weighted::new(vec![(pool("a"), 80), (pool("b"), 20), (pool("zero"), 0), (None, 0)]);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..1000 {
            *counts.entry(w.pick().map(|p| p.name.clone())).or_insert(0) += 1;
        }
        let a = counts.get(&Some("a".to_owned())).copied().unwrap_or(0);
        let b = counts.get(&Some("b".to_owned())).copied().unwrap_or(0);
        assert!((795..=805).contains(&a) && a + b == 1000, "{counts:?}");
        assert_eq!(counts.len(), 2, "{counts:?}");
        // Every window of 10 requests is close to 8/2 already.
        let w = Weighted::new(vec![(pool("a"), 80), (None, 20)]);
        for _ in 0..10 {
            let unresolved = (0..10).filter(|_| w.pick().is_none()).count();
            assert!((1..=3).contains(&unresolved), "{unresolved}");
        }
        assert!(Weighted::new(vec![(pool("a"), 0)]).pick().is_none(), "all weights 0: 500");
    }
}
