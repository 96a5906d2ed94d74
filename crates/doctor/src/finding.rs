//! One thing the doctor found.

use serde::Serialize;

/// How bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; the client IP is still right.
    Warning,
    /// The client IP is lost or can be forged.
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding, pointing at the object and line it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Rule id, e.g. `ingress-etp-cluster`.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// `Kind/namespace/name`, or `values` for Helm values.
    pub object: String,
    /// File (or `-`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// One line: what is wrong.
    pub message: String,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it (a command or a setting).
    pub fix: String,
}
