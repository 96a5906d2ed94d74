//! realip-kube: the Kubernetes objects realip reasons about, loaded from
//! YAML/JSON manifests (multi-document, `List` kinds, `kubectl get -o yaml`
//! output) and Helm values files, every node keeping its file and line so
//! findings can point at them.
//!
//! - [`yaml`]: a small YAML tree with line numbers, built on saphyr-parser
//!   (YAML 1.2; JSON is YAML);
//! - [`object`]: Kubernetes objects and where they came from;
//! - [`live`]: the same objects read from a cluster with kube-rs;
//! - [`event`]: the JSON event log (stderr) of every long-running command;
//! - [`ingress`], [`gateway`]: Ingresses and Gateway API objects turned into
//!   the neutral [`routes::RouteSet`] the proxy serves, and their status;
//! - [`tls`]: certificate and key pairs, checked as the proxy loads them.
#![forbid(unsafe_code)]

mod decode;
mod error;
pub mod event;
pub mod gateway;
pub mod ingress;
pub mod live;
pub mod manifests;
pub mod object;
pub mod routes;
mod status_writer;
pub mod tls;
pub mod watch;
pub mod yaml;

pub use error::Error;
pub use object::{load_paths, load_paths_noted, load_str, DuplicateKey, Loaded, Note, Object, Source};
pub use yaml::{Node, Value};
