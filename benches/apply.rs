//! Benchmark: applying the rendered customer-platform tree to the simulated cluster
//! (`tests/sim/cluster`: real etcd and kube-apiserver 1.34, kwok nodes), with platformctl's apply
//! engine and with `kubectl apply --server-side` on the same files, in the same run.
//! Budget: platformctl >= 3x faster.
//!
//! Each round renders the tree into fresh namespaces (one set per tool and round), so both tools
//! create the same objects; a second pass over the same files measures the no-op re-apply.
//! platformctl's time includes reading the kubeconfig, building the client, discovery and every
//! request, everything but process start (`platformctl --version` is a separate < 20 ms budget);
//! kubectl's is its whole process, with its discovery cache warm after the first round.
//!
//! Run: `cargo bench --bench apply` (ROUNDS=5 by default). It starts its own cluster on ports
//! 26800.. with state in target/bench-sim, and stops it at the end. Exit 0 even over budget,
//! unless BENCH_ENFORCE=1.

#[path = "common/sim.rs"]
mod sim;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use platformctl::kube::{Applier, Manifest, Options, manifest};
use sim::{Sim, root};

const BUDGET: f64 = 3.0;
const PORT_BASE: &str = "26800";

fn main() -> ExitCode {
    sim::exit("apply", run())
}

fn run() -> Result<bool, String> {
    let rounds = sim::rounds();
    let cluster = Sim::start("bench-sim", PORT_BASE, &[])?;
    let kubeconfig = cluster.kubeconfig.clone();
    let kubectl = cluster.tool("kubectl")?;

    let tree = platformctl::render::read(root()).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;

    let (mut ours, mut theirs, mut ours_noop, mut theirs_noop) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        for tool in ["kubectl", "platformctl"] {
            // The tree with its namespaces renamed for this tool and round; the namespaces first.
            let dir = work.path().join(format!("{tool}-{round}"));
            let suffix = format!("-{}{round}", &tool[..1]);
            let namespaces = write_tree(&tree, &dir, &suffix)?;
            create_namespaces(&kubectl, &kubeconfig, &namespaces)?;
            for pass in 0..2 {
                let took = if tool == "kubectl" {
                    let start = Instant::now();
                    let out = Command::new(&kubectl)
                        .args([
                            "apply",
                            "--server-side",
                            "--field-manager=platformctl",
                            "-R",
                            "-f",
                        ])
                        .arg(&dir)
                        .env("KUBECONFIG", &kubeconfig)
                        .output()
                        .map_err(|e| e.to_string())?;
                    if !out.status.success() {
                        return Err(format!(
                            "kubectl apply failed: {}",
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                    start.elapsed()
                } else {
                    let start = Instant::now();
                    runtime.block_on(apply_dir(&kubeconfig, &dir))?;
                    start.elapsed()
                };
                match (tool, pass) {
                    ("kubectl", 0) => theirs.push(took),
                    ("kubectl", _) => theirs_noop.push(took),
                    (_, 0) => ours.push(took),
                    _ => ours_noop.push(took),
                }
            }
        }
    }
    let objects = tree
        .values()
        .map(|t| t.matches("\nkind: ").count() + usize::from(t.starts_with("kind: ")))
        .sum::<usize>();
    let create = median(&theirs).as_secs_f64() / median(&ours).as_secs_f64();
    let noop = median(&theirs_noop).as_secs_f64() / median(&ours_noop).as_secs_f64();
    println!(
        "apply of the customer-platform tree ({} files, ~{objects} objects), median of {rounds} rounds:",
        tree.len()
    );
    println!(
        "  create:  platformctl {:>7.1} ms   kubectl apply --server-side {:>7.1} ms   ratio {create:.1}x",
        ms(median(&ours)),
        ms(median(&theirs))
    );
    println!(
        "  re-apply: platformctl {:>6.1} ms   kubectl apply --server-side {:>7.1} ms   ratio {noop:.1}x",
        ms(median(&ours_noop)),
        ms(median(&theirs_noop))
    );
    let ok = create >= BUDGET && noop >= BUDGET;
    println!(
        "budget: platformctl >= {BUDGET}x faster: {}",
        if ok { "PASS" } else { "FAIL" }
    );
    Ok(ok)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// Writes the tree with every `namespace: X` renamed to `X<suffix>`; returns the namespaces.
fn write_tree(
    tree: &std::collections::BTreeMap<String, String>,
    dir: &Path,
    suffix: &str,
) -> Result<Vec<String>, String> {
    let mut namespaces = std::collections::BTreeSet::new();
    for (path, text) in tree {
        let mut out = String::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            if let Some(ns) = trimmed.strip_prefix("namespace: ")
                && line.len() - trimmed.len() == 2
            {
                let ns = ns.trim().trim_matches('"');
                namespaces.insert(format!("{ns}{suffix}"));
                out.push_str(&format!("  namespace: {ns}{suffix}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().ok_or("no parent")?).map_err(|e| e.to_string())?;
        std::fs::write(&file, out).map_err(|e| e.to_string())?;
    }
    Ok(namespaces.into_iter().collect())
}

fn create_namespaces(kubectl: &Path, kubeconfig: &Path, names: &[String]) -> Result<(), String> {
    for name in names {
        let out = Command::new(kubectl)
            .args(["create", "namespace", name])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
    }
    Ok(())
}

async fn apply_dir(kubeconfig: &Path, dir: &Path) -> Result<(), String> {
    let client = platformctl::kube::client(Some(&kubeconfig.to_path_buf()), None)
        .await
        .map_err(|e| e.to_string())?;
    let mut manifests: Vec<Manifest> = Vec::new();
    for (path, text) in platformctl::render::read(dir).map_err(|e| e.to_string())? {
        manifests.extend(manifest::parse(&path, &text).map_err(|e| e.to_string())?);
    }
    let manifests = manifest::order(manifests).map_err(|e| e.to_string())?;
    Applier::new(client, Options::default())
        .apply(&manifests, &|_| {})
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
