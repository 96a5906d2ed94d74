//! How a command fails: rejected input (exit 1) or a usage error (exit 2).

use std::process::ExitCode;

/// A failed command and the exit code it maps to.
#[derive(Debug)]
pub enum Failure {
    /// The input was understood and refused (malformed PROXY header,
    /// untrusted PROXY sender): exit 1.
    Rejected(anyhow::Error),
    /// The arguments are wrong: exit 2, like clap's own errors.
    Usage(anyhow::Error),
    /// The command worked and found problems (the report says which): exit 1.
    Findings,
}

impl Failure {
    pub fn usage(e: impl Into<anyhow::Error>) -> Failure {
        Failure::Usage(e.into())
    }

    pub fn rejected(e: impl Into<anyhow::Error>) -> Failure {
        Failure::Rejected(e.into())
    }

    /// Prints the error chain to stderr and returns the exit code.
    pub fn report(self) -> ExitCode {
        let (code, kind, e) = match self {
            Failure::Rejected(e) => (1, "rejected", e),
            Failure::Usage(e) => (2, "error", e),
            Failure::Findings => return ExitCode::from(1),
        };
        eprintln!("realip: {kind}: {e:#}");
        ExitCode::from(code)
    }
}
