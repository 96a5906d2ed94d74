//! The one error type of realip-kube.

use std::path::PathBuf;

/// Everything that stops manifests from loading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Occurs when a file or directory cannot be read (displayed as the
    /// path; the I/O error follows as the source, so it is printed once).
    #[error("{path}")]
    Read {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Occurs when the text is not valid YAML (or JSON).
    #[error("{origin}:{line}:{col}: invalid YAML: {reason}")]
    Yaml {
        /// File name or `-`.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What the parser said.
        reason: String,
    },
    /// Occurs when the cluster cannot be reached or a list fails.
    #[error("live cluster: {0}")]
    Live(String),
    /// Occurs when a kind that was not served when the watch started
    /// (its CRD not installed, or no RBAC) is served now: the watch ends so
    /// that it is started again with that kind watched.
    #[error("now served, watch restarted to include them: {}", .0.join(", "))]
    KindsAppeared(Vec<String>),
    /// Occurs when a document is not a Kubernetes object (no `kind`).
    #[error("{origin}:{line}: document is not a Kubernetes object: {reason}")]
    NotAnObject {
        /// File name or `-`.
        origin: String,
        /// 1-based line of the document.
        line: usize,
        /// What is missing.
        reason: &'static str,
    },
    /// Occurs when a file is a Helm template that was not rendered.
    #[error("{origin}:{line}: unrendered Helm template (run helm template first)")]
    HelmTemplate {
        /// File name or `-`.
        origin: String,
        /// 1-based line of the first template action.
        line: usize,
    },
}
