//! Helm values as JSON: the user's YAML converted the way Helm reads it, platformctl's defaults
//! deep-merged under it, and the comparison that decides whether a deployed release is current.

use serde_json::{Map, Value};

/// `overlay` over `base`, the way Helm layers values files: mappings merge key by key, anything
/// else (scalars, lists, `null`) replaces. A `null` is kept, so that Helm drops the chart's
/// default for that key.
pub fn merge(base: Value, overlay: Value) -> Value {
    match (base, overlay) {
        (Value::Object(mut base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                let merged = match base.remove(&key) {
                    Some(old) => merge(old, value),
                    None => value,
                };
                base.insert(key, merged);
            }
            Value::Object(base)
        }
        (_, overlay) => overlay,
    }
}

/// A values mapping from `platform.yaml` as JSON. Scalar keys become strings, as Helm's YAML
/// reader makes them; tags are dropped. Validation has refused complex keys and non-finite
/// numbers, which JSON cannot carry; should one get here it becomes `null`.
pub fn from_yaml(values: &serde_yaml::Mapping) -> Value {
    let mut out = Map::new();
    for (k, v) in values {
        let key = match k {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Null => "null".to_string(),
            _ => continue,
        };
        out.insert(key, yaml_value(v));
    }
    Value::Object(out)
}

fn yaml_value(v: &serde_yaml::Value) -> Value {
    match v {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(*b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        serde_yaml::Value::String(s) => Value::String(s.clone()),
        serde_yaml::Value::Sequence(items) => Value::Array(items.iter().map(yaml_value).collect()),
        serde_yaml::Value::Mapping(m) => from_yaml(m),
        serde_yaml::Value::Tagged(t) => yaml_value(&t.value),
    }
}

/// Whether the values Helm reports for a release (`helm get values -o json`) are `wanted`.
/// Helm reports no values as `null` and stores numbers as floats; both sides are compared as
/// Helm sees them.
pub fn same(deployed: &Value, wanted: &Value) -> bool {
    let empty = |v: &Value| v.is_null() || v.as_object().is_some_and(Map::is_empty);
    if empty(deployed) && empty(wanted) {
        return true;
    }
    equal(deployed, wanted)
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|other| equal(v, other)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_is_deep_for_mappings_and_replaces_everything_else() {
        let base = json!({
            "a": {"b": 1, "c": [1, 2], "d": {"e": true}},
            "keep": "x",
        });
        let overlay = json!({
            "a": {"b": 2, "c": [3], "d": {"f": false}},
            "new": {"g": 1},
        });
        assert_eq!(
            merge(base, overlay),
            json!({
                "a": {"b": 2, "c": [3], "d": {"e": true, "f": false}},
                "keep": "x",
                "new": {"g": 1},
            })
        );
    }

    #[test]
    fn merge_keeps_null_so_helm_drops_the_chart_default() {
        let merged = merge(json!({"a": {"b": 1}}), json!({"a": null}));
        assert_eq!(merged, json!({"a": null}));
        // A mapping over a scalar replaces it, and the other way round.
        assert_eq!(
            merge(json!({"a": 1}), json!({"a": {"b": 2}})),
            json!({"a": {"b": 2}})
        );
        assert_eq!(
            merge(json!({"a": {"b": 2}}), json!({"a": 1})),
            json!({"a": 1})
        );
    }

    #[test]
    fn yaml_becomes_json_as_helm_reads_it() {
        let yaml: serde_yaml::Mapping = serde_yaml::from_str(
            "configs:\n  params:\n    server.insecure: true\n1: one\ntrue: yes\nn: 3\nf: 0.5\nneg: -2\nlist: [a, {b: null}]\ntagged: !x 5\n",
        )
        .expect("valid YAML");
        assert_eq!(
            from_yaml(&yaml),
            json!({
                "configs": {"params": {"server.insecure": true}},
                "1": "one",
                "true": "yes",
                "n": 3,
                "f": 0.5,
                "neg": -2,
                "list": ["a", {"b": null}],
                "tagged": 5,
            })
        );
    }

    #[test]
    fn same_treats_no_values_alike_and_numbers_by_value() {
        assert!(same(&Value::Null, &json!({})));
        assert!(same(&json!({}), &Value::Null));
        assert!(same(&json!({"a": 3.0}), &json!({"a": 3})));
        assert!(same(
            &json!({"a": {"b": [1, {"c": null}]}, "d": {}}),
            &json!({"d": {}, "a": {"b": [1.0, {"c": null}]}})
        ));
        assert!(!same(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!same(&json!({"a": 1}), &json!({"a": 1, "b": null})));
        assert!(!same(&json!({"a": [1, 2]}), &json!({"a": [2, 1]})));
        assert!(!same(&json!({"a": "1"}), &json!({"a": 1})));
        assert!(!same(&Value::Null, &json!({"a": 1})));
    }
}
