//! App rules: Python ASGI/WSGI servers behind the controller and whom they
//! believe X-Forwarded-For from. Recognises uvicorn (`uvicorn`, `python -m
//! uvicorn`, inside `sh -c "…"`/`bash -c`), gunicorn with the uvicorn
//! worker (`-k`/`--worker-class uvicorn.workers.UvicornWorker`) and
//! hypercorn; the trust comes from `--forwarded-allow-ips` (`=v` or a
//! separate argument, in `command` or `args`) or the environment
//! (`FORWARDED_ALLOW_IPS`, read by uvicorn and gunicorn, and
//! `UVICORN_FORWARDED_ALLOW_IPS`, uvicorn's CLI prefix). Findings point at
//! the argument or env entry that sets the trust.
//!
//! A NetworkPolicy that admits only the ingress makes `*` acceptable for a
//! ClusterIP app, but not for one behind a NodePort/LoadBalancer Service:
//! pods cannot block traffic from their own node, and NodePort traffic
//! SNATed to that node passes (Kubernetes' NetworkPolicy documentation).

use realip_kube::{Node, Object};

use crate::controllers::Index;
use crate::finding::{Finding, Place, Severity};
use crate::model::{self, Edge};

/// Labels and namespaces taken as "the ingress" in NetworkPolicy peers.
const INGRESS_NAMES: &[&str] =
    &["ingress-nginx", "realip", "traefik", "istio-ingressgateway", "envoy", "nginx-gateway"];

/// An argument (or a word of a `sh -c` script) and the line it is on.
#[derive(Clone, Copy, Debug)]
struct Word<'a> {
    text: &'a str,
    line: usize,
}

fn argv_lines(c: &Node) -> Vec<Word<'_>> {
    let nodes: Vec<&Node> =
        ["command", "args"].iter().flat_map(|k| c.get(k).map(Node::items).unwrap_or_default()).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < nodes.len() {
        let Some(text) = nodes[i].as_str() else {
            i += 1;
            continue;
        };
        let shell = text.rsplit('/').next().is_some_and(|b| matches!(b, "sh" | "bash" | "ash" | "dash"));
        if shell && nodes.get(i + 1).and_then(|n| n.as_str()) == Some("-c") {
            if let Some(script) = nodes.get(i + 2) {
                let line = script.line;
                out.extend(script.as_str().unwrap_or_default().split_whitespace().map(|t| Word { text: t, line }));
            }
            i += 3;
            continue;
        }
        out.push(Word { text, line: nodes[i].line });
        i += 1;
    }
    out
}

/// What runs: `uvicorn`, `gunicorn (uvicorn worker)`, `hypercorn`, or None.
fn server(argv: &[Word]) -> Option<&'static str> {
    fn base<'a>(w: &Word<'a>) -> &'a str {
        w.text.rsplit('/').next().unwrap_or(w.text).trim_matches(['"', '\'', ';', '&'])
    }
    if argv.iter().any(|w| base(w) == "uvicorn") {
        return Some("uvicorn");
    }
    if argv.iter().any(|w| base(w) == "gunicorn") {
        return argv.iter().any(|w| w.text.contains("uvicorn.workers")).then_some("gunicorn (uvicorn worker)");
    }
    argv.iter().any(|w| base(w) == "hypercorn").then_some("hypercorn")
}

/// `--forwarded-allow-ips` (or the env) value and where it is set.
fn trust<'a>(c: &'a Node, o: &Object, argv: &[Word<'a>]) -> Option<(String, Place)> {
    let place = |line| Place { object: o.id(), file: o.source.file.clone(), line };
    for (i, w) in argv.iter().enumerate().rev() {
        if let Some(v) = w.text.strip_prefix("--forwarded-allow-ips=") {
            return Some((v.trim_matches(['"', '\'']).to_owned(), place(w.line)));
        }
        if w.text == "--forwarded-allow-ips" {
            let v = argv.get(i + 1).map_or("", |n| n.text);
            return Some((v.trim_matches(['"', '\'']).to_owned(), place(w.line)));
        }
    }
    c.get("env").map(Node::items).unwrap_or_default().iter().find_map(|e| {
        let name = e.str_at(&["name"])?;
        (name == "FORWARDED_ALLOW_IPS" || name == "UVICORN_FORWARDED_ALLOW_IPS")
            .then(|| (format!("{} ({name})", e.str_at(&["value"]).unwrap_or_default().trim()), place(e.line)))
    })
}

/// Whether a NetworkPolicy in the workload's namespace selects its pods and
/// admits traffic only from ingress controller pods.
fn only_ingress_may_reach(o: &Object, ix: &Index) -> bool {
    let pod_labels = model::pod_labels(o);
    ix.kind_in("NetworkPolicy", &o.namespace).iter().any(|p| {
        let selects =
            p.doc.at(&["spec", "podSelector", "matchLabels"]).is_some_and(|sel| model::labels_match(sel, pod_labels));
        let rules = p.doc.at(&["spec", "ingress"]).map(Node::items).unwrap_or_default();
        let from_ingress_only = !rules.is_empty()
            && rules.iter().all(|r| {
                let from = r.get("from").map(Node::items).unwrap_or_default();
                !from.is_empty()
                    && from.iter().all(|f| {
                        let pods =
                            f.at(&["podSelector", "matchLabels"]).and_then(|m| m.str_at(&["app.kubernetes.io/name"]));
                        let ns = f
                            .at(&["namespaceSelector", "matchLabels"])
                            .and_then(|m| m.str_at(&["kubernetes.io/metadata.name"]));
                        pods.is_some_and(|n| INGRESS_NAMES.contains(&n))
                            || ns.is_some_and(|n| n.contains("ingress") || n.contains("gateway"))
                    })
            });
        selects && from_ingress_only
    })
}

/// The app rules for every workload.
pub fn check(ix: &Index, edges: &[Edge], out: &mut Vec<Finding>) {
    let full_xff: Vec<&Edge> = edges.iter().filter(|e| e.full_xff.as_ref().is_some_and(|f| f.value)).collect();
    for o in ix.workloads() {
        if edges.iter().any(|e| e.members.contains(&o.id())) {
            continue; // the controller itself
        }
        for c in model::containers(o) {
            let argv = argv_lines(c);
            let Some(server) = server(&argv) else { continue };
            let name = c.str_at(&["name"]).unwrap_or("?");
            let trust = trust(c, o, &argv);
            let no_proxy_headers = argv.iter().find(|w| w.text == "--no-proxy-headers");
            if let Some(w) = no_proxy_headers {
                let at = Place { object: o.id(), file: o.source.file.clone(), line: w.line };
                out.push(Finding::new(
                    "app-ignores-forwarded-headers",
                    &at,
                    format!("container `{name}` runs {server} with --no-proxy-headers: behind the ingress, request.client.host is the ingress pod"),
                    "--proxy-headers --forwarded-allow-ips=<ingress pod CIDR> (the seed guide: \"10.0.0.0/8,127.0.0.1\")".into(),
                ));
                continue;
            }
            let Some((value, at)) = trust else {
                let at = Place::of(o, &["spec", "template", "spec", "containers"]);
                let at = argv.first().map_or(at.clone(), |w| Place { line: w.line, ..at });
                out.push(Finding::new(
                    "app-ignores-forwarded-headers",
                    &at,
                    format!("container `{name}` runs {server} without --forwarded-allow-ips (it trusts only 127.0.0.1): behind the ingress, request.client.host is the ingress pod"),
                    "--proxy-headers --forwarded-allow-ips=<ingress pod CIDR> (the seed guide: \"10.0.0.0/8,127.0.0.1\"), or FORWARDED_ALLOW_IPS in env".into(),
                ));
                continue;
            };
            if !value.split([',', ' ']).any(|v| v.trim() == "*") {
                continue;
            }
            for e in &full_xff {
                let f = e.full_xff.as_ref().expect("filtered");
                out.push(Finding::new(
                    "full-xff-leftmost-app",
                    &at,
                    format!("container `{name}` trusts `*` and takes the leftmost X-Forwarded-For entry, while {} passes the client's own entries through ({} at {}:{})", e.controller.name(), f.key, f.at.file, f.at.line),
                    e.fix("full-xff-leftmost-app", None),
                ));
            }
            let exposed: Vec<&Object> = ix
                .kind_in("Service", &o.namespace)
                .iter()
                .copied()
                .filter(|s| {
                    matches!(s.doc.str_at(&["spec", "type"]), Some("NodePort" | "LoadBalancer"))
                        && model::selected_by(s, model::pod_labels(o))
                })
                .collect();
            let fenced = only_ingress_may_reach(o, ix);
            let (severity, why) = match (exposed.first(), fenced) {
                (None, true) => continue, // `*` is then what the seed guide allows
                (None, false) => (Severity::Warning, String::new()),
                (Some(s), false) => (Severity::Error, format!(" and is reachable from outside the cluster through {} Service {}", s.doc.str_at(&["spec", "type"]).unwrap_or_default(), s.name)),
                (Some(s), true) => (Severity::Warning, format!(" behind {} Service {}: the NetworkPolicy admitting only the ingress does not fence that path (pods cannot block traffic from their own node, and NodePort traffic SNATed to the node passes)", s.doc.str_at(&["spec", "type"]).unwrap_or_default(), s.name)),
            };
            out.push(
                Finding::new(
                    "app-trusts-every-proxy",
                    &at,
                    format!("container `{name}` runs {server} with forwarded-allow-ips `{value}`{why}"),
                    "--forwarded-allow-ips=<ingress pod CIDR> (the seed guide uses \"10.0.0.0/8,127.0.0.1\"), and a ClusterIP Service for the app".into(),
                )
                .severity(severity),
            );
        }
    }
}
