//! Fixes of the thirty-third review round. Each test failed before its fix.

mod common;

use common::{controller, find, ingress, run, status};
use realip_migrate::{Status, Target};
use serde_json::json;

/// H1: the CRDs' list limits: a ReferenceGrant's `to` holds 16 Secrets
/// (17 TLS Ingresses in one namespace made one the API server refuses);
/// a ClientIPPolicy holds 256 trusted proxies, 64 trusted PROXY senders.
#[test]
fn lists_stay_within_the_crds_limits() {
    let mut docs = vec![controller(&[])];
    for i in 0..17 {
        let tls = format!("  tls: [{{hosts: [site{i}.example.com], secretName: tls{i}}}]\n");
        docs.push(
            ingress(&format!("site{i}"), "/", &[], &tls).replace("app.example.com", &format!("site{i}.example.com")),
        );
    }
    // (run validates every object against its CRD.)
    let m = run(&docs, Target::Realip);
    let grants = find(&m, "ReferenceGrant");
    assert_eq!(grants.len(), 2, "{:?}", grants.iter().map(|g| g["metadata"]["name"].clone()).collect::<Vec<_>>());
    assert!(grants.iter().all(|g| g["spec"]["to"].as_array().unwrap().len() <= 16));
    for (pp, n) in [(false, 300), (true, 70)] {
        let cidrs: Vec<String> = (0..n).map(|i| format!("10.{i}.0.0/16")).collect();
        let cidrs = cidrs.join(",");
        let key = if pp { "use-proxy-protocol" } else { "use-forwarded-headers" };
        let m = run(
            &[
                controller(&[(key, "true"), ("proxy-real-ip-cidr", &cidrs)]),
                ingress("site", "/", &[("whitelist-source-range", "203.0.113.0/24")], ""),
            ],
            Target::Realip,
        );
        assert_eq!(status(&m, "proxy-real-ip-cidr"), Status::NotConverted, "{pp}: {}", m.report.text());
        assert!(common::routes(&m, false).is_empty(), "the allow list's Ingress is left out");
    }
}

/// H2: with use-forwarded-headers, ingress-nginx took X-Forwarded-Proto
/// as the scheme whatever the Service: behind a CDN ending TLS, a request
/// on port 80 with `X-Forwarded-Proto: https` was served. The output
/// serves it too (it redirected it: a loop).
#[test]
fn x_forwarded_proto_is_the_scheme_with_use_forwarded_headers() {
    let tls = "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n";
    let cm = controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "173.245.48.0/20")]);
    let m = run(&[cm, ingress("shop", "/", &[], tls)], Target::Realip);
    let ctx = m.report.text();
    let f = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "shop-forwarded-https").unwrap();
    assert_eq!(f["spec"]["parentRefs"][0]["sectionName"], "http", "{ctx}");
    assert_eq!(
        f["spec"]["rules"][0]["matches"][0]["headers"],
        json!([{"type": "Exact", "name": "X-Forwarded-Proto", "value": "https"}])
    );
    assert!(find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "shop-https-redirect"), "{ctx}");
    // Without use-forwarded-headers the scheme is the connection's: the redirect alone.
    let m = run(&[controller(&[]), ingress("shop", "/", &[], tls)], Target::Realip);
    assert!(!find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "shop-forwarded-https"));
}

/// H3: ingress-nginx gave every host of an Ingress with a TLS section a
/// certificate (its own, a SAN match or the default one) and redirected
/// its plain HTTP; `--default-ssl-certificate` served HTTPS for hosts
/// without one. Where the output has no HTTPS listener for such a host it
/// says so (not converted, exit 1), instead of serving plain HTTP silently.
#[test]
fn hosts_ingress_nginx_served_over_tls_without_a_named_secret_are_reported() {
    // A TLS entry without hosts.
    let m = run(&[controller(&[]), ingress("shop", "/", &[], "  tls: [{secretName: shop-tls}]\n")], Target::Realip);
    assert_eq!(status(&m, "tls app.example.com"), Status::NotConverted, "{}", m.report.text());
    assert!(m.report.incomplete());
    // A host of the rules not in the TLS entry.
    let two = ingress("shop", "/", &[], "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n").replace(
        "  rules:\n",
        "  rules:\n  - host: b.example.org\n    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: b, port: {number: 80}}}}]}\n",
    );
    let m = run(&[controller(&[]), two], Target::Realip);
    assert_eq!(status(&m, "tls b.example.org"), Status::NotConverted, "{}", m.report.text());
    assert!(!m.report.entries.iter().any(|e| e.key == "tls app.example.com"));
    // The default certificate flag.
    let ctl = common::controller_at("v1.15.1", &["--default-ssl-certificate=ingress-nginx/wildcard-tls"], &[]);
    let m = run(&[ctl, ingress("shop", "/", &[], "")], Target::Realip);
    assert_eq!(status(&m, "--default-ssl-certificate"), Status::NotConverted, "{}", m.report.text());
}

/// Review 34 H-1: X-Forwarded-Proto is the scheme with use-forwarded-headers
/// even when use-proxy-protocol is on too. H-2: a canary header on
/// X-Forwarded-Proto itself makes no match naming the header twice (the
/// CRD refuses that; run() validates the output).
#[test]
fn x_forwarded_proto_with_proxy_protocol_and_as_a_canary_header() {
    let tls = "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n";
    let cm = controller(&[
        ("use-forwarded-headers", "true"),
        ("use-proxy-protocol", "true"),
        ("proxy-real-ip-cidr", "10.0.0.0/8"),
    ]);
    let m = run(&[cm, ingress("blog", "/", &[], tls)], Target::Realip);
    assert!(
        find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "blog-forwarded-https"),
        "{}",
        m.report.text()
    );
    let cm = controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/8")]);
    let canary = ingress("shop-canary", "/", &[("canary", "true"), ("canary-by-header", "X-Forwarded-Proto")], "");
    let m = run(&[cm, ingress("shop", "/", &[], tls), canary], Target::Realip);
    let f = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "shop-forwarded-https").unwrap();
    for rule in f["spec"]["rules"].as_array().unwrap() {
        for m in rule["matches"].as_array().unwrap() {
            let names: Vec<String> = m["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["name"].as_str().unwrap().to_ascii_lowercase())
                .collect();
            assert_eq!(names.iter().filter(|n| *n == "x-forwarded-proto").count(), 1, "{f}");
        }
    }
}

/// Review 34 MED-1: ingress-nginx never redirects a location under
/// `no-tls-redirect-locations` (by default `/.well-known/acme-challenge`):
/// a cert-manager HTTP-01 solver path stays served over plain HTTP.
#[test]
fn acme_challenge_paths_are_not_redirected() {
    let tls = "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n";
    let solver = ingress("acme", "/.well-known/acme-challenge/TOKEN", &[], "");
    let m = run(&[controller(&[]), ingress("shop", "/", &[], tls), solver], Target::Realip);
    let ctx = m.report.text();
    assert!(!find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "acme-https-redirect"), "{ctx}");
    let plain = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "acme-no-tls-redirect");
    let plain = plain.unwrap_or_else(|| panic!("{ctx}"));
    assert_eq!(plain["spec"]["parentRefs"][0]["sectionName"], "http");
    // The host's own `/` is redirected as ever.
    assert!(find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "shop-https-redirect"), "{ctx}");
}
