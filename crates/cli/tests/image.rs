//! The container image users deploy, built and run: `scripts/image.sh
//! --local-base` builds `realip:dev` from the repository's Dockerfile on a
//! base assembled from this machine's Debian files (nothing is pulled), and
//! podman (runtime runc) runs it with `--network host` and a read-only root
//! filesystem: `realip echo` answers `/debug/ip`; `realip proxy`, its config
//! mounted read-only, proxies to it with the client in `X-Forwarded-For`;
//! both run as user 65532; SIGTERM drains (`/readyz` 503, traffic still
//! served) and exits 0. Root, podman and runc needed: skipped with the reason
//! elsewhere, a failure under `REALIP_REQUIRE_NETNS=1` or
//! `REALIP_REQUIRE_PEERS=1`. Every container is removed on drop, also when
//! an assertion fails.
//!
//! Also, without an engine: the Dockerfile's structure, and that the Helm
//! chart and `realip manifests` default to the image the script builds.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What `scripts/image.sh` tags, and what the chart and `realip manifests`
/// default to.
const IMAGE: &str = "realip:dev";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn required() -> bool {
    ["REALIP_REQUIRE_NETNS", "REALIP_REQUIRE_PEERS"].iter().any(|v| std::env::var(v).is_ok_and(|v| v == "1"))
}

/// Why the image cannot be built and run here, if it cannot.
fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if uid.as_deref() != Some("0") {
        return Some("not root (podman with runc and --network host)".into());
    }
    for (tool, package) in [("podman", "podman"), ("runc", "runc"), ("objcopy", "binutils"), ("dpkg-query", "dpkg")] {
        if !common::have(tool) {
            return Some(format!("{tool} not installed (Debian: apt-get install {package})"));
        }
    }
    None
}

fn skip_or_fail() -> bool {
    let Some(why) = unavailable() else { return false };
    assert!(!required(), "REALIP_REQUIRE_NETNS/REALIP_REQUIRE_PEERS=1 but the image cannot be built here: {why}");
    eprintln!("SKIPPED: {why}");
    true
}

fn podman() -> Command {
    let mut c = Command::new("podman");
    // crun fails on hybrid-cgroup hosts; runc works.
    c.args(["--runtime", "runc"]);
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A running container, removed (`podman rm -f`) on drop.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman().args(["rm", "-f", "-t", "0", &self.0]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

impl Container {
    /// `podman run -d` the image with the settings of the chart: host
    /// network (the test talks to it on loopback), read-only root
    /// filesystem, explicit rlimits (the defaults are refused here).
    fn run(name: &str, volume: Option<&str>, args: &[&str]) -> Container {
        let c = Container(name.to_owned());
        let mut cmd = podman();
        cmd.args(["run", "-d", "--name", name, "--pull=never", "--network", "host", "--read-only"]).args([
            "--ulimit",
            "nofile=4096:4096",
            "--ulimit",
            "nproc=4096:4096",
        ]);
        if let Some(v) = volume {
            cmd.args(["-v", v]);
        }
        let out = cmd.arg(format!("localhost/{IMAGE}")).args(args).output().unwrap();
        assert!(out.status.success(), "podman run {args:?}: {}", text(&out));
        c
    }

    fn logs(&self) -> String {
        podman().args(["logs", &self.0]).output().map(|o| text(&o)).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        let out = podman().args(["inspect", "-f", "{{.State.Pid}}", &self.0]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("{}: {}", self.0, text(&out)))
    }

    /// Waits (at most `secs`) until `addr` accepts, with the logs on failure.
    fn wait_port(&self, addr: SocketAddr, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "{} not accepting on {addr}: {}", self.0, self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit code once it has exited, waiting at most `secs`.
    fn exit_code(&self, secs: u64) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let out = podman().args(["inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", &self.0]).output();
            let out = out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
            if let Some(code) = out.strip_prefix("false ") {
                return code.parse().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "{} still running after {secs}s: {}", self.0, self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds the image with the script users run, on the local base.
///
/// The binary packed is this test's own `realip` (the profile the tests
/// were built with), so the suite does not compile the workspace a second
/// time with release LTO; what is under test is the image recipe (base,
/// user, read-only root, drain), not the optimizer. `REALIP_IMAGE_BINARY`
/// packs another one, e.g. `target/release/realip`, the binary
/// `scripts/image.sh` ships when run by hand.
fn build() {
    let bin = std::env::var_os("REALIP_IMAGE_BINARY")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_realip")), PathBuf::from);
    assert!(bin.exists(), "REALIP_IMAGE_BINARY {} does not exist", bin.display());
    let started = Instant::now();
    let out = Command::new(root().join("scripts/image.sh"))
        .arg("--local-base")
        .current_dir(root())
        .env("REALIP_BINARY", &bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/image.sh --local-base: {}", text(&out));
    eprintln!("{} ({:.1} s, binary {})", text(&out).trim(), started.elapsed().as_secs_f64(), bin.display());
}

fn status_uid(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find(|l| l.starts_with("Uid:")).unwrap().to_owned()
}

/// The mount options of the process's `/`.
fn root_mount_options(pid: u32) -> String {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    // Fields: id parent major:minor root mount-point options ...
    info.lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.get(4) == Some(&"/"))
        .map(|f| f[5].to_owned())
        .unwrap_or_default()
}

/// One lab request (`GET /debug/ip`) from `source`, as the app answered it.
fn request_from(source: &str, target: SocketAddr) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let load = realip_lab::load::Load::default();
    let (status, body) = rt
        .block_on(realip_lab::load::request(source.parse().unwrap(), target, &[], &load))
        .unwrap_or_else(|e| panic!("request to {target}: {e}"));
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

#[test]
fn the_image_builds_and_runs_echo_and_proxy_as_non_root_on_a_read_only_root_and_drains_on_sigterm() {
    if skip_or_fail() {
        return;
    }
    build();
    let out = podman().args(["image", "inspect", &format!("localhost/{IMAGE}"), "--format", "{{.Size}}"]).output();
    let size = out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap();
    eprintln!("image {IMAGE}: {:.1} MB", size.parse::<f64>().unwrap_or_else(|_| panic!("size {size:?}")) / 1e6);

    let tag = format!("realip-test-{}", std::process::id());
    let (echo_port, proxy_port, admin_port) = (common::free_port(), common::free_port(), common::free_port());
    let echo_addr: SocketAddr = format!("127.0.0.1:{echo_port}").parse().unwrap();
    let echo = Container::run(
        &format!("{tag}-echo"),
        None,
        &["echo", "--listen", &echo_addr.to_string(), "--trust", "127.0.0.1/32"],
    );
    echo.wait_port(echo_addr, 20);
    let (status, body) = common::get(echo_addr, "/debug/ip", &[]);
    assert_eq!((status, body["client_ip"].as_str()), (200, Some("127.0.0.1")), "{body}");

    // The proxy, its config on a read-only volume.
    let dir = TempDir(std::env::temp_dir().join(format!("{tag}-config")));
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(
        dir.0.join("proxy.toml"),
        format!(
            "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:{proxy_port}\"\n\n[forward]\nx_forwarded_for = \"append\"\n\n\
             [[route]]\nupstream = \"app\"\n\n[[upstream]]\nname = \"app\"\nendpoints = [\"{echo_addr}\"]\n\n\
             [admin]\nbind = \"127.0.0.1:{admin_port}\"\n\n[lifecycle]\ndrain_delay = \"10s\"\ndrain_timeout = \"5s\"\n"
        ),
    )
    .unwrap();
    let proxy = Container::run(
        &format!("{tag}-proxy"),
        Some(&format!("{}:/etc/realip:ro", dir.0.display())),
        &["proxy", "--config", "/etc/realip/proxy.toml"],
    );
    let proxy_addr: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
    proxy.wait_port(proxy_addr, 20);
    proxy.wait_port(admin, 20);
    let (status, body) = request_from("127.0.0.10", proxy_addr);
    assert_eq!(status, 200, "{body}\n{}", proxy.logs());
    assert_eq!(body["client_ip"], "127.0.0.10", "{body}");
    assert_eq!(body["x_forwarded_for"], "127.0.0.10", "{body}");

    // Non-root, read-only root filesystem.
    for c in [&echo, &proxy] {
        let pid = c.pid();
        let uid = status_uid(pid);
        assert_eq!(uid.split_whitespace().skip(1).collect::<Vec<_>>(), ["65532"; 4], "{}: {uid}", c.0);
        let opts = root_mount_options(pid);
        assert!(opts.split(',').any(|o| o == "ro"), "{}: / mounted {opts}", c.0);
    }

    // SIGTERM: /readyz turns 503 at once, traffic is still served during
    // drain_delay, then the process exits 0.
    let (ready, _) = common::raw_http(admin, b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(ready, 200);
    let out = podman().args(["kill", "--signal", "TERM", &proxy.0]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // Generous: on a loaded 2-CPU machine podman may deliver the signal
    // late; drain_delay (10 s) keeps traffic served meanwhile.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let (ready, _) =
            common::raw_http(admin, b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        if ready == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "/readyz still {ready} after SIGTERM: {}", proxy.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = request_from("127.0.0.10", proxy_addr);
    assert_eq!((status, body["client_ip"].as_str()), (200, Some("127.0.0.10")), "served while draining: {body}");
    assert_eq!(proxy.exit_code(30), 0, "{}", proxy.logs());

    let names = [echo.0.clone(), proxy.0.clone()];
    drop((echo, proxy));
    let left = podman().args(["ps", "-a", "--format", "{{.Names}}"]).output().unwrap();
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(!names.iter().any(|n| left.lines().any(|l| l == n)), "containers left: {left}");
}

#[test]
fn the_chart_and_manifests_default_to_the_image_the_script_builds() {
    let script = std::fs::read_to_string(root().join("scripts/image.sh")).unwrap();
    assert!(script.contains(&format!("tag={IMAGE}\n")), "scripts/image.sh builds {IMAGE}");
    let values = std::fs::read_to_string(root().join("deploy/helm/realip/values.yaml")).unwrap();
    let v: serde_json::Value = serde_norway::from_str(&values).unwrap();
    let (repo, tag) = IMAGE.split_once(':').unwrap();
    assert_eq!((v["image"]["repository"].as_str(), v["image"]["tag"].as_str()), (Some(repo), Some(tag)));
    let out = Command::new(env!("CARGO_BIN_EXE_realip")).arg("manifests").output().unwrap();
    let yaml = String::from_utf8_lossy(&out.stdout);
    let images: Vec<&str> = yaml.lines().filter_map(|l| l.trim().strip_prefix("image: ")).collect();
    assert!(!images.is_empty() && images.iter().all(|i| i.trim_matches('"') == IMAGE), "{images:?}");
}

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

/// What holds without an engine: the final stage is the distroless `cc`
/// base by default (overridable, which is how CI builds without pulling),
/// copies the cargo-built binary, runs as non-root with it as entrypoint;
/// `.dockerignore` sends only that binary to the daemon.
#[test]
fn dockerfile_copies_the_cargo_binary_onto_a_configurable_distroless_base_as_non_root() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let ins = instructions(&text);
    let known = ["FROM", "ARG", "COPY", "USER", "EXPOSE", "ENTRYPOINT", "CMD", "LABEL", "ENV", "WORKDIR"];
    for (i, args) in &ins {
        assert!(known.contains(&i.as_str()), "unexpected instruction `{i}`");
        assert!(!args.is_empty(), "`{i}` without arguments");
    }
    assert!(ins.iter().any(|(i, a)| i == "ARG" && a == "BASE=gcr.io/distroless/cc-debian12:nonroot"), "{ins:?}");
    let froms: Vec<&String> = ins.iter().filter(|(i, _)| i == "FROM").map(|(_, a)| a).collect();
    assert_eq!(froms, ["${BASE}"], "one stage, on the BASE argument");
    assert!(ins.iter().any(|(i, a)| i == "ARG" && a == "BINARY=target/release/realip"));
    assert!(ins.iter().any(|(i, a)| i == "COPY" && a == "${BINARY} /usr/local/bin/realip"));
    let user = ins.iter().find(|(i, _)| i == "USER").map(|(_, a)| a.as_str());
    assert_eq!(user, Some("65532:65532"), "runs as the base's nonroot user");
    assert!(ins.iter().any(|(i, a)| i == "ENTRYPOINT" && a.contains("/usr/local/bin/realip")));
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let rules: Vec<&str> = ignore.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
    assert_eq!(rules, ["*", "!target/release/realip"]);
}
