//! `realip proxy --kubernetes` against a fake API server that speaks the
//! real list/watch JSON (kube-rs reflectors unmodified): Ingresses of our
//! class become routes to EndpointSlice pod addresses, changes apply
//! without a restart and without failing requests in flight, terminating
//! endpoints are used only when no ready one is left, annotations become
//! policy, unsupported ones reject the Ingress, and the load balancer's
//! address is written into Ingress status.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{raw_http, spawn, wait_line, Proc};
use realip_lab::fakeapi::FakeApi;
use serde_json::{json, Value};

fn echo_pod(ip: &str, port: u16, pod: &str) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
    cmd.args(["echo", "--listen", &format!("{ip}:{port}"), "--trust", "127.0.0.0/8"]).env("POD_NAME", pod);
    let p = spawn(&mut cmd);
    wait_line(&p.stderr, "listening on", 20);
    p
}

#[allow(clippy::needless_pass_by_value)] // json! literals at every call
fn ingress(name: &str, class: &str, path: &str, annotations: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "web", "annotations": annotations},
        "spec": {"ingressClassName": class, "rules": [{"host": "app.example.com", "http": {"paths": [
            {"path": path, "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}})
}

fn slice(port: u16, endpoints: &[(&str, bool, bool, bool)]) -> Value {
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|(ip, ready, serving, terminating)| {
            json!({"addresses": [ip], "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-abc", "namespace": "web", "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": port, "protocol": "TCP"}], "endpoints": eps})
}

fn ask(proxy: SocketAddr, path: &str) -> (u16, Value) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n");
    match raw_http(proxy, req.as_bytes()) {
        Ok((s, body)) => (s, serde_json::from_str(&body).unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

/// Polls (bounded) until `f` holds for an answer.
fn until(proxy: SocketAddr, path: &str, what: &str, f: impl Fn(u16, &Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, v) = ask(proxy, path);
        if f(s, &v) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: last answer {s} {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ingresses_and_endpoint_slices_drive_routes_without_restarts() {
    let port = common::free_port();
    let _a = echo_pod("127.0.0.2", port, "pod-a");
    let _b = echo_pod("127.0.0.3", port, "pod-b");
    let api = FakeApi::start().unwrap();
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}}));
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "realip", "namespace": "realip"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.200"}]}}}));
    api.apply(slice(port, &[("127.0.0.2", true, true, false)]));
    api.apply(ingress("site", "realip", "/", json!({})));
    api.apply(ingress("other-class", "nginx", "/nginx", json!({})));

    let dir = std::env::temp_dir().join(format!("realip-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("realip.toml");
    std::fs::write(
        &cfg,
        "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n\n[client_ip]\ntrusted = [\"127.0.0.0/8\"]\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
    cmd.args(["proxy", "--kubernetes", "--publish-service", "realip/realip", "--config"])
        .arg(&cfg)
        .env("KUBECONFIG", api.kubeconfig(&dir).unwrap());
    let p = spawn(&mut cmd);
    let line = wait_line(&p.stderr, "\"listening\"", 20);
    let proxy: SocketAddr = serde_json::from_str::<Value>(&line).unwrap()["addr"].as_str().unwrap().parse().unwrap();

    // The Ingress is served, straight to the pod (not through a ClusterIP).
    until(proxy, "/debug/ip", "route from the Ingress", |s, v| s == 200 && v["pod"] == "pod-a");
    assert_eq!(ask(proxy, "/nginx").1["pod"], "pod-a", "the nginx-class Ingress adds nothing; / still matches");
    // Ingress status gets the load balancer's address.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !api.patches().iter().any(|(path, body)| {
        path.ends_with("/namespaces/web/ingresses/site/status")
            && body["status"]["loadBalancer"]["ingress"][0]["ip"] == "203.0.113.200"
    }) {
        assert!(Instant::now() < deadline, "no status patch: {:?}", api.patches());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!api.patches().iter().any(|(path, _)| path.contains("other-class")));

    // Under a bounded load: a second pod joins, then the first terminates.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut pods = std::collections::BTreeMap::<String, usize>::new();
            for _ in 0..5000 {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                let (s, v) = ask(proxy, "/debug/ip");
                if s == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                    *pods.entry(v["pod"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            pods
        })
    };
    api.apply(slice(port, &[("127.0.0.2", true, true, false), ("127.0.0.3", true, true, false)]));
    until(proxy, "/debug/ip", "pod-b joins", |s, v| s == 200 && v["pod"] == "pod-b");
    // pod-a terminating: only pod-b (ready) is used.
    api.apply(slice(port, &[("127.0.0.2", false, true, true), ("127.0.0.3", true, true, false)]));
    std::thread::sleep(Duration::from_millis(300)); // let the load run on the new state
    let served: Vec<String> =
        (0..20).map(|_| ask(proxy, "/debug/ip").1["pod"].as_str().unwrap_or("?").to_owned()).collect();
    assert!(served.iter().all(|p| p == "pod-b"), "{served:?}");
    // pod-b gone too: the terminating-but-serving pod-a is used (KEP-1669).
    api.apply(slice(port, &[("127.0.0.2", false, true, true)]));
    until(proxy, "/debug/ip", "terminating fallback", |s, v| s == 200 && v["pod"] == "pod-a");
    stop.store(true, Ordering::Relaxed);
    let pods = load.join().unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during endpoint changes ({} ok, {pods:?})",
        ok.load(Ordering::Relaxed)
    );
    assert!(ok.load(Ordering::Relaxed) > 20);

    // No serving endpoint at all: 503, not a hang and not 404.
    api.apply(slice(port, &[("127.0.0.2", false, false, true)]));
    until(proxy, "/debug/ip", "no endpoints", |s, _| s == 503);

    annotations_and_deletion(&api, proxy, &p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Annotations become policy, unsupported ones reject the Ingress, and a
/// deleted Ingress stops being served.
fn annotations_and_deletion(api: &FakeApi, proxy: SocketAddr, p: &Proc) {
    let port = api.service_port("web", "app");
    // Annotations become policy: an allowlist that excludes us → 403.
    api.apply(slice(port, &[("127.0.0.3", true, true, false)]));
    api.apply(ingress(
        "site",
        "realip",
        "/",
        json!({"nginx.ingress.kubernetes.io/whitelist-source-range": "198.51.100.0/24"}),
    ));
    until(proxy, "/debug/ip", "allowlist", |s, _| s == 403);
    // ssl-redirect: plain HTTP gets 308 to https (a trusted proxy saying
    // X-Forwarded-Proto: https does not).
    api.apply(ingress("site", "realip", "/", json!({"nginx.ingress.kubernetes.io/ssl-redirect": "true"})));
    until(proxy, "/debug/ip?x=1", "ssl-redirect", |s, _| s == 308);
    let req = "GET /debug/ip?x=1 HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n";
    let mut c = std::net::TcpStream::connect(proxy).unwrap();
    std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
    let mut head = String::new();
    std::io::Read::read_to_string(&mut c, &mut head).unwrap();
    assert!(head.to_ascii_lowercase().contains("location: https://app.example.com/debug/ip?x=1"), "{head}");
    let proto =
        "GET /debug/ip HTTP/1.1\r\nHost: app.example.com\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_http(proxy, proto.as_bytes()).unwrap().0, 200, "127.0.0.1 is trusted and says https");
    // use-regex rejects the Ingress, with the reason logged.
    api.apply(ingress("site", "realip", "/", json!({"nginx.ingress.kubernetes.io/use-regex": "true"})));
    let line = wait_line(&p.stderr, "ingress_rejected", 20);
    assert!(line.contains("use-regex is not supported") && line.contains("web/site"), "{line}");
    until(proxy, "/debug/ip", "rejected Ingress not served", |s, _| s == 404);
    // …and its status says so, with a code on the port.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !api.patches().iter().any(|(path, body)| {
        path.ends_with("/ingresses/site/status")
            && body["status"]["loadBalancer"]["ingress"][0]["ports"][0]["error"] == "realip.dev/UnsupportedAnnotation"
    }) {
        assert!(Instant::now() < deadline, "no rejection status: {:?}", api.patches());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Back, then deleted: 404.
    api.apply(ingress("site", "realip", "/", json!({})));
    until(proxy, "/debug/ip", "served again", |s, _| s == 200);
    api.delete("Ingress", "web", "site");
    until(proxy, "/debug/ip", "deleted", |s, _| s == 404);
}

/// A self-signed certificate for `name` (PEM chain, PEM key).
fn self_signed(dir: &std::path::Path, name: &str) -> (Vec<u8>, Vec<u8>) {
    let (cert, key) = common::self_signed(dir, name);
    (std::fs::read(cert).unwrap(), std::fs::read(key).unwrap())
}

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn tls_secrets_named_by_ingresses_are_served_by_sni() {
    if !common::have("openssl") || !common::have("curl") {
        common::peer_missing("openssl and curl are needed for the TLS test");
        return;
    }
    let dir = std::env::temp_dir().join(format!("realip-k8s-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = common::free_port();
    let _a = echo_pod("127.0.0.4", port, "pod-tls");
    let (crt, key) = self_signed(&dir, "app.example.com");
    let api = FakeApi::start().unwrap();
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}}));
    api.apply(slice(port, &[("127.0.0.4", true, true, false)]));
    api.apply(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "site-tls", "namespace": "web"}, "data": {"tls.crt": b64(&crt), "tls.key": b64(&key)}}));
    let mut ing = ingress("site", "realip", "/", json!({}));
    ing["spec"]["tls"] = json!([{"hosts": ["app.example.com"], "secretName": "site-tls"}]);
    api.apply(ing);
    let cfg = dir.join("realip.toml");
    std::fs::write(
        &cfg,
        "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n\n[[listener]]\nname = \"https\"\nbind = \"127.0.0.1:0\"\ntls = { kubernetes = true }\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
    cmd.args(["proxy", "--kubernetes", "--config"]).arg(&cfg).env("KUBECONFIG", api.kubeconfig(&dir).unwrap());
    let p = spawn(&mut cmd);
    let mut addrs = std::collections::HashMap::new();
    for _ in 0..2 {
        let v: Value = serde_json::from_str(&wait_line(&p.stderr, "\"listening\"", 20)).unwrap();
        addrs.insert(
            v["listener"].as_str().unwrap().to_owned(),
            v["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap(),
        );
    }
    // Plain HTTP: the Ingress has TLS for the host, so ssl-redirect is on by default.
    until(addrs["web"], "/debug/ip", "redirect to https", |s, _| s == 308);
    let https = addrs["https"];
    let deadline = Instant::now() + Duration::from_secs(20);
    let ca = dir.join("app.example.com.pem");
    loop {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "5", "--cacert"])
            .arg(&ca)
            .args(["--resolve", &format!("app.example.com:{}:127.0.0.1", https.port())])
            .arg(format!("https://app.example.com:{}/debug/ip", https.port()))
            .output()
            .unwrap();
        let body: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if body["pod"] == "pod-tls" {
            break;
        }
        assert!(Instant::now() < deadline, "no TLS answer: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kubernetes_mode_needs_a_reachable_api_and_a_well_formed_publish_service() {
    let dir = std::env::temp_dir().join(format!("realip-k8s-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("realip.toml");
    std::fs::write(&cfg, "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_realip"))
        .args(["proxy", "--kubernetes", "--publish-service", "nope", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--publish-service: `nope` is not NAMESPACE/NAME"));
    let out = Command::new(env!("CARGO_BIN_EXE_realip"))
        .args(["proxy", "--kubernetes", "--config"])
        .arg(&cfg)
        .env("KUBECONFIG", dir.join("missing"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("connecting to the cluster"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
