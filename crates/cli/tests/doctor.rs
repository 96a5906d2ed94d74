//! `realip doctor` on the seed guide's own setup: the recommended manifests
//! and Helm values are clean, and each item of the guide's checklist broken
//! on purpose is caught, at the right file and line.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/doctor").join(name)
}

fn doctor(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_realip"))
        .arg("doctor")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn good() -> String {
    std::fs::read_to_string(fixture("guide-good.yaml")).unwrap()
}

fn findings(out: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    v["findings"].as_array().unwrap().clone()
}

#[test]
fn the_guides_recommended_setup_is_clean() {
    let out = doctor(
        &[
            fixture("guide-good.yaml").to_str().unwrap(),
            "--helm-values",
            fixture("guide-values.yaml").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no findings"));
    // Warnings count too with --fail-on warning: still clean.
    let out = doctor(&[fixture("guide-good.yaml").to_str().unwrap(), "--fail-on", "warning"], None);
    assert_eq!(out.status.code(), Some(0));
}

/// (what is broken, edit of the good manifests, rule expected, line expected)
#[test]
fn each_checklist_item_broken_is_caught() {
    let cases: &[(&str, &str, &str, &str, usize)] = &[
        ("Cluster on the ingress Service", "externalTrafficPolicy: Local", "externalTrafficPolicy: Cluster", "ingress-etp-cluster", 14),
        ("no proxy-real-ip-cidr", "  proxy-real-ip-cidr: \"10.0.0.0/8\"\n", "", "forwarded-headers-from-everyone", 65),
        ("proxy-real-ip-cidr trusts everyone", "proxy-real-ip-cidr: \"10.0.0.0/8\"", "proxy-real-ip-cidr: \"0.0.0.0/0\"", "forwarded-headers-from-everyone", 65),
        ("one ingress replica", "  replicas: 3", "  replicas: 1", "ingress-single-replica", 30),
        ("ingress pods not spread", "topologyKey: kubernetes.io/hostname", "topologyKey: topology.kubernetes.io/zone", "ingress-no-spread", 44),
        ("no preStop drain with Local", "        lifecycle:\n          preStop:\n            exec:\n              command: [\"/wait-shutdown\"]\n", "", "rollout-no-drain", 52),
        ("uvicorn trusts *", "--forwarded-allow-ips=10.0.0.0/8,127.0.0.1", "--forwarded-allow-ips=*", "app-trusts-every-proxy", 84),
        ("ETP on the app's ClusterIP Service", "  type: ClusterIP\n", "  type: ClusterIP\n  externalTrafficPolicy: Local\n", "etp-without-effect", 93),
        ("PROXY on the LB, not on the ingress", "  labels:\n    app.kubernetes.io/name: ingress-nginx\n    app.kubernetes.io/component: controller\n", "  labels:\n    app.kubernetes.io/name: ingress-nginx\n    app.kubernetes.io/component: controller\n  annotations:\n    service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: \"*\"\n", "proxy-protocol-mismatch", 13),
        ("PROXY on the ingress, not on the LB", "  use-forwarded-headers: \"true\"\n", "  use-forwarded-headers: \"true\"\n  use-proxy-protocol: \"true\"\n", "proxy-protocol-mismatch", 4),
        // DigitalOcean publishes an IP (AWS publishes a hostname: no hairpin there, issue 12 item 3).
        ("PROXY on: in-cluster clients bypass the LB", "  labels:\n    app.kubernetes.io/name: ingress-nginx\n    app.kubernetes.io/component: controller\n", "  labels:\n    app.kubernetes.io/name: ingress-nginx\n    app.kubernetes.io/component: controller\n  annotations:\n    service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol: \"true\"\n", "hairpin-proxy-protocol", 13),
        ("no PodDisruptionBudget", "apiVersion: policy/v1\nkind: PodDisruptionBudget", "apiVersion: v1\nkind: Secret", "ingress-no-pdb", 25),
        ("maxUnavailable can empty a node", "      maxUnavailable: 0", "      maxUnavailable: 1", "rollout-max-unavailable", 34),
        ("grace period shorter than the drain", "command: [\"/wait-shutdown\"]", "command: [\"sh\", \"-c\", \"sleep 40\"]", "grace-shorter-than-drain", 22),
        ("dual-stack, IPv4-only trust", "  externalTrafficPolicy: Local\n", "  externalTrafficPolicy: Local\n  ipFamilyPolicy: PreferDualStack\n", "dual-stack-one-family-trusted", 4),
    ];
    for (what, from, to, rule, line) in cases {
        let text = good();
        assert!(text.contains(from), "{what}: fixture text not found");
        let broken = text.replacen(from, to, 1);
        let out = doctor(&["-", "--format", "json", "--fail-on", "warning"], Some(&broken));
        assert_eq!(out.status.code(), Some(1), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        let f = findings(&out);
        let hit = f.iter().find(|f| f["rule"] == *rule).unwrap_or_else(|| panic!("{what}: no {rule} in {f:?}"));
        assert_eq!((hit["file"].as_str(), hit["line"].as_u64()), (Some("-"), Some(*line as u64)), "{what}: {hit}");
        assert!(!hit["why"].as_str().unwrap().is_empty() && !hit["fix"].as_str().unwrap().is_empty());
    }
}

#[test]
fn helm_values_broken_are_caught() {
    let good = std::fs::read_to_string(fixture("guide-values.yaml")).unwrap();
    let dir = std::env::temp_dir().join(format!("realip-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (what, from, to, rule) in [
        ("Cluster", "externalTrafficPolicy: Local", "externalTrafficPolicy: Cluster", "ingress-etp-cluster"),
        (
            "trust all",
            "proxy-real-ip-cidr: \"10.0.0.0/8\"",
            "proxy-real-ip-cidr: \"0.0.0.0/0\"",
            "forwarded-headers-from-everyone",
        ),
        ("one replica", "replicaCount: 3", "replicaCount: 1", "ingress-single-replica"),
        (
            "PROXY only at the ingress",
            "use-forwarded-headers: \"true\"",
            "use-forwarded-headers: \"true\"\n    use-proxy-protocol: \"true\"",
            "proxy-protocol-mismatch",
        ),
    ] {
        let path = dir.join("values.yaml");
        std::fs::write(&path, good.replacen(from, to, 1)).unwrap();
        let out = doctor(&["--helm-values", path.to_str().unwrap(), "--format", "json", "--fail-on", "warning"], None);
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(findings(&out).iter().any(|f| f["rule"] == rule && f["object"] == "values"), "{what}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kubectl_list_output_and_sarif() {
    // `kubectl get svc -o yaml` wraps objects in a List.
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: ingress-nginx-controller\n    namespace: ingress-nginx\n    labels: {app.kubernetes.io/name: ingress-nginx}\n  spec:\n    type: NodePort\n";
    let out = doctor(&["-", "--format", "sarif"], Some(list));
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let r = &v["runs"][0]["results"][0];
    assert_eq!(r["ruleId"], "ingress-etp-cluster");
    assert_eq!(r["locations"][0]["physicalLocation"]["region"]["startLine"], 4);
}

#[test]
fn bad_input_is_a_precise_error_with_exit_2() {
    for (args, stdin, needle) in [
        (vec!["-"], Some("kind: Service\nmetadata: [unclosed\n"), "-:"),
        (vec!["-"], Some("just: a map\n"), "no `kind`"),
        (vec!["/nonexistent/realip.yaml"], None, "/nonexistent/realip.yaml"),
        (vec![], None, "nothing to audit"),
        (vec!["-", "--format", "xml"], Some(""), "xml"),
    ] {
        let out = doctor(&args, stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

fn rules_of(out: &Output) -> Vec<String> {
    findings(out).iter().map(|f| f["rule"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn probe_reports_forgeries_believed_by_a_live_chain() {
    // The app trusts everyone: a forged X-Forwarded-For wins.
    let (_e, addr) = common::echo(&["--trust", "0.0.0.0/0"]);
    let url = format!("http://{addr}/debug/ip");
    let out = doctor(&["--probe", &url, "--expect-client", "127.0.0.1", "--format", "json"], None);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let f = findings(&out);
    assert!(
        f.iter().any(|f| f["rule"] == "probe-forged-header-believed"
            && f["message"].as_str().unwrap().contains("X-Forwarded-For")),
        "{f:?}"
    );

    // Correctly configured (the probe's peer is not a trusted proxy): clean.
    let (_e, addr) = common::echo(&["--trust", "10.0.0.0/8"]);
    let out = doctor(
        &["--probe", &format!("http://{addr}/debug/ip"), "--expect-client", "127.0.0.1", "--format", "json"],
        None,
    );
    assert_eq!((out.status.code(), rules_of(&out)), (Some(0), vec![]));
    // Without --expect-client a loopback answer is flagged as internal (a warning).
    let out = doctor(&["--probe", &format!("http://{addr}/debug/ip"), "--format", "json"], None);
    assert_eq!((out.status.code(), rules_of(&out)), (Some(0), vec!["probe-client-ip-internal".to_owned()]));
}

#[test]
fn probe_through_realip_proxy_trusting_everyone_and_correctly() {
    let (_e, up) = common::echo(&["--trust", "127.0.0.1", "--source", "x-real-ip"]);
    for (trusted, believed) in [("[\"0.0.0.0/0\"]", true), ("[]", false)] {
        let dir = std::env::temp_dir().join(format!("realip-probe-{}-{believed}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("p.toml");
        std::fs::write(
            &cfg,
            format!("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n[client_ip]\ntrusted = {trusted}\nsources = [\"xff\"]\n[[route]]\nupstream = \"app\"\n[[upstream]]\nname = \"app\"\nendpoints = [\"{up}\"]\n"),
        )
        .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
        cmd.args(["proxy", "--config"]).arg(&cfg);
        let p = common::spawn(&mut cmd);
        let line = common::wait_line(&p.stderr, "\"listening\"", 20);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let url = format!("http://{}/debug/ip", v["addr"].as_str().unwrap());
        let out = doctor(&["--probe", &url, "--expect-client", "127.0.0.1", "--format", "json"], None);
        let rules = rules_of(&out);
        assert_eq!(
            rules.contains(&"probe-forged-header-believed".to_owned()),
            believed,
            "trusted = {trusted}: {rules:?}"
        );
        assert_eq!(out.status.code(), Some(i32::from(believed)), "exit 1 exactly when a forgery was believed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `realip doctor --probe … --probe-proxy-protocol` against `addr`, expecting 127.0.0.1.
fn probe_proxy_protocol(addr: std::net::SocketAddr) -> std::process::Output {
    let url = format!("http://{addr}/debug/ip");
    doctor(&["--probe", &url, "--probe-proxy-protocol", "--expect-client", "127.0.0.1", "--format", "json"], None)
}

#[test]
fn probe_with_forged_proxy_header() {
    // The app accepts PROXY headers from loopback: a forged one is believed.
    let (_e, addr) = common::echo(&["--trust", "127.0.0.1", "--proxy-protocol", "optional"]);
    let out = probe_proxy_protocol(addr);
    assert!(rules_of(&out).contains(&"probe-forged-proxy-believed".to_owned()), "{:?}", rules_of(&out));
    // From a sender it does not trust, the PROXY header closes the connection.
    let (_e, addr) = common::echo(&["--trust", "10.0.0.0/8", "--proxy-protocol", "optional"]);
    let out = probe_proxy_protocol(addr);
    assert_eq!((out.status.code(), rules_of(&out)), (Some(0), vec![]));
    // https is refused with a clear message.
    let out = doctor(&["--probe", "https://127.0.0.1:1/"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://"));
}

/// The seed guide's exception: with Cilium (kube-proxy replacement in DSR
/// mode, or Cilium's ingress) the Local advice is not applied blindly.
#[test]
fn cilium_replaces_the_local_advice() {
    let cluster = good().replacen("externalTrafficPolicy: Local", "externalTrafficPolicy: Cluster", 1);
    let out = doctor(&["-", "--format", "json"], Some(&cluster));
    assert!(rules_of(&out).contains(&"ingress-etp-cluster".to_owned()));
    let cilium = format!("{cluster}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cilium-config\n  namespace: kube-system\ndata:\n  kube-proxy-replacement: \"true\"\n  bpf-lb-mode: dsr\n");
    let out = doctor(&["-", "--format", "json"], Some(&cilium));
    let rules = rules_of(&out);
    assert!(
        !rules.contains(&"ingress-etp-cluster".to_owned()) && rules.contains(&"cilium-validate".to_owned()),
        "{rules:?}"
    );
    // SNAT mode loses the source like kube-proxy does: the rule stays.
    let snat = cilium.replace("bpf-lb-mode: dsr", "bpf-lb-mode: snat");
    assert!(rules_of(&doctor(&["-", "--format", "json"], Some(&snat))).contains(&"ingress-etp-cluster".to_owned()));
}

/// A fake Kubernetes API server on loopback speaking the real list JSON,
/// so `--live` runs the unmodified kube-rs client path. Returns its
/// address and the request lines it saw.
fn fake_api_server(
    lists: std::collections::HashMap<&'static str, serde_json::Value>,
) -> (std::net::SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in l.incoming().take(32) {
            let Ok(stream) = stream else { continue };
            let (lists, log) = (lists.clone(), std::sync::Arc::clone(&log));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut auth = String::new();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        if h.to_ascii_lowercase().starts_with("authorization:") {
                            h.trim().clone_into(&mut auth);
                        }
                    }
                    let path = line.split(' ').nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_owned();
                    log.lock().unwrap().push(format!("{path} {auth}"));
                    let (status, body) = match lists.get(path.as_str()) {
                        Some(items) => ("200 OK", serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}).to_string()),
                        None => ("404 Not Found", serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}).to_string()),
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if out.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[test]
fn live_cluster_through_kube_rs_against_a_fake_api_server() {
    use serde_json::json;
    let node = |name: &str| json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let pod = |name: &str, node: &str| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ingress-nginx", "labels": {"app.kubernetes.io/name": "ingress-nginx"}}, "spec": {"nodeName": node}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
    let mut lists = std::collections::HashMap::new();
    lists.insert("/api/v1/services", json!([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx", "labels": {"app.kubernetes.io/name": "ingress-nginx"}}, "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}}]));
    lists.insert("/api/v1/configmaps", json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"}, "data": {"use-forwarded-headers": "true"}}]));
    lists.insert("/api/v1/nodes", json!([node("node-a"), node("node-b"), node("node-c")]));
    lists.insert("/api/v1/pods", json!([pod("i1", "node-a"), pod("i2", "node-a"), pod("i3", "node-b")]));
    for empty in [
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/daemonsets",
        "/apis/discovery.k8s.io/v1/endpointslices",
        "/apis/networking.k8s.io/v1/ingressclasses",
        "/apis/networking.k8s.io/v1/ingresses",
        "/apis/networking.k8s.io/v1/networkpolicies",
        "/apis/policy/v1/poddisruptionbudgets",
    ] {
        lists.insert(empty, json!([]));
    }
    let (addr, seen) = fake_api_server(lists);
    let dir = std::env::temp_dir().join(format!("realip-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{token: fake-token}}\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_realip"))
        .args(["doctor", "--live", "--format", "json"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let rules = rules_of(&out);
    for want in [
        "local-no-healthcheck-port",
        "ingress-node-without-pod",
        "ingress-uneven-spread",
        "forwarded-headers-from-everyone",
    ] {
        assert!(rules.contains(&want.to_owned()), "missing {want} in {rules:?}");
    }
    let f = findings(&out);
    let spread = f.iter().find(|f| f["rule"] == "ingress-uneven-spread").unwrap();
    assert!(spread["message"].as_str().unwrap().contains("between 25% and 50%"), "{spread}");
    let skew = f.iter().find(|f| f["rule"] == "ingress-node-without-pod").unwrap();
    assert!(skew["message"].as_str().unwrap().contains("node-c"), "{skew}");
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests.iter().any(|r| r.starts_with("/api/v1/services ") && r.contains("Bearer fake-token")),
        "{requests:?}"
    );
}

#[test]
fn network_policy_probe_ports_and_health_check_annotations() {
    // `*` behind a NetworkPolicy that admits only the ingress: allowed.
    let star = good().replace("--forwarded-allow-ips=10.0.0.0/8,127.0.0.1", "--forwarded-allow-ips=*");
    assert!(rules_of(&doctor(&["-", "--format", "json"], Some(&star))).contains(&"app-trusts-every-proxy".to_owned()));
    let policy = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: only-ingress, namespace: app}\nspec:\n  podSelector: {matchLabels: {app: fastapi}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}\n      podSelector: {matchLabels: {app.kubernetes.io/name: ingress-nginx}}\n";
    let fenced = format!("{star}{policy}");
    assert!(
        !rules_of(&doctor(&["-", "--format", "json"], Some(&fenced))).contains(&"app-trusts-every-proxy".to_owned())
    );

    // A kubelet probe on a realip listener that requires PROXY.
    let realip = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: realip, namespace: ingress}\ndata:\n  realip.toml: |\n    [[listener]]\n    name = \"web\"\n    bind = \"0.0.0.0:8080\"\n    proxy_protocol = \"required\"\n    proxy_protocol_from = [\"10.0.0.0/8\"]\n    [admin]\n    bind = \"0.0.0.0:9901\"\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: realip, namespace: ingress}\nspec:\n  template:\n    spec:\n      containers:\n      - name: proxy\n        readinessProbe:\n          httpGet: {path: /readyz, port: 8080}\n";
    let out = doctor(&["-", "--format", "json"], Some(realip));
    assert!(rules_of(&out).contains(&"probe-on-proxy-port".to_owned()), "{:?}", rules_of(&out));
    let fixed = realip.replace("port: 8080}", "port: 9901}");
    assert!(!rules_of(&doctor(&["-", "--format", "json"], Some(&fixed))).contains(&"probe-on-proxy-port".to_owned()));

    // DigitalOcean health check pinned to a port while Local is on.
    let pinned = good().replace(
        "  labels:\n    app.kubernetes.io/name: ingress-nginx\n    app.kubernetes.io/component: controller\n",
        "  labels:\n    app.kubernetes.io/name: ingress-nginx\n    app.kubernetes.io/component: controller\n  annotations:\n    service.beta.kubernetes.io/do-loadbalancer-healthcheck-port: \"80\"\n",
    );
    assert!(rules_of(&doctor(&["-", "--format", "json", "--fail-on", "warning"], Some(&pinned)))
        .contains(&"healthcheck-traffic-port".to_owned()));
}

#[test]
fn chart_defaults_lose_the_client_ip() {
    let out =
        doctor(&["--helm-values", fixture("chart-defaults-values.yaml").to_str().unwrap(), "--format", "json"], None);
    assert_eq!(out.status.code(), Some(1));
    let f = findings(&out);
    let etp = f.iter().find(|f| f["rule"] == "ingress-etp-cluster").expect("ETP finding");
    assert!(etp["message"].as_str().unwrap().contains("Cluster"), "{etp}");
    assert!(f.iter().any(|f| f["rule"] == "ingress-single-replica"));
}

#[test]
fn uvicorn_without_trust_and_realip_proxy_protocol_mismatch() {
    let plain = good().replace(", \"--proxy-headers\", \"--forwarded-allow-ips=10.0.0.0/8,127.0.0.1\"", "");
    assert!(rules_of(&doctor(&["-", "--format", "json", "--fail-on", "warning"], Some(&plain)))
        .contains(&"app-ignores-forwarded-headers".to_owned()));
    // A realip ingress requiring PROXY behind a load balancer that does not send it.
    let svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: realip\n  namespace: ingress\n  labels: {app.kubernetes.io/name: realip}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n";
    let cfg = |mode: &str| {
        format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: realip, namespace: ingress}}\ndata:\n  realip.toml: |\n    [[listener]]\n    name = \"web\"\n    bind = \"0.0.0.0:8080\"\n    proxy_protocol = \"{mode}\"\n    proxy_protocol_from = [\"10.0.0.0/8\"]\n")
    };
    let mismatch = |text: &str| {
        rules_of(&doctor(&["-", "--format", "json"], Some(text))).contains(&"proxy-protocol-mismatch".to_owned())
    };
    assert!(mismatch(&format!("{svc}{}", cfg("required"))));
    assert!(!mismatch(&format!("{svc}{}", cfg("optional"))), "optional accepts plain connections");
    let with_pp = svc.replace("  labels: {app.kubernetes.io/name: realip}\n", "  labels: {app.kubernetes.io/name: realip}\n  annotations: {service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: \"*\"}\n");
    assert!(mismatch(&format!("{with_pp}{}", cfg("off"))), "the LB sends PROXY, realip does not read it");
    assert!(!mismatch(&format!("{with_pp}{}", cfg("required"))));
}

/// An ingress without the usual labels is still found through its
/// IngressClass: the controller class it runs with, and the Service that
/// selects its pods.
#[test]
fn ingress_found_through_its_ingress_class() {
    let text = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: edge}\nspec: {controller: example.com/edge}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: edge, namespace: edge}\nspec:\n  replicas: 3\n  template:\n    metadata: {labels: {app: edge}}\n    spec:\n      containers:\n      - name: c\n        args: [\"--controller-class=example.com/edge\"]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: edge, namespace: edge}\nspec:\n  type: LoadBalancer\n  selector: {app: edge}\n";
    let rules = rules_of(&doctor(&["-", "--format", "json", "--fail-on", "warning"], Some(text)));
    assert!(
        rules.contains(&"ingress-etp-cluster".to_owned()) && rules.contains(&"ingress-no-spread".to_owned()),
        "{rules:?}"
    );
    let other = text.replace("--controller-class=example.com/edge", "--controller-class=example.com/other");
    assert!(!rules_of(&doctor(&["-", "--format", "json"], Some(&other))).contains(&"ingress-etp-cluster".to_owned()));
}

#[test]
fn scaleway_auto_health_check_is_fine_a_pinned_port_is_not() {
    let with = |value: &str| {
        good().replace(
            "  labels:\n    app.kubernetes.io/name: ingress-nginx\n    app.kubernetes.io/component: controller\n",
            &format!("  labels:\n    app.kubernetes.io/name: ingress-nginx\n    app.kubernetes.io/component: controller\n  annotations:\n    service.beta.kubernetes.io/scw-loadbalancer-health-check-port: \"{value}\"\n"),
        )
    };
    let flagged = |text: &str| {
        rules_of(&doctor(&["-", "--format", "json", "--fail-on", "warning"], Some(text)))
            .contains(&"healthcheck-traffic-port".to_owned())
    };
    assert!(flagged(&with("30080")));
    assert!(!flagged(&with("auto")));
}

/// `--live` lists the Gateway API and controller CRDs the cluster serves;
/// the ones it does not serve (404) are not errors.
#[test]
fn live_cluster_lists_the_crds_it_has() {
    use serde_json::json;
    let mut lists = std::collections::HashMap::new();
    for path in [
        "/api/v1/services",
        "/api/v1/configmaps",
        "/api/v1/pods",
        "/api/v1/nodes",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/daemonsets",
        "/apis/discovery.k8s.io/v1/endpointslices",
        "/apis/networking.k8s.io/v1/ingressclasses",
        "/apis/networking.k8s.io/v1/ingresses",
        "/apis/networking.k8s.io/v1/networkpolicies",
        "/apis/policy/v1/poddisruptionbudgets",
    ] {
        lists.insert(path, json!([]));
    }
    // NGF is installed (Gateway API and NginxProxy CRDs); Envoy Gateway, Traefik and HPAs answer 404.
    lists.insert("/apis/gateway.networking.k8s.io/v1/gatewayclasses", json!([{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "nginx"}, "spec": {"controllerName": "gateway.nginx.org/nginx-gateway-controller", "parametersRef": {"group": "gateway.nginx.org", "kind": "NginxProxy", "name": "proxy", "namespace": "nginx-gateway"}}}]));
    lists.insert("/apis/gateway.networking.k8s.io/v1/gateways", json!([{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "cafe", "namespace": "default"}, "spec": {"gatewayClassName": "nginx", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}]));
    lists.insert("/apis/gateway.nginx.org/v1alpha2/nginxproxies", json!([{"apiVersion": "gateway.nginx.org/v1alpha2", "kind": "NginxProxy", "metadata": {"name": "proxy", "namespace": "nginx-gateway"}, "spec": {"rewriteClientIP": {"mode": "XForwardedFor", "trustedAddresses": [{"type": "CIDR", "value": "0.0.0.0/0"}]}}}]));
    let (addr, seen) = fake_api_server(lists);
    let dir = std::env::temp_dir().join(format!("realip-live-crds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{token: fake-token}}\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_realip"))
        .args(["doctor", "--live", "--format", "json"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let f = findings(&out);
    assert!(
        f.iter()
            .any(|f| f["rule"] == "forwarded-headers-from-everyone" && f["object"] == "NginxProxy/nginx-gateway/proxy"),
        "{f:?}"
    );
    let requests = seen.lock().unwrap().clone();
    for path in [
        "/apis/gateway.envoyproxy.io/v1alpha1/clienttrafficpolicies ",
        "/apis/traefik.io/v1alpha1/middlewares ",
        "/apis/gateway.nginx.org/v1alpha2/nginxproxies ",
    ] {
        assert!(requests.iter().any(|r| r.starts_with(path)), "{path} not asked: {requests:?}");
    }
}
