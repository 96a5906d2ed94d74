//! Gateway API mode of `realip proxy --kubernetes` against the in-process
//! fake API server (real list/watch/status-patch JSON, kube-rs reflectors
//! unmodified): the status the spec requires is written for GatewayClass,
//! Gateway, HTTPRoute and realip's policies, follows live changes, and
//! absent Gateway API CRDs are logged once while Ingresses keep being
//! served; and the proxy serves Gateway routes: matches, filters, weighted
//! backends, per-listener ClientIPPolicy chains, ClientAccessPolicy.

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
    // Applied twice, the spec changed: generation 2 (as a real server counts).
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "web"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}));
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "web"},
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
    // The Gateway's HTTP listener is port 80: a bind must serve it for
    // the Gateway to be Programmed.
    let (_p, _addr, _dir) = proxy_with(&api, "status", "gateway_ports = [80]\n", &[]);

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

/// Gateway API and realip CRDs installed after the proxy started: the
/// watch is started again with them (`kubernetes_watch_restarted`), the
/// Ingress keeps being served throughout, and the Gateway route is served
/// and gets its status, without restarting the proxy.
#[test]
fn crds_installed_after_start_are_watched_without_a_restart() {
    let api = FakeApi::start().unwrap();
    api.hide_group("gateway.networking.k8s.io");
    api.hide_group("realip.dev");
    base(&api);
    let (_a, pa) = echo_pod("a", 2);
    service(&api, "app-a", 2, pa);
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "site", "namespace": "web"},
        "spec": {"ingressClassName": "realip", "rules": [{"host": "i.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "app-a", "port": {"number": 80}}}}]}}]}}));
    let (p, addr, _dir) = proxy_with(&api, "late-crds", "gateway_ports = [80]\n", &["--kubernetes-recheck", "1"]);
    wait_line(&p.stderr, "gateway_api_unavailable", 20);
    until_status(&p, addr, "i.example.com", "/", 200);
    // The CRDs arrive, then the objects.
    api.show_group("gateway.networking.k8s.io");
    api.show_group("realip.dev");
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "late",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["g.example.com"],
            "rules": [{"backendRefs": [{"name": "app-a", "port": 80}]}]}),
    );
    let line = wait_line(&p.stderr, "kubernetes_watch_restarted", 20);
    assert!(line.contains("gateways") && line.contains("httproutes"), "{line}");
    until_status(&p, addr, "g.example.com", "/", 200);
    assert_eq!(status(addr, "i.example.com", "/"), 200, "the Ingress is still served");
    until(&api, "HTTPRoute", "web", "late", "status written", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["status"] == "True"
    });
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
    // Live changes: a second route comes (one of its rules with a
    // filter) while requests keep flowing: none fails.
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
    until_status(&p, addr, "more.example.com", "/f", 200);
}

/// `realip echo` on `127.0.0.{host}` with `POD_NAME=pod` (so responses say
/// which backend answered), and its port.
fn echo_pod(pod: &str, host: u8) -> (Proc, u16) {
    let port = common::free_port();
    let mut echo = Command::new(env!("CARGO_BIN_EXE_realip"));
    echo.args(["echo", "--listen", &format!("127.0.0.{host}:{port}"), "--trust", "127.0.0.0/8"]).env("POD_NAME", pod);
    let e = spawn(&mut echo);
    wait_line(&e.stderr, "listening on", 20);
    (e, port)
}

/// A Service `name` (port 80) with one ready endpoint `127.0.0.{host}:port`.
fn service(api: &FakeApi, name: &str, host: u8, port: u16) {
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}}));
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-1"), "namespace": "web", "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": [format!("127.0.0.{host}")], "conditions": {"ready": true}}]}));
}

/// The class `realip` and a Gateway `gw` with these listeners.
fn gateway(api: &FakeApi, listeners: &Value) {
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "realip"},
        "spec": {"controllerName": "realip.dev/gateway-controller"}}),
    );
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "web"},
        "spec": {"gatewayClassName": "realip", "listeners": listeners}}));
}

fn http_route(api: &FakeApi, name: &str, spec: &Value) {
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "web"}, "spec": spec}));
}

/// The proxy with this whole configuration file; the address of each
/// listener named in `names`, in that order.
fn proxy_file(api: &FakeApi, tag: &str, toml: &str, names: &[&str]) -> (Proc, Vec<SocketAddr>, Dir) {
    proxy_file_args(api, tag, toml, names, &[])
}

/// [`proxy_file`] with `extra` arguments.
fn proxy_file_args(
    api: &FakeApi,
    tag: &str,
    toml: &str,
    names: &[&str],
    extra: &[&str],
) -> (Proc, Vec<SocketAddr>, Dir) {
    let dir = Dir(std::env::temp_dir().join(format!("realip-gw-{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let cfg = dir.0.join("realip.toml");
    std::fs::write(&cfg, toml).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
    cmd.args(["proxy", "--kubernetes", "--publish-service", "realip/realip", "--config"])
        .arg(&cfg)
        .args(extra)
        .env("KUBECONFIG", api.kubeconfig(&dir.0).unwrap());
    let p = spawn(&mut cmd);
    let mut found = std::collections::HashMap::new();
    while found.len() < names.len() {
        let line = wait_line(&p.stderr, "\"listening\"", 20);
        let v: Value = serde_json::from_str(&line).unwrap();
        found.insert(v["listener"].as_str().unwrap().to_owned(), v["addr"].as_str().unwrap().parse().unwrap());
    }
    let addrs = names.iter().map(|n| found[*n]).collect();
    (p, addrs, dir)
}

/// Sends `req` (after `prefix`, e.g. a PROXY header) and returns the
/// status, the head's header lines (lower-case names) and the body.
fn exchange(addr: SocketAddr, prefix: &[u8], req: &str) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return (0, vec![], String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(req.as_bytes());
    if s.write_all(&bytes).is_err() {
        return (0, vec![], String::new());
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return (0, vec![], text) };
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Waits (bounded) until `GET path` on `host` answers `want`; on failure
/// the proxy's log (`p`) says why.
fn until_status(p: &Proc, addr: SocketAddr, host: &str, path: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = status(addr, host, path);
        if got == want {
            return;
        }
        if Instant::now() >= deadline {
            let log: Vec<String> = p.stderr.try_iter().collect();
            panic!("{host}{path}: {got}, want {want}; proxy log:\n{}", log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Review 14 F11: a tenant's ClientIPPolicy naming headers (in
/// `stripUntrusted` or a `{header: NAME}` source) on its own Gateway does
/// not switch off another route's edits of those headers: the victim's
/// route still removes the client's X-Internal-User and sets X-Api-Key.
#[test]
fn another_gateways_client_ip_policy_does_not_cancel_a_routes_header_edits() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "app", "port": 80}],
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "filters": [
                {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                    "remove": ["X-Internal-User"], "set": [{"name": "X-Api-Key", "value": "s3cret"}]}},
                {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/debug/headers"}}}]}]}),
    );
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g", "namespace": "evil"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "l", "port": 10001, "protocol": "HTTP"}]}}));
    let mut evil = policy(
        "ClientIPPolicy",
        "p",
        &json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "g"}),
        &json!({"trustedProxies": ["192.0.2.1/32"], "sources": [{"header": "X-Internal-User"}, "XForwardedFor"],
            "forward": {"stripUntrusted": ["X-Internal-User", "X-Api-Key"]}}),
    );
    evil["metadata"]["namespace"] = json!("evil");
    api.apply(evil);
    let (p, addr, _dir) = proxy_with(&api, "f11", "gateway_ports = [80]\n", &[]);
    until(&api, "ClientIPPolicy", "evil", "p", "accepted", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"] == "True"
    });
    until_status(&p, addr, "a.example.com", "/", 200);
    let req = "GET / HTTP/1.1\r\nHost: a.example.com\r\nX-Internal-User: admin\r\nConnection: close\r\n\r\n";
    let (st, _, body) = exchange(addr, b"", req);
    assert_eq!(st, 200, "{body}");
    let seen: Vec<(String, String)> = serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["name"].as_str().unwrap().to_owned(), h["value"].as_str().unwrap().to_owned()))
        .collect();
    let values = |n: &str| seen.iter().filter(|(k, _)| k == n).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert!(values("x-internal-user").is_empty(), "the client's identity header reached the backend: {seen:?}");
    assert_eq!(values("x-api-key"), ["s3cret"], "{seen:?}");
}

/// HTTPRoute filters through the real proxy binary and the echo app:
/// request headers set / added / removed, response headers, URLRewrite of
/// host and path (whole segments), RequestRedirect with the spec's port
/// rules and status codes. A header edit of a client-IP header is left
/// out and reported: the upstream sees the proxy's X-Forwarded-For.
#[test]
#[allow(clippy::too_many_lines)] // one route per filter, each checked
fn gateway_filters_are_applied() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    let backend = json!([{"name": "app", "port": 80}]);
    let prefix = |p: &str| json!([{"path": {"type": "PathPrefix", "value": p}}]);
    http_route(
        &api,
        "filters",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["f.example.com"], "rules": [
            {"matches": prefix("/hdr"), "backendRefs": backend, "filters": [
                {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                    "set": [{"name": "X-Set", "value": "one"}, {"name": "X-Forwarded-For", "value": "192.0.2.66"},
                        {"name": "X_Real_IP", "value": "192.0.2.66"}],
                    "add": [{"name": "X-Add", "value": "two"}],
                    "remove": ["X-Drop"]}},
                {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                    "set": [{"name": "X-Resp", "value": "yes"}], "remove": ["Content-Type"]}},
                {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/debug/headers"}}}]},
            {"matches": prefix("/old"), "backendRefs": backend, "filters": [
                {"type": "URLRewrite", "urlRewrite": {"hostname": "new.example.com",
                    "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/debug/ip"}}}]},
            {"matches": prefix("/secure"), "filters": [
                {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]},
            {"matches": prefix("/moved"), "filters": [
                {"type": "RequestRedirect", "requestRedirect": {"hostname": "other.example.com", "statusCode": 307,
                    "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}}}]},
            {"matches": prefix("/port"), "filters": [
                {"type": "RequestRedirect", "requestRedirect": {"port": 8443, "scheme": "https",
                    "path": {"type": "ReplaceFullPath", "replaceFullPath": "/elsewhere"}}}]}]}),
    );
    let (p, addr, _dir) = proxy_with(&api, "filters", "gateway_ports = [80]\n", &[]);
    until_status(&p, addr, "f.example.com", "/old", 200);
    let route = until(&api, "HTTPRoute", "web", "filters", "route accepted", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["status"] == "True"
    });
    assert_eq!(cond(&route["status"]["parents"][0]["conditions"], "ResolvedRefs")["status"], "True");
    let msg = cond(&route["status"]["parents"][0]["conditions"], "Accepted")["message"].as_str().unwrap_or("");
    assert!(msg.contains("x-forwarded-for, x-real-ip are ignored"), "{msg}");

    // Request and response header modifiers, and a full-path rewrite.
    let req = "GET /hdr/x HTTP/1.1\r\nHost: f.example.com\r\nX-Set: client\r\nX-Add: client\r\nX-Drop: client\r\n\
               X-Forwarded-For: 192.0.2.55\r\nConnection: close\r\n\r\n";
    let (st, head, body) = exchange(addr, b"", req);
    assert_eq!(st, 200, "{body}");
    assert_eq!(header(&head, "x-resp"), Some("yes"));
    assert_eq!(header(&head, "content-type"), None, "removed from the response");
    let seen: Vec<(String, String)> = serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["name"].as_str().unwrap().to_owned(), h["value"].as_str().unwrap().to_owned()))
        .collect();
    let values = |n: &str| seen.iter().filter(|(k, _)| k == n).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(values("x-set"), ["one"]);
    assert_eq!(values("x-add"), ["client", "two"]);
    assert!(values("x-drop").is_empty());
    // The proxy's own X-Forwarded-For: the client's chain (the loopback
    // peer is trusted) plus the hop, never the filter's value.
    assert_eq!(values("x-forwarded-for"), ["192.0.2.55, 127.0.0.1"]);
    assert_eq!(values("x-real-ip"), ["192.0.2.55"]);
    // Nor its underscore spelling, which WSGI/CGI apps read as X-Real-IP (review 20 MED-1).
    assert!(values("x_real_ip").is_empty(), "{seen:?}");
    let line = wait_line(&p.stderr, "kubernetes_route_warning", 20);
    assert!(line.contains("x-forwarded-for") && line.contains("httproute/web/filters/0/0"), "{line}");

    // URLRewrite: host and path prefix (whole segments), query kept.
    let (st, _, body) =
        exchange(addr, b"", "GET /old/a/b?q=1 HTTP/1.1\r\nHost: f.example.com\r\nConnection: close\r\n\r\n");
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["path"].as_str(), v["host"].as_str()), (Some("/debug/ip/a/b"), Some("new.example.com")));

    // RequestRedirect: scheme https → port 443, left out; status as asked.
    let redirect = |path: &str| {
        let (st, head, _) =
            exchange(addr, b"", &format!("GET {path} HTTP/1.1\r\nHost: f.example.com\r\nConnection: close\r\n\r\n"));
        (st, header(&head, "location").map(str::to_owned))
    };
    assert_eq!(redirect("/secure/x?q=1"), (301, Some("https://f.example.com/secure/x?q=1".into())));
    // No scheme: the Gateway listener's port (80 for http: left out).
    assert_eq!(redirect("/moved/x"), (307, Some("http://other.example.com/new/x".into())));
    // Default status 302; an explicit port is written.
    assert_eq!(redirect("/port/a"), (302, Some("https://f.example.com:8443/elsewhere".into())));

    // A filter value the proxy cannot apply (CR LF in a header value): the
    // route says so (UnsupportedValue naming the field) and that rule
    // answers 500 — its requests never fall through to the catch-all rule.
    http_route(
        &api,
        "broken",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["b.example.com"], "rules": [
            {"matches": prefix("/admin"), "backendRefs": backend, "filters": [
                {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                    "set": [{"name": "X-Auth-Required", "value": "yes\r\nX-Admin: 1"}]}}]},
            {"backendRefs": backend}]}),
    );
    until_status(&p, addr, "b.example.com", "/other", 200);
    assert_eq!(status(addr, "b.example.com", "/admin/x"), 500, "not the catch-all rule's 200");
    let o = until(&api, "HTTPRoute", "web", "broken", "refused", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["reason"] == "UnsupportedValue"
    });
    let conds = &o["status"]["parents"][0]["conditions"];
    let msg = cond(conds, "Accepted")["message"].as_str().unwrap_or("");
    assert!(msg.contains("rules[0].filters[0].requestHeaderModifier.set[0].value") && msg.contains("500"), "{msg}");
    assert_eq!(cond(conds, "PartiallyInvalid")["status"], "True");
}

/// Weighted backendRefs: 2,000 requests over weights 80/20 land within
/// ±5 percentage points, a weight-0 backend gets none, and the share of a
/// backend that did not resolve is answered 500.
#[test]
fn weighted_backends_split_by_weight() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_a, pa) = echo_pod("a", 2);
    let (_b, pb) = echo_pod("b", 3);
    let (_z, pz) = echo_pod("zero", 4);
    service(&api, "app-a", 2, pa);
    service(&api, "app-b", 3, pb);
    service(&api, "app-zero", 4, pz);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "split",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["w.example.com"], "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/half"}}], "backendRefs": [
                {"name": "app-a", "port": 80, "weight": 1}, {"name": "missing", "port": 80, "weight": 1}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/none"}}], "backendRefs": [
                {"name": "missing", "port": 80}, {"name": "app-a", "namespace": "other", "port": 80}]},
            {"backendRefs": [{"name": "app-a", "port": 80, "weight": 80}, {"name": "app-b", "port": 80, "weight": 20},
                {"name": "app-zero", "port": 80, "weight": 0}]}]}),
    );
    let (p, addr, _dir) = proxy_with(&api, "weights", "gateway_ports = [80]\n", &[]);
    until_status(&p, addr, "w.example.com", "/", 200);
    let route = until(&api, "HTTPRoute", "web", "split", "missing backend reported", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "ResolvedRefs")["reason"] == "BackendNotFound"
    });
    assert_eq!(cond(&route["status"]["parents"][0]["conditions"], "Accepted")["status"], "True");
    let mut counts: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let n = 2000;
    for _ in 0..n {
        let (st, _, body) = exchange(addr, b"", "GET / HTTP/1.1\r\nHost: w.example.com\r\nConnection: close\r\n\r\n");
        let pod = if st == 200 {
            serde_json::from_str::<Value>(&body).unwrap()["pod"].as_str().unwrap_or("?").to_owned()
        } else {
            format!("status {st}")
        };
        *counts.entry(pod).or_default() += 1;
    }
    let share = |k: &str| f64::from(counts.get(k).copied().unwrap_or(0)) * 100.0 / f64::from(n);
    assert!((share("a") - 80.0).abs() <= 5.0 && (share("b") - 20.0).abs() <= 5.0, "{counts:?}");
    let answered = counts.get("a").copied().unwrap_or(0) + counts.get("b").copied().unwrap_or(0);
    assert_eq!(answered, n, "nothing else answered: {counts:?}");
    assert_eq!(counts.get("zero"), None, "weight 0 gets nothing: {counts:?}");
    let mut half: std::collections::HashMap<u16, u32> = std::collections::HashMap::new();
    for _ in 0..200 {
        *half.entry(status(addr, "w.example.com", "/half")).or_default() += 1;
    }
    let (ok, five) = (half.get(&200).copied().unwrap_or(0), half.get(&500).copied().unwrap_or(0));
    assert!(ok + five == 200 && (80..=120).contains(&five), "{half:?}");
    // Every backend invalid (not found; another namespace without a
    // ReferenceGrant): every request is answered 500.
    for _ in 0..20 {
        assert_eq!(status(addr, "w.example.com", "/none"), 500);
    }
    eprintln!("weights 80/20/0 over {n} requests: {counts:?}; 1/1 with one unresolved over 200: {half:?}");
}

/// An EndpointSlice change after the Gateway route is served (the batch
/// that only refreshes endpoints, no translation) moves the traffic to the
/// new pod, and back.
#[test]
fn an_endpoint_change_of_a_gateway_backend_is_served() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_a, pa) = echo_pod("a", 2);
    let (_b, pb) = echo_pod("b", 3);
    service(&api, "app-a", 2, pa);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["e.example.com"],
            "rules": [{"backendRefs": [{"name": "app-a", "port": 80}]}]}),
    );
    let (p, addr, _dir) = proxy_with(&api, "endpoints", "gateway_ports = [80]\n", &[]);
    until_status(&p, addr, "e.example.com", "/", 200);
    let pod = || {
        let (st, _, body) = exchange(addr, b"", "GET / HTTP/1.1\r\nHost: e.example.com\r\nConnection: close\r\n\r\n");
        (st == 200).then(|| serde_json::from_str::<Value>(&body).unwrap()["pod"].as_str().unwrap_or("?").to_owned())
    };
    let until_pod = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while pod().as_deref() != Some(want) {
            assert!(Instant::now() < deadline, "never served by pod {want}: {:?}", pod());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    until_pod("a");
    for (host, port, want) in [(3, pb, "b"), (2, pa, "a")] {
        api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "app-a-1", "namespace": "web", "labels": {"kubernetes.io/service-name": "app-a"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": [format!("127.0.0.{host}")], "conditions": {"ready": true}}]}));
        until_pod(want);
    }
}

/// A PROXY v2 header (TCP over IPv4) from `src` to `dst`, or LOCAL.
fn proxy_v2(src: Option<([u8; 4], u16)>, dst: ([u8; 4], u16)) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    match src {
        None => h.extend_from_slice(&[0x20, 0x00, 0, 0]),
        Some((ip, port)) => {
            h.extend_from_slice(&[0x21, 0x11, 0, 12]);
            h.extend_from_slice(&ip);
            h.extend_from_slice(&dst.0);
            h.extend_from_slice(&port.to_be_bytes());
            h.extend_from_slice(&dst.1.to_be_bytes());
        }
    }
    h
}

/// A ClientIPPolicy on one Gateway listener is applied on the
/// `[[listener]]` serving it — PROXY v2 required from the load balancer,
/// its own trusted proxies and sources, failClosed, forward headers —
/// while another listener keeps the file's chain; changes reach new
/// connections without a restart; two chains on one bind are a conflict.
#[test]
#[allow(clippy::too_many_lines)] // the whole chain, case by case
fn client_ip_policy_is_applied_per_listener() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(
        &api,
        &json!([{"name": "lb", "port": 80, "protocol": "HTTP"}, {"name": "plain", "port": 81, "protocol": "HTTP"}]),
    );
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["c.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "sectionName": "lb"});
    api.apply(policy(
        "ClientIPPolicy",
        "edge",
        &target,
        &json!({"proxyProtocol": {"mode": "Required", "trustedSenders": ["127.0.0.0/8"]},
            "trustedProxies": ["198.51.100.0/24"], "sources": ["ProxyProtocol", "XForwardedFor"],
            "failClosed": true, "forward": {"xForwardedFor": "Replace", "forwarded": true}}),
    ));
    let toml = "[[listener]]\nname = \"lb\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                [[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [81]\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "policy", toml, &["lb", "plain"]);
    let (lb, plain) = (addrs[0], addrs[1]);
    until_status(&p, plain, "c.example.com", "/", 200);
    let dst = ([127, 0, 0, 1], lb.port());
    let get = |addr: SocketAddr, pp: &[u8], xff: Option<&str>| {
        let xff = xff.map(|v| format!("X-Forwarded-For: {v}\r\n")).unwrap_or_default();
        let (st, _, body) =
            exchange(addr, pp, &format!("GET /ip HTTP/1.1\r\nHost: c.example.com\r\n{xff}Connection: close\r\n\r\n"));
        (st, serde_json::from_str::<Value>(&body).unwrap_or(Value::Null))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = proxy_v2(Some(([203, 0, 113, 7], 40000)), dst);
    while get(lb, &client, None).0 != 200 {
        assert!(Instant::now() < deadline, "the policy's listener is not served");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The PROXY source is the client; a spoofed X-Forwarded-For from it
    // (not a trusted proxy) is ignored; Replace sends only the client.
    let (st, v) = get(lb, &client, Some("192.0.2.66"));
    assert_eq!(st, 200);
    assert_eq!((v["x_real_ip"].as_str(), v["x_forwarded_for"].as_str()), (Some("203.0.113.7"), Some("203.0.113.7")));
    assert_eq!(v["forwarded"].as_str(), Some("for=203.0.113.7;proto=http;host=\"c.example.com\""));
    // A trusted proxy behind the load balancer: its X-Forwarded-For is read.
    let cdn = proxy_v2(Some(([198, 51, 100, 5], 40001)), dst);
    let (st, v) = get(lb, &cdn, Some("192.0.2.44"));
    assert_eq!((st, v["x_real_ip"].as_str()), (200, Some("192.0.2.44")));
    // failClosed: no trustworthy answer → 403 (garbage from the trusted
    // proxy; a PROXY LOCAL header, which leaves only the TCP peer).
    assert_eq!(get(lb, &cdn, Some("not-an-ip")).0, 403);
    assert_eq!(get(lb, &proxy_v2(None, dst), None).0, 403);
    // Required: no PROXY header, no HTTP.
    assert_eq!(get(lb, b"", None).0, 0);
    // The other listener keeps the file's chain: loopback is trusted there.
    let (st, v) = get(plain, b"", Some("192.0.2.44"));
    assert_eq!((st, v["x_real_ip"].as_str()), (200, Some("192.0.2.44")));
    assert_eq!(v["x_forwarded_for"].as_str(), Some("192.0.2.44, 127.0.0.1"), "Append");

    // A live change reaches new connections without a restart.
    api.apply(policy(
        "ClientIPPolicy",
        "edge",
        &target,
        &json!({"proxyProtocol": {"mode": "Optional", "trustedSenders": ["127.0.0.0/8"]},
            "trustedProxies": ["198.51.100.0/24"], "sources": ["ProxyProtocol", "XForwardedFor"]}),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(lb, b"", None).0 != 200 {
        assert!(Instant::now() < deadline, "the changed policy (PROXY optional) was not applied");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (st, v) = get(lb, b"", Some("192.0.2.66"));
    assert_eq!((st, v["x_real_ip"].as_str()), (200, Some("127.0.0.1")), "loopback is not trusted by the policy");
    // A bad edit does not replace the running chain: the last valid one
    // stays in force (the file's would trust loopback's X-Forwarded-For).
    api.apply(policy(
        "ClientIPPolicy",
        "edge",
        &target,
        &json!({"proxyProtocol": {"mode": "Optional", "trustedSenders": ["127.0.0.0/8"]},
            "trustedProxies": ["0.0.0.0/0", "10.0.0.0/33"], "sources": ["ProxyProtocol", "XForwardedFor"]}),
    ));
    let o = until(&api, "ClientIPPolicy", "web", "edge", "bad edit reported", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["reason"] == "Invalid"
    });
    let msg = cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["message"].as_str().unwrap_or("").to_owned();
    assert!(msg.contains("last valid version"), "{msg}");
    for _ in 0..20 {
        let (st, v) = get(lb, b"", Some("192.0.2.66"));
        assert_eq!((st, v["x_real_ip"].as_str()), (200, Some("127.0.0.1")), "the last valid chain is in force");
    }
    api.apply(policy(
        "ClientIPPolicy",
        "edge",
        &target,
        &json!({"proxyProtocol": {"mode": "Optional", "trustedSenders": ["127.0.0.0/8"]},
            "trustedProxies": ["198.51.100.0/24"], "sources": ["ProxyProtocol", "XForwardedFor"]}),
    ));
    until(&api, "ClientIPPolicy", "web", "edge", "fixed", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"] == "True"
    });

    // A newer Gateway on the lb listener's port with another chain (none):
    // one bind has one chain, and conflicts are settled by age as every
    // Gateway API conflict is, so the older listener keeps the bind, its
    // policy and its routes; the newer listener is Conflicted, not served.
    // (Before review 13 the newer Gateway knocked the older one's
    // policy-protected routes off the bind.) Its hostname is within the
    // host-less lb listener's, which since review 13b is a HostnameConflict
    // first (the chain conflict alone is tested with disjoint hostnames in
    // realip-kube's a_newer_listener_with_another_chain_on_a_port_is_conflicted).
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw2", "namespace": "web"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "other", "port": 80, "protocol": "HTTP", "hostname": "o.example.com"}]}}));
    let o = until(&api, "Gateway", "web", "gw2", "the newer listener is conflicted", |o| {
        cond(&o["status"]["listeners"][0]["conditions"], "Conflicted")["reason"] == "HostnameConflict"
    });
    let msg = cond(&o["status"]["listeners"][0]["conditions"], "Conflicted")["message"].to_string();
    assert!(msg.contains("gateway/web/gw/lb"), "{msg}");
    for _ in 0..20 {
        let (st, v) = get(lb, b"", Some("192.0.2.66"));
        assert_eq!((st, v["x_real_ip"].as_str()), (200, Some("127.0.0.1")), "the older listener keeps its chain");
    }
    assert_eq!(get(plain, b"", None).0, 200);
    let o = api.get("ClientIPPolicy", "web", "edge").unwrap();
    assert_eq!(cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"], "True", "{o}");
}

/// ClientAccessPolicy on a Gateway (all its routes) and on one HTTPRoute
/// rule (`sectionName`), keyed on the resolved client (here from
/// X-Forwarded-For of the trusted loopback peer, never the peer itself):
/// deny, allow, and a per-client rate limit; the Gateway's lists stay a
/// floor under a rule's or route's own policy.
#[test]
fn client_access_policies_key_on_the_resolved_client() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    let backend = json!([{"name": "app", "port": 80}]);
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"], "rules": [
            {"name": "admin", "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}},
                {"path": {"type": "PathPrefix", "value": "/console"}}], "backendRefs": backend},
            {"backendRefs": backend}]}),
    );
    let gw_target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy("ClientAccessPolicy", "no-bots", &gw_target, &json!({"deny": ["192.0.2.0/24"]})));
    let rule_target =
        json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "site", "sectionName": "admin"});
    api.apply(policy(
        "ClientAccessPolicy",
        "admins",
        &rule_target,
        &json!({"allow": ["198.51.100.0/24"], "rateLimit": {"perSecond": 0.01, "burst": 2}}),
    ));
    let (p, addr, _dir) = proxy_with(&api, "access", "gateway_ports = [80]\n", &[]);
    let from = |path: &str, client: &str| {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: a.example.com\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n"
        );
        exchange(addr, b"", &req).0
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while from("/", "203.0.113.5") != 200 || from("/", "192.0.2.9") != 403 {
        if Instant::now() >= deadline {
            let log: Vec<String> = p.stderr.try_iter().collect();
            panic!("the Gateway's access policy is not served; proxy log:\n{}", log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for name in ["no-bots", "admins"] {
        let o = until(&api, "ClientAccessPolicy", "web", name, "accepted", |o| !o["status"]["ancestors"].is_null());
        assert_eq!(cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"], "True", "{name}");
    }
    // The rule's policy: only its allow list, and a bucket per client.
    assert_eq!(from("/admin", "203.0.113.5"), 403);
    assert_eq!(from("/admin/x", "198.51.100.7"), 200);
    assert_eq!(from("/admin/x", "198.51.100.7"), 200);
    assert_eq!(from("/admin/x", "198.51.100.7"), 429, "burst 2 spent");
    assert_eq!(from("/console", "198.51.100.7"), 429, "one bucket per client for the policy, not one per match");
    assert_eq!(from("/admin/x", "198.51.100.8"), 200, "another client has its own bucket");
    assert_eq!(from("/admin", "192.0.2.9"), 403, "not on the allow list");
    // Other routes keep the Gateway's policy.
    assert_eq!(from("/other", "192.0.2.9"), 403);
    assert_eq!(from("/other", "198.51.100.7"), 200);
    // The tenant adds a rate-limit-only policy on its whole route: the
    // Gateway's deny list stays in force (a floor), the rate limit applies.
    let route_target = json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "site"});
    api.apply(policy(
        "ClientAccessPolicy",
        "tenant",
        &route_target,
        &json!({"rateLimit": {"perSecond": 0.01, "burst": 1}}),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while from("/other", "198.51.100.20") != 429 {
        assert!(Instant::now() < deadline, "the tenant's rate limit is not served");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(from("/other", "192.0.2.9"), 403, "the Gateway's deny list survives the route's policy");
    assert_eq!(from("/other", "198.51.100.21"), 200);
}

/// Review 13b N3: a tenant's route policy with a lower rate but a huge
/// burst does not lift the Gateway owner's `{perSecond: 1, burst: 1}`:
/// each field's minimum applies, so back-to-back requests of one client
/// get one 200 (plus one per second the loop took), not 50.
#[test]
fn a_route_rate_limit_with_a_larger_burst_does_not_lift_the_gateways() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let gw = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy("ClientAccessPolicy", "owner", &gw, &json!({"rateLimit": {"perSecond": 1, "burst": 1}})));
    let route = json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "site"});
    api.apply(policy(
        "ClientAccessPolicy",
        "tenant",
        &route,
        &json!({"rateLimit": {"perSecond": 0.99, "burst": 1000}}),
    ));
    let (p, addr, _dir) = proxy_with(&api, "rate-floor", "gateway_ports = [80]\n", &[]);
    let from = |client: &str| {
        let req =
            format!("GET / HTTP/1.1\r\nHost: a.example.com\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n");
        exchange(addr, b"", &req).0
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while from("203.0.113.1") != 200 {
        if Instant::now() >= deadline {
            let log: Vec<String> = p.stderr.try_iter().collect();
            panic!("the route is not served; proxy log:\n{}", log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for name in ["owner", "tenant"] {
        let o = until(&api, "ClientAccessPolicy", "web", name, "accepted", |o| {
            cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"] == "True"
        });
        assert_eq!(cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["reason"], "Accepted", "{name}");
    }
    let start = Instant::now();
    let ok = (0..50).filter(|_| from("198.51.100.60") == 200).count();
    let refills = usize::try_from(start.elapsed().as_secs()).unwrap_or(usize::MAX).saturating_add(1);
    assert!(ok >= 1, "the first request of a fresh client is let through");
    assert!(ok <= 1 + refills, "{ok} of 50 requests got 200 within {:?}: the burst was lifted", start.elapsed());
}

/// Review 14 F2: the file's `[policy]` (the operator's) is a floor under
/// every Gateway API route: a tenant's ClientAccessPolicy allowing
/// everyone with a huge rate on its own HTTPRoute lets no client outside
/// `[policy] allow` in, and the file's rate still counts each request.
#[test]
fn a_tenant_access_policy_does_not_lift_the_files_policy() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    for (name, host) in [("open", "open.example.com"), ("plain", "plain.example.com")] {
        http_route(
            &api,
            name,
            &json!({"parentRefs": [{"name": "gw"}], "hostnames": [host],
                "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
        );
    }
    let route = json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "open"});
    api.apply(policy(
        "ClientAccessPolicy",
        "everyone",
        &route,
        &json!({"allow": ["0.0.0.0/0", "::/0"], "rateLimit": {"perSecond": 100_000, "burst": 100_000}}),
    ));
    let file_policy =
        "gateway_ports = [80]\n[policy]\nallow = [\"192.0.2.0/24\"]\nrate = { per_second = 0.01, burst = 2 }\n";
    let (p, addr, _dir) = proxy_with(&api, "file-floor", file_policy, &[]);
    let from = |host: &str, client: &str| {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n");
        exchange(addr, b"", &req).0
    };
    let o = until(&api, "ClientAccessPolicy", "web", "everyone", "accepted", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"] == "True"
    });
    assert_eq!(cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["reason"], "Accepted");
    // The file's allow list holds on both routes (waiting until served).
    let deadline = Instant::now() + Duration::from_secs(20);
    while from("plain.example.com", "198.51.100.7") != 403 || from("open.example.com", "198.51.100.7") != 403 {
        if Instant::now() >= deadline {
            let log: Vec<String> = p.stderr.try_iter().collect();
            panic!(
                "outsider: plain {}, open {}; proxy log:\n{}",
                from("plain.example.com", "198.51.100.7"),
                from("open.example.com", "198.51.100.7"),
                log.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A client inside it: the file's burst of 2 (one bucket per client
    // across routes, refilling once in 100 s) under the tenant's 100,000.
    let got: Vec<u16> = (0..5).map(|_| from("open.example.com", "192.0.2.7")).collect();
    assert_eq!(got, [200, 200, 429, 429, 429], "the file's rate lifted by the tenant's policy");
    assert_eq!(from("plain.example.com", "192.0.2.7"), 429, "one [policy] bucket per client across routes");
    assert_eq!(from("open.example.com", "192.0.2.8"), 200, "another client has its own bucket");
}

/// Review 13c C13: the Gateway's per-client rate limit is one budget for
/// the whole Gateway. Gateway policy 1/s burst 2; routes r1, r2, r3 on
/// hosts h1, h2, h3, with tenant policies 0.99/s burst 2 on r2 and r3:
/// 4 quick requests per host from one client get 2 successes in all (plus
/// one per second the loop took), not 2 per route policy. With `scope`
/// `Global` every bucket is its own key in a real `redis-server`.
fn one_gateway_budget_across_route_policies(scope: &str, store: &str, after_burst: &dyn Fn(&str)) {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    for i in 1..=3 {
        http_route(
            &api,
            &format!("r{i}"),
            &json!({"parentRefs": [{"name": "gw"}], "hostnames": [format!("h{i}.example.com")],
                "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
        );
    }
    let gw = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy(
        "ClientAccessPolicy",
        "owner",
        &gw,
        &json!({"rateLimit": {"perSecond": 1, "burst": 2, "scope": scope}}),
    ));
    // The tenants' deny lists show when their policies are served.
    for i in 2..=3 {
        let route = json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": format!("r{i}")});
        api.apply(policy(
            "ClientAccessPolicy",
            &format!("tenant{i}"),
            &route,
            &json!({"deny": ["192.0.2.0/24"], "rateLimit": {"perSecond": 0.99, "burst": 2, "scope": scope}}),
        ));
    }
    let (p, addr, _dir) = proxy_with(&api, &format!("budget-{scope}"), &format!("gateway_ports = [80]\n{store}"), &[]);
    let from = |host: &str, client: &str| {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n");
        exchange(addr, b"", &req).0
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut probe = 0u8;
    loop {
        probe = probe.wrapping_add(1);
        let fresh = format!("203.0.113.{probe}");
        if from("h1.example.com", &fresh) == 200
            && from("h2.example.com", "192.0.2.9") == 403
            && from("h3.example.com", "192.0.2.9") == 403
        {
            break;
        }
        if Instant::now() >= deadline {
            let log: Vec<String> = p.stderr.try_iter().collect();
            panic!("the routes and their policies are not served; proxy log:\n{}", log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    let per_host: Vec<usize> = (1..=3)
        .map(|i| (0..4).filter(|_| from(&format!("h{i}.example.com"), "198.51.100.32") == 200).count())
        .collect();
    let refills = usize::try_from(start.elapsed().as_secs()).unwrap_or(usize::MAX);
    after_burst("198.51.100.32");
    assert_eq!(per_host[0], 2, "a fresh client has the Gateway's burst: {per_host:?}");
    let total: usize = per_host.iter().sum();
    assert!(
        total <= 2 + refills,
        "{per_host:?} (h1, h2, h3) within {:?}: route policies added to the Gateway's budget",
        start.elapsed()
    );
    // Another client has budgets of its own, the route's limit included.
    assert_eq!(from("h2.example.com", "198.51.100.33"), 200);
}

#[test]
fn a_gateway_rate_limit_is_one_budget_across_route_policies() {
    one_gateway_budget_across_route_policies("Local", "", &|_| ());
}

#[test]
fn a_global_gateway_rate_limit_is_one_budget_across_route_policies() {
    if !common::need(&["redis-server", "redis-cli"]) {
        return;
    }
    let dir = Dir(std::env::temp_dir().join(format!("realip-gw-redis-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let port = common::free_port();
    let _redis = spawn(
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(&dir.0),
    );
    common::wait_port(format!("127.0.0.1:{port}").parse().unwrap(), 20);
    let store = format!("[rate_limit_store]\nredis = \"redis://127.0.0.1:{port}/0\"\n");
    // Each bucket is its own key, read right after the burst (a key
    // expires when its bucket is full again): the Gateway's and the
    // route policies'.
    let keys = |client: &str| {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["--scan", "--pattern", &format!("realip:rl:*:{client}")])
            .output()
            .unwrap();
        let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        keys.sort();
        let want: Vec<String> = ["owner", "tenant2", "tenant3"]
            .iter()
            .map(|p| format!("realip:rl:clientaccesspolicy:web/{p}:{client}"))
            .collect();
        assert_eq!(keys, want);
    };
    one_gateway_budget_across_route_policies("Global", &store, &keys);
}

/// A real load balancer nobody here wrote: HAProxy `send-proxy-v2` in
/// front of the Gateway listener whose ClientIPPolicy requires PROXY from
/// it; curl from 127.0.0.2 with a forged X-Forwarded-For. The app gets the
/// client HAProxy saw, never the forged value.
#[test]
fn client_ip_policy_behind_haproxy_send_proxy_v2() {
    if !common::need(&["haproxy", "curl"]) {
        return;
    }
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(&api, &json!([{"name": "lb", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["c.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy(
        "ClientIPPolicy",
        "edge",
        &target,
        &json!({"proxyProtocol": {"mode": "Required", "trustedSenders": ["127.0.0.1/32"]},
            "sources": ["ProxyProtocol", "XForwardedFor"], "failClosed": true}),
    ));
    let toml = "[[listener]]\nname = \"lb\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (p, addrs, dir) = proxy_file(&api, "haproxy", toml, &["lb"]);
    let front = common::free_port();
    let hcfg = dir.0.join("haproxy.cfg");
    std::fs::write(
        &hcfg,
        format!(
            "global\n  log stderr local0\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend f\n  bind 127.0.0.1:{front}\n  default_backend b\n\
             backend b\n  server p {} send-proxy-v2\n",
            addrs[0]
        ),
    )
    .unwrap();
    let _h = spawn(Command::new("haproxy").arg("-db").arg("-f").arg(&hcfg));
    common::wait_port(format!("127.0.0.1:{front}").parse().unwrap(), 20);
    let url = format!("http://127.0.0.1:{front}/debug/ip");
    let args = ["--interface", "127.0.0.2", "-H", "Host: c.example.com", "-H", "X-Forwarded-For: 192.0.2.66", &url];
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (ok, body) = common::curl(&args);
        if ok && body.contains("client_ip") {
            break body;
        }
        if Instant::now() >= deadline {
            let log: Vec<String> = p.stderr.try_iter().collect();
            panic!("not served through HAProxy: {body}; proxy log:\n{}", log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["x_real_ip"], "127.0.0.2", "the PROXY source, the forged XFF ignored: {v}");
    assert_eq!(v["x_forwarded_for"], "127.0.0.2", "appended hop = the PROXY source: {v}");
    // The policy requires PROXY: a direct connection gets no HTTP at all.
    assert_eq!(exchange(addrs[0], b"", "GET / HTTP/1.1\r\nHost: c.example.com\r\n\r\n").0, 0);
}

/// A route the proxy cannot serve (attached to a Gateway listener whose
/// port no `[[listener]]` binds) is logged once, when that becomes so —
/// not again on every reload that follows — and once more when it is
/// served again.
#[test]
fn an_unserved_route_is_logged_once_per_change() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(
        &api,
        // A hostname on `alt`: once one bind serves both ports (below),
        // two listeners without one would not be distinct there.
        &json!([{"name": "http", "port": 80, "protocol": "HTTP"},
            {"name": "alt", "port": 81, "protocol": "HTTP", "hostname": "u.example.com"}]),
    );
    let backend = json!([{"name": "app", "port": 80}]);
    http_route(
        &api,
        "unbound",
        &json!({"parentRefs": [{"name": "gw", "sectionName": "alt"}], "hostnames": ["u.example.com"],
            "rules": [{"backendRefs": backend}]}),
    );
    let dir = Dir(std::env::temp_dir().join(format!("realip-gw-once-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let cfg = dir.0.join("realip.toml");
    let file = |ports: &str| {
        format!("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [{ports}]\n\n[client_ip]\ntrusted = [\"127.0.0.0/8\"]\n")
    };
    std::fs::write(&cfg, file("80")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
    cmd.args(["proxy", "--kubernetes", "--publish-service", "realip/realip", "--config"])
        .arg(&cfg)
        .env("KUBECONFIG", api.kubeconfig(&dir.0).unwrap());
    let p = spawn(&mut cmd);
    let line = wait_line(&p.stderr, "\"listening\"", 20);
    let addr: SocketAddr = serde_json::from_str::<Value>(&line).unwrap()["addr"].as_str().unwrap().parse().unwrap();
    // Once for the route and listener (not once per hostname and match:
    // the controller hands the proxy no route entries there).
    let line = wait_line(&p.stderr, "kubernetes_route_unserved", 20);
    assert!(
        line.contains("\"httproute/web/unbound on gateway/web/gw/alt\"") && line.contains("gateway_ports = [81]"),
        "{line}"
    );
    // The status says so: the listener no bind serves is not Programmed,
    // nor is its Gateway.
    let programmed = |o: &Value, listener: usize| {
        let l = &o["status"]["listeners"][listener]["conditions"];
        (cond(l, "Programmed")["status"].clone(), cond(&o["status"]["conditions"], "Programmed")["status"].clone())
    };
    let gw = until(&api, "Gateway", "web", "gw", "unbound listener", |o| {
        programmed(o, 1) == (json!("False"), json!("False"))
    });
    let alt = cond(&gw["status"]["listeners"][1]["conditions"], "Programmed");
    assert_eq!(alt["reason"], "Invalid");
    assert!(alt["message"].as_str().unwrap_or("").contains("81 in its gateway_ports"), "{alt}");
    assert!(cond(&gw["status"]["conditions"], "Programmed")["message"]
        .as_str()
        .unwrap_or("")
        .contains("alt (port 81)"));
    assert_eq!(programmed(&gw, 0).0, "True", "port 80 is bound");
    // Five more reloads (a route each), the unserved route unchanged.
    for i in 0..5 {
        let host = format!("h{i}.example.com");
        http_route(
            &api,
            &format!("more-{i}"),
            &json!({"parentRefs": [{"name": "gw", "sectionName": "http"}], "hostnames": [host], "rules": [{"backendRefs": backend}]}),
        );
        until_status(&p, addr, &host, "/", 200);
    }
    let log: Vec<String> = p.stderr.try_iter().collect();
    let reloads = log.iter().filter(|l| l.contains("\"reloaded\"")).count();
    assert!(reloads >= 5, "{reloads} reloads: {log:#?}");
    let again: Vec<&String> = log.iter().filter(|l| l.contains("kubernetes_route_unserved")).collect();
    assert!(again.is_empty(), "logged again on reloads that did not change it: {again:#?}");
    // The file binds port 81 too: the route is served, and that is logged.
    std::fs::write(&cfg, file("80, 81")).unwrap();
    let line = wait_line(&p.stderr, "kubernetes_route_served", 20);
    assert!(line.contains("httproute/web/unbound on gateway/web/gw/alt"), "{line}");
    until_status(&p, addr, "u.example.com", "/", 200);
    // …and the status follows the reload: every listener is programmed.
    until(&api, "Gateway", "web", "gw", "listener bound after the reload", |o| {
        programmed(o, 1) == (json!("True"), json!("True"))
    });
}

/// Two Gateway listeners on different ports that one `[[listener]]`
/// serves (`gateway_ports = [80, 81]`), each with a ClientIPPolicy of its
/// own chain: one bind cannot apply both, so the later listener is
/// Conflicted and not served, and its policy says so, naming the bind and
/// the other policy; the earlier keeps its policy.
#[test]
fn client_ip_policies_on_ports_one_bind_serves_are_conflicted() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway(
        &api,
        &json!([{"name": "a", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"},
            {"name": "b", "port": 81, "protocol": "HTTP", "hostname": "b.example.com"}]),
    );
    let on = |listener: &str| json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "sectionName": listener});
    api.apply(policy("ClientIPPolicy", "edge-a", &on("a"), &json!({"trustedProxies": ["192.0.2.0/24"]})));
    api.apply(policy("ClientIPPolicy", "edge-b", &on("b"), &json!({"trustedProxies": ["198.51.100.0/24"]})));
    let (_p, _addr, _dir) = proxy_with(&api, "one-bind", "gateway_ports = [80, 81]\n", &[]);
    let o = until(&api, "ClientIPPolicy", "web", "edge-b", "conflict on one bind", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["reason"] == "Conflicted"
    });
    let msg = cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["message"].as_str().unwrap_or("").to_owned();
    assert!(msg.contains("[[listener]] `web`") && msg.contains("web/edge-a"), "{msg}");
    let o = until(&api, "ClientIPPolicy", "web", "edge-a", "the earlier listener keeps its policy", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"] == "True"
    });
    assert_eq!(cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["reason"], "Accepted");
}

/// Review 13b N9: a tenant's own Gateway and a ClientIPPolicy trusting
/// every address, on the port whose `[[listener]]` also serves an Ingress,
/// never change how the Ingress's clients are resolved: a forged
/// X-Forwarded-For still gets 403 from its allow list, the tenant's route
/// is not served there and the log says why; once the bind serves no
/// Ingress, the Gateway route is served with its own policy's chain.
#[test]
fn a_client_ip_policy_never_changes_the_chain_of_ingress_routes() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "site", "namespace": "web",
        "annotations": {"nginx.ingress.kubernetes.io/whitelist-source-range": "198.51.100.0/24"}},
        "spec": {"ingressClassName": "realip", "rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}));
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "realip"},
        "spec": {"controllerName": "realip.dev/gateway-controller"}}),
    );
    // The test peer 127.0.0.1 is not a trusted proxy of the file.
    let toml = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                [client_ip]\ntrusted = [\"192.0.2.0/24\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "n9", toml, &["web"]);
    let addr = addrs[0];
    let forged = |host: &str| {
        let req =
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 198.51.100.7\r\nConnection: close\r\n\r\n");
        let (st, _, body) = exchange(addr, b"", &req);
        (st, serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)["client_ip"].clone())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while forged("a.example.com").0 != 403 {
        assert!(Instant::now() < deadline, "the Ingress is never served: {:?}", forged("a.example.com"));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The tenant's Gateway, route (to its own Service) and policy.
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "mine", "namespace": "evil"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "evil.example.com"}]}}));
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "evil"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}}));
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-1", "namespace": "evil", "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": ["127.0.0.2"], "conditions": {"ready": true}}]}));
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "evil"},
        "spec": {"parentRefs": [{"name": "mine"}], "hostnames": ["evil.example.com"], "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}}));
    api.apply(json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientIPPolicy", "metadata": {"name": "trustall", "namespace": "evil"},
        "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "mine"}],
            "trustedProxies": ["0.0.0.0/0"], "sources": ["XForwardedFor"]}}));
    let line = wait_line(&p.stderr, "always resolved with the file's chain", 20);
    assert!(line.contains("kubernetes_route_unserved") && line.contains("evil/trustall"), "{line}");
    assert!(line.contains("httproute/evil/r"), "{line}");
    let (st, client) = forged("a.example.com");
    assert_eq!(st, 403, "forged X-Forwarded-For passed the Ingress allow list as {client}");
    assert_eq!(status(addr, "evil.example.com", "/"), 404, "the tenant's route is not served on this bind");

    // Without the Ingress the bind serves Gateway routes only: the route
    // is served and its clients are resolved with its policy's chain.
    api.delete("Ingress", "web", "site");
    until_status(&p, addr, "evil.example.com", "/", 200);
    assert_eq!(forged("evil.example.com"), (200, json!("198.51.100.7")));
    assert_eq!(status(addr, "a.example.com", "/"), 404);
}

/// realip.dev kinds that cannot be listed for another reason than a
/// missing CRD (403: the RBAC lacks them) are not taken for absent: no
/// Gateway route is served without the policies that may protect it (one
/// `gateway_policies_unreadable` line), and once they can be listed the
/// routes are served with their policies. (404 — CRDs not installed —
/// keeps serving Gateway routes without policies, as documented.)
#[test]
fn unreadable_policy_kinds_fail_closed() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["c.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let gw = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy("ClientAccessPolicy", "allow", &gw, &json!({"allow": ["203.0.113.0/24"]})));
    api.forbid_group("realip.dev", true);
    let (p, addr, _dir) = proxy_with(&api, "forbidden", "gateway_ports = [80]\n", &[]);
    let line = wait_line(&p.stderr, "gateway_policies_unreadable", 20);
    assert!(line.contains("clientaccesspolicies") && line.contains("403"), "{line}");
    let get = |xff: &str| {
        let req =
            format!("GET / HTTP/1.1\r\nHost: c.example.com\r\nX-Forwarded-For: {xff}\r\nConnection: close\r\n\r\n");
        raw_http(addr, req.as_bytes()).map_or(0, |(s, _)| s)
    };
    for _ in 0..20 {
        assert_eq!(get("192.0.2.9"), 404, "a Gateway route is served while its policies cannot be read");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The RBAC fixed: the watch's retry lists them and the routes are
    // served with their policy.
    api.forbid_group("realip.dev", false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get("192.0.2.9") != 403 {
        assert!(Instant::now() < deadline, "not served with its policy once readable: {}", get("192.0.2.9"));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get("203.0.113.5"), 200);
}

/// A victim HTTPRoute (older) owning shop.example.com, and a tenant's
/// newer Ingress for the same host (normally not served: the HTTPRoute owns
/// it); `fillers` more HTTPRoutes make the Gateway side slower to compute.
/// The proxy (not started) gets a data and an admin listener.
fn squatted_host(api: &FakeApi, fillers: usize) -> (Proc, Proc, String) {
    base(api);
    let (victim, port) = echo_pod("victim", 2);
    service(api, "app", 2, port);
    let attacker = evil_app(api);
    gateway(
        api,
        &json!([{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    );
    http_route(
        api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["shop.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    for i in 0..fillers {
        http_route(
            api,
            &format!("filler-{i}"),
            &json!({"parentRefs": [{"name": "gw"}], "hostnames": [format!("f{i}.example.com")],
                "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
        );
    }
    std::thread::sleep(Duration::from_millis(1100)); // a later creationTimestamp (whole seconds)
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "squat", "namespace": "evil"},
        "spec": {"ingressClassName": "realip", "rules": [{"host": "shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}));
    let toml = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n[admin]\nbind = \"127.0.0.1:0\"\n\n[client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    (victim, attacker, toml.to_owned())
}

fn readyz(admin: SocketAddr) -> u16 {
    raw_http(admin, b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").map_or(0, |(s, _)| s)
}

/// Review 14 F9: from the proxy's start, the tenant's Ingress never
/// answers for the host an older HTTPRoute owns (its routes are held until
/// the Gateway side is in), and `/readyz` says 503 until both sides are
/// composed.
#[test]
fn at_start_an_ingress_never_serves_a_host_an_httproute_owns() {
    let api = FakeApi::start().unwrap();
    let (_victim, _attacker, toml) = squatted_host(&api, 1500);
    let (p, addrs, _dir) = proxy_file(&api, "f9", &toml, &["web", "admin"]);
    let (web, admin) = (addrs[0], addrs[1]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let ready = readyz(admin);
        let (status, attacker) = get_as(web, "shop.example.com", "/", "198.51.100.7");
        if seen.last() != Some(&(status, attacker, ready)) {
            seen.push((status, attacker, ready));
        }
        assert!(!attacker, "the squatting Ingress answered; (status, attacker, /readyz) seen: {seen:?}");
        if status == 200 {
            break;
        }
        assert_eq!(ready, 503, "ready before the victim's route is served: {seen:?}");
        if Instant::now() >= deadline {
            let log: Vec<String> = p.stderr.try_iter().collect();
            panic!("the victim's route is not served: {seen:?}; proxy log:\n{}", log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while readyz(admin) != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(get_as(web, "shop.example.com", "/", "198.51.100.7"), (200, false));
}

/// Review 14 F8: while the realip.dev kinds cannot be read (RBAC not yet
/// granted, a 5xx), the Gateway routes are withheld — and so is the host
/// they name from a newer Ingress: the squatter never answers, the proxy
/// is not ready; once readable, the victim's route is served and ready.
#[test]
fn while_policies_are_unreadable_an_ingress_does_not_get_an_httproutes_host() {
    let api = FakeApi::start().unwrap();
    let (_victim, _attacker, toml) = squatted_host(&api, 0);
    api.forbid_group("realip.dev", true);
    let (p, addrs, _dir) = proxy_file(&api, "f8", &toml, &["web", "admin"]);
    let (web, admin) = (addrs[0], addrs[1]);
    wait_line(&p.stderr, "gateway_policies_unreadable", 20);
    for _ in 0..20 {
        assert_eq!(get_as(web, "shop.example.com", "/", "198.51.100.7"), (404, false));
        assert_eq!(readyz(admin), 503);
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = wait_line(&p.stderr, "ingress_routes_held", 20);
    assert!(line.contains("\"routes\":1"), "{line}");
    api.forbid_group("realip.dev", false);
    until_status(&p, web, "shop.example.com", "/", 200);
    assert_eq!(get_as(web, "shop.example.com", "/", "198.51.100.7"), (200, false));
    let deadline = Instant::now() + Duration::from_secs(10);
    while readyz(admin) != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Objects the CRD schemas admit but realip's types refuse (an HTTPRoute
/// weight past `i32`, a rate limit's ipv6PrefixLength of 300, a Gateway
/// listener port past `i32`), present before the proxy starts: each is
/// reported once by kind, namespace/name and field, and left out; every
/// other object of their kinds is served. A route edited into such a state
/// stops being served (fail closed), and is served again once fixed.
#[test]
fn an_object_that_does_not_decode_is_left_out_and_reported() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    let good = json!({"parentRefs": [{"name": "gw"}], "hostnames": ["good.example.com"],
        "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]});
    let bad = json!({"parentRefs": [{"name": "gw"}], "hostnames": ["bad.example.com"],
        "rules": [{"backendRefs": [{"name": "app", "port": 80, "weight": 4_294_967_296_u64}]}]});
    http_route(&api, "good", &good);
    http_route(&api, "bad", &bad);
    let other = json!({"parentRefs": [{"name": "gw"}], "hostnames": ["other.example.com"],
        "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]});
    http_route(&api, "other", &other);
    let gw_target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy("ClientAccessPolicy", "deny", &gw_target, &json!({"deny": ["192.0.2.0/24"]})));
    // A new ClientAccessPolicy that does not decode fails closed on its
    // targets, as an invalid one does (review 13d X9).
    let route_target = json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "other"});
    api.apply(policy(
        "ClientAccessPolicy",
        "badx",
        &route_target,
        &json!({"rateLimit": {"perSecond": 1, "ipv6PrefixLength": 300}}),
    ));
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gwbad", "namespace": "web"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 4_294_967_376_u64, "protocol": "HTTP"}]}}));
    let (p, addr, _dir) = proxy_with(&api, "undecodable", "gateway_ports = [80]\n", &[]);
    let mut reported = Vec::new();
    while reported.len() < 3 {
        reported.push(wait_line(&p.stderr, "kubernetes_object_undecodable", 20));
    }
    let said = |kind: &str, name: &str, field: &str| {
        reported.iter().any(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["kind"] == kind
                && v["namespace"] == "web"
                && v["name"] == name
                && v["error"].as_str().unwrap_or("").contains(field)
        })
    };
    assert!(said("HTTPRoute", "bad", "spec.rules[0].backendRefs[0].weight"), "{reported:#?}");
    assert!(said("ClientAccessPolicy", "badx", "spec.rateLimit.ipv6PrefixLength"), "{reported:#?}");
    assert!(said("Gateway", "gwbad", "spec.listeners[0].port"), "{reported:#?}");
    until_status(&p, addr, "good.example.com", "/", 200);
    let from = |host: &str, client: &str| {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n");
        exchange(addr, b"", &req).0
    };
    assert_eq!(from("good.example.com", "192.0.2.9"), 403, "the good policy of the same kind is served");
    assert_eq!(from("bad.example.com", "203.0.113.5"), 404, "the bad route is not served");
    assert_eq!(from("other.example.com", "203.0.113.5"), 403, "the undecodable policy fails closed");
    let badx = until(&api, "ClientAccessPolicy", "web", "badx", "badx Invalid", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["reason"] == "Invalid"
    });
    let c = cond(&badx["status"]["ancestors"][0]["conditions"], "Accepted");
    assert!(c["message"].as_str().unwrap().contains("does not decode"), "{c}");
    // A policy edited into an undecodable state keeps its last valid
    // version in force: never deleted (fail open).
    let gen = |o: &Value| o["metadata"]["generation"].as_i64().unwrap_or(0);
    let before = gen(&api.get("ClientAccessPolicy", "web", "deny").unwrap());
    api.apply(policy(
        "ClientAccessPolicy",
        "deny",
        &gw_target,
        &json!({"deny": ["192.0.2.0/24"], "rateLimit": {"perSecond": 1000, "ipv6PrefixLength": 300}}),
    ));
    let line = wait_line(&p.stderr, "kubernetes_object_undecodable", 20);
    assert!(line.contains("\"name\":\"deny\"") && line.contains("last valid version stays in force"), "{line}");
    until(&api, "ClientAccessPolicy", "web", "deny", "deny Invalid for the edit", |o| {
        let a = cond(&o["status"]["ancestors"][0]["conditions"], "Accepted");
        a["reason"] == "Invalid" && a["observedGeneration"].as_i64() > Some(before)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(from("good.example.com", "192.0.2.9"), 403, "the last valid deny list stays");
    assert_eq!(from("good.example.com", "203.0.113.5"), 200);
    api.apply(policy("ClientAccessPolicy", "deny", &gw_target, &json!({"deny": ["192.0.2.0/24"]})));
    // Edited into an undecodable state: no longer served, and reported.
    let mut broken = good.clone();
    broken["rules"][0]["backendRefs"][0]["weight"] = json!(4_294_967_296_u64);
    http_route(&api, "good", &broken);
    let line = wait_line(&p.stderr, "kubernetes_object_undecodable", 20);
    assert!(line.contains("\"name\":\"good\"") && line.contains("no longer in force"), "{line}");
    until_status(&p, addr, "good.example.com", "/", 404);
    // Fixed: served again; the route fixed in place is served too.
    http_route(&api, "good", &good);
    let mut fixed = bad;
    fixed["rules"][0]["backendRefs"][0]["weight"] = json!(1);
    http_route(&api, "bad", &fixed);
    until_status(&p, addr, "good.example.com", "/", 200);
    until_status(&p, addr, "bad.example.com", "/", 200);
    let again: Vec<String> = p
        .stderr
        .try_iter()
        .filter(|l| l.contains("kubernetes_object_undecodable") || l.contains("watch_error"))
        .collect();
    assert!(again.is_empty(), "reported again: {again:#?}");
}

/// An Ingress of another namespace cannot add a path under a host an
/// HTTPRoute serves (it would escape the Gateway's ClientAccessPolicy):
/// that Ingress path is reported (`kubernetes_route_unserved`, naming the
/// HTTPRoute) and not served — the host's requests get the Gateway's
/// answers (403 for a denied client, 404 for a path no rule has), never
/// the Ingress backend; its paths on other hosts are served; once the
/// HTTPRoute is gone, the Ingress path is served again.
#[test]
fn an_ingress_does_not_take_paths_on_a_host_an_httproute_serves() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let (_attacker, evil_port) = echo_pod("attacker", 3);
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "evil"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": evil_port}]}}));
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-1", "namespace": "evil", "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": evil_port}],
        "endpoints": [{"addresses": ["127.0.0.3"], "conditions": {"ready": true}}]}));
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"], "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/app"}}], "backendRefs": [{"name": "app", "port": 80}]},
            {"matches": [{"path": {"type": "Exact", "value": "/login"}}], "backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let gw_target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy("ClientAccessPolicy", "owner", &gw_target, &json!({"deny": ["192.0.2.0/24"]})));
    let path = |p: &str| json!({"path": p, "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}});
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "grab", "namespace": "evil"},
        "spec": {"ingressClassName": "realip", "rules": [
            {"host": "a.example.com", "http": {"paths": [path("/login"), path("/other")]}},
            {"host": "grab.example.com", "http": {"paths": [path("/")]}}]}}));
    let (p, addr, _dir) = proxy_with(&api, "hostowned", "gateway_ports = [80]\n", &[]);
    let get = |host: &str, path: &str, client: &str| {
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n");
        let (st, _, body) = exchange(addr, b"", &req);
        (st, body.contains("attacker"))
    };
    let line = wait_line(&p.stderr, "kubernetes_route_unserved", 20);
    assert!(
        line.contains("ingress/evil/grab") && line.contains("host a.example.com owned by HTTPRoute web/site"),
        "{line}"
    );
    until_status(&p, addr, "grab.example.com", "/", 200);
    until_status(&p, addr, "a.example.com", "/app", 200);
    assert_eq!(get("grab.example.com", "/", "203.0.113.5"), (200, true), "the Ingress's other host is served");
    assert_eq!(get("a.example.com", "/login", "192.0.2.9"), (403, false), "the Gateway's deny list holds");
    assert_eq!(get("a.example.com", "/login", "203.0.113.5"), (200, false), "the HTTPRoute serves /login");
    assert_eq!(get("a.example.com", "/login/x", "203.0.113.5"), (404, false), "no HTTPRoute rule: 404");
    assert_eq!(get("a.example.com", "/other", "192.0.2.9"), (404, false), "never the Ingress backend");
    // The HTTPRoute gone, the host is the Ingress's again.
    api.delete("HTTPRoute", "web", "site");
    let line = wait_line(&p.stderr, "kubernetes_route_served", 20);
    assert!(line.contains("ingress/evil/grab"), "{line}");
    until_status(&p, addr, "a.example.com", "/other", 200);
    assert_eq!(get("a.example.com", "/login", "192.0.2.9"), (200, true));
}

/// Review 13b N1 through the real proxy: on one bind, a newer Gateway's
/// `*.example.com` listener with a route for a.example.com /login is
/// `Conflicted: HostnameConflict` (naming the older listener) and not
/// served: /login of a.example.com stays the older Gateway's, under its
/// deny list, and never reaches the newer Gateway's backend.
#[test]
fn a_newer_gateways_overlapping_listener_does_not_take_an_older_ones_host() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let (_attacker, evil_port) = echo_pod("attacker", 3);
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "evil"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": evil_port}]}}));
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-1", "namespace": "evil", "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": evil_port}],
        "endpoints": [{"addresses": ["127.0.0.3"], "conditions": {"ready": true}}]}));
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
        "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let gw_target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy("ClientAccessPolicy", "owner", &gw_target, &json!({"deny": ["192.0.2.0/24"]})));
    // Newer (the fake server's clock advances per change).
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw2", "namespace": "evil"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"}]}}));
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "hijack", "namespace": "evil"},
        "spec": {"parentRefs": [{"name": "gw2"}], "hostnames": ["a.example.com"],
            "rules": [{"matches": [{"path": {"type": "Exact", "value": "/login"}}], "backendRefs": [{"name": "app", "port": 80}]}]}}));
    let (p, addr, _dir) = proxy_with(&api, "n1", "gateway_ports = [80]\n", &[]);
    let gw2 = until(&api, "Gateway", "evil", "gw2", "gw2 conflicted", |o| {
        cond(&o["status"]["listeners"][0]["conditions"], "Conflicted")["reason"] == "HostnameConflict"
    });
    let c = cond(&gw2["status"]["listeners"][0]["conditions"], "Conflicted");
    assert!(c["message"].as_str().unwrap().contains("gateway/web/gw/http"), "{c}");
    until(&api, "HTTPRoute", "evil", "hijack", "hijack not accepted", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["reason"] == "NotAllowedByListeners"
    });
    until_status(&p, addr, "a.example.com", "/", 200);
    let get = |path: &str, client: &str| {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: a.example.com\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n"
        );
        let (st, _, body) = exchange(addr, b"", &req);
        (st, body.contains("attacker"))
    };
    assert_eq!(get("/login", "198.51.100.7"), (200, false), "the older Gateway's route serves /login");
    assert_eq!(get("/login", "192.0.2.9"), (403, false), "under the older Gateway's deny list");
    assert_eq!(get("/", "192.0.2.9"), (403, false));
}

/// The Service `app` of namespace `evil`, backed by the `attacker` echo pod
/// on 127.0.0.3 (kept alive by the returned process).
fn evil_app(api: &FakeApi) -> Proc {
    let (attacker, evil_port) = echo_pod("attacker", 3);
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "evil"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": evil_port}]}}));
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-1", "namespace": "evil", "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": evil_port}],
        "endpoints": [{"addresses": ["127.0.0.3"], "conditions": {"ready": true}}]}));
    attacker
}

/// `GET host path` with `X-Forwarded-For: client`: (status, answered by
/// the attacker's pod).
fn get_as(addr: SocketAddr, host: &str, path: &str, client: &str) -> (u16, bool) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n");
    let (st, _, body) = exchange(addr, b"", &req);
    (st, body.contains("attacker"))
}

/// Review 13b N5: an HTTPRoute attached to a shared Gateway, newer than an
/// Ingress naming the same host, does not knock the Ingress off that host:
/// the older Ingress keeps it (its allow list holds on every path), the
/// HTTPRoute's route for it is reported unserved, naming the Ingress.
#[test]
fn a_newer_httproute_does_not_take_an_older_ingresss_host() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "site", "namespace": "web",
        "annotations": {"nginx.ingress.kubernetes.io/whitelist-source-range": "198.51.100.0/24"}},
        "spec": {"ingressClassName": "realip", "rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}));
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "realip"},
        "spec": {"controllerName": "realip.dev/gateway-controller"}}),
    );
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "shared", "namespace": "infra"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
            "allowedRoutes": {"namespaces": {"from": "All"}}}]}}));
    let (p, addr, _dir) = proxy_with(&api, "n5", "gateway_ports = [80]\n", &[]);
    until_status(&p, addr, "a.example.com", "/", 403); // the peer is outside the allow list
    assert_eq!(get_as(addr, "a.example.com", "/", "198.51.100.7"), (200, false));
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "hijack", "namespace": "evil"},
        "spec": {"parentRefs": [{"name": "shared", "namespace": "infra"}], "hostnames": ["a.example.com"],
            "rules": [{"matches": [{"path": {"type": "Exact", "value": "/login"}}], "backendRefs": [{"name": "app", "port": 80}]}]}}));
    let line = wait_line(&p.stderr, "kubernetes_route_unserved", 20);
    assert!(
        line.contains("httproute/evil/hijack") && line.contains("host a.example.com owned by Ingress web/site"),
        "{line}"
    );
    assert_eq!(get_as(addr, "a.example.com", "/", "198.51.100.7"), (200, false), "the Ingress still serves its host");
    assert_eq!(get_as(addr, "a.example.com", "/login", "192.0.2.9"), (403, false), "its allow list holds");
    assert_eq!(get_as(addr, "a.example.com", "/login", "198.51.100.7"), (200, false), "never the HTTPRoute's backend");
}

/// Review 13b N2: an Ingress newer than a host-less HTTPRoute on a
/// `*.example.com` listener names a.example.com exactly: its path is not
/// served (reported, naming the HTTPRoute), so a.example.com/login stays
/// under the Gateway's deny list; an Ingress older than the route keeps
/// its host instead and the route leaves that host out (its other hosts
/// stay the Gateway's).
#[test]
fn a_newer_ingress_does_not_take_a_host_a_wildcard_httproute_serves() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    let ingress = |name: &str, host: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": "evil"},
        "spec": {"ingressClassName": "realip", "rules": [{"host": host, "http": {"paths": [{"path": "/login", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}})
    };
    // Older than the route: c.example.com is the Ingress's.
    api.apply(ingress("early", "c.example.com"));
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let gw_target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy("ClientAccessPolicy", "owner", &gw_target, &json!({"deny": ["192.0.2.0/24"]})));
    api.apply(ingress("grab", "a.example.com"));
    let (p, addr, _dir) = proxy_with(&api, "n2", "gateway_ports = [80]\n", &[]);
    let line = wait_line(&p.stderr, "kubernetes_route_unserved", 20);
    assert!(
        line.contains("ingress/evil/grab") && line.contains("host a.example.com owned by HTTPRoute web/site"),
        "{line}"
    );
    until_status(&p, addr, "b.example.com", "/", 200);
    assert_eq!(get_as(addr, "b.example.com", "/", "192.0.2.9"), (403, false));
    assert_eq!(get_as(addr, "a.example.com", "/login", "192.0.2.9"), (403, false), "the Gateway's deny list holds");
    assert_eq!(get_as(addr, "a.example.com", "/login", "198.51.100.7"), (200, false), "the HTTPRoute serves it");
    // c.example.com: the older Ingress's path is served, and the route does
    // not serve the host's other paths.
    assert_eq!(get_as(addr, "c.example.com", "/login", "192.0.2.9"), (200, true));
    assert_eq!(get_as(addr, "c.example.com", "/", "198.51.100.7").0, 404);
}

/// Listener isolation through the real proxy: listeners `a`
/// (a.example.com) and `wild` (*.example.com) on port 80; a route on `a`
/// at /app and one on `wild` at /admin. a.example.com/admin is 404 (the
/// wildcard listener's route does not serve a host listener `a` owns),
/// b.example.com/admin is served.
#[test]
fn a_request_is_handled_by_the_routes_of_its_most_specific_listener() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(
        &api,
        &json!([{"name": "a", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"},
            {"name": "wild", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"}]),
    );
    let rule = |path: &str| json!([{"matches": [{"path": {"type": "PathPrefix", "value": path}}], "backendRefs": [{"name": "app", "port": 80}]}]);
    http_route(&api, "ra", &json!({"parentRefs": [{"name": "gw", "sectionName": "a"}], "rules": rule("/app")}));
    http_route(&api, "rw", &json!({"parentRefs": [{"name": "gw", "sectionName": "wild"}], "rules": rule("/admin")}));
    let (p, addr, _dir) = proxy_with(&api, "isolation", "gateway_ports = [80]\n", &[]);
    until_status(&p, addr, "b.example.com", "/admin", 200);
    until_status(&p, addr, "a.example.com", "/app", 200);
    assert_eq!(status(addr, "a.example.com", "/admin"), 404);
    assert_eq!(status(addr, "b.example.com", "/app"), 404);
    // Without listener `a`, the wildcard listener's route serves a.example.com.
    gateway(&api, &json!([{"name": "wild", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"}]));
    until_status(&p, addr, "a.example.com", "/admin", 200);
}

/// Review 19 MED-4, with the real binary: listener `a` (a.example.com, its
/// own ClientIPPolicy) shares one bind with a wildcard sibling that has
/// none, so `a` is conflicted and not programmed. It still owns its host:
/// a route on the wildcard serves b.example.com, never a.example.com
/// (before the fix a.example.com was served under the wildcard's chain,
/// without `a`'s policy).
#[test]
fn a_conflicted_listener_keeps_its_host_from_its_wildcard_sibling() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    gateway(
        &api,
        &json!([{"name": "wild", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"},
            {"name": "a", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"}]),
    );
    let on_a = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "sectionName": "a"});
    api.apply(policy(
        "ClientIPPolicy",
        "strict",
        &on_a,
        &json!({"trustedProxies": ["192.0.2.0/24"], "failClosed": true}),
    ));
    http_route(
        &api,
        "grab",
        &json!({"parentRefs": [{"name": "gw", "sectionName": "wild"}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let (p, addr, _dir) = proxy_with(&api, "conflicted-host", "gateway_ports = [80]\n", &[]);
    let o = until(&api, "Gateway", "web", "gw", "listener a conflicted", |o| {
        o["status"]["listeners"].as_array().is_some_and(|ls| {
            ls.iter().any(|l| l["name"] == "a" && cond(&l["conditions"], "Programmed")["status"] == "False")
        })
    });
    let a = o["status"]["listeners"].as_array().unwrap().iter().find(|l| l["name"] == "a").unwrap();
    assert_eq!(cond(&a["conditions"], "Conflicted")["status"], "True", "{a}");
    until_status(&p, addr, "b.example.com", "/", 200);
    assert_eq!(status(addr, "a.example.com", "/"), 404, "a.example.com is listener a's, which is not programmed");
}

/// M4 (review 13): a GRPCRoute and a TLSRoute attached to realip's Gateway
/// get a `parents[]` entry saying `Accepted: False, NotAllowedByListeners`
/// (realip's listeners support HTTPRoute only), next to the entry another
/// controller wrote, which is kept; an edit of the route is followed; a
/// route kind whose CRD is absent (UDPRoute here) is not watched and
/// logged once, apart from the Gateway API kinds realip serves.
#[test]
fn unserved_route_kinds_get_not_allowed_by_listeners() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway(
        &api,
        &json!([{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    );
    let theirs = json!({"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "other", "namespace": "web"},
        "controllerName": "example.com/other", "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": {"name": "grpc-app", "namespace": "web"},
        "spec": {"parentRefs": [{"name": "gw"}, {"name": "other"}],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]},
        "status": {"parents": [theirs.clone()]}}));
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "TLSRoute",
        "metadata": {"name": "tls-app", "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "web", "sectionName": "http"}],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}}));
    let (p, _addr, _dir) = proxy_with(&api, "unserved", "gateway_ports = [80]\n", &[]);
    let line = wait_line(&p.stderr, "gateway_route_kinds_not_watched", 20);
    assert!(line.contains("udproutes") && !line.contains("grpcroutes"), "{line}");
    let mine = |o: &Value| -> Value {
        o["status"]["parents"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["controllerName"] == "realip.dev/gateway-controller"))
            .cloned()
            .unwrap_or_default()
    };
    let g = until(&api, "GRPCRoute", "web", "grpc-app", "GRPCRoute status", |o| !mine(o).is_null());
    let entry = mine(&g);
    assert_eq!(
        entry["parentRef"],
        json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "namespace": "web"})
    );
    let accepted = cond(&entry["conditions"], "Accepted");
    assert_eq!(
        (accepted["status"].as_str(), accepted["reason"].as_str()),
        (Some("False"), Some("NotAllowedByListeners"))
    );
    assert!(accepted["message"].as_str().unwrap_or("").contains("GRPCRoute"), "{accepted}");
    assert_eq!(accepted["observedGeneration"], 1);
    assert_eq!(g["status"]["parents"].as_array().map(Vec::len), Some(2), "{:#}", g["status"]);
    assert_eq!(g["status"]["parents"][0], theirs, "another controller's entry is kept");
    let t = until(&api, "TLSRoute", "apps", "tls-app", "TLSRoute status", |o| !mine(o).is_null());
    assert_eq!(cond(&mine(&t)["conditions"], "Accepted")["reason"], "NotAllowedByListeners");
    assert_eq!(mine(&t)["parentRef"]["sectionName"], "http");
    // Nothing of them is attached to the listener.
    let gw = until(&api, "Gateway", "web", "gw", "gateway status", |o| !o["status"]["listeners"].is_null());
    assert_eq!(gw["status"]["listeners"][0]["attachedRoutes"], 0);
    // An edit is followed: a sectionName no listener has.
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "TLSRoute",
        "metadata": {"name": "tls-app", "namespace": "apps"},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "web", "sectionName": "nope"}]}}));
    let t = until(&api, "TLSRoute", "apps", "tls-app", "TLSRoute edit followed", |o| {
        cond(&mine(o)["conditions"], "Accepted")["reason"] == "NoMatchingParent"
    });
    assert_eq!(cond(&mine(&t)["conditions"], "Accepted")["observedGeneration"], 2);
}

/// M4 (review 13): a ClientAccessPolicy on an HTTPRoute reports on the
/// Gateway the route is attached to (GEP-713), not on the route; when the
/// route leaves the Gateway the route itself is the ancestor again, with
/// `TargetNotFound`.
#[test]
fn a_route_access_policy_has_the_routes_gateway_as_ancestor() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    let spec = |parent: &str| {
        json!({"parentRefs": [{"name": parent}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]})
    };
    http_route(&api, "site", &spec("gw"));
    let target = json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "site"});
    api.apply(policy("ClientAccessPolicy", "allow", &target, &json!({"allow": ["192.0.2.0/24"]})));
    let (_p, _addr, _dir) = proxy_with(&api, "ancestor", "gateway_ports = [80]\n", &[]);
    let o =
        until(&api, "ClientAccessPolicy", "web", "allow", "ancestor written", |o| !o["status"]["ancestors"].is_null());
    let a = &o["status"]["ancestors"];
    assert_eq!(a.as_array().map(Vec::len), Some(1), "{a:#}");
    assert_eq!(
        a[0]["ancestorRef"],
        json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "namespace": "web"})
    );
    assert_eq!(a[0]["controllerName"], "realip.dev/gateway-controller");
    assert_eq!(cond(&a[0]["conditions"], "Accepted")["status"], "True");
    http_route(&api, "site", &spec("elsewhere"));
    let o = until(&api, "ClientAccessPolicy", "web", "allow", "route detached", |o| {
        o["status"]["ancestors"][0]["ancestorRef"]["kind"] == "HTTPRoute"
    });
    let a = &o["status"]["ancestors"];
    assert_eq!(a.as_array().map(Vec::len), Some(1), "{a:#}");
    assert_eq!(cond(&a[0]["conditions"], "Accepted")["reason"], "TargetNotFound");
}

/// M4 (review 13): a listener whose `allowedRoutes.kinds` are all
/// unsupported says so consistently with its Gateway: listener Accepted,
/// `ResolvedRefs: False, InvalidRouteKinds`, no supportedKinds, not
/// Programmed; Gateway Accepted, not Programmed (it was `Accepted: True` on
/// the listener and `ListenersNotValid` on the Gateway).
#[test]
fn a_listener_with_only_unsupported_route_kinds_is_consistent_with_its_gateway() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway(
        &api,
        &json!([{"name": "http", "port": 80, "protocol": "HTTP"},
            {"name": "grpc", "port": 80, "protocol": "HTTP", "hostname": "grpc.example.com",
                "allowedRoutes": {"kinds": [{"kind": "GRPCRoute"}]}}]),
    );
    let (_p, _addr, _dir) = proxy_with(&api, "kinds", "gateway_ports = [80]\n", &[]);
    let gw = until(&api, "Gateway", "web", "gw", "gateway status", |o| o["status"]["listeners"].as_array().is_some());
    let l = &gw["status"]["listeners"][1];
    assert_eq!(l["name"], "grpc");
    assert_eq!(l["supportedKinds"], json!([]));
    let of = |conds: &Value, ty: &str| {
        let c = cond(conds, ty);
        (c["status"].as_str().unwrap_or("").to_owned(), c["reason"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(of(&l["conditions"], "Accepted"), ("True".into(), "Accepted".into()));
    assert_eq!(of(&l["conditions"], "ResolvedRefs"), ("False".into(), "InvalidRouteKinds".into()));
    assert_eq!(of(&l["conditions"], "Programmed"), ("False".into(), "Invalid".into()));
    assert_eq!(of(&gw["status"]["conditions"], "Accepted"), ("True".into(), "Accepted".into()));
    assert_eq!(of(&gw["status"]["conditions"], "Programmed"), ("False".into(), "Invalid".into()));
    assert_eq!(of(&gw["status"]["listeners"][0]["conditions"], "Programmed"), ("True".into(), "Programmed".into()));
}

/// GatewayClass `status.supportedFeatures` (review 13, LOW): written with
/// the class's conditions, `{name}` objects sorted by name, listing what
/// realip implements and nothing it reports as unsupported.
#[test]
fn the_gateway_class_lists_its_supported_features() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    // HTTPRoute303RedirectStatusCode / HTTPRoute308RedirectStatusCode,
    // served end to end (301, 302, 307: `gateway_filters_are_applied`).
    let redirect = |code: u16, to: &str| {
        json!({"type": "RequestRedirect", "requestRedirect": {"statusCode": code,
            "path": {"type": "ReplaceFullPath", "replaceFullPath": to}}})
    };
    http_route(
        &api,
        "codes",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["r.example.com"], "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/see-other"}}], "filters": [redirect(303, "/a")]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/permanent"}}], "filters": [redirect(308, "/b")]}]}),
    );
    let (p, addr, _dir) = proxy_with(&api, "features", "gateway_ports = [80]\n", &[]);
    until_status(&p, addr, "r.example.com", "/see-other", 303);
    let location = |path: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: r.example.com\r\nConnection: close\r\n\r\n");
        let (st, head, _) = exchange(addr, b"", &req);
        (st, header(&head, "location").map(str::to_owned))
    };
    assert_eq!(location("/see-other"), (303, Some("http://r.example.com/a".into())));
    assert_eq!(location("/permanent/x"), (308, Some("http://r.example.com/b".into())));
    let class = until(&api, "GatewayClass", "", "realip", "supportedFeatures written", |o| {
        o["status"]["supportedFeatures"].is_array()
    });
    let names: Vec<String> = class["status"]["supportedFeatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for f in ["Gateway", "HTTPRoute", "ReferenceGrant", "ListenerSet", "HTTPRoute303RedirectStatusCode"] {
        assert!(names.iter().any(|n| n == f), "{f}: {names:?}");
    }
    assert!(!names.iter().any(|n| n == "HTTPRouteRequestMirror" || n == "GatewayStaticAddresses"), "{names:?}");
    assert_eq!(cond(&class["status"]["conditions"], "Accepted")["status"], "True");
}

/// Review 13c C1, C2/C8, C14 and C3 with `ingress = false` on the Gateway
/// bind: the Ingresses of another tenant (one unrelated, one naming the
/// victim's host, one host-less on `/login`, all older than the victim's
/// route) are served on the Ingress bind only, so on the Gateway bind the
/// victim's route keeps its ClientIPPolicy chain (the client is resolved
/// through the trusted hop), its host and its deny list, and nothing
/// reaches the attacker.
#[test]
fn a_bind_without_ingresses_is_the_gateways_alone() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    let ing = |name: &str, host: Option<&str>, path: &str| {
        let mut rule = json!({"http": {"paths": [{"path": path, "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}});
        if let Some(h) = host {
            rule["host"] = json!(h);
        }
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": "evil"},
            "spec": {"ingressClassName": "realip", "rules": [rule]}})
    };
    // The tenant's Ingresses first: older than the victim's route.
    api.apply(ing("unrelated", Some("evil.example.com"), "/"));
    api.apply(ing("owned", Some("a.example.com"), "/"));
    api.apply(ing("grab", None, "/login"));
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let gw_target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy(
        "ClientIPPolicy",
        "lb",
        &gw_target,
        &json!({"trustedProxies": ["127.0.0.0/8"], "sources": ["XForwardedFor"]}),
    ));
    api.apply(policy("ClientAccessPolicy", "owner", &gw_target, &json!({"deny": ["192.0.2.0/24"]})));
    // The file trusts nobody the test sends from: only the policy's chain
    // resolves 198.51.100.7.
    let toml = "[[listener]]\nname = \"gw\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\ningress = false\n\n\
                [[listener]]\nname = \"ing\"\nbind = \"127.0.0.1:0\"\n\n\
                [client_ip]\ntrusted = [\"192.0.2.0/24\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "noingress-bind", toml, &["gw", "ing"]);
    let (gw, ing_addr) = (addrs[0], addrs[1]);
    until_status(&p, gw, "a.example.com", "/", 200);
    let client = |addr: SocketAddr, host: &str, path: &str, from: &str| {
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {from}\r\nConnection: close\r\n\r\n");
        let (st, _, body) = exchange(addr, b"", &req);
        let v = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
        (st, v["pod"].as_str().unwrap_or("").to_owned(), v["client_ip"].as_str().unwrap_or("").to_owned())
    };
    // C1: the policy's chain, whatever Ingresses exist.
    assert_eq!(client(gw, "a.example.com", "/", "198.51.100.7"), (200, "victim".into(), "198.51.100.7".into()));
    // C2/C8/C3/C14: the host and /login stay the victim's, under its deny list.
    assert_eq!(client(gw, "a.example.com", "/login", "198.51.100.7").1, "victim");
    assert_eq!(client(gw, "a.example.com", "/login", "192.0.2.9").0, 403);
    assert_eq!(client(gw, "a.example.com", "/x", "192.0.2.9").0, 403);
    assert_eq!(client(gw, "evil.example.com", "/", "198.51.100.7").0, 404, "no Ingress route on the Gateway bind");
    // The Ingresses are served on their own bind.
    until_status(&p, ing_addr, "evil.example.com", "/", 200);
    assert_eq!(client(ing_addr, "a.example.com", "/", "198.51.100.7").1, "attacker");
    assert_eq!(client(ing_addr, "b.example.com", "/login", "198.51.100.7").1, "attacker");
    // The victim's listener stays programmed and its policy accepted.
    let g = until(&api, "Gateway", "web", "gw", "programmed", |o| {
        cond(&o["status"]["listeners"][0]["conditions"], "Programmed")["status"] == "True"
    });
    assert_eq!(cond(&g["status"]["listeners"][0]["conditions"], "Conflicted")["status"], "False");
    // The Ingress re-created (C8): still nothing on the Gateway bind.
    api.delete("Ingress", "evil", "owned");
    api.apply(ing("owned", Some("a.example.com"), "/"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(client(gw, "a.example.com", "/", "198.51.100.7").1, "victim");
    let unserved: Vec<String> = p.stderr.try_iter().filter(|l| l.contains("kubernetes_route_unserved")).collect();
    assert!(unserved.is_empty(), "{unserved:?}");
}

/// Review 13c C7 through the proxy: with `gateways = ["web/gw"]` an older
/// host-less Gateway of another namespace, waiting on the same port, is
/// `Accepted: False, PortUnavailable` and never takes the host, not even
/// when the victim's Gateway is deleted and created again (newer).
#[test]
fn a_bind_limited_to_one_gateway_is_never_taken_by_another() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "realip"},
        "spec": {"controllerName": "realip.dev/gateway-controller"}}),
    );
    let victim_gw = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "web"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"}]}});
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw2", "namespace": "evil"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}));
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "all", "namespace": "evil"},
        "spec": {"parentRefs": [{"name": "gw2"}], "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}}));
    api.apply(victim_gw.clone());
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let toml =
        "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\ngateways = [\"web/gw\"]\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "gateways", toml, &["web"]);
    let addr = addrs[0];
    let evil = until(&api, "Gateway", "evil", "gw2", "gw2 refused", |o| {
        cond(&o["status"]["listeners"][0]["conditions"], "Accepted")["reason"] == "PortUnavailable"
    });
    let a = cond(&evil["status"]["listeners"][0]["conditions"], "Accepted");
    assert!(a["message"].as_str().unwrap().contains("does not admit Gateway evil/gw2"), "{a}");
    until_status(&p, addr, "a.example.com", "/", 200);
    assert!(!get_as(addr, "a.example.com", "/", "198.51.100.7").1);
    assert_eq!(status(addr, "b.example.com", "/"), 404, "the host-less route is not served");
    // The victim's Gateway deleted, then applied again (now the newer one).
    api.delete("Gateway", "web", "gw");
    until_status(&p, addr, "a.example.com", "/", 404);
    api.apply(victim_gw);
    until_status(&p, addr, "a.example.com", "/", 200);
    assert!(!get_as(addr, "a.example.com", "/", "198.51.100.7").1, "never the attacker");
    assert_eq!(status(addr, "b.example.com", "/"), 404);
}

/// SHA-256 fingerprint (openssl's spelling) of the certificate in `pem`,
/// or of the one served at `addr` for TLS server name `sni` (empty when
/// the handshake offers none).
fn fingerprint(pem: Option<&std::path::Path>, served: Option<(SocketAddr, &str)>) -> String {
    let sh = match (pem, served) {
        (Some(p), _) => format!("openssl x509 -noout -fingerprint -sha256 -in '{}'", p.display()),
        (None, Some((addr, sni))) => format!(
            "openssl s_client -connect {addr} -servername {sni} </dev/null 2>/dev/null \
             | openssl x509 -noout -fingerprint -sha256 2>/dev/null"
        ),
        (None, None) => unreachable!(),
    };
    let o = Command::new("sh").args(["-c", &sh]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// A `kubernetes.io/tls` Secret from PEM files (base64 by openssl).
fn tls_secret(ns: &str, name: &str, cert: &std::path::Path, key: &std::path::Path) -> Value {
    let b64 = |p: &std::path::Path| {
        let o = Command::new("openssl").args(["base64", "-A", "-in"]).arg(p).output().unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": name, "namespace": ns},
        "data": {"tls.crt": b64(cert), "tls.key": b64(key)}})
}

/// Waits (at most 20 s) until `addr` serves the certificate `want` for
/// `sni`; panics with what it served instead.
fn until_certificate(addr: SocketAddr, sni: &str, want: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = fingerprint(None, Some((addr, sni)));
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: SNI {sni} at {addr} got {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Review 13d X12: a tenant Gateway's certificate that also names the
/// victim's host is never offered for it. The victim's SNI gets the
/// victim's certificate on a bind reserved for the victim's Gateway and on
/// one shared by both Gateways; the tenant's bind offers none for it (its
/// only listener's hostname does not match), and the tenant's own host
/// gets the tenant's certificate.
#[test]
fn a_gateway_listeners_certificate_is_offered_for_its_hostname_only() {
    if !common::have("openssl") {
        common::peer_missing("openssl is needed for the TLS test");
        return;
    }
    let dir = Dir(std::env::temp_dir().join(format!("realip-gw-x12-certs-{}", std::process::id())));
    let (victim_dir, tenant_dir) = (dir.0.join("victim"), dir.0.join("tenant"));
    std::fs::create_dir_all(&victim_dir).unwrap();
    std::fs::create_dir_all(&tenant_dir).unwrap();
    let (vc, vk) = common::self_signed(&victim_dir, "a.example.com");
    // The tenant's own certificate for the victim's name.
    let (tc, tk) = common::self_signed(&tenant_dir, "a.example.com");
    let (victim, tenant) = (fingerprint(Some(&vc), None), fingerprint(Some(&tc), None));
    assert!(!victim.is_empty() && victim != tenant);
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    api.apply(tls_secret("web", "a-tls", &vc, &vk));
    // `evil/…` sorts before `web/…`: first in the certificate list.
    api.apply(tls_secret("evil", "a-tls", &tc, &tk));
    gateway(
        &api,
        &json!([{"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "a.example.com",
            "tls": {"certificateRefs": [{"name": "a-tls"}]}}]),
    );
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let tenant_gw = |port: u16| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "tgw", "namespace": "evil"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "https", "port": port, "protocol": "HTTPS",
            "hostname": "t.example.com", "tls": {"certificateRefs": [{"name": "a-tls"}]}}]}})
    };
    api.apply(tenant_gw(8443));
    // The documented isolation: a bind per Gateway.
    let toml = "[[listener]]\nname = \"victim\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [443]\ningress = false\n\
                gateways = [\"web/gw\"]\ntls = { kubernetes = true }\n\n\
                [[listener]]\nname = \"tenant\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [8443]\ningress = false\n\
                gateways = [\"evil/*\"]\ntls = { kubernetes = true }\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (p, addrs, _d) = proxy_file(&api, "x12-certs", toml, &["victim", "tenant"]);
    until_certificate(addrs[1], "t.example.com", &tenant, "tenant bind, tenant host");
    until_certificate(addrs[0], "a.example.com", &victim, "victim bind");
    assert_eq!(fingerprint(None, Some((addrs[1], "a.example.com"))), "", "the tenant bind has no listener for it");
    drop(p);
    // One bind shared by both Gateways (the tenant's listener on 443 too).
    api.apply(tenant_gw(443));
    let toml = "[[listener]]\nname = \"shared\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [443]\n\
                tls = { kubernetes = true }\n\n[client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (_p, addrs, _d) = proxy_file(&api, "x12-certs-shared", toml, &["shared"]);
    until_certificate(addrs[0], "t.example.com", &tenant, "shared bind, tenant host");
    until_certificate(addrs[0], "a.example.com", &victim, "shared bind, victim host");
    // The server name's case does not matter.
    until_certificate(addrs[0], "A.Example.COM", &victim, "shared bind, victim host in upper case");
}

/// `--no-ingress`: Ingresses are not watched, served or given status;
/// Gateway routes are served as ever.
#[test]
fn no_ingress_ignores_ingresses() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "site", "namespace": "web"},
        "spec": {"ingressClassName": "realip", "rules": [{"host": "ing.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}));
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["gw.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let toml = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n";
    let (p, addrs, _dir) = proxy_file_args(&api, "no-ingress", toml, &["web"], &["--no-ingress"]);
    until_status(&p, addrs[0], "gw.example.com", "/", 200);
    until(&api, "HTTPRoute", "web", "site", "route accepted", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["status"] == "True"
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(addrs[0], "ing.example.com", "/"), 404, "the Ingress is not served");
    assert!(!api.patches().iter().any(|(path, _)| path.contains("/ingresses/")), "{:?}", api.patches());
    // The same world without the flag serves the Ingress (the test can fail).
    let (p2, addrs2, _dir2) = proxy_file(&api, "with-ingress", toml, &["web"]);
    until_status(&p2, addrs2[0], "ing.example.com", "/", 200);
}

/// Review 16 M1 through the real proxy: `--kubernetes-max-routes-per-namespace`
/// bounds the routes the HTTPRoutes of one namespace expand to together,
/// oldest first. With 3: web/old (2 routes) is served, web/big (2 more,
/// 4) is `Accepted: False, UnsupportedValue` and not served, the newer
/// web/small (1 more, 3) is; evil/own (3) counts against its own
/// namespace only.
#[test]
fn the_httproutes_of_a_namespace_share_a_route_budget() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    gateway(
        &api,
        &json!([{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    );
    let route = |ns: &str, name: &str, second: u32, host: &str, paths: &[&str]| {
        let matches: Vec<Value> = paths.iter().map(|p| json!({"path": {"type": "PathPrefix", "value": p}})).collect();
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": format!("2026-01-01T00:00:{second:02}Z")},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "web"}], "hostnames": [host],
                "rules": [{"matches": matches, "backendRefs": [{"name": "app", "port": 80}]}]}})
    };
    api.apply(route("web", "small", 3, "c.example.com", &["/c"]));
    api.apply(route("web", "big", 2, "b.example.com", &["/b1", "/b2"]));
    api.apply(route("web", "old", 1, "a.example.com", &["/a1", "/a2"]));
    api.apply(route("evil", "own", 4, "d.example.com", &["/d1", "/d2", "/d3"]));
    let toml = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n";
    let (p, addrs, _dir) =
        proxy_file_args(&api, "ns-budget", toml, &["web"], &["--kubernetes-max-routes-per-namespace", "3"]);
    let a = addrs[0];
    until_status(&p, a, "a.example.com", "/a2", 200);
    until_status(&p, a, "c.example.com", "/c", 200);
    until_status(&p, a, "d.example.com", "/d3", 200);
    let big = until(&api, "HTTPRoute", "web", "big", "refused", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["reason"] == "UnsupportedValue"
    });
    let accepted = cond(&big["status"]["parents"][0]["conditions"], "Accepted");
    assert_eq!(accepted["status"], "False", "{accepted}");
    let m = accepted["message"].as_str().unwrap_or_default();
    assert!(m.contains("expands to 4 routes") && m.contains("over the 3 one namespace may have"), "{m}");
    assert_eq!(status(a, "b.example.com", "/b1"), 404, "web/big is not served");
    for (ns, name) in [("web", "old"), ("web", "small"), ("evil", "own")] {
        until(&api, "HTTPRoute", ns, name, "accepted", |o| {
            cond(&o["status"]["parents"][0]["conditions"], "Accepted")["status"] == "True"
        });
    }
    // The same world with the default budget serves web/big too (the test
    // can fail).
    let (p2, addrs2, _dir2) = proxy_file(&api, "ns-budget-default", toml, &["web"]);
    until_status(&p2, addrs2[0], "b.example.com", "/b1", 200);
    drop(p2);
    // web/old deleted: web/big (2) and web/small (1) fit; web/big, refused
    // and unchanged, is translated again and served.
    api.delete("HTTPRoute", "web", "old");
    until_status(&p, a, "b.example.com", "/b2", 200);
    until_status(&p, a, "c.example.com", "/c", 200);
}

/// Review 13c "Statuses that do not match what is served": what the proxy
/// does not serve is in status, and goes away with its cause. C1 shape:
/// an Ingress on the bind makes the file's chain overrule the Gateway's
/// ClientIPPolicy, so the listener and its Gateway are `Programmed:
/// False`, the policy `Accepted: False, Conflicted` and the route
/// `Accepted: False, Pending`; N5 shape: an HTTPRoute whose host an older
/// Ingress keeps is `Accepted: False, HostnameConflict`, or
/// `PartiallyInvalid` when another of its hosts is served.
#[test]
fn status_says_what_the_proxy_does_not_serve() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    gateway(
        &api,
        &json!([{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    );
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let gw_target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy(
        "ClientIPPolicy",
        "lb",
        &gw_target,
        &json!({"trustedProxies": ["127.0.0.0/8"], "sources": ["XForwardedFor"]}),
    ));
    let toml = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                [client_ip]\ntrusted = [\"192.0.2.0/24\"]\n";
    let (proc_, addrs, _dir) = proxy_file(&api, "truthful", toml, &["web"]);
    until_status(&proc_, addrs[0], "a.example.com", "/", 200);
    let listener = |o: &Value, ty: &str| cond(&o["status"]["listeners"][0]["conditions"], ty).clone();
    until(&api, "Gateway", "web", "gw", "programmed", |o| listener(o, "Programmed")["status"] == "True");
    let ingress = |name: &str, host: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": "web"},
            "spec": {"ingressClassName": "realip", "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}})
    };
    api.apply(ingress("unrelated", "other.example.com"));
    let gw = until(&api, "Gateway", "web", "gw", "listener not programmed", |o| {
        listener(o, "Programmed")["status"] == "False"
    });
    let m = listener(&gw, "Programmed")["message"].as_str().unwrap().to_owned();
    assert!(m.contains("not served by the proxy") && m.contains("ClientIPPolicy web/lb"), "{m}");
    assert_eq!(cond(&gw["status"]["conditions"], "Programmed")["status"], "False");
    let pol = until(&api, "ClientIPPolicy", "web", "lb", "policy conflicted", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["reason"] == "Conflicted"
    });
    assert_eq!(cond(&pol["status"]["ancestors"][0]["conditions"], "Accepted")["status"], "False");
    until(&api, "HTTPRoute", "web", "site", "route pending", |o| {
        let a = cond(&o["status"]["parents"][0]["conditions"], "Accepted");
        a["status"] == "False" && a["reason"] == "Pending"
    });
    assert_eq!(status(addrs[0], "a.example.com", "/"), 404);
    // The Ingress gone: served, and the statuses say so again.
    api.delete("Ingress", "web", "unrelated");
    until_status(&proc_, addrs[0], "a.example.com", "/", 200);
    until(&api, "Gateway", "web", "gw", "programmed again", |o| {
        listener(o, "Programmed")["status"] == "True"
            && cond(&o["status"]["conditions"], "Programmed")["status"] == "True"
    });
    until(&api, "ClientIPPolicy", "web", "lb", "policy accepted", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"] == "True"
    });
    until(&api, "HTTPRoute", "web", "site", "route accepted", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["status"] == "True"
    });

    // Host ownership: the policy off, an older Ingress keeps b.example.com.
    api.delete("ClientIPPolicy", "web", "lb");
    api.apply(ingress("b", "b.example.com"));
    until_status(&proc_, addrs[0], "b.example.com", "/", 200);
    http_route(
        &api,
        "grab",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["b.example.com"],
            "rules": [{"matches": [{"path": {"type": "Exact", "value": "/login"}}], "backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let grab = until(&api, "HTTPRoute", "web", "grab", "host kept by the Ingress", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["reason"] == "HostnameConflict"
    });
    let a = cond(&grab["status"]["parents"][0]["conditions"], "Accepted");
    assert_eq!(a["status"], "False");
    assert!(a["message"].as_str().unwrap().contains("owned by Ingress web/b"), "{a}");
    http_route(
        &api,
        "grab",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["b.example.com", "c.example.com"],
            "rules": [{"matches": [{"path": {"type": "Exact", "value": "/login"}}], "backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let partly = until(&api, "HTTPRoute", "web", "grab", "partly served", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "PartiallyInvalid")["status"] == "True"
    });
    let conds = &partly["status"]["parents"][0]["conditions"];
    assert_eq!(cond(conds, "Accepted")["status"], "True");
    assert!(cond(conds, "PartiallyInvalid")["message"].as_str().unwrap().contains("1 of its 2 routes"), "{conds}");
    assert_eq!(status(addrs[0], "c.example.com", "/login"), 200);
}

/// The class `realip`.
fn gateway_class(api: &FakeApi) {
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "realip"},
        "spec": {"controllerName": "realip.dev/gateway-controller"}}),
    );
}

/// A Gateway `ns/name` of class `realip` with these listeners.
fn named_gateway(ns: &str, name: &str, listeners: &Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": name, "namespace": ns},
        "spec": {"gatewayClassName": "realip", "listeners": listeners}})
}

/// An HTTPRoute `ns/name` with this spec.
fn route_in(ns: &str, name: &str, spec: &Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name, "namespace": ns},
        "spec": spec})
}

/// `GET host path` with `X-Forwarded-For: client`: (status, the pod that
/// answered, the client it saw).
fn answered_by(addr: SocketAddr, host: &str, path: &str, client: &str) -> (u16, String, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n");
    let (st, _, body) = exchange(addr, b"", &req);
    let v = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
    (st, v["pod"].as_str().unwrap_or("").to_owned(), v["client_ip"].as_str().unwrap_or("").to_owned())
}

/// Review 13d X1: the documented "one bind per Gateway" holds when both
/// Gateways use the same port number. Two binds with `gateway_ports =
/// [80]`, one admitting web/gw, the other web/gw2: the listeners never
/// meet on one stream, so neither conflicts — host-less listeners on both
/// (a), distinct hostnames (the control), and a ClientIPPolicy on gw2 only
/// (b): each bind serves its own Gateway, with its own chain.
#[test]
#[allow(clippy::too_many_lines)] // three phases of one world
fn separate_binds_on_one_port_number_keep_gateways_apart() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway_class(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let (_other, port2) = echo_pod("other", 4);
    service(&api, "app2", 4, port2);
    api.apply(named_gateway("web", "gw", &json!([{"name": "http", "port": 80, "protocol": "HTTP"}])));
    api.apply(named_gateway("web", "gw2", &json!([{"name": "http", "port": 80, "protocol": "HTTP"}])));
    api.apply(route_in(
        "web",
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    ));
    api.apply(route_in(
        "web",
        "site2",
        &json!({"parentRefs": [{"name": "gw2"}], "hostnames": ["b.example.com"],
            "rules": [{"backendRefs": [{"name": "app2", "port": 80}]}]}),
    ));
    let toml = "[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\ningress = false\ngateways = [\"web/gw\"]\n\n\
                [[listener]]\nname = \"b\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\ningress = false\ngateways = [\"web/gw2\"]\n\n\
                [client_ip]\ntrusted = [\"192.0.2.0/24\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "x1", toml, &["a", "b"]);
    let (a, b) = (addrs[0], addrs[1]);
    let listener = |o: &Value, ty: &str| cond(&o["status"]["listeners"][0]["conditions"], ty).clone();
    // (a) Both host-less.
    until_status(&p, a, "a.example.com", "/", 200);
    until_status(&p, b, "b.example.com", "/", 200);
    assert_eq!(answered_by(a, "a.example.com", "/", "198.51.100.7").1, "victim");
    assert_eq!(answered_by(b, "b.example.com", "/", "198.51.100.7").1, "other");
    assert_eq!(status(a, "b.example.com", "/"), 404, "gw2's route is not on gw's bind");
    assert_eq!(status(b, "a.example.com", "/"), 404, "gw's route is not on gw2's bind");
    let gw2 = until(&api, "Gateway", "web", "gw2", "gw2 programmed", |o| listener(o, "Programmed")["status"] == "True");
    assert_eq!(listener(&gw2, "Conflicted")["status"], "False", "{:#}", gw2["status"]);
    until(&api, "HTTPRoute", "web", "site2", "site2 accepted", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["status"] == "True"
    });
    // Control: distinct hostnames, no policy.
    api.apply(named_gateway(
        "web",
        "gw",
        &json!([{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"}]),
    ));
    api.apply(named_gateway(
        "web",
        "gw2",
        &json!([{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "b.example.com"}]),
    ));
    until(&api, "Gateway", "web", "gw2", "gw2 with hostname", |o| {
        o["status"]["listeners"][0]["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| c["type"] == "Programmed" && c["status"] == "True" && c["observedGeneration"] == 2)
        })
    });
    assert_eq!(answered_by(a, "a.example.com", "/", "198.51.100.7").1, "victim");
    assert_eq!(answered_by(b, "b.example.com", "/", "198.51.100.7").1, "other");
    // (b) A ClientIPPolicy on gw2 only: gw2's bind resolves the client with
    // it (the file's chain does not trust 127.0.0.0/8), gw's keeps the file's.
    let t2 = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw2"});
    api.apply(policy(
        "ClientIPPolicy",
        "lb2",
        &t2,
        &json!({"trustedProxies": ["127.0.0.0/8"], "sources": ["XForwardedFor"]}),
    ));
    let pol = until(&api, "ClientIPPolicy", "web", "lb2", "policy in status", |o| {
        !cond(&o["status"]["ancestors"][0]["conditions"], "Accepted").is_null()
    });
    assert_eq!(cond(&pol["status"]["ancestors"][0]["conditions"], "Accepted")["status"], "True", "{:#}", pol["status"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = answered_by(b, "b.example.com", "/", "198.51.100.7");
        if got == (200, "other".to_owned(), "198.51.100.7".to_owned()) {
            break;
        }
        assert!(Instant::now() < deadline, "gw2's bind with its policy: {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let gw2 = api.get("Gateway", "web", "gw2").unwrap();
    assert_eq!(listener(&gw2, "Conflicted")["status"], "False", "{:#}", gw2["status"]);
    assert_eq!(listener(&gw2, "Programmed")["status"], "True", "{:#}", gw2["status"]);
    let got = answered_by(a, "a.example.com", "/", "198.51.100.7");
    assert_eq!((got.0, got.1.as_str()), (200, "victim"));
    assert_ne!(got.2, "198.51.100.7", "gw's bind keeps the file's chain, which does not trust the loopback peer");
}

/// Review 13d X1c: a bind reserved for web/gw (`gateways`) and an
/// unrestricted bind on the same Gateway port. An older tenant Gateway
/// with a host-less listener takes the unrestricted bind (the documented
/// age order), but never the reserved one: there web/gw's listener is
/// served, its status `Programmed` there and `Conflicted` naming the other
/// bind.
#[test]
fn a_reserved_bind_keeps_its_gateway_when_an_open_bind_has_the_same_port() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway_class(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    api.apply(named_gateway("evil", "gw2", &json!([{"name": "http", "port": 80, "protocol": "HTTP"}])));
    api.apply(route_in(
        "evil",
        "all",
        &json!({"parentRefs": [{"name": "gw2"}], "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    ));
    // (The fake API server's clock makes each later object newer.)
    api.apply(named_gateway(
        "web",
        "gw",
        &json!([{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"}]),
    ));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let toml = "[[listener]]\nname = \"pub\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\ningress = false\ngateways = [\"web/gw\"]\n\n\
                [[listener]]\nname = \"int\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\ningress = false\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "x1c", toml, &["pub", "int"]);
    let (public, internal) = (addrs[0], addrs[1]);
    until_status(&p, internal, "z.example.com", "/", 200);
    until_status(&p, public, "a.example.com", "/", 200);
    assert_eq!(answered_by(public, "a.example.com", "/", "198.51.100.7").1, "victim");
    assert_eq!(status(public, "z.example.com", "/"), 404, "evil/gw2 is not admitted on the reserved bind");
    // On the open bind the older host-less listener keeps every host.
    assert_eq!(answered_by(internal, "a.example.com", "/", "198.51.100.7").1, "attacker");
    let listener = |o: &Value, ty: &str| cond(&o["status"]["listeners"][0]["conditions"], ty).clone();
    let gw =
        until(&api, "Gateway", "web", "gw", "gw's listener status", |o| listener(o, "Conflicted")["status"] == "True");
    let c = listener(&gw, "Conflicted");
    assert_eq!(c["reason"], "HostnameConflict");
    let m = c["message"].as_str().unwrap();
    assert!(m.contains("`int`") && m.contains("still served on the proxy's [[listener]] `pub`"), "{m}");
    assert_eq!(listener(&gw, "Programmed")["status"], "True", "{:#}", gw["status"]);
    assert_eq!(cond(&gw["status"]["conditions"], "Programmed")["status"], "True", "{:#}", gw["status"]);
    until(&api, "HTTPRoute", "web", "site", "site accepted", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["status"] == "True"
    });
}

/// Review 13d X3: a route attached to listeners on two binds, one with
/// `ingress = false`. An older Ingress edited to the route's host keeps
/// that host only on the bind that serves Ingresses: the route stays
/// served on the `ingress = false` bind, and its status says it is served
/// on some binds only (`PartiallyInvalid`, `HostnameConflict`).
#[test]
fn an_ingress_owns_a_host_only_on_binds_serving_ingresses() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway_class(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    let ing = |host: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "old", "namespace": "evil"},
        "spec": {"ingressClassName": "realip", "rules": [{"host": host, "http": {"paths": [{"path": "/x", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}})
    };
    api.apply(ing("evil.example.com"));
    let ing2 = |host: &str| {
        let mut i = ing(host);
        i["metadata"]["name"] = json!("old2");
        i
    };
    api.apply(ing2("evil2.example.com"));
    api.apply(named_gateway(
        "web",
        "gw",
        &json!([{"name": "http", "port": 80, "protocol": "HTTP"}, {"name": "alt", "port": 8080, "protocol": "HTTP"}]),
    ));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let toml = "[[listener]]\nname = \"gw\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\ningress = false\n\n\
                [[listener]]\nname = \"mix\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [8080]\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "x3", toml, &["gw", "mix"]);
    let (only_gw, mix) = (addrs[0], addrs[1]);
    until_status(&p, only_gw, "a.example.com", "/", 200);
    until_status(&p, mix, "a.example.com", "/", 200);
    // The older Ingress now names a.example.com.
    api.apply(ing("a.example.com"));
    until_status(&p, mix, "a.example.com", "/", 404);
    assert_eq!(answered_by(mix, "a.example.com", "/x", "198.51.100.7").1, "attacker", "the Ingress's host there");
    let got = answered_by(only_gw, "a.example.com", "/", "198.51.100.7");
    assert_eq!((got.0, got.1.as_str()), (200, "victim"), "served where no Ingress is");
    assert_eq!(answered_by(only_gw, "a.example.com", "/x", "198.51.100.7").1, "victim");
    let site = until(&api, "HTTPRoute", "web", "site", "partly served", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "PartiallyInvalid")["status"] == "True"
    });
    let conds = &site["status"]["parents"][0]["conditions"];
    assert_eq!(cond(conds, "Accepted")["status"], "True", "{conds}");
    let partly = cond(conds, "PartiallyInvalid");
    assert_eq!(partly["reason"], "HostnameConflict");
    let m = partly["message"].as_str().unwrap();
    assert!(m.contains("owned by Ingress evil/old") && m.contains("mix"), "{m}");
    // The Ingress back to its own host: served on both again, status clean.
    api.apply(ing("evil.example.com"));
    until_status(&p, mix, "a.example.com", "/", 200);
    until(&api, "HTTPRoute", "web", "site", "served everywhere", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "PartiallyInvalid").is_null()
    });
    // A wildcard route: the host the older Ingress names is left out on the
    // bind serving Ingresses only.
    http_route(
        &api,
        "wild",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["*.w.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    until_status(&p, mix, "a.w.example.com", "/", 200);
    api.apply(ing2("a.w.example.com"));
    until_status(&p, mix, "a.w.example.com", "/", 404);
    assert_eq!(answered_by(mix, "a.w.example.com", "/x", "198.51.100.7").1, "attacker");
    assert_eq!(answered_by(mix, "b.w.example.com", "/", "198.51.100.7").1, "victim");
    let got = answered_by(only_gw, "a.w.example.com", "/", "198.51.100.7");
    assert_eq!((got.0, got.1.as_str()), (200, "victim"), "the wildcard keeps the host where no Ingress is");
    assert_eq!(answered_by(only_gw, "a.w.example.com", "/x", "198.51.100.7").1, "victim");
}

/// Review 13d M1: every reason the proxy has for not serving a Gateway
/// route reaches status, not only the file's chain and Ingress hosts. A
/// `scope: Global` rate limit while the file has no `[rate_limit_store]`:
/// the route is `Accepted: False` naming it, and the ClientAccessPolicy
/// `Accepted: False, Invalid` on the route's Gateway; with the policy
/// gone, both are accepted again.
#[test]
fn status_says_when_a_global_rate_limit_has_no_store() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "glob",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["g.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    http_route(
        &api,
        "plain",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["p.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let toml = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "m1", toml, &["web"]);
    until_status(&p, addrs[0], "g.example.com", "/", 200);
    let target = json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "glob"});
    api.apply(policy(
        "ClientAccessPolicy",
        "glob",
        &target,
        &json!({"rateLimit": {"perSecond": 10, "scope": "Global"}}),
    ));
    // Not served, but its place is held: answered 500 (review 19 HIGH-1).
    until_status(&p, addrs[0], "g.example.com", "/", 500);
    let route = until(&api, "HTTPRoute", "web", "glob", "route not accepted", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["status"] == "False"
    });
    let a = cond(&route["status"]["parents"][0]["conditions"], "Accepted");
    assert_eq!(a["reason"], "Pending", "{a}");
    assert!(a["message"].as_str().unwrap().contains("rate_limit_store"), "{a}");
    let pol = until(&api, "ClientAccessPolicy", "web", "glob", "policy not accepted", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"] == "False"
    });
    let ancestor = &pol["status"]["ancestors"][0];
    assert_eq!(ancestor["ancestorRef"]["name"], "gw", "{ancestor}");
    let a = cond(&ancestor["conditions"], "Accepted");
    assert_eq!(a["reason"], "Invalid", "{a}");
    assert!(a["message"].as_str().unwrap().contains("rate_limit_store"), "{a}");
    // The other route of the Gateway is served and accepted.
    assert_eq!(status(addrs[0], "p.example.com", "/"), 200);
    let plain = api.get("HTTPRoute", "web", "plain").unwrap();
    assert_eq!(cond(&plain["status"]["parents"][0]["conditions"], "Accepted")["status"], "True");
    // The policy gone: served and accepted again.
    api.delete("ClientAccessPolicy", "web", "glob");
    until_status(&p, addrs[0], "g.example.com", "/", 200);
    until(&api, "HTTPRoute", "web", "glob", "route accepted again", |o| {
        cond(&o["status"]["parents"][0]["conditions"], "Accepted")["status"] == "True"
    });
}

/// Review 19 HIGH-1: a rule whose ClientAccessPolicy has a `scope:
/// Global` rate limit on a proxy without `[rate_limit_store]` is not
/// served, but it is not left out either: it answers 500, so its requests
/// never fall through to the route's catch-all rule (which has no allow
/// list) — whether the policy is Global from the start (E1) or edited
/// from Local to Global (E1b). Status says so: the policy is `Accepted:
/// False` naming the missing store.
#[test]
fn a_rule_whose_global_rate_limit_has_no_store_fails_closed() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_a, pa) = echo_pod("admin", 2);
    let (_o, po) = echo_pod("open", 3);
    service(&api, "adminsvc", 2, pa);
    service(&api, "opensvc", 3, po);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"], "rules": [
            {"name": "admin", "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                "backendRefs": [{"name": "adminsvc", "port": 80}]},
            {"backendRefs": [{"name": "opensvc", "port": 80}]}]}),
    );
    let target =
        json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "site", "sectionName": "admin"});
    let admins = |scope: &str| {
        policy(
            "ClientAccessPolicy",
            "admins",
            &target,
            &json!({"allow": ["198.51.100.0/24"], "rateLimit": {"perSecond": 5, "scope": scope}}),
        )
    };
    api.apply(admins("Global"));
    let toml = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "r19h1", toml, &["web"]);
    let addr = addrs[0];
    let until_answer = |path: &str, client: &str, want: (u16, &str)| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = answered_by(addr, "a.example.com", path, client);
            if (got.0, got.1.as_str()) == want {
                return;
            }
            if Instant::now() >= deadline {
                let log: Vec<String> = p.stderr.try_iter().collect();
                panic!("{path} from {client}: {got:?}, want {want:?}; proxy log:\n{}", log.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // E1: Global from the start. The catch-all serves; the admin rule
    // answers 500 to everyone, never the open backend.
    until_answer("/", "203.0.113.5", (200, "open"));
    for client in ["203.0.113.5", "198.51.100.7"] {
        assert_eq!(answered_by(addr, "a.example.com", "/admin/secret", client).0, 500, "{client}");
    }
    let pol = until(&api, "ClientAccessPolicy", "web", "admins", "policy not accepted", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["status"] == "False"
    });
    let a = cond(&pol["status"]["ancestors"][0]["conditions"], "Accepted");
    assert_eq!(a["reason"], "Invalid", "{a}");
    assert!(a["message"].as_str().unwrap().contains("rate_limit_store"), "{a}");
    // Local: the allow list is enforced.
    api.apply(admins("Local"));
    until_answer("/admin/x", "203.0.113.5", (403, ""));
    assert_eq!(answered_by(addr, "a.example.com", "/admin/x", "198.51.100.7").1, "admin");
    // E1b: edited back to Global (CRD-valid): 500, never the open rule.
    api.apply(admins("Global"));
    until_answer("/admin/x", "198.51.100.7", (500, ""));
    let got = answered_by(addr, "a.example.com", "/admin/x", "203.0.113.5");
    assert_eq!((got.0, got.1.as_str()), (500, ""), "the allow list is never lifted");
    until_answer("/", "203.0.113.5", (200, "open"));
}

/// Waits (bounded) until `GET host path` with `X-Forwarded-For: client` on
/// `addr` is `want` (status, pod, client the pod saw); on failure the
/// proxy's log (`p`) says why.
fn until_answer(p: &Proc, addr: SocketAddr, host: &str, client: &str, want: (u16, &str, &str)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = answered_by(addr, host, "/", client);
        if (got.0, got.1.as_str(), got.2.as_str()) == want {
            return;
        }
        if Instant::now() >= deadline {
            let log: Vec<String> = p.stderr.try_iter().collect();
            panic!("{host} on {addr}: {got:?}, want {want:?}; proxy log:\n{}", log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An Ingress `ns/name` of the class for `host`, `/` → Service `app` of
/// its namespace.
fn app_ingress(ns: &str, name: &str, host: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": ns},
        "spec": {"ingressClassName": "realip", "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}})
}

/// Review 14 F1: a bind reserved for web/gw (`ingress = false`,
/// `gateways`) and an open bind, both on Gateway port 80; web/gw has a
/// ClientIPPolicy. A tenant's Ingress for its own host makes the file's
/// chain overrule the policy on the open bind only: web/gw stays served on
/// the reserved bind with its policy's chain, and its status says where
/// (listener `Programmed: True` on `pub` only, naming `shared`; the policy
/// `Accepted`, saying the same; the route `Accepted`). Once the Ingress is
/// gone the open bind serves web/gw again and the statuses are plain.
#[test]
#[allow(clippy::too_many_lines)] // one world, before / during / after
fn a_policy_the_files_chain_overrules_on_an_open_bind_stays_on_the_reserved_one() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway_class(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    api.apply(named_gateway(
        "web",
        "gw",
        &json!([{"name": "http", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"}]),
    ));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let gw_target = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"});
    api.apply(policy(
        "ClientIPPolicy",
        "lb",
        &gw_target,
        &json!({"trustedProxies": ["127.0.0.0/8"], "sources": ["XForwardedFor"]}),
    ));
    // The file's chain does not trust the loopback peer; the policy does.
    let toml = "[[listener]]\nname = \"pub\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\ningress = false\ngateways = [\"web/gw\"]\n\n\
                [[listener]]\nname = \"shared\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                [client_ip]\ntrusted = [\"192.0.2.0/24\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "f1", toml, &["pub", "shared"]);
    let (public, shared) = (addrs[0], addrs[1]);
    let victim = (200, "victim", "198.51.100.7");
    until_answer(&p, public, "a.example.com", "198.51.100.7", victim);
    until_answer(&p, shared, "a.example.com", "198.51.100.7", victim);

    // A tenant's Ingress for its own host.
    api.apply(app_ingress("evil", "mine", "evil.example.com"));
    until_status(&p, shared, "evil.example.com", "/", 200);
    until_status(&p, shared, "a.example.com", "/", 404);
    let line = wait_line(&p.stderr, "also serves Ingress or file routes", 20);
    assert!(
        line.contains("kubernetes_route_warning") && line.contains("httproute/web/site") && line.contains("`shared`"),
        "{line}"
    );
    let got = answered_by(public, "a.example.com", "/", "198.51.100.7");
    assert_eq!((got.0, got.1.as_str(), got.2.as_str()), victim, "the reserved bind keeps web/gw, with its policy");
    assert_eq!(status(public, "evil.example.com", "/"), 404, "no Ingress on the reserved bind");
    let listener = |o: &Value, ty: &str| cond(&o["status"]["listeners"][0]["conditions"], ty).clone();
    let gw = until(&api, "Gateway", "web", "gw", "programmed on pub only", |o| {
        listener(o, "Programmed")["message"].as_str().is_some_and(|m| m.contains("only"))
    });
    let programmed = listener(&gw, "Programmed");
    assert_eq!(programmed["status"], "True", "{:#}", gw["status"]);
    let m = programmed["message"].as_str().unwrap();
    assert!(
        m.contains("programmed on [[listener]] `pub` only") && m.contains("`shared`") && m.contains("web/lb"),
        "{m}"
    );
    assert_eq!(cond(&gw["status"]["conditions"], "Programmed")["status"], "True", "{:#}", gw["status"]);
    let pol = until(&api, "ClientIPPolicy", "web", "lb", "policy applied on pub only", |o| {
        cond(&o["status"]["ancestors"][0]["conditions"], "Accepted")["message"]
            .as_str()
            .is_some_and(|m| m.contains("`pub` only"))
    });
    let accepted = cond(&pol["status"]["ancestors"][0]["conditions"], "Accepted");
    assert_eq!(accepted["status"], "True", "{accepted}");
    assert!(accepted["message"].as_str().unwrap().contains("`shared`"), "{accepted}");
    let site = api.get("HTTPRoute", "web", "site").unwrap();
    assert_eq!(cond(&site["status"]["parents"][0]["conditions"], "Accepted")["status"], "True", "{site:#}");

    // The Ingress gone: web/gw is served on both binds again.
    api.delete("Ingress", "evil", "mine");
    until_answer(&p, shared, "a.example.com", "198.51.100.7", victim);
    until(&api, "Gateway", "web", "gw", "programmed everywhere", |o| {
        listener(o, "Programmed")["status"] == "True"
            && listener(o, "Programmed")["message"].as_str().is_some_and(|m| !m.contains("only"))
    });
    until(&api, "ClientIPPolicy", "web", "lb", "policy applied everywhere", |o| {
        let a = cond(&o["status"]["ancestors"][0]["conditions"], "Accepted");
        a["status"] == "True" && a["message"].as_str().is_some_and(|m| !m.contains("only"))
    });
}

/// Review 14 F3: an HTTPRoute older than an Ingress naming its host takes
/// the host from the Ingress only on the bind where the HTTPRoute is
/// served (`http`, with the Gateway port); on the bind without it (`ing`)
/// the Ingress keeps serving the host, and the log names both binds.
#[test]
fn an_older_httproute_takes_an_ingress_host_only_on_its_own_binds() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway_class(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    api.apply(named_gateway("evil", "gw", &json!([{"name": "http", "port": 80, "protocol": "HTTP"}])));
    api.apply(route_in(
        "evil",
        "grab",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["shop.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    ));
    // Newer (the fake API server's clock advances per change).
    api.apply(app_ingress("web", "shop", "shop.example.com"));
    let toml = "[[listener]]\nname = \"http\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                [[listener]]\nname = \"ing\"\nbind = \"127.0.0.1:0\"\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "f3", toml, &["http", "ing"]);
    let (http, ing) = (addrs[0], addrs[1]);
    until_answer(&p, http, "shop.example.com", "198.51.100.7", (200, "attacker", "198.51.100.7"));
    until_answer(&p, ing, "shop.example.com", "198.51.100.7", (200, "victim", "198.51.100.7"));
    let line = wait_line(&p.stderr, "owned by HTTPRoute evil/grab", 20);
    assert!(
        line.contains("kubernetes_route_warning")
            && line.contains("ingress/web/shop")
            && line.contains("not served on [[listener]] http ")
            && line.contains("still served on [[listener]] ing"),
        "{line}"
    );
    // The HTTPRoute gone: the Ingress serves the host on both binds.
    api.delete("HTTPRoute", "evil", "grab");
    until_answer(&p, http, "shop.example.com", "198.51.100.7", (200, "victim", "198.51.100.7"));
    assert_eq!(answered_by(ing, "shop.example.com", "/", "198.51.100.7").1, "victim");
}

/// Review 14 F5: listener isolation on a bind that merges Gateway ports.
/// web/gw has `specific` (port 80, a.example.com, the owner's route with an
/// allow list) and `wild` (port 8080, `*.example.com`, open to every
/// namespace); one `[[listener]]` serves both ports, so they are one stream
/// of connections: a tenant's route on `wild` naming a.example.com must not
/// serve it there (its `/admin` would escape the owner's allow list), while
/// its route for b.example.com is served.
#[test]
fn listener_isolation_holds_across_ports_merged_on_one_bind() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    gateway(
        &api,
        &json!([{"name": "specific", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"},
            {"name": "wild", "port": 8080, "protocol": "HTTP", "hostname": "*.example.com",
             "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    );
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw", "sectionName": "specific"}],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let target = json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "site"});
    api.apply(policy("ClientAccessPolicy", "site-allow", &target, &json!({"allow": ["192.0.2.0/24"]})));
    let evil_route = |name: &str, host: &str| {
        route_in(
            "evil",
            name,
            &json!({"parentRefs": [{"name": "gw", "namespace": "web", "sectionName": "wild"}], "hostnames": [host],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                    "backendRefs": [{"name": "app", "port": 80}]}]}),
        )
    };
    api.apply(evil_route("grab", "a.example.com"));
    api.apply(evil_route("own", "b.example.com"));
    let toml = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80, 8080]\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (p, addrs, _dir) = proxy_file(&api, "f5-merged", toml, &["web"]);
    let a = addrs[0];
    until_status(&p, a, "b.example.com", "/admin", 200);
    until_status(&p, a, "a.example.com", "/", 403);
    assert_eq!(answered_by(a, "b.example.com", "/admin", "198.51.100.7").1, "attacker", "the tenant's own host");
    let got = answered_by(a, "a.example.com", "/admin", "198.51.100.7");
    assert_eq!(got.0, 403, "a.example.com is `specific`'s on this bind: the owner's allow list holds: {got:?}");
    let inside = answered_by(a, "a.example.com", "/admin", "192.0.2.9");
    assert_eq!((inside.0, inside.1.as_str()), (200, "victim"), "the owner's route serves it");
}

/// Review 15 N1: a tenant's Gateway whose HTTPS listener names a host an
/// older Ingress serves on the shared TLS bind (exactly, or under a
/// wildcard) does not get its certificate offered for that host: the
/// certificate follows the side that serves the host.
#[test]
fn a_listener_hostname_does_not_take_an_ingress_hosts_certificate() {
    if !common::need(&["openssl"]) {
        return;
    }
    let dir = Dir(std::env::temp_dir().join(format!("realip-gw-n1-certs-{}", std::process::id())));
    let (vd, td) = (dir.0.join("v"), dir.0.join("t"));
    for d in [&vd, &td] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (vc, vk) = common::self_signed(&vd, "shop.example.com");
    let (tc, tk) = common::self_signed(&td, "shop.example.com");
    let (victim, tenant) = (fingerprint(Some(&vc), None), fingerprint(Some(&tc), None));
    assert!(!victim.is_empty() && victim != tenant);
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway_class(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    api.apply(tls_secret("web", "shop-tls", &vc, &vk));
    api.apply(tls_secret("evil", "x-tls", &tc, &tk));
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop", "namespace": "web"},
        "spec": {"ingressClassName": "realip", "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": [{"host": "shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}));
    let toml =
        "[[listener]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [443]\ntls = { kubernetes = true }\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (_p, addrs, _d) = proxy_file(&api, "n1-certs", toml, &["tls"]);
    let a = addrs[0];
    until_certificate(a, "shop.example.com", &victim, "the Ingress's own Secret");
    for (name, hostname) in [("exact", "shop.example.com"), ("wild", "*.example.com")] {
        api.apply(named_gateway(
            "evil",
            name,
            &json!([{"name": "https", "port": 443, "protocol": "HTTPS", "hostname": hostname,
                "tls": {"certificateRefs": [{"name": "x-tls"}]}}]),
        ));
        until(&api, "Gateway", "evil", name, "programmed", |o| {
            cond(&o["status"]["conditions"], "Programmed")["status"] == "True"
        });
        for _ in 0..5 {
            assert_eq!(
                fingerprint(None, Some((a, "shop.example.com"))),
                victim,
                "{hostname}: the tenant's certificate"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Review 16 L9: the exact listener's whole hostname is the
        // Ingress's: Conflicted; the wildcard one still has other names.
        let conflicted = |o: &Value| cond(&o["status"]["listeners"][0]["conditions"], "Conflicted")["status"].clone();
        let want = if name == "exact" { "True" } else { "False" };
        until(&api, "Gateway", "evil", name, "listener Conflicted as expected", |o| conflicted(o) == want);
        // (Two of them would overlap: the newer would be Conflicted.)
        api.delete("Gateway", "evil", name);
    }
}

/// Review 16 N1w: as review 15 N1, through an Ingress that serves the
/// tenant listener's host by a wildcard rule, or by a host-less rule with
/// the host in its `tls.hosts`: the certificate follows the side that
/// serves the host (the Ingress's). Once the tenant's own route serves the
/// host on the listener (a Gateway route comes before a wildcard or
/// host-less Ingress rule), the listener's certificate is offered again.
#[test]
fn a_listener_hostname_does_not_take_a_wildcard_or_hostless_ingress_certificate() {
    if !common::need(&["openssl"]) {
        return;
    }
    for hostless in [false, true] {
        let dir = Dir(std::env::temp_dir().join(format!("realip-gw-n1w-certs-{}-{hostless}", std::process::id())));
        let (vd, td) = (dir.0.join("v"), dir.0.join("t"));
        for d in [&vd, &td] {
            std::fs::create_dir_all(d).unwrap();
        }
        let vname = if hostless { "shop.example.com" } else { "*.example.com" };
        let (vc, vk) = common::self_signed(&vd, vname);
        let (tc, tk) = common::self_signed(&td, "shop.example.com");
        let (victim, tenant) = (fingerprint(Some(&vc), None), fingerprint(Some(&tc), None));
        assert!(!victim.is_empty() && victim != tenant);
        let api = FakeApi::start().unwrap();
        base(&api);
        gateway_class(&api);
        let (_victim, port) = echo_pod("victim", 2);
        service(&api, "app", 2, port);
        let _attacker = evil_app(&api);
        api.apply(tls_secret("web", "shop-tls", &vc, &vk));
        api.apply(tls_secret("evil", "x-tls", &tc, &tk));
        let paths = json!({"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]});
        let rule = if hostless { json!({"http": paths}) } else { json!({"host": "*.example.com", "http": paths}) };
        api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop", "namespace": "web"},
            "spec": {"ingressClassName": "realip", "tls": [{"hosts": [vname], "secretName": "shop-tls"}], "rules": [rule]}}));
        let toml = "[[listener]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [443]\ntls = { kubernetes = true }\n\n\
                    [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
        let (_p, addrs, _d) = proxy_file(&api, "n1w-certs", toml, &["tls"]);
        let a = addrs[0];
        until_certificate(a, "shop.example.com", &victim, "the Ingress's own Secret");
        api.apply(named_gateway(
            "evil",
            "gw",
            &json!([{"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "shop.example.com",
                "tls": {"certificateRefs": [{"name": "x-tls"}]}}]),
        ));
        until(&api, "Gateway", "evil", "gw", "programmed", |o| {
            cond(&o["status"]["conditions"], "Programmed")["status"] == "True"
        });
        for _ in 0..5 {
            assert_eq!(
                fingerprint(None, Some((a, "shop.example.com"))),
                victim,
                "hostless {hostless}: the tenant's certificate for a host the Ingress serves"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Review 16 L9: its status does not say all is well.
        let listener_cond = |o: &Value| cond(&o["status"]["listeners"][0]["conditions"], "Conflicted").clone();
        let gw = until(&api, "Gateway", "evil", "gw", "listener conflicted", |o| listener_cond(o)["status"] == "True");
        let c = listener_cond(&gw);
        assert_eq!(c["reason"], "HostnameConflict", "{c}");
        assert!(c["message"].as_str().unwrap_or_default().contains("Ingress web/shop serves it"), "{c}");
        // The tenant's route serves the host on its listener: its
        // certificate (not the Ingress's, for the tenant's answers).
        api.apply(route_in(
            "evil",
            "shop",
            &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["shop.example.com"],
                "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
        ));
        until_certificate(a, "shop.example.com", &tenant, "the listener's own, its route serving the host");
        until(&api, "Gateway", "evil", "gw", "listener no longer conflicted", |o| {
            listener_cond(o)["status"] == "False"
        });
    }
}

/// Review 14 F6b: an Ingress's TLS Secret is offered only for its own
/// Ingresses' hosts. A tenant's Ingress for t.example.com naming a Secret
/// whose certificate carries shop.example.com (sorting before the victim's)
/// does not get it offered for shop.example.com, which the victim's
/// Ingress serves with its own Secret; a name no Ingress serves gets no
/// Ingress Secret at all.
#[test]
fn an_ingress_secret_is_offered_only_for_its_own_ingresses_hosts() {
    if !common::need(&["openssl", "curl"]) {
        return;
    }
    let dir = Dir(std::env::temp_dir().join(format!("realip-gw-f6b-certs-{}", std::process::id())));
    let (vd, td) = (dir.0.join("v"), dir.0.join("t"));
    for d in [&vd, &td] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (vc, vk) = common::self_signed(&vd, "shop.example.com");
    let (tc, tk) = common::self_signed(&td, "shop.example.com");
    let (victim, tenant) = (fingerprint(Some(&vc), None), fingerprint(Some(&tc), None));
    assert!(!victim.is_empty() && victim != tenant);
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    api.apply(tls_secret("web", "shop-tls", &vc, &vk));
    api.apply(tls_secret("evil", "a-tls", &tc, &tk));
    let ingress = |ns: &str, name: &str, host: &str, secret: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": ns},
            "spec": {"ingressClassName": "realip", "tls": [{"hosts": [host], "secretName": secret}],
                "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}})
    };
    api.apply(ingress("web", "shop", "shop.example.com", "shop-tls"));
    api.apply(ingress("evil", "mine", "t.example.com", "a-tls"));
    let toml = "[[listener]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\ntls = { kubernetes = true }\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (_p, addrs, _d) = proxy_file(&api, "f6b-certs", toml, &["tls"]);
    let a = addrs[0];
    until_certificate(a, "shop.example.com", &victim, "the victim's own Secret");
    for _ in 0..3 {
        assert_eq!(fingerprint(None, Some((a, "shop.example.com"))), victim, "never the tenant's Secret");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Its own host gets neither: its Secret does not carry the name (as
    // ingress-nginx, which then falls back to its default certificate),
    // and the victim's is the victim's Ingress's.
    assert_eq!(fingerprint(None, Some((a, "t.example.com"))), "", "neither Secret for t.example.com");
    assert_eq!(fingerprint(None, Some((a, "other.example.com"))), "", "no Ingress Secret for a name no Ingress serves");
}

/// Review 14 F6: a host-less HTTPS listener's certificate is offered for
/// the names its routes serve, not a tenant's Ingress TLS Secret naming
/// one of them (the Ingress needs no rule for it); an Ingress certificate
/// is still offered for a name only Ingresses serve.
#[test]
fn an_ingress_certificate_does_not_take_a_name_a_hostless_listeners_routes_serve() {
    if !common::need(&["openssl", "curl"]) {
        return;
    }
    let dir = Dir(std::env::temp_dir().join(format!("realip-gw-f6-certs-{}", std::process::id())));
    let (vd, td, od, wd) = (dir.0.join("v"), dir.0.join("t"), dir.0.join("o"), dir.0.join("w"));
    for d in [&vd, &td, &od, &wd] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (vc, vk) = common::self_signed(&vd, "shop.example.com");
    let (tc, tk) = common::self_signed(&td, "shop.example.com");
    let (oc, ok) = common::self_signed(&od, "only.example.com");
    let (wc, wk) = common::self_signed(&wd, "old.example.com");
    let older = fingerprint(Some(&wc), None);
    let (victim, tenant, only) =
        (fingerprint(Some(&vc), None), fingerprint(Some(&tc), None), fingerprint(Some(&oc), None));
    assert!(!victim.is_empty() && victim != tenant);
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_victim, port) = echo_pod("victim", 2);
    service(&api, "app", 2, port);
    let _attacker = evil_app(&api);
    api.apply(tls_secret("web", "shop-tls", &vc, &vk));
    api.apply(tls_secret("evil", "x-tls", &tc, &tk));
    api.apply(tls_secret("evil", "only-tls", &oc, &ok));
    api.apply(tls_secret("web", "old-tls", &wc, &wk));
    // An Ingress older than the HTTPRoute keeps old.example.com (the
    // route's entry for it is not served): its certificate stays offered.
    api.apply(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "old", "namespace": "web"},
        "spec": {"ingressClassName": "realip", "tls": [{"hosts": ["old.example.com"], "secretName": "old-tls"}],
            "rules": [{"host": "old.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}),
    );
    gateway(
        &api,
        &json!([{"name": "https", "port": 443, "protocol": "HTTPS", "tls": {"certificateRefs": [{"name": "shop-tls"}]}}]),
    );
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["shop.example.com", "old.example.com"],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let toml =
        "[[listener]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [443]\ntls = { kubernetes = true }\n\n\
                [client_ip]\ntrusted = [\"127.0.0.0/8\"]\n";
    let (_p, addrs, _d) = proxy_file(&api, "f6-certs", toml, &["tls"]);
    let a = addrs[0];
    until_certificate(a, "shop.example.com", &victim, "before the tenant's Ingress");
    // The route served (not only the listener's certificate for any name).
    let resolve = format!("shop.example.com:{}:127.0.0.1", a.port());
    let url = format!("https://shop.example.com:{}/", a.port());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !common::curl(&["-k", "--resolve", &resolve, &url]).1.contains("victim") {
        assert!(Instant::now() < deadline, "the victim's route is never served");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The tenant's Ingress: its own hosts, a TLS entry naming the victim's
    // host, and one for a host only it serves.
    let rule = |host: &str| {
        json!({"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}})
    };
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "tls", "namespace": "evil"},
        "spec": {"ingressClassName": "realip", "rules": [rule("t.example.com"), rule("only.example.com")],
            "tls": [{"hosts": ["shop.example.com"], "secretName": "x-tls"},
                    {"hosts": ["only.example.com"], "secretName": "only-tls"}]}}));
    until_certificate(a, "only.example.com", &only, "a host only the Ingress serves");
    for _ in 0..3 {
        assert_eq!(fingerprint(None, Some((a, "shop.example.com"))), victim, "the listener's routes serve it");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(fingerprint(None, Some((a, "SHOP.Example.com"))), victim, "the name in upper case");
    assert_eq!(fingerprint(None, Some((a, "old.example.com"))), older, "the older Ingress serves old.example.com");
}

/// Review 14 F4: one HTTPRoute at the CRD's limits — 32 parentRefs (one
/// listener each: `wild` on the bound port 80, the others on ports no
/// `[[listener]]` has), 16 hostnames, 128 matches with a 4 KiB header
/// value each, a filter per rule — is served where a bind serves it (one
/// route per hostname and match there), `Pending` on the other listeners
/// and logged unserved once per listener (not once per hostname and
/// match), and the older route of the port is untouched. (What it costs
/// the proxy is measured in docs/benchmarks.md, not asserted here.)
#[test]
#[allow(clippy::too_many_lines)] // one object at the limits, then each side of it
fn an_httproute_at_the_crd_limits_is_served_where_bound_and_named_once_where_not() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_e, port) = echo_pod("echo", 2);
    service(&api, "app", 2, port);
    let mut listeners = vec![
        json!({"name": "http", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"}),
        json!({"name": "wild", "port": 80, "protocol": "HTTP", "hostname": "*.evil.example.com"}),
    ];
    listeners.extend((1..32).map(|i| json!({"name": format!("l{i}"), "port": 10000 + i, "protocol": "HTTP"})));
    gateway(&api, &json!(listeners));
    let backend = json!([{"name": "app", "port": 80}]);
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw", "sectionName": "http"}], "rules": [{"backendRefs": backend}]}),
    );
    let pad = |r: usize, m: usize| format!("{}-{r}-{m}", "v".repeat(4090));
    let mut parents = vec![json!({"name": "gw", "sectionName": "wild"})];
    parents.extend((1..32).map(|i| json!({"name": "gw", "sectionName": format!("l{i}")})));
    let hostnames: Vec<String> = (0..16).map(|i| format!("h{i}.evil.example.com")).collect();
    let rules: Vec<Value> = (0..16)
        .map(|r| {
            let matches: Vec<Value> = (0..8)
                .map(|m| {
                    json!({"path": {"type": "PathPrefix", "value": format!("/r{r}m{m}")},
                        "headers": [{"name": "x-pad", "value": pad(r, m)}]})
                })
                .collect();
            json!({"matches": matches, "backendRefs": backend, "filters": [
                {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X-Rule", "value": format!("r{r}")}]}},
                {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/debug/headers"}}}]})
        })
        .collect();
    http_route(&api, "bomb", &json!({"parentRefs": parents, "hostnames": hostnames, "rules": rules}));
    let (p, addr, _dir) = proxy_with(&api, "limits", "gateway_ports = [80]\n", &[]);
    until_status(&p, addr, "a.example.com", "/", 200);
    let get = |host: &str, path: &str, pad: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Pad: {pad}\r\nConnection: close\r\n\r\n");
        exchange(addr, b"", &req)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while get("h15.evil.example.com", "/r15m7", &pad(15, 7)).0 != 200 {
        assert!(Instant::now() < deadline, "the route at the limits is not served");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every hostname and match, with its own rule's filters.
    for (host, r, m) in [(0, 0, 0), (7, 3, 5), (15, 15, 7), (9, 8, 1)] {
        let (st, _, body) = get(&format!("h{host}.evil.example.com"), &format!("/r{r}m{m}"), &pad(r, m));
        assert_eq!(st, 200, "h{host} r{r}m{m}: {body}");
        let seen: Value = serde_json::from_str(&body).unwrap();
        let rule = seen.as_array().unwrap().iter().find(|h| h["name"] == "x-rule").map(|h| h["value"].clone());
        assert_eq!(rule, Some(json!(format!("r{r}"))), "{body}");
    }
    // A match needs its own header value; other hosts are not the route's.
    assert_eq!(get("h7.evil.example.com", "/r3m5", &pad(3, 4)).0, 404);
    assert_eq!(get("h7.evil.example.com", "/r3m5", "").0, 404);
    assert_eq!(get("h16.evil.example.com", "/r3m5", &pad(3, 5)).0, 404);
    assert_eq!(status(addr, "a.example.com", "/r3m5"), 200, "the older route keeps its host");
    // Status: accepted on `wild`, Pending on each unbound listener.
    let o = until(&api, "HTTPRoute", "web", "bomb", "bomb status", |o| {
        o["status"]["parents"].as_array().is_some_and(|a| a.len() == 32)
    });
    let parents = o["status"]["parents"].as_array().unwrap();
    for entry in parents {
        let accepted = cond(&entry["conditions"], "Accepted");
        if entry["parentRef"]["sectionName"] == "wild" {
            assert_eq!(accepted["status"], "True", "{accepted}");
        } else {
            let section = entry["parentRef"]["sectionName"].as_str().unwrap();
            let port = 10000 + section[1..].parse::<u32>().unwrap();
            assert_eq!((&accepted["status"], &accepted["reason"]), (&json!("False"), &json!("Pending")), "{accepted}");
            assert!(
                accepted["message"].as_str().unwrap().contains(&format!("{port} in its gateway_ports")),
                "{accepted}"
            );
        }
    }
    // Logged unserved once per unbound listener, nothing per route entry.
    let mut unserved: Vec<String> = Vec::new();
    let mut per_entry: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while unserved.len() < 31 && Instant::now() < deadline {
        for l in p.stderr.try_iter() {
            if l.contains("httproute/web/bomb/") {
                per_entry.push(l.clone());
            }
            if l.contains("kubernetes_route_unserved") {
                unserved.push(l);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    for l in p.stderr.try_iter() {
        if l.contains("httproute/web/bomb/") {
            per_entry.push(l.clone());
        }
        if l.contains("kubernetes_route_unserved") {
            unserved.push(l);
        }
    }
    assert_eq!(unserved.len(), 31, "{unserved:#?}");
    for i in 1..32 {
        let want = format!("\"httproute/web/bomb on gateway/web/gw/l{i}\"");
        let line = unserved.iter().find(|l| l.contains(&want)).unwrap_or_else(|| panic!("{want}: {unserved:#?}"));
        assert!(line.contains(&format!("gateway_ports = [{}]", 10000 + i)), "{line}");
    }
    assert!(per_entry.is_empty(), "{per_entry:#?}");
}

/// Review 18 W1: status is written beside the watch, never inside it. A
/// tenant's 300 HTTPRoutes flip status at once (their Gateway listener's
/// `allowedRoutes` goes from All to Same) while every status PATCH takes
/// 50 ms; an EndpointSlice change made right after is served before the
/// API server has even received the 300 PATCHes (written one by one in
/// the watch loop, the change waited for all of them: 15 s).
#[test]
fn an_endpoint_change_is_served_while_many_statuses_are_being_written() {
    const K: usize = 300;
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_a, pa) = echo_pod("a", 2);
    let (_b, pb) = echo_pod("b", 3);
    service(&api, "app-a", 2, pa);
    let gw = |from: &str| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "web"},
            "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": from}}}]}})
    };
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "realip"},
        "spec": {"controllerName": "realip.dev/gateway-controller"}}),
    );
    api.apply(gw("All"));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["e.example.com"],
            "rules": [{"backendRefs": [{"name": "app-a", "port": 80}]}]}),
    );
    for i in 0..K {
        api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": format!("t{i}"), "namespace": "tenant"},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "web"}], "hostnames": [format!("t{i}.example.com")],
                "rules": [{"backendRefs": [{"name": "t", "port": 80}]}]}}));
    }
    let (p, addr, _dir) = proxy_with(&api, "slow-status", "gateway_ports = [80]\n", &[]);
    until_status(&p, addr, "e.example.com", "/", 200);
    let accepted = |o: &Value| cond(&o["status"]["parents"][0]["conditions"], "Accepted")["status"] == "True";
    for i in 0..K {
        until(&api, "HTTPRoute", "tenant", &format!("t{i}"), "tenant route accepted", accepted);
    }
    let pod = || {
        let (st, _, body) = exchange(addr, b"", "GET / HTTP/1.1\r\nHost: e.example.com\r\nConnection: close\r\n\r\n");
        (st == 200).then(|| serde_json::from_str::<Value>(&body).unwrap()["pod"].as_str().unwrap_or("?").to_owned())
    };
    assert_eq!(pod().as_deref(), Some("a"));

    api.set_status_patch_delay(Duration::from_millis(50));
    let before = api.patches().len();
    api.apply(gw("Same"));
    // The flip is computed and its statuses are on their way.
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.patches().len() == before {
        assert!(Instant::now() < deadline, "no status written for the flip");
        std::thread::sleep(Duration::from_millis(5));
    }
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-a-1", "namespace": "web", "labels": {"kubernetes.io/service-name": "app-a"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": pb}],
        "endpoints": [{"addresses": ["127.0.0.3"], "conditions": {"ready": true}}]}));
    let deadline = Instant::now() + Duration::from_secs(30);
    while pod().as_deref() != Some("b") {
        assert!(Instant::now() < deadline, "the endpoint change was never served");
        std::thread::sleep(Duration::from_millis(5));
    }
    let received = api.patches().len() - before;
    eprintln!("endpoint change served once {received} of the {K} status PATCHes had arrived");
    assert!(received < K, "the endpoint change waited for {received} status PATCHes");
    // And the flip's statuses are all written, meanwhile or after.
    for i in 0..K {
        until(&api, "HTTPRoute", "tenant", &format!("t{i}"), "tenant route not allowed", |o| {
            cond(&o["status"]["parents"][0]["conditions"], "Accepted")["reason"] == "NotAllowedByListeners"
        });
    }
    let tenant = api.patches()[before..].iter().filter(|(path, _)| path.contains("/namespaces/tenant/")).count();
    assert_eq!(tenant, K, "each route's flip written once");
}

/// Latest wins: a route's status changes twice while a status PATCH takes
/// 300 ms (its Service deleted, then back); the second status waits for
/// the first write and goes after it, so the route ends with the newer one.
#[test]
fn the_newer_of_two_quick_statuses_is_the_one_kept() {
    let api = FakeApi::start().unwrap();
    base(&api);
    let (_a, pa) = echo_pod("a", 2);
    service(&api, "app-a", 2, pa);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    http_route(
        &api,
        "site",
        &json!({"parentRefs": [{"name": "gw"}], "hostnames": ["e.example.com"],
            "rules": [{"backendRefs": [{"name": "app-a", "port": 80}]}]}),
    );
    let (_p, _addr, _dir) = proxy_with(&api, "latest-wins", "gateway_ports = [80]\n", &[]);
    let resolved = |o: &Value| cond(&o["status"]["parents"][0]["conditions"], "ResolvedRefs")["reason"].clone();
    until(&api, "HTTPRoute", "web", "site", "resolved", |o| resolved(o) == "ResolvedRefs");
    api.set_status_patch_delay(Duration::from_millis(300));
    let before = api.patches().len();
    let site_patches = || -> Vec<Value> {
        api.patches()[before..]
            .iter()
            .filter(|(path, _)| path.ends_with("/httproutes/site/status"))
            .map(|(_, body)| cond(&body["status"]["parents"][0]["conditions"], "ResolvedRefs")["reason"].clone())
            .collect()
    };
    let svc = api.get("Service", "web", "app-a").unwrap();
    api.delete("Service", "web", "app-a");
    let deadline = Instant::now() + Duration::from_secs(20);
    while site_patches().is_empty() {
        assert!(Instant::now() < deadline, "no status written for the deletion");
        std::thread::sleep(Duration::from_millis(5));
    }
    // While that write is in flight, the Service is back.
    api.apply(svc);
    // (A write rendered over a version the watch had not yet seen is
    // refused with 409 and taken out of `patches`; the newer status may
    // then find the object already holding it, and write nothing.)
    until(&api, "HTTPRoute", "web", "site", "the newer status", |o| {
        resolved(o) == "ResolvedRefs" && site_patches().last() != Some(&json!("BackendNotFound"))
    });
    let written = site_patches();
    assert!(written.len() <= 2, "{written:?}");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(resolved(&api.get("HTTPRoute", "web", "site").unwrap()), "ResolvedRefs");
    assert_eq!(site_patches(), written, "nothing written after the newer status");
}

/// Whether an object's status has a `parents[]` entry of realip's.
fn has_realips_entry(o: &Value) -> bool {
    o["status"]["parents"]
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["controllerName"] == "realip.dev/gateway-controller"))
}

/// A proxy (`tag`) serving HTTPRoute web/r on Gateway web/gw, once realip's
/// entry is in the route's status: the API server, the proxy (with its
/// config dir), the route as stored, and an entry of another controller.
fn route_with_realips_entry(tag: &str) -> (FakeApi, (Proc, SocketAddr, Dir), Value, Value) {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway(
        &api,
        &json!([{"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]),
    );
    http_route(
        &api,
        "r",
        &json!({"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "app", "port": 80}]}]}),
    );
    let proxy = proxy_with(&api, tag, "gateway_ports = [80]\n", &[]);
    let r = until(&api, "HTTPRoute", "web", "r", "realip's entry", has_realips_entry);
    let theirs = json!({"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "other", "namespace": "web"},
        "controllerName": "example.com/other", "conditions": []});
    (api, proxy, r, theirs)
}

/// Review 29 F1: an HTTPRoute moved from realip's Gateway to another
/// controller's loses realip's `parents[]` entry (it said `Accepted: True`
/// for a Gateway the route no longer names); the other controller's entry
/// stays. The spec update keeps the status, as a real API server does.
#[test]
fn a_route_moved_to_another_controller_loses_realips_parent_entry() {
    let (api, _p, mut r, theirs) = route_with_realips_entry("moved");
    r["spec"]["parentRefs"] = json!([{"name": "other"}]);
    r["status"]["parents"].as_array_mut().unwrap().push(theirs.clone());
    api.apply(r);
    let r = until(&api, "HTTPRoute", "web", "r", "realip's entry removed", |o| !has_realips_entry(o));
    assert_eq!(r["status"]["parents"], json!([theirs]), "{:#}", r["status"]);
}

/// Review 13d HIGH-1: another writer (another realip, a replica, a write
/// racing this one's) replaces an HTTPRoute's status without realip's
/// entry: the proxy puts its entry back, keeping the other's, with no spec
/// change.
#[test]
fn an_entry_another_writer_dropped_is_put_back() {
    let (api, _p, mut r, theirs) = route_with_realips_entry("putback");
    // The status alone changes (same spec, same generation).
    r["status"] = json!({"parents": [theirs.clone()]});
    api.apply(r);
    let r = until(&api, "HTTPRoute", "web", "r", "realip's entry put back", has_realips_entry);
    let parents = r["status"]["parents"].as_array().unwrap();
    assert!(parents.contains(&theirs), "the other writer's entry is kept: {parents:?}");
    assert_eq!(parents.len(), 2, "{parents:?}");
}

/// Review 13d HIGH-1: a write racing another writer's fails with 409 (it
/// carries the resourceVersion it was rendered over) instead of dropping
/// the entry that writer just put there; realip's entry is then rendered
/// again over the other's write.
#[test]
fn a_write_racing_another_keeps_the_others_entry() {
    let (api, _p, mut r, theirs) = route_with_realips_entry("race");
    api.set_status_patch_delay(Duration::from_millis(400));
    // A spec change: realip writes its entry at the new generation…
    r["spec"]["hostnames"] = json!(["race.example"]);
    api.apply(r);
    let writing = |api: &FakeApi| {
        api.patches().iter().any(|(path, p)| {
            path.ends_with("/httproutes/r/status")
                && p.pointer("/status/parents/0/conditions/0/observedGeneration") == Some(&json!(2))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !writing(&api) {
        assert!(Instant::now() < deadline, "no status write after the spec change: {:?}", api.patches());
        std::thread::sleep(Duration::from_millis(5));
    }
    // …and while that write is on its way, another controller adds its own.
    let mut now = api.get("HTTPRoute", "web", "r").unwrap();
    now["status"]["parents"].as_array_mut().unwrap().push(theirs.clone());
    api.apply(now);
    // Their entry is never dropped, not even for a moment (each write
    // takes 400 ms here: a lost entry would show for that long at least).
    let watch_until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < watch_until {
        let o = api.get("HTTPRoute", "web", "r").unwrap();
        assert!(
            o["status"]["parents"].as_array().is_some_and(|ps| ps.contains(&theirs)),
            "their entry dropped: {:#}",
            o["status"]
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = until(&api, "HTTPRoute", "web", "r", "realip's entry at generation 2 next to theirs", |o| {
        o["status"]["parents"].as_array().is_some_and(|ps| {
            ps.contains(&theirs)
                && ps.iter().any(|e| {
                    e["controllerName"] == "realip.dev/gateway-controller"
                        && e["conditions"][0]["observedGeneration"] == 2
                })
        })
    });
    assert_eq!(r["status"]["parents"].as_array().unwrap().len(), 2, "{:#}", r["status"]);
}

/// Review 13e HIGH-1: a condition of a type realip does not write (a policy
/// controller's, on a realip Gateway) is kept where it is, and realip's
/// rechecks find the status in place: no write loop.
#[test]
fn another_controllers_condition_on_a_gateway_is_kept_without_a_write_loop() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    let _p = proxy_with(&api, "foreign-cond", "gateway_ports = [80]\n", &[]);
    let programmed =
        |o: &Value| o["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Programmed"));
    let mut gw = until(&api, "Gateway", "web", "gw", "realip's conditions", programmed);
    let theirs = json!({"type": "example.com/PolicyAffected", "status": "True", "reason": "Attached",
        "message": "a policy of example.com", "lastTransitionTime": "2026-01-01T00:00:00Z"});
    gw["status"]["conditions"].as_array_mut().unwrap().insert(0, theirs.clone());
    let want = gw["status"].clone();
    api.apply(gw);
    // Settled: what was applied stays as it is, and nothing more is written.
    std::thread::sleep(Duration::from_millis(500));
    let writes = |api: &FakeApi| api.patches().iter().filter(|(p, _)| p.contains("/gateways/gw/")).count();
    let settled = writes(&api);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(writes(&api), settled, "no status written once in place");
    assert_eq!(api.get("Gateway", "web", "gw").unwrap()["status"], want);
}

/// Review 13f HIGH-1: a Gateway moved to another controller's class is no
/// longer realip's: its status changing afterwards (the other controller
/// writing its own) is not rewritten with realip's old decision.
#[test]
fn a_gateway_moved_to_another_class_is_left_to_it() {
    let api = FakeApi::start().unwrap();
    base(&api);
    gateway(&api, &json!([{"name": "http", "port": 80, "protocol": "HTTP"}]));
    api.apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "other"},
        "spec": {"controllerName": "example.com/other"}}),
    );
    let _p = proxy_with(&api, "moved-class", "gateway_ports = [80]\n", &[]);
    let programmed =
        |o: &Value| o["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Programmed"));
    let mut gw = until(&api, "Gateway", "web", "gw", "realip's conditions", programmed);
    gw["spec"]["gatewayClassName"] = json!("other");
    api.apply(gw);
    std::thread::sleep(Duration::from_millis(500));
    // The other controller writes its status, twice.
    let theirs = json!({"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "theirs",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}], "listeners": [], "addresses": []});
    let writes = |api: &FakeApi| api.patches().iter().filter(|(p, _)| p.contains("/gateways/gw/")).count();
    let before = writes(&api);
    for _ in 0..2 {
        let mut now = api.get("Gateway", "web", "gw").unwrap();
        now["status"] = theirs.clone();
        api.apply(now);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(writes(&api), before, "realip wrote on a Gateway that is not its own");
    assert_eq!(api.get("Gateway", "web", "gw").unwrap()["status"], theirs);
}
