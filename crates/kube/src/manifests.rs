//! Plain manifests for people without Helm: the objects the chart in
//! `deploy/helm/realip` renders for release `realip`, built here from the
//! same settings (`realip manifests | kubectl apply -f -`).
//!
//! Invariant: for the same settings, the objects are the ones
//! `helm template realip deploy/helm/realip -n NS --set ...` prints, apart
//! from Helm's own bookkeeping labels; `crates/cli/tests/helm.rs` renders
//! both and compares them object by object, so the chart stays the one
//! source of truth. A `Namespace` object comes first (Helm leaves that to
//! `--create-namespace`).

use std::fmt::Write as _;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// The chart's values that `realip manifests` exposes.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of every namespaced object.
    pub namespace: String,
    /// DaemonSet instead of a Deployment.
    pub daemonset: bool,
    /// Deployment replicas.
    pub replicas: u32,
    /// PROXY protocol on the listener and the AWS annotations.
    pub proxy_protocol: bool,
    /// Container image.
    pub image: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            namespace: "realip".into(),
            daemonset: false,
            replicas: 2,
            proxy_protocol: false,
            image: format!("registry.example.com/realip:{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

const NAME: &str = "realip";
const HTTP: u16 = 8080;
const HTTPS: u16 = 8443;
const ADMIN: u16 = 9901;
const DRAIN_DELAY: u32 = 15;
const DRAIN_TIMEOUT: u32 = 30;
const PROXY_FROM: &str = "10.0.0.0/8";
const INGRESS_CLASS: &str = "realip";

/// realip.toml as the chart renders it (no trailing newline).
pub fn config(s: &Settings) -> String {
    let pp = if s.proxy_protocol {
        format!("\nproxy_protocol = \"required\"\nproxy_protocol_from = [\"{PROXY_FROM}\"]\nheader_timeout = \"5s\"")
    } else {
        String::new()
    };
    let mut t = format!(
        "[[listener]]\nname = \"http\"\nbind = \"0.0.0.0:{HTTP}\"{pp}\n\n[[listener]]\nname = \"https\"\nbind = \"0.0.0.0:{HTTPS}\"\ntls = {{ kubernetes = true }}{pp}"
    );
    let (trusted, sources) = if s.proxy_protocol {
        (format!("\"{PROXY_FROM}\""), "\"proxy-protocol\", \"xff\"")
    } else {
        (String::new(), "\"xff\"")
    };
    let _ = write!(
        t,
        "\n\n[client_ip]\ntrusted = [{trusted}]\nsources = [{sources}]\n\n[forward]\nx_forwarded_for = \"append\"\n\
         x_real_ip = true\nx_forwarded_proto = true\n\n[log]\nformat = \"json\"\n\n[admin]\nbind = \"0.0.0.0:{ADMIN}\"\n\n\
         [lifecycle]\ndrain_delay = \"{DRAIN_DELAY}s\"\ndrain_timeout = \"{DRAIN_TIMEOUT}s\"\nwatch_interval = \"0s\""
    );
    t
}

fn labels(component: Option<&str>) -> Value {
    let mut l = json!({
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/instance": NAME,
        "app.kubernetes.io/version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(c) = component {
        l["app.kubernetes.io/component"] = json!(c);
    }
    l
}

fn selector() -> Value {
    json!({"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": NAME, "app.kubernetes.io/component": "controller"})
}

fn meta(s: &Settings, name: &str, component: Option<&str>) -> Value {
    json!({"name": name, "namespace": s.namespace, "labels": labels(component)})
}

/// Every object, in apply order.
pub fn objects(s: &Settings) -> Vec<Value> {
    let cfg = config(s);
    let checksum = format!("{:x}", Sha256::digest(cfg.as_bytes()));
    let kind = if s.daemonset { "DaemonSet" } else { "Deployment" };
    let rolling = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}});
    let mut spec = json!({
        "selector": {"matchLabels": selector()},
        "template": {
            "metadata": {"labels": selector(), "annotations": {"checksum/config": checksum}},
            "spec": {
                "serviceAccountName": NAME,
                "terminationGracePeriodSeconds": DRAIN_DELAY + DRAIN_TIMEOUT + 5,
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "controller",
                    "image": s.image,
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["proxy", "--config", "/etc/realip/realip.toml", "--kubernetes", "--ingress-class", INGRESS_CLASS,
                             "--publish-service", format!("{}/{NAME}", s.namespace)],
                    "env": [
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    ],
                    "ports": [
                        {"name": "http", "containerPort": HTTP, "protocol": "TCP"},
                        {"name": "https", "containerPort": HTTPS, "protocol": "TCP"},
                        {"name": "admin", "containerPort": ADMIN, "protocol": "TCP"},
                    ],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "admin"}, "periodSeconds": 5, "failureThreshold": 3},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "admin"}, "periodSeconds": 10, "failureThreshold": 3},
                    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/realip", "readOnly": true}],
                }],
                "volumes": [{"name": "config", "configMap": {"name": NAME}}],
            },
        },
    });
    if s.daemonset {
        spec["updateStrategy"] = rolling;
    } else {
        spec["replicas"] = json!(s.replicas);
        spec["strategy"] = rolling;
        spec["template"]["spec"]["topologySpreadConstraints"] = json!([{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": selector()},
        }]);
    }
    let mut service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": meta(s, NAME, Some("controller")),
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "selector": selector(),
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"},
            ],
        },
    });
    if s.proxy_protocol {
        service["metadata"]["annotations"] = json!({
            "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol": "*",
            "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes": "proxy_protocol_v2.enabled=true",
        });
    }
    let cluster_meta = json!({"name": NAME, "labels": labels(None)});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": s.namespace}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(s, NAME, None)}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(s, NAME, None), "data": {"realip.toml": format!("{cfg}\n")}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": cluster_meta, "rules": [
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingressclasses"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update", "patch"]},
            {"apiGroups": [""], "resources": ["services", "secrets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": cluster_meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": s.namespace}]}),
        service,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(s, &format!("{NAME}-admin"), Some("admin")), "spec": {
            "type": "ClusterIP", "selector": selector(),
            "ports": [{"name": "admin", "port": ADMIN, "targetPort": "admin", "protocol": "TCP"}],
        }}),
        json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta(s, NAME, Some("controller")), "spec": spec}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta(s, NAME, None),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector()}}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": INGRESS_CLASS, "labels": labels(None)},
            "spec": {"controller": "realip.dev/ingress-controller"}}),
    ]
}

/// The objects as one multi-document YAML stream.
pub fn yaml(s: &Settings) -> String {
    let mut out = String::from(
        "# realip: plain manifests (the Helm chart's defaults for release \"realip\").\n# Apply with: realip manifests | kubectl apply -f -\n",
    );
    for o in objects(s) {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&o).unwrap_or_default());
    }
    out
}
