//! A YAML tree whose every node knows its line, built from saphyr-parser
//! events. Scalars stay text (Kubernetes fields are compared as text);
//! anchors and aliases are resolved; nesting is bounded.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::Error;

/// Deepest nesting accepted (manifests are shallow; this bounds hostile input).
pub const MAX_DEPTH: usize = 128;

/// One node and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// 1-based line in the source.
    pub line: usize,
    /// The content.
    pub value: Value,
}

/// Node content.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or empty.
    Null,
    /// Any scalar, as written (quotes removed).
    Scalar(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The node at a path of mapping keys.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, k| n.get(k))
    }

    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The text at `path`, if it is a scalar.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path).and_then(Node::as_str)
    }

    /// The items of a sequence (empty for anything else).
    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(s) => s,
            _ => &[],
        }
    }

    /// The entries of a mapping (empty for anything else).
    pub fn entries(&self) -> &[(String, Node)] {
        match &self.value {
            Value::Map(m) => m,
            _ => &[],
        }
    }
}

enum Frame {
    Seq(usize, usize, Vec<Node>),
    Map(usize, usize, Vec<(String, Node)>, Option<String>),
}

/// Parses every document of `text`. `origin` names the source in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Node>, Error> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| Error::Yaml {
            origin: origin.to_owned(),
            line: e.marker().line(),
            col: e.marker().col() + 1,
            reason: e.info().to_owned(),
        })?;
        let line = span.start.line();
        let done = match ev {
            Event::DocumentEnd => {
                if let Some(n) = root.take() {
                    docs.push(n);
                }
                None
            }
            Event::Scalar(v, style, anchor, _) => {
                let plain_null = style == ScalarStyle::Plain && matches!(&*v, "" | "~" | "null" | "Null" | "NULL");
                let n = Node { line, value: if plain_null { Value::Null } else { Value::Scalar(v.into_owned()) } };
                if anchor > 0 {
                    anchors.insert(anchor, n.clone());
                }
                Some(n)
            }
            Event::Alias(id) => Some(anchors.get(&id).cloned().unwrap_or(Node { line, value: Value::Null })),
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq(line, anchor, Vec::new()));
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map(line, anchor, Vec::new(), None));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(l, anchor, items)) => {
                    let n = Node { line: l, value: Value::Seq(items) };
                    if anchor > 0 {
                        anchors.insert(anchor, n.clone());
                    }
                    Some(n)
                }
                _ => None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(l, anchor, entries, _)) => {
                    let n = Node { line: l, value: Value::Map(entries) };
                    if anchor > 0 {
                        anchors.insert(anchor, n.clone());
                    }
                    Some(n)
                }
                _ => None,
            },
            _ => None,
        };
        if stack.len() > MAX_DEPTH {
            return Err(Error::Yaml {
                origin: origin.to_owned(),
                line,
                col: 1,
                reason: format!("nesting deeper than {MAX_DEPTH}"),
            });
        }
        let Some(node) = done else { continue };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                None => *key = Some(node.as_str().map_or_else(|| String::from("<complex key>"), str::to_owned)),
                Some(k) => entries.push((k, node)),
            },
        }
    }
    if let Some(n) = root.take() {
        docs.push(n);
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_multiple_documents() {
        let docs = parse("a: 1\nb:\n  c: [x, y]\n---\n- k: v\n  n: ~\n", "t").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].str_at(&["a"]), Some("1"));
        assert_eq!(docs[0].at(&["b", "c"]).unwrap().items().len(), 2);
        assert_eq!(docs[0].at(&["b", "c"]).unwrap().line, 3);
        assert_eq!(docs[1].items()[0].get("n").unwrap().value, Value::Null);
        assert_eq!(docs[1].items()[0].get("k").unwrap().line, 5);
    }

    #[test]
    fn json_and_anchors() {
        let docs = parse("{\"kind\": \"Service\", \"spec\": {\"type\": \"ClusterIP\"}}", "t").unwrap();
        assert_eq!(docs[0].str_at(&["spec", "type"]), Some("ClusterIP"));
        let docs = parse("a: &x {k: v}\nb: *x\n", "t").unwrap();
        assert_eq!(docs[0].str_at(&["b", "k"]), Some("v"));
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse("a: [1, 2\nb: c\n", "bad.yaml").unwrap_err().to_string();
        assert!(e.starts_with("bad.yaml:"), "{e}");
        let deep = "[".repeat(200);
        assert!(parse(&deep, "deep").is_err());
    }
}
