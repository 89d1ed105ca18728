//! The customer-platform brought up by `platformctl up --driver existing` as a real user does,
//! on a cluster of its own that runs it for real (`tests/sim/cluster up --with
//! workloads,rollouts,argocd,metrics,monitoring`): `gitops.local`, so `up` runs the in-cluster
//! git server, whose pod is a real `git daemon` under sim-kubelet, pushes the project's HEAD to
//! it through a port-forward, and the real Argo CD (out of cluster, with the cluster's names)
//! clones it from `git://gitops.platformctl.svc.cluster.local/…`; the customer-api pods are the
//! real service processes on their pod IPs; the kube-prometheus-stack stand-in chart's
//! Prometheus and Alertmanager run as the real ones, reconciled by the real prometheus-operator;
//! the real Argo Rollouts controller measures the rendered AnalysisTemplate against that
//! Prometheus at its in-cluster address.
//!
//! Stages, one after the other: up refused while the rendered tree is uncommitted; up from
//! nothing (Synced and Healthy, from the in-cluster server at the project's HEAD); a second up
//! changes nothing; status; every prod pod answers /healthz on its own IP; one target per pod,
//! counted requests, healthy SLO rules; an AnalysisRun of the rendered template measures real
//! values; 20% errors page through Alertmanager; down --keep-cluster leaves nothing.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use libtest_mimic::Trial;
use platformctl::prom::{self, Data};
use serde_json::{Value, json};

use crate::monitoring::{self, Serving};
use crate::operate;
use crate::own::{
    Gitops, Project, Setup, all_ready, argo, down_and_check, fingerprint, status_is_healthy,
};
use crate::support::{TestResult, wait_for};

pub fn trials() -> Vec<Trial> {
    vec![crate::support::trial(
        "up_runs_the_customer_platform_for_real_from_gitops_local_scraped_analysed_and_alerting",
        || Ok(for_real()?),
    )]
}

/// Everything of the harness: pods that run, and every controller.
const WITH: &str = "workloads,rollouts,argocd,metrics,monitoring,chaos";
/// Where Argo CD reads the platform (`up`'s gitops.local server).
const SERVER: &str = "git://gitops.platformctl.svc.cluster.local/customer-platform.git";

fn for_real() -> TestResult {
    let mut exclusive = Some(crate::own::exclusive());
    // Prometheus scrapes and evaluates every 2 s (the ServiceMonitor keeps its rendered 15 s),
    // through the chart values platform.yaml passes on.
    // Dev is monitored too, with an SLO of its own: the known 1% errors run there.
    let s = Setup::new("sim-up-real", WITH, "platform.yaml", Gitops::Local, |p| {
        p["addons"]["kubePrometheusStack"]["values"] = serde_yaml::from_str(
            "prometheus: {prometheusSpec: {scrapeInterval: 2s, evaluationInterval: 2s}}",
        )
        .expect("valid YAML");
        p["environments"][0]["monitoring"] = true.into();
        if let Some(slos) = p["slos"].as_sequence_mut() {
            slos.push(
                serde_yaml::from_str(
                    "{service: customer-api, environment: dev, window: 30d, availability: {objective: 99.9}}",
                )
                .expect("valid YAML"),
            );
        }
    })?;
    let (runtime, client, project) = (&s.runtime, &s.client, &s.project);
    let dir = project.dir.path();
    let git = |args: &[&str]| crate::platform::git(dir, args);

    // Page alerts go to a Slack-shaped webhook and to an SMTP server on this host's address
    // on the pod network (where the Alertmanager pod reaches it), the webhook's URL in a
    // local Secret source as a user keeps it.
    let gateway = s.cluster.pod_gateway()?;
    let webhook = crate::receivers::Webhook::start(gateway)?;
    let smtp = crate::receivers::Smtp::start(gateway)?;
    let file = dir.join("platform.yaml");
    let mut platform: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&file).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    platform["alerting"] = serde_yaml::from_str(&format!(
        "receivers:
  - name: oncall-slack
    slack: {{webhookSecret: alerting-slack, channel: '#oncall'}}
  - name: oncall-email
    email: {{smarthost: '{}', from: alerts@platform.test, to: [oncall@platform.test], requireTLS: false}}
routes:
  - severity: page
    receivers: [oncall-slack, oncall-email]
",
        smtp.addr
    ))
    .map_err(|e| e.to_string())?;
    std::fs::write(
        &file,
        serde_yaml::to_string(&platform).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let secrets = dir.join(".platformctl/secrets");
    std::fs::create_dir_all(&secrets).map_err(|e| e.to_string())?;
    std::fs::write(
        secrets.join("alerting-slack.env"),
        format!("url={}\n", webhook.url()),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(dir.join(".gitignore"), ".platformctl/\n").map_err(|e| e.to_string())?;
    project.must(&["render"])?;

    // 1. The rendered tree is not committed: refused before anything is applied.
    let refused = project.run(&["up"])?;
    if refused.code != Some(2) || !refused.stderr.contains("uncommitted") {
        return Err(format!(
            "up with the tree uncommitted: exit {:?}\n{}",
            refused.code, refused.stderr
        ));
    }
    let left = runtime.block_on(fingerprint(client, project))?;
    if !left.is_empty() {
        return Err(format!("a refused up left: {left:?}"));
    }
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "rendered tree"])?;
    let head = git(&["rev-parse", "HEAD"])?.trim().to_string();

    // 2. From nothing: the server created, HEAD pushed, Argo CD syncs from it.
    let first = project.must(&["up", "-o", "json", "--timeout", "4m"])?;
    eprintln!(
        "for real: up from nothing: {:.1} s",
        first.took.as_secs_f64()
    );
    if first.json["status"] != "Applied" {
        return Err(format!("first up: {}", first.json));
    }
    let gitops = gitops_step(&first)?;
    let changes: Vec<&str> = gitops["changes"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let created = [
        "deployment `platformctl/gitops` created",
        "service `platformctl/gitops` created",
    ];
    if !created
        .iter()
        .all(|w| changes.iter().any(|c| c.eq_ignore_ascii_case(w)))
        || !changes
            .iter()
            .any(|c| c.starts_with(&format!("pushed {}", &head[..12])))
    {
        return Err(format!("first up's gitops step: {gitops}"));
    }
    runtime.block_on(all_ready(client, "customer-platform", 2))?;
    runtime.block_on(synced_from_the_server(client, &head))?;
    // The server is a real git daemon on its pod's own address.
    let server = runtime.block_on(monitoring::serving(
        client,
        "platformctl",
        "gitops",
        9418,
        1,
    ))?;
    let url = format!("git://{}/customer-platform.git", server.addrs[0]);
    let served = git(&["ls-remote", &url, "refs/heads/main"])?;
    if !served.starts_with(&head) {
        return Err(format!(
            "{url} serves {served:?}, the project's HEAD is {head}"
        ));
    }

    // 3. Again: nothing changes; the server already has HEAD.
    let again = project.must(&["up", "-o", "json"])?;
    if again.json["status"] != "Converged" || gitops_step(&again)?["status"] != "unchanged" {
        return Err(format!("a second up changed something: {}", again.json));
    }
    status_is_healthy(project, 2, 2)?;

    let (mut one_percent, prometheus) =
        runtime.block_on(serving_scraped_analysed_alerting(client, project))?;
    runtime.block_on(operate::alerts_reach_slack_and_email(&webhook, &smtp))?;

    // Planted faults fail their checks (in prod; undone), while dev's 1% errors run on.
    runtime.block_on(operate::planted_faults_fail_their_checks(client, project))?;
    // The rest of the 6 minutes of 1% errors needs little of the machine: another cluster test
    // runs meanwhile.
    exclusive.take();
    runtime.block_on(operate::six_minutes_of(&one_percent));
    exclusive = Some(crate::own::exclusive());
    runtime.block_on(operate::one_percent_burns_ten_times(
        project,
        &prometheus,
        &mut one_percent,
    ))?;

    // 4. down --keep-cluster leaves nothing behind (the git server's namespace too).
    let down = down_and_check(runtime, client, project, "customer-platform");
    drop(exclusive);
    down
}

fn gitops_step(run: &crate::own::Run) -> Result<Value, String> {
    run.json["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "gitops"))
        .cloned()
        .ok_or_else(|| format!("no gitops step: {}", run.json))
}

/// Both Applications read the in-cluster server and are synced to the project's HEAD.
async fn synced_from_the_server(client: &Client, head: &str) -> TestResult {
    let apps = argo(client, "Application", "applications")
        .list(&ListParams::default().labels("app.kubernetes.io/part-of=customer-platform"))
        .await
        .map_err(|e| e.to_string())?;
    for app in &apps.items {
        let (url, revision) = (
            &app.data["spec"]["source"]["repoURL"],
            &app.data["status"]["sync"]["revision"],
        );
        if url != SERVER || revision != head {
            return Err(format!(
                "Application {:?} reads {url} at {revision}, want {SERVER} at {head}",
                app.metadata.name
            ));
        }
    }
    Ok(())
}

/// Returns dev's 1% errors, running, and Prometheus.
async fn serving_scraped_analysed_alerting(
    client: &Client,
    project: &Project,
) -> Result<(operate::OnePercent, prom::Client), String> {
    // Every prod pod answers on its own pod IP.
    let pods = monitoring::serving(client, "prod", "customer-api", 8080, 3).await?;
    for addr in &pods.addrs {
        let answer = monitoring::get(*addr, "/healthz").await?;
        if !answer.starts_with("HTTP/1.1 200") {
            return Err(format!("GET /healthz on {addr}: {answer}"));
        }
    }
    let prometheus = monitoring::prometheus(client, "monitoring").await?;
    monitoring::scraped_per_pod(&prometheus, "prod", "customer-api", &pods).await?;
    monitoring::slo_rules_healthy(&prometheus, "customer-api").await?;
    operate::slo_without_traffic_has_no_data(project)?;
    monitoring::requests_counted(&prometheus, "prod", &pods).await?;
    analysis_measures_real_values(client, &prometheus, &pods).await?;
    // Dev serves some clean traffic too, so that every dashboard and SLO has data.
    let dev = monitoring::serving(client, "practice", "customer-api", 8080, 1).await?;
    operate::validate_passes(project, &dev.addrs).await?;
    operate::validate_leaves_no_connection_open(client, project).await?;
    operate::published_urls_give_the_same_answers(client, project).await?;
    pod_kill_judged_with_prometheus(client, project).await?;
    // (one prod pod is a new one now)
    let pods = monitoring::serving(client, "prod", "customer-api", 8080, 3).await?;
    let (token, dev_token) = (
        admin_token(client, "prod").await?,
        admin_token(client, "practice").await?,
    );
    let one_percent = operate::OnePercent::start(dev.addrs[0], dev_token);
    monitoring::fast_burn_reaches_alertmanager(client, "monitoring", &prometheus, &pods, &token)
        .await?;
    operate::slo_after_errors_is_exhausted_and_paging(project)?;
    Ok((one_percent, prometheus))
}

/// `chaos pod-kill --load` on the platform `up` installed: the real Chaos Mesh controller kills a
/// prod pod; the steady state's SLO burn over 5m and the window's server-side availability come
/// from the real Prometheus (through its port-forward), which scraped the pods under the load;
/// the verdict passes and no PodChaos is left.
async fn pod_kill_judged_with_prometheus(client: &Client, project: &Project) -> TestResult {
    let run = project.run(&["chaos", "pod-kill", "--load", "-o", "json"])?;
    let j = &run.json["journal"];
    let phase = |name: &str| {
        j["phases"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == name))
            .map(|p| p["data"].clone())
            .unwrap_or(Value::Null)
    };
    let (steady, verdict) = (phase("steady-state"), phase("verdict"));
    let burn = steady["burn5m"].as_f64();
    let server = verdict["prometheusAvailability"].as_f64();
    eprintln!(
        "for real: chaos pod-kill: burn over 5m {burn:?}, Prometheus availability {server:?}"
    );
    if run.code != Some(0)
        || run.json["status"] != "Passed"
        || j["killed"].as_array().map(Vec::len) != Some(1)
        || !burn.is_some_and(|b| b < 14.4)
        || !server.is_some_and(|a| a > 0.99 && a <= 1.0)
    {
        return Err(format!(
            "chaos pod-kill with Prometheus: exit {:?}\n{}\n{:#}",
            run.code, run.stderr, run.json
        ));
    }
    let left = crate::chaos::left(client, "prod").await?;
    if !left.is_empty() {
        return Err(format!("chaos pod-kill left PodChaos {left:?}"));
    }
    Ok(())
}

/// The service's admin token in `ns` (its Secret `customer-api-admin`, generated by `up`).
pub(crate) async fn admin_token(client: &Client, ns: &str) -> Result<String, String> {
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get("customer-api-admin")
        .await
        .map_err(|e| format!("Secret {ns}/customer-api-admin: {e}"))?;
    secret
        .data
        .as_ref()
        .and_then(|d| d.get("ADMIN_TOKEN"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .ok_or_else(|| format!("Secret {ns}/customer-api-admin has no ADMIN_TOKEN"))
}

/// The rendered AnalysisTemplate, run once by the real Rollouts controller against the stable
/// pods while they serve traffic: its Prometheus address (the in-cluster name of the operator's
/// governing Service) answers, and both metrics measure real numbers that pass.
async fn analysis_measures_real_values(
    client: &Client,
    prometheus: &prom::Client,
    pods: &Serving,
) -> TestResult {
    let listed = Api::<Pod>::namespaced(client.clone(), "prod")
        .list(&ListParams::default().labels("app.kubernetes.io/name=customer-api"))
        .await
        .map_err(|e| e.to_string())?;
    let hash = listed
        .items
        .iter()
        .find_map(|p| {
            p.metadata
                .labels
                .as_ref()?
                .get("rollouts-pod-template-hash")
                .cloned()
        })
        .ok_or("no customer-api pod with a rollouts-pod-template-hash")?;
    let addrs: Vec<SocketAddr> = pods.addrs.clone();
    let load = tokio::spawn(async move {
        loop {
            for addr in &addrs {
                monitoring::traffic(*addr, 5).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let result = async {
        // Measured once there is a rate to measure (an empty result is a measurement error).
        let rate = format!(
            "sum(rate(http_requests_total{{namespace=\"prod\",service=\"customer-api\",rollouts_pod_template_hash=\"{hash}\"}}[1m])) > 0"
        );
        wait_for(&format!("{rate} in Prometheus"), Duration::from_secs(90), || async {
            let answer = prometheus.query(&rate, None).await.map_err(|e| e.to_string())?;
            Ok(matches!(answer.data, Data::Vector(v) if !v.is_empty()))
        })
        .await?;
        let template = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            "prod",
            &platformctl::kube::argo("AnalysisTemplate", "analysistemplates"),
        )
        .get("customer-api")
        .await
        .map_err(|e| format!("AnalysisTemplate prod/customer-api: {e}"))?;
        let mut metrics = template.data["spec"]["metrics"].clone();
        for m in metrics.as_array_mut().ok_or("the template has no metrics")? {
            m["count"] = json!(1);
            m.as_object_mut().map(|o| o.remove("interval"));
        }
        let runs = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            "prod",
            &platformctl::kube::argo("AnalysisRun", "analysisruns"),
        );
        let run: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisRun",
            "metadata": {"generateName": "customer-api-probe-", "namespace": "prod"},
            "spec": {"args": [{"name": "pod-template-hash", "value": hash}], "metrics": metrics}
        }))
        .map_err(|e| e.to_string())?;
        let run = runs
            .create(&PostParams::default(), &run)
            .await
            .map_err(|e| format!("creating the AnalysisRun: {e}"))?;
        let name = run.metadata.name.clone().unwrap_or_default();
        let last = std::sync::Mutex::new(Value::Null);
        let done = wait_for(
            &format!("AnalysisRun prod/{name} to finish"),
            Duration::from_secs(90),
            || async {
                let r = runs.get(&name).await.map_err(|e| e.to_string())?;
                let status = r.data["status"].clone();
                let phase = status["phase"].as_str().unwrap_or_default().to_string();
                *last.lock().expect("last") = status;
                Ok(matches!(
                    phase.as_str(),
                    "Successful" | "Failed" | "Error" | "Inconclusive"
                ))
            },
        )
        .await;
        let status = last.lock().expect("last").clone();
        done.map_err(|e| format!("{e}: {status}"))?;
        let results = status["metricResults"].as_array().cloned().unwrap_or_default();
        let values: Vec<(String, Option<f64>)> = results
            .iter()
            .map(|m| {
                let value = m["measurements"]
                    .as_array()
                    .and_then(|ms| ms.last())
                    .and_then(|x| x["value"].as_str())
                    .and_then(|v| v.trim_matches(['[', ']']).parse::<f64>().ok())
                    .filter(|v| v.is_finite());
                (m["name"].as_str().unwrap_or_default().to_string(), value)
            })
            .collect();
        eprintln!("for real: AnalysisRun {name}: {} {values:?}", status["phase"]);
        if status["phase"] != "Successful"
            || values.len() != 2
            || values.iter().any(|(_, v)| v.is_none())
        {
            return Err(format!("AnalysisRun {name}: {status}"));
        }
        Ok(())
    }
    .await;
    load.abort();
    result
}
