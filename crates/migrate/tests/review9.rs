//! The ninth review's inputs (R9-1..R9-3): annotations of parsers other
//! than rate-limit whose validation error makes ingress-nginx drop the
//! whole Ingress, the first version with the risk check and validation,
//! and the container the controller's version is read from. Each is a
//! table on both targets. The rule under test: nothing the migration emits
//! is more open than what ingress-nginx served.

mod common;

use common::{controller_at, ing_at, open_policies, routes, run};
use realip_migrate::{Migration, Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];
const W: (&str, &str) = ("whitelist-source-range", "203.0.113.0/24");
const V15: &str = "v1.15.1";

/// The why of the not-converted entry of `object`'s `key` that says
/// ingress-nginx may refuse the whole Ingress.
fn not_converted(m: &Migration, object: &str, key: &str) -> Option<String> {
    m.report
        .entries
        .iter()
        .find(|e| {
            e.object == object
                && e.key == key
                && e.status == Status::NotConverted
                && e.why.contains("refuse the whole Ingress")
        })
        .map(|e| e.why.clone())
}

/// The why of the not-converted entry of `object`'s `key`.
fn not_converted_entry(m: &Migration, object: &str, key: &str) -> Option<String> {
    m.report
        .entries
        .iter()
        .find(|e| e.object == object && e.key == key && e.status == Status::NotConverted)
        .map(|e| e.why.clone())
}

/// (name, image tag, controller args, y-api's annotation, whether ingress-nginx may drop y-api).
type Row = (&'static str, &'static str, &'static [&'static str], (&'static str, &'static str), bool);

#[rustfmt::skip]
const ROWS: &[Row] = &[
    ("x1 from-to-www-redirect yes", V15, &[], ("from-to-www-redirect", "yes"), true),
    ("x2 default-backend Err_Svc", V15, &[], ("default-backend", "Err_Svc"), true),
    ("x3 permanent-redirect-code abc", V15, &[], ("permanent-redirect-code", "abc"), true),
    ("x4 custom-http-errors 5xx", V15, &[], ("custom-http-errors", "404,5xx"), true),
    ("x7 ssl-ciphers", V15, &[], ("ssl-ciphers", "ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384"), true),
    ("x8 relative-redirects yes", V15, &[], ("relative-redirects", "yes"), true),
    ("x10 default-backend errors.web", V15, &[], ("default-backend", "errors.web"), true),
    ("server-alias", V15, &[], ("server-alias", "www.app.example.com"), true),
    ("upstream-hash-by", V15, &[], ("upstream-hash-by", "$remote_addr"), true),
    ("permanent-redirect with $", V15, &[], ("permanent-redirect", "https://x.example$request_uri"), true),
    ("unknown version", "latest", &[], ("permanent-redirect-code", "abc"), true),
    ("x5 control: temporal-redirect-code without temporal-redirect", V15, &[], ("temporal-redirect-code", "302 "), false),
    ("control: from-to-www-redirect true", V15, &[], ("from-to-www-redirect", "true"), false),
    ("control: permanent-redirect-code 308", V15, &[], ("permanent-redirect-code", "308"), false),
    ("control: custom-http-errors", V15, &[], ("custom-http-errors", "404, 503"), false),
    ("control: default-backend", V15, &[], ("default-backend", "err-svc"), false),
    ("control: v1.11 validation off by default", "v1.11.5", &[], ("permanent-redirect-code", "abc"), false),
    ("control: validation off by flag", V15, &["--enable-annotation-validation=false"], ("ssl-ciphers", "A B"), false),
];

/// R9-1 (x1–x4, x7, x8, x10): a-adm restricts `/`, the newer y-api serves
/// /api with an annotation whose validator may refuse it. ingress-nginx then
/// drops y-api and /api falls under a-adm's allow list, so the migration
/// must not open /api: y-api is deny-all, reported not converted naming
/// the annotation. Values proven valid (and validation off) stay open.
#[test]
fn a_validated_annotation_not_proven_valid_is_deny_all() {
    for target in BOTH {
        for &(name, tag, args, ann, drop) in ROWS {
            let docs = [
                controller_at(tag, args, &[]),
                ing_at("web", "a-adm", 2020, "/", &[W]),
                ing_at("web", "y-api", 2021, "/api", &[ann]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            let why = not_converted(&m, "Ingress/web/y-api", ann.0);
            // Both also make ingress-nginx answer www.app.example.com (review 16 R16-3): deny-all there.
            let twin = matches!(ann, ("server-alias", _) | ("from-to-www-redirect", "true"));
            let mut denied = routes(&m, true);
            denied.sort();
            if drop {
                assert_eq!(routes(&m, false), ["a-adm"], "{name} {target:?}:\n{text}");
                let want: &[&str] = if twin {
                    &["y-api-app-example-com-denied", "y-api-www-app-example-com-denied"]
                } else {
                    &["y-api-denied"]
                };
                assert_eq!(denied, want, "{name} {target:?}:\n{text}");
                let why = why.unwrap_or_else(|| panic!("{name}: no not-converted entry:\n{text}"));
                assert!(why.contains(&format!("nginx.ingress.kubernetes.io/{}", ann.0)), "{name}: {why}");
                assert!(!open_policies(&m).is_empty(), "{name}: a-adm keeps its allow list");
            } else {
                let mut open = routes(&m, false);
                open.sort();
                assert_eq!(open, ["a-adm", "y-api"], "{name} {target:?}:\n{text}");
                let want: &[&str] = if twin { &["y-api-denied"] } else { &[] };
                assert_eq!(denied, want, "{name} {target:?}:\n{text}");
                assert!(why.is_none(), "{name}:\n{text}");
            }
        }
    }
}

/// R9-1 (y1, y3): the older a-open on /admin carries an annotation whose
/// validator may refuse it, the newer y-adm restricts /admin. a-open must
/// not be emitted open; deny-all keeps /admin closed whichever Ingress
/// ingress-nginx served.
#[test]
fn a_possibly_dropped_older_ingress_does_not_open_the_path() {
    for target in BOTH {
        for ann in [("from-to-www-redirect", "yes"), ("permanent-redirect-code", "abc")] {
            let docs = [
                controller_at(V15, &[], &[]),
                ing_at("web", "a-open", 2020, "/admin", &[ann]),
                ing_at("web", "y-adm", 2021, "/admin", &[W]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            assert!(routes(&m, false).is_empty(), "{ann:?} {target:?}: /admin is not open:\n{text}");
            assert_eq!(routes(&m, true), ["a-open-denied"], "{ann:?} {target:?}:\n{text}");
            assert!(not_converted(&m, "Ingress/web/a-open", ann.0).is_some(), "{ann:?}:\n{text}");
        }
    }
}

/// R9-1 (c2): the main Ingress of /api carries permanent-redirect-code
/// `abc`, its canary has weight 100. ingress-nginx drops the main one, the
/// canary has no main location, /api falls under a-adm's allow list. The
/// canary must not be attached to anything open.
#[test]
fn a_canary_of_a_possibly_dropped_main_ingress_is_not_served() {
    for target in BOTH {
        let docs = [
            controller_at(V15, &[], &[]),
            ing_at("web", "a-adm", 2020, "/", &[W]),
            ing_at("web", "m-api", 2021, "/api", &[("permanent-redirect-code", "abc")]),
            ing_at("web", "c-api", 2022, "/api", &[("canary", "true"), ("canary-weight", "100")]),
        ];
        let m = run(&docs, target);
        let text = m.report.text();
        assert_eq!(routes(&m, false), ["a-adm"], "{target:?}:\n{text}");
        assert_eq!(routes(&m, true), ["m-api-denied"], "{target:?}:\n{text}");
        let served_canary = common::find(&m, "HTTPRoute")
            .iter()
            .filter(|r| !routes(&m, true).iter().any(|d| Some(d.as_str()) == r["metadata"]["name"].as_str()))
            .any(|r| r.to_string().contains("c-api"));
        assert!(!served_canary, "{target:?}: the canary is not served:\n{text}");
        assert!(m.report.entries.iter().any(|e| e.status == Status::NotConverted), "{target:?}: exit 1:\n{text}");
    }
}

/// (name, image tag, controller args, ConfigMap lines, a-open's annotation, open routes).
type ZRow = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    (&'static str, &'static str),
    &'static [&'static str],
);

/// R9-2 (z1, z2): the risk check and annotation validation exist from
/// v1.9. On v1.9.6 with the level set to Medium (z1) or validation turned
/// on (z2), ingress-nginx refuses the older open a-open: a restarted
/// controller serves /admin from y-adm, a running one may still serve an
/// older a-open (R17-4), so /admin is deny-all. On v1.8 neither check
/// exists.
#[test]
fn the_risk_check_and_validation_start_at_v1_9() {
    #[rustfmt::skip]
    let table: [ZRow; 4] = [
        ("z1", "v1.9.6", &[], &[("annotations-risk-level", "Medium")], ("mirror-target", "https://mirror.example/x"), &[]),
        ("z2", "v1.9.6", &["--enable-annotation-validation=true"], &[], ("limit-rps", "10r/s"), &[]),
        ("z2 control: v1.9 validation off by default", "v1.9.6", &[], &[], ("limit-rps", "10r/s"), &["a-open"]),
        ("z1 control: v1.8", "v1.8.5", &[], &[("annotations-risk-level", "Medium")], ("mirror-target", "https://mirror.example/x"), &["a-open"]),
    ];
    for target in BOTH {
        for (name, tag, args, data, ann, open) in table {
            let docs = [
                controller_at(tag, args, data),
                ing_at("web", "a-open", 2020, "/admin", &[ann]),
                ing_at("web", "y-adm", 2021, "/admin", &[W]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            assert_eq!(routes(&m, false), open, "{name} {target:?}:\n{text}");
            let refused = open.is_empty();
            let want: &[&str] = if refused { &["a-open-denied"] } else { &[] };
            assert_eq!(routes(&m, true), want, "{name} {target:?}:\n{text}");
            let entry = not_converted_entry(&m, "Ingress/web/a-open", ann.0);
            assert_eq!(
                entry.is_some_and(|why| why.contains("a running controller keeps serving the last version")),
                refused,
                "{name} {target:?}:\n{text}"
            );
        }
    }
}

/// R9-3 (w1): a sidecar whose image also ends in `/controller` is listed
/// before the ingress-nginx container. The version is the ingress-nginx
/// container's (v1.11.3: level Critical by default), so a-adm with its
/// snippet is served and keeps /admin under its allow list; w0 (no
/// sidecar, v1.15.1: High) refuses it, and as a running controller may
/// still serve an older a-adm, /admin is deny-all (R17-4), not y-open's.
#[test]
fn the_version_is_the_ingress_nginx_containers() {
    let sidecar = "      containers:\n      - name: sidecar\n        image: quay.io/example/controller:v2.3\n      - name: controller\n";
    for target in BOTH {
        for (name, tag, with_sidecar, open) in [("w1", "v1.11.3", true, "a-adm"), ("w0", V15, false, "")] {
            let mut ctl = controller_at(tag, &[], &[("allow-snippet-annotations", "true")]);
            if with_sidecar {
                assert!(ctl.contains("      containers:\n      - name: controller\n"));
                ctl = ctl.replacen("      containers:\n      - name: controller\n", sidecar, 1);
            }
            let docs = [
                ctl,
                ing_at("web", "a-adm", 2020, "/admin", &[W, ("configuration-snippet", "more_set_headers \"X-A: b\";")]),
                ing_at("web", "y-open", 2021, "/admin", &[]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            if open.is_empty() {
                assert!(routes(&m, false).is_empty(), "{name} {target:?}:\n{text}");
                assert_eq!(routes(&m, true), ["a-adm-denied"], "{name} {target:?}:\n{text}");
            } else {
                assert_eq!(routes(&m, false), [open], "{name} {target:?}:\n{text}");
                assert!(routes(&m, true).is_empty(), "{name} {target:?}:\n{text}");
            }
            assert_eq!(open_policies(&m).is_empty(), open.is_empty(), "{name} {target:?}:\n{text}");
        }
    }
}
