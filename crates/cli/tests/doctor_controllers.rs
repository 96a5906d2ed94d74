//! `realip doctor` on the controllers users migrate to: Traefik, Envoy
//! Gateway, NGINX Gateway Fabric, Istio gateways, Cilium Gateway. The
//! fixtures (`tests/fixtures/doctor/*.yaml`, written here, modelled on each
//! project's documented examples) are first validated against the
//! projects' published CRD schemas (`../shared/crds/`) and the Gateway API
//! v1.6.1 CRDs (`../shared/gateway-api/v1.6.1/`), so the doctor is tested
//! on objects those controllers would accept; then each broken setting is
//! caught at its line, with the fix in the controller's own terms, and the
//! fixed setting is not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/doctor").join(name)
}

const FIXTURES: &[&str] = &[
    "traefik-crd.yaml",
    "envoy-gateway.yaml",
    "nginx-gateway-fabric.yaml",
    "istio-gateway.yaml",
    "cilium-gateway.yaml",
];

fn doctor(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
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

fn findings(out: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    v["findings"].as_array().unwrap().clone()
}

fn found(out: &Output) -> Vec<(String, String, String, u64)> {
    let mut v: Vec<_> = findings(out)
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["object"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

// ---- a structural OpenAPI v3 validator (what the API server checks before CEL) ----

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if dir.join("crds").is_dir() && dir.join("gateway-api/v1.6.1/crd-standard").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("REALIP_REQUIRE_PEERS").as_deref() != Ok("1"),
        "REALIP_REQUIRE_PEERS=1 but the CRDs are missing under {}",
        dir.display()
    );
    eprintln!("skipping schema validation: no CRDs under {} (a clone without ../shared)", dir.display());
    None
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// `(apiVersion, kind)` → `openAPIV3Schema`, from every CRD file under `dirs`.
fn schemas(dirs: &[PathBuf]) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for d in dirs {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            for crd in yaml_docs(&std::fs::read_to_string(&p).unwrap()) {
                if crd["kind"] != "CustomResourceDefinition" {
                    continue;
                }
                let group = crd["spec"]["group"].as_str().unwrap().to_owned();
                let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
                for v in crd["spec"]["versions"].as_array().unwrap() {
                    if v["served"] == true {
                        let api = format!("{group}/{}", v["name"].as_str().unwrap());
                        out.push((api, kind.clone(), v["schema"]["openAPIV3Schema"].clone()));
                    }
                }
            }
        }
    }
    out
}

fn passes(schema: &Value, v: &Value, path: &str) -> bool {
    let mut e = Vec::new();
    validate(schema, v, path, &mut e);
    e.is_empty()
}

fn validate(schema: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    if v.is_null() && schema["nullable"] == true {
        return;
    }
    for s in schema["allOf"].as_array().into_iter().flatten() {
        validate(s, v, path, errs);
    }
    if let Some(any) = schema["anyOf"].as_array() {
        if !any.iter().any(|s| passes(s, v, path)) {
            errs.push(format!("{path}: matches none of anyOf"));
        }
    }
    if let Some(one) = schema["oneOf"].as_array() {
        if one.iter().filter(|s| passes(s, v, path)).count() != 1 {
            errs.push(format!("{path}: does not match exactly one of oneOf"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            errs.push(format!("{path}: {v} not in {allowed:?}"));
        }
    }
    if let (Some(obj), Some(req)) = (v.as_object(), schema["required"].as_array()) {
        for r in req {
            if !obj.contains_key(r.as_str().unwrap()) {
                errs.push(format!("{path}: missing required `{}`", r.as_str().unwrap()));
            }
        }
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(v.is_i64() || v.is_u64() || v.is_string()) {
            errs.push(format!("{path}: {v} is neither integer nor string"));
        }
        return;
    }
    match schema["type"].as_str() {
        Some("object") => {
            let Some(obj) = v.as_object() else {
                errs.push(format!("{path}: {v} is not an object"));
                return;
            };
            let props = schema["properties"].as_object();
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
            for (k, val) in obj {
                let p = format!("{path}.{k}");
                match (props.and_then(|m| m.get(k)), &schema["additionalProperties"]) {
                    (Some(s), _) => validate(s, val, &p, errs),
                    (None, Value::Object(_)) => validate(&schema["additionalProperties"], val, &p, errs),
                    (None, Value::Bool(true)) => {}
                    (None, _) if preserve || props.is_none() => {}
                    (None, _) => errs.push(format!("{p}: unknown field")),
                }
            }
        }
        Some("array") => {
            let Some(items) = v.as_array() else {
                errs.push(format!("{path}: {v} is not an array"));
                return;
            };
            if schema["minItems"].as_u64().is_some_and(|m| (items.len() as u64) < m) {
                errs.push(format!("{path}: fewer than minItems"));
            }
            if schema["maxItems"].as_u64().is_some_and(|m| (items.len() as u64) > m) {
                errs.push(format!("{path}: more than maxItems"));
            }
            for (i, it) in items.iter().enumerate() {
                validate(&schema["items"], it, &format!("{path}[{i}]"), errs);
            }
        }
        Some("string") => {
            let Some(s) = v.as_str() else {
                errs.push(format!("{path}: {v} is not a string"));
                return;
            };
            let n = s.chars().count() as u64;
            if schema["maxLength"].as_u64().is_some_and(|m| n > m)
                || schema["minLength"].as_u64().is_some_and(|m| n < m)
            {
                errs.push(format!("{path}: length out of bounds"));
            }
        }
        Some("integer") => {
            let Some(n) = v.as_i64() else {
                errs.push(format!("{path}: {v} is not an integer"));
                return;
            };
            if schema["minimum"].as_i64().is_some_and(|m| n < m) || schema["maximum"].as_i64().is_some_and(|m| n > m) {
                errs.push(format!("{path}: {n} out of bounds"));
            }
        }
        Some("boolean") if !v.is_boolean() => errs.push(format!("{path}: {v} is not a boolean")),
        Some("number") if !v.is_number() => errs.push(format!("{path}: {v} is not a number")),
        _ => {}
    }
}

#[test]
fn the_validator_rejects_what_the_api_server_rejects() {
    let Some(shared) = shared() else { return };
    let s = schemas(&[shared.join("crds/nginx-gateway-fabric")]);
    let (_, _, np) = s.iter().find(|(_, k, _)| k == "NginxProxy").unwrap();
    let ok = serde_json::json!({"apiVersion": "gateway.nginx.org/v1alpha2", "kind": "NginxProxy", "metadata": {"name": "x"}, "spec": {"rewriteClientIP": {"mode": "XForwardedFor"}}});
    assert!(passes(np, &ok, "$"));
    for bad in [
        serde_json::json!({"spec": {"rewriteClientIP": {"mode": "Header"}}}),
        serde_json::json!({"spec": {"rewriteClientIP": {"mood": "XForwardedFor"}}}),
        serde_json::json!({"spec": {"rewriteClientIP": {"setIPRecursively": "yes"}}}),
        serde_json::json!({"spec": {"rewriteClientIP": {"trustedAddresses": [{"type": "CIDR"}]}}}),
    ] {
        assert!(!passes(np, &bad, "$"), "{bad}");
    }
}

/// Every custom-resource and Gateway API object of the fixtures matches
/// its project's published schema.
#[test]
fn fixtures_match_the_published_crd_schemas() {
    let Some(shared) = shared() else { return };
    let mut dirs = vec![shared.join("gateway-api/v1.6.1/crd-standard")];
    for d in std::fs::read_dir(shared.join("crds")).unwrap() {
        let p = d.unwrap().path();
        if p.is_dir() {
            dirs.push(p);
        }
    }
    let schemas = schemas(&dirs);
    let core = ["v1", "apps/v1", "policy/v1", "networking.k8s.io/v1"];
    let mut checked = 0;
    for f in FIXTURES {
        for doc in yaml_docs(&std::fs::read_to_string(fixture(f)).unwrap()) {
            let api = doc["apiVersion"].as_str().unwrap();
            let kind = doc["kind"].as_str().unwrap();
            if core.contains(&api) {
                continue;
            }
            let (_, _, schema) = schemas
                .iter()
                .find(|(a, k, _)| a == api && k == kind)
                .unwrap_or_else(|| panic!("{f}: no published schema for {api} {kind}"));
            let mut errs = Vec::new();
            validate(schema, &doc, &format!("{f}:{kind}/{}", doc["metadata"]["name"]), &mut errs);
            assert!(errs.is_empty(), "{errs:?}");
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} objects validated");
}

/// (fixture, expected findings, edits that fix them, rules that must then be gone)
type Case =
    (&'static str, &'static [(&'static str, &'static str, &'static str, u64)], &'static [(&'static str, &'static str)]);

const CASES: &[Case] = &[
    (
        "traefik-crd.yaml",
        &[
            ("hops-mismatch", "Middleware/apps/office-only", "warning", 91),
            ("proxy-protocol-from-everyone", "Deployment/traefik/traefik", "error", 63),
        ],
        &[
            ("--entryPoints.websecure.proxyProtocol.insecure", "--entryPoints.websecure.proxyProtocol.trustedIPs=10.0.0.0/8"),
            ("    ipStrategy:\n      depth: 2\n", ""),
        ],
    ),
    (
        "envoy-gateway.yaml",
        &[
            ("client-policy-without-client-ip", "SecurityPolicy/default/authorization-client-ip", "error", 89),
            ("custom-header-fail-open", "ClientTrafficPolicy/default/cdn-client-ip", "warning", 103),
            ("ingress-etp-cluster", "EnvoyProxy/envoy-gateway-system/custom-proxy-config", "error", 30),
        ],
        &[
            ("externalTrafficPolicy: Cluster", "externalTrafficPolicy: Local"),
            ("      name: X-Client-IP\n", "      name: X-Client-IP\n      failClosed: true\n"),
        ],
    ),
    (
        "nginx-gateway-fabric.yaml",
        &[
            ("forwarded-headers-from-everyone", "NginxProxy/nginx-gateway/ngf-proxy-config", "error", 29),
            ("hairpin-proxy-protocol", "Gateway/default/cafe", "warning", 45),
            ("proxy-protocol-mismatch", "Gateway/default/cafe", "error", 45),
        ],
        &[
            ("mode: XForwardedFor", "mode: ProxyProtocol"),
            ("value: 0.0.0.0/0", "value: 10.0.0.0/8"),
            (
                "      service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol: \"true\"\n",
                "      service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol: \"true\"\n      service.beta.kubernetes.io/do-loadbalancer-hostname: www.example.com\n",
            ),
        ],
    ),
    (
        "istio-gateway.yaml",
        &[
            ("hops-mismatch", "Deployment/istio-ingress/istio-ingressgateway", "warning", 34),
            ("ingress-single-replica", "Deployment/istio-ingress/istio-ingressgateway", "warning", 27),
        ],
        &[("\"numTrustedProxies\": 2", "\"numTrustedProxies\": 1"), ("replicas: 1", "replicas: 1\n  # scaled by an HPA below")],
    ),
    (
        "cilium-gateway.yaml",
        &[
            ("cilium-validate", "ConfigMap/kube-system/cilium-config", "warning", 14),
            ("hops-mismatch", "ConfigMap/kube-system/cilium-config", "error", 16),
        ],
        &[("gateway-api-xff-num-trusted-hops: \"0\"", "gateway-api-xff-num-trusted-hops: \"1\"")],
    ),
];

#[test]
fn each_controller_is_audited_in_its_own_terms() {
    for (file, want, fixes) in CASES {
        let path = fixture(file);
        let out = doctor(&[path.to_str().unwrap(), "--format", "json"], None);
        let want: Vec<(String, String, String, u64)> =
            want.iter().map(|(r, o, s, l)| ((*r).to_owned(), (*o).to_owned(), (*s).to_owned(), *l)).collect();
        assert_eq!(found(&out), want, "{file}");
        let errors = want.iter().any(|w| w.2 == "error");
        assert_eq!(out.status.code(), Some(i32::from(errors)), "{file}");
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (from, to) in *fixes {
            assert!(text.contains(from), "{file}: `{from}` not in the fixture");
            text = text.replacen(from, to, 1);
        }
        let fixed: Vec<String> =
            found(&doctor(&["-", "--format", "json"], Some(&text))).into_iter().map(|f| f.0).collect();
        for (rule, ..) in want.iter().filter(|w| !(w.0 == "cilium-validate" || w.0 == "ingress-single-replica")) {
            assert!(!fixed.contains(rule), "{file}: {rule} still reported after the fix: {fixed:?}");
        }
    }
}

#[test]
fn fixes_speak_each_controllers_language() {
    let fix_of = |file: &str, rule: &str| {
        let out = doctor(&[fixture(file).to_str().unwrap(), "--format", "json"], None);
        let f = findings(&out);
        f.iter().find(|f| f["rule"] == rule).unwrap_or_else(|| panic!("{file}: no {rule}"))["fix"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(fix_of("traefik-crd.yaml", "proxy-protocol-from-everyone").contains("proxyProtocol.trustedIPs"));
    assert!(fix_of("envoy-gateway.yaml", "ingress-etp-cluster").contains("envoyService.externalTrafficPolicy"));
    assert!(fix_of("envoy-gateway.yaml", "client-policy-without-client-ip").contains("ClientTrafficPolicy"));
    assert!(fix_of("nginx-gateway-fabric.yaml", "forwarded-headers-from-everyone")
        .contains("rewriteClientIP.trustedAddresses"));
    assert!(fix_of("istio-gateway.yaml", "hops-mismatch").contains("numTrustedProxies"));
    assert!(fix_of("cilium-gateway.yaml", "hops-mismatch").contains("gatewayAPI.xffNumTrustedHops"));
}

/// Cilium: DSR over VXLAN is said, not skipped; SNAT mode keeps the Local rule.
#[test]
fn cilium_dsr_needs_native_routing() {
    let text = std::fs::read_to_string(fixture("cilium-gateway.yaml")).unwrap();
    let vxlan = text.replace("routing-mode: native", "routing-mode: tunnel\n  tunnel-protocol: vxlan");
    let rules: Vec<String> =
        found(&doctor(&["-", "--format", "json"], Some(&vxlan))).into_iter().map(|f| f.0).collect();
    assert!(
        rules.contains(&"cilium-dsr-vxlan".to_owned()) && !rules.contains(&"cilium-validate".to_owned()),
        "{rules:?}"
    );
}

/// Envoy Gateway: BackendTrafficPolicy rate limits keyed on the client,
/// with and without client IP detection.
#[test]
fn envoy_gateway_rate_limits_need_client_ip_detection() {
    let text = std::fs::read_to_string(fixture("envoy-gateway.yaml")).unwrap();
    let btp = "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: BackendTrafficPolicy\nmetadata:\n  name: per-client\n  namespace: default\nspec:\n  targetRefs:\n  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    name: backend\n  rateLimit:\n    type: Local\n    local:\n      rules:\n      - clientSelectors:\n        - sourceCIDR:\n            type: Distinct\n            value: 0.0.0.0/0\n        limit:\n          requests: 10\n          unit: Second\n";
    let with = format!("{text}{btp}");
    let f = findings(&doctor(&["-", "--format", "json"], Some(&with)));
    assert!(
        f.iter().any(|f| f["rule"] == "client-policy-without-client-ip"
            && f["object"] == "BackendTrafficPolicy/default/per-client"),
        "{f:?}"
    );
    let ctp = "---\napiVersion: gateway.envoyproxy.io/v1alpha1\nkind: ClientTrafficPolicy\nmetadata:\n  name: xff\n  namespace: default\nspec:\n  targetRefs:\n  - group: gateway.networking.k8s.io\n    kind: Gateway\n    name: eg\n  clientIPDetection:\n    xForwardedFor:\n      numTrustedHops: 1\n";
    // With detection the policy keys on the client (the hop count is then judged on its own).
    let f = findings(&doctor(&["-", "--format", "json"], Some(&format!("{with}{ctp}"))));
    assert!(!f.iter().any(|f| f["rule"] == "client-policy-without-client-ip"), "{f:?}");
    assert!(f.iter().any(|f| f["rule"] == "hops-mismatch"), "1 trusted hop behind an L4 load balancer: {f:?}");
}

/// Traefik's static configuration file in a ConfigMap (`traefik.yml`):
/// entry point settings are read from it, at their line in the file.
#[test]
fn traefik_static_file_in_a_configmap() {
    let text = std::fs::read_to_string(fixture("traefik-crd.yaml")).unwrap().replace(
        "        - --entryPoints.web.forwardedHeaders.trustedIPs=10.0.0.0/8,192.0.2.0/24\n        - --entryPoints.websecure.proxyProtocol.insecure\n",
        "",
    );
    let cm = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: traefik-config\n  namespace: traefik\ndata:\n  traefik.yml: |\n    entryPoints:\n      web:\n        address: \":8000\"\n        forwardedHeaders:\n          insecure: true\n";
    let all = format!("{text}{cm}");
    let f = findings(&doctor(&["-", "--format", "json"], Some(&all)));
    let hit = f.iter().find(|f| f["rule"] == "forwarded-headers-from-everyone").unwrap_or_else(|| panic!("{f:?}"));
    let line = usize::try_from(hit["line"].as_u64().unwrap()).unwrap();
    assert!(all.lines().nth(line - 1).unwrap().contains("insecure: true"), "line {line}: {hit}");
}

/// realip's own config is read with the proxy's parser: a multi-line
/// `trusted` array holding `'0.0.0.0/0'` (single quotes) is caught, at its
/// line; a config the parser refuses is reported as such.
#[test]
fn realip_config_is_parsed_with_the_proxys_types() {
    let cm = |toml: &str| {
        let body: String = toml.lines().flat_map(|l| ["    ", l, "\n"]).collect();
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: realip, namespace: ingress}}\ndata:\n  realip.toml: |\n{body}")
    };
    let text = cm("[[listener]]\nname = \"web\"\nbind = \"0.0.0.0:8080\"\n\n[client_ip]\ntrusted = [\n  '10.0.0.0/8',\n  '0.0.0.0/0',\n]\nsources = [\"xff\"]");
    let f = findings(&doctor(&["-", "--format", "json"], Some(&text)));
    let hit = f.iter().find(|f| f["rule"] == "forwarded-headers-from-everyone").unwrap_or_else(|| panic!("{f:?}"));
    let line = usize::try_from(hit["line"].as_u64().unwrap()).unwrap();
    assert!(text.lines().nth(line - 1).unwrap().contains("trusted = ["), "line {line}: {hit}");
    let bad = cm("[[listener]]\nname = \"web\"\nbind = \"0.0.0.0:8080\"\nproxy_protocol = \"sometimes\"");
    let f = findings(&doctor(&["-", "--format", "json"], Some(&bad)));
    assert!(f.iter().any(|f| f["rule"] == "realip-config-invalid"), "{f:?}");
}

/// Istio: without the pod annotation, the mesh config's gatewayTopology counts.
#[test]
fn istio_mesh_config_sets_the_default_topology() {
    let text = std::fs::read_to_string(fixture("istio-gateway.yaml")).unwrap().replace(
        "      annotations:\n        proxy.istio.io/config: '{\"gatewayTopology\": {\"numTrustedProxies\": 2}}'\n",
        "",
    );
    let rules = |t: &str| -> Vec<String> {
        found(&doctor(&["-", "--format", "json"], Some(t))).into_iter().map(|f| f.0).collect()
    };
    // Istio's default trusts no proxy: behind an L7 load balancer the client is lost.
    let f = findings(&doctor(&["-", "--format", "json"], Some(&text)));
    assert!(f.iter().any(|f| f["rule"] == "hops-mismatch" && f["severity"] == "error"), "{f:?}");
    let mesh = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    defaultConfig:\n      gatewayTopology:\n        numTrustedProxies: 1\n";
    assert!(!rules(&format!("{text}{mesh}")).contains(&"hops-mismatch".to_owned()));
}
