//! The tenth review's R10-1: annotations whose parser denies the location
//! (ingress-nginx answers 503 there to every client) on an error that is
//! not a validation error — `custom-headers` (v1.11 on) and
//! `proxy-ssl-secret` — must never come out as open routes. Each is a
//! table on both targets.

mod common;

use common::{controller_at, ing_at, open_policies, routes, run};
use realip_migrate::{Migration, Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];
const W: (&str, &str) = ("whitelist-source-range", "203.0.113.0/24");

/// Whether `object`'s `key` is reported not converted because the
/// location is denied.
fn denied(m: &Migration, object: &str, key: &str) -> bool {
    m.report.entries.iter().any(|e| {
        e.object == object && e.key == key && e.status == Status::NotConverted && e.why.contains("denies the location")
    })
}

/// (name, image tag, controller args, the annotation, whether ingress-nginx may deny the location).
type Row = (&'static str, &'static str, &'static [&'static str], (&'static str, &'static str), bool);

#[rustfmt::skip]
const ROWS: &[Row] = &[
    ("h1 custom-headers, v1.15", "v1.15.1", &[], ("custom-headers", "hdrs"), true),
    ("custom-headers, version unknown", "latest", &[], ("custom-headers", "hdrs"), true),
    ("h6 proxy-ssl-secret, validation off", "v1.15.1", &["--enable-annotation-validation=false"], ("proxy-ssl-secret", "other/ca"), true),
    ("proxy-ssl-secret, v1.11 (validation off by default)", "v1.11.5", &[], ("proxy-ssl-secret", "other/ca"), true),
    ("control: custom-headers before v1.11", "v1.10.6", &[], ("custom-headers", "hdrs"), false),
    ("control: no such annotation", "v1.15.1", &[], ("proxy-buffering", "on"), false),
];

/// h1, h6: a-adm restricts `/`, the newer h-open serves /api with the
/// annotation. Where ingress-nginx may deny /api (503 for everyone), the
/// migration must not open it: h-open is deny-all, reported not converted.
#[test]
fn a_location_ingress_nginx_may_deny_is_deny_all() {
    for target in BOTH {
        for &(name, tag, args, ann, deny) in ROWS {
            let docs = [
                controller_at(tag, args, &[]),
                ing_at("web", "a-adm", 2020, "/", &[W]),
                ing_at("web", "h-open", 2021, "/api", &[ann]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            let reported = denied(&m, "Ingress/web/h-open", ann.0);
            if deny {
                assert_eq!(routes(&m, false), ["a-adm"], "{name} {target:?}:\n{text}");
                assert_eq!(routes(&m, true), ["h-open-denied"], "{name} {target:?}:\n{text}");
                assert!(reported, "{name}: no not-converted entry:\n{text}");
                assert!(!open_policies(&m).is_empty(), "{name}: a-adm keeps its allow list");
            } else {
                let mut open = routes(&m, false);
                open.sort();
                assert_eq!(open, ["a-adm", "h-open"], "{name} {target:?}:\n{text}");
                assert!(!reported, "{name}:\n{text}");
            }
        }
    }
}

/// h7: the older a-hdr on /admin carries custom-headers, the newer y-adm
/// restricts /admin. ingress-nginx answered 503 on /admin; the migration
/// must not make /admin open to everyone.
#[test]
fn an_older_ingress_with_a_denied_location_does_not_open_the_path() {
    for target in BOTH {
        let docs = [
            controller_at("v1.15.1", &[], &[]),
            ing_at("web", "a-hdr", 2020, "/admin", &[("custom-headers", "hdrs")]),
            ing_at("web", "y-adm", 2021, "/admin", &[W]),
        ];
        let m = run(&docs, target);
        let text = m.report.text();
        assert!(routes(&m, false).is_empty(), "{target:?}: /admin is not open:\n{text}");
        assert_eq!(routes(&m, true), ["a-hdr-denied"], "{target:?}:\n{text}");
        assert!(denied(&m, "Ingress/web/a-hdr", "custom-headers"), "{target:?}:\n{text}");
    }
}
