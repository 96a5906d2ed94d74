//! realip-migrate: move an ingress-nginx setup to the Gateway API without
//! losing (or opening) the client IP.
//!
//! Data flow: manifests (or a live cluster) → [`setup::find`] (the
//! controller, its ConfigMap and Service) → [`setup::client_ip`] (who
//! ingress-nginx believes is the client, defaults made explicit) →
//! [`ingress::plan`] per Ingress of the controller's class (annotations) →
//! [`emit::emit`] (Gateway, ReferenceGrants, HTTPRoutes, and realip's
//! ClientIPPolicy / ClientAccessPolicy or Envoy Gateway's
//! ClientTrafficPolicy / SecurityPolicy / BackendTrafficPolicy) → a
//! [`Migration`]: the objects, sorted, and a [`report::Report`] with an
//! entry for every ConfigMap key and annotation seen.
//!
//! Invariants: the same input gives byte-identical output; allow lists and
//! rate limits are keyed on the client resolved by the emitted client-IP
//! policy, never on the load balancer's address; a trust-all default is
//! written out explicitly and reported as a warning, never silently; an
//! Ingress (or path) that cannot be converted is left out rather than
//! emitted open, and its locations are still emitted deny-all (matches, no
//! backend, a policy refusing every client) so that no request ingress-nginx
//! served from it falls through to a more open route; every emitted object is meant to validate against
//! its CRD ([`schema`]; the tests check all of them).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod drops;
pub mod emit;
mod error;
pub mod ingress;
pub mod live;
pub mod merge;
pub mod reload;
pub mod report;
pub mod schema;
pub mod setup;
pub mod snippet;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use realip_kube::Object;
use serde_json::Value;

/// ingress-nginx's default `--annotations-prefix`.
const DEFAULT_PREFIX: &str = "nginx.ingress.kubernetes.io";

pub use error::Error;
pub use report::{Entry, Report, Status};

/// Which policies the output uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Target {
    /// realip's ClientIPPolicy / ClientAccessPolicy (`--to realip`).
    #[default]
    Realip,
    /// Envoy Gateway's ClientTrafficPolicy / SecurityPolicy / BackendTrafficPolicy.
    EnvoyGateway,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        match s {
            "realip" => Ok(Target::Realip),
            "envoy-gateway" => Ok(Target::EnvoyGateway),
            other => Err(format!("`{other}` is not realip or envoy-gateway")),
        }
    }
}

/// What the user chose.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Policies of realip or Envoy Gateway.
    pub target: Target,
    /// gatewayClassName (default `realip`, or `eg` for Envoy Gateway).
    pub gateway_class: Option<String>,
    /// `NAMESPACE/NAME` of the Gateway (default: the controller's
    /// namespace, `ingress-nginx`).
    pub gateway: Option<String>,
    /// CIDRs that replace `proxy-real-ip-cidr` (the load balancer's).
    pub trust: Vec<String>,
}

/// The result: objects in output order, and the report.
#[derive(Debug)]
pub struct Migration {
    /// Gateway, ReferenceGrants, HTTPRoutes, policies; sorted.
    pub objects: Vec<Value>,
    /// What happened to every key and annotation.
    pub report: Report,
}

/// A Kubernetes object name (RFC 1123 subdomain): what a GatewayClass's
/// name must be (the Gateway's `gatewayClassName` has `minLength: 1`).
fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

pub(crate) fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn kind_rank(kind: &str) -> usize {
    [
        "Gateway",
        "ReferenceGrant",
        "HTTPRoute",
        "ClientIPPolicy",
        "ClientTrafficPolicy",
        "ClientAccessPolicy",
        "SecurityPolicy",
        "BackendTrafficPolicy",
    ]
    .iter()
    .position(|k| *k == kind)
    .unwrap_or(99)
}

/// The `--trust` CIDRs, each exactly one CIDR.
fn trust_cidrs(opts: &Options) -> Result<Vec<String>, Error> {
    for t in &opts.trust {
        if ingress::cidrs(t).map(|v| v.len()) != Ok(1) {
            return Err(Error::Trust(t.clone()));
        }
    }
    Ok(opts.trust.iter().filter_map(|t| ingress::cidrs(t).ok()).flatten().collect())
}

/// Adds a warning to `report` for each key the loader saw written twice
/// in one mapping (`duplicates`): the last value is what was read, while
/// kubectl since 1.14 refuses such a file, so what runs in the cluster may
/// hold either (review 29 M4: a doubled `use-forwarded-headers` decided the
/// trust silently).
pub fn warn_duplicates(report: &mut Report, objects: &[Object], duplicates: &[realip_kube::DuplicateKey]) {
    for d in duplicates {
        let owner = objects
            .iter()
            .filter(|o| o.source.file == d.file && o.source.line <= d.duplicate.line)
            .max_by_key(|o| o.source.line);
        report.entries.push(Entry {
            object: owner.map_or_else(|| d.file.clone(), Object::id),
            file: d.file.clone(),
            line: d.duplicate.line,
            key: d.duplicate.key.clone(),
            value: String::new(),
            status: Status::Warning,
            to: String::new(),
            why: format!(
                "written twice in one mapping (first at line {}): the last value is the one migrated; kubectl (1.14 on) refuses such a file, so check which value the cluster really holds and keep one",
                d.duplicate.first
            ),
        });
    }
}

/// The API server's checks of an Ingress's hosts (rules and TLS): a host
/// it refuses would make an HTTPRoute it refuses too (review 30 M-1).
fn check_ingress_hosts(objects: &[Object]) -> Result<(), Error> {
    for o in objects.iter().filter(|o| o.kind == "Ingress") {
        let spec = o.doc.get("spec");
        let rules = spec.and_then(|s| s.get("rules")).map(realip_kube::Node::items).unwrap_or_default();
        let tls = spec.and_then(|s| s.get("tls")).map(realip_kube::Node::items).unwrap_or_default();
        let hosts = rules.iter().filter_map(|r| r.str_at(&["host"])).chain(
            tls.iter()
                .flat_map(|t| t.get("hosts").map(realip_kube::Node::items).unwrap_or_default())
                .filter_map(realip_kube::Node::as_str),
        );
        if let Some(h) = hosts.into_iter().find(|h| !h.is_empty() && !route_hostname(h)) {
            return Err(Error::IngressHost { object: o.id(), host: h.to_owned() });
        }
    }
    Ok(())
}

/// Migrates the ingress-nginx setup in `objects`.
pub fn migrate(objects: &[Object], opts: &Options) -> Result<Migration, Error> {
    let trust = trust_cidrs(opts)?;
    if let Some(c) = opts.gateway_class.as_deref().filter(|c| !dns_subdomain(c)) {
        return Err(Error::GatewayClassName(c.to_owned()));
    }
    check_ingress_hosts(objects)?;
    let mut report = Report::default();
    let setup = setup::find(objects, &mut report)?;
    let (gw_ns, gw_name) = match &opts.gateway {
        Some(g) => {
            let (ns, name) = g.split_once('/').ok_or_else(|| Error::GatewayName(g.clone()))?;
            if !dns_label(ns) || !dns_subdomain(name) {
                return Err(Error::GatewayName(g.clone()));
            }
            (ns.to_owned(), name.to_owned())
        }
        None => (
            setup.controller.map_or_else(|| "ingress-nginx".to_owned(), |c| c.namespace.clone()),
            "ingress-nginx".to_owned(),
        ),
    };
    let gw = emit::Gateway {
        namespace: gw_ns,
        name: gw_name,
        class: opts.gateway_class.clone().unwrap_or_else(|| {
            if opts.target == Target::EnvoyGateway {
                "eg".into()
            } else {
                "realip".into()
            }
        }),
    };
    let policy_kind = if opts.target == Target::EnvoyGateway { "ClientTrafficPolicy" } else { "ClientIPPolicy" };
    let to = format!("{policy_kind} {}/{}", gw.namespace, emit::client_ip_name(&gw));
    let ci = setup::client_ip(&setup, &trust, &mut report, &to);
    if opts.target == Target::EnvoyGateway {
        envoy_differences(&ci, https_pp_from_any_peer(&setup, &ci), &mut report);
    }
    if let Some(svc) = setup.service {
        load_balancer(svc, &ci, &mut report);
    }
    let source_lost = client_ip_lost(&report);
    let https_lost = https_client_lost(&setup, &ci, opts.target, &mut report);
    default_certificate(&setup, &mut report);
    let tls_hosts = tls_hosts(objects);
    let global_access = global_access_keys(&report);
    let (ours, unsure) = ours(objects, &setup, &mut report);
    let mut unloadable: Vec<String> =
        setup::unloadable_keys(&setup).into_iter().map(|k| format!("the ConfigMap's {k}")).collect();
    unloadable.extend(reload_breakers(&ours, &setup, &setup::admission_webhook(objects, &setup)));
    // Every Ingress of the class takes part, also those left out below: a
    // path kept by a left-out Ingress must not be opened by another one.
    let merged = merge::merge(&ours, &setup);
    let regex_hosts = regex_hosts(&ours, &setup, &merged);
    let ours_all = ours.clone();
    let mut plans = Vec::new();
    for ing in ours {
        let first_entry = report.entries.len();
        let mut p = ingress::plan(ing, &setup, opts.target, objects, &mut report);
        if let Some(u) = unsure.get(&ing.id()) {
            unsure_deny_all(&mut p, u, &setup, &mut report);
        }
        if p.deny_all.is_none() {
            // An Ingress with `enable-global-auth: "false"` is not behind global-auth-url.
            let opted_out = ing.annotation(&format!("{}/enable-global-auth", setup.prefix)).and_then(ingress::go_bool)
                == Some(false);
            // One with `enable-modsecurity: "false"` gets `modsecurity off;` in its locations.
            let no_waf = ing.annotation(&format!("{}/enable-modsecurity", setup.prefix)).and_then(ingress::go_bool)
                == Some(false);
            let applies: Vec<String> = global_access
                .iter()
                .filter(|k| !(opted_out && *k == "global-auth-url" || no_waf && *k == "enable-modsecurity"))
                .cloned()
                .collect();
            if !unloadable.is_empty() {
                p.deny_all = Some(leave_out_unloadable(&unloadable, &mut report, first_entry));
            } else if !applies.is_empty() {
                p.deny_all = Some(leave_out_unrestricted(&applies, &mut report, first_entry));
            } else if source_lost && (p.allow.is_some() || !p.deny.is_empty() || !p.rates.is_empty()) {
                p.deny_all = Some(leave_out(&mut report, first_entry));
            } else if https_lost && (p.allow.is_some() || !p.rates.is_empty()) && serves_tls(ing, &tls_hosts) {
                p.deny_all = Some(leave_out_https(&mut report, first_entry));
            }
        }
        apply_merge(&mut p, &merged, &unsure, &mut report);
        let served = canary_fates(&mut p, &merged, &mut report);
        if let Some(why) = &p.deny_all {
            report.notes.push(left_out_note(&p, why));
            p.deny_everything();
            left_out_entries(&mut report, &ing.id());
        }
        plans.push(p);
        plans.extend(served);
    }
    settle(&mut plans, &merged.creates, &ours_all, &setup, &regex_hosts, opts.target, &mut report);
    let emitted = emit::emit(&gw, &ci, &plans, opts.target, &mut report);
    snat_hides_the_client(&setup, &ci, &mut report);
    let mut objects = emitted.objects;
    client_ip_fields(&objects, &to, opts.target, &mut report);
    sort_objects(&mut objects);
    report.sort();
    Ok(Migration { objects, report })
}

/// What the merge of every plan decides, in order: extra server names,
/// regex mode, collisions, fallbacks, root locations, host-wide
/// restrictions, covered and winning denies, unrouted plans.
fn settle(
    plans: &mut [ingress::Plan<'_>],
    creates: &BTreeMap<String, BTreeSet<String>>,
    ours: &[&Object],
    setup: &setup::Setup<'_>,
    regex_hosts: &BTreeMap<Option<String>, Vec<String>>,
    target: Target,
    report: &mut Report,
) {
    extra_server_names(plans, ours, setup, report);
    regex_mode(plans, regex_hosts, report);
    collisions(plans, regex_hosts, report);
    fallbacks(plans, report);
    root_locations(plans, creates, report);
    host_wide(plans, &host_wide_restrictions(ours, setup), report);
    cover_denied(plans, regex_hosts, target, report);
    widened_denies_win(plans, regex_hosts, target, report);
    denies_win(plans, report);
    drop_unrouted(plans, report);
}

/// Output order: by kind ([`kind_rank`]), namespace, name.
fn sort_objects(objects: &mut [Value]) {
    objects.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                kind_rank(v["kind"].as_str().unwrap_or_default()),
                v["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                v["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            )
        };
        key(a).cmp(&key(b))
    });
}

/// The note for a plan left out (`why`): what of it is in the output.
fn left_out_note(p: &ingress::Plan<'_>, why: &str) -> String {
    let ing = p.obj;
    if p.canary.is_some() {
        // A canary has no route of its own: nothing of it is emitted.
        return format!(
            "{} ({}:{}): left out: {why}; a canary has no route of its own, so nothing of it is in the output and its main Ingress's route serves all the traffic",
            ing.id(),
            ing.source.file,
            ing.source.line
        );
    }
    format!(
        "{} ({}:{}): left out: {why}; emitted as deny-all (its hosts and paths, no backend, a policy refusing every client) so its requests are refused, as ingress-nginx refused or redirected them, instead of falling through to a more open route",
        ing.id(),
        ing.source.file,
        ing.source.line
    )
}

/// Emits deny-all an Ingress that ingress-nginx may have dropped or served
/// ([`drops::Verdict::Unsure`]), whose locations it may have denied
/// ([`drops::Verdict::Denied`]), or whose current version its store
/// refuses ([`drops::Verdict::Refused`]), with a not-converted entry saying why.
fn unsure_deny_all(
    p: &mut ingress::Plan<'_>,
    u: &(String, String, String, Doubt),
    setup: &setup::Setup<'_>,
    report: &mut Report,
) {
    let ing = p.obj;
    let (key, value, why, doubt) = u;
    // ingress-nginx may have dropped it or served it: deny-all is never
    // more open than either, and it still takes its paths in the merge.
    let full = format!("{}/{key}", setup.prefix);
    let line = ing
        .doc
        .at(&["metadata", "annotations"])
        .and_then(|a| a.entries().iter().find(|(k, _)| *k == full).map(|(_, v)| v.line))
        .unwrap_or(ing.source.line);
    // A denied location or a refused version: one entry for the key, this one
    // replaces what the annotation's own reading said ("not handled", or a conversion).
    if matches!(doubt, Doubt::Denied | Doubt::Refused) {
        report.entries.retain(|e| !(e.object == ing.id() && e.key == *key));
    }
    let (outcome, deny_all) = match doubt {
        Doubt::Denied => (
            "Whether ingress-nginx answered 503 on this Ingress's locations or served them is not known",
            format!("ingress-nginx may have denied its locations, answering 503 to every client (see its {key} entry)"),
        ),
        Doubt::Dropped => (
            "Whether ingress-nginx served this Ingress is not known",
            format!("ingress-nginx may have dropped it or served it (see its {key} entry)"),
        ),
        Doubt::Refused => (
            "Which version of this Ingress ingress-nginx serves, if any, is not known",
            format!("ingress-nginx refuses this version of it, and a running controller may still serve an older one (see its {key} entry)"),
        ),
    };
    report.entries.push(Entry {
        object: ing.id(),
        file: ing.source.file.clone(),
        line,
        key: key.clone(),
        value: value.clone(),
        status: Status::NotConverted,
        to: String::new(),
        why: format!("{why}. {outcome}, so it is emitted deny-all (it keeps its hosts and paths, so nothing more open takes them)"),
    });
    p.deny_all = Some(deny_all);
}

/// Makes the entries that name the client-IP policy (`to`: `Kind ns/name`,
/// then a field of realip's ClientIPPolicy, written before the policy was)
/// name a field the emitted policy has: Envoy Gateway's ClientTrafficPolicy
/// spells them otherwise (`clientIPDetection…`) and has no trusted PROXY
/// senders and no X-Forwarded-For forwarding field, and a policy or field
/// that was not emitted (a key left out, PROXY off, nothing to detect) is
/// named by no entry.
fn client_ip_fields(objects: &[Value], to: &str, target: Target, report: &mut Report) {
    let Some((kind, id)) = to.split_once(' ') else { return };
    let policy = objects.iter().find(|o| {
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        o["kind"] == kind && format!("{ns}/{name}") == id
    });
    let has = |field: &str| policy.is_some_and(|p| !field.split('.').fold(&p["spec"], |v, part| &v[part]).is_null());
    for e in &mut report.entries {
        let Some(rest) = e.to.strip_prefix(to).and_then(|r| r.strip_prefix(' ')) else { continue };
        let field = rest.split([' ', ':']).next().unwrap_or_default().to_owned();
        let named = match (target, field.as_str()) {
            (Target::Realip, _) => has(&field).then(|| rest.to_owned()),
            (Target::EnvoyGateway, "sources") => ["clientIPDetection.xForwardedFor", "clientIPDetection.customHeader"]
                .into_iter()
                .find(|f| has(f))
                .map(str::to_owned),
            (Target::EnvoyGateway, "trustedProxies") => has("clientIPDetection.xForwardedFor.trustedCIDRs")
                .then(|| "clientIPDetection.xForwardedFor.trustedCIDRs".to_owned()),
            (Target::EnvoyGateway, "proxyProtocol") => has("proxyProtocol").then(|| "proxyProtocol".to_owned()),
            // No trusted PROXY senders, no forwarding field: Envoy's own behaviour, said in `why`.
            (Target::EnvoyGateway, _) => None,
        };
        e.to = named.map_or_else(String::new, |f| format!("{to} {f}"));
    }
}

/// The ConfigMap keys, not converted, that restrict every server: their
/// access lists and blocks, and snippets with refusing directives.
fn global_access_keys(report: &Report) -> Vec<String> {
    report
        .entries
        .iter()
        .filter(|e| {
            e.status == Status::NotConverted
                && (setup::GLOBAL_ACCESS_KEYS.contains(&e.key.as_str())
                    || e.key == "enable-modsecurity"
                    || e.key == "http-snippet" && ingress::refusing_directives(&e.value)
                    || setup::GLOBAL_SNIPPET_KEYS.contains(&e.key.as_str())
                        && e.key != "http-snippet"
                        && ingress::access_directives(&e.value))
        })
        .map(|e| e.key.clone())
        .collect()
}

/// Why what ingress-nginx serves of an Ingress is not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Doubt {
    /// It may have dropped it or served it ([`drops::Verdict::Unsure`]).
    Dropped,
    /// It may have denied its locations ([`drops::Verdict::Denied`]).
    Denied,
    /// Its store refuses this version; a running controller may serve an
    /// older one ([`drops::Verdict::Refused`]).
    Refused,
}

/// Whether ingress-nginx may have served an Ingress: by id, the key, value,
/// why and [`Doubt`] of those it may not serve as written.
type Unsure = BTreeMap<String, (String, String, String, Doubt)>;

/// What a store-refused Ingress ([`drops::Verdict::Refused`], `why` says what
/// failed) means for what ingress-nginx serves, in the world the input shows
/// for its admission webhook ([`setup::Webhook`]).
fn refused_why(why: &str, webhook: &setup::Webhook) -> String {
    const STORE: &str = "ingress-nginx's store refuses to sync this version of the Ingress; a running controller keeps serving the last version of it that it accepted (if it ever accepted one) until it restarts, and after a restart serves nothing of it";
    const APPLY: &str = "the admission webhook runs this check too (with more of its own) and refuses this version at apply time, so the cluster keeps the Ingress's previous version (if any), which ingress-nginx serves, restart or not; this version exists in the cluster only if it was applied before the setting or controller version that refuses it (then a running controller keeps what it accepted before, and after a restart serves nothing of it)";
    match webhook {
        setup::Webhook::On(how) => format!("{why}. Admission webhook on ({how}): {APPLY}"),
        setup::Webhook::Off(how) => format!("{why}. Admission webhook off ({how}): {STORE}"),
        setup::Webhook::Unknown(how) => format!(
            "{why}. Whether ingress-nginx's admission webhook checks Ingresses is not known ({how}). With it off, {STORE}. With it on (the Helm chart's default), {APPLY}"
        ),
    }
}

/// What an Ingress that only ingress-nginx's admission webhook refuses
/// ([`webhook_refusal`], `why` says what failed) means, in the world the input
/// shows for the webhook; `None` when it is off (the store serves it).
fn webhook_why(why: &str, webhook: &setup::Webhook) -> Option<String> {
    const APPLY: &str = "it refuses this version at apply time, so the cluster keeps the Ingress's previous version (if any), which ingress-nginx serves, restart or not; this version is in the cluster only if it was applied before the webhook, the setting or the controller version that refuses it, and then ingress-nginx serves it as its store reads it";
    match webhook {
        setup::Webhook::On(how) => Some(format!("{why}. Admission webhook on ({how}): {APPLY}")),
        setup::Webhook::Off(_) => None,
        setup::Webhook::Unknown(how) => Some(format!(
            "{why}. Whether ingress-nginx's admission webhook checks Ingresses is not known ({how}). With it on (the Helm chart's default), {APPLY}. With it off, ingress-nginx serves this version as its store reads it"
        )),
    }
}

/// The Ingresses the controller serves (the last copy of each), sorted by
/// namespace and name, those it certainly drops left out with a note; and
/// those it may have dropped ([`Unsure`]), kept (to be emitted deny-all).
#[allow(clippy::too_many_lines)] // the store's and the webhook's checks, in ingress-nginx's order
fn ours<'a>(objects: &'a [Object], setup: &setup::Setup<'_>, report: &mut Report) -> (Vec<&'a Object>, Unsure) {
    // The last copy of an IngressClass wins, as for every object.
    let mut class_objs: Vec<&Object> = objects.iter().rev().filter(|o| o.kind == "IngressClass").collect();
    class_objs.sort_by_key(|o| o.name.clone());
    class_objs.dedup_by_key(|o| o.name.clone());
    let controller_of = |o: &Object| o.doc.str_at(&["spec", "controller"]).unwrap_or_default().to_owned();
    let classes: Vec<(String, String)> = class_objs.iter().map(|o| (o.name.clone(), controller_of(o))).collect();
    // The last copy of an Ingress wins (a patch file after the base): reversed
    // input, then a stable sort and a dedup that keeps the first of each run.
    let mut ingresses: Vec<&Object> = objects.iter().rev().filter(|o| o.kind == "Ingress").collect();
    ingresses.sort_by_key(|o| (o.namespace.clone(), o.name.clone()));
    ingresses.dedup_by_key(|o| o.id());
    // The API server's DefaultIngressClass admission gives an Ingress created
    // without a class the IngressClass marked default (exactly "true"). It
    // counts as this controller's only when that class is (as
    // ingress-nginx's informer decides); with several default classes the
    // API server's pick is not known here, so all must be.
    let defaults: Vec<&&Object> = class_objs
        .iter()
        .filter(|o| o.annotation("ingressclass.kubernetes.io/is-default-class") == Some("true"))
        .collect();
    let default_class = defaults
        .first()
        .filter(|_| defaults.iter().all(|d| ingress::class_accepted(&d.name, &controller_of(d), setup)));
    let mut ours = Vec::new();
    let mut unchecked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ing in ingresses {
        let why = match ingress::is_ours(ing, setup, &classes) {
            ingress::Served::Yes => {
                ours.push(ing);
                continue;
            }
            ingress::Served::ByNameUnchecked(c) => {
                unchecked.entry(c).or_default().push(ing.id());
                ours.push(ing);
                continue;
            }
            ingress::Served::No(why) => why,
        };
        let classless = ing.doc.str_at(&["spec", "ingressClassName"]).is_none()
            && ing.annotation("kubernetes.io/ingress.class").is_none();
        if let Some(d) = default_class.filter(|_| classless) {
            report.notes.push(format!(
                "{} ({}:{}): no class: IngressClass {} is marked default (ingressclass.kubernetes.io/is-default-class) and is this controller's, so the API server's DefaultIngressClass admission gives it that class: converted",
                ing.id(),
                ing.source.file,
                ing.source.line,
                d.name
            ));
            ours.push(ing);
            continue;
        }
        report.notes.push(format!(
            "{} ({}:{}): {why}: not served by this controller, skipped",
            ing.id(),
            ing.source.file,
            ing.source.line,
        ));
    }
    let mut unsure = Unsure::new();
    let webhook = setup::admission_webhook(objects, setup);
    ours.retain(|ing| {
        let verdict = watched(ing, objects, setup);
        // What the store refuses, the webhook refuses too; what only the
        // webhook refuses is in the cluster only if applied before it.
        if matches!(verdict, drops::Verdict::Served | drops::Verdict::Unsure { .. } | drops::Verdict::Denied { .. }) {
            if let Some((key, value, why)) = webhook_refusal(ing, setup) {
                if let Some(why) = webhook_why(&why, &webhook) {
                    unsure.insert(ing.id(), (key, value, why, Doubt::Refused));
                    return true;
                }
            }
        }
        match verdict {
            drops::Verdict::Served => true,
            drops::Verdict::Skip(why) => {
                report.notes.push(format!("{} ({}:{}): {why}, skipped", ing.id(), ing.source.file, ing.source.line));
                false
            }
            drops::Verdict::Unsure { key, value, why } => {
                unsure.insert(ing.id(), (key, value, why, Doubt::Dropped));
                true
            }
            drops::Verdict::Denied { key, value, why } => {
                unsure.insert(ing.id(), (key, value, why, Doubt::Denied));
                true
            }
            drops::Verdict::Refused { key, value, why } => {
                unsure.insert(ing.id(), (key, value, refused_why(&why, &webhook), Doubt::Refused));
                true
            }
        }
    });
    // The webhook's overlap check needs every Ingress: an Ingress it refuses
    // is in the cluster only if applied before the webhook.
    for (id, why) in merge::overlap_refusals(&ours, setup) {
        let why = format!("ingress-nginx's admission webhook refuses the whole Ingress: {why} (checkOverlap; neither has a canary annotation)");
        if let Some(why) = webhook_why(&why, &webhook) {
            unsure.entry(id).or_insert_with(|| ("spec.rules".into(), String::new(), why, Doubt::Refused));
        }
    }
    // Only the Ingresses that are still in: the others are skipped whatever their class.
    let kept: BTreeSet<String> = ours.iter().map(|o| o.id()).collect();
    for ids in unchecked.values_mut() {
        ids.retain(|id| kept.contains(id));
    }
    unchecked.retain(|_, ids| !ids.is_empty());
    for (class, ids) in unchecked {
        report.entries.push(Entry {
            object: format!("IngressClass/{class}"),
            file: String::new(),
            line: 0,
            key: "ingressClassName".into(),
            value: class.clone(),
            status: Status::Warning,
            to: String::new(),
            why: format!(
                "no IngressClass is in the input, so {} naming class `{class}` {} taken as this controller's by name; ingress-nginx serves {} only if IngressClass {class} exists with spec.controller {}{}. Add the IngressClasses to the input (kubectl get ingressclass -o yaml) so the migration can check",
                ids.join(", "),
                if ids.len() == 1 { "is" } else { "are" },
                if ids.len() == 1 { "it" } else { "them" },
                setup.controller_class,
                if setup.class_by_name { " (or, with --ingress-class-by-name, exists at all)" } else { "" }
            ),
        });
    }
    (ours, unsure)
}

/// The first annotation under the prefix (in key order) whose value
/// contains a word of the ConfigMap's `annotation-value-word-blocklist`,
/// and that word, as ingress-nginx's `checkBadAnnotationValue` decides:
/// the list is trimmed and split on commas, the words are not trimmed, a
/// word matches as a case-sensitive substring (an empty word matches every
/// value), and an empty list checks nothing.
fn blocked_word(ing: &Object, setup: &setup::Setup<'_>) -> Option<(String, String)> {
    let list = setup.configmap?.doc.str_at(&["data", "annotation-value-word-blocklist"])?;
    if list.is_empty() {
        return None;
    }
    let words: Vec<&str> = list.trim().split(',').collect();
    let prefix = format!("{}/", setup.prefix);
    let anns = ing.doc.at(&["metadata", "annotations"])?;
    anns.entries().iter().filter(|(k, _)| k.starts_with(&prefix)).find_map(|(k, v)| {
        let v = v.as_str()?;
        words.iter().find(|w| v.contains(**w)).map(|w| (k.clone(), (*w).to_owned()))
    })
}

/// Whether ingress-nginx's `strict-validate-path-type` is (or may be) on:
/// why, or `None` when it is off. The ConfigMap key is read as Go's
/// `ParseBool`; its default is false before v1.12 and true from v1.12.
fn strict_path_type(setup: &setup::Setup<'_>) -> Option<String> {
    let set = setup.configmap.and_then(|c| c.doc.str_at(&["data", "strict-validate-path-type"]));
    match set.map(|v| (v, setup::cm_bool_value(v))) {
        Some((_, Some(true))) => Some("the ConfigMap sets strict-validate-path-type to true".into()),
        Some((_, Some(false))) => None,
        Some((v, None)) => Some(format!(
            "the ConfigMap's strict-validate-path-type `{v}` is not a Go boolean, so whether the check is on is not known"
        )),
        None => match setup::controller_version(setup) {
            Some(v) if v < (1, 12) => None,
            Some((major, minor)) => {
                Some(format!("strict-validate-path-type is on by default since v1.12 (the controller runs v{major}.{minor})"))
            }
            None => Some(
                "strict-validate-path-type is on by default since v1.12 and the controller's version is not known".into(),
            ),
        },
    }
}

/// Whether ingress-nginx's admission webhook passes `path` of pathType
/// `Exact` or `Prefix` under `strict-validate-path-type`: its
/// `inspector.ValidatePathType` regex `(?i)^/[[:alnum:]._\-/]*$`.
fn strict_path_ok(path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
}

/// A check that ingress-nginx's admission webhook (`CheckIngress`) runs at
/// apply time and its store does not: the key (under the prefix, stripped
/// of it; else the whole key), value and why of the first that refuses
/// `ing`, `None` when none does. The webhook also runs deep inspection, the
/// annotation extractor (risk and validation) and the store's word
/// blocklist (its words trimmed, so it refuses whatever the store's refuses
/// and more); those are [`watched`]'s. Checked here, in `CheckIngress`'s
/// order (its annotations in key order): `strict-validate-path-type` on a
/// path of pathType `Exact` or `Prefix`; an annotation under the default
/// prefix when `--annotations-prefix` is another; the blocklist with each
/// word trimmed; any annotation key ending in `-snippet` when snippet
/// annotations are not allowed ([`setup::snippet_annotations_dropped`]).
fn webhook_refusal(ing: &Object, setup: &setup::Setup<'_>) -> Option<(String, String, String)> {
    if let Some(on) = strict_path_type(setup) {
        for rule in ing.doc.at(&["spec", "rules"]).map(realip_kube::Node::items).unwrap_or_default() {
            for p in rule.at(&["http", "paths"]).map(realip_kube::Node::items).unwrap_or_default() {
                let path = p.str_at(&["path"]).unwrap_or_default();
                let kind = p.str_at(&["pathType"]).unwrap_or("<nil>");
                if path.is_empty() || kind == "ImplementationSpecific" || strict_path_ok(path) {
                    continue;
                }
                return Some((
                    "pathType".into(),
                    format!("{kind} {path}"),
                    format!(
                        "path `{path}` of pathType {kind} has a character other than letters, digits, `.`, `_`, `-` and `/`, which strict-validate-path-type refuses ({on}); ingress-nginx's store serves it, but its admission webhook refuses the Ingress (\"ingress contains invalid paths\")"
                    ),
                ));
            }
        }
    }
    let prefix = format!("{}/", setup.prefix);
    let words: Vec<&str> = setup
        .configmap
        .and_then(|c| c.doc.str_at(&["data", "annotation-value-word-blocklist"]))
        .filter(|l| !l.is_empty())
        .map(|l| l.trim().split(',').map(str::trim).collect())
        .unwrap_or_default();
    let snippets_off = setup::snippet_annotations_dropped(setup);
    let anns = ing.doc.at(&["metadata", "annotations"])?;
    let mut anns: Vec<(&String, &str)> =
        anns.entries().iter().map(|(k, v)| (k, v.as_str().unwrap_or_default())).collect();
    anns.sort_by_key(|(k, _)| k.as_str());
    let short = |k: &str| k.strip_prefix(&prefix).unwrap_or(k).to_owned();
    for (k, v) in anns {
        if setup.prefix != DEFAULT_PREFIX && k.starts_with(&format!("{DEFAULT_PREFIX}/")) {
            return Some((k.clone(), v.to_owned(), format!(
                "annotation {k} is under ingress-nginx's default prefix, but the controller runs --annotations-prefix={}: its store ignores the annotation (it reads only {prefix}…), and its admission webhook refuses the Ingress (\"this deployment has a custom annotation prefix defined\")",
                setup.prefix
            )));
        }
        if k.starts_with(&prefix) {
            if let Some(w) = words.iter().find(|w| v.contains(**w)) {
                return Some((short(k), v.to_owned(), format!(
                    "annotation {k} contains `{w}`, a word of the ConfigMap's annotation-value-word-blocklist once trimmed: ingress-nginx's admission webhook trims each word and refuses the Ingress (its store does not trim the words, and serves it)"
                )));
            }
        }
        if let Some(off) = snippets_off.as_ref().filter(|_| k.ends_with("-snippet")) {
            return Some((short(k), v.to_owned(), format!(
                "annotation {k} ends in `-snippet` and snippet annotations are not allowed ({off}): ingress-nginx's store ignores the annotation and serves the rest, but its admission webhook refuses the Ingress (\"Snippet directives are disabled by the Ingress administrator\")"
            )));
        }
    }
    None
}

/// Whether ingress-nginx's store serves `ing` at all: its namespace
/// (`--watch-namespace`, `--watch-namespace-selector`), `--disable-catch-all`,
/// [`drops::deep_inspection`], the word blocklist, and [`drops::check`]
/// (annotation risk and validation), in ingress-nginx's order. An Ingress
/// it never reads is [`drops::Verdict::Skip`] with the note's text: it must
/// not serve, nor shadow an Ingress that is served. One whose sync the store
/// refuses is [`drops::Verdict::Refused`] (a running controller may still
/// serve an older version) and an uncertain one [`drops::Verdict::Unsure`]:
/// both emitted deny-all, still taking their paths in the merge, never
/// emitted open nor dropped.
fn watched(ing: &Object, objects: &[Object], setup: &setup::Setup<'_>) -> drops::Verdict {
    use drops::Verdict;
    if let Some(ns) = &setup.watch_namespace {
        if *ns != ing.namespace {
            return Verdict::Skip(format!(
                "namespace {} is not the controller's --watch-namespace={ns}: ingress-nginx never reads it",
                ing.namespace
            ));
        }
    }
    if let Some(sel) = &setup.watch_namespace_selector {
        let ns = objects.iter().rev().find(|o| o.kind == "Namespace" && o.name == ing.namespace);
        let labels: Option<BTreeMap<String, String>> = ns.map(|n| {
            n.doc
                .at(&["metadata", "labels"])
                .map(|l| l.entries().iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                .unwrap_or_default()
        });
        let mut labels = labels;
        if let Some(l) = labels.as_mut() {
            // The API server sets this label on every Namespace.
            l.entry("kubernetes.io/metadata.name".into()).or_insert_with(|| ing.namespace.clone());
        }
        match labels.as_ref().map(|l| setup::selector_matches(sel, l)) {
            Some(Some(true)) => {}
            Some(Some(false)) => {
                return Verdict::Skip(format!(
                    "Namespace {} does not match the controller's --watch-namespace-selector={sel}: ingress-nginx never reads it",
                    ing.namespace
                ));
            }
            _ => {
                let why = if labels.is_none() {
                    format!(
                        "Namespace {} is not in the input, so whether --watch-namespace-selector matches it is not known",
                        ing.namespace
                    )
                } else {
                    format!("realip migrate cannot evaluate the selector `{sel}` (set-based forms are not read)")
                };
                // Left out entirely, a newer open Ingress would take its paths.
                return Verdict::Unsure {
                    key: "--watch-namespace-selector".into(),
                    value: sel.clone(),
                    why: format!("{why} (add the Namespace objects to the input: kubectl get ns -o yaml)"),
                };
            }
        }
    }
    // store.go drops the whole Ingress (rules too) when it has a default
    // backend and --disable-catch-all is on.
    if setup.disable_catch_all && ing.doc.at(&["spec", "defaultBackend"]).is_some() {
        return Verdict::Skip("has spec.defaultBackend and the controller runs with --disable-catch-all=true: ingress-nginx ignores the whole Ingress, its rules included".into());
    }
    // Deep inspection runs before the word blocklist and the annotation extractor.
    if let Some(refused) = drops::deep_inspection(ing, setup) {
        return refused;
    }
    if let Some((annotation, word)) = blocked_word(ing, setup) {
        let shown = if word.is_empty() {
            "`` (an empty word, from an empty item of the list, which matches every value)".to_owned()
        } else {
            format!("`{word}`")
        };
        let prefix = format!("{}/", setup.prefix);
        return Verdict::Refused {
            key: annotation.strip_prefix(&prefix).unwrap_or(&annotation).to_owned(),
            value: ing.annotation(&annotation).unwrap_or_default().to_owned(),
            why: format!("annotation {annotation} contains the word {shown} of the ConfigMap's annotation-value-word-blocklist: ingress-nginx refuses the whole Ingress"),
        };
    }
    drops::check(ing, setup)
}

/// The hosts (`None`: the catch-all server) where ingress-nginx matches
/// every path as a case-insensitive regex (`location ~* "^/path"`): an
/// Ingress of the host (canaries aside) sets `use-regex` or
/// `rewrite-target`, and nginx.tmpl's `enforceRegexModifier` then applies
/// to all the host's locations. By host, the Ingresses that cause it.
fn regex_hosts(
    ours: &[&Object],
    setup: &setup::Setup<'_>,
    merged: &merge::Merge,
) -> BTreeMap<Option<String>, Vec<String>> {
    let mut out: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    for o in ours {
        let ann = |k: &str| o.annotation(&format!("{}/{k}", setup.prefix)).map(str::trim);
        let regex = ann("use-regex").and_then(ingress::go_bool) == Some(true)
            || ingress::applied_path_annotation(o, setup, "rewrite-target").is_some();
        if !regex {
            continue;
        }
        if merge::is_canary(o, &setup.prefix) {
            // A canary path ingress-nginx serves as an ordinary location of
            // a server (its upstream a non-canary made) carries the canary's
            // annotations: its use-regex puts that server in regex mode
            // (enforceRegexModifier; review 26 HIGH-2).
            for cp in merged.canary_paths.get(&o.id()).map(Vec::as_slice).unwrap_or_default() {
                if let merge::CanaryFate::Location(server) = &cp.fate {
                    let by = out.entry(server.clone()).or_default();
                    if !by.contains(&o.id()) {
                        by.push(o.id());
                    }
                }
            }
            continue;
        }
        for rule in o.doc.at(&["spec", "rules"]).map(realip_kube::Node::items).unwrap_or_default() {
            let host = rule.str_at(&["host"]).filter(|h| !h.is_empty()).map(str::to_owned);
            let by = out.entry(host).or_default();
            if !by.contains(&o.id()) {
                by.push(o.id());
            }
        }
    }
    out
}

/// The report key of a location another one shadows.
fn shadow_key(s: &merge::Shadow) -> String {
    format!("path {}{} ({})", s.host.as_deref().unwrap_or("*"), s.path, s.path_type)
}

fn path_entry(o: &Object, key: String, status: Status, why: String) -> Entry {
    Entry {
        object: o.id(),
        file: o.source.file.clone(),
        line: o.line_of(&["spec", "rules"]),
        key,
        value: String::new(),
        status,
        to: String::new(),
        why,
    }
}

/// Host-wide regex mode ([`regex_hosts`]): every path of such a host is a
/// case-insensitive regex prefix in ingress-nginx (`/admin` also takes
/// `/ADMIN`, `/Admin/x`, `/administrator`; an Exact path becomes a prefix),
/// which case-sensitive HTTPRoute matches cannot cover. On an Ingress with
/// an allow/deny list or a rate limit the difference opens those requests,
/// so its paths there are left out (deny-all); elsewhere it is reported
/// changed.
fn regex_mode(plans: &mut [ingress::Plan<'_>], hosts: &BTreeMap<Option<String>, Vec<String>>, report: &mut Report) {
    for p in plans.iter_mut().filter(|p| p.canary.is_none() && p.deny_all.is_none()) {
        let o = p.obj;
        let restricted = p.allow.is_some() || !p.deny.is_empty() || !p.rates.is_empty();
        let on: Vec<Option<String>> = p.hosts.keys().filter(|h| hosts.contains_key(*h)).cloned().collect();
        for h in on {
            let by = hosts[&h].join(", ");
            let name = h.as_deref().unwrap_or("(any host)");
            if !restricted {
                report.entries.push(path_entry(o, format!("host {name} regex mode"), Status::Changed, format!("{by} sets use-regex or rewrite-target, so ingress-nginx matches every path of {name} as a case-insensitive regex prefix (`~* ^PATH`: /ADMIN, /administrator, and Exact paths as prefixes); the HTTPRoute matches are case-sensitive and whole-segment: those requests go to the host's other routes")));
                continue;
            }
            for r in p.hosts.remove(&h).unwrap_or_default() {
                report.entries.push(path_entry(o, format!("path {}", r.raw), Status::NotConverted, format!("{by} sets use-regex or rewrite-target, so ingress-nginx matches every path of {name} as a case-insensitive regex prefix (`~* \"^{}\"`: also its other spellings in upper case and longer strings), under this Ingress's allow/deny list or rate limit; the case-sensitive, whole-segment HTTPRoute match would let those requests reach the host's other routes unrestricted, so the path is left out: emitted as a deny-all route", r.raw)));
                p.denied.entry(h.clone()).or_default().push(ingress::Denied {
                    kind: r.kind,
                    value: r.value,
                    raw: r.raw,
                    path_type: r.path_type,
                });
            }
        }
    }
}

/// A name nginx serves from an Ingress's server beside the host itself:
/// the server (`None`: the catch-all), the name, the Ingress that set it
/// and how (its annotation).
struct ExtraName {
    server: Option<String>,
    name: String,
    by: String,
    how: &'static str,
    /// The name is another Ingress's host, and this server, rendered
    /// before that host's own (ingress-nginx sorts servers by hostname,
    /// nginx keeps the first server declaring a name), takes it.
    taken: bool,
}

/// The names ingress-nginx's servers answer beside their hosts
/// (`createServers`, walk order, canaries skipped): a `server-alias`
/// (the first Ingress of the host with a non-empty one sets the server's
/// aliases; an alias that is the host or another server's host is
/// dropped), the `server_name`s of a `server-snippet` (the first non-empty
/// one of the host, when snippets are allowed), and the www twin of
/// `from-to-www-redirect` (`BuildRedirects`: a redirect server unless a
/// server has that name).
fn server_names_of(ours: &[&Object], setup: &setup::Setup<'_>) -> Vec<ExtraName> {
    let mut order: Vec<&Object> = ours.iter().copied().filter(|o| !merge::is_canary(o, &setup.prefix)).collect();
    merge::nginx_order(&mut order);
    let rule_host = |rule: &realip_kube::Node| rule.str_at(&["host"]).filter(|h| !h.is_empty()).map(str::to_owned);
    let rules = |o: &Object| o.doc.at(&["spec", "rules"]).map(realip_kube::Node::items).unwrap_or_default().to_vec();
    let servers: BTreeSet<String> =
        order.iter().flat_map(|o| rules(o)).filter_map(|r| rule_host(&r)).map(|h| h.to_ascii_lowercase()).collect();
    let snippets = setup::snippet_annotations_dropped(setup).is_none();
    let mut aliased: BTreeSet<Option<String>> = BTreeSet::new();
    let mut snippeted: BTreeSet<Option<String>> = BTreeSet::new();
    let mut out: Vec<ExtraName> = Vec::new();
    let mut add = |server: &Option<String>, name: String, by: String, how: &'static str| {
        // nginx's `.example.com` is both `example.com` and `*.example.com`.
        let (names, split) = match name.strip_prefix('.') {
            Some(rest) if !rest.is_empty() => (vec![rest.to_owned(), format!("*.{rest}")], true),
            _ => (vec![name], false),
        };
        for name in names {
            let own = server.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(&name));
            // A literal alias or www twin naming a server is dropped by
            // ingress-nginx; any other name is nginx's conflict: the
            // server rendered first (hostname order, `_` for the catch-all) keeps it.
            let dropped = how == "from-to-www-redirect" || how == "server-alias" && !split;
            let taken = servers.contains(&name) && server.as_deref().unwrap_or("_") < name.as_str();
            if own || servers.contains(&name) && (dropped || !taken) || out.iter().any(|e| e.name == name) {
                continue;
            }
            out.push(ExtraName { server: server.clone(), name, by: by.clone(), how, taken });
        }
    };
    for o in order {
        let ann = |k: &str| o.annotation(&format!("{}/{k}", setup.prefix));
        let aliases: BTreeSet<String> = ann("server-alias")
            .unwrap_or_default()
            .split(',')
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .collect();
        let snippet_names: Vec<String> = ann("server-snippet")
            .filter(|s| snippets && !s.is_empty())
            .and_then(crate::snippet::directives)
            .unwrap_or_default()
            .into_iter()
            .filter(|d| d.within.is_empty() && d.name == "server_name")
            .flat_map(|d| d.args)
            .map(|a| a.to_ascii_lowercase())
            .collect();
        let www = ann("from-to-www-redirect").and_then(ingress::go_bool) == Some(true);
        for rule in rules(o) {
            let host = rule_host(&rule);
            if !aliases.is_empty() && aliased.insert(host.clone()) {
                for a in &aliases {
                    add(&host, a.clone(), o.id(), "server-alias");
                }
            }
            if ann("server-snippet").is_some_and(|s| snippets && !s.is_empty()) && snippeted.insert(host.clone()) {
                for n in &snippet_names {
                    add(&host, n.clone(), o.id(), "server-snippet");
                }
            }
            if let (true, Some(h)) = (www, &host) {
                let h = h.to_ascii_lowercase();
                let twin = h.strip_prefix("www.").map_or_else(|| format!("www.{h}"), str::to_owned);
                add(&host, twin, o.id(), "from-to-www-redirect");
            }
        }
    }
    out
}

/// Whether `h` is a hostname an HTTPRoute takes: DNS labels, optionally
/// behind one leading `*.`.
fn route_hostname(h: &str) -> bool {
    let rest = h.strip_prefix("*.").unwrap_or(h);
    !rest.is_empty()
        && rest.len() <= 253
        && rest.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The names of [`server_names_of`]: ingress-nginx serves the server's
/// locations under them (a redirect for a www twin), which the output
/// does not reproduce; left to the routes, a wildcard or host-less one
/// would take them, open. Each is emitted deny-all (`/` PathPrefix) on the
/// Ingress that set it: the exact or wildcard hostname ([`server_names_of`]
/// splits a `.example.com` in two), and the host-less catch-all for a name no route can
/// carry (`~regex`, `example.*`: nginx checks them after every exact and
/// leading-wildcard name, so they only take the catch-all's hosts).
fn extra_server_names(
    plans: &mut [ingress::Plan<'_>],
    ours: &[&Object],
    setup: &setup::Setup<'_>,
    report: &mut Report,
) {
    for e in server_names_of(ours, setup).into_iter().filter(|e| !e.taken) {
        let Some(p) = plans.iter_mut().find(|p| p.canary.is_none() && p.obj.id() == e.by) else { continue };
        let targets: Vec<Option<String>> =
            if route_hostname(&e.name) { vec![Some(e.name.clone())] } else { vec![None] };
        let server = e.server.as_deref().unwrap_or("_ (the catch-all)");
        let what = if e.how == "from-to-www-redirect" {
            format!("ingress-nginx adds a server {} answering every request with a redirect to {server} (from-to-www-redirect)", e.name)
        } else {
            format!(
                "ingress-nginx's server {server} also answers the name {} ({} of {}), with every location of {server}",
                e.name, e.how, e.by
            )
        };
        let shown: Vec<&str> = targets.iter().map(|t| t.as_deref().unwrap_or("(any host)")).collect();
        report.entries.push(path_entry(p.obj, format!("host {}", e.name), Status::NotConverted, format!(
            "{what}; the output does not serve that name as ingress-nginx did, and a wildcard or host-less route would take it instead: emitted as a deny-all route (PathPrefix /) for {}, refusing every client",
            shown.join(", ")
        )));
        for t in targets {
            p.denied.entry(t).or_default().push(ingress::Denied {
                kind: ingress::PathKind::Prefix,
                value: "/".into(),
                raw: "/".into(),
                path_type: "Prefix".into(),
            });
        }
    }
}

/// Restrictions of one Ingress that ingress-nginx applies to the whole
/// `server {}` of each of its hosts, so to every location of the host,
/// whichever Ingress defines it: client certificates (`auth-tls-secret`,
/// `auth-tls-verify-client`: `ssl_verify_client` in the server block) and
/// a `server-snippet` with refusing directives. By host (`None`: the
/// catch-all server), the Ingresses and keys that set them.
///
/// A canary counts too for its client-certificate keys: ingress-nginx's
/// `getBackendServers` copies every Ingress's `CertificateAuth` (canaries
/// included, before their paths are skipped) onto the server of its host,
/// or onto the catch-all server when no other Ingress creates that host;
/// its `server-snippet` does not count (set in `createServers`, which
/// skips canaries).
fn host_wide_restrictions(ours: &[&Object], setup: &setup::Setup<'_>) -> BTreeMap<Option<String>, Vec<String>> {
    let snippets_dropped = setup::snippet_annotations_dropped(setup).is_some();
    let mut out: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    let rule_host = |rule: &realip_kube::Node| rule.str_at(&["host"]).filter(|h| !h.is_empty()).map(str::to_owned);
    let hosts_of = |o: &Object| -> Vec<Option<String>> {
        o.doc.at(&["spec", "rules"]).map(realip_kube::Node::items).unwrap_or_default().iter().map(rule_host).collect()
    };
    // The servers ingress-nginx creates: the hosts of the non-canary Ingresses.
    let servers: std::collections::BTreeSet<Option<String>> =
        ours.iter().filter(|o| !merge::is_canary(o, &setup.prefix)).flat_map(|o| hosts_of(o)).collect();
    for o in ours {
        let canary = merge::is_canary(o, &setup.prefix);
        let mut keys = Vec::new();
        for k in ["auth-tls-secret", "auth-tls-verify-client", "server-snippet"] {
            let Some(v) = o.annotation(&format!("{}/{k}", setup.prefix)).map(str::trim) else { continue };
            if k == "server-snippet" && (snippets_dropped || canary) {
                continue;
            }
            if ingress::restricting(k, v).is_some() {
                keys.push(k);
            }
        }
        if keys.is_empty() {
            continue;
        }
        let by = format!("{} ({})", o.id(), keys.join(", "));
        for host in hosts_of(o) {
            // A canary's host with no server of its own: the catch-all server.
            let host = if canary && !servers.contains(&host) { None } else { host };
            let list = out.entry(host).or_default();
            if !list.contains(&by) {
                list.push(by.clone());
            }
        }
    }
    // Another server's extra name that is this host: that server comes first.
    for e in server_names_of(ours, setup).into_iter().filter(|e| e.taken) {
        let server = e.server.as_deref().unwrap_or("_");
        let by = format!("{} ({} of server {server}, which nginx renders before the host's own server and which therefore answers {})", e.by, e.how, e.name);
        out.entry(Some(e.name)).or_default().push(by);
    }
    // A `server` block of the ConfigMap's http-snippet that declares a host
    // takes it from ingress-nginx (the snippet's server comes first).
    let cm = setup.configmap;
    let snippet = cm.and_then(|c| c.doc.str_at(&["data", "http-snippet"]));
    let ports = setup.nginx_ports();
    if let (Some(cm), Some(names)) = (cm, snippet.and_then(|s| ingress::snippet_server_names(s, ports.as_deref()))) {
        let names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).collect();
        // The catch-all too: it serves host-less rules and the rules-less defaultBackend.
        let mut all = servers.clone();
        all.insert(None);
        for host in &all {
            let by = match host {
                Some(h) => names.iter().find(|n| ingress::server_name_matches(n, h)),
                // The catch-all answers every name no server has: a name no Ingress declares is taken from it.
                None => names.iter().find(|n| {
                    !servers.iter().flatten().any(|h| n.as_str() == h.to_ascii_lowercase())
                        || n.starts_with('~')
                        || n.contains('*')
                        || n.starts_with('.')
                }),
            };
            if let Some(n) = by {
                let by = format!("{} (http-snippet: a `server` block with server_name {n})", cm.id());
                out.entry(host.clone()).or_default().push(by);
            }
        }
    }
    out
}

/// Denies every location of the hosts in `hosts` ([`host_wide_restrictions`]):
/// those restrictions do not convert, and ingress-nginx applied them to
/// every location of the host (all Ingresses sharing it), so each route of
/// the host is emitted deny-all, and the host's `/` too (its server's own
/// fallback was behind them as well).
fn host_wide(plans: &mut [ingress::Plan<'_>], hosts: &BTreeMap<Option<String>, Vec<String>>, report: &mut Report) {
    for (h, by) in hosts {
        let name = h.as_deref().unwrap_or("(any host)");
        let by = by.join(", ");
        let mut root_denied = false;
        for p in plans.iter_mut().filter(|p| p.canary.is_none()) {
            let o = p.obj;
            for r in p.hosts.remove(h).unwrap_or_default() {
                report.entries.push(path_entry(o, format!("path {name}{} ({})", r.raw, r.path_type), Status::NotConverted, format!("{by} restricts the whole server of {name} in ingress-nginx (client certificates or a server-snippet apply to every location of the host, from every Ingress; an http-snippet server, or another server's alias or server_name, declaring the name takes the host), which does not convert: the path is emitted as a deny-all route")));
                p.denied.entry(h.clone()).or_default().push(ingress::Denied {
                    kind: r.kind,
                    value: r.value,
                    raw: r.raw,
                    path_type: r.path_type,
                });
            }
            root_denied |= p.denied.get(h).is_some_and(|ds| ds.iter().any(|d| d.raw == "/" && d.path_type != "Exact"));
        }
        if root_denied {
            continue;
        }
        // The host itself: its server answered every other path too (404 or the fallback), behind the restriction.
        let first = by.split(' ').next().unwrap_or_default().to_owned();
        let at = plans.iter().position(|p| p.canary.is_none() && p.obj.id() == first);
        // Set by the ConfigMap: the first Ingress with a location there.
        let at = at.or_else(|| plans.iter().position(|p| p.canary.is_none() && p.denied.contains_key(h)));
        if let Some(p) = at.map(|i| &mut plans[i]) {
            report.entries.push(path_entry(p.obj, format!("host {name}"), Status::NotConverted, format!("{by} restricts the whole server of {name} in ingress-nginx and does not convert: the host is denied (a deny-all PathPrefix / route), every path of it refused")));
            p.denied.entry(h.clone()).or_default().push(ingress::Denied {
                kind: ingress::PathKind::Prefix,
                value: "/".into(),
                raw: "/".into(),
                path_type: "Prefix".into(),
            });
        }
    }
}

/// Gives every denied location its final match ([`ingress::deny_cover`]):
/// one that refuses at least what ingress-nginx's location took (host-wide
/// regex mode included), and reports where it refuses more.
fn cover_denied(
    plans: &mut [ingress::Plan<'_>],
    regex_hosts: &BTreeMap<Option<String>, Vec<String>>,
    target: Target,
    report: &mut Report,
) {
    for p in plans.iter_mut().filter(|p| p.canary.is_none()) {
        let o = p.obj;
        for (h, ds) in &mut p.denied {
            let regex = regex_hosts.contains_key(h);
            let name = h.as_deref().unwrap_or("(any host)");
            for d in ds.iter_mut() {
                let (kind, value, wider) = ingress::deny_cover(&d.raw, &d.path_type, regex, target);
                d.kind = kind;
                d.value = value;
                if let Some(why) = wider {
                    let ty = match kind {
                        ingress::PathKind::Exact => "Exact",
                        ingress::PathKind::Prefix => "PathPrefix",
                        ingress::PathKind::Regex => "RegularExpression",
                    };
                    report.entries.push(Entry {
                        object: o.id(),
                        file: o.source.file.clone(),
                        line: o.line_of(&["spec", "rules"]),
                        key: format!("deny-all {name}{} ({})", d.raw, d.path_type),
                        value: String::new(),
                        status: Status::Changed,
                        to: format!("HTTPRoute match {ty} {} (deny-all)", d.value),
                        why: format!("refuses more than ingress-nginx did, never less: {why}"),
                    });
                }
            }
        }
    }
}

/// A deny-all route whose match is also an open route's (a deny widened
/// to its parent segment or `/`): the Gateway would pick one of the two by
/// age and name, so the open one is dropped and its requests refused
/// (over-denying, reported; the other way the left-out location would
/// be open).
fn denies_win(plans: &mut [ingress::Plan<'_>], report: &mut Report) {
    let mut denied: BTreeMap<(Option<String>, (u8, String)), String> = BTreeMap::new();
    for p in plans.iter().filter(|p| p.canary.is_none()) {
        for (h, ds) in &p.denied {
            for d in ds {
                denied
                    .entry((h.clone(), match_key(d.kind, &d.value)))
                    .or_insert_with(|| format!("{} ({} {})", p.obj.id(), d.raw, d.path_type));
            }
        }
    }
    for p in plans.iter_mut().filter(|p| p.canary.is_none()) {
        let o = p.obj;
        for (h, rs) in &mut p.hosts {
            let name = h.as_deref().unwrap_or("(any host)");
            rs.retain(|r| {
                let Some(by) = denied.get(&(h.clone(), match_key(r.kind, &r.value))) else { return true };
                report.entries.push(path_entry(o, format!("path {name}{} ({})", r.raw, r.path_type), Status::NotConverted, format!("refused: the deny-all route of the left-out location {by} has the same match ({}), which it needs to cover every request ingress-nginx served from that location; the Gateway would pick one of the two by age and name, so this route is dropped and its requests are refused (more than ingress-nginx refused)", r.value)));
                false
            });
        }
        p.hosts.retain(|_, rs| !rs.is_empty());
    }
}

/// Rewrites the `path RAW` entries of `object` that say the location is
/// emitted deny-all ([`ingress::LEFT_OUT_DENIED`]) to say `now` instead,
/// once a later step took that deny back.
fn retell_left_out(report: &mut Report, object: &str, raw: &str, now: &str) {
    let key = format!("path {raw}");
    for e in report.entries.iter_mut().filter(|e| e.object == object && e.key == key) {
        if e.why.contains(ingress::LEFT_OUT_DENIED) {
            e.why = e.why.replace(ingress::LEFT_OUT_DENIED, now);
        }
    }
}

/// Drops the `path RAW -> HTTPRoute match TYPE VALUE` entries (how an open
/// path converts) whose match no open rule of the Ingress has any more: the
/// path was left out later (deny-all Ingress, collision, a deny-all route
/// with the same match), which its other entries and notes say; left in,
/// the entry would claim a route that is not emitted.
fn drop_unrouted(plans: &[ingress::Plan<'_>], report: &mut Report) {
    for p in plans.iter().filter(|p| p.canary.is_none()) {
        let id = p.obj.id();
        let open: BTreeSet<String> = p
            .hosts
            .values()
            .flatten()
            .map(|r| {
                let ty = match r.kind {
                    ingress::PathKind::Exact => "Exact",
                    ingress::PathKind::Prefix => "PathPrefix",
                    ingress::PathKind::Regex => "RegularExpression",
                };
                format!("HTTPRoute match {ty} {}", r.value)
            })
            .collect();
        report.entries.retain(|e| {
            e.object != id
                || !e.key.starts_with("path ")
                || !e.to.starts_with("HTTPRoute match ")
                || e.to.ends_with("(deny-all)")
                || open.contains(e.to.split(" + ").next().unwrap_or_default())
        });
    }
}

/// The value two path matches compare by: a PathPrefix ignores a trailing `/`.
fn match_key(kind: ingress::PathKind, value: &str) -> (u8, String) {
    match kind {
        ingress::PathKind::Exact => (0, value.to_owned()),
        ingress::PathKind::Prefix => {
            (1, if value == "/" { "/".into() } else { value.trim_end_matches('/').to_owned() })
        }
        ingress::PathKind::Regex => (2, value.to_owned()),
    }
}

/// (host, match) -> (plan index, raw, pathType) of every open and denied
/// path of the non-canary plans.
type Claims = BTreeMap<(Option<String>, (u8, String)), Vec<(usize, String, String)>>;

fn claims_by_match(plans: &[ingress::Plan<'_>]) -> Claims {
    let mut by_match: Claims = BTreeMap::new();
    for (i, p) in plans.iter().enumerate().filter(|(_, p)| p.canary.is_none()) {
        for (h, rs) in &p.hosts {
            for r in rs {
                by_match.entry((h.clone(), match_key(r.kind, &r.value))).or_default().push((
                    i,
                    r.raw.clone(),
                    r.path_type.clone(),
                ));
            }
        }
        for (h, ds) in &p.denied {
            for d in ds {
                by_match.entry((h.clone(), match_key(d.kind, &d.value))).or_default().push((
                    i,
                    d.raw.clone(),
                    d.path_type.clone(),
                ));
            }
        }
    }
    by_match
}

/// Ingresses whose paths differ in ingress-nginx (another pathType, a
/// trailing `/`) but map to the same HTTPRoute match: the Gateway would
/// pick one route by age and name, maybe the open one, so every side is
/// left out (deny-all). (A Prefix and a string-prefix location of the same
/// path never meet: a controller holds either kind, [`merge::nginx_path_type`].)
fn collisions(
    plans: &mut [ingress::Plan<'_>],
    regex_hosts: &BTreeMap<Option<String>, Vec<String>>,
    report: &mut Report,
) {
    let by_match = claims_by_match(plans);
    for ((host, (_, value)), claims) in by_match {
        let owners: BTreeSet<usize> = claims.iter().map(|c| c.0).collect();
        if owners.len() < 2 {
            continue;
        }
        let name = host.as_deref().unwrap_or("*");
        let ids: Vec<String> = owners.iter().map(|i| plans[*i].obj.id()).collect();
        for (i, raw, ptype) in &claims {
            // Its "path RAW -> HTTPRoute match PathPrefix" entry is no longer true.
            let key = format!("path {raw}");
            report.entries.retain(|e| !(e.object == plans[*i].obj.id() && e.key == key && e.status == Status::Changed));
            let p = &mut plans[*i];
            let o = p.obj;
            let mut open = Vec::new();
            if let Some(rs) = p.hosts.get_mut(&host) {
                let (gone, kept): (Vec<_>, Vec<_>) =
                    std::mem::take(rs).into_iter().partition(|r| &r.raw == raw && &r.path_type == ptype);
                *rs = kept;
                open = gone;
                if rs.is_empty() {
                    p.hosts.remove(&host);
                }
            }
            let why = if regex_hosts.contains_key(&host) {
                format!("{} have paths on {name} that map to the same HTTPRoute match ({value}); the host is in regex mode, where ingress-nginx matches each as `~* \"^PATH\"` and no pathType takes precedence: the Gateway would pick one route by age and name, not as nginx did, so every one is left out: emitted as a deny-all route", ids.join(", "))
            } else {
                format!("{} map paths that ingress-nginx keeps apart to the same HTTPRoute match ({value}) on {name}: the Gateway would pick one route by age and name, not as nginx did, so every one is left out: emitted as a deny-all route", ids.join(", "))
            };
            let p = &mut plans[*i];
            report.entries.push(path_entry(o, format!("path {name}{raw} ({ptype})"), Status::NotConverted, why));
            for r in open {
                p.denied.entry(host.clone()).or_default().push(ingress::Denied {
                    kind: r.kind,
                    value: r.value,
                    raw: r.raw,
                    path_type: r.path_type,
                });
            }
        }
    }
}

/// Drops the locations of `p` that an older Ingress keeps in ingress-nginx
/// (each reported not converted, naming the winner), and records where its
/// defaultBackend is the fallback.
fn apply_merge(p: &mut ingress::Plan<'_>, merged: &merge::Merge, unsure: &Unsure, report: &mut Report) {
    let o = p.obj;
    no_server_paths(p, merged, unsure, report);
    for s in merged.shadowed.get(&o.id()).map(Vec::as_slice).unwrap_or_default() {
        if s.winner == o.id() {
            same_location_twice(p, s, report);
            continue;
        }
        if let Some(paths) = p.hosts.get_mut(&s.host) {
            paths.retain(|r| !(r.raw == s.path && r.path_type == s.path_type));
            if paths.is_empty() {
                p.hosts.remove(&s.host);
            }
        }
        if let Some(paths) = p.denied.get_mut(&s.host) {
            paths.retain(|r| !(r.raw == s.path && r.path_type == s.path_type));
            if paths.is_empty() {
                p.denied.remove(&s.host);
            }
        }
        retell_left_out(
            report,
            &o.id(),
            &s.path,
            &format!("the path is left out: shadowed by {} (see its entry)", s.winner),
        );
        let how = if s.catch_all {
            "that Ingress has no rules and its spec.defaultBackend is the catch-all server's: createServers makes it the root location `/` of the server for requests no host takes before any rule's path is placed, whatever the two Ingresses' ages (`Location already configured` for this one)"
        } else if s.by_name {
            "a creationTimestamp is missing (manifests, not a cluster): the Ingress without one counts as the newer, equal ones are ordered by namespace/name descending as ingress-nginx does; check which one your cluster really serves"
        } else {
            "it is older (creationTimestamp; ties go to the greater namespace/name)"
        };
        report.entries.push(path_entry(o, shadow_key(s), Status::NotConverted, format!(
            "shadowed by {} in ingress-nginx, which serves this host and path from one Ingress only and {how}; emitted, the Gateway could pick this route instead and bypass that Ingress's allow list or limits, so it is left out",
            s.winner
        )));
    }
    upstream_paths(p, merged, report);
    default_backend(p, merged, report);
}

/// The paths of a non-canary plan whose upstream a canary made
/// (NoServer): ingress-nginx has no location for them, so the path is
/// dropped as ingress-nginx drops it (the host's other routes take its
/// requests, as nginx's other locations did). A copy of a path listed
/// twice in the Ingress drops alone when another copy is served (runs
/// before the same-Ingress dedupe, which then keeps that copy).
///
/// When the canary that made the upstream is one ingress-nginx may not
/// serve ([`Unsure`]: refused, maybe dropped), the path may be served as
/// written (canary absent) or not at all (canary present, the host's
/// other locations answer): it is kept deny-all, never more open than
/// either, instead of being dropped to a more open route.
fn no_server_paths(p: &mut ingress::Plan<'_>, merged: &merge::Merge, unsure: &Unsure, report: &mut Report) {
    let o = p.obj;
    let id = o.id();
    let key =
        |u: &merge::UpstreamPath| format!("path {}{} ({})", u.host.as_deref().unwrap_or("*"), u.path, u.path_type);
    let is = |u: &merge::UpstreamPath, raw: &str, ptype: &str| u.path == raw && u.path_type == ptype;
    for u in merged.no_server.get(&id).map(Vec::as_slice).unwrap_or_default() {
        if u.other_copy_served {
            // Only this copy: the first with its backend (else its Service).
            let own =
                |r: &ingress::PathRule| u.own == format!("{}/{}:{}", o.namespace, r.backend.service, r.backend.port);
            let svc = |r: &ingress::PathRule| {
                u.own.split_once('/').and_then(|(_, s)| s.rsplit_once(':')).is_some_and(|(s, _)| s == r.backend.service)
            };
            if let Some(paths) = p.hosts.get_mut(&u.host) {
                let copy = |r: &ingress::PathRule| is(u, &r.raw, &r.path_type);
                let at = paths
                    .iter()
                    .position(|r| copy(r) && own(r))
                    .or_else(|| paths.iter().position(|r| copy(r) && svc(r)));
                if let Some(i) = at {
                    paths.remove(i);
                }
                if paths.is_empty() {
                    p.hosts.remove(&u.host);
                }
            }
            report.entries.push(path_entry(o, key(u), Status::Ignored, format!(
                "this copy (→ {}) is not served by ingress-nginx: its upstream `{}` was made by the canary {} (NoServer), and getBackendServers skips it; another copy of the path in this Ingress is the location ingress-nginx serves, and so does the output",
                u.own, u.upstream, u.made.creator
            )));
            continue;
        }
        if let Some((_, _, _, doubt)) = unsure.get(&u.made.creator) {
            let moved: Vec<ingress::Denied> = p
                .hosts
                .get_mut(&u.host)
                .map(|paths| {
                    let (gone, kept) = std::mem::take(paths).into_iter().partition(|r| is(u, &r.raw, &r.path_type));
                    *paths = kept;
                    gone
                })
                .unwrap_or_default()
                .into_iter()
                .map(|r: ingress::PathRule| ingress::Denied {
                    kind: r.kind,
                    value: r.value,
                    raw: r.raw,
                    path_type: r.path_type,
                })
                .collect();
            if p.hosts.get(&u.host).is_some_and(Vec::is_empty) {
                p.hosts.remove(&u.host);
            }
            if !moved.is_empty() {
                p.denied.entry(u.host.clone()).or_default().extend(moved);
            }
            let maybe = match doubt {
                Doubt::Refused => {
                    "whose current version ingress-nginx refuses (a running controller may serve an older one, or none)"
                }
                Doubt::Dropped => "which ingress-nginx may have dropped",
                Doubt::Denied => "whose locations ingress-nginx may have denied",
            };
            report.entries.push(path_entry(o, key(u), Status::NotConverted, format!(
                "whether ingress-nginx serves this path is not known: its upstream `{}` is made (NoServer) by the canary {} {maybe} (see its entries); with the canary in the store getBackendServers skips the path and the host's other locations answer, without it the path is served as written; the output refuses it to every client (a deny-all route), never more open than either",
                u.upstream, u.made.creator
            )));
            continue;
        }
        if let Some(paths) = p.hosts.get_mut(&u.host) {
            paths.retain(|r| !is(u, &r.raw, &r.path_type));
            if paths.is_empty() {
                p.hosts.remove(&u.host);
            }
        }
        if let Some(paths) = p.denied.get_mut(&u.host) {
            paths.retain(|r| !is(u, &r.raw, &r.path_type));
            if paths.is_empty() {
                p.denied.remove(&u.host);
            }
        }
        retell_left_out(report, &id, &u.path, &format!("the path is left out: ingress-nginx serves no location for it (its upstream {} is a canary's, see its entry)", u.upstream));
        report.entries.push(path_entry(o, key(u), Status::NotConverted, format!(
            "not served by ingress-nginx: its upstream `{}` (ingress-nginx names upstreams namespace-service-port, so every path naming {} shares it, whatever its Ingress or namespace) was made by the canary {} (the first Ingress, oldest then greater namespace/name, to name it, or a canary's spec.defaultBackend, which replaces it whatever its age), which marks it NoServer, and getBackendServers skips every path of a NoServer upstream, canary or not: the host's other locations (else its default backend, 404) answered these requests; emitted, the route would open a path ingress-nginx never served, so it is left out (no route)",
            u.upstream, u.made.service, u.made.creator
        )));
    }
}

/// The paths of a non-canary plan that ingress-nginx does not serve as
/// written because of their upstream ([`merge::Upstream`]; NoServer ones:
/// [`no_server_paths`]): one another Service made first (upstream
/// names collide across namespaces) sends to that Service, which the
/// output does not name: left out, deny-all; one whose upstream
/// mergeAlternativeBackends deleted ([`merge::Merge::gone`]) answers 503:
/// deny-all.
fn upstream_paths(p: &mut ingress::Plan<'_>, merged: &merge::Merge, report: &mut Report) {
    let o = p.obj;
    let id = o.id();
    let key =
        |u: &merge::UpstreamPath| format!("path {}{} ({})", u.host.as_deref().unwrap_or("*"), u.path, u.path_type);
    let is = |u: &merge::UpstreamPath, raw: &str, ptype: &str| u.path == raw && u.path_type == ptype;
    // Moves the routes of `u` to the plan's deny-all locations; whether any was there.
    let deny = |p: &mut ingress::Plan<'_>, u: &merge::UpstreamPath| {
        let mut moved = Vec::new();
        if let Some(paths) = p.hosts.get_mut(&u.host) {
            let (gone, kept): (Vec<_>, Vec<_>) =
                std::mem::take(paths).into_iter().partition(|r| is(u, &r.raw, &r.path_type));
            *paths = kept;
            moved = gone;
            if paths.is_empty() {
                p.hosts.remove(&u.host);
            }
        }
        if moved.is_empty() {
            return false;
        }
        let ds = p.denied.entry(u.host.clone()).or_default();
        for r in moved {
            ds.push(ingress::Denied { kind: r.kind, value: r.value, raw: r.raw, path_type: r.path_type });
        }
        true
    };
    for u in merged.gone.get(&id).map(Vec::as_slice).unwrap_or_default() {
        if !deny(p, u) {
            continue;
        }
        let by = merged.deleted.get(&u.upstream).cloned().unwrap_or_default();
        report.entries.push(path_entry(o, key(u), Status::NotConverted, format!(
            "ingress-nginx answers 503 here to every client: the location sends to the upstream `{}` ({}), which mergeAlternativeBackends deleted because of {by} (it deletes the upstream of that name whoever made it, so balancer.lua has no backend for it); the output refuses it too: emitted as a deny-all route",
            u.upstream, u.made.service
        )));
    }
    for u in merged.foreign.get(&id).map(Vec::as_slice).unwrap_or_default() {
        if !deny(p, u) {
            continue;
        }
        report.entries.push(path_entry(o, key(u), Status::NotConverted, format!(
            "ingress-nginx sends it to {}, not to this path's Service: upstreams are named namespace-service-port, names collide across namespaces, and the first Ingress to name `{}` ({}) made it; the output does not send to that Service from here, so the path is left out: emitted as a deny-all route",
            u.made.service, u.upstream, u.made.creator
        )));
    }
}

/// A canary plan's paths by [`merge::CanaryFate`]: only those whose
/// upstream the canary made stay folds into a main Ingress's route. One
/// whose upstream a non-canary Ingress made is an ordinary location of
/// ingress-nginx with the canary's own annotations, 100 % to the canary's
/// Service: a route of its own the output cannot make from a canary, so it
/// is left out, emitted deny-all (the returned plan) in place of the
/// location it took from newer Ingresses. The others get no traffic in
/// ingress-nginx, nor in the output; the canary-* entries then say so.
fn canary_fates<'a>(
    p: &mut ingress::Plan<'a>,
    merged: &merge::Merge,
    report: &mut Report,
) -> Option<ingress::Plan<'a>> {
    p.canary.as_ref()?;
    let o = p.obj;
    let id = o.id();
    let fates = merged.canary_paths.get(&id).map(Vec::as_slice).unwrap_or_default();
    let mut won: BTreeMap<Option<String>, Vec<ingress::Denied>> = BTreeMap::new();
    let mut folds = 0usize;
    let hosts: Vec<Option<String>> = p.hosts.keys().cloned().collect();
    for h in hosts {
        let paths = p.hosts.remove(&h).unwrap_or_default();
        let mut kept = Vec::new();
        for r in paths {
            let Some(cp) = fates.iter().find(|c| c.host == h && c.path == r.raw && c.path_type == r.path_type) else {
                kept.push(r);
                continue;
            };
            let key = format!("canary path {}{}", h.as_deref().unwrap_or("*"), r.raw);
            let creator = merged.upstreams.get(&cp.upstream).map_or_else(String::new, |u| u.creator.clone());
            let (status, why) = match &cp.fate {
                merge::CanaryFate::Alternative => {
                    folds += 1;
                    kept.push(r);
                    continue;
                }
                merge::CanaryFate::OtherCanary(by) => (Status::NotConverted, format!("its upstream `{}` was made by the canary {by} (the first to name it): ingress-nginx gives this location that canary's weight and headers, not this one's; not converted: the main route keeps all the traffic", cp.upstream)),
                merge::CanaryFate::Deleted(by) if by.starts_with(&format!("{id}'s path {}{} ({}),", h.as_deref().unwrap_or("*"), r.raw, r.path_type)) => (Status::NotConverted, format!("no location of ingress-nginx has this host, path (as written) and pathType, so mergeAlternativeBackends deletes the canary's upstream `{}`: balancer.lua then sends nothing to it on any location (its weight is 0 on every path of the canary naming it)", cp.upstream)),
                merge::CanaryFate::Deleted(by) => (Status::Ignored, format!("ingress-nginx sends nothing to the canary here: mergeAlternativeBackends deleted its upstream `{}` because of {by}, and balancer.lua falls back to the main backend everywhere it was merged; the output sends nothing to it either", cp.upstream)),
                merge::CanaryFate::Blocked(what) => (Status::NotConverted, format!("the main location's upstream already has an alternative backend that routes nothing, first in its list: {what}; balancer.lua routes every location of that upstream by the first alternative only, so ingress-nginx sends everything to the main backend here, nothing to this canary; not converted: the main route keeps all the traffic")),
                merge::CanaryFate::Eclipsed(by) => (Status::NotConverted, format!("the main location's upstream already has the alternative backend of the canary {by} (merged first): balancer.lua routes every location of that upstream by the first alternative only, so ingress-nginx sends {by}'s share to {by}'s Service here, nothing to this canary; not converted: the main route keeps all the traffic")),
                merge::CanaryFate::Taken(winner) => (Status::Ignored, format!("its upstream `{}` was made by the non-canary {creator}, so it is no canary upstream: {winner} serves this location (older), and the canary is merged into it with that upstream's empty traffic policy (weight 0); ingress-nginx sends nothing to it here, nor does the output", cp.upstream)),
                merge::CanaryFate::Location(server) => {
                    let on = server.as_deref().map_or_else(|| "the catch-all server (hosts no Ingress names; the canary creates no server of its own)".to_owned(), |s| format!("server {s}"));
                    won.entry(server.clone()).or_default().push(ingress::Denied {
                        kind: r.kind,
                        value: r.value.clone(),
                        raw: r.raw.clone(),
                        path_type: r.path_type.clone(),
                    });
                    (Status::NotConverted, format!("its upstream `{}` was made by the non-canary {creator} (the first Ingress to name it, oldest then greater namespace/name), so ingress-nginx serves this path as an ordinary location of {on} with THIS canary's annotations (its allow/deny lists and limits apply, its canary weights do not), 100 % to {}:{}, and newer Ingresses' same location is not served (`already configured`); a canary cannot be a route of its own in the output, so the location is left out: emitted as a deny-all route", cp.upstream, r.backend.service, r.backend.port))
                }
            };
            report.entries.push(path_entry(o, key, status, why));
        }
        if !kept.is_empty() {
            p.hosts.insert(h, kept);
        }
    }
    if folds > 0 {
        spread_entry(o, merged, report);
    }
    // A canary path whose backend did not convert (already denied): where
    // ingress-nginx serves it as an ordinary location it must stay refused.
    for (h, ds) in &mut p.denied {
        ds.retain(|d| {
            let Some(cp) = fates.iter().find(|c| c.host == *h && c.path == d.raw && c.path_type == d.path_type) else {
                return true;
            };
            let merge::CanaryFate::Location(server) = &cp.fate else { return true };
            won.entry(server.clone()).or_default().push(d.clone());
            report.entries.push(Entry {
                object: id.clone(),
                file: o.source.file.clone(),
                line: o.line_of(&["spec", "rules"]),
                key: format!("canary path {}{}", h.as_deref().unwrap_or("*"), d.raw),
                value: String::new(),
                status: Status::NotConverted,
                to: String::new(),
                why: format!("its upstream `{}` was made by a non-canary Ingress, so ingress-nginx serves this path as an ordinary location with this canary's annotations (see its other entries for why it did not convert): emitted as a deny-all route", cp.upstream),
            });
            false
        });
    }
    p.denied.retain(|_, ds| !ds.is_empty());
    if folds == 0 && !fates.is_empty() {
        // Its weights and header matches reach no location in ingress-nginx.
        for e in report.entries.iter_mut().filter(|e| e.object == id && e.key.starts_with("canary")) {
            if matches!(e.status, Status::Converted | Status::Changed) && !e.to.is_empty() {
                e.status = Status::Ignored;
                e.to = String::new();
                e.why = "ingress-nginx routes nothing by it: no path of this canary is an alternative backend of a location there (see its canary path entries), and the output routes nothing by it either".into();
            }
        }
    }
    if won.is_empty() {
        return None;
    }
    Some(denied_locations(p, won, report))
}

/// The entry of a canary whose share ingress-nginx also applies to other
/// locations of its main upstream ([`merge::Merge::spread`]).
fn spread_entry(o: &Object, merged: &merge::Merge, report: &mut Report) {
    let id = o.id();
    if let Some(others) = merged.spread.get(&id) {
        let shown: Vec<&str> = others.iter().take(8).map(String::as_str).collect();
        let more = if others.len() > shown.len() {
            format!(" and {} more", others.len() - shown.len())
        } else {
            String::new()
        };
        report.entries.push(Entry {
            object: id.clone(),
            file: o.source.file.clone(),
            line: o.source.line,
            key: "canary share on other locations".into(),
            value: String::new(),
            status: Status::Changed,
            to: String::new(),
            why: format!("ingress-nginx attaches a canary to the upstream (namespace-service-port) of the location it matches, not to the location, so it also splits {}{more}, every other location sending to that upstream, with this canary's weights and headers; the output splits only the canary's own paths, those others send everything to their Service", shown.join(", ")),
        });
    }
}

/// The deny-all plan of a canary's ordinary locations (`won`, by server):
/// [`canary_fates`].
fn denied_locations<'a>(
    p: &ingress::Plan<'a>,
    won: BTreeMap<Option<String>, Vec<ingress::Denied>>,
    report: &mut Report,
) -> ingress::Plan<'a> {
    let o = p.obj;
    let id = o.id();
    // Its other annotations apply on those locations in ingress-nginx.
    for e in report
        .entries
        .iter_mut()
        .filter(|e| e.object == id && e.why.starts_with("ingress-nginx ignores this on a canary Ingress"))
    {
        e.status = Status::NotConverted;
        e.why = "ingress-nginx applies it on this canary's ordinary locations (see its canary path entries: a non-canary Ingress made their upstream), which are left out (deny-all)".into();
    }
    let mut denied = p.clone();
    denied.canary = None;
    denied.hosts = BTreeMap::new();
    denied.default_backend = None;
    denied.fallback = None;
    denied.fallback_denied = None;
    denied.tls = Vec::new();
    denied.denied = won;
    let why = "its locations that ingress-nginx serves as ordinary ones (see its canary path entries)".to_owned();
    report.notes.push(format!(
        "{} ({}:{}): left out: {why}; emitted as deny-all (those hosts and paths, no backend, a policy refusing every client) so their requests are refused instead of falling through to a more open route",
        id, o.source.file, o.source.line
    ));
    denied.deny_all = Some(why);
    denied.deny_everything();
    denied
}

/// One Ingress lists the location `s` twice: ingress-nginx serves the
/// first copy ("Location already configured" for the second), so the
/// output keeps the first and drops the rest.
fn same_location_twice(p: &mut ingress::Plan<'_>, s: &merge::Shadow, report: &mut Report) {
    fn keep_first<T>(paths: Option<&mut Vec<T>>, is_it: impl Fn(&T) -> bool) {
        let mut first = true;
        if let Some(paths) = paths {
            paths.retain(|r| !is_it(r) || std::mem::replace(&mut first, false));
        }
    }
    keep_first(p.hosts.get_mut(&s.host), |r| r.raw == s.path && r.path_type == s.path_type);
    keep_first(p.denied.get_mut(&s.host), |r| r.raw == s.path && r.path_type == s.path_type);
    report.entries.push(path_entry(p.obj, shadow_key(s), Status::Ignored, "listed again in the same Ingress: ingress-nginx serves the first copy only (\"Location already configured\"), and so does the output".into()));
}

/// Where ingress-nginx uses an Ingress's `spec.defaultBackend`.
fn default_backend(p: &mut ingress::Plan<'_>, merged: &merge::Merge, report: &mut Report) {
    let o = p.obj;
    let Some(b) = p.default_backend.take() else { return };
    let id = o.id();
    let mut entry = |status: Status, to: &str, why: String| {
        report.entries.push(Entry {
            object: id.clone(),
            file: o.source.file.clone(),
            line: o.line_of(&["spec", "defaultBackend"]),
            key: "spec.defaultBackend".into(),
            value: format!("{}:{}", b.service, b.port),
            status,
            to: to.to_owned(),
            why,
        });
    };
    let has_rules = o.doc.at(&["spec", "rules"]).is_some_and(|r| !r.items().is_empty());
    if p.canary.is_some() {
        // mergeAlternativeBackends: a canary's defaultBackend goes to every
        // location of the catch-all server, whatever its path, or is deleted.
        let name = o.doc.at(&["spec", "defaultBackend"]).and_then(|d| merge::upstream_name(&o.namespace, d));
        match name.and_then(|(n, _)| merged.deleted.get(&n).cloned()) {
            Some(by) => entry(Status::Ignored, "", format!("a canary's defaultBackend is an alternative backend of the catch-all server's locations in ingress-nginx, but its upstream is deleted (because of {by}): no traffic goes to it, and none in the output")),
            None => entry(Status::NotConverted, "", "ingress-nginx adds a canary's defaultBackend as the alternative backend of every location of the catch-all server (host-less rules, its root for hosts no Ingress names), whatever their paths, with this canary's weights and headers; not converted: those routes send everything to their own Services".into()),
        }
        return;
    }
    // The root location names the upstream, which mergeAlternativeBackends
    // may have deleted (a canary's path or defaultBackend of the same name
    // matched no location): no balancer in Lua, 503 to every client. Or
    // another namespace's defaultBackend replaced it (names collide across
    // namespaces): the root sends to that Service.
    let gone = o
        .doc
        .at(&["spec", "defaultBackend"])
        .or_else(|| o.doc.at(&["spec", "backend"]))
        .and_then(|d| merge::upstream_name(&o.namespace, d))
        .and_then(|(n, svc)| match (merged.deleted.get(&n), merged.upstreams.get(&n)) {
            (Some(by), _) => Some(format!("ingress-nginx answers 503 there to every client: the root location sends to the upstream `{n}`, which mergeAlternativeBackends deleted (because of {by}; it deletes the upstream of that name whoever made it), so balancer.lua has no backend for it")),
            (None, Some(u)) if u.service != svc => Some(format!("ingress-nginx sends it to {}, not to {svc}: the root location sends to the upstream `{n}` (upstreams are named namespace-service-port, names collide across namespaces), which {} made last (a spec.defaultBackend replaces the upstream whatever its age)", u.service, u.creator)),
            _ => None,
        });
    if !has_rules {
        if merged.catch_all.as_deref() == Some(id.as_str()) && gone.is_some() {
            let why = gone.unwrap_or_default();
            entry(Status::NotConverted, "", format!("the backend of ingress-nginx's catch-all server `_` (hosts no Ingress names); {why}: the output refuses it, a host-less deny-all route (PathPrefix /) rather than the Service"));
            p.denied.entry(None).or_default().push(ingress::Denied {
                kind: ingress::PathKind::Prefix,
                value: "/".into(),
                raw: "/".into(),
                path_type: "Prefix".into(),
            });
        } else if merged.catch_all.as_deref() == Some(id.as_str()) {
            entry(Status::Changed, &format!("HTTPRoute {}/{}-default-backend (no hostnames, PathPrefix /)", o.namespace, o.name), "the backend of ingress-nginx's catch-all server `_` (hosts no Ingress names); a host-less route also gets the paths no rule matches on the other hosts, which ingress-nginx answered from that host's own fallback (its first Ingress's defaultBackend, else the controller's default backend, a 404)".into());
            p.default_backend = Some(b);
        } else {
            let by = merged.catch_all.as_deref().unwrap_or("another Ingress");
            entry(Status::Ignored, "", format!("ingress-nginx gives the catch-all server the defaultBackend of {by}, which comes first (oldest, then greater namespace/name)"));
        }
        return;
    }
    let hosts: Vec<String> = merged.creates.get(&id).map(|h| h.iter().cloned().collect()).unwrap_or_default();
    if hosts.is_empty() {
        entry(Status::Ignored, "", "ingress-nginx uses an Ingress's defaultBackend only as the `/` fallback of the hosts whose server it creates (the first Ingress, oldest then greater namespace/name, to name the host): other Ingresses created all of this one's, and a rule without host belongs to the catch-all server, which keeps its own backend".into());
        return;
    }
    p.fallback = Some((b, hosts));
    p.fallback_denied = gone;
}

/// nginx picks the server by name first and then a location in it: a path
/// no location of server `H` matches is answered by `H`'s root location
/// (its fallback: the creating Ingress's defaultBackend, else the default
/// backend's 404, with that Ingress's access lists), never by the
/// wildcard or catch-all server. The Gateway API ranks routes across
/// hostnames, so a wildcard route covering `H` (or a host-less one) would
/// take those paths. Each named host with such a less specific route in
/// the output and no `/` of its own gets a deny-all `PathPrefix /` (403
/// where ingress-nginx answered 404 or its fallback; migrate review 22
/// HIGH-2/3/4).
fn root_locations(plans: &mut [ingress::Plan<'_>], creates: &BTreeMap<String, BTreeSet<String>>, report: &mut Report) {
    let rooted = |ps: &[ingress::PathRule]| ps.iter().any(|r| r.kind == ingress::PathKind::Prefix && r.value == "/");
    let denied_root = |ds: &[ingress::Denied]| ds.iter().any(|d| d.kind == ingress::PathKind::Prefix && d.value == "/");
    // Every named host, those with a `/` of their own, and whether a
    // host-less or wildcard route is open (a deny-all one takes nothing away).
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    let mut root: BTreeSet<String> = BTreeSet::new();
    let mut open: BTreeSet<String> = BTreeSet::new();
    let mut hostless = false;
    for p in plans.iter().filter(|p| p.canary.is_none()) {
        hostless |= p.default_backend.is_some();
        for (h, ps) in &p.hosts {
            match h {
                Some(h) => {
                    hosts.insert(h.clone());
                    if !ps.is_empty() {
                        open.insert(h.clone());
                    }
                    if rooted(ps) {
                        root.insert(h.clone());
                    }
                }
                None => hostless |= !ps.is_empty(),
            }
        }
        for (h, ds) in p.denied.iter().filter_map(|(h, ds)| Some((h.as_ref()?, ds))) {
            hosts.insert(h.clone());
            if denied_root(ds) {
                root.insert(h.clone());
            }
        }
    }
    // Every server ingress-nginx creates has a root location, also one with
    // no path left (a rule without `http`, paths of a NoServer upstream).
    let mut creator: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, hs) in creates {
        for h in hs {
            hosts.insert(h.clone());
            creator.entry(h.as_str()).or_insert(id.as_str());
        }
    }
    // The root location carries the creating Ingress's annotations, its
    // permanent-/temporal-redirect too: nginx returns it for every path no
    // other location of the server matches (kubernetes/ingress-nginx#9435;
    // review 36 H-1), so that Ingress's routes get a `PathPrefix /` rule,
    // which its redirect answers.
    let rootless: Vec<String> = hosts.iter().filter(|h| !root.contains(*h)).cloned().collect();
    for h in &rootless {
        let Some(c) = creator.get(h.as_str()) else { continue };
        let Some(p) = plans.iter_mut().find(|p| p.obj.id() == *c && p.redirect.is_some() && p.deny_all.is_none())
        else {
            continue;
        };
        let Some(backend) = p.hosts.values().flatten().next().map(|r| r.backend.clone()) else { continue };
        p.hosts.entry(Some(h.clone())).or_default().push(ingress::PathRule {
            kind: ingress::PathKind::Prefix,
            value: "/".into(),
            backend,
            rewrite: None,
            raw: "/".into(),
            path_type: "Prefix".into(),
            slash_location: false,
        });
        report.entries.push(path_entry(p.obj, format!("host {h} root"), Status::Converted, format!(
            "ingress-nginx answers a path no location of its server {h} matches from that server's root location, which carries the annotations of the Ingress that created the server, its redirect included (kubernetes/ingress-nginx#9435): the redirect route of this Ingress gets PathPrefix / for {h} too"
        )));
        root.insert(h.clone());
    }
    let wildcards: Vec<&String> = open.iter().filter(|h| h.starts_with("*.")).collect();
    for h in hosts.iter().filter(|h| !root.contains(*h)) {
        let wider = wildcards.iter().find(|w| !w.as_str().eq(h.as_str()) && h.ends_with(&w[1..]));
        let by = match (wider, hostless) {
            (Some(w), _) => format!("the wildcard route of {w}"),
            (None, true) => "a host-less route (the catch-all server's)".to_owned(),
            (None, false) => continue,
        };
        let key = Some(h.clone());
        let on_host = plans
            .iter()
            .position(|p| p.canary.is_none() && (p.hosts.contains_key(&key) || p.denied.contains_key(&key)));
        let by_creator = || plans.iter().position(|p| creator.get(h.as_str()).is_some_and(|c| p.obj.id() == *c));
        let Some(p) = on_host.or_else(by_creator).and_then(|i| plans.get_mut(i)) else {
            continue;
        };
        p.denied.entry(key).or_default().push(ingress::Denied {
            kind: ingress::PathKind::Prefix,
            value: "/".into(),
            raw: "/".into(),
            path_type: "Prefix".into(),
        });
        report.entries.push(path_entry(p.obj, format!("host {h} root"), Status::Changed, format!(
            "ingress-nginx answers a path no location of its server {h} matches from that server's root location (the controller's default backend, a 404, with the access lists of the Ingress that created the server), never from another server; in the output {by} would take those requests instead, so {h} gets a deny-all route (PathPrefix /): they are refused (403) where ingress-nginx answered 404"
        )));
    }
}

/// In regex mode a deny-all route of a left-out location is widened (the
/// realip target: to a prefix without letters, as nginx matched it
/// case-insensitively; Envoy Gateway: a case-insensitive regular
/// expression). nginx tries the regex locations longest first, so the
/// left-out location beat every shorter one that also matches; in the
/// output an open PathPrefix longer than the widened prefix (realip), or
/// an open Exact path (both targets: Exact outranks every other match),
/// would take its requests. Such an open route is dropped when it can
/// overlap the location, judged on the literal start of its path (up to
/// the first regex character), and its requests refused (more than
/// ingress-nginx refused; migrate review 22 HIGH-1, review 24 HIGH-1/2).
fn widened_denies_win(
    plans: &mut [ingress::Plan<'_>],
    regex_hosts: &BTreeMap<Option<String>, Vec<String>>,
    target: Target,
    report: &mut Report,
) {
    struct LeftOut {
        host: Option<String>,
        /// The widened deny's prefix (realip), or empty (a regex, Envoy Gateway).
        widened: String,
        /// The location's path up to its first regex character, lower case.
        literal: String,
        /// Its length as nginx sorts it (the path as written).
        len: usize,
        by: String,
    }
    let mut left: Vec<LeftOut> = Vec::new();
    for p in plans.iter().filter(|p| p.canary.is_none()) {
        for (h, ds) in p.denied.iter().filter(|(h, _)| regex_hosts.contains_key(*h)) {
            for d in ds {
                let widened = match (target, d.kind) {
                    (Target::Realip, ingress::PathKind::Prefix) if d.value.len() < d.raw.len() => d.value.clone(),
                    (Target::EnvoyGateway, ingress::PathKind::Regex) => String::new(),
                    _ => continue,
                };
                // As nginx's regex can start: an optional character or an
                // alternation shortens it (review 26 HIGH-1).
                let literal =
                    ingress::location_head(&d.raw, &d.path_type, true).unwrap_or_default().to_ascii_lowercase();
                let by = format!("{} ({} {})", p.obj.id(), d.raw, d.path_type);
                left.push(LeftOut { host: h.clone(), widened, literal, len: d.raw.len(), by });
            }
        }
    }
    if left.is_empty() {
        return;
    }
    for p in plans.iter_mut().filter(|p| p.canary.is_none()) {
        let o = p.obj;
        for (h, rs) in &mut p.hosts {
            let name = h.as_deref().unwrap_or("(any host)");
            rs.retain(|r| {
                let value = r.value.to_ascii_lowercase();
                let hit = left.iter().find(|l| {
                    l.host == *h
                        && match r.kind {
                            ingress::PathKind::Prefix => {
                                target == Target::Realip
                                    && r.value.len() > l.widened.len()
                                    && (l.literal.starts_with(&value) || value.starts_with(&l.literal))
                            }
                            ingress::PathKind::Exact => value.starts_with(&l.literal) && r.raw.len() <= l.len,
                            ingress::PathKind::Regex => false,
                        }
                });
                let Some(l) = hit else { return true };
                report.entries.push(path_entry(o, format!("path {name}{} ({})", r.raw, r.path_type), Status::NotConverted, format!(
                    "refused: in regex mode ingress-nginx tries its locations longest first, so requests of this path that the left-out location {} matches went there, and the output's deny-all route for that location (widened, as nginx matched it case-insensitively) would lose to this open route; so this route is dropped and its requests are refused (more than ingress-nginx refused)",
                    l.by
                )));
                false
            });
        }
        p.hosts.retain(|_, rs| !rs.is_empty());
    }
}

/// Adds each Ingress's defaultBackend as the `/` PathPrefix rule of the
/// hosts it is the fallback of, unless an Ingress routes `/` on that host
/// itself (nginx's `/` location then replaces the fallback). A PathPrefix
/// `/` is the longest-match loser, so it only gets what no other path of the
/// host matches, as nginx's root location.
fn fallbacks(plans: &mut [ingress::Plan<'_>], report: &mut Report) {
    let root_taken: std::collections::BTreeSet<Option<String>> = plans
        .iter()
        .filter(|p| p.canary.is_none())
        .flat_map(|p| {
            let routed = p
                .hosts
                .iter()
                .filter(|(_, ps)| ps.iter().any(|r| r.kind == ingress::PathKind::Prefix && r.value == "/"))
                .map(|(h, _)| h.clone());
            let denied = p
                .denied
                .iter()
                .filter(|(_, ps)| ps.iter().any(|r| r.kind == ingress::PathKind::Prefix && r.value == "/"))
                .map(|(h, _)| h.clone());
            routed.chain(denied).collect::<Vec<_>>()
        })
        .collect();
    for p in plans.iter_mut() {
        let Some((b, hosts)) = p.fallback.take() else { continue };
        let o = p.obj;
        for h in hosts {
            let taken = root_taken.contains(&Some(h.clone()));
            if !taken && (p.deny_all.is_some() || p.fallback_denied.is_some()) {
                p.denied.entry(Some(h.clone())).or_default().push(ingress::Denied {
                    kind: ingress::PathKind::Prefix,
                    value: "/".into(),
                    raw: "/".into(),
                    path_type: "Prefix".into(),
                });
            } else if !taken {
                p.hosts.entry(Some(h.clone())).or_default().push(ingress::PathRule {
                    kind: ingress::PathKind::Prefix,
                    value: "/".into(),
                    backend: b.clone(),
                    rewrite: None,
                    raw: "/".into(),
                    path_type: "Prefix".into(),
                    slash_location: false,
                });
            }
            let (status, to, why) = if let (false, Some(why)) = (taken, &p.fallback_denied) {
                (
                    Status::NotConverted,
                    String::new(),
                    format!("the fallback of {h}: {why}; the output refuses it: `/` is emitted deny-all rather than sent to the Service"),
                )
            } else if !taken && p.deny_all.is_some() {
                (
                    Status::NotConverted,
                    String::new(),
                    format!("the fallback of {h}: the Ingress is left out, so its `/` is emitted deny-all (refused) rather than open"),
                )
            } else if taken {
                (
                    Status::Ignored,
                    String::new(),
                    format!("an Ingress routes `/` on {h} itself, which replaces the fallback in ingress-nginx too"),
                )
            } else {
                (Status::Converted, format!("HTTPRoute rule of {h}: PathPrefix / → {}:{}", b.service, b.port), format!("the fallback of {h} (ingress-nginx's root location of the server this Ingress creates): paths no other rule of the host matches; the Ingress's access lists and limits apply, as nginx applies its annotations there"))
            };
            report.entries.push(Entry {
                object: o.id(),
                file: o.source.file.clone(),
                line: o.line_of(&["spec", "defaultBackend"]),
                key: format!("spec.defaultBackend {h}"),
                value: format!("{}:{}", b.service, b.port),
                status,
                to,
                why,
            });
        }
    }
}

/// The client address itself could not be converted (a key deciding the
/// source or who is trusted is not converted, or an http-snippet holds
/// real-IP directives): access lists and rate limits
/// would key on the wrong address (often the load balancer's).
fn client_ip_lost(report: &Report) -> bool {
    report.entries.iter().any(|e| {
        e.status == Status::NotConverted && e.key == "http-snippet" && ingress::real_ip_directives(&e.value)
            || e.status == Status::NotConverted
                && matches!(
                    e.key.as_str(),
                    "use-forwarded-headers"
                        | "enable-real-ip"
                        | "forwarded-for-header"
                        | "use-proxy-protocol"
                        | "proxy-real-ip-cidr"
                        | "--configmap"
                )
    })
}

/// `--enable-ssl-passthrough`: the controller answers 443 itself and hands
/// every other TLS connection to nginx on 127.0.0.1:442 with a PROXY header
/// (`pkg/tcpproxy/tcp.go`, template.go `httpsListener`). nginx then sees the
/// real client only when its real-IP module reads that header
/// (`use-proxy-protocol`) and trusts 127.0.0.1 (`proxy-real-ip-cidr`);
/// otherwise every HTTPS client is 127.0.0.1: an allow list refuses all of
/// them and a rate limit shares one bucket. Reports the flag; returns
/// whether HTTPS clients are lost that way.
/// `--default-ssl-certificate`: ingress-nginx served HTTPS with it for
/// every host without a certificate of its own (no redirect for those),
/// where the output has HTTPS listeners only for hosts of TLS entries
/// (review 33 H3): reported not converted.
fn default_certificate(setup: &setup::Setup<'_>, report: &mut Report) {
    let Some(ctl) = setup.controller else { return };
    let args = setup::controller_args(ctl);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(cert) = realip_doctor::model::flag(&argv, "--default-ssl-certificate") else { return };
    report.entries.push(Entry {
        object: ctl.id(),
        file: ctl.source.file.clone(),
        line: ctl.source.line,
        key: "--default-ssl-certificate".into(),
        value: cert.to_owned(),
        status: Status::NotConverted,
        to: String::new(),
        why: "ingress-nginx served HTTPS with this certificate for every host that has none of its own (Ingresses without a TLS entry for it); the Gateway has HTTPS listeners only for the hosts of TLS entries, so HTTPS to the others is refused: add HTTPS listeners with this certificate by hand (a wildcard hostname, or one per host)".into(),
    });
}

fn https_client_lost(setup: &setup::Setup<'_>, ci: &setup::ClientIp, target: Target, report: &mut Report) -> bool {
    let Some(ctl) = setup.controller.filter(|_| setup.ssl_passthrough) else { return false };
    let lost = !https_pp_from_any_peer(setup, ci);
    let (status, why) = if lost {
        (Status::NotConverted, format!("ingress-nginx's controller listens on 443 itself and hands every TLS connection it does not pass through to nginx on 127.0.0.1:442 (PROXY header with its own peer); {}, so nginx sees every HTTPS client as 127.0.0.1: allow lists refused all of them and rate limits shared one bucket. The Gateway sees the real client, which would be more open: Ingresses with an allow list or a rate limit on a TLS host are left out (deny-all); deny lists (which refused nobody over HTTPS there) stay converted", if ci.proxy_protocol { "127.0.0.1 is not in proxy-real-ip-cidr" } else { "use-proxy-protocol is off" }))
    } else {
        (Status::Changed, format!("ingress-nginx's controller listens on 443 itself and hands TLS connections to nginx on 127.0.0.1:442 with a PROXY header carrying the source it read; its own 443 listener believes a PROXY header from ANY peer (proxy-real-ip-cidr is not consulted there) and accepts a connection without one (its peer is then the client), and nginx, with use-proxy-protocol on and 127.0.0.1 in proxy-real-ip-cidr, believes what it forwards. So over HTTPS any client reaching port 443 directly could name its own address (pass an allow list, escape a deny list) and HTTPS without PROXY was served; {}, and direct HTTPS clients that send no PROXY header are refused. Passing TLS through (the ssl-passthrough annotation) is not converted", if target == Target::EnvoyGateway {
            "Envoy Gateway also believes a PROXY header from any peer (see use-proxy-protocol) but requires it".to_owned()
        } else {
            format!("the Gateway's PROXY policy believes it only from {} and requires it: a different client over HTTPS (more closed than ingress-nginx)", ci.trusted.join(", "))
        }))
    };
    report.entries.push(Entry {
        object: ctl.id(),
        file: ctl.source.file.clone(),
        line: ctl.source.line,
        key: "--enable-ssl-passthrough".into(),
        value: "true".into(),
        status,
        to: String::new(),
        why,
    });
    lost
}

/// Whether, under `--enable-ssl-passthrough`, ingress-nginx believed a
/// PROXY header from any peer over HTTPS: the controller's own 443 listener
/// (nginx.go `setupSSLProxy`: a go-proxyproto `Listener` without a policy)
/// takes a PROXY header from every peer, and none is required, and hands
/// its source to nginx on 127.0.0.1:442, which believes it when
/// use-proxy-protocol is on and 127.0.0.1 is in proxy-real-ip-cidr.
fn https_pp_from_any_peer(setup: &setup::Setup<'_>, ci: &setup::ClientIp) -> bool {
    if setup.controller.is_none() || !setup.ssl_passthrough || !ci.proxy_protocol {
        return false;
    }
    let loopback = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    ci.trusted.iter().filter_map(|c| ingress::split_cidr(c)).any(|(a, l)| {
        let (a, l) = ingress::go_ipnet(a, l);
        a.is_ipv4() && ingress::go_ipnet(loopback, l).0 == a
    })
}

/// Every host named in a `spec.tls` of the input's Ingresses, and `""`
/// when an entry names no host: the Gateway's host-less HTTPS listener it
/// becomes takes every route (counted even without a `secretName`, when no
/// listener is emitted: the safe side).
fn tls_hosts(objects: &[Object]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for o in objects.iter().filter(|o| o.kind == "Ingress") {
        for t in o.doc.at(&["spec", "tls"]).map(realip_kube::Node::items).unwrap_or_default() {
            let hosts = t.get("hosts").map(realip_kube::Node::items).unwrap_or_default();
            if hosts.is_empty() {
                out.insert(String::new());
            }
            for h in hosts {
                if let Some(h) = h.as_str() {
                    out.insert(h.to_ascii_lowercase());
                }
            }
        }
    }
    out
}

/// Whether the Ingress `o` has TLS of its own, or a host (or the catch-all)
/// that some Ingress's `spec.tls` covers (a wildcard covers one label), or
/// any Ingress has a host-less `spec.tls` entry (`""` in `tls_hosts`: its
/// HTTPS listener has no hostname, so every route attaches to it).
fn serves_tls(o: &Object, tls_hosts: &BTreeSet<String>) -> bool {
    if tls_hosts.contains("") || o.doc.at(&["spec", "tls"]).is_some_and(|t| !t.items().is_empty()) {
        return true;
    }
    let rules = o.doc.at(&["spec", "rules"]).map(realip_kube::Node::items).unwrap_or_default();
    if rules.is_empty() || rules.iter().any(|r| r.str_at(&["host"]).is_none_or(str::is_empty)) {
        // The catch-all server answers HTTPS for every name no server has.
        return !tls_hosts.is_empty();
    }
    rules.iter().filter_map(|r| r.str_at(&["host"])).any(|h| {
        let h = h.to_ascii_lowercase();
        let wild = h.split_once('.').map(|(_, rest)| format!("*.{rest}"));
        tls_hosts.contains(&h) || wild.is_some_and(|w| tls_hosts.contains(&w))
    })
}

/// Leaves an Ingress out because its HTTPS clients are all 127.0.0.1 in
/// ingress-nginx ([`https_client_lost`]). Returns why.
fn leave_out_https(report: &mut Report, first_entry: usize) -> String {
    mark_keyed_not_converted(report, first_entry, "with --enable-ssl-passthrough every HTTPS client of ingress-nginx is 127.0.0.1 (see that flag's entry): this allow list refused all of them, this limit was one bucket for all; keyed on the real client it would be more open, so the Ingress is left out (emitted deny-all)");
    "it has an allow list or a rate limit on a TLS host and, with --enable-ssl-passthrough, ingress-nginx saw every HTTPS client as 127.0.0.1".into()
}

/// The entries (from `first_entry` on) that became a list or limit keyed
/// on the client, converted or changed: not converted, saying `why`.
fn mark_keyed_not_converted(report: &mut Report, first_entry: usize, why: &str) {
    for e in &mut report.entries[first_entry..] {
        let keyed =
            ["ClientAccessPolicy", "SecurityPolicy", "BackendTrafficPolicy"].iter().any(|k| e.to.starts_with(k));
        if keyed && matches!(e.status, Status::Converted | Status::Changed) {
            e.status = Status::NotConverted;
            e.to = String::new();
            e.why = why.into();
        }
    }
}

/// The entries of a left-out Ingress `id` that say an annotation became
/// part of the output (converted or changed, `-> what`): nothing of the
/// Ingress is emitted but its deny-all routes, so they become not converted,
/// saying what they would have become.
fn left_out_entries(report: &mut Report, id: &str) {
    for e in report.entries.iter_mut().filter(|e| e.object == id) {
        // Path entries go in drop_unrouted (the deny-all entries say how the path is refused).
        let path = e.key.starts_with("path ");
        if matches!(e.status, Status::Converted | Status::Changed)
            && !e.to.is_empty()
            && e.to != "HTTPRoute parentRefs"
            && !path
        {
            e.status = Status::NotConverted;
            e.why = format!(
                "the Ingress is left out (emitted deny-all: see the note and its other not-converted entries), so this is not in the output; it would become {}: {}",
                e.to, e.why
            );
            e.to = String::new();
        }
    }
}

/// Leaves an Ingress out like one whose allow list cannot be converted: its
/// access and rate entries (from `first_entry` on) become not converted.
/// Returns why, for [`ingress::Plan::deny_all`].
fn leave_out(report: &mut Report, first_entry: usize) -> String {
    mark_keyed_not_converted(report, first_entry, "the client address could not be converted (see the client-IP keys of the ConfigMap): this list or limit would key on the wrong address, often the load balancer's, so the Ingress is left out (emitted deny-all)");
    "it has an allow/deny list or a rate limit and the client address could not be converted".into()
}

/// Leaves an Ingress out because the ConfigMap restricts every server with
/// `keys`, which are not converted: emitted, the route would be open to
/// clients ingress-nginx refused. Its entries (from `first_entry` on) are
/// not converted. Returns why, for [`ingress::Plan::deny_all`].
fn leave_out_unrestricted(keys: &[String], report: &mut Report, first_entry: usize) -> String {
    let keys = keys.join(", ");
    for e in &mut report.entries[first_entry..] {
        if matches!(e.status, Status::Converted | Status::Changed) {
            e.status = Status::NotConverted;
            e.to = String::new();
            e.why =
                format!("the Ingress is left out (emitted deny-all): the ConfigMap's {keys} restricts every server and is not converted");
        }
    }
    format!("the ConfigMap's {keys} restricts every server and is not converted")
}

/// The Ingresses whose annotations make ingress-nginx render a
/// configuration nginx refuses, so every reload with them fails (migrate
/// review 18 MED2, F1, F6): a limit-rps or limit-rpm whose burst (times
/// limit-burst-multiplier, in Go's wrapping int) is not positive; with
/// annotation validation off (the default before v1.12) or not known, a
/// redirect, app-root or rewrite-target value that splits the directive
/// it is written into unquoted ([`ingress::splits_directive`]). Only an
/// admission webhook that runs `nginx -t` ([`setup::webhook_tests_nginx`]:
/// before v1.11.5 and v1.12.1) keeps such an Ingress out of the cluster;
/// with it off, a later release, or either not known, the Ingress may be
/// in the store, and then no configuration loads.
fn reload_breakers(ours: &[&Object], setup: &setup::Setup<'_>, webhook: &setup::Webhook) -> Vec<String> {
    const WRITTEN: [(&str, &str); 4] = [
        ("permanent-redirect", "return <code> <url>"),
        ("temporal-redirect", "return <code> <url>"),
        ("app-root", "return 302 $scheme://$http_host<app-root>"),
        ("rewrite-target", "rewrite <path> <target> break"),
    ];
    if matches!(webhook, setup::Webhook::On(_)) && setup::webhook_tests_nginx(setup) == Some(true) {
        return Vec::new();
    }
    let (validated, sure) = drops::annotation_validation(setup);
    let tested = match (webhook, setup::webhook_tests_nginx(setup)) {
        (setup::Webhook::Off(_), _) => "the admission webhook is off",
        (_, Some(false)) => "the controller's admission webhook no longer runs `nginx -t` (off since v1.11.5 and v1.12.1, the CVE-2025-1974 fix), so it does not refuse the Ingress",
        _ => "whether an admission webhook running `nginx -t` (before v1.11.5 and v1.12.1) refused it at apply time is not known",
    };
    let mut out = Vec::new();
    for o in ours {
        let ann = |k: &str| o.annotation(&format!("{}/{k}", setup.prefix));
        if let Some(b) = ingress::burst_refused(ann).first() {
            out.push(format!(
                "{}'s limit-burst-multiplier (`limit_req … burst={b}`, which nginx refuses; {tested})",
                o.id()
            ));
            continue;
        }
        if let Some((k, why)) = reload::ingress_fault(o, setup, validated && sure) {
            out.push(format!(
                "{}'s {k} ({why}, in a directive nginx.tmpl writes into its locations; {tested})",
                o.id()
            ));
            continue;
        }
        if validated && sure {
            continue;
        }
        if let Some((k, how)) = WRITTEN.iter().find(|(k, _)| ann(k).is_some_and(ingress::splits_directive)) {
            let maybe = if validated { ", if annotation validation is off (not known here)" } else { "" };
            out.push(format!(
                "{}'s {k} (written unquoted into `{how};`, where its whitespace, `;` or `{{` splits the directive{maybe}; {tested})",
                o.id()
            ));
        }
    }
    out
}

/// Leaves an Ingress out (deny-all) because no configuration with the
/// `causes` (a ConfigMap key, an Ingress's annotation) loads in nginx, so what ingress-nginx serves of it is
/// not known; its converted entries (from `first_entry` on) become not
/// converted. Returns why, for [`ingress::Plan::deny_all`].
fn leave_out_unloadable(causes: &[String], report: &mut Report, first_entry: usize) -> String {
    let why = format!(
        "nginx refuses every configuration ingress-nginx renders with {} (see its entry), so what ingress-nginx serves of this Ingress (an older configuration, or nothing) is not known",
        causes.join(", ")
    );
    for e in &mut report.entries[first_entry..] {
        if matches!(e.status, Status::Converted | Status::Changed) {
            e.status = Status::NotConverted;
            e.to = String::new();
            e.why = format!("the Ingress is left out (emitted deny-all): {why}");
        }
    }
    why
}

/// Where Envoy Gateway's policies differ from what ingress-nginx did;
/// `https_any`: ingress-nginx believed a PROXY header from any peer on
/// HTTPS ([`https_pp_from_any_peer`]), so the trusted list held on HTTP only.
fn envoy_differences(ci: &setup::ClientIp, https_any: bool, report: &mut Report) {
    let only = |trusted: &str| {
        if https_any {
            format!("{trusted} on HTTP; on HTTPS, under --enable-ssl-passthrough, the controller's own 443 listener believed it from any peer, as Envoy Gateway does")
        } else {
            trusted.to_owned()
        }
    };
    for e in &mut report.entries {
        match e.key.as_str() {
            // A value nginx refuses keeps its entry: nothing loads with it.
            _ if e.why.contains(setup::UNLOADABLE) => {}
            "proxy-real-ip-cidr" if ci.proxy_protocol && !ci.trusts_every_peer() && e.status == Status::Warning => {
                // Keep the trust-all warning, louder than a change.
                e.why.push_str(" With Envoy Gateway it is wider still: a PROXY header is accepted from any peer, native IPv6 ones included.");
            }
            "proxy-real-ip-cidr" if ci.proxy_protocol && !ci.trusts_every_peer() => {
                e.status = Status::Changed;
                e.why = format!("Envoy Gateway accepts a PROXY header from any peer, native IPv6 ones included (ingress-nginx believed only {}): keep the ingress reachable from the load balancer only (NetworkPolicy, security groups)", only(&ci.trusted.join(", ")));
            }
            "use-proxy-protocol" if ci.proxy_protocol && !ci.trusts_every_peer() => {
                // The listener must still parse PROXY (the load balancer sends it),
                // but the address in it is not one ingress-nginx would have believed.
                e.status = Status::NotConverted;
                e.to = String::new();
                e.why = format!("the ClientTrafficPolicy still expects a PROXY header (proxyProtocol, so requests parse), but Envoy Gateway has no trusted-sender list and believes it from any peer, native IPv6 ones included, where ingress-nginx believed it only from {}: anyone reaching the Gateway directly can claim any client address, so Ingresses with allow/deny lists or rate limits keyed on it are left out (deny-all); restrict who reaches the Gateway and add them by hand (or pass --trust 0.0.0.0/0 --trust ::/0 if every peer may really send PROXY)", only(&ci.trusted.join(", ")));
            }
            "compute-full-forwarded-for" if !ci.full_xff => {
                e.status = Status::Changed;
                e.why =
                    "Envoy appends the connecting hop to X-Forwarded-For; ingress-nginx sent only the client".into();
            }
            "use-forwarded-headers" | "enable-real-ip" | "forwarded-for-header"
                if ci.header.as_deref().is_some_and(|h| !h.eq_ignore_ascii_case("x-forwarded-for"))
                    && !ci.trusts_every_peer() =>
            {
                e.status = Status::NotConverted;
                e.to = String::new();
                e.why = format!("Envoy Gateway's customHeader believes the header from every peer, native IPv6 ones included, where ingress-nginx believed it only from {} (its 0.0.0.0/0 never matches a native IPv6 peer): not emitted, so the client is the peer until you restrict who reaches the Gateway and add it by hand (or pass --trust 0.0.0.0/0 --trust ::/0 if every peer may really set it)", ci.trusted.join(", "));
            }
            _ => {}
        }
    }
}

/// What the Service's load balancer does, against the ConfigMap.
fn load_balancer(svc: &Object, ci: &setup::ClientIp, report: &mut Report) {
    let lb = realip_doctor::cloud::classify(svc.doc.at(&["metadata", "annotations"]));
    let cloud = lb.cloud.map_or("an unrecognised cloud", |c| c.name);
    let layer = match lb.layer {
        realip_doctor::cloud::Layer::L4 => "L4",
        realip_doctor::cloud::Layer::L7 => "L7",
    };
    report.notes.push(format!(
        "Service {} ({}:{}): {layer} load balancer of {cloud}{}",
        svc.id(),
        svc.source.file,
        svc.source.line,
        lb.proxy_protocol.map_or_else(String::new, |k| format!(", PROXY protocol on ({k})"))
    ));
    let mut push = |key: &str, why: String| {
        report.entries.push(Entry {
            object: svc.id(),
            file: svc.source.file.clone(),
            line: svc.line_of(&["metadata", "annotations"]),
            key: key.to_owned(),
            value: String::new(),
            status: Status::Warning,
            to: String::new(),
            why,
        });
    };
    match (lb.proxy_protocol, ci.proxy_protocol) {
        (Some(k), false) => push(k, "the load balancer sends PROXY but use-proxy-protocol is off: the listeners will not expect it (every request fails to parse) — turn one of them off or on in both".into()),
        (None, true) if lb.cloud.is_some() => push("use-proxy-protocol", "use-proxy-protocol is on but no annotation of this Service turns PROXY on at the load balancer: check that it sends one".into()),
        _ => {}
    }
    if lb.layer == realip_doctor::cloud::Layer::L4 && lb.proxy_protocol.is_none() && ci.header.is_some() && ci.trust_all
    {
        push(
            "use-forwarded-headers",
            "the load balancer passes TCP through and writes no X-Forwarded-For: with every peer trusted, the header the client sends decides its address. Trust only the proxies that really add it (--trust), or none".into(),
        );
    }
}

/// The client is lost to SNAT before ingress-nginx (as `realip doctor`'s
/// `ingress-etp-cluster` / `lb-ip-target-client-ip-lost` rules find it: an
/// L4 load balancer without PROXY, node targets with externalTrafficPolicy
/// Cluster or pod targets without preserve_client_ip) while the client is
/// the TCP peer (no PROXY, no trusted header): every allow list, deny list
/// and limit acts on node addresses, in ingress-nginx and in the output
/// alike. Their entries no longer claim "never the load balancer's
/// address", and the run is incomplete (exit 1) when there are any.
fn snat_hides_the_client(setup: &setup::Setup<'_>, ci: &setup::ClientIp, report: &mut Report) {
    use realip_doctor::cloud::{Layer, Target as LbTarget};
    const CLAIM: &str = "(never the load balancer's address)";
    let peer = !ci.proxy_protocol && (ci.header.is_none() || ci.trusted.is_empty());
    if !peer {
        return;
    }
    let Some(publish) = setup.service else {
        service_unknown(setup, CLAIM, report);
        return;
    };
    // Every Service in front of the controller's pods (the published one
    // and, say, the chart's internal one): clients of each reach nginx.
    let mut keyed: Vec<String> = Vec::new();
    for svc in std::iter::once(publish).chain(setup.other_services.iter().copied()) {
        let lb = realip_doctor::cloud::classify(svc.doc.at(&["metadata", "annotations"]));
        let ty = svc.doc.str_at(&["spec", "type"]).unwrap_or("ClusterIP");
        let etp = svc.doc.str_at(&["spec", "externalTrafficPolicy"]).unwrap_or("Cluster");
        let lost = matches!(ty, "LoadBalancer" | "NodePort")
            && lb.layer == Layer::L4
            && lb.proxy_protocol.is_none()
            && if ty == "LoadBalancer" && lb.target == LbTarget::Pod { !lb.preserve_client_ip } else { etp != "Local" };
        if !lost {
            continue;
        }
        for e in report.entries.iter_mut().filter(|e| e.why.contains(CLAIM)) {
            e.why = e.why.replace(
                CLAIM,
                &format!("(here a node's address: Service {} loses the client to SNAT, see its entry)", svc.id()),
            );
            keyed.push(format!("{} {}", e.object, e.key));
        }
        let how = if ty == "LoadBalancer" && lb.target == LbTarget::Pod {
            "an L4 load balancer with pod targets, without preserve_client_ip or PROXY".to_owned()
        } else {
            format!("{ty} with externalTrafficPolicy: {etp} and no PROXY protocol")
        };
        let (status, then) = if keyed.is_empty() {
            (Status::Warning, "no allow list, deny list or limit is keyed on it here".to_owned())
        } else {
            (Status::NotConverted, format!("{} act on node addresses for its clients, in ingress-nginx and in the output alike: not the client restriction they claim; keep the client (externalTrafficPolicy: Local, PROXY protocol on both ends, or preserve_client_ip) before relying on them", keyed.join(", ")))
        };
        report.entries.push(Entry {
            object: svc.id(),
            file: svc.source.file.clone(),
            line: svc.line_of(&["spec", "externalTrafficPolicy"]),
            key: "externalTrafficPolicy".into(),
            value: etp.to_owned(),
            status,
            to: String::new(),
            why: format!("the Service is {how} and nothing is trusted, so the client of ingress-nginx and of the Gateway is the TCP peer, which is the node that SNAT'ed the connection (realip doctor: ingress-etp-cluster); {then}"),
        });
    }
}

/// [`snat_hides_the_client`] without the controller's Service in the input:
/// nothing is trusted, so the client is the TCP peer, and whether that is
/// the client or a node that SNAT'ed it (`externalTrafficPolicy: Cluster`,
/// Kubernetes' default) is not known. Restrictions keyed on it are not
/// converted as the client restriction they claim to be (exit 1); with
/// none, a warning.
fn service_unknown(setup: &setup::Setup<'_>, claim: &str, report: &mut Report) {
    if setup.host_network {
        report.notes.push("the controller's pods use the node's network (hostNetwork: true) and no Service of it is in the input: clients reach nginx on the node, with no kube-proxy SNAT, so the TCP peer is the client (or the load balancer in front of the nodes)".into());
        return;
    }
    let mut keyed = Vec::new();
    for e in report.entries.iter_mut().filter(|e| e.why.contains(claim)) {
        e.why = e.why.replace(
            claim,
            "(here the TCP peer, which may be a node's address: the controller's Service is not in the input, see its entry)",
        );
        keyed.push(format!("{} {}", e.object, e.key));
    }
    let (object, file, line) = setup
        .controller
        .map_or_else(|| (String::new(), String::new(), 0), |c| (c.id(), c.source.file.clone(), c.source.line));
    let (status, then) = if keyed.is_empty() {
        (Status::Warning, "no allow list, deny list or limit is keyed on it here".to_owned())
    } else {
        (Status::NotConverted, format!("{} may act on node addresses, in ingress-nginx and in the output alike, so they are not converted as the client restriction they claim to be", keyed.join(", ")))
    };
    report.entries.push(Entry {
        object,
        file,
        line,
        key: "Service".into(),
        value: String::new(),
        status,
        to: String::new(),
        why: format!("the controller's Service (named by --publish-service, or a LoadBalancer or NodePort Service selecting its pods) is not in the input, and no PROXY protocol or trusted header names the client, so the client of ingress-nginx and of the Gateway is the TCP peer: with a Service of externalTrafficPolicy: Cluster (Kubernetes' default) and an L4 load balancer, kube-proxy SNATs every connection and that peer is a node (realip doctor: ingress-etp-cluster); {then}. Add the Service to the input (kubectl get svc -n NAMESPACE -o yaml) so the migration can tell"),
    });
}

/// The objects as one multi-document YAML stream.
pub fn to_yaml(objects: &[Value]) -> String {
    let mut out = String::from(HEADER);
    for o in objects {
        out.push_str("---\n");
        out.push_str(&yaml_document(o));
    }
    out
}

/// One object as a YAML document (block style, keys in the object's
/// order). Invariant: every string reads back as the same string under
/// YAML 1.1 too (kubectl's `sigs.k8s.io/yaml`), so a name, a value or a
/// header value such as `no`, `on`, `y`, `1:20` or `0x1F` is never read
/// as a boolean or a number (review 28: serde_norway wrote them plain):
/// a string is written plain only when it is a word of letters, digits,
/// `.`, `_`, `/` and `-` starting with a letter or `/` and is no YAML
/// 1.1 boolean or null; otherwise quoted.
pub fn yaml_document(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => yaml_block(&mut out, v, 0),
        Value::Array(a) if !a.is_empty() => yaml_block(&mut out, v, 0),
        other => {
            out.push_str(&yaml_scalar(other));
            out.push('\n');
        }
    }
    out
}

/// A non-empty mapping or sequence, each line indented by `indent`.
fn yaml_block(out: &mut String, v: &Value, indent: usize) {
    let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                pad(out, indent);
                yaml_entry(out, k, val, indent);
            }
        }
        Value::Array(a) => {
            for item in a {
                pad(out, indent);
                out.push_str("- ");
                yaml_item(out, item, indent + 2);
            }
        }
        _ => {}
    }
}

/// `key: value` (the key's indentation written), a nested block on the
/// lines below.
fn yaml_entry(out: &mut String, key: &str, val: &Value, indent: usize) {
    out.push_str(&yaml_string(key));
    match val {
        Value::Object(m) if !m.is_empty() => {
            out.push_str(":\n");
            yaml_block(out, val, indent + 2);
        }
        // Sequences under a key at the key's own indentation, as kubectl writes them.
        Value::Array(a) if !a.is_empty() => {
            out.push_str(":\n");
            yaml_block(out, val, indent);
        }
        _ => {
            out.push_str(": ");
            out.push_str(&yaml_scalar(val));
            out.push('\n');
        }
    }
}

/// A sequence item after its `- `; its continuation lines at `indent`.
fn yaml_item(out: &mut String, item: &Value, indent: usize) {
    match item {
        Value::Object(m) if !m.is_empty() => {
            for (i, (k, val)) in m.iter().enumerate() {
                if i > 0 {
                    out.extend(std::iter::repeat_n(' ', indent));
                }
                yaml_entry(out, k, val, indent);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.extend(std::iter::repeat_n(' ', indent));
                }
                out.push_str("- ");
                yaml_item(out, x, indent + 2);
            }
        }
        _ => {
            out.push_str(&yaml_scalar(item));
            out.push('\n');
        }
    }
}

/// A scalar, or an empty mapping or sequence, on one line.
fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => yaml_string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// A string as a YAML scalar that reads back as this string under YAML
/// 1.1 and 1.2 ([`yaml_document`]'s invariant).
fn yaml_string(s: &str) -> String {
    const WORDS: [&str; 10] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"];
    let plain = s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'/')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
        && !WORDS.iter().any(|w| s.eq_ignore_ascii_case(w));
    if plain {
        s.to_owned()
    } else if s.chars().any(char::is_control) {
        // Double-quoted, every control character (C0, DEL, C1, NEL) escaped:
        // YAML readers refuse DEL and C1 raw, and read a raw NEL as a line
        // break (review 28 F7).
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04X}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// The objects as one JSON document: a `v1` `List` (what `kubectl apply -f`
/// takes), for `--format json`, where stdout holds nothing but JSON.
pub fn to_json(objects: &[Value]) -> String {
    format!("{:#}\n", serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects}))
}

/// The file name of one object under `--out`: `kind_namespace_name.yaml`.
/// `_` appears in no kind, namespace or name (DNS labels and subdomains),
/// so two objects never share a file (`web` + `a-b` against `web-a` + `b`
/// once did, and the later overwrote the earlier in silence). A name
/// longer than a file system takes (255 bytes) is cut, with a stable hash
/// of the whole.
pub fn file_name(o: &Value) -> String {
    let part = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or("unnamed").to_owned();
    let stem =
        format!("{}_{}_{}", part("/kind").to_ascii_lowercase(), part("/metadata/namespace"), part("/metadata/name"));
    if stem.len() + ".yaml".len() <= 255 {
        return format!("{stem}.yaml");
    }
    let head: String = stem.chars().take(200).collect();
    format!("{head}-{:08x}.yaml", emit::fnv(&stem))
}

/// The file under `--out` that lists what the last run wrote there.
pub const MANIFEST: &str = ".realip-migrate";

const HEADER: &str = "# Generated by `realip migrate ingress-nginx`; read the report before applying.\n";

/// Writes one file per object into `dir` (created if needed); returns the
/// paths. A rerun replaces its own output: the files the previous run
/// listed in [`MANIFEST`] (and that still start with the generated header)
/// are removed first, so objects that are gone do not linger to be applied
/// by `kubectl apply -f DIR`. A non-empty directory without a manifest is
/// refused ([`Error::OutNotEmpty`]): nothing of the user's is touched.
/// Nothing partial is ever left: the files are staged first, and a
/// failure leaves the directory as it was.
pub fn write_dir(objects: &[Value], dir: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
    // Every file name first: two objects for one file, or a name the file
    // system refuses, must fail before anything is written (a half-written
    // directory could hold a route without its access policy).
    let mut seen = std::collections::BTreeSet::new();
    for o in objects {
        let name = file_name(o);
        if !seen.insert(name.clone()) {
            return Err(Error::DuplicateObject(name));
        }
    }
    let write_err = |path: &Path, e| Error::Write { path: path.to_owned(), source: e };
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let manifest = dir.join(MANIFEST);
    // Never followed: a manifest planted as a symlink (a checked-out
    // directory) would have this run read and overwrite any file the user
    // can write.
    let listed = match manifest.symlink_metadata() {
        Ok(m) if !m.is_file() => {
            let e = std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is not a regular file (a symlink?): refusing to read or replace it; remove it",
            );
            return Err(write_err(&manifest, e));
        }
        Ok(_) => std::fs::read_to_string(&manifest).map_err(|e| write_err(&manifest, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut entries = std::fs::read_dir(dir).map_err(|e| write_err(dir, e))?;
            if entries.next().is_some() {
                return Err(Error::OutNotEmpty(dir.to_owned()));
            }
            String::new()
        }
        Err(e) => return Err(write_err(&manifest, e)),
    };
    // Every file is written into a staging directory inside `dir` first (the
    // same file system, so the moves below are renames): a write that fails
    // (disk full, permissions, a name the file system refuses) leaves `dir`
    // as it was, never a route without its policy. The directory is this
    // run's own (a new name, created here): only then is it removed.
    let staging = match fresh_dir(dir, "staging") {
        Ok(s) => s,
        Err(e) => {
            if created {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
    };
    let staged = stage(objects, &staging);
    let names = match staged {
        Ok(names) => names,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            if created {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
    };
    let result = replace(dir, &staging, &names, &listed, &manifest);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Creates a directory `dir/.realip-migrate.WHAT-PID-N` that did not exist
/// (`create_dir` fails on any existing name, a symlink included, and is not
/// followed): a leftover or planted one is never reused nor removed.
fn fresh_dir(dir: &Path, what: &str) -> Result<std::path::PathBuf, Error> {
    let pid = std::process::id();
    let mut last = None;
    for n in 0..100u32 {
        let p = dir.join(format!(".realip-migrate.{what}-{pid}-{n}"));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((p, e)),
            Err(e) => return Err(Error::Write { path: p, source: e }),
        }
    }
    let (path, source) = last.expect("the loop ran");
    Err(Error::Write { path, source })
}

/// Replaces `manifest` with `text` through a file created new in this run's
/// own `staging` directory and renamed over it: a symlink at `manifest` is
/// replaced, never written through.
fn write_manifest(staging: &Path, manifest: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = staging.join(MANIFEST);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    f.write_all(text.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, manifest)
}

/// Moves the staged files `names` into `dir` in place of the previous
/// run's (listed in `listed`), then writes the manifest. Every destination
/// is checked before anything is touched; the old files are moved to a
/// backup directory first and put back on any error, so `dir` holds either
/// the previous run or this one, never a route without its policy.
fn replace(
    dir: &Path,
    staging: &Path,
    names: &[String],
    listed: &str,
    manifest: &Path,
) -> Result<Vec<std::path::PathBuf>, Error> {
    let write_err = |path: &Path, e| Error::Write { path: path.to_owned(), source: e };
    let ours = |name: &str| {
        // Only plain names this function writes; never a path elsewhere.
        let plain = Path::new(name).extension().is_some_and(|e| e == "yaml")
            && !name.contains(['/', '\\'])
            && !name.starts_with('.');
        let p = dir.join(name);
        plain
            && p.symlink_metadata().is_ok_and(|m| m.is_file())
            && std::fs::read_to_string(&p).is_ok_and(|t| t.starts_with(HEADER))
    };
    let old: Vec<&str> = listed.lines().filter(|n| ours(n)).collect();
    for name in names {
        let p = dir.join(name);
        if p.symlink_metadata().is_ok() && !old.contains(&name.as_str()) {
            let e = std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a file a previous run wrote; move it away",
            );
            return Err(write_err(&p, e));
        }
    }
    let backup = fresh_dir(dir, "backup")?;
    let mut saved: Vec<&str> = Vec::new();
    let mut moved: Vec<&str> = Vec::new();
    let restore = |saved: &[&str], moved: &[&str]| {
        for name in moved {
            let _ = std::fs::remove_file(dir.join(name));
        }
        for name in saved {
            let _ = std::fs::rename(backup.join(name), dir.join(name));
        }
        let _ = std::fs::remove_dir(&backup);
    };
    for name in &old {
        if let Err(e) = std::fs::rename(dir.join(name), backup.join(name)) {
            restore(&saved, &moved);
            return Err(write_err(&dir.join(name), e));
        }
        saved.push(name);
    }
    for name in names {
        let p = dir.join(name);
        if let Err(e) = std::fs::rename(staging.join(name), &p) {
            restore(&saved, &moved);
            return Err(write_err(&p, e));
        }
        moved.push(name);
    }
    let mut list = names.join("\n");
    list.push('\n');
    if let Err(e) = write_manifest(staging, manifest, &list) {
        restore(&saved, &moved);
        let _ = std::fs::remove_file(staging.join(MANIFEST));
        let _ = write_manifest(staging, manifest, listed);
        return Err(write_err(manifest, e));
    }
    let _ = std::fs::remove_dir_all(&backup);
    Ok(names.iter().map(|n| dir.join(n)).collect())
}

/// Writes one file per object into `staging` (this run's, empty); returns the names.
fn stage(objects: &[Value], staging: &Path) -> Result<Vec<String>, Error> {
    let write_err = |path: &Path, e| Error::Write { path: path.to_owned(), source: e };
    let mut names = Vec::new();
    for o in objects {
        let name = file_name(o);
        let p = staging.join(&name);
        std::fs::write(&p, format!("{HEADER}---\n{}", yaml_document(o))).map_err(|e| write_err(&p, e))?;
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    /// Review 28 M3: strings YAML 1.1 reads as booleans, nulls or numbers
    /// are quoted; every string reads back unchanged; the layout is the
    /// one kubectl writes.
    #[test]
    fn yaml_strings_read_back_as_strings_in_yaml_1_1_too() {
        let tricky = [
            "no",
            "No",
            "NO",
            "yes",
            "Y",
            "y",
            "n",
            "on",
            "OFF",
            "true",
            "False",
            "null",
            "~",
            "1:20",
            "0x1F",
            "1e3",
            ".inf",
            "0o17",
            "-",
            "*.example.com",
            "a: b",
            "#x",
            " lead",
            "it's",
            "tab\there",
            "line\nbreak",
            "80",
            "10.0.0.0/8",
            "del\u{7f}",
            "c1\u{90}",
            "nel\u{85}x",
            "q\"uote\\\n",
            "::/0",
            "",
        ];
        for s in tricky {
            let doc = super::yaml_document(&json!({"k": s}));
            let scalar = doc.strip_prefix("k: ").unwrap().trim_end_matches('\n');
            assert!(!scalar.chars().any(char::is_control), "{s:?}: a raw control character in {scalar}");
            assert!(scalar.starts_with('\'') || scalar.starts_with('"'), "{s:?} written plain: {doc}");
            let back: Value = serde_norway::from_str(&doc).unwrap();
            assert_eq!(back, json!({"k": s}), "{doc}");
        }
        for s in ["web", "gateway.networking.k8s.io/v1", "/api/v1", "app-svc", "X-Canary", "nope", "yes-please"] {
            assert_eq!(super::yaml_document(&json!({"k": s})), format!("k: {s}\n"));
        }
        let o = json!({"spec": {"rules": [{"matches": [{"path": {"type": "Exact", "value": "/"}}], "backendRefs": []}],
            "hostnames": ["a.example.com"], "empty": {}, "nested": [["a", "b"], []], "port": 80, "b": true, "z": null}});
        let doc = super::yaml_document(&o);
        assert_eq!(
            doc,
            "spec:\n  rules:\n  - matches:\n    - path:\n        type: Exact\n        value: /\n    backendRefs: []\n  hostnames:\n  - a.example.com\n  empty: {}\n  nested:\n  - - a\n    - b\n  - []\n  port: 80\n  b: true\n  z: null\n"
        );
        assert_eq!(serde_norway::from_str::<Value>(&doc).unwrap(), o);
    }
}
