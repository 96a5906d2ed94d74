//! Every report line that names what was emitted is checked against the
//! output, over every input the attack reviews used (copied into
//! `tests/fixtures/reviews/`, plus `tests/fixtures/own/`) and the real ingress-nginx installs of
//! `../shared/corpus/real-world/ingress-nginx/` (skipped when absent), for
//! both targets:
//! - `-> Kind ns/name field …` (a policy): the object exists and has the
//!   field; an Ingress's access or rate policy targets an open route;
//! - `-> HTTPRoute match TYPE VALUE [(deny-all)]`: a route of the Ingress has
//!   that match, open (a backend, no deny-all policy) or deny-all as said;
//! - a path said to be "emitted as a deny-all route" is covered by a deny-all
//!   route of its Ingress on its host; a path whose requests "go to the host's
//!   other routes" is not covered by one; a route "refused" by another
//!   location's deny-all route has that match denied and not open;
//! - the fallback, default-backend, https-redirect and TLS-listener lines
//!   name real rules,
//!   routes and listeners; a left-out Ingress has no open route and no
//!   entry saying one of its annotations is in the output.
//!
//! The report texts are free sentences built next to the emission code; this
//! is the check that they still say what was emitted (the fifth attack
//! review found a policy reported that was never emitted, and a path
//! reported routed that was denied).

mod common;

use std::path::{Path, PathBuf};

use realip_migrate::{Entry, Migration, Options, Target};
use regex::Regex;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The reviews' inputs, and ours (`own/`: redirects, policy names taken by
/// another Ingress's deny-all objects): each file alone when it holds the
/// controller, else after its directory's `base.yaml` (as the reviewers
/// ran them).
fn review_inputs() -> Vec<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in ["reviews/rev4", "reviews/rev5", "own"] {
        let dir = fixtures().join(dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            if text.contains("kind: Deployment") {
                out.push(vec![f]);
            } else {
                out.push(vec![dir.join("base.yaml"), f]);
            }
        }
    }
    out
}

fn corpus_inputs() -> Vec<Vec<PathBuf>> {
    common::corpus().map(|dir| common::installs(&dir)).unwrap_or_default()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The emitted objects, with the questions the checks ask of them.
struct Output<'a> {
    objects: &'a [Value],
    /// `(namespace, name)` of every Ingress of the input.
    ingresses: &'a [(String, String)],
}

impl<'a> Output<'a> {
    fn get(&self, kind: &str, ns: &str, name: &str) -> Option<&'a Value> {
        self.objects.iter().find(|o| {
            s(&o["kind"]) == kind && s(&o["metadata"]["namespace"]) == ns && s(&o["metadata"]["name"]) == name
        })
    }

    /// `ns/name` of the routes a deny-all policy targets.
    fn denied_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.objects.iter().filter(|p| common::is_deny_all(p)) {
            for t in p["spec"]["targetRefs"].as_array().unwrap() {
                out.push(format!("{}/{}", s(&p["metadata"]["namespace"]), s(&t["name"])));
            }
        }
        out
    }

    fn is_denied(&self, route: &Value) -> bool {
        let id = format!("{}/{}", s(&route["metadata"]["namespace"]), s(&route["metadata"]["name"]));
        self.denied_ids().contains(&id)
    }

    /// The HTTPRoutes emitted for Ingress `ns/name`: named after it, and
    /// not after a longer Ingress name of the namespace (`api-denied` is the
    /// Ingress `api-denied`'s, not `api`'s; a route whose name is ambiguous
    /// so is checked as the longer one's).
    fn routes_of(&self, ns: &str, name: &str) -> Vec<&'a Value> {
        let after = |n: &str, i: &str| n == i || n.starts_with(&format!("{i}-"));
        self.objects
            .iter()
            .filter(|o| {
                let n = s(&o["metadata"]["name"]);
                s(&o["kind"]) == "HTTPRoute"
                    && s(&o["metadata"]["namespace"]) == ns
                    && after(n, name)
                    && !self.ingresses.iter().any(|(ins, i)| ins == ns && i.len() > name.len() && after(n, i))
            })
            .collect()
    }

    fn all_routes(&self) -> Vec<&'a Value> {
        self.objects.iter().filter(|o| s(&o["kind"]) == "HTTPRoute").collect()
    }
}

/// Whether `route` serves `host` (`None`: the key named no host; `*`:
/// the catch-all, a route without hostnames).
fn on_host(route: &Value, host: Option<&str>) -> bool {
    let names: Vec<&str> = route["spec"]["hostnames"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
    match host {
        None => true,
        Some("*" | "(any host)") => names.is_empty(),
        Some(h) => names.contains(&h),
    }
}

fn matches_of(rule: &Value) -> Vec<(&str, &str)> {
    rule["matches"]
        .as_array()
        .map(|ms| ms.iter().map(|m| (s(&m["path"]["type"]), s(&m["path"]["value"]))).collect())
        .unwrap_or_default()
}

/// Whether a path match takes request path `path`.
fn covers(ty: &str, value: &str, path: &str) -> bool {
    match ty {
        "Exact" => value == path,
        "PathPrefix" => {
            let v = value.trim_end_matches('/');
            v.is_empty() || path == v || path.starts_with(&format!("{v}/"))
        }
        "RegularExpression" => Regex::new(&format!("^(?:{value})$")).is_ok_and(|r| r.is_match(path)),
        _ => false,
    }
}

/// Whether a deny-all route of `routes` on `host` takes `path`.
fn denied_path(out: &Output<'_>, routes: &[&Value], host: Option<&str>, path: &str) -> bool {
    routes.iter().filter(|r| out.is_denied(r) && on_host(r, host)).any(|r| {
        r["spec"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|rule| matches_of(rule).iter().any(|(t, v)| covers(t, v, path)))
    })
}

/// `Ingress/ns/name` → (ns, name).
fn ingress_of(e: &Entry) -> Option<(&str, &str)> {
    let rest = e.object.strip_prefix("Ingress/")?;
    rest.split_once('/')
}

/// The host and path of a key `path HOSTPATH (TYPE)` or `path PATH`
/// (`None` host: not named).
fn key_path(key: &str) -> Option<(Option<&str>, &str)> {
    let rest = key.strip_prefix("path ").or_else(|| key.strip_prefix("deny-all "))?;
    let rest = rest.split(" (").next().unwrap_or(rest);
    let rest = rest.strip_prefix("(any host)").map_or(rest, |r| r);
    let any = key.contains("(any host)/") || key.contains("(any host)");
    let slash = rest.find('/')?;
    let (host, path) = rest.split_at(slash);
    let host = if any && host.is_empty() {
        Some("*")
    } else if host.is_empty() {
        None
    } else {
        Some(host)
    };
    Some((host, path))
}

/// Every line of `m`'s report that names output, checked against it.
/// Returns the untrue ones.
#[allow(clippy::too_many_lines)] // one check per kind of report line, in the order the module docs list them
fn untrue(m: &Migration, ingresses: &[(String, String)]) -> Vec<String> {
    let out = Output { objects: &m.objects, ingresses };
    let policy = Regex::new(
        r"^(ClientAccessPolicy|SecurityPolicy|BackendTrafficPolicy|ClientIPPolicy|ClientTrafficPolicy) ([a-z0-9.-]+)/([a-z0-9.-]+)(?: (.*))?$",
    )
    .unwrap();
    let route_match =
        Regex::new(r"^HTTPRoute match (Exact|PathPrefix|RegularExpression) (\S+)( \(deny-all\)| \+ URLRewrite .*)?$")
            .unwrap();
    let fallback = Regex::new(r"^HTTPRoute rule of (\S+): PathPrefix / → ([a-z0-9.-]+):(\S+)$").unwrap();
    let default_route = Regex::new(r"^HTTPRoute ([a-z0-9.-]+)/([a-z0-9.-]+) \(no hostnames, PathPrefix /\)$").unwrap();
    let redirect =
        Regex::new(r"^HTTPRoute ([a-z0-9.-]+)/([a-z0-9.-]+) \(RequestRedirect scheme https, http-redirect-code\)")
            .unwrap();
    let same_match = Regex::new(r"has the same match \(([^)]*)\)").unwrap();
    let mut bad = Vec::new();
    let mut fail =
        |e: &Entry, what: &str| bad.push(format!("{} {} -> {}: {what}\n    {}", e.object, e.key, e.to, e.why));
    for e in &m.report.entries {
        if let Some(c) = policy.captures(&e.to) {
            let (kind, ns, name) = (&c[1], &c[2], &c[3]);
            let Some(obj) = out.get(kind, ns, name) else {
                fail(e, "no such object was emitted");
                continue;
            };
            // The field named first (`allow`, `rateLimit.burst`, `sources:`, …).
            let field = c.get(4).map_or("", |f| f.as_str()).split([' ', ':']).next().unwrap_or_default();
            if !field.is_empty() {
                let mut v = &obj["spec"];
                for part in field.split('.') {
                    v = &v[part];
                }
                if v.is_null() {
                    fail(e, &format!("{kind} {ns}/{name} has no spec.{field}"));
                }
            }
            if ingress_of(e).is_some() {
                let open = obj["spec"]["targetRefs"].as_array().into_iter().flatten().any(|t| {
                    out.get("HTTPRoute", ns, s(&t["name"])).is_some_and(|r| {
                        !out.is_denied(r)
                            && r["spec"]["rules"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|rule| rule.get("backendRefs").is_some())
                    })
                });
                if !open || common::is_deny_all(obj) {
                    fail(e, &format!("{kind} {ns}/{name} restricts no open route"));
                }
            }
        }
        let Some((ns, name)) = ingress_of(e) else { continue };
        let routes = out.routes_of(ns, name);
        if let Some(c) = route_match.captures(&e.to) {
            let (ty, value, deny) = (&c[1], &c[2], c.get(3).is_some_and(|d| d.as_str() == " (deny-all)"));
            let host = key_path(&e.key).and_then(|(h, _)| h);
            let found = routes.iter().filter(|r| on_host(r, host)).any(|r| {
                let denied = out.is_denied(r);
                r["spec"]["rules"].as_array().unwrap().iter().any(|rule| {
                    matches_of(rule).contains(&(ty, value))
                        && denied == deny
                        && (deny || rule.get("backendRefs").is_some())
                })
            });
            if !found {
                let how = if deny { "deny-all" } else { "open" };
                fail(e, &format!("no {how} route of the Ingress has the match {ty} {value}"));
            }
        }
        if let Some(c) = fallback.captures(&e.to) {
            let (host, svc, port) = (&c[1], &c[2], &c[3]);
            let found = routes.iter().filter(|r| !out.is_denied(r) && on_host(r, Some(host))).any(|r| {
                r["spec"]["rules"].as_array().unwrap().iter().any(|rule| {
                    matches_of(rule).contains(&("PathPrefix", "/"))
                        && rule["backendRefs"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|b| s(&b["name"]) == svc && b["port"].to_string().trim_matches('"') == port)
                })
            });
            if !found {
                fail(e, "no open PathPrefix / rule to that backend on the host");
            }
        }
        if let Some(c) = redirect.captures(&e.to) {
            let found = out.get("HTTPRoute", &c[1], &c[2]).is_some_and(|r| {
                r["spec"]["rules"].as_array().unwrap().iter().all(|rule| {
                    rule["filters"].as_array().into_iter().flatten().any(|f| f["requestRedirect"]["scheme"] == "https")
                })
            });
            if !found {
                fail(e, "no such https redirect route");
            }
        }
        if e.to.contains('…') {
            fail(e, "names no object");
        }
        if let Some(c) = default_route.captures(&e.to) {
            if out.get("HTTPRoute", &c[1], &c[2]).is_none_or(|r| out.is_denied(r)) {
                fail(e, "no such open HTTPRoute");
            }
        }
        let Some((host, path)) = key_path(&e.key) else { continue };
        let remainder = format!("{}.php", path.trim_end_matches('/'));
        if e.why.contains("go to the host's other routes") && denied_path(&out, &routes, host, &remainder) {
            fail(
                e,
                &format!(
                    "{remainder} is said to go to the host's other routes but a deny-all route of the Ingress takes it"
                ),
            );
        }
        let rest_denied = e.why.contains("the rest of this location");
        if rest_denied && !denied_path(&out, &routes, host, &remainder) {
            fail(e, &format!("the rest of the location ({remainder}) is said to be denied but no deny-all route of the Ingress takes it"));
        }
        if !rest_denied && e.why.contains("emitted as a deny-all route") && !denied_path(&out, &routes, host, path) {
            fail(
                e,
                &format!(
                    "{path} is said to be emitted as a deny-all route but no deny-all route of the Ingress takes it"
                ),
            );
        }
        if let Some(c) = same_match.captures(&e.why).filter(|_| e.why.starts_with("refused:")) {
            let value = &c[1];
            let all = out.all_routes();
            let denied = all.iter().filter(|r| out.is_denied(r) && on_host(r, host)).any(|r| {
                r["spec"]["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|rule| matches_of(rule).iter().any(|(_, v)| *v == value))
            });
            let open = routes.iter().filter(|r| !out.is_denied(r) && on_host(r, host)).any(|r| {
                r["spec"]["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|rule| matches_of(rule).iter().any(|(_, v)| *v == value))
            });
            if !denied || open {
                fail(
                    e,
                    &format!("said refused by a deny-all route matching {value}: denied {denied}, still open {open}"),
                );
            }
        }
    }
    for n in &m.report.notes {
        let Some(id) = n.split(' ').next().and_then(|i| i.strip_prefix("Ingress/")) else { continue };
        if !n.contains("): left out:") {
            continue;
        }
        let (ns, name) = id.split_once('/').unwrap();
        let object = format!("Ingress/{id}");
        for e in m.report.entries.iter().filter(|e| e.object == object) {
            let emitted = matches!(e.status, realip_migrate::Status::Converted | realip_migrate::Status::Changed)
                && !e.to.is_empty()
                && !e.to.ends_with("(deny-all)")
                && e.to != "HTTPRoute parentRefs";
            if emitted {
                bad.push(format!("{object} {} -> {}: said emitted, but the Ingress is left out", e.key, e.to));
            }
        }
        for r in out.routes_of(ns, name) {
            if !out.is_denied(r) && !s(&r["metadata"]["name"]).ends_with("-https-redirect") {
                bad.push(format!("note `{n}`: route {ns}/{} is open", s(&r["metadata"]["name"])));
            }
        }
    }
    // An Ingress with no open route (nor redirect): no entry may name a part of its routes.
    for (ns, name) in ingresses {
        let object = format!("Ingress/{ns}/{name}");
        let open = out.routes_of(ns, name).iter().any(|r| !out.is_denied(r));
        let canary = m.report.entries.iter().any(|e| e.object == object && e.key == "canary");
        // A canary's routes are its main Ingress's: it names them only when a path of it is folded there.
        let folded = canary
            && !m.report.entries.iter().any(|e| {
                e.object == object
                    && e.key.starts_with("canary path ")
                    && e.status == realip_migrate::Status::NotConverted
            });
        if open || folded {
            continue;
        }
        for e in m.report.entries.iter().filter(|e| e.object == object) {
            let names_route = e.to.starts_with("HTTPRoute ")
                || e.to.starts_with("RequestRedirect")
                || e.to.starts_with("the main Ingress's");
            let own = e.key.starts_with("path ") || e.key.starts_with("deny-all ");
            if names_route && !own && e.to != "HTTPRoute parentRefs" && !e.to.ends_with("(deny-all)") {
                bad.push(format!("{object} {} -> {}: no route of the Ingress is emitted open", e.key, e.to));
            }
        }
    }
    let gw = m.objects.iter().find(|o| s(&o["kind"]) == "Gateway");
    for e in m.report.entries.iter().filter(|e| e.to.starts_with("Gateway listener ")) {
        let l = e.to.trim_start_matches("Gateway listener ");
        let has = gw.is_some_and(|g| g["spec"]["listeners"].as_array().unwrap().iter().any(|x| s(&x["name"]) == l));
        if !has {
            bad.push(format!("{} {} -> {}: no such listener", e.object, e.key, e.to));
        }
    }
    bad
}

fn check(paths: &[PathBuf]) -> Vec<String> {
    let objects = realip_kube::load_paths(paths).unwrap_or_else(|e| panic!("{paths:?}: {e}"));
    let ingresses: Vec<(String, String)> =
        objects.iter().filter(|o| o.kind == "Ingress").map(|o| (o.namespace.clone(), o.name.clone())).collect();
    let mut bad = Vec::new();
    for target in [Target::Realip, Target::EnvoyGateway] {
        let m = realip_migrate::migrate(&objects, &Options { target, ..Options::default() })
            .unwrap_or_else(|e| panic!("{paths:?}: {e}"));
        if target == Target::Realip {
            common::served_by_realip(&m.objects);
        }
        let names: Vec<String> =
            paths.iter().map(|p| p.file_name().map(Path::new).unwrap().display().to_string()).collect();
        bad.extend(untrue(&m, &ingresses).into_iter().map(|b| format!("[{} {target:?}] {b}", names.join("+"))));
    }
    bad
}

#[test]
fn every_report_line_of_the_review_inputs_says_what_was_emitted() {
    let mut inputs = review_inputs();
    // And the setup of docs/migrate.md's example run.
    inputs.push(vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/migrate/ingress-nginx.yaml")]);
    assert!(inputs.len() >= 45, "{} inputs", inputs.len());
    let bad: Vec<String> = inputs.iter().flat_map(|p| check(p)).collect();
    assert!(bad.is_empty(), "{} untrue report lines:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn every_report_line_of_the_real_installs_says_what_was_emitted() {
    let bad: Vec<String> = corpus_inputs().iter().flat_map(|p| check(p)).collect();
    assert!(bad.is_empty(), "{} untrue report lines:\n{}", bad.len(), bad.join("\n"));
}

/// The checks themselves find the two lines the fifth review reported
/// (F4), on hand-made output: a report that names a policy never emitted,
/// and a path reported routed open that only a deny-all route matches.
#[test]
fn the_check_finds_an_unemitted_policy_and_a_denied_path_reported_open() {
    let objects = vec![
        serde_json::json!({"kind": "HTTPRoute", "metadata": {"name": "b-denied", "namespace": "web"},
            "spec": {"hostnames": ["app.example"], "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]}}),
        serde_json::json!({"kind": "ClientAccessPolicy", "metadata": {"name": "b-denied", "namespace": "web"},
            "spec": {"targetRefs": [{"name": "b-denied"}], "deny": ["0.0.0.0/0", "::/0"]}}),
    ];
    let entry = |key: &str, to: &str, why: &str| Entry {
        object: "Ingress/web/b".into(),
        file: "x.yaml".into(),
        line: 1,
        key: key.into(),
        value: String::new(),
        status: realip_migrate::Status::Changed,
        to: to.into(),
        why: why.into(),
    };
    let mut report = realip_migrate::Report::default();
    report.entries.push(entry("whitelist-source-range", "ClientAccessPolicy web/b allow", "only these clients"));
    report.entries.push(entry(
        "path /admin",
        "HTTPRoute match PathPrefix /admin",
        "PathPrefix matches whole segments only: those requests go to the host's other routes",
    ));
    report.entries.push(entry(
        "deny-all app.example/admin (ImplementationSpecific)",
        "HTTPRoute match PathPrefix / (deny-all)",
        "",
    ));
    let bad = untrue(&Migration { objects, report }, &[("web".into(), "b".into())]);
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(bad[0].contains("no such object was emitted"), "{}", bad[0]);
    assert!(bad[1].contains("no open route of the Ingress has the match PathPrefix /admin"), "{}", bad[1]);
    assert!(bad[2].contains("go to the host's other routes but a deny-all route"), "{}", bad[2]);
}
