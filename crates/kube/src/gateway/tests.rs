//! Table tests of the translation: each case is a YAML world and what the
//! spec says must come out of it.

use super::objects::Objects;
use super::status::{Cond, ObjectStatus, Status};
use super::translate::{translate, Translation};
use crate::routes::{PathMatch, ProxyMode, Route, WeightedBackend};
use std::collections::BTreeSet;
use std::sync::Arc;

const BASE: &str = r"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: realip}
spec: {controllerName: realip.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  gatewayClassName: realip
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - {name: same, port: 8080, protocol: HTTP}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: web}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: canary, namespace: web}
spec: {ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app-1, namespace: web, labels: {kubernetes.io/service-name: app}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [192.0.2.10], conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: infra}
spec: {ports: [{port: 80}]}
";

fn run(extra: &str) -> Translation {
    run_on(BASE, extra)
}

/// [`run`] on another base world.
fn run_on(base: &str, extra: &str) -> Translation {
    // `CRT_B64` / `KEY_B64` in a Secret: a pair the proxy can serve.
    let fill =
        |s: &str| s.replace("CRT_B64", crate::tls::testdata::CRT_B64).replace("KEY_B64", crate::tls::testdata::KEY_B64);
    let mut o = Objects::default();
    o.add_yaml(&fill(base)).unwrap();
    o.add_yaml(&fill(extra)).unwrap();
    translate(&o.inputs("realip", &["198.51.100.1".to_owned()]))
}

fn status<'a>(t: &'a Translation, kind: &str, ns: Option<&str>, name: &str) -> &'a ObjectStatus {
    t.statuses
        .iter()
        .find(|s| s.key.kind == kind && s.key.namespace.as_deref() == ns && s.key.name == name)
        .unwrap_or_else(|| panic!("no status for {kind} {name}: {:#?}", t.statuses))
}

/// (type, status, reason) of the first parent/ancestor entry.
fn first_ref(t: &Translation, kind: &str, ns: &str, name: &str) -> Vec<(&'static str, bool, &'static str)> {
    match &status(t, kind, Some(ns), name).status {
        Status::Route { parents: r, .. } | Status::Policy { ancestors: r, .. } => {
            r[0].conditions.iter().map(|c| (c.kind, c.status, c.reason)).collect()
        }
        other => panic!("{other:?}"),
    }
}

fn cond<'a>(conds: &'a [Cond], kind: &str) -> &'a Cond {
    conds.iter().find(|c| c.kind == kind).unwrap()
}

fn route(ns: &str, body: &str) -> String {
    format!("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: {ns}}}\nspec:\n{body}")
}

#[test]
fn accepted_route_with_weighted_backends_and_gateway_status() {
    let t = run(&route(
        "web",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  hostnames: [app.example.com]\n  rules:\n  - backendRefs: [{name: app, port: 80, weight: 90}, {name: canary, port: 80, weight: 10}]\n",
    ));
    assert_eq!(
        first_ref(&t, "HTTPRoute", "web", "r"),
        [("Accepted", true, "Accepted"), ("ResolvedRefs", true, "ResolvedRefs")]
    );
    let r = &t.routes.routes[0];
    assert_eq!(r.name, "httproute/web/r/0/0");
    assert_eq!(r.listeners, ["gateway/infra/gw/http"]);
    assert_eq!((r.host.as_deref(), &r.path), (Some("app.example.com"), &PathMatch::SegmentPrefix("/".into())));
    assert_eq!(
        *r.backends,
        [
            WeightedBackend { backend: Some("web/app:80".into()), weight: 90 },
            WeightedBackend { backend: Some("web/canary:80".into()), weight: 10 }
        ]
    );
    assert_eq!(t.routes.backends[0].endpoints, ["192.0.2.10:8080".parse().unwrap()]);
    let Status::Gateway { conditions, addresses, listeners, .. } = &status(&t, "Gateway", Some("infra"), "gw").status
    else {
        panic!()
    };
    assert!(cond(conditions, "Accepted").status && cond(conditions, "Programmed").status);
    assert_eq!(addresses, &["198.51.100.1"]);
    assert_eq!((listeners[0].attached_routes, listeners[1].attached_routes), (1, 0));
    let Status::Class { conditions } = &status(&t, "GatewayClass", None, "realip").status else { panic!() };
    assert_eq!((conditions[0].status, conditions[0].reason), (true, "Accepted"));
    assert!(t.problems().is_empty(), "{:?}", t.problems());
}

#[test]
fn attachment_failures_have_the_specs_reasons() {
    // Listener `same` admits only routes of the Gateway's namespace.
    let t = run(&route("web", "  parentRefs: [{name: gw, namespace: infra, sectionName: same}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n"));
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[0], ("Accepted", false, "NotAllowedByListeners"));
    assert!(t.routes.routes.is_empty());
    let t = run(&route("web", "  parentRefs: [{name: gw, namespace: infra, sectionName: nope}]\n"));
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[0], ("Accepted", false, "NoMatchingParent"));
    let hosts = "  - {name: h, port: 81, protocol: HTTP, hostname: '*.example.com', allowedRoutes: {namespaces: {from: All}}}\n";
    let mut o = Objects::default();
    o.add_yaml(&BASE.replace("  - {name: same, port: 8080, protocol: HTTP}\n", hosts)).unwrap();
    o.add_yaml(&route(
        "web",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: h}]\n  hostnames: [example.org, a.example.com]\n",
    ))
    .unwrap();
    let t = translate(&o.inputs("realip", &[]));
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[0], ("Accepted", true, "Accepted"));
    assert_eq!(t.routes.routes.iter().map(|r| r.host.clone()).collect::<Vec<_>>(), [Some("a.example.com".into())]);
    let Status::Gateway { conditions, .. } = &status(&t, "Gateway", Some("infra"), "gw").status else { panic!() };
    assert_eq!(cond(conditions, "Programmed").reason, "AddressNotAssigned");
    o.routes.clear();
    o.add_yaml(&route(
        "web",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: h}]\n  hostnames: [example.org]\n",
    ))
    .unwrap();
    let t = translate(&o.inputs("realip", &[]));
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[0], ("Accepted", false, "NoMatchingListenerHostname"));
    // A parent realip does not own gets no entry from realip.
    let t = run(&route("web", "  parentRefs: [{name: elsewhere}]\n"));
    assert!(t.statuses.iter().all(|s| s.key.kind != "HTTPRoute"));
}

#[test]
fn backend_references_and_reference_grants() {
    let cross = "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules: [{backendRefs: [{name: other, namespace: infra, port: 80}]}]\n";
    let t = run(&route("web", cross));
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[1], ("ResolvedRefs", false, "RefNotPermitted"));
    assert_eq!(*t.routes.routes[0].backends, [WeightedBackend { backend: None, weight: 1 }], "500 for that share");
    let grant = "\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: infra}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: web}]\n  to: [{group: '', kind: Service}]\n";
    let t = run(&(route("web", cross) + grant));
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[1], ("ResolvedRefs", true, "ResolvedRefs"));
    let t = run(&route("web", "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules: [{backendRefs: [{name: gone, port: 80}, {name: app, port: 81}]}]\n"));
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[1], ("ResolvedRefs", false, "BackendNotFound"));
    let t = run(&route("web", "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules: [{backendRefs: [{name: b, kind: Bucket, group: example.com}]}]\n"));
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[1], ("ResolvedRefs", false, "InvalidKind"));
}

#[test]
fn unsupported_features_are_reported_not_ignored() {
    for (rule, what) in [
        ("  - matches: [{path: {type: RegularExpression, value: '/a.*'}}]\n", "path.type RegularExpression"),
        ("  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: app, port: 80}}}]\n", "RequestMirror"),
        ("  - timeouts: {request: 1s}\n", "rules[0].timeouts"),
        ("  - matches: [{headers: [{type: RegularExpression, name: x, value: 'a.*'}]}]\n", "headers.type"),
        (
            "  - backendRefs: [{name: app, port: 80, filters: [{type: RequestHeaderModifier}]}]\n",
            "backendRefs[0].filters",
        ),
    ] {
        let t = run(&route(
            "web",
            &format!("  parentRefs: [{{name: gw, namespace: infra, sectionName: http}}]\n  rules:\n{rule}"),
        ));
        let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "r").status else { panic!() };
        let c = &parents[0].conditions[0];
        assert_eq!((c.status, c.reason), (false, "UnsupportedValue"), "{what}");
        assert!(c.message.contains(what), "{what}: {}", c.message);
        assert!(t.routes.routes.is_empty(), "{what}");
    }
}

/// Of match entries with equivalent names, only the first counts (header
/// names case-insensitively, query parameter names exactly).
#[test]
fn repeated_match_names_count_once() {
    let body = "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules:\n  - matches: [{headers: [{name: X-A, value: '1'}, {name: x-a, value: '2'}], queryParams: [{name: q, value: '1'}, {name: q, value: '2'}, {name: Q, value: '3'}]}]\n";
    let t = run(&route("web", body));
    let r = &t.routes.routes[0];
    let pairs =
        |v: &[crate::routes::ValueMatch]| v.iter().map(|m| (m.name.clone(), m.value.clone())).collect::<Vec<_>>();
    assert_eq!(pairs(&r.headers), [("x-a".to_owned(), "1".to_owned())]);
    assert_eq!(pairs(&r.query), [("q".to_owned(), "1".to_owned()), ("Q".to_owned(), "3".to_owned())]);
}

#[test]
fn precedence_follows_the_spec() {
    let body = "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n  - matches: [{path: {type: PathPrefix, value: /api}}]\n  - matches: [{path: {type: Exact, value: /api}}]\n  - matches: [{path: {type: PathPrefix, value: /api}, method: POST}]\n  - matches: [{path: {type: PathPrefix, value: /api}, method: POST, headers: [{name: X-V, value: '2'}]}]\n";
    let t = run(&(route("web", body) + "\n---\n" + &route("web", "  parentRefs: [{name: gw, namespace: infra}]\n  hostnames: [a.example.com]\n  rules: [{matches: [{path: {value: /}}]}]\n").replace("name: r,", "name: s,")));
    let names: Vec<&str> = t.routes.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "httproute/web/s/0/0", // exact host first
            "httproute/web/r/2/0", // Exact path
            "httproute/web/r/4/0", // prefix /api + method + header
            "httproute/web/r/3/0", // prefix /api + method
            "httproute/web/r/1/0", // prefix /api
            "httproute/web/r/0/0", // prefix /
        ]
    );
    assert_eq!(t.routes.routes[2].headers[0].name, "x-v");
}

/// Review 20 LOW-1: PathPrefix `/api/` matches what `/api` matches, so its
/// trailing `/` does not rank it above `/api` with a header match (before
/// the fix the newer `/api/` route, no headers, took every `/api` request).
#[test]
fn a_trailing_slash_does_not_lengthen_a_path_prefix() {
    let victim = "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules: [{matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x-env, value: prod}]}]}]\n";
    let attacker = "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules: [{matches: [{path: {type: PathPrefix, value: /api/}}]}]\n";
    let t = run(&(route("web", victim) + "\n---\n" + &route("web", attacker).replace("name: r,", "name: zz,")));
    let names: Vec<&str> = t.routes.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["httproute/web/r/0/0", "httproute/web/zz/0/0"], "the header match ranks first");
}

#[test]
fn listeners_protocols_conflicts_and_certificates() {
    let gw = r"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: tls, namespace: infra}
spec:
  gatewayClassName: realip
  listeners:
  - {name: tcp, port: 9000, protocol: TCP}
  - {name: a, port: 443, protocol: HTTPS, hostname: a.example.com, tls: {certificateRefs: [{name: a-cert}]}}
  - {name: b, port: 443, protocol: HTTP}
  - {name: c, port: 443, protocol: HTTPS, hostname: c.example.com, tls: {certificateRefs: [{name: c-cert, namespace: certs}]}}
---
apiVersion: v1
kind: Secret
metadata: {name: a-cert, namespace: infra}
type: kubernetes.io/tls
data: {tls.crt: CRT_B64, tls.key: KEY_B64}
---
apiVersion: v1
kind: Secret
metadata: {name: c-cert, namespace: certs}
type: kubernetes.io/tls
data: {tls.crt: CRT_B64, tls.key: KEY_B64}
";
    let t = run(gw);
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("infra"), "tls").status else {
        panic!()
    };
    let reason = |i: usize, k: &str| {
        let c = cond(&listeners[i].conditions, k);
        (c.status, c.reason)
    };
    assert_eq!(reason(0, "Accepted"), (false, "UnsupportedProtocol"));
    assert_eq!(reason(1, "Accepted"), (true, "Accepted"));
    assert_eq!(reason(2, "Conflicted"), (true, "ProtocolConflict"));
    // Review 29 F3: indistinct listeners of one Gateway are all refused,
    // the older `a` too (the spec picks no winner).
    assert_eq!(reason(1, "Conflicted"), (true, "ProtocolConflict"));
    assert!(cond(&listeners[1].conditions, "Conflicted").message.contains("gateway/infra/tls/b"));
    assert_eq!(reason(1, "Programmed"), (false, "Invalid"));
    assert_eq!(reason(3, "ResolvedRefs"), (false, "RefNotPermitted"));
    assert_eq!(reason(3, "Conflicted"), (true, "ProtocolConflict"));
    // No distinct listener is left: the Gateway is not accepted.
    let accepted = cond(conditions, "Accepted");
    assert_eq!((accepted.status, accepted.reason), (false, "ListenersNotValid"));
    assert!(t.routes.certs.is_empty(), "no HTTPS listener is served");
    // Without the HTTP listener on 443, `a` is served with its certificate.
    let t = run(&gw.replace("  - {name: b, port: 443, protocol: HTTP}\n", ""));
    assert_eq!(t.routes.certs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["infra/a-cert"]);
    let Status::Gateway { conditions, .. } = &status(&t, "Gateway", Some("infra"), "tls").status else { panic!() };
    let accepted = cond(conditions, "Accepted");
    assert_eq!((accepted.status, accepted.reason), (true, "ListenersNotValid"));
    assert!(accepted.message.contains("not valid (see their conditions): tcp; accepted: a, c"), "{}", accepted.message);
    let grant = "\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: certs}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: infra}]\n  to: [{group: '', kind: Secret, name: c-cert}]\n";
    let t = run(&(gw.to_owned() + grant));
    let Status::Gateway { listeners, .. } = &status(&t, "Gateway", Some("infra"), "tls").status else { panic!() };
    assert!(cond(&listeners[3].conditions, "ResolvedRefs").status);
    // A class with parameters is not accepted and its Gateways are not served.
    let mut o = Objects::default();
    o.add_yaml(&BASE.replace(
        "spec: {controllerName: realip.dev/gateway-controller}",
        "spec: {controllerName: realip.dev/gateway-controller, parametersRef: {group: x, kind: Y, name: z}}",
    ))
    .unwrap();
    let t = translate(&o.inputs("realip", &[]));
    let Status::Class { conditions } = &status(&t, "GatewayClass", None, "realip").status else { panic!() };
    assert_eq!((conditions[0].status, conditions[0].reason), (false, "InvalidParameters"));
    assert!(t.statuses.iter().all(|s| s.key.kind != "Gateway"));
    // Another class naming realip's controller is not this proxy's to
    // accept (another realip runs it with `--gateway-class`, or none does).
    let mut o = Objects::default();
    o.add_yaml(&(BASE.to_owned() + "\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: other}\nspec: {controllerName: realip.dev/gateway-controller}\n"))
        .unwrap();
    let t = translate(&o.inputs("realip", &[]));
    let classes: Vec<&str> =
        t.statuses.iter().filter(|s| s.key.kind == "GatewayClass").map(|s| s.key.name.as_str()).collect();
    assert_eq!(classes, ["realip"]);
}

const IP_POLICY: &str = r"
apiVersion: realip.dev/v1alpha1
kind: ClientIPPolicy
metadata: {name: NAME, namespace: infra, creationTimestamp: 'TIME'}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  proxyProtocol: {mode: Required, trustedSenders: [10.0.0.0/8]}
  trustedProxies: [TRUSTED]
  sources: [ProxyProtocol, {header: CF-Connecting-IP}, XForwardedFor]
  strategy: {trustedHops: 1}
  failClosed: true
  forward: {xForwardedFor: Replace, stripUntrusted: [CF-Connecting-IP]}
";

fn ip_policy(name: &str, time: &str, trusted: &str) -> String {
    IP_POLICY.replace("NAME", name).replace("TIME", time).replace("TRUSTED", trusted)
}

#[test]
fn client_ip_policies_attach_conflict_and_fail() {
    let both = ip_policy("new", "2026-02-01T00:00:00Z", "173.245.48.0/20")
        + "---"
        + &ip_policy("old", "2026-01-01T00:00:00Z", "192.0.2.0/24");
    let t = run(&both);
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "old"), [("Accepted", true, "Accepted")]);
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "new"), [("Accepted", false, "Conflicted")]);
    let ip = t.routes.listeners[0].client_ip.as_ref().unwrap();
    assert_eq!(ip.policy, "infra/old");
    assert_eq!(ip.sources, ["proxy-protocol", "header:CF-Connecting-IP", "xff"]);
    assert_eq!(
        (ip.proxy_protocol, ip.strategy.as_str(), ip.fail_closed),
        (ProxyMode::Required, "trusted-hops:1", true)
    );
    assert_eq!(ip.forward.strip_untrusted, ["cf-connecting-ip"]);
    // A listener-specific policy beats the Gateway-wide one for that listener.
    let section = ip_policy("lst", "2026-03-01T00:00:00Z", "198.51.100.0/24")
        .replace("name: gw}", "name: gw, sectionName: same}");
    let t = run(&(both.clone() + "---" + &section));
    let by_name =
        |n: &str| t.routes.listeners.iter().find(|l| l.name == n).and_then(|l| l.client_ip.clone()).unwrap().policy;
    assert_eq!(
        (by_name("gateway/infra/gw/http").as_str(), by_name("gateway/infra/gw/same").as_str()),
        ("infra/old", "infra/lst")
    );
    let t = run(&ip_policy("bad", "2026-01-01T00:00:00Z", "10.0.0.0/33"));
    let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("infra"), "bad").status else { panic!() };
    assert_eq!((ancestors[0].conditions[0].status, ancestors[0].conditions[0].reason), (false, "Invalid"));
    assert!(ancestors[0].conditions[0].message.contains("trustedProxies"), "{:?}", ancestors[0].conditions[0]);
    let t = run(&ip_policy("lost", "2026-01-01T00:00:00Z", "10.0.0.0/8").replace("name: gw}", "name: nowhere}"));
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "lost"), [("Accepted", false, "TargetNotFound")]);
}

/// Review 13c C11/C15: a header that frames or routes the request (Host,
/// Content-Length, Transfer-Encoding, hop-by-hop headers) is neither a
/// client-address source nor stripped from untrusted hops: the policy is
/// Invalid, its message naming the header.
#[test]
fn framing_headers_are_refused_as_sources_and_in_strip_untrusted() {
    for (from, to, named) in [
        ("stripUntrusted: [CF-Connecting-IP]", "stripUntrusted: [CF-Connecting-IP, Host]", "`Host`"),
        ("stripUntrusted: [CF-Connecting-IP]", "stripUntrusted: [content-length]", "`content-length`"),
        ("stripUntrusted: [CF-Connecting-IP]", "stripUntrusted: [Transfer-Encoding]", "`Transfer-Encoding`"),
        ("stripUntrusted: [CF-Connecting-IP]", "stripUntrusted: [Connection]", "`Connection`"),
        ("stripUntrusted: [CF-Connecting-IP]", "stripUntrusted: [TE]", "`TE`"),
        ("stripUntrusted: [CF-Connecting-IP]", "stripUntrusted: [Proxy-Connection]", "`Proxy-Connection`"),
        ("stripUntrusted: [CF-Connecting-IP]", "stripUntrusted: [':authority']", "`:authority`"),
        ("{header: CF-Connecting-IP}", "{header: Host}", "`header:Host`"),
        ("{header: CF-Connecting-IP}", "{header: upgrade}", "`header:upgrade`"),
        ("{header: CF-Connecting-IP}", "{header: Keep-Alive}", "`header:Keep-Alive`"),
    ] {
        let t = run(&ip_policy("p", "2026-01-01T00:00:00Z", "192.0.2.0/24").replace(from, to));
        let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("infra"), "p").status else {
            panic!()
        };
        let c = &ancestors[0].conditions[0];
        assert_eq!((c.status, c.reason), (false, "Invalid"), "{to}");
        assert!(c.message.contains(named), "{to}: {c:?}");
        assert!(t.routes.listeners.iter().all(|l| l.client_ip.is_none()), "{to}: the invalid chain is not used");
    }
}

#[test]
fn access_policies_prefer_the_most_specific_target() {
    let r = route(
        "web",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules:\n  - {name: admin, matches: [{path: {value: /admin}}], backendRefs: [{name: app, port: 80}]}\n  - {backendRefs: [{name: app, port: 80}]}\n",
    );
    let policy = |name: &str, target: &str, allow: &str| {
        format!("\n---\napiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {{name: {name}, namespace: web}}\nspec:\n  targetRefs: [{target}]\n  allow: [{allow}]\n  rateLimit: {{perSecond: 5, scope: Global}}\n")
    };
    let t = run(&(r.clone()
        + &policy("route", "{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}", "203.0.113.0/24")
        + &policy(
            "rule",
            "{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r, sectionName: admin}",
            "192.0.2.1/32",
        )
        + &policy(
            "ghost",
            "{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r, sectionName: nope}",
            "192.0.2.1/32",
        )));
    let by = |name: &str| t.routes.routes.iter().find(|r| r.name == name).and_then(|r| r.access.clone()).unwrap();
    assert_eq!(by("httproute/web/r/admin/0").policy, "web/rule");
    assert_eq!(by("httproute/web/r/1/0").policy, "web/route");
    let rl = by("httproute/web/r/1/0").rate_limit.clone().unwrap();
    assert_eq!((rl.per_second, rl.burst, rl.ipv6_prefix_length, rl.global), (5.0, 5.0, 64, true));
    // The bucket is the policy's: every route it applies to names it.
    assert_eq!(rl.scope, "clientaccesspolicy:web/route");
    assert_eq!(by("httproute/web/r/admin/0").rate_limit.clone().unwrap().scope, "clientaccesspolicy:web/rule");
    assert_eq!(first_ref(&t, "ClientAccessPolicy", "web", "ghost"), [("Accepted", false, "TargetNotFound")]);
    let t = run(&(r + &policy("bad", "{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}", "nonsense")));
    assert_eq!(first_ref(&t, "ClientAccessPolicy", "web", "bad"), [("Accepted", false, "Invalid")]);
}

/// `rateLimit.scope`: absent and `Local` keep the count per replica,
/// `Global` shares it; anything else makes the policy Invalid, so a typo
/// never turns a shared limit into an N× looser local one in silence.
#[test]
fn access_policy_rate_limit_scope() {
    let r = route("web", "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules:\n  - {backendRefs: [{name: app, port: 80}]}\n");
    let with = |scope: &str| {
        let t = run(&format!("{r}\n---\napiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {{name: p, namespace: web}}\nspec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}}]\n  rateLimit: {{perSecond: 10, burst: 20{scope}}}\n"));
        let rl = t.routes.routes[0].access.as_ref().and_then(|a| a.rate_limit.clone());
        (rl.map(|rl| (rl.per_second, rl.burst, rl.global)), first_ref(&t, "ClientAccessPolicy", "web", "p"))
    };
    assert_eq!(with("").0, Some((10.0, 20.0, false)));
    assert_eq!(with(", scope: Local").0, Some((10.0, 20.0, false)));
    assert_eq!(with(", scope: Global").0, Some((10.0, 20.0, true)));
    let (rl, conditions) = with(", scope: Sometimes");
    assert_eq!((rl, conditions), (None, vec![("Accepted", false, "Invalid")]));
}

#[test]
fn listener_sets_attach_only_when_allowed() {
    let set = r"
apiVersion: v1
kind: Namespace
metadata: {name: team, labels: {shared: 'yes'}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: ls, namespace: team}
spec:
  parentRef: {name: gw, namespace: infra, kind: Gateway, group: gateway.networking.k8s.io}
  listeners: [{name: extra, port: 8081, protocol: HTTP, hostname: team.example.com}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: team}
spec:
  parentRefs: [{name: ls, kind: ListenerSet}]
  rules: [{backendRefs: [{name: app, namespace: web, port: 80}]}]
";
    let attached_sets = |t: &Translation| {
        let Status::Gateway { attached_sets, .. } = &status(t, "Gateway", Some("infra"), "gw").status else { panic!() };
        *attached_sets
    };
    let t = run(set);
    let Status::Gateway { conditions, .. } = &status(&t, "ListenerSet", Some("team"), "ls").status else { panic!() };
    assert_eq!((conditions[0].status, conditions[0].reason), (false, "NotAllowed"));
    assert_eq!(attached_sets(&t), Some(0), "review 29 F5: attachedListenerSets counts the accepted ones");
    let mut o = Objects::default();
    o.add_yaml(&BASE.replace("  gatewayClassName: realip\n", "  gatewayClassName: realip\n  allowedListeners: {namespaces: {from: Selector, selector: {matchLabels: {shared: 'yes'}}}}\n")).unwrap();
    o.add_yaml(set).unwrap();
    let t = translate(&o.inputs("realip", &[]));
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "ListenerSet", Some("team"), "ls").status else {
        panic!()
    };
    assert!(conditions[0].status, "{conditions:?}");
    assert_eq!(listeners[0].attached_routes, 1);
    assert_eq!(attached_sets(&t), Some(1));
    let json =
        crate::gateway::status::to_json(status(&t, "Gateway", Some("infra"), "gw"), None, "2026-01-01T00:00:00Z");
    assert_eq!(json["attachedListenerSets"], 1, "{json}");
    assert_eq!(first_ref(&t, "HTTPRoute", "team", "r")[0], ("Accepted", true, "Accepted"));
    assert_eq!(first_ref(&t, "HTTPRoute", "team", "r")[1], ("ResolvedRefs", false, "RefNotPermitted"));
    assert_eq!(t.routes.routes[0].listeners, ["listenerset/team/ls/extra"]);
    assert_eq!(t.routes.routes[0].host.as_deref(), Some("team.example.com"));
}

/// A ListenerSet is a tenant's: its ClientIPPolicy applies only when it
/// narrows its Gateway's whole-Gateway policy (trusted proxies and PROXY
/// senders within, sources among and in order, same strategy, failClosed kept);
/// otherwise it is Invalid for that target and the set's listeners take the
/// Gateway's chain. On the owner's port, the Gateway's own listener wins a
/// chain conflict over the set's.
#[test]
fn a_listener_set_policy_may_only_narrow_the_gateways() {
    let world = |set_port: u16, set_policy: &str| {
        let base = BASE.replace(
            "  gatewayClassName: realip\n",
            "  gatewayClassName: realip\n  allowedListeners: {namespaces: {from: All}}\n",
        );
        let owner = "apiVersion: realip.dev/v1alpha1\nkind: ClientIPPolicy\nmetadata: {name: owner, namespace: infra, creationTimestamp: '2026-01-01T00:00:00Z'}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n  trustedProxies: [198.51.100.0/24]\n  failClosed: true\n";
        let set = format!("apiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: {{name: ls, namespace: team}}\nspec:\n  parentRef: {{name: gw, namespace: infra}}\n  listeners: [{{name: extra, port: {set_port}, protocol: HTTP, hostname: team.example.com}}]\n");
        let tenant = format!("apiVersion: realip.dev/v1alpha1\nkind: ClientIPPolicy\nmetadata: {{name: tenant, namespace: team}}\nspec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: ListenerSet, name: ls}}]\n{set_policy}");
        let mut o = Objects::default();
        o.add_yaml(&base).unwrap();
        o.add_yaml(&format!("{owner}---\n{set}---\n{tenant}")).unwrap();
        translate(&o.inputs("realip", &["198.51.100.1".to_owned()]))
    };
    let chain = |t: &Translation| {
        t.routes.listeners.iter().find(|l| l.name == "listenerset/team/ls/extra").and_then(|l| l.client_ip.clone())
    };
    // Wider trust (E5): refused, the set's listener takes the owner's chain.
    let t = world(8081, "  trustedProxies: [0.0.0.0/0]\n  failClosed: true\n");
    let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("team"), "tenant").status else {
        panic!()
    };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "Invalid"));
    assert!(c.message.contains("may only narrow") && c.message.contains("trustedProxies"), "{c:?}");
    assert_eq!(chain(&t).map(|c| c.policy), Some("infra/owner".to_owned()));
    // Dropping failClosed, another strategy, another source: refused too.
    for (bad, word) in [
        ("  trustedProxies: [198.51.100.0/25]\n", "failClosed"),
        ("  trustedProxies: [198.51.100.0/25]\n  failClosed: true\n  strategy: {trustedHops: 2}\n", "strategy"),
        ("  trustedProxies: [198.51.100.0/25]\n  failClosed: true\n  sources: [XRealIP]\n", "source"),
        (
            "  proxyProtocol: {mode: Optional, trustedSenders: [10.0.0.0/8]}\n  trustedProxies: [198.51.100.0/25]\n  failClosed: true\n",
            "PROXY",
        ),
    ] {
        let t = world(8081, bad);
        let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("team"), "tenant").status else {
            panic!()
        };
        let c = &ancestors[0].conditions[0];
        assert_eq!((c.status, c.reason), (false, "Invalid"), "{bad}");
        assert!(c.message.contains(word), "{bad}: {c:?}");
    }
    // Review 16 L12: the first source present wins, so the set's sources
    // keep the owner's order (a subsequence); the same ones in another
    // order widen (a client behind a trusted proxy would name itself in
    // XFF past the PROXY header the owner reads first).
    let ordered = |set_sources: &str| {
        let base = BASE.replace(
            "  gatewayClassName: realip\n",
            "  gatewayClassName: realip\n  allowedListeners: {namespaces: {from: All}}\n",
        );
        let owner = "apiVersion: realip.dev/v1alpha1\nkind: ClientIPPolicy\nmetadata: {name: owner, namespace: infra}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n  proxyProtocol: {mode: Optional, trustedSenders: [192.0.2.0/24]}\n  trustedProxies: [198.51.100.0/24]\n  sources: [ProxyProtocol, XForwardedFor, XRealIP]\n";
        let set = "apiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: {name: ls, namespace: team}\nspec:\n  parentRef: {name: gw, namespace: infra}\n  listeners: [{name: extra, port: 8081, protocol: HTTP, hostname: team.example.com}]\n";
        let tenant = format!("apiVersion: realip.dev/v1alpha1\nkind: ClientIPPolicy\nmetadata: {{name: tenant, namespace: team}}\nspec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: ListenerSet, name: ls}}]\n  proxyProtocol: {{mode: Optional, trustedSenders: [192.0.2.0/25]}}\n  trustedProxies: [198.51.100.0/24]\n  sources: {set_sources}\n");
        let mut o = Objects::default();
        o.add_yaml(&base).unwrap();
        o.add_yaml(&format!("{owner}---\n{set}---\n{tenant}")).unwrap();
        translate(&o.inputs("realip", &["198.51.100.1".to_owned()]))
    };
    for widening in ["[XForwardedFor, ProxyProtocol]", "[XRealIP, XForwardedFor]", "[XRealIP, ProxyProtocol]"] {
        let t = ordered(widening);
        let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("team"), "tenant").status else {
            panic!()
        };
        let c = &ancestors[0].conditions[0];
        assert_eq!((c.status, c.reason), (false, "Invalid"), "{widening}");
        assert!(c.message.contains("not in the order") && c.message.contains("first source present wins"), "{c:?}");
        assert_eq!(chain(&t).map(|c| c.policy), Some("infra/owner".to_owned()), "{widening}");
    }
    for narrowing in ["[ProxyProtocol, XForwardedFor, XRealIP]", "[ProxyProtocol, XRealIP]", "[XForwardedFor]"] {
        let t = ordered(narrowing);
        assert_eq!(first_ref(&t, "ClientIPPolicy", "team", "tenant"), [("Accepted", true, "Accepted")], "{narrowing}");
        assert_eq!(chain(&t).map(|c| c.policy), Some("team/tenant".to_owned()), "{narrowing}");
    }
    // Narrower: applied on the set's own port.
    let t = world(8081, "  trustedProxies: [198.51.100.0/25]\n  failClosed: true\n");
    assert_eq!(first_ref(&t, "ClientIPPolicy", "team", "tenant"), [("Accepted", true, "Accepted")]);
    assert_eq!(chain(&t).map(|c| c.trusted), Some(vec!["198.51.100.0/25".to_owned()]));
    // On the owner's port 80 (E18): the owner's listener keeps the bind and
    // its chain; the set's listener, newer and a ListenerSet's, is refused.
    let t = world(80, "  trustedProxies: [198.51.100.0/25]\n  failClosed: true\n");
    let http = t.routes.listeners.iter().find(|l| l.name == "gateway/infra/gw/http").unwrap();
    assert_eq!(http.client_ip.as_ref().map(|c| c.policy.as_str()), Some("infra/owner"));
    assert!(chain(&t).is_none() && t.routes.listeners.iter().all(|l| !l.name.starts_with("listenerset/")));
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "owner"), [("Accepted", true, "Accepted")]);
    assert_eq!(first_ref(&t, "ClientIPPolicy", "team", "tenant"), [("Accepted", false, "Conflicted")]);
    // A wider one on port 80 is refused, so the set's listener shares the
    // owner's chain there and is served.
    let t = world(80, "  trustedProxies: [0.0.0.0/0]\n");
    assert_eq!(chain(&t).map(|c| c.policy), Some("infra/owner".to_owned()));
    // No Gateway policy to compare with: refused.
    let mut o = Objects::default();
    o.add_yaml(&BASE.replace(
        "  gatewayClassName: realip\n",
        "  gatewayClassName: realip\n  allowedListeners: {namespaces: {from: All}}\n",
    ))
    .unwrap();
    o.add_yaml("apiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: {name: ls, namespace: team}\nspec:\n  parentRef: {name: gw, namespace: infra}\n  listeners: [{name: extra, port: 8081, protocol: HTTP}]\n---\napiVersion: realip.dev/v1alpha1\nkind: ClientIPPolicy\nmetadata: {name: tenant, namespace: team}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: ListenerSet, name: ls}]\n  trustedProxies: [198.51.100.0/25]\n").unwrap();
    let t = translate(&o.inputs("realip", &[]));
    let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("team"), "tenant").status else {
        panic!()
    };
    assert!(ancestors[0].conditions[0].message.contains("no valid whole-Gateway ClientIPPolicy"), "{ancestors:?}");
}

/// One port is one stream of connections with one client-IP chain: a
/// newer Gateway's listener on the port of an older one with another chain
/// is Conflicted and not served (the older keeps its policy and its routes,
/// whichever side has the policy); the same chain under another policy is
/// no conflict.
#[test]
fn a_newer_listener_with_another_chain_on_a_port_is_conflicted() {
    let section = |name: &str, listener: &str| {
        ip_policy(name, "2026-01-01T00:00:00Z", "192.0.2.0/24")
            .replace("name: gw}", &format!("name: gw, sectionName: {listener}}}"))
    };
    let other = "\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw2, namespace: infra, creationTimestamp: '2026-02-01T00:00:00Z'}\nspec:\n  gatewayClassName: realip\n  listeners: [{name: o, port: 80, protocol: HTTP, hostname: o.example.com}]\n";
    let gw2_listener = |t: &Translation| {
        let Status::Gateway { listeners, .. } = &status(t, "Gateway", Some("infra"), "gw2").status else { panic!() };
        listeners[0].conditions.clone()
    };
    // gw's http listener gets a hostname, so that gw2's does not overlap it
    // (that would be a HostnameConflict, see the test below).
    let base = BASE.replace("{name: http, port: 80,", "{name: http, port: 80, hostname: a.example.com,");
    let run = |extra: &str| run_on(&base, extra);
    // The older listener has the policy: it keeps it; the newer is refused.
    let t = run(&(section("on-http", "http") + "---" + &section("on-same", "same") + other));
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "on-http"), [("Accepted", true, "Accepted")]);
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "on-same"), [("Accepted", true, "Accepted")]);
    let conds = gw2_listener(&t);
    let c = cond(&conds, "Conflicted");
    assert_eq!((c.status, c.reason), (true, "ClientIPPolicyConflict"));
    assert!(c.message.contains("gateway/infra/gw/http") && c.message.contains("infra/on-http"), "{c:?}");
    assert!(!cond(&conds, "Programmed").status);
    assert!(t.routes.listeners.iter().all(|l| l.name != "gateway/infra/gw2/o"), "{:?}", t.routes.listeners);
    let http = t.routes.listeners.iter().find(|l| l.name == "gateway/infra/gw/http").unwrap();
    assert_eq!(http.client_ip.as_ref().map(|c| c.policy.as_str()), Some("infra/on-http"));
    // The newer listener has the policy: that policy is Conflicted there.
    let newer = ip_policy("on-o", "2026-01-01T00:00:00Z", "192.0.2.0/24").replace("name: gw}", "name: gw2}");
    let t = run(&(newer + other));
    let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("infra"), "on-o").status else {
        panic!()
    };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "Conflicted"));
    assert!(c.message.contains("gateway/infra/gw/http") && c.message.contains("no ClientIPPolicy"), "{c:?}");
    assert_eq!(cond(&gw2_listener(&t), "Conflicted").reason, "ClientIPPolicyConflict");
    // The same chain under another policy on the other Gateway: no conflict.
    let same_chain = ip_policy("twin", "2026-01-01T00:00:00Z", "192.0.2.0/24").replace("name: gw}", "name: gw2}");
    let t = run(&(section("on-http", "http") + "---" + &same_chain + other));
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "on-http"), [("Accepted", true, "Accepted")]);
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "twin"), [("Accepted", true, "Accepted")]);
    assert!(!cond(&gw2_listener(&t), "Conflicted").status);
}

/// Listener distinctness spans every Gateway of the class on a port (the
/// proxy merges them): a newer Gateway's listener with the same port,
/// protocol and hostname as an older Gateway's is HostnameConflict and not
/// served, so its routes cannot take over the older one's host; another
/// protocol on the port is ProtocolConflict. The older is not affected.
#[test]
fn listeners_of_different_gateways_on_one_port_must_be_distinct() {
    let gw2 = |listener: &str| {
        format!("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw2, namespace: evil, creationTimestamp: '2026-02-01T00:00:00Z'}}\nspec:\n  gatewayClassName: realip\n  listeners: [{listener}]\n")
    };
    let hijack = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: hijack, namespace: evil}\nspec:\n  parentRefs: [{name: gw2}]\n  hostnames: [a.example.com]\n  rules: [{matches: [{path: {type: Exact, value: /login}}]}]\n";
    let t = run(&(gw2("{name: h, port: 80, protocol: HTTP}") + hijack));
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("evil"), "gw2").status else {
        panic!()
    };
    let c = cond(&listeners[0].conditions, "Conflicted");
    assert_eq!((c.status, c.reason), (true, "HostnameConflict"));
    assert!(c.message.contains("gateway/infra/gw/http"), "{c:?}");
    assert!(!cond(conditions, "Accepted").status, "{conditions:?}");
    assert_eq!(first_ref(&t, "HTTPRoute", "evil", "hijack")[0], ("Accepted", false, "NotAllowedByListeners"));
    assert!(t.routes.routes.iter().all(|r| !r.origin.contains("hijack")), "{:?}", t.routes.routes);
    let Status::Gateway { conditions, .. } = &status(&t, "Gateway", Some("infra"), "gw").status else { panic!() };
    assert_eq!(cond(conditions, "Accepted").reason, "Accepted");
    let t =
        run(&gw2("{name: h, port: 80, protocol: HTTPS, hostname: b.example.com, tls: {certificateRefs: [{name: c}]}}"));
    let Status::Gateway { listeners, .. } = &status(&t, "Gateway", Some("evil"), "gw2").status else { panic!() };
    assert_eq!(cond(&listeners[0].conditions, "Conflicted").reason, "ProtocolConflict");
    // Another hostname on the port is distinct (and the same chain: none)
    // when the older listener has a hostname too.
    let base = BASE.replace("{name: http, port: 80,", "{name: http, port: 80, hostname: a.example.com,");
    let t = run_on(&base, &gw2("{name: h, port: 80, protocol: HTTP, hostname: b.example.com}"));
    let Status::Gateway { listeners, .. } = &status(&t, "Gateway", Some("evil"), "gw2").status else { panic!() };
    assert!(cond(&listeners[0].conditions, "Programmed").status, "{listeners:?}");
    // The older wins whatever the names: gw2 made older than gw.
    let t = run(&gw2("{name: h, port: 80, protocol: HTTP}").replace("2026-02-01", "2025-01-01"));
    let Status::Gateway { listeners, .. } = &status(&t, "Gateway", Some("infra"), "gw").status else { panic!() };
    assert_eq!(cond(&listeners[0].conditions, "Conflicted").reason, "HostnameConflict");
}

/// Review 13b N1: merged on one bind, listeners of different Gateways
/// whose hostnames overlap (equal, a wildcard covering the other's, or
/// either without hostname) conflict: the older keeps the hosts, the newer
/// is `HostnameConflict` naming it, and its routes (here one taking
/// `/login` of a.example.com) are not served. Disjoint hostnames stay
/// distinct; a ListenerSet's listener dates from the later of the set and
/// its Gateway; within one Gateway listener isolation still applies.
#[test]
fn overlapping_listeners_of_different_gateways_on_one_bind_conflict() {
    let gw2 = |host: Option<&str>| {
        let host = host.map_or_else(String::new, |h| format!(", hostname: '{h}'"));
        format!("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw2, namespace: evil, creationTimestamp: '2026-02-01T00:00:00Z'}}\nspec:\n  gatewayClassName: realip\n  listeners: [{{name: h, port: 80, protocol: HTTP{host}}}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: hijack, namespace: evil}}\nspec:\n  parentRefs: [{{name: gw2}}]\n  hostnames: [a.example.com]\n  rules: [{{matches: [{{path: {{type: Exact, value: /login}}}}]}}]\n")
    };
    let base = |host: Option<&str>| match host {
        None => BASE.to_owned(),
        Some(h) => BASE.replace("{name: http, port: 80,", &format!("{{name: http, port: 80, hostname: '{h}',")),
    };
    let listener = |t: &Translation, kind: &str, ns: &str, name: &str| {
        let Status::Gateway { listeners, .. } = &status(t, kind, Some(ns), name).status else { panic!() };
        listeners[0].conditions.clone()
    };
    // (older gw's http listener, newer gw2's, conflict)
    let table: [(Option<&str>, Option<&str>, bool); 8] = [
        (Some("a.example.com"), Some("*.example.com"), true),
        (Some("a.example.com"), None, true),
        (None, Some("*.example.com"), true),
        (None, None, true),
        (Some("*.example.com"), Some("*.a.example.com"), true),
        (Some("*.a.example.com"), Some("*.b.example.com"), false),
        (Some("a.example.com"), Some("b.example.com"), false),
        (Some("*.example.com"), Some("example.com"), false),
    ];
    for (old, new, conflict) in table {
        let t = run_on(&base(old), &gw2(new));
        let c = listener(&t, "Gateway", "evil", "gw2");
        let got = cond(&c, "Conflicted");
        let served = t.routes.routes.iter().any(|r| r.origin == "httproute/evil/hijack");
        if conflict {
            assert_eq!((got.status, got.reason), (true, "HostnameConflict"), "{old:?} {new:?}: {c:?}");
            assert!(got.message.contains("gateway/infra/gw/http") && got.message.contains("infra/gw"), "{got:?}");
            assert!(!cond(&c, "Programmed").status, "{old:?} {new:?}");
            assert!(!served, "{old:?} {new:?}: {:?}", t.routes.routes);
            assert_eq!(first_ref(&t, "HTTPRoute", "evil", "hijack")[0], ("Accepted", false, "NotAllowedByListeners"));
            assert!(!cond(&listener(&t, "Gateway", "infra", "gw"), "Conflicted").status, "the older keeps it");
        } else {
            assert!(!got.status && cond(&c, "Programmed").status, "{old:?} {new:?}: {c:?}");
        }
    }
    // The older keeps it whatever the kinds: gw2 made older, gw is refused.
    let t = run_on(&base(Some("a.example.com")), &gw2(Some("*.example.com")).replace("2026-02-01", "2025-01-01"));
    let got = listener(&t, "Gateway", "infra", "gw");
    assert_eq!(cond(&got, "Conflicted").reason, "HostnameConflict");
    assert!(cond(&got, "Conflicted").message.contains("gateway/evil/gw2/h"), "{got:?}");
    // A ListenerSet on the old gw dates from the set: made after gw2, its
    // `*.example.com` listener is the newer one and refused; made before,
    // it keeps the bind and gw2's a.example.com listener is refused.
    let set = |created: &str| {
        format!("\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: {{name: ls, namespace: team, creationTimestamp: '{created}'}}\nspec:\n  parentRef: {{name: gw, namespace: infra}}\n  listeners: [{{name: wild, port: 80, protocol: HTTP, hostname: '*.example.com'}}]\n")
    };
    let open = base(Some("c.example.com")).replace(
        "  gatewayClassName: realip\n",
        "  gatewayClassName: realip\n  allowedListeners: {namespaces: {from: All}}\n",
    );
    let t = run_on(&open, &(gw2(Some("a.example.com")) + &set("2026-03-01T00:00:00Z")));
    let c = listener(&t, "ListenerSet", "team", "ls");
    assert_eq!(cond(&c, "Conflicted").reason, "HostnameConflict", "{c:?}");
    assert!(cond(&c, "Conflicted").message.contains("gateway/evil/gw2/h"), "{c:?}");
    assert!(cond(&listener(&t, "Gateway", "evil", "gw2"), "Programmed").status);
    let t = run_on(&open, &(gw2(Some("a.example.com")) + &set("2026-01-15T00:00:00Z")));
    assert_eq!(cond(&listener(&t, "Gateway", "evil", "gw2"), "Conflicted").reason, "HostnameConflict");
    // Within one Gateway: gw's c.example.com and its set's *.example.com
    // are both served (isolation, not conflict).
    let c = listener(&t, "ListenerSet", "team", "ls");
    assert!(!cond(&c, "Conflicted").status && cond(&c, "Programmed").status, "{c:?}");
    assert!(cond(&listener(&t, "Gateway", "infra", "gw"), "Programmed").status);
}

#[test]
fn access_policy_on_a_gateway_listener_is_invalid_not_ignored() {
    let p = "apiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: lst, namespace: infra}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: http}]\n  allow: [192.0.2.0/24]\n";
    let t = run(p);
    let Status::Policy { ancestors, .. } = &status(&t, "ClientAccessPolicy", Some("infra"), "lst").status else {
        panic!()
    };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "Invalid"));
    assert!(c.message.contains("sectionName"), "{c:?}");
}

#[test]
fn replace_prefix_match_needs_path_prefix_and_names_stay_unique() {
    let r = route(
        "web",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules:\n  - matches: [{path: {type: Exact, value: /x}}]\n    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /y}}}]\n    backendRefs: [{name: app, port: 80}]\n",
    );
    let t = run(&r);
    let got = first_ref(&t, "HTTPRoute", "web", "r");
    assert_eq!((got[0].0, got[0].1, got[0].2), ("Accepted", false, "UnsupportedValue"));
    // Two hostnames and two parents: every route name is unique.
    let r = route(
        "web",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: http}, {name: gw, namespace: infra, port: 80}]\n  hostnames: [a.example.com, b.example.com]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n",
    );
    let t = run(&r);
    let mut names: Vec<&str> = t.routes.routes.iter().map(|r| r.name.as_str()).collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!((names.len(), n), (4, 4), "{names:?}");
}

/// A policy edited into an invalid one keeps its last valid version in
/// force (fed back from the previous translation), and says so.
#[test]
fn an_invalid_edit_keeps_the_last_valid_client_ip_policy() {
    let good = ip_policy("edge", "2026-01-01T00:00:00Z", "192.0.2.0/24");
    let first = run(&good);
    let in_force = first.ip_in_force.clone();
    assert_eq!(in_force["infra/edge"].trusted, ["192.0.2.0/24"]);
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(&ip_policy("edge", "2026-01-01T00:00:00Z", "10.0.0.0/33")).unwrap();
    let mut inputs = o.inputs("realip", &[]);
    inputs.last_good_ip = in_force;
    let t = translate(&inputs);
    let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("infra"), "edge").status else {
        panic!()
    };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "Invalid"));
    assert!(c.message.contains("trustedProxies") && c.message.contains("last valid version"), "{c:?}");
    let ip = t.routes.listeners[0].client_ip.as_ref().unwrap();
    assert_eq!(ip.trusted, ["192.0.2.0/24"], "the last valid chain stays");
    assert_eq!(t.ip_in_force["infra/edge"].trusted, ["192.0.2.0/24"]);
    // Without a previous valid version (a new policy, or a restart after
    // the edit) there is nothing to keep: its listeners fail closed (not
    // served, not programmed, saying why), never open with the file's chain.
    let t = run(&(ip_policy("edge", "2026-01-01T00:00:00Z", "10.0.0.0/33") + "---\n" + &route("infra", ACCESS_ROUTE)));
    assert!(t.ip_in_force.is_empty());
    assert!(t.routes.listeners.is_empty() && t.routes.routes.is_empty(), "{:?}", t.routes);
    let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("infra"), "edge").status else {
        panic!()
    };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "Invalid"));
    assert!(c.message.contains("no last valid version") && c.message.contains("not served"), "{c:?}");
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("infra"), "gw").status else {
        panic!()
    };
    let p = cond(&listeners[0].conditions, "Programmed");
    assert_eq!((p.status, p.reason), (false, "Invalid"));
    assert!(p.message.contains("ClientIPPolicy infra/edge is invalid") && p.message.contains("fail closed"), "{p:?}");
    assert!(!cond(conditions, "Programmed").status);
    assert_eq!(first_ref(&t, "HTTPRoute", "infra", "r")[0], ("Accepted", false, "Pending"));
}

/// A ClientAccessPolicy that is invalid with no last valid version (new,
/// or after a restart) denies everyone on its targets rather than
/// dropping its lists; an older valid policy on the same target keeps it.
#[test]
fn an_invalid_access_policy_with_no_last_valid_version_fails_closed() {
    let r = route("web", ACCESS_ROUTE);
    let bad = access_policy("  allow: [198.51.100.0/24, 10.0.0.0/33]\n");
    let t = run(&format!("{r}\n---\n{bad}"));
    let Status::Policy { ancestors, .. } = &status(&t, "ClientAccessPolicy", Some("web"), "p").status else { panic!() };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "Invalid"));
    assert!(c.message.contains("no last valid version") && c.message.contains("refused"), "{c:?}");
    let a = t.routes.routes[0].access.as_ref().expect("fails closed");
    assert_eq!((a.allow.as_deref(), a.policy.as_str()), (Some(&[][..]), "web/p"));
    assert!(t.access_in_force.is_empty());
    // On the Gateway, under a valid route policy: the floor is empty too.
    let gw = "apiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: gwp, namespace: infra}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n  allow: [2001:db8::/129]\n";
    let good = access_policy("  allow: [0.0.0.0/0]\n");
    let t = run(&format!("{r}\n---\n{gw}\n---\n{good}"));
    let a = t.routes.routes[0].access.as_ref().expect("fails closed");
    assert_eq!(a.allow.as_deref(), Some(&[][..]));
}

/// Review 13d X9: a ClientAccessPolicy that does not decode (a field past
/// realip's types, as an API server without the CRD's bounds admits) stands
/// in as Invalid with the targets of its raw object (`crate::decode`):
/// new, it lets nobody in on them; edited from a valid version, that
/// version stays in force. Never dropped (which would fail open).
#[test]
fn an_undecodable_access_policy_fails_closed_or_keeps_its_last_valid_version() {
    use crate::decode::StandIn as _;
    use crate::gateway::types::ClientAccessPolicy;
    let r = route("web", ACCESS_ROUTE);
    let raw = serde_json::json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientAccessPolicy",
        "metadata": {"name": "p", "namespace": "web"},
        "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"}],
            "deny": ["192.0.2.0/24"], "rateLimit": {"perSecond": 1000, "ipv6PrefixLength": 300}}});
    let o: kube::api::DynamicObject = serde_json::from_value(raw).unwrap();
    let error = crate::decode::decode::<ClientAccessPolicy>(o.clone()).unwrap_err();
    assert!(error.contains("ipv6PrefixLength"), "{error}");
    let stand_in = ClientAccessPolicy::stand_in(&o.metadata, &o.data, &error).expect("its targets are read");
    let world = |last_good| {
        let mut objs = Objects::default();
        objs.add_yaml(BASE).unwrap();
        objs.add_yaml(&r).unwrap();
        objs.access_policies.push(stand_in.clone());
        let mut inputs = objs.inputs("realip", &[]);
        inputs.last_good_access = last_good;
        translate(&inputs)
    };
    // New: Invalid, naming the field, and nobody is let in.
    let t = world(std::collections::BTreeMap::new());
    let Status::Policy { ancestors, .. } = &status(&t, "ClientAccessPolicy", Some("web"), "p").status else { panic!() };
    let cond = &ancestors[0].conditions[0];
    assert_eq!((cond.status, cond.reason), (false, "Invalid"));
    assert!(cond.message.contains("does not decode") && cond.message.contains("ipv6PrefixLength"), "{cond:?}");
    let access = t.routes.routes[0].access.as_ref().expect("fails closed");
    assert_eq!(access.allow.as_deref(), Some(&[][..]));
    // Edited from a valid version: that one stays in force.
    let good = run(&format!("{r}\n---\n{}", access_policy("  deny: [192.0.2.0/24]\n")));
    let t = world(good.access_in_force.clone());
    let access = t.routes.routes[0].access.as_ref().expect("the last valid version stays");
    assert_eq!((access.allow.as_deref(), access.deny.as_slice()), (None, &["192.0.2.0/24".to_owned()][..]));
    let Status::Policy { ancestors, .. } = &status(&t, "ClientAccessPolicy", Some("web"), "p").status else { panic!() };
    assert!(ancestors[0].conditions[0].message.contains("last valid version"), "{:?}", ancestors[0]);
}

/// Review 13d LOW: what the CRD schema refuses is refused the same way
/// when an API server lets it through: an HTTPRoute hostname that is `*`,
/// empty or not lower-case DNS labels is `Accepted: False,
/// UnsupportedValue` and not served; a Gateway with `listeners: []` is
/// `Accepted: False, Invalid` (never Accepted and Programmed for nothing).
#[test]
fn hostnames_and_listeners_the_crd_refuses_are_refused() {
    let table = [
        ("['*']", false),
        ("['']", false),
        ("['*.*.example.com']", false),
        ("['A.example.com']", false),
        ("['-a.example.com']", false),
        ("['a.example.com.']", false),
        ("[a.example.com, '*']", false),
        ("[a.example.com]", true),
        ("['*.example.com']", true),
        ("['x-1.example.com', '0.example.com']", true),
    ];
    for (hosts, ok) in table {
        let body = format!(
            "  parentRefs: [{{name: gw, namespace: infra, sectionName: http}}]\n  hostnames: {hosts}\n  rules:\n  - {{backendRefs: [{{name: app, port: 80}}]}}\n"
        );
        let t = run(&route("web", &body));
        let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "r").status else { panic!() };
        let a = cond(&parents[0].conditions, "Accepted");
        if ok {
            assert_eq!((a.status, a.reason), (true, "Accepted"), "{hosts}: {a:?}");
            assert!(!t.routes.routes.is_empty(), "{hosts}");
        } else {
            assert_eq!((a.status, a.reason), (false, "UnsupportedValue"), "{hosts}: {a:?}");
            assert!(a.message.contains("hostnames["), "{hosts}: {a:?}");
            assert!(t.routes.routes.is_empty(), "{hosts}: not served");
        }
    }
    let empty = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: none, namespace: infra}\nspec: {gatewayClassName: realip, listeners: []}\n";
    let t = run(empty);
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("infra"), "none").status else {
        panic!()
    };
    let a = cond(conditions, "Accepted");
    assert_eq!((a.status, a.reason), (false, "Invalid"), "{a:?}");
    assert!(a.message.contains("spec.listeners is empty"), "{a:?}");
    assert!(!cond(conditions, "Programmed").status);
    assert!(listeners.is_empty());
}

/// Review 13c C11: `allow: []` is refused (Invalid, the message says how
/// to write "everyone" and "nobody"), never read as "no allow list": with
/// no last valid version it lets nobody in; absent `allow` lets everyone
/// in.
#[test]
fn an_empty_allow_list_is_invalid_not_everyone() {
    let r = route("web", ACCESS_ROUTE);
    let t = run(&format!("{r}\n---\n{}", access_policy("  allow: []\n  deny: [192.0.2.9]\n")));
    let Status::Policy { ancestors, .. } = &status(&t, "ClientAccessPolicy", Some("web"), "p").status else { panic!() };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "Invalid"));
    assert!(c.message.contains("allow: the list is empty") && c.message.contains("leave allow out"), "{c:?}");
    let a = t.routes.routes[0].access.as_ref().expect("fails closed");
    assert_eq!(a.allow.as_deref(), Some(&[][..]), "nobody is let in");
    // Absent: no allow list (everyone but the denied).
    let t = run(&format!("{r}\n---\n{}", access_policy("  deny: [192.0.2.9]\n")));
    assert_eq!(first_ref(&t, "ClientAccessPolicy", "web", "p"), [("Accepted", true, "Accepted")]);
    let a = t.routes.routes[0].access.as_ref().expect("attached");
    assert_eq!((a.allow.as_deref(), a.deny.as_slice()), (None, &["192.0.2.9".to_owned()][..]));
    // "Nobody", as the message says to write it.
    let t = run(&format!("{r}\n---\n{}", access_policy("  deny: [0.0.0.0/0, '::/0']\n")));
    assert_eq!(first_ref(&t, "ClientAccessPolicy", "web", "p"), [("Accepted", true, "Accepted")]);
}

/// A source list that passes the CRD's CEL but not realip-core (a
/// `header:` source naming X-Forwarded-For) is an invalid edit like any
/// other: the last valid chain stays in force (never the file's weaker one).
#[test]
fn a_header_source_naming_xff_keeps_the_last_valid_client_ip_policy() {
    let good = ip_policy("edge", "2026-01-01T00:00:00Z", "192.0.2.0/24");
    let first = run(&good);
    let bad = good.replace(
        "sources: [ProxyProtocol, {header: CF-Connecting-IP}, XForwardedFor]",
        "sources: [ProxyProtocol, {header: X-Forwarded-For}]",
    );
    assert_ne!(bad, good);
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(&bad).unwrap();
    let mut inputs = o.inputs("realip", &[]);
    inputs.last_good_ip = first.ip_in_force.clone();
    let t = translate(&inputs);
    let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("infra"), "edge").status else {
        panic!()
    };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "Invalid"));
    assert!(c.message.contains("sources") && c.message.contains("last valid version"), "{c:?}");
    let ip = t.routes.listeners[0].client_ip.as_ref().expect("the last valid chain stays on the listener");
    assert_eq!(ip.sources, ["proxy-protocol", "header:CF-Connecting-IP", "xff"]);
    assert!(ip.fail_closed);
}

const ACCESS_ROUTE: &str = "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules:\n  - {backendRefs: [{name: app, port: 80}]}\n";

fn access_policy(spec: &str) -> String {
    format!("apiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {{name: p, namespace: web}}\nspec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}}]\n{spec}")
}

/// A rate without a burst is valid even below one request per second
/// (burst defaults to at least 1), and an invalid edit of an access policy
/// keeps its last valid lists: an allow list is never dropped (fail open).
#[test]
fn an_invalid_edit_keeps_the_last_valid_access_policy() {
    let r = route("web", ACCESS_ROUTE);
    let slow = access_policy("  allow: [192.0.2.0/24]\n  rateLimit: {perSecond: 0.5}\n");
    let t = run(&format!("{r}\n---\n{slow}"));
    assert_eq!(first_ref(&t, "ClientAccessPolicy", "web", "p"), [("Accepted", true, "Accepted")]);
    let a = t.routes.routes[0].access.as_ref().unwrap();
    let rl = a.rate_limit.as_ref().unwrap();
    assert_eq!((rl.per_second, rl.burst), (0.5, 1.0));
    let in_force = t.access_in_force.clone();
    assert_eq!(in_force["web/p"].allow.as_deref(), Some(&["192.0.2.0/24".to_owned()][..]));
    // Edited into an invalid one: the allow list and the rate stay.
    let bad = access_policy("  allow: [192.0.2.0/24]\n  rateLimit: {perSecond: 5, burst: 0.5}\n");
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(&format!("{r}\n---\n{bad}")).unwrap();
    let mut inputs = o.inputs("realip", &[]);
    inputs.last_good_access = in_force;
    let t = translate(&inputs);
    let Status::Policy { ancestors, .. } = &status(&t, "ClientAccessPolicy", Some("web"), "p").status else { panic!() };
    let cond = &ancestors[0].conditions[0];
    assert_eq!((cond.status, cond.reason), (false, "Invalid"));
    assert!(cond.message.contains("burst") && cond.message.contains("last valid version"), "{cond:?}");
    let a = t.routes.routes[0].access.as_ref().expect("the last valid access policy stays");
    assert_eq!(a.allow.as_deref(), Some(&["192.0.2.0/24".to_owned()][..]));
    assert_eq!(a.rate_limit.as_ref().map(|r| r.burst), Some(1.0));
    assert_eq!(&t.access_in_force["web/p"], &**a, "fed back again");
}

/// A Gateway target with sectionName is refused alone: the policy's other
/// targets attach.
#[test]
fn a_gateway_listener_target_is_refused_alone() {
    let r = route("web", ACCESS_ROUTE);
    let p = "apiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: gwp, namespace: infra}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}, {group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: http}]\n  allow: [192.0.2.0/24]\n";
    let t = run(&format!("{r}\n---\n{p}"));
    let Status::Policy { ancestors, .. } = &status(&t, "ClientAccessPolicy", Some("infra"), "gwp").status else {
        panic!()
    };
    let got: Vec<(bool, &str)> = ancestors.iter().map(|a| (a.conditions[0].status, a.conditions[0].reason)).collect();
    assert_eq!(got, [(true, "Accepted"), (false, "Invalid")]);
    assert!(ancestors[1].conditions[0].message.contains("sectionName"), "{:?}", ancestors[1]);
    let a = t.routes.routes[0].access.as_ref().expect("the Gateway target attached");
    assert_eq!(a.allow.as_deref(), Some(&["192.0.2.0/24".to_owned()][..]));
}

/// A route's own ClientAccessPolicy (a tenant's) cannot lift the Gateway
/// owner's: deny lists add up, allow lists intersect, and both rate
/// limits are counted (the Gateway's in its own, shared bucket).
#[test]
fn a_route_policy_cannot_lift_the_gateway_policy() {
    let r = route("web", ACCESS_ROUTE);
    let gw = "apiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: gwp, namespace: infra}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n  allow: [192.0.2.0/24, 2001:db8::/32]\n  deny: [192.0.2.9]\n  rateLimit: {perSecond: 50}\n";
    let own = |spec: &str| {
        format!("apiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {{name: p, namespace: web}}\nspec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}}]\n{spec}")
    };
    // Rate limit only: the Gateway's lists stay in force.
    let t = run(&format!("{r}\n---\n{gw}\n---\n{}", own("  rateLimit: {perSecond: 5}\n")));
    let a = t.routes.routes[0].access.as_ref().expect("policies attached");
    assert_eq!(a.allow.as_deref(), Some(&["192.0.2.0/24".to_owned(), "2001:db8::/32".to_owned()][..]));
    assert_eq!(a.deny, ["192.0.2.9"]);
    assert_eq!(a.rate_limit.as_ref().map(|r| r.per_second), Some(5.0));
    assert_eq!(a.policy, "web/p");
    let gw_rl = a.gateway_rate_limit.as_ref().expect("the Gateway's limit is counted too");
    assert_eq!((gw_rl.per_second, gw_rl.scope.as_str()), (50.0, "clientaccesspolicy:infra/gwp"));
    // Both limits are counted, each as written in its own policy's bucket
    // (review 13c C13): a looser route limit (review 13 M2) or a lower
    // rate with a huge burst (review 13b N3) leaves the Gateway's bucket
    // in force, shared with every other route of the Gateway.
    let gw_small = gw.replace("{perSecond: 50}", "{perSecond: 1, burst: 1}");
    for (gateway, own_spec, own_limit, gw_limit) in [
        (gw, "  rateLimit: {perSecond: 1000, burst: 1000}\n", (1000.0, 1000.0), (50.0, 50.0)),
        (&gw_small, "  rateLimit: {perSecond: 0.99, burst: 1000}\n", (0.99, 1000.0), (1.0, 1.0)),
    ] {
        let t = run(&format!("{r}\n---\n{gateway}\n---\n{}", own(own_spec)));
        let a = t.routes.routes[0].access.as_ref().expect("policies attached");
        let (rl, g) = (a.rate_limit.as_ref().unwrap(), a.gateway_rate_limit.as_ref().unwrap());
        assert_eq!(
            (rl.per_second, rl.burst, rl.scope.as_str()),
            (own_limit.0, own_limit.1, "clientaccesspolicy:web/p")
        );
        assert_eq!((g.per_second, g.burst, g.scope.as_str()), (gw_limit.0, gw_limit.1, "clientaccesspolicy:infra/gwp"));
    }
    // Wider and disjoint allow lists: only what both allow; denies add up;
    // no own rate limit: the Gateway's.
    let t = run(&format!(
        "{r}\n---\n{gw}\n---\n{}",
        own("  allow: [0.0.0.0/0, 198.51.100.0/24, 2001:db8:1::/48]\n  deny: [192.0.2.10, 192.0.2.9]\n")
    ));
    let a = t.routes.routes[0].access.as_ref().expect("policies attached");
    assert_eq!(a.allow.as_deref(), Some(&["192.0.2.0/24".to_owned(), "2001:db8:1::/48".to_owned()][..]));
    assert_eq!(a.deny, ["192.0.2.9", "192.0.2.10"]);
    assert_eq!(a.rate_limit.as_ref().map(|r| r.per_second), Some(50.0));
    assert_eq!(a.gateway_rate_limit, None, "the Gateway's limit alone, counted once");
    // Nothing in common: nobody is let in (an empty list, not none).
    let t = run(&format!("{r}\n---\n{gw}\n---\n{}", own("  allow: [198.51.100.0/24]\n")));
    let a = t.routes.routes[0].access.as_ref().expect("policies attached");
    assert_eq!(a.allow.as_deref(), Some(&[][..]));
}

/// A path match the proxy could never match (it matches normalized request
/// paths) is refused in status, never Accepted and silently unserved.
#[test]
fn a_path_that_is_not_normalized_is_unsupported() {
    for (value, why) in [
        ("/%7Ex", "write it as is"),
        ("/a%00b", "refused"),
        ("/caf%c3%a9", "upper case"),
        ("/a/%2e%2e/b", "write it as is"),
        ("/a/../b", "segments"),
        ("/a//b", "segments"),
        ("/a%2Fb", "refused"),
        ("/a%zz", "hex digits"),
    ] {
        let r = route(
            "web",
            &format!("  parentRefs: [{{name: gw, namespace: infra, sectionName: http}}]\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: '{value}'}}}}]\n    backendRefs: [{{name: app, port: 80}}]\n"),
        );
        let t = run(&r);
        let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "r").status else { panic!() };
        let c = cond(&parents[0].conditions, "Accepted");
        assert_eq!((c.status, c.reason), (false, "UnsupportedValue"), "{value}");
        assert!(c.message.contains(value) && c.message.contains(why), "{value}: {}", c.message);
        assert!(t.routes.routes.is_empty(), "{value}");
    }
    let ok = route(
        "web",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: '/caf%C3%A9'}}]\n    backendRefs: [{name: app, port: 80}]\n",
    );
    assert_eq!(run(&ok).routes.routes.len(), 1);
}

/// A filter value the proxy cannot apply (CR / LF in a header value, a
/// redirect host that is not a DNS name) is `Accepted: False,
/// UnsupportedValue` naming the field — with `PartiallyInvalid` when other
/// rules are fine — and its rule is still routed, to 500 (no filter, one
/// unresolved backend): its requests never fall through to another rule.
#[test]
fn a_filter_the_proxy_cannot_apply_is_refused_and_its_rule_answers_500() {
    let t = run(&route(
        "web",
        r#"  parentRefs: [{name: gw, namespace: infra, sectionName: http}]
  hostnames: [app.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /admin}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: X-Auth-Required, value: "yes\r\nX-Admin: 1"}]}
    backendRefs: [{name: app, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /go}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: "bad host"}}]
  - backendRefs: [{name: app, port: 80}]
"#,
    ));
    let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "r").status else { panic!() };
    let accepted = cond(&parents[0].conditions, "Accepted");
    assert_eq!((accepted.status, accepted.reason), (false, "UnsupportedValue"));
    for field in [
        r#"rules[0].filters[0].requestHeaderModifier.set[0].value: "yes\r\nX-Admin: 1""#,
        r#"rules[1].filters[0].requestRedirect.hostname: "bad host""#,
        "answered 500",
    ] {
        assert!(accepted.message.contains(field), "{field}: {}", accepted.message);
    }
    assert!(!accepted.message.contains('\r'), "escaped: {}", accepted.message);
    let partial = cond(&parents[0].conditions, "PartiallyInvalid");
    assert_eq!((partial.status, partial.reason), (true, "UnsupportedValue"));
    let by_name = |n: &str| t.routes.routes.iter().find(|r| r.name == n).unwrap_or_else(|| panic!("{n}"));
    for bad in ["httproute/web/r/0/0", "httproute/web/r/1/0"] {
        let r = by_name(bad);
        assert!(r.filters.is_empty(), "{r:?}");
        assert_eq!(*r.backends, [WeightedBackend { backend: None, weight: 1 }], "500");
    }
    assert_eq!(by_name("httproute/web/r/2/0").backends[0].backend.as_deref(), Some("web/app:80"));
    let Status::Gateway { listeners, .. } = &status(&t, "Gateway", Some("infra"), "gw").status else { panic!() };
    assert_eq!(listeners[0].attached_routes, 1);
    assert!(t.problems().iter().any(|p| p.reason == "UnsupportedValue"), "logged: {:?}", t.problems());

    // Every rule invalid: no PartiallyInvalid, still 500 rather than nothing.
    let t = run(&route(
        "web",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules:\n  - filters: [{type: URLRewrite, urlRewrite: {hostname: \"a b\"}}]\n    backendRefs: [{name: app, port: 80}]\n",
    ));
    let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "r").status else { panic!() };
    assert_eq!(cond(&parents[0].conditions, "Accepted").reason, "UnsupportedValue");
    assert!(parents[0].conditions.iter().all(|c| c.kind != "PartiallyInvalid"));
    assert_eq!(*t.routes.routes[0].backends, [WeightedBackend { backend: None, weight: 1 }]);
}

/// [`run`] with the proxy's binds known: `(name, gateway_ports)`.
fn run_with_binds(extra: &str, binds: &[(&str, &[u16])]) -> Translation {
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(extra).unwrap();
    let mut inp = o.inputs("realip", &["198.51.100.1".to_owned()]);
    inp.binds = Some(
        binds
            .iter()
            .map(|(name, ports)| crate::routes::Bind {
                name: (*name).to_owned(),
                gateway_ports: ports.to_vec(),
                tls_kubernetes: false,
                ..crate::routes::Bind::default()
            })
            .collect(),
    );
    translate(&inp)
}

/// A Gateway listener whose port no `[[listener]]` of the proxy serves is
/// not Programmed (the message names the port), nor is its Gateway; once
/// a bind serves it, both are.
#[test]
fn a_listener_no_bind_serves_is_not_programmed() {
    let t = run_with_binds("", &[("web", &[80][..])]);
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("infra"), "gw").status else {
        panic!()
    };
    let http = cond(&listeners[0].conditions, "Programmed");
    assert_eq!((http.status, http.reason), (true, "Programmed"));
    let same = cond(&listeners[1].conditions, "Programmed");
    assert_eq!((same.status, same.reason), (false, "Invalid"));
    assert!(same.message.contains("8080 in its gateway_ports"), "{}", same.message);
    let gw = cond(conditions, "Programmed");
    assert_eq!((gw.status, gw.reason), (false, "Invalid"));
    assert!(gw.message.contains("same (port 8080)"), "{}", gw.message);
    assert!(cond(conditions, "Accepted").status, "accepted all the same");
    let t = run_with_binds("", &[("a", &[80][..]), ("b", &[8080][..])]);
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("infra"), "gw").status else {
        panic!()
    };
    assert!(cond(conditions, "Programmed").status);
    assert!(listeners.iter().all(|l| cond(&l.conditions, "Programmed").status));
    // One bind serving both ports merges them: two listeners without a
    // hostname there are not distinct, and the later one is refused.
    let t = run_with_binds("", &[("web", &[80, 8080][..])]);
    let Status::Gateway { listeners, .. } = &status(&t, "Gateway", Some("infra"), "gw").status else { panic!() };
    let c = cond(&listeners[1].conditions, "Conflicted");
    assert_eq!((c.status, c.reason), (true, "HostnameConflict"));
    assert!(c.message.contains("serves ports 80 and 8080"), "{c:?}");
    assert!(cond(&listeners[0].conditions, "Programmed").status);
}

/// Two listeners on different ports that one `[[listener]]` of the proxy
/// serves together are one stream of connections: with different chains
/// the later listener is Conflicted and not served, its policy Conflicted
/// naming the bind and the other chain; the earlier keeps its policy. On
/// separate binds both are accepted.
#[test]
fn client_ip_policies_conflict_on_one_bind() {
    let gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: two, namespace: infra, creationTimestamp: '2026-01-01T00:00:00Z'}\nspec:\n  gatewayClassName: realip\n  listeners:\n  - {name: x, port: 9000, protocol: HTTP, hostname: x.example.com}\n  - {name: y, port: 9001, protocol: HTTP, hostname: y.example.com}\n---\n";
    let section = |name: &str, listener: &str, trusted: &str| {
        ip_policy(name, "2026-01-01T00:00:00Z", trusted)
            .replace("name: gw}", &format!("name: two, sectionName: {listener}}}"))
    };
    let listener = |t: &Translation, i: usize| {
        let Status::Gateway { listeners, .. } = &status(t, "Gateway", Some("infra"), "two").status else { panic!() };
        listeners[i].conditions.clone()
    };
    let policies =
        gw.to_owned() + &section("on-x", "x", "192.0.2.0/24") + "---" + &section("on-y", "y", "198.51.100.0/24");
    let t = run_with_binds(&policies, &[("web", &[9000, 9001][..])]);
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "on-x"), [("Accepted", true, "Accepted")]);
    let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("infra"), "on-y").status else {
        panic!()
    };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "Conflicted"));
    assert!(c.message.contains("[[listener]] `web`") && c.message.contains("infra/on-x"), "{}", c.message);
    assert_eq!(cond(&listener(&t, 1), "Conflicted").reason, "ClientIPPolicyConflict");
    assert!(cond(&listener(&t, 0), "Programmed").status);
    let t = run_with_binds(&policies, &[("a", &[9000][..]), ("b", &[9001][..])]);
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "on-x"), [("Accepted", true, "Accepted")]);
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "on-y"), [("Accepted", true, "Accepted")]);
    // A policy on the later listener and none on the earlier conflict
    // too; the message says the other side is the file's chain.
    let t = run_with_binds(&(gw.to_owned() + &section("on-y", "y", "192.0.2.0/24")), &[("web", &[9000, 9001][..])]);
    let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("infra"), "on-y").status else {
        panic!()
    };
    assert!(ancestors[0].conditions[0].message.contains("no ClientIPPolicy"), "{:?}", ancestors[0]);
}

/// Gateway `infra/tls` with one HTTPS listener `s` naming `refs`, Secret
/// `infra/{secret}` holding `crt` and `key` (base64, or `CRT_B64` /
/// `KEY_B64` for the test pair), and an HTTPRoute of `web` on it.
fn tls_world(refs: &str, secret: &str, crt: &str, key: &str) -> String {
    format!(
        r"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: tls, namespace: infra}}
spec:
  gatewayClassName: realip
  listeners:
  - {{name: s, port: 443, protocol: HTTPS, tls: {{certificateRefs: [{refs}]}}, allowedRoutes: {{namespaces: {{from: All}}}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: {secret}, namespace: infra}}
type: kubernetes.io/tls
data: {{tls.crt: {crt}, tls.key: {key}}}
---
"
    ) + &route(
        "web",
        "  parentRefs: [{name: tls, namespace: infra}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n",
    )
}

/// An HTTPS listener whose only certificate cannot be loaded serves
/// nothing: `ResolvedRefs: False` and `Programmed: False` on the listener,
/// `Programmed: False` on its Gateway, and a route attached only there is
/// `Accepted: False, Pending` and not served. With a good certificate next
/// to the bad one the listener serves (ResolvedRefs still False).
#[test]
fn an_https_listener_without_a_certificate_is_not_programmed() {
    let gw = |refs: &str| tls_world(refs, "good", "CRT_B64", "KEY_B64");
    let t = run(&gw("{name: missing}"));
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("infra"), "tls").status else {
        panic!()
    };
    let c = |k: &str| {
        let c = cond(&listeners[0].conditions, k);
        (c.status, c.reason)
    };
    assert_eq!(c("ResolvedRefs"), (false, "InvalidCertificateRef"));
    assert_eq!(c("Programmed"), (false, "Invalid"));
    let p = cond(conditions, "Programmed");
    assert_eq!((p.status, p.reason), (false, "Invalid"));
    assert!(p.message.contains("s (port 443)"), "{}", p.message);
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[0], ("Accepted", false, "Pending"));
    assert_eq!(listeners[0].attached_routes, 1, "attached, though not served");
    assert!(t.routes.routes.is_empty(), "{:?}", t.routes.routes);
    assert!(t.routes.listeners.iter().all(|l| l.name != "gateway/infra/tls/s"), "{:?}", t.routes.listeners);

    let t = run(&gw("{name: missing}, {name: good}"));
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("infra"), "tls").status else {
        panic!()
    };
    assert!(!cond(&listeners[0].conditions, "ResolvedRefs").status);
    assert!(cond(&listeners[0].conditions, "Programmed").status);
    assert!(cond(conditions, "Programmed").status);
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[0], ("Accepted", true, "Accepted"));
    assert_eq!(t.routes.routes[0].listeners, ["gateway/infra/tls/s"]);
}

/// Review 19 MED-2: a Secret the proxy cannot serve (no PEM certificate, a
/// key that is not PEM, a key of another certificate) is an
/// `InvalidCertificateRef` naming what is wrong, and the listener is not
/// programmed, as for a missing Secret. Before the fix the listener said
/// `ResolvedRefs: True`, `Programmed: True`, and the proxy skipped the
/// certificate: every handshake on it failed.
#[test]
fn an_https_listener_whose_secret_cannot_be_served_is_not_programmed() {
    let other_key = {
        let pem = include_bytes!("../../testdata/other.key");
        serde_json::to_value(k8s_openapi::ByteString(pem.to_vec())).unwrap().as_str().unwrap().to_owned()
    };
    let cases = [
        ("Q0VSVA==", "KEY_B64", "tls.crt: no certificate in it"),
        ("CRT_B64", "S0VZ", "tls.key: "),
        ("CRT_B64", other_key.as_str(), "tls.key: the private key does not match the certificate"),
    ];
    for (crt, key, says) in cases {
        let gw = tls_world("{name: bad}", "bad", crt, key);
        let t = run(&gw);
        let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("infra"), "tls").status else {
            panic!()
        };
        let r = cond(&listeners[0].conditions, "ResolvedRefs");
        assert_eq!((r.status, r.reason), (false, "InvalidCertificateRef"), "{says}");
        assert!(r.message.contains("TLS Secret infra/bad") && r.message.contains(says), "{says}: {}", r.message);
        assert!(!cond(&listeners[0].conditions, "Programmed").status, "{says}");
        assert!(!cond(conditions, "Programmed").status, "{says}");
        assert!(t.routes.routes.is_empty(), "{says}: {:?}", t.routes.routes);
    }
}

/// A route attached only to a listener no bind serves is `Accepted:
/// False, Pending` (naming the port); the proxy gets no route entry for it
/// there, only its name (`pending`, once per route and listener), which it
/// logs unserved. Attached to a served and an unserved listener, it is
/// accepted, and served on the first only.
#[test]
fn a_route_on_unbound_listeners_only_is_pending() {
    let on = |section: &str| {
        route("infra", &format!("  parentRefs: [{{name: gw, namespace: infra{section}}}]\n  rules: [{{backendRefs: [{{name: other, port: 80}}]}}]\n"))
    };
    let t = run_with_binds(&on(", sectionName: same"), &[("web", &[80][..])]);
    let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("infra"), "r").status else { panic!() };
    let a = cond(&parents[0].conditions, "Accepted");
    assert_eq!((a.status, a.reason), (false, "Pending"));
    assert!(a.message.contains("8080"), "{}", a.message);
    let same =
        crate::routes::PendingRoute { origin: "httproute/infra/r".into(), listener: "gateway/infra/gw/same".into() };
    assert!(t.routes.routes.is_empty(), "{:?}", t.routes.routes);
    assert_eq!(t.routes.pending, *std::slice::from_ref(&same), "the proxy reports it");
    let t = run_with_binds(&on(""), &[("web", &[80][..])]);
    assert_eq!(first_ref(&t, "HTTPRoute", "infra", "r")[0], ("Accepted", true, "Accepted"));
    assert_eq!(t.routes.routes.len(), 1);
    assert_eq!(t.routes.routes[0].listeners, ["gateway/infra/gw/http"]);
    assert_eq!(t.routes.pending, [same]);
    // Once a bind serves 8080 the route is accepted there too.
    let t = run_with_binds(&on(", sectionName: same"), &[("web", &[80][..]), ("alt", &[8080][..])]);
    assert_eq!(first_ref(&t, "HTTPRoute", "infra", "r")[0], ("Accepted", true, "Accepted"));
    assert_eq!(t.routes.routes[0].listeners, ["gateway/infra/gw/same"]);
    assert!(t.routes.pending.is_empty());
}

/// Review 14 F4: an HTTPRoute expands to a route per parent, hostname and
/// match. Those of one rule share its match data, filters and backends
/// (one allocation, not a copy per route), and none is made for a listener
/// no bind serves (only named, once).
#[test]
fn a_big_route_shares_its_rules_and_is_not_expanded_where_unbound() {
    let value = "v".repeat(4096);
    let rule = |r: usize| {
        let matches: Vec<String> = (0..3)
            .map(|m| format!("{{path: {{type: PathPrefix, value: /r{r}m{m}}}, headers: [{{name: x-pad, value: {value}{r}{m}}}]}}"))
            .collect();
        format!(
            "{{matches: [{}], filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: x-set, value: {value}}}]}}}}], \
             backendRefs: [{{name: other, port: 80}}]}}",
            matches.join(", ")
        )
    };
    let route = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: infra}}\nspec:\n  \
         parentRefs: [{{name: gw, namespace: infra}}]\n  hostnames: [a.example.com, b.example.com, c.example.com]\n  \
         rules: [{}, {}]\n",
        rule(0),
        rule(1)
    );
    // Port 8080 (`same`) unbound: 3 hosts × 6 matches on `http` only.
    let t = run_with_binds(&route, &[("web", &[80][..])]);
    let routes = &t.routes.routes;
    assert_eq!(routes.len(), 18);
    assert!(routes.iter().all(|r| r.listeners == ["gateway/infra/gw/http"]), "{routes:?}");
    let same =
        crate::routes::PendingRoute { origin: "httproute/infra/r".into(), listener: "gateway/infra/gw/same".into() };
    assert_eq!(t.routes.pending, [same]);
    // One allocation per match (headers, query) and per rule (filters,
    // backends), whatever the number of hosts.
    let distinct = |f: &dyn Fn(&Route) -> usize| routes.iter().map(|r| f(r)).collect::<BTreeSet<usize>>().len();
    assert_eq!(distinct(&|r| Arc::as_ptr(&r.headers).cast::<()>().addr()), 6);
    assert_eq!(distinct(&|r| Arc::as_ptr(&r.query).cast::<()>().addr()), 6);
    assert_eq!(distinct(&|r| Arc::as_ptr(&r.filters).cast::<()>().addr()), 2);
    assert_eq!(distinct(&|r| Arc::as_ptr(&r.backends).cast::<()>().addr()), 2);
    assert!(routes.iter().all(|r| r.headers[0].value.len() == 4098 && r.filters.len() == 1));
    // Both ports bound: the same routes, each on both listeners.
    let t = run_with_binds(&route, &[("web", &[80][..]), ("alt", &[8080][..])]);
    assert_eq!(t.routes.routes.len(), 18);
    assert!(t.routes.routes.iter().all(|r| r.listeners.len() == 2));
    assert!(t.routes.pending.is_empty());
    // An access policy on the route: one copy of its lists for all 18.
    let allow: Vec<String> = (0..1024).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
    let policy = format!(
        "{route}---\napiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {{name: lists, namespace: infra}}\n\
         spec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}}]\n  allow: [{}]\n",
        allow.join(", ")
    );
    let t = run_with_binds(&policy, &[("web", &[80][..])]);
    let routes = &t.routes.routes;
    assert_eq!(routes.len(), 18);
    assert!(routes
        .iter()
        .all(|r| r.access.as_ref().is_some_and(|a| a.allow.as_ref().is_some_and(|l| l.len() == 1024))));
    let distinct = routes.iter().filter_map(|r| r.access.as_ref()).map(|a| Arc::as_ptr(a).addr());
    assert_eq!(distinct.collect::<BTreeSet<usize>>().len(), 1);
}

/// One object of the cache test's world, with the uid and
/// `resourceVersion` an API server gives every object.
fn object(uid: &str, version: u32, api: &str, kind: &str, name: &str, namespace: &str, rest: &str) -> String {
    let ns = if namespace.is_empty() { String::new() } else { format!(", namespace: {namespace}") };
    format!(
        "apiVersion: {api}\nkind: {kind}\nmetadata: {{name: {name}{ns}, uid: {uid}, resourceVersion: '{version}', \
         creationTimestamp: '2026-01-01T00:00:00Z', labels: {{kubernetes.io/service-name: app}}}}\n{rest}\n---\n"
    )
}

/// The cache changes nothing but speed: through a sequence of changes of
/// every kind a route depends on (or not), a translation reusing the
/// previous one's per-route results equals a translation from scratch;
/// and routes nothing touched are the very values the previous
/// translation served (reused, not recomputed).
#[test]
#[allow(clippy::too_many_lines)] // one world, then its changes in order
fn a_translation_with_the_cache_equals_one_without() {
    use super::translate::{translate_with, RouteCache};
    use std::collections::BTreeMap;
    type Change = Box<dyn Fn(&mut BTreeMap<&str, String>)>;
    const GW: &str = "gateway.networking.k8s.io/v1";
    let route = |i: u32, version: u32, host: &str, svc: &str| {
        object(
            &format!("r{i}"),
            version,
            GW,
            "HTTPRoute",
            &format!("r{i}"),
            "web",
            &format!(
                "spec:\n  parentRefs: [{{name: gw, namespace: infra}}]\n  hostnames: [{host}]\n  rules:\n  \
                 - {{name: admin, matches: [{{path: {{value: /admin}}}}], backendRefs: [{{name: {svc}, port: 80}}]}}\n  \
                 - {{backendRefs: [{{name: {svc}, port: 80, weight: 3}}, {{name: app, port: 80}}]}}"
            ),
        )
    };
    let mut world: BTreeMap<&str, String> = BTreeMap::new();
    world.insert(
        "class",
        object("c", 1, GW, "GatewayClass", "realip", "", "spec: {controllerName: realip.dev/gateway-controller}"),
    );
    let gateway = |version: u32, host: &str| {
        object("g", version, GW, "Gateway", "gw", "infra", &format!(
            "spec:\n  gatewayClassName: realip\n  listeners:\n  - {{name: http, port: 80, protocol: HTTP, hostname: '{host}', allowedRoutes: {{namespaces: {{from: All}}}}}}"
        ))
    };
    world.insert("gateway", gateway(1, "*.example.com"));
    world
        .insert("app", object("s1", 1, "v1", "Service", "app", "web", "spec: {ports: [{port: 80, targetPort: 8080}]}"));
    world
        .insert("api", object("s2", 1, "v1", "Service", "api", "web", "spec: {ports: [{port: 80, targetPort: 8080}]}"));
    let other = |version: u32, port: u16| {
        object("s3", version, "v1", "Service", "other", "web", &format!("spec: {{ports: [{{port: {port}}}]}}"))
    };
    world.insert("other", other(1, 80));
    let slice = |version: u32, ip: &str| {
        object("e1", version, "discovery.k8s.io/v1", "EndpointSlice", "app-1", "web", &format!(
            "addressType: IPv4\nports: [{{port: 8080}}]\nendpoints: [{{addresses: [{ip}], conditions: {{ready: true}}}}]"
        ))
    };
    world.insert("slice", slice(1, "192.0.2.10"));
    for i in 0..6 {
        world
            .insert(["r0", "r1", "r2", "r3", "r4", "r5"][i as usize], route(i, 1, &format!("h{i}.example.com"), "api"));
    }
    let policy = |uid: &str, name: &str, target: &str, rule: &str| {
        object(
            uid,
            1,
            "realip.dev/v1alpha1",
            "ClientAccessPolicy",
            name,
            if target == "Gateway" { "infra" } else { "web" },
            &format!(
                "spec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: {target}, name: {}{rule}}}]\n  {}",
                if target == "Gateway" { "gw" } else { "r1" },
                if target == "Gateway" { "deny: [203.0.113.0/24]" } else { "allow: [198.51.100.0/24]" }
            ),
        )
    };
    world.insert("gwpolicy", policy("p1", "floor", "Gateway", ""));
    world.insert("rulepolicy", policy("p2", "admins", "HTTPRoute", ", sectionName: admin"));
    let translate_both = |world: &BTreeMap<&str, String>, cache: &mut RouteCache| {
        let mut o = Objects::default();
        o.add_yaml(&world.values().cloned().collect::<String>()).unwrap();
        let inputs = o.inputs("realip", &["198.51.100.1".to_owned()]);
        let (cached, fresh) = (translate_with(&inputs, cache), translate(&inputs));
        assert_eq!(cached, fresh);
        cached
    };
    let same = |a: &Translation, b: &Translation, route: &str| {
        let find = |t: &Translation| {
            t.routes.routes.iter().find(|r| r.name.starts_with(&format!("httproute/web/{route}/"))).cloned().unwrap()
        };
        std::sync::Arc::ptr_eq(&find(a), &find(b))
    };
    let mut cache = RouteCache::default();
    let mut before = translate_both(&world, &mut cache);
    assert_eq!(before.routes.routes.len(), 12);
    assert!(before.routes.routes.iter().all(|r| r.access.as_ref().is_some_and(|a| a.deny == ["203.0.113.0/24"])));
    let steps: Vec<(&str, Change, bool)> = vec![
        ("nothing", Box::new(|_| {}), true),
        (
            "a route's hostname",
            Box::new(move |w| {
                w.insert("r2", route(2, 2, "moved.example.com", "api"));
            }),
            true,
        ),
        (
            "endpoints",
            Box::new(move |w| {
                w.insert("slice", slice(2, "192.0.2.11"));
            }),
            true,
        ),
        (
            "a route removed",
            Box::new(|w| {
                w.remove("r4");
            }),
            true,
        ),
        (
            "a route added",
            Box::new(move |w| {
                w.insert("r6", route(6, 1, "h6.example.com", "app"));
            }),
            true,
        ),
        // Review 14 L5: a Service no route names changes nothing.
        (
            "a Service no route names",
            Box::new(move |w| {
                w.insert("other", other(2, 81));
            }),
            true,
        ),
        (
            "a Service no route names removed",
            Box::new(|w| {
                w.remove("other");
            }),
            true,
        ),
        // A route naming a Service not there yet is translated again when
        // it comes (the equality with a fresh translation checks it).
        (
            "a route naming a missing Service",
            Box::new(move |w| {
                w.insert("r7", route(7, 1, "h7.example.com", "late"));
            }),
            true,
        ),
        (
            "the missing Service created",
            Box::new(|w| {
                w.insert(
                    "late",
                    object("s4", 1, "v1", "Service", "late", "web", "spec: {ports: [{port: 80, targetPort: 8080}]}"),
                );
            }),
            true,
        ),
        (
            "a Service port",
            Box::new(|w| {
                w.insert(
                    "api",
                    object("s2", 2, "v1", "Service", "api", "web", "spec: {ports: [{port: 81, targetPort: 8080}]}"),
                );
            }),
            false,
        ),
        (
            "the rule's policy removed",
            Box::new(|w| {
                w.remove("rulepolicy");
            }),
            true,
        ),
        // Written again with the same listener (a new resourceVersion):
        // what r3 read of the Gateway is the same.
        (
            "the Gateway, its listener the same",
            Box::new(move |w| {
                w.insert("gateway", gateway(2, "*.example.com"));
            }),
            true,
        ),
        (
            "the Gateway's listener",
            Box::new(move |w| {
                w.insert("gateway", gateway(3, "*.com"));
            }),
            false,
        ),
        // r3 loses the Gateway's deny list: a new value.
        (
            "the Gateway's policy removed",
            Box::new(|w| {
                w.remove("gwpolicy");
            }),
            false,
        ),
        ("nothing again", Box::new(|_| {}), true),
    ];
    for (what, change, reused) in steps {
        change(&mut world);
        let now = translate_both(&world, &mut cache);
        // r3 changes in none of the steps: its route is the previous
        // value exactly when nothing it depends on changed.
        assert_eq!(same(&before, &now, "r3"), reused, "after a change of {what}");
        before = now;
    }
    assert_eq!(
        before.routes.backends.iter().find(|b| b.name == "web/app:80").unwrap().endpoints[0].to_string(),
        "192.0.2.11:8080"
    );
}

/// Review 16 M2: the floor of a (Gateway ClientAccessPolicy, route
/// ClientAccessPolicy) pair depends on the two policies only. One route
/// with 16 named rules on 16 Gateways (256 routes), a Gateway policy and a
/// route policy of 1,024 CIDRs each: one floor computed, shared by the 256
/// routes, and none at the next translations while neither policy
/// changes (other changes included); a policy edit computes one again and
/// drops the old; and every result equals a translation from scratch.
#[test]
fn a_policy_pair_floor_is_computed_once_across_translations() {
    use super::translate::{translate_with, RouteCache};
    use std::collections::BTreeMap;
    const GW: &str = "gateway.networking.k8s.io/v1";
    let mut world: BTreeMap<String, String> = BTreeMap::new();
    let put = |w: &mut BTreeMap<String, String>, k: &str, v: String| {
        w.insert(k.to_owned(), v);
    };
    put(
        &mut world,
        "class",
        object("c", 1, GW, "GatewayClass", "realip", "", "spec: {controllerName: realip.dev/gateway-controller}"),
    );
    for j in 0..16 {
        let spec = format!(
            "spec:\n  gatewayClassName: realip\n  listeners:\n  - {{name: http, port: 80, protocol: HTTP, hostname: h{j}.example.com}}"
        );
        put(&mut world, &format!("g{j}"), object(&format!("g{j}"), 1, GW, "Gateway", &format!("g{j}"), "evil", &spec));
    }
    let service = |version: u32| {
        object("s", version, "v1", "Service", "app", "evil", "spec: {ports: [{port: 80, targetPort: 8080}]}")
    };
    put(&mut world, "svc", service(1));
    let parents: Vec<String> = (0..16).map(|j| format!("{{name: g{j}}}")).collect();
    let rules: Vec<String> = (0..16)
        .map(|r| {
            format!("  - {{name: r{r}, matches: [{{path: {{type: PathPrefix, value: /r{r}}}}}], backendRefs: [{{name: app, port: 80}}]}}")
        })
        .collect();
    let spec = format!("spec:\n  parentRefs: [{}]\n  rules:\n{}", parents.join(", "), rules.join("\n"));
    put(&mut world, "route", object("r", 1, GW, "HTTPRoute", "r0", "evil", &spec));
    let cidrs = |first: u32| (0..1024).map(|i| format!("{first}.{}.{}.0/24", i / 256, i % 256)).collect::<Vec<_>>();
    let targets: Vec<String> =
        (0..16).map(|j| format!("{{group: gateway.networking.k8s.io, kind: Gateway, name: g{j}}}")).collect();
    let policy = |uid: &str, version: u32, name: &str, targets: &str, allow: &[String]| {
        let spec = format!("spec:\n  targetRefs: [{targets}]\n  allow: [{}]", allow.join(", "));
        object(uid, version, "realip.dev/v1alpha1", "ClientAccessPolicy", name, "evil", &spec)
    };
    put(&mut world, "gwp", policy("p1", 1, "gwp", &targets.join(", "), &cidrs(10)));
    let on_route = "{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r0}";
    put(&mut world, "rp0", policy("p2", 1, "rp0", on_route, &cidrs(11)));
    let translate_both = |world: &BTreeMap<String, String>, cache: &mut RouteCache| {
        let mut o = Objects::default();
        o.add_yaml(&world.values().cloned().collect::<String>()).unwrap();
        let inputs = o.inputs("realip", &["198.51.100.1".to_owned()]);
        let (cached, fresh) = (translate_with(&inputs, cache), translate(&inputs));
        assert_eq!(cached, fresh);
        cached
    };
    let mut cache = RouteCache::default();
    let t = translate_both(&world, &mut cache);
    assert_eq!(t.routes.routes.len(), 256);
    let first = t.routes.routes[0].access.clone().expect("both policies apply");
    assert_eq!((first.policy.as_str(), first.allow.as_deref()), ("evil/rp0", Some(&[][..])), "nothing in common");
    assert!(t.routes.routes.iter().all(|r| r.access.as_ref().is_some_and(|a| Arc::ptr_eq(a, &first))), "shared");
    assert_eq!(cache.floors(), (1, 1), "one floor for the pair, not one per (rule, Gateway)");
    let t = translate_both(&world, &mut cache);
    assert_eq!(cache.floors(), (1, 1), "none at the next translation");
    assert!(Arc::ptr_eq(t.routes.routes[0].access.as_ref().unwrap(), &first), "the routes as last served");
    // A Service change: the route is translated anew, its floor is kept.
    put(&mut world, "svc", service(2));
    translate_both(&world, &mut cache);
    assert_eq!(cache.floors(), (1, 1), "none after a Service change");
    // The route policy edited: one floor again, the old one dropped.
    let mut edited = cidrs(11);
    edited[0] = "10.0.0.0/16".to_owned();
    put(&mut world, "rp0", policy("p2", 2, "rp0", on_route, &edited));
    let t = translate_both(&world, &mut cache);
    assert_eq!(cache.floors(), (2, 1), "one for the edited pair");
    let want: Vec<String> = (0..256).map(|i| format!("10.0.{i}.0/24")).collect();
    assert!(t.routes.routes.iter().all(|r| r.access.as_ref().and_then(|a| a.allow.as_ref()) == Some(&want)));
    // The Gateway policy removed: the route policy alone, no floor kept.
    world.remove("gwp");
    let t = translate_both(&world, &mut cache);
    assert_eq!(cache.floors(), (2, 0));
    assert!(t.routes.routes.iter().all(|r| r.access.as_ref().and_then(|a| a.allow.as_ref()) == Some(&edited)));
}

/// Listener isolation (`GatewayHTTPListenerIsolation`): a request is
/// handled only by the routes of the most specific listener on its port
/// that matches its host. A route on `*.example.com` keeps its wildcard
/// but leaves `a.example.com` (another listener's) out; a route naming
/// `a.example.com` on the wildcard listener does not serve it there; a
/// listener on another port is not a sibling. (Ports other than the base
/// Gateway's: a listener without hostname on its port 80 would conflict.)
#[test]
fn routes_keep_to_the_most_specific_listener_on_their_port() {
    let gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: iso, namespace: web}\nspec:\n  gatewayClassName: realip\n  listeners:\n  - {name: a, port: 8090, protocol: HTTP, hostname: a.example.com}\n  - {name: wild, port: 8090, protocol: HTTP, hostname: '*.example.com'}\n  - {name: deep, port: 8090, protocol: HTTP, hostname: '*.b.example.com'}\n  - {name: any, port: 8090, protocol: HTTP}\n  - {name: other, port: 8091, protocol: HTTP, hostname: '*.example.com'}\n";
    let route = |name: &str, section: &str, hosts: &str, path: &str| {
        format!("---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: web}}\nspec:\n  parentRefs: [{{name: iso, sectionName: {section}}}]\n  hostnames: {hosts}\n  rules: [{{matches: [{{path: {{type: PathPrefix, value: {path}}}}}], backendRefs: [{{name: app, port: 80}}]}}]\n")
    };
    let t = run(&format!(
        "{gw}{}{}{}{}{}",
        route("ra", "a", "[]", "/app"),
        route("rw", "wild", "[]", "/admin"),
        route("named", "wild", "[a.example.com, c.example.com, '*.b.example.com', '*.example.com']", "/named"),
        route("rany", "any", "[]", "/"),
        route("ro", "other", "[]", "/o"),
    ));
    let served = |name: &str| -> Vec<(Option<&str>, Vec<&str>)> {
        t.routes
            .routes
            .iter()
            .filter(|r| r.origin == format!("httproute/web/{name}"))
            .map(|r| (r.host.as_deref(), r.except_hosts.iter().map(String::as_str).collect()))
            .collect()
    };
    assert_eq!(served("ra"), [(Some("a.example.com"), vec![])]);
    assert_eq!(served("rw"), [(Some("*.example.com"), vec!["*.b.example.com", "a.example.com"])]);
    // a.example.com and *.b.example.com belong to more specific listeners.
    let mut named = served("named");
    named.sort();
    assert_eq!(
        named,
        [(Some("*.example.com"), vec!["*.b.example.com", "a.example.com"]), (Some("c.example.com"), vec![])]
    );
    assert_eq!(served("rany"), [(None, vec!["*.b.example.com", "*.example.com", "a.example.com"])]);
    assert_eq!(served("ro"), [(Some("*.example.com"), vec![])], "port 8091 has no more specific listener");
    // Attachment and status are unchanged: the routes are accepted.
    for name in ["ra", "rw", "named", "rany", "ro"] {
        let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), name).status else { panic!() };
        assert!(cond(&parents[0].conditions, "Accepted").status, "{name}: {parents:?}");
    }
}

/// Review 14 F5: ports one `[[listener]]` serves together are one stream
/// of connections, for isolation as for conflicts: with `specific`
/// (a.example.com, port 80) and `wild` (`*.example.com`, port 8080) merged
/// on bind `web`, a route on `wild` naming a.example.com does not serve it
/// and one for the wildcard leaves it out; on separate binds (or with the
/// binds not known) the ports stay apart and `wild`'s routes serve it.
#[test]
fn listener_isolation_follows_ports_merged_on_one_bind() {
    let gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: iso, namespace: web}\nspec:\n  gatewayClassName: realip\n  listeners:\n  - {name: specific, port: 9080, protocol: HTTP, hostname: a.example.com}\n  - {name: wild, port: 9081, protocol: HTTP, hostname: '*.example.com', allowedRoutes: {namespaces: {from: All}}}\n";
    let route = |ns: &str, name: &str, hosts: &str| {
        format!("---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  parentRefs: [{{name: iso, namespace: web, sectionName: wild}}]\n  hostnames: {hosts}\n  rules: [{{matches: [{{path: {{type: PathPrefix, value: /admin}}}}], backendRefs: [{{name: app, port: 80}}]}}]\n")
    };
    let objects = format!("{gw}{}{}", route("evil", "grab", "[a.example.com]"), route("evil", "all", "[]"));
    let served = |t: &Translation, name: &str| -> Vec<(Option<String>, Vec<String>)> {
        t.routes
            .routes
            .iter()
            .filter(|r| r.origin == format!("httproute/evil/{name}"))
            .map(|r| (r.host.clone(), r.except_hosts.to_vec()))
            .collect()
    };
    let merged = run_with_binds(&objects, &[("web", &[9080, 9081][..])]);
    assert_eq!(served(&merged, "grab"), [], "a.example.com belongs to `specific` on the merged bind");
    assert_eq!(served(&merged, "all"), [(Some("*.example.com".to_owned()), vec!["a.example.com".to_owned()])]);
    // Status is unchanged: accepted on `wild` (isolation is not a refusal).
    assert_eq!(first_ref(&merged, "HTTPRoute", "evil", "grab")[0], ("Accepted", true, "Accepted"));
    for (t, what) in [
        (run_with_binds(&objects, &[("a", &[9080][..]), ("b", &[9081][..])]), "separate binds"),
        (run(&objects), "the binds not known"),
    ] {
        assert_eq!(served(&t, "grab"), [(Some("a.example.com".to_owned()), vec![])], "{what}");
        assert_eq!(served(&t, "all"), [(Some("*.example.com".to_owned()), vec![])], "{what}");
    }
    // No bind has the ports: nothing is expanded for them (review 14 F4),
    // the routes wait, named once per listener.
    let none = run_with_binds(&objects, &[("web", &[80][..])]);
    assert_eq!(served(&none, "grab"), [], "no bind has the ports");
    assert!(!none.routes.pending.is_empty(), "{:?}", none.routes.pending);
}

/// A backend weight outside the spec's 0..=1000000 is refused in status
/// (UnsupportedValue naming the field), not served as weight 0.
#[test]
fn a_weight_out_of_range_is_refused() {
    let r = route(
        "web",
        "  parentRefs: [{name: gw, namespace: infra}]\n  rules: [{backendRefs: [{name: app, port: 80, weight: -1}]}]\n",
    );
    let t = run(&r);
    let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "r").status else { panic!() };
    let a = cond(&parents[0].conditions, "Accepted");
    assert_eq!((a.status, a.reason), (false, "UnsupportedValue"));
    assert!(a.message.contains("backendRefs[0].weight -1"), "{a:?}");
    assert!(t.routes.routes.is_empty());
    let t = run(&r.replace("weight: -1", "weight: 1000000"));
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[0], ("Accepted", true, "Accepted"));
}

/// M4 (review 13): routes of kinds realip does not serve get a parent
/// entry for each parent that is realip's, never silence; parents of
/// other controllers get none; nothing of them is served or counted.
#[test]
fn unserved_route_kinds_are_not_allowed_by_listeners() {
    let t = run(r"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: web}
spec:
  parentRefs:
  - {name: gw, namespace: infra}
  - {name: gw, namespace: infra, sectionName: nope}
  - {name: theirs, namespace: infra}
  rules: [{backendRefs: [{name: app, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: t, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: same}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {name: u, namespace: web}
spec:
  parentRefs: [{name: theirs, namespace: infra}]
");
    let Status::Route { parents, .. } = &status(&t, "GRPCRoute", Some("web"), "g").status else { panic!() };
    assert_eq!(parents.len(), 2, "only realip's parent entries: {parents:#?}");
    let a = cond(&parents[0].conditions, "Accepted");
    assert_eq!((a.status, a.reason), (false, "NotAllowedByListeners"));
    assert!(a.message.contains("GRPCRoute") && a.message.contains("http, same"), "{}", a.message);
    assert_eq!(parents[0].reference.namespace.as_deref(), Some("infra"));
    let a = cond(&parents[1].conditions, "Accepted");
    assert_eq!((a.status, a.reason), (false, "NoMatchingParent"));
    assert_eq!(first_ref(&t, "TLSRoute", "infra", "t"), vec![("Accepted", false, "NotAllowedByListeners")]);
    assert!(!t.statuses.iter().any(|s| s.key.kind == "UDPRoute"), "no parent of it is realip's");
    assert!(t.routes.routes.iter().all(|r| !r.origin.contains("/g")), "{:#?}", t.routes.routes);
    let Status::Gateway { listeners, .. } = &status(&t, "Gateway", Some("infra"), "gw").status else { panic!() };
    assert!(listeners.iter().all(|l| l.attached_routes == 0), "{listeners:#?}");
}

/// M4 (review 13): a ClientAccessPolicy on an HTTPRoute (or one of its
/// rules) reports on the Gateways the route is attached to (GEP-713:
/// ancestors are usually Gateways), one entry per Gateway however many
/// targets are on it; a missing target, or a route attached to none of
/// realip's Gateways, stays the ancestor with `TargetNotFound`.
#[test]
fn a_route_access_policy_reports_on_the_routes_gateways() {
    let second = "
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw2, namespace: web, creationTimestamp: '2026-01-02T00:00:00Z'}
spec:
  gatewayClassName: realip
  listeners: [{name: http, port: 81, protocol: HTTP, hostname: two.example.com}]
";
    let r = route(
        "web",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: http}, {name: gw, namespace: infra, sectionName: same}, {name: gw2}]\n  rules:\n  - {name: admin, matches: [{path: {value: /admin}}], backendRefs: [{name: app, port: 80}]}\n  - {backendRefs: [{name: app, port: 80}]}\n",
    );
    let lone = "
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: lone, namespace: web}
spec:
  parentRefs: [{name: theirs}]
  rules: [{backendRefs: [{name: app, port: 80}]}]
";
    let policy = |name: &str, targets: &str| {
        format!("\n---\napiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {{name: {name}, namespace: web}}\nspec:\n  targetRefs: [{targets}]\n  allow: [192.0.2.0/24]\n")
    };
    let on = |name: &str, section: &str| {
        format!("{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: {name}{section}}}")
    };
    let t = run(&(r
        + second
        + lone
        + &policy("both", &format!("{}, {}", on("r", ""), on("r", ", sectionName: admin")))
        + &policy("ghost", &on("nope", ""))
        + &policy("lone", &on("lone", ""))));
    let ancestors = |name: &str| match &status(&t, "ClientAccessPolicy", Some("web"), name).status {
        Status::Policy { ancestors, .. } => ancestors
            .iter()
            .map(|a| {
                let r = &a.reference;
                let c = cond(&a.conditions, "Accepted");
                let what =
                    format!("{} {}/{}", r.kind.as_deref().unwrap_or(""), r.namespace.as_deref().unwrap_or(""), r.name);
                (what, c.status, c.reason, c.message.clone())
            })
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let both = ancestors("both");
    let refs: Vec<(&str, bool, &str)> = both.iter().map(|(w, s, r, _)| (w.as_str(), *s, *r)).collect();
    assert_eq!(refs, [("Gateway infra/gw", true, "Accepted"), ("Gateway web/gw2", true, "Accepted")], "{both:#?}");
    assert!(both[0].3.contains("HTTPRoute web/r") && both[0].3.contains("rule admin"), "{both:#?}");
    // Still applied to the route's rules.
    assert!(t.routes.routes.iter().filter(|r| r.origin == "httproute/web/r").all(|r| r.access.is_some()));
    let ghost = ancestors("ghost");
    assert_eq!((ghost[0].0.as_str(), ghost[0].1, ghost[0].2), ("HTTPRoute web/nope", false, "TargetNotFound"));
    let lone = ancestors("lone");
    assert_eq!((lone[0].0.as_str(), lone[0].1, lone[0].2), ("HTTPRoute web/lone", false, "TargetNotFound"));
    assert!(lone[0].3.contains("not attached to any Gateway realip serves"), "{lone:#?}");
    // A ClientIPPolicy's ancestors stay its targets (Gateways, listeners).
    let t = run(&ip_policy("p", "2026-01-01T00:00:00Z", "192.0.2.0/24"));
    assert_eq!(first_ref(&t, "ClientIPPolicy", "infra", "p"), [("Accepted", true, "Accepted")]);
}

/// M4 (review 13): a listener whose `allowedRoutes.kinds` are all
/// unsupported is accepted (the spec reports the kinds on ResolvedRefs:
/// False, InvalidRouteKinds), lists no supportedKinds, admits no route and
/// is not programmed; its Gateway is Accepted (every listener is) but not
/// Programmed — no longer `Accepted: True` on the listener next to
/// `ListenersNotValid` on the Gateway. It claims nothing: a newer listener
/// with the same port and hostname is not Conflicted by it.
#[test]
fn a_listener_with_only_unsupported_route_kinds_is_not_programmed() {
    let gw = "
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: kinds, namespace: web, creationTimestamp: '2026-01-02T00:00:00Z'}
spec:
  gatewayClassName: realip
  listeners:
  - {name: grpc, port: 81, protocol: HTTP, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}
  - {name: mixed, port: 82, protocol: HTTP, allowedRoutes: {kinds: [{kind: HTTPRoute}, {kind: TLSRoute}]}}
  - {name: plain, port: 81, protocol: HTTP}
";
    let r = route(
        "web",
        "  parentRefs: [{name: kinds, sectionName: grpc}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n",
    );
    let t = run(&(gw.to_owned() + "\n---\n" + &r));
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("web"), "kinds").status else {
        panic!()
    };
    let l = |name: &str| listeners.iter().find(|l| l.name == name).unwrap();
    let grpc = l("grpc");
    let c = |kind: &str| {
        let c = cond(&grpc.conditions, kind);
        (c.status, c.reason)
    };
    assert_eq!(c("Accepted"), (true, "Accepted"));
    assert_eq!(c("ResolvedRefs"), (false, "InvalidRouteKinds"));
    assert_eq!(c("Programmed"), (false, "Invalid"));
    assert_eq!(c("Conflicted"), (false, "NoConflicts"));
    assert!(grpc.supported_kinds.is_empty(), "{grpc:?}");
    assert_eq!(grpc.attached_routes, 0);
    let mixed = l("mixed");
    assert_eq!(mixed.supported_kinds, ["HTTPRoute"]);
    assert_eq!(cond(&mixed.conditions, "ResolvedRefs").reason, "InvalidRouteKinds");
    assert!(cond(&mixed.conditions, "Programmed").status, "{mixed:?}");
    let plain = l("plain");
    assert!(!cond(&plain.conditions, "Conflicted").status, "{plain:?}");
    assert!(cond(&plain.conditions, "Programmed").status, "{plain:?}");
    let accepted = cond(conditions, "Accepted");
    assert_eq!((accepted.status, accepted.reason), (true, "Accepted"));
    let programmed = cond(conditions, "Programmed");
    assert_eq!((programmed.status, programmed.reason), (false, "Invalid"));
    assert!(programmed.message.contains("grpc (port 81)"), "{}", programmed.message);
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[0], ("Accepted", false, "NotAllowedByListeners"));
    assert!(t.routes.listeners.iter().all(|l| !l.name.ends_with("/grpc")), "{:#?}", t.routes.listeners);
}

/// `HTTPRouteParentRefPort`: a parentRef with `port` attaches to the
/// parent's listeners on that port only; a port no listener has is
/// `NoMatchingParent`.
#[test]
fn a_parent_ref_port_selects_the_listeners_on_that_port() {
    let r = |port: u16| {
        format!("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: infra}}\nspec:\n  parentRefs: [{{name: gw, port: {port}}}]\n  rules: [{{backendRefs: [{{name: other, port: 80}}]}}]\n")
    };
    let t = run(&r(8080));
    assert_eq!(first_ref(&t, "HTTPRoute", "infra", "r")[0], ("Accepted", true, "Accepted"));
    let on: Vec<&Vec<String>> = t.routes.routes.iter().map(|r| &r.listeners).collect();
    assert_eq!(on, [&vec!["gateway/infra/gw/same".to_owned()]], "only the listener on port 8080");
    let Status::Gateway { listeners, .. } = &status(&t, "Gateway", Some("infra"), "gw").status else { panic!() };
    let attached: Vec<(&str, u32)> = listeners.iter().map(|l| (l.name.as_str(), l.attached_routes)).collect();
    assert_eq!(attached, [("http", 0), ("same", 1)]);
    let t = run(&r(9999));
    assert_eq!(first_ref(&t, "HTTPRoute", "infra", "r")[0], ("Accepted", false, "NoMatchingParent"));
}

/// Review 13c C7: a bind whose `gateways` admits web/gw only keeps an
/// older host-less listener of evil/gw2 off its port: `Accepted: False,
/// PortUnavailable` (message naming the bind), not programmed, not handed
/// to the proxy, its route not attached — so the victim's newer listener
/// is not Conflicted and keeps its host whatever the ages. Without
/// `gateways` the older listener wins, as documented.
#[test]
fn a_bind_admitting_one_gateway_refuses_the_listeners_of_others() {
    let world = r"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: web, creationTimestamp: '2026-06-01T00:00:00Z'}
spec:
  gatewayClassName: realip
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: a.example.com}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw2, namespace: evil, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  gatewayClassName: realip
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: grab, namespace: evil, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  parentRefs: [{name: gw2}]
  rules: [{backendRefs: [{name: other, port: 80}]}]
";
    let run_bind = |gateways: &[&str]| {
        let mut o = Objects::default();
        o.add_yaml(BASE).unwrap();
        o.add_yaml(world).unwrap();
        let mut inp = o.inputs("realip", &["198.51.100.1".to_owned()]);
        inp.binds = Some(vec![crate::routes::Bind {
            name: "web".into(),
            gateway_ports: vec![80, 8080],
            gateways: gateways.iter().map(|g| (*g).to_owned()).collect(),
            ..crate::routes::Bind::default()
        }]);
        translate(&inp)
    };
    let listener = |t: &Translation, ns: &str, name: &str| {
        let Status::Gateway { listeners, .. } = &status(t, "Gateway", Some(ns), name).status else { panic!() };
        listeners[0].conditions.clone()
    };
    // Any Gateway: the older host-less listener keeps the port's hosts.
    let t = run_bind(&[]);
    let victim = listener(&t, "web", "gw");
    assert_eq!(cond(&victim, "Conflicted").reason, "HostnameConflict");
    assert!(t.routes.listeners.iter().any(|l| l.name == "gateway/evil/gw2/http"));

    // Only web/gw: evil/gw2 (and the base world's infra/gw) is refused,
    // the victim served.
    for allowed in [&["web/gw"][..], &["web/*", "other/gw"][..]] {
        let t = run_bind(allowed);
        let evil = listener(&t, "evil", "gw2");
        let a = cond(&evil, "Accepted");
        assert_eq!((a.status, a.reason), (false, "PortUnavailable"), "{allowed:?}");
        assert!(a.message.contains("`web`") && a.message.contains("Gateway evil/gw2"), "{}", a.message);
        assert!(!cond(&evil, "Programmed").status);
        let victim = listener(&t, "web", "gw");
        assert!(!cond(&victim, "Conflicted").status, "{victim:?}");
        assert!(cond(&victim, "Programmed").status, "{victim:?}");
        let names: Vec<&str> = t.routes.listeners.iter().map(|l| l.name.as_str()).collect();
        assert!(!names.contains(&"gateway/evil/gw2/http") && names.contains(&"gateway/web/gw/http"), "{names:?}");
        assert!(t.routes.routes.iter().all(|r| r.origin != "httproute/evil/grab"));
        let grab = first_ref(&t, "HTTPRoute", "evil", "grab");
        assert!(grab.iter().any(|(k, ok, _)| *k == "Accepted" && !ok), "{grab:?}");
        assert!(t.routes.listeners.iter().all(|l| l.gateway != "evil/gw2"));
        assert!(t.routes.listeners.iter().any(|l| l.gateway == "web/gw"));
    }
}

/// Review 13d X1/X1c: listeners conflict only on a bind that serves both.
/// Two binds with the same Gateway port, each admitting one Gateway: two
/// host-less listeners do not conflict. A bind reserved for web/gw and an
/// open bind: the older host-less evil/gw2 wins the open bind only, and
/// web/gw's listener is served on the reserved one (`not_on` names the
/// other), `Programmed` with `Conflicted` saying where it is not served.
#[test]
fn listeners_conflict_only_on_a_bind_that_serves_both() {
    let world = r"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw2, namespace: evil, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  gatewayClassName: realip
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: web, creationTimestamp: '2026-06-01T00:00:00Z'}
spec:
  gatewayClassName: realip
  listeners:
  - {name: http, port: 80, protocol: HTTP}
";
    let bind = |name: &str, gateways: &[&str]| crate::routes::Bind {
        name: name.into(),
        gateway_ports: vec![80],
        gateways: gateways.iter().map(|g| (*g).to_owned()).collect(),
        ..crate::routes::Bind::default()
    };
    let run = |binds: Vec<crate::routes::Bind>| {
        let mut o = Objects::default();
        o.add_yaml(BASE.replace("port: 80,", "port: 81,").as_str()).unwrap();
        o.add_yaml(world).unwrap();
        let mut inp = o.inputs("realip", &["198.51.100.1".to_owned()]);
        inp.binds = Some(binds);
        translate(&inp)
    };
    let listener = |t: &Translation, ns: &str, name: &str| {
        let Status::Gateway { listeners, .. } = &status(t, "Gateway", Some(ns), name).status else { panic!() };
        listeners[0].conditions.clone()
    };
    let spec = |t: &Translation, name: &str| t.routes.listeners.iter().find(|l| l.name == name).cloned();
    // One bind per Gateway: no conflict, both served everywhere they are admitted.
    let t = run(vec![bind("a", &["web/gw"]), bind("b", &["evil/gw2"])]);
    let web = listener(&t, "web", "gw");
    assert!(!cond(&web, "Conflicted").status && cond(&web, "Programmed").status, "{web:?}");
    assert!(spec(&t, "gateway/web/gw/http").is_some_and(|s| s.not_on.is_empty()));
    assert!(spec(&t, "gateway/evil/gw2/http").is_some_and(|s| s.not_on.is_empty()));
    // Both on one bind (and the same port on another): the newer loses that bind only.
    let t = run(vec![bind("pub", &["web/gw"]), bind("int", &[])]);
    let web = listener(&t, "web", "gw");
    let c = cond(&web, "Conflicted");
    assert_eq!((c.status, c.reason), (true, "HostnameConflict"));
    assert!(
        c.message.contains("`int`") && c.message.contains("still served on the proxy's [[listener]] `pub`"),
        "{c:?}"
    );
    assert!(cond(&web, "Programmed").status, "{web:?}");
    assert_eq!(spec(&t, "gateway/web/gw/http").map(|s| s.not_on), Some(vec!["int".to_owned()]));
    assert!(spec(&t, "gateway/evil/gw2/http").is_some_and(|s| s.not_on.is_empty()));
    // Only one bind, serving both: the newer is not served at all, as before.
    let t = run(vec![bind("int", &[])]);
    let web = listener(&t, "web", "gw");
    assert!(cond(&web, "Conflicted").status && !cond(&web, "Programmed").status, "{web:?}");
    assert!(spec(&t, "gateway/web/gw/http").is_none());
}

/// Review 15 N4: one HTTPRoute expands to at most `MAX_ROUTE_ENTRIES`
/// routes (parents × listener hostnames × matches); one over it is refused
/// as a whole (`Accepted: False, UnsupportedValue`), one at it is served;
/// a parent written twice (`{name}` and `{name, namespace}`) counts once.
#[test]
fn one_httproute_expands_to_a_bounded_number_of_routes() {
    use super::translate::MAX_ROUTE_ENTRIES;
    let listeners: Vec<String> = (0..64)
        .map(|i| format!("  - {{name: l{i}, port: 9090, protocol: HTTP, hostname: h{i}.example.com}}"))
        .collect();
    let listeners = listeners.join("\n") + "\n";
    let gw = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: many, namespace: web}}\nspec:\n  gatewayClassName: realip\n  listeners:\n{listeners}"
    );
    let route = |name: &str, matches: usize, parents: &str| {
        let m: Vec<String> = (0..matches).map(|j| format!("{{path: {{type: PathPrefix, value: /m{j}}}}}")).collect();
        format!(
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: web}}\nspec:\n  parentRefs: {parents}\n  hostnames: ['*.example.com']\n  rules: [{{matches: [{}], backendRefs: [{{name: app, port: 80}}]}}]\n",
            m.join(", ")
        )
    };
    let one = "[{name: many}]";
    let twice = "[{name: many}, {name: many, namespace: web}]";
    assert_eq!(MAX_ROUTE_ENTRIES, 64 * 64);
    let objects = format!("{gw}{}{}{}", route("at", 64, one), route("over", 65, one), route("dup", 2, twice));
    let t = run_with_binds(&objects, &[("web", &[9090][..])]);
    let count = |name: &str| t.routes.routes.iter().filter(|r| r.origin == format!("httproute/web/{name}")).count();
    assert_eq!(count("at"), MAX_ROUTE_ENTRIES, "64 listener hostnames × 64 matches: served");
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "at")[0], ("Accepted", true, "Accepted"));
    assert_eq!(count("over"), 0, "one match more: not served");
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "over")[0], ("Accepted", false, "UnsupportedValue"));
    let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "over").status else { panic!() };
    assert!(cond(&parents[0].conditions, "Accepted").message.contains("expands to 4160 routes"), "{parents:?}");
    assert_eq!(count("dup"), 64 * 2, "the parent written twice is attached once");
}

/// Review 16 M1: the HTTPRoutes of one namespace expand to at most
/// `max_routes_per_namespace` routes together, oldest route first: one that
/// would pass the budget is refused (`Accepted: False, UnsupportedValue`,
/// naming the budget and the count) and not attached; an older one and a
/// newer one that still fits keep serving.
#[test]
fn the_httproutes_of_a_namespace_expand_to_a_bounded_number_of_routes() {
    let listeners: Vec<String> = (0..64)
        .map(|i| format!("  - {{name: l{i}, port: 9090, protocol: HTTP, hostname: h{i}.example.com}}"))
        .collect();
    let listeners = listeners.join("\n") + "\n";
    let gw = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: many, namespace: web}}\nspec:\n  gatewayClassName: realip\n  listeners:\n{listeners}"
    );
    // (name, second it was created, matches): 64 routes per match.
    let route = |name: &str, second: u32, matches: usize| {
        let m: Vec<String> = (0..matches).map(|j| format!("{{path: {{type: PathPrefix, value: /m{j}}}}}")).collect();
        format!(
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: web, creationTimestamp: '2026-01-01T00:00:{second:02}Z'}}\nspec:\n  parentRefs: [{{name: many}}]\n  hostnames: ['*.example.com']\n  rules: [{{matches: [{}], backendRefs: [{{name: app, port: 80}}]}}]\n",
            m.join(", ")
        )
    };
    // Written newest first: the order of creation counts, not the store's.
    let objects = format!("{gw}{}{}{}{}", route("d", 4, 1), route("c", 3, 2), route("b", 2, 5), route("a", 1, 4));
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(&objects).unwrap();
    let mut inp = o.inputs("realip", &["198.51.100.1".to_owned()]);
    inp.binds = Some(vec![crate::routes::Bind {
        name: "web".to_owned(),
        gateway_ports: vec![9090],
        ..crate::routes::Bind::default()
    }]);
    let run = |budget: Option<usize>| {
        let mut inp = inp.clone();
        inp.max_routes_per_namespace = budget;
        translate(&inp)
    };
    let count = |t: &Translation, name: &str| {
        t.routes.routes.iter().filter(|r| r.origin == format!("httproute/web/{name}")).count()
    };
    // The default budget takes them all.
    let t = run(None);
    assert_eq!([count(&t, "a"), count(&t, "b"), count(&t, "c"), count(&t, "d")], [256, 320, 128, 64]);
    // 640: a (256) and b (320) fit; c would make 704; d makes 640.
    let t = run(Some(640));
    assert_eq!([count(&t, "a"), count(&t, "b"), count(&t, "c"), count(&t, "d")], [256, 320, 0, 64]);
    for name in ["a", "b", "d"] {
        assert_eq!(first_ref(&t, "HTTPRoute", "web", name)[0], ("Accepted", true, "Accepted"), "{name}");
    }
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "c")[0], ("Accepted", false, "UnsupportedValue"));
    let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "c").status else { panic!() };
    let m = &cond(&parents[0].conditions, "Accepted").message;
    assert!(m.contains("expands to 704 routes") && m.contains("this one 128") && m.contains("over the 640"), "{m}");
    // Not attached: the listeners count a, b and d only.
    let Status::Gateway { listeners, .. } = &status(&t, "Gateway", Some("web"), "many").status else { panic!() };
    assert!(listeners.iter().all(|l| l.attached_routes == 3), "{listeners:?}");
    // Review 17 B1: routes past the budget (in the order they come: d, c,
    // b, a) are counted, not built: a (256) is left for over_budget, which
    // builds it in full as it fits in age order. Built in the pass: 512,
    // not all 768.
    let mut inp = inp.clone();
    inp.max_routes_per_namespace = Some(640);
    let mut cache = super::translate::RouteCache::default();
    let t = super::translate::translate_with(&inp, &mut cache);
    assert_eq!(t, translate(&inp));
    assert_eq!(cache.built(), 64 + 128 + 320);
}

mod costs;

/// Review 19 MED-4: a listener that loses a ClientIPPolicy conflict (not
/// programmed) still owns its hostname on its port: a route on its
/// wildcard sibling leaves that host out instead of serving it under the
/// other chain (with the strict listener's fail-closed policy lost).
#[test]
fn a_conflicted_listener_keeps_its_host_from_its_wildcard_sibling() {
    let gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: two, namespace: infra, creationTimestamp: '2026-01-01T00:00:00Z'}\nspec:\n  gatewayClassName: realip\n  listeners:\n  - {name: wild, port: 9000, protocol: HTTP, hostname: '*.example.com', allowedRoutes: {namespaces: {from: All}}}\n  - {name: a, port: 9000, protocol: HTTP, hostname: a.example.com}\n---\n";
    let policy =
        ip_policy("strict", "2026-01-01T00:00:00Z", "192.0.2.0/24").replace("name: gw}", "name: two, sectionName: a}");
    let grab = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: grab, namespace: evil}\nspec:\n  parentRefs: [{name: two, namespace: infra, sectionName: wild}]\n  rules: [{matches: [{path: {type: PathPrefix, value: /}}], backendRefs: [{name: app, port: 80}]}]\n";
    let t = run_with_binds(&format!("{gw}{policy}{grab}"), &[("web", &[9000][..])]);
    let Status::Gateway { listeners, .. } = &status(&t, "Gateway", Some("infra"), "two").status else { panic!() };
    assert_eq!(cond(&listeners[1].conditions, "Conflicted").reason, "ClientIPPolicyConflict", "{listeners:?}");
    assert!(!cond(&listeners[1].conditions, "Programmed").status);
    let grab: Vec<(Option<&str>, Vec<&str>)> = t
        .routes
        .routes
        .iter()
        .filter(|r| r.origin == "httproute/evil/grab")
        .map(|r| (r.host.as_deref(), r.except_hosts.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(grab, [(Some("*.example.com"), vec!["a.example.com"])], "a.example.com stays the conflicted listener's");
}

/// Review 28 F2: a route on listeners whose more specific siblings differ
/// is named by its first listener there, not by the hosts it leaves out:
/// another tenant's hostname listeners must neither rename it nor make its
/// name (its log and metrics label) grow.
#[test]
fn a_route_left_hosts_out_keeps_a_short_stable_name() {
    use std::fmt::Write as _;
    let gw = |hosts: &[String]| {
        let mut g = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: two, namespace: web}\nspec:\n  gatewayClassName: realip\n  listeners:\n  - {name: http, port: 9080, protocol: HTTP}\n  - {name: edge, port: 9081, protocol: HTTP}\n".to_owned();
        for (i, h) in hosts.iter().enumerate() {
            let _ = writeln!(g, "  - {{name: h{i}, port: 9080, protocol: HTTP, hostname: {h}}}");
        }
        g + "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: site, namespace: web}\nspec:\n  parentRefs: [{name: two}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n"
    };
    let names = |t: &Translation| -> Vec<String> {
        let mut n: Vec<String> =
            // Its host-less entries (it serves the hostname listeners' hosts too).
            t.routes.routes.iter().filter(|r| r.origin == "httproute/web/site" && r.host.is_none()).map(|r| r.name.clone()).collect();
        n.sort();
        n
    };
    let one = run(&gw(&["a.example.com".to_owned()]));
    let many = run(&gw(&(0..40).map(|i| format!("l{i}-{}.evil.example", "a".repeat(200))).collect::<Vec<_>>()));
    assert_eq!(names(&one), names(&many), "the hostname listeners do not rename the route");
    assert_eq!(names(&one).len(), 2, "one per listener whose siblings differ: {:?}", names(&one));
    assert!(names(&many).iter().all(|n| n.len() < 80 && !n.contains("evil")), "{:?}", names(&many));
}

/// Review 28 L1: an ExternalName Service is no resolved backend (realip
/// sends only to endpoints): ResolvedRefs False, BackendNotFound, named.
#[test]
fn an_external_name_service_is_not_a_resolved_backend() {
    let ext = "---\napiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: web}\nspec: {type: ExternalName, externalName: db.example.com, ports: [{port: 80}]}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: web}\nspec:\n  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules: [{backendRefs: [{name: ext, port: 80}]}]\n";
    let t = run(ext);
    assert_eq!(first_ref(&t, "HTTPRoute", "web", "r")[1], ("ResolvedRefs", false, "BackendNotFound"));
    let Status::Route { parents, .. } = &status(&t, "HTTPRoute", Some("web"), "r").status else { panic!() };
    assert!(cond(&parents[0].conditions, "ResolvedRefs").message.contains("ExternalName"));
}

/// Review 29 F1: an HTTPRoute that no longer names a parent of realip's
/// (moved to another controller's Gateway, or to one that is gone) gets a
/// status that removes realip's old `parents[]` entries and keeps the
/// other controllers'; one that never had realip's entries gets none.
#[test]
fn a_route_that_leaves_realip_loses_realips_status_entries() {
    let route = |status: &str| {
        format!(
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: web}}\nspec:\n  parentRefs: [{{name: theirs, namespace: infra}}]\n  rules: [{{backendRefs: [{{name: app, port: 80}}]}}]\n{status}"
        )
    };
    let old = "status:\n  parents:\n  - {parentRef: {name: gw, namespace: infra}, controllerName: realip.dev/gateway-controller, conditions: [{type: Accepted, status: 'True', reason: Accepted, message: m, lastTransitionTime: '2026-01-01T00:00:00Z'}]}\n  - {parentRef: {name: theirs, namespace: infra}, controllerName: example.com/other, conditions: []}\n";
    let t = run(&route(old));
    let s = status(&t, "HTTPRoute", Some("web"), "r");
    let Status::Route { parents, .. } = &s.status else { panic!() };
    assert!(parents.is_empty());
    let previous: serde_json::Value = serde_json::json!({"parents": [
        {"parentRef": {"name": "gw", "namespace": "infra"}, "controllerName": "realip.dev/gateway-controller", "conditions": []},
        {"parentRef": {"name": "theirs", "namespace": "infra"}, "controllerName": "example.com/other", "conditions": []}]});
    let written = crate::gateway::status::to_json(s, Some(&previous), "2026-01-02T00:00:00Z");
    assert_eq!(written["parents"].as_array().unwrap().len(), 1, "{written}");
    assert_eq!(written["parents"][0]["controllerName"], "example.com/other");
    // Never realip's: no status at all.
    let t = run(&route(""));
    assert!(t.statuses.iter().all(|s| s.key.kind != "HTTPRoute"));
}

/// Review 29 F3: two listeners of one Gateway on the same port, protocol
/// and hostname are both Conflicted and neither is served (the spec picks
/// no winner); a distinct third listener is served, and the Gateway's
/// message names which are not valid and which are accepted.
#[test]
fn indistinct_listeners_of_one_gateway_are_all_refused() {
    let gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: dup, namespace: infra, creationTimestamp: '2026-01-01T00:00:00Z'}\nspec:\n  gatewayClassName: realip\n  listeners:\n  - {name: one, port: 9000, protocol: HTTP, hostname: c.example.com}\n  - {name: two, port: 9000, protocol: HTTP, hostname: c.example.com}\n  - {name: three, port: 9000, protocol: HTTP, hostname: d.example.com}\n";
    let t = run(gw);
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("infra"), "dup").status else {
        panic!()
    };
    for l in &listeners[..2] {
        let c = cond(&l.conditions, "Conflicted");
        assert_eq!((c.status, c.reason), (true, "HostnameConflict"), "{l:?}");
        assert!(!cond(&l.conditions, "Programmed").status, "{l:?}");
    }
    assert!(cond(&listeners[0].conditions, "Conflicted").message.contains("gateway/infra/dup/two"));
    assert!(cond(&listeners[1].conditions, "Conflicted").message.contains("gateway/infra/dup/one"));
    assert!(cond(&listeners[2].conditions, "Programmed").status);
    let accepted = cond(conditions, "Accepted");
    assert_eq!((accepted.status, accepted.reason), (true, "ListenersNotValid"));
    assert!(accepted.message.contains("one, two; accepted: three"), "{}", accepted.message);
    let served: Vec<&str> =
        t.routes.listeners.iter().map(|l| l.name.as_str()).filter(|n| n.contains("/dup/")).collect();
    assert_eq!(served, ["gateway/infra/dup/three"]);
}

/// Review 31 MED-1: another realip (`--gateway-class realip-b`) leaves
/// alone the entries this one wrote for its own Gateways: the controllerName
/// is the same, the Gateway's class tells them apart.
#[test]
fn another_realips_route_entries_are_left_alone() {
    let other_class = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: realip-b}\nspec: {controllerName: realip.dev/gateway-controller}\n";
    let route = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: web}\nspec:\n  parentRefs: [{name: gw, namespace: infra}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\nstatus:\n  parents:\n  - {parentRef: {name: gw, namespace: infra}, controllerName: realip.dev/gateway-controller, conditions: []}\n";
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(&format!("{other_class}{route}")).unwrap();
    // The proxy of class realip-b: Gateway infra/gw is realip's (the other class).
    let t = translate(&o.inputs("realip-b", &[]));
    assert!(t.statuses.iter().all(|s| s.key.kind != "HTTPRoute"), "{:?}", t.statuses);
    // The proxy of class realip writes its entry as ever.
    let t = translate(&o.inputs("realip", &[]));
    assert!(t.statuses.iter().any(|s| s.key.kind == "HTTPRoute"));
}

/// Review 31 MED-3: a Gateway's listeners are its own and its
/// ListenerSets' merged: with its own all refused (indistinct) and a
/// set's valid, it stays accepted and the set is served; with none valid
/// it is not accepted and serves nothing.
#[test]
fn a_gateway_with_only_listenerset_listeners_valid_stays_accepted() {
    let world = |set_host: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: g1, namespace: web, creationTimestamp: '2026-01-01T00:00:00Z'}}\nspec:\n  gatewayClassName: realip\n  allowedListeners: {{namespaces: {{from: Same}}}}\n  listeners:\n  - {{name: a, port: 9000, protocol: HTTP, hostname: a.example.com}}\n  - {{name: a2, port: 9000, protocol: HTTP, hostname: a.example.com}}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: {{name: ls, namespace: web}}\nspec:\n  parentRef: {{name: g1, kind: Gateway, group: gateway.networking.k8s.io}}\n  listeners: [{{name: s0, port: 9000, protocol: HTTP, hostname: {set_host}}}]\n"
        )
    };
    let t = run(&world("c.example.com"));
    let Status::Gateway { conditions, attached_sets, .. } = &status(&t, "Gateway", Some("web"), "g1").status else {
        panic!()
    };
    let accepted = cond(conditions, "Accepted");
    assert_eq!((accepted.status, accepted.reason), (true, "ListenersNotValid"), "{conditions:?}");
    assert!(accepted.message.ends_with("a, a2; accepted: web/ls/s0"), "{}", accepted.message);
    assert_eq!(*attached_sets, Some(1));
    assert!(t.routes.listeners.iter().any(|l| l.name == "listenerset/web/ls/s0"));
    // The set's listener on a port no bind serves: the Gateway serves nothing (review 13c finding 5).
    let t = run_with_binds(&world("c.example.com"), &[("web", &[8080][..])]);
    let Status::Gateway { conditions, .. } = &status(&t, "Gateway", Some("web"), "g1").status else { panic!() };
    assert!(!cond(conditions, "Programmed").status, "{conditions:?}");
}

/// A route on the Gateways of two realips (classes `realip` and
/// `realip-b`): each proxy's status write keeps the other's entry (same
/// controllerName), so they do not overwrite each other in turn.
#[test]
fn two_realips_keep_each_others_route_entries() {
    let world = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: realip-b}\nspec: {controllerName: realip.dev/gateway-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw-b, namespace: infra}\nspec:\n  gatewayClassName: realip-b\n  listeners: [{name: http, port: 81, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: web}\nspec:\n  parentRefs: [{name: gw, namespace: infra, sectionName: http}, {name: gw-b, namespace: infra}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n";
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(world).unwrap();
    let a = translate(&o.inputs("realip", &[]));
    let b = translate(&o.inputs("realip-b", &[]));
    let route = |t: &Translation| t.statuses.iter().find(|s| s.key.kind == "HTTPRoute").unwrap().clone();
    let now = "2026-01-02T00:00:00Z";
    // A writes, then B on top of it, then A again: both entries stay.
    let after_a = crate::gateway::status::to_json(&route(&a), None, now);
    let after_b = crate::gateway::status::to_json(&route(&b), Some(&after_a), now);
    let again_a = crate::gateway::status::to_json(&route(&a), Some(&after_b), now);
    for v in [&after_b, &again_a] {
        let names: Vec<&str> =
            v["parents"].as_array().unwrap().iter().map(|e| e["parentRef"]["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 2, "{v}");
        assert!(names.contains(&"gw") && names.contains(&"gw-b"), "{v}");
    }
    assert_eq!(after_b["parents"], again_a["parents"].clone(), "A's second write changes nothing");
}

/// Review 13c finding 4: listeners refused as indistinct take no host from
/// another Gateway's listener: a newer Gateway's listener on the same
/// hostname is served (it was Conflicted by a listener nobody served).
#[test]
fn refused_indistinct_listeners_leave_their_host_to_another_gateway() {
    let gws = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g1, namespace: infra, creationTimestamp: '2026-01-01T00:00:00Z'}\nspec:\n  gatewayClassName: realip\n  listeners:\n  - {name: h1, port: 9000, protocol: HTTP, hostname: x.example.com}\n  - {name: h2, port: 9000, protocol: HTTP, hostname: x.example.com}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g2, namespace: infra, creationTimestamp: '2026-01-02T00:00:00Z'}\nspec:\n  gatewayClassName: realip\n  listeners:\n  - {name: gx, port: 9000, protocol: HTTP, hostname: x.example.com}\n";
    let t = run(gws);
    let Status::Gateway { conditions, listeners, .. } = &status(&t, "Gateway", Some("infra"), "g2").status else {
        panic!()
    };
    assert!(!cond(&listeners[0].conditions, "Conflicted").status, "{listeners:?}");
    assert!(cond(conditions, "Accepted").status);
    let served: Vec<&str> = t
        .routes
        .listeners
        .iter()
        .map(|l| l.name.as_str())
        .filter(|n| n.contains("/g1/") || n.contains("/g2/"))
        .collect();
    assert_eq!(served, ["gateway/infra/g2/gx"]);
}

/// Review 13c finding 2: two realips (classes `realip` and `realip-b`)
/// each attach a policy only to their own targets (no `TargetNotFound`
/// for the other's) and keep each other's ancestor entries.
#[test]
fn two_realips_keep_each_others_policy_ancestors() {
    let world = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: realip-b}\nspec: {controllerName: realip.dev/gateway-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw-b, namespace: infra}\nspec:\n  gatewayClassName: realip-b\n  listeners: [{name: http, port: 81, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: ra, namespace: web}\nspec:\n  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: rb, namespace: web}\nspec:\n  parentRefs: [{name: gw-b, namespace: infra}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n---\napiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: p2, namespace: web}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: ra}, {group: gateway.networking.k8s.io, kind: HTTPRoute, name: rb}]\n  allow: [192.0.2.0/24]\n";
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(world).unwrap();
    let a = translate(&o.inputs("realip", &[]));
    let b = translate(&o.inputs("realip-b", &[]));
    let policy = |t: &Translation| status(t, "ClientAccessPolicy", Some("web"), "p2").clone();
    for t in [&a, &b] {
        let Status::Policy { ancestors, .. } = &policy(t).status else { panic!() };
        assert_eq!(ancestors.len(), 1, "only its own target: {ancestors:?}");
        assert_eq!(ancestors[0].conditions[0].reason, "Accepted", "{ancestors:?}");
    }
    let now = "2026-01-02T00:00:00Z";
    let after_a = crate::gateway::status::to_json(&policy(&a), None, now);
    let after_b = crate::gateway::status::to_json(&policy(&b), Some(&after_a), now);
    let again_a = crate::gateway::status::to_json(&policy(&a), Some(&after_b), now);
    assert_eq!(after_b["ancestors"].as_array().unwrap().len(), 2, "{after_b}");
    assert_eq!(after_b, again_a, "A's second write changes nothing");
}

/// Review 13d MED-1: a route on realip's Gateway and a third controller's
/// is not another realip's target: that one leaves a policy on it alone
/// (no TargetNotFound).
#[test]
fn a_route_of_one_realip_and_a_third_controller_is_left_to_that_realip() {
    let world = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: realip-b}\nspec: {controllerName: realip.dev/gateway-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: other}\nspec: {controllerName: example.com/other}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gwo, namespace: infra}\nspec:\n  gatewayClassName: other\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: web}\nspec:\n  parentRefs: [{name: gw, namespace: infra, sectionName: http}, {name: gwo, namespace: infra}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n---\napiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: cap, namespace: web}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]\n  allow: [198.51.100.0/24]\n";
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(world).unwrap();
    let b = translate(&o.inputs("realip-b", &[]));
    assert!(
        !b.statuses.iter().any(|s| s.key.kind == "ClientAccessPolicy"),
        "realip-b has nothing to say of it (no status written)"
    );
    let a = translate(&o.inputs("realip", &[]));
    let Status::Policy { ancestors, .. } = &status(&a, "ClientAccessPolicy", Some("web"), "cap").status else {
        panic!()
    };
    assert_eq!(ancestors.len(), 1);
    assert_eq!(ancestors[0].conditions[0].reason, "Accepted");
}

/// Review 13e HIGH-2: a route with a parent of each realip, attached only
/// by realip-b: the policy entry realip wrote for it (the route as its own
/// ancestor, attached nowhere for realip) is not dropped by realip-b.
#[test]
fn a_route_ancestor_of_a_route_shared_with_another_realip_is_left_alone() {
    let world = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: realip-b}\nspec: {controllerName: realip.dev/gateway-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw-b, namespace: infra}\nspec:\n  gatewayClassName: realip-b\n  listeners: [{name: http, port: 81, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: mix, namespace: web}\nspec:\n  parentRefs: [{name: gw, namespace: infra, sectionName: nope}, {name: gw-b, namespace: infra}]\n  rules: [{backendRefs: [{name: app, port: 80}]}]\n---\napiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: accm, namespace: web}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: mix}]\n  allow: [192.0.2.0/24]\nstatus:\n  ancestors:\n  - {ancestorRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: mix, namespace: web}, controllerName: realip.dev/gateway-controller, conditions: []}\n";
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(world).unwrap();
    let b = translate(&o.inputs("realip-b", &[]));
    let Status::Policy { drop, .. } = &status(&b, "ClientAccessPolicy", Some("web"), "accm").status else { panic!() };
    assert!(drop.is_empty(), "{drop:?}");
}

/// Review 13e LOW-1: a ClientIPPolicy on an HTTPRoute (a kind it cannot
/// target, the CRD does not refuse it) says so, not "not found".
#[test]
fn a_client_ip_policy_on_a_route_says_the_kind_is_not_supported() {
    let policy = ip_policy("p", "2026-01-01T00:00:00Z", "192.0.2.0/24")
        .replace("kind: Gateway, name: gw}", "kind: HTTPRoute, name: r}")
        .replace("namespace: infra", "namespace: web");
    let t = run(&policy);
    let Status::Policy { ancestors, .. } = &status(&t, "ClientIPPolicy", Some("web"), "p").status else { panic!() };
    let c = &ancestors[0].conditions[0];
    assert_eq!((c.status, c.reason), (false, "Invalid"), "{ancestors:?}");
    assert!(c.message.contains("not a HTTPRoute"), "{}", c.message);
}

/// Review 13f LOW-5 and LOW-6: a policy whose every target is another
/// realip's gets no status from this one (it wrote an empty `ancestors`);
/// a target Gateway of another controller's class is named as such, not
/// "not found".
#[test]
fn policies_on_others_gateways_say_whose_they_are() {
    let world = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: realip-b}\nspec: {controllerName: realip.dev/gateway-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: other}\nspec: {controllerName: example.com/other}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw-b, namespace: infra}\nspec:\n  gatewayClassName: realip-b\n  listeners: [{name: http, port: 81, protocol: HTTP}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw-o, namespace: infra}\nspec:\n  gatewayClassName: other\n  listeners: [{name: http, port: 82, protocol: HTTP}]\n---\napiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: only-b, namespace: infra}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw-b}]\n  allow: [192.0.2.0/24]\n---\napiVersion: realip.dev/v1alpha1\nkind: ClientAccessPolicy\nmetadata: {name: on-other, namespace: infra}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw-o}]\n  allow: [192.0.2.0/24]\n";
    let mut o = Objects::default();
    o.add_yaml(BASE).unwrap();
    o.add_yaml(world).unwrap();
    let t = translate(&o.inputs("realip", &[]));
    assert!(!t.statuses.iter().any(|s| s.key.name == "only-b"), "another realip's policy gets no status from this one");
    let Status::Policy { ancestors, .. } = &status(&t, "ClientAccessPolicy", Some("infra"), "on-other").status else {
        panic!()
    };
    let c = &ancestors[0].conditions[0];
    assert_eq!(c.reason, "TargetNotFound");
    assert!(c.message.contains("GatewayClass other"), "{}", c.message);
}
