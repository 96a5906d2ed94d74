//! Status of Gateway API objects and realip policies, as typed conditions,
//! and its JSON form for `PATCH …/status`.
//!
//! Invariant: a condition's `lastTransitionTime` changes only when its
//! status changes (taken from the status already written otherwise), so
//! writing the same status twice produces the same JSON and the watcher
//! can skip the patch.

use serde_json::{json, Value};

use super::types::ParentReference;
use super::CONTROLLER_NAME;

/// One condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    /// `Accepted`, `Programmed`, `ResolvedRefs`, `Conflicted`…
    pub kind: &'static str,
    /// True or False.
    pub status: bool,
    /// CamelCase reason from the spec (`NotAllowedByListeners`…).
    pub reason: &'static str,
    /// Human-readable detail.
    pub message: String,
}

impl Cond {
    /// A condition.
    pub fn new(kind: &'static str, status: bool, reason: &'static str, message: impl Into<String>) -> Cond {
        Cond { kind, status, reason, message: message.into() }
    }
}

/// Status of one listener of a Gateway or ListenerSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerStatus {
    /// Listener name.
    pub name: String,
    /// Routes attached (accepted) to it.
    pub attached_routes: u32,
    /// Route kinds it accepts.
    pub supported_kinds: Vec<String>,
    /// Accepted, Programmed, ResolvedRefs, Conflicted.
    pub conditions: Vec<Cond>,
}

/// Which object a status belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Kind (`Gateway`, `HTTPRoute`, `ClientIPPolicy`…).
    pub kind: &'static str,
    /// Namespace (`None` for GatewayClass).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

/// A route parent entry or a policy ancestor entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefStatus {
    /// The parent (route) or ancestor (policy).
    pub reference: ParentReference,
    /// Its conditions.
    pub conditions: Vec<Cond>,
}

/// The status realip computes for one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// GatewayClass: Accepted.
    Class {
        /// Conditions.
        conditions: Vec<Cond>,
    },
    /// Gateway or ListenerSet: Accepted / Programmed, addresses, listeners.
    Gateway {
        /// Conditions.
        conditions: Vec<Cond>,
        /// Addresses the Gateway is reachable at (Gateway only).
        addresses: Vec<String>,
        /// Per listener.
        listeners: Vec<ListenerStatus>,
        /// A Gateway's `attachedListenerSets`: the ListenerSets its
        /// `allowedListeners` admit that name it and are accepted
        /// (`None` for a ListenerSet).
        attached_sets: Option<u32>,
    },
    /// HTTPRoute: `parents[]` for the parents realip owns.
    Route {
        /// Per parent reference.
        parents: Vec<RefStatus>,
        /// The `parentRef`s (as written) of entries this proxy wrote before
        /// for parents the route no longer names: removed. Other entries
        /// under realip's controllerName (another realip's, for its own
        /// GatewayClass) are kept, as other controllers' are.
        drop: Vec<serde_json::Value>,
    },
    /// ClientIPPolicy / ClientAccessPolicy: `ancestors[]`.
    Policy {
        /// Per target.
        ancestors: Vec<RefStatus>,
        /// As [`Status::Route`]'s `drop`: the `ancestorRef`s of entries this
        /// proxy wrote before and writes no more (another realip's are kept).
        drop: Vec<serde_json::Value>,
    },
}

/// One object's status with the generation it was computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectStatus {
    /// The object.
    pub key: ObjectKey,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The status.
    pub status: Status,
}

/// The longest condition message written (bytes): the CRDs allow 32,768,
/// and a message repeating a tenant's value (a header value of 4,096
/// control characters, escaped) could pass that, making the API server
/// refuse the whole status, again on every translation (review 18 W2).
pub const MAX_MESSAGE: usize = 4096;

/// `m`, cut at a character boundary to at most [`MAX_MESSAGE`] bytes, with
/// how much was cut.
fn capped(m: &str) -> std::borrow::Cow<'_, str> {
    if m.len() <= MAX_MESSAGE {
        return m.into();
    }
    let mut end = MAX_MESSAGE - 64;
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} … (message cut: {} bytes in all)", &m[..end], m.len()).into()
}

/// The condition types realip writes. Any other type found in a
/// conditions list realip writes (another controller's, a policy
/// controller's on a realip Gateway) is kept where it is: realip
/// rewriting the list without it would start a write loop with its
/// writer (review 13e HIGH-1).
pub const OWNED_CONDITIONS: [&str; 5] = ["Accepted", "Programmed", "ResolvedRefs", "Conflicted", "PartiallyInvalid"];

/// `conds` as the conditions list to write over `previous`: realip's
/// types updated in place (or removed when no longer in `conds`), other
/// types kept in place, new ones appended, so that rendering the same
/// conditions over the list written gives the list written.
fn conditions_json(conds: &[Cond], generation: Option<i64>, previous: Option<&Value>, now: &str) -> Value {
    debug_assert!(conds.iter().all(|c| OWNED_CONDITIONS.contains(&c.kind)), "{conds:?}");
    let old: &[Value] = previous.and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let render = |c: &Cond| {
        let status = if c.status { "True" } else { "False" };
        let kept = old
            .iter()
            .find(|p| p["type"] == c.kind && p["status"] == status)
            .and_then(|p| p["lastTransitionTime"].as_str());
        let mut v = json!({
            "type": c.kind,
            "status": status,
            "reason": c.reason,
            "message": capped(&c.message),
            "lastTransitionTime": kept.unwrap_or(now),
        });
        if let Some(g) = generation {
            v["observedGeneration"] = json!(g);
        }
        v
    };
    let mut placed = vec![false; conds.len()];
    let mut list: Vec<Value> = Vec::with_capacity(conds.len());
    for p in old {
        match p["type"].as_str() {
            Some(t) if OWNED_CONDITIONS.contains(&t) => {
                if let Some(i) = conds.iter().position(|c| c.kind == t).filter(|&i| !placed[i]) {
                    placed[i] = true;
                    list.push(render(&conds[i]));
                }
            }
            _ => list.push(p.clone()),
        }
    }
    list.extend(conds.iter().zip(placed).filter(|(_, done)| !done).map(|(c, _)| render(c)));
    Value::Array(list)
}

pub(crate) fn reference_json(r: &ParentReference, default_kind: &str) -> Value {
    let mut v = json!({
        "group": r.group.clone().unwrap_or_else(|| super::types::GATEWAY_GROUP.to_owned()),
        "kind": r.kind.clone().unwrap_or_else(|| default_kind.to_owned()),
        "name": r.name,
    });
    if let Some(ns) = &r.namespace {
        v["namespace"] = json!(ns);
    }
    if let Some(s) = &r.section_name {
        v["sectionName"] = json!(s);
    }
    if let Some(p) = r.port {
        v["port"] = json!(p);
    }
    v
}

/// The `status` object to write, given the one already there.
///
/// For routes and policies, entries written by other controllers
/// (`controllerName` not ours) are kept: several implementations share one
/// HTTPRoute's `parents[]`.
pub fn to_json(s: &ObjectStatus, previous: Option<&Value>, now: &str) -> Value {
    let prev = |path: &str| previous.and_then(|p| p.pointer(path));
    match &s.status {
        Status::Class { conditions } => {
            // Sorted by name, as the spec requires (whatever the constant's order).
            let mut features = super::SUPPORTED_FEATURES.to_vec();
            features.sort_unstable();
            json!({
                "conditions": conditions_json(conditions, s.generation, prev("/conditions"), now),
                "supportedFeatures": features.iter().map(|f| json!({"name": f})).collect::<Vec<_>>(),
            })
        }
        Status::Gateway { conditions, addresses, listeners, attached_sets } => {
            let ls: Vec<Value> = listeners
                .iter()
                .map(|l| {
                    let prev_l = previous
                        .and_then(|p| p["listeners"].as_array())
                        .and_then(|a| a.iter().find(|x| x["name"] == l.name.as_str()))
                        .map(|x| &x["conditions"]);
                    json!({
                        "name": l.name,
                        "attachedRoutes": l.attached_routes,
                        "supportedKinds": l.supported_kinds.iter().map(|k| json!({"group": super::types::GATEWAY_GROUP, "kind": k})).collect::<Vec<_>>(),
                        "conditions": conditions_json(&l.conditions, s.generation, prev_l, now),
                    })
                })
                .collect();
            let mut v = json!({
                "conditions": conditions_json(conditions, s.generation, prev("/conditions"), now),
                "listeners": ls,
            });
            if let Some(n) = attached_sets {
                v["attachedListenerSets"] = json!(n);
            }
            if s.key.kind == "Gateway" {
                v["addresses"] = addresses
                    .iter()
                    .map(|a| {
                        let ty = if a.parse::<std::net::IpAddr>().is_ok() { "IPAddress" } else { "Hostname" };
                        json!({"type": ty, "value": a})
                    })
                    .collect();
            }
            v
        }
        Status::Route { parents, drop } | Status::Policy { ancestors: parents, drop } => {
            let (field, reference_field) = if matches!(s.status, Status::Route { .. }) {
                ("parents", "parentRef")
            } else {
                ("ancestors", "ancestorRef")
            };
            let old: Vec<Value> = previous.and_then(|p| p[field].as_array()).cloned().unwrap_or_default();
            let entry = |p: &RefStatus, r: Value| {
                let prev_c = old
                    .iter()
                    .find(|e| e["controllerName"] == CONTROLLER_NAME && e[reference_field] == r)
                    .map(|e| &e["conditions"]);
                json!({
                    reference_field: r,
                    "controllerName": CONTROLLER_NAME,
                    "conditions": conditions_json(&p.conditions, s.generation, prev_c, now),
                })
            };
            let mine: Vec<(Value, &RefStatus)> =
                parents.iter().map(|p| (reference_json(&p.reference, "Gateway"), p)).collect();
            // Entries stay where they are: this proxy's are updated in place
            // (or dropped), and realip-named ones it neither has nor drops
            // (another realip's, for its own GatewayClass) are kept as other
            // controllers' are, so two realips never undo each other's
            // writes (review 31, review 13c).
            let mut out: Vec<Value> = Vec::new();
            for e in &old {
                let ours = e["controllerName"] == CONTROLLER_NAME;
                match mine.iter().find(|(r, _)| ours && *r == e[reference_field]) {
                    Some((r, p)) => out.push(entry(p, r.clone())),
                    None if ours && drop.contains(&e[reference_field]) => {}
                    None => out.push(e.clone()),
                }
            }
            for (r, p) in &mine {
                if !old.iter().any(|e| e["controllerName"] == CONTROLLER_NAME && e[reference_field] == *r) {
                    out.push(entry(p, r.clone()));
                }
            }
            json!({ field: out })
        }
    }
}

#[cfg(test)]
mod tests {
    /// Review 18 W2: no message over the CRDs' 32,768 (here 4,096), cut at
    /// a character boundary, saying so.
    #[test]
    fn long_messages_are_cut_to_fit_the_crd() {
        let long = "é".repeat(30_000);
        let c = super::capped(&long);
        assert!(c.len() <= super::MAX_MESSAGE && c.ends_with("(message cut: 60000 bytes in all)"), "{}", c.len());
        assert_eq!(super::capped("short"), "short");
        let v =
            super::conditions_json(&[super::Cond::new("Accepted", false, "UnsupportedValue", long)], None, None, "t");
        assert!(v[0]["message"].as_str().unwrap().len() <= super::MAX_MESSAGE);
    }

    use super::*;

    /// GatewayClass `status.supportedFeatures`: objects `{name}` (the
    /// v1.6.1 CRD's shape), sorted ascending by name, unique, at most 64,
    /// exactly the features realip implements.
    #[test]
    fn a_class_lists_its_supported_features_sorted() {
        let s = ObjectStatus {
            key: ObjectKey { kind: "GatewayClass", namespace: None, name: "realip".into() },
            generation: Some(1),
            status: Status::Class { conditions: vec![Cond::new("Accepted", true, "Accepted", "ok")] },
        };
        let v = to_json(&s, None, "2026-01-01T00:00:00Z");
        let names: Vec<&str> =
            v["supportedFeatures"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted by name, unique");
        assert!(names.len() <= 64);
        assert!(v["supportedFeatures"].as_array().unwrap().iter().all(|f| f.as_object().unwrap().len() == 1));
        for f in ["Gateway", "HTTPRoute", "ReferenceGrant", "HTTPRouteQueryParamMatching", "HTTPRoutePathRewrite"] {
            assert!(names.contains(&f), "{f}: {names:?}");
        }
        for f in ["HTTPRouteRequestMirror", "HTTPRouteCORS", "HTTPRouteRequestTimeout", "GatewayStaticAddresses"] {
            assert!(!names.contains(&f), "{f} is not implemented: {names:?}");
        }
        assert_eq!(names.len(), super::super::SUPPORTED_FEATURES.len());
    }

    /// Review 13e HIGH-1: condition types realip does not write stay where
    /// they are; realip's own are updated in place, removed when no longer
    /// wanted, appended when new; rendering over the result gives it back.
    #[test]
    fn other_condition_types_are_kept_in_place() {
        let theirs = json!({"type": "example.com/Attached", "status": "True", "reason": "X"});
        let old = json!([
            {"type": "Conflicted", "status": "True", "reason": "HostnameConflict", "lastTransitionTime": "t0"},
            theirs.clone(),
            {"type": "Accepted", "status": "True", "reason": "Accepted", "lastTransitionTime": "t0"},
        ]);
        let conds = [Cond::new("Programmed", true, "Programmed", "ok"), Cond::new("Accepted", true, "Accepted", "ok")];
        let v = conditions_json(&conds, Some(2), Some(&old), "t1");
        let types: Vec<&str> = v.as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["example.com/Attached", "Accepted", "Programmed"]);
        assert_eq!(v[0], theirs);
        assert_eq!(
            (v[1]["lastTransitionTime"].as_str(), v[2]["lastTransitionTime"].as_str()),
            (Some("t0"), Some("t1"))
        );
        assert_eq!(conditions_json(&conds, Some(2), Some(&v), "t2"), v, "rendered again over itself: unchanged");
    }

    #[test]
    fn transition_time_is_kept_while_the_status_does_not_change_and_others_entries_survive() {
        let s = ObjectStatus {
            key: ObjectKey { kind: "HTTPRoute", namespace: Some("web".into()), name: "r".into() },
            generation: Some(3),
            status: Status::Route {
                drop: Vec::new(),
                parents: vec![RefStatus {
                    reference: ParentReference { name: "gw".into(), ..ParentReference::default() },
                    conditions: vec![Cond::new("Accepted", true, "Accepted", "ok")],
                }],
            },
        };
        let other = json!({"parentRef": {"name": "x"}, "controllerName": "example.com/other", "conditions": []});
        let first = to_json(&s, Some(&json!({"parents": [other.clone()]})), "2026-01-01T00:00:00Z");
        assert_eq!(first["parents"][0], other, "another controller's entry is kept");
        assert_eq!(first["parents"][1]["parentRef"]["kind"], "Gateway");
        assert_eq!(first["parents"][1]["conditions"][0]["observedGeneration"], 3);
        let again = to_json(&s, Some(&first), "2026-01-02T00:00:00Z");
        assert_eq!(again, first, "same status, same JSON: no patch needed");
        let mut flipped = s.clone();
        if let Status::Route { parents, .. } = &mut flipped.status {
            parents[0].conditions[0] = Cond::new("Accepted", false, "NotAllowedByListeners", "no");
        }
        let changed = to_json(&flipped, Some(&first), "2026-01-02T00:00:00Z");
        assert_eq!(changed["parents"][1]["conditions"][0]["lastTransitionTime"], "2026-01-02T00:00:00Z");
    }
}
