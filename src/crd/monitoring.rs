//! `monitoring.coreos.com/v1` `PrometheusRule`, as defined by prometheus-operator v0.88.1 (the app
//! version of Helm chart kube-prometheus-stack 81.4.x),
//! `example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml`, and the types the
//! operator's CRDs share: durations, secret/ConfigMap key selectors, authorization and TLS.
//!
//! Owns rule groups and recording/alerting rules; note their keys are snake_case upstream
//! (`keep_firing_for`, `query_offset`, `partial_response_strategy`). Does not own `ServiceMonitor`
//! ([`super::servicemonitor`]), PromQL validity (promtool's job) or `status` (rejected).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

custom_resource!(
    /// Recording and alerting rules the operator loads into Prometheus.
    PrometheusRule,
    PrometheusRuleSpec
);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusRuleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<RuleGroup>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleGroup {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(rename = "query_offset")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_offset: Option<Duration>,
    /// Thanos only: `abort` or `warn`, any case.
    #[serde(rename = "partial_response_strategy")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_response_strategy: Option<PartialResponseStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule>>,
}

/// A recording rule (`record`) or an alerting rule (`alert`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: IntOrString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#for: Option<Duration>,
    #[serde(rename = "keep_firing_for")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A Prometheus duration as the operator's CRDs pattern it:
/// `^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Duration(pub String);

impl TryFrom<String> for Duration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if is_duration(&s) {
            Ok(Self(s))
        } else {
            Err(format!(
                "invalid duration `{s}`: expected units in order y, w, d, h, m, s, ms, e.g. `30s` or `1h30m`"
            ))
        }
    }
}

impl From<Duration> for String {
    fn from(d: Duration) -> String {
        d.0
    }
}

pub(super) fn is_duration(s: &str) -> bool {
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    if s == "0" {
        return true;
    }
    let mut rest = s;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        // `ms` before `m`: a bare `s` after `m` would need digits of its own.
        let unit = if rest.starts_with("ms") {
            "ms"
        } else {
            rest.get(..1).unwrap_or("")
        };
        match UNITS[next_unit..].iter().position(|u| *u == unit) {
            Some(i) => next_unit += i + 1,
            None => return false,
        }
        rest = &rest[unit.len()..];
    }
    true
}

/// `partial_response_strategy`, pattern `^(?i)(abort|warn)?$`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartialResponseStrategy(pub String);

impl TryFrom<String> for PartialResponseStrategy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.eq_ignore_ascii_case("abort") || s.eq_ignore_ascii_case("warn") {
            Ok(Self(s))
        } else {
            Err(format!(
                "invalid partial_response_strategy `{s}`: expected `abort` or `warn`"
            ))
        }
    }
}

impl From<PartialResponseStrategy> for String {
    fn from(p: PartialResponseStrategy) -> String {
        p.0
    }
}

/// The operator's own selector: unlike `k8s-openapi`'s, `name` is optional (default `""`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeySelector {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// A key of a Secret or of a ConfigMap (same shape as [`SecretKeySelector`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretOrConfigMap {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<SecretKeySelector>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authorization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretKeySelector>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretKeySelector>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<SecretOrConfigMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<SecretOrConfigMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::is_duration;
    use crate::crd::test_support::*;

    /// customer-platform SLOs: an SLI recording rule and a burn-rate alert.
    const SLO_RULES: &str = r#"
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: customer-api-slo
  namespace: monitoring
  labels:
    release: kube-prometheus-stack
spec:
  groups:
    - name: customer-api-sli
      interval: 30s
      rules:
        - record: sli:customer_api:availability:ratio_rate5m
          expr: |
            sum(rate(http_requests_total{service="customer-api",code!~"5.."}[5m]))
            /
            sum(rate(http_requests_total{service="customer-api"}[5m]))
          labels:
            service: customer-api
    - name: customer-api-slo-alerts
      partial_response_strategy: warn
      query_offset: 1m
      limit: 10
      labels:
        team: platform
      rules:
        - alert: CustomerApiErrorBudgetBurn
          expr: sli:customer_api:availability:ratio_rate5m < (1 - 14.4 * 0.001)
          for: 2m
          keep_firing_for: 5m
          labels:
            severity: page
          annotations:
            summary: customer-api is burning its error budget 14.4x too fast
        - alert: Watchdog
          expr: 1
"#;

    #[test]
    fn record_and_alert_rules_round_trip() {
        assert_round_trips(&doc(SLO_RULES));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        assert_unknown(
            &doc(SLO_RULES),
            &[
                "/status",
                "/spec/group",
                // The operator's rule keys are snake_case.
                "/spec/groups/1/queryOffset",
                "/spec/groups/1/rules/0/keepFiringFor",
                "/spec/groups/0/rules/0/annotation",
            ],
        );
    }

    #[test]
    fn unknown_field_in_object_meta_is_dropped_by_the_round_trip() {
        assert_drops(&doc(SLO_RULES), "/metadata/label");
    }

    #[test]
    fn invalid_durations_strategies_and_types_are_rejected() {
        let d = doc(SLO_RULES);
        let e = assert_rejected(
            &set(&d, "/spec/groups/1/rules/0/for", json!("2 minutes")),
            "spec.groups[1].rules[0].for",
        );
        assert!(e.message.starts_with("invalid duration `2 minutes`"), "{e}");
        assert_invalid(
            &d,
            &[
                ("/spec/groups/0/interval", json!("30")),
                ("/spec/groups/1/partial_response_strategy", json!("ignore")),
                ("/spec/groups/0/rules/0/expr", json!(["up"])),
                ("/spec/groups/1/limit", json!("10")),
            ],
        );
        assert_required(&d, "/spec/groups/1/rules/1/expr");
        assert_required(&d, "/spec/groups/0/name");
    }

    #[test]
    fn duration_follows_the_operator_pattern() {
        for ok in [
            "0",
            "",
            "30s",
            "1m",
            "1h30m",
            "2w3d",
            "1y",
            "500ms",
            "1m30s500ms",
        ] {
            assert!(is_duration(ok), "{ok} should be valid");
        }
        for bad in [
            "s", "1", "30S", "1.5h", "-1m", "1m1h", "1s1s", "1ms1s", "5 m", "1mss",
        ] {
            assert!(!is_duration(bad), "{bad} should be invalid");
        }
    }
}
