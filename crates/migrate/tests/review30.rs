//! Fixes of the thirtieth review round. Each test failed before its fix.

mod common;

use common::{controller, find, ingress, run, status};
use realip_migrate::{Status, Target};
use serde_json::json;

const TLS: &str = "  tls: [{hosts: [app.example.com], secretName: app-tls}]\n";

/// `controller()` with `use-forwarded-headers` on and its Service's ports
/// replaced by `ports` (YAML flow items, one per line).
fn with_ports(ports: &[&str]) -> String {
    let lines: String = ports.iter().fold(String::new(), |acc, p| acc + "  - " + p + "\n");
    controller(&[("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16")])
        .replace("  - {name: http, port: 80}\n", &lines)
        .replace(
            "        - --publish-service=$(POD_NAMESPACE)/ingress-nginx-controller\n",
            "        - --publish-service=$(POD_NAMESPACE)/ingress-nginx-controller\n        ports:\n        - {name: http, containerPort: 80}\n        - {name: https, containerPort: 443}\n        - {name: tohttps, containerPort: 2443}\n",
        )
}

/// A route of the Ingress serves `X-Forwarded-Proto: https` on the http
/// listener (its own route next to the HTTPS listener's, or, for a host
/// without TLS, the Ingress's route).
fn serves_forwarded_https(m: &realip_migrate::Migration) -> bool {
    find(m, "HTTPRoute").into_iter().any(|r| {
        matches!(r["metadata"]["name"].as_str(), Some("site" | "site-forwarded-https"))
            && r["spec"]["parentRefs"][0]["sectionName"].as_str().is_none_or(|s| s == "http")
            && r["spec"]["rules"][0]["matches"][0]["headers"]
                == json!([{"type": "Exact", "name": "X-Forwarded-Proto", "value": "https"}])
    })
}

/// H-1: ingress-nginx's AWS TLS-termination Service sends 80 to
/// `tohttps` (2443) and 443 to `http`; an HTTPS-only Service sends 443 to
/// `http`. Both end TLS at the load balancer: HTTPS reaches the http port.
#[test]
fn tls_ended_at_the_load_balancer_is_found_whatever_port_80_targets() {
    for ports in [
        &["{name: http, port: 80, targetPort: tohttps}", "{name: https, port: 443, targetPort: http}"][..],
        &["{name: https, port: 443, targetPort: http}"][..],
        &["{name: http, port: 80, targetPort: 80}", "{name: https, port: 443, targetPort: 80}"][..],
    ] {
        let m = run(&[with_ports(ports), ingress("site", "/", &[], TLS)], Target::Realip);
        let ctx = format!("{ports:?}:\n{}", m.report.text());
        assert!(serves_forwarded_https(&m), "{ctx}");
        assert_eq!(status(&m, "ssl-redirect app.example.com"), Status::Changed, "{ctx}");
    }
    // 443 to the https port: TLS reaches nginx, the route stays on the HTTPS listener.
    let m = run(
        &[
            with_ports(&["{name: http, port: 80, targetPort: http}", "{name: https, port: 443, targetPort: https}"]),
            ingress("site", "/", &[], TLS),
        ],
        Target::Realip,
    );
    let site = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "site").unwrap();
    assert!(site["spec"]["parentRefs"][0]["sectionName"].as_str().is_some_and(|s| s.starts_with("https")));
    assert!(site["spec"]["rules"][0]["matches"][0].get("headers").is_none(), "{}", m.report.text());
}

/// H-1 on ingress-nginx's own AWS manifest (the real-world corpus), with
/// its CIDR placeholder filled in and a TLS Ingress added.
#[test]
fn the_aws_tls_termination_manifest_does_not_loop() {
    let Some(dir) = common::corpus() else { return };
    let text = std::fs::read_to_string(dir.join("static/aws-nlb-with-tls-termination.yaml"))
        .unwrap()
        .replace("XXX.XXX.XXX/XX", "10.0.0.0/16");
    let m = run(&[text, ingress("site", "/", &[], TLS)], Target::Realip);
    assert!(serves_forwarded_https(&m), "{}", m.report.text());
}

/// H-2: a redirect Ingress is answered in nginx's rewrite phase, before
/// limit_conn: limit-connections applied to nobody, so the Ingress is
/// converted (it was left out, deny-all).
#[test]
fn a_redirect_comes_before_limit_connections() {
    let anns = [("permanent-redirect", "https://new.example.com/"), ("limit-connections", "5")];
    let m = run(&[controller(&[]), ingress("site", "/", &anns, "")], Target::Realip);
    let ctx = m.report.text();
    assert_eq!(status(&m, "limit-connections"), Status::Ignored, "{ctx}");
    assert!(!m.report.incomplete(), "{ctx}");
    assert!(serde_json::to_string(&find(&m, "HTTPRoute")).unwrap().contains("requestRedirect"), "{ctx}");
    // Without the redirect it still leaves the Ingress out.
    let m = run(&[controller(&[]), ingress("site", "/", &[("limit-connections", "5")], "")], Target::Realip);
    assert_eq!(status(&m, "limit-connections"), Status::NotConverted);
}

/// M-1: an Ingress host the API server refuses (upper case, `*` alone, an
/// underscore), in the rules or the TLS hosts, is an input error naming
/// it; before, the HTTPRoute written with it was refused by the API server.
#[test]
fn an_ingress_host_the_api_server_refuses_is_an_input_error() {
    for (host, extra) in
        [("Up.Example.com", ""), ("app.example.com", "  tls: [{hosts: ['*.Example.COM']}]\n"), ("a_b.example.com", "")]
    {
        let text = ingress("site", "/", &[], extra).replace("host: app.example.com", &format!("host: {host}"));
        let objects = realip_kube::load_str(&[controller(&[]), text].join("---\n"), "t.yaml").unwrap();
        let e = realip_migrate::migrate(&objects, &realip_migrate::Options::default()).unwrap_err().to_string();
        assert!(e.contains("Ingress/web/site: host `") && e.contains("is not a lowercase DNS name"), "{host}: {e}");
    }
}

/// M-4: an empty limit-allowlist exempts nobody: the limit converts
/// exactly, nothing is left unconverted.
#[test]
fn an_empty_limit_allowlist_exempts_nobody() {
    let m = run(
        &[controller(&[]), ingress("site", "/", &[("limit-rpm", "5"), ("limit-allowlist", "")], "")],
        Target::Realip,
    );
    assert_eq!(status(&m, "limit-allowlist"), Status::Ignored, "{}", m.report.text());
    assert!(find(&m, "ClientAccessPolicy")[0]["spec"]["rateLimit"].is_object());
    assert!(!m.report.incomplete(), "{}", m.report.text());
}

/// M-2: force-ssl-redirect on a host without TLS on the Gateway, TLS ended
/// at the load balancer and X-Forwarded-Proto read: ingress-nginx
/// redirected what the header says is HTTP; so does the output (it was
/// not converted, plain HTTP served).
#[test]
fn force_ssl_redirect_follows_x_forwarded_proto_when_tls_ends_at_the_load_balancer() {
    let ports = ["{name: http, port: 80, targetPort: http}", "{name: https, port: 443, targetPort: http}"];
    let m = run(&[with_ports(&ports), ingress("site", "/", &[("force-ssl-redirect", "true")], "")], Target::Realip);
    let ctx = m.report.text();
    assert!(serves_forwarded_https(&m), "{ctx}");
    assert!(find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "site-https-redirect"), "{ctx}");
    assert!(!m.report.incomplete(), "{ctx}");
}

/// M-3: Envoy replaces X-Forwarded-Proto from downstreams it does not
/// trust before routing, so `--to envoy-gateway` cannot tell HTTPS by it:
/// no redirect there (it would loop), reported not converted.
#[test]
fn envoy_gateway_gets_no_forwarded_proto_redirect() {
    let ports = ["{name: http, port: 80, targetPort: http}", "{name: https, port: 443, targetPort: http}"];
    let m = run(&[with_ports(&ports), ingress("site", "/", &[], TLS)], Target::EnvoyGateway);
    let ctx = m.report.text();
    assert!(!find(&m, "HTTPRoute").iter().any(|r| r["metadata"]["name"] == "site-https-redirect"), "{ctx}");
    assert_eq!(status(&m, "ssl-redirect app.example.com"), Status::NotConverted, "{ctx}");
    assert!(!serde_json::to_string(&find(&m, "HTTPRoute")).unwrap().contains("X-Forwarded-Proto"), "{ctx}");
}

/// Review 31 H-1: an internal load balancer that ends TLS (another Service
/// in front of the controller) is found too; and the HTTPS listener keeps
/// the routes without the header match, for clients the main Service sends
/// there with TLS.
#[test]
fn a_second_service_that_ends_tls_is_found() {
    let internal = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ingress-nginx-controller-internal\n  namespace: ingress-nginx\nspec:\n  type: LoadBalancer\n  selector: {app: ingress-nginx}\n  ports:\n  - {name: http, port: 80, targetPort: http}\n  - {name: https, port: 443, targetPort: http}\n";
    let main = with_ports(&["{name: http, port: 80, targetPort: http}", "{name: https, port: 443, targetPort: https}"]);
    let m = run(&[main + internal, ingress("site", "/", &[], TLS)], Target::Realip);
    let ctx = m.report.text();
    assert!(serves_forwarded_https(&m), "{ctx}");
    let site = find(&m, "HTTPRoute").into_iter().find(|r| r["metadata"]["name"] == "site").unwrap();
    assert!(site["spec"]["parentRefs"][0]["sectionName"].as_str().is_some_and(|s| s.starts_with("https")), "{ctx}");
    assert!(site["spec"]["rules"][0]["matches"][0].get("headers").is_none(), "{ctx}");
}
