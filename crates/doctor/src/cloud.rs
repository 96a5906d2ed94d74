//! What the load balancer in front of a Service does to the client IP,
//! read from the Service's annotations: one table, per cloud, of
//! annotations → (L4 or L7, node or pod targets, PROXY protocol, hostname,
//! health-check port). `docs/doctor.md` prints the same table.
//!
//! Invariant: an unknown cloud is an L4 load balancer targeting nodes
//! (kube-proxy's model), so the generic Service rules apply unchanged.

use realip_kube::Node;

/// Where the load balancer terminates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Passes TCP through: the client is the packet's source (unless SNAT).
    L4,
    /// Opens its own HTTP connection: the client is in X-Forwarded-For.
    L7,
}

/// What the load balancer connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Node ports: kube-proxy's externalTrafficPolicy decides about SNAT.
    Node,
    /// Pod IPs directly: externalTrafficPolicy does not matter.
    Pod,
}

/// One cloud's annotations.
#[derive(Debug)]
pub struct Cloud {
    /// Display name.
    pub name: &'static str,
    /// Annotation prefixes that identify the cloud.
    pub prefixes: &'static [&'static str],
    /// Annotations that turn PROXY protocol on, with the value meaning on
    /// (`*` any value but `false`/`none`/empty), or a `key=value` the
    /// annotation's text must contain.
    pub proxy_protocol: &'static [(&'static str, &'static str)],
    /// Annotations whose values make it an HTTP (L7) load balancer.
    pub l7: &'static [(&'static str, &'static [&'static str])],
    /// Annotation (and value) that makes it target pods directly.
    pub pod_targets: Option<(&'static str, &'static str)>,
    /// Annotation text that preserves the client IP with pod targets.
    pub preserve_client_ip: Option<(&'static str, &'static str)>,
    /// Whether its load balancers are always published by hostname.
    pub always_hostname: bool,
    /// The annotation (and value) that publishes a hostname instead of an IP.
    pub hostname: Option<(&'static str, &'static str)>,
    /// The health-check port annotation and the values that keep
    /// healthCheckNodePort (anything else pins another port).
    pub health_check_port: Option<(&'static str, &'static [&'static str])>,
    /// The PROXY annotation to print in fixes.
    pub proxy_fix: &'static str,
}

/// The table.
pub const CLOUDS: &[Cloud] = &[
    Cloud {
        name: "AWS",
        prefixes: &["service.beta.kubernetes.io/aws-load-balancer-"],
        proxy_protocol: &[
            ("service.beta.kubernetes.io/aws-load-balancer-proxy-protocol", "*"),
            ("service.beta.kubernetes.io/aws-load-balancer-target-group-attributes", "proxy_protocol_v2.enabled=true"),
        ],
        // In-tree classic ELB in HTTP mode; NLBs are L4 whatever the backend protocol.
        l7: &[("service.beta.kubernetes.io/aws-load-balancer-backend-protocol", &["http", "https"])],
        pod_targets: Some(("service.beta.kubernetes.io/aws-load-balancer-nlb-target-type", "ip")),
        preserve_client_ip: Some((
            "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes",
            "preserve_client_ip.enabled=true",
        )),
        always_hostname: true,
        hostname: None,
        health_check_port: Some(("service.beta.kubernetes.io/aws-load-balancer-healthcheck-port", &[])),
        proxy_fix: "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: \"*\"",
    },
    Cloud {
        name: "DigitalOcean",
        prefixes: &["service.beta.kubernetes.io/do-loadbalancer-"],
        proxy_protocol: &[("service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol", "true")],
        l7: &[("service.beta.kubernetes.io/do-loadbalancer-protocol", &["http", "https", "http2", "http3"])],
        pod_targets: None,
        preserve_client_ip: None,
        always_hostname: false,
        hostname: Some(("service.beta.kubernetes.io/do-loadbalancer-hostname", "*")),
        health_check_port: Some(("service.beta.kubernetes.io/do-loadbalancer-healthcheck-port", &[])),
        proxy_fix: "service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol: \"true\"",
    },
    Cloud {
        name: "Hetzner",
        prefixes: &["load-balancer.hetzner.cloud/"],
        proxy_protocol: &[("load-balancer.hetzner.cloud/uses-proxyprotocol", "true")],
        l7: &[("load-balancer.hetzner.cloud/protocol", &["http", "https"])],
        pod_targets: None,
        preserve_client_ip: None,
        always_hostname: false,
        hostname: Some(("load-balancer.hetzner.cloud/hostname", "*")),
        health_check_port: Some(("load-balancer.hetzner.cloud/health-check-port", &[])),
        proxy_fix: "load-balancer.hetzner.cloud/uses-proxyprotocol: \"true\"",
    },
    Cloud {
        name: "Linode",
        prefixes: &["service.beta.kubernetes.io/linode-loadbalancer-"],
        proxy_protocol: &[("service.beta.kubernetes.io/linode-loadbalancer-proxy-protocol", "*")],
        l7: &[("service.beta.kubernetes.io/linode-loadbalancer-default-protocol", &["http", "https"])],
        pod_targets: None,
        preserve_client_ip: None,
        always_hostname: false,
        hostname: None,
        health_check_port: None,
        proxy_fix: "service.beta.kubernetes.io/linode-loadbalancer-proxy-protocol: v2",
    },
    Cloud {
        name: "Scaleway",
        prefixes: &["service.beta.kubernetes.io/scw-loadbalancer-"],
        proxy_protocol: &[
            ("service.beta.kubernetes.io/scw-loadbalancer-proxy-protocol-v2", "true"),
            ("service.beta.kubernetes.io/scw-loadbalancer-proxy-protocol-v1", "true"),
            ("service.beta.kubernetes.io/scw-loadbalancer-send-proxy-v2", "true"),
        ],
        l7: &[("service.beta.kubernetes.io/scw-loadbalancer-protocol-http", &["true"])],
        pod_targets: None,
        preserve_client_ip: None,
        always_hostname: false,
        hostname: Some(("service.beta.kubernetes.io/scw-loadbalancer-use-hostname", "true")),
        // "auto" (or a value containing it) means healthCheckNodePort.
        health_check_port: Some(("service.beta.kubernetes.io/scw-loadbalancer-health-check-port", &["auto"])),
        proxy_fix: "service.beta.kubernetes.io/scw-loadbalancer-proxy-protocol-v2: \"true\"",
    },
    Cloud {
        name: "OVHcloud",
        prefixes: &["service.beta.kubernetes.io/ovh-loadbalancer-"],
        proxy_protocol: &[("service.beta.kubernetes.io/ovh-loadbalancer-proxy-protocol", "*")],
        l7: &[],
        pod_targets: None,
        preserve_client_ip: None,
        always_hostname: false,
        hostname: None,
        health_check_port: None,
        proxy_fix: "service.beta.kubernetes.io/ovh-loadbalancer-proxy-protocol: v2",
    },
    Cloud {
        name: "Azure",
        prefixes: &["service.beta.kubernetes.io/azure-"],
        proxy_protocol: &[("service.beta.kubernetes.io/azure-pls-proxy-protocol", "true")],
        l7: &[],
        pod_targets: None,
        preserve_client_ip: None,
        always_hostname: false,
        hostname: None,
        health_check_port: Some(("service.beta.kubernetes.io/azure-load-balancer-health-probe-port", &[])),
        proxy_fix: "service.beta.kubernetes.io/azure-pls-proxy-protocol: \"true\"",
    },
    Cloud {
        name: "Google Cloud",
        prefixes: &["cloud.google.com/", "networking.gke.io/"],
        proxy_protocol: &[],
        // A Service used as the backend of a GCE Ingress (L7 application load balancer).
        l7: &[("cloud.google.com/backend-config", &["*"])],
        pod_targets: None,
        preserve_client_ip: None,
        always_hostname: false,
        hostname: None,
        health_check_port: None,
        proxy_fix: "(GCE passthrough load balancers do not send PROXY protocol)",
    },
    Cloud {
        name: "Exoscale",
        prefixes: &["service.beta.kubernetes.io/exoscale-loadbalancer-"],
        proxy_protocol: &[],
        l7: &[],
        pod_targets: None,
        preserve_client_ip: None,
        always_hostname: false,
        hostname: None,
        health_check_port: None,
        proxy_fix: "(Exoscale network load balancers do not send PROXY protocol)",
    },
];

/// Ingress classes of cloud L7 load balancers that can front a controller
/// Service (GCE, AWS Load Balancer Controller ALB, Azure Application Gateway).
pub const L7_INGRESS_CLASSES: &[&str] =
    &["gce", "gce-internal", "alb", "azure-application-gateway", "azure/application-gateway"];

/// What the load balancer of one Service does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lb {
    /// The cloud, if recognised.
    pub cloud: Option<&'static Cloud>,
    /// L4 or L7, and the annotation (or Ingress) that says L7.
    pub layer: Layer,
    /// Why L7: `key: value`.
    pub layer_from: Option<String>,
    /// Node or pod targets.
    pub target: Target,
    /// The annotation key that turns PROXY protocol on.
    pub proxy_protocol: Option<&'static str>,
    /// Pod targets keep the client IP (AWS `preserve_client_ip.enabled=true`).
    pub preserve_client_ip: bool,
    /// Published by hostname: in-cluster clients go through the load balancer.
    pub hostname: bool,
    /// A pinned health-check port: `key: value`.
    pub pinned_health_check: Option<String>,
}

impl PartialEq for Cloud {
    fn eq(&self, o: &Cloud) -> bool {
        self.name == o.name
    }
}
impl Eq for Cloud {}

fn on(value: &str, want: &str) -> bool {
    if want == "*" {
        !value.is_empty() && !matches!(value.to_ascii_lowercase().as_str(), "false" | "none" | "disabled")
    } else if want.contains('=') {
        value.replace(' ', "").split(',').any(|kv| kv.eq_ignore_ascii_case(want))
    } else {
        value.eq_ignore_ascii_case(want)
    }
}

/// Reads `annotations` (a Service's, or chart values' `service.annotations`).
pub fn classify(annotations: Option<&Node>) -> Lb {
    let get = |k: &str| annotations.and_then(|a| a.str_at(&[k]));
    let keys: Vec<&str> =
        annotations.map(|a| a.entries().iter().map(|(k, _)| k.as_str()).collect()).unwrap_or_default();
    let cloud = CLOUDS.iter().find(|c| keys.iter().any(|k| c.prefixes.iter().any(|p| k.starts_with(p))));
    let mut lb = Lb {
        cloud,
        layer: Layer::L4,
        layer_from: None,
        target: Target::Node,
        proxy_protocol: None,
        preserve_client_ip: false,
        hostname: false,
        pinned_health_check: None,
    };
    let Some(c) = cloud else { return lb };
    lb.proxy_protocol = c.proxy_protocol.iter().find(|(k, want)| get(k).is_some_and(|v| on(v, want))).map(|(k, _)| *k);
    let nlb = get("service.beta.kubernetes.io/aws-load-balancer-type").is_some_and(|t| matches!(t, "nlb" | "external"));
    if !nlb {
        if let Some((k, v)) = c.l7.iter().find_map(|(k, vals)| {
            get(k).filter(|v| vals.iter().any(|w| *w == "*" || v.eq_ignore_ascii_case(w))).map(|v| (k, v))
        }) {
            lb.layer = Layer::L7;
            lb.layer_from = Some(format!("{k}: {v}"));
        }
    }
    if let Some((k, v)) = c.pod_targets {
        if get(k).is_some_and(|t| t.eq_ignore_ascii_case(v)) {
            lb.target = Target::Pod;
        }
    }
    lb.preserve_client_ip = c.preserve_client_ip.is_some_and(|(k, v)| get(k).is_some_and(|t| on(t, v)));
    lb.hostname = c.always_hostname || c.hostname.is_some_and(|(k, v)| get(k).is_some_and(|t| on(t, v)));
    if let Some((k, keep)) = c.health_check_port {
        if let Some(v) = get(k) {
            let keeps = v.is_empty() || keep.iter().any(|w| v.contains(w));
            // AWS: only "traffic-port" replaces healthCheckNodePort with the traffic port.
            let pinned = if c.name == "AWS" { v == "traffic-port" } else { !keeps };
            if pinned {
                lb.pinned_health_check = Some(format!("{k}: {v}"));
            }
        }
    }
    lb
}

/// The hostname annotation to print in the hairpin fix for `cloud`.
pub fn hostname_fix(cloud: Option<&Cloud>) -> String {
    match cloud.and_then(|c| c.hostname) {
        Some((k, "*")) => format!("{k}: <a DNS name for the load balancer>"),
        Some((k, v)) => format!("{k}: \"{v}\""),
        None => "publish the load balancer by hostname, or ipMode: Proxy in the Service status (Kubernetes 1.30+ with a cloud that supports it)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb(yaml: &str) -> Lb {
        let n = realip_kube::yaml::parse(yaml, "t").unwrap().remove(0);
        classify(Some(&n))
    }

    #[test]
    fn the_table_reads_each_cloud() {
        let aws_ip = lb("service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip\nservice.beta.kubernetes.io/aws-load-balancer-type: external\n");
        assert_eq!((aws_ip.target, aws_ip.preserve_client_ip, aws_ip.hostname), (Target::Pod, false, true));
        let kept = lb("service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip\nservice.beta.kubernetes.io/aws-load-balancer-target-group-attributes: deregistration_delay.timeout_seconds=30, preserve_client_ip.enabled=true\n");
        assert!(kept.preserve_client_ip);
        let elb_http = lb("service.beta.kubernetes.io/aws-load-balancer-backend-protocol: http\n");
        assert_eq!(elb_http.layer, Layer::L7);
        let nlb_tcp = lb("service.beta.kubernetes.io/aws-load-balancer-backend-protocol: http\nservice.beta.kubernetes.io/aws-load-balancer-type: nlb\n");
        assert_eq!(nlb_tcp.layer, Layer::L4);
        let scw = lb("service.beta.kubernetes.io/scw-loadbalancer-proxy-protocol-v2: \"true\"\nservice.beta.kubernetes.io/scw-loadbalancer-use-hostname: \"true\"\n");
        assert_eq!(
            (scw.cloud.map(|c| c.name), scw.proxy_protocol.is_some(), scw.hostname),
            (Some("Scaleway"), true, true)
        );
        let do_pp = lb("service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol: \"true\"\n");
        assert!(do_pp.proxy_protocol.is_some() && !do_pp.hostname);
        assert_eq!(lb("service.beta.kubernetes.io/linode-loadbalancer-proxy-protocol: none\n").proxy_protocol, None);
        assert!(lb("service.beta.kubernetes.io/scw-loadbalancer-health-check-port: \"auto\"\n")
            .pinned_health_check
            .is_none());
        assert!(lb("service.beta.kubernetes.io/scw-loadbalancer-health-check-port: \"30080\"\n")
            .pinned_health_check
            .is_some());
        assert_eq!(classify(None).cloud, None);
    }
}
