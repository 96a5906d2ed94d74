//! Envoy Gateway: Gateways whose GatewayClass has controllerName
//! `gateway.envoyproxy.io/gatewayclass-controller`; the Envoy Service from
//! the EnvoyProxy the class or Gateway references (`provider.kubernetes.
//! envoyService`: type, externalTrafficPolicy — Local by default — and
//! annotations), or the Services Envoy Gateway created (live clusters);
//! `ClientTrafficPolicy` targeting the Gateway (`clientIPDetection`
//! `xForwardedFor.numTrustedHops`/`trustedCIDRs`, `customHeader` +
//! `failClosed`, `proxyProtocol`/`enableProxyProtocol`); `SecurityPolicy`
//! `clientCIDRs` and `BackendTrafficPolicy` rate limits keyed on the client.

use realip_kube::{Node, Object};

use super::{gateways_of, targets, Index};
use crate::cloud;
use crate::finding::{Finding, Place};
use crate::model::{Controller, Edge, Fact, Pp, ServiceFacts, Trust};

/// The Envoy Gateway controller kind.
#[derive(Debug)]
pub struct EnvoyGateway;

/// Its one instance.
pub static ENVOY_GATEWAY: EnvoyGateway = EnvoyGateway;

/// The GatewayClass controllerName.
pub const CONTROLLER_NAME: &str = "gateway.envoyproxy.io/gatewayclass-controller";

fn params<'a>(ix: &Index<'a>, o: &Object, path: &[&str], default_ns: &str) -> Option<&'a Object> {
    let r = o.doc.at(path)?;
    if r.str_at(&["kind"]) != Some("EnvoyProxy") {
        return None;
    }
    ix.get("EnvoyProxy", r.str_at(&["namespace"]).unwrap_or(default_ns), r.str_at(&["name"])?)
}

/// Service facts from an EnvoyProxy (or Envoy Gateway's defaults).
fn envoy_service(gw: &Object, ep: Option<&Object>) -> ServiceFacts {
    let base = ["spec", "provider", "kubernetes", "envoyService"];
    let at = |k: &str| match ep {
        Some(p) => {
            let mut path = base.to_vec();
            path.push(k);
            Place::of(p, if p.doc.at(&path).is_some() { &path } else { &base[..] })
        }
        None => Place::of(gw, &["spec"]),
    };
    let svc = ep.and_then(|p| p.doc.at(&base));
    // Annotations: the EnvoyProxy's, else the Gateway's spec.infrastructure.annotations.
    let infra = gw.doc.at(&["spec", "infrastructure", "annotations"]);
    let (annotations, annotations_at) = match (svc.and_then(|s| s.get("annotations")), infra) {
        (Some(a), _) => (Some(a), at("annotations")),
        (None, Some(a)) => (Some(a), Place { line: a.line, ..Place::of(gw, &[]) }),
        (None, None) => (None, at("annotations")),
    };
    ServiceFacts {
        name: format!("envoy-{}-{}", gw.namespace, gw.name),
        namespace: "envoy-gateway-system".into(),
        at: at("type"),
        ty: svc.and_then(|s| s.str_at(&["type"])).unwrap_or("LoadBalancer").to_owned(),
        etp: Some(svc.and_then(|s| s.str_at(&["externalTrafficPolicy"])).unwrap_or("Local").to_owned()),
        etp_at: at("externalTrafficPolicy"),
        annotation_lines: annotations
            .map(Node::entries)
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.clone(), v.line))
            .collect(),
        annotations_at,
        lb: cloud::classify(annotations),
        dual_stack: None,
        health_check_node_port: true,
        ip_mode_proxy: false,
        type_at: at("type"),
    }
}

/// Facts of the ClientTrafficPolicy `p`.
fn client_traffic(e: &mut Edge, p: &Object) {
    let d = &p.doc;
    let xff = ["spec", "clientIPDetection", "xForwardedFor"];
    if let Some(x) = d.at(&xff) {
        if let Some(h) = x.str_at(&["numTrustedHops"]).and_then(|h| h.parse().ok()) {
            let path = [&xff[..], &["numTrustedHops"]].concat();
            e.hops.push(Fact::new(h, "clientIPDetection.xForwardedFor.numTrustedHops", Place::of(p, &path)));
        }
        if let Some(c) = x.get("trustedCIDRs") {
            let list: Vec<&str> = c.items().iter().filter_map(Node::as_str).collect();
            let path = [&xff[..], &["trustedCIDRs"]].concat();
            e.forwarded = Some(Fact::new(
                Trust::from_list(&list),
                "clientIPDetection.xForwardedFor.trustedCIDRs",
                Place::of(p, &path),
            ));
        }
    }
    let ch = ["spec", "clientIPDetection", "customHeader"];
    if let Some(h) = d.at(&ch) {
        let name = h.str_at(&["name"]).unwrap_or("?");
        e.forwarded = Some(Fact::new(
            Trust::Cidrs(Vec::new()),
            format!("clientIPDetection.customHeader {name}"),
            Place::of(p, &ch),
        ));
        if h.str_at(&["failClosed"]) != Some("true") {
            e.own.push(Finding::new(
                "custom-header-fail-open",
                &Place::of(p, &ch),
                format!(
                    "ClientTrafficPolicy {}/{} takes the client IP from header `{name}` without failClosed: true",
                    p.namespace, p.name
                ),
                "clientIPDetection.customHeader.failClosed: true (requests without the header are then rejected)"
                    .into(),
            ));
        }
    }
    if let Some(pp) = d.at(&["spec", "proxyProtocol"]) {
        let mode = if pp.str_at(&["optional"]) == Some("true") { Pp::Optional } else { Pp::Required };
        e.proxy_protocol =
            Some(Fact::new(mode, "ClientTrafficPolicy proxyProtocol", Place::of(p, &["spec", "proxyProtocol"])));
    } else if d.str_at(&["spec", "enableProxyProtocol"]) == Some("true") {
        e.proxy_protocol = Some(Fact::new(
            Pp::Required,
            "ClientTrafficPolicy enableProxyProtocol",
            Place::of(p, &["spec", "enableProxyProtocol"]),
        ));
    }
}

/// Routes attached to the Gateway (`parentRefs`).
fn routes_of<'a>(ix: &Index<'a>, gw: &Object) -> Vec<&'a Object> {
    ["HTTPRoute", "GRPCRoute"]
        .iter()
        .flat_map(|k| ix.kind(k).iter().copied())
        .filter(|r| {
            r.doc.at(&["spec", "parentRefs"]).map(Node::items).unwrap_or_default().iter().any(|p| {
                p.str_at(&["name"]) == Some(gw.name.as_str())
                    && p.str_at(&["namespace"]).unwrap_or(&r.namespace) == gw.namespace
            })
        })
        .collect()
}

fn policy_applies(p: &Object, gw: &Object, routes: &[&Object]) -> bool {
    (p.namespace == gw.namespace && targets(p, "Gateway", &gw.name))
        || routes.iter().any(|r| {
            r.namespace == p.namespace && (targets(p, "HTTPRoute", &r.name) || targets(p, "GRPCRoute", &r.name))
        })
}

/// Finds the instances.
pub fn find(ix: &Index) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (gw, class) in gateways_of(ix, CONTROLLER_NAME) {
        let mut e = Edge::new(&ENVOY_GATEWAY, format!("Gateway {}/{}", gw.namespace, gw.name));
        e.members.push(gw.id());
        let ep = params(ix, gw, &["spec", "infrastructure", "parametersRef"], &gw.namespace)
            .or_else(|| class.and_then(|c| params(ix, c, &["spec", "parametersRef"], "envoy-gateway-system")));
        // Services Envoy Gateway created for this Gateway (a live cluster), else the EnvoyProxy's.
        let owned: Vec<&Object> = ix
            .kind("Service")
            .iter()
            .copied()
            .filter(|s| {
                s.label("gateway.envoyproxy.io/owning-gateway-name") == Some(gw.name.as_str())
                    && s.label("gateway.envoyproxy.io/owning-gateway-namespace").is_none_or(|n| n == gw.namespace)
            })
            .collect();
        if owned.is_empty() {
            e.services.push(envoy_service(gw, ep));
        }
        for s in owned {
            e.add_service(s);
        }
        e.forwarded = Some(Fact::new(Trust::Nobody, "clientIPDetection (unset)", Place::of(gw, &["spec"])));
        e.proxy_protocol = Some(Fact::new(Pp::Off, "proxyProtocol (unset)", Place::of(gw, &["spec"])));
        for p in ix.kind_in("ClientTrafficPolicy", &gw.namespace).iter().filter(|p| targets(p, "Gateway", &gw.name)) {
            client_traffic(&mut e, p);
        }
        let routes = routes_of(ix, gw);
        for p in ix.kind("SecurityPolicy").iter().filter(|p| policy_applies(p, gw, &routes)) {
            for (i, r) in
                p.doc.at(&["spec", "authorization", "rules"]).map(Node::items).unwrap_or_default().iter().enumerate()
            {
                if r.at(&["principal", "clientCIDRs"]).is_some() {
                    let at = Place {
                        object: p.id(),
                        file: p.source.file.clone(),
                        line: r.at(&["principal", "clientCIDRs"]).map_or(r.line, |n| n.line),
                    };
                    e.client_keyed.push(Fact::new(
                        false,
                        format!(
                            "SecurityPolicy {}/{} authorization.rules[{i}].principal.clientCIDRs",
                            p.namespace, p.name
                        ),
                        at,
                    ));
                }
            }
        }
        for p in ix.kind("BackendTrafficPolicy").iter().filter(|p| policy_applies(p, gw, &routes)) {
            for scope in ["global", "local"] {
                for (i, r) in p
                    .doc
                    .at(&["spec", "rateLimit", scope, "rules"])
                    .map(Node::items)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    for s in r.get("clientSelectors").map(Node::items).unwrap_or_default() {
                        if let Some(n) = s.get("sourceCIDR") {
                            let at = Place { object: p.id(), file: p.source.file.clone(), line: n.line };
                            e.client_keyed.push(Fact::new(
                                false,
                                format!(
                                    "BackendTrafficPolicy {}/{} rateLimit.{scope}.rules[{i}] sourceCIDR",
                                    p.namespace, p.name
                                ),
                                at,
                            ));
                        }
                    }
                }
            }
        }
        edges.push(e);
    }
    edges
}

impl Controller for EnvoyGateway {
    fn name(&self) -> &'static str {
        "Envoy Gateway"
    }

    fn fix(&self, rule: &str, edge: &Edge, _svc: Option<&ServiceFacts>) -> Option<String> {
        let gw = edge.instance.strip_prefix("Gateway ").unwrap_or(&edge.instance);
        let (ns, name) = gw.split_once('/').unwrap_or(("default", gw));
        let ctp = format!("a ClientTrafficPolicy in namespace {ns} with targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: {name}}}] and");
        Some(match rule {
            "ingress-etp-cluster" => "EnvoyProxy spec.provider.kubernetes.envoyService.externalTrafficPolicy: Local (the default; referenced from the GatewayClass parametersRef or the Gateway's spec.infrastructure.parametersRef)".into(),
            "forwarded-headers-from-everyone" | "trusted-cidr-invalid" => format!("{ctp} clientIPDetection.xForwardedFor.trustedCIDRs: [<load balancer CIDRs>]"),
            "lb-l7-forwarded-headers-ignored" | "client-policy-without-client-ip" => format!("{ctp} clientIPDetection.xForwardedFor.numTrustedHops: <HTTP proxies in front> (or trustedCIDRs), or proxyProtocol: {{}} with PROXY on the load balancer"),
            "hops-mismatch" => format!("{ctp} clientIPDetection.xForwardedFor.numTrustedHops: <number of HTTP proxies in front>"),
            "proxy-protocol-mismatch" => format!("{ctp} proxyProtocol: {{}} (or remove it when the load balancer does not send PROXY)"),
            "ingress-single-replica" => "EnvoyProxy spec.provider.kubernetes.envoyDeployment.replicas: 3 (or envoyHpa.minReplicas)".into(),
            "ingress-no-pdb" => "EnvoyProxy spec.provider.kubernetes.envoyPDB.maxUnavailable: 1".into(),
            _ => return None,
        })
    }
}
