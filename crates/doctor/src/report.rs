//! Reports: human text (grouped by object), JSON, and SARIF 2.1.0 for code
//! scanning. SARIF rule descriptions come from the catalogue
//! ([`crate::catalog`]), never from whichever finding came first; result
//! locations are relative to the directory the doctor ran in
//! (`uriBaseId: SRCROOT`) when the file is under it.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::catalog;
use crate::finding::{Finding, Severity};

/// Where the rules are documented (`docs/doctor.md` of the project).
pub fn docs_uri() -> String {
    format!("{}/blob/main/docs/doctor.md", env!("CARGO_PKG_REPOSITORY"))
}

/// Human text, grouped by object, with the fix under each finding;
/// severities in colour when `color` (stdout is a terminal).
/// `controllers` are the instances recognised: with none, the text says so.
pub fn text(findings: &[Finding], controllers: &[String], color: bool) -> String {
    let mut out = String::new();
    if findings.is_empty() {
        if controllers.is_empty() {
            return "realip doctor: no findings; no ingress controller or gateway recognised in the input (only the app and Service rules ran)\n".into();
        }
        return format!("realip doctor: no findings ({} checked)\n", controllers.join("; "));
    }
    let mut last = None;
    for f in findings {
        if last != Some(&f.object) {
            let _ = writeln!(out, "{} ({}:{})", f.object, f.file, f.line);
            last = Some(&f.object);
        }
        let sev = match (color, f.severity) {
            (true, Severity::Error) => format!("\x1b[31m{}\x1b[0m", f.severity),
            (true, Severity::Warning) => format!("\x1b[33m{}\x1b[0m", f.severity),
            (false, s) => s.to_string(),
        };
        let _ = writeln!(out, "  {sev} [{}] {}:{}: {}", f.rule, f.file, f.line, f.message);
        let _ = writeln!(out, "    why: {}", f.why);
        let _ = writeln!(out, "    fix: {}", f.fix);
    }
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let _ = writeln!(out, "\n{errors} errors, {} warnings", findings.len() - errors);
    if controllers.is_empty() {
        let _ = writeln!(out, "(no ingress controller or gateway recognised in the input)");
    }
    out
}

/// JSON: `{"findings": [...], "controllers": [...]}`.
pub fn json(findings: &[Finding], controllers: &[String]) -> String {
    json!({ "findings": findings, "controllers": controllers }).to_string()
}

/// A file name relative to `root` (forward slashes), or `None` when it is
/// not under it (stdin, the cluster, a URL, another tree).
fn relative(file: &str, root: &std::path::Path) -> Option<String> {
    if file == "-" || file == "cluster" || file.contains("://") {
        return None;
    }
    let p = std::path::Path::new(file);
    let abs = if p.is_absolute() { p.to_path_buf() } else { root.join(p) };
    let rel = abs.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    (!parts.iter().any(|p| p == "..")).then(|| parts.join("/"))
}

/// SARIF 2.1.0: one rule per id used, described from the catalogue; file
/// locations relative to `root` with `uriBaseId: SRCROOT`.
pub fn sarif(findings: &[Finding], root: &std::path::Path) -> String {
    let mut ids: Vec<&str> = findings.iter().map(|f| f.rule).collect();
    ids.sort_unstable();
    ids.dedup();
    let docs = docs_uri();
    let rules: Vec<Value> = ids
        .iter()
        .map(|id| {
            let r = catalog::rule(id);
            json!({
                "id": r.id,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.why},
                "help": {"text": format!("Fix: {}", r.fix)},
                "helpUri": format!("{docs}#{}", r.id),
                "defaultConfiguration": {"level": match r.severity { Severity::Error => "error", Severity::Warning => "warning" }},
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let artifact = match relative(&f.file, root) {
                Some(rel) => json!({"uri": rel, "uriBaseId": "SRCROOT"}),
                None => json!({"uri": f.file}),
            };
            json!({
                "ruleId": f.rule,
                "ruleIndex": ids.iter().position(|i| *i == f.rule),
                "level": match f.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": {"text": format!("{} ({}). Fix: {}", f.message, f.object, f.fix)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": artifact,
                    "region": {"startLine": f.line.max(1)}
                }}]
            })
        })
        .collect();
    let root_uri = format!("file://{}/", root.display().to_string().trim_end_matches('/'));
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "realip doctor", "version": env!("CARGO_PKG_VERSION"), "informationUri": docs, "rules": rules}},
            "originalUriBaseIds": {"SRCROOT": {"uri": root_uri}},
            "results": results
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let root = std::path::Path::new("/repo");
        assert_eq!(relative("deploy/a.yaml", root).as_deref(), Some("deploy/a.yaml"));
        assert_eq!(relative("./deploy/a.yaml", root).as_deref(), Some("deploy/a.yaml"));
        assert_eq!(relative("/repo/x/b.yaml", root).as_deref(), Some("x/b.yaml"));
        assert_eq!(relative("/elsewhere/b.yaml", root), None);
        assert_eq!(relative("-", root), None);
    }
}
