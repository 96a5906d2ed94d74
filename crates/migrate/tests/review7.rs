//! The seventh review's inputs (R7-1..R7-4): controller settings that make
//! ingress-nginx drop an Ingress or leave a ConfigMap value at its
//! default, each as a table on both targets.

mod common;

use common::{controller, ingress, open_policies, routes, run, status};
use realip_migrate::{Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];

/// R7-4: ConfigMap booleans are parsed like Go's ParseBool, which does not
/// trim: `" true"` is invalid to ingress-nginx, so XFF stays untrusted.
#[test]
fn configmap_booleans_are_not_trimmed() {
    // (value, XFF trusted, report status of use-forwarded-headers)
    let table = [
        ("true", true, Status::Converted),
        (" true", false, Status::NotConverted),
        ("true ", false, Status::NotConverted),
        ("TRUE", true, Status::Converted),
        ("yes", false, Status::NotConverted),
    ];
    for target in BOTH {
        for (value, trusted, want) in table {
            let docs = [
                controller(&[("use-forwarded-headers", value), ("proxy-real-ip-cidr", "10.0.0.0/16")]),
                ingress("a", "/", &[("whitelist-source-range", "203.0.113.0/24")], ""),
            ];
            let m = run(&docs, target);
            assert_eq!(status(&m, "use-forwarded-headers"), want, "{value:?} {target:?}:\n{}", m.report.text());
            let out = realip_migrate::to_yaml(&m.objects);
            assert_eq!(out.contains("10.0.0.0/16"), trusted, "{value:?} {target:?}: 10.0.0.0/16 trusted?\n{out}");
            if !trusted {
                let e = m.report.entries.iter().find(|e| e.key == "use-forwarded-headers").unwrap();
                assert!(e.why.contains("not a boolean"), "{value:?}: {}", e.why);
                assert_eq!(e.value, value, "the report shows the value as written");
            }
            if want == Status::Converted {
                assert_eq!(routes(&m, false), ["a"], "{value:?} {target:?}");
                assert!(!open_policies(&m).is_empty(), "{value:?} {target:?}: the allow list is emitted");
            }
        }
    }
}

/// The common controller with `extra` args added after `--ingress-class`.
fn controller_with(args: &[&str], data: &[(&str, &str)]) -> String {
    let extra: String = args.iter().fold(String::new(), |acc, a| acc + "\n        - " + a);
    controller(data).replacen("- --ingress-class=nginx", &format!("- --ingress-class=nginx{extra}"), 1)
}

/// An Ingress like [`ingress`] in namespace `ns`, created at `year`.
fn ing_at(ns: &str, name: &str, year: u32, annotations: &[(&str, &str)], extra_spec: &str) -> String {
    ingress(name, "/admin", annotations, extra_spec)
        .replacen("pathType: ImplementationSpecific", "pathType: Prefix", 1)
        .replacen(
            "  namespace: web\n",
            &format!("  namespace: {ns}\n  creationTimestamp: \"{year}-01-01T00:00:00Z\"\n"),
            1,
        )
}

const W: (&str, &str) = ("whitelist-source-range", "203.0.113.0/24");

fn namespace(name: &str, labels: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\n")
}

/// Controller args, extra documents, HTTPRoutes emitted, deny-all ones, exit-1 entry expected.
type NsRow = (Vec<&'static str>, Vec<String>, Vec<&'static str>, Vec<&'static str>, bool);

/// R7-1 (p5): an Ingress outside --watch-namespace / the selector is never
/// emitted, so it cannot open or shadow a restricted path. When whether the
/// selector matches is not known (R8-3), the Ingress is emitted deny-all
/// and keeps its paths in the merge.
#[test]
fn unwatched_namespaces_are_left_out() {
    // (controller args, extra docs, HTTPRoutes emitted, deny-all ones, exit-1 entry expected)
    let table: Vec<NsRow> = vec![
        (vec!["--watch-namespace=prod"], vec![], vec!["y-adm"], vec![], false),
        (vec!["--watch-namespace=$(POD_NAMESPACE)"], vec![], vec![], vec![], false),
        // One namespace, literally `web,prod` (R8-5): nothing is served.
        (vec!["--watch-namespace=web,prod"], vec![], vec![], vec![], false),
        (vec!["--watch-namespace="], vec![], vec!["a-open"], vec![], false),
        (vec!["--watch-namespace-selector=team=prod"], vec![], vec![], vec!["a-open-denied"], true),
        (
            vec!["--watch-namespace-selector=team=prod"],
            vec![namespace("web", "team: dev"), namespace("prod", "team: prod")],
            vec!["y-adm"],
            vec![],
            false,
        ),
        (
            vec!["--watch-namespace-selector=team in (prod)"],
            vec![namespace("web", "team: dev"), namespace("prod", "team: prod")],
            vec!["y-adm"],
            vec![],
            false,
        ),
    ];
    for target in BOTH {
        for (args, extra, want, denied, unknown) in &table {
            let mut docs = vec![
                controller_with(args, &[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16")]),
                ing_at("web", "a-open", 2020, &[], ""),
                ing_at("prod", "y-adm", 2021, &[W], ""),
            ];
            docs.extend(extra.iter().cloned());
            let m = run(&docs, target);
            let mut got = routes(&m, false);
            got.sort();
            assert_eq!(got, *want, "{args:?} {target:?}:\n{}", m.report.text());
            assert_eq!(routes(&m, true), *denied, "{args:?} {target:?}:\n{}", m.report.text());
            let text = m.report.text();
            if !want.contains(&"a-open") && denied.is_empty() {
                assert!(!text.contains("shadowed by"), "{args:?}: a-open is not served, so shadows nothing:\n{text}");
            }
            let entry = m
                .report
                .entries
                .iter()
                .any(|e| e.key == "--watch-namespace-selector" && e.status == Status::NotConverted);
            assert_eq!(entry, *unknown, "{args:?} {target:?}:\n{text}");
            if want.contains(&"y-adm") {
                assert!(!open_policies(&m).is_empty(), "{args:?}: y-adm keeps its allow list");
            }
        }
    }
}

/// R7-2 (q5, q6): with --disable-catch-all=true ingress-nginx ignores every
/// Ingress that has spec.defaultBackend, its rules included.
#[test]
fn disable_catch_all_drops_ingresses_with_a_default_backend() {
    let backend = "  defaultBackend:\n    service:\n      name: catchall\n      port:\n        number: 80\n";
    // (controller args, with rules, HTTPRoutes emitted)
    let table: Vec<(Vec<&str>, bool, Vec<&str>)> = vec![
        (vec!["--disable-catch-all=true"], true, vec!["y-adm"]),
        (vec!["--disable-catch-all"], true, vec!["y-adm"]),
        (vec!["--disable-catch-all=false"], true, vec!["a-open"]),
        (vec!["--disable-catch-all=true"], false, vec!["y-adm"]),
    ];
    for target in BOTH {
        for (args, rules, want) in &table {
            let open = if *rules {
                ing_at("web", "a-open", 2020, &[], backend)
            } else {
                // Only a default backend (q5): the rules part is cut.
                let i = ing_at("web", "a-open", 2020, &[], backend);
                i[..i.find("  rules:").unwrap()].to_owned()
            };
            let docs = [
                controller_with(args, &[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16")]),
                open,
                ing_at("web", "y-adm", 2021, &[W], ""),
            ];
            let m = run(&docs, target);
            let got: Vec<String> = routes(&m, false).into_iter().filter(|r| !r.ends_with("-default-backend")).collect();
            let text = m.report.text();
            assert_eq!(got, *want, "{args:?} rules={rules} {target:?}:\n{text}");
            let skipped = text.contains("--disable-catch-all=true: ingress-nginx ignores the whole Ingress");
            assert_eq!(skipped, !want.contains(&"a-open"), "{args:?} {target:?}:\n{text}");
            if skipped {
                assert!(
                    !realip_migrate::to_yaml(&m.objects).contains("catchall"),
                    "{args:?}: the catch-all is not emitted"
                );
                assert!(!open_policies(&m).is_empty(), "{args:?}: y-adm keeps its allow list");
            }
        }
    }
}

/// Blocklist, a-open's annotations, open HTTPRoutes, word named in the entry.
type WordRow = (&'static str, Vec<(&'static str, &'static str)>, Vec<&'static str>, Option<&'static str>);

/// R7-3 (q7): ingress-nginx refuses an Ingress one of whose prefixed
/// annotation values contains a word of `annotation-value-word-blocklist`.
/// A running controller may still serve an older version of it (R17-4), so
/// the older a-open is deny-all on /admin (not left to y-adm), reported not
/// converted naming the annotation and the word.
#[test]
fn blocklisted_annotation_values_are_deny_all() {
    let list = "load_module,lua_package,_by_lua,location,root,proxy_pass,serviceaccount";
    // (blocklist, a-open's annotations, open HTTPRoutes, word named in the entry)
    let table: Vec<WordRow> = vec![
        (list, vec![("app-root", "/rootapp")], vec![], Some("`root`")),
        (list, vec![("app-root", "/ROOTapp")], vec!["a-open"], None),
        (list, vec![("example.com/x", "root")], vec!["a-open"], None),
        ("", vec![("app-root", "/rootapp")], vec!["a-open"], None),
        ("root,", vec![("app-root", "/app")], vec![], Some("an empty word")),
        ("root, app", vec![("app-root", "/app")], vec!["a-open"], None),
        ("root, app", vec![("app-root", "/x app")], vec![], Some("` app`")),
    ];
    for target in BOTH {
        for (blocklist, anns, want, word) in &table {
            let mut data = vec![("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16")];
            if !blocklist.is_empty() {
                data.push(("annotation-value-word-blocklist", blocklist));
            }
            let docs =
                [controller(&data), ing_at("web", "a-open", 2020, anns, ""), ing_at("web", "y-adm", 2021, &[W], "")];
            let m = run(&docs, target);
            let text = m.report.text();
            assert_eq!(routes(&m, false), *want, "{blocklist:?} {anns:?} {target:?}:\n{text}");
            let entry = m
                .report
                .entries
                .iter()
                .find(|e| e.why.contains("annotation-value-word-blocklist") && e.status == Status::NotConverted);
            assert!(!m.report.notes.iter().any(|n| n.contains("annotation-value-word-blocklist")), "{text}");
            match word {
                Some(w) => {
                    let e = entry.unwrap_or_else(|| panic!("{blocklist:?}: no entry:\n{text}"));
                    assert!(e.why.contains(w) && e.object == "Ingress/web/a-open", "{e:?}");
                    assert!(e.why.contains("a running controller keeps serving the last version"), "{e:?}");
                    assert_eq!(routes(&m, true), ["a-open-denied"], "{blocklist:?} {anns:?} {target:?}:\n{text}");
                }
                None => assert!(entry.is_none(), "{blocklist:?} {anns:?}: {entry:?}"),
            }
            if !blocklist.is_empty() {
                assert_eq!(status(&m, "annotation-value-word-blocklist"), Status::Converted);
            }
        }
    }
}
