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
    if run.code != Some(0) || run.json["status"] != "NoData" || slos.len() != 3 {
        return Err(format!(
            "slo status without traffic: exit {:?}: {}",
            run.code, run.json
        ));
    }
    let status = project.run(&["status", "-o", "json"])?;
    let rows = status.json["slos"].as_array().cloned().unwrap_or_default();
    if rows.len() != 3
        || rows
            .iter()
            .any(|r| r["state"] != "NoData" || !r["budgetRemaining"].is_null())
    {
        return Err(format!("status without traffic: {}", status.json));
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
    ("scrape", 2),
    ("rules", 3),
    ("alertmanager", 3),
    ("dashboard", 2),
    ("hpa", 1),
    ("ingress", 1),
    ("slo", 3),
];

/// `validate` on the converged platform with traffic: every check passes (once the SLO rules
/// have counted the traffic), JSON and JUnit list the same checks, within 3 s.
/// `traffic`: pods to send a few requests each round, so every rate has samples.
pub async fn validate_passes(project: &Project, traffic: &[std::net::SocketAddr]) -> TestResult {
    let junit = project.dir.path().join("validate.xml");
    let junit_arg = junit.to_string_lossy().to_string();
    let run = validate_until_it_passes(
        project,
        "the converged platform",
        &["--junit", &junit_arg],
        || async {
            for addr in traffic {
                crate::monitoring::traffic(*addr, 5).await;
            }
        },
    )
    .await?;
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
    // The platform's receivers, as the operator names them from the rendered
    // AlertmanagerConfig of each monitored environment.
    let receivers = check(&list, "alertmanager/receivers")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default();
    if ![
        "prod/alerting/oncall-slack",
        "practice/alerting/oncall-email",
    ]
    .iter()
    .all(|r| receivers.contains(r))
    {
        return Err(format!("the receivers check: {receivers}"));
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
    // `status` shows the spent budget and calls the platform Degraded for it.
    let status = project.run(&["status", "-o", "json"])?;
    let row = status.json["slos"].as_array().and_then(|rows| {
        rows.iter()
            .find(|r| r["environment"] == "prod" && r["name"] == "customer-api-availability")
    });
    if status.json["status"] != "Degraded"
        || row.is_none_or(|r| {
            r["state"] != "Exhausted" || r["budgetRemaining"].as_f64().is_none_or(|b| b > 0.0)
        })
    {
        return Err(format!("status with a spent budget: {}", status.json));
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
            if !done {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
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

/// Exactly one request in a hundred answered 500 by the service's own fault injection (the
/// error rate set to 1 for one request, then back to 0: `/admin/` requests are not counted),
/// about 50 requests a second, until stopped: a known error ratio with no sampling noise.
pub struct OnePercent {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u64, u64)>>,
    pub started: std::time::Instant,
}

impl OnePercent {
    pub fn start(addr: std::net::SocketAddr, token: String) -> OnePercent {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut sent, mut errors) = (0u64, 0u64);
            while !flag.load(Ordering::Relaxed) {
                let cycle = std::time::Instant::now();
                let _ = blocking_faults(addr, &token, 1.0);
                if blocking(
                    addr,
                    "GET /customers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                )
                .is_some_and(|r| r.starts_with("HTTP/1.1 500"))
                {
                    errors += 1;
                }
                let _ = blocking_faults(addr, &token, 0.0);
                sent += 1;
                for _ in 0..99 {
                    if blocking(
                        addr,
                        "GET /customers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    )
                    .is_some_and(|r| r.starts_with("HTTP/1.1 500"))
                    {
                        errors += 1;
                    }
                    sent += 1;
                }
                if let Some(rest) = Duration::from_secs(2).checked_sub(cycle.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
            (sent, errors)
        });
        OnePercent {
            stop,
            thread: Some(thread),
            started: std::time::Instant::now(),
        }
    }

    /// Stops the traffic: the requests sent and the errors answered.
    pub fn stop(&mut self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for OnePercent {
    fn drop(&mut self) {
        self.stop();
    }
}

fn blocking(addr: std::net::SocketAddr, request: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn blocking_faults(addr: std::net::SocketAddr, token: &str, rate: f64) -> Option<()> {
    let body = format!(r#"{{"errorRate":{rate},"latencyMs":0}}"#);
    let answer = blocking(
        addr,
        &format!(
            "PUT /admin/faults HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )?;
    answer.starts_with("HTTP/1.1 200").then_some(())
}

/// Until the traffic has run 6 minutes (and a little: the 5m window full of it).
pub async fn six_minutes_of(traffic: &OnePercent) {
    let six = Duration::from_secs(6 * 60 + 10);
    if let Some(rest) = six.checked_sub(traffic.started.elapsed()) {
        eprintln!(
            "for real: waiting {:.0} s more of 1% errors in dev",
            rest.as_secs_f64()
        );
        tokio::time::sleep(rest).await;
    }
}

/// After at least 6 minutes of exactly 1% errors in dev (objective 99.9%): the 5m burn rate
/// is 10 ± 1, each page pair's `over` is what Prometheus' own alert says (firing exactly when
/// over), the report lists the same alerts, and `validate --env dev` judges dev alone.
pub async fn one_percent_burns_ten_times(
    project: &Project,
    prometheus: &platformctl::prom::Client,
    traffic: &mut OnePercent,
) -> TestResult {
    six_minutes_of(traffic).await;
    let last = std::sync::Mutex::new(Value::Null);
    let agreed = wait_for(
        "slo status and Prometheus to agree on dev's page alerts",
        Duration::from_secs(30),
        || async {
            let run = project.run(&["slo", "status", "--env", "dev", "-o", "json"])?;
            let slo = run.json["slos"][0].clone();
            *last.lock().expect("last") = json!({"code": run.code, "slo": slo});
            let alerts = prometheus.alerts().await.map_err(|e| e.to_string())?;
            let firing = |long: &str| {
                alerts.iter().any(|a| {
                    let l = |k: &str| a.labels.get(k).map(String::as_str);
                    l("alertname") == Some("SLOErrorBudgetBurn")
                        && l("namespace") == Some("practice")
                        && l("long_window") == Some(long)
                        && a.state == platformctl::prom::AlertState::Firing
                })
            };
            let burn = slo["burn"].as_array().cloned().unwrap_or_default();
            let pages: Vec<&Value> = burn.iter().filter(|b| b["severity"] == "page").collect();
            let reported = |long: &str| {
                slo["alerts"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|a| a["longWindow"] == long && a["state"] == "firing")
                })
            };
            let five = burn
                .first()
                .and_then(|b| b["short"].as_f64())
                .unwrap_or(0.0);
            let consistent = pages.len() == 2
                && pages.iter().all(|b| {
                    let long = b["longWindow"].as_str().unwrap_or_default();
                    b["over"].as_bool() == Some(firing(long)) && reported(long) == firing(long)
                });
            Ok(slo["name"] == "customer-api-availability"
                && (9.0..=11.0).contains(&five)
                && consistent)
        },
    )
    .await;
    let (sent, errors) = traffic.stop();
    let seen = last.lock().expect("last").clone();
    eprintln!(
        "for real: dev, {sent} requests with {errors} errors over {:.0} s: 5m burn {}",
        traffic.started.elapsed().as_secs_f64(),
        seen["slo"]["burn"][0]["short"]
    );
    agreed.map_err(|e| format!("{e}: {seen}"))?;
    // 1h of history is all 1% too (dev had little traffic before): the fast page stays quiet
    // at 10x, the 6h/30m page fires.
    if seen["slo"]["burn"][0]["over"] != false || seen["slo"]["burn"][1]["over"] != true {
        return Err(format!("dev's page pairs at 10x: {seen}"));
    }
    let exit = seen["code"].as_i64();
    let state = seen["slo"]["state"].as_str().unwrap_or_default();
    if exit != Some(if state == "Exhausted" { 1 } else { 0 }) {
        return Err(format!("slo status exits {exit:?} for a {state} budget"));
    }
    let run = project.run(&["validate", "--env", "dev", "-o", "json"])?;
    let list = checks(&run);
    if run.json["environment"] != "dev"
        || list.iter().any(|c| c["environment"] == "prod")
        || check(&list, "slo/dev/customer-api-availability").is_none()
        || check(&list, "alertmanager/reachable").is_none()
    {
        return Err(format!("validate --env dev: {}", run.json));
    }
    Ok(())
}

/// The page alerts reached both receivers through the real Alertmanager and the rendered
/// AlertmanagerConfig: a Slack-shaped JSON post and a mail, each naming the alert.
pub async fn alerts_reach_slack_and_email(
    webhook: &crate::receivers::Webhook,
    smtp: &crate::receivers::Smtp,
) -> TestResult {
    wait_for(
        "a page in the Slack webhook and in the SMTP server",
        Duration::from_secs(150),
        || async {
            let posted = webhook.bodies.lock().expect("bodies").iter().any(|b| {
                serde_json::from_str::<Value>(b).is_ok_and(|v| {
                    v["attachments"][0]["title"]
                        .as_str()
                        .is_some_and(|t| t.contains("SLOErrorBudgetBurn"))
                })
            });
            let mailed = smtp
                .messages()
                .iter()
                .any(|m| m.contains("SLOErrorBudgetBurn") && m.contains("oncall@platform.test"));
            Ok(posted && mailed)
        },
    )
    .await
    .map_err(|e| {
        format!(
            "{e}: webhook got {:?}; mails {:?}",
            webhook.bodies.lock().expect("bodies"),
            smtp.messages()
                .iter()
                .map(|m| m.lines().take(8).collect::<Vec<_>>().join(" | "))
                .collect::<Vec<_>>()
        )
    })
}

/// `--prometheus-url` and `--alertmanager-url` reach the same servers at their pods'
/// addresses (as a platform that publishes them gives them): the same checks, the same
/// verdicts as through the port-forwards.
pub async fn published_urls_give_the_same_answers(
    client: &Client,
    project: &Project,
) -> TestResult {
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "monitoring");
    let ip = |selector: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&kube::api::ListParams::default().labels(selector))
                .await
                .map_err(|e| e.to_string())?
                .items
                .iter()
                .find(|p| platformctl::kube::portforward::is_ready(p))
                .and_then(|p| p.status.as_ref()?.pod_ip.clone())
                .ok_or_else(|| format!("no Ready pod {selector} with an IP"))
        }
    };
    let prometheus = format!(
        "http://{}:9090",
        ip("app.kubernetes.io/name=prometheus").await?
    );
    let alertmanager = format!(
        "http://{}:9093",
        ip("app.kubernetes.io/name=alertmanager").await?
    );
    let forwarded = project.run(&["validate", "-o", "json"])?;
    let published = project.run(&[
        "validate",
        "-o",
        "json",
        "--prometheus-url",
        &prometheus,
        "--alertmanager-url",
        &alertmanager,
    ])?;
    let verdicts = |run: &Run| -> Vec<(String, String)> {
        checks(run)
            .iter()
            .map(|c| (c["name"].to_string(), c["verdict"].to_string()))
            .collect()
    };
    if published.code != forwarded.code || verdicts(&published) != verdicts(&forwarded) {
        return Err(format!(
            "validate at {prometheus} and {alertmanager}: {}\nthrough port-forwards: {}",
            published.json, forwarded.json
        ));
    }
    let slo = project.run(&[
        "slo",
        "status",
        "-o",
        "json",
        "--prometheus-url",
        &prometheus,
    ])?;
    if slo.code != Some(0) || slo.json["slos"].as_array().is_none_or(|s| s.len() != 3) {
        return Err(format!("slo status at {prometheus}: {}", slo.json));
    }
    Ok(())
}

/// The microservices platform, every pod a real service process: with some traffic to each
/// service (a route each answers without calling another), `validate` passes every check of
/// both environments: 8 blue-green Rollouts Healthy, 8 scrape pools, 8 dashboards, 3 SLOs.
pub async fn microservices_validate_passes(client: &Client, project: &Project) -> TestResult {
    const ROUTES: [(&str, &str); 4] = [
        ("auth", "/verify"),
        ("orders", "/orders/none"),
        ("payments", "/charges/none"),
        ("notifications", "/notifications"),
    ];
    let mut addrs = Vec::new();
    for (ns, replicas) in [("shop-dev", 1), ("shop", 2)] {
        for (service, path) in ROUTES {
            let pods = crate::monitoring::serving(client, ns, service, 8080, replicas).await?;
            addrs.extend(pods.addrs.iter().map(|a| (*a, path)));
        }
    }
    let addrs = &addrs;
    let run = validate_until_it_passes(project, "the microservices platform", &[], || async move {
        for (addr, path) in addrs {
            for _ in 0..5 {
                let _ = crate::monitoring::get(*addr, path).await;
            }
        }
    })
    .await?;
    eprintln!(
        "microservices: validate passed in {:.2} s",
        run.took.as_secs_f64()
    );
    let list = checks(&run);
    for (category, n) in [
        ("application", 2),
        ("rollout", 8),
        ("scrape", 8),
        ("dashboard", 8),
        ("slo", 3),
    ] {
        let found = list.iter().filter(|c| c["category"] == category).count();
        if found != n {
            return Err(format!(
                "{found} `{category}` checks, want {n}: {}",
                run.json
            ));
        }
    }
    if run.took > Duration::from_secs(3) {
        return Err(format!("validate took {:?}, over 3 s", run.took));
    }
    Ok(())
}

/// Runs `validate -o json <args>` (after `traffic` each round, a second apart) until it exits 0
/// with every check passing, for up to two minutes; the passing run.
async fn validate_until_it_passes<F, Fut>(
    project: &Project,
    what: &str,
    args: &[&str],
    mut traffic: F,
) -> Result<Run, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut full = vec!["validate", "-o", "json"];
    full.extend_from_slice(args);
    let last = std::sync::Mutex::new(None);
    let waited = wait_for(
        &format!("validate to pass on {what}"),
        Duration::from_secs(120),
        || {
            let ran = traffic();
            let (full, last) = (&full, &last);
            async move {
                ran.await;
                let run = project.run(full)?;
                let passed =
                    run.code == Some(0) && checks(&run).iter().all(|c| c["verdict"] == "pass");
                *last.lock().expect("last") = Some(run);
                if !passed {
                    // (each run opens a port-forward stream per request: no need to hurry)
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Ok(passed)
            }
        },
    )
    .await;
    let run = last
        .lock()
        .expect("last")
        .take()
        .ok_or("validate never ran")?;
    waited.map_err(|e| format!("{e}: exit {:?}: {}\n{}", run.code, run.json, run.stderr))?;
    Ok(run)
}

/// Connections of this host's network namespace to `ip:port` that are established
/// (`/proc/net/tcp`: addresses in hex, the IPv4 address's bytes in host order).
fn established_to(ip: std::net::Ipv4Addr, port: u16) -> usize {
    let want = format!("{:08X}:{port:04X}", u32::from_le_bytes(ip.octets()));
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == want && f[3] == "01"
        })
        .count()
}

/// A run of `validate` leaves no connection to Prometheus open behind it: every request
/// through the port-forward asks the server to close (a port-forward cannot pass on a
/// half-close, and Prometheus would keep each for 5 minutes, refusing new ones at its limit
/// of 512 a few hundred requests later: a CI loop of `validate` hung so).
pub async fn validate_leaves_no_connection_open(client: &Client, project: &Project) -> TestResult {
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "monitoring");
    let ip: std::net::Ipv4Addr = pods
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/name=prometheus"))
        .await
        .map_err(|e| e.to_string())?
        .items
        .iter()
        .find_map(|p| p.status.as_ref()?.pod_ip.as_deref()?.parse().ok())
        .ok_or("no Prometheus pod with an IP")?;
    let before = established_to(ip, 9090);
    for _ in 0..5 {
        project.run(&["validate", "-o", "json"])?;
    }
    let after = established_to(ip, 9090);
    // (the Rollouts controller keeps its own connections to Prometheus alive between
    // measurements: only growth counts)
    if after > before + 2 {
        return Err(format!(
            "{after} connections to Prometheus at {ip}:9090 are open after 5 runs of validate ({before} before)"
        ));
    }
    Ok(())
}
