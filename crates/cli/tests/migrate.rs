//! `realip migrate ingress-nginx` end to end: files, stdin and `--live`
//! (kube-rs against the in-process fake API server), `--out` one file per
//! object, `--report` / `--format json`, byte-identical reruns, and the
//! exit codes 0 (all converted), 1 (something not converted, output still
//! written) and 2 (usage or input error).

mod common;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use common::TempDir;
use realip_lab::fakeapi::FakeApi;
use serde_json::{json, Value};

const SETUP: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
spec:
  template:
    metadata: {labels: {app: ingress-nginx}}
    spec:
      containers:
      - name: controller
        args: [/nginx-ingress-controller, --configmap=$(POD_NAMESPACE)/ingress-nginx-controller, --ingress-class=nginx]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
data:
  use-forwarded-headers: \"true\"
  proxy-real-ip-cidr: 10.0.0.0/8
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: site
  namespace: web
  annotations:
    nginx.ingress.kubernetes.io/whitelist-source-range: 203.0.113.0/24
    nginx.ingress.kubernetes.io/limit-rps: \"10\"
spec:
  ingressClassName: nginx
  rules:
  - host: app.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}
";

fn realip(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_realip"));
    c.arg("migrate")
        .arg("ingress-nginx")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    // A usage error exits before reading stdin: a broken pipe is fine.
    if let Err(e) = input.write_all(stdin.unwrap_or_default().as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing stdin: {e}");
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn docs(yaml: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn stdin_to_stdout_all_converted_exit_0_and_identical_reruns() {
    let out = realip(&["-"], Some(SETUP));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let objects = docs(&text(&out.stdout));
    let kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Gateway", "HTTPRoute", "ClientIPPolicy", "ClientAccessPolicy"]);
    assert_eq!(objects[2]["spec"]["trustedProxies"], json!(["10.0.0.0/8"]));
    assert_eq!(objects[3]["spec"]["allow"], json!(["203.0.113.0/24"]));
    // The report goes to stderr when the objects use stdout.
    let report = text(&out.stderr);
    assert!(
        report.contains("whitelist-source-range: 203.0.113.0/24") && report.contains("0 not converted"),
        "{report}"
    );
    let again = realip(&["-"], Some(SETUP));
    assert_eq!(out.stdout, again.stdout, "deterministic output");
}

#[test]
fn out_dir_report_file_json_and_exit_1_when_something_does_not_convert() {
    let dir = TempDir::new("migrate-out");
    let input = dir.0.join("in.yaml");
    let extra = SETUP.replace(
        "    nginx.ingress.kubernetes.io/limit-rps: \"10\"\n",
        "    nginx.ingress.kubernetes.io/limit-rps: \"10\"\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      more_set_headers \"X-A: b\";\n",
    );
    // The controller's version is not in SETUP: with the risk level written out the snippet cannot drop the Ingress.
    let extra = extra.replace(
        "  proxy-real-ip-cidr: 10.0.0.0/8\n",
        "  proxy-real-ip-cidr: 10.0.0.0/8\n  annotations-risk-level: Critical\n",
    );
    std::fs::write(&input, &extra).unwrap();
    let out_dir = dir.0.join("gateway");
    let report = dir.0.join("report.json");
    let args = [
        input.to_str().unwrap(),
        "--to",
        "envoy-gateway",
        "--out",
        out_dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--format",
        "json",
    ];
    let out = realip(&args, None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // --format json: nothing plain anywhere; the report file says what did not convert.
    assert!(out.stderr.is_empty() && out.stdout.is_empty(), "{}{}", text(&out.stdout), text(&out.stderr));
    let mut files: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(
        files,
        [
            ".realip-migrate",
            "backendtrafficpolicy_web_site.yaml",
            "clienttrafficpolicy_ingress-nginx_ingress-nginx-client-ip.yaml",
            "gateway_ingress-nginx_ingress-nginx.yaml",
            "httproute_web_site.yaml",
            "securitypolicy_web_site.yaml",
        ]
    );
    let gw = docs(&std::fs::read_to_string(out_dir.join("gateway_ingress-nginx_ingress-nginx.yaml")).unwrap());
    assert_eq!(gw[0]["spec"]["gatewayClassName"], "eg");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["complete"], false);
    let snippet = r["entries"].as_array().unwrap().iter().find(|e| e["key"] == "configuration-snippet").unwrap();
    assert_eq!((snippet["status"].as_str(), snippet["line"].as_u64()), (Some("not-converted"), Some(29)), "{snippet}"); // the snippet's first line
    assert_eq!(snippet["object"], "Ingress/web/site");
    assert!(snippet["file"].as_str().unwrap().ends_with("in.yaml"));
    // With --out and no --report, the report is printed on stdout.
    let out = realip(&[input.to_str().unwrap(), "--out", out_dir.to_str().unwrap()], None);
    assert!(text(&out.stdout).contains("not-converted line 29: configuration-snippet"), "{}", text(&out.stdout));
}

#[test]
fn usage_and_input_errors_exit_2() {
    let dir = TempDir::new("migrate-usage");
    let bad = dir.0.join("bad.yaml");
    std::fs::write(&bad, "kind: [unclosed\n").unwrap();
    let table: [(&[&str], &str); 5] = [
        (&[], "nothing to migrate"),
        (&[bad.to_str().unwrap()], "invalid YAML"),
        (&["-", "--gateway", "no-slash"], "--gateway `no-slash`: expected NAMESPACE/NAME"),
        (&["-", "--trust", "10.0.0.0/99"], "--trust `10.0.0.0/99` is not a CIDR"),
        (&["-", "--to", "traefik"], "invalid value 'traefik'"),
    ];
    for (args, want) in table {
        let out = realip(args, Some(SETUP));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(want), "{args:?}: {}", text(&out.stderr));
    }
    let two = format!(
        "{SETUP}---\n{}",
        SETUP.split("---").next().unwrap().replace("name: ingress-nginx-controller,", "name: second,")
    );
    let out = realip(&["-"], Some(&two));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("several ingress-nginx controllers"), "{}", text(&out.stderr));
}

#[test]
fn live_reads_the_cluster_read_only_through_kube_rs() {
    let api = FakeApi::start().unwrap();
    for o in docs(SETUP) {
        api.apply(o);
    }
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}));
    let dir = TempDir::new("migrate-live");
    let mut c = Command::new(env!("CARGO_BIN_EXE_realip"));
    c.args(["migrate", "ingress-nginx", "--live", "--trust", "10.1.0.0/16", "--format", "json"])
        .env("KUBECONFIG", api.kubeconfig(&dir.0).unwrap())
        .env_remove("KUBERNETES_SERVICE_HOST");
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // --format json without --out: the objects as one v1 List, the report as JSON on stderr.
    let list: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(list["kind"], "List");
    let objects = list["items"].as_array().unwrap().clone();
    let policy = objects.iter().find(|o| o["kind"] == "ClientIPPolicy").unwrap();
    assert_eq!(policy["spec"]["trustedProxies"], json!(["10.1.0.0/16"]));
    assert!(objects.iter().any(|o| o["kind"] == "ClientAccessPolicy" && o["metadata"]["namespace"] == "web"));
    let report: Value = serde_json::from_str(&text(&out.stderr)).unwrap();
    let cidr = report["entries"].as_array().unwrap().iter().find(|e| e["key"] == "proxy-real-ip-cidr").unwrap();
    assert_eq!((cidr["status"].as_str(), cidr["file"].as_str()), (Some("changed"), Some("cluster")));
    assert!(api.patches().is_empty(), "read-only: nothing written to the cluster");
}

/// Review 29 M4: a ConfigMap key written twice is migrated with its last
/// value and reported as a warning with its line, never silently.
#[test]
fn a_key_written_twice_is_a_warning() {
    let doubled = SETUP.replace(
        "  use-forwarded-headers: \"true\"\n",
        "  use-forwarded-headers: \"false\"\n  use-forwarded-headers: \"true\"\n",
    );
    let out = realip(&["-", "--format", "json"], Some(&doubled));
    let report: Value = serde_json::from_slice(&out.stderr).unwrap();
    let warned: Vec<&Value> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["key"] == "use-forwarded-headers" && e["status"] == "warning")
        .collect();
    assert_eq!(warned.len(), 1, "{report:#}");
    assert!(warned[0]["why"].as_str().unwrap().contains("written twice"), "{report:#}");
    assert_eq!(warned[0]["object"], "ConfigMap/ingress-nginx/ingress-nginx-controller");
}
