//! The scenarios: each builds a lab, sends a bounded load, measures every
//! hop and compares the measurements with what the setup should produce.
//! Verdicts come from measured numbers only.

use std::time::Duration;

use crate::error::Result;
use crate::harness::{Lab, LbKind, Options, PROBE_FAILURE_THRESHOLD, PROBE_PERIOD};
use crate::kubeproxy::Policy;
use crate::lb::HealthCheck;
use crate::load::Load;
use crate::pods::{IngressConfig, Kind};
use crate::report::{Measure, Part, ScenarioResult};
use crate::topo::{HEALTH_CHECK_NODE_PORT, KUBE_PROXY_HEALTHZ_PORT};

/// Every scenario, in the order `all` runs them, with what it sets up.
pub const SCENARIOS: [(&str, &str); 11] = [
    ("cluster", "3 nodes, ingress pods on node1+node2, externalTrafficPolicy: Cluster, passthrough LB"),
    ("local", "3 nodes, ingress pods on node1+node2, externalTrafficPolicy: Local, LB checks healthCheckNodePort"),
    (
        "local-no-healthcheck",
        "as `local`, but the LB ignores health checks (checks the wrong port): node3 has no ingress pod",
    ),
    ("local-uneven", "2 nodes, 2 ingress pods on node1 and 1 on node2, Local, LB balancing per node"),
    ("daemonset", "3 nodes, one ingress pod per node (DaemonSet), Local"),
    ("proxy-protocol", "3 nodes, Cluster, L4 proxying LB sending PROXY v2, ingress requires PROXY"),
    (
        "proxy-protocol-mismatch",
        "L4 LB and ingress disagree on PROXY: LB sends it, ingress off; then LB off, ingress requires it",
    ),
    (
        "spoof",
        "clients send X-Forwarded-For: 203.0.113.66; ingress trusting nobody, then trusting everyone (0.0.0.0/0)",
    ),
    (
        "rollout",
        "steady load; ingress pod on node1 replaced by one on node3: no drain, then /readyz drain + LB health checks + terminating endpoints",
    ),
    ("ipv6", "IPv6 client 2001:db8:c::10 → L4 LB (PROXY v2) → IPv4 cluster with Cluster policy"),
    (
        "kubernetes",
        "ingress pods run realip proxy --kubernetes against the lab's API server: routes and pod endpoints come from an Ingress and its EndpointSlice, which changes mid-run",
    ),
];

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

fn setup_of(name: &str) -> String {
    SCENARIOS.iter().find(|(n, _)| *n == name).map(|(_, s)| (*s).to_owned()).unwrap_or_default()
}

fn result(name: &str, ok: bool, reason: String, parts: Vec<Part>) -> ScenarioResult {
    ScenarioResult::from_parts(name, &setup_of(name), ok, reason, parts)
}

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

/// Runs one scenario. `run` names this run's namespaces.
pub async fn run(name: &str, opts: &Options, run: &str) -> Result<ScenarioResult> {
    let load = Load::default();
    match name {
        "cluster" => cluster(name, opts, run, load).await,
        "local" | "local-no-healthcheck" => local(name, opts, run, load).await,
        "local-uneven" | "daemonset" => spread(name, opts, run, load).await,
        "proxy-protocol" | "ipv6" => proxied(name, opts, run, load).await,
        "proxy-protocol-mismatch" => mismatch(name, opts, run, load).await,
        "spoof" => spoof(name, opts, run, load).await,
        "rollout" => rollout(name, opts, run, load).await,
        "kubernetes" => kubernetes(name, opts, run, load).await,
        other => Err(crate::error::Error::UnknownScenario(other.to_owned(), names().join(", "))),
    }
}

async fn cluster(name: &str, opts: &Options, run: &str, load: Load) -> Result<ScenarioResult> {
    let hc = health_check(opts, KUBE_PROXY_HEALTHZ_PORT, false);
    let (_lab, m) = passthrough(opts, run, 3, Policy::Cluster, &[0, 1], hc, &load).await?;
    let lost = m.preserved == 0 && Lab::is_cluster(m.ingress_client_ip.as_ref());
    let ok = lost && m.requests.failed == 0 && m.requests.ok > 0;
    let reason = format!(
        "client IP lost to SNAT: the ingress saw {} and the app resolved {} on {} of {} requests (real client on {})",
        m.ingress_peer.as_deref().unwrap_or("nothing"),
        m.app_client_ip.as_deref().unwrap_or("nothing"),
        m.requests.ok - m.preserved,
        m.requests.ok,
        m.preserved
    );
    Ok(result(name, ok, reason, single(m)))
}

async fn local(name: &str, opts: &Options, run: &str, load: Load) -> Result<ScenarioResult> {
    let ignore = name == "local-no-healthcheck";
    let hc = health_check(opts, HEALTH_CHECK_NODE_PORT, ignore);
    let (_lab, m) = passthrough(opts, run, 3, Policy::Local, &[0, 1], hc, &load).await?;
    let r = m.requests;
    let (ok, reason) = if ignore {
        let frac = r.failed as f64 / r.sent.max(1) as f64;
        (
            r.failed > 0 && (frac - 1.0 / 3.0).abs() < 0.12 && m.preserved == r.ok,
            format!(
                "{} of {} requests ({:.0}%) went to node3, which has no ingress pod, and were dropped; \
                 the {} that reached a pod kept the client IP",
                r.failed,
                r.sent,
                frac * 100.0,
                r.ok
            ),
        )
    } else {
        (
            r.failed == 0 && r.ok > 0 && m.preserved == r.ok && !m.spread_nodes.contains_key("node3"),
            format!(
                "client IP preserved end to end on {} of {} requests; {} failed; node3 (no endpoint) got no traffic",
                m.preserved, r.sent, r.failed
            ),
        )
    };
    Ok(result(name, ok, reason, single(m)))
}

async fn spread(name: &str, opts: &Options, run: &str, load: Load) -> Result<ScenarioResult> {
    let (nodes, pods): (usize, &[usize]) = if name == "daemonset" { (3, &[0, 1, 2]) } else { (2, &[0, 0, 1]) };
    let hc = health_check(opts, HEALTH_CHECK_NODE_PORT, false);
    let load = Load { requests: 450, ..load };
    let (_lab, m) = passthrough(opts, run, nodes, Policy::Local, pods, hc, &load).await?;
    // What the simulator's model predicts for this very placement.
    let (expected, _, _) = crate::sim::shares(&crate::sim::Params { nodes, ..crate::sim::Params::default() }, pods);
    let names = ["ingress-a", "ingress-b", "ingress-c"];
    let within = names.iter().zip(&expected).all(|(p, e)| (share(&m, p) - e).abs() < 0.10);
    let shares: Vec<String> = names
        .iter()
        .zip(&expected)
        .map(|(p, e)| format!("{p} {:.0}% (model {:.0}%)", share(&m, p) * 100.0, e * 100.0))
        .collect();
    let r = m.requests;
    let ok = within && r.failed == 0 && m.preserved == r.ok;
    Ok(result(name, ok, format!("per-pod share {}; {} failed", shares.join(", "), r.failed), single(m)))
}

async fn proxied(name: &str, opts: &Options, run: &str, load: Load) -> Result<ScenarioResult> {
    let (mut lab, _) = lab(opts, run, 3, Policy::Cluster, &[0, 1], &IngressConfig::proxy_protocol()).await?;
    lab.start_lb(LbKind::Proxy { proxy_protocol: true }).await?;
    let clients: &[&str] = if name == "ipv6" { &["c6"] } else { &V4_CLIENTS };
    let samples = lab.traffic(clients, &load).await;
    let m = lab.measure(&samples, false);
    let r = m.requests;
    let ok = r.failed == 0
        && r.ok > 0
        && m.preserved == r.ok
        && Lab::is_cluster(m.ingress_peer.as_ref())
        && m.ingress_source.as_deref() == Some("proxy-protocol");
    let reason = format!(
        "the ingress's TCP peer is {} (SNAT), yet PROXY v2 carried the client: app resolved the real client on {} of {} requests",
        m.ingress_peer.as_deref().unwrap_or("nothing"),
        m.preserved,
        r.sent
    );
    Ok(result(name, ok, reason, single(m)))
}

async fn mismatch(name: &str, opts: &Options, run: &str, load: Load) -> Result<ScenarioResult> {
    let mut parts = Vec::new();
    for (label, lb_pp, cfg) in [
        ("LB sends PROXY v2, ingress expects plain HTTP", true, IngressConfig::direct()),
        ("LB sends plain TCP, ingress requires PROXY", false, IngressConfig::proxy_protocol()),
    ] {
        let (mut lab, _) = lab(opts, run, 2, Policy::Cluster, &[0, 1], &cfg).await?;
        lab.start_lb(LbKind::Proxy { proxy_protocol: lb_pp }).await?;
        let samples = lab.traffic(&V4_CLIENTS, &Load { requests: 150, ..load.clone() }).await;
        parts.push(Part { label: label.into(), measure: lab.measure(&samples, false) });
    }
    let all_failed = parts.iter().all(|p| p.measure.requests.ok == 0 && p.measure.requests.sent > 0);
    let reason = format!(
        "one side only breaks every request: {} of {} failed with PROXY sent but not expected, {} of {} with PROXY required but not sent",
        parts[0].measure.requests.failed,
        parts[0].measure.requests.sent,
        parts[1].measure.requests.failed,
        parts[1].measure.requests.sent
    );
    Ok(result(name, all_failed, reason, parts))
}

async fn spoof(name: &str, opts: &Options, run: &str, load: Load) -> Result<ScenarioResult> {
    let forged = Load { headers: vec![format!("X-Forwarded-For: {FORGED}")], ..load.clone() };
    let mut parts = Vec::new();
    let everyone = IngressConfig { trusted: vec!["0.0.0.0/0".into(), "::/0".into()], ..IngressConfig::direct() };
    for (label, cfg) in
        [("ingress trusts nobody (correct)", IngressConfig::direct()), ("ingress trusts everyone", everyone)]
    {
        let (mut lab, _) = lab(opts, run, 2, Policy::Local, &[0, 1], &cfg).await?;
        lab.start_lb(LbKind::Passthrough(health_check(opts, HEALTH_CHECK_NODE_PORT, false))).await?;
        lab.wait_lb(&[true, true]).await?;
        let samples = lab.traffic(&V4_CLIENTS, &forged).await;
        parts.push(Part { label: label.into(), measure: lab.measure(&samples, false) });
    }
    let (good, bad) = (&parts[0].measure, &parts[1].measure);
    let ok = good.ingress_client_ip.as_deref() != Some(FORGED)
        && good.preserved == good.requests.ok
        && good.requests.ok > 0
        && bad.ingress_client_ip.as_deref() == Some(FORGED);
    let reason = format!(
        "forged X-Forwarded-For ignored with correct trust (ingress resolved {}), believed when trusting everyone (ingress resolved {})",
        good.ingress_client_ip.as_deref().unwrap_or("nothing"),
        bad.ingress_client_ip.as_deref().unwrap_or("nothing")
    );
    Ok(result(name, ok, reason, parts))
}

async fn rollout(name: &str, opts: &Options, run: &str, load: Load) -> Result<ScenarioResult> {
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
            ..load.clone()
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
        let m = lab.measure(&samples, true);
        parts.push(Part { label: label.into(), measure: m });
    }
    let (a, b) = (&parts[0].measure, &parts[1].measure);
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
    Ok(result(name, ok, reason, parts))
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

async fn kubernetes(name: &str, opts: &Options, run: &str, load: Load) -> Result<ScenarioResult> {
    use crate::error::Error;
    use crate::topo::API_SERVER;
    let mut lab = Lab::new(opts, run, 3, Policy::Local).await?;
    // The API server lives on the lb host (the "control plane"), reachable
    // from the pods through their nodes.
    tokio::task::block_in_place(|| lab.topo.lb.ip(&["addr", "add", &format!("{}/32", API_SERVER.ip()), "dev", "lo"]))?;
    let listener = lab
        .topo
        .lb_rt
        .spawn(async { std::net::TcpListener::bind(API_SERVER) })
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?
        .map_err(|e| Error::io(format!("binding {API_SERVER}"), e))?;
    let api = crate::fakeapi::FakeApi::start_on(listener).map_err(|e| Error::io("starting the API server", e))?;
    let kubeconfig = api.kubeconfig(lab.dir()).map_err(|e| Error::io("writing the kubeconfig", e))?;
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
    let (a, b) = (&parts[0].measure, &parts[1].measure);
    let ok = a.requests.failed == 0
        && b.requests.failed == 0
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
    Ok(result(name, ok, reason, parts))
}

/// Scenario names.
pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|(n, _)| *n).collect()
}
