//! Shared by the migration tests: input builders and the schema check of
//! every emitted object (realip's CRDs always; Gateway API v1.6.1 and
//! Envoy Gateway's from `../shared`, read at test time, when present).

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::PathBuf;

use realip_migrate::schema::Schemas;
use realip_migrate::{Migration, Options, Status, Target};
use serde_json::Value;

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The real-world ingress-nginx corpus, or `None` (said on stderr) when
/// the shared folder is absent, as on a user's clone.
pub fn corpus() -> Option<PathBuf> {
    let dir = shared().join("corpus/real-world/ingress-nginx");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} is absent (the shared corpus is not part of the repository)", dir.display());
        None
    }
}

/// One install of the corpus per run: every single-file install, the
/// kustomize directory, and the 0.26 manifests with each of their AWS
/// patches.
pub fn installs(dir: &std::path::Path) -> Vec<Vec<PathBuf>> {
    let mut out = Vec::new();
    for sub in ["static", "rendered", "docs-aws-values"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.to_string_lossy().contains("values-from"))
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|f| vec![f]));
    }
    out.push(vec![dir.join("dir-with-kustomization")]);
    let legacy = dir.join("legacy-0.26");
    for patch in
        [["aws-patch-configmap-l7.yaml", "aws-service-l7.yaml"], ["aws-patch-configmap-l4.yaml", "aws-service-l4.yaml"]]
    {
        out.push(vec![legacy.join("mandatory.yaml"), legacy.join(patch[0]), legacy.join(patch[1])]);
    }
    out
}

/// Every CRD the output can use; `None` for the upstream ones when the
/// shared folder is absent (a user's clone), said on stderr.
pub fn schemas() -> (Schemas, bool) {
    let mut s = Schemas::realip();
    let gw = shared().join("gateway-api/v1.6.1/crd-standard");
    let eg = shared().join("crds/envoy-gateway");
    if gw.is_dir() && eg.is_dir() {
        s.add_dir(&gw).unwrap();
        s.add_dir(&eg).unwrap();
        (s, true)
    } else {
        eprintln!("skipping Gateway API / Envoy Gateway schema checks: {} or {} is absent", gw.display(), eg.display());
        (s, false)
    }
}

/// Validates every object against its CRD, plus the CEL rules of those
/// CRDs that the output could break (the validator does not run CEL).
pub fn validate(objects: &[Value]) {
    // Parsing Envoy Gateway's CRDs takes seconds in a debug build: once per test binary.
    static SCHEMAS: std::sync::OnceLock<(Schemas, bool)> = std::sync::OnceLock::new();
    let (schemas, upstream) = SCHEMAS.get_or_init(schemas);
    let upstream = *upstream;
    for o in objects {
        let kind = o["kind"].as_str().unwrap();
        let av = o["apiVersion"].as_str().unwrap();
        if !upstream && !av.starts_with("realip.dev/") {
            continue;
        }
        assert!(schemas.knows(av, kind), "no schema for {av} {kind}");
        let errs = schemas.validate(o);
        assert!(errs.is_empty(), "{kind} {}: {errs:?}\n{o:#}", o["metadata"]["name"]);
        cel(o);
    }
}

fn cel(o: &Value) {
    let name = &o["metadata"]["name"];
    match o["kind"].as_str().unwrap() {
        "HTTPRoute" => {
            for r in o["spec"]["rules"].as_array().unwrap() {
                let filters = r["filters"].as_array().cloned().unwrap_or_default();
                let redirect = filters.iter().any(|f| f.get("requestRedirect").is_some());
                let backends = r["backendRefs"].as_array().is_some_and(|b| !b.is_empty());
                assert!(!(redirect && backends), "{name}: RequestRedirect with backendRefs");
                let prefix_replace = filters.iter().any(|f| {
                    f.pointer("/urlRewrite/path/type").or_else(|| f.pointer("/requestRedirect/path/type"))
                        == Some(&Value::from("ReplacePrefixMatch"))
                });
                if prefix_replace {
                    let m = r["matches"].as_array().unwrap();
                    assert!(
                        m.len() == 1 && m[0]["path"]["type"] == "PathPrefix",
                        "{name}: ReplacePrefixMatch needs one PathPrefix match"
                    );
                }
            }
        }
        "ClientIPPolicy" => {
            if let Some(pp) = o["spec"].get("proxyProtocol") {
                assert!(
                    pp["mode"] == "Off" || pp["trustedSenders"].as_array().is_some_and(|s| !s.is_empty()),
                    "{name}: trustedSenders"
                );
            }
        }
        "ClientAccessPolicy" => {
            let s = &o["spec"];
            assert!(
                s.get("allow").is_some() || s.get("deny").is_some() || s.get("rateLimit").is_some(),
                "{name}: empty"
            );
        }
        "ClientTrafficPolicy" | "SecurityPolicy" | "BackendTrafficPolicy" => {
            let refs = o["spec"]["targetRefs"].as_array().unwrap();
            assert!(!refs.is_empty() && o["spec"].get("targetRef").is_none(), "{name}: targetRefs");
            if let Some(d) = o["spec"].get("clientIPDetection") {
                assert_eq!(
                    d.as_object().unwrap().len(),
                    1,
                    "{name}: exactly one of xForwardedFor, customHeader, directSourceIP"
                );
            }
        }
        _ => {}
    }
}

/// A controller Deployment, its ConfigMap (with `data` lines) and an AWS NLB Service.
pub fn controller(data: &[(&str, &str)]) -> String {
    let mut cm = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ingress-nginx-controller\n  namespace: ingress-nginx\ndata:\n");
    if data.is_empty() {
        cm = cm.replace("\ndata:\n", "\ndata: {}\n");
    }
    for (k, v) in data {
        if v.contains('\n') {
            let _ = writeln!(cm, "  {k}: |");
            for l in v.lines() {
                let _ = writeln!(cm, "    {l}");
            }
        } else {
            let _ = writeln!(cm, "  {k}: {}", serde_json::to_string(v).unwrap());
        }
    }
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ingress-nginx-controller\n  namespace: ingress-nginx\nspec:\n  template:\n    metadata:\n      labels: {{app: ingress-nginx}}\n    spec:\n      containers:\n      - name: controller\n        image: registry.k8s.io/ingress-nginx/controller:v1.15.1\n        args:\n        - /nginx-ingress-controller\n        - --configmap=$(POD_NAMESPACE)/ingress-nginx-controller\n        - --ingress-class=nginx\n        - --publish-service=$(POD_NAMESPACE)/ingress-nginx-controller\n---\n{cm}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ingress-nginx-controller\n  namespace: ingress-nginx\n  annotations:\n    service.beta.kubernetes.io/aws-load-balancer-type: nlb\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  selector: {{app: ingress-nginx}}\n  ports:\n  - {{name: http, port: 80}}\n"
    )
}

/// An Ingress `name` in namespace `web` for host app.example.com, path `path`
/// → Service `app` port 80, with annotations (prefix added) and extra spec lines.
pub fn ingress(name: &str, path: &str, annotations: &[(&str, &str)], extra_spec: &str) -> String {
    let mut a = String::new();
    for (k, v) in annotations {
        let key = if k.contains('/') { (*k).to_owned() } else { format!("nginx.ingress.kubernetes.io/{k}") };
        let _ = writeln!(a, "    {key}: {}", serde_json::to_string(v).unwrap());
    }
    let anns = if a.is_empty() { String::new() } else { format!("  annotations:\n{a}") };
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: web\n{anns}spec:\n  ingressClassName: nginx\n{extra_spec}  rules:\n  - host: app.example.com\n    http:\n      paths:\n      - path: {}\n        pathType: ImplementationSpecific\n        backend:\n          service:\n            name: {name}-svc\n            port:\n              number: 80\n",
        serde_json::to_string(path).unwrap()
    )
}

pub fn run(docs: &[String], target: Target) -> Migration {
    run_with(docs, &Options { target, ..Options::default() })
}

pub fn run_with(docs: &[String], opts: &Options) -> Migration {
    let text = docs.join("---\n");
    let objects = realip_kube::load_str(&text, "test.yaml").unwrap();
    let m = realip_migrate::migrate(&objects, opts).unwrap();
    validate(&m.objects);
    if opts.target == Target::Realip {
        served_by_realip(&m.objects);
    }
    m
}

/// Review 28 H1: realip's own Gateway mode takes every object `--to
/// realip` writes: its translator accepts the Gateway, each HTTPRoute and
/// each policy (a refused route would leave its host to a more open one).
/// The Services and TLS Secrets the output names are added (they are not
/// part of the input).
pub fn served_by_realip(objects: &[Value]) {
    use realip_kube::gateway::{objects::Objects, translate::translate};
    // The class the output's Gateway names (`--gateway-class`), realip's.
    let class = objects
        .iter()
        .find(|x| x["kind"] == "Gateway")
        .and_then(|g| g["spec"]["gatewayClassName"].as_str())
        .unwrap_or("realip")
        .to_owned();
    let mut o = Objects::default();
    o.add(serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": class}, "spec": {"controllerName": "realip.dev/gateway-controller"}}))
        .unwrap();
    o.add_yaml(&realip_migrate::to_yaml(objects)).unwrap();
    let ns_of = |x: &Value| x["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
    let mut added = std::collections::BTreeSet::new();
    let mut services = std::collections::BTreeMap::new();
    for x in objects {
        let ns = ns_of(x);
        for l in x["spec"]["listeners"].as_array().into_iter().flatten() {
            for c in l["tls"]["certificateRefs"].as_array().into_iter().flatten() {
                let (cns, name) =
                    (c["namespace"].as_str().map_or(ns.clone(), str::to_owned), c["name"].as_str().unwrap());
                if added.insert((cns.clone(), name.to_owned())) {
                    o.add(serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                        "metadata": {"name": name, "namespace": cns},
                        "data": {"tls.crt": realip_kube::tls::testdata::CRT_B64, "tls.key": realip_kube::tls::testdata::KEY_B64}}))
                    .unwrap();
                }
            }
        }
        for rule in x["spec"]["rules"].as_array().into_iter().flatten() {
            for b in rule["backendRefs"].as_array().into_iter().flatten() {
                let (name, port) = (b["name"].as_str().unwrap(), b["port"].as_u64().unwrap_or(80));
                services
                    .entry((ns.clone(), name.to_owned()))
                    .or_insert_with(std::collections::BTreeSet::new)
                    .insert(port);
            }
        }
    }
    for ((ns, name), ports) in services {
        let ports: Vec<Value> = ports.into_iter().map(|p| serde_json::json!({"port": p})).collect();
        o.add(serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"ports": ports}}))
            .unwrap();
    }
    let t = translate(&o.inputs(&class, &[]));
    let problems = t.problems();
    assert!(
        problems.is_empty(),
        "realip's Gateway refuses the output: {problems:#?}\n{}",
        realip_migrate::to_yaml(objects)
    );
}

/// The status of `key` in the report (the first entry with that key).
pub fn status(m: &Migration, key: &str) -> Status {
    m.report
        .entries
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("no report entry for {key}:\n{}", m.report.text()))
        .status
}

/// `(Service, weight)` of every backendRef of route `name` (any namespace).
pub fn backends(m: &Migration, name: &str) -> Vec<(String, Option<u64>)> {
    find(m, "HTTPRoute")
        .iter()
        .filter(|r| r["metadata"]["name"] == name)
        .flat_map(|r| r["spec"]["rules"].as_array().unwrap().clone())
        .flat_map(|rule| rule["backendRefs"].as_array().cloned().unwrap_or_default())
        .map(|b| (b["name"].as_str().unwrap().to_owned(), b["weight"].as_u64()))
        .collect()
}

pub fn find<'a>(m: &'a Migration, kind: &str) -> Vec<&'a Value> {
    m.objects.iter().filter(|o| o["kind"] == kind).collect()
}

pub fn one<'a>(m: &'a Migration, kind: &str) -> &'a Value {
    let f = find(m, kind);
    assert_eq!(f.len(), 1, "one {kind} wanted:\n{}", realip_migrate::to_yaml(&m.objects));
    f[0]
}

/// Whether `p` is the deny-all policy of left-out locations: realip's
/// ClientAccessPolicy denying every address, or Envoy Gateway's
/// SecurityPolicy whose authorization denies by default with no rule.
pub fn is_deny_all(p: &Value) -> bool {
    match p["kind"].as_str() {
        Some("ClientAccessPolicy") => {
            p["spec"]["deny"] == serde_json::json!(["0.0.0.0/0", "::/0"])
                && p["spec"].get("allow").is_none()
                && p["spec"].get("rateLimit").is_none()
        }
        Some("SecurityPolicy") => p["spec"]["authorization"] == serde_json::json!({"defaultAction": "Deny"}),
        _ => false,
    }
}

/// Names (`namespace/name`) of the HTTPRoutes a deny-all policy targets
/// (`deny`), or of the others; a denied route must have no backend.
pub fn routes_ns(m: &Migration, deny: bool) -> Vec<String> {
    let mut denied = std::collections::BTreeSet::new();
    for p in m.objects.iter().filter(|p| is_deny_all(p)) {
        for t in p["spec"]["targetRefs"].as_array().unwrap() {
            denied.insert(format!("{}/{}", p["metadata"]["namespace"].as_str().unwrap(), t["name"].as_str().unwrap()));
        }
    }
    let mut out = Vec::new();
    for r in find(m, "HTTPRoute") {
        let id =
            format!("{}/{}", r["metadata"]["namespace"].as_str().unwrap(), r["metadata"]["name"].as_str().unwrap());
        if denied.contains(&id) {
            for rule in r["spec"]["rules"].as_array().unwrap() {
                assert!(
                    rule.get("backendRefs").is_none() && rule.get("filters").is_none(),
                    "{id}: a denied rule forwards: {rule}"
                );
            }
        }
        if denied.contains(&id) == deny {
            out.push(id);
        }
    }
    out
}

/// [`routes_ns`] without the namespaces.
pub fn routes(m: &Migration, deny: bool) -> Vec<String> {
    routes_ns(m, deny).into_iter().map(|r| r.split_once('/').unwrap().1.to_owned()).collect()
}

/// Access/rate policies other than deny-all ones.
pub fn open_policies(m: &Migration) -> Vec<&Value> {
    m.objects
        .iter()
        .filter(|o| {
            matches!(o["kind"].as_str(), Some("ClientAccessPolicy" | "SecurityPolicy" | "BackendTrafficPolicy"))
                && !is_deny_all(o)
        })
        .collect()
}

/// The ConfigMap lines of the review tables' controller: XFF trusted from 10.0.0.0/16.
pub const BASE: [(&str, &str); 2] = [("use-forwarded-headers", "true"), ("proxy-real-ip-cidr", "10.0.0.0/16")];

/// [`controller`] with image tag `tag`, `args` added after
/// `--ingress-class`, and ConfigMap lines `data` after [`BASE`].
pub fn controller_at(tag: &str, args: &[&str], data: &[(&str, &str)]) -> String {
    let all: Vec<(&str, &str)> = BASE.iter().chain(data).copied().collect();
    let extra: String = args.iter().fold(String::new(), |acc, a| acc + "\n        - " + a);
    controller(&all).replacen("- --ingress-class=nginx", &format!("- --ingress-class=nginx{extra}"), 1).replacen(
        "controller:v1.15.1",
        &format!("controller:{tag}"),
        1,
    )
}

/// An Ingress on app.example.com `path` (Prefix) in namespace `ns`, created in `year`.
pub fn ing_at(ns: &str, name: &str, year: u32, path: &str, annotations: &[(&str, &str)]) -> String {
    ingress(name, path, annotations, "").replacen("pathType: ImplementationSpecific", "pathType: Prefix", 1).replacen(
        "  namespace: web\n",
        &format!("  namespace: {ns}\n  creationTimestamp: \"{year}-01-01T00:00:00Z\"\n"),
        1,
    )
}
