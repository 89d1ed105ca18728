//! The Prometheus and Alertmanager clients (`platformctl::prom`) against the real servers:
//! Debian's `prometheus` (`/usr/bin/prometheus`) and `prometheus-alertmanager`
//! (`/usr/bin/prometheus-alertmanager`) packages, started by the test on loopback ports with
//! 1 s scrape and evaluation intervals, so the whole run takes seconds (see `servers.rs`).
//!
//! Through the clients: typed query results (vector, matrix, scalar, string; NaN and the
//! infinities), Prometheus' own bad_data and execution errors, targets, rules with their health
//! (one fails at every evaluation), the alert in Prometheus and then in Alertmanager with its
//! labels and receiver, the Alertmanagers Prometheus sends to, Alertmanager's status, receivers
//! and a posted alert, and the typed errors for a bad matcher, a wrong route prefix, a server
//! that does not answer in time (the real Prometheus, stopped with SIGSTOP) and an address
//! nothing listens on.
//!
//! A missing binary is a failure, never a skip: `tests/run` installs both packages.

mod servers;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use platformctl::prom::{
    self, AlertState, Data, ErrorType, Health, Rule, RuleHealth, alertmanager,
};
use servers::{FIRING, RECEIVER, Servers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_alertmanager_answer_in_types() {
    let servers = Servers::start();
    let (prom, am) = servers.clients().await;
    let build = prom.build_info().await.expect("build info");
    assert!(
        build.version.starts_with(|c: char| c.is_ascii_digit()),
        "{build:?}"
    );
    targets(&servers, &prom).await;
    queries(&servers, &prom).await;
    prometheus_errors(&prom).await;
    rules(&servers, &prom).await;
    alert_reaches_alertmanager(&servers, &prom, &am).await;
    alertmanager_api(&servers, &am).await;
    status_errors(&servers, &am).await;
    no_answer_in_time(&servers, &prom).await;
}

/// The self-scrape, up, under the route prefix.
async fn targets(servers: &Servers, prom: &prom::Client) {
    let target = servers
        .eventually("the self-scrape target up", || async {
            let targets = prom.targets().await.map_err(|e| e.to_string())?;
            targets
                .active_targets
                .into_iter()
                .find(|t| t.labels.get("job").map(String::as_str) == Some("prometheus"))
                .filter(|t| t.health == Health::Up)
                .ok_or_else(|| "no active target of job `prometheus` is up".to_string())
        })
        .await;
    assert_eq!(target.scrape_pool, "prometheus");
    assert!(target.scrape_url.ends_with("/prom/metrics"), "{target:?}");
    assert_eq!(target.last_error, "");
    assert!(
        target.discovered_labels.contains_key("__address__"),
        "{target:?}"
    );
    assert!(target.last_scrape > "2000-01-01T00:00:00Z".parse().expect("time"));
}

/// Instant queries of each result type, the recording rule's series, a range query.
async fn queries(servers: &Servers, prom: &prom::Client) {
    let recorded = servers
        .eventually("the recording rule's series", || async {
            let answer = prom
                .query(r#"job:up:sum{job="prometheus"}"#, None)
                .await
                .map_err(|e| e.to_string())?;
            match answer.data.vector() {
                Some([one]) => Ok(one.clone()),
                _ => Err(format!("{:?}", answer.data)),
            }
        })
        .await;
    assert_eq!(recorded.value.value, 1.0);
    assert_eq!(recorded.metric["__name__"], "job:up:sum");

    let answer = prom.query("vector(2)", None).await.expect("vector(2)");
    assert!(answer.warnings.is_empty(), "{answer:?}");
    let samples = answer.data.vector().expect("a vector");
    assert_eq!(samples.len(), 1);
    assert!(samples[0].metric.is_empty());
    assert_eq!(samples[0].value.value, 2.0);
    let nan = prom.query("vector(0/0)", None).await.expect("NaN").data;
    assert!(nan.vector().expect("a vector")[0].value.value.is_nan());
    for (promql, want) in [
        ("1/0", f64::INFINITY),
        ("-1/0", f64::NEG_INFINITY),
        ("0.25", 0.25),
    ] {
        let data = prom.query(promql, None).await.expect(promql).data;
        assert_eq!(data.scalar(), Some(want), "{promql}: {data:?}");
    }
    let at: Timestamp = "2026-01-02T03:04:05.250Z".parse().expect("time");
    let data = prom.query("time()", Some(at)).await.expect("time()").data;
    assert_eq!(
        data.scalar(),
        Some(1767323045.25),
        "evaluated at the time given"
    );
    match prom.query(r#""hello""#, None).await.expect("a string").data {
        Data::String(text) => assert_eq!(text.value, "hello"),
        other => panic!("a string result: {other:?}"),
    }

    // Every step of the range, both ends included.
    let end = Timestamp::now();
    let start = end - Duration::from_secs(10);
    let answer = prom
        .query_range("vector(1)", start, end, Duration::from_secs(2))
        .await
        .expect("range query");
    let [series] = answer.data.as_slice() else {
        panic!("one series: {answer:?}");
    };
    assert_eq!(series.values.len(), 6, "{series:?}");
    assert!(series.values.iter().all(|p| p.value == 1.0), "{series:?}");
    let gaps: Vec<f64> = series
        .values
        .windows(2)
        .map(|w| w[1].time - w[0].time)
        .collect();
    assert!(gaps.iter().all(|g| (g - 2.0).abs() < 1e-9), "{gaps:?}");
}

/// Prometheus' own errors, typed, with its message.
async fn prometheus_errors(prom: &prom::Client) {
    let err = prom.query("sum(", None).await.expect_err("does not parse");
    match &err {
        prom::Error::Api {
            error_type,
            status,
            message,
            ..
        } => {
            assert_eq!((error_type, *status), (&ErrorType::BadData, 400), "{err}");
            assert!(message.contains("parse error"), "{message}");
        }
        other => panic!("bad_data: {other:?}"),
    }
    assert!(err.to_string().contains("GET /prom/api/v1/query"), "{err}");
    assert!(!err.is_unreachable());
    let ambiguous = r#"(label_replace(vector(1), "a", "1", "", "") or label_replace(vector(1), "a", "2", "", "")) + on() vector(1)"#;
    match prom.query(ambiguous, None).await {
        Err(prom::Error::Api {
            error_type: ErrorType::Execution,
            status: 422,
            message,
            ..
        }) => assert!(message.contains("many-to-one matching"), "{message}"),
        other => panic!("an execution error: {other:?}"),
    }
}

/// The group and its rules with their health, once all three have been evaluated.
async fn rules(servers: &Servers, prom: &prom::Client) {
    let groups = servers
        .eventually("every rule evaluated", || async {
            let groups = prom.rules().await.map_err(|e| e.to_string())?;
            let all: Vec<&Rule> = groups.iter().flat_map(|g| &g.rules).collect();
            if all.len() == 3 && all.iter().all(|r| r.health() != RuleHealth::Unknown) {
                Ok(groups)
            } else {
                Err(format!("{groups:?}"))
            }
        })
        .await;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "platformctl-test");
    assert!(groups[0].file.ends_with("rules.yml"), "{}", groups[0].file);
    let rules = &groups[0].rules;
    let names: Vec<&str> = rules.iter().map(Rule::name).collect();
    assert_eq!(names, ["job:up:sum", FIRING, "platformctl:broken"]);
    assert!(matches!(rules[0], Rule::Recording(_)));
    assert_eq!(rules[0].health(), RuleHealth::Ok);
    let Rule::Alerting(firing) = &rules[1] else {
        panic!("an alerting rule: {:?}", rules[1]);
    };
    assert_eq!(
        (firing.common.health, firing.state),
        (RuleHealth::Ok, AlertState::Firing)
    );
    assert_eq!(firing.alerts.len(), 1);
    assert_eq!(rules[2].health(), RuleHealth::Err);
    let error = rules[2].last_error();
    assert!(error.contains("same labelset"), "{error}");
}

/// The alert in Prometheus, then in Alertmanager, routed to the receiver.
async fn alert_reaches_alertmanager(
    servers: &Servers,
    prom: &prom::Client,
    am: &alertmanager::Client,
) {
    let alerts = prom.alerts().await.expect("alerts");
    let alert = alerts
        .iter()
        .find(|a| a.labels.get("alertname").map(String::as_str) == Some(FIRING))
        .unwrap_or_else(|| panic!("{FIRING} among {alerts:?}"));
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(
        (alert.labels["severity"].as_str(), alert.value),
        ("none", 1.0)
    );
    assert_eq!(alert.annotations["summary"], "fires at once");
    let managers = prom.alertmanagers().await.expect("alertmanagers");
    let url = format!(
        "http://127.0.0.1:{}/api/v2/alerts",
        servers.alertmanager_port()
    );
    let active: Vec<&str> = managers
        .active_alertmanagers
        .iter()
        .map(|e| e.url.as_str())
        .collect();
    assert_eq!(active, [url.as_str()]);

    let filter = alertmanager::Filter::matching(format!(r#"alertname="{FIRING}""#));
    let received = servers
        .eventually("the alert in Alertmanager", || async {
            let alerts = am.alerts(&filter).await.map_err(|e| e.to_string())?;
            match alerts.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(format!("{alerts:?}")),
            }
        })
        .await;
    assert_eq!(received.labels["team"], "platform");
    assert_eq!(received.labels["severity"], "none");
    assert_eq!(received.status.state, alertmanager::State::Active);
    let receivers: Vec<&str> = received.receivers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(receivers, [RECEIVER]);
    assert!(!received.fingerprint.is_empty());
    let generator = received.generator_url.as_deref().unwrap_or_default();
    assert!(generator.contains("/prom/graph"), "{generator}");
}

/// Alertmanager's status, its receivers, and an alert posted to it.
async fn alertmanager_api(servers: &Servers, am: &alertmanager::Client) {
    let status = am.status().await.expect("status");
    let config = &status.config.original;
    assert!(config.contains(RECEIVER), "{config}");
    assert_eq!(status.cluster.status, alertmanager::ClusterStatus::Disabled);
    assert!(!status.version_info.version.is_empty());
    assert!(status.uptime <= Timestamp::now());
    let receivers = am.receivers().await.expect("receivers");
    assert!(
        receivers.iter().any(|r| r.name == RECEIVER),
        "{receivers:?}"
    );

    let posted = alertmanager::Post {
        labels: prom::Labels::from([
            ("alertname".into(), "PlatformctlPosted".into()),
            ("severity".into(), "test".into()),
        ]),
        annotations: prom::Labels::from([("summary".into(), "posted by the test".into())]),
        ends_at: Some(Timestamp::now() + Duration::from_secs(300)),
        ..alertmanager::Post::default()
    };
    am.post(&[posted]).await.expect("post an alert");
    let filter = alertmanager::Filter::matching(r#"alertname="PlatformctlPosted""#);
    let back = servers
        .eventually("the posted alert", || async {
            let alerts = am.alerts(&filter).await.map_err(|e| e.to_string())?;
            alerts
                .into_iter()
                .next()
                .ok_or_else(|| "not listed yet".to_string())
        })
        .await;
    assert_eq!(back.labels["severity"], "test");
    assert_eq!(back.annotations["summary"], "posted by the test");
    assert_eq!(
        back.receivers
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        [RECEIVER]
    );
}

/// Answers with a status the endpoint does not expect: a bad matcher, a wrong route prefix.
async fn status_errors(servers: &Servers, am: &alertmanager::Client) {
    match am
        .alerts(&alertmanager::Filter::matching("alertname=~("))
        .await
    {
        Err(prom::Error::Status {
            status: 400, body, ..
        }) => assert!(!body.is_empty()),
        other => panic!("a 400 for a bad matcher: {other:?}"),
    }
    let unprefixed = prom::Client::new(&servers.prometheus_origin()).expect("url");
    match unprefixed.targets().await {
        Err(prom::Error::Status { status: 404, .. }) => {}
        other => panic!("a 404 outside the route prefix: {other:?}"),
    }
    let prefixed = unprefixed.with_route_prefix("prom");
    assert!(
        prefixed.ready().await.expect("ready"),
        "with_route_prefix reaches the API"
    );
}

/// A Prometheus that stops answering: the kernel still accepts the connection.
async fn no_answer_in_time(servers: &Servers, prom: &prom::Client) {
    let limit = Duration::from_millis(300);
    servers.pause_prometheus(true);
    let err = prom
        .clone()
        .with_timeout(limit)
        .query("vector(1)", None)
        .await
        .expect_err("no answer");
    servers.pause_prometheus(false);
    assert!(
        matches!(&err, prom::Error::TimedOut { after, .. } if *after == limit),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    let origin = servers.prometheus_origin();
    assert!(err.to_string().contains(&origin), "{err}");
    assert!(prom.ready().await.expect("answers again"));
}

#[tokio::test]
async fn an_address_nothing_listens_on_is_unreachable() {
    let address = format!("http://127.0.0.1:{}", servers::free_port());
    let err = prom::Client::new(&address)
        .expect("url")
        .query("up", None)
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, prom::Error::Unreachable { .. }), "{err:?}");
    assert!(err.is_unreachable());
    assert_eq!(
        err.to_string(),
        format!("cannot connect to Prometheus at {address}")
    );
    let err = alertmanager::Client::new(&address)
        .expect("url")
        .status()
        .await
        .expect_err("nothing listens");
    assert_eq!(
        err.to_string(),
        format!("cannot connect to Alertmanager at {address}")
    );
}
