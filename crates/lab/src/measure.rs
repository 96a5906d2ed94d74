//! From what each hop recorded to a [`Measure`]: the load balancer's counts
//! per source address, the ingress access logs and the app's answers as the
//! clients received them. Shared by the namespace lab and the loopback
//! runner, so both report the same fields computed the same way.
//!
//! Invariants: every figure is counted from those records, nothing is
//! inferred from the setup. A request is attributed to its client by the
//! address it was sent from (the samples); in the ingress logs by the
//! `User-Agent: realip-lab client=<ip>` tag every lab request carries
//! ([`crate::load::user_agent`]), because a SNATing hop hides the client's
//! address from the ingress. At the load balancer, the first hop, a client
//! is the source address the LB recorded.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::load::{Sample, USER_AGENT_PREFIX};
use crate::report::{ClientRow, Measure, Requests, Slot};

/// One lab request in an ingress access log.
#[derive(Clone, Debug, Default)]
pub struct Hit {
    /// The ingress pod that logged it.
    pub pod: String,
    /// Its node, in the namespace lab.
    pub node: Option<String>,
    /// The client that sent it (from the User-Agent tag).
    pub client: Option<String>,
    /// The ingress's TCP peer.
    pub peer: Option<String>,
    /// The client IP the ingress resolved.
    pub client_ip: Option<String>,
    /// Where it took it from.
    pub source: Option<String>,
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn peer_ip(v: &serde_json::Value) -> Option<String> {
    v["peer"].as_str()?.parse::<SocketAddr>().ok().map(|a| a.ip().to_string())
}

/// The lab's requests (`/debug/ip`) in a `realip proxy` JSON access log.
pub fn ingress_log(path: &Path, pod: &str, node: Option<&str>) -> Vec<Hit> {
    json_lines(path)
        .into_iter()
        .filter(|v| v["path"] == "/debug/ip")
        .map(|v| Hit {
            pod: pod.to_owned(),
            node: node.map(str::to_owned),
            client: v["user_agent"].as_str().and_then(|ua| ua.strip_prefix(USER_AGENT_PREFIX)).map(str::to_owned),
            peer: peer_ip(&v),
            client_ip: v["client_ip"].as_str().map(str::to_owned),
            source: v["client_ip_source"].as_str().map(str::to_owned),
        })
        .collect()
}

/// Connections per peer address in an L4 `realip proxy` access log (the
/// proxying load balancer).
pub fn l4_peers(path: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ip in json_lines(path).iter().filter_map(peer_ip) {
        *out.entry(ip).or_default() += 1;
    }
    out
}

/// The most common value.
pub fn mode(values: impl Iterator<Item = String>) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(v, _)| v)
}

fn count<'a>(values: impl Iterator<Item = &'a str>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for v in values {
        *out.entry(v.to_owned()).or_default() += 1;
    }
    out
}

fn preserved(s: &Sample) -> bool {
    s.ok() && s.body.as_ref().and_then(|b| b["client_ip"].as_str()) == Some(&s.client.to_string())
}

/// Everything measured for `samples`: `lb` is what the load balancer
/// recorded per source address (`None` without one), `hits` the ingress
/// access-log lines of these requests.
pub fn measure(lb: Option<&BTreeMap<String, u64>>, hits: &[Hit], samples: &[Sample], timeline: bool) -> Measure {
    let ok: Vec<&Sample> = samples.iter().filter(|s| s.ok()).collect();
    let body = |s: &&Sample, k: &str| s.body.as_ref().and_then(|b| b[k].as_str().map(str::to_owned));
    let mut m = Measure {
        lb_seen: lb.and_then(|l| l.iter().max_by_key(|(_, n)| **n).map(|(ip, _)| ip.clone())),
        ingress_peer: mode(hits.iter().filter_map(|h| h.peer.clone())),
        ingress_client_ip: mode(hits.iter().filter_map(|h| h.client_ip.clone())),
        ingress_source: mode(hits.iter().filter_map(|h| h.source.clone())),
        app_client_host: mode(ok.iter().filter_map(|s| body(s, "client_host"))),
        app_client_ip: mode(ok.iter().filter_map(|s| body(s, "client_ip"))),
        requests: Requests {
            sent: samples.len() as u64,
            ok: ok.len() as u64,
            failed: (samples.len() - ok.len()) as u64,
        },
        preserved: samples.iter().filter(|s| preserved(s)).count() as u64,
        ..Measure::default()
    };
    for h in hits {
        *m.spread.entry(h.pod.clone()).or_default() += 1;
        if let Some(node) = &h.node {
            *m.spread_nodes.entry(node.clone()).or_default() += 1;
        }
    }
    for pod in ok.iter().filter_map(|s| body(s, "pod")) {
        *m.spread_app.entry(pod).or_default() += 1;
    }
    for s in samples.iter().filter(|s| !s.ok()) {
        let e = s.error.clone().unwrap_or_else(|| "no JSON body".into());
        // Group by kind, not by the exact text.
        let key = e.split(" (os error").next().unwrap_or(&e).to_owned();
        *m.errors.entry(key).or_default() += 1;
    }
    let clients: std::collections::BTreeSet<IpAddr> = samples.iter().map(|s| s.client).collect();
    for c in clients {
        let ip = c.to_string();
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.client == c).collect();
        let mine_ok: Vec<&&Sample> = mine.iter().filter(|s| s.ok()).collect();
        let hits: Vec<&Hit> = hits.iter().filter(|h| h.client.as_deref() == Some(ip.as_str())).collect();
        m.clients.push(ClientRow {
            sent: mine.len() as u64,
            ok: mine_ok.len() as u64,
            preserved: mine.iter().filter(|s| preserved(s)).count() as u64,
            lb_seen: lb.and_then(|l| l.get(&ip)).map(|n| BTreeMap::from([(ip.clone(), *n)])).unwrap_or_default(),
            ingress_peer: count(hits.iter().filter_map(|h| h.peer.as_deref())),
            ingress_client_ip: count(hits.iter().filter_map(|h| h.client_ip.as_deref())),
            app_client_ip: count(mine_ok.iter().filter_map(|s| s.body.as_ref().and_then(|b| b["client_ip"].as_str()))),
            statuses: mine.iter().fold(BTreeMap::new(), |mut m, s| {
                *m.entry(s.status.map_or_else(|| "none".to_owned(), |c| c.to_string())).or_default() += 1;
                m
            }),
            ip,
        });
    }
    if timeline {
        let end = samples.iter().map(|s| s.at.as_millis() as u64 / 100).max().unwrap_or(0);
        m.timeline = (0..=end).map(|i| Slot { t_ms: i * 100, ok: 0, failed: 0 }).collect();
        for s in samples {
            let slot = &mut m.timeline[(s.at.as_millis() as u64 / 100) as usize];
            if s.ok() {
                slot.ok += 1;
            } else {
                slot.failed += 1;
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(client: &str, app_sees: Option<&str>) -> Sample {
        Sample {
            at: Duration::from_millis(5),
            client: client.parse().unwrap(),
            status: app_sees.map(|_| 200),
            body: app_sees
                .map(|ip| serde_json::json!({"client_ip": ip, "client_host": "198.51.100.130", "pod": "app-1"})),
            error: app_sees.is_none().then(|| "connect timeout after 1000 ms".to_owned()),
        }
    }

    fn hit(client: &str, peer: &str) -> Hit {
        Hit {
            pod: "ingress-a".into(),
            node: Some("node1".into()),
            client: Some(client.into()),
            peer: Some(peer.into()),
            client_ip: Some(peer.into()),
            source: Some("peer".into()),
        }
    }

    #[test]
    fn rows_are_per_client_with_counts() {
        // c1 is SNATed to node1, c2 reaches the app unchanged, one c2 request fails.
        let samples = [
            sample("203.0.113.10", Some("192.0.2.11")),
            sample("203.0.113.10", Some("192.0.2.11")),
            sample("203.0.113.20", Some("203.0.113.20")),
            sample("203.0.113.20", None),
        ];
        let hits =
            [hit("203.0.113.10", "192.0.2.11"), hit("203.0.113.10", "192.0.2.11"), hit("203.0.113.20", "203.0.113.20")];
        let lb = BTreeMap::from([("203.0.113.10".to_owned(), 2), ("203.0.113.20".to_owned(), 2)]);
        let m = measure(Some(&lb), &hits, &samples, false);
        assert_eq!((m.requests.sent, m.requests.ok, m.requests.failed, m.preserved), (4, 3, 1, 1));
        let [c1, c2] = m.clients.as_slice() else { panic!("{:?}", m.clients) };
        assert_eq!((c1.ip.as_str(), c1.sent, c1.ok, c1.preserved), ("203.0.113.10", 2, 2, 0));
        assert_eq!(c1.lb_seen, BTreeMap::from([("203.0.113.10".to_owned(), 2)]));
        assert_eq!(c1.ingress_peer, BTreeMap::from([("192.0.2.11".to_owned(), 2)]));
        assert_eq!(c1.app_client_ip, BTreeMap::from([("192.0.2.11".to_owned(), 2)]));
        assert_eq!((c2.sent, c2.ok, c2.preserved), (2, 1, 1));
        assert_eq!(c2.app_client_ip, BTreeMap::from([("203.0.113.20".to_owned(), 1)]));
        assert_eq!(m.errors, BTreeMap::from([("connect timeout after 1000 ms".to_owned(), 1)]));
        assert_eq!(m.spread_nodes, BTreeMap::from([("node1".to_owned(), 3)]));
    }

    #[test]
    fn ingress_log_lines_are_attributed_by_the_user_agent_tag() {
        let dir = std::env::temp_dir().join(format!("realip-lab-measure-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("access.log");
        let ua = crate::load::user_agent("203.0.113.10".parse().unwrap());
        std::fs::write(
            &log,
            format!(
                "{{\"path\":\"/debug/ip\",\"peer\":\"192.0.2.11:40000\",\"client_ip\":\"192.0.2.11\",\"client_ip_source\":\"peer\",\"user_agent\":\"{ua}\"}}\n\
                 {{\"path\":\"/readyz\",\"peer\":\"192.0.2.11:40001\"}}\nnot json\n"
            ),
        )
        .unwrap();
        let hits = ingress_log(&log, "ingress-a", Some("node1"));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].client.as_deref(), Some("203.0.113.10"));
        assert_eq!(hits[0].peer.as_deref(), Some("192.0.2.11"));
    }
}
