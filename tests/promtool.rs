//! The rendered SLO rules, checked and unit-tested by Prometheus' own `promtool`.
//!
//! `platformctl lint` proves a `PrometheusRule` is well-formed; only Prometheus can prove its
//! PromQL parses and that the alerts fire when, and only when, they should. These tests render
//! the reference platforms in memory (never touching the committed tree), hand the `spec` of
//! every `PrometheusRule` to `promtool`, and unit-test customer-api's two SLOs (availability
//! 99.9%, budget 0.001; p95 latency < 0.3 s, budget 0.05) with synthetic traffic:
//!
//! * every burn-rate alert stays quiet until its *long* window is above its factor (a burn just
//!   above the factor pages once it has lasted one long window, not before) and never fires for
//!   a burn just below the factor; above and below are within 3% of the factor, and the exact
//!   set of firing alerts, with all labels and annotations, is asserted;
//! * every alert clears once its *short* window has recovered, while the long window alone
//!   would still be over the threshold;
//! * every `slo:sli_error:ratio_rate<w>` expression measures exactly the window w;
//! * `slo:error_budget_remaining:ratio` is computed over the 30-day SLO window;
//! * a service with no errors at all (no `app_errors_total` series) has a zero error ratio,
//!   a full budget and no alerts;
//! * series of other namespaces and services, other histogram buckets and a second pod are
//!   present throughout, so a rule that loses a matcher or a `sum` fails;
//! * the harness itself fails on a wrong expectation.
//!
//! promtool is Debian's `prometheus` package (CI installs it). Missing promtool is a failure,
//! never a skip: a skipped test would silently stop guarding the rules.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use platformctl::render::Tree;
use serde::Deserialize;
use serde_json::{Value, json};

const INSTALL_HINT: &str = "install Debian's prometheus package: apt-get install prometheus";

// ---------------------------------------------------------------------------------------------
// Rendering and running promtool
// ---------------------------------------------------------------------------------------------

fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Renders `platform.yaml` in memory with the embedded templates.
fn render(platform_yaml: &Path) -> Tree {
    let src = std::fs::read_to_string(platform_yaml)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", platform_yaml.display()));
    let platform = platformctl::config::parse(platform_yaml, &src)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", platform_yaml.display()));
    let templates = platformctl::render::Templates::load(None).expect("embedded templates load");
    platformctl::render::render(&platform, &templates)
        .unwrap_or_else(|e| panic!("{} does not render: {e}", platform_yaml.display()))
}

/// `(path, spec)` of every `PrometheusRule` in the tree: the spec is a plain Prometheus rule file.
fn prometheus_rule_specs(tree: &Tree) -> Vec<(String, serde_yaml::Value)> {
    let mut specs = Vec::new();
    for (path, text) in tree {
        if !path.ends_with(".yaml") {
            continue;
        }
        for doc in serde_yaml::Deserializer::from_str(text) {
            let doc = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}"));
            if doc.get("kind").and_then(|k| k.as_str()) == Some("PrometheusRule") {
                let spec = doc
                    .get("spec")
                    .unwrap_or_else(|| panic!("{path}: PrometheusRule without spec"));
                specs.push((path.clone(), spec.clone()));
            }
        }
    }
    specs
}

/// The rule file of customer-api's SLOs in prod, rendered from the repository's platform.yaml.
fn customer_api_rules() -> serde_yaml::Value {
    let tree = render(&manifest_path("platform.yaml"));
    let wanted = "envs/prod/customer-api/slo-rules.yaml";
    prometheus_rule_specs(&tree)
        .into_iter()
        .find(|(path, _)| path == wanted)
        .unwrap_or_else(|| panic!("{wanted} is not rendered, or holds no PrometheusRule"))
        .1
}

/// Runs promtool in `dir`. A missing promtool fails the test with the install hint.
fn promtool(dir: &Path, args: &[&str]) -> Output {
    match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`promtool` is not on PATH: {INSTALL_HINT}")
        }
        Err(e) => panic!("cannot run promtool ({e}): {INSTALL_HINT}"),
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit status: {}\n--- promtool stdout ---\n{}\n--- promtool stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write_yaml(path: &Path, value: &impl serde::Serialize) {
    let text = serde_yaml::to_string(value).expect("serialisable");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Writes the rules and the promtool test `files` (`tests-0.yaml`, …; several because the
/// evaluation interval is per file) into a fresh directory and runs `promtool test rules`.
fn run_promtool_tests(rules: &serde_yaml::Value, files: &[Value]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_yaml(&dir.path().join("rules.yaml"), rules);
    let names: Vec<String> = (0..files.len())
        .map(|i| format!("tests-{i}.yaml"))
        .collect();
    for (name, file) in names.iter().zip(files) {
        write_yaml(&dir.path().join(name), file);
    }
    let mut args = vec!["test", "rules"];
    args.extend(names.iter().map(String::as_str));
    let out = promtool(dir.path(), &args);
    (out, dir)
}

/// `promtool test rules` must succeed; on failure the whole output is printed and the files
/// are kept so the case can be re-run by hand.
fn assert_promtool_tests_pass(rules: &serde_yaml::Value, files: &[Value]) {
    let (out, dir) = run_promtool_tests(rules, files);
    if !out.status.success() {
        let kept = dir.keep();
        panic!(
            "promtool test rules failed (files kept in {}; re-run with `cd {0} && promtool test rules tests-*.yaml`)\n{}",
            kept.display(),
            show(&out)
        );
    }
    // promtool prints one SUCCESS line per test file; anything less means a file was not tested.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("SUCCESS").count(),
        files.len(),
        "{}",
        show(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Every rendered PrometheusRule passes `promtool check rules`
// ---------------------------------------------------------------------------------------------

#[test]
fn rules_pass_promtool_check() {
    for (platform, expected) in [
        (
            "platform.yaml",
            &["envs/prod/customer-api/slo-rules.yaml"][..],
        ),
        (
            "examples/microservices/platform.yaml",
            &[
                "envs/prod/orders/slo-rules.yaml",
                "envs/prod/payments/slo-rules.yaml",
            ][..],
        ),
    ] {
        let tree = render(&manifest_path(platform));
        let specs = prometheus_rule_specs(&tree);
        let found: Vec<&str> = specs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(found, expected, "{platform}: PrometheusRules rendered");

        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = Vec::new();
        for (path, spec) in &specs {
            let file = path.replace('/', "__");
            write_yaml(&dir.path().join(&file), spec);
            files.push(file);
        }
        let mut args = vec!["check", "rules"];
        args.extend(files.iter().map(String::as_str));
        let out = promtool(dir.path(), &args);
        assert!(
            out.status.success(),
            "{platform}: promtool check rules failed\n{}",
            show(&out)
        );
        // One "SUCCESS: N rules found" per file, so an empty file cannot pass unnoticed.
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.matches("SUCCESS").count(),
            files.len(),
            "{platform}\n{}",
            show(&out)
        );
        assert!(
            !stdout.contains("SUCCESS: 0 rules found"),
            "{platform}\n{}",
            show(&out)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The SLOs under test and the synthetic traffic
// ---------------------------------------------------------------------------------------------

/// One of customer-api's SLOs, as platform.yaml defines it.
struct Slo {
    name: &'static str,
    sli: &'static str,
    /// Allowed error ratio: 1 - objective.
    budget: f64,
}

const AVAILABILITY: Slo = Slo {
    name: "customer-api-availability",
    sli: "availability",
    budget: 0.001,
};
const LATENCY: Slo = Slo {
    name: "customer-api-latency",
    sli: "latency",
    budget: 0.05,
};

/// One of the four multi-window multi-burn-rate alerts (SRE workbook, table 5-8).
struct Burn {
    severity: &'static str,
    long: &'static str,
    short: &'static str,
    factor: &'static str,
}

const PAGE_1H: Burn = Burn {
    severity: "page",
    long: "1h",
    short: "5m",
    factor: "14.4",
};
const PAGE_6H: Burn = Burn {
    severity: "page",
    long: "6h",
    short: "30m",
    factor: "6",
};
const TICKET_1D: Burn = Burn {
    severity: "ticket",
    long: "1d",
    short: "2h",
    factor: "3",
};
const TICKET_3D: Burn = Burn {
    severity: "ticket",
    long: "3d",
    short: "6h",
    factor: "1",
};

/// The labels every series recorded for `slo` carries.
fn recording_labels(slo: &Slo) -> Value {
    json!({ "slo": slo.name, "sli": slo.sli, "service": "customer-api", "namespace": "prod" })
}

/// `recording_labels` in PromQL series notation, for `exp_samples`.
fn series_labels(slo: &Slo) -> String {
    format!(
        r#"{{namespace="prod", service="customer-api", sli="{}", slo="{}"}}"#,
        slo.sli, slo.name
    )
}

/// Requests per sample interval (1 minute in most cases), split over two pods so the rules
/// have to `sum` across them.
const REQUESTS_PER_STEP: f64 = 1000.0;
const PODS: [&str; 2] = ["customer-api-6b9f7c-x2k4p", "customer-api-6b9f7c-q7m2w"];

/// Three days: every alerting window (the longest is 3d) starts full of good traffic, so a burn
/// that starts afterwards has to outweigh it before a long window crosses its threshold.
const HISTORY: u32 = 3 * 24 * 60;

/// `steps` samples during which the bad-request ratio is `burn` times the SLO's budget.
#[derive(Clone, Copy)]
struct Phase {
    steps: u32,
    burn: f64,
}

fn phase(steps: u32, burn: f64) -> Phase {
    Phase { steps, burn }
}

/// Three days of good traffic, then `burn` × budget for `steps`, then good traffic again for `after`.
fn burst(burn: f64, steps: u32, after: u32) -> Vec<Phase> {
    vec![phase(HISTORY, 0.0), phase(steps, burn), phase(after, 0.0)]
}

/// A counter in promtool's expanding notation: 0 at t=0, then each `(steps, increment)` adds
/// `increment` per sample for `steps` samples. `a+bxn` is n+1 samples a, a+b, …, a+nb.
fn counter(segments: impl IntoIterator<Item = (u32, f64)>) -> String {
    let mut out = String::from("0");
    let mut value = 0.0;
    for (steps, inc) in segments {
        if steps == 0 {
            continue;
        }
        let first = value + inc;
        write!(out, " {first}+{inc}x{}", steps - 1).expect("write to String");
        value += inc * f64::from(steps);
    }
    out
}

fn series(name: &str, labels: &[(&str, &str)], values: String) -> Value {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    json!({ "series": format!("{name}{{{}}}", labels.join(",")), "values": values })
}

/// Per-pod availability counters. A service that never failed never exported
/// `app_errors_total` (client libraries create a labelled counter on first increment), so the
/// error series is left out entirely when the scenario has no errors: the rules' `or vector(0)`
/// must cover that.
fn availability_series(phases: &[Phase]) -> Vec<Value> {
    let per_pod = REQUESTS_PER_STEP / PODS.len() as f64;
    let any_error = phases.iter().any(|p| p.steps > 0 && p.burn > 0.0);
    let mut out = Vec::new();
    for pod in PODS {
        let labels = [
            ("job", "customer-api"),
            ("namespace", "prod"),
            ("service", "customer-api"),
            ("pod", pod),
        ];
        out.push(series(
            "http_requests_total",
            &labels,
            counter(phases.iter().map(|p| (p.steps, per_pod))),
        ));
        if any_error {
            let errors = phases
                .iter()
                .map(|p| (p.steps, per_pod * p.burn * AVAILABILITY.budget));
            out.push(series("app_errors_total", &labels, counter(errors)));
        }
    }
    out
}

/// Per-pod latency histogram: `le="0.3"` counts the fast requests, `+Inf` and `_count` all of
/// them (a rule that ignored `le` would sum both buckets and never see a slow request).
fn latency_series(phases: &[Phase]) -> Vec<Value> {
    let per_pod = REQUESTS_PER_STEP / PODS.len() as f64;
    let mut out = Vec::new();
    for pod in PODS {
        let base = [
            ("job", "customer-api"),
            ("namespace", "prod"),
            ("service", "customer-api"),
            ("pod", pod),
        ];
        let all = || counter(phases.iter().map(|p| (p.steps, per_pod)));
        let fast = counter(
            phases
                .iter()
                .map(|p| (p.steps, per_pod * (1.0 - p.burn * LATENCY.budget))),
        );
        let bucket = |le: &'static str| {
            let mut l = base.to_vec();
            l.push(("le", le));
            l
        };
        out.push(series(
            "http_request_duration_seconds_bucket",
            &bucket("0.3"),
            fast,
        ));
        out.push(series(
            "http_request_duration_seconds_bucket",
            &bucket("+Inf"),
            all(),
        ));
        out.push(series("http_request_duration_seconds_count", &base, all()));
    }
    out
}

/// Services the rules must not see: customer-api in the dev namespace and another service in
/// prod, both failing and slow on every request. A selector missing `namespace` or `service`
/// makes every quiet expectation below fail.
fn decoy_series(steps: u32) -> Vec<Value> {
    let all = counter([(steps, REQUESTS_PER_STEP)]);
    let none = counter([(steps, 0.0)]);
    let mut out = Vec::new();
    for (namespace, service) in [("practice", "customer-api"), ("prod", "billing")] {
        let l = [
            ("job", service),
            ("namespace", namespace),
            ("service", service),
            ("pod", "decoy-0"),
        ];
        out.push(series("http_requests_total", &l, all.clone()));
        out.push(series("app_errors_total", &l, all.clone()));
        out.push(series(
            "http_request_duration_seconds_bucket",
            &[l[0], l[1], l[2], l[3], ("le", "0.3")],
            none.clone(),
        ));
        out.push(series(
            "http_request_duration_seconds_bucket",
            &[l[0], l[1], l[2], l[3], ("le", "+Inf")],
            all.clone(),
        ));
        out.push(series(
            "http_request_duration_seconds_count",
            &l,
            all.clone(),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

/// Builds promtool test files for customer-api's rules. Annotations are taken from the
/// rendered rules (promtool compares them too); labels are spelled out here, so a rendered
/// label that differs from the design fails the test.
struct Expect<'a> {
    rules: &'a serde_yaml::Value,
}

impl Expect<'_> {
    fn annotations(&self, slo: &Slo, burn: &Burn) -> Value {
        let groups = self.rules["groups"]
            .as_sequence()
            .expect("rule file has groups");
        let rule = groups
            .iter()
            .flat_map(|g| g["rules"].as_sequence().expect("group has rules"))
            .find(|r| {
                r["alert"].as_str() == Some("SLOErrorBudgetBurn")
                    && r["labels"]["slo"].as_str() == Some(slo.name)
                    && r["labels"]["long_window"].as_str() == Some(burn.long)
            })
            .unwrap_or_else(|| {
                panic!(
                    "no SLOErrorBudgetBurn alert for slo={} long_window={}",
                    slo.name, burn.long
                )
            });
        serde_json::to_value(&rule["annotations"]).expect("annotations are JSON")
    }

    /// The PromQL of the rule recording `record` for `slo`.
    fn recording_expr(&self, slo: &Slo, record: &str) -> String {
        let groups = self.rules["groups"]
            .as_sequence()
            .expect("rule file has groups");
        let rule = groups
            .iter()
            .flat_map(|g| g["rules"].as_sequence().expect("group has rules"))
            .find(|r| {
                r["record"].as_str() == Some(record)
                    && r["labels"]["slo"].as_str() == Some(slo.name)
            })
            .unwrap_or_else(|| panic!("no rule records {record} for slo={}", slo.name));
        rule["expr"]
            .as_str()
            .expect("expr is a string")
            .trim()
            .to_string()
    }

    /// An `alert_rule_test` asserting that exactly `firing` is firing at `minute`.
    fn alerts_at(&self, minute: u32, firing: &[(&Slo, &Burn)]) -> Value {
        let exp: Vec<Value> = firing
            .iter()
            .map(|(slo, burn)| {
                let mut labels = recording_labels(slo);
                let l = labels.as_object_mut().expect("object");
                l.insert("severity".into(), burn.severity.into());
                l.insert("long_window".into(), burn.long.into());
                l.insert("short_window".into(), burn.short.into());
                l.insert("burn_rate".into(), burn.factor.into());
                json!({ "exp_labels": labels, "exp_annotations": self.annotations(slo, burn) })
            })
            .collect();
        json!({ "eval_time": format!("{minute}m"), "alertname": "SLOErrorBudgetBurn", "exp_alerts": exp })
    }
}

/// A `promql_expr_test` asserting that `expr` returns exactly `value` with `slo`'s recording labels.
fn expr_at(minute: u32, expr: String, slo: &Slo, value: f64) -> Value {
    json!({
        "eval_time": format!("{minute}m"),
        "expr": expr,
        "exp_samples": [{ "labels": series_labels(slo), "value": value }],
    })
}

/// The series `record` recorded for `slo` is exactly `value` at `minute`.
fn recorded(minute: u32, record: &str, slo: &Slo, value: f64) -> Value {
    let labels = series_labels(slo).replacen('{', &format!("{{__name__=\"{record}\", "), 1);
    json!({
        "eval_time": format!("{minute}m"),
        "expr": format!(r#"{record}{{slo="{}"}}"#, slo.name),
        "exp_samples": [{ "labels": labels, "value": value }],
    })
}

/// `slo`'s recorded error ratio over `window` is above `factor` × budget (promtool compares
/// floats exactly, so thresholds are asserted with `> bool`, which yields exactly 1 or 0).
fn long_window_over(minute: u32, slo: &Slo, window: &str, factor: f64) -> Value {
    let expr = format!(
        r#"slo:sli_error:ratio_rate{window}{{slo="{}"}} > bool {}"#,
        slo.name,
        factor * slo.budget
    );
    expr_at(minute, expr, slo, 1.0)
}

/// `slo:error_budget_remaining:ratio` of `slo` is `expected` to within 1e-9.
fn budget_remaining(minute: u32, slo: &Slo, expected: f64) -> Value {
    let expr = format!(
        r#"abs(slo:error_budget_remaining:ratio{{slo="{}"}} - {expected}) < bool 1e-9"#,
        slo.name
    );
    expr_at(minute, expr, slo, 1.0)
}

/// A promtool test group: customer-api traffic shaped by `availability` and `latency` (equal
/// total length), the decoys, and the expectations.
fn test_group(
    name: &str,
    interval: &str,
    availability: &[Phase],
    latency: &[Phase],
    alerts: Vec<Value>,
    exprs: Vec<Value>,
) -> Value {
    let steps = |p: &[Phase]| p.iter().map(|p| p.steps).sum::<u32>();
    assert_eq!(
        steps(availability),
        steps(latency),
        "{name}: both SLOs' traffic must cover the same time"
    );
    let mut input = availability_series(availability);
    input.extend(latency_series(latency));
    input.extend(decoy_series(steps(availability)));
    json!({
        "name": name,
        "interval": interval,
        "input_series": input,
        "alert_rule_test": alerts,
        "promql_expr_test": exprs,
    })
}

/// A promtool test file whose rules are evaluated every `evaluation_interval` minutes.
///
/// promtool feeds input samples to the TSDB only up to each rule evaluation, and evaluates from
/// 0 to the last `eval_time` in steps of the interval: samples after the last step are never
/// loaded, so a test at an instant past it silently sees truncated series. Hence every test
/// group's last `eval_time` must fall on an evaluation.
fn test_file(evaluation_interval: u32, groups: Vec<Value>) -> Value {
    for group in &groups {
        let last = ["alert_rule_test", "promql_expr_test"]
            .iter()
            .flat_map(|kind| group[kind].as_array().into_iter().flatten())
            .map(|t| {
                let at = t["eval_time"].as_str().expect("eval_time");
                at.strip_suffix('m')
                    .and_then(|m| m.parse::<u32>().ok())
                    .expect("eval_time in minutes")
            })
            .max()
            .unwrap_or(0);
        assert!(
            last % evaluation_interval == 0,
            "{}: last eval_time {last}m is not a multiple of the evaluation interval {evaluation_interval}m",
            group["name"]
        );
    }
    json!({ "rule_files": ["rules.yaml"], "evaluation_interval": format!("{evaluation_interval}m"), "tests": groups })
}

// ---------------------------------------------------------------------------------------------
// 2. Burn-rate alerts: thresholds and long windows
// ---------------------------------------------------------------------------------------------
//
// After three days of good traffic a burn of k × budget starts at minute HISTORY. With constant
// traffic a window of length L then sees k × d / L (d minutes into the burn, d ≤ L), so an
// alert with factor f and long window L fires once k × d / L > f and its short window (full
// after its length) is above f too. Each case burns one SLO just above a factor and the other
// just below it (within 3%, so a factor that is off by more fails), and asserts the exact set
// of firing alerts (every alert has the same name): quiet at about 0.8 × L, then, the moment
// the burn has lasted L, only the alerts whose factor is below k: for 3.1x that is the 1d
// ticket *and* the 3d ticket, both of which 10% of the budget trips.
// Evaluation and window boundaries fall on samples, so `rate()` does not extrapolate.
//
// Rules are evaluated every 5 minutes for the pages and every hour for the tickets: promtool
// evaluates from time 0 and the 3-day windows are what makes these tests slow.

struct Threshold {
    burn: Burn,
    /// Burns, in multiples of the budget, just above and just below the alert's factor.
    above: f64,
    below: f64,
    /// Minutes into the burn at which even the burn above the factor must still be quiet.
    quiet: u32,
    /// Minutes into the burn at which it must fire: the long window.
    fires: u32,
    /// Slower alerts the burn above also trips by then.
    also: &'static [&'static Burn],
}

const PAGE_THRESHOLDS: [Threshold; 2] = [
    // 14.8 × 45/60 = 11.1 < 14.4 at 45m; 14.8 > 14.4 once the hour is full. 14 never pages,
    // and an hour of either is far from 6x over 6h (14.8 / 6 = 2.5).
    Threshold {
        burn: PAGE_1H,
        above: 14.8,
        below: 14.0,
        quiet: 45,
        fires: 60,
        also: &[],
    },
    // 6.2 × 285/360 = 4.9 < 6 at 4h45m; 6.2 > 6 once the 6h are full, when the 1d window
    // says 6.2 / 4 = 1.55 < 3 and the 3d window 0.5 < 1.
    Threshold {
        burn: PAGE_6H,
        above: 6.2,
        below: 5.8,
        quiet: 285,
        fires: 360,
        also: &[],
    },
];

const TICKET_THRESHOLDS: [Threshold; 2] = [
    // 3.1 × 19/24 = 2.45 < 3 and 3.1 × 19/72 = 0.82 < 1 at 19h; at 24h 3.1 > 3 and
    // 3.1 / 3 = 1.03 > 1: both tickets. 2.9 / 3 = 0.97 < 1: the burn below trips neither.
    Threshold {
        burn: TICKET_1D,
        above: 3.1,
        below: 2.9,
        quiet: 19 * 60,
        fires: 24 * 60,
        also: &[&TICKET_3D],
    },
    // 1.05 × 57/72 = 0.83 < 1 at 57h; 1.05 > 1 once the 3 days are full.
    Threshold {
        burn: TICKET_3D,
        above: 1.05,
        below: 0.95,
        quiet: 57 * 60,
        fires: 72 * 60,
        also: &[],
    },
];

fn threshold_groups(expect: &Expect, t: &Threshold) -> Vec<Value> {
    let mut groups = Vec::new();
    for hot_is_availability in [true, false] {
        // `hot` burns just above the factor, `cold` just below.
        let (hot, cold) = if hot_is_availability {
            (&AVAILABILITY, &LATENCY)
        } else {
            (&LATENCY, &AVAILABILITY)
        };
        let (avail, lat) = if hot_is_availability {
            (t.above, t.below)
        } else {
            (t.below, t.above)
        };
        let mut firing = vec![(hot, &t.burn)];
        firing.extend(t.also.iter().map(|b| (hot, *b)));
        groups.push(test_group(
            &format!(
                "{} {}/{} x{}: {} at {}x fires after {}m of burn, {} at {}x does not",
                t.burn.severity,
                t.burn.long,
                t.burn.short,
                t.burn.factor,
                hot.sli,
                t.above,
                t.fires,
                cold.sli,
                t.below
            ),
            "1m",
            &burst(avail, t.fires, 0),
            &burst(lat, t.fires, 0),
            vec![
                expect.alerts_at(HISTORY + t.quiet, &[]),
                expect.alerts_at(HISTORY + t.fires, &firing),
            ],
            vec![],
        ));
    }
    groups
}

/// Runs every threshold case of `thresholds` in one promtool file evaluated every `interval`
/// minutes.
fn assert_thresholds(thresholds: &[Threshold], interval: u32) {
    let rules = customer_api_rules();
    let expect = Expect { rules: &rules };
    let groups = thresholds
        .iter()
        .flat_map(|t| threshold_groups(&expect, t))
        .collect();
    assert_promtool_tests_pass(&rules, &[test_file(interval, groups)]);
}

#[test]
fn burn_alerts_page_only_for_a_sustained_burn_above_the_factor() {
    assert_thresholds(&PAGE_THRESHOLDS, 5);
}

#[test]
fn burn_alerts_ticket_only_for_a_sustained_burn_above_the_factor() {
    assert_thresholds(&TICKET_THRESHOLDS, 60);
}

// ---------------------------------------------------------------------------------------------
// 3. Burn-rate alerts: short windows
// ---------------------------------------------------------------------------------------------
//
// The short window is what lets an alert clear soon after the burn stops. Each case burns both
// SLOs until the alert fires, stops, and checks a little more than one short window later
// that the alert is gone although its long window alone is still above the factor (asserted
// with `> bool`), and before a longer short window could have recovered.

#[test]
fn burn_alerts_clear_once_the_short_window_recovers() {
    let rules = customer_api_rules();
    let e = Expect { rules: &rules };
    let both = |burn: &'static Burn| [(&AVAILABILITY, burn), (&LATENCY, burn)];
    let over = |minute: u32, window: &str, factor: f64| {
        vec![
            long_window_over(minute, &AVAILABILITY, window, factor),
            long_window_over(minute, &LATENCY, window, factor),
        ]
    };
    let h = HISTORY;
    let pages = vec![
        // 18x for 55m: 1h = 18 × 55/60 = 16.5 > 14.4 pages. 10m after it stops the 5m window is
        // clean while the hour still holds 50m of burn: 18 × 50/60 = 15 > 14.4.
        test_group(
            "page 1h/5m clears 10m after an 18x burn stops",
            "1m",
            &burst(18.0, 55, 10),
            &burst(18.0, 55, 10),
            vec![
                e.alerts_at(h + 55, &both(&PAGE_1H)),
                e.alerts_at(h + 65, &[]),
            ],
            over(h + 65, "1h", 14.4),
        ),
        // 12x for 200m: 6h = 12 × 200/360 = 6.7 > 6 pages (12 < 14.4: no fast page). 35m after
        // it stops the 30m window is clean while the 6h window still says 6.7.
        test_group(
            "page 6h/30m clears 35m after a 12x burn stops",
            "1m",
            &burst(12.0, 200, 35),
            &burst(12.0, 200, 35),
            vec![
                e.alerts_at(h + 200, &both(&PAGE_6H)),
                e.alerts_at(h + 235, &[]),
            ],
            over(h + 235, "6h", 6.0),
        ),
    ];
    let tickets = vec![
        // 5x for 16h: 1d = 5 × 16/24 = 3.3 > 3 and 3d = 5 × 16/72 = 1.1 > 1, both tickets
        // (5 < 6: no page). 2h15m after it stops the 2h window is clean (1d still 3.3) but the
        // 6h window still holds 3h45m of burn (5 × 3.75/6 = 3.1 > 1, and > 3, so a 1d ticket
        // gated by a 6h window would still fire): only the 3d ticket. 6h15m after, the 6h
        // window is clean too (3d still 1.1): nothing.
        test_group(
            "ticket 1d/2h clears 2h15m and ticket 3d/6h 6h15m after a 5x burn stops",
            "1m",
            &burst(5.0, 16 * 60, 6 * 60 + 15),
            &burst(5.0, 16 * 60, 6 * 60 + 15),
            vec![
                e.alerts_at(
                    h + 16 * 60,
                    &[
                        (&AVAILABILITY, &TICKET_1D),
                        (&AVAILABILITY, &TICKET_3D),
                        (&LATENCY, &TICKET_1D),
                        (&LATENCY, &TICKET_3D),
                    ],
                ),
                e.alerts_at(h + 18 * 60 + 15, &both(&TICKET_3D)),
                e.alerts_at(h + 22 * 60 + 15, &[]),
            ],
            [
                over(h + 18 * 60 + 15, "1d", 3.0),
                over(h + 22 * 60 + 15, "3d", 1.0),
            ]
            .concat(),
        ),
    ];
    assert_promtool_tests_pass(&rules, &[test_file(5, pages), test_file(15, tickets)]);
}

// ---------------------------------------------------------------------------------------------
// 4. Every recorded error ratio spans the window its name says
// ---------------------------------------------------------------------------------------------
//
// The alerts above can only tell a window's length to within what a burn rate can show. This
// evaluates each rendered `slo:sli_error:ratio_rate<w>` expression directly (promtool evaluates
// a `promql_expr_test` at any instant, independent of the rule evaluation interval) 0.6 × w
// into a 10x burn that follows three good days: a window of exactly w sees 10 × 0.6 = 6 times
// the budget; a window of any other length sees something else.

#[test]
fn recorded_error_ratios_span_their_windows() {
    let rules = customer_api_rules();
    let e = Expect { rules: &rules };
    let windows = [
        ("5m", 5),
        ("30m", 30),
        ("1h", 60),
        ("2h", 120),
        ("6h", 360),
        ("1d", 1440),
        ("3d", 4320),
    ];
    let mut exprs = Vec::new();
    for slo in [&AVAILABILITY, &LATENCY] {
        for (w, minutes) in windows {
            let rule = e.recording_expr(slo, &format!("slo:sli_error:ratio_rate{w}"));
            let expected = 6.0 * slo.budget;
            exprs.push(json!({
                "eval_time": format!("{}m", HISTORY + minutes * 6 / 10),
                "expr": format!("abs(({rule}) - {expected}) < bool 1e-9"),
                "exp_samples": [{ "labels": "{}", "value": 1 }],
            }));
        }
    }
    let burn = burst(10.0, 4320 * 6 / 10, 0);
    let group = test_group(
        "ratio_rate<w> is measured over w",
        "1m",
        &burn,
        &burn,
        vec![],
        exprs,
    );
    // The rules themselves are not what is tested here: evaluate them rarely, but on the last
    // eval_time (3d + 43h12m = 96 × 72m).
    assert_promtool_tests_pass(&rules, &[test_file(72, vec![group])]);
}

// ---------------------------------------------------------------------------------------------
// 5. Error budget remaining, and a service without errors
// ---------------------------------------------------------------------------------------------

#[test]
fn error_budget_remaining_is_measured_over_the_30d_window() {
    let rules = customer_api_rules();
    let e = Expect { rules: &rules };
    let day = 24; // samples per day at a 1h interval
    let month = 30 * day;
    let groups = vec![
        // Hourly samples over exactly 30 days: the 30d window at day 30 spans all of them.
        // Availability: 15 good days, then 15 days at exactly the budget → 0.05% over the
        // window → half the budget left. A rule over any shorter window would see 0.1% → 0.
        // Latency: 24 good days, then 6 days at 2x the budget (10% slow) → 2% over the window
        // → 1 - 0.02/0.05 = 0.6 left.
        test_group(
            "30d budget: half used by 15 days at 1x, 40% used by 6 days at 2x",
            "1h",
            &[phase(15 * day, 0.0), phase(15 * day, 1.0)],
            &[phase(24 * day, 0.0), phase(6 * day, 2.0)],
            vec![],
            vec![
                budget_remaining(month * 60, &AVAILABILITY, 0.5),
                budget_remaining(month * 60, &LATENCY, 0.6),
            ],
        ),
        // A steady 0.05% error ratio (and 2.5% slow requests): half of each budget left.
        test_group(
            "30d budget: steady half-budget burn leaves half",
            "1h",
            &[phase(month, 0.5)],
            &[phase(month, 0.5)],
            vec![],
            vec![
                budget_remaining(month * 60, &AVAILABILITY, 0.5),
                budget_remaining(month * 60, &LATENCY, 0.5),
            ],
        ),
        // Three days without a single error: no `app_errors_total` series exists at all. The
        // error ratio must be exactly 0 (not absent: `or vector(0)`), the budget exactly 1,
        // and nothing may fire, for both SLOs.
        test_group(
            "no errors at all: ratio 0, full budget, no alerts",
            "1m",
            &[phase(HISTORY, 0.0)],
            &[phase(HISTORY, 0.0)],
            vec![e.alerts_at(HISTORY, &[])],
            vec![
                recorded(HISTORY, "slo:sli_error:ratio_rate5m", &AVAILABILITY, 0.0),
                recorded(HISTORY, "slo:sli_error:ratio_rate30d", &AVAILABILITY, 0.0),
                recorded(HISTORY, "slo:sli_error:ratio_rate5m", &LATENCY, 0.0),
                recorded(
                    HISTORY,
                    "slo:error_budget_remaining:ratio",
                    &AVAILABILITY,
                    1.0,
                ),
                recorded(HISTORY, "slo:error_budget_remaining:ratio", &LATENCY, 1.0),
                recorded(HISTORY, "slo:objective:ratio", &AVAILABILITY, 0.999),
                recorded(HISTORY, "slo:objective:ratio", &LATENCY, 0.95),
            ],
        ),
    ];
    assert_promtool_tests_pass(&rules, &[test_file(60, groups)]);
}

// ---------------------------------------------------------------------------------------------
// 6. The harness can fail
// ---------------------------------------------------------------------------------------------
//
// A 13x availability burn from the first sample (no history, so every window sees 13x) fires
// the 6h page and both tickets but not the 14.4x page. The correct expectation must pass and
// each single wrong one must fail: otherwise the tests above prove nothing.

#[test]
fn harness_fails_on_a_wrong_expectation() {
    let rules = customer_api_rules();
    let e = Expect { rules: &rules };
    let a = &AVAILABILITY;
    let good = [(a, &PAGE_6H), (a, &TICKET_1D), (a, &TICKET_3D)];
    let with_page = [
        (a, &PAGE_1H),
        (a, &PAGE_6H),
        (a, &TICKET_1D),
        (a, &TICKET_3D),
    ];
    let file = |alerts: Vec<Value>, exprs: Vec<Value>| {
        test_file(
            1,
            vec![test_group(
                "13x burn",
                "1m",
                &[phase(70, 13.0)],
                &[phase(70, 0.0)],
                alerts,
                exprs,
            )],
        )
    };

    // Control: the true state of affairs passes (1 - 13 × 0.001 / 0.001 = -12 budget left).
    assert_promtool_tests_pass(
        &rules,
        &[file(
            vec![e.alerts_at(65, &good)],
            vec![budget_remaining(65, a, -12.0)],
        )],
    );

    // Each wrong expectation, and what promtool must name in its failure report.
    for (what, wrong, marker) in [
        (
            "an alert that cannot fire (13 < 14.4)",
            file(vec![e.alerts_at(65, &with_page)], vec![]),
            "alertname: SLOErrorBudgetBurn",
        ),
        (
            "a missing alert",
            file(vec![e.alerts_at(65, &good[1..])], vec![]),
            "alertname: SLOErrorBudgetBurn",
        ),
        (
            "a wrong budget remaining",
            file(vec![], vec![budget_remaining(65, a, 0.5)]),
            "slo:error_budget_remaining:ratio",
        ),
    ] {
        let (out, _dir) = run_promtool_tests(&rules, &[wrong]);
        assert!(
            !out.status.success(),
            "promtool test rules passed despite {what}\n{}",
            show(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("FAILED") && stderr.contains(marker),
            "expected promtool to report the failure of {what}\n{}",
            show(&out)
        );
    }
}
