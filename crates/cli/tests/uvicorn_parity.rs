//! Parity with the seed guide's app server, proven against the real thing:
//! uvicorn (pinned, installed from PyPI into a throwaway virtualenv) with
//! `--proxy-headers --forwarded-allow-ips=...`, and `realip echo` with the
//! same trust, answer the same table of requests. Where realip differs on
//! purpose, the row says what each one answers (docs/conformance.md).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::{echo, free_port, get, peer_missing, spawn, wait_port, Proc};

/// The smallest ASGI app returning what uvicorn decided: `request.client.host`.
const APP: &str = r#"
import json

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    client = scope.get("client")
    body = json.dumps({"client_host": client[0] if client else None}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"#;

fn uvicorn(python: &Path, allow: &str) -> (Proc, SocketAddr) {
    let app_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("uvicorn-app");
    std::fs::create_dir_all(&app_dir).unwrap();
    std::fs::write(app_dir.join("parity_app.py"), APP).unwrap();
    let port = free_port();
    let p = spawn(
        Command::new(python)
            .args([
                "-m",
                "uvicorn",
                "parity_app:app",
                "--host",
                "127.0.0.1",
                "--log-level",
                "warning",
                "--proxy-headers",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--forwarded-allow-ips={allow}"))
            .arg("--app-dir")
            .arg(&app_dir),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_port(addr, 30);
    (p, addr)
}

struct Row {
    what: &'static str,
    headers: &'static [&'static str],
    /// What uvicorn answers.
    uvicorn: &'static str,
    /// What realip answers (the same unless the row documents a difference).
    realip: &'static str,
}

const fn same(what: &'static str, headers: &'static [&'static str], both: &'static str) -> Row {
    Row { what, headers, uvicorn: both, realip: both }
}

fn run_table(python: &Path, allow: &str, realip_trust: &[&str], rows: &[Row]) {
    let (_u, u_addr) = uvicorn(python, allow);
    let mut args = vec!["--source", "xff"];
    for t in realip_trust {
        args.extend(["--trust", t]);
    }
    let (_e, e_addr) = echo(&args);
    let mut wrong = Vec::new();
    for row in rows {
        let (_, u) = get(u_addr, "/debug/ip", row.headers);
        let (_, r) = get(e_addr, "/debug/ip", row.headers);
        let (u, r) =
            (u["client_host"].as_str().unwrap_or("?").to_owned(), r["client_ip"].as_str().unwrap_or("?").to_owned());
        if u != row.uvicorn || r != row.realip {
            wrong.push(format!(
                "[{allow}] {}: uvicorn {u} (want {}), realip {r} (want {})",
                row.what, row.uvicorn, row.realip
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn uvicorn_and_realip_agree_on_the_seed_guide_setup() {
    if !common::have("python3") && peer_missing("python3 is not installed") {
        return;
    }
    let Some(python) = common::uvicorn_python() else {
        peer_missing("could not create a virtualenv with uvicorn from PyPI");
        return;
    };

    // The peer (this test, 127.0.0.1) is a trusted proxy, as the guide's
    // ingress is for `--forwarded-allow-ips="10.0.0.0/8,127.0.0.1"`.
    run_table(
        &python,
        "10.0.0.0/8,127.0.0.1",
        &["10.0.0.0/8", "127.0.0.1"],
        &[
            same("no header", &[], "127.0.0.1"),
            same("honest single hop", &["X-Forwarded-For: 203.0.113.7"], "203.0.113.7"),
            same("forged left entry", &["X-Forwarded-For: 1.2.3.4, 203.0.113.7"], "203.0.113.7"),
            same(
                "trusted hops skipped",
                &["X-Forwarded-For: 1.2.3.4, 203.0.113.7, 10.1.2.3, 127.0.0.1"],
                "203.0.113.7",
            ),
            same("all trusted: leftmost", &["X-Forwarded-For: 10.9.9.9, 10.1.2.3"], "10.9.9.9"),
            same("IPv6 entry", &["X-Forwarded-For: 1.2.3.4, 2001:db8::7"], "2001:db8::7"),
            same("port stripped", &["X-Forwarded-For: 203.0.113.7:5555"], "203.0.113.7"),
            same("bracketed IPv6 with port", &["X-Forwarded-For: [2001:db8::7]:443"], "2001:db8::7"),
            same(
                "repeated lines join in order",
                &["X-Forwarded-For: 1.2.3.4", "X-Forwarded-For: 203.0.113.7, 10.1.2.3"],
                "203.0.113.7",
            ),
            same("empty header", &["X-Forwarded-For: "], "127.0.0.1"),
            Row {
                what: "non-IP entry: uvicorn returns it as the host, realip stops and keeps the peer",
                headers: &["X-Forwarded-For: 203.0.113.7, unknown"],
                uvicorn: "unknown",
                realip: "127.0.0.1",
            },
            Row {
                what: "IPv4-mapped entry: realip unwraps it",
                headers: &["X-Forwarded-For: ::ffff:203.0.113.7"],
                uvicorn: "::ffff:203.0.113.7",
                realip: "203.0.113.7",
            },
        ],
    );

    // The peer is not trusted: forged headers are ignored by both.
    run_table(
        &python,
        "10.0.0.0/8",
        &["10.0.0.0/8"],
        &[
            same("untrusted peer, forged XFF", &["X-Forwarded-For: 1.2.3.4"], "127.0.0.1"),
            same("untrusted peer, forged chain", &["X-Forwarded-For: 1.2.3.4, 10.1.2.3"], "127.0.0.1"),
        ],
    );

    // uvicorn `*` takes the leftmost entry, which any client can forge.
    // realip has no `*`; trusting the real ingress (here 127.0.0.1) gives
    // the rightmost untrusted entry instead.
    run_table(
        &python,
        "*",
        &["127.0.0.1"],
        &[
            Row {
                what: "forged left entry under `*`",
                headers: &["X-Forwarded-For: 1.2.3.4, 203.0.113.7"],
                uvicorn: "1.2.3.4",
                realip: "203.0.113.7",
            },
            same("single hop under `*`", &["X-Forwarded-For: 203.0.113.7"], "203.0.113.7"),
        ],
    );
    // Written out as "trust everyone", realip gives the same forgeable answer.
    run_table(
        &python,
        "*",
        &["0.0.0.0/0", "::/0"],
        &[same("`*` vs 0.0.0.0/0 + ::/0", &["X-Forwarded-For: 1.2.3.4, 203.0.113.7"], "1.2.3.4")],
    );
}
