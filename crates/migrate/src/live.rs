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

/// Listed too when the controller has `--watch-namespace-selector`: the
/// selector is evaluated on the Namespaces' labels.
pub const NAMESPACES: &[(&str, &str)] = &[("/api/v1/namespaces", "Namespace")];

/// The objects of [`LISTS`] and [`OPTIONAL_LISTS`], and of [`NAMESPACES`]
/// when the controller found among them selects namespaces by label.
pub async fn load() -> Result<Vec<Object>, Error> {
    let mut objects = realip_kube::live::load_lists(LISTS, OPTIONAL_LISTS).await?;
    let selects =
        crate::setup::find(&objects, &mut crate::Report::default()).is_ok_and(|s| s.watch_namespace_selector.is_some());
    if selects {
        objects.extend(realip_kube::live::load_lists(NAMESPACES, &[]).await?);
    }
    Ok(objects)
}
