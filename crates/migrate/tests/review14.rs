//! The fourteenth review's findings, each a table on both targets with the
//! reviewer's inputs (/tmp/mrev14-in): an http-snippet `server {}` on the
//! controller's own `--http-port` / `--https-port` (R14-3), PROXY believed
//! from any peer over HTTPS under `--enable-ssl-passthrough` (R14-4), and
//! a host-less `spec.tls` under passthrough (L1).

mod common;

use common::{controller, controller_at, ing_at, open_policies, routes, run};
use realip_migrate::{Migration, Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];

/// ConfigMap lines or annotations.
type Lines<'a> = &'a [(&'a str, &'a str)];

/// R14-3 (sp1, sp2): nginx's generated servers listen on `--http-port`
/// (default 80) and `--https-port` (443), or `--ssl-passthrough-proxy-port`
/// (442) under `--enable-ssl-passthrough`; an http-snippet server declaring
/// app.example.com on one of those ports takes the host (deny-all), one on
/// another port (80 when `--http-port=8080`) takes nothing. A port flag
/// that is not a port makes every port count.
#[test]
fn http_snippet_server_on_the_controllers_ports() {
    // (name, controller args, the snippet server's listen, the Service's targetPorts, app denied)
    #[rustfmt::skip]
    let rows: &[(&str, &[&str], &str, bool, bool)] = &[
        ("sp1", &["--http-port=8080", "--https-port=8443"], "8080", false, true),
        ("sp2 (targetPort 8080)", &["--http-port=8080", "--https-port=8443"], "8080", true, true),
        ("https port", &["--http-port=8080", "--https-port=8443"], "8443 ssl", false, true),
        ("flag and value apart", &["--http-port", "8080"], "0.0.0.0:8080", false, true),
        ("passthrough proxy port", &["--enable-ssl-passthrough", "--ssl-passthrough-proxy-port=4442"], "4442", false, true),
        ("passthrough default proxy port", &["--enable-ssl-passthrough"], "442", false, true),
        ("not a port", &["--http-port=http"], "9090", false, true),
        ("control: listen 80, --http-port=8080", &["--http-port=8080", "--https-port=8443"], "80", false, false),
        ("control: no flags, listen 8080", &[], "8080", false, false),
        ("control: proxy port without passthrough", &["--ssl-passthrough-proxy-port=4442"], "4442", false, false),
    ];
    for target in BOTH {
        for &(name, args, listen, target_port, denied) in rows {
            let snippet = format!("server {{\n  listen {listen};\n  server_name app.example.com;\n  return 403;\n}}");
            let mut ctl = controller_at("v1.15.1", args, &[("http-snippet", &snippet)]);
            if target_port {
                ctl = ctl.replacen(
                    "- {name: http, port: 80}",
                    "- {name: http, port: 80, targetPort: 8080}\n  - {name: https, port: 443, targetPort: 8443}",
                    1,
                );
            }
            let m = run(&[ctl, ing_at("web", "app", 2021, "/", &[])], target);
            let text = m.report.text();
            assert_eq!(routes(&m, true).iter().any(|r| r.starts_with("app")), denied, "{name} {target:?}:\n{text}");
            assert_eq!(routes(&m, false).iter().any(|r| r == "app"), !denied, "{name} {target:?}:\n{text}");
            if denied {
                assert!(text.contains("server_name app.example.com"), "{name} {target:?}:\n{text}");
            }
        }
    }
}

/// `ing` with a `spec.tls` for app.example.com.
fn with_tls(ing: &str) -> String {
    ing.replacen("  rules:\n", "  tls:\n  - hosts: [app.example.com]\n    secretName: app-tls\n  rules:\n", 1)
}

/// The report entry with `key`.
fn entry<'a>(m: &'a Migration, key: &str) -> &'a realip_migrate::Entry {
    m.report.entries.iter().find(|e| e.key == key).unwrap_or_else(|| panic!("no {key} entry:\n{}", m.report.text()))
}

/// R14-4 (pp1): with `--enable-ssl-passthrough`, `use-proxy-protocol` and
/// 127.0.0.1 trusted, the controller's own 443 listener believes a PROXY
/// header from any peer and requires none: the flag is reported changed,
/// never as "the same client", and the Envoy target's PROXY entries say
/// the trusted list held on HTTP only. The allow list stays converted on
/// realip (the output is the more closed side); Envoy Gateway leaves it out
/// (over HTTP it would be more open) as before.
#[test]
fn ssl_passthrough_believes_proxy_from_any_peer() {
    const PP: (&str, &str) = ("use-proxy-protocol", "true");
    // (name, passthrough, ConfigMap lines, HTTPS believed from any peer)
    #[rustfmt::skip]
    let rows: &[(&str, bool, Lines, bool)] = &[
        ("pp1", true, &[PP, ("proxy-real-ip-cidr", "10.0.0.0/16,127.0.0.1/32")], true),
        ("loopback in a wider CIDR", true, &[PP, ("proxy-real-ip-cidr", "10.0.0.0/16,127.0.0.0/8")], true),
        ("control: no passthrough", false, &[PP, ("proxy-real-ip-cidr", "10.0.0.0/16,127.0.0.1/32")], false),
    ];
    for target in BOTH {
        for &(name, passthrough, data, any) in rows {
            let mut ctl = controller(data);
            if passthrough {
                ctl = ctl.replacen(
                    "- --ingress-class=nginx",
                    "- --ingress-class=nginx\n        - --enable-ssl-passthrough",
                    1,
                );
            }
            let admin = with_tls(&ing_at("web", "admin", 2021, "/", &[("whitelist-source-range", "203.0.113.0/24")]));
            let m = run(&[ctl, admin], target);
            let text = m.report.text();
            let allowed = open_policies(&m).iter().any(|p| p["spec"]["targetRefs"][0]["name"] == "admin");
            assert_eq!(allowed, target == Target::Realip, "{name} {target:?}:\n{text}");
            if passthrough {
                let e = entry(&m, "--enable-ssl-passthrough");
                assert_eq!(e.status, Status::Changed, "{name} {target:?}:\n{text}");
                assert!(!e.why.contains("same client"), "{name} {target:?}:\n{text}");
                assert!(e.why.contains("from ANY peer") && e.why.contains("without one"), "{name} {target:?}:\n{text}");
            }
            if target == Target::EnvoyGateway {
                for key in ["use-proxy-protocol", "proxy-real-ip-cidr"] {
                    let says = entry(&m, key).why.contains("on HTTPS, under --enable-ssl-passthrough");
                    assert_eq!(says, any, "{name} {target:?} {key}:\n{text}");
                }
            }
        }
    }
}

/// L1 (pt2): under `--enable-ssl-passthrough` without PROXY every HTTPS
/// client of ingress-nginx is 127.0.0.1; a host-less `spec.tls` (any
/// Ingress's) becomes a Gateway HTTPS listener without hostname that every
/// route attaches to, so an allow-listed Ingress on a host without TLS of
/// its own serves HTTPS there too: left out (deny-all).
#[test]
fn host_less_tls_listener_under_passthrough() {
    // (name, passthrough, t-site's tls entry, b-admin denied)
    #[rustfmt::skip]
    let rows: &[(&str, bool, &str, bool)] = &[
        ("pt2", true, "  - secretName: wildcard-tls\n", true),
        ("hosts: []", true, "  - hosts: []\n    secretName: wildcard-tls\n", true),
        ("control: tls names its host", true, "  - hosts: [t.example.com]\n    secretName: wildcard-tls\n", false),
        ("control: no passthrough", false, "  - secretName: wildcard-tls\n", false),
    ];
    for target in BOTH {
        for &(name, passthrough, tls, denied) in rows {
            let args: &[&str] = if passthrough { &["--enable-ssl-passthrough"] } else { &[] };
            let site = ing_at("web", "t-site", 2020, "/", &[])
                .replacen("- host: app.example.com", "- host: t.example.com", 1)
                .replacen("  rules:\n", &format!("  tls:\n{tls}  rules:\n"), 1);
            let admin = ing_at("web", "b-admin", 2021, "/", &[("whitelist-source-range", "203.0.113.0/24")]);
            let m = run(&[controller_at("v1.15.1", args, &[]), site, admin], target);
            let text = m.report.text();
            assert_eq!(routes(&m, true).iter().any(|r| r.starts_with("b-admin")), denied, "{name} {target:?}:\n{text}");
            let allowed = open_policies(&m).iter().any(|p| p["spec"]["targetRefs"][0]["name"] == "b-admin");
            assert_eq!(allowed, !denied, "{name} {target:?}:\n{text}");
        }
    }
}
