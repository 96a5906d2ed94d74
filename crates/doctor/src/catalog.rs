//! The rule catalogue: every rule the doctor can report, with its id,
//! default severity, one-line title, why it matters, a generic fix and its
//! anchor in `docs/doctor.md`. Findings take `why` from here and SARIF takes
//! its rule descriptions from here, so one rule reads the same everywhere.
//!
//! Invariant: every id a finding uses is in [`RULES`] (a unit test checks
//! the ids used in the sources), ids are unique and never renamed (SARIF
//! consumers key on them).

use crate::finding::Severity;

/// One rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable id, e.g. `ingress-etp-cluster`.
    pub id: &'static str,
    /// Default severity (a few rules lower or raise it with the context, said in `why`).
    pub severity: Severity,
    /// One line: what the rule finds.
    pub title: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// The fix in general terms (findings print the controller's own).
    pub fix: &'static str,
}

impl Rule {
    /// The anchor of the rule's section in `docs/doctor.md`.
    pub fn anchor(&self) -> String {
        format!("docs/doctor.md#{}", self.id)
    }
}

const E: Severity = Severity::Error;
const W: Severity = Severity::Warning;

macro_rules! rules {
    ($(($id:literal, $sev:expr, $title:literal, $why:literal, $fix:literal)),* $(,)?) => {
        /// Every rule, in the order `docs/doctor.md` documents them.
        pub const RULES: &[Rule] = &[$(Rule { id: $id, severity: $sev, title: $title, why: $why, fix: $fix }),*];
    };
}

rules![
    ("ingress-etp-cluster", E, "the ingress Service loses the client IP to SNAT (externalTrafficPolicy: Cluster, no PROXY protocol)",
     "With Cluster, kube-proxy may forward to a pod on another node and masquerades the source: the ingress sees a node address, so logs, rate limits and allowlists act on the node.",
     "externalTrafficPolicy: Local on the controller's LoadBalancer/NodePort Service, or PROXY protocol on both sides"),
    ("lb-ip-target-client-ip-lost", E, "an AWS NLB with IP targets neither preserves the client IP nor sends PROXY v2",
     "With nlb-target-type: ip the NLB connects to the pod itself; externalTrafficPolicy does not matter. The source is the NLB's own address unless the target group has preserve_client_ip.enabled=true or PROXY protocol v2 carries the client.",
     "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes: preserve_client_ip.enabled=true (or proxy_protocol_v2.enabled=true with PROXY on the controller)"),
    ("lb-l7-forwarded-headers-ignored", E, "an L7 load balancer is in front but the controller ignores X-Forwarded-For",
     "An HTTP load balancer (AWS ELB/ALB in HTTP mode, GCE or Azure application gateways, DO/Hetzner/Scaleway HTTP mode) opens its own connection: the client is only in X-Forwarded-For, which the controller does not read, so every request comes from the load balancer.",
     "read X-Forwarded-For from the load balancer's CIDRs only"),
    ("forwarded-headers-from-everyone", E, "forwarded headers are believed from every peer",
     "Every peer's X-Forwarded-For is then believed: a client sends `X-Forwarded-For: 1.2.3.4` and becomes 1.2.3.4 in logs, rate limits and allowlists.",
     "trust forwarded headers only from the load balancer / CDN ranges"),
    ("proxy-protocol-from-everyone", E, "PROXY protocol headers are accepted from every peer",
     "Whoever can reach the port can send a PROXY header naming any source address.",
     "accept PROXY headers only from the load balancer's addresses"),
    ("trusted-cidr-invalid", E, "a trusted-proxy list holds something that is not a CIDR or address",
     "The controller rejects the setting or, worse, drops the bad entry silently: the proxies meant to be trusted are not, and the load balancer's address is logged as the client.",
     "write CIDRs (`10.0.0.0/8`, `2001:db8::/32`) or addresses, comma-separated"),
    ("hops-mismatch", W, "the trusted hop count does not match the proxies in front",
     "A hop count counts X-Forwarded-For entries from the right. Too low and the client is replaced by a proxy; too high and the entry taken is one the client wrote, so it can choose its IP.",
     "set the trusted hop count to the number of HTTP proxies in front (1 behind one L7 load balancer, 0 behind an L4 one)"),
    ("proxy-protocol-mismatch", E, "PROXY protocol is on at one end only",
     "A PROXY header read as HTTP is a bad request, and a controller waiting for a header that never comes rejects every connection: all requests fail.",
     "turn PROXY protocol on (or off) at the load balancer and the controller together"),
    ("hairpin-proxy-protocol", W, "PROXY protocol is on and in-cluster clients of the load balancer's IP bypass it",
     "kube-proxy routes traffic for a LoadBalancer IP from inside the cluster straight to the pods: those connections arrive without the PROXY header the controller requires, and fail.",
     "publish the load balancer by hostname (the cloud's hostname annotation) or use ipMode: Proxy"),
    ("healthcheck-traffic-port", W, "externalTrafficPolicy: Local but the load balancer health check is pointed elsewhere",
     "With Local, nodes without a ready pod drop traffic; only healthCheckNodePort tells the load balancer which nodes those are. Checking another port keeps sending traffic to them.",
     "remove the health-check port annotation so the load balancer uses healthCheckNodePort"),
    ("dual-stack-one-family-trusted", W, "a dual-stack Service whose trusted proxy CIDRs cover one family only",
     "Requests arriving over the other family come through proxies that are not trusted: their forwarded headers are ignored and the proxy's address is logged as the client.",
     "add the load balancer's ranges of the other family"),
    ("etp-without-effect", W, "externalTrafficPolicy on a Service where it does nothing",
     "externalTrafficPolicy only applies to traffic entering through a NodePort or LoadBalancer; the client IP is decided at the ingress Service, not at the app's ClusterIP Service.",
     "set externalTrafficPolicy: Local on the controller's LoadBalancer Service instead"),
    ("ingress-single-replica", W, "the controller runs one replica",
     "One replica is one node: a rollout or node drain leaves no ready pod, and with Local only nodes with a ready pod serve.",
     "run at least 2 replicas (3 across nodes), or a DaemonSet"),
    ("ingress-no-spread", W, "the controller's pods are not spread over nodes",
     "With Local, traffic per node follows pod placement: pods packed on one node leave other nodes without an endpoint and make the spread uneven.",
     "topologySpreadConstraints with maxSkew: 1 on kubernetes.io/hostname (or podAntiAffinity)"),
    ("ingress-no-pdb", W, "no PodDisruptionBudget covers the controller's pods",
     "Node drains can evict every controller pod of a node (or of the cluster) at once; with Local, nodes without a pod drop traffic. (DaemonSet pods are not evicted by drains and need none.)",
     "a PodDisruptionBudget with maxUnavailable: 1 selecting the controller's pods"),
    ("rollout-max-unavailable", W, "a rolling update can remove a node's only controller pod before its replacement is ready",
     "With Local, a node without a ready controller pod drops the traffic the load balancer still sends it.",
     "rollingUpdate: {maxUnavailable: 0, maxSurge: 1} (DaemonSet: maxSurge: 1, maxUnavailable: 0)"),
    ("rollout-no-drain", W, "the controller's pods have no preStop drain while the Service uses Local",
     "During a rollout a node can lose its only controller pod before the load balancer's health check notices: connections to that node fail until it does.",
     "a preStop that waits longer than the health-check interval × unhealthy threshold, and a terminationGracePeriodSeconds above it"),
    ("grace-shorter-than-drain", W, "terminationGracePeriodSeconds is not longer than the preStop wait",
     "The kubelet kills the pod when the grace period ends: the drain is cut and in-flight requests fail.",
     "terminationGracePeriodSeconds above the preStop wait plus the longest request"),
    ("app-trusts-every-proxy", E, "an app trusts X-Forwarded-For from every peer (`*`)",
     "With `*` uvicorn takes the leftmost X-Forwarded-For entry, which any client writes; it is only safe when nothing but the ingress can reach the app. A NetworkPolicy does not fence NodePort/LoadBalancer traffic: pods cannot block traffic from their own node, and NodePort traffic SNATed to that node passes. Error when a NodePort/LoadBalancer Service exposes the app, warning otherwise.",
     "--forwarded-allow-ips=<ingress pod CIDR> (e.g. \"10.0.0.0/8,127.0.0.1\")"),
    ("app-ignores-forwarded-headers", W, "an app behind the ingress does not read X-Forwarded-For from it",
     "uvicorn reads X-Forwarded-For only from --forwarded-allow-ips (default 127.0.0.1); the ingress connects from its pod IP, so the app logs and limits the ingress, not the client.",
     "--proxy-headers --forwarded-allow-ips=<ingress pod CIDR>"),
    ("full-xff-leftmost-app", W, "the controller passes the whole X-Forwarded-For chain to an app that takes its leftmost entry",
     "With compute-full-forwarded-for the controller appends to the client's own X-Forwarded-For instead of replacing it; an app trusting `*` takes the leftmost entry, which the client wrote.",
     "make the app trust only the controller (a CIDR in --forwarded-allow-ips: it then takes the rightmost untrusted entry), or turn compute-full-forwarded-for off"),
    ("probe-on-proxy-port", E, "a kubelet probe targets a port that requires PROXY protocol",
     "The kubelet does not send PROXY headers: the probe always fails and the pod never becomes ready (or is restarted).",
     "probe the admin port (/readyz, /healthz), which never requires PROXY"),
    ("cilium-validate", W, "Cilium keeps the client IP without externalTrafficPolicy: Local: the Local checks are skipped",
     "The usual Local advice assumes kube-proxy; with Cilium's kube-proxy replacement in DSR mode, or its ingress/gateway, the source IP path is different and must be validated as Cilium documents it.",
     "verify with `realip doctor --probe http://<lb>/debug/ip --expect-client <your IP>`"),
    ("cilium-dsr-vxlan", E, "Cilium is configured for DSR with VXLAN tunnelling, which it does not support",
     "Cilium's DSR needs native routing (or Geneve DSR dispatch); with VXLAN tunnelling it does not do DSR, so the client IP is not kept the DSR way and the Local advice applies again.",
     "routing-mode: native (or tunnel-protocol: geneve with bpf-lb-dsr-dispatch: geneve), or keep SNAT mode and use externalTrafficPolicy: Local"),
    ("custom-header-fail-open", W, "the client IP is taken from a custom header without failClosed",
     "When the header is missing Envoy falls back to the peer address, so requests that bypass the CDN or load balancer writing the header are attributed to whoever connects.",
     "clientIPDetection.customHeader.failClosed: true"),
    ("client-policy-without-client-ip", E, "an allowlist or rate limit keyed on the client IP while the gateway does not know it",
     "Without client IP detection (X-Forwarded-For trust, a custom header or PROXY protocol) and without a source-preserving Service, the address these policies see is the load balancer's or a node's: one client's limit is everyone's, and an allowlist admits or denies everyone at once.",
     "configure client IP detection for the gateway, or keep the source (externalTrafficPolicy: Local)"),
    ("realip-config-invalid", E, "a realip.toml in a ConfigMap does not parse",
     "realip refuses a config it cannot parse: the pod keeps its old config or does not start, and the doctor cannot judge its client-IP settings.",
     "run `realip proxy --config realip.toml --check` and fix what it names"),
    ("yaml-duplicate-key", W, "a key is written twice in one mapping",
     "Tools disagree on which value wins (the doctor, like JSON decoders, keeps the last; strict YAML parsers reject the file): what is applied may not be what was reviewed.",
     "write each key once"),
    ("local-no-healthcheck-port", E, "externalTrafficPolicy: Local but the Service has no healthCheckNodePort",
     "Without it the load balancer cannot tell which nodes have a ready pod, and sends traffic to nodes that drop it.",
     "recreate the Service as type LoadBalancer so Kubernetes allocates one"),
    ("ingress-node-without-pod", W, "some ready nodes have no ready controller pod",
     "With Local only nodes with a ready controller pod serve; the load balancer must skip the others (health check) and the rest carry all traffic.",
     "spread the controller over all nodes (topologySpreadConstraints, more replicas) or run it as a DaemonSet"),
    ("ingress-uneven-spread", W, "controller pods are unevenly spread over nodes",
     "The load balancer balances nodes, not pods: a node with one pod gives that pod as much traffic as a node with several gives all of its pods together.",
     "spread controller pods evenly (maxSkew: 1 on kubernetes.io/hostname) or use a DaemonSet"),
    ("probe-client-ip-lost", E, "the probed endpoint sees another address than ours",
     "Something between us and the app replaced the client address: SNAT (externalTrafficPolicy: Cluster), or a proxy whose address is not trusted by the next hop.",
     "follow the chain hop by hop with `realip doctor` on the manifests; the lab reproduces each case"),
    ("probe-client-ip-internal", W, "the probed endpoint sees a private address for us",
     "Real clients come from public addresses; a private one usually means a hop replaced the client.",
     "pass --expect-client with your public address to make this an exact check"),
    ("probe-forged-header-believed", E, "a forged forwarding header was believed",
     "Any client can then choose its IP: rate limits, allowlists and audit logs are bypassed.",
     "trust forwarded headers only from your proxies' CIDRs (proxy-real-ip-cidr, [client_ip] trusted, --forwarded-allow-ips)"),
    ("probe-forged-proxy-believed", E, "a forged PROXY header was believed",
     "PROXY headers must only be accepted from the load balancer's addresses.",
     "restrict who may send PROXY headers (realip proxy_protocol_from; for ingress-nginx, make the ingress unreachable except through the load balancer)"),
];

/// The rule with `id`.
///
/// # Panics
/// On an id that is not in [`RULES`]: a programming error the unit test
/// below catches for every id in the sources.
pub fn rule(id: &str) -> &'static Rule {
    RULES.iter().find(|r| r.id == id).unwrap_or_else(|| panic!("rule `{id}` is not in the catalogue"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_id_used_in_the_sources_is_catalogued() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate ids");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![];
        for e in std::fs::read_dir(&dir).unwrap().chain(std::fs::read_dir(dir.join("controllers")).unwrap()) {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("catalog.rs") {
                files.push(p);
            }
        }
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, _) in text.match_indices("rule: \"").chain(text.match_indices("Finding::new(\"")) {
                let rest = &text[i..];
                let start = rest.find('"').unwrap() + 1;
                let id = &rest[start..start + rest[start..].find('"').unwrap()];
                assert!(RULES.iter().any(|r| r.id == id), "{}: `{id}` not catalogued", f.display());
            }
        }
        for r in RULES {
            assert!(!r.why.is_empty() && !r.fix.is_empty() && !r.title.is_empty(), "{}", r.id);
        }
    }
}

#[cfg(test)]
mod docs {
    /// docs/doctor.md documents every rule at the anchor findings link to.
    #[test]
    fn every_rule_has_its_section() {
        let doc =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/doctor.md"))
                .unwrap();
        for r in super::RULES {
            assert!(doc.contains(&format!("<a id=\"{}\"></a>", r.id)), "docs/doctor.md has no anchor for {}", r.id);
        }
    }
}
