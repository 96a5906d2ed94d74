//! Gateway API mode in the chart and in `realip manifests --gateway`:
//! - the same objects from both (`helm template --include-crds --set
//!   gateway.enabled=true`), so the chart stays the one source of truth;
//! - realip's CRDs (`deploy/helm/realip/crds/`) and the documented example
//!   objects (`docs/examples/gateway/`) checked against the CRDs' schemas
//!   (`openAPIV3Schema` as JSON Schema draft 4, with the `jsonschema`
//!   Python package of the kubernetes-validate venv), and the Gateway API
//!   objects of the examples against the upstream v1.6.1 CRDs
//!   (`../shared/gateway-api/v1.6.1/crd-standard`, read at test time);
//! - the examples translate to an accepted Gateway, route and policies.
//!
//! helm and the venv come from scripts/k8s-tools.sh (skipped with a
//! message when absent, a failure under REALIP_REQUIRE_PEERS=1).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::peer_missing;
use serde::Deserialize as _;
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tool(env: &str, cached: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    let c = root().join("target/tools").join(cached);
    c.exists().then_some(c)
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
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

fn by_key(objs: Vec<Value>) -> BTreeMap<(String, String), Value> {
    objs.into_iter()
        .map(|o| ((o["kind"].as_str().unwrap().to_owned(), o["metadata"]["name"].as_str().unwrap().to_owned()), o))
        .collect()
}

#[test]
fn manifests_gateway_are_the_charts_objects() {
    let Some(helm) = tool("REALIP_HELM", "helm") else {
        peer_missing("helm not found (run scripts/k8s-tools.sh)");
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_realip")).args(["manifests", "--gateway"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    // kubernetes-validate (OpenAPI of Kubernetes 1.33) accepts every built-in
    // object, the CRDs included; it has no schema for GatewayClass (checked
    // against the upstream CRD below instead).
    if let Some(kv) = tool("REALIP_KUBERNETES_VALIDATE", "kv/bin/kubernetes-validate") {
        let dir = common::TempDir::new("gw-manifests");
        let file = dir.0.join("m.yaml");
        std::fs::write(&file, &text).unwrap();
        let v = Command::new(kv).args(["--strict", "--quiet"]).arg(&file).output().unwrap();
        assert!(v.status.success(), "{}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));
    }
    let mine_docs: Vec<Value> = docs(&text);
    let mine = by_key(mine_docs.into_iter().filter(|o| o["kind"] != "Namespace").collect());
    let rendered = Command::new(&helm)
        .args(["template", "realip"])
        .arg(root().join("deploy/helm/realip"))
        .args(["-n", "realip", "--include-crds", "--set", "gateway.enabled=true"])
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    let theirs =
        by_key(docs(&String::from_utf8(rendered.stdout).unwrap()).into_iter().map(without_helm_labels).collect());
    assert_eq!(mine.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>());
    for (k, v) in &theirs {
        assert_eq!(&mine[k], v, "{k:?} differs from helm template");
    }
    for k in [("CustomResourceDefinition", "clientippolicies.realip.dev"), ("GatewayClass", "realip")] {
        assert!(mine.contains_key(&(k.0.to_owned(), k.1.to_owned())), "{k:?}");
    }
    let role = &mine[&("ClusterRole".to_owned(), "realip".to_owned())];
    let rules = role["rules"].to_string();
    // Every kind realip writes status on, including the route kinds it
    // does not serve (they get `NotAllowedByListeners`).
    for r in [
        "httproutes/status",
        "gateways/status",
        "clientippolicies/status",
        "clientaccesspolicies/status",
        "\"grpcroutes\"",
        "grpcroutes/status",
        "\"tlsroutes\"",
        "tlsroutes/status",
        "\"tcproutes\"",
        "tcproutes/status",
        "\"udproutes\"",
        "udproutes/status",
    ] {
        assert!(rules.contains(r), "{r} missing from {rules}");
    }
    let args = mine[&("Deployment".to_owned(), "realip".to_owned())]["spec"]["template"]["spec"]["containers"][0]
        ["args"]
        .to_string();
    assert!(args.contains("\"--gateway-class\",\"realip\""), "{args}");
}

/// Validates `objects` against the schemas of `crds` with Python
/// jsonschema; returns one line per object: `ok KIND NAME` or
/// `invalid KIND NAME: why`.
fn validate(python: &Path, crds: &[PathBuf], objects: &[Value]) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys, yaml, jsonschema
crds, objects = json.load(sys.stdin)
schemas = {}
for path in crds:
    for d in yaml.safe_load_all(open(path)):
        if not d or d.get("kind") != "CustomResourceDefinition":
            continue
        for v in d["spec"]["versions"]:
            schemas[(d["spec"]["group"] + "/" + v["name"], d["spec"]["names"]["kind"])] = v["schema"]["openAPIV3Schema"]
for o in objects:
    key = (o.get("apiVersion"), o.get("kind"))
    name = o.get("kind", "?") + " " + o.get("metadata", {}).get("name", "?")
    if key not in schemas:
        print("noschema " + name)
        continue
    errors = sorted(jsonschema.Draft4Validator(schemas[key]).iter_errors(o), key=lambda e: list(e.path))
    if errors:
        print("invalid " + name + ": " + "; ".join("/".join(map(str, e.path)) + " " + e.message for e in errors))
    else:
        print("ok " + name)
"#;
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!([crds.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(), objects]);
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

fn example_objects() -> Vec<Value> {
    let dir = root().join("docs/examples/gateway");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().flat_map(|f| docs(&std::fs::read_to_string(f).unwrap())).collect()
}

#[test]
fn crds_and_examples_validate_against_the_schemas_and_bad_objects_do_not() {
    // The venv's python: next to REALIP_KUBERNETES_VALIDATE (scripts/test.sh), or the cached one.
    let beside_kv = std::env::var_os("REALIP_KUBERNETES_VALIDATE")
        .map(|k| PathBuf::from(k).with_file_name("python"))
        .filter(|p| p.exists());
    let Some(python) = beside_kv.or_else(|| tool("REALIP_KV_PYTHON", "kv/bin/python")) else {
        peer_missing("the kubernetes-validate venv (jsonschema) is missing (run scripts/k8s-tools.sh)");
        return;
    };
    let ours: Vec<PathBuf> = ["clientippolicies.realip.dev.yaml", "clientaccesspolicies.realip.dev.yaml"]
        .iter()
        .map(|f| root().join("deploy/helm/realip/crds").join(f))
        .collect();
    let objects = example_objects();
    let realip: Vec<Value> = objects.iter().filter(|o| o["apiVersion"] == "realip.dev/v1alpha1").cloned().collect();
    assert_eq!(realip.len(), 3, "the documented examples");
    let report = validate(&python, &ours, &realip);
    assert!(report.iter().all(|l| l.starts_with("ok ")), "{report:#?}");
    // The validator is not a no-op: each of these breaks the schema.
    let mut bad = Vec::new();
    for (what, patch) in [
        ("unknown source", json!({"sources": ["Cookie"]})),
        ("bad mode", json!({"proxyProtocol": {"mode": "Sometimes", "trustedSenders": ["10.0.0.0/8"]}})),
        ("strategy", json!({"strategy": {"trustedHops": -1}})),
        ("header name", json!({"sources": [{"header": "bad name"}]})),
        ("header with its own source", json!({"sources": [{"header": "x-FORWARDED-for"}]})),
        ("header that routes", json!({"sources": [{"header": "Host"}]})),
        ("strip a framing header", json!({"forward": {"stripUntrusted": ["Transfer-Encoding"]}})),
        ("strip a pseudo-header", json!({"forward": {"stripUntrusted": [":authority"]}})),
        ("source twice", json!({"sources": ["XForwardedFor", "XForwardedFor"]})),
        ("too many hops", json!({"strategy": {"trustedHops": 65}})),
        (
            "target kind",
            json!({"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Service", "name": "x"}]}),
        ),
    ] {
        let mut o = realip[0].clone();
        for (k, v) in patch.as_object().unwrap() {
            o["spec"][k] = v.clone();
        }
        o["metadata"]["name"] = json!(what);
        bad.push(o);
    }
    let mut rate = realip[1].clone();
    rate["spec"]["rateLimit"]["perSecond"] = json!(0);
    rate["metadata"]["name"] = json!("zero rate");
    bad.push(rate);
    let mut empty = realip[1].clone();
    empty["spec"]["allow"] = json!([]);
    empty["metadata"]["name"] = json!("empty allow");
    bad.push(empty);
    // Each is refused by the schema, or — for what only CEL rules express
    // (header names, hop range), which no evaluator here runs — by the
    // controller's own validation (`Accepted: False, Invalid`).
    let report = validate(&python, &ours, &bad);
    assert_eq!(report.len(), bad.len());
    let mut o = realip_kube::gateway::objects::Objects::default();
    for b in &bad {
        if let Err(e) = o.add(b.clone()) {
            println!("refused by the types: {e}");
        }
    }
    let t = realip_kube::gateway::translate::translate(&o.inputs("realip", &[]));
    for (line, b) in report.iter().zip(&bad) {
        let name = b["metadata"]["name"].as_str().unwrap();
        let by_controller = t.statuses.iter().any(|s| {
            s.key.name == name
                && matches!(&s.status, realip_kube::gateway::status::Status::Policy { ancestors, .. }
                    if ancestors.iter().all(|a| !a.conditions[0].status))
        }) || !t.statuses.iter().any(|s| s.key.name == name);
        assert!(line.starts_with("invalid ") || by_controller, "{name} passed both layers: {line}");
    }
    assert!(report.iter().filter(|l| l.starts_with("invalid ")).count() >= 4, "{report:#?}");
    // Gateway API objects of the examples against the upstream CRDs.
    let upstream = root().join("../shared/gateway-api/v1.6.1/crd-standard");
    if upstream.is_dir() {
        let crds: Vec<PathBuf> =
            ["gateways.yaml", "httproutes.yaml", "gatewayclasses.yaml"].iter().map(|f| upstream.join(f)).collect();
        let mut gw: Vec<Value> =
            objects.iter().filter(|o| o["apiVersion"] == "gateway.networking.k8s.io/v1").cloned().collect();
        gw.push(
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "realip"},
            "spec": {"controllerName": "realip.dev/gateway-controller"}}),
        );
        let report = validate(&python, &crds, &gw);
        assert!(report.len() == 3 && report.iter().all(|l| l.starts_with("ok ")), "{report:#?}");
    } else {
        println!("skipped the upstream schema check: ../shared/gateway-api/v1.6.1 is absent");
    }
}

#[test]
fn documented_examples_are_accepted() {
    use realip_kube::gateway::objects::Objects;
    use realip_kube::gateway::status::Status;
    let mut o = Objects::default();
    for v in example_objects() {
        o.add(v).unwrap();
    }
    o.add_yaml(
        &"apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: realip}\nspec: {controllerName: realip.dev/gateway-controller}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {name: app-tls, namespace: web}\ntype: kubernetes.io/tls\ndata: {tls.crt: CRT_B64, tls.key: KEY_B64}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: web}\nspec: {ports: [{port: 80}]}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: app-canary, namespace: web}\nspec: {ports: [{port: 80}]}\n"
            .replace("CRT_B64", realip_kube::tls::testdata::CRT_B64)
            .replace("KEY_B64", realip_kube::tls::testdata::KEY_B64),
    )
    .unwrap();
    let t = realip_kube::gateway::translate::translate(&o.inputs("realip", &["203.0.113.200".to_owned()]));
    assert!(t.problems().is_empty(), "{:#?}", t.problems());
    let policies = t.statuses.iter().filter(|s| matches!(s.status, Status::Policy { .. })).count();
    assert_eq!(policies, 3);
    let ip = t.routes.listeners[0].client_ip.as_ref().unwrap();
    assert_eq!(ip.sources, ["proxy-protocol", "header:CF-Connecting-IP", "xff"]);
    realip_core::Sources::parse(&ip.sources).unwrap();
    let admin = t.routes.routes.iter().find(|r| r.name == "httproute/web/app/admin/0").unwrap();
    assert_eq!(admin.access.as_ref().unwrap().policy, "web/admin-office-only");
    let rest = t.routes.routes.iter().find(|r| r.name == "httproute/web/app/1/0").unwrap();
    assert_eq!(rest.access.as_ref().unwrap().policy, "web/edge-rate");
}
