//! A fake Kubernetes API server that speaks the real JSON for list, watch
//! (chunked streams of `{"type", "object"}` events) and `PATCH …/status`
//! (JSON merge patch, stored, MODIFIED sent to watches; a
//! `metadata.resourceVersion` in the patch is a precondition: 409 Conflict
//! when the object changed since, as a real server answers) of Ingresses,
//! Services, EndpointSlices, Secrets, Namespaces, the Gateway API kinds
//! (GatewayClass, Gateway, ListenerSet, HTTPRoute, ReferenceGrant),
//! realip's ClientIPPolicy / ClientAccessPolicy, and (listed by `realip
//! migrate --live`) IngressClasses, ConfigMaps, Deployments and DaemonSets, so kube-rs reflectors run
//! unmodified against it. [`FakeApi::hide_group`] makes a group's kinds
//! answer 404, as when their CRDs are not installed. No real API server can run here:
//! the lab's `kubernetes` scenario and the proxy's Kubernetes-mode tests
//! use this one as the source of endpoints. Objects are changed with
//! [`FakeApi::apply`] / [`FakeApi::delete`], which bump the
//! resourceVersion (and `metadata.generation` when anything but metadata
//! and status changed, as a real server does) and notify open watches.
//!
//! [`FakeApi::set_status_patch_delay`] slows every status PATCH down, as
//! a loaded API server.
//!
//! Bounded: it accepts at most 500 connections and a watch lasts at most
//! 60 s (clients re-watch, as they do against a real server).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// Collection path (cluster-wide list/watch) of each kind served.
const KINDS: [(&str, &str); 19] = [
    ("Ingress", "/apis/networking.k8s.io/v1/ingresses"),
    ("IngressClass", "/apis/networking.k8s.io/v1/ingressclasses"),
    ("ConfigMap", "/api/v1/configmaps"),
    ("Deployment", "/apis/apps/v1/deployments"),
    ("DaemonSet", "/apis/apps/v1/daemonsets"),
    ("Secret", "/api/v1/secrets"),
    ("Service", "/api/v1/services"),
    ("EndpointSlice", "/apis/discovery.k8s.io/v1/endpointslices"),
    ("Namespace", "/api/v1/namespaces"),
    ("GatewayClass", "/apis/gateway.networking.k8s.io/v1/gatewayclasses"),
    ("Gateway", "/apis/gateway.networking.k8s.io/v1/gateways"),
    ("ListenerSet", "/apis/gateway.networking.k8s.io/v1/listenersets"),
    ("HTTPRoute", "/apis/gateway.networking.k8s.io/v1/httproutes"),
    // Route kinds realip does not serve (it writes their status); no
    // UDPRoute: an absent CRD.
    ("GRPCRoute", "/apis/gateway.networking.k8s.io/v1/grpcroutes"),
    ("TLSRoute", "/apis/gateway.networking.k8s.io/v1/tlsroutes"),
    ("TCPRoute", "/apis/gateway.networking.k8s.io/v1/tcproutes"),
    ("ReferenceGrant", "/apis/gateway.networking.k8s.io/v1beta1/referencegrants"),
    ("ClientIPPolicy", "/apis/realip.dev/v1alpha1/clientippolicies"),
    ("ClientAccessPolicy", "/apis/realip.dev/v1alpha1/clientaccesspolicies"),
];

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// The kind whose collection path ends with `/plural`, and whether the
/// path's group/version prefix matches.
fn kind_of(prefix: &str, plural: &str) -> Option<&'static str> {
    KINDS.iter().find(|(_, p)| p.starts_with(prefix) && p.ends_with(&format!("/{plural}"))).map(|(k, _)| *k)
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: BTreeMap<(String, String, String), Value>, // (kind, ns, name)
    watchers: Vec<(String, mpsc::Sender<String>)>,
    patches: Vec<(String, Value)>,
    /// How long each `PATCH …/status` takes (after it is recorded in
    /// `patches`, before it is applied and answered).
    status_patch_delay: std::time::Duration,
    hidden: Vec<String>,
    /// Path prefixes answered 403 (no RBAC), until allowed again.
    forbidden: Vec<String>,
}

/// The server. Its threads end with the process or at their bounds.
#[derive(Clone)]
pub struct FakeApi {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

fn key(o: &Value) -> (String, String, String) {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    (s("/kind"), s("/metadata/namespace"), s("/metadata/name"))
}

impl std::fmt::Debug for FakeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApi").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// An object without `metadata` and `status`: what a change of bumps
/// `metadata.generation`.
fn spec_of(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    o
}

impl FakeApi {
    /// Serves on a new loopback port.
    pub fn start() -> std::io::Result<FakeApi> {
        FakeApi::start_on(TcpListener::bind("127.0.0.1:0")?)
    }

    /// Serves on `l` (which may belong to another network namespace).
    pub fn start_on(l: TcpListener) -> std::io::Result<FakeApi> {
        let api = FakeApi { addr: l.local_addr()?, state: Arc::default() };
        let me = api.clone();
        std::thread::spawn(move || {
            for s in l.incoming().take(500).flatten() {
                let me = me.clone();
                std::thread::spawn(move || me.serve(s));
            }
        });
        Ok(api)
    }

    /// Adds or replaces an object; open watches get ADDED / MODIFIED. An
    /// object given without a `status` keeps the one stored, as an update
    /// of the main resource does on a real server for kinds with a status
    /// subresource; one given with a `status` sets it (another writer).
    pub fn apply(&self, mut o: Value) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if o.get("status").is_none() {
            if let Some(status) = st.objects.get(&key(&o)).and_then(|old| old.get("status")).cloned() {
                o["status"] = status;
            }
        }
        st.rv += 1;
        o["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        let k = key(&o);
        // metadata.uid as a real server keeps it: new for every creation
        // (unique across namespaces and kinds, never reused after a
        // delete), kept across updates.
        let uid = match st.objects.get(&k).map(|old| old["metadata"]["uid"].clone()) {
            Some(Value::String(u)) => u,
            _ => format!("00000000-0000-4000-8000-{:012x}", st.rv),
        };
        o["metadata"]["uid"] = json!(uid);
        // creationTimestamp as a real server keeps it: set once, from a
        // clock that advances one second per change (so "older" is defined).
        let created = st.objects.get(&k).map(|old| old["metadata"]["creationTimestamp"].clone());
        match created {
            Some(c) if !c.is_null() => o["metadata"]["creationTimestamp"] = c,
            _ if o["metadata"]["creationTimestamp"].is_null() => {
                let t = st.rv;
                o["metadata"]["creationTimestamp"] = json!(format!(
                    "2026-01-{:02}T{:02}:{:02}:{:02}Z",
                    1 + t / 86_400 % 28,
                    t / 3600 % 24,
                    t / 60 % 60,
                    t % 60
                ));
            }
            _ => {}
        }
        // metadata.generation as a real server keeps it: 1 at creation, +1
        // on every change of anything but metadata and status (the
        // controller tells its own status updates apart by it).
        let generation = match st.objects.get(&k) {
            Some(old) if spec_of(old) == spec_of(&o) => old["metadata"]["generation"].as_i64().unwrap_or(1),
            Some(old) => old["metadata"]["generation"].as_i64().unwrap_or(1) + 1,
            None => 1,
        };
        o["metadata"]["generation"] = json!(generation);
        let kind = if st.objects.insert(k.clone(), o.clone()).is_some() { "MODIFIED" } else { "ADDED" };
        Self::notify(&mut st, &k.0, kind, &o);
    }

    /// Deletes an object; open watches get DELETED.
    pub fn delete(&self, kind: &str, ns: &str, name: &str) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        st.rv += 1;
        if let Some(mut o) = st.objects.remove(&(kind.into(), ns.into(), name.into())) {
            o["metadata"]["resourceVersion"] = json!(st.rv.to_string());
            Self::notify(&mut st, kind, "DELETED", &o);
        }
    }

    /// The first port (`targetPort`) of a Service.
    pub fn service_port(&self, ns: &str, name: &str) -> u16 {
        let st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        st.objects
            .get(&("Service".to_owned(), ns.to_owned(), name.to_owned()))
            .and_then(|svc| svc["spec"]["ports"][0]["targetPort"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0)
    }

    /// Answer 404 for every kind of `group` (e.g. `gateway.networking.k8s.io`),
    /// as an API server without those CRDs does.
    pub fn hide_group(&self, group: &str) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        st.hidden.push(format!("/apis/{group}/"));
    }

    /// Serve `group` again after [`FakeApi::hide_group`], as an API server
    /// does once its CRDs are installed.
    pub fn show_group(&self, group: &str) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let prefix = format!("/apis/{group}/");
        st.hidden.retain(|p| *p != prefix);
    }

    /// Answer 403 Forbidden for every kind of `group`, as an API server
    /// does when the service account's RBAC does not grant them; `false`
    /// grants them again.
    pub fn forbid_group(&self, group: &str, forbid: bool) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let prefix = format!("/apis/{group}/");
        st.forbidden.retain(|p| *p != prefix);
        if forbid {
            st.forbidden.push(prefix);
        }
    }

    /// The stored object, if any.
    pub fn get(&self, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        st.objects.get(&(kind.to_owned(), ns.to_owned(), name.to_owned())).cloned()
    }

    /// Every `PATCH …/status` takes `delay` from now on (recorded in
    /// [`FakeApi::patches`] on arrival, applied and answered after the
    /// delay), as a slow or loaded API server; requests on other
    /// connections are served meanwhile.
    pub fn set_status_patch_delay(&self, delay: std::time::Duration) {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).status_patch_delay = delay;
    }

    /// `PATCH …/status` bodies received, with their paths, in the order
    /// they arrived; one refused with 409 (it wrote nothing) is taken out
    /// when it is refused.
    pub fn patches(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).patches.clone()
    }

    /// A kubeconfig pointing at the server, written into `dir`.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
        let p = dir.join("kubeconfig");
        std::fs::write(
            &p,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{token: fake-token}}\n",
                self.addr
            ),
        )?;
        Ok(p)
    }

    fn notify(st: &mut State, kind: &str, ty: &str, o: &Value) {
        let line = json!({"type": ty, "object": o}).to_string();
        st.watchers.retain(|(k, tx)| k != kind || tx.send(line.clone()).is_ok());
    }

    #[allow(clippy::too_many_lines)] // one HTTP/1.1 loop: read, route, answer
    fn serve(&self, stream: TcpStream) {
        let Ok(clone) = stream.try_clone() else { return };
        let mut reader = BufReader::new(clone);
        let mut out = stream;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let mut len = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let mut parts = line.split(' ');
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let ok = |out: &mut TcpStream, status: &str, v: &Value| {
                let b = v.to_string();
                let r = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}",
                    b.len()
                );
                out.write_all(r.as_bytes()).is_ok()
            };
            let (hidden, forbidden) = {
                let st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                (
                    st.hidden.iter().any(|h| path.starts_with(h.as_str())),
                    st.forbidden.iter().any(|h| path.starts_with(h.as_str())),
                )
            };
            if forbidden {
                let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
                    "code": 403, "message": "forbidden by the fake API server (forbid_group)"});
                if !ok(&mut out, "403 Forbidden", &body) {
                    return;
                }
                continue;
            }
            let kind = KINDS.iter().find(|(_, p)| *p == path && !hidden).map(|(k, _)| *k);
            if method == "GET" && kind.is_some() && query.split('&').any(|q| q == "watch=true" || q == "watch=1") {
                self.stream_watch(out, kind.unwrap_or_default());
                return;
            }
            let sent = if method == "GET" && kind.is_some() {
                let st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let k = kind.unwrap_or_default();
                let items: Vec<&Value> = st.objects.iter().filter(|((kk, _, _), _)| kk == k).map(|(_, v)| v).collect();
                ok(
                    &mut out,
                    "200 OK",
                    &json!({"apiVersion": "v1", "kind": format!("{k}List"), "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
                )
            } else if method == "PATCH" && path.ends_with("/status") && !hidden {
                // /api(s)/GROUP/VERSION[/namespaces/NS]/PLURAL/NAME/status
                let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let seg: Vec<&str> = path.trim_end_matches("/status").split('/').collect();
                let (ns, name, plural, prefix) = match seg.iter().position(|s| *s == "namespaces") {
                    Some(i) if seg.len() == i + 4 => (seg[i + 1], seg[i + 3], seg[i + 2], seg[..i].join("/")),
                    _ if seg.len() >= 3 => {
                        let n = seg.len();
                        ("", seg[n - 1], seg[n - 2], seg[..n - 2].join("/"))
                    }
                    _ => ("", "", "", String::new()),
                };
                let delay = {
                    let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    st.patches.push((path.to_owned(), patch.clone()));
                    st.status_patch_delay
                };
                std::thread::sleep(delay);
                let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let kind = kind_of(&prefix, plural).unwrap_or_default();
                let k = (kind.to_owned(), ns.to_owned(), name.to_owned());
                // A resourceVersion in the patch is a precondition, as the
                // API server takes it: 409 when the object changed since.
                let stale = |o: &Value| {
                    patch.pointer("/metadata/resourceVersion").is_some_and(|rv| *rv != o["metadata"]["resourceVersion"])
                };
                let updated = st.objects.get(&k).cloned().map(|mut o| {
                    if stale(&o) {
                        return Err(());
                    }
                    if let Some(status) = patch.get("status") {
                        merge(&mut o["status"], status);
                    }
                    Ok(o)
                });
                let reply = match updated {
                    Some(Err(())) => {
                        // Refused: it wrote nothing, so it is not counted.
                        if let Some(i) = st.patches.iter().rposition(|(p, b)| p == path && *b == patch) {
                            st.patches.remove(i);
                        }
                        Some(Err(()))
                    }
                    Some(Ok(mut o)) => {
                        st.rv += 1;
                        o["metadata"]["resourceVersion"] = json!(st.rv.to_string());
                        st.objects.insert(k, o.clone());
                        Self::notify(&mut st, kind, "MODIFIED", &o);
                        Some(Ok(o))
                    }
                    None => None,
                };
                drop(st);
                match reply {
                    Some(Ok(o)) => ok(&mut out, "200 OK", &o),
                    Some(Err(())) => ok(
                        &mut out,
                        "409 Conflict",
                        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409,
                            "message": format!("Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again")}),
                    ),
                    None => ok(
                        &mut out,
                        "404 Not Found",
                        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                    ),
                }
            } else {
                ok(
                    &mut out,
                    "404 Not Found",
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                )
            };
            if !sent {
                return;
            }
        }
    }

    fn stream_watch(&self, mut out: TcpStream, kind: &str) {
        let (tx, rx) = mpsc::channel();
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).watchers.push((kind.to_owned(), tx));
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            .is_err()
        {
            return;
        }
        // Bounded: a watch lasts at most 60 s, then the client re-watches.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            let chunk = format!("{line}\n");
            if out.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).is_err() {
                return;
            }
        }
        let _ = out.write_all(b"0\r\n\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::FakeApi;
    use serde_json::json;

    /// Review 14 L1: `metadata.uid` as a real API server gives it: one per
    /// creation, so objects of one name in two namespaces differ, an update
    /// keeps it and a delete then re-create gets a new one.
    #[test]
    fn every_creation_gets_its_own_uid() {
        let api = FakeApi::start().unwrap();
        let route = |ns: &str, host: &str| {
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": "site", "namespace": ns}, "spec": {"hostnames": [host]}})
        };
        let uid = |ns: &str| api.get("HTTPRoute", ns, "site").unwrap()["metadata"]["uid"].as_str().unwrap().to_owned();
        api.apply(route("web", "a.example.com"));
        api.apply(route("evil", "a.example.com"));
        let (web, evil) = (uid("web"), uid("evil"));
        assert_ne!(web, evil, "same name, another namespace");
        api.apply(route("web", "b.example.com"));
        assert_eq!(uid("web"), web, "kept across an update");
        api.delete("HTTPRoute", "web", "site");
        api.apply(route("web", "b.example.com"));
        assert!(![web.as_str(), evil.as_str()].contains(&uid("web").as_str()), "a re-created object is a new one");
    }
}
