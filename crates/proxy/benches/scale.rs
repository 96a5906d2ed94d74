//! Kubernetes mode at scale (issue 13): 10,000 HTTPRoutes over 2,000
//! Services and 5,000 EndpointSlices, and 10,000 Ingresses over the same
//! Services, taken through every step the proxy runs per change:
//! - `gateway/translate`: Gateway API objects → route set + status;
//! - `ingress/desired`: Ingresses → routes (+ `RouteSet::from_ingress`);
//! - `*/compose_build`: route set → configuration → validated snapshot,
//!   reusing the previous snapshot's pools (what a reload does);
//! - `*/one_change`: one EndpointSlice changed, the whole step again
//!   (translate or desired, merge, compose, build): the time from the
//!   watcher's batch to a snapshot ready to swap in;
//! - `*/slice_change`: one EndpointSlice changed, taken through the
//!   incremental path the proxy runs now: the watcher refreshes the
//!   endpoints of that slice's Service in the set it holds
//!   (`refresh_endpoints`), the consumer merges the sets (a copy), the
//!   reloader finds that only endpoints changed (`endpoint_changes`) and
//!   replaces that one pool in the running snapshot
//!   (`Snapshot::with_upstreams`);
//! - `routing/*`: one request routed among 10,000 routes (the route that
//!   matches is the last one declared).
//!
//! Objects are generated in memory (no API server): the watcher's own cost
//! (list/watch decoding, status patches) is not in these figures.
//!
//! Run: `cargo bench -p realip-proxy --bench scale`. It runs with
//! mimalloc, the `realip` binary's allocator (before the incremental path
//! it ran with the system allocator).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use realip_kube::gateway::objects::Objects;
use realip_kube::gateway::translate::translate;
use realip_kube::ingress::{desired, refresh_endpoints, Touched};
use realip_kube::routes::RouteSet;
use realip_proxy::kubernetes::{compose_checked, endpoint_changes};
use realip_proxy::route::Request;
use realip_proxy::snapshot::Snapshot;
use realip_proxy::Config;
use serde_json::json;

// The allocator the `realip` binary runs with: allocation dominates
// these steps, so the system allocator would measure another program.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUTES: usize = 10_000;
const SERVICES: usize = 2_000;
const NAMESPACES: usize = 20;

fn service(i: usize) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc{i}"), "namespace": format!("team{}", i % NAMESPACES)},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
}

/// Slice `j` of Service `i`: two endpoints, documentation addresses
/// (never contacted).
fn slice(i: usize, j: usize, bump: u8) -> serde_json::Value {
    let a = |k: usize| format!("10.{}.{}.{}", i / 250, i % 250, j * 2 + k + usize::from(bump));
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("svc{i}-{j}"), "namespace": format!("team{}", i % NAMESPACES),
            "labels": {"kubernetes.io/service-name": format!("svc{i}")}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
        "endpoints": [{"addresses": [a(0)], "conditions": {"ready": true}},
                      {"addresses": [a(1)], "conditions": {"ready": true}}]})
}

/// 2,000 Services with 2 or 3 slices each: 5,000 EndpointSlices.
fn slices_of(i: usize) -> usize {
    if i % 2 == 0 {
        3
    } else {
        2
    }
}

fn gateway_objects() -> Objects {
    let mut o = Objects::default();
    let add = |o: &mut Objects, v: serde_json::Value| o.add(v).unwrap();
    add(
        &mut o,
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "realip"}, "spec": {"controllerName": "realip.dev/gateway-controller"}}),
    );
    add(
        &mut o,
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
            "allowedRoutes": {"namespaces": {"from": "All"}}}]}}),
    );
    for i in 0..SERVICES {
        add(&mut o, service(i));
        for j in 0..slices_of(i) {
            add(&mut o, slice(i, j, 0));
        }
    }
    for k in 0..ROUTES {
        let s = k % SERVICES;
        add(
            &mut o,
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": format!("r{k}"), "namespace": format!("team{}", s % NAMESPACES),
                "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "infra", "sectionName": "http"}],
                "hostnames": [format!("h{k}.example.com")],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": format!("/api/{}", k % 7)}}],
                    "backendRefs": [{"name": format!("svc{s}"), "port": 80}]}]}}),
        );
    }
    o
}

fn ingresses() -> Vec<Ingress> {
    (0..ROUTES)
        .map(|k| {
            let s = k % SERVICES;
            serde_json::from_value(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": format!("i{k}"), "namespace": format!("team{}", s % NAMESPACES)},
                "spec": {"ingressClassName": "realip", "rules": [{"host": format!("i{k}.example.com"),
                    "http": {"paths": [{"path": format!("/api/{}", k % 7), "pathType": "Prefix",
                        "backend": {"service": {"name": format!("svc{s}"), "port": {"number": 80}}}}]}}]}}))
            .unwrap()
        })
        .collect()
}

/// The Service of the slice the `*_change` steps change.
fn touched() -> Touched {
    [(format!("team{}", (SERVICES - 1) % NAMESPACES), format!("svc{}", SERVICES - 1))].into()
}

fn config() -> Config {
    toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n").unwrap()
}

/// What the proxy does with a set: compose onto the file, build the
/// snapshot reusing the previous one's pools.
fn compose_build(set: &RouteSet, previous: Option<&Snapshot>) -> Snapshot {
    let (c, problems, _) = compose_checked(config(), Some(set));
    assert!(problems.is_empty(), "{:?}", &problems[..problems.len().min(3)]);
    Snapshot::build_reusing(c, previous).unwrap()
}

fn gateway(c: &mut Criterion) {
    let mut o = gateway_objects();
    let mut g = c.benchmark_group("gateway");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("translate", |b| b.iter(|| translate(black_box(&o.inputs("realip", &[])))));
    let set = translate(&o.inputs("realip", &[])).routes;
    assert_eq!(set.routes.len(), ROUTES);
    let first = compose_build(&set, None);
    g.bench_function("compose_build", |b| b.iter(|| compose_build(black_box(&set), Some(&first))));
    let mut bump = 0u8;
    g.bench_function("one_change", |b| {
        b.iter(|| {
            // One EndpointSlice of the last Service gets new addresses.
            bump ^= 1;
            let idx = o.slices.len() - 1;
            o.slices[idx] = serde_json::from_value(slice(SERVICES - 1, 1, bump)).unwrap();
            let set = translate(&o.inputs("realip", &[])).routes.merge(RouteSet::default());
            compose_build(&set, Some(&first))
        });
    });
    // What the watch channel holds, what the reloader last applied, and
    // the running snapshot.
    let mut channel = translate(&o.inputs("realip", &[])).routes;
    let mut held = channel.clone().merge(RouteSet::default());
    let mut running = compose_build(&held, None);
    g.bench_function("slice_change", |b| {
        b.iter(|| {
            bump ^= 1;
            let idx = o.slices.len() - 1;
            o.slices[idx] = serde_json::from_value(slice(SERVICES - 1, 1, bump)).unwrap();
            let mut backends = channel.backends.clone();
            assert_eq!(refresh_endpoints(&mut backends, &touched(), &o.services, &o.slices), Some(true));
            channel.backends = backends;
            let next = channel.clone().merge(RouteSet::default());
            let changes = endpoint_changes(&held, &next).unwrap();
            assert_eq!(changes.len(), 1);
            running = running.with_upstreams(&changes).unwrap();
            held = next;
        });
    });
    drop(g);
    let mut g = c.benchmark_group("routing");
    let last = format!("h{}.example.com", ROUTES - 1);
    let path = format!("/api/{}/x", (ROUTES - 1) % 7);
    assert_eq!(
        first.routes.find_request("web", &last, &path, &Request::default()).map(|r| r.name.to_string()),
        Some(format!("httproute/team{}/r{}/0/0", (ROUTES - 1) % SERVICES % NAMESPACES, ROUTES - 1))
    );
    g.bench_function("gateway_10k", |b| {
        b.iter(|| first.routes.find_request("web", black_box(&last), black_box(&path), &Request::default()).is_some());
    });
    drop(g);
}

fn ingress(c: &mut Criterion) {
    let o = gateway_objects();
    let ings = ingresses();
    let no_secrets: &[Secret] = &[];
    let services: &[Service] = &o.services;
    let mut slices: Vec<EndpointSlice> = o.slices.clone();
    let mut g = c.benchmark_group("ingress");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("desired", |b| {
        b.iter(|| RouteSet::from_ingress(&desired("realip", None, black_box(&ings), services, &slices, no_secrets)));
    });
    let set = RouteSet::from_ingress(&desired("realip", None, &ings, services, &slices, no_secrets));
    assert_eq!(set.routes.len(), ROUTES);
    let first = compose_build(&set, None);
    g.bench_function("compose_build", |b| b.iter(|| compose_build(black_box(&set), Some(&first))));
    let mut bump = 0u8;
    g.bench_function("one_change", |b| {
        b.iter(|| {
            bump ^= 1;
            let idx = slices.len() - 1;
            slices[idx] = serde_json::from_value(slice(SERVICES - 1, 1, bump)).unwrap();
            let d = desired("realip", None, &ings, services, &slices, no_secrets);
            compose_build(&RouteSet::default().merge(RouteSet::from_ingress(&d)), Some(&first))
        });
    });
    let mut channel = desired("realip", None, &ings, services, &slices, no_secrets);
    let mut held = RouteSet::default().merge(RouteSet::from_ingress(&channel));
    let mut running = compose_build(&held, None);
    g.bench_function("slice_change", |b| {
        b.iter(|| {
            bump ^= 1;
            let idx = slices.len() - 1;
            slices[idx] = serde_json::from_value(slice(SERVICES - 1, 1, bump)).unwrap();
            let mut backends = channel.backends.clone();
            assert_eq!(refresh_endpoints(&mut backends, &touched(), services, &slices), Some(true));
            channel.backends = backends;
            let next = RouteSet::default().merge(RouteSet::from_ingress(&channel));
            let changes = endpoint_changes(&held, &next).unwrap();
            assert_eq!(changes.len(), 1);
            running = running.with_upstreams(&changes).unwrap();
            held = next;
        });
    });
    drop(g);
    let mut g = c.benchmark_group("routing");
    let last = format!("i{}.example.com", ROUTES - 1);
    let path = format!("/api/{}/x", (ROUTES - 1) % 7);
    assert!(first.routes.find("web", &last, &path).is_some());
    g.bench_function("ingress_10k", |b| b.iter(|| first.routes.find("web", black_box(&last), black_box(&path))));
}

criterion_group!(benches, gateway, ingress);
criterion_main!(benches);
