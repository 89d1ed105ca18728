//! `platformctl chaos` against the real Chaos Mesh controller manager of the shared cluster
//! (`--with chaos`): the customer-api of the rendered reference tree runs as real processes, 3
//! replicas in prod and 1 in dev, and the real chaos-controller-manager deletes the pod the
//! PodChaos selects; probe (or `--load`) traffic goes to the Service's ready endpoints.
//!
//! - prod under the `load:` entry's 50 req/s: one pod killed, its replacement Ready, the verdict
//!   passes, recovery and the window's failures reported, the load thresholds judged, JUnit one
//!   case per phase, no PodChaos left;
//! - dev, 1 replica: availability is lost during recovery, the verdict fails (exit 1) with the
//!   figures;
//! - not in steady state (a replica that cannot start: a ResourceQuota): nothing injected, exit 1;
//! - a run SIGKILLed after injecting leaves its PodChaos, which the next run removes first;
//! - SIGINT or SIGTERM at random moments across 30 runs: each exits 130 or finishes, and no
//!   PodChaos is ever left behind (counted after every run).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, ResourceQuota, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use libtest_mimic::Trial;
use platformctl::kube::{Applier, Options as ApplyOptions};
use serde_json::{Value, json};

use crate::support::{self, Namespaces, TestResult, wait_for};

pub fn trials() -> Vec<Trial> {
    vec![support::trial(
        "chaos_pod_kill_through_real_chaos_mesh_judges_continuity_and_always_cleans_up",
        || support::run(chaos),
    )]
}

struct Out {
    code: Option<i32>,
    json: Value,
    stderr: String,
}

fn command(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_platformctl"));
    cmd.args(args).args(["-o", "json"]);
    // (`chaos list` reads only platform.yaml)
    if args.get(1) != Some(&"list") {
        cmd.args(["--driver", "existing"]);
    }
    cmd.current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

fn run(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Result<Out, String> {
    let out = command(dir, kubeconfig, args)
        .output()
        .map_err(|e| format!("platformctl {args:?}: {e}"))?;
    Ok(Out {
        code: out.status.code(),
        json: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn podchaos(client: &Client, ns: &str) -> Api<DynamicObject> {
    platformctl::chaos::object::api(client, ns, "PodChaos")
}

pub(crate) async fn left(client: &Client, ns: &str) -> Result<Vec<String>, String> {
    let list = podchaos(client, ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list PodChaos: {e}"))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect())
}

async fn ready(client: &Client, ns: &str) -> Result<usize, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=customer-api"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .iter()
        .filter(|p| platformctl::kube::portforward::is_ready(p))
        .count())
}

async fn until_ready(client: &Client, ns: &str, n: usize) -> TestResult {
    let waited = wait_for(
        &format!("{n} ready customer-api pods in {ns}"),
        Duration::from_secs(60),
        || async {
            // (exactly n: a killed pod still terminating is not counted by is_ready)
            Ok(ready(client, ns).await? == n)
        },
    )
    .await;
    if let Err(e) = waited {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let list = pods
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let seen: Vec<String> = list
            .items
            .iter()
            .map(|p| {
                let status = p.status.as_ref();
                format!(
                    "{} {:?} {:?}",
                    p.metadata.name.as_deref().unwrap_or_default(),
                    status.and_then(|s| s.phase.clone()),
                    status.and_then(|s| s.container_statuses.clone())
                )
            })
            .collect();
        let rollout = platformctl::rollout::actions::api(client, ns)
            .get("customer-api")
            .await
            .map(|r| format!("{:?} {}", r.metadata.labels, r.data["status"]))
            .unwrap_or_else(|e| e.to_string());
        return Err(format!("{e}; its pods: {seen:#?}; its Rollout: {rollout}"));
    }
    Ok(())
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

async fn chaos(cluster: &'static support::Cluster, client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "chaos", &["prod", "practice", "chaos"]).await?;
    let result = experiments(cluster, &client, &namespaces).await;
    namespaces.delete().await;
    result
}

async fn experiments(cluster: &support::Cluster, client: &Client, ns: &Namespaces) -> TestResult {
    let (prod, dev, chaos_ns) = (ns.get("prod"), ns.get("practice"), ns.get("chaos"));
    // The reference service of the rendered tree, as Argo CD would apply it.
    let objects: Vec<(String, Value)> = crate::render_tree(support::repo_root())?
        .into_iter()
        .filter(|(file, o)| {
            // (all but the HPA: the replicas stay as rendered)
            file.contains("/customer-api/") && o["kind"] != "HorizontalPodAutoscaler"
        })
        .collect();
    let manifests = crate::apply::manifests(&objects, ns, |object| {
        if matches!(
            object["kind"].as_str(),
            Some("Rollout" | "AnalysisTemplate")
        ) {
            object["metadata"]["labels"]["argo-rollouts.argoproj.io/controller-instance-id"] =
                json!(support::ROLLOUTS_INSTANCE_ID);
        }
    })?;
    for n in [prod, dev] {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "customer-api-admin"}, "stringData": {"ADMIN_TOKEN": "t"}}))
        .map_err(|e| e.to_string())?;
        Api::<Secret>::namespaced(client.clone(), n)
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| format!("secret: {e}"))?;
    }
    // The Rollouts last: one applied before its AnalysisTemplate exists is InvalidSpec until
    // the controller looks again (Argo CD orders them the same way, by sync wave).
    let engine = Applier::new(client.clone(), ApplyOptions::default());
    let (rollouts, rest): (Vec<_>, Vec<_>) =
        manifests.into_iter().partition(|m| m.kind() == "Rollout");
    crate::apply::run(&engine, &rest).await?;
    // (and once the controller's informer has the AnalysisTemplate: it validates against its
    // cache, and does not look again when the template arrives after the Rollout)
    tokio::time::sleep(Duration::from_secs(2)).await;
    crate::apply::run(&engine, &rollouts).await?;
    until_ready(client, prod, 3).await?;
    until_ready(client, dev, 1).await?;

    // The project: the reference platform.yaml in the test's namespaces, a dev experiment.
    let project = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut p: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(support::repo_root().join("platform.yaml"))
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    p["environments"][0]["namespace"] = dev.into();
    p["environments"][1]["namespace"] = prod.into();
    p["addons"]["chaosMesh"]["namespace"] = chaos_ns.into();
    // (no Prometheus of the platform's in these namespaces: the verdict is the probe's)
    p["addons"]["kubePrometheusStack"]["enabled"] = false.into();
    p["chaos"]
        .as_sequence_mut()
        .ok_or("platform.yaml has no chaos list")?
        .push(
            serde_yaml::from_str(
                "{name: pod-kill-dev, service: customer-api, environment: dev, action: pod-kill, recoveryTimeout: 30s}",
            )
            .map_err(|e| e.to_string())?,
        );
    let dir = project.path();
    std::fs::write(
        dir.join("platform.yaml"),
        serde_yaml::to_string(&p).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let kc = cluster.kubeconfig.as_path();

    let list = run(dir, kc, &["chaos", "list"])?;
    if list.code != Some(0) || names(&list.json["experiments"]) != ["pod-kill", "pod-kill-dev"] {
        return Err(format!("chaos list: {:?} {}", list.code, list.json));
    }

    // 1. prod, 3 replicas under the load entry's 50 req/s.
    eprintln!("chaos trial: prod under load");
    let junit = dir.join("chaos.xml");
    let started = Instant::now();
    let r = run(
        dir,
        kc,
        &[
            "chaos",
            "pod-kill",
            "--load",
            "--junit",
            junit.to_str().unwrap_or_default(),
        ],
    )?;
    let j = &r.json["journal"];
    let phases: Vec<String> = j["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect();
    if r.code != Some(0)
        || r.json["status"] != "Passed"
        || phases != ["steady-state", "inject", "recovery", "verdict", "clean-up"]
        || j["killed"].as_array().map(Vec::len) != Some(1)
        || j["replacements"]
            .as_array()
            .is_none_or(|v| v.is_empty() || v.iter().any(|r| !r["readyAfter"].is_number()))
        || !j["recoverySeconds"].as_f64().is_some_and(|s| s > 0.0)
        || j["verdict"]["passed"] != true
        || j["probe"]["targetRate"] != 50.0
    {
        return Err(format!(
            "prod pod-kill: exit {:?}\n{}\n{:#}",
            r.code, r.stderr, r.json
        ));
    }
    let thresholds = r.json["loadThresholds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if thresholds.len() != 2 || thresholds.iter().any(|t| t["passed"] != true) {
        return Err(format!("prod pod-kill --load thresholds: {thresholds:?}"));
    }
    let xml = std::fs::read_to_string(&junit).map_err(|e| e.to_string())?;
    let doc = roxmltree::Document::parse(&xml).map_err(|e| e.to_string())?;
    let cases = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    if cases != 7 || doc.descendants().any(|n| n.has_tag_name("failure")) {
        return Err(format!("JUnit of the prod run: {xml}"));
    }
    let killed = j["killed"][0].as_str().unwrap_or_default().to_string();
    let pods: Api<Pod> = Api::namespaced(client.clone(), prod);
    if pods
        .get_opt(&killed)
        .await
        .map_err(|e| e.to_string())?
        .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
    {
        return Err(format!("the killed pod {killed} is still there"));
    }
    if !left(client, chaos_ns).await?.is_empty() {
        return Err("a PodChaos is left after the prod run".into());
    }
    eprintln!(
        "chaos: prod pod-kill passed in {:.1} s: recovery {} s, window {} requests {} failed",
        started.elapsed().as_secs_f64(),
        j["recoverySeconds"],
        j["phases"][3]["data"]["requests"],
        j["phases"][3]["data"]["failed"]
    );

    // 2. dev, 1 replica: the service is gone until its replacement is Ready.
    eprintln!("chaos trial: dev");
    until_ready(client, dev, 1).await?;
    let r = run(dir, kc, &["chaos", "pod-kill-dev"])?;
    let v = &r.json["journal"]["verdict"];
    if r.code != Some(1)
        || r.json["status"] != "Failed"
        || v["continuity"] != false
        || v["recovered"] != true
        || !v["availability"].as_f64().is_some_and(|a| a < 0.999)
        || !v["reasons"][0]
            .as_str()
            .is_some_and(|s| s.contains("availability during the window"))
        || !left(client, chaos_ns).await?.is_empty()
    {
        return Err(format!(
            "dev pod-kill: exit {:?}\n{}\n{:#}",
            r.code, r.stderr, r.json
        ));
    }

    // 3. Not in steady state: a fourth replica the quota refuses.
    eprintln!("chaos trial: not steady");
    until_ready(client, prod, 3).await?;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), prod);
    let quota: ResourceQuota = serde_json::from_value(
        json!({"metadata": {"name": "three-pods"}, "spec": {"hard": {"pods": "3"}}}),
    )
    .map_err(|e| e.to_string())?;
    quotas
        .create(&PostParams::default(), &quota)
        .await
        .map_err(|e| e.to_string())?;
    let rollouts = platformctl::rollout::actions::api(client, prod);
    let scale = |n: u32| json!({"spec": {"replicas": n}});
    rollouts
        .patch(
            "customer-api",
            &PatchParams::default(),
            &Patch::Merge(&scale(4)),
        )
        .await
        .map_err(|e| e.to_string())?;
    let r = run(dir, kc, &["chaos", "pod-kill"])?;
    let steady_detail = r.json["journal"]["phases"][0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    rollouts
        .patch(
            "customer-api",
            &PatchParams::default(),
            &Patch::Merge(&scale(3)),
        )
        .await
        .map_err(|e| e.to_string())?;
    quotas
        .delete("three-pods", &DeleteParams::default())
        .await
        .map_err(|e| e.to_string())?;
    if r.code != Some(1)
        || r.json["status"] != "NotSteady"
        || r.json["journal"]["phases"].as_array().map(Vec::len) != Some(1)
        || !steady_detail.contains("1 of 4 replicas are not ready")
        || r.json["journal"]["killed"]
            .as_array()
            .is_none_or(|k| !k.is_empty())
    {
        return Err(format!(
            "not in steady state: exit {:?}\n{}\n{:#}",
            r.code, r.stderr, r.json
        ));
    }

    // 4. SIGKILLed after injecting: its PodChaos stays, and the next run removes it first.
    eprintln!("chaos trial: sigkill");
    until_ready(client, prod, 3).await?;
    let mut child = command(dir, kc, &["chaos", "pod-kill"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let seen = wait_for(
        "the killed run's PodChaos",
        Duration::from_secs(20),
        || async { Ok(!left(client, chaos_ns).await?.is_empty()) },
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    seen?;
    let orphan = left(client, chaos_ns).await?;
    until_ready(client, prod, 3).await?;
    let r = run(dir, kc, &["chaos", "pod-kill"])?;
    let removed: Vec<String> = r.json["journal"]["removedLeftovers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if orphan.len() != 1
        || removed != orphan
        || r.code != Some(0)
        || !left(client, chaos_ns).await?.is_empty()
    {
        return Err(format!(
            "after a SIGKILL, left {orphan:?}; the next run: exit {:?}, removed {removed:?}\n{}",
            r.code, r.stderr
        ));
    }

    // 5. SIGINT or SIGTERM at random moments, 30 runs.
    eprintln!("chaos trial: interrupts");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut x = seed;
    let mut next = move || {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..30 {
        until_ready(client, prod, 3).await?;
        let delay = Duration::from_millis(200 + next() % 7000);
        let (signal, name) = if next() % 2 == 0 {
            (libc::SIGINT, "SIGINT")
        } else {
            (libc::SIGTERM, "SIGTERM")
        };
        let child = command(dir, kc, &["chaos", "pod-kill"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let pid = child.id() as i32;
        tokio::time::sleep(delay).await;
        // SAFETY: pid is our own child, not yet reaped.
        unsafe { libc::kill(pid, signal) };
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let code = out.status.code();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let leftover = left(client, chaos_ns).await?;
        let finished = matches!(code, Some(0 | 1)) && report["kind"] == "ChaosReport";
        if !(code == Some(130) || finished) || !leftover.is_empty() {
            return Err(format!(
                "run {i} (seed {seed}), {name} after {delay:?}: exit {code:?}, left {leftover:?}: {report}"
            ));
        }
        *tally
            .entry(format!(
                "{}:{}",
                code.unwrap_or(-1),
                report["status"].as_str().unwrap_or("?")
            ))
            .or_default() += 1;
    }
    eprintln!(
        "chaos: 30 interrupted runs (seed {seed}), exits and statuses {tally:?}, no PodChaos left after any"
    );
    if tally.keys().filter(|k| k.starts_with("130:")).count() == 0 {
        return Err(format!("no run was interrupted: {tally:?}"));
    }
    Ok(())
}
