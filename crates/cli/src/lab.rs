//! `realip lab`: run the lab's scenarios and print the report; `realip lab
//! sim`: the placement / rollout model.

use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

use anyhow::{anyhow, Context as _};
use realip_lab::{report, sim, Progress, RunOptions, Verdict};

use crate::args::{LabArgs, LabCommand, SimArgs};
use crate::failure::Failure;

pub fn run(a: &LabArgs) -> Result<(), Failure> {
    if let Some(LabCommand::Sim(s)) = &a.command {
        return simulate(s);
    }
    if a.cleanup {
        let removed = realip_lab::netns::cleanup(realip_lab::netns::PREFIX);
        println!(
            "removed {} lab namespace(s){}",
            removed.len(),
            if removed.is_empty() { String::new() } else { format!(": {}", removed.join(", ")) }
        );
        return Ok(());
    }
    let selected = realip_lab::select(&a.scenarios).map_err(Failure::usage)?;
    let realip = std::env::current_exe().context("finding the realip binary").map_err(Failure::usage)?;
    if a.lb_interval_ms == 0 || a.lb_healthy_threshold == 0 || a.lb_unhealthy_threshold == 0 {
        return Err(Failure::usage(anyhow!("--lb-interval-ms and the --lb-*-threshold values must be at least 1")));
    }
    let lab = realip_lab::harness::Options {
        realip,
        lb_interval: std::time::Duration::from_millis(a.lb_interval_ms),
        lb_healthy_threshold: a.lb_healthy_threshold,
        lb_unhealthy_threshold: a.lb_unhealthy_threshold,
    };
    let opts = RunOptions { scenarios: a.scenarios.clone(), loopback: a.loopback, lab };
    if !a.loopback {
        say_what_loopback_skips(&selected);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(Failure::usage)?;
    let tty = std::io::stderr().is_terminal();
    let mut started = Instant::now();
    let mut progress = |p: Progress<'_>| {
        let mut err = std::io::stderr().lock();
        match p {
            Progress::Start { name, index, total } => {
                started = Instant::now();
                let _ = if tty {
                    write!(err, "\r\x1b[2K[{index}/{total}] {name} … running")
                } else {
                    writeln!(err, "[{index}/{total}] {name} …")
                };
            }
            Progress::Done(r) => {
                let v = match r.verdict {
                    Verdict::Pass => "pass",
                    Verdict::Fail => "FAIL",
                    Verdict::Skipped => "skipped",
                };
                let secs = started.elapsed().as_secs_f64();
                let _ = if tty {
                    writeln!(err, "\r\x1b[2K{} {v} ({secs:.1} s)", r.name)
                } else {
                    writeln!(err, "    {} {v} ({secs:.1} s)", r.name)
                };
            }
        }
    };
    // Ctrl-C / SIGTERM: dropping the run future drops every guard inside it,
    // which removes the namespaces and kills the processes. The handlers are
    // installed before the run starts building anything.
    let outcome = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut int, mut term) = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                return Some(Err(realip_lab::Error::Unavailable(format!("signal handlers: {e}"))))
            }
        };
        tokio::select! {
            r = realip_lab::run(&opts, &mut progress) => Some(r),
            _ = int.recv() => None,
            _ = term.recv() => None,
        }
    });
    let Some(result) = outcome else {
        realip_lab::netns::cleanup(&format!("{}{}", realip_lab::netns::PREFIX, std::process::id() % 100_000));
        return Err(Failure::rejected(anyhow!("interrupted; the lab's namespaces and processes were removed")));
    };
    let rep = result.map_err(Failure::usage)?;
    write_report(a, &rep)?;
    let require = std::env::var("REALIP_REQUIRE_NETNS").is_ok_and(|v| v == "1");
    let skipped = rep.scenarios.iter().filter(|s| s.verdict == Verdict::Skipped).count();
    if !rep.passed() {
        return Err(Failure::Findings);
    }
    if require && skipped > 0 {
        return Err(Failure::rejected(anyhow!("{skipped} scenario(s) skipped and REALIP_REQUIRE_NETNS=1")));
    }
    Ok(())
}

/// Without namespaces: which selected scenarios run on loopback, which are
/// skipped, and how to run the full lab.
fn say_what_loopback_skips(selected: &[&realip_lab::scenario::Scenario]) {
    let Some(why) = realip_lab::netns_unavailable() else { return };
    let (runs, skips): (Vec<_>, Vec<_>) = selected.iter().partition(|s| s.loopback.is_some());
    let names = |v: &[&&realip_lab::scenario::Scenario]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
        }
    };
    eprintln!(
        "realip lab: network namespaces unavailable ({why}).\n  runs on loopback: {}\n  skips (needs namespaces and nftables): {}\n  \
         for the full lab run it as root (or with sudo), with iproute2 and nftables installed: sudo realip lab",
        names(&runs),
        names(&skips)
    );
}

/// Prints the report (text or JSON) and writes `--out` files.
fn write_report(a: &LabArgs, rep: &realip_lab::Report) -> Result<(), Failure> {
    if a.json {
        println!("{}", serde_json::to_string_pretty(rep).map_err(|e| Failure::usage(anyhow!(e)))?);
    } else {
        print!("{}", report::text(rep));
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display())).map_err(Failure::usage)?;
        let charts = report::charts(rep);
        for (name, svg) in &charts {
            std::fs::write(dir.join(name), svg).with_context(|| format!("writing {name}")).map_err(Failure::usage)?;
        }
        std::fs::write(dir.join("report.md"), report::markdown(rep, &charts))
            .context("writing report.md")
            .map_err(Failure::usage)?;
        std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(rep).unwrap_or_default())
            .context("writing report.json")
            .map_err(Failure::usage)?;
        eprintln!("wrote {}/report.md and {} chart(s)", dir.display(), charts.len());
    }
    Ok(())
}

fn simulate(a: &SimArgs) -> Result<(), Failure> {
    let spread = match a.spread.as_str() {
        "none" => sim::Spread::None,
        "hostname" => sim::Spread::Hostname,
        "zone" => sim::Spread::Zone,
        other => return Err(Failure::usage(anyhow!("--spread: `{other}` is not none, hostname or zone"))),
    };
    let local = match a.policy.as_str() {
        "local" => true,
        "cluster" => false,
        other => return Err(Failure::usage(anyhow!("--policy: `{other}` is not local or cluster"))),
    };
    let p = sim::Params {
        nodes: a.nodes,
        replicas: a.replicas,
        spread,
        zones: a.zones,
        local,
        daemonset: a.daemonset,
        ignore_health_checks: a.ignore_health_checks,
        health_interval: a.health_interval,
        unhealthy_threshold: a.unhealthy_threshold,
        drain_delay: a.drain_delay,
        pod_ready: a.pod_ready,
    };
    let o = sim::simulate(&p).map_err(Failure::usage)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&o).map_err(|e| Failure::usage(anyhow!(e)))?);
    } else {
        print!("{}", sim::text(&o));
    }
    Ok(())
}
