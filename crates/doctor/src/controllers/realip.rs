//! realip's own proxy: workloads and Services labelled
//! `app.kubernetes.io/name: realip`, and the realip.toml they run with (a
//! ConfigMap value holding `[[listener]]` or `[client_ip]`), parsed with
//! the proxy's own configuration types ([`realip_proxy::config::Config`]),
//! so the doctor reads exactly what the proxy would (multi-line arrays,
//! every quoting style). Lines point into the ConfigMap: the line of the
//! TOML key inside the block scalar.

use realip_kube::{Node, Object};
use realip_proxy::config::{Config, ProxyProtocolIn};

use super::{add_workload, Index};
use crate::finding::{Finding, Place};
use crate::model::{Controller, Edge, Fact, Pp, ServiceFacts, Trust};

/// The realip controller kind.
#[derive(Debug)]
pub struct Realip;

/// Its one instance.
pub static REALIP: Realip = Realip;

/// A realip.toml found in a ConfigMap, parsed.
#[derive(Debug)]
pub struct Toml<'a> {
    /// The ConfigMap.
    pub cm: &'a Object,
    /// The data key.
    pub key: String,
    /// The text.
    pub text: &'a str,
    /// The parsed config, or the parser's message.
    pub config: Result<Config, String>,
}

impl Toml<'_> {
    /// The place of the first line starting with `key` (after spaces) in the
    /// TOML text (a block scalar, whose node starts at its first content line).
    pub fn place_of(&self, key: &str) -> Place {
        let base = self.cm.line_of(&["data", &self.key]);
        let offset = self.text.lines().position(|l| l.trim_start().starts_with(key)).unwrap_or(0);
        Place { object: self.cm.id(), file: self.cm.source.file.clone(), line: base + offset }
    }
}

/// Every realip.toml in ConfigMaps.
pub fn configs<'a>(ix: &Index<'a>) -> Vec<Toml<'a>> {
    let mut out = Vec::new();
    for cm in ix.kind("ConfigMap") {
        for (k, v) in cm.doc.get("data").map(Node::entries).unwrap_or_default() {
            let Some(text) = v.as_str().filter(|t| t.contains("[[listener]]") || t.contains("[client_ip]")) else {
                continue;
            };
            let config = Config::parse(text).map_err(|e| e.to_string());
            out.push(Toml { cm, key: k.clone(), text, config });
        }
    }
    out
}

fn is_realip(o: &Object) -> bool {
    o.label("app.kubernetes.io/name") == Some("realip")
}

/// Findings about the configs themselves: unparsable, or trusting everyone.
pub fn config_findings(tomls: &[Toml]) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in tomls {
        match &t.config {
            Err(e) => out.push(Finding::new(
                "realip-config-invalid",
                &Place::of(t.cm, &["data", &t.key]),
                format!("realip config `{}` does not parse: {}", t.key, e.lines().next().unwrap_or(e)),
                "run `realip proxy --config realip.toml --check` and fix what it names".into(),
            )),
            Ok(c) => {
                if Trust::from_list(&c.client_ip.trusted) == Trust::Everyone {
                    out.push(Finding::new(
                        "forwarded-headers-from-everyone",
                        &t.place_of("trusted"),
                        format!("realip config `{}` trusts 0.0.0.0/0 or ::/0 in [client_ip] trusted", t.key),
                        "list only the load balancer / CDN ranges in [client_ip] trusted".into(),
                    ));
                }
            }
        }
    }
    out
}

/// Ports of listeners that require PROXY, per namespace.
pub fn proxy_required_ports<'a>(tomls: &'a [Toml]) -> Vec<(&'a str, String)> {
    let mut out = Vec::new();
    for t in tomls {
        let Ok(c) = &t.config else { continue };
        for l in c.listeners.iter().filter(|l| l.proxy_protocol == ProxyProtocolIn::Required) {
            if let Some((_, port)) = l.bind.rsplit_once(':') {
                out.push((t.cm.namespace.as_str(), port.to_owned()));
            }
        }
    }
    out
}

fn apply(e: &mut Edge, t: &Toml) {
    let Ok(c) = &t.config else { return };
    let pp = if c.listeners.iter().any(|l| l.proxy_protocol == ProxyProtocolIn::Required) {
        Pp::Required
    } else if c.listeners.iter().any(|l| l.proxy_protocol == ProxyProtocolIn::Optional) {
        Pp::Optional
    } else {
        Pp::Off
    };
    e.proxy_protocol = Some(Fact::new(pp, "[[listener]] proxy_protocol", t.place_of("proxy_protocol")));
    let from: Vec<&String> = c.listeners.iter().flat_map(|l| &l.proxy_protocol_from).collect();
    if pp != Pp::Off && !from.is_empty() {
        e.proxy_from = Some(Fact::new(
            Trust::from_list(&from),
            "[[listener]] proxy_protocol_from",
            t.place_of("proxy_protocol_from"),
        ));
    }
    let headers = c.client_ip.sources.iter().any(|s| s != "proxy-protocol");
    let trust = if headers { Trust::from_list(&c.client_ip.trusted) } else { Trust::Nobody };
    e.forwarded = Some(Fact::new(trust, "[client_ip] trusted", t.place_of("trusted")));
    if !c.lifecycle.drain_delay.0.is_zero() {
        for w in &mut e.workloads {
            w.drains = true; // realip drains by itself on SIGTERM ([lifecycle] drain_delay)
        }
    }
}

/// Finds the instances.
pub fn find<'a>(ix: &Index<'a>, tomls: &[Toml<'a>]) -> Vec<Edge> {
    let mut edges: Vec<Edge> = Vec::new();
    for w in ix.workloads().filter(|w| is_realip(w)) {
        let mut e = Edge::new(&REALIP, format!("{}/{}", w.namespace, w.name));
        add_workload(&mut e, w, ix);
        edges.push(e);
    }
    for s in ix
        .kind("Service")
        .iter()
        .filter(|s| is_realip(s) && s.doc.str_at(&["spec", "type"]).is_some_and(|t| t != "ClusterIP"))
    {
        if edges.iter().any(|e| e.members.contains(&s.id())) {
            continue;
        }
        if let Some(e) = edges.iter_mut().find(|e| e.instance.split('/').next() == Some(s.namespace.as_str())) {
            e.add_service(s);
        } else {
            let mut e = Edge::new(&REALIP, format!("{}/{}", s.namespace, s.name));
            e.add_service(s);
            edges.push(e);
        }
    }
    for e in &mut edges {
        let ns = e.instance.split('/').next().unwrap_or_default().to_owned();
        if let Some(t) = tomls.iter().find(|t| t.cm.namespace == ns && t.config.is_ok()) {
            apply(e, t);
        }
    }
    edges
}

impl Controller for Realip {
    fn name(&self) -> &'static str {
        "realip"
    }

    fn fix(&self, rule: &str, _edge: &Edge, svc: Option<&ServiceFacts>) -> Option<String> {
        Some(match rule {
            "ingress-etp-cluster" => {
                let s = svc?;
                format!("kubectl patch svc {} -n {} -p '{{\"spec\":{{\"externalTrafficPolicy\":\"Local\"}}}}' (Helm: service.externalTrafficPolicy=Local, the chart's default)", s.name, s.namespace)
            }
            "forwarded-headers-from-everyone" | "trusted-cidr-invalid" | "lb-l7-forwarded-headers-ignored" => "[client_ip] trusted = [\"<load balancer CIDRs>\"] with sources = [\"xff\"] in realip.toml".into(),
            "proxy-protocol-mismatch" => "proxy_protocol = \"required\" on the [[listener]] (Helm: proxyProtocol.enabled=true, which also sets the AWS annotations), or \"off\" when the load balancer does not send PROXY".into(),
            "proxy-protocol-from-everyone" => "proxy_protocol_from = [\"<load balancer CIDRs>\"] on the [[listener]]".into(),
            "ingress-single-replica" => "Helm: --set replicas=3 (or daemonset=true)".into(),
            _ => return None,
        })
    }
}
