//! The twentieth review's findings: proxy buffer and protocol settings
//! nginx.tmpl writes unguarded into every location (`proxy_buffers`,
//! `proxy_buffer_size`, `proxy_buffering`, `proxy_request_buffering`,
//! `proxy_http_version`) with a value nginx refuses fail every reload, as
//! an annotation (where no webhook runs `nginx -t`, and for the on/off and
//! version ones where annotation validation is off) or in the ConfigMap:
//! every Ingress deny-all, exit 1. And an integer annotation is read as Go's
//! Atoi reads it, untrimmed.

mod common;

use common::{controller_at, ing_at, open_policies, routes, run};
use realip_migrate::{Status, Target};

/// HIGH-1, each row checked with `nginx -t` (see realip_migrate::reload).
/// Before the fix every row left both routes open.
#[test]
fn location_settings_nginx_refuses_fail_every_reload() {
    // tag, annotation or ConfigMap line, every Ingress out
    let rows: &[(&str, (&str, &str), bool)] = &[
        ("v1.15.1", ("proxy-buffers-number", "2"), true),
        ("v1.15.1", ("proxy-buffers-number", "1"), true),
        ("v1.15.1", ("proxy-buffer-size", "8b"), true),
        ("v1.11.8", ("proxy-buffering", "true"), true),
        ("v1.11.8", ("proxy-request-buffering", "true"), true),
        ("v1.11.8", ("proxy-http-version", "2"), true),
        // Validated (v1.12+): the validator drops the value, the default applies.
        ("v1.15.1", ("proxy-buffering", "true"), false),
        ("v1.15.1", ("proxy-http-version", "2"), false),
        ("v1.15.1", ("proxy-buffers-number", "3"), false),
        ("v1.11.8", ("proxy-buffering", "On"), false),
    ];
    for target in [Target::Realip, Target::EnvoyGateway] {
        for &(tag, (k, v), all) in rows {
            let docs = vec![
                controller_at(tag, &[], &[]),
                ing_at("web", "open", 2020, "/", &[]),
                ing_at("web", "t", 2021, "/x", &[(k, v)]),
            ];
            let m = run(&docs, target);
            let ctx = format!("{tag} {k}={v} {target:?}:\n{}", m.report.text());
            if all {
                assert!(routes(&m, false).is_empty(), "{ctx}");
                assert!(m.report.incomplete(), "{ctx}");
                assert!(m.report.notes.iter().any(|n| n.contains(&format!("Ingress/web/t's {k}"))), "{ctx}");
            } else {
                assert!(routes(&m, false).contains(&"open".to_owned()), "{ctx}");
            }
        }
    }
    // The same values in the ConfigMap: not checked by ingress-nginx at all.
    for (k, v) in [("proxy-buffers-number", "2"), ("proxy-buffer-size", "8b"), ("proxy-buffering", "true")] {
        let docs = vec![controller_at("v1.15.1", &[], &[(k, v)]), ing_at("web", "open", 2020, "/", &[])];
        let m = run(&docs, Target::Realip);
        let ctx = format!("ConfigMap {k}={v}:\n{}", m.report.text());
        assert!(routes(&m, false).is_empty(), "{ctx}");
        let e = m.report.entries.iter().find(|e| e.key == k).unwrap();
        assert_eq!(e.status, Status::NotConverted, "{ctx}");
        assert!(e.why.contains("none with this ConfigMap ever loads"), "{ctx}");
    }
}

/// LOW-1: `limit-rps: "10 "` is no number to Go's Atoi: ingress-nginx
/// (validation off, v1.11) applies no limit, and the output claimed one.
#[test]
fn an_integer_annotation_is_read_untrimmed() {
    let docs = vec![
        controller_at("v1.11.8", &[], &[]),
        ing_at("web", "open", 2020, "/", &[]),
        ing_at("web", "t", 2021, "/x", &[("limit-rps", "10 ")]),
    ];
    let m = run(&docs, Target::Realip);
    assert!(open_policies(&m).is_empty(), "{}", m.report.text());
    let e = m.report.entries.iter().find(|e| e.key == "limit-rps").unwrap();
    assert_eq!(e.status, Status::NotConverted, "{}", m.report.text());
}
