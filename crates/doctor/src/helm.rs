//! Chart values (`--helm-values`): recognise which chart they belong to
//! (ingress-nginx, Traefik, realip), turn them into the same client-IP
//! facts the manifest modules report, and judge them with the same rules
//! ([`crate::rules::judge`]), so a finding reads the same whether it comes
//! from a rendered manifest or from values. Unknown values are not judged
//! (the caller says so).
//!
//! Values describe only part of what the chart renders: the rollout rules
//! (PDB, maxUnavailable, preStop) are not judged from values, the charts'
//! defaults for them being sound; render the chart (`helm template`) and
//! audit the manifests for those.

use realip_kube::Node;

use crate::cloud;
use crate::controllers::{ingress_nginx, realip as realip_mod, traefik};
use crate::finding::{Finding, Place};
use crate::model::{Edge, Fact, Pp, ServiceFacts, Trust, WorkloadFacts};
use crate::rules;

/// The charts the doctor reads values of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chart {
    /// kubernetes/ingress-nginx `ingress-nginx`.
    IngressNginx,
    /// traefik/traefik-helm-chart `traefik`.
    Traefik,
    /// realip's own chart (`deploy/helm/realip`).
    Realip,
}

impl std::fmt::Display for Chart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Chart::IngressNginx => "ingress-nginx",
            Chart::Traefik => "Traefik",
            Chart::Realip => "realip",
        })
    }
}

/// Which chart `values` belong to, from keys only that chart has.
pub fn recognise(values: &Node) -> Option<Chart> {
    let has = |p: &[&str]| values.at(p).is_some();
    if has(&["proxyProtocol", "cloud"])
        || has(&["config", "trustedProxies"])
        || has(&["controller", "drainDelaySeconds"])
        || has(&["controller", "spreadByHostname"])
    {
        return Some(Chart::Realip);
    }
    let image =
        values.str_at(&["image", "repository"]).or_else(|| values.str_at(&["image", "name"])).unwrap_or_default();
    if has(&["ports", "web"])
        || has(&["ports", "websecure"])
        || has(&["providers", "kubernetesCRD"])
        || image.contains("traefik")
    {
        return Some(Chart::Traefik);
    }
    let c = values.get("controller")?;
    [
        "replicaCount",
        "config",
        "service",
        "image",
        "kind",
        "ingressClassResource",
        "admissionWebhooks",
        "autoscaling",
        "topologySpreadConstraints",
    ]
    .iter()
    .any(|k| c.get(k).is_some())
    .then_some(Chart::IngressNginx)
}

struct Values<'a> {
    v: &'a Node,
    file: &'a str,
}

impl Values<'_> {
    fn place(&self, path: &[&str]) -> Place {
        // The deepest existing node on the path.
        let mut n = self.v;
        for k in path {
            match n.get(k) {
                Some(next) => n = next,
                None => break,
            }
        }
        Place { object: "values".into(), file: self.file.to_owned(), line: n.line }
    }

    fn str(&self, path: &[&str]) -> Option<&str> {
        self.v.str_at(path).filter(|s| !s.is_empty())
    }

    fn service(&self, base: &[&str], spec: &[&str], name: &str) -> ServiceFacts {
        let p = |k: &'static str| [base, spec, &[k]].concat();
        let ann = [base, &["annotations"]].concat();
        let annotations = self.v.at(&ann);
        ServiceFacts {
            name: name.to_owned(),
            namespace: "<release namespace>".into(),
            at: self.place(base),
            ty: self.str(&p("type")).unwrap_or("LoadBalancer").to_owned(),
            etp: self.str(&p("externalTrafficPolicy")).map(str::to_owned),
            etp_at: self.place(&p("externalTrafficPolicy")),
            annotations_at: self.place(&ann),
            annotation_lines: annotations
                .map(Node::entries)
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| (k.clone(), v.line))
                .collect(),
            lb: cloud::classify(annotations),
            dual_stack: None,
            health_check_node_port: true,
            ip_mode_proxy: false,
            type_at: self.place(&p("type")),
        }
    }

    /// A workload from `kind`, `replicas`, autoscaling and spread values.
    #[allow(clippy::too_many_arguments)]
    fn workload(
        &self,
        kind: Option<&str>,
        replicas: &[&str],
        hpa: &[&str],
        spread: &[&str],
        default_replicas: u32,
    ) -> WorkloadFacts {
        let kind = kind.unwrap_or("Deployment");
        let autoscaling = self.str(&[hpa, &["enabled"]].concat()) == Some("true");
        let replicas = (kind != "DaemonSet").then(|| {
            if autoscaling {
                let p = [hpa, &["minReplicas"]].concat();
                Fact::new(self.str(&p).and_then(|r| r.parse().ok()).unwrap_or(1), p.join("."), self.place(&p))
            } else {
                Fact::new(
                    self.str(replicas).and_then(|r| r.parse().ok()).unwrap_or(default_replicas),
                    replicas.join("."),
                    self.place(replicas),
                )
            }
        });
        let spread_node = self.v.at(spread);
        WorkloadFacts {
            kind: kind.to_owned(),
            name: "<release>".into(),
            namespace: "<release namespace>".into(),
            at: self.place(&[]),
            replicas,
            spread: spread_node.is_some_and(|n| {
                n.items().iter().any(|c| c.str_at(&["topologyKey"]) == Some("kubernetes.io/hostname"))
            }),
            spread_at: self.place(spread),
            pdb: true,
            max_unavailable: None,
            drains: true,
            containers_at: self.place(&[]),
            grace: (u64::MAX, None),
            grace_at: self.place(&[]),
            pod_labels: Vec::new(),
        }
    }
}

/// Audits chart values read from `file`: which chart, and the findings
/// (`None` when the values belong to no chart the doctor knows).
pub fn audit(values: &Node, file: &str) -> (Option<Chart>, Vec<Finding>) {
    let Some(chart) = recognise(values) else { return (None, Vec::new()) };
    let v = Values { v: values, file };
    let mut e;
    match chart {
        Chart::IngressNginx => {
            e = Edge::new(&ingress_nginx::INGRESS_NGINX, "values (ConfigMap controller.config)".into());
            if v.str(&["controller", "service", "enabled"]) != Some("false") {
                e.services.push(v.service(&["controller", "service"], &[], "<release>-ingress-nginx-controller"));
            }
            let w = v.workload(
                v.str(&["controller", "kind"]),
                &["controller", "replicaCount"],
                &["controller", "autoscaling"],
                &["controller", "topologySpreadConstraints"],
                1,
            );
            e.workloads.push(w);
            let place = |k: &str| v.place(&["controller", "config", k]);
            ingress_nginx::apply_data(&mut e, values.at(&["controller", "config"]), &place, "controller.config.");
        }
        Chart::Traefik => {
            e = Edge::new(&traefik::TRAEFIK, "values".into());
            if v.str(&["service", "enabled"]) != Some("false") {
                e.services.push(v.service(&["service"], &["spec"], "<release>-traefik"));
            }
            let w = v.workload(
                v.str(&["deployment", "kind"]),
                &["deployment", "replicas"],
                &["autoscaling"],
                &["topologySpreadConstraints"],
                1,
            );
            e.workloads.push(w);
            traefik::from_values(values, file, &mut e);
        }
        Chart::Realip => {
            e = Edge::new(&realip_mod::REALIP, "values".into());
            let mut svc = v.service(&["service"], &[], "<release>-realip");
            if svc.etp.is_none() {
                svc.etp = Some("Local".into()); // the chart's default
            }
            let pp_on = v.str(&["proxyProtocol", "enabled"]) == Some("true");
            if pp_on && svc.lb.proxy_protocol.is_none() {
                // The chart writes the AWS PROXY annotations itself.
                svc.lb.proxy_protocol = Some("service.beta.kubernetes.io/aws-load-balancer-proxy-protocol");
            }
            e.services.push(svc);
            let mut w = v.workload(
                v.str(&["controller", "kind"]),
                &["controller", "replicas"],
                &["controller", "autoscaling"],
                &["controller", "topologySpread"],
                2,
            );
            w.spread = v.str(&["controller", "spreadByHostname"]) != Some("false");
            e.workloads.push(w);
            e.proxy_protocol = Some(Fact::new(
                if pp_on { Pp::Required } else { Pp::Off },
                "proxyProtocol.enabled",
                v.place(&["proxyProtocol", "enabled"]),
            ));
            let trusted: Vec<&str> = values
                .at(&["config", "trustedProxies"])
                .map(Node::items)
                .unwrap_or_default()
                .iter()
                .filter_map(Node::as_str)
                .collect();
            e.forwarded = Some(Fact::new(
                Trust::from_list(&trusted),
                "config.trustedProxies",
                v.place(&["config", "trustedProxies"]),
            ));
        }
    }
    let mut out = Vec::new();
    rules::judge(&e, &mut out);
    for f in &mut out {
        f.object = "values".into();
    }
    (Some(chart), out)
}

/// Checks chart values read from `file` (the findings of [`audit`]).
pub fn check(values: &Node, file: &str) -> Vec<Finding> {
    audit(values, file).1
}
