//! `argoproj.io/v1alpha1` `AnalysisTemplate`, as defined by Argo Rollouts v1.9.0 (the app version
//! of Helm chart argo-rollouts 2.40.9), `manifests/crds/analysis-template-crd.yaml`.
//!
//! Owns template arguments, metrics and the Prometheus, web, job and plugin providers. Does not
//! own: the other providers (Datadog, New Relic, CloudWatch, Kayenta, …, never rendered, so
//! rejected), the Job spec itself (a `k8s-openapi` `JobSpec`, whose unknown fields the lint
//! engine's key diff catches), `ClusterAnalysisTemplate` or `AnalysisRun`.

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::LabelsAndAnnotations;
use super::rollouts::{DryRun, FieldRef, MeasurementRetention, TemplateRef};

custom_resource!(
    /// Metrics a rollout's analysis runs query, with their success and failure conditions.
    AnalysisTemplate,
    AnalysisTemplateSpec
);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisTemplateSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Argument>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<Metric>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<TemplateRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Argument {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgumentValueFrom>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgumentValueFrom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metric {
    pub name: String,
    pub provider: Provider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_success_limit: Option<IntOrString>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobMetric>,
    /// Metric provider plugins, keyed by plugin name; free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusMetric {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<Header>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_query: Option<RangeQuery>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<Sigv4>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sigv4 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RangeQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebMetric {
    pub url: String,
    /// `GET`, `POST` or `PUT`; upstream declares no enum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<Header>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Free-form (`x-kubernetes-preserve-unknown-fields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobMetric {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<LabelsAndAnnotations>,
    pub spec: JobSpec,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::crd::test_support::*;

    /// The success-rate template the customer-platform canary runs against Prometheus.
    const SUCCESS_RATE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
  namespace: prod
spec:
  args:
    - name: service-name
    - name: prometheus-address
      value: http://kube-prometheus-stack-prometheus.monitoring.svc:9090
    - name: api-token
      valueFrom:
        secretKeyRef:
          name: prometheus-token
          key: token
  metrics:
    - name: success-rate
      interval: 30s
      initialDelay: 30s
      count: 5
      successCondition: len(result) == 0 || result[0] >= 0.99
      failureCondition: len(result) > 0 && result[0] < 0.95
      failureLimit: 1
      inconclusiveLimit: "2"
      consecutiveErrorLimit: 4
      provider:
        prometheus:
          address: "{{args.prometheus-address}}"
          timeout: 20
          insecure: false
          headers:
            - key: Authorization
              value: "Bearer {{args.api-token}}"
          query: |
            sum(rate(http_requests_total{service="{{args.service-name}}",code!~"5.."}[1m]))
            /
            sum(rate(http_requests_total{service="{{args.service-name}}"}[1m]))
    - name: latency-p95
      interval: 1m
      count: "{{args.count}}"
      successCondition: result[0] < 0.3
      provider:
        prometheus:
          address: "{{args.prometheus-address}}"
          query: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[2m])))
  dryRun:
    - metricName: latency-p95
  measurementRetention:
    - metricName: success-rate
      limit: 20
"#;

    const SMOKE_JOB: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: smoke
spec:
  metrics:
    - name: smoke
      provider:
        job:
          metadata:
            labels:
              app: smoke
          spec:
            backoffLimit: 0
            template:
              spec:
                restartPolicy: Never
                containers:
                  - name: smoke
                    image: curlimages/curl:8.11.0
                    args: ["-fsS", "http://orders-preview/healthz"]
"#;

    #[test]
    fn prometheus_and_job_templates_round_trip() {
        assert_round_trips(&doc(SUCCESS_RATE));
        assert_round_trips(&doc(SMOKE_JOB));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        assert_unknown(
            &doc(SUCCESS_RATE),
            &[
                "/status",
                "/spec/metric",
                "/spec/metrics/0/successCondtion",
                "/spec/metrics/0/provider/prometheus/adress",
                "/spec/metrics/0/provider/datadog",
                "/spec/args/2/valueFrom/configMapKeyRef",
                "/spec/args/2/valueFrom/podTemplateHashValue",
            ],
        );
    }

    #[test]
    fn unknown_field_in_job_pod_spec_is_dropped_by_the_round_trip() {
        let at = "/spec/metrics/0/provider/job/spec/template/spec/restartPolicyy";
        assert_drops(&doc(SMOKE_JOB), at);
    }

    #[test]
    fn int_or_string_fields_reject_other_types() {
        assert_invalid(
            &doc(SUCCESS_RATE),
            &[
                ("/spec/metrics/0/failureLimit", json!(1.5)),
                ("/spec/metrics/0/count", json!(true)),
                ("/spec/metrics/0/consecutiveErrorLimit", json!([4])),
                ("/spec/metrics/0/provider/prometheus/timeout", json!("20s")),
            ],
        );
    }

    #[test]
    fn required_fields_are_enforced() {
        let d = doc(SUCCESS_RATE);
        assert_required(&d, "/spec/metrics/1/provider");
        assert_required(&d, "/spec/metrics/1/name");
        assert_required(&d, "/spec/args/2/valueFrom/secretKeyRef/key");
        assert_required(&doc(SMOKE_JOB), "/spec/metrics/0/provider/job/spec");
    }
}
