//! Any ingress controller found through its IngressClass: the workload
//! running with `--controller-class=<the class's controller>` (or
//! `--ingress-class=<class name>`), the Services selecting its pods, and
//! its pods. Its client-IP settings are unknown, so only the Service and
//! workload rules judge it.

use super::{add_workload, Index};
use crate::model::{self, Controller, Edge, ServiceFacts};

/// A controller the doctor has no module for.
#[derive(Debug)]
pub struct Generic;

/// Its one instance.
pub static GENERIC: Generic = Generic;

/// Finds the instances not already claimed by a module (`known` ids).
pub fn find(ix: &Index, known: &[String]) -> Vec<Edge> {
    let classes: Vec<(&str, &str)> = ix
        .kind("IngressClass")
        .iter()
        .filter_map(|o| Some((o.name.as_str(), o.doc.str_at(&["spec", "controller"])?)))
        .collect();
    let mut edges = Vec::new();
    for w in ix.workloads() {
        if known.contains(&w.id()) {
            continue;
        }
        let hit = model::containers(w).iter().any(|c| {
            let argv = model::argv(c);
            model::flag(&argv, "--controller-class").is_some_and(|v| classes.iter().any(|(_, c)| *c == v))
        });
        if hit {
            let mut e = Edge::new(&GENERIC, format!("{}/{}", w.namespace, w.name));
            add_workload(&mut e, w, ix);
            edges.push(e);
        }
    }
    edges
}

impl Controller for Generic {
    fn name(&self) -> &'static str {
        "ingress controller"
    }

    fn fix(&self, rule: &str, _edge: &Edge, svc: Option<&ServiceFacts>) -> Option<String> {
        match rule {
            "ingress-etp-cluster" => {
                let s = svc?;
                Some(format!(
                    "kubectl patch svc {} -n {} -p '{{\"spec\":{{\"externalTrafficPolicy\":\"Local\"}}}}'",
                    s.name, s.namespace
                ))
            }
            _ => None,
        }
    }
}
