//! Benchmark: how soon `platformctl rollout watch` prints a change of a Rollout's status.
//! Budget (DESIGN.md): within 200 ms of the change (median and 95th percentile).
//!
//! Each round writes a new `status.message` to the Rollout's status subresource (as the Rollouts
//! controller writes its status) and times, from that write, until `platformctl rollout watch
//! customer-api --env prod -o json` prints the event carrying it; the peer, in the same rounds,
//! is `kubectl get rollout customer-api -w -o jsonpath=…` printing the same message (a raw watch
//! that only prints a field: the floor for any watch). No Rollouts controller runs, so nothing but
//! the writes moves the status.
//!
//! Run: `cargo bench --bench watch` (ROUNDS=5 by default; try ROUNDS=30). It starts its own
//! cluster (`tests/sim/cluster up`) on ports 27100..27114 with state in target/bench-watch-sim,
//! and stops it at the end. Exit 0 even over budget, unless BENCH_ENFORCE=1.

#[path = "common/sim.rs"]
mod sim;

use std::io::BufRead;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use sim::Sim;

const BUDGET_MS: f64 = 200.0;
const PORT_BASE: &str = "27100";

fn main() -> ExitCode {
    sim::exit("watch", run())
}

/// A child's stdout lines, each with when it arrived.
fn lines(child: &mut Child) -> Result<mpsc::Receiver<(Instant, String)>, String> {
    let out = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Milliseconds from `since` until a line of `rx` holds `marker`.
fn until(
    rx: &mpsc::Receiver<(Instant, String)>,
    marker: &str,
    since: Instant,
) -> Result<f64, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, line) = rx
            .recv_timeout(left)
            .map_err(|_| format!("no line with {marker} within 10 s"))?;
        if line.contains(marker) {
            return Ok(at.duration_since(since).as_secs_f64() * 1000.0);
        }
    }
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn run() -> Result<bool, String> {
    let sim = Sim::start("bench-watch-sim", PORT_BASE, &[])?;
    let project = tempfile::tempdir().map_err(|e| e.to_string())?;
    let platform = std::fs::read_to_string(sim::root().join("platform.yaml"))
        .map_err(|e| e.to_string())?
        .replace("  driver: minikube\n", "  driver: existing\n");
    let file = project.path().join("platform.yaml");
    std::fs::write(&file, platform).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let rollouts: Api<DynamicObject> = runtime.block_on(async {
        let kc = Kubeconfig::read_from(&sim.kubeconfig).map_err(|e| e.to_string())?;
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "prod"}}))
            .map_err(|e| e.to_string())?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|e| e.to_string())?;
        let api: Api<DynamicObject> = Api::namespaced_with(
            client,
            "prod",
            &platformctl::kube::argo("Rollout", "rollouts"),
        );
        let rollout: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "customer-api", "namespace": "prod"},
            "spec": {"replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "customer-api"}},
                "template": {"metadata": {"labels": {"app.kubernetes.io/name": "customer-api"}},
                    "spec": {"containers": [{"name": "c", "image": "platformctl/customer-api:0.1.0"}]}},
                "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}}
        }))
        .map_err(|e| e.to_string())?;
        api.create(&PostParams::default(), &rollout)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(api)
    })?;
    let write = |message: &str| {
        let patch = json!({"status": {"observedGeneration": "1", "phase": "Progressing", "message": message}});
        runtime
            .block_on(rollouts.patch_status(
                "customer-api",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            ))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    write("round-0")?;
    let mut ours = Command::new(env!("CARGO_BIN_EXE_platformctl"))
        .args(["-f"])
        .arg(&file)
        .args([
            "rollout",
            "watch",
            "customer-api",
            "--env",
            "prod",
            "-o",
            "json",
            "--timeout",
            "1h",
        ])
        .env("KUBECONFIG", &sim.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut peer = Command::new(sim.tool("kubectl")?)
        .args(["--kubeconfig"])
        .arg(&sim.kubeconfig)
        .args([
            "-n",
            "prod",
            "get",
            "rollouts.argoproj.io",
            "customer-api",
            "-w",
            "-o",
            "jsonpath={.status.message}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let (ours_rx, peer_rx) = (lines(&mut ours)?, lines(&mut peer)?);
    // Both have listed the Rollout once before the rounds start.
    let start = Instant::now();
    until(&ours_rx, "round-0", start)?;
    until(&peer_rx, "round-0", start)?;
    let rounds = sim::rounds();
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    for i in 1..=rounds {
        let marker = format!("round-{i}");
        let at = Instant::now();
        write(&marker)?;
        mine.push(until(&ours_rx, &marker, at)?);
        theirs.push(until(&peer_rx, &marker, at)?);
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = ours.kill();
    let _ = peer.kill();
    let _ = (ours.wait(), peer.wait());
    drop(sim);
    let (m50, m95) = (percentile(mine.clone(), 0.5), percentile(mine, 0.95));
    let (p50, p95) = (percentile(theirs.clone(), 0.5), percentile(theirs, 0.95));
    println!(
        "platformctl rollout watch: status write → event printed: median {m50:.1} ms, p95 {m95:.1} ms over {rounds} changes"
    );
    println!("kubectl get rollout -w (peer, a raw watch): median {p50:.1} ms, p95 {p95:.1} ms");
    let ok = m95 < BUDGET_MS;
    println!(
        "ratio platformctl / kubectl (median): {:.2}x; budget p95 < {BUDGET_MS} ms: {}",
        m50 / p50.max(0.001),
        if ok { "pass" } else { "FAIL" }
    );
    Ok(ok)
}
