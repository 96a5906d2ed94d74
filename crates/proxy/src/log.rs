//! Access log: one line per request, JSON or nginx `combined` with the
//! realip fields appended. Every line holds the TCP peer, the resolved
//! client IP and where it came from: the seed guide's `remote_addr`, and
//! why we believe it.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Version};
use realip_tower::ProxyInfo;

use crate::config::{LogConfig, LogFormat};

/// Writes one JSON event line (start, reload, errors) to stderr: events
/// go to stderr, the access log to its own stream. One implementation for
/// every crate: [`realip_kube::event`].
pub use realip_kube::event::event;

/// One request, as logged. Fields stay typed until the line is written,
/// into a reused per-thread buffer: logging costs no allocation.
#[derive(Clone, Debug)]
pub struct Entry {
    /// When the request head arrived.
    pub time: SystemTime,
    /// Listener name.
    pub listener: Arc<str>,
    /// TCP peer (the `remote_addr` of nginx).
    pub peer: SocketAddr,
    /// Resolved client IP.
    pub client_ip: IpAddr,
    /// Where it came from.
    pub client_ip_source: &'static str,
    /// Hops left of the effective peer.
    pub client_ip_hop: u16,
    /// The accepted PROXY header (source and TLVs are logged).
    pub proxy: Option<Arc<ProxyInfo>>,
    /// Request method.
    pub method: Method,
    /// Host header or :authority.
    pub host: String,
    /// Path and query.
    pub path: String,
    /// HTTP version.
    pub version: Version,
    /// Response status.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// Seconds from request head to the end of the response body.
    pub duration: f64,
    /// Route name, if one matched.
    pub route: Option<Arc<str>>,
    /// Upstream endpoint, if one was tried.
    pub upstream: Option<SocketAddr>,
    /// Upstream status, if one answered.
    pub upstream_status: Option<u16>,
    /// Why the upstream attempt failed, if it did.
    pub upstream_error: Option<String>,
    /// X-Request-Id (passed through from a trusted hop, else generated).
    pub request_id: String,
    /// Referer header.
    pub referer: Option<HeaderValue>,
    /// User-Agent header.
    pub user_agent: Option<HeaderValue>,
}

/// One L4 (`mode = "tcp"`) connection, logged when it closes: what
/// HAProxy's `tcplog` holds.
#[derive(Clone, Debug)]
pub struct TcpEntry {
    /// When the connection was accepted.
    pub time: SystemTime,
    /// Listener name.
    pub listener: Arc<str>,
    /// TCP peer.
    pub peer: SocketAddr,
    /// The hop that connected: the PROXY source when one was accepted, else the peer.
    pub client: SocketAddr,
    /// Upstream endpoint used, if one answered.
    pub upstream: Option<SocketAddr>,
    /// Bytes client → upstream.
    pub bytes_in: u64,
    /// Bytes upstream → client.
    pub bytes_out: u64,
    /// Seconds from accept to close.
    pub duration: f64,
    /// Why no upstream could be used, or why the copy ended early.
    pub error: Option<String>,
}

/// Appends `n` in decimal, without `core::fmt` (which costs several times
/// more per number: the access log writes about ten per line).
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + u8::try_from(n % 10).unwrap_or(0);
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

/// Appends `ip` as `Display` writes it; IPv4 (the usual case) by hand.
pub(crate) fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u64(out, u64::from(o));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends `addr` as `Display` writes it (`ip:port`, `[ip6]:port`).
pub(crate) fn push_socket(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(_) => {
            push_ip(out, addr.ip());
            out.push(':');
            push_u64(out, u64::from(addr.port()));
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{addr}");
        }
    }
}

/// Appends `secs` with six decimals, as `{:.6}` does for the durations
/// logged here (non-negative, far below 2^64 µs).
fn push_secs6(out: &mut String, secs: f64) {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked: finite, ≥ 0, in range
    let micros = if secs.is_finite() && (0.0..1.8e13).contains(&secs) { (secs * 1e6).round() as u64 } else { 0 };
    push_u64(out, micros / 1_000_000);
    out.push('.');
    let frac = micros % 1_000_000;
    let mut pad = 100_000;
    while pad > frac.max(1) && pad > 1 {
        out.push('0');
        pad /= 10;
    }
    push_u64(out, frac);
}

fn version_str(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

/// `{"time":"…","listener":"…"` — how every JSON line starts.
fn json_head(out: &mut String, time: SystemTime, listener: &str) {
    out.push_str("{\"time\":\"");
    write_rfc3339(out, time);
    out.push_str("\",\"listener\":");
    json_str(out, listener);
}

impl TcpEntry {
    fn json(&self, out: &mut String) {
        json_head(out, self.time, &self.listener);
        let _ = write!(
            out,
            ",\"mode\":\"tcp\",\"peer\":\"{}\",\"client_ip\":\"{}\",\"upstream\":",
            self.peer,
            self.client.ip()
        );
        json_opt(out, self.upstream);
        let _ = write!(
            out,
            ",\"bytes_in\":{},\"bytes_out\":{},\"duration\":{:.6},\"error\":",
            self.bytes_in, self.bytes_out, self.duration
        );
        match &self.error {
            Some(e) => json_str(out, e),
            None => out.push_str("null"),
        }
        out.push('}');
    }

    fn text(&self, out: &mut String) {
        let _ = write!(
            out,
            "{} - - [tcp {}] upstream={} bytes_in={} bytes_out={} rt={:.3} peer={} error={}",
            self.client.ip(),
            self.listener,
            self.upstream.map_or_else(|| "-".to_owned(), |u| u.to_string()),
            self.bytes_in,
            self.bytes_out,
            self.duration,
            self.peer,
            self.error.as_deref().unwrap_or("-"),
        );
    }
}

/// Where lines go. Unbuffered (the default), each line is one `write`;
/// with `buffer_bytes`, lines collect in one buffer written when the next
/// line would not fit, on [`AccessLog::flush`] (the server calls it every
/// `flush_interval`, so no line waits longer), and when the log is dropped
/// (a reload replaced it) or the proxy stops.
#[derive(Debug)]
pub struct AccessLog {
    format: LogFormat,
    sink: Mutex<Sink>,
    buffered: bool,
    flush_interval: Duration,
}

#[derive(Debug)]
struct Sink {
    /// `None`: stdout.
    file: Option<File>,
    buf: Vec<u8>,
    cap: usize,
}

impl Sink {
    fn write_out(&mut self, bytes: &[u8]) {
        let _ = match &mut self.file {
            Some(f) => f.write_all(bytes),
            None => std::io::stdout().lock().write_all(bytes),
        };
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.write_out(&buf);
            self.buf = buf;
            self.buf.clear();
        }
    }

    fn push(&mut self, line: &[u8]) {
        if self.cap == 0 {
            self.write_out(line);
            return;
        }
        if self.buf.len() + line.len() > self.cap {
            self.flush();
        }
        if line.len() > self.cap {
            self.write_out(line); // larger than the whole buffer: as is
            return;
        }
        self.buf.extend_from_slice(line);
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.flush();
    }
}

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(1024));
}

/// Appends `s` as a JSON string (quotes included).
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_opt<T: std::fmt::Display>(out: &mut String, v: Option<T>) {
    match v {
        Some(v) => {
            let _ = write!(out, "\"{v}\"");
        }
        None => out.push_str("null"),
    }
}

fn header_text(v: Option<&HeaderValue>) -> std::borrow::Cow<'_, str> {
    v.map_or(std::borrow::Cow::Borrowed("-"), |v| String::from_utf8_lossy(v.as_bytes()))
}

impl Entry {
    fn json(&self, out: &mut String) {
        json_head(out, self.time, &self.listener);
        out.push_str(",\"peer\":\"");
        push_socket(out, self.peer);
        out.push_str("\",\"client_ip\":\"");
        push_ip(out, self.client_ip);
        out.push_str("\",\"client_ip_source\":\"");
        out.push_str(self.client_ip_source);
        out.push_str("\",\"client_ip_hop\":");
        push_u64(out, u64::from(self.client_ip_hop));
        out.push_str(",\"proxy_src\":");
        match self.proxy.as_deref().and_then(|p| p.src.as_ref()) {
            Some(realip_tower::Endpoint::Inet(src)) => {
                let _ = write!(out, "\"{src}\"");
            }
            Some(realip_tower::Endpoint::Unix(path)) => json_str(out, path),
            None => out.push_str("null"),
        }
        out.push_str(",\"proxy_tlvs\":[");
        for (i, t) in self.proxy.iter().flat_map(|p| p.tlvs.iter()).enumerate() {
            let _ = write!(out, "{}\"{}={}\"", if i > 0 { "," } else { "" }, t.kind, t.hex);
        }
        out.push_str("],\"method\":");
        json_str(out, self.method.as_str());
        out.push_str(",\"host\":");
        json_str(out, &self.host);
        out.push_str(",\"path\":");
        json_str(out, &self.path);
        out.push_str(",\"protocol\":\"");
        out.push_str(version_str(self.version));
        out.push_str("\",\"status\":");
        push_u64(out, u64::from(self.status));
        out.push_str(",\"bytes\":");
        push_u64(out, self.bytes);
        out.push_str(",\"duration\":");
        push_secs6(out, self.duration);
        out.push_str(",\"route\":");
        match self.route.as_deref() {
            Some(r) => json_str(out, r),
            None => out.push_str("null"),
        }
        out.push_str(",\"upstream\":");
        match self.upstream {
            Some(u) => {
                out.push('"');
                push_socket(out, u);
                out.push('"');
            }
            None => out.push_str("null"),
        }
        out.push_str(",\"upstream_status\":");
        match self.upstream_status {
            Some(s) => push_u64(out, u64::from(s)),
            None => out.push_str("null"),
        }
        out.push_str(",\"upstream_error\":");
        match &self.upstream_error {
            Some(e) => json_str(out, e),
            None => out.push_str("null"),
        }
        out.push_str(",\"request_id\":");
        json_str(out, &self.request_id);
        out.push_str(",\"referer\":");
        json_str(out, &header_text(self.referer.as_ref()));
        out.push_str(",\"user_agent\":");
        json_str(out, &header_text(self.user_agent.as_ref()));
        out.push('}');
    }

    fn combined(&self, out: &mut String) {
        let _ = write!(out, "{} - - [", self.client_ip);
        write_rfc3339(out, self.time);
        let _ = write!(
            out,
            "] \"{} {} {:?}\" {} {} \"{}\" \"{}\" client_ip={} source={} hop={} request_id={} upstream={} rt={:.3} peer={}",
            self.method,
            self.path.escape_debug(),
            self.version,
            self.status,
            self.bytes,
            header_text(self.referer.as_ref()).escape_debug(),
            header_text(self.user_agent.as_ref()).escape_debug(),
            self.client_ip,
            self.client_ip_source,
            self.client_ip_hop,
            self.request_id,
            self.upstream.map_or_else(|| "-".to_owned(), |u| u.to_string()),
            self.duration,
            self.peer,
        );
    }
}

impl AccessLog {
    /// Opens the log (stdout unless `path` is set).
    pub fn open(cfg: &LogConfig) -> std::io::Result<AccessLog> {
        let file = match &cfg.path {
            Some(p) => Some(OpenOptions::new().create(true).append(true).open(p)?),
            None => None,
        };
        let cap = cfg.buffer_bytes;
        let sink = Sink { file, buf: Vec::with_capacity(cap), cap };
        Ok(AccessLog {
            format: cfg.format,
            sink: Mutex::new(sink),
            buffered: cap > 0,
            flush_interval: cfg.flush_interval.0,
        })
    }

    /// How often [`flush`](AccessLog::flush) should run: `None` when
    /// unbuffered.
    pub fn flush_interval(&self) -> Option<Duration> {
        self.buffered.then_some(self.flush_interval)
    }

    /// Writes whatever is buffered.
    pub fn flush(&self) {
        self.sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).flush();
    }

    /// Writes one entry (unbuffered: in one `write` call).
    pub fn write(&self, e: &Entry) {
        self.emit(|line, format| match format {
            LogFormat::Json => e.json(line),
            LogFormat::Combined => e.combined(line),
        });
    }

    /// Writes one L4 connection entry (unbuffered: in one `write` call).
    pub fn write_tcp(&self, e: &TcpEntry) {
        self.emit(|line, format| match format {
            LogFormat::Json => e.json(line),
            LogFormat::Combined => e.text(line),
        });
    }

    fn emit(&self, fill: impl FnOnce(&mut String, LogFormat)) {
        LINE.with_borrow_mut(|line| {
            line.clear();
            fill(line, self.format);
            line.push('\n');
            self.sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line.as_bytes());
        });
    }
}

thread_local! {
    /// The last second written by [`write_rfc3339`] and its text up to the
    /// seconds: computed once a second per thread, not once per line.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends `t` as RFC 3339 UTC with milliseconds, without a date crate.
pub fn write_rfc3339(out: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            text.clear();
            write_date_time(text, secs);
            *cached = secs;
        }
        out.push_str(text);
    });
    let ms = d.subsec_millis();
    out.push('.');
    out.push_str(if ms < 10 {
        "00"
    } else if ms < 100 {
        "0"
    } else {
        ""
    });
    push_u64(out, u64::from(ms));
    out.push('Z');
}

/// `YYYY-MM-DDTHH:MM:SS` of `secs` since the epoch (UTC).
fn write_date_time(out: &mut String, secs: u64) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(out, "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
}

#[cfg(test)]
mod tests {
    #[test]
    fn hand_formatting_matches_display() {
        let mut s = String::new();
        for n in [0u64, 7, 10, 99, 100, 65_535, 1_234_567_890, u64::MAX] {
            s.clear();
            super::push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for a in ["0.0.0.0:0", "198.51.100.7:65535", "255.255.255.255:80", "[2001:db8::1]:443", "[::ffff:1.2.3.4]:1"] {
            let a: std::net::SocketAddr = a.parse().unwrap();
            s.clear();
            super::push_socket(&mut s, a);
            assert_eq!(s, a.to_string());
            s.clear();
            super::push_ip(&mut s, a.ip());
            assert_eq!(s, a.ip().to_string());
        }
        for d in [0.0, 0.25, 0.000_001, 0.000_010_4, 1.5, 12.345_678_9, 0.999_999_7, 3_600.000_5] {
            s.clear();
            super::push_secs6(&mut s, d);
            assert_eq!(s, format!("{d:.6}"), "{d}");
        }
        let mut t = String::new();
        for ms in [0u64, 5, 45, 999, 1000, 86_399_999] {
            t.clear();
            super::write_rfc3339(
                &mut t,
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_764_084_000_000 + ms),
            );
            let (secs, ms) = (1_764_084_000 + ms / 1000, ms % 1000);
            let mut want = String::new();
            super::write_date_time(&mut want, secs);
            assert_eq!(t, format!("{want}.{ms:03}Z"));
        }
    }

    #[test]
    fn time_format() {
        let mut t = String::new();
        super::write_rfc3339(&mut t, std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_764_084_000_123));
        assert_eq!(t, "2025-11-25T15:20:00.123Z");
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T", "{t}");
    }

    #[test]
    fn json_lines_are_valid_json_whatever_the_request_says() {
        let e = super::Entry {
            time: std::time::SystemTime::now(),
            listener: "web".into(),
            peer: "127.0.0.1:5000".parse().unwrap(),
            client_ip: "2001:db8::1".parse().unwrap(),
            client_ip_source: "xff",
            client_ip_hop: 1,
            proxy: None,
            method: http::Method::GET,
            host: "a\"b\\c\u{1}".into(),
            path: "/x?q=\"\n".into(),
            version: http::Version::HTTP_11,
            status: 200,
            bytes: 5,
            duration: 0.25,
            route: Some("route0".into()),
            upstream: Some("10.0.0.1:80".parse().unwrap()),
            upstream_status: Some(200),
            upstream_error: None,
            request_id: "id".into(),
            referer: None,
            user_agent: Some(http::HeaderValue::from_bytes(b"curl \xff").unwrap()),
        };
        let mut line = String::new();
        e.json(&mut line);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!((v["host"].as_str(), v["path"].as_str()), (Some("a\"b\\c\u{1}"), Some("/x?q=\"\n")));
        assert_eq!(
            (v["client_ip"].as_str(), v["status"].as_u64(), v["upstream"].as_str()),
            (Some("2001:db8::1"), Some(200), Some("10.0.0.1:80"))
        );
        assert_eq!(v["user_agent"], "curl \u{fffd}");
    }

    fn tcp_entry(n: u64) -> super::TcpEntry {
        super::TcpEntry {
            time: std::time::SystemTime::now(),
            listener: "l4".into(),
            peer: "127.0.0.1:5000".parse().unwrap(),
            client: "198.51.100.7:5000".parse().unwrap(),
            upstream: None,
            bytes_in: n,
            bytes_out: 0,
            duration: 0.0,
            error: None,
        }
    }

    /// A log file removed when the test ends.
    struct TempLog(std::path::PathBuf);
    impl Drop for TempLog {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn buffered_lines_are_written_when_full_on_flush_and_on_drop() {
        let file = TempLog(std::env::temp_dir().join(format!("realip-buffered-log-{}.log", std::process::id())));
        let lines = || std::fs::read_to_string(&file.0).unwrap_or_default().lines().count();
        let cfg = crate::config::LogConfig { path: Some(file.0.clone()), buffer_bytes: 1024, ..Default::default() };
        let log = super::AccessLog::open(&cfg).unwrap();
        assert_eq!(log.flush_interval(), Some(std::time::Duration::from_secs(1)));
        log.write_tcp(&tcp_entry(1));
        log.write_tcp(&tcp_entry(2));
        assert_eq!(lines(), 0, "held in the buffer");
        log.flush();
        assert_eq!(lines(), 2);
        // A line is about 200 bytes: the buffer fills and is written.
        for i in 0..10 {
            log.write_tcp(&tcp_entry(i));
        }
        let written = lines();
        assert!(written > 2 && written < 12, "{written}");
        drop(log);
        assert_eq!(lines(), 12, "the rest on drop (reload, stop)");
        let text = std::fs::read_to_string(&file.0).unwrap();
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        }
    }

    #[test]
    fn unbuffered_lines_are_written_at_once() {
        let file = TempLog(std::env::temp_dir().join(format!("realip-unbuffered-log-{}.log", std::process::id())));
        let log =
            super::AccessLog::open(&crate::config::LogConfig { path: Some(file.0.clone()), ..Default::default() })
                .unwrap();
        assert_eq!(log.flush_interval(), None);
        log.write_tcp(&tcp_entry(1));
        assert_eq!(std::fs::read_to_string(&file.0).unwrap().lines().count(), 1);
    }
}
