//! The checks with which ingress-nginx's store drops a whole Ingress
//! before serving any of it, beyond its class and namespace: the deep
//! inspector (`--deep-inspect`, on by default) on hosts, paths and TLS
//! entries, the annotation risk check (`annotations-risk-level` in the
//! ConfigMap; an annotation riskier than the level drops the Ingress), and
//! the annotation validators whose failure the annotation extractor turns
//! into a dropped Ingress (`--enable-annotation-validation`).
//!
//! Invariants: a check that is certain (the controller's version is known,
//! or the setting is written out) gives [`Verdict::Refused`]: ingress-nginx's
//! store refuses to sync this version of the Ingress, but a running
//! controller keeps the last version of it that it accepted (if any) until
//! it restarts, so what it serves there is not known: the Ingress takes part
//! in the host/path merge as deny-all, never left out (another Ingress or
//! the catch-all would take its paths) and never emitted open. A check that
//! depends on a default the migration cannot know (no readable controller
//! image tag) gives [`Verdict::Unsure`], emitted the same way, so it is
//! never more open than ingress-nginx whichever way the controller decided.
//! The risk table is realip's own, written from ingress-nginx's documented
//! risk of each annotation (v1.10 to v1.15; the same rows are used for v1.9); annotations it does not list
//! are Low, which no level refuses.

use realip_doctor::model::{argv, containers};
use realip_kube::Object;

use crate::setup::{controller_version, Setup};

/// An annotation's risk, in ingress-nginx's order (`Low` < `Critical`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    /// Refused by no level.
    Low,
    /// Refused when the level is Low.
    Medium,
    /// Refused when the level is Medium or Low.
    High,
    /// Refused unless the level is Critical.
    Critical,
}

impl Risk {
    /// ingress-nginx's `StringRiskToRisk`: case-insensitive; anything but
    /// critical, high or medium (a typo included) is Low.
    pub fn parse(v: &str) -> Risk {
        match v.to_lowercase().as_str() {
            "critical" => Risk::Critical,
            "high" => Risk::High,
            "medium" => Risk::Medium,
            _ => Risk::Low,
        }
    }

    /// As ingress-nginx writes it.
    pub fn name(self) -> &'static str {
        match self {
            Risk::Low => "Low",
            Risk::Medium => "Medium",
            Risk::High => "High",
            Risk::Critical => "Critical",
        }
    }
}

/// `(major, minor)` of a controller version.
type Version = (u32, u32);

/// An annotation, its risk, the first and the last version that has it.
type RiskRow = (&'static str, Risk, Version, Option<Version>);

/// The annotations (after the prefix, aliases included) above Low, with the
/// first and last controller version that has them (`None`: open-ended).
const RISKY: &[RiskRow] = &[
    ("affinity-mode", Risk::Medium, (1, 9), None),
    ("allowlist-source-range", Risk::Medium, (1, 9), None),
    ("whitelist-source-range", Risk::Medium, (1, 9), None),
    ("app-root", Risk::Medium, (1, 9), None),
    ("auth-cache-duration", Risk::Medium, (1, 9), None),
    ("auth-cache-key", Risk::Medium, (1, 9), None),
    ("auth-proxy-set-headers", Risk::Medium, (1, 9), None),
    ("auth-realm", Risk::Medium, (1, 9), None),
    ("auth-request-redirect", Risk::Medium, (1, 9), None),
    ("auth-response-headers", Risk::Medium, (1, 9), None),
    ("auth-secret", Risk::Medium, (1, 9), None),
    ("auth-signin", Risk::High, (1, 9), None),
    ("auth-signin-redirect-param", Risk::Medium, (1, 9), None),
    ("auth-snippet", Risk::Critical, (1, 9), None),
    ("auth-tls-error-page", Risk::High, (1, 9), None),
    ("auth-tls-match-cn", Risk::High, (1, 9), None),
    ("auth-tls-secret", Risk::Medium, (1, 9), None),
    ("auth-tls-verify-client", Risk::Medium, (1, 9), None),
    ("auth-url", Risk::High, (1, 9), None),
    ("canary-by-cookie", Risk::Medium, (1, 9), None),
    ("canary-by-header", Risk::Medium, (1, 9), None),
    ("canary-by-header-pattern", Risk::Medium, (1, 9), None),
    ("canary-by-header-value", Risk::Medium, (1, 9), None),
    ("configuration-snippet", Risk::Critical, (1, 9), None),
    ("cors-allow-headers", Risk::Medium, (1, 9), None),
    ("cors-allow-methods", Risk::Medium, (1, 9), None),
    ("cors-allow-origin", Risk::Medium, (1, 9), None),
    ("cors-expose-headers", Risk::Medium, (1, 9), None),
    ("custom-headers", Risk::Medium, (1, 11), None),
    ("denylist-source-range", Risk::Medium, (1, 9), None),
    ("fastcgi-index", Risk::Medium, (1, 9), None),
    ("fastcgi-params-configmap", Risk::Medium, (1, 9), None),
    ("force-ssl-redirect", Risk::Medium, (1, 9), None),
    ("mirror-host", Risk::High, (1, 9), None),
    ("mirror-target", Risk::High, (1, 9), None),
    ("modsecurity-snippet", Risk::Critical, (1, 9), None),
    ("modsecurity-transaction-id", Risk::High, (1, 9), None),
    ("opentelemetry-operation-name", Risk::Medium, (1, 9), None),
    ("permanent-redirect", Risk::Medium, (1, 9), None),
    ("preserve-trailing-slash", Risk::Medium, (1, 9), None),
    ("proxy-body-size", Risk::Medium, (1, 9), None),
    ("proxy-cookie-domain", Risk::Medium, (1, 9), None),
    ("proxy-cookie-path", Risk::Medium, (1, 9), None),
    ("proxy-next-upstream", Risk::Medium, (1, 9), None),
    ("proxy-redirect-from", Risk::Medium, (1, 9), None),
    ("proxy-redirect-to", Risk::Medium, (1, 9), None),
    ("proxy-ssl-ciphers", Risk::Medium, (1, 9), None),
    ("proxy-ssl-name", Risk::High, (1, 9), None),
    ("proxy-ssl-secret", Risk::Medium, (1, 9), None),
    ("rewrite-target", Risk::Medium, (1, 9), None),
    ("server-alias", Risk::High, (1, 9), None),
    ("server-snippet", Risk::Critical, (1, 9), None),
    ("session-cookie-domain", Risk::Medium, (1, 9), None),
    ("session-cookie-expires", Risk::Medium, (1, 9), None),
    ("session-cookie-max-age", Risk::Medium, (1, 9), None),
    ("session-cookie-name", Risk::Medium, (1, 9), None),
    ("session-cookie-path", Risk::Medium, (1, 9), None),
    ("stream-snippet", Risk::Critical, (1, 9), None),
    ("temporal-redirect", Risk::Medium, (1, 9), None),
    ("upstream-hash-by", Risk::High, (1, 9), None),
    ("x-forwarded-prefix", Risk::Medium, (1, 9), None),
    ("global-rate-limit-key", Risk::High, (1, 9), Some((1, 11))),
    ("global-rate-limit-ignored-cidrs", Risk::Medium, (1, 9), Some((1, 11))),
];

/// What ingress-nginx's store did with one Ingress, as far as these checks tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// None of the checks refuses it.
    Served,
    /// Certainly never read (namespace not watched, `--disable-catch-all`):
    /// why. No version of it is served.
    Skip(String),
    /// Refused by the store's sync (deep inspection, the word blocklist,
    /// the annotation risk check or validation): this version is never
    /// served, but a running controller keeps serving the last version it
    /// accepted, if any, until it restarts. The fields as in
    /// [`Verdict::Unsure`] (`key` is `--deep-inspect` for the inspector).
    Refused {
        /// The annotation (without the prefix) or flag.
        key: String,
        /// Its value (the refused host, path or name for the inspector).
        value: String,
        /// What failed.
        why: String,
    },
    /// Dropped or not depending on something not known here: the
    /// annotation or flag it depends on, its value, and why.
    Unsure {
        /// The annotation (without the prefix) or flag.
        key: String,
        /// Its value.
        value: String,
        /// Why the outcome is not known.
        why: String,
    },
    /// Served, but its locations may be denied (ingress-nginx answers 503
    /// there to every client) depending on something not known here; the
    /// fields as in [`Verdict::Unsure`].
    Denied {
        /// The annotation (without the prefix).
        key: String,
        /// Its value.
        value: String,
        /// Why the location may be denied.
        why: String,
    },
}

/// A boolean controller flag (a value only with `--flag=value`; a bare
/// `--flag` is true), `None` when absent or not a boolean ingress-nginx
/// would accept.
fn bool_flag(setup: &Setup<'_>, name: &str) -> Option<bool> {
    let ctl = setup.controller?;
    let c = containers(ctl).iter().find(|c| argv(c).iter().any(|a| a.ends_with("/nginx-ingress-controller")));
    let c = c.or_else(|| containers(ctl).first())?;
    let args = argv(c);
    realip_doctor::model::bool_flag(&args, name).and_then(crate::ingress::go_bool)
}

/// The deep inspector's patterns (`inspector.CheckRegex`), reproduced
/// exactly: `(?s)\s*alias\s*.*;` and `(?s)\s*root\s*.*;` match when the
/// word is followed anywhere later by `;` (the `\s*` may match nothing),
/// `.*_by_lua.*` when `_by_lua` occurs, and the two directory patterns as
/// plain substrings. Returns the pattern that matched.
pub fn deep_inspect_match(value: &str) -> Option<&'static str> {
    let word_then_semicolon = |w: &str| value.find(w).is_some_and(|i| value[i + w.len()..].contains(';'));
    if word_then_semicolon("alias") {
        return Some("`alias` followed by `;`");
    }
    if word_then_semicolon("root") {
        return Some("`root` followed by `;`");
    }
    for dir in ["passwd", "shadow", "group", "nginx", "ingress-controller"] {
        if value.contains(&format!("/etc/{dir}")) {
            return Some("/etc/(passwd|shadow|group|nginx|ingress-controller)");
        }
    }
    if value.contains("/var/run/secrets") {
        return Some("/var/run/secrets");
    }
    value.contains("_by_lua").then_some("_by_lua")
}

/// The first host, path, TLS host or TLS secret name the deep inspector
/// refuses: what it is (`path`, …), its value, and the pattern.
fn deep_inspected(ing: &Object) -> Option<(&'static str, String, &'static str)> {
    let rules = ing.doc.at(&["spec", "rules"]).map(realip_kube::Node::items).unwrap_or_default();
    for rule in rules {
        if let Some(h) = rule.str_at(&["host"]).filter(|h| !h.is_empty()) {
            if let Some(p) = deep_inspect_match(h) {
                return Some(("host", h.to_owned(), p));
            }
        }
        for path in rule.at(&["http", "paths"]).map(realip_kube::Node::items).unwrap_or_default() {
            let v = path.str_at(&["path"]).unwrap_or_default();
            if let Some(p) = deep_inspect_match(v) {
                return Some(("path", v.to_owned(), p));
            }
        }
    }
    for tls in ing.doc.at(&["spec", "tls"]).map(realip_kube::Node::items).unwrap_or_default() {
        let secret = tls.str_at(&["secretName"]).unwrap_or_default();
        if let Some(p) = deep_inspect_match(secret) {
            return Some(("TLS secretName", secret.to_owned(), p));
        }
        for h in tls.at(&["hosts"]).map(realip_kube::Node::items).unwrap_or_default() {
            let h = h.as_str().unwrap_or_default();
            if let Some(p) = deep_inspect_match(h) {
                return Some(("TLS host", h.to_owned(), p));
            }
        }
    }
    None
}

/// [`Verdict::Refused`] when the deep inspector (`--deep-inspect`, on by
/// default in every version this reads) refuses `ing`. ingress-nginx runs
/// it before the word blocklist and the annotation extractor.
pub fn deep_inspection(ing: &Object, setup: &Setup<'_>) -> Option<Verdict> {
    if bool_flag(setup, "--deep-inspect") == Some(false) {
        return None;
    }
    let (what, value, pattern) = deep_inspected(ing)?;
    Some(Verdict::Refused {
        key: "--deep-inspect".into(),
        why: format!("its {what} `{value}` matches the deep inspector's pattern {pattern} (--deep-inspect, on by default): ingress-nginx refuses the whole Ingress"),
        value,
    })
}

/// Go's `net.ParseCIDRs` as the annotation validator uses it: empty is
/// fine, else every comma-separated item, space-trimmed, must be a CIDR or
/// an address (an empty item is neither). The first bad item, quoted.
pub fn go_parse_cidrs(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    for item in v.split(',').map(str::trim) {
        let ok = match item.split_once('/') {
            Some((a, l)) => a.parse::<std::net::IpAddr>().is_ok_and(|a| {
                l.bytes().all(|b| b.is_ascii_digit())
                    && l.parse::<u8>().is_ok_and(|l| l <= if a.is_ipv4() { 32 } else { 128 })
            }),
            None => item.parse::<std::net::IpAddr>().is_ok(),
        };
        if !ok {
            return Err(format!("`{item}`"));
        }
    }
    Ok(())
}

/// Whether ingress-nginx validates annotation values
/// (`--enable-annotation-validation`, v1.9 on, on by default from v1.12),
/// and whether that is known (the controller's version and flags): when
/// not, on (the reading that drops more).
pub fn annotation_validation(setup: &Setup<'_>) -> (bool, bool) {
    let version = controller_version(setup);
    let at_least = |v: (u32, u32)| version.map(|have| have >= v);
    match (bool_flag(setup, "--enable-annotation-validation"), at_least((1, 9)), at_least((1, 12))) {
        (_, Some(false), _) => (false, true),
        (Some(on), _, _) => (on, version.is_some()),
        (None, _, Some(on)) => (on, true),
        (None, _, None) => (true, false),
    }
}

/// Whether ingress-nginx's store refuses `ing` for its annotations (risk,
/// validation) or may deny its locations ([`Verdict`]); the deep
/// inspector is [`deep_inspection`], run before.
pub fn check(ing: &Object, setup: &Setup<'_>) -> Verdict {
    let version = controller_version(setup);
    let at_least = |v: (u32, u32)| version.map(|have| have >= v);
    let unknown_version =
        "the controller's version is not known (no ingress-nginx controller image with a version tag in the input)";

    let prefix = format!("{}/", setup.prefix);
    let anns: Vec<(String, Option<&str>)> = ing
        .doc
        .at(&["metadata", "annotations"])
        .map(realip_kube::Node::entries)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str()))
        .collect();

    // annotations-risk-level (v1.9 on): High by default from v1.12, Critical before.
    let set = setup.configmap.and_then(|c| c.doc.str_at(&["data", "annotations-risk-level"]));
    let (level, how, sure) = match (set, at_least((1, 9)), at_least((1, 12))) {
        (_, Some(false), _) => (None, String::new(), true),
        (Some(v), _, _) => {
            let r = Risk::parse(v);
            let typo = if r == Risk::Low && !v.eq_ignore_ascii_case("low") { " (ingress-nginx reads any value but critical, high or medium as Low)" } else { "" };
            (Some(r), format!("the ConfigMap's annotations-risk-level `{v}`{typo}"), version.is_some())
        }
        (None, _, Some(true)) => (Some(Risk::High), "annotations-risk-level, High by default since ingress-nginx v1.12".to_owned(), true),
        (None, _, Some(false)) => (Some(Risk::Critical), String::new(), true),
        (None, _, None) => (Some(Risk::High), "annotations-risk-level, High by default since ingress-nginx v1.12 (Critical before; the stricter is assumed)".to_owned(), false),
    };
    if let Some(level) = level {
        for (k, v) in &anns {
            let short = k.strip_prefix(&prefix).unwrap_or(k);
            let hit = RISKY.iter().find(|(n, r, from, until)| {
                *n == short && *r > level && version.is_none_or(|v| v >= *from && until.is_none_or(|u| v <= u))
            });
            if let Some((_, r, _, _)) = hit {
                let why = format!("annotation {k} is of risk {} in ingress-nginx, above {how} ({}): ingress-nginx refuses the whole Ingress", r.name(), level.name());
                if sure {
                    return Verdict::Refused { key: short.to_owned(), value: v.unwrap_or_default().to_owned(), why };
                }
                return Verdict::Unsure {
                    key: short.to_owned(),
                    value: v.unwrap_or_default().to_owned(),
                    why: format!("{unknown_version}, so it is not known whether this applies: {why}"),
                };
            }
        }
    }

    // The rate-limit parser returns its validators' errors, which drop the Ingress.
    let (validation, sure) = annotation_validation(setup);
    if validation {
        let raw = |short: &str| {
            anns.iter().find(|(k, _)| k.strip_prefix(&prefix) == Some(short)).and_then(|(_, v)| *v).unwrap_or_default()
        };
        let mut bad = None;
        for short in ["limit-rpm", "limit-rps", "limit-connections"] {
            let v = raw(short);
            // Go's strconv.Atoi: an optional sign and decimal digits, nothing trimmed.
            if !v.is_empty() && v.parse::<i64>().is_err() {
                bad = Some((
                    short,
                    v,
                    format!(
                        "annotation {prefix}{short} `{v}` is not an integer to Go's strconv.Atoi (no spaces, no units)"
                    ),
                ));
                break;
            }
        }
        if bad.is_none() {
            // The alias is read only when limit-allowlist is empty.
            let (name, v) = match raw("limit-allowlist") {
                "" => ("limit-whitelist", raw("limit-whitelist")),
                v => ("limit-allowlist", v),
            };
            if let Err(item) = go_parse_cidrs(v) {
                bad = Some((name, v, format!("annotation {prefix}{name} has {item}, which is not an address or CIDR")));
            }
        }
        if let Some((key, value, bad)) = bad {
            let why = format!("{bad}; with annotation validation on (--enable-annotation-validation, the default since ingress-nginx v1.12) the rate-limit parser's validation error makes ingress-nginx refuse the whole Ingress");
            if sure {
                return Verdict::Refused { key: key.to_owned(), value: value.to_owned(), why };
            }
            return Verdict::Unsure {
                key: key.to_owned(),
                value: value.to_owned(),
                why: format!("{unknown_version}, so it is not known whether this applies: {why}"),
            };
        }
        if let Some(v) = unproven_verdict(&anns, &prefix, sure) {
            return v;
        }
    }
    location_denied(ing, &anns, &prefix, setup, validation).unwrap_or(Verdict::Served)
}

/// Annotations whose parser, on an error that is not a validation error,
/// denies the location (ingress-nginx renders `return 503;` there for
/// every client) whatever `--enable-annotation-validation` says:
/// `custom-headers` (v1.11 on: a ConfigMap that is missing, or a header
/// not in the ConfigMap's `global-allowed-response-headers`, empty by
/// default), `proxy-ssl-secret` (a Secret missing, malformed or in
/// another namespace), `fastcgi-params-configmap` (a name with more than
/// one `/`, or a ConfigMap that cannot be read; a key or value failing the
/// FCGI patterns drops the whole Ingress) and, up to v1.11,
/// `global-rate-limit-window` (a window Go's `time.ParseDuration` rejects
/// while `global-rate-limit` is not 0, or any rejected window with
/// annotation validation on). None of the resources is checked here, so
/// such an Ingress is [`Verdict::Denied`]: kept in the host/path merge
/// deny-all, never emitted open where ingress-nginx answered 503 (reviews
/// 10 and 11, R10-1, R11-2). `validation`: annotation validation is or may
/// be on.
fn location_denied(
    ing: &Object,
    anns: &[(String, Option<&str>)],
    prefix: &str,
    setup: &Setup<'_>,
    validation: bool,
) -> Option<Verdict> {
    // ingress-nginx builds no location from a canary's own upstream (its
    // NoServer one), so its Denied never applies there; where a non-canary
    // Ingress made the upstream, the canary's location is left out deny-all
    // whatever its annotations (lib.rs `canary_fates`).
    if crate::merge::is_canary(ing, &setup.prefix) {
        return None;
    }
    let version = controller_version(setup);
    let raw = |short: &str| {
        anns.iter().find(|(k, _)| k.strip_prefix(prefix) == Some(short)).map(|(_, v)| v.unwrap_or_default())
    };
    let value = |short: &str| raw(short).filter(|v| !v.is_empty());
    let unsure = |key: &str, v: &str, why: String| Verdict::Denied { key: key.to_owned(), value: v.to_owned(), why };
    // customheaders is read from v1.11 on.
    if let Some(v) = value("custom-headers").filter(|_| version.is_none_or(|v| v >= (1, 11))) {
        return Some(unsure(
            "custom-headers",
            v,
            format!(
                "annotation {prefix}custom-headers `{v}`: ingress-nginx (v1.11 on) denies the location (503 for every \
             client) unless ConfigMap `{v}` exists and each of its headers is in the controller ConfigMap's \
             global-allowed-response-headers (empty by default); realip migrate does not check that"
            ),
        ));
    }
    if let Some(v) = value("proxy-ssl-secret") {
        return Some(unsure(
            "proxy-ssl-secret",
            v,
            format!(
            "annotation {prefix}proxy-ssl-secret `{v}`: ingress-nginx denies the location (503 for every client) when \
             the Secret is missing, malformed or in another namespace; realip migrate does not check that"
        ),
        ));
    }
    if let Some(v) = value("fastcgi-params-configmap") {
        if let Some(why) = fastcgi_denied(ing, v, setup, version) {
            return Some(unsure(
                "fastcgi-params-configmap",
                v,
                format!("annotation {prefix}fastcgi-params-configmap `{v}`: {why}"),
            ));
        }
    }
    // globalratelimit was removed in v1.12.
    if version.is_none_or(|v| v <= (1, 11)) {
        // With validation on the raw value is validated; off, parser.GetStringAnnotation
        // trims every line first (normalizeString), and an empty result is no window.
        let window = value("global-rate-limit-window").filter(|w| {
            let read = if validation { (*w).to_owned() } else { normalize_lines(w) };
            !read.is_empty() && !go_duration(&read)
        })?;
        // parser.GetIntAnnotation: Go's strconv.Atoi, nothing trimmed; an error leaves 0.
        let limit = raw("global-rate-limit").and_then(|l| l.parse::<i64>().ok()).unwrap_or(0);
        if limit != 0 || validation {
            let when = if limit != 0 {
                format!("with global-rate-limit `{limit}` (not 0)")
            } else {
                "with annotation validation on (or possibly on), whatever global-rate-limit says".to_owned()
            };
            let era = if version.is_none() { "the controller's version is not known, and up to v1.11 " } else { "" };
            return Some(unsure("global-rate-limit-window", window, format!(
                "annotation {prefix}global-rate-limit-window `{window}` is not a duration to Go's time.ParseDuration \
                 (or not proven one by realip migrate): {era}ingress-nginx's global rate limit parser then denies the location \
                 (503 for every client) {when}"
            )));
        }
    }
    None
}

/// Why ingress-nginx may deny the location of `ing` for its
/// `fastcgi-params-configmap` `v` (already non-empty), or `None` when it
/// serves it: a ConfigMap in another namespace is a plain error (the
/// location is served without the parameters) while cross-namespace
/// resources are disallowed (the ConfigMap key
/// `allow-cross-namespace-resources`, false by default from v1.12, true
/// before); else ingress-nginx reads the name in the Ingress's own
/// namespace, whatever namespace was written.
fn fastcgi_denied(ing: &Object, v: &str, setup: &Setup<'_>, version: Option<Version>) -> Option<String> {
    // parser.GetStringAnnotation trims each line; cache.SplitMetaNamespaceKey takes `name` or `ns/name`.
    let v = v.lines().map(str::trim).collect::<Vec<_>>().join("\n");
    let parts: Vec<&str> = v.split('/').collect();
    if parts.len() > 2 {
        return Some(
            "not a ConfigMap name or `namespace/name`: ingress-nginx denies the location (503 for every client)".into(),
        );
    }
    let ns = if parts.len() == 2 { parts[0] } else { "" };
    let set = setup.configmap.and_then(|c| c.doc.str_at(&["data", "allow-cross-namespace-resources"]));
    let cross_allowed = match set {
        Some(b) => crate::ingress::go_bool(b),
        None => version.map(|v| v < (1, 12)),
    };
    if !ns.is_empty() && ns != ing.namespace && cross_allowed == Some(false) {
        return None;
    }
    // fastcgi/main.go reads `<the Ingress's namespace>/<name>` whatever namespace was named.
    Some(format!(
        "ingress-nginx denies the location (503 for every client) unless ConfigMap {}/{} (always in the Ingress's namespace) exists, and refuses the whole Ingress if one of its keys or values fails its FCGI patterns; realip migrate does not check that",
        ing.namespace,
        parts[parts.len() - 1]
    ))
}

/// ingress-nginx's `parser.normalizeString`: every line trimmed of
/// surrounding white space (Go's `strings.TrimSpace`), joined again by `\n`.
pub fn normalize_lines(s: &str) -> String {
    s.split('\n').map(str::trim).collect::<Vec<_>>().join("\n")
}

/// Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then `0x`/`0o`/`0b`
/// or a leading `0` (octal) picking the base, `_` only between digits
/// (base 0 allows them), nothing trimmed; `None` on any error, overflow
/// included.
pub fn go_parse_int0(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let b = body.as_bytes();
    let (base, digits) = match b {
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'x') => (16, &body[2..]),
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'o') => (8, &body[2..]),
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'b') => (2, &body[2..]),
        [b'0', ..] => (8, &body[1..]),
        [] => return None,
        _ => (10, body),
    };
    // underscoreOK: `_` must follow a digit (or the base prefix) and precede one.
    let mut prev_digit = b.len() > 1 && b[0] == b'0'; // `0x_1`, `0_7` are fine
    let mut n: u64 = 0;
    let mut last_underscore = false;
    for c in digits.chars() {
        if c == '_' {
            if !prev_digit {
                return None;
            }
            prev_digit = false;
            last_underscore = true;
            continue;
        }
        let d = c.to_digit(base)?;
        n = n.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
        prev_digit = true;
        last_underscore = false;
    }
    if last_underscore {
        return None;
    }
    let cutoff = 1u64 << 63;
    match (neg, n) {
        (false, n) if n < cutoff => i64::try_from(n).ok(),
        (true, n) if n < cutoff => i64::try_from(n).ok().map(|v| -v),
        (true, n) if n == cutoff => Some(i64::MIN),
        _ => None,
    }
}

/// Whether Go's `time.ParseDuration` accepts `s`: an optional sign, then
/// `0` or one or more `number unit` pairs (a number has digits before or
/// after an optional `.`; units `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`,
/// `h`), at most 2^63−1 ns in all. The total is bounded from above (each
/// fraction rounded up), so a value Go accepts only by rounding down at
/// that bound counts as rejected: never more open.
pub fn go_duration(s: &str) -> bool {
    go_duration_ns(s).is_some()
}

/// What Go's `time.ParseDuration` makes of `s`, in nanoseconds (a
/// fraction's rounding bounded from above, see [`go_duration`]); `None`
/// when it refuses it.
pub fn go_duration_ns(s: &str) -> Option<i128> {
    const MAX: u128 = (1u128 << 63) - 1;
    let negative = s.starts_with('-');
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, r) = rest.split_at(int_len);
        let (frac, r) = match r.strip_prefix('.') {
            Some(r) => {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                r.split_at(n)
            }
            None => ("", r),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = r.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(r.len());
        let (unit, r) = r.split_at(unit_len);
        let ns: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        // Go's leadingInt overflows past 2^63; more than 20 digits is past it anyway.
        let int = int.trim_start_matches('0');
        if int.len() > 20 {
            return None;
        }
        let whole: u128 = if int.is_empty() { 0 } else { int.parse().unwrap_or(u128::MAX) };
        if whole > 1u128 << 63 {
            return None;
        }
        // The fraction, bounded from above: its first 20 digits, plus one
        // nanosecond for the rounding and the digits cut.
        let digits = &frac[..frac.len().min(20)];
        let part = if frac.bytes().all(|b| b == b'0') {
            0
        } else {
            let num: u128 = digits.parse().unwrap_or(0);
            let scale = 10u128.pow(u32::try_from(digits.len()).unwrap_or(20));
            num * ns / scale + 1
        };
        total = total.saturating_add(whole.saturating_mul(ns)).saturating_add(part);
        if total > MAX {
            return None;
        }
        rest = r;
    }
    let total = i128::try_from(total).ok()?;
    Some(if negative { -total } else { total })
}

/// [`Verdict::Unsure`] for the first annotation of [`unproven`], with
/// annotation validation on (`sure`) or possibly on.
fn unproven_verdict(anns: &[(String, Option<&str>)], prefix: &str, sure: bool) -> Option<Verdict> {
    let (key, value, bad) = unproven(anns, prefix)?;
    let on = if sure {
        "annotation validation is on (--enable-annotation-validation, the default since ingress-nginx v1.12)"
    } else {
        "annotation validation may be on (--enable-annotation-validation; the controller's version or the flag is not known)"
    };
    Some(Verdict::Unsure {
        key,
        value,
        why: format!("annotation {prefix}{bad}; {on}, and a validation error of this annotation's parser makes ingress-nginx refuse the whole Ingress"),
    })
}

/// The annotations (after the prefix) of the parsers other than rate-limit
/// whose `Parse` returns their validator's error, which makes the
/// annotation extractor drop the whole Ingress: redirect, custom-http-errors,
/// default-backend, ssl-ciphers, server-alias, upstream-hash-by, proxy-ssl,
/// fastcgi, opentelemetry, and the auth parsers. Names ending in `-` are
/// prefixes. The list is wider rather than narrower: an extra name only
/// makes an Ingress deny-all.
const VALIDATED: &[&str] = &[
    "from-to-www-redirect",
    "relative-redirects",
    "temporal-redirect",
    "temporal-redirect-code",
    "permanent-redirect",
    "permanent-redirect-code",
    "custom-http-errors",
    "default-backend",
    "ssl-ciphers",
    "ssl-prefer-server-ciphers",
    "server-alias",
    "upstream-hash-by",
    "upstream-hash-by-",
    "proxy-ssl-",
    "fastcgi-",
    "enable-opentelemetry",
    "opentelemetry-",
    "auth-",
];

/// The first annotation of [`VALIDATED`] (as ingress-nginx reads it) whose
/// value realip migrate does not prove valid: its name, its value, and
/// `name `value` why`. Only a few exact checks are written (Go booleans,
/// status codes, redirect URLs, custom-http-errors, default-backend); every other value of
/// these annotations is unproven, so the Ingress is never emitted open on
/// a value ingress-nginx's validator may reject.
fn unproven(anns: &[(String, Option<&str>)], prefix: &str) -> Option<(String, String, String)> {
    let raw = |short: &str| anns.iter().find(|(k, _)| k.strip_prefix(prefix) == Some(short)).map(|(_, v)| *v);
    let temporal = raw("temporal-redirect").flatten().is_some_and(|t| !t.is_empty());
    for (k, v) in anns {
        let Some(short) = k.strip_prefix(prefix) else { continue };
        let listed = VALIDATED.iter().any(|n| if n.ends_with('-') { short.starts_with(n) } else { short == *n });
        if !listed {
            continue;
        }
        let Some(v) = *v else {
            return Some((short.to_owned(), String::new(), format!("{short} is not a string")));
        };
        // The validator runs only on a non-empty value.
        if v.is_empty() {
            continue;
        }
        let why = match short {
            "from-to-www-redirect" | "relative-redirects" => {
                (crate::ingress::go_bool(v).is_none()).then_some("is not a boolean to Go's strconv.ParseBool")
            }
            // Read only when temporal-redirect is set.
            "temporal-redirect-code" if !temporal => None,
            // A non-empty temporal-redirect returns before the permanent pair is read.
            "permanent-redirect" | "permanent-redirect-code" if temporal => None,
            // Read whether or not permanent-redirect is set; strconv.Atoi takes any digits.
            "permanent-redirect-code" | "temporal-redirect-code" => {
                (!(v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit()))).then_some("is not a decimal integer")
            }
            // parser.URLIsValidRegex: alphanumerics, `-._~/:` and the URL characters `,:?&=`.
            "permanent-redirect" | "temporal-redirect" => {
                (!v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/:,?&=".contains(&b)))
                    .then_some("has a character outside ingress-nginx's URL pattern `[-._~a-zA-Z0-9/:,?&=]`")
            }
            "custom-http-errors" => (!http_error_codes(&v.replace(' ', "")))
                .then_some("does not match ingress-nginx's `^(?:[4,5]\\d{2},?)*$` (spaces removed)"),
            "default-backend" => (!dns1035_label(v)).then_some("is not a DNS-1035 label (a Service name)"),
            _ => Some("is checked by an ingress-nginx validator that realip migrate does not reproduce"),
        };
        if let Some(why) = why {
            return Some((short.to_owned(), v.to_owned(), format!("{short} `{v}` {why}")));
        }
    }
    None
}

/// Go's `^(?:[4,5]\d{2},?)*$` (the class includes the comma), exactly,
/// with backtracking over the optional comma.
fn http_error_codes(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return true;
    }
    if b.len() < 3 || !matches!(b[0], b'4' | b'5' | b',') || !b[1].is_ascii_digit() || !b[2].is_ascii_digit() {
        return false;
    }
    let rest = &s[3..];
    http_error_codes(rest) || rest.strip_prefix(',').is_some_and(http_error_codes)
}

/// A DNS-1035 label: 1–63 of `a-z0-9-`, starting with a letter, ending
/// with a letter or digit.
fn dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_http_errors_regex() {
        for (v, ok) in [
            ("", true),
            ("404", true),
            ("404,503", true),
            ("404503", true),
            (",04", true),
            ("404,", true),
            ("404,,", false),
            ("404,5xx", false),
            ("302", false),
            ("40", false),
            ("4044", false),
        ] {
            assert_eq!(http_error_codes(v), ok, "{v:?}");
        }
    }

    #[test]
    fn go_parse_duration() {
        for (v, ok) in [
            ("1m", true),
            ("1s", true),
            ("500ms", true),
            ("1h30m", true),
            ("1.5h", true),
            (".5s", true),
            ("1.s", true),
            ("-1m", true),
            ("+2s", true),
            ("0", true),
            ("-0", true),
            ("1\u{b5}s", true),
            ("1\u{3bc}s", true),
            ("2562047h", true),
            ("2562048h", false),
            ("9223372036854775807ns", true),
            ("9223372036854775808ns", false),
            ("1 minute", false),
            ("1minute", false),
            ("60", false),
            ("", false),
            ("-", false),
            (".s", false),
            ("1m ", false),
            (" 1m", false),
            ("1d", false),
            ("1M", false),
            ("s", false),
            ("00", false),
        ] {
            assert_eq!(go_duration(v), ok, "{v:?}");
        }
    }

    #[test]
    fn dns1035() {
        for (v, ok) in [
            ("errors", true),
            ("err-svc2", true),
            ("Err_Svc", false),
            ("errors.web", false),
            ("1err", false),
            ("err-", false),
            ("", false),
        ] {
            assert_eq!(dns1035_label(v), ok, "{v:?}");
        }
    }

    #[test]
    fn go_parse_int_base_0() {
        for (v, want) in [
            ("11211", Some(11211)),
            ("0", Some(0)),
            ("00", Some(0)),
            ("0x0", Some(0)),
            ("0X1f", Some(31)),
            ("0o17", Some(15)),
            ("017", Some(15)),
            ("0b101", Some(5)),
            ("1_000", Some(1000)),
            ("0x_1", Some(1)),
            ("0_7", Some(7)),
            ("-5", Some(-5)),
            ("+5", Some(5)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            (" 0", None),
            ("0 ", None),
            ("", None),
            ("-", None),
            ("0x", None),
            ("08", None),
            ("_1", None),
            ("1_", None),
            ("1__0", None),
            ("1e3", None),
        ] {
            assert_eq!(go_parse_int0(v), want, "{v:?}");
        }
    }

    #[test]
    fn normalize_trims_each_line() {
        assert_eq!(normalize_lines(" 1m"), "1m");
        assert_eq!(normalize_lines(" a \n\tb\t"), "a\nb");
    }
}
