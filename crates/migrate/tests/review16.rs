//! The sixteenth review's findings, each a table on both targets with the
//! reviewer's inputs (/tmp/mrev16-in): an upstream mergeAlternativeBackends
//! deletes takes every location naming it with it (R16-5).

mod common;

use std::fmt::Write as _;

use common::{controller, find, routes, run};
use realip_migrate::{Migration, Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];

/// Annotations (prefix added).
type Lines<'a> = &'a [(&'a str, &'a str)];

/// A rule: host ("" none) and its Prefix paths `(path, Service)` (port 80).
type Rule<'a> = (&'a str, &'a [(&'a str, &'a str)]);

/// An Ingress `web/name` created in `year`, with annotations, a
/// `spec.defaultBackend` Service (`""`: none) and rules.
fn ing(name: &str, year: u32, anns: Lines, default_backend: &str, rules: &[Rule]) -> String {
    let mut s = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: web\n  creationTimestamp: \"{year}-01-01T00:00:00Z\"\n"
    );
    if !anns.is_empty() {
        s.push_str("  annotations:\n");
        for (k, v) in anns {
            let _ = writeln!(s, "    nginx.ingress.kubernetes.io/{k}: {}", serde_json::to_string(v).unwrap());
        }
    }
    s.push_str("spec:\n  ingressClassName: nginx\n");
    if !default_backend.is_empty() {
        let _ = write!(
            s,
            "  defaultBackend:\n    service:\n      name: {default_backend}\n      port:\n        number: 80\n"
        );
    }
    if !rules.is_empty() {
        s.push_str("  rules:\n");
    }
    for (host, paths) in rules {
        if host.is_empty() {
            s.push_str("  - http:\n");
        } else {
            let _ = write!(s, "  - host: {}\n    http:\n", serde_json::to_string(host).unwrap());
        }
        s.push_str("      paths:\n");
        for (path, svc) in *paths {
            let _ = write!(s, "      - path: {path}\n        pathType: Prefix\n        backend:\n          service:\n            name: {svc}\n            port:\n              number: 80\n");
        }
    }
    s
}

const CANARY: Lines = &[("canary", "true"), ("canary-weight", "10")];

/// The Services the routes that are not deny-all send to.
fn open_backends(m: &Migration) -> Vec<String> {
    let open = routes(m, false);
    find(m, "HTTPRoute")
        .iter()
        .filter(|r| open.iter().any(|o| r["metadata"]["name"] == o.as_str()))
        .flat_map(|r| r["spec"]["rules"].as_array().unwrap().clone())
        .flat_map(|rule| rule["backendRefs"].as_array().cloned().unwrap_or_default())
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect()
}

/// R16-5 (db1, db3): a canary whose `spec.defaultBackend` (or path) finds
/// no location to merge into makes mergeAlternativeBackends delete the
/// upstream of that name, whoever made it: a non-canary server's root
/// falling back to the same Service+port, or its path naming it, has no
/// balancer and answers 503 to everyone. The output never sends to `s`
/// there: deny-all, not converted. Control (db2): a host-less
/// location lets the canary merge, nothing is deleted, the fallback is `s`.
#[test]
fn a_deleted_canary_upstream_takes_its_locations_with_it() {
    let main = |year| ing("n-main", year, &[], "s", &[("app.example.com", &[("/api", "x")])]);
    // (name, Ingresses, the deny-all routes wanted, `s` served)
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<String>, &[&str], bool)> = vec![
        ("db1", vec![main(2019), ing("c-canary", 2020, CANARY, "s", &[])], &["n-main-denied"], false),
        ("db3", vec![
            ing("c-canary", 2019, CANARY, "s", &[]),
            main(2020),
            ing("o-other", 2021, &[], "", &[("other.example.com", &[("/", "s")])]),
        ], &["n-main-denied", "o-other-denied"], false),
        ("the catch-all's backend, deleted by a canary path", vec![
            ing("y-catch", 2019, &[], "s", &[]),
            ing("m-main", 2019, &[], "", &[("app.example.com", &[("/api", "x")])]),
            ing("c-canary", 2020, CANARY, "s", &[("app.example.com", &[("/nomatch", "s")])]),
        ], &["y-catch-denied"], false),
        ("control: db2, merged into a host-less location", vec![
            main(2019),
            ing("h-hostless", 2019, &[], "", &[("", &[("/other", "o")])]),
            ing("c-canary", 2020, CANARY, "s", &[]),
        ], &[], true),
    ];
    for target in BOTH {
        for (name, docs, denied, served) in &rows {
            let mut all = vec![controller(&[])];
            all.extend(docs.iter().cloned());
            let m = run(&all, target);
            let text = m.report.text();
            let mut got = routes(&m, true);
            got.sort();
            assert_eq!(got, *denied, "{name} {target:?}:\n{text}");
            assert_eq!(open_backends(&m).contains(&"s".to_owned()), *served, "{name} {target:?}:\n{text}");
            // (The control is incomplete too: a canary's defaultBackend does not convert.)
            assert!(m.report.incomplete(), "{name} {target:?}:\n{text}");
            let said = m
                .report
                .entries
                .iter()
                .any(|e| e.status == Status::NotConverted && e.why.contains("503") && e.why.contains("deleted"));
            assert_eq!(said, !*served, "{name} {target:?}:\n{text}");
        }
    }
}
