//! Status of routes of kinds realip does not serve (GRPCRoute, TLSRoute,
//! TCPRoute, UDPRoute) attached to realip's Gateways and ListenerSets.
//!
//! The spec: a Route kind a listener does not list in `supportedKinds`
//! cannot attach to it, and a parent none of whose listeners admits the
//! route gets `Accepted: False, NotAllowedByListeners`. realip's listeners
//! support HTTPRoute only, so every parent entry of such a route that is
//! realip's says so (or `NoMatchingParent` when its `sectionName` / `port`
//! names no listener) — never silence. Parents that are not realip's
//! (another class, another controller) get no entry from realip; the
//! entries other controllers write are kept (see [`super::super::status::to_json`]).
//!
//! Invariant: nothing here is served or counted in a listener's
//! `attachedRoutes`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{group_is, name_of, ns_of, Cond, Gateway, Lst, ObjectKey, ObjectStatus, RefStatus, Status, GATEWAY_GROUP};
use crate::gateway::types::UnservedRoute;

/// The status of each route of `routes` (kind, route) with at least one
/// parent that is realip's, or entries this proxy wrote before for parents
/// it no longer names (removed, as an HTTPRoute's).
pub(super) fn statuses(
    inp: &super::Inputs<'_>,
    routes: &[(&'static str, &UnservedRoute)],
    listeners: &[Lst<'_>],
    gateways: &[&Gateway],
    set_ok: &BTreeMap<(String, String), Result<(), String>>,
) -> Vec<Arc<ObjectStatus>> {
    // Indexed once (review 23 HIGH-1: a tenant's thousands of routes with
    // 32 parentRefs each scanned every Gateway and listener per parentRef).
    let ours_gw: foldhash::HashSet<(String, String)> =
        gateways.iter().map(|g| (ns_of(&g.metadata), name_of(&g.metadata))).collect();
    let mut by_parent: foldhash::HashMap<(&str, &str, &str), Vec<&Lst<'_>>> = foldhash::HashMap::default();
    for l in listeners {
        by_parent.entry((l.parent_kind, l.parent_ns.as_str(), l.parent_name.as_str())).or_default().push(l);
    }
    let mut out = Vec::new();
    for &(kind, route) in routes {
        let rns = ns_of(&route.metadata);
        let mut parents = Vec::new();
        for pref in &route.spec.parent_refs {
            let pkind = pref.kind.as_deref().unwrap_or("Gateway");
            let pns = pref.namespace.clone().unwrap_or_else(|| rns.clone());
            if !group_is(pref.group.as_deref(), GATEWAY_GROUP) || !matches!(pkind, "Gateway" | "ListenerSet") {
                continue;
            }
            let ours = match pkind {
                "Gateway" => ours_gw.contains(&(pns.clone(), pref.name.clone())),
                _ => set_ok.contains_key(&(pns.clone(), pref.name.clone())),
            };
            if !ours {
                continue; // another controller writes this entry
            }
            let named: Vec<&Lst<'_>> = by_parent
                .get(&(pkind, pns.as_str(), pref.name.as_str()))
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .copied()
                .filter(|l| {
                    pref.section_name.as_ref().is_none_or(|s| *s == l.spec.name)
                        && pref.port.is_none_or(|p| p == l.spec.port)
                })
                .collect();
            let accepted = if named.is_empty() {
                Cond::new("Accepted", false, "NoMatchingParent", "no listener matches sectionName / port")
            } else {
                let names: Vec<&str> = named.iter().map(|l| l.spec.name.as_str()).collect();
                Cond::new(
                    "Accepted",
                    false,
                    "NotAllowedByListeners",
                    format!(
                        "realip does not serve {kind}: no listener of this parent lists it in supportedKinds \
                         (listeners {}; realip serves HTTPRoute only)",
                        names.join(", ")
                    ),
                )
            };
            let mut reference = pref.clone();
            reference.namespace.get_or_insert(pns);
            parents.push(RefStatus { reference, conditions: vec![accepted] });
        }
        let named: Vec<serde_json::Value> =
            parents.iter().map(|p| crate::gateway::status::reference_json(&p.reference, "Gateway")).collect();
        let name = name_of(&route.metadata);
        let drop = super::stale_refs(inp, (kind, &rns, &name), route.status.as_ref(), ("parents", "parentRef"), &named);
        if !parents.is_empty() || !drop.is_empty() {
            out.push(Arc::new(ObjectStatus {
                key: ObjectKey { kind, namespace: Some(rns), name: name_of(&route.metadata) },
                generation: route.metadata.generation,
                status: Status::Route { parents, drop },
            }));
        }
    }
    out
}
