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

/// The redirect of `m`'s only HTTPRoute rule that has one: (status code, hostname).
fn redirect(m: &realip_migrate::Migration) -> Option<(u64, String)> {
    common::find(m, "HTTPRoute").into_iter().flat_map(|r| r["spec"]["rules"].as_array().unwrap().iter()).find_map(
        |rule| {
            let f = rule["filters"].as_array()?.iter().find(|f| f["type"] == "RequestRedirect")?;
            let rr = &f["requestRedirect"];
            Some((rr["statusCode"].as_u64()?, rr["hostname"].as_str().unwrap_or_default().to_owned()))
        },
    )
}

/// R10-2, R10-3: ingress-nginx's redirect parser returns on a non-empty
/// `temporal-redirect` before it reads the permanent pair, and its URL
/// pattern allows `,`. Such Ingresses are redirects in ingress-nginx, so
/// they are converted (exit 0), not emitted deny-all.
#[test]
fn redirects_ingress_nginx_serves_are_converted() {
    type R = (&'static str, &'static [(&'static str, &'static str)], Option<(u64, &'static str)>);
    #[rustfmt::skip]
    let rows: &[R] = &[
        ("r1 temporal wins over a bad permanent code", &[("temporal-redirect", "https://a.example/x"), ("permanent-redirect-code", "abc")], Some((302, "a.example"))),
        ("temporal wins over a bad permanent URL", &[("temporal-redirect", "https://a.example/x"), ("permanent-redirect", "https://b.example/<x>")], Some((302, "a.example"))),
        ("r3 a comma in the URL", &[("permanent-redirect", "https://a.example/x,y")], Some((301, "a.example"))),
        ("control: a bad permanent code alone", &[("permanent-redirect-code", "abc")], None),
        ("control: a bad temporal URL", &[("temporal-redirect", "https://a.example/<x>")], None),
    ];
    for target in BOTH {
        for &(name, anns, want) in rows {
            let docs = [controller_at("v1.15.1", &[], &[]), ing_at("web", "y-api", 2021, "/api", anns)];
            let m = run(&docs, target);
            let text = m.report.text();
            if let Some((code, host)) = want {
                assert_eq!(redirect(&m), Some((code, host.to_owned())), "{name} {target:?}:\n{text}");
                assert!(routes(&m, true).is_empty(), "{name} {target:?}: not deny-all:\n{text}");
                assert!(!m.report.incomplete(), "{name} {target:?}:\n{text}");
            } else {
                assert_eq!(routes(&m, true), ["y-api-denied"], "{name} {target:?}:\n{text}");
                assert!(m.report.incomplete(), "{name} {target:?}:\n{text}");
            }
            // No line says the permanent code is validated when temporal-redirect wins.
            if anns.iter().any(|(k, _)| *k == "temporal-redirect") && want.is_some() {
                assert!(!text.contains("still validates"), "{name}:\n{text}");
            }
        }
    }
}

/// R10-4: one Ingress listing `/admin` twice. ingress-nginx serves the
/// first copy; the output serves it too (once) and says the second copy
/// is ignored, not that the Ingress shadows itself.
#[test]
fn a_path_listed_twice_in_one_ingress_is_served_once() {
    let once = ing_at("web", "h-open", 2021, "/admin", &[]);
    let path = "      - path: \"/admin\"\n        pathType: Prefix\n        backend:\n          service:\n            name: h-open-svc\n            port:\n              number: 80\n";
    assert!(once.ends_with(path), "{once}");
    let twice = format!("{once}{}", path.replace("h-open-svc", "other-svc"));
    for target in BOTH {
        let m = run(&[controller_at("v1.15.1", &[], &[]), twice.clone()], target);
        let text = m.report.text();
        assert_eq!(routes(&m, false), ["h-open"], "{target:?}:\n{text}");
        let route = &common::find(&m, "HTTPRoute")[0];
        let backends: Vec<&str> = route["spec"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["backendRefs"].as_array().into_iter().flatten())
            .map(|b| b["name"].as_str().unwrap())
            .collect();
        assert_eq!(backends, ["h-open-svc"], "{target:?}: the first copy only:\n{route}");
        assert!(!text.contains("shadowed by Ingress/web/h-open"), "{target:?}:\n{text}");
        assert!(text.contains("listed again in the same Ingress"), "{target:?}:\n{text}");
    }
}
