//! Metrics, exposed with the `prometheus-client` crate in the OpenMetrics
//! text format (or Prometheus text 0.0.4 for a scraper that does not ask
//! for OpenMetrics).
//!
//! Invariants:
//! - Counting never builds a string, takes a lock or looks a name up in a
//!   map: what a request counts into is a handle resolved once — per route
//!   and upstream when a snapshot is installed ([`Metrics::bind`]), per
//!   listener when it starts — and counting is an atomic add. Label values
//!   are typed: fixed vocabularies are enums ([`Rejected`],
//!   [`UpstreamKind`], …), names come from configuration, statuses are
//!   numbers rendered only when scraped. Cardinality is bounded: nothing is
//!   labelled with a value taken from a request.
//! - Hot reload: route and upstream handles are looked up by name while the
//!   previous snapshot is still alive, so a route or upstream that stays
//!   keeps its counters; the registry holds them weakly, so the series of a
//!   route or upstream that is gone disappear once no snapshot (and no
//!   request in flight) uses them.
//! - Only series that counted something are rendered (as before), except
//!   per-listener connection counts, which start at 0.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::route::Route;
use crate::snapshot::Snapshot;
use crate::upstream::Pool;

/// Histogram bucket bounds, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The OpenMetrics content type (what Prometheus asks for first).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text format content type.
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A lock-free latency histogram: one atomic per bucket (not cumulative;
/// the encoder sums them), the sum kept in nanoseconds.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(0.0, 0); BUCKETS.len() + 1];
        for (i, slot) in buckets.iter_mut().enumerate() {
            *slot = (BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), self.buckets[i].load(Ordering::Relaxed));
        }
        let count = buckets.iter().map(|(_, c)| c).sum();
        #[allow(clippy::cast_precision_loss)] // nanoseconds of latency: far below 2^52
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }

    fn is_empty(&self) -> bool {
        self.count() == 0
    }
}

/// A fixed set of label values: the series of one counter family.
pub trait LabelSet: Copy + Debug + Send + Sync + 'static {
    /// How many values there are.
    const COUNT: usize;
    /// Position in `0..COUNT`.
    fn index(self) -> usize;
    /// The value at `i`.
    fn from_index(i: usize) -> Self;
    /// Label names and values, in order.
    fn pairs(self) -> Vec<(&'static str, &'static str)>;
}

/// Defines an enum of label values with its label name.
macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident, $key:literal { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }
        impl LabelSet for $name {
            const COUNT: usize = $name::ALL.len();
            fn index(self) -> usize { self as usize }
            fn from_index(i: usize) -> Self { $name::ALL[i] }
            fn pairs(self) -> Vec<(&'static str, &'static str)> { vec![($key, self.as_str())] }
        }
    };
}

label_enum!(
    /// `realip_rejected_total{reason}`.
    Rejected, "reason" {
        /// `limits.max_connections` reached.
        MaxConnections => "max_connections",
        /// The admin listener's own cap reached.
        AdminMaxConnections => "admin_max_connections",
        /// Declared body over `max_body_bytes`.
        BodyTooLarge => "body_too_large",
        /// Ambiguous or invalid host or path.
        BadRequest => "bad_request",
        /// More than `max_headers` (h2).
        TooManyHeaders => "too_many_headers",
        /// Gateway API: weighted choice fell on an unresolved backend.
        NoBackend => "no_backend",
        /// Gateway API: `failClosed` without a trustworthy answer.
        FailClosed => "fail_closed",
    }
);

label_enum!(
    /// `realip_proxy_protocol_errors_total{listener,reason}` (reason part).
    ProxyProtocolReason, "reason" {
        /// Not a valid PROXY header.
        Malformed => "malformed",
        /// Required and absent.
        Missing => "missing",
        /// From a sender not in `proxy_protocol_from`.
        UntrustedSender => "untrusted_sender",
        /// Not complete within `header_timeout`.
        Timeout => "timeout",
        /// The connection failed while reading it.
        Io => "io",
    }
);

label_enum!(
    /// `realip_upstream_errors_total{upstream,kind}` (kind part): one per
    /// [`crate::upstream::UpstreamError`] variant.
    UpstreamKind, "kind" {
        /// No endpoint to try.
        NoEndpoint => "no_endpoint",
        /// Connecting failed.
        Connect => "connect",
        /// No response head in time.
        Timeout => "timeout",
        /// Request body over the limit.
        BodyTooLarge => "body_too_large",
        /// Request body stalled.
        BodyTimeout => "body_timeout",
        /// The client went away.
        ClientGone => "client_gone",
        /// Malformed request body.
        BadBody => "bad_body",
        /// Any other failure.
        Failed => "failed",
        /// Closed before taking the request.
        Closed => "closed",
        /// Invalid WebSocket handshake answer.
        BadUpgrade => "bad_upgrade",
    }
);

label_enum!(
    /// `realip_client_ip_warnings_total{kind}`.
    WarningKind, "kind" {
        /// An entry that is not an IP address.
        InvalidEntry => "invalid_entry",
        /// Fewer entries than trusted hops.
        TooFewHops => "too_few_hops",
        /// The leftmost strategy in use.
        Leftmost => "leftmost",
        /// Resolution failed (the peer was used).
        ResolutionFailed => "resolution_failed",
    }
);

impl From<&realip_core::Warning> for WarningKind {
    fn from(w: &realip_core::Warning) -> WarningKind {
        match w {
            realip_core::Warning::InvalidEntry { .. } => WarningKind::InvalidEntry,
            realip_core::Warning::TooFewHops { .. } => WarningKind::TooFewHops,
            realip_core::Warning::LeftmostIsForgeable => WarningKind::Leftmost,
        }
    }
}

label_enum!(
    /// `realip_config_reloads_total{result}`.
    ReloadResult, "result" {
        /// Applied.
        Ok => "ok",
        /// Refused; the previous configuration stays.
        Error => "error",
    }
);

label_enum!(
    /// `realip_rate_limit_store_errors_total{kind}`.
    StoreErrorKind, "kind" {
        /// No answer in time.
        Timeout => "timeout",
        /// Could not connect.
        Connection => "connection",
        /// An unexpected answer.
        Response => "response",
        /// Too many decisions already waiting for the store.
        Backlog => "backlog",
    }
);

label_enum!(
    /// `realip_rate_limit_store_state_changes_total{to}`.
    StoreState, "to" {
        /// The store stopped answering.
        Down => "down",
        /// It answers again.
        Up => "up",
    }
);

label_enum!(
    /// `scope` of `realip_rate_limit_decisions_total`.
    RateScope, "scope" {
        /// Buckets in this process.
        Local => "local",
        /// Shared through the store.
        Global => "global",
    }
);

label_enum!(
    /// `outcome` of `realip_rate_limit_decisions_total`.
    RateOutcome, "outcome" {
        /// Under the rate.
        Allowed => "allowed",
        /// Over it (429).
        Limited => "limited",
    }
);

label_enum!(
    /// `via` of `realip_rate_limit_decisions_total`.
    RateVia, "via" {
        /// A local bucket.
        Local => "local",
        /// The store answered.
        Store => "store",
        /// The cache of limited clients answered.
        Cache => "cache",
        /// A token the store granted ahead of the request (a lease).
        Lease => "lease",
        /// The store failed; `on_error` decided.
        OnError => "on_error",
    }
);

/// `realip_rate_limit_decisions_total{scope,outcome,via}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision(pub RateScope, pub RateOutcome, pub RateVia);

impl LabelSet for RateDecision {
    const COUNT: usize = RateScope::COUNT * RateOutcome::COUNT * RateVia::COUNT;
    fn index(self) -> usize {
        (self.0.index() * RateOutcome::COUNT + self.1.index()) * RateVia::COUNT + self.2.index()
    }
    fn from_index(i: usize) -> Self {
        let via = i % RateVia::COUNT;
        let rest = i / RateVia::COUNT;
        RateDecision(
            RateScope::from_index(rest / RateOutcome::COUNT),
            RateOutcome::from_index(rest % RateOutcome::COUNT),
            RateVia::from_index(via),
        )
    }
    fn pairs(self) -> Vec<(&'static str, &'static str)> {
        vec![("scope", self.0.as_str()), ("outcome", self.1.as_str()), ("via", self.2.as_str())]
    }
}

/// A counter family over a fixed set of label values: one atomic each.
#[derive(Debug, Clone)]
pub struct Counters<L: LabelSet> {
    values: Arc<[AtomicU64]>,
    _labels: std::marker::PhantomData<L>,
}

impl<L: LabelSet> Default for Counters<L> {
    fn default() -> Self {
        Counters { values: (0..L::COUNT).map(|_| AtomicU64::new(0)).collect(), _labels: std::marker::PhantomData }
    }
}

impl<L: LabelSet> Counters<L> {
    /// Adds 1 to the series of `l`.
    pub fn inc(&self, l: L) {
        self.values[l.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The value of the series of `l`.
    pub fn get(&self, l: L) -> u64 {
        self.values[l.index()].load(Ordering::Relaxed)
    }
}

impl<L: LabelSet> EncodeMetric for Counters<L> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (i, v) in self.values.iter().enumerate() {
            let v = v.load(Ordering::Relaxed);
            if v > 0 {
                ConstCounter::new(v).encode(encoder.encode_family(&L::from_index(i).pairs())?)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// Counters of one listener (the listener task holds them for its life).
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    connections: AtomicU64,
    accept_errors: AtomicU64,
    proxy_protocol: [AtomicU64; ProxyProtocolReason::ALL.len()],
}

impl ListenerMetrics {
    /// A connection was accepted.
    pub fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// An accept failed.
    pub fn accept_error(&self) {
        self.accept_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was closed for a PROXY header problem.
    pub fn proxy_protocol_error(&self, r: ProxyProtocolReason) {
        self.proxy_protocol[r.index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// How many `(listener, status)` series of a route are found without a
/// lock; more (rare: many listeners and many statuses on one route) go to
/// a mutex-guarded list.
const STATUS_SLOTS: usize = 8;

/// Counters of one route, shared by every snapshot that has a route of
/// this name.
#[derive(Debug)]
pub struct RouteMetrics {
    name: Arc<str>,
    requests: [OnceLock<(Arc<str>, u16, AtomicU64)>; STATUS_SLOTS],
    more: Mutex<Vec<(Arc<str>, u16, u64)>>,
    duration: Histogram,
    denied: AtomicU64,
    rate_limited: AtomicU64,
}

impl RouteMetrics {
    fn new(name: Arc<str>) -> RouteMetrics {
        RouteMetrics {
            name,
            requests: Default::default(),
            more: Mutex::default(),
            duration: Histogram::default(),
            denied: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// One request answered with `status` on `listener`, after `d` (to the
    /// response head... or whatever the caller measures).
    pub fn request(&self, listener: &Arc<str>, status: u16, d: Duration) {
        self.duration.observe(d);
        let same = |l: &Arc<str>, s: u16| s == status && (Arc::ptr_eq(l, listener) || **l == **listener);
        for slot in &self.requests {
            let (l, s, n) = match slot.get() {
                Some(e) => e,
                None => slot.get_or_init(|| (Arc::clone(listener), status, AtomicU64::new(0))),
            };
            if same(l, *s) {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut more = lock(&self.more);
        match more.iter_mut().find(|(l, s, _)| same(l, *s)) {
            Some((_, _, n)) => *n += 1,
            None => more.push((Arc::clone(listener), status, 1)),
        }
    }

    /// A request refused by allow/deny.
    pub fn denied(&self) {
        self.denied.fetch_add(1, Ordering::Relaxed);
    }

    /// A request refused by the rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// The route's name (its `route` label).
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn requests(&self) -> Vec<(Arc<str>, u16, u64)> {
        let mut v: Vec<_> = self
            .requests
            .iter()
            .filter_map(|s| s.get())
            .map(|(l, s, n)| (Arc::clone(l), *s, n.load(Ordering::Relaxed)))
            .collect();
        v.extend(lock(&self.more).iter().cloned());
        v.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        v
    }
}

/// Counters of one upstream, shared by every pool of this name.
#[derive(Debug)]
pub struct UpstreamMetrics {
    name: Arc<str>,
    errors: [AtomicU64; UpstreamKind::ALL.len()],
}

impl UpstreamMetrics {
    /// A failed upstream attempt.
    pub fn error(&self, kind: UpstreamKind) {
        self.errors[kind.index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// What is alive, by name: held weakly, so what no snapshot uses any more
/// is dropped (and no longer rendered).
#[derive(Debug, Default)]
struct Live {
    routes: Mutex<BTreeMap<Arc<str>, Weak<RouteMetrics>>>,
    upstreams: Mutex<BTreeMap<Arc<str>, Weak<UpstreamMetrics>>>,
    listeners: Mutex<BTreeMap<Arc<str>, Arc<ListenerMetrics>>>,
}

/// The handle named `name` in `map`, the live one if any.
fn handle<T>(map: &Mutex<BTreeMap<Arc<str>, Weak<T>>>, name: &str, new: impl FnOnce(Arc<str>) -> T) -> Arc<T> {
    let mut m = lock(map);
    if let Some(t) = m.get(name).and_then(Weak::upgrade) {
        return t;
    }
    let name: Arc<str> = name.into();
    let t = Arc::new(new(Arc::clone(&name)));
    m.insert(name, Arc::downgrade(&t));
    t
}

/// The live values of `map`, in name order; dead entries are dropped.
fn alive<T>(map: &Mutex<BTreeMap<Arc<str>, Weak<T>>>) -> Vec<Arc<T>> {
    let mut m = lock(map);
    m.retain(|_, w| w.strong_count() > 0);
    m.values().filter_map(Weak::upgrade).collect()
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let listeners: Vec<(Arc<str>, Arc<ListenerMetrics>)> =
            lock(&self.listeners).iter().map(|(k, v)| (Arc::clone(k), Arc::clone(v))).collect();
        let routes = alive(&self.routes);
        let upstreams = alive(&self.upstreams);
        let counter = MetricType::Counter;

        let mut e = encoder.encode_descriptor(
            "realip_requests",
            "HTTP requests by listener, route and status.",
            None,
            counter,
        )?;
        for r in &routes {
            for (l, s, n) in r.requests() {
                let status = s.to_string();
                ConstCounter::new(n).encode(e.encode_family(&[
                    ("listener", &*l),
                    ("route", &*r.name),
                    ("status", &status),
                ])?)?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "realip_request_duration_seconds",
            "Request latency to the response head, by route.",
            None,
            MetricType::Histogram,
        )?;
        for r in routes.iter().filter(|r| r.duration.count() > 0) {
            r.duration.encode(e.encode_family(&[("route", &*r.name)])?)?;
        }
        encode_listeners(&mut encoder, &listeners)?;
        encode_refusals(&mut encoder, &routes, &upstreams)
    }
}

/// `realip_connections_total`, `realip_accept_errors_total`,
/// `realip_proxy_protocol_errors_total`.
fn encode_listeners(
    encoder: &mut DescriptorEncoder,
    listeners: &[(Arc<str>, Arc<ListenerMetrics>)],
) -> Result<(), std::fmt::Error> {
    let counter = MetricType::Counter;
    let mut e = encoder.encode_descriptor(
        "realip_connections",
        "Downstream connections accepted, by listener.",
        None,
        counter,
    )?;
    for (name, l) in listeners {
        ConstCounter::new(l.connections.load(Ordering::Relaxed)).encode(e.encode_family(&[("listener", &**name)])?)?;
    }
    let mut e = encoder.encode_descriptor(
        "realip_accept_errors",
        "Failed accepts (EMFILE, ENOMEM...), by listener; retried with back-off.",
        None,
        counter,
    )?;
    for (name, l) in listeners {
        let n = l.accept_errors.load(Ordering::Relaxed);
        if n > 0 {
            ConstCounter::new(n).encode(e.encode_family(&[("listener", &**name)])?)?;
        }
    }
    let mut e = encoder.encode_descriptor(
        "realip_proxy_protocol_errors",
        "Connections closed for a PROXY header problem, by reason.",
        None,
        counter,
    )?;
    for (name, l) in listeners {
        for r in ProxyProtocolReason::ALL {
            let n = l.proxy_protocol[r.index()].load(Ordering::Relaxed);
            if n > 0 {
                ConstCounter::new(n).encode(e.encode_family(&[("listener", &**name), ("reason", r.as_str())])?)?;
            }
        }
    }
    Ok(())
}

/// `realip_denied_total`, `realip_rate_limited_total`,
/// `realip_upstream_errors_total`.
fn encode_refusals(
    encoder: &mut DescriptorEncoder,
    routes: &[Arc<RouteMetrics>],
    upstreams: &[Arc<UpstreamMetrics>],
) -> Result<(), std::fmt::Error> {
    let counter = MetricType::Counter;
    let mut e = encoder.encode_descriptor(
        "realip_denied",
        "Requests answered 403 by allow/deny policy, by route.",
        None,
        counter,
    )?;
    for r in routes {
        let n = r.denied.load(Ordering::Relaxed);
        if n > 0 {
            ConstCounter::new(n).encode(e.encode_family(&[("route", &*r.name)])?)?;
        }
    }
    let mut e = encoder.encode_descriptor(
        "realip_rate_limited",
        "Requests answered 429 by the rate limit, by route.",
        None,
        counter,
    )?;
    for r in routes {
        let n = r.rate_limited.load(Ordering::Relaxed);
        if n > 0 {
            ConstCounter::new(n).encode(e.encode_family(&[("route", &*r.name)])?)?;
        }
    }
    let mut e = encoder.encode_descriptor(
        "realip_upstream_errors",
        "Failed upstream attempts, by upstream and kind.",
        None,
        counter,
    )?;
    for u in upstreams {
        for k in UpstreamKind::ALL {
            let n = u.errors[k.index()].load(Ordering::Relaxed);
            if n > 0 {
                ConstCounter::new(n).encode(e.encode_family(&[("upstream", &*u.name), ("kind", k.as_str())])?)?;
            }
        }
    }
    Ok(())
}

/// A client-IP source label (`xff`, `header:cf-connecting-ip`, …): a
/// handful per process, found by pointer without a lock.
const SOURCE_SLOTS: usize = 16;

#[derive(Debug, Default)]
struct SourceCounters {
    slots: [OnceLock<(&'static str, AtomicU64)>; SOURCE_SLOTS],
    more: Mutex<BTreeMap<&'static str, u64>>,
}

impl SourceCounters {
    fn inc(&self, source: &'static str) {
        for slot in &self.slots {
            let (s, n) = match slot.get() {
                Some(e) => e,
                None => slot.get_or_init(|| (source, AtomicU64::new(0))),
            };
            if std::ptr::eq(*s, source) || *s == source {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        *lock(&self.more).entry(source).or_default() += 1;
    }

    fn values(&self) -> BTreeMap<&'static str, u64> {
        let mut m = lock(&self.more).clone();
        for (s, n) in self.slots.iter().filter_map(|s| s.get()) {
            *m.entry(s).or_default() += n.load(Ordering::Relaxed);
        }
        m
    }
}

impl EncodeMetric for SourceCounters {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (s, n) in self.values() {
            ConstCounter::new(n).encode(encoder.encode_family(&[("source", s)])?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// `realip_worker_connections_total{worker}`: connections accepted by
/// each worker ([`crate::workers`]); a handle per worker, resolved when
/// it starts.
#[derive(Debug, Default)]
struct WorkerCounters(Mutex<Vec<Arc<AtomicU64>>>);

impl EncodeMetric for WorkerCounters {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let values: Vec<u64> = lock(&self.0).iter().map(|n| n.load(Ordering::Relaxed)).collect();
        for (i, n) in values.into_iter().enumerate() {
            ConstCounter::new(n).encode(encoder.encode_family(&[("worker", i.to_string())])?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// All metrics of one proxy process (kept across reloads).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    live: Arc<Live>,
    no_route: Arc<RouteMetrics>,
    /// Open downstream connections.
    pub active_connections: Gauge,
    /// `realip_rejected_total{reason}`.
    pub rejected: Counters<Rejected>,
    /// `realip_client_ip_warnings_total{kind}`.
    pub warnings: Counters<WarningKind>,
    /// `realip_config_reloads_total{result}`.
    pub reloads: Counters<ReloadResult>,
    /// `realip_rate_limit_decisions_total{scope,outcome,via}`.
    pub rate_decisions: Counters<RateDecision>,
    /// `realip_rate_limit_store_errors_total{kind}`.
    pub store_errors: Counters<StoreErrorKind>,
    /// `realip_rate_limit_store_state_changes_total{to}`.
    pub store_states: Counters<StoreState>,
    sources: Arc<SourceCounters>,
    store_latency: Arc<Histogram>,
    workers: Arc<WorkerCounters>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Registers `m` (a handle shared with the registry) under `name`.
#[derive(Debug)]
struct Shared<T>(Arc<T>);

impl<T: EncodeMetric> EncodeMetric for Shared<T> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }
    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Metrics {
    /// Empty metrics, every family registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let live = Arc::new(Live::default());
        registry.register_collector(Box::new(Arc::clone(&live)));
        let m = Metrics {
            no_route: handle(&live.routes, "-", RouteMetrics::new),
            live,
            active_connections: Gauge::default(),
            rejected: Counters::default(),
            warnings: Counters::default(),
            reloads: Counters::default(),
            rate_decisions: Counters::default(),
            store_errors: Counters::default(),
            store_states: Counters::default(),
            sources: Arc::default(),
            store_latency: Arc::default(),
            workers: Arc::default(),
            registry,
        };
        // The registry appends the final period of each help text.
        let mut r = m.registry;
        r.register("realip_rejected", "Requests or connections refused by a limit, by reason", m.rejected.clone());
        r.register(
            "realip_client_ip_source",
            "Resolved client IPs by the source they came from",
            Shared(Arc::clone(&m.sources)),
        );
        r.register(
            "realip_client_ip_warnings",
            "Client IP resolutions that fell back or skipped something, by kind",
            m.warnings.clone(),
        );
        r.register("realip_config_reloads", "Configuration reloads, by result", m.reloads.clone());
        r.register(
            "realip_rate_limit_decisions",
            "Rate-limit decisions by scope (local, global), outcome (allowed, limited) and via (local, store, cache, on_error)",
            m.rate_decisions.clone(),
        );
        r.register(
            "realip_rate_limit_store_errors",
            "Failed rate-limit store calls, by kind (timeout, connection, response, backlog)",
            m.store_errors.clone(),
        );
        r.register(
            "realip_rate_limit_store_state_changes",
            "Rate-limit store state changes, by the state entered (down, up)",
            m.store_states.clone(),
        );
        r.register("realip_connections_active", "Open downstream connections", m.active_connections.clone());
        r.register(
            "realip_rate_limit_store_duration_seconds",
            "Rate-limit store call latency (global limits)",
            Shared(Arc::clone(&m.store_latency)),
        );
        r.register(
            "realip_worker_connections",
            "Downstream connections accepted, by worker thread (with --runtime multi-thread all count as worker 0)",
            Shared(Arc::clone(&m.workers)),
        );
        Metrics { registry: r, ..m }
    }

    /// The accepted-connections counter of worker `i` (series start at 0).
    pub fn worker(&self, i: usize) -> Arc<AtomicU64> {
        let mut w = lock(&self.workers.0);
        while w.len() <= i {
            w.push(Arc::default());
        }
        Arc::clone(&w[i])
    }

    /// The counters of listener `name` (kept for the life of the process:
    /// listeners are bound once).
    pub fn listener(&self, name: &str) -> Arc<ListenerMetrics> {
        Arc::clone(lock(&self.live.listeners).entry(name.into()).or_default())
    }

    /// The counters of route `name`: the live ones if a snapshot still has
    /// a route of that name.
    pub fn route(&self, name: &str) -> Arc<RouteMetrics> {
        handle(&self.live.routes, name, RouteMetrics::new)
    }

    /// The counters of requests that matched no route (`route="-"`).
    pub fn no_route(&self) -> &Arc<RouteMetrics> {
        &self.no_route
    }

    /// The counters of upstream `name`.
    pub fn upstream(&self, name: &str) -> Arc<UpstreamMetrics> {
        handle(&self.live.upstreams, name, |name| UpstreamMetrics { name, errors: Default::default() })
    }

    /// Resolves the handles of every route and upstream of `snap`. Call
    /// it before the snapshot replaces the previous one, so what stays
    /// keeps its counters.
    pub fn bind(&self, snap: &Snapshot) {
        for r in snap.routes.all() {
            r.metrics(self);
            r.upstream.metrics(self);
        }
        for p in snap.pools.values() {
            p.metrics(self);
        }
    }

    /// One client IP resolved from `source` (a `Source::as_str`).
    pub fn client_ip_source(&self, source: &'static str) {
        self.sources.inc(source);
    }

    /// Records the duration of one rate-limit store call.
    pub fn observe_store(&self, d: Duration) {
        self.store_latency.observe(d);
    }

    /// The store's latency histogram and error counters, for a call made
    /// off a request (a lease refill) that outlives the borrow of `self`.
    pub fn store_handles(&self) -> (Arc<Histogram>, Counters<StoreErrorKind>) {
        (Arc::clone(&self.store_latency), self.store_errors.clone())
    }

    /// The OpenMetrics text (what Prometheus asks for first).
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The Prometheus text format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// The body and content type for a scraper that sent `accept`:
    /// OpenMetrics when it asks for it, else Prometheus text 0.0.4.
    pub fn render_for(&self, accept: Option<&str>) -> (String, &'static str) {
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            (self.render_openmetrics(), OPENMETRICS)
        } else {
            (self.render(), PROMETHEUS_TEXT)
        }
    }
}

impl Route {
    /// This route's counters (resolved once, by [`Metrics::bind`]).
    pub fn metrics(&self, m: &Metrics) -> &Arc<RouteMetrics> {
        self.metrics.get_or_init(|| m.route(&self.name))
    }
}

impl Pool {
    /// This upstream's counters (resolved once, by [`Metrics::bind`]).
    pub fn metrics(&self, m: &Metrics) -> &Arc<UpstreamMetrics> {
        self.metrics.get_or_init(|| m.upstream(&self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> Arc<str> {
        "web".into()
    }

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        let r0 = m.route("r0");
        r0.request(&web(), 200, Duration::from_millis(3));
        r0.request(&web(), 200, Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("realip_requests_total{listener=\"web\",route=\"r0\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("realip_request_duration_seconds_bucket{route=\"r0\",le=\"0.005\"} 2"), "{text}");
        assert!(text.contains("realip_request_duration_seconds_bucket{route=\"r0\",le=\"0.001\"} 0"), "{text}");
        assert!(text.contains("realip_request_duration_seconds_bucket{route=\"r0\",le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("realip_request_duration_seconds_count{route=\"r0\"} 2"), "{text}");
        m.warnings.inc(WarningKind::InvalidEntry);
        let text = m.render();
        assert!(
            text.contains("realip_client_ip_warnings_total{kind=\"invalid_entry\"} 1"),
            "every counter counted is rendered: {text}"
        );
        assert!(!text.contains("too_few_hops"), "nothing counted, no series: {text}");
        assert!(!text.contains("realip_rate_limit_store_duration_seconds"), "no store, no store series");
        m.observe_store(Duration::from_micros(300));
        let text = m.render();
        assert!(text.contains("realip_rate_limit_store_duration_seconds_bucket{le=\"0.0005\"} 1"), "{text}");
        assert!(text.contains("realip_rate_limit_store_duration_seconds_count 1"), "{text}");
        assert!(text.contains("# TYPE realip_requests_total counter"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn openmetrics_names_families_without_total_and_ends_with_eof() {
        let m = Metrics::default();
        m.rejected.inc(Rejected::BadRequest);
        m.listener("web").connection();
        let (text, ctype) = m.render_for(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
        assert_eq!(ctype, OPENMETRICS);
        assert!(text.contains("# TYPE realip_rejected counter\n"), "{text}");
        assert!(text.contains("realip_rejected_total{reason=\"bad_request\"} 1\n"), "{text}");
        assert!(text.contains("realip_connections_total{listener=\"web\"} 1\n"), "{text}");
        assert!(
            text.contains("# HELP realip_rejected Requests or connections refused by a limit, by reason.\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(m.render_for(None).1, PROMETHEUS_TEXT);
    }

    #[test]
    fn every_label_set_round_trips_its_index() {
        for i in 0..RateDecision::COUNT {
            assert_eq!(RateDecision::from_index(i).index(), i);
        }
        assert_eq!(RateDecision::COUNT, 20, "2 scopes × 2 outcomes × 5 ways");
        let d = RateDecision(RateScope::Global, RateOutcome::Limited, RateVia::Cache);
        assert_eq!(d.pairs(), [("scope", "global"), ("outcome", "limited"), ("via", "cache")]);
    }

    #[test]
    fn statuses_beyond_the_slots_are_still_counted() {
        let m = Metrics::default();
        let r = m.route("r");
        let other: Arc<str> = "other".into();
        for s in 200..220u16 {
            r.request(&web(), s, Duration::ZERO);
            r.request(&other, s, Duration::ZERO);
        }
        r.request(&"web".into(), 219, Duration::ZERO); // equal name, another Arc
        let text = m.render();
        assert_eq!(text.matches("realip_requests_total{").count(), 40, "{text}");
        assert!(text.contains("realip_requests_total{listener=\"web\",route=\"r\",status=\"219\"} 2"), "{text}");
    }

    #[test]
    fn a_route_that_stays_keeps_its_counters_and_a_gone_one_is_dropped() {
        let m = Metrics::default();
        let (kept, gone) = (m.route("kept"), m.route("gone"));
        kept.denied();
        gone.denied();
        // The next snapshot resolves `kept` while the previous one lives.
        let again = m.route("kept");
        assert!(Arc::ptr_eq(&kept, &again));
        drop((kept, gone));
        let text = m.render();
        assert!(text.contains("realip_denied_total{route=\"kept\"} 1"), "{text}");
        assert!(!text.contains("gone"), "{text}");
        drop(again);
        assert!(!m.render().contains("kept"));
        assert_eq!(lock(&m.live.routes).len(), 1, "only `-` is left");
    }

    #[test]
    fn sources_are_counted_by_label() {
        let m = Metrics::default();
        for s in realip_core::Source::ALL {
            m.client_ip_source(s.as_str());
        }
        m.client_ip_source(realip_core::Source::Xff.as_str());
        let text = m.render();
        assert!(text.contains("realip_client_ip_source_total{source=\"xff\"} 2"), "{text}");
        assert!(text.contains("realip_client_ip_source_total{source=\"proxy-protocol\"} 1"), "{text}");
    }
}
