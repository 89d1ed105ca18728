//! Operating what runs (on the platform of up_for_real.rs): `slo status` says an SLO without
//! traffic has no data, `validate` passes on the converged platform (JSON and JUnit agree),
//! `slo status` after 20% errors reports the spent budget and the fast-burn page as Prometheus
//! has it firing, and `validate` fails each check, naming its object, for a fault planted in
//! the cluster: an Application pointed at a missing path, a ServiceMonitor whose selector
//! matches nothing, a broken rule, a dashboard query with a typo, Alertmanager stopped.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

use crate::own::{Project, Run, argo};
use crate::support::{TestResult, wait_for};

fn checks(run: &Run) -> Vec<Value> {
    run.json["checks"].as_array().cloned().unwrap_or_default()
}

fn check<'a>(checks: &'a [Value], name: &str) -> Option<&'a Value> {
    checks.iter().find(|c| c["name"] == name)
}

/// Before any request is counted, each SLO says it has no data, and why.
pub fn slo_without_traffic_has_no_data(project: &Project) -> TestResult {
    let run = project.run(&["slo", "status", "-o", "json"])?;
    let slos = run.json["slos"].as_array().cloned().unwrap_or_default();
    if run.code != Some(0) || run.json["status"] != "NoData" || slos.len() != 2 {
        return Err(format!(
            "slo status without traffic: exit {:?}: {}",
            run.code, run.json
        ));
    }
    for s in &slos {
        let reason = s["reason"].as_str().unwrap_or_default();
        if s["state"] != "NoData"
            || !reason.contains("no requests")
            || s["windows"]
                .as_array()
                .is_none_or(|w| w.iter().any(|w| !w["sli"].is_null()))
        {
            return Err(format!("an SLO without traffic: {s}"));
        }
    }
    Ok(())
}

/// The kinds of check validate makes of the reference platform, and how many of each.
const EXPECTED: [(&str, usize); 9] = [
    ("application", 2),
    ("rollout", 2),
    ("scrape", 1),
    ("rules", 2),
    ("alertmanager", 3),
    ("dashboard", 1),
    ("hpa", 1),
    ("ingress", 1),
    ("slo", 2),
];

/// `validate` on the converged platform with traffic: every check passes (once the SLO rules
/// have counted the traffic), JSON and JUnit list the same checks, within 3 s.
pub async fn validate_passes(project: &Project) -> TestResult {
    let junit = project.dir.path().join("validate.xml");
    let junit_arg = junit.to_string_lossy().to_string();
    let last = std::sync::Mutex::new(None);
    let waited = wait_for(
        "validate to pass on the converged platform",
        Duration::from_secs(90),
        || async {
            let run = project.run(&["validate", "-o", "json", "--junit", &junit_arg])?;
            let passed = run.code == Some(0) && checks(&run).iter().all(|c| c["verdict"] == "pass");
            *last.lock().expect("last") = Some(run);
            Ok(passed)
        },
    )
    .await;
    let run = last
        .lock()
        .expect("last")
        .take()
        .ok_or("validate never ran")?;
    waited.map_err(|e| format!("{e}: exit {:?}: {}\n{}", run.code, run.json, run.stderr))?;
    eprintln!(
        "for real: validate passed in {:.2} s",
        run.took.as_secs_f64()
    );
    if run.took > Duration::from_secs(3) {
        return Err(format!("validate took {:?}, over 3 s", run.took));
    }
    let list = checks(&run);
    for (category, n) in EXPECTED {
        let found = list.iter().filter(|c| c["category"] == category).count();
        if found != n {
            return Err(format!(
                "{found} `{category}` checks, want {n}: {}",
                run.json
            ));
        }
    }
    if run.json["kind"] != "ValidationReport"
        || run.json["status"] != "Passed"
        || run.json["summary"]["passed"] != json!(list.len())
    {
        return Err(format!("report: {}", run.json));
    }
    let dashboard = check(&list, "dashboard/prod/customer-api-dashboard")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default();
    if !dashboard.starts_with("6 of 6 panel queries return data") {
        return Err(format!("the dashboard check: {dashboard}"));
    }
    junit_agrees(&junit, &list)
}

/// The JUnit file is XML with one test case per check, failures and skips counted as in the
/// report.
fn junit_agrees(path: &std::path::Path, list: &[Value]) -> TestResult {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc = roxmltree::Document::parse(&text).map_err(|e| format!("JUnit XML: {e}\n{text}"))?;
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .ok_or("no <testsuite>")?;
    let cases: Vec<roxmltree::Node> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let count = |verdict: &str| list.iter().filter(|c| c["verdict"] == verdict).count();
    let failed = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("skipped")))
        .count();
    let names: Vec<&str> = cases.iter().filter_map(|c| c.attribute("name")).collect();
    let want: Vec<&str> = list.iter().filter_map(|c| c["name"].as_str()).collect();
    if names != want
        || failed != count("fail")
        || skipped != count("skip")
        || suite.attribute("tests") != Some(&*list.len().to_string())
        || suite.attribute("failures") != Some(&*count("fail").to_string())
    {
        return Err(format!(
            "JUnit {names:?} ({failed} failed, {skipped} skipped) for {want:?}:\n{text}"
        ));
    }
    Ok(())
}

/// After 20% errors: the availability budget of the 30d window is spent (exit 1), the 1h/5m
/// pair burns over 14.4, and the page alert is firing as Prometheus has it.
pub fn slo_after_errors_is_exhausted_and_paging(project: &Project) -> TestResult {
    let junit = project.dir.path().join("slo.xml");
    let run = project.run(&[
        "slo",
        "status",
        "--service",
        "customer-api",
        "-o",
        "json",
        "--junit",
        &junit.to_string_lossy(),
    ])?;
    let slos = run.json["slos"].as_array().cloned().unwrap_or_default();
    let availability = slos
        .iter()
        .find(|s| s["name"] == "customer-api-availability")
        .ok_or_else(|| format!("no availability SLO: {}", run.json))?;
    let fast = &availability["burn"][0];
    let paging = availability["alerts"].as_array().is_some_and(|a| {
        a.iter()
            .any(|a| a["severity"] == "page" && a["shortWindow"] == "5m" && a["state"] == "firing")
    });
    if run.code != Some(1)
        || run.json["status"] != "Exhausted"
        || availability["state"] != "Exhausted"
        || fast["over"] != true
        || fast["short"].as_f64().is_none_or(|b| b < 14.4)
        || !paging
        || availability["exhaustionSeconds"] != json!(0.0)
    {
        return Err(format!(
            "slo status after 20% errors: exit {:?}: {availability}",
            run.code
        ));
    }
    let text = std::fs::read_to_string(&junit).map_err(|e| e.to_string())?;
    let doc = roxmltree::Document::parse(&text).map_err(|e| format!("JUnit XML: {e}"))?;
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    if failures < 1 {
        return Err(format!("the spent budget is not a JUnit failure:\n{text}"));
    }
    Ok(())
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Plants each fault, and `validate` fails each check for it with a message naming the object;
/// the dev Application, untouched, still passes. Then undoes what Argo CD does not.
pub async fn planted_faults_fail_their_checks(client: &Client, project: &Project) -> TestResult {
    let merge = |v: Value| Patch::Merge(v);
    let pp = PatchParams::default();
    // The prod Application reads a path that does not exist: Argo CD stops syncing prod, so
    // the faults planted there stay (self-heal needs the desired state).
    argo(client, "Application", "applications")
        .patch(
            "customer-platform-prod",
            &pp,
            &merge(json!({"spec": {"source": {"path": "envs/no-such-env"}}})),
        )
        .await
        .map_err(|e| format!("patching the prod Application: {e}"))?;
    wait_for(
        "the prod Application to report its missing path",
        Duration::from_secs(60),
        || async {
            let app = argo(client, "Application", "applications")
                .get("customer-platform-prod")
                .await
                .map_err(|e| e.to_string())?;
            Ok(app.data["status"]["conditions"]
                .to_string()
                .contains("ComparisonError"))
        },
    )
    .await?;
    let monitoring = |kind, plural| resource("monitoring.coreos.com", "v1", kind, plural);
    Api::<DynamicObject>::namespaced_with(client.clone(), "prod", &monitoring("ServiceMonitor", "servicemonitors"))
        .patch(
            "customer-api",
            &pp,
            &merge(json!({"spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "no-such-service"}}}})),
        )
        .await
        .map_err(|e| format!("patching the ServiceMonitor: {e}"))?;
    Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "prod",
        &monitoring("PrometheusRule", "prometheusrules"),
    )
    .patch(
        "customer-api-slo",
        &pp,
        &Patch::<Value>::Json(
            serde_json::from_value(
                json!([{"op": "add", "path": "/spec/groups/0/rules/-", "value": {
                    "record": "slo:probe_broken",
                    "expr": "label_replace(vector(1), \"a\", \"b\", \"c\", \"(\")"
                }}]),
            )
            .map_err(|e| e.to_string())?,
        ),
    )
    .await
    .map_err(|e| format!("patching the PrometheusRule: {e}"))?;
    let maps = Api::<ConfigMap>::namespaced(client.clone(), "prod");
    let dashboard = maps
        .get("customer-api-dashboard")
        .await
        .map_err(|e| format!("the dashboard ConfigMap: {e}"))?;
    let key = "customer-api-prod.json";
    let text = dashboard
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or("the dashboard ConfigMap has no JSON")?
        .replacen("http_requests_total", "http_requests_totl", 1);
    maps.patch(
        "customer-api-dashboard",
        &pp,
        &merge(json!({"data": {key: text}})),
    )
    .await
    .map_err(|e| format!("patching the dashboard: {e}"))?;
    let alertmanagers = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "monitoring",
        &monitoring("Alertmanager", "alertmanagers"),
    );
    alertmanagers
        .patch(
            "kube-prometheus-stack-alertmanager",
            &pp,
            &merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .map_err(|e| format!("stopping Alertmanager: {e}"))?;

    let want: [(&str, &str); 5] = [
        ("application/customer-platform-prod", "envs/no-such-env"),
        (
            "scrape/prod/customer-api",
            "ServiceMonitor `prod/customer-api` has no targets",
        ),
        (
            "rules/prod/customer-api-slo/slo-customer-api-availability",
            "rule `slo:probe_broken` fails: invalid regular expression",
        ),
        (
            "dashboard/prod/customer-api-dashboard",
            "`http_requests_totl`",
        ),
        ("alertmanager/reachable", "Alertmanager cannot be reached"),
    ];
    let last = std::sync::Mutex::new(None);
    let waited = wait_for(
        "validate to fail each planted fault",
        Duration::from_secs(120),
        || async {
            let run = project.run(&["validate", "-o", "json"])?;
            let list = checks(&run);
            let all = want.iter().all(|(name, says)| {
                check(&list, name).is_some_and(|c| {
                    c["verdict"] == "fail"
                        && c["message"].as_str().is_some_and(|m| m.contains(says))
                })
            });
            let dev = check(&list, "application/customer-platform-dev")
                .is_some_and(|c| c["verdict"] == "pass");
            let done = all && dev && run.code == Some(1) && run.json["status"] == "Failed";
            *last.lock().expect("last") = Some(run.json);
            Ok(done)
        },
    )
    .await;
    let seen = last.lock().expect("last").take();
    waited.map_err(|e| format!("{e}: {}", seen.unwrap_or_default()))?;

    // Undo: Alertmanager back, the Application at its path (Argo CD then heals the rest).
    alertmanagers
        .patch(
            "kube-prometheus-stack-alertmanager",
            &pp,
            &merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .map_err(|e| format!("restarting Alertmanager: {e}"))?;
    argo(client, "Application", "applications")
        .patch(
            "customer-platform-prod",
            &pp,
            &merge(json!({"spec": {"source": {"path": "envs/prod"}}})),
        )
        .await
        .map_err(|e| format!("restoring the prod Application: {e}"))?;
    Ok(())
}
