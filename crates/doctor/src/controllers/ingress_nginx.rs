//! ingress-nginx: the controller workloads (recognised by the
//! `/nginx-ingress-controller` entrypoint, the controller image or the
//! `app.kubernetes.io/name: ingress-nginx` label), the Services selecting
//! them, and *their own* ConfigMap: the one `--configmap=NS/NAME` names,
//! else the chart's and static manifests' naming in the same namespace.
//! An empty or absent ConfigMap means ingress-nginx's defaults:
//! `use-proxy-protocol` off, `use-forwarded-headers` off,
//! `proxy-real-ip-cidr` 0.0.0.0/0.

use realip_kube::Object;

use super::{add_workload, Index};
use crate::finding::Place;
use crate::model::{self, Controller, Edge, Fact, Pp, ServiceFacts, Trust};

/// The ingress-nginx controller kind.
#[derive(Debug)]
pub struct IngressNginx;

/// Its one instance.
pub static INGRESS_NGINX: IngressNginx = IngressNginx;

/// Keys that identify an ingress-nginx ConfigMap.
const KEYS: &[&str] = &["use-forwarded-headers", "use-proxy-protocol", "proxy-real-ip-cidr", "enable-real-ip"];

fn is_controller(o: &Object) -> bool {
    if o.label("app.kubernetes.io/component").is_some_and(|c| c != "controller") {
        return false; // admission webhook jobs and the like
    }
    o.label("app.kubernetes.io/name") == Some("ingress-nginx")
        || o.name.contains("ingress-nginx-controller")
        || model::containers(o).iter().any(|c| {
            c.str_at(&["image"]).is_some_and(|i| i.contains("ingress-nginx/controller"))
                || model::argv(c).first().is_some_and(|a| a.ends_with("/nginx-ingress-controller"))
        })
}

/// Finds the instances.
pub fn find(ix: &Index) -> Vec<Edge> {
    let mut edges: Vec<Edge> = Vec::new();
    for w in ix.workloads().filter(|w| w.kind != "StatefulSet" && is_controller(w)) {
        let mut e = Edge::new(&INGRESS_NGINX, format!("{}/{}", w.namespace, w.name));
        add_workload(&mut e, w, ix);
        config_facts(&mut e, ix, Some(w));
        edges.push(e);
    }
    // Services (and pods) labelled ingress-nginx without a workload in the
    // input (`kubectl get svc -o yaml`, a live cluster's pods): one
    // instance per namespace.
    let known: Vec<String> = edges.iter().flat_map(|e| e.members.iter().cloned()).collect();
    let mut loose: Vec<Edge> = Vec::new();
    for o in ix.kind("Service").iter().chain(ix.kind("Pod")) {
        let labelled = o.label("app.kubernetes.io/name") == Some("ingress-nginx")
            && o.label("app.kubernetes.io/component").is_none_or(|c| c == "controller")
            || o.name.contains("ingress-nginx-controller");
        if !labelled || known.contains(&o.id()) || o.name.ends_with("-admission") {
            continue;
        }
        if let Some(e) = edges.iter_mut().find(|e| e.workloads.iter().any(|w| w.namespace == o.namespace)) {
            if o.kind == "Service" {
                e.add_service(o);
            } else {
                e.members.push(o.id());
            }
            continue;
        }
        let i = if let Some(i) = loose.iter().position(|e| e.instance == o.namespace) {
            i
        } else {
            loose.push(Edge::new(&INGRESS_NGINX, o.namespace.clone()));
            loose.len() - 1
        };
        let e = &mut loose[i];
        if o.kind == "Service" {
            e.add_service(o);
        } else {
            e.members.push(o.id());
        }
    }
    for mut e in loose {
        let ns = e.instance.clone();
        config_facts_in(&mut e, ix, &ns, None);
        edges.push(e);
    }
    edges
}

/// The controller's ConfigMap: `--configmap`, else the chart's naming.
fn config_facts(e: &mut Edge, ix: &Index, w: Option<&Object>) {
    let Some(w) = w else { return };
    let arg = model::containers(w).iter().find_map(|c| model::flag(&model::argv(c), "--configmap").map(str::to_owned));
    if let Some(arg) = arg {
        let arg = arg.replace("$(POD_NAMESPACE)", &w.namespace);
        let (ns, name) = arg.split_once('/').unwrap_or((w.namespace.as_str(), arg.as_str()));
        let cm = ix.get("ConfigMap", ns, name);
        let at = Place::of(w, &["spec", "template", "spec", "containers"]);
        apply(e, cm, &at, &format!("ConfigMap {ns}/{name}"));
        return;
    }
    let ns = w.namespace.clone();
    config_facts_in(e, ix, &ns, Some(w));
}

fn config_facts_in(e: &mut Edge, ix: &Index, ns: &str, w: Option<&Object>) {
    let by_name = |n: &str| ix.get("ConfigMap", ns, n);
    let cm = w
        .and_then(|w| by_name(&w.name))
        .or_else(|| by_name("ingress-nginx-controller"))
        .or_else(|| by_name("nginx-configuration"))
        .or_else(|| {
            ix.kind_in("ConfigMap", ns)
                .iter()
                .copied()
                .find(|c| c.doc.get("data").is_some_and(|d| KEYS.iter().any(|k| d.get(k).is_some())))
        });
    let at = w.map_or_else(|| e.services.first().map(|s| s.at.clone()).unwrap_or_default(), |w| Place::of(w, &[]));
    let name =
        cm.map_or_else(|| format!("ConfigMap {ns}/ingress-nginx-controller"), |c| format!("ConfigMap {ns}/{}", c.name));
    apply(e, cm, &at, &name);
}

/// Facts from the ConfigMap's data, or the defaults when it is absent.
fn apply(e: &mut Edge, cm: Option<&Object>, fallback: &Place, name: &str) {
    e.instance = format!("{} ({name})", e.instance);
    let place = |k: &str| match cm {
        Some(c) => {
            let path = ["data", k];
            Place::of(c, if c.doc.at(&path).is_some() { &path[..] } else { &path[..1] })
        }
        None => fallback.clone(),
    };
    apply_data(e, cm.and_then(|c| c.doc.get("data")), &place, "");
}

/// Facts from ingress-nginx configuration keys (`data` of the ConfigMap or
/// `controller.config` of chart values; `prefix` names them in messages).
pub fn apply_data(e: &mut Edge, data: Option<&realip_kube::Node>, place: &dyn Fn(&str) -> Place, prefix: &str) {
    let get = |k: &str| data.and_then(|d| d.str_at(&[k]));
    let pp = if get("use-proxy-protocol") == Some("true") { Pp::Required } else { Pp::Off };
    e.proxy_protocol = Some(Fact::new(pp, format!("{prefix}use-proxy-protocol"), place("use-proxy-protocol")));
    let cidrs: Vec<&str> = get("proxy-real-ip-cidr").map_or_else(|| vec!["0.0.0.0/0"], |c| c.split(',').collect());
    let flag = ["use-forwarded-headers", "enable-real-ip"].into_iter().find(|f| get(f) == Some("true"));
    e.forwarded = Some(match flag {
        Some(f) => {
            let key = match get("proxy-real-ip-cidr") {
                Some(c) => format!("{prefix}{f}: \"true\" with proxy-real-ip-cidr `{c}`"),
                None => format!("{prefix}{f}: \"true\" with proxy-real-ip-cidr unset (defaults to 0.0.0.0/0)"),
            };
            Fact::new(Trust::from_list(&cidrs), key, place(f))
        }
        None => Fact::new(Trust::Nobody, format!("{prefix}use-forwarded-headers off"), place("use-forwarded-headers")),
    });
    if pp == Pp::Required && get("proxy-real-ip-cidr").is_some() {
        e.proxy_from = Some(Fact::new(
            Trust::from_list(&cidrs),
            format!("{prefix}proxy-real-ip-cidr"),
            place("proxy-real-ip-cidr"),
        ));
    }
    if get("compute-full-forwarded-for") == Some("true") {
        e.full_xff =
            Some(Fact::new(true, format!("{prefix}compute-full-forwarded-for"), place("compute-full-forwarded-for")));
    }
}

impl Controller for IngressNginx {
    fn name(&self) -> &'static str {
        "ingress-nginx"
    }

    fn fix(&self, rule: &str, edge: &Edge, svc: Option<&ServiceFacts>) -> Option<String> {
        let cm =
            edge.instance.split("(ConfigMap ").nth(1).map_or("the controller ConfigMap", |s| s.trim_end_matches(')'));
        Some(match rule {
            "ingress-etp-cluster" => {
                let s = svc?;
                format!("kubectl patch svc {} -n {} -p '{{\"spec\":{{\"externalTrafficPolicy\":\"Local\"}}}}' (Helm: --set controller.service.externalTrafficPolicy=Local)", s.name, s.namespace)
            }
            "forwarded-headers-from-everyone" => format!("set `proxy-real-ip-cidr` in ConfigMap {cm} to the load balancer / CDN ranges only (Helm: --set-string controller.config.proxy-real-ip-cidr=10.0.0.0/8)"),
            "trusted-cidr-invalid" => format!("write proxy-real-ip-cidr in ConfigMap {cm} as comma-separated CIDRs, e.g. \"10.0.0.0/8,192.0.2.0/24\""),
            "lb-l7-forwarded-headers-ignored" => format!("set `use-forwarded-headers: \"true\"` and `proxy-real-ip-cidr: <load balancer CIDRs>` in ConfigMap {cm} (Helm: --set-string controller.config.use-forwarded-headers=true)"),
            "proxy-protocol-mismatch" => {
                if edge.proxy_protocol.as_ref().is_some_and(|p| p.value == Pp::Off) {
                    format!("set `use-proxy-protocol: \"true\"` in ConfigMap {cm} (Helm: --set-string controller.config.use-proxy-protocol=true)")
                } else {
                    let a = svc.and_then(|s| s.lb.cloud).map_or("the cloud's PROXY annotation", |c| c.proxy_fix);
                    format!("add {a} to the controller Service (Helm: controller.service.annotations), or set use-proxy-protocol: \"false\" in ConfigMap {cm}")
                }
            }
            "ingress-single-replica" => {
                let w = edge.workloads.first()?;
                format!("kubectl scale deploy {} -n {} --replicas=3 (Helm: --set controller.replicaCount=3, or controller.autoscaling.minReplicas=3)", w.name, w.namespace)
            }
            "ingress-no-spread" => "add topologySpreadConstraints: [{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: ...}] (Helm: controller.topologySpreadConstraints)".into(),
            "ingress-no-pdb" => {
                let w = edge.workloads.first()?;
                format!("kubectl create pdb {}-pdb -n {} --selector=app.kubernetes.io/name=ingress-nginx --max-unavailable=1 (Helm: --set controller.minAvailable=1 with 2+ replicas)", w.name, w.namespace)
            }
            "rollout-max-unavailable" => {
                let w = edge.workloads.first()?;
                if w.kind == "DaemonSet" {
                    "updateStrategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}} (Helm: controller.updateStrategy)".into()
                } else {
                    "strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0, maxSurge: 1}} (Helm: controller.updateStrategy)".into()
                }
            }
            "full-xff-leftmost-app" => format!("make the app trust only the ingress pods' CIDR, or remove compute-full-forwarded-for from ConfigMap {cm}"),
            _ => return None,
        })
    }
}
