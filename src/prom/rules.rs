//! Prometheus' rules and alerts as typed values: the groups of `/api/v1/rules` (recording and
//! alerting rules, their health and last error) and the alerts of `/api/v1/alerts`.
//!
//! It does not load, write or check rule files (promtool and the rendered PrometheusRules do
//! that); it reads what a running Prometheus evaluates.

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use super::query::Labels;

#[derive(Debug, Deserialize)]
pub(super) struct Groups {
    pub groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Alerts {
    pub alerts: Vec<Alert>,
}

/// A rule group: one of a rule file's `groups` (for a PrometheusRule, its file is
/// `<namespace>-<name>-<uid>.yaml` under the operator's rules directory).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    pub file: String,
    pub rules: Vec<Rule>,
    /// Seconds between evaluations.
    #[serde(default)]
    pub interval: f64,
    /// Seconds the last evaluation of the whole group took.
    #[serde(default)]
    pub evaluation_time: f64,
    #[serde(default, deserialize_with = "super::optional_timestamp")]
    pub last_evaluation: Option<Timestamp>,
}

/// A rule, by its `type`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Rule {
    Alerting(AlertingRule),
    Recording(RecordingRule),
}

impl Rule {
    /// The alert's name, or the recorded series' name.
    pub fn name(&self) -> &str {
        &self.common().name
    }

    pub fn query(&self) -> &str {
        &self.common().query
    }

    pub fn health(&self) -> RuleHealth {
        self.common().health
    }

    /// Why the last evaluation failed; empty when it did not.
    pub fn last_error(&self) -> &str {
        &self.common().last_error
    }

    /// Seconds the last evaluation took.
    pub fn evaluation_time(&self) -> f64 {
        self.common().evaluation_time
    }

    fn common(&self) -> &Common {
        match self {
            Rule::Alerting(r) => &r.common,
            Rule::Recording(r) => &r.common,
        }
    }
}

/// What every rule has.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Common {
    pub name: String,
    /// The PromQL expression, as Prometheus formats it.
    pub query: String,
    #[serde(default)]
    pub labels: Labels,
    pub health: RuleHealth,
    #[serde(default)]
    pub last_error: String,
    #[serde(default)]
    pub evaluation_time: f64,
    #[serde(default, deserialize_with = "super::optional_timestamp")]
    pub last_evaluation: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertingRule {
    #[serde(flatten)]
    pub common: Common,
    /// The most severe state of its alerts.
    pub state: AlertState,
    /// Seconds an alert stays pending before it fires (`for`).
    #[serde(default)]
    pub duration: f64,
    #[serde(default)]
    pub annotations: Labels,
    #[serde(default)]
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecordingRule {
    #[serde(flatten)]
    pub common: Common,
}

/// A rule's health after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleHealth {
    Ok,
    Err,
    /// Not evaluated yet (or a value this client does not know).
    #[serde(other)]
    Unknown,
}

/// An alert's state, or an alerting rule's (its most severe alert's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
    /// A value this client does not know.
    #[serde(other)]
    Unknown,
}

/// An active alert of an alerting rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// The rule's name as `alertname`, the series' labels and the rule's labels.
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    pub state: AlertState,
    /// When the alert became pending.
    #[serde(default, deserialize_with = "super::optional_timestamp")]
    pub active_at: Option<Timestamp>,
    /// The expression's value for this alert's series.
    #[serde(deserialize_with = "super::query::value")]
    pub value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_with_both_kinds_of_rules() {
        let g: Groups = serde_json::from_str(
            r#"{"groups":[{"name":"g","file":"/etc/rules.yml","interval":1,"limit":0,
              "evaluationTime":0.0002,"lastEvaluation":"2026-01-02T03:04:05Z","rules":[
                {"type":"recording","name":"job:up:sum","query":"sum by (job) (up)","labels":{},
                 "health":"ok","evaluationTime":0.0001,"lastEvaluation":"2026-01-02T03:04:05Z"},
                {"type":"recording","name":"broken","query":"x","health":"err",
                 "lastError":"vector contains metrics with the same labelset"},
                {"type":"alerting","name":"AlwaysFiring","query":"vector(1)","duration":0,
                 "labels":{"severity":"none"},"annotations":{"summary":"always"},"health":"ok",
                 "state":"firing","alerts":[{"labels":{"alertname":"AlwaysFiring"},
                   "annotations":{},"state":"firing",
                   "activeAt":"2026-01-02T03:04:00.5Z","value":"1e+00"}]},
                {"type":"alerting","name":"Later","query":"vector(0) > 1","health":"unknown",
                 "state":"inactive"}]}]}"#,
        )
        .expect("rules");
        let rules = &g.groups[0].rules;
        assert_eq!(g.groups[0].file, "/etc/rules.yml");
        assert_eq!(rules[0].name(), "job:up:sum");
        assert_eq!(rules[0].health(), RuleHealth::Ok);
        assert_eq!(rules[1].health(), RuleHealth::Err);
        assert!(rules[1].last_error().contains("same labelset"));
        let Rule::Alerting(firing) = &rules[2] else {
            panic!("an alerting rule: {:?}", rules[2]);
        };
        assert_eq!(firing.state, AlertState::Firing);
        assert_eq!(firing.common.labels["severity"], "none");
        assert_eq!(firing.alerts[0].value, 1.0);
        assert_eq!(
            firing.alerts[0].active_at.map(|t| t.to_string()).as_deref(),
            Some("2026-01-02T03:04:00.5Z")
        );
        assert_eq!(rules[3].health(), RuleHealth::Unknown);
        assert!(matches!(&rules[3], Rule::Alerting(r) if r.alerts.is_empty()));
    }
}
