//! The manifest rules, applied to an ingress-nginx chart values file
//! (`controller.service.*`, `controller.config.*`, `controller.kind`,
//! `controller.replicaCount`, `controller.topologySpreadConstraints`).

use realip_kube::Node;

use crate::finding::{Finding, Severity};
use crate::rules::proxy_annotation_in;

fn at<'a>(values: &'a Node, path: &[&str]) -> Option<&'a Node> {
    values.at(path)
}

/// Checks chart values read from `file`.
#[allow(clippy::too_many_lines)] // one flat list of checks, like rules.rs
pub fn check(values: &Node, file: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let line = |path: &[&str]| at(values, path).map_or(values.line, |n| n.line);
    let mut push = |path: &[&str], rule, severity, message: String, why, fix: &str| {
        out.push(Finding {
            rule,
            severity,
            object: "values".into(),
            file: file.to_owned(),
            line: line(path),
            message,
            why,
            fix: fix.to_owned(),
        });
    };
    let etp = values.str_at(&["controller", "service", "externalTrafficPolicy"]).filter(|e| !e.is_empty());
    let svc_type = values.str_at(&["controller", "service", "type"]).unwrap_or("LoadBalancer");
    let annotations = at(values, &["controller", "service", "annotations"]);
    let lb_pp = proxy_annotation_in(annotations).is_some();
    let config = |k: &str| values.str_at(&["controller", "config", k]);
    if matches!(svc_type, "LoadBalancer" | "NodePort") && etp != Some("Local") && !lb_pp {
        push(
            &["controller", "service"],
            "ingress-etp-cluster",
            Severity::Error,
            format!("controller.service.externalTrafficPolicy is {} and no PROXY protocol: the client IP is lost to SNAT", etp.unwrap_or("unset (Cluster)")),
            "With Cluster, kube-proxy masquerades traffic it forwards to another node: the ingress sees node addresses.",
            "--set controller.service.externalTrafficPolicy=Local",
        );
    }
    for flag in ["use-forwarded-headers", "enable-real-ip"] {
        if config(flag) == Some("true") {
            let cidr = config("proxy-real-ip-cidr");
            if cidr.is_none_or(|c| c.split(',').any(|c| matches!(c.trim(), "0.0.0.0/0" | "::/0" | ""))) {
                push(
                    &["controller", "config", flag],
                    "forwarded-headers-from-everyone",
                    Severity::Error,
                    format!(
                        "controller.config.{flag}: true with proxy-real-ip-cidr {}",
                        cidr.map_or("unset (0.0.0.0/0)".to_owned(), |c| format!("`{c}`"))
                    ),
                    "Every peer's X-Forwarded-For is then believed: any client can choose its IP.",
                    "--set-string controller.config.proxy-real-ip-cidr=<load balancer CIDRs>",
                );
            }
        }
    }
    let cfg_pp = config("use-proxy-protocol").map(|v| v == "true");
    match (lb_pp, cfg_pp) {
        (true, Some(false) | None) => push(
            &["controller", "service", "annotations"],
            "proxy-protocol-mismatch",
            Severity::Error,
            "the load balancer annotations send PROXY protocol but controller.config.use-proxy-protocol is not \"true\"".into(),
            "The ingress reads the PROXY header as HTTP and rejects every connection.",
            "--set-string controller.config.use-proxy-protocol=true",
        ),
        (false, Some(true)) => push(
            &["controller", "config", "use-proxy-protocol"],
            "proxy-protocol-mismatch",
            Severity::Error,
            "controller.config.use-proxy-protocol is \"true\" but no load-balancer annotation sends PROXY protocol".into(),
            "The ingress waits for a PROXY header that never comes: every request fails.",
            "add the cloud's PROXY annotation under controller.service.annotations, or turn use-proxy-protocol off",
        ),
        _ => {}
    }
    let daemonset = values.str_at(&["controller", "kind"]) == Some("DaemonSet");
    if !daemonset {
        let replicas: u32 = values.str_at(&["controller", "replicaCount"]).and_then(|r| r.parse().ok()).unwrap_or(1);
        if replicas < 2 {
            push(
                &["controller", "replicaCount"],
                "ingress-single-replica",
                Severity::Warning,
                format!("controller.replicaCount is {replicas}: with Local only one node can serve"),
                "Local sends traffic only to nodes with a ready ingress pod.",
                "--set controller.replicaCount=3 (or controller.kind=DaemonSet)",
            );
        }
        let spread = at(values, &["controller", "topologySpreadConstraints"])
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .any(|c| c.str_at(&["topologyKey"]) == Some("kubernetes.io/hostname"));
        if replicas >= 2 && !spread {
            push(
                &["controller"],
                "ingress-no-spread",
                Severity::Warning,
                "controller.topologySpreadConstraints has no kubernetes.io/hostname constraint".into(),
                "With Local, traffic per node follows pod placement.",
                "set controller.topologySpreadConstraints with maxSkew: 1 on kubernetes.io/hostname",
            );
        }
    }
    out
}
