//! What the upstream receives: hop-by-hop headers removed and the
//! forwarding headers rewritten from the resolved client.
//!
//! Invariants:
//! - forwarding headers from a hop we do not trust are never passed on as
//!   if trusted: X-Forwarded-For, Forwarded, X-Real-IP and
//!   X-Forwarded-Host/-Proto/-Port are replaced, not kept;
//! - `Connection:` cannot strip what we add: the headers it names are
//!   removed *before* ours are written;
//! - `append` adds the hop that connected to us (the PROXY source when a
//!   PROXY header was accepted, else the TCP peer), never the resolved
//!   client, which would duplicate it;
//! - vendor client-IP headers (`True-Client-IP`, `CF-Connecting-IP`, …,
//!   `forward.strip_untrusted`) pass only from trusted hops, and header
//!   names with `_` (which WSGI/CGI turn into the same `HTTP_X_REAL_IP` as
//!   `X-Real-IP`) are dropped unless `http.underscores_in_headers`;
//! - addresses are written unmapped (`::ffff:192.0.2.1` as `192.0.2.1`),
//!   and `Forwarded` values are quoted per RFC 7239 or left out.

use std::fmt::Write as _;
use std::net::IpAddr;

use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, UPGRADE};
use http::HeaderMap;

use realip_core::unmap;

use crate::config::{ForwardConfig, XffMode};

// Pre-built names: no parsing or validation of a name per request.
const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    UPGRADE,
    http::header::PROXY_AUTHORIZATION,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const FORWARDED: HeaderName = http::header::FORWARDED;
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// What the rewrite needs to know about the request.
#[derive(Clone, Copy, Debug)]
pub struct Hop<'a> {
    /// The hop that connected to us (PROXY source or TCP peer).
    pub hop: IpAddr,
    /// Whether that hop is a trusted proxy (its headers may be kept).
    pub hop_trusted: bool,
    /// The resolved client.
    pub client: IpAddr,
    /// `http` or `https`, as the client reached us.
    pub proto: &'static str,
    /// Host the client asked for (Host header or h2 :authority).
    pub host: Option<&'a str>,
    /// Our listener port.
    pub port: u16,
    /// Keep `Upgrade`/`Connection: upgrade` (a WebSocket handshake).
    pub upgrade: bool,
}

/// The forwarding rules of one configuration, compiled once.
#[derive(Clone, Debug)]
pub struct ForwardRules {
    /// The `[forward]` table.
    pub cfg: ForwardConfig,
    /// `strip_untrusted`, as header names.
    strip_untrusted: Vec<HeaderName>,
}

impl ForwardRules {
    /// Compiles `cfg`; a name that is not a header name, or one that frames
    /// or routes the request (`realip_core::headers::FRAMING_HEADERS`:
    /// removing it would change where the request goes or ends, not who
    /// sent it), is an error naming it.
    pub fn new(cfg: &ForwardConfig) -> Result<ForwardRules, String> {
        let strip_untrusted = cfg
            .strip_untrusted
            .iter()
            .map(|n| {
                let name = HeaderName::from_bytes(n.trim().as_bytes())
                    .map_err(|_| format!("forward.strip_untrusted: `{n}` is not a header name"))?;
                if realip_core::headers::is_framing_header(name.as_str()) {
                    return Err(format!(
                        "forward.strip_untrusted: `{n}` frames or routes the request (Host, Content-Length, \
                         Transfer-Encoding, Connection, Upgrade, TE, Trailer, Keep-Alive, Proxy-Connection) \
                         and cannot be stripped"
                    ));
                }
                Ok(name)
            })
            .collect::<Result<_, _>>()?;
        Ok(ForwardRules { cfg: cfg.clone(), strip_untrusted })
    }
}

fn node(ip: IpAddr) -> String {
    match unmap(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

/// `value` as an RFC 7239 `quoted-string`, or `None` when it holds a byte
/// that cannot be quoted (controls, DEL).
fn quoted(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' | ' '..='~' => out.push(c),
            _ => return None,
        }
    }
    out.push('"');
    Some(out)
}

/// Removes headers whose names hold `_` (nginx `underscores_in_headers off`).
pub fn drop_underscored(h: &mut HeaderMap) {
    if h.keys().any(|k| k.as_str().contains('_')) {
        let names: Vec<HeaderName> = h.keys().filter(|k| k.as_str().contains('_')).cloned().collect();
        for n in names {
            h.remove(n);
        }
    }
}

fn set(h: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

thread_local! {
    /// Where header values are written before they become a
    /// `HeaderValue`: the value's own copy is the only allocation.
    static SCRATCH: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(256));
}

/// Sets `name` to the text `write` produces (in a reused buffer).
fn set_with(h: &mut HeaderMap, name: HeaderName, write: impl FnOnce(&mut String)) {
    let v = SCRATCH.with_borrow_mut(|buf| {
        buf.clear();
        write(buf);
        HeaderValue::from_str(buf)
    });
    if let Ok(v) = v {
        h.insert(name, v);
    }
}

/// Writes every non-empty line of `name`, trimmed, joined by `, `;
/// whether there was one.
fn write_joined(out: &mut String, h: &HeaderMap, name: &HeaderName) -> bool {
    let mut any = false;
    for v in h.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()) {
        if any {
            out.push_str(", ");
        }
        out.push_str(v);
        any = true;
    }
    any
}

fn joined(h: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut out = String::new();
    write_joined(&mut out, h, name).then_some(out)
}

/// Removes the headers `Connection` names, then the hop-by-hop set; used
/// on requests (before ours are added) and on responses.
pub fn remove_hop_by_hop(h: &mut HeaderMap) {
    // One pass over the names says which of the fixed set are there (most
    // messages carry none, or only `Connection`): no lookup, no parse of a
    // name, no allocation for the ones that are not.
    let mut present = 0u8; // bit i: HOP_BY_HOP[i]
    for k in h.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|n| n == k) {
            present |= 1 << i;
        }
    }
    if present & 1 != 0 {
        // The headers `Connection` names (other than the fixed set, removed
        // below), as the names present in the map: `keep-alive` and
        // `close`, the usual values, name nothing else.
        let named: Vec<HeaderName> =
            h.keys().filter(|k| !HOP_BY_HOP.contains(k) && connection_names(h, k.as_str())).cloned().collect();
        for n in named {
            h.remove(n);
        }
    }
    for (i, n) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            h.remove(n);
        }
    }
}

/// Whether a `Connection` line of `h` lists `name` (case-insensitively).
fn connection_names(h: &HeaderMap, name: &str) -> bool {
    h.get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|n| n.trim().eq_ignore_ascii_case(name))
}

/// Rewrites `h` in place for the upstream.
pub fn rewrite(h: &mut HeaderMap, hop: &Hop<'_>, rules: &ForwardRules) {
    let cfg = &rules.cfg;
    let (hop_ip, client) = (unmap(hop.hop), unmap(hop.client));
    // Capture the incoming chains before anything is removed.
    // The X-Forwarded-For value, built at once in a reused buffer.
    let xff = match cfg.x_forwarded_for {
        XffMode::Append => SCRATCH.with_borrow_mut(|buf| {
            buf.clear();
            if hop.hop_trusted && write_joined(buf, h, &X_FORWARDED_FOR) {
                buf.push_str(", ");
            }
            crate::log::push_ip(buf, hop_ip);
            HeaderValue::from_str(buf).ok()
        }),
        XffMode::Replace | XffMode::Off => None,
    };
    let fwd_in = if hop.hop_trusted { joined(h, &FORWARDED) } else { None };

    // 1. Hop-by-hop: whatever Connection names, then the fixed set.
    let upgrade_to = if hop.upgrade { h.get(UPGRADE).cloned() } else { None };
    remove_hop_by_hop(h);
    if let Some(u) = upgrade_to {
        h.insert(UPGRADE, u);
        h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }

    // 2. Client-IP headers of other vendors: only a trusted hop may set them.
    if !hop.hop_trusted {
        for n in &rules.strip_untrusted {
            h.remove(n);
        }
    }

    // 3. Forwarding headers, written last.
    match cfg.x_forwarded_for {
        XffMode::Append => {
            if let Some(v) = xff {
                h.insert(X_FORWARDED_FOR, v);
            }
        }
        XffMode::Replace => set_with(h, X_FORWARDED_FOR, |b| crate::log::push_ip(b, client)),
        XffMode::Off => {
            h.remove(X_FORWARDED_FOR);
        }
    }
    if cfg.x_real_ip {
        set_with(h, X_REAL_IP, |b| crate::log::push_ip(b, client));
    } else if !hop.hop_trusted {
        h.remove(X_REAL_IP);
    }
    if cfg.forwarded {
        let mut el = format!("for={};proto={}", node(hop_ip), hop.proto);
        if let Some(host) = hop.host.and_then(quoted) {
            let _ = write!(el, ";host={host}");
        }
        let v = match fwd_in {
            Some(chain) => format!("{chain}, {el}"),
            None => el,
        };
        set(h, FORWARDED, &v);
    } else if !hop.hop_trusted {
        h.remove(FORWARDED);
    }
    let keep = |h: &HeaderMap, name: &HeaderName| hop.hop_trusted && h.contains_key(name);
    for (on, name) in [
        (cfg.x_forwarded_proto, X_FORWARDED_PROTO),
        (cfg.x_forwarded_host, X_FORWARDED_HOST),
        (cfg.x_forwarded_port, X_FORWARDED_PORT),
    ] {
        if keep(h, &name) {
            continue;
        }
        h.remove(&name);
        if !on {
            continue;
        }
        // Built only when written: the scheme is a static value.
        let value = if name == X_FORWARDED_PROTO {
            Some(HeaderValue::from_static(hop.proto))
        } else if name == X_FORWARDED_HOST {
            hop.host.and_then(|v| HeaderValue::from_str(v).ok())
        } else {
            Some(HeaderValue::from(hop.port))
        };
        if let Some(v) = value {
            h.insert(name, v);
        }
    }
    if !h.contains_key(HOST) {
        if let Some(host) = hop.host.and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(HOST, host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn hop(trusted: bool) -> Hop<'static> {
        Hop {
            hop: "198.51.100.9".parse().unwrap(),
            hop_trusted: trusted,
            client: "203.0.113.7".parse().unwrap(),
            proto: "https",
            host: Some("app.example.com"),
            port: 443,
            upgrade: false,
        }
    }

    #[allow(clippy::needless_pass_by_value)] // reads best at the call sites
    fn rules(cfg: ForwardConfig) -> ForwardRules {
        ForwardRules::new(&cfg).unwrap()
    }

    fn get<'a>(h: &'a HeaderMap, n: &str) -> Option<&'a str> {
        h.get(n).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn untrusted_hop_headers_are_replaced() {
        let mut h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "evil"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        rewrite(&mut h, &hop(false), &rules(ForwardConfig { forwarded: true, ..ForwardConfig::default() }));
        assert_eq!(get(&h, "x-forwarded-for"), Some("198.51.100.9"));
        assert_eq!(get(&h, "x-real-ip"), Some("203.0.113.7"));
        assert_eq!(get(&h, "x-forwarded-proto"), Some("https"));
        assert_eq!(get(&h, "x-forwarded-host"), Some("app.example.com"));
        assert_eq!(get(&h, "forwarded"), Some("for=198.51.100.9;proto=https;host=\"app.example.com\""));
    }

    #[test]
    fn trusted_chain_is_appended_to_with_the_hop_not_the_client() {
        let mut h = headers(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "http"),
        ]);
        rewrite(&mut h, &hop(true), &rules(ForwardConfig::default()));
        assert_eq!(get(&h, "x-forwarded-for"), Some("203.0.113.7, 10.0.0.1, 198.51.100.9"));
        assert_eq!(get(&h, "x-forwarded-proto"), Some("http"), "a trusted hop's value is kept");
        let mut h = headers(&[("x-forwarded-for", "203.0.113.7, 10.0.0.1")]);
        rewrite(
            &mut h,
            &hop(true),
            &rules(ForwardConfig { x_forwarded_for: XffMode::Replace, ..ForwardConfig::default() }),
        );
        assert_eq!(get(&h, "x-forwarded-for"), Some("203.0.113.7"));
        let mut h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        rewrite(
            &mut h,
            &hop(true),
            &rules(ForwardConfig { x_forwarded_for: XffMode::Off, ..ForwardConfig::default() }),
        );
        assert!(h.get("x-forwarded-for").is_none());
    }

    #[test]
    fn connection_cannot_strip_added_headers() {
        let mut h = headers(&[
            ("connection", "close, X-Forwarded-For, X-Real-IP, x-forwarded-proto"),
            ("x-forwarded-for", "1.2.3.4"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
        ]);
        rewrite(&mut h, &hop(false), &rules(ForwardConfig::default()));
        assert_eq!(get(&h, "x-forwarded-for"), Some("198.51.100.9"));
        assert_eq!(get(&h, "x-real-ip"), Some("203.0.113.7"));
        assert_eq!(get(&h, "x-forwarded-proto"), Some("https"));
        for gone in ["connection", "keep-alive", "te"] {
            assert!(h.get(gone).is_none(), "{gone}");
        }
    }

    #[test]
    fn upgrade_is_kept_for_websockets_and_ipv6_is_quoted() {
        let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        let mut hp = hop(false);
        hp.upgrade = true;
        hp.hop = "2001:db8::9".parse().unwrap();
        rewrite(&mut h, &hp, &rules(ForwardConfig { forwarded: true, ..ForwardConfig::default() }));
        assert_eq!((get(&h, "upgrade"), get(&h, "connection")), (Some("websocket"), Some("upgrade")));
        assert!(get(&h, "forwarded").unwrap().starts_with("for=\"[2001:db8::9]\""));
    }

    #[test]
    fn vendor_and_underscore_headers_only_from_trusted_hops() {
        let vendor = ["true-client-ip", "cf-connecting-ip", "fastly-client-ip", "x-client-ip", "x-cluster-client-ip"];
        let mut h = headers(&vendor.map(|n| (n, "6.6.6.6")));
        rewrite(&mut h, &hop(false), &rules(ForwardConfig::default()));
        for n in vendor {
            assert!(h.get(n).is_none(), "{n} from an untrusted hop");
        }
        let mut h = headers(&vendor.map(|n| (n, "203.0.113.7")));
        rewrite(&mut h, &hop(true), &rules(ForwardConfig::default()));
        assert_eq!(get(&h, "cf-connecting-ip"), Some("203.0.113.7"), "a trusted hop's value passes");
        let mut h = headers(&[("x_real_ip", "6.6.6.6"), ("x_forwarded_for", "6.6.6.6"), ("x-ok", "1")]);
        drop_underscored(&mut h);
        assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["x-ok"]);
        assert!(ForwardRules::new(&ForwardConfig {
            strip_untrusted: vec!["bad name".into()],
            ..ForwardConfig::default()
        })
        .unwrap_err()
        .contains("`bad name`"));
        for framing in ["Host", "content-length", "Transfer-Encoding", "TE", "proxy-connection"] {
            let e = ForwardRules::new(&ForwardConfig {
                strip_untrusted: vec!["cf-connecting-ip".into(), framing.into()],
                ..ForwardConfig::default()
            })
            .unwrap_err();
            assert!(e.contains(&format!("`{framing}` frames or routes")), "{e}");
        }
    }

    #[test]
    fn forwarded_host_is_quoted_or_left_out() {
        let cfg = || rules(ForwardConfig { forwarded: true, ..ForwardConfig::default() });
        let mut hp = hop(false);
        hp.host = Some("x\\");
        let mut h = HeaderMap::new();
        rewrite(&mut h, &hp, &cfg());
        assert_eq!(get(&h, "forwarded"), Some(r#"for=198.51.100.9;proto=https;host="x\\""#));
        let parsed: Vec<_> = realip_core::forwarded::elements(get(&h, "forwarded").unwrap().as_bytes()).collect();
        assert!(parsed.len() == 1 && parsed[0].is_ok(), "{parsed:?}");
        hp.host = Some("a\"b");
        let mut h = HeaderMap::new();
        rewrite(&mut h, &hp, &cfg());
        assert_eq!(get(&h, "forwarded"), Some(r#"for=198.51.100.9;proto=https;host="a\"b""#));
    }

    #[test]
    fn ipv4_mapped_addresses_are_written_unmapped() {
        let mut hp = hop(false);
        hp.hop = "::ffff:198.51.100.9".parse().unwrap();
        hp.client = "::ffff:203.0.113.7".parse().unwrap();
        let mut h = HeaderMap::new();
        rewrite(&mut h, &hp, &rules(ForwardConfig { forwarded: true, ..ForwardConfig::default() }));
        assert_eq!(get(&h, "x-forwarded-for"), Some("198.51.100.9"));
        assert_eq!(get(&h, "x-real-ip"), Some("203.0.113.7"));
        assert!(get(&h, "forwarded").unwrap().starts_with("for=198.51.100.9;"));
    }
}
