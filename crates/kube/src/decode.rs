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
//!   fail open. A policy that does not decode is stored as a stand-in
//!   ([`StandIn`]: its metadata and the `targetRefs` read from the raw
//!   object, marked undecodable) that the translation reports `Invalid`,
//!   so one edited into that state keeps its previous version in force and
//!   a new one fails closed on its targets, as an invalid policy does (see
//!   `Inputs::last_good_ip`). When not even a target can be read, the
//!   stored version, if any, stays (never a deletion);
//! - each bad object is logged once per version (one
//!   `kubernetes_object_undecodable` event naming kind, namespace/name, the
//!   field and the serde error), not on every relist, nor when only its
//!   status changes (a policy's stand-in gets one): the version is its
//!   `metadata.generation` when it has one, else its `resourceVersion`.

use std::collections::HashMap;

use futures::{Stream, StreamExt as _};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::{json, Value};

use crate::event::event;
use crate::gateway::types::{
    ClientAccessPolicy, ClientIpPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ListenerSet,
    PolicyTargetReference, ReferenceGrant, TcpRoute, TlsRoute, UdpRoute,
};

/// What stands in, in the store, for an object of a watched kind that does
/// not decode.
pub(crate) trait StandIn: Sized {
    /// Built from the raw object's metadata and fields and the decoding
    /// error. `None` (the default): nothing, the object is left out.
    fn stand_in(_meta: &ObjectMeta, _data: &Value, _error: &str) -> Option<Self> {
        None
    }
}

impl StandIn for GatewayClass {}
impl StandIn for Gateway {}
impl StandIn for ListenerSet {}
impl StandIn for HttpRoute {}
impl StandIn for ReferenceGrant {}
impl StandIn for GrpcRoute {}
impl StandIn for TlsRoute {}
impl StandIn for TcpRoute {}
impl StandIn for UdpRoute {}

/// The `spec.targetRefs` of a raw policy that decode, one by one.
fn target_refs(data: &Value) -> Vec<PolicyTargetReference> {
    let refs = data.get("spec").and_then(|s| s.get("targetRefs")).and_then(Value::as_array);
    refs.into_iter().flatten().filter_map(|r| serde_json::from_value(r.clone()).ok()).collect()
}

impl StandIn for ClientIpPolicy {
    fn stand_in(meta: &ObjectMeta, data: &Value, error: &str) -> Option<Self> {
        let target_refs = target_refs(data);
        (!target_refs.is_empty()).then(|| ClientIpPolicy {
            metadata: meta.clone(),
            spec: crate::gateway::types::ClientIpPolicySpec {
                target_refs,
                undecodable: Some(error.to_owned()),
                ..Default::default()
            },
            status: data.get("status").cloned(),
        })
    }
}

impl StandIn for ClientAccessPolicy {
    fn stand_in(meta: &ObjectMeta, data: &Value, error: &str) -> Option<Self> {
        let target_refs = target_refs(data);
        (!target_refs.is_empty()).then(|| ClientAccessPolicy {
            metadata: meta.clone(),
            spec: crate::gateway::types::ClientAccessPolicySpec {
                target_refs,
                undecodable: Some(error.to_owned()),
                ..Default::default()
            },
            status: data.get("status").cloned(),
        })
    }
}

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
/// into an undecodable state is taken from it (as a deletion), or, for
/// realip's policies, replaced by its stand-in or kept.
pub(crate) fn decoded<K>(
    api: Api<DynamicObject>,
    wc: watcher::Config,
    store: Store<K>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + StandIn + Send + Sync + 'static,
{
    let kind = K::kind(&()).into_owned();
    let keep_last = K::group(&()) == crate::gateway::types::REALIP_GROUP;
    // (namespace, name) → version (see the module invariants) of the bad
    // version last logged.
    let mut logged: HashMap<(String, String), String> = HashMap::new();
    watcher(api, wc).filter_map(move |ev| std::future::ready(step(ev, &mut logged, &store, &kind, keep_last)))
}

/// One watch event decoded: what the store receives, if anything.
fn step<K>(
    ev: Result<watcher::Event<DynamicObject>, watcher::Error>,
    logged: &mut HashMap<(String, String), String>,
    store: &Store<K>,
    kind: &str,
    keep_last: bool,
) -> Option<Result<watcher::Event<K>, watcher::Error>>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + StandIn,
{
    match ev {
        Err(e) => Some(Err(e)),
        Ok(watcher::Event::Init) => Some(Ok(watcher::Event::Init)),
        Ok(watcher::Event::InitDone) => Some(Ok(watcher::Event::InitDone)),
        Ok(watcher::Event::Delete(o)) => {
            let key = key(&o);
            logged.remove(&key);
            store.get(&obj_ref::<K>(&key)).map(|k| Ok(watcher::Event::Delete((*k).clone())))
        }
        Ok(watcher::Event::Apply(o)) => match settle(logged, store, o, kind, keep_last) {
            Ok(k) => Some(Ok(watcher::Event::Apply(k))),
            // A policy whose stand-in cannot be built keeps its stored
            // version: removing it would fail open.
            Err(_) if keep_last => None,
            Err(gone) => gone.map(|k| Ok(watcher::Event::Delete(k))),
        },
        // In a relist, an object left out is dropped by the store when the
        // list completes (a policy keeps its stored version).
        Ok(watcher::Event::InitApply(o)) => match settle(logged, store, o, kind, keep_last) {
            Ok(k) => Some(Ok(watcher::Event::InitApply(k))),
            Err(stored) if keep_last => stored.map(|k| Ok(watcher::Event::InitApply(k))),
            Err(_) => None,
        },
    }
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

/// `Ok`: the decoded object, or its stand-in ([`StandIn`]). `Err`: it
/// does not decode and has no stand-in, with the version in the store, if
/// any. Logged once per resourceVersion.
fn settle<K>(
    logged: &mut HashMap<(String, String), String>,
    store: &Store<K>,
    o: DynamicObject,
    kind: &str,
    keep_last: bool,
) -> Result<K, Option<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + StandIn,
{
    let key = key(&o);
    let resource_version = o.metadata.resource_version.clone().unwrap_or_default();
    let version = o.metadata.generation.map_or_else(|| resource_version.clone(), |g| format!("generation {g}"));
    let (meta, data) = (o.metadata.clone(), o.data.clone());
    match decode::<K>(o) {
        Ok(k) => {
            logged.remove(&key);
            Ok(k)
        }
        Err(error) => {
            let stand_in = K::stand_in(&meta, &data, &error);
            let stored = store.get(&obj_ref::<K>(&key)).map(|k| (*k).clone());
            if logged.get(&key) != Some(&version) {
                let note = match (stand_in.is_some(), keep_last, stored.is_some()) {
                    (true, _, _) => {
                        "the policy is Invalid: its last valid version stays in force, else its targets fail closed"
                    }
                    (false, true, true) => "no target could be read: the previous version of the policy stays in force",
                    (false, true, false) => "no target could be read: the policy is left out",
                    (false, false, true) => {
                        "left out and removed from what is served: its previous version is no longer in force"
                    }
                    (false, false, false) => "left out: it is not served; the other objects are",
                };
                event(&json!({"event": "kubernetes_object_undecodable", "kind": kind,
                    "namespace": key.0, "name": key.1, "resource_version": resource_version,
                    "error": error, "note": note}));
                logged.insert(key, version);
            }
            stand_in.ok_or(stored)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A store holding `k`, as the reflector would after applying it.
    fn store_with<K>(k: Option<K>) -> Store<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone,
    {
        let (reader, mut writer) = kube::runtime::reflector::store::<K>();
        if let Some(k) = k {
            writer.apply_watcher_event(&watcher::Event::Apply(k));
        }
        reader
    }

    fn bad_policy(target_refs: &serde_json::Value) -> DynamicObject {
        dynamic(json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientAccessPolicy",
            "metadata": {"name": "p", "namespace": "web", "resourceVersion": "2"},
            "spec": {"targetRefs": target_refs, "deny": ["192.0.2.0/24"],
                "rateLimit": {"perSecond": 1000, "ipv6PrefixLength": 300}}}))
    }

    fn good_policy() -> ClientAccessPolicy {
        decode(dynamic(json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientAccessPolicy",
            "metadata": {"name": "p", "namespace": "web", "resourceVersion": "1"},
            "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"}],
                "deny": ["192.0.2.0/24"]}})))
        .unwrap()
    }

    /// Review 13d X9: a policy edited into an undecodable state is never
    /// deleted from the store (which would fail open): its stand-in, marked
    /// undecodable with the raw object's targets, replaces it (the
    /// translation keeps the last valid version in force), and so does a
    /// new one (which then fails closed). With no target readable, the
    /// stored version stays, in a watch event and in a relist.
    #[test]
    fn an_undecodable_policy_stands_in_and_is_never_deleted() {
        let refs = json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"}, {"kind": 7}]);
        for stored in [Some(good_policy()), None] {
            let store = store_with(stored);
            let mut logged = HashMap::new();
            let ev = Ok(watcher::Event::Apply(bad_policy(&refs)));
            let Some(Ok(watcher::Event::Apply(k))) = step(ev, &mut logged, &store, "ClientAccessPolicy", true) else {
                panic!("not a stand-in")
            };
            // (serde names the first field that fails: the bad target.)
            assert!(k.spec.undecodable.as_deref().is_some_and(|e| e.contains("spec.targetRefs[1].kind")), "{k:?}");
            let targets: Vec<&str> = k.spec.target_refs.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(targets, ["r"], "the target that reads");
            assert_eq!(k.metadata.resource_version.as_deref(), Some("2"));
            assert!(k.spec.deny.is_empty() && k.spec.rate_limit.is_none(), "nothing else is taken from it");
        }
        // No target can be read: the stored version stays.
        let store = store_with(Some(good_policy()));
        let mut logged = HashMap::new();
        let ev = Ok(watcher::Event::Apply(bad_policy(&json!([{"kind": 7}]))));
        assert!(step(ev, &mut logged, &store, "ClientAccessPolicy", true).is_none(), "never a Delete");
        let ev = Ok(watcher::Event::InitApply(bad_policy(&json!([]))));
        let Some(Ok(watcher::Event::InitApply(k))) = step(ev, &mut logged, &store, "ClientAccessPolicy", true) else {
            panic!("the stored version is listed again")
        };
        assert_eq!(k, good_policy());
    }

    /// Any other kind edited into an undecodable state is removed (fail
    /// closed: what it configured is no longer served).
    #[test]
    fn an_undecodable_route_is_removed() {
        let good =
            decode::<HttpRoute>(dynamic(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "web"}, "spec": {}})))
            .unwrap();
        let store = store_with(Some(good.clone()));
        let bad = dynamic(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "web"},
            "spec": {"rules": [{"backendRefs": [{"name": "s", "port": 80, "weight": 4_294_967_296_u64}]}]}}));
        let ev = Ok(watcher::Event::Apply(bad));
        let Some(Ok(watcher::Event::Delete(k))) = step(ev, &mut HashMap::new(), &store, "HTTPRoute", false) else {
            panic!("not removed")
        };
        assert_eq!(k, good);
    }
}
