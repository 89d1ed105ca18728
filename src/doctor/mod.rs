//! `doctor`: the prerequisites of `up` and the known local-cluster pitfalls, each finding with
//! a fix.
//!
//! It checks the tools (minikube, a container driver, helm, kubectl) and their versions, this
//! machine's CPUs and memory against the nodes platform.yaml asks for, the multi-node minikube
//! pitfalls that can be seen from here (inotify limits, hostPath storage), and the cluster
//! itself as far as it exists: the minikube profile's state and node count, or the kubeconfig
//! context of an existing cluster. Everything it reads from the machine comes through [`Env`],
//! so tests point it at fake tools and a fake `/proc`. It never changes anything and never
//! prints; it does not contact the Kubernetes API.

mod host;
mod tools;
mod version;

use std::ffi::OsString;
use std::path::PathBuf;

use ::kube::config::KubeconfigError;
use serde::Serialize;

pub use version::Version;

use crate::cluster::existing;
use crate::cluster::minikube::{self, Minikube, ProfileStatus};
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
    /// The kubeconfig files, merged in order.
    pub kubeconfig: Vec<PathBuf>,
}

/// Overrides `/proc`, to check a machine whose proc filesystem is mounted elsewhere (and for
/// tests).
pub const ENV_PROC: &str = "PLATFORMCTL_PROC";

impl Env {
    /// This process's `PATH`, `/proc` (or `$PLATFORMCTL_PROC`), `$PLATFORMCTL_MINIKUBE` and
    /// kubeconfig (`KUBECONFIG`, else `~/.kube/config`).
    pub fn from_process() -> Self {
        let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Env {
            path: nonempty("PATH").unwrap_or_default(),
            proc_root: nonempty(ENV_PROC)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/proc")),
            minikube: nonempty(minikube::ENV_BINARY).map(PathBuf::from),
            kubeconfig: existing::default_paths(),
        }
    }
}

/// Runs every check that applies to `cluster` (with its driver) on this machine.
pub async fn run(cluster: &Cluster, env: &Env) -> Report {
    let findings = match cluster.driver {
        Driver::Minikube => minikube_checks(cluster, env).await,
        Driver::Existing => existing_checks(cluster, env).await,
    };
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
        findings.push(profile(cluster, &Minikube::new(path)).await);
    }
    findings
}

/// The profile as it is now: absent before the first `up`, running with the configured node
/// count after it.
async fn profile(cluster: &Cluster, mk: &Minikube) -> Finding {
    const CHECK: &str = "cluster/profile";
    let p = &cluster.profile;
    let status = match mk.status(p).await {
        Ok(s) => s,
        Err(e) => {
            return Finding::warn(
                CHECK,
                format!("minikube profile `{p}`: cannot read its status: {e}"),
                format!("run `minikube status -p {p}` to see what minikube says"),
            );
        }
    };
    if let Err(e) = minikube::check_node_count(p, &status, cluster.nodes) {
        return Finding::error(CHECK, e.to_string(), e.hint().unwrap_or_default());
    }
    match status {
        ProfileStatus::Absent => Finding::ok(
            CHECK,
            format!(
                "minikube profile `{p}` does not exist yet: `platformctl up` creates it with {} \
                 node{}",
                cluster.nodes,
                if cluster.nodes == 1 { "" } else { "s" }
            ),
        ),
        ProfileStatus::Running { nodes } => Finding::ok(
            CHECK,
            format!(
                "minikube profile `{p}` is running: {}",
                nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        ProfileStatus::Stopped { .. } => Finding::warn(
            CHECK,
            format!("minikube profile `{p}` is stopped"),
            "`platformctl up` starts it".into(),
        ),
        ref s @ ProfileStatus::Degraded { ref reason, .. } => {
            if s.only_kubeconfig_stale() {
                Finding::warn(
                    CHECK,
                    format!(
                        "minikube profile `{p}` runs, but the kubeconfig points elsewhere: {reason}"
                    ),
                    format!("`minikube update-context -p {p}` (`platformctl up` does it too)"),
                )
            } else {
                Finding::error(
                    CHECK,
                    format!("minikube profile `{p}` is degraded: {reason}"),
                    format!(
                        "`platformctl up` restarts it; if it stays so, see `minikube logs -p {p}`"
                    ),
                )
            }
        }
    }
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
    findings.push(context(cluster, env));
    findings
}

fn context(cluster: &Cluster, env: &Env) -> Finding {
    const CHECK: &str = "cluster/context";
    let files = env
        .kubeconfig
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let kubeconfig = match existing::read(&env.kubeconfig) {
        Ok(k) => k,
        Err(e) => {
            let message = match &e {
                crate::cluster::Error::Kubeconfig(KubeconfigError::ReadConfig(io, path))
                    if io.kind() == std::io::ErrorKind::NotFound =>
                {
                    format!("no kubeconfig at `{}`", path.display())
                }
                crate::cluster::Error::Kubeconfig(KubeconfigError::FindPath) => {
                    "no kubeconfig: KUBECONFIG is not set and there is no home directory".into()
                }
                _ => {
                    let cause = std::error::Error::source(&e)
                        .map(|s| format!(": {s}"))
                        .unwrap_or_default();
                    format!("{e} (`{files}`){cause}")
                }
            };
            return Finding::error(
                CHECK,
                message,
                "point KUBECONFIG at the kubeconfig of the cluster to use".into(),
            );
        }
    };
    match existing::select(&kubeconfig, cluster.context.as_deref()) {
        Ok(name) => Finding::ok(CHECK, format!("kubeconfig context `{name}`")),
        Err(e) => Finding::error(CHECK, e.to_string(), e.hint().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    //! doctor against fake tools: tiny shell scripts printing the real version output of each
    //! tool (minikube's `version -o json` shape, helm's `--short` format
    //! `v<version>+g<commit>`, kubectl 1.34.4's `version --client -o json`, Docker 28.2.2's
    //! `--version`), and a fake `/proc`.
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/minikube");

    /// A fake tool. Its PATH holds only fake tools, so it uses shell builtins only.
    fn script(dir: &std::path::Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).expect("write script");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// Shell code printing a fixture file verbatim.
    fn print_fixture(name: &str) -> String {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture");
        assert!(!text.contains('\''), "{name} holds a single quote");
        format!("printf '%s' '{text}'")
    }

    struct Machine {
        dir: tempfile::TempDir,
    }

    impl Machine {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let proc = dir.path().join("proc");
            std::fs::create_dir_all(proc.join("sys/fs/inotify")).expect("proc");
            std::fs::write(proc.join("cpuinfo"), "processor\t: 0\n\nprocessor\t: 1\n").expect("w");
            std::fs::write(
                proc.join("meminfo"),
                "MemTotal:       32768000 kB\nMemAvailable:   30000000 kB\n",
            )
            .expect("w");
            std::fs::write(proc.join("sys/fs/inotify/max_user_instances"), "8192\n").expect("w");
            std::fs::write(proc.join("sys/fs/inotify/max_user_watches"), "524288\n").expect("w");
            std::fs::create_dir(dir.path().join("bin")).expect("bin");
            Machine { dir }
        }

        fn bin(&self) -> PathBuf {
            self.dir.path().join("bin")
        }

        fn all_tools(self) -> Self {
            let bin = self.bin();
            script(
                &bin,
                "minikube",
                &format!(
                    "case \"$1\" in\n\
                     version) echo '{{\"commit\":\"f8f52f5de11fc6ad8244afac475e1d0f96841df1\",\"minikubeVersion\":\"v1.36.0\"}}' ;;\n\
                     status) {}; exit 85 ;;\n\
                     esac\n",
                    print_fixture("status-absent.json")
                ),
            );
            script(
                &bin,
                "docker",
                "case \"$1\" in\n\
                 --version) echo 'Docker version 28.2.2, build e6534b4' ;;\n\
                 info) echo '28.2.2 8 33554432000' ;;\n\
                 esac\n",
            );
            script(&bin, "helm", "echo 'v3.19.0+g3d8990f'\n");
            script(&bin, "git", "echo 'git version 2.47.3'\n");
            script(
                &bin,
                "kubectl",
                "echo '{\n  \"clientVersion\": {\n    \"major\": \"1\",\n    \"minor\": \"34\",\n    \"gitVersion\": \"v1.34.4\",\n    \"platform\": \"linux/amd64\"\n  },\n  \"kustomizeVersion\": \"v5.7.1\"\n}'\n",
            );
            self
        }

        fn env(&self) -> Env {
            Env {
                path: self.bin().into_os_string(),
                proc_root: self.dir.path().join("proc"),
                minikube: None,
                kubeconfig: vec![self.dir.path().join("kubeconfig")],
            }
        }
    }

    fn cluster(nodes: u32) -> Cluster {
        Cluster {
            profile: "customer-platform".into(),
            nodes,
            ..Cluster::default()
        }
    }

    fn by_check<'a>(r: &'a Report, check: &str) -> &'a Finding {
        r.findings
            .iter()
            .find(|f| f.check == check)
            .unwrap_or_else(|| panic!("no {check} in {r:#?}"))
    }

    #[tokio::test]
    async fn all_present_single_node_passes_clean() {
        let m = Machine::new().all_tools();
        let r = run(&cluster(1), &m.env()).await;
        assert!(
            r.findings.iter().all(|f| f.severity == Severity::Ok),
            "{r:#?}"
        );
        assert_eq!(by_check(&r, "tool/minikube").message, "minikube v1.36.0");
        assert_eq!(
            by_check(&r, "tool/docker").message,
            "docker 28.2.2 (daemon: 8 CPUs, 31.2 GiB)"
        );
        assert_eq!(by_check(&r, "tool/helm").message, "helm v3.19.0+g3d8990f");
        assert_eq!(by_check(&r, "tool/kubectl").message, "kubectl v1.34.4");
        assert!(
            by_check(&r, "cluster/profile")
                .message
                .contains("does not exist yet")
        );
        assert!(r.passed());
    }

    #[tokio::test]
    async fn missing_tools_are_errors_with_install_fixes() {
        let m = Machine::new();
        let r = run(&cluster(3), &m.env()).await;
        for check in ["tool/minikube", "tool/docker", "tool/helm", "tool/kubectl"] {
            let f = by_check(&r, check);
            assert_eq!(f.severity, Severity::Error, "{f:?}");
            assert!(
                f.fix.as_deref().is_some_and(|x| x.contains("install")),
                "{f:?}"
            );
        }
        // Without Docker the host's /proc is the capacity; no profile check without minikube.
        assert!(by_check(&r, "host/cpu").message.contains("this host has 2"));
        assert!(r.findings.iter().all(|f| f.check != "cluster/profile"));
        assert_eq!(by_check(&r, "pitfall/storage").severity, Severity::Warn);
        assert!(!r.passed());
    }

    #[tokio::test]
    async fn old_versions_and_skew() {
        let m = Machine::new().all_tools();
        script(
            &m.bin(),
            "minikube",
            "echo '{\"commit\":\"62e108c3dfdec8029a890ad6d8ef96b6461426dc\",\"minikubeVersion\":\"v1.26.1\"}'\n",
        );
        script(&m.bin(), "helm", "echo 'v3.7.2+g663a896'\n");
        script(
            &m.bin(),
            "kubectl",
            "echo '{\"clientVersion\":{\"major\":\"1\",\"minor\":\"32+\",\"gitVersion\":\"v1.32.4-dispatcher\"}}'\n",
        );
        let r = run(&cluster(1), &m.env()).await;
        assert_eq!(by_check(&r, "tool/minikube").severity, Severity::Warn);
        assert_eq!(by_check(&r, "tool/helm").severity, Severity::Error);
        let k = by_check(&r, "tool/kubectl");
        assert_eq!(k.severity, Severity::Warn);
        assert_eq!(
            k.message,
            "kubectl v1.32.4-dispatcher is 2 minor versions from cluster.kubernetesVersion v1.34; \
             kubectl supports one minor version either way"
        );
        assert_eq!(
            k.fix.as_deref(),
            Some("install kubectl v1.34: https://kubernetes.io/docs/tasks/tools/")
        );
        // minikube answered its version but `status` is not understood: a warning, not a crash.
        assert_eq!(by_check(&r, "cluster/profile").severity, Severity::Warn);
    }

    #[tokio::test]
    async fn docker_daemon_down_or_forbidden() {
        let m = Machine::new().all_tools();
        script(
            &m.bin(),
            "docker",
            "case \"$1\" in\n\
             --version) echo 'Docker version 28.2.2, build e6534b4' ;;\n\
             info) echo 'permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock' >&2; exit 1 ;;\n\
             esac\n",
        );
        let r = run(&cluster(1), &m.env()).await;
        let d = by_check(&r, "tool/docker");
        assert_eq!(d.severity, Severity::Error);
        assert!(
            d.fix
                .as_deref()
                .is_some_and(|f| f.contains("usermod -aG docker"))
        );

        // With a working Podman, minikube uses it: Docker's problem is only a warning.
        script(&m.bin(), "podman", "echo 'podman version 5.4.0'\n");
        let r = run(&cluster(1), &m.env()).await;
        assert_eq!(by_check(&r, "tool/docker").severity, Severity::Warn);
        assert_eq!(by_check(&r, "tool/podman").message, "podman version 5.4.0");
        assert!(r.passed(), "{r:#?}");
    }

    #[tokio::test]
    async fn profile_node_count_mismatch_is_an_error_with_the_fix() {
        let m = Machine::new().all_tools();
        script(
            &m.bin(),
            "minikube",
            &format!(
                "case \"$1\" in\n\
                 version) echo '{{\"commit\":\"x\",\"minikubeVersion\":\"v1.36.0\"}}' ;;\n\
                 status) {} ;;\n\
                 esac\n",
                print_fixture("status-single-running.json")
            ),
        );
        let r = run(&cluster(3), &m.env()).await;
        let p = by_check(&r, "cluster/profile");
        assert_eq!(p.severity, Severity::Error);
        assert_eq!(
            p.message,
            "minikube profile `customer-platform` has 1 node, but platform.yaml asks for 3"
        );
        assert!(
            p.fix
                .as_deref()
                .is_some_and(|f| f.contains("minikube node add"))
        );
    }

    #[tokio::test]
    async fn existing_driver_needs_no_minikube_and_checks_the_context() {
        let m = Machine::new().all_tools();
        std::fs::remove_file(m.bin().join("minikube")).expect("rm");
        std::fs::remove_file(m.bin().join("docker")).expect("rm");
        std::fs::write(
            m.dir.path().join("kubeconfig"),
            "apiVersion: v1\nkind: Config\ncurrent-context: sim\ncontexts:\n- name: sim\n  context: {cluster: sim, user: sim}\nclusters:\n- name: sim\n  cluster: {server: \"https://127.0.0.1:26400\"}\nusers:\n- name: sim\n  user: {token: t}\n",
        )
        .expect("kubeconfig");
        let existing = Cluster {
            driver: Driver::Existing,
            ..cluster(3)
        };
        let r = run(&existing, &m.env()).await;
        assert!(r.passed(), "{r:#?}");
        assert_eq!(
            r.findings.iter().map(|f| f.check).collect::<Vec<_>>(),
            [
                "driver/existing",
                "tool/helm",
                "tool/kubectl",
                "tool/git",
                "cluster/context"
            ]
        );
        assert_eq!(
            by_check(&r, "cluster/context").message,
            "kubeconfig context `sim`"
        );

        let other = Cluster {
            context: Some("prod".into()),
            ..existing
        };
        let r = run(&other, &m.env()).await;
        let c = by_check(&r, "cluster/context");
        assert_eq!(c.severity, Severity::Error);
        assert_eq!(
            c.message,
            "context `prod` is not in the kubeconfig (available: sim)"
        );
    }
}
