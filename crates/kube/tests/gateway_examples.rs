//! Every Gateway API v1.6.1 example (`../shared/gateway-api/v1.6.1/examples/`,
//! read at test time, never copied) translated as realip would serve it:
//! examples using only what realip implements are Accepted with the routes
//! listed here; the others get the spec's not-accepted conditions
//! (`UnsupportedValue`, `UnsupportedProtocol`, `InvalidParameters`…) — never
//! silence. A directory of examples is one cluster; a file at the top level
//! is one cluster on its own.
//!
//! The examples name their own GatewayClasses (`example`, `acme.io/…`
//! controllers): each class a Gateway uses is treated as realip's (its
//! `controllerName` set to realip's, `parametersRef` kept), and every
//! Service a route names is created with the port it names, so the table
//! shows routing, not missing fixtures.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use realip_kube::gateway::objects::Objects;
use realip_kube::gateway::status::Status;
use realip_kube::gateway::translate::translate;
use realip_kube::gateway::types::UNSERVED_ROUTE_KINDS;
use realip_kube::gateway::CONTROLLER_NAME;
use serde_json::json;

fn examples_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/gateway-api/v1.6.1/examples");
    d.is_dir().then_some(d)
}

/// One world per top-level file or directory.
fn worlds(dir: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            // A directory whose files define the same HTTPRoute several
            // times shows alternatives: one world per route file, each
            // with the directory's other files (Gateways, namespaces).
            let routes_of = |f: &PathBuf| {
                let mut o = Objects::default();
                o.add_yaml(&std::fs::read_to_string(f).unwrap()).unwrap();
                let unserved = o.unserved_routes.iter().map(|(k, r)| (*k, &r.metadata));
                o.routes
                    .iter()
                    .map(|r| ("HTTPRoute", &r.metadata))
                    .chain(unserved)
                    .map(|(k, m)| format!("{k} {}", m.name.clone().unwrap_or_default()))
                    .collect::<Vec<_>>()
            };
            let all: Vec<String> = files.iter().flat_map(routes_of).collect();
            let unique: BTreeSet<&String> = all.iter().collect();
            if unique.len() == all.len() {
                out.push((format!("{name}/"), files));
                continue;
            }
            // A file with a Gateway is context too (grpc-routing: the
            // Gateway and one route in one file).
            let has_gateway = |f: &PathBuf| {
                let mut o = Objects::default();
                o.add_yaml(&std::fs::read_to_string(f).unwrap()).unwrap();
                !o.gateways.is_empty()
            };
            let (with, context): (Vec<PathBuf>, Vec<PathBuf>) =
                files.into_iter().partition(|f| !routes_of(f).is_empty() && !has_gateway(f));
            for f in with {
                let mut world = context.clone();
                world.push(f.clone());
                out.push((format!("{name}/{}", f.file_name().unwrap().to_string_lossy()), world));
            }
        } else if name != "0-namespaces.yaml" {
            out.push((name, vec![p]));
        }
    }
    out
}

fn secret(ns: &str, name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": name, "namespace": ns},
        "data": {"tls.crt": realip_kube::tls::testdata::CRT_B64, "tls.key": realip_kube::tls::testdata::KEY_B64}})
}

/// What realip makes of one world, in one line per fact.
#[allow(clippy::too_many_lines)] // fixtures, then the report
fn summarize(files: &[PathBuf]) -> Vec<String> {
    let mut o = Objects::default();
    for f in files {
        o.add_yaml(&std::fs::read_to_string(f).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    let mut lines_pre = Vec::new();
    let mut extra = Vec::new();
    let mut gateways: BTreeSet<(String, String)> = o
        .gateways
        .iter()
        .map(|g| (g.metadata.namespace.clone().unwrap_or_default(), g.metadata.name.clone().unwrap_or_default()))
        .collect();
    // The classes the Gateways use become realip's.
    let used: BTreeSet<String> = o.gateways.iter().map(|g| g.spec.gateway_class_name.clone()).collect();
    for c in &mut o.classes {
        c.spec.controller_name = CONTROLLER_NAME.into();
    }
    for class in &used {
        if !o.classes.iter().any(|c| c.metadata.name.as_deref() == Some(class)) {
            o.add(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                "metadata": {"name": class}, "spec": {"controllerName": CONTROLLER_NAME}}))
                .unwrap();
        }
    }
    // Routes of examples that show only a route (of any kind): their
    // parent Gateway (or, without parentRefs, one named
    // `example-gateway`) is created with one HTTP listener admitting
    // routes from every namespace.
    let mut used = used;
    let unserved = o.unserved_routes.iter_mut().map(|(k, r)| (*k, &r.metadata, &mut r.spec.parent_refs));
    let all_routes = o.routes.iter_mut().map(|r| ("HTTPRoute", &r.metadata, &mut r.spec.parent_refs)).chain(unserved);
    for (kind, meta, parent_refs) in all_routes {
        let ns = meta.namespace.clone().unwrap_or_default();
        if parent_refs.is_empty() {
            lines_pre.push(format!(
                "{kind} {}: no parentRefs (attached to a test Gateway)",
                meta.name.as_deref().unwrap_or("")
            ));
            parent_refs.push(realip_kube::gateway::types::ParentReference {
                name: "example-gateway".into(),
                ..Default::default()
            });
        }
        for p in parent_refs.iter() {
            if p.kind.as_deref().unwrap_or("Gateway") != "Gateway" {
                lines_pre.push(format!(
                    "{kind} {}: parent {} {} is not a Gateway (GAMMA mesh routing): not served",
                    meta.name.as_deref().unwrap_or(""),
                    p.kind.as_deref().unwrap_or(""),
                    p.name
                ));
                continue;
            }
            let pns = p.namespace.clone().unwrap_or_else(|| ns.clone());
            if !gateways.contains(&(pns.clone(), p.name.clone())) {
                gateways.insert((pns.clone(), p.name.clone()));
                extra.push(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": p.name, "namespace": pns},
                    "spec": {"gatewayClassName": "test", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
                        "allowedRoutes": {"namespaces": {"from": "All"}}}]}}));
                used.insert("test".into());
            }
        }
    }
    if used.contains("test") && !o.classes.iter().any(|c| c.metadata.name.as_deref() == Some("test")) {
        extra.push(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": "test"}, "spec": {"controllerName": CONTROLLER_NAME}}));
    }
    // Every TLS Secret a listener names exists.
    for g in &o.gateways {
        let ns = g.metadata.namespace.clone().unwrap_or_default();
        for r in g.spec.listeners.iter().filter_map(|l| l.tls.as_ref()).flat_map(|t| &t.certificate_refs) {
            extra.push(secret(r.namespace.as_deref().unwrap_or(&ns), &r.name));
        }
    }
    for s in &o.listener_sets {
        let ns = s.metadata.namespace.clone().unwrap_or_default();
        for r in s.spec.listeners.iter().filter_map(|l| l.tls.as_ref()).flat_map(|t| &t.certificate_refs) {
            extra.push(secret(r.namespace.as_deref().unwrap_or(&ns), &r.name));
        }
    }
    for v in extra {
        o.add(v).unwrap();
    }
    // Every Service a route names exists, with the port it names.
    let mut services = BTreeSet::new();
    for r in &o.routes {
        let ns = r.metadata.namespace.clone().unwrap_or_default();
        for b in r.spec.rules.iter().flat_map(|r| &r.backend_refs) {
            if b.kind.as_deref().unwrap_or("Service") == "Service" && b.group.as_deref().unwrap_or("").is_empty() {
                services.insert((
                    b.namespace.clone().unwrap_or_else(|| ns.clone()),
                    b.name.clone(),
                    b.port.unwrap_or(80),
                ));
            }
        }
    }
    for (ns, name, port) in services {
        o.add(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"ports": [{"port": port}]}}))
            .unwrap();
    }
    let mut lines = lines_pre;
    let mut with_status: BTreeSet<(&str, String, String)> = BTreeSet::new();
    for class in &used {
        let t = translate(&o.inputs(class, &["192.0.2.1".to_owned()]));
        for r in &t.routes.routes {
            let backends: Vec<String> = r
                .backends
                .iter()
                .map(|b| format!("{}*{}", b.backend.as_deref().unwrap_or("(500)"), b.weight))
                .collect();
            let mut line = format!("route {} {} {:?}", r.name, r.host.as_deref().unwrap_or("*"), r.path);
            if let Some(m) = &r.method {
                let _ = write!(line, " method={m}");
            }
            for h in r.headers.iter() {
                let _ = write!(line, " header:{}={}", h.name, h.value);
            }
            for q in r.query.iter() {
                let _ = write!(line, " query:{}={}", q.name, q.value);
            }
            for f in r.filters.iter() {
                let _ = write!(line, " {f:?}");
            }
            let _ = write!(line, " -> [{}]", backends.join(", "));
            lines.push(line);
        }
        for p in t.problems() {
            let ns = p.object.namespace.as_deref().unwrap_or("");
            lines.push(format!(
                "{} {ns}/{}: {}={} ({})",
                p.object.kind, p.object.name, p.condition, p.reason, p.message
            ));
        }
        for s in &t.statuses {
            if let Status::Gateway { conditions, .. } = &s.status {
                let a = &conditions[0];
                lines.push(format!("{} {}: Accepted={} {}", s.key.kind, s.key.name, a.status, a.reason));
            }
            if let Status::Route { parents, .. } = &s.status {
                with_status.insert((s.key.kind, s.key.namespace.clone().unwrap_or_default(), s.key.name.clone()));
                // A route of a kind realip does not serve is never
                // accepted by any of realip's parents.
                if UNSERVED_ROUTE_KINDS.contains(&s.key.kind) {
                    for p in parents {
                        let a = p.conditions.iter().find(|c| c.kind == "Accepted").expect("Accepted");
                        assert!(!a.status && a.reason == "NotAllowedByListeners", "{:?}: {p:?}", s.key);
                    }
                }
            }
        }
    }
    // Routes no parent of which is a Gateway realip serves (its class not
    // accepted, say) get no entry from realip: said here, not left out.
    let unserved = o.unserved_routes.iter().map(|(k, r)| (*k, &r.metadata));
    for (kind, m) in o.routes.iter().map(|r| ("HTTPRoute", &r.metadata)).chain(unserved) {
        let key = (kind, m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default());
        if !with_status.contains(&key) {
            lines.push(format!("{kind} {}/{}: no parent is a Gateway realip serves: no status", key.1, key.2));
        }
    }
    for g in &o.grants {
        let from: Vec<String> = g.spec.from.iter().map(|f| format!("{} in {}", f.kind, f.namespace)).collect();
        let to: Vec<String> = g
            .spec
            .to
            .iter()
            .map(|t| format!("{}{}", t.kind, t.name.as_ref().map(|n| format!(" {n}")).unwrap_or_default()))
            .collect();
        lines.push(format!(
            "ReferenceGrant {}/{}: {} may refer to {}",
            g.metadata.namespace.as_deref().unwrap_or(""),
            g.metadata.name.as_deref().unwrap_or(""),
            from.join(", "),
            to.join(", ")
        ));
    }
    for i in &o.ignored {
        if !i.starts_with("Namespace") {
            lines.push(format!("not served: {i}"));
        }
    }
    lines.sort();
    lines.dedup();
    lines
}

/// The report this test compares with (`REALIP_UPDATE_GOLDEN=1` rewrites
/// it; review the diff before committing).
const GOLDEN: &str = "tests/gateway_examples.golden";

#[test]
fn every_example_gets_the_documented_outcome() {
    let Some(dir) = examples_dir() else {
        println!("skipped: ../shared/gateway-api/v1.6.1/examples is absent (Gateway API examples not available)");
        return;
    };
    let mut report = String::new();
    let mut silent = Vec::new();
    for (name, files) in worlds(&dir) {
        let lines = summarize(&files);
        let only_context = files.iter().all(|f| {
            let t = std::fs::read_to_string(f).unwrap();
            !t.contains("kind: Gateway\n") && !t.contains("kind: HTTPRoute") && !t.contains("Route\n")
        });
        if lines.is_empty() && !only_context {
            silent.push(name.clone());
        }
        let _ = writeln!(report, "== {name}");
        for l in lines {
            let _ = writeln!(report, "   {l}");
        }
    }
    assert!(silent.is_empty(), "examples with Gateway API objects but no outcome: {silent:?}");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("REALIP_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &report).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    if want != report {
        let diff: Vec<String> = report
            .lines()
            .filter(|l| !want.lines().any(|w| w == *l))
            .map(|l| format!("+ {l}"))
            .chain(want.lines().filter(|w| !report.lines().any(|l| l == *w)).map(|w| format!("- {w}")))
            .collect();
        panic!("example outcomes changed ({GOLDEN}):\n{}", diff.join("\n"));
    }
}
