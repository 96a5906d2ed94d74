//! Istio ingress gateways: workloads labelled `istio: ingressgateway` (or
//! `app: istio-ingressgateway`, or running `proxyv2` with `router`), the
//! Services selecting them, and `gatewayTopology` (`numTrustedProxies`,
//! `proxyProtocol`) from the pod annotation `proxy.istio.io/config`, else
//! the mesh config (`istio` ConfigMap, `mesh` key,
//! `defaultConfig.gatewayTopology`). Istio's default trusts 0 proxies.

use realip_kube::{Node, Object};

use super::{add_workload, Index};
use crate::finding::Place;
use crate::model::{self, Controller, Edge, Fact, Pp, ServiceFacts};

/// The Istio gateway controller kind.
#[derive(Debug)]
pub struct Istio;

/// Its one instance.
pub static ISTIO: Istio = Istio;

fn is_gateway(o: &Object) -> bool {
    let labels = o.doc.at(&["spec", "template", "metadata", "labels"]);
    let l = |k: &str| labels.and_then(|l| l.str_at(&[k]));
    l("istio") == Some("ingressgateway")
        || l("app") == Some("istio-ingressgateway")
        || model::containers(o)
            .iter()
            .any(|c| c.str_at(&["image"]).is_some_and(|i| i.contains("proxyv2")) && model::argv(c).contains(&"router"))
}

/// `gatewayTopology` from a YAML (or JSON) text: the annotation or the mesh config.
fn topology(text: &str, path: &[&str]) -> Option<Node> {
    let doc = realip_kube::yaml::parse(text, "config").ok()?.into_iter().next()?;
    doc.at(path).cloned()
}

/// Finds the instances.
pub fn find(ix: &Index) -> Vec<Edge> {
    let mesh =
        ix.kind("ConfigMap").iter().copied().find(|c| c.name == "istio" && c.doc.str_at(&["data", "mesh"]).is_some());
    let mut edges = Vec::new();
    for w in ix.workloads().filter(|w| is_gateway(w)) {
        let mut e = Edge::new(&ISTIO, format!("{}/{}", w.namespace, w.name));
        add_workload(&mut e, w, ix);
        let ann = ["spec", "template", "metadata", "annotations", "proxy.istio.io/config"];
        let from_pod =
            w.doc.str_at(&ann).and_then(|t| topology(t, &["gatewayTopology"])).map(|n| (n, Place::of(w, &ann)));
        let from_mesh = mesh.and_then(|m| {
            let n = topology(m.doc.str_at(&["data", "mesh"])?, &["defaultConfig", "gatewayTopology"])?;
            Some((n, Place::of(m, &["data", "mesh"])))
        });
        let (topo, at, key) = match (from_pod, from_mesh) {
            (Some((n, at)), _) => (Some(n), at, "proxy.istio.io/config gatewayTopology"),
            (None, Some((n, at))) => (Some(n), at, "meshConfig.defaultConfig.gatewayTopology"),
            (None, None) => (None, Place::of(w, &["spec", "template", "metadata"]), "gatewayTopology (unset)"),
        };
        let hops =
            topo.as_ref().and_then(|t| t.str_at(&["numTrustedProxies"])).and_then(|h| h.parse().ok()).unwrap_or(0);
        e.hops.push(Fact::new(hops, format!("{key}.numTrustedProxies"), at.clone()));
        let pp = if topo.as_ref().and_then(|t| t.get("proxyProtocol")).is_some() { Pp::Required } else { Pp::Off };
        e.proxy_protocol = Some(Fact::new(pp, format!("{key}.proxyProtocol"), at));
        edges.push(e);
    }
    edges
}

impl Controller for Istio {
    fn name(&self) -> &'static str {
        "Istio gateway"
    }

    fn fix(&self, rule: &str, _edge: &Edge, svc: Option<&ServiceFacts>) -> Option<String> {
        Some(match rule {
            "ingress-etp-cluster" => {
                let s = svc?;
                format!("kubectl patch svc {} -n {} -p '{{\"spec\":{{\"externalTrafficPolicy\":\"Local\"}}}}' (istio/gateway chart: --set service.externalTrafficPolicy=Local)", s.name, s.namespace)
            }
            "hops-mismatch" | "lb-l7-forwarded-headers-ignored" => "annotate the gateway pods with proxy.istio.io/config: '{\"gatewayTopology\": {\"numTrustedProxies\": <HTTP proxies in front>}}' (or meshConfig.defaultConfig.gatewayTopology)".into(),
            "proxy-protocol-mismatch" => "proxy.istio.io/config: '{\"gatewayTopology\": {\"proxyProtocol\": {}}}' on the gateway pods together with the load balancer's PROXY annotation, or neither".into(),
            "ingress-single-replica" => "istio/gateway chart: --set autoscaling.minReplicas=3 (or replicaCount=3)".into(),
            "ingress-no-pdb" => "istio/gateway chart: --set podDisruptionBudget.maxUnavailable=1".into(),
            _ => return None,
        })
    }
}
