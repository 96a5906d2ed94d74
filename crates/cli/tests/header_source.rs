//! `--source header:NAME` (DESIGN.md CLI contract): one address in a named
//! header such as CF-Connecting-IP, trusted like X-Real-IP, reported as
//! `header:NAME`; bad names are usage errors that say what is wrong; the
//! proxy's TOML takes it through the same parser and logs the provenance.

mod common;

use std::process::{Command, Output};

use common::{get, proxy, wait_line};

use serde_json::{json, Value};

fn realip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_realip")).args(args).output().expect("run realip")
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn resolve_reads_a_named_header_from_a_trusted_hop_only() {
    let args = |peer: &'static str| {
        [
            "resolve",
            "--peer",
            peer,
            "--trust",
            "10.0.0.0/8",
            "--source",
            "header:CF-Connecting-IP",
            "--source",
            "xff",
            "--header",
            "cf-connecting-ip: 203.0.113.7",
            "--header",
            "X-Forwarded-For: 198.51.100.2",
            "--json",
        ]
    };
    let out = realip(&args("10.0.0.2"));
    assert_eq!(
        json_of(&out),
        json!({"client_ip": "203.0.113.7", "source": "header:cf-connecting-ip", "hops": 1, "warnings": []})
    );
    let out = realip(&args("198.51.100.9"));
    assert_eq!(json_of(&out), json!({"client_ip": "198.51.100.9", "source": "peer", "hops": 0, "warnings": []}));
    let out = realip(&args("10.0.0.2")[..args("10.0.0.2").len() - 1]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(source: header:cf-connecting-ip, hop 1)"), "{text}");
}

#[test]
fn bad_header_sources_are_usage_errors() {
    for (src, why) in [
        ("header:", "the header name is empty"),
        ("header:x-forwarded-for", "has its own source"),
        ("header:bad name", "character"),
    ] {
        let out = realip(&["resolve", "--peer", "10.0.0.2", "--source", src]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{src}: {err}");
        assert!(err.contains(why), "{src}: {err}");
    }
}

#[test]
fn the_proxy_resolves_from_the_named_header_of_a_trusted_hop() {
    let (_echo, up) = common::echo(&["--trust", "127.0.0.0/8"]);
    let cfg = common::base(up, "").replace(
        "[client_ip]\ntrusted = [\"10.0.0.0/8\"]",
        "[client_ip]\ntrusted = [\"127.0.0.0/8\"]\nsources = [\"proxy-protocol\", \"header:CF-Connecting-IP\", \"xff\"]",
    );
    assert!(cfg.contains("header:CF-Connecting-IP"), "{cfg}");
    let p = proxy(&cfg);
    let (s, v) = get(p.addr("web"), "/debug/ip", &["CF-Connecting-IP: 203.0.113.7", "X-Forwarded-For: 198.51.100.2"]);
    assert_eq!(s, 200);
    assert_eq!(v["x_real_ip"], "203.0.113.7", "{v}");
    let line = wait_line(&p.proc.stdout, "\"path\":\"/debug/ip\"", 10);
    let log: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (log["client_ip"].as_str(), log["client_ip_source"].as_str()),
        (Some("203.0.113.7"), Some("header:cf-connecting-ip")),
        "{log}"
    );
}
