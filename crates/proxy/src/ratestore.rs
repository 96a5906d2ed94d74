//! Global rate limits: one limit per client shared by every replica,
//! kept in Redis (or Valkey) by a GCRA script.
//!
//! Invariants:
//! - one decision is one atomic server-side step: [`GCRA`] (loaded once,
//!   called with EVALSHA; a `NOSCRIPT` after a Redis restart reloads it)
//!   reads and advances the client's theoretical arrival time (TAT) under
//!   Redis' own clock, so replicas with skewed clocks still agree;
//! - keys are `realip:rl:{scope}:{client}` (IPv6 clients by prefix), the
//!   scope being a route's escaped name, `[policy]`, or `KIND:NS/NAME` of
//!   the Kubernetes policy whose bucket every route it covers shares, and
//!   expire when the TAT is reached, i.e. when the key would say nothing
//!   a missing key does not: Redis holds nothing stale;
//! - a client Redis just limited is answered locally until the time Redis
//!   gave (no round trip). A limited decision does not change the TAT, so
//!   this cache never lets more through than Redis would: each replica is
//!   exact up to the one decision in flight;
//! - a client Redis just allowed gets one more token asked for in the
//!   background (a lease, one per client and limit): its next request
//!   takes it without a round trip while the following one is asked for.
//!   Redis grants a lease only while the client keeps at least half its
//!   burst after it (the script's `reserve`), so a client near its limit
//!   is decided by Redis request by request, exactly, and a refused lease
//!   neither changes its state nor limits it. A lease is a token Redis
//!   granted, so leases never let more through than Redis would; a
//!   replica holds at most one per client, so a client gets at most one
//!   token fewer per replica than its limit (a lease it never comes back
//!   for), and a token granted at one time may be used at a later one (at
//!   most one per replica: "exact within one token per replica"). A
//!   decision Redis refuses takes the client's lease if one arrived
//!   meanwhile. No lease is asked for while the store is down;
//! - the call carrying a decision waits at most `timeout` for Redis, from
//!   when it is sent (a decision waits at most three timeouts in all). A
//!   lost connection, or a timeout while Redis has answered nothing for
//!   `timeout`, marks the store down (one log line, one metric) and
//!   `on_error` decides; a decision that only waited in a busy proxy gets
//!   `on_error` alone. While down, one trial decision goes to Redis per backoff
//!   step (100 ms doubling to 5 s), the rest use `on_error` at once. The
//!   first success marks it up again (one log line, one metric).
//!   Reconnecting is the connection manager's job; Redis losing its data
//!   only forgets counters.
//! - decisions are batched, led by the callers themselves: a decision
//!   that finds fewer than [`IN_FLIGHT`] script calls on the wire sends
//!   its own call at once (it is the leader); one arriving while
//!   [`IN_FLIGHT`] calls are out waits in a queue, and a leader, once its
//!   call is answered, hands the duty on to the oldest queued decision,
//!   which sends everything queued meanwhile (at most [`MAX_BATCH`] keys)
//!   as the next call. A leader sends one call, so its own request waits
//!   one round trip, and no decision passes through a task of its own
//!   (each hop costs a scheduling round on a busy worker). The queue is
//!   never left without a leader: it is non-empty only while all
//!   [`IN_FLIGHT`] slots are held, and a slot is given back only when the
//!   queue is empty — also when a leader's caller goes away (the call in
//!   progress is finished in a task) or a queued caller that was handed
//!   the duty is gone (it is handed on). A call carries several decisions
//!   for the same key as one step with a hit count. Under load this turns
//!   thousands of round trips a second into a few hundred, without
//!   letting more through: the script grants each key only the tokens its
//!   TAT allows, in arrival order. A batch is one script, so the store is
//!   one Redis (or Valkey) primary, not a Cluster (keys of a batch may sit
//!   in different slots).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tokio::sync::{oneshot, watch};

use crate::config::{OnStoreError, RateConfig, RateLimitStoreConfig, DEFAULT_STORE_TIMEOUT};
use crate::metrics::{Metrics, RateDecision, RateOutcome, RateScope, RateVia, StoreErrorKind, StoreState};
use crate::policy::{Decision, RateLimiter};

/// GCRA for a batch of keys. KEYS[i]: a client's key; ARGV[4i-3],
/// ARGV[4i-2], ARGV[4i-1], ARGV[4i]: its emission interval (µs per
/// token), capacity (interval × burst, µs), hits (decisions waiting) and
/// reserve (µs of the capacity that must be left after the grant: 0 for a
/// request, more for a lease, which is only granted to a client with room
/// to spare; a refused lease changes nothing). Returns a flat
/// array, two numbers per key: tokens granted (0..=hits; the TAT advanced
/// by that many intervals, the key expiring at the new TAT) and, when
/// fewer than hits were granted, µs until the next token (else 0, and at
/// most 10^15: Redis turns a larger number into i64::MIN). A key Redis
/// cannot read as a string (`WRONGTYPE`: something else wrote it) gives
/// `-1, 0` and is left alone: only its own decisions fail, never the
/// others of the batch. A stored value that is no number, or NaN, counts
/// as no state and is overwritten.
///
/// - A stored TAT more than `capacity` ahead (written under another rate,
///   before a reload lowered the burst or raised the rate) is read as
///   `now + capacity` and stored so: a client waits at most one interval
///   under the rate in force, never the old rate's window.
/// - `n` tokens fit while `tat + n × interval - now <= capacity`; the
///   division that finds `n` is checked against that test both ways, so
///   rounding never grants one more or one less than one step at a time
///   would.
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
local function px(ms)
  return string.format('%.0f', math.min(1e15, math.max(1, math.ceil(ms))))
end
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[4 * i - 3])
  local capacity = tonumber(ARGV[4 * i - 2])
  local hits = tonumber(ARGV[4 * i - 1])
  local room = capacity - tonumber(ARGV[4 * i])
  local stored = redis.pcall('GET', key)
  if type(stored) == 'table' and stored.err then
    out[2 * i - 1] = -1
    out[2 * i] = 0
  else
    local tat = tonumber(stored or '0') or 0
    if tat ~= tat then tat = 0 end
    if tat < now then tat = now end
    if tat > now + capacity then
      tat = now + capacity
      redis.call('SET', key, string.format('%.0f', tat), 'PX', px(capacity / 1000))
    end
    local fit = math.floor((now + room - tat) / interval)
    if fit < 0 then fit = 0 end
    if fit > hits then fit = hits end
    while fit > 0 and tat + fit * interval - now > room do fit = fit - 1 end
    while fit < hits and tat + (fit + 1) * interval - now <= room do fit = fit + 1 end
    local wait = 0
    if fit > 0 then
      tat = tat + fit * interval
      redis.call('SET', key, string.format('%.0f', tat), 'PX', px((tat - now) / 1000))
    end
    if fit < hits then wait = math.min(1e15, math.ceil(tat + interval - now - capacity)) end
    out[2 * i - 1] = fit
    out[2 * i] = wait
  end
end
return out
";

/// Waits while down before the first trial; doubled per failed trial.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Limited clients (and leases) remembered per shard before expired
/// entries are swept.
const MAX_BLOCKED_PER_SHARD: usize = 65_536;
/// A lease unused this long may be dropped when its shard is full.
const LEASE_IDLE: Duration = Duration::from_secs(10);
const SHARDS: usize = 16;
/// Keys in one script call.
pub const MAX_BATCH: usize = 256;
/// Script calls on the wire at once: one being answered while the next
/// waits in Redis' queue, and the decisions arriving meanwhile form the
/// batch after (sent by the oldest of them when a call is answered).
pub const IN_FLIGHT: usize = 2;
/// Decisions queued for a batch; beyond this a decision fails at once
/// (as a timeout) instead of queueing behind a store that cannot keep up.
const QUEUE: usize = 16_384;

/// One decision waiting for Redis.
#[derive(Debug)]
struct Pending {
    key: String,
    interval: f64,
    capacity: f64,
    /// 0 for a request's decision, more for a lease (see [`GCRA`]).
    reserve: f64,
    reply: oneshot::Sender<Reply>,
}

/// What a queued decision is sent: its answer, or the duty to lead the
/// next call (its own key and rate handed back, to put first in it).
#[derive(Debug)]
enum Reply {
    Answer(Result<(bool, u64), StoreError>),
    Lead { key: String, interval: f64, capacity: f64, reserve: f64 },
}

/// The decisions waiting for a call, and the calls on the wire. Invariant:
/// `queue` is non-empty only while `in_flight == IN_FLIGHT`.
#[derive(Debug, Default)]
struct Lanes {
    queue: VecDeque<Pending>,
    in_flight: usize,
}

/// One script call and the hand-off after it, as a future that owns all
/// it needs: if the leader's caller goes away mid-call, the rest runs in a
/// task of its own (see [`Leading`]).
type BatchCall = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A leader's call in progress. Dropped before the call finished (the
/// caller's request was cancelled, or its three timeouts passed), it
/// spawns the rest, so the decisions of the batch are answered and the
/// queue gets its next leader.
struct Leading(Option<BatchCall>);

impl Drop for Leading {
    fn drop(&mut self) {
        if let (Some(call), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(call);
        }
    }
}

/// A caller's end of its decision. Dropped after the duty to lead was sent
/// to it but before it took it up, it hands the duty on (or gives the slot
/// back), so the queue is not left without a leader.
struct Waiting<'a> {
    store: &'a Store,
    answer: oneshot::Receiver<Reply>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // After `close`, a send either failed (the leader hands on to the
        // next) or its value is here.
        self.answer.close();
        if let Ok(Reply::Lead { .. }) = self.answer.try_recv() {
            self.store.pass_on();
        }
    }
}

/// The GCRA parameters of a rate, in microseconds: the emission interval
/// (one token) and the capacity (a full burst). `burst` defaults to
/// `per_second`, as for local buckets.
pub fn gcra_params(rate: RateConfig) -> (f64, f64) {
    let interval = 1_000_000.0 / rate.per_second;
    let burst = rate.burst.unwrap_or(rate.per_second).max(1.0);
    (interval, interval * burst)
}

/// The scope of `[policy]`'s limit (in Redis keys and the limiter map).
pub const POLICY_SCOPE: &str = "[policy]";

/// A route's name as the scope of its limit: `%`, `:`, `[` and `]`
/// percent-encoded, so that no route name reads as another route's name
/// plus the start of an IPv6 client (`a:2001` + `db8::` against `a` +
/// `2001:db8::`), nor as [`POLICY_SCOPE`].
pub fn route_scope(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.contains(['%', ':', '[', ']']) {
        return name.into();
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            '[' => out.push_str("%5B"),
            ']' => out.push_str("%5D"),
            c => out.push(c),
        }
    }
    out.into()
}

/// The Redis key of a client (already reduced to its bucket key) under a
/// limit's scope ([`POLICY_SCOPE`] or [`route_scope`]).
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
    lanes: Mutex<Lanes>,
    timeout: Duration,
    on_error: OnStoreError,
    up: AtomicBool,
    health: Mutex<Health>,
    /// When Redis last answered a call: a timeout marks the store down only
    /// when Redis has answered nothing for `timeout` (a late answer on a
    /// busy proxy is not a down store).
    answered: Mutex<Instant>,
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
    /// The decision waited in this proxy, not in Redis: the queue of
    /// decisions was full, or no answer came within three timeouts while
    /// Redis kept answering other calls (an overloaded proxy).
    Backlog,
}

impl StoreError {
    fn metric(self) -> StoreErrorKind {
        match self {
            StoreError::Timeout => StoreErrorKind::Timeout,
            StoreError::Connection => StoreErrorKind::Connection,
            StoreError::Response => StoreErrorKind::Response,
            StoreError::Backlog => StoreErrorKind::Backlog,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            StoreError::Timeout => "timeout",
            StoreError::Connection => "connection",
            StoreError::Response => "response",
            StoreError::Backlog => "backlog",
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
            lanes: Mutex::new(Lanes::default()),
            timeout: cfg.timeout.map_or(DEFAULT_STORE_TIMEOUT, |d| d.0),
            on_error: cfg.on_error,
            up: AtomicBool::new(true),
            health: Mutex::new(Health { next_trial: now, backoff: FIRST_BACKOFF }),
            answered: Mutex::new(now),
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

    /// One GCRA decision for `key`, within `timeout`, in the next batch.
    async fn call(
        self: &Arc<Self>,
        key: String,
        interval: f64,
        capacity: f64,
        reserve: f64,
    ) -> Result<(bool, u64), StoreError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        if self.conn.borrow().is_none() {
            self.connect();
            let mut rx = self.conn.subscribe();
            let connected = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await.map(|r| r.is_ok());
            match connected {
                Ok(true) => {}
                Ok(false) => return Err(StoreError::Connection),
                Err(_) => return Err(StoreError::Timeout),
            }
        }
        let (reply, answer) = oneshot::channel();
        let pending = Pending { key, interval, capacity, reserve, reply };
        let lead = {
            let mut lanes = self.lanes();
            if lanes.in_flight < IN_FLIGHT {
                // A free slot: the queue is empty, this decision is the batch.
                lanes.in_flight += 1;
                Some(vec![pending])
            } else if lanes.queue.len() >= QUEUE {
                return Err(StoreError::Backlog);
            } else {
                lanes.queue.push_back(pending);
                None
            }
        };
        let mut waiting = Waiting { store: self, answer };
        let decided = async {
            if let Some(batch) = lead {
                self.lead(batch).await;
            }
            loop {
                match (&mut waiting.answer).await {
                    Ok(Reply::Answer(r)) => return r,
                    Ok(Reply::Lead { key, interval, capacity, reserve }) => {
                        let (reply, answer) = oneshot::channel();
                        waiting.answer = answer;
                        let mut batch = vec![Pending { key, interval, capacity, reserve, reply }];
                        self.take_queued(&mut batch);
                        self.lead(batch).await;
                    }
                    // Not sent: cannot happen (every batch answers all it
                    // holds), but must not hang.
                    Err(_) => return Err(StoreError::Connection),
                }
            }
        };
        // The call carrying this decision times out `timeout` after it is
        // sent, and a call waits at most that long for a slot: past three
        // timeouts the wait is the proxy's own backlog.
        tokio::time::timeout(self.timeout * 3, decided).await.unwrap_or(Err(StoreError::Backlog))
    }

    fn lanes(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves queued decisions into `batch` (oldest first, up to
    /// [`MAX_BATCH`]), dropping those whose caller gave up.
    fn take_queued(&self, batch: &mut Vec<Pending>) {
        let mut lanes = self.lanes();
        while batch.len() < MAX_BATCH {
            let Some(p) = lanes.queue.pop_front() else { break };
            if !p.reply.is_closed() {
                batch.push(p);
            }
        }
    }

    /// Sends `batch` as one call from this task (holding a slot), answers
    /// it, then hands the slot on.
    async fn lead(self: &Arc<Self>, batch: Vec<Pending>) {
        let store = Arc::clone(self);
        let mut call = Leading(Some(Box::pin(async move {
            store.run_batch(batch).await;
            store.pass_on();
        })));
        if let Some(c) = call.0.as_mut() {
            c.await;
        }
        call.0 = None;
    }

    /// After a call (holding its slot): the oldest queued decision still
    /// waited for leads the next call, or, with none queued, the slot is
    /// free again.
    fn pass_on(&self) {
        let mut lanes = self.lanes();
        while let Some(Pending { key, interval, capacity, reserve, reply }) = lanes.queue.pop_front() {
            if reply.send(Reply::Lead { key, interval, capacity, reserve }).is_ok() {
                return;
            }
        }
        lanes.in_flight -= 1;
    }

    /// Sends one batch as one script call and answers each decision.
    async fn run_batch(&self, pending: Vec<Pending>) {
        // Decisions whose caller gave up are not sent.
        let pending: Vec<Pending> = pending.into_iter().filter(|p| !p.reply.is_closed()).collect();
        if pending.is_empty() {
            return;
        }
        let groups = group(&pending);
        let mut inv = self.script.prepare_invoke();
        for g in &groups {
            let p = &pending[g[0]];
            inv.key(&p.key);
            // Shortest exact decimal: `{:.3}` once sent 0.000 for the
            // interval of a rate above 2·10^9/s, and the script divided by 0.
            inv.arg(p.interval.to_string()).arg(p.capacity.to_string()).arg(g.len()).arg(p.reserve.to_string());
        }
        let conn = self.conn.borrow().clone();
        let answer = match conn {
            None => Err(StoreError::Connection),
            Some(mut conn) => match tokio::time::timeout(self.timeout, inv.invoke_async::<Vec<i64>>(&mut conn)).await {
                Err(_) => Err(StoreError::Timeout),
                Ok(Ok(v)) if v.len() == 2 * groups.len() => {
                    *self.answered.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
                    Ok(v)
                }
                Ok(Ok(v)) => {
                    self.log_answer_error(&format!("script returned {} numbers for {} keys", v.len(), groups.len()));
                    Err(StoreError::Response)
                }
                Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => {
                    Err(StoreError::Connection)
                }
                Ok(Err(e)) => {
                    self.log_answer_error(&e.to_string());
                    Err(StoreError::Response)
                }
            },
        };
        let mut replies: Vec<Option<oneshot::Sender<_>>> = pending.into_iter().map(|p| Some(p.reply)).collect();
        let mut unreadable = 0;
        for (gi, g) in groups.iter().enumerate() {
            let outcome = match &answer {
                Err(e) => Err(*e),
                Ok(v) if v[2 * gi] < 0 => {
                    unreadable += 1;
                    Err(StoreError::Response)
                }
                Ok(v) => Ok((usize::try_from(v[2 * gi]).unwrap_or(0), v[2 * gi + 1])),
            };
            // Tokens go to callers still waiting, in arrival order: one that
            // timed out meanwhile does not take a token another could use.
            let mut left = outcome.map_or(0, |(granted, _)| granted);
            for &i in g {
                let Some(reply) = replies[i].take() else { continue };
                if reply.is_closed() {
                    continue;
                }
                let r = match outcome {
                    Err(e) => Err(e),
                    Ok(_) if left > 0 => {
                        left -= 1;
                        Ok((true, 0))
                    }
                    Ok((_, wait)) => Ok((false, u64::try_from(wait).unwrap_or(0))),
                };
                let _ = reply.send(Reply::Answer(r)); // it may time out in between
            }
        }
        if unreadable > 0 {
            self.log_answer_error(&format!("{unreadable} key(s) hold a value that is not a string (WRONGTYPE)"));
        }
    }

    /// Logs an error answer (e.g. `WRONGTYPE` on one key, `OOM`), at most
    /// once a minute: an answer means Redis is up, so it is not a state
    /// change, but the reason must be findable.
    fn log_answer_error(&self, e: &str) {
        let now = Instant::now();
        let mut last = self.answer_logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(60)) {
            return;
        }
        *last = Some(now);
        drop(last);
        crate::log::event(&serde_json::json!({ "event": "rate_limit_store_error_answer", "error": e }));
    }

    /// Whether Redis has answered no call for `d`.
    fn silent_for(&self, d: Duration) -> bool {
        self.answered.lock().unwrap_or_else(std::sync::PoisonError::into_inner).elapsed() >= d
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
            metrics.store_states.inc(StoreState::Up);
            crate::log::event(&serde_json::json!({ "event": "rate_limit_store_up" }));
        }
    }

    fn mark_down(&self, metrics: &Metrics, e: StoreError) {
        if self.up.swap(false, Ordering::AcqRel) {
            let mut h = self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            h.next_trial = Instant::now() + FIRST_BACKOFF;
            h.backoff = FIRST_BACKOFF * 2;
            drop(h);
            metrics.store_states.inc(StoreState::Down);
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

/// One shard of the per-client state: the limited-clients cache and the
/// leases.
#[derive(Debug, Default)]
struct Blocked {
    until: HashMap<IpAddr, Instant>,
    /// No sweep of expired entries before this (one a second at most).
    next_sweep: Option<Instant>,
    /// Clients with a lease held (`true`) or being asked for (`false`),
    /// and since when.
    leases: HashMap<IpAddr, (bool, Instant)>,
    /// No sweep of unused leases before this (one a second at most).
    next_lease_sweep: Option<Instant>,
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

    /// Takes `key`'s lease, if it holds one.
    fn use_lease(&self, key: IpAddr) -> bool {
        let mut shard = self.shard(key);
        if shard.leases.get(&key).is_some_and(|&(held, _)| held) {
            shard.leases.remove(&key);
            return true;
        }
        false
    }

    /// Keeps the token `client` was just granted and did not use (a later
    /// limit refused the request) as its lease, for its next request: one
    /// lease at most, so with one already held the token is lost (the
    /// client gets one fewer, never one more). Redis cannot take a token
    /// back, so this is the only way to hand it back.
    pub fn give_back(&self, client: IpAddr) {
        let key = self.fallback.key(client);
        let mut shard = self.shard(key);
        let full = shard.leases.len() >= MAX_BLOCKED_PER_SHARD;
        match shard.leases.get_mut(&key) {
            // A refill in flight: its answer, if a token, is then lost.
            Some(lease) => *lease = (true, Instant::now()),
            None if !full => {
                shard.leases.insert(key, (true, Instant::now()));
            }
            None => {}
        }
    }

    /// Asks the store for `key`'s next token in the background, unless it
    /// holds a lease, one is being asked for, or the store is down. A full
    /// shard takes no new lease (its clients ask Redis per request).
    fn refill(self: &Arc<Self>, key: IpAddr, metrics: &Metrics) {
        if !self.store.is_up() {
            return;
        }
        {
            let now = Instant::now();
            let mut shard = self.shard(key);
            if shard.leases.contains_key(&key) {
                return;
            }
            // Full: leases unused for LEASE_IDLE are dropped (their clients
            // went away; Redis refills the token), at most once a second.
            if shard.leases.len() >= MAX_BLOCKED_PER_SHARD {
                if shard.next_lease_sweep.is_some_and(|t| now < t) {
                    return;
                }
                shard.next_lease_sweep = Some(now + Duration::from_secs(1));
                shard.leases.retain(|_, &mut (held, since)| !held || now.duration_since(since) < LEASE_IDLE);
                if shard.leases.len() >= MAX_BLOCKED_PER_SHARD {
                    return;
                }
            }
            shard.leases.insert(key, (false, now));
        }
        let (latency, errors) = metrics.store_handles();
        let limiter = Arc::clone(self);
        tokio::spawn(async move {
            let started = Instant::now();
            let reserve = limiter.capacity / 2.0;
            let r =
                limiter.store.call(redis_key(&limiter.route, key), limiter.interval, limiter.capacity, reserve).await;
            latency.observe(started.elapsed());
            let mut shard = limiter.shard(key);
            match r {
                Ok((true, _)) => {
                    shard.leases.insert(key, (true, Instant::now()));
                }
                // Less than half its burst left: no lease, and not limited
                // either (its next request asks Redis).
                // (A lease given back meanwhile stays.)
                Ok((false, _)) => {
                    if shard.leases.get(&key).is_some_and(|&(held, _)| !held) {
                        shard.leases.remove(&key);
                    }
                }
                // The next request asks Redis itself, and its failure
                // decides the store's state (and `on_error`).
                Err(e) => {
                    if shard.leases.get(&key).is_some_and(|&(held, _)| !held) {
                        shard.leases.remove(&key);
                    }
                    errors.inc(e.metric());
                }
            }
        });
    }

    /// Decides for `client` (see the module docs).
    pub async fn take(self: &Arc<Self>, client: IpAddr, metrics: &Metrics) -> Decision {
        let key = self.fallback.key(client);
        let now = Instant::now();
        let count = |outcome: RateOutcome, via: RateVia| {
            metrics.rate_decisions.inc(RateDecision(RateScope::Global, outcome, via));
        };
        // A lease first: it may have arrived after Redis refused another
        // decision of this client (same batch, earlier in it).
        if self.use_lease(key) {
            count(RateOutcome::Allowed, RateVia::Lease);
            self.refill(key, metrics);
            return Decision::Allow;
        }
        if let Some(until) = self.blocked_until(key, now) {
            count(RateOutcome::Limited, RateVia::Cache);
            return Decision::Limited(retry_after(until - now));
        }
        let result = if self.store.may_try(now) {
            let started = Instant::now();
            let r = self.store.call(redis_key(&self.route, key), self.interval, self.capacity, 0.0).await;
            metrics.observe_store(started.elapsed());
            Some(r)
        } else {
            None // down, between trials: no round trip
        };
        match result {
            Some(Ok((true, _))) => {
                self.store.mark_up(metrics);
                count(RateOutcome::Allowed, RateVia::Store);
                self.refill(key, metrics);
                Decision::Allow
            }
            Some(Ok((false, _))) if self.use_lease(key) => {
                self.store.mark_up(metrics);
                count(RateOutcome::Allowed, RateVia::Lease);
                Decision::Allow
            }
            Some(Ok((false, wait_us))) => {
                self.store.mark_up(metrics);
                let wait = Duration::from_micros(wait_us);
                self.block(key, Instant::now() + wait, now);
                count(RateOutcome::Limited, RateVia::Store);
                Decision::Limited(retry_after(wait))
            }
            failed => {
                if let Some(Err(e)) = failed {
                    metrics.store_errors.inc(e.metric());
                    // Redis answered (this key or script is bad), or answers
                    // others while this decision waited in the proxy: it is
                    // up, and marking it down would send every other client
                    // to `on_error` and flap the state.
                    match e {
                        StoreError::Response => self.store.mark_up(metrics),
                        StoreError::Backlog => {}
                        StoreError::Timeout if !self.store.silent_for(self.store.timeout) => {}
                        StoreError::Timeout | StoreError::Connection => self.store.mark_down(metrics, e),
                    }
                }
                let d = match self.store.on_error {
                    OnStoreError::Local => self.fallback.take(client, now),
                    OnStoreError::Allow => Decision::Allow,
                    OnStoreError::Deny => Decision::Limited(1),
                };
                count(if d == Decision::Allow { RateOutcome::Allowed } else { RateOutcome::Limited }, RateVia::OnError);
                d
            }
        }
    }
}

/// The decisions of a batch grouped by key (and rate: after a reload an old
/// and a new limit may share a key), each group in arrival order, groups in
/// order of their first decision: indexes into `pending`.
fn group(pending: &[Pending]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<(&str, u64, u64, u64), usize> = HashMap::with_capacity(pending.len());
    for (i, p) in pending.iter().enumerate() {
        let id = (p.key.as_str(), p.interval.to_bits(), p.capacity.to_bits(), p.reserve.to_bits());
        if let Some(&g) = index.get(&id) {
            groups[g].push(i);
        } else {
            index.insert(id, groups.len());
            groups.push(vec![i]);
        }
    }
    groups
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

    /// The script's arithmetic for one key, for the cases below:
    /// (granted, new TAT, µs until the next token when not all granted).
    fn gcra(tat: f64, now: f64, interval: f64, capacity: f64, hits: u32) -> (u32, f64, f64) {
        let tat = tat.max(now).min(now + capacity);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let mut fit = (((now + capacity - tat) / interval).floor().max(0.0) as u32).min(hits);
        while fit > 0 && tat + f64::from(fit) * interval - now > capacity {
            fit -= 1;
        }
        while fit < hits && tat + f64::from(fit + 1) * interval - now <= capacity {
            fit += 1;
        }
        let tat = tat + f64::from(fit) * interval;
        let wait = if fit < hits { (tat + interval - now - capacity).ceil() } else { 0.0 };
        (fit, tat, wait)
    }

    #[test]
    fn gcra_allows_a_burst_then_the_rate() {
        let (interval, capacity) = gcra_params(rate(10.0, Some(20.0)));
        assert!((interval - 100_000.0).abs() < 1e-9 && (capacity - 2_000_000.0).abs() < 1e-6);
        let (mut tat, now) = (0.0, 1e15);
        let allowed: u32 = (0..25)
            .map(|_| {
                let (ok, t, _) = gcra(tat, now, interval, capacity, 1);
                tat = t;
                ok
            })
            .sum();
        assert_eq!(allowed, 20, "a full burst at once");
        let (ok, _, wait) = gcra(tat, now, interval, capacity, 1);
        assert!(ok == 0 && (wait - 100_000.0).abs() < 1.0, "next token in one interval, got {wait}");
        let (ok, _, _) = gcra(tat, now + 100_000.0, interval, capacity, 1);
        assert_eq!(ok, 1, "one token after one interval");
        // Over 10 s at 20/s offered, 20 (burst) + 10/s × 10 s pass.
        let (mut tat, mut passed) = (0.0, 0);
        for i in 0..200 {
            let (ok, t, _) = gcra(tat, 1e15 + f64::from(i) * 50_000.0, interval, capacity, 1);
            tat = t;
            passed += ok;
        }
        assert!((119..=121).contains(&passed), "{passed}");
    }

    /// A batch of n decisions for one key grants exactly what n single
    /// steps would, leaves the same TAT, and gives the same wait.
    #[test]
    fn hits_in_one_step_equal_single_steps() {
        for (per_second, burst) in
            [(10.0, Some(20.0)), (3.0, None), (0.5, Some(1.0)), (1e6, Some(7.0)), (7.3, Some(2.9))]
        {
            let (interval, capacity) = gcra_params(rate(per_second, burst));
            for (start, now) in [(0.0, 1.7e15), (1.7e15 + capacity * 0.5, 1.7e15), (1.7e15 + 3.0 * capacity, 1.7e15)] {
                for hits in [1, 2, 5, 20, 21, 40] {
                    let (granted, tat_n, wait_n) = gcra(start, now, interval, capacity, hits);
                    let (mut tat, mut singles, mut wait) = (start, 0, 0.0);
                    for _ in 0..hits {
                        let (ok, t, w) = gcra(tat, now, interval, capacity, 1);
                        tat = t;
                        singles += ok;
                        wait = w;
                    }
                    let case = format!("{per_second}/s burst {burst:?} from {start} × {hits}");
                    assert_eq!(granted, singles, "{case}");
                    // Doubles of µs since 1970 resolve 0.25 µs; Redis keeps
                    // whole µs.
                    assert!((tat_n - tat).abs() < 1.0, "{case}: TAT {tat_n} vs {tat}");
                    if granted < hits {
                        assert!(wait_n >= 1.0 && (wait_n - wait).abs() <= 1.0, "{case}: wait {wait_n} vs {wait}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_batch_groups_decisions_by_key_and_rate_in_arrival_order() {
        let p = |key: &str, interval: f64| Pending {
            key: key.to_owned(),
            interval,
            capacity: 10.0,
            reserve: 0.0,
            reply: oneshot::channel().0,
        };
        let batch = [p("a", 1.0), p("b", 1.0), p("a", 1.0), p("a", 2.0), p("b", 1.0), p("a", 1.0)];
        assert_eq!(group(&batch), vec![vec![0, 2, 5], vec![1, 4], vec![3]]);
        // A lease is its own step (it is granted only with room to spare).
        let lease = Pending { reserve: 5.0, ..p("a", 1.0) };
        assert_eq!(group(&[p("a", 1.0), lease, p("a", 1.0)]), vec![vec![0, 2], vec![1]]);
        assert!(group(&[]).is_empty());
    }

    fn unreachable_store() -> Arc<Store> {
        Store::new(
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
        .unwrap()
    }

    fn queued(store: &Store, key: &str) -> oneshot::Receiver<Reply> {
        let (reply, answer) = oneshot::channel();
        store.lanes().queue.push_back(Pending {
            key: key.to_owned(),
            interval: 1.0,
            capacity: 1.0,
            reserve: 0.0,
            reply,
        });
        answer
    }

    /// The duty to lead goes to the oldest queued decision still waited
    /// for; one that is dropped after it was sent the duty passes it on,
    /// and with nothing queued the slot is given back.
    #[test]
    fn the_duty_to_lead_is_never_lost() {
        let store = unreachable_store();
        store.lanes().in_flight = IN_FLIGHT;
        let gone = queued(&store, "gone");
        drop(gone);
        let a = queued(&store, "a");
        let mut b = queued(&store, "b");
        store.pass_on();
        assert_eq!(store.lanes().in_flight, IN_FLIGHT, "handed on, not given back");
        assert_eq!(store.lanes().queue.len(), 1, "`gone` skipped, `a` handed the duty");
        // `a`'s caller goes away before taking the duty up: `b` gets it.
        drop(Waiting { store: &store, answer: a });
        match b.try_recv() {
            Ok(Reply::Lead { key, .. }) => assert_eq!(key, "b"),
            other => panic!("b was not handed the duty: {other:?}"),
        }
        assert!(store.lanes().queue.is_empty());
        // `b` goes too, with nothing queued: the slot is free.
        let (tx, rx) = oneshot::channel();
        tx.send(Reply::Lead { key: "b".into(), interval: 1.0, capacity: 1.0, reserve: 0.0 }).unwrap();
        drop(Waiting { store: &store, answer: rx });
        assert_eq!(store.lanes().in_flight, IN_FLIGHT - 1);
        // A waiter dropped with its answer (or nothing) changes nothing.
        let (tx, rx) = oneshot::channel();
        tx.send(Reply::Answer(Ok((true, 0)))).unwrap();
        drop(Waiting { store: &store, answer: rx });
        drop(Waiting { store: &store, answer: oneshot::channel().1 });
        assert_eq!(store.lanes().in_flight, IN_FLIGHT - 1);
    }

    /// A leader's call cut short by its caller finishes in a task.
    #[tokio::test]
    async fn a_dropped_leader_call_runs_to_its_end() {
        let (done, finished) = oneshot::channel();
        let call = Leading(Some(Box::pin(async move {
            tokio::task::yield_now().await;
            let _ = done.send(());
        })));
        drop(call);
        tokio::time::timeout(Duration::from_secs(10), finished).await.unwrap().unwrap();
    }

    /// Queued decisions are taken oldest first, at most a batch, without
    /// those whose caller gave up.
    #[test]
    fn a_leader_takes_the_oldest_queued_decisions() {
        let store = unreachable_store();
        let mut keep = Vec::new();
        for i in 0..2 * MAX_BATCH + 10 {
            let rx = queued(&store, &i.to_string());
            if i % 2 == 1 {
                keep.push(rx);
            }
        }
        let (reply, _own) = oneshot::channel();
        let mut batch = vec![Pending { key: "own".into(), interval: 1.0, capacity: 1.0, reserve: 0.0, reply }];
        store.take_queued(&mut batch);
        assert_eq!(batch.len(), MAX_BATCH);
        let keys: Vec<&str> = batch.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys[..3], ["own", "1", "3"]);
        assert_eq!(keys[MAX_BATCH - 1], (2 * MAX_BATCH - 3).to_string());
        assert!(store.lanes().queue.iter().all(|p| p.key.parse::<usize>().unwrap() > 2 * MAX_BATCH - 3));
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
        // No route name reads as another's key, nor as `[policy]`'s.
        let c = "2001:db8::".parse().unwrap();
        assert_ne!(redis_key(&route_scope("a:2001"), "db8::".parse().unwrap()), redis_key(&route_scope("a"), c));
        assert_eq!(route_scope("a:b[c]%"), "a%3Ab%5Bc%5D%25");
        assert_ne!(route_scope(POLICY_SCOPE), POLICY_SCOPE);
        assert_eq!(route_scope("ns/web/rule-0"), "ns/web/rule-0");
    }

    #[test]
    fn the_cache_answers_until_the_time_redis_gave() {
        let store = unreachable_store();
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
        assert_eq!(m.store_states.get(StoreState::Down), 1, "once per change");
        let t = Instant::now();
        assert!(!store.may_try(t), "no trial right after going down");
        assert!(store.may_try(t + FIRST_BACKOFF));
        assert!(!store.may_try(t + FIRST_BACKOFF), "one trial per step");
        assert!(store.may_try(t + FIRST_BACKOFF * 3));
        store.mark_up(&m);
        store.mark_up(&m);
        assert_eq!(m.store_states.get(StoreState::Up), 1);
        assert!(store.may_try(t));
    }
}
