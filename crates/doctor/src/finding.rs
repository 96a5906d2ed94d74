//! One thing the doctor found, and where.

use serde::Serialize;

use crate::catalog;

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

/// Where a finding points: an object, its file and a line.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Place {
    /// `Kind/namespace/name`, or `values` for Helm values.
    pub object: String,
    /// File (or `-`, or `cluster`).
    pub file: String,
    /// 1-based line (0 for the cluster).
    pub line: usize,
}

impl Place {
    /// The node at `path` of `o` (the object's own line when absent).
    pub fn of(o: &realip_kube::Object, path: &[&str]) -> Place {
        Place { object: o.id(), file: o.source.file.clone(), line: o.line_of(path) }
    }
}

/// One finding, pointing at the object and line it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Rule id, e.g. `ingress-etp-cluster` (see [`catalog::RULES`]).
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
    /// Why it matters (from the catalogue).
    pub why: &'static str,
    /// How to fix it, in the terms of the controller concerned.
    pub fix: String,
}

impl Finding {
    /// A finding of catalogued rule `rule` at `at`, with its default severity.
    pub fn new(rule: &'static str, at: &Place, message: String, fix: String) -> Finding {
        let r = catalog::rule(rule);
        Finding {
            rule: r.id,
            severity: r.severity,
            object: at.object.clone(),
            file: at.file.clone(),
            line: at.line,
            message,
            why: r.why,
            fix,
        }
    }

    /// The same finding with another severity (rules whose `why` says when).
    #[must_use]
    pub fn severity(mut self, s: Severity) -> Finding {
        self.severity = s;
        self
    }
}
