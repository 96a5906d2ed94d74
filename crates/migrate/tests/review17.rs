//! The seventeenth review's open findings, each a table on both targets:
//! an Ingress ingress-nginx's store refuses to sync (deep inspection, the
//! word blocklist, the annotation risk check, annotation validation) may
//! still be served in an older version by a running controller, so its
//! hosts and paths are emitted deny-all, never left to another Ingress
//! (R17-4), with the admission webhook's world named in the report
//! (review 13 L1); `forwarded-for-header` spelled otherwise than
//! `X-Forwarded-For` (R17-1); a `limit-req-status-code` /
//! `limit-conn-status-code` nginx refuses (R17-5).

mod common;

use common::{controller_at, find, ing_at, open_policies, routes, run};
use realip_migrate::{Migration, Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];
const W: (&str, &str) = ("whitelist-source-range", "203.0.113.0/24");
const SNIPPET: (&str, &str) = ("configuration-snippet", "more_set_headers \"X-Frame-Options: DENY\";");
const V15: &str = "v1.15.1";

/// ConfigMap lines or annotations.
type Lines<'a> = &'a [(&'a str, &'a str)];

/// A refused-Ingress row: name, controller args, ConfigMap lines, a-open's
/// annotations and path, open routes, deny-all routes, and the entry's key
/// with what it says failed (None: served).
type RefusedRow<'a> =
    (&'a str, &'a [&'a str], Lines<'a>, Lines<'a>, &'a str, &'a [&'a str], &'a [&'a str], Option<(&'a str, &'a str)>);

/// A webhook row: name, controller args, whether the configuration is in
/// the input, its failurePolicy, what the entry says.
type WebhookRow<'a> = (&'a str, &'a [&'a str], bool, &'a str, &'a [&'a str]);

/// The not-converted entry of `object` with `key`, if any.
fn not_converted<'a>(m: &'a Migration, object: &str, key: &str) -> Option<&'a realip_migrate::Entry> {
    m.report.entries.iter().find(|e| e.object == object && e.key == key && e.status == Status::NotConverted)
}

/// The ingress-nginx admission webhook's configuration, as the chart renders it.
const VWC: &str = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: ingress-nginx-admission\nwebhooks:\n- name: validate.nginx.ingress.kubernetes.io\n  admissionReviewVersions: [v1]\n  clientConfig:\n    service: {name: ingress-nginx-controller-admission, namespace: ingress-nginx, path: /networking/v1/ingresses, port: 443}\n  failurePolicy: FAILURE\n  rules:\n  - apiGroups: [networking.k8s.io]\n    apiVersions: [v1]\n    operations: [CREATE, UPDATE]\n    resources: [ingresses]\n  sideEffects: None\n";

/// R17-4: an older a-open and a newer y-adm (allow list) share
/// app.example.com/admin. ingress-nginx's store refuses a-open; a running
/// controller keeps the version of a-open it accepted before (open), a
/// restarted one serves y-adm there. Neither is known, so a-open's path is
/// deny-all (it takes /admin in the merge) and the migration is incomplete;
/// before the fix a-open was skipped and y-adm served /admin.
#[test]
fn ingresses_the_store_refuses_are_deny_all() {
    // (name, controller args, ConfigMap lines, a-open's annotations, a-open's path,
    //  open routes, deny-all routes, the entry's key, what it says failed; None: served)
    #[rustfmt::skip]
    let rows: &[RefusedRow] = &[
        ("risk: snippet above High", &[], &[], &[SNIPPET], "/admin", &[], &["a-open-denied"], Some(("configuration-snippet", "configuration-snippet is of risk Critical"))),
        ("risk: mirror-target at Medium", &[], &[("annotations-risk-level", "Medium")], &[("mirror-target", "https://mirror.example/x")], "/admin", &[], &["a-open-denied"], Some(("mirror-target", "mirror-target is of risk High"))),
        ("validation: limit-rps 10r/s", &[], &[], &[("limit-rps", "10r/s")], "/admin", &[], &["a-open-denied"], Some(("limit-rps", "limit-rps `10r/s` is not an integer"))),
        ("deep inspection: path", &[], &[], &[], "/admin/etc/nginx", &["y-adm"], &["a-open-denied"], Some(("--deep-inspect", "path `/admin/etc/nginx` matches the deep inspector's pattern"))),
        ("word blocklist", &[], &[("annotation-value-word-blocklist", "load_module,lua_package")], &[("upstream-vhost", "x.example;load_module y")], "/admin", &[], &["a-open-denied"], Some(("upstream-vhost", "contains the word `load_module`"))),
        ("control: level Critical", &[], &[("allow-snippet-annotations", "true"), ("annotations-risk-level", "Critical")], &[SNIPPET], "/admin", &["a-open"], &[], None),
        ("control: validation off", &["--enable-annotation-validation=false"], &[], &[("limit-rps", "10r/s")], "/admin", &["a-open"], &[], None),
        ("control: --deep-inspect=false", &["--deep-inspect=false"], &[], &[], "/admin/etc/nginx", &["a-open", "y-adm"], &[], None),
    ];
    for target in BOTH {
        for &(name, args, data, anns, path, open, denied, refused) in rows {
            let docs = [
                controller_at(V15, args, data),
                ing_at("web", "a-open", 2020, path, anns),
                ing_at("web", "y-adm", 2021, "/admin", &[W]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            let mut got = routes(&m, false);
            got.sort();
            assert_eq!(got, open, "{name} {target:?}:\n{text}");
            assert_eq!(routes(&m, true), denied, "{name} {target:?}:\n{text}");
            assert!(!m.report.notes.iter().any(|n| n.starts_with("Ingress/web/a-open") && n.ends_with("skipped")));
            let Some((key, failed)) = refused else {
                let refused = m
                    .report
                    .entries
                    .iter()
                    .any(|e| e.object == "Ingress/web/a-open" && e.why.contains("a running controller"));
                assert!(!refused, "{name} {target:?}:\n{text}");
                continue;
            };
            assert!(m.report.incomplete(), "{name} {target:?}: exit 1:\n{text}");
            let e = not_converted(&m, "Ingress/web/a-open", key)
                .unwrap_or_else(|| panic!("{name} {target:?}: no not-converted {key} entry:\n{text}"));
            for says in [
                failed,
                "Admission webhook off",
                "runs without --validating-webhook",
                "a running controller keeps serving the last version of it that it accepted",
                "after a restart serves nothing of it",
                "emitted deny-all",
            ] {
                assert!(e.why.contains(says), "{name} {target:?}: {says:?} missing: {}", e.why);
            }
            // y-adm keeps its allow list where it still serves a path of its own.
            if open.contains(&"y-adm") {
                assert!(!open_policies(&m).is_empty(), "{name} {target:?}:\n{text}");
            }
        }
    }
}

/// Review 13 L1: the report names the admission webhook's world for a
/// refused Ingress: on (the controller's `--validating-webhook` and a
/// ValidatingWebhookConfiguration sending it Ingresses), off (no flag), or
/// unknown (the flag without the configuration in the input). Deny-all in
/// every case.
#[test]
fn the_admission_webhook_world_is_named() {
    // (name, controller args, webhook configuration, failurePolicy, what the entry says)
    #[rustfmt::skip]
    let rows: &[WebhookRow] = &[
        ("on", &["--validating-webhook=:8443"], true, "Fail", &["Admission webhook on (ValidatingWebhookConfiguration ingress-nginx-admission (webhook validate.nginx.ingress.kubernetes.io, failurePolicy Fail)", "refuses this version at apply time, so the cluster keeps the Ingress's previous version"]),
        ("on, failurePolicy Ignore", &["--validating-webhook=:8443"], true, "Ignore", &["Admission webhook on", "failurePolicy is Ignore, so an Ingress applied while the webhook did not answer was admitted unchecked"]),
        ("flag, no configuration", &["--validating-webhook=:8443"], false, "Fail", &["is not known", "no ValidatingWebhookConfiguration sending it Ingresses is in the input", "With it off,", "With it on (the Helm chart's default)"]),
        ("configuration, no flag", &[], true, "Fail", &["Admission webhook off", "runs without --validating-webhook"]),
        ("nothing", &[], false, "Fail", &["Admission webhook off"]),
    ];
    for target in BOTH {
        for &(name, args, vwc, policy, says) in rows {
            let mut docs = vec![
                controller_at(V15, args, &[]),
                ing_at("web", "a-open", 2020, "/admin", &[SNIPPET]),
                ing_at("web", "y-adm", 2021, "/admin", &[W]),
            ];
            if vwc {
                docs.push(VWC.replace("FAILURE", policy));
            }
            let m = run(&docs, target);
            let text = m.report.text();
            assert_eq!(routes(&m, true), ["a-open-denied"], "{name} {target:?}:\n{text}");
            assert!(routes(&m, false).is_empty(), "{name} {target:?}:\n{text}");
            let e = not_converted(&m, "Ingress/web/a-open", "configuration-snippet")
                .unwrap_or_else(|| panic!("{name} {target:?}: no entry:\n{text}"));
            for s in says {
                assert!(e.why.contains(s), "{name} {target:?}: {s:?} missing: {}", e.why);
            }
        }
    }
}

/// R17-1: nginx's real_ip_header is the X-Forwarded-For type only for that
/// exact spelling; any other reads the first X-Forwarded-For line only. The
/// output keeps reading X-Forwarded-For (every line, the safer reading) and
/// reports the difference (changed), never "converted".
#[test]
fn forwarded_for_header_spelling() {
    // (forwarded-for-header, status, says the first line only)
    #[rustfmt::skip]
    let rows: &[(&str, Status, bool)] = &[
        ("x-forwarded-for", Status::Changed, true),
        ("X-FORWARDED-FOR", Status::Changed, true),
        (" x-forwarded-for", Status::Changed, true),
        ("control: X-Forwarded-For", Status::Converted, false),
    ];
    for target in BOTH {
        for &(header, want, first_line) in rows {
            let header = header.strip_prefix("control: ").unwrap_or(header);
            let m = run(
                &[
                    controller_at(V15, &[], &[("forwarded-for-header", header)]),
                    ing_at("web", "adm", 2021, "/admin", &[W]),
                ],
                target,
            );
            let text = m.report.text();
            let e = m.report.entries.iter().find(|e| e.key == "forwarded-for-header").unwrap();
            assert_eq!(e.status, want, "{header:?} {target:?}:\n{text}");
            assert_eq!(e.why.contains("FIRST X-Forwarded-For line"), first_line, "{header:?} {target:?}: {}", e.why);
            assert!(!e.to.is_empty(), "{header:?} {target:?}: names the field: {e:?}");
            // The policy reads X-Forwarded-For, the allow list stays.
            match target {
                Target::Realip => {
                    let p = find(&m, "ClientIPPolicy")[0];
                    assert_eq!(p["spec"]["sources"], serde_json::json!(["XForwardedFor"]), "{header:?}");
                }
                Target::EnvoyGateway => {
                    let p = find(&m, "ClientTrafficPolicy")[0];
                    assert!(p["spec"]["clientIPDetection"]["xForwardedFor"].is_object(), "{header:?}: {p}");
                }
            }
            assert_eq!(routes(&m, false), ["adm"], "{header:?} {target:?}:\n{text}");
            assert!(!open_policies(&m).is_empty(), "{header:?} {target:?}:\n{text}");
        }
    }
}

/// R17-5: nginx refuses `limit_req_status` / `limit_conn_status` outside
/// 400–599 (`nginx -t`: "value must be between 400 and 599"), and
/// nginx.tmpl writes both into every configuration: none loads, so what
/// ingress-nginx serves is not known. Every Ingress is deny-all, the key
/// not converted (exit 1). A value ingress-nginx cannot parse keeps 503.
#[test]
fn a_status_code_nginx_refuses() {
    // (key, value, nginx refuses it)
    #[rustfmt::skip]
    let rows: &[(&str, &str, bool)] = &[
        ("limit-req-status-code", "600", true),
        ("limit-req-status-code", "200", true),
        ("limit-req-status-code", "399", true),
        ("limit-req-status-code", "0", true),
        ("limit-req-status-code", "", true),
        ("limit-req-status-code", "-1", true),
        ("limit-req-status-code", "0x258", true),
        ("limit-conn-status-code", "999", true),
        ("control: 429", "429", false),
        ("control: 400", "400", false),
        ("control: 599", "599", false),
        ("control: octal 0655 = 429", "0655", false),
        ("control: not a number keeps 503", "429s", false),
        ("control: limit-conn 503", "503", false),
    ];
    for target in BOTH {
        for &(key, value, refused) in rows {
            let key = match key.strip_prefix("control: ") {
                Some(_) if key.contains("limit-conn") => "limit-conn-status-code",
                Some(_) => "limit-req-status-code",
                None => key,
            };
            let m = run(
                &[
                    controller_at(V15, &[], &[(key, value)]),
                    ing_at("web", "adm", 2021, "/admin", &[W, ("limit-rps", "10")]),
                    ing_at("web", "shop", 2021, "/shop", &[]),
                ],
                target,
            );
            let text = m.report.text();
            let e = m.report.entries.iter().find(|e| e.key == key).unwrap();
            assert_eq!(
                e.why.contains("is not a status nginx accepts here (400 to 599)"),
                refused,
                "{key} {value:?} {target:?}:\n{text}"
            );
            if refused {
                assert_eq!(e.status, Status::NotConverted, "{key} {value:?} {target:?}:\n{text}");
                assert!(m.report.incomplete());
                let mut denied = routes(&m, true);
                denied.sort();
                assert_eq!(denied, ["adm-denied", "shop-denied"], "{key} {value:?} {target:?}:\n{text}");
                assert!(routes(&m, false).is_empty(), "{key} {value:?} {target:?}:\n{text}");
                assert!(open_policies(&m).is_empty(), "{key} {value:?} {target:?}:\n{text}");
                assert!(text.contains(&format!(
                    "nginx refuses every configuration ingress-nginx renders with the ConfigMap's {key}"
                )));
            } else {
                let mut open = routes(&m, false);
                open.sort();
                assert_eq!(open, ["adm", "shop"], "{key} {value:?} {target:?}:\n{text}");
                if key == "limit-req-status-code" {
                    let want = if value == "429" || value == "0655" { Status::Converted } else { Status::Changed };
                    assert_eq!(e.status, want, "{key} {value:?} {target:?}:\n{text}");
                    if value == "429s" {
                        assert!(e.why.contains("answered 503 (`429s` is not an integer"), "{}", e.why);
                    }
                }
            }
        }
    }
}
