//! Prometheus metrics, rendered in the text exposition format by hand:
//! counters and a latency histogram behind small mutex-guarded maps.
//! Label values come from configuration (listener, route, upstream names)
//! or fixed vocabularies (status, source, reason), never from requests,
//! so cardinality is bounded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket bounds, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn add(&mut self, secs: f64) {
        for (c, b) in self.counts.iter_mut().zip(BUCKETS) {
            if secs <= b {
                *c += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// All metrics of one proxy process (kept across reloads). Counters are
/// keyed by their series text (`name{label="value",...}`), built in a
/// reused per-thread buffer, so counting allocates only for a new series.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<HashMap<String, u64>>,
    latency: Mutex<HashMap<String, Histogram>>,
    store_latency: Mutex<Histogram>,
    /// Open downstream connections.
    pub active_connections: AtomicI64,
}

thread_local! {
    static KEY: RefCell<String> = RefCell::new(String::with_capacity(128));
}

const HELP: &[(&str, &str, &str)] = &[
    ("realip_requests_total", "counter", "HTTP requests by listener, route and status."),
    ("realip_connections_total", "counter", "Downstream connections accepted, by listener."),
    ("realip_proxy_protocol_errors_total", "counter", "Connections closed for a PROXY header problem, by reason."),
    ("realip_denied_total", "counter", "Requests answered 403 by allow/deny policy, by route."),
    ("realip_rate_limited_total", "counter", "Requests answered 429 by the rate limit, by route."),
    ("realip_client_ip_source_total", "counter", "Resolved client IPs by the source they came from."),
    (
        "realip_client_ip_warnings_total",
        "counter",
        "Client IP resolutions that fell back or skipped something, by kind.",
    ),
    ("realip_upstream_errors_total", "counter", "Failed upstream attempts, by upstream and kind."),
    ("realip_config_reloads_total", "counter", "Configuration reloads, by result."),
    ("realip_rejected_total", "counter", "Requests or connections refused by a limit, by reason."),
    (
        "realip_accept_errors_total",
        "counter",
        "Failed accepts (EMFILE, ENOMEM...), by listener; retried with back-off.",
    ),
    (
        "realip_rate_limit_decisions_total",
        "counter",
        "Rate-limit decisions by scope (local, global), outcome (allowed, limited) and via (local, store, cache, on_error).",
    ),
    ("realip_rate_limit_store_errors_total", "counter", "Failed rate-limit store calls, by kind (timeout, connection, response)."),
    ("realip_rate_limit_store_state_changes_total", "counter", "Rate-limit store state changes, by the state entered (down, up)."),
];

fn series(out: &mut String, name: &str, labels: &[(&str, &str)]) {
    out.clear();
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
        }
        out.push('}');
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Adds 1 to counter `name` with `labels`.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        KEY.with_borrow_mut(|key| {
            series(key, name, labels);
            let mut m = lock(&self.counters);
            match m.get_mut(key.as_str()) {
                Some(v) => *v += 1,
                None => {
                    m.insert(key.clone(), 1);
                }
            }
        });
    }

    /// Records a request duration for `route`.
    pub fn observe(&self, route: &str, d: Duration) {
        let secs = d.as_secs_f64();
        let mut m = lock(&self.latency);
        if !m.contains_key(route) {
            m.insert(route.to_owned(), Histogram::default());
        }
        let Some(h) = m.get_mut(route) else { return };
        h.add(secs);
    }

    /// Records the duration of one rate-limit store call.
    pub fn observe_store(&self, d: Duration) {
        lock(&self.store_latency).add(d.as_secs_f64());
    }

    /// The sum of a counter's series that carry all of `labels`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let m = lock(&self.counters);
        m.iter()
            .filter(|(k, _)| k.split('{').next() == Some(name))
            .filter(|(k, _)| labels.iter().all(|(l, v)| k.contains(&format!("{l}=\"{v}\""))))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counters: Vec<(String, u64)> = lock(&self.counters).iter().map(|(k, v)| (k.clone(), *v)).collect();
        counters.sort();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (k, v) in counters.iter().filter(|(k, _)| k.split('{').next() == Some(name)) {
                let _ = writeln!(out, "{k} {v}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP realip_connections_active Open downstream connections.\n# TYPE realip_connections_active gauge\nrealip_connections_active {}",
            self.active_connections.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP realip_request_duration_seconds Request latency to the response head, by route.\n# TYPE realip_request_duration_seconds histogram");
        let lat = lock(&self.latency);
        let mut routes: Vec<&String> = lat.keys().collect();
        routes.sort();
        for route in routes {
            let Some(h) = lat.get(route) else { continue };
            let r = route.replace('\\', "\\\\").replace('"', "\\\"");
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "realip_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {c}");
            }
            let _ = writeln!(out, "realip_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "realip_request_duration_seconds_sum{{route=\"{r}\"}} {}", h.sum);
            let _ = writeln!(out, "realip_request_duration_seconds_count{{route=\"{r}\"}} {}", h.count);
        }
        drop(lat);
        let h = lock(&self.store_latency);
        if h.count > 0 {
            let _ = writeln!(out, "# HELP realip_rate_limit_store_duration_seconds Rate-limit store call latency (global limits).\n# TYPE realip_rate_limit_store_duration_seconds histogram");
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "realip_rate_limit_store_duration_seconds_bucket{{le=\"{b}\"}} {c}");
            }
            let _ = writeln!(out, "realip_rate_limit_store_duration_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "realip_rate_limit_store_duration_seconds_sum {}", h.sum);
            let _ = writeln!(out, "realip_rate_limit_store_duration_seconds_count {}", h.count);
        }
        out
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
        m.inc("realip_client_ip_warnings_total", &[("kind", "invalid_entry")]);
        let text = m.render();
        assert!(
            text.contains("realip_client_ip_warnings_total{kind=\"invalid_entry\"} 1"),
            "every counter counted is rendered: {text}"
        );
        assert!(!text.contains("realip_rate_limit_store_duration_seconds"), "no store, no store series");
        m.observe_store(Duration::from_micros(300));
        let text = m.render();
        assert!(text.contains("realip_rate_limit_store_duration_seconds_bucket{le=\"0.0005\"} 1"), "{text}");
        assert!(text.contains("realip_rate_limit_store_duration_seconds_count 1"), "{text}");
    }
}
