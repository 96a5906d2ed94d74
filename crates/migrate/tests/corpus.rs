//! The real ingress-nginx installs of `../shared/corpus/real-world/ingress-nginx/`
//! (static manifests, rendered charts, the 0.26 manifests with their AWS
//! patches), read in place: each converts without error for both targets,
//! every emitted object validates against its CRD, the output is
//! deterministic, and the facts that decide the client IP are reported.

mod common;

use std::path::PathBuf;

use realip_migrate::{Migration, Options, Status, Target};

fn migrate(paths: &[PathBuf], target: Target) -> Migration {
    let objects = realip_kube::load_paths(paths).unwrap_or_else(|e| panic!("{paths:?}: {e}"));
    let m = realip_migrate::migrate(&objects, &Options { target, ..Options::default() })
        .unwrap_or_else(|e| panic!("{paths:?}: {e}"));
    common::validate(&m.objects);
    // realip's own Gateway mode takes every object `--to realip` writes
    // (review 29 L2: only the table tests checked it).
    if target == Target::Realip {
        common::served_by_realip(&m.objects);
    }
    m
}

fn entry<'a>(m: &'a Migration, key: &str) -> &'a realip_migrate::Entry {
    m.report.entries.iter().find(|e| e.key == key).unwrap_or_else(|| panic!("no {key}:\n{}", m.report.text()))
}

#[test]
fn every_real_install_converts_validates_and_is_deterministic() {
    let Some(dir) = common::corpus() else { return };
    let all = common::installs(&dir);
    assert!(all.len() >= 20, "{} installs", all.len());
    for paths in &all {
        for target in [Target::Realip, Target::EnvoyGateway] {
            let m = migrate(paths, target);
            let again = migrate(paths, target);
            assert_eq!(realip_migrate::to_yaml(&m.objects), realip_migrate::to_yaml(&again.objects), "{paths:?}");
            assert!(m.report.notes.iter().any(|n| n.starts_with("controller ")), "{paths:?}: {:?}", m.report.notes);
            assert_eq!(common::find(&m, "Gateway").len(), 1);
            if target == Target::Realip {
                common::one(&m, "ClientIPPolicy");
            }
            // Trust-all is never silent: whenever a header or PROXY is read with
            // 0.0.0.0/0 trusted, the report carries a warning.
            let trust_all = m
                .objects
                .iter()
                .any(|o| o.to_string().contains("\"0.0.0.0/0\"") && o["kind"] != "BackendTrafficPolicy");
            if trust_all {
                assert_eq!(entry(&m, "proxy-real-ip-cidr").status, Status::Warning, "{paths:?}");
            }
        }
    }
}

#[test]
fn facts_of_known_installs() {
    let Some(dir) = common::corpus() else { return };
    // A chart rendered with use-forwarded-headers and no proxy-real-ip-cidr: trust-all, explicit.
    let m = migrate(&[dir.join("rendered/forwarded-no-cidr.yaml")], Target::Realip);
    let p = common::one(&m, "ClientIPPolicy");
    assert_eq!(p["spec"]["trustedProxies"], serde_json::json!(["0.0.0.0/0"]));
    let e = entry(&m, "proxy-real-ip-cidr");
    assert!(e.status == Status::Warning && e.why.contains("EVERY IPv4 peer") && e.value == "(default)", "{e:?}");
    assert!(!m.report.incomplete(), "a warning alone keeps exit 0");
    // DigitalOcean with PROXY on: required on the Gateway, from the (default, trust-all) senders.
    let m = migrate(&[dir.join("static/do.yaml")], Target::Realip);
    assert_eq!(common::one(&m, "ClientIPPolicy")["spec"]["proxyProtocol"]["mode"], "Required");
    assert!(m.report.notes.iter().any(|n| n.contains("DigitalOcean, PROXY protocol on")), "{:?}", m.report.notes);
    // The NLB + TLS termination install: an http-snippet and a placeholder CIDR.
    let m = migrate(&[dir.join("static/aws-nlb-with-tls-termination.yaml")], Target::Realip);
    let snippet = entry(&m, "http-snippet");
    assert_eq!(
        (snippet.status, snippet.object.as_str()),
        (Status::NotConverted, "ConfigMap/ingress-nginx/ingress-nginx-controller")
    );
    let text = std::fs::read_to_string(dir.join("static/aws-nlb-with-tls-termination.yaml")).unwrap();
    let at = text.lines().nth(snippet.line - 1).unwrap();
    assert!(
        at.contains("http-snippet") || text.lines().nth(snippet.line - 2).unwrap().contains("http-snippet"),
        "{at}"
    );
    assert_eq!(entry(&m, "proxy-real-ip-cidr").status, Status::NotConverted, "XXX.XXX.XXX/XX is a placeholder");
    assert_eq!(common::one(&m, "ClientIPPolicy")["spec"]["trustedProxies"], serde_json::json!([]), "nothing trusted");
    assert!(m.report.incomplete());
    // A chart whose Service has the AWS PROXY annotation but whose ConfigMap does not expect it.
    let m = migrate(&[dir.join("rendered/aws-pp-annotation-only.yaml")], Target::Realip);
    assert!(m
        .report
        .entries
        .iter()
        .any(|e| e.status == Status::Warning && e.why.contains("use-proxy-protocol is off")));
    // nameOverride: the controller's namespace and ConfigMap are found through its flags.
    let m = migrate(&[dir.join("rendered/nameoverride-edge.yaml")], Target::Realip);
    assert_eq!(common::one(&m, "Gateway")["metadata"]["namespace"], "edge");
    assert!(m.report.entries.iter().any(|e| e.object.starts_with("ConfigMap/edge/")), "{}", m.report.text());
    // 0.26 with the L7 (ELB HTTP) patch: XFF from everyone, the load balancer is L7.
    let legacy = dir.join("legacy-0.26");
    let m = migrate(
        &[
            legacy.join("mandatory.yaml"),
            legacy.join("aws-patch-configmap-l7.yaml"),
            legacy.join("aws-service-l7.yaml"),
        ],
        Target::EnvoyGateway,
    );
    let ctp = common::one(&m, "ClientTrafficPolicy");
    assert_eq!(ctp["spec"]["clientIPDetection"]["xForwardedFor"]["trustedCIDRs"], serde_json::json!(["0.0.0.0/0"]));
    assert!(m.report.notes.iter().any(|n| n.contains("L7 load balancer of AWS")));
    // The whole legacy directory holds two controllers: a clear input error.
    let objects = realip_kube::load_paths(&[legacy]).unwrap();
    let e = realip_migrate::migrate(&objects, &Options::default()).unwrap_err().to_string();
    assert!(e.contains("several ingress-nginx controllers"), "{e}");
}

#[test]
fn the_validator_catches_what_the_api_server_would_reject() {
    let Some(dir) = common::corpus() else { return };
    let (schemas, upstream) = common::schemas();
    if !upstream {
        return;
    }
    let m = migrate(&[dir.join("static/do.yaml")], Target::Realip);
    let mut gw = common::one(&m, "Gateway").clone();
    gw["spec"]["listeners"][0]["name"] = "HTTP".into();
    gw["spec"]["listeners"][0]["port"] = 70000.into();
    gw["spec"]["listener"] = serde_json::json!([]);
    let errs = schemas.validate(&gw);
    assert_eq!(errs.len(), 3, "{errs:?}");
    let m = migrate(&[dir.join("static/do.yaml")], Target::EnvoyGateway);
    let mut ctp = common::one(&m, "ClientTrafficPolicy").clone();
    ctp["spec"]["proxyProtocol"]["optional"] = "no".into();
    assert!(schemas.validate(&ctp)[0].contains(".spec.proxyProtocol.optional: expected boolean"));
}
