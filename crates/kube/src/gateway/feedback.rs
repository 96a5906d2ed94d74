//! The proxy's feedback ([`Feedback`]) in status: what the translation
//! cannot know — the proxy meets the file's chain and the Ingresses with
//! the Gateway listeners only when it composes its configuration — so
//! that no status says `Programmed` or `Accepted` for what is not served:
//!
//! - a Gateway listener the proxy does not serve (its ClientIPPolicy
//!   differs from the file's chain on every bind serving it, each of which
//!   also serves Ingress or file routes): `Programmed: False, Invalid`,
//!   the message naming the cause, and so its Gateway or ListenerSet
//!   (`Programmed` means every listener is served); the ClientIPPolicy
//!   targets covering it `Accepted: False, Conflicted`. One the proxy
//!   still serves on other binds (one with `ingress = false`, say) stays
//!   `Programmed: True`, the message saying on which `[[listener]]`s only
//!   and why not on the others, and the ClientIPPolicy stays `Accepted`,
//!   its message saying the same;
//! - an HTTPRoute parent none of whose routes the proxy serves, for any
//!   reason the proxy has: `Accepted: False` — reason `HostnameConflict`
//!   when an older Ingress keeps its host, `UnsupportedValue` when the
//!   proxy cannot serve it as written, else `Pending` (its listeners are
//!   not served, as for a route attached only to listeners that are not
//!   programmed, or the proxy lacks something, such as a
//!   `[rate_limit_store]`), the message naming the proxy's reasons; some
//!   of them, or some only on some binds (a host an older Ingress keeps
//!   on the binds serving Ingresses, the route staying on the
//!   `ingress = false` ones): `Accepted` stays and `PartiallyInvalid:
//!   True` (same reasons) names what is not served;
//! - a ClientAccessPolicy the proxy cannot apply (a `scope: Global` rate
//!   limit without `[rate_limit_store]`): `Accepted: False, Invalid` for
//!   the Gateways (its ancestors) where that leaves routes unserved (they
//!   answer 500 in their place, never falling to another rule);
//! - an HTTPS listener whose hostname an Ingress serves on every bind
//!   serving it, none of its routes serving it there (so its certificate
//!   is never offered for it): `Conflicted: True, HostnameConflict`, the
//!   message naming the Ingress (review 16 L9).
//!
//! Invariants: statuses only — never the route set, so a translation after
//! a feedback change hands the proxy the same set and the loop converges;
//! statuses the feedback does not name stay the same shared values (found
//! by binary search in the sorted list, not by walking 10,000 routes).

use std::sync::Arc;

use super::status::{Cond, ObjectKey, ObjectStatus, Status};
use crate::routes::Feedback;

/// Puts `fb` into `statuses` (sorted by object, as a translation returns
/// them).
pub fn apply(statuses: &mut [Arc<ObjectStatus>], fb: &Feedback) {
    if fb.is_empty() {
        return;
    }
    listeners(statuses, fb);
    hostnames(statuses, fb);
    policies(statuses, fb);
    routes(statuses, fb);
    access_policies(statuses, fb);
}

/// ClientAccessPolicies the proxy cannot apply, on the Gateways where.
fn access_policies(statuses: &mut [Arc<ObjectStatus>], fb: &Feedback) {
    for (policy, on) in &fb.access_policies {
        let Some((pns, pname)) = policy.split_once('/') else { continue };
        let Some(i) = find(statuses, "ClientAccessPolicy", pns, pname) else { continue };
        let Status::Policy { ancestors, .. } = &mut Arc::make_mut(&mut statuses[i]).status else { continue };
        for a in ancestors.iter_mut() {
            let r = &a.reference;
            if r.kind.as_deref().unwrap_or("Gateway") != "Gateway" {
                continue;
            }
            let gateway = format!("{}/{}", r.namespace.as_deref().unwrap_or(pns), r.name);
            let Some(why) = on.get(&gateway) else { continue };
            for c in a.conditions.iter_mut().filter(|c| c.kind == "Accepted" && c.status) {
                *c = Cond::new("Accepted", false, "Invalid", format!("not applied by the proxy: {why}"));
            }
        }
    }
}

/// The position of an object's status in `statuses` (sorted by object).
/// A listener's full name (`gateway/NS/NAME/LISTENER` or
/// `listenerset/…`) as (kind, namespace, name, listener).
fn listener_parts(full: &str) -> Option<(&'static str, &str, &str, &str)> {
    let mut parts = full.splitn(4, '/');
    let kind = match parts.next()? {
        "gateway" => "Gateway",
        "listenerset" => "ListenerSet",
        _ => return None,
    };
    Some((kind, parts.next()?, parts.next()?, parts.next()?))
}

fn find(statuses: &[Arc<ObjectStatus>], kind: &'static str, ns: &str, name: &str) -> Option<usize> {
    let key = ObjectKey { kind, namespace: Some(ns.to_owned()), name: name.to_owned() };
    statuses.binary_search_by(|s| s.key.cmp(&key)).ok()
}

/// A Gateway or ListenerSet (kind, namespace, name).
type Parent<'a> = (&'static str, &'a str, &'a str);

/// Listeners not served, and their Gateways or ListenerSets.
fn listeners(statuses: &mut [Arc<ObjectStatus>], fb: &Feedback) {
    // Listeners, by parent.
    let mut parents: std::collections::BTreeMap<Parent<'_>, Vec<(&str, &str)>> = std::collections::BTreeMap::new();
    // Listeners still served on some binds, by parent.
    let mut partly: std::collections::BTreeMap<Parent<'_>, Vec<(&str, &crate::routes::UnservedListener)>> =
        std::collections::BTreeMap::new();
    for (full, why) in &fb.listeners {
        let Some((kind, ns, name, listener)) = listener_parts(full) else { continue };
        if why.served_on.is_empty() {
            parents.entry((kind, ns, name)).or_default().push((listener, why.message.as_str()));
        } else {
            partly.entry((kind, ns, name)).or_default().push((listener, why));
        }
    }
    for ((kind, ns, name), served) in &partly {
        let Some(i) = find(statuses, kind, ns, name) else { continue };
        let Status::Gateway { listeners, .. } = &mut Arc::make_mut(&mut statuses[i]).status else { continue };
        for l in listeners.iter_mut() {
            let Some((_, why)) = served.iter().find(|(n, _)| *n == l.name) else { continue };
            for c in l.conditions.iter_mut().filter(|c| c.kind == "Programmed" && c.status) {
                *c = Cond::new(
                    "Programmed",
                    true,
                    "Programmed",
                    format!(
                        "listener programmed on [[listener]] {} only; not served by the proxy on the others: {}",
                        binds(&why.served_on),
                        why.message
                    ),
                );
            }
        }
    }
    for ((kind, ns, name), unserved) in &parents {
        let Some(i) = find(statuses, kind, ns, name) else { continue };
        let Status::Gateway { conditions, listeners, .. } = &mut Arc::make_mut(&mut statuses[i]).status else {
            continue;
        };
        let mut named = Vec::new();
        for l in listeners.iter_mut() {
            let Some((_, why)) = unserved.iter().find(|(n, _)| *n == l.name) else { continue };
            for c in l.conditions.iter_mut().filter(|c| c.kind == "Programmed" && c.status) {
                *c = Cond::new("Programmed", false, "Invalid", format!("not served by the proxy: {why}"));
                named.push(l.name.clone());
            }
        }
        if named.is_empty() {
            continue;
        }
        let what = format!("listeners not served by the proxy: {} (see their Programmed)", named.join(", "));
        for c in conditions.iter_mut().filter(|c| c.kind == "Programmed") {
            *c = if c.status {
                Cond::new("Programmed", false, "Invalid", what.clone())
            } else {
                Cond::new("Programmed", false, c.reason, format!("{}; {what}", c.message))
            };
        }
    }
}

/// HTTPS listeners whose hostname an Ingress serves wherever they are
/// served: `Conflicted: True, HostnameConflict` (the listener stays
/// programmed: its certificate is just never offered for that name).
fn hostnames(statuses: &mut [Arc<ObjectStatus>], fb: &Feedback) {
    for (full, why) in &fb.hostnames {
        let Some((kind, ns, name, listener)) = listener_parts(full) else { continue };
        let Some(i) = find(statuses, kind, ns, name) else { continue };
        let Status::Gateway { listeners, .. } = &mut Arc::make_mut(&mut statuses[i]).status else { continue };
        for l in listeners.iter_mut().filter(|l| l.name == listener) {
            for c in l.conditions.iter_mut().filter(|c| c.kind == "Conflicted" && !c.status) {
                *c = Cond::new("Conflicted", true, "HostnameConflict", format!("served by the proxy, but {why}"));
            }
        }
    }
}

/// ClientIPPolicies not applied on listeners not served.
fn policies(statuses: &mut [Arc<ObjectStatus>], fb: &Feedback) {
    for (full, why) in &fb.listeners {
        let Some((pns, pname)) = why.policy.as_deref().and_then(|p| p.split_once('/')) else { continue };
        let Some(i) = find(statuses, "ClientIPPolicy", pns, pname) else { continue };
        let Status::Policy { ancestors, .. } = &mut Arc::make_mut(&mut statuses[i]).status else { continue };
        if why.served_on.is_empty() {
            super::translate::mark_conflicted(
                ancestors,
                pns,
                full,
                &format!("not served by the proxy: {}", why.message),
            );
            continue;
        }
        // Applied where the listener is served: Accepted stays, and says
        // where it is not applied.
        for a in ancestors.iter_mut().filter(|a| super::translate::covers(a, pns, full)) {
            for c in a.conditions.iter_mut().filter(|c| c.kind == "Accepted" && c.status) {
                let note = format!(
                    "applied on listener {full} on [[listener]] {} only; not on the others, where the proxy does \
                     not serve the listener: {}",
                    binds(&why.served_on),
                    why.message
                );
                c.message = if c.message.is_empty() { note } else { format!("{}; {note}", c.message) };
            }
        }
    }
}

/// `[[listener]]` names as a status message lists them.
fn binds(names: &[String]) -> String {
    names.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", ")
}

/// HTTPRoute parents with routes not served.
fn routes(statuses: &mut [Arc<ObjectStatus>], fb: &Feedback) {
    for (route, by_parent) in &fb.routes {
        let Some((rns, rname)) = route.split_once('/') else { continue };
        let Some(i) = find(statuses, "HTTPRoute", rns, rname) else { continue };
        let Status::Route { parents, .. } = &mut Arc::make_mut(&mut statuses[i]).status else { continue };
        for p in parents.iter_mut() {
            let r = &p.reference;
            let parent = format!(
                "{}/{}/{}",
                r.kind.as_deref().unwrap_or("Gateway").to_ascii_lowercase(),
                r.namespace.as_deref().unwrap_or(rns),
                r.name
            );
            let Some(loss) = by_parent.get(&parent) else { continue };
            let reason = if loss.host_owned {
                "HostnameConflict"
            } else if loss.invalid {
                "UnsupportedValue"
            } else {
                "Pending"
            };
            let why = loss.reasons.join("; ");
            if loss.served == 0 {
                for c in p.conditions.iter_mut().filter(|c| c.kind == "Accepted" && c.status) {
                    *c = Cond::new("Accepted", false, reason, format!("not served by the proxy: {why}"));
                }
            } else {
                p.conditions.retain(|c| c.kind != "PartiallyInvalid");
                p.conditions.push(Cond::new("PartiallyInvalid", true, reason, {
                    let total = loss.served + loss.unserved;
                    let mut what = Vec::new();
                    if loss.unserved > 0 {
                        what.push(format!("{} of its {total} routes here not served by the proxy", loss.unserved));
                    }
                    if loss.narrowed > 0 {
                        what.push(format!(
                            "{} of its {total} routes here not served on every bind of the proxy",
                            loss.narrowed
                        ));
                    }
                    format!("{}: {why}", what.join(", "))
                }));
            }
        }
    }
}
