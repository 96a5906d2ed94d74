//! A YAML tree whose every node knows its line, built from saphyr-parser
//! events. Scalars stay text (Kubernetes fields are compared as text);
//! anchors and aliases are resolved; nesting is bounded.
//!
//! Invariants: a node reached through an alias carries the alias's line
//! (a finding about it points where the user wrote `*name`); merge keys
//! (`<<: *base`, `<<: [*a, *b]`) are resolved, keys written in the mapping
//! itself winning over merged ones; a key written twice in one mapping keeps
//! its last value (as `kubectl` up to 1.13 and JSON decoders do) and is
//! reported by [`parse_checked`].

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::Error;

/// Deepest nesting accepted (manifests are shallow; this bounds hostile input).
pub const MAX_DEPTH: usize = 128;

/// Most nodes that aliases may copy in one parse: a manifest reuses a few
/// small anchors, while nested aliases of aliases ("billion laughs") would
/// otherwise grow exponentially in memory.
pub const MAX_ALIASED_NODES: usize = 1_000_000;

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
    Map(usize, usize, Vec<(String, Node)>, Option<(String, usize)>),
}

/// A key written twice in one mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The key.
    pub key: String,
    /// 1-based line of the repeated key (its value is the one kept).
    pub line: usize,
    /// 1-based line of the first occurrence.
    pub first: usize,
}

/// How many nodes `n` holds, itself included.
fn size(n: &Node) -> usize {
    1 + match &n.value {
        Value::Seq(items) => items.iter().map(size).sum(),
        Value::Map(entries) => entries.iter().map(|(_, v)| size(v)).sum(),
        Value::Null | Value::Scalar(_) => 0,
    }
}

/// Gives every node of `n` the line `line` (a node reached through an alias).
fn relocate(n: &mut Node, line: usize) {
    n.line = line;
    match &mut n.value {
        Value::Seq(items) => items.iter_mut().for_each(|i| relocate(i, line)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| relocate(v, line)),
        Value::Null | Value::Scalar(_) => {}
    }
}

/// Resolves `<<` merge keys: merged keys are added unless the mapping
/// writes them itself; with a sequence of mappings, earlier ones win.
fn resolve_merges(entries: Vec<(String, Node)>) -> Vec<(String, Node)> {
    if !entries.iter().any(|(k, _)| k == "<<") {
        return entries;
    }
    let (merges, mut own): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(k, _)| k == "<<");
    for (_, m) in merges {
        let sources = match m.value {
            Value::Map(_) => vec![m],
            Value::Seq(items) => items,
            Value::Null | Value::Scalar(_) => Vec::new(),
        };
        for src in sources {
            for (k, v) in src.entries() {
                if !own.iter().any(|(o, _)| o == k) {
                    own.push((k.clone(), v.clone()));
                }
            }
        }
    }
    own
}

/// The node anchor `id` names (null if none), relocated to `at` (line,
/// column), counted against [`MAX_ALIASED_NODES`] in `aliased`.
fn copy_alias(
    anchors: &HashMap<usize, (Node, usize)>,
    id: usize,
    aliased: &mut usize,
    origin: &str,
    (line, col): (usize, usize),
) -> Result<Node, Error> {
    let (mut n, copied) = anchors.get(&id).cloned().unwrap_or((Node { line, value: Value::Null }, 1));
    *aliased += copied;
    if *aliased > MAX_ALIASED_NODES {
        return Err(Error::Yaml {
            origin: origin.to_owned(),
            line,
            col,
            reason: format!(
                "aliases copy more than {MAX_ALIASED_NODES} nodes (aliases of aliases that grow without bound)"
            ),
        });
    }
    relocate(&mut n, line);
    Ok(n)
}

/// Parses every document of `text`. `origin` names the source in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Node>, Error> {
    parse_checked(text, origin).map(|(docs, _)| docs)
}

/// Parses every document of `text`, also returning the keys written twice.
pub fn parse_checked(text: &str, origin: &str) -> Result<(Vec<Node>, Vec<Duplicate>), Error> {
    let mut duplicates = Vec::new();
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Each anchored node with its size, and the nodes aliases copied so far.
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let mut aliased = 0usize;
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
                    anchors.insert(anchor, (n.clone(), 1));
                }
                Some(n)
            }
            Event::Alias(id) => Some(copy_alias(&anchors, id, &mut aliased, origin, (line, span.start.col() + 1))?),
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
                        anchors.insert(anchor, (n.clone(), size(&n)));
                    }
                    Some(n)
                }
                _ => None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(l, anchor, entries, _)) => {
                    let n = Node { line: l, value: Value::Map(resolve_merges(entries)) };
                    if anchor > 0 {
                        anchors.insert(anchor, (n.clone(), size(&n)));
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
                None => {
                    let k = node.as_str().map_or_else(|| String::from("<complex key>"), str::to_owned);
                    *key = Some((k, node.line));
                }
                Some((k, key_line)) => {
                    if let Some(slot) = entries.iter_mut().find(|(e, _)| *e == k && k != "<<") {
                        duplicates.push(Duplicate { key: k, line: key_line, first: slot.1.line });
                        slot.1 = node;
                    } else {
                        entries.push((k, node));
                    }
                }
            },
        }
    }
    if let Some(n) = root.take() {
        docs.push(n);
    }
    Ok((docs, duplicates))
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
    fn merge_keys_aliases_and_duplicates() {
        let text = "base: &b {type: LoadBalancer, x: 1}\nsvc:\n  <<: *b\n  x: 2\nmulti:\n  <<: [{a: 1}, {a: 2, b: 3}]\nsel: *b\n";
        let (docs, dups) = parse_checked(text, "t").unwrap();
        let d = &docs[0];
        assert_eq!(d.str_at(&["svc", "type"]), Some("LoadBalancer"));
        assert_eq!(d.str_at(&["svc", "x"]), Some("2"), "the mapping's own key wins");
        assert!(d.at(&["svc", "<<"]).is_none());
        assert_eq!((d.str_at(&["multi", "a"]), d.str_at(&["multi", "b"])), (Some("1"), Some("3")));
        assert_eq!(d.at(&["sel", "type"]).unwrap().line, 7, "through an alias: the alias's line");
        assert!(dups.is_empty());
        let (docs, dups) = parse_checked("spec:\n  a: Local\n  a: Cluster\n", "t").unwrap();
        assert_eq!(docs[0].str_at(&["spec", "a"]), Some("Cluster"));
        assert_eq!(dups, [Duplicate { key: "a".into(), line: 3, first: 2 }]);
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse("a: [1, 2\nb: c\n", "bad.yaml").unwrap_err().to_string();
        assert!(e.starts_with("bad.yaml:"), "{e}");
        let deep = "[".repeat(200);
        assert!(parse(&deep, "deep").is_err());
    }

    #[test]
    fn aliases_of_aliases_are_bounded() {
        // Nine levels of ten aliases each: 10^9 nodes if expanded.
        let mut lines = vec![String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]")];
        for i in 1..10 {
            let p = i - 1;
            lines.push(format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]"));
        }
        let text = lines.join("\n");
        let e = parse(&text, "bomb.yaml").unwrap_err().to_string();
        assert!(e.starts_with("bomb.yaml:") && e.contains("aliases copy more than"), "{e}");
        // A few levels are fine.
        let small = lines[..4].join("\n");
        assert_eq!(parse(&small, "ok").unwrap()[0].at(&["a3"]).unwrap().items().len(), 10);
    }
}
