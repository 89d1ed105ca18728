//! Progressive delivery for real, on a cluster of its own (`tests/sim/cluster up --with
//! workloads,rollouts,argocd,metrics,monitoring`): the customer-platform from `gitops.local`,
//! the real Argo CD syncing from the in-cluster git server, the real Rollouts controller running
//! the rendered canary, its AnalysisRuns measured by the real Prometheus scraping the real
//! customer-api processes, under steady traffic to every pod (`traffic.rs`).
//!
//! Stages, one after the other: a good release set in dev and promoted to prod (exit 0 after
//! setWeight 20, a Successful analysis, 50, a Successful analysis, 100; the canary Ingress at 20
//! then 50; prod's stable image 0.2.0; the promotion commit in Git); a bad release (0.3.0, whose
//! `versionConfig` injects 20% errors) rolled back by the controller and reverted in Git (exit 5
//! naming the metric; Argo CD Synced to the revert; every prod pod on 0.2.0 and no errors after);
//! the spent error budget closes the gate (exit 1 with the figures) and `--force` passes it;
//! SIGINT during `--wait` is exit 130 and a second promote converges; the `rollout` subcommands
//! move the live Rollout as the kubectl plugin does, with every exit code of `status`. First, the
//! projects' deployer roles on the real argocd-server (deployer.rs).

use std::time::{Duration, Instant};

use kube::Client;
use libtest_mimic::Trial;
use serde_json::{Value, json};

use crate::own::{Gitops, Project, Setup, all_ready, argo};
use crate::support::{TestResult, wait_for};
use crate::traffic::Traffic;

pub fn trials() -> Vec<Trial> {
    vec![crate::support::trial(
        "promote_takes_a_good_release_to_prod_and_a_bad_one_back_through_git",
        || Ok(progressive_delivery()?),
    )]
}

const WITH: &str = "workloads,rollouts,argocd,metrics,monitoring";
const CANARY_INGRESS: &str = "customer-api-customer-api-canary";

fn yaml(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).expect("valid YAML")
}

fn progressive_delivery() -> TestResult {
    let _exclusive = crate::own::exclusive();
    // Short intervals: scrape and evaluate every 2 s, measure every 5 s (3 measurements per
    // analysis), dev's canary pauses 2 s.
    let s = Setup::new("sim-promote", WITH, "platform.yaml", Gitops::Local, |p| {
        p["addons"]["kubePrometheusStack"]["values"] =
            yaml("prometheus: {prometheusSpec: {scrapeInterval: 2s, evaluationInterval: 2s}}");
        let canary = &mut p["services"][0]["strategy"]["canary"];
        canary["pause"] = "2s".into();
        canary["analysis"]["interval"] = "5s".into();
        canary["analysis"]["count"] = 3.into();
        p["services"][0]["versionConfig"] = yaml("{'0.3.0': {FAULT_ERROR_RATE: '0.2'}}");
    })?;
    let (runtime, client, project) = (&s.runtime, &s.client, &s.project);
    let dir = project.dir.path();
    let git = |args: &[&str]| crate::platform::git(dir, args);
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "rendered tree"])?;
    project.must(&["up", "--timeout", "4m"])?;
    runtime.block_on(all_ready(client, "customer-platform", 2))?;
    // Each environment's deployer role, on the real argocd-server: its own Application only.
    let argocd_server = std::net::SocketAddr::from(([127, 0, 0, 1], s.cluster.port_base + 17));
    runtime.block_on(crate::deployer::deployer_roles(
        argocd_server,
        client,
        "customer-platform",
        "dev",
        "prod",
    ))?;
    let traffic = Traffic::start(
        s.cluster.kubeconfig.clone(),
        "prod",
        "customer-api",
        Some(CANARY_INGRESS.into()),
        "/customers",
    );

    good_release(runtime, client, project, &traffic)?;
    bad_release(runtime, client, project, &traffic)?;
    gate_closes_on_a_spent_budget(runtime, client, project)?;
    interrupted_then_converges(project)?;
    rollout_commands(runtime, client, project)?;
    Ok(())
}

/// Sets `tag` in dev, pushes it with `up` and waits until dev runs it Healthy.
fn ship_to_dev(project: &Project, tag: &str) -> TestResult {
    let set = project.must(&[
        "set-image",
        "dev",
        &format!("customer-api={tag}"),
        "--commit",
        "-o",
        "json",
    ])?;
    if set.json["changes"][0]["to"] != tag || set.json["commit"].is_null() {
        return Err(format!("set-image: {}", set.json));
    }
    project.must(&["up", "--timeout", "4m"])?;
    let status = project.must(&[
        "rollout",
        "status",
        "customer-api",
        "--env",
        "dev",
        "--timeout",
        "2m",
        "-o",
        "json",
    ])?;
    let image = stable_image(&status.json["rollout"]);
    if image != format!("platformctl/customer-api:{tag}") {
        return Err(format!("dev's stable image is {image}: {}", status.json));
    }
    Ok(())
}

fn step_types(run: &crate::own::Run) -> Vec<(String, String)> {
    run.json["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|x| {
                    (
                        x["type"].as_str().unwrap_or_default().to_string(),
                        x["message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn good_release(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    project: &Project,
    traffic: &Traffic,
) -> TestResult {
    ship_to_dev(project, "0.2.0")?;
    let run = project.run(&["promote", "prod", "--wait", "--timeout", "5m", "-o", "json"])?;
    eprintln!("promote: good release in {:.1} s", run.took.as_secs_f64());
    if run.code != Some(0) || run.json["status"] != "Promoted" {
        return Err(format!(
            "promote of 0.2.0: exit {:?}\n{}\n{}",
            run.code, run.stderr, run.json
        ));
    }
    // Step by step: 20, a Successful analysis, 50, a Successful analysis, 100.
    let steps = step_types(&run);
    let mut milestones = Vec::new();
    for (kind, message) in &steps {
        let m = if kind == "progress" && message.contains(", weight 20") {
            "20"
        } else if kind == "progress" && message.contains(", weight 50") {
            "50"
        } else if kind == "analysisFinished" && message.contains("Successful") {
            "analysis"
        } else if kind == "progress" && message.starts_with("customer-api: Healthy") {
            "100"
        } else {
            continue;
        };
        if milestones.last() != Some(&m) {
            milestones.push(m);
        }
    }
    if milestones != ["20", "analysis", "50", "analysis", "100"] {
        return Err(format!("promote's steps {milestones:?}:\n{}", run.stderr));
    }
    let measured = steps.iter().filter(|(k, _)| k == "measured").count();
    if measured < 6 {
        return Err(format!(
            "{measured} measurements reported, want 2 × 3:\n{}",
            run.stderr
        ));
    }
    let weights = traffic.weights();
    let at = |w: &str| weights.iter().position(|x| x == w);
    if !matches!((at("20"), at("50")), (Some(a), Some(b)) if a < b) {
        return Err(format!(
            "the canary Ingress's weights, in order: {weights:?}"
        ));
    }
    let stable = stable_image(&rollout_json(project)?);
    if stable != "platformctl/customer-api:0.2.0" {
        return Err(format!("prod's stable image: {stable}"));
    }
    let subject = crate::platform::git(project.dir.path(), &["log", "-1", "--format=%s"])?;
    if subject.trim() != "promote customer-api 0.2.0 to prod" || run.json["commit"].is_null() {
        return Err(format!(
            "the last commit: {subject}; report {}",
            run.json["commit"]
        ));
    }
    runtime.block_on(synced_to(
        client,
        "customer-platform-prod",
        run.json["push"]["commit"].as_str().unwrap_or_default(),
    ))
}

pub fn stable_image(rollout: &Value) -> String {
    rollout["revisions"]
        .as_array()
        .and_then(|r| {
            r.iter().find(|r| {
                r["roles"]
                    .as_array()
                    .is_some_and(|x| x.contains(&"stable".into()))
            })
        })
        .and_then(|r| r["images"][0].as_str())
        .unwrap_or_default()
        .to_string()
}

async fn synced_to(client: &Client, app: &str, revision: &str) -> TestResult {
    let apps = argo(client, "Application", "applications");
    wait_for(
        &format!("{app} Synced at {revision}"),
        Duration::from_secs(60),
        || async {
            let a = apps.get(app).await.map_err(|e| e.to_string())?;
            Ok(a.data["status"]["sync"]["status"] == "Synced"
                && a.data["status"]["sync"]["revision"] == revision)
        },
    )
    .await
}

fn bad_release(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    project: &Project,
    traffic: &Traffic,
) -> TestResult {
    ship_to_dev(project, "0.3.0")?;
    let run = project.run(&["promote", "prod", "--wait", "--timeout", "5m", "-o", "json"])?;
    eprintln!("promote: bad release in {:.1} s", run.took.as_secs_f64());
    let message = run.json["message"].as_str().unwrap_or_default();
    if run.code != Some(5)
        || run.json["status"] != "Aborted"
        || !message.contains("metric `success-rate` = ")
        || !message.contains("success condition `result[0] >= 0.99`")
    {
        return Err(format!(
            "promote of 0.3.0: exit {:?}\n{}\n{}",
            run.code, run.stderr, run.json
        ));
    }
    let dir = project.dir.path();
    let subject = crate::platform::git(dir, &["log", "-1", "--format=%s"])?;
    let revert = run.json["revert"].as_str().unwrap_or_default().to_string();
    let head = crate::platform::git(dir, &["rev-parse", "HEAD"])?;
    if subject.trim() != "Revert \"promote customer-api 0.3.0 to prod\"" || head.trim() != revert {
        return Err(format!(
            "the last commit: {subject} ({head}); report's revert {revert}"
        ));
    }
    runtime.block_on(synced_to(client, "customer-platform-prod", &revert))?;
    // Every prod pod serves 0.2.0 again, and the errors stop.
    runtime.block_on(wait_for(
        "3 Ready prod pods, all of 0.2.0",
        Duration::from_secs(90),
        || async {
            let r = &rollout_json(project)?;
            Ok(r["phase"] == "Healthy"
                && stable_image(r) == "platformctl/customer-api:0.2.0"
                && r["replicas"]["ready"] == 3
                && r["replicas"]["current"] == 3)
        },
    ))?;
    let calm = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let (answers, errors) = traffic.errors_since(calm);
    let images = traffic.images_since(calm);
    if answers < 50 || errors != 0 || images.keys().any(|i| i != "platformctl/customer-api:0.2.0") {
        return Err(format!(
            "after the rollback: {errors} errors in {answers} answers, by image {images:?}"
        ));
    }
    Ok(())
}

/// Spends prod's availability budget (every prod pod answers 100% errors for a few seconds of the
/// steady traffic) and asks for a promotion: refused with the figures, nothing committed.
fn gate_closes_on_a_spent_budget(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    project: &Project,
) -> TestResult {
    ship_to_dev(project, "0.2.1")?;
    let spent = |project: &Project| -> Result<bool, String> {
        let slo = project.run(&["slo", "status", "--env", "prod", "-o", "json"])?;
        Ok(slo.json["slos"].as_array().is_some_and(|s| {
            s.iter()
                .any(|x| x["name"] == "customer-api-availability" && x["state"] == "Exhausted")
        }))
    };
    if !spent(project)? {
        let token = runtime.block_on(crate::up_for_real::admin_token(client, "prod"))?;
        let pods = runtime.block_on(crate::monitoring::serving(
            client,
            "prod",
            "customer-api",
            8080,
            3,
        ))?;
        for addr in &pods.addrs {
            runtime.block_on(crate::monitoring::put_faults(*addr, &token, 1.0))?;
        }
        std::thread::sleep(Duration::from_secs(5));
        for addr in &pods.addrs {
            runtime.block_on(crate::monitoring::put_faults(*addr, &token, 0.0))?;
        }
    }
    runtime.block_on(wait_for(
        "prod's availability budget spent, as slo status reads it",
        Duration::from_secs(60),
        || async { spent(project) },
    ))?;
    let dir = project.dir.path();
    let head = crate::platform::git(dir, &["rev-parse", "HEAD"])?;
    let refused = project.run(&["promote", "prod", "-o", "json"])?;
    let gate = refused.json["gates"]
        .as_array()
        .and_then(|g| {
            g.iter()
                .find(|g| g["name"] == "error-budget/prod/customer-api-availability")
        })
        .cloned()
        .unwrap_or_default();
    if refused.code != Some(1)
        || refused.json["status"] != "GateClosed"
        || gate["passed"] != false
        || gate["threshold"] != 25.0
        || gate["value"].as_f64().is_none_or(|v| v >= 25.0)
        || !refused.json["message"]
            .as_str()
            .is_some_and(|m| m.contains("below the 25% promotion.minErrorBudget"))
    {
        return Err(format!(
            "promote with the budget spent: exit {:?}\n{}",
            refused.code, refused.json
        ));
    }
    if crate::platform::git(dir, &["rev-parse", "HEAD"])? != head {
        return Err("a refused promotion committed".into());
    }
    Ok(())
}

/// `promote --wait --force` stopped by SIGINT once it has pushed: exit 130, saying what was
/// pushed; run again it converges without a second commit, and the gate it forced is on record.
fn interrupted_then_converges(project: &Project) -> TestResult {
    use std::io::BufRead;
    let mut child = project
        .command(&["promote", "prod", "--wait", "--force", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = Vec::new();
    let mut sent = false;
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if !sent && line.contains(" pushed ") {
            // SAFETY: kill(2) on the child's pid; no memory is shared.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            sent = true;
        }
        lines.push(line);
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let rest = lines.join("\n");
    if out.status.code() != Some(130)
        || !rest.contains("interrupted (SIGINT) while following the promotion")
        || !rest.contains("promote prod --wait` follows it again")
    {
        return Err(format!(
            "promote interrupted: exit {:?}\n{rest}",
            out.status.code()
        ));
    }
    let again = project.run(&[
        "promote",
        "prod",
        "--wait",
        "--force",
        "--timeout",
        "5m",
        "-o",
        "json",
    ])?;
    let forced = again.json["gates"].as_array().is_some_and(|g| {
        g.iter()
            .any(|g| g["passed"] == false && g["forced"] == true)
    });
    if again.code != Some(0) || !again.json["commit"].is_null() || !forced {
        return Err(format!(
            "promote again: exit {:?}\n{}\n{}",
            again.code, again.stderr, again.json
        ));
    }
    let dir = project.dir.path();
    let log = crate::platform::git(dir, &["log", "--format=%s", "-5"])?;
    if log.matches("promote customer-api 0.2.1 to prod").count() != 1 {
        return Err(format!(
            "the promotion was committed other than once:\n{log}"
        ));
    }
    let body = crate::platform::git(
        dir,
        &[
            "log",
            "-1",
            "--format=%B",
            "--grep=promote customer-api 0.2.1",
        ],
    )?;
    if !body.contains("Gates passed with --force:") {
        return Err(format!("the forced promotion's commit message: {body}"));
    }
    Ok(())
}

fn rollout_json(project: &Project) -> Result<Value, String> {
    Ok(project
        .must(&[
            "rollout",
            "get",
            "customer-api",
            "--env",
            "prod",
            "-o",
            "json",
        ])?
        .json["rollout"]
        .clone())
}

/// The `rollout` subcommands on the live prod Rollout, each checked on the object, and each exit
/// code of `status`.
fn rollout_commands(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    project: &Project,
) -> TestResult {
    let api = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        "prod",
        &platformctl::kube::argo("Rollout", "rollouts"),
    );
    let live = |field: &str| -> Result<Value, String> {
        let r = runtime
            .block_on(api.get("customer-api"))
            .map_err(|e| e.to_string())?;
        Ok(field.split('.').fold(&r.data, |v, k| &v[k]).clone())
    };
    let status = |timeout: &str| {
        project.run(&[
            "rollout",
            "status",
            "customer-api",
            "--env",
            "prod",
            "--timeout",
            timeout,
            "-o",
            "json",
        ])
    };
    let healthy = status("30s")?;
    if healthy.code != Some(0) || healthy.json["status"] != "Healthy" {
        return Err(format!(
            "status of a Healthy rollout: {:?} {}",
            healthy.code, healthy.json
        ));
    }
    // A change nothing acts on is nudged: with the Rollout out of the controller's sight (the
    // instance-id label of another controller), `rollout pause` touches the nudge annotation
    // twice and says nothing acted; back in sight, the controller pauses it.
    let label = |value: Value| {
        runtime
            .block_on(api.patch(
                "customer-api",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"metadata": {"labels": {
                    "argo-rollouts.argoproj.io/controller-instance-id": value}}})),
            ))
            .map(drop)
            .map_err(|e| e.to_string())
    };
    label(json!("another-controller"))?;
    let act = |verb: &str| {
        project.must(&[
            "rollout",
            verb,
            "customer-api",
            "--env",
            "prod",
            "-o",
            "json",
        ])
    };
    let unseen = act("pause")?;
    label(Value::Null)?;
    let notes = unseen.json["notes"].to_string();
    if live("spec.paused")? != true
        || !runtime
            .block_on(api.get("customer-api"))
            .map_err(|e| e.to_string())?
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(platformctl::rollout::actions::NUDGE)
        || !notes.contains("nothing has acted on the pause")
        || unseen.took < 2 * platformctl::rollout::actions::SETTLE
    {
        return Err(format!(
            "`rollout pause` of a Rollout no controller watches, in {:.1} s: {}",
            unseen.took.as_secs_f64(),
            unseen.json
        ));
    }
    // pause → 6, resume → 0.
    let paused = status("30s")?;
    if paused.code != Some(6)
        || !paused.json["message"]
            .as_str()
            .is_some_and(|m| m.contains("rollout resume customer-api --env prod"))
    {
        return Err(format!(
            "status of a paused rollout: {:?} {}",
            paused.code, paused.json
        ));
    }
    project.must(&["rollout", "resume", "customer-api", "--env", "prod"])?;
    if live("spec.paused")? == true {
        return Err("`rollout resume` left spec.paused".into());
    }
    if status("30s")?.code != Some(0) {
        return Err("status after resume is not 0".into());
    }
    // A new version straight into prod, pushed without waiting: a canary in progress.
    project.must(&["set-image", "prod", "customer-api=0.2.2", "--commit"])?;
    project.must(&["up", "--only", "gitops"])?;
    // (`--only gitops` pushes and waits for nothing: Argo CD is asked to look at once)
    let apps = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        "argocd",
        &platformctl::kube::argo("Application", "applications"),
    );
    runtime
        .block_on(apps.patch(
            "customer-platform-prod",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!(
                {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}
            )),
        ))
        .map_err(|e| e.to_string())?;
    runtime.block_on(wait_for(
        "the 0.2.2 canary to start",
        Duration::from_secs(90),
        || async {
            let r = rollout_json(project)?;
            Ok(r["phase"] == "Progressing"
                && r["revisions"][0]["images"][0] == "platformctl/customer-api:0.2.2")
        },
    ))?;
    let timed_out = status("2s")?;
    if timed_out.code != Some(4) || timed_out.json["status"] != "TimedOut" {
        return Err(format!(
            "status of a canary within 2 s: {:?} {}",
            timed_out.code, timed_out.json
        ));
    }
    // watch, then SIGINT: 130, its events JSON lines.
    let watch = project
        .command(&[
            "rollout",
            "watch",
            "customer-api",
            "--env",
            "prod",
            "-o",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) on the child's pid; no memory is shared.
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let out = watch.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if out.status.code() != Some(130)
        || events.is_empty()
        || events.len() != stdout.lines().count()
        || events[0]["kind"] != "RolloutEvent"
    {
        return Err(format!(
            "watch interrupted: exit {:?}\n{stdout}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // abort → status.abort, 5; retry → no abort; promote --full → promoteFull, 0 at 0.2.2.
    project.must(&["rollout", "abort", "customer-api", "--env", "prod"])?;
    if live("status.abort")? != true {
        return Err("`rollout abort` did not set status.abort".into());
    }
    let aborted = status("1m")?;
    if aborted.code != Some(5) || aborted.json["status"] != "Aborted" {
        return Err(format!(
            "status of an aborted rollout: {:?} {}",
            aborted.code, aborted.json
        ));
    }
    project.must(&["rollout", "retry", "customer-api", "--env", "prod"])?;
    if live("status.abort")? == true {
        return Err("`rollout retry` left status.abort".into());
    }
    project.must(&[
        "rollout",
        "promote",
        "customer-api",
        "--env",
        "prod",
        "--full",
    ])?;
    let done = status("2m")?;
    if done.code != Some(0)
        || stable_image(&done.json["rollout"]) != "platformctl/customer-api:0.2.2"
    {
        return Err(format!(
            "status after promote --full: {:?} {}",
            done.code, done.json
        ));
    }
    // undo: the previous revision's template on the object, and the Git change offered, since
    // Argo CD self-heals prod.
    let undo = act("undo")?;
    let image = live("spec.template.spec.containers")?[0]["image"].clone();
    if image != "platformctl/customer-api:0.2.1" && image != "platformctl/customer-api:0.2.2" {
        return Err(format!("after undo the template runs {image}"));
    }
    if undo.json["gitChange"] != "platformctl rollout undo customer-api --env prod --git" {
        return Err(format!("undo's report: {}", undo.json));
    }
    Ok(())
}
