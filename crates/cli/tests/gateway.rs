//! Gateway API mode of `realip proxy --kubernetes` against the in-process
//! fake API server (real list/watch/status-patch JSON, kube-rs reflectors
//! unmodified): the status the spec requires is written for GatewayClass,
//! Gateway, HTTPRoute and realip's policies, follows live changes, and
//! absent Gateway API CRDs are logged once while Ingresses keep being
//! served. (Serving Gateway routes is the proxy's part, phase 2 of issue 13.)

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{raw_http, spawn, wait_line, Proc};
use realip_lab::fakeapi::FakeApi;
use serde_json::{json, Value};

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn proxy(api: &FakeApi, tag: &str, extra: &[&str]) -> (Proc, SocketAddr, Dir) {
    proxy_with(api, tag, "", extra)
}

/// [`proxy`] with `listener_extra` added to the `web` listener's table.
fn proxy_with(api: &FakeApi, tag: &str, listener_extra: &str, extra: &[&str]) -> (Proc, SocketAddr, Dir) {
    let dir = Dir(std::env::temp_dir().join(format!("realip-gw-{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let cfg = dir.0.join("realip.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n{listener_extra}\n[client_ip]\ntrusted = [\"127.0.0.0/8\"]\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
    cmd.args(["proxy", "--kubernetes", "--publish-service", "realip/realip", "--config"])
        .arg(&cfg)
        .args(extra)
        .env("KUBECONFIG", api.kubeconfig(&dir.0).unwrap());
    let p = spawn(&mut cmd);
    let line = wait_line(&p.stderr, "\"listening\"", 20);
    let addr = serde_json::from_str::<Value>(&line).unwrap()["addr"].as_str().unwrap().parse().unwrap();
    (p, addr, dir)
}

fn base(api: &FakeApi) {
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "realip", "namespace": "realip"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.200"}]}}}));
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9}]}}));
}

/// Waits (bounded) until the stored object satisfies `f`.
fn until(api: &FakeApi, kind: &str, ns: &str, name: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(o) = api.get(kind, ns, name) {
            if f(&o) {
                return o;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {kind} {ns}/{name} is {:#}",
            api.get(kind, ns, name).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cond<'a>(conds: &'a Value, ty: &str) -> &'a Value {
    conds.as_array().and_then(|a| a.iter().find(|c| c["type"] == ty)).unwrap_or(&Value::Null)
}

fn policy(kind: &str, name: &str, target: &Value, extra: &Value) -> Value {
    let mut spec = json!({"targetRefs": [target]});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "realip.dev/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": "web"}, "spec": spec})
}

#[test]
fn gateway_api_objects_get_the_status_the_spec_requires_and_follow_changes() {
    let api = FakeApi::start().unwrap();
    base(&api);
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "realip"},
        "spec": {"controllerName": "realip.dev/gateway-controller"}}),
    );
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "theirs"},
        "spec": {"controllerName": "example.com/other"}}),
    );
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "web", "generation": 2},
        "spec": {"gatewayClassName": "realip", "listeners": [
            {"name": "http", "port": 80, "protocol": "HTTP"},
            {"name": "tcp", "port": 9000, "protocol": "TCP"}]}}));
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "site", "namespace": "web"},
        "spec": {"parentRefs": [{"name": "gw", "sectionName": "http"}], "hostnames": ["app.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}}));
    let gw_target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy("ClientIPPolicy", "chain", &gw_target,
        &json!({"proxyProtocol": {"mode": "Required", "trustedSenders": ["10.0.0.0/8"]}, "sources": ["ProxyProtocol", {"header": "CF-Connecting-IP"}]})));
    api.apply(policy("ClientIPPolicy", "late", &gw_target, &json!({"trustedProxies": ["192.0.2.0/24"]})));
    api.apply(policy(
        "ClientAccessPolicy",
        "ghost",
        &json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "nope"}),
        &json!({"allow": ["192.0.2.0/24"]}),
    ));
    let (_p, _addr, _dir) = proxy(&api, "status", &[]);

    let class = until(&api, "GatewayClass", "", "realip", "class accepted", |o| {
        cond(&o["status"]["conditions"], "Accepted")["status"] == "True"
    });
    assert_eq!(cond(&class["status"]["conditions"], "Accepted")["reason"], "Accepted");
    let gw = until(&api, "Gateway", "web", "gw", "gateway programmed", |o| {
        cond(&o["status"]["conditions"], "Programmed")["status"] == "True"
    });
    assert_eq!(gw["status"]["addresses"], json!([{"type": "IPAddress", "value": "203.0.113.200"}]));
    assert_eq!(cond(&gw["status"]["conditions"], "Accepted")["reason"], "ListenersNotValid", "the TCP listener");
    assert_eq!(cond(&gw["status"]["conditions"], "Accepted")["observedGeneration"], 2);
    let ls = gw["status"]["listeners"].as_array().unwrap();
    assert_eq!((ls[0]["name"].as_str(), ls[0]["attachedRoutes"].as_u64()), (Some("http"), Some(1)));
    assert_eq!(cond(&ls[1]["conditions"], "Accepted")["reason"], "UnsupportedProtocol");
    let route = until(&api, "HTTPRoute", "web", "site", "route accepted", |o| !o["status"]["parents"].is_null());
    let parent = &route["status"]["parents"][0];
    assert_eq!(parent["controllerName"], "realip.dev/gateway-controller");
    assert_eq!(parent["parentRef"]["sectionName"], "http");
    assert_eq!(cond(&parent["conditions"], "Accepted")["status"], "True");
    assert_eq!(cond(&parent["conditions"], "ResolvedRefs")["status"], "True");
    let first =
        until(&api, "ClientIPPolicy", "web", "chain", "older policy wins", |o| !o["status"]["ancestors"].is_null());
    assert_eq!(cond(&first["status"]["ancestors"][0]["conditions"], "Accepted")["status"], "True");
    let late = until(&api, "ClientIPPolicy", "web", "late", "newer policy conflicted", |o| {
        !o["status"]["ancestors"].is_null()
    });
    assert_eq!(cond(&late["status"]["ancestors"][0]["conditions"], "Accepted")["reason"], "Conflicted");
    let ghost =
        until(&api, "ClientAccessPolicy", "web", "ghost", "missing target", |o| !o["status"]["ancestors"].is_null());
    assert_eq!(cond(&ghost["status"]["ancestors"][0]["conditions"], "Accepted")["reason"], "TargetNotFound");
    assert!(
        api.get("GatewayClass", "", "theirs").unwrap()["status"].is_null(),
        "another controller's class is left alone"
    );

    // Live changes: the Service goes away, then the older policy.
    api.delete("Service", "web", "app");
    until(&api, "HTTPRoute", "web", "site", "backend gone", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "ResolvedRefs")["reason"] == "BackendNotFound"
    });
    api.delete("ClientIPPolicy", "web", "chain");
    until(&api, "ClientIPPolicy", "web", "late", "the remaining policy takes over", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"] == "True"
    });
    // Unchanged status is not written again: a quiet period adds no patch.
    std::thread::sleep(Duration::from_millis(500));
    let n = api.patches().len();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(api.patches().len(), n, "{:#?}", &api.patches()[n..]);
}

#[test]
fn absent_gateway_api_crds_are_logged_once_and_ingresses_are_still_served() {
    let api = FakeApi::start().unwrap();
    api.hide_group("gateway.networking.k8s.io");
    api.hide_group("realip.dev");
    base(&api);
    let port = common::free_port();
    let mut echo = Command::new(env!("CARGO_BIN_EXE_realip"));
    echo.args(["echo", "--listen", &format!("127.0.0.2:{port}"), "--trust", "127.0.0.0/8"]);
    let e = spawn(&mut echo);
    wait_line(&e.stderr, "listening on", 20);
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}}));
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-1", "namespace": "web", "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": port}], "endpoints": [{"addresses": ["127.0.0.2"], "conditions": {"ready": true}}]}));
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "site", "namespace": "web"},
        "spec": {"ingressClassName": "realip", "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}));
    let (p, addr, _dir) = proxy(&api, "absent", &[]);
    let line = wait_line(&p.stderr, "gateway_api_unavailable", 20);
    assert!(line.contains("gateways") && line.contains("clientippolicies"), "{line}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = raw_http(addr, b"GET /debug/ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if matches!(r, Ok((200, _))) {
            break;
        }
        assert!(Instant::now() < deadline, "Ingress not served: {r:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Once: a later change does not repeat the message.
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "extra", "namespace": "web"}, "spec": {"ports": [{"port": 1}]}}));
    std::thread::sleep(Duration::from_millis(500));
    let more: Vec<String> = p.stderr.try_iter().filter(|l| l.contains("gateway_api_unavailable")).collect();
    assert!(more.is_empty(), "{more:?}");
    // --gateway-class "" turns the mode off: nothing is probed.
    let (p2, _a2, _d2) = proxy(&api, "off", &["--gateway-class", ""]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!p2.stderr.try_iter().any(|l| l.contains("gateway_api_unavailable")));
}

/// Status of `GET path` with `host` through the proxy.
fn status(addr: SocketAddr, host: &str, path: &str) -> u16 {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    raw_http(addr, req.as_bytes()).map_or(0, |(s, _)| s)
}

/// Gateway routes are served on the `[[listener]]` whose `gateway_ports`
/// names the Gateway listener's port, with the Gateway API's path
/// semantics (PathPrefix on whole segments, Exact), under their stable
/// names; live route changes fail no request; a route the proxy cannot
/// serve yet is reported, not dropped.
#[test]
fn gateway_routes_are_served_on_the_mapped_listener() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let port = common::free_port();
    let mut echo = Command::new(env!("CARGO_BIN_EXE_realip"));
    echo.args(["echo", "--listen", &format!("127.0.0.2:{port}"), "--trust", "127.0.0.0/8"]);
    let e = spawn(&mut echo);
    wait_line(&e.stderr, "listening on", 20);
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}}));
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-1", "namespace": "web", "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": port}], "endpoints": [{"addresses": ["127.0.0.2"], "conditions": {"ready": true}}]}));
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "realip"},
        "spec": {"controllerName": "realip.dev/gateway-controller"}}),
    );
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "web"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}));
    let backend = json!([{"name": "app", "port": 80}]);
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "site", "namespace": "web"},
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["app.example.com"], "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": backend},
            {"matches": [{"path": {"type": "Exact", "value": "/exact"}}], "backendRefs": backend},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/m"}, "method": "POST",
                "headers": [{"name": "X-Env", "value": "canary"}], "queryParams": [{"name": "v", "value": "2"}]}],
             "backendRefs": backend}]}}));
    let (p, addr, _dir) = proxy_with(&api, "serve", "gateway_ports = [80]\n", &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(addr, "app.example.com", "/api") != 200 {
        assert!(Instant::now() < deadline, "Gateway route not served");
        std::thread::sleep(Duration::from_millis(20));
    }
    let table = [
        ("app.example.com", "/api", 200),
        ("app.example.com", "/api/v1/x", 200),
        ("app.example.com", "/apiary", 404),
        ("app.example.com", "/exact", 200),
        ("app.example.com", "/exact/", 404),
        ("other.example.com", "/api", 404),
    ];
    for (host, path, want) in table {
        assert_eq!(status(addr, host, path), want, "{host}{path}");
    }
    // Method, header and query parameter must all match.
    let send = |method: &str, path: &str, env: &str| {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: app.example.com\r\nX-Env: {env}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        raw_http(addr, req.as_bytes()).map_or(0, |(s, _)| s)
    };
    assert_eq!(send("POST", "/m?v=2", "canary"), 200);
    assert_eq!(send("POST", "/m/x?a=1&v=2", "canary"), 200);
    assert_eq!(send("GET", "/m?v=2", "canary"), 404);
    assert_eq!(send("POST", "/m?v=3", "canary"), 404);
    assert_eq!(send("POST", "/m?v=2", "stable"), 404);
    // The access log names the route by its stable name.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let line = p.stdout.recv_timeout(Duration::from_secs(5)).expect("access log line");
        if line.contains("\"route\":\"httproute/web/site/") {
            break;
        }
        assert!(Instant::now() < deadline, "no access-log line names the route: {line}");
    }
    // Live changes: a second route comes and a filter route (not served
    // yet) is reported, while requests keep flowing: none fails.
    let mut failed = 0;
    let mut added = false;
    for i in 0..300 {
        if i == 50 {
            api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "more", "namespace": "web"},
                "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["more.example.com"], "rules": [
                    {"backendRefs": backend},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/f"}}],
                     "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}]}}],
                     "backendRefs": backend}]}}));
        }
        if status(addr, "app.example.com", "/api/live") != 200 {
            failed += 1;
        }
        added = added || (i > 50 && status(addr, "more.example.com", "/") == 200);
    }
    assert_eq!(failed, 0, "requests failed during live route changes");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !added && status(addr, "more.example.com", "/") != 200 {
        assert!(Instant::now() < deadline, "the added route was not served");
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = wait_line(&p.stderr, "kubernetes_route_unserved", 20);
    assert!(line.contains("httproute/web/more/") && line.contains("filters"), "{line}");
}
