//! `monitoring.coreos.com/v1` `ServiceMonitor`, as defined by prometheus-operator v0.88.1 (the app
//! version of Helm chart kube-prometheus-stack 81.4.x),
//! `example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml`.
//!
//! Owns the spec, scrape endpoints and relabelling. Does not own `PrometheusRule` or the
//! authorization, TLS and key-selector types the operator's CRDs share ([`super::monitoring`]),
//! nor what we never render and so reject: endpoint `oauth2` and `proxyConnectHeader`,
//! `nativeHistogramMinBucketFactor`, and `status`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

use super::monitoring::{Authorization, BasicAuth, Duration, SecretKeySelector, TlsConfig};

custom_resource!(
    /// Which Services' endpoints Prometheus scrapes, and how.
    ServiceMonitor,
    ServiceMonitorSpec
);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMonitorSpec {
    pub selector: LabelSelector,
    pub endpoints: Vec<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_target_labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector_mechanism: Option<SelectorMechanism>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_discovery_role: Option<ServiceDiscoveryRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_metadata: Option<AttachMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_name_length_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_value_length_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_dropped_targets: Option<i64>,
    /// e.g. `10MiB`; upstream patterns it, this does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_classic_histograms: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_native_histograms: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_histogram_bucket_limit: Option<i64>,
    #[serde(rename = "convertClassicHistogramsToNHCB")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert_classic_histograms_to_nhcb: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectorMechanism {
    RelabelConfig,
    RoleSelector,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceDiscoveryRole {
    Endpoints,
    EndpointSlice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScrapeProtocol {
    PrometheusProto,
    #[serde(rename = "OpenMetricsText0.0.1")]
    OpenMetricsText001,
    #[serde(rename = "OpenMetricsText1.0.0")]
    OpenMetricsText100,
    #[serde(rename = "PrometheusText0.0.4")]
    PrometheusText004,
    #[serde(rename = "PrometheusText1.0.0")]
    PrometheusText100,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_labels: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_timestamps: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_timestamps_staleness: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relabelings: Option<Vec<RelabelConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_relabelings: Option<Vec<RelabelConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret: Option<SecretKeySelector>,
    /// Deprecated upstream in favour of `authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_redirects: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_http2: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_running: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_from_environment: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheme {
    #[serde(rename = "http")]
    Http,
    #[serde(rename = "https")]
    Https,
    #[serde(rename = "HTTP")]
    HttpUpper,
    #[serde(rename = "HTTPS")]
    HttpsUpper,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RelabelAction>,
}

/// The relabel action; upstream accepts both the lowercase and the CamelCase spelling, and the
/// original spelling is kept so a round trip reproduces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RelabelAction(pub String);

impl RelabelAction {
    pub const LOWERCASE: [&str; 11] = [
        "replace",
        "keep",
        "drop",
        "hashmod",
        "labelmap",
        "labeldrop",
        "labelkeep",
        "lowercase",
        "uppercase",
        "keepequal",
        "dropequal",
    ];
    pub const CAMEL_CASE: [&str; 11] = [
        "Replace",
        "Keep",
        "Drop",
        "HashMod",
        "LabelMap",
        "LabelDrop",
        "LabelKeep",
        "Lowercase",
        "Uppercase",
        "KeepEqual",
        "DropEqual",
    ];
}

impl TryFrom<String> for RelabelAction {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if Self::LOWERCASE.contains(&s.as_str()) || Self::CAMEL_CASE.contains(&s.as_str()) {
            Ok(Self(s))
        } else {
            Err(format!(
                "unknown relabel action `{s}`, expected one of {}",
                Self::LOWERCASE.join(", ")
            ))
        }
    }
}

impl From<RelabelAction> for String {
    fn from(a: RelabelAction) -> String {
        a.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::RelabelAction;
    use crate::crd::test_support::*;

    /// The customer-api ServiceMonitor in prod, picked up by kube-prometheus-stack.
    const CUSTOMER_API: &str = r#"
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: customer-api
  namespace: prod
  labels:
    release: kube-prometheus-stack
spec:
  jobLabel: app.kubernetes.io/name
  selector:
    matchLabels:
      app.kubernetes.io/name: customer-api
  namespaceSelector:
    matchNames: [prod]
  endpoints:
    - port: http
      path: /metrics
      scheme: http
      interval: 15s
      scrapeTimeout: 10s
      honorLabels: false
      relabelings:
        - sourceLabels: [__meta_kubernetes_pod_label_rollouts_pod_template_hash]
          targetLabel: rollouts_pod_template_hash
          action: replace
        - action: labeldrop
          regex: __meta_kubernetes_pod_label_(.+)_hash
      metricRelabelings:
        - sourceLabels: [__name__]
          regex: go_gc_.*
          action: drop
        - sourceLabels: [namespace, pod]
          separator: /
          targetLabel: instance
          replacement: $1
          action: Replace
"#;

    #[test]
    fn service_monitor_with_relabelings_round_trips() {
        assert_round_trips(&doc(CUSTOMER_API));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        assert_unknown(
            &doc(CUSTOMER_API),
            &[
                "/status",
                "/spec/endpoint",
                "/spec/namespaceSelector/matchLabels",
                "/spec/endpoints/0/scrapeInterval",
                "/spec/endpoints/0/relabelings/1/source_labels",
                "/spec/endpoints/0/metricRelabelings/1/replace",
            ],
        );
    }

    #[test]
    fn unknown_field_in_label_selector_is_dropped_by_the_round_trip() {
        assert_drops(&doc(CUSTOMER_API), "/spec/selector/matchLabel");
    }

    #[test]
    fn invalid_enum_values_and_durations_are_rejected() {
        let d = doc(CUSTOMER_API);
        let action = "/spec/endpoints/0/relabelings/0/action";
        let e = assert_rejected(&set(&d, action, json!("delete")), &path_of(action));
        assert!(
            e.message.starts_with("unknown relabel action `delete`"),
            "{e}"
        );
        assert_invalid(
            &d,
            &[
                ("/spec/endpoints/0/scheme", json!("ftp")),
                ("/spec/endpoints/0/interval", json!("15")),
                ("/spec/serviceDiscoveryRole", json!("Pod")),
            ],
        );
        let tls = set(
            &d,
            "/spec/endpoints/0/tlsConfig",
            json!({"minVersion": "TLS1.2"}),
        );
        assert_rejected(&tls, "spec.endpoints[0].tlsConfig.minVersion");
        let e = assert_rejected(
            &set(&d, "/spec/scrapeProtocols", json!(["OpenMetrics"])),
            "spec.scrapeProtocols[0]",
        );
        assert!(
            e.message.starts_with("unknown variant `OpenMetrics`"),
            "{e}"
        );
    }

    #[test]
    fn selector_and_endpoints_are_required() {
        let d = doc(CUSTOMER_API);
        assert_required(&d, "/spec/endpoints");
        assert_required(&d, "/spec/selector");
    }

    #[test]
    fn enums_accept_exactly_the_upstream_spellings() {
        use super::{Scheme, ScrapeProtocol};
        use crate::crd::monitoring::TlsVersion;
        assert_round_trips_exactly::<Scheme>(&["http", "https", "HTTP", "HTTPS"]);
        assert_round_trips_exactly::<TlsVersion>(&["TLS10", "TLS11", "TLS12", "TLS13"]);
        assert_round_trips_exactly::<ScrapeProtocol>(&[
            "PrometheusProto",
            "OpenMetricsText0.0.1",
            "OpenMetricsText1.0.0",
            "PrometheusText0.0.4",
            "PrometheusText1.0.0",
        ]);
        let actions = RelabelAction::LOWERCASE
            .iter()
            .chain(&RelabelAction::CAMEL_CASE);
        for a in actions {
            let parsed: RelabelAction = serde_json::from_value(json!(a)).expect("upstream action");
            assert_eq!(parsed.0, *a);
        }
    }
}
