//! The migration report: one entry per ConfigMap key, annotation and
//! default that matters, saying what it became, or why it did not convert,
//! or how its meaning changed. Rendered as text (for people) or JSON (for
//! scripts); entries are kept in a stable order (object, line, key).
//!
//! Invariant: [`Status::NotConverted`] is the only status that makes the
//! migration incomplete (exit 1); a [`Status::Warning`] is loud (a trust-all
//! default made explicit) but the output does what ingress-nginx did.

use serde_json::{json, Value};

/// What happened to one key or annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Same meaning in the output.
    Converted,
    /// Nothing to convert: ingress-nginx ignores it here too, or it has no
    /// effect once the Gateway serves the traffic.
    Ignored,
    /// Converted, with a different meaning that the entry explains.
    Changed,
    /// Converted as ingress-nginx had it, and dangerous: read the entry.
    Warning,
    /// Not in the output; the entry says why and what to do.
    NotConverted,
}

impl Status {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Converted => "converted",
            Status::Ignored => "ignored",
            Status::Changed => "changed",
            Status::Warning => "warning",
            Status::NotConverted => "not-converted",
        }
    }
}

/// One report line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `Kind/namespace/name` of the object that carried it (or `defaults`).
    pub object: String,
    /// File it was read from (`cluster` for --live, empty for defaults).
    pub file: String,
    /// 1-based line of the key (0 when unknown).
    pub line: usize,
    /// The ConfigMap key or annotation (without its prefix for annotations
    /// of ingress-nginx).
    pub key: String,
    /// Its value as written (or the default, marked so).
    pub value: String,
    /// What happened.
    pub status: Status,
    /// What it became (`Kind/ns/name field`), empty when nothing.
    pub to: String,
    /// Why, in a sentence a user can act on.
    pub why: String,
}

/// Every entry of one migration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Entries, in stable order.
    pub entries: Vec<Entry>,
    /// Facts about the input (controller found, ConfigMap, Service, LB kind).
    pub notes: Vec<String>,
}

impl Report {
    /// True when something did not convert (exit 1).
    pub fn incomplete(&self) -> bool {
        self.entries.iter().any(|e| e.status == Status::NotConverted)
    }

    /// How many entries have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.entries.iter().filter(|e| e.status == status).count()
    }

    pub(crate) fn sort(&mut self) {
        self.entries.sort_by(|a, b| (&a.object, a.line, &a.key).cmp(&(&b.object, b.line, &b.key)));
        self.entries.dedup();
    }

    /// The report for people: notes, then entries grouped by object.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        let mut last = None;
        for e in &self.entries {
            if last != Some(&e.object) {
                let place = if e.file.is_empty() { String::new() } else { format!(" ({})", e.file) };
                let _ = writeln!(out, "\n{}{place}", e.object);
                last = Some(&e.object);
            }
            let line = if e.line > 0 { format!("line {}: ", e.line) } else { String::new() };
            let word = if e.status == Status::Warning { "WARNING".to_owned() } else { e.status.as_str().to_owned() };
            // Snippets span lines: the first one and how many follow.
            let mut lines = e.value.lines();
            let first = lines.next().unwrap_or_default();
            let more = lines.count();
            let rest = if more > 0 { format!(" … (+{more} lines)") } else { String::new() };
            let sep = if first.is_empty() { "" } else { ": " };
            let _ = writeln!(out, "  {word:<13} {line}{}{sep}{first}{rest}", e.key);
            if !e.to.is_empty() {
                let _ = writeln!(out, "                -> {}", e.to);
            }
            if !e.why.is_empty() {
                let _ = writeln!(out, "                {}", e.why);
            }
        }
        let _ = writeln!(
            out,
            "\n{} converted, {} changed, {} warnings, {} not converted, {} ignored",
            self.count(Status::Converted),
            self.count(Status::Changed),
            self.count(Status::Warning),
            self.count(Status::NotConverted),
            self.count(Status::Ignored)
        );
        out
    }

    /// The report for scripts: `{"complete", "counts", "notes", "entries"}`.
    pub fn json(&self) -> Value {
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                json!({"object": e.object, "file": e.file, "line": e.line, "key": e.key, "value": e.value,
                    "status": e.status.as_str(), "to": e.to, "why": e.why})
            })
            .collect();
        json!({
            "complete": !self.incomplete(),
            "counts": {
                "converted": self.count(Status::Converted),
                "changed": self.count(Status::Changed),
                "warning": self.count(Status::Warning),
                "not_converted": self.count(Status::NotConverted),
                "ignored": self.count(Status::Ignored),
            },
            "notes": self.notes,
            "entries": entries,
        })
    }
}
