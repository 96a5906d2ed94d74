//! The fourteenth review's findings, each a table on both targets with the
//! reviewer's inputs (/tmp/mrev14-in): ingress-nginx's upstreams (one per
//! `namespace-service-port`, the first Ingress to name it makes it, a
//! canary's is NoServer) against other Ingresses' paths (R14-1) and a
//! canary's own (R14-2), an http-snippet `server {}` on the controller's
//! own `--http-port` / `--https-port` (R14-3), PROXY believed from any peer
//! over HTTPS under `--enable-ssl-passthrough` (R14-4), and a host-less
//! `spec.tls` under passthrough (L1).

mod common;

use common::{backends, controller, controller_at, ing_at, open_policies, routes, run};
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

/// An Ingress `name` in `ns` created in `year`: host `host` (empty: none),
/// Prefix `path` → Service `svc` port 80, with annotations.
fn ing(ns: &str, name: &str, year: u32, host: &str, path: &str, svc: &str, anns: Lines) -> String {
    let doc = ing_at(ns, name, year, path, anns).replacen(&format!("name: {name}-svc"), &format!("name: {svc}"), 1);
    if host.is_empty() {
        doc.replacen("  - host: app.example.com\n    http:", "  - http:", 1)
    } else {
        doc.replacen("host: app.example.com", &format!("host: {host}"), 1)
    }
}

/// A canary Ingress (`canary-weight: 10`, more annotations `anns`).
fn canary(ns: &str, year: u32, host: &str, path: &str, svc: &str, anns: Lines) -> String {
    let all: Vec<(&str, &str)> =
        [("canary", "true"), ("canary-weight", "10")].into_iter().chain(anns.iter().copied()).collect();
    ing(ns, "c-canary", year, host, path, svc, &all)
}

const ALLOW: (&str, &str) = ("whitelist-source-range", "203.0.113.0/24");

/// R14-1 (cn1, cn4): a canary that names a Service+port first (or through
/// its `spec.defaultBackend`, whatever its age) makes its upstream a
/// NoServer one, and ingress-nginx serves no path naming that upstream,
/// another Ingress's neither (upstream names collide across namespaces):
/// x-preview is not emitted at all (no route; reported, exit 1), while the
/// canary still folds into m-main. The controls keep x-preview open.
#[test]
fn a_canarys_upstream_serves_no_other_ingress() {
    let main = ing("web", "m-main", 2021, "app.example.com", "/", "blue", &[ALLOW]);
    let preview = |year: u32, svc: &str| ing("web", "x-preview", year, "green.example.com", "/", svc, &[]);
    let with_default = |doc: String| {
        doc.replacen(
            "  rules:\n",
            "  defaultBackend:\n    service:\n      name: green\n      port:\n        number: 80\n  rules:\n",
            1,
        )
    };
    // (name, Ingresses, x-preview served open, the canary folded into m-main)
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<String>, bool, bool)> = vec![
        ("cn1", vec![canary("web", 2020, "app.example.com", "/", "green", &[]), main.clone(), preview(2022, "green")], false, true),
        // The canary's defaultBackend finds no location of the catch-all to merge into: its upstream is deleted, no weight.
        ("preview older, canary's defaultBackend", vec![preview(2019, "green"), with_default(canary("web", 2020, "app.example.com", "/", "green", &[])), main.clone()], false, false),
        ("cn4 (a-b/c:80 is a/b-c:80's upstream)", vec![
            canary("a", 2020, "app.example.com", "/", "b-c", &[]),
            ing("a", "m-main", 2021, "app.example.com", "/", "blue", &[ALLOW]),
            ing("a-b", "x-preview", 2022, "green.example.com", "/", "c", &[]),
        ], false, true),
        ("control: another port", vec![canary("web", 2020, "app.example.com", "/", "green", &[]), main.clone(), preview(2022, "green").replacen("number: 80", "number: 8080", 1)], true, true),
        ("control: another namespace, no collision", vec![canary("web", 2020, "app.example.com", "/", "green", &[]), main.clone(), ing("other", "x-preview", 2022, "green.example.com", "/", "green", &[])], true, true),
    ];
    for target in BOTH {
        for (name, docs, served, folded) in &rows {
            let mut all = vec![controller(&[])];
            all.extend(docs.iter().cloned());
            let m = run(&all, target);
            let text = m.report.text();
            assert_eq!(routes(&m, false).iter().any(|r| r == "x-preview"), *served, "{name} {target:?}:\n{text}");
            // Not served: no route at all, as ingress-nginx has no location.
            assert!(!routes(&m, true).iter().any(|r| r.starts_with("x-preview")), "{name} {target:?}:\n{text}");
            let not_served = m.report.entries.iter().any(|e| {
                e.object.ends_with("/x-preview") && e.status == Status::NotConverted && e.why.contains("NoServer")
            });
            assert_eq!(not_served, !*served, "{name} {target:?}:\n{text}");
            assert_eq!(m.report.incomplete(), !*served, "{name} {target:?}:\n{text}");
            let green = backends(&m, "m-main").iter().any(|(s, w)| (s == "green" || s == "b-c") && *w == Some(10));
            assert_eq!(green, *folded, "{name} {target:?}:\n{text}");
            assert!(restricted_routes(&m).contains(&"m-main".to_owned()), "{name} {target:?}:\n{text}");
        }
    }
}

/// Routes with an access policy that is not deny-all.
fn restricted_routes(m: &Migration) -> Vec<String> {
    open_policies(m).iter().map(|p| p["spec"]["targetRefs"][0]["name"].as_str().unwrap().to_owned()).collect()
}

/// R14-2 (cn2, cn3): a canary whose Service+port a non-canary Ingress named
/// first is no canary on those paths in ingress-nginx: an ordinary
/// location with the canary's own annotations (its allow list), 100 % to
/// its Service, taking the location from newer Ingresses (the catch-all's
/// for a host no Ingress has). The output never emits the open split: the
/// location is left out, deny-all (`c-canary-denied`), the newer Ingress's
/// path is not emitted, exit 1. When an older Ingress keeps the location
/// ("Related"), or a path of the canary matches no location (its upstream
/// is deleted), ingress-nginx sends the canary nothing: no weight in the
/// output either and `canary-weight` is not reported converted.
#[test]
fn a_canary_on_a_main_ingresss_upstream_is_an_ordinary_location() {
    type Row<'a> = (&'a str, Vec<String>, bool, &'a str, bool, bool);
    let preview = ing("web", "x-preview", 2019, "green.example.com", "/", "green", &[]);
    // (name, Ingresses, c-canary-denied emitted, the open route that must not serve green's
    // location ("" none), green weighted into m-main, canary-weight converted)
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("cn2", vec![preview.clone(), canary("web", 2020, "app.example.com", "/admin", "green", &[ALLOW]), ing("web", "m-main", 2021, "app.example.com", "/admin", "blue", &[])], true, "m-main", false, false),
        ("cn2, ports by an unresolved name", vec![
            preview.replacen("number: 80", "name: http", 1),
            canary("web", 2020, "app.example.com", "/admin", "green", &[ALLOW]).replacen("number: 80", "name: http", 1),
            ing("web", "m-main", 2021, "app.example.com", "/admin", "blue", &[]),
        ], true, "m-main", false, false),
        ("cn3 (catch-all)", vec![preview.clone(), canary("web", 2020, "new.example.com", "/", "green", &[ALLOW]), ing("web", "h-hostless", 2021, "", "/", "h", &[])], true, "h-hostless", false, false),
        ("main older: weight 0", vec![preview.clone(), ing("web", "m-main", 2019, "app.example.com", "/admin", "blue", &[]), canary("web", 2020, "app.example.com", "/admin", "green", &[])], false, "", false, false),
        ("a canary path without location: upstream deleted", vec![
            ing("web", "m-main", 2019, "app.example.com", "/admin", "blue", &[]),
            canary("web", 2020, "app.example.com", "/admin", "green", &[]).replacen("      - path: \"/admin\"\n", "      - path: \"/nowhere\"\n        pathType: Prefix\n        backend:\n          service:\n            name: green\n            port:\n              number: 80\n      - path: \"/admin\"\n", 1),
        ], false, "", false, false),
        ("control: the canary's own upstream", vec![ing("web", "m-main", 2019, "app.example.com", "/admin", "blue", &[]), canary("web", 2020, "app.example.com", "/admin", "green", &[])], false, "", true, true),
    ];
    for target in BOTH {
        for (name, docs, denied, shadowed, folded, converted) in &rows {
            let mut all = vec![controller(&[])];
            all.extend(docs.iter().cloned());
            let m = run(&all, target);
            let text = m.report.text();
            assert_eq!(routes(&m, true).iter().any(|r| r == "c-canary-denied"), *denied, "{name} {target:?}:\n{text}");
            if !shadowed.is_empty() {
                assert!(!routes(&m, false).iter().any(|r| r == shadowed), "{name} {target:?}:\n{text}");
            }
            assert!(m.report.incomplete() || !*denied, "{name} {target:?}:\n{text}");
            let green = backends(&m, "m-main").iter().any(|(s, w)| s == "green" && *w == Some(10));
            assert_eq!(green, *folded, "{name} {target:?}:\n{text}");
            let weight = m.report.entries.iter().find(|e| e.key == "canary-weight").unwrap();
            assert_eq!(weight.status == Status::Converted, *converted, "{name} {target:?}:\n{text}");
            // Never green to everyone on a location ingress-nginx restricted or did not route there.
            if *denied {
                assert!(!backends(&m, shadowed).iter().any(|(s, _)| s == "green"), "{name} {target:?}:\n{text}");
            }
        }
    }
}

/// Review 13 L2: the controller's version is read from ingress-nginx's
/// image under any registry, mirror or digest, `controller-chroot` (the
/// Helm chart's `controller.image.chroot`) included: a v1.11 controller
/// drops snippet annotations (default since v1.9), so the snippet is
/// ignored and the Ingress converted; an image that is not ingress-nginx's
/// leaves the version unknown (the snippet counts: not converted).
#[test]
fn the_controller_version_is_read_from_any_ingress_nginx_image() {
    // (image, version read)
    #[rustfmt::skip]
    let rows: &[(&str, bool)] = &[
        ("registry.k8s.io/ingress-nginx/controller:v1.11.3", true),
        ("registry.k8s.io/ingress-nginx/controller-chroot:v1.11.3@sha256:0123abcd", true),
        ("registry.example.com:5000/mirror/ingress-nginx/controller-chroot:v1.11.3", true),
        ("registry.example.com/ingress-nginx-controller:v1.11.3", true),
        ("control: not ingress-nginx's", false),
        ("control: no tag (the port is no tag)", false),
    ];
    for target in BOTH {
        for &(image, read) in rows {
            let img = match image {
                "control: not ingress-nginx's" => "quay.io/example/nginx:v1.11.3",
                "control: no tag (the port is no tag)" => "registry.example.com:5000/ingress-nginx/controller-chroot",
                i => i,
            };
            let ctl = controller(&[]).replacen("registry.k8s.io/ingress-nginx/controller:v1.15.1", img, 1);
            let app = ing_at("web", "app", 2021, "/", &[("configuration-snippet", "more_set_headers \"X-A: b\";")]);
            let m = run(&[ctl, app], target);
            let text = m.report.text();
            let snippet = entry(&m, "configuration-snippet");
            assert_eq!(snippet.status == Status::Ignored, read, "{image} {target:?}:\n{text}");
            assert_eq!(routes(&m, false).iter().any(|r| r == "app"), read, "{image} {target:?}:\n{text}");
        }
    }
}

/// R14-1's note: upstream names collide across namespaces (`a`/`b-c`:80
/// and `a-b`/`c`:80 are both `a-b-c-80`), and the first Ingress to name
/// one makes it: without a canary, the newer Ingress's location is sent to
/// the older one's Service. The output cannot send there from the other
/// namespace: that path is left out, deny-all, reported (exit 1). Control:
/// another Service, no collision.
#[test]
fn colliding_upstream_names_send_to_the_first_service() {
    // (name, a/m-main's year, a-b/x-other's Service, its year, x-other denied, m-main denied)
    #[rustfmt::skip]
    let rows: &[(&str, u32, &str, u32, bool, bool)] = &[
        ("a/b-c made first", 2020, "c", 2021, true, false),
        ("a-b/c made first", 2021, "c", 2020, false, true),
        ("control: no collision", 2020, "d", 2021, false, false),
    ];
    for target in BOTH {
        for &(name, main_year, other_svc, other_year, other_denied, main_denied) in rows {
            let docs = [
                controller(&[]),
                ing("a", "m-main", main_year, "app.example.com", "/", "b-c", &[]),
                ing("a-b", "x-other", other_year, "other.example.com", "/", other_svc, &[]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            for (route, denied) in [("x-other", other_denied), ("m-main", main_denied)] {
                assert_eq!(routes(&m, true).contains(&format!("{route}-denied")), denied, "{name} {target:?}:\n{text}");
                assert_eq!(routes(&m, false).iter().any(|r| r == route), !denied, "{name} {target:?}:\n{text}");
            }
            assert_eq!(m.report.incomplete(), other_denied || main_denied, "{name} {target:?}:\n{text}");
        }
    }
}

/// R14-1: a path ingress-nginx skips for its NoServer upstream claims no
/// location, so a newer Ingress's same host+path is served (not shadowed
/// by it). Control: without the canary, the older x-preview keeps it.
#[test]
fn a_skipped_path_claims_no_location() {
    for target in BOTH {
        for with_canary in [true, false] {
            let mut docs = vec![controller(&[])];
            if with_canary {
                docs.push(canary("web", 2020, "app.example.com", "/", "green", &[]));
            }
            docs.push(ing("web", "m-main", 2021, "app.example.com", "/", "blue", &[]));
            docs.push(ing("web", "x-preview", 2022, "green.example.com", "/", "green", &[]));
            docs.push(ing("web", "y-newer", 2023, "green.example.com", "/", "blue", &[ALLOW]));
            let m = run(&docs, target);
            let text = m.report.text();
            let open = routes(&m, false);
            assert_eq!(open.iter().any(|r| r == "y-newer"), with_canary, "{with_canary} {target:?}:\n{text}");
            assert_eq!(open.iter().any(|r| r == "x-preview"), !with_canary, "{with_canary} {target:?}:\n{text}");
            assert_eq!(
                restricted_routes(&m).contains(&"y-newer".to_owned()),
                with_canary,
                "{with_canary} {target:?}:\n{text}"
            );
        }
    }
}

/// A canary is attached to the upstream of the location it matches, not
/// to the location (issues kubernetes/ingress-nginx#4667, #8689): every
/// other location sending to that upstream is split too (reported
/// changed: the output splits the matched path only), and a second canary
/// matching another location of the same upstream is never used
/// (balancer.lua routes by `alternative_backends[1]`): not converted, no
/// weight for it in the output.
#[test]
fn a_canary_belongs_to_its_main_upstream() {
    let main = ing("web", "m-main", 2019, "app.example.com", "/admin", "blue", &[]);
    let d_canary =
        canary("web", 2021, "app.example.com", "/api", "yellow", &[]).replacen("name: c-canary", "name: d-canary", 1);
    // (name, Ingresses, spread reported, d-canary eclipsed)
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<String>, bool, bool)> = vec![
        ("spread", vec![main.clone(), ing("web", "m-api", 2019, "app.example.com", "/api", "blue", &[]), canary("web", 2020, "app.example.com", "/admin", "green", &[])], true, false),
        ("eclipsed", vec![main.clone(), ing("web", "m-api", 2019, "app.example.com", "/api", "blue", &[]), canary("web", 2020, "app.example.com", "/admin", "green", &[]), d_canary.clone()], true, true),
        ("control: another Service", vec![main.clone(), ing("web", "m-api", 2019, "app.example.com", "/api", "red", &[]), canary("web", 2020, "app.example.com", "/admin", "green", &[]), d_canary.clone()], false, false),
    ];
    for target in BOTH {
        for (name, docs, spread, eclipsed) in &rows {
            let mut all = vec![controller(&[])];
            all.extend(docs.iter().cloned());
            let m = run(&all, target);
            let text = m.report.text();
            assert!(
                backends(&m, "m-main").iter().any(|(s, w)| s == "green" && *w == Some(10)),
                "{name} {target:?}:\n{text}"
            );
            let e = m.report.entries.iter().find(|e| e.key == "canary share on other locations");
            assert_eq!(
                e.is_some_and(|e| e.status == Status::Changed && e.why.contains("app.example.com/api (Prefix)")),
                *spread,
                "{name} {target:?}:\n{text}"
            );
            let yellow = backends(&m, "m-api").iter().any(|(s, _)| s == "yellow");
            assert_eq!(yellow, docs.len() == 4 && !eclipsed, "{name} {target:?}:\n{text}");
            let not_used = m.report.entries.iter().any(|e| {
                e.object == "Ingress/web/d-canary"
                    && e.status == Status::NotConverted
                    && e.why.contains("first alternative only")
            });
            assert_eq!(not_used, *eclipsed, "{name} {target:?}:\n{text}");
        }
    }
}

/// A canary's `spec.defaultBackend` is merged into every location of the
/// catch-all server (no path compared), or its upstream is deleted when
/// that server has no Ingress location: not converted in the first case,
/// ignored (no traffic in ingress-nginx either) in the second; never
/// "another Ingress created its hosts".
#[test]
fn a_canarys_default_backend_goes_to_the_catch_all_locations() {
    let with_default = |doc: String| {
        doc.replacen(
            "  rules:\n",
            "  defaultBackend:\n    service:\n      name: green\n      port:\n        number: 80\n  rules:\n",
            1,
        )
    };
    for target in BOTH {
        for catch_all in [true, false] {
            let mut docs = vec![controller(&[]), ing("web", "m-main", 2019, "app.example.com", "/", "blue", &[])];
            if catch_all {
                docs.push(ing("web", "h-hostless", 2019, "", "/", "h", &[]));
            }
            docs.push(with_default(canary("web", 2020, "app.example.com", "/", "green", &[])));
            let m = run(&docs, target);
            let text = m.report.text();
            let e = m
                .report
                .entries
                .iter()
                .find(|e| e.object == "Ingress/web/c-canary" && e.key == "spec.defaultBackend")
                .unwrap_or_else(|| panic!("{catch_all} {target:?}:\n{text}"));
            let want = if catch_all { Status::NotConverted } else { Status::Ignored };
            assert_eq!(e.status, want, "{catch_all} {target:?}:\n{text}");
            assert!(e.why.contains("catch-all server"), "{catch_all} {target:?}:\n{text}");
            assert!(!backends(&m, "h-hostless").iter().any(|(s, _)| s == "green"), "{catch_all} {target:?}:\n{text}");
        }
    }
}

/// Two canaries on one Service+port: the older one made the upstream, so
/// its weights and headers apply wherever the newer one's paths merge;
/// the newer canary's own settings are in no location of ingress-nginx:
/// not converted, no fold of it. Control: its own Service.
#[test]
fn a_second_canary_on_the_same_service_uses_the_first_ones_settings() {
    for target in BOTH {
        for same_service in [true, false] {
            let svc = if same_service { "green" } else { "yellow" };
            let docs = [
                controller(&[]),
                ing("web", "m-main", 2019, "app.example.com", "/admin", "blue", &[]),
                ing("web", "m-api", 2019, "app.example.com", "/api", "red", &[]),
                canary("web", 2020, "app.example.com", "/admin", "green", &[]),
                ing(
                    "web",
                    "d-canary",
                    2021,
                    "app.example.com",
                    "/api",
                    svc,
                    &[("canary", "true"), ("canary-weight", "30")],
                ),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            let other = m.report.entries.iter().any(|e| {
                e.object == "Ingress/web/d-canary"
                    && e.status == Status::NotConverted
                    && e.why.contains("was made by the canary Ingress/web/c-canary")
            });
            assert_eq!(other, same_service, "{same_service} {target:?}:\n{text}");
            let folded = backends(&m, "m-api").iter().any(|(s, w)| s == svc && *w == Some(30));
            assert_eq!(folded, !same_service, "{same_service} {target:?}:\n{text}");
        }
    }
}
