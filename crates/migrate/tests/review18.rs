//! The eighteenth review's findings, each a table on both targets: an
//! Ingress that only ingress-nginx's admission webhook refuses (snippet
//! annotations not allowed, `strict-validate-path-type`, the default
//! annotation prefix under `--annotations-prefix`, the word blocklist with
//! its words trimmed) is deny-all when the webhook is on or not known, and
//! what the store does when it is off.

mod common;

use common::{controller_at, ing_at, open_policies, routes, run};
use realip_migrate::{Migration, Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];
const W: (&str, &str) = ("whitelist-source-range", "203.0.113.0/24");
const SNIPPET: (&str, &str) = ("configuration-snippet", "more_set_headers \"X-Frame-Options: DENY\";");

/// ConfigMap lines or annotations.
type Lines<'a> = &'a [(&'a str, &'a str)];

/// The ingress-nginx admission webhook's configuration, as the chart renders it.
const VWC: &str = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: ingress-nginx-admission\nwebhooks:\n- name: validate.nginx.ingress.kubernetes.io\n  admissionReviewVersions: [v1]\n  clientConfig:\n    service: {name: ingress-nginx-controller-admission, namespace: ingress-nginx, path: /networking/v1/ingresses, port: 443}\n  failurePolicy: Fail\n  rules:\n  - apiGroups: [networking.k8s.io]\n    apiVersions: [v1]\n    operations: [CREATE, UPDATE]\n    resources: [ingresses]\n  sideEffects: None\n";

/// The admission webhook's world of a row.
#[derive(Clone, Copy, Debug)]
enum Hook {
    On,
    Unknown,
    Off,
}

/// A webhook-refusal row: name, controller tag, args, ConfigMap lines, t's
/// annotations and path, and the entry's key with what it says failed
/// (None: the webhook passes it).
type Row<'a> = (&'a str, &'a str, &'a [&'a str], Lines<'a>, Lines<'a>, &'a str, Option<(&'a str, &'a str)>);

fn entry<'a>(m: &'a Migration, key: &str) -> Option<&'a realip_migrate::Entry> {
    m.report.entries.iter().find(|e| e.object == "Ingress/web/t" && e.key == key && e.status == Status::NotConverted)
}

/// HIGH: `CheckIngress` refuses more than the store. With the webhook on
/// or not known, such an Ingress as written could not have been applied
/// (or only before the webhook): deny-all, not converted. With it off the
/// store serves it (snippets and other-prefix annotations ignored), so its
/// route is open. Before the fix every row's t was open, exit 0.
#[test]
fn ingresses_only_the_webhook_refuses() {
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("snippets not allowed (v1.11 default)", "v1.11.3", &[], &[], &[SNIPPET], "/admin", Some(("configuration-snippet", "Snippet directives are disabled"))),
        ("snippets not allowed, level Critical (v1.12+)", "v1.15.1", &[], &[("annotations-risk-level", "Critical")], &[SNIPPET], "/admin", Some(("configuration-snippet", "Snippet directives are disabled"))),
        ("snippet key of another prefix", "v1.11.3", &[], &[], &[("example.com/server-snippet", "x")], "/admin", Some(("example.com/server-snippet", "Snippet directives are disabled"))),
        ("strict path type (v1.12+ default)", "v1.15.1", &[], &[], &[], "/api/v1/items:search", Some(("pathType", "strict-validate-path-type is on by default since v1.12"))),
        ("strict path type set on v1.11", "v1.11.3", &[], &[("strict-validate-path-type", "true")], &[], "/api/v1/items:search", Some(("pathType", "the ConfigMap sets strict-validate-path-type to true"))),
        ("default prefix under a custom one", "v1.15.1", &["--annotations-prefix=custom.io"], &[], &[W], "/admin", Some(("nginx.ingress.kubernetes.io/whitelist-source-range", "custom annotation prefix defined"))),
        ("blocklist words trimmed", "v1.15.1", &[], &[("annotation-value-word-blocklist", "load_module, 10")], &[("limit-rps", "10")], "/admin", Some(("limit-rps", "a word of the ConfigMap's annotation-value-word-blocklist once trimmed"))),
        ("control: snippets allowed (v1.11)", "v1.11.3", &[], &[("allow-snippet-annotations", "true")], &[SNIPPET], "/admin", None),
        ("control: strict path type off", "v1.15.1", &[], &[("strict-validate-path-type", "false")], &[], "/api/v1/items:search", None),
        ("control: strict path type default off (v1.11)", "v1.11.3", &[], &[], &[], "/api/v1/items:search", None),
        ("control: a path the regex passes", "v1.15.1", &[], &[], &[], "/api/v1/items.search_x-y", None),
        ("control: custom prefix, own annotations", "v1.15.1", &["--annotations-prefix=custom.io"], &[], &[("custom.io/whitelist-source-range", "203.0.113.0/24")], "/admin", None),
        ("control: blocklist words not in the value", "v1.15.1", &[], &[("annotation-value-word-blocklist", "load_module, lua_package")], &[("limit-rps", "10")], "/admin", None),
    ];
    for target in BOTH {
        for &(name, tag, args, data, anns, path, refused) in rows {
            for hook in [Hook::On, Hook::Unknown, Hook::Off] {
                let mut all_args = args.to_vec();
                if !matches!(hook, Hook::Off) {
                    all_args.push("--validating-webhook=:8443");
                }
                let mut docs = vec![
                    controller_at(tag, &all_args, data),
                    ing_at("web", "open", 2020, "/", &[]),
                    ing_at("web", "t", 2021, path, anns),
                ];
                if matches!(hook, Hook::On) {
                    docs.push(VWC.to_owned());
                }
                let m = run(&docs, target);
                let text = m.report.text();
                let ctx = format!("{name} {hook:?} {target:?}:\n{text}");
                let refused = refused.filter(|_| !matches!(hook, Hook::Off));
                let Some((key, says)) = refused else {
                    let mut open = routes(&m, false);
                    open.sort();
                    assert_eq!(open, ["open", "t"], "{ctx}");
                    assert!(
                        !m.report.entries.iter().any(|e| e.why.contains("admission webhook refuses the Ingress")),
                        "{ctx}"
                    );
                    continue;
                };
                assert_eq!(routes(&m, true), ["t-denied"], "{ctx}");
                assert_eq!(routes(&m, false), ["open"], "{ctx}");
                assert!(m.report.incomplete(), "exit 1: {ctx}");
                let e = entry(&m, key).unwrap_or_else(|| panic!("no not-converted {key} entry: {ctx}"));
                let world = match hook {
                    Hook::On => "Admission webhook on",
                    _ => "With it off, ingress-nginx serves this version as its store reads it",
                };
                for s in [says, world, "refuses this version at apply time", "emitted deny-all"] {
                    assert!(e.why.contains(s), "{s:?} missing: {ctx}");
                }
                // One entry for the key: the refusal replaces the annotation's own reading.
                assert_eq!(m.report.entries.iter().filter(|e| e.object == "Ingress/web/t" && e.key == key).count(), 1);
            }
        }
    }
}

/// HIGH, webhook off: with `--annotations-prefix` another, the store reads
/// none of the default prefix's annotations; the allow list is reported
/// ignored (before the fix: nothing said), and /admin is open as in
/// ingress-nginx.
#[test]
fn default_prefix_annotations_are_reported_ignored() {
    for target in BOTH {
        let m = run(
            &[
                controller_at("v1.15.1", &["--annotations-prefix=custom.io"], &[]),
                ing_at("web", "t", 2021, "/admin", &[W]),
            ],
            target,
        );
        let text = m.report.text();
        let e = m
            .report
            .entries
            .iter()
            .find(|e| e.key == "nginx.ingress.kubernetes.io/whitelist-source-range")
            .unwrap_or_else(|| panic!("{target:?}: no entry:\n{text}"));
        assert_eq!(e.status, Status::Ignored, "{target:?}:\n{text}");
        assert!(e.why.contains("--annotations-prefix=custom.io"), "{}", e.why);
        assert_eq!(routes(&m, false), ["t"], "{target:?}:\n{text}");
        assert!(open_policies(&m).is_empty(), "{target:?}:\n{text}");
    }
}

/// MED1: a canary ingress-nginx may not serve (here its current version the
/// admission webhook refuses) made the upstream of t's allow-listed /admin
/// (NoServer). The path was dropped as if the canary were certainly served,
/// so /admin fell to `open`'s `/` route: open to every client. With the
/// canary in doubt /admin may be served as written or not at all: deny-all.
/// Control: the same canary without the snippet is served, /admin is
/// certainly not (no route, as ingress-nginx's other locations answer).
#[test]
fn a_doubtful_canary_does_not_open_the_path_whose_upstream_it_made() {
    for target in BOTH {
        for snippet in [true, false] {
            let mut anns = vec![("canary", "true"), ("canary-weight", "10")];
            if snippet {
                anns.push(SNIPPET);
            }
            let canary = ing_at("web", "c", 2019, "/other", &anns).replace("name: c-svc", "name: t-svc");
            let docs = vec![
                controller_at("v1.11.3", &["--validating-webhook=:8443"], &[]),
                VWC.to_owned(),
                ing_at("web", "open", 2018, "/", &[]),
                ing_at("web", "t", 2021, "/admin", &[W]),
                canary,
            ];
            let m = run(&docs, target);
            let ctx =
                format!("snippet {snippet} {target:?}:\n{}\n{}", m.report.text(), realip_migrate::to_yaml(&m.objects));
            let e = m.report.entries.iter().find(|e| {
                e.object == "Ingress/web/t"
                    && e.key.starts_with("path app.example.com/admin")
                    && e.status == Status::NotConverted
            });
            let e = e.unwrap_or_else(|| panic!("no not-converted /admin entry: {ctx}"));
            assert!(m.report.incomplete(), "exit 1: {ctx}");
            if snippet {
                assert!(routes(&m, true).contains(&"t-denied".to_owned()), "{ctx}");
                assert!(e.why.contains("whether ingress-nginx serves this path is not known"), "{ctx}");
            } else {
                assert!(!routes(&m, true).contains(&"t-denied".to_owned()), "{ctx}");
                assert!(e.why.contains("getBackendServers skips every path"), "{ctx}");
            }
            assert!(!routes(&m, false).contains(&"t".to_owned()), "{ctx}");
        }
    }
}

/// MED2: settings nginx refuses in every configuration ingress-nginx
/// renders (a proxy-real-ip-cidr entry that is no CIDR, a
/// forwarded-for-header that splits its directives, a burst of 0 where no
/// admission webhook runs `nginx -t`) fail every reload: what ingress-nginx
/// serves is not known, so every Ingress is deny-all, the open one too.
/// Before the fix only the Ingresses with restrictions were left out.
#[test]
fn settings_nginx_refuses_leave_every_ingress_out() {
    const LIMIT: [(&str, &str); 2] = [("limit-rps", "10"), ("limit-burst-multiplier", "0")];
    // name, tag, webhook, ConfigMap lines, t's annotations, every Ingress out
    // (else only t), the entry that says why (object, key).
    type Case<'a> = (&'a str, &'a str, Hook, Lines<'a>, Lines<'a>, bool, (&'a str, &'a str));
    const CM: &str = "ConfigMap/ingress-nginx/ingress-nginx-controller";
    #[rustfmt::skip]
    let cases: &[Case] = &[
        ("cidr /33", "v1.15.1", Hook::Off, &[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/33")], &[], true, (CM, "proxy-real-ip-cidr")),
        ("cidr typo beside a good one", "v1.15.1", Hook::Off, &[("use-proxy-protocol", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16, 10.1.0.0/1b")], &[], true, (CM, "proxy-real-ip-cidr")),
        ("control: cidr /33 with real-IP off", "v1.15.1", Hook::Off, &[("proxy-real-ip-cidr", "10.0.0.0/33")], &[], false, ("", "")),
        ("header with a space", "v1.15.1", Hook::Off, &[("forwarded-for-header", "X Client")], &[], true, (CM, "forwarded-for-header")),
        ("header empty, real-IP on", "v1.15.1", Hook::Off, &[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16"), ("forwarded-for-header", "")], &[], true, (CM, "forwarded-for-header")),
        ("control: header empty, real-IP off", "v1.15.1", Hook::Off, &[("forwarded-for-header", "")], &[], false, ("", "")),
        ("burst 0, webhook tests (v1.11.4)", "v1.11.4", Hook::On, &[], &LIMIT, false, ("Ingress/web/t", "limit-burst-multiplier")),
        ("burst 0, webhook no longer tests (v1.11.5)", "v1.11.5", Hook::On, &[], &LIMIT, true, ("Ingress/web/t", "limit-burst-multiplier")),
        ("burst 0, v1.12.1", "v1.12.1", Hook::On, &[], &LIMIT, true, ("Ingress/web/t", "limit-burst-multiplier")),
        ("burst 0, webhook off (v1.11.4)", "v1.11.4", Hook::Off, &[], &LIMIT, true, ("Ingress/web/t", "limit-burst-multiplier")),
        ("burst 0, webhook not known (v1.11.4)", "v1.11.4", Hook::Unknown, &[], &LIMIT, true, ("Ingress/web/t", "limit-burst-multiplier")),
    ];
    for target in BOTH {
        for &(name, tag, hook, data, anns, all, (object, key)) in cases {
            let mut docs = vec![
                common::controller(data).replacen("controller:v1.15.1", &format!("controller:{tag}"), 1),
                ing_at("web", "open", 2020, "/", &[]),
                ing_at("web", "t", 2021, "/admin", anns),
            ];
            if !matches!(hook, Hook::Off) {
                docs[0] = docs[0].replacen(
                    "- --ingress-class=nginx",
                    "- --ingress-class=nginx\n        - --validating-webhook=:8443",
                    1,
                );
            }
            if matches!(hook, Hook::On) {
                docs.push(VWC.to_owned());
            }
            let m = run(&docs, target);
            let ctx = format!("{name} {target:?}:\n{}", m.report.text());
            if object.is_empty() {
                assert_eq!(routes(&m, false), ["open", "t"], "{ctx}");
                continue;
            }
            assert!(m.report.incomplete(), "exit 1: {ctx}");
            let e = m
                .report
                .entries
                .iter()
                .find(|e| e.object == object && e.key == key && e.status == Status::NotConverted);
            assert!(e.is_some(), "no not-converted {object} {key}: {ctx}");
            if all {
                assert_eq!(routes(&m, false), Vec::<String>::new(), "{ctx}");
                let mut denied = routes(&m, true);
                denied.sort();
                assert_eq!(denied, ["open-denied", "t-denied"], "{ctx}");
                assert!(
                    m.report
                        .notes
                        .iter()
                        .any(|n| n.contains("Ingress/web/open") && n.contains("nginx refuses every configuration")),
                    "{ctx}"
                );
            } else {
                assert_eq!(routes(&m, false), ["open"], "{ctx}");
                assert_eq!(routes(&m, true), ["t-denied"], "{ctx}");
            }
        }
    }
}

/// MED3: without the controller's Service in the input, and nothing
/// trusted, whether the client ingress-nginx saw was a node (kube-proxy
/// SNAT, `externalTrafficPolicy: Cluster`, Kubernetes' default) is not
/// known: an allow list keyed on it is not converted as a client
/// restriction (exit 1). Before the fix the run said nothing and exited 0.
#[test]
fn a_missing_controller_service_is_not_taken_for_a_kept_client() {
    for target in BOTH {
        // (ConfigMap lines, Service kept, an entry for the missing Service wanted)
        let cases: [(Lines, bool, bool); 4] = [
            (&[], false, true),
            (&[], true, false),
            (&common::BASE, false, false),
            (&[("use-proxy-protocol", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16")], false, false),
        ];
        for (data, keep_service, wanted) in cases {
            let mut ctl = common::controller(data);
            if !keep_service {
                let at = ctl.find("---\napiVersion: v1\nkind: Service").expect("the controller's Service");
                ctl.truncate(at);
            }
            let docs = vec![ctl, ing_at("web", "t", 2021, "/admin", &[W])];
            let m = run(&docs, target);
            let ctx = format!("{data:?} service {keep_service} {target:?}:\n{}", m.report.text());
            let e = m.report.entries.iter().find(|e| e.key == "Service");
            assert_eq!(e.is_some(), wanted, "{ctx}");
            if let Some(e) = e {
                assert_eq!(e.status, Status::NotConverted, "{ctx}");
                assert_eq!(e.object, "Deployment/ingress-nginx/ingress-nginx-controller", "{ctx}");
                assert!(e.why.contains("Ingress/web/t whitelist-source-range"), "{ctx}");
                assert!(m.report.incomplete(), "{ctx}");
                let w = m
                    .report
                    .entries
                    .iter()
                    .find(|e| e.object == "Ingress/web/t" && e.key == "whitelist-source-range")
                    .unwrap();
                assert!(w.why.contains("which may be a node's address"), "{ctx}");
            }
        }
    }
}

/// Review 18 (second pass) F1: ingress-nginx reads limit-burst-multiplier
/// with Go's Atoi (past an int's range: an error, so 5) and multiplies in
/// a 64-bit int, which wraps: the burst is what that gives, and one that
/// wraps to zero or below is refused by nginx (every reload fails without
/// a webhook running `nginx -t`). Before the fix a multiplier past i64 gave
/// an unlimited burst, and a wrapping one an open route with exit 0.
#[test]
fn a_burst_multiplier_is_multiplied_as_go_does() {
    // multiplier, the burst wanted (None: every Ingress deny-all); nginx's
    // `burst=B` lets B + 1 through at once (review 29 M2)
    let rows: [(&str, Option<f64>); 4] = [
        ("9300000000000000000", Some(51.0)), // past i64: Atoi fails, 5
        ("922337203685477581", None),        // 10 × m wraps below zero
        ("1844674407370955162", Some(5.0)),  // 10 × m wraps to 4
        ("3", Some(31.0)),
    ];
    for target in [Target::Realip] {
        for (mult, want) in rows {
            let docs = vec![
                controller_at("v1.15.1", &[], &[]),
                ing_at("web", "open", 2020, "/", &[]),
                ing_at("web", "t", 2021, "/admin", &[("limit-rps", "10"), ("limit-burst-multiplier", mult)]),
            ];
            let m = run(&docs, target);
            let ctx = format!("{mult}:\n{}", m.report.text());
            if let Some(b) = want {
                let bursts: Vec<f64> =
                    open_policies(&m).iter().filter_map(|p| p["spec"]["rateLimit"]["burst"].as_f64()).collect();
                assert_eq!(bursts, [b], "{ctx}");
            } else {
                assert!(routes(&m, false).is_empty(), "{ctx}");
                assert!(m.report.incomplete(), "{ctx}");
            }
        }
    }
}

/// F2, F3, F4: more ConfigMap values nginx refuses in every configuration:
/// a field of spaces between commas in proxy-real-ip-cidr (ingress-nginx's
/// splitAndTrimSpace keeps it, empty: `set_real_ip_from ;`), `unix:` where
/// v1.13+ writes the list into a `geo` block too (PROXY and forwarded
/// headers both on), a `$` in forwarded-for-header, and
/// forwarded-host-header split by whitespace or `;` (both written as
/// `$http_…` into every location). Every Ingress deny-all, exit 1.
#[test]
fn more_values_nginx_refuses_leave_every_ingress_out() {
    let xff: (&str, &str) = ("use-forwarded-headers", "true");
    let rows: &[(&str, &str, Lines, bool)] = &[
        ("trailing comma and space", "v1.15.1", &[xff, ("proxy-real-ip-cidr", "10.0.0.0/16, ")], true),
        ("a field of spaces", "v1.15.1", &[xff, ("proxy-real-ip-cidr", "10.0.0.0/16, ,10.1.0.0/16")], true),
        ("control: an empty field", "v1.15.1", &[xff, ("proxy-real-ip-cidr", "10.0.0.0/16,,10.1.0.0/16")], false),
        (
            "unix: in geo",
            "v1.13.0",
            &[xff, ("use-proxy-protocol", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16,unix:")],
            true,
        ),
        (
            "control: unix: without geo",
            "v1.12.8",
            &[xff, ("use-proxy-protocol", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16,unix:")],
            false,
        ),
        ("$ in forwarded-for-header", "v1.15.1", &[("forwarded-for-header", "X-Client$IP")], true),
        ("forwarded-host-header with a space", "v1.15.1", &[("forwarded-host-header", "X-Forwarded Host")], true),
        ("forwarded-host-header with ;", "v1.15.1", &[("forwarded-host-header", "X-Host;")], true),
    ];
    for &(name, tag, data, all) in rows {
        let docs = vec![
            common::controller(data).replacen("controller:v1.15.1", &format!("controller:{tag}"), 1),
            ing_at("web", "open", 2020, "/", &[]),
            ing_at("web", "t", 2021, "/admin", &[W]),
        ];
        let m = run(&docs, Target::Realip);
        let ctx = format!("{name}:\n{}", m.report.text());
        if all {
            assert!(routes(&m, false).is_empty(), "{ctx}");
            assert!(m.report.incomplete(), "{ctx}");
            assert!(m.report.entries.iter().any(|e| e.why.contains("none with this ConfigMap ever loads")), "{ctx}");
        } else {
            assert!(routes(&m, false).contains(&"open".to_owned()), "{ctx}");
        }
    }
}

/// F5: a second Service in front of the controller (the chart's internal
/// one, `externalTrafficPolicy: Cluster` by default) SNATs its clients: an
/// allow list keyed on the TCP peer acts on node addresses for them, so it
/// is not converted as a client restriction (exit 1), naming that Service.
/// F7: a hostNetwork controller with no Service in the input is no SNAT.
#[test]
fn every_service_in_front_of_the_controller_counts_and_host_network_is_no_snat() {
    let internal = "apiVersion: v1\nkind: Service\nmetadata:\n  name: ingress-nginx-controller-internal\n  namespace: ingress-nginx\n  annotations:\n    service.beta.kubernetes.io/aws-load-balancer-internal: \"true\"\n    service.beta.kubernetes.io/aws-load-balancer-type: nlb\nspec:\n  type: LoadBalancer\n  selector: {app: ingress-nginx}\n  ports:\n  - {name: http, port: 80}\n".to_owned();
    let m = run(&[common::controller(&[]), ing_at("web", "t", 2021, "/admin", &[W]), internal], Target::Realip);
    let e = m.report.entries.iter().find(|e| e.object == "Service/ingress-nginx/ingress-nginx-controller-internal");
    assert_eq!(e.map(|e| e.status), Some(Status::NotConverted), "{}", m.report.text());
    assert!(m.report.incomplete());
    let ctl = common::controller(&[])
        .replace("kind: Deployment", "kind: DaemonSet")
        .replace("        - --publish-service=$(POD_NAMESPACE)/ingress-nginx-controller\n", "")
        .replace("    spec:\n      containers:", "    spec:\n      hostNetwork: true\n      containers:");
    let ctl = ctl.split("---\napiVersion: v1\nkind: Service").next().unwrap().to_owned();
    let m = run(&[ctl, ing_at("web", "t", 2021, "/admin", &[W])], Target::Realip);
    assert!(!m.report.entries.iter().any(|e| e.key == "Service"), "{}", m.report.text());
    assert!(m.report.notes.iter().any(|n| n.contains("hostNetwork: true")), "{}", m.report.text());
}

/// F6: with annotation validation off (the default before v1.12), a
/// redirect, app-root or rewrite-target value with a space is written
/// unquoted into `return …;` / `rewrite …;`, which nginx refuses: with no
/// webhook running `nginx -t` (v1.11.5 on) every reload fails, so every
/// Ingress is deny-all. With validation on (v1.12+ default) ingress-nginx's
/// validators refuse such values before they are written.
#[test]
fn annotation_values_that_split_a_directive_fail_every_reload_without_validation() {
    let rows: &[(&str, (&str, &str))] = &[
        ("app-root", ("app-root", "/a b")),
        ("permanent-redirect", ("permanent-redirect", "https://example.com/a b")),
        ("temporal-redirect", ("temporal-redirect", "https://example.com/a;b")),
        ("rewrite-target", ("rewrite-target", "/a b")),
    ];
    for &(name, ann) in rows {
        let docs = vec![
            controller_at("v1.11.6", &[], &[]),
            ing_at("web", "open", 2020, "/", &[]),
            ing_at("web", "t", 2021, "/x", &[ann]),
        ];
        let m = run(&docs, Target::Realip);
        let ctx = format!("{name}:\n{}", m.report.text());
        assert!(routes(&m, false).is_empty(), "{ctx}");
        assert!(m.report.incomplete(), "{ctx}");
        assert!(m.report.notes.iter().any(|n| n.contains(&format!("Ingress/web/t's {name}"))), "{ctx}");
    }
}
