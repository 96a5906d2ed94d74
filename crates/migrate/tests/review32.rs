//! Fixes of the thirty-second review round. Each test failed before its fix.

mod common;

use common::{controller_at, ingress, routes, run};
use realip_migrate::Target;
use std::fmt::Write as _;

/// An Ingress in namespace `web` created on `day` of 2024 with these
/// annotations and (host, path, Service) Prefix paths (no host: `None`).
fn ing(name: &str, day: u32, anns: &[(&str, &str)], paths: &[(Option<&str>, &str, &str)]) -> String {
    let mut rules = String::new();
    for (host, path, svc) in paths {
        let host = host.map_or_else(String::new, |h| format!("host: {h}, "));
        let _ = writeln!(
            rules,"  - {{{host}http: {{paths: [{{path: {path}, pathType: Prefix, backend: {{service: {{name: {svc}, port: {{number: 80}}}}}}}}]}}}}"
        );
    }
    let text = ingress(name, "/", anns, "");
    let head = text.split("  rules:\n").next().unwrap().replacen(
        "  namespace: web\n",
        &format!("  namespace: web\n  creationTimestamp: \"2024-01-{day:02}T00:00:00Z\"\n"),
        1,
    );
    format!("{head}  rules:\n{rules}")
}

/// H-2: checkOverlap checks every Service path of the new Ingress, also
/// one whose upstream a canary made (NoServer, never a location): p2's
/// `/x` meets p1's, so the webhook refuses p2 whole and its `/y` must not
/// be emitted open.
#[test]
fn a_no_server_path_still_meets_an_older_location() {
    let docs = vec![
        controller_at("v1.15.1", &["--validating-webhook=:8443"], &[]),
        ing("p1", 1, &[], &[(Some("a.example"), "/x", "app")]),
        ing("c", 2, &[("canary", "true"), ("canary-weight", "10")], &[(Some("a.example"), "/x", "preview")]),
        ing("p2", 3, &[], &[(Some("a.example"), "/x", "preview"), (Some("a.example"), "/y", "other")]),
    ];
    let m = run(&docs, Target::Realip);
    let ctx = m.report.text();
    assert!(!routes(&m, false).contains(&"p2".to_owned()), "{ctx}");
    assert!(
        m.report
            .entries
            .iter()
            .any(|e| e.object == "Ingress/web/p2" && e.why.contains("is already defined in ingress web/p1")),
        "{ctx}"
    );
}

/// M-1: a canary's location on a host without a server sits on the
/// catch-all server `_`: a host-less canary on the same path meets it
/// there and is refused (both canaries).
#[test]
fn a_canary_without_a_server_meets_others_on_the_catch_all() {
    let docs = vec![
        controller_at("v1.15.1", &["--validating-webhook=:8443"], &[]),
        ing("p", 1, &[], &[(Some("a.example"), "/", "main")]),
        ing("c1", 2, &[("canary", "true")], &[(Some("x.example"), "/p", "main")]),
        ing("c2", 3, &[("canary", "true"), ("canary-weight", "50")], &[(None, "/p", "c2")]),
    ];
    let m = run(&docs, Target::Realip);
    let ctx = m.report.text();
    assert!(
        m.report
            .entries
            .iter()
            .any(|e| e.object == "Ingress/web/c2" && e.why.contains("is already defined in ingress web/c1")),
        "{ctx}"
    );
}
