//! The twenty-second review's findings: nginx picks the server by name
//! before the location, so a path no location of a named host matches is
//! answered by that host's root location (a 404, behind the host's first
//! Ingress's allow list), never by a wildcard or host-less Ingress's route;
//! and in regex mode a widened deny-all must not lose to a longer open
//! prefix. Each test failed before the fix.

mod common;

use common::{controller_at, find, ing_at, open_policies, routes, run};
use realip_migrate::{Migration, Status, Target};
use serde_json::Value;

const ALLOW: (&str, &str) = ("allowlist-source-range", "192.0.2.0/24");

/// The open (not deny-all) routes' forwarding matches: (route, hostnames, path type, path).
fn open_matches(m: &Migration) -> Vec<(String, Vec<String>, String, String)> {
    let open = routes(m, false);
    let mut out = Vec::new();
    for r in find(m, "HTTPRoute") {
        let name = r["metadata"]["name"].as_str().unwrap().to_owned();
        if !open.contains(&name) {
            continue;
        }
        let hosts: Vec<String> = r["spec"]["hostnames"]
            .as_array()
            .map(|a| a.iter().map(|h| h.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        for rule in r["spec"]["rules"].as_array().unwrap().iter().filter(|r| r.get("backendRefs").is_some()) {
            for mt in rule["matches"].as_array().unwrap() {
                let (ty, v) = (mt["path"]["type"].as_str().unwrap(), mt["path"]["value"].as_str().unwrap());
                out.push((name.clone(), hosts.clone(), ty.to_owned(), v.to_owned()));
            }
        }
    }
    out
}

/// Whether `route` has an open ClientAccessPolicy (or Envoy Gateway policy).
fn has_policy(m: &Migration, route: &str) -> bool {
    open_policies(m)
        .iter()
        .any(|p| p["spec"]["targetRefs"].as_array().unwrap().iter().any(|t: &Value| t["name"] == route))
}

/// The deny-all `PathPrefix /` on app.example.com that keeps the host's
/// unmatched paths from a less specific route.
fn root_denied(m: &Migration) -> bool {
    let denied = routes(m, true);
    find(m, "HTTPRoute").iter().any(|r| {
        denied.iter().any(|d| r["metadata"]["name"] == d.as_str())
            && r["spec"]["hostnames"] == serde_json::json!(["app.example.com"])
            && r["spec"]["rules"].as_array().unwrap().iter().any(|rule| {
                rule["matches"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|mt| mt["path"]["value"] == "/" && mt["path"]["type"] == "PathPrefix")
            })
    })
}

/// HIGH-2, HIGH-3, HIGH-4: a host-less rule, a wildcard host's rule, or the
/// catch-all defaultBackend, beside app.example.com whose only Ingress has
/// an allow list: `GET app.example.com/api` is the host's root location in
/// ingress-nginx (403 outside the list, else a 404), so the output refuses
/// it with a deny-all `/` on the host, reported changed.
#[test]
fn a_named_hosts_unmatched_paths_stay_its_own() {
    let hostless =
        ing_at("web", "anyhost", 2019, "/api", &[]).replace("  - host: app.example.com\n    http:", "  - http:");
    let wild = ing_at("web", "wild", 2019, "/api", &[])
        .replace("  - host: app.example.com\n", "  - host: \"*.example.com\"\n");
    let catch = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: catch\n  namespace: web\n  creationTimestamp: \"2019-01-01T00:00:00Z\"\nspec:\n  ingressClassName: nginx\n  defaultBackend:\n    service:\n      name: catch-svc\n      port:\n        number: 80\n".to_owned();
    for target in [Target::Realip, Target::EnvoyGateway] {
        for (name, other) in [("host-less", &hostless), ("wildcard", &wild), ("catch-all", &catch)] {
            let docs =
                vec![controller_at("v1.15.1", &[], &[]), other.clone(), ing_at("web", "adm", 2022, "/x", &[ALLOW])];
            let m = run(&docs, target);
            let ctx = format!("{name} {target:?}:\n{}\n{}", realip_migrate::to_yaml(&m.objects), m.report.text());
            assert!(root_denied(&m), "{ctx}");
            let e = m.report.entries.iter().find(|e| e.key == "host app.example.com root");
            assert_eq!(e.map(|e| e.status), Some(Status::Changed), "{ctx}");
        }
        // Control: app.example.com routes `/` itself, nothing to add.
        let docs = vec![controller_at("v1.15.1", &[], &[]), wild.clone(), ing_at("web", "adm", 2022, "/", &[ALLOW])];
        let m = run(&docs, target);
        assert!(!m.report.entries.iter().any(|e| e.key == "host app.example.com root"), "{}", m.report.text());
    }
}

/// HIGH-1: in regex mode (any Ingress of the host with use-regex) ingress-nginx
/// sends `/api/admin…` to the longer regex location of `adm` (allow list);
/// the realip target widens adm's deny-all to `PathPrefix /` (nginx matched
/// case-insensitively), which `open`'s `PathPrefix /api` beat: /api/admin
/// was open to every client. Now the overlapping open route is dropped
/// (refused, reported not converted).
#[test]
fn a_widened_deny_is_not_beaten_by_a_longer_open_prefix() {
    let docs = vec![
        controller_at("v1.15.1", &[], &[]),
        ing_at("web", "open", 2020, "/api", &[]),
        ing_at("web", "rx", 2021, "/other", &[("use-regex", "true")]),
        ing_at("web", "adm", 2022, "/api/admin", &[ALLOW]),
    ];
    let m = run(&docs, Target::Realip);
    let ctx = format!("{}\n{}", realip_migrate::to_yaml(&m.objects), m.report.text());
    let leak = open_matches(&m).iter().any(|(n, _, _, v)| n == "open" && v == "/api") && !has_policy(&m, "open");
    assert!(!leak, "{ctx}");
    let e = m
        .report
        .entries
        .iter()
        .find(|e| e.object == "Ingress/web/open" && e.key.starts_with("path app.example.com/api"));
    assert_eq!(e.map(|e| e.status), Some(Status::NotConverted), "{ctx}");
    assert!(m.report.incomplete());
}

/// Whether a deny-all route holds `host` (any of its paths).
fn host_denied(m: &Migration, host: &str) -> bool {
    let denied = routes(m, true);
    find(m, "HTTPRoute").iter().any(|r| {
        denied.iter().any(|d| r["metadata"]["name"] == d.as_str())
            && r["spec"]["hostnames"] == serde_json::json!([host])
    })
}

/// Review 24 HIGH-1/2: in regex mode the overlap with a left-out location
/// is judged on its literal start (`/api/v[0-9]+/admin` overlaps an open
/// `/api/v1`), and an open Exact path of the same length or shorter that
/// the location matches case-insensitively (`/API/ADMIN` beside
/// `/api/admin`) is dropped too, on both targets: nginx tried the longer
/// (or, at equal length, reverse-lexicographically greater) regex first.
#[test]
fn regex_mode_overlaps_are_judged_on_the_literal_start_and_exact_paths() {
    let adm = ing_at("web", "adm", 2022, "/api/v[0-9]+/admin", &[ALLOW, ("use-regex", "true")]).replacen(
        "pathType: Prefix",
        "pathType: ImplementationSpecific",
        1,
    );
    let docs = vec![controller_at("v1.15.1", &[], &[]), ing_at("web", "open", 2020, "/api/v1", &[]), adm];
    let m = run(&docs, Target::Realip);
    let leak = open_matches(&m).iter().any(|(n, _, _, v)| n == "open" && v == "/api/v1") && !has_policy(&m, "open");
    assert!(!leak, "{}", m.report.text());
    let docs = vec![
        controller_at("v1.15.1", &[], &[]),
        ing_at("web", "open", 2020, "/API/ADMIN", &[]).replacen("pathType: Prefix", "pathType: Exact", 1),
        ing_at("web", "rx", 2021, "/other", &[("use-regex", "true")]),
        ing_at("web", "adm", 2022, "/api/admin", &[ALLOW]),
    ];
    for target in [Target::Realip, Target::EnvoyGateway] {
        let m = run(&docs, target);
        let leak =
            open_matches(&m).iter().any(|(n, _, _, v)| n == "open" && v == "/API/ADMIN") && !has_policy(&m, "open");
        assert!(!leak, "{target:?}\n{}", m.report.text());
    }
}

/// Review 24 HIGH-3: a server ingress-nginx creates with no path left in the
/// output (a rule with a host and no `http`; a host whose only path's
/// upstream a canary made) still has its root location (404 behind the
/// creating Ingress's allow list): a host-less or wildcard route must not
/// take its requests.
#[test]
fn a_server_with_no_path_left_keeps_its_requests() {
    const BARE: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: bare\n  namespace: web\n  creationTimestamp: \"2022-01-01T00:00:00Z\"\n  annotations:\n    nginx.ingress.kubernetes.io/allowlist-source-range: 192.0.2.0/24\nspec:\n  ingressClassName: nginx\n  rules:\n  - host: app.example.com\n";
    let hostless =
        ing_at("web", "anyhost", 2019, "/api", &[]).replace("  - host: app.example.com\n    http:", "  - http:");
    let wild = ing_at("web", "wild", 2019, "/api", &[])
        .replace("  - host: app.example.com\n", "  - host: \"*.example.com\"\n");
    for target in [Target::Realip, Target::EnvoyGateway] {
        for other in [&hostless, &wild] {
            let m = run(&[controller_at("v1.15.1", &[], &[]), other.clone(), BARE.to_owned()], target);
            assert!(host_denied(&m, "app.example.com"), "{target:?}\n{}", m.report.text());
        }
    }
    let cn = ing_at("web", "cn", 2018, "/c", &[("canary", "true"), ("canary-weight", "50")])
        .replace("app.example.com", "other.example.com")
        .replace("name: cn-svc", "name: shared");
    let main = ing_at("web", "main", 2018, "/c", &[]).replace("app.example.com", "other.example.com");
    let adm = ing_at("web", "adm", 2022, "/api", &[ALLOW]).replace("name: adm-svc", "name: shared");
    let m = run(&[controller_at("v1.15.1", &[], &[]), hostless, cn, main, adm], Target::Realip);
    assert!(host_denied(&m, "app.example.com"), "{}", m.report.text());
}

/// Review 26 HIGH-1: a left-out regex location's literal start is what
/// nginx's regex can begin with: a quantified character is optional
/// (`/a?dmin` matches `/dmin`), an alternation can match anything
/// (`/admin|/other`). Open routes it takes stay out on both targets
/// (checked with nginx: `GET /dmin`, `/other` → 403 there).
#[test]
fn a_regex_literal_start_stops_before_quantifiers_and_alternations() {
    for (adm_path, open_path, ty) in [
        ("/a?dmin", "/dmin", "Exact"),
        ("/a?dmin", "/dmin", "Prefix"),
        ("/xy*dmin", "/xdmin", "Exact"),
        ("/admin|/other", "/other", "Exact"),
        ("/admin|/other", "/other", "Prefix"),
    ] {
        // Envoy Gateway ranks its regex deny above every PathPrefix: only Exact can leak there.
        let targets: &[Target] =
            if ty == "Exact" { &[Target::Realip, Target::EnvoyGateway] } else { &[Target::Realip] };
        for &target in targets {
            let adm = ing_at("web", "adm", 2022, adm_path, &[ALLOW, ("use-regex", "true")]).replacen(
                "pathType: Prefix",
                "pathType: ImplementationSpecific",
                1,
            );
            let open =
                ing_at("web", "open", 2020, open_path, &[]).replacen("pathType: Prefix", &format!("pathType: {ty}"), 1);
            let m = run(&[controller_at("v1.15.1", &[], &[]), open, adm], target);
            let leak =
                open_matches(&m).iter().any(|(n, _, _, v)| n == "open" && v == open_path) && !has_policy(&m, "open");
            assert!(!leak, "{adm_path} vs {ty} {open_path} {target:?}\n{}", m.report.text());
        }
    }
}

/// Review 26 HIGH-2: a canary whose upstream a non-canary made is an
/// ordinary location of its server with the canary's annotations, so its
/// `use-regex` puts the host in regex mode: `adm`'s allow-listed `/admin`
/// then matched `/ADMIN` and `/adminx` case-insensitively in ingress-nginx,
/// which the output's case-sensitive PathPrefix left to `main`'s open `/`.
#[test]
fn a_canary_location_with_use_regex_puts_its_host_in_regex_mode() {
    let main = ing_at("web", "main", 2019, "/", &[]).replace("name: main-svc", "name: shared");
    let adm = ing_at("web", "adm", 2020, "/admin", &[ALLOW]);
    let cn = ing_at("web", "cn", 2021, "/other", &[("canary", "true"), ("canary-weight", "50"), ("use-regex", "true")])
        .replace("name: cn-svc", "name: shared");
    for target in [Target::Realip, Target::EnvoyGateway] {
        let m = run(&[controller_at("v1.15.1", &[], &[]), main.clone(), adm.clone(), cn.clone()], target);
        let om = open_matches(&m);
        let main_open =
            om.iter().any(|(n, _, t, v)| n == "main" && t == "PathPrefix" && v == "/") && !has_policy(&m, "main");
        let adm_case_sensitive = om.iter().any(|(n, _, t, v)| n == "adm" && t == "PathPrefix" && v == "/admin");
        assert!(!(main_open && adm_case_sensitive), "{target:?}\n{}", m.report.text());
    }
}
