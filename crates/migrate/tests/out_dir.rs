//! `--out DIR`: a rerun replaces its own files (objects that are gone do not
//! linger for `kubectl apply -f DIR`), and a directory holding anything else
//! is refused untouched.

use std::path::PathBuf;

use serde_json::json;

/// A directory under the system temp dir, removed on drop (also on failure).
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("realip-migrate-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn route(name: &str) -> serde_json::Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name, "namespace": "web"}, "spec": {}})
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn reruns_replace_their_own_files_and_foreign_dirs_are_refused() {
    let d = Dir::new("out");
    let out = d.0.join("gateway");
    realip_migrate::write_dir(&[route("a"), route("b")], &out).unwrap();
    assert_eq!(listing(&out), [".realip-migrate", "httproute_web_a.yaml", "httproute_web_b.yaml"]);
    // `b` is gone from the second run: its file goes too.
    realip_migrate::write_dir(&[route("a")], &out).unwrap();
    assert_eq!(listing(&out), [".realip-migrate", "httproute_web_a.yaml"]);
    // A file the user put there is never removed, even if listed by a forged manifest.
    std::fs::write(out.join("mine.yaml"), "kind: Secret\n").unwrap();
    std::fs::write(out.join(".realip-migrate"), "mine.yaml\n../escape.yaml\nhttproute_web_a.yaml\n").unwrap();
    realip_migrate::write_dir(&[route("c")], &out).unwrap();
    assert_eq!(listing(&out), [".realip-migrate", "httproute_web_c.yaml", "mine.yaml"]);
    // A non-empty directory no run wrote: refused, untouched.
    let foreign = d.0.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("deployment.yaml"), "kind: Deployment\n").unwrap();
    let err = realip_migrate::write_dir(&[route("a")], &foreign).unwrap_err().to_string();
    assert!(err.contains("not empty") && err.contains("foreign"), "{err}");
    assert_eq!(listing(&foreign), ["deployment.yaml"]);
}

/// `--format json` prints the objects as one v1 List: JSON only, applicable as is.
#[test]
fn objects_as_one_json_list() {
    let text = realip_migrate::to_json(&[route("a"), route("b")]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!((v["apiVersion"].as_str(), v["kind"].as_str()), (Some("v1"), Some("List")));
    assert_eq!(v["items"][1]["metadata"]["name"], "b");
}

/// `web` + `a-b` and `web-a` + `b` are two files (with `-` as the
/// separator both were `httproute-web-a-b.yaml`, and one object replaced
/// the other in silence); a name too long for a file name is cut with a
/// hash; one object twice writes nothing.
#[test]
fn every_object_gets_its_own_file() {
    let dir = Dir::new("own-file");
    let route = |ns: &str, name: &str| json!({"kind": "HTTPRoute", "metadata": {"namespace": ns, "name": name}});
    let out = dir.0.join("out");
    realip_migrate::write_dir(&[route("web", "a-b"), route("web-a", "b")], &out).unwrap();
    assert_eq!(listing(&out), [".realip-migrate", "httproute_web-a_b.yaml", "httproute_web_a-b.yaml"]);
    let long = "x".repeat(253);
    let name = realip_migrate::file_name(&route("web", &long));
    assert!(name.len() <= 255 && std::path::Path::new(&name).extension().is_some_and(|e| e == "yaml"), "{name}");
    assert_ne!(name, realip_migrate::file_name(&route("web", &"x".repeat(252))));
    let twice = dir.0.join("twice");
    let e = realip_migrate::write_dir(&[route("web", "a"), route("web", "a")], &twice).unwrap_err();
    assert!(e.to_string().contains("httproute_web_a.yaml"), "{e}");
    assert!(!twice.exists() || listing(&twice).is_empty(), "nothing written");
}

/// A write that fails part way (here a name with `/`, which the file system
/// takes as a missing directory; in real life a full disk or a permission)
/// leaves the directory exactly as the previous run left it: no new file,
/// no old one removed, no staging left behind (N8).
#[test]
fn a_failed_write_leaves_the_directory_as_it_was() {
    let d = Dir::new("partial");
    let out = d.0.join("gateway");
    realip_migrate::write_dir(&[route("a")], &out).unwrap();
    let before = listing(&out);
    let manifest = std::fs::read_to_string(out.join(".realip-migrate")).unwrap();
    let err = realip_migrate::write_dir(&[route("b"), route("c/d")], &out).unwrap_err().to_string();
    assert!(err.contains("c/d"), "{err}");
    assert_eq!(listing(&out), before);
    assert_eq!(std::fs::read_to_string(out.join(".realip-migrate")).unwrap(), manifest);
    // Into a new directory: nothing is left, not even the directory.
    let fresh = d.0.join("fresh");
    assert!(realip_migrate::write_dir(&[route("b"), route("c/d")], &fresh).is_err());
    assert!(!fresh.exists(), "{:?}", listing(&fresh));
}

/// A destination that cannot be replaced (here a directory where a file
/// goes) fails the run before anything is touched: the previous run's files,
/// policies included, all stay, and no staging or backup directory is left.
#[test]
fn a_failed_replace_keeps_the_previous_run_whole() {
    let d = Dir::new("rollback");
    let out = d.0.join("gateway");
    let policy = json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientAccessPolicy", "metadata": {"name": "a", "namespace": "web"}, "spec": {}});
    realip_migrate::write_dir(&[route("a"), policy.clone()], &out).unwrap();
    let before = listing(&out);
    let text = |n: &str| std::fs::read_to_string(out.join(n)).unwrap();
    let policy_file = before.iter().find(|n| n.starts_with("clientaccesspolicy")).unwrap().clone();
    let policy_text = text(&policy_file);
    std::fs::remove_file(out.join("httproute_web_a.yaml")).unwrap();
    std::fs::create_dir(out.join("httproute_web_a.yaml")).unwrap();
    let err = realip_migrate::write_dir(&[route("a"), policy], &out).unwrap_err().to_string();
    assert!(err.contains("httproute_web_a.yaml"), "{err}");
    assert_eq!(listing(&out), before, "nothing added or removed");
    assert_eq!(text(&policy_file), policy_text);
    // With the obstacle gone, a rerun replaces the previous run's files.
    std::fs::remove_dir(out.join("httproute_web_a.yaml")).unwrap();
    realip_migrate::write_dir(&[route("b")], &out).unwrap();
    assert_eq!(listing(&out), [".realip-migrate", "httproute_web_b.yaml"]);
}

/// Sixth attack review, R6-6: a manifest planted as a symlink is refused
/// (the file it points to is neither read nor written), and a leftover
/// staging or backup directory of this pid is never reused nor removed.
#[cfg(unix)]
#[test]
fn planted_manifest_symlinks_and_leftover_dirs_are_left_alone() {
    let d = Dir::new("planted");
    std::fs::create_dir_all(&d.0).unwrap();
    let victim = d.0.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let out = d.0.join("gateway");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink("../victim.txt", out.join(".realip-migrate")).unwrap();
    let err = realip_migrate::write_dir(&[route("a")], &out).unwrap_err();
    let why = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(err.to_string().ends_with(".realip-migrate") && why.contains("not a regular file"), "{err}: {why}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(listing(&out), [".realip-migrate"]);
    // Leftovers of a killed run with the same pid (a container's pid 1):
    // kept with their contents; this run uses names of its own.
    std::fs::remove_file(out.join(".realip-migrate")).unwrap();
    let pid = std::process::id();
    for what in ["staging", "backup"] {
        let left = out.join(format!(".realip-migrate.{what}-{pid}-0"));
        std::fs::create_dir(&left).unwrap();
        std::fs::write(left.join("keep"), "x").unwrap();
    }
    // A directory holding only this run's leftovers is not empty: refused, untouched.
    assert!(realip_migrate::write_dir(&[route("a")], &out).is_err());
    std::fs::write(out.join(".realip-migrate"), "").unwrap();
    realip_migrate::write_dir(&[route("a")], &out).unwrap();
    realip_migrate::write_dir(&[route("b")], &out).unwrap();
    let staging = format!(".realip-migrate.staging-{pid}-0");
    let backup = format!(".realip-migrate.backup-{pid}-0");
    let mut want =
        vec![".realip-migrate".to_owned(), backup.clone(), "httproute_web_b.yaml".to_owned(), staging.clone()];
    want.sort();
    assert_eq!(listing(&out), want);
    for left in [staging, backup] {
        assert_eq!(std::fs::read_to_string(out.join(left).join("keep")).unwrap(), "x");
    }
    // The manifest is a regular file again, replaced (not written through).
    assert!(out.join(".realip-migrate").symlink_metadata().unwrap().is_file());
}
