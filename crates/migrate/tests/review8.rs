//! The eighth review's inputs (R8-1..R8-5): Ingresses ingress-nginx's store
//! drops or refuses (annotation risk, annotation validation, deep
//! inspection, empty allow-list items, unknown namespaces, boolean flags),
//! each as a table on both targets. The rule under test: nothing the
//! migration emits is more open than what ingress-nginx served.

mod common;

use common::{controller, controller_at, ing_at, ingress, open_policies, routes, run};
use realip_migrate::{Migration, Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];
const W: (&str, &str) = ("whitelist-source-range", "203.0.113.0/24");

fn not_converted(m: &Migration) -> bool {
    m.report.entries.iter().any(|e| e.status == Status::NotConverted)
}

/// One row: image tag, controller args, ConfigMap lines, a-open's
/// annotations and path, open routes, deny-all routes, text of the
/// not-converted entry that says ingress-nginx refuses a-open (None: not
/// refused).
struct Row {
    name: &'static str,
    tag: &'static str,
    args: &'static [&'static str],
    data: &'static [(&'static str, &'static str)],
    anns: &'static [(&'static str, &'static str)],
    path: &'static str,
    open: &'static [&'static str],
    denied: &'static [&'static str],
    note: Option<&'static str>,
}

const SNIPPET: (&str, &str) = ("configuration-snippet", "more_set_headers \"X-Frame-Options: DENY\";");

const V15: &str = "v1.15.1";

#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { name: "s1 snippet, allow-snippet on", tag: V15, args: &[], data: &[("allow-snippet-annotations", "true")], anns: &[SNIPPET], path: "/admin", open: &[], denied: &["a-open-denied"], note: Some("configuration-snippet is of risk Critical"), },
    Row { name: "s2 snippet", tag: V15, args: &[], data: &[], anns: &[SNIPPET], path: "/admin", open: &[], denied: &["a-open-denied"], note: Some("configuration-snippet is of risk Critical"), },
    Row { name: "s3 server-snippet", tag: V15, args: &[], data: &[], anns: &[("server-snippet", "add_header X-A b;")], path: "/admin", open: &[], denied: &["a-open-denied"], note: Some("server-snippet is of risk Critical"), },
    Row { name: "s4 mirror-target at Medium", tag: V15, args: &[], data: &[("annotations-risk-level", "Medium")], anns: &[("mirror-target", "https://mirror.example/x")], path: "/admin", open: &[], denied: &["a-open-denied"], note: Some("mirror-target is of risk High"), },
    Row { name: "s6 control: level Critical", tag: V15, args: &[], data: &[("allow-snippet-annotations", "true"), ("annotations-risk-level", "Critical")], anns: &[SNIPPET], path: "/admin", open: &["a-open"], denied: &[], note: None, },
    Row { name: "s7old control: v1.11 (Critical by default)", tag: "v1.11.5", args: &[], data: &[], anns: &[SNIPPET], path: "/admin", open: &["a-open"], denied: &[], note: None, },
    Row { name: "pre-v1.9: no risk check", tag: "v1.8.5", args: &[], data: &[("annotations-risk-level", "Low")], anns: &[SNIPPET], path: "/admin", open: &["a-open"], denied: &[], note: None, },
    Row { name: "v1 limit-rps 10r/s", tag: V15, args: &[], data: &[], anns: &[("limit-rps", "10r/s")], path: "/admin", open: &[], denied: &["a-open-denied"], note: Some("limit-rps `10r/s` is not an integer"), },
    Row { name: "limit-rps with a space", tag: V15, args: &[], data: &[], anns: &[("limit-rps", " 10")], path: "/admin", open: &[], denied: &["a-open-denied"], note: Some("limit-rps ` 10` is not an integer"), },
    Row { name: "v2 limit-whitelist not a list", tag: V15, args: &[], data: &[], anns: &[("limit-rps", "100"), ("limit-whitelist", "10.0.0.0/8 192.0.2.0/24")], path: "/admin", open: &[], denied: &["a-open-denied"], note: Some("limit-whitelist has `10.0.0.0/8 192.0.2.0/24`"), },
    Row { name: "limit-allowlist wins over a bad alias", tag: V15, args: &[], data: &[], anns: &[("limit-allowlist", "10.0.0.0/8"), ("limit-whitelist", "x")], path: "/admin", open: &["a-open"], denied: &[], note: None, },
    Row { name: "v1.11: validation off by default", tag: "v1.11.5", args: &[], data: &[], anns: &[("limit-rps", "10r/s")], path: "/admin", open: &["a-open"], denied: &[], note: None, },
    Row { name: "validation off by flag", tag: V15, args: &["--enable-annotation-validation=false"], data: &[], anns: &[("limit-rps", "10r/s")], path: "/admin", open: &["a-open"], denied: &[], note: None, },
    Row { name: "d1 deep-inspect path", tag: V15, args: &[], data: &[], anns: &[], path: "/admin/etc/nginx", open: &["y-adm"], denied: &["a-open-denied"], note: Some("path `/admin/etc/nginx` matches the deep inspector's pattern"), },
    Row { name: "deep-inspect alias;", tag: V15, args: &[], data: &[], anns: &[], path: "/admin/alias;x", open: &["y-adm"], denied: &["a-open-denied"], note: Some("`alias` followed by `;`"), },
    Row { name: "f4 --deep-inspect=false", tag: V15, args: &["--deep-inspect=false"], data: &[], anns: &[], path: "/admin/etc/nginx", open: &["a-open", "y-adm"], denied: &[], note: None, },
    Row { name: "unknown version: deny-all", tag: "latest", args: &[], data: &[], anns: &[SNIPPET], path: "/admin", open: &[], denied: &["a-open-denied"], note: None, },
];

/// R8-1 (s1–s6, v1, v2, d1 and controls): an older open a-open and a newer
/// y-adm with an allow list share app.example.com/admin. When ingress-nginx
/// refuses a-open, a restarted controller serves /admin from y-adm under its
/// allow list, while a running one may still serve an older version of
/// a-open there (migrate review 17 R17-4): a-open's path is deny-all, never
/// open, reported not converted; it is not "skipped".
#[test]
fn ingresses_the_annotation_extractor_or_deep_inspector_refuses_are_deny_all() {
    for target in BOTH {
        for r in ROWS {
            let docs = [
                controller_at(r.tag, r.args, r.data),
                ing_at("web", "a-open", 2020, r.path, r.anns),
                ing_at("web", "y-adm", 2021, "/admin", &[W]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            let mut open = routes(&m, false);
            open.sort();
            assert_eq!(open, r.open, "{} {target:?}:\n{text}", r.name);
            assert_eq!(routes(&m, true), r.denied, "{} {target:?}:\n{text}", r.name);
            let note = m.report.notes.iter().find(|n| n.starts_with("Ingress/web/a-open") && n.ends_with("skipped"));
            assert!(note.is_none(), "{}: {note:?}", r.name);
            let refused = m.report.entries.iter().find(|e| {
                e.object == "Ingress/web/a-open"
                    && e.status == Status::NotConverted
                    && e.why.contains("a running controller keeps serving the last version")
            });
            match r.note {
                Some(want) => {
                    let e = refused.unwrap_or_else(|| panic!("{}: no entry:\n{text}", r.name));
                    assert!(e.why.contains(want), "{}: {}", r.name, e.why);
                }
                None => assert!(refused.is_none(), "{}: {refused:?}", r.name),
            }
            if r.open.contains(&"y-adm") {
                assert!(!open_policies(&m).is_empty(), "{}: y-adm keeps its allow list", r.name);
            }
            if r.tag == "latest" {
                let e = m
                    .report
                    .entries
                    .iter()
                    .find(|e| e.key == "configuration-snippet" && e.why.contains("version is not known"));
                assert!(
                    e.is_some_and(|e| e.status == Status::NotConverted),
                    "{}: reported not converted:\n{text}",
                    r.name
                );
            }
        }
    }
}

/// R8-1 s5: a typo in annotations-risk-level is Low to ingress-nginx, which
/// then refuses both Ingresses (each has a Medium annotation): a restarted
/// controller serves nothing on /admin, a running one may still serve older
/// versions (R17-4), so /admin is deny-all and both are reported.
#[test]
fn a_risk_level_typo_is_low() {
    for target in BOTH {
        let docs = [
            controller_at("v1.15.1", &[], &[("annotations-risk-level", "Critcal")]),
            ing_at("web", "a-open", 2020, "/admin", &[("proxy-body-size", "8m")]),
            ing_at("web", "y-adm", 2021, "/admin", &[W]),
        ];
        let m = run(&docs, target);
        let text = m.report.text();
        assert!(routes(&m, false).is_empty(), "{target:?}:\n{text}");
        assert_eq!(routes(&m, true), ["a-open-denied"], "{target:?}:\n{text}");
        let refused = m
            .report
            .entries
            .iter()
            .filter(|e| {
                e.status == Status::NotConverted
                    && e.why.contains("above the ConfigMap's annotations-risk-level `Critcal`")
            })
            .count();
        assert_eq!(refused, 2, "{text}");
        assert_eq!(common::status(&m, "annotations-risk-level"), Status::Converted);
    }
}

/// R8-1 s7: on the current controller's defaults an Ingress with a harmless
/// configuration-snippet is refused, so a restarted controller serves its
/// path /api from the other Ingress's `/` under that allow list, and a
/// running one may still serve an older y-api there (R17-4): the migration
/// must not open /api, and leaves it deny-all (exit 1).
#[test]
fn a_refused_ingress_does_not_open_its_paths() {
    for target in BOTH {
        let docs = [
            controller_at("v1.15.1", &[], &[]),
            ing_at("web", "a-adm", 2020, "/", &[W]),
            ing_at("web", "y-api", 2021, "/api", &[SNIPPET]),
        ];
        let m = run(&docs, target);
        let text = m.report.text();
        assert_eq!(routes(&m, false), ["a-adm"], "{target:?}:\n{text}");
        assert_eq!(routes(&m, true), ["y-api-denied"], "{target:?}:\n{text}");
        assert!(!open_policies(&m).is_empty(), "a-adm keeps its allow list");
        assert!(not_converted(&m), "{target:?}: incomplete:\n{text}");
    }
}

#[test]
fn deep_inspect_patterns() {
    use realip_migrate::drops::deep_inspect_match as m;
    for (v, hit) in [
        ("/admin", false),
        ("/alias", false),
        ("/alias;", true),
        ("/x;alias", false),
        ("/aliasx/y;", true),
        ("/rootless;", true),
        ("/root", false),
        ("/etc/nginx", true),
        ("/etc/nginxx", true),
        ("/etc/hosts", false),
        ("/var/run/secrets/x", true),
        ("/a_by_lua", true),
        ("app.example.com", false),
    ] {
        assert_eq!(m(v).is_some(), hit, "{v}");
    }
}

/// R8-2 (tc1–tc4): an empty item in an allow or deny list (`a,`, `a,,b`,
/// `a, `) fails ingress-nginx's whole list: its location answers 503 to
/// every client. The Ingress is emitted deny-all and reported not
/// converted, never with the other items alone.
#[test]
fn an_empty_list_item_denies_every_client() {
    let table = [
        ("whitelist-source-range", "203.0.113.0/24,", true),
        ("denylist-source-range", "198.51.100.0/24,", true),
        ("whitelist-source-range", "203.0.113.0/24,,198.51.100.7", true),
        ("allowlist-source-range", "203.0.113.0/24, ", true),
        ("allowlist-source-range", "", true),
        ("whitelist-source-range", "203.0.113.0/24, 198.51.100.7", false),
        ("denylist-source-range", "198.51.100.0/24", false),
    ];
    for target in BOTH {
        for (k, v, denied) in table {
            let docs = [controller_at(V15, &[], &[]), ing_at("web", "a-adm", 2020, "/admin", &[(k, v)])];
            let m = run(&docs, target);
            let text = m.report.text();
            let e = m.report.entries.iter().find(|e| e.key == k).unwrap();
            if denied {
                assert_eq!(routes(&m, true), ["a-adm-denied"], "{k}: {v:?} {target:?}:\n{text}");
                assert!(routes(&m, false).is_empty() && open_policies(&m).is_empty(), "{k}: {v:?}:\n{text}");
                assert_eq!(e.status, Status::NotConverted, "{k}: {v:?}");
                assert!(e.why.contains("503"), "{}", e.why);
            } else {
                assert_eq!(routes(&m, false), ["a-adm"], "{k}: {v:?} {target:?}:\n{text}");
                assert_eq!(open_policies(&m).len(), 1, "{k}: {v:?}");
                assert_eq!(e.status, Status::Converted, "{k}: {v:?}");
            }
        }
    }
}

/// R8-3 (sel5): with --watch-namespace-selector and the restricted
/// Ingress's Namespace missing from the input, whether ingress-nginx served
/// it is not known. It must keep its path in the merge (deny-all), so the
/// newer open Ingress does not serve /admin.
#[test]
fn an_ingress_of_an_unknown_namespace_is_deny_all() {
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n  labels: {team: web}\n".to_owned();
    for target in BOTH {
        let docs = [
            controller_at(V15, &["--watch-namespace-selector=team!=other"], &[]),
            ns.clone(),
            ing_at("prod", "a-adm", 2020, "/admin", &[W]),
            ing_at("web", "y-open", 2021, "/admin", &[]),
        ];
        let m = run(&docs, target);
        let text = m.report.text();
        assert!(routes(&m, false).is_empty(), "{target:?}: /admin is not opened:\n{text}");
        assert_eq!(routes(&m, true), ["a-adm-denied"], "{target:?}:\n{text}");
        let e = m.report.entries.iter().find(|e| e.key == "--watch-namespace-selector").unwrap();
        assert_eq!(e.status, Status::NotConverted);
        assert!(e.why.contains("Namespace prod is not in the input") && e.why.contains("deny-all"), "{}", e.why);
        assert!(text.contains("shadowed by Ingress/prod/a-adm"), "{text}");
    }
}

/// R8-4 (f1, f2, f2b): a boolean flag followed by a separate `false` is
/// true to ingress-nginx (Go's flag parsing: only `--flag=false` sets
/// false; the next argument stays positional).
#[test]
fn boolean_flags_take_no_separate_value() {
    // (args, HTTPRoutes emitted)
    let table: [(&[&str], &[&str]); 4] = [
        (&["--watch-ingress-without-class", "\"false\""], &["a-adm"]),
        (&["--watch-ingress-without-class", "-v=2"], &["a-adm"]),
        (&["--watch-ingress-without-class=false"], &["y-open"]),
        (&[], &["y-open"]),
    ];
    for target in BOTH {
        for (args, want) in table {
            let classless = ing_at("web", "a-adm", 2020, "/admin", &[W]).replace("  ingressClassName: nginx\n", "");
            let docs = [controller_at(V15, args, &[]), classless, ing_at("web", "y-open", 2021, "/admin", &[])];
            let m = run(&docs, target);
            let text = m.report.text();
            assert_eq!(routes(&m, false), want, "{args:?} {target:?}:\n{text}");
            if want == ["a-adm"] {
                assert!(!open_policies(&m).is_empty(), "{args:?}: a-adm keeps its allow list");
            }
        }
    }
    // f1: --disable-catch-all "false" is true: the Ingress with a default backend is dropped.
    let backend = "  defaultBackend:\n    service:\n      name: catchall\n      port:\n        number: 80\n";
    for target in BOTH {
        let open = ingress("a-open", "/admin", &[], backend)
            .replacen("pathType: ImplementationSpecific", "pathType: Prefix", 1)
            .replacen("  namespace: web\n", "  namespace: web\n  creationTimestamp: \"2020-01-01T00:00:00Z\"\n", 1);
        let docs = [
            controller_at(V15, &["--disable-catch-all", "\"false\""], &[]),
            open,
            ing_at("web", "y-adm", 2021, "/admin", &[W]),
        ];
        let m = run(&docs, target);
        assert_eq!(routes(&m, false), ["y-adm"], "{target:?}:\n{}", m.report.text());
    }
}

/// R8-5: `--watch-namespace` is one namespace (`prod,web` is none that can
/// exist); with `--watch-namespace-selector` as well ingress-nginx does not
/// start (an error, exit 2); set-based selectors are evaluated;
/// `enable-annotation-validation` is a flag, not a ConfigMap key.
#[test]
fn watch_namespace_flags_and_set_based_selectors() {
    let ns = |name: &str, team: &str| {
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{team: {team}}}\n")
    };
    for target in BOTH {
        let ings = || [ing_at("prod", "a-adm", 2020, "/admin", &[W]), ing_at("web", "y-open", 2021, "/admin", &[])];
        // f3: a comma is part of the one namespace name.
        let [a, y] = ings();
        let m = run(&[controller_at(V15, &["--watch-namespace=prod,web"], &[]), a, y], target);
        assert!(routes(&m, false).is_empty() && routes(&m, true).is_empty(), "{}", m.report.text());
        assert_eq!(common::status(&m, "--watch-namespace"), Status::NotConverted);
        // Both flags: ingress-nginx refuses to start.
        let [a, y] = ings();
        let text = [controller_at(V15, &["--watch-namespace=prod", "--watch-namespace-selector=team=web"], &[]), a, y]
            .join("---\n");
        let objects = realip_kube::load_str(&text, "t.yaml").unwrap();
        let err = realip_migrate::migrate(&objects, &realip_migrate::Options { target, ..Default::default() })
            .unwrap_err()
            .to_string();
        assert!(err.contains("mutually exclusive") && err.contains("refuses to start"), "{err}");
        // sel4: set-based selectors are evaluated.
        for (sel, want) in [("team in (web, shop)", "y-open"), ("team notin (web)", "a-adm"), ("!team", "none")] {
            let [a, y] = ings();
            let arg = format!("\"--watch-namespace-selector={sel}\"");
            let docs = [controller_at(V15, &[&arg], &[]), ns("prod", "prod"), ns("web", "web"), a, y];
            let m = run(&docs, target);
            let got = routes(&m, false);
            let want: Vec<&str> = if want == "none" { vec![] } else { vec![want] };
            assert_eq!(got, want, "{sel} {target:?}:\n{}", m.report.text());
            assert!(routes(&m, true).is_empty(), "{sel}: the answer is known, nothing is deny-all");
        }
    }
    let m = run(&[controller_at(V15, &[], &[("enable-annotation-validation", "false")])], Target::Realip);
    let e = m.report.entries.iter().find(|e| e.key == "enable-annotation-validation").unwrap();
    assert_eq!(e.status, Status::Ignored);
    assert!(e.why.contains("not a ConfigMap key"), "{}", e.why);
}

/// R7-5: a setup that trusts nothing says so in the policy (no header
/// source, `trustedProxies: []`), and the report names that field; the
/// realip exemption text names one kind; the IngressClass warning lists only
/// Ingresses that are still converted.
#[test]
fn review7_lows() {
    let m = run(&[controller(&[])], Target::Realip);
    let p = common::one(&m, "ClientIPPolicy");
    assert_eq!(p["spec"]["trustedProxies"], serde_json::json!([]));
    assert!(p["spec"].get("sources").is_none(), "{p}");
    let e = m.report.entries.iter().find(|e| e.key == "use-forwarded-headers").unwrap();
    assert!(e.to.ends_with("trustedProxies: [] (no sources)"), "{}", e.to);

    let docs = [
        controller_at(V15, &[], &[]),
        ing_at("web", "l", 2020, "/", &[("limit-rps", "5"), ("limit-whitelist", "10.0.0.0/8")]),
    ];
    for (target, want) in [
        (Target::Realip, "ClientAccessPolicy has no exemption list"),
        (Target::EnvoyGateway, "SecurityPolicy and BackendTrafficPolicy have no exemption list"),
    ] {
        let m = run(&docs, target);
        let e = m.report.entries.iter().find(|e| e.key == "limit-whitelist").unwrap();
        assert!(e.why.contains(want), "{target:?}: {}", e.why);
    }

    // No IngressClass in the input: the warning names only a-open, not the
    // skipped y-snip (outside --watch-namespace); a refused one is named (it
    // is emitted, deny-all, R17-4).
    let docs = [
        controller_at(V15, &["--watch-namespace=web"], &[]),
        ing_at("web", "a-open", 2020, "/", &[]),
        ing_at("other", "y-snip", 2021, "/x", &[SNIPPET]),
        ing_at("web", "z-snip", 2021, "/z", &[SNIPPET]),
    ];
    let m = run(&docs, Target::Realip);
    let w = m.report.entries.iter().find(|e| e.object == "IngressClass/nginx").unwrap();
    assert!(w.why.contains("Ingress/web/a-open") && !w.why.contains("y-snip"), "{}", w.why);
    assert!(w.why.contains("Ingress/web/z-snip"), "{}", w.why);
}
