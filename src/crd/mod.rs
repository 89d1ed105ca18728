//! Project-written Rust types for the custom resources platformctl renders, and the one entry point
//! `platformctl lint` uses to prove a rendered object parses strictly into its type.
//!
//! Owns: the Argo Rollouts, Argo CD, prometheus-operator and Chaos Mesh kinds we render, modelled on
//! the upstream CRD `openAPIV3Schema` at the versions `platform.yaml` pins (each module names its
//! source), with `deny_unknown_fields` everywhere so a misspelt key is an error naming its path.
//! Does not own: built-in Kubernetes kinds (those are `k8s-openapi` types, which ignore unknown
//! fields; embedded ones such as a pod template are checked by the lint engine diffing the keys of
//! [`round_trip`]'s output against its input), policy checks, YAML parsing, or CRDs we never render
//! (status, ClusterAnalysisTemplate, ApplicationSet, …): [`round_trip`] answers `Ok(None)` for them.

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
    ("argoproj.io/v1alpha1", "Rollout", strict::<rollouts::Rollout>),
    ("argoproj.io/v1alpha1", "AnalysisTemplate", strict::<analysis::AnalysisTemplate>),
    ("argoproj.io/v1alpha1", "Application", strict::<application::Application>),
    ("argoproj.io/v1alpha1", "AppProject", strict::<appproject::AppProject>),
    ("monitoring.coreos.com/v1", "ServiceMonitor", strict::<servicemonitor::ServiceMonitor>),
    ("monitoring.coreos.com/v1", "PrometheusRule", strict::<monitoring::PrometheusRule>),
    ("chaos-mesh.org/v1alpha1", "PodChaos", strict::<chaos::PodChaos>),
    ("chaos-mesh.org/v1alpha1", "Schedule", strict::<chaos::Schedule>),
];

fn lookup(api_version: &str, kind: &str) -> Option<RoundTrip> {
    KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, f)| *f)
}

/// Which project-written type handles `apiVersion`/`kind`, if any.
pub fn known(api_version: &str, kind: &str) -> bool {
    lookup(api_version, kind).is_some()
}

/// Deserialises `doc` strictly into the type for its apiVersion/kind and serialises it back.
/// `Ok(None)` if the kind is not one of ours. `Err` carries the serde_path_to_error path + message.
pub fn round_trip(
    api_version: &str,
    kind: &str,
    doc: Value,
) -> Result<Option<Value>, StrictError> {
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
    //! Helpers shared by the per-group unit tests.
    use super::*;

    /// Parses a YAML fixture the way the lint engine sees a rendered document.
    pub fn doc(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).expect("fixture is valid YAML")
    }

    fn type_of(doc: &Value) -> (String, String) {
        let field = |k: &str| doc[k].as_str().expect("fixture has apiVersion and kind").to_owned();
        (field("apiVersion"), field("kind"))
    }

    /// Round-trips `doc` through its type; panics if it is not one of ours.
    pub fn trip(doc: &Value) -> Result<Value, StrictError> {
        let (v, k) = type_of(doc);
        assert!(known(&v, &k), "{v}/{k} should be known");
        round_trip(&v, &k, doc.clone()).map(|o| o.expect("known kind"))
    }

    /// The fixture parses and serialises back to an identical value.
    pub fn assert_round_trips(doc: &Value) {
        let out = trip(doc).unwrap_or_else(|e| panic!("valid fixture rejected: {e}"));
        assert_eq!(&out, doc);
    }

    /// Inserts `key: value` into the object at JSON pointer `at`.
    pub fn with(doc: &Value, at: &str, key: &str, value: Value) -> Value {
        let mut d = doc.clone();
        d.pointer_mut(at)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no object at {at}"))
            .insert(key.to_owned(), value);
        d
    }

    /// Replaces the value at JSON pointer `at`.
    pub fn replaced(doc: &Value, at: &str, value: Value) -> Value {
        let mut d = doc.clone();
        *d.pointer_mut(at).unwrap_or_else(|| panic!("no value at {at}")) = value;
        d
    }

    /// The document is rejected with an error whose path is `path`; returns the error.
    pub fn assert_rejected(doc: &Value, path: &str) -> StrictError {
        let e = trip(doc).expect_err("document should be rejected");
        assert_eq!(e.path, path, "error was: {e}");
        e
    }

    /// The document parses, but the round trip silently drops `key` under `at` (an unknown field
    /// inside an embedded k8s-openapi type), which the lint engine's key diff reports.
    pub fn assert_drops(doc: &Value, at: &str, key: &str) {
        let out = trip(doc).unwrap_or_else(|e| panic!("unexpected rejection: {e}"));
        assert_ne!(&out, doc);
        let obj = out.pointer(at).and_then(Value::as_object).expect("object survives");
        assert!(!obj.contains_key(key), "{key} should not survive the round trip");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kinds_are_not_ours() {
        assert!(!known("apps/v1", "Deployment"));
        assert!(!known("argoproj.io/v1alpha1", "ApplicationSet"));
        assert!(!known("argoproj.io/v1beta1", "Rollout"));
        let doc = serde_json::json!({"apiVersion": "v1", "kind": "Service", "bogus": 1});
        assert!(round_trip("v1", "Service", doc).expect("not ours").is_none());
    }

    #[test]
    fn every_listed_kind_is_known() {
        for (v, k, _) in KINDS {
            assert!(known(v, k));
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
