//! A bag of owned objects of every kind the translation reads, loaded from
//! YAML/JSON text (tests, examples, `realip` tooling). Each document is
//! converted to its type or reported with its kind and name: nothing is
//! skipped without a word (kinds the translation does not read are listed
//! in [`Objects::ignored`]).

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Deserialize as _;
use serde_json::Value;

use super::translate::Inputs;
use super::types::{
    ClientAccessPolicy, ClientIpPolicy, Gateway, GatewayClass, HttpRoute, ListenerSet, ReferenceGrant, UnservedRoute,
    UNSERVED_ROUTE_KINDS,
};

/// Owned objects, by kind.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    /// GatewayClasses.
    pub classes: Vec<GatewayClass>,
    /// Gateways.
    pub gateways: Vec<Gateway>,
    /// ListenerSets.
    pub listener_sets: Vec<ListenerSet>,
    /// HTTPRoutes.
    pub routes: Vec<HttpRoute>,
    /// Routes of kinds realip does not serve (GRPCRoute, TLSRoute,
    /// TCPRoute, UDPRoute), with their kind: they only get status.
    pub unserved_routes: Vec<(&'static str, UnservedRoute)>,
    /// ReferenceGrants.
    pub grants: Vec<ReferenceGrant>,
    /// ClientIPPolicies.
    pub ip_policies: Vec<ClientIpPolicy>,
    /// ClientAccessPolicies.
    pub access_policies: Vec<ClientAccessPolicy>,
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// Services.
    pub services: Vec<Service>,
    /// EndpointSlices.
    pub slices: Vec<EndpointSlice>,
    /// Secrets.
    pub secrets: Vec<Secret>,
    /// `kind namespace/name` of documents of other kinds
    /// (BackendTLSPolicy…), which the translation does not read.
    pub ignored: Vec<String>,
}

fn conv<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("{what}: {e}"))
}

impl Objects {
    /// Adds one object; namespaced objects without a namespace get
    /// `default`, as `kubectl apply` gives them.
    pub fn add(&mut self, mut v: Value) -> Result<(), String> {
        let kind = v["kind"].as_str().unwrap_or_default().to_owned();
        let api = v["apiVersion"].as_str().unwrap_or_default().to_owned();
        let group = api.rsplit_once('/').map_or("", |(g, _)| g).to_owned();
        let cluster_scoped = matches!(kind.as_str(), "GatewayClass" | "Namespace");
        if !cluster_scoped && v["metadata"]["namespace"].is_null() && v["metadata"].is_object() {
            v["metadata"]["namespace"] = Value::from("default");
        }
        let what = format!(
            "{kind} {}/{}",
            v["metadata"]["namespace"].as_str().unwrap_or(""),
            v["metadata"]["name"].as_str().unwrap_or("")
        );
        match (group.as_str(), kind.as_str()) {
            ("gateway.networking.k8s.io", "GatewayClass") => self.classes.push(conv(v, &what)?),
            ("gateway.networking.k8s.io", "Gateway") => self.gateways.push(conv(v, &what)?),
            ("gateway.networking.k8s.io", "ListenerSet") => self.listener_sets.push(conv(v, &what)?),
            ("gateway.networking.k8s.io", "HTTPRoute") => self.routes.push(conv(v, &what)?),
            ("gateway.networking.k8s.io", "ReferenceGrant") => self.grants.push(conv(v, &what)?),
            ("realip.dev", "ClientIPPolicy") => self.ip_policies.push(conv(v, &what)?),
            ("realip.dev", "ClientAccessPolicy") => self.access_policies.push(conv(v, &what)?),
            ("gateway.networking.k8s.io", k) if UNSERVED_ROUTE_KINDS.contains(&k) => {
                let kind = UNSERVED_ROUTE_KINDS.iter().find(|u| **u == k).copied().unwrap_or_default();
                self.unserved_routes.push((kind, conv(v, &what)?));
            }
            ("", "Namespace") => self.namespaces.push(conv(v, &what)?),
            ("", "Service") => self.services.push(conv(v, &what)?),
            ("", "Secret") => self.secrets.push(conv(v, &what)?),
            ("discovery.k8s.io", "EndpointSlice") => self.slices.push(conv(v, &what)?),
            _ => self.ignored.push(what),
        }
        Ok(())
    }

    /// Adds every document of a YAML (or JSON) stream.
    pub fn add_yaml(&mut self, text: &str) -> Result<(), String> {
        for doc in serde_norway::Deserializer::from_str(text) {
            let v = Value::deserialize(doc).map_err(|e| format!("invalid YAML: {e}"))?;
            if v.is_null() {
                continue;
            }
            self.add(v)?;
        }
        Ok(())
    }

    /// Borrowed inputs for [`super::translate::translate`].
    pub fn inputs<'a>(&'a self, class: &'a str, addresses: &[String]) -> Inputs<'a> {
        Inputs {
            class,
            addresses: addresses.to_vec(),
            classes: self.classes.iter().collect(),
            gateways: self.gateways.iter().collect(),
            listener_sets: self.listener_sets.iter().collect(),
            routes: self.routes.iter().collect(),
            unserved_routes: self.unserved_routes.iter().map(|(k, r)| (*k, r)).collect(),
            grants: self.grants.iter().collect(),
            grant_index: std::sync::OnceLock::new(),
            ip_policies: self.ip_policies.iter().collect(),
            access_policies: self.access_policies.iter().collect(),
            namespaces: self.namespaces.iter().collect(),
            services: self.services.iter().collect(),
            slices: self.slices.iter().collect(),
            secrets: self.secrets.iter().collect(),
            last_good_ip: std::collections::BTreeMap::new(),
            binds: None,
            last_good_access: std::collections::BTreeMap::new(),
            max_routes_per_namespace: None,
            previous: None,
        }
    }
}
