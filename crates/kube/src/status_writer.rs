//! Status writes of the Kubernetes watch (Gateway API objects and
//! Ingresses), in a task of their own: the watch loop decides what each
//! object's status should be and hands it to a [`Writer`] without
//! awaiting the API server; the writer's task PATCHes it. So the watch
//! loop reads its next event (an EndpointSlice change of everyone's
//! backends) while thousands of statuses are still being written.
//!
//! - Latest wins: at most one body per object waits ([`Queue`]); a newer
//!   one replaces it in place. An object has at most one PATCH in flight,
//!   and what was handed while it flew is sent after it, so an object never
//!   gets a body after a newer one.
//! - At most [`MAX_IN_FLIGHT`] PATCHes at once.
//! - A failed write is tried again after a backoff per object
//!   ([`backoff`]: 1 s doubling to 30 s, started over by a success), each
//!   failure logged once (`gateway_status_failed` / `ingress_status_failed`
//!   with `retry_in_ms`). NotFound (the object is gone) is not tried again:
//!   it is reported to the watch loop ([`Queue::take_gone`]), which takes
//!   that status as not settled, so its next translation decides again.
//! - A Gateway API object's body is the whole merge patch, with the
//!   `metadata.resourceVersion` its status was rendered over: a write
//!   racing another writer's (another realip, another controller) fails
//!   with 409 Conflict instead of dropping what that writer just put
//!   there. A conflict is not tried again: the other write comes back
//!   through the watch, where the status is rendered again over it
//!   (module `watch`, status rechecks).
//! - Memory is bounded by the number of objects: one waiting body, one
//!   body in flight and the last body written per object; what the watch
//!   forgets (a deleted object) is dropped.
//! - The task ends with the watch ([`Writer::start`] gives the guard that
//!   aborts it).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt as _;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};

use crate::event::event;
use crate::gateway::status::ObjectKey;
use crate::gateway::types::{
    ClientAccessPolicy, ClientIpPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ListenerSet, TcpRoute, TlsRoute,
    UdpRoute,
};

/// The most status PATCHes in flight at once. A few hide the round trip
/// (at 5 ms each, 4 in flight write 800 statuses a second) without a burst
/// of thousands of concurrent requests on the API server, which counts
/// them against realip's share of its priority-and-fairness seats (a
/// controller that floods it gets throttled, its watches included).
pub const MAX_IN_FLIGHT: usize = 4;

/// Wait before trying a failed write again, after its `failures`-th
/// failure in a row: 1 s doubling to 30 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

/// Whose status a body is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A Gateway API or realip.dev object: the body is its whole `status`.
    Object(ObjectKey),
    /// An Ingress (namespace, name): the body is its
    /// `status.loadBalancer.ingress`.
    Ingress(String, String),
}

/// Why a write failed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The object is gone (NotFound): not tried again.
    pub gone: bool,
    /// The object changed since the body was rendered (409 Conflict):
    /// not tried again (the watch renders it again over the change).
    pub conflict: bool,
    /// What the API server or the client said.
    pub message: String,
}

/// A body waiting to be sent; `seq` tells its place in [`Queue::ready`] /
/// [`Queue::retry`] apart from places it no longer holds.
#[derive(Debug)]
struct Waiting {
    body: Value,
    seq: u64,
    /// Held back until then by [`Queue::hand_at`] (not by a failure's
    /// backoff), also when it was handed while a write of its object flew:
    /// a body handed by [`Queue::hand`] goes at once.
    held: Option<Instant>,
}

/// A body being sent; `forgotten` when the watch forgot the object
/// meanwhile (its outcome is not kept).
#[derive(Debug)]
struct Flight {
    body: Value,
    forgotten: bool,
}

/// What is to be written, being written and was written, by object. Pure
/// bookkeeping (no I/O), driven by the writer's task and read by the watch
/// loop under one lock.
///
/// Invariant: an object is in at most one of `ready` / `retry` by a place
/// whose `seq` is its waiting body's; an object in flight has no such
/// place (what is handed meanwhile is placed when the flight ends).
#[derive(Debug, Default)]
pub struct Queue {
    waiting: foldhash::HashMap<Target, Waiting>,
    /// Objects to send now, oldest first (entries whose `seq` is no longer
    /// their object's are skipped).
    ready: VecDeque<(Target, u64)>,
    /// Objects to send again after a failure, by when (`seq` makes the key
    /// unique).
    retry: BTreeMap<(Instant, u64), Target>,
    flying: foldhash::HashMap<Target, Flight>,
    written: foldhash::HashMap<Target, Value>,
    failures: foldhash::HashMap<Target, u32>,
    /// Objects whose write found them gone, for the watch loop.
    gone: foldhash::HashSet<ObjectKey>,
    seq: u64,
}

impl Queue {
    /// Has `body` written as `target`'s status: replaces a body still
    /// waiting for it (keeping its place), else waits for its turn (after
    /// the write in flight for it, if any).
    pub fn hand(&mut self, target: Target, body: Value) {
        if let Some(w) = self.waiting.get_mut(&target) {
            w.body = body;
            if w.held.take().is_none() {
                return;
            }
            // Held back: it goes now (its old place is skipped).
            self.seq += 1;
            w.seq = self.seq;
            if !self.flying.contains_key(&target) {
                self.ready.push_back((target, self.seq));
            }
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        if !self.flying.contains_key(&target) {
            self.ready.push_back((target.clone(), seq));
        }
        self.waiting.insert(target, Waiting { body, seq, held: None });
    }

    /// As [`Queue::hand`], but a body not already waiting is held back
    /// until `at` (a body waiting keeps its turn); a later [`Queue::hand`]
    /// sends it at once.
    pub fn hand_at(&mut self, target: Target, body: Value, at: Instant) {
        if let Some(w) = self.waiting.get_mut(&target) {
            w.body = body;
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        if !self.flying.contains_key(&target) {
            self.retry.insert((at, seq), target.clone());
        }
        self.waiting.insert(target, Waiting { body, seq, held: Some(at) });
    }

    /// A body waiting for `target` is not sent (one in flight still is).
    pub fn cancel(&mut self, target: &Target) {
        self.waiting.remove(target);
    }

    /// The newest body known for `target`: waiting, else in flight, else
    /// last written.
    pub fn latest(&self, target: &Target) -> Option<&Value> {
        self.waiting
            .get(target)
            .map(|w| &w.body)
            .or_else(|| self.flying.get(target).filter(|f| !f.forgotten).map(|f| &f.body))
            .or_else(|| self.written.get(target))
    }

    /// The object is gone (or no longer known to be as written): nothing
    /// more is written for it, and what was is forgotten.
    pub fn forget(&mut self, target: &Target) {
        self.waiting.remove(target);
        self.written.remove(target);
        self.failures.remove(target);
        if let Some(f) = self.flying.get_mut(target) {
            f.forgotten = true;
        }
    }

    /// The next write to start (now in flight), if fewer than
    /// [`MAX_IN_FLIGHT`] are and one is due at `now`.
    pub fn take(&mut self, now: Instant) -> Option<(Target, Value)> {
        if self.flying.len() >= MAX_IN_FLIGHT {
            return None;
        }
        while let Some(due) = self.retry.first_entry().filter(|e| e.key().0 <= now) {
            let ((_, seq), target) = due.remove_entry();
            self.ready.push_back((target, seq));
        }
        while let Some((target, seq)) = self.ready.pop_front() {
            if self.waiting.get(&target).is_none_or(|w| w.seq != seq) {
                continue;
            }
            let Some(w) = self.waiting.remove(&target) else { continue };
            self.flying.insert(target.clone(), Flight { body: w.body.clone(), forgotten: false });
            return Some((target, w.body));
        }
        None
    }

    /// When the next write waiting for a retry is due.
    pub fn next_retry(&self) -> Option<Instant> {
        self.retry.first_key_value().map(|((at, _), _)| *at)
    }

    /// A write of `target` ended with `result` at `now`; the wait before
    /// it is tried again, when it will be.
    pub fn done(&mut self, target: &Target, result: Result<(), &Failure>, now: Instant) -> Option<Duration> {
        let flight = self.flying.remove(target)?;
        let mut again = None;
        match result {
            Ok(()) => {
                self.failures.remove(target);
                if !flight.forgotten {
                    self.written.insert(target.clone(), flight.body);
                }
            }
            Err(f) if f.conflict => {}
            Err(f) if f.gone => {
                self.failures.remove(target);
                self.written.remove(target);
                if let (Target::Object(k), false) = (target, flight.forgotten) {
                    self.gone.insert(k.clone());
                }
            }
            Err(_) => {
                if !flight.forgotten {
                    let n = self.failures.entry(target.clone()).or_insert(0);
                    *n = n.saturating_add(1);
                    let wait = backoff(*n);
                    if !self.waiting.contains_key(target) {
                        self.seq += 1;
                        self.waiting.insert(target.clone(), Waiting { body: flight.body, seq: self.seq, held: None });
                    }
                    if let Some(w) = self.waiting.get(target) {
                        self.retry.insert((now + wait, w.seq), target.clone());
                    }
                    again = Some(wait);
                }
            }
        }
        // What was handed while it flew goes next (unless a retry placed
        // it), or when it is held back to.
        if again.is_none() {
            if let Some(w) = self.waiting.get(target) {
                match w.held.filter(|at| *at > now) {
                    Some(at) => {
                        self.retry.insert((at, w.seq), target.clone());
                    }
                    None => self.ready.push_back((target.clone(), w.seq)),
                }
            }
        }
        again
    }

    /// The objects whose write found them gone since the last call.
    pub fn take_gone(&mut self) -> Vec<ObjectKey> {
        self.gone.drain().collect()
    }
}

/// Shared by the watch loop and the writer's task.
#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: tokio::sync::Notify,
}

/// The watch loop's handle on the status writer.
#[derive(Clone, Debug)]
pub struct Writer(Arc<Shared>);

impl Writer {
    /// Starts the writer's task with `client`; it runs until the returned
    /// handle is aborted (`AbortOnDrop` in the watch).
    pub fn start(client: kube::Client) -> (Writer, tokio::task::JoinHandle<()>) {
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(drive(client, Arc::clone(&shared)));
        (Writer(shared), task)
    }

    /// Runs `f` on the queue (one lock for many statuses), then wakes the
    /// writer.
    pub fn with<R>(&self, f: impl FnOnce(&mut Queue) -> R) -> R {
        let r = f(&mut lock(&self.0));
        self.0.wake.notify_one();
        r
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Queue> {
    shared.queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writer's task: starts what is due, up to [`MAX_IN_FLIGHT`], and
/// books each outcome.
async fn drive(client: kube::Client, shared: Arc<Shared>) {
    let mut flying = FuturesUnordered::new();
    loop {
        let next_retry = {
            let mut q = lock(&shared);
            while let Some((target, body)) = q.take(Instant::now()) {
                let client = client.clone();
                flying.push(async move {
                    let r = write(&client, &target, &body).await;
                    (target, r)
                });
            }
            q.next_retry()
        };
        let retry_at = tokio::time::Instant::from_std(next_retry.unwrap_or_else(Instant::now));
        tokio::select! {
            Some((target, result)) = flying.next(), if !flying.is_empty() => {
                match result {
                    Ok(()) => {
                        lock(&shared).done(&target, Ok(()), Instant::now());
                    }
                    Err(f) => {
                        let again = lock(&shared).done(&target, Err(&f), Instant::now());
                        // A conflict is no failure: the object changed, and
                        // its status is rendered again over the change.
                        if !f.conflict {
                            log_failure(&target, &f, again);
                        }
                    }
                }
            }
            () = shared.wake.notified() => {}
            () = tokio::time::sleep_until(retry_at), if next_retry.is_some() => {}
        }
    }
}

fn log_failure(target: &Target, f: &Failure, again: Option<Duration>) {
    let retry = again.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut e = match target {
        Target::Object(k) => json!({"event": "gateway_status_failed", "kind": k.kind, "namespace": k.namespace,
            "name": k.name, "error": f.message}),
        Target::Ingress(ns, name) => {
            json!({"event": "ingress_status_failed", "ingress": format!("{ns}/{name}"), "error": f.message})
        }
    };
    if let Some(ms) = retry {
        e["retry_in_ms"] = json!(ms);
    }
    event(&e);
}

/// One merge PATCH of `target`'s status.
async fn write(client: &kube::Client, target: &Target, body: &Value) -> Result<(), Failure> {
    let failed = |e: kube::Error| Failure {
        gone: matches!(&e, kube::Error::Api(s) if s.is_not_found()),
        conflict: matches!(&e, kube::Error::Api(s) if s.code == 409),
        message: e.to_string(),
    };
    let pp = PatchParams::default();
    let k = match target {
        Target::Ingress(ns, name) => {
            let patch = json!({"status": {"loadBalancer": {"ingress": body}}});
            let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
            return api.patch_status(name, &pp, &Patch::Merge(&patch)).await.map(|_| ()).map_err(failed);
        }
        Target::Object(k) => k,
    };
    let p = Patch::Merge(body);
    let ns = k.namespace.clone().unwrap_or_default();
    let name = k.name.as_str();
    let c = || client.clone();
    let r = match k.kind {
        "GatewayClass" => Api::<GatewayClass>::all(c()).patch_status(name, &pp, &p).await.map(|_| ()),
        "Gateway" => Api::<Gateway>::namespaced(c(), &ns).patch_status(name, &pp, &p).await.map(|_| ()),
        "ListenerSet" => Api::<ListenerSet>::namespaced(c(), &ns).patch_status(name, &pp, &p).await.map(|_| ()),
        "HTTPRoute" => Api::<HttpRoute>::namespaced(c(), &ns).patch_status(name, &pp, &p).await.map(|_| ()),
        "ClientIPPolicy" => Api::<ClientIpPolicy>::namespaced(c(), &ns).patch_status(name, &pp, &p).await.map(|_| ()),
        "ClientAccessPolicy" => {
            Api::<ClientAccessPolicy>::namespaced(c(), &ns).patch_status(name, &pp, &p).await.map(|_| ())
        }
        "GRPCRoute" => Api::<GrpcRoute>::namespaced(c(), &ns).patch_status(name, &pp, &p).await.map(|_| ()),
        "TLSRoute" => Api::<TlsRoute>::namespaced(c(), &ns).patch_status(name, &pp, &p).await.map(|_| ()),
        "TCPRoute" => Api::<TcpRoute>::namespaced(c(), &ns).patch_status(name, &pp, &p).await.map(|_| ()),
        "UDPRoute" => Api::<UdpRoute>::namespaced(c(), &ns).patch_status(name, &pp, &p).await.map(|_| ()),
        other => return Err(Failure { gone: true, conflict: false, message: format!("no status for kind {other}") }),
    };
    r.map_err(failed)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::{backoff, Failure, Queue, Target, MAX_IN_FLIGHT};
    use crate::gateway::status::ObjectKey;

    fn route(name: &str) -> Target {
        Target::Object(ObjectKey { kind: "HTTPRoute", namespace: Some("web".into()), name: name.into() })
    }

    fn failed() -> Failure {
        Failure { gone: false, conflict: false, message: "503".into() }
    }

    /// Latest wins: bodies handed while one flies replace each other, the
    /// newest is sent after the flight, and an older one is never sent
    /// after it.
    #[test]
    fn a_newer_body_replaces_a_waiting_one_and_goes_after_the_flight() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.hand(route("r"), json!(1));
        assert_eq!(q.take(now), Some((route("r"), json!(1))));
        q.hand(route("r"), json!(2));
        q.hand(route("r"), json!(3));
        assert_eq!(q.latest(&route("r")), Some(&json!(3)));
        assert_eq!(q.take(now), None, "one flight per object");
        assert_eq!(q.done(&route("r"), Ok(()), now), None);
        assert_eq!(q.take(now), Some((route("r"), json!(3))), "2 was replaced, never sent");
        assert_eq!(q.take(now), None);
        q.done(&route("r"), Ok(()), now);
        assert_eq!(q.latest(&route("r")), Some(&json!(3)));
    }

    /// A failure is tried again after its backoff (others go meanwhile); a
    /// newer body handed meanwhile is what is tried; a success starts the
    /// backoff over.
    #[test]
    fn a_failed_write_is_tried_again_after_a_backoff() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.hand(route("a"), json!("a1"));
        assert!(q.take(now).is_some());
        assert_eq!(q.done(&route("a"), Err(&failed()), now), Some(Duration::from_secs(1)));
        q.hand(route("b"), json!("b1"));
        q.hand(route("a"), json!("a2"));
        assert_eq!(q.take(now), Some((route("b"), json!("b1"))), "a waits for its backoff");
        assert_eq!(q.take(now), None);
        assert_eq!(q.next_retry(), Some(now + Duration::from_secs(1)));
        let later = now + Duration::from_secs(1);
        assert_eq!(q.take(later), Some((route("a"), json!("a2"))));
        assert_eq!(q.done(&route("a"), Err(&failed()), later), Some(Duration::from_secs(2)));
        let later = later + Duration::from_secs(2);
        assert_eq!(q.take(later), Some((route("a"), json!("a2"))));
        q.done(&route("a"), Ok(()), later);
        q.hand(route("a"), json!("a3"));
        assert!(q.take(later).is_some());
        assert_eq!(q.done(&route("a"), Err(&failed()), later), Some(Duration::from_secs(1)), "started over");
        assert_eq!((1..=8).map(backoff).map(|d| d.as_secs()).collect::<Vec<_>>(), [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    /// A conflict (the object changed since the body was rendered) is not
    /// tried again and leaves nothing written; a body handed meanwhile
    /// goes next.
    #[test]
    fn a_conflict_is_not_tried_again() {
        let now = Instant::now();
        let conflict = Failure { gone: false, conflict: true, message: "409".into() };
        let mut q = Queue::default();
        q.hand(route("c"), json!(1));
        assert!(q.take(now).is_some());
        assert_eq!(q.done(&route("c"), Err(&conflict), now), None);
        assert_eq!((q.take(now), q.next_retry(), q.latest(&route("c"))), (None, None, None));
        assert!(q.take_gone().is_empty());
        q.hand(route("c"), json!(2));
        assert!(q.take(now).is_some());
        q.hand(route("c"), json!(3));
        q.done(&route("c"), Err(&conflict), now);
        assert_eq!(q.take(now), Some((route("c"), json!(3))));
    }

    /// A body held back by `hand_at` waits for its time; one handed by
    /// `hand` meanwhile goes at once.
    #[test]
    fn a_held_body_goes_at_once_when_handed() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.hand_at(route("h"), json!(1), now + Duration::from_secs(5));
        assert_eq!(q.take(now), None);
        assert_eq!(q.take(now + Duration::from_secs(5)), Some((route("h"), json!(1))));
        q.done(&route("h"), Ok(()), now);
        q.hand_at(route("h"), json!(2), now + Duration::from_secs(5));
        q.hand(route("h"), json!(3));
        assert_eq!(q.take(now), Some((route("h"), json!(3))));
        assert_eq!(q.take(now + Duration::from_secs(9)), None, "its held place is gone");
        // Held back while a write of it flies: it still waits for its time
        // (review 13f HIGH-2: it went right after the flight).
        q.done(&route("h"), Ok(()), now);
        q.hand(route("h"), json!(4));
        assert!(q.take(now).is_some());
        q.hand_at(route("h"), json!(5), now + Duration::from_secs(5));
        q.done(&route("h"), Ok(()), now);
        assert_eq!(q.take(now), None);
        assert_eq!(q.take(now + Duration::from_secs(5)), Some((route("h"), json!(5))));
    }

    /// A gone object is reported once and not tried again; a forgotten one
    /// keeps nothing, also when its write was in flight.
    #[test]
    fn gone_and_forgotten_objects_are_dropped() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.hand(route("gone"), json!(1));
        assert!(q.take(now).is_some());
        assert_eq!(
            q.done(&route("gone"), Err(&Failure { gone: true, conflict: false, message: "404".into() }), now),
            None
        );
        assert_eq!(q.take(now), None);
        let ObjectKey { name, .. } = q.take_gone().pop().unwrap();
        assert_eq!(name, "gone");
        assert!(q.take_gone().is_empty());

        q.hand(route("f"), json!(1));
        assert!(q.take(now).is_some());
        q.forget(&route("f"));
        assert_eq!(q.latest(&route("f")), None);
        // Re-created meanwhile: its new body goes after the old flight.
        q.hand(route("f"), json!(2));
        q.done(&route("f"), Ok(()), now);
        assert_eq!(q.take(now), Some((route("f"), json!(2))));
        q.forget(&route("f"));
        q.done(&route("f"), Err(&failed()), now);
        assert_eq!(q.next_retry(), None, "a forgotten object is not tried again");
        assert_eq!(q.latest(&route("f")), None);
    }

    /// At most [`MAX_IN_FLIGHT`] writes at once, the oldest handed first.
    #[test]
    fn writes_in_flight_are_bounded() {
        let now = Instant::now();
        let mut q = Queue::default();
        for i in 0..10 {
            q.hand(route(&i.to_string()), json!(i));
        }
        let started: Vec<_> = std::iter::from_fn(|| q.take(now)).collect();
        assert_eq!(started.len(), MAX_IN_FLIGHT);
        assert_eq!(started[0], (route("0"), json!(0)));
        q.done(&route("0"), Ok(()), now);
        assert_eq!(q.take(now), Some((route(&MAX_IN_FLIGHT.to_string()), json!(MAX_IN_FLIGHT))));
    }
}
