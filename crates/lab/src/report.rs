//! Scenario results: the JSON schema of DESIGN.md (extended, never
//! renamed), the text tables, `report.md` and SVG charts.
//!
//! JSON: `{"scenarios": [{"name", "verdict": "pass"|"fail"|"skipped",
//! "reason", "lb_seen", "ingress_peer", "ingress_client_ip",
//! "ingress_source", "app_client_host", "app_client_ip", "requests": {"sent",
//! "ok", "failed"}, "spread": {"<pod>": n}}]}`; each address field is the
//! value seen on most requests, `null` where that hop was not reached.
//! Extensions: `setup` (what was built), `spread_nodes`, `spread_app`, `preserved` (200s
//! whose app-side client IP equals the address the request was really sent
//! from), `errors` (failure reasons with counts), `timeline` (ok/failed per
//! 100 ms) and `parts` (scenarios that run two configurations side by side;
//! the top-level fields are the first part's, `requests` sums all parts),
//! `clients` (one row per client host: what the LB, the ingress and the app
//! saw of that client's requests, as `{"value": count}` maps; DESIGN.md
//! names the fields; `statuses` adds the answers it got by HTTP status).
//! The text and Markdown reports show the per-client rows, not the most
//! common values, so two clients never mix in one row; when every
//! configuration of a scenario measured the same clients, they add a
//! per-client outcome table with the configurations side by side.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Outcome of a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The measured outcome is the expected one.
    Pass,
    /// It is not.
    Fail,
    /// Not run here (the reason says why).
    Skipped,
}

/// Request counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Requests {
    /// Sent by the clients.
    pub sent: u64,
    /// Answered 200 by the app.
    pub ok: u64,
    /// Everything else (refused, dropped, timed out, non-200).
    pub failed: u64,
}

/// Ok / failed requests completed in one 100 ms slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Slot {
    /// Start of the slot, ms since the load started.
    pub t_ms: u64,
    /// Ok requests.
    pub ok: u64,
    /// Failed requests.
    pub failed: u64,
}

/// What each hop saw of one client's requests, with counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientRow {
    /// The address the client sent from.
    pub ip: String,
    /// Requests it sent.
    pub sent: u64,
    /// Of those, answered 200 by the app.
    pub ok: u64,
    /// Of those, the app resolved this client's address.
    pub preserved: u64,
    /// Source addresses the LB recorded for it (its own, if the LB saw it).
    pub lb_seen: BTreeMap<String, u64>,
    /// The ingress's TCP peer on its requests.
    pub ingress_peer: BTreeMap<String, u64>,
    /// The client IP the ingress resolved on its requests.
    pub ingress_client_ip: BTreeMap<String, u64>,
    /// The client IP the app resolved on its 200s.
    pub app_client_ip: BTreeMap<String, u64>,
    /// Answers it got: HTTP status (`"200"`, `"403"`, …) or `"none"` (no
    /// response: refused, reset, timed out), with counts.
    pub statuses: BTreeMap<String, u64>,
}

/// What was measured at each hop in one configuration.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Measure {
    /// Source address the load balancer saw.
    pub lb_seen: Option<String>,
    /// TCP peer in the ingress access log (nginx `remote_addr`).
    pub ingress_peer: Option<String>,
    /// Client IP the ingress resolved.
    pub ingress_client_ip: Option<String>,
    /// Where the ingress took it from.
    pub ingress_source: Option<String>,
    /// TCP peer the app saw (uvicorn `client.host` without proxy headers).
    pub app_client_host: Option<String>,
    /// Client IP the app resolved.
    pub app_client_ip: Option<String>,
    /// Request counts.
    pub requests: Requests,
    /// Requests per ingress pod (from their access logs).
    pub spread: BTreeMap<String, u64>,
    /// Requests per node (the same, grouped by the pods' nodes).
    pub spread_nodes: BTreeMap<String, u64>,
    /// Requests per app pod (from the app's answers).
    pub spread_app: BTreeMap<String, u64>,
    /// 200s whose app-side client IP is the real sender's address.
    pub preserved: u64,
    /// Why requests failed, with counts.
    pub errors: BTreeMap<String, u64>,
    /// Per client host, what each hop saw.
    pub clients: Vec<ClientRow>,
    /// Ok/failed per 100 ms (steady-load scenarios).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Slot>,
}

/// One configuration of a two-part scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Part {
    /// Which configuration.
    pub label: String,
    /// What it measured.
    #[serde(flatten)]
    pub measure: Measure,
}

/// One scenario's result.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// pass / fail / skipped.
    pub verdict: Verdict,
    /// One line: what the numbers show, or why it was skipped.
    pub reason: String,
    /// What was built.
    pub setup: String,
    /// The first (or only) configuration's measurements.
    #[serde(flatten)]
    pub measure: Measure,
    /// Every configuration, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

impl ScenarioResult {
    /// A result from one or more measured configurations: the top-level
    /// fields are the first one's, `requests` sums them all.
    pub fn from_parts(name: &str, setup: &str, ok: bool, reason: String, parts: Vec<Part>) -> ScenarioResult {
        let mut measure = parts.first().map(|p| p.measure.clone()).unwrap_or_default();
        for p in parts.iter().skip(1) {
            measure.requests.sent += p.measure.requests.sent;
            measure.requests.ok += p.measure.requests.ok;
            measure.requests.failed += p.measure.requests.failed;
        }
        ScenarioResult {
            name: name.to_owned(),
            verdict: if ok { Verdict::Pass } else { Verdict::Fail },
            reason,
            setup: setup.to_owned(),
            measure,
            parts: if parts.len() > 1 { parts } else { Vec::new() },
        }
    }

    /// Each measured configuration with its label (one unlabelled for
    /// single-configuration scenarios).
    pub fn configurations(&self) -> Vec<(&str, &Measure)> {
        if self.parts.is_empty() {
            vec![("", &self.measure)]
        } else {
            self.parts.iter().map(|p| (p.label.as_str(), &p.measure)).collect()
        }
    }

    /// A scenario that did not run here.
    pub fn skipped(name: &str, setup: &str, reason: &str) -> ScenarioResult {
        ScenarioResult {
            name: name.to_owned(),
            verdict: Verdict::Skipped,
            reason: reason.to_owned(),
            setup: setup.to_owned(),
            measure: Measure::default(),
            parts: Vec::new(),
        }
    }
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// In the order run.
    pub scenarios: Vec<ScenarioResult>,
}

impl Report {
    /// True when nothing failed.
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(|s| s.verdict != Verdict::Fail)
    }
}

fn opt(v: Option<&String>) -> &str {
    v.map_or("—", String::as_str)
}

fn pct(n: u64, total: u64) -> String {
    if total == 0 {
        return "0%".into();
    }
    format!("{:.0}%", n as f64 * 100.0 / total as f64)
}

fn shares(map: &BTreeMap<String, u64>) -> String {
    let total: u64 = map.values().sum();
    if total == 0 {
        return "—".into();
    }
    map.iter().map(|(k, v)| format!("{k} {v} ({})", pct(*v, total))).collect::<Vec<_>>().join(", ")
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "—".into();
    }
    map.iter().map(|(k, v)| format!("{k} ×{v}")).collect::<Vec<_>>().join(", ")
}

/// One client's block: a heading row, then what each hop saw of its requests.
fn client_rows(c: &ClientRow) -> [(String, String); 5] {
    [
        (
            format!("client {}", c.ip),
            format!("{} sent, {} ok; real client IP at the app on {} of {} ok", c.sent, c.ok, c.preserved, c.ok),
        ),
        ("LB saw (source address)".into(), counts(&c.lb_seen)),
        ("ingress remote_addr (TCP peer)".into(), counts(&c.ingress_peer)),
        ("ingress client IP".into(), counts(&c.ingress_client_ip)),
        ("app client_ip".into(), counts(&c.app_client_ip)),
    ]
}

/// The rows that are not per client: totals, spreads, failures.
fn total_rows(m: &Measure) -> Vec<(&'static str, String)> {
    let r = m.requests;
    let mut rows = vec![
        ("ingress client IP source", opt(m.ingress_source.as_ref()).to_owned()),
        ("app client_host (TCP peer)", opt(m.app_client_host.as_ref()).to_owned()),
        (
            "requests",
            format!(
                "{} sent, {} ok, {} failed; real client IP at the app on {} of {} ok",
                r.sent, r.ok, r.failed, m.preserved, r.ok
            ),
        ),
        ("spread per ingress pod", shares(&m.spread)),
        ("spread per node", shares(&m.spread_nodes)),
        ("spread per app pod", shares(&m.spread_app)),
    ];
    if !m.errors.is_empty() {
        rows.push(("failures", m.errors.iter().map(|(k, v)| format!("{v}× {k}")).collect::<Vec<_>>().join("; ")));
    }
    rows
}

/// A block per client (what each hop saw of that client's requests, with
/// counts), then the totals.
fn text_rows(out: &mut String, m: &Measure, indent: &str) {
    for c in &m.clients {
        for (i, (k, v)) in client_rows(c).iter().enumerate() {
            let pad = if i == 0 { "" } else { "  " };
            let _ = writeln!(out, "{indent}{pad}{k:<width$} {v}", width = 32 - pad.len());
        }
    }
    for (k, v) in total_rows(m) {
        let _ = writeln!(out, "{indent}{k:<32} {v}");
    }
}

/// True when every configuration of `s` measured the same clients, i.e.
/// the same traffic went through each, so their outcomes compare client by
/// client.
fn same_clients(s: &ScenarioResult) -> bool {
    let ips = |m: &Measure| m.clients.iter().map(|c| c.ip.clone()).collect::<Vec<_>>();
    let first = s.parts.first().map(|p| ips(&p.measure)).unwrap_or_default();
    s.parts.len() >= 2 && !first.is_empty() && s.parts.iter().all(|p| ips(&p.measure) == first)
}

/// The address seen on most requests, `+N` when there were others.
fn top(map: &BTreeMap<String, u64>) -> String {
    match map.iter().max_by_key(|(_, n)| **n) {
        None => "—".into(),
        Some((k, _)) if map.len() == 1 => k.clone(),
        Some((k, _)) => format!("{k} +{}", map.len() - 1),
    }
}

/// Headings of one configuration's side of the outcome table.
const OUTCOME_HEADINGS: [&str; 6] = ["ingress client IP", "app client IP", "200", "403", "429", "other"];

/// One configuration's side of a client's outcome row: the client IP the
/// ingress resolved, the one the app saw (on 200s), and the answers by status.
fn outcome_cells(c: &ClientRow) -> [String; 6] {
    let n = |k: &str| c.statuses.get(k).copied().unwrap_or(0);
    let other = c.sent.saturating_sub(n("200") + n("403") + n("429"));
    [
        top(&c.ingress_client_ip),
        top(&c.app_client_ip),
        n("200").to_string(),
        n("403").to_string(),
        n("429").to_string(),
        other.to_string(),
    ]
}

/// Per client, each configuration's outcome side by side (scenarios that
/// send the same traffic through several configurations).
fn text_outcomes(out: &mut String, s: &ScenarioResult) {
    if !same_clients(s) {
        return;
    }
    let _ = writeln!(out, "  per-client outcome, side by side:");
    for (i, p) in s.parts.iter().enumerate() {
        let _ = writeln!(out, "    ({}) {}", i + 1, p.label);
    }
    let side = |cells: &[String]| {
        format!("{:<17} {:<17} {:>5} {:>5} {:>5} {:>5}", cells[0], cells[1], cells[2], cells[3], cells[4], cells[5])
    };
    let headings: Vec<String> = OUTCOME_HEADINGS.iter().map(|h| (*h).to_owned()).collect();
    let mut head = format!("    {:<16}", "client");
    for i in 0..s.parts.len() {
        let _ = write!(head, " | ({}) {}", i + 1, side(&headings));
    }
    let _ = writeln!(out, "{}", head.trim_end());
    for (ci, c) in s.parts[0].measure.clients.iter().enumerate() {
        let mut row = format!("    {:<16}", c.ip);
        for p in &s.parts {
            let _ = write!(row, " |     {}", side(&outcome_cells(&p.measure.clients[ci])));
        }
        let _ = writeln!(out, "{}", row.trim_end());
    }
}

/// The same as a Markdown table.
fn markdown_outcomes(out: &mut String, s: &ScenarioResult) {
    if !same_clients(s) {
        return;
    }
    let _ = write!(out, "Per-client outcome, side by side:\n\n| client |");
    for i in 0..s.parts.len() {
        for h in OUTCOME_HEADINGS {
            let _ = write!(out, " ({}) {h} |", i + 1);
        }
    }
    let _ = write!(out, "\n|---|");
    out.push_str(&"---|".repeat(s.parts.len() * OUTCOME_HEADINGS.len()));
    out.push('\n');
    for (ci, c) in s.parts[0].measure.clients.iter().enumerate() {
        let _ = write!(out, "| {} |", c.ip);
        for p in &s.parts {
            for cell in outcome_cells(&p.measure.clients[ci]) {
                let _ = write!(out, " {cell} |");
            }
        }
        out.push('\n');
    }
    for (i, p) in s.parts.iter().enumerate() {
        let _ = writeln!(out, "\n({}) {}", i + 1, p.label);
    }
    out.push('\n');
}

/// The human report: a table per scenario and a one-line verdict.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.scenarios {
        let _ = writeln!(out, "── {} ── {}", s.name, s.setup);
        if s.verdict == Verdict::Skipped {
            let _ = writeln!(out, "  skipped: {}\n", s.reason);
            continue;
        }
        if s.parts.is_empty() {
            text_rows(&mut out, &s.measure, "  ");
        } else {
            for p in &s.parts {
                let _ = writeln!(out, "  [{}]", p.label);
                text_rows(&mut out, &p.measure, "    ");
            }
            text_outcomes(&mut out, s);
        }
        let v = match s.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "SKIPPED",
        };
        let _ = writeln!(out, "  {v}: {}\n", s.reason);
    }
    let count = |v| report.scenarios.iter().filter(|s| s.verdict == v).count();
    let _ = writeln!(
        out,
        "{} passed, {} failed, {} skipped",
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Skipped)
    );
    out
}

/// `report.md`: the same content as Markdown tables, linking the charts.
pub fn markdown(report: &Report, charts: &[(String, String)]) -> String {
    let mut out = String::from("# realip lab report\n\n| scenario | verdict | reason |\n|---|---|---|\n");
    for s in &report.scenarios {
        let _ = writeln!(out, "| {} | {:?} | {} |", s.name, s.verdict, s.reason.replace('|', "\\|"));
    }
    for s in &report.scenarios {
        let _ = writeln!(out, "\n## {}\n\n{}\n\n**{:?}**: {}\n", s.name, s.setup, s.verdict, s.reason);
        if s.verdict == Verdict::Skipped {
            continue;
        }
        for (label, m) in s.configurations() {
            if !label.is_empty() {
                let _ = writeln!(out, "### {label}\n");
            }
            if !m.clients.is_empty() {
                let _ = writeln!(
                    out,
                    "| client | sent | ok | real client IP at the app | LB saw | ingress remote_addr | ingress client IP | app client_ip |\n|---|---|---|---|---|---|---|---|"
                );
                for c in &m.clients {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {} | {} | {} |",
                        c.ip,
                        c.sent,
                        c.ok,
                        c.preserved,
                        counts(&c.lb_seen),
                        counts(&c.ingress_peer),
                        counts(&c.ingress_client_ip),
                        counts(&c.app_client_ip)
                    );
                }
                out.push('\n');
            }
            let _ = writeln!(out, "| measured | value |\n|---|---|");
            for (k, v) in total_rows(m) {
                let _ = writeln!(out, "| {k} | {} |", v.replace('|', "\\|"));
            }
            out.push('\n');
        }
        markdown_outcomes(&mut out, s);
        for (file, _) in charts.iter().filter(|(f, _)| f.starts_with(&format!("{}-", s.name))) {
            let _ = writeln!(out, "![{file}]({file})\n");
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Bar chart of requests per pod.
pub fn spread_svg(title: &str, spread: &BTreeMap<String, u64>) -> String {
    let total: u64 = spread.values().sum::<u64>().max(1);
    let (w, bar_h, gap, left) = (560, 22, 8, 150);
    let h = 40 + spread.len() * (bar_h + gap) + 10;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">{}</text>\n",
        esc(title)
    );
    for (i, (pod, n)) in spread.iter().enumerate() {
        let y = 35 + i * (bar_h + gap);
        let len = (*n as f64 / total as f64 * f64::from(w - left - 70)).round() as u64;
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{}\">{}</text><rect x=\"{left}\" y=\"{y}\" width=\"{len}\" height=\"{bar_h}\" fill=\"#4a7ebb\"/>\
             <text x=\"{}\" y=\"{}\">{n} ({})</text>",
            y + 15,
            esc(pod),
            left as u64 + len + 6,
            y + 15,
            pct(*n, total)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Stacked bars of ok (blue) and failed (red) requests per 100 ms, one
/// row per part.
pub fn timeline_svg(title: &str, rows: &[(&str, &[Slot])]) -> String {
    let slots = rows.iter().map(|(_, s)| s.len()).max().unwrap_or(0).max(1);
    let peak = rows.iter().flat_map(|(_, s)| s.iter().map(|x| x.ok + x.failed)).max().unwrap_or(1).max(1);
    let (left, row_h, col_w) = (160usize, 110usize, 6usize);
    let w = left + slots * col_w + 20;
    let h = 40 + rows.len() * (row_h + 30);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">{} (ok blue, failed red, per 100 ms)</text>\n",
        esc(title)
    );
    for (r, (label, data)) in rows.iter().enumerate() {
        let base = 40 + r * (row_h + 30) + row_h;
        let failed: u64 = data.iter().map(|s| s.failed).sum();
        let _ = writeln!(out, "<text x=\"10\" y=\"{}\">{}</text>", base - row_h / 2, esc(label));
        let _ = writeln!(out, "<text x=\"10\" y=\"{}\">{failed} failed</text>", base - row_h / 2 + 16);
        for (i, s) in data.iter().enumerate() {
            let x = left + i * col_w;
            let ok_h = (s.ok as f64 / peak as f64 * row_h as f64).round() as usize;
            let f_h = (s.failed as f64 / peak as f64 * row_h as f64).round() as usize;
            let _ = writeln!(
                out,
                "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{ok_h}\" fill=\"#4a7ebb\"/>\
                 <rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{f_h}\" fill=\"#d9534f\"/>",
                base - ok_h,
                col_w - 1,
                base - ok_h - f_h,
                col_w - 1
            );
        }
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"black\"/><text x=\"{}\" y=\"{}\">{} s</text>",
            left + slots * col_w,
            left + slots * col_w - 20,
            base + 14,
            slots / 10
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The charts for a report: `(file name, SVG)`.
pub fn charts(report: &Report) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in &report.scenarios {
        if s.verdict == Verdict::Skipped {
            continue;
        }
        let parts = s.configurations();
        let timelines: Vec<(&str, &[Slot])> =
            parts.iter().filter(|(_, m)| !m.timeline.is_empty()).map(|(l, m)| (*l, m.timeline.as_slice())).collect();
        if !timelines.is_empty() {
            out.push((format!("{}-timeline.svg", s.name), timeline_svg(&s.name, &timelines)));
        }
        for (i, (label, m)) in parts.iter().enumerate() {
            if !m.spread.is_empty() {
                let title = if label.is_empty() { s.name.clone() } else { format!("{}: {label}", s.name) };
                out.push((
                    format!("{}-spread{}.svg", s.name, if i > 0 { format!("-{i}") } else { String::new() }),
                    spread_svg(&title, &m.spread),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ip: &str, peer: &str, n: u64) -> ClientRow {
        ClientRow {
            ip: ip.into(),
            sent: n,
            ok: n,
            preserved: 0,
            lb_seen: BTreeMap::from([(ip.to_owned(), n)]),
            ingress_peer: BTreeMap::from([(peer.to_owned(), n)]),
            ingress_client_ip: BTreeMap::from([(peer.to_owned(), n)]),
            app_client_ip: BTreeMap::from([(peer.to_owned(), n)]),
            statuses: BTreeMap::from([("200".to_owned(), n)]),
        }
    }

    #[test]
    fn the_text_report_shows_each_client_s_hops_apart() {
        let m = Measure {
            clients: vec![row("203.0.113.10", "192.0.2.11", 150), row("203.0.113.20", "192.0.2.12", 149)],
            requests: Requests { sent: 299, ok: 299, failed: 0 },
            ..Measure::default()
        };
        let r = Report {
            scenarios: vec![ScenarioResult::from_parts(
                "cluster",
                "setup",
                true,
                "why".into(),
                vec![Part { label: String::new(), measure: m }],
            )],
        };
        let text = text(&r);
        let lines: Vec<&str> = text.lines().collect();
        let c1 = lines.iter().position(|l| l.trim_start().starts_with("client 203.0.113.10")).unwrap();
        let c2 = lines.iter().position(|l| l.trim_start().starts_with("client 203.0.113.20")).unwrap();
        // Under each client, only what was seen of that client's requests.
        assert!(lines[c1 + 1].contains("LB saw") && lines[c1 + 1].ends_with("203.0.113.10 ×150"), "{text}");
        assert!(lines[c1 + 2].ends_with("192.0.2.11 ×150"), "{text}");
        assert!(lines[c2 + 1].ends_with("203.0.113.20 ×149") && lines[c2 + 4].ends_with("192.0.2.12 ×149"), "{text}");
        assert!(text.contains("PASS: why"), "{text}");
        let md = markdown(&r, &[]);
        assert!(md.contains("| 203.0.113.20 | 149 | 149 | 0 | 203.0.113.20 ×149 | 192.0.2.12 ×149 |"), "{md}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["scenarios"][0]["clients"][1]["lb_seen"]["203.0.113.20"], 149);
    }

    #[test]
    fn parts_with_the_same_clients_get_their_outcomes_side_by_side() {
        let part = |label: &str, clients: Vec<ClientRow>| Part {
            label: label.into(),
            measure: Measure { clients, ..Measure::default() },
        };
        let mut limited = row("203.0.113.10", "203.0.113.10", 40);
        limited.statuses = BTreeMap::from([("200".to_owned(), 40), ("429".to_owned(), 90)]);
        limited.sent = 131; // one without a response
        let both = vec![
            part("before", vec![limited.clone(), row("203.0.113.20", "203.0.113.20", 5)]),
            part("after", vec![limited, row("203.0.113.20", "203.0.113.20", 7)]),
        ];
        let r = Report { scenarios: vec![ScenarioResult::from_parts("migrate", "setup", true, "why".into(), both)] };
        let out = text(&r);
        assert!(out.contains("per-client outcome, side by side:\n    (1) before\n    (2) after\n"), "{out}");
        let c1 = out.lines().find(|l| l.trim_start().starts_with("203.0.113.10 ")).unwrap();
        let cells: Vec<&str> = c1.split_whitespace().collect();
        // client | IPs, 200, 403, 429, other | the same for the second part
        assert_eq!(
            cells,
            [
                "203.0.113.10",
                "|",
                "203.0.113.10",
                "203.0.113.10",
                "40",
                "0",
                "90",
                "1",
                "|",
                "203.0.113.10",
                "203.0.113.10",
                "40",
                "0",
                "90",
                "1"
            ],
            "{out}"
        );
        let md = markdown(&r, &[]);
        assert!(md.contains("| 203.0.113.20 | 203.0.113.20 | 203.0.113.20 | 5 | 0 | 0 | 0 | 203.0.113.20 | 203.0.113.20 | 7 | 0 | 0 | 0 |"), "{md}");
        // Parts that measured different clients (one each) are not compared.
        let apart = vec![
            part("c1", vec![row("203.0.113.10", "203.0.113.10", 5)]),
            part("c2", vec![row("203.0.113.20", "203.0.113.20", 5)]),
        ];
        let r = Report { scenarios: vec![ScenarioResult::from_parts("gateway", "setup", true, "why".into(), apart)] };
        assert!(!text(&r).contains("side by side"));
        assert!(!markdown(&r, &[]).contains("side by side"));
    }
}
