//! The scenarios, in one table ([`SCENARIOS`]): what each builds, how the
//! namespace lab runs it, how the loopback approximation runs it (when it
//! honestly can), and its one pass criterion, applied to whatever either
//! runner measured. Verdicts come from measured numbers only.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use crate::error::Result;
use crate::harness::{Lab, LbKind, Options, PROBE_FAILURE_THRESHOLD, PROBE_PERIOD};
use crate::kubeproxy::Policy;
use crate::lb::HealthCheck;
use crate::load::Load;
use crate::pods::{IngressConfig, Kind};
use crate::report::{ClientRow, Measure, Part};
use crate::topo::{HEALTH_CHECK_NODE_PORT, KUBE_PROXY_HEALTHZ_PORT};

/// A scenario's run: its measured configurations (one, or several side by side).
pub type Run<'a> = Pin<Box<dyn Future<Output = Result<Vec<Part>>> + 'a>>;

/// How the loopback approximation runs a scenario.
#[derive(Clone, Copy)]
pub struct Loopback {
    /// What it builds on loopback.
    pub setup: &'static str,
    /// Runs it with this `realip` binary, in this scratch directory.
    pub run: for<'a> fn(&'a Path, &'a Path) -> Run<'a>,
}

/// One scenario.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Its name (`--scenario NAME`).
    pub name: &'static str,
    /// What the namespace lab builds.
    pub setup: &'static str,
    /// Runs it in network namespaces; the `&str` names the run's namespaces.
    pub netns: for<'a> fn(&'a Options, &'a str) -> Run<'a>,
    /// Runs it without namespaces, if that reproduces it honestly.
    pub loopback: Option<Loopback>,
    /// The pass criterion and the verdict line, from the measured parts,
    /// whichever runner measured them.
    pub verdict: fn(&[Part], &Options) -> (bool, String),
}

impl std::fmt::Debug for Loopback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loopback").field("setup", &self.setup).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("setup", &self.setup)
            .field("loopback", &self.loopback.map(|l| l.setup))
            .finish_non_exhaustive()
    }
}

/// Every scenario, in the order `all` runs them.
pub const SCENARIOS: [Scenario; 14] = [
    Scenario {
        name: "cluster",
        setup: "3 nodes, ingress pods on node1+node2, externalTrafficPolicy: Cluster, passthrough LB",
        netns: |o, r| Box::pin(cluster(o, r)),
        loopback: None,
        verdict: cluster_verdict,
    },
    Scenario {
        name: "local",
        setup: "3 nodes, ingress pods on node1+node2, externalTrafficPolicy: Local, LB checks healthCheckNodePort",
        netns: |o, r| Box::pin(local(o, r, false)),
        loopback: None,
        verdict: local_verdict,
    },
    Scenario {
        name: "local-no-healthcheck",
        setup: "as `local`, but the LB ignores health checks (checks the wrong port): node3 has no ingress pod",
        netns: |o, r| Box::pin(local(o, r, true)),
        loopback: None,
        verdict: no_healthcheck_verdict,
    },
    Scenario {
        name: "local-uneven",
        setup: "2 nodes, 2 ingress pods on node1 and 1 on node2, Local, LB balancing per node",
        netns: |o, r| Box::pin(spread(o, r, UNEVEN)),
        loopback: None,
        verdict: |p, _| spread_verdict(p, UNEVEN),
    },
    Scenario {
        name: "daemonset",
        setup: "3 nodes, one ingress pod per node (DaemonSet), Local",
        netns: |o, r| Box::pin(spread(o, r, DAEMONSET)),
        loopback: None,
        verdict: |p, _| spread_verdict(p, DAEMONSET),
    },
    Scenario {
        name: "proxy-protocol",
        setup: "3 nodes, Cluster, L4 proxying LB sending PROXY v2, ingress requires PROXY",
        netns: |o, r| Box::pin(proxied(o, r, &V4_CLIENTS)),
        loopback: Some(Loopback {
            setup: "client 127.0.0.10 → L4 realip proxy (PROXY v2) → ingress (PROXY required) → echo",
            run: |b, d| Box::pin(crate::loopback::proxy_protocol(b, d)),
        }),
        verdict: proxied_verdict,
    },
    Scenario {
        name: "proxy-protocol-mismatch",
        setup: "L4 LB and ingress disagree on PROXY: LB sends it, ingress off; then LB off, ingress requires it",
        netns: |o, r| Box::pin(mismatch(o, r)),
        loopback: Some(Loopback {
            setup: "L4 realip proxy → ingress, PROXY on one side only",
            run: |b, d| Box::pin(crate::loopback::mismatch(b, d)),
        }),
        verdict: mismatch_verdict,
    },
    Scenario {
        name: "spoof",
        setup: "clients send X-Forwarded-For: 203.0.113.66; ingress trusting nobody, then trusting everyone (0.0.0.0/0)",
        netns: |o, r| Box::pin(spoof(o, r)),
        loopback: Some(Loopback {
            setup: "client 127.0.0.10 → ingress → echo, forged X-Forwarded-For; ingress trusting nobody, then everyone",
            run: |b, d| Box::pin(crate::loopback::spoof(b, d)),
        }),
        verdict: spoof_verdict,
    },
    Scenario {
        name: "rollout",
        setup: "steady load; ingress pod on node1 replaced by one on node3: no drain, then /readyz drain + LB health checks + terminating endpoints",
        netns: |o, r| Box::pin(rollout(o, r)),
        loopback: None,
        verdict: rollout_verdict,
    },
    Scenario {
        name: "ipv6",
        setup: "IPv6 client 2001:db8:c::10 → L4 LB (PROXY v2) → IPv4 cluster with Cluster policy",
        netns: |o, r| Box::pin(proxied(o, r, &["c6"])),
        loopback: None,
        verdict: proxied_verdict,
    },
    Scenario {
        name: "kubernetes",
        setup: "ingress pods run realip proxy --kubernetes against the lab's API server: routes and pod endpoints come from an Ingress and its EndpointSlice, which changes mid-run",
        netns: |o, r| Box::pin(kubernetes(o, r)),
        loopback: None,
        verdict: kubernetes_verdict,
    },
    Scenario {
        name: "gateway",
        setup: "L4 LB (PROXY v2) → nodes (Cluster, SNAT) → ingress pods in Gateway API mode: Gateway + HTTPRoute + ClientIPPolicy (PROXY required from the cluster, fail closed) + ClientAccessPolicy allowing c1 only, from the lab's API server; clients forge X-Forwarded-For",
        netns: |o, r| Box::pin(crate::access::gateway(o, r)),
        loopback: None,
        verdict: crate::access::gateway_verdict,
    },
    Scenario {
        name: "global-rate-limit",
        setup: "one client at ≈50 req/s through a passthrough LB (Local) to 2 ingress pods on node1 and node2, limit 10/s burst 10: scope local, then scope global shared in a redis-server pod on node3",
        netns: |o, r| Box::pin(crate::access::global_rate_limit(o, r)),
        loopback: None,
        verdict: crate::access::rate_verdict,
    },
    Scenario {
        name: "migrate",
        setup: "an ingress-nginx setup (use-proxy-protocol, proxy-real-ip-cidr, whitelist-source-range, limit-rps) served by ingress pods in Ingress mode, then by ingress pods in Gateway mode fed `realip migrate ingress-nginx`'s output for it; the same traffic through both: L4 LB (PROXY v2) → nodes (Cluster, SNAT), c1 in the allow list over the rate limit, c2 outside it, both forging X-Forwarded-For",
        netns: |o, r| Box::pin(crate::migrate::migrate(o, r)),
        loopback: None,
        verdict: crate::migrate::migrate_verdict,
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Scenario names, in table order.
pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// The two configurations of `proxy-protocol-mismatch`, in order.
pub const MISMATCH_PARTS: [&str; 2] =
    ["LB sends PROXY v2, ingress expects plain HTTP", "LB sends plain TCP, ingress requires PROXY"];

/// The two configurations of `spoof`, in order.
pub const SPOOF_PARTS: [&str; 2] = ["ingress trusts nobody (correct)", "ingress trusts everyone"];

/// Placement of `local-uneven`: nodes, and each ingress pod's node.
const UNEVEN: (usize, &[usize]) = (2, &[0, 0, 1]);
/// Placement of `daemonset`.
const DAEMONSET: (usize, &[usize]) = (3, &[0, 1, 2]);

/// The passthrough LB's checks, as configured.
pub fn health_check(opts: &Options, port: u16, ignore: bool) -> HealthCheck {
    HealthCheck {
        port,
        interval: opts.lb_interval,
        healthy_threshold: opts.lb_healthy_threshold,
        unhealthy_threshold: opts.lb_unhealthy_threshold,
        ignore,
    }
}

/// A drain delay that covers the LB noticing (interval × unhealthy
/// threshold, plus one interval of phase) with half a second to spare, at
/// least 2 s.
fn drain_for(opts: &Options) -> Duration {
    (opts.lb_interval * (opts.lb_unhealthy_threshold + 1) + Duration::from_millis(500)).max(Duration::from_secs(2))
}

/// The forged header of the `spoof` scenario.
pub const FORGED: &str = "203.0.113.66";

const V4_CLIENTS: [&str; 2] = ["c1", "c2"];

fn single(m: Measure) -> Vec<Part> {
    vec![Part { label: String::new(), measure: m }]
}

fn share(m: &Measure, pod: &str) -> f64 {
    let total: u64 = m.spread.values().sum();
    if total == 0 {
        return 0.0;
    }
    m.spread.get(pod).copied().unwrap_or(0) as f64 / total as f64
}

/// Builds a lab with ingress pods on `ingress` nodes and app pods on
/// nodes 0 and 1, waits until everything is ready.
async fn lab(
    opts: &Options,
    run: &str,
    nodes: usize,
    policy: Policy,
    ingress: &[usize],
    cfg: &IngressConfig,
) -> Result<(Lab, Vec<String>)> {
    let mut lab = Lab::new(opts, run, nodes, policy).await?;
    let mut names = Vec::new();
    for (i, node) in [0usize, 1].iter().enumerate() {
        let name = format!("app-{}", i + 1);
        lab.add_pod(Kind::App, &name, (*node).min(nodes - 1), cfg)?;
        names.push(name);
    }
    let mut ingress_names = Vec::new();
    for (i, node) in ingress.iter().enumerate() {
        let name = format!("ingress-{}", (b'a' + i as u8) as char);
        lab.add_pod(Kind::Ingress, &name, *node, cfg)?;
        ingress_names.push(name.clone());
        names.push(name);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    lab.wait_ready(&refs).await?;
    Ok((lab, ingress_names))
}

/// Which nodes have an ingress pod.
fn with_pods(nodes: usize, ingress: &[usize]) -> Vec<bool> {
    (0..nodes).map(|n| ingress.contains(&n)).collect()
}

async fn passthrough(
    opts: &Options,
    run: &str,
    nodes: usize,
    policy: Policy,
    ingress: &[usize],
    hc: HealthCheck,
    load: &Load,
) -> Result<(Lab, Measure)> {
    let (mut lab, _) = lab(opts, run, nodes, policy, ingress, &IngressConfig::direct()).await?;
    lab.start_lb(LbKind::Passthrough(hc)).await?;
    let expect = if hc.port == KUBE_PROXY_HEALTHZ_PORT { vec![true; nodes] } else { with_pods(nodes, ingress) };
    lab.wait_lb(&expect).await?;
    let samples = lab.traffic(&V4_CLIENTS, load).await;
    let m = lab.measure(&samples, false);
    hold().await;
    Ok((lab, m))
}

/// `REALIP_LAB_HOLD=SECS` keeps a scenario's namespaces up that long after
/// its traffic, to look around with `ip netns exec` (a debugging aid).
async fn hold() {
    if let Some(secs) = std::env::var("REALIP_LAB_HOLD").ok().and_then(|s| s.parse::<u64>().ok()) {
        eprintln!("REALIP_LAB_HOLD: keeping the lab up for {secs} s");
        tokio::time::sleep(Duration::from_secs(secs.min(3600))).await;
    }
}

/// The union of what one hop saw over every client, as text.
fn seen(m: &Measure, hop: fn(&ClientRow) -> &BTreeMap<String, u64>) -> String {
    let all: std::collections::BTreeSet<&String> = m.clients.iter().flat_map(|c| hop(c).keys()).collect();
    if all.is_empty() {
        return "nothing".into();
    }
    all.into_iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// True when no client's own address reached the ingress as its TCP peer
/// (something in between, the LB or a node, opened the connection).
fn peer_is_not_the_client(m: &Measure) -> bool {
    !m.clients.is_empty() && m.clients.iter().all(|c| !c.ingress_peer.is_empty() && !c.ingress_peer.contains_key(&c.ip))
}

fn first(parts: &[Part]) -> &Measure {
    static EMPTY: std::sync::OnceLock<Measure> = std::sync::OnceLock::new();
    parts.first().map_or_else(|| EMPTY.get_or_init(Measure::default), |p| &p.measure)
}

async fn cluster(opts: &Options, run: &str) -> Result<Vec<Part>> {
    let hc = health_check(opts, KUBE_PROXY_HEALTHZ_PORT, false);
    let (_lab, m) = passthrough(opts, run, 3, Policy::Cluster, &[0, 1], hc, &Load::default()).await?;
    Ok(single(m))
}

fn cluster_verdict(parts: &[Part], _: &Options) -> (bool, String) {
    let m = first(parts);
    let snat =
        m.clients.iter().all(|c| !c.ingress_peer.is_empty() && c.ingress_peer.keys().all(|p| Lab::is_cluster(Some(p))));
    let ok = !m.clients.is_empty() && snat && m.preserved == 0 && m.requests.failed == 0 && m.requests.ok > 0;
    let reason = format!(
        "client IP lost to SNAT: the ingress saw {} and the app resolved {} on {} of {} requests (real client on {})",
        seen(m, |c| &c.ingress_peer),
        seen(m, |c| &c.app_client_ip),
        m.requests.ok - m.preserved,
        m.requests.ok,
        m.preserved
    );
    (ok, reason)
}

async fn local(opts: &Options, run: &str, ignore: bool) -> Result<Vec<Part>> {
    let hc = health_check(opts, HEALTH_CHECK_NODE_PORT, ignore);
    let (_lab, m) = passthrough(opts, run, 3, Policy::Local, &[0, 1], hc, &Load::default()).await?;
    Ok(single(m))
}

fn local_verdict(parts: &[Part], _: &Options) -> (bool, String) {
    let m = first(parts);
    let r = m.requests;
    (
        r.failed == 0 && r.ok > 0 && m.preserved == r.ok && !m.spread_nodes.contains_key("node3"),
        format!(
            "client IP preserved end to end on {} of {} requests; {} failed; node3 (no endpoint) got {} requests",
            m.preserved,
            r.sent,
            r.failed,
            m.spread_nodes.get("node3").copied().unwrap_or(0)
        ),
    )
}

fn no_healthcheck_verdict(parts: &[Part], _: &Options) -> (bool, String) {
    let m = first(parts);
    let r = m.requests;
    let frac = r.failed as f64 / r.sent.max(1) as f64;
    (
        r.failed > 0 && (frac - 1.0 / 3.0).abs() < 0.12 && m.preserved == r.ok,
        format!(
            "{} of {} requests ({:.0}%) went to node3, which has no ingress pod, and were dropped; \
             {} of the {} that reached a pod kept the client IP",
            r.failed,
            r.sent,
            frac * 100.0,
            m.preserved,
            r.ok
        ),
    )
}

async fn spread(opts: &Options, run: &str, (nodes, pods): (usize, &[usize])) -> Result<Vec<Part>> {
    let hc = health_check(opts, HEALTH_CHECK_NODE_PORT, false);
    let load = Load { requests: 450, ..Load::default() };
    let (_lab, m) = passthrough(opts, run, nodes, Policy::Local, pods, hc, &load).await?;
    Ok(single(m))
}

fn spread_verdict(parts: &[Part], (nodes, pods): (usize, &[usize])) -> (bool, String) {
    let m = first(parts);
    // What the simulator's model predicts for this very placement.
    let (expected, _, _) = crate::sim::shares(&crate::sim::Params { nodes, ..crate::sim::Params::default() }, pods);
    let names = ["ingress-a", "ingress-b", "ingress-c"];
    let within = names.iter().zip(&expected).all(|(p, e)| (share(m, p) - e).abs() < 0.10);
    let shares: Vec<String> = names
        .iter()
        .zip(&expected)
        .map(|(p, e)| format!("{p} {:.0}% (model {:.0}%)", share(m, p) * 100.0, e * 100.0))
        .collect();
    let r = m.requests;
    let ok = within && r.ok > 0 && r.failed == 0 && m.preserved == r.ok;
    (ok, format!("per-pod share {}; {} failed", shares.join(", "), r.failed))
}

async fn proxied(opts: &Options, run: &str, clients: &[&str]) -> Result<Vec<Part>> {
    let (mut lab, _) = lab(opts, run, 3, Policy::Cluster, &[0, 1], &IngressConfig::proxy_protocol()).await?;
    lab.start_lb(LbKind::Proxy { proxy_protocol: true }).await?;
    let samples = lab.traffic(clients, &Load::default()).await;
    Ok(single(lab.measure(&samples, false)))
}

fn proxied_verdict(parts: &[Part], _: &Options) -> (bool, String) {
    let m = first(parts);
    let r = m.requests;
    let ok = r.failed == 0
        && r.ok > 0
        && m.preserved == r.ok
        && peer_is_not_the_client(m)
        && m.ingress_source.as_deref() == Some("proxy-protocol");
    let reason = format!(
        "the ingress's TCP peer is {} (not the client), yet PROXY v2 carried the client: the app resolved the real client on {} of {} requests",
        seen(m, |c| &c.ingress_peer),
        m.preserved,
        r.sent
    );
    (ok, reason)
}

async fn mismatch(opts: &Options, run: &str) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for (label, lb_pp, cfg) in [
        (MISMATCH_PARTS[0], true, IngressConfig::direct()),
        (MISMATCH_PARTS[1], false, IngressConfig::proxy_protocol()),
    ] {
        let (mut lab, _) = lab(opts, run, 2, Policy::Cluster, &[0, 1], &cfg).await?;
        lab.start_lb(LbKind::Proxy { proxy_protocol: lb_pp }).await?;
        let samples = lab.traffic(&V4_CLIENTS, &Load { requests: 150, ..Load::default() }).await;
        parts.push(Part { label: label.into(), measure: lab.measure(&samples, false) });
    }
    Ok(parts)
}

fn mismatch_verdict(parts: &[Part], _: &Options) -> (bool, String) {
    let all_failed =
        parts.len() == 2 && parts.iter().all(|p| p.measure.requests.ok == 0 && p.measure.requests.sent > 0);
    let r = |i: usize| parts.get(i).map(|p| p.measure.requests).unwrap_or_default();
    let reason = format!(
        "one side only breaks every request: {} of {} failed with PROXY sent but not expected, {} of {} with PROXY required but not sent",
        r(0).failed,
        r(0).sent,
        r(1).failed,
        r(1).sent
    );
    (all_failed, reason)
}

async fn spoof(opts: &Options, run: &str) -> Result<Vec<Part>> {
    let forged = Load { headers: vec![format!("X-Forwarded-For: {FORGED}")], ..Load::default() };
    let mut parts = Vec::new();
    let everyone = IngressConfig { trusted: vec!["0.0.0.0/0".into(), "::/0".into()], ..IngressConfig::direct() };
    for (label, cfg) in [(SPOOF_PARTS[0], IngressConfig::direct()), (SPOOF_PARTS[1], everyone)] {
        let (mut lab, _) = lab(opts, run, 2, Policy::Local, &[0, 1], &cfg).await?;
        lab.start_lb(LbKind::Passthrough(health_check(opts, HEALTH_CHECK_NODE_PORT, false))).await?;
        lab.wait_lb(&[true, true]).await?;
        let samples = lab.traffic(&V4_CLIENTS, &forged).await;
        parts.push(Part { label: label.into(), measure: lab.measure(&samples, false) });
    }
    Ok(parts)
}

/// Correct trust: no request resolved to the forged address anywhere and
/// the app saw the real client on every 200. Trusting everyone: the ingress
/// resolved the forged address on every request it logged.
fn spoof_verdict(parts: &[Part], _: &Options) -> (bool, String) {
    let (Some(good), Some(bad)) = (parts.first().map(|p| &p.measure), parts.get(1).map(|p| &p.measure)) else {
        return (false, "spoof needs two configurations".into());
    };
    let forged_in = |m: &BTreeMap<String, u64>| m.contains_key(FORGED);
    let ignored = good.requests.ok > 0
        && good.preserved == good.requests.ok
        && !good.clients.is_empty()
        && good.clients.iter().all(|c| !forged_in(&c.ingress_client_ip) && !forged_in(&c.app_client_ip));
    let believed = bad.requests.ok > 0
        && !bad.clients.is_empty()
        && bad.clients.iter().all(|c| c.ingress_client_ip.keys().eq([FORGED].iter()));
    let reason = format!(
        "forged X-Forwarded-For ignored with correct trust (ingress resolved {}; real client at the app on {} of {}), \
         believed when trusting everyone (ingress resolved {})",
        seen(good, |c| &c.ingress_client_ip),
        good.preserved,
        good.requests.ok,
        seen(bad, |c| &c.ingress_client_ip)
    );
    (ignored && believed, reason)
}

async fn rollout(opts: &Options, run: &str) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for (label, drain) in [("no drain (exit on SIGTERM)", false), ("readiness drain", true)] {
        let cfg = if drain {
            // drain_delay must cover the LB noticing (interval × unhealthy threshold).
            IngressConfig {
                drain_delay: drain_for(opts),
                drain_timeout: Duration::from_secs(3),
                ..IngressConfig::direct()
            }
        } else {
            IngressConfig { drain_delay: Duration::ZERO, drain_timeout: Duration::ZERO, ..IngressConfig::direct() }
        };
        let (mut lab, _) = lab(opts, run, 3, Policy::Local, &[0, 1], &cfg).await?;
        lab.start_lb(LbKind::Passthrough(health_check(opts, HEALTH_CHECK_NODE_PORT, false))).await?;
        lab.wait_lb(&[true, true, false]).await?;
        let steady = Load {
            requests: 5000,
            duration: Duration::from_millis(4500),
            concurrency: 3,
            pause: Some(Duration::from_millis(15)),
            ..Load::default()
        };
        let traffic = tokio::spawn(crate::load::run(lab.clients(&V4_CLIENTS), steady));
        // maxSurge 1, maxUnavailable 0: the new pod (on node3) first;
        // the old one (on node1) is deleted once the new one is ready.
        tokio::time::sleep(Duration::from_millis(600)).await;
        lab.add_pod(Kind::Ingress, "ingress-c", 2, &cfg)?;
        lab.wait_ready(&["ingress-c"]).await?;
        lab.wait_lb(&[true, true, true]).await?;
        lab.terminate("ingress-a");
        let samples = traffic.await.unwrap_or_default();
        parts.push(Part { label: label.into(), measure: lab.measure(&samples, true) });
    }
    Ok(parts)
}

fn rollout_verdict(parts: &[Part], opts: &Options) -> (bool, String) {
    let (Some(a), Some(b)) = (parts.first().map(|p| &p.measure), parts.get(1).map(|p| &p.measure)) else {
        return (false, "rollout needs two configurations".into());
    };
    let ok = b.requests.failed == 0 && b.requests.ok > 0;
    // The model's loss for this replacement, at the rate the clients achieved.
    let model = crate::sim::simulate(&crate::sim::Params {
        nodes: 3,
        replicas: 2,
        health_interval: opts.lb_interval.as_secs_f64(),
        unhealthy_threshold: opts.lb_unhealthy_threshold,
        ..crate::sim::Params::default()
    })
    .map_or(0.0, |o| o.rollout_lost_per_pod.first().copied().unwrap_or(0.0));
    let rate = a.requests.sent as f64 / (a.timeline.len().max(1) as f64 / 10.0);
    let reason = format!(
        "{} of {} requests failed without drain (model: ≈{:.0}), {} of {} with readiness drain (kubelet probe {} ms × {}, LB checks {} ms × {})",
        a.requests.failed,
        a.requests.sent,
        model * rate,
        b.requests.failed,
        b.requests.sent,
        PROBE_PERIOD.as_millis(),
        PROBE_FAILURE_THRESHOLD,
        opts.lb_interval.as_millis(),
        opts.lb_unhealthy_threshold
    );
    (ok, reason)
}

/// The app Service's EndpointSlice: `(pod IP, ready)` per app pod.
fn app_slice(eps: &[(std::net::Ipv4Addr, bool)]) -> serde_json::Value {
    let endpoints: Vec<serde_json::Value> = eps
        .iter()
        .map(|(ip, ready)| {
            serde_json::json!({"addresses": [ip.to_string()],
                "conditions": {"ready": ready, "serving": ready, "terminating": !ready}})
        })
        .collect();
    serde_json::json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-x1", "namespace": "web", "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": crate::topo::POD_PORT, "protocol": "TCP"}],
        "endpoints": endpoints})
}

async fn kubernetes(opts: &Options, run: &str) -> Result<Vec<Part>> {
    use crate::error::Error;
    let load = Load::default();
    let mut lab = Lab::new(opts, run, 3, Policy::Local).await?;
    let (api, kubeconfig) = crate::access::api_server(&mut lab).await?;
    let direct = IngressConfig::direct();
    lab.add_pod(Kind::App, "app-1", 0, &direct)?;
    lab.add_pod(Kind::App, "app-2", 1, &direct)?;
    lab.wait_ready(&["app-1", "app-2"]).await?;
    let ips: Vec<std::net::Ipv4Addr> =
        ["app-1", "app-2"].iter().filter_map(|p| lab.topo.pod(p).map(|p| p.ip)).collect();
    api.apply(
        serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": crate::topo::POD_PORT}]}}),
    );
    api.apply(app_slice(&[(ips[0], true), (ips[1], true)]));
    api.apply(serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "app", "namespace": "web"},
        "spec": {"ingressClassName": "realip", "rules": [{"http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}));
    let k8s = IngressConfig { kubeconfig: Some(kubeconfig), ..IngressConfig::direct() };
    lab.add_pod(Kind::Ingress, "ingress-a", 0, &k8s)?;
    lab.add_pod(Kind::Ingress, "ingress-b", 1, &k8s)?;
    lab.wait_ready(&["ingress-a", "ingress-b"]).await?;
    lab.start_lb(LbKind::Passthrough(health_check(opts, HEALTH_CHECK_NODE_PORT, false))).await?;
    lab.wait_lb(&[true, true, false]).await?;
    // Until both ingress pods have synced the Ingress, answers are 404.
    let probe = Load { requests: 20, concurrency: 1, ..load.clone() };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !lab.traffic(&["c1"], &probe).await.iter().all(crate::load::Sample::ok) {
        if std::time::Instant::now() > deadline {
            return Err(Error::Timeout("the ingress pods did not serve the Ingress within 15 s".into()));
        }
    }
    lab.reset_logs();
    let before = lab.traffic(&V4_CLIENTS, &Load { requests: 150, ..load.clone() }).await;
    let mut parts = vec![Part {
        label: "Ingress → app Service, both app pods ready".into(),
        measure: lab.measure(&before, false),
    }];
    // app-1 starts terminating: its endpoint turns not ready in the slice.
    api.apply(app_slice(&[(ips[0], false), (ips[1], true)]));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let s = lab.traffic(&["c1"], &probe).await;
        if s.iter().all(|s| s.ok() && s.body.as_ref().is_some_and(|b| b["pod"] == "app-2")) {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Timeout("the EndpointSlice change did not reach the ingress pods within 15 s".into()));
        }
    }
    lab.reset_logs();
    let after = lab.traffic(&V4_CLIENTS, &Load { requests: 150, ..load }).await;
    parts.push(Part {
        label: "after the EndpointSlice marks app-1 terminating".into(),
        measure: lab.measure(&after, false),
    });
    Ok(parts)
}

fn kubernetes_verdict(parts: &[Part], _: &Options) -> (bool, String) {
    let (Some(a), Some(b)) = (parts.first().map(|p| &p.measure), parts.get(1).map(|p| &p.measure)) else {
        return (false, "kubernetes needs two configurations".into());
    };
    let ok = a.requests.failed == 0
        && b.requests.failed == 0
        && a.requests.ok > 0
        && b.requests.ok > 0
        && a.preserved == a.requests.ok
        && b.preserved == b.requests.ok
        && a.spread_app.len() == 2
        && b.spread_app.keys().all(|p| p == "app-2");
    let reason = format!(
        "routes from the Ingress, pod endpoints from the EndpointSlice: app pods {:?}, then {:?} after the change; {} + {} failed; client IP at the app on {} of {}",
        a.spread_app,
        b.spread_app,
        a.requests.failed,
        b.requests.failed,
        a.preserved + b.preserved,
        a.requests.sent + b.requests.sent
    );
    (ok, reason)
}
