//! Strict parsing of one rendered object: built-in kinds into k8s-openapi types, our custom
//! resources into the project-written types of `crate::crd`.
//!
//! k8s-openapi ignores unknown fields when deserialising, so strictness is proven by a round
//! trip: the object is deserialised into its type and serialised back, and every key of the
//! input must survive. A key that does not is a field the API server would reject (or
//! silently drop) — a typo such as `readinesProbe` is caught this way.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why an object does not parse into its type.
#[derive(Debug, PartialEq)]
pub enum Violation {
    /// No type is known for this apiVersion and kind.
    UnknownKind,
    /// Deserialisation failed (wrong type, missing field, unknown field in our own types).
    Invalid { path: String, message: String },
    /// The round trip lost this key.
    UnknownField { path: String },
}

/// Checks `doc` strictly against the type for its `apiVersion` and `kind`.
pub fn check(api_version: &str, kind: &str, doc: &Value) -> Result<(), Violation> {
    let round_trip = match crate::crd::round_trip(api_version, kind, doc.clone()) {
        Ok(Some(v)) => v,
        Ok(None) => builtin(api_version, kind, doc)?,
        Err(e) => {
            return Err(Violation::Invalid {
                path: e.path,
                message: e.message,
            });
        }
    };
    match lost_key(doc, &round_trip, String::new()) {
        Some(path) => Err(Violation::UnknownField { path }),
        None => Ok(()),
    }
}

macro_rules! builtins {
    ($api_version:expr, $kind:expr, $doc:expr; $($av:literal $k:literal => $ty:ty),* $(,)?) => {
        match ($api_version, $kind) {
            $(($av, $k) => round_trip::<$ty>($doc),)*
            _ => Err(Violation::UnknownKind),
        }
    };
}

fn builtin(api_version: &str, kind: &str, doc: &Value) -> Result<Value, Violation> {
    use k8s_openapi::api::{apps, autoscaling, batch, core, networking, policy, rbac};
    builtins!(api_version, kind, doc;
        "v1" "ConfigMap" => core::v1::ConfigMap,
        "v1" "Secret" => core::v1::Secret,
        "v1" "Service" => core::v1::Service,
        "v1" "ServiceAccount" => core::v1::ServiceAccount,
        "v1" "Namespace" => core::v1::Namespace,
        "v1" "PersistentVolumeClaim" => core::v1::PersistentVolumeClaim,
        "apps/v1" "Deployment" => apps::v1::Deployment,
        "apps/v1" "StatefulSet" => apps::v1::StatefulSet,
        "apps/v1" "DaemonSet" => apps::v1::DaemonSet,
        "batch/v1" "Job" => batch::v1::Job,
        "batch/v1" "CronJob" => batch::v1::CronJob,
        "autoscaling/v2" "HorizontalPodAutoscaler" => autoscaling::v2::HorizontalPodAutoscaler,
        "networking.k8s.io/v1" "Ingress" => networking::v1::Ingress,
        "networking.k8s.io/v1" "NetworkPolicy" => networking::v1::NetworkPolicy,
        "policy/v1" "PodDisruptionBudget" => policy::v1::PodDisruptionBudget,
        "rbac.authorization.k8s.io/v1" "Role" => rbac::v1::Role,
        "rbac.authorization.k8s.io/v1" "RoleBinding" => rbac::v1::RoleBinding,
    )
}

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<Value, Violation> {
    let typed: T =
        serde_path_to_error::deserialize(doc.clone()).map_err(|e| Violation::Invalid {
            path: e.path().to_string(),
            message: e.into_inner().to_string(),
        })?;
    serde_json::to_value(&typed).map_err(|e| Violation::Invalid {
        path: ".".into(),
        message: e.to_string(),
    })
}

/// The first key path present in `original` but missing from `round_trip`.
fn lost_key(original: &Value, round_trip: &Value, path: String) -> Option<String> {
    match (original, round_trip) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(k, v)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match b.get(k) {
                // An explicit null means "unset" to the API server too.
                None if v.is_null() => None,
                None => Some(p),
                Some(w) => lost_key(v, w, p),
            }
        }),
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (v, w))| lost_key(v, w, format!("{path}[{i}]"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(extra: Value) -> Value {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "a", "namespace": "b"},
            "spec": {"selector": {"app": "a"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        });
        if let (Some(obj), Value::Object(e)) = (v["spec"].as_object_mut(), extra) {
            obj.extend(e);
        }
        v
    }

    #[test]
    fn valid_builtin_passes() {
        assert_eq!(check("v1", "Service", &service(json!({}))), Ok(()));
    }

    #[test]
    fn unknown_field_in_builtin_is_caught_by_round_trip() {
        let doc = service(json!({"selectr": {"x": "y"}}));
        assert_eq!(
            check("v1", "Service", &doc),
            Err(Violation::UnknownField {
                path: "spec.selectr".into()
            })
        );
    }

    #[test]
    fn unknown_field_inside_list_item() {
        let mut doc = service(json!({}));
        doc["spec"]["ports"][0]["prot"] = json!(1);
        assert_eq!(
            check("v1", "Service", &doc),
            Err(Violation::UnknownField {
                path: "spec.ports[0].prot".into()
            })
        );
    }

    #[test]
    fn wrong_type_names_path() {
        let doc = service(json!({"ports": [{"port": "eighty"}]}));
        match check("v1", "Service", &doc) {
            Err(Violation::Invalid { path, .. }) => assert_eq!(path, "spec.ports[0].port"),
            other => panic!("expected a type error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_kind() {
        assert_eq!(
            check("example.com/v1", "Widget", &json!({})),
            Err(Violation::UnknownKind)
        );
    }
}
