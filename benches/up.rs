//! Benchmark: a no-op `platformctl up` on a converged platform, against what a hand-wired setup
//! re-runs to the same end, in the same run. Budget: every no-op `up` finishes in under 10 s.
//!
//! The platform is the end-to-end test's (`tests/cluster/up.rs`, `tests/common/platform.rs`):
//! this repository's customer-platform with `--driver existing` on the simulated cluster
//! (`tests/sim/cluster up --with rollouts,argocd,metrics`: real etcd, kube-apiserver, Argo CD,
//! Argo Rollouts and metrics-server, kwok nodes), its tree in a git repository served over HTTP
//! on loopback and the addons' stand-in charts in a chart repository on loopback. One `up` from
//! nothing, then ROUNDS no-op `up -o json` runs (each must report `Converged`), timed as whole
//! processes.
//!
//! The peer is the shell script a hand-wired setup re-runs, written once the platform is up and
//! run with bash in each round, right after platformctl's no-op: for each of the 6 Helm releases
//! `helm upgrade --install` at its chart version with the values `helm get values` returns (read
//! before timing), one after the other; `kubectl apply --server-side -R` of the rendered `argocd/`
//! directory (the projects and applications of `up`'s apps step; field manager `platformctl`, so
//! ownership stays as `up` left it); `kubectl wait` for the Applications Synced, then Healthy.
//! It leaves out what `up` also does (namespaces and RBAC, Secrets, the `git ls-remote` check,
//! reading the nodes), so the ratio favours the peer.
//!
//! Run: `cargo bench --bench up` (ROUNDS=5 by default). It starts its own cluster on ports
//! 26900..26914 with state in target/bench-up-sim, and stops it at the end. Exit 0 even over
//! budget, unless BENCH_ENFORCE=1; exit 2 if a no-op `up` is not `Converged`.

#[path = "../tests/common/platform.rs"]
mod platform;
#[path = "common/sim.rs"]
mod sim;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use platformctl::addons::Helm;
use serde_json::Value;
use sim::Sim;

/// Seconds a second `up` on a converged platform may take.
const BUDGET: f64 = 10.0;
const PORT_BASE: &str = "26900";

fn main() -> ExitCode {
    sim::exit("up", run())
}

/// The project directory and what platformctl, helm and kubectl need around it.
struct Project {
    dir: tempfile::TempDir,
    helm_home: tempfile::TempDir,
    helm: PathBuf,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
}

impl Project {
    /// `tool` in the project directory, on its cluster, with its own helm directories and no
    /// git configuration of the machine's.
    fn command(&self, tool: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(tool);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PLATFORMCTL_HELM", &self.helm)
            .env("HELM_CACHE_HOME", self.helm_home.path().join("cache"))
            .env("HELM_CONFIG_HOME", self.helm_home.path().join("config"))
            .env("HELM_DATA_HOME", self.helm_home.path().join("data"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `tool`; its stdout, or an error with its stderr.
    fn must(&self, tool: &Path, args: &[&str]) -> Result<String, String> {
        let out = self
            .command(tool, args)
            .output()
            .map_err(|e| format!("{} {args:?}: {e}", tool.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} {} exited {}:\n{}{}",
                tool.display(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `platformctl up -o json`: its report and how long the whole process took.
    fn up(&self, extra: &[&str]) -> Result<(Value, Duration), String> {
        let args = [&["up", "-o", "json"], extra].concat();
        let start = Instant::now();
        let out = self.must(Path::new(env!("CARGO_BIN_EXE_platformctl")), &args)?;
        let took = start.elapsed();
        let report = serde_json::from_str(&out).map_err(|e| format!("up -o json: {e}: {out}"))?;
        Ok((report, took))
    }
}

fn run() -> Result<bool, String> {
    let rounds = sim::rounds();
    let cluster = Sim::start(
        "bench-up-sim",
        PORT_BASE,
        &["--with", "rollouts,argocd,metrics"],
    )?;
    let kubeconfig = cluster.kubeconfig.clone();

    // The chart repository, the git server and the project, as the end-to-end test has them.
    let project = Project {
        dir: tempfile::tempdir().map_err(|e| e.to_string())?,
        helm_home: tempfile::tempdir().map_err(|e| e.to_string())?,
        helm: cluster.tool("helm")?,
        kubectl: cluster.tool("kubectl")?,
        kubeconfig,
    };
    let charts = platform::ChartRepo::start(&Helm::new(&project.helm), project.helm_home.path())?;
    let repos = tempfile::tempdir().map_err(|e| e.to_string())?;
    let served = cluster
        .harness(&["git-serve", &repos.path().display().to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    let base_url = String::from_utf8_lossy(&served.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    if !served.status.success() || !base_url.starts_with("http://") {
        return Err(format!("git-serve failed: {base_url}"));
    }
    let repo_url = format!("{}/customer-platform.git", base_url.trim_end_matches('/'));
    let dir = project.dir.path();
    std::fs::write(
        dir.join("platform.yaml"),
        platform::test_platform_from("platform.yaml", Some(&repo_url), &charts.url)?,
    )
    .map_err(|e| e.to_string())?;
    project.must(Path::new(env!("CARGO_BIN_EXE_platformctl")), &["render"])?;
    platform::git(
        repos.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            "customer-platform.git",
        ],
    )?;
    platform::git(dir, &["init", "-q", "-b", "main"])?;
    platform::git(dir, &["add", "-A"])?;
    platform::git(dir, &["commit", "-q", "-m", "platform"])?;
    platform::git(dir, &["push", "-q", &repo_url, "main"])?;

    let (first, first_took) = project.up(&["--timeout", "3m"])?;
    if first["status"] != "Applied" {
        return Err(format!("up from nothing: status {}", first["status"]));
    }
    eprintln!(
        "bench up: up from nothing {:.1} s",
        first_took.as_secs_f64()
    );

    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let script = peer_script(&project, &charts.url, work.path())?;
    let mut ours: Vec<(Duration, Value)> = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..rounds {
        let (report, took) = project.up(&[])?;
        if report["status"] != "Converged" {
            eprintln!("bench up: error: no-op up {round} was not Converged:\n{report:#}");
            return Err(format!("no-op up: status {}", report["status"]));
        }
        let start = Instant::now();
        project.must(Path::new("bash"), &[&script.display().to_string()])?;
        let peer = start.elapsed();
        eprintln!(
            "bench up: round {round}: platformctl {:.2} s, peer {:.2} s",
            took.as_secs_f64(),
            peer.as_secs_f64()
        );
        ours.push((took, report));
        theirs.push(peer);
    }

    ours.sort_by_key(|(took, _)| *took);
    let (median_ours, median_report) = &ours[ours.len() / 2];
    let (min, max) = (ours[0].0, ours[ours.len() - 1].0);
    let median_theirs = median(&theirs);
    let ratio = median_theirs.as_secs_f64() / median_ours.as_secs_f64();
    println!(
        "platformctl up on the simulated cluster (customer-platform, 6 Helm releases, 2 applications):"
    );
    println!("  from nothing: {:>6.2} s", first_took.as_secs_f64());
    println!(
        "  no-op, {rounds} rounds: min {:.2} s   median {:.2} s   max {:.2} s",
        min.as_secs_f64(),
        median_ours.as_secs_f64(),
        max.as_secs_f64()
    );
    let steps: Vec<String> = median_report["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{} {:.2}",
                s["name"].as_str().unwrap_or("?"),
                s["seconds"].as_f64().unwrap_or(0.0)
            )
        })
        .collect();
    println!("  median run's steps (s): {}", steps.join(", "));
    println!(
        "  peer (helm upgrade --install x6, kubectl apply --server-side, kubectl wait): median {:.2} s   ratio {ratio:.1}x",
        median_theirs.as_secs_f64()
    );
    let ok = max.as_secs_f64() < BUDGET;
    println!(
        "budget: every no-op up < {BUDGET} s: {}",
        if ok { "PASS" } else { "FAIL" }
    );
    drop(charts);
    Ok(ok)
}

/// The script a hand-wired setup re-runs, from the cluster as `up` left it: each release
/// upgraded in turn at its chart version with the values it was installed with, the `argocd/`
/// tree applied, the applications waited for. Written, with the values files, into `work`.
fn peer_script(project: &Project, charts_url: &str, work: &Path) -> Result<PathBuf, String> {
    let dir = project.dir.path();
    let releases: Vec<Value> =
        serde_json::from_str(&project.must(&project.helm, &["list", "-A", "-o", "json"])?)
            .map_err(|e| format!("helm list: {e}"))?;
    if releases.len() != 6 {
        return Err(format!(
            "expected 6 Helm releases, found {}",
            releases.len()
        ));
    }
    let mut script = String::from("set -euo pipefail\n");
    for r in &releases {
        let (name, ns) = (
            r["name"].as_str().unwrap_or_default(),
            r["namespace"].as_str().unwrap_or_default(),
        );
        let meta: Value = serde_json::from_str(&project.must(
            &project.helm,
            &["get", "metadata", name, "-n", ns, "-o", "json"],
        )?)
        .map_err(|e| format!("helm get metadata {name}: {e}"))?;
        let values = project.must(
            &project.helm,
            &["get", "values", name, "-n", ns, "-o", "yaml"],
        )?;
        let file = work.join(format!("{ns}-{name}.yaml"));
        std::fs::write(&file, values).map_err(|e| e.to_string())?;
        script.push_str(&format!(
            "'{}' upgrade --install {name} {} --repo {charts_url} --version {} -n {ns} -f '{}' >/dev/null\n",
            project.helm.display(),
            meta["chart"].as_str().ok_or("helm get metadata: no chart")?,
            meta["version"].as_str().ok_or("helm get metadata: no version")?,
            file.display()
        ));
    }
    let kubectl = project.kubectl.display();
    script.push_str(&format!(
        "'{kubectl}' apply --server-side --field-manager=platformctl -R -f '{}' >/dev/null\n",
        dir.join("argocd").display()
    ));
    let mut apps = Vec::new();
    for (path, text) in platformctl::render::read(dir).map_err(|e| e.to_string())? {
        if path.starts_with("argocd/") {
            for m in platformctl::kube::manifest::parse(&path, &text).map_err(|e| e.to_string())? {
                if m.kind() == "Application" {
                    apps.push((
                        m.namespace().unwrap_or("argocd").to_string(),
                        m.name().to_string(),
                    ));
                }
            }
        }
    }
    if apps.is_empty() {
        return Err("the rendered argocd/ tree has no Application".into());
    }
    for (field, want) in [("sync", "Synced"), ("health", "Healthy")] {
        for (ns, name) in &apps {
            script.push_str(&format!(
                "'{kubectl}' wait -n {ns} applications.argoproj.io/{name} --for=jsonpath='{{.status.{field}.status}}'={want} --timeout=3m >/dev/null\n"
            ));
        }
    }
    let file = work.join("peer.sh");
    std::fs::write(&file, &script).map_err(|e| e.to_string())?;
    eprintln!("bench up: the peer script ({}):\n{script}", file.display());
    Ok(file)
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}
