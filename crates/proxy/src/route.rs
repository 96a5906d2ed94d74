//! Routing: host (exact, `*.` wildcard, or any) then longest path prefix.
//!
//! Among the routes whose host and prefix both match, the most specific
//! wins: an exact host beats a wildcard (longer suffixes first), which
//! beats a route without a host; then the longest prefix. Prefixes match
//! as plain string prefixes, like nginx `location /prefix`.
//!
//! Routes with an exact host are indexed by it, so a request looks only at
//! the routes of its own host plus the wildcard and host-less ones: with
//! 10,000 Ingress or HTTPRoute hosts, routing costs what it costs with a
//! handful (see `benches/scale.rs`). The index keeps declaration order
//! inside each bucket, so ties are broken exactly as a scan of every route
//! would break them.
//!
//! Gateway header and query conditions are numbered once per route set
//! ([`Conditions`]): a request's headers and query parameters are looked
//! up once each, and a candidate route's conditions are then comparisons
//! of numbers. Invariant: per request, no route condition's name or value
//! is hashed or compared as text, so the work a request costs does not
//! grow with the length of the names and values tenants write (review 27
//! HIGH: 8,192 host-less routes of 16 header conditions with 256-byte
//! names cost 74–84 ms per request when each condition parsed and hashed
//! its name). Likewise the hosts a route leaves to more specific
//! listeners ([`Exclusion`]): each distinct list is a set, tested once per
//! request.

use std::sync::Arc;

use crate::policy::Policy;
use crate::upstream::Pool;

/// How a route matches the Host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostMatch {
    /// Any host.
    Any,
    /// `*.example.com`: stored as `.example.com`.
    Suffix(String),
    /// `app.example.com`.
    Exact(String),
}

impl HostMatch {
    /// From the config value (lower-cased).
    pub fn new(host: Option<&str>) -> HostMatch {
        match host.map(|h| h.trim_end_matches('.').to_ascii_lowercase()) {
            None => HostMatch::Any,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => HostMatch::Suffix(suffix.to_owned()),
                None => HostMatch::Exact(h),
            },
        }
    }

    /// Specificity when `host` matches, `None` when it does not.
    /// Whether this matches one host exactly (not a wildcard, not any).
    fn is_exact(&self) -> bool {
        matches!(self, HostMatch::Exact(_))
    }

    fn rank(&self, host: &str) -> Option<usize> {
        match self {
            HostMatch::Any => Some(0),
            HostMatch::Suffix(s) => (host.len() > s.len() && host.ends_with(s.as_str())).then_some(1 + s.len()),
            HostMatch::Exact(h) => (h == host).then_some(usize::MAX),
        }
    }
}

/// One compiled route.
#[derive(Clone, Debug)]
pub struct Route {
    /// Name for logs and metrics: `name`, else host and prefix.
    pub name: std::sync::Arc<str>,
    /// Host match.
    pub host: HostMatch,
    /// Path prefix.
    pub prefix: String,
    /// Where requests go.
    pub upstream: Arc<Pool>,
    /// Allow/deny and rate limit for this route.
    pub policy: Arc<Policy>,
    /// Largest request body.
    pub max_body_bytes: u64,
    /// Redirect plain HTTP to https.
    pub https_redirect: bool,
    /// Gateway API route: listeners, path kind and precedence.
    pub gateway: Option<crate::config::GatewayMatch>,
    /// Gateway API weighted backends; `None`: `upstream` serves every
    /// request.
    pub backends: Option<crate::gateway::Weighted>,
    /// Gateway API filters (empty for file and Ingress routes).
    pub filters: Arc<crate::gateway::Filters>,
    /// Gateway API: file listener name → the Gateway listener port
    /// clients reached (a redirect's default port).
    pub listener_ports: Vec<(String, u16)>,
    /// File and Ingress routes: the file listeners it is served on (empty:
    /// every one); see `RouteConfig::only_listeners`.
    pub only_listeners: Vec<String>,
    /// Counters, resolved once ([`crate::metrics::Metrics::bind`]).
    pub metrics: std::sync::OnceLock<Arc<crate::metrics::RouteMetrics>>,
}

impl Route {
    /// The Gateway listener port a request on file listener `listener`
    /// reached, if this route knows it.
    pub fn listener_port(&self, listener: &str) -> Option<u16> {
        self.listener_ports.iter().find(|(l, _)| l == listener).map(|(_, p)| *p)
    }

    /// The pool for the next request: `None` when the weighted choice
    /// fell on a backend that did not resolve (answered 500).
    pub fn pick_pool(&self) -> Option<&Arc<Pool>> {
        match &self.backends {
            Some(w) => w.pick(),
            None => Some(&self.upstream),
        }
    }
}

/// All routes, indexed by exact host. Routes and index are shared (`Arc`)
/// with the snapshot an endpoint change derives this one from
/// ([`Routes::replacing`]), so that change copies no route it does not
/// touch.
#[derive(Debug, Default)]
pub struct Routes {
    list: Vec<Arc<Route>>,
    /// Routes with an exact host: by the host's hash, a range of
    /// `exact_at` holding their positions, ascending. Hosts whose hashes
    /// collide share a range; the routes' own host match tells them apart
    /// (every look-up checks it). No host is
    /// copied: a reload of 10,000 routes indexes them without allocating
    /// per route.
    exact: Arc<foldhash::HashMap<u64, (u32, u32)>>,
    exact_at: Arc<Vec<usize>>,
    /// Positions of wildcard and host-less Gateway routes, ascending.
    other: Arc<Vec<usize>>,
    /// Positions of wildcard and host-less file and Ingress routes,
    /// ascending (apart, so that neither kind's look-up walks the other's:
    /// review 28 F3).
    plain_other: Arc<Vec<usize>>,
    /// The Gateway routes' header and query conditions, numbered.
    conditions: Arc<Conditions>,
}

/// A number for each distinct (name, value) header condition and for each
/// distinct (name, value) query condition of a route set, and each route's
/// conditions as those numbers.
#[derive(Debug, Default)]
struct Conditions {
    /// Header name (lower case) → value → number.
    headers: foldhash::HashMap<Box<str>, ValueIds<Box<[u8]>>>,
    /// Query parameter name → (the name's number, value → number).
    query: foldhash::HashMap<Box<str>, (u32, ValueIds<Box<str>>)>,
    /// By route position: its header conditions' numbers, then its query
    /// conditions' (empty for routes without), and its hosts left out.
    of: Vec<(Ids, Ids, Option<u32>)>,
    /// The distinct lists of hosts left out (`GatewayMatch::except_hosts`,
    /// one per listener and host, shared by its routes), by number.
    excepts: Vec<Exclusion>,
}

/// The numbers of a list of conditions, `number` giving each its own;
/// a list shared by several routes (one `Arc`) is numbered once.
fn numbered(
    list: &Arc<[realip_kube::routes::ValueMatch]>,
    empty: &Ids,
    seen: &mut foldhash::HashMap<usize, Ids>,
    mut number: impl FnMut(&realip_kube::routes::ValueMatch) -> u32,
) -> Ids {
    if list.is_empty() {
        return Arc::clone(empty);
    }
    let ids = seen.entry(Arc::as_ptr(list).addr()).or_insert_with(|| list.iter().map(&mut number).collect());
    Arc::clone(ids)
}

/// A list of hosts left out, as sets: a request's host is then tested
/// against it once, with a look-up per label, however long the list
/// (review 28 F1: a host-less listener's routes each scanned every
/// sibling hostname, so 16,384 routes × 256 ListenerSet hostnames cost
/// 75 ms per request for an unknown host).
#[derive(Debug, Default)]
struct Exclusion {
    /// Exact hosts.
    exact: foldhash::HashSet<Box<str>>,
    /// Wildcards' suffixes from their first `.` (`*.a.example` → `.a.example`).
    dotted: foldhash::HashSet<Box<str>>,
    /// Other wildcards' suffixes (after `*`), tested one by one.
    other: Vec<Box<str>>,
}

impl Exclusion {
    fn new(hosts: &[String]) -> Exclusion {
        let mut x = Exclusion::default();
        for h in hosts {
            match h.strip_prefix('*') {
                Some(suffix) if suffix.starts_with('.') => x.dotted.insert(suffix.into()),
                Some(suffix) => {
                    x.other.push(suffix.into());
                    true
                }
                None => x.exact.insert(h.as_str().into()),
            };
        }
        x
    }

    /// `GatewayMatch::excludes`: `host` is listed, or ends in a wildcard's
    /// suffix with something before it.
    fn excludes(&self, host: &str) -> bool {
        #[cfg(test)]
        EXCLUSIONS.with(|n| n.set(n.get() + 1));
        self.exact.contains(host)
            || host.match_indices('.').any(|(i, _)| i > 0 && self.dotted.contains(&host[i..]))
            || self.other.iter().any(|s| host.len() > s.len() && host.ends_with(&**s))
    }
}

/// Condition numbers, shared by the routes of one rule.
type Ids = Arc<[u32]>;
/// A condition value → its number.
type ValueIds<V> = foldhash::HashMap<V, u32>;

#[cfg(test)]
thread_local! {
    /// Header and query look-ups [`Conditions`] made on this thread.
    static LOOKUPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Hosts tested against an [`Exclusion`] on this thread.
    static EXCLUSIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Conditions {
    /// Numbers the conditions of `routes`. Routes sharing their
    /// conditions (one HTTPRoute rule's, one `Arc`) are numbered once.
    fn new(routes: &[Arc<Route>]) -> Conditions {
        let mut c = Conditions::default();
        let empty: Arc<[u32]> = Arc::from([]);
        let mut next = 0u32;
        let number = |next: &mut u32| {
            let n = *next;
            *next = next.saturating_add(1);
            n
        };
        // Shared lists by address: their numbers, computed once.
        let mut seen: foldhash::HashMap<usize, Arc<[u32]>> = foldhash::HashMap::default();
        let mut except_seen: foldhash::HashMap<usize, u32> = foldhash::HashMap::default();
        let mut by_content: foldhash::HashMap<&[String], u32> = foldhash::HashMap::default();
        let mut names = 0u32;
        for r in routes {
            let Some(g) = &r.gateway else {
                c.of.push((Arc::clone(&empty), Arc::clone(&empty), None));
                continue;
            };
            // Lists equal in content (one per HTTPRoute) are one exclusion.
            let except = (!g.except_hosts.is_empty()).then(|| {
                *except_seen.entry(Arc::as_ptr(&g.except_hosts).addr()).or_insert_with(|| {
                    *by_content.entry(&g.except_hosts[..]).or_insert_with(|| {
                        c.excepts.push(Exclusion::new(&g.except_hosts));
                        u32::try_from(c.excepts.len() - 1).unwrap_or(u32::MAX)
                    })
                })
            });
            let headers = numbered(&g.headers, &empty, &mut seen, |m| {
                let values = c.headers.entry(m.name.to_ascii_lowercase().into()).or_default();
                *values.entry(m.value.as_bytes().into()).or_insert_with(|| number(&mut next))
            });
            let query = numbered(&g.query, &empty, &mut seen, |m| {
                let (_, values) = c.query.entry(m.name.as_str().into()).or_insert_with(|| {
                    names += 1;
                    (names, foldhash::HashMap::default())
                });
                *values.entry(m.value.as_str().into()).or_insert_with(|| number(&mut next))
            });
            c.of.push((headers, query, except));
        }
        c
    }

    /// The numbers of the header conditions `headers` meet, sorted: each
    /// request header looked up once (a repeated header meets a condition
    /// when any of its values does).
    fn met_headers(&self, headers: &http::HeaderMap) -> Vec<u32> {
        let mut met: Vec<u32> = headers
            .iter()
            .filter_map(|(name, value)| {
                #[cfg(test)]
                LOOKUPS.with(|n| n.set(n.get() + 1));
                self.headers.get(name.as_str())?.get(value.as_bytes()).copied()
            })
            .collect();
        met.sort_unstable();
        met
    }

    /// The numbers of the query conditions `query` (after `?`) meets,
    /// sorted: each parameter looked up once, only the first occurrence of
    /// a name counting (as the Gateway API allows).
    fn met_query(&self, query: Option<&str>) -> Vec<u32> {
        let mut names = foldhash::HashSet::default();
        let mut met: Vec<u32> = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                #[cfg(test)]
                LOOKUPS.with(|n| n.set(n.get() + 1));
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let (name, values) = self.query.get(k)?;
                names.insert(*name).then(|| values.get(v).copied()).flatten()
            })
            .collect();
        met.sort_unstable();
        met
    }
}

/// A request's met conditions ([`Conditions`]), computed the first time a
/// candidate route has conditions of that kind.
#[derive(Default)]
struct Met {
    headers: std::cell::OnceCell<Vec<u32>>,
    query: std::cell::OnceCell<Vec<u32>>,
    /// By [`Exclusion`] number: not tested yet (0), the host not left out (1), left out (2).
    excluded: std::cell::OnceCell<Vec<std::cell::Cell<u8>>>,
}

impl Met {
    /// Whether the route at `position` leaves `host` out (each distinct
    /// list tested once per request).
    fn excludes(&self, conditions: &Conditions, position: usize, host: &str) -> bool {
        let Some(&(_, _, Some(n))) = conditions.of.get(position) else { return false };
        let cells = self.excluded.get_or_init(|| vec![std::cell::Cell::new(0); conditions.excepts.len()]);
        let (Some(cell), Some(list)) = (cells.get(n as usize), conditions.excepts.get(n as usize)) else {
            return false;
        };
        if cell.get() == 0 {
            cell.set(if list.excludes(host) { 2 } else { 1 });
        }
        cell.get() == 2
    }

    /// Whether the route at `position` meets its header and query conditions.
    fn holds(&self, conditions: &Conditions, position: usize, req: &Request<'_>) -> bool {
        let Some((headers, query, _)) = conditions.of.get(position) else { return false };
        let all = |ids: &[u32], met: &[u32]| ids.iter().all(|id| met.binary_search(id).is_ok());
        (headers.is_empty() || all(headers, self.headers.get_or_init(|| conditions.met_headers(req.headers))))
            && (query.is_empty() || all(query, self.query.get_or_init(|| conditions.met_query(req.query))))
    }
}

/// What of a request, beyond host and path, a Gateway route may match.
#[derive(Debug)]
pub struct Request<'a> {
    /// Method.
    pub method: &'a http::Method,
    /// Headers.
    pub headers: &'a http::HeaderMap,
    /// Query string (after `?`), if any.
    pub query: Option<&'a str>,
}

static NO_HEADERS: std::sync::LazyLock<http::HeaderMap> = std::sync::LazyLock::new(http::HeaderMap::new);

impl Default for Request<'_> {
    fn default() -> Self {
        Request { method: &http::Method::GET, headers: &NO_HEADERS, query: None }
    }
}

/// The hash [`Routes`] indexes exact hosts by (seeded once per process).
fn host_hash(host: &str) -> u64 {
    static STATE: std::sync::LazyLock<foldhash::fast::RandomState> =
        std::sync::LazyLock::new(foldhash::fast::RandomState::default);
    std::hash::BuildHasher::hash_one(&*STATE, host)
}

impl Routes {
    /// Indexes `routes` (kept in this order).
    pub fn new(routes: Vec<Route>) -> Routes {
        Routes::from_shared(routes.into_iter().map(Arc::new).collect())
    }

    /// Indexes `routes` (kept in this order), some of them shared with
    /// another snapshot.
    pub fn from_shared(routes: Vec<Arc<Route>>) -> Routes {
        let mut by_hash: Vec<(u64, usize)> = Vec::new();
        let (mut other, mut plain_other) = (Vec::new(), Vec::new());
        for (i, r) in routes.iter().enumerate() {
            match &r.host {
                HostMatch::Exact(h) => by_hash.push((host_hash(h), i)),
                HostMatch::Suffix(_) | HostMatch::Any if r.gateway.is_some() => other.push(i),
                HostMatch::Suffix(_) | HostMatch::Any => plain_other.push(i),
            }
        }
        by_hash.sort_unstable();
        let mut exact = foldhash::HashMap::default();
        let mut start = 0;
        for group in by_hash.chunk_by(|a, b| a.0 == b.0) {
            // At most `u32::MAX` routes are indexed (a configuration is far smaller).
            let len = u32::try_from(group.len()).unwrap_or(u32::MAX);
            exact.insert(group[0].0, (u32::try_from(start).unwrap_or(u32::MAX), len));
            start += group.len();
        }
        let exact_at = by_hash.into_iter().map(|(_, i)| i).collect();
        let conditions = Arc::new(Conditions::new(&routes));
        Routes {
            list: routes,
            exact: Arc::new(exact),
            exact_at: Arc::new(exact_at),
            other: Arc::new(other),
            plain_other: Arc::new(plain_other),
            conditions,
        }
    }

    /// These routes, each one `swap` gives a replacement for replaced by
    /// it, the others and the index shared. A replacement keeps the host
    /// of the route it replaces (the index stays right): it changes what
    /// the route leads to, not what it matches (its conditions too).
    pub(crate) fn replacing(&self, mut swap: impl FnMut(&Route) -> Option<Route>) -> Routes {
        let list = self
            .list
            .iter()
            .map(|r| match swap(r) {
                Some(new) => {
                    debug_assert_eq!(new.host, r.host, "a replacement keeps its host");
                    debug_assert_eq!(new.gateway, r.gateway, "a replacement keeps its conditions");
                    Arc::new(new)
                }
                None => Arc::clone(r),
            })
            .collect();
        Routes {
            list,
            exact: Arc::clone(&self.exact),
            exact_at: Arc::clone(&self.exact_at),
            other: Arc::clone(&self.other),
            plain_other: Arc::clone(&self.plain_other),
            conditions: Arc::clone(&self.conditions),
        }
    }

    /// Every route, in declaration order.
    pub fn all(&self) -> &[Arc<Route>] {
        &self.list
    }

    /// The positions of the routes naming `host` exactly, and of the
    /// wildcard and host-less Gateway ones, each in ascending order.
    fn groups(&self, host: &str) -> (&[usize], &[usize]) {
        let exact = self.exact.get(&host_hash(host)).map_or(&[][..], |&(start, len)| {
            let (start, len) = (start as usize, len as usize);
            self.exact_at.get(start..start + len).unwrap_or_default()
        });
        (exact, &self.other)
    }

    /// The route for a request on `listener` for `host` and `path`, both
    /// already normalized by [`crate::target`] (lower case, no port, no
    /// trailing dot). Gateway API routes attached to the listener come
    /// first, in the route set's precedence order (the Gateway API's);
    /// then the most specific file or Ingress route. Exception: a file or
    /// Ingress route naming the host exactly beats a Gateway route that
    /// matches it only by wildcard or no host.
    pub fn find(&self, listener: &str, host: &str, path: &str) -> Option<&Route> {
        self.find_request(listener, host, path, &Request::default())
    }

    /// [`Routes::find`] for a request with this method, headers and query
    /// string, which Gateway routes may also match on. Among Gateway
    /// routes the first declared serves: the route set lists them in the
    /// Gateway API's precedence order, and a route's rank is its position
    /// (not a number stored in it, so a route compiled once stays valid
    /// when others are added before it).
    pub fn find_request(&self, listener: &str, host: &str, path: &str, req: &Request<'_>) -> Option<&Route> {
        // Headers and query looked up on the first route with such conditions, once.
        let met = Met::default();
        let serves = |&position: &usize| {
            let r: &Route = self.list.get(position)?;
            let g = r.gateway.as_ref()?;
            let on = g.listeners.iter().any(|l| l == listener)
                && r.host.rank(host).is_some()
                && g.path_matches(&r.prefix, path)
                && g.method_matches(req.method)
                && !met.excludes(&self.conditions, position, host)
                && !g.excepted_on.iter().any(|(l, h)| l == listener && h == host)
                && met.holds(&self.conditions, position, req);
            on.then_some((position, r))
        };
        // Each group is in ascending position, so its first match is its
        // best: the host's own routes are looked at first, and the wildcard
        // and host-less ones only before that match's position (Gateway API
        // precedence ranks the host first, so usually not at all): a
        // tenant's many host-less routes cost nothing to a host whose own
        // route serves (review 25 HIGH-1).
        let (exact, others) = self.groups(host);
        let other = exact
            .iter()
            .chain(self.plain_other.iter())
            .filter_map(|&i| self.list.get(i))
            .filter(|r| {
                r.gateway.is_none()
                    && path.starts_with(r.prefix.as_str())
                    && (r.only_listeners.is_empty() || r.only_listeners.iter().any(|l| l == listener))
            })
            .filter_map(|r| r.host.rank(host).map(|rank| ((rank, r.prefix.len()), &**r)))
            .max_by_key(|(key, _)| *key)
            .map(|(_, r)| r);
        let own = exact.iter().find_map(serves);
        // A file or Ingress route naming the host exactly beats every
        // wildcard and host-less Gateway route (below): those are then not
        // walked at all.
        if own.is_none() && other.is_some_and(|o| o.host.is_exact()) {
            return other;
        }
        let before = own.map_or(usize::MAX, |(position, _)| position);
        let wider = others.iter().take_while(|&&i| i < before).find_map(serves);
        let gateway = wider.or(own).map(|(_, r)| r);
        match (gateway, other) {
            // An exact host beats a wildcard or missing one whatever the
            // route's kind: a host-less HTTPRoute (possibly another
            // namespace's) must not take over a host an Ingress or the
            // file names exactly on a shared bind.
            (Some(g), Some(o)) if o.host.is_exact() && !g.host.is_exact() => Some(o),
            (Some(g), _) => Some(g),
            (None, o) => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::Pool;

    /// A Gateway match on `listener` with no conditions: tests set what they need.
    fn gw_match(listener: &str) -> crate::config::GatewayMatch {
        crate::config::GatewayMatch {
            listeners: vec![listener.into()],
            exact: false,
            method: None,
            headers: Arc::default(),
            query: Arc::default(),
            except_hosts: Arc::default(),
            excepted_on: vec![],
        }
    }

    fn route(name: &str, host: Option<&str>, prefix: &str) -> Route {
        Route {
            name: name.into(),
            host: HostMatch::new(host),
            prefix: prefix.into(),
            upstream: Arc::new(Pool::for_tests(name)),
            policy: Arc::new(Policy::open()),
            max_body_bytes: 0,
            https_redirect: false,
            metrics: std::sync::OnceLock::new(),
            gateway: None,
            backends: None,
            filters: Arc::default(),
            listener_ports: vec![],
            only_listeners: vec![],
        }
    }

    #[test]
    fn most_specific_route_wins() {
        let routes = Routes::new(vec![
            route("any", None, "/"),
            route("any-api", None, "/api"),
            route("wild", Some("*.example.com"), "/"),
            route("exact", Some("app.example.com"), "/"),
            route("exact-static", Some("app.example.com"), "/static/"),
        ]);
        let table = [
            ("app.example.com", "/x", "exact"),
            ("app.example.com", "/static/a.css", "exact-static"),
            ("api.example.com", "/api/v1", "wild"),
            ("example.com", "/", "any"),
            ("other.test", "/api/v1", "any-api"),
            ("2001:db8::1", "/", "any"),
        ];
        for (host, path, want) in table {
            assert_eq!(routes.find("web", host, path).map(|r| &*r.name), Some(want), "{host}{path}");
        }
        let only = Routes::new(vec![route("exact", Some("app.example.com"), "/api")]);
        assert!(only.find("web", "app.example.com", "/").is_none());
        assert!(only.find("web", "evil.com", "/api").is_none());
    }

    /// Gateway routes: only on their listeners, whole segments for
    /// `PathPrefix`, `Exact` exactly, the set's precedence order first,
    /// before any file route.
    #[test]
    fn gateway_routes_follow_listener_segments_and_set_order() {
        let gw = |name: &str, host: Option<&str>, path: &str, exact: bool| {
            let mut r = route(name, host, path);
            r.gateway = Some(crate::config::GatewayMatch { exact, ..gw_match("gw") });
            r
        };
        // Gateway routes in precedence order (as the route set lists them).
        let routes = Routes::new(vec![
            route("file", None, "/"),
            gw("host-foo", Some("app.example.com"), "/foo/", false),
            gw("exact-foo", None, "/foo", true),
            gw("prefix-foo", None, "/foo", false),
            gw("root", None, "/", false),
        ]);
        let table = [
            ("gw", "x.test", "/foo", "exact-foo"),
            ("gw", "x.test", "/foo/bar", "prefix-foo"),
            ("gw", "x.test", "/foobar", "root"),
            ("gw", "app.example.com", "/foo", "host-foo"),
            ("gw", "app.example.com", "/foo/x", "host-foo"),
            ("web", "x.test", "/foo", "file"),
        ];
        for (listener, host, path, want) in table {
            assert_eq!(routes.find(listener, host, path).map(|r| &*r.name), Some(want), "{listener} {host}{path}");
        }
        let only = Routes::new(vec![gw("exact-foo", None, "/foo", true)]);
        assert!(only.find("gw", "x.test", "/foo/").is_none());
        assert!(only.find("web", "x.test", "/foo").is_none());
    }

    /// Listener isolation: a Gateway route does not serve the hosts a more
    /// specific listener on its port owns (`except_hosts`), even where no
    /// route of that listener matches the path.
    #[test]
    fn a_gateway_route_leaves_out_the_hosts_of_more_specific_listeners() {
        let gw = |name: &str, host: &str, prefix: &str, except: &[&str]| {
            let mut r = route(name, Some(host), prefix);
            r.gateway = Some(crate::config::GatewayMatch {
                except_hosts: except.iter().map(|&e| e.to_owned()).collect(),
                ..gw_match("gw")
            });
            r
        };
        let routes = Routes::new(vec![
            gw("ra", "a.example.com", "/app", &[]),
            gw("rw", "*.example.com", "/admin", &["a.example.com", "*.b.example.com"]),
        ]);
        let find = |host: &str, path: &str| routes.find("gw", host, path).map(|r| r.name.to_string());
        assert_eq!(find("a.example.com", "/app"), Some("ra".into()));
        assert_eq!(find("a.example.com", "/admin"), None);
        assert_eq!(find("x.b.example.com", "/admin"), None);
        assert_eq!(find("c.example.com", "/admin"), Some("rw".into()));
        assert_eq!(find("b.example.com", "/admin"), Some("rw".into()), "*.b.example.com is not b.example.com");
    }

    /// A file or Ingress route naming the host exactly beats a host-less
    /// or wildcard Gateway route on the same listener; other hosts, and
    /// a Gateway route naming the host exactly, still go to the Gateway.
    #[test]
    fn exact_host_beats_hostless_gateway_route() {
        let gw = |name: &str, host: Option<&str>| {
            let mut r = route(name, host, "/");
            r.gateway = Some(gw_match("web"));
            r
        };
        let routes = Routes::new(vec![route("ingress-shop", Some("shop.example.com"), "/"), gw("tenant", None)]);
        assert_eq!(routes.find("web", "shop.example.com", "/cart").map(|r| &*r.name), Some("ingress-shop"));
        assert_eq!(routes.find("web", "other.example.com", "/").map(|r| &*r.name), Some("tenant"));
        let wild = Routes::new(vec![
            route("ingress-shop", Some("shop.example.com"), "/"),
            gw("tenant", Some("*.example.com")),
        ]);
        assert_eq!(wild.find("web", "shop.example.com", "/").map(|r| &*r.name), Some("ingress-shop"));
        let both = Routes::new(vec![
            route("ingress-shop", Some("shop.example.com"), "/"),
            gw("gw-shop", Some("shop.example.com")),
        ]);
        assert_eq!(both.find("web", "shop.example.com", "/").map(|r| &*r.name), Some("gw-shop"));
        let equal = Routes::new(vec![route("file-any", None, "/"), gw("tenant", None)]);
        assert_eq!(equal.find("web", "shop.example.com", "/").map(|r| &*r.name), Some("tenant"));
    }

    /// Review 25 HIGH-1 and review 27 HIGH: a request's query parameters
    /// and headers are looked up once each, however many candidate routes
    /// have conditions and however long their names and values (before,
    /// every condition of every host-less route scanned the whole query,
    /// then parsed and hashed its header name: 8,192 routes of 16 header
    /// conditions with 256-byte names cost 74–84 ms per request).
    #[test]
    fn headers_and_query_are_looked_up_once_per_request() {
        use realip_kube::routes::ValueMatch;
        // A Gateway route on listener `gw` for `host` with these conditions.
        let on_gw = |name: &str, host: Option<&str>, headers: Arc<[ValueMatch]>, query: Arc<[ValueMatch]>| {
            let mut r = route(name, host, "/");
            r.gateway = Some(crate::config::GatewayMatch { headers, query, ..gw_match("gw") });
            r
        };
        let long = |j: usize| format!("x-{j:0>250}");
        let headers: Arc<[ValueMatch]> =
            (0..16).map(|j| ValueMatch { name: long(j), value: "v".repeat(4096) }).collect();
        let routes = (0..200).map(|i| {
            // Distinct lists (not one shared `Arc`), each route its own failing query value.
            let query = (0..16).map(|j| ValueMatch { name: format!("zz{j}"), value: format!("x{i}") });
            on_gw(&format!("r{i}"), None, headers.iter().cloned().collect(), query.collect())
        });
        let own = on_gw("own", Some("v.test"), Arc::default(), Arc::default());
        // Precedence order: the host's own route first.
        let routes = Routes::new(std::iter::once(own).chain(routes).collect());
        let query = "a&".repeat(30_000);
        let mut sent = http::HeaderMap::new();
        for j in 0..16 {
            let name = http::HeaderName::from_bytes(long(j).as_bytes()).unwrap();
            sent.append(name, http::HeaderValue::from_str(&"v".repeat(4096)).unwrap());
        }
        let req = Request { method: &http::Method::GET, headers: &sent, query: Some(&query) };
        let lookups = || LOOKUPS.with(std::cell::Cell::get);
        let before = lookups();
        assert!(routes.find_request("gw", "x.test", "/", &req).is_none());
        assert_eq!(lookups() - before, 16 + 30_000, "each header and parameter once");
        // The headers meet every route's header conditions; one query value makes route r7 serve.
        let one = "zz0=x7&zz1=x7&zz2=x7&zz3=x7&zz4=x7&zz5=x7&zz6=x7&zz7=x7&zz8=x7&zz9=x7&zz10=x7&zz11=x7&zz12=x7\
                   &zz13=x7&zz14=x7&zz15=x7&zz0=x8";
        let req = Request { method: &http::Method::GET, headers: &sent, query: Some(one) };
        assert_eq!(routes.find_request("gw", "x.test", "/", &req).map(|r| &*r.name), Some("r7"));
        // A host whose own route serves never looks at the host-less ones.
        let before = lookups();
        assert_eq!(routes.find_request("gw", "v.test", "/", &req).map(|r| &*r.name), Some("own"));
        assert_eq!(lookups() - before, 0);
        // One header short: no route.
        let mut fewer = sent.clone();
        fewer.remove(long(15).as_str());
        let req = Request { method: &http::Method::GET, headers: &fewer, query: Some(one) };
        assert!(routes.find_request("gw", "x.test", "/", &req).is_none());
    }

    /// Review 28 F1: the hosts a route leaves to more specific listeners
    /// are tested once per request and list, however many routes share
    /// the list and however long it is; the answer is `excludes`'s.
    #[test]
    fn hosts_left_out_are_tested_once_per_request() {
        let mut except: Vec<String> = (0..5000).map(|i| format!("l{i}-{}.evil.example", "a".repeat(200))).collect();
        except.extend(["*.w.example".to_owned(), "*x.odd".to_owned(), "own.example".to_owned()]);
        let except: Arc<[String]> = except.into();
        let on_gw = |name: &str| {
            let mut r = route(name, None, "/");
            r.gateway = Some(crate::config::GatewayMatch { except_hosts: Arc::clone(&except), ..gw_match("gw") });
            r
        };
        // An excluded host is tested by every route: once, then remembered.
        let routes = Routes::new((0..201).map(|i| on_gw(&format!("r{i}"))).collect());
        let checks = || EXCLUSIONS.with(std::cell::Cell::get);
        let g = routes.list[0].gateway.clone().unwrap();
        for host in
            ["nohost.example.org", "own.example", "a.w.example", "w.example", "b.a.w.example", "yx.odd", "x.odd"]
        {
            let before = checks();
            let served = routes.find_request("gw", host, "/", &Request::default()).is_some();
            assert_eq!(checks() - before, 1, "{host}: one test for 201 routes");
            assert_eq!(served, !g.excludes(host), "{host}");
        }
    }

    /// Review 28 F3: a host a file or Ingress route names exactly is
    /// served without walking the wildcard and host-less Gateway routes
    /// (the exact route beats them all): their conditions are never
    /// looked at.
    #[test]
    fn an_ingress_host_does_not_walk_host_less_gateway_routes() {
        use realip_kube::routes::ValueMatch;
        let gw = |i: usize| {
            let mut r = route(&format!("g{i}"), None, "/");
            r.gateway = Some(crate::config::GatewayMatch {
                headers: Arc::new([ValueMatch { name: "x-k".into(), value: format!("{i}") }]),
                ..gw_match("gw")
            });
            r
        };
        let mut list: Vec<Route> = (0..200).map(gw).collect();
        list.push(route("ing", Some("ing.test"), "/"));
        let routes = Routes::new(list);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-k", http::HeaderValue::from_static("none"));
        let req = Request { method: &http::Method::GET, headers: &headers, query: None };
        let lookups = || LOOKUPS.with(std::cell::Cell::get);
        let before = lookups();
        assert_eq!(routes.find_request("gw", "ing.test", "/", &req).map(|r| &*r.name), Some("ing"));
        assert_eq!(lookups() - before, 0);
        // Another host walks them (and is served by none).
        assert!(routes.find_request("gw", "other.test", "/", &req).is_none());
        assert_eq!(lookups() - before, 1);
    }

    /// Method, header and query conditions all have to hold; the first
    /// Gateway route (in set order) whose conditions hold serves.
    #[test]
    fn gateway_request_matches() {
        let gw = |name: &str, m: Option<&str>, h: &[(&str, &str)], q: &[(&str, &str)]| {
            let mut r = route(name, None, "/");
            r.gateway = Some(crate::config::GatewayMatch {
                listeners: vec!["gw".into()],
                exact: false,
                method: m.map(Into::into),
                headers: h
                    .iter()
                    .map(|(a, b)| realip_kube::routes::ValueMatch { name: (*a).into(), value: (*b).into() })
                    .collect(),
                query: q
                    .iter()
                    .map(|(a, b)| realip_kube::routes::ValueMatch { name: (*a).into(), value: (*b).into() })
                    .collect(),
                except_hosts: Arc::default(),
                excepted_on: vec![],
            });
            r
        };
        let routes = Routes::new(vec![
            gw("all", Some("POST"), &[("x-env", "canary")], &[("v", "2")]),
            gw("header", None, &[("x-env", "canary")], &[]),
            gw("query", None, &[], &[("v", "2")]),
            gw("method", Some("POST"), &[], &[]),
            gw("any", None, &[], &[]),
        ]);
        let mut canary = http::HeaderMap::new();
        canary.append("x-env", http::HeaderValue::from_static("other"));
        canary.append("x-env", http::HeaderValue::from_static("canary"));
        let mut wrong_case = http::HeaderMap::new();
        wrong_case.insert("x-env", http::HeaderValue::from_static("Canary"));
        let none = http::HeaderMap::new();
        let (get, post) = (http::Method::GET, http::Method::POST);
        let table: [(&http::Method, &http::HeaderMap, Option<&str>, &str); 7] = [
            (&post, &canary, Some("a=1&v=2"), "all"),
            (&get, &canary, Some("v=2"), "header"),
            (&get, &wrong_case, Some("v=2"), "query"),
            (&get, &none, Some("v=2&v=3"), "query"),
            (&get, &none, Some("v=3&v=2"), "any"),
            (&post, &none, None, "method"),
            (&get, &none, Some("v"), "any"),
        ];
        for (method, headers, query, want) in table {
            let req = Request { method, headers, query };
            assert_eq!(routes.find_request("gw", "x.test", "/", &req).map(|r| &*r.name), Some(want), "{req:?}");
        }
    }
}
