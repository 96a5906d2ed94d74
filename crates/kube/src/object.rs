//! Kubernetes objects with their origin, loaded from files, directories
//! (`.yaml`, `.yml`, `.json`, recursively, in name order) or stdin.

use std::path::{Path, PathBuf};

use crate::yaml::{parse, Node};
use crate::Error;

/// Where an object was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// File name, or `-` for stdin.
    pub file: String,
    /// 1-based line where the object starts.
    pub line: usize,
}

/// One Kubernetes object.
#[derive(Clone, Debug)]
pub struct Object {
    /// `Service`, `Deployment`, ...
    pub kind: String,
    /// `metadata.name` (empty if absent).
    pub name: String,
    /// `metadata.namespace` (`default` if absent).
    pub namespace: String,
    /// Where it came from.
    pub source: Source,
    /// The whole document.
    pub doc: Node,
}

impl Object {
    /// `Kind/namespace/name`, the way findings name objects.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// A label of `metadata.labels`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.doc.at(&["metadata", "labels"]).and_then(|l| l.str_at(&[key]))
    }

    /// An annotation of `metadata.annotations`.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.doc.at(&["metadata", "annotations"]).and_then(|l| l.str_at(&[key]))
    }

    /// The line of the node at `path`, or the object's own line.
    pub fn line_of(&self, path: &[&str]) -> usize {
        self.doc.at(path).map_or(self.source.line, |n| n.line)
    }
}

/// Objects in `text`; `List` kinds are flattened into their items.
pub fn load_str(text: &str, origin: &str) -> Result<Vec<Object>, Error> {
    let mut out = Vec::new();
    for doc in parse(text, origin)? {
        if matches!(doc.value, crate::Value::Null) {
            continue; // empty document (`---` at the end)
        }
        push(doc, origin, &mut out)?;
    }
    Ok(out)
}

fn push(doc: Node, origin: &str, out: &mut Vec<Object>) -> Result<(), Error> {
    let Some(kind) = doc.str_at(&["kind"]).map(str::to_owned) else {
        return Err(Error::NotAnObject { origin: origin.to_owned(), line: doc.line, reason: "no `kind`" });
    };
    if kind == "List" || kind.ends_with("List") && doc.get("items").is_some() {
        for item in doc.get("items").map(Node::items).unwrap_or_default().to_vec() {
            push(item, origin, out)?;
        }
        return Ok(());
    }
    let name = doc.str_at(&["metadata", "name"]).unwrap_or_default().to_owned();
    let namespace = doc.str_at(&["metadata", "namespace"]).unwrap_or("default").to_owned();
    out.push(Object { kind, name, namespace, source: Source { file: origin.to_owned(), line: doc.line }, doc });
    Ok(())
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let read = |p: &Path, e| Error::Read { path: p.to_owned(), source: e };
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(|e| read(dir, e))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
            out.push(p);
        }
    }
    Ok(())
}

/// Objects from files, directories and `-` (stdin), in order.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Object>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Error::Read { path: p.clone(), source: e })?;
            out.extend(load_str(&text, "-")?);
            continue;
        }
        let mut files = Vec::new();
        if p.is_dir() {
            files_under(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| Error::Read { path: f.clone(), source: e })?;
            out.extend(load_str(&text, &f.display().to_string())?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_flattened_and_positions_kept() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- kind: Service\n  metadata: {name: a}\n- kind: Service\n  metadata:\n    name: b\n    namespace: x\n";
        let objs = load_str(text, "f.yaml").unwrap();
        assert_eq!(objs.iter().map(Object::id).collect::<Vec<_>>(), ["Service/default/a", "Service/x/b"]);
        assert_eq!(objs[1].source, Source { file: "f.yaml".into(), line: 6 });
    }

    #[test]
    fn a_document_without_kind_is_an_error() {
        let e = load_str("---\nfoo: bar\n", "x.yaml").unwrap_err().to_string();
        assert!(e.contains("x.yaml:2") && e.contains("no `kind`"), "{e}");
        assert!(load_str("---\n---\n", "empty").unwrap().is_empty());
    }
}
