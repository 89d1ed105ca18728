//! `slo status`: each SLO of the platform, read live from the recording and alerting rules
//! `render` wrote (`spec`): the SLI over the reported windows and the SLO window, the error
//! budget left (as a ratio and as time), the burn rate of every page/ticket window pair
//! against its threshold, the time to exhaustion at the current 1h burn, and the burn alerts
//! Prometheus has pending or firing.
//!
//! One instant query gives every series, asked beside the rule groups and the alerts. An SLO
//! whose series are missing says why (its rules are not loaded, a rule fails, no traffic)
//! instead of reporting NaN. It does not print or format for people (the CLI does, with
//! [`duration`]) and does not decide exit codes.

pub mod spec;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::prom::{self, AlertState, Group, RuleHealth};
pub use spec::{Sli, Spec, specs};

/// Whether an SLO holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum State {
    /// Budget left over the SLO window.
    Met,
    /// The budget is spent: the SLO is breached over its window.
    Exhausted,
    /// No number to judge by: see the reason.
    NoData,
}

/// The SLI over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub window: String,
    /// The share of good events (1 - the error ratio); `None` without data.
    pub sli: Option<f64>,
    pub error_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// The share of the window's budget not spent yet; below 0 when overspent.
    pub remaining: f64,
    /// The whole budget as time: the budget share of the SLO window (0.1% of 30d = 43m12s).
    pub total_seconds: f64,
    pub remaining_seconds: f64,
}

/// One page/ticket window pair of the burn-rate alerts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Burn {
    pub severity: String,
    pub long_window: String,
    pub short_window: String,
    /// The burn rate both windows must exceed for the alert to fire.
    pub threshold: f64,
    /// Burn rate over each window (error ratio / budget); `None` without data.
    pub long: Option<f64>,
    pub short: Option<f64>,
    /// Both windows above the threshold: the condition of the alert (it fires once Prometheus
    /// has evaluated it true for its `for`, which is none).
    pub over: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub severity: String,
    pub long_window: String,
    pub short_window: String,
    /// `pending` or `firing`, as Prometheus says.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_at: Option<String>,
}

/// One SLO, now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(flatten)]
    pub spec: Spec,
    pub state: State,
    /// Why there is no data, or why the budget is spent; empty when met.
    pub reason: String,
    /// The reported windows, then the SLO window.
    pub windows: Vec<Window>,
    pub budget: Option<Budget>,
    pub burn: Vec<Burn>,
    /// Seconds until the remaining budget is spent at the current 1h burn rate; `None` when
    /// nothing burns (or there is no data), 0 when already spent.
    pub exhaustion_seconds: Option<f64>,
    pub alerts: Vec<Alert>,
}

/// Asks `prometheus` about every SLO of `specs` (one query, the rules and the alerts, at
/// once).
pub async fn collect(
    prometheus: &prom::Client,
    specs: &[Spec],
) -> Result<Vec<Status>, prom::Error> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let (groups, asked) = tokio::join!(prometheus.rules(), series_and_alerts(prometheus, specs));
    let (groups, (values, alerts)) = (groups?, asked?);
    Ok(statuses_of(specs, &values, &groups, &alerts))
}

/// As [`collect`], with the rule groups the caller has already read.
pub async fn collect_with(
    prometheus: &prom::Client,
    specs: &[Spec],
    groups: &[Group],
) -> Result<Vec<Status>, prom::Error> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let (values, alerts) = series_and_alerts(prometheus, specs).await?;
    Ok(statuses_of(specs, &values, groups, &alerts))
}

/// Every recorded series of the SLOs, by (series, slo, namespace), and the alerts.
type Values = BTreeMap<(String, String, String), f64>;

async fn series_and_alerts(
    prometheus: &prom::Client,
    specs: &[Spec],
) -> Result<(Values, Vec<prom::Alert>), prom::Error> {
    let query = series_query(specs);
    let (answer, alerts) = tokio::join!(prometheus.query(&query, None), prometheus.alerts());
    let (answer, alerts) = (answer?, alerts?);
    let mut values = Values::new();
    for s in answer.data.vector().unwrap_or_default() {
        let label = |k: &str| s.metric.get(k).cloned().unwrap_or_default();
        values.insert(
            (label("__name__"), label("slo"), label("namespace")),
            s.value.value,
        );
    }
    Ok((values, alerts))
}

fn statuses_of(
    specs: &[Spec],
    values: &Values,
    groups: &[Group],
    alerts: &[prom::Alert],
) -> Vec<Status> {
    specs
        .iter()
        .map(|spec| {
            let value = |series: &str| {
                values
                    .get(&(
                        series.to_string(),
                        spec.name.clone(),
                        spec.namespace.clone(),
                    ))
                    .copied()
                    .filter(|v| v.is_finite())
            };
            evaluate(spec, &value, groups, alerts)
        })
        .collect()
}

/// Every recorded series of the SLOs in one selector.
fn series_query(specs: &[Spec]) -> String {
    let mut names: Vec<String> = specs.iter().map(|s| regex_escape(&s.name)).collect();
    names.sort();
    names.dedup();
    format!(
        "{{__name__=~\"slo:sli_error:ratio_rate.+|{}\",slo=~\"{}\"}}",
        regex_escape(spec::BUDGET_REMAINING_SERIES),
        names.join("|")
    )
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One SLO from its series (`value` of a series name: a finite number, or `None`), the rule
/// groups and the alerts Prometheus has.
pub fn evaluate(
    spec: &Spec,
    value: &dyn Fn(&str) -> Option<f64>,
    groups: &[Group],
    alerts: &[prom::Alert],
) -> Status {
    let budget_share = spec.budget();
    let ratio = |w: &str| value(&spec::error_ratio_series(w));
    let burn_at = |w: &str| ratio(w).map(|r| r / budget_share);
    let mut names: Vec<&str> = spec::REPORTED_WINDOWS.to_vec();
    if !names.contains(&spec.window.as_str()) {
        names.push(&spec.window);
    }
    let windows: Vec<Window> = names
        .into_iter()
        .map(|w| Window {
            window: w.to_string(),
            error_ratio: ratio(w),
            sli: ratio(w).map(|r| 1.0 - r),
        })
        .collect();
    let burn: Vec<Burn> = spec::BURN_ALERTS
        .iter()
        .map(|(severity, long, short, factor)| {
            let (l, s) = (burn_at(long), burn_at(short));
            Burn {
                severity: severity.as_str().to_string(),
                long_window: long.to_string(),
                short_window: short.to_string(),
                threshold: *factor,
                long: l,
                short: s,
                over: matches!((l, s), (Some(l), Some(s)) if l > *factor && s > *factor),
            }
        })
        .collect();
    let total = budget_share * spec.window_seconds as f64;
    let budget = value(spec::BUDGET_REMAINING_SERIES).map(|remaining| Budget {
        remaining,
        total_seconds: total,
        remaining_seconds: remaining * total,
    });
    let exhaustion_seconds = budget.as_ref().and_then(|b| {
        if b.remaining <= 0.0 {
            return Some(0.0);
        }
        // At burn rate r the budget goes r times as fast as the window allows: all of it in
        // window / r, what is left in remaining * window / r.
        burn_at(spec::EXHAUSTION_WINDOW)
            .filter(|r| *r > 0.0)
            .map(|r| b.remaining * spec.window_seconds as f64 / r)
    });
    let alerts: Vec<Alert> = alerts
        .iter()
        .filter(|a| {
            let l = |k: &str| a.labels.get(k).map(String::as_str);
            l("alertname") == Some(spec::BURN_ALERT)
                && l("slo") == Some(&spec.name)
                && l("namespace") == Some(&spec.namespace)
                && matches!(a.state, AlertState::Firing | AlertState::Pending)
        })
        .map(|a| {
            let l = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
            Alert {
                severity: l("severity"),
                long_window: l("long_window"),
                short_window: l("short_window"),
                state: match a.state {
                    AlertState::Firing => "firing",
                    _ => "pending",
                }
                .to_string(),
                active_at: a.active_at.map(|t| t.to_string()),
            }
        })
        .collect();
    let (state, reason) = match &budget {
        Some(b) if b.remaining <= 0.0 => (
            State::Exhausted,
            format!(
                "the error budget of {} is spent: {:.1}% of it used",
                spec.window,
                (1.0 - b.remaining) * 100.0
            ),
        ),
        Some(_) => (State::Met, String::new()),
        None => (State::NoData, no_data(spec, groups, &windows)),
    };
    Status {
        spec: spec.clone(),
        state,
        reason,
        windows,
        budget,
        burn,
        exhaustion_seconds,
        alerts,
    }
}

/// Why an SLO has no budget figure: its rule group is not loaded, one of its rules fails, or
/// it has no traffic.
fn no_data(spec: &Spec, groups: &[Group], windows: &[Window]) -> String {
    let file = format!("{}-{}-", spec.namespace, spec.rule_object());
    let group = groups.iter().find(|g| {
        g.name == spec.group()
            && std::path::Path::new(&g.file)
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&file))
    });
    let Some(group) = group else {
        return format!(
            "no data: the rule group `{}` is not loaded in Prometheus (is the PrometheusRule `{}` in namespace `{}` applied and selected?)",
            spec.group(),
            spec.rule_object(),
            spec.namespace
        );
    };
    if let Some(bad) = group.rules.iter().find(|r| r.health() == RuleHealth::Err) {
        return format!(
            "no data: rule `{}` of group `{}` fails: {}",
            bad.name(),
            group.name,
            bad.last_error()
        );
    }
    if windows.iter().all(|w| w.error_ratio.is_none()) {
        format!(
            "no data: the SLI has no data (no requests to `{}` in namespace `{}` counted yet: no traffic?)",
            spec.service, spec.namespace
        )
    } else {
        format!(
            "no data: the SLI has no data over {} (no traffic to `{}` over the whole window yet?)",
            spec.window, spec.service
        )
    }
}

/// A duration as people read it, to the second below an hour: `43m12s`, `2h5m`, `29d23h`,
/// `0s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    let mut out = String::new();
    let parts: [(u64, &str); 4] = [(d, "d"), (h, "h"), (m, "m"), (sec, "s")];
    // The two largest units that are not zero (days and hours, hours and minutes, ...).
    let first = parts.iter().position(|(n, _)| *n > 0);
    let Some(first) = first else {
        return "0s".into();
    };
    for (n, unit) in parts.iter().skip(first).take(2) {
        if *n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
