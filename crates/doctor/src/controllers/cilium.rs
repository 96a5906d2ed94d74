//! Cilium: the `cilium-config` ConfigMap (kube-proxy replacement,
//! `bpf-lb-mode`, routing/tunnel mode, Ingress and Gateway API settings),
//! Cilium Ingress (IngressClass `cilium`, Service `cilium-ingress` or
//! labelled `cilium.io/ingress`) and Cilium Gateways (GatewayClass
//! `io.cilium/gateway-controller`, Services `cilium-gateway-<name>`).
//!
//! With kube-proxy replacement in DSR (or hybrid) mode the client IP
//! survives without `externalTrafficPolicy: Local`: every edge gets that as
//! [`source_kept`], unless the datapath is a VXLAN tunnel, where Cilium does
//! not do DSR (`cilium-dsr-vxlan`) and the Local advice stays. Cilium's own
//! Ingress/Gateway Envoy runs on every node and sees the source, so their
//! edges keep it too; their hop count (`gateway-api-xff-num-trusted-hops`,
//! `ingress-default-xff-num-trusted-hops`, default 0) and PROXY settings
//! (`enable-gateway-api-proxy-protocol`, `enable-ingress-proxy-protocol`)
//! are judged like any controller's.

use realip_kube::Object;

use super::{gateways_of, Index};
use crate::finding::{Finding, Place};
use crate::model::{Controller, Edge, Fact, Pp, ServiceFacts};

/// The Cilium controller kind (Ingress and Gateway).
#[derive(Debug)]
pub struct Cilium;

/// Its one instance.
pub static CILIUM: Cilium = Cilium;

/// The Gateway API controllerName.
pub const CONTROLLER_NAME: &str = "io.cilium/gateway-controller";

fn config<'a>(ix: &Index<'a>) -> Option<&'a Object> {
    ix.kind("ConfigMap").iter().copied().find(|o| o.name == "cilium-config")
}

fn data<'a>(c: Option<&'a Object>, k: &str) -> Option<&'a str> {
    c.and_then(|c| c.doc.str_at(&["data", k]))
}

/// The datapath's tunnel protocol: `Some("vxlan")`, `Some("geneve")`,
/// `None` with native routing or when the config does not say.
fn tunnel(c: Option<&Object>) -> Option<&str> {
    if let Some(t) = data(c, "tunnel") {
        return (t != "disabled").then_some(t);
    }
    match data(c, "routing-mode") {
        Some("tunnel") => Some(data(c, "tunnel-protocol").unwrap_or("vxlan")),
        _ => None,
    }
}

fn dsr(c: Option<&Object>) -> bool {
    let kpr = data(c, "kube-proxy-replacement").is_some_and(|v| matches!(v, "true" | "strict"));
    kpr && matches!(data(c, "bpf-lb-mode").unwrap_or("snat"), "dsr" | "hybrid")
}

/// Whether kube-proxy replacement keeps the source for every Service (DSR
/// that Cilium can actually do), and why.
pub fn source_kept(ix: &Index) -> Option<Fact<String>> {
    let c = config(ix)?;
    let geneve_dispatch = data(Some(c), "bpf-lb-dsr-dispatch") == Some("geneve");
    let supported = match tunnel(Some(c)) {
        Some("vxlan") => false,
        Some(_) => geneve_dispatch,
        None => true,
    };
    (dsr(Some(c)) && supported).then(|| {
        Fact::new(
            "Cilium kube-proxy replacement in DSR mode".to_owned(),
            "bpf-lb-mode",
            Place::of(c, &["data", "bpf-lb-mode"]),
        )
    })
}

fn cilium_edge(ix: &Index, instance: String, pp_key: &str, hops_key: &str) -> Edge {
    let c = config(ix);
    let at = |k: &str| {
        c.map(|c| {
            let path = ["data", k];
            Place::of(c, if c.doc.at(&path).is_some() { &path[..] } else { &path[..1] })
        })
    };
    let mut e = Edge::new(&CILIUM, instance);
    let fallback = at(pp_key).unwrap_or_default();
    let pp = if data(c, pp_key) == Some("true") { Pp::Required } else { Pp::Off };
    e.proxy_protocol = Some(Fact::new(pp, pp_key, at(pp_key).unwrap_or_else(|| fallback.clone())));
    let hops = data(c, hops_key).and_then(|h| h.parse().ok()).unwrap_or(0);
    e.hops.push(Fact::new(hops, hops_key, at(hops_key).unwrap_or(fallback)));
    e.source_kept = Some(Fact::new(
        "Cilium's Envoy runs on the node that receives the traffic".to_owned(),
        "Cilium Ingress/Gateway",
        e.services.first().map(|s| s.at.clone()).unwrap_or_default(),
    ));
    e
}

/// Finds the instances: a cluster edge carrying the datapath findings,
/// Cilium Ingress, Cilium Gateways.
pub fn find(ix: &Index) -> Vec<Edge> {
    let mut edges = Vec::new();
    let c = config(ix);
    if let Some(c) = c {
        let mut e = Edge::new(&CILIUM, format!("{}/{} (datapath)", c.namespace, c.name));
        e.members.push(c.id());
        if dsr(Some(c)) && tunnel(Some(c)) == Some("vxlan") {
            e.own.push(Finding::new(
                "cilium-dsr-vxlan",
                &Place::of(c, &["data", "bpf-lb-mode"]),
                format!("bpf-lb-mode: {} with VXLAN tunnelling: Cilium does not do DSR over VXLAN, so the client IP is not kept that way and the Local checks apply", data(Some(c), "bpf-lb-mode").unwrap_or("dsr")),
                "routing-mode: native (Helm: routingMode=native, autoDirectNodeRoutes=true), or tunnel-protocol: geneve with bpf-lb-dsr-dispatch: geneve (Helm: loadBalancer.dsrDispatch=geneve); else keep bpf-lb-mode: snat and externalTrafficPolicy: Local".into(),
            ));
        } else if let Some(k) = source_kept(ix) {
            e.own.push(Finding::new(
                "cilium-validate",
                &k.at,
                "Cilium kube-proxy replacement in DSR mode keeps the client IP without externalTrafficPolicy: Local: the Local checks are skipped".into(),
                crate::catalog::rule("cilium-validate").fix.into(),
            ));
        }
        edges.push(e);
    }
    let class = ix
        .kind("IngressClass")
        .iter()
        .copied()
        .find(|o| o.doc.str_at(&["spec", "controller"]) == Some("cilium.io/ingress-controller"));
    if class.is_some() || data(c, "enable-ingress-controller") == Some("true") {
        let mut e = cilium_edge(
            ix,
            "Cilium Ingress".into(),
            "enable-ingress-proxy-protocol",
            "ingress-default-xff-num-trusted-hops",
        );
        if let Some(ic) = class {
            e.members.push(ic.id());
        }
        for s in ix.kind("Service") {
            if s.name == "cilium-ingress" || s.label("cilium.io/ingress") == Some("true") {
                e.add_service(s);
            }
        }
        if let Some(s) = e.services.first() {
            e.source_kept.as_mut().expect("set by cilium_edge").at = s.at.clone();
        }
        edges.push(e);
    }
    for (gw, _) in gateways_of(ix, CONTROLLER_NAME) {
        let mut e = cilium_edge(
            ix,
            format!("Gateway {}/{}", gw.namespace, gw.name),
            "enable-gateway-api-proxy-protocol",
            "gateway-api-xff-num-trusted-hops",
        );
        e.members.push(gw.id());
        if let Some(s) = ix.get("Service", &gw.namespace, &format!("cilium-gateway-{}", gw.name)) {
            e.add_service(s);
        }
        edges.push(e);
    }
    edges
}

impl Controller for Cilium {
    fn name(&self) -> &'static str {
        "Cilium"
    }

    fn fix(&self, rule: &str, edge: &Edge, _svc: Option<&ServiceFacts>) -> Option<String> {
        let gateway = edge.instance.starts_with("Gateway ");
        Some(match rule {
            "hops-mismatch" | "lb-l7-forwarded-headers-ignored" => {
                if gateway {
                    "Helm: --set gatewayAPI.xffNumTrustedHops=<HTTP proxies in front> (cilium-config gateway-api-xff-num-trusted-hops)".into()
                } else {
                    "Helm: --set ingressController.defaultXffNumTrustedHops=<HTTP proxies in front> (cilium-config ingress-default-xff-num-trusted-hops)".into()
                }
            }
            "proxy-protocol-mismatch" => {
                if gateway {
                    "Helm: --set gatewayAPI.enableProxyProtocol=true together with the load balancer's PROXY annotation, or neither".into()
                } else {
                    "Helm: --set ingressController.enableProxyProtocol=true together with the load balancer's PROXY annotation, or neither".into()
                }
            }
            _ => return None,
        })
    }
}
