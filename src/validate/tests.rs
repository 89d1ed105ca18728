use serde_json::json;

use super::argo::rollout_verdict;
use super::dashboards::shape;
use super::promql::{grafana_variables, metric_names};
use super::*;

fn blue_green(auto: bool, reasons: &[&str], paused_by_hand: bool) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "orders", "namespace": "prod", "generation": 2},
        "spec": {"replicas": 2, "paused": paused_by_hand,
                 "strategy": {"blueGreen": {"activeService": "orders", "previewService": "orders-preview",
                                            "autoPromotionEnabled": auto}}},
        "status": {"observedGeneration": "2", "phase": "Paused", "message": "BlueGreenPause",
                   "readyReplicas": 2,
                   "pauseConditions": reasons.iter().map(|r| json!({"reason": r})).collect::<Vec<_>>()}
    })
}

#[test]
fn a_blue_green_gate_is_not_a_failure_a_pause_by_hand_is() {
    let (v, m) = rollout_verdict(&blue_green(false, &["BlueGreenPause"], false));
    assert_eq!(v, Verdict::Pass, "{m}");
    assert!(m.contains("blue-green gate"), "{m}");
    let (v, m) = rollout_verdict(&blue_green(false, &["BlueGreenPause"], true));
    assert_eq!(v, Verdict::Fail, "{m}");
    // With auto-promotion on, the strategy does not wait: a pause is not its doing.
    let (v, _) = rollout_verdict(&blue_green(true, &["BlueGreenPause"], false));
    assert_eq!(v, Verdict::Fail);
}

#[test]
fn a_canary_at_a_pause_step_passes_a_degraded_one_fails() {
    let mut r = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "customer-api", "namespace": "prod", "generation": 1},
        "spec": {"replicas": 3, "strategy": {"canary": {"steps": [
            {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}}]}}},
        "status": {"observedGeneration": "1", "phase": "Paused", "message": "CanaryPauseStep",
                   "currentStepIndex": 1, "readyReplicas": 3,
                   "pauseConditions": [{"reason": "CanaryPauseStep"}]}
    });
    let (v, m) = rollout_verdict(&r);
    assert_eq!(v, Verdict::Pass, "{m}");
    assert!(
        m.contains("step 1/4") && m.contains("waits for `promote`"),
        "{m}"
    );
    r["status"]["currentStepIndex"] = json!(3);
    let (v, m) = rollout_verdict(&r);
    assert_eq!(v, Verdict::Pass, "{m}");
    assert!(m.contains("for 30s"), "{m}");
    r["status"]["phase"] = json!("Degraded");
    r["status"]["message"] = json!("RolloutAborted: metric \"success-rate\" assessed Failed");
    r["status"]["pauseConditions"] = json!([]);
    let (v, m) = rollout_verdict(&r);
    assert_eq!(v, Verdict::Fail);
    assert!(m.starts_with("Degraded: RolloutAborted"), "{m}");
}

fn reference_dashboard() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/envs/prod/customer-api/dashboard.yaml"
    ))
    .expect("rendered dashboard");
    let cm: Value = serde_yaml::from_str(&text).expect("yaml");
    let json = cm["data"]["customer-api-prod.json"]
        .as_str()
        .expect("json")
        .to_string();
    serde_json::from_str(&json).expect("dashboard JSON")
}

#[test]
fn the_rendered_dashboard_is_a_dashboard_with_one_query_per_panel() {
    let queries = shape(&reference_dashboard()).expect("a dashboard");
    assert_eq!(queries.len(), 6);
    assert_eq!(queries[0].panel, "Request rate");
    assert!(queries[0].expr.starts_with("sum(rate(http_requests_total{"));
}

#[test]
fn what_grafana_would_not_load_is_said() {
    let mut d = reference_dashboard();
    d["uid"] = json!("x".repeat(41));
    assert!(shape(&d).expect_err("too long").contains("40 characters"));
    let mut d = reference_dashboard();
    d["panels"][2]
        .as_object_mut()
        .expect("panel")
        .remove("type");
    assert_eq!(
        shape(&d).expect_err("no type"),
        "panel `Latency p95` has no `type`"
    );
    assert!(
        shape(&json!({"panels": []}))
            .expect_err("untitled")
            .contains("title")
    );
}

#[test]
fn grafana_variables_are_filled_in() {
    let one_hour = std::time::Duration::from_secs(3_600);
    assert_eq!(
        grafana_variables(
            "rate(x[$__rate_interval]) + rate(y[${__interval}]) + z[$__range]",
            one_hour
        ),
        "rate(x[60s]) + rate(y[15s]) + z[3600s]"
    );
}

#[test]
fn objects_belong_to_their_environment() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/platform.yaml"))
        .expect("platform.yaml");
    let p = crate::config::parse(std::path::Path::new("platform.yaml"), &text).expect("valid");
    let tree = crate::render::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).expect("tree");
    let all = Rendered::of(&p, &tree, None).expect("parses");
    let prod = Rendered::of(&p, &tree, Some("prod")).expect("parses");
    assert!(all.kind("Rollout").count() == 2 && prod.kind("Rollout").count() == 1);
    let apps: Vec<_> = prod
        .kind("Application")
        .map(|(_, m)| m.name().to_string())
        .collect();
    assert_eq!(apps, ["customer-platform-prod"]);
    assert_eq!(prod.kind("HorizontalPodAutoscaler").count(), 1);
    let plural = |kind: &str| {
        let (_, m) = all.kind(kind).next().expect("rendered");
        resource_of(m).plural
    };
    assert_eq!(plural("Ingress"), "ingresses");
    assert_eq!(
        plural("HorizontalPodAutoscaler"),
        "horizontalpodautoscalers"
    );
    assert_eq!(plural("PrometheusRule"), "prometheusrules");
}

#[test]
fn counts_by_verdict() {
    let c = |v| Check::new("slo", "x", None, v, "");
    assert_eq!(
        counts(&[
            c(Verdict::Pass),
            c(Verdict::Fail),
            c(Verdict::Pass),
            c(Verdict::Skip)
        ]),
        (2, 1, 1)
    );
}

#[test]
fn the_metrics_a_query_selects() {
    let names = |e: &str| metric_names(e);
    assert_eq!(
        names(
            r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="prod",le=~"0.3"}[5m])))"#
        ),
        ["http_request_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            r#"(sum(rate(app_errors_total{a="b"}[1m])) or vector(0)) / sum(rate(http_requests_totl{x="}"}[1m]))"#
        ),
        ["app_errors_total", "http_requests_totl"]
    );
    assert_eq!(
        names(
            "slo:error_budget_remaining:ratio{slo=\"a\"} * on (slo) group_left (sli) up offset 5m"
        ),
        ["slo:error_budget_remaining:ratio", "up"]
    );
    assert_eq!(names("1 - 2e3 + vector(1)"), Vec::<String>::new());
}
