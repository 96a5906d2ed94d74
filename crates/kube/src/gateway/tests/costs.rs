//! What refused routes and listener checks cost (review 18 B1r, L1, L6,
//! L10), counted in work done, and that the shortcuts change no result.

use super::super::objects::Objects;
use super::super::translate::{translate, translate_with, RouteCache, Translation, CONFLICT_CHECKS, FORCE_LINEAR};
use super::{ip_policy, object, status, BASE};
use crate::gateway::status::Status;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const GW: &str = "gateway.networking.k8s.io/v1";

/// A Gateway `name` in `infra` with `n` HTTP listeners on port 80, hostnames
/// `h{i}.{domain}`, admitting routes from every namespace.
fn gateway(uid: &str, version: u32, name: &str, n: usize, domain: &str) -> String {
    let listeners: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "  - {{name: l{i}, port: 80, protocol: HTTP, hostname: h{i}.{domain}, allowedRoutes: {{namespaces: {{from: All}}}}}}"
            )
        })
        .collect();
    object(
        uid,
        version,
        GW,
        "Gateway",
        name,
        "infra",
        &format!("spec:\n  gatewayClassName: realip\n  listeners:\n{}", listeners.join("\n")),
    )
}

/// An HTTPRoute in `web` named `name`, created at second `second`, on
/// `parents` (Gateways in `infra`), with `matches` path matches.
fn http_route(uid: &str, version: u32, name: &str, second: u32, parents: &[&str], matches: usize) -> String {
    let parents: Vec<String> = parents.iter().map(|p| format!("{{name: {p}, namespace: infra}}")).collect();
    let m: Vec<String> = (0..matches).map(|j| format!("{{path: {{type: PathPrefix, value: /m{j}}}}}")).collect();
    object(uid, version, GW, "HTTPRoute", name, "web", &format!(
        "spec:\n  parentRefs: [{}]\n  hostnames: ['*.example.com']\n  rules: [{{name: main, matches: [{}], backendRefs: [{{name: app, port: 80}}]}}]",
        parents.join(", "),
        m.join(", ")
    ))
    .replace("2026-01-01T00:00:00Z", &format!("2026-01-01T00:00:{second:02}Z"))
}

/// Translates `world` with `cache` and from scratch, checks they agree,
/// and returns the result.
fn both(world: &BTreeMap<String, String>, budget: Option<usize>, cache: &mut RouteCache) -> Translation {
    let mut o = Objects::default();
    o.add_yaml(&world.values().cloned().collect::<String>()).unwrap();
    let mut inp = o.inputs("realip", &["198.51.100.1".to_owned()]);
    inp.max_routes_per_namespace = budget;
    let cached = translate_with(&inp, cache);
    assert_eq!(cached, translate(&inp));
    cached
}

/// Review 18 B1r: HTTPRoutes refused for their namespace's budget are
/// counted once, not at every change of a Gateway they do not depend on
/// (another tenant's, or a status write that moves a `resourceVersion`):
/// those changes translate the one served route again, not the refused
/// ones. A change of a listener they name counts them again, and every
/// result equals a translation from scratch.
#[test]
fn routes_refused_for_the_budget_are_not_counted_again_at_each_gateway_change() {
    const REFUSED: usize = 30;
    let mut world: BTreeMap<String, String> = BTreeMap::new();
    let class =
        object("c", 1, GW, "GatewayClass", "realip", "", "spec: {controllerName: realip.dev/gateway-controller}");
    world.insert("class".into(), class);
    world.insert("app".into(), object("s1", 1, "v1", "Service", "app", "web", "spec: {ports: [{port: 80}]}"));
    let names = ["g0", "g1", "g2", "g3"];
    for (i, name) in names.iter().enumerate() {
        world.insert((*name).into(), gateway(&format!("g{i}"), 1, name, 16, &format!("{name}.example.com")));
    }
    world.insert("other".into(), gateway("go", 1, "other", 16, "other.org"));
    // The oldest: 16 routes (one Gateway's listeners × 1 match), served.
    world.insert("a".into(), http_route("ra", 1, "a", 1, &["g0"], 1));
    // Each 4 Gateways × 16 listeners × 2 matches = 128: past the budget.
    for k in 0..REFUSED {
        world.insert(format!("r{k:02}"), http_route(&format!("r{k}"), 1, &format!("r{k:02}"), 2, &names, 2));
    }
    let budget = Some(100);
    let mut cache = RouteCache::default();
    let t = both(&world, budget, &mut cache);
    let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "r00").status else { panic!() };
    assert!(parents[0].conditions[0].message.contains("this one 128"), "{parents:?}");
    assert_eq!(t.routes.routes.len(), 16);
    let translated = |cache: &RouteCache, before: &mut usize| {
        let n = cache.translated() - *before;
        *before = cache.translated();
        n
    };
    let mut seen = cache.translated();
    // Another tenant's Gateway changes: no route is translated again (the
    // served one reads g0 only).
    world.insert("other".into(), gateway("go", 2, "other", 17, "other.org"));
    both(&world, budget, &mut cache);
    assert_eq!(translated(&cache, &mut seen), 0, "another Gateway changed");
    // A Gateway they name is written without a change of its listeners
    // (a status write moves its resourceVersion).
    world.insert("g1".into(), gateway("g1", 2, "g1", 16, "g1.example.com"));
    both(&world, budget, &mut cache);
    assert_eq!(translated(&cache, &mut seen), 0, "a status write");
    // A listener they would attach to changes: all are counted again (the
    // served route, on g0, is not).
    world.insert("g2".into(), gateway("g2", 2, "g2", 15, "g2.example.com"));
    let t = both(&world, budget, &mut cache);
    assert_eq!(translated(&cache, &mut seen), REFUSED, "a listener they name");
    let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "r00").status else { panic!() };
    assert!(parents[0].conditions[0].message.contains("this one 126"), "{parents:?}");
    // The budget grows past one of them: it is translated and served.
    let t = both(&world, Some(16 + 126), &mut cache);
    assert_eq!(t.routes.routes.len(), 16 + 126);
}

/// Review 18 L1: a ClientAccessPolicy on a named rule of an HTTPRoute
/// refused for its namespace's budget gets one status whatever the order
/// the routes come in, and it says why: the route exists but is not
/// served.
#[test]
fn a_policy_on_a_rule_of_a_route_over_the_budget_says_so_in_any_order() {
    let route = |name: &str, second: u32| {
        format!(
            "---\napiVersion: {GW}\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: web, creationTimestamp: '2026-01-01T00:00:{second:02}Z'}}\nspec:\n  parentRefs: [{{name: gw, namespace: infra, sectionName: http}}]\n  rules: [{{name: admin, backendRefs: [{{name: app, port: 80}}]}}]\n"
        )
    };
    let policy = "---\napiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: p, namespace: web}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: new, sectionName: admin}]\n  allow: [198.51.100.0/24]\n";
    let run = |routes: String| {
        let mut o = Objects::default();
        o.add_yaml(BASE).unwrap();
        o.add_yaml(&format!("{routes}{policy}")).unwrap();
        let mut inp = o.inputs("realip", &["198.51.100.1".to_owned()]);
        inp.max_routes_per_namespace = Some(1);
        translate(&inp)
    };
    let old_first = run(format!("{}{}", route("old", 1), route("new", 2)));
    let new_first = run(format!("{}{}", route("new", 2), route("old", 1)));
    let of = |t: &Translation| status(t, "ClientAccessPolicy", Some("web"), "p").clone();
    assert_eq!(of(&old_first), of(&new_first));
    let Status::Policy { ancestors, .. } = &of(&old_first).status else { panic!() };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "TargetNotFound"));
    assert!(c.message.contains("exists but is not served") && c.message.contains("max-routes-per-namespace"), "{c:?}");
}

/// The class's Gateways and ListenerSets for the listener tests: `sets`
/// ListenerSets of `per_set` listeners each on Gateway `gw` (port 80,
/// distinct hostnames), one listener of another Gateway whose wildcard
/// overlaps one of them, and one repeating a hostname.
fn many_listeners(sets: usize, per_set: usize) -> String {
    let mut out = String::from(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: big, namespace: infra, creationTimestamp: '2026-01-01T00:00:00Z'}\nspec:\n  gatewayClassName: realip\n  allowedListeners: {namespaces: {from: All}}\n  listeners: [{name: main, port: 80, protocol: HTTP, hostname: main.example.com}]\n",
    );
    for s in 0..sets {
        let listeners: Vec<String> = (0..per_set)
            .map(|i| format!("{{name: l{i}, port: 80, protocol: HTTP, hostname: h{i}.s{s}.example.com}}"))
            .collect();
        write!(
            out,
            "---\napiVersion: {GW}\nkind: ListenerSet\nmetadata: {{name: s{s}, namespace: team, creationTimestamp: '2026-01-01T00:00:01Z'}}\nspec:\n  parentRef: {{name: big, namespace: infra, kind: Gateway, group: gateway.networking.k8s.io}}\n  listeners: [{}]\n",
            listeners.join(", ")
        )
        .unwrap();
    }
    write!(
        out,
        "---\napiVersion: {GW}\nkind: Gateway\nmetadata: {{name: late, namespace: infra, creationTimestamp: '2026-01-02T00:00:00Z'}}\nspec:\n  gatewayClassName: realip\n  listeners: [{{name: wild, port: 80, protocol: HTTP, hostname: '*.s0.example.com'}}, {{name: again, port: 80, protocol: HTTP, hostname: main.example.com}}, {{name: free, port: 80, protocol: HTTP, hostname: free.example.org}}]\n"
    )
    .unwrap();
    out
}

fn listener_conflict(t: &Translation, kind: &str, ns: &str, name: &str, listener: &str) -> (bool, &'static str) {
    let Status::Gateway { listeners, .. } = &status(t, kind, Some(ns), name).status else { panic!() };
    let l = listeners.iter().find(|l| l.name == listener).unwrap();
    let c = l.conditions.iter().find(|c| c.kind == "Conflicted").unwrap();
    (c.status, c.reason)
}

/// Review 18 L6/L10: each new listener is compared with a few older ones
/// on its port, not with all of them, for the hostname and protocol
/// conflicts and for the client-IP chain conflicts: 20 ListenerSets of 32
/// listeners on one port (641 listeners) compare fewer than 8 pairs per
/// listener (every pair would be 200,000); the conflicts are the same as
/// comparing every pair.
#[test]
fn listener_conflicts_compare_a_few_listeners_not_every_pair() {
    let world = format!(
        "{BASE}---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: team}}\n---\n{}",
        many_listeners(20, 32)
    );
    let mut o = Objects::default();
    o.add_yaml(&world).unwrap();
    let inp = o.inputs("realip", &["198.51.100.1".to_owned()]);
    CONFLICT_CHECKS.with(|c| c.set(0));
    let t = translate(&inp);
    let checks = CONFLICT_CHECKS.with(std::cell::Cell::get);
    assert!(checks < 8 * 644, "{checks} pairs compared");
    FORCE_LINEAR.with(|f| f.set(true));
    let every_pair = translate(&inp);
    FORCE_LINEAR.with(|f| f.set(false));
    assert_eq!(t, every_pair);
    assert_eq!(listener_conflict(&t, "Gateway", "infra", "late", "wild"), (true, "HostnameConflict"));
    assert_eq!(listener_conflict(&t, "Gateway", "infra", "late", "again"), (true, "HostnameConflict"));
    assert_eq!(listener_conflict(&t, "Gateway", "infra", "late", "free"), (false, "NoConflicts"));
    assert_eq!(listener_conflict(&t, "ListenerSet", "team", "s7", "l3"), (false, "NoConflicts"));
}

/// The listener conflict index finds the same conflicts as comparing every
/// pair, on generated listeners: hostnames exact, wildcard, none or an odd
/// wildcard, two protocols, three Gateways, two ports.
#[test]
fn listener_conflicts_are_those_of_comparing_every_pair_on_generated_listeners() {
    let hosts = ["a.x.io", "b.x.io", "*.x.io", "*.b.x.io", "c.b.x.io", "*.io", "x.io", "*x.io", "", "a.y.io"];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % n as u64).unwrap()
    };
    for round in 0..40 {
        let mut world = BASE.to_owned();
        for g in 0..3 {
            let listeners: Vec<String> = (0..12)
                .map(|i| {
                    let h = hosts[next(hosts.len())];
                    let host = if h.is_empty() { String::new() } else { format!(", hostname: '{h}'") };
                    let proto = if next(6) == 0 { "HTTPS, tls: {certificateRefs: [{name: none}]}" } else { "HTTP" };
                    format!("{{name: l{i}, port: {}, protocol: {proto}{host}}}", 80 + next(2))
                })
                .collect();
            write!(
                world,
                "---\napiVersion: {GW}\nkind: Gateway\nmetadata: {{name: g{g}, namespace: infra, creationTimestamp: '2026-01-01T00:00:0{}Z'}}\nspec:\n  gatewayClassName: realip\n  listeners: [{}]\n",
                next(3),
                listeners.join(", ")
            )
            .unwrap();
        }
        // Client-IP chains: Gateways with different ones conflict on a port.
        for g in 0..3 {
            if next(2) == 0 {
                let p = ip_policy(&format!("p{g}"), "2026-01-01T00:00:00Z", &format!("10.{g}.0.0/16"));
                write!(world, "---\n{}", p.replace("name: gw}", &format!("name: g{g}}}"))).unwrap();
            }
        }
        let mut o = Objects::default();
        o.add_yaml(&world).unwrap();
        let inp = o.inputs("realip", &["198.51.100.1".to_owned()]);
        let t = translate(&inp);
        FORCE_LINEAR.with(|f| f.set(true));
        let every_pair = translate(&inp);
        FORCE_LINEAR.with(|f| f.set(false));
        assert_eq!(t, every_pair, "round {round}");
    }
}

/// A small xorshift generator for the randomised tests.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap()
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }
}

/// The cache (parts kept while their context is the same, and parts
/// attached nowhere kept across context changes while their view is the
/// same) changes nothing but speed: through random changes of routes,
/// Gateways (of their listeners, or of their `resourceVersion` only),
/// a ListenerSet, policies and a Service, with a budget that refuses some
/// routes, a translation with the cache equals one from scratch (8 seeds ×
/// 60 steps).
#[test]
#[allow(clippy::too_many_lines)] // one world, then its random changes
fn a_translation_with_the_cache_equals_one_without_through_random_changes() {
    const HOSTS: [&str; 6] = ["a.example.com", "*.example.com", "b.example.com", "*.b.example.com", "", "c.other.org"];
    const ROUTE_HOSTS: [&str; 5] = ["'*.example.com'", "a.example.com", "x.b.example.com", "c.other.org", ""];
    const PARENTS: [&str; 5] = [
        "{name: ga, namespace: infra}",
        "{name: gb, namespace: infra}",
        "{name: ls, namespace: team, kind: ListenerSet}",
        "{name: ga, namespace: infra, sectionName: l1}",
        "{name: missing, namespace: infra}",
    ];
    let mut version = 1u32;
    let mut bump = || {
        version += 1;
        version
    };
    let mut carried = 0;
    for seed in 1..=8u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let listeners = |rng: &mut Rng, n: usize| -> String {
            let list: Vec<String> = (0..n)
                .map(|i| {
                    let h = rng.pick(&HOSTS);
                    let host = if h.is_empty() { String::new() } else { format!(", hostname: '{h}'") };
                    // Some listeners admit the namespaces labelled `tier: front` only.
                    let from = if rng.below(4) == 0 { "Selector, selector: {matchLabels: {tier: front}}" } else { "All" };
                    format!("{{name: l{i}, port: 80, protocol: HTTP{host}, allowedRoutes: {{namespaces: {{from: {from}}}}}}}")
                })
                .collect();
            format!("[{}]", list.join(", "))
        };
        let gateway = |rng: &mut Rng, uid: &str, v: u32, name: &str| {
            let n = 1 + rng.below(4);
            object(
                uid,
                v,
                GW,
                "Gateway",
                name,
                "infra",
                &format!(
                "spec:\n  gatewayClassName: realip\n  allowedListeners: {{namespaces: {{from: All}}}}\n  listeners: {}",
                listeners(rng, n)
            ),
            )
        };
        let listener_set = |rng: &mut Rng, v: u32| {
            let n = 1 + rng.below(3);
            object("ls", v, GW, "ListenerSet", "ls", "team", &format!(
                "spec:\n  parentRef: {{name: ga, namespace: infra, kind: Gateway, group: gateway.networking.k8s.io}}\n  listeners: {}",
                listeners(rng, n).replace("port: 80", "port: 8080")
            ))
        };
        let http_route = |rng: &mut Rng, k: usize, v: u32| {
            let parents: Vec<&str> = (0..=rng.below(3)).map(|_| rng.pick(&PARENTS)).collect();
            let host = rng.pick(&ROUTE_HOSTS);
            let hosts = if host.is_empty() { "[]".to_owned() } else { format!("[{host}]") };
            let m: Vec<String> = (0..=rng.below(3)).map(|j| format!("{{path: {{value: /m{j}}}}}")).collect();
            let ns = if k % 3 == 0 { "team" } else { "web" };
            object(&format!("r{k}"), v, GW, "HTTPRoute", &format!("r{k}"), ns, &format!(
                "spec:\n  parentRefs: [{}]\n  hostnames: {hosts}\n  rules: [{{name: main, matches: [{}], backendRefs: [{{name: app, namespace: web, port: 80}}]}}]",
                parents.join(", "),
                m.join(", ")
            ))
            .replace("2026-01-01T00:00:00Z", &format!("2026-01-01T00:00:{:02}Z", rng.below(60)))
        };
        let grant = |v: u32| {
            object("rg", v, "gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "team", "web",
                "spec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team}]\n  to: [{group: '', kind: Service}]")
        };
        let mut world: BTreeMap<String, String> = BTreeMap::new();
        let class =
            object("c", 1, GW, "GatewayClass", "realip", "", "spec: {controllerName: realip.dev/gateway-controller}");
        world.insert("class".into(), class);
        world.insert("app".into(), object("s1", 1, "v1", "Service", "app", "web", "spec: {ports: [{port: 80}]}"));
        world.insert("grant".into(), grant(1));
        for (key, uid) in [("ga", "ga"), ("gb", "gb"), ("gz", "gz")] {
            world.insert(key.into(), gateway(&mut rng, uid, 1, key));
        }
        world.insert("ls".into(), listener_set(&mut rng, 1));
        for k in 0..10 {
            world.insert(format!("r{k}"), http_route(&mut rng, k, 1));
        }
        let mut cache = RouteCache::default();
        let budget = Some(6);
        both(&world, budget, &mut cache);
        for step in 0..60 {
            match rng.below(11) {
                0 | 1 => {
                    let k = rng.below(12);
                    let v = bump();
                    world.insert(format!("r{k}"), http_route(&mut rng, k, v));
                }
                2 => {
                    world.remove(&format!("r{}", rng.below(12)));
                }
                3 => {
                    let key = rng.pick(&["ga", "gb", "gz"]);
                    let v = bump();
                    world.insert(key.into(), gateway(&mut rng, key, v, key));
                }
                4 => {
                    // Only the resourceVersion moves (a status write).
                    let key = rng.pick(&["ga", "gb", "gz", "ls"]);
                    if let Some(text) = world.get(key).cloned() {
                        let at = text.find("resourceVersion: '").unwrap() + "resourceVersion: '".len();
                        let end = at + text[at..].find('\'').unwrap();
                        let text = format!("{}{}{}", &text[..at], bump(), &text[end..]);
                        world.insert(key.into(), text);
                    }
                }
                5 => {
                    if world.remove("ls").is_none() || rng.below(2) == 0 {
                        let v = bump();
                        world.insert("ls".into(), listener_set(&mut rng, v));
                    }
                }
                6 => {
                    if world.remove("ippolicy").is_none() {
                        let p = ip_policy("p", "2026-01-01T00:00:00Z", "10.0.0.0/8").replace("name: gw}", "name: gb}");
                        let p =
                            p.replace("metadata: {", &format!("metadata: {{uid: ip, resourceVersion: '{}', ", bump()));
                        // (Its own document: the next key's object follows.)
                        world.insert("ippolicy".into(), p + "---\n");
                    }
                }
                7 => {
                    if world.remove("access").is_none() {
                        let target = format!("r{}", 1 + 3 * rng.below(3));
                        world.insert(
                            "access".into(),
                            object("ap", bump(), "realip.dev/v1alpha1", "ClientAccessPolicy", "ap", "web", &format!(
                                "spec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: {target}, sectionName: main}}]\n  allow: [198.51.100.0/24]"
                            )),
                        );
                    }
                }
                9 => {
                    // The grant that lets team's routes reach web's Service.
                    // Removed, or written again (a new resourceVersion).
                    if world.remove("grant").is_none() || rng.below(2) == 0 {
                        world.insert("grant".into(), grant(bump()));
                    }
                }
                10 => {
                    // A Namespace's labels (what `from: Selector` reads).
                    let ns = rng.pick(&["team", "web"]);
                    let labels = if rng.below(2) == 0 { "{tier: front}" } else { "{tier: back}" };
                    let v = bump();
                    world.insert(format!("ns-{ns}"), format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, uid: ns-{ns}, resourceVersion: '{v}', labels: {labels}}}\n---\n"));
                }
                _ => {
                    let port = 80 + rng.below(2);
                    let v = bump();
                    world.insert(
                        "app".into(),
                        object("s1", v, "v1", "Service", "app", "web", &format!("spec: {{ports: [{{port: {port}}}]}}")),
                    );
                }
            }
            let t = both(&world, budget, &mut cache);
            assert!(!t.statuses.is_empty(), "seed {seed} step {step}");
        }
        // (The steps did keep parts across context changes.)
        carried += cache.carried();
    }
    assert!(carried > 20, "{carried}");
}

/// Review 19 MED-3: a write to a Secret no listener names (a tenant's
/// token, a Helm release) or to a Namespace's annotations (its labels kept)
/// is no change of what routes depend on: no route is carried or built
/// again. A write to a Secret a listener names is one (the listener may
/// stop being programmed). Before the fix every Secret and Namespace write
/// rebuilt the context of every route.
#[test]
fn writes_routes_do_not_depend_on_leave_them_alone() {
    let pair = format!(
        "type: kubernetes.io/tls\ndata: {{tls.crt: {}, tls.key: {}}}",
        crate::tls::testdata::CRT_B64,
        crate::tls::testdata::KEY_B64
    );
    let mut world: BTreeMap<String, String> = BTreeMap::new();
    let class =
        object("c", 1, GW, "GatewayClass", "realip", "", "spec: {controllerName: realip.dev/gateway-controller}");
    world.insert("class".into(), class);
    world.insert("app".into(), object("s1", 1, "v1", "Service", "app", "web", "spec: {ports: [{port: 80}]}"));
    world.insert("ns".into(), object("n1", 1, "v1", "Namespace", "web", "", ""));
    world.insert(
        "g0".into(),
        gateway("g0", 1, "g0", 4, "g0.example.com").replace(
            "  listeners:\n",
            "  listeners:\n  - {name: s, port: 443, protocol: HTTPS, hostname: s.example.com, tls: {certificateRefs: [{name: cert}]}, allowedRoutes: {namespaces: {from: All}}}\n",
        ),
    );
    world.insert("cert".into(), object("sec1", 1, "v1", "Secret", "cert", "infra", &pair));
    world.insert("token".into(), object("sec2", 1, "v1", "Secret", "token", "web", &pair));
    for k in 0..20 {
        world.insert(format!("r{k:02}"), http_route(&format!("r{k}"), 1, &format!("r{k:02}"), 1, &["g0"], 1));
    }
    let mut cache = RouteCache::default();
    let t = both(&world, None, &mut cache);
    assert!(t.routes.routes.iter().any(|r| r.listeners.iter().any(|l| l == "gateway/infra/g0/s")), "served on s");
    let work = |c: &RouteCache| (c.built(), c.carried(), c.translated());
    let before = work(&cache);
    world.insert("token".into(), object("sec2", 2, "v1", "Secret", "token", "web", &pair));
    both(&world, None, &mut cache);
    assert_eq!(work(&cache), before, "a Secret no listener names");
    world.insert("ns".into(), object("n1", 2, "v1", "Namespace", "web", "", ""));
    both(&world, None, &mut cache);
    assert_eq!(work(&cache), before, "a Namespace written with the same labels");
    world.insert("cert".into(), object("sec1", 2, "v1", "Secret", "cert", "infra", &pair));
    both(&world, None, &mut cache);
    assert_ne!(work(&cache), before, "the listener's Secret");
}

/// Review 20 HIGH-1: a Gateway whose 8 listeners name one Secret 8 times
/// each loads its pair once, not 64 times per translation; translating
/// again (nothing changed, or a route edited) loads nothing; a new
/// version of the Secret is loaded once more. The same for an Ingress
/// naming one Secret in many `tls` entries, and a bad Secret is one
/// warning, not one per entry. Before the fix every reference was a key
/// load with ring on every translation (seconds for CRD-valid objects).
#[test]
fn a_secret_named_many_times_is_loaded_once_per_version() {
    use crate::tls::LOADS;
    use k8s_openapi::api::core::v1::{Secret, Service};
    use k8s_openapi::api::networking::v1::Ingress;
    const NO_SLICES: &[k8s_openapi::api::discovery::v1::EndpointSlice] = &[];
    let loads = || LOADS.with(std::cell::Cell::get);
    let pair = format!(
        "type: kubernetes.io/tls\ndata: {{tls.crt: {}, tls.key: {}}}",
        crate::tls::testdata::CRT_B64,
        crate::tls::testdata::KEY_B64
    );
    let refs = ["{name: big}"; 8].join(", ");
    let listeners: Vec<String> = (0..8)
        .map(|i| format!("  - {{name: l{i}, port: 443, protocol: HTTPS, hostname: h{i}.example.com, tls: {{certificateRefs: [{refs}]}}}}"))
        .collect();
    let mut world: BTreeMap<String, String> = BTreeMap::new();
    world.insert(
        "class".into(),
        object("c", 1, GW, "GatewayClass", "realip", "", "spec: {controllerName: realip.dev/gateway-controller}"),
    );
    world.insert(
        "gw".into(),
        object(
            "g",
            1,
            GW,
            "Gateway",
            "g",
            "tenant",
            &format!("spec:\n  gatewayClassName: realip\n  listeners:\n{}", listeners.join("\n")),
        ),
    );
    world.insert("secret".into(), object("s", 1, "v1", "Secret", "big", "tenant", &pair));
    let translate_world = |world: &BTreeMap<String, String>, cache: &mut RouteCache| {
        let mut o = Objects::default();
        o.add_yaml(&world.values().cloned().collect::<String>()).unwrap();
        translate_with(&o.inputs("realip", &["198.51.100.1".to_owned()]), cache)
    };
    let mut cache = RouteCache::default();
    let start = loads();
    let t = translate_world(&world, &mut cache);
    assert_eq!(t.routes.listeners.iter().filter(|l| l.name.starts_with("gateway/tenant/g/")).count(), 8);
    assert_eq!(loads() - start, 1, "one load for 64 references");
    translate_world(&world, &mut cache);
    assert_eq!(loads() - start, 1, "nothing loaded again");
    world.insert("secret".into(), object("s", 2, "v1", "Secret", "big", "tenant", &pair));
    translate_world(&world, &mut cache);
    assert_eq!(loads() - start, 2, "the new version, once");

    // An Ingress naming one Secret in 50 `tls` entries.
    let tls: Vec<serde_json::Value> = (0..50).map(|_| serde_json::json!({"secretName": "site"})).collect();
    let ing: Ingress = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "many", "namespace": "web", "uid": "i1", "resourceVersion": "1"},
        "spec": {"ingressClassName": "realip", "tls": tls, "rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}))
    .unwrap();
    let svc: Service = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "app", "namespace": "web"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .unwrap();
    let secret = |rv: &str, crt: &str| -> Secret {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "site", "namespace": "web", "uid": "s9", "resourceVersion": rv},
            "type": "kubernetes.io/tls", "data": {"tls.crt": crt, "tls.key": crate::tls::testdata::KEY_B64}}),
        )
        .unwrap()
    };
    let start = loads();
    let good = secret("1", crate::tls::testdata::CRT_B64);
    let d = crate::ingress::desired(
        "realip",
        None,
        std::slice::from_ref(&ing),
        std::slice::from_ref(&svc),
        NO_SLICES,
        &[good],
    );
    assert_eq!((d.certs.len(), loads() - start), (1, 1));
    let bad = secret("2", "Q0VSVA==");
    let d = crate::ingress::desired(
        "realip",
        None,
        std::slice::from_ref(&ing),
        std::slice::from_ref(&svc),
        NO_SLICES,
        std::slice::from_ref(&bad),
    );
    let d2 = crate::ingress::desired("realip", None, std::slice::from_ref(&ing), &[svc], NO_SLICES, &[bad]);
    assert_eq!((d.certs.len(), d.warnings.len(), d2.warnings.len(), loads() - start), (0, 1, 1, 2));
}

/// Review 20 HIGH-1: ReferenceGrants are looked up in an index built once
/// per translation (a debug build translated the reviewer's 1,000 grants of
/// 16 × 16 entries and 64 routes of 256 cross-namespace backendRefs in
/// 0.26 s, 7.2 s before). What the index allows is what the grants say:
/// a named `to` allows that name, a `to` without a name every name (also
/// beside named ones), only `from` entries of the Gateway API group count,
/// and kind, namespaces and group must all match.
#[test]
fn the_grant_index_allows_what_the_grants_say() {
    let grants = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: a, namespace: svc}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: web}, {group: other.example, kind: HTTPRoute, namespace: evil}]\n  to: [{group: '', kind: Service, name: one}]\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: b, namespace: svc}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: infra}]\n  to: [{group: '', kind: Secret, name: cert}, {group: '', kind: Secret}]\n";
    let mut o = Objects::default();
    o.add_yaml(grants).unwrap();
    let inp = o.inputs("realip", &[]);
    let rows: [(&str, &str, &str, &str, &str, &str, bool); 9] = [
        ("HTTPRoute", "web", "", "Service", "svc", "one", true),
        ("HTTPRoute", "web", "", "Service", "svc", "two", false),
        ("HTTPRoute", "evil", "", "Service", "svc", "one", false), // from group not the Gateway API's
        ("HTTPRoute", "web", "", "Service", "other", "one", false), // grant in another namespace
        ("Gateway", "web", "", "Service", "svc", "one", false),
        ("HTTPRoute", "web", "x", "Service", "svc", "one", false),
        ("Gateway", "infra", "", "Secret", "svc", "cert", true),
        ("Gateway", "infra", "", "Secret", "svc", "anything", true), // the nameless `to`
        ("Gateway", "infra", "", "Service", "svc", "one", false),
    ];
    for (from_kind, from_ns, group, kind, ns, name, want) in rows {
        assert_eq!(
            inp.granted(from_kind, from_ns, group, kind, ns, name),
            want,
            "{from_kind} {from_ns} → {kind} {ns}/{name}"
        );
    }
}

/// Issue 13 scale: a change of the context translates again only the
/// routes that read what changed. 40 routes on Gateway g0, four of them
/// (namespace `team`) sending to Service web/app under a ReferenceGrant:
/// an edit of g0's ClientIPPolicy (its trusted proxies: the listeners stay
/// as they were) and a ReferenceGrant in a namespace no route sends to
/// translate none; removing the grant the four use translates those four
/// (and refuses their backend, as a translation from scratch does).
#[test]
fn a_policy_or_grant_change_translates_only_the_routes_that_read_it() {
    const ROUTES: usize = 40;
    let mut world: BTreeMap<String, String> = BTreeMap::new();
    world.insert(
        "class".into(),
        object("c", 1, GW, "GatewayClass", "realip", "", "spec: {controllerName: realip.dev/gateway-controller}"),
    );
    world.insert("app".into(), object("s1", 1, "v1", "Service", "app", "web", "spec: {ports: [{port: 80}]}"));
    world.insert("g0".into(), gateway("g0", 1, "g0", 4, "example.com"));
    for k in 0..ROUTES {
        let ns = if k % 10 == 0 { "team" } else { "web" };
        let route = http_route(&format!("r{k}"), 1, &format!("r{k:02}"), 1, &["g0"], 1)
            .replace("namespace: web", &format!("namespace: {ns}"))
            .replace("{name: app, port: 80}", "{name: app, namespace: web, port: 80}");
        world.insert(format!("r{k:02}"), route);
    }
    let grant = |uid: &str, ns: &str| {
        object(uid, 1, "gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "g", ns,
            "spec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team}]\n  to: [{group: '', kind: Service}]")
    };
    world.insert("grant".into(), grant("rg", "web"));
    let policy = |version: u32, trusted: &str| {
        ip_policy("p", "2026-01-01T00:00:00Z", trusted)
            .replace("name: gw}", "name: g0}")
            .replace("metadata: {", &format!("metadata: {{uid: ip, resourceVersion: '{version}', "))
            + "---\n"
    };
    world.insert("policy".into(), policy(1, "192.0.2.0/24"));
    let mut cache = RouteCache::default();
    let t = both(&world, None, &mut cache);
    assert_eq!(t.routes.routes.len(), ROUTES * 4, "every route on g0's 4 listeners");
    let mut seen = cache.translated();
    let mut translated = |cache: &RouteCache| {
        let n = cache.translated() - seen;
        seen = cache.translated();
        n
    };
    world.insert("policy".into(), policy(2, "198.51.100.0/24"));
    let t = both(&world, None, &mut cache);
    assert_eq!(t.routes.listeners[0].client_ip.as_ref().unwrap().trusted, ["198.51.100.0/24"]);
    assert_eq!(translated(&cache), 0, "a ClientIPPolicy edit");
    world.insert("other-grant".into(), grant("rg2", "elsewhere"));
    both(&world, None, &mut cache);
    assert_eq!(translated(&cache), 0, "a ReferenceGrant no route reads");
    world.remove("grant");
    let t = both(&world, None, &mut cache);
    assert_eq!(translated(&cache), ROUTES / 10, "the grant the team routes read");
    let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("team"), "r00").status else { panic!() };
    assert_eq!(parents[0].conditions[1].reason, "RefNotPermitted", "{parents:?}");
}
