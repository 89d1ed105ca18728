//! The AlertmanagerConfig of each monitored environment, as templates get it: the routes of
//! `alerting.routes` that apply there, one child route per severity and receiver, and the
//! receivers they name with the Secrets they read.

use serde::Serialize;

use crate::config;

/// Name of the AlertmanagerConfig in each environment's namespace (the operator names its
/// receivers `<namespace>/<name>/<receiver>`).
const ALERTING_NAME: &str = "alerting";

#[derive(Serialize)]
pub struct Alerting<'a> {
    pub name: &'static str,
    /// The receiver of the top route: alerts no route takes end there.
    pub unrouted: &'static str,
    pub routes: Vec<AlertRoute<'a>>,
    /// The receivers the routes name, in platform.yaml's order.
    pub receivers: Vec<Receiver<'a>>,
}

/// One child route: alerts of `severity` to `receiver`.
#[derive(Serialize, PartialEq)]
pub struct AlertRoute<'a> {
    pub severity: &'static str,
    pub receiver: &'a str,
    /// Every route but the last lets the alert go on to the next, so that each receiver a
    /// severity has gets it.
    pub continue_next: bool,
}

#[derive(Serialize)]
pub struct Receiver<'a> {
    pub name: &'a str,
    pub slack: Option<Slack<'a>>,
    pub email: Option<Email<'a>>,
}

#[derive(Serialize)]
pub struct Slack<'a> {
    pub secret: &'a str,
    pub key: &'a str,
    pub channel: Option<&'a str>,
}

#[derive(Serialize)]
pub struct Email<'a> {
    /// The addresses, comma-separated (one Alertmanager email integration).
    pub to: String,
    pub from: &'a str,
    pub smarthost: &'a str,
    pub username: Option<&'a str>,
    pub password_secret: Option<&'a str>,
    pub password_key: &'a str,
    pub require_tls: bool,
}

/// The routes and receivers of `alerting` that apply to `env`; `None` when none do.
pub(super) fn alerting<'a>(
    a: &'a config::Alerting,
    env: &'a config::Environment,
) -> Option<Alerting<'a>> {
    let mut routes: Vec<AlertRoute> = Vec::new();
    for route in a.routes.iter().filter(|r| r.applies_to(env)) {
        for receiver in &route.receivers {
            let r = AlertRoute {
                severity: route.severity.as_str(),
                receiver,
                continue_next: true,
            };
            // Two routes may give one receiver the same severity: it gets each alert once.
            if !routes.contains(&r) {
                routes.push(r);
            }
        }
    }
    if let Some(last) = routes.last_mut() {
        last.continue_next = false;
    } else {
        return None;
    }
    let receivers = a
        .receivers_in(env)
        .into_iter()
        .map(|r| Receiver {
            name: &r.name,
            slack: r.slack.as_ref().map(|s| Slack {
                secret: &s.webhook_secret,
                key: &s.webhook_secret_key,
                channel: s.channel.as_deref(),
            }),
            email: r.email.as_ref().map(|e| Email {
                to: e.to.join(", "),
                from: &e.from,
                smarthost: &e.smarthost,
                username: e.username.as_deref(),
                password_secret: e.password_secret.as_deref(),
                password_key: &e.password_secret_key,
                require_tls: e.require_tls,
            }),
        })
        .collect();
    Some(Alerting {
        name: ALERTING_NAME,
        unrouted: config::UNROUTED_RECEIVER,
        routes,
        receivers,
    })
}
