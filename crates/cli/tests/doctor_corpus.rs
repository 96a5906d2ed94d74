//! `realip doctor` over the real-world corpus (`../shared/corpus/real-world/`,
//! public manifests and chart values nobody here wrote, see its
//! SOURCES.md): every file's findings are compared with the expectations
//! written below (rule, object, severity, line), and each item of issue 12
//! has its own test on the real input it names.
//!
//! The corpus is data outside the repository: without it these tests print
//! why they skip, unless `REALIP_REQUIRE_PEERS=1` (CI), which makes its
//! absence a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/real-world");
    if dir.join("SOURCES.md").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("REALIP_REQUIRE_PEERS").as_deref() != Ok("1"),
        "REALIP_REQUIRE_PEERS=1 but the real-world corpus is missing at {}",
        dir.display()
    );
    eprintln!("skipping: the real-world corpus is not at {} (a clone without ../shared)", dir.display());
    None
}

fn doctor_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_realip"))
        .current_dir(dir)
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

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

/// (rule, object, severity, line) of every finding.
fn found(out: &Output) -> Vec<(String, String, String, u64)> {
    json(out)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["object"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn rules(out: &Output) -> Vec<String> {
    found(out).into_iter().map(|f| f.0).collect()
}

/// Expectations per input (paths relative to the corpus), reviewed one by
/// one against the issue: see the item tests below for why each matters.
/// (rule, object, severity, line).
type Expected = (&'static str, &'static str, &'static str, usize);

const CASES: &[(&[&str], &[Expected])] = &[
    (&["apps/chroma/kubernetes.yaml"], &[]),
    (
        &["apps/ocsarchive-iiif/rendered-base.yaml"],
        &[("app-trusts-every-proxy", "Deployment/default/ocsarchive-iiif-backend-api", "warning", 71)],
    ),
    (&["apps/variants/a-shell-form.yaml"], &[("app-trusts-every-proxy", "Deployment/default/api", "warning", 23)]),
    (
        &["apps/variants/b-uvicorn-env-prefix.yaml"],
        &[("app-trusts-every-proxy", "Deployment/default/api", "warning", 36)],
    ),
    (&["apps/variants/c-exposed-lb.yaml"], &[("app-trusts-every-proxy", "Deployment/default/api", "error", 27)]),
    (&["apps/variants/d-netpol-ingress-only.yaml"], &[]),
    (&["apps/variants/d2-netpol-plus-lb.yaml"], &[("app-trusts-every-proxy", "Deployment/default/api", "warning", 27)]),
    (&["apps/variants/e-gunicorn-worker.yaml"], &[("app-trusts-every-proxy", "Deployment/default/api", "error", 26)]),
    (
        &["apps/variants/f-command-args-split.yaml"],
        &[("app-trusts-every-proxy", "Deployment/default/api", "error", 35)],
    ),
    (&["apps/variants/g-python-m-env.yaml"], &[("app-trusts-every-proxy", "Deployment/default/api", "error", 38)]),
    (&["apps/variants/h-image-cmd.yaml"], &[]),
    (
        &["cilium/cilium-config-from-doc-4007011272.yaml"],
        &[("cilium-dsr-vxlan", "ConfigMap/kube-system/cilium-config", "error", 35)],
    ),
    (
        &["ingress-nginx/docs-aws-values/rendered-docs-aws-local.yaml"],
        &[
            ("lb-ip-target-client-ip-lost", "Service/ingress-nginx/ingress-nginx-controller", "error", 322),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 374),
            ("ingress-no-spread", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 393),
        ],
    ),
    (
        &["ingress-nginx/docs-aws-values/rendered-docs-aws.yaml"],
        &[
            ("lb-ip-target-client-ip-lost", "Service/ingress-nginx/ingress-nginx-controller", "error", 298),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 354),
        ],
    ),
    (
        &["ingress-nginx/rendered/aws-pp-annotation-only.yaml"],
        &[
            ("proxy-protocol-mismatch", "Service/ingress-nginx/ingress-nginx-controller", "error", 287),
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 325),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 336),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 341),
        ],
    ),
    (
        &["ingress-nginx/rendered/ci-configmap-pp.yaml"],
        &[("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 339)],
    ),
    (&["ingress-nginx/rendered/daemonset-hostnetwork.yaml"], &[]),
    (
        &["ingress-nginx/rendered/default.yaml"],
        &[
            ("ingress-etp-cluster", "Service/ingress-nginx/ingress-nginx-controller", "error", 283),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 338),
        ],
    ),
    (
        &["ingress-nginx/rendered/forwarded-no-cidr.yaml"],
        &[
            ("forwarded-headers-from-everyone", "ConfigMap/ingress-nginx/ingress-nginx-controller", "error", 33),
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 324),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 335),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 340),
        ],
    ),
    (
        &["ingress-nginx/rendered/hpa.yaml"],
        &[
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 358),
            ("ingress-no-spread", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 376),
        ],
    ),
    (
        &["ingress-nginx/rendered/internal-svc.yaml"],
        &[
            ("ingress-etp-cluster", "Service/ingress-nginx/ingress-nginx-controller-internal", "error", 281),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 395),
            ("ingress-no-spread", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 414),
        ],
    ),
    (
        &["ingress-nginx/rendered/local-3replicas.yaml"],
        &[
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 358),
            ("ingress-no-spread", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 377),
        ],
    ),
    (
        &["ingress-nginx/rendered/nameoverride-edge.yaml"],
        &[
            ("forwarded-headers-from-everyone", "ConfigMap/edge/edge-controller", "error", 33),
            ("ingress-etp-cluster", "Service/edge/edge-controller", "error", 284),
            ("ingress-single-replica", "Deployment/edge/edge-controller", "warning", 339),
        ],
    ),
    (
        &["ingress-nginx/static/aws-nlb-with-tls-termination.yaml"],
        &[
            ("trusted-cidr-invalid", "ConfigMap/ingress-nginx/ingress-nginx-controller", "error", 330),
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 407),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 416),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 425),
        ],
    ),
    (
        &["ingress-nginx/static/aws.yaml"],
        &[
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 398),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 407),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 416),
        ],
    ),
    (
        &["ingress-nginx/static/baremetal.yaml"],
        &[
            ("ingress-etp-cluster", "Service/ingress-nginx/ingress-nginx-controller", "error", 335),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 402),
        ],
    ),
    (
        &["ingress-nginx/static/cloud.yaml"],
        &[
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 394),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 403),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 412),
        ],
    ),
    (
        &["ingress-nginx/static/do.yaml"],
        &[
            ("hairpin-proxy-protocol", "Service/ingress-nginx/ingress-nginx-controller", "warning", 340),
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 397),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 406),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 415),
        ],
    ),
    (
        &["ingress-nginx/static/exoscale.yaml"],
        &[("rollout-max-unavailable", "DaemonSet/ingress-nginx/ingress-nginx-controller", "warning", 521)],
    ),
    (
        &["ingress-nginx/static/kind.yaml"],
        &[
            ("ingress-etp-cluster", "Service/ingress-nginx/ingress-nginx-controller", "error", 335),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 402),
        ],
    ),
    (
        &["ingress-nginx/static/oracle.yaml"],
        &[
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 398),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 407),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 416),
        ],
    ),
    (
        &["ingress-nginx/static/scw.yaml"],
        &[
            ("hairpin-proxy-protocol", "Service/ingress-nginx/ingress-nginx-controller", "warning", 340),
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 397),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 406),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 415),
        ],
    ),
    (
        &["odd/anchors-merge.yaml"],
        &[
            ("ingress-etp-cluster", "Service/ingress-nginx/ingress-nginx-controller", "error", 2),
            ("forwarded-headers-from-everyone", "ConfigMap/ingress-nginx/ingress-nginx-controller", "error", 25),
        ],
    ),
    (
        &["odd/baremetal-as-list.json"],
        &[
            ("ingress-etp-cluster", "Service/ingress-nginx/ingress-nginx-controller", "error", 504),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 592),
        ],
    ),
    (
        &["odd/baremetal-as-list.yaml"],
        &[
            ("ingress-etp-cluster", "Service/ingress-nginx/ingress-nginx-controller", "error", 325),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 390),
        ],
    ),
    (
        &["odd/dup-keys.yaml"],
        &[
            ("ingress-etp-cluster", "Service/default/ingress-nginx-controller", "error", 8),
            ("yaml-duplicate-key", "Service/default/ingress-nginx-controller", "warning", 8),
        ],
    ),
    (&["odd/empty.yaml"], &[]),
    (
        &["odd/kind-bom.yaml"],
        &[
            ("ingress-etp-cluster", "Service/ingress-nginx/ingress-nginx-controller", "error", 335),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 402),
        ],
    ),
    (
        &["odd/kind-crlf.yaml"],
        &[
            ("ingress-etp-cluster", "Service/ingress-nginx/ingress-nginx-controller", "error", 335),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 402),
        ],
    ),
    (&["odd/nulls.yaml"], &[("ingress-no-spread", "Deployment/default/ingress-nginx-controller", "warning", 18)]),
    (&["odd/only-separators.yaml"], &[]),
    (
        &["traefik/rendered-default.yaml"],
        &[
            ("ingress-etp-cluster", "Service/traefik/traefik", "error", 120),
            ("ingress-single-replica", "Deployment/traefik/traefik", "warning", 159),
        ],
    ),
    (
        &["traefik/rendered-insecure-forwarded.yaml"],
        &[
            ("ingress-etp-cluster", "Service/traefik/traefik", "error", 120),
            ("ingress-no-spread", "Deployment/traefik/traefik", "warning", 183),
            ("forwarded-headers-from-everyone", "Deployment/traefik/traefik", "error", 199),
        ],
    ),
    (
        &["ingress-nginx/legacy-0.26/mandatory.yaml", "ingress-nginx/legacy-0.26/aws-service-l4.yaml"],
        &[
            ("ingress-single-replica", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 199),
            ("proxy-protocol-mismatch", "Service/ingress-nginx/ingress-nginx", "error", 11),
        ],
    ),
    (
        &[
            "ingress-nginx/legacy-0.26/mandatory.yaml",
            "ingress-nginx/legacy-0.26/aws-service-l4.yaml",
            "ingress-nginx/legacy-0.26/aws-patch-configmap-l4.yaml",
        ],
        &[("ingress-single-replica", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 199)],
    ),
    (
        &["ingress-nginx/legacy-0.26/mandatory.yaml", "ingress-nginx/legacy-0.26/aws-service-l7.yaml"],
        &[
            ("lb-l7-forwarded-headers-ignored", "ConfigMap/ingress-nginx/nginx-configuration", "error", 11),
            ("ingress-single-replica", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 199),
        ],
    ),
    (
        &[
            "ingress-nginx/legacy-0.26/mandatory.yaml",
            "ingress-nginx/legacy-0.26/aws-service-l7.yaml",
            "ingress-nginx/legacy-0.26/aws-patch-configmap-l7.yaml",
        ],
        &[
            ("ingress-single-replica", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 199),
            ("forwarded-headers-from-everyone", "ConfigMap/ingress-nginx/nginx-configuration", "error", 11),
        ],
    ),
    (
        &["ingress-nginx/legacy-0.26/mandatory.yaml", "ingress-nginx/legacy-0.26/aws-service-nlb.yaml"],
        &[
            ("ingress-no-pdb", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 193),
            ("ingress-single-replica", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 199),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 199),
        ],
    ),
    (
        &["ingress-nginx/legacy-0.26/mandatory.yaml", "ingress-nginx/legacy-0.26/baremetal-service-nodeport.yaml"],
        &[
            ("ingress-single-replica", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 199),
            ("ingress-etp-cluster", "Service/ingress-nginx/ingress-nginx", "error", 1),
        ],
    ),
    (
        &["ingress-nginx/legacy-0.26/mandatory.yaml", "ingress-nginx/legacy-0.26/cloud-generic.yaml"],
        &[
            ("ingress-no-pdb", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 193),
            ("ingress-single-replica", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 199),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/nginx-ingress-controller", "warning", 199),
        ],
    ),
    (
        &["ingress-nginx/legacy-0.26/aws-deploy-tls-termination.yaml"],
        &[
            ("trusted-cidr-invalid", "ConfigMap/ingress-nginx/ingress-nginx-controller", "error", 45),
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 305),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 315),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 315),
        ],
    ),
    (
        &["combined/aws-in-ns-ingress-internal.yaml", "ingress-nginx/static/do.yaml"],
        &[
            ("ingress-no-pdb", "Deployment/ingress-internal/ingress-nginx-controller", "warning", 398),
            ("ingress-single-replica", "Deployment/ingress-internal/ingress-nginx-controller", "warning", 407),
            ("rollout-max-unavailable", "Deployment/ingress-internal/ingress-nginx-controller", "warning", 416),
            ("hairpin-proxy-protocol", "Service/ingress-nginx/ingress-nginx-controller", "warning", 340),
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 397),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 406),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 415),
        ],
    ),
    (
        &["combined/scw-with-use-hostname.yaml"],
        &[
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 398),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 407),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 416),
        ],
    ),
    (
        &["ingress-nginx/dir-with-kustomization"],
        &[
            ("trusted-cidr-invalid", "ConfigMap/ingress-nginx/ingress-nginx-controller", "error", 330),
            ("ingress-no-pdb", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 407),
            ("ingress-single-replica", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 416),
            ("rollout-max-unavailable", "Deployment/ingress-nginx/ingress-nginx-controller", "warning", 425),
        ],
    ),
    (&["apps/ocsarchive-iiif/deploy"], &[("app-trusts-every-proxy", "Deployment/default/api", "warning", 29)]),
    (
        &["--helm-values", "traefik/values.yaml"],
        &[("ingress-etp-cluster", "values", "error", 1145), ("ingress-single-replica", "values", "warning", 28)],
    ),
    (
        &["--helm-values", "ingress-nginx/chart/values.yaml"],
        &[("ingress-etp-cluster", "values", "error", 532), ("ingress-single-replica", "values", "warning", 384)],
    ),
    (
        &["--helm-values", "ingress-nginx/docs-aws-values/values-from-docs-deploy-index.yaml"],
        &[("lb-ip-target-client-ip-lost", "values", "error", 7), ("ingress-single-replica", "values", "warning", 4)],
    ),
    (&["--helm-values", "apps/chroma/distributed-chroma-values.yaml"], &[]),
    (
        &["--helm-values", "ingress-nginx/chart/ci/admission-webhooks-cert-manager-values.yaml"],
        &[("ingress-single-replica", "values", "warning", 2)],
    ),
    (
        &["--helm-values", "ingress-nginx/chart/ci/controller-configmap-addheaders-values.yaml"],
        &[("ingress-single-replica", "values", "warning", 2)],
    ),
    (
        &["--helm-values", "ingress-nginx/chart/ci/controller-configmap-proxyheaders-values.yaml"],
        &[("ingress-single-replica", "values", "warning", 2)],
    ),
    (
        &["--helm-values", "ingress-nginx/chart/ci/controller-configmap-values.yaml"],
        &[("ingress-single-replica", "values", "warning", 2)],
    ),
    (&["--helm-values", "ingress-nginx/chart/ci/controller-daemonset-metrics-values.yaml"], &[]),
    (&["--helm-values", "ingress-nginx/chart/ci/controller-daemonset-podannotations-values.yaml"], &[]),
    (&["--helm-values", "ingress-nginx/chart/ci/controller-daemonset-values.yaml"], &[]),
    (
        &["--helm-values", "ingress-nginx/chart/ci/controller-deployment-metrics-values.yaml"],
        &[("ingress-single-replica", "values", "warning", 2)],
    ),
    (
        &["--helm-values", "ingress-nginx/chart/ci/controller-deployment-podannotations-values.yaml"],
        &[("ingress-single-replica", "values", "warning", 2)],
    ),
    (
        &["--helm-values", "ingress-nginx/chart/ci/controller-deployment-values.yaml"],
        &[("ingress-single-replica", "values", "warning", 2)],
    ),
    (
        &["--helm-values", "ingress-nginx/chart/ci/controller-hpa-values.yaml"],
        &[("ingress-single-replica", "values", "warning", 11)],
    ),
    (
        &["--helm-values", "ingress-nginx/chart/ci/controller-ingressclass-values.yaml"],
        &[("ingress-single-replica", "values", "warning", 2)],
    ),
    (
        &["--helm-values", "ingress-nginx/chart/ci/controller-service-internal-values.yaml"],
        &[("ingress-single-replica", "values", "warning", 2)],
    ),
    (
        &["--helm-values", "ingress-nginx/chart/ci/controller-service-values.yaml"],
        &[("ingress-etp-cluster", "values", "error", 8), ("ingress-single-replica", "values", "warning", 2)],
    ),
];

#[test]
fn the_whole_corpus_gives_the_expected_findings() {
    let Some(dir) = corpus() else { return };
    let mut failures = Vec::new();
    for (args, want) in CASES {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--format", "json"]);
        let out = doctor_in(&dir, &a, None);
        let errors = want.iter().any(|w| w.2 == "error");
        if out.status.code() != Some(i32::from(errors)) {
            failures.push(format!("{args:?}: exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
            continue;
        }
        let mut got = found(&out);
        let mut want: Vec<(String, String, String, u64)> =
            want.iter().map(|(r, o, s, l)| ((*r).to_owned(), (*o).to_owned(), (*s).to_owned(), *l as u64)).collect();
        got.sort();
        want.sort();
        if got != want {
            failures.push(format!("{args:?}:\n  got  {got:?}\n  want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn walk(d: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "json") {
            out.push(p);
        }
    }
}

/// Every file of the corpus is covered by at least one case above.
#[test]
fn every_corpus_file_has_expectations() {
    let Some(dir) = corpus() else { return };
    let mut files = Vec::new();
    walk(&dir, &mut files);
    let covered =
        |rel: &str| CASES.iter().any(|(args, _)| args.iter().any(|a| rel == *a || rel.starts_with(&format!("{a}/"))));
    let missing: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
        .filter(|rel| !covered(rel))
        .filter(|rel| !rel.contains("/kustomize/")) // read through the directory case
        .collect();
    assert!(missing.is_empty(), "corpus files without expectations: {missing:?}");
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap()
}

fn finding<'a>(v: &'a serde_json::Value, rule: &str) -> Option<&'a serde_json::Value> {
    v["findings"].as_array().unwrap().iter().find(|f| f["rule"] == rule)
}

/// Item 1: the controller's own ConfigMap, empty `data:` meaning defaults.
#[test]
fn item1_proxy_mismatch_on_chart_and_static_installs() {
    let Some(dir) = corpus() else { return };
    let out = doctor_in(&dir, &["ingress-nginx/rendered/aws-pp-annotation-only.yaml", "--format", "json"], None);
    let v = json(&out);
    let f = finding(&v, "proxy-protocol-mismatch").expect("mismatch on the chart install");
    assert_eq!((f["severity"].as_str(), f["line"].as_u64()), (Some("error"), Some(287)), "{f}");
    let l = "ingress-nginx/legacy-0.26/";
    let forgot =
        doctor_in(&dir, &[&format!("{l}mandatory.yaml"), &format!("{l}aws-service-l4.yaml"), "--format", "json"], None);
    assert!(rules(&forgot).contains(&"proxy-protocol-mismatch".to_owned()), "{:?}", rules(&forgot));
    let patched = doctor_in(
        &dir,
        &[
            &format!("{l}mandatory.yaml"),
            &format!("{l}aws-service-l4.yaml"),
            &format!("{l}aws-patch-configmap-l4.yaml"),
            "--format",
            "json",
        ],
        None,
    );
    assert!(!rules(&patched).contains(&"proxy-protocol-mismatch".to_owned()), "the patch sets use-proxy-protocol");
}

/// Item 2: each controller reads its own namespace's ConfigMap, also from
/// one `kubectl get -A -o yaml`-style List.
#[test]
fn item2_configmaps_stay_in_their_namespace() {
    let Some(dir) = corpus() else { return };
    let files = ["combined/aws-in-ns-ingress-internal.yaml", "ingress-nginx/static/do.yaml"];
    let out = doctor_in(&dir, &[files[0], files[1], "--format", "json"], None);
    assert!(!rules(&out).contains(&"proxy-protocol-mismatch".to_owned()), "{:?}", rules(&out));
    assert_eq!(json(&out)["controllers"].as_array().unwrap().len(), 2);
    // The same objects as one List (what `kubectl get svc,deploy,cm -A -o yaml` prints).
    let mut items = Vec::new();
    for f in files {
        for doc in serde_norway::Deserializer::from_str(&read(&dir, f)) {
            let v: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            if !v.is_null() {
                items.push(v);
            }
        }
    }
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let out = doctor_in(&dir, &["-", "--format", "json"], Some(&list));
    assert!(!rules(&out).contains(&"proxy-protocol-mismatch".to_owned()), "{:?}", rules(&out));
    // Moving DO's PROXY ConfigMap away from its controller is caught again.
    let moved = read(&dir, files[1]).replace("  use-proxy-protocol: \"true\"\n", "");
    let out = doctor_in(&dir, &[files[0], "-", "--format", "json"], Some(&moved));
    assert!(rules(&out).contains(&"proxy-protocol-mismatch".to_owned()));
}

/// Item 3: the load balancer's kind decides what matters.
#[test]
fn item3_load_balancer_kinds() {
    let Some(dir) = corpus() else { return };
    // NLB with IP targets: Local does not help, preserve_client_ip does.
    let local = "ingress-nginx/docs-aws-values/rendered-docs-aws-local.yaml";
    let r = rules(&doctor_in(&dir, &[local, "--format", "json"], None));
    assert!(
        r.contains(&"lb-ip-target-client-ip-lost".to_owned()) && !r.contains(&"ingress-etp-cluster".to_owned()),
        "{r:?}"
    );
    let preserved = read(&dir, local).replace(
        "deregistration_delay.timeout_seconds=270",
        "deregistration_delay.timeout_seconds=270,preserve_client_ip.enabled=true",
    );
    let r = rules(&doctor_in(&dir, &["-", "--format", "json"], Some(&preserved)));
    assert!(!r.contains(&"lb-ip-target-client-ip-lost".to_owned()), "{r:?}");
    // Classic ELB in HTTP mode: the finding is about X-Forwarded-For trust, not Local.
    let l = "ingress-nginx/legacy-0.26/";
    let r = rules(&doctor_in(
        &dir,
        &[&format!("{l}mandatory.yaml"), &format!("{l}aws-service-l7.yaml"), "--format", "json"],
        None,
    ));
    assert!(
        r.contains(&"lb-l7-forwarded-headers-ignored".to_owned()) && !r.contains(&"ingress-etp-cluster".to_owned()),
        "{r:?}"
    );
    // Hostname-published load balancers have no hairpin problem; Scaleway's fix clears it.
    let r = rules(&doctor_in(&dir, &["ingress-nginx/rendered/aws-pp-annotation-only.yaml", "--format", "json"], None));
    assert!(!r.contains(&"hairpin-proxy-protocol".to_owned()), "{r:?}");
    let v = json(&doctor_in(&dir, &["ingress-nginx/static/scw.yaml", "--format", "json"], None));
    let hairpin = finding(&v, "hairpin-proxy-protocol").expect("Scaleway publishes an IP by default");
    assert!(hairpin["fix"].as_str().unwrap().contains("scw-loadbalancer-use-hostname"), "{hairpin}");
    let r = rules(&doctor_in(&dir, &["combined/scw-with-use-hostname.yaml", "--format", "json"], None));
    assert!(!r.contains(&"hairpin-proxy-protocol".to_owned()), "{r:?}");
    // A GCE application load balancer (an Ingress of class gce) in front of the controller's Service.
    let gce = format!(
        "{}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: edge, namespace: ingress-nginx}}\nspec:\n  ingressClassName: gce\n  defaultBackend:\n    service: {{name: ingress-nginx-controller, port: {{number: 80}}}}\n",
        read(&dir, "ingress-nginx/static/baremetal.yaml")
    );
    let r = rules(&doctor_in(&dir, &["-", "--format", "json"], Some(&gce)));
    assert!(
        r.contains(&"lb-l7-forwarded-headers-ignored".to_owned()) && !r.contains(&"ingress-etp-cluster".to_owned()),
        "{r:?}"
    );
}

/// Item 4: CIDRs must parse; compute-full-forwarded-for against `*` apps.
#[test]
fn item4_cidrs_parse_and_full_forwarded_for_is_cross_checked() {
    let Some(dir) = corpus() else { return };
    let v =
        json(&doctor_in(&dir, &["ingress-nginx/static/aws-nlb-with-tls-termination.yaml", "--format", "json"], None));
    let f = finding(&v, "trusted-cidr-invalid").expect("XXX.XXX.XXX/XX is not a CIDR");
    assert!(f["message"].as_str().unwrap().contains("XXX.XXX.XXX/XX"), "{f}");
    let full = read(&dir, "ingress-nginx/rendered/forwarded-no-cidr.yaml").replacen(
        "\ndata:\n",
        "\ndata:\n  compute-full-forwarded-for: \"true\"\n  proxy-real-ip-cidr: \"10.0.0.0/8\"\n",
        1,
    );
    let both = format!("{full}\n---\n{}", read(&dir, "apps/variants/a-shell-form.yaml"));
    let r = rules(&doctor_in(&dir, &["-", "--format", "json"], Some(&both)));
    assert!(r.contains(&"full-xff-leftmost-app".to_owned()), "{r:?}");
    let without = both.replace("  compute-full-forwarded-for: \"true\"\n", "");
    assert!(!rules(&doctor_in(&dir, &["-", "--format", "json"], Some(&without)))
        .contains(&"full-xff-leftmost-app".to_owned()));
}

/// Item 5: an HPA's minReplicas counts; DaemonSets get no PDB advice but
/// their maxUnavailable is checked.
#[test]
fn item5_hpa_and_daemonsets() {
    let Some(dir) = corpus() else { return };
    let r = rules(&doctor_in(&dir, &["ingress-nginx/rendered/hpa.yaml", "--format", "json"], None));
    assert!(!r.contains(&"ingress-single-replica".to_owned()) && r.contains(&"ingress-no-spread".to_owned()), "{r:?}");
    let no_hpa = read(&dir, "ingress-nginx/rendered/hpa.yaml").replace("minReplicas: 3", "minReplicas: 1");
    assert!(rules(&doctor_in(&dir, &["-", "--format", "json"], Some(&no_hpa)))
        .contains(&"ingress-single-replica".to_owned()));
    let v = json(&doctor_in(&dir, &["ingress-nginx/static/exoscale.yaml", "--format", "json"], None));
    assert!(finding(&v, "ingress-no-pdb").is_none(), "a DaemonSet is not evicted by drains");
    let m = finding(&v, "rollout-max-unavailable").expect("DaemonSet maxUnavailable");
    let line = usize::try_from(m["line"].as_u64().unwrap()).unwrap();
    assert!(read(&dir, "ingress-nginx/static/exoscale.yaml")
        .lines()
        .nth(line - 1)
        .unwrap()
        .contains("maxUnavailable:"));
}

/// Item 6 and 7: uvicorn and gunicorn in every form; NetworkPolicy does not
/// fence NodePort/LoadBalancer traffic.
#[test]
fn item6_7_app_forms_and_network_policies() {
    let Some(dir) = corpus() else { return };
    for (file, want) in [
        ("a-shell-form.yaml", Some("warning")),
        ("b-uvicorn-env-prefix.yaml", Some("warning")),
        ("c-exposed-lb.yaml", Some("error")),
        ("d-netpol-ingress-only.yaml", None),
        ("d2-netpol-plus-lb.yaml", Some("warning")),
        ("e-gunicorn-worker.yaml", Some("error")),
        ("f-command-args-split.yaml", Some("error")),
        ("g-python-m-env.yaml", Some("error")),
        ("h-image-cmd.yaml", None),
    ] {
        let rel = format!("apps/variants/{file}");
        let v = json(&doctor_in(&dir, &[&rel, "--format", "json"], None));
        let f = finding(&v, "app-trusts-every-proxy");
        assert_eq!(f.and_then(|f| f["severity"].as_str()), want, "{file}: {v}");
        if let Some(f) = f {
            // The line holds the argument or the env entry that says `*`.
            let line = usize::try_from(f["line"].as_u64().unwrap()).unwrap();
            let text: Vec<String> = read(&dir, &rel).lines().map(str::to_owned).collect();
            let near = format!("{}{}", text[line - 1], text.get(line).cloned().unwrap_or_default());
            assert!(
                near.contains("forwarded-allow-ips") || near.contains("FORWARDED_ALLOW_IPS"),
                "{file}:{line}: {near}"
            );
        }
    }
    let v = json(&doctor_in(&dir, &["apps/variants/d2-netpol-plus-lb.yaml", "--format", "json"], None));
    let why = finding(&v, "app-trusts-every-proxy").unwrap()["message"].as_str().unwrap().to_owned();
    assert!(why.contains("NetworkPolicy") && why.contains("own node"), "{why}");
}

/// Item 8: real repositories.
#[test]
fn item8_real_repositories() {
    let Some(dir) = corpus() else { return };
    let out = doctor_in(&dir, &["ingress-nginx/dir-with-kustomization", "--format", "json"], None);
    assert_eq!(out.status.code(), Some(1), "findings, not a usage error: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kustomization.yaml") && err.contains("skipped"), "{err}");
    // An unrendered chart next to manifests.
    let tmp = std::env::temp_dir().join(format!("realip-doctor-chart-{}", std::process::id()));
    std::fs::create_dir_all(tmp.join("templates")).unwrap();
    std::fs::write(tmp.join("Chart.yaml"), "apiVersion: v2\nname: demo\nversion: 0.1.0\n").unwrap();
    std::fs::write(
        tmp.join("templates/svc.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ include \"demo.fullname\" . }}\n",
    )
    .unwrap();
    let out = doctor_in(&tmp, &[".", "--format", "json"], None);
    let explicit = doctor_in(&tmp, &["templates/svc.yaml"], None);
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrendered Helm template (run helm template first)"));
    assert_eq!(explicit.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&explicit.stderr).contains("unrendered Helm template (run helm template first)"));
    // Merge keys resolved (type: LoadBalancer comes through `<<:`), duplicate keys reported.
    assert!(rules(&doctor_in(&dir, &["odd/anchors-merge.yaml", "--format", "json"], None))
        .contains(&"ingress-etp-cluster".to_owned()));
    assert!(rules(&doctor_in(&dir, &["odd/dup-keys.yaml", "--format", "json"], None))
        .contains(&"yaml-duplicate-key".to_owned()));
    // No controller recognised: said so.
    let out = doctor_in(&dir, &["apps/chroma/kubernetes.yaml"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no ingress controller or gateway recognised"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Item 9: words, the missing-file error, SARIF locations.
#[test]
fn item9_words_errors_and_sarif() {
    let Some(dir) = corpus() else { return };
    let v = json(&doctor_in(&dir, &["ingress-nginx/rendered/default.yaml", "--format", "json"], None));
    let single = finding(&v, "ingress-single-replica").unwrap()["message"].as_str().unwrap().to_owned();
    assert!(!single.contains("Local"), "the Service is Cluster: {single}");
    let out = doctor_in(&dir, &["no/such/file.yaml"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!((out.status.code(), err.matches("No such file").count()), (Some(2), 1), "{err}");
    let out = doctor_in(&dir, &["ingress-nginx/rendered/default.yaml", "--format", "sarif"], None);
    let s = json(&out);
    let run = &s["runs"][0];
    assert!(run["tool"]["driver"]["informationUri"].as_str().unwrap().ends_with("docs/doctor.md"));
    let loc = &run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(
        (loc["uri"].as_str(), loc["uriBaseId"].as_str()),
        (Some("ingress-nginx/rendered/default.yaml"), Some("SRCROOT")),
        "{loc}"
    );
    for r in run["tool"]["driver"]["rules"].as_array().unwrap() {
        assert!(r["helpUri"].as_str().unwrap().contains(&format!("#{}", r["id"].as_str().unwrap())));
        assert!(r["shortDescription"]["text"] != r["id"], "description from the catalogue: {r}");
    }
}

/// Item 10: chart values are recognised, and judged in their chart's terms.
#[test]
fn item10_helm_values_know_their_chart() {
    let Some(dir) = corpus() else { return };
    let out = doctor_in(&dir, &["--helm-values", "traefik/values.yaml", "--format", "json"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Traefik chart values"));
    let v = json(&out);
    let etp = finding(&v, "ingress-etp-cluster").expect("Traefik's default Service is Cluster");
    assert!(etp["fix"].as_str().unwrap().contains("service.spec.externalTrafficPolicy"), "{etp}");
    assert!(!v.to_string().contains("controller.config"), "no ingress-nginx keys in Traefik findings: {v}");
    let out = doctor_in(&dir, &["--helm-values", "ingress-nginx/chart/values.yaml", "--format", "json"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingress-nginx chart values"));
    let out = doctor_in(&dir, &["--helm-values", "apps/chroma/distributed-chroma-values.yaml"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not recognised"));
    let realip = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/realip/values.yaml");
    let out = doctor_in(&dir, &["--helm-values", realip.to_str().unwrap(), "--format", "json"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("realip chart values"));
    assert_eq!(out.status.code(), Some(0), "realip's own defaults are sound: {}", String::from_utf8_lossy(&out.stdout));
}

/// Traefik on the corpus: insecure forwarded headers are an error, the
/// default chart render gets the ETP finding.
#[test]
fn traefik_renders() {
    let Some(dir) = corpus() else { return };
    let v = json(&doctor_in(&dir, &["traefik/rendered-insecure-forwarded.yaml", "--format", "json"], None));
    let f = finding(&v, "forwarded-headers-from-everyone").expect("insecure forwarded headers");
    assert_eq!((f["severity"].as_str(), f["line"].as_u64()), (Some("error"), Some(199)));
    let v = json(&doctor_in(&dir, &["traefik/rendered-default.yaml", "--format", "json"], None));
    assert!(finding(&v, "ingress-etp-cluster").is_some());
}
