//! Scenarios where access rules act on the resolved client, with the
//! configuration coming from where users write it:
//! - `gateway`: `realip proxy --kubernetes` in Gateway API mode, fed a
//!   GatewayClass, Gateway, HTTPRoute, ClientIPPolicy and ClientAccessPolicy
//!   by the lab's API server ([`crate::fakeapi`]), behind an L4 LB sending
//!   PROXY v2 through a SNATing `Cluster` hop;
//! - `global-rate-limit`: two ingress pods on different nodes sharing one
//!   rate limit through a real `redis-server` in a pod, against each
//!   keeping its own (`scope = "local"`).
//!
//! Invariants: the verdicts read measured counts only (statuses per client
//! as the clients received them, what the ingress and the app logged); a
//! missing peer (`redis-server`) skips the scenario with the reason (a
//! failure under `REALIP_REQUIRE_PEERS=1`), never passes it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::{Error, Result};
use crate::fakeapi::FakeApi;
use crate::harness::{Lab, LbKind, Options};
use crate::kubeproxy::Policy;
use crate::load::Load;
use crate::netns::Proc;
use crate::pods::{IngressConfig, Kind};
use crate::report::{Measure, Part};
use crate::topo::{API_SERVER, CLUSTER_CIDRS, HEALTH_CHECK_NODE_PORT, POD_PORT};

/// Starts the lab's API server on the lb host (the "control plane"),
/// reachable from the pods through their nodes; its kubeconfig.
pub(crate) async fn api_server(lab: &mut Lab) -> Result<(FakeApi, PathBuf)> {
    tokio::task::block_in_place(|| lab.topo.lb.ip(&["addr", "add", &format!("{}/32", API_SERVER.ip()), "dev", "lo"]))?;
    let listener = lab
        .topo
        .lb_rt
        .spawn(async { std::net::TcpListener::bind(API_SERVER) })
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?
        .map_err(|e| Error::io(format!("binding {API_SERVER}"), e))?;
    let api = FakeApi::start_on(listener).map_err(|e| Error::io("starting the API server", e))?;
    let kubeconfig = api.kubeconfig(lab.dir()).map_err(|e| Error::io("writing the kubeconfig", e))?;
    Ok((api, kubeconfig))
}

/// The app Service `web/app` and its EndpointSlice with every app pod ready.
pub(crate) fn app_service(api: &FakeApi, ips: &[Ipv4Addr]) {
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": POD_PORT}]}}));
    let endpoints: Vec<serde_json::Value> =
        ips.iter().map(|ip| json!({"addresses": [ip.to_string()], "conditions": {"ready": true}})).collect();
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-x1", "namespace": "web", "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": POD_PORT, "protocol": "TCP"}],
        "endpoints": endpoints}));
}

/// The client inside the `gateway` scenario's allow list.
pub const ALLOWED: &str = "203.0.113.10";
/// The client outside it.
pub const OUTSIDE: &str = "203.0.113.20";

/// The two measured configurations of `gateway`, in order.
pub const GATEWAY_PARTS: [&str; 2] = [
    "c1 203.0.113.10 (in the ClientAccessPolicy allow list), forged X-Forwarded-For",
    "c2 203.0.113.20 (outside the allow list), forged X-Forwarded-For",
];

/// The Gateway API objects of the `gateway` scenario: one Gateway
/// listener on port 80, an HTTPRoute to the app Service, the client-IP
/// chain as a ClientIPPolicy on the Gateway (PROXY v2 required from the
/// cluster's addresses, nothing else trusted, fail closed) and an allow
/// list with only c1 as a ClientAccessPolicy on the HTTPRoute.
fn gateway_objects(api: &FakeApi) {
    let senders: Vec<&str> = CLUSTER_CIDRS.to_vec();
    for o in [
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "realip"},
            "spec": {"controllerName": "realip.dev/gateway-controller"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "infra"},
            "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": "All"}}}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "app", "namespace": "web"},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "infra", "sectionName": "http"}],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"name": "app", "port": 80}]}]}}),
        json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientIPPolicy",
            "metadata": {"name": "edge", "namespace": "infra"},
            "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}],
                "proxyProtocol": {"mode": "Required", "trustedSenders": senders},
                "trustedProxies": [], "sources": ["ProxyProtocol", "XForwardedFor"],
                "strategy": "RightmostUntrusted", "failClosed": true,
                "forward": {"xForwardedFor": "Append", "xRealIP": true}}}),
        json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientAccessPolicy",
            "metadata": {"name": "only-c1", "namespace": "web"},
            "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "app"}],
                "allow": [format!("{ALLOWED}/32")]}}),
    ] {
        api.apply(o);
    }
}

/// Until every ingress pod serves the route, answers are 404 (or 503):
/// waits for `client` to get `want` 20 times in a row.
pub(crate) async fn wait_served(lab: &Lab, client: &str, want: u16, what: &str) -> Result<()> {
    let probe = Load { requests: 20, concurrency: 1, ..Load::default() };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = lab.traffic(&[client], &probe).await;
        if !s.is_empty() && s.iter().all(|s| s.status == Some(want)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let got: Vec<String> = s.iter().map(|s| s.error.clone().unwrap_or_else(|| "200".into())).take(3).collect();
            return Err(Error::Timeout(format!("{what} within 20 s (last answers: {got:?})")));
        }
    }
}

/// A fresh three-node lab (kube-proxy `Cluster`) with the fake API server
/// and two app pods behind the `web/app` Service: what the Kubernetes-fed
/// scenarios start from. Returns the lab, the API server and its kubeconfig.
pub(crate) async fn lab_with_apps(opts: &Options, run: &str) -> Result<(Lab, FakeApi, PathBuf)> {
    let mut lab = Lab::new(opts, run, 3, Policy::Cluster).await?;
    let (api, kubeconfig) = api_server(&mut lab).await?;
    let direct = IngressConfig::direct();
    lab.add_pod(Kind::App, "app-1", 0, &direct)?;
    lab.add_pod(Kind::App, "app-2", 1, &direct)?;
    lab.wait_ready(&["app-1", "app-2"]).await?;
    let ips: Vec<Ipv4Addr> = ["app-1", "app-2"].iter().filter_map(|p| lab.topo.pod(p).map(|p| p.ip)).collect();
    app_service(&api, &ips);
    Ok((lab, api, kubeconfig))
}

pub(crate) async fn gateway(opts: &Options, run: &str) -> Result<Vec<Part>> {
    let (mut lab, api, kubeconfig) = lab_with_apps(opts, run).await?;
    gateway_objects(&api);
    // The file's listener trusts nobody and expects no PROXY header: the
    // chain the pods apply is the ClientIPPolicy's, from the API server.
    let cfg = IngressConfig { kubeconfig: Some(kubeconfig), gateway_ports: vec![80], ..IngressConfig::direct() };
    lab.add_pod(Kind::Ingress, "ingress-a", 0, &cfg)?;
    lab.add_pod(Kind::Ingress, "ingress-b", 1, &cfg)?;
    lab.wait_ready(&["ingress-a", "ingress-b"]).await?;
    lab.start_lb(LbKind::Proxy { proxy_protocol: true }).await?;
    wait_served(&lab, "c1", 200, "the ingress pods did not serve the HTTPRoute to c1").await?;
    let forged = Load {
        requests: 150,
        headers: vec![format!("X-Forwarded-For: {}", crate::scenario::FORGED)],
        ..Load::default()
    };
    let mut parts = Vec::new();
    for (label, client) in GATEWAY_PARTS.iter().zip(["c1", "c2"]) {
        lab.reset_logs();
        let samples = lab.traffic(&[client], &forged).await;
        parts.push(Part { label: (*label).into(), measure: lab.measure(&samples, false) });
    }
    Ok(parts)
}

/// c1: every request reached the app, which resolved c1 itself (PROXY v2
/// through the SNATing hop, the forged header ignored); c2: every request
/// answered 403 by the ingress, which resolved c2 (not the forged address,
/// not the node that SNATed it).
pub(crate) fn gateway_verdict(parts: &[Part], _: &Options) -> (bool, String) {
    let (Some(a), Some(b)) = (parts.first().map(|p| &p.measure), parts.get(1).map(|p| &p.measure)) else {
        return (false, "gateway needs two configurations".into());
    };
    let forged = |m: &Measure| {
        m.clients.iter().any(|c| {
            c.ingress_client_ip.contains_key(crate::scenario::FORGED)
                || c.app_client_ip.contains_key(crate::scenario::FORGED)
        })
    };
    let resolved = |m: &Measure, ip: &str| {
        !m.clients.is_empty() && m.clients.iter().all(|c| c.ingress_client_ip.keys().eq([ip].iter()))
    };
    let forbidden = b.errors.get("HTTP 403").copied().unwrap_or(0);
    let ok = a.requests.ok > 0
        && a.requests.failed == 0
        && a.preserved == a.requests.ok
        && resolved(a, ALLOWED)
        && b.requests.sent > 0
        && forbidden == b.requests.sent
        && resolved(b, OUTSIDE)
        && !forged(a)
        && !forged(b)
        && a.ingress_source.as_deref() == Some("proxy-protocol");
    let reason = format!(
        "Gateway API objects from the API server: c1 in the allow list got {} of {} through, the app resolved c1 on {} \
         (ingress peer {}, source {}); c2 outside it got 403 on {} of {} (ingress resolved {}); the forged \
         X-Forwarded-For {} was {}",
        a.requests.ok,
        a.requests.sent,
        a.preserved,
        a.ingress_peer.as_deref().unwrap_or("nothing"),
        a.ingress_source.as_deref().unwrap_or("none"),
        forbidden,
        b.requests.sent,
        b.ingress_client_ip.as_deref().unwrap_or("nothing"),
        crate::scenario::FORGED,
        if forged(a) || forged(b) { "believed" } else { "ignored" }
    );
    (ok, reason)
}

/// The rate of `global-rate-limit`: per second and burst, for one client.
pub const RATE: (f64, f64) = (10.0, 10.0);
/// How long the client sends, and how fast (well over [`RATE`]).
const RATE_RUN: Duration = Duration::from_secs(6);

/// The two measured configurations of `global-rate-limit`, in order.
pub const RATE_PARTS: [&str; 2] =
    ["scope = \"local\": each ingress pod counts on its own", "scope = \"global\": both pods count in one Redis"];

/// `redis-server` on `ip`:6379 in its own pod namespace, no persistence.
fn start_redis(lab: &mut Lab, node: usize) -> Result<(Proc, Ipv4Addr)> {
    let have = std::process::Command::new("redis-server").arg("--version").output().is_ok_and(|o| o.status.success());
    if !have {
        return Err(Error::PeerMissing("redis-server is not installed (Debian package redis-server)".into()));
    }
    let idx = tokio::task::block_in_place(|| lab.topo.add_pod("redis", node))?;
    let net = &lab.topo.pods[idx];
    let dir = lab.dir().join("redis");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut cmd = net.ns.command(std::path::Path::new("redis-server"));
    cmd.args(["--bind", &net.ip.to_string(), "--port", "6379", "--save", "", "--appendonly", "no"])
        .args(["--protected-mode", "no", "--dir"])
        .arg(&dir);
    let proc = Proc::spawn("redis", cmd, &lab.dir().join("redis.log"))?;
    Ok((proc, net.ip))
}

/// Waits until Redis answers PING from node1 (as the ingress pods reach it).
async fn wait_redis(lab: &Lab, ip: Ipv4Addr) -> Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = SocketAddr::new(IpAddr::V4(ip), 6379);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pong = lab.topo.nodes[0]
            .rt
            .spawn(async move {
                let attempt = async {
                    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
                    s.write_all(b"PING\r\n").await.ok()?;
                    let mut buf = [0u8; 7];
                    s.read_exact(&mut buf).await.ok()?;
                    Some(&buf == b"+PONG\r\n")
                };
                tokio::time::timeout(Duration::from_millis(500), attempt).await.ok().flatten().unwrap_or(false)
            })
            .await
            .unwrap_or(false);
        if pong {
            return Ok(());
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(lab.dir().join("redis.log")).unwrap_or_default();
            return Err(Error::Timeout(format!("redis-server did not answer PING within 10 s: {log}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Allowed requests per second over `span`.
pub fn allowed_rate(m: &Measure, span: Duration) -> f64 {
    m.requests.ok as f64 / span.as_secs_f64().max(0.001)
}

pub(crate) async fn global_rate_limit(opts: &Options, run: &str) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for (label, scope) in RATE_PARTS.iter().zip(["local", "global"]) {
        let mut lab = Lab::new(opts, run, 3, Policy::Local).await?;
        let (_redis, redis_ip) = start_redis(&mut lab, 2)?;
        wait_redis(&lab, redis_ip).await?;
        let cfg = IngressConfig {
            rate: Some((RATE.0, RATE.1, scope)),
            redis: Some(format!("redis://{redis_ip}:6379/0")),
            ..IngressConfig::direct()
        };
        let direct = IngressConfig::direct();
        lab.add_pod(Kind::App, "app-1", 0, &direct)?;
        lab.add_pod(Kind::App, "app-2", 1, &direct)?;
        lab.add_pod(Kind::Ingress, "ingress-a", 0, &cfg)?;
        lab.add_pod(Kind::Ingress, "ingress-b", 1, &cfg)?;
        lab.wait_ready(&["app-1", "app-2", "ingress-a", "ingress-b"]).await?;
        lab.start_lb(LbKind::Passthrough(crate::scenario::health_check(opts, HEALTH_CHECK_NODE_PORT, false))).await?;
        lab.wait_lb(&[true, true, false]).await?;
        // Let the buckets the readiness probes did not touch fill: they
        // start full anyway; the wait only lets any earlier request age out.
        tokio::time::sleep(Duration::from_secs(1)).await;
        lab.reset_logs();
        // About 50 requests per second from one client, 5× the limit.
        let load = Load {
            requests: 600,
            duration: RATE_RUN,
            concurrency: 2,
            pause: Some(Duration::from_millis(40)),
            ..Load::default()
        };
        let samples = lab.traffic(&["c1"], &load).await;
        // With the timeline: allowed and refused per 100 ms, and the run's length.
        parts.push(Part { label: (*label).into(), measure: lab.measure(&samples, true) });
    }
    Ok(parts)
}

/// How long the client sent: the timeline's 100 ms slots.
fn run_span(m: &Measure) -> Duration {
    Duration::from_millis(100 * m.timeline.len() as u64)
}

/// Global: what got through is the configured rate (rate × time + burst,
/// within 25 %); local: each of the two pods let its own share through,
/// about twice that (1.5× to 2.5× the global count). Nothing failed other
/// than with 429.
pub(crate) fn rate_verdict(parts: &[Part], _: &Options) -> (bool, String) {
    let (Some(local), Some(global)) = (parts.first().map(|p| &p.measure), parts.get(1).map(|p| &p.measure)) else {
        return (false, "global-rate-limit needs two configurations".into());
    };
    let only_429 = |m: &Measure| m.errors.keys().all(|e| e == "HTTP 429") && m.errors.contains_key("HTTP 429");
    let expected = |m: &Measure| RATE.0 * run_span(m).as_secs_f64() + RATE.1;
    let g_ratio = global.requests.ok as f64 / expected(global).max(1.0);
    let l_over_g = local.requests.ok as f64 / (global.requests.ok.max(1)) as f64;
    let both_pods = |m: &Measure| m.spread.len() == 2;
    let ok = only_429(local)
        && only_429(global)
        && (0.75..=1.25).contains(&g_ratio)
        && (1.5..=2.5).contains(&l_over_g)
        && both_pods(local)
        && both_pods(global)
        && local.preserved == local.requests.ok
        && global.preserved == global.requests.ok;
    let row = |name: &str, m: &Measure| {
        format!(
            "{name}: {} of {} allowed ({:.1}/s), {:.0}% answered 429",
            m.requests.ok,
            m.requests.sent,
            allowed_rate(m, run_span(m)),
            100.0 * m.errors.get("HTTP 429").copied().unwrap_or(0) as f64 / m.requests.sent.max(1) as f64
        )
    };
    let reason = format!(
        "one client at ≈50 req/s, limit {}/s burst {} through 2 ingress pods: {} | {}; global let through {:.2}× the \
         configured amount, local {:.2}× what global did",
        RATE.0,
        RATE.1,
        row("local", local),
        row("global", global),
        g_ratio,
        l_over_g
    );
    (ok, reason)
}
