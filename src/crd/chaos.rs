//! `chaos-mesh.org/v1alpha1` `PodChaos` and `Schedule`, as defined by Chaos Mesh 2.8 (Helm chart
//! chaos-mesh 2.8.x, whose app version equals the chart version):
//! `config/crd/bases/chaos-mesh.org_podchaos.yaml` and `api/v1alpha1/{podchaos,schedule,selector}_types.go`.
//!
//! Owns the pod chaos spec, the pod selector and the schedule wrapper around a pod chaos. Does not
//! own the other chaos kinds, or their embedding in a `Schedule` (`networkChaos`, `workflow`, …):
//! we never render them, so they are rejected. Nor `status`, or the deprecated `scheduler` field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

custom_resource!(
    /// Kills or fails pods, or kills containers, matched by a selector.
    PodChaos,
    PodChaosSpec
);

custom_resource!(
    /// Runs a chaos experiment on a cron schedule.
    Schedule,
    ScheduleSpec
);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodChaosSpec {
    pub action: PodChaosAction,
    pub mode: Mode,
    pub selector: PodSelector,
    /// A count (`fixed`) or a percentage (`fixed-percent`, `random-max-percent`), as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A Go duration such as `30s`; required by `pod-failure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Seconds before a killed pod is deleted (`pod-kill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_cluster: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PodChaosAction {
    PodKill,
    PodFailure,
    ContainerKill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    One,
    All,
    Fixed,
    FixedPercent,
    RandomMaxPercent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selectors: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression_selectors: Option<Vec<Requirement>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selectors: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selectors: Option<BTreeMap<String, String>>,
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`; upstream declares no enum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_phase_selectors: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selectors: Option<BTreeMap<String, String>>,
    /// Pod names keyed by namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<BTreeMap<String, Vec<String>>>,
}

/// A label selector requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Cron expression, or `@every 30m` style.
    pub schedule: String,
    /// The embedded chaos kind, e.g. `PodChaos`; upstream declares no enum.
    pub r#type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_chaos: Option<PodChaosSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConcurrencyPolicy {
    Forbid,
    Allow,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::crd::test_support::*;

    /// The customer-platform experiment: kill one customer-api pod in prod.
    const POD_KILL: &str = r#"
apiVersion: chaos-mesh.org/v1alpha1
kind: PodChaos
metadata:
  name: customer-api-pod-kill
  namespace: chaos
spec:
  action: pod-kill
  mode: one
  gracePeriod: 0
  selector:
    namespaces: [prod]
    labelSelectors:
      app.kubernetes.io/name: customer-api
"#;

    /// microservices: fail half the payments pods every 30 minutes.
    const SCHEDULED_FAILURE: &str = r#"
apiVersion: chaos-mesh.org/v1alpha1
kind: Schedule
metadata:
  name: payments-pod-failure
  namespace: chaos
spec:
  schedule: "@every 30m"
  type: PodChaos
  historyLimit: 3
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 60
  podChaos:
    action: pod-failure
    mode: fixed-percent
    value: "50"
    duration: 60s
    selector:
      namespaces: [prod]
      expressionSelectors:
        - key: app.kubernetes.io/name
          operator: In
          values: [payments]
      podPhaseSelectors: [Running]
"#;

    #[test]
    fn pod_kill_and_schedule_round_trip() {
        assert_round_trips(&doc(POD_KILL));
        assert_round_trips(&doc(SCHEDULED_FAILURE));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        assert_unknown(
            &doc(POD_KILL),
            &[
                "/status",
                "/spec/containerName",
                "/spec/selector/labelSelector",
            ],
        );
        assert_unknown(
            &doc(SCHEDULED_FAILURE),
            &[
                "/spec/networkChaos",
                "/spec/podChaos/gracePeriodSeconds",
                "/spec/podChaos/selector/expressionSelectors/0/value",
            ],
        );
    }

    #[test]
    fn unknown_field_in_object_meta_is_dropped_by_the_round_trip() {
        assert_drops(&doc(POD_KILL), "/metadata/namepsace");
    }

    #[test]
    fn invalid_enum_values_are_rejected() {
        let d = doc(POD_KILL);
        let e = assert_rejected(&set(&d, "/spec/action", json!("pod-delete")), "spec.action");
        assert!(e.message.starts_with("unknown variant `pod-delete`"), "{e}");
        assert_invalid(
            &d,
            &[
                ("/spec/mode", json!("some")),
                ("/spec/gracePeriod", json!("0s")),
            ],
        );
        assert_invalid(
            &doc(SCHEDULED_FAILURE),
            &[
                ("/spec/concurrencyPolicy", json!("Replace")),
                ("/spec/podChaos/mode", json!("fixed_percent")),
            ],
        );
    }

    #[test]
    fn required_fields_are_enforced() {
        for field in ["action", "mode", "selector"] {
            assert_required(&doc(POD_KILL), &format!("/spec/{field}"));
        }
        let s = doc(SCHEDULED_FAILURE);
        assert_required(&s, "/spec/schedule");
        assert_required(&s, "/spec/type");
    }

    #[test]
    fn enums_accept_exactly_the_upstream_spellings() {
        use super::{ConcurrencyPolicy, Mode, PodChaosAction};
        assert_round_trips_exactly::<PodChaosAction>(&[
            "pod-kill",
            "pod-failure",
            "container-kill",
        ]);
        assert_round_trips_exactly::<Mode>(&[
            "one",
            "all",
            "fixed",
            "fixed-percent",
            "random-max-percent",
        ]);
        assert_round_trips_exactly::<ConcurrencyPolicy>(&["Forbid", "Allow"]);
    }
}
