//! Fixes of the thirty-first review round. Each test failed before its fix.

mod common;

use common::{controller, controller_at, find, ingress, run, status};
use realip_migrate::{Status, Target};
use serde_json::json;

fn allow(m: &realip_migrate::Migration) -> serde_json::Value {
    find(m, "ClientAccessPolicy").first().map(|p| p["spec"]["allow"].clone()).unwrap_or_default()
}

/// H-2: which annotation gives the allow list, as ingress-nginx reads
/// them: from v1.9.1 `allowlist-source-range`, `whitelist-source-range`
/// in its place when it is empty; before v1.9.1 `whitelist-source-range`
/// only; `denylist-source-range` from v1.6.4.
#[test]
fn the_allow_list_annotation_follows_the_controller_release() {
    let narrow = "203.0.113.0/24";
    // v1.15: an empty allowlist-source-range reads whitelist-source-range.
    let m = run(
        &[
            controller(&[]),
            ingress("site", "/", &[("allowlist-source-range", ""), ("whitelist-source-range", narrow)], ""),
        ],
        Target::Realip,
    );
    let ctx = m.report.text();
    assert_eq!(allow(&m), json!([narrow]), "{ctx}");
    assert_eq!(
        (status(&m, "allowlist-source-range"), status(&m, "whitelist-source-range")),
        (Status::Ignored, Status::Converted),
        "{ctx}"
    );
    assert!(!m.report.incomplete(), "{ctx}");
    // v1.15: an empty whitelist-source-range alone is no list (the alias is
    // read only when it is not empty: review 32 H-1); before v1.9.1 it fails
    // the list, 503 (deny-all).
    let m = run(&[controller(&[]), ingress("site", "/", &[("whitelist-source-range", "")], "")], Target::Realip);
    assert!(find(&m, "ClientAccessPolicy").is_empty() && !m.report.incomplete(), "{}", m.report.text());
    assert_eq!(status(&m, "whitelist-source-range"), Status::Ignored);
    let m = run(
        &[controller_at("v1.8.4", &[], &[]), ingress("site", "/", &[("whitelist-source-range", "")], "")],
        Target::Realip,
    );
    assert_eq!(status(&m, "whitelist-source-range"), Status::NotConverted, "{}", m.report.text());
    // v1.8.4: allowlist-source-range does not exist; whitelist-source-range applies.
    let old = controller_at("v1.8.4", &[], &[]);
    let m = run(
        &[
            old.clone(),
            ingress("site", "/", &[("allowlist-source-range", "0.0.0.0/0"), ("whitelist-source-range", narrow)], ""),
        ],
        Target::Realip,
    );
    assert_eq!(allow(&m), json!([narrow]), "{}", m.report.text());
    let m = run(&[old, ingress("site", "/", &[("allowlist-source-range", narrow)], "")], Target::Realip);
    assert_eq!(status(&m, "allowlist-source-range"), Status::Ignored, "{}", m.report.text());
    assert!(find(&m, "ClientAccessPolicy").is_empty(), "no list in v1.8: {}", m.report.text());
    // v1.5.1: no denylist-source-range.
    let m = run(
        &[controller_at("v1.5.1", &[], &[]), ingress("site", "/", &[("denylist-source-range", narrow)], "")],
        Target::Realip,
    );
    assert_eq!(status(&m, "denylist-source-range"), Status::Ignored, "{}", m.report.text());
    assert!(find(&m, "ClientAccessPolicy").is_empty());
    // Release unknown, both set and different: left out.
    let unknown = controller_at("latest", &[], &[]);
    let m = run(
        &[
            unknown,
            ingress("site", "/", &[("allowlist-source-range", "0.0.0.0/0"), ("whitelist-source-range", narrow)], ""),
        ],
        Target::Realip,
    );
    assert_eq!(status(&m, "allowlist-source-range"), Status::NotConverted, "{}", m.report.text());
    assert!(common::routes(&m, false).is_empty(), "{}", m.report.text());
}

/// M-2: a canary of an Ingress that redirects every request is never
/// picked (the redirect comes first): its entries say ignored, not
/// "converted" to rules that are not in the output. M-3: an entry names
/// no route that is not emitted.
#[test]
fn a_redirect_ingresss_canary_is_ignored_and_arrows_name_only_what_is_emitted() {
    let main = ingress("main", "/", &[("permanent-redirect", "https://new.example.com/")], "");
    let canary = ingress(
        "main-canary",
        "/",
        &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-weight", "30")],
        "",
    );
    let m = run(&[controller(&[]), main, canary], Target::Realip);
    let ctx = m.report.text();
    for key in ["canary", "canary-by-header", "canary-weight"] {
        let e = m.report.entries.iter().find(|e| e.object == "Ingress/web/main-canary" && e.key == key).unwrap();
        assert_eq!((e.status, e.to.as_str()), (Status::Ignored, ""), "{key}: {ctx}");
    }
    // ssl-redirect off: no redirect route, so no entry names one.
    let tls = "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n";
    let m = run(
        &[controller(&[("ssl-redirect", "false"), ("http-redirect-code", "301")]), ingress("site", "/", &[], tls)],
        Target::Realip,
    );
    for key in ["ssl-redirect", "http-redirect-code"] {
        let e = m.report.entries.iter().find(|e| e.key == key).unwrap();
        assert_eq!(e.to, "", "{key}: {}", m.report.text());
    }
}

/// M-1: app-root's redirect of `/` and another Ingress's `Exact /` on the
/// host tie on the Gateway. Since review 37 the other `Exact /` is taken
/// out (nginx redirects `/` before any location), its route with it when
/// nothing else is left. L-4: a Gateway name may be a DNS name with dots.
#[test]
fn app_root_next_to_an_exact_root_wins_and_gateway_names_take_dots() {
    let app_root = ingress("z-approot", "/foo", &[("app-root", "/foo")], "")
        .replace("pathType: ImplementationSpecific", "pathType: Prefix");
    let root = ingress("b-root", "/", &[], "").replace("pathType: ImplementationSpecific", "pathType: Exact");
    let m = run(&[controller(&[]), app_root.clone(), root], Target::Realip);
    let ctx = m.report.text();
    assert_eq!(status(&m, "app-root precedence"), Status::Converted, "{ctx}");
    assert!(!find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "b-root"), "{ctx}");
    // (run_with validates every object against its CRD and realip's translator.)
    let opts =
        realip_migrate::Options { gateway: Some("infra/edge.example".into()), ..realip_migrate::Options::default() };
    let m = common::run_with(&[controller(&[]), app_root], &opts);
    assert_eq!(find(&m, "Gateway")[0]["metadata"]["name"], "edge.example");
}
