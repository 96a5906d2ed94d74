//! One row per ingress-nginx ConfigMap key and annotation: what the
//! migration emits and what the report says, for both targets. Every
//! emitted object is checked against its CRD (common::validate).

mod common;

use common::{controller, find, ingress, one, open_policies, routes, routes_ns, run, run_with, status};
use realip_migrate::{Options, Status, Target};
use serde_json::json;

const R: Target = Target::Realip;
const EG: Target = Target::EnvoyGateway;

/// ConfigMap data, what the policy must hold, key → report status.
type Row<W> = (Vec<(&'static str, &'static str)>, W, Vec<(&'static str, Status)>);

/// [`controller`] with a v0.40 image: before v0.41 ingress-nginx rendered an
/// ImplementationSpecific path as `location /admin`, a string prefix (since
/// then its store holds it as Prefix), so the string-prefix model is tested
/// on such a controller.
fn controller_v040(data: &[(&str, &str)]) -> String {
    controller(data).replacen("controller:v1.15.1", "controller:v0.40.2", 1)
}

#[test]
#[allow(clippy::too_many_lines)] // the table
fn configmap_keys_become_the_client_ip_policy() {
    // (ConfigMap data, ClientIPPolicy spec fields wanted, key → status)
    let table: Vec<Row<serde_json::Value>> = vec![
        (
            vec![("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8, 192.0.2.7")],
            json!({"trustedProxies": ["10.0.0.0/8", "192.0.2.7/32"], "sources": ["XForwardedFor"], "strategy": "RightmostUntrusted", "forward": {"xForwardedFor": "Replace", "xRealIP": true}}),
            vec![
                ("use-forwarded-headers", Status::Converted),
                ("proxy-real-ip-cidr", Status::Converted),
                ("compute-full-forwarded-for", Status::Converted),
            ],
        ),
        (
            vec![("use-forwarded-headers", "true")],
            json!({"trustedProxies": ["0.0.0.0/0"], "sources": ["XForwardedFor"]}),
            vec![("proxy-real-ip-cidr", Status::Warning)],
        ),
        (
            vec![
                ("enable-real-ip", "true"),
                ("forwarded-for-header", "CF-Connecting-IP"),
                ("proxy-real-ip-cidr", "198.51.100.0/24"),
            ],
            json!({"trustedProxies": ["198.51.100.0/24"], "sources": [{"header": "CF-Connecting-IP"}]}),
            vec![("enable-real-ip", Status::Converted), ("forwarded-for-header", Status::Changed)],
        ),
        (
            vec![
                ("use-forwarded-headers", "true"),
                ("forwarded-for-header", "X-Real-IP"),
                ("proxy-real-ip-cidr", "10.0.0.0/8"),
            ],
            json!({"sources": ["XRealIP"]}),
            vec![("forwarded-for-header", Status::Changed)],
        ),
        (
            vec![
                ("use-forwarded-headers", "true"),
                ("compute-full-forwarded-for", "true"),
                ("proxy-real-ip-cidr", "10.0.0.0/8"),
            ],
            json!({"forward": {"xForwardedFor": "Append", "xRealIP": true}}),
            vec![("compute-full-forwarded-for", Status::Converted)],
        ),
        (
            vec![
                ("use-proxy-protocol", "true"),
                ("proxy-real-ip-cidr", "10.0.0.0/8"),
                ("use-forwarded-headers", "true"),
            ],
            // ingress-nginx v1.13+ (the builder's v1.15.1): X-Forwarded-For from a
            // trusted PROXY source; the closest chain, not converted (review 11, R11-1).
            json!({"proxyProtocol": {"mode": "Required", "trustedSenders": ["10.0.0.0/8"]}, "trustedProxies": ["10.0.0.0/8"], "sources": ["XForwardedFor"]}),
            vec![("use-proxy-protocol", Status::Converted), ("use-forwarded-headers", Status::NotConverted)],
        ),
        (
            vec![
                ("use-proxy-protocol", "true"),
                ("proxy-protocol-header-timeout", "5s"),
                ("proxy-real-ip-cidr", "10.0.0.0/8"),
            ],
            json!({"sources": ["ProxyProtocol"]}),
            // Read by the --enable-ssl-passthrough listener only (review 29 M3).
            vec![("proxy-protocol-header-timeout", Status::Ignored)],
        ),
        (
            vec![("use-proxy-protocol", "true"), ("proxy-protocol-header-timeout", "30s")],
            json!({"proxyProtocol": {"mode": "Required", "trustedSenders": ["0.0.0.0/0"]}}),
            vec![("proxy-protocol-header-timeout", Status::Ignored), ("proxy-real-ip-cidr", Status::Warning)],
        ),
        (
            vec![("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "XXX.XXX.XXX/XX")],
            json!({"trustedProxies": [], "sources": null}),
            vec![("proxy-real-ip-cidr", Status::NotConverted)],
        ),
        // Nothing trusted: said as `trustedProxies: []`, no header source (R7-5).
        (vec![], json!({"trustedProxies": [], "sources": null}), vec![("use-forwarded-headers", Status::Converted)]),
        // compute-full-forwarded-for appends only with use-forwarded-headers (nginx.tmpl's `and`).
        (
            vec![
                ("enable-real-ip", "true"),
                ("compute-full-forwarded-for", "true"),
                ("proxy-real-ip-cidr", "10.0.0.0/8"),
            ],
            json!({"forward": {"xForwardedFor": "Replace", "xRealIP": true}}),
            vec![("compute-full-forwarded-for", Status::Converted)],
        ),
        // Booleans as Go's strconv.ParseBool reads them (ingress-nginx).
        (
            vec![("use-forwarded-headers", "1"), ("proxy-real-ip-cidr", "10.0.0.0/8")],
            json!({"trustedProxies": ["10.0.0.0/8"], "sources": ["XForwardedFor"]}),
            vec![("use-forwarded-headers", Status::Converted), ("proxy-real-ip-cidr", Status::Converted)],
        ),
        (
            vec![
                ("use-forwarded-headers", "t"),
                ("compute-full-forwarded-for", "TRUE"),
                ("proxy-real-ip-cidr", "10.0.0.0/8"),
            ],
            json!({"forward": {"xForwardedFor": "Append", "xRealIP": true}}),
            vec![("compute-full-forwarded-for", Status::Converted)],
        ),
        (
            vec![("use-forwarded-headers", "F"), ("proxy-real-ip-cidr", "10.0.0.0/8")],
            json!({}),
            vec![("use-forwarded-headers", Status::Converted), ("proxy-real-ip-cidr", Status::Ignored)],
        ),
        (
            vec![("use-forwarded-headers", "yes"), ("proxy-real-ip-cidr", "10.0.0.0/8")],
            json!({}),
            vec![("use-forwarded-headers", Status::NotConverted), ("proxy-real-ip-cidr", Status::Ignored)],
        ),
        (
            vec![
                ("allow-snippet-annotations", "false"),
                ("http-snippet", "server {\n  listen 2443;\n}"),
                ("worker-processes", "4"),
                ("forwarded-for-header", "X-Client"),
            ],
            json!({"trustedProxies": [], "sources": null}),
            vec![
                ("allow-snippet-annotations", Status::Ignored),
                ("http-snippet", Status::NotConverted),
                ("worker-processes", Status::NotConverted),
                ("forwarded-for-header", Status::Ignored),
            ],
        ),
    ];
    for (data, want, statuses) in table {
        let m = run(&[controller(&data)], R);
        let p = one(&m, "ClientIPPolicy");
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&p["spec"][k], v, "{data:?}: spec.{k}\n{}", realip_migrate::to_yaml(&m.objects));
        }
        if data.iter().any(|(k, _)| k.contains("XXX")) || data.iter().any(|(_, v)| v.contains("XXX")) {
            assert_eq!(p["spec"]["trustedProxies"], json!([]), "nothing trusted when the CIDR is garbage");
        }
        for (k, st) in statuses {
            assert_eq!(status(&m, k), st, "{data:?}: {k}\n{}", m.report.text());
        }
        assert_eq!(m.report.incomplete(), m.report.entries.iter().any(|e| e.status == Status::NotConverted));
    }
}

#[test]
fn snippets_are_reported_with_object_and_line() {
    let docs = [
        controller(&[
            ("http-snippet", "server {\n  listen 2443;\n}"),
            ("allow-snippet-annotations", "true"),
            ("annotations-risk-level", "Critical"),
        ]),
        ingress(
            "site",
            "/",
            &[
                ("configuration-snippet", "more_set_headers \"X: 1\";"),
                ("server-snippet", "location /x { return 403; }"),
            ],
            "",
        ),
    ];
    let m = run(&docs, R);
    let e: Vec<_> = m.report.entries.iter().filter(|e| e.key.ends_with("snippet")).collect();
    assert_eq!(e.len(), 3, "{}", m.report.text());
    // Lines in the joined input: the ConfigMap's data key, then the Ingress's annotations.
    let text = docs.join("---\n");
    for entry in e {
        assert_eq!(entry.status, Status::NotConverted);
        // The key's line, or for a block scalar (`key: |`) the snippet's first line.
        let line = text.lines().nth(entry.line - 1).unwrap();
        let above = text.lines().nth(entry.line - 2).unwrap();
        let at_key = line.contains(&entry.key) || above.trim_end().ends_with(&format!("{}: |", entry.key));
        assert!(at_key, "{}: line {} is `{line}`", entry.key, entry.line);
        assert!(
            entry.object == "Ingress/web/site" || entry.object == "ConfigMap/ingress-nginx/ingress-nginx-controller"
        );
    }
    assert!(m.report.text().contains("http-snippet: server { … (+2 lines)"), "{}", m.report.text());
}

#[test]
fn trust_override_replaces_the_trust_all_default() {
    let opts = Options { trust: vec!["10.0.0.0/16".into()], ..Options::default() };
    let m = run_with(&[controller(&[("use-forwarded-headers", "true")])], &opts);
    assert_eq!(one(&m, "ClientIPPolicy")["spec"]["trustedProxies"], json!(["10.0.0.0/16"]));
    assert_eq!(status(&m, "proxy-real-ip-cidr"), Status::Changed);
    let objects = realip_kube::load_str(&controller(&[]), "t").unwrap();
    let bad = Options { trust: vec!["10.0.0.0/33".into()], ..Options::default() };
    assert!(realip_migrate::migrate(&objects, &bad).unwrap_err().to_string().contains("--trust `10.0.0.0/33`"));
    let gw = Options { gateway: Some("Edge".into()), ..Options::default() };
    assert!(realip_migrate::migrate(&objects, &gw).unwrap_err().to_string().contains("NAMESPACE/NAME"));
}

#[test]
fn envoy_gateway_client_traffic_policy() {
    let table: Vec<Row<Option<serde_json::Value>>> = vec![
        (
            vec![("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")],
            Some(json!({"clientIPDetection": {"xForwardedFor": {"trustedCIDRs": ["10.0.0.0/8"]}}})),
            vec![("compute-full-forwarded-for", Status::Changed)],
        ),
        (
            vec![("use-proxy-protocol", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")],
            Some(json!({"proxyProtocol": {"optional": false}})),
            vec![("proxy-real-ip-cidr", Status::Changed), ("use-proxy-protocol", Status::NotConverted)],
        ),
        (
            vec![
                ("enable-real-ip", "true"),
                ("forwarded-for-header", "CF-Connecting-IP"),
                ("proxy-real-ip-cidr", "198.51.100.0/24"),
            ],
            None,
            vec![("forwarded-for-header", Status::NotConverted)],
        ),
        // The trust-all default is 0.0.0.0/0: nginx never believes a native IPv6 peer,
        // Envoy Gateway's customHeader would.
        (
            vec![("enable-real-ip", "true"), ("forwarded-for-header", "CF-Connecting-IP")],
            None,
            vec![("proxy-real-ip-cidr", Status::Warning), ("forwarded-for-header", Status::NotConverted)],
        ),
    ];
    for (data, want, statuses) in table {
        let m = run(&[controller(&data)], EG);
        let ctp = find(&m, "ClientTrafficPolicy");
        match want {
            Some(w) => {
                for (k, v) in w.as_object().unwrap() {
                    assert_eq!(&ctp[0]["spec"][k], v, "{data:?}");
                }
            }
            None => assert!(ctp.is_empty(), "{data:?}: no ClientTrafficPolicy that would believe every peer"),
        }
        for (k, st) in statuses {
            assert_eq!(status(&m, k), st, "{data:?}: {k}\n{}", m.report.text());
        }
        assert!(find(&m, "ClientIPPolicy").is_empty());
    }
    // Every peer believed, IPv6 too (given explicitly): customHeader says the same.
    let data = [("enable-real-ip", "true"), ("forwarded-for-header", "CF-Connecting-IP")];
    let every = Options { target: EG, trust: vec!["0.0.0.0/0".into(), "::/0".into()], ..Options::default() };
    let m = run_with(&[controller(&data)], &every);
    assert_eq!(
        one(&m, "ClientTrafficPolicy")["spec"]["clientIPDetection"],
        json!({"customHeader": {"name": "CF-Connecting-IP", "failClosed": false}})
    );
    assert_eq!(status(&m, "forwarded-for-header"), Status::Converted);
    // PROXY from every IPv4 peer (nginx) is not PROXY from every peer (Envoy Gateway).
    let m = run(&[controller(&[("use-proxy-protocol", "true")])], EG);
    let e = m.report.entries.iter().find(|e| e.key == "proxy-real-ip-cidr").unwrap();
    assert_eq!(e.status, Status::Warning, "{}", m.report.text());
    assert!(e.why.contains("native IPv6"), "{}", e.why);
    // Envoy Gateway believes PROXY from any peer: an allow list or a limit keyed on it
    // is left out (deny-all) unless every peer is trusted anyway.
    let pp = [("use-proxy-protocol", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16")];
    let docs = [
        controller(&pp),
        ingress("app", "/", &[], ""),
        ingress("admin", "/admin/", &[("allowlist-source-range", "192.0.2.0/24")], ""),
        ingress("api", "/api/", &[("limit-rps", "5")], ""),
    ];
    let m = run(&docs, EG);
    assert_eq!(routes(&m, false), ["app"], "{}", m.report.text());
    assert_eq!(routes(&m, true), ["admin-denied", "api-denied"], "{}", m.report.text());
    assert!(open_policies(&m).is_empty());
    assert_eq!(one(&m, "ClientTrafficPolicy")["spec"]["proxyProtocol"], json!({"optional": false}));
    for k in ["use-proxy-protocol", "allowlist-source-range", "limit-rps"] {
        assert_eq!(status(&m, k), Status::NotConverted, "{k}\n{}", m.report.text());
    }
    let m = run(&docs, R);
    assert_eq!(routes(&m, false), ["admin", "api", "app"], "realip trusts PROXY from the listed senders only");
    let every = Options { target: EG, trust: vec!["0.0.0.0/0".into(), "::/0".into()], ..Options::default() };
    let m = run_with(&docs, &every);
    assert_eq!(routes(&m, false), ["admin", "api", "app"], "{}", m.report.text());
    assert_eq!(status(&m, "use-proxy-protocol"), Status::Converted);
}

#[test]
fn access_lists_key_on_the_resolved_client_for_both_targets() {
    let cm = controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")]);
    let ing = ingress(
        "site",
        "/",
        &[("whitelist-source-range", "203.0.113.0/24"), ("denylist-source-range", "203.0.113.66")],
        "",
    );
    let m = run(&[cm.clone(), ing.clone()], R);
    let cap = one(&m, "ClientAccessPolicy");
    assert_eq!(cap["spec"]["allow"], json!(["203.0.113.0/24"]));
    assert_eq!(cap["spec"]["deny"], json!(["203.0.113.66/32"]));
    assert_eq!(
        cap["spec"]["targetRefs"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "site"}])
    );
    assert_eq!(cap["metadata"]["namespace"], "web");
    // The allow list is only meaningful with the client-IP policy on the same Gateway.
    assert_eq!(one(&m, "HTTPRoute")["spec"]["parentRefs"][0]["name"], "ingress-nginx");
    assert_eq!(one(&m, "ClientIPPolicy")["spec"]["targetRefs"][0]["name"], "ingress-nginx");
    assert!(m
        .report
        .entries
        .iter()
        .any(|e| e.key == "whitelist-source-range" && e.why.contains("never the load balancer")));
    let m = run(&[cm.clone(), ing], EG);
    let sp = one(&m, "SecurityPolicy");
    assert_eq!(
        sp["spec"]["authorization"],
        json!({"defaultAction": "Deny", "rules": [
            {"name": "denylist-source-range", "action": "Deny", "principal": {"clientCIDRs": ["203.0.113.66/32"]}},
            {"name": "allowlist-source-range", "action": "Allow", "principal": {"clientCIDRs": ["203.0.113.0/24"]}}]})
    );
    assert_eq!(
        one(&m, "ClientTrafficPolicy")["spec"]["clientIPDetection"]["xForwardedFor"]["trustedCIDRs"],
        json!(["10.0.0.0/8"])
    );
    // allowlist-source-range wins over its old name.
    let both = ingress(
        "site",
        "/",
        &[("whitelist-source-range", "192.0.2.0/24"), ("allowlist-source-range", "198.51.100.0/24")],
        "",
    );
    let m = run(&[cm.clone(), both], R);
    assert_eq!(one(&m, "ClientAccessPolicy")["spec"]["allow"], json!(["198.51.100.0/24"]));
    assert_eq!(status(&m, "whitelist-source-range"), Status::Ignored);
    // A list that does not parse keeps the Ingress out (deny-all) instead of opening it.
    let bad = ingress("site", "/", &[("whitelist-source-range", "203.0.113.0/33")], "");
    let m = run(&[cm, bad], R);
    assert!(routes(&m, false).is_empty() && open_policies(&m).is_empty());
    assert_eq!(routes(&m, true), ["site-denied"]);
    assert_eq!(status(&m, "whitelist-source-range"), Status::NotConverted);
    // So does an empty one: ingress-nginx rejects it, and realip refuses `allow: []` (it once let everyone in).
    // (An empty whitelist-source-range alone is no list from v1.9.1: review 32 H-1, in review31.rs.)
    let key = "allowlist-source-range";
    let empty = ingress("site", "/", &[(key, "")], "");
    let m = run(&[controller(&[]), empty], R);
    assert!(routes(&m, false).is_empty() && open_policies(&m).is_empty());
    assert_eq!(routes(&m, true), ["site-denied"]);
    assert_eq!(status(&m, key), Status::NotConverted);
    assert!(m.report.incomplete());
}

#[test]
#[allow(clippy::too_many_lines)] // one row per limit annotation and target
fn rate_limits() {
    let cm = controller(&[]);
    let row = |anns: &[(&str, &str)], t: Target| run(&[cm.clone(), ingress("site", "/", anns, "")], t);
    // global-rate-limit applies only up to v1.11 and with memcached (review 11, R11-4).
    let glr_cm = controller(&[("global-rate-limit-memcached-host", "memcached.ingress-nginx")]).replacen(
        "controller:v1.15.1",
        "controller:v1.11.5",
        1,
    );
    let glr = |anns: &[(&str, &str)], t: Target| run(&[glr_cm.clone(), ingress("site", "/", anns, "")], t);
    let m = row(&[("limit-rps", "10"), ("limit-burst-multiplier", "3")], R);
    assert_eq!(
        one(&m, "ClientAccessPolicy")["spec"]["rateLimit"],
        json!({"perSecond": 10.0, "burst": 31.0, "scope": "Local", "ipv6PrefixLength": 128})
    );
    // ingress-nginx answers 503 (limit-req-status-code) where the policy answers 429.
    assert_eq!((status(&m, "limit-rps"), status(&m, "limit-burst-multiplier")), (Status::Changed, Status::Converted));
    assert!(m.report.entries.iter().any(|e| e.key == "limit-rps" && e.why.contains("429") && e.why.contains("503")));
    let cm429 = controller(&[("limit-req-status-code", "429")]);
    let m = run(&[cm429, ingress("site", "/", &[("limit-rps", "10")], "")], R);
    assert_eq!((status(&m, "limit-rps"), status(&m, "limit-req-status-code")), (Status::Converted, Status::Converted));
    let m = row(&[("limit-rpm", "120")], R);
    assert_eq!(
        one(&m, "ClientAccessPolicy")["spec"]["rateLimit"],
        json!({"perSecond": 2.0, "burst": 601.0, "scope": "Local", "ipv6PrefixLength": 128})
    );
    // Both: nginx applies both zones; one bucket with the lower rate and the smaller burst.
    // (rps 10 → 10/s burst 50 + 1; rpm 60 → 1/s burst 300 + 1.)
    let m = row(&[("limit-rps", "10"), ("limit-rpm", "60")], R);
    assert_eq!(
        one(&m, "ClientAccessPolicy")["spec"]["rateLimit"],
        json!({"perSecond": 1.0, "burst": 51.0, "scope": "Local", "ipv6PrefixLength": 128})
    );
    assert_eq!((status(&m, "limit-rpm"), status(&m, "limit-rps")), (Status::Changed, Status::Changed));
    // Equal rates (1/s, 60/min) used to drop both.
    let m = row(&[("limit-rps", "1"), ("limit-rpm", "60")], R);
    assert_eq!(one(&m, "ClientAccessPolicy")["spec"]["rateLimit"]["perSecond"], json!(1.0));
    assert_eq!(one(&m, "ClientAccessPolicy")["spec"]["rateLimit"]["burst"], json!(6.0));
    assert!(!m.report.incomplete(), "{}", m.report.text());
    // limit-rps "0" is no limit (ignored); limit-burst-multiplier "0" or
    // negative renders `burst=0` / a negative burst, which nginx refuses
    // (migrate review 17 R17-3): the Ingress is left out, on both targets.
    let m = row(&[("limit-rps", "0")], R);
    assert_eq!(status(&m, "limit-rps"), Status::Ignored);
    assert!(find(&m, "ClientAccessPolicy").is_empty() && !m.report.incomplete());
    for (mult, t) in [("0", R), ("-1", R), ("0", EG)] {
        let m = row(&[("limit-rps", "10"), ("limit-burst-multiplier", mult)], t);
        assert_eq!(status(&m, "limit-burst-multiplier"), Status::NotConverted, "{mult}");
        assert!(m.report.incomplete(), "{mult}");
    }
    let m = row(&[("limit-rpm", "30"), ("limit-burst-multiplier", "0")], R);
    assert_eq!(status(&m, "limit-burst-multiplier"), Status::NotConverted);
    let m = row(&[("limit-rps", "10"), ("limit-rpm", "60")], EG);
    let rules = &one(&m, "BackendTrafficPolicy")["spec"]["rateLimit"]["local"]["rules"];
    assert_eq!(rules.as_array().unwrap().len(), 4, "two limits × two address families");
    assert_eq!(
        rules[0],
        json!({"clientSelectors": [{"sourceCIDR": {"type": "Distinct", "value": "0.0.0.0/0"}}], "limit": {"requests": 10, "unit": "Second"}})
    );
    assert_eq!(status(&m, "limit-rps"), Status::Changed, "no burst in Envoy's local limit");
    for (k, v) in [("limit-whitelist", "10.0.0.0/8"), ("limit-allowlist", "10.0.0.0/8"), ("limit-connections", "10")] {
        let m = row(&[("limit-rps", "5"), (k, v)], R);
        assert_eq!(status(&m, k), Status::NotConverted, "{k}");
    }
    let m = glr(&[("global-rate-limit", "600"), ("global-rate-limit-window", "1m")], R);
    assert_eq!(
        one(&m, "ClientAccessPolicy")["spec"]["rateLimit"],
        json!({"perSecond": 10.0, "burst": 600.0, "scope": "Global", "ipv6PrefixLength": 128})
    );
    assert_eq!(
        (status(&m, "global-rate-limit"), status(&m, "global-rate-limit-window")),
        (Status::Converted, Status::Converted)
    );
    let m = glr(&[("global-rate-limit", "600"), ("global-rate-limit-window", "1m")], EG);
    assert_eq!(
        one(&m, "BackendTrafficPolicy")["spec"]["rateLimit"]["global"]["rules"][0]["limit"],
        json!({"requests": 600, "unit": "Minute"})
    );
    // One bucket per client across the Ingress's routes, as ingress-nginx's zone (N6); local
    // rules stay per route (Envoy Gateway ignores `shared` there): reported.
    for r in one(&m, "BackendTrafficPolicy")["spec"]["rateLimit"]["global"]["rules"].as_array().unwrap() {
        assert_eq!(r["shared"], json!(true), "{r}");
    }
    let m = row(&[("limit-rps", "5")], EG);
    assert!(one(&m, "BackendTrafficPolicy")["spec"]["rateLimit"]["local"]["rules"][0].get("shared").is_none());
    assert!(m
        .report
        .entries
        .iter()
        .any(|e| e.key == "limit-rps" && e.status == Status::Changed && e.why.contains("per route")));
    let m = glr(&[("global-rate-limit", "100"), ("global-rate-limit-window", "90s")], EG);
    assert_eq!(status(&m, "global-rate-limit"), Status::NotConverted, "no 90 s unit in Envoy Gateway");
    let m = glr(
        &[
            ("global-rate-limit", "100"),
            ("global-rate-limit-window", "1m"),
            ("global-rate-limit-key", "$http_x_api_key"),
        ],
        R,
    );
    assert_eq!(status(&m, "global-rate-limit"), Status::NotConverted);
    // The window of a limit that is not converted is not converted either (N7).
    assert_eq!(status(&m, "global-rate-limit-window"), Status::NotConverted, "{}", m.report.text());
    assert_eq!(status(&m, "global-rate-limit-key"), Status::NotConverted);
    // limit-rps and global-rate-limit: nginx applies both; realip's one bucket is shared by
    // every replica (scope Global) with the lower rate and the smaller burst (N7):
    // rps 100 → 100/s burst 500; global 10 per 1m → 1/6 s, burst 10.
    let m = glr(&[("limit-rps", "100"), ("global-rate-limit", "10"), ("global-rate-limit-window", "1m")], R);
    let rl = &one(&m, "ClientAccessPolicy")["spec"]["rateLimit"];
    assert_eq!((rl["scope"].as_str(), rl["burst"].as_f64()), (Some("Global"), Some(10.0)), "{rl}");
    assert!((rl["perSecond"].as_f64().unwrap() - 10.0 / 60.0).abs() < 1e-9, "{rl}");
    for k in ["limit-rps", "global-rate-limit", "global-rate-limit-window"] {
        assert_eq!(status(&m, k), Status::Changed, "{k}\n{}", m.report.text());
    }
    // Envoy Gateway keeps both (local and global rules).
    let m = glr(&[("limit-rps", "100"), ("global-rate-limit", "10"), ("global-rate-limit-window", "1m")], EG);
    let rate = &one(&m, "BackendTrafficPolicy")["spec"]["rateLimit"];
    assert!(rate.get("local").is_some() && rate.get("global").is_some(), "{rate}");
    assert_eq!(status(&m, "global-rate-limit-window"), Status::Converted);
    let m = glr(
        &[
            ("global-rate-limit", "100"),
            ("global-rate-limit-window", "1m"),
            ("global-rate-limit-ignored-cidrs", "10.0.0.0/8"),
        ],
        R,
    );
    assert_eq!(status(&m, "global-rate-limit-ignored-cidrs"), Status::NotConverted);
    // Annotation validation (on by default since v1.12) refuses the whole Ingress (R8-1);
    // a running controller may still serve an older version: deny-all (R17-4).
    let m = row(&[("limit-rps", "lots")], R);
    assert!(routes(&m, false).is_empty(), "{}", m.report.text());
    assert_eq!(routes(&m, true), ["site-denied"], "{}", m.report.text());
    assert!(
        m.report.entries.iter().any(|e| e.status == Status::NotConverted
            && e.why.contains("limit-rps `lots` is not an integer")
            && e.why.contains("a running controller keeps serving the last version")),
        "{}",
        m.report.text()
    );
}

fn tls_spec(secret_ns_hosts: &str) -> String {
    format!("  tls:\n  - hosts: [{secret_ns_hosts}]\n    secretName: site-tls\n")
}

#[test]
fn tls_listeners_and_ssl_redirects() {
    let cm = controller(&[]);
    let tls = tls_spec("app.example.com");
    // Default (ConfigMap ssl-redirect true): the route serves HTTPS, a second one redirects HTTP.
    let m = run(&[cm.clone(), ingress("site", "/", &[], &tls)], R);
    let gw = one(&m, "Gateway");
    let l = &gw["spec"]["listeners"][1];
    assert_eq!(
        (l["name"].as_str(), l["hostname"].as_str(), l["port"].as_u64()),
        (Some("https-app-example-com"), Some("app.example.com"), Some(443))
    );
    assert_eq!(
        l["tls"]["certificateRefs"][0],
        json!({"group": "", "kind": "Secret", "name": "site-tls", "namespace": "web"})
    );
    let grant = one(&m, "ReferenceGrant");
    assert_eq!(
        (grant["metadata"]["namespace"].as_str(), grant["spec"]["to"][0]["name"].as_str()),
        (Some("web"), Some("site-tls"))
    );
    let routes = find(&m, "HTTPRoute");
    assert_eq!(routes.len(), 2);
    let redirect = routes.iter().find(|r| r["metadata"]["name"] == "site-https-redirect").unwrap();
    assert_eq!(redirect["spec"]["parentRefs"][0]["sectionName"], "http");
    assert_eq!(
        redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"],
        json!({"scheme": "https", "statusCode": 308})
    );
    let main = routes.iter().find(|r| r["metadata"]["name"] == "site").unwrap();
    assert_eq!(main["spec"]["parentRefs"][0]["sectionName"], "https-app-example-com");
    assert_eq!(one(&m, "ClientIPPolicy")["metadata"]["namespace"], "ingress-nginx");
    let m = run(&[cm.clone(), ingress("site", "/", &[("limit-rps", "1")], &tls)], R);
    assert_eq!(
        one(&m, "ClientAccessPolicy")["spec"]["targetRefs"].as_array().unwrap().len(),
        1,
        "the redirect is answered before limits"
    );
    // ssl-redirect: "false" (annotation or ConfigMap): one route on every listener.
    for docs in [
        vec![cm.clone(), ingress("site", "/", &[("ssl-redirect", "false")], &tls)],
        vec![controller(&[("ssl-redirect", "false")]), ingress("site", "/", &[], &tls)],
    ] {
        let m = run(&docs, R);
        let r = one(&m, "HTTPRoute");
        assert!(r["spec"]["parentRefs"][0].get("sectionName").is_none());
        assert_eq!(status(&m, "ssl-redirect"), Status::Converted);
    }
    // force-ssl-redirect without TLS on the Gateway cannot be expressed.
    let m = run(&[cm.clone(), ingress("site", "/", &[("force-ssl-redirect", "true")], "")], R);
    assert!(m
        .report
        .entries
        .iter()
        .any(|e| e.key.starts_with("force-ssl-redirect app.example.com") && e.status == Status::NotConverted));
    // With --gateway in the Ingress's namespace, no ReferenceGrant is needed.
    let opts = Options { gateway: Some("web/edge".into()), gateway_class: Some("prod".into()), ..Options::default() };
    let m = run_with(&[cm, ingress("site", "/", &[], &tls)], &opts);
    assert!(find(&m, "ReferenceGrant").is_empty());
    assert_eq!(one(&m, "Gateway")["spec"]["gatewayClassName"], "prod");
    assert_eq!(one(&m, "ClientIPPolicy")["metadata"]["name"], "edge-client-ip");
}

#[test]
fn backend_protocol_body_size_and_unknown_annotations() {
    let cm = controller(&[]);
    let row = |anns: &[(&str, &str)]| run(&[cm.clone(), ingress("site", "/", anns, "")], R);
    let m = row(&[("backend-protocol", "HTTP")]);
    assert_eq!((status(&m, "backend-protocol"), find(&m, "HTTPRoute").len()), (Status::Converted, 1));
    for proto in ["HTTPS", "GRPC"] {
        let m = row(&[("backend-protocol", proto)]);
        assert_eq!(status(&m, "backend-protocol"), Status::NotConverted, "{proto}");
        assert!(routes(&m, false).is_empty(), "{proto}: no route that speaks plain HTTP to it");
        assert_eq!(routes(&m, true), ["site-denied"], "{proto}: its location refuses requests");
    }
    let m = row(&[("proxy-body-size", "8m"), ("enable-cors", "true")]);
    assert_eq!(
        (status(&m, "proxy-body-size"), status(&m, "enable-cors")),
        (Status::NotConverted, Status::NotConverted)
    );
    assert_eq!(find(&m, "HTTPRoute").len(), 1, "the route itself still converts");
    // The ConfigMap's limit (default 1m) is reported, set or not: the data plane's own applies.
    let e = m.report.entries.iter().find(|e| e.key == "proxy-body-size" && e.object == "defaults").unwrap();
    assert_eq!((e.status, e.why.contains("over 1m")), (Status::Changed, true), "{}", e.why);
    let m = run(&[controller(&[("proxy-body-size", "8m")]), ingress("site", "/", &[], "")], R);
    assert_eq!(status(&m, "proxy-body-size"), Status::Changed);
    assert!(m.report.entries.iter().any(|e| e.key == "proxy-body-size" && e.why.contains("over 8m")));
}

#[test]
fn rewrites_regex_paths_and_redirects() {
    let cm = controller(&[]);
    let m = run(
        &[cm.clone(), ingress("site", "/something(/|$)(.*)", &[("rewrite-target", "/$2"), ("use-regex", "true")], "")],
        R,
    );
    let rule = &one(&m, "HTTPRoute")["spec"]["rules"][0];
    assert_eq!(rule["matches"][0]["path"], json!({"type": "PathPrefix", "value": "/something"}));
    assert_eq!(
        rule["filters"][0],
        json!({"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}})
    );
    assert_eq!(status(&m, "path /something(/|$)(.*)"), Status::Changed, "case-insensitive → sensitive");
    let m = run(&[cm.clone(), ingress("site", "/old", &[("rewrite-target", "/new")], "")], R);
    assert_eq!(
        one(&m, "HTTPRoute")["spec"]["rules"][0]["filters"][0]["urlRewrite"]["path"],
        json!({"type": "ReplaceFullPath", "replaceFullPath": "/new"})
    );
    let m = run(&[cm.clone(), ingress("site", "/x/(\\d+)/(.*)", &[("rewrite-target", "/$2")], "")], R);
    assert_eq!(status(&m, "path /x/(\\d+)/(.*)"), Status::NotConverted);
    let regex = ingress("site", "/api/v[0-9]+", &[("use-regex", "true")], "");
    let m = run(&[cm.clone(), regex.clone()], R);
    assert_eq!(status(&m, "path /api/v[0-9]+"), Status::NotConverted, "realip serves prefixes only");
    let m = run(&[cm.clone(), regex], EG);
    assert_eq!(
        one(&m, "HTTPRoute")["spec"]["rules"][0]["matches"][0]["path"],
        json!({"type": "RegularExpression", "value": "^(?:/api/v[0-9]+).*"}),
        "Envoy matches the whole path: what nginx's prefix regex leaves open is added"
    );
    let m = run(&[cm.clone(), ingress("site", "/", &[("app-root", "/app1")], "")], R);
    let rules = &one(&m, "HTTPRoute")["spec"]["rules"];
    assert_eq!(rules[0]["matches"][0]["path"], json!({"type": "Exact", "value": "/"}));
    assert_eq!(
        rules[0]["filters"][0]["requestRedirect"],
        json!({"statusCode": 302, "path": {"type": "ReplaceFullPath", "replaceFullPath": "/app1"}})
    );
    for (k, code) in [("permanent-redirect", 301), ("temporal-redirect", 302)] {
        let m = run(&[cm.clone(), ingress("site", "/", &[(k, "https://www.example.com/new")], "")], R);
        let rule = &one(&m, "HTTPRoute")["spec"]["rules"][0];
        assert!(rule.get("backendRefs").is_none());
        assert_eq!(
            rule["filters"][0]["requestRedirect"],
            json!({"statusCode": code, "path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}, "scheme": "https", "hostname": "www.example.com"})
        );
        assert_eq!(status(&m, k), Status::Converted);
    }
    let m = run(&[cm.clone(), ingress("site", "/", &[("permanent-redirect", "https://x.example/?a=1")], "")], R);
    assert_eq!(status(&m, "permanent-redirect"), Status::NotConverted);
    let m = run(
        &[cm, ingress("site", "/", &[("permanent-redirect", "/moved"), ("permanent-redirect-code", "308")], "")],
        R,
    );
    assert_eq!(one(&m, "HTTPRoute")["spec"]["rules"][0]["filters"][0]["requestRedirect"]["statusCode"], 308);
}

#[test]
fn canaries_become_weights_and_header_matches() {
    let cm = controller(&[]);
    let main = ingress("site", "/", &[("limit-rps", "5")], "");
    let canary = |anns: &[(&str, &str)]| {
        let mut a = vec![("canary", "true")];
        a.extend_from_slice(anns);
        ingress("site-canary", "/", &a, "")
    };
    let m = run(&[cm.clone(), main.clone(), canary(&[("canary-weight", "20"), ("limit-rps", "1")])], R);
    let route = one(&m, "HTTPRoute");
    assert_eq!(
        route["spec"]["rules"][0]["backendRefs"],
        json!([{"group": "", "kind": "Service", "name": "site-svc", "port": 80, "weight": 80}, {"group": "", "kind": "Service", "name": "site-canary-svc", "port": 80, "weight": 20}])
    );
    let limit =
        m.report.entries.iter().find(|e| e.object == "Ingress/web/site-canary" && e.key == "limit-rps").unwrap();
    assert_eq!(limit.status, Status::Ignored, "ingress-nginx ignores it on a canary");
    assert_eq!(one(&m, "ClientAccessPolicy")["metadata"]["name"], "site", "only the main Ingress's policy");
    let m = run(&[cm.clone(), main.clone(), canary(&[("canary-by-header", "X-Canary")])], R);
    let rules = one(&m, "HTTPRoute")["spec"]["rules"].as_array().unwrap().clone();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0]["matches"][0]["headers"], json!([{"type": "Exact", "name": "X-Canary", "value": "always"}]));
    assert_eq!(rules[0]["backendRefs"][0]["name"], "site-canary-svc");
    assert_eq!(rules[1]["matches"][0]["headers"][0]["value"], "never");
    assert_eq!(rules[1]["backendRefs"][0]["name"], "site-svc");
    let m = run(
        &[
            cm.clone(),
            main.clone(),
            canary(&[("canary-by-header", "X-Canary"), ("canary-by-header-value", "yes"), ("canary-weight", "10")]),
        ],
        R,
    );
    let rules = &one(&m, "HTTPRoute")["spec"]["rules"];
    assert_eq!(rules[0]["matches"][0]["headers"], json!([{"type": "Exact", "name": "X-Canary", "value": "yes"}]));
    assert_eq!(rules[1]["backendRefs"][1]["weight"], 10);
    // A pattern: Envoy matches the whole value, balancer.lua searches it;
    // realip's Gateway matches headers exactly (review 28 H1: a
    // RegularExpression match made realip refuse the main route), so the
    // pattern is not converted and `always`/`never` stay unread.
    let pattern = [
        cm.clone(),
        main.clone(),
        canary(&[("canary-by-header", "X-Canary"), ("canary-by-header-pattern", "^(yes|1)$")]),
    ];
    let m = run(&pattern, EG);
    assert_eq!(
        one(&m, "HTTPRoute")["spec"]["rules"][0]["matches"][0]["headers"],
        json!([{"type": "RegularExpression", "name": "X-Canary", "value": ".*(?:^(yes|1)$).*"}])
    );
    assert_eq!(status(&m, "canary-by-header-pattern"), Status::Changed);
    let m = run(&pattern, R);
    let rules = one(&m, "HTTPRoute")["spec"]["rules"].as_array().unwrap().clone();
    assert!(rules.iter().all(|r| r["matches"][0].get("headers").is_none()), "{rules:?}");
    assert_eq!(status(&m, "canary-by-header-pattern"), Status::NotConverted);
    assert!(m.report.incomplete(), "exit 1");
    let m = run(&[cm.clone(), main.clone(), canary(&[("canary-by-cookie", "canary")])], R);
    assert_eq!(status(&m, "canary-by-cookie"), Status::NotConverted);
    // The canary names the main Ingress's path as written, even when the main one rewrites it.
    let rewritten = ingress("site", "/api(/|$)(.*)", &[("rewrite-target", "/$2")], "");
    let m = run(
        &[
            cm.clone(),
            rewritten,
            ingress("site-canary", "/api(/|$)(.*)", &[("canary", "true"), ("canary-weight", "5")], ""),
        ],
        R,
    );
    let rule = &one(&m, "HTTPRoute")["spec"]["rules"][0];
    assert_eq!(
        (rule["backendRefs"][1]["weight"].as_u64(), rule["matches"][0]["path"]["value"].as_str()),
        (Some(5), Some("/api"))
    );
    assert_eq!(rule["filters"][0]["type"], "URLRewrite");
    // canary-weight-total counts only above 100 (balancer.lua): 5 of 10 is 5 %.
    let m = run(&[cm.clone(), main.clone(), canary(&[("canary-weight", "5"), ("canary-weight-total", "10")])], R);
    let refs = &one(&m, "HTTPRoute")["spec"]["rules"][0]["backendRefs"];
    assert_eq!((refs[0]["weight"].as_u64(), refs[1]["weight"].as_u64()), (Some(95), Some(5)));
    assert_eq!(status(&m, "canary-weight-total"), Status::Ignored);
    let m = run(&[cm.clone(), main, canary(&[("canary-weight", "5"), ("canary-weight-total", "1000")])], R);
    let refs = &one(&m, "HTTPRoute")["spec"]["rules"][0]["backendRefs"];
    assert_eq!((refs[0]["weight"].as_u64(), refs[1]["weight"].as_u64()), (Some(995), Some(5)));
    // Another pathType is another location: not the main one's canary (an
    // ImplementationSpecific path is held as Prefix since v0.41: review13.rs).
    let prefix = ingress("site-canary", "/", &[("canary", "true"), ("canary-weight", "50")], "")
        .replace("pathType: ImplementationSpecific", "pathType: Exact");
    let m = run(&[cm.clone(), ingress("site", "/", &[], ""), prefix], R);
    assert!(one(&m, "HTTPRoute")["spec"]["rules"][0]["backendRefs"][0].get("weight").is_none());
    assert!(m.report.entries.iter().any(|e| e.key.starts_with("canary path") && e.status == Status::NotConverted));
    // A canary without its main Ingress.
    let m = run(&[cm, canary(&[("canary-weight", "50")])], R);
    assert!(m.report.entries.iter().any(|e| e.key.starts_with("canary path") && e.status == Status::NotConverted));
}

#[test]
fn classes_named_ports_and_determinism() {
    let cm = controller(&[]);
    let other = ingress("other", "/", &[], "").replace("ingressClassName: nginx", "ingressClassName: traefik");
    let legacy = ingress("legacy", "/l", &[("kubernetes.io/ingress.class", "nginx")], "")
        .replace("  ingressClassName: nginx\n", "");
    let named = ingress("named", "/n", &[], "").replace("number: 80", "name: web");
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: named-svc, namespace: web}\nspec:\n  ports:\n  - {name: web, port: 8080, targetPort: 80}\n".to_owned();
    let docs = [cm, other, legacy, named, svc];
    let m = run(&docs, R);
    let names: Vec<&str> = find(&m, "HTTPRoute").iter().map(|r| r["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["legacy", "named"]);
    assert!(m.report.notes.iter().any(|n| n.contains("Ingress/web/other") && n.contains("`traefik`")));
    let named = find(&m, "HTTPRoute")[1];
    assert_eq!(named["spec"]["rules"][0]["backendRefs"][0]["port"], 8080);
    assert_eq!(status(&m, "kubernetes.io/ingress.class"), Status::Converted);
    // Same input, same bytes; input order does not matter.
    let mut rev = docs.to_vec();
    rev.reverse();
    let again = run(&rev, R);
    assert_eq!(realip_migrate::to_yaml(&m.objects), realip_migrate::to_yaml(&again.objects));
    assert_eq!(m.report.text(), run(&docs, R).report.text());
}

/// realip's own Gateway mode accepts everything the migration emits for it:
/// every Gateway, listener, route and policy translates with no False
/// Accepted / ResolvedRefs condition.
#[test]
fn realip_gateway_mode_accepts_the_output() {
    use realip_kube::gateway::objects::Objects;
    let cm = controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")]);
    let tls = tls_spec("app.example.com");
    let docs = [
        cm,
        ingress("site", "/api(/|$)(.*)", &[("rewrite-target", "/$2")], &tls),
        // Restrictions on a host without regex mode, and a left-out Ingress (deny-all).
        ingress("limited", "/limited/", &[("whitelist-source-range", "203.0.113.0/24"), ("limit-rps", "10")], "")
            .replace("app.example.com", "root.example.com"),
        ingress("locked", "/locked/", &[("auth-type", "basic")], "").replace("app.example.com", "root.example.com"),
        ingress(
            "site-canary",
            "/api(/|$)(.*)",
            &[("canary", "true"), ("canary-by-header", "X-Canary"), ("canary-weight", "10")],
            "",
        ),
        ingress("root", "/", &[("app-root", "/home"), ("denylist-source-range", "198.51.100.0/24")], "")
            .replace("app.example.com", "root.example.com"),
    ];
    let m = run(&docs, R);
    let mut world = Objects::default();
    world
        .add_yaml("apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: realip}\nspec: {controllerName: realip.dev/gateway-controller}\n")
        .unwrap();
    for svc in ["site-svc", "site-canary-svc", "root-svc", "limited-svc", "locked-svc"] {
        world.add(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc, "namespace": "web"}, "spec": {"ports": [{"port": 80}]}})).unwrap();
    }
    world
        .add(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": "site-tls", "namespace": "web"},
            "data": {"tls.crt": realip_kube::tls::testdata::CRT_B64, "tls.key": realip_kube::tls::testdata::KEY_B64}}))
        .unwrap();
    for o in &m.objects {
        world.add(o.clone()).unwrap();
    }
    let t = realip_kube::gateway::translate::translate(&world.inputs("realip", &[]));
    let problems = t.problems();
    assert!(problems.is_empty(), "{problems:#?}\n{}", realip_migrate::to_yaml(&m.objects));
    assert!(t.routes.routes.len() >= 4, "{:#?}", t.routes.routes);
    assert_eq!(routes(&m, true), ["locked-denied"]);
}

#[test]
fn the_last_copy_of_an_object_wins() {
    // A patch file after the base, as kubectl applies them: the allow list the
    // patch adds must not be dropped.
    let cm = controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")]);
    let base = ingress("site", "/", &[], "");
    let patched = ingress("site", "/", &[("allowlist-source-range", "203.0.113.0/24")], "");
    let m = run(&[cm.clone(), base.clone(), patched.clone()], R);
    assert_eq!(one(&m, "ClientAccessPolicy")["spec"]["allow"], json!(["203.0.113.0/24"]));
    let m = run(&[cm.clone(), patched, base], R);
    assert!(find(&m, "ClientAccessPolicy").is_empty());
    // The controller too: the later copy's --ingress-class decides.
    let later = cm.replace("--ingress-class=nginx", "--ingress-class=other");
    let m = run(&[cm.clone(), later, ingress("site", "/", &[], "")], R);
    assert!(find(&m, "HTTPRoute").is_empty(), "{}", m.report.text());
}

#[test]
fn access_control_stays_out_when_the_client_address_is_not_converted() {
    let limited = || {
        vec![
            ingress("open", "/", &[], ""),
            ingress("listed", "/", &[("allowlist-source-range", "203.0.113.0/24")], ""),
            ingress("denied", "/", &[("denylist-source-range", "203.0.113.66")], ""),
            ingress("limited", "/", &[("limit-rps", "5")], ""),
        ]
    };
    let cases = [
        // Envoy Gateway cannot believe a custom header from the trusted proxies only.
        (
            controller(&[
                ("use-forwarded-headers", "true"),
                ("forwarded-for-header", "CF-Connecting-IP"),
                ("proxy-real-ip-cidr", "10.0.0.0/8"),
            ]),
            EG,
        ),
        // Real-IP directives in a snippet change who the client is. (A
        // proxy-real-ip-cidr entry that is no CIDR fails every nginx load:
        // settings_nginx_refuses_leave_every_ingress_out in review18.rs.)
        (controller(&[("use-forwarded-headers", "true"), ("http-snippet", "real_ip_header X-Client;")]), R),
        (controller(&[("use-forwarded-headers", "true"), ("http-snippet", "real_ip_header X-Client;")]), EG),
    ];
    for (cm, target) in cases {
        let mut docs = vec![cm];
        docs.extend(limited());
        let m = run(&docs, target);
        let routes: Vec<&str> = find(&m, "HTTPRoute").iter().filter_map(|r| r["metadata"]["name"].as_str()).collect();
        assert_eq!(routes, ["open"], "{target:?}\n{}", m.report.text());
        for kind in ["ClientAccessPolicy", "SecurityPolicy", "BackendTrafficPolicy"] {
            assert!(find(&m, kind).is_empty(), "{target:?}: {kind}");
        }
        for key in ["allowlist-source-range", "denylist-source-range", "limit-rps"] {
            assert_eq!(status(&m, key), Status::NotConverted, "{target:?}: {key}\n{}", m.report.text());
        }
        assert!(m.report.incomplete());
    }
}

/// ingress-nginx applies the ConfigMap's `whitelist-source-range`,
/// `denylist-source-range` and `block-cidrs` to every server. Not converted,
/// so no Ingress may be emitted without them (it would be open); an empty
/// value restricts nothing and changes nothing.
#[test]
fn configmap_access_lists_leave_every_ingress_out() {
    for target in [R, EG] {
        for key in ["whitelist-source-range", "denylist-source-range", "block-cidrs"] {
            let docs = vec![
                controller(&[(key, "198.51.100.0/24")]),
                ingress("open", "/", &[], ""),
                ingress("listed", "/", &[("allowlist-source-range", "203.0.113.0/24")], ""),
            ];
            let m = run(&docs, target);
            assert!(routes(&m, false).is_empty(), "{target:?} {key}\n{}", m.report.text());
            // Both claim app.example.com/: the one ingress-nginx serves it from (`open`) is emitted.
            assert_eq!(routes(&m, true), ["open-denied"], "{target:?} {key}");
            assert_eq!(status(&m, key), Status::NotConverted, "{target:?} {key}");
            assert_eq!(status(&m, "allowlist-source-range"), Status::NotConverted, "{target:?} {key}");
            assert!(m.report.incomplete());
            assert!(m.report.text().contains("left out"), "{}", m.report.text());

            let docs = vec![controller(&[(key, " ")]), ingress("open", "/", &[], "")];
            let m = run(&docs, target);
            assert_eq!(find(&m, "HTTPRoute").len(), 1, "{target:?} {key} empty\n{}", m.report.text());
            assert_eq!(status(&m, key), Status::Ignored, "{target:?} {key} empty");
        }
    }
}

#[test]
fn hosts_that_collapse_to_one_slug_get_unique_names() {
    // `a-b.example` and `a.b.example` both slug to `a-b-example`.
    let two = ingress("site", "/", &[], &tls_spec("a-b.example, a.b.example")).replace(
        "  rules:\n  - host: app.example.com\n",
        "  rules:\n  - host: a.b.example\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: site-svc\n            port:\n              number: 80\n  - host: a-b.example\n",
    );
    for target in [R, EG] {
        let m = run(&[controller(&[]), two.clone()], target);
        let listeners: Vec<&str> = one(&m, "Gateway")["spec"]["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        let mut unique = listeners.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), listeners.len(), "{listeners:?}");
        assert_eq!(listeners.len(), 3, "http + one HTTPS listener per host: {listeners:?}");
        let routes: Vec<&str> = find(&m, "HTTPRoute").iter().map(|r| r["metadata"]["name"].as_str().unwrap()).collect();
        let mut unique = routes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), routes.len(), "{routes:?}");
        assert!(routes.iter().filter(|r| r.starts_with("site-a-b-example-")).count() >= 2, "{routes:?}");
        // Deterministic: the same names on every run.
        assert_eq!(
            realip_migrate::to_yaml(&m.objects),
            realip_migrate::to_yaml(&run(&[controller(&[]), two.clone()], target).objects)
        );
    }
}

/// Route names are the Ingress's name and a host slug, which can meet across
/// Ingresses: `a` with host `b-c.x` and `a-b` with host `c.x` both give
/// `a-b-c-x`. Both routes must stay, with different names, deterministically.
#[test]
fn route_names_never_collide_across_ingresses() {
    let two_hosts = |name: &str, host: &str| {
        ingress(name, "/", &[], "").replace(
            "  rules:\n  - host: app.example.com\n",
            &format!("  rules:\n  - host: other-{name}.x\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: {name}-svc\n            port:\n              number: 80\n  - host: {host}\n"),
        )
    };
    let docs = [controller(&[]), two_hosts("a", "b-c.x"), two_hosts("a-b", "c.x")];
    for target in [R, EG] {
        let m = run(&docs, target);
        let routes: Vec<(&str, &str)> = find(&m, "HTTPRoute")
            .iter()
            .map(|r| (r["metadata"]["name"].as_str().unwrap(), r["spec"]["hostnames"][0].as_str().unwrap_or_default()))
            .collect();
        let mut names: Vec<&str> = routes.iter().map(|r| r.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), routes.len(), "{routes:?}");
        for host in ["b-c.x", "c.x", "other-a.x", "other-a-b.x"] {
            assert!(routes.iter().any(|r| r.1 == host), "no route for {host}: {routes:?}");
        }
        assert_eq!(
            realip_migrate::to_yaml(&m.objects),
            realip_migrate::to_yaml(&run(&docs, target).objects),
            "deterministic"
        );
    }
}

/// ingress-nginx serves one host+path (same path, same pathType) from one
/// Ingress: the oldest, ties to the greater namespace/name. Emitting both
/// would let the Gateway's own tie-break pick the other route and bypass
/// the winner's allow list.
#[test]
fn the_ingress_nginx_serves_a_shared_path_from_is_the_only_one_emitted() {
    let at = |name: &str, ns: &str, ts: Option<&str>, anns: &[(&str, &str)]| {
        let ts = ts.map_or_else(String::new, |t| format!("  creationTimestamp: \"{t}\"\n"));
        ingress(name, "/", anns, "").replace("  namespace: web\n", &format!("  namespace: {ns}\n{ts}"))
    };
    let allow = [("allowlist-source-range", "203.0.113.0/24")];
    let cases: Vec<(Vec<String>, Vec<&str>, &str)> = vec![
        // The older one wins, whatever the names and namespaces.
        (
            vec![
                at("z-old", "web", Some("2024-01-01T00:00:00Z"), &allow),
                at("a-new", "aaa", Some("2024-06-01T00:00:00Z"), &[]),
            ],
            vec!["web/z-old"],
            "Ingress/aaa/a-new",
        ),
        (
            vec![
                at("z-new", "zzz", Some("2024-06-01T00:00:00Z"), &[]),
                at("a-old", "web", Some("2024-01-01T00:00:00Z"), &allow),
            ],
            vec!["web/a-old"],
            "Ingress/zzz/z-new",
        ),
        // No timestamps (manifests): namespace/name descending, as ingress-nginx breaks ties.
        (vec![at("alpha", "web", None, &[]), at("beta", "web", None, &allow)], vec!["web/beta"], "Ingress/web/alpha"),
        // The winner is left out (its list does not convert): the loser stays out too,
        // and the winner's location is emitted deny-all.
        (
            vec![
                at("old", "web", Some("2024-01-01T00:00:00Z"), &[("allowlist-source-range", "203.0.113.0/33")]),
                at("new", "web", Some("2024-06-01T00:00:00Z"), &[]),
            ],
            vec!["web/old-denied"],
            "Ingress/web/new",
        ),
    ];
    for target in [R, EG] {
        for (ings, want, loser) in &cases {
            let mut docs = vec![controller(&[])];
            docs.extend(ings.iter().cloned());
            let m = run(&docs, target);
            let emitted: Vec<String> = routes_ns(&m, false).into_iter().chain(routes_ns(&m, true)).collect();
            assert_eq!(&emitted, want, "{target:?}\n{}", m.report.text());
            let e = m.report.entries.iter().find(|e| e.object == *loser && e.key.starts_with("path app.example.com/"));
            let e = e.unwrap_or_else(|| panic!("no shadowed entry for {loser}\n{}", m.report.text()));
            assert_eq!(e.status, Status::NotConverted);
            assert!(e.why.contains("shadowed by Ingress/"), "{}", e.why);
            assert!(m.report.incomplete());
        }
    }
    // Same path, different pathType: two nginx locations, both emitted.
    let exact = at("exact", "web", None, &[]).replace("pathType: ImplementationSpecific", "pathType: Exact");
    let m = run(&[controller(&[]), exact, at("prefix", "web", None, &[])], R);
    assert_eq!(find(&m, "HTTPRoute").len(), 2, "{}", m.report.text());
    assert!(!m.report.incomplete(), "{}", m.report.text());
}

/// ingress-nginx uses an Ingress's `spec.defaultBackend` as the `/`
/// fallback of the hosts whose server it creates (never as a catch-all for
/// every host), and only an Ingress without rules gives the catch-all
/// server `_` its backend.
#[test]
fn default_backends_are_the_fallback_of_their_own_hosts() {
    let fb = "  defaultBackend:\n    service:\n      name: fallback\n      port:\n        number: 8080\n";
    let no_rules = |name: &str| {
        let i = ingress(name, "/", &[], fb);
        i[..i.find("  rules:").unwrap()].to_owned()
    };
    let rules_of = |r: &serde_json::Value| -> Vec<(String, String, String)> {
        r["spec"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["matches"][0]["path"]["type"].as_str().unwrap().to_owned(),
                    x["matches"][0]["path"]["value"].as_str().unwrap().to_owned(),
                    x["backendRefs"][0]["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    for target in [R, EG] {
        // With rules: a `/` rule on the Ingress's own host, under its allow list; no host-less route.
        let site = ingress("site", "/api/", &[("allowlist-source-range", "203.0.113.0/24")], fb);
        let m = run(&[controller(&[]), site.clone()], target);
        let r = one(&m, "HTTPRoute");
        assert_eq!(r["spec"]["hostnames"], json!(["app.example.com"]), "{}", m.report.text());
        assert_eq!(
            rules_of(r),
            [
                ("PathPrefix".into(), "/api/".into(), "site-svc".into()),
                ("PathPrefix".into(), "/".into(), "fallback".into())
            ]
        );
        let policy = if target == R { "ClientAccessPolicy" } else { "SecurityPolicy" };
        assert_eq!(one(&m, policy)["spec"]["targetRefs"][0]["name"], "site");
        assert_eq!(status(&m, "spec.defaultBackend app.example.com"), Status::Converted);
        assert!(!m.report.incomplete(), "{}", m.report.text());

        // Another Ingress routes `/` on the host: it replaces the fallback, as in nginx.
        // (no timestamps: `site` comes before `root`, names descending, and creates the server).
        let root = ingress("root", "/", &[], "");
        let m = run(&[controller(&[]), site.clone(), root], target);
        assert!(find(&m, "HTTPRoute").iter().all(|r| rules_of(r).iter().all(|x| x.2 != "fallback")));
        assert_eq!(status(&m, "spec.defaultBackend app.example.com"), Status::Ignored);

        // An older Ingress created the host's server: this defaultBackend is not used there.
        let older = ingress("older", "/web", &[], "")
            .replace("name: older\n", "name: older\n  creationTimestamp: \"2020-01-01T00:00:00Z\"\n");
        let m = run(&[controller(&[]), site.clone(), older], target);
        assert!(
            find(&m, "HTTPRoute").iter().all(|r| rules_of(r).iter().all(|x| x.2 != "fallback")),
            "{}",
            m.report.text()
        );
        assert_eq!(status(&m, "spec.defaultBackend"), Status::Ignored);

        // Without rules: the catch-all server's backend, a host-less route; only the first such Ingress.
        let m = run(&[controller(&[]), no_rules("a-catch"), no_rules("b-catch")], target);
        let r = one(&m, "HTTPRoute");
        assert_eq!(r["metadata"]["name"], "b-catch-default-backend", "{}", m.report.text());
        assert!(r["spec"].get("hostnames").is_none());
        assert_eq!(rules_of(r), [("PathPrefix".into(), "/".into(), "fallback".into())]);
        let a = m.report.entries.iter().find(|e| e.object == "Ingress/web/a-catch" && e.key == "spec.defaultBackend");
        assert_eq!(a.map(|e| e.status), Some(Status::Ignored), "{}", m.report.text());
    }
}

/// An annotation or ConfigMap key that restricts who gets through and does
/// not convert keeps the Ingresses it applies to out of the output, like an
/// allow list that does not parse: emitted without it, the route is open.
#[test]
fn restrictions_that_do_not_convert_leave_the_ingress_out() {
    let restricting: &[(&str, &str)] = &[
        ("auth-url", "http://oauth2-proxy.auth.svc/oauth2/auth"),
        ("auth-type", "basic"),
        ("auth-secret", "basic-auth"),
        ("auth-tls-secret", "web/ca"),
        ("auth-tls-verify-client", "on"),
        ("enable-modsecurity", "true"),
        ("enable-owasp-core-rules", "true"),
        ("modsecurity-snippet", "SecRuleEngine On"),
        ("limit-connections", "10"),
        ("configuration-snippet", "deny 198.51.100.0/24;"),
        ("server-snippet", "location /admin { return 403; }"),
        ("configuration-snippet", "if ($http_x_key = \"\") { return 401; }"),
        // Anything but headers, buffers, timeouts, logs, compression counts (M5).
        (
            "configuration-snippet",
            "access_by_lua_block {\n  if ngx.var.remote_addr ~= \"192.0.2.1\" then ngx.exit(403) end\n}",
        ),
        ("server-snippet", "if ($remote_addr !~ \"^10\\.\") { return 503; }"),
        ("configuration-snippet", "return 302 /login;"),
        ("server-snippet", "ssl_verify_client on;"),
    ];
    let harmless: &[(&str, &str)] = &[
        ("auth-tls-verify-client", "off"),
        ("enable-modsecurity", "false"),
        ("configuration-snippet", "more_set_headers \"X-Frame-Options: DENY\";"),
        ("configuration-snippet", "proxy_set_header X-A b;\n# deny all;\nproxy_read_timeout 60s;"),
    ];
    for target in [R, EG] {
        for (k, v) in restricting {
            let m = run(
                &[
                    controller(&[("allow-snippet-annotations", "true"), ("annotations-risk-level", "Critical")]),
                    ingress("site", "/", &[(k, v)], ""),
                    ingress("open", "/other", &[], ""),
                ],
                target,
            );
            // Client certificates and server snippets restrict the whole server of the
            // host in ingress-nginx: every route of the host is denied (N3).
            let host_wide = matches!(*k, "auth-tls-secret" | "auth-tls-verify-client" | "server-snippet");
            let (open, denied): (&[&str], &[&str]) =
                if host_wide { (&[], &["open-denied", "site-denied"]) } else { (&["open"], &["site-denied"]) };
            assert_eq!(routes(&m, false), open, "{k}: {v}\n{}", m.report.text());
            assert_eq!(routes(&m, true), denied, "{k}: {v}: its location refuses requests");
            assert_eq!(status(&m, k), Status::NotConverted, "{k}");
            assert!(m.report.text().contains("Ingress/web/site (test.yaml:"), "a note says it is left out");
            assert!(m.report.text().contains("emitted as deny-all"), "the note says how");
        }
        for (k, v) in harmless {
            let m = run(
                &[
                    controller(&[("allow-snippet-annotations", "true"), ("annotations-risk-level", "Critical")]),
                    ingress("site", "/", &[(k, v)], ""),
                ],
                target,
            );
            assert_eq!(find(&m, "HTTPRoute").len(), 1, "{k}: {v}\n{}", m.report.text());
        }
        // ConfigMap keys for every server: every Ingress out; global-auth-url spares an
        // Ingress with enable-global-auth "false", as ingress-nginx does.
        for (k, v) in [
            ("global-auth-url", "http://auth.example/check"),
            ("block-user-agents", "~*curl"),
            ("block-referers", "~*spam"),
            ("server-snippet", "deny all;"),
            ("location-snippet", "auth_request /auth;"),
        ] {
            let optout = ingress("optout", "/o", &[("enable-global-auth", "false")], "");
            let m = run(&[controller(&[(k, v)]), ingress("site", "/", &[], ""), optout], target);
            let (open, denied): (&[&str], &[&str]) = if k == "global-auth-url" {
                (&["optout"], &["site-denied"])
            } else {
                (&[], &["optout-denied", "site-denied"])
            };
            assert_eq!(routes(&m, false), open, "{k}\n{}", m.report.text());
            assert_eq!(routes(&m, true), denied, "{k}\n{}", m.report.text());
            assert_eq!(status(&m, k), Status::NotConverted, "{k}");
            assert!(m.report.incomplete());
        }
        // A ConfigMap snippet without access directives restricts nothing.
        let m = run(&[controller(&[("server-snippet", "add_header X-A b;")]), ingress("site", "/", &[], "")], target);
        assert_eq!(find(&m, "HTTPRoute").len(), 1, "{}", m.report.text());
    }
}

/// The controller names a ConfigMap that is not in the input: its client-IP
/// keys are unknown, so defaults would silently change who the client is.
#[test]
fn a_missing_configmap_is_not_converted() {
    let no_cm: String = controller(&[("use-forwarded-headers", "true")])
        .split("---\n")
        .filter(|d| !d.contains("kind: ConfigMap"))
        .collect::<Vec<_>>()
        .join("---\n");
    for target in [R, EG] {
        let m = run(
            &[
                no_cm.clone(),
                ingress("open", "/", &[], ""),
                ingress("listed", "/l", &[("allowlist-source-range", "203.0.113.0/24")], "")
                    .replace("pathType: ImplementationSpecific", "pathType: Prefix"),
            ],
            target,
        );
        let e =
            m.report.entries.iter().find(|e| e.key == "--configmap").unwrap_or_else(|| panic!("{}", m.report.text()));
        assert_eq!(e.status, Status::NotConverted);
        assert!(e.why.contains("ConfigMap ingress-nginx/ingress-nginx-controller"), "{}", e.why);
        assert!(m.report.incomplete());
        // The allow list would key on an address nobody knows: left out, deny-all.
        assert_eq!(routes(&m, false), ["open"], "{}", m.report.text());
        assert_eq!(routes(&m, true), ["listed-denied"], "{}", m.report.text());
    }
}

/// `canary` and `use-regex` are Go ParseBool booleans like the ConfigMap's;
/// an empty deny list, or one with an empty item, makes ingress-nginx
/// refuse the Ingress's locations with 503 (R8-2): deny-all.
#[test]
fn annotation_booleans_and_empty_deny_lists() {
    for (k, v, want) in [
        ("canary", "yes", Status::NotConverted),
        // Read as true: a canary, and with no main Ingress nothing of it is folded into a route.
        ("canary", "TRUE", Status::Changed),
        ("canary", "0", Status::Converted),
        ("use-regex", "on", Status::NotConverted),
        ("use-regex", "True", Status::Converted),
        ("use-regex", "f", Status::Converted),
        ("denylist-source-range", "", Status::NotConverted),
        ("denylist-source-range", " , ", Status::NotConverted),
    ] {
        let m = run(&[controller(&[]), ingress("site", "/", &[(k, v)], "")], R);
        assert_eq!(status(&m, k), want, "{k}: {v:?}\n{}", m.report.text());
        if k == "denylist-source-range" {
            assert_eq!(routes(&m, true), ["site-denied"], "{v:?}");
        }
    }
}

/// Names built from a long Ingress name and host stay within 253
/// characters (metadata.name), distinct, and the same on every run.
#[test]
fn long_names_are_cut_with_a_stable_hash() {
    let name = "n".repeat(240); // its Service, `<name>-svc`, stays a valid name
    let long_host = format!("{}.example.com", "h".repeat(60));
    let two = ingress(&name, "/", &[("allowlist-source-range", "203.0.113.0/24")], "").replace(
        "  rules:\n  - host: app.example.com\n",
        &format!("  rules:\n  - host: {long_host}\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: s\n            port:\n              number: 80\n  - host: app.example.com\n"),
    );
    for target in [R, EG] {
        let m = run(&[controller(&[]), two.clone()], target);
        let names: Vec<&str> = m.objects.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
        assert!(names.iter().all(|n| n.len() <= 253), "{names:?}");
        let routes: Vec<&str> = find(&m, "HTTPRoute").iter().map(|r| r["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(routes.len(), 2);
        assert_ne!(routes[0], routes[1]);
        assert!(routes.iter().all(|r| r.starts_with(&name[..200]) && !r.ends_with('-')), "{routes:?}");
        for o in &m.objects {
            for l in o["spec"]["listeners"].as_array().into_iter().flatten() {
                assert!(l["name"].as_str().unwrap().len() <= 253);
            }
        }
        assert_eq!(
            realip_migrate::to_yaml(&m.objects),
            realip_migrate::to_yaml(&run(&[controller(&[]), two.clone()], target).objects)
        );
    }
}

/// A location ingress-nginx served that does not convert (its Ingress or
/// the path is left out) is emitted deny-all: its matches, no backend, a
/// policy refusing every client. Left out of the output instead, its
/// requests would fall through to a more open route of the host (here
/// `app`'s `/`), which ingress-nginx never let them reach.
#[test]
#[allow(clippy::too_many_lines)] // the table
fn left_out_locations_refuse_requests_instead_of_falling_through() {
    // (ConfigMap, annotations, path, pathType, targets, the denied match (type, value) for realip and
    // for Envoy Gateway, key not converted)
    type M<'a> = (&'a str, &'a str);
    type LeftOut<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str, &'a [Target], [M<'a>; 2], &'a str);
    let cm = controller(&[("allow-snippet-annotations", "true"), ("annotations-risk-level", "Critical")]);
    let lost = controller(&[("use-forwarded-headers", "true"), ("http-snippet", "real_ip_header X-Client;")]);
    let both: &[Target] = &[R, EG];
    let admin = [("PathPrefix", "/admin"); 2];
    let old = [("PathPrefix", "/old"); 2];
    let table: Vec<LeftOut> = vec![
        (
            "",
            vec![("whitelist-source-range", "10.1.2.3/33")],
            "/admin",
            "Prefix",
            both,
            admin,
            "whitelist-source-range",
        ),
        ("", vec![("allowlist-source-range", "")], "/admin", "Prefix", both, admin, "allowlist-source-range"),
        (
            "",
            vec![("denylist-source-range", "198.51.100.0/33")],
            "/admin",
            "Prefix",
            both,
            admin,
            "denylist-source-range",
        ),
        ("", vec![("auth-url", "http://auth.example/check")], "/admin", "Prefix", both, admin, "auth-url"),
        ("", vec![("auth-type", "basic")], "/admin", "Prefix", both, admin, "auth-type"),
        ("", vec![("limit-connections", "5")], "/admin", "Prefix", both, admin, "limit-connections"),
        ("", vec![("configuration-snippet", "deny all;")], "/admin", "Prefix", both, admin, "configuration-snippet"),
        ("", vec![("backend-protocol", "HTTPS")], "/admin", "Prefix", both, admin, "backend-protocol"),
        (
            "",
            vec![("permanent-redirect", "https://new.example/?from=old")],
            "/old",
            "Prefix",
            both,
            old,
            "permanent-redirect",
        ),
        ("", vec![("temporal-redirect", "https://$host/x")], "/old", "Prefix", both, old, "temporal-redirect"),
        (
            "",
            vec![("temporal-redirect", "https://t.example/"), ("temporal-redirect-code", "304")],
            "/old",
            "Prefix",
            both,
            old,
            "temporal-redirect",
        ),
        // ImplementationSpecific: nginx's `location /admin` is a string prefix (/admin.php,
        // /administrator): Envoy Gateway denies it by a regex, realip (no regex match) by the
        // parent segment, here `/` (N1).
        (
            "",
            vec![("auth-type", "basic")],
            "/admin",
            "ImplementationSpecific",
            both,
            [("PathPrefix", "/"), ("RegularExpression", "^/admin.*")],
            "auth-type",
        ),
        (
            "",
            vec![("auth-type", "basic")],
            "/api/admin",
            "ImplementationSpecific",
            both,
            [("PathPrefix", "/api"), ("RegularExpression", "^/api/admin.*")],
            "auth-type",
        ),
        // Paths: only that path is left out; its match becomes a valid superset. In regex
        // mode nginx matches case-insensitively: realip's PathPrefix (case-sensitive) can
        // only be `/`.
        (
            "",
            vec![("use-regex", "true")],
            "/api/v[0-9]+",
            "ImplementationSpecific",
            &[R],
            [("PathPrefix", "/"); 2],
            "path /api/v[0-9]+",
        ),
        (
            "",
            vec![("rewrite-target", "/new/$1/x")],
            "/old/(.*)",
            "ImplementationSpecific",
            both,
            [("PathPrefix", "/"), ("RegularExpression", "(?i)^/old/.*.*.*.*")],
            "path /old/(.*)",
        ),
        (
            "",
            vec![],
            "/static//img",
            "ImplementationSpecific",
            both,
            [("PathPrefix", "/static"), ("RegularExpression", "^/static//img.*")],
            "path /static//img",
        ),
        (
            "",
            vec![],
            "/api/{id}",
            "ImplementationSpecific",
            both,
            [("PathPrefix", "/api"), ("RegularExpression", "^/api/\\{id\\}.*")],
            "path /api/{id}",
        ),
        ("", vec![], "/exact", "Exact", both, [("Exact", "/exact"); 2], "path /exact"),
        // The client address is lost: an allow list or a limit cannot be kept.
        ("lost", vec![("limit-rps", "5")], "/admin", "Prefix", both, admin, "limit-rps"),
        (
            "lost",
            vec![("allowlist-source-range", "192.0.2.0/24")],
            "/admin",
            "Prefix",
            both,
            admin,
            "allowlist-source-range",
        ),
    ];
    for (cmk, anns, path, ty, targets, want, key) in &table {
        for target in *targets {
            let (ty_want, value) = want[usize::from(*target == EG)];
            let mut site =
                ingress("site", path, anns, "").replace("pathType: ImplementationSpecific", &format!("pathType: {ty}"));
            if *path == "/exact" {
                // A named port and no Service in the input to resolve it.
                site = site.replace("number: 80", "name: http");
            }
            let mut cm = if *cmk == "lost" { lost.clone() } else { cm.clone() };
            if *ty == "ImplementationSpecific"
                && anns.iter().all(|(k, _)| !matches!(*k, "use-regex" | "rewrite-target"))
            {
                // A string prefix before v0.41 only (since then the store holds Prefix).
                cm = cm.replacen("controller:v1.15.1", "controller:v0.40.2", 1);
            }
            let m = run(&[cm, ingress("app", "/", &[], ""), site], *target);
            let text = m.report.text();
            // A deny of `/` has app's match: app's route is dropped (refused), never left to compete.
            let open: &[&str] = if value == "/" { &[] } else { &["app"] };
            assert_eq!(routes(&m, false), open, "{key} {path} {target:?}\n{text}");
            assert_eq!(routes(&m, true), ["site-denied"], "{key} {target:?}\n{text}");
            let route = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "site-denied").unwrap();
            assert_eq!(
                route["spec"]["rules"],
                json!([{"matches": [{"path": {"type": ty_want, "value": value}}]}]),
                "{key} {path} {target:?}"
            );
            assert_eq!(route["spec"]["hostnames"], json!(["app.example.com"]));
            assert!(route["spec"]["parentRefs"][0].get("sectionName").is_none(), "every listener");
            assert_eq!(status(&m, key), Status::NotConverted, "{key} {target:?}\n{text}");
            assert!(text.contains("deny-all"), "{key} {target:?}: the report says how it is left out\n{text}");
            let wider = m.report.entries.iter().any(|e| e.key.starts_with("deny-all ") && e.status == Status::Changed);
            assert_eq!(
                wider,
                ty_want != "Exact" && value != *path,
                "{key} {path} {target:?}: a wider deny is reported\n{text}"
            );
            assert!(m.report.incomplete());
            assert!(open_policies(&m).is_empty(), "{key} {target:?}: nothing of the left-out Ingress is kept");
        }
    }
    // A left-out Ingress's defaultBackend is the `/` fallback of its host: denied too.
    let fallback = "  defaultBackend:\n    service:\n      name: site-svc\n      port:\n        number: 80\n";
    let site = ingress("site", "/admin", &[("auth-type", "basic")], fallback)
        .replace("pathType: ImplementationSpecific", "pathType: Prefix");
    let m = run(&[cm.clone(), site], R);
    let route = one(&m, "HTTPRoute");
    assert_eq!(route["spec"]["rules"].as_array().unwrap().len(), 2, "{route:#}");
    assert_eq!(route["spec"]["rules"][1]["matches"][0]["path"], json!({"type": "PathPrefix", "value": "/"}));
    assert_eq!(routes(&m, true), ["site-denied"]);
    // Redirected to https by ingress-nginx: the denied route still takes plain HTTP too.
    let tls = "  tls:\n  - hosts: [app.example.com]\n    secretName: app-tls\n";
    let m = run(&[cm, ingress("site", "/admin", &[("auth-type", "basic")], tls)], R);
    assert_eq!(routes(&m, true), ["site-denied"]);
    assert_eq!(routes(&m, false), Vec::<String>::new());
}

/// Policy names go through the same collision-free naming as routes: the
/// second chunk of targets of Ingress `api` (more than 16 routes) is
/// `api-2`, which must not replace the policy of Ingress `api-2` or be
/// replaced by it (one of them would lose its allow list or its limit).
#[test]
fn policy_names_never_collide_across_ingresses() {
    let mut many = ingress("api", "/", &[("allowlist-source-range", "192.0.2.0/24")], "");
    let rule = many.split_once("  rules:\n").unwrap().1.to_owned();
    let mut rules = String::new();
    for i in 0..17 {
        // A path of its own per host: routes that differ only by host would share one route.
        let r = rule
            .replace("app.example.com", &format!("h{i}.example"))
            .replace("path: \"/\"", &format!("path: \"/p{i}\""))
            .replace("pathType: ImplementationSpecific", "pathType: Prefix");
        rules.push_str(&r);
    }
    many = format!("{}  rules:\n{rules}", many.split_once("  rules:\n").unwrap().0);
    let limited = ingress("api-2", "/", &[("limit-rps", "100")], "").replace("app.example.com", "other.example");
    for target in [R, EG] {
        let m = run(&[controller(&[]), many.clone(), limited.clone()], target);
        let text = m.report.text();
        let policies = open_policies(&m);
        let mut names: Vec<(String, String)> = policies
            .iter()
            .map(|p| (p["kind"].as_str().unwrap().to_owned(), p["metadata"]["name"].as_str().unwrap().to_owned()))
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "{target:?}: a policy name given twice: {names:?}");
        // Every route of `api` is under its allow list, `api-2`'s under its limit.
        let allowing = if target == R { "/spec/allow" } else { "/spec/authorization/rules" };
        let limiting = if target == R { "/spec/rateLimit" } else { "/spec/rateLimit/local" };
        for r in find(&m, "HTTPRoute") {
            let name = r["metadata"]["name"].as_str().unwrap();
            let field = if name.starts_with("api-h") { allowing } else { limiting };
            let under = policies.iter().any(|p| {
                p.pointer(field).is_some()
                    && p["spec"]["targetRefs"].as_array().unwrap().iter().any(|t| t["name"] == name)
            });
            assert!(under, "{target:?}: route {name} is not under its Ingress's policy ({field})\n{text}");
        }
        assert_eq!(find(&m, "HTTPRoute").len(), 18, "{target:?}");
    }
}

/// A Prefix or ImplementationSpecific path was a string prefix in
/// ingress-nginx before v0.41 (`location /admin` takes /admin.php too:
/// `buildLocation` gave only Exact paths a modifier); PathPrefix matches
/// segments. Under an allow list or a limit that difference opens
/// /admin.php, so the path is left out (deny-all) unless it ends in `/`;
/// without restrictions the difference is reported changed, as is the
/// 301 nginx answers for `/admin` on a `location /admin/`.
#[test]
fn implementation_specific_paths_are_string_prefixes() {
    type StringPrefix<'a> = (&'a str, &'a str, bool, [&'a [&'a str]; 2], &'a [&'a str], Option<Status>);
    let allow = [("whitelist-source-range", "192.0.2.0/24")];
    // (path, pathType, restricted, open routes (realip, Envoy Gateway), denied routes, report status of `path …`)
    // realip cannot match a string prefix: its deny is PathPrefix /, which also takes app's `/` (N1).
    let table: &[StringPrefix] = &[
        ("/admin", "ImplementationSpecific", true, [&[], &["app"]], &["site-denied"], Some(Status::NotConverted)),
        ("/admin/", "ImplementationSpecific", true, [&["app", "site"]; 2], &[], Some(Status::Changed)),
        ("/admin", "Prefix", true, [&[], &["app"]], &["site-denied"], Some(Status::NotConverted)),
        ("/admin", "Prefix", false, [&["app", "site"]; 2], &[], Some(Status::Changed)),
        // Prefix `/admin/`: nginx answers `/admin` with a 301, the route serves it (N10).
        ("/admin/", "Prefix", true, [&["app", "site"]; 2], &[], Some(Status::Changed)),
        ("/admin", "ImplementationSpecific", false, [&["app", "site"]; 2], &[], Some(Status::Changed)),
    ];
    for (t, target) in [R, EG].into_iter().enumerate() {
        for (path, ty, restricted, open, denied, st) in table {
            let anns: &[(&str, &str)] = if *restricted { &allow } else { &[] };
            let site =
                ingress("site", path, anns, "").replace("pathType: ImplementationSpecific", &format!("pathType: {ty}"));
            let m = run(&[controller_v040(&[]), ingress("app", "/", &[], ""), site.clone()], target);
            let text = m.report.text();
            assert_eq!(routes(&m, false), open[t], "{path} {ty} {restricted}\n{text}");
            assert_eq!(routes(&m, true), *denied, "{path} {ty} {restricted}\n{text}");
            let e = m.report.entries.iter().find(|e| e.key == format!("path {path}")).map(|e| e.status);
            assert_eq!(e, *st, "{path} {ty} {restricted}\n{text}");
            // Since v0.41 the store holds ImplementationSpecific as Prefix: no string prefix.
            let m = run(&[controller(&[]), ingress("app", "/", &[], ""), site], target);
            let text = m.report.text();
            assert_eq!(routes(&m, false), ["app", "site"], "v1.15 {path} {ty} {restricted}\n{text}");
            assert!(!text.contains("string prefix"), "v1.15 {path} {ty} {restricted}\n{text}");
        }
    }
}

/// Paths ingress-nginx keeps apart but that map to one HTTPRoute match
/// (H1), and hosts in regex mode (H3): the output never lets the Gateway's
/// own tie-break or its case-sensitive segment matches open a restricted
/// location.
#[test]
fn colliding_matches_and_regex_hosts() {
    let allow = [("whitelist-source-range", "192.0.2.0/24")];
    let typed = |name: &str, path: &str, ty: &str, anns: &[(&str, &str)]| {
        ingress(name, path, anns, "").replace("pathType: ImplementationSpecific", &format!("pathType: {ty}"))
    };
    for target in [R, EG] {
        // Before v0.41 Prefix and ImplementationSpecific `/admin` are one location (both held
        // as Prefix, rendered `location /admin`): the first in nginx's order (here by name,
        // descending) keeps it; a restricted string prefix is deny-all.
        let m = run(
            &[
                controller_v040(&[]),
                typed("a-open", "/admin", "ImplementationSpecific", &[]),
                typed("b-admin", "/admin", "Prefix", &allow),
            ],
            target,
        );
        assert!(routes(&m, false).is_empty(), "{target:?}\n{}", m.report.text());
        assert_eq!(routes(&m, true), ["b-admin-denied"], "{target:?}\n{}", m.report.text());
        assert_eq!(status(&m, "path app.example.com/admin (ImplementationSpecific)"), Status::NotConverted);
        // The open one first: it serves the whole location, the allow list never applied.
        let m = run(
            &[
                controller_v040(&[]),
                typed("a-admin", "/admin", "ImplementationSpecific", &allow),
                typed("b-open", "/admin", "Prefix", &[]),
            ],
            target,
        );
        assert_eq!(routes(&m, false), ["b-open"], "{target:?}\n{}", m.report.text());
        assert!(routes(&m, true).is_empty(), "{target:?}\n{}", m.report.text());
        // No clear winner (`/admin/` vs Prefix `/admin`): both deny-all.
        let m = run(
            &[
                controller_v040(&[]),
                typed("a-open", "/admin/", "ImplementationSpecific", &[]),
                typed("b-admin", "/admin", "Prefix", &allow),
            ],
            target,
        );
        assert!(routes(&m, false).is_empty(), "{target:?}\n{}", m.report.text());
        assert_eq!(routes(&m, true), ["a-open-denied", "b-admin-denied"], "{target:?}");
        assert!(m.report.incomplete());

        // Host-wide regex mode: use-regex on one Ingress of the host.
        let docs = [
            controller(&[]),
            typed("app", "/", "Prefix", &[("use-regex", "true")]),
            typed("app-admin", "/admin", "Prefix", &allow),
            typed("app-docs", "/docs", "Prefix", &[]),
            typed("other", "/admin", "Prefix", &allow).replace("app.example.com", "other.example.com"),
        ];
        let m = run(&docs, target);
        let text = m.report.text();
        // realip's deny of a case-insensitive /admin is PathPrefix /, which takes app's `/` too;
        // Envoy Gateway's is (?i)^/admin.* (N1).
        let open: &[&str] = if target == R { &["app-docs", "other"] } else { &["app", "app-docs", "other"] };
        assert_eq!(routes(&m, false), open, "{target:?}\n{text}");
        assert_eq!(routes(&m, true), ["app-admin-denied"], "{target:?}\n{text}");
        let e =
            m.report.entries.iter().find(|e| e.object == "Ingress/web/app-admin" && e.key == "path /admin").unwrap();
        assert_eq!(e.status, Status::NotConverted);
        assert!(e.why.contains("case-insensitive"), "{}", e.why);
        let e = m.report.entries.iter().find(|e| e.object == "Ingress/web/app-docs" && e.key.ends_with("regex mode"));
        assert_eq!(e.map(|e| e.status), Some(Status::Changed), "the host-wide change is reported\n{text}");
        // rewrite-target does the same.
        let mut docs = docs.to_vec();
        docs[1] = typed("app", "/", "Prefix", &[("rewrite-target", "/")]);
        let m = run(&docs, target);
        assert_eq!(routes(&m, true), ["app-admin-denied"], "{target:?}\n{}", m.report.text());
    }
}

/// Before v0.41 a Prefix `/admin` and a restricted ImplementationSpecific
/// `/admin` are one nginx location (`SetDefaultNGINXPathType` holds both
/// as Prefix; `buildLocation` renders `location /admin`, a string prefix):
/// the first Ingress in ingress-nginx's order serves all of it, the other
/// is not emitted. When the restricted one is first, its whole location
/// (`/admin.php`, `/adminx` too) is refused: Envoy Gateway's deny is the
/// RegularExpression `^/admin.*`-like cover, realip's PathPrefix / (which
/// drops the host's open `/`, reported). When the open one is first it is
/// emitted open (changed: a string prefix) and nothing is denied. In regex
/// mode the same single location decides.
#[test]
fn before_v041_prefix_and_implementation_specific_are_one_location() {
    type Row<'a> = (u32, u32, bool, [&'a [&'a str]; 2], &'a [&'a str]);
    let typed = |name: &str, path: &str, ty: &str, anns: &[(&str, &str)], year: u32| {
        ingress(name, path, anns, "").replace("pathType: ImplementationSpecific", &format!("pathType: {ty}")).replacen(
            "  namespace: web\n",
            &format!("  namespace: web\n  creationTimestamp: \"{year}-01-01T00:00:00Z\"\n"),
            1,
        )
    };
    let restrictions: [&[(&str, &str)]; 3] = [
        &[("auth-url", "http://auth.web.svc/check")],
        &[("whitelist-source-range", "192.0.2.0/24")],
        &[("limit-rps", "5")],
    ];
    for target in [R, EG] {
        for anns in restrictions {
            // (a-open's year, b-admin's year, root in regex mode, open routes (realip, Envoy Gateway), denied)
            #[rustfmt::skip]
            let rows: [Row; 4] = [
                (2021, 2020, false, [&[], &["root"]], &["b-admin-denied"]),
                (2020, 2021, false, [&["a-open", "root"]; 2], &[]),
                (2021, 2020, true, [&[], &["root"]], &["b-admin-denied"]),
                (2020, 2021, true, [&["a-open", "root"]; 2], &[]),
            ];
            for (a_year, b_year, regex, open, denied) in rows {
                let root: &[(&str, &str)] = if regex { &[("use-regex", "true")] } else { &[] };
                let docs = [
                    controller_v040(&[]),
                    typed("a-open", "/admin", "Prefix", &[], a_year),
                    typed("b-admin", "/admin", "ImplementationSpecific", anns, b_year),
                    typed("root", "/", "Prefix", root, 2019),
                ];
                let m = run(&docs, target);
                let text = m.report.text();
                let t = usize::from(target == EG);
                let row = format!("{target:?} {anns:?} a {a_year} b {b_year} regex {regex}");
                assert_eq!(routes(&m, false), open[t], "{row}\n{text}");
                assert_eq!(routes(&m, true), denied, "{row}\n{text}");
                let loser = if a_year < b_year { "Ingress/web/b-admin" } else { "Ingress/web/a-open" };
                let e = m
                    .report
                    .entries
                    .iter()
                    .find(|e| e.object == loser && e.key == "path app.example.com/admin (ImplementationSpecific)");
                assert!(
                    e.is_some_and(|e| e.status == Status::NotConverted && e.why.contains("shadowed")),
                    "{row}\n{text}"
                );
                if !regex && a_year > b_year {
                    let denied =
                        find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "b-admin-denied").unwrap();
                    let matched = &denied["spec"]["rules"][0]["matches"][0]["path"];
                    if target == R {
                        assert_eq!(matched, &json!({"type": "PathPrefix", "value": "/"}), "{row}\n{text}");
                        assert_eq!(
                            status(&m, "path app.example.com/ (ImplementationSpecific)"),
                            Status::NotConverted,
                            "root is dropped, reported"
                        );
                    } else {
                        assert_eq!(matched["type"], "RegularExpression", "{row}\n{text}");
                    }
                }
            }
        }
    }
}

/// An Ingress without a class gets the default IngressClass from the API
/// server (DefaultIngressClass admission): when that class is this
/// controller's, the Ingress is served by it and converted (with its allow
/// list), not skipped.
#[test]
fn classless_ingresses_belong_to_the_default_class() {
    let class = |default: &str| {
        format!("apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\n  annotations:\n    ingressclass.kubernetes.io/is-default-class: \"{default}\"\nspec:\n  controller: k8s.io/ingress-nginx\n")
    };
    let classless = ingress("admin", "/admin/", &[("allowlist-source-range", "192.0.2.0/24")], "")
        .replace("  ingressClassName: nginx\n", "");
    for target in [R, EG] {
        let m = run(&[controller(&[]), class("true"), classless.clone()], target);
        assert_eq!(routes(&m, false), ["admin"], "{target:?}\n{}", m.report.text());
        assert_eq!(open_policies(&m).len(), 1, "{target:?}: with its allow list");
        assert!(m.report.text().contains("is marked default"), "{}", m.report.text());
        let m = run(&[controller(&[]), class("false"), classless.clone()], target);
        assert!(find(&m, "HTTPRoute").is_empty(), "{target:?}: not the default: skipped");
    }
}

/// Since v1.9 ingress-nginx drops snippet annotations unless the ConfigMap
/// sets allow-snippet-annotations "true": a dropped snippet restricts
/// nothing, so it is ignored, not a reason to leave the Ingress out. An
/// unknown controller version keeps counting it (the safe side).
#[test]
fn snippet_annotations_ingress_nginx_drops_are_ignored() {
    let site = ingress("site", "/", &[("configuration-snippet", "deny all;")], "");
    for target in [R, EG] {
        // v1.12 on, the default annotations-risk-level (High) refuses the whole Ingress (R8-1);
        // a running controller may still serve an older version: deny-all (R17-4).
        let m = run(&[controller(&[]), site.clone()], target);
        assert!(routes(&m, false).is_empty(), "{}", m.report.text());
        assert_eq!(routes(&m, true), ["site-denied"], "{}", m.report.text());
        assert!(m.report.entries.iter().any(|e| e.status == Status::NotConverted
            && e.why.contains("configuration-snippet is of risk Critical")
            && e.why.contains("a running controller keeps serving the last version")));
        let critical = ("annotations-risk-level", "Critical");
        for (data, open) in [
            (vec![critical], true),
            (vec![critical, ("allow-snippet-annotations", "false")], true),
            (vec![critical, ("allow-snippet-annotations", "true")], false),
        ] {
            let m = run(&[controller(&data), site.clone()], target);
            let want: &[&str] = if open { &["site"] } else { &[] };
            assert_eq!(routes(&m, false), want, "{data:?}\n{}", m.report.text());
            let st = if open { Status::Ignored } else { Status::NotConverted };
            assert_eq!(status(&m, "configuration-snippet"), st, "{data:?}");
        }
        // An image without a readable version (v1.9 or not): the snippet counts.
        let old = controller(&[]).replace("controller:v1.15.1", "controller:latest");
        let m = run(&[old, site.clone()], target);
        assert_eq!(routes(&m, true), ["site-denied"], "{}", m.report.text());
        let old = controller(&[]).replace("controller:v1.15.1", "controller:v1.8.4");
        let m = run(&[old, site.clone()], target);
        assert_eq!(routes(&m, true), ["site-denied"], "{}", m.report.text());
    }
}

/// A wildcard TLS host covers a rule host one label below it, as
/// ingress-nginx matches certificate hosts: the route is served on that
/// HTTPS listener and plain HTTP is redirected (ssl-redirect default true).
#[test]
fn wildcard_tls_hosts_redirect_their_subdomains() {
    let tls = tls_spec("\"*.example.com\"");
    let shop = ingress("site", "/", &[], &tls).replace("app.example.com", "shop.example.com");
    let m = run(&[controller(&[]), shop], R);
    let names: Vec<&str> = find(&m, "HTTPRoute").iter().map(|r| r["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["site", "site-https-redirect"], "{}", m.report.text());
    let main = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "site").unwrap();
    assert_eq!(main["spec"]["parentRefs"][0]["sectionName"], "https-wildcard-example-com");
    // Two labels below: not covered in ingress-nginx, no redirect.
    let deep = ingress("site", "/", &[], &tls).replace("app.example.com", "a.shop.example.com");
    let m = run(&[controller(&[]), deep], R);
    assert_eq!(find(&m, "HTTPRoute").len(), 1, "{}", m.report.text());
}

/// Envoy Gateway tries every RegularExpression match before any PathPrefix
/// (longer patterns first; internal/gatewayapi/sort.go), so on a host in
/// regex mode a restricted location's deny is a case-insensitive regex
/// longer than any open regex whose path is not longer, as nginx tries the
/// longer regex locations first (N2).
#[test]
fn denies_outrank_open_regex_routes_on_envoy_gateway() {
    let typed = |name: &str, path: &str, ty: &str, anns: &[(&str, &str)]| {
        ingress(name, path, anns, "").replace("pathType: ImplementationSpecific", &format!("pathType: {ty}"))
    };
    let m = run(
        &[
            controller(&[]),
            typed("api", "/api/.*", "ImplementationSpecific", &[("use-regex", "true")]),
            typed("api-admin", "/api/admin", "Prefix", &[("allowlist-source-range", "192.0.2.0/24")]),
        ],
        EG,
    );
    let text = m.report.text();
    assert_eq!(routes(&m, false), ["api"], "{text}");
    assert_eq!(routes(&m, true), ["api-admin-denied"], "{text}");
    let path = |name: &str| {
        let r = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == name).unwrap();
        let p = &r["spec"]["rules"][0]["matches"][0]["path"];
        assert_eq!(p["type"], "RegularExpression", "{r:#}");
        p["value"].as_str().unwrap().to_owned()
    };
    let (open, deny) = (path("api"), path("api-admin-denied"));
    assert!(deny.starts_with("(?i)^/api/admin.*"), "{deny}");
    assert!(deny.len() > open.len(), "Envoy Gateway must try the deny first: {deny} vs {open}");
    // realip has no regex routes: the open regex path does not convert, the deny is `/`.
    let m = run(
        &[
            controller(&[]),
            typed("api", "/api/.*", "ImplementationSpecific", &[("use-regex", "true")]),
            typed("api-admin", "/api/admin", "Prefix", &[("allowlist-source-range", "192.0.2.0/24")]),
        ],
        R,
    );
    assert!(routes(&m, false).is_empty(), "{}", m.report.text());
}

/// Client certificates (`auth-tls-*`) and a refusing `server-snippet` of one
/// Ingress restrict the whole nginx server of its hosts: every location,
/// from every Ingress of the host. They do not convert, so every route of
/// those hosts is denied, and the host's `/` too; other hosts stay open (N3).
#[test]
fn host_wide_restrictions_deny_the_whole_host() {
    let cm = controller(&[("allow-snippet-annotations", "true"), ("annotations-risk-level", "Critical")]);
    let typed = |name: &str, path: &str, anns: &[(&str, &str)]| {
        ingress(name, path, anns, "").replace("pathType: ImplementationSpecific", "pathType: Prefix")
    };
    for (k, v) in [
        ("auth-tls-secret", "web/client-ca"),
        ("auth-tls-verify-client", "on"),
        ("server-snippet", "if ($remote_addr !~ \"^192\\.0\\.2\\.\") { return 403; }"),
    ] {
        for target in [R, EG] {
            let m = run(
                &[
                    cm.clone(),
                    typed("app", "/", &[]),
                    typed("docs", "/docs", &[]),
                    typed("mtls", "/secure", &[(k, v)]),
                    typed("other", "/", &[]).replace("app.example.com", "other.example.com"),
                ],
                target,
            );
            let text = m.report.text();
            assert_eq!(routes(&m, false), ["other"], "{k} {target:?}\n{text}");
            assert_eq!(routes(&m, true), ["app-denied", "docs-denied", "mtls-denied"], "{k} {target:?}\n{text}");
            assert_eq!(status(&m, "path app.example.com/docs (Prefix)"), Status::NotConverted, "{text}");
            assert!(text.contains("restricts the whole server of app.example.com"), "{text}");
            // The host is denied at `/` (here by app's own `/`, now deny-all).
            let app = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "app-denied").unwrap();
            assert_eq!(app["spec"]["rules"][0]["matches"][0]["path"], json!({"type": "PathPrefix", "value": "/"}));
        }
    }
    // No `/` on the host: the Ingress that restricts it gets a deny-all `/`.
    let m = run(&[cm, typed("docs", "/docs", &[]), typed("mtls", "/secure", &[("auth-tls-secret", "web/ca")])], R);
    let r = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "mtls-denied").unwrap();
    let paths: Vec<&serde_json::Value> =
        r["spec"]["rules"].as_array().unwrap().iter().map(|r| &r["matches"][0]["path"]["value"]).collect();
    assert_eq!(paths, [&json!("/secure"), &json!("/")], "{r:#}");
    assert_eq!(status(&m, "host app.example.com"), Status::NotConverted);
    // Dropped snippets (allow-snippet-annotations not true) restrict nothing.
    let m = run(
        &[
            controller(&[("annotations-risk-level", "Critical")]),
            typed("app", "/", &[]),
            typed("guard", "/g", &[("server-snippet", "deny all;")]),
        ],
        R,
    );
    assert_eq!(routes(&m, false), ["app", "guard"], "{}", m.report.text());
}

/// ingress-nginx keeps one limit_req zone per Ingress: one bucket per client
/// for all its hosts and paths. realip's ClientAccessPolicy (one bucket
/// each) takes at most 16 targets, so hosts whose routes are the same share
/// one HTTPRoute (up to 16 hostnames) and the Ingress keeps one policy;
/// when that is not enough the split is reported. Envoy Gateway's policies
/// have no target maximum: one policy (N5).
#[test]
fn one_rate_limit_bucket_per_ingress() {
    let hosts = |same_paths: bool| {
        let one = ingress("api", "/", &[("limit-rps", "1")], "")
            .replace("pathType: ImplementationSpecific", "pathType: Prefix");
        let (head, rule) = one.split_once("  rules:\n").unwrap();
        let mut rules = String::new();
        for i in 0..17 {
            let mut r = rule.replace("app.example.com", &format!("h{i}.example"));
            if !same_paths {
                r = r.replace("path: \"/\"", &format!("path: \"/p{i}\""));
            }
            rules.push_str(&r);
        }
        format!("{head}  rules:\n{rules}")
    };
    let m = run(&[controller(&[]), hosts(true)], R);
    let text = m.report.text();
    let p = one(&m, "ClientAccessPolicy");
    assert_eq!(p["spec"]["targetRefs"].as_array().unwrap().len(), 2, "{p:#}\n{text}");
    let hostnames: Vec<usize> =
        find(&m, "HTTPRoute").iter().map(|r| r["spec"]["hostnames"].as_array().unwrap().len()).collect();
    assert_eq!(hostnames, [16, 1], "{text}");
    assert!(m.report.entries.iter().all(|e| e.key != "rate limit buckets"), "{text}");
    // Different paths per host: 17 routes, two policies, two buckets: reported.
    let m = run(&[controller(&[]), hosts(false)], R);
    assert_eq!(find(&m, "ClientAccessPolicy").len(), 2);
    assert_eq!(status(&m, "rate limit buckets"), Status::Changed, "{}", m.report.text());
    // Envoy Gateway: one BackendTrafficPolicy for all 17 routes.
    let m = run(&[controller(&[]), hosts(false)], EG);
    assert_eq!(one(&m, "BackendTrafficPolicy")["spec"]["targetRefs"].as_array().unwrap().len(), 17);
}

/// A canary whose main location is left out (deny-all) is reported as
/// refused with it, not as having no main Ingress (N11).
#[test]
fn a_canary_of_a_denied_location_says_so() {
    let main = ingress("main", "/", &[("auth-type", "basic")], "")
        .replace("pathType: ImplementationSpecific", "pathType: Prefix");
    let canary = ingress("main-canary", "/", &[("canary", "true"), ("canary-weight", "10")], "")
        .replace("pathType: ImplementationSpecific", "pathType: Prefix");
    let m = run(&[controller(&[]), main, canary], R);
    let e = m.report.entries.iter().find(|e| e.key.starts_with("canary path")).unwrap();
    assert!(e.why.contains("deny-all"), "{}", e.why);
}

/// Padded or escaped deny regexes never exceed the 1024-character limit of
/// an HTTPRoute path value: the literal head is cut (a superset), reported.
#[test]
fn deny_matches_fit_the_path_value_limit() {
    let allow = [("whitelist-source-range", "192.0.2.0/24")];
    let cases = [
        (format!("/admin/{}", "x".repeat(1100)), true),
        (format!("/{}", ".".repeat(700)), false),
        (format!("/{}", "a".repeat(1030)), false),
    ];
    for (path, regex) in cases {
        let root_anns: &[(&str, &str)] = if regex { &[("use-regex", "true")] } else { &[] };
        let docs = [
            controller_v040(&[]),
            ingress("root", "/", root_anns, "").replace("pathType: ImplementationSpecific", "pathType: Prefix"),
            ingress("site", &path, &allow, ""),
        ];
        let m = run(&docs, EG);
        let text = m.report.text();
        assert!(routes(&m, true).contains(&"site-denied".to_owned()), "{text}");
        for r in find(&m, "HTTPRoute") {
            for rule in r["spec"]["rules"].as_array().unwrap() {
                for mt in rule["matches"].as_array().into_iter().flatten() {
                    let v = mt["path"]["value"].as_str().unwrap_or_default();
                    assert!(v.len() <= 1024, "{} chars: {v}", v.len());
                }
            }
        }
        assert!(text.contains("1024-character limit"), "{text}");
    }
}

/// Sixth attack review, R6-1: an `ingressClassName` counts only when that
/// IngressClass is this controller's (spec.controller, or its name with
/// `--ingress-class-by-name`), as ingress-nginx's IngressClass informer
/// decides; the restricted /admin of another Ingress stays restricted.
#[test]
fn ingress_class_of_another_controller_is_not_served() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/own/class-of-another-controller.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    for target in [R, EG] {
        let m = run(std::slice::from_ref(&text), target);
        let names: Vec<String> = routes(&m, false);
        assert_eq!(names, ["admin"], "{target:?}:\n{}", m.report.text());
        let policies = open_policies(&m);
        assert_eq!(policies.len(), 1, "{target:?}: the allow list of /admin is emitted");
        assert!(policies[0].to_string().contains("203.0.113.0/24"));
        for (name, why) in [
            ("open-admin", "spec.controller `example.com/internal-controller`"),
            ("staging", "IngressClass `staging` is not in the input"),
            ("internal-default", "class (none)"),
        ] {
            assert!(
                m.report.notes.iter().any(|n| n.contains(&format!("Ingress/web/{name}")) && n.contains(why)),
                "{name}: {:?}",
                m.report.notes
            );
        }
    }
    // With --ingress-class-by-name the class named `nginx` is the controller's
    // whatever its controller: open-admin is served (and comes first), the
    // default class is too, so the classless Ingress is served.
    let by_name =
        text.replace("- --ingress-class=nginx\n", "- --ingress-class=nginx\n        - --ingress-class-by-name=true\n");
    let m = run(&[by_name], R);
    assert_eq!(routes(&m, false), ["internal-default", "open-admin"], "{}", m.report.text());
    // No IngressClass in the input: the class is taken by name, loudly.
    let start = text.find("kind: IngressClass").unwrap();
    let end = start + text[start..].find("---\n").unwrap() + 4;
    let without = format!("{}{}", &text[..text[..start].rfind("apiVersion").unwrap()], &text[end..]);
    let m = run(&[without], R);
    assert!(routes(&m, false).contains(&"open-admin".to_owned()));
    let w = m.report.entries.iter().find(|e| e.key == "ingressClassName").expect("a warning on the unchecked class");
    assert_eq!(w.status, Status::Warning);
    assert!(w.why.contains("Ingress/web/open-admin") && !w.why.contains("Ingress/web/admin,"), "{}", w.why);
}

/// Sixth attack review, R6-2/3/4/8: the trusted list is what nginx matches
/// (an IPv4-mapped `proxy-real-ip-cidr` entry matches nothing there and is
/// dropped, loudly), trust-all is found by coverage whatever the spelling and
/// the warning names the family; annotation CIDRs are emitted as
/// ingress-nginx applied them (`::ffff:203.0.113.0/120` is 203.0.113.0/24).
#[test]
fn trusted_cidrs_as_nginx_matches_them() {
    // (proxy-real-ip-cidr, trustedProxies emitted, status, words of the entry)
    let table: &[(&str, &[&str], Status, &str)] = &[
        ("10.0.0.0/16", &["10.0.0.0/16"], Status::Converted, "believed: 10.0.0.0/16"),
        ("::ffff:0:0/96", &[], Status::Changed, "`::ffff:0:0/96` dropped"),
        ("::ffff:10.0.0.0/104, 10.1.2.3/16", &["10.1.0.0/16"], Status::Changed, "`::ffff:10.0.0.0/104` dropped"),
        ("0.0.0.1/0", &["0.0.0.0/0"], Status::Warning, "EVERY IPv4 peer (native IPv6 peers are not trusted"),
        ("0.0.0.0/1,128.0.0.0/1", &["0.0.0.0/1", "128.0.0.0/1"], Status::Warning, "EVERY IPv4 peer"),
        ("::/0", &["::/0"], Status::Warning, "EVERY native IPv6 peer (IPv4 peers only"),
        ("::/1, 8000::/1, 10.0.0.0/8", &["::/1", "8000::/1", "10.0.0.0/8"], Status::Warning, "EVERY native IPv6 peer"),
        ("0.0.0.0/0,::/0", &["0.0.0.0/0", "::/0"], Status::Warning, "EVERY peer, IPv4 and native IPv6 alike"),
        ("::ffff:0:0/96,0.0.0.0/0", &["0.0.0.0/0"], Status::Warning, "`::ffff:0:0/96` dropped"),
    ];
    for (cidr, want, st, words) in table {
        let cm = controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", cidr)]);
        let m = run(std::slice::from_ref(&cm), R);
        let spec = &one(&m, "ClientIPPolicy")["spec"];
        let got: Vec<&str> = spec["trustedProxies"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(&got, want, "{cidr}");
        let e = m.report.entries.iter().find(|e| e.key == "proxy-real-ip-cidr").unwrap();
        assert_eq!((e.status, e.why.contains(words)), (*st, true), "{cidr}: {}", e.why);
        let m = run(&[cm], EG);
        let ctp = find(&m, "ClientTrafficPolicy");
        let got = ctp.first().map(|p| &p["spec"]["clientIPDetection"]["xForwardedFor"]["trustedCIDRs"]);
        let got: Vec<&str> =
            got.and_then(|g| g.as_array()).map(|a| a.iter().map(|v| v.as_str().unwrap()).collect()).unwrap_or_default();
        assert_eq!(&got, want, "{cidr} (Envoy Gateway)");
    }
    // Nothing trusted through a mapped entry: the peer is the client.
    let m = run(&[controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "::ffff:0:0/96")])], R);
    assert_eq!(one(&m, "ClientIPPolicy")["spec"]["trustedProxies"], json!([]));
    assert!(m.report.text().contains("nothing is trusted"), "{}", m.report.text());
    // --trust that adds up to every IPv4 address is a trust-all too.
    let opts = Options { trust: vec!["0.0.0.0/1".into(), "128.0.0.0/1".into()], ..Options::default() };
    let m = run_with(&[controller(&[("use-forwarded-headers", "true")])], &opts);
    let e = m.report.entries.iter().find(|e| e.key == "proxy-real-ip-cidr").unwrap();
    assert_eq!(e.status, Status::Warning, "{}", e.why);
    assert!(e.why.contains("replaced by --trust 0.0.0.0/1,128.0.0.0/1") && e.why.contains("EVERY IPv4 peer"));
    // Annotation lists, as ingress-nginx's ParseIPNets keys them.
    let docs = [
        controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")]),
        ingress("site", "/", &[("denylist-source-range", "::ffff:203.0.113.0/120, 198.51.100.7/24")], ""),
    ];
    for target in [R, EG] {
        let m = run(&docs, target);
        let p = open_policies(&m);
        assert_eq!(p.len(), 1, "{target:?}");
        let text = p[0].to_string();
        assert!(
            text.contains("\"203.0.113.0/24\"") && text.contains("\"198.51.100.0/24\"") && !text.contains("::ffff"),
            "{target:?}: {text}"
        );
    }
}

/// Sixth attack review, R6-5: nginx reads a list in X-Real-IP or a custom
/// `forwarded-for-header` from the right; realip reads one address, so the
/// entry is changed (never converted) and says what differs.
#[test]
fn a_single_address_header_is_not_reported_as_converted() {
    for header in ["X-Real-IP", "X-Client"] {
        let cm = controller(&[
            ("use-forwarded-headers", "true"),
            ("forwarded-for-header", header),
            ("proxy-real-ip-cidr", "10.0.0.0/16"),
        ]);
        let m = run(&[cm], R);
        let e = m.report.entries.iter().find(|e| e.key == "forwarded-for-header").unwrap();
        assert_eq!(e.status, Status::Changed, "{header}: {}", e.why);
        assert!(e.why.contains("from the right") && e.why.contains("TCP peer"), "{}", e.why);
    }
    // X-Forwarded-For itself is read as nginx reads it; spelled otherwise it is
    // nginx's generic header type, which reads the first line only (R17-1).
    let cm = controller(&[("use-forwarded-headers", "true"), ("forwarded-for-header", "X-Forwarded-For")]);
    assert_eq!(status(&run(&[cm], R), "forwarded-for-header"), Status::Converted);
    let cm = controller(&[("use-forwarded-headers", "true"), ("forwarded-for-header", "x-forwarded-for")]);
    assert_eq!(status(&run(&[cm], R), "forwarded-for-header"), Status::Changed);
}

/// Sixth attack review, R6-9: behind an L4 load balancer that SNATs
/// (externalTrafficPolicy Cluster, no PROXY) with nothing trusted, the
/// client is a node's address: the lists do not say "never the load
/// balancer's address", and the run is incomplete.
#[test]
fn allow_lists_behind_snat_are_not_claimed_client_lists() {
    let snat = controller(&[]).replace("externalTrafficPolicy: Local", "externalTrafficPolicy: Cluster");
    let docs = [snat.clone(), ingress("admin", "/", &[("whitelist-source-range", "203.0.113.0/24")], "")];
    for target in [R, EG] {
        let m = run(&docs, target);
        let e = m.report.entries.iter().find(|e| e.key == "externalTrafficPolicy").expect("an entry on the Service");
        assert_eq!(e.status, Status::NotConverted, "{}", e.why);
        assert!(e.why.contains("Ingress/web/admin whitelist-source-range"), "{}", e.why);
        assert!(!m.report.text().contains("never the load balancer's address"), "{}", m.report.text());
        assert!(m.report.incomplete());
    }
    // No list keyed on the client: a warning only.
    let m = run(&[snat, ingress("open", "/", &[], "")], R);
    assert_eq!(status(&m, "externalTrafficPolicy"), Status::Warning);
    // externalTrafficPolicy Local keeps the client: nothing to say.
    let m = run(&[controller(&[]), ingress("admin", "/", &[("whitelist-source-range", "203.0.113.0/24")], "")], R);
    assert!(m.report.entries.iter().all(|e| e.key != "externalTrafficPolicy"));
    assert!(m.report.text().contains("never the load balancer's address"));
}
