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

/// One nginx upstream of ingress-nginx's `createUpstreams`: named
/// `namespace-service-port` (the port as written, number or name), made by
/// the first Ingress (walk order) to name it, except that an Ingress's
/// `spec.defaultBackend` replaces it whatever its age.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// `Kind/ns/name` of the Ingress that made it.
    pub creator: String,
    /// The Service it sends to: `namespace/name:port` of the creator's backend.
    pub service: String,
    /// Made by a canary: ingress-nginx's `NoServer`, no location uses it
    /// (`getBackendServers` skips every path naming it, canary or not).
    pub no_server: bool,
}

/// A path of a non-canary Ingress that ingress-nginx does not serve as
/// written, for its upstream ([`Upstream`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamPath {
    /// The host (`None`: no host in the rule).
    pub host: Option<String>,
    /// The path (empty became `/`).
    pub path: String,
    /// Its pathType as ingress-nginx holds it.
    pub path_type: String,
    /// The upstream's name.
    pub upstream: String,
    /// The path's own backend, `namespace/name:port` (port as written).
    pub own: String,
    /// The upstream as made.
    pub made: Upstream,
    /// Another copy of this location in the same Ingress (same host, path
    /// and pathType, listed more than once) is the one ingress-nginx
    /// serves: this copy alone is out.
    pub other_copy_served: bool,
}

/// What ingress-nginx does with one path of a canary Ingress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CanaryFate {
    /// The canary made the path's upstream (NoServer): an alternative
    /// backend of the matching location, with its weights and headers.
    Alternative,
    /// The upstream is NoServer but another canary made it: that one's
    /// weights and headers apply.
    OtherCanary(String),
    /// The upstream (NoServer) was deleted by `mergeAlternativeBackends`
    /// (the text says what of which canary matched no location), so
    /// balancer.lua never routes to it (weight 0 everywhere).
    Deleted(String),
    /// A non-canary Ingress made the upstream, so it is no NoServer one:
    /// the path is an ordinary location with the canary's annotations, and
    /// it is the first to claim it (`host`: the server, `None` the catch-all).
    Location(Option<String>),
    /// Merged into a location whose upstream already has another canary's
    /// alternative backend (that canary's id): balancer.lua uses only the
    /// first (`alternative_backends[1]`), so this location goes by that
    /// canary's settings to that canary's Service.
    Eclipsed(String),
    /// Merged into a location whose upstream's first alternative backend
    /// routes nothing (the text says which: an upstream a non-canary made,
    /// with no traffic policy, or one deleted afterwards): balancer.lua
    /// uses only that first one, so the main backend gets everything.
    Blocked(String),
    /// As [`CanaryFate::Location`], but the location was claimed before by
    /// this Ingress (`Kind/ns/name`); the canary is then merged into it
    /// with the upstream's traffic policy, which a non-canary made: empty,
    /// weight 0.
    Taken(String),
}

/// A path of a canary Ingress and its [`CanaryFate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanaryPath {
    /// The host as written (`None`: no host).
    pub host: Option<String>,
    /// The path (empty became `/`).
    pub path: String,
    /// Its pathType as ingress-nginx holds it.
    pub path_type: String,
    /// The path was written empty (`mergeAlternativeBackends` compares it
    /// as written, so it matches no location).
    pub empty: bool,
    /// The upstream's name.
    pub upstream: String,
    /// What happens to it.
    pub fate: CanaryFate,
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
    /// The upstreams by name, as `createUpstreams` leaves them.
    pub upstreams: BTreeMap<String, Upstream>,
    /// Per non-canary Ingress id: its paths whose upstream a canary made
    /// (NoServer): ingress-nginx serves no location for them.
    pub no_server: BTreeMap<String, Vec<UpstreamPath>>,
    /// Per non-canary Ingress id: its served paths whose upstream name
    /// another Service made first (names collide across namespaces:
    /// `a`/`b-c`:80 and `a-b`/`c`:80 are both `a-b-c-80`): nginx sends them
    /// to that Service.
    pub foreign: BTreeMap<String, Vec<UpstreamPath>>,
    /// Per canary Ingress id: each of its Service paths and its fate.
    pub canary_paths: BTreeMap<String, Vec<CanaryPath>>,
    /// Per canary Ingress id: the other locations (`host/path (type)`)
    /// its share also applies to in ingress-nginx. Alternative backends
    /// belong to the primary upstream, not to the matched location, so
    /// every location sending to that upstream (any host, any Ingress) is
    /// split the same way.
    pub spread: BTreeMap<String, Vec<String>>,
    /// The upstreams `mergeAlternativeBackends` deletes, by name: what of
    /// which canary matched no location. It deletes the upstream of that
    /// name whoever made it, so besides the canary's share, every location
    /// still naming it (a path of a non-canary Ingress, a server's root
    /// falling back to a defaultBackend) has no balancer in Lua: 503 to
    /// every client.
    pub deleted: BTreeMap<String, String>,
    /// Per non-canary Ingress id: its served paths (locations it owns)
    /// whose upstream is [`Merge::deleted`]: ingress-nginx answers 503.
    pub gone: BTreeMap<String, Vec<UpstreamPath>>,
}

/// The upstream name ingress-nginx gives the Service backend `b` of an
/// Ingress in `ns` (`upstreamName`: `ns-name-port`, the port's number when
/// above 0, else its name), and the Service as `ns/name:port`; `None` for
/// a resource backend (no upstream, no location).
pub fn upstream_name(ns: &str, b: &realip_kube::Node) -> Option<(String, String)> {
    let name = b.str_at(&["service", "name"]).or_else(|| b.str_at(&["serviceName"]))?;
    let number = b.str_at(&["service", "port", "number"]).or_else(|| b.str_at(&["servicePort"]));
    let port = match number.map(|n| (n, n.parse::<i64>())) {
        Some((_, Ok(n))) if n > 0 => n.to_string(),
        // A legacy string servicePort is stored as the port's name.
        Some((n, Err(_))) => n.to_owned(),
        _ => b.str_at(&["service", "port", "name"]).filter(|n| !n.is_empty()).unwrap_or_default().to_owned(),
    };
    if port.is_empty() {
        return Some((format!("{ns}-INVALID"), format!("{ns}/{name}:(no port)")));
    }
    Some((format!("{ns}-{name}-{port}"), format!("{ns}/{name}:{port}")))
}

/// `createUpstreams`: every Ingress in walk order (canaries included); the
/// first to name an upstream makes it (a canary: NoServer), a
/// `spec.defaultBackend` replaces it.
fn upstreams(order: &[&Object], prefix: &str) -> BTreeMap<String, Upstream> {
    let mut ups: BTreeMap<String, Upstream> = BTreeMap::new();
    for o in order {
        let canary = is_canary(o, prefix);
        let made = |service: String| Upstream { creator: o.id(), service, no_server: canary };
        let spec = o.doc.get("spec");
        if let Some((name, svc)) = spec
            .and_then(|s| s.get("defaultBackend").or_else(|| s.get("backend")))
            .and_then(|b| upstream_name(&o.namespace, b))
        {
            ups.insert(name, made(svc));
        }
        for rule in spec.and_then(|s| s.get("rules")).map(realip_kube::Node::items).unwrap_or_default() {
            for p in rule.at(&["http", "paths"]).map(realip_kube::Node::items).unwrap_or_default() {
                if let Some((name, svc)) = p.get("backend").and_then(|b| upstream_name(&o.namespace, b)) {
                    ups.entry(name).or_insert_with(|| made(svc));
                }
            }
        }
    }
    ups
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
/// /admin`. A controller known to be older than v0.41 held them as Prefix
/// too (one location with a written `Prefix /admin`) but rendered every
/// Prefix path as `location /admin`, a string prefix (`buildLocation`
/// v0.40.2: only Exact gets `= `): such a location is returned as
/// `ImplementationSpecific`, the string-prefix location of the output,
/// whether the path was written Prefix, ImplementationSpecific or without
/// a type. An unknown version is taken as current.
pub fn nginx_path_type<'s>(written: Option<&'s str>, setup: &Setup<'_>) -> &'s str {
    let old = crate::setup::controller_version(setup).is_some_and(|v| v < (0, 41));
    match written {
        None | Some("ImplementationSpecific" | "Prefix") if old => "ImplementationSpecific",
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

/// The rules of an Ingress.
fn rules_of(o: &Object) -> &[realip_kube::Node] {
    o.doc.get("spec").and_then(|s| s.get("rules")).map(realip_kube::Node::items).unwrap_or_default()
}

/// The key of a location: host (`None`: the catch-all server), path, pathType.
type Loc = (Option<String>, String, String);

/// Merges `ings` (the Ingresses of the controller's class) as ingress-nginx does.
#[allow(clippy::too_many_lines)] // createUpstreams, createServers, getBackendServers and mergeAlternativeBackends in one walk
pub fn merge(ings: &[&Object], setup: &Setup<'_>) -> Merge {
    let canary = |o: &Object| is_canary(o, &setup.prefix);
    let mut all: Vec<&Object> = ings.to_vec();
    nginx_order(&mut all);
    let order: Vec<&Object> = all.iter().copied().filter(|o| !canary(o)).collect();
    let mut m = Merge { upstreams: upstreams(&all, &setup.prefix), ..Merge::default() };
    let host_of = |rule: &realip_kube::Node| rule.str_at(&["host"]).filter(|h| !h.is_empty()).map(str::to_owned);
    let has_default_backend = |o: &Object| {
        o.doc
            .get("spec")
            .and_then(|s| s.get("defaultBackend").or_else(|| s.get("backend")))
            .and_then(|b| b.str_at(&["service", "name"]).or_else(|| b.str_at(&["serviceName"])))
            .is_some()
    };
    // createServers: a server per host of the non-canary Ingresses (the catch-all always).
    let servers: BTreeSet<Option<String>> = order.iter().flat_map(|o| rules_of(o)).map(host_of).chain([None]).collect();
    // (host, path, pathType) -> (winner id, its timestamp known)
    let mut owners: BTreeMap<Loc, (String, bool)> = BTreeMap::new();
    // (host, path, pathType) -> the location's upstream
    let mut loc_ups: BTreeMap<Loc, String> = BTreeMap::new();
    let mut hosts: BTreeSet<Option<String>> = BTreeSet::new();
    // The servers whose root location `/` has an upstream of its own (the
    // defaultBackend of the Ingress that made the server), where a canary's
    // `/` Prefix finds a location to merge into.
    let mut rooted: BTreeSet<Option<String>> = BTreeSet::new();
    // The locations of non-canary Ingresses, by Ingress id, with their upstream.
    let mut served: Vec<(String, UpstreamPath)> = Vec::new();
    // createServers: the first rules-less Ingress with a defaultBackend takes
    // the catch-all's root location before any rule's path is placed.
    m.catch_all = order
        .iter()
        .find(|o| {
            let spec = o.doc.get("spec");
            rules_of(o).is_empty()
                && spec.is_some_and(|s| s.get("defaultBackend").or_else(|| s.get("backend")).is_some())
        })
        .map(|o| o.id());
    if let Some(id) = &m.catch_all {
        owners.insert((None, "/".into(), "Prefix".into()), (id.clone(), true));
        rooted.insert(None);
    }
    // getBackendServers: every Ingress in walk order, canaries included.
    for o in &all {
        let is_canary = canary(o);
        for rule in rules_of(o) {
            let host = host_of(rule);
            if !is_canary && hosts.insert(host.clone()) {
                if let Some(h) = &host {
                    m.creates.entry(o.id()).or_default().insert(h.clone());
                }
                if has_default_backend(o) {
                    rooted.insert(host.clone());
                }
            }
            // A canary's host without a server of its own: the catch-all's.
            let server = if servers.contains(&host) { host.clone() } else { None };
            for p in rule.at(&["http", "paths"]).map(realip_kube::Node::items).unwrap_or_default() {
                let path = p.str_at(&["path"]).filter(|p| !p.is_empty()).unwrap_or("/").to_owned();
                let path_type = nginx_path_type(p.str_at(&["pathType"]), setup).to_owned();
                let up = p.get("backend").and_then(|b| upstream_name(&o.namespace, b));
                let made = up.as_ref().and_then(|(name, _)| m.upstreams.get(name)).cloned();
                if is_canary {
                    // A canary path without a Service names no upstream: no location, nothing merged.
                    let (Some((name, _)), Some(made)) = (up, made) else { continue };
                    let fate = if made.no_server && made.creator == o.id() {
                        CanaryFate::Alternative
                    } else if made.no_server {
                        CanaryFate::OtherCanary(made.creator.clone())
                    } else {
                        let key = (server.clone(), path.clone(), path_type.clone());
                        if let Some((winner, _)) = owners.get(&key) {
                            CanaryFate::Taken(winner.clone())
                        } else {
                            loc_ups.insert(key.clone(), name.clone());
                            owners.insert(key, (o.id(), created(o).is_some()));
                            CanaryFate::Location(server.clone())
                        }
                    };
                    m.canary_paths.entry(o.id()).or_default().push(CanaryPath {
                        host: host.clone(),
                        empty: p.str_at(&["path"]).is_none_or(str::is_empty),
                        path,
                        path_type,
                        upstream: name,
                        fate,
                    });
                    continue;
                }
                let mut at = None;
                if let (Some((name, svc)), Some(made)) = (&up, made) {
                    let here = UpstreamPath {
                        host: host.clone(),
                        path: path.clone(),
                        path_type: path_type.clone(),
                        upstream: name.clone(),
                        own: svc.clone(),
                        made: made.clone(),
                        other_copy_served: false,
                    };
                    if made.no_server {
                        // `if ups.NoServer { continue }`: no location, nothing claimed.
                        m.no_server.entry(o.id()).or_default().push(here);
                        continue;
                    }
                    if made.service != *svc {
                        m.foreign.entry(o.id()).or_default().push(here.clone());
                    }
                    at = Some(here);
                }
                let key = (host.clone(), path.clone(), path_type.clone());
                if let Some((winner, timed)) = owners.get(&key) {
                    let catch_all = host.is_none() && m.catch_all.as_ref() == Some(winner) && path == "/";
                    m.shadowed.entry(o.id()).or_default().push(Shadow {
                        host: host.clone(),
                        path,
                        path_type,
                        winner: winner.clone(),
                        by_name: !catch_all && (!*timed || created(o).is_none()),
                        catch_all,
                    });
                } else {
                    if let Some((name, _)) = &up {
                        loc_ups.insert(key.clone(), name.clone());
                    }
                    owners.insert(key, (o.id(), created(o).is_some()));
                    served.extend(at.map(|at| (o.id(), at)));
                }
            }
        }
    }
    // A skipped copy of a location its own Ingress serves from another copy.
    for (id, ups) in &mut m.no_server {
        for u in ups {
            let key = (u.host.clone(), u.path.clone(), u.path_type.clone());
            u.other_copy_served = owners.get(&key).is_some_and(|(w, _)| w == id);
        }
    }
    if !order.is_empty() {
        let (deleted, at) = deleted_alternatives(&all, &m, &owners, &rooted, &servers, setup);
        m.deleted = deleted;
        for (id, at) in served {
            if m.deleted.contains_key(&at.upstream) {
                m.gone.entry(id).or_default().push(at);
            }
        }
        for cp in m.canary_paths.values_mut().flatten() {
            if let (CanaryFate::Alternative | CanaryFate::OtherCanary(_), Some(by)) =
                (&cp.fate, m.deleted.get(&cp.upstream))
            {
                cp.fate = CanaryFate::Deleted(by.clone());
            }
        }
        let catch_all_root = m.catch_all.as_ref().and_then(|id| {
            let o = all.iter().find(|o| o.id() == *id)?;
            let spec = o.doc.get("spec")?;
            upstream_name(&o.namespace, spec.get("defaultBackend").or_else(|| spec.get("backend"))?).map(|(n, _)| n)
        });
        let slots = Slots { loc_ups: &loc_ups, servers: &servers, deleted_at: &at, catch_all_root };
        first_alternatives(&all, &mut m, &slots, setup);
    }
    m
}

/// Where `mergeAlternativeBackends` deleted an upstream: the canary's
/// index in walk order, and its path's (`None`: its defaultBackend).
type DeletedAt = (usize, Option<usize>);

/// Where [`first_alternatives`] looks: the locations' upstreams, the
/// servers, where each deleted upstream was deleted (canary index in walk
/// order, its path index; `None`: its defaultBackend), and the upstream of
/// the catch-all's root location.
struct Slots<'a> {
    loc_ups: &'a BTreeMap<Loc, String>,
    servers: &'a BTreeSet<Option<String>>,
    deleted_at: &'a BTreeMap<String, DeletedAt>,
    catch_all_root: Option<String>,
}

/// Who holds the first alternative slot of a primary upstream.
#[derive(Clone)]
enum Claim {
    /// That canary's weights and headers apply.
    Canary(String),
    /// An alternative that routes nothing (what it is).
    Dead(String),
}

/// `mergeAlternativeBackend` appends an alternative upstream to the
/// `AlternativeBackends` of the matched location's upstream (whatever made
/// the alternative: `canMergeBackend` only looks at the primary), and
/// balancer.lua routes by the first of them for every location sending to
/// that upstream: a later canary on the same primary is
/// [`CanaryFate::Eclipsed`] (or [`CanaryFate::Blocked`] when the first one
/// routes nothing: a non-canary upstream, or one deleted after it was
/// merged), and the first one's share also applies to the primary's other
/// locations ([`Merge::spread`]). A canary's `spec.defaultBackend` is
/// merged first, into every catch-all location.
fn first_alternatives(all: &[&Object], m: &mut Merge, at: &Slots<'_>, setup: &Setup<'_>) {
    let mut first: BTreeMap<String, Claim> = BTreeMap::new();
    // Whether the upstream `u` still exists when canary `k`'s path `j` (`None`: its defaultBackend) merges.
    let alive = |u: &str, k: usize, j: Option<usize>| match at.deleted_at.get(u) {
        None => true,
        Some(&(dk, di)) => k < dk || (k == dk && di.is_some_and(|di| j.is_none_or(|j| j < di))),
    };
    for (k, o) in all.iter().filter(|o| is_canary(o, &setup.prefix)).enumerate() {
        let id = o.id();
        // Its defaultBackend: an alternative of every catch-all location's upstream.
        let spec = o.doc.get("spec");
        let db = spec
            .and_then(|s| s.get("defaultBackend").or_else(|| s.get("backend")))
            .and_then(|b| upstream_name(&o.namespace, b))
            .map(|(n, _)| n);
        if let Some((d, made)) = db.and_then(|d| m.upstreams.get(&d).cloned().map(|u| (d, u))) {
            if alive(&d, k, None) {
                let claim = if made.no_server {
                    Claim::Canary(made.creator.clone())
                } else {
                    Claim::Dead(format!("`{d}`, made by the non-canary {} (no traffic policy: weight 0), merged by the canary {id}'s spec.defaultBackend", made.creator))
                };
                let catch_all = at.loc_ups.iter().filter(|((h, _, _), _)| h.is_none()).map(|(_, u)| u.clone());
                for primary in catch_all.chain(at.catch_all_root.clone()) {
                    if primary != d {
                        first.entry(primary).or_insert_with(|| claim.clone());
                    }
                }
            }
        }
        let mut mine: BTreeSet<Loc> = BTreeSet::new();
        let mut primaries: BTreeSet<String> = BTreeSet::new();
        for (j, cp) in m.canary_paths.get_mut(&id).map(Vec::as_mut_slice).unwrap_or_default().iter_mut().enumerate() {
            if cp.empty || !at.servers.contains(&cp.host) {
                continue;
            }
            let key = (cp.host.clone(), cp.path.clone(), cp.path_type.clone());
            let Some(primary) = at.loc_ups.get(&key) else { continue };
            if *primary == cp.upstream || !alive(&cp.upstream, k, Some(j)) {
                // The location's own upstream (`altEqualsPri`), or gone: nothing merged.
                continue;
            }
            let creator = m.upstreams.get(&cp.upstream).map_or_else(String::new, |u| u.creator.clone());
            match &cp.fate {
                // The alternative is the upstream's, so its maker's settings apply.
                CanaryFate::OtherCanary(maker) => {
                    first.entry(primary.clone()).or_insert_with(|| Claim::Canary(maker.clone()));
                }
                CanaryFate::Taken(_) => {
                    first.entry(primary.clone()).or_insert_with(|| Claim::Dead(format!("`{}`, made by the non-canary {creator} (no traffic policy: weight 0), merged by the canary {id}", cp.upstream)));
                }
                CanaryFate::Deleted(_) => {
                    first.entry(primary.clone()).or_insert_with(|| Claim::Dead(format!("`{}` of the canary {creator}, merged by {id} and deleted afterwards by mergeAlternativeBackends (no balancer)", cp.upstream)));
                }
                CanaryFate::Alternative => {
                    match first.entry(primary.clone()).or_insert_with(|| Claim::Canary(id.clone())) {
                        Claim::Canary(by) if *by == id => {
                            mine.insert(key);
                            primaries.insert(primary.clone());
                        }
                        Claim::Canary(by) => cp.fate = CanaryFate::Eclipsed(by.clone()),
                        Claim::Dead(what) => cp.fate = CanaryFate::Blocked(what.clone()),
                    }
                }
                CanaryFate::Location(_) | CanaryFate::Eclipsed(_) | CanaryFate::Blocked(_) => {}
            }
        }
        let others: Vec<String> = at
            .loc_ups
            .iter()
            .filter(|(k, u)| primaries.contains(*u) && !mine.contains(*k))
            .map(|((h, p, t), _)| format!("{}{p} ({t})", h.as_deref().unwrap_or("*")))
            .collect();
        if !others.is_empty() {
            m.spread.insert(id, others);
        }
    }
}

/// `mergeAlternativeBackends`, canaries in walk order: a NoServer upstream
/// one of whose canary paths (on a host with a server) finds no location
/// with the same path and pathType is deleted (`unable to find real
/// backend … Deleting`), and with it the canary's share of every location
/// it was merged into. So is a canary's `spec.defaultBackend` upstream
/// when the catch-all server has no location of an Ingress, whoever made
/// the upstream of that name (`upstreams[upsName]`: a non-canary's
/// defaultBackend replacing it, or its paths naming it first). By upstream
/// name, the path that deleted it.
fn deleted_alternatives(
    all: &[&Object],
    m: &Merge,
    owners: &BTreeMap<Loc, (String, bool)>,
    rooted: &BTreeSet<Option<String>>,
    servers: &BTreeSet<Option<String>>,
    setup: &Setup<'_>,
) -> (BTreeMap<String, String>, BTreeMap<String, DeletedAt>) {
    let mut deleted: BTreeMap<String, String> = BTreeMap::new();
    let mut at: BTreeMap<String, DeletedAt> = BTreeMap::new();
    let no_server = |name: &str| m.upstreams.get(name).is_some_and(|u| u.no_server);
    for (k, o) in all.iter().filter(|o| is_canary(o, &setup.prefix)).enumerate() {
        let spec = o.doc.get("spec");
        if let Some((name, _)) = spec
            .and_then(|s| s.get("defaultBackend").or_else(|| s.get("backend")))
            .and_then(|b| upstream_name(&o.namespace, b))
        {
            let catch_all_locations = owners.keys().any(|(h, _, _)| h.is_none()) || rooted.contains(&None);
            if m.upstreams.contains_key(&name) && !catch_all_locations && !deleted.contains_key(&name) {
                at.insert(name.clone(), (k, None));
                deleted.insert(
                    name,
                    format!(
                        "{}'s spec.defaultBackend, which the catch-all server has no location to merge into",
                        o.id()
                    ),
                );
            }
        }
        for (j, cp) in m.canary_paths.get(&o.id()).map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
            if !no_server(&cp.upstream) || deleted.contains_key(&cp.upstream) || !servers.contains(&cp.host) {
                // No server for the host: `cannot merge … that does not exist`, nothing deleted.
                continue;
            }
            // An empty canary path is compared as written: no location has it (theirs became `/`).
            let matched = !cp.empty && owners.contains_key(&(cp.host.clone(), cp.path.clone(), cp.path_type.clone()))
                || (cp.path == "/" && cp.path_type == "Prefix" && rooted.contains(&cp.host));
            if !matched {
                let where_ = format!("{}{} ({})", cp.host.as_deref().unwrap_or("*"), cp.path, cp.path_type);
                at.insert(cp.upstream.clone(), (k, Some(j)));
                deleted.insert(cp.upstream.clone(), format!("{}'s path {where_}, which matches no location", o.id()));
            }
        }
    }
    (deleted, at)
}

/// The Ingresses ingress-nginx's admission webhook refuses for a path
/// another Ingress already defines (`CheckIngress` → `checkOverlap`), by
/// id, with the webhook's message. Each Ingress is checked as it would
/// have been applied: after the older ones it did not refuse (walk order,
/// [`nginx_order`]), with the servers `getConfiguration` builds from them
/// and it. A path (empty: `/`) of a Service backend overlaps when a
/// location of its server (`_` without a host) has exactly that path after
/// `updateServerLocations` (a Prefix `/a` without rewrite or regex becomes
/// `/a/` plus an Exact copy `/a` unless an Exact `/a` exists), is not the
/// server's default root, and belongs to another Ingress; the webhook
/// refuses it when neither Ingress has a `canary` annotation (any value:
/// a non-canary with `canary: "false"` owns locations but is never
/// refused, nor is what clashes with it), or when both are canaries. A
/// canary owns the locations of its paths whose upstream a non-canary
/// made (no path whose upstream a canary made, NoServer, is placed).
/// When the two
/// Ingresses' order is not known (no creationTimestamp on either, or the
/// same), either may have been applied second: both are returned.
#[allow(clippy::too_many_lines)] // getBackendServers, updateServerLocations and checkOverlap, per Ingress
pub fn overlap_refusals(ings: &[&Object], setup: &Setup<'_>) -> BTreeMap<String, String> {
    /// A location: server, path, pathType, owner id, path kept as written.
    #[derive(Clone)]
    struct Location {
        host: String,
        path: String,
        exact: bool,
        owner: String,
        verbatim: bool,
    }
    let plain = |o: &Object| o.annotation(&format!("{}/canary", setup.prefix)).is_none();
    let canary = |o: &Object| is_canary(o, &setup.prefix);
    let mut order: Vec<&Object> = ings.to_vec();
    nginx_order(&mut order);
    let by_id: BTreeMap<String, &Object> = order.iter().map(|o| (o.id(), *o)).collect();
    // getBackendServers places no path whose upstream a canary made (NoServer).
    let ups = upstreams(&order, &setup.prefix);
    // Each Ingress's Service paths: (server, path as written or `/`, pathType).
    // Every Service path of an Ingress (host, path, pathType, and whether
    // it becomes a location: not one whose upstream a canary made,
    // NoServer). checkOverlap checks them all (review 32 H-2); only the
    // placed ones are locations later Ingresses meet.
    let paths = |o: &Object| -> Vec<(String, String, String, bool)> {
        let mut out = Vec::new();
        for rule in rules_of(o) {
            let host = rule.str_at(&["host"]).filter(|h| !h.is_empty()).unwrap_or("_");
            for p in rule.at(&["http", "paths"]).map(realip_kube::Node::items).unwrap_or_default() {
                let Some((name, _)) = upstream_name(&o.namespace, p.get("backend").unwrap_or(p)) else { continue };
                let placed = !ups.get(&name).is_some_and(|u| u.no_server);
                let path = p.str_at(&["path"]).filter(|p| !p.is_empty()).unwrap_or("/");
                out.push((
                    host.to_owned(),
                    path.to_owned(),
                    nginx_path_type(p.str_at(&["pathType"]), setup).to_owned(),
                    placed,
                ));
            }
        }
        out
    };
    // The path of a Prefix location stays as written with a rewrite or regex.
    let verbatim = |o: &Object, path: &str| {
        crate::ingress::applied_path_annotation(o, setup, "rewrite-target").is_some_and(|t| t != path)
            || o.annotation(&format!("{}/use-regex", setup.prefix)).map(str::trim).and_then(crate::ingress::go_bool)
                == Some(true)
    };
    // The catch-all server's root: the first rule-less Ingress with a Service defaultBackend.
    let is_catch_all = |o: &Object| {
        !canary(o)
            && rules_of(o).is_empty()
            && o.doc.at(&["spec", "defaultBackend"]).is_some_and(|b| upstream_name(&o.namespace, b).is_some())
    };
    // The locations of the Ingresses let in so far, per server, in walk
    // order; each Ingress is checked on the servers it names only, so the
    // check costs its own paths times theirs, not every Ingress again.
    // Per server, its locations by (path, exact): looked up, never
    // scanned, so one host with thousands of Ingresses costs each Ingress
    // its own paths (review 31 L-1: cubic, 59 s for 3,000).
    let mut servers: std::collections::HashMap<String, std::collections::HashMap<(String, bool), Location>> =
        std::collections::HashMap::new();
    let mut catch_all: Option<String> = None;
    let mut refused = BTreeMap::new();
    // The hosts with a server: those of the non-canary Ingresses let in.
    // A canary's location on a host without one sits on the catch-all
    // server `_` (getBackendServers; review 32 M-1).
    let mut server_hosts: std::collections::HashSet<String> = std::collections::HashSet::new();
    // Canary locations parked on `_` by the host they name: they move to
    // that host's server once a non-canary Ingress creates it.
    let mut parked: std::collections::HashMap<String, Vec<(String, bool, String)>> = std::collections::HashMap::new();
    for ing in order {
        let mine = paths(ing);
        let place = |host: &str| -> String {
            if canary(ing) && host != "_" && !server_hosts.contains(host) {
                "_".to_owned()
            } else {
                host.to_owned()
            }
        };
        let root = catch_all.clone().or_else(|| is_catch_all(ing).then(|| ing.id()));
        // This Ingress's locations its servers do not have yet, and the
        // catch-all server's root on `_`.
        let mut extra: std::collections::HashMap<(String, String, bool), Location> = std::collections::HashMap::new();
        if let Some(owner) = root.as_ref().filter(|_| mine.iter().any(|(h, _, _, _)| h == "_")) {
            let l = Location { host: "_".into(), path: "/".into(), exact: false, owner: owner.clone(), verbatim: true };
            extra.insert(("_".into(), "/".into(), false), l);
        }
        let mut added = Vec::new();
        let mut parks: Vec<(String, String, bool)> = Vec::new();
        for (written, path, kind, placed) in &mine {
            if !placed {
                continue;
            }
            let host = &place(written);
            let exact = kind == "Exact";
            if host != written {
                parks.push((written.clone(), path.clone(), exact));
            }
            let known = servers.get(host).is_some_and(|m| m.contains_key(&(path.clone(), exact)))
                || extra.contains_key(&(host.clone(), path.clone(), exact));
            if !known {
                let verbatim = !exact && verbatim(ing, path);
                let l = Location { host: host.clone(), path: path.clone(), exact, owner: ing.id(), verbatim };
                added.push(l.clone());
                extra.insert((host.clone(), path.clone(), exact), l);
            }
        }
        let get = |host: &str, path: &str, exact: bool| -> Option<&Location> {
            servers
                .get(host)
                .and_then(|m| m.get(&(path.to_owned(), exact)))
                .or_else(|| extra.get(&(host.to_owned(), path.to_owned(), exact)))
        };
        // The owners of the locations updateServerLocations leaves at
        // (host, p): an Exact one; a prefix one at p (kept unless an Exact
        // one has its path, `/`, regex or rewrite ones always, and one
        // ending in `/` is its own slashed twin); the slashed twin of a
        // prefix one at p without its trailing `/`.
        let owners_at = |host: &str, p: &str| -> Vec<String> {
            let mut v = Vec::new();
            let exact = get(host, p, true);
            if let Some(l) = exact {
                v.push(l.owner.clone());
            }
            if let Some(l) = get(host, p, false) {
                if l.path == "/" || l.verbatim || exact.is_none() || p.ends_with('/') {
                    v.push(l.owner.clone());
                }
            }
            if let Some(base) = p.strip_suffix('/').filter(|b| !b.is_empty() && !b.ends_with('/')) {
                if let Some(l) = get(host, base, false).filter(|l| l.path != "/" && !l.verbatim) {
                    v.push(l.owner.clone());
                }
            }
            v
        };
        let me = ing.id();
        // checkOverlap: refused when both are canaries, or neither has the annotation.
        let refuses =
            |owner: &String| by_id.get(owner).is_some_and(|o| (canary(ing) && canary(o)) || (plain(ing) && plain(o)));
        let hosts_mine: Vec<String> = mine.iter().filter(|m| m.3).map(|m| m.0.clone()).collect();
        // (Looked up by the host as written: ingressForHostPath finds no
        // server for a canary's host without one.)
        let clash = mine.into_iter().find_map(|(host, path, _, _)| {
            owners_at(&host, &path)
                .into_iter()
                .find(|owner| *owner != me && refuses(owner))
                .map(|owner| (host, path, owner))
        });
        let Some((host, path, owner)) = clash else {
            for l in added {
                servers.entry(l.host.clone()).or_default().insert((l.path.clone(), l.exact), l);
            }
            for (written, path, exact) in parks {
                parked.entry(written).or_default().push((path, exact, ing.id()));
            }
            if !canary(ing) {
                for h in hosts_mine {
                    if server_hosts.insert(h.clone()) {
                        // Canary locations parked for this host move to its server.
                        for (path, exact, owner) in parked.remove(&h).unwrap_or_default() {
                            let key = (path, exact);
                            let on_catch_all = servers.get_mut("_");
                            let Some(m) = on_catch_all.filter(|m| m.get(&key).is_some_and(|l| l.owner == owner)) else {
                                continue;
                            };
                            if let Some(l) = m.remove(&key) {
                                servers
                                    .entry(h.clone())
                                    .or_default()
                                    .entry(key)
                                    .or_insert(Location { host: h.clone(), ..l });
                            }
                        }
                    }
                }
            }
            catch_all = root;
            continue;
        };
        let shown = owner.strip_prefix("Ingress/").unwrap_or(&owner);
        let why = format!("host \"{host}\" and path \"{path}\" is already defined in ingress {shown}");
        // One without a timestamp is not created yet: applied after those with one.
        let ordered = by_id.get(&owner).is_some_and(|o| created(o) != created(ing));
        if !ordered {
            let shown_mine = me.strip_prefix("Ingress/").unwrap_or(&me);
            refused.entry(owner.clone()).or_insert_with(|| {
                format!("host \"{host}\" and path \"{path}\" is defined in this Ingress and in ingress {shown_mine}, and neither creationTimestamp tells which was applied second, and refused (\"… is already defined in ingress …\"), is not known")
            });
        }
        refused.insert(me, why);
    }
    refused
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
