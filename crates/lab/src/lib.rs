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
//! traffic), [`harness`] (one lab, its reconciler and measurements),
//! [`scenario`] (what to build and what to expect), [`report`] (JSON,
//! text, Markdown, SVG). [`loopback`] runs what it honestly can without
//! root.
//!
//! Invariants: only documentation address ranges are used inside the lab
//! and no namespace links to the host's, so no packet leaves; everything
//! created is removed when its guard drops (also on error and panic), and
//! [`netns::cleanup`] removes leftovers of a killed run by name prefix.

// Shares, percentages and chart coordinates are computed from request
// counts far below 2^52, and rounded pixel sizes are never negative.
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]

pub mod error;
pub mod fakeapi;
pub mod harness;
pub mod kubeproxy;
pub mod lb;
pub mod load;
pub mod loopback;
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

/// The scenario names `spec` selects (`all` → every scenario).
pub fn select(spec: &[String]) -> Result<Vec<&'static str>> {
    let known = scenario::names();
    if spec.is_empty() || spec.iter().any(|s| s == "all") {
        return Ok(known);
    }
    spec.iter()
        .map(|s| {
            known.iter().find(|k| **k == s).copied().ok_or_else(|| Error::UnknownScenario(s.clone(), known.join(", ")))
        })
        .collect()
}

/// Why the full lab cannot run here, if it cannot.
pub fn netns_unavailable() -> Option<String> {
    netns::unavailable()
}

/// Runs the selected scenarios. Needs a multi-threaded tokio runtime.
pub async fn run(opts: &RunOptions, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Report> {
    let names = select(&opts.scenarios)?;
    let why_not = if opts.loopback { Some("--loopback given".to_owned()) } else { netns::unavailable() };
    let base = format!("{}", std::process::id() % 100_000);
    let mut results = Vec::new();
    for (i, name) in names.iter().enumerate() {
        progress(Progress::Start { name, index: i + 1, total: names.len() });
        let setup = scenario::SCENARIOS.iter().find(|(n, _)| n == name).map_or("", |(_, s)| *s);
        let run = format!("{base}{i}");
        let r = match &why_not {
            Some(reason) if !loopback::RUNNABLE.contains(name) => ScenarioResult::skipped(
                name,
                setup,
                &format!("needs network namespaces and nftables, unavailable here: {reason}"),
            ),
            Some(_) => {
                let dir = std::env::temp_dir().join(format!("{}{run}-loopback", netns::PREFIX));
                std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                let r = loopback::run(name, &opts.lab.realip, &dir).await;
                let _ = std::fs::remove_dir_all(&dir);
                r.unwrap_or_else(|e| failed(name, setup, &e))
            }
            None => {
                let r = scenario::run(name, &opts.lab, &run).await;
                // Guards have run; remove anything a crashed helper left.
                netns::cleanup(&format!("{}{run}-", netns::PREFIX));
                r.unwrap_or_else(|e| failed(name, setup, &e))
            }
        };
        progress(Progress::Done(&r));
        results.push(r);
    }
    Ok(Report { scenarios: results })
}

fn failed(name: &str, setup: &str, e: &Error) -> ScenarioResult {
    ScenarioResult {
        verdict: Verdict::Fail,
        reason: format!("the lab could not run it: {e}"),
        ..ScenarioResult::skipped(name, setup, "")
    }
}
