//! The tools platformctl and minikube need: found on PATH, asked for their version, compared
//! with the minimum each one's use here needs.
//!
//! Minimums, and why:
//! - minikube ≥ 1.24.0: `minikube image build --all` builds the workload images on every node
//!   (before, and without `--all`, only on the control plane: minikube#12149). Below 1.33.1
//!   a warning: the nodes keep the kernel's default inotify limits, and pods fail with "too
//!   many open files" (minikube#18831, fixed by #18832).
//! - Docker ≥ 18.09, 20.10 recommended: minikube's docker driver requirements
//!   (site/content/en/docs/drivers/docker.md). Podman ≥ 4.9.0: minikube 1.34.0's minimum.
//! - helm ≥ 3.8.0: OCI chart registries are generally available from 3.8.0 on.
//! - kubectl within one minor version of `cluster.kubernetesVersion`: Kubernetes' version skew
//!   policy for kubectl.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::version::Version;
use super::{Capacity, Env, Finding};
use crate::cluster::process::{self, Output};

pub const MINIKUBE_MIN: Version = Version::new(1, 24, 0);
pub const MINIKUBE_INOTIFY_FIX: Version = Version::new(1, 33, 1);
pub const DOCKER_MIN: Version = Version::new(18, 9, 0);
pub const DOCKER_RECOMMENDED: Version = Version::new(20, 10, 0);
pub const PODMAN_MIN: Version = Version::new(4, 9, 0);
pub const HELM_MIN: Version = Version::new(3, 8, 0);

const TIMEOUT: Duration = Duration::from_secs(20);

/// An executable file named `name` in one of `env.path`'s directories.
pub fn which(env: &Env, name: &str) -> Option<PathBuf> {
    std::env::split_paths(&env.path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a tool with the same PATH it was found on; the error is a reason for a message.
async fn exec(env: &Env, program: &Path, args: &[&str]) -> Result<Output, String> {
    let vars: [(&str, &OsStr); 2] = [
        ("PATH", env.path.as_os_str()),
        ("MINIKUBE_IN_STYLE", OsStr::new("false")),
    ];
    process::run(program.as_os_str(), args, &vars, Some(TIMEOUT))
        .await
        .map_err(|e| e.to_string())
}

/// A failed run, as the tail of its message.
fn failure(out: &Output) -> String {
    let tail = out.tail(3);
    let code = out
        .code
        .map_or("a signal".into(), |c| format!("exit code {c}"));
    if tail.is_empty() {
        code
    } else {
        format!("{code}: {}", tail.replace('\n', " "))
    }
}

/// `minikube version -o json`; returns the binary when it is usable for further checks.
pub async fn minikube(env: &Env) -> (Finding, Option<PathBuf>) {
    const CHECK: &str = "tool/minikube";
    let install = format!(
        "install minikube ≥ {MINIKUBE_MIN}: https://minikube.sigs.k8s.io/docs/start/ (or set \
         PLATFORMCTL_MINIKUBE to its path)"
    );
    // A bare name in PLATFORMCTL_MINIKUBE is looked up on PATH, as the driver's spawn does.
    let named = env.minikube.as_ref().map(|p| match p.to_str() {
        Some(name) if !name.contains('/') => which(env, name).unwrap_or_else(|| p.clone()),
        _ => p.clone(),
    });
    let path = match &named {
        Some(p) if is_executable(p) => p.clone(),
        Some(p) => {
            return (
                Finding::error(
                    CHECK,
                    format!(
                        "minikube: PLATFORMCTL_MINIKUBE names `{}`, which is not an executable file",
                        p.display()
                    ),
                    install,
                ),
                None,
            );
        }
        None => match which(env, "minikube") {
            Some(p) => p,
            None => {
                return (
                    Finding::error(CHECK, "minikube: not found on PATH", install),
                    None,
                );
            }
        },
    };
    let version = match exec(env, &path, &["version", "-o", "json"]).await {
        Ok(out) if out.success() => serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v["minikubeVersion"].as_str().map(String::from))
            .ok_or_else(|| format!("unexpected output `{}`", out.stdout.trim())),
        Ok(out) => Err(failure(&out)),
        Err(e) => Err(e),
    };
    let text = match version {
        Ok(t) => t,
        Err(reason) => {
            return (
                Finding::error(
                    CHECK,
                    format!("minikube: `minikube version -o json` failed: {reason}"),
                    install,
                ),
                None,
            );
        }
    };
    let finding = match Version::find(&text) {
        None => Finding::warn(
            CHECK,
            format!("minikube {text}: cannot tell which version this is"),
            install,
        ),
        Some(v) if v < MINIKUBE_MIN => Finding::error(
            CHECK,
            format!(
                "minikube {text} is older than {MINIKUBE_MIN}: it cannot build the workload \
                 images on every node (`minikube image build --all`)"
            ),
            "upgrade minikube: https://minikube.sigs.k8s.io/docs/start/".into(),
        ),
        Some(v) if v < MINIKUBE_INOTIFY_FIX => Finding::warn(
            CHECK,
            format!(
                "minikube {text} is older than {MINIKUBE_INOTIFY_FIX}: its nodes keep the default \
                 inotify limits and pods can fail with \"too many open files\" (minikube#18831)"
            ),
            "upgrade minikube: https://minikube.sigs.k8s.io/docs/start/".into(),
        ),
        Some(_) => Finding::ok(CHECK, format!("minikube {text}")),
    };
    (finding, Some(path))
}

/// Docker (or Podman): the minikube driver that runs each node as a container. Returns the
/// capacity Docker reports, which is what minikube's nodes share.
pub async fn container(env: &Env) -> (Vec<Finding>, Option<Capacity>) {
    let docker = match which(env, "docker") {
        Some(path) => Some(docker(env, &path).await),
        None => None,
    };
    if let Some((finding, capacity)) = &docker
        && capacity.is_some()
    {
        return (vec![finding.clone()], capacity.clone());
    }
    let podman = match which(env, "podman") {
        Some(path) => Some(podman(env, &path).await),
        None => None,
    };
    match (docker, podman) {
        (None, None) => (
            vec![Finding::error(
                "tool/docker",
                "container driver: neither docker nor podman is on PATH (minikube runs each node \
                 as a container)",
                format!(
                    "install Docker Engine ≥ {DOCKER_RECOMMENDED}: \
                     https://docs.docker.com/engine/install/"
                ),
            )],
            None,
        ),
        (Some((d, _)), None) => (vec![d], None),
        (None, Some(p)) => (vec![p], None),
        // Docker is installed but unusable: minikube moves on to Podman when Podman works.
        (Some((d, _)), Some(p)) if p.severity == super::Severity::Ok => (
            vec![
                Finding {
                    severity: super::Severity::Warn,
                    ..d
                },
                p,
            ],
            None,
        ),
        (Some((d, _)), Some(p)) => (vec![d, p], None),
    }
}

async fn docker(env: &Env, path: &Path) -> (Finding, Option<Capacity>) {
    const CHECK: &str = "tool/docker";
    let client = match exec(env, path, &["--version"]).await {
        Ok(out) if out.success() => out.stdout.trim().to_string(),
        Ok(out) => {
            return (
                Finding::error(
                    CHECK,
                    format!("docker: `docker --version` failed: {}", failure(&out)),
                    "reinstall Docker Engine: https://docs.docker.com/engine/install/".into(),
                ),
                None,
            );
        }
        Err(e) => {
            return (
                Finding::error(
                    CHECK,
                    format!("docker: cannot run it: {e}"),
                    "reinstall Docker Engine: https://docs.docker.com/engine/install/".into(),
                ),
                None,
            );
        }
    };
    let info = exec(
        env,
        path,
        &[
            "info",
            "--format",
            "{{.ServerVersion}} {{.NCPU}} {{.MemTotal}}",
        ],
    )
    .await;
    let out = match info {
        Ok(out) if out.success() => out,
        Ok(out) => {
            let text = format!("{}{}", out.stderr, out.stdout).to_lowercase();
            let (message, fix) = if text.contains("permission denied") {
                (
                    "docker: the daemon's socket refuses this user (permission denied)",
                    "add yourself to the docker group: `sudo usermod -aG docker $USER`, then log \
                     in again (or run `newgrp docker`)",
                )
            } else {
                (
                    "docker: the daemon is not reachable",
                    "start it: `sudo systemctl start docker` (or start Docker Desktop)",
                )
            };
            return (
                Finding::error(
                    CHECK,
                    format!("{message} ({client}; `docker info`: {})", failure(&out)),
                    fix.into(),
                ),
                None,
            );
        }
        Err(e) => {
            return (
                Finding::error(
                    CHECK,
                    format!("docker: the daemon does not answer `docker info` ({e})"),
                    "restart it: `sudo systemctl restart docker` (or restart Docker Desktop)"
                        .into(),
                ),
                None,
            );
        }
    };
    let fields: Vec<&str> = out.stdout.split_whitespace().collect();
    let server = fields.first().copied().unwrap_or("");
    let capacity = match (
        fields.get(1).and_then(|c| c.parse::<u32>().ok()),
        fields.get(2).and_then(|m| m.parse::<u64>().ok()),
    ) {
        (Some(cpus), Some(bytes)) => Some(Capacity {
            source: "Docker",
            cpus,
            memory_mib: bytes / (1024 * 1024),
            available_mib: None,
        }),
        _ => None,
    };
    let Some(capacity) = capacity else {
        return (
            Finding::warn(
                CHECK,
                format!(
                    "docker: unexpected `docker info` output `{}`",
                    out.stdout.trim()
                ),
                "check `docker info`".into(),
            ),
            None,
        );
    };
    let version = Version::find(server).or_else(|| Version::find(&client));
    let summary = format!(
        "docker {server} (daemon: {} CPUs, {:.1} GiB)",
        capacity.cpus,
        capacity.memory_mib as f64 / 1024.0
    );
    let upgrade = || "upgrade Docker Engine: https://docs.docker.com/engine/install/".to_string();
    let finding = match version {
        Some(v) if v < DOCKER_MIN => Finding::error(
            CHECK,
            format!("{summary} is older than {DOCKER_MIN}, minikube's minimum"),
            upgrade(),
        ),
        Some(v) if v < DOCKER_RECOMMENDED => Finding::warn(
            CHECK,
            format!("{summary} is older than {DOCKER_RECOMMENDED}, which minikube recommends"),
            upgrade(),
        ),
        _ => Finding::ok(CHECK, summary),
    };
    (finding, Some(capacity))
}

async fn podman(env: &Env, path: &Path) -> Finding {
    const CHECK: &str = "tool/podman";
    let install = || format!("install Podman ≥ {PODMAN_MIN}: https://podman.io/docs/installation");
    let text = match exec(env, path, &["--version"]).await {
        Ok(out) if out.success() => out.stdout.trim().to_string(),
        Ok(out) => {
            return Finding::error(
                CHECK,
                format!("podman: `podman --version` failed: {}", failure(&out)),
                install(),
            );
        }
        Err(e) => return Finding::error(CHECK, format!("podman: cannot run it: {e}"), install()),
    };
    match Version::find(&text) {
        Some(v) if v < PODMAN_MIN => Finding::error(
            CHECK,
            format!("{text} is older than {PODMAN_MIN}, minikube's minimum for its podman driver"),
            install(),
        ),
        _ => Finding::ok(CHECK, text),
    }
}

/// `git --version`: `git version 2.47.2`. `up` reads the GitOps source with it (`ls-remote`)
/// and pushes to the in-cluster server of `gitops.local`.
pub async fn git(env: &Env) -> Finding {
    const CHECK: &str = "tool/git";
    let install = || "install git: https://git-scm.com/downloads".to_string();
    let Some(path) = which(env, "git") else {
        return Finding::error(
            CHECK,
            "git: not found on PATH (platformctl reads the GitOps source and pushes to the in-cluster git server with it)",
            install(),
        );
    };
    match exec(env, &path, &["--version"]).await {
        Ok(out) if out.success() => Finding::ok(CHECK, out.stdout.trim().to_string()),
        Ok(out) => Finding::error(
            CHECK,
            format!("git: `git --version` failed: {}", failure(&out)),
            install(),
        ),
        Err(e) => Finding::error(CHECK, format!("git: cannot run it: {e}"), install()),
    }
}

/// The helm platformctl runs: the one `PLATFORMCTL_HELM` names, else `helm` on PATH; `None`
/// when that is not an executable file.
pub fn helm_binary(env: &Env) -> Option<PathBuf> {
    match &env.helm {
        Some(p) => is_executable(p).then(|| p.clone()),
        None => which(env, "helm"),
    }
}

/// `helm version --short`: `v3.19.0+g3d8990f`.
pub async fn helm(env: &Env) -> Finding {
    const CHECK: &str = "tool/helm";
    let install = || format!("install helm ≥ {HELM_MIN}: https://helm.sh/docs/intro/install/");
    let Some(path) = helm_binary(env) else {
        let message = match &env.helm {
            Some(p) => format!(
                "helm: {} names `{}`, which is not an executable file",
                crate::addons::HELM_ENV,
                p.display()
            ),
            None => "helm: not found on PATH (platformctl installs the addons with it)".into(),
        };
        return Finding::error(CHECK, message, install());
    };
    let text = match exec(env, &path, &["version", "--short"]).await {
        Ok(out) if out.success() => out.stdout.trim().to_string(),
        Ok(out) => {
            return Finding::error(
                CHECK,
                format!("helm: `helm version --short` failed: {}", failure(&out)),
                install(),
            );
        }
        Err(e) => return Finding::error(CHECK, format!("helm: cannot run it: {e}"), install()),
    };
    match Version::find(&text) {
        None => Finding::warn(
            CHECK,
            format!("helm {text}: cannot tell which version this is"),
            install(),
        ),
        Some(v) if v < HELM_MIN => Finding::error(
            CHECK,
            format!("helm {text} is older than {HELM_MIN}, which OCI chart registries need"),
            install(),
        ),
        Some(_) => Finding::ok(CHECK, format!("helm {text}")),
    }
}

/// `kubectl version --client -o json`; `cluster` is the Kubernetes version kubectl will talk
/// to, when platformctl knows it.
pub async fn kubectl(env: &Env, cluster: Option<Version>) -> Finding {
    const CHECK: &str = "tool/kubectl";
    let install = |v: Option<Version>| match v {
        Some(v) => format!(
            "install kubectl v{}.{}: https://kubernetes.io/docs/tasks/tools/",
            v.major, v.minor
        ),
        None => "install kubectl: https://kubernetes.io/docs/tasks/tools/".into(),
    };
    let Some(path) = which(env, "kubectl") else {
        return Finding::error(
            CHECK,
            "kubectl: not found on PATH (the way to look into the platform)",
            install(cluster),
        );
    };
    let text = match exec(env, &path, &["version", "--client", "-o", "json"]).await {
        Ok(out) if out.success() => serde_json::from_str::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v["clientVersion"]["gitVersion"].as_str().map(String::from)),
        Ok(out) => {
            return Finding::error(
                CHECK,
                format!(
                    "kubectl: `kubectl version --client -o json` failed: {}",
                    failure(&out)
                ),
                install(cluster),
            );
        }
        Err(e) => {
            return Finding::error(
                CHECK,
                format!("kubectl: cannot run it: {e}"),
                install(cluster),
            );
        }
    };
    let Some(text) = text else {
        return Finding::warn(
            CHECK,
            "kubectl: `kubectl version --client -o json` has no clientVersion.gitVersion",
            install(cluster),
        );
    };
    match (Version::find(&text), cluster) {
        (Some(k), Some(c)) if k.major != c.major || k.minor.abs_diff(c.minor) > 1 => Finding::warn(
            CHECK,
            format!(
                "kubectl {text} is {} minor versions from cluster.kubernetesVersion \
                     v{}.{}; kubectl supports one minor version either way",
                k.minor.abs_diff(c.minor),
                c.major,
                c.minor
            ),
            install(cluster),
        ),
        (Some(_), _) => Finding::ok(CHECK, format!("kubectl {text}")),
        (None, _) => Finding::warn(
            CHECK,
            format!("kubectl {text}: cannot tell which version this is"),
            install(cluster),
        ),
    }
}
