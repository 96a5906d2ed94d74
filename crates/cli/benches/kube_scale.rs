//! `realip proxy --kubernetes` at 10,000 HTTPRoutes, through the
//! in-process fake API server (real list/watch/status-patch JSON, kube-rs
//! reflectors unmodified): 1 GatewayClass, 1 Gateway, 2,000 Services in 20
//! namespaces, 5,000 EndpointSlices, 10,000 HTTPRoutes (one hostname, one
//! PathPrefix match, one backendRef each), as in
//! `crates/proxy/benches/scale.rs`. Prints:
//! - time from the proxy's start to the last route being served;
//! - for each of `CHANGES` EndpointSlice changes (the last Service's slice
//!   moved between two backends): time from the change in the API server
//!   to the proxy serving it, and the proxy's CPU time (user + system,
//!   from `/proc/PID/stat`) over all of them;
//! - the same for `CHANGES` HTTPRoute changes (a route's hostname
//!   changed: served on the new one);
//! - the same for `CHANGES` edits of a ClientIPPolicy on the Gateway
//!   (timed to its status naming the new generation);
//! - the proxy's RSS (`VmRSS`, `VmHWM`) after the first config and at the
//!   end.
//!
//! Not a test: nothing is asserted about speed. Traffic goes to loopback
//! only (the proxy, and two tiny backends on 127.0.0.1 this bench runs).
//! Run: `cargo bench -p realip --bench kube_scale` (figures go to
//! docs/benchmarks.md with the machine, load and date).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use realip_lab::fakeapi::FakeApi;
use serde_json::{json, Value};

const ROUTES: usize = 10_000;
const SERVICES: usize = 2_000;
const NAMESPACES: usize = 20;
const CHANGES: u32 = 20;

/// Removes the bench's temporary directory, also on panic.
struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the proxy, also on panic.
struct Proxy(Child);
impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A backend on 127.0.0.1 answering every request with `tag` (one
/// thread; it ends with the process).
fn backend(tag: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{tag}", tag.len());
            });
        }
    });
    port
}

/// Status and body of `GET path` with `host` through the proxy.
fn get(addr: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    Some((status, out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()))
}

/// Polls every 2 ms (bounded to 120 s) until `ok`; the time it took.
fn until(what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(120), "{what}: not within 120 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    start.elapsed()
}

/// User + system CPU time of `pid` so far.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which may hold spaces): state is field 3,
    // utime 14 and stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn rss(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| status.lines().find(|l| l.starts_with(k)).map(|l| l[k.len()..].trim().to_owned());
    format!("VmRSS {}, VmHWM {}", field("VmRSS:").unwrap_or_default(), field("VmHWM:").unwrap_or_default())
}

fn slice(i: usize, j: usize, port: u16) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("svc{i}-{j}"), "namespace": format!("team{}", i % NAMESPACES),
            "labels": {"kubernetes.io/service-name": format!("svc{i}")}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]})
}

fn route(k: usize, host: &str) -> Value {
    let s = k % SERVICES;
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": format!("r{k}"), "namespace": format!("team{}", s % NAMESPACES),
            "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "infra", "sectionName": "http"}],
            "hostnames": [host],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": format!("/api/{}", k % 7)}}],
                "backendRefs": [{"name": format!("svc{s}"), "port": 80}]}]}})
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |p: usize| v[(v.len() * p / 100).min(v.len() - 1)];
    format!("median {:.1} ms, p90 {:.1} ms, max {:.1} ms", ms(at(50)), ms(at(90)), ms(*v.last().unwrap()))
}

#[allow(clippy::too_many_lines)] // one scenario, in order
fn main() {
    // `cargo bench` passes `--bench`; any other run (e.g. `cargo test
    // --benches`) only checks that this builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (one, two) = (backend("one"), backend("two"));
    let api = FakeApi::start().unwrap();
    let t = Instant::now();
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "realip"}, "spec": {"controllerName": "realip.dev/gateway-controller"}}));
    api.apply(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "realip", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
            "allowedRoutes": {"namespaces": {"from": "All"}}}]}}));
    for i in 0..SERVICES {
        api.apply(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("svc{i}"), "namespace": format!("team{}", i % NAMESPACES)},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}));
        for j in 0..(if i % 2 == 0 { 3 } else { 2 }) {
            api.apply(slice(i, j, one));
        }
    }
    for k in 0..ROUTES {
        api.apply(route(k, &format!("h{k}.example.com")));
    }
    eprintln!("fake API loaded in {:.1} s", t.elapsed().as_secs_f64());

    let dir = Dir(std::env::temp_dir().join(format!("realip-kube-scale-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let cfg = dir.0.join("realip.toml");
    std::fs::write(
        &cfg,
        // The access log goes to stdout, which is discarded.
        "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n",
    )
    .unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_realip"))
        .args(["proxy", "--kubernetes", "--gateway-class", "realip", "--config"])
        .arg(&cfg)
        .env("KUBECONFIG", api.kubeconfig(&dir.0).unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let proxy = Proxy(child);
    let pid = proxy.0.id();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr: SocketAddr = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the proxy says where it listens");
        if line.contains("\"listening\"") {
            let v: Value = serde_json::from_str(&line).unwrap();
            break v["addr"].as_str().unwrap().parse().unwrap();
        }
    };
    // Drain the log so the proxy never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    let last = ROUTES - 1;
    let path = format!("/api/{}/x", last % 7);
    let first = until("first config", || {
        get(addr, &format!("h{last}.example.com"), &path).is_some_and(|(s, b)| s == 200 && b == "one")
    });
    let first_total = started.elapsed();
    let rss_first = rss(pid);
    println!(
        "first config served: {:.2} s after the proxy started ({:.2} s of polling), {rss_first}",
        first_total.as_secs_f64(),
        first.as_secs_f64()
    );
    // Let the initial status patches settle before measuring changes.
    std::thread::sleep(Duration::from_secs(3));

    // EndpointSlice changes: the last Service's slices move between the
    // two backends; served when the answer comes from the new one.
    let svc = SERVICES - 1;
    let host = format!("h{last}.example.com");
    let mut times = Vec::new();
    let cpu0 = cpu(pid);
    for n in 0..CHANGES {
        let (port, tag) = if n % 2 == 0 { (two, "two") } else { (one, "one") };
        let t = Instant::now();
        for j in 0..2 {
            api.apply(slice(svc, j, port));
        }
        until("slice change", || get(addr, &host, &path).is_some_and(|(s, b)| s == 200 && b == tag));
        times.push(t.elapsed());
    }
    let slice_cpu = cpu(pid).saturating_sub(cpu0);
    println!(
        "EndpointSlice change → served ({CHANGES} changes, 2 slices of one Service each): {}; proxy CPU {:.1} ms per change",
        percentiles(times),
        slice_cpu.as_secs_f64() * 1000.0 / f64::from(CHANGES)
    );

    // HTTPRoute changes: one route's hostname changes; served when the
    // new hostname answers.
    let mut times = Vec::new();
    let cpu0 = cpu(pid);
    for n in 0..CHANGES {
        let new_host = format!("moved{n}.example.com");
        let t = Instant::now();
        api.apply(route(last, &new_host));
        until("route change", || get(addr, &new_host, &path).is_some_and(|(s, _)| s == 200));
        times.push(t.elapsed());
    }
    let route_cpu = cpu(pid).saturating_sub(cpu0);
    println!(
        "HTTPRoute change → served ({CHANGES} changes): {}; proxy CPU {:.1} ms per change",
        percentiles(times),
        route_cpu.as_secs_f64() * 1000.0 / f64::from(CHANGES)
    );
    // ClientIPPolicy edits on the Gateway every route is on (its trusted
    // proxies alternate): served when the policy's status says the new
    // generation (the status is written after the new chain is handed to
    // the proxy). No route reads the chain, so none is translated again.
    let policy = |n: u32| {
        json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientIPPolicy",
            "metadata": {"name": "chain", "namespace": "infra"},
            "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}],
                "trustedProxies": [if n % 2 == 0 { "10.0.0.0/8" } else { "192.0.2.0/24" }],
                "sources": ["XForwardedFor"]}})
    };
    let observed = |generation: i64| {
        api.get("ClientIPPolicy", "infra", "chain").is_some_and(|p| {
            p["status"]["ancestors"][0]["conditions"][0]["observedGeneration"].as_i64() == Some(generation)
        })
    };
    api.apply(policy(0));
    until("first ClientIPPolicy status", || observed(1));
    let mut times = Vec::new();
    let cpu0 = cpu(pid);
    for n in 1..=CHANGES {
        let t = Instant::now();
        api.apply(policy(n));
        until("ClientIPPolicy change", || observed(i64::from(n) + 1));
        times.push(t.elapsed());
    }
    let policy_cpu = cpu(pid).saturating_sub(cpu0);
    println!(
        "ClientIPPolicy change → its status written ({CHANGES} changes): {}; proxy CPU {:.1} ms per change",
        percentiles(times),
        policy_cpu.as_secs_f64() * 1000.0 / f64::from(CHANGES)
    );
    println!("RSS at the end: {}", rss(pid));
    drop(proxy);
}
