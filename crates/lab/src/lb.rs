//! The cloud load balancer, reproduced two ways.
//!
//! - **Passthrough** (NLB-like): nftables in the `lb` namespace DNATs new
//!   connections for the VIP to a node's NodePort, picked at random among
//!   the nodes the health checker considers healthy. The client address is
//!   kept. The health checker polls each node's health-check port every
//!   `interval`; a node changes state after `healthy_threshold` /
//!   `unhealthy_threshold` consecutive results. With no healthy node the LB
//!   fails open to all nodes (what AWS NLB does). `ignore_health` sends to
//!   every node whatever the checks say: the misconfiguration where the LB
//!   checks the wrong port or nothing at all.
//! - **Proxying**: `realip proxy` in L4 mode on the VIP, opening a new
//!   connection to a node per client connection and sending PROXY v2 first.
//!
//! What the LB saw is measured, not assumed: a dynamic nftables set records
//! the source address of every new connection to the VIP (with a counter),
//! or the L4 proxy's access log names the peer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::error::Result;
use crate::netns::Netns;
use crate::topo::{LB_PORT, NODE_PORT, VIP};

/// Health-check settings of the passthrough LB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// Port checked on each node (`healthCheckNodePort`, or kube-proxy's 10256).
    pub port: u16,
    /// Time between checks.
    pub interval: Duration,
    /// Consecutive successes to become healthy.
    pub healthy_threshold: u32,
    /// Consecutive failures to become unhealthy.
    pub unhealthy_threshold: u32,
    /// Send to every node regardless (the misconfiguration).
    pub ignore: bool,
}

const TABLE: &str = "rlab_lb";
const SEEN_TABLE: &str = "rlab_lb_seen";

/// The table that records who connects to the VIP (never replaced).
pub fn seen_ruleset() -> String {
    format!(
        "table ip {SEEN_TABLE} {{\n  set seen {{ type ipv4_addr; flags dynamic; size 65535; counter; }}\n  \
         chain prerouting {{\n    type filter hook prerouting priority -110; policy accept;\n    \
         ip daddr {VIP} tcp dport {LB_PORT} ct state new update @seen {{ ip saddr }}\n  }}\n}}\n"
    )
}

/// The DNAT table for the given target nodes.
pub fn dnat_ruleset(targets: &[Ipv4Addr]) -> String {
    let mut rule = String::new();
    match targets {
        [] => {
            let _ = write!(rule, "reject with tcp reset");
        }
        [one] => {
            let _ = write!(rule, "dnat to {one}:{NODE_PORT}");
        }
        many => {
            let _ = write!(rule, "dnat to numgen random mod {} map {{ ", many.len());
            for (i, ip) in many.iter().enumerate() {
                let _ = write!(rule, "{}{i} : {ip}", if i > 0 { ", " } else { "" });
            }
            let _ = write!(rule, " }}:{NODE_PORT}");
        }
    }
    let hook = if targets.is_empty() { "filter" } else { "nat" };
    format!(
        "table ip {TABLE} {{}}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n  chain prerouting {{\n    \
         type {hook} hook prerouting priority -100; policy accept;\n    ip daddr {VIP} tcp dport {LB_PORT} {rule}\n  }}\n}}\n"
    )
}

/// Source addresses of new connections the LB saw, with their counts.
pub fn seen(lb: &Netns) -> BTreeMap<IpAddr, u64> {
    let mut out = BTreeMap::new();
    let Ok(json) = lb.exec(&["nft", "-j", "list", "set", "ip", SEEN_TABLE, "seen"]) else { return out };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&json) else { return out };
    let elems = v["nftables"]
        .as_array()
        .and_then(|a| a.iter().find_map(|o| o["set"]["elem"].as_array().cloned()))
        .unwrap_or_default();
    for e in elems {
        let (ip, n) = (e["elem"]["val"].as_str(), e["elem"]["counter"]["packets"].as_u64());
        if let (Some(Ok(ip)), Some(n)) = (ip.map(str::parse::<IpAddr>), n) {
            out.insert(ip, n);
        }
    }
    out
}

/// Forgets the sources recorded so far (between two measurements).
pub fn reset_seen(lb: &Netns) {
    let _ = lb.exec(&["nft", "flush", "set", "ip", SEEN_TABLE, "seen"]);
}

/// One health-check probe: an HTTP GET to `node:port`, healthy on 200.
pub async fn probe(node: Ipv4Addr, port: u16, timeout: Duration) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect((node, port)).await.ok()?;
        s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {node}:{port}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut head = [0u8; 16];
        let mut got = 0;
        while got < head.len() {
            match s.read(&mut head[got..]).await.ok()? {
                0 => break,
                n => got += n,
            }
        }
        Some(head.get(9..12) == Some(b"200".as_slice()))
    };
    tokio::time::timeout(timeout, attempt).await.ok().flatten().unwrap_or(false)
}

/// A check's timeout: 1 s, whatever the interval (a loaded machine must not
/// fail healthy nodes; an unhealthy node answers 503 at once).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// One round of checks, all nodes at once.
async fn probe_all(nodes: &[Ipv4Addr], port: u16) -> Vec<bool> {
    let handles: Vec<_> = nodes.iter().map(|n| tokio::spawn(probe(*n, port, PROBE_TIMEOUT))).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap_or(false));
    }
    out
}

/// The health checker's view of the nodes.
#[derive(Debug)]
pub struct LbState {
    /// Per node: healthy now?
    pub healthy: Vec<bool>,
    /// Per node: consecutive results against the current state.
    streak: Vec<u32>,
    /// Number of rule changes applied.
    pub changes: usize,
}

/// Which nodes get traffic.
pub fn targets(nodes: &[Ipv4Addr], healthy: &[bool], hc: &HealthCheck) -> Vec<Ipv4Addr> {
    let up: Vec<Ipv4Addr> = nodes.iter().zip(healthy).filter(|(_, h)| **h).map(|(n, _)| *n).collect();
    if hc.ignore || up.is_empty() {
        nodes.to_vec() // ignoring checks, or failing open
    } else {
        up
    }
}

/// Runs the passthrough LB: an initial round of checks decides each node's
/// state, the rules are loaded, then checks repeat every interval and the
/// rules follow the thresholds. Runs until dropped; meant for the lb's
/// namespace runtime. `ready` is told once the first rules are in.
pub async fn run_passthrough(
    lb_name: String,
    nodes: Vec<Ipv4Addr>,
    hc: HealthCheck,
    state: Arc<Mutex<LbState>>,
    ready: tokio::sync::oneshot::Sender<Result<()>>,
) {
    let healthy = probe_all(&nodes, hc.port).await;
    let apply = |t: &[Ipv4Addr]| {
        crate::netns::sh_async(
            ["ip", "netns", "exec", &lb_name, "nft", "-f", "-"].map(str::to_owned).to_vec(),
            Some(dnat_ruleset(t)),
        )
    };
    let mut current = targets(&nodes, &healthy, &hc);
    let first = apply(&current).await.map(drop);
    if let Ok(mut s) = state.lock() {
        s.healthy.clone_from(&healthy);
        s.streak = vec![0; nodes.len()];
    }
    let _ = ready.send(first);
    let mut tick = tokio::time::interval(hc.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let results = probe_all(&nodes, hc.port).await;
        let next = {
            let Ok(mut s) = state.lock() else { return };
            for (i, ok) in results.into_iter().enumerate() {
                if ok == s.healthy[i] {
                    s.streak[i] = 0;
                    continue;
                }
                s.streak[i] += 1;
                let need = if ok { hc.healthy_threshold } else { hc.unhealthy_threshold };
                if s.streak[i] >= need.max(1) {
                    s.healthy[i] = ok;
                    s.streak[i] = 0;
                }
            }
            targets(&nodes, &s.healthy, &hc)
        };
        if next != current && apply(&next).await.is_ok() {
            current = next;
            if let Ok(mut s) = state.lock() {
                s.changes += 1;
            }
        }
    }
}

impl LbState {
    /// Nothing known yet.
    pub fn new(nodes: usize) -> LbState {
        LbState { healthy: vec![false; nodes], streak: vec![0; nodes], changes: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_health_fail_open_and_ignore() {
        let nodes = [Ipv4Addr::new(192, 0, 2, 11), Ipv4Addr::new(192, 0, 2, 12), Ipv4Addr::new(192, 0, 2, 13)];
        let hc = HealthCheck {
            port: 32000,
            interval: Duration::from_millis(100),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
            ignore: false,
        };
        assert_eq!(targets(&nodes, &[true, false, true], &hc), [nodes[0], nodes[2]]);
        assert_eq!(targets(&nodes, &[false, false, false], &hc), nodes, "fails open");
        assert_eq!(targets(&nodes, &[true, false, false], &HealthCheck { ignore: true, ..hc }), nodes);
    }

    #[test]
    fn rules_name_the_vip_and_node_ports() {
        let r = dnat_ruleset(&[Ipv4Addr::new(192, 0, 2, 11), Ipv4Addr::new(192, 0, 2, 12)]);
        assert!(
            r.contains("ip daddr 192.0.2.200 tcp dport 80 dnat to numgen random mod 2 map { 0 : 192.0.2.11, 1 : 192.0.2.12 }:30080"),
            "{r}"
        );
        assert!(seen_ruleset().contains("update @seen { ip saddr }"));
    }
}
