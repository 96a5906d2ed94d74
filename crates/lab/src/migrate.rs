//! The `migrate` scenario: the round trip of `realip migrate ingress-nginx`.
//!
//! One ingress-nginx setup ([`nginx_setup`]: the controller Deployment, its
//! ConfigMap with `use-proxy-protocol` and `proxy-real-ip-cidr`, its NLB
//! Service with PROXY on, an Ingress with `whitelist-source-range` and
//! `limit-rps`) is run twice under the same traffic — c1 inside the allow
//! list sending far over the rate limit, c2 outside it, both forging
//! `X-Forwarded-For`, through an L4 load balancer sending PROXY v2 and a
//! SNATing `Cluster` hop:
//! 1. *before*: ingress pods in Ingress mode (`--ingress-class nginx`)
//!    serve the Ingress as ingress-nginx would, its annotations from the
//!    lab's API server; the ConfigMap keys become the pods' listener as
//!    ingress-nginx's `nginx.tmpl` makes them ([`nginx_listener`], written
//!    here from ingress-nginx's documented behaviour, independently of
//!    `crates/migrate`);
//! 2. *after*: ingress pods in Gateway API mode fed nothing but what the
//!    migrate library makes of that same setup (Gateway, HTTPRoute,
//!    ClientIPPolicy, ClientAccessPolicy), plus the GatewayClass the chart
//!    installs.
//!
//! A third source, [`DIRECT`] (an address on c2's link), bypasses the load
//! balancer: it connects to each ingress pod itself and sends a PROXY
//! header and an `X-Forwarded-For` of its own, both claiming c1's allowed
//! address. ingress-nginx believes neither from it (it is not in
//! `proxy-real-ip-cidr`), so on both sides it must be refused as itself;
//! a migration that widened the trust (e.g. `0.0.0.0/0`) would let it in
//! as c1, and the scenario fails.
//!
//! The verdict ([`migrate_verdict`]) compares, per client, the client IP
//! the ingress resolved and the app saw, and the answers by status, and
//! fails on any difference beyond [`TOLERANCE`] (token-bucket timing, on
//! the rate-limited client's 200s only).
//!
//! Invariants: the after side's routes and policies come only from the
//! migration's output (the Ingress is not in its API server); a setup the
//! migration cannot fully convert is an error naming the report, never a
//! pass; the verdict reads measured counts only.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use serde_json::{json, Value};

use crate::access::{lab_with_apps, wait_served, ALLOWED, OUTSIDE};
use crate::error::{Error, Result};
use crate::harness::{LbKind, Options};
use crate::load::Load;
use crate::pods::{IngressConfig, Kind};
use crate::report::{ClientRow, Part};
use crate::topo::CLUSTER_CIDRS;

/// A host on c2's link that reaches the ingress pods without the load
/// balancer and forges its address (PROXY header and X-Forwarded-For).
pub const DIRECT: &str = "203.0.113.21";
/// Forged requests [`DIRECT`] sends to each ingress pod.
const DIRECT_PER_POD: usize = 3;

/// The Ingress's `limit-rps`.
pub const LIMIT_RPS: f64 = 4.0;
/// Its `limit-burst-multiplier`: a burst of 8 per replica (a bucket of 9: nginx lets
/// `burst=8` through on top of the first request).
pub const BURST_MULTIPLIER: f64 = 2.0;
/// Ingress pods in each run; `limit-rps` is per replica in both modes.
pub const PODS: usize = 2;
/// How long both clients send.
pub const RUN: Duration = Duration::from_secs(3);
/// How much the span from a pod's first to its last request from c1 may
/// differ between the two runs (see [`TOLERANCE`]).
const SLACK: Duration = Duration::from_millis(250);

/// How far the rate-limited client's 200 counts may differ between the
/// two runs. Each ingress pod keeps its own token bucket per client: it
/// starts full (`burst` = rate × multiplier + 1) at the pod's first request
/// from that client and lets through `⌊burst + rate × T'⌋` requests, T'
/// being the time from that first request to the pod's last one. Both runs
/// last [`RUN`] and c1 sends ≈ 43 requests/s, each landing on either pod
/// (kube-proxy picks at random), so a pod's first and last requests fall
/// within a few requests (≈ 23 ms each) of the run's edges: T' moving by
/// [`SLACK`] (250 ms, one token at 4/s) would take ≈ 11 requests in a row
/// to the other pod at one edge (2⁻¹¹). Below one token the floor moves by
/// at most one, so a pod's count moves by at most `⌈rate × SLACK⌉` = 1 and
/// the client's by `PODS × 1` = 2. Measured: 38 and 38 in each of 10 runs
/// (docs/migrate.md). The 429 counts are not compared: they are what was
/// sent minus what got through, and how much a client sends in a fixed time
/// depends on the machine's speed in each run; that some were answered 429
/// on both sides is required.
#[allow(clippy::cast_possible_truncation)] // 4 × 250 ms, far below u64::MAX
pub const TOLERANCE: u64 = {
    let tokens_ms = LIMIT_RPS as u64 * SLACK.as_millis() as u64;
    PODS as u64 * tokens_ms.div_ceil(1000)
};

/// The ingress-nginx setup: controller, ConfigMap, Service, Ingress (the
/// Ingress's backend is the lab's app Service `web/app`).
pub fn nginx_setup() -> Vec<Value> {
    let cidrs = CLUSTER_CIDRS.join(",");
    vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
            "spec": {"template": {"spec": {"containers": [{"name": "controller",
                "image": "registry.k8s.io/ingress-nginx/controller:v1.12.1",
                "args": ["/nginx-ingress-controller", "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller",
                    "--ingress-class=nginx", "--controller-class=k8s.io/ingress-nginx",
                    "--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller"]}]}}}}),
        // The load balancer's PROXY header comes from the nodes (Cluster
        // SNAT): those are the addresses to believe it from.
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
            "data": {"use-proxy-protocol": "true", "proxy-real-ip-cidr": cidrs}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx", "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol": "*"}},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Cluster",
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "app", "namespace": "web", "annotations": {
                "nginx.ingress.kubernetes.io/whitelist-source-range": format!("{ALLOWED}/32"),
                "nginx.ingress.kubernetes.io/limit-rps": format!("{LIMIT_RPS}"),
                "nginx.ingress.kubernetes.io/limit-burst-multiplier": format!("{BURST_MULTIPLIER}")}},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "app.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}),
    ]
}

fn cidr_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The ingress pods' listener as ingress-nginx's `nginx.tmpl` builds it
/// from the ConfigMap: the real-IP module is on when `use-proxy-protocol`,
/// `use-forwarded-headers` or `enable-real-ip` is `"true"`;
/// `real_ip_header` is `proxy_protocol` with PROXY on (X-Forwarded-For is
/// then not read for the client), else `X-Forwarded-For`;
/// `set_real_ip_from` is `proxy-real-ip-cidr` (default `0.0.0.0/0`);
/// `real_ip_recursive on` is realip's default strategy (rightmost
/// untrusted); `compute-full-forwarded-for` together with
/// `use-forwarded-headers` appends to X-Forwarded-For, otherwise it is
/// replaced. One difference, not exercised here: nginx reads
/// a PROXY header from any peer and believes it only from
/// `set_real_ip_from`, realip accepts it only from those. Any other key is
/// an error, so the lab never serves a setup ingress-nginx would treat
/// differently without saying so.
pub fn nginx_listener(configmap: &Value) -> Result<IngressConfig> {
    let mut cfg = IngressConfig { sources: vec!["xff"], ..IngressConfig::direct() };
    let empty = serde_json::Map::new();
    let data = configmap["data"].as_object().unwrap_or(&empty);
    let on = |key: &str| data.get(key).and_then(Value::as_str) == Some("true");
    // set_real_ip_from 0.0.0.0/0: IPv4 (and IPv4-mapped) peers only.
    let mut trusted = vec!["0.0.0.0/0".to_owned()];
    for (k, v) in data {
        let v = v.as_str().unwrap_or_default();
        match k.as_str() {
            "use-proxy-protocol" | "use-forwarded-headers" | "enable-real-ip" | "compute-full-forwarded-for"
                if matches!(v, "true" | "false") => {}
            "proxy-real-ip-cidr" if !cidr_list(v).is_empty() => trusted = cidr_list(v),
            _ => {
                return Err(Error::Invalid(format!(
                    "the lab's ingress-nginx listener does not model ConfigMap key `{k}: {v}`"
                )))
            }
        }
    }
    if on("use-proxy-protocol") {
        cfg.proxy_protocol = "required";
        cfg.proxy_protocol_from = Some(trusted.clone());
        cfg.sources = vec!["proxy-protocol"];
        cfg.trusted = trusted;
    } else if on("use-forwarded-headers") || on("enable-real-ip") {
        cfg.trusted = trusted;
    }
    // nginx.tmpl: `if and UseForwardedHeaders ComputeFullForwardedFor`; else $remote_addr only.
    cfg.forward_xff =
        if on("use-forwarded-headers") && on("compute-full-forwarded-for") { "append" } else { "replace" };
    Ok(cfg)
}

/// What `realip migrate ingress-nginx` (the library, default options as
/// the command has them) makes of `setup`; an error with the report when
/// something was not converted.
pub fn migrated(setup: &[Value]) -> Result<Vec<Value>> {
    let text = setup.iter().map(|o| format!("---\n{o}\n")).collect::<Vec<_>>().concat();
    let objects = realip_kube::load_str(&text, "lab-ingress-nginx-setup")
        .map_err(|e| Error::Migrate(format!("loading the setup: {e}")))?;
    let m = realip_migrate::migrate(&objects, &realip_migrate::Options::default())
        .map_err(|e| Error::Migrate(e.to_string()))?;
    if m.report.incomplete() {
        return Err(Error::Migrate(format!("something was not converted:\n{}", m.report.text())));
    }
    Ok(m.objects)
}

/// `Kind ns/name` of each object, for the part's label.
fn names(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| {
            let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
            format!("{} {}/{}", s("/kind"), s("/metadata/namespace"), s("/metadata/name"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The traffic of both runs: c1 and c2 at once, two connections each with
/// a 40 ms pause (≈ 40 requests/s per client, ≈ 20/s per pod, 5× the
/// limit), every request forging X-Forwarded-For.
fn traffic() -> Load {
    Load {
        requests: 2000,
        duration: RUN,
        concurrency: 2,
        pause: Some(Duration::from_millis(40)),
        headers: vec![format!("X-Forwarded-For: {}", crate::scenario::FORGED)],
        ..Load::default()
    }
}

/// One run: a fresh lab whose API server holds `objects` and the app
/// Service, ingress pods configured with `cfg`, the PROXY v2 LB, then the
/// traffic once c2 is refused by every pod (the route and its policy are
/// served; c1's buckets are untouched until the measured traffic).
/// [`DIRECT`]'s requests: straight to each ingress pod, each on a new
/// connection that starts with a PROXY v1 header claiming [`ALLOWED`] and
/// carries `X-Forwarded-For: ALLOWED`.
async fn direct_forgeries(lab: &crate::harness::Lab) -> Result<Vec<crate::load::Sample>> {
    let c2 = lab.topo.clients.iter().find(|c| c.spec.name == "c2").ok_or_else(|| Error::Invalid("no c2".into()))?;
    // On c2's /28, so the load balancer's host routes replies back to it.
    c2.ns.ip(&["addr", "add", &format!("{DIRECT}/28"), "dev", "eth0", "nodad"])?;
    let source: IpAddr = DIRECT.parse().map_err(|_| Error::Invalid(DIRECT.into()))?;
    let pods: Vec<SocketAddr> = lab
        .pods
        .iter()
        .filter(|p| p.kind == Kind::Ingress)
        .map(|p| SocketAddr::new(IpAddr::V4(p.ip), crate::topo::POD_PORT))
        .collect();
    let handle = c2.rt.handle();
    let started = std::time::Instant::now();
    let mut samples = Vec::new();
    for target in pods.iter().flat_map(|p| std::iter::repeat_n(*p, DIRECT_PER_POD)) {
        let res = handle.spawn(forged(source, target)).await.map_err(|e| Error::Invalid(e.to_string()))?;
        let (status, body, error) = match res {
            Ok((st, body)) => (Some(st), serde_json::from_slice(&body).ok(), None),
            Err(e) => (None, None, Some(e)),
        };
        samples.push(crate::load::Sample { at: started.elapsed(), client: source, status, body, error });
    }
    Ok(samples)
}

/// One forged request from `source` to `target`: the status and body.
async fn forged(source: IpAddr, target: SocketAddr) -> std::result::Result<(u16, Vec<u8>), String> {
    let sock = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    sock.bind(SocketAddr::new(source, 0)).map_err(|e| format!("bind: {e}"))?;
    let mut s = tokio::time::timeout(Duration::from_secs(2), sock.connect(target))
        .await
        .map_err(|_| "connect timeout".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let req = format!(
        "PROXY TCP4 {ALLOWED} {} 40000 80\r\nGET /debug/ip HTTP/1.1\r\nHost: app.example\r\nUser-Agent: {}\r\nX-Forwarded-For: {ALLOWED}\r\nConnection: close\r\n\r\n",
        crate::topo::VIP,
        crate::load::user_agent(source)
    );
    let exchange = async {
        s.write_all(req.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        // Bounded: the answer of a refused or served request is small.
        (&mut s).take(64 * 1024).read_to_end(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        Ok::<_, String>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(3), exchange).await.map_err(|_| "no answer".to_owned())??;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or("connection closed without a response")?;
    let status = std::str::from_utf8(buf.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("malformed status line")?;
    Ok((status, buf.get(head_end + 4..).unwrap_or_default().to_vec()))
}

async fn run_side(opts: &Options, run: &str, objects: &[Value], cfg: IngressConfig, label: String) -> Result<Part> {
    let (mut lab, api, kubeconfig) = lab_with_apps(opts, run).await?;
    for o in objects {
        api.apply(o.clone());
    }
    let cfg = IngressConfig { kubeconfig: Some(kubeconfig), ..cfg };
    lab.add_pod(Kind::Ingress, "ingress-a", 0, &cfg)?;
    lab.add_pod(Kind::Ingress, "ingress-b", 1, &cfg)?;
    lab.wait_ready(&["ingress-a", "ingress-b"]).await?;
    lab.start_lb(LbKind::Proxy { proxy_protocol: true }).await?;
    wait_served(&lab, "c2", 403, &format!("the ingress pods did not refuse c2 (outside the allow list) [{label}]"))
        .await?;
    lab.reset_logs();
    let mut samples = lab.traffic(&["c1", "c2"], &traffic()).await;
    samples.extend(direct_forgeries(&lab).await?);
    Ok(Part { label, measure: lab.measure(&samples, false) })
}

pub(crate) async fn migrate(opts: &Options, run: &str) -> Result<Vec<Part>> {
    let setup = nginx_setup();
    let configmap = setup.iter().find(|o| o["kind"] == "ConfigMap").cloned().unwrap_or_default();
    let before_cfg = IngressConfig { ingress_class: "nginx", ..nginx_listener(&configmap)? };
    let after = migrated(&setup)?;
    let mut after_objects = vec![json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "realip"}, "spec": {"controllerName": "realip.dev/gateway-controller"}})];
    after_objects.extend(after.iter().cloned());
    // Gateway mode: the file's listener trusts nobody and expects no PROXY
    // header; the chain comes from the migrated ClientIPPolicy. No Ingress
    // of class `realip` exists, so only the Gateway API objects route.
    let after_cfg = IngressConfig { gateway_ports: vec![80], ..IngressConfig::direct() };
    let ingress_only: Vec<Value> = setup.iter().filter(|o| o["kind"] == "Ingress").cloned().collect();
    let mut parts = Vec::new();
    parts.push(
        run_side(
            opts,
            run,
            &ingress_only,
            before_cfg,
            "before: Ingress mode, ingress-nginx annotations (Ingress web/app) and ConfigMap keys".into(),
        )
        .await?,
    );
    parts.push(
        run_side(
            opts,
            run,
            &after_objects,
            after_cfg,
            format!("after: Gateway mode, realip migrate's output ({})", names(&after)),
        )
        .await?,
    );
    Ok(parts)
}

fn count(c: &ClientRow, status: &str) -> u64 {
    c.statuses.get(status).copied().unwrap_or(0)
}

fn keys(m: &std::collections::BTreeMap<String, u64>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

/// What is wrong with the before run as a baseline: c1 got 200s (at the
/// app as itself) and 429s only, c2 403s only, each resolved as itself.
fn baseline_problems(rows: &[ClientRow]) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(misattributed(rows));
    for (ip, want) in [(ALLOWED, &["200", "429"][..]), (OUTSIDE, &["403"][..])] {
        let Some(c) = rows.iter().find(|c| c.ip == ip) else {
            out.push(format!("{ip} sent nothing"));
            continue;
        };
        if keys(&c.statuses) != want {
            out.push(format!("{ip} got {:?}, expected only {want:?}", c.statuses));
        }
        if keys(&c.ingress_client_ip) != [ip] {
            out.push(format!("the ingress resolved {ip} as {:?}", c.ingress_client_ip));
        }
        if c.preserved != c.ok {
            out.push(format!("the app saw {ip} as {:?}", c.app_client_ip));
        }
    }
    out
}

/// What [`DIRECT`]'s forgeries achieved that they must not: an answer
/// other than a refusal, or the ingress resolving it as [`ALLOWED`].
fn misattributed(rows: &[ClientRow]) -> Vec<String> {
    let Some(d) = rows.iter().find(|c| c.ip == DIRECT) else {
        return vec![format!("{DIRECT} (direct, forging {ALLOWED}) sent nothing")];
    };
    let mut out = Vec::new();
    if d.statuses.keys().any(|s| s.starts_with('2')) {
        out.push(format!("{DIRECT}, reaching the pods directly with a forged PROXY header and X-Forwarded-For, got {:?}: the forgery was believed", d.statuses));
    }
    if d.ingress_client_ip.contains_key(ALLOWED) {
        out.push(format!(
            "the ingress resolved {DIRECT}'s forged requests as {ALLOWED}: trust is wider than proxy-real-ip-cidr"
        ));
    }
    out
}

/// How one client's outcome differs between the runs.
fn differences(b: &ClientRow, a: &ClientRow) -> Vec<String> {
    let mut out = Vec::new();
    let ip = &b.ip;
    if keys(&b.statuses) != keys(&a.statuses) {
        out.push(format!("{ip} got {:?} before, {:?} after", b.statuses, a.statuses));
    }
    if keys(&b.ingress_client_ip) != keys(&a.ingress_client_ip) {
        out.push(format!(
            "the ingress resolved {ip} as {:?} before, {:?} after",
            b.ingress_client_ip, a.ingress_client_ip
        ));
    }
    if keys(&b.app_client_ip) != keys(&a.app_client_ip) {
        out.push(format!("the app saw {ip} as {:?} before, {:?} after", b.app_client_ip, a.app_client_ip));
    }
    if count(b, "200").abs_diff(count(a, "200")) > TOLERANCE {
        out.push(format!(
            "{ip} got {} 200s before, {} after (tolerance ±{TOLERANCE})",
            count(b, "200"),
            count(a, "200")
        ));
    }
    out
}

/// Same outcome per client before and after the migration: the same
/// statuses, the same client IP at the ingress and at the app, 200 counts
/// within [`TOLERANCE`]; and the before run is the baseline it claims to be.
pub(crate) fn migrate_verdict(parts: &[Part], _: &Options) -> (bool, String) {
    let (Some(before), Some(after)) = (parts.first().map(|p| &p.measure), parts.get(1).map(|p| &p.measure)) else {
        return (false, "migrate needs two configurations".into());
    };
    let baseline = baseline_problems(&before.clients);
    if !baseline.is_empty() {
        return (false, format!("the ingress-nginx baseline is not what it claims: {}", baseline.join("; ")));
    }
    let mut diffs = misattributed(&after.clients);
    for b in &before.clients {
        match after.clients.iter().find(|a| a.ip == b.ip) {
            Some(a) => diffs.extend(differences(b, a)),
            None => diffs.push(format!("{} sent nothing after the migration", b.ip)),
        }
    }
    if diffs.is_empty() && after.clients.len() != before.clients.len() {
        diffs.push(format!("{} clients before, {} after", before.clients.len(), after.clients.len()));
    }
    let row = |ip: &str| {
        let side = |m: &crate::report::Measure| {
            m.clients.iter().find(|c| c.ip == ip).map_or_else(
                || "nothing".to_owned(),
                |c| format!("{}×200 {}×403 {}×429", count(c, "200"), count(c, "403"), count(c, "429")),
            )
        };
        format!("{ip} {} → {}", side(before), side(after))
    };
    let direct = |m: &crate::report::Measure| {
        m.clients.iter().find(|c| c.ip == DIRECT).map_or_else(String::new, |c| format!("{:?}", c.statuses))
    };
    let expected = PODS as f64 * (LIMIT_RPS * BURST_MULTIPLIER + LIMIT_RPS * RUN.as_secs_f64());
    if diffs.is_empty() {
        (
            true,
            format!(
                "same outcome per client before (Ingress mode, ingress-nginx annotations) and after (Gateway mode, \
                 realip migrate's output): {}; {}; c1 resolved and seen at the app as itself, c2 refused as itself, \
                 the forged X-Forwarded-For ignored on both sides; {DIRECT}, bypassing the load balancer with a \
                 PROXY header and X-Forwarded-For claiming {ALLOWED}, refused as itself on both sides ({} → {}) \
                 (200s within ±{TOLERANCE}; the token buckets allow at most {expected:.0})",
                row(ALLOWED),
                row(OUTSIDE),
                direct(before),
                direct(after)
            ),
        )
    } else {
        (false, format!("the migration changed the outcome: {}", diffs.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_configmap_becomes_the_listener_nginx_tmpl_makes_of_it() {
        let cm = |data: Value| json!({"data": data});
        let pp = nginx_listener(&cm(
            json!({"use-proxy-protocol": "true", "proxy-real-ip-cidr": "10.0.0.0/8, 192.0.2.0/24"}),
        ))
        .unwrap();
        assert_eq!(
            (pp.proxy_protocol, pp.sources.as_slice(), pp.forward_xff),
            ("required", &["proxy-protocol"][..], "replace")
        );
        assert_eq!(pp.trusted, ["10.0.0.0/8", "192.0.2.0/24"]);
        assert_eq!(pp.proxy_protocol_from.as_deref(), Some(&pp.trusted[..]));
        // Forwarded headers with the default trust-all; nothing on: nothing trusted.
        let xff = nginx_listener(&cm(json!({"use-forwarded-headers": "true", "compute-full-forwarded-for": "true"})))
            .unwrap();
        assert_eq!(
            (xff.proxy_protocol, xff.trusted.as_slice(), xff.forward_xff),
            ("off", &["0.0.0.0/0".to_owned()][..], "append")
        );
        assert!(nginx_listener(&cm(json!({}))).unwrap().trusted.is_empty());
        // compute-full-forwarded-for appends only with use-forwarded-headers.
        let real_ip = nginx_listener(&cm(json!({"enable-real-ip": "true", "compute-full-forwarded-for": "true"})));
        assert_eq!(real_ip.unwrap().forward_xff, "replace");
        let e = nginx_listener(&cm(json!({"use-proxy-protocol": "true", "ssl-redirect": "false"}))).unwrap_err();
        assert!(e.to_string().contains("`ssl-redirect: false`"), "{e}");
        assert!(nginx_listener(&cm(json!({"use-proxy-protocol": "yes"}))).is_err());
    }

    #[test]
    fn the_setup_migrates_completely_to_the_four_objects_the_after_run_serves() {
        let out = migrated(&nginx_setup()).unwrap();
        let kinds: Vec<&str> = out.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Gateway", "HTTPRoute", "ClientIPPolicy", "ClientAccessPolicy"]);
        // A setup the migration cannot convert is an error naming the report.
        let mut bad = nginx_setup();
        bad[3]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/limit-connections"] = json!("3");
        let e = migrated(&bad).unwrap_err().to_string();
        assert!(e.contains("not converted") && e.contains("limit-connections"), "{e}");
    }

    #[test]
    fn tolerance_is_one_token_per_pod() {
        assert_eq!(TOLERANCE, 2);
    }

    fn row(ip: &str, statuses: &[(&str, u64)], app: Option<&str>) -> ClientRow {
        let statuses: BTreeMap<String, u64> = statuses.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        let ok = statuses.get("200").copied().unwrap_or(0);
        let sent = statuses.values().sum();
        ClientRow {
            ip: ip.into(),
            sent,
            ok,
            preserved: if app == Some(ip) { ok } else { 0 },
            ingress_client_ip: BTreeMap::from([(ip.to_owned(), sent)]),
            app_client_ip: app.map(|a| BTreeMap::from([(a.to_owned(), ok)])).unwrap_or_default(),
            statuses,
            ..ClientRow::default()
        }
    }

    /// Both sides, each with DIRECT's refused forgeries unless given.
    fn parts(before: Vec<ClientRow>, after: Vec<ClientRow>) -> Vec<Part> {
        [before, after]
            .into_iter()
            .map(|mut clients| {
                if !clients.iter().any(|c| c.ip == DIRECT) {
                    clients.push(row(DIRECT, &[("none", 6)], None));
                }
                clients
            })
            .map(|clients| Part {
                label: String::new(),
                measure: crate::report::Measure { clients, ..crate::report::Measure::default() },
            })
            .collect()
    }

    #[test]
    fn the_verdict_fails_on_any_difference_beyond_the_tolerance() {
        let opts = Options::new("realip".into());
        let good =
            || vec![row(ALLOWED, &[("200", 40), ("429", 90)], Some(ALLOWED)), row(OUTSIDE, &[("403", 130)], None)];
        let (ok, why) = migrate_verdict(&parts(good(), good()), &opts);
        assert!(ok, "{why}");
        // Within the tolerance, and more 429s because more was sent: same outcome.
        let near = vec![row(ALLOWED, &[("200", 42), ("429", 120)], Some(ALLOWED)), row(OUTSIDE, &[("403", 90)], None)];
        assert!(migrate_verdict(&parts(good(), near), &opts).0);
        // The rate limit lost: c1 gets more through than the tolerance allows.
        let unlimited =
            vec![row(ALLOWED, &[("200", 43), ("429", 80)], Some(ALLOWED)), row(OUTSIDE, &[("403", 130)], None)];
        let (ok, why) = migrate_verdict(&parts(good(), unlimited), &opts);
        assert!(!ok && why.contains("40 200s before, 43 after"), "{why}");
        // The allow list lost: c2 gets through.
        let open = vec![
            row(ALLOWED, &[("200", 40), ("429", 90)], Some(ALLOWED)),
            row(OUTSIDE, &[("200", 40), ("429", 90)], Some(OUTSIDE)),
        ];
        let (ok, why) = migrate_verdict(&parts(good(), open), &opts);
        assert!(!ok && why.contains(OUTSIDE), "{why}");
        // The client IP lost: the app sees a node.
        let mut lost = good();
        lost[0] = row(ALLOWED, &[("200", 40), ("429", 90)], Some("192.0.2.11"));
        let (ok, why) = migrate_verdict(&parts(good(), lost), &opts);
        assert!(!ok && why.contains("the app saw 203.0.113.10"), "{why}");
        // A baseline that is not one (no 429 before) is a failure too.
        let no_limit = vec![row(ALLOWED, &[("200", 130)], Some(ALLOWED)), row(OUTSIDE, &[("403", 130)], None)];
        let (ok, why) = migrate_verdict(&parts(no_limit.clone(), no_limit), &opts);
        assert!(!ok && why.contains("baseline"), "{why}");
        // Trust widened after the migration: DIRECT's forged PROXY header is believed,
        // it gets in as the allowed client.
        let mut widened = good();
        let mut believed = row(DIRECT, &[("200", 2), ("429", 4)], Some(ALLOWED));
        believed.ingress_client_ip = BTreeMap::from([(ALLOWED.to_owned(), 6)]);
        widened.push(believed.clone());
        let (ok, why) = migrate_verdict(&parts(good(), widened.clone()), &opts);
        assert!(!ok && why.contains("the forgery was believed") && why.contains("trust is wider"), "{why}");
        // ... and before it, the baseline is no baseline.
        let (ok, why) = migrate_verdict(&parts(widened, good()), &opts);
        assert!(!ok && why.contains("baseline") && why.contains("forgery was believed"), "{why}");
        // DIRECT must have been measured.
        let mut gone = parts(good(), good());
        gone[1].measure.clients.retain(|c| c.ip != DIRECT);
        assert!(!migrate_verdict(&gone, &opts).0);
    }
}
