//! Allow/deny lists and per-client rate limits, keyed by the resolved
//! client IP (never the TCP peer, unless the peer is the client).
//!
//! The rate limiter is a token bucket per client. IPv6 clients are keyed
//! by a prefix (default /64) so one host cannot rotate through its
//! addresses to dodge the limit. State lives in 16 mutex-guarded shards;
//! a shard that grows past [`MAX_KEYS_PER_SHARD`] drops its full buckets.
//! A `scope = "global"` limit is decided by the shared store instead
//! ([`crate::ratestore`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use realip_core::TrustedProxies;

use crate::config::RateConfig;
use crate::metrics::{Metrics, RateDecision, RateOutcome, RateScope, RateVia};
use crate::ratestore::GlobalLimiter;

/// Buckets kept per shard before idle (full) ones are dropped.
pub const MAX_KEYS_PER_SHARD: usize = 65_536;
const SHARDS: usize = 16;

/// What policy says about one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Go on.
    Allow,
    /// 403: denied or not allowed.
    Deny,
    /// 429: over the rate; retry after this many seconds.
    Limited(u64),
}

/// Allow/deny lists and an optional rate limit.
#[derive(Debug)]
pub struct Policy {
    /// When set, only these clients pass.
    pub allow: Option<TrustedProxies>,
    /// These clients never pass.
    pub deny: TrustedProxies,
    /// Per-client rate limit (shared by routes that inherit it).
    pub rate: Option<Limit>,
}

/// A rate limit of either scope.
#[derive(Clone, Debug)]
pub enum Limit {
    /// Token buckets in this process.
    Local(std::sync::Arc<RateLimiter>),
    /// One limit across replicas, in the rate-limit store.
    Global(std::sync::Arc<GlobalLimiter>),
}

impl Policy {
    /// Decides for `client`, at `now` (global limits may wait for the
    /// store, at most its `timeout`).
    pub async fn check(&self, client: IpAddr, now: Instant, metrics: &Metrics) -> Decision {
        if self.deny.contains(client) || self.allow.as_ref().is_some_and(|a| !a.contains(client)) {
            return Decision::Deny;
        }
        match &self.rate {
            Some(Limit::Local(r)) => {
                let d = r.take(client, now);
                let outcome = if d == Decision::Allow { RateOutcome::Allowed } else { RateOutcome::Limited };
                metrics.rate_decisions.inc(RateDecision(RateScope::Local, outcome, RateVia::Local));
                d
            }
            Some(Limit::Global(g)) => g.take(client, metrics).await,
            None => Decision::Allow,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by client (IPv6 by prefix).
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    ipv6_prefix: u8,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
}

impl RateLimiter {
    /// A limiter refilling `per_second`, holding `burst` (default `per_second`).
    pub fn new(rate: RateConfig, ipv6_prefix: u8) -> RateLimiter {
        RateLimiter {
            per_second: rate.per_second,
            burst: rate.burst.unwrap_or(rate.per_second).max(1.0),
            ipv6_prefix,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// The bucket key of a client.
    pub fn key(&self, ip: IpAddr) -> IpAddr {
        match realip_core::unmap(ip) {
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.ipv6_prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            v4 @ IpAddr::V4(_) => v4,
        }
    }

    /// Takes one token for `client`.
    pub fn take(&self, client: IpAddr, now: Instant) -> Decision {
        let key = self.key(client);
        let shard = (self.hasher.hash_one(key) as usize) % SHARDS;
        let Some(shard) = self.shards.get(shard) else { return Decision::Allow };
        let mut map = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_KEYS_PER_SHARD && !map.contains_key(&key) {
            let (rate, burst) = (self.per_second, self.burst);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = map.entry(key).or_insert(Bucket { tokens: self.burst, at: now });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.per_second;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Decision::Allow
        } else {
            let wait = (1.0 - b.tokens) / self.per_second;
            Decision::Limited(std::time::Duration::try_from_secs_f64(wait.ceil()).map_or(1, |d| d.as_secs().max(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateScope;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_refill() {
        let r = RateLimiter::new(
            RateConfig { per_second: 2.0, burst: Some(3.0), scope: RateScope::Local, ipv6_prefix: None },
            64,
        );
        let t0 = Instant::now();
        let c = ip("203.0.113.7");
        assert_eq!((0..3).map(|_| r.take(c, t0)).filter(|d| *d == Decision::Allow).count(), 3);
        assert_eq!(r.take(c, t0), Decision::Limited(1));
        assert_eq!(r.take(ip("203.0.113.8"), t0), Decision::Allow, "other clients have their own bucket");
        assert_eq!(r.take(c, t0 + Duration::from_millis(500)), Decision::Allow);
        assert!(matches!(r.take(c, t0 + Duration::from_millis(500)), Decision::Limited(_)));
    }

    #[test]
    fn ipv6_hosts_share_their_prefix() {
        let r = RateLimiter::new(
            RateConfig { per_second: 1.0, burst: Some(1.0), scope: RateScope::Local, ipv6_prefix: None },
            64,
        );
        let t0 = Instant::now();
        assert_eq!(r.take(ip("2001:db8:1:2::1"), t0), Decision::Allow);
        assert!(matches!(r.take(ip("2001:db8:1:2:ffff::9"), t0), Decision::Limited(_)));
        assert_eq!(r.take(ip("2001:db8:1:3::1"), t0), Decision::Allow);
        assert_eq!(r.key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[tokio::test]
    async fn deny_then_allow_lists() {
        let p = Policy {
            allow: Some(TrustedProxies::parse(["198.51.100.0/24"]).unwrap()),
            deny: TrustedProxies::parse(["198.51.100.66"]).unwrap(),
            rate: None,
        };
        let (now, m) = (Instant::now(), Metrics::default());
        assert_eq!(p.check(ip("198.51.100.1"), now, &m).await, Decision::Allow);
        assert_eq!(p.check(ip("198.51.100.66"), now, &m).await, Decision::Deny);
        assert_eq!(p.check(ip("203.0.113.1"), now, &m).await, Decision::Deny);
    }
}
