//! Global-limit decisions led by their callers (`ratestore`'s
//! leader/follower batching) against a real `redis-server` (Debian
//! package) started on a free loopback port and killed after: with Redis
//! stalled by `DEBUG SLEEP`, thousands of concurrent decisions queue
//! behind the calls in flight and every one is answered by the store —
//! also when callers (leaders on the wire, queued decisions handed the
//! duty to lead) are cancelled along the way. Leases (a client's next
//! token asked for in the background) answer a client within its limit
//! without a round trip, and never let more through than the limit.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use realip_proxy::config::{Dur, OnStoreError, RateConfig, RateLimitStoreConfig, RateScope};
use realip_proxy::metrics::{Metrics, RateDecision, RateOutcome, RateScope as Scope, RateVia};
use realip_proxy::policy::{Decision, Limit, Policy};
use realip_proxy::ratestore::{GlobalLimiter, Store};

mod common;
use common::{redis, Redis};

fn limiter(r: &Redis) -> Arc<GlobalLimiter> {
    limiter_with(r, "leaders", 1e6, 1e6)
}

/// A limit named `name` (its Redis keys) of `per_second` and `burst`, on
/// its own connection to `r` (as one replica).
fn limiter_with(r: &Redis, name: &str, per_second: f64, burst: f64) -> Arc<GlobalLimiter> {
    let store = Store::new(
        &RateLimitStoreConfig {
            redis: format!("redis://127.0.0.1:{}/0", r.port),
            password_file: None,
            password_env: None,
            ca_file: None,
            on_error: OnStoreError::Deny,
            // Far above the stall: a decision that is not answered by the
            // store is a bug, not a slow machine.
            timeout: Some(Dur(Duration::from_secs(5))),
        },
        None,
    )
    .unwrap();
    let rate = RateConfig { per_second, burst: Some(burst), scope: RateScope::Global, ipv6_prefix: None };
    Arc::new(GlobalLimiter::new(store, name, rate, 64))
}

fn client(i: u32) -> IpAddr {
    // 300 clients in 198.51.100.0/24 and 203.0.113.0/24: keys repeat
    // within a batch (hit counts) and batches fill up to their limit.
    let i = i % 300;
    IpAddr::V4(if i < 150 { Ipv4Addr::new(198, 51, 100, i as u8) } else { Ipv4Addr::new(203, 0, 113, (i - 150) as u8) })
}

/// Stalls Redis for `secs` from another connection, in the background.
async fn stall(r: &Redis, secs: &'static str) -> tokio::task::JoinHandle<()> {
    let c = redis::Client::open(format!("redis://127.0.0.1:{}/0", r.port)).unwrap();
    let mut conn = c.get_multiplexed_async_connection().await.unwrap();
    tokio::spawn(async move {
        let _: () = redis::cmd("DEBUG").arg("SLEEP").arg(secs).query_async(&mut conn).await.unwrap();
    })
}

fn allowed_by_store(m: &Metrics) -> u64 {
    m.rate_decisions.get(RateDecision(Scope::Global, RateOutcome::Allowed, RateVia::Store))
}

fn allowed_by_lease(m: &Metrics) -> u64 {
    m.rate_decisions.get(RateDecision(Scope::Global, RateOutcome::Allowed, RateVia::Lease))
}

/// Store calls answered so far (requests' and leases'), from the metrics
/// text.
fn store_calls(m: &Metrics) -> u64 {
    let text = m.render_openmetrics();
    text.lines()
        .find_map(|l| l.strip_prefix("realip_rate_limit_store_duration_seconds_count "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// `n` concurrent decisions while Redis sleeps; those with `cancel(i)`
/// are aborted, the even ones while Redis sleeps (leaders on the wire,
/// decisions queued), the odd ones one per scheduling round once answers
/// flow (some after the duty to lead was sent to them). Every other one
/// must be an allow answered by Redis.
async fn run(n: u32, cancel: impl Fn(u32) -> bool) {
    let Some(redis) = redis() else { return };
    let limiter = limiter(&redis);
    let metrics = Arc::new(Metrics::default());
    // Connected, script loaded.
    assert_eq!(limiter.take(client(0), &metrics).await, Decision::Allow);
    let stalled = stall(&redis, "0.3").await;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (limiter, metrics) = (Arc::clone(&limiter), Arc::clone(&metrics));
            tokio::spawn(async move { limiter.take(client(i), &metrics).await })
        })
        .collect();
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    for (i, t) in (0..n).zip(&tasks) {
        if cancel(i) && i % 2 == 0 {
            t.abort();
        }
    }
    let t0 = Instant::now();
    while allowed_by_store(&metrics) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(20), "no answer from Redis");
        tokio::task::yield_now().await;
    }
    for (i, t) in (0..n).zip(&tasks) {
        if cancel(i) && i % 2 == 1 {
            t.abort();
            tokio::task::yield_now().await;
        }
    }
    let mut answered = 0;
    let all = async {
        for (i, t) in (0..n).zip(tasks) {
            match t.await {
                Ok(d) => {
                    assert_eq!(d, Decision::Allow, "decision {i}");
                    answered += 1;
                }
                Err(e) => assert!(e.is_cancelled() && cancel(i), "decision {i}: {e}"),
            }
        }
    };
    // The store's own bound is three timeouts (15 s): every decision must
    // have its answer well before; a queue left without a leader would
    // instead end in `Backlog` (a deny) after 15 s.
    tokio::time::timeout(Duration::from_secs(60), all).await.expect("every decision answered");
    stalled.await.unwrap();
    assert!(answered >= (0..n).filter(|&i| !cancel(i)).count(), "{answered} answered");
    let errors: u64 = [
        realip_proxy::metrics::StoreErrorKind::Timeout,
        realip_proxy::metrics::StoreErrorKind::Connection,
        realip_proxy::metrics::StoreErrorKind::Response,
        realip_proxy::metrics::StoreErrorKind::Backlog,
    ]
    .into_iter()
    .map(|k| metrics.store_errors.get(k))
    .sum();
    assert_eq!(errors, 0, "store errors");
    assert_eq!(
        allowed_by_store(&metrics) + allowed_by_lease(&metrics),
        1 + answered as u64,
        "every answered decision was Redis' (its answer or a lease it granted)"
    );
    // Batched: far fewer script calls than decisions.
    let c = redis::Client::open(format!("redis://127.0.0.1:{}/0", redis.port)).unwrap();
    let mut conn = c.get_multiplexed_async_connection().await.unwrap();
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    let calls: u64 = stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|line| line.split(',').next())
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no EVALSHA in INFO commandstats:\n{stats}"));
    eprintln!("{answered} decisions answered in {calls} script calls");
    assert!(calls < u64::from(n) / 4, "{calls} script calls for {n} decisions");
}

#[tokio::test(flavor = "current_thread")]
async fn every_queued_decision_is_answered_on_one_thread() {
    run(3000, |_| false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_queued_decision_is_answered_on_two_threads() {
    run(3000, |_| false).await;
}

#[tokio::test(flavor = "current_thread")]
async fn cancelled_leaders_and_followers_leave_no_decision_behind() {
    run(3000, |i| i % 3 == 0 || i < 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_callers_on_two_threads_leave_no_decision_behind() {
    run(3000, |i| i % 3 == 0 || i < 4).await;
}

/// A client well within its limit: after its first decision (a round
/// trip), each next one takes the lease Redis granted in the background
/// meanwhile, and asks for the next.
#[tokio::test(flavor = "current_thread")]
async fn a_client_within_its_limit_is_answered_from_its_lease() {
    let Some(redis) = redis() else { return };
    let limiter = limiter_with(&redis, "paced", 1000.0, 1000.0);
    let metrics = Metrics::default();
    let c = client(7);
    for k in 1..=20u64 {
        assert_eq!(limiter.take(c, &metrics).await, Decision::Allow, "decision {k}");
        // Its call and the lease call after it.
        let t0 = Instant::now();
        while store_calls(&metrics) < k + 1 {
            assert!(t0.elapsed() < Duration::from_secs(20), "lease {k} not answered");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    assert_eq!((allowed_by_store(&metrics), allowed_by_lease(&metrics)), (1, 19), "one round trip, then leases");
}

/// Two replicas (two connections) sharing one limit of 20/s, burst 10,
/// asked every 2 ms for a second: leases are used while the bucket is more
/// than half full, and all the replicas let through is what the limit
/// allows (GCRA: the burst, then the rate), give or take the one lease per
/// replica not yet used.
#[tokio::test(flavor = "current_thread")]
async fn leases_never_let_more_through_than_the_limit() {
    let Some(redis) = redis() else { return };
    let replicas = [limiter_with(&redis, "shared", 20.0, 10.0), limiter_with(&redis, "shared", 20.0, 10.0)];
    let metrics = Metrics::default();
    let c = client(9);
    let t0 = Instant::now();
    let mut allowed = 0u64;
    let mut i = 0;
    while t0.elapsed() < Duration::from_secs(1) {
        if replicas[i % 2].take(c, &metrics).await == Decision::Allow {
            allowed += 1;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = t0.elapsed();
    let (t, ms) = (elapsed.as_secs_f64(), u64::try_from(elapsed.as_millis()).unwrap());
    // Tokens refilled at 20/s; +1: the one that refills while the last
    // decision is in flight.
    let most = 10 + (ms * 20).div_ceil(1000) + 1;
    let least = (10 + ms * 20 / 1000).saturating_sub(2 + 1);
    eprintln!("{allowed} allowed of {i} in {t:.3} s; leases used {}", allowed_by_lease(&metrics));
    assert!(allowed <= most, "{allowed} allowed in {t:.3} s: more than the limit ({most})");
    assert!(allowed >= least, "{allowed} allowed in {t:.3} s: fewer than the limit less a lease per replica ({least})");
    assert!(allowed_by_lease(&metrics) > 0, "no lease used while the bucket was full");
}

/// Two global limits on one request (a Gateway's and a route's): when the
/// second refuses, the first one's token is kept as the client's lease
/// (Redis cannot take it back), so refused requests do not spend the
/// first limit's budget.
#[tokio::test(flavor = "current_thread")]
async fn a_refused_request_gives_the_earlier_global_token_back_as_a_lease() {
    let Some(redis) = redis() else { return };
    let (gateway, route) = (limiter_with(&redis, "gateway", 0.001, 3.0), limiter_with(&redis, "route", 0.001, 1.0));
    let p = Policy { limits: vec![Limit::Global(Arc::clone(&gateway)), Limit::Global(route)], ..Policy::open() };
    let (m, c) = (Metrics::default(), client(11));
    assert_eq!(p.check(c, Instant::now(), &m).await, Decision::Allow);
    for _ in 0..3 {
        assert!(matches!(p.check(c, Instant::now(), &m).await, Decision::Limited(_)), "the route's burst is 1");
    }
    let via = |o, v| m.rate_decisions.get(RateDecision(Scope::Global, o, v));
    eprintln!(
        "allowed store {} lease {}; limited store {} cache {}",
        via(RateOutcome::Allowed, RateVia::Store),
        via(RateOutcome::Allowed, RateVia::Lease),
        via(RateOutcome::Limited, RateVia::Store),
        via(RateOutcome::Limited, RateVia::Cache)
    );
    // The gateway's limit spent one token on the passed request and one
    // it holds as a lease: two of its three are left for the client.
    assert_eq!(gateway.take(c, &m).await, Decision::Allow, "the lease");
    assert_eq!(gateway.take(c, &m).await, Decision::Allow, "the third token");
    assert!(matches!(gateway.take(c, &m).await, Decision::Limited(_)));
}
