//! The sixteenth review's findings, each a table on both targets with the
//! reviewer's inputs (/tmp/mrev16-in): an upstream mergeAlternativeBackends
//! deletes takes every location naming it with it (R16-5); the names a
//! server answers beside its host (`server-alias`, a server-snippet's
//! `server_name`, the www twin of `from-to-www-redirect`) are never left
//! to a wildcard or host-less route (R16-3); a path listed twice in one
//! Ingress is served from its first copy ingress-nginx does not skip (R16-7);
//! a fallback whose upstream name another namespace's defaultBackend
//! re-made goes to that Service (R16-10); balancer.lua routes by the first
//! alternative backend of an upstream, whatever merged it (R16-1).

mod common;

use std::fmt::Write as _;

use common::{backends, controller, controller_at, find, routes, run};
use realip_migrate::{Migration, Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];

/// Annotations (prefix added).
type Lines<'a> = &'a [(&'a str, &'a str)];

/// A rule: host ("" none) and its Prefix paths `(path, Service)` (port 80).
type Rule<'a> = (&'a str, &'a [(&'a str, &'a str)]);

/// An Ingress `web/name` created in `year`, with annotations, a
/// `spec.defaultBackend` Service (`""`: none) and rules.
fn ing(name: &str, year: u32, anns: Lines, default_backend: &str, rules: &[Rule]) -> String {
    let mut s = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: web\n  creationTimestamp: \"{year}-01-01T00:00:00Z\"\n"
    );
    if !anns.is_empty() {
        s.push_str("  annotations:\n");
        for (k, v) in anns {
            let _ = writeln!(s, "    nginx.ingress.kubernetes.io/{k}: {}", serde_json::to_string(v).unwrap());
        }
    }
    s.push_str("spec:\n  ingressClassName: nginx\n");
    if !default_backend.is_empty() {
        let _ = write!(
            s,
            "  defaultBackend:\n    service:\n      name: {default_backend}\n      port:\n        number: 80\n"
        );
    }
    if !rules.is_empty() {
        s.push_str("  rules:\n");
    }
    for (host, paths) in rules {
        if host.is_empty() {
            s.push_str("  - http:\n");
        } else {
            let _ = write!(s, "  - host: {}\n    http:\n", serde_json::to_string(host).unwrap());
        }
        s.push_str("      paths:\n");
        for (path, svc) in *paths {
            let _ = write!(s, "      - path: {path}\n        pathType: Prefix\n        backend:\n          service:\n            name: {svc}\n            port:\n              number: 80\n");
        }
    }
    s
}

/// Hostnames (`(any host)`: none).
type Hosts<'a> = &'a [&'a str];

const CANARY: Lines = &[("canary", "true"), ("canary-weight", "10")];

/// The Services the routes that are not deny-all send to.
fn open_backends(m: &Migration) -> Vec<String> {
    let open = routes(m, false);
    find(m, "HTTPRoute")
        .iter()
        .filter(|r| open.iter().any(|o| r["metadata"]["name"] == o.as_str()))
        .flat_map(|r| r["spec"]["rules"].as_array().unwrap().clone())
        .flat_map(|rule| rule["backendRefs"].as_array().cloned().unwrap_or_default())
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect()
}

/// R16-5 (db1, db3): a canary whose `spec.defaultBackend` (or path) finds
/// no location to merge into makes mergeAlternativeBackends delete the
/// upstream of that name, whoever made it: a non-canary server's root
/// falling back to the same Service+port, or its path naming it, has no
/// balancer and answers 503 to everyone. The output never sends to `s`
/// there: deny-all, not converted. Control (db2): a host-less
/// location lets the canary merge, nothing is deleted, the fallback is `s`.
#[test]
fn a_deleted_canary_upstream_takes_its_locations_with_it() {
    let main = |year| ing("n-main", year, &[], "s", &[("app.example.com", &[("/api", "x")])]);
    // (name, Ingresses, the deny-all routes wanted, `s` served)
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<String>, &[&str], bool)> = vec![
        ("db1", vec![main(2019), ing("c-canary", 2020, CANARY, "s", &[])], &["n-main-denied"], false),
        ("db3", vec![
            ing("c-canary", 2019, CANARY, "s", &[]),
            main(2020),
            ing("o-other", 2021, &[], "", &[("other.example.com", &[("/", "s")])]),
        ], &["n-main-denied", "o-other-denied"], false),
        ("the catch-all's backend, deleted by a canary path", vec![
            ing("y-catch", 2019, &[], "s", &[]),
            ing("m-main", 2019, &[], "", &[("app.example.com", &[("/api", "x")])]),
            ing("c-canary", 2020, CANARY, "s", &[("app.example.com", &[("/nomatch", "s")])]),
        ], &["y-catch-denied"], false),
        ("control: db2, merged into a host-less location", vec![
            main(2019),
            ing("h-hostless", 2019, &[], "", &[("", &[("/other", "o")])]),
            ing("c-canary", 2020, CANARY, "s", &[]),
        ], &[], true),
    ];
    for target in BOTH {
        for (name, docs, denied, served) in &rows {
            let mut all = vec![controller(&[])];
            all.extend(docs.iter().cloned());
            let m = run(&all, target);
            let text = m.report.text();
            let mut got = routes(&m, true);
            got.sort();
            assert_eq!(got, *denied, "{name} {target:?}:\n{text}");
            assert_eq!(open_backends(&m).contains(&"s".to_owned()), *served, "{name} {target:?}:\n{text}");
            // (The control is incomplete too: a canary's defaultBackend does not convert.)
            assert!(m.report.incomplete(), "{name} {target:?}:\n{text}");
            let said = m
                .report
                .entries
                .iter()
                .any(|e| e.status == Status::NotConverted && e.why.contains("503") && e.why.contains("deleted"));
            assert_eq!(said, !*served, "{name} {target:?}:\n{text}");
        }
    }
}

/// The hostnames of the deny-all routes.
fn denied_hostnames(m: &Migration) -> Vec<String> {
    let denied = routes(m, true);
    find(m, "HTTPRoute")
        .iter()
        .filter(|r| denied.iter().any(|d| r["metadata"]["name"] == d.as_str()))
        .flat_map(|r| r["spec"]["hostnames"].as_array().cloned().unwrap_or_else(|| vec!["(any host)".into()]))
        .map(|h| h.as_str().unwrap().to_owned())
        .collect()
}

/// R16-3 (al1, al2, al3, ss1, www1): ingress-nginx's server of a host also
/// answers its `server-alias` names, the `server_name`s of its
/// server-snippet, and a redirect server answers the www twin of a
/// `from-to-www-redirect` host; left to the routes, a `*.example.com` or
/// host-less one takes them, open. Each such name gets a deny-all route
/// (a regex name: the catch-all's), not converted. Controls: an alias that
/// is another Ingress's host, and the aliases of a newer Ingress of the
/// host (the older one set them), are no extra names.
#[test]
fn server_aliases_are_not_left_to_wildcard_routes() {
    const ALLOW: (&str, &str) = ("whitelist-source-range", "203.0.113.0/24");
    let admin = |anns: Lines| -> String {
        let all: Vec<(&str, &str)> = anns.iter().copied().chain([ALLOW]).collect();
        ing("a-admin", 2020, &all, "", &[("app.example.com", &[("/", "a")])])
    };
    let wild = ing("w-wild", 2021, &[], "", &[("*.example.com", &[("/", "w")])]);
    let hostless = ing("h-hostless", 2021, &[], "", &[("", &[("/", "h")])]);
    let snippets = controller(&[("allow-snippet-annotations", "true"), ("annotations-risk-level", "Critical")]);
    // (name, controller, Ingresses, hostnames denied, hostnames not denied)
    #[rustfmt::skip]
    let rows: Vec<(&str, String, Vec<String>, Hosts, Hosts)> = vec![
        ("al2 (v1.11.3)", controller_at("v1.11.3", &[], &[]), vec![admin(&[("server-alias", "admin.example.com")]), wild.clone()], &["admin.example.com"], &["*.example.com"]),
        ("al3", controller(&[]), vec![admin(&[("server-alias", "admin.example.com")]), wild.clone()], &["admin.example.com"], &["*.example.com"]),
        ("al1 (host-less)", controller(&[]), vec![admin(&[("server-alias", "www.example.com")]), hostless.clone()], &["www.example.com"], &["(any host)"]),
        ("two aliases, spaces, upper case", controller(&[]), vec![admin(&[("server-alias", " Admin.example.com, ops.example.com ")]), wild.clone()], &["admin.example.com", "ops.example.com"], &[]),
        ("a .example.com alias", controller(&[]), vec![admin(&[("server-alias", ".example.org")]), wild.clone()], &["example.org", "*.example.org"], &[]),
        // nginx keeps the first server (by hostname) declaring a name: app.example.com's before example.com's, *.example.com's before app's.
        ("a .example.com alias, both names other Ingresses' hosts", controller(&[]), vec![admin(&[("server-alias", ".example.com")]), wild.clone(), ing("e-apex", 2021, &[], "", &[("example.com", &[("/", "e")])])], &["example.com"], &["*.example.com"]),
        ("a server-snippet name, another Ingress's host sorted after", snippets.clone(), vec![admin(&[("server-snippet", "server_name zz.example.com;")]), ing("z-zz", 2021, &[], "", &[("zz.example.com", &[("/", "z"), ("/api", "z")])])], &["zz.example.com"], &[]),
        ("control: a server-snippet name, another Ingress's host sorted before", snippets.clone(), vec![admin(&[("server-snippet", "server_name aa.example.com;")]), ing("z-aa", 2021, &[], "", &[("aa.example.com", &[("/", "z")])])], &[], &["aa.example.com"]),
        ("a regex alias: the catch-all", controller(&[]), vec![admin(&[("server-alias", "~^adm.*")]), hostless.clone()], &["(any host)"], &[]),
        ("ss1", snippets.clone(), vec![admin(&[("server-snippet", "server_name admin.example.com;")]), wild.clone()], &["admin.example.com"], &[]),
        ("www1", controller(&[]), vec![admin(&[("from-to-www-redirect", "true")]), wild.clone()], &["www.app.example.com"], &["*.example.com"]),
        ("control: the alias is another Ingress's host", controller(&[]), vec![
            admin(&[("server-alias", "admin.example.com")]),
            ing("o-admin", 2021, &[], "", &[("admin.example.com", &[("/", "o")])]),
        ], &[], &["admin.example.com"]),
        ("control: the older Ingress of the host sets the aliases", controller(&[]), vec![
            admin(&[("server-alias", "admin.example.com")]),
            ing("b-more", 2021, &[("server-alias", "other.example.com")], "", &[("app.example.com", &[("/b", "b")])]),
            wild.clone(),
        ], &["admin.example.com"], &["other.example.com"]),
        ("control: snippets dropped", controller(&[]), vec![admin(&[("server-snippet", "server_name admin.example.com;")]), wild.clone()], &[], &["admin.example.com"]),
    ];
    for target in BOTH {
        for (name, ctl, docs, denied, open) in &rows {
            let mut all = vec![ctl.clone()];
            all.extend(docs.iter().cloned());
            let m = run(&all, target);
            let text = m.report.text();
            let got = denied_hostnames(&m);
            for h in *denied {
                assert!(got.contains(&(*h).to_owned()), "{name} {target:?}: {h} not denied {got:?}:\n{text}");
                let said = m.report.entries.iter().any(|e| {
                    e.key.starts_with("host ")
                        && e.status == Status::NotConverted
                        && e.why.contains(&format!("for {h}"))
                        || e.why.contains(&format!(", {h}, refusing"))
                        || e.status == Status::NotConverted && e.why.contains(&format!("therefore answers {h})"))
                });
                assert!(said, "{name} {target:?} {h}:\n{text}");
            }
            for h in *open {
                assert!(!got.contains(&(*h).to_owned()), "{name} {target:?}: {h} denied {got:?}:\n{text}");
            }
            assert!(m.report.incomplete() || denied.is_empty(), "{name} {target:?}:\n{text}");
        }
    }
}

/// `(path value, Service)` of every rule of the open route `name`.
fn rule_backends(m: &Migration, name: &str) -> Vec<(String, String)> {
    assert!(routes(m, false).contains(&name.to_owned()), "{name} is not an open route:\n{}", m.report.text());
    find(m, "HTTPRoute")
        .iter()
        .filter(|r| r["metadata"]["name"] == name)
        .flat_map(|r| r["spec"]["rules"].as_array().unwrap().clone())
        .flat_map(|rule| {
            let path = rule["matches"][0]["path"]["value"].as_str().unwrap_or_default().to_owned();
            let refs = rule["backendRefs"].as_array().cloned().unwrap_or_default();
            refs.into_iter().map(move |b| (path.clone(), b["name"].as_str().unwrap().to_owned()))
        })
        .collect()
}

/// R16-7 (dup2): a-admin lists `/admin` twice; a canary made the first
/// copy's upstream (NoServer), so getBackendServers skips that copy and
/// serves the next one, with a-admin's allow list. The output serves
/// `/admin` → a2 under the allow list, never leaving it to b-site's open
/// `/`. Controls: no canary (the first copy is served), and the NoServer
/// copy listed second.
#[test]
fn a_duplicate_path_is_served_from_its_first_served_copy() {
    const ALLOW: (&str, &str) = ("whitelist-source-range", "203.0.113.0/24");
    let canary = ing("c-canary", 2019, CANARY, "", &[("app.example.com", &[("/", "a1")])]);
    let admin = |paths: &[(&str, &str)]| ing("a-admin", 2020, &[ALLOW], "", &[("app.example.com", paths)]);
    let site = ing("b-site", 2021, &[], "", &[("app.example.com", &[("/", "b")])]);
    // (name, Ingresses, the Service a-admin's /admin goes to)
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<String>, &str)> = vec![
        ("dup2", vec![canary.clone(), admin(&[("/admin", "a1"), ("/admin", "a2")]), site.clone()], "a2"),
        ("three copies: the first served one", vec![canary.clone(), admin(&[("/admin", "a1"), ("/admin", "a2"), ("/admin", "a3")]), site.clone()], "a2"),
        ("the NoServer copy second", vec![canary.clone(), admin(&[("/admin", "a2"), ("/admin", "a1")]), site.clone()], "a2"),
        ("control: no canary, the first copy", vec![admin(&[("/admin", "a1"), ("/admin", "a2")]), site.clone()], "a1"),
    ];
    for target in BOTH {
        for (name, docs, want) in &rows {
            let mut all = vec![controller(&[])];
            all.extend(docs.iter().cloned());
            let m = run(&all, target);
            let text = m.report.text();
            let got: Vec<String> =
                rule_backends(&m, "a-admin").into_iter().filter(|(p, _)| p == "/admin").map(|(_, s)| s).collect();
            assert_eq!(got, [*want], "{name} {target:?}:\n{text}");
            assert!(!routes(&m, true).iter().any(|r| r.starts_with("a-admin")), "{name} {target:?}:\n{text}");
            let restricted = common::open_policies(&m).iter().any(|p| p["spec"]["targetRefs"][0]["name"] == "a-admin");
            assert!(restricted, "{name} {target:?}:\n{text}");
        }
    }
}

/// R16-10 (fg1): `a`/`b-c`:80 and `a-b`/`c`:80 are both upstream
/// `a-b-c-80`, and the newer `spec.defaultBackend` re-makes it: the older
/// Ingress's fallback (its server's root location, or the catch-all's
/// backend) goes to the other namespace's Service in ingress-nginx. Not
/// converted, deny-all; the newer one's fallback stays. Control: no
/// collision.
#[test]
fn a_fallback_on_a_colliding_upstream_name_is_denied() {
    let in_ns = |ns: &str, doc: String| doc.replacen("namespace: web", &format!("namespace: {ns}"), 1);
    let a_main = |year| in_ns("a", ing("a-main", year, &[], "b-c", &[("app.example.com", &[("/api", "x")])]));
    let b_main = |year, svc| in_ns("a-b", ing("b-main", year, &[], svc, &[("other.example.com", &[("/z", "z")])]));
    // (name, Ingresses, deny-all routes, open routes with a `/` rule)
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<String>, Hosts, Hosts)> = vec![
        ("fg1", vec![a_main(2019), b_main(2020, "c")], &["a/a-main-denied"], &["a-b/b-main"]),
        ("the other way", vec![a_main(2020), b_main(2019, "c")], &["a-b/b-main-denied"], &["a/a-main"]),
        ("the catch-all's backend", vec![in_ns("a", ing("y-catch", 2019, &[], "b-c", &[])), b_main(2020, "c")], &["a/y-catch-denied"], &["a-b/b-main"]),
        ("control: no collision", vec![a_main(2019), b_main(2020, "d")], &[], &["a/a-main", "a-b/b-main"]),
    ];
    for target in BOTH {
        for (name, docs, denied, open) in &rows {
            let mut all = vec![controller(&[])];
            all.extend(docs.iter().cloned());
            let m = run(&all, target);
            let text = m.report.text();
            let mut got = common::routes_ns(&m, true);
            got.sort();
            assert_eq!(got, *denied, "{name} {target:?}:\n{text}");
            for r in *open {
                let root = find(&m, "HTTPRoute").iter().any(|x| {
                    format!(
                        "{}/{}",
                        x["metadata"]["namespace"].as_str().unwrap(),
                        x["metadata"]["name"].as_str().unwrap()
                    ) == *r
                        && x["spec"]["rules"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|rule| rule["matches"][0]["path"]["value"] == "/")
                });
                assert!(root, "{name} {target:?}: {r} has no `/`:\n{text}");
            }
            assert_eq!(m.report.incomplete(), !denied.is_empty(), "{name} {target:?}:\n{text}");
        }
    }
}

/// R16-1 (h1, h2, h3): the first alternative backend of the main
/// location's upstream decides for balancer.lua, whatever merged it: a
/// canary path on a non-canary's upstream (weight 0), a canary upstream
/// deleted after it was merged (no balancer), or a canary's
/// `spec.defaultBackend` (merged into every catch-all location first). A
/// later canary's weight then reaches nothing: not converted, no fold.
/// Control: without the first canary, the later one folds.
#[test]
fn the_first_alternative_backend_decides_whatever_merged_it() {
    let preview = ing("x-preview", 2019, &[], "", &[("green.example.com", &[("/", "green")])]);
    let main = ing("m-main", 2020, &[], "", &[("app.example.com", &[("/api", "blue")])]);
    let c1 = |paths: &[(&str, &str)]| {
        ing("c1-canary", 2021, &[("canary", "true"), ("canary-weight", "50")], "", &[("app.example.com", paths)])
    };
    let c2 = ing(
        "c2-canary",
        2022,
        &[("canary", "true"), ("canary-weight", "30")],
        "",
        &[("app.example.com", &[("/api", "red")])],
    );
    let hmain = ing("h-main", 2019, &[], "", &[("", &[("/x", "hx")])]);
    let hc1 = ing("c1-canary", 2020, &[("canary", "true"), ("canary-weight", "50")], "s1", &[]);
    let hc2 = ing("c2-canary", 2021, &[("canary", "true"), ("canary-weight", "30")], "", &[("", &[("/x", "s2")])]);
    // (name, Ingresses, the main route, the later canary's Service, folded)
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<String>, &str, &str, bool)> = vec![
        ("h1: a non-canary upstream first", vec![preview.clone(), main.clone(), c1(&[("/api", "green")]), c2.clone()], "m-main", "red", false),
        ("h2: a deleted upstream first", vec![main.clone(), c1(&[("/api", "green"), ("/nomatch", "green")]), c2.clone()], "m-main", "red", false),
        ("h3: a canary's defaultBackend first", vec![hmain.clone(), hc1, hc2.clone()], "h-main", "s2", false),
        ("control: deleted before it could merge", vec![main.clone(), c1(&[("/nomatch", "green"), ("/api", "green")]), c2.clone()], "m-main", "red", true),
        ("control: c2 alone", vec![main.clone(), c2.clone()], "m-main", "red", true),
        ("control: h3 without the defaultBackend canary", vec![hmain, hc2], "h-main", "s2", true),
    ];
    for target in BOTH {
        for (name, docs, route, later, folded) in &rows {
            let mut all = vec![controller(&[])];
            all.extend(docs.iter().cloned());
            let m = run(&all, target);
            let text = m.report.text();
            let got = backends(&m, route).iter().any(|(s, w)| s == later && *w == Some(30));
            assert_eq!(got, *folded, "{name} {target:?}:\n{text}");
            let weight = m
                .report
                .entries
                .iter()
                .find(|e| e.object == "Ingress/web/c2-canary" && e.key == "canary-weight")
                .unwrap();
            assert_eq!(weight.status == Status::Converted, *folded, "{name} {target:?}:\n{text}");
            if !*folded {
                let said = m.report.entries.iter().any(|e| {
                    e.object == "Ingress/web/c2-canary"
                        && e.status == Status::NotConverted
                        && e.why.contains("first alternative only")
                });
                assert!(said, "{name} {target:?}:\n{text}");
            }
        }
    }
}

/// Migrate review 17 R17-2: `use-proxy-protocol` with no usable
/// `proxy-real-ip-cidr` entry (empty, or only an IPv4-mapped range that
/// never matches): ingress-nginx requires PROXY on every connection and
/// believes no sender; no policy says that, so it is not converted (exit 1)
/// on both targets, never "converted" with PROXY silently dropped.
#[test]
fn proxy_protocol_trusting_no_sender_is_not_converted() {
    for cidr in ["", "::ffff:10.0.0.0/104"] {
        let cfg = controller(&[("use-proxy-protocol", "true"), ("proxy-real-ip-cidr", cidr)]);
        for target in BOTH {
            let m = run(std::slice::from_ref(&cfg), target);
            assert_eq!(common::status(&m, "use-proxy-protocol"), Status::NotConverted, "{cidr:?} {target:?}");
        }
        let cfg = controller(&[("use-proxy-protocol", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")]);
        assert_eq!(common::status(&run(&[cfg], Target::Realip), "use-proxy-protocol"), Status::Converted);
    }
}
