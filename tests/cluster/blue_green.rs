//! Blue-green for real, on the microservices platform `up.rs` brings up (its own cluster; the
//! GitOps tree on git-serve as `gitops.remote`, so promote pushes with plain git): `orders` 0.2.0
//! set in dev stops `up` at the blue-green gate (exit 6) until `rollout promote`; `promote prod
//! --wait` exits 6 naming the preview Service, whose endpoints answer with 0.2.0 while the
//! active Service's still answer with 0.1.0; `rollout promote` switches the active Service;
//! `rollout undo --git` commits and pushes the way back, which Argo CD deploys through the same
//! gate, and after `rollout promote` the active Service answers with 0.1.0 again. Steady traffic
//! reaches every orders pod meanwhile, so the pre-promotion analyses have something to measure.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ListParams};

use crate::own::{Project, Setup};
use crate::support::{TestResult, wait_for};
use crate::traffic::Traffic;

/// The edit to the microservices test platform: orders' pre-promotion analysis measures every
/// 5 s, 3 times, rather than every 30 s.
pub fn short_analysis(p: &mut serde_yaml::Value) {
    let orders = p["services"]
        .as_sequence_mut()
        .and_then(|s| s.iter_mut().find(|s| s["name"] == "orders"))
        .expect("the microservices platform has orders");
    let analysis = &mut orders["strategy"]["blueGreen"]["analysis"];
    analysis["interval"] = "5s".into();
    analysis["count"] = 3.into();
}

pub fn blue_green(s: &Setup, repo_url: &str) -> TestResult {
    let (runtime, client, project) = (&s.runtime, &s.client, &s.project);
    let kubeconfig = &s.cluster.kubeconfig;
    let _dev = Traffic::start(kubeconfig.clone(), "shop-dev", "orders", None, "/orders/1");
    let _prod = Traffic::start(kubeconfig.clone(), "shop", "orders", None, "/orders/1");
    let push = || crate::platform::git(project.dir.path(), &["push", "-q", repo_url, "main"]);

    // dev: a new release stops `up` at the gate, which a person (here `rollout promote`) opens.
    project.must(&["set-image", "dev", "orders=0.2.0", "--commit"])?;
    push()?;
    let head = crate::platform::git(project.dir.path(), &["rev-parse", "HEAD"])?;
    let remote = crate::platform::git(project.dir.path(), &["ls-remote", repo_url, "main"])?;
    if !remote.starts_with(head.trim()) {
        return Err(format!("pushed {head} but {repo_url} has {remote}"));
    }
    through_the_gate(
        project,
        "dev",
        "0.2.0",
        &["up", "-o", "json", "--timeout", "4m"],
    )?;

    // prod: promote --wait stops at the gate and names the preview Service.
    let run = project.run(&[
        "promote",
        "prod",
        "--service",
        "orders",
        "--wait",
        "--timeout",
        "4m",
        "-o",
        "json",
    ])?;
    eprintln!(
        "blue-green: promote to the gate in {:.1} s",
        run.took.as_secs_f64()
    );
    let message = run.json["message"].as_str().unwrap_or_default();
    if run.code != Some(6)
        || run.json["status"] != "Paused"
        || !message.contains("preview Service `orders-preview`")
        || !message.contains("`platformctl rollout promote orders --env prod` continues it")
    {
        return Err(format!(
            "promote prod to the blue-green gate: exit {:?}\n{}\n{}",
            run.code, run.json, run.stderr
        ));
    }
    runtime.block_on(serves(client, "shop", "orders-preview", "0.2.0"))?;
    runtime.block_on(serves(client, "shop", "orders", "0.1.0"))?;
    opened(project, "prod", "0.2.0")?;
    runtime.block_on(serves(client, "shop", "orders", "0.2.0"))?;

    // Back through Git: the earlier revision's tag committed and pushed, through the gate again.
    // Once the old ReplicaSet is scaled down: within `scaleDownDelaySeconds` of the switch the
    // controller takes a rollback to it at once, without gate or analysis (upstream's fast
    // track, `isBlueGreenFastTracked`).
    scaled_down(project, "prod", "0.1.0")?;
    let undo = project.must(&[
        "rollout", "undo", "orders", "--env", "prod", "--git", "-o", "json",
    ])?;
    let subject = crate::platform::git(project.dir.path(), &["log", "-1", "--format=%s"])?;
    if undo.json["status"] != "Changed"
        || undo.json["git"]["tag"] != "0.1.0"
        || subject.trim() != "roll back orders to 0.1.0 in prod"
        || undo.json["git"]["push"]["changed"] != true
    {
        return Err(format!(
            "rollout undo --git: {}\nlast commit: {subject}",
            undo.json
        ));
    }
    through_the_gate(
        project,
        "prod",
        "0.1.0",
        &[
            "rollout",
            "status",
            "orders",
            "--env",
            "prod",
            "--timeout",
            "3m",
            "-o",
            "json",
        ],
    )?;
    runtime.block_on(serves(client, "shop", "orders", "0.1.0"))
}

/// `waiting` (a command that follows the release) exits 6 at the blue-green gate of `env`,
/// naming the preview Service with `tag` on it and the command that continues; that command
/// opens the gate.
fn through_the_gate(project: &Project, env: &str, tag: &str, waiting: &[&str]) -> TestResult {
    // Until Argo CD has synced the release, the Rollout may still be Healthy at the old one.
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let run = loop {
        let run = project.run(waiting)?;
        if run.code != Some(0) || std::time::Instant::now() > deadline {
            break run;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let text = run.json.to_string();
    if run.code != Some(6)
        || !text.contains("preview Service `orders-preview`")
        || !text.contains(&format!("platformctl/orders:{tag}"))
        || !text.contains(&format!(
            "`platformctl rollout promote orders --env {env}` continues it"
        ))
    {
        let get = project.run(&["rollout", "get", "orders", "--env", env, "-o", "json"])?;
        return Err(format!(
            "{}: want exit 6 at the gate of {env}: exit {:?}\n{}\n{}\nrollout get: {}\n{}",
            waiting.join(" "),
            run.code,
            run.json,
            run.stderr,
            get.json,
            controller_log(env)
        ));
    }
    opened(project, env, tag)
}

/// `rollout promote` past the gate, then `rollout status` Healthy with `tag` stable.
fn opened(project: &Project, env: &str, tag: &str) -> TestResult {
    let promoted = project.must(&["rollout", "promote", "orders", "--env", env, "-o", "json"])?;
    if promoted.json["status"] != "Changed" {
        return Err(format!(
            "rollout promote orders in {env}: {}",
            promoted.json
        ));
    }
    // (how often the controller lost a promote made the instant it paused: argo-rollouts#4694)
    eprintln!(
        "blue-green: rollout promote in {env} in {:.1} s, notes {}",
        promoted.took.as_secs_f64(),
        promoted.json["notes"]
    );
    let done = project.run(&[
        "rollout",
        "status",
        "orders",
        "--env",
        env,
        "--timeout",
        "2m",
        "-o",
        "json",
    ])?;
    let stable = crate::promote::stable_image(&done.json["rollout"]);
    if done.code != Some(0) || stable != format!("platformctl/orders:{tag}") {
        return Err(format!(
            "rollout status orders in {env} after promote: exit {:?}, stable {stable}\n{}\npromote: {}\n{}",
            done.code,
            done.json,
            promoted.json,
            controller_log(env)
        ));
    }
    Ok(())
}

/// Until every ready endpoint of Service `service` answers with `version` (its
/// `app_build_info`), and there is at least one.
async fn serves(client: &Client, ns: &str, service: &str, version: &str) -> TestResult {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let seen = std::cell::RefCell::new(BTreeSet::new());
    let result = wait_for(
        &format!("Service {ns}/{service} served by {version} alone"),
        Duration::from_secs(60),
        || {
            let (slices, lp, seen) = (&slices, &lp, &seen);
            async move {
                let list = slices.list(lp).await.map_err(|e| e.to_string())?;
                let mut versions = BTreeSet::new();
                for slice in &list.items {
                    for e in &slice.endpoints {
                        if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                            continue;
                        }
                        for ip in &e.addresses {
                            let addr = std::net::SocketAddr::new(
                                ip.parse().map_err(|e| format!("{ip}: {e}"))?,
                                8080,
                            );
                            versions.insert(build_version(addr).await?);
                        }
                    }
                }
                *seen.borrow_mut() = versions.clone();
                Ok(versions.len() == 1 && versions.contains(version))
            }
        },
    )
    .await;
    result.map_err(|e| format!("{e}; the endpoints answered with {:?}", seen.borrow()))
}

/// The version in `app_build_info` on the pod's /metrics.
async fn build_version(addr: std::net::SocketAddr) -> Result<String, String> {
    let metrics = crate::monitoring::get(addr, "/metrics").await?;
    metrics
        .lines()
        .find(|l| l.starts_with("app_build_info{"))
        .and_then(|l| l.split("version=\"").nth(1))
        .and_then(|v| v.split('"').next())
        .map(str::to_string)
        .ok_or_else(|| format!("{addr}: no app_build_info on /metrics"))
}

/// What the Rollouts controller logged about orders (PLATFORMCTL_SIM_ROLLOUTS_LOGLEVEL=info for
/// its reasons), for a failure's message.
fn controller_log(env: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sim-up-micro/logs/argo-rollouts.log");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let ns = if env == "dev" { "shop-dev" } else { "shop" };
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("orders") && l.contains(ns))
        .collect();
    format!(
        "{} ({} lines about orders):\n{}",
        path.display(),
        lines.len(),
        lines[lines.len().saturating_sub(60)..].join("\n")
    )
}

/// Until the ReplicaSet of `env`'s orders Rollout with `tag` has no replicas.
fn scaled_down(project: &Project, env: &str, tag: &str) -> TestResult {
    let image = format!("platformctl/orders:{tag}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let get = project.must(&["rollout", "get", "orders", "--env", env, "-o", "json"])?;
        let revisions = get.json["rollout"]["revisions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let old = revisions.iter().find(|r| r["images"][0] == image.as_str());
        if old.is_some_and(|r| r["replicas"] == 0) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "the {tag} ReplicaSet in {env} is not scaled down: {}",
                get.json
            ));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}
