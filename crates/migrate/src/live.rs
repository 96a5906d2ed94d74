//! `--live`: the kinds a migration reads, listed read-only from the cluster
//! the kubeconfig points at (kube-rs, through realip-kube).

use realip_kube::Object;

use crate::Error;

/// Lists read; all must answer.
pub const LISTS: &[(&str, &str)] = &[
    ("/apis/apps/v1/deployments", "Deployment"),
    ("/apis/apps/v1/daemonsets", "DaemonSet"),
    ("/api/v1/configmaps", "ConfigMap"),
    ("/api/v1/services", "Service"),
    ("/apis/networking.k8s.io/v1/ingresses", "Ingress"),
];

/// Lists read when served.
pub const OPTIONAL_LISTS: &[(&str, &str)] = &[("/apis/networking.k8s.io/v1/ingressclasses", "IngressClass")];

/// The objects of [`LISTS`] and [`OPTIONAL_LISTS`].
pub async fn load() -> Result<Vec<Object>, Error> {
    Ok(realip_kube::live::load_lists(LISTS, OPTIONAL_LISTS).await?)
}
