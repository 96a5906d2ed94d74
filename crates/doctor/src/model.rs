//! The client-IP facts controller modules report and generic rules judge.
//!
//! A controller module ([`crate::controllers`]) turns objects (or chart
//! values) into [`Edge`]s: one per controller instance, with its Services,
//! its workloads, and what it does with the client IP (PROXY protocol,
//! which peers' forwarded headers it believes, how many hops it trusts),
//! each fact carrying where it was set and the setting's own name. The
//! rules in [`crate::rules`] judge those facts the same way for every
//! controller; only fix texts come from the controller ([`Controller::fix`]).
//!
//! Invariant: an unknown fact is `None` and no rule judges it (no guessing
//! from defaults the controller does not document).

use realip_kube::{Node, Object};

use crate::catalog;
use crate::cloud::{self, Lb};
use crate::finding::Place;

/// A value, the setting's name in the controller's own terms, and where it was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact<T> {
    /// The value.
    pub value: T,
    /// The setting, e.g. `use-proxy-protocol` or `--entryPoints.web.proxyProtocol.trustedIPs`.
    pub key: String,
    /// Where it was set (or, for a default, the object that would set it).
    pub at: Place,
}

impl<T> Fact<T> {
    /// A fact.
    pub fn new(value: T, key: impl Into<String>, at: Place) -> Fact<T> {
        Fact { value, key: key.into(), at }
    }
}

/// What the controller expects on its ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pp {
    /// No PROXY header is read.
    Off,
    /// Read when present.
    Optional,
    /// Every connection must start with one.
    Required,
}

/// Whose forwarded headers (X-Forwarded-For, ...) the controller believes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Nobody's: the peer address is the client.
    Nobody,
    /// Peers in these CIDRs (as written).
    Cidrs(Vec<String>),
    /// Every peer.
    Everyone,
}

impl Trust {
    /// `Everyone` when the list holds `0.0.0.0/0` or `::/0`.
    pub fn from_list<S: AsRef<str>>(list: &[S]) -> Trust {
        let cidrs: Vec<String> = list.iter().map(|c| c.as_ref().trim().to_owned()).filter(|c| !c.is_empty()).collect();
        if cidrs.iter().any(|c| c == "0.0.0.0/0" || c == "::/0" || c == "*") {
            Trust::Everyone
        } else {
            Trust::Cidrs(cidrs)
        }
    }
}

/// A Service of a controller.
#[derive(Clone, Debug)]
pub struct ServiceFacts {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The Service itself.
    pub at: Place,
    /// `spec.type`.
    pub ty: String,
    /// `spec.externalTrafficPolicy` (None: Cluster by default).
    pub etp: Option<String>,
    /// Where `externalTrafficPolicy` is (or would be).
    pub etp_at: Place,
    /// Where the annotations are.
    pub annotations_at: Place,
    /// Each annotation's key and line.
    pub annotation_lines: Vec<(String, usize)>,
    /// The load balancer, from the annotations.
    pub lb: Lb,
    /// `spec.ipFamilies` has two families or the policy asks for dual-stack.
    pub dual_stack: Option<Place>,
    /// `spec.healthCheckNodePort` is set.
    pub health_check_node_port: bool,
    /// `status.loadBalancer.ingress[].ipMode: Proxy`.
    pub ip_mode_proxy: bool,
    /// Where `spec.type` is.
    pub type_at: Place,
}

impl ServiceFacts {
    /// Facts of a Service object.
    pub fn of(o: &Object) -> ServiceFacts {
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
        let ip_mode_proxy = o
            .doc
            .at(&["status", "loadBalancer", "ingress"])
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .any(|i| i.str_at(&["ipMode"]) == Some("Proxy"));
        // Absent: the Service itself (where the user adds it).
        let etp_path: &[&str] = if o.doc.at(&["spec", "externalTrafficPolicy"]).is_some() {
            &["spec", "externalTrafficPolicy"]
        } else {
            &[]
        };
        ServiceFacts {
            name: o.name.clone(),
            namespace: o.namespace.clone(),
            at: Place::of(o, &[]),
            ty: o.doc.str_at(&["spec", "type"]).unwrap_or("ClusterIP").to_owned(),
            etp: o.doc.str_at(&["spec", "externalTrafficPolicy"]).filter(|e| !e.is_empty()).map(str::to_owned),
            etp_at: Place::of(o, etp_path),
            annotations_at: Place::of(o, &["metadata", "annotations"]),
            annotation_lines: o
                .doc
                .at(&["metadata", "annotations"])
                .map(Node::entries)
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| (k.clone(), v.line))
                .collect(),
            lb: cloud::classify(o.doc.at(&["metadata", "annotations"])),
            dual_stack: dual.then(|| Place::of(o, &["spec", "ipFamilies"])),
            health_check_node_port: o.doc.at(&["spec", "healthCheckNodePort"]).is_some(),
            ip_mode_proxy,
            type_at: Place::of(o, &["spec", "type"]),
        }
    }

    /// Whether outside traffic enters through it (LoadBalancer or NodePort).
    pub fn external(&self) -> bool {
        matches!(self.ty.as_str(), "LoadBalancer" | "NodePort")
    }

    /// The place of annotation `key` (the annotations, when absent).
    pub fn annotation_at(&self, key: &str) -> Place {
        match self.annotation_lines.iter().find(|(k, _)| k == key) {
            Some((_, line)) => Place { line: *line, ..self.annotations_at.clone() },
            None => self.annotations_at.clone(),
        }
    }

    /// Whether it keeps the source through kube-proxy (Local).
    pub fn local(&self) -> bool {
        self.etp.as_deref() == Some("Local")
    }
}

/// A workload (Deployment, DaemonSet, StatefulSet) of a controller.
#[derive(Clone, Debug)]
pub struct WorkloadFacts {
    /// `Deployment`, `DaemonSet` or `StatefulSet`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The object.
    pub at: Place,
    /// Replicas: `spec.replicas`, else an HPA's `minReplicas`, else 1 (None for a DaemonSet).
    pub replicas: Option<Fact<u32>>,
    /// A topology spread or anti-affinity on kubernetes.io/hostname.
    pub spread: bool,
    /// Where spread would be set.
    pub spread_at: Place,
    /// A PodDisruptionBudget selects its pods.
    pub pdb: bool,
    /// Rolling-update maxUnavailable as written (or its default), where.
    pub max_unavailable: Option<Fact<String>>,
    /// A preStop hook, or realip's own drain.
    pub drains: bool,
    /// Where the containers are.
    pub containers_at: Place,
    /// terminationGracePeriodSeconds (default 30) and the longest preStop `sleep`.
    pub grace: (u64, Option<u64>),
    /// Where the grace period is.
    pub grace_at: Place,
    /// The pod template's labels.
    pub pod_labels: Vec<(String, String)>,
}

/// The containers of a workload's pod template (or a Pod's).
pub fn containers(o: &Object) -> &[Node] {
    o.doc
        .at(&["spec", "template", "spec", "containers"])
        .or_else(|| o.doc.at(&["spec", "containers"]))
        .map(Node::items)
        .unwrap_or_default()
}

/// The strings of a sequence node.
pub fn words(n: Option<&Node>) -> Vec<&str> {
    n.map(|n| n.items().iter().filter_map(Node::as_str).collect()).unwrap_or_default()
}

/// `command` then `args` of a container.
pub fn argv(c: &Node) -> Vec<&str> {
    words(c.get("command")).into_iter().chain(words(c.get("args"))).collect()
}

/// The value of `--name=value` or `--name value` in `argv` (the last one wins).
pub fn flag<'a>(argv: &[&'a str], name: &str) -> Option<&'a str> {
    let mut found = None;
    for (i, a) in argv.iter().enumerate() {
        if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v);
        } else if *a == name {
            found = argv.get(i + 1).copied().filter(|v| !v.starts_with("--")).or(Some("true"));
        }
    }
    found
}

/// The value of the boolean flag `name` in `argv` (the last one wins), as
/// Go's flag parsing (pflag, and the standard `flag` package) reads it: only
/// `--name=value` carries a value; a bare `--name` is `"true"` and never
/// takes the next argument, which stays a positional argument
/// (`--disable-catch-all false` is true). Use [`flag`] for other flags.
pub fn bool_flag<'a>(argv: &[&'a str], name: &str) -> Option<&'a str> {
    let mut found = None;
    for a in argv {
        if let Some(v) = a.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v);
        } else if *a == name {
            found = Some("true");
        }
    }
    found
}

#[cfg(test)]
mod flag_tests {
    use super::{bool_flag, flag};

    #[test]
    fn boolean_flags_never_take_the_next_argument() {
        let argv = ["/c", "--watch-ingress-without-class", "false", "--ingress-class", "nginx"];
        assert_eq!(bool_flag(&argv, "--watch-ingress-without-class"), Some("true"));
        assert_eq!(flag(&argv, "--ingress-class"), Some("nginx"));
        assert_eq!(bool_flag(&["--deep-inspect=false"], "--deep-inspect"), Some("false"));
        assert_eq!(bool_flag(&["--deep-inspect=false", "--deep-inspect"], "--deep-inspect"), Some("true"));
        assert_eq!(bool_flag(&["--deep-inspectx"], "--deep-inspect"), None);
        assert_eq!(bool_flag(&[], "--deep-inspect"), None);
    }
}

/// Whether every `key: value` of a `matchLabels`-style map is among `labels`.
pub fn labels_match(selector: &Node, labels: Option<&Node>) -> bool {
    selector.entries().iter().all(|(k, v)| labels.and_then(|l| l.str_at(&[k])) == v.as_str())
}

/// Whether a Service selects pods with `pod_labels` (an empty selector
/// selects nothing: such Services have hand-made endpoints).
pub fn selected_by(svc: &Object, pod_labels: Option<&Node>) -> bool {
    svc.doc.at(&["spec", "selector"]).is_some_and(|sel| !sel.entries().is_empty() && labels_match(sel, pod_labels))
}

/// The pod template labels of a workload.
pub fn pod_labels(o: &Object) -> Option<&Node> {
    o.doc.at(&["spec", "template", "metadata", "labels"])
}

/// A controller kind: its name and its fix texts.
pub trait Controller: std::fmt::Debug + Sync {
    /// Display name, e.g. `ingress-nginx`.
    fn name(&self) -> &'static str;
    /// The fix for `rule` in this controller's terms (Helm flag, CRD field,
    /// CLI argument); `None` uses the catalogue's generic fix.
    fn fix(&self, rule: &str, edge: &Edge, svc: Option<&ServiceFacts>) -> Option<String>;
}

/// One controller instance and its client-IP facts.
#[derive(Debug)]
pub struct Edge {
    /// Which controller.
    pub controller: &'static dyn Controller,
    /// `namespace/name` of the instance (its workload, Gateway or Service).
    pub instance: String,
    /// Its Services.
    pub services: Vec<ServiceFacts>,
    /// Its workloads.
    pub workloads: Vec<WorkloadFacts>,
    /// Ids of every object that belongs to it (pods included).
    pub members: Vec<String>,
    /// What it expects on its ports.
    pub proxy_protocol: Option<Fact<Pp>>,
    /// Whose forwarded headers it believes.
    pub forwarded: Option<Fact<Trust>>,
    /// How many X-Forwarded-For hops it (or one of its policies) trusts,
    /// counted from the right.
    pub hops: Vec<Fact<u32>>,
    /// Who may send PROXY headers (when the controller restricts it).
    pub proxy_from: Option<Fact<Trust>>,
    /// It appends to the client's X-Forwarded-For (ingress-nginx `compute-full-forwarded-for`).
    pub full_xff: Option<Fact<bool>>,
    /// The source survives without Local (Cilium DSR, Cilium's own proxy): why.
    pub source_kept: Option<Fact<String>>,
    /// An L7 cloud load balancer in front through an Ingress (`Ingress/ns/name`, class).
    pub l7_front: Option<String>,
    /// Policies keyed on the client IP (allowlists, rate limits); the value
    /// says whether they key on the peer address only (not on a detected
    /// client IP); the key names the policy.
    pub client_keyed: Vec<Fact<bool>>,
    /// Findings the controller module judged itself (controller-only facts).
    pub own: Vec<crate::Finding>,
}

impl Edge {
    /// An edge with no facts yet.
    pub fn new(controller: &'static dyn Controller, instance: String) -> Edge {
        Edge {
            controller,
            instance,
            services: Vec::new(),
            workloads: Vec::new(),
            members: Vec::new(),
            proxy_protocol: None,
            forwarded: None,
            hops: Vec::new(),
            proxy_from: None,
            full_xff: None,
            source_kept: None,
            l7_front: None,
            client_keyed: Vec::new(),
            own: Vec::new(),
        }
    }

    /// The fix for `rule`, in the controller's terms when it has one.
    pub fn fix(&self, rule: &'static str, svc: Option<&ServiceFacts>) -> String {
        self.controller.fix(rule, self, svc).unwrap_or_else(|| catalog::rule(rule).fix.to_owned())
    }

    /// Adds a Service object.
    pub fn add_service(&mut self, o: &Object) {
        if !self.members.contains(&o.id()) {
            self.members.push(o.id());
            self.services.push(ServiceFacts::of(o));
        }
    }
}
