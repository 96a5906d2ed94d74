//! Fixes of the twenty-ninth round: ingress-nginx's `RegexPathWithCapture`
//! validator of `rewrite-target` and `app-root` (on by default since
//! v1.12) takes a value it refuses as '', so there is no rewrite, no regex
//! location and no app-root redirect; the output must not add them. Each
//! test failed before the fix.

mod common;

use common::{controller, controller_at, find, ingress, run, status};
use realip_migrate::{Status, Target};
use serde_json::json;

fn filters(m: &realip_migrate::Migration) -> Vec<serde_json::Value> {
    find(m, "HTTPRoute")
        .iter()
        .flat_map(|r| r["spec"]["rules"].as_array().unwrap().clone())
        .map(|r| r["filters"].clone())
        .collect()
}

/// A rewrite-target with a query (or any character outside
/// `[-._~a-zA-Z0-9/:$]`) fails the validator: ingress-nginx neither
/// rewrites nor serves the path as a regex; an empty one rewrites nothing.
#[test]
fn a_rewrite_target_the_validator_refuses_rewrites_nothing() {
    for (target, why) in
        [("/new?x=1", "fails ingress-nginx's validator"), ("/a b", "fails ingress-nginx's validator"), ("", "empty")]
    {
        let m = run(&[controller(&[]), ingress("site", "/old", &[("rewrite-target", target)], "")], Target::Realip);
        let ctx = format!("{target:?}:\n{}", m.report.text());
        assert_eq!(filters(&m), [json!(null)], "{ctx}");
        let e = m.report.entries.iter().find(|e| e.key == "rewrite-target").unwrap();
        assert_eq!(e.status, Status::Ignored, "{ctx}");
        assert!(e.why.contains(why), "{ctx}");
        // Not in regex mode either: the path is a plain prefix, no regex-mode entry.
        assert!(!m.report.entries.iter().any(|e| e.key.ends_with("regex mode")), "{ctx}");
    }
    // With validation off (v1.11) a plain target is still a full replacement.
    let m = run(
        &[controller_at("v1.11.6", &[], &[]), ingress("site", "/old", &[("rewrite-target", "/new")], "")],
        Target::Realip,
    );
    assert_eq!(filters(&m)[0][0]["urlRewrite"]["path"], json!({"type": "ReplaceFullPath", "replaceFullPath": "/new"}));
    // A value the validator takes is still converted.
    let m =
        run(&[controller(&[]), ingress("site", "/api(/|$)(.*)", &[("rewrite-target", "/v2/$2")], "")], Target::Realip);
    assert_eq!(filters(&m)[0][0]["urlRewrite"]["path"]["replacePrefixMatch"], json!("/v2"), "{}", m.report.text());
}

/// An app-root with a query fails the validator: ingress-nginx does not
/// redirect `/`, so the output has no redirect rule.
#[test]
fn an_app_root_the_validator_refuses_redirects_nothing() {
    let m = run(&[controller(&[]), ingress("site", "/", &[("app-root", "/app?x=1")], "")], Target::Realip);
    let ctx = m.report.text();
    assert_eq!(status(&m, "app-root"), Status::Ignored, "{ctx}");
    assert!(!serde_json::to_string(&find(&m, "HTTPRoute")).unwrap().contains("requestRedirect"), "{ctx}");
    let m = run(&[controller(&[]), ingress("site", "/", &[("app-root", "/app1")], "")], Target::Realip);
    assert_eq!(status(&m, "app-root"), Status::Converted);
}

/// H3: with annotation validation off, a limit-allowlist that is not a
/// list of addresses makes ingress-nginx's rate-limit parser fail, and the
/// Ingress is served with no rate limit at all: the output has none either
/// (it had the limit, stricter than ingress-nginx).
#[test]
fn a_bad_limit_allowlist_without_validation_leaves_no_rate_limit() {
    for key in ["limit-allowlist", "limit-whitelist"] {
        let docs = vec![
            controller_at("v1.15.1", &["--enable-annotation-validation=false"], &[]),
            common::ing_at("web", "t", 2021, "/", &[("limit-rps", "10"), (key, "bogus")]),
        ];
        let m = run(&docs, Target::Realip);
        let ctx = format!("{key}:\n{}", m.report.text());
        assert!(find(&m, "ClientAccessPolicy").iter().all(|p| p["spec"].get("rateLimit").is_none()), "{ctx}");
        assert_eq!((status(&m, "limit-rps"), status(&m, key)), (Status::Ignored, Status::Ignored), "{ctx}");
    }
    // A good list keeps the limit (its exemption is what does not convert).
    let docs = vec![
        controller_at("v1.15.1", &["--enable-annotation-validation=false"], &[]),
        common::ing_at("web", "t", 2021, "/", &[("limit-rps", "10"), ("limit-allowlist", "192.0.2.0/24")]),
    ];
    let m = run(&docs, Target::Realip);
    assert_eq!(find(&m, "ClientAccessPolicy")[0]["spec"]["rateLimit"]["perSecond"], json!(10.0), "{}", m.report.text());
}

/// M3: proxy-protocol-header-timeout is read only by ingress-nginx's
/// --enable-ssl-passthrough listener, where a value Go's ParseDuration
/// refuses keeps the 5 s default: `5000ms` and `abc` are realip's 5 s.
#[test]
fn the_proxy_protocol_header_timeout_matters_only_with_ssl_passthrough() {
    let cm = [("use-proxy-protocol", "true")];
    let timeout = |args: &[&str], t: &str| {
        let data: Vec<(&str, &str)> = cm.iter().copied().chain([("proxy-protocol-header-timeout", t)]).collect();
        let m = run(&[controller_at("v1.15.1", args, &data), ingress("site", "/", &[], "")], Target::Realip);
        status(&m, "proxy-protocol-header-timeout")
    };
    assert_eq!(timeout(&[], "30s"), Status::Ignored);
    let pass = ["--enable-ssl-passthrough"];
    assert_eq!(timeout(&pass, "5000ms"), Status::Converted);
    assert_eq!(timeout(&pass, "abc"), Status::Converted);
    assert_eq!(timeout(&pass, "30s"), Status::NotConverted);
}

/// H2: nginx answers permanent-redirect, temporal-redirect and app-root
/// in its rewrite phase, before allow/deny and limit_req: every client
/// gets the redirect. The output must not put those redirects behind the
/// Ingress's allow list or rate limit.
#[test]
fn redirects_come_before_access_lists_and_limits() {
    let restricted = [("whitelist-source-range", "203.0.113.0/24"), ("limit-rps", "5")];
    for (key, url) in [("permanent-redirect", "https://example.org/x"), ("temporal-redirect", "https://example.org/y")]
    {
        let anns: Vec<(&str, &str)> = restricted.iter().copied().chain([(key, url)]).collect();
        let m = run(&[controller(&[]), ingress("site", "/", &anns, "")], Target::Realip);
        let ctx = format!("{key}:\n{}", m.report.text());
        assert!(find(&m, "ClientAccessPolicy").is_empty(), "{ctx}");
        assert_eq!(status(&m, "whitelist-source-range"), Status::Ignored, "{ctx}");
        assert_eq!(status(&m, "limit-rps"), Status::Ignored, "{ctx}");
        assert!(serde_json::to_string(&find(&m, "HTTPRoute")).unwrap().contains("requestRedirect"), "{ctx}");
        let m = run(&[controller(&[]), ingress("site", "/", &anns, "")], Target::EnvoyGateway);
        assert!(find(&m, "SecurityPolicy").is_empty() && find(&m, "BackendTrafficPolicy").is_empty(), "{key}");
    }
    // app-root: its `/` redirect is a route no policy targets; the paths stay restricted.
    let anns: Vec<(&str, &str)> = restricted.iter().copied().chain([("app-root", "/app1")]).collect();
    let m = run(&[controller(&[]), ingress("site", "/", &anns, "")], Target::Realip);
    let ctx = m.report.text();
    let targets: Vec<String> = find(&m, "ClientAccessPolicy")
        .iter()
        .flat_map(|p| p["spec"]["targetRefs"].as_array().unwrap().clone())
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(targets, ["site"], "{ctx}");
    let root: Vec<&serde_json::Value> =
        find(&m, "HTTPRoute").into_iter().filter(|r| r["metadata"]["name"] == "site-app-root").collect();
    assert_eq!(root.len(), 1, "{ctx}");
    assert_eq!(root[0]["spec"]["rules"][0]["matches"][0]["path"], json!({"type": "Exact", "value": "/"}));
    let site = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "site").unwrap();
    assert!(!site.to_string().contains("requestRedirect"), "{ctx}");
}

/// H1: a load balancer that ends TLS and sends HTTPS to the controller's
/// http port (an AWS certificate, both ports to targetPort http). With
/// use-forwarded-headers ingress-nginx took X-Forwarded-Proto as the
/// scheme and served HTTPS; the output put the routes on the HTTPS
/// listener only and redirected everything on the http one: a loop.
#[test]
fn tls_ended_at_the_load_balancer_does_not_loop_on_the_redirect() {
    let lb_tls = |cm: &[(&str, &str)]| {
        controller(cm)
            .replace(
                "service.beta.kubernetes.io/aws-load-balancer-type: nlb",
                "service.beta.kubernetes.io/aws-load-balancer-ssl-cert: arn:aws:acm:us-east-1:123456789012:certificate/x\n    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: https",
            )
            .replace("  - {name: http, port: 80}\n", "  - {name: http, port: 80, targetPort: http}\n  - {name: https, port: 443, targetPort: http}\n")
    };
    let tls = "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n";
    let ing = ingress("t", "/", &[("whitelist-source-range", "203.0.113.0/24")], tls);
    let m = run(
        &[lb_tls(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16")]), ing.clone()],
        Target::Realip,
    );
    let ctx = m.report.text();
    // On the http listener, a route of the rules with the header match
    // (review 31: the HTTPS listener keeps them without it).
    let t = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "t-forwarded-https").unwrap();
    assert_eq!(t["spec"]["parentRefs"][0]["sectionName"], "http", "served on the http listener:\n{ctx}");
    assert_eq!(
        t["spec"]["rules"][0]["matches"][0]["headers"],
        json!([{"type": "Exact", "name": "X-Forwarded-Proto", "value": "https"}]),
        "{ctx}"
    );
    let main = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "t").unwrap();
    assert!(main["spec"]["rules"][0]["matches"][0].get("headers").is_none(), "{ctx}");
    let targets: Vec<&serde_json::Value> =
        find(&m, "ClientAccessPolicy")[0]["spec"]["targetRefs"].as_array().unwrap().iter().collect();
    assert_eq!(targets.len(), 2, "the allow list covers both routes: {ctx}");
    assert!(find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "t-https-redirect"), "{ctx}");
    assert_eq!(status(&m, "ssl-redirect app.example.com"), Status::Changed, "{ctx}");
    // PROXY: the scheme was the PROXY destination port, which no route sees: no redirect at all.
    let cm = [("use-proxy-protocol", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16")];
    let m = run(&[lb_tls(&cm).replace("aws-load-balancer-ssl-ports: https", "aws-load-balancer-ssl-ports: https\n    service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: \"*\""), ing], Target::Realip);
    let ctx = m.report.text();
    assert!(!find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "t-https-redirect"), "{ctx}");
    assert_eq!(status(&m, "ssl-redirect app.example.com"), Status::NotConverted, "{ctx}");
    assert!(m.report.incomplete());
}

/// M5: `--gateway-class` must be a GatewayClass name: an empty one made
/// a Gateway the CRD refuses (`minLength: 1`), with exit 0.
#[test]
fn the_gateway_class_option_must_be_a_class_name() {
    let objects = realip_kube::load_str(&ingress("site", "/", &[], ""), "t.yaml").unwrap();
    for bad in ["", "Bad Class!", "-x", "a..b"] {
        let opts = realip_migrate::Options { gateway_class: Some(bad.into()), ..realip_migrate::Options::default() };
        let e = realip_migrate::migrate(&objects, &opts).unwrap_err().to_string();
        assert!(e.contains("--gateway-class"), "{bad:?}: {e}");
    }
    let opts =
        realip_migrate::Options { gateway_class: Some("eg.example.io".into()), ..realip_migrate::Options::default() };
    assert!(realip_migrate::migrate(&objects, &opts).is_ok());
}

/// M6: the ConfigMap's http-redirect-code is the status of the HTTPS
/// redirect (ingress-nginx's lua_ingress uses it); a code it does not take
/// is 308, its default.
#[test]
fn the_https_redirect_uses_http_redirect_code() {
    let tls = "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n";
    for (code, want, st) in
        [("301", 301, Status::Converted), ("303", 308, Status::Ignored), ("x", 308, Status::Ignored)]
    {
        let m = run(&[controller(&[("http-redirect-code", code)]), ingress("site", "/", &[], tls)], Target::Realip);
        let r = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "site-https-redirect").unwrap();
        assert_eq!(r["spec"]["rules"][0]["filters"][0]["requestRedirect"]["statusCode"], json!(want), "{code}");
        assert_eq!(status(&m, "http-redirect-code"), st, "{code}");
    }
}

/// M1: ingress-nginx decodes its ConfigMap weakly typed: an empty boolean
/// is false, not the key's default. `use-forwarded-headers: ""` is off
/// (the client is the peer, the allow list stays open to it), and
/// `ssl-redirect: ""` redirects nothing.
#[test]
fn an_empty_configmap_boolean_is_false() {
    let m = run(
        &[
            controller(&[("use-forwarded-headers", "")]),
            ingress("site", "/", &[("whitelist-source-range", "203.0.113.0/24")], ""),
        ],
        Target::Realip,
    );
    let ctx = m.report.text();
    assert!(!m.report.incomplete(), "{ctx}");
    assert_eq!(find(&m, "ClientAccessPolicy")[0]["spec"]["allow"], json!(["203.0.113.0/24"]), "{ctx}");
    let tls = "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n";
    let m = run(&[controller(&[("ssl-redirect", "")]), ingress("site", "/", &[], tls)], Target::Realip);
    assert!(
        !find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "site-https-redirect"),
        "{}",
        m.report.text()
    );
}
