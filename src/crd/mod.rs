//! Project-written Rust types for the custom resources platformctl renders, and the one entry point
//! `platformctl lint` uses to prove a rendered object parses strictly into its type.
//!
//! Owns: the Argo Rollouts, Argo CD, prometheus-operator and Chaos Mesh kinds we render, modelled on
//! the upstream CRD `openAPIV3Schema` at the versions `platform.yaml` pins (each module names its
//! source), with `deny_unknown_fields` everywhere so a misspelt key is an error naming its path.
//! Does not own: built-in Kubernetes kinds (those are `k8s-openapi` types, which ignore unknown
//! fields; embedded ones such as a pod template are checked by the lint engine diffing the keys of
//! [`round_trip`]'s output against its input), policy checks, YAML parsing, or CRDs we never render
//! (`status`, `ClusterAnalysisTemplate`, `ApplicationSet`, …): [`round_trip`] answers `Ok(None)` for them.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Implements the common shape of a top-level custom resource: `apiVersion`, `kind`, `metadata`
/// and `spec`. `status` is deliberately absent, so a rendered object carrying one is rejected.
macro_rules! custom_resource {
    ($(#[$doc:meta])* $name:ident, $spec:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            pub api_version: String,
            pub kind: String,
            pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            pub spec: $spec,
        }
    };
}

/// Labels and annotations only: what Argo Rollouts keeps of pod-template, canary, stable,
/// active, preview and AnalysisRun metadata, and Argo CD of managed-namespace metadata.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelsAndAnnotations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

pub mod alertmanagerconfig;
pub mod analysis;
pub mod application;
pub mod appproject;
pub mod canary;
pub mod chaos;
pub mod monitoring;
pub mod rollouts;
pub mod servicemonitor;

/// A rendered object did not parse strictly into its type.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct StrictError {
    /// Key path of the offending value, e.g. `spec.strategy.canary.steps[1].setWeigth`; `.` is the root.
    pub path: String,
    pub message: String,
}

type RoundTrip = fn(Value) -> Result<Value, StrictError>;

/// Every `(apiVersion, kind)` with a project-written type.
const KINDS: &[(&str, &str, RoundTrip)] = &[
    (
        "argoproj.io/v1alpha1",
        "Rollout",
        strict::<rollouts::Rollout>,
    ),
    (
        "argoproj.io/v1alpha1",
        "AnalysisTemplate",
        strict::<analysis::AnalysisTemplate>,
    ),
    (
        "argoproj.io/v1alpha1",
        "Application",
        strict::<application::Application>,
    ),
    (
        "argoproj.io/v1alpha1",
        "AppProject",
        strict::<appproject::AppProject>,
    ),
    (
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        strict::<servicemonitor::ServiceMonitor>,
    ),
    (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        strict::<monitoring::PrometheusRule>,
    ),
    (
        "monitoring.coreos.com/v1alpha1",
        "AlertmanagerConfig",
        strict::<alertmanagerconfig::AlertmanagerConfig>,
    ),
    (
        "chaos-mesh.org/v1alpha1",
        "PodChaos",
        strict::<chaos::PodChaos>,
    ),
    (
        "chaos-mesh.org/v1alpha1",
        "Schedule",
        strict::<chaos::Schedule>,
    ),
];

fn lookup(api_version: &str, kind: &str) -> Option<RoundTrip> {
    KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, f)| *f)
}

/// Deserialises `doc` strictly into the type for its apiVersion/kind and serialises it back.
/// `Ok(None)` if the kind is not one of ours.
///
/// # Errors
/// A [`StrictError`] carrying the `serde_path_to_error` path and message when `doc` has an
/// unknown field, a value of the wrong type, an invalid enum value or a missing required field.
pub fn round_trip(api_version: &str, kind: &str, doc: Value) -> Result<Option<Value>, StrictError> {
    match lookup(api_version, kind) {
        Some(f) => f(doc).map(Some),
        None => Ok(None),
    }
}

fn strict<T: DeserializeOwned + Serialize>(doc: Value) -> Result<Value, StrictError> {
    let typed: T = serde_path_to_error::deserialize(doc).map_err(|e| StrictError {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })?;
    serde_json::to_value(&typed).map_err(|e| StrictError {
        path: ".".to_owned(),
        message: e.to_string(),
    })
}

/// A `format: date-time` string: validated as RFC 3339 but kept verbatim, so a round trip
/// reproduces exactly what was rendered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DateTime(pub String);

impl TryFrom<String> for DateTime {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        match serde_json::from_value::<Time>(Value::String(s.clone())) {
            Ok(_) => Ok(Self(s)),
            Err(_) => Err(format!("`{s}` is not an RFC 3339 date-time")),
        }
    }
}

impl From<DateTime> for String {
    fn from(d: DateTime) -> String {
        d.0
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the per-group unit tests. Locations are JSON pointers into the fixture.
    use super::*;

    /// Parses a YAML fixture the way the lint engine sees a rendered document.
    pub fn doc(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).expect("fixture is valid YAML")
    }

    /// Round-trips `doc` through its type; panics if the kind is not one of ours.
    pub fn trip(doc: &Value) -> Result<Value, StrictError> {
        let field = |k: &str| doc[k].as_str().expect("fixture has apiVersion and kind");
        let (v, k) = (field("apiVersion"), field("kind"));
        assert!(lookup(v, k).is_some(), "{v}/{k} should be known");
        round_trip(v, k, doc.clone()).map(|o| o.expect("known kind"))
    }

    /// The fixture parses and serialises back to an identical value.
    pub fn assert_round_trips(doc: &Value) {
        let out = trip(doc).unwrap_or_else(|e| panic!("valid fixture rejected: {e}"));
        assert_eq!(&out, doc);
    }

    /// The error path `serde_path_to_error` reports for a JSON pointer: `/spec/steps/1/x` →
    /// `spec.steps[1].x`.
    pub fn path_of(pointer: &str) -> String {
        let mut path = String::new();
        for seg in pointer.split('/').skip(1) {
            if seg.parse::<usize>().is_ok() {
                path.push('[');
                path.push_str(seg);
                path.push(']');
            } else {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(seg);
            }
        }
        path
    }

    /// A copy of `doc` with the value at `pointer` set (an object key is added if missing).
    pub fn set(doc: &Value, pointer: &str, value: Value) -> Value {
        let mut d = doc.clone();
        let (parent, key) = pointer.rsplit_once('/').expect("pointer starts with /");
        match d.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.insert(key.to_owned(), value);
            }
            Some(Value::Array(items)) => {
                items[key.parse::<usize>().expect("array index")] = value;
            }
            _ => panic!("no object or array at {parent}"),
        }
        d
    }

    /// A copy of `doc` without the value at `pointer`.
    pub fn without(doc: &Value, pointer: &str) -> Value {
        let mut d = doc.clone();
        let (parent, key) = pointer.rsplit_once('/').expect("pointer starts with /");
        let map = d
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect("object");
        map.remove(key)
            .unwrap_or_else(|| panic!("nothing at {pointer}"));
        d
    }

    /// The document is rejected at `path`; returns the error.
    pub fn assert_rejected(doc: &Value, path: &str) -> StrictError {
        let e = trip(doc).expect_err("document should be rejected");
        assert_eq!(e.path, path, "error was: {e}");
        e
    }

    /// Each added key (a JSON pointer to a key that is not in the schema) is rejected as an
    /// unknown field, with the error naming its path.
    pub fn assert_unknown(doc: &Value, pointers: &[&str]) {
        for pointer in pointers {
            let e = assert_rejected(&set(doc, pointer, Value::Null), &path_of(pointer));
            assert!(e.message.starts_with("unknown field"), "{e}");
        }
    }

    /// Each value, set at its JSON pointer, is rejected with the error naming that path.
    pub fn assert_invalid(doc: &Value, cases: &[(&str, Value)]) {
        for (pointer, value) in cases {
            assert_rejected(&set(doc, pointer, value.clone()), &path_of(pointer));
        }
    }

    /// Removing the required value at `pointer` is rejected as a missing field of its parent.
    /// Each upstream spelling of an enum parses and serialises back unchanged.
    pub fn assert_round_trips_exactly<T: serde::Serialize + serde::de::DeserializeOwned>(
        values: &[&str],
    ) {
        for v in values {
            let parsed: T = serde_json::from_value(Value::from(*v)).expect("upstream value");
            assert_eq!(
                serde_json::to_value(parsed).expect("serialises"),
                Value::from(*v)
            );
        }
    }

    pub fn assert_required(doc: &Value, pointer: &str) {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer starts with /");
        let e = assert_rejected(&without(doc, pointer), &path_of(parent));
        assert!(e.message.contains(&format!("missing field `{key}`")), "{e}");
    }

    /// The document parses, but the round trip silently drops the key added at `pointer` (an
    /// unknown field inside an embedded k8s-openapi type), which the lint engine's key diff reports.
    pub fn assert_drops(doc: &Value, pointer: &str) {
        let d = set(doc, pointer, Value::String("x".to_owned()));
        let out = trip(&d).unwrap_or_else(|e| panic!("unexpected rejection: {e}"));
        assert!(
            out.pointer(pointer).is_none(),
            "{pointer} should not survive the round trip"
        );
        assert_eq!(&out, doc, "everything else survives");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kinds_are_not_ours() {
        assert!(lookup("apps/v1", "Deployment").is_none());
        assert!(lookup("argoproj.io/v1alpha1", "ApplicationSet").is_none());
        assert!(lookup("argoproj.io/v1beta1", "Rollout").is_none());
        let doc = serde_json::json!({"apiVersion": "v1", "kind": "Service", "bogus": 1});
        assert!(
            round_trip("v1", "Service", doc)
                .expect("not ours")
                .is_none()
        );
    }

    #[test]
    fn every_listed_kind_is_known() {
        for (v, k, _) in KINDS {
            assert!(lookup(v, k).is_some());
        }
    }

    #[test]
    fn error_path_uses_dot_for_root() {
        let doc = serde_json::json!("not an object");
        let e = round_trip("chaos-mesh.org/v1alpha1", "PodChaos", doc).expect_err("rejected");
        assert_eq!(e.path, ".");
        assert_eq!(e.to_string(), format!(".: {}", e.message));
    }

    #[test]
    fn date_time_is_validated_and_kept_verbatim() {
        let ok: DateTime = serde_json::from_value(serde_json::json!("2026-01-02T03:04:05+01:00"))
            .expect("valid RFC 3339");
        assert_eq!(ok.0, "2026-01-02T03:04:05+01:00");
        assert!(serde_json::from_value::<DateTime>(serde_json::json!("yesterday")).is_err());
    }
}
