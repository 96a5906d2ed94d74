//! Global rate limits: one limit per client shared by every replica,
//! kept in Redis (or Valkey) by a GCRA script.
//!
//! Invariants:
//! - one decision is one atomic server-side step: [`GCRA`] (loaded once,
//!   called with EVALSHA; a `NOSCRIPT` after a Redis restart reloads it)
//!   reads and advances the client's theoretical arrival time (TAT) under
//!   Redis' own clock, so replicas with skewed clocks still agree;
//! - keys are `realip:rl:{route}:{client}` (IPv6 clients by prefix) and
//!   expire when the TAT is reached, i.e. when the key would say nothing
//!   a missing key does not: Redis holds nothing stale;
//! - a client Redis just limited is answered locally until the time Redis
//!   gave (no round trip). A limited decision does not change the TAT, so
//!   this cache never lets more through than Redis would: each replica is
//!   exact up to the one decision in flight;
//! - every decision waits at most `timeout` for Redis. An error or timeout
//!   marks the store down (one log line, one metric) and `on_error`
//!   decides; while down, one trial decision goes to Redis per backoff
//!   step (100 ms doubling to 5 s), the rest use `on_error` at once. The
//!   first success marks it up again (one log line, one metric).
//!   Reconnecting is the connection manager's job; Redis losing its data
//!   only forgets counters.
//! - in-flight decisions share one multiplexed (pipelined) connection.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tokio::sync::watch;

use crate::config::{OnStoreError, RateConfig, RateLimitStoreConfig, DEFAULT_STORE_TIMEOUT};
use crate::metrics::Metrics;
use crate::policy::{Decision, RateLimiter};

/// GCRA, one step. KEYS[1]: the client's key. ARGV[1]: emission interval
/// (µs per token); ARGV[2]: capacity (interval × burst, µs). Returns
/// `{1, 0}` (allowed; TAT advanced, key expires at the new TAT) or
/// `{0, µs until the next allowed request}` (TAT untouched).
///
/// - A stored TAT more than `capacity` ahead (written under another rate,
///   before a reload lowered the burst or raised the rate) is read as
///   `now + capacity` and stored so: a client waits at most one interval
///   under the rate in force, never the old rate's window.
/// - The expiry is at least 1 ms: at rates above ~4M/s the interval is
///   below the resolution of a double holding µs since 1970 (0.25 µs),
///   `ahead` rounds to 0, and `PX 0` is an error Redis answers every
///   request with. It is at most 10^15 ms and written as an integer:
///   Redis refuses `1e+20`, which a rate of 10^-14/s would give.
/// - `redis.replicate_commands()` (Redis 3.2–4: a script calling `TIME`
///   must replicate effects, not itself; always so from Redis 5).
pub const GCRA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
if tat > now + capacity then
  tat = now + capacity
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', math.min(1e15, math.max(1, math.ceil(capacity / 1000)))))
end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > capacity then
  return {0, math.ceil(ahead - capacity)}
end
local px = math.min(1e15, math.max(1, math.ceil(ahead / 1000)))
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', px))
return {1, 0}
";

/// Waits while down before the first trial; doubled per failed trial.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Limited clients remembered per shard before expired entries are swept.
const MAX_BLOCKED_PER_SHARD: usize = 65_536;
const SHARDS: usize = 16;

/// The GCRA parameters of a rate, in microseconds: the emission interval
/// (one token) and the capacity (a full burst). `burst` defaults to
/// `per_second`, as for local buckets.
pub fn gcra_params(rate: RateConfig) -> (f64, f64) {
    let interval = 1_000_000.0 / rate.per_second;
    let burst = rate.burst.unwrap_or(rate.per_second).max(1.0);
    (interval, interval * burst)
}

/// The Redis key of a client (already reduced to its bucket key).
pub fn redis_key(route: &str, client: IpAddr) -> String {
    format!("realip:rl:{route}:{client}")
}

#[derive(Debug)]
struct Health {
    /// While down: when the next trial may go to Redis, and the step after.
    next_trial: Instant,
    backoff: Duration,
}

/// A connection to the rate-limit store, shared by every global limiter of
/// a snapshot and kept across reloads while `[rate_limit_store]` (and the
/// password) stay the same.
pub struct Store {
    /// What this store was built from (config and resolved password).
    identity: (RateLimitStoreConfig, Option<String>),
    client: redis::Client,
    conn: watch::Sender<Option<ConnectionManager>>,
    connecting: AtomicBool,
    script: redis::Script,
    timeout: Duration,
    on_error: OnStoreError,
    up: AtomicBool,
    health: Mutex<Health>,
    /// When an error answer of Redis was last logged (at most one a minute).
    answer_logged: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the identity: it holds the password.
        f.debug_struct("Store")
            .field("connected", &self.conn.borrow().is_some())
            .field("up", &self.is_up())
            .field("timeout", &self.timeout)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

/// Why a store call failed (the `kind` label of the error metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// No answer within `timeout`.
    Timeout,
    /// Not connected, connection lost or refused.
    Connection,
    /// Redis answered with an error (auth, script, wrong type...).
    Response,
}

impl StoreError {
    fn as_str(self) -> &'static str {
        match self {
            StoreError::Timeout => "timeout",
            StoreError::Connection => "connection",
            StoreError::Response => "response",
        }
    }
}

impl Store {
    /// A store for `cfg` (no I/O: connecting starts on first use, in the
    /// background). `previous` is kept when it was built from the same
    /// settings, so a reload keeps its connection.
    pub fn new(cfg: &RateLimitStoreConfig, previous: Option<&Arc<Store>>) -> Result<Arc<Store>, String> {
        let password = cfg.password()?;
        let identity = (cfg.clone(), password.clone());
        if let Some(p) = previous.filter(|p| p.identity == identity) {
            return Ok(Arc::clone(p));
        }
        let mut info: redis::ConnectionInfo =
            cfg.redis.trim().parse().map_err(|e| format!("rate_limit_store.redis: {e}"))?;
        if password.is_some() {
            info.redis.password = password;
        }
        let client = match &cfg.ca_file {
            Some(ca) => {
                let root_cert =
                    std::fs::read(ca).map_err(|e| format!("rate_limit_store.ca_file: `{}`: {e}", ca.display()))?;
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates { client_tls: None, root_cert: Some(root_cert) },
                )
            }
            None => redis::Client::open(info),
        }
        .map_err(|e| format!("rate_limit_store.redis: {e}"))?;
        let now = Instant::now();
        let store = Arc::new(Store {
            identity,
            client,
            conn: watch::Sender::new(None),
            connecting: AtomicBool::new(false),
            script: redis::Script::new(GCRA),
            timeout: cfg.timeout.map_or(DEFAULT_STORE_TIMEOUT, |d| d.0),
            on_error: cfg.on_error,
            up: AtomicBool::new(true),
            health: Mutex::new(Health { next_trial: now, backoff: FIRST_BACKOFF }),
            answer_logged: Mutex::new(None),
        });
        // Serving (not `--check`): connect now, so the first decisions do
        // not wait for the handshake.
        if tokio::runtime::Handle::try_current().is_ok() {
            store.connect();
        }
        Ok(store)
    }

    /// Whether the last call succeeded (or none was made yet).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Starts connecting in the background, once. The connection manager
    /// then reconnects by itself (with backoff) whenever the link breaks.
    fn connect(self: &Arc<Self>) {
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let cfg = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Duration::from_secs(2))
                .set_number_of_retries(2)
                .set_factor(100)
                .set_max_delay(2000);
            let mut delay = FIRST_BACKOFF;
            let mut last_error = String::new();
            loop {
                match ConnectionManager::new_with_config(store.client.clone(), cfg.clone()).await {
                    Ok(c) => {
                        store.conn.send_replace(Some(c));
                        return;
                    }
                    // Why (refused, WRONGPASS, a certificate...), once per
                    // different reason: decisions only see a timeout.
                    Err(e) => {
                        let error = e.to_string();
                        if error != last_error {
                            crate::log::event(&serde_json::json!({
                                "event": "rate_limit_store_connect_failed", "error": error,
                            }));
                            last_error = error;
                        }
                    }
                }
                // Failed decisions report the state; this only retries,
                // until a reload dropped every other user of this store.
                if Arc::strong_count(&store) == 1 {
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        });
    }

    /// One GCRA step for `key`, within `timeout`.
    async fn call(self: &Arc<Self>, key: &str, interval: f64, capacity: f64) -> Result<(bool, u64), StoreError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let existing = self.conn.borrow().clone();
        let mut conn = if let Some(c) = existing {
            c
        } else {
            self.connect();
            let mut rx = self.conn.subscribe();
            let waited = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await;
            match waited {
                Ok(Ok(c)) => c.clone().ok_or(StoreError::Connection)?,
                Ok(Err(_)) => return Err(StoreError::Connection),
                Err(_) => return Err(StoreError::Timeout),
            }
        };
        let mut inv = self.script.key(key);
        inv.arg(format!("{interval:.3}")).arg(format!("{capacity:.3}"));
        match tokio::time::timeout_at(deadline, inv.invoke_async::<(i64, i64)>(&mut conn)).await {
            Err(_) => Err(StoreError::Timeout),
            Ok(Ok((allowed, wait))) => Ok((allowed == 1, u64::try_from(wait).unwrap_or(0))),
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => {
                Err(StoreError::Connection)
            }
            Ok(Err(e)) => {
                self.log_answer_error(&e);
                Err(StoreError::Response)
            }
        }
    }

    /// Logs an error answer (e.g. `WRONGTYPE` on one key, `OOM`), at most
    /// once a minute: an answer means Redis is up, so it is not a state
    /// change, but the reason must be findable.
    fn log_answer_error(&self, e: &redis::RedisError) {
        let now = Instant::now();
        let mut last = self.answer_logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(60)) {
            return;
        }
        *last = Some(now);
        drop(last);
        crate::log::event(&serde_json::json!({ "event": "rate_limit_store_error_answer", "error": e.to_string() }));
    }

    /// Whether a decision may go to Redis now: always while up; while
    /// down, one trial per backoff step.
    fn may_try(&self, now: Instant) -> bool {
        if self.is_up() {
            return true;
        }
        let mut h = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if now < h.next_trial {
            return false;
        }
        h.next_trial = now + h.backoff;
        h.backoff = (h.backoff * 2).min(MAX_BACKOFF);
        true
    }

    fn mark_up(&self, metrics: &Metrics) {
        if !self.up.swap(true, Ordering::AcqRel) {
            let mut h = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            h.backoff = FIRST_BACKOFF;
            drop(h);
            metrics.inc("realip_rate_limit_store_state_changes_total", &[("to", "up")]);
            crate::log::event(&serde_json::json!({ "event": "rate_limit_store_up" }));
        }
    }

    fn mark_down(&self, metrics: &Metrics, e: StoreError) {
        if self.up.swap(false, Ordering::AcqRel) {
            let mut h = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            h.next_trial = Instant::now() + FIRST_BACKOFF;
            h.backoff = FIRST_BACKOFF * 2;
            drop(h);
            metrics.inc("realip_rate_limit_store_state_changes_total", &[("to", "down")]);
            crate::log::event(&serde_json::json!({
                "event": "rate_limit_store_down", "error": e.as_str(),
                "on_error": format!("{:?}", self.on_error).to_lowercase(),
            }));
        }
    }
}

/// A global limit: one route's (or `[policy]`'s) rate, decided by the
/// store, with the local cache of limited clients and the per-replica
/// fallback of `on_error = "local"`.
#[derive(Debug)]
pub struct GlobalLimiter {
    store: Arc<Store>,
    route: String,
    interval: f64,
    capacity: f64,
    /// Keys clients like the local limiter; also the `local` fallback.
    fallback: RateLimiter,
    hasher: RandomState,
    blocked: Vec<Mutex<Blocked>>,
}

/// One shard of the limited-clients cache.
#[derive(Debug, Default)]
struct Blocked {
    until: HashMap<IpAddr, Instant>,
    /// No sweep of expired entries before this (one a second at most).
    next_sweep: Option<Instant>,
}

impl GlobalLimiter {
    /// A global limit named `route` (the middle of its Redis keys).
    pub fn new(store: Arc<Store>, route: &str, rate: RateConfig, ipv6_prefix: u8) -> GlobalLimiter {
        let (interval, capacity) = gcra_params(rate);
        GlobalLimiter {
            store,
            route: route.to_owned(),
            interval,
            capacity,
            fallback: RateLimiter::new(rate, ipv6_prefix),
            hasher: RandomState::new(),
            blocked: (0..SHARDS).map(|_| Mutex::new(Blocked::default())).collect(),
        }
    }

    /// The store this limit uses.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn shard(&self, key: IpAddr) -> std::sync::MutexGuard<'_, Blocked> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.blocked[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When a limited client may come back, if that is after `now`.
    pub fn blocked_until(&self, key: IpAddr, now: Instant) -> Option<Instant> {
        let mut shard = self.shard(key);
        match shard.until.get(&key) {
            Some(&until) if until > now => Some(until),
            Some(_) => {
                shard.until.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers that `key` is limited until `until`. A full shard is
    /// swept of expired entries at most once a second; if it is still
    /// full the client is not remembered (Redis answers for it, as for a
    /// client never seen: the cache only saves round trips).
    pub fn block(&self, key: IpAddr, until: Instant, now: Instant) {
        let mut shard = self.shard(key);
        if shard.until.len() >= MAX_BLOCKED_PER_SHARD && !shard.until.contains_key(&key) {
            if shard.next_sweep.is_some_and(|t| now < t) {
                return;
            }
            shard.next_sweep = Some(now + Duration::from_secs(1));
            shard.until.retain(|_, u| *u > now);
            if shard.until.len() >= MAX_BLOCKED_PER_SHARD {
                return;
            }
        }
        shard.until.insert(key, until);
    }

    /// Decides for `client` (see the module docs).
    pub async fn take(&self, client: IpAddr, metrics: &Metrics) -> Decision {
        let key = self.fallback.key(client);
        let now = Instant::now();
        let count = |outcome: &str, via: &str| {
            metrics
                .inc("realip_rate_limit_decisions_total", &[("scope", "global"), ("outcome", outcome), ("via", via)]);
        };
        if let Some(until) = self.blocked_until(key, now) {
            count("limited", "cache");
            return Decision::Limited(retry_after(until - now));
        }
        let result = if self.store.may_try(now) {
            let started = Instant::now();
            let r = self.store.call(&redis_key(&self.route, key), self.interval, self.capacity).await;
            metrics.observe_store(started.elapsed());
            Some(r)
        } else {
            None // down, between trials: no round trip
        };
        match result {
            Some(Ok((true, _))) => {
                self.store.mark_up(metrics);
                count("allowed", "store");
                Decision::Allow
            }
            Some(Ok((false, wait_us))) => {
                self.store.mark_up(metrics);
                let wait = Duration::from_micros(wait_us);
                self.block(key, Instant::now() + wait, now);
                count("limited", "store");
                Decision::Limited(retry_after(wait))
            }
            failed => {
                if let Some(Err(e)) = failed {
                    metrics.inc("realip_rate_limit_store_errors_total", &[("kind", e.as_str())]);
                    // Redis answered: it is up, this key (or script) is not.
                    // Marking it down would send every other client to
                    // `on_error` and flap the state.
                    if e == StoreError::Response {
                        self.store.mark_up(metrics);
                    } else {
                        self.store.mark_down(metrics, e);
                    }
                }
                let d = match self.store.on_error {
                    OnStoreError::Local => self.fallback.take(client, now),
                    OnStoreError::Allow => Decision::Allow,
                    OnStoreError::Deny => Decision::Limited(1),
                };
                count(if d == Decision::Allow { "allowed" } else { "limited" }, "on_error");
                d
            }
        }
    }
}

/// Whole seconds for `Retry-After`, at least 1.
fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateScope;

    fn rate(per_second: f64, burst: Option<f64>) -> RateConfig {
        RateConfig { per_second, burst, scope: RateScope::Global, ipv6_prefix: None }
    }

    /// The script's arithmetic, step by step, for the cases below.
    fn gcra(tat: f64, now: f64, interval: f64, capacity: f64) -> (bool, f64, f64) {
        let tat = tat.max(now).min(now + capacity);
        let new_tat = tat + interval;
        let ahead = new_tat - now;
        if ahead > capacity {
            (false, tat, (ahead - capacity).ceil())
        } else {
            (true, new_tat, 0.0)
        }
    }

    #[test]
    fn gcra_allows_a_burst_then_the_rate() {
        let (interval, capacity) = gcra_params(rate(10.0, Some(20.0)));
        assert!((interval - 100_000.0).abs() < 1e-9 && (capacity - 2_000_000.0).abs() < 1e-6);
        let (mut tat, now) = (0.0, 1e15);
        let allowed = (0..25)
            .filter(|_| {
                let (ok, t, _) = gcra(tat, now, interval, capacity);
                tat = t;
                ok
            })
            .count();
        assert_eq!(allowed, 20, "a full burst at once");
        let (ok, _, wait) = gcra(tat, now, interval, capacity);
        assert!(!ok && (wait - 100_000.0).abs() < 1.0, "next token in one interval, got {wait}");
        let (ok, _, _) = gcra(tat, now + 100_000.0, interval, capacity);
        assert!(ok, "one token after one interval");
        // Over 10 s at 20/s offered, 20 (burst) + 10/s × 10 s pass.
        let (mut tat, mut passed) = (0.0, 0);
        for i in 0..200 {
            let (ok, t, _) = gcra(tat, 1e15 + f64::from(i) * 50_000.0, interval, capacity);
            tat = t;
            passed += usize::from(ok);
        }
        assert!((119..=121).contains(&passed), "{passed}");
    }

    #[test]
    fn burst_defaults_to_the_rate_and_is_at_least_one() {
        let (i, c) = gcra_params(rate(4.0, None));
        assert!((c / i - 4.0).abs() < 1e-9);
        let (i, c) = gcra_params(rate(0.5, Some(0.2)));
        assert!((c / i - 1.0).abs() < 1e-9 && (i - 2_000_000.0).abs() < 1e-6);
    }

    #[test]
    fn keys_name_the_route_and_the_client_prefix() {
        let store = Store::new(
            &RateLimitStoreConfig {
                redis: "redis://127.0.0.1:1/0".into(),
                password_file: None,
                password_env: None,
                ca_file: None,
                on_error: OnStoreError::Local,
                timeout: None,
            },
            None,
        )
        .unwrap();
        let l = GlobalLimiter::new(store, "api", rate(1.0, None), 64);
        let k = l.fallback.key("2001:db8:1:2:3:4:5:6".parse().unwrap());
        assert_eq!(redis_key("api", k), "realip:rl:api:2001:db8:1:2::");
        assert_eq!(redis_key("api", l.fallback.key("::ffff:192.0.2.9".parse().unwrap())), "realip:rl:api:192.0.2.9");
    }

    #[test]
    fn the_cache_answers_until_the_time_redis_gave() {
        let store = Store::new(
            &RateLimitStoreConfig {
                redis: "redis://127.0.0.1:1/0".into(),
                password_file: None,
                password_env: None,
                ca_file: None,
                on_error: OnStoreError::Deny,
                timeout: None,
            },
            None,
        )
        .unwrap();
        let l = GlobalLimiter::new(store, "r", rate(1.0, None), 64);
        let (c, other) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let now = Instant::now();
        l.block(c, now + Duration::from_millis(300), now);
        assert_eq!(l.blocked_until(c, now + Duration::from_millis(299)), Some(now + Duration::from_millis(300)));
        assert_eq!(l.blocked_until(other, now), None);
        assert_eq!(l.blocked_until(c, now + Duration::from_millis(300)), None, "expired at the given time");
        assert!(l.shard(c).until.is_empty(), "expired entries are dropped");
        assert_eq!(retry_after(Duration::from_millis(300)), 1);
        assert_eq!(retry_after(Duration::from_millis(2100)), 3);
        assert_eq!(retry_after(Duration::from_secs(2)), 2);
    }

    #[test]
    fn down_store_tries_once_per_backoff_step() {
        let store = Store::new(
            &RateLimitStoreConfig {
                redis: "redis://127.0.0.1:1/0".into(),
                password_file: None,
                password_env: None,
                ca_file: None,
                on_error: OnStoreError::Allow,
                timeout: None,
            },
            None,
        )
        .unwrap();
        let m = Metrics::default();
        let now = Instant::now();
        assert!(store.may_try(now));
        store.mark_down(&m, StoreError::Timeout);
        store.mark_down(&m, StoreError::Timeout);
        assert_eq!(m.counter("realip_rate_limit_store_state_changes_total", &[("to", "down")]), 1, "once per change");
        let t = Instant::now();
        assert!(!store.may_try(t), "no trial right after going down");
        assert!(store.may_try(t + FIRST_BACKOFF));
        assert!(!store.may_try(t + FIRST_BACKOFF), "one trial per step");
        assert!(store.may_try(t + FIRST_BACKOFF * 3));
        store.mark_up(&m);
        store.mark_up(&m);
        assert_eq!(m.counter("realip_rate_limit_store_state_changes_total", &[("to", "up")]), 1);
        assert!(store.may_try(t));
    }
}
