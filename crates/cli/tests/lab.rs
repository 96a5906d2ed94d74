//! `realip lab` end to end: the whole scenario matrix in real network
//! namespaces (root only; skipped with a reason elsewhere, a failure under
//! `REALIP_REQUIRE_NETNS=1`), the simulator checked against what the lab
//! measured, teardown on exit and on Ctrl-C, `--cleanup`, and the loopback
//! approximation (no root needed).

#![allow(clippy::cast_precision_loss)] // request counts as shares

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use realip_lab::sim::{self, Params, Spread};
use serde_json::Value;

fn realip() -> Command {
    Command::new(env!("CARGO_BIN_EXE_realip"))
}

/// Skips (or fails under REALIP_REQUIRE_NETNS=1) when namespaces are unavailable.
fn netns_missing() -> bool {
    let Some(why) = realip_lab::netns_unavailable() else { return false };
    assert!(
        !std::env::var("REALIP_REQUIRE_NETNS").is_ok_and(|v| v == "1"),
        "REALIP_REQUIRE_NETNS=1 but the lab cannot run: {why}"
    );
    eprintln!("SKIPPED: network namespaces unavailable: {why}");
    true
}

fn namespaces(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn scenario<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["scenarios"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no {name}"))
}

fn share(m: &Value, pod: &str) -> f64 {
    let spread = m["spread"].as_object().unwrap();
    let total: u64 = spread.values().map(|v| v.as_u64().unwrap()).sum();
    spread.get(pod).and_then(Value::as_u64).unwrap_or(0) as f64 / total as f64
}

fn clients() -> [&'static str; 2] {
    ["203.0.113.10", "203.0.113.20"]
}

/// A per-client count map (`{"addr": n}`) as pairs.
fn counts(v: &Value) -> Vec<(String, u64)> {
    v.as_object()
        .unwrap_or_else(|| panic!("not a map: {v}"))
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

/// The per-client rows of a scenario (or part): one per v4 client that sent,
/// each with every field DESIGN.md names.
fn client_rows(m: &Value) -> Vec<&Value> {
    let rows: Vec<&Value> = m["clients"].as_array().unwrap_or_else(|| panic!("no clients in {m}")).iter().collect();
    for r in &rows {
        for key in ["ip", "sent", "ok", "preserved", "lb_seen", "ingress_peer", "app_client_ip"] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert!(r["sent"].as_u64().unwrap() > 0, "{r}");
    }
    rows
}

fn is_node(ip: &Value) -> bool {
    ip.as_str().is_some_and(|s| ["192.0.2.11", "192.0.2.12", "192.0.2.13"].contains(&s))
}

#[test]
fn the_scenario_matrix_measures_what_each_hop_sees_and_leaves_nothing_behind() {
    if netns_missing() {
        return;
    }
    let out_dir = std::env::temp_dir().join(format!("realip-lab-test-{}", std::process::id()));
    let child = realip()
        .args(["lab", "--json", "--out"])
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{stderr}");
    // Progress was shown, one line per scenario.
    let table = &realip_lab::scenario::SCENARIOS;
    let n = table.len();
    let last = format!("[{n}/{n}] {}", table[n - 1].name);
    assert!(stderr.contains(&last), "{stderr}");

    for s in report["scenarios"].as_array().unwrap() {
        if skipped_without_redis(s) {
            continue;
        }
        assert_eq!(s["verdict"], "pass", "{s:#}");
        for key in
            ["lb_seen", "ingress_peer", "ingress_client_ip", "ingress_source", "app_client_host", "app_client_ip"]
        {
            assert!(s.get(key).is_some(), "{key} missing in {s}");
        }
    }
    // cluster: SNAT replaces the client with a node address at every hop after the LB.
    let cluster = scenario(&report, "cluster");
    assert!(clients().contains(&cluster["lb_seen"].as_str().unwrap()), "{cluster}");
    assert!(is_node(&cluster["ingress_peer"]) && is_node(&cluster["app_client_ip"]), "{cluster}");
    assert_eq!(cluster["preserved"], 0);
    // local: preserved end to end, node3 never reached.
    let local = scenario(&report, "local");
    assert!(clients().contains(&local["app_client_ip"].as_str().unwrap()), "{local}");
    assert_eq!(local["ingress_source"], "peer");
    assert_eq!(local["preserved"], local["requests"]["ok"]);
    assert_eq!(local["requests"]["failed"], 0);
    assert!(local["spread_nodes"].get("node3").is_none(), "{local}");
    // local without health checks: node3's share is dropped.
    let nohc_lab = scenario(&report, "local-no-healthcheck");
    let failed = nohc_lab["requests"]["failed"].as_f64().unwrap() / nohc_lab["requests"]["sent"].as_f64().unwrap();
    assert!((failed - 1.0 / 3.0).abs() < 0.12, "{nohc_lab}");
    // local-uneven: 25/25/50; daemonset: even.
    let uneven_lab = scenario(&report, "local-uneven");
    for (pod, want) in [("ingress-a", 0.25), ("ingress-b", 0.25), ("ingress-c", 0.5)] {
        assert!((share(uneven_lab, pod) - want).abs() < 0.1, "{pod}: {uneven_lab}");
    }
    let ds_lab = scenario(&report, "daemonset");
    for pod in ["ingress-a", "ingress-b", "ingress-c"] {
        assert!((share(ds_lab, pod) - 1.0 / 3.0).abs() < 0.1, "{pod}: {ds_lab}");
    }
    // PROXY v2 carries the client through a SNATing Cluster hop, IPv4 and IPv6.
    for (name, client) in [("proxy-protocol", None), ("ipv6", Some("2001:db8:c::10"))] {
        let proxied = scenario(&report, name);
        assert!(is_node(&proxied["ingress_peer"]), "{proxied}");
        assert_eq!(proxied["ingress_source"], "proxy-protocol");
        assert_eq!(proxied["preserved"], proxied["requests"]["ok"]);
        if let Some(c) = client {
            assert_eq!(
                (proxied["lb_seen"].as_str(), proxied["app_client_ip"].as_str()),
                (Some(c), Some(c)),
                "{proxied}"
            );
        }
    }
    // Mismatch: every request fails, both ways.
    let mismatch = scenario(&report, "proxy-protocol-mismatch");
    for part in mismatch["parts"].as_array().unwrap() {
        assert_eq!(part["requests"]["ok"], 0, "{part}");
        assert!(part["requests"]["failed"].as_u64().unwrap() > 0);
    }
    // Spoof: ignored with correct trust, believed with trust-everyone.
    let sp = scenario(&report, "spoof");
    let parts = sp["parts"].as_array().unwrap();
    assert!(clients().contains(&parts[0]["ingress_client_ip"].as_str().unwrap()), "{sp}");
    assert_eq!(parts[1]["ingress_client_ip"], "203.0.113.66", "{sp}");
    // Rollout: failures without drain, none with it; a timeline per part.
    let rollout = scenario(&report, "rollout");
    let parts = rollout["parts"].as_array().unwrap();
    assert!(parts[0]["requests"]["failed"].as_u64().unwrap() > 0, "{rollout}");
    assert_eq!(parts[1]["requests"]["failed"], 0, "{rollout}");
    assert!(parts.iter().all(|p| p["timeline"].as_array().is_some_and(|t| t.len() > 20)));

    // kubernetes: routes and endpoints from the API server; the change is followed.
    let k = scenario(&report, "kubernetes");
    let kparts = k["parts"].as_array().unwrap();
    assert_eq!(kparts[0]["spread_app"].as_object().unwrap().len(), 2, "{k}");
    assert_eq!(kparts[1]["spread_app"].as_object().unwrap().keys().collect::<Vec<_>>(), ["app-2"], "{k}");
    assert!(clients().contains(&kparts[1]["app_client_ip"].as_str().unwrap()), "{k}");

    policies_act_on_the_resolved_client(&report);
    migration_keeps_every_client_s_outcome(&report);

    sim_agrees_with_the_lab(uneven_lab, ds_lab, failed, &parts[0]);
    per_client_rows_show_what_each_hop_saw_of_each_client(&report);

    report_and_charts_were_written(&out_dir);
    let _ = std::fs::remove_dir_all(&out_dir);

    // Nothing left: namespaces of this run, processes, scratch directories.
    let prefix = format!("rlab-{}", pid % 100_000);
    assert!(namespaces(&prefix).is_empty(), "{:?}", namespaces(&prefix));
    let ps = Command::new("pgrep").args(["-f", &format!("/tmp/{prefix}")]).output().unwrap();
    assert!(ps.stdout.is_empty(), "processes left: {}", String::from_utf8_lossy(&ps.stdout));
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.lines().any(|l| l.contains(" br0:") || l.contains(" vp1@")), "{links}");

    ctrl_c_tears_everything_down();
    cleanup_removes_leftovers_by_prefix();
}

/// `global-rate-limit` may be skipped only for want of redis-server, and
/// never under `REALIP_REQUIRE_PEERS=1`.
fn skipped_without_redis(s: &Value) -> bool {
    if s["name"] != "global-rate-limit" || s["verdict"] != "skipped" {
        return false;
    }
    assert!(s["reason"].as_str().unwrap().contains("redis-server is not installed"), "{s:#}");
    assert!(!std::env::var("REALIP_REQUIRE_PEERS").is_ok_and(|v| v == "1"), "{s:#}");
    eprintln!("SKIPPED: global-rate-limit: {}", s["reason"]);
    true
}

/// `gateway` and `global-rate-limit`: access rules keyed on the resolved client.
fn policies_act_on_the_resolved_client(report: &Value) {
    // gateway: Gateway API objects + realip policies from the API server;
    // c1 allowed and resolved through PROXY v2, c2 refused with 403 as itself.
    let g = scenario(report, "gateway");
    let gparts = g["parts"].as_array().unwrap();
    assert_eq!(gparts[0]["app_client_ip"], "203.0.113.10", "{g}");
    assert_eq!(gparts[0]["ingress_source"], "proxy-protocol", "{g}");
    assert_eq!(gparts[0]["requests"]["failed"], 0, "{g}");
    assert_eq!(gparts[1]["requests"]["ok"], 0, "{g}");
    assert_eq!(gparts[1]["errors"]["HTTP 403"], gparts[1]["requests"]["sent"], "{g}");
    assert_eq!(gparts[1]["ingress_client_ip"], "203.0.113.20", "{g}");
    // global-rate-limit: local lets ≈2× through what global does.
    let rl = scenario(report, "global-rate-limit");
    if rl["verdict"] == "pass" {
        let p = rl["parts"].as_array().unwrap();
        let ok = |i: usize| p[i]["requests"]["ok"].as_f64().unwrap();
        assert!((1.5..=2.5).contains(&(ok(0) / ok(1))), "{rl}");
        assert!(p.iter().all(|p| p["errors"]["HTTP 429"].as_u64().unwrap() > 0), "{rl}");
    }
}

/// `migrate`: the same traffic through ingress-nginx's setup (Ingress mode)
/// and through `realip migrate`'s output for it (Gateway mode) ends the
/// same way for each client.
fn migration_keeps_every_client_s_outcome(report: &Value) {
    let m = scenario(report, "migrate");
    let parts = m["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{m}");
    assert!(parts[1]["label"].as_str().unwrap().contains("ClientAccessPolicy web/app"), "{m}");
    let statuses = |r: &Value| counts(&r["statuses"]);
    let mut ok = Vec::new();
    for p in parts {
        let rows = client_rows(p);
        // The two clients through the LB, then a source that reaches the
        // pods directly forging a PROXY header and X-Forwarded-For.
        let mut want = clients().to_vec();
        want.push(realip_lab::migrate::DIRECT);
        assert_eq!(rows.iter().map(|r| r["ip"].as_str().unwrap()).collect::<Vec<_>>(), want, "{p}");
        // The forger never gets an answer, nor is it resolved as the
        // address it claims, at any hop.
        let d = rows[2];
        assert_eq!(d["ok"], 0, "{p}");
        assert!(counts(&d["statuses"]).iter().all(|(s, _)| !s.starts_with('2')), "{p}");
        for hop in ["ingress_client_ip", "app_client_ip"] {
            assert!(counts(&d[hop]).iter().all(|(ip, _)| ip != clients()[0]), "{hop}: {p}");
        }
        // c1: in the allow list, over the rate: 200s (at the app as itself) and 429s.
        let c1 = statuses(rows[0]);
        assert_eq!(c1.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["200", "429"], "{p}");
        assert_eq!(counts(&rows[0]["app_client_ip"]), [(clients()[0].to_owned(), c1[0].1)], "{p}");
        ok.push(c1[0].1);
        // c2: outside it: 403 on every request, refused as itself.
        assert_eq!(statuses(rows[1]), [("403".to_owned(), rows[1]["sent"].as_u64().unwrap())], "{p}");
        assert_eq!(
            counts(&rows[1]["ingress_client_ip"]),
            [(clients()[1].to_owned(), rows[1]["sent"].as_u64().unwrap())]
        );
    }
    assert!(ok[0].abs_diff(ok[1]) <= realip_lab::migrate::TOLERANCE, "{ok:?}: {m}");
}

/// `--out`: report.md with a hop table per client, and the charts.
fn report_and_charts_were_written(out_dir: &std::path::Path) {
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("## rollout") && md.contains("rollout-timeline.svg"), "{md}");
    // The hop table has a row per client.
    let cluster_md = &md[md.find("## cluster").unwrap()..md.find("## local").unwrap()];
    for c in clients() {
        assert!(cluster_md.contains(&format!("| {c} |")), "{cluster_md}");
    }
    let svg = std::fs::read_to_string(out_dir.join("rollout-timeline.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("fill=\"#d9534f\"") && svg.trim_end().ends_with("</svg>"));
    assert!(out_dir.join("local-uneven-spread.svg").exists());
}

/// The `clients` rows: what the LB, the ingress and the app saw of each
/// client's requests, with counts.
fn per_client_rows_show_what_each_hop_saw_of_each_client(report: &Value) {
    let cluster = scenario(report, "cluster");
    // Per client: the LB saw that client, the ingress and the app only nodes.
    let rows = client_rows(cluster);
    assert_eq!(rows.iter().map(|r| r["ip"].as_str().unwrap()).collect::<Vec<_>>(), clients(), "{cluster}");
    for r in &rows {
        let lb = counts(&r["lb_seen"]);
        assert!(lb.len() == 1 && lb[0].0 == r["ip"] && lb[0].1 >= r["sent"].as_u64().unwrap(), "{r}");
        for hop in ["ingress_peer", "app_client_ip"] {
            let seen = counts(&r[hop]);
            assert!(!seen.is_empty() && seen.iter().all(|(ip, _)| is_node(&Value::from(ip.as_str()))), "{hop}: {r}");
            assert_eq!(seen.iter().map(|(_, n)| n).sum::<u64>(), r["ok"].as_u64().unwrap(), "{hop}: {r}");
        }
        assert_eq!(r["preserved"], 0, "{r}");
    }
    // local: its own address at every hop, on every request.
    let local = scenario(report, "local");
    let rows = client_rows(local);
    assert_eq!(rows.len(), 2, "{local}");
    for r in rows {
        let own = vec![(r["ip"].as_str().unwrap().to_owned(), r["ok"].as_u64().unwrap())];
        assert_eq!(counts(&r["ingress_peer"]), own, "{r}");
        assert_eq!(counts(&r["app_client_ip"]), own, "{r}");
        assert_eq!(r["preserved"], r["ok"]);
    }
    // PROXY v2: a node as the ingress's peer, the client at the app.
    for name in ["proxy-protocol", "ipv6"] {
        for r in client_rows(scenario(report, name)) {
            assert!(counts(&r["ingress_peer"]).iter().all(|(ip, _)| is_node(&Value::from(ip.as_str()))), "{r}");
            assert_eq!(
                counts(&r["app_client_ip"]),
                [(r["ip"].as_str().unwrap().to_owned(), r["ok"].as_u64().unwrap())]
            );
        }
    }
    // spoof, trusting everyone: the ingress believed the forged address for every client.
    for r in client_rows(&scenario(report, "spoof")["parts"][1]) {
        assert_eq!(
            counts(&r["ingress_client_ip"]).iter().map(|(ip, _)| ip.as_str()).collect::<Vec<_>>(),
            ["203.0.113.66"]
        );
    }
}

/// The simulator, given the same setups, predicts what the lab measured.
fn sim_agrees_with_the_lab(uneven_lab: &Value, ds_lab: &Value, failed: f64, rollout_no_drain: &Value) {
    let uneven = sim::simulate(&Params { nodes: 2, replicas: 3, ..Params::default() }).unwrap();
    let mut measured: Vec<f64> = ["ingress-a", "ingress-b", "ingress-c"].iter().map(|p| share(uneven_lab, p)).collect();
    measured.sort_by(|a, b| b.total_cmp(a));
    for (m, p) in measured.iter().zip(&uneven.pod_shares) {
        assert!((m - p).abs() < 0.1, "lab {measured:?} vs sim {:?}", uneven.pod_shares);
    }
    let ds = sim::simulate(&Params { nodes: 3, daemonset: true, ..Params::default() }).unwrap();
    assert!(ds.pod_shares.iter().all(|p| (p - share(ds_lab, "ingress-a")).abs() < 0.1), "{:?}", ds.pod_shares);
    let nohc =
        sim::simulate(&Params { nodes: 3, replicas: 2, ignore_health_checks: true, ..Params::default() }).unwrap();
    assert!((nohc.dropped_fraction - failed).abs() < 0.12, "sim {} vs lab {failed}", nohc.dropped_fraction);
    // Rollout: the lab's first replacement (2 replicas on 3 nodes, the new
    // pod on the empty node3, node1 emptied), checks 200 ms × 2. Lost
    // traffic-seconds × the measured request rate ≈ failures.
    let base = Params {
        nodes: 3,
        replicas: 2,
        spread: Spread::Hostname,
        health_interval: 0.2,
        unhealthy_threshold: 2,
        ..Params::default()
    };
    let no_drain = sim::simulate(&base).unwrap();
    let drained = sim::simulate(&Params { drain_delay: 2.0, ..base }).unwrap();
    let sent = rollout_no_drain["requests"]["sent"].as_f64().unwrap();
    let rate = sent / (rollout_no_drain["timeline"].as_array().unwrap().len() as f64 / 10.0);
    let predicted = no_drain.rollout_lost_per_pod[0] * rate;
    let got = rollout_no_drain["requests"]["failed"].as_f64().unwrap();
    assert!(got > predicted * 0.3 && got < predicted * 2.5, "lab {got} failed vs sim {predicted:.1}");
    assert!(drained.rollout_lost_seconds.abs() < 1e-9);
}

/// Run inside the matrix test (not in parallel with it): SIGINT while a
/// scenario runs removes its namespaces and processes.
fn ctrl_c_tears_everything_down() {
    let mut child =
        realip().args(["lab", "--scenario", "rollout"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let prefix = format!("rlab-{}", child.id() % 100_000);
    let deadline = Instant::now() + Duration::from_secs(20);
    while namespaces(&prefix).len() < 5 {
        assert!(Instant::now() < deadline, "the lab did not build its namespaces");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "interrupted runs exit 1");
    assert!(namespaces(&prefix).is_empty(), "left after Ctrl-C: {:?}", namespaces(&prefix));
    let ps = Command::new("pgrep").args(["-f", &format!("/tmp/{prefix}")]).output().unwrap();
    assert!(ps.stdout.is_empty(), "processes left: {}", String::from_utf8_lossy(&ps.stdout));
}

fn cleanup_removes_leftovers_by_prefix() {
    let name = format!("rlab-leftover-{}", std::process::id());
    assert!(Command::new("ip").args(["netns", "add", &name]).status().unwrap().success());
    let out = realip().args(["lab", "--cleanup"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&name));
    assert!(namespaces(&name).is_empty());
}

#[test]
fn loopback_mode_runs_what_it_honestly_can_and_skips_the_rest_with_the_reason() {
    // Skips are the point here: not a failure even where CI requires namespaces.
    let out = realip().args(["lab", "--loopback", "--json"]).env_remove("REALIP_REQUIRE_NETNS").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let verdicts: BTreeMap<String, String> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s["verdict"].as_str().unwrap().to_owned()))
        .collect();
    // What the one scenario table says loopback can run passes (under the
    // same criterion as in namespaces), the rest is skipped with the reason.
    assert_eq!(verdicts.len(), realip_lab::scenario::SCENARIOS.len());
    for s in &realip_lab::scenario::SCENARIOS {
        let r = scenario(&report, s.name);
        if s.loopback.is_some() {
            assert_eq!(verdicts[s.name], "pass", "{report:#}");
            assert!(r["reason"].as_str().unwrap().starts_with("loopback: "), "{r}");
        } else {
            assert_eq!(verdicts[s.name], "skipped");
            assert!(r["reason"].as_str().unwrap().contains("--loopback given"));
        }
    }
    assert_eq!(verdicts.values().filter(|v| *v == "pass").count(), 3, "proxy-protocol, the mismatch and spoof");
    let pp = scenario(&report, "proxy-protocol");
    assert_eq!((pp["lb_seen"].as_str(), pp["app_client_ip"].as_str()), (Some("127.0.0.10"), Some("127.0.0.10")));
    let spoof = &scenario(&report, "spoof")["parts"];
    assert_eq!(
        (spoof[0]["ingress_client_ip"].as_str(), spoof[1]["ingress_client_ip"].as_str()),
        (Some("127.0.0.10"), Some("203.0.113.66"))
    );
    // With correct trust the app saw the real client on every request.
    let good = client_rows(&spoof[0]);
    assert_eq!(good.len(), 1);
    assert_eq!(counts(&good[0]["app_client_ip"]), [("127.0.0.10".to_owned(), good[0]["ok"].as_u64().unwrap())]);
    assert_eq!(good[0]["preserved"], good[0]["ok"]);
    // REALIP_REQUIRE_NETNS turns the skips into a failure.
    let out =
        realip().args(["lab", "--loopback", "--scenario", "local"]).env("REALIP_REQUIRE_NETNS", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REALIP_REQUIRE_NETNS=1"));
}

#[test]
fn bad_arguments_are_usage_errors_naming_what_was_wrong() {
    let out = realip().args(["lab", "--scenario", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown scenario `nope`") && err.contains("local-uneven"), "{err}");
    let out = realip().args(["lab", "sim", "--spread", "rack"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--spread: `rack`"));
    let out = realip().args(["lab", "sim", "--nodes", "2", "--zones", "3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_lists_every_scenario_of_the_table() {
    let out = realip().args(["lab", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for s in &realip_lab::scenario::SCENARIOS {
        assert!(help.contains(s.name), "`realip lab --help` does not list {}: {help}", s.name);
    }
}

#[test]
fn sim_prints_shares_and_json() {
    let out = realip().args(["lab", "sim", "--nodes", "2", "--replicas", "3", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pod_shares"], serde_json::json!([0.5, 0.25, 0.25]));
    let out = realip().args(["lab", "sim", "--nodes", "2", "--replicas", "3"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("max/min pod share: 2.00×"));
}
