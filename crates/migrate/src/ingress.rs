//! One Ingress of the controller's class, read into a [`Plan`]: its hosts
//! and paths (with rewrites), TLS, access lists, rate limit, redirects and
//! canary settings, every annotation of ingress-nginx's prefix getting a
//! report entry.
//!
//! Invariants: an access-control annotation that does not parse keeps the
//! whole Ingress out of the output (emitting its routes without the list
//! would open them: [`Plan::deny_all`]); a path that cannot be expressed is
//! left out and reported, the others are kept; a left-out location is kept
//! as a [`Denied`] match, emitted deny-all; snippets are reported with
//! their line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use realip_kube::{Node, Object};

use crate::report::{Entry, Report, Status};
use crate::setup::Setup;
use crate::Target;

/// The annotations ingress-nginx reads with `strconv.Atoi`, untrimmed.
const ATOI_KEYS: [&str; 6] =
    ["limit-rps", "limit-rpm", "limit-burst-multiplier", "limit-connections", "canary-weight", "canary-weight-total"];

/// Go's `strconv.Atoi`: an optional sign and decimal digits, nothing else.
fn go_atoi(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse().ok()).flatten()
}

/// The request header a canary-by-header value names as nginx reads it
/// (balancer.lua looks it up as `$http_<name>`): `None` when empty (once
/// trimmed, parseString's error) or when it has a character nginx does not
/// accept in a header name (nginx ignores such headers, so it never
/// matches); else the name with `_` as `-` (nginx's variable stands for
/// both, and ignores a request header with `_` by default).
fn canary_header(v: &str) -> Option<String> {
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| v.replace('_', "-"))
}

/// The default `--annotations-prefix`, with its `/`.
const DEFAULT_PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// A Service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Service name (same namespace as the Ingress).
    pub service: String,
    /// Port number.
    pub port: u16,
}

/// How an HTTPRoute path matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// `Exact`.
    Exact,
    /// `PathPrefix`.
    Prefix,
    /// `RegularExpression` (Extended support).
    Regex,
}

/// A path rewrite (URLRewrite filter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// `ReplaceFullPath`.
    Full(String),
    /// `ReplacePrefixMatch`.
    Prefix(String),
}

/// One Ingress path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule {
    /// Match type.
    pub kind: PathKind,
    /// Match value.
    pub value: String,
    /// Where it goes.
    pub backend: Backend,
    /// Rewrite, if any.
    pub rewrite: Option<Rewrite>,
    /// The path as the Ingress wrote it (a canary names its main Ingress's path this way).
    pub raw: String,
    /// Its pathType as ingress-nginx holds it (absent or
    /// `ImplementationSpecific` became `Prefix`: [`crate::merge::nginx_path_type`]).
    pub path_type: String,
    /// ingress-nginx serves it from `location RAW/` plus `location = RAW`
    /// (`updateServerLocations`: a Prefix path outside regex mode, not `/`,
    /// not ending in `/`): what its per-location checks
    /// (`no-tls-redirect-locations`) compare is `RAW/` for all but `RAW`
    /// itself.
    pub slash_location: bool,
}

/// A location ingress-nginx served that the output cannot serve as it did
/// (its Ingress or this path is left out): emitted with a deny-all policy
/// and no backend, so its requests are refused instead of falling through
/// to a more open route of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// Match type (never a rewrite: nothing is forwarded).
    pub kind: PathKind,
    /// Match value (a valid Gateway API path).
    pub value: String,
    /// The path as the Ingress wrote it.
    pub raw: String,
    /// Its pathType as ingress-nginx holds it.
    pub path_type: String,
}

/// A redirect of the whole Ingress (permanent-redirect / temporal-redirect).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// `http` / `https`.
    pub scheme: Option<String>,
    /// Host.
    pub hostname: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Full path.
    pub path: String,
    /// 301, 302, 303, 307 or 308.
    pub code: u16,
}

/// A per-client rate limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Rate {
    /// Requests per second (limit-rps, or limit-rpm / 60).
    pub per_second: f64,
    /// Bucket size (limit × limit-burst-multiplier).
    pub burst: f64,
    /// The limit as written, for Envoy Gateway's `requests`.
    pub requests: u64,
    /// `Second`, `Minute`, `Hour` or `Day`.
    pub unit: &'static str,
    /// Shared by every replica (global-rate-limit), not per replica.
    pub global: bool,
}

/// A canary Ingress's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Canary {
    /// canary-weight.
    pub weight: Option<u64>,
    /// canary-weight-total (default 100).
    pub total: u64,
    /// canary-by-header.
    pub header: Option<String>,
    /// canary-by-header-value.
    pub header_value: Option<String>,
    /// canary-by-header-pattern as Envoy Gateway's RegularExpression
    /// (`.*(?:…).*`: balancer.lua searches the value, Envoy matches it
    /// whole); `None` for realip, which matches headers exactly.
    pub header_pattern: Option<String>,
}

/// Everything that converts from one Ingress.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    /// The Ingress.
    pub obj: &'a Object,
    /// Paths by host (`None`: any host), hosts sorted.
    pub hosts: BTreeMap<Option<String>, Vec<PathRule>>,
    /// spec.defaultBackend; after [`crate::merge`], only when it is the
    /// catch-all server's backend (an Ingress without rules, emitted as a
    /// host-less route).
    pub default_backend: Option<Backend>,
    /// spec.defaultBackend of an Ingress with rules, and the hosts whose
    /// nginx server this Ingress creates (where it is the `/` fallback).
    pub fallback: Option<(Backend, Vec<String>)>,
    /// Why ingress-nginx does not send the [`Plan::fallback`] to its
    /// Service (its root locations answer 503, or go elsewhere): the
    /// fallback is then emitted deny-all.
    pub fallback_denied: Option<String>,
    /// spec.tls: hosts and secret.
    pub tls: Vec<(Vec<String>, Option<String>)>,
    /// Only these clients.
    pub allow: Option<Vec<String>>,
    /// Never these clients.
    pub deny: Vec<String>,
    /// Per-client limits (one for realip; Envoy Gateway applies the strictest of several).
    pub rates: Vec<Rate>,
    /// ssl-redirect annotation.
    pub ssl_redirect: Option<bool>,
    /// force-ssl-redirect annotation (`None`: the ConfigMap's default,
    /// [`crate::setup::ClientIp::force_ssl_redirect`]).
    pub force_ssl_redirect: Option<bool>,
    /// app-root.
    pub app_root: Option<String>,
    /// permanent-redirect / temporal-redirect.
    pub redirect: Option<Redirect>,
    /// Set on canary Ingresses.
    pub canary: Option<Canary>,
    /// Why the whole Ingress is left out (its routes are then emitted as
    /// [`Denied`] locations only, see [`Plan::deny_everything`]).
    pub deny_all: Option<String>,
    /// Locations emitted deny-all, by host.
    pub denied: BTreeMap<Option<String>, Vec<Denied>>,
}

impl Plan<'_> {
    /// Turns every location of the plan (paths, and its defaultBackend when
    /// it is the catch-all's) into a [`Denied`] one and drops everything
    /// else it would emit: the Ingress is left out, and ingress-nginx served
    /// its locations, so they must refuse requests rather than vanish and
    /// let a more open route of the host take them.
    pub fn deny_everything(&mut self) {
        for (host, paths) in std::mem::take(&mut self.hosts) {
            let d = self.denied.entry(host).or_default();
            for p in paths {
                d.push(Denied { kind: p.kind, value: p.value, raw: p.raw, path_type: p.path_type });
            }
        }
        if self.default_backend.take().is_some() {
            self.denied.entry(None).or_default().push(Denied {
                kind: PathKind::Prefix,
                value: "/".into(),
                raw: "/".into(),
                path_type: "Prefix".into(),
            });
        }
        self.allow = None;
        self.deny.clear();
        self.rates.clear();
        self.redirect = None;
        self.app_root = None;
        self.ssl_redirect = Some(false);
        self.force_ssl_redirect = Some(false);
    }
}

/// Whether `v` is a path the Gateway API accepts for an `Exact` or
/// `PathPrefix` match (the HTTPRoute CRD's CEL rules: its character set,
/// no `//`, `/./`, `/../`, `%2f`, `#`, no trailing `/.` or `/..`); the API
/// server rejects the whole HTTPRoute otherwise.
pub fn gateway_path_ok(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(c.is_ascii_alphanumeric() || b"-/._~!$&'()*+,;=:@".contains(&c)) {
            return false;
        }
        i += 1;
    }
    v.starts_with('/')
        && v.len() <= 1024
        && !["//", "/./", "/../", "%2f", "%2F", "#"].iter().any(|s| v.contains(s))
        && !v.ends_with("/..")
        && !v.ends_with("/.")
}

/// How a path entry ends when its location is emitted deny-all; a later
/// step that takes the deny back (the location served by the path
/// ingress-nginx preferred, or shadowed by another Ingress) rewrites it.
pub(crate) const LEFT_OUT_DENIED: &str = "the path is left out: emitted as a deny-all route (its match covers at least what ingress-nginx's location took) so it does not fall through to a more open route";

/// The match a left-out path is denied on: the path itself when it is a
/// valid literal one, else a superset that is: the head before the first
/// regex or invalid character, cut back to its last `/` (`/api/v[0-9]+` →
/// PathPrefix `/api`, `/{id}` → `/`). Refusing more than nginx did is
/// safe; refusing less would let the rest fall through.
pub fn deny_match(path: &str, exact: bool, regex: bool) -> (PathKind, String) {
    if (!regex || literal(path)) && gateway_path_ok(path) {
        return (if exact { PathKind::Exact } else { PathKind::Prefix }, path.to_owned());
    }
    let mut head = String::new();
    for c in path.chars() {
        let next = format!("{head}{c}");
        let bad = (regex && META.contains(c)) || !gateway_path_ok(&next) && !gateway_path_ok(&format!("{next}a"));
        if bad {
            break;
        }
        head = next;
    }
    let cut = head.rfind('/').map_or("", |i| &head[..i]);
    let cut = if cut.is_empty() || !gateway_path_ok(cut) { "/" } else { cut };
    (PathKind::Prefix, cut.to_owned())
}

/// What ingress-nginx's location for `raw` matches, as a literal head:
/// every request path the location takes starts with it (compared
/// case-insensitively in regex mode). Outside regex mode a Prefix or Exact
/// path is matched by segments or exactly and `None` is returned;
/// ImplementationSpecific is `location RAW`, a plain string prefix (the
/// head is the whole path). In regex mode every location of the host is
/// `location ~* "^RAW"`: the head stops before the first metacharacter,
/// and drops the character a quantifier makes optional; an alternation
/// anywhere can match anything, so the head is empty then.
pub(crate) fn location_head(raw: &str, path_type: &str, regex_mode: bool) -> Option<String> {
    if !regex_mode {
        if matches!(path_type, "Prefix" | "Exact") && gateway_path_ok(raw) {
            return None;
        }
        return Some(raw.to_owned());
    }
    if raw.contains('|') {
        return Some(String::new());
    }
    let mut head = String::new();
    for c in raw.chars() {
        if META.contains(c) {
            if matches!(c, '?' | '*' | '{') {
                head.pop();
            }
            break;
        }
        head.push(c);
    }
    Some(head)
}

/// `s` with every regular-expression metacharacter escaped (RE2, PCRE).
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if META.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The match of a denied (left-out) location: it refuses at least every
/// request ingress-nginx served from that location, never fewer (under-
/// denying lets them fall through to a more open route). Returns the match
/// and, when it refuses more than the location did, a sentence saying what.
///
/// - Exact / Prefix paths outside regex mode: the same match (nginx's
///   `= /p`, or `/p/` + `= /p`, are what Exact and PathPrefix match).
/// - Otherwise nginx matches a string prefix (`location /admin` also takes
///   `/admin.php`, `/administrator`), case-insensitively in regex mode.
///   Envoy Gateway: a RegularExpression `^HEAD.*` (`(?i)` in regex mode),
///   padded with `.*` so that it is longer than the pattern of any open
///   regex route whose path is not longer than this one (Envoy Gateway
///   tries RegularExpression matches before every PathPrefix, longer
///   patterns first; nginx tries longer regex locations first). realip
///   has no RegularExpression match: the longest PathPrefix that holds
///   every such path (the parent segment, without letters in regex mode
///   since PathPrefix is case-sensitive), `/` when nothing smaller is.
pub fn deny_cover(raw: &str, path_type: &str, regex_mode: bool, target: Target) -> (PathKind, String, Option<String>) {
    let Some(head) = location_head(raw, path_type, regex_mode) else {
        let kind = if path_type == "Exact" { PathKind::Exact } else { PathKind::Prefix };
        return (kind, raw.to_owned(), None);
    };
    let head = if head.starts_with('/') { head } else { String::new() };
    let how = if regex_mode {
        format!("ingress-nginx matches `~* \"^{raw}\"` (this host is in regex mode): every path starting with `{head}` in any letter case")
    } else {
        format!("ingress-nginx matches `location {raw}`: a string prefix, also `{raw}.php`, `{raw}x`, …")
    };
    if target == Target::EnvoyGateway {
        if !regex_mode && head.ends_with('/') && gateway_path_ok(&head) {
            // A string prefix ending in `/` is a whole-segment prefix.
            let v = if head == "/" { head.clone() } else { head.trim_end_matches('/').to_owned() };
            return (PathKind::Prefix, v, None);
        }
        // HTTPRoute path.value holds at most MAX_MATCH characters: a shorter
        // literal head still matches every path the full one did (a superset).
        let build = |h: &str| format!("{}^{}.*", if regex_mode { "(?i)" } else { "" }, regex_escape(h));
        let full = head.clone();
        let mut head = head;
        let mut value = build(&head);
        while value.len() > MAX_MATCH {
            head.pop();
            value = build(&head);
        }
        // Open regex routes exist on regex-mode hosts only; theirs is `^(?:PATH).*`.
        while regex_mode && value.len() < raw.len() + 9 && value.len() + 2 <= MAX_MATCH {
            value.push_str(".*");
        }
        let cut = if head.len() < full.len() {
            format!(", its literal head cut to `{head}` so that it fits the {MAX_MATCH}-character limit of an HTTPRoute path value{}", if head.is_empty() { ": it refuses every path of the host" } else { "" })
        } else {
            String::new()
        };
        let wider = format!("{how}; the deny is the RegularExpression {value}{cut}, which Envoy Gateway tries before every PathPrefix match of the host, so it also refuses requests that a longer open PathPrefix path under `{head}` served in ingress-nginx{}", if head.len() < raw.len() { format!(", and every path starting with `{head}` (the literal head of `{raw}`)") } else { String::new() });
        return (PathKind::Regex, value, Some(wider));
    }
    let mut cand = match head.rfind('/') {
        Some(i) => head[..=i].to_owned(),
        None => "/".to_owned(),
    };
    loop {
        let v = if cand == "/" { cand.clone() } else { cand.trim_end_matches('/').to_owned() };
        let cased = regex_mode && v.chars().any(|c| c.is_alphabetic() || !c.is_ascii());
        if v == "/" || (gateway_path_ok(&v) && !cased) {
            let same = !regex_mode && head.ends_with('/') && v == head.trim_end_matches('/');
            let wider = (!same).then(|| {
                if v == "/" {
                    format!("{how}; realip matches no regular expression and no smaller PathPrefix holds all of them, so the deny is PathPrefix / and refuses every path of the host that no open route with a longer match takes, the host's other `/` routes included")
                } else {
                    format!("{how}; realip matches no regular expression, so the deny is the parent segment PathPrefix {v} and also refuses its neighbouring paths under {v}/ that no open route with a longer match takes")
                }
            });
            return (PathKind::Prefix, v, wider);
        }
        cand = match v.rfind('/') {
            Some(i) => v[..=i].to_owned(),
            None => "/".to_owned(),
        };
    }
}

/// Whether the controller of `setup` serves an Ingress (ingress-nginx's
/// store.go `GetIngressClass`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// It does.
    Yes,
    /// Its `ingressClassName` is `--ingress-class`, but no IngressClass is
    /// in the input to say whose that class is: taken as the controller's,
    /// with a warning.
    ByNameUnchecked(String),
    /// It does not (why).
    No(String),
}

/// Whether an IngressClass is kept by the controller's IngressClass
/// informer: its `spec.controller` is `--controller-class`, or, with
/// `--ingress-class-by-name`, its name is `--ingress-class`.
pub fn class_accepted(name: &str, controller: &str, setup: &Setup<'_>) -> bool {
    controller == setup.controller_class || setup.class_by_name && name == setup.ingress_class
}

/// Whether the controller of `setup` serves the Ingress. `classes` are the
/// input's IngressClasses (name, spec.controller). As ingress-nginx:
/// `spec.ingressClassName` first, and it counts only when that IngressClass
/// exists and [`class_accepted`] (a missing one is an error there: the
/// Ingress is ignored); else the legacy annotation must equal
/// `--ingress-class`; else `--watch-ingress-without-class`.
pub fn is_ours(o: &Object, setup: &Setup<'_>, classes: &[(String, String)]) -> Served {
    if let Some(c) = o.doc.str_at(&["spec", "ingressClassName"]) {
        if classes.is_empty() {
            return if c == setup.ingress_class {
                Served::ByNameUnchecked(c.to_owned())
            } else {
                Served::No(format!("class `{c}` is not `--ingress-class` {}", setup.ingress_class))
            };
        }
        return match classes.iter().find(|(name, _)| name == c) {
            Some((name, controller)) if class_accepted(name, controller, setup) => Served::Yes,
            Some((_, controller)) => Served::No(format!(
                "IngressClass `{c}` has spec.controller `{controller}`, not this controller's `{}`{}",
                setup.controller_class,
                if c == setup.ingress_class { " (ingress-nginx matches an ingressClassName by name only with --ingress-class-by-name)" } else { "" }
            )),
            None => Served::No(format!(
                "IngressClass `{c}` is not in the input, which holds IngressClasses: ingress-nginx ignores an Ingress whose IngressClass does not exist"
            )),
        };
    }
    match o.annotation("kubernetes.io/ingress.class") {
        Some(c) if c == setup.ingress_class => Served::Yes,
        Some(c) => Served::No(format!("class `{c}` (annotation) is not `--ingress-class` {}", setup.ingress_class)),
        None if setup.without_class => Served::Yes,
        None => Served::No("class (none)".into()),
    }
}

/// A CIDR as Go's `net.IPNet.String()` prints it: host bits cleared, and an
/// IPv4-mapped IPv6 network of prefix 96 or more written as the IPv4 one
/// (`::ffff:10.0.0.0/104` is `10.0.0.0/8`). `len` is at most the family's width.
pub fn go_ipnet(addr: std::net::IpAddr, len: u8) -> (std::net::IpAddr, u8) {
    use std::net::IpAddr;
    match addr {
        IpAddr::V4(a) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            (IpAddr::V4((u32::from(a) & mask).into()), len)
        }
        IpAddr::V6(a) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            let net = std::net::Ipv6Addr::from(u128::from(a) & mask);
            match net.to_ipv4_mapped() {
                Some(v4) if len >= 96 => (IpAddr::V4(v4), len - 96),
                _ => (IpAddr::V6(net), len),
            }
        }
    }
}

/// Splits a checked `ADDR/LEN` (as [`realip_kube::ingress::cidr_list`] writes it).
pub fn split_cidr(c: &str) -> Option<(std::net::IpAddr, u8)> {
    let (a, l) = c.split_once('/')?;
    Some((a.parse().ok()?, l.parse().ok()?))
}

/// An annotation's comma-separated CIDR list as ingress-nginx applies it:
/// its `ParseIPNets` keys every entry by Go's `IPNet.String()`
/// ([`go_ipnet`]), so `::ffff:203.0.113.0/120` is nginx's
/// `deny 203.0.113.0/24`; emitted in that form, as both targets match an
/// IPv4 client against IPv4 ranges.
///
/// # Errors
/// The first entry that is not an address or CIDR, named.
pub fn cidrs(v: &str) -> Result<Vec<String>, String> {
    Ok(realip_kube::ingress::cidr_list(v)?
        .into_iter()
        .map(|c| match split_cidr(&c) {
            Some((a, l)) => {
                let (a, l) = go_ipnet(a, l);
                format!("{a}/{l}")
            }
            None => c,
        })
        .collect())
}

const META: &str = ".^$*+?()[]{}|\\";

/// The maxLength of an HTTPRoute match's path value (Gateway API CRD).
pub const MAX_MATCH: usize = 1024;

fn literal(p: &str) -> bool {
    !p.chars().any(|c| META.contains(c))
}

/// ingress-nginx's `RegexPathWithCapture` validator of `rewrite-target`
/// and `app-root` (`^/?[-._~a-zA-Z0-9/:$]*$` on the value as written):
/// a query, a space or any other character fails it.
pub fn path_with_capture(raw: &str) -> bool {
    raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/:$".contains(&b))
}

/// Why an Ingress without rules gets no redirect or app-root (review 36 H-2).
const CATCH_ALL_SKIPS: &str = "an Ingress without rules only gives the catch-all server its defaultBackend, and ingress-nginx applies no redirect or rewrite annotation there (controller.go: \"Redirect and rewrite can affect the catch all behavior, skip for now\"; kubernetes/ingress-nginx#8713): no redirect, in ingress-nginx and in the output";

/// The value ingress-nginx applies of `rewrite-target` or `app-root`
/// (`short`) on `o`: its lines trimmed, `None` when that is empty or when
/// annotation validation is (or may be) on and the value as written fails
/// [`path_with_capture`] (rewrite/main.go then takes '': no rewrite, no
/// regex locations, no redirect).
pub fn applied_path_annotation<'o>(o: &'o Object, setup: &Setup<'_>, short: &str) -> Option<&'o str> {
    let raw = o.annotation(&format!("{}/{short}", setup.prefix))?;
    let (validating, _) = crate::drops::annotation_validation(setup);
    let value = raw.trim();
    (!value.is_empty() && (!validating || path_with_capture(raw))).then_some(value)
}

/// rewrite-target with regex paths, as ingress-nginx writes them:
/// `location ~* "^PATH"` then `rewrite "(?i)PATH" TARGET break;`.
/// Returns the path match and the rewrite, or why it cannot be expressed.
pub fn rewrite(path: &str, target: &str) -> Result<(PathKind, String, Rewrite), String> {
    let refs = target.contains('$');
    if !refs {
        if literal(path) {
            // nginx's rewrite replaces the whole URI with the target.
            return Ok((PathKind::Prefix, path.to_owned(), Rewrite::Full(target.to_owned())));
        }
        return Err(format!("path `{path}` is a regular expression and the target `{target}` replaces the whole path: no HTTPRoute match selects the same requests"));
    }
    // The documented form: `/prefix(/|$)(.*)` rewritten to `/new/$2`.
    // ReplacePrefixMatch R turns `/prefix/a` into `R/a` (`/a` when R is
    // `/`), so the target's head must put exactly one `/` before what the
    // group captured: `/new/` before `a` (`(.*)` after the slash), `/new`
    // or nothing before `/a` (`(/.*)`). Any other head gives another path
    // (review 28 M2: `/new$2` made `/newa` in nginx, `/new/a` here).
    for (suffix, group) in [("(/|$)(.*)", "$2"), ("(/|$)(.*)$", "$2"), ("/(.*)", "$1"), ("(/.*)", "$1")] {
        if let Some(prefix) = path.strip_suffix(suffix) {
            let Some(head) = target.strip_suffix(group) else { continue };
            if !literal(prefix) || head.contains('$') || prefix.is_empty() {
                continue;
            }
            let slash_captured = suffix == "(/.*)";
            let replace = match (slash_captured, head) {
                (true, "") | (false, "/") => "/".to_owned(),
                (true, h) if !h.ends_with('/') => h.to_owned(),
                (false, h) if h.ends_with('/') => h.trim_end_matches('/').to_owned(),
                _ => {
                    return Err(format!(
                        "rewrite-target `{target}` on path `{path}`: nginx writes `{head}` right before what `{group}` captured{}, which no ReplacePrefixMatch reproduces (it puts one `/` between the replacement and the rest)",
                        if slash_captured { " (which starts with `/`)" } else { " (after the `/`)" }
                    ))
                }
            };
            return Ok((PathKind::Prefix, prefix.to_owned(), Rewrite::Prefix(replace)));
        }
    }
    Err(format!(
        "rewrite-target `{target}` on path `{path}`: only `/prefix(/|$)(.*)` → `/new/$2` (a prefix replacement) or a plain path → a full replacement can be expressed as a URLRewrite"
    ))
}

/// A redirect URL of permanent-redirect / temporal-redirect.
pub fn redirect_url(url: &str, code: u16) -> Result<Redirect, String> {
    if url.contains('?') || url.contains('#') || url.contains('$') {
        return Err(format!("`{url}`: a query, fragment or nginx variable cannot be expressed by a RequestRedirect"));
    }
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) if s == "http" || s == "https" => (Some(s.to_owned()), r),
        Some((s, _)) => return Err(format!("`{url}`: scheme `{s}` is not http or https")),
        None if url.starts_with('/') => (None, url),
        None => return Err(format!("`{url}` is not an absolute URL or a path")),
    };
    let (authority, path) =
        if scheme.is_some() { rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..])) } else { ("", rest) };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| format!("`{url}`: port `{p}` is not a number"))?)),
        None => (authority, None),
    };
    let valid_host = |h: &str| {
        h.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
    };
    let hostname = if host.is_empty() {
        None
    } else if valid_host(&host.to_ascii_lowercase()) {
        Some(host.to_ascii_lowercase())
    } else {
        return Err(format!(
            "`{url}`: host `{host}` is not a DNS name (an IP address or a name with _ cannot be a redirect hostname)"
        ));
    };
    Ok(Redirect { scheme, hostname, port, path: path.to_owned(), code })
}

/// limit-rps / limit-rpm with limit-burst-multiplier (default 5, as ingress-nginx).
fn rate_of(key: &str, v: &str, mult: Option<&str>) -> Option<Rate> {
    let n = v.parse::<u64>().ok().filter(|n| *n > 0)?;
    // A burst nginx refuses ([`burst_refused`]) leaves the Ingress out: 1 here is never served.
    // nginx's `limit_req … burst=B nodelay` lets the first request and B
    // more through at once (excess starts at 0 and may reach B): a bucket
    // of B + 1 (review 29 M2).
    let burst = go_burst(v, mult).unwrap_or(1).max(1).saturating_add(1);
    #[allow(clippy::cast_precision_loss)] // request rates are small integers
    let (per_second, unit) = if key == "limit-rps" { (n as f64, "Second") } else { (n as f64 / 60.0, "Minute") };
    #[allow(clippy::cast_precision_loss)]
    Some(Rate { per_second, burst: burst as f64, requests: n, unit, global: false })
}

/// The `burst=` ingress-nginx renders into `limit_req` for the limit
/// (limit-rps or limit-rpm value) `limit` and limit-burst-multiplier
/// `mult`, as its Go code computes it: both read with `strconv.Atoi` (a
/// multiplier it cannot parse, one past the range of an int included,
/// is 5), the product in a 64-bit int, wrapping. `None` when the limit
/// renders no `limit_req` (not a positive integer).
pub fn go_burst(limit: &str, mult: Option<&str>) -> Option<i64> {
    let n = limit.parse::<i64>().ok().filter(|n| *n > 0)?;
    let m = mult.and_then(|m| m.parse::<i64>().ok()).unwrap_or(5);
    Some(n.wrapping_mul(m))
}

/// The bursts nginx refuses (not positive: "invalid burst value") among
/// those of limit-rps and limit-rpm ([`go_burst`]), read through `get`.
pub fn burst_refused<'v>(get: impl Fn(&str) -> Option<&'v str>) -> Vec<i64> {
    ["limit-rps", "limit-rpm"]
        .into_iter()
        .filter_map(|k| go_burst(get(k)?, get("limit-burst-multiplier")))
        .filter(|b| *b <= 0)
        .collect()
}

/// Whether an annotation value, as ingress-nginx's parser reads it (each
/// line trimmed), splits the nginx directive it is written into unquoted:
/// whitespace, `;` or `{` inside it.
pub fn splits_directive(v: &str) -> bool {
    let lines: Vec<&str> = v.split('\n').map(str::trim).collect();
    lines.join("\n").contains(|c: char| c.is_ascii_whitespace() || c == ';' || c == '{')
}

/// What an annotation does when it restricts who gets through (an
/// authentication, a WAF, a connection limit, a snippet with nginx access
/// directives); `None` for any other annotation or a value that turns it off.
pub fn restricting(key: &str, value: &str) -> Option<&'static str> {
    match key {
        "auth-url" if !value.is_empty() => Some("external authentication (auth-url: nginx's auth_request)"),
        "auth-type" | "auth-secret" if !value.is_empty() => Some("basic/digest authentication (auth-type, auth-secret)"),
        "auth-tls-secret" if !value.is_empty() => Some("client certificate authentication (auth-tls-secret)"),
        "auth-tls-verify-client" if !matches!(value.to_ascii_lowercase().as_str(), "off" | "") => {
            Some("client certificate verification (auth-tls-verify-client)")
        }
        "enable-modsecurity" | "enable-owasp-core-rules" if go_bool(value) == Some(true) => {
            Some("the ModSecurity web application firewall")
        }
        "modsecurity-snippet" if !value.is_empty() => Some("ModSecurity rules (modsecurity-snippet)"),
        "limit-connections" => Some("a limit of concurrent connections per client (limit-connections): no Gateway API, realip or Envoy Gateway policy limits them per client"),
        k if k.ends_with("-snippet") && access_directives(value) => {
            Some("a snippet with nginx directives that can refuse, redirect or answer requests (anything but headers, buffers, timeouts, logs and compression: allow, deny, auth_*, limit_*, return, rewrite, if, location, ssl_verify_client, Lua, …)")
        }
        _ => None,
    }
}

/// nginx directives that only shape headers, buffers, timeouts, logs and
/// compression: a snippet made of these alone refuses no request.
const HARMLESS: &[&str] = &[
    "add_header",
    "more_set_headers",
    "more_clear_headers",
    "more_set_input_headers",
    "more_clear_input_headers",
    "proxy_set_header",
    "proxy_hide_header",
    "proxy_pass_header",
    "proxy_ignore_headers",
    "proxy_http_version",
    "proxy_buffering",
    "proxy_buffer_size",
    "proxy_buffers",
    "proxy_busy_buffers_size",
    "proxy_request_buffering",
    "proxy_connect_timeout",
    "proxy_read_timeout",
    "proxy_send_timeout",
    "proxy_next_upstream",
    "proxy_next_upstream_tries",
    "proxy_next_upstream_timeout",
    "proxy_cookie_path",
    "proxy_cookie_domain",
    "proxy_cookie_flags",
    "proxy_redirect",
    "proxy_max_temp_file_size",
    "client_max_body_size",
    "client_body_buffer_size",
    "client_body_timeout",
    "client_header_timeout",
    "large_client_header_buffers",
    "keepalive_timeout",
    "keepalive_requests",
    "send_timeout",
    "gzip",
    "gzip_types",
    "gzip_min_length",
    "gzip_proxied",
    "gzip_vary",
    "gzip_comp_level",
    "brotli",
    "brotli_types",
    "expires",
    "etag",
    "charset",
    "source_charset",
    "charset_types",
    "sub_filter",
    "sub_filter_once",
    "sub_filter_types",
    "access_log",
    "error_log",
    "log_not_found",
    "log_subrequest",
    "server_tokens",
    "underscores_in_headers",
    "ignore_invalid_headers",
    "chunked_transfer_encoding",
    "tcp_nodelay",
    "tcp_nopush",
    "sendfile",
    "default_type",
    "types_hash_max_size",
    "proxy_cache_valid",
    "proxy_cache_bypass",
    "proxy_no_cache",
    "open_file_cache",
];

/// Whether raw nginx configuration may refuse, redirect or answer requests
/// itself: it holds a directive not on the `HARMLESS` list (`allow`,
/// `deny`, `auth_*`, `limit_*`, `return`, `rewrite`, `if`, `location`,
/// `ssl_verify_client`, a Lua block, …). Such a snippet counts as a
/// restriction that does not convert.
pub fn access_directives(snippet: &str) -> bool {
    crate::snippet::directives(snippet).is_none_or(|ds| ds.iter().any(|d| !HARMLESS.contains(&d.name.as_str())))
}

/// Why ingress-nginx never applied `global-rate-limit` with this
/// controller, or `None` when it did or may have: the feature was removed
/// in v1.12 (PR #11851), and before that `global_throttle.lua` skips every
/// limit unless the ConfigMap gives `global-rate-limit-memcached-host`
/// (empty by default) and a `global-rate-limit-memcached-port` other than 0.
fn global_limit_ignored(setup: &crate::setup::Setup<'_>) -> Option<String> {
    let version = crate::setup::controller_version(setup);
    if let Some((major, minor)) = version.filter(|v| *v >= (1, 12)) {
        return Some(format!("removed in ingress-nginx v1.12 (the controller runs v{major}.{minor}): ingress-nginx applied no limit, so neither does the output"));
    }
    let data = |k: &str| setup.configmap.and_then(|c| c.doc.str_at(&["data", k]));
    let host = data("global-rate-limit-memcached-host").map(str::trim).unwrap_or_default();
    // The ConfigMap is decoded by mapstructure's weak typing: an empty string
    // is 0, else Go's strconv.ParseInt(s, 0, 64) untrimmed; on an error the
    // field keeps its default, 11211.
    let port0 = data("global-rate-limit-memcached-port").map(|p| {
        if p.is_empty() {
            0
        } else {
            crate::drops::go_parse_int0(p).unwrap_or(11211)
        }
    }) == Some(0);
    if host.is_empty() || port0 {
        let era = if version.is_none() { "removed in ingress-nginx v1.12 and, before, " } else { "" };
        let what =
            if host.is_empty() { "no global-rate-limit-memcached-host" } else { "global-rate-limit-memcached-port 0" };
        return Some(format!("{era}never applied without memcached: the ConfigMap has {what}, and ingress-nginx's global throttle then skips every limit; neither does the output"));
    }
    None
}

/// With memcached configured and the controller's version not known,
/// whether ingress-nginx applied `global-rate-limit` is not known (removed
/// in v1.12): said after the entry's `why`.
fn global_limit_unsure(setup: &crate::setup::Setup<'_>) -> Option<String> {
    crate::setup::controller_version(setup).is_none().then(|| {
        ". The controller's version is not known: ingress-nginx v1.12 and later removed global-rate-limit and applied no limit, while the output does".to_owned()
    })
}

/// Whether nginx configuration holds a directive of the real-IP module
/// (`real_ip_header`, `set_real_ip_from`, `real_ip_recursive`): at http
/// level it changes who the client is on every server, beside what the
/// ConfigMap's client-IP keys say.
pub fn real_ip_directives(snippet: &str) -> bool {
    crate::snippet::directives(snippet).is_none_or(|ds| ds.iter().any(|d| REAL_IP.contains(&d.name.as_str())))
}

/// The real-IP module's directives.
const REAL_IP: [&str; 3] = ["real_ip_header", "set_real_ip_from", "real_ip_recursive"];

/// The `server_name`s of the top-level `server` blocks of an http-snippet
/// that may listen where ingress-nginx's servers do (`ports`, from the
/// controller's port flags, [`crate::setup::Setup::nginx_ports`]; `None`:
/// unknown, every port may be theirs): a `listen` on another port, or a
/// unix socket, does not; no `listen` at all counts as conflicting), or
/// `None` when nginx would not parse the
/// snippet. nginx.tmpl puts the http-snippet before every generated
/// server, and nginx keeps the FIRST server that declares a name on an
/// address:port ("conflicting server name … ignored" for the later one):
/// such a server takes the name from ingress-nginx. A block that declares
/// no name gets `""` (it takes no host: nginx's default server there is
/// ingress-nginx's `default_server`).
pub fn snippet_server_names(snippet: &str, ports: Option<&[u16]>) -> Option<Vec<String>> {
    let ds = crate::snippet::directives(snippet)?;
    let mut out = Vec::new();
    // (names, conflicts) of the server block being read.
    let mut cur: Option<(Vec<String>, Option<bool>)> = None;
    let flush = |cur: &mut Option<(Vec<String>, Option<bool>)>, out: &mut Vec<String>| {
        if let Some((names, conflicts)) = cur.take() {
            if conflicts.unwrap_or(true) {
                out.extend(names);
            }
        }
    };
    for d in &ds {
        if d.within.is_empty() {
            flush(&mut cur, &mut out);
            if d.name == "server" {
                cur = Some((Vec::new(), None));
            }
            continue;
        }
        let Some((names, conflicts)) = cur.as_mut() else { continue };
        if d.within.len() != 1 {
            continue;
        }
        match d.name.as_str() {
            "server_name" => names.extend(d.args.iter().map(|a| a.to_ascii_lowercase())),
            "listen" => {
                let here = d.args.first().is_none_or(|a| listen_port_conflicts(a, ports));
                *conflicts = Some(conflicts.unwrap_or(false) || here);
            }
            _ => {}
        }
    }
    flush(&mut cur, &mut out);
    Some(out)
}

/// Whether a `listen` address may be one of ingress-nginx's `ports`
/// (`None`: any).
fn listen_port_conflicts(addr: &str, ports: Option<&[u16]>) -> bool {
    if addr.starts_with("unix:") {
        return false;
    }
    // `[::]:80`, `0.0.0.0:80`, `*:80`, `80`, or an address alone (nginx's port 80).
    let port = if addr.bytes().all(|b| b.is_ascii_digit()) {
        addr
    } else if let Some((_, p)) = addr.rsplit_once(':').filter(|(h, _)| !h.starts_with('[') || h.ends_with(']')) {
        p
    } else {
        "80"
    };
    port.parse::<u16>().map_or(true, |p| ports.is_none_or(|ports| ports.contains(&p)))
}

/// Whether a `server_name` of nginx (`name`, `*.example.com`,
/// `.example.com`, `example.*`, `~regex`) may match the host `host`; a
/// regular expression always may.
pub fn server_name_matches(name: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    if name.starts_with('~') {
        return true;
    }
    if let Some(rest) = name.strip_prefix("*.") {
        return host.ends_with(&format!(".{rest}"));
    }
    if let Some(rest) = name.strip_prefix('.') {
        return host == rest || host.ends_with(&format!(".{rest}"));
    }
    if let Some(head) = name.strip_suffix(".*") {
        return host.starts_with(&format!("{head}."));
    }
    // An Ingress host `*.example.com` is a server of that literal name.
    name == host
}

/// Blocks of an http-snippet that define something of their own (a
/// server, a variable, an upstream) rather than configure every server.
const HTTP_DEFINING_BLOCKS: [&str; 5] = ["server", "map", "geo", "upstream", "split_clients"];

/// http-level directives that only define something used elsewhere (a log
/// format, a zone, a cache) and refuse nothing by themselves.
const HTTP_DEFINITIONS: [&str; 9] = [
    "log_format",
    "limit_req_zone",
    "limit_conn_zone",
    "proxy_cache_path",
    "lua_shared_dict",
    "variables_hash_max_size",
    "variables_hash_bucket_size",
    "map_hash_max_size",
    "map_hash_bucket_size",
];

/// Whether http-level nginx configuration (the ConfigMap's http-snippet)
/// may refuse requests or otherwise act in every server it is inherited
/// by: an allowlist, read as nginx tokenises it ([`crate::snippet`]).
/// Harmless are the [`HARMLESS`] directives, the real-IP ones (they change
/// the client, which [`real_ip_directives`] handles), definitions
/// ([`HTTP_DEFINITIONS`]) and what sits inside the snippet's own
/// `server`, `map`, `geo`, `upstream` or `split_clients` blocks; anything
/// else (`deny`, `auth_*`, `ssl_verify_client`, `include`, an unknown
/// module's directive, text nginx would reject) counts as refusing.
pub fn refusing_directives(snippet: &str) -> bool {
    crate::snippet::directives(snippet).is_none_or(|ds| {
        // What sits inside a top-level block is judged by that block.
        ds.iter().filter(|d| d.within.is_empty()).any(|d| {
            let n = d.name.as_str();
            !(HARMLESS.contains(&n)
                || REAL_IP.contains(&n)
                || HTTP_DEFINITIONS.contains(&n)
                || HTTP_DEFINING_BLOCKS.contains(&n))
        })
    })
}

/// Why ingress-nginx denies every location of an Ingress whose
/// allow/deny-list annotation (already trimmed, as its `parseString`
/// trims) is `v`, or `None`. Its `ipallowlist`/`ipdenylist` parsers turn an
/// empty value, and any empty item of the comma-separated list (`a,`,
/// `a,,b`, `a, `: `net.ParseIPNets` accepts neither as an address nor a
/// CIDR and fails the whole list), into a `LocationDeniedError`, which
/// nginx.tmpl renders as `return 503` for every client. The realip Ingress
/// mode keeps its own rule (it skips empty items).
fn denied_list(v: &str) -> Option<String> {
    if v.is_empty() {
        return Some("the value is empty: ingress-nginx cannot parse it and refuses every location of the Ingress to every client (503), so the Ingress is emitted deny-all".into());
    }
    v.split(',').any(|i| i.trim().is_empty()).then(|| {
        format!("`{v}` has an empty item: ingress-nginx fails the whole list on it and refuses every location of the Ingress to every client (503), so the Ingress is emitted deny-all")
    })
}

/// A boolean as ingress-nginx reads it: Go's `strconv.ParseBool`, which
/// accepts exactly these spellings (not `yes`, not `tRuE`, and nothing
/// with surrounding spaces: ParseBool does not trim, so `" true"` is an
/// error there and the default applies).
pub(crate) fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn bool_value(v: &str) -> Result<bool, String> {
    go_bool(v).ok_or_else(|| {
        format!("{v:?} is not a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False; no spaces)")
    })
}

fn backend(o: &Object, b: &Node, services: &[Object]) -> Result<Backend, String> {
    let name = b.str_at(&["service", "name"]).or_else(|| b.str_at(&["serviceName"]));
    let Some(name) = name else {
        return Err("the backend is not a Service (resource backends cannot be converted)".into());
    };
    let number = b.str_at(&["service", "port", "number"]).or_else(|| b.str_at(&["servicePort"]));
    let port_name = b.str_at(&["service", "port", "name"]);
    if let Some(n) = number.and_then(|n| n.parse::<u16>().ok()) {
        return Ok(Backend { service: name.to_owned(), port: n });
    }
    // A named port (or legacy servicePort: name): the Service says which number.
    let pname = port_name.or(number).ok_or_else(|| format!("backend Service {name} has no port"))?;
    // The last copy wins, as for every object given twice.
    let svc = services
        .iter()
        .rev()
        .find(|s| s.kind == "Service" && s.namespace == o.namespace && s.name == name)
        .ok_or_else(|| {
            format!(
                "backend port `{pname}` is a name and Service {}/{name} is not in the input to resolve it",
                o.namespace
            )
        })?;
    svc.doc
        .at(&["spec", "ports"])
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .find(|p| p.str_at(&["name"]) == Some(pname))
        .and_then(|p| p.str_at(&["port"]))
        .and_then(|p| p.parse::<u16>().ok())
        .map(|port| Backend { service: name.to_owned(), port })
        .ok_or_else(|| format!("Service {}/{name} has no port named `{pname}`", o.namespace))
}

/// Reads one Ingress; [`Plan::deny_all`] says why when it must be left out.
#[allow(clippy::too_many_lines)] // one arm per annotation: the mapping table in one place
pub fn plan<'a>(
    o: &'a Object,
    setup: &Setup<'_>,
    target: Target,
    services: &[Object],
    report: &mut Report,
) -> Plan<'a> {
    let prefix = format!("{}/", setup.prefix);
    let anns: Vec<(String, String, usize)> = o
        .doc
        .at(&["metadata", "annotations"])
        .map(Node::entries)
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, v)| {
            let short = k.strip_prefix(&prefix)?;
            let raw = v.as_str().unwrap_or_default();
            // ingress-nginx trims the lines of a string annotation; an
            // integer one goes to Go's Atoi as written (`10 ` is no number).
            let value = if ATOI_KEYS.contains(&short) { raw } else { raw.trim() };
            Some((short.to_owned(), value.to_owned(), v.line))
        })
        .collect();
    let get = |k: &str| anns.iter().find(|(n, _, _)| n == k).map(|(_, v, _)| v.as_str());
    let mut entries: Vec<Entry> = Vec::new();
    let mut push = |key: &str, status: Status, to: &str, why: String| {
        let (value, line) = anns.iter().find(|(n, _, _)| n == key).map(|(_, v, l)| (v.clone(), *l)).unwrap_or_default();
        entries.push(Entry {
            object: o.id(),
            file: o.source.file.clone(),
            line,
            key: key.to_owned(),
            value,
            status,
            to: to.to_owned(),
            why,
        });
    };
    let eg = target == Target::EnvoyGateway;
    // ingress-nginx's validators of canary-by-header-value (BasicCharsRegex,
    // spaces removed) and canary-by-header-pattern (IsValidRegex): with
    // annotation validation on (or possibly on), a value that fails is
    // taken as '' (canary/main.go), and `always`/`never` decide.
    // The validators read the annotation as written, before the trim
    // (`checkAnnotation`): a tab or newline fails them (review 28).
    let (validating, _) = crate::drops::annotation_validation(setup);
    let raw = |k: &str| o.annotation(&format!("{prefix}{k}")).unwrap_or_default();
    let value_ok = |k: &str| {
        !validating || raw(k).replace(' ', "").bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/:".contains(&b))
    };
    let pattern_ok = |k: &str| {
        !validating || raw(k).bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/:^$[](){}*+?|&=\\".contains(&b))
    };
    let usable_header = get("canary-by-header").filter(|_| value_ok("canary-by-header")).and_then(canary_header);
    let usable_value =
        get("canary-by-header-value").is_some_and(|v| !v.is_empty() && value_ok("canary-by-header-value"));
    let usable_pattern =
        get("canary-by-header-pattern").is_some_and(|v| !v.is_empty() && pattern_ok("canary-by-header-pattern"));
    let access_kind = if eg { "SecurityPolicy" } else { "ClientAccessPolicy" };
    let rate_kind = if eg { "BackendTrafficPolicy" } else { "ClientAccessPolicy" };
    let access_to = format!("{access_kind} {}/{}", o.namespace, o.name);
    let rate_to = format!("{rate_kind} {}/{}", o.namespace, o.name);
    let mut fatal = false;
    let mut plan = Plan {
        obj: o,
        hosts: BTreeMap::new(),
        default_backend: None,
        fallback: None,
        fallback_denied: None,
        tls: Vec::new(),
        allow: None,
        deny: Vec::new(),
        rates: Vec::new(),
        ssl_redirect: None,
        force_ssl_redirect: None,
        app_root: None,
        redirect: None,
        canary: None,
        deny_all: None,
        denied: BTreeMap::new(),
    };
    let canary = get("canary").map(bool_value) == Some(Ok(true));
    let snippets_dropped = crate::setup::snippet_annotations_dropped(setup);
    let keyed_on = "keyed on the client resolved by the Gateway's client-IP policy (never the load balancer's address)";
    // Which annotation gives the allow list (review 31 H-2): from v1.9.1
    // `allowlist-source-range`, with `whitelist-source-range` read in its
    // place when it is absent or empty (checkAnnotation's alias); before,
    // `whitelist-source-range` alone. With the release unknown and both set
    // to different lists, which one applies is not known: left out.
    let release = crate::setup::controller_release(setup);
    let release_at_least = |since: (u32, u32, u32)| release.map(|r| r >= since);
    let allow_from: Result<&str, String> = {
        // As written: checkAnnotation reads the alias only when the
        // annotation's raw value is "", and takes it only when its own is
        // not "" (review 32 H-1: a lone empty whitelist is no list).
        let raw_of = |k: &str| o.annotation(&format!("{prefix}{k}"));
        let (a, w) = (raw_of("allowlist-source-range"), raw_of("whitelist-source-range"));
        let (a_set, w_set) = (a.is_some_and(|a| !a.is_empty()), w.is_some_and(|w| !w.is_empty()));
        let by_alias = if !a_set && w_set { "whitelist-source-range" } else { "allowlist-source-range" };
        match release_at_least((1, 9, 1)) {
            Some(true) => Ok(by_alias),
            None if a_set && w_set && get("allowlist-source-range") != get("whitelist-source-range") => Err(
                "allowlist-source-range and whitelist-source-range hold different lists, and which one ingress-nginx applies depends on its release (allowlist-source-range from v1.9.1; the controller's version is not known): the Ingress is left out".to_owned(),
            ),
            // Not known: the reading that refuses more (an empty
            // whitelist-source-range alone failed before v1.9.1).
            None if a_set || w.is_none() => Ok("allowlist-source-range"),
            Some(false) | None => Ok("whitelist-source-range"),
        }
    };
    // With annotation validation off, ingress-nginx's rate-limit parser
    // returns net.ParseCIDRs's error for a limit-allowlist that is not a
    // list of addresses, and the annotation extractor then leaves the
    // Ingress without any rate limit (ratelimit/main.go `Parse`,
    // annotations.go `Extract`; review 29 H3). With it on, the Ingress is
    // refused whole (`drops`).
    // Every request answered by a redirect (redirect.go: a non-empty
    // temporal-redirect, else permanent-redirect), in nginx's rewrite
    // phase: what runs after it (limit_conn, auth_request, auth_basic)
    // applies to nobody (review 30 H-2).
    // An Ingress without rules (a defaultBackend alone) can only be the
    // catch-all server's backend, where ingress-nginx applies neither its
    // redirect nor its rewrite annotations (app-root among them:
    // controller.go "Redirect and rewrite can affect the catch all
    // behavior, skip for now"; kubernetes/ingress-nginx#8713; review 36
    // H-2).
    let catch_all_only = o.doc.get("spec").and_then(|s| s.get("rules")).map(Node::items).unwrap_or_default().is_empty();
    let redirects_all = !canary
        && !catch_all_only
        && (get("temporal-redirect").is_some_and(|t| !t.is_empty())
            || get("permanent-redirect").is_some_and(|t| !t.is_empty()));
    let rate_parser_fails = if validating {
        None
    } else {
        let list = get("limit-allowlist").filter(|v| !v.is_empty()).or_else(|| get("limit-whitelist"));
        list.and_then(|v| crate::drops::go_parse_cidrs(v).err())
    };

    for (key, value, _) in &anns {
        let v = value.as_str();
        match key.as_str() {
            k @ ("limit-rps" | "limit-rpm" | "limit-burst-multiplier" | "limit-connections" | "limit-whitelist" | "limit-allowlist")
                if !canary && rate_parser_fails.is_some() =>
            {
                let item = rate_parser_fails.as_deref().unwrap_or_default();
                push(k, Status::Ignored, "", format!("the limit allow list has {item}, which is not an address or CIDR: ingress-nginx's rate-limit parser fails on it and, with annotation validation off, the Ingress gets no rate limit at all; nor does the output"));
            }
            // Canary Ingresses: ingress-nginx uses only the canary-* annotations; the rest come from the main Ingress.
            // …except client certificates: ingress-nginx puts a canary's on the server of its host (lib.rs's host_wide_restrictions).
            k @ ("auth-tls-secret" | "auth-tls-verify-client") if canary && restricting(k, v.trim()).is_some() => {
                push(k, Status::NotConverted, "", "ingress-nginx applies a canary's client-certificate settings to the whole server of its host (every location, the main Ingress's too; the catch-all server when no other Ingress has the host), which does not convert: every route of the host is emitted deny-all".into());
            }
            k if canary && !k.starts_with("canary") => {
                push(k, Status::Ignored, "", "ingress-nginx ignores this on a canary Ingress (the main Ingress's annotations apply)".into());
            }
            "whitelist-source-range" | "allowlist-source-range" if allow_from.is_err() => {
                fatal = true;
                push(key, Status::NotConverted, "", allow_from.clone().err().unwrap_or_default());
            }
            "whitelist-source-range" | "allowlist-source-range" if allow_from.as_deref() != Ok(key) => {
                let why = if key == "allowlist-source-range" {
                    "ingress-nginx reads allowlist-source-range from v1.9.1 only (the controller runs an older release): whitelist-source-range applies, or no list"
                } else if v.is_empty() {
                    "empty: ingress-nginx (v1.9.1 on) reads this old name in place of allowlist-source-range only when it is not empty, so no list applies, nor in the output"
                } else {
                    "allowlist-source-range, its newer name, is set and not empty, and wins (ingress-nginx reads whitelist-source-range only in its place when it is absent or empty)"
                };
                push(key, Status::Ignored, "", why.into());
            }
            "denylist-source-range" if release_at_least((1, 6, 4)) == Some(false) => {
                push(key, Status::Ignored, "", "ingress-nginx reads denylist-source-range from v1.6.4 only (the controller runs an older release)".into());
            }
            "whitelist-source-range" | "allowlist-source-range" => {
                if let Some(why) = denied_list(v) {
                    fatal = true;
                    push(key, Status::NotConverted, "", why);
                    continue;
                }
                // An empty list is rejected by ingress-nginx; `allow: []` is refused as Invalid by realip (it once meant everyone).
                match cidrs(v).and_then(|l| if l.is_empty() { Err("the list is empty".to_owned()) } else { Ok(l) }) {
                    Ok(list) => {
                        push(key, Status::Converted, &format!("{access_to} {}", if eg { "authorization (Allow rule, default Deny)" } else { "allow" }), format!("only these clients, {keyed_on}"));
                        plan.allow = Some(list);
                    }
                    Err(e) => {
                        fatal = true;
                        push(key, Status::NotConverted, "", format!("{e}: the Ingress is left out (its routes without the list would be open)"));
                    }
                }
            }
            "denylist-source-range" => match cidrs(v) {
                _ if denied_list(v).is_some() => {
                    fatal = true;
                    push(key, Status::NotConverted, "", denied_list(v).unwrap_or_default());
                }
                Ok(list) => {
                    push(key, Status::Converted, &format!("{access_to} {}", if eg { "authorization (Deny rule, first)" } else { "deny" }), format!("never these clients (deny wins over allow, as in nginx), {keyed_on}"));
                    plan.deny = list;
                }
                Err(e) => {
                    fatal = true;
                    push(key, Status::NotConverted, "", format!("{e}: the Ingress is left out"));
                }
            },
            "limit-rps" | "limit-rpm" => {
                let Some(rate) = rate_of(key, v, get("limit-burst-multiplier")) else {
                    if v.parse::<u64>() == Ok(0) {
                        push(key, Status::Ignored, "", "0: no limit, in ingress-nginx and in the output".into());
                    } else {
                        push(key, Status::NotConverted, "", format!("`{v}` is not a positive integer: ingress-nginx ignores it too when annotation validation is off (--enable-annotation-validation=false; with it on, the default since v1.12, a non-integer drops the whole Ingress, and this Ingress would not be here)"));
                    }
                    continue;
                };
                if let Some(var) = crate::setup::limit_key_not_client(setup) {
                    push(key, Status::NotConverted, "", format!("ingress-nginx keys this limit on `{var}` (the ConfigMap's limit-conn-zone-variable), not on the client address (with `$server_name` one bucket for every client of the host); the policies key limits on the client only: the limit is left out, the routes carry no limit"));
                    continue;
                }
                // ingress-nginx refuses limited requests with limit-req-status-code (default 503); the policies answer 429.
                let code = crate::setup::limit_req_status(setup);
                let status_note = if code == 429 { String::new() } else { format!("; limited requests get 429 where ingress-nginx answered {code} (limit-req-status-code)") };
                let other = if key == "limit-rps" { "limit-rpm" } else { "limit-rps" };
                let other_rate = get(other).and_then(|w| rate_of(other, w, get("limit-burst-multiplier")));
                if eg {
                    push(key, Status::Changed, &format!("{rate_to} rateLimit.local"), format!("{} requests per {} per client ({keyed_on}); Envoy's local limit has no burst: ingress-nginx let bursts of {} through; and it counts per route (each HTTPRoute rule, i.e. each path, has its own bucket: Envoy Gateway applies `shared` to global rules only), where ingress-nginx's zone is one per Ingress: a client gets the rate on each path of the Ingress{status_note}", rate.requests, rate.unit.to_ascii_lowercase(), rate.burst));
                    plan.rates.push(rate);
                } else if let Some(o) = other_rate {
                    // nginx applies both limit_req zones; a ClientAccessPolicy holds one
                    // bucket: the lower rate and the smaller burst of the two.
                    let both = Rate { per_second: rate.per_second.min(o.per_second), burst: rate.burst.min(o.burst), ..rate.clone() };
                    push(key, Status::Changed, &format!("{rate_to} rateLimit"), format!("with {other} too: ingress-nginx applies both limits, a ClientAccessPolicy holds one bucket, so it gets the lower rate and the smaller burst of the two (perSecond {}, burst {}) per client address (ipv6PrefixLength 128), {keyed_on}{status_note}", both.per_second, both.burst));
                    if key == "limit-rps" {
                        plan.rates.push(both);
                    }
                } else {
                    let status = if status_note.is_empty() { Status::Converted } else { Status::Changed };
                    push(key, status, &format!("{rate_to} rateLimit"), format!("perSecond {}, burst {} per client address (ipv6PrefixLength 128, as nginx's $binary_remote_addr; scope Local: per replica, like nginx's zones), {keyed_on}{status_note}", rate.per_second, rate.burst));
                    plan.rates.push(rate);
                }
            }
            "limit-burst-multiplier" => {
                let ok = v.parse::<i64>().is_ok();
                let refused = burst_refused(get);
                if let Some(b) = refused.first() {
                    // (migrate review 17 R17-3, review 18 F1) Go's Atoi takes it,
                    // and `limit_req … burst=0` (or negative: the product wraps
                    // past an int) is refused by nginx.
                    fatal = true;
                    push(key, Status::NotConverted, "", format!("`{v}` makes ingress-nginx render `limit_req … burst={b}` (the limit times the multiplier in Go's 64-bit int, which wraps), which nginx refuses (a burst must be positive): an admission webhook that runs `nginx -t` (ingress-nginx before v1.11.5 and v1.12.1) refuses this Ingress at apply time; otherwise every reload with it fails and the last good configuration keeps serving (then every Ingress is emitted deny-all, see their notes); the Ingress is left out"));
                } else if !ok {
                    push(key, Status::NotConverted, "", format!("`{v}` is not a whole number to Go's strconv.Atoi (or past the range of an int): ingress-nginx uses 5, so does the output"));
                } else if get("limit-rps").is_none() && get("limit-rpm").is_none() {
                    push(key, Status::Ignored, "", "no limit-rps or limit-rpm to multiply".into());
                } else if eg {
                    push(key, Status::Changed, "", "Envoy Gateway's local rate limit has no burst".into());
                } else {
                    push(key, Status::Converted, &format!("{rate_to} rateLimit.burst"), "burst = limit × multiplier + 1: nginx's `burst=` lets that many through at once with the first request".into());
                }
            }
            "global-rate-limit" => {
                if let Some(why) = global_limit_ignored(setup) {
                    push(key, Status::Ignored, "", why);
                    continue;
                }
                let window = get("global-rate-limit-window");
                // globalratelimit: `if limit == 0 || rawWindowSize == ""` no limit is set,
                // and global_throttle.lua skips a window of 0 seconds.
                let no_window = window.map(str::trim).is_none_or(str::is_empty);
                let zero_window = window.map(str::trim).is_some_and(|w| {
                    crate::drops::go_duration(w) && !w.chars().any(|c| c.is_ascii_digit() && c != '0')
                });
                if no_window || zero_window || v.parse::<i64>() == Ok(0) {
                    let what = if no_window { "no global-rate-limit-window".to_owned() } else if zero_window { format!("a window of 0 (`{}`)", window.unwrap_or_default()) } else { "a limit of 0".to_owned() };
                    push(key, Status::Ignored, "", format!("{what}: ingress-nginx sets no global limit then (globalratelimit needs both, and its throttle skips a window of 0), so neither does the output"));
                    continue;
                }
                // globalratelimit reads the limit with Atoi (a negative one passes, and
                // only 0 disables it); lua-resty-global-throttle's sliding window then
                // finds `count >= limit` for every request: 429 to every client (while
                // the window is at least 1 s, else the throttle skips it).
                let window_secs = window.map(realip_kube::ingress::parse_window);
                if v.parse::<i64>().is_ok_and(|l| l < 0) && matches!(window_secs, Some(Ok(s)) if s >= 1.0) {
                    fatal = true;
                    push(key, Status::NotConverted, "", format!("a negative limit (`{v}`): ingress-nginx accepts it (only 0 disables the limit) and its global throttle then finds every request over the limit, answering 429 to every client; the Ingress is emitted deny-all"));
                    continue;
                }
                let key_ok = get("global-rate-limit-key").is_none_or(|k| matches!(k, "$remote_addr" | "$binary_remote_addr"));
                let n = v.parse::<u64>().ok().filter(|n| *n > 0);
                let secs = window.map(realip_kube::ingress::parse_window);
                let (Some(n), Some(Ok(secs))) = (n, secs) else {
                    push(key, Status::NotConverted, "", format!("`{v}` per `{}` is not a positive count per duration (both annotations are required)", window.unwrap_or("(no window)")));
                    continue;
                };
                if !key_ok {
                    push(key, Status::NotConverted, "", "global-rate-limit-key is not the client address: the policies key limits on the resolved client only".into());
                    continue;
                }
                // globalratelimit: `WindowSize = int(windowSize.Seconds())`, and
                // global_throttle.lua skips a window of 0.
                if secs < 1.0 {
                    push(key, Status::Ignored, "", format!("the window of {secs} s is under 1 s: ingress-nginx truncates it to whole seconds, 0, and then never applies the limit; neither does the output"));
                    continue;
                }
                let truncated = if secs.fract() == 0.0 { String::new() } else { format!(" (ingress-nginx truncates the window of {secs} s to whole seconds)") };
                let secs = secs.trunc();
                let unsure = global_limit_unsure(setup);
                let unit = [(1.0, "Second"), (60.0, "Minute"), (3600.0, "Hour"), (86_400.0, "Day")]
                    .iter()
                    .find(|(s, _)| (secs - s).abs() < f64::EPSILON)
                    .map(|(_, u)| *u);
                #[allow(clippy::cast_precision_loss)] // request counts are small integers
                let rate = Rate { per_second: n as f64 / secs, burst: n as f64, requests: n, unit: unit.unwrap_or("Second"), global: true };
                if eg {
                    if unit.is_none() {
                        push(key, Status::NotConverted, "", format!("Envoy Gateway's limits count per second, minute, hour or day; a window of {secs} s has no equivalent"));
                        continue;
                    }
                    let status = if unsure.is_some() { Status::Changed } else { Status::Converted };
                    push(key, status, &format!("{rate_to} rateLimit.global"), format!("{n} requests per {} per client across replicas ({keyed_on}), `shared: true`: one bucket per client for all the Ingress's routes, as ingress-nginx; needs Envoy Gateway's rate limit service{}", unit.unwrap_or("Second").to_ascii_lowercase(), unsure.unwrap_or_default()));
                } else {
                    let status = if unsure.is_some() { Status::Changed } else { Status::Converted };
                    push(key, status, &format!("{rate_to} rateLimit (scope Global)"), format!("{n} per {secs} s{truncated} per client shared by every replica (the proxy's [rate_limit_store], Redis, where ingress-nginx used memcached), {keyed_on}{}", unsure.unwrap_or_default()));
                }
                plan.rates.push(rate);
            }
            "global-rate-limit-window" | "global-rate-limit-key" => {
                let status = if get("global-rate-limit").is_some() { Status::Converted } else { Status::Ignored };
                push(key, status, &format!("{rate_to} rateLimit"), "read with global-rate-limit".into());
            }
            "global-rate-limit-ignored-cidrs" => match global_limit_ignored(setup) {
                Some(why) => push(key, Status::Ignored, "", why),
                None => push(key, Status::NotConverted, "", format!("clients exempt from the rate limit: {rate_kind} has no exemption list")),
            },
            "limit-whitelist" | "limit-allowlist" if v.is_empty() => {
                push(key, Status::Ignored, "", "empty: no client is exempt from the rate limit, in ingress-nginx (net.ParseCIDRs of '' is no list) and in the output".into());
            }
            "limit-whitelist" if get("limit-allowlist").is_some_and(|a| !a.is_empty()) => {
                push(key, Status::Ignored, "", "limit-allowlist, its newer name, is set too and wins".into());
            }
            "limit-whitelist" | "limit-allowlist" => {
                // realip's one ClientAccessPolicy holds both; Envoy Gateway has two kinds.
                let kinds = if access_kind == rate_kind { format!("{access_kind} has") } else { format!("{access_kind} and {rate_kind} have") };
                push(key, Status::NotConverted, "", format!("clients exempt from the rate limit: {kinds} no exemption list; put those clients behind a separate route or accept the limit for them"));
            }
            "enable-global-auth" => {
                let global = setup.configmap.and_then(|c| c.doc.str_at(&["data", "global-auth-url"])).is_some_and(|u| !u.trim().is_empty());
                match (go_bool(v), global) {
                    (Some(b), true) => push(key, Status::Converted, "", if b { "behind the ConfigMap's global-auth-url (not converted: the Ingress is left out)".into() } else { "not behind the ConfigMap's global-auth-url: the Ingress is converted without it, as ingress-nginx serves it".into() }),
                    (Some(_), false) => push(key, Status::Ignored, "", "no global-auth-url in the ConfigMap".into()),
                    (None, _) => push(key, Status::NotConverted, "", format!("`{v}` is not a boolean to ingress-nginx")),
                }
            }
            k if k.ends_with("-snippet") && snippets_dropped.is_some() => {
                push(k, Status::Ignored, "", format!("ingress-nginx drops snippet annotations unless allow-snippet-annotations is true: {}", snippets_dropped.as_deref().unwrap_or_default()));
            }
            k @ ("auth-url" | "auth-type" | "auth-secret" | "limit-connections")
                if redirects_all && restricting(k, v).is_some() =>
            {
                push(k, Status::Ignored, "", "every request of this Ingress is answered by its redirect (permanent-redirect / temporal-redirect), which nginx returns in its rewrite phase, before limit_conn and authentication run: ingress-nginx applied it to nobody, nor does the output".into());
            }
            k if restricting(k, v).is_some() => {
                // Emitted without it, the route would let in what ingress-nginx refused.
                fatal = true;
                let what = restricting(k, v).unwrap_or_default();
                push(k, Status::NotConverted, "", format!("{what}: it restricts who gets through and has no conversion here, so the Ingress is left out (emitted without it, the route would be open); protect the routes by hand (e.g. Envoy Gateway's SecurityPolicy extAuth / basicAuth / jwt) and add them"));
            }
            "ssl-redirect" | "force-ssl-redirect" if !catch_all_only => match bool_value(v) {
                Ok(b) => {
                    if key == "ssl-redirect" {
                        plan.ssl_redirect = Some(b);
                    } else {
                        plan.force_ssl_redirect = Some(b);
                    }
                    push(key, Status::Converted, crate::emit::REDIRECT_TO, if b { "plain HTTP is redirected".into() } else { "no redirect".into() });
                }
                Err(e) => push(key, Status::NotConverted, "", e),
            },
            "backend-protocol" => match v.to_ascii_uppercase().as_str() {
                "HTTP" => push(key, Status::Converted, "HTTPRoute backendRefs", "plain HTTP to the backend, the Gateway's default".into()),
                "HTTPS" => {
                    fatal = true;
                    push(key, Status::NotConverted, "", "HTTPS to the backend needs a BackendTLSPolicy, which verifies the backend's certificate (caCertificateRefs or wellKnownCACertificates + hostname) where ingress-nginx verified nothing: write one for this Service; the Ingress is left out so that no route speaks plain HTTP to a TLS port".into());
                }
                other => {
                    fatal = true;
                    push(key, Status::NotConverted, "", format!("backend protocol {other} has no HTTPRoute equivalent (GRPC: a GRPCRoute by hand); the Ingress is left out"));
                }
            },
            "proxy-body-size" => push(key, Status::NotConverted, "", format!("ingress-nginx answered 413 to request bodies over {v} on this Ingress; no Gateway API or policy field limits the request body per route: set it in the data plane (realip's proxy: `limits.max_body_bytes` in realip.toml, for every route; Envoy: a buffer filter via EnvoyPatchPolicy) or in the app")),
            "rewrite-target" | "use-regex" => {} // per path, below
            "app-root"
            | "permanent-redirect"
            | "temporal-redirect"
            | "permanent-redirect-code"
            | "temporal-redirect-code"
            | "ssl-redirect"
            | "force-ssl-redirect"
                if catch_all_only =>
            {
                push(key, Status::Ignored, "", CATCH_ALL_SKIPS.into());
            }
            "app-root" if applied_path_annotation(o, setup, key).is_none() => push(key, Status::Ignored, "", if v.is_empty() {
                "empty: no redirect, in ingress-nginx and in the output".to_owned()
            } else {
                format!("`{v}` fails ingress-nginx's validator (`^/?[-._~a-zA-Z0-9/:$]*$`, read as written) with annotation validation on (--enable-annotation-validation, the default since v1.12; taken as on when not known): ingress-nginx takes '' instead and does not redirect /, nor does the output")
            }),
            "app-root" => {
                if v.starts_with('/') && !v.contains('$') {
                    plan.app_root = Some(v.to_owned());
                    push(key, Status::Converted, "HTTPRoute rule: Exact / → RequestRedirect 302", "requests for / are redirected to the app root".into());
                } else if !v.starts_with('/') {
                    // rewrite/main.go: url.ParseRequestURI fails (`app`) or the
                    // value is an absolute URL (`http:x`): AppRoot becomes ''.
                    push(key, Status::Ignored, "", format!("`{v}` is not a path ingress-nginx takes (url.ParseRequestURI refuses it, or it is an absolute URL): it uses '' and does not redirect /, nor does the output"));
                } else {
                    push(key, Status::NotConverted, "", format!("`{v}` names an nginx variable: no RequestRedirect path can hold it"));
                }
            }
            "permanent-redirect" | "temporal-redirect" => {
                // redirect.go: a non-empty temporal-redirect wins; its code must be
                // 300–307 (else 302), the permanent one's 300–308 (else 301).
                if key == "permanent-redirect" && get("temporal-redirect").is_some_and(|t| !t.is_empty()) {
                    push(key, Status::Ignored, "", "temporal-redirect is set too and wins, as in ingress-nginx".into());
                    continue;
                }
                if v.is_empty() {
                    push(key, Status::Ignored, "", "empty: no redirect, in ingress-nginx and in the output".into());
                    continue;
                }
                let code_key = format!("{key}-code");
                let (default, max) = if key == "permanent-redirect" { (301, 308) } else { (302, 307) };
                let code = get(&code_key).and_then(|c| c.parse::<u16>().ok()).filter(|c| (300..=max).contains(c)).unwrap_or(default);
                let converted = if matches!(code, 301 | 302 | 303 | 307 | 308) {
                    redirect_url(v, code)
                } else {
                    Err(format!("status {code} is not one a RequestRedirect can send (301, 302, 303, 307, 308)"))
                };
                match converted {
                    Ok(r) => {
                        plan.redirect = Some(r);
                        push(key, Status::Converted, "HTTPRoute rules: RequestRedirect (no backend)", format!("every request is answered {code} to this URL (the request path is not appended, as in nginx)"));
                    }
                    Err(e) => {
                        // ingress-nginx answered every request with the redirect; emitted
                        // without it, the routes would reach the backend instead.
                        fatal = true;
                        push(key, Status::NotConverted, "", format!("{e}; ingress-nginx never forwarded these requests, so the Ingress is left out"));
                    }
                }
            }
            "permanent-redirect-code" | "temporal-redirect-code" => {
                let (redirect, max, default) = if key == "permanent-redirect-code" { ("permanent-redirect", 308, 301) } else { ("temporal-redirect", 307, 302) };
                let used = get(redirect).is_some_and(|r| !r.is_empty())
                    && (redirect == "temporal-redirect" || get("temporal-redirect").is_none_or(str::is_empty));
                if key == "permanent-redirect-code" && get("temporal-redirect").is_some_and(|t| !t.is_empty()) {
                    push(key, Status::Ignored, "", "temporal-redirect is set and wins: ingress-nginx neither reads nor validates this code".into());
                } else if !used {
                    push(key, Status::Ignored, "", format!("no {redirect} in effect, so the code is not used (with annotation validation on, ingress-nginx still validates the value)"));
                } else if v.parse::<u16>().is_ok_and(|c| (300..=max).contains(&c)) {
                    push(key, Status::Converted, "RequestRedirect statusCode", "the redirect's status code".into());
                } else {
                    push(key, Status::Changed, "RequestRedirect statusCode", format!("`{v}` is not a status 300–{max}: ingress-nginx uses {default} instead, so does the output"));
                }
            }
            "canary" => match bool_value(v) {
                Ok(_) => push(key, Status::Converted, "the main Ingress's HTTPRoute rules", if canary { "folded into the main Ingress's routes as weighted / header-matched backends".into() } else { "not a canary".into() }),
                Err(e) => push(key, Status::NotConverted, "", format!("{e}: ingress-nginx cannot read it; the output treats the Ingress as a main one, not a canary")),
            },
            "canary-weight-total" if v.parse::<u32>().is_ok_and(|t| t <= 100) => {
                push(key, Status::Ignored, "", "balancer.lua uses canary-weight-total only above 100 (else the total is 100), so does the output".into());
            }
            "canary-weight" | "canary-weight-total" => match go_atoi(v) {
                Some(n) if n >= 0 && get("canary-weight-total").and_then(go_atoi).is_some_and(|t| t > 1_000_000) => push(key, Status::Changed, "HTTPRoute backendRefs weight", "the share of requests that go to the canary, scaled to the HTTPRoute's largest weight (1,000,000): the share is kept to a millionth (a share above none and below all stays so)".into()),
                Some(n) if n >= 0 => push(key, Status::Converted, "HTTPRoute backendRefs weight", "the share of requests that go to the canary".into()),
                Some(_) => push(key, Status::Ignored, "", "negative: balancer.lua sends no request to the canary by weight, nor does the output".into()),
                None => push(key, Status::Ignored, "", format!("{v:?} is not a number to Go's Atoi (ingress-nginx does not trim it): ingress-nginx takes 0, so does the output")),
            },
            "canary-by-header" if !value_ok(key) => push(key, Status::Ignored, "", "fails ingress-nginx's validator (letters, digits and `-._~/:`, spaces removed, read as written) with annotation validation on (--enable-annotation-validation, the default since v1.12; taken as on when not known): ingress-nginx takes '' instead and routes by no header, nor does the output".into()),
            "canary-by-header" if !eg && canary_header(v).is_some() && usable_pattern && !usable_value => push(key, Status::NotConverted, "", "requests are matched on this header by canary-by-header-pattern, which realip's Gateway cannot match (see that entry): no header rule is emitted".into()),
            "canary-by-header" => match canary_header(v) {
                None if v.is_empty() => push(key, Status::Ignored, "", "empty: ingress-nginx reads no header (its parseString refuses an empty value), nor does the output".into()),
                None => push(key, Status::Ignored, "", "nginx ignores request headers whose names have characters other than letters, digits, `-` and `_`, so ingress-nginx never matches this one: no header rule, as in ingress-nginx".into()),
                Some(h) if h != v => push(key, Status::Converted, "HTTPRoute rule with a header match", format!("requests with the header go to the canary (`never` keeps them on the main backend); matched as `{h}`: nginx reads it as $http_{}, where `_` stands for `-` (and a request header spelled with `_` is ignored)", v.to_ascii_lowercase())),
                Some(_) => push(key, Status::Converted, "HTTPRoute rule with a header match", "requests with the header go to the canary (`never` keeps them on the main backend)".into()),
            },
            "canary-by-header-value" | "canary-by-header-pattern" if usable_header.is_none() => {
                push(key, Status::Ignored, "", "without a usable canary-by-header ingress-nginx never reads it, nor does the output".into());
            }
            "canary-by-header-value" | "canary-by-header-pattern" if v.is_empty() => {
                push(key, Status::Ignored, "", "empty: balancer.lua skips it, so does the output".into());
            }
            "canary-by-header-value" if !value_ok(key) => push(key, Status::Ignored, "", "fails ingress-nginx's validator (letters, digits and `-._~/:`, spaces removed) with annotation validation on (--enable-annotation-validation, the default since v1.12; taken as on when not known): ingress-nginx takes '' instead, so `always`/`never` decide, as in the output".into()),
            "canary-by-header-pattern" if !pattern_ok(key) => push(key, Status::Ignored, "", "fails ingress-nginx's validator (letters, digits, `-._~/:` and `^$[](){}*+?|&=\\`, no spaces) with annotation validation on (--enable-annotation-validation, the default since v1.12; taken as on when not known): ingress-nginx takes '' instead, so `always`/`never` decide, as in the output".into()),
            "canary-by-header-value" => push(key, Status::Converted, "HTTPRoute rule with a header match", "requests whose header has exactly this value go to the canary".into()),
            "canary-by-header-pattern" if usable_value => {
                push(key, Status::Ignored, "", "canary-by-header-value is set, and balancer.lua then never looks at the pattern, nor does the output".into());
            }
            "canary-by-header-pattern" if eg => push(key, Status::Changed, "HTTPRoute rule with a RegularExpression header match", format!("`.*(?:{v}).*`: ingress-nginx (ngx.re.match) finds the pattern anywhere in the value, Envoy matches the whole value, so the pattern is wrapped; regular-expression header matches are Extended support and use Envoy's RE2 dialect, not PCRE (no look-around, no back-references)")),
            "canary-by-header-pattern" => push(key, Status::NotConverted, "", "realip's Gateway matches headers by exact value only, so no header rule is emitted: requests whose header matches the pattern go by the canary's weight instead (as balancer.lua does for those that do not match); to keep them on the canary, send a fixed value and use canary-by-header-value".into()),
            "canary-by-cookie" => push(key, Status::NotConverted, "", "HTTPRoute cannot match a cookie: route the canary by header instead".into()),
            "server-alias" if !v.trim().is_empty() => push(key, Status::NotConverted, "", "ingress-nginx's server of this Ingress's host also answers these names (nginx `server_name`), with every location of the host, when this Ingress is the first (oldest, then greater namespace/name) to set server-alias on that host and no Ingress has the name as its host; the output does not serve the host's routes under them: each such name is emitted as a deny-all route (see the `host` entries), so no wildcard or host-less route takes it".into()),
            "from-to-www-redirect" if go_bool(v) == Some(true) => push(key, Status::NotConverted, "", "ingress-nginx adds a server for the www twin of each host of this Ingress (www.host, or host without `www.`) unless an Ingress has that host, answering every request with a redirect to the host; not converted: each such twin is emitted as a deny-all route (see the `host` entries), so no wildcard or host-less route takes it".into()),
            "from-to-www-redirect" | "server-alias" => push(key, Status::Ignored, "", "off or empty: ingress-nginx adds no server name for it".into()),
            k if k.ends_with("-snippet") => push(k, Status::NotConverted, "", "raw nginx configuration is never converted: rewrite what it does with Gateway API filters or policies by hand".into()),
            k => push(k, Status::NotConverted, "", "not handled by realip migrate: check whether the route needs an equivalent".into()),
        }
    }
    if let Some(c) = o.annotation("kubernetes.io/ingress.class") {
        entries.push(Entry {
            object: o.id(),
            file: o.source.file.clone(),
            line: o.line_of(&["metadata", "annotations", "kubernetes.io/ingress.class"]),
            key: "kubernetes.io/ingress.class".into(),
            value: c.to_owned(),
            status: Status::Converted,
            to: "HTTPRoute parentRefs".into(),
            why: "the controller that serves it: the routes attach to the migrated Gateway".into(),
        });
    }
    if canary {
        // Go's Atoi; a negative weight sends nothing, as none.
        let num = |k: &str| get(k).and_then(go_atoi).and_then(|n| u64::try_from(n).ok());
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty()).map(str::to_owned);
        let header = usable_header.clone();
        let header_value = nonempty("canary-by-header-value").filter(|_| value_ok("canary-by-header-value"));
        // balancer.lua searches the value for the pattern; Envoy matches it whole.
        let header_pattern = nonempty("canary-by-header-pattern")
            .filter(|_| pattern_ok("canary-by-header-pattern"))
            .filter(|_| header_value.is_none());
        // With a pattern, balancer.lua never reads `always`/`never`: a
        // pattern realip cannot match leaves no header rule at all.
        let header = header.filter(|_| eg || header_value.is_some() || header_pattern.is_none());
        plan.canary = Some(Canary {
            weight: num("canary-weight"),
            // balancer.lua: the total counts only above 100.
            total: num("canary-weight-total").filter(|t| *t > 100).unwrap_or(100),
            header_pattern: header_pattern.filter(|_| eg && header.is_some()).map(|p| format!(".*(?:{p}).*")),
            header_value: header_value.filter(|_| header.is_some()),
            header,
        });
    }
    // Paths, with use-regex / rewrite-target.
    let rewrite_target = if canary { None } else { applied_path_annotation(o, setup, "rewrite-target") };
    let use_regex = !canary && get("use-regex").map(bool_value) == Some(Ok(true));
    let mut path_entries: Vec<(String, Status, String, String)> = Vec::new();
    let spec = o.doc.get("spec");
    for rule in spec.and_then(|s| s.get("rules")).map(Node::items).unwrap_or_default() {
        let host = rule.str_at(&["host"]).map(str::to_owned);
        for p in rule.at(&["http", "paths"]).map(Node::items).unwrap_or_default() {
            // ingress-nginx serves an empty path as `/`.
            let path = p.str_at(&["path"]).filter(|p| !p.is_empty()).unwrap_or("/").to_owned();
            let ptype = crate::merge::nginx_path_type(p.str_at(&["pathType"]), setup);
            let regex_mode = use_regex || rewrite_target.is_some();
            let mut deny = |e: String, path_entries: &mut Vec<(String, Status, String, String)>| {
                let (kind, value) = deny_match(&path, ptype == "Exact" && !regex_mode, regex_mode);
                path_entries.push((
                    format!("path {path}"),
                    Status::NotConverted,
                    String::new(),
                    format!("{e}; {LEFT_OUT_DENIED}"),
                ));
                plan.denied.entry(host.clone()).or_default().push(Denied {
                    kind,
                    value,
                    raw: path.clone(),
                    path_type: ptype.to_owned(),
                });
            };
            let be = match p.get("backend").map(|b| backend(o, b, services)) {
                Some(Ok(b)) => b,
                Some(Err(e)) => {
                    deny(e, &mut path_entries);
                    continue;
                }
                None => continue,
            };
            let converted = if let Some(t) = rewrite_target {
                rewrite(&path, t).map(|(k, v, r)| (k, v, Some(r)))
            } else if use_regex && !literal(&path) {
                if eg {
                    // nginx's `~* "^PATH"` matches a prefix of the path; Envoy's safe_regex
                    // must match the whole path, so what may follow is added (not after `$`).
                    let tail = if path.ends_with('$') { "" } else { ".*" };
                    Ok((PathKind::Regex, format!("^(?:{path}){tail}"), None))
                } else {
                    Err(format!(
                        "path `{path}` is a regular expression: realip matches path prefixes and exact paths only"
                    ))
                }
            } else if ptype == "Exact" && !use_regex {
                Ok((PathKind::Exact, path.clone(), None))
            } else {
                Ok((PathKind::Prefix, path.clone(), None))
            };
            let converted = converted.and_then(|(kind, value, rewrite)| {
                // A canary's paths only name its main Ingress's (never emitted as matches).
                if canary || kind == PathKind::Regex || gateway_path_ok(&value) {
                    Ok((kind, value, rewrite))
                } else {
                    Err(format!("`{value}` is not a path the Gateway API accepts (its characters, `//`, `/./`, `%2f`, `#`): the API server would reject the whole HTTPRoute"))
                }
            });
            // nginx serves an ImplementationSpecific path (outside regex mode) from
            // `location /admin`, a string prefix: /admin.php and /administrator too,
            // which PathPrefix /admin (whole segments) does not match.
            let string_prefix = !canary
                && !regex_mode
                && ptype == "ImplementationSpecific"
                && !path.ends_with('/')
                && matches!(converted, Ok((PathKind::Prefix, _, _)));
            let restricted = plan.allow.is_some() || !plan.deny.is_empty() || !plan.rates.is_empty();
            if string_prefix && restricted {
                deny(format!("`{path}` (Prefix or ImplementationSpecific) is a string prefix in ingress-nginx before v0.41 (`location {path}` also takes {path}.php, {path}-x, …, under this Ingress's allow/deny list or rate limit); PathPrefix matches whole segments, so those requests would reach the host's other routes unrestricted: end the path in `/` in the Ingress (or upgrade the controller: since v0.41 a Prefix path is served by segments)"), &mut path_entries);
                continue;
            }
            if string_prefix {
                path_entries.push((format!("path {path}"), Status::Changed, format!("HTTPRoute match PathPrefix {path}"), format!("`{path}` (Prefix or ImplementationSpecific) is a string prefix in ingress-nginx before v0.41 (`location {path}` also takes {path}.php, {path}-x, …); PathPrefix matches whole segments only: those requests go to the host's other routes")));
            }
            match converted {
                Ok((kind, value, rewrite)) => {
                    if !canary
                        && !regex_mode
                        && matches!(ptype, "Prefix" | "ImplementationSpecific")
                        && path.len() > 1
                        && path.ends_with('/')
                    {
                        // ingress-nginx adds `= /p` only for Prefix paths without the slash (and before v0.41 never).
                        let bare = path.trim_end_matches('/');
                        path_entries.push((format!("path {path}"), Status::Changed, format!("HTTPRoute match PathPrefix {value}"), format!("ingress-nginx serves `{path}` from `location {path}` alone (no `= {bare}`), so nginx answers `{bare}` itself with a 301 to `{path}` (its redirect for a prefix location ending in `/`), unless another location of the host takes `{bare}`; PathPrefix {value} matches `{bare}` too and forwards it to the backend directly")));
                    }
                    if rewrite_target.is_some() || use_regex {
                        let what = match (&rewrite, kind) {
                            (Some(Rewrite::Full(t)), _) => {
                                format!("PathPrefix {value} + URLRewrite ReplaceFullPath {t}")
                            }
                            (Some(Rewrite::Prefix(t)), _) => {
                                format!("PathPrefix {value} + URLRewrite ReplacePrefixMatch {t}")
                            }
                            (None, PathKind::Regex) => format!("RegularExpression {value}"),
                            (None, _) => format!("PathPrefix {value}"),
                        };
                        let mut why = String::from("ingress-nginx's regex locations match case-insensitively; HTTPRoute matches are case-sensitive");
                        if let (Some(bare), Some(Rewrite::Prefix(r))) =
                            (path.strip_suffix("/(.*)").or_else(|| path.strip_suffix("(/.*)")), &rewrite)
                        {
                            let _ = write!(why, "; nginx's `^{path}` needs the `/` after `{bare}`, so a request for `{bare}` itself went to another location of the host (or 404): PathPrefix {bare} takes it too, rewritten to `{r}`");
                        }
                        path_entries.push((
                            format!("path {path}"),
                            Status::Changed,
                            format!("HTTPRoute match {what}"),
                            why,
                        ));
                    }
                    plan.hosts.entry(host.clone()).or_default().push(PathRule {
                        kind,
                        value,
                        backend: be,
                        rewrite,
                        raw: path.clone(),
                        path_type: ptype.to_owned(),
                        slash_location: !canary && !regex_mode && ptype == "Prefix" && !path.ends_with('/'),
                    });
                }
                Err(e) => deny(e, &mut path_entries),
            }
        }
    }
    for (key, status, to, why) in path_entries {
        let line = o.line_of(&["spec", "rules"]);
        entries.push(Entry {
            object: o.id(),
            file: o.source.file.clone(),
            line,
            key,
            value: String::new(),
            status,
            to,
            why,
        });
    }
    // global-rate-limit-window / -key are read with global-rate-limit: they
    // share its outcome (a dropped limit does not convert its window).
    if let Some(g) = entries.iter().find(|e| e.key == "global-rate-limit").map(|e| (e.status, e.to.clone())) {
        for e in entries
            .iter_mut()
            .filter(|e| matches!(e.key.as_str(), "global-rate-limit-window" | "global-rate-limit-key"))
        {
            (e.status, e.to) = g.clone();
            e.why = match g.0 {
                Status::NotConverted => "read with global-rate-limit, which is not converted (see it)".into(),
                Status::Ignored => {
                    "read with global-rate-limit, which ingress-nginx never applied here (see it)".into()
                }
                _ => "read with global-rate-limit".into(),
            };
        }
    }
    // realip: a ClientAccessPolicy holds one bucket. ingress-nginx applies the
    // local limit (per replica) and global-rate-limit (shared) both: one
    // bucket shared by every replica with the lower rate and the smaller
    // burst lets no client through more than either did.
    if !eg {
        if let (Some(l), Some(g)) =
            (plan.rates.iter().find(|r| !r.global).cloned(), plan.rates.iter().find(|r| r.global).cloned())
        {
            let both =
                Rate { per_second: l.per_second.min(g.per_second), burst: l.burst.min(g.burst), global: true, ..g };
            let why = format!("ingress-nginx applies limit-rps/limit-rpm (per replica) and global-rate-limit (shared by every replica) both; a ClientAccessPolicy holds one bucket: perSecond {}, burst {} (the lower rate and the smaller burst of the two), scope Global, per client address (ipv6PrefixLength 128), {keyed_on}: never more than either limit let through, fewer requests than ingress-nginx allowed when several replicas each had the local limit", both.per_second, both.burst);
            for e in entries.iter_mut().filter(|e| {
                matches!(
                    e.key.as_str(),
                    "limit-rps"
                        | "limit-rpm"
                        | "global-rate-limit"
                        | "global-rate-limit-window"
                        | "global-rate-limit-key"
                ) && matches!(e.status, Status::Converted | Status::Changed)
            }) {
                e.status = Status::Changed;
                e.to = format!("{rate_to} rateLimit (scope Global)");
                e.why.clone_from(&why);
            }
            plan.rates = vec![both];
        }
    }
    for k in ["rewrite-target", "use-regex"] {
        if let Some((_, v, line)) = anns.iter().find(|(n, _, _)| n == k) {
            let (status, to, why) = if canary {
                (Status::Ignored, String::new(), "ingress-nginx ignores this on a canary Ingress".to_owned())
            } else if catch_all_only {
                (Status::Ignored, String::new(), CATCH_ALL_SKIPS.to_owned())
            } else if k == "rewrite-target" && rewrite_target.is_none() {
                let why = if v.is_empty() {
                    "empty: ingress-nginx reads no target and rewrites nothing, nor does the output".to_owned()
                } else {
                    format!("`{v}` fails ingress-nginx's validator (`^/?[-._~a-zA-Z0-9/:$]*$`, read as written) with annotation validation on (--enable-annotation-validation, the default since v1.12; taken as on when not known): ingress-nginx takes '' instead, so it neither rewrites nor serves the paths as regular expressions, nor does the output")
                };
                (Status::Ignored, String::new(), why)
            } else if k == "use-regex" && go_bool(v).is_none() {
                (
                    Status::NotConverted,
                    String::new(),
                    format!(
                        "{}: ingress-nginx cannot read it and keeps the default (false), so does the output",
                        bool_value(v).err().unwrap_or_default()
                    ),
                )
            } else {
                (
                    Status::Converted,
                    "HTTPRoute path matches and URLRewrite filters".to_owned(),
                    "per path, below".to_owned(),
                )
            };
            entries.push(Entry {
                object: o.id(),
                file: o.source.file.clone(),
                line: *line,
                key: k.into(),
                value: v.clone(),
                status,
                to,
                why,
            });
        }
    }
    if let Some(b) = spec.and_then(|s| s.get("defaultBackend").or_else(|| s.get("backend"))) {
        match backend(o, b, services) {
            Ok(b) => plan.default_backend = Some(b),
            Err(e) => entries.push(Entry {
                object: o.id(),
                file: o.source.file.clone(),
                line: b.line,
                key: "spec.defaultBackend".into(),
                value: String::new(),
                status: Status::NotConverted,
                to: String::new(),
                why: e,
            }),
        }
    }
    for t in spec.and_then(|s| s.get("tls")).map(Node::items).unwrap_or_default() {
        let hosts: Vec<String> = t
            .get("hosts")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .filter_map(Node::as_str)
            .map(str::to_owned)
            .collect();
        plan.tls.push((hosts, t.str_at(&["secretName"]).map(str::to_owned)));
    }
    // ingress-nginx gives every host of an Ingress that has a TLS section a
    // certificate (createServers: its own, one whose SAN matches, else the
    // default one) and redirects its plain HTTP; the output has HTTPS (and
    // the redirect) only for hosts a TLS entry names with a Secret (review
    // 33 H3): the others are reported, not served over plain HTTP silently.
    if !plan.tls.is_empty() && !canary {
        let named = |h: &str| {
            plan.tls.iter().any(|(hs, secret)| {
                secret.as_deref().is_some_and(|s| !s.is_empty()) && hs.iter().any(|t| t.eq_ignore_ascii_case(h))
            })
        };
        let uncovered: BTreeSet<&str> = plan.hosts.keys().flatten().map(String::as_str).filter(|h| !named(h)).collect();
        let hostless = plan.tls.iter().any(|(hs, s)| hs.is_empty() && s.as_deref().is_some_and(|s| !s.is_empty()));
        let why = if hostless {
            "the Ingress has a TLS section, so ingress-nginx redirected this host's plain HTTP to HTTPS; its TLS entry without hosts becomes the Gateway's HTTPS listener without hostname, which serves the host, but no redirect is emitted for a host no TLS entry names: plain HTTP is served, not redirected; add the host to the TLS entry"
        } else {
            "the Ingress has a TLS section, so ingress-nginx served this host over HTTPS with a certificate whose SAN matches it or its default one (--default-ssl-certificate), and redirected its plain HTTP; no TLS entry names the host with a Secret, so the output has no HTTPS listener for it and serves it over plain HTTP: add the host to a TLS entry with its Secret"
        };
        for h in uncovered {
            entries.push(Entry {
                object: o.id(),
                file: o.source.file.clone(),
                line: spec.and_then(|s| s.get("tls")).map_or(o.source.line, |t| t.line),
                key: format!("tls {h}"),
                value: String::new(),
                status: Status::NotConverted,
                to: String::new(),
                why: why.into(),
            });
        }
    }
    // With another --annotations-prefix, ingress-nginx's store reads none of
    // the default prefix's annotations (its webhook refuses such an Ingress:
    // lib.rs's webhook_refusal).
    if prefix != DEFAULT_PREFIX {
        for (k, v) in o.doc.at(&["metadata", "annotations"]).map(Node::entries).unwrap_or_default() {
            if k.starts_with(DEFAULT_PREFIX) {
                entries.push(Entry {
                    object: o.id(),
                    file: o.source.file.clone(),
                    line: v.line,
                    key: k.clone(),
                    value: v.as_str().unwrap_or_default().to_owned(),
                    status: Status::Ignored,
                    to: String::new(),
                    why: format!("the controller runs --annotations-prefix={}: ingress-nginx reads only {prefix}… annotations and ignores this one, so neither does the output", setup.prefix),
                });
            }
        }
    }
    report.entries.extend(entries);
    if fatal {
        plan.deny_all =
            Some("a restriction, redirect or backend of it does not convert (see its not-converted entries)".into());
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_that_convert_and_those_that_do_not() {
        type Row<'a> = (&'a str, &'a str, Option<(&'a str, Rewrite)>);
        let table: &[Row] = &[
            ("/something(/|$)(.*)", "/$2", Some(("/something", Rewrite::Prefix("/".into())))),
            ("/api(/|$)(.*)", "/v2/$2", Some(("/api", Rewrite::Prefix("/v2".into())))),
            ("/app/(.*)", "/$1", Some(("/app", Rewrite::Prefix("/".into())))),
            ("/app/(.*)", "/v2/$1", Some(("/app", Rewrite::Prefix("/v2".into())))),
            ("/app(/.*)", "$1", Some(("/app", Rewrite::Prefix("/".into())))),
            ("/app(/.*)", "/v2$1", Some(("/app", Rewrite::Prefix("/v2".into())))),
            // Review 28 M2: heads that put no `/` or two between the replacement and the rest.
            ("/prefix(/|$)(.*)", "/new$2", None),
            ("/p2/(.*)", "/v2$1", None),
            ("/p2(/.*)", "/v2/$1", None),
            ("/a(/|$)(.*)", "$2", None),
            ("/old", "/new", Some(("/old", Rewrite::Full("/new".into())))),
            ("/old(.*)", "/new", None),
            ("/a(/|$)(.*)", "/$1", None),
            ("/x/(\\d+)/(.*)", "/$2", None),
        ];
        for (path, target, want) in table {
            let got = rewrite(path, target);
            match want {
                Some((p, r)) => assert_eq!(got, Ok((PathKind::Prefix, (*p).to_owned(), r.clone())), "{path} {target}"),
                None => assert!(got.is_err(), "{path} {target}: {got:?}"),
            }
        }
    }

    #[test]
    fn redirect_urls() {
        let r = redirect_url("https://www.example.com:8443/landing", 301).unwrap();
        assert_eq!(
            (r.scheme.as_deref(), r.hostname.as_deref(), r.port, r.path.as_str()),
            (Some("https"), Some("www.example.com"), Some(8443), "/landing")
        );
        assert_eq!(redirect_url("https://example.com", 302).unwrap().path, "/");
        assert_eq!(redirect_url("/elsewhere", 302).unwrap().hostname, None);
        for bad in ["https://example.com/?a=1", "ftp://x/", "https://$host/x", "https://10.0.0.1_x/"] {
            assert!(redirect_url(bad, 301).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_lists() {
        assert_eq!(
            cidrs("10.0.0.0/8, 192.0.2.7,2001:db8::1").unwrap(),
            ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128"]
        );
        assert!(cidrs("10.0.0.0/33").unwrap_err().contains("`10.0.0.0/33` is not a CIDR"));
    }
}
