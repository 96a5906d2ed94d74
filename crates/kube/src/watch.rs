//! The proxy's Kubernetes mode: kube-rs reflectors over Ingresses,
//! Services, EndpointSlices and TLS Secrets, and — when their CRDs are
//! installed — over Gateway API objects (GatewayClass, Gateway,
//! ListenerSet, HTTPRoute, ReferenceGrant), Namespaces and realip's
//! ClientIPPolicy / ClientAccessPolicy, and over the route kinds realip does
//! not serve (GRPCRoute, TLSRoute, TCPRoute, UDPRoute) to write their status.
//!
//! - Ingresses (unless [`WatchConfig::ingress`] is off: then none is
//!   listed, and the Ingress side is an empty set): every change
//!   recomputes the desired routes
//!   ([`crate::ingress::desired`]) and hands them to the proxy through a
//!   `tokio::sync::watch` channel (only when they changed). The load
//!   balancer's address (the publish Service's `status.loadBalancer`) is
//!   written into the status of every Ingress served; a rejected Ingress
//!   gets the address with an error code on its port (from the typed
//!   [`crate::ingress::ProblemKind`]), and the full reason is logged.
//! - Gateway API: the objects are translated
//!   ([`crate::gateway::translate::translate`]) into a
//!   [`crate::routes::RouteSet`] (for the proxy to serve once it can) and
//!   into the status every object must get, which is patched only when it
//!   differs from what the object already has.
//!   Absent Gateway API or realip CRDs (or no RBAC for them) are logged
//!   once; Ingresses keep being served. Gateway API and realip objects
//!   are decoded one at a time (module `decode`): one that realip's
//!   types refuse is reported and left out, never stopping its kind.
//! - Both sides are published in one value ([`Published`]) as soon as a
//!   batch has computed them, before any status is compared or written: a
//!   batch that changes both is one update for the proxy, and the time
//!   from a change to it being served never includes a status patch.
//! - A translation keeps what it computed per HTTPRoute
//!   ([`crate::gateway::translate::RouteCache`]): a change of one route
//!   translates that route alone, while Gateways, Services and the other
//!   objects routes depend on are unchanged; unchanged routes and
//!   statuses are passed on as the same shared values, so the proxy and
//!   the status comparison below see them equal by pointer.
//! - Status: a translation renders and compares only the statuses that
//!   differ from what was last settled (written, or found in place) for
//!   that object; an update of an object's status alone (generation
//!   unchanged — mostly realip's own patches) recomputes nothing.
//! - Status is written by a task of its own ([`crate::status_writer`]):
//!   the watch loop decides what each object's status should be and hands
//!   it over, latest wins per object; **the watch loop never awaits a
//!   status write**, so the next event (an EndpointSlice change of
//!   everyone's backends) is read while thousands of statuses are still
//!   being written. A status handed over counts as settled; a write that
//!   fails is tried again by the writer (with backoff), and one that finds
//!   its object gone is settled no more.
//! - Status rechecks: each write carries the `resourceVersion` its body
//!   was rendered over, so one racing another writer's (another realip
//!   for its own GatewayClass, a third controller, a replica) fails with
//!   409 instead of dropping that writer's entries. Every update of an
//!   object's status alone is rendered again from what realip last
//!   decided for it (no translation): realip's entries and conditions put
//!   back in place, everyone else's kept where they are, so realip's own
//!   writes (and any status already right) come back equal and are left
//!   alone. An object rewritten over and over (writers that disagree on
//!   realip's own entries, such as replicas with different views) is
//!   written at a falling rate (1 s doubling to 30 s), said once by
//!   `gateway_status_contended`.
//! - Bursts of events are coalesced: a batch ends after 2 ms without an
//!   event (at most 250 ms after it began), and whatever arrives while a
//!   batch is computed forms the next one, so a burst costs one or two
//!   computations while a lone change waits only 2 ms. A batch recomputes
//!   only the side it touches: Ingress-only changes skip the Gateway
//!   translation and Gateway-only changes skip the Ingress computation. A
//!   batch of
//!   EndpointSlice changes only (after the initial lists) recomputes the
//!   endpoints of the Services they belong to in both computed sets
//!   ([`SliceChanges`], [`crate::ingress::refresh_endpoints`]): no
//!   Ingress computation, no translation, no status written, since
//!   routes and status depend on Services and never on endpoints.

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::Store;
use kube::runtime::{reflector, watcher, WatchStreamExt as _};
use serde_json::{json, Value};

use crate::gateway::status::{to_json, ObjectKey, ObjectStatus};
use crate::gateway::translate::{translate_with, Inputs};
use crate::gateway::types::{
    ClientAccessPolicy, ClientIpPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ListenerSet, ReferenceGrant,
    TcpRoute, TlsRoute, UdpRoute,
};
use crate::ingress::{desired, Desired, Problem, ProblemKind, Touched};
use crate::routes::RouteSet;
use crate::status_writer::{Target, Writer};
use crate::Error;

/// What to watch.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// IngressClass name served.
    pub class: String,
    /// Whether Ingresses are watched and served at all (`--no-ingress`
    /// turns it off: then none is listed, served or given status, and no
    /// Ingress RBAC is needed).
    pub ingress: bool,
    /// Only this namespace (Ingresses, Services, EndpointSlices, and the
    /// namespaced Gateway API objects).
    pub namespace: Option<String>,
    /// `namespace/name` of the Service whose load-balancer address goes
    /// into Ingress and Gateway status.
    pub publish_service: Option<(String, String)>,
    /// GatewayClass served (`--gateway-class`); `None` turns Gateway API
    /// mode off.
    pub gateway_class: Option<String>,
    /// The proxy's `[[listener]]`s, updated on every reload (set by the
    /// proxy; `None`: not known, every valid Gateway listener is taken as
    /// served). A change recomputes the Gateway API status.
    pub binds: Option<tokio::sync::watch::Receiver<Vec<crate::routes::Bind>>>,
    /// What the proxy does not serve of the Gateway side (set by the
    /// proxy, sent only when it changes): put into status
    /// ([`crate::gateway::feedback`]). A change recomputes the Gateway API
    /// status (a translation that reuses every cached route), never what
    /// is served.
    pub feedback: Option<tokio::sync::watch::Receiver<crate::routes::Feedback>>,
    /// How often the Gateway API and realip kinds that were not served
    /// when the watch started are asked for again (`--kubernetes-recheck`):
    /// once one is (its CRDs installed, RBAC granted), [`run`] ends with
    /// [`Error::KindsAppeared`] and is started again by its caller
    /// ([`supervise`]), so no restart of the proxy is needed.
    pub recheck: Duration,
    /// The most routes the HTTPRoutes of one namespace may expand to
    /// together (`--kubernetes-max-routes-per-namespace`; see
    /// [`crate::gateway::translate::MAX_ROUTES_PER_NAMESPACE`]).
    pub max_routes_per_namespace: usize,
}

/// Runs [`run`] for as long as the proxy runs: started again at once when
/// kinds appeared ([`Error::KindsAppeared`]), after a backoff (1 s doubling
/// to 30 s) when it failed otherwise; each end is logged. What was last
/// published stays served meanwhile: a new watch publishes only once it
/// has listed everything again.
pub async fn supervise(client: kube::Client, cfg: WatchConfig, tx: tokio::sync::watch::Sender<Published>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        match run(client.clone(), cfg.clone(), tx.clone()).await {
            Err(e @ Error::KindsAppeared(_)) => {
                event(&json!({"event": "kubernetes_watch_restarted", "reason": e.to_string()}));
                continue;
            }
            Err(e) => event(&json!({"event": "kubernetes_watch_failed", "error": e.to_string(),
                "retry_in_ms": u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX)})),
            Ok(()) => event(&json!({"event": "kubernetes_watch_failed", "error": "the watch ended",
                "retry_in_ms": u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX)})),
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Asks the API server every `every` for the kinds in `absent` (name and
/// API), and sends the names of those it now serves (once) on `appeared`.
async fn recheck(
    absent: Vec<(String, Api<kube::api::DynamicObject>)>,
    every: Duration,
    appeared: tokio::sync::mpsc::Sender<Vec<String>>,
) {
    loop {
        tokio::time::sleep(every).await;
        let mut now = Vec::new();
        for (what, api) in &absent {
            if served(api).await.is_ok() {
                now.push(what.clone());
            }
        }
        if !now.is_empty() {
            let _ = appeared.send(now).await;
            return;
        }
    }
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

use crate::event::event;

/// Ingress v1 status has no conditions; the place for a problem is
/// `loadBalancer.ingress[].ports[].error`, a CamelCase code with a
/// domain prefix (the full reason goes to the log). So `kubectl get ingress
/// -o yaml` shows why a rejected Ingress is not served.
fn rejected_status(lb: &serde_json::Value, kind: ProblemKind) -> serde_json::Value {
    let code = match kind {
        ProblemKind::Unsupported => "realip.dev/UnsupportedAnnotation",
        ProblemKind::BackendNotFound => "realip.dev/BackendNotFound",
        ProblemKind::Invalid | ProblemKind::TlsSecret => "realip.dev/InvalidAnnotation",
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

/// Which side of the computation a stream feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Ingress,
    Gateway,
    Both,
}

/// An EndpointSlice seen by the watch: namespace, name, the Service it
/// belongs to (`kubernetes.io/service-name`), and whether it is a change
/// after the initial list (`Apply` / `Delete`: `Some(deleted)`) or part of
/// a list (`None`).
type SliceSeen = (String, String, Option<String>, Option<bool>);

/// What the events since the last computation did to EndpointSlices:
/// whether they were all EndpointSlice changes after the initial lists,
/// and which Services those touched (for a slice moved to another
/// Service, both). Such a batch only needs the endpoints of those
/// Services refreshed in the computed sets
/// ([`crate::ingress::refresh_endpoints`]): routes and status depend on
/// Services, never on endpoints.
#[derive(Debug)]
pub struct SliceChanges {
    /// Each known slice's Service, by (namespace, slice name).
    owner: std::collections::HashMap<(String, String), String>,
    touched: crate::ingress::Touched,
    only_slices: bool,
}

impl Default for SliceChanges {
    fn default() -> SliceChanges {
        SliceChanges { owner: std::collections::HashMap::new(), touched: Touched::new(), only_slices: true }
    }
}

impl SliceChanges {
    /// An EndpointSlice event: `live` is `Some(deleted)` for a change
    /// after the initial list, `None` for an object of a (re)list.
    pub fn slice(&mut self, namespace: String, name: String, service: Option<String>, live: Option<bool>) {
        let key = (namespace.clone(), name);
        let before = match (&service, live) {
            (Some(svc), Some(false) | None) => self.owner.insert(key, svc.clone()),
            _ => self.owner.remove(&key),
        };
        self.touched.extend(before.into_iter().chain(service).map(move |s| (namespace.clone(), s)));
        self.only_slices &= live.is_some();
    }

    /// Any other event (another kind, a list starting or ending).
    pub fn other(&mut self) {
        self.only_slices = false;
    }

    /// The Services touched since the last call when every event was a
    /// live EndpointSlice change, else `None` (recompute everything);
    /// starts over either way.
    pub fn take(&mut self) -> Option<Touched> {
        let touched = std::mem::take(&mut self.touched);
        std::mem::replace(&mut self.only_slices, true).then_some(touched)
    }
}

/// One event of a stream, as the batch loop needs it.
#[derive(Debug)]
struct Tick {
    /// The stream's index.
    stream: usize,
    side: Side,
    /// Ends an initial list.
    init_done: bool,
    /// What it says of an EndpointSlice.
    slice: Option<SliceSeen>,
    /// A change of an object's status alone (its `generation` unchanged,
    /// for the kinds realip writes status on): nothing is recomputed for
    /// it, since the translation never reads status. Most are realip's own
    /// status patches, each of which would otherwise cost a full
    /// translation.
    status_only: bool,
    /// What was written into status that is no longer known to be in
    /// place.
    forget: Option<Forget>,
    /// The object whose status alone changed (`status_only`): its status
    /// is rendered again over the change (see the module's status
    /// rechecks).
    recheck: Option<ObjectKey>,
}

/// Status realip wrote that may no longer be in place.
#[derive(Debug, PartialEq)]
enum Forget {
    /// The object is gone.
    Object(ObjectKey),
    /// Its whole kind is being listed again (objects may have gone).
    All,
}

impl Tick {
    fn new(stream: usize, side: Side) -> Tick {
        Tick { stream, side, init_done: false, slice: None, status_only: false, forget: None, recheck: None }
    }
}

type Tagged = futures::stream::BoxStream<'static, Result<Tick, watcher::Error>>;

fn tag<K, S>(s: S, i: usize, side: Side) -> Tagged
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    s.map_ok(move |e| Tick { init_done: matches!(e, watcher::Event::InitDone), ..Tick::new(i, side) }).boxed()
}

/// As [`tag`], for a Gateway API kind realip writes status on: an update
/// that leaves `metadata.generation` as it was (the API server bumps it on
/// every spec change) is `status_only`; a deletion or a relist says what
/// to forget of the status written.
fn tag_status<K, S>(events: S, stream: usize, kind: &'static str) -> Tagged
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    K: kube::Resource + Send + 'static,
{
    let mut generations: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    events
        .map_ok(move |ev| {
            let mut tick = Tick::new(stream, Side::Gateway);
            match &ev {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                    let meta = o.meta();
                    if let (Some(uid), Some(generation)) = (meta.uid.clone(), meta.generation) {
                        let before = generations.insert(uid, generation);
                        tick.status_only = matches!(ev, watcher::Event::Apply(_)) && before == Some(generation);
                        if tick.status_only {
                            tick.recheck = Some(ObjectKey {
                                kind,
                                namespace: meta.namespace.clone(),
                                name: meta.name.clone().unwrap_or_default(),
                            });
                        }
                    }
                }
                watcher::Event::Delete(o) => {
                    let meta = o.meta();
                    if let Some(uid) = &meta.uid {
                        generations.remove(uid);
                    }
                    tick.forget = Some(Forget::Object(ObjectKey {
                        kind,
                        namespace: meta.namespace.clone(),
                        name: meta.name.clone().unwrap_or_default(),
                    }));
                }
                watcher::Event::Init => {
                    generations.clear();
                    tick.forget = Some(Forget::All);
                }
                watcher::Event::InitDone => tick.init_done = true,
            }
            tick
        })
        .boxed()
}

/// As [`tag`], for the EndpointSlice stream: each event says which
/// slice and Service it touches, so a batch of slice changes only
/// refreshes those Services' endpoints.
fn tag_slices<S>(s: S, i: usize) -> Tagged
where
    S: Stream<Item = Result<watcher::Event<EndpointSlice>, watcher::Error>> + Send + 'static,
{
    let seen = |e: &EndpointSlice, live: Option<bool>| {
        let svc = e.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")).cloned();
        (e.metadata.namespace.clone().unwrap_or_default(), e.metadata.name.clone().unwrap_or_default(), svc, live)
    };
    s.map_ok(move |e| {
        let t = Tick::new(i, Side::Both);
        match e {
            watcher::Event::Apply(o) => Tick { slice: Some(seen(&o, Some(false))), ..t },
            watcher::Event::Delete(o) => Tick { slice: Some(seen(&o, Some(true))), ..t },
            watcher::Event::InitApply(o) => Tick { slice: Some(seen(&o, None)), ..t },
            watcher::Event::Init => t,
            watcher::Event::InitDone => Tick { init_done: true, ..t },
        }
    })
    .boxed()
}

/// Whether the API server serves `K` to us (CRD installed, RBAC granted).
async fn served<K>(api: &Api<K>) -> Result<(), (bool, String)>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default().limit(1)).await.map(|_| ()).map_err(|e| {
        let not_found = matches!(&e, kube::Error::Api(s) if s.is_not_found());
        (not_found, e.to_string())
    })
}

/// Whether to watch a kind, from [`served`]'s answer: yes when served; a
/// kind the Gateway side needs (`fail_closed`) that fails with anything
/// but 404 (403 RBAC, a 5xx) is not taken for a missing CRD: it is watched
/// all the same (retried with backoff) and noted in `unreadable`, and the
/// Gateway side waits for it; any other failure is noted in `absent` and
/// the kind is not watched.
fn watched(
    served: Result<(), (bool, String)>,
    fail_closed: bool,
    what: &str,
    absent: &mut Vec<String>,
    unreadable: &mut Vec<String>,
) -> bool {
    match served {
        Ok(()) => true,
        Err((false, e)) if fail_closed => {
            unreadable.push(format!("{what}: {e}"));
            true
        }
        Err((_, e)) => {
            absent.push(format!("{what}: {e}"));
            false
        }
    }
}

/// The statuses last settled (written, or found in place) by object, and
/// the addresses of those values: a translation's status that is the very
/// value settled is known settled by one lookup of its address, without
/// hashing and comparing its key (10,000 HTTPRoutes per translation).
#[derive(Debug, Default)]
struct Settled {
    by_key: foldhash::HashMap<ObjectKey, std::sync::Arc<ObjectStatus>>,
    /// Addresses of the values in `by_key` (which hold them, so an address
    /// here is never another status's).
    at: foldhash::HashSet<usize>,
}

impl Settled {
    fn addr(s: &std::sync::Arc<ObjectStatus>) -> usize {
        std::sync::Arc::as_ptr(s).addr()
    }

    /// Whether `s` is the very value settled for its object.
    fn holds(&self, s: &std::sync::Arc<ObjectStatus>) -> bool {
        self.at.contains(&Self::addr(s))
    }

    /// Whether what is settled for `s`'s object equals `s`.
    fn equal(&self, s: &ObjectStatus) -> bool {
        self.by_key.get(&s.key).is_some_and(|old| **old == *s)
    }

    fn insert(&mut self, s: &std::sync::Arc<ObjectStatus>) {
        if let Some(old) = self.by_key.insert(s.key.clone(), std::sync::Arc::clone(s)) {
            self.at.remove(&Self::addr(&old));
        }
        self.at.insert(Self::addr(s));
    }

    fn remove(&mut self, k: &ObjectKey) {
        if let Some(old) = self.by_key.remove(k) {
            self.at.remove(&Self::addr(&old));
        }
    }

    fn clear(&mut self) {
        self.by_key.clear();
        self.at.clear();
    }

    /// Keeps the objects `keep` says.
    fn retain(&mut self, keep: impl Fn(&ObjectKey) -> bool) {
        let at = &mut self.at;
        self.by_key.retain(|k, v| {
            let kept = keep(k);
            if !kept {
                at.remove(&Self::addr(v));
            }
            kept
        });
    }
}

/// The stores of the Gateway API side (empty stores for kinds not served).
struct GatewayStores {
    classes: Store<GatewayClass>,
    gateways: Store<Gateway>,
    sets: Store<ListenerSet>,
    routes: Store<HttpRoute>,
    grants: Store<ReferenceGrant>,
    ip: Store<ClientIpPolicy>,
    access: Store<ClientAccessPolicy>,
    namespaces: Store<Namespace>,
    grpc: Store<GrpcRoute>,
    tls: Store<TlsRoute>,
    tcp: Store<TcpRoute>,
    udp: Store<UdpRoute>,
}

impl GatewayStores {
    /// The status `k` has in its store now, and the `resourceVersion` it
    /// has it at (`None`s when it is not there).
    fn status(&self, k: &ObjectKey) -> (Option<Value>, Option<String>) {
        fn get<K>(store: &Store<K>, k: &ObjectKey) -> Option<std::sync::Arc<K>>
        where
            K: kube::Resource<DynamicType = ()> + Clone + 'static,
        {
            let r = kube::runtime::reflector::ObjectRef::new(&k.name);
            store.get(&match &k.namespace {
                Some(ns) => r.within(ns),
                None => r,
            })
        }
        fn of<K: kube::Resource>(
            o: Option<std::sync::Arc<K>>,
            status: impl Fn(&K) -> Option<Value>,
        ) -> (Option<Value>, Option<String>) {
            o.map_or((None, None), |o| (status(&o), o.meta().resource_version.clone()))
        }
        match k.kind {
            "GatewayClass" => of(get(&self.classes, k), |o| o.status.clone()),
            "Gateway" => of(get(&self.gateways, k), |o| o.status.clone()),
            "ListenerSet" => of(get(&self.sets, k), |o| o.status.clone()),
            "HTTPRoute" => of(get(&self.routes, k), |o| o.status.clone()),
            "ClientIPPolicy" => of(get(&self.ip, k), |o| o.status.clone()),
            "ClientAccessPolicy" => of(get(&self.access, k), |o| o.status.clone()),
            "GRPCRoute" => of(get(&self.grpc, k), |o| o.0.status.clone()),
            "TLSRoute" => of(get(&self.tls, k), |o| o.0.status.clone()),
            "TCPRoute" => of(get(&self.tcp, k), |o| o.0.status.clone()),
            "UDPRoute" => of(get(&self.udp, k), |o| o.0.status.clone()),
            _ => (None, None),
        }
    }

    /// `s` rendered over what its object holds now: the merge patch to
    /// send (with the `resourceVersion` it was rendered over), or `None`
    /// when the object holds it already.
    fn render(&self, s: &ObjectStatus, now: &str) -> Option<Value> {
        let (prev, rv) = self.status(&s.key);
        let body = to_json(s, prev.as_ref(), now);
        if prev.as_ref() == Some(&body) {
            return None;
        }
        let mut patch = json!({ "status": body });
        if let Some(rv) = rv {
            patch["metadata"] = json!({ "resourceVersion": rv });
        }
        Some(patch)
    }
}

/// Objects whose status rechecks found it needing a write again, with how
/// often in a row (rewrites less than [`Contention::WINDOW`] apart) and
/// when last: past [`Contention::FREE`] in a row, each rewrite waits
/// [`crate::status_writer::backoff`] of the excess, so writers that
/// disagree on realip's entries settle into a slow exchange instead of a
/// storm (said once per object by `gateway_status_contended`).
#[derive(Debug, Default)]
struct Contention(foldhash::HashMap<ObjectKey, (u32, Instant)>);

impl Contention {
    const WINDOW: Duration = Duration::from_secs(60);
    const FREE: u32 = 3;

    /// Books a rewrite of `k` at `now`; how long it waits.
    fn rewrite(&mut self, k: &ObjectKey, now: Instant) -> Duration {
        let e = self.0.entry(k.clone()).or_insert((0, now));
        e.0 = if now.duration_since(e.1) < Self::WINDOW { e.0.saturating_add(1) } else { 1 };
        e.1 = now;
        let excess = e.0.saturating_sub(Self::FREE);
        if excess == 1 {
            event(&json!({"event": "gateway_status_contended", "kind": k.kind, "namespace": k.namespace,
                "name": k.name, "note": "another writer keeps changing realip's status entries on this object \
                (replicas or controllers that disagree): rewritten at a falling rate"}));
        }
        if excess == 0 {
            Duration::ZERO
        } else {
            crate::status_writer::backoff(excess)
        }
    }
}

/// What the watcher hands to the proxy: both computed sides in one value,
/// so a batch that changes both (an EndpointSlice of a Service both use)
/// is one update, hence one reload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Published {
    /// The Ingress side, once its lists are in.
    pub ingress: Option<Desired>,
    /// The Gateway API side (Gateway API mode only), once its lists are in.
    pub gateway: Option<RouteSet>,
    /// Both sides are in as they will be served (the Ingress side no
    /// longer holds hosts back for the Gateway side): the proxy may say it
    /// is ready.
    pub ready: bool,
}

/// Watches until the client fails for good; publishes every change of
/// either side on `tx` (only when it changed).
#[allow(clippy::too_many_lines)] // one loop: streams, batch, compute, publish
pub async fn run(
    client: kube::Client,
    cfg: WatchConfig,
    tx: tokio::sync::watch::Sender<Published>,
) -> Result<(), Error> {
    let ns = cfg.namespace.as_deref();
    let (ingresses, iw) = reflector::store::<Ingress>();
    let (services, sw) = reflector::store::<Service>();
    let (slices, ew) = reflector::store::<EndpointSlice>();
    let (secrets, tw) = reflector::store::<Secret>();
    let wc = watcher::Config::default();
    let mut streams: Vec<Tagged> = vec![
        tag(reflector(sw, watcher(api::<Service>(&client, ns), wc.clone())).default_backoff(), 1, Side::Both),
        tag_slices(reflector(ew, watcher(api::<EndpointSlice>(&client, ns), wc.clone())).default_backoff(), 2),
        // Only TLS Secrets are read (and kept in memory).
        tag(
            reflector(tw, watcher(api::<Secret>(&client, ns), wc.clone().fields("type=kubernetes.io/tls")))
                .default_backoff(),
            3,
            Side::Both,
        ),
    ];
    if cfg.ingress {
        streams.push(tag(
            reflector(iw, watcher(api::<Ingress>(&client, ns), wc.clone())).default_backoff(),
            0,
            Side::Ingress,
        ));
    } else {
        // Nothing to list: the store stays empty, so no Ingress is served.
        drop(iw);
    }
    // Gateway API kinds: each watched only when the API server serves it.
    let (classes, cw) = reflector::store::<GatewayClass>();
    let (gateways, gw) = reflector::store::<Gateway>();
    let (sets, lw) = reflector::store::<ListenerSet>();
    let (routes, rw) = reflector::store::<HttpRoute>();
    let (grants, aw) = reflector::store::<ReferenceGrant>();
    let (ip, pw) = reflector::store::<ClientIpPolicy>();
    let (access, xw) = reflector::store::<ClientAccessPolicy>();
    let (namespaces, nw) = reflector::store::<Namespace>();
    // Route kinds realip does not serve: watched only to write their
    // status (not accepted), when their CRDs are installed.
    let (grpc, grw) = reflector::store::<GrpcRoute>();
    let (tls, tlw) = reflector::store::<TlsRoute>();
    let (tcp, tcw) = reflector::store::<TcpRoute>();
    let (udp, udw) = reflector::store::<UdpRoute>();
    let gateway_on = cfg.gateway_class.is_some();
    // Streams 0-3 always; 4-11 and 13-16 when served; 12 the proxy's
    // binds and 17 its feedback (no initial list). true = initial list in.
    let mut synced = [true; 18];
    if let Some(rx) = cfg.binds.clone() {
        let changes = futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some((Ok::<_, watcher::Error>(Tick::new(12, Side::Gateway)), rx))
        });
        streams.push(changes.boxed());
    }
    if let Some(rx) = cfg.feedback.clone() {
        let changes = futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some((Ok::<_, watcher::Error>(Tick::new(17, Side::Gateway)), rx))
        });
        streams.push(changes.boxed());
    }
    synced[..4].fill(false);
    synced[0] = !cfg.ingress;
    // The APIs of the kinds not served at start, asked for again later.
    let mut recheck_apis: Vec<(String, Api<kube::api::DynamicObject>)> = Vec::new();
    if gateway_on {
        let mut absent = Vec::new();
        let mut unreadable = Vec::new();
        // The kinds realip writes status on are tagged with
        // [`tag_status`], so their status-only updates are told apart.
        // `$needed`: the kinds the Gateway side is computed from (all but
        // the route kinds realip does not serve). Absent (404: CRDs not
        // installed), the Gateway side goes without them (realip.dev:
        // Gateway routes without policies, as documented); any other error
        // (403 RBAC, 5xx…) is not taken for absence: the kind is watched all
        // the same (retried with backoff), and the Gateway side waits for
        // its list, so no Gateway route is served without the policies that
        // may protect it, nor an Ingress given a host an HTTPRoute may own
        // (fail closed).
        macro_rules! maybe {
            ($api:expr, $writer:expr, $i:expr, $what:literal, $tagged:expr) => {{
                let a = $api;
                if watched(served(&a).await, true, $what, &mut absent, &mut unreadable) {
                    synced[$i] = false;
                    streams.push(($tagged)(reflector($writer, watcher(a, wc.clone())).default_backoff(), $i));
                }
            }};
            // Decoded one object at a time (`crate::decode`): an object
            // realip's types refuse is left out and reported, the rest of
            // its kind syncs.
            (dyn $k:ty, $ns:expr, $store:expr, $writer:expr, $i:expr, $what:literal, $tagged:expr) => {
                maybe!(dyn $k, $ns, $store, $writer, $i, $what, $tagged, true)
            };
            (dyn $k:ty, $ns:expr, $store:expr, $writer:expr, $i:expr, $what:literal, $tagged:expr, $needed:expr) => {{
                let a = crate::decode::dynamic_api::<$k>(&client, $ns);
                if watched(served(&a).await, $needed, $what, &mut absent, &mut unreadable) {
                    synced[$i] = false;
                    let events = crate::decode::decoded::<$k>(a, wc.clone(), $store.clone());
                    streams.push(($tagged)(reflector($writer, events).default_backoff(), $i));
                } else {
                    recheck_apis.push(($what.to_owned(), a));
                }
            }};
        }
        maybe!(dyn GatewayClass, None, classes, cw, 4, "gatewayclasses", |s, i| tag_status(s, i, "GatewayClass"));
        maybe!(dyn Gateway, ns, gateways, gw, 5, "gateways", |s, i| tag_status(s, i, "Gateway"));
        maybe!(dyn ListenerSet, ns, sets, lw, 6, "listenersets", |s, i| tag_status(s, i, "ListenerSet"));
        maybe!(dyn HttpRoute, ns, routes, rw, 7, "httproutes", |s, i| tag_status(s, i, "HTTPRoute"));
        maybe!(dyn ReferenceGrant, ns, grants, aw, 8, "referencegrants", |s, i| tag(s, i, Side::Gateway));
        maybe!(dyn ClientIpPolicy, ns, ip, pw, 9, "clientippolicies", |s, i| tag_status(s, i, "ClientIPPolicy"));
        maybe!(dyn ClientAccessPolicy, ns, access, xw, 10, "clientaccesspolicies", |s, i| tag_status(
            s,
            i,
            "ClientAccessPolicy"
        ));
        maybe!(Api::<Namespace>::all(client.clone()), nw, 11, "namespaces", |s, i| tag(s, i, Side::Gateway));
        maybe!(dyn GrpcRoute, ns, grpc, grw, 13, "grpcroutes", |s, i| tag_status(s, i, "GRPCRoute"), false);
        maybe!(dyn TlsRoute, ns, tls, tlw, 14, "tlsroutes", |s, i| tag_status(s, i, "TLSRoute"), false);
        maybe!(dyn TcpRoute, ns, tcp, tcw, 15, "tcproutes", |s, i| tag_status(s, i, "TCPRoute"), false);
        maybe!(dyn UdpRoute, ns, udp, udw, 16, "udproutes", |s, i| tag_status(s, i, "UDPRoute"), false);
        // Route kinds realip does not serve are optional (UDPRoute is in
        // the experimental channel only): their absence is logged apart,
        // once, and changes nothing that is served.
        let (unserved_absent, absent): (Vec<String>, Vec<String>) = absent
            .into_iter()
            .partition(|a| ["grpcroutes:", "tlsroutes:", "tcproutes:", "udproutes:"].iter().any(|p| a.starts_with(p)));
        if !unserved_absent.is_empty() {
            event(&json!({"event": "gateway_route_kinds_not_watched", "kinds": unserved_absent,
                "note": "realip does not serve these route kinds; where they cannot be listed (CRD not installed or \
                         no RBAC) their routes get no status from realip"}));
        }
        if !absent.is_empty() {
            // Logged once: Ingresses are served either way.
            event(&json!({"event": "gateway_api_unavailable", "kinds": absent,
                "note": "these kinds are not watched (CRDs not installed or no RBAC); Ingresses are served"}));
        }
        if !unreadable.is_empty() {
            // realip.dev kinds and the others apart (the former's event
            // predates the latter).
            let (policies, others): (Vec<String>, Vec<String>) =
                unreadable.into_iter().partition(|k| k.starts_with("client"));
            for (name, kinds) in [("gateway_policies_unreadable", policies), ("gateway_kinds_unreadable", others)] {
                if !kinds.is_empty() {
                    event(&json!({"event": name, "kinds": kinds,
                        "note": "these kinds cannot be listed (not a missing CRD: RBAC or a server error): no Gateway \
                                 route is served until they can be (fail closed; retried with backoff); Ingresses are \
                                 served, but not for a host an HTTPRoute names (none while HTTPRoutes cannot be \
                                 listed), and the proxy is not ready"}));
                }
            }
        }
    }
    // Whether the Gateway side will be published (some kind it is computed
    // from is watched): until it first is, an Ingress must not take a host
    // an HTTPRoute may own (the proxy decides ownership only with both
    // sides in), and the proxy is not ready. A restarted watch finds the
    // last Gateway side still published.
    let gateway_expected = gateway_on && synced[4..=11].iter().any(|s| !s);
    let mut held_logged = false;
    let stores = GatewayStores { classes, gateways, sets, routes, grants, ip, access, namespaces, grpc, tls, tcp, udp };
    let mut events = futures::stream::select_all(streams);
    let (appeared_tx, mut appeared) = tokio::sync::mpsc::channel(1);
    let rechecking = (!recheck_apis.is_empty()).then(|| tokio::spawn(recheck(recheck_apis, cfg.recheck, appeared_tx)));
    // The recheck ends with this watch.
    let _rechecking = AbortOnDrop(rechecking);
    // Status is written by a task of its own, which ends with this watch.
    let (writer, writing) = Writer::start(client.clone());
    let _writing = AbortOnDrop(Some(writing));
    // Each object's status as last translated, once it is known to be in
    // place (written, or found as it should be): a translation renders and
    // compares only the statuses that differ from it, not all 10,000.
    let mut settled = Settled::default();
    let mut contention = Contention::default();
    // What the previous translation computed per HTTPRoute: a change of
    // one route translates that route, not all of them.
    let mut route_cache = crate::gateway::translate::RouteCache::default();
    let mut reported: Vec<Problem> = Vec::new();
    let mut gw_reported: foldhash::HashSet<String> = foldhash::HashSet::default();
    // The previous translation's statuses, in order, each with its
    // problems as log lines (`None`: none): an unchanged status (the same
    // value, found a few places ahead in the next translation's statuses,
    // which keep their order) is not walked again.
    let mut problem_lines: Vec<StatusLines> = Vec::new();
    // ClientIPPolicies in force: a policy edited into an invalid one keeps
    // its last valid version (see `Inputs::last_good_ip`).
    let mut last_good_ip: std::collections::BTreeMap<String, crate::routes::ClientIp> =
        std::collections::BTreeMap::new();
    let mut last_good_access: std::collections::BTreeMap<String, crate::routes::Access> =
        std::collections::BTreeMap::new();
    let mut last_desired: Option<Desired> = None;
    let mut pending = (false, false); // (ingress, gateway) sides touched
                                      // A batch of EndpointSlice changes only refreshes endpoints.
    let mut changes = SliceChanges::default();
    // The Gateway side's backends as last translated (`None`: not yet).
    let mut gw_backends: Option<Vec<crate::ingress::Backend>> = None;
    loop {
        // One batch: the first event, then whatever follows within 2 ms
        // (bounded to 250 ms in total); events that arrive during the
        // computation wait in the streams and form the next batch.
        let first = tokio::select! {
            ev = events.next() => ev,
            Some(kinds) = appeared.recv() => return Err(Error::KindsAppeared(kinds)),
        };
        let Some(first) = first else { break };
        let started = tokio::time::Instant::now();
        let mut batch = vec![first];
        while started.elapsed() < Duration::from_millis(250) {
            match tokio::time::timeout(Duration::from_millis(2), events.next()).await {
                Ok(Some(ev)) => batch.push(ev),
                Ok(None) | Err(_) => break,
            }
        }
        let mut relevant = false;
        let mut rechecks: Vec<ObjectKey> = Vec::new();
        for ev in batch {
            match ev {
                Err(e) => event(&json!({"event": "kubernetes_watch_error", "error": e.to_string()})),
                Ok(t) => {
                    synced[t.stream] |= t.init_done;
                    match t.forget {
                        Some(Forget::Object(k)) => {
                            settled.remove(&k);
                            contention.0.remove(&k);
                            writer.with(|q| q.forget(&Target::Object(k)));
                        }
                        Some(Forget::All) => settled.clear(),
                        None => {}
                    }
                    if t.status_only {
                        rechecks.extend(t.recheck);
                        continue;
                    }
                    relevant = true;
                    pending.0 |= t.side != Side::Gateway;
                    pending.1 |= t.side != Side::Ingress;
                    match t.slice {
                        Some((sns, sname, svc, live)) => changes.slice(sns, sname, svc, live),
                        None => changes.other(),
                    }
                }
            }
        }
        // Statuses changed by a write (realip's, or anyone's) are rendered
        // again from what realip last decided for them; what is already in
        // place is left alone.
        if !rechecks.is_empty() {
            let now = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            let at = Instant::now();
            let due: Vec<(Target, Option<(Value, Duration)>)> = rechecks
                .iter()
                .filter_map(|k| settled.by_key.get(k))
                .map(|s| {
                    let patch = stores.render(s, &now).map(|p| (p, contention.rewrite(&s.key, at)));
                    (Target::Object(s.key.clone()), patch)
                })
                .collect();
            writer.with(|q| {
                for (target, patch) in due {
                    match patch {
                        // In place: whatever waits for it is older.
                        None => q.cancel(&target),
                        Some((p, _)) if q.latest(&target) == Some(&p) => {}
                        Some((p, wait)) => q.hand_at(target, p, at + wait),
                    }
                }
            });
        }
        if !relevant {
            continue;
        }
        // Nothing is computed before every initial list is in: an Ingress
        // seen before its Service would otherwise be rejected for a moment.
        // The Ingress side waits for its four lists only, so a Gateway API
        // kind that cannot be listed never holds Ingresses back.
        if !synced[..4].iter().all(|s| *s) {
            continue;
        }
        let gateway_synced = synced.iter().all(|s| *s);
        let lb: Option<Value> = cfg.publish_service.as_ref().and_then(|(pns, pname)| {
            services
                .state()
                .iter()
                .find(|s| s.metadata.namespace.as_deref() == Some(pns) && s.metadata.name.as_deref() == Some(pname))
                .and_then(|s| s.status.as_ref()?.load_balancer.as_ref()?.ingress.clone())
                .map(|v| serde_json::to_value(v).unwrap_or_default())
        });
        let gateway_ready = !gateway_on || (gateway_synced && gw_backends.is_some());
        let touched = changes.take();
        if let (Some(touched), true) = (touched, gateway_ready) {
            let fresh = refresh_both(last_desired.as_ref(), gw_backends.as_ref(), &touched, &services, &slices);
            if let Some((ingress_backends, gateway_backends)) = fresh {
                pending = (false, false);
                if let Some(d) = last_desired.as_mut() {
                    d.backends.clone_from(&ingress_backends);
                }
                if let Some(b) = &gateway_backends {
                    gw_backends = Some(b.clone());
                }
                // Both sides in one update: one reload.
                tx.send_if_modified(|cur| {
                    let mut changed = false;
                    if let Some(d) = cur.ingress.as_mut().filter(|d| d.backends != ingress_backends) {
                        d.backends = ingress_backends;
                        changed = true;
                    }
                    if let Some(b) = gateway_backends {
                        if let Some(set) = cur.gateway.as_mut().filter(|set| set.backends != b) {
                            set.backends = b;
                            changed = true;
                        }
                    }
                    changed
                });
                continue;
            }
        }
        // What this batch computed, published together (one reload) as
        // soon as it is computed: statuses are written after, so the time
        // from a change to it being served never includes a status patch.
        let mut new_ingress: Option<Desired> = None;
        let mut ingress_status_due = false;
        if std::mem::take(&mut pending.0) || last_desired.is_none() {
            let d = desired(&cfg.class, ns, &ingresses.state(), &services.state(), &slices.state(), &secrets.state());
            let now: Vec<Problem> = d.problems.iter().chain(&d.warnings).cloned().collect();
            for p in now.iter().filter(|p| !reported.contains(p)) {
                let kind = if d.problems.contains(p) { "ingress_rejected" } else { "ingress_warning" };
                event(&json!({"event": kind, "ingress": p.ingress, "reason": p.message}));
            }
            reported = now;
            ingress_status_due = true;
            last_desired = Some(d.clone());
            new_ingress = Some(d);
        }
        if gateway_on && gateway_synced && std::mem::take(&mut pending.1) {
            let class = cfg.gateway_class.as_deref().unwrap_or_default();
            let addresses: Vec<String> = lb
                .iter()
                .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                .filter_map(|e| e["ip"].as_str().or_else(|| e["hostname"].as_str()).map(str::to_owned))
                .collect();
            let (st_classes, st_gateways, st_sets, st_routes, st_grants, st_ip, st_access, st_ns) = (
                stores.classes.state(),
                stores.gateways.state(),
                stores.sets.state(),
                stores.routes.state(),
                stores.grants.state(),
                stores.ip.state(),
                stores.access.state(),
                stores.namespaces.state(),
            );
            let (sv, sl, se) = (services.state(), slices.state(), secrets.state());
            let (st_grpc, st_tls, st_tcp, st_udp) =
                (stores.grpc.state(), stores.tls.state(), stores.tcp.state(), stores.udp.state());
            let inputs = Inputs {
                class,
                addresses,
                classes: st_classes.iter().map(AsRef::as_ref).collect(),
                gateways: st_gateways.iter().map(AsRef::as_ref).collect(),
                listener_sets: st_sets.iter().map(AsRef::as_ref).collect(),
                routes: st_routes.iter().map(AsRef::as_ref).collect(),
                unserved_routes: st_grpc
                    .iter()
                    .map(|r| ("GRPCRoute", &r.0))
                    .chain(st_tls.iter().map(|r| ("TLSRoute", &r.0)))
                    .chain(st_tcp.iter().map(|r| ("TCPRoute", &r.0)))
                    .chain(st_udp.iter().map(|r| ("UDPRoute", &r.0)))
                    .collect(),
                grants: st_grants.iter().map(AsRef::as_ref).collect(),
                grant_index: std::sync::OnceLock::new(),
                ip_policies: st_ip.iter().map(AsRef::as_ref).collect(),
                access_policies: st_access.iter().map(AsRef::as_ref).collect(),
                namespaces: st_ns.iter().map(AsRef::as_ref).collect(),
                services: sv.iter().map(AsRef::as_ref).collect(),
                slices: sl.iter().map(AsRef::as_ref).collect(),
                secrets: se.iter().map(AsRef::as_ref).collect(),
                binds: cfg.binds.as_ref().map(|b| b.borrow().clone()),
                last_good_ip: std::mem::take(&mut last_good_ip),
                last_good_access: std::mem::take(&mut last_good_access),
                max_routes_per_namespace: Some(cfg.max_routes_per_namespace),
                previous: Some(&settled.by_key),
            };
            let mut translation = translate_with(&inputs, &mut route_cache);
            if let Some(fb) = &cfg.feedback {
                crate::gateway::feedback::apply(&mut translation.statuses, &fb.borrow());
            }
            gw_backends = Some(translation.routes.backends.clone());
            // The first Gateway side brings the whole Ingress side with it
            // (hosts held until now are released: the proxy decides who
            // owns them).
            if tx.borrow().gateway.is_none() {
                new_ingress = new_ingress.or_else(|| last_desired.clone());
            }
            // Served first: the proxy (on this thread too, in the default
            // runtime) reloads before the statuses below are compared and
            // written.
            if publish(&tx, new_ingress.take(), Some(std::mem::take(&mut translation.routes)), true) {
                tokio::task::yield_now().await;
            }
            last_good_ip.clone_from(&translation.ip_in_force);
            last_good_access.clone_from(&translation.access_in_force);
            let mut lines_now = Vec::with_capacity(translation.statuses.len());
            let mut problems: Vec<String> = Vec::new();
            let mut next = 0;
            for s in &translation.statuses {
                let ahead = next..problem_lines.len().min(next + 8);
                let kept = ahead.into_iter().find(|&k| std::sync::Arc::ptr_eq(&problem_lines[k].0, s));
                let lines = if let Some(k) = kept {
                    next = k + 1;
                    problem_lines[k].1.take()
                } else {
                    let lines: Vec<String> = crate::gateway::translate::problems_of(s)
                        .map(|p| {
                            json!({"event": "gateway_problem", "kind": p.object.kind, "namespace": p.object.namespace,
                                "name": p.object.name, "condition": p.condition, "reason": p.reason,
                                "message": p.message})
                            .to_string()
                        })
                        .collect();
                    (!lines.is_empty()).then(|| lines.into())
                };
                problems.extend(lines.iter().flat_map(|l| l.iter().cloned()));
                lines_now.push((std::sync::Arc::clone(s), lines));
            }
            problem_lines = lines_now;
            for p in problems.iter().filter(|p| !gw_reported.contains(*p)) {
                event(&serde_json::from_str(p).unwrap_or_default());
            }
            gw_reported = problems.into_iter().collect();
            // Writes that found their object gone settled nothing.
            for k in writer.with(crate::status_writer::Queue::take_gone) {
                settled.remove(&k);
            }
            // Only the statuses that changed since they were last settled
            // are rendered and compared with the object's.
            // (A status equal to the settled one under another allocation
            // takes its place, so the next comparison is of pointers.)
            let mut changed: Vec<&std::sync::Arc<ObjectStatus>> = Vec::new();
            for s in &translation.statuses {
                if settled.holds(s) {
                    continue;
                }
                if settled.equal(s) {
                    settled.insert(s);
                } else {
                    changed.push(s);
                }
            }
            // Each is rendered over what its object holds now (looked up in
            // its store by name: only the few statuses to compare, never a
            // scan of all).
            let now = k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            let rendered: Vec<(&ObjectKey, Option<Value>)> =
                changed.iter().map(|s| (&s.key, stores.render(s, &now))).collect();
            // Handed to the writer, never awaited (and settled: the writer
            // tries again until it is written). A status the object already
            // holds cancels a body still waiting for it; one that flies may
            // land, and is then rendered over again by its recheck.
            writer.with(|q| {
                for (key, patch) in rendered {
                    let target = Target::Object(key.clone());
                    match patch {
                        None => q.cancel(&target),
                        Some(p) if q.latest(&target) == Some(&p) => {}
                        Some(p) => q.hand(target, p),
                    }
                }
            });
            for s in changed {
                settled.insert(s);
            }
            // What the translation no longer writes (a Gateway moved to
            // another class, a route no longer realip's) is no longer
            // realip's decision: a recheck must not write it back (review
            // 13f HIGH-1).
            if settled.by_key.len() > translation.statuses.len() {
                let now: foldhash::HashSet<&ObjectKey> = translation.statuses.iter().map(|s| &s.key).collect();
                settled.retain(|k| now.contains(k));
            }
        }
        let gateway_known = !gateway_expected || tx.borrow().gateway.is_some();
        let ingress_now = match new_ingress.take() {
            Some(d) if !gateway_known => {
                let held = hold_hosts_of_routes(d, synced[7].then(|| stores.routes.state()).as_deref());
                if !held_logged && held.1 > 0 {
                    held_logged = true;
                    event(&json!({"event": "ingress_routes_held", "routes": held.1,
                        "note": "until the Gateway API side is first computed, Ingress routes for hosts an HTTPRoute \
                                 names (all of them while HTTPRoutes cannot be listed) are not served"}));
                }
                Some(held.0)
            }
            d => d,
        };
        if publish(&tx, ingress_now, None, gateway_known) {
            tokio::task::yield_now().await;
        }
        if let (true, Some(lb), Some(d)) = (ingress_status_due, &lb, &last_desired) {
            publish_ingress_status(&writer, d, lb);
        }
    }
    Err(Error::Live("the Kubernetes watch streams ended".into()))
}

/// Aborts a task when dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.abort();
        }
    }
}

/// A status of a translation and its problems as log lines (`None`: none).
type StatusLines = (std::sync::Arc<ObjectStatus>, Option<std::sync::Arc<[String]>>);

/// The Ingress side without the routes for hosts an HTTPRoute names
/// (`routes`; `None`: not listed yet, so every route is held), and how
/// many were held. An HTTPRoute without hostnames may take any host, so
/// it holds them all; a wildcard holds the hosts it covers.
fn hold_hosts_of_routes(mut d: Desired, routes: Option<&[std::sync::Arc<HttpRoute>]>) -> (Desired, usize) {
    let names: Option<Vec<&str>> = routes.and_then(|rs| {
        let mut names = Vec::new();
        for r in rs {
            if r.spec.hostnames.is_empty() {
                return None;
            }
            names.extend(r.spec.hostnames.iter().map(String::as_str));
        }
        Some(names)
    });
    let claimed = |host: Option<&str>| match (&names, host) {
        (None, _) => true,
        // A host-less rule catches the hosts of routes not yet published.
        (Some(names), None) => !names.is_empty(),
        (Some(names), Some(h)) => names.iter().any(|n| hosts_overlap(n, h)),
    };
    let before = d.routes.len();
    d.routes.retain(|r| !claimed(r.host.as_deref()));
    let held = before - d.routes.len();
    (d, held)
}

/// Whether two host names, each exact or a `*.` wildcard, can match one
/// request's host (case and a trailing dot aside).
fn hosts_overlap(a: &str, b: &str) -> bool {
    let norm = |h: &str| h.trim_end_matches('.').to_ascii_lowercase();
    // (`*.s` covers `x.s`, `y.x.s` and `*.x.s`, not `s`.)
    crate::gateway::translate::overlap(Some(&norm(a)), Some(&norm(b)))
}

/// Hands the proxy what a batch computed (both sides in one update: one
/// reload), and whether the proxy now has both sides as they will be
/// served (`ready`: it then reports ready), when that differs from what it
/// has; whether it did.
fn publish(
    tx: &tokio::sync::watch::Sender<Published>,
    ingress: Option<Desired>,
    gateway: Option<RouteSet>,
    ready: bool,
) -> bool {
    tx.send_if_modified(|cur| {
        let mut changed = false;
        if ready && !cur.ready && (ingress.is_some() || gateway.is_some() || cur.ingress.is_some()) {
            cur.ready = true;
            changed = true;
        }
        if let Some(d) = ingress.filter(|d| cur.ingress.as_ref() != Some(d)) {
            cur.ingress = Some(d);
            changed = true;
        }
        if let Some(g) = gateway.filter(|g| cur.gateway.as_ref() != Some(g)) {
            cur.gateway = Some(g);
            changed = true;
        }
        changed
    })
}

/// The Ingress side's and the Gateway side's backends with the endpoints
/// of the `touched` Services recomputed, or `None` when a full
/// computation is needed (nothing computed yet, or a backend that cannot
/// be refreshed exactly, see [`crate::ingress::refresh_endpoints`]).
fn refresh_both(
    desired: Option<&Desired>,
    gateway: Option<&Vec<crate::ingress::Backend>>,
    touched: &Touched,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
) -> Option<(Vec<crate::ingress::Backend>, Option<Vec<crate::ingress::Backend>>)> {
    let (sv, sl) = (services.state(), slices.state());
    let mut ingress = desired?.backends.clone();
    crate::ingress::refresh_endpoints(&mut ingress, touched, &sv, &sl)?;
    let gateway = match gateway {
        Some(g) => {
            let mut g = g.clone();
            crate::ingress::refresh_endpoints(&mut g, touched, &sv, &sl)?;
            Some(g)
        }
        None => None,
    };
    Some((ingress, gateway))
}

/// Hands the writer the status of every Ingress served (the load
/// balancer's address) or rejected (the address with an error code),
/// unless it is already what was last handed for it.
fn publish_ingress_status(writer: &Writer, d: &Desired, lb: &Value) {
    let rejected = d.problems.iter().filter_map(|p| {
        let (ns, name) = p.ingress.split_once('/')?;
        Some(((ns.to_owned(), name.to_owned()), rejected_status(lb, p.kind)))
    });
    let served = d.served.iter().map(|k| (k.clone(), lb.clone()));
    writer.with(|q| {
        for ((ns, name), status) in served.chain(rejected) {
            let target = Target::Ingress(ns, name);
            if q.latest(&target) != Some(&status) {
                q.hand(target, status);
            }
        }
    });
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
