//! Fixes of the thirty-seventh review round. Each test failed before its fix.

mod common;

use common::{controller, find, run, status};
use realip_migrate::{Status, Target};
use serde_json::{json, Value};

/// Every rule (route name, rule) whose matches include `Exact /`.
fn exact_root_rules(m: &realip_migrate::Migration) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for r in find(m, "HTTPRoute") {
        for rule in r["spec"]["rules"].as_array().unwrap() {
            let root = rule["matches"]
                .as_array()
                .is_some_and(|ms| ms.iter().any(|x| x["path"] == json!({"type": "Exact", "value": "/"})));
            if root {
                out.push((r["metadata"]["name"].as_str().unwrap().to_owned(), rule.clone()));
            }
        }
    }
    out
}

/// The only `Exact /` rules are app-root's redirect (no header match to
/// outrank it, no other to tie with it).
fn only_app_root_answers_root(m: &realip_migrate::Migration) {
    let rules = exact_root_rules(m);
    assert!(!rules.is_empty(), "{}", m.report.text());
    for (name, rule) in rules {
        assert_eq!(rule["filters"][0]["requestRedirect"]["path"]["replaceFullPath"], "/app", "{name}: {rule}");
        assert!(rule["matches"][0].get("headers").is_none(), "{name}: {rule}");
    }
}

const MAIN: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: main\n  namespace: web\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n  annotations:\n    nginx.ingress.kubernetes.io/app-root: /app\nEXTRA\nspec:\n  ingressClassName: nginx\nTLS  rules:\n  - host: h.example.com\n    http:\n      paths:\n      - {path: /, pathType: Exact, backend: {service: {name: app, port: {number: 80}}}}\n      - {path: /x, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}\n";

fn main_ingress(extra: &str, tls: bool) -> String {
    MAIN.replace("EXTRA\n", extra)
        .replace("TLS", if tls { "  tls: [{hosts: [h.example.com], secretName: h-tls}]\n" } else { "" })
}

/// H-1: a canary by header on the `Exact /` path outranked app-root's
/// redirect (more header matches): `X-Canary: never` skipped it.
#[test]
fn a_canary_header_does_not_skip_app_root() {
    let canary = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: can\n  namespace: web\n  creationTimestamp: \"2024-02-01T00:00:00Z\"\n  annotations:\n    nginx.ingress.kubernetes.io/canary: \"true\"\n    nginx.ingress.kubernetes.io/canary-by-header: X-Canary\n    nginx.ingress.kubernetes.io/canary-weight: \"50\"\nspec:\n  ingressClassName: nginx\n  rules:\n  - host: h.example.com\n    http:\n      paths:\n      - {path: /, pathType: Exact, backend: {service: {name: app2, port: {number: 80}}}}\n";
    for target in [Target::Realip, Target::EnvoyGateway] {
        let m = run(&[controller(&[]), main_ingress("", false), canary.to_owned()], target);
        only_app_root_answers_root(&m);
    }
}

/// H-2: app-root's own route (under an allow list, or with an HTTPS
/// redirect) tied with the Ingress's own `Exact /` rule, and the
/// `X-Forwarded-Proto: https` route outranked it; the redirect answers
/// `/` alone.
#[test]
fn app_roots_route_answers_root_alone() {
    let allow = "    nginx.ingress.kubernetes.io/whitelist-source-range: 203.0.113.0/24\n";
    let cm = controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")]);
    for (extra, tls) in [(allow, false), ("", true), (allow, true)] {
        let m = run(&[cm.clone(), main_ingress(extra, tls)], Target::Realip);
        only_app_root_answers_root(&m);
        assert_eq!(status(&m, "app-root precedence"), Status::Converted, "{}", m.report.text());
    }
}

/// M-3: on a rule-less catch-all Ingress ingress-nginx applies no rewrite
/// annotation (force-ssl-redirect, ssl-redirect, rewrite-target among
/// them): ignored, not "not converted".
#[test]
fn the_catch_all_ingress_ignores_rewrite_annotations() {
    let ing = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: catch\n  namespace: web\n  annotations:\n    nginx.ingress.kubernetes.io/force-ssl-redirect: \"true\"\n    nginx.ingress.kubernetes.io/rewrite-target: /foo\nspec:\n  ingressClassName: nginx\n  defaultBackend: {service: {name: app, port: {number: 80}}}\n";
    let m = run(&[controller(&[]), ing.to_owned()], Target::Realip);
    let ctx = m.report.text();
    assert_eq!(status(&m, "force-ssl-redirect"), Status::Ignored, "{ctx}");
    assert_eq!(status(&m, "rewrite-target"), Status::Ignored, "{ctx}");
    assert!(!m.report.incomplete(), "{ctx}");
}
