//! Benchmark: how long sim-kubelet (tests/sim/kubelet, the simulated cluster's stand-in for a
//! kubelet and container runtime) takes from a pod being scheduled to its process running.
//! Budget: it adds under 50 ms (median) to what the same path costs for kwok's status-only pod
//! (the API server's create, the watch to the node agent, its status write, the watch back);
//! sim-kubelet's own log also says, per pod, how long from seeing it to its first process.
//!
//! Each round creates one pod already bound to a node (`spec.nodeName` set, as the scheduler's
//! binding leaves it) and times, from the create call, until a watch sees
//! `status.containerStatuses[0].state.running`: for a reference-service image that is
//! sim-kubelet having spawned the real process and written the status; the peer, in the same
//! rounds, is kwok's own status-only pod (its fast pod stages), which starts nothing. Pods are
//! deleted after each round. Both go through the same API server and watch, so the ratio shows
//! what running a process costs over writing a status.
//!
//! Run: `cargo bench --bench kubelet` (ROUNDS=5 by default). It starts its own cluster
//! (`tests/sim/cluster up --with workloads`) on ports 27000..27014 with state in
//! target/bench-kubelet-sim, and stops it at the end. Exit 0 even over budget, unless
//! BENCH_ENFORCE=1.

// (the shared harness; this bench does not use its `tool`)
#[allow(dead_code)]
#[path = "common/sim.rs"]
mod sim;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use sim::Sim;

const BUDGET_MS: f64 = 50.0;
const PORT_BASE: &str = "27000";

fn main() -> ExitCode {
    sim::exit("kubelet", run())
}

fn run() -> Result<bool, String> {
    let sim = Sim::start("bench-kubelet-sim", PORT_BASE, &["--with", "workloads"])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let rounds = sim::rounds();
    let (ours, peer) = runtime.block_on(async {
        let kc = Kubeconfig::read_from(&sim.kubeconfig).map_err(|e| e.to_string())?;
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "bench-kubelet"}}))
            .map_err(|e| e.to_string())?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|e| e.to_string())?;
        // (the namespace's default ServiceAccount comes from the controller manager)
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pods: Api<Pod> = Api::namespaced(client, "bench-kubelet");
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            ours.push(
                time_to_running(&pods, &format!("svc-{i}"), "platformctl/customer-api:0.1.0")
                    .await?,
            );
            peer.push(
                time_to_running(&pods, &format!("kwok-{i}"), "registry.k8s.io/pause:3.10").await?,
            );
        }
        Ok::<_, String>((ours, peer))
    })?;
    drop(sim);
    let (m, p) = (median(ours.clone()), median(peer.clone()));
    println!(
        "sim-kubelet: scheduled → process running: median {m:.1} ms (min {:.1}, max {:.1}) over {rounds} pods",
        ours.iter().cloned().fold(f64::MAX, f64::min),
        ours.iter().cloned().fold(0.0, f64::max)
    );
    println!("kwok status-only pod: scheduled → running status: median {p:.1} ms");
    let added = m - p;
    println!(
        "ratio sim-kubelet / kwok: {:.2}x; added by sim-kubelet: {added:.1} ms, budget < {BUDGET_MS} ms: {}",
        m / p,
        if added < BUDGET_MS { "pass" } else { "FAIL" }
    );
    Ok(added < BUDGET_MS)
}

async fn time_to_running(pods: &Api<Pod>, name: &str, image: &str) -> Result<f64, String> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "nodeName": "minikube-m02",
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image, "ports": [{"containerPort": 8080}]}],
        },
    }))
    .map_err(|e| e.to_string())?;
    let wp = WatchParams::default().fields(&format!("metadata.name={name}"));
    let mut stream = pods
        .watch(&wp, "0")
        .await
        .map_err(|e| e.to_string())?
        .boxed();
    let start = Instant::now();
    pods.create(&PostParams::default(), &pod)
        .await
        .map_err(|e| e.to_string())?;
    let running = |p: &Pod| {
        p.status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
            .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
    };
    let elapsed = loop {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .map_err(|_| format!("pod {name} not running within 30 s"))?;
        match next {
            Some(Ok(WatchEvent::Added(p) | WatchEvent::Modified(p))) if running(&p) => {
                break start.elapsed();
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err(format!("watch of {name} ended")),
        }
    };
    pods.delete(
        name,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(elapsed.as_secs_f64() * 1000.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
