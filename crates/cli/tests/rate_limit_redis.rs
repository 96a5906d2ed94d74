//! Global rate limits against a real `redis-server` (Debian package),
//! started by each test on a free loopback port in a temp dir and killed
//! and removed after (Drop guards): replicas sharing one limit, key
//! expiry, `on_error` each way across a Redis restart, TLS and a password.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{echo, get, need, proxy, spawn, wait_port, Proc, Proxy, TempDir};

/// A redis-server on 127.0.0.1:`port` (plain or TLS), no persistence.
struct Redis {
    proc: Option<Proc>,
    port: u16,
    args: Vec<String>,
    _dir: TempDir,
}

impl Redis {
    fn start(extra: &[String], tls: bool) -> Redis {
        let dir = TempDir::new("redis");
        let port = common::free_port();
        let mut args: Vec<String> = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"]
            .iter()
            .map(ToString::to_string)
            .collect();
        args.push(dir.0.display().to_string());
        if tls {
            args.extend(["--port".into(), "0".into(), "--tls-port".into(), port.to_string()]);
        } else {
            args.extend(["--port".into(), port.to_string()]);
        }
        args.extend(extra.iter().cloned());
        let mut r = Redis { proc: None, port, args, _dir: dir };
        r.restart();
        r
    }

    /// (Re)starts the server on the same port, with empty data.
    fn restart(&mut self) {
        self.proc = None;
        self.proc = Some(spawn(Command::new("redis-server").args(&self.args)));
        wait_port(format!("127.0.0.1:{}", self.port).parse().unwrap(), 20);
    }

    fn kill(&mut self) {
        self.proc = None;
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

fn have_redis() -> bool {
    need(&["redis-server", "redis-cli"])
}

/// A proxy whose clients are named by X-Forwarded-For (from loopback).
fn limited_proxy(up: std::net::SocketAddr, store: &str, rate: &str) -> Proxy {
    proxy(&format!(
        r#"
[[listener]]
name = "web"
bind = "127.0.0.1:0"

[client_ip]
trusted = ["127.0.0.0/8"]
sources = ["xff"]

[[route]]
name = "app"
upstream = "app"

[[upstream]]
name = "app"
endpoints = ["{up}"]

[admin]
bind = "127.0.0.1:0"

[lifecycle]
drain_delay = "0s"
watch_interval = "0s"

[rate_limit_store]
{store}

[policy]
rate = {rate}
"#
    ))
}

fn status(p: &Proxy, client: &str) -> u16 {
    get(p.addr("web"), "/", &[&format!("X-Forwarded-For: {client}")]).0
}

/// Sends `n` requests for `client`, alternating over `proxies`; returns
/// (allowed, seconds taken).
fn burst(proxies: &[&Proxy], client: &str, n: usize) -> (usize, f64) {
    let t0 = Instant::now();
    let allowed = (0..n)
        .filter(|i| {
            let s = status(proxies[i % proxies.len()], client);
            assert!(s == 200 || s == 429, "unexpected status {s}");
            s == 200
        })
        .count();
    (allowed, t0.elapsed().as_secs_f64())
}

#[test]
fn two_proxies_sharing_one_redis_enforce_one_limit() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(&[], false);
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    // A generous timeout: this test is about sharing, not about a slow store.
    let store = format!("redis = \"redis://127.0.0.1:{}/0\"\ntimeout = \"2s\"", redis.port);
    let rate = r#"{ per_second = 10, burst = 20, scope = "global" }"#;
    let (a, b) = (limited_proxy(up, &store, rate), limited_proxy(up, &store, rate));
    let (both, t_both) = burst(&[&a, &b], "198.51.100.1", 60);
    let (one, t_one) = burst(&[&a], "198.51.100.2", 60);
    // GCRA: a burst of 20, then 10/s over the time taken (+1 for the token
    // that refills while the last request is in flight). Per-replica
    // buckets would let 40 + 20/s through the pair.
    let ceiling = |t: f64| 21 + Duration::from_secs_f64(t * 10.0).as_secs() as usize + 1;
    eprintln!("through both: {both} allowed in {t_both:.2}s; through one: {one} in {t_one:.2}s");
    assert!((20..=ceiling(t_both)).contains(&both), "through both: {both} allowed in {t_both:.2}s");
    assert!((20..=ceiling(t_one)).contains(&one), "through one: {one} allowed in {t_one:.2}s");
    assert!(both < 40, "{both} allowed: as many as two separate buckets");
    // Both replicas decided (each answered some 429s), through Redis.
    for p in [&a, &b] {
        assert!(
            p.counter("realip_rate_limit_decisions_total{scope=\"global\",outcome=\"limited\"") > 0,
            "{}",
            p.metrics()
        );
        assert!(p.counter("realip_rate_limit_store_duration_seconds_count") > 0, "{}", p.metrics());
        assert_eq!(p.counter("realip_rate_limit_store_errors_total"), 0, "{}", p.metrics());
    }
    // Limited clients are answered from the local cache, not Redis.
    assert!(
        a.counter("realip_rate_limit_decisions_total{scope=\"global\",outcome=\"limited\",via=\"cache\"}") > 0,
        "{}",
        a.metrics()
    );
}

/// Concurrent decisions travel in batches (one script call for many keys,
/// several hits of one key as one step): batching must not let one more
/// request through. 24 clients, 4 requests each, all at once from 12
/// threads over two proxies, burst 3 and a refill of one token per 100 s:
/// exactly 3 per client pass, whatever the batches looked like.
#[test]
fn concurrent_decisions_in_batches_grant_exactly_the_burst() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(&[], false);
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let store = format!("redis = \"redis://127.0.0.1:{}/0\"\ntimeout = \"2s\"", redis.port);
    let rate = r#"{ per_second = 0.01, burst = 3, scope = "global" }"#;
    let (a, b) = (limited_proxy(up, &store, rate), limited_proxy(up, &store, rate));
    let clients: Vec<String> = (1..=24).map(|i| format!("203.0.113.{i}")).collect();
    let allowed: Vec<std::sync::atomic::AtomicUsize> = clients.iter().map(|_| 0.into()).collect();
    let webs = [a.addr("web"), b.addr("web")];
    std::thread::scope(|s| {
        for t in 0..12 {
            let (webs, clients, allowed) = (&webs, &clients, &allowed);
            s.spawn(move || {
                for i in 0..8 {
                    let c = (t * 8 + i) % clients.len();
                    let xff = format!("X-Forwarded-For: {}", clients[c]);
                    let st = get(webs[(t + i) % 2], "/", &[&xff]).0;
                    assert!(st == 200 || st == 429, "unexpected status {st}");
                    if st == 200 {
                        allowed[c].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let per_client: Vec<usize> = allowed.iter().map(|n| n.load(std::sync::atomic::Ordering::Relaxed)).collect();
    assert_eq!(per_client, vec![3; 24], "allowed per client");
    let calls = redis.cli(&["INFO", "commandstats"]);
    eprintln!("96 decisions; Redis saw: {}", calls.lines().filter(|l| l.contains("evalsha")).collect::<String>());
    for p in [&a, &b] {
        assert_eq!(p.counter("realip_rate_limit_store_errors_total"), 0, "{}", p.metrics());
    }
}

/// A key someone else wrote with another type (`WRONGTYPE`) fails only its
/// own client's decisions (`on_error`), never those batched with it: the
/// script reads each key with `pcall`.
#[test]
fn a_key_of_the_wrong_type_fails_only_its_own_client() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(&[], false);
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let store = format!("redis = \"redis://127.0.0.1:{}/0\"\ntimeout = \"2s\"\non_error = \"deny\"", redis.port);
    let p = limited_proxy(up, &store, r#"{ per_second = 1000, burst = 1000, scope = "global" }"#);
    redis.cli(&["HSET", "realip:rl:[policy]:198.51.100.66", "a", "b"]);
    let web = p.addr("web");
    let counts: Vec<[std::sync::atomic::AtomicUsize; 2]> = (0..2).map(|_| [0.into(), 0.into()]).collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let counts = &counts;
            s.spawn(move || {
                for i in 0..10 {
                    let who = (t + i) % 2;
                    let xff = format!("X-Forwarded-For: 198.51.100.{}", [66, 67][who]);
                    let st = get(web, "/", &[&xff]).0;
                    counts[who][usize::from(st == 200)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let got: Vec<[usize; 2]> =
        counts.iter().map(|c| c.each_ref().map(|n| n.load(std::sync::atomic::Ordering::Relaxed))).collect();
    assert_eq!(got, [[40, 0], [0, 40]], "[429s, 200s] of the client with the bad key, then of the other");
    assert_eq!(p.counter("realip_rate_limit_store_errors_total{kind=\"response\"}"), 40, "{}", p.metrics());
    assert_eq!(redis.cli(&["TYPE", "realip:rl:[policy]:198.51.100.66"]), "hash", "left alone");
}

#[test]
fn keys_carry_a_ttl_and_expire() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(&[], false);
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let store = format!("redis = \"redis://127.0.0.1:{}/0\"\ntimeout = \"2s\"", redis.port);
    let p = limited_proxy(up, &store, r#"{ per_second = 2, burst = 3, scope = "global" }"#);
    let statuses: Vec<u16> = (0..4).map(|_| status(&p, "2001:db8:7:7::1")).collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    let key = "realip:rl:[policy]:2001:db8:7:7::";
    assert_eq!(redis.cli(&["--raw", "KEYS", "realip:rl:*"]), key, "one key per client /64");
    let ttl: i64 = redis.cli(&["PTTL", key]).parse().unwrap();
    // Three tokens spent at 2/s: the state is worth at most 1.5 s.
    assert!(ttl > 0 && ttl <= 1500, "PTTL {ttl}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !redis.cli(&["KEYS", "realip:rl:*"]).is_empty() {
        assert!(Instant::now() < deadline, "keys still there: {}", redis.cli(&["KEYS", "*"]));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status(&p, "2001:db8:7:7::2"), 200, "a full burst again once the key expired");
}

/// A reload from a very slow rate left a TAT years ahead in Redis: under
/// the rate in force the client waits one interval, not the old window.
#[test]
fn a_state_left_by_a_slower_rate_holds_a_client_one_interval_at_most() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(&[], false);
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let store = format!("redis = \"redis://127.0.0.1:{}/0\"\ntimeout = \"2s\"", redis.port);
    let p = limited_proxy(up, &store, r#"{ per_second = 10, burst = 20, scope = "global" }"#);
    let time = redis.cli(&["TIME"]);
    let mut parts = time.lines().map(|l| l.trim().parse::<u64>().unwrap());
    let now_us = parts.next().unwrap() * 1_000_000 + parts.next().unwrap();
    // What `per_second = 1e-7` with a large burst leaves behind: ~15 years.
    let key = "realip:rl:[policy]:198.51.100.7";
    redis.cli(&["SET", key, &(now_us + 500_000_000_000_000).to_string(), "PX", "600000"]);
    assert_eq!(status(&p, "198.51.100.7"), 429, "the burst counts as spent");
    let ttl: i64 = redis.cli(&["PTTL", key]).parse().unwrap();
    assert!(ttl > 0 && ttl <= 2000, "the key now says at most one burst (2 s): PTTL {ttl}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(&p, "198.51.100.7"), 200, "one interval (0.1 s) later");
}

/// A limit far above any real rate (what bench-rate-limit.sh uses to
/// measure the decision alone) allows requests: its emission interval
/// (0.1 µs) is below what a double of µs since 1970 resolves, and the
/// script once set `PX 0`, which Redis rejects: every request was then a
/// store error (429 under `on_error = "deny"`).
#[test]
fn a_limit_above_the_clock_resolution_allows() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(&[], false);
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let store = format!("redis = \"redis://127.0.0.1:{}/0\"\ntimeout = \"2s\"\non_error = \"deny\"", redis.port);
    let p = limited_proxy(up, &store, r#"{ per_second = 10000000, burst = 10000000, scope = "global" }"#);
    let statuses: Vec<u16> = (0..5).map(|_| status(&p, "198.51.100.9")).collect();
    assert_eq!(statuses, [200; 5]);
}

#[test]
fn on_error_local_allow_deny_across_a_redis_restart() {
    if !have_redis() {
        return;
    }
    let mut redis = Redis::start(&[], false);
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let rate = r#"{ per_second = 0.5, burst = 2, scope = "global" }"#;
    let proxies: Vec<(&str, Proxy)> = ["local", "allow", "deny"]
        .into_iter()
        .map(|mode| {
            let store =
                format!("redis = \"redis://127.0.0.1:{}/0\"\non_error = \"{mode}\"\ntimeout = \"300ms\"", redis.port);
            (mode, limited_proxy(up, &store, rate))
        })
        .collect();
    // Up: one shared limit (2 for the pair of proxies... here, each client
    // is new to Redis: 2 pass, then 429).
    for (i, (mode, p)) in proxies.iter().enumerate() {
        let c = format!("203.0.113.{}", 10 + i);
        let s: Vec<u16> = (0..3).map(|_| status(p, &c)).collect();
        assert_eq!(s, [200, 200, 429], "{mode}, Redis up");
    }
    redis.kill();
    // Down: each proxy applies its on_error (new clients: no cached 429).
    for (i, (mode, p)) in proxies.iter().enumerate() {
        let c = format!("203.0.113.{}", 20 + i);
        let s: Vec<u16> = (0..4).map(|_| status(p, &c)).collect();
        let want: &[u16] = match *mode {
            "local" => &[200, 200, 429, 429], // this replica's own bucket
            "allow" => &[200, 200, 200, 200],
            _ => &[429, 429, 429, 429],
        };
        assert_eq!(s, want, "{mode}, Redis down");
        assert_eq!(p.counter("realip_rate_limit_store_state_changes_total{to=\"down\"}"), 1, "{}", p.metrics());
        assert!(p.counter("realip_rate_limit_store_errors_total") >= 1, "{}", p.metrics());
    }
    redis.restart();
    // Recovery without restarting the proxies: trials reach Redis again.
    for (i, (mode, p)) in proxies.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        while p.counter("realip_rate_limit_store_state_changes_total{to=\"up\"}") == 0 {
            assert!(Instant::now() < deadline, "{mode}: store not up again: {}", p.metrics());
            status(p, &format!("192.0.2.{n}"));
            n = (n + 1) % 250;
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(p.counter("realip_rate_limit_store_state_changes_total{to=\"down\"}"), 1, "{mode}: one outage");
        // Counters were lost with the restart; limits hold again.
        let c = format!("198.51.100.{}", 30 + i);
        let s: Vec<u16> = (0..3).map(|_| status(p, &c)).collect();
        assert_eq!(s, [200, 200, 429], "{mode}, Redis back");
        let down_lines = p.proc.stderr.try_iter().filter(|l| l.contains("rate_limit_store_down")).count();
        assert!(down_lines <= 1, "{mode}: one log line per outage, saw {down_lines}");
    }
}

#[test]
fn tls_and_password_to_redis() {
    if !have_redis() || !need(&["openssl"]) {
        return;
    }
    let dir = TempDir::new("redis-tls");
    let d = &dir.0;
    let run = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(d).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=realip test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
    ]);
    std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "redis.pem",
    ]);
    let p = |f: &str| d.join(f).display().to_string();
    let redis = Redis::start(
        &[
            "--tls-cert-file".into(),
            p("redis.pem"),
            "--tls-key-file".into(),
            p("redis.key"),
            "--tls-ca-cert-file".into(),
            p("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
            "--requirepass".into(),
            "s3cret-test".into(),
        ],
        true,
    );
    std::fs::write(d.join("password"), "s3cret-test\n").unwrap();
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let rate = r#"{ per_second = 0.5, burst = 2, scope = "global" }"#;
    let store = |pw: &str| {
        format!(
            "redis = \"rediss://127.0.0.1:{}/0\"\nca_file = \"{}\"\npassword_file = \"{}\"\non_error = \"allow\"\ntimeout = \"2s\"",
            redis.port,
            p("ca.pem"),
            p(pw)
        )
    };
    let good = limited_proxy(up, &store("password"), rate);
    let s: Vec<u16> = (0..3).map(|_| status(&good, "203.0.113.50")).collect();
    assert_eq!(s, [200, 200, 429], "limited through Redis over TLS: {}", good.metrics());
    assert_eq!(good.counter("realip_rate_limit_store_errors_total"), 0, "{}", good.metrics());
    // A wrong password: the store is down, on_error = "allow" lets through.
    std::fs::write(d.join("wrong"), "nope\n").unwrap();
    let bad = limited_proxy(up, &store("wrong"), rate);
    let s: Vec<u16> = (0..3).map(|_| status(&bad, "203.0.113.51")).collect();
    assert_eq!(s, [200, 200, 200]);
    assert!(bad.counter("realip_rate_limit_store_errors_total") >= 1, "{}", bad.metrics());
}

#[test]
fn check_names_global_without_a_store_and_bad_store_keys() {
    let dir = TempDir::new("redis-check");
    let path = dir.0.join("realip.toml");
    let cfg = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n\n[[route]]\nupstream = \"app\"\n\
               rate = { per_second = 1, scope = \"global\" }\n\n[[upstream]]\nname = \"app\"\nendpoints = [\"127.0.0.1:9\"]\n\n\
               [policy]\nrate = { per_second = 5, burst = 10, scope = \"global\" }\n";
    let check = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_realip"))
            .args(["proxy", "--check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = check(cfg);
    assert!(!ok);
    for needle in [
        "policy.rate.scope: is \"global\" but there is no [rate_limit_store]",
        "route[0].rate.scope: is \"global\" but there is no [rate_limit_store]",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    let bad_store = format!(
        "{cfg}\n[rate_limit_store]\nredis = \"http://127.0.0.1:6379\"\npassword_env = \"REALIP_TEST_UNSET_VAR\"\n\
         password_file = \"/nonexistent\"\ntimeout = \"0s\"\n"
    );
    let (ok, err) = check(&bad_store);
    assert!(!ok);
    for needle in [
        "rate_limit_store.redis: `http://127.0.0.1:6379` is not a redis:// or rediss:// URL",
        "rate_limit_store.password_file: set password_file or password_env, not both",
        "rate_limit_store.timeout: must be more than 0",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    let (ok, err) =
        check(&format!("{cfg}\n[rate_limit_store]\nredis = \"redis://127.0.0.1:6379\"\non_error = \"maybe\"\n"));
    assert!(!ok && err.contains("on_error") && err.contains("maybe"), "{err}");
    let (ok, err) = check(&format!(
        "{cfg}\n[rate_limit_store]\nredis = \"redis://127.0.0.1:6379/0\"\npassword_env = \"REALIP_TEST_UNSET_VAR\"\nca_file = \"/x.pem\"\n"
    ));
    assert!(!ok);
    for needle in [
        "rate_limit_store.password_env: environment variable `REALIP_TEST_UNSET_VAR` is not set",
        "rate_limit_store.ca_file: is set but the URL is not rediss://",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    let (ok, err) = check(&format!(
        "{cfg}\n[rate_limit_store]\nredis = \"rediss://127.0.0.1:6380/0\"\non_error = \"deny\"\ntimeout = \"50ms\"\n"
    ));
    assert!(ok, "{err}");
}

#[test]
fn a_reload_with_the_same_store_keeps_its_connection_and_cache() {
    if !have_redis() {
        return;
    }
    let redis = Redis::start(&[], false);
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let store = format!("redis = \"redis://127.0.0.1:{}/0\"\ntimeout = \"2s\"", redis.port);
    let p = limited_proxy(up, &store, r#"{ per_second = 0.2, burst = 2, scope = "global" }"#);
    let s: Vec<u16> = (0..3).map(|_| status(&p, "203.0.113.90")).collect();
    assert_eq!(s, [200, 200, 429]);
    let clients = || redis.cli(&["CLIENT", "LIST"]).lines().filter(|l| !l.contains("cmd=client")).count();
    assert_eq!(clients(), 1, "one multiplexed connection: {}", redis.cli(&["CLIENT", "LIST"]));
    let reload = |n: u64| {
        assert!(Command::new("kill").args(["-HUP", &p.pid().to_string()]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.counter("realip_config_reloads_total{result=\"ok\"}") < n {
            assert!(Instant::now() < deadline, "reload not processed: {}", p.metrics());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    reload(1);
    // Same settings: same connection, and the limited client is still
    // answered from the cache (no new store call).
    let calls = p.counter("realip_rate_limit_store_duration_seconds_count");
    assert_eq!(status(&p, "203.0.113.90"), 429);
    assert_eq!(p.counter("realip_rate_limit_store_duration_seconds_count"), calls, "answered from the kept cache");
    assert_eq!(clients(), 1, "the connection was kept: {}", redis.cli(&["CLIENT", "LIST"]));
    // A changed store (another timeout) is a new client; the old one goes.
    let text = std::fs::read_to_string(&p.config).unwrap().replace("timeout = \"2s\"", "timeout = \"1s\"");
    std::fs::write(&p.config, text).unwrap();
    reload(2);
    assert_eq!(status(&p, "203.0.113.91"), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while clients() != 1 {
        assert!(Instant::now() < deadline, "old connection not closed: {}", redis.cli(&["CLIENT", "LIST"]));
        std::thread::sleep(Duration::from_millis(50));
    }
}
