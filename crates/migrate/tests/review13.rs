//! The thirteenth review's findings, each a table on both targets with the
//! reviewer's inputs (/tmp/mrev13-in): ImplementationSpecific paths held as
//! Prefix by ingress-nginx (R13-6), the catch-all default backend against a
//! host-less `/` rule (R13-5), `--enable-ssl-passthrough` (R13-1), an
//! http-snippet `server {}` taking a host (R13-2), and the ConfigMap
//! values of R13-3, R13-4, R13-7 and R13-8.

mod common;

use common::{controller, controller_at, ing_at, open_policies, routes, run};
use realip_migrate::{Migration, Target};

/// ConfigMap lines or annotations.
type Lines<'a> = &'a [(&'a str, &'a str)];

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];

/// `ing_at` with the path's pathType replaced (`None`: the line removed).
fn ing_typed(name: &str, year: u32, path: &str, path_type: Option<&str>, anns: &[(&str, &str)]) -> String {
    let doc = ing_at("web", name, year, path, anns);
    match path_type {
        Some(t) => doc.replacen("pathType: Prefix", &format!("pathType: {t}"), 1),
        None => doc.replacen("        pathType: Prefix\n", "", 1),
    }
}

/// Which of `m`'s open routes carry a (non-deny-all) policy.
fn restricted(m: &Migration) -> Vec<String> {
    let mut out: Vec<String> = open_policies(m)
        .iter()
        .flat_map(|p| {
            p["spec"]["targetRefs"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

const ALLOW: [(&str, &str); 1] = [("whitelist-source-range", "203.0.113.0/24")];

/// R13-6 (is1, is2): ingress-nginx's store turns an absent or
/// ImplementationSpecific pathType into Prefix (SetDefaultNGINXPathType,
/// v0.34 … v1.15.1) before merging: `/admin` ImplementationSpecific and
/// `/admin` Prefix are one location, the older Ingress's; an allow-listed
/// ImplementationSpecific `/admin` beside an open `/` converts as the
/// Prefix equivalent (no deny-all, no string-prefix remainder).
#[test]
fn implementation_specific_is_prefix() {
    type Row<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, &'a [&'a str], &'a [&'a str]);
    // (name, tag, older allow-listed /admin's pathType, newer open /admin's pathType, open routes, restricted routes)
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("is1", "v1.15.1", Some("ImplementationSpecific"), Some("Prefix"), &["o-admin"], &["o-admin"]),
        ("is1 v1.9.6", "v1.9.6", Some("ImplementationSpecific"), Some("Prefix"), &["o-admin"], &["o-admin"]),
        ("is1 reversed", "v1.15.1", Some("Prefix"), Some("ImplementationSpecific"), &["o-admin"], &["o-admin"]),
        ("is1 no pathType", "v1.11.3", None, Some("Prefix"), &["o-admin"], &["o-admin"]),
        ("both ImplementationSpecific", "v1.15.1", Some("ImplementationSpecific"), Some("ImplementationSpecific"), &["o-admin"], &["o-admin"]),
        ("control: Exact newer", "v1.15.1", Some("ImplementationSpecific"), Some("Exact"), &["n-open", "o-admin"], &["o-admin"]),
    ];
    for target in BOTH {
        for &(name, tag, old_t, new_t, open, limited) in rows {
            let docs = [
                controller_at(tag, &[], &[]),
                ing_typed("o-admin", 2020, "/admin", old_t, &ALLOW),
                ing_typed("n-open", 2022, "/admin", new_t, &[]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            assert_eq!(routes(&m, false), open, "{name} {target:?}:\n{text}");
            assert!(routes(&m, true).is_empty(), "{name} {target:?}: denied {:?}\n{text}", routes(&m, true));
            assert_eq!(restricted(&m), limited, "{name} {target:?}:\n{text}");
            assert!(!text.contains("string prefix"), "{name} {target:?}:\n{text}");
        }
        // is2: site `/` + allow-listed `/admin`, both ImplementationSpecific.
        for (tag, types) in [("v1.15.1", [Some("ImplementationSpecific"); 2]), ("v1.12.8", [None, None])] {
            let docs = [
                controller_at(tag, &[], &[]),
                ing_typed("site", 2020, "/", types[0], &[]),
                ing_typed("admin", 2021, "/admin", types[1], &ALLOW),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            assert_eq!(routes(&m, false), ["admin", "site"], "is2 {tag} {target:?}:\n{text}");
            assert!(routes(&m, true).is_empty(), "is2 {tag} {target:?}:\n{text}");
            assert_eq!(restricted(&m), ["admin"], "is2 {tag} {target:?}:\n{text}");
            assert!(!m.report.incomplete(), "is2 {tag} {target:?}:\n{text}");
        }
        // A canary written ImplementationSpecific next to a Prefix main: one location.
        let canary = [("canary", "true"), ("canary-weight", "10")];
        let docs = [
            controller_at("v1.15.1", &[], &[]),
            ing_typed("m-main", 2020, "/", Some("Prefix"), &[]),
            ing_typed("c-can", 2021, "/", Some("ImplementationSpecific"), &canary),
        ];
        let m = run(&docs, target);
        let text = m.report.text();
        assert_eq!(routes(&m, false), ["m-main"], "canary {target:?}:\n{text}");
        assert!(!text.contains("no main (non-canary) Ingress"), "canary {target:?}:\n{text}");
    }
}

/// A rules-less Ingress with only `spec.defaultBackend` (the catch-all server's backend).
fn catch_all(name: &str, year: u32, anns: &[(&str, &str)]) -> String {
    let doc = ing_at("web", name, year, "/", anns);
    let head = doc.split_once("  rules:\n").unwrap().0;
    format!("{head}  defaultBackend:\n    service:\n      name: {name}-svc\n      port:\n        number: 80\n")
}

/// R13-5 (cb, cb2): createServers makes the first rules-less
/// defaultBackend Ingress the root location `/` of the catch-all server
/// before any rule is placed; a host-less `/` Prefix rule of another
/// Ingress, older or not, is never served. The output keeps the catch-all
/// route only (its allow list, or deny-all when it does not convert).
#[test]
fn catch_all_default_backend_owns_the_host_less_root() {
    type Row<'a> = (&'a str, &'a str, u32, &'a str, Option<&'a str>, Lines<'a>, &'a [&'a str], &'a [&'a str]);
    let bad: Lines = &[("whitelist-source-range", "203.0.113.0/33")];
    // (name, catch-all name, its year, host-less path, its pathType, catch-all annotations, open routes, denied routes)
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("cb2", "z-catchall", 2022, "/", Some("Prefix"), &ALLOW, &["z-catchall-default-backend"], &[]),
        ("cb", "c-catchall", 2022, "/", Some("Prefix"), &ALLOW, &["c-catchall-default-backend"], &[]),
        ("catch-all older", "z-catchall", 2019, "/", Some("Prefix"), &ALLOW, &["z-catchall-default-backend"], &[]),
        ("host-less ImplementationSpecific", "z-catchall", 2022, "/", Some("ImplementationSpecific"), &ALLOW, &["z-catchall-default-backend"], &[]),
        ("host-less no pathType", "z-catchall", 2022, "/", None, &ALLOW, &["z-catchall-default-backend"], &[]),
        ("catch-all left out", "z-catchall", 2022, "/", Some("Prefix"), bad, &[], &["z-catchall-denied"]),
        ("control: host-less Exact /", "z-catchall", 2022, "/", Some("Exact"), &ALLOW, &["h-hostless", "z-catchall-default-backend"], &[]),
        ("control: host-less /h", "z-catchall", 2022, "/h", Some("Prefix"), &ALLOW, &["h-hostless", "z-catchall-default-backend"], &[]),
    ];
    for target in BOTH {
        for &(name, ca, year, path, ptype, anns, open, denied) in rows {
            let hostless = ing_typed("h-hostless", 2020, path, ptype, &[])
                .replace("  - host: app.example.com\n    http:", "  - http:");
            let docs = [controller_at("v1.15.1", &[], &[]), catch_all(ca, year, anns), hostless];
            let m = run(&docs, target);
            let text = m.report.text();
            assert_eq!(routes(&m, false), open, "{name} {target:?}:\n{text}");
            assert_eq!(routes(&m, true), denied, "{name} {target:?}:\n{text}");
            if anns == ALLOW.as_slice() {
                assert_eq!(restricted(&m), [format!("{ca}-default-backend")], "{name} {target:?}:\n{text}");
            }
            if open.len() == 1 || !denied.is_empty() {
                let e = m.report.entries.iter().find(|e| e.object.starts_with("Ingress/web/h-hostless"));
                let e = e.unwrap_or_else(|| panic!("{name} {target:?}: no h-hostless entry\n{text}"));
                assert_eq!(e.status, realip_migrate::Status::NotConverted, "{name} {target:?}:\n{text}");
                assert!(e.why.contains("catch-all"), "{name} {target:?}: {}", e.why);
            }
        }
    }
}

/// `ing` with a `spec.tls` for app.example.com.
fn with_tls(ing: &str) -> String {
    ing.replacen("  rules:\n", "  tls:\n  - hosts: [app.example.com]\n    secretName: app-tls\n  rules:\n", 1)
}

/// R13-1 (p1, p1b): with `--enable-ssl-passthrough` the controller hands
/// TLS connections to nginx on 127.0.0.1:442; unless use-proxy-protocol is
/// on and 127.0.0.1 is in proxy-real-ip-cidr every HTTPS client is
/// 127.0.0.1 there (an allow list refuses all, a limit is one bucket).
/// An Ingress with an allow list or a limit on a TLS host is then left out
/// (deny-all), the flag reported; deny lists and plain-HTTP hosts stay.
#[test]
fn ssl_passthrough_makes_https_clients_loopback() {
    const PP: (&str, &str) = ("use-proxy-protocol", "true");
    let limit: Lines = &[("limit-rps", "5")];
    let p1b: Lines = &[ALLOW[0], ("limit-rps", "5")];
    let deny: Lines = &[("denylist-source-range", "198.51.100.7/32")];
    // (name, flag on, ConfigMap lines, annotations, tls: 0 none / 1 own / 2 another Ingress's, denied)
    #[rustfmt::skip]
    let rows: &[(&str, bool, Lines, Lines, u8, bool)] = &[
        ("p1", true, &[], &ALLOW, 1, true),
        ("p1b", true, &[PP, ("proxy-real-ip-cidr", "10.0.0.0/16")], p1b, 1, true),
        ("limit only", true, &[], limit, 1, true),
        ("forwarded headers trusted from everyone", true, &[("use-forwarded-headers", "true")], &ALLOW, 1, true),
        ("TLS from another Ingress", true, &[], &ALLOW, 2, true),
        ("control: PROXY, 127.0.0.1 trusted", true, &[PP, ("proxy-real-ip-cidr", "10.0.0.0/16,127.0.0.1/32")], &ALLOW, 1, false),
        ("control: PROXY, default trust", true, &[PP], &ALLOW, 1, false),
        ("control: no flag", false, &[], &ALLOW, 1, false),
        ("control: flag off", false, &[], &ALLOW, 1, false),
        ("control: no TLS host", true, &[], &ALLOW, 0, false),
        ("control: deny list", true, &[], deny, 1, false),
    ];
    for target in BOTH {
        for &(name, flag, data, anns, tls, denied) in rows {
            let arg =
                if name == "control: flag off" { "--enable-ssl-passthrough=false" } else { "--enable-ssl-passthrough" };
            let mut ctl = controller(data);
            if flag || name == "control: flag off" {
                ctl = ctl.replacen("- --ingress-class=nginx", &format!("- --ingress-class=nginx\n        - {arg}"), 1);
            }
            let admin = ing_at("web", "admin", 2021, "/", anns);
            let mut docs = vec![ctl, if tls == 1 { with_tls(&admin) } else { admin }];
            if tls == 2 {
                docs.push(with_tls(&ing_at("web", "other", 2021, "/other", &[])));
            }
            let m = run(&docs, target);
            let text = m.report.text();
            // Envoy Gateway does not convert the PROXY policy: left out there anyway.
            let pp_lost = target == Target::EnvoyGateway && data.contains(&PP);
            let is_denied = routes(&m, true).iter().any(|r| r.starts_with("admin"));
            assert_eq!(is_denied, denied || pp_lost, "{name} {target:?}:\n{text}");
            if denied {
                assert!(m.report.incomplete(), "{name} {target:?}:\n{text}");
                assert!(!restricted(&m).contains(&"admin".to_owned()), "{name} {target:?}:\n{text}");
            } else if !pp_lost {
                assert!(restricted(&m).contains(&"admin".to_owned()), "{name} {target:?}:\n{text}");
            }
            let e = m.report.entries.iter().find(|e| e.key == "--enable-ssl-passthrough");
            if flag {
                let e = e.unwrap_or_else(|| panic!("{name} {target:?}: the flag is not reported\n{text}"));
                let lost = denied || name == "control: no TLS host" || name == "control: deny list";
                assert_eq!(e.status == realip_migrate::Status::NotConverted, lost, "{name} {target:?}:\n{text}");
            } else {
                assert!(e.is_none(), "{name} {target:?}:\n{text}");
            }
        }
    }
}

/// R13-2 (a1): a top-level `server {}` of the ConfigMap's http-snippet
/// comes before every generated server, and nginx keeps the first server
/// that declares a name on an address:port: it takes that host from
/// ingress-nginx. The host's routes are deny-all; a wildcard, regex or
/// unknown name takes names from the catch-all too (the host-less routes
/// are deny-all). A server on another port takes nothing.
#[test]
fn http_snippet_server_takes_its_hosts() {
    // (name, http-snippet, app.example.com denied, the catch-all denied)
    #[rustfmt::skip]
    let rows: &[(&str, &str, bool, bool)] = &[
        ("a1", "server {\n  listen 80;\n  server_name app.example.com;\n  return 403;\n}", true, false),
        ("no listen", "server { server_name app.example.com; location / { deny all; } }", true, false),
        ("listen 443 ssl", "server { listen 443 ssl; server_name app.example.com; ssl_certificate /c.pem; ssl_certificate_key /k.pem; }", true, false),
        ("listen [::]:80", "server { listen [::]:80; server_name app.example.com; return 403; }", true, false),
        ("upper case, quoted", "server { listen 80; server_name \"APP.example.com\"; return 403; }", true, false),
        ("wildcard", "server { listen 80; server_name *.example.com; return 403; }", true, true),
        ("regex", "server { listen 80; server_name ~^app; return 403; }", true, true),
        ("another name", "server { listen 80; server_name other.example; return 403; }", false, true),
        ("control: another port", "server { listen 8081; server_name app.example.com; return 403; }", false, false),
        ("control: a unix socket", "server { listen unix:/tmp/s.sock; server_name app.example.com; return 403; }", false, false),
        ("control: no name", "server { listen 8080; location / { return 200; } }", false, false),
    ];
    for target in BOTH {
        for &(name, snippet, app_denied, any_denied) in rows {
            let docs = [
                controller_at("v1.15.1", &[], &[("http-snippet", snippet)]),
                ing_at("web", "app", 2021, "/", &[]),
                ing_at("web", "d-any", 2021, "/any", &[]).replace("- host: app.example.com\n    http:", "- http:"),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            let denied = routes(&m, true);
            let is_denied = |r: &str| denied.iter().any(|d| d.starts_with(r));
            assert_eq!(is_denied("app"), app_denied, "{name} {target:?} app:\n{text}");
            assert_eq!(is_denied("d-any"), any_denied, "{name} {target:?} d-any:\n{text}");
            let open = routes(&m, false);
            assert_eq!(open.iter().any(|r| r == "app"), !app_denied, "{name} {target:?}:\n{text}");
            assert!(m.report.incomplete(), "{name} {target:?}:\n{text}");
            if app_denied {
                assert!(
                    text.contains("server_name"),
                    "{name} {target:?}: the report names the snippet's server\n{text}"
                );
            }
        }
    }
}

/// The sources of the client-IP policy (realip: `sources`; Envoy Gateway: its `clientIPDetection`), as text.
fn client_sources(m: &Migration) -> String {
    let p = m.objects.iter().find(|o| matches!(o["kind"].as_str(), Some("ClientIPPolicy" | "ClientTrafficPolicy")));
    p.map(|p| format!("{}{}", p["spec"]["sources"], p["spec"]["clientIPDetection"])).unwrap_or_default()
}

/// R13-3 (f1) and R13-7 (fh2): `forwarded-for-header` values. realip's
/// controller refuses Forwarded, Host, Content-Length, … as a header
/// source: not converted (no such source emitted; the allow-listed Ingress
/// left out). nginx never reads `proxy_protocol` without PROXY, nor a name
/// with `_` (dropped unless enable-underscores-in-headers): the client is
/// the TCP peer there and in the output (no header believed), the allow
/// list converted.
#[test]
fn forwarded_for_header_values_nginx_or_realip_never_read() {
    // (name, ConfigMap lines after BASE, outcome: "refused" / "peer" / "header")
    #[rustfmt::skip]
    let rows: &[(&str, Lines, &str)] = &[
        ("f1 Forwarded", &[("forwarded-for-header", "Forwarded")], "refused"),
        ("FORWARDED", &[("forwarded-for-header", "FORWARDED")], "refused"),
        ("Host", &[("forwarded-for-header", "Host")], "refused"),
        ("Content-Length", &[("forwarded-for-header", "Content-Length")], "refused"),
        ("fh2 proxy_protocol", &[("enable-real-ip", "true"), ("forwarded-for-header", "proxy_protocol")], "peer"),
        ("fh2 X_Forwarded_For", &[("enable-real-ip", "true"), ("forwarded-for-header", "X_Forwarded_For")], "peer"),
        ("control: X-Client-IP", &[("forwarded-for-header", "X-Client-IP")], "header"),
        ("control: underscores on", &[("enable-underscores-in-headers", "true"), ("forwarded-for-header", "X_Client")], "header"),
        ("control: x-forwarded-for", &[("forwarded-for-header", "x-forwarded-for")], "header"),
    ];
    for target in BOTH {
        for &(name, data, outcome) in rows {
            let docs = [controller_at("v1.15.1", &[], data), ing_at("web", "admin", 2021, "/", &ALLOW)];
            let m = run(&docs, target);
            let text = m.report.text();
            let e = m.report.entries.iter().find(|e| e.key == "forwarded-for-header").unwrap();
            let sources = client_sources(&m);
            let header = data.iter().find(|(k, _)| *k == "forwarded-for-header").unwrap().1;
            match outcome {
                "refused" => {
                    assert_eq!(e.status, realip_migrate::Status::NotConverted, "{name} {target:?}:\n{text}");
                    assert!(!sources.contains(header), "{name} {target:?}: {sources}");
                    assert_eq!(routes(&m, true), ["admin-denied"], "{name} {target:?}:\n{text}");
                    assert!(restricted(&m).is_empty(), "{name} {target:?}:\n{text}");
                }
                "peer" => {
                    assert_ne!(e.status, realip_migrate::Status::NotConverted, "{name} {target:?}:\n{text}");
                    assert!(!sources.contains(header), "{name} {target:?}: {sources}");
                    assert!(
                        !sources.contains("header") && !sources.contains("xForwardedFor"),
                        "{name} {target:?}: {sources}"
                    );
                    assert_eq!(restricted(&m), ["admin"], "{name} {target:?}:\n{text}");
                }
                // Envoy Gateway's customHeader believes every peer: not converted there (existing rule).
                _ if target == Target::EnvoyGateway && !header.eq_ignore_ascii_case("x-forwarded-for") => {}
                _ => {
                    assert_ne!(e.status, realip_migrate::Status::NotConverted, "{name} {target:?}:\n{text}");
                    assert_eq!(restricted(&m), ["admin"], "{name} {target:?}:\n{text}");
                    if target == Target::Realip {
                        let want =
                            if header.eq_ignore_ascii_case("x-forwarded-for") { "XForwardedFor" } else { header };
                        assert!(sources.contains(want), "{name} {target:?}: {sources}");
                    }
                }
            }
        }
    }
}

/// R13-4 (g1): `global-rate-limit: "-1"` on v1.11 with memcached: Atoi
/// accepts it, only 0 disables the limit, and the throttle's `count >=
/// limit` refuses every request (429): the Ingress is deny-all, not open.
#[test]
fn negative_global_rate_limit_refuses_everyone() {
    const MC: [(&str, &str); 2] =
        [("global-rate-limit-memcached-host", "memcached.default.svc"), ("global-rate-limit-memcached-port", "11211")];
    // (name, limit, window, denied)
    #[rustfmt::skip]
    let rows: &[(&str, &str, &str, bool)] = &[
        ("g1", "-1", "1m", true),
        ("-100 per 10s", "-100", "10s", true),
        ("control: a window under 1 s", "-1", "500ms", false),
        ("control: 0", "0", "1m", false),
        ("control: 10", "10", "1m", false),
    ];
    for target in BOTH {
        for &(name, limit, window, denied) in rows {
            let anns = [("global-rate-limit", limit), ("global-rate-limit-window", window)];
            let docs = [controller_at("v1.11.3", &[], &MC), ing_at("web", "app", 2021, "/", &anns)];
            let m = run(&docs, target);
            let text = m.report.text();
            assert_eq!(routes(&m, true) == ["app-denied"], denied, "{name} {target:?}:\n{text}");
            assert_eq!(routes(&m, false).is_empty(), denied, "{name} {target:?}:\n{text}");
            if denied {
                assert!(m.report.incomplete(), "{name} {target:?}:\n{text}");
            }
        }
    }
}

/// R13-8 (lz): the ConfigMap's `limit-conn-zone-variable` keys every
/// limit-rps / limit-rpm zone. Anything but the client address
/// (`$binary_remote_addr`, `$remote_addr`) makes those limits not
/// converted (no per-client limit claimed); the key is reported, not
/// "not handled".
#[test]
fn limit_conn_zone_variable_is_the_limit_key() {
    // (name, limit-conn-zone-variable, converted)
    #[rustfmt::skip]
    let rows: &[(&str, &str, bool)] = &[
        ("lz $server_name", "$server_name", false),
        ("$host", "$host", false),
        ("control: $binary_remote_addr", "$binary_remote_addr", true),
        ("control: $remote_addr", "$remote_addr", true),
    ];
    for target in BOTH {
        for &(name, var, converted) in rows {
            for key in ["limit-rps", "limit-rpm"] {
                let docs = [
                    controller_at("v1.15.1", &[], &[("limit-conn-zone-variable", var)]),
                    ing_at("web", "app", 2021, "/", &[(key, "5")]),
                ];
                let m = run(&docs, target);
                let text = m.report.text();
                let e = m.report.entries.iter().find(|e| e.key == key).unwrap();
                let cm = m.report.entries.iter().find(|e| e.key == "limit-conn-zone-variable").unwrap();
                assert!(!cm.why.contains("not handled"), "{name} {target:?}: {}", cm.why);
                assert_eq!(
                    e.status != realip_migrate::Status::NotConverted,
                    converted,
                    "{name} {key} {target:?}:\n{text}"
                );
                assert_eq!(restricted(&m) == ["app"], converted, "{name} {key} {target:?}:\n{text}");
                assert_eq!(m.report.incomplete(), !converted, "{name} {key} {target:?}:\n{text}");
            }
        }
    }
}
