//! The services' signals, read by a real Prometheus (Debian's `prometheus` package) the way the
//! reference platform reads them.
//!
//! Two customer-api processes stand for the stable and the canary pods of one Rollout: the same
//! `namespace` and `service`, told apart by `rollouts_pod_template_hash` (the label the rendered
//! ServiceMonitor adds by relabeling; here the scrape config's target labels). The canary injects
//! 20% errors and 400 ms of latency. After a minute of known traffic, the reference queries, the
//! rendered AnalysisTemplate's queries and the rendered SLO rules (loaded into Prometheus as they
//! are) must say what that traffic implies.

use std::collections::BTreeSet;
mod common;

use common::Service;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Requests per second sent to each instance.
const RATE: u64 = 40;
const ADMIN_TOKEN: &str = "test-admin-token";
/// Long enough for the reference queries' `[1m]` windows to be full.
const TRAFFIC: Duration = Duration::from_secs(65);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A customer-api process in `prod`, and its address.
async fn start_service(envs: &[(&str, &str)]) -> (Service, SocketAddr) {
    let mut env = vec![("PLATFORM_ENVIRONMENT", "prod".to_string())];
    env.extend(envs.iter().map(|(k, v)| (*k, v.to_string())));
    let service = Service::start("customer-api", env!("CARGO_BIN_EXE_customer-api"), &env).await;
    let addr = service.addr().parse().expect("an address");
    (service, addr)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The rendered PrometheusRule's groups, as a Prometheus rule file.
fn rendered_rules(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("envs/prod/customer-api/slo-rules.yaml"))
        .expect("slo rules");
    let rule: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let file = dir.join("rules.yml");
    let groups = serde_yaml::to_string(&serde_yaml::Mapping::from_iter([(
        "groups".into(),
        rule["spec"]["groups"].clone(),
    )]))
    .expect("yaml");
    std::fs::write(&file, groups).expect("write rules");
    file
}

/// The rendered AnalysisTemplate's queries by metric name, for one pod-template hash.
fn analysis_queries(hash: &str) -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(repo_root().join("envs/prod/customer-api/analysis-template.yaml"))
            .expect("analysis template");
    let template: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    template["spec"]["metrics"]
        .as_sequence()
        .expect("metrics")
        .iter()
        .map(|m| {
            let query = m["provider"]["prometheus"]["query"]
                .as_str()
                .expect("query");
            (
                m["name"].as_str().expect("name").to_string(),
                query.replace("{{args.pod-template-hash}}", hash),
            )
        })
        .collect()
}

fn start_prometheus(
    dir: &Path,
    stable: SocketAddr,
    canary: SocketAddr,
    rules: &Path,
) -> (Killed, String) {
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{rules}]
scrape_configs:
  - job_name: customer-api
    honor_labels: true
    static_configs:
      - targets: ['{stable}']
        labels: {{namespace: prod, rollouts_pod_template_hash: stable}}
      - targets: ['{canary}']
        labels: {{namespace: prod, rollouts_pod_template_hash: canary}}
",
        rules = rules.display()
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).expect("log"))
        .spawn()
        .expect("prometheus is not installed: tests/run installs Debian's prometheus package");
    (Killed(child), format!("http://127.0.0.1:{port}"))
}

async fn query(http: &reqwest::Client, prometheus: &str, promql: &str) -> Vec<Value> {
    let body: Value = http
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .expect("query Prometheus")
        .json()
        .await
        .expect("a JSON answer");
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The single value of an instant query.
async fn scalar(http: &reqwest::Client, prometheus: &str, promql: &str) -> f64 {
    let result = query(http, prometheus, promql).await;
    assert_eq!(result.len(), 1, "{promql} gave {result:?}");
    result[0]["value"][1]
        .as_str()
        .expect("value")
        .parse()
        .expect("a number")
}

fn assert_near(what: &str, got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: got {got}, want {want} ± {tolerance}"
    );
}

/// `RATE` requests a second to `GET /customers/1` of `addr` until `end`; returns (sent, failed
/// to send).
async fn drive(http: reqwest::Client, addr: SocketAddr, end: Instant) -> (u64, u64) {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let mut requests = Vec::new();
    while Instant::now() < end {
        tick.tick().await;
        let http = http.clone();
        requests.push(tokio::spawn(async move {
            http.get(format!("http://{addr}/customers/1"))
                .send()
                .await
                .is_ok()
        }));
    }
    let mut failed = 0;
    for r in &mut requests {
        if !r.await.unwrap_or(false) {
            failed += 1;
        }
    }
    (requests.len() as u64, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_reads_what_the_traffic_implies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_stable, stable) = start_service(&[]).await;
    let (_canary, canary) =
        start_service(&[("FAULT_LATENCY_MS", "400"), ("ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    let rules = rendered_rules(dir.path());
    let (_prometheus, prom) = start_prometheus(dir.path(), stable, canary, &rules);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");

    // Prometheus ready, the customer to read on each instance.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{prom}/-/ready"))
        .send()
        .await
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        assert!(
            Instant::now() < deadline,
            "Prometheus not ready: see {}",
            dir.path().join("prometheus.log").display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for addr in [stable, canary] {
        let created = http
            .post(format!("http://{addr}/customers"))
            .json(&serde_json::json!({"name": "Ada", "email": "ada@example.com"}))
            .send()
            .await
            .expect("create");
        assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    }
    // The canary's latency came from its configuration; its error rate is turned on at runtime,
    // through the admin endpoint, as an operator would.
    let set = http
        .put(format!("http://{canary}/admin/faults"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"errorRate": 0.2, "latencyMs": 400}))
        .send()
        .await
        .expect("set faults");
    assert_eq!(set.status(), reqwest::StatusCode::OK);

    let end = Instant::now() + TRAFFIC;
    let (a, b) = tokio::join!(
        drive(http.clone(), stable, end),
        drive(http.clone(), canary, end)
    );
    assert_eq!((a.1, b.1), (0, 0), "requests failed to send");
    // Two more scrapes and rule evaluations see the end of the traffic.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rate = (a.0 + b.0) as f64 / TRAFFIC.as_secs_f64();

    // The reference queries.
    let requests = scalar(&http, &prom, "sum(rate(http_requests_total[1m]))").await;
    assert_near("request rate", requests, rate, rate * 0.1);
    let errors = scalar(&http, &prom, "sum(rate(app_errors_total[1m]))").await;
    // Half the traffic goes to the canary, which fails 20% of it (binomial: ±3 sd is about 2.5%).
    assert_near(
        "error rate as a share of requests",
        errors / requests,
        0.1,
        0.025,
    );
    let p95 = scalar(
        &http,
        &prom,
        "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[5m])) by (le))",
    )
    .await;
    assert!(
        p95 > 0.3,
        "p95 {p95} should be above 0.3 s with 400 ms injected into half the traffic"
    );

    // The rendered AnalysisTemplate, for each version: the canary fails both conditions
    // (success rate >= 0.99, p95 <= 0.3), the stable version passes both.
    for (hash, success, p95_ok) in [("stable", true, true), ("canary", false, false)] {
        for (name, promql) in analysis_queries(hash) {
            let value = scalar(&http, &prom, &promql).await;
            match name.as_str() {
                "success-rate" => {
                    let want = if success { 1.0 } else { 0.8 };
                    assert_near(&format!("{hash} success-rate"), value, want, 0.05);
                    assert_eq!(value >= 0.99, success, "{hash} success-rate {value}");
                }
                "latency-p95" => {
                    assert_eq!(value <= 0.3, p95_ok, "{hash} latency-p95 {value}");
                    if !p95_ok {
                        assert!(
                            value > 0.4,
                            "{hash} latency-p95 {value}: 400 ms are injected"
                        );
                    }
                }
                other => panic!("unexpected analysis metric {other}"),
            }
        }
    }

    // The rendered SLO rules, evaluated by Prometheus on the scraped series.
    let availability = scalar(
        &http,
        &prom,
        r#"slo:sli_error:ratio_rate5m{slo="customer-api-availability"}"#,
    )
    .await;
    assert_near(
        "availability SLI error ratio (5m)",
        availability,
        0.1,
        0.025,
    );
    let latency = scalar(
        &http,
        &prom,
        r#"slo:sli_error:ratio_rate5m{slo="customer-api-latency"}"#,
    )
    .await;
    // Every canary request is slower than 0.3 s, no stable one is: the share of canary traffic.
    assert_near(
        "latency SLI error ratio (5m)",
        latency,
        b.0 as f64 / (a.0 + b.0) as f64,
        0.02,
    );
    let budget = scalar(
        &http,
        &prom,
        r#"slo:error_budget_remaining:ratio{slo="customer-api-availability"}"#,
    )
    .await;
    assert!(
        budget < 0.0,
        "a 10% error ratio against a 0.1% budget exhausts it: {budget}"
    );
    // Burn rates: availability burns ~100x its budget (every alert fires), latency ~10x (all but
    // the 14.4x page).
    for (slo, want) in [
        ("customer-api-availability", vec!["1", "14.4", "3", "6"]),
        ("customer-api-latency", vec!["1", "3", "6"]),
    ] {
        let firing = query(
            &http,
            &prom,
            &format!(r#"ALERTS{{alertname="SLOErrorBudgetBurn",slo="{slo}",alertstate="firing"}}"#),
        )
        .await;
        let burns: BTreeSet<&str> = firing
            .iter()
            .filter_map(|a| a["metric"]["burn_rate"].as_str())
            .collect();
        assert_eq!(
            burns.into_iter().collect::<Vec<_>>(),
            want,
            "{slo}: firing burn-rate alerts"
        );
    }
}
