//! The watcher's incremental path against the full computation: a
//! sequence of changes (EndpointSlices added, updated, deleted, moved to
//! another Service; HTTPRoutes, Services and policies added or edited),
//! each one applied the way the watcher applies it — only the endpoints
//! of the touched Services refreshed ([`SliceChanges`],
//! [`refresh_endpoints`]) when the batch is EndpointSlices only, all
//! recomputed otherwise — and the result compared with a full
//! recomputation from the same objects after every step.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;

use super::SliceChanges;
use crate::gateway::objects::Objects;
use crate::gateway::translate::{translate, Translation};
use crate::ingress::{desired, refresh_endpoints, Desired};

const WORLD: &str = r"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: realip}
spec: {controllerName: realip.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  gatewayClassName: realip
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: web}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: canary, namespace: web}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: multi, namespace: web}
spec: {ports: [{name: http, port: 80, targetPort: 8080}, {name: https, port: 443, targetPort: 8443}]}
---
apiVersion: v1
kind: Service
metadata: {name: dual, namespace: web}
spec: {ports: [{name: dns-tcp, port: 53, protocol: TCP}, {name: dns-udp, port: 53, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata: {name: lonely, namespace: web}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r-app, namespace: web, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  hostnames: [app.example.com]
  rules: [{backendRefs: [{name: app, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r-split, namespace: web, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  hostnames: [split.example.com]
  rules: [{backendRefs: [{name: app, port: 80, weight: 1}, {name: canary, port: 80, weight: 3}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r-multi, namespace: web, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  hostnames: [multi.example.com]
  rules: [{backendRefs: [{name: multi, port: 443}]}]
";

/// Slice `name` of `service` in `web`: one endpoint per address, on the
/// ports given as (name, port).
fn slice(name: &str, service: &str, ports: &[(&str, i32)], addresses: &[&str]) -> EndpointSlice {
    let ports: Vec<_> = ports.iter().map(|(n, p)| json!({"name": n, "port": p})).collect();
    let endpoints: Vec<_> =
        addresses.iter().map(|a| json!({"addresses": [a], "conditions": {"ready": true}})).collect();
    serde_json::from_value(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "web", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "ports": ports, "endpoints": endpoints}))
    .unwrap()
}

fn ingress(name: &str, service: &str, port: &serde_json::Value, https: bool) -> Ingress {
    let annotations = if https { json!({"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"}) } else { json!({}) };
    serde_json::from_value(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "web", "annotations": annotations},
        "spec": {"ingressClassName": "realip", "rules": [{"host": format!("{name}.example.com"),
            "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": service, "port": port}}}]}}]}}))
    .unwrap()
}

/// The objects, the Ingresses, what the watcher holds (the last computed
/// sets) and the events since the last computation.
struct World {
    o: Objects,
    ingresses: Vec<Ingress>,
    held: (Desired, Translation),
    changes: SliceChanges,
}

fn full(o: &Objects, ingresses: &[Ingress]) -> (Desired, Translation) {
    let no_secrets: &[Secret] = &[];
    (desired("realip", None, ingresses, &o.services, &o.slices, no_secrets), translate(&o.inputs("realip", &[])))
}

impl World {
    fn slice_name(e: &EndpointSlice) -> (String, String, Option<String>) {
        let svc = e.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")).cloned();
        (e.metadata.namespace.clone().unwrap(), e.metadata.name.clone().unwrap(), svc)
    }

    /// An EndpointSlice added or replaced (an `Apply` event).
    fn apply_slice(&mut self, e: EndpointSlice) {
        let (ns, name, svc) = World::slice_name(&e);
        self.o.slices.retain(|x| x.metadata.name.as_deref() != Some(&name));
        self.o.slices.push(e);
        self.changes.slice(ns, name, svc, Some(false));
    }

    /// An EndpointSlice deleted (a `Delete` event with its last state).
    fn delete_slice(&mut self, name: &str) {
        let i = self.o.slices.iter().position(|x| x.metadata.name.as_deref() == Some(name)).unwrap();
        let (ns, name, svc) = World::slice_name(&self.o.slices.remove(i));
        self.changes.slice(ns, name, svc, Some(true));
    }

    /// Any other object changed.
    fn other(&mut self, yaml: &str) {
        let mut o = Objects::default();
        o.add_yaml(yaml).unwrap();
        macro_rules! replace {
            ($($field:ident),*) => {$(
                for x in o.$field {
                    self.o.$field.retain(|y| {
                        (&y.metadata.namespace, &y.metadata.name) != (&x.metadata.namespace, &x.metadata.name)
                    });
                    self.o.$field.push(x);
                }
            )*};
        }
        replace!(routes, services, access_policies);
        self.changes.other();
    }

    /// What the watcher does with the batch: "refresh" or "full".
    fn compute(&mut self) -> &'static str {
        if let Some(touched) = self.changes.take() {
            let (d, t) = &mut self.held;
            let (mut ib, mut gb) = (d.backends.clone(), t.routes.backends.clone());
            let ok = refresh_endpoints(&mut ib, &touched, &self.o.services, &self.o.slices).is_some()
                && refresh_endpoints(&mut gb, &touched, &self.o.services, &self.o.slices).is_some();
            if ok {
                d.backends = ib;
                t.routes.backends = gb;
                return "refresh";
            }
        }
        self.held = full(&self.o, &self.ingresses);
        "full"
    }
}

#[test]
fn a_sequence_of_changes_gives_what_a_full_recomputation_gives() {
    let mut o = Objects::default();
    o.add_yaml(WORLD).unwrap();
    o.slices = vec![
        slice("app-1", "app", &[("http", 8080)], &["192.0.2.1", "192.0.2.2"]),
        slice("app-2", "app", &[("http", 8080)], &["192.0.2.3"]),
        slice("canary-1", "canary", &[("http", 8080)], &["192.0.2.20"]),
        slice("multi-1", "multi", &[("http", 8080), ("https", 8443)], &["192.0.2.30"]),
        slice("dual-1", "dual", &[("dns-tcp", 5353), ("dns-udp", 5354)], &["192.0.2.40"]),
    ];
    let ingresses = vec![
        ingress("i-app", "app", &json!({"number": 80}), false),
        ingress("i-multi", "multi", &json!({"name": "https"}), true),
        ingress("i-dual", "dual", &json!({"name": "dns-udp"}), false),
    ];
    let held = full(&o, &ingresses);
    // The world is what the steps below assume.
    assert_eq!(held.1.routes.routes.len(), 3, "{:#?}", held.1.routes.routes);
    assert_eq!(held.0.routes.len(), 3, "{:?}", held.0.problems);
    // The initial list, as the watcher sees it: it learns each slice's
    // Service (and computes everything).
    let mut changes = SliceChanges::default();
    for e in &o.slices {
        let (ns, name, svc) = World::slice_name(e);
        changes.slice(ns, name, svc, None);
    }
    assert_eq!(changes.take(), None);
    let mut w = World { o, ingresses, held, changes };
    let mut ran = Vec::new();
    let mut step = |w: &mut World, what: &str| {
        ran.push((what.to_owned(), w.compute()));
        let want = full(&w.o, &w.ingresses);
        assert_eq!(w.held.0, want.0, "Ingress side after: {what}");
        assert_eq!(w.held.1, want.1, "Gateway side after: {what}");
    };
    w.apply_slice(slice("app-1", "app", &[("http", 8080)], &["192.0.2.1", "192.0.2.9"]));
    step(&mut w, "slice updated");
    w.apply_slice(slice("app-3", "app", &[("http", 8080)], &["192.0.2.4"]));
    step(&mut w, "slice added");
    w.delete_slice("app-2");
    step(&mut w, "slice deleted");
    w.apply_slice(slice("canary-1", "app", &[("http", 8080)], &["192.0.2.20"]));
    step(&mut w, "slice moved to another Service");
    w.apply_slice(slice("multi-1", "multi", &[("http", 8080), ("https", 8443)], &["192.0.2.31"]));
    w.apply_slice(slice("canary-2", "canary", &[("http", 8080)], &["192.0.2.21"]));
    step(&mut w, "two slices in one batch");
    w.apply_slice(slice("lonely-1", "lonely", &[("http", 80)], &["192.0.2.50"]));
    step(&mut w, "slice of a Service nothing routes to");
    w.apply_slice(slice("dual-1", "dual", &[("dns-tcp", 5353), ("dns-udp", 5355)], &["192.0.2.40"]));
    step(&mut w, "slice of a Service with a port number twice");
    w.other(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {name: r-new, namespace: web, creationTimestamp: '2026-01-02T00:00:00Z'}\n\
         spec: {parentRefs: [{name: gw, namespace: infra}], hostnames: [new.example.com],\n  \
         rules: [{backendRefs: [{name: lonely, port: 80}]}]}\n",
    );
    step(&mut w, "route added");
    w.apply_slice(slice("lonely-1", "lonely", &[("http", 80)], &["192.0.2.51"]));
    step(&mut w, "slice of the new route's Service");
    w.other(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {name: r-split, namespace: web, creationTimestamp: '2026-01-01T00:00:00Z'}\n\
         spec: {parentRefs: [{name: gw, namespace: infra}], hostnames: [split.example.com],\n  \
         rules: [{backendRefs: [{name: app, port: 80, weight: 5}, {name: canary, port: 80, weight: 5}]}]}\n",
    );
    step(&mut w, "route updated");
    w.other(
        "apiVersion: v1\nkind: Service\nmetadata: {name: canary, namespace: web}\n\
         spec: {ports: [{name: http, port: 8000, targetPort: 8080}]}\n",
    );
    step(&mut w, "Service port changed (the route's backend is gone)");
    w.other(
        "apiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: only-docs, namespace: web}\n\
         spec: {targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r-app}],\n  \
         allow: [198.51.100.0/24]}\n",
    );
    step(&mut w, "policy added");
    w.apply_slice(slice("app-1", "app", &[("http", 8080)], &[]));
    step(&mut w, "slice emptied");
    let paths: Vec<&str> = ran.iter().map(|(_, p)| *p).collect();
    assert_eq!(
        paths,
        [
            "refresh", "refresh", "refresh", "refresh", "refresh", "refresh", "full", "full", "refresh", "full",
            "full", "full", "refresh"
        ],
        "{ran:?}"
    );
}

#[test]
fn a_relist_or_another_kind_in_the_batch_means_a_full_computation() {
    let mut c = SliceChanges::default();
    c.slice("web".into(), "a-1".into(), Some("a".into()), None);
    assert_eq!(c.take(), None, "objects of a list");
    c.slice("web".into(), "a-1".into(), Some("b".into()), Some(false));
    let want: crate::ingress::Touched = [("web".to_owned(), "a".to_owned()), ("web".to_owned(), "b".to_owned())].into();
    assert_eq!(c.take(), Some(want), "moved: both Services");
    c.slice("web".into(), "a-1".into(), Some("b".into()), Some(true));
    c.other();
    assert_eq!(c.take(), None);
    assert_eq!(c.take(), Some(crate::ingress::Touched::new()), "starts over");
}

/// [`super::tag_status`]: an update that keeps `metadata.generation`
/// (a status patch) is `status_only`; a new generation, an object of the
/// initial list and the first sight of an object are not; a deletion
/// forgets that object's status, a relist every status of the kind.
#[test]
fn status_only_updates_are_told_apart_by_generation() {
    use futures::StreamExt as _;
    use kube::runtime::watcher::Event;

    use crate::gateway::types::HttpRoute;

    let route = |generation: i64, status: &str| -> HttpRoute {
        serde_json::from_value(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "web", "uid": "u1", "generation": generation},
            "spec": {}, "status": {"note": status}}))
        .unwrap()
    };
    let events = vec![
        Event::Init,
        Event::InitApply(route(1, "")),
        Event::InitDone,
        Event::Apply(route(1, "ours")),
        Event::Apply(route(2, "ours")),
        Event::Apply(route(2, "ours again")),
        Event::Delete(route(2, "")),
        Event::Apply(route(2, "recreated")),
    ];
    // A stream of ready items: polled to the end without a runtime.
    let mut stream = super::tag_status(futures::stream::iter(events.into_iter().map(Ok)), 7, "HTTPRoute");
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut ticks = Vec::new();
    while let std::task::Poll::Ready(Some(t)) = stream.poll_next_unpin(&mut cx) {
        ticks.push(t);
    }
    let got: Vec<(bool, bool, Option<super::Forget>)> = ticks
        .into_iter()
        .map(|t| {
            let t = t.unwrap();
            (t.init_done, t.status_only, t.forget)
        })
        .collect();
    let gone = || {
        Some(super::Forget::Object(crate::gateway::status::ObjectKey {
            kind: "HTTPRoute",
            namespace: Some("web".into()),
            name: "r".into(),
        }))
    };
    assert_eq!(
        got,
        [
            (false, false, Some(super::Forget::All)),
            (false, false, None),
            (true, false, None),
            (false, true, None),
            (false, false, None),
            (false, true, None),
            (false, false, gone()),
            (false, false, None),
        ]
    );
}

#[test]
fn host_patterns_overlap_as_a_request_host_would_match_them() {
    use super::hosts_overlap;
    for (a, b, want) in [
        ("a.example.com", "a.example.com", true),
        ("A.Example.com.", "a.example.com", true),
        ("*.example.com", "a.example.com", true),
        ("a.example.com", "*.example.com", true),
        ("*.example.com", "x.y.example.com", true),
        ("*.example.com", "*.y.example.com", true),
        ("*.example.com", "example.com", false),
        ("*.example.com", "aexample.com", false),
        ("a.example.com", "b.example.com", false),
        ("*.a.example.com", "*.b.example.com", false),
    ] {
        assert_eq!(hosts_overlap(a, b), want, "{a} / {b}");
    }
}

/// Review 14 F8/F9: until the Gateway side is first computed, the Ingress
/// side leaves out the routes for hosts an HTTPRoute names (all of them
/// while HTTPRoutes are not listed, or one of them names no host).
#[test]
fn ingress_routes_for_hosts_an_httproute_names_are_held() {
    use super::hold_hosts_of_routes;
    use crate::gateway::types::HttpRoute;
    use std::sync::Arc;
    let route = |host: Option<&str>| crate::ingress::Route {
        ingress: "evil/squat".into(),
        host: host.map(str::to_owned),
        path: "/".into(),
        backend: "evil/app:80".into(),
        allow: None,
        deny: vec![],
        rps: None,
        burst: None,
        rate_global: false,
        max_body: None,
        ssl_redirect: false,
    };
    let d = Desired {
        routes: vec![
            route(Some("shop.example.com")),
            route(Some("a.other.example")),
            route(None),
            route(Some("*.example.com")),
        ],
        ..Desired::default()
    };
    let http_route = |hosts: &[&str]| -> Arc<HttpRoute> {
        Arc::new(
            serde_json::from_value(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": "site", "namespace": "web"},
                "spec": {"hostnames": hosts, "rules": [{}]}}))
            .unwrap(),
        )
    };
    let hosts = |d: &Desired| d.routes.iter().map(|r| r.host.clone()).collect::<Vec<_>>();
    let (kept, held) = hold_hosts_of_routes(d.clone(), Some(&[http_route(&["shop.example.com"])]));
    assert_eq!(
        hosts(&kept),
        [Some("a.other.example".to_owned())],
        "the named host, the wildcard over it and the host-less rule are held"
    );
    assert_eq!(held, 3);
    let (kept, held) = hold_hosts_of_routes(d.clone(), Some(&[]));
    assert_eq!((kept.routes.len(), held), (4, 0), "no HTTPRoute: nothing held");
    let (kept, held) = hold_hosts_of_routes(d.clone(), Some(&[http_route(&[])]));
    assert_eq!((kept.routes.len(), held), (0, 4), "a host-less HTTPRoute may take any host");
    let (kept, held) = hold_hosts_of_routes(d, None);
    assert_eq!((kept.routes.len(), held), (0, 4), "HTTPRoutes not listed: everything held");
}

/// Status rechecks of an object rewritten over and over (writers that
/// disagree on realip's entries) slow down: three rewrites within a minute
/// go at once, the next wait 1 s doubling to 30 s; a quiet minute starts
/// over.
#[test]
fn contended_rewrites_wait_longer_and_longer() {
    use std::time::{Duration, Instant};
    let k = crate::gateway::status::ObjectKey { kind: "HTTPRoute", namespace: Some("web".into()), name: "r".into() };
    let mut c = super::Contention::default();
    let t = Instant::now();
    let waits: Vec<u64> = (0..10).map(|i| c.rewrite(&k, t + Duration::from_secs(i)).as_secs()).collect();
    assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(c.rewrite(&k, t + Duration::from_secs(80)), Duration::ZERO, "a quiet minute starts over");
}
