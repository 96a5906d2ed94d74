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
    /// Gateway API mode (`gateway.enabled`): realip's policy CRDs, the
    /// GatewayClass, `--gateway-class`, and RBAC for Gateway API objects.
    pub gateway: bool,
    /// `rateLimit.redis.url`: the `[rate_limit_store]` of global limits.
    pub redis_url: Option<String>,
    /// `rateLimit.redis.existingSecret`: Secret whose key `password` is
    /// the Redis password (env REALIP_REDIS_PASSWORD).
    pub redis_secret: Option<String>,
    /// `ingress.enabled`: serve Ingresses; `false`: `--no-ingress`,
    /// `ingress = false` on the listeners, no IngressClass or Ingress RBAC.
    pub ingress: bool,
    /// `gateway.allowedGateways`: `gateways = [...]` on the listeners.
    pub allowed_gateways: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            namespace: "realip".into(),
            daemonset: false,
            replicas: 2,
            proxy_protocol: false,
            // What scripts/image.sh builds (and the chart's default).
            image: "realip:dev".into(),
            gateway: false,
            redis_url: None,
            redis_secret: None,
            ingress: true,
            allowed_gateways: Vec::new(),
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
const GATEWAY_CLASS: &str = "realip";

/// realip's CRDs, the chart's `crds/` files (Helm installs them; `realip
/// manifests --gateway` prints them).
pub const CRDS: [&str; 2] = [
    include_str!("../../../deploy/helm/realip/crds/clientaccesspolicies.realip.dev.yaml"),
    include_str!("../../../deploy/helm/realip/crds/clientippolicies.realip.dev.yaml"),
];

/// The CRDs as objects.
pub fn crds() -> Vec<Value> {
    use serde::Deserialize as _;
    // `map_while`: after a syntax error the document iterator keeps
    // yielding that error; `filter_map` would spin on it forever.
    CRDS.iter()
        .flat_map(|text| serde_norway::Deserializer::from_str(text).map(Value::deserialize).map_while(Result::ok))
        .filter(|v| !v.is_null())
        .collect()
}

/// realip.toml as the chart renders it (no trailing newline).
pub fn config(s: &Settings) -> String {
    let pp = if s.proxy_protocol {
        format!("\nproxy_protocol = \"required\"\nproxy_protocol_from = [\"{PROXY_FROM}\"]\nheader_timeout = \"5s\"")
    } else {
        String::new()
    };
    // Who may use a listener (the chart's `realip.listenerScope`).
    let mut scope = String::new();
    if !s.ingress {
        scope.push_str("\ningress = false");
    }
    if !s.allowed_gateways.is_empty() {
        let list: Vec<String> = s.allowed_gateways.iter().map(|g| Value::from(g.as_str()).to_string()).collect();
        let _ = write!(scope, "\ngateways = [{}]", list.join(", "));
    }
    let mut t = format!(
        "[[listener]]\nname = \"http\"\nbind = \"0.0.0.0:{HTTP}\"\ngateway_ports = [80]{scope}{pp}\n\n[[listener]]\nname = \"https\"\nbind = \"0.0.0.0:{HTTPS}\"\ngateway_ports = [443]{scope}\ntls = {{ kubernetes = true }}{pp}"
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
    if let Some(url) = &s.redis_url {
        let _ = write!(t, "\n\n[rate_limit_store]\nredis = {}", serde_json::Value::from(url.as_str()));
        if s.redis_secret.is_some() {
            t.push_str("\npassword_env = \"REALIP_REDIS_PASSWORD\"");
        }
    }
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
#[allow(clippy::too_many_lines)] // one literal object per chart template
pub fn objects(s: &Settings) -> Vec<Value> {
    let cfg = config(s);
    let checksum = format!("{:x}", Sha256::digest(cfg.as_bytes()));
    let kind = if s.daemonset { "DaemonSet" } else { "Deployment" };
    let mut env = vec![
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        json!({"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}),
    ];
    if let Some(secret) = &s.redis_secret {
        env.push(json!({"name": "REALIP_REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}));
    }
    let mut args = vec![json!("proxy"), json!("--config"), json!("/etc/realip/realip.toml"), json!("--kubernetes")];
    if s.ingress {
        args.extend([json!("--ingress-class"), json!(INGRESS_CLASS)]);
    } else {
        args.push(json!("--no-ingress"));
    }
    args.extend([json!("--publish-service"), json!(format!("{}/{NAME}", s.namespace))]);
    if s.gateway {
        args.extend([
            json!("--gateway-class"),
            json!(GATEWAY_CLASS),
            json!("--kubernetes-max-routes-per-namespace"),
            json!(crate::gateway::translate::MAX_ROUTES_PER_NAMESPACE.to_string()),
        ]);
    }
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
                    "args": args,
                    "env": env,
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
    let mut rules = Vec::new();
    if s.ingress {
        rules.extend([
            json!({"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingressclasses"], "verbs": ["get", "list", "watch"]}),
            json!({"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"], "verbs": ["update", "patch"]}),
        ]);
    }
    rules.extend([
        json!({"apiGroups": [""], "resources": ["services", "secrets"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]}),
    ]);
    if s.gateway {
        rules.extend([
            json!({"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gatewayclasses", "gateways", "listenersets", "httproutes", "referencegrants", "grpcroutes", "tlsroutes", "tcproutes", "udproutes"], "verbs": ["get", "list", "watch"]}),
            json!({"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gatewayclasses/status", "gateways/status", "listenersets/status", "httproutes/status", "grpcroutes/status", "tlsroutes/status", "tcproutes/status", "udproutes/status"], "verbs": ["update", "patch"]}),
            json!({"apiGroups": ["realip.dev"], "resources": ["clientippolicies", "clientaccesspolicies"], "verbs": ["get", "list", "watch"]}),
            json!({"apiGroups": ["realip.dev"], "resources": ["clientippolicies/status", "clientaccesspolicies/status"], "verbs": ["update", "patch"]}),
            json!({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}),
        ]);
    }
    let mut out = if s.gateway { crds() } else { Vec::new() };
    out.extend([
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": s.namespace}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(s, NAME, None)}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(s, NAME, None), "data": {"realip.toml": format!("{cfg}\n")}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": cluster_meta, "rules": rules}),
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
    ]);
    if s.ingress {
        out.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": INGRESS_CLASS, "labels": labels(None)},
            "spec": {"controller": "realip.dev/ingress-controller"}}));
    }
    if s.gateway {
        out.push(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS, "labels": labels(None)},
            "spec": {"controllerName": crate::gateway::CONTROLLER_NAME,
                     "description": "realip — the client-IP chain as an attached ClientIPPolicy"}}));
    }
    out
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

#[cfg(test)]
mod tests {
    /// Every embedded CRD file parses to its CRD: a YAML slip in the chart's
    /// `crds/` (e.g. `: ` in a plain description) loses it here, not in a
    /// cluster.
    #[test]
    fn every_embedded_crd_parses() {
        use serde::Deserialize as _;
        for text in super::CRDS {
            for doc in serde_norway::Deserializer::from_str(text) {
                let v = serde_json::Value::deserialize(doc).unwrap_or_else(|e| panic!("chart CRD: {e}"));
                assert!(v.is_null() || v["kind"] == "CustomResourceDefinition", "{v}");
            }
        }
        let names: Vec<String> =
            super::crds().iter().map(|c| c["metadata"]["name"].as_str().unwrap_or_default().to_owned()).collect();
        assert_eq!(names, ["clientaccesspolicies.realip.dev", "clientippolicies.realip.dev"]);
    }
}
