//! `--probe URL`: ask a live endpoint that echoes the client IP (`realip
//! echo`'s `/debug/ip`, or any JSON with the address at `field`) who we
//! are — honestly, then with forged X-Forwarded-For, X-Real-IP, Forwarded
//! and (optionally) PROXY headers — and report every forgery it believed,
//! and whether the honest answer looks like a node address (SNAT).
//!
//! Plain `http://` over a bounded TCP exchange (timeouts on connect, read
//! and write; responses capped at [`MAX_RESPONSE`]). The forged addresses
//! are documentation addresses (RFC 5737) that no real client has.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::catalog;
use crate::finding::{Finding, Place};

/// Largest response read.
pub const MAX_RESPONSE: u64 = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(10);

/// What to probe and how.
#[derive(Clone, Debug)]
pub struct Probe {
    /// `http://host[:port]/path`.
    pub url: String,
    /// The address the endpoint should see for us, if known.
    pub expect_client: Option<IpAddr>,
    /// Also send a forged PROXY v1 header.
    pub proxy_protocol: bool,
    /// JSON field holding the client address (dot-separated path).
    pub field: String,
}

/// Why a probe could not run.
#[derive(Debug)]
pub struct ProbeError(pub String);

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}

struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

fn target(url: &str) -> Result<Target, ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError(format!("--probe: `{url}` must start with http:// (https is not supported yet)")))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let has_port = match authority.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => authority.contains(':'),
    };
    let with_port = if has_port { authority.to_owned() } else { format!("{authority}:80") };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| ProbeError(format!("--probe: cannot resolve `{authority}`: {e}")))?
        .next()
        .ok_or_else(|| ProbeError(format!("--probe: `{authority}` resolves to nothing")))?;
    Ok(Target { addr, host: authority.to_owned(), path: path.to_owned() })
}

/// One request; the JSON body, or why there is none.
fn ask(t: &Target, preface: &[u8], headers: &[(&str, &str)]) -> Result<serde_json::Value, String> {
    let mut s = TcpStream::connect_timeout(&t.addr, TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let mut req =
        format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: realip-doctor\r\n", t.path, t.host);
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    s.write_all(preface).and_then(|()| s.write_all(req.as_bytes())).map_err(|e| format!("send: {e}"))?;
    let mut resp = Vec::new();
    s.take(MAX_RESPONSE).read_to_end(&mut resp).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP response (connection closed)")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("answered `{}`", head.lines().next().unwrap_or_default()));
    }
    serde_json::from_str(body.trim()).map_err(|e| format!("body is not JSON: {e}"))
}

fn field<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a str> {
    path.split('.').try_fold(v, |v, k| v.get(k)).and_then(serde_json::Value::as_str)
}

fn finding(p: &Probe, rule: &'static str, message: String) -> Finding {
    let at = Place { object: format!("probe {}", p.url), file: p.url.clone(), line: 0 };
    Finding::new(rule, &at, message, catalog::rule(rule).fix.to_owned())
}

/// Runs the probe. An endpoint that cannot be reached honestly is an
/// error of the probe itself, not a finding.
pub fn run(p: &Probe) -> Result<Vec<Finding>, ProbeError> {
    let t = target(&p.url)?;
    let honest = ask(&t, b"", &[]).map_err(|e| ProbeError(format!("--probe {}: {e}", p.url)))?;
    let seen = field(&honest, &p.field)
        .ok_or_else(|| ProbeError(format!("--probe {}: no string field `{}` in the answer", p.url, p.field)))?
        .to_owned();
    let seen_ip: Option<IpAddr> = seen.parse().ok();
    let mut out = Vec::new();
    match (p.expect_client, seen_ip) {
        (Some(want), Some(got)) if want != got => {
            out.push(finding(p, "probe-client-ip-lost", format!("the endpoint sees {got}, expected {want}")));
        }
        (None, Some(got)) if is_internal(got) => out.push(finding(
            p,
            "probe-client-ip-internal",
            format!("the endpoint sees a private/internal address ({got}) for us: a node or proxy address (SNAT?)"),
        )),
        _ => {}
    }
    let forged: [(&str, &str, &str); 3] = [
        ("X-Forwarded-For", "198.51.100.66", "198.51.100.66"),
        ("X-Real-IP", "198.51.100.67", "198.51.100.67"),
        ("Forwarded", "for=198.51.100.68", "198.51.100.68"),
    ];
    for (header, value, ip) in forged {
        if let Ok(v) = ask(&t, b"", &[(header, value)]) {
            if field(&v, &p.field) == Some(ip) {
                out.push(finding(
                    p,
                    "probe-forged-header-believed",
                    format!("a forged `{header}: {value}` from us was believed: the endpoint reports {ip}"),
                ));
            }
        }
    }
    if p.proxy_protocol {
        let local = if t.addr.is_ipv4() {
            "PROXY TCP4 198.51.100.69 192.0.2.1 40000 80\r\n"
        } else {
            "PROXY TCP6 2001:db8::69 2001:db8::1 40000 80\r\n"
        };
        if let Ok(v) = ask(&t, local.as_bytes(), &[]) {
            let forged_ip = if t.addr.is_ipv4() { "198.51.100.69" } else { "2001:db8::69" };
            if field(&v, &p.field) == Some(forged_ip) {
                out.push(finding(
                    p,
                    "probe-forged-proxy-believed",
                    format!("a forged PROXY header from us was believed: the endpoint reports {forged_ip}"),
                ));
            }
        }
    }
    let family = if seen_ip.is_some_and(|ip| ip.is_ipv6()) { "IPv6" } else { "IPv4" };
    eprintln!("probe {}: the endpoint sees {seen} ({family})", p.url);
    Ok(out)
}

fn is_internal(ip: IpAddr) -> bool {
    match realip_core::unmap(ip) {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}
