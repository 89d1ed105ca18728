use std::collections::BTreeMap;

use super::*;

/// customer-api's availability SLO in prod: 99.9% over 30d.
fn availability() -> Spec {
    spec::reference().remove(0)
}

/// Prometheus' groups as `/api/v1/rules` gives them: the SLO's group in its operator rule file.
fn groups(health: &str, file_ns: &str) -> Vec<Group> {
    let json = format!(
        r#"[{{"name":"slo-customer-api-availability",
              "file":"/etc/prometheus/rules/prometheus-kps-prometheus-rulefiles-0/{file_ns}-customer-api-slo-7f3a.yaml",
              "interval":2,"rules":[
                {{"type":"recording","name":"slo:sli_error:ratio_rate5m","query":"x","health":"{health}",
                  "lastError":"{}"}}]}}]"#,
        if health == "err" {
            "many-to-many matching not allowed"
        } else {
            ""
        }
    );
    serde_json::from_str(&json).expect("groups")
}

fn alert(labels: &[(&str, &str)], state: &str) -> prom::Alert {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    serde_json::from_value(serde_json::json!({
        "labels": labels, "state": state, "activeAt": "2026-12-02T07:00:00Z", "value": "0.01"
    }))
    .expect("alert")
}

fn evaluate_with(values: &[(&str, f64)], groups: &[Group], alerts: &[prom::Alert]) -> Status {
    let values: BTreeMap<String, f64> = values.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let value = |series: &str| values.get(series).copied().filter(|v| v.is_finite());
    evaluate(&availability(), &value, groups, alerts)
}

#[test]
fn one_percent_errors_against_a_99_9_objective_burn_ten_times_the_budget() {
    let every_window: Vec<(String, f64)> = spec::recorded_windows("30d")
        .iter()
        .map(|w| (spec::error_ratio_series(w), 0.01))
        .collect();
    let mut values: Vec<(&str, f64)> = every_window.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    values.push((spec::BUDGET_REMAINING_SERIES, 0.25));
    let fast = alert(
        &[
            ("alertname", "SLOErrorBudgetBurn"),
            ("slo", "customer-api-availability"),
            ("namespace", "prod"),
            ("severity", "page"),
            ("long_window", "1h"),
            ("short_window", "5m"),
        ],
        "firing",
    );
    let other_namespace = alert(
        &[
            ("alertname", "SLOErrorBudgetBurn"),
            ("slo", "customer-api-availability"),
            ("namespace", "practice"),
        ],
        "firing",
    );
    let s = evaluate_with(&values, &groups("ok", "prod"), &[fast, other_namespace]);
    assert_eq!(s.state, State::Met);
    let w: Vec<&str> = s.windows.iter().map(|w| w.window.as_str()).collect();
    assert_eq!(w, ["5m", "1h", "6h", "1d", "30d"]);
    assert!((s.windows[0].sli.expect("data") - 0.99).abs() < 1e-9);
    // 1% errors / 0.1% budget = 10: over 6 (page, 6h/30m), 3 and 1 (tickets), under 14.4.
    let over: Vec<bool> = s.burn.iter().map(|b| b.over).collect();
    assert_eq!(over, [false, true, true, true]);
    assert!((s.burn[0].short.expect("5m") - 10.0).abs() < 1e-9);
    let b = s.budget.as_ref().expect("budget");
    // 0.1% of 30 days is 43m12s; a quarter of it is left.
    assert!((b.total_seconds - 2_592.0).abs() < 1e-6);
    assert!((b.remaining_seconds - 648.0).abs() < 1e-6);
    assert_eq!(duration(b.total_seconds), "43m12s");
    // A quarter of the 30d budget at 10x: 30d / 10 / 4 = 18h.
    assert!((s.exhaustion_seconds.expect("burning") - 18.0 * 3_600.0).abs() < 1e-6);
    assert_eq!(s.alerts.len(), 1, "only the alert of this SLO's namespace");
    assert_eq!(
        (s.alerts[0].severity.as_str(), s.alerts[0].state.as_str()),
        ("page", "firing")
    );
}

#[test]
fn a_spent_budget_is_exhausted_and_runs_out_now() {
    let s = evaluate_with(
        &[
            (spec::BUDGET_REMAINING_SERIES, -0.5),
            ("slo:sli_error:ratio_rate1h", 0.0),
        ],
        &groups("ok", "prod"),
        &[],
    );
    assert_eq!(s.state, State::Exhausted);
    assert_eq!(s.exhaustion_seconds, Some(0.0));
    assert!(s.reason.contains("150.0% of it used"), "{}", s.reason);
}

#[test]
fn no_burn_never_runs_out() {
    let s = evaluate_with(
        &[
            (spec::BUDGET_REMAINING_SERIES, 1.0),
            ("slo:sli_error:ratio_rate1h", 0.0),
        ],
        &groups("ok", "prod"),
        &[],
    );
    assert_eq!((s.state, s.exhaustion_seconds), (State::Met, None));
}

#[test]
fn missing_series_say_why_instead_of_nan() {
    let s = evaluate_with(&[], &groups("ok", "prod"), &[]);
    assert_eq!(s.state, State::NoData);
    assert!(s.reason.contains("no traffic"), "{}", s.reason);
    assert!(s.windows.iter().all(|w| w.sli.is_none()));
    assert!(s.burn.iter().all(|b| !b.over && b.long.is_none()));

    let s = evaluate_with(&[], &groups("ok", "practice"), &[]);
    assert!(
        s.reason
            .contains("rule group `slo-customer-api-availability` is not loaded"),
        "the group of another namespace's rule is not this one's: {}",
        s.reason
    );
    let s = evaluate_with(&[], &groups("err", "prod"), &[]);
    assert!(s.reason.contains("fails: many-to-many"), "{}", s.reason);
    // NaN (0/0 with no requests) is no data, not a number.
    let s = evaluate_with(
        &[
            (spec::BUDGET_REMAINING_SERIES, f64::NAN),
            ("slo:sli_error:ratio_rate5m", f64::NAN),
        ],
        &groups("ok", "prod"),
        &[],
    );
    assert_eq!(s.state, State::NoData);
}

#[test]
fn durations_read_as_people_say_them() {
    assert_eq!(duration(0.0), "0s");
    assert_eq!(duration(59.4), "59s");
    assert_eq!(duration(1_860.0), "31m");
    assert_eq!(duration(2_592.0), "43m12s");
    assert_eq!(duration(7_500.0), "2h5m");
    assert_eq!(duration(30.0 * 86_400.0), "30d");
    assert_eq!(duration(29.0 * 86_400.0 + 23.0 * 3_600.0 + 59.0), "29d23h");
    assert_eq!(duration(-5.0), "0s");
}

#[test]
fn the_series_query_selects_every_slo_once() {
    let q = series_query(&[availability(), availability()]);
    assert_eq!(
        q,
        r#"{__name__=~"slo:sli_error:ratio_rate.+|slo:error_budget_remaining:ratio",slo=~"customer-api-availability"}"#
    );
}
