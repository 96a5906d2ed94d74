//! Kubernetes objects with their origin, loaded from files, directories
//! (`.yaml`, `.yml`, `.json`, recursively, in name order) or stdin.
//!
//! Invariants: a file named on the command line (or stdin) must hold
//! Kubernetes objects, anything else is an error naming the file and line;
//! inside a directory (a real repository: kustomization.yaml, Chart.yaml,
//! package.json, Helm templates next to manifests) files and documents that
//! are not objects are skipped with a [`Note`] instead. An unrendered Helm
//! template is always named as such. Keys written twice are kept (last value
//! wins) and returned for the caller to report.

use std::path::{Path, PathBuf};

use crate::yaml::{parse_checked, Duplicate, Node};
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

/// Something the loader skipped, for the user to know (printed on stderr).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// File name.
    pub file: String,
    /// 1-based line (1 for a whole file).
    pub line: usize,
    /// What was skipped and why.
    pub message: String,
}

/// A key written twice in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateKey {
    /// File name or `-`.
    pub file: String,
    /// The key and its lines.
    pub duplicate: Duplicate,
}

/// Objects loaded from paths, with what was skipped and noticed on the way.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// The objects, in file order.
    pub objects: Vec<Object>,
    /// Files and documents skipped inside directories.
    pub notes: Vec<Note>,
    /// Keys written twice.
    pub duplicates: Vec<DuplicateKey>,
}

/// The line of the first Helm template action, if `text` looks like an
/// unrendered chart template: an action at the start of a line, or one
/// that reads `.Values`, `.Release`, `.Chart` or calls `include`/`template`.
/// Rendered manifests may carry `{{ ... }}` inside strings (Go templates
/// in ConfigMaps), which are indented and read none of those.
pub fn helm_template_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            (l.starts_with("{{") && !t.starts_with("{{/*"))
                || [
                    "{{ .Values",
                    "{{- .Values",
                    "{{ .Release",
                    "{{- .Release",
                    "{{ .Chart",
                    "{{ include ",
                    "{{- include ",
                    "{{ template ",
                    "{{- template ",
                    "{{- if ",
                    "{{- range ",
                    "{{- with ",
                    "{{- end",
                ]
                .iter()
                .any(|a| t.contains(a))
        })
        .map(|i| i + 1)
}

/// Objects in `text`; `List` kinds are flattened into their items.
pub fn load_str(text: &str, origin: &str) -> Result<Vec<Object>, Error> {
    let mut loaded = Loaded::default();
    load_text(text, origin, false, &mut loaded)?;
    Ok(loaded.objects)
}

/// Loads `text` into `out`; `lenient` (inside a directory) skips what is
/// not a Kubernetes object with a note instead of failing.
fn load_text(text: &str, origin: &str, lenient: bool, out: &mut Loaded) -> Result<(), Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(line) = helm_template_line(text) {
        let e = Error::HelmTemplate { origin: origin.to_owned(), line };
        if lenient {
            out.notes.push(Note { file: origin.to_owned(), line, message: e.to_string() });
            return Ok(());
        }
        return Err(e);
    }
    let (docs, duplicates) = parse_checked(text, origin)?;
    let mut objects = Vec::new();
    for doc in docs {
        if matches!(doc.value, crate::Value::Null) {
            continue; // empty document (`---` at the end)
        }
        match push(doc, origin, &mut objects) {
            Err(Error::NotAnObject { line, reason, .. }) if lenient => out.notes.push(Note {
                file: origin.to_owned(),
                line,
                message: format!("{origin}:{line}: skipped: not a Kubernetes object ({reason})"),
            }),
            r => r?,
        }
    }
    out.objects.extend(objects);
    out.duplicates.extend(duplicates.into_iter().map(|d| DuplicateKey { file: origin.to_owned(), duplicate: d }));
    Ok(())
}

fn push(doc: Node, origin: &str, out: &mut Vec<Object>) -> Result<(), Error> {
    let Some(kind) = doc.str_at(&["kind"]).map(str::to_owned) else {
        let reason = if doc.entries().is_empty() { "not a mapping with `kind`" } else { "no `kind`" };
        return Err(Error::NotAnObject { origin: origin.to_owned(), line: doc.line, reason });
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
        if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue; // .git, .github: not manifests
        }
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
    load_paths_noted(paths).map(|l| l.objects)
}

/// Objects from files, directories and `-` (stdin), in order, with the
/// notes about what was skipped inside directories and the keys written
/// twice.
pub fn load_paths_noted(paths: &[PathBuf]) -> Result<Loaded, Error> {
    let mut out = Loaded::default();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Error::Read { path: p.clone(), source: e })?;
            load_text(&text, "-", false, &mut out)?;
            continue;
        }
        let mut files = Vec::new();
        let lenient = p.is_dir();
        if lenient {
            files_under(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| Error::Read { path: f.clone(), source: e })?;
            load_text(&text, &f.display().to_string(), lenient, &mut out)?;
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
    fn directories_skip_what_is_not_kubernetes_with_a_note() {
        let dir = std::env::temp_dir().join(format!("realip-kube-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(dir.join("kustomization.yaml"), "resources:\n  - deploy.yaml\n").unwrap();
        std::fs::write(dir.join("package.json"), "[1, 2]").unwrap();
        std::fs::write(dir.join("deploy.yaml"), "kind: Service\nmetadata: {name: a}\n").unwrap();
        std::fs::write(dir.join("templates/svc.yaml"), "kind: Service\nmetadata:\n  name: {{ .Release.Name }}\n")
            .unwrap();
        let loaded = load_paths_noted(std::slice::from_ref(&dir));
        let explicit = load_paths(&[dir.join("templates/svc.yaml")]).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        let loaded = loaded.unwrap();
        assert_eq!(loaded.objects.len(), 1);
        let notes: Vec<&str> = loaded.notes.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("kustomization.yaml:1: skipped")), "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("unrendered Helm template (run helm template first)")), "{notes:?}");
        assert!(explicit.contains("svc.yaml:3: unrendered Helm template"), "{explicit}");
    }

    #[test]
    fn a_document_without_kind_is_an_error() {
        let e = load_str("---\nfoo: bar\n", "x.yaml").unwrap_err().to_string();
        assert!(e.contains("x.yaml:2") && e.contains("no `kind`"), "{e}");
        assert!(load_str("---\n---\n", "empty").unwrap().is_empty());
    }
}
