//! A small validator for CustomResourceDefinition `openAPIV3Schema`s, so
//! every object `realip migrate` emits is checked against the CRD of its
//! kind (Gateway API, Envoy Gateway, realip's own) before a user applies it.
//!
//! Covers the structural-schema keywords those CRDs use: `type`,
//! `properties`, `additionalProperties`, `required`, `enum`, `items`,
//! `min/maxItems`, `min/maxLength`, `min/maxProperties`, `minimum`,
//! `maximum` (with draft-4 boolean `exclusiveMinimum/Maximum`), `pattern`,
//! `allOf/anyOf/oneOf/not`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-preserve-unknown-fields` and `x-kubernetes-list-type`
//! `set`/`map` uniqueness. Invariants: a field the schema does not declare
//! is an error (the API server would silently prune it: for a generated
//! object that is a bug, never intended); keywords apply only to values of
//! their type, as in JSON Schema; CEL rules (`x-kubernetes-validations`)
//! are not evaluated (the tests check the rules that matter for our output
//! explicitly); `format` is not checked.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Deserialize as _;
use serde_json::Value;

use crate::Error;

/// Schemas by `apiVersion` and `kind`, from CRDs.
#[derive(Debug, Default)]
pub struct Schemas {
    by_kind: BTreeMap<(String, String), Value>,
    regexes: Mutex<BTreeMap<String, Option<regex::Regex>>>,
}

impl Schemas {
    /// Adds every served version of the CRDs in `text` (multi-document
    /// YAML); `origin` names the text in errors.
    pub fn add_yaml(&mut self, text: &str, origin: &str) -> Result<(), Error> {
        let crd_err = |reason: String| Error::Crd { origin: origin.to_owned(), reason };
        for doc in serde_norway::Deserializer::from_str(text) {
            let v = Value::deserialize(doc).map_err(|e| crd_err(format!("invalid YAML: {e}")))?;
            if v.is_null() {
                continue;
            }
            self.add_crd(&v).map_err(&crd_err)?;
        }
        Ok(())
    }

    /// Adds the `*.yaml` CRDs of a directory (not recursive).
    pub fn add_dir(&mut self, dir: &std::path::Path) -> Result<(), Error> {
        let read = |e| Error::Load(realip_kube::Error::Read { path: dir.to_owned(), source: e });
        let mut files: Vec<_> =
            std::fs::read_dir(dir).map_err(read)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml")) {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Error::Load(realip_kube::Error::Read { path: f.clone(), source: e }))?;
            self.add_yaml(&text, &f.display().to_string())?;
        }
        Ok(())
    }

    /// realip's own CRDs (ClientIPPolicy, ClientAccessPolicy), as the chart ships them.
    pub fn realip() -> Schemas {
        let mut s = Schemas::default();
        for text in realip_kube::manifests::CRDS {
            // Compiled in from deploy/helm: a failure is a build-time bug, caught by the tests.
            let _ = s.add_yaml(text, "deploy/helm/realip/crds");
        }
        s
    }

    fn add_crd(&mut self, crd: &Value) -> Result<(), String> {
        if crd.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
            return Err("not a CustomResourceDefinition".into());
        }
        let group = crd.pointer("/spec/group").and_then(Value::as_str).ok_or("no spec.group")?;
        let kind = crd.pointer("/spec/names/kind").and_then(Value::as_str).ok_or("no spec.names.kind")?;
        for v in crd.pointer("/spec/versions").and_then(Value::as_array).into_iter().flatten() {
            let name = v.get("name").and_then(Value::as_str).ok_or("a version without name")?;
            let schema = v
                .pointer("/schema/openAPIV3Schema")
                .ok_or_else(|| format!("{kind} {name}: no schema.openAPIV3Schema"))?;
            self.by_kind.insert((format!("{group}/{name}"), kind.to_owned()), schema.clone());
        }
        Ok(())
    }

    /// Whether a schema for this `apiVersion` + `kind` is known.
    pub fn knows(&self, api_version: &str, kind: &str) -> bool {
        self.by_kind.contains_key(&(api_version.to_owned(), kind.to_owned()))
    }

    /// Every violation of `obj` against the schema of its kind, as
    /// `path: problem` (empty when valid); an unknown kind is one violation.
    pub fn validate(&self, obj: &Value) -> Vec<String> {
        let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let Some(schema) = self.by_kind.get(&(av.to_owned(), kind.to_owned())) else {
            return vec![format!("no CRD schema for {av} {kind}")];
        };
        let mut errs = Vec::new();
        self.check(schema, obj, "", &mut errs);
        errs
    }

    fn regex(&self, pattern: &str) -> Option<regex::Regex> {
        let mut cache = self.regexes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.entry(pattern.to_owned()).or_insert_with(|| regex::Regex::new(pattern).ok()).clone()
    }

    #[allow(clippy::too_many_lines)] // one arm per keyword family, in JSON Schema's order
    fn check(&self, s: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
        let at = |p: &str| if p.is_empty() { "(root)".to_owned() } else { p.to_owned() };
        let int_or_string = s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => v.is_object(),
                "array" => v.is_array(),
                "string" => v.is_string() || (int_or_string && is_integer(v)),
                "integer" => is_integer(v) || (int_or_string && v.is_string()),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                _ => true,
            };
            if !ok {
                errs.push(format!("{}: expected {t}, got {}", at(path), short(v)));
                return;
            }
        } else if int_or_string && !(v.is_string() || is_integer(v)) {
            errs.push(format!("{}: expected an integer or a string, got {}", at(path), short(v)));
            return;
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            if !e.contains(v) {
                errs.push(format!("{}: {} is not one of {}", at(path), short(v), Value::Array(e.clone())));
            }
        }
        let len_check = |key: &str, n: usize, errs: &mut Vec<String>, what: &str| {
            if let Some(lim) = s.get(key).and_then(Value::as_u64) {
                let lim = usize::try_from(lim).unwrap_or(usize::MAX);
                let bad = if key.starts_with("min") { n < lim } else { n > lim };
                if bad {
                    let word = if key.starts_with("min") { "fewer" } else { "more" };
                    errs.push(format!("{}: {n} {what}, {word} than {key} {lim}", at(path)));
                }
            }
        };
        match v {
            Value::String(text) => {
                let n = text.chars().count();
                len_check("minLength", n, errs, "characters");
                len_check("maxLength", n, errs, "characters");
                if let Some(p) = s.get("pattern").and_then(Value::as_str) {
                    match self.regex(p) {
                        Some(re) if re.is_match(text) => {}
                        Some(_) => errs.push(format!("{}: `{text}` does not match the pattern {p}", at(path))),
                        None => errs.push(format!("{}: the schema's pattern {p} does not compile", at(path))),
                    }
                }
            }
            Value::Number(num) => {
                let x = num.as_f64().unwrap_or(f64::NAN);
                let excl = |k: &str| s.get(k).and_then(Value::as_bool) == Some(true);
                if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                    if x < min || (excl("exclusiveMinimum") && x <= min) {
                        errs.push(format!("{}: {x} is below the minimum {min}", at(path)));
                    }
                }
                if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                    if x > max || (excl("exclusiveMaximum") && x >= max) {
                        errs.push(format!("{}: {x} is above the maximum {max}", at(path)));
                    }
                }
            }
            Value::Array(items) => {
                len_check("minItems", items.len(), errs, "items");
                len_check("maxItems", items.len(), errs, "items");
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}[{i}]"), errs);
                    }
                }
                match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("set") => {
                        for (i, item) in items.iter().enumerate() {
                            if items[..i].contains(item) {
                                errs.push(format!("{path}[{i}]: duplicate item {} in a set", short(item)));
                            }
                        }
                    }
                    Some("map") => {
                        let keys: Vec<&str> = s
                            .get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|k| k.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        let key_of = |item: &Value| keys.iter().map(|k| item.get(*k).cloned()).collect::<Vec<_>>();
                        for (i, item) in items.iter().enumerate() {
                            if items[..i].iter().any(|o| key_of(o) == key_of(item)) {
                                errs.push(format!("{path}[{i}]: duplicate map key {keys:?} in a map list"));
                            }
                        }
                    }
                    _ => {}
                }
            }
            Value::Object(map) => {
                len_check("minProperties", map.len(), errs, "properties");
                len_check("maxProperties", map.len(), errs, "properties");
                for r in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        errs.push(format!("{}: required field `{r}` is missing", at(path)));
                    }
                }
                let props = s.get("properties").and_then(Value::as_object);
                let additional = s.get("additionalProperties");
                let preserve = s.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
                // Kubernetes validates metadata itself; CRDs declare it as a bare object.
                let free = preserve || path == ".metadata";
                for (k, item) in map {
                    let child = format!("{path}.{k}");
                    if let Some(ps) = props.and_then(|p| p.get(k)) {
                        self.check(ps, item, &child, errs);
                    } else if let Some(a) = additional.filter(|a| a.is_object()) {
                        self.check(a, item, &child, errs);
                    } else if !(free || additional.and_then(Value::as_bool) == Some(true)) {
                        errs.push(format!("{child}: unknown field (the schema does not declare it)"));
                    }
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
        for sub in s.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.check(sub, v, path, errs);
        }
        let passes = |sub: &Value| {
            let mut e = Vec::new();
            self.check_branch(sub, v, path, &mut e);
            e.is_empty()
        };
        if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
            if !any.iter().any(passes) {
                errs.push(format!("{}: {} matches none of the anyOf branches", at(path), short(v)));
            }
        }
        if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
            let n = one.iter().filter(|b| passes(b)).count();
            if n != 1 {
                errs.push(format!("{}: {} matches {n} of the oneOf branches (exactly one wanted)", at(path), short(v)));
            }
        }
        if let Some(not) = s.get("not") {
            if passes(not) {
                errs.push(format!("{}: {} matches a schema it must not match", at(path), short(v)));
            }
        }
    }

    /// A branch of anyOf/oneOf/not: structural schemas only put value
    /// validations there, so fields are declared by the parent; unknown
    /// fields are not judged in a branch.
    fn check_branch(&self, s: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
        let mut e = Vec::new();
        self.check(s, v, path, &mut e);
        errs.extend(e.into_iter().filter(|m| !m.ends_with("unknown field (the schema does not declare it)")));
    }
}

fn is_integer(v: &Value) -> bool {
    v.as_i64().is_some() || v.as_u64().is_some()
}

/// A value for a message, truncated.
fn short(v: &Value) -> String {
    let t = v.to_string();
    if t.chars().count() > 60 {
        format!("{}…", t.chars().take(60).collect::<String>())
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(spec: &Value) -> Value {
        json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientIPPolicy", "metadata": {"name": "p", "namespace": "x"}, "spec": spec})
    }

    #[test]
    fn realip_crds_accept_good_objects_and_name_every_fault() {
        let s = Schemas::realip();
        let target = json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}]);
        let good = policy(&json!({"targetRefs": target, "sources": ["ProxyProtocol", {"header": "CF-Connecting-IP"}],
            "strategy": {"trustedHops": 2}, "proxyProtocol": {"mode": "Required", "trustedSenders": ["10.0.0.0/8"]}}));
        assert_eq!(s.validate(&good), Vec::<String>::new());
        let table = [
            (json!({"sources": ["XForwardedFor"]}), ".spec: required field `targetRefs` is missing"),
            (json!({"targetRefs": target, "sources": ["Xff"]}), ".spec.sources[0]: \"Xff\" matches none of the anyOf"),
            (json!({"targetRefs": target, "strategy": "Leftmost"}), ".spec.strategy: \"Leftmost\" matches none"),
            (json!({"targetRefs": target, "trustedProxy": []}), ".spec.trustedProxy: unknown field"),
            (json!({"targetRefs": [], "failClosed": true}), ".spec.targetRefs: 0 items, fewer than minItems 1"),
            (json!({"targetRefs": target, "failClosed": "yes"}), ".spec.failClosed: expected boolean"),
            (
                json!({"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "sectionName": "HTTP"}]}),
                "does not match the pattern",
            ),
            (json!({"targetRefs": target, "proxyProtocol": {"mode": "On"}}), "is not one of"),
        ];
        for (spec, want) in table {
            let errs = s.validate(&policy(&spec));
            assert!(errs.iter().any(|e| e.contains(want)), "{spec}: {errs:?} lacks {want}");
        }
        let access = json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientAccessPolicy", "metadata": {"name": "a"},
            "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"}], "rateLimit": {"perSecond": 0}}});
        assert!(s.validate(&access).iter().any(|e| e.contains("below the minimum")), "exclusiveMinimum 0");
        assert_eq!(s.validate(&json!({"apiVersion": "v1", "kind": "Pod"})), ["no CRD schema for v1 Pod"]);
    }

    #[test]
    fn int_or_string_oneof_and_map_lists() {
        let mut s = Schemas::default();
        s.add_yaml(
            "kind: CustomResourceDefinition\nspec:\n  group: t.dev\n  names: {kind: T}\n  versions:\n  - name: v1\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          apiVersion: {type: string}\n          kind: {type: string}\n          port: {x-kubernetes-int-or-string: true}\n          l:\n            type: array\n            x-kubernetes-list-type: map\n            x-kubernetes-list-map-keys: [name]\n            items: {type: object, properties: {name: {type: string}}}\n          o:\n            oneOf: [{type: string}, {type: integer}]\n",
            "t",
        )
        .unwrap();
        let ok = json!({"apiVersion": "t.dev/v1", "kind": "T", "port": "http", "o": 3});
        assert!(s.validate(&ok).is_empty());
        let bad =
            json!({"apiVersion": "t.dev/v1", "kind": "T", "port": 1.5, "l": [{"name": "a"}, {"name": "a"}], "o": true});
        let errs = s.validate(&bad);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(s
            .add_yaml("kind: ConfigMap\n", "cm.yaml")
            .unwrap_err()
            .to_string()
            .contains("cm.yaml: not a CustomResourceDefinition"));
    }
}
