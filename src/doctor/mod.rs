//! `doctor`: the prerequisites of `up` and the known local-cluster pitfalls, each finding with
//! a fix.
//!
//! It checks the tools (minikube, a container driver, helm, kubectl) and their versions, this
//! machine's CPUs and memory against the nodes platform.yaml asks for, the multi-node minikube
//! pitfalls that can be seen from here (inotify limits, hostPath storage), the cluster itself as
//! far as it exists (cluster.rs: the minikube profile's state and node count, or the kubeconfig
//! context of an existing cluster), and, with the network, whether each addon's chart
//! repository holds the pinned version (charts.rs). Everything it reads from the machine comes
//! through [`Env`], so tests point it at fake tools and a fake `/proc`. It never changes
//! anything and never prints; it does not contact the Kubernetes API.

mod charts;
mod cluster;
mod host;
mod tools;
mod version;

use std::ffi::OsString;
use std::path::PathBuf;

use serde::Serialize;

pub use version::Version;

use crate::addons::Release;
use crate::cluster::existing;
use crate::cluster::minikube::{self, Minikube};
use crate::config::{Cluster, Driver};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warn,
    Error,
}

/// One thing checked: what was found and, unless it is fine, what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier of the check, e.g. `tool/helm`, `pitfall/inotify`.
    pub check: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &'static str, message: impl Into<String>) -> Self {
        Finding {
            check,
            severity: Severity::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warn(check: &'static str, message: impl Into<String>, fix: String) -> Self {
        Finding {
            check,
            severity: Severity::Warn,
            message: message.into(),
            fix: Some(fix),
        }
    }

    pub fn error(check: &'static str, message: impl Into<String>, fix: String) -> Self {
        Finding {
            check,
            severity: Severity::Error,
            message: message.into(),
            fix: Some(fix),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// No finding is an error (warnings are allowed).
    pub fn passed(&self) -> bool {
        self.count(Severity::Error) == 0
    }
}

/// CPUs and memory the nodes will share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// Where the numbers come from, for messages: `Docker` or `this host`.
    pub source: &'static str,
    pub cpus: u32,
    pub memory_mib: u64,
    /// Memory available right now, when known (`/proc/meminfo` MemAvailable).
    pub available_mib: Option<u64>,
}

/// Everything doctor reads from the machine.
#[derive(Debug, Clone)]
pub struct Env {
    /// Where tools are looked up, in `PATH` syntax.
    pub path: OsString,
    /// The proc filesystem (`/proc`).
    pub proc_root: PathBuf,
    /// The minikube binary named by `PLATFORMCTL_MINIKUBE`, which wins over PATH.
    pub minikube: Option<PathBuf>,
    /// The helm binary named by `PLATFORMCTL_HELM`, which wins over PATH (as for `up`).
    pub helm: Option<PathBuf>,
    /// The kubeconfig files, merged in order.
    pub kubeconfig: Vec<PathBuf>,
}

/// Overrides `/proc`, to check a machine whose proc filesystem is mounted elsewhere (and for
/// tests).
pub const ENV_PROC: &str = "PLATFORMCTL_PROC";

impl Env {
    /// This process's `PATH`, `/proc` (or `$PLATFORMCTL_PROC`), `$PLATFORMCTL_MINIKUBE`,
    /// `$PLATFORMCTL_HELM` and kubeconfig (`KUBECONFIG`, else `~/.kube/config`).
    pub fn from_process() -> Self {
        let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Env {
            path: nonempty("PATH").unwrap_or_default(),
            proc_root: nonempty(ENV_PROC)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/proc")),
            minikube: nonempty(minikube::ENV_BINARY).map(PathBuf::from),
            helm: nonempty(crate::addons::HELM_ENV).map(PathBuf::from),
            kubeconfig: existing::default_paths(),
        }
    }
}

/// Runs every check that applies to `cluster` (with its driver) on this machine, and asks the
/// repository of each of `charts` whether it holds the pinned chart version (none: offline).
pub async fn run(cluster: &Cluster, charts: &[Release], env: &Env) -> Report {
    let machine = async {
        match cluster.driver {
            Driver::Minikube => minikube_checks(cluster, env).await,
            Driver::Existing => existing_checks(cluster, env).await,
        }
    };
    let (mut findings, charts) = tokio::join!(machine, charts::versions(charts, env));
    findings.extend(charts);
    Report { findings }
}

async fn minikube_checks(cluster: &Cluster, env: &Env) -> Vec<Finding> {
    let k8s = Version::find(&cluster.kubernetes_version);
    let ((mk, mk_path), (container, docker_capacity), helm, kubectl, git) = tokio::join!(
        tools::minikube(env),
        tools::container(env),
        tools::helm(env),
        tools::kubectl(env, k8s),
        tools::git(env),
    );
    let mut findings = vec![mk];
    findings.extend(container);
    findings.push(helm);
    findings.push(kubectl);
    findings.push(git);

    match docker_capacity.or_else(|| host::capacity(&env.proc_root)) {
        Some(cap) => {
            findings.push(host::cpu(cluster, &cap));
            findings.push(host::memory(cluster, &cap));
        }
        None => findings.push(Finding::warn(
            "host/memory",
            format!(
                "cannot read this host's CPUs and memory from `{}`",
                env.proc_root.display()
            ),
            format!(
                "make sure {} × {} CPUs and {} × {} MiB fit this machine",
                cluster.nodes, cluster.cpus, cluster.nodes, cluster.memory
            ),
        )),
    }
    findings.extend(host::inotify(cluster, &env.proc_root));
    findings.extend(host::storage(cluster));
    if let Some(path) = mk_path {
        findings.push(cluster::profile(cluster, &Minikube::new(path)).await);
    }
    findings
}

async fn existing_checks(cluster: &Cluster, env: &Env) -> Vec<Finding> {
    let (helm, kubectl, git) =
        tokio::join!(tools::helm(env), tools::kubectl(env, None), tools::git(env));
    let mut findings = vec![
        Finding::ok(
            "driver/existing",
            "driver existing: minikube, a container driver, this host's resources and the \
             minikube pitfalls are not needed",
        ),
        helm,
        kubectl,
        git,
    ];
    findings.push(cluster::context(cluster, env));
    findings
}

#[cfg(test)]
mod tests;
