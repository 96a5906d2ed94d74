//! The one error type of realip-lab.

/// What can go wrong while building or running the lab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command (`ip`, `nft`, …) failed; its stderr is kept.
    #[error("`{cmd}` failed: {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Reading or writing a file, or starting a process.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Something did not happen within its deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The lab cannot run here (not root, no netns, no nft).
    #[error("{0}")]
    Unavailable(String),
    /// A scenario name that does not exist.
    #[error("unknown scenario `{0}` (known: {1})")]
    UnknownScenario(String, String),
    /// A peer program a scenario needs (e.g. `redis-server`) is missing:
    /// the scenario is skipped with this reason (a failure under
    /// `REALIP_REQUIRE_PEERS=1`).
    #[error("{0}")]
    PeerMissing(String),
    /// `realip migrate ingress-nginx` could not convert a scenario's
    /// ingress-nginx setup completely (the `migrate` scenario).
    #[error("realip migrate on the lab's ingress-nginx setup: {0}")]
    Migrate(String),
    /// A bad simulator parameter.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { what: what.into(), source }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
