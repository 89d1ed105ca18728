//! Rules for `alerting`: receivers (exactly one of Slack and email, Secret names and keys, SMTP
//! host and addresses) and routes (a severity, environments that exist and have monitoring,
//! receivers that exist).
//!
//! An environment a route names that has monitoring off is an error, not a warning: nothing in it
//! raises alerts (no SLO rules are rendered there), so the route could never deliver anything.

use std::collections::BTreeSet;

use super::values::*;
use super::{Problems, find_env};
use crate::config::model::*;

/// The receiver every AlertmanagerConfig's top route names: alerts that no route takes end
/// there, unsent. A user's receiver may not take the name.
pub const UNROUTED_RECEIVER: &str = "null";

pub(super) fn check(out: &mut Problems, p: &Platform) {
    let a = &p.alerting;
    let mut names = BTreeSet::new();
    for (i, r) in a.receivers.iter().enumerate() {
        let at = format!("alerting.receivers[{i}]");
        dns_label(out, &format!("{at}.name"), &r.name, 63);
        out.unique(&mut names, format!("{at}.name"), r.name.as_str(), || {
            format!("duplicate receiver name `{}`", r.name)
        });
        if r.name == UNROUTED_RECEIVER {
            out.add(
                format!("{at}.name"),
                "`null` is reserved: it is the receiver of the alerts no route takes",
            );
        }
        match (&r.slack, &r.email) {
            (None, None) => out.add(at.clone(), "set `slack` or `email`"),
            (Some(_), Some(_)) => out.add(
                at.clone(),
                "set either `slack` or `email`, not both: make two receivers and name both in the route",
            ),
            (Some(s), None) => slack(out, &format!("{at}.slack"), s),
            (None, Some(e)) => email(out, &format!("{at}.email"), e),
        }
        for (secret, _, used) in r.secret_keys() {
            let key = match used {
                SecretUse::SlackWebhookUrl => "slack.webhookSecret",
                SecretUse::SmtpPassword => "email.passwordSecret",
            };
            if let Some(s) = p
                .services
                .iter()
                .find(|s| s.secrets.iter().any(|n| n == secret))
            {
                out.add(
                    format!("{at}.{key}"),
                    format!(
                        "Secret `{secret}` is also a secret of service `{}`: give the receiver's Secret a name of its own",
                        s.name
                    ),
                );
            }
        }
    }
    let alertmanager_off = p
        .addons
        .kube_prometheus_stack
        .as_ref()
        .and_then(|kps| kps.values.get("alertmanager"))
        .and_then(|am| am.get("enabled"))
        .and_then(serde_yaml::Value::as_bool)
        == Some(false);
    if alertmanager_off && !a.routes.is_empty() {
        out.add(
            "addons.kubePrometheusStack.values.alertmanager.enabled",
            "`alerting.routes` are delivered by the chart's Alertmanager: leave it enabled",
        );
    }
    let monitored: Vec<&str> = p
        .environments
        .iter()
        .filter(|e| e.monitoring)
        .map(|e| e.name.as_str())
        .collect();
    for (i, route) in a.routes.iter().enumerate() {
        let at = format!("alerting.routes[{i}]");
        match &route.environments {
            None if monitored.is_empty() => out.add(
                at.clone(),
                "no environment has monitoring, so no alerts are raised: set `monitoring: true` on one",
            ),
            None => {}
            Some(envs) if envs.is_empty() => out.add(
                format!("{at}.environments"),
                "name at least one environment, or leave `environments` out for every environment with monitoring",
            ),
            Some(envs) => {
                let mut seen = BTreeSet::new();
                for (j, name) in envs.iter().enumerate() {
                    let path = format!("{at}.environments[{j}]");
                    out.unique(&mut seen, path.clone(), name.as_str(), || {
                        format!("environment `{name}` is named twice")
                    });
                    if let Some(env) = find_env(out, &path, p, name)
                        && !env.monitoring
                    {
                        out.add(
                            path,
                            format!(
                                "environment `{name}` has no monitoring, so it raises no alerts: set `monitoring: true` on it"
                            ),
                        );
                    }
                }
            }
        }
        if route.receivers.is_empty() {
            out.add(
                format!("{at}.receivers"),
                "at least one receiver is required",
            );
        }
        let mut seen = BTreeSet::new();
        for (j, name) in route.receivers.iter().enumerate() {
            let path = format!("{at}.receivers[{j}]");
            out.unique(&mut seen, path.clone(), name.as_str(), || {
                format!("receiver `{name}` is named twice")
            });
            if a.receiver(name).is_none() {
                let mut known: Vec<&str> = Vec::new();
                for r in &a.receivers {
                    if !known.contains(&r.name.as_str()) {
                        known.push(&r.name);
                    }
                }
                out.add(
                    path,
                    if known.is_empty() {
                        format!("unknown receiver `{name}`: `alerting.receivers` defines none")
                    } else {
                        format!(
                            "unknown receiver `{name}` (receivers: {})",
                            known.join(", ")
                        )
                    },
                );
            }
        }
    }
}

fn slack(out: &mut Problems, at: &str, s: &SlackReceiver) {
    dns_subdomain(out, &format!("{at}.webhookSecret"), &s.webhook_secret);
    secret_key(
        out,
        &format!("{at}.webhookSecretKey"),
        &s.webhook_secret_key,
    );
    if let Some(c) = &s.channel
        && (c.is_empty() || c.contains(char::is_whitespace))
    {
        out.add(
            format!("{at}.channel"),
            format!("`{c}` is not a Slack channel: use `#name`, `@user` or a channel ID"),
        );
    }
}

fn email(out: &mut Problems, at: &str, e: &EmailReceiver) {
    if !is_host_port(&e.smarthost) {
        out.add(
            format!("{at}.smarthost"),
            format!(
                "`{}` is not `host:port` (e.g. `smtp.example.com:587`): the SMTP server and its port",
                e.smarthost
            ),
        );
    }
    address(out, &format!("{at}.from"), &e.from);
    if e.to.is_empty() {
        out.add(format!("{at}.to"), "at least one address is required");
    }
    let mut seen = BTreeSet::new();
    for (i, to) in e.to.iter().enumerate() {
        let path = format!("{at}.to[{i}]");
        address(out, &path, to);
        out.unique(&mut seen, path, to.as_str(), || {
            format!("`{to}` is named twice")
        });
    }
    if let Some(name) = &e.password_secret {
        dns_subdomain(out, &format!("{at}.passwordSecret"), name);
        secret_key(
            out,
            &format!("{at}.passwordSecretKey"),
            &e.password_secret_key,
        );
    }
    match (&e.username, &e.password_secret) {
        (Some(u), _) if u.is_empty() || u.contains(char::is_whitespace) => out.add(
            format!("{at}.username"),
            format!("`{u}` is not an SMTP user name"),
        ),
        (Some(_), None) => out.add(
            format!("{at}.username"),
            "SMTP authentication needs a password: set `passwordSecret` too",
        ),
        (None, Some(_)) => out.add(
            format!("{at}.passwordSecret"),
            "SMTP authentication needs a user name: set `username` too",
        ),
        _ => {}
    }
}

/// A key of a Secret's `data`: what Kubernetes allows (`[-._a-zA-Z0-9]+`, at most 253).
fn secret_key(out: &mut Problems, at: &str, k: &str) {
    let ok = !k.is_empty()
        && k.len() <= 253
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if !ok {
        out.add(
            at,
            format!("`{k}` is not a valid Secret key: use letters, digits, '-', '_' and '.'"),
        );
    }
}

fn address(out: &mut Problems, at: &str, v: &str) {
    if !is_address(v) {
        out.add(
            at,
            format!("`{v}` is not an email address such as `alerts@example.com`"),
        );
    }
}

/// A bare address `local@domain`: no display name, no spaces, quotes, commas or angle brackets
/// (the receiver joins `to` with commas), a host name or a dotted domain after the `@`.
pub(super) fn is_address(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_graphic() && !"@,;:<>()[]\"\\".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && is_host(domain)
}

/// A host name (letters, digits and '-' in dot-separated labels, any case) or an IPv4 address.
fn is_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// `host:port` as Go's `net.SplitHostPort` takes it (what the operator checks), with a host name,
/// an IPv4 address or a bracketed IPv6 address, and a port from 1 to 65535.
pub(super) fn is_host_port(v: &str) -> bool {
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        match rest.split_once("]:") {
            Some((ip, port)) => (ip.parse::<std::net::Ipv6Addr>().is_ok().then_some(ip), port),
            None => return false,
        }
    } else {
        match v.rsplit_once(':') {
            Some((h, port)) if is_host(h) => (Some(h), port),
            _ => return false,
        }
    };
    host.is_some()
        && !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The customer-platform, with an `alerting` section appended.
    fn problems(alerting: &str) -> Vec<(String, Option<usize>, String)> {
        let base = include_str!("../../../platform.yaml");
        let source = format!("{base}\nalerting:\n{alerting}");
        match crate::config::parse(std::path::Path::new("platform.yaml"), &source) {
            Ok(_) => Vec::new(),
            Err(crate::config::Error::Invalid(ps)) => ps
                .into_iter()
                .map(|p| (p.path, p.line, p.message))
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    /// Line of the last line of `alerting` that contains `text`, in the source `problems`
    /// builds.
    fn line_of(alerting: &str, text: &str) -> usize {
        let base = include_str!("../../../platform.yaml");
        let offset = base.lines().count() + 2;
        let i = alerting
            .lines()
            .collect::<Vec<_>>()
            .iter()
            .rposition(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no `{text}` in the fixture"));
        offset + i + 1
    }

    const VALID: &str = r##"  receivers:
    - name: oncall-slack
      slack:
        webhookSecret: alerting-slack
        channel: "#oncall"
    - name: team-email
      email:
        smarthost: smtp.example.com:587
        from: alerts@example.com
        to: [team@example.com, sre@example.com]
        username: alerts
        passwordSecret: alerting-smtp
  routes:
    - severity: page
      environments: [prod]
      receivers: [oncall-slack, team-email]
    - severity: ticket
      receivers: [team-email]
"##;

    #[test]
    fn a_complete_alerting_section_is_valid() {
        assert_eq!(problems(VALID), []);
        let base = include_str!("../../../platform.yaml");
        let p = crate::config::parse(
            std::path::Path::new("platform.yaml"),
            &format!("{base}\nalerting:\n{VALID}"),
        )
        .expect("valid");
        let slack = p.alerting.receivers[0].slack.as_ref().expect("slack");
        assert_eq!(slack.webhook_secret_key, "url");
        let email = p.alerting.receivers[1].email.as_ref().expect("email");
        assert_eq!(email.password_secret_key, "password");
        assert!(email.require_tls, "Alertmanager's default");
        assert_eq!(p.alerting.routes[1].severity, Severity::Ticket);
    }

    /// Each case: an edit of [`VALID`], the key path, the text of the line it is on, and a part
    /// of the message.
    #[test]
    fn each_invalid_receiver_or_route_is_located_by_key_path_and_line() {
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            (
                "receivers: [oncall-slack, team-email]",
                "receivers: [oncall-slack, pager]",
                "alerting.routes[0].receivers[1]",
                "receivers: [oncall-slack, pager]",
                "unknown receiver `pager` (receivers: oncall-slack, team-email)",
            ),
            (
                "- name: team-email",
                "- name: oncall-slack",
                "alerting.receivers[1].name",
                "- name: oncall-slack",
                "duplicate receiver name `oncall-slack`",
            ),
            (
                "      slack:\n        webhookSecret: alerting-slack\n        channel: \"#oncall\"\n",
                "",
                "alerting.receivers[0]",
                "- name: oncall-slack",
                "set `slack` or `email`",
            ),
            (
                "        channel: \"#oncall\"\n",
                "        channel: \"#oncall\"\n      email: {smarthost: \"a:25\", from: a@b.c, to: [a@b.c]}\n",
                "alerting.receivers[0]",
                "- name: oncall-slack",
                "not both",
            ),
            (
                "smtp.example.com:587",
                "smtp.example.com",
                "alerting.receivers[1].email.smarthost",
                "smarthost:",
                "is not `host:port`",
            ),
            (
                "from: alerts@example.com",
                "from: alerts.example.com",
                "alerting.receivers[1].email.from",
                "from:",
                "`alerts.example.com` is not an email address",
            ),
            (
                "sre@example.com]",
                "Sre Team <sre@example.com>]",
                "alerting.receivers[1].email.to[1]",
                "to: [",
                "is not an email address",
            ),
            (
                "webhookSecret: alerting-slack",
                "webhookSecret: Alerting_Slack",
                "alerting.receivers[0].slack.webhookSecret",
                "webhookSecret:",
                "`Alerting_Slack` is not a valid DNS subdomain",
            ),
            (
                "passwordSecret: alerting-smtp",
                "passwordSecret: -smtp",
                "alerting.receivers[1].email.passwordSecret",
                "passwordSecret:",
                "`-smtp` is not a valid DNS subdomain",
            ),
            (
                "severity: ticket",
                "severity: warning",
                "alerting.routes[1].severity",
                "severity: warning",
                "unknown variant `warning`, expected `page` or `ticket`",
            ),
            (
                "environments: [prod]",
                "environments: [staging]",
                "alerting.routes[0].environments[0]",
                "environments:",
                "unknown environment `staging`",
            ),
            (
                "environments: [prod]",
                "environments: [dev]",
                "alerting.routes[0].environments[0]",
                "environments:",
                "environment `dev` has no monitoring",
            ),
            (
                "        username: alerts\n",
                "",
                "alerting.receivers[1].email.passwordSecret",
                "passwordSecret:",
                "needs a user name",
            ),
            (
                "- name: oncall-slack",
                "- name: \"null\"",
                "alerting.receivers[0].name",
                "- name: \"null\"",
                "`null` is reserved",
            ),
            (
                "webhookSecret: alerting-slack",
                "webhookSecret: customer-api-admin",
                "alerting.receivers[0].slack.webhookSecret",
                "webhookSecret:",
                "also a secret of service `customer-api`",
            ),
            (
                "receivers: [team-email]",
                "receivers: []",
                "alerting.routes[1].receivers",
                "receivers: []",
                "at least one receiver",
            ),
            (
                "        channel: \"#oncall\"\n",
                "        channel: \"#oncall\"\n        color: red\n",
                "alerting.receivers[0].slack.color",
                "color: red",
                "unknown field `color`",
            ),
            (
                "        username: alerts\n",
                "        username: alerts\n        password: hunter2\n",
                "alerting.receivers[1].email.password",
                "password: hunter2",
                "unknown field `password`",
            ),
            (
                "    - severity: ticket\n",
                "    - severity: ticket\n      matchers: [team=a]\n",
                "alerting.routes[1].matchers",
                "matchers:",
                "unknown field `matchers`",
            ),
        ];
        for (from, to, path, line, message) in cases {
            assert!(VALID.contains(from), "no `{from}` in the fixture");
            let source = VALID.replacen(from, to, 1);
            let found = problems(&source);
            let want_line = line_of(&source, line.split('\n').next().unwrap_or(line));
            assert!(
                found
                    .iter()
                    .any(|(p, l, m)| p == path && *l == Some(want_line) && m.contains(message)),
                "want {path} at line {want_line} saying `{message}`, got {found:?}"
            );
        }
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let source = VALID
            .replacen("oncall-slack, team-email]", "oncall-slack, pager]", 1)
            .replacen("smtp.example.com:587", "smtp.example.com:0", 1)
            .replacen("environments: [prod]", "environments: [dev]", 1);
        let paths: Vec<String> = problems(&source).into_iter().map(|(p, ..)| p).collect();
        assert_eq!(
            paths,
            [
                "alerting.receivers[1].email.smarthost",
                "alerting.routes[0].environments[0]",
                "alerting.routes[0].receivers[1]",
            ]
        );
    }

    /// `init` writes the reference platform.yaml, whose commented `alerting` example must stay
    /// valid.
    #[test]
    fn the_commented_example_in_the_reference_platform_is_valid_uncommented() {
        let base = include_str!("../../../platform.yaml");
        let at = base.find("\n# alerting:\n").expect("the commented example");
        let example: String = base[at + 1..]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let p = crate::config::parse(
            std::path::Path::new("platform.yaml"),
            &format!("{}{example}", &base[..at + 1]),
        )
        .expect("valid once uncommented");
        assert_eq!(p.alerting.receivers.len(), 2);
        assert_eq!(p.alerting.routes.len(), 2);
        let prod = p.environment("prod").expect("prod");
        assert_eq!(p.alerting.receivers_in(prod).len(), 2);
        assert!(
            crate::config::parse(std::path::Path::new("platform.yaml"), base)
                .expect("valid")
                .alerting
                .routes
                .is_empty(),
            "the reference platform itself routes nothing: `up` needs no receiver Secret files"
        );
    }

    #[test]
    fn routes_need_the_charts_alertmanager() {
        let base = include_str!("../../../platform.yaml").replace(
            "    version: 81.4.3\n",
            "    version: 81.4.3\n    values:\n      alertmanager: {enabled: false}\n",
        );
        let source = format!("{base}\nalerting:\n{VALID}");
        let Err(crate::config::Error::Invalid(ps)) =
            crate::config::parse(std::path::Path::new("platform.yaml"), &source)
        else {
            panic!("accepted")
        };
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert_eq!(
            ps[0].path,
            "addons.kubePrometheusStack.values.alertmanager.enabled"
        );
        assert_eq!(
            ps[0].line,
            Some(25),
            "the line of `alertmanager: {{enabled: false}}`"
        );
    }

    #[test]
    fn a_route_for_every_environment_needs_one_with_monitoring() {
        let base = include_str!("../../../platform.yaml").replace("    monitoring: true\n", "");
        let source = format!(
            "{base}\nalerting:\n  receivers: [{{name: a, slack: {{webhookSecret: s}}}}]\n  routes: [{{severity: page, receivers: [a]}}]\n"
        );
        let Err(crate::config::Error::Invalid(ps)) =
            crate::config::parse(std::path::Path::new("platform.yaml"), &source)
        else {
            panic!("accepted")
        };
        let routes: Vec<&crate::config::Problem> = ps
            .iter()
            .filter(|p| p.path.starts_with("alerting"))
            .collect();
        assert_eq!(routes.len(), 1, "{ps:?}");
        assert_eq!(routes[0].path, "alerting.routes[0]");
        assert!(routes[0].message.contains("no environment has monitoring"));
    }

    #[test]
    fn host_ports_as_go_splits_them() {
        for ok in [
            "smtp.example.com:587",
            "localhost:25",
            "10.0.0.1:465",
            "[::1]:25",
            "SMTP.Example.COM:2525",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "smtp.example.com",
            "smtp.example.com:",
            ":25",
            "smtp.example.com:65536",
            "smtp.example.com:0",
            "smtp.example.com:2x",
            "::1:25",
            "[::1]",
            "[nothost]:25",
            "smtp example.com:25",
            "smtp.example.com:25/",
            "smtp.é.com:25",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn addresses_are_bare() {
        for ok in ["a@b.c", "first.last+tag@example.co.uk", "root@localhost"] {
            assert!(is_address(ok), "{ok}");
        }
        for bad in [
            "",
            "@example.com",
            "a@",
            "a@b..c",
            "a b@c.d",
            "A <a@b.c>",
            "a,b@c.d",
            ".a@b.c",
            "a@-b.c",
            "é@b.c",
        ] {
            assert!(!is_address(bad), "{bad}");
        }
    }
}
