//! The proxy's Kubernetes mode: kube-rs reflectors over Ingresses,
//! Services, EndpointSlices and TLS Secrets; every change recomputes the desired routes
//! ([`crate::ingress::desired`]) and hands them to the proxy through a
//! `tokio::sync::watch` channel (only when they changed). The load
//! balancer's address (the publish Service's `status.loadBalancer`) is
//! written into the status of every Ingress served; a rejected Ingress gets
//! the address with an error code on its port
//! (`realip.dev/UnsupportedAnnotation`, `…/InvalidAnnotation`,
//! `…/BackendNotFound`), and the full reason is logged.

use std::collections::BTreeMap;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{reflector, watcher, WatchStreamExt as _};
use serde_json::json;

use crate::ingress::{desired, Desired, Problem};
use crate::Error;

/// What to watch.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// IngressClass name served.
    pub class: String,
    /// Only this namespace (Ingresses, Services, EndpointSlices).
    pub namespace: Option<String>,
    /// `namespace/name` of the Service whose load-balancer address goes
    /// into Ingress status.
    pub publish_service: Option<(String, String)>,
}

fn api<K>(client: &kube::Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match ns {
        Some(n) => Api::namespaced(client.clone(), n),
        None => Api::all(client.clone()),
    }
}

fn event(v: &serde_json::Value) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{v}");
}

/// Ingress v1 status has no conditions; the place for a problem is
/// `loadBalancer.ingress[].ports[].error`, a CamelCase code with a
/// domain prefix (the full reason goes to the log). So `kubectl get ingress
/// -o yaml` shows why a rejected Ingress is not served.
fn rejected_status(lb: &serde_json::Value, message: &str) -> serde_json::Value {
    let code = if message.contains("not supported") {
        "realip.dev/UnsupportedAnnotation"
    } else if message.contains("not found") || message.contains("has no port") {
        "realip.dev/BackendNotFound"
    } else {
        "realip.dev/InvalidAnnotation"
    };
    let entries: Vec<serde_json::Value> = lb
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut e = e.clone();
            e["ports"] = json!([{"port": 80, "protocol": "TCP", "error": code}]);
            e
        })
        .collect();
    json!(entries)
}

/// A client from the in-cluster service account or `KUBECONFIG`.
pub async fn connect() -> Result<kube::Client, Error> {
    kube::Client::try_default().await.map_err(|e| Error::Live(format!("connecting to the cluster: {e}")))
}

/// Watches until the client fails for good; sends every new [`Desired`].
pub async fn run(
    client: kube::Client,
    cfg: WatchConfig,
    tx: tokio::sync::watch::Sender<Option<Desired>>,
) -> Result<(), Error> {
    let ns = cfg.namespace.as_deref();
    let (ingresses, iw) = reflector::store::<Ingress>();
    let (services, sw) = reflector::store::<Service>();
    let (slices, ew) = reflector::store::<EndpointSlice>();
    let (secrets, tw) = reflector::store::<Secret>();
    let wc = watcher::Config::default();
    // Each event tagged with its stream and whether it ends the initial list.
    let streams = vec![
        reflector(iw, watcher(api::<Ingress>(&client, ns), wc.clone()))
            .default_backoff()
            .map_ok(|e| (0, matches!(e, watcher::Event::InitDone)))
            .boxed(),
        reflector(sw, watcher(api::<Service>(&client, ns), wc.clone()))
            .default_backoff()
            .map_ok(|e| (1, matches!(e, watcher::Event::InitDone)))
            .boxed(),
        reflector(ew, watcher(api::<EndpointSlice>(&client, ns), wc.clone()))
            .default_backoff()
            .map_ok(|e| (2, matches!(e, watcher::Event::InitDone)))
            .boxed(),
        // Only TLS Secrets are read (and kept in memory).
        reflector(tw, watcher(api::<Secret>(&client, ns), wc.fields("type=kubernetes.io/tls")))
            .default_backoff()
            .map_ok(|e| (3, matches!(e, watcher::Event::InitDone)))
            .boxed(),
    ];
    let mut events = futures::stream::select_all(streams);
    // Nothing is computed before all three initial lists are in: an Ingress
    // seen before its Service would otherwise be rejected for a moment.
    let mut synced = [false; 4];
    let mut published: BTreeMap<(String, String), serde_json::Value> = BTreeMap::new();
    let mut reported: Vec<Problem> = Vec::new();
    while let Some(ev) = events.next().await {
        match ev {
            Err(e) => {
                event(&json!({"event": "kubernetes_watch_error", "error": e.to_string()}));
                continue;
            }
            Ok((i, init_done)) => synced[i] |= init_done,
        }
        if !synced.iter().all(|s| *s) {
            continue;
        }
        let d = desired(&cfg.class, ns, &ingresses.state(), &services.state(), &slices.state(), &secrets.state());
        let now: Vec<Problem> = d.problems.iter().chain(&d.warnings).cloned().collect();
        for p in now.iter().filter(|p| !reported.contains(p)) {
            let kind = if d.problems.contains(p) { "ingress_rejected" } else { "ingress_warning" };
            event(&json!({"event": kind, "ingress": p.ingress, "reason": p.message}));
        }
        reported = now;
        // Ingress status: the publish Service's load-balancer addresses.
        if let Some((pns, pname)) = &cfg.publish_service {
            let lb = services
                .state()
                .iter()
                .find(|s| s.metadata.namespace.as_deref() == Some(pns) && s.metadata.name.as_deref() == Some(pname))
                .and_then(|s| s.status.as_ref()?.load_balancer.as_ref()?.ingress.clone())
                .map(|v| serde_json::to_value(v).unwrap_or_default());
            if let Some(lb) = lb {
                let rejected = d.problems.iter().filter_map(|p| {
                    let (ns, name) = p.ingress.split_once('/')?;
                    Some(((ns.to_owned(), name.to_owned()), rejected_status(&lb, &p.message)))
                });
                let served = d.served.iter().map(|k| (k.clone(), lb.clone()));
                for ((ins, iname), status) in served.chain(rejected).collect::<Vec<_>>() {
                    let key = (ins.clone(), iname.clone());
                    if published.get(&key) == Some(&status) {
                        continue;
                    }
                    let patch = json!({"status": {"loadBalancer": {"ingress": status}}});
                    let api: Api<Ingress> = Api::namespaced(client.clone(), &ins);
                    match api.patch_status(&iname, &PatchParams::default(), &Patch::Merge(&patch)).await {
                        Ok(_) => {
                            published.insert(key, status);
                        }
                        Err(e) => event(
                            &json!({"event": "ingress_status_failed", "ingress": format!("{ins}/{iname}"), "error": e.to_string()}),
                        ),
                    }
                }
            }
        }
        tx.send_if_modified(|cur| {
            if cur.as_ref() == Some(&d) {
                false
            } else {
                *cur = Some(d);
                true
            }
        });
    }
    Err(Error::Live("the Kubernetes watch streams ended".into()))
}
