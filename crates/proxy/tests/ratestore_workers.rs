//! Global-limit decisions on worker threads (thread-per-core serving)
//! against a real `redis-server` (Debian package) started on a free
//! loopback port and killed after: each worker decides over a connection
//! of its own, made and driven on its own runtime, never on the control
//! runtime that built the store (a connection driven there would wake that
//! thread to write each call and wake the worker back with each answer).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use realip_proxy::config::{Dur, OnStoreError, RateConfig, RateLimitStoreConfig, RateScope};
use realip_proxy::metrics::{Metrics, RateDecision, RateOutcome, RateScope as Scope, RateVia};
use realip_proxy::policy::Decision;
use realip_proxy::ratestore::{GlobalLimiter, Store};

mod common;
use common::{redis, Redis};

/// Connections Redis has, other than the one asking.
fn clients(r: &Redis) -> usize {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/0", r.port)).unwrap().get_connection().unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    list.lines().filter(|l| !l.contains("cmd=client")).count()
}

/// Two workers, as `realip proxy --workers 2` runs them: the store is
/// built on the control runtime, which then runs nothing more (busy with a
/// reload, a Kubernetes watch...). Every decision of both workers is still
/// answered by Redis (none by `on_error`), over one connection per worker.
#[test]
fn each_worker_decides_over_its_own_connection() {
    let Some(redis) = redis() else { return };
    realip_proxy::workers::set_count(2);
    let control = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let limiter = control.block_on(async {
        let store = Store::new(
            &RateLimitStoreConfig {
                redis: format!("redis://127.0.0.1:{}/0", redis.port),
                password_file: None,
                password_env: None,
                ca_file: None,
                on_error: OnStoreError::Deny,
                // Far above a round trip on loopback: a decision not
                // answered within it waited for a runtime that never ran.
                timeout: Some(Dur(Duration::from_secs(2))),
            },
            None,
        )
        .unwrap();
        let rate = RateConfig { per_second: 1e6, burst: Some(1e6), scope: RateScope::Global, ipv6_prefix: None };
        Arc::new(GlobalLimiter::new(store, "workers", rate, 64))
    });
    // Workers wait here, their runtimes (and connections) still up, while
    // Redis' connections are counted.
    let decided = Arc::new(std::sync::Barrier::new(3));
    let counted = Arc::new(std::sync::Barrier::new(3));
    let workers: Vec<_> = (0..2u8)
        .map(|i| {
            let (limiter, decided, counted) = (Arc::clone(&limiter), Arc::clone(&decided), Arc::clone(&counted));
            std::thread::spawn(move || {
                realip_proxy::workers::enter(usize::from(i));
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                // Failures are returned, not panicked: the barriers below
                // must be reached.
                let failed = rt.block_on(async {
                    let metrics = Metrics::default();
                    let client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, i));
                    for k in 0..20 {
                        let d = limiter.take(client, &metrics).await;
                        if d != Decision::Allow {
                            return Some(format!("worker {i}, decision {k}: {d:?}"));
                        }
                        tokio::task::yield_now().await;
                    }
                    let via = |v| metrics.rate_decisions.get(RateDecision(Scope::Global, RateOutcome::Allowed, v));
                    let (store, lease) = (via(RateVia::Store), via(RateVia::Lease));
                    (store + lease != 20).then(|| format!("worker {i}: {store} by the store, {lease} by leases"))
                });
                decided.wait();
                counted.wait();
                failed
            })
        })
        .collect();
    decided.wait();
    let n = clients(&redis);
    counted.wait();
    for w in workers {
        assert_eq!(w.join().unwrap(), None);
    }
    assert_eq!(n, 2, "one connection per worker");
    drop(limiter);
    drop(control);
}
