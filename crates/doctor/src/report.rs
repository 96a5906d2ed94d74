//! Reports: human text (grouped by object), JSON, and SARIF 2.1.0 for code
//! scanning.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::finding::{Finding, Severity};

/// Human text, grouped by object, with the fix under each finding;
/// severities in colour when `color` (stdout is a terminal).
pub fn text(findings: &[Finding], color: bool) -> String {
    if findings.is_empty() {
        return "realip doctor: no findings\n".into();
    }
    let mut out = String::new();
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
    out
}

/// JSON: `{"findings": [...]}`.
pub fn json(findings: &[Finding]) -> String {
    json!({ "findings": findings }).to_string()
}

/// SARIF 2.1.0 with one rule per id and file/line locations.
pub fn sarif(findings: &[Finding]) -> String {
    let mut ids: Vec<&str> = findings.iter().map(|f| f.rule).collect();
    ids.sort_unstable();
    ids.dedup();
    let rules: Vec<Value> = ids
        .iter()
        .map(|id| {
            let f = findings.iter().find(|f| f.rule == *id);
            json!({"id": id, "shortDescription": {"text": id}, "fullDescription": {"text": f.map(|f| f.why).unwrap_or_default()}})
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "level": match f.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": {"text": format!("{} ({}). Fix: {}", f.message, f.object, f.fix)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.file},
                    "region": {"startLine": f.line}
                }}]
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "realip doctor", "informationUri": "https://example.invalid/realip", "rules": rules}}, "results": results}]
    })
    .to_string()
}
