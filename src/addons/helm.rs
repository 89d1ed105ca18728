//! The `helm` CLI as a converging installer: read the deployed release, change it only when its
//! chart version or values differ, and recover a release an interrupted helm left behind.
//!
//! Values reach helm on stdin (`--values -`): never on the command line, never on disk.
//! Installs do not `--wait`: `up` waits for readiness itself, with its own progress and
//! timeouts. `--timeout` still bounds hooks, and the process as a whole is killed after it.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{Error, Release, Target, values};

/// Environment variable naming the helm binary; `helm` on PATH otherwise.
pub const ENV: &str = "PLATFORMCTL_HELM";

/// How long a helm command that only reads may take.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of helm's stderr kept in an error.
const STDERR_LINES: usize = 20;

/// What [`Helm::converge`] did to a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    Installed,
    Upgraded,
    /// Already at the chart version and values: helm was not asked to change anything.
    Unchanged,
}

/// What [`Helm::uninstall`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Removal {
    Uninstalled,
    Absent,
}

/// A release's state as helm records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Deployed,
    Failed,
    PendingInstall,
    PendingUpgrade,
    PendingRollback,
    Uninstalling,
    Uninstalled,
    Superseded,
    Unknown,
}

impl Status {
    fn parse(s: &str) -> Status {
        match s {
            "deployed" => Status::Deployed,
            "failed" => Status::Failed,
            "pending-install" => Status::PendingInstall,
            "pending-upgrade" => Status::PendingUpgrade,
            "pending-rollback" => Status::PendingRollback,
            "uninstalling" => Status::Uninstalling,
            "uninstalled" => Status::Uninstalled,
            "superseded" => Status::Superseded,
            _ => Status::Unknown,
        }
    }
}

/// One release as `helm list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    pub name: String,
    pub namespace: String,
    pub revision: u32,
    pub status: Status,
    pub chart: String,
    /// Chart version.
    pub version: String,
    pub app_version: String,
    /// When the latest revision was written, as helm prints it.
    pub updated: String,
}

/// `helm list -o json` items.
#[derive(Deserialize)]
struct Listed {
    name: String,
    namespace: String,
    revision: String,
    updated: String,
    status: String,
    chart: String,
    app_version: String,
}

impl From<Listed> for Deployed {
    fn from(l: Listed) -> Deployed {
        let (chart, version) = split_chart(&l.chart);
        Deployed {
            name: l.name,
            namespace: l.namespace,
            revision: l.revision.parse().unwrap_or(0),
            status: Status::parse(&l.status),
            chart: chart.to_string(),
            version: version.to_string(),
            app_version: l.app_version,
            updated: l.updated,
        }
    }
}

/// `argo-cd-9.4.17` → (`argo-cd`, `9.4.17`): the version starts at the first `-` followed by a
/// `MAJOR.MINOR.PATCH`, since chart names and pre-release versions both contain dashes.
fn split_chart(chart: &str) -> (&str, &str) {
    chart
        .match_indices('-')
        .map(|(i, _)| (&chart[..i], &chart[i + 1..]))
        .find(|(_, version)| crate::config::is_semver(version))
        .unwrap_or((chart, ""))
}

/// What converging a release takes, given what helm has recorded for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// No release: install.
    Install,
    /// Deployed at the wanted chart version: unchanged unless the values differ.
    CompareValues,
    /// Upgrade (a failed release, another chart or version); `first` when no revision before
    /// was ever deployed.
    Upgrade { first: bool },
    /// An install or uninstall never finished: remove what is there, then install.
    Reinstall,
    /// An upgrade or rollback never finished: back to the revision before it, then upgrade.
    RollBack,
}

fn step(current: Option<&Deployed>, release: &Release) -> Step {
    let Some(current) = current else {
        return Step::Install;
    };
    match current.status {
        Status::Deployed
            if current.chart == release.chart && current.version == release.version =>
        {
            Step::CompareValues
        }
        Status::PendingInstall | Status::Uninstalling | Status::Uninstalled => Step::Reinstall,
        Status::PendingUpgrade | Status::PendingRollback => Step::RollBack,
        Status::Failed if current.revision <= 1 => Step::Upgrade { first: true },
        Status::Deployed | Status::Failed | Status::Superseded | Status::Unknown => {
            Step::Upgrade { first: false }
        }
    }
}

/// The helm CLI, pointed at one cluster.
#[derive(Debug, Clone)]
pub struct Helm {
    binary: PathBuf,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
}

impl Helm {
    /// [`Helm::locate`], pointed at `target`'s kubeconfig and context.
    pub fn for_target(target: &crate::cluster::Target) -> Result<Helm, Error> {
        let mut helm = Helm::locate()?;
        if let Some(k) = &target.kubeconfig {
            helm = helm.kubeconfig(k);
        }
        if let Some(c) = &target.context {
            helm = helm.context(c);
        }
        Ok(helm)
    }

    /// The binary named by `$PLATFORMCTL_HELM`, else `helm` on PATH.
    pub fn locate() -> Result<Helm, Error> {
        if let Some(path) = std::env::var_os(ENV).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            return if is_executable(&path) {
                Ok(Helm::new(path))
            } else {
                Err(Error::HelmNotExecutable(path))
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join("helm"))
            .find(|candidate| is_executable(candidate))
            .map(Helm::new)
            .ok_or(Error::HelmNotFound)
    }

    pub fn new(binary: impl Into<PathBuf>) -> Helm {
        Helm {
            binary: binary.into(),
            kubeconfig: None,
            context: None,
            env: Vec::new(),
            timeout: Duration::from_secs(600),
        }
    }

    /// `--kubeconfig` for every command.
    pub fn kubeconfig(mut self, path: impl Into<PathBuf>) -> Helm {
        self.kubeconfig = Some(path.into());
        self
    }

    /// `--kube-context` for every command.
    pub fn context(mut self, name: impl Into<String>) -> Helm {
        self.context = Some(name.into());
        self
    }

    /// An environment variable for every command (e.g. `HELM_CACHE_HOME`).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Helm {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// `--timeout` of the commands that change a release (hooks run within it); the process
    /// is killed a minute after it. Default 10 minutes.
    pub fn timeout(mut self, timeout: Duration) -> Helm {
        self.timeout = timeout;
        self
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `helm version --short`, e.g. `v3.19.0+g3d8990f`.
    pub async fn version(&self) -> Result<String, Error> {
        let out = self
            .run("version", None, &["version", "--short"], None, READ_TIMEOUT)
            .await?;
        Ok(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// Every release in every namespace, in any state.
    pub async fn list(&self) -> Result<Vec<Deployed>, Error> {
        let args = [
            "list",
            "--all-namespaces",
            "--all",
            "--max",
            "0",
            "-o",
            "json",
        ];
        let out = self.run("list", None, &args, None, READ_TIMEOUT).await?;
        parse_list(&out)
    }

    /// The release `name` in `namespace`, in any state; `None` when there is none.
    pub async fn release(&self, name: &str, namespace: &str) -> Result<Option<Deployed>, Error> {
        let target = Target::new(name, namespace);
        let filter = format!("^{}$", regex_escape(name));
        let args = [
            "list",
            "--namespace",
            namespace,
            "--all",
            "--max",
            "0",
            "--filter",
            &filter,
            "-o",
            "json",
        ];
        let out = self
            .run("list", Some(&target), &args, None, READ_TIMEOUT)
            .await?;
        Ok(parse_list(&out)?.into_iter().find(|d| d.name == name))
    }

    /// The values the release was installed with (`helm get values`): `null` for none.
    pub async fn values(&self, name: &str, namespace: &str) -> Result<Value, Error> {
        let target = Target::new(name, namespace);
        let args = [
            "get",
            "values",
            name,
            "--namespace",
            namespace,
            "-o",
            "json",
        ];
        let out = self
            .run("get values", Some(&target), &args, None, READ_TIMEOUT)
            .await?;
        serde_json::from_slice(&out).map_err(|source| Error::Output {
            action: "get values",
            source,
        })
    }

    /// Brings `release` to its chart version and values. A release that is already there is
    /// left alone (no new revision). A failed one is upgraded again. One an interrupted helm
    /// left pending is recovered first: a pending install is uninstalled and installed afresh,
    /// a pending upgrade or rollback is rolled back to the revision before it. platformctl
    /// assumes it is the only writer of its releases: a pending state is never another
    /// operation still running.
    pub async fn converge(&self, release: &Release) -> Result<Change, Error> {
        let current = self.release(&release.name, &release.namespace).await?;
        match step(current.as_ref(), release) {
            Step::Install => {
                self.upgrade(release).await?;
                Ok(Change::Installed)
            }
            Step::CompareValues => {
                let deployed = self.values(&release.name, &release.namespace).await?;
                if values::same(&deployed, &release.values) {
                    return Ok(Change::Unchanged);
                }
                self.upgrade(release).await?;
                Ok(Change::Upgraded)
            }
            Step::Upgrade { first } => {
                self.upgrade(release).await?;
                Ok(if first {
                    Change::Installed
                } else {
                    Change::Upgraded
                })
            }
            Step::Reinstall => {
                tracing::warn!(
                    release = %release.name,
                    namespace = %release.namespace,
                    status = ?current.map(|c| c.status),
                    "release left unfinished by an interrupted helm; installing it afresh"
                );
                self.remove(release).await?;
                self.upgrade(release).await?;
                Ok(Change::Installed)
            }
            Step::RollBack => {
                tracing::warn!(
                    release = %release.name,
                    namespace = %release.namespace,
                    status = ?current.map(|c| c.status),
                    "release left unfinished by an interrupted helm; rolling back before upgrading"
                );
                self.rollback(release).await?;
                self.upgrade(release).await?;
                Ok(Change::Upgraded)
            }
        }
    }

    /// Converges `releases`, at most `concurrency` at once; `on_done` hears of each as it
    /// finishes. The results are in the order of `releases`.
    pub async fn converge_all<F>(
        &self,
        releases: &[Release],
        concurrency: usize,
        mut on_done: F,
    ) -> Vec<Result<Change, Error>>
    where
        F: FnMut(&Release, &Result<Change, Error>),
    {
        let mut results: Vec<Option<Result<Change, Error>>> =
            releases.iter().map(|_| None).collect();
        let mut done = stream::iter(releases.iter().enumerate())
            .map(|(i, release)| async move { (i, self.converge(release).await) })
            .buffer_unordered(concurrency.max(1));
        while let Some((i, result)) = done.next().await {
            on_done(&releases[i], &result);
            results[i] = Some(result);
        }
        results
            .into_iter()
            .map(|r| r.expect("buffer_unordered yields every release once"))
            .collect()
    }

    /// Uninstalls the release `name` from `namespace`; a release that is not there is fine.
    pub async fn uninstall(&self, name: &str, namespace: &str) -> Result<Removal, Error> {
        if self.release(name, namespace).await?.is_none() {
            return Ok(Removal::Absent);
        }
        let target = Target::new(name, namespace);
        let timeout = format!("{}s", self.timeout.as_secs());
        let args = [
            "uninstall",
            name,
            "--namespace",
            namespace,
            "--ignore-not-found",
            "--timeout",
            &timeout,
        ];
        self.run(
            "uninstall",
            Some(&target),
            &args,
            None,
            self.process_timeout(),
        )
        .await?;
        Ok(Removal::Uninstalled)
    }

    async fn remove(&self, release: &Release) -> Result<(), Error> {
        self.uninstall(&release.name, &release.namespace)
            .await
            .map(drop)
    }

    async fn rollback(&self, release: &Release) -> Result<(), Error> {
        let target = Target::of(release);
        let timeout = format!("{}s", self.timeout.as_secs());
        let args = [
            "rollback",
            &release.name,
            "--namespace",
            &release.namespace,
            "--timeout",
            &timeout,
        ];
        self.run(
            "rollback",
            Some(&target),
            &args,
            None,
            self.process_timeout(),
        )
        .await
        .map(drop)
    }

    /// `helm upgrade --install` with the release's values on stdin. `--reset-values`: without
    /// it, an empty values file would make helm reuse the previous revision's.
    async fn upgrade(&self, release: &Release) -> Result<(), Error> {
        let target = Target::of(release);
        let (chart, repo) = release.chart_ref();
        let timeout = format!("{}s", self.timeout.as_secs());
        let mut args = vec![
            "upgrade",
            "--install",
            &release.name,
            &chart,
            "--version",
            &release.version,
            "--namespace",
            &release.namespace,
            "--create-namespace",
            "--reset-values",
            "--values",
            "-",
            "--timeout",
            &timeout,
        ];
        if let Some(repo) = repo {
            args.extend(["--repo", repo]);
        }
        let values = serde_json::to_vec(&release.values).expect("JSON values serialize");
        self.run(
            "upgrade",
            Some(&target),
            &args,
            Some(values),
            self.process_timeout(),
        )
        .await
        .map(drop)
    }

    fn process_timeout(&self) -> Duration {
        self.timeout + Duration::from_secs(60)
    }

    /// Runs helm with `args` (and the cluster flags), feeding `stdin`; its stdout on success.
    async fn run(
        &self,
        action: &'static str,
        target: Option<&Target>,
        args: &[&str],
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args);
        if let Some(kubeconfig) = &self.kubeconfig {
            cmd.arg("--kubeconfig").arg(kubeconfig);
        }
        if let Some(context) = &self.context {
            cmd.arg("--kube-context").arg(context);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timed-out or abandoned helm is killed (a pending release it leaves is
            // recovered by the next converge).
            .kill_on_drop(true);
        crate::child::die_with_parent(&mut cmd);
        tracing::debug!(binary = %self.binary.display(), ?args, "running helm");
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        let input = child.stdin.take();
        let finished = tokio::time::timeout(timeout, async move {
            let feed = async move {
                if let (Some(mut pipe), Some(bytes)) = (input, stdin) {
                    // helm reads its values before anything else; if it exits early instead,
                    // its exit status and stderr say why.
                    let _ = pipe.write_all(&bytes).await;
                }
            };
            let (_, output) = tokio::join!(feed, child.wait_with_output());
            output
        })
        .await;
        let output = match finished {
            Err(_) => {
                return Err(Error::TimedOut {
                    action,
                    target: target.cloned(),
                    timeout,
                });
            }
            Ok(Err(source)) => {
                return Err(Error::Spawn {
                    binary: self.binary.clone(),
                    source,
                });
            }
            Ok(Ok(output)) => output,
        };
        if output.status.success() {
            Ok(output.stdout)
        } else if let (Some(release), Some(conflict)) = (
            target,
            super::ownership::parse(&String::from_utf8_lossy(&output.stderr)),
        ) {
            Err(Error::Owned {
                release: release.clone(),
                conflict: Box::new(conflict),
            })
        } else {
            Err(Error::Failed {
                action,
                target: target.cloned(),
                status: output.status.code(),
                stderr: tail(&output.stderr),
            })
        }
    }
}

fn parse_list(out: &[u8]) -> Result<Vec<Deployed>, Error> {
    let listed: Vec<Listed> = serde_json::from_slice(out).map_err(|source| Error::Output {
        action: "list",
        source,
    })?;
    Ok(listed.into_iter().map(Deployed::from).collect())
}

/// The last lines of helm's stderr, which hold its error.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(STDERR_LINES);
    let tail = lines[start..].join("\n");
    if tail.is_empty() {
        "helm printed nothing on stderr".to_string()
    } else {
        tail
    }
}

/// Release names are DNS labels; escape anyway, the filter is a regular expression.
fn regex_escape(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::addons::Kind;

    fn release(values: Value) -> Release {
        Release {
            kind: Kind::ArgoRollouts,
            name: "argo-rollouts".into(),
            chart: "argo-rollouts".into(),
            repository: "http://127.0.0.1:1/charts".into(),
            version: "2.40.9".into(),
            namespace: "argo-rollouts".into(),
            values,
            credentials: None,
        }
    }

    fn deployed(status: Status, revision: u32, version: &str) -> Deployed {
        Deployed {
            name: "argo-rollouts".into(),
            namespace: "argo-rollouts".into(),
            revision,
            status,
            chart: "argo-rollouts".into(),
            version: version.into(),
            app_version: "v1.9.0".into(),
            updated: String::new(),
        }
    }

    #[test]
    fn the_step_follows_the_recorded_state() {
        let r = release(json!({}));
        let at = |status, revision, version| step(Some(&deployed(status, revision, version)), &r);
        assert_eq!(step(None, &r), Step::Install);
        assert_eq!(at(Status::Deployed, 4, "2.40.9"), Step::CompareValues);
        assert_eq!(
            at(Status::Deployed, 4, "2.40.8"),
            Step::Upgrade { first: false }
        );
        assert_eq!(
            at(Status::Failed, 1, "2.40.9"),
            Step::Upgrade { first: true }
        );
        assert_eq!(
            at(Status::Failed, 2, "2.40.9"),
            Step::Upgrade { first: false }
        );
        assert_eq!(at(Status::PendingInstall, 1, "2.40.9"), Step::Reinstall);
        assert_eq!(at(Status::Uninstalling, 3, "2.40.9"), Step::Reinstall);
        assert_eq!(at(Status::PendingUpgrade, 2, "2.40.9"), Step::RollBack);
        assert_eq!(at(Status::PendingRollback, 3, "2.40.9"), Step::RollBack);
        // Another chart under the same release name is replaced by an upgrade.
        let mut other = deployed(Status::Deployed, 1, "2.40.9");
        other.chart = "something-else".into();
        assert_eq!(step(Some(&other), &r), Step::Upgrade { first: false });
    }

    /// A stand-in for helm: answers `list` and `get values` from files, records every command
    /// line in `log` and the stdin of `upgrade` in `stdin`, and fails an upgrade on request.
    struct FakeHelm {
        dir: tempfile::TempDir,
    }

    impl FakeHelm {
        fn new(list: &str, values: &str) -> FakeHelm {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().expect("tempdir");
            let script = r#"#!/bin/sh
echo "$*" >> "$FAKE/log"
case "$1" in
  list) cat "$FAKE/list.json" ;;
  get) cat "$FAKE/values.json" ;;
  upgrade)
    cat > "$FAKE/stdin"
    if [ -f "$FAKE/fail" ]; then echo 'Error: UPGRADE FAILED: boom' >&2; exit 1; fi ;;
esac
"#;
            let bin = dir.path().join("helm");
            std::fs::write(&bin, script).expect("write script");
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            std::fs::write(dir.path().join("list.json"), list).expect("list");
            std::fs::write(dir.path().join("values.json"), values).expect("values");
            FakeHelm { dir }
        }

        fn helm(&self) -> Helm {
            Helm::new(self.dir.path().join("helm"))
                .kubeconfig("/k/config")
                .context("sim")
                .env("FAKE", self.dir.path())
        }

        fn log(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("log"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }

        fn commands(&self) -> Vec<String> {
            self.log()
                .iter()
                .map(|l| l.split(' ').next().unwrap_or_default().to_string())
                .collect()
        }
    }

    const DEPLOYED: &str = r#"[{"name":"argo-rollouts","namespace":"argo-rollouts","revision":"2","updated":"","status":"deployed","chart":"argo-rollouts-2.40.9","app_version":"v1.9.0"}]"#;

    #[tokio::test]
    async fn install_passes_values_on_stdin_only() {
        let fake = FakeHelm::new("[]", "null");
        let values = json!({"controller": {"replicas": 1, "marker": "sentinel-8c1f"}});
        let change = fake.helm().converge(&release(values.clone())).await;
        assert_eq!(change.expect("converges"), Change::Installed);
        let log = fake.log();
        assert_eq!(fake.commands(), ["list", "upgrade"]);
        assert_eq!(
            log[1],
            "upgrade --install argo-rollouts argo-rollouts --version 2.40.9 --namespace argo-rollouts \
             --create-namespace --reset-values --values - --timeout 600s --repo http://127.0.0.1:1/charts \
             --kubeconfig /k/config --kube-context sim"
        );
        assert!(log.iter().all(|l| !l.contains("sentinel")));
        let stdin = std::fs::read(fake.dir.path().join("stdin")).expect("stdin");
        assert_eq!(
            serde_json::from_slice::<Value>(&stdin).expect("JSON"),
            values
        );
        assert_eq!(
            log[0],
            "list --namespace argo-rollouts --all --max 0 --filter ^argo-rollouts$ -o json \
             --kubeconfig /k/config --kube-context sim"
        );
    }

    #[tokio::test]
    async fn a_current_release_is_left_alone() {
        let fake = FakeHelm::new(DEPLOYED, r#"{"controller":{"replicas":1.0}}"#);
        let change = fake
            .helm()
            .converge(&release(json!({"controller": {"replicas": 1}})))
            .await;
        assert_eq!(change.expect("converges"), Change::Unchanged);
        assert_eq!(fake.commands(), ["list", "get"]);
    }

    #[tokio::test]
    async fn changed_values_upgrade() {
        let fake = FakeHelm::new(DEPLOYED, r#"{"controller":{"replicas":2}}"#);
        let change = fake
            .helm()
            .converge(&release(json!({"controller": {"replicas": 1}})))
            .await;
        assert_eq!(change.expect("converges"), Change::Upgraded);
        assert_eq!(fake.commands(), ["list", "get", "upgrade"]);
    }

    #[tokio::test]
    async fn a_pending_install_is_removed_then_installed() {
        let pending = DEPLOYED.replace("\"deployed\"", "\"pending-install\"");
        let fake = FakeHelm::new(&pending, "null");
        let change = fake.helm().converge(&release(json!({}))).await;
        assert_eq!(change.expect("converges"), Change::Installed);
        assert_eq!(fake.commands(), ["list", "list", "uninstall", "upgrade"]);
        assert!(fake.log()[2].starts_with(
            "uninstall argo-rollouts --namespace argo-rollouts --ignore-not-found --timeout 600s"
        ));
    }

    #[tokio::test]
    async fn a_pending_upgrade_is_rolled_back_then_upgraded() {
        let pending = DEPLOYED.replace("\"deployed\"", "\"pending-upgrade\"");
        let fake = FakeHelm::new(&pending, "null");
        let change = fake.helm().converge(&release(json!({}))).await;
        assert_eq!(change.expect("converges"), Change::Upgraded);
        assert_eq!(fake.commands(), ["list", "rollback", "upgrade"]);
    }

    #[tokio::test]
    async fn a_failure_names_the_release_and_carries_helms_error() {
        let fake = FakeHelm::new("[]", "null");
        std::fs::write(fake.dir.path().join("fail"), "").expect("fail marker");
        let err = fake
            .helm()
            .converge(&release(json!({})))
            .await
            .expect_err("upgrade fails");
        assert_eq!(
            err.to_string(),
            "`helm upgrade` of release `argo-rollouts` in namespace `argo-rollouts` failed (exit status 1):\nError: UPGRADE FAILED: boom"
        );
        assert!(
            err.hint()
                .is_some_and(|h| h.contains("helm history argo-rollouts -n argo-rollouts"))
        );
    }

    #[tokio::test]
    async fn converge_all_reports_each_release_in_order() {
        let fake = FakeHelm::new("[]", "null");
        let mut a = release(json!({}));
        a.name = "a".into();
        let mut b = release(json!({}));
        b.name = "b".into();
        let mut heard = Vec::new();
        let results = fake
            .helm()
            .converge_all(&[a, b], 2, |r, res| {
                heard.push((r.name.clone(), res.as_ref().ok().copied()))
            })
            .await;
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|r| matches!(r, Ok(Change::Installed))));
        heard.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            heard,
            [
                ("a".to_string(), Some(Change::Installed)),
                ("b".to_string(), Some(Change::Installed))
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_binary_is_a_spawn_error() {
        let err = Helm::new("/nonexistent/helm")
            .version()
            .await
            .expect_err("no such binary");
        assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
        assert_eq!(
            Error::HelmNotFound.to_string(),
            "`helm` was not found on PATH"
        );
        assert!(
            Error::HelmNotFound
                .hint()
                .is_some_and(|h| h.contains("PLATFORMCTL_HELM"))
        );
    }

    #[test]
    fn chart_and_version_split_at_the_version() {
        assert_eq!(split_chart("argo-cd-9.4.17"), ("argo-cd", "9.4.17"));
        assert_eq!(
            split_chart("kube-prometheus-stack-81.4.3"),
            ("kube-prometheus-stack", "81.4.3")
        );
        assert_eq!(split_chart("foo-2-1.0.0-rc.1"), ("foo-2", "1.0.0-rc.1"));
        assert_eq!(split_chart("demo-1.0.0+build.7"), ("demo", "1.0.0+build.7"));
        assert_eq!(split_chart("odd"), ("odd", ""));
    }

    #[test]
    fn list_output_parses_with_status_and_version() {
        let out = br#"[{"name":"argocd","namespace":"argocd","revision":"3","updated":"2026-11-22 06:59:06.847091013 +0000 UTC","status":"pending-upgrade","chart":"argo-cd-9.4.17","app_version":"v3.3.6"},
            {"name":"x","namespace":"y","revision":"1","updated":"","status":"something-new","chart":"x-0.1.0","app_version":""}]"#;
        let list = parse_list(out).expect("parses");
        assert_eq!(
            list[0],
            Deployed {
                name: "argocd".into(),
                namespace: "argocd".into(),
                revision: 3,
                status: Status::PendingUpgrade,
                chart: "argo-cd".into(),
                version: "9.4.17".into(),
                app_version: "v3.3.6".into(),
                updated: "2026-11-22 06:59:06.847091013 +0000 UTC".into(),
            }
        );
        assert_eq!(list[1].status, Status::Unknown);
        assert!(parse_list(b"[]").expect("empty").is_empty());
        assert!(matches!(
            parse_list(b"Error: nope"),
            Err(Error::Output { action: "list", .. })
        ));
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let many: String = (1..=30).map(|i| format!("line {i}\n\n")).collect();
        let t = tail(many.as_bytes());
        assert!(t.starts_with("line 11\n") && t.ends_with("line 30"), "{t}");
        assert_eq!(tail(b""), "helm printed nothing on stderr");
    }

    #[test]
    fn filter_escapes_regex_metacharacters() {
        assert_eq!(regex_escape("argo-cd"), "argo-cd");
        assert_eq!(regex_escape("a.b+c"), "a\\.b\\+c");
    }
}
