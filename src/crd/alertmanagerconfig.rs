//! `monitoring.coreos.com/v1alpha1` `AlertmanagerConfig`, as defined by prometheus-operator v0.88.1
//! (the app version of Helm chart kube-prometheus-stack 81.4.x),
//! `example/prometheus-operator-crd/monitoring.coreos.com_alertmanagerconfigs.yaml` and
//! `pkg/apis/monitoring/v1alpha1/alertmanager_config_types.go`.
//!
//! Owns the spec, the route tree (the CRD keeps child routes as opaque JSON because it cannot
//! express a recursive schema; the operator decodes them as `Route` with unknown fields
//! disallowed, and so does this type), receivers with their Slack and email integrations, and
//! inhibit rules. Upstream's `minLength: 1` strings are [`NonEmpty`]. Does not own what we never
//! render and so reject: the other integrations (`webhookConfigs`, `pagerdutyConfigs`, …), an
//! integration's `httpConfig`, `muteTimeIntervals` definitions, and `status`.

use serde::{Deserialize, Serialize};

use super::monitoring::{SecretKeySelector, SecretOrConfigMap, TlsVersion};

custom_resource!(
    /// A part of Alertmanager's configuration, scoped by the operator to its namespace.
    AlertmanagerConfig,
    AlertmanagerConfigSpec
);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertmanagerConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receivers: Option<Vec<Receiver>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inhibit_rules: Option<Vec<InhibitRule>>,
}

/// A node of the routing tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    /// Required on the top route by the operator's validation; a receiver of `receivers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<RouteDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<RouteDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<RouteDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matchers: Option<Vec<Matcher>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#continue: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_time_intervals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_time_intervals: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Matcher {
    pub name: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<MatchType>,
    /// Deprecated upstream in favour of `matchType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchType {
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "=~")]
    Regexp,
    #[serde(rename = "!~")]
    NotRegexp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Receiver {
    pub name: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_configs: Option<Vec<SlackConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_configs: Option<Vec<EmailConfig>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
    /// The Secret key holding the webhook URL: the URL itself never appears here.
    #[serde(rename = "apiURL", default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretext: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<SlackField>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_fields: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_id: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_emoji: Option<NonEmpty>,
    #[serde(rename = "iconURL", default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    #[serde(rename = "imageURL", default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(rename = "thumbURL", default, skip_serializing_if = "Option::is_none")]
    pub thumb_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_names: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrkdwn_in: Option<Vec<NonEmpty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<SlackAction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<super::monitoring::Duration>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackField {
    pub title: NonEmpty,
    pub value: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackAction {
    pub r#type: NonEmpty,
    pub text: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<SlackConfirmation>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackConfirmation {
    pub text: NonEmpty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_text: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dismiss_text: Option<NonEmpty>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
    /// Comma-separated addresses; the operator refuses an email config without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello: Option<String>,
    /// `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smarthost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<KeyValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(
        rename = "requireTLS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub require_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<SafeTlsConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyValue {
    pub key: NonEmpty,
    pub value: String,
}

/// The operator's `SafeTLSConfig`: TLS material from Secrets and ConfigMaps only, no file paths.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SafeTlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<SecretOrConfigMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<SecretOrConfigMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InhibitRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_match: Option<Vec<Matcher>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_match: Option<Vec<Matcher>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equal: Option<Vec<String>>,
}

/// A string upstream declares `minLength: 1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NonEmpty(pub String);

impl TryFrom<String> for NonEmpty {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(Self(s))
        }
    }
}

impl From<NonEmpty> for String {
    fn from(s: NonEmpty) -> String {
        s.0
    }
}

/// `groupWait`, `groupInterval`, `repeatInterval`: the CRD declares a plain string, and the
/// operator's validation requires units in order (`^(([0-9]+)y)?…(([0-9]+)ms)?$`), so unlike
/// the operator's other durations a bare `0` is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RouteDuration(pub String);

impl TryFrom<String> for RouteDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "0" {
            return Err("invalid duration `0`: a route's intervals must be longer than 0".into());
        }
        super::monitoring::Duration::try_from(s).map(|d| Self(d.0))
    }
}

impl From<RouteDuration> for String {
    fn from(d: RouteDuration) -> String {
        d.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::crd::test_support::*;

    /// What platformctl renders, with every modelled field used once.
    const CONFIG: &str = r##"
apiVersion: monitoring.coreos.com/v1alpha1
kind: AlertmanagerConfig
metadata:
  name: alerting
  namespace: prod
  labels:
    app.kubernetes.io/managed-by: platformctl
spec:
  route:
    receiver: "null"
    groupBy: [alertname, slo, severity]
    groupWait: 30s
    groupInterval: 5m
    repeatInterval: 4h
    routes:
      - receiver: oncall-slack
        matchers:
          - name: severity
            matchType: "="
            value: page
        continue: true
      - receiver: team-email
        matchers:
          - {name: severity, matchType: "=~", value: "page|ticket"}
          - {name: team, regex: true, value: "a.*"}
        muteTimeIntervals: [nights]
        activeTimeIntervals: [weekdays]
        routes:
          - receiver: team-email
  receivers:
    - name: "null"
    - name: oncall-slack
      slackConfigs:
        - apiURL: {name: alerting-slack, key: url}
          channel: "#oncall"
          sendResolved: true
          username: alertmanager
          color: danger
          title: "{{ .CommonLabels.alertname }}"
          titleLink: https://grafana.example.com
          pretext: p
          text: t
          fields: [{title: slo, value: "{{ .CommonLabels.slo }}", short: true}]
          shortFields: false
          footer: f
          fallback: fb
          callbackId: cb
          iconEmoji: ":fire:"
          iconURL: https://example.com/i.png
          imageURL: https://example.com/im.png
          thumbURL: https://example.com/t.png
          linkNames: true
          mrkdwnIn: [text]
          actions:
            - type: button
              text: Runbook
              url: https://example.com/runbook
              style: primary
              name: runbook
              value: v
              confirm: {text: sure?, title: t, okText: yes, dismissText: no}
          timeout: 10s
    - name: team-email
      emailConfigs:
        - to: "team@example.com, sre@example.com"
          from: alerts@example.com
          hello: platformctl
          smarthost: smtp.example.com:587
          authUsername: alerts
          authPassword: {name: alerting-smtp, key: password}
          authIdentity: alerts
          headers: [{key: X-Team, value: sre}]
          html: h
          text: t
          requireTLS: true
          tlsConfig:
            serverName: smtp.example.com
            insecureSkipVerify: false
            minVersion: TLS12
            ca: {configMap: {name: smtp-ca, key: ca.crt}}
          sendResolved: true
  inhibitRules:
    - sourceMatch: [{name: severity, matchType: "=", value: page}]
      targetMatch: [{name: severity, matchType: "=", value: ticket}]
      equal: [slo]
"##;

    #[test]
    fn route_tree_and_slack_and_email_receivers_round_trip() {
        assert_round_trips(&doc(CONFIG));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        assert_unknown(
            &doc(CONFIG),
            &[
                "/status",
                "/spec/muteTimeIntervals",
                "/spec/route/match",
                // Child routes are opaque JSON in the CRD; the operator decodes them strictly.
                "/spec/route/routes/0/continu",
                "/spec/route/routes/1/routes/0/matcher",
                "/spec/route/routes/0/matchers/0/op",
                // Integrations we never render.
                "/spec/receivers/1/webhookConfigs",
                "/spec/receivers/1/slackConfigs/0/httpConfig",
                "/spec/receivers/1/slackConfigs/0/apiUrl",
                "/spec/receivers/1/slackConfigs/0/apiURL/namespace",
                "/spec/receivers/2/emailConfigs/0/password",
                "/spec/receivers/2/emailConfigs/0/requireTls",
                "/spec/receivers/2/emailConfigs/0/tlsConfig/caFile",
            ],
        );
    }

    #[test]
    fn invalid_values_are_rejected_with_their_path() {
        let d = doc(CONFIG);
        assert_invalid(
            &d,
            &[
                ("/spec/route/routes/0/matchers/0/matchType", json!("==")),
                ("/spec/route/routes/0/continue", json!("yes")),
                ("/spec/route/groupWait", json!("30 s")),
                ("/spec/route/repeatInterval", json!("0")),
                ("/spec/receivers/1/name", json!("")),
                ("/spec/receivers/1/slackConfigs/0/channel", json!("")),
                (
                    "/spec/receivers/1/slackConfigs/0/apiURL",
                    json!("https://hooks.slack.com/x"),
                ),
                ("/spec/receivers/2/emailConfigs/0/to", json!(["a@b.c"])),
                (
                    "/spec/receivers/2/emailConfigs/0/tlsConfig/minVersion",
                    json!("TLS1.2"),
                ),
            ],
        );
        assert_required(&d, "/spec/receivers/1/name");
        assert_required(&d, "/spec/receivers/1/slackConfigs/0/apiURL/key");
        assert_required(&d, "/spec/route/routes/0/matchers/0/name");
        assert_required(&d, "/spec/receivers/1/slackConfigs/0/actions/0/text");
    }

    #[test]
    fn match_types_are_the_four_upstream_operators() {
        assert_round_trips_exactly::<super::MatchType>(&["=", "!=", "=~", "!~"]);
    }

    #[test]
    fn unknown_field_in_object_meta_is_dropped_by_the_round_trip() {
        assert_drops(&doc(CONFIG), "/metadata/label");
    }
}
