//! The typed `alerting` section of `platform.yaml`: receivers (Slack webhooks, email over
//! SMTP; secrets only by Secret name) and routes from a severity and environments to them.
//!
//! Shape only, as `model.rs`; the cross-field rules are in `validate/alerting.rs`.

use serde::{Deserialize, Serialize};

use super::model::Environment;

/// Where the alerts of the SLO rules go: named receivers, and routes from a severity (and the
/// environments it applies in) to receivers. No secret value is written here: receivers name
/// the Secrets that hold them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alerting {
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    #[serde(default)]
    pub routes: Vec<AlertRoute>,
}

/// One notification target: exactly one of `slack` and `email`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Receiver {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackReceiver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailReceiver>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackReceiver {
    /// Name of the Secret holding the incoming-webhook URL.
    pub webhook_secret: String,
    /// Key of the URL in that Secret.
    #[serde(default = "webhook_key")]
    pub webhook_secret_key: String,
    /// Overrides the webhook's own channel (`#oncall`, `@someone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailReceiver {
    /// SMTP server as `host:port`.
    pub smarthost: String,
    pub from: String,
    pub to: Vec<String>,
    /// SMTP login; goes with `passwordSecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Name of the Secret holding the SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
    /// Key of the password in that Secret.
    #[serde(default = "password_key")]
    pub password_secret_key: String,
    /// STARTTLS required (Alertmanager's default).
    #[serde(default = "yes", rename = "requireTLS")]
    pub require_tls: bool,
}

/// The severities the SLO rules' burn-rate alerts carry (`severity` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Fast burn: someone acts now.
    Page,
    /// Slow burn: someone acts within days.
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertRoute {
    pub severity: Severity,
    /// Environment names; absent: every environment with monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    /// Receiver names; each gets every alert of the route.
    pub receivers: Vec<String>,
}

impl AlertRoute {
    /// Whether this route takes the alerts of environment `env`.
    pub fn applies_to(&self, env: &Environment) -> bool {
        env.monitoring
            && self
                .environments
                .as_ref()
                .is_none_or(|names| names.contains(&env.name))
    }
}

impl Alerting {
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    /// The receivers that the routes taking `env`'s alerts name, in the order of `receivers`:
    /// what `env`'s AlertmanagerConfig holds, and whose Secrets `up` creates in its namespace.
    pub fn receivers_in(&self, env: &Environment) -> Vec<&Receiver> {
        self.receivers
            .iter()
            .filter(|r| {
                self.routes
                    .iter()
                    .any(|route| route.applies_to(env) && route.receivers.contains(&r.name))
            })
            .collect()
    }
}

/// What a receiver reads from a Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    SlackWebhookUrl,
    SmtpPassword,
}

impl Receiver {
    /// The Secret keys this receiver reads: (Secret name, key, what the value is).
    pub fn secret_keys(&self) -> Vec<(&str, &str, SecretUse)> {
        let mut out = Vec::new();
        if let Some(s) = &self.slack {
            out.push((
                s.webhook_secret.as_str(),
                s.webhook_secret_key.as_str(),
                SecretUse::SlackWebhookUrl,
            ));
        }
        if let Some(e) = &self.email
            && let Some(name) = &e.password_secret
        {
            out.push((
                name.as_str(),
                e.password_secret_key.as_str(),
                SecretUse::SmtpPassword,
            ));
        }
        out
    }
}

fn yes() -> bool {
    true
}

fn webhook_key() -> String {
    "url".into()
}

fn password_key() -> String {
    "password".into()
}
