//! The generic rules: they judge the client-IP facts every controller
//! module reports ([`crate::model::Edge`]), plus the rules about single
//! objects (apps, Services, probes, the YAML itself). Ids, severities and
//! whys come from [`crate::catalog`]; fix texts from the controller.
//!
//! Invariants: a rule judges only facts that are known (`Some`); each
//! finding is reported once per rule and place; findings come out in input
//! order (file, then line).

use realip_kube::{DuplicateKey, Node, Object};

use crate::cloud::{Layer, Target};
use crate::controllers::{self, realip, Index};
use crate::finding::{Finding, Place, Severity};
use crate::model::{self, Edge, Pp, Trust};

/// What an audit found, and which controllers it recognised.
#[derive(Debug, Default)]
pub struct Audit {
    /// The findings.
    pub findings: Vec<Finding>,
    /// The controller instances recognised (`ingress-nginx ns/name`, ...).
    pub controllers: Vec<String>,
}

/// Runs every manifest rule.
pub fn check(objects: &[Object]) -> Vec<Finding> {
    audit(objects, &[]).findings
}

/// Runs every manifest rule; `duplicates` are the keys the loader saw twice.
pub fn audit(objects: &[Object], duplicates: &[DuplicateKey]) -> Audit {
    let ix = Index::new(objects);
    let tomls = realip::configs(&ix);
    let mut edges = controllers::find_all(&ix, &tomls);
    let mut out = Vec::new();
    out.extend(realip::config_findings(&tomls));
    for e in &mut edges {
        judge(e, &mut out);
    }
    crate::apps::check(&ix, &edges, &mut out);
    for s in ix.kind("Service") {
        etp_without_effect(s, &mut out);
    }
    probe_on_proxy_port(&ix, &tomls, &mut out);
    for d in duplicates {
        let owner = objects
            .iter()
            .filter(|o| o.source.file == d.file && o.source.line <= d.duplicate.line)
            .max_by_key(|o| o.source.line);
        let at = Place {
            object: owner.map_or_else(|| d.file.clone(), Object::id),
            file: d.file.clone(),
            line: d.duplicate.line,
        };
        out.push(Finding::new(
            "yaml-duplicate-key",
            &at,
            format!(
                "key `{}` is written twice (first at line {}); the last value is used",
                d.duplicate.key, d.duplicate.first
            ),
            format!("keep one `{}`", d.duplicate.key),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert((f.rule, f.file.clone(), f.line, f.object.clone())));
    let order = |f: &Finding| objects.iter().position(|o| o.source.file == f.file).unwrap_or(usize::MAX);
    out.sort_by_cached_key(|f| (order(f), f.line));
    let controllers = edges
        .iter()
        .filter(|e| !e.services.is_empty() || !e.workloads.is_empty() || !e.own.is_empty())
        .map(|e| format!("{} {}", e.controller.name(), e.instance))
        .collect();
    Audit { findings: out, controllers }
}

fn family_of(cidr: &str) -> Option<bool> {
    let ip = cidr.split('/').next()?;
    ip.parse::<std::net::IpAddr>().ok().map(|a| a.is_ipv4())
}

/// Whether `c` parses as an address or a CIDR (prefix within the family).
pub fn valid_cidr(c: &str) -> bool {
    let (ip, prefix) = match c.split_once('/') {
        Some((ip, p)) => (ip, Some(p)),
        None => (c, None),
    };
    let Ok(addr) = ip.parse::<std::net::IpAddr>() else { return false };
    // Digits only (`/+24` and `/` are not CIDRs to Go, nginx or Kubernetes).
    prefix.is_none_or(|p| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u8>().is_ok_and(|p| p <= if addr.is_ipv4() { 32 } else { 128 })
    })
}

/// The generic rules over one controller instance.
#[allow(clippy::too_many_lines)] // one flat list of rules, in docs order
pub fn judge(e: &Edge, out: &mut Vec<Finding>) {
    out.extend(e.own.iter().cloned());
    let name = e.controller.name();
    let ctrl_pp = e.proxy_protocol.as_ref();
    let mut any_local = false;
    let mut l7_any = false;
    let mut external_any = false;
    for s in e.services.iter().filter(|s| s.external()) {
        external_any = true;
        let lb = &s.lb;
        let l7 = lb.layer == Layer::L7 || e.l7_front.is_some();
        let kept = s.local() || lb.proxy_protocol.is_some() || e.source_kept.is_some();
        any_local |= s.local() || e.source_kept.is_some();
        let why_l7 = lb.layer_from.clone().or_else(|| e.l7_front.clone()).unwrap_or_default();
        if l7 {
            l7_any = true;
            let ignores = e.forwarded.as_ref().is_some_and(|f| f.value == Trust::Nobody)
                && e.hops.iter().all(|h| h.key.starts_with("Middleware"))
                && lb.proxy_protocol.is_none();
            if ignores {
                let f = e.forwarded.as_ref().expect("checked");
                out.push(Finding::new(
                    "lb-l7-forwarded-headers-ignored",
                    &f.at,
                    format!("{name} {} ignores X-Forwarded-For ({}) but Service {} is behind an L7 load balancer ({why_l7}): every request comes from the load balancer", e.instance, f.key, s.name),
                    e.fix("lb-l7-forwarded-headers-ignored", Some(s)),
                ));
            }
        } else if s.ty == "LoadBalancer" && lb.target == Target::Pod {
            if !lb.preserve_client_ip && lb.proxy_protocol.is_none() {
                out.push(Finding::new(
                    "lb-ip-target-client-ip-lost",
                    &s.annotation_at("service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"),
                    format!("Service {} uses an NLB with IP targets without preserve_client_ip.enabled=true or PROXY v2: the controller sees the NLB's address (externalTrafficPolicy does not matter here)", s.name),
                    format!("{} (see also: {})", crate::catalog::rule("lb-ip-target-client-ip-lost").fix, e.fix("proxy-protocol-mismatch", Some(s))),
                ));
            }
        } else if !kept {
            out.push(Finding::new(
                "ingress-etp-cluster",
                &s.etp_at,
                format!(
                    "{name} Service {} is {} with externalTrafficPolicy: {} and no PROXY protocol: the client IP is lost to SNAT",
                    s.name,
                    s.ty,
                    s.etp.as_deref().unwrap_or("Cluster (default)")
                ),
                e.fix("ingress-etp-cluster", Some(s)),
            ));
        }
        match (lb.proxy_protocol, ctrl_pp) {
            (Some(key), Some(p)) if p.value == Pp::Off => out.push(Finding::new(
                "proxy-protocol-mismatch",
                &s.annotation_at(key),
                format!("the load balancer of Service {} sends PROXY protocol ({key}) but {name} does not expect it ({} at {}:{})", s.name, p.key, p.at.file, p.at.line),
                e.fix("proxy-protocol-mismatch", Some(s)),
            )),
            (None, Some(p)) if p.value == Pp::Required => out.push(Finding::new(
                "proxy-protocol-mismatch",
                &s.annotations_at,
                format!("{name} requires PROXY protocol ({} at {}:{}) but Service {} has no load-balancer annotation that sends it", p.key, p.at.file, p.at.line, s.name),
                e.fix("proxy-protocol-mismatch", Some(s)),
            )),
            _ => {}
        }
        if let Some(key) = lb.proxy_protocol {
            let tolerant = ctrl_pp.is_some_and(|p| p.value == Pp::Optional);
            if !lb.hostname && !s.ip_mode_proxy && !tolerant && s.ty == "LoadBalancer" {
                out.push(Finding::new(
                    "hairpin-proxy-protocol",
                    &s.annotation_at(key),
                    format!("PROXY protocol is on ({key}) and in-cluster clients calling the load balancer's IP will bypass it"),
                    format!("{}, or call Service {} directly from inside the cluster", crate::cloud::hostname_fix(lb.cloud), s.name),
                ));
            }
        }
        if s.local() && s.ty == "LoadBalancer" && lb.target == Target::Node {
            if let Some(pinned) = &lb.pinned_health_check {
                let key = pinned.split(':').next().unwrap_or_default();
                out.push(Finding::new(
                    "healthcheck-traffic-port",
                    &s.annotation_at(key),
                    format!("externalTrafficPolicy: Local but the load balancer health check is pointed elsewhere ({pinned})"),
                    format!("remove {key} so the load balancer checks healthCheckNodePort"),
                ));
            }
        }
        if let (Some(at), Some(f)) = (&s.dual_stack, &e.forwarded) {
            if let Trust::Cidrs(cidrs) = &f.value {
                let fams: Vec<bool> = cidrs.iter().filter_map(|c| family_of(c)).collect();
                let (v4, v6) = (fams.contains(&true), fams.contains(&false));
                if !fams.is_empty() && v4 != v6 {
                    out.push(Finding::new(
                        "dual-stack-one-family-trusted",
                        at,
                        format!(
                            "Service {} is dual-stack but {} covers only {}",
                            s.name,
                            f.key,
                            if v4 { "IPv4" } else { "IPv6" }
                        ),
                        "add the load balancer's ranges of the other family".into(),
                    ));
                }
            }
        }
    }
    for f in e.forwarded.iter().chain(&e.proxy_from) {
        let is_pp = e.proxy_from.as_ref().is_some_and(|p| std::ptr::eq(p, f));
        match &f.value {
            Trust::Everyone if is_pp => out.push(Finding::new(
                "proxy-protocol-from-everyone",
                &f.at,
                format!("{name} {} accepts PROXY headers from every peer ({})", e.instance, f.key),
                e.fix("proxy-protocol-from-everyone", None),
            )),
            Trust::Everyone => out.push(Finding::new(
                "forwarded-headers-from-everyone",
                &f.at,
                format!("{name} {}: {}: any client can set its own IP", e.instance, f.key),
                e.fix("forwarded-headers-from-everyone", None),
            )),
            Trust::Cidrs(list) => {
                let bad: Vec<&String> = list.iter().filter(|c| !valid_cidr(c)).collect();
                if !bad.is_empty() {
                    out.push(Finding::new(
                        "trusted-cidr-invalid",
                        &f.at,
                        format!(
                            "{} holds {}, not CIDRs",
                            f.key,
                            bad.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", ")
                        ),
                        e.fix("trusted-cidr-invalid", None),
                    ));
                }
            }
            Trust::Nobody => {}
        }
    }
    if external_any {
        let expected = u32::from(l7_any);
        for h in &e.hops {
            if h.value < expected {
                out.push(
                    Finding::new(
                        "hops-mismatch",
                        &h.at,
                        format!("{} is {} behind an L7 load balancer: the client's address, added by the load balancer, is not reached and the load balancer is taken as the client", h.key, h.value),
                        e.fix("hops-mismatch", None),
                    )
                    .severity(Severity::Error),
                );
            } else if h.value > expected {
                out.push(Finding::new(
                    "hops-mismatch",
                    &h.at,
                    format!("{} is {} but the load balancer in front {}: the entry taken is one the client can write, unless a proxy not described here (a CDN) adds it", h.key, h.value, if l7_any { "adds 1" } else { "is L4 and adds none" }),
                    e.fix("hops-mismatch", None),
                ));
            }
        }
        let pp_on =
            ctrl_pp.is_some_and(|p| p.value != Pp::Off) && e.services.iter().any(|s| s.lb.proxy_protocol.is_some());
        let detects = pp_on
            || e.hops.iter().any(|h| h.value > 0 && !h.key.starts_with("Middleware"))
            || e.forwarded.as_ref().is_some_and(|f| f.value != Trust::Nobody);
        let peer_is_client = !l7_any && (any_local || pp_on);
        for k in &e.client_keyed {
            let known = if k.value { peer_is_client } else { peer_is_client || detects };
            if !known {
                out.push(Finding::new(
                    "client-policy-without-client-ip",
                    &k.at,
                    format!("{} keys on the client IP, but {name} {} does not know it (no client IP detection, {}): it keys on the load balancer or a node", k.key, e.instance, if l7_any { "an L7 load balancer in front" } else { "the Service does not keep the source" }),
                    e.fix("client-policy-without-client-ip", None),
                ));
            }
        }
    }
    for w in &e.workloads {
        if let Some(r) = w.replicas.as_ref().filter(|r| r.value < 2) {
            let why = if any_local {
                "with externalTrafficPolicy: Local only one node can serve"
            } else {
                "a rollout or node drain leaves no ready pod"
            };
            out.push(Finding::new(
                "ingress-single-replica",
                &r.at,
                format!("{name} runs {} replica ({}): {why}", r.value, r.key),
                e.fix("ingress-single-replica", None),
            ));
        }
        if w.replicas.as_ref().is_some_and(|r| r.value >= 2) && !w.spread {
            out.push(Finding::new(
                "ingress-no-spread",
                &w.spread_at,
                format!("{name} pods have no topologySpreadConstraints or podAntiAffinity on kubernetes.io/hostname"),
                e.fix("ingress-no-spread", None),
            ));
        }
        if !any_local {
            continue;
        }
        if w.kind != "DaemonSet" && !w.pdb {
            out.push(Finding::new(
                "ingress-no-pdb",
                &w.at,
                format!("no PodDisruptionBudget covers the {name} pods of {} {}/{}", w.kind, w.namespace, w.name),
                e.fix("ingress-no-pdb", None),
            ));
        }
        if let Some(m) = w.max_unavailable.as_ref().filter(|m| !matches!(m.value.as_str(), "0" | "0%")) {
            out.push(Finding::new(
                "rollout-max-unavailable",
                &m.at,
                format!(
                    "{} {} is {}: a node can lose its only {name} pod before the new one is ready",
                    w.kind, m.key, m.value
                ),
                e.fix("rollout-max-unavailable", None),
            ));
        }
        if !w.drains {
            out.push(Finding::new(
                "rollout-no-drain",
                &w.containers_at,
                format!("{name} pods have no preStop drain while the Service uses externalTrafficPolicy: Local"),
                e.fix("rollout-no-drain", None),
            ));
        }
        if let (grace, Some(wait)) = w.grace {
            if wait >= grace {
                out.push(Finding::new(
                    "grace-shorter-than-drain",
                    &w.grace_at,
                    format!("terminationGracePeriodSeconds ({grace}) is not longer than the preStop wait ({wait}s)"),
                    format!("set terminationGracePeriodSeconds above {wait} plus the longest request"),
                ));
            }
        }
    }
}

fn etp_without_effect(o: &Object, out: &mut Vec<Finding>) {
    let ty = o.doc.str_at(&["spec", "type"]).unwrap_or("ClusterIP");
    if !matches!(ty, "LoadBalancer" | "NodePort")
        && o.doc.str_at(&["spec", "externalTrafficPolicy"]).is_some_and(|e| !e.is_empty())
    {
        out.push(Finding::new(
            "etp-without-effect",
            &Place::of(o, &["spec", "externalTrafficPolicy"]),
            format!("externalTrafficPolicy is set on a {ty} Service, where it does nothing"),
            crate::catalog::rule("etp-without-effect").fix.into(),
        ));
    }
}

/// Kubelet probes never send a PROXY header: a probe on a port that
/// requires one always fails.
fn probe_on_proxy_port(ix: &Index, tomls: &[realip::Toml], out: &mut Vec<Finding>) {
    let ports = realip::proxy_required_ports(tomls);
    if ports.is_empty() {
        return;
    }
    for o in ix.workloads() {
        for c in model::containers(o) {
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                let Some(port) =
                    c.str_at(&[probe, "httpGet", "port"]).or_else(|| c.str_at(&[probe, "tcpSocket", "port"]))
                else {
                    continue;
                };
                if ports.iter().any(|(ns, p)| *ns == o.namespace && p == port) {
                    let line = c.get(probe).map_or(o.source.line, |n| n.line);
                    out.push(Finding::new(
                        "probe-on-proxy-port",
                        &Place { object: o.id(), file: o.source.file.clone(), line },
                        format!(
                            "{probe} of `{}` targets port {port}, where realip requires a PROXY header",
                            c.str_at(&["name"]).unwrap_or("?")
                        ),
                        crate::catalog::rule("probe-on-proxy-port").fix.into(),
                    ));
                }
            }
        }
    }
}

fn condition_true(o: &Object, ty: &str) -> bool {
    o.doc
        .at(&["status", "conditions"])
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .any(|c| c.str_at(&["type"]) == Some(ty) && c.str_at(&["status"]) == Some("True"))
}

/// Checks that need a live cluster: the allocated `healthCheckNodePort`,
/// and where the ready controller pods actually run.
pub fn check_live(objects: &[Object]) -> Vec<Finding> {
    let ix = Index::new(objects);
    let tomls = realip::configs(&ix);
    let edges = controllers::find_all(&ix, &tomls);
    let mut out = Vec::new();
    let nodes: Vec<&Object> = ix
        .kind("Node")
        .iter()
        .copied()
        .filter(|o| condition_true(o, "Ready") && o.doc.str_at(&["spec", "unschedulable"]) != Some("true"))
        .collect();
    for e in &edges {
        let svcs: Vec<&Object> = ix
            .kind("Service")
            .iter()
            .copied()
            .filter(|s| {
                e.members.contains(&s.id())
                    && s.doc.str_at(&["spec", "type"]) == Some("LoadBalancer")
                    && s.doc.str_at(&["spec", "externalTrafficPolicy"]) == Some("Local")
            })
            .collect();
        for s in &svcs {
            if s.doc.at(&["spec", "healthCheckNodePort"]).is_none() {
                out.push(Finding::new(
                    "local-no-healthcheck-port",
                    &Place::of(s, &["spec"]),
                    "externalTrafficPolicy: Local but the Service has no healthCheckNodePort".into(),
                    format!("kubectl get svc {} -n {} -o jsonpath='{{.spec.healthCheckNodePort}}' must print a port; recreate the Service as type LoadBalancer", s.name, s.namespace),
                ));
            }
        }
        let Some(svc) = svcs.first() else { continue };
        let mut per_node: Vec<(&str, u32)> = nodes.iter().map(|n| (n.name.as_str(), 0)).collect();
        for p in ix.kind("Pod").iter().filter(|p| {
            e.members.contains(&p.id())
                && p.doc.str_at(&["status", "phase"]) == Some("Running")
                && condition_true(p, "Ready")
        }) {
            if let Some(slot) = per_node.iter_mut().find(|(n, _)| Some(*n) == p.doc.str_at(&["spec", "nodeName"])) {
                slot.1 += 1;
            }
        }
        let empty: Vec<&str> = per_node.iter().filter(|(_, c)| *c == 0).map(|(n, _)| *n).collect();
        let served: Vec<u32> = per_node.iter().map(|(_, c)| *c).filter(|c| *c > 0).collect();
        let at = Place::of(svc, &["spec"]);
        if !empty.is_empty() && !served.is_empty() {
            out.push(Finding::new(
                "ingress-node-without-pod",
                &at,
                format!(
                    "{} of {} ready nodes have no ready {} pod: {}",
                    empty.len(),
                    per_node.len(),
                    e.controller.name(),
                    empty.join(", ")
                ),
                crate::catalog::rule("ingress-node-without-pod").fix.into(),
            ));
        }
        // Per-node balancing: each serving node gets 1/k of the traffic, split
        // among its pods; shares differ when pods are unevenly placed.
        if let (Some(&most), Some(&least)) = (served.iter().max(), served.iter().min()) {
            if most > least {
                let k = f64::from(u32::try_from(served.len()).unwrap_or(u32::MAX));
                let (big, small) = (100.0 / (k * f64::from(least)), 100.0 / (k * f64::from(most)));
                out.push(Finding::new(
                    "ingress-uneven-spread",
                    &at,
                    format!("{} pods per node range from {least} to {most}: under per-node balancing a pod gets between {small:.0}% and {big:.0}% of the traffic", e.controller.name()),
                    crate::catalog::rule("ingress-uneven-spread").fix.into(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod cidr_tests {
    use super::valid_cidr;

    #[test]
    fn cidr_lengths_are_digits_only() {
        for ok in ["203.0.113.0/24", "203.0.113.7", "2001:db8::/64", "0.0.0.0/0"] {
            assert!(valid_cidr(ok), "{ok}");
        }
        for bad in ["203.0.113.0/+24", "203.0.113.0/", "203.0.113.0/33", "2001:db8::/+64", "x/24"] {
            assert!(!valid_cidr(bad), "{bad}");
        }
    }
}
