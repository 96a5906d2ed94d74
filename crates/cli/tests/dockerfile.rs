//! The Dockerfile, checked without a container engine (none runs here):
//! every instruction is a known one with arguments, stages named by
//! `COPY --from` exist, the build uses the workspace's toolchain version and
//! package, and the final stage runs as a non-root user with the binary as
//! entrypoint. With a Docker daemon, `docker build .` is the real test.

use std::collections::HashSet;

const INSTRUCTIONS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "MAINTAINER",
];

/// Instructions with continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        cur.push_str(t.trim_end_matches('\\'));
        cur.push(' ');
        if !t.ends_with('\\') {
            let (i, args) = cur.trim().split_once(' ').unwrap_or((cur.trim(), ""));
            out.push((i.to_owned(), args.trim().to_owned()));
            cur.clear();
        }
    }
    assert!(cur.is_empty(), "a continuation line never ends");
    out
}

#[test]
fn dockerfile_is_well_formed_multi_stage_and_non_root() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let ins = instructions(&text);
    let mut stages = HashSet::new();
    for (i, args) in &ins {
        assert!(INSTRUCTIONS.contains(&i.as_str()), "unknown instruction `{i}`");
        assert!(!args.is_empty(), "`{i}` without arguments");
        if i == "FROM" {
            if let Some((_, name)) = args.split_once(" AS ") {
                stages.insert(name.trim().to_owned());
            }
        }
        if let Some(stage) = args.strip_prefix("--from=").and_then(|a| a.split_whitespace().next()) {
            assert!(stages.contains(stage), "COPY --from={stage}: no such stage before it");
        }
        for path in ["Cargo.toml", "Cargo.lock", "crates"] {
            if i == "COPY" && args.starts_with(path) {
                assert!(root.join(path).exists(), "COPY {path}: missing");
            }
        }
    }
    let froms: Vec<&String> = ins.iter().filter(|(i, _)| i == "FROM").map(|(_, a)| a).collect();
    assert!(froms.len() >= 2, "multi-stage");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let msrv = manifest.lines().find_map(|l| l.strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    assert!(froms[0].starts_with(&format!("rust:{msrv}")), "build stage uses the workspace's rust-version {msrv}");
    assert!(ins.iter().any(|(i, a)| i == "RUN" && a.contains("cargo build --release --locked -p realip")));
    let last_from = ins.iter().rposition(|(i, _)| i == "FROM").unwrap();
    let user = ins[last_from..].iter().find(|(i, _)| i == "USER").map(|(_, a)| a.as_str());
    assert!(
        user.is_some_and(|u| !u.starts_with('0') && !u.starts_with("root")),
        "final stage runs as non-root: {user:?}"
    );
    assert!(ins[last_from..].iter().any(|(i, a)| i == "ENTRYPOINT" && a.contains("realip")));
}
