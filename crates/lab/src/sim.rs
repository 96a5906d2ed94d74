//! The simulator: traffic shares and rollout losses for clusters larger
//! than the lab can hold, from the same rules the lab reproduces.
//!
//! Model (documented in docs/lab.md):
//! - the load balancer spreads new connections evenly over its target
//!   nodes: with `Local` and honoured health checks, the nodes that have an
//!   ingress pod; otherwise every node;
//! - `Local`: a node's share is split evenly over its own pods; a target
//!   node without a pod drops its share;
//! - `Cluster`: kube-proxy spreads evenly over all pods (the node hop adds
//!   nothing but SNAT);
//! - placement: `hostname` spread puts each pod on a node with the fewest
//!   pods (maxSkew 1); `zone` balances zones and picks a random node inside
//!   the zone; `none` picks any node at random; a DaemonSet runs one pod per
//!   node. Random placements are averaged over 2,000 seeded trials;
//! - rolling update (maxSurge 1, maxUnavailable 0): each old pod is deleted
//!   once its replacement is ready. Deleting the last pod of a node under
//!   `Local` leaves that node in the LB until it fails `unhealthy_threshold`
//!   checks: on average `interval × threshold + interval / 2` after the
//!   deletion. The pod keeps serving for `drain_delay`; the rest of that
//!   window is lost for the node's share of traffic. The kubelet marking the
//!   draining pod not-serving is assumed slower than the LB (as in the lab:
//!   1.5 s against 0.5 s).

use std::fmt::Write as _;

use serde::Serialize;

use crate::error::{Error, Result};

/// Pod placement rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Spread {
    /// No constraint.
    None,
    /// `topologySpreadConstraints` on `kubernetes.io/hostname`, maxSkew 1.
    Hostname,
    /// On `topology.kubernetes.io/zone`.
    Zone,
}

/// Simulator input.
#[derive(Clone, Debug, Serialize)]
pub struct Params {
    /// Nodes.
    pub nodes: usize,
    /// Ingress replicas (ignored for a DaemonSet).
    pub replicas: usize,
    /// Placement rule.
    pub spread: Spread,
    /// Zones (nodes are assigned round-robin).
    pub zones: usize,
    /// `true` for `Local`.
    pub local: bool,
    /// One pod per node.
    pub daemonset: bool,
    /// The LB ignores health checks.
    pub ignore_health_checks: bool,
    /// Seconds between LB health checks.
    pub health_interval: f64,
    /// Failed checks before a node is taken out.
    pub unhealthy_threshold: u32,
    /// Seconds a deleted pod keeps serving.
    pub drain_delay: f64,
    /// Seconds from a pod's creation to ready.
    pub pod_ready: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            nodes: 3,
            replicas: 2,
            spread: Spread::Hostname,
            zones: 1,
            local: true,
            daemonset: false,
            ignore_health_checks: false,
            health_interval: 10.0,
            unhealthy_threshold: 3,
            drain_delay: 0.0,
            pod_ready: 5.0,
        }
    }
}

/// Simulator output.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The input.
    pub params: Params,
    /// Per pod share of traffic, sorted high to low (for random placements:
    /// the first trial's, as an example).
    pub pod_shares: Vec<f64>,
    /// Expected max/min pod share (infinite if a pod gets nothing).
    pub max_min_ratio: f64,
    /// Expected fraction of traffic dropped at nodes without pods.
    pub dropped_fraction: f64,
    /// Expected number of LB target nodes without an ingress pod.
    pub nodes_without_endpoint_in_lb: f64,
    /// Seconds of full traffic lost over one rolling update.
    pub rollout_lost_seconds: f64,
    /// The same, per replaced pod, in rollout order.
    pub rollout_lost_per_pod: Vec<f64>,
    /// Lost traffic over the rollout's duration.
    pub rollout_failed_fraction: f64,
    /// The rollout's duration, seconds.
    pub rollout_seconds: f64,
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        // xorshift64*: deterministic, good enough for placement trials.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

fn place(p: &Params, counts: &[usize], rng: &mut Rng) -> usize {
    match p.spread {
        Spread::None => rng.below(p.nodes),
        Spread::Hostname => (0..p.nodes).min_by_key(|n| (counts[*n], *n)).unwrap_or(0),
        Spread::Zone => {
            let zone_load = |z: usize| (0..p.nodes).filter(|n| n % p.zones == z).map(|n| counts[n]).sum::<usize>();
            let zone = (0..p.zones).min_by_key(|z| (zone_load(*z), *z)).unwrap_or(0);
            let members: Vec<usize> = (0..p.nodes).filter(|n| n % p.zones == zone).collect();
            members[rng.below(members.len())]
        }
    }
}

/// Per-pod shares and the dropped fraction for pods placed on `on`.
pub fn shares(p: &Params, on: &[usize]) -> (Vec<f64>, f64, usize) {
    let mut per_node = vec![0usize; p.nodes];
    for &n in on {
        per_node[n] += 1;
    }
    if !p.local {
        return (vec![1.0 / on.len().max(1) as f64; on.len()], 0.0, 0);
    }
    let targets: Vec<usize> = if p.ignore_health_checks {
        (0..p.nodes).collect()
    } else {
        let with: Vec<usize> = (0..p.nodes).filter(|n| per_node[*n] > 0).collect();
        if with.is_empty() {
            (0..p.nodes).collect() // fail open
        } else {
            with
        }
    };
    let node_share = 1.0 / targets.len() as f64;
    let empty = targets.iter().filter(|n| per_node[**n] == 0).count();
    let pods = on.iter().map(|n| if targets.contains(n) { node_share / per_node[*n] as f64 } else { 0.0 }).collect();
    (pods, empty as f64 * node_share, empty)
}

fn one_trial(p: &Params, rng: &mut Rng) -> (Vec<f64>, f64, usize, Vec<f64>) {
    let replicas = if p.daemonset { p.nodes } else { p.replicas };
    let mut counts = vec![0usize; p.nodes];
    let mut on = Vec::with_capacity(replicas);
    for i in 0..replicas {
        let n = if p.daemonset { i } else { place(p, &counts, rng) };
        counts[n] += 1;
        on.push(n);
    }
    let (sh, dropped, empty) = shares(p, &on);
    // Rolling update: replace each original pod in turn.
    let window = p.health_interval * f64::from(p.unhealthy_threshold) + p.health_interval / 2.0;
    let mut lost = Vec::with_capacity(replicas);
    for slot in &mut on {
        let n_old = *slot;
        let n_new = if p.daemonset { n_old } else { place(p, &counts, rng) };
        counts[n_new] += 1; // the surge pod, ready before the old one goes
        counts[n_old] -= 1; // the old pod is deleted
        let mut step = 0.0;
        if p.local && !p.ignore_health_checks && counts[n_old] == 0 {
            // Until the LB notices, it still targets n_old with the others.
            let targets = (0..p.nodes).filter(|n| counts[*n] > 0 || *n == n_old).count();
            step = (window - p.drain_delay).max(0.0) / targets as f64;
        }
        lost.push(step);
        *slot = n_new;
    }
    (sh, dropped, empty, lost)
}

/// Runs the model.
pub fn simulate(p: &Params) -> Result<Outcome> {
    if p.nodes == 0 || p.zones == 0 || p.zones > p.nodes || (!p.daemonset && p.replicas == 0) {
        return Err(Error::Invalid(
            "sim needs --nodes ≥ 1, --replicas ≥ 1 (or --daemonset) and 1 ≤ --zones ≤ --nodes".into(),
        ));
    }
    if p.health_interval <= 0.0 || p.unhealthy_threshold == 0 {
        return Err(Error::Invalid("--health-interval must be > 0 and --unhealthy-threshold ≥ 1".into()));
    }
    let random = !p.daemonset && p.spread != Spread::Hostname;
    let trials = if random { 2000 } else { 1 };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ratio, mut dropped, mut empty) = (0.0, 0.0, 0.0);
    let mut per_pod: Vec<f64> = Vec::new();
    let mut example = Vec::new();
    for t in 0..trials {
        let (sh, d, e, l) = one_trial(p, &mut rng);
        let max = sh.iter().copied().fold(0.0, f64::max);
        let min = sh.iter().copied().fold(f64::INFINITY, f64::min);
        ratio += if min > 0.0 { max / min } else { f64::INFINITY };
        dropped += d;
        empty += e as f64;
        per_pod.resize(l.len().max(per_pod.len()), 0.0);
        for (acc, x) in per_pod.iter_mut().zip(&l) {
            *acc += x;
        }
        if t == 0 {
            example = sh;
        }
    }
    let n = f64::from(trials);
    let per_pod: Vec<f64> = per_pod.into_iter().map(|x| x / n).collect();
    let lost: f64 = per_pod.iter().sum();
    example.sort_by(|a, b| b.total_cmp(a));
    let replicas = if p.daemonset { p.nodes } else { p.replicas } as f64;
    let step = p.pod_ready + p.drain_delay.max(p.health_interval * f64::from(p.unhealthy_threshold));
    let rollout_seconds = replicas * step;
    Ok(Outcome {
        params: p.clone(),
        pod_shares: example,
        max_min_ratio: ratio / n,
        dropped_fraction: dropped / n,
        nodes_without_endpoint_in_lb: empty / n,
        rollout_lost_seconds: lost,
        rollout_lost_per_pod: per_pod,
        rollout_failed_fraction: lost / rollout_seconds,
        rollout_seconds,
    })
}

/// Human-readable summary.
pub fn text(o: &Outcome) -> String {
    let p = &o.params;
    let mut out = String::new();
    let kind = if p.daemonset {
        "DaemonSet".to_owned()
    } else {
        format!(
            "{} replicas, spread {}",
            p.replicas,
            match p.spread {
                Spread::None => "none",
                Spread::Hostname => "hostname",
                Spread::Zone => "zone",
            }
        )
    };
    let _ = writeln!(
        out,
        "{} nodes ({} zones), {kind}, externalTrafficPolicy: {}, LB health checks {}",
        p.nodes,
        p.zones,
        if p.local { "Local" } else { "Cluster" },
        if p.ignore_health_checks { "ignored" } else { "honoured" }
    );
    let shares: Vec<String> = o.pod_shares.iter().map(|s| format!("{:.1}%", s * 100.0)).collect();
    let _ = writeln!(
        out,
        "  per-pod traffic share{}: {}",
        if p.spread == Spread::Hostname || p.daemonset { "" } else { " (one placement)" },
        shares.join(" ")
    );
    let _ = writeln!(out, "  max/min pod share: {:.2}×", o.max_min_ratio);
    let _ = writeln!(
        out,
        "  LB target nodes without an ingress pod: {:.2}; traffic dropped there: {:.1}%",
        o.nodes_without_endpoint_in_lb,
        o.dropped_fraction * 100.0
    );
    let _ = writeln!(
        out,
        "  rolling update (maxSurge 1): {:.2} s of full traffic lost over {:.0} s ({:.3}% of requests); checks every {} s × {}, drain_delay {} s",
        o.rollout_lost_seconds,
        o.rollout_seconds,
        o.rollout_failed_fraction * 100.0,
        p.health_interval,
        p.unhealthy_threshold,
        p.drain_delay
    );
    out
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact zeros and exact binary fractions
mod tests {
    use super::*;

    #[test]
    fn the_guide_s_uneven_example_is_25_25_50() {
        // Two pods on one node, one on another: per-node balancing.
        let p = Params { nodes: 2, replicas: 3, ..Params::default() };
        let o = simulate(&p).unwrap();
        assert_eq!(o.pod_shares, [0.5, 0.25, 0.25]);
        assert!((o.max_min_ratio - 2.0).abs() < 1e-9);
        assert_eq!(o.dropped_fraction, 0.0);
    }

    #[test]
    fn daemonset_and_cluster_are_even() {
        let o = simulate(&Params { nodes: 4, daemonset: true, ..Params::default() }).unwrap();
        assert!((o.max_min_ratio - 1.0).abs() < 1e-9);
        let o = simulate(&Params { nodes: 3, replicas: 5, local: false, spread: Spread::None, ..Params::default() })
            .unwrap();
        assert!((o.max_min_ratio - 1.0).abs() < 1e-9);
        assert_eq!(o.rollout_lost_seconds, 0.0, "Cluster: nodes keep forwarding during a rollout");
    }

    #[test]
    fn ignored_health_checks_drop_the_share_of_empty_nodes() {
        let o = simulate(&Params { nodes: 3, replicas: 2, ignore_health_checks: true, ..Params::default() }).unwrap();
        assert!((o.dropped_fraction - 1.0 / 3.0).abs() < 1e-9);
        assert!((o.nodes_without_endpoint_in_lb - 1.0).abs() < 1e-9);
    }

    #[test]
    fn drain_delay_covering_the_check_window_loses_nothing() {
        // 3 nodes, 2 replicas: every replacement moves a pod to the empty node
        // and empties the old one, which the LB keeps for 2.5 × interval.
        let base = Params { nodes: 3, replicas: 2, health_interval: 0.2, unhealthy_threshold: 2, ..Params::default() };
        let o = simulate(&base).unwrap();
        assert!((o.rollout_lost_seconds - 2.0 * 0.5 / 3.0).abs() < 1e-9, "{}", o.rollout_lost_seconds);
        let o = simulate(&Params { drain_delay: 1.5, ..base }).unwrap();
        assert_eq!(o.rollout_lost_seconds, 0.0);
    }

    #[test]
    fn random_placement_is_worse_than_hostname_spread() {
        let spread = simulate(&Params { nodes: 6, replicas: 6, ..Params::default() }).unwrap();
        let none = simulate(&Params { nodes: 6, replicas: 6, spread: Spread::None, ..Params::default() }).unwrap();
        assert!((spread.max_min_ratio - 1.0).abs() < 1e-9);
        assert!(none.max_min_ratio > 1.5, "{}", none.max_min_ratio);
        assert!(simulate(&Params { zones: 4, nodes: 3, ..Params::default() }).is_err());
    }
}
