//! Access log: one line per request, JSON or nginx `combined` with the
//! realip fields appended. Every line holds the TCP peer, the resolved
//! client IP and where it came from: the seed guide's `remote_addr`, and
//! why we believe it.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{LogConfig, LogFormat};

/// One request, as logged.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// RFC 3339 UTC time the request started.
    pub time: String,
    /// Listener name.
    pub listener: String,
    /// TCP peer `ip:port` (the `remote_addr` of nginx).
    pub peer: String,
    /// Resolved client IP.
    pub client_ip: String,
    /// Where it came from.
    pub client_ip_source: &'static str,
    /// Hops left of the effective peer.
    pub client_ip_hop: u16,
    /// PROXY header source, if one was accepted.
    pub proxy_src: Option<String>,
    /// PROXY v2 TLVs as `type=hex`.
    pub proxy_tlvs: Vec<String>,
    /// Request method.
    pub method: String,
    /// Host header or :authority.
    pub host: String,
    /// Path and query.
    pub path: String,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: String,
    /// Response status.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// Seconds from request head to the end of the response body.
    pub duration: f64,
    /// Route name, if one matched.
    pub route: Option<String>,
    /// Upstream endpoint, if one was tried.
    pub upstream: Option<String>,
    /// Upstream status, if one answered.
    pub upstream_status: Option<u16>,
    /// Why the upstream attempt failed, if it did.
    pub upstream_error: Option<String>,
    /// X-Request-Id (passed through from a trusted hop, else generated).
    pub request_id: String,
    /// Referer header.
    pub referer: String,
    /// User-Agent header.
    pub user_agent: String,
}

/// Where lines go.
#[derive(Debug)]
pub struct AccessLog {
    format: LogFormat,
    file: Option<Mutex<File>>,
}

impl AccessLog {
    /// Opens the log (stdout unless `path` is set).
    pub fn open(cfg: &LogConfig) -> std::io::Result<AccessLog> {
        let file = match &cfg.path {
            Some(p) => Some(Mutex::new(OpenOptions::new().create(true).append(true).open(p)?)),
            None => None,
        };
        Ok(AccessLog { format: cfg.format, file })
    }

    /// Writes one entry.
    pub fn write(&self, e: &Entry) {
        let line = match self.format {
            LogFormat::Json => serde_json::to_string(e).unwrap_or_default(),
            LogFormat::Combined => format!(
                "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\" client_ip={} source={} hop={} request_id={} upstream={} rt={:.3}",
                e.client_ip,
                e.time,
                e.method,
                e.path.escape_debug(),
                e.protocol,
                e.status,
                e.bytes,
                e.referer.escape_debug(),
                e.user_agent.escape_debug(),
                e.client_ip,
                e.client_ip_source,
                e.client_ip_hop,
                e.request_id,
                e.upstream.as_deref().unwrap_or("-"),
                e.duration,
            ) + &format!(" peer={}", e.peer),
        };
        let mut line = line;
        line.push('\n');
        // One write per line: `writeln!` on an unbuffered file is two.
        if let Some(f) = &self.file {
            let mut f = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = f.write_all(line.as_bytes());
        } else {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
    }
}

/// Current UTC time as RFC 3339 with milliseconds, without a date crate.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
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
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_format() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T", "{t}");
    }
}
