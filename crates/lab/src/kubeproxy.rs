//! kube-proxy, reproduced: endpoints with their conditions, the nftables
//! rules a node gets for a NodePort Service and a ClusterIP Service, and
//! the `healthCheckNodePort` server.
//!
//! The rules follow kube-proxy's documented behaviour:
//! - `Cluster`: traffic to the NodePort is DNATed to any endpoint in the
//!   cluster (uniformly at random, `numgen`) and masqueraded, so the pod
//!   sees a node address;
//! - `Local`: only endpoints on this node are used and the source is kept;
//!   with none, the traffic is dropped;
//! - endpoint choice (KEP-1669): ready endpoints; when none is ready,
//!   endpoints that are terminating but still serving; else none;
//! - the health check answers 200 with `localEndpoints` when the node has
//!   ready local endpoints, 503 otherwise (terminating ones do not count,
//!   so load balancers stop sending new connections to a node whose pods
//!   are shutting down while those pods still get the traffic in flight).
//!
//! Rules are rendered as one ruleset that replaces the node's table in a
//! single `nft -f` transaction, so a change never leaves a half-written
//! table; established connections keep their conntrack NAT mapping.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::topo::{APP_CLUSTER_IP, APP_PORT, NODE_PORT, POD_PORT};

/// `externalTrafficPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Any endpoint, source NATed to the node.
    Cluster,
    /// Node-local endpoints only, source kept.
    Local,
}

/// One EndpointSlice entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Pod name.
    pub pod: String,
    /// Pod address.
    pub ip: Ipv4Addr,
    /// Index of the pod's node.
    pub node: usize,
    /// `conditions.serving`: the pod's readiness, whether or not it is terminating.
    pub serving: bool,
    /// `conditions.terminating`.
    pub terminating: bool,
}

impl Endpoint {
    /// `conditions.ready`: serving and not terminating.
    pub fn ready(&self) -> bool {
        self.serving && !self.terminating
    }
}

/// The endpoints traffic may use, restricted to `node` when given:
/// ready ones, else terminating-but-serving ones (KEP-1669).
pub fn usable(eps: &[Endpoint], node: Option<usize>) -> Vec<&Endpoint> {
    let here = |e: &&Endpoint| node.is_none_or(|n| e.node == n);
    let ready: Vec<&Endpoint> = eps.iter().filter(here).filter(|e| e.ready()).collect();
    if !ready.is_empty() {
        return ready;
    }
    eps.iter().filter(here).filter(|e| e.serving && e.terminating).collect()
}

/// Ready endpoints on `node`: what the health check reports.
pub fn local_ready(eps: &[Endpoint], node: usize) -> usize {
    eps.iter().filter(|e| e.node == node && e.ready()).count()
}

/// The nftables table kube-proxy owns on a node.
pub const TABLE: &str = "rlab_kube_proxy";
const MASQ_MARK: &str = "0x4000";

fn dnat_to(out: &mut String, eps: &[&Endpoint], port: u16) {
    if let [only] = eps {
        let _ = write!(out, "dnat to {}:{port}", only.ip);
        return;
    }
    let _ = write!(out, "dnat to numgen random mod {} map {{ ", eps.len());
    for (i, e) in eps.iter().enumerate() {
        let _ = write!(out, "{}{i} : {}", if i > 0 { ", " } else { "" }, e.ip);
    }
    let _ = write!(out, " }}:{port}");
}

/// The node's ruleset for the ingress NodePort Service (`ingress`, with
/// `policy`) and the app ClusterIP Service (`app`, always `Cluster`-like
/// internal traffic, not masqueraded).
pub fn node_ruleset(node: usize, node_ip: Ipv4Addr, policy: Policy, ingress: &[Endpoint], app: &[Endpoint]) -> String {
    let mut nat = String::new();
    let mut filter = String::new();
    // ClusterIP: pod-to-service traffic, any ready endpoint, source kept.
    let app_eps = usable(app, None);
    if app_eps.is_empty() {
        let _ = writeln!(filter, "    ip daddr {APP_CLUSTER_IP} tcp dport {APP_PORT} reject with tcp reset");
    } else {
        let _ = write!(nat, "    ip daddr {APP_CLUSTER_IP} tcp dport {APP_PORT} ");
        dnat_to(&mut nat, &app_eps, POD_PORT);
        nat.push('\n');
    }
    // NodePort.
    let (eps, masq) = match policy {
        Policy::Cluster => (usable(ingress, None), true),
        Policy::Local => (usable(ingress, Some(node)), false),
    };
    if eps.is_empty() {
        // Cluster with no endpoint anywhere: rejected. Local with no local
        // endpoint: dropped, which is what makes a health check necessary.
        let verdict = if policy == Policy::Local { "drop" } else { "reject with tcp reset" };
        let _ = writeln!(filter, "    ip daddr {node_ip} tcp dport {NODE_PORT} {verdict}");
    } else {
        let _ = write!(nat, "    ip daddr {node_ip} tcp dport {NODE_PORT} ");
        if masq {
            let _ = write!(nat, "meta mark set {MASQ_MARK} ");
        }
        dnat_to(&mut nat, &eps, POD_PORT);
        nat.push('\n');
    }
    format!(
        "table ip {TABLE} {{}}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n  \
         chain filter_prerouting {{\n    type filter hook prerouting priority -110; policy accept;\n    \
         ct state established,related accept\n{filter}  }}\n  \
         chain nat_prerouting {{\n    type nat hook prerouting priority -100; policy accept;\n{nat}  }}\n  \
         chain nat_output {{\n    type nat hook output priority -100; policy accept;\n{nat}  }}\n  \
         chain nat_postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n    \
         meta mark {MASQ_MARK} masquerade\n  }}\n}}\n"
    )
}

/// What a node's health-check server answers from.
#[derive(Debug, Default)]
pub struct NodeHealth {
    /// Ready local endpoints of the ingress Service.
    pub local_endpoints: usize,
}

/// Serves the `healthCheckNodePort` on `listener` like kube-proxy: 200 with
/// `{"service": {...}, "localEndpoints": N, "serviceProxyHealthy": true}`
/// when the node has ready local endpoints, else 503 with the same body.
/// With `always_ok` it answers 200 as kube-proxy's own `/healthz` (port
/// 10256) does, which is what load balancers check for `Cluster` Services.
pub async fn serve_health(listener: TcpListener, state: Arc<Mutex<NodeHealth>>, service: String, always_ok: bool) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            // EMFILE and the like repeat at once: pause instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let state = Arc::clone(&state);
        let service = service.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let mut got = 0;
            // Read the request head, bounded in size and time.
            let read = tokio::time::timeout(Duration::from_secs(2), async {
                while got < buf.len() {
                    match s.read(&mut buf[got..]).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => got += n,
                    }
                    if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                        return true;
                    }
                }
                false
            })
            .await;
            if read != Ok(true) {
                return;
            }
            let n = state.lock().map_or(0, |h| h.local_endpoints);
            let healthy = always_ok || n > 0;
            let body = if always_ok {
                "{\"status\":\"ok\"}".to_owned()
            } else {
                let (ns, name) = service.split_once('/').unwrap_or(("default", &service));
                format!(
                    "{{\"service\":{{\"namespace\":\"{ns}\",\"name\":\"{name}\"}},\"localEndpoints\":{n},\"serviceProxyHealthy\":true}}"
                )
            };
            let status = if healthy { "200 OK" } else { "503 Service Unavailable" };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(pod: &str, last: u8, node: usize, serving: bool, terminating: bool) -> Endpoint {
        Endpoint { pod: pod.into(), ip: Ipv4Addr::new(198, 51, 100, last), node, serving, terminating }
    }

    #[test]
    fn ready_first_then_terminating_serving_then_nothing() {
        let eps = vec![ep("a", 130, 0, true, true), ep("b", 146, 1, true, false), ep("c", 131, 0, false, true)];
        let names = |v: Vec<&Endpoint>| v.iter().map(|e| e.pod.clone()).collect::<Vec<_>>();
        assert_eq!(names(usable(&eps, None)), ["b"]);
        assert_eq!(names(usable(&eps, Some(0))), ["a"], "node 0 has only a terminating-serving endpoint");
        assert_eq!(local_ready(&eps, 0), 0, "terminating endpoints do not make the health check pass");
        assert_eq!(local_ready(&eps, 1), 1);
        assert!(usable(&eps, Some(2)).is_empty());
    }

    #[test]
    fn local_drops_without_local_endpoints_and_cluster_masquerades() {
        let eps = vec![ep("a", 130, 0, true, false), ep("b", 146, 1, true, false)];
        let local = node_ruleset(2, Ipv4Addr::new(192, 0, 2, 13), Policy::Local, &eps, &eps);
        assert!(local.contains("ip daddr 192.0.2.13 tcp dport 30080 drop"), "{local}");
        assert!(!local.contains("mark set"), "{local}");
        let local0 = node_ruleset(0, Ipv4Addr::new(192, 0, 2, 11), Policy::Local, &eps, &eps);
        assert!(local0.contains("tcp dport 30080 dnat to 198.51.100.130:8080"), "{local0}");
        let cluster = node_ruleset(2, Ipv4Addr::new(192, 0, 2, 13), Policy::Cluster, &eps, &eps);
        assert!(
            cluster.contains(
                "tcp dport 30080 meta mark set 0x4000 dnat to numgen random mod 2 map { 0 : 198.51.100.130, 1 : 198.51.100.146 }:8080"
            ),
            "{cluster}"
        );
        assert!(cluster.contains("ip daddr 198.51.100.250 tcp dport 80 dnat to numgen random mod 2"), "{cluster}");
    }
}
