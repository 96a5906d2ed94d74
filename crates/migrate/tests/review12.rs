//! The twelfth review's findings, each a table on both targets with the
//! reviewer's inputs (/tmp/rev12-in): a canary's client certificates
//! (R12-1), http-snippet read as nginx tokenises it (R12-2), ConfigMap
//! ModSecurity (R12-3), and the global rate limit's window and memcached
//! port as ingress-nginx reads them (R12-4 … R12-6).

mod common;

use common::{controller_at, ing_at, open_policies, routes, run};
use realip_migrate::{Migration, Status, Target};

/// ConfigMap lines or annotations.
type Lines<'a> = &'a [(&'a str, &'a str)];

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];

/// The report entry of `key` on an object whose id starts with `object` (the first).
fn entry<'a>(m: &'a Migration, object: &str, key: &str) -> &'a realip_migrate::Entry {
    let e = m.report.entries.iter().find(|e| e.object.starts_with(object) && e.key == key);
    e.unwrap_or_else(|| panic!("no entry for {object} {key}:\n{}", m.report.text()))
}

const CANARY: [(&str, &str); 4] =
    [("canary", "true"), ("canary-weight", "10"), ("auth-tls-secret", "web/ca"), ("auth-tls-verify-client", "on")];

/// R12-1 (t-ca1, t-ca2): a canary's `auth-tls-*` is put on its host's
/// whole server by ingress-nginx (getBackendServers copies every Ingress's
/// CertificateAuth, canaries included): the main Ingress's route is
/// deny-all, the canary's keys not converted. A canary whose host no other
/// Ingress has puts them on the catch-all server: a host-less Ingress is
/// denied, the main Ingress on its own host stays open.
#[test]
fn canary_client_certificates_close_the_host() {
    #[rustfmt::skip]
    let rows: &[(&str, &str, u32)] = &[
        ("t-ca2 v1.11.3, canary older", "v1.11.3", 2020),
        ("v1.11.3, canary newer", "v1.11.3", 2022),
        ("t-ca1 v1.15.1, canary older", "v1.15.1", 2020),
        ("v1.15.1, canary newer", "v1.15.1", 2022),
    ];
    for target in BOTH {
        for &(name, tag, year) in rows {
            let docs = [
                controller_at(tag, &[], &[]),
                ing_at("web", "c-can", year, "/", &CANARY),
                ing_at("web", "m-main", 2021, "/", &[]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            assert!(routes(&m, false).is_empty(), "{name} {target:?}: open routes {:?}\n{text}", routes(&m, false));
            assert!(!routes(&m, true).is_empty(), "{name} {target:?}:\n{text}");
            assert!(open_policies(&m).is_empty(), "{name} {target:?}:\n{text}");
            assert!(m.report.incomplete(), "{name} {target:?}:\n{text}");
            for key in ["auth-tls-secret", "auth-tls-verify-client"] {
                let e = entry(&m, "Ingress/web/c-can", key);
                assert_eq!(e.status, Status::NotConverted, "{name} {target:?}: {key}\n{text}");
                assert!(
                    !m.report.entries.iter().any(|e| e.object.starts_with("Ingress/web/c-can")
                        && e.key == key
                        && e.status == Status::Ignored),
                    "{name} {target:?}: {key} also ignored\n{text}"
                );
            }
            // The catch-all variant: the canary's host has no server of its own.
            let docs = [
                controller_at(tag, &[], &[]),
                ing_at("web", "c-can", year, "/", &CANARY).replace("host: app.example.com", "host: other.example"),
                ing_at("web", "m-main", 2021, "/", &[]),
                ing_at("web", "d-any", 2021, "/any", &[]).replace("- host: app.example.com\n    http:", "- http:"),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            assert_eq!(routes(&m, false), ["m-main"], "{name} catch-all {target:?}:\n{text}");
            assert!(routes(&m, true).iter().any(|r| r.starts_with("d-any")), "{name} catch-all {target:?}:\n{text}");
        }
    }
}

/// R12-3 (ms1): ModSecurity turned on in the ConfigMap runs on every
/// location (nginx.tmpl's http block): every Ingress is deny-all and the
/// key not converted, unless the Ingress says `enable-modsecurity:
/// "false"` (its locations get `modsecurity off;`). Off, the CRS and
/// snippet keys are read by nothing and ignored.
#[test]
fn configmap_modsecurity_closes_every_ingress() {
    let ms1 = [
        ("enable-modsecurity", "true"),
        ("enable-owasp-modsecurity-crs", "true"),
        ("modsecurity-snippet", "SecRuleEngine On"),
    ];
    // (name, ConfigMap lines, the Ingress's annotations, denied)
    #[rustfmt::skip]
    let rows: &[(&str, Lines, Lines, bool)] = &[
        ("ms1", &ms1, &[], true),
        ("enable-modsecurity alone", &[("enable-modsecurity", "true")], &[], true),
        ("enable-modsecurity not a boolean", &[("enable-modsecurity", "yes")], &[], true),
        ("ms1, the Ingress opts out", &ms1, &[("enable-modsecurity", "false")], false),
        ("off, CRS and snippet set", &[("enable-modsecurity", "false"), ("enable-owasp-modsecurity-crs", "true"), ("modsecurity-snippet", "SecRuleEngine On")], &[], false),
        ("control: none", &[], &[], false),
    ];
    for target in BOTH {
        for &(name, data, anns, denied) in rows {
            for tag in ["v1.15.1", "v1.11.3"] {
                let docs = [controller_at(tag, &[], data), ing_at("web", "o-open", 2021, "/", anns)];
                let m = run(&docs, target);
                let text = m.report.text();
                if denied {
                    assert_eq!(routes(&m, false), Vec::<String>::new(), "{name} {tag} {target:?}:\n{text}");
                    assert_eq!(routes(&m, true), ["o-open-denied"], "{name} {tag} {target:?}:\n{text}");
                    assert!(m.report.incomplete(), "{name} {tag} {target:?}:\n{text}");
                    let e = entry(&m, "ConfigMap/", "enable-modsecurity");
                    assert_eq!(e.status, Status::NotConverted, "{name} {tag} {target:?}:\n{text}");
                    assert!(!e.why.contains("not handled by realip migrate"), "{name}: {}", e.why);
                } else {
                    assert_eq!(routes(&m, false), ["o-open"], "{name} {tag} {target:?}:\n{text}");
                    // Off in the ConfigMap: its ModSecurity keys are read by nothing.
                    let on = data.contains(&("enable-modsecurity", "true"));
                    for (k, _) in data.iter().filter(|_| !on) {
                        let e = entry(&m, "ConfigMap/", k);
                        assert_eq!(e.status, Status::Ignored, "{name} {tag} {target:?} {k}:\n{text}");
                    }
                    assert_eq!(m.report.incomplete(), on, "{name} {tag} {target:?}:\n{text}");
                }
            }
        }
    }
}

/// R12-2 (hq0 … hq7): the ConfigMap's http-snippet read as nginx reads
/// it. Real-IP directives, however spelled (quoted, after a `#` inside
/// quotes), make the client address not converted: the Ingress with a
/// deny list is deny-all (an open one stays open). Any other directive
/// not known to be harmless (`"deny" all;`, `ssl_verify_client`, …)
/// makes every Ingress deny-all. Harmless ones and the snippet's own
/// server / map blocks change neither.
#[test]
fn http_snippet_is_read_as_nginx_tokenises_it() {
    // (name, http-snippet, the deny-list Ingress is denied, the open Ingress is denied)
    #[rustfmt::skip]
    let rows: &[(&str, &str, bool, bool)] = &[
        ("hq0", "set_real_ip_from 192.0.2.0/24;", true, false),
        ("hq1", "\"set_real_ip_from\" 192.0.2.0/24;", true, false),
        ("hq1 single quotes", "'real_ip_header' X-Forwarded-For;", true, false),
        ("hq3", "add_header X-A \"#\"; set_real_ip_from 192.0.2.0/24;", true, false),
        ("hq2/hq5", "\"deny\" all;", true, true),
        ("hq4", "add_header X-A \"#\"; deny all;", true, true),
        ("hq6", "deny all;", true, true),
        ("hq7", "ssl_client_certificate /etc/ingress-controller/ca.pem; ssl_verify_client on;", true, true),
        ("escaped name", "de\\ny all;", true, true),
        ("unknown directive", "include /etc/nginx/extra.conf;", true, true),
        ("unterminated quote", "add_header X-A \"a;", true, true),
        ("control: harmless", "add_header X-A \"#\"; # deny all;\ngzip on;", false, false),
        ("control: own blocks", "map $http_x $y { default \"deny\"; }\nserver { listen 8081; location / { deny all; } }\nlog_format x '$remote_addr';", false, false),
    ];
    for target in BOTH {
        for &(name, snippet, den_denied, open_denied) in rows {
            let docs = [
                controller_at("v1.15.1", &[], &[("http-snippet", snippet)]),
                ing_at("web", "s-den", 2021, "/s", &[("denylist-source-range", "198.51.100.7/32")]),
                ing_at("web", "o-open", 2021, "/", &[]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            let denied = routes(&m, true);
            let is_denied = |r: &str| denied.iter().any(|d| d.starts_with(r));
            assert_eq!(is_denied("s-den"), den_denied, "{name} {target:?} s-den:\n{text}");
            assert_eq!(is_denied("o-open"), open_denied, "{name} {target:?} o-open:\n{text}");
            assert!(m.report.incomplete(), "{name} {target:?}:\n{text}");
            // the snippet itself is never converted
        }
    }
}

/// R12-4 … R12-6 (gB, gM, gJ, gA): the global rate limit (v1.11.3,
/// memcached configured) as ingress-nginx reads it. The window is trimmed
/// per line when annotation validation is off (gB: served with the limit;
/// validation on: the raw value fails, deny-all). The memcached port is
/// Go's ParseInt base 0, untrimmed, 11211 on an error (gM `" 0"`: the
/// limit applies; gJ `0x0`: no limit). No window, or a window of 0: no
/// limit, ignored (gA).
#[test]
fn global_rate_limit_is_read_as_ingress_nginx_reads_it() {
    type Row<'a> = (&'a str, &'a [&'a str], Lines<'a>, Option<&'a str>, &'a str);
    const HOST: (&str, &str) = ("global-rate-limit-memcached-host", "mc.example");
    // (name, controller args, ConfigMap lines, window (None: absent), outcome)
    // outcome: "limit" (converted policy, open route), "ignored" (no policy, open, rc 0), "denied".
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("gB window \" 1m\"", &[], &[HOST], Some(" 1m"), "limit"),
        ("window \"1m \\n\": lines trimmed, the newline kept", &[], &[HOST], Some("1m \n"), "denied"),
        ("gB control: validation on", &["--enable-annotation-validation=true"], &[HOST], Some(" 1m"), "denied"),
        ("gM port \" 0\"", &[], &[HOST, ("global-rate-limit-memcached-port", " 0")], Some("1m"), "limit"),
        ("port \"0 \"", &[], &[HOST, ("global-rate-limit-memcached-port", "0 ")], Some("1m"), "limit"),
        ("gJ port 0x0", &[], &[HOST, ("global-rate-limit-memcached-port", "0x0")], Some("1m"), "ignored"),
        ("port 0o0", &[], &[HOST, ("global-rate-limit-memcached-port", "0o0")], Some("1m"), "ignored"),
        ("control: port 0", &[], &[HOST, ("global-rate-limit-memcached-port", "0")], Some("1m"), "ignored"),
        ("control: port 11211", &[], &[HOST, ("global-rate-limit-memcached-port", "11211")], Some("1m"), "limit"),
        ("gA no window", &[], &[HOST], None, "ignored"),
        ("window 0", &[], &[HOST], Some("0"), "ignored"),
        ("window 0s", &[], &[HOST], Some("0s"), "ignored"),
        ("window 0m0.0s", &[], &[HOST], Some("0m0.0s"), "ignored"),
    ];
    for target in BOTH {
        for &(name, args, data, window, outcome) in rows {
            let mut anns = vec![("global-rate-limit", "100")];
            anns.extend(window.map(|w| ("global-rate-limit-window", w)));
            let docs = [controller_at("v1.11.3", args, data), ing_at("web", "g-lim", 2021, "/", &anns)];
            let m = run(&docs, target);
            let text = m.report.text();
            let e = entry(&m, "Ingress/web/g-lim", "global-rate-limit");
            match outcome {
                "limit" => {
                    assert_eq!(routes(&m, false), ["g-lim"], "{name} {target:?}:\n{text}");
                    assert_eq!(open_policies(&m).len(), 1, "{name} {target:?}:\n{text}");
                    assert!(matches!(e.status, Status::Converted | Status::Changed), "{name} {target:?}:\n{text}");
                }
                "ignored" => {
                    assert_eq!(routes(&m, false), ["g-lim"], "{name} {target:?}:\n{text}");
                    assert!(open_policies(&m).is_empty(), "{name} {target:?}:\n{text}");
                    assert_eq!(e.status, Status::Ignored, "{name} {target:?}:\n{text}");
                    assert!(!m.report.incomplete(), "{name} {target:?}:\n{text}");
                }
                _ => {
                    assert!(routes(&m, false).is_empty(), "{name} {target:?}:\n{text}");
                    assert!(m.report.incomplete(), "{name} {target:?}:\n{text}");
                }
            }
        }
    }
}
