//! The JSON event log of the long-running commands (proxy start, reloads,
//! watch errors, accept errors): one JSON object per line on stderr, kept
//! apart from the access log. It lives here, the lowest crate that emits
//! events, and realip-proxy re-exports it (`realip_proxy::log::event`), so
//! every event line is written one way.
//!
//! Invariant: one `write` per event under stderr's lock, so lines from
//! several threads never interleave.

use std::io::Write as _;

/// Writes `v` as one line to stderr.
pub fn event(v: &serde_json::Value) {
    let _ = writeln!(std::io::stderr().lock(), "{v}");
}
