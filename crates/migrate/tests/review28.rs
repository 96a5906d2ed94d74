//! The twenty-eighth review's findings: the admission webhook refuses an
//! Ingress that defines a host and path another Ingress already defines
//! (its other paths must not open up); a canary header name ingress-nginx
//! cannot read makes no header rule (an empty one broke the route's
//! schema); canary weights are read by Go's Atoi, untrimmed. Each test
//! failed before the fix.

mod common;

use std::fmt::Write as _;

use common::{controller, controller_at, find, ingress, one, routes, run, status};
use realip_migrate::{Status, Target};
use serde_json::json;

/// Two Ingresses on app.example.com: `older` (2020, allow-listed) with
/// `/`, and `newer` (no creationTimestamp: applied later) with `/` and
/// `/public`.
fn overlapping() -> [String; 2] {
    let older = ingress("older", "/", &[("whitelist-source-range", "203.0.113.0/24")], "")
        .replace("pathType: ImplementationSpecific", "pathType: Prefix")
        .replacen("  namespace: web\n", "  namespace: web\n  creationTimestamp: \"2020-01-01T00:00:00Z\"\n", 1);
    let newer = ingress("newer", "/", &[], "").replace("pathType: ImplementationSpecific", "pathType: Prefix")
        + "      - path: /public\n        pathType: Prefix\n        backend:\n          service:\n            name: newer-svc\n            port:\n              number: 80\n";
    [older, newer]
}

/// H2: with the webhook on or not known, the newer Ingress is refused
/// whole ("host … and path / is already defined"): its `/public` is
/// emitted deny-all, not open outside the older one's allow list.
#[test]
fn an_ingress_the_webhook_refuses_for_an_overlap_opens_none_of_its_paths() {
    let [older, newer] = overlapping();
    for (webhook, args) in [("unknown", vec!["--validating-webhook=:8443"]), ("on", vec!["--validating-webhook=:8443"])]
    {
        let mut docs = vec![controller_at("v1.15.1", &args, &[]), older.clone(), newer.clone()];
        if webhook == "on" {
            docs.push("apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: ingress-nginx-admission\nwebhooks:\n- name: validate.nginx.ingress.kubernetes.io\n  rules:\n  - apiGroups: [networking.k8s.io]\n    apiVersions: [v1]\n    operations: [CREATE, UPDATE]\n    resources: [ingresses]\n  clientConfig:\n    service:\n      namespace: ingress-nginx\n      name: ingress-nginx-controller-admission\n  admissionReviewVersions: [v1]\n  sideEffects: None\n".into());
        }
        let m = run(&docs, Target::Realip);
        assert_eq!(routes(&m, true), ["newer-denied"], "webhook {webhook}:\n{}", m.report.text());
        let e = m.report.entries.iter().find(|e| e.object == "Ingress/web/newer" && e.key == "spec.rules").unwrap();
        assert_eq!(e.status, Status::NotConverted);
        assert!(e.why.contains("path \"/\" is already defined in ingress web/older"), "{}", e.why);
        let public = find(&m, "HTTPRoute")
            .into_iter()
            .filter(|r| r["spec"]["rules"].to_string().contains("/public"))
            .map(|r| r["metadata"]["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        assert_eq!(public, ["newer-denied"], "webhook {webhook}");
    }
    // Webhook off: ingress-nginx's store serves both; `/public` is newer's, open.
    let m = run(&[controller(&[]), older.clone(), newer.clone()], Target::Realip);
    assert!(routes(&m, true).is_empty(), "{}", m.report.text());
    assert!(m.report.entries.iter().all(|e| e.key != "spec.rules"));
    // A canary annotation on either side (even `false`) lets both in.
    let canary_false =
        newer.replace("metadata:\n", "metadata:\n  annotations:\n    nginx.ingress.kubernetes.io/canary: \"false\"\n");
    let m = run(&[controller_at("v1.15.1", &["--validating-webhook=:8443"], &[]), older, canary_false], Target::Realip);
    assert!(routes(&m, true).is_empty(), "{}", m.report.text());
}

/// The webhook's overlap check sees locations after
/// `updateServerLocations`: an older Exact `/a` and a newer Prefix `/a`
/// clash (the Exact location has the path), an older Prefix `/a` and a
/// newer Exact `/a` do not (the Prefix one became `/a/`); Prefix `/a`
/// and Prefix `/a/` clash (both `/a/`).
#[test]
fn the_overlap_check_compares_locations_as_ingress_nginx_normalizes_them() {
    let at = |name: &str, year: u32, path: &str, kind: &str| {
        ingress(name, path, &[], "").replace("pathType: ImplementationSpecific", &format!("pathType: {kind}")).replacen(
            "  namespace: web\n",
            &format!("  namespace: web\n  creationTimestamp: \"{year}-01-01T00:00:00Z\"\n"),
            1,
        )
    };
    let cases = [
        (("Exact", "/a"), ("Prefix", "/a"), true),
        (("Prefix", "/a"), ("Exact", "/a"), false),
        (("Prefix", "/a"), ("Prefix", "/a/"), true),
        (("Prefix", "/a"), ("Prefix", "/b"), false),
    ];
    for ((k1, p1), (k2, p2), refused) in cases {
        let docs = [
            controller_at("v1.15.1", &["--validating-webhook=:8443"], &[]),
            at("one", 2020, p1, k1),
            at("two", 2021, p2, k2),
        ];
        let m = run(&docs, Target::Realip);
        let got = m.report.entries.iter().any(|e| e.object == "Ingress/web/two" && e.key == "spec.rules");
        assert_eq!(got, refused, "{k1} {p1} then {k2} {p2}:\n{}", m.report.text());
    }
}

/// H3 and the LOW on `_`: a canary-by-header that is empty or no header
/// name nginx reads makes no header rule (ingress-nginx never matches
/// it); one with `_` is matched with `-`, as nginx's `$http_x_canary`.
#[test]
fn a_canary_header_nginx_cannot_read_makes_no_header_rule() {
    let main = ingress("site", "/", &[], "");
    let canary = |h: &str| {
        ingress(
            "site-canary",
            "/",
            &[("canary", "true"), ("canary-by-header", h), ("canary-by-header-value", "yes"), ("canary-weight", "10")],
            "",
        )
    };
    for bad in [" ", "X Canary", "X.Canary"] {
        let m = run(&[controller(&[]), main.clone(), canary(bad)], Target::Realip);
        let rules = &one(&m, "HTTPRoute")["spec"]["rules"];
        assert!(rules.as_array().unwrap().iter().all(|r| r["matches"][0].get("headers").is_none()), "{bad:?}: {rules}");
        assert_eq!(rules[0]["backendRefs"][1]["weight"], 10, "{bad:?}: the weight still holds");
        assert_eq!(status(&m, "canary-by-header"), Status::Ignored, "{bad:?}");
        assert_eq!(status(&m, "canary-by-header-value"), Status::Ignored, "{bad:?}");
    }
    let m = run(&[controller(&[]), main, canary("X_Canary")], Target::Realip);
    assert_eq!(
        one(&m, "HTTPRoute")["spec"]["rules"][0]["matches"][0]["headers"],
        json!([{"type": "Exact", "name": "X-Canary", "value": "yes"}])
    );
}

/// M1: canary-weight goes to Go's Atoi untrimmed: ` 10` is no number, so
/// ingress-nginx sends the canary nothing by weight; `+10` is 10.
#[test]
fn canary_weights_are_read_as_go_reads_them() {
    let main = ingress("site", "/", &[], "");
    for (w, want) in [(" 10", None), ("10 ", None), ("+10", Some(10)), ("-5", None), ("10", Some(10))] {
        let canary = ingress("site-canary", "/", &[("canary", "true"), ("canary-weight", w)], "");
        let m = run(&[controller(&[]), main.clone(), canary], Target::Realip);
        let refs = &one(&m, "HTTPRoute")["spec"]["rules"][0]["backendRefs"];
        match want {
            Some(n) => assert_eq!(refs[1]["weight"], n, "{w:?}: {refs}"),
            None => assert_eq!(refs.as_array().unwrap().len(), 1, "{w:?}: {refs}"),
        }
        let converted = if want.is_some() { Status::Converted } else { Status::Ignored };
        assert_eq!(status(&m, "canary-weight"), converted, "{w:?}");
    }
}

/// Second round, F1 and F2: two Ingresses whose order is not known (no
/// creationTimestamp on either) clash on a path: either may be the one the
/// webhook refused, so both are deny-all and neither path opens; a
/// non-canary Ingress with `canary: "false"` owns its location but makes
/// no refusal (checkOverlap skips a pair where either has the annotation).
#[test]
fn an_overlap_of_unknown_order_denies_both_and_a_canary_annotation_refuses_nothing() {
    let webhook = controller_at("v1.15.1", &["--validating-webhook=:8443"], &[]);
    let a = ingress("a", "/x", &[("whitelist-source-range", "203.0.113.0/24")], "")
        .replace("pathType: ImplementationSpecific", "pathType: Prefix");
    let b = ingress("b", "/x", &[], "").replace("pathType: ImplementationSpecific", "pathType: Prefix");
    let m = run(&[webhook.clone(), a, b], Target::Realip);
    // Both refused; `/x` is emitted once (merged), deny-all, and nothing serves it open.
    for id in ["Ingress/web/a", "Ingress/web/b"] {
        assert!(m.report.entries.iter().any(|e| e.object == id && e.key == "spec.rules"), "{id}: {}", m.report.text());
    }
    assert!(!routes(&m, true).is_empty() && routes(&m, false).is_empty(), "{}", m.report.text());
    let at = |name: &str, day: u32, anns: &[(&str, &str)], more: &str| {
        ingress(name, "/x", anns, "").replace("pathType: ImplementationSpecific", "pathType: Prefix").replacen(
            "  namespace: web\n",
            &format!("  namespace: web\n  creationTimestamp: \"2024-01-0{day}T00:00:00Z\"\n"),
            1,
        ) + more
    };
    let z = "      - path: /z\n        pathType: Prefix\n        backend:\n          service:\n            name: z-svc\n            port:\n              number: 80\n";
    let m = run(
        &[webhook, at("a", 1, &[("canary", "false")], ""), at("b", 2, &[], ""), at("c", 3, &[], z)],
        Target::Realip,
    );
    assert!(m.report.entries.iter().all(|e| e.key != "spec.rules"), "{}", m.report.text());
    assert!(routes(&m, true).is_empty(), "{}", m.report.text());
}

/// Second round, F3 and F6: with annotation validation on, a canary
/// header value or pattern that fails ingress-nginx's validator is taken
/// as '' and `always`/`never` decide; a header matched only by a pattern
/// realip cannot convert is not reported as converted.
#[test]
fn canary_values_failing_ingress_nginxs_validators_fall_back_to_always_and_never() {
    let main = ingress("site", "/", &[], "");
    let canary = |anns: &[(&str, &str)]| canary_of(&[("canary-by-header", "X-Canary")], anns);
    let ctl = controller_at("v1.15.1", &[], &[]);
    let m = run(&[ctl.clone(), main.clone(), canary(&[("canary-by-header-value", "v#1")])], Target::Realip);
    assert_eq!(header_values(&m), ["always", "never"]);
    assert_eq!(status(&m, "canary-by-header-value"), Status::Ignored);
    let m = run(&[ctl.clone(), main.clone(), canary(&[("canary-by-header-pattern", "^v1,v2$")])], Target::EnvoyGateway);
    assert_eq!(header_values(&m), ["always", "never"]);
    assert_eq!(status(&m, "canary-by-header-pattern"), Status::Ignored);
    // A valid pattern on realip: no header rule, and the header is not "converted".
    let m = run(&[ctl, main, canary(&[("canary-by-header-pattern", "^v1$")])], Target::Realip);
    assert!(header_values(&m).is_empty());
    assert_eq!(status(&m, "canary-by-header"), Status::NotConverted);
}

/// Second round, F5: backendRef weights stay within the CRD's 1,000,000,
/// keeping the canary's share; a share above none stays above none
/// (review 29: 1 of 4294967297 went to 0, reported converted).
#[test]
fn canary_weights_above_the_crds_maximum_are_scaled() {
    let main = ingress("site", "/", &[], "");
    for (w, total, want) in [("1500000", "3000000", [500_000, 500_000]), ("1", "4294967297", [999_999, 1])] {
        let canary = ingress(
            "site-canary",
            "/",
            &[("canary", "true"), ("canary-weight", w), ("canary-weight-total", total)],
            "",
        );
        let m = run(&[controller(&[]), main.clone(), canary], Target::Realip);
        let refs = &one(&m, "HTTPRoute")["spec"]["rules"][0]["backendRefs"];
        assert_eq!([refs[0]["weight"].as_u64().unwrap(), refs[1]["weight"].as_u64().unwrap()], want, "{w}/{total}");
    }
}

/// An Ingress in namespace `web` created on day `day` of 2024 with these
/// annotations (prefix added) and (host, path, Service) Prefix paths.
fn ing(name: &str, day: u32, anns: &[(&str, &str)], paths: &[(&str, &str, &str)]) -> String {
    let mut out = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: web\n  creationTimestamp: \"2024-01-{day:02}T00:00:00Z\"\n"
    );
    if !anns.is_empty() {
        out.push_str("  annotations:\n");
        for (k, v) in anns {
            let _ = writeln!(out, "    nginx.ingress.kubernetes.io/{k}: {}", serde_json::to_string(v).unwrap());
        }
    }
    out.push_str("spec:\n  ingressClassName: nginx\n  rules:\n");
    for (host, path, svc) in paths {
        let _ = write!(out, "  - host: {host}\n    http:\n      paths:\n      - path: {path}\n        pathType: Prefix\n        backend:\n          service:\n            name: {svc}\n            port:\n              number: 80\n");
    }
    out
}

/// Third round, F1 and F2: a canary whose path's upstream a non-canary
/// made owns that location; the webhook refuses a second canary on it
/// (both canaries), and refuses no plain Ingress on it (the owner has the
/// annotation).
#[test]
fn canaries_that_own_locations_take_part_in_the_overlap_check() {
    let webhook = controller_at("v1.15.1", &["--validating-webhook=:8443"], &[]);
    let main = ing("m", 1, &[], &[("other.example", "/", "main"), ("h.example", "/y", "stable-y")]);
    let first = ing("a", 2, &[("canary", "true")], &[("h.example", "/x", "main")]);
    let second = ing(
        "b",
        3,
        &[("canary", "true"), ("canary-weight", "50")],
        &[("h.example", "/x", "main"), ("h.example", "/y", "canary-y")],
    );
    let m = run(&[webhook.clone(), main.clone(), first.clone(), second], Target::Realip);
    let e = m.report.entries.iter().find(|e| e.object == "Ingress/web/b" && e.key == "spec.rules");
    assert!(e.is_some_and(|e| e.why.contains("already defined in ingress web/a")), "{}", m.report.text());
    let plain = ing("p", 3, &[], &[("h.example", "/x", "p")]);
    let later = ing("q", 4, &[], &[("h.example", "/x", "q"), ("h.example", "/z", "q")]);
    let m = run(&[webhook, main, first, plain, later], Target::Realip);
    assert!(m.report.entries.iter().all(|e| e.key != "spec.rules"), "{}", m.report.text());
}

/// Third round, F3: the canary validators read the annotation as
/// written: a tab fails them (the trimmed value would pass).
#[test]
fn canary_validators_read_the_value_before_the_trim() {
    let main = ingress("site", "/", &[], "");
    let canary = |anns: &[(&str, &str)]| canary_of(&[("canary-weight", "10")], anns);
    let ctl = controller_at("v1.15.1", &[], &[]);
    let m = run(
        &[ctl.clone(), main.clone(), canary(&[("canary-by-header", "x-canary"), ("canary-by-header-value", "abc\t")])],
        Target::Realip,
    );
    assert_eq!(header_values(&m), ["always", "never"]);
    let m = run(
        &[ctl, main, canary(&[("canary-by-header", "x-canary\t"), ("canary-by-header-value", "abc")])],
        Target::Realip,
    );
    assert!(header_values(&m).is_empty());
    assert_eq!(status(&m, "canary-by-header"), Status::Ignored);
}

/// The canary Ingress `site-canary` of `site` (app.example.com `/`) with
/// these annotations, `base` first.
fn canary_of(base: &[(&str, &str)], anns: &[(&str, &str)]) -> String {
    let mut a = vec![("canary", "true")];
    a.extend_from_slice(base);
    a.extend_from_slice(anns);
    ingress("site-canary", "/", &a, "")
}

/// The header match values of the one HTTPRoute's rules, in order.
fn header_values(m: &realip_migrate::Migration) -> Vec<String> {
    one(m, "HTTPRoute")["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["matches"][0]["headers"][0]["value"].as_str().map(str::to_owned))
        .collect()
}
