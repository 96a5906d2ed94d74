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
