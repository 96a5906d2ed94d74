//! Traefik: the workloads running it (image `traefik`, `--entryPoints.*`
//! arguments or the chart's `app.kubernetes.io/name: traefik` label), the
//! entry points' client-IP settings from CLI arguments and a static
//! configuration file in a ConfigMap (`traefik.yml`): `forwardedHeaders`
//! `trustedIPs`/`insecure`, `proxyProtocol` `trustedIPs`/`insecure`; and
//! Middlewares keyed on the client (`ipAllowList`/`ipWhiteList`,
//! `rateLimit`, `inFlightReq`) with their `ipStrategy.depth`.
//!
//! Traefik's PROXY support is optional per connection (a header is read
//! when a trusted peer sends one), so it never breaks plain connections.

use realip_kube::{Node, Object};

use super::{add_workload, Index};
use crate::finding::Place;
use crate::model::{self, Controller, Edge, Fact, Pp, ServiceFacts, Trust};

/// The Traefik controller kind.
#[derive(Debug)]
pub struct Traefik;

/// Its one instance.
pub static TRAEFIK: Traefik = Traefik;

/// Entry points that are not traffic (dashboard, metrics).
const INTERNAL: &[&str] = &["traefik", "metrics"];

fn is_traefik(o: &Object) -> bool {
    o.label("app.kubernetes.io/name") == Some("traefik")
        || model::containers(o).iter().any(|c| {
            c.str_at(&["image"])
                .is_some_and(|i| i.rsplit('/').next().is_some_and(|n| n.starts_with("traefik:") || n == "traefik"))
                || model::argv(c).iter().any(|a| a.to_ascii_lowercase().starts_with("--entrypoints."))
        })
}

/// One entry point's settings: (setting, value, where).
#[derive(Default, Debug)]
struct EntryPoint {
    name: String,
    forwarded_insecure: Option<Place>,
    forwarded_trusted: Option<(Vec<String>, Place)>,
    pp_insecure: Option<Place>,
    pp_trusted: Option<(Vec<String>, Place)>,
}

fn entry<'a>(eps: &'a mut Vec<EntryPoint>, name: &str) -> &'a mut EntryPoint {
    if let Some(i) = eps.iter().position(|e| e.name == name) {
        return &mut eps[i];
    }
    eps.push(EntryPoint { name: name.to_owned(), ..EntryPoint::default() });
    eps.last_mut().expect("just pushed")
}

/// `--entryPoints.<ep>.<setting>[=value]` arguments, with their lines.
fn from_args(w: &Object, eps: &mut Vec<EntryPoint>) {
    for c in model::containers(w) {
        let nodes = c
            .get("command")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .chain(c.get("args").map(Node::items).unwrap_or_default());
        for n in nodes {
            let Some(a) = n.as_str() else { continue };
            let lower = a.to_ascii_lowercase();
            let Some(rest) = lower.strip_prefix("--entrypoints.") else { continue };
            let (path, value) = rest.split_once('=').unwrap_or((rest, "true"));
            let Some((ep, setting)) = path.split_once('.') else { continue };
            let at = Place { object: w.id(), file: w.source.file.clone(), line: n.line };
            // Keep the entry point's name as written (args are case-insensitive, names are not).
            let name = &a["--entrypoints.".len().."--entrypoints.".len() + ep.len()];
            let list = || value.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
            let e = entry(eps, name);
            match setting {
                "forwardedheaders.insecure" if value != "false" => e.forwarded_insecure = Some(at),
                "forwardedheaders.trustedips" => e.forwarded_trusted = Some((list(), at)),
                "proxyprotocol.insecure" if value != "false" => e.pp_insecure = Some(at),
                "proxyprotocol.trustedips" => e.pp_trusted = Some((list(), at)),
                _ => {}
            }
        }
    }
}

/// `entryPoints:` of a static configuration file held in a ConfigMap.
fn from_file(cm: &Object, key: &str, text: &str, eps: &mut Vec<EntryPoint>) {
    let Ok(docs) = realip_kube::yaml::parse(text, key) else { return };
    // A block scalar's node starts at its first content line, the text's line 1.
    let base = cm.line_of(&["data", key]);
    let place = |n: &Node| Place { object: cm.id(), file: cm.source.file.clone(), line: base + n.line - 1 };
    for doc in docs {
        for (name, ep) in doc.get("entryPoints").map(Node::entries).unwrap_or_default() {
            let e = entry(eps, name);
            let list = |n: &Node| n.items().iter().filter_map(Node::as_str).map(str::to_owned).collect::<Vec<_>>();
            if let Some(n) = ep.at(&["forwardedHeaders", "insecure"]).filter(|n| n.as_str() == Some("true")) {
                e.forwarded_insecure = Some(place(n));
            }
            if let Some(n) = ep.at(&["forwardedHeaders", "trustedIPs"]) {
                e.forwarded_trusted = Some((list(n), place(n)));
            }
            if let Some(n) = ep.at(&["proxyProtocol", "insecure"]).filter(|n| n.as_str() == Some("true")) {
                e.pp_insecure = Some(place(n));
            }
            if let Some(n) = ep.at(&["proxyProtocol", "trustedIPs"]) {
                e.pp_trusted = Some((list(n), place(n)));
            }
        }
    }
}

/// Sets the edge's facts from the exposed entry points (the worst one counts).
fn apply(e: &mut Edge, eps: &[EntryPoint], fallback: &Place) {
    let exposed: Vec<&EntryPoint> = eps.iter().filter(|ep| !INTERNAL.contains(&ep.name.as_str())).collect();
    e.forwarded =
        Some(if let Some((ep, at)) = exposed.iter().find_map(|ep| ep.forwarded_insecure.as_ref().map(|a| (ep, a))) {
            Fact::new(Trust::Everyone, format!("entryPoints.{}.forwardedHeaders.insecure", ep.name), at.clone())
        } else if let Some((ep, (list, at))) =
            exposed.iter().find_map(|ep| ep.forwarded_trusted.as_ref().map(|t| (ep, t)))
        {
            Fact::new(
                Trust::from_list(list),
                format!("entryPoints.{}.forwardedHeaders.trustedIPs", ep.name),
                at.clone(),
            )
        } else {
            Fact::new(Trust::Nobody, "forwardedHeaders.trustedIPs (unset)", fallback.clone())
        });
    let pp = exposed.iter().find_map(|ep| {
        ep.pp_insecure
            .as_ref()
            .map(|a| (ep, Trust::Everyone, a, "insecure"))
            .or_else(|| ep.pp_trusted.as_ref().map(|(l, a)| (ep, Trust::from_list(l), a, "trustedIPs")))
    });
    match pp {
        Some((ep, trust, at, how)) => {
            let key = format!("entryPoints.{}.proxyProtocol.{how}", ep.name);
            e.proxy_protocol = Some(Fact::new(Pp::Optional, key.clone(), at.clone()));
            e.proxy_from = Some(Fact::new(trust, key, at.clone()));
        }
        None => e.proxy_protocol = Some(Fact::new(Pp::Off, "proxyProtocol (unset)", fallback.clone())),
    }
}

/// Middlewares keyed on the client: depth → hop facts, remote address → peer-keyed.
fn middlewares(e: &mut Edge, ix: &Index) {
    for kind_mw in ix.kind("Middleware") {
        for (name, peer_default) in
            [("ipAllowList", true), ("ipWhiteList", true), ("rateLimit", true), ("inFlightReq", true)]
        {
            let Some(mw) = kind_mw.doc.at(&["spec", name]) else { continue };
            let criterion: &[&str] = if name.starts_with("ip") { &[] } else { &["sourceCriterion"] };
            let strat: Vec<&str> = criterion.iter().copied().chain(["ipStrategy"]).collect();
            let what = format!("Middleware {}/{} spec.{name}", kind_mw.namespace, kind_mw.name);
            if name != "ipAllowList" && name != "ipWhiteList" {
                let c = mw.get("sourceCriterion");
                if c.is_some_and(|c| c.get("requestHeaderName").is_some() || c.str_at(&["requestHost"]) == Some("true"))
                {
                    continue; // keyed on a header or the host, not the client IP
                }
            }
            let mut path: Vec<&str> = vec!["spec", name];
            path.extend(&strat);
            path.push("depth");
            match kind_mw.doc.str_at(&path).and_then(|d| d.parse::<u32>().ok()) {
                Some(depth) if depth > 0 => {
                    e.hops.push(Fact::new(
                        depth,
                        format!("{what}.{}.depth", strat.join(".")),
                        Place::of(kind_mw, &path),
                    ));
                    e.client_keyed.push(Fact::new(false, what, Place::of(kind_mw, &path)));
                }
                _ => e.client_keyed.push(Fact::new(peer_default, what, Place::of(kind_mw, &["spec", name]))),
            }
        }
    }
}

/// Finds the instances.
pub fn find(ix: &Index) -> Vec<Edge> {
    let mut edges = Vec::new();
    for w in ix.workloads().filter(|w| is_traefik(w)) {
        let mut e = Edge::new(&TRAEFIK, format!("{}/{}", w.namespace, w.name));
        add_workload(&mut e, w, ix);
        let mut eps = Vec::new();
        for cm in ix.kind_in("ConfigMap", &w.namespace) {
            for (k, v) in cm.doc.get("data").map(Node::entries).unwrap_or_default() {
                if matches!(k.as_str(), "traefik.yml" | "traefik.yaml") {
                    if let Some(text) = v.as_str() {
                        from_file(cm, k, text, &mut eps);
                    }
                }
            }
        }
        from_args(w, &mut eps);
        apply(&mut e, &eps, &Place::of(w, &["spec", "template", "spec", "containers"]));
        middlewares(&mut e, ix);
        edges.push(e);
    }
    edges
}

/// Parses entry points from chart values `ports.<name>.{forwardedHeaders,proxyProtocol}`.
pub fn from_values(values: &Node, file: &str, e: &mut Edge) {
    let mut eps = Vec::new();
    let place = |n: &Node| Place { object: "values".into(), file: file.to_owned(), line: n.line };
    for (name, p) in values.get("ports").map(Node::entries).unwrap_or_default() {
        let ep = entry(&mut eps, name);
        let list = |n: &Node| n.items().iter().filter_map(Node::as_str).map(str::to_owned).collect::<Vec<_>>();
        if let Some(n) = p.at(&["forwardedHeaders", "insecure"]).filter(|n| n.as_str() == Some("true")) {
            ep.forwarded_insecure = Some(place(n));
        }
        if let Some(n) = p.at(&["forwardedHeaders", "trustedIPs"]).filter(|n| !n.items().is_empty()) {
            ep.forwarded_trusted = Some((list(n), place(n)));
        }
        if let Some(n) = p.at(&["proxyProtocol", "insecure"]).filter(|n| n.as_str() == Some("true")) {
            ep.pp_insecure = Some(place(n));
        }
        if let Some(n) = p.at(&["proxyProtocol", "trustedIPs"]).filter(|n| !n.items().is_empty()) {
            ep.pp_trusted = Some((list(n), place(n)));
        }
    }
    apply(e, &eps, &place(values.get("ports").unwrap_or(values)));
}

impl Controller for Traefik {
    fn name(&self) -> &'static str {
        "Traefik"
    }

    fn fix(&self, rule: &str, edge: &Edge, svc: Option<&ServiceFacts>) -> Option<String> {
        let ep = edge
            .forwarded
            .as_ref()
            .and_then(|f| f.key.strip_prefix("entryPoints."))
            .and_then(|k| k.split('.').next())
            .unwrap_or("web");
        Some(match rule {
            "ingress-etp-cluster" => {
                let s = svc?;
                format!("kubectl patch svc {} -n {} -p '{{\"spec\":{{\"externalTrafficPolicy\":\"Local\"}}}}' (Helm: --set service.spec.externalTrafficPolicy=Local)", s.name, s.namespace)
            }
            "forwarded-headers-from-everyone" | "trusted-cidr-invalid" => format!("drop --entryPoints.{ep}.forwardedHeaders.insecure and set --entryPoints.{ep}.forwardedHeaders.trustedIPs=<load balancer CIDRs> (Helm: ports.{ep}.forwardedHeaders.trustedIPs, insecure: false)"),
            "lb-l7-forwarded-headers-ignored" => format!("--entryPoints.{ep}.forwardedHeaders.trustedIPs=<load balancer CIDRs> (Helm: ports.{ep}.forwardedHeaders.trustedIPs)"),
            "proxy-protocol-from-everyone" => "drop proxyProtocol.insecure and set --entryPoints.<name>.proxyProtocol.trustedIPs=<load balancer CIDRs> (Helm: ports.<name>.proxyProtocol.trustedIPs)".into(),
            "proxy-protocol-mismatch" => "--entryPoints.web.proxyProtocol.trustedIPs=<load balancer CIDRs> and the same for websecure (Helm: ports.web.proxyProtocol.trustedIPs)".into(),
            "hops-mismatch" => "set the Middleware's ipStrategy.depth to the number of HTTP proxies in front (1 behind one L7 load balancer), or remove ipStrategy behind an L4 one".into(),
            "client-policy-without-client-ip" => "keep the source for Traefik (Helm: service.spec.externalTrafficPolicy=Local, or proxyProtocol.trustedIPs with PROXY on the load balancer); behind an L7 load balancer use ipStrategy.depth: 1".into(),
            "ingress-single-replica" => "kubectl scale deploy traefik --replicas=3 (Helm: --set deployment.replicas=3, or autoscaling.minReplicas=3)".into(),
            "ingress-no-spread" => "Helm: topologySpreadConstraints: [{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app.kubernetes.io/name: traefik}}}]".into(),
            "ingress-no-pdb" => "Helm: --set podDisruptionBudget.enabled=true --set podDisruptionBudget.maxUnavailable=1".into(),
            "rollout-max-unavailable" => "Helm: updateStrategy.rollingUpdate.maxUnavailable=0, maxSurge=1".into(),
            "rollout-no-drain" => "Traefik drains on SIGTERM for entryPoints.<name>.transport.lifeCycle.requestAcceptGraceTimeout: set it above the health-check interval × threshold (Helm: ports.<name>.transport.lifeCycle), with terminationGracePeriodSeconds above it".into(),
            _ => return None,
        })
    }
}
