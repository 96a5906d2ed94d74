//! One module per controller. Each finds its instances among the objects
//! and reports their client-IP facts as [`Edge`]s; the generic rules in
//! [`crate::rules`] judge them. Adding a controller is adding a module
//! here and a line in [`find_all`].
//!
//! - [`ingress_nginx`]: Deployments/DaemonSets running the controller, their
//!   own ConfigMap (`--configmap`), chart and static layouts;
//! - [`traefik`]: entry points (CLI args, static file), Middlewares;
//! - [`envoy_gateway`]: Gateways of Envoy Gateway's class, ClientTrafficPolicy,
//!   EnvoyProxy, SecurityPolicy, BackendTrafficPolicy;
//! - [`nginx_gateway_fabric`]: Gateways of NGF's class, NginxProxy;
//! - [`istio`]: ingress gateways, mesh config and `proxy.istio.io/config`;
//! - [`cilium`]: kube-proxy replacement, DSR, Cilium Ingress and Gateway;
//! - [`realip`]: realip's own proxy, its config parsed with realip's types;
//! - [`generic`]: any controller found through its IngressClass.

pub mod cilium;
pub mod envoy_gateway;
pub mod generic;
pub mod ingress_nginx;
pub mod istio;
pub mod nginx_gateway_fabric;
pub mod realip;
pub mod traefik;

use std::collections::HashMap;

use realip_kube::{Node, Object};

use crate::finding::Place;
use crate::model::{self, Edge, Fact, WorkloadFacts};

/// The objects, deduplicated (a later object with the same kind, namespace
/// and name replaces an earlier one, as `kubectl apply` of the later file
/// would), and indexed by kind and namespace.
#[derive(Debug)]
pub struct Index<'a> {
    /// Every object, in input order.
    pub objects: Vec<&'a Object>,
    by_kind: HashMap<&'a str, Vec<&'a Object>>,
    by_kind_ns: HashMap<&'a str, HashMap<&'a str, Vec<&'a Object>>>,
}

impl<'a> Index<'a> {
    /// Indexes `objects`.
    pub fn new(objects: &'a [Object]) -> Index<'a> {
        let mut last: HashMap<(&str, &str, &str), usize> = HashMap::with_capacity(objects.len());
        for (i, o) in objects.iter().enumerate() {
            last.insert((o.kind.as_str(), o.namespace.as_str(), o.name.as_str()), i);
        }
        let kept: Vec<&Object> = objects
            .iter()
            .enumerate()
            .filter(|(i, o)| o.name.is_empty() || last[&(o.kind.as_str(), o.namespace.as_str(), o.name.as_str())] == *i)
            .map(|(_, o)| o)
            .collect();
        let mut by_kind: HashMap<&str, Vec<&Object>> = HashMap::new();
        let mut by_kind_ns: HashMap<&str, HashMap<&str, Vec<&Object>>> = HashMap::new();
        for o in &kept {
            by_kind.entry(o.kind.as_str()).or_default().push(o);
            by_kind_ns.entry(o.kind.as_str()).or_default().entry(o.namespace.as_str()).or_default().push(o);
        }
        Index { objects: kept, by_kind, by_kind_ns }
    }

    /// Objects of `kind`.
    pub fn kind(&self, kind: &str) -> &[&'a Object] {
        self.by_kind.get(kind).map_or(&[], Vec::as_slice)
    }

    /// Objects of `kind` in `ns`.
    pub fn kind_in(&self, kind: &str, ns: &str) -> &[&'a Object] {
        self.by_kind_ns.get(kind).and_then(|m| m.get(ns)).map_or(&[], Vec::as_slice)
    }

    /// The object `kind` `ns/name`.
    pub fn get(&self, kind: &str, ns: &str, name: &str) -> Option<&'a Object> {
        self.kind_in(kind, ns).iter().copied().find(|o| o.name == name)
    }

    /// Deployments, DaemonSets and StatefulSets.
    pub fn workloads(&self) -> impl Iterator<Item = &'a Object> + '_ {
        ["Deployment", "DaemonSet", "StatefulSet"].into_iter().flat_map(|k| self.kind(k).iter().copied())
    }

    /// Services in the workload's namespace that select its pods.
    pub fn services_of(&self, w: &Object) -> Vec<&'a Object> {
        let labels = model::pod_labels(w);
        self.kind_in("Service", &w.namespace).iter().copied().filter(|s| model::selected_by(s, labels)).collect()
    }

    /// Pods in the workload's namespace whose labels match its template.
    pub fn pods_of(&self, w: &Object) -> Vec<&'a Object> {
        let Some(t) = model::pod_labels(w).filter(|t| !t.entries().is_empty()) else { return Vec::new() };
        self.kind_in("Pod", &w.namespace)
            .iter()
            .copied()
            .filter(|p| model::labels_match(t, p.doc.at(&["metadata", "labels"])))
            .collect()
    }
}

/// Adds a workload, its Services and pods to `edge`.
pub fn add_workload(edge: &mut Edge, w: &Object, ix: &Index) {
    if edge.members.contains(&w.id()) {
        return;
    }
    edge.members.push(w.id());
    edge.workloads.push(workload(w, ix));
    for s in ix.services_of(w) {
        edge.add_service(s);
    }
    for p in ix.pods_of(w) {
        edge.members.push(p.id());
    }
}

/// Replicas, spread, PDB, rollout and drain facts of a workload.
pub fn workload(o: &Object, ix: &Index) -> WorkloadFacts {
    let pod_labels = model::pod_labels(o);
    let replicas = if o.kind == "DaemonSet" {
        None
    } else if let Some(r) = o.doc.str_at(&["spec", "replicas"]) {
        Some(Fact::new(r.parse().unwrap_or(1), "replicas", Place::of(o, &["spec", "replicas"])))
    } else {
        // An HPA scaling this workload sets the replicas; its minimum is what is guaranteed.
        let hpa = ix.kind_in("HorizontalPodAutoscaler", &o.namespace).iter().find(|h| {
            h.doc.str_at(&["spec", "scaleTargetRef", "name"]) == Some(o.name.as_str())
                && h.doc.str_at(&["spec", "scaleTargetRef", "kind"]).is_none_or(|k| k == o.kind)
        });
        Some(match hpa {
            Some(h) => Fact::new(
                h.doc.str_at(&["spec", "minReplicas"]).and_then(|m| m.parse().ok()).unwrap_or(1),
                format!("HorizontalPodAutoscaler {} minReplicas", h.name),
                Place::of(h, &["spec", "minReplicas"]),
            ),
            None => Fact::new(1, "replicas (default 1)", Place::of(o, &["spec"])),
        })
    };
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
    let pdb = ix.kind_in("PodDisruptionBudget", &o.namespace).iter().any(|p| {
        p.doc
            .at(&["spec", "selector", "matchLabels"])
            .is_some_and(|sel| !sel.entries().is_empty() && model::labels_match(sel, pod_labels))
    });
    let strategy = if o.kind == "DaemonSet" { "updateStrategy" } else { "strategy" };
    let max_unavailable =
        if o.doc.str_at(&["spec", strategy, "type"]).is_some_and(|t| t == "Recreate" || t == "OnDelete") {
            None
        } else {
            let path = ["spec", strategy, "rollingUpdate", "maxUnavailable"];
            let (value, at) = if let Some(v) = o.doc.str_at(&path) {
                (v.to_owned(), Place::of(o, &path))
            } else {
                let default = if o.kind == "DaemonSet" { "1 (default)" } else { "25% (default)" };
                let at = if o.doc.at(&["spec", strategy]).is_some() { &["spec", strategy][..] } else { &["spec"][..] };
                (default.to_owned(), Place::of(o, at))
            };
            (o.kind != "StatefulSet").then(|| Fact::new(value, format!("{strategy}.rollingUpdate.maxUnavailable"), at))
        };
    let drains = model::containers(o).iter().any(|c| c.at(&["lifecycle", "preStop"]).is_some());
    let grace: u64 = o
        .doc
        .str_at(&["spec", "template", "spec", "terminationGracePeriodSeconds"])
        .and_then(|g| g.parse().ok())
        .unwrap_or(30);
    let wait = model::containers(o)
        .iter()
        .filter_map(|c| {
            let cmd = model::words(c.at(&["lifecycle", "preStop", "exec", "command"]));
            cmd.iter()
                .flat_map(|w| w.split_whitespace())
                .skip_while(|w| *w != "sleep")
                .nth(1)
                .and_then(|n| n.trim_end_matches(';').parse::<u64>().ok())
        })
        .max();
    WorkloadFacts {
        kind: o.kind.clone(),
        name: o.name.clone(),
        namespace: o.namespace.clone(),
        at: Place::of(o, &["metadata"]),
        replicas,
        spread: spread || anti,
        spread_at: Place::of(o, &["spec", "template", "spec"]),
        pdb,
        max_unavailable,
        drains,
        containers_at: Place::of(o, &["spec", "template", "spec", "containers"]),
        grace: (grace, wait),
        grace_at: Place::of(o, &["spec", "template", "spec", "terminationGracePeriodSeconds"]),
        pod_labels: pod_labels
            .map(|l| l.entries().iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
            .unwrap_or_default(),
    }
}

/// Gateways whose GatewayClass names `controller` (Gateway API).
pub fn gateways_of<'a>(ix: &Index<'a>, controller: &str) -> Vec<(&'a Object, Option<&'a Object>)> {
    let classes: Vec<&Object> = ix
        .kind("GatewayClass")
        .iter()
        .copied()
        .filter(|c| c.doc.str_at(&["spec", "controllerName"]) == Some(controller))
        .collect();
    ix.kind("Gateway")
        .iter()
        .filter_map(|g| {
            let class = g.doc.str_at(&["spec", "gatewayClassName"])?;
            let c = classes.iter().copied().find(|c| c.name == class);
            c.map(|c| (*g, Some(c)))
        })
        .collect()
}

/// Whether a policy's `targetRef`/`targetRefs` names `kind` `name`.
pub fn targets(policy: &Object, kind: &str, name: &str) -> bool {
    let one = policy.doc.at(&["spec", "targetRef"]).into_iter();
    let many = policy.doc.at(&["spec", "targetRefs"]).map(Node::items).unwrap_or_default().iter();
    one.chain(many).any(|r| r.str_at(&["kind"]) == Some(kind) && r.str_at(&["name"]) == Some(name))
}

/// Every controller instance among the objects, with its facts.
pub fn find_all<'a>(ix: &Index<'a>, tomls: &[realip::Toml<'a>]) -> Vec<Edge> {
    let mut edges = Vec::new();
    edges.extend(ingress_nginx::find(ix));
    edges.extend(traefik::find(ix));
    edges.extend(envoy_gateway::find(ix));
    edges.extend(nginx_gateway_fabric::find(ix));
    edges.extend(istio::find(ix));
    edges.extend(realip::find(ix, tomls));
    edges.extend(cilium::find(ix));
    let known: Vec<String> = edges.iter().flat_map(|e| e.members.iter().cloned()).collect();
    edges.extend(generic::find(ix, &known));
    let kept = cilium::source_kept(ix);
    for e in &mut edges {
        mark_l7_front(e, ix);
        if e.source_kept.is_none() {
            e.source_kept.clone_from(&kept);
        }
    }
    edges
}

/// A cloud L7 load balancer in front: an Ingress of a cloud class
/// (GCE, ALB, Azure Application Gateway) whose backend is one of the
/// edge's Services.
fn mark_l7_front(edge: &mut Edge, ix: &Index) {
    for ing in ix.kind("Ingress") {
        let class = ing
            .doc
            .str_at(&["spec", "ingressClassName"])
            .or_else(|| ing.annotation("kubernetes.io/ingress.class"))
            .unwrap_or_default();
        if !crate::cloud::L7_INGRESS_CLASSES.contains(&class) {
            continue;
        }
        let backends = backend_services(&ing.doc);
        if edge.services.iter().any(|s| s.namespace == ing.namespace && backends.contains(&s.name.as_str())) {
            edge.l7_front = Some(format!("Ingress {}/{} (class {class})", ing.namespace, ing.name));
        }
    }
}

fn backend_services(doc: &Node) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some(n) = doc.str_at(&["spec", "defaultBackend", "service", "name"]) {
        out.push(n);
    }
    for r in doc.at(&["spec", "rules"]).map(Node::items).unwrap_or_default() {
        for p in r.at(&["http", "paths"]).map(Node::items).unwrap_or_default() {
            if let Some(n) = p.str_at(&["backend", "service", "name"]).or_else(|| p.str_at(&["backend", "serviceName"]))
            {
                out.push(n);
            }
        }
    }
    out
}
