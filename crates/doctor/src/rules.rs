//! Rules over manifests. Each rule has an id, a severity, and says why and
//! how to fix; `docs/doctor.md` lists them with bad and fixed examples.
//!
//! The ingress is recognised by the labels ingress-nginx and realip put on
//! their objects (`app.kubernetes.io/name: ingress-nginx|realip`), its
//! controller config by its keys (`use-forwarded-headers`,
//! `use-proxy-protocol`, ...).

use realip_kube::{Node, Object};

use crate::finding::{Finding, Severity};

/// Cloud annotations that turn PROXY protocol on at the load balancer,
/// with the value that means "on" (`None`: any non-empty value).
pub const PROXY_ANNOTATIONS: &[(&str, Option<&str>)] = &[
    ("service.beta.kubernetes.io/aws-load-balancer-proxy-protocol", Some("*")),
    ("service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol", Some("true")),
    ("load-balancer.hetzner.cloud/uses-proxyprotocol", Some("true")),
    ("service.beta.kubernetes.io/linode-loadbalancer-proxy-protocol", None),
    ("service.beta.kubernetes.io/scw-loadbalancer-proxy-protocol-v2", Some("true")),
    ("service.beta.kubernetes.io/ovh-loadbalancer-proxy-protocol", None),
    ("service.beta.kubernetes.io/azure-pls-proxy-protocol", Some("true")),
];

const INGRESS_NAMES: &[&str] = &["ingress-nginx", "realip"];

/// Whether `o` carries the labels ingress-nginx and realip put on their objects.
pub fn labelled_ingress(o: &Object) -> bool {
    o.label("app.kubernetes.io/name").is_some_and(|n| INGRESS_NAMES.contains(&n))
        || o.name.contains("ingress-nginx-controller")
}

/// The ingress controller's objects: labelled ones, workloads whose
/// controller an IngressClass names (`--controller-class=...`), and the
/// Services that select those workloads' pods.
#[derive(Debug, Default)]
pub struct Ingresses(std::collections::HashSet<String>);

impl Ingresses {
    /// Finds them among `objects`.
    pub fn find(objects: &[Object]) -> Ingresses {
        let classes: Vec<&str> = objects
            .iter()
            .filter(|o| o.kind == "IngressClass")
            .filter_map(|o| o.doc.str_at(&["spec", "controller"]))
            .collect();
        let mut ids = std::collections::HashSet::new();
        let workloads: Vec<&Object> = objects
            .iter()
            .filter(|o| matches!(o.kind.as_str(), "Deployment" | "DaemonSet"))
            .filter(|o| {
                containers(o).iter().any(|c| {
                    let argv: Vec<&str> = words(c.get("command")).into_iter().chain(words(c.get("args"))).collect();
                    argv.iter().any(|a| a.strip_prefix("--controller-class=").is_some_and(|v| classes.contains(&v)))
                })
            })
            .collect();
        for w in &workloads {
            ids.insert(w.id());
            let labels = w.doc.at(&["spec", "template", "metadata", "labels"]);
            for s in
                objects.iter().filter(|s| s.kind == "Service" && s.namespace == w.namespace && selected_by(s, labels))
            {
                ids.insert(s.id());
            }
            let Some(template) = labels.filter(|t| !t.entries().is_empty()) else { continue };
            for p in objects.iter().filter(|p| p.kind == "Pod" && p.namespace == w.namespace) {
                if labels_match(template, p.doc.at(&["metadata", "labels"])) {
                    ids.insert(p.id());
                }
            }
        }
        Ingresses(ids)
    }

    /// Whether `o` belongs to an ingress controller.
    pub fn contains(&self, o: &Object) -> bool {
        labelled_ingress(o) || self.0.contains(&o.id())
    }
}

/// Whether the Service's annotations turn PROXY protocol on.
pub fn proxy_annotation(o: &Object) -> Option<&'static str> {
    proxy_annotation_in(o.doc.at(&["metadata", "annotations"]))
}

/// The PROXY-enabling annotation among `annotations` (a Service's, or
/// `controller.service.annotations` of chart values).
pub fn proxy_annotation_in(annotations: Option<&Node>) -> Option<&'static str> {
    PROXY_ANNOTATIONS.iter().find_map(|(key, on)| {
        let v = annotations?.str_at(&[key])?;
        let enabled = match on {
            Some(want) => v.eq_ignore_ascii_case(want),
            None => !v.is_empty() && v != "false" && v != "none",
        };
        enabled.then_some(*key)
    })
}

fn finding(
    o: &Object,
    path: &[&str],
    rule: &'static str,
    severity: Severity,
    message: String,
    why: &'static str,
    fix: String,
) -> Finding {
    Finding { rule, severity, object: o.id(), file: o.source.file.clone(), line: o.line_of(path), message, why, fix }
}

fn service_type(o: &Object) -> &str {
    o.doc.str_at(&["spec", "type"]).unwrap_or("ClusterIP")
}

/// The ingress controller's ConfigMap (ingress-nginx keys).
fn controller_config(objects: &[Object]) -> Option<&Object> {
    objects.iter().find(|o| {
        o.kind == "ConfigMap"
            && o.doc.get("data").is_some_and(|d| {
                ["use-forwarded-headers", "use-proxy-protocol", "proxy-real-ip-cidr", "enable-real-ip"]
                    .iter()
                    .any(|k| d.get(k).is_some())
            })
    })
}

fn trusts_everyone(cidrs: Option<&str>) -> bool {
    cidrs.is_none_or(|c| c.split(',').map(str::trim).any(|c| c == "0.0.0.0/0" || c == "::/0" || c.is_empty()))
}

/// Runs every manifest rule.
pub fn check(objects: &[Object]) -> Vec<Finding> {
    let mut out = Vec::new();
    let config = controller_config(objects);
    // With the controller's ConfigMap present, an absent key is its default: off.
    // (accepts PROXY, requires PROXY), from ingress-nginx or realip config.
    let config_pp = config
        .map(|c| c.doc.str_at(&["data", "use-proxy-protocol"]) == Some("true"))
        .map(|on| (on, on))
        .or_else(|| realip_proxy_protocol(objects));
    let cilium_keeps_source = cilium_rules(objects, &mut out);
    let ing = Ingresses::find(objects);
    let trusted_cidrs = config.and_then(|c| c.doc.str_at(&["data", "proxy-real-ip-cidr"]));
    out.extend(check_probe_ports(objects));
    for o in objects {
        match o.kind.as_str() {
            "Service" => {
                if !cilium_keeps_source {
                    service_rules(o, config_pp, &ing, &mut out);
                } else if o.doc.str_at(&["spec", "externalTrafficPolicy"]).is_some()
                    && !matches!(service_type(o), "LoadBalancer" | "NodePort")
                {
                    service_rules(o, config_pp, &ing, &mut out); // etp-without-effect still holds
                }
                if ing.contains(o) {
                    hairpin_rule(o, &mut out);
                    dual_stack_rule(o, trusted_cidrs, &mut out);
                }
            }
            "ConfigMap" => configmap_rules(o, &mut out),
            "Deployment" | "DaemonSet" | "StatefulSet" => workload_rules(o, objects, &ing, &mut out),
            _ => {}
        }
    }
    out
}

fn service_rules(o: &Object, config_pp: Option<(bool, bool)>, ing: &Ingresses, out: &mut Vec<Finding>) {
    let ty = service_type(o);
    let etp = o.doc.str_at(&["spec", "externalTrafficPolicy"]).filter(|e| !e.is_empty());
    let external = ty == "LoadBalancer" || ty == "NodePort";
    if !external && etp.is_some() {
        out.push(finding(
            o,
            &["spec", "externalTrafficPolicy"],
            "etp-without-effect",
            Severity::Warning,
            format!("externalTrafficPolicy is set on a {ty} Service, where it does nothing"),
            "externalTrafficPolicy only applies to traffic entering through a NodePort or LoadBalancer; the \
             client IP is decided at the ingress Service, not at the app's ClusterIP Service.",
            "set `externalTrafficPolicy: Local` on the ingress controller's LoadBalancer Service instead".into(),
        ));
    }
    if !(external && ing.contains(o)) {
        return;
    }
    let pp = proxy_annotation(o);
    if etp != Some("Local") && pp.is_none() {
        out.push(finding(
            o,
            &["spec", "externalTrafficPolicy"],
            "ingress-etp-cluster",
            Severity::Error,
            format!("ingress Service is {ty} with externalTrafficPolicy: {} and no PROXY protocol: the client IP is lost to SNAT", etp.unwrap_or("Cluster (default)")),
            "With Cluster, kube-proxy may forward to a pod on another node and masquerades the source: the ingress \
             sees a node address, so logs, rate limits and allowlists act on the node.",
            format!("kubectl patch svc {} -n {} -p '{{\"spec\":{{\"externalTrafficPolicy\":\"Local\"}}}}'", o.name, o.namespace),
        ));
    }
    match (pp, config_pp) {
        (Some(key), Some((false, _))) => out.push(finding(
            o,
            &["metadata", "annotations"],
            "proxy-protocol-mismatch",
            Severity::Error,
            format!("the load balancer sends PROXY protocol ({key}) but the ingress does not expect it (use-proxy-protocol is not \"true\")"),
            "The ingress reads the PROXY header as the start of an HTTP request and answers 400 to every connection.",
            "set `use-proxy-protocol: \"true\"` in the controller ConfigMap (Helm: --set-string controller.config.use-proxy-protocol=true)".into(),
        )),
        (None, Some((_, true))) => out.push(finding(
            o,
            &["metadata", "annotations"],
            "proxy-protocol-mismatch",
            Severity::Error,
            "the ingress expects PROXY protocol (use-proxy-protocol: \"true\") but the Service has no load-balancer annotation that sends it".into(),
            "The ingress waits for a PROXY header that never comes: every request fails.",
            "add the cloud's PROXY annotation (e.g. service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: \"*\") or turn use-proxy-protocol off".into(),
        )),
        _ => {}
    }
    if etp == Some("Local") && o.doc.at(&["spec", "healthCheckNodePort"]).is_none() && ty == "LoadBalancer" {
        // Kubernetes allocates one; only worth noting when the LB is told to check the traffic port.
        let traffic_port_checks = [
            ("service.beta.kubernetes.io/aws-load-balancer-healthcheck-port", "traffic-port"),
            ("service.beta.kubernetes.io/do-loadbalancer-healthcheck-port", ""),
            ("service.beta.kubernetes.io/azure-load-balancer-health-probe-port", ""),
            // Scaleway: "auto" means healthCheckNodePort, anything else pins a port.
            ("service.beta.kubernetes.io/scw-loadbalancer-health-check-port", ""),
        ];
        let hit = traffic_port_checks.iter().find_map(|(k, v)| {
            o.annotation(k)
                .filter(|a| if v.is_empty() { !a.is_empty() && !a.contains("auto") } else { a == v })
                .map(|a| format!("{k}: {a}"))
        });
        if let Some(a) = hit {
            out.push(finding(
                o,
                &["metadata", "annotations"],
                "healthcheck-traffic-port",
                Severity::Warning,
                format!("externalTrafficPolicy: Local but the load balancer health check is pointed elsewhere ({a})"),
                "With Local, nodes without a ready ingress pod drop traffic; only healthCheckNodePort tells the load \
                 balancer which nodes those are. Checking another port keeps sending traffic to them.",
                "remove the health-check port annotation so the load balancer uses healthCheckNodePort".into(),
            ));
        }
    }
}

fn configmap_rules(o: &Object, out: &mut Vec<Finding>) {
    let Some(data) = o.doc.get("data") else { return };
    for flag in ["use-forwarded-headers", "enable-real-ip"] {
        if data.str_at(&[flag]) != Some("true") {
            continue;
        }
        let cidr = data.str_at(&["proxy-real-ip-cidr"]);
        if trusts_everyone(cidr) {
            out.push(finding(
                o,
                &["data", flag],
                "forwarded-headers-from-everyone",
                Severity::Error,
                format!("{flag}: \"true\" with proxy-real-ip-cidr {}: any client can set its own IP", cidr.map_or("unset (defaults to 0.0.0.0/0)".to_owned(), |c| format!("`{c}`"))),
                "ingress-nginx then believes X-Forwarded-For from every peer: a client sends `X-Forwarded-For: 1.2.3.4` \
                 and becomes 1.2.3.4 in logs, rate limits and allowlists.",
                "set `proxy-real-ip-cidr` to the load balancer / CDN ranges only (Helm: --set-string controller.config.proxy-real-ip-cidr=10.0.0.0/8)".into(),
            ));
        }
    }
    for (key, value) in data.entries() {
        let Some(text) = value.as_str() else { continue };
        if text.contains("[client_ip]") && realip_trusts_everyone(text) {
            out.push(finding(
                o,
                &["data", key],
                "forwarded-headers-from-everyone",
                Severity::Error,
                format!("realip config `{key}` trusts 0.0.0.0/0 or ::/0 in [client_ip]"),
                "Every peer is then a trusted proxy: the leftmost X-Forwarded-For entry, which any client writes, wins.",
                "list only the load balancer / CDN ranges in [client_ip] trusted".into(),
            ));
        }
    }
}

fn realip_trusts_everyone(toml: &str) -> bool {
    toml.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("trusted"))
        .any(|l| l.contains("\"0.0.0.0/0\"") || l.contains("\"::/0\""))
}

fn containers(o: &Object) -> &[Node] {
    o.doc.at(&["spec", "template", "spec", "containers"]).map(Node::items).unwrap_or_default()
}

fn words(n: Option<&Node>) -> Vec<&str> {
    n.map(|n| n.items().iter().filter_map(Node::as_str).collect()).unwrap_or_default()
}

/// Whether every `key: value` of a `matchLabels`-style map is among `labels`.
fn labels_match(selector: &Node, labels: Option<&Node>) -> bool {
    selector.entries().iter().all(|(k, v)| labels.and_then(|l| l.str_at(&[k])) == v.as_str())
}

/// Whether a Service selects pods with `pod_labels` (an empty selector
/// selects nothing: such Services have hand-made endpoints).
fn selected_by(svc: &Object, pod_labels: Option<&Node>) -> bool {
    svc.doc.at(&["spec", "selector"]).is_some_and(|sel| !sel.entries().is_empty() && labels_match(sel, pod_labels))
}

fn workload_rules(o: &Object, objects: &[Object], ing: &Ingresses, out: &mut Vec<Finding>) {
    app_trust_rule(o, objects, out);
    if ing.contains(o) {
        ingress_workload_rules(o, objects, ing, out);
    }
}

/// App trust: uvicorn/gunicorn/hypercorn `--forwarded-allow-ips="*"`.
fn app_trust_rule(o: &Object, objects: &[Object], out: &mut Vec<Finding>) {
    let pod_labels = o.doc.at(&["spec", "template", "metadata", "labels"]);
    for c in containers(o) {
        let argv: Vec<&str> = words(c.get("command")).into_iter().chain(words(c.get("args"))).collect();
        let star_arg = argv.iter().enumerate().any(|(i, a)| {
            a.strip_prefix("--forwarded-allow-ips=").is_some_and(|v| v.trim_matches(['"', '\'']) == "*")
                || (*a == "--forwarded-allow-ips"
                    && argv.get(i + 1).is_some_and(|v| v.trim_matches(['"', '\'']) == "*"))
        });
        let star_env = c.get("env").map(Node::items).unwrap_or_default().iter().any(|e| {
            e.str_at(&["name"]) == Some("FORWARDED_ALLOW_IPS") && e.str_at(&["value"]).map(str::trim) == Some("*")
        });
        let uvicorn = argv.iter().any(|a| a.ends_with("uvicorn") || a.contains("uvicorn.workers"));
        let allow_set = argv.iter().any(|a| a.starts_with("--forwarded-allow-ips"))
            || c.get("env")
                .map(Node::items)
                .unwrap_or_default()
                .iter()
                .any(|e| e.str_at(&["name"]) == Some("FORWARDED_ALLOW_IPS"));
        if uvicorn && (argv.contains(&"--no-proxy-headers") || !allow_set) {
            out.push(finding(
                o,
                &["spec", "template", "spec", "containers"],
                "app-ignores-forwarded-headers",
                Severity::Warning,
                format!(
                    "container `{}` runs uvicorn {}: behind the ingress, request.client.host is the ingress pod",
                    c.str_at(&["name"]).unwrap_or("?"),
                    if argv.contains(&"--no-proxy-headers") { "with --no-proxy-headers" } else { "without --forwarded-allow-ips (it trusts only 127.0.0.1)" }
                ),
                "uvicorn reads X-Forwarded-For only from --forwarded-allow-ips (default 127.0.0.1); the ingress connects from its pod IP, so the app logs and limits the ingress, not the client.",
                "--proxy-headers --forwarded-allow-ips=<ingress pod CIDR> (the seed guide: \"10.0.0.0/8,127.0.0.1\")".into(),
            ));
        }
        if (star_arg || star_env) && only_ingress_may_reach(o, objects) {
            continue; // `*` is then what the seed guide allows
        }
        if star_arg || star_env {
            let exposed = objects.iter().any(|s| {
                s.kind == "Service"
                    && s.namespace == o.namespace
                    && matches!(service_type(s), "NodePort" | "LoadBalancer")
                    && selected_by(s, pod_labels)
            });
            out.push(finding(
                o,
                &["spec", "template", "spec", "containers"],
                "app-trusts-every-proxy",
                if exposed { Severity::Error } else { Severity::Warning },
                format!(
                    "container `{}` runs with --forwarded-allow-ips=\"*\"{}",
                    c.str_at(&["name"]).unwrap_or("?"),
                    if exposed {
                        " and is reachable from outside the cluster (NodePort/LoadBalancer Service)"
                    } else {
                        ""
                    }
                ),
                "With `*` uvicorn takes the leftmost X-Forwarded-For entry, which any client writes; it is only safe \
                 when nothing but the ingress can reach the app.",
                "--forwarded-allow-ips=<ingress pod CIDR> (the seed guide uses \"10.0.0.0/8,127.0.0.1\")".into(),
            ));
        }
    }
}

fn ingress_workload_rules(o: &Object, objects: &[Object], ing: &Ingresses, out: &mut Vec<Finding>) {
    let local = objects.iter().any(|s| {
        s.kind == "Service" && ing.contains(s) && s.doc.str_at(&["spec", "externalTrafficPolicy"]) == Some("Local")
    });
    if o.kind == "Deployment" {
        let replicas: u32 = o.doc.str_at(&["spec", "replicas"]).and_then(|r| r.parse().ok()).unwrap_or(1);
        if replicas < 2 {
            out.push(finding(
                o,
                &["spec", "replicas"],
                "ingress-single-replica",
                Severity::Warning,
                format!("ingress runs {replicas} replica: with externalTrafficPolicy: Local only one node can serve"),
                "Local sends traffic only to nodes with a ready ingress pod; one replica is one node, and a rollout \
                 or node drain leaves none.",
                format!(
                    "kubectl scale deploy {} -n {} --replicas=3 (Helm: --set controller.replicaCount=3)",
                    o.name, o.namespace
                ),
            ));
        }
        let spec = o.doc.at(&["spec", "template", "spec"]);
        let spread = spec
            .and_then(|s| s.get("topologySpreadConstraints"))
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .any(|c| c.str_at(&["topologyKey"]) == Some("kubernetes.io/hostname"));
        let anti = spec.and_then(|s| s.at(&["affinity", "podAntiAffinity"])).is_some_and(|a| {
            a.entries().iter().flat_map(|(_, v)| v.items()).any(|t| {
                t.str_at(&["topologyKey"]) == Some("kubernetes.io/hostname")
                    || t.str_at(&["podAffinityTerm", "topologyKey"]) == Some("kubernetes.io/hostname")
            })
        });
        if replicas >= 2 && !spread && !anti {
            out.push(finding(
                o,
                &["spec", "template", "spec"],
                "ingress-no-spread",
                Severity::Warning,
                "ingress pods have no topologySpreadConstraints or podAntiAffinity on kubernetes.io/hostname".into(),
                "With Local, traffic per node follows pod placement: pods packed on one node leave other nodes \
                 without an endpoint and make the spread uneven.",
                "add topologySpreadConstraints: [{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: ...}]".into(),
            ));
        }
    }
    if local {
        ingress_rollout_rules(o, objects, out);
        let drains =
            containers(o).iter().any(|c| c.at(&["lifecycle", "preStop"]).is_some()) || realip_drains_itself(o, objects);
        if !drains {
            out.push(finding(
                o,
                &["spec", "template", "spec", "containers"],
                "rollout-no-drain",
                Severity::Warning,
                "ingress pods have no preStop drain while the Service uses externalTrafficPolicy: Local".into(),
                "During a rollout a node can lose its only ingress pod before the load balancer's health check \
                 notices: connections to that node fail until it does.",
                "add a preStop that waits longer than the load balancer's health-check interval × unhealthy threshold, and a terminationGracePeriodSeconds above it".into(),
            ));
        }
    }
}

/// Cilium: with kube-proxy replacement in DSR/hybrid mode, or Cilium's own
/// ingress, the client IP survives without `externalTrafficPolicy: Local`
/// (the seed guide's exception), so the Local rule is replaced by a
/// reminder to validate. Returns whether the Local rule should be skipped.
fn cilium_rules(objects: &[Object], out: &mut Vec<Finding>) -> bool {
    let config = objects.iter().find(|o| o.kind == "ConfigMap" && o.name == "cilium-config");
    let kpr = config
        .and_then(|c| c.doc.str_at(&["data", "kube-proxy-replacement"]))
        .is_some_and(|v| matches!(v, "true" | "strict"));
    let lb_mode = config.and_then(|c| c.doc.str_at(&["data", "bpf-lb-mode"])).unwrap_or("snat");
    let ingress_class = objects.iter().find(|o| {
        o.kind == "IngressClass" && o.doc.str_at(&["spec", "controller"]) == Some("cilium.io/ingress-controller")
    });
    let keeps = ingress_class.is_some() || kpr && matches!(lb_mode, "dsr" | "hybrid");
    if let (Some(c), true) = (config.or(ingress_class), keeps) {
        out.push(finding(
            c,
            &["data"],
            "cilium-validate",
            Severity::Warning,
            format!(
                "Cilium {} keeps the client IP without externalTrafficPolicy: Local: the Local checks are skipped",
                if ingress_class.is_some() { "ingress" } else { "kube-proxy replacement in DSR mode" }
            ),
            "The usual Local advice assumes kube-proxy; with Cilium the source IP path is different and must be validated as Cilium documents it.",
            "verify with `realip doctor --probe http://<lb>/debug/ip --expect-client <your IP>`".into(),
        ));
    }
    keeps
}

/// In-cluster clients that call the load balancer's address are usually
/// short-circuited by kube-proxy to the ingress pods, skipping the load
/// balancer and its PROXY header, which the ingress then requires.
fn hairpin_rule(o: &Object, out: &mut Vec<Finding>) {
    let Some(key) = proxy_annotation(o) else { return };
    let ip_mode_proxy = o
        .doc
        .at(&["status", "loadBalancer", "ingress"])
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .any(|i| i.str_at(&["ipMode"]) == Some("Proxy"));
    let hostname = o
        .doc
        .at(&["metadata", "annotations"])
        .is_some_and(|a| a.entries().iter().any(|(k, _)| k.ends_with("loadbalancer-hostname")));
    if !ip_mode_proxy && !hostname {
        out.push(finding(
            o,
            &["metadata", "annotations"],
            "hairpin-proxy-protocol",
            Severity::Warning,
            format!("PROXY protocol is on ({key}) and in-cluster clients calling the load balancer's IP will bypass it"),
            "kube-proxy routes traffic for a LoadBalancer IP from inside the cluster straight to the pods: those \
             connections arrive without the PROXY header the ingress requires, and fail.",
            "use the load balancer's hostname annotation (e.g. service.beta.kubernetes.io/do-loadbalancer-hostname) or ipMode: Proxy, or call the ingress Service directly from inside".into(),
        ));
    }
}

/// A dual-stack ingress whose trusted proxy CIDRs cover one family only.
fn dual_stack_rule(o: &Object, trusted: Option<&str>, out: &mut Vec<Finding>) {
    let families: Vec<&str> = o
        .doc
        .at(&["spec", "ipFamilies"])
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .filter_map(Node::as_str)
        .collect();
    let dual = families.len() > 1
        || matches!(o.doc.str_at(&["spec", "ipFamilyPolicy"]), Some("RequireDualStack" | "PreferDualStack"));
    let Some(cidrs) = trusted.filter(|_| dual) else { return };
    let (v4, v6) =
        cidrs.split(',').map(str::trim).fold((false, false), |(a, b), c| (a || c.contains('.'), b || c.contains(':')));
    if v4 != v6 {
        out.push(finding(
            o,
            &["spec", "ipFamilies"],
            "dual-stack-one-family-trusted",
            Severity::Warning,
            format!("the ingress Service is dual-stack but proxy-real-ip-cidr `{cidrs}` covers only {}", if v4 { "IPv4" } else { "IPv6" }),
            "Requests arriving over the other family come through proxies that are not trusted: their forwarded headers are ignored and the proxy's address is logged as the client.",
            "add the load balancer's ranges of the other family to proxy-real-ip-cidr".into(),
        ));
    }
}

fn pdb_covers(pdb: &Object, pod_labels: Option<&Node>) -> bool {
    pdb.doc
        .at(&["spec", "selector", "matchLabels"])
        .is_some_and(|sel| !sel.entries().is_empty() && labels_match(sel, pod_labels))
}

/// Rollout safety of the ingress under `Local`: a PodDisruptionBudget,
/// `maxUnavailable: 0`, and a grace period longer than the preStop wait.
fn ingress_rollout_rules(o: &Object, objects: &[Object], out: &mut Vec<Finding>) {
    let pod_labels = o.doc.at(&["spec", "template", "metadata", "labels"]);
    if !objects
        .iter()
        .any(|p| p.kind == "PodDisruptionBudget" && p.namespace == o.namespace && pdb_covers(p, pod_labels))
    {
        out.push(finding(
            o,
            &["metadata"],
            "ingress-no-pdb",
            Severity::Warning,
            "no PodDisruptionBudget covers the ingress pods".into(),
            "Node drains can evict every ingress pod of a node (or of the cluster) at once; with Local, nodes without a pod drop traffic.",
            format!(
                "kubectl create pdb {}-pdb -n {} --selector=app.kubernetes.io/name={} --max-unavailable=1",
                o.name,
                o.namespace,
                o.label("app.kubernetes.io/name").unwrap_or("ingress-nginx")
            ),
        ));
    }
    if o.kind == "Deployment" {
        let max_unavailable =
            o.doc.str_at(&["spec", "strategy", "rollingUpdate", "maxUnavailable"]).unwrap_or("25% (default)");
        if !matches!(max_unavailable, "0" | "0%") && o.doc.str_at(&["spec", "strategy", "type"]) != Some("Recreate") {
            out.push(finding(
                o,
                &["spec", "strategy"],
                "rollout-max-unavailable",
                Severity::Warning,
                format!("rolling update maxUnavailable is {max_unavailable}: a node can lose its only ingress pod before the new one is ready"),
                "With Local, a node without a ready ingress pod drops the traffic the load balancer still sends it.",
                "strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}".into(),
            ));
        }
    }
    let grace: u64 = o
        .doc
        .str_at(&["spec", "template", "spec", "terminationGracePeriodSeconds"])
        .and_then(|g| g.parse().ok())
        .unwrap_or(30);
    for c in containers(o) {
        let cmd = words(c.at(&["lifecycle", "preStop", "exec", "command"]));
        let wait = cmd
            .iter()
            .flat_map(|w| w.split_whitespace())
            .skip_while(|w| *w != "sleep")
            .nth(1)
            .and_then(|n| n.trim_end_matches(';').parse::<u64>().ok());
        if let Some(wait) = wait.filter(|w| *w >= grace) {
            out.push(finding(
                o,
                &["spec", "template", "spec", "terminationGracePeriodSeconds"],
                "grace-shorter-than-drain",
                Severity::Warning,
                format!("terminationGracePeriodSeconds ({grace}) is not longer than the preStop wait ({wait}s)"),
                "The kubelet kills the pod when the grace period ends: the drain is cut and in-flight requests fail.",
                format!("set terminationGracePeriodSeconds above {wait} plus the longest request"),
            ));
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
/// and where the ready ingress pods actually run.
pub fn check_live(objects: &[Object]) -> Vec<Finding> {
    let mut out = Vec::new();
    let ing = Ingresses::find(objects);
    let ingress_svcs: Vec<&Object> = objects
        .iter()
        .filter(|o| {
            o.kind == "Service"
                && ing.contains(o)
                && service_type(o) == "LoadBalancer"
                && o.doc.str_at(&["spec", "externalTrafficPolicy"]) == Some("Local")
        })
        .collect();
    for s in &ingress_svcs {
        if s.doc.at(&["spec", "healthCheckNodePort"]).is_none() {
            out.push(finding(
                s,
                &["spec"],
                "local-no-healthcheck-port",
                Severity::Error,
                "externalTrafficPolicy: Local but the Service has no healthCheckNodePort".into(),
                "Without it the load balancer cannot tell which nodes have a ready ingress pod, and sends traffic to nodes that drop it.",
                format!("kubectl get svc {} -n {} -o jsonpath='{{.spec.healthCheckNodePort}}' must print a port; recreate the Service as type LoadBalancer", s.name, s.namespace),
            ));
        }
    }
    let Some(svc) = ingress_svcs.first() else { return out };
    let nodes: Vec<&Object> = objects
        .iter()
        .filter(|o| {
            o.kind == "Node" && condition_true(o, "Ready") && o.doc.str_at(&["spec", "unschedulable"]) != Some("true")
        })
        .collect();
    let mut per_node: Vec<(&str, u32)> = nodes.iter().map(|n| (n.name.as_str(), 0)).collect();
    for p in objects.iter().filter(|o| {
        o.kind == "Pod"
            && ing.contains(o)
            && o.doc.str_at(&["status", "phase"]) == Some("Running")
            && condition_true(o, "Ready")
    }) {
        if let Some(slot) = per_node.iter_mut().find(|(n, _)| Some(*n) == p.doc.str_at(&["spec", "nodeName"])) {
            slot.1 += 1;
        }
    }
    let empty: Vec<&str> = per_node.iter().filter(|(_, c)| *c == 0).map(|(n, _)| *n).collect();
    let served: Vec<u32> = per_node.iter().map(|(_, c)| *c).filter(|c| *c > 0).collect();
    if !empty.is_empty() && !served.is_empty() {
        out.push(finding(
            svc,
            &["spec"],
            "ingress-node-without-pod",
            Severity::Warning,
            format!("{} of {} ready nodes have no ready ingress pod: {}", empty.len(), per_node.len(), empty.join(", ")),
            "With Local only nodes with a ready ingress pod serve; the load balancer must skip the others (health check) and the rest carry all traffic.",
            "spread the ingress over all nodes (topologySpreadConstraints, more replicas) or run it as a DaemonSet".into(),
        ));
    }
    // Per-node balancing: each serving node gets 1/k of the traffic, split
    // among its pods; shares differ when pods are unevenly placed.
    if let (Some(&most), Some(&least)) = (served.iter().max(), served.iter().min()) {
        if most > least {
            let k = f64::from(u32::try_from(served.len()).unwrap_or(u32::MAX));
            let (big, small) = (100.0 / (k * f64::from(least)), 100.0 / (k * f64::from(most)));
            out.push(finding(
                svc,
                &["spec"],
                "ingress-uneven-spread",
                Severity::Warning,
                format!("ingress pods per node range from {least} to {most}: under per-node balancing a pod gets between {small:.0}% and {big:.0}% of the traffic"),
                "The load balancer balances nodes, not pods: a node with one pod gives that pod as much traffic as a node with several gives all of its pods together.",
                "spread ingress pods evenly (maxSkew: 1 on kubernetes.io/hostname) or use a DaemonSet".into(),
            ));
        }
    }
    out
}

/// Whether a NetworkPolicy in the workload's namespace selects its pods and
/// admits traffic only from ingress controller pods.
fn only_ingress_may_reach(o: &Object, objects: &[Object]) -> bool {
    let pod_labels = o.doc.at(&["spec", "template", "metadata", "labels"]);
    objects.iter().filter(|p| p.kind == "NetworkPolicy" && p.namespace == o.namespace).any(|p| {
        let selects =
            p.doc.at(&["spec", "podSelector", "matchLabels"]).is_some_and(|sel| labels_match(sel, pod_labels));
        let rules = p.doc.at(&["spec", "ingress"]).map(Node::items).unwrap_or_default();
        let from_ingress_only = !rules.is_empty()
            && rules.iter().all(|r| {
                let from = r.get("from").map(Node::items).unwrap_or_default();
                !from.is_empty()
                    && from.iter().all(|f| {
                        let pods =
                            f.at(&["podSelector", "matchLabels"]).and_then(|m| m.str_at(&["app.kubernetes.io/name"]));
                        let ns = f
                            .at(&["namespaceSelector", "matchLabels"])
                            .and_then(|m| m.str_at(&["kubernetes.io/metadata.name"]));
                        pods.is_some_and(|n| INGRESS_NAMES.contains(&n)) || ns.is_some_and(|n| n.contains("ingress"))
                    })
            });
        selects && from_ingress_only
    })
}

/// Ports of realip proxy listeners that require PROXY, from ConfigMaps
/// holding a realip.toml.
fn proxy_required_ports(objects: &[Object]) -> Vec<String> {
    let mut ports = Vec::new();
    for c in objects.iter().filter(|o| o.kind == "ConfigMap") {
        for (_, v) in c.doc.get("data").map(Node::entries).unwrap_or_default() {
            let Some(text) = v.as_str().filter(|t| t.contains("[[listener]]")) else { continue };
            for block in text.split("[[listener]]").skip(1) {
                let block = block.split("\n[").next().unwrap_or_default();
                let required = block.lines().any(|l| l.replace(' ', "") == "proxy_protocol=\"required\"");
                let port = block
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("bind"))
                    .and_then(|b| b.rsplit(':').next())
                    .map(|p| p.trim_matches(|c: char| !c.is_ascii_digit()).to_owned());
                if let (true, Some(p)) = (required, port) {
                    ports.push(p);
                }
            }
        }
    }
    ports
}

/// Kubelet probes never send a PROXY header: a probe on a port that
/// requires one always fails.
fn check_probe_ports(objects: &[Object]) -> Vec<Finding> {
    let ports = proxy_required_ports(objects);
    let mut out = Vec::new();
    if ports.is_empty() {
        return out;
    }
    for o in objects.iter().filter(|o| matches!(o.kind.as_str(), "Deployment" | "DaemonSet")) {
        for c in containers(o) {
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                let Some(port) =
                    c.str_at(&[probe, "httpGet", "port"]).or_else(|| c.str_at(&[probe, "tcpSocket", "port"]))
                else {
                    continue;
                };
                if ports.iter().any(|p| p == port) {
                    out.push(finding(
                        o,
                        &["spec", "template", "spec", "containers"],
                        "probe-on-proxy-port",
                        Severity::Error,
                        format!(
                            "{probe} of `{}` targets port {port}, where realip requires a PROXY header",
                            c.str_at(&["name"]).unwrap_or("?")
                        ),
                        "The kubelet does not send PROXY headers: the probe always fails and the pod never becomes ready (or is restarted).",
                        "probe the admin port (/readyz, /healthz), which never requires PROXY".into(),
                    ));
                }
            }
        }
    }
    out
}

/// realip proxy drains on SIGTERM by itself (`/readyz` 503, then keeps
/// serving for `[lifecycle] drain_delay`, default 5 s): no preStop needed,
/// unless its config sets the delay to zero.
fn realip_drains_itself(o: &Object, objects: &[Object]) -> bool {
    if o.label("app.kubernetes.io/name") != Some("realip") {
        return false;
    }
    let runs_proxy = containers(o).iter().any(|c| words(c.at(&["args"])).first() == Some(&"proxy"));
    let zero_delay = objects
        .iter()
        .filter(|c| c.kind == "ConfigMap" && c.namespace == o.namespace)
        .flat_map(|c| c.doc.get("data").map(Node::entries).unwrap_or_default())
        .filter_map(|(_, v)| v.as_str())
        .flat_map(str::lines)
        .map(|l| l.replace(' ', ""))
        .any(|l| matches!(l.as_str(), "drain_delay=\"0s\"" | "drain_delay=\"0ms\"" | "drain_delay=\"0\""));
    runs_proxy && !zero_delay
}

/// Whether a realip proxy config (a ConfigMap holding realip.toml) accepts
/// and whether it requires PROXY headers; `None` without such a config.
fn realip_proxy_protocol(objects: &[Object]) -> Option<(bool, bool)> {
    let configs: Vec<&str> = objects
        .iter()
        .filter(|o| o.kind == "ConfigMap")
        .flat_map(|c| c.doc.get("data").map(Node::entries).unwrap_or_default())
        .filter_map(|(_, v)| v.as_str())
        .filter(|t| t.contains("[[listener]]"))
        .collect();
    if configs.is_empty() {
        return None;
    }
    let modes: Vec<String> = configs
        .iter()
        .flat_map(|t| t.lines())
        .map(|l| l.replace(' ', ""))
        .filter(|l| l.starts_with("proxy_protocol="))
        .collect();
    let required = modes.iter().any(|m| m == "proxy_protocol=\"required\"");
    Some((required || modes.iter().any(|m| m == "proxy_protocol=\"optional\""), required))
}
