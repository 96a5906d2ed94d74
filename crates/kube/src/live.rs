//! A live cluster, read-only, through kube-rs and the usual configuration
//! (KUBECONFIG / ~/.kube/config / in-cluster): the kinds the doctor needs,
//! listed across all namespaces and turned into the same [`Object`]s as
//! manifests (their source is `cluster`, line 0).
//!
//! Invariant: the core kinds must list (an error names the list that
//! failed); the optional ones ([`OPTIONAL_LISTS`]: Gateway API, Envoy
//! Gateway, NGINX Gateway Fabric and Traefik CRDs, HPAs) are read when the
//! cluster serves them, and an absent resource (404) is not an error.

use serde_json::Value as Json;

use crate::object::{Object, Source};
use crate::yaml::{Node, Value};
use crate::Error;

/// List endpoints read, with the kind of their items.
pub const LISTS: &[(&str, &str)] = &[
    ("/api/v1/services", "Service"),
    ("/api/v1/configmaps", "ConfigMap"),
    ("/api/v1/pods", "Pod"),
    ("/api/v1/nodes", "Node"),
    ("/apis/apps/v1/deployments", "Deployment"),
    ("/apis/apps/v1/daemonsets", "DaemonSet"),
    ("/apis/discovery.k8s.io/v1/endpointslices", "EndpointSlice"),
    ("/apis/networking.k8s.io/v1/ingressclasses", "IngressClass"),
    ("/apis/networking.k8s.io/v1/ingresses", "Ingress"),
    ("/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy"),
    ("/apis/policy/v1/poddisruptionbudgets", "PodDisruptionBudget"),
];

/// Lists read when the cluster has them (CRDs that may not be installed).
pub const OPTIONAL_LISTS: &[(&str, &str)] = &[
    ("/apis/autoscaling/v2/horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ("/apis/gateway.networking.k8s.io/v1/gatewayclasses", "GatewayClass"),
    ("/apis/gateway.networking.k8s.io/v1/gateways", "Gateway"),
    ("/apis/gateway.envoyproxy.io/v1alpha1/clienttrafficpolicies", "ClientTrafficPolicy"),
    ("/apis/gateway.envoyproxy.io/v1alpha1/envoyproxies", "EnvoyProxy"),
    ("/apis/gateway.envoyproxy.io/v1alpha1/securitypolicies", "SecurityPolicy"),
    ("/apis/gateway.envoyproxy.io/v1alpha1/backendtrafficpolicies", "BackendTrafficPolicy"),
    ("/apis/gateway.nginx.org/v1alpha2/nginxproxies", "NginxProxy"),
    ("/apis/traefik.io/v1alpha1/middlewares", "Middleware"),
];

/// JSON to a line-less [`Node`] (numbers and booleans become text, as in
/// manifests).
pub fn from_json(v: &Json) -> Node {
    let value = match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Scalar(b.to_string()),
        Json::Number(n) => Value::Scalar(n.to_string()),
        Json::String(s) => Value::Scalar(s.clone()),
        Json::Array(a) => Value::Seq(a.iter().map(from_json).collect()),
        Json::Object(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    };
    Node { line: 0, value }
}

/// Every object of [`LISTS`] in the cluster the configuration points at.
pub async fn load_cluster() -> Result<Vec<Object>, Error> {
    load_lists(LISTS, OPTIONAL_LISTS).await
}

/// Every object of the `required` lists (`(path, kind)`) and of the
/// `optional` ones the cluster serves, in the cluster the configuration
/// points at (read-only: GET only).
pub async fn load_lists(required: &[(&str, &str)], optional: &[(&str, &str)]) -> Result<Vec<Object>, Error> {
    let live = |reason: String| Error::Live(reason);
    let client = kube::Client::try_default().await.map_err(|e| live(format!("connecting to the cluster: {e}")))?;
    let mut out = Vec::new();
    let lists = required.iter().map(|l| (l, false)).chain(optional.iter().map(|l| (l, true)));
    for ((path, kind), optional) in lists {
        let req = http::Request::get(*path).body(Vec::new()).map_err(|e| live(e.to_string()))?;
        let list: Json = match client.request(req).await {
            Ok(list) => list,
            Err(kube::Error::Api(status)) if optional && status.is_not_found() => continue,
            Err(e) => return Err(live(format!("GET {path}: {e}"))),
        };
        for item in list.get("items").and_then(Json::as_array).into_iter().flatten() {
            let doc = from_json(item);
            let name = doc.str_at(&["metadata", "name"]).unwrap_or_default().to_owned();
            let namespace = doc.str_at(&["metadata", "namespace"]).unwrap_or("default").to_owned();
            out.push(Object {
                kind: (*kind).to_owned(),
                name,
                namespace,
                source: Source { file: "cluster".into(), line: 0 },
                doc,
            });
        }
    }
    Ok(out)
}
