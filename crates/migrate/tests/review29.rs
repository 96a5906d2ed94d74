//! Fixes of the twenty-ninth round: ingress-nginx's `RegexPathWithCapture`
//! validator of `rewrite-target` and `app-root` (on by default since
//! v1.12) takes a value it refuses as '', so there is no rewrite, no regex
//! location and no app-root redirect; the output must not add them. Each
//! test failed before the fix.

mod common;

use common::{controller, controller_at, find, ingress, run, status};
use realip_migrate::{Status, Target};
use serde_json::json;

fn filters(m: &realip_migrate::Migration) -> Vec<serde_json::Value> {
    find(m, "HTTPRoute")
        .iter()
        .flat_map(|r| r["spec"]["rules"].as_array().unwrap().clone())
        .map(|r| r["filters"].clone())
        .collect()
}

/// A rewrite-target with a query (or any character outside
/// `[-._~a-zA-Z0-9/:$]`) fails the validator: ingress-nginx neither
/// rewrites nor serves the path as a regex; an empty one rewrites nothing.
#[test]
fn a_rewrite_target_the_validator_refuses_rewrites_nothing() {
    for (target, why) in
        [("/new?x=1", "fails ingress-nginx's validator"), ("/a b", "fails ingress-nginx's validator"), ("", "empty")]
    {
        let m = run(&[controller(&[]), ingress("site", "/old", &[("rewrite-target", target)], "")], Target::Realip);
        let ctx = format!("{target:?}:\n{}", m.report.text());
        assert_eq!(filters(&m), [json!(null)], "{ctx}");
        let e = m.report.entries.iter().find(|e| e.key == "rewrite-target").unwrap();
        assert_eq!(e.status, Status::Ignored, "{ctx}");
        assert!(e.why.contains(why), "{ctx}");
        // Not in regex mode either: the path is a plain prefix, no regex-mode entry.
        assert!(!m.report.entries.iter().any(|e| e.key.ends_with("regex mode")), "{ctx}");
    }
    // With validation off (v1.11) a plain target is still a full replacement.
    let m = run(
        &[controller_at("v1.11.6", &[], &[]), ingress("site", "/old", &[("rewrite-target", "/new")], "")],
        Target::Realip,
    );
    assert_eq!(filters(&m)[0][0]["urlRewrite"]["path"], json!({"type": "ReplaceFullPath", "replaceFullPath": "/new"}));
    // A value the validator takes is still converted.
    let m =
        run(&[controller(&[]), ingress("site", "/api(/|$)(.*)", &[("rewrite-target", "/v2/$2")], "")], Target::Realip);
    assert_eq!(filters(&m)[0][0]["urlRewrite"]["path"]["replacePrefixMatch"], json!("/v2"), "{}", m.report.text());
}

/// An app-root with a query fails the validator: ingress-nginx does not
/// redirect `/`, so the output has no redirect rule.
#[test]
fn an_app_root_the_validator_refuses_redirects_nothing() {
    let m = run(&[controller(&[]), ingress("site", "/", &[("app-root", "/app?x=1")], "")], Target::Realip);
    let ctx = m.report.text();
    assert_eq!(status(&m, "app-root"), Status::Ignored, "{ctx}");
    assert!(!serde_json::to_string(&find(&m, "HTTPRoute")).unwrap().contains("requestRedirect"), "{ctx}");
    let m = run(&[controller(&[]), ingress("site", "/", &[("app-root", "/app1")], "")], Target::Realip);
    assert_eq!(status(&m, "app-root"), Status::Converted);
}
