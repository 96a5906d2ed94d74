//! realip-lab: reproduce, on one Linux machine, the path a client's address
//! takes through a cloud load balancer, kube-proxy (`Cluster` / `Local`),
//! an ingress proxy and an app — with real network namespaces, veth links,
//! nftables and real `realip proxy` / `realip echo` processes — and measure
//! what each hop sees. Plus a simulator for cluster sizes one machine
//! cannot hold ([`sim`]).
//!
//! Layers, bottom up: [`netns`] (namespaces, threads inside them, process
//! guards), [`topo`] (addressing and links), [`kubeproxy`] and [`lb`] (the
//! rules and health checks), [`pods`] and [`load`] (processes and
//! traffic), [`harness`] (one lab, its reconciler), [`measure`] (what each
//! hop saw, per client), [`access`] and [`migrate`] (scenarios driven by
//! the lab's API server), [`scenario`] (the one table: what to build, how
//! each runner runs it, the pass criterion), [`report`] (JSON, text,
//! Markdown, SVG). [`loopback`] runs what it honestly can without root.
//!
//! Invariants: only documentation address ranges are used inside the lab
//! and no namespace links to the host's, so no packet leaves; everything
//! created is removed when its guard drops (also on error and panic), and
//! [`netns::cleanup`] removes leftovers of a killed run by name prefix.

// Shares, percentages and chart coordinates are computed from request
// counts far below 2^52, and rounded pixel sizes are never negative.
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]

pub mod access;
pub mod error;
pub mod fakeapi;
pub mod harness;
pub mod kubeproxy;
pub mod lb;
pub mod load;
pub mod loopback;
pub mod measure;
pub mod migrate;
pub mod netns;
pub mod pods;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod topo;

pub use error::{Error, Result};
pub use report::{Report, ScenarioResult, Verdict};

/// What to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Scenario names, or `all`.
    pub scenarios: Vec<String>,
    /// Use the loopback approximation even where namespaces work.
    pub loopback: bool,
    /// The binary and the LB's health-check settings.
    pub lab: harness::Options,
}

/// Progress events, for an indicator.
#[derive(Debug)]
pub enum Progress<'a> {
    /// A scenario starts.
    Start {
        /// Its name.
        name: &'a str,
        /// 1-based position.
        index: usize,
        /// How many run.
        total: usize,
    },
    /// A scenario ended.
    Done(&'a ScenarioResult),
}

/// The scenarios `spec` selects (`all` → every scenario), in table order
/// for `all`, as given otherwise.
pub fn select(spec: &[String]) -> Result<Vec<&'static scenario::Scenario>> {
    if spec.is_empty() || spec.iter().any(|s| s == "all") {
        return Ok(scenario::SCENARIOS.iter().collect());
    }
    spec.iter()
        .map(|s| scenario::find(s).ok_or_else(|| Error::UnknownScenario(s.clone(), scenario::names().join(", "))))
        .collect()
}

/// Why the full lab cannot run here, if it cannot.
pub fn netns_unavailable() -> Option<String> {
    netns::unavailable()
}

/// Runs the selected scenarios. Needs a multi-threaded tokio runtime.
pub async fn run(opts: &RunOptions, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Report> {
    let selected = select(&opts.scenarios)?;
    let why_not = if opts.loopback { Some("--loopback given".to_owned()) } else { netns::unavailable() };
    let base = format!("{}", std::process::id() % 100_000);
    let mut results = Vec::new();
    for (i, s) in selected.iter().enumerate() {
        progress(Progress::Start { name: s.name, index: i + 1, total: selected.len() });
        let run = format!("{base}{i}");
        let r = match (&why_not, s.loopback) {
            (None, _) => {
                let parts = (s.netns)(&opts.lab, &run).await;
                // Guards have run; remove anything a crashed helper left.
                netns::cleanup(&format!("{}{run}-", netns::PREFIX));
                judge(s, s.setup, "", parts, &opts.lab)
            }
            (Some(reason), None) => ScenarioResult::skipped(
                s.name,
                s.setup,
                &format!("needs network namespaces and nftables, unavailable here: {reason}"),
            ),
            (Some(_), Some(lb)) => {
                let dir = std::env::temp_dir().join(format!("{}{run}-loopback", netns::PREFIX));
                std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                let parts = (lb.run)(&opts.lab.realip, &dir).await;
                let _ = std::fs::remove_dir_all(&dir);
                judge(s, &format!("loopback: {}", lb.setup), "loopback: ", parts, &opts.lab)
            }
        };
        progress(Progress::Done(&r));
        results.push(r);
    }
    Ok(Report { scenarios: results })
}

/// The scenario's one pass criterion over what was measured.
fn judge(
    s: &scenario::Scenario,
    setup: &str,
    prefix: &str,
    parts: Result<Vec<report::Part>>,
    opts: &harness::Options,
) -> ScenarioResult {
    match parts {
        Ok(parts) => {
            let (ok, reason) = (s.verdict)(&parts, opts);
            ScenarioResult::from_parts(s.name, setup, ok, format!("{prefix}{reason}"), parts)
        }
        Err(Error::PeerMissing(why)) if !std::env::var("REALIP_REQUIRE_PEERS").is_ok_and(|v| v == "1") => {
            ScenarioResult::skipped(s.name, setup, &format!("{prefix}{why}"))
        }
        Err(e) => ScenarioResult {
            verdict: Verdict::Fail,
            reason: format!("{prefix}the lab could not run it: {e}"),
            ..ScenarioResult::skipped(s.name, setup, "")
        },
    }
}
