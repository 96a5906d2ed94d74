//! Prometheus metrics, rendered in the text exposition format by hand:
//! counters and a latency histogram behind small mutex-guarded maps.
//! Label values come from configuration (listener, route, upstream names)
//! or fixed vocabularies (status, source, reason), never from requests,
//! so cardinality is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket bounds, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// All metrics of one proxy process (kept across reloads).
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    latency: Mutex<BTreeMap<Labels, Histogram>>,
    /// Open downstream connections.
    pub active_connections: AtomicI64,
}

const HELP: &[(&str, &str, &str)] = &[
    ("realip_requests_total", "counter", "HTTP requests by listener, route and status."),
    ("realip_connections_total", "counter", "Downstream connections accepted, by listener."),
    ("realip_proxy_protocol_errors_total", "counter", "Connections closed for a PROXY header problem, by reason."),
    ("realip_denied_total", "counter", "Requests answered 403 by allow/deny policy, by route."),
    ("realip_rate_limited_total", "counter", "Requests answered 429 by the rate limit, by route."),
    ("realip_client_ip_source_total", "counter", "Resolved client IPs by the source they came from."),
    ("realip_upstream_errors_total", "counter", "Failed upstream attempts, by upstream and kind."),
    ("realip_config_reloads_total", "counter", "Configuration reloads, by result."),
    ("realip_rejected_total", "counter", "Requests or connections refused by a limit, by reason."),
];

impl Metrics {
    /// Adds 1 to counter `name` with `labels`.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        let key = (name, labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect());
        let mut m = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry(key).or_insert(0) += 1;
    }

    /// Records a request duration for `route`.
    pub fn observe(&self, route: &str, d: Duration) {
        let secs = d.as_secs_f64();
        let mut m = self.latency.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = m.entry(vec![("route", route.to_owned())]).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                if let Some(c) = h.counts.get_mut(i) {
                    *c += 1;
                }
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The value of a counter (for tests and the lab).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let m = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.iter()
            .filter(|((n, l), _)| *n == name && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v)))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, labels), v) in counters.iter() {
                if n == name {
                    let _ = writeln!(out, "{name}{} {v}", fmt_labels(labels, None));
                }
            }
        }
        drop(counters);
        let _ = writeln!(
            out,
            "# HELP realip_connections_active Open downstream connections.\n# TYPE realip_connections_active gauge\nrealip_connections_active {}",
            self.active_connections.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP realip_request_duration_seconds Request latency to the response head, by route.\n# TYPE realip_request_duration_seconds histogram");
        let lat = self.latency.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (labels, h) in lat.iter() {
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "realip_request_duration_seconds_bucket{} {c}",
                    fmt_labels(labels, Some(&b.to_string()))
                );
            }
            let _ =
                writeln!(out, "realip_request_duration_seconds_bucket{} {}", fmt_labels(labels, Some("+Inf")), h.count);
            let _ = writeln!(out, "realip_request_duration_seconds_sum{} {}", fmt_labels(labels, None), h.sum);
            let _ = writeln!(out, "realip_request_duration_seconds_count{} {}", fmt_labels(labels, None), h.count);
        }
        out
    }
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> =
        labels.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.inc("realip_requests_total", &[("listener", "web"), ("route", "r0"), ("status", "200")]);
        m.inc("realip_requests_total", &[("listener", "web"), ("route", "r0"), ("status", "200")]);
        m.observe("r0", Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("realip_requests_total{listener=\"web\",route=\"r0\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("realip_request_duration_seconds_bucket{route=\"r0\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("realip_request_duration_seconds_bucket{route=\"r0\",le=\"0.001\"} 0"), "{text}");
        assert_eq!(m.counter("realip_requests_total", &[("status", "200")]), 2);
    }
}
