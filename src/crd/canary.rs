//! The canary strategy of an `argoproj.io/v1alpha1` `Rollout` (Argo Rollouts v1.9.0, the app
//! version of Helm chart argo-rollouts 2.40.9, `manifests/crds/rollout-crd.yaml`,
//! `spec.strategy.canary`).
//!
//! Owns canary steps, background analysis and traffic routing. Does not own the `Rollout` object,
//! blue-green or the analysis references shared with it ([`super::rollouts`]). Of the traffic
//! routers only nginx and plugins are modelled; of the steps everything but `experiment`,
//! `setHeaderRoute` and `setMirrorRoute`; and not `antiAffinity`, `pingPong` or
//! `replicaProgressThreshold`: we never render those, so they are rejected.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::LabelsAndAnnotations;
use super::rollouts::{Analysis, AnalysisArg, DryRun, MeasurementRetention, TemplateRef};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Canary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<CanaryStep>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<BackgroundAnalysis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_stable_scale: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pods_per_replica_set: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_metadata: Option<LabelsAndAnnotations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_metadata: Option<LabelsAndAnnotations>,
}

/// One canary step; upstream expects exactly one of these keys to be set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_canary_scale: Option<SetCanaryScale>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginStep>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pause {
    /// Seconds as an integer, or a duration string such as `30s` or `1h`; absent pauses until
    /// promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<IntOrString>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetCanaryScale {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_traffic_weight: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginStep {
    pub name: String,
    /// Free-form (`x-kubernetes-preserve-unknown-fields`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

/// The canary's background analysis: [`Analysis`] plus `startingStep`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackgroundAnalysis {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<TemplateRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<AnalysisArg>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<Vec<DryRun>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement_retention: Option<Vec<MeasurementRetention>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_run_metadata: Option<LabelsAndAnnotations>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficRouting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<Nginx>,
    /// Traffic router plugins, keyed by plugin name; free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<serde_json::Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_routes: Option<Vec<ManagedRoute>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_traffic_weight: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Nginx {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_ingress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_ingresses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_ingress_annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_ingress_annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedRoute {
    pub name: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::crd::test_support::*;

    /// The customer-platform prod rollout: 20% → 50% → 100% behind nginx, Prometheus analysis.
    const CANARY: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: customer-api
  namespace: prod
spec:
  replicas: 4
  selector:
    matchLabels:
      app: customer-api
  template:
    metadata:
      labels:
        app: customer-api
    spec:
      containers:
        - name: customer-api
          image: ghcr.io/example/customer-api:2.3.1
          ports:
            - name: http
              containerPort: 8080
  strategy:
    canary:
      canaryService: customer-api-canary
      stableService: customer-api-stable
      maxSurge: "25%"
      maxUnavailable: 0
      dynamicStableScale: true
      abortScaleDownDelaySeconds: 30
      trafficRouting:
        nginx:
          stableIngress: customer-api
          annotationPrefix: nginx.ingress.kubernetes.io
          additionalIngressAnnotations:
            canary-by-header: X-Canary
      analysis:
        templates:
          - templateName: error-rate
        startingStep: 1
        args:
          - name: service-name
            value: customer-api-canary
      steps:
        - setWeight: 20
        - pause: {duration: 60s}
        - analysis:
            templates:
              - templateName: success-rate
              - templateName: latency-p95
                clusterScope: false
            args:
              - name: service-name
                value: customer-api-canary
              - name: namespace
                valueFrom:
                  fieldRef:
                    fieldPath: metadata.namespace
        - setWeight: 50
        - pause: {duration: 120}
        - setCanaryScale:
            matchTrafficWeight: true
        - setWeight: 100
"#;

    #[test]
    fn canary_with_nginx_and_analysis_round_trips() {
        assert_round_trips(&doc(CANARY));
    }

    #[test]
    fn misspelt_step_key_names_its_path() {
        let d = set(
            &doc(CANARY),
            "/spec/strategy/canary/steps/1/setWeigth",
            json!(30),
        );
        let e = assert_rejected(&d, "spec.strategy.canary.steps[1].setWeigth");
        let msg =
            "spec.strategy.canary.steps[1].setWeigth: unknown field `setWeigth`, expected one of";
        assert!(e.to_string().starts_with(msg), "{e}");
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        assert_unknown(
            &doc(CANARY),
            &[
                "/spec/strategy/canary/canarySvc",
                "/spec/strategy/canary/steps/1/pause/until",
                "/spec/strategy/canary/steps/2/analysis/templates/0/name",
                // Only the background analysis has a starting step.
                "/spec/strategy/canary/steps/2/analysis/startingStep",
                "/spec/strategy/canary/trafficRouting/nginx/stableIngres",
                "/spec/strategy/canary/trafficRouting/istio",
                "/spec/strategy/canary/analysis/startStep",
            ],
        );
    }

    #[test]
    fn unknown_field_in_pod_spec_is_dropped_by_the_round_trip() {
        assert_drops(&doc(CANARY), "/spec/template/spec/containers/0/port");
    }

    #[test]
    fn wrong_value_types_are_rejected() {
        assert_invalid(
            &doc(CANARY),
            &[
                ("/spec/strategy/canary/steps/0/setWeight", json!("20%")),
                ("/spec/strategy/canary/steps/1/pause/duration", json!(true)),
                ("/spec/strategy/canary/maxSurge", json!(0.25)),
                (
                    "/spec/strategy/canary/steps/2/analysis/templates",
                    json!({}),
                ),
            ],
        );
    }
}
