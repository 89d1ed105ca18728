//! `platformctl up --driver existing` end to end, on a cluster of its own: the real control
//! plane, the real Argo CD (application controller, repo server) and the real Argo Rollouts
//! controller (reconciling every Rollout), the real metrics-server behind the metrics API (prod's
//! HPA scales its Rollout on the pods' CPU, as kwok simulates it), the real helm installing the
//! addons' stand-in charts from a chart repository on loopback, and the GitOps tree in a git
//! repository served over HTTP on loopback. "Synced and Healthy" is Argo CD's own verdict.
//!
//! Argo CD reads the tree over the git protocol (git-serve's `git daemon`), as it reads the
//! `gitops.local` server's. What cannot be real here: the in-cluster git server's pod (kwok
//! simulates it; a port-forward to it reaches git-serve's daemon instead, through the real API
//! server), and Argo CD, running outside the cluster, cannot resolve the server's in-cluster
//! name, so the platform uses `gitops.remote` and `gitops.local` is checked up to the push; and
//! the ingress controller: kwok publishes each Ingress's address in its status, as ingress-nginx
//! would, and nothing serves it (tests/sim/cluster says why).
//!
//! Stages, one after the other on the same cluster: up from nothing; a second up changes nothing;
//! status; down --keep-cluster; 20 runs of up killed with SIGKILL at random moments, then up
//! converges; gitops.local (refused while the tree is uncommitted, then the server created and
//! HEAD pushed, then unchanged); down --keep-cluster leaves nothing of the platform.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use libtest_mimic::Trial;
use serde_json::Value;

use crate::platform::test_platform_from;
use crate::support::{self, TestResult, wait_for};

pub fn trials() -> Vec<Trial> {
    vec![
        Trial::test(
            "up_converges_the_reference_platform_survives_20_kills_and_down_removes_it",
            || Ok(one_at_a_time(end_to_end)?),
        ),
        Trial::test(
            "up_converges_the_microservices_platform_with_blue_green_rollouts",
            || Ok(one_at_a_time(microservices)?),
        ),
    ]
}

/// The clusters of these tests, one at a time: each takes a whole machine's worth of
/// controllers, and two free port ranges probed at once could overlap.
fn one_at_a_time(test: fn() -> TestResult) -> TestResult {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = ONE.lock().unwrap_or_else(|e| e.into_inner());
    test()
}

/// A cluster of the test's own, stopped when dropped.
struct OwnCluster {
    dir: PathBuf,
    port_base: u16,
    kubeconfig: PathBuf,
}

impl OwnCluster {
    fn start(name: &str) -> Result<OwnCluster, String> {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let port_base = crate::free_port_base()?;
        let out = support::harness_command_in(
            &dir,
            port_base,
            &["up", "--with", "rollouts,argocd,metrics"],
        )
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let kubeconfig = stdout
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("KUBECONFIG="))
            .map(PathBuf::from);
        let cluster = OwnCluster {
            dir,
            port_base,
            kubeconfig: kubeconfig.clone().unwrap_or_default(),
        };
        match (out.status.success(), kubeconfig) {
            (true, Some(_)) => Ok(cluster),
            _ => Err(format!("tests/sim/cluster up failed ({})", out.status)),
        }
    }

    fn harness(&self, args: &[&str]) -> Command {
        support::harness_command_in(&self.dir, self.port_base, args)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.harness(&["down"]).stdout(Stdio::null()).status();
    }
}

/// Everything `platformctl` needs around it.
struct Project {
    dir: tempfile::TempDir,
    helm_home: tempfile::TempDir,
    helm: PathBuf,
    kubeconfig: PathBuf,
}

struct Run {
    code: Option<i32>,
    json: Value,
    stderr: String,
    took: Duration,
}

impl Project {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_platformctl"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PLATFORMCTL_HELM", &self.helm)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        self.helm_home_env(&mut cmd);
        cmd
    }

    /// helm with the project's own cache, config and data directories, on its cluster.
    fn helm(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.helm);
        cmd.args(args).arg("--kubeconfig").arg(&self.kubeconfig);
        self.helm_home_env(&mut cmd);
        cmd
    }

    fn helm_home_env(&self, cmd: &mut Command) {
        cmd.env("HELM_CACHE_HOME", self.helm_home.path().join("cache"))
            .env("HELM_CONFIG_HOME", self.helm_home.path().join("config"))
            .env("HELM_DATA_HOME", self.helm_home.path().join("data"));
    }

    fn run(&self, args: &[&str]) -> Result<Run, String> {
        let start = Instant::now();
        let out = self
            .command(args)
            .output()
            .map_err(|e| format!("platformctl {args:?}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        Ok(Run {
            code: out.status.code(),
            json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: start.elapsed(),
        })
    }

    fn must(&self, args: &[&str]) -> Result<Run, String> {
        let run = self.run(args)?;
        if run.code != Some(0) {
            return Err(format!(
                "platformctl {} exited {:?}:\n{}\n{}",
                args.join(" "),
                run.code,
                run.stderr,
                run.json
            ));
        }
        Ok(run)
    }
}

fn argo(client: &Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "argocd",
        &platformctl::kube::argo(kind, plural),
    )
}

/// What a converged `up` must leave untouched: every labelled namespace and Secret (their
/// resourceVersion), the Applications' and projects' generation and platformctl's managedFields
/// entry, and each Helm release's revision.
async fn fingerprint(
    client: &Client,
    project: &Project,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let lp = ListParams::default().labels("app.kubernetes.io/managed-by=platformctl");
    for ns in Api::<Namespace>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|e| e.to_string())?
    {
        out.insert(
            format!("Namespace {}", ns.metadata.name.unwrap_or_default()),
            ns.metadata.resource_version.unwrap_or_default(),
        );
    }
    for s in Api::<Secret>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|e| e.to_string())?
    {
        out.insert(
            format!(
                "Secret {}/{}",
                s.metadata.namespace.unwrap_or_default(),
                s.metadata.name.unwrap_or_default()
            ),
            s.metadata.resource_version.unwrap_or_default(),
        );
    }
    for (kind, plural) in [
        ("Application", "applications"),
        ("AppProject", "appprojects"),
    ] {
        for o in argo(client, kind, plural)
            .list(&lp)
            .await
            .map_err(|e| e.to_string())?
        {
            let entry = o.metadata.managed_fields.iter().flatten().find(|m| {
                m.manager.as_deref() == Some("platformctl")
                    && m.operation.as_deref() == Some("Apply")
            });
            out.insert(
                format!("{kind} {}", o.metadata.name.clone().unwrap_or_default()),
                format!(
                    "{:?} {:?}",
                    o.metadata.generation,
                    entry.map(|m| (
                        format!("{:?}", m.time),
                        m.fields_v1.as_ref().map(|f| f.0.to_string())
                    ))
                ),
            );
        }
    }
    let list = project
        .helm(&["list", "-A", "-a", "-o", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    let releases: Vec<Value> =
        serde_json::from_slice(&list.stdout).map_err(|e| format!("helm list: {e}"))?;
    for r in releases {
        out.insert(
            format!(
                "HelmRelease {}/{}",
                r["namespace"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default()
            ),
            format!("{} {} {}", r["revision"], r["status"], r["chart"]),
        );
    }
    Ok(out)
}

/// Argo CD's verdict on every Application of the platform (one per environment), and Argo's
/// on every Rollout (`rollouts` of them).
async fn all_ready(client: &Client, platform: &str, rollouts: usize) -> TestResult {
    let ours = ListParams::default().labels(&format!("app.kubernetes.io/part-of={platform}"));
    let apps = argo(client, "Application", "applications")
        .list(&ours)
        .await
        .map_err(|e| e.to_string())?;
    if apps.items.len() != 2 {
        return Err(format!(
            "expected 2 Applications, found {}",
            apps.items.len()
        ));
    }
    for app in &apps.items {
        let v = serde_json::to_value(app).map_err(|e| e.to_string())?;
        let r = platformctl::ready::of(&v);
        if r != Some(platformctl::ready::Readiness::Ready) {
            return Err(format!("Application {:?} is {r:?}", app.metadata.name));
        }
    }
    let found: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &platformctl::kube::argo("Rollout", "rollouts"),
    );
    let found = found.list(&ours).await.map_err(|e| e.to_string())?;
    if found.items.len() != rollouts {
        return Err(format!(
            "expected {rollouts} Rollouts, found {}",
            found.items.len()
        ));
    }
    for r in &found.items {
        let v = serde_json::to_value(r).map_err(|e| e.to_string())?;
        if platformctl::ready::of(&v) != Some(platformctl::ready::Readiness::Ready) {
            return Err(format!(
                "Rollout {:?}/{:?} is {:?}",
                r.metadata.namespace,
                r.metadata.name,
                platformctl::ready::of(&v)
            ));
        }
    }
    Ok(())
}

/// Prod's Ingress and HPA: among the resources of prod's Application (whose health, Healthy by
/// all_ready, is the worst of theirs: Argo CD 3 keeps the per-resource health out of the
/// Application's status), the Ingress with the address kwok published, and the HPA reading its
/// Rollout's pods' CPU through the metrics API, which metrics-server first has about 30 s after
/// the pods start.
async fn prod_ingress_and_hpa(client: &Client) -> TestResult {
    let apps = argo(client, "Application", "applications");
    let prod = apps
        .get("customer-platform-prod")
        .await
        .map_err(|e| format!("Application customer-platform-prod: {e}"))?;
    let resources = prod.data["status"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for kind in ["Ingress", "HorizontalPodAutoscaler"] {
        let sync = resources
            .iter()
            .find(|r| r["kind"] == kind && r["name"] == "customer-api")
            .map(|r| r["status"].clone());
        if sync != Some(Value::from("Synced")) {
            return Err(format!(
                "prod's {kind} customer-api in its Application: {sync:?}"
            ));
        }
    }
    let ingress = Api::<Ingress>::namespaced(client.clone(), "prod")
        .get("customer-api")
        .await
        .map_err(|e| e.to_string())?;
    let lb = serde_json::to_value(&ingress).map_err(|e| e.to_string())?["status"]["loadBalancer"]
        ["ingress"][0]["ip"]
        .clone();
    if lb != "127.0.0.1" {
        return Err(format!("prod's Ingress has no published address: {lb}"));
    }
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "prod");
    wait_for(
        "prod's HPA to read its pods' CPU (ScalingActive: ValidMetricFound)",
        Duration::from_secs(120),
        || async {
            let hpa = hpas.get("customer-api").await.map_err(|e| e.to_string())?;
            let hpa = serde_json::to_value(&hpa).map_err(|e| e.to_string())?;
            let status = &hpa["status"];
            let active = status["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "ScalingActive"))
                .cloned()
                .unwrap_or_default();
            let cpu = &status["currentMetrics"][0]["resource"]["current"]["averageUtilization"];
            if active["status"] == "True" && active["reason"] == "ValidMetricFound" && cpu.is_u64()
            {
                Ok(true)
            } else {
                Err(format!(
                    "ScalingActive {} {}: {}; current CPU {cpu}",
                    active["status"], active["reason"], active["message"]
                ))
            }
        },
    )
    .await
}

fn steps_of(run: &Run) -> Vec<(String, String, usize)> {
    run.json["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or_default().to_string(),
                        s["status"].as_str().unwrap_or_default().to_string(),
                        s["changes"].as_array().map_or(0, Vec::len),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A small xorshift generator: kill moments that differ per run, printed so a failure can be
/// replayed with PLATFORMCTL_TEST_KILL_SEED.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A cluster of the test's own with the chart repository, the git server and the project:
/// `source` (a platform.yaml of this repository) made a test platform, rendered, committed and
/// pushed to `<repo>.git`, which Argo CD reads over the git protocol, as it reads the
/// gitops.local server's.
struct Setup {
    /// (held for its drop, which stops the cluster, as `_charts` stops the chart server)
    _cluster: OwnCluster,
    runtime: tokio::runtime::Runtime,
    client: Client,
    _charts: crate::platform::ChartRepo,
    repos: tempfile::TempDir,
    project: Project,
}

impl Setup {
    fn new(name: &str, source: &str, repo: &str) -> Result<Setup, String> {
        let cluster = OwnCluster::start(name)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let client = runtime.block_on(
            support::Cluster {
                kubeconfig: cluster.kubeconfig.clone(),
            }
            .client(),
        )?;
        let helm = crate::addons::locate_helm()?;
        let helm_home = tempfile::tempdir().map_err(|e| e.to_string())?;
        let charts = crate::platform::ChartRepo::start(&helm, helm_home.path())?;
        let repos = tempfile::tempdir().map_err(|e| e.to_string())?;
        let served = cluster
            .harness(&["git-serve", &repos.path().display().to_string()])
            .output()
            .map_err(|e| e.to_string())?;
        if !served.status.success() {
            return Err(format!(
                "git-serve failed: {}",
                String::from_utf8_lossy(&served.stderr)
            ));
        }
        let repo_url = format!("git://127.0.0.1:{}/{repo}.git", cluster.port_base + 14);
        let project = Project {
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
            helm_home,
            helm: helm.binary().to_path_buf(),
            kubeconfig: cluster.kubeconfig.clone(),
        };
        let dir = project.dir.path();
        std::fs::write(
            dir.join("platform.yaml"),
            test_platform_from(source, &repo_url, &charts.url)?,
        )
        .map_err(|e| e.to_string())?;
        project.must(&["render"])?;
        let git = |args: &[&str], at: &Path| crate::platform::git(at, args);
        git(
            &["init", "-q", "--bare", "-b", "main", &format!("{repo}.git")],
            repos.path(),
        )?;
        git(&["init", "-q", "-b", "main"], dir)?;
        git(&["add", "-A"], dir)?;
        git(&["commit", "-q", "-m", "platform"], dir)?;
        git(&["push", "-q", &repo_url, "main"], dir)?;
        Ok(Setup {
            _cluster: cluster,
            runtime,
            client,
            _charts: charts,
            repos,
            project,
        })
    }
}

/// The examples/microservices platform: four services with blue-green Rollouts (the
/// controller owns each active and preview Service's selector) and HPAs in both environments,
/// up from nothing to Synced and Healthy, a second up changes nothing, status, down.
fn microservices() -> TestResult {
    let s = Setup::new(
        "sim-up-micro",
        "examples/microservices/platform.yaml",
        "microservices",
    )?;
    let (runtime, client, project) = (&s.runtime, &s.client, &s.project);
    let first = project.must(&["up", "-o", "json", "--timeout", "3m"])?;
    eprintln!(
        "microservices: up from nothing: {:.1} s",
        first.took.as_secs_f64()
    );
    if first.json["status"] != "Applied" {
        return Err(format!("first up: {}", first.json));
    }
    runtime.block_on(all_ready(client, "microservices", 8))?;
    let before = runtime.block_on(fingerprint(client, project))?;
    let again = project.must(&["up", "-o", "json"])?;
    if again.json["status"] != "Converged" {
        return Err(format!("a second up changed something: {}", again.json));
    }
    let after = runtime.block_on(fingerprint(client, project))?;
    if before != after {
        return Err(format!(
            "a second up changed objects: {before:?} -> {after:?}"
        ));
    }
    status_is_healthy(project, 2, 8)?;
    down_and_check(runtime, client, project, "microservices")
}

/// `status -o json` is Healthy and shows it row by row: every application Synced and Healthy
/// with nothing to explain, every rollout Healthy by Argo's rules, as many as the platform has.
fn status_is_healthy(project: &Project, apps: usize, rollouts: usize) -> TestResult {
    let status = project.must(&["status", "-o", "json"])?;
    let json = &status.json;
    let rows = |key: &str| json[key].as_array().cloned().unwrap_or_default();
    let (app_rows, rollout_rows) = (rows("applications"), rows("rollouts"));
    let fine = json["status"] == "Healthy"
        && app_rows.len() == apps
        && app_rows
            .iter()
            .all(|a| a["sync"] == "Synced" && a["health"] == "Healthy" && a["message"] == "")
        && rollout_rows.len() == rollouts
        && rollout_rows.iter().all(|r| r["phase"] == "Healthy");
    if !fine {
        return Err(format!(
            "status: want {apps} Synced/Healthy applications and {rollouts} Healthy rollouts: {json}"
        ));
    }
    Ok(())
}

fn end_to_end() -> TestResult {
    let s = Setup::new("sim-up", "platform.yaml", "customer-platform")?;
    let (runtime, client, project) = (&s.runtime, &s.client, &s.project);
    let dir = project.dir.path();
    let repos = &s.repos;

    // 0. A server dry run on the fresh cluster: every object the API server can check is sent
    // with dryRun (the Argo CD objects into the harness's argocd namespace); what needs a
    // namespace or a CRD that a real run would make first is reported unchecked, and nothing
    // is left behind.
    let dry = project.must(&["up", "--dry-run=server", "-o", "json"])?;
    let unchecked: Vec<String> = dry.json["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["changes"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c.as_str().map(str::to_string))
        .filter(|c| c.contains("not checked"))
        .collect();
    let sent_apps = steps_of(&dry)
        .iter()
        .find(|(n, _, _)| n == "apps")
        .map_or(0, |s| s.2);
    if !unchecked
        .iter()
        .any(|c| c.contains("namespace `prod` does not exist yet"))
        || sent_apps != 4
    {
        return Err(format!(
            "up --dry-run=server on a fresh cluster: {}",
            dry.json
        ));
    }
    let left = runtime.block_on(fingerprint(client, project))?;
    if !left.is_empty() {
        return Err(format!("the server dry run left: {left:?}"));
    }

    // 1. From nothing to Synced and Healthy.
    let first = project.must(&["up", "-o", "json", "--timeout", "3m"])?;
    eprintln!("up from nothing: {:.1} s", first.took.as_secs_f64());
    if first.json["status"] != "Applied" {
        return Err(format!("first up: status {}", first.json["status"]));
    }
    let steps = steps_of(&first);
    let names: Vec<&str> = steps.iter().map(|(n, _, _)| n.as_str()).collect();
    if names
        != [
            "preflight",
            "cluster",
            "namespaces",
            "secrets",
            "addons",
            "images",
            "gitops",
            "apps",
            "wait",
        ]
    {
        return Err(format!("steps: {names:?}"));
    }
    let addons = steps
        .iter()
        .find(|(n, _, _)| n == "addons")
        .map_or(0, |s| s.2);
    if addons != 6 {
        return Err(format!(
            "expected 6 releases installed, got {addons}: {}",
            first.json
        ));
    }
    runtime.block_on(all_ready(client, "customer-platform", 2))?;
    runtime.block_on(prod_ingress_and_hpa(client))?;

    // 2. Again: nothing changes, nothing is reported changed.
    let before = runtime.block_on(fingerprint(client, project))?;
    let again = project.must(&["up", "-o", "json"])?;
    eprintln!("no-op up: {:.2} s", again.took.as_secs_f64());
    if again.json["status"] != "Converged"
        || steps_of(&again)
            .iter()
            .any(|(_, status, changes)| status == "changed" || *changes > 0)
    {
        return Err(format!("a second up changed something: {}", again.json));
    }
    let after = runtime.block_on(fingerprint(client, project))?;
    if before != after {
        let diff: Vec<String> = before
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: {v} -> {:?}", after.get(k)))
            .collect();
        return Err(format!("a second up changed objects: {diff:?}"));
    }
    if before
        .keys()
        .filter(|k| k.starts_with("HelmRelease"))
        .count()
        != 6
    {
        return Err(format!("expected 6 Helm releases: {before:?}"));
    }

    // 3. status says the same.
    status_is_healthy(project, 2, 2)?;

    // 4. down --keep-cluster removes it all (Argo CD prunes what the applications deployed).
    down_and_check(runtime, client, project, "customer-platform")?;

    // 5. Killed at random moments, 20 times; then up converges, and once more changes nothing.
    let seed = std::env::var("PLATFORMCTL_TEST_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("kill test: seed {seed} (PLATFORMCTL_TEST_KILL_SEED replays it)");
    let mut rng = Rng(seed);
    // Each killed run starts where the previous one left off (nothing is reset between kills),
    // so every kill lands on a partly converged platform. A run that finishes before its kill
    // moment ends that chain: `down` resets to nothing. After every fifth kill, `up` must run to
    // the end, the platform must be Synced and Healthy, and one more `up` must change nothing;
    // then `down` resets for the next five.
    let window = first.took.max(Duration::from_millis(500)).as_millis() as u64;
    let stderr_file = project.dir.path().join("killed-up.stderr");
    let (mut kills, mut attempts, mut chain) = (0, 0, 0u64);
    while kills < 20 {
        attempts += 1;
        if attempts > 60 {
            return Err(format!("only {kills} of 60 runs could be killed mid-way"));
        }
        // Each run in a chain has less left to do than the one before: the window shrinks.
        let at = Duration::from_millis(rng.next() % (window / (chain + 1)).max(100));
        let mut child = project
            .command(&["up", "--timeout", "5m"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_file).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| e.to_string())?;
        std::thread::sleep(at);
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if !status.success() {
                return Err(format!(
                    "an up after {kills} kills failed ({status}):\n{}",
                    std::fs::read_to_string(&stderr_file).unwrap_or_default()
                ));
            }
            eprintln!("kill test: up finished before {at:?}; resetting with down");
            down_and_check(runtime, client, project, "customer-platform")?;
            chain = 0;
            continue;
        }
        child.kill().map_err(|e| e.to_string())?; // SIGKILL
        child.wait().map_err(|e| e.to_string())?;
        kills += 1;
        chain += 1;
        eprintln!("kill {kills}: SIGKILL at {at:?}");
        if kills % 5 == 0 {
            let resumed = project.must(&["up", "-o", "json", "--timeout", "5m"])?;
            runtime.block_on(all_ready(client, "customer-platform", 2))?;
            let converged = project.must(&["up", "-o", "json"])?;
            if converged.json["status"] != "Converged" {
                return Err(format!(
                    "up after {kills} kills did not converge: {}",
                    converged.json
                ));
            }
            eprintln!(
                "kill test: after {kills} kills up converged in {:.1} s",
                resumed.took.as_secs_f64()
            );
            if kills < 20 {
                down_and_check(runtime, client, project, "customer-platform")?;
                chain = 0;
            }
        }
    }

    // 6. gitops.local: the in-cluster git server's objects, its pod Ready (kwok), and the
    // project's HEAD pushed through a port-forward to it: the real API server's port-forward,
    // which kwok answers by connecting to git-serve's git daemon (tests/sim/cluster), serving
    // the repository above. Argo CD, out of cluster, cannot resolve the server's in-cluster
    // name, so only the namespaces and gitops steps run.
    local_git_server(project, dir, &repos.path().join("customer-platform.git"))?;

    // 7. And down --keep-cluster again leaves nothing behind (the git server's namespace too).
    down_and_check(runtime, client, project, "customer-platform")?;
    Ok(())
}

fn local_git_server(project: &Project, dir: &Path, bare: &Path) -> TestResult {
    let git = |args: &[&str], at: &Path| crate::platform::git(at, args);
    let text = std::fs::read_to_string(dir.join("platform.yaml")).map_err(|e| e.to_string())?;
    let mut p: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    p["gitops"] = serde_yaml::from_str("local: {}").map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("platform.yaml"),
        serde_yaml::to_string(&p).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    project.must(&["render"])?;
    // Uncommitted, the new tree is refused before anything is applied.
    let refused = project.run(&["up", "--only", "namespaces,gitops"])?;
    if refused.code != Some(2) || !refused.stderr.contains("uncommitted") {
        return Err(format!(
            "up with the tree uncommitted: exit {:?}\n{}",
            refused.code, refused.stderr
        ));
    }
    git(&["add", "-A"], dir)?;
    git(&["commit", "-q", "-m", "gitops.local"], dir)?;
    let head = git(&["rev-parse", "HEAD"], dir)?.trim().to_string();
    let steps = |run: &Run| -> Result<Value, String> {
        run.json["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "gitops"))
            .cloned()
            .ok_or_else(|| format!("no gitops step: {}", run.json))
    };
    let first = project.must(&["up", "--only", "namespaces,gitops", "-o", "json"])?;
    let step = steps(&first)?;
    let changes: Vec<&str> = step["changes"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let want = [
        "deployment `platformctl/gitops` created",
        "service `platformctl/gitops` created",
    ];
    if !want
        .iter()
        .all(|w| changes.iter().any(|c| c.eq_ignore_ascii_case(w)))
        || !changes
            .iter()
            .any(|c| c.starts_with(&format!("pushed {}", &head[..12])))
    {
        return Err(format!("first up with gitops.local: {step}"));
    }
    let served = git(&["rev-parse", "main"], bare)?.trim().to_string();
    if served != head {
        return Err(format!(
            "the served repository's main is {served}, the project's HEAD {head}"
        ));
    }
    let again = project.must(&["up", "--only", "namespaces,gitops", "-o", "json"])?;
    let step = steps(&again)?;
    if step["status"] != "unchanged" {
        return Err(format!("second up with gitops.local: {step}"));
    }
    eprintln!(
        "gitops.local: pushed {} through the port-forward; again: {}",
        &head[..12],
        step["detail"]
    );
    Ok(())
}

fn down_and_check(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    project: &Project,
    platform: &str,
) -> TestResult {
    let down = project.must(&["down", "--keep-cluster", "--yes", "-o", "json"])?;
    let removed = down.json["removed"].as_array().map_or(0, Vec::len);
    if down.json["status"] != "Removed" || removed == 0 {
        return Err(format!("down --keep-cluster: {}", down.json));
    }
    runtime.block_on(async {
        let apps = argo(client, "Application", "applications");
        if !apps
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .is_empty()
        {
            return Err("Applications remain after down".to_string());
        }
        let namespaces: Api<Namespace> = Api::all(client.clone());
        wait_for(
            "the platform's namespaces to be gone",
            Duration::from_secs(120),
            || async {
                let left = namespaces
                    .list(
                        &ListParams::default()
                            .labels(&format!("app.kubernetes.io/part-of={platform}")),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(left.items.is_empty())
            },
        )
        .await
    })?;
    let left = runtime.block_on(fingerprint(client, project))?;
    if !left.is_empty() {
        return Err(format!(
            "down --keep-cluster left: {:?}",
            left.keys().collect::<Vec<_>>()
        ));
    }
    Ok(())
}
