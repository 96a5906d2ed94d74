//! Fixes of the thirty-sixth review round. Each test failed before its fix.

mod common;

use common::{controller, find, ing_at, run, status};
use realip_migrate::{Status, Target};
use serde_json::{json, Value};

fn route<'a>(m: &'a realip_migrate::Migration, name: &str) -> Option<&'a Value> {
    find(m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == name)
}

fn paths(r: &Value) -> Vec<Value> {
    r["spec"]["rules"].as_array().unwrap().iter().map(|rule| rule["matches"][0]["path"].clone()).collect()
}

/// H-1: the root location of a server carries the annotations of the
/// Ingress that created it, its redirect too: a path no location matches
/// is redirected (kubernetes/ingress-nginx#9435), not a 404. A newer
/// Ingress's own paths on the host are still its own.
#[test]
fn the_creating_ingresss_redirect_answers_the_hosts_unmatched_paths() {
    let old = ing_at("web", "old", 2020, "/old", &[("permanent-redirect", "https://new.example.org/")]);
    let newer = ing_at("web", "newer", 2024, "/new", &[]);
    let m = run(&[controller(&[]), old, newer], Target::Realip);
    let ctx = m.report.text();
    let r = route(&m, "old").unwrap_or_else(|| panic!("{ctx}"));
    assert!(paths(r).contains(&json!({"type": "PathPrefix", "value": "/"})), "{r:#}");
    assert!(r["spec"]["rules"].as_array().unwrap().iter().all(|rule| rule["filters"][0]["type"] == "RequestRedirect"));
    assert_eq!(paths(route(&m, "newer").unwrap()), [json!({"type": "PathPrefix", "value": "/new"})]);
    // The newer Ingress's redirect does not take the host's root.
    let old = ing_at("web", "old", 2020, "/old", &[]);
    let newer = ing_at("web", "newer", 2024, "/new", &[("permanent-redirect", "https://new.example.org/")]);
    let m = run(&[controller(&[]), old, newer], Target::Realip);
    assert_eq!(paths(route(&m, "newer").unwrap()), [json!({"type": "PathPrefix", "value": "/new"})]);
}

/// H-2: an Ingress without rules only gives the catch-all server its
/// defaultBackend, where ingress-nginx applies no redirect or rewrite
/// annotation: the backend serves, under the Ingress's allow list.
#[test]
fn the_catch_all_ingress_gets_no_redirect_or_app_root() {
    for (key, value) in [("permanent-redirect", "https://new.example.org/"), ("app-root", "/app")] {
        let ing = format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: fallback\n  namespace: web\n  annotations:\n    nginx.ingress.kubernetes.io/{key}: {value}\n    nginx.ingress.kubernetes.io/whitelist-source-range: 203.0.113.0/24\nspec:\n  ingressClassName: nginx\n  defaultBackend: {{service: {{name: app, port: {{number: 80}}}}}}\n"
        );
        let m = run(&[controller(&[]), ing], Target::Realip);
        let ctx = m.report.text();
        assert_eq!(status(&m, key), Status::Ignored, "{ctx}");
        let r = route(&m, "fallback-default-backend").unwrap_or_else(|| panic!("{ctx}"));
        assert_eq!(r["spec"]["rules"].as_array().unwrap().len(), 1, "{r:#}");
        assert_eq!(r["spec"]["rules"][0]["backendRefs"][0]["name"], "app", "{r:#}");
        let policy = find(&m, "ClientAccessPolicy").into_iter().next().unwrap_or_else(|| panic!("{ctx}"));
        assert_eq!(policy["spec"]["targetRefs"][0]["name"], "fallback-default-backend");
    }
}

/// M-3: another Ingress's Exact location of the path leaves ingress-nginx
/// no `= /p` of its own to add for a Prefix `/p`: that Exact one decides
/// (here: not redirected), so the redirect route holds no `Exact /p`.
#[test]
fn another_ingresss_exact_location_is_not_redirected_by_the_prefix_one() {
    let cm = controller(&[("no-tls-redirect-locations", "/p/")]);
    let tls = "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n";
    let a = ing_at("web", "a", 2020, "/p", &[]).replacen("spec:\n", &format!("spec:\n{tls}"), 1);
    let b =
        ing_at("web", "b", 2024, "/p", &[("ssl-redirect", "false")]).replacen("pathType: Prefix", "pathType: Exact", 1);
    let m = run(&[cm, a, b], Target::Realip);
    let ctx = m.report.text();
    for r in find(&m, "HTTPRoute")
        .into_iter()
        .filter(|r| r["metadata"]["name"].as_str().unwrap().ends_with("-https-redirect"))
    {
        assert!(!paths(r).contains(&json!({"type": "Exact", "value": "/p"})), "{}: {ctx}", r["metadata"]["name"]);
    }
}

/// L-4: an app-root ingress-nginx cannot parse as a request path (`app`)
/// or that is an absolute URL (`http:x`) is '' to it: no redirect,
/// ignored (not "not converted").
#[test]
fn an_app_root_ingress_nginx_drops_is_ignored() {
    for v in ["app", "http:x"] {
        let m = run(&[controller(&[]), ing_at("web", "shop", 2020, "/", &[("app-root", v)])], Target::Realip);
        assert_eq!(status(&m, "app-root"), Status::Ignored, "{v}: {}", m.report.text());
        assert!(paths(route(&m, "shop").unwrap()).iter().all(|p| p["type"] != "Exact"), "{v}");
    }
}
