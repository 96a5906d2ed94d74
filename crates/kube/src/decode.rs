//! Per-object decoding of watched kinds: one object that does not decode
//! never stops its kind from syncing.
//!
//! kube-rs's typed watcher decodes a whole list page at once, so one
//! object the CRD schema admits but realip's types refuse (an HTTPRoute
//! weight of 4294967296, a port past `u16`, …) fails the list and the kind
//! never syncs. Here the kind is watched as [`DynamicObject`]s and each
//! one is converted to the typed kind on its own (one `serde_json::Value`
//! round trip), feeding the typed reflector store as before.
//!
//! Invariants:
//! - an object that does not decode is left out of the store; one that was
//!   in it (edited into an undecodable state) is removed — fail closed: what
//!   it configured is no longer served. realip's policies (`realip.dev`)
//!   are the exception: removing an allow list or a client-IP chain would
//!   fail open, so a policy edited into an undecodable state keeps its
//!   previous version in force (as a policy edited into an invalid one
//!   does, see `Inputs::last_good_ip`);
//! - each bad object is logged once per `resourceVersion` (one
//!   `kubernetes_object_undecodable` event naming kind, namespace/name, the
//!   field and the serde error), not on every relist.

use std::collections::HashMap;

use futures::{Stream, StreamExt as _};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::json;

use crate::event::event;

/// The dynamic API of `K`: in `ns`, or cluster-wide (all namespaces, or a
/// cluster-scoped kind) when `None`.
pub(crate) fn dynamic_api<K>(client: &kube::Client, ns: Option<&str>) -> Api<DynamicObject>
where
    K: kube::Resource<DynamicType = ()>,
{
    let ar = ApiResource::erase::<K>(&());
    match ns {
        Some(n) => Api::namespaced_with(client.clone(), n, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Decodes one object into `K`, naming the field that failed.
pub(crate) fn decode<K>(o: DynamicObject) -> Result<K, String>
where
    K: serde::de::DeserializeOwned,
{
    let v = serde_json::to_value(o).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize::<_, K>(&v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })
}

/// The watch events of `api` decoded one object at a time into `K`.
/// `store` is the reader of the store the events feed: an object edited
/// into an undecodable state is taken from it (as a deletion).
pub(crate) fn decoded<K>(
    api: Api<DynamicObject>,
    wc: watcher::Config,
    store: Store<K>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let kind = K::kind(&()).into_owned();
    let keep_last = K::group(&()) == crate::gateway::types::REALIP_GROUP;
    // (namespace, name) → resourceVersion of the bad version last logged.
    let mut logged: HashMap<(String, String), String> = HashMap::new();
    watcher(api, wc).filter_map(move |ev| {
        let out = match ev {
            Err(e) => Some(Err(e)),
            Ok(watcher::Event::Init) => Some(Ok(watcher::Event::Init)),
            Ok(watcher::Event::InitDone) => Some(Ok(watcher::Event::InitDone)),
            Ok(watcher::Event::Delete(o)) => {
                let key = key(&o);
                logged.remove(&key);
                store.get(&obj_ref::<K>(&key)).map(|k| Ok(watcher::Event::Delete((*k).clone())))
            }
            Ok(watcher::Event::Apply(o)) => match settle(&mut logged, &store, o, &kind, keep_last) {
                Ok(k) => Some(Ok(watcher::Event::Apply(k))),
                Err(gone) => gone.map(|k| Ok(watcher::Event::Delete(k))),
            },
            // In a relist, an object left out is dropped by the store when
            // the list completes.
            Ok(watcher::Event::InitApply(o)) => {
                settle(&mut logged, &store, o, &kind, keep_last).ok().map(|k| Ok(watcher::Event::InitApply(k)))
            }
        };
        std::future::ready(out)
    })
}

fn key(o: &DynamicObject) -> (String, String) {
    (o.metadata.namespace.clone().unwrap_or_default(), o.metadata.name.clone().unwrap_or_default())
}

fn obj_ref<K>((ns, name): &(String, String)) -> ObjectRef<K>
where
    K: kube::Resource<DynamicType = ()>,
{
    let r = ObjectRef::new(name);
    if ns.is_empty() {
        r
    } else {
        r.within(ns)
    }
}

/// `Ok`: the decoded object. `Err`: it does not decode (logged once per
/// resourceVersion), with the version in the store, if any.
fn settle<K>(
    logged: &mut HashMap<(String, String), String>,
    store: &Store<K>,
    o: DynamicObject,
    kind: &str,
    keep_last: bool,
) -> Result<K, Option<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned,
{
    let key = key(&o);
    let version = o.metadata.resource_version.clone().unwrap_or_default();
    match decode::<K>(o) {
        Ok(k) => {
            logged.remove(&key);
            Ok(k)
        }
        Err(error) => {
            let stored = store.get(&obj_ref::<K>(&key)).map(|k| (*k).clone());
            if logged.get(&key) != Some(&version) {
                let note = if stored.is_some() && keep_last {
                    "this version is left out: the previous version of the policy stays in force"
                } else if stored.is_some() {
                    "left out and removed from what is served: its previous version is no longer in force"
                } else {
                    "left out: it is not served; the other objects are"
                };
                event(&json!({"event": "kubernetes_object_undecodable", "kind": kind,
                    "namespace": key.0, "name": key.1, "resource_version": version,
                    "error": error, "note": note}));
                logged.insert(key, version);
            }
            Err(stored)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::types::HttpRoute;

    fn dynamic(v: serde_json::Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_bad_field_is_named_with_its_path() {
        let o = dynamic(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "web"},
            "spec": {"rules": [{"backendRefs": [{"name": "s", "port": 80, "weight": 4_294_967_296_u64}]}]}}));
        let e = decode::<HttpRoute>(o).unwrap_err();
        assert!(e.contains("spec.rules[0].backendRefs[0].weight"), "{e}");
        assert!(e.contains("4294967296"), "{e}");
    }

    #[test]
    fn a_good_object_decodes() {
        let o = dynamic(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "web"},
            "spec": {"rules": [{"backendRefs": [{"name": "s", "port": 80, "weight": 3}]}]}}));
        let r = decode::<HttpRoute>(o).unwrap();
        assert_eq!(r.metadata.name.as_deref(), Some("r"));
    }
}
