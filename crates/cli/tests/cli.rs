//! The CLI contract of DESIGN.md, checked against the real binary: JSON
//! field names, exit codes (0 ok, 1 rejected, 2 usage) and error messages.

use std::process::{Command, Output};

use serde_json::{json, Value};

fn realip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_realip")).args(args).output().expect("run realip")
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// HAProxy `send-proxy-v2 proxy-v2-options crc32c,unique-id` capture.
const HAPROXY_V2: &str = "0d0a0d0a000d0a515549540a2111003f7f0000017f000001b47846a00300040559bf7505002937463030303030313a423437385f37463030303030313a343641305f36423036464635455f30303030";

#[test]
fn resolve_json_contract() {
    let out = realip(&[
        "resolve",
        "--peer",
        "10.0.0.2",
        "--trust",
        "10.0.0.0/8",
        "--header",
        "X-Forwarded-For: 1.2.3.4, 203.0.113.7, 10.0.0.3",
        "--json",
    ]);
    assert_eq!(json_of(&out), json!({"client_ip": "203.0.113.7", "source": "xff", "hops": 2, "warnings": []}));
}

#[test]
fn resolve_untrusted_peer_and_warnings() {
    let out = realip(&[
        "resolve",
        "--peer",
        "198.51.100.1",
        "--trust",
        "10.0.0.0/8",
        "--header",
        "X-Forwarded-For: 1.2.3.4",
        "--json",
    ]);
    assert_eq!(json_of(&out)["client_ip"], "198.51.100.1");
    let out = realip(&[
        "resolve",
        "--peer",
        "10.0.0.2",
        "--trust",
        "10.0.0.0/8",
        "--header",
        "X-Forwarded-For: 203.0.113.1, unknown",
        "--json",
    ]);
    let v = json_of(&out);
    assert_eq!((v["client_ip"].as_str(), v["source"].as_str()), (Some("10.0.0.2"), Some("peer")));
    assert!(v["warnings"][0].as_str().unwrap().contains("invalid entry"), "{v}");
}

#[test]
fn resolve_sources_strategy_and_ipv6() {
    let out = realip(&[
        "resolve",
        "--peer",
        "::1",
        "--trust",
        "loopback",
        "--source",
        "forwarded",
        "--source",
        "xff",
        "--header",
        "Forwarded: for=\"[2001:DB8::17]:4711\"",
        "--json",
    ]);
    assert_eq!(json_of(&out)["client_ip"], "2001:db8::17");
    let out = realip(&[
        "resolve",
        "--peer",
        "10.0.0.2",
        "--trust",
        "10.0.0.0/8",
        "--strategy",
        "trusted-hops:2",
        "--header",
        "X-Forwarded-For: 1.1.1.1, 198.51.100.9, 10.0.0.3",
        "--json",
    ]);
    assert_eq!(json_of(&out)["client_ip"], "198.51.100.9");
}

#[test]
fn resolve_with_proxy_protocol() {
    let pp = realip(&["pp", "encode", "--src", "203.0.113.7:5000", "--dst", "10.0.0.1:443"]);
    let hex = String::from_utf8(pp.stdout).unwrap();
    let out = realip(&[
        "resolve",
        "--peer",
        "10.0.0.9",
        "--trust",
        "10.0.0.0/8",
        "--source",
        "proxy-protocol",
        "--proxy-protocol-hex",
        hex.trim(),
        "--json",
    ]);
    let v = json_of(&out);
    assert_eq!(
        (v["client_ip"].as_str(), v["source"].as_str(), v["hops"].as_u64()),
        (Some("203.0.113.7"), Some("proxy-protocol"), Some(0))
    );

    // Untrusted sender: rejected, as the proxy would close the connection.
    let out = realip(&[
        "resolve",
        "--peer",
        "198.51.100.1",
        "--trust",
        "10.0.0.0/8",
        "--source",
        "proxy-protocol",
        "--proxy-protocol-hex",
        hex.trim(),
    ]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("not a trusted sender"), "{}", stderr(&out));

    // Malformed: the length says 63 but 12 bytes follow.
    let out = realip(&[
        "resolve",
        "--peer",
        "10.0.0.9",
        "--trust",
        "10.0.0.0/8",
        "--source",
        "proxy-protocol",
        "--proxy-protocol-hex",
        &HAPROXY_V2[..56],
    ]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("PROXY v2: declared length 63 exceeds the 12 bytes available"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2_and_name_the_fault() {
    let cases: &[(&[&str], &str)] = &[
        (&["resolve", "--peer", "10.0.0.2", "--trust", "10.0.0.0/33"], "10.0.0.0/33"),
        (&["resolve", "--peer", "not-an-ip"], "not-an-ip"),
        (&["resolve", "--peer", "10.0.0.2", "--source", "cookies"], "cookies"),
        (&["resolve", "--peer", "10.0.0.2", "--strategy", "trusted-hops:x"], "trusted-hops:x"),
        (&["resolve", "--peer", "10.0.0.2", "--header", "no colon"], "no colon"),
        (&["resolve", "--peer", "10.0.0.2", "--proxy-protocol-hex", "zz"], "not hex"),
        (&["resolve"], "--peer"),
        (&["resolve", "--peer", "10.0.0.2", "--bogus"], "--bogus"),
        (&["echo", "--listen", "nope"], "`nope` is not IP:PORT"),
        (&["echo", "--listen", "127.0.0.1:0", "--proxy-protocol", "maybe"], "`maybe` is not a PROXY protocol mode"),
        (&["echo", "--listen", "127.0.0.1:0", "--trust", "300.0.0.0/8"], "300.0.0.0/8"),
        (&["pp", "decode", "--hex", "abc"], "odd"),
        (&["pp", "encode", "--src", "1.2.3.4:1", "--dst", "[::1]:2"], "different IP families"),
        (&["pp", "encode", "--src", "1.2.3.4:1", "--dst", "1.2.3.4:2", "--v1", "--tlv", "2=00"], "--v2"),
        (&["pp", "encode", "--src", "1.2.3.4:1", "--dst", "1.2.3.4:2", "--tlv", "300=00"], "300"),
    ];
    for (args, needle) in cases {
        let out = realip(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn pp_decode_haproxy_capture() {
    let v = json_of(&realip(&["pp", "decode", "--hex", HAPROXY_V2, "--json"]));
    assert_eq!(
        v,
        json!({
            "version": 2, "command": "proxy", "family": "tcp4",
            "src": "127.0.0.1:46200", "dst": "127.0.0.1:18080",
            "tlvs": [
                {"type": 3, "hex": "0559bf75"},
                {"type": 5, "hex": "37463030303030313a423437385f37463030303030313a343641305f36423036464635455f30303030"},
            ],
        })
    );
}

#[test]
fn pp_encode_decode_round_trips() {
    let hex = String::from_utf8(
        realip(&[
            "pp",
            "encode",
            "--src",
            "[2001:db8::1]:443",
            "--dst",
            "[2001:db8::2]:8443",
            "--tlv",
            "0x02=6170702e6578616d706c65",
            "--tlv",
            "4=",
            "--crc32c",
        ])
        .stdout,
    )
    .unwrap();
    let v = json_of(&realip(&["pp", "decode", "--hex", hex.trim(), "--json"]));
    assert_eq!(
        (v["family"].as_str(), v["src"].as_str(), v["dst"].as_str()),
        (Some("tcp6"), Some("[2001:db8::1]:443"), Some("[2001:db8::2]:8443"))
    );
    let types: Vec<u64> = v["tlvs"].as_array().unwrap().iter().map(|t| t["type"].as_u64().unwrap()).collect();
    assert_eq!(types, [2, 4, 3]);

    let hex =
        String::from_utf8(realip(&["pp", "encode", "--src", "192.0.2.1:1", "--dst", "192.0.2.2:2", "--v1"]).stdout)
            .unwrap();
    assert_eq!(hex.trim(), "50524f58592054435034203139322e302e322e31203139322e302e322e32203120320d0a");
    let v = json_of(&realip(&["pp", "decode", "--hex", hex.trim(), "--json"]));
    assert_eq!(
        v,
        json!({"version": 1, "command": "proxy", "family": "tcp4", "src": "192.0.2.1:1", "dst": "192.0.2.2:2", "tlvs": []})
    );

    let hex = String::from_utf8(realip(&["pp", "encode", "--local"]).stdout).unwrap();
    let v = json_of(&realip(&["pp", "decode", "--hex", hex.trim(), "--json"]));
    assert_eq!(v, json!({"version": 2, "command": "local", "family": "unspec", "src": null, "dst": null, "tlvs": []}));

    let v = json_of(&realip(&["pp", "decode", "--hex", "50524f585920554e4b4e4f574e0d0a", "--json"]));
    assert_eq!((v["version"].as_u64(), v["family"].as_str()), (Some(1), Some("unspec")));
}

#[test]
fn pp_decode_rejects_malformed_with_exit_1() {
    for (hex, needle) in [
        ("474554202f20485454502f312e310d0a", "not a PROXY protocol header"),
        ("0d0a0d0a000d0a515549540a3111000c", "version is 3"),
        ("50524f5859205443503420312e322e332e340d0a", "expected `PROXY"),
    ] {
        let out = realip(&["pp", "decode", "--hex", hex]);
        assert_eq!(code(&out), 1, "{hex}");
        assert!(stderr(&out).contains(needle), "{hex}: {}", stderr(&out));
    }
}

#[test]
fn help_shows_examples() {
    let out = realip(&["resolve", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("Examples:") && text.contains("--trust"), "{text}");
}
