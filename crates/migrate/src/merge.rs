//! How ingress-nginx merges the Ingresses of its class into one nginx
//! server per host, and what the Gateway must therefore not emit.
//!
//! ingress-nginx (`store.go` `sortIngressSlice`, `controller.go`
//! `getBackendServers` / `createServers`) walks the Ingresses oldest
//! `creationTimestamp` first, ties broken by `namespace/name` in
//! *descending* order (`in > jn`). Canary Ingresses are skipped there (they
//! only add weights to their main Ingress). For each host:
//! - the first Ingress to define a location (same path string, empty = `/`,
//!   and same `pathType`) keeps it; later ones with the same location are
//!   ignored ("Location already configured"). The pathType is the one the
//!   store holds: `k8s.SetDefaultNGINXPathType` (every controller since
//!   v0.31) rewrites an absent or `ImplementationSpecific` pathType to
//!   `Prefix` before anything is merged or rendered ([`nginx_path_type`]);
//! - the first Ingress to name the host creates its server, whose root
//!   location `/` (Prefix) falls back to that Ingress's `spec.defaultBackend`
//!   (else the controller's default backend, a 404), with its annotations;
//! - an Ingress with a `defaultBackend` and *no* rules is the backend of the
//!   catch-all server `_` (the first such one only): `createServers` runs
//!   for every Ingress before any path is placed and makes it the root
//!   location `/` (Prefix) of `_`, so a host-less `/` Prefix rule of any
//!   Ingress, older or not, finds that location configured and is not
//!   served.
//!
//! Invariant: a host+path that two Ingresses claim is emitted once, for the
//! Ingress ingress-nginx serves it from, even when that Ingress is itself
//! left out of the output (its allow list did not convert): the loser's
//! route would otherwise open the path. Inputs without `creationTimestamp`
//! (manifests from git) are taken as not yet created: newer than any that
//! has one, equal among themselves, so the name tie-break decides.

use std::collections::{BTreeMap, BTreeSet};

use realip_kube::Object;

use crate::setup::Setup;

/// A location of one Ingress served by an older one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shadow {
    /// The host (`None`: the catch-all server `_`).
    pub host: Option<String>,
    /// The path as written (empty became `/`).
    pub path: String,
    /// Its pathType as ingress-nginx holds it ([`nginx_path_type`]).
    pub path_type: String,
    /// `Kind/ns/name` of the Ingress that keeps it.
    pub winner: String,
    /// The decision compared names only: a creationTimestamp was missing.
    pub by_name: bool,
    /// The winner is the catch-all server's default backend (age and
    /// name play no part).
    pub catch_all: bool,
}

/// The merge of every Ingress of the class.
#[derive(Debug, Default)]
pub struct Merge {
    /// Per Ingress id: its locations that another Ingress keeps.
    pub shadowed: BTreeMap<String, Vec<Shadow>>,
    /// Per Ingress id: the hosts whose server it creates (its
    /// defaultBackend is their `/` fallback).
    pub creates: BTreeMap<String, BTreeSet<String>>,
    /// The id of the Ingress whose defaultBackend is the catch-all server's.
    pub catch_all: Option<String>,
}

/// A creationTimestamp as Kubernetes writes it (`2024-05-01T10:00:00Z`),
/// which then orders as text; anything else counts as absent.
fn created(o: &Object) -> Option<&str> {
    let t = o.doc.str_at(&["metadata", "creationTimestamp"])?;
    let b = t.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    let shape = b.len() == 20
        && digits.iter().all(|&i| b.get(i).is_some_and(u8::is_ascii_digit))
        && b.get(4) == Some(&b'-')
        && b.get(10) == Some(&b'T')
        && b.get(19) == Some(&b'Z');
    shape.then_some(t)
}

/// The pathType ingress-nginx holds for a path written with `written`
/// (`None`: absent). Its store (`syncIngress`, and `toIngress` for the
/// admission check) calls `k8s.SetDefaultNGINXPathType`, which turns an
/// absent or `ImplementationSpecific` pathType into `Prefix` in every
/// controller since v0.31 (read in v0.34 … v1.15.1), and since v0.41
/// (#6389) a Prefix path is `location /admin/` + `location = /admin`: the
/// path is exactly a Prefix path, merged with another Ingress's `Prefix
/// /admin`. A controller known to be older than v0.41 rendered
/// `location /admin`, a string prefix: kept as `ImplementationSpecific`
/// (its own Prefix paths, string prefixes too then, are not modelled).
/// An unknown version is taken as current.
pub fn nginx_path_type<'s>(written: Option<&'s str>, setup: &Setup<'_>) -> &'s str {
    let old = crate::setup::controller_version(setup).is_some_and(|v| v < (0, 41));
    match written {
        None | Some("ImplementationSpecific") if old => "ImplementationSpecific",
        None | Some("ImplementationSpecific") => "Prefix",
        Some(t) => t,
    }
}

/// Whether `o` is a canary Ingress (ingress-nginx reads `canary` with
/// Go's ParseBool).
pub fn is_canary(o: &Object, prefix: &str) -> bool {
    o.annotation(&format!("{prefix}/canary")).and_then(crate::ingress::go_bool) == Some(true)
}

/// Sorts `ings` the way ingress-nginx walks them: oldest first, then
/// `namespace/name` descending.
pub fn nginx_order(ings: &mut [&Object]) {
    ings.sort_by(|a, b| {
        let key = |o: &Object| (created(o).is_none(), created(o).map(str::to_owned));
        key(a).cmp(&key(b)).then_with(|| {
            let name = |o: &Object| format!("{}/{}", o.namespace, o.name);
            name(b).cmp(&name(a))
        })
    });
}

/// Merges `ings` (the Ingresses of the controller's class) as ingress-nginx does.
pub fn merge(ings: &[&Object], setup: &Setup<'_>) -> Merge {
    let mut order: Vec<&Object> = ings.iter().copied().filter(|o| !is_canary(o, &setup.prefix)).collect();
    nginx_order(&mut order);
    let mut m = Merge::default();
    // (host, path, pathType) -> (winner id, its timestamp known)
    let mut owners: BTreeMap<(Option<String>, String, String), (String, bool)> = BTreeMap::new();
    let mut hosts: BTreeSet<Option<String>> = BTreeSet::new();
    // createServers: the first rules-less Ingress with a defaultBackend takes
    // the catch-all's root location before any rule's path is placed.
    m.catch_all = order
        .iter()
        .find(|o| {
            let spec = o.doc.get("spec");
            let rules = spec.and_then(|s| s.get("rules")).map(realip_kube::Node::items).unwrap_or_default();
            rules.is_empty() && spec.is_some_and(|s| s.get("defaultBackend").or_else(|| s.get("backend")).is_some())
        })
        .map(|o| o.id());
    if let Some(id) = &m.catch_all {
        owners.insert((None, "/".into(), "Prefix".into()), (id.clone(), true));
    }
    for o in order {
        let spec = o.doc.get("spec");
        let rules = spec.and_then(|s| s.get("rules")).map(realip_kube::Node::items).unwrap_or_default();
        for rule in rules {
            let host = rule.str_at(&["host"]).filter(|h| !h.is_empty()).map(str::to_owned);
            if hosts.insert(host.clone()) {
                if let Some(h) = &host {
                    m.creates.entry(o.id()).or_default().insert(h.clone());
                }
            }
            for p in rule.at(&["http", "paths"]).map(realip_kube::Node::items).unwrap_or_default() {
                let path = p.str_at(&["path"]).filter(|p| !p.is_empty()).unwrap_or("/").to_owned();
                let path_type = nginx_path_type(p.str_at(&["pathType"]), setup).to_owned();
                let key = (host.clone(), path.clone(), path_type.clone());
                match owners.get(&key) {
                    Some((winner, timed)) => {
                        let catch_all = host.is_none() && m.catch_all.as_ref() == Some(winner) && path == "/";
                        m.shadowed.entry(o.id()).or_default().push(Shadow {
                            host: host.clone(),
                            path,
                            path_type,
                            winner: winner.clone(),
                            by_name: !catch_all && (!*timed || created(o).is_none()),
                            catch_all,
                        });
                    }
                    None => {
                        owners.insert(key, (o.id(), created(o).is_some()));
                    }
                }
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ing(ns: &str, name: &str, ts: Option<&str>) -> Object {
        let ts = ts.map_or_else(String::new, |t| format!("  creationTimestamp: \"{t}\"\n"));
        let text = format!("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: {ns}\n{ts}spec:\n  rules:\n  - host: a.example\n    http:\n      paths:\n      - path: /x\n        pathType: Prefix\n        backend:\n          service:\n            name: s\n            port:\n              number: 80\n");
        realip_kube::load_str(&text, "t.yaml").unwrap().remove(0)
    }

    fn winner(objs: &[Object]) -> String {
        let refs: Vec<&Object> = objs.iter().collect();
        let setup = Setup { prefix: "nginx.ingress.kubernetes.io".into(), ..Setup::default() };
        let m = merge(&refs, &setup);
        let losers: Vec<&String> = m.shadowed.keys().collect();
        assert_eq!(losers.len(), objs.len() - 1, "{m:?}");
        m.shadowed.values().next().unwrap()[0].winner.clone()
    }

    #[test]
    fn oldest_wins_then_greatest_namespace_and_name() {
        type Row<'a> = (&'a [(&'a str, &'a str, Option<&'a str>)], &'a str);
        let table: &[Row] = &[
            // The oldest wins, whatever its name.
            (&[("a", "z", Some("2024-01-02T00:00:00Z")), ("b", "a", Some("2024-01-01T00:00:00Z"))], "Ingress/b/a"),
            // Equal timestamps: namespace/name compared descending (ingress-nginx's `in > jn`).
            (&[("a", "x", Some("2024-01-01T00:00:00Z")), ("b", "x", Some("2024-01-01T00:00:00Z"))], "Ingress/b/x"),
            (&[("web", "alpha", None), ("web", "beta", None)], "Ingress/web/beta"),
            // A timestamp beats none (not yet created: the newest).
            (&[("z", "z", None), ("a", "a", Some("2024-01-01T00:00:00Z"))], "Ingress/a/a"),
            // A malformed timestamp counts as none.
            (&[("a", "a", Some("yesterday")), ("b", "b", None)], "Ingress/b/b"),
        ];
        for (objs, want) in table {
            let objs: Vec<Object> = objs.iter().map(|(ns, n, t)| ing(ns, n, *t)).collect();
            assert_eq!(winner(&objs), *want, "{objs:?}");
        }
    }
}
