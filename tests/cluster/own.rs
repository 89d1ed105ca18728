//! What the `platformctl up` end-to-end tests share: a cluster of the test's own (started by
//! `tests/sim/cluster` with the options the test names, stopped when dropped), a project
//! directory around `platformctl` with its own helm home, and the checks of a converged
//! platform: Argo CD's and Argo's verdicts, `status`, the fingerprint a no-op `up` must leave
//! untouched, and `down --keep-cluster` leaving nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;

use crate::platform::test_platform_from;
use crate::support::{self, TestResult};

/// The clusters of these tests, one at a time: each takes a whole machine's worth of
/// controllers, and two free port ranges probed at once could overlap.
pub fn one_at_a_time(test: fn() -> TestResult) -> TestResult {
    let _held = exclusive();
    test()
}

/// The machine to this test alone until the guard is dropped: a test that waits for minutes
/// with little to do (its cluster already up) lets another run meanwhile.
/// A wait of more than a second is printed, so that a trial's time (`support::trial`) can be
/// told apart from its wait for the machine.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let start = std::time::Instant::now();
    let guard = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let waited = start.elapsed().as_secs_f64();
    if waited > 1.0 {
        let name = support::TRIAL.with(|t| t.borrow().clone());
        eprintln!("exclusive: {name} waited {waited:.1} s for the machine");
    }
    guard
}

/// A cluster of the test's own, stopped when dropped.
pub struct OwnCluster {
    dir: PathBuf,
    pub port_base: u16,
    pub kubeconfig: PathBuf,
}

impl OwnCluster {
    /// `tests/sim/cluster up --with <with>` on a state directory and ports of its own.
    pub fn start(name: &str, with: &str) -> Result<OwnCluster, String> {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let port_base = crate::free_port_base()?;
        let out = support::harness_command_in(&dir, port_base, &["up", "--with", with])
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

    pub fn harness(&self, args: &[&str]) -> Command {
        support::harness_command_in(&self.dir, self.port_base, args)
    }

    /// The host's address on the pod network (`--with workloads`): what a pod reaches this
    /// host at, as tests/sim/lib/workloads.sh makes the bridge (10.<n>.255.254, n in
    /// `pod-net` of the state directory).
    pub fn pod_gateway(&self) -> Result<std::net::Ipv4Addr, String> {
        let path = self.dir.join("pod-net");
        let n: u8 = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .trim()
            .parse()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(std::net::Ipv4Addr::new(10, n, 255, 254))
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.harness(&["down"]).stdout(Stdio::null()).status();
    }
}

/// Everything `platformctl` needs around it.
pub struct Project {
    pub dir: tempfile::TempDir,
    helm_home: tempfile::TempDir,
    helm: PathBuf,
    kubeconfig: PathBuf,
}

pub struct Run {
    pub code: Option<i32>,
    pub json: Value,
    pub stderr: String,
    pub took: Duration,
}

impl Project {
    pub fn command(&self, args: &[&str]) -> Command {
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
    pub fn helm(&self, args: &[&str]) -> Command {
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

    pub fn run(&self, args: &[&str]) -> Result<Run, String> {
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

    pub fn must(&self, args: &[&str]) -> Result<Run, String> {
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

pub fn argo(client: &Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "argocd",
        &platformctl::kube::argo(kind, plural),
    )
}

/// What a converged `up` must leave untouched: every labelled namespace and Secret (their
/// resourceVersion), the Applications' and projects' generation and platformctl's managedFields
/// entry, and each Helm release's revision.
pub async fn fingerprint(
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
            // Not the generation: Argo CD keeps an Application's status (reconciledAt, sync
            // and health) in the object itself, with no status subresource, so every refresh
            // bumps it. What platformctl's apply owns, and when it last changed it, is what
            // a no-op `up` must leave alone (a CI run saw generation 35 -> 36 with neither
            // changed).
            out.insert(
                format!("{kind} {}", o.metadata.name.clone().unwrap_or_default()),
                format!(
                    "{:?}",
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
pub async fn all_ready(client: &Client, platform: &str, rollouts: usize) -> TestResult {
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

pub fn steps_of(run: &Run) -> Vec<(String, String, usize)> {
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

/// A cluster of the test's own with its chart repository (`tests/sim/cluster charts`, as
/// tests/sim/main-job serves it) and the project: `source` (a platform.yaml of this repository)
/// made a test platform and rendered.
pub struct Setup {
    /// (held for its drop, which stops the cluster with its chart repository and git-serve, as
    /// `_repos` removes git-serve's repositories)
    pub cluster: OwnCluster,
    pub runtime: tokio::runtime::Runtime,
    pub client: Client,
    _repos: tempfile::TempDir,
    pub project: Project,
}

/// Where the test platform's GitOps tree lives.
pub enum Gitops<'a> {
    /// `<repo>.git` on git-serve (the harness's git daemon on loopback), committed and pushed
    /// by the setup: Argo CD reads it over the git protocol.
    Remote(&'a str),
    /// `gitops.local`: the in-cluster git server `up` runs and pushes to. The project is a git
    /// repository with platform.yaml committed and the rendered tree not yet.
    Local,
}

impl Setup {
    /// `with`: the harness's options; `edit`: a last change to the test platform.
    pub fn new(
        name: &str,
        with: &str,
        source: &str,
        gitops: Gitops,
        edit: impl FnOnce(&mut serde_yaml::Value),
    ) -> Result<Setup, String> {
        let cluster = OwnCluster::start(name, with)?;
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
        let charts = cluster
            .harness(&["charts"])
            .output()
            .map_err(|e| e.to_string())?;
        let charts_url = String::from_utf8_lossy(&charts.stdout)
            .lines()
            .last()
            .filter(|_| charts.status.success())
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "tests/sim/cluster charts failed: {}",
                    String::from_utf8_lossy(&charts.stderr)
                )
            })?;
        let repos = tempfile::tempdir().map_err(|e| e.to_string())?;
        let repo_url = match gitops {
            Gitops::Remote(repo) => {
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
                Some((
                    repo,
                    format!("git://127.0.0.1:{}/{repo}.git", cluster.port_base + 14),
                ))
            }
            Gitops::Local => None,
        };
        let project = Project {
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
            helm_home,
            helm: helm.binary().to_path_buf(),
            kubeconfig: cluster.kubeconfig.clone(),
        };
        let dir = project.dir.path();
        let text = test_platform_from(
            source,
            repo_url.as_ref().map(|(_, u)| u.as_str()),
            &charts_url,
        )?;
        let mut platform: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
        edit(&mut platform);
        std::fs::write(
            dir.join("platform.yaml"),
            serde_yaml::to_string(&platform).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        let git = |args: &[&str], at: &Path| crate::platform::git(at, args);
        git(&["init", "-q", "-b", "main"], dir)?;
        match &repo_url {
            Some((repo, url)) => {
                project.must(&["render"])?;
                git(
                    &["init", "-q", "--bare", "-b", "main", &format!("{repo}.git")],
                    repos.path(),
                )?;
                git(&["add", "-A"], dir)?;
                git(&["commit", "-q", "-m", "platform"], dir)?;
                git(&["push", "-q", url, "main"], dir)?;
            }
            None => {
                git(&["add", "platform.yaml"], dir)?;
                git(&["commit", "-q", "-m", "platform.yaml"], dir)?;
                project.must(&["render"])?;
            }
        }
        Ok(Setup {
            cluster,
            runtime,
            client,
            _repos: repos,
            project,
        })
    }
}

/// `status -o json` is Healthy and shows it row by row: every application Synced and Healthy
/// with nothing to explain, every rollout Healthy by Argo's rules, as many as the platform has.
/// Pods that have just turned Ready are targets Prometheus has not scraped yet (status is not
/// Healthy until it has), so this asks again for up to a minute before it fails.
pub fn status_is_healthy(project: &Project, apps: usize, rollouts: usize) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
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
        if fine {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "status, for a minute: want Healthy, {apps} Synced/Healthy applications and \
                 {rollouts} Healthy rollouts: {json}"
            ));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

pub fn down_and_check(
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
        // down waits for its namespaces as kubectl delete does: none is left Terminating.
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let left = namespaces
            .list(&ListParams::default().labels(&format!("app.kubernetes.io/part-of={platform}")))
            .await
            .map_err(|e| e.to_string())?;
        if !left.items.is_empty() {
            let names: Vec<_> = left
                .items
                .iter()
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            return Err(format!("namespaces left when down returned: {names:?}"));
        }
        Ok(())
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
