//! The ancestors of a ClientAccessPolicy that targets HTTPRoutes.
//!
//! Policy attachment (GEP-713): `status.ancestors` lists the objects at
//! which the policy takes a distinct effect, "usually Gateways" — for a
//! policy on a route, the Gateways the route is attached to, not the
//! route itself; the list is a map keyed by `ancestorRef` and
//! `controllerName` (one entry per Gateway, however many of the policy's
//! targets are on it), of at most 16 entries.
//!
//! So each HTTPRoute (or rule) target's result is reported on every
//! Gateway the route is attached to (through a ListenerSet too: its
//! Gateway). A route that is attached to none of realip's Gateways (missing,
//! or its parents not realip's or not accepting it) keeps the route itself
//! as the ancestor, with `Accepted: False, TargetNotFound` saying why:
//! there is no Gateway on which the policy acts (for one refused for its
//! namespace's route budget, the message says so). Entries of several
//! targets on one Gateway merge: `Accepted: True` when one of them is
//! attached (the message names which, and why the others are not), else
//! the first target's failure.

use std::sync::Arc;

use super::{Cond, ObjectStatus, RefStatus, Status, GATEWAY_GROUP};
use crate::gateway::types::ParentReference;

/// The Gateways (namespace, name) an HTTPRoute (namespace, name) is
/// attached to, and whether it is refused for its namespace's route budget
/// (`--kubernetes-max-routes-per-namespace`).
type GatewaysOf<'f> = &'f dyn Fn(&str, &str) -> (Vec<(String, String)>, bool);

/// At most this many ancestors (the CRDs' `maxItems`).
const MAX_ANCESTORS: usize = 16;

/// Rewrites the ancestors of every ClientAccessPolicy in `statuses`;
/// `gateways_of(ns, name)` gives the Gateways (namespace, name) the
/// HTTPRoute is attached to, and whether it is refused for its
/// namespace's route budget.
pub(super) fn access_policy_ancestors(statuses: &mut [Arc<ObjectStatus>], gateways_of: GatewaysOf<'_>) {
    for s in statuses.iter_mut().filter(|s| s.key.kind == "ClientAccessPolicy") {
        let Status::Policy { ancestors, .. } = &s.status else { continue };
        if !ancestors.iter().any(|a| a.reference.kind.as_deref() == Some("HTTPRoute")) {
            continue;
        }
        // (ancestor, [(target, its condition)]) in the order first seen.
        let mut merged: Vec<(ParentReference, Vec<(String, Cond)>)> = Vec::new();
        let mut add = |reference: ParentReference, target: String, cond: Cond| match merged
            .iter_mut()
            .find(|(r, _)| *r == reference)
        {
            Some((_, list)) => list.push((target, cond)),
            None => merged.push((reference, vec![(target, cond)])),
        };
        for a in ancestors {
            let r = &a.reference;
            let kind = r.kind.clone().unwrap_or_default();
            let ns = r.namespace.clone().unwrap_or_default();
            let section = r.section_name.as_ref().map(|s| format!(" rule {s}")).unwrap_or_default();
            let target = format!("{kind} {ns}/{}{section}", r.name);
            let cond = a.conditions.iter().find(|c| c.kind == "Accepted").cloned();
            let Some(cond) = cond else { continue };
            // A target that does not exist has no Gateway: it stays the
            // ancestor, TargetNotFound.
            if kind != "HTTPRoute" || cond.reason == "TargetNotFound" {
                add(r.clone(), target, cond);
                continue;
            }
            let (gateways, over_budget) = gateways_of(&ns, &r.name);
            if gateways.is_empty() {
                let cond = if (cond.status || cond.reason == "Conflicted") && over_budget {
                    Cond::new(
                        "Accepted",
                        false,
                        "TargetNotFound",
                        format!(
                            "{target} exists but is not served: with the older HTTPRoutes of namespace {ns} it \
                             passes the routes one namespace may have in realip \
                             (--kubernetes-max-routes-per-namespace; see its status.parents): the policy acts nowhere"
                        ),
                    )
                } else if cond.status || cond.reason == "Conflicted" {
                    Cond::new(
                        "Accepted",
                        false,
                        "TargetNotFound",
                        format!(
                            "{target} is not attached to any Gateway realip serves (see its status.parents): the \
                             policy acts nowhere"
                        ),
                    )
                } else {
                    cond
                };
                add(r.clone(), target, cond);
                continue;
            }
            for (gns, gname) in gateways {
                let gateway = ParentReference {
                    group: Some(GATEWAY_GROUP.to_owned()),
                    kind: Some("Gateway".to_owned()),
                    namespace: Some(gns),
                    name: gname,
                    section_name: None,
                    port: None,
                };
                add(gateway, target.clone(), cond.clone());
            }
        }
        let mut out: Vec<RefStatus> = merged
            .into_iter()
            .map(|(reference, list)| RefStatus { reference, conditions: vec![merge(&list)] })
            .collect();
        out.truncate(MAX_ANCESTORS);
        Arc::make_mut(s).status = Status::Policy { ancestors: out, drop: Vec::new() };
    }
}

/// One condition for an ancestor from its targets' conditions.
fn merge(list: &[(String, Cond)]) -> Cond {
    if let [(target, c)] = list {
        let mut c = c.clone();
        if c.status || !c.message.contains(target.as_str()) {
            c.message = format!("{target}: {}", c.message);
        }
        return c;
    }
    let attached: Vec<&str> = list.iter().filter(|(_, c)| c.status).map(|(t, _)| t.as_str()).collect();
    let not: Vec<String> =
        list.iter().filter(|(_, c)| !c.status).map(|(t, c)| format!("{t} ({}: {})", c.reason, c.message)).collect();
    if attached.is_empty() {
        let (_, first) = &list[0];
        return Cond::new("Accepted", false, first.reason, not.join("; "));
    }
    let mut message = format!("policy attached to {}", attached.join(", "));
    if !not.is_empty() {
        message = format!("{message}; not attached: {}", not.join("; "));
    }
    Cond::new("Accepted", true, "Accepted", message)
}
