//! Fixes of the thirty-fifth review round. Each test failed before its fix.

mod common;

use common::{controller, find, ingress, run, status};
use realip_migrate::{Status, Target};
use serde_json::{json, Value};

const TLS: &str = "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n";

fn route<'a>(m: &'a realip_migrate::Migration, name: &str) -> Option<&'a Value> {
    find(m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == name)
}

fn sections(r: &Value) -> Vec<Value> {
    r["spec"]["parentRefs"].as_array().unwrap().iter().map(|p| p["sectionName"].clone()).collect()
}

/// H-1 and L-4: nginx answers app-root's `if ($uri = /)` at server level,
/// before the HTTPS redirect and before allow/deny: with a redirect, the
/// app-root rule is a route of its own on the http listener too (not only
/// the HTTPS one), never a policy target; with X-Forwarded-Proto: https
/// on port 80, `/` is redirected to the app root, not served or refused.
#[test]
fn app_root_answers_before_the_https_redirect_and_the_allow_list() {
    let cm = controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")]);
    for annotations in
        [vec![("app-root", "/app"), ("whitelist-source-range", "203.0.113.0/24")], vec![("app-root", "/app")]]
    {
        let m = run(&[cm.clone(), ingress("shop", "/", &annotations, TLS)], Target::Realip);
        let ctx = m.report.text();
        let root = route(&m, "shop-app-root").unwrap_or_else(|| panic!("{annotations:?}: {ctx}"));
        let on = sections(root);
        assert!(on.contains(&json!("http")) && on.len() == 2, "{annotations:?}: {on:?}");
        assert_eq!(root["spec"]["rules"][0]["matches"][0]["path"], json!({"type": "Exact", "value": "/"}));
        // No other route holds the app-root rule (the forwarded one included).
        for r in find(&m, "HTTPRoute").into_iter().filter(|r| r["metadata"]["name"] != "shop-app-root") {
            let redirects_to_root = r["spec"]["rules"].as_array().unwrap().iter().any(|rule| {
                rule["filters"].as_array().is_some_and(|fs| fs.iter().any(|f| f["requestRedirect"]["path"].is_object()))
            });
            assert!(!redirects_to_root, "{annotations:?}: {}", r["metadata"]["name"]);
        }
        for p in find(&m, "ClientAccessPolicy") {
            let targets: Vec<&Value> = p["spec"]["targetRefs"].as_array().unwrap().iter().map(|t| &t["name"]).collect();
            assert!(!targets.contains(&&json!("shop-app-root")), "{targets:?}");
        }
    }
}

/// H-2: with use-forwarded-headers, ingress-nginx served a request on
/// port 80 carrying `X-Forwarded-Proto: https`; Envoy replaces that header
/// from an untrusted downstream, so Envoy Gateway's output keeps the
/// redirect and says so (not converted, exit 1) instead of nothing.
#[test]
fn envoy_gateway_says_it_cannot_keep_the_forwarded_scheme() {
    let cm = controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")]);
    let m = run(&[cm, ingress("shop", "/", &[], TLS)], Target::EnvoyGateway);
    let ctx = m.report.text();
    assert_eq!(status(&m, "ssl-redirect app.example.com"), Status::NotConverted, "{ctx}");
    assert!(route(&m, "shop-https-redirect").is_some(), "{ctx}");
    assert!(route(&m, "shop-forwarded-https").is_none(), "{ctx}");
}

/// M-3: ingress-nginx serves a Prefix path `/p` from `location /p/` plus
/// `location = /p`, and compares `no-tls-redirect-locations` with those:
/// `/p/…` is served over plain HTTP, `/p` itself redirected.
#[test]
fn no_tls_redirect_locations_match_the_slash_location() {
    let cm = controller(&[("no-tls-redirect-locations", "/.well-known/acme-challenge/")]);
    let ing = ingress("shop", "/.well-known/acme-challenge", &[], TLS).replace("ImplementationSpecific", "Prefix");
    let m = run(&[cm, ing], Target::Realip);
    let ctx = m.report.text();
    let plain = route(&m, "shop-no-tls-redirect").unwrap_or_else(|| panic!("{ctx}"));
    assert_eq!(sections(plain), [json!("http")]);
    assert_eq!(
        plain["spec"]["rules"][0]["matches"][0]["path"],
        json!({"type": "PathPrefix", "value": "/.well-known/acme-challenge"})
    );
    let redirect = route(&m, "shop-https-redirect").unwrap_or_else(|| panic!("{ctx}"));
    assert_eq!(
        redirect["spec"]["rules"][0]["matches"][0]["path"],
        json!({"type": "Exact", "value": "/.well-known/acme-challenge"}),
        "only the bare path is redirected"
    );
}

/// L-4: permanent-redirect / temporal-redirect is nginx's `return`, before
/// the HTTPS redirect: plain HTTP gets it directly, so no HTTPS redirect
/// route is emitted and the redirect route is on every listener.
#[test]
fn an_ingress_redirect_goes_before_the_https_redirect() {
    let m = run(
        &[controller(&[]), ingress("old", "/", &[("temporal-redirect", "https://new.example.com/x")], TLS)],
        Target::Realip,
    );
    let ctx = m.report.text();
    assert!(route(&m, "old-https-redirect").is_none(), "{ctx}");
    let r = route(&m, "old").unwrap_or_else(|| panic!("{ctx}"));
    assert_eq!(sections(r), [Value::Null], "on every listener");
}

/// L-6: the ConfigMap's `force-ssl-redirect` is the default of the
/// annotation: converted, and it redirects an Ingress that does not set
/// the annotation (an annotation `false` still turns it off).
#[test]
fn the_configmaps_force_ssl_redirect_is_the_annotations_default() {
    let cm = controller(&[("force-ssl-redirect", "true"), ("ssl-redirect", "false")]);
    let m = run(&[cm.clone(), ingress("shop", "/", &[], TLS)], Target::Realip);
    let ctx = m.report.text();
    assert_eq!(status(&m, "force-ssl-redirect"), Status::Converted, "{ctx}");
    assert!(route(&m, "shop-https-redirect").is_some(), "{ctx}");
    let m = run(&[cm, ingress("shop", "/", &[("force-ssl-redirect", "false")], TLS)], Target::Realip);
    assert!(route(&m, "shop-https-redirect").is_none(), "{}", m.report.text());
}
