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
            helm: None,
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
    let r = run(&cluster(1), &[], &m.env()).await;
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
    let r = run(&cluster(3), &[], &m.env()).await;
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
    let r = run(&cluster(1), &[], &m.env()).await;
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
    let r = run(&cluster(1), &[], &m.env()).await;
    let d = by_check(&r, "tool/docker");
    assert_eq!(d.severity, Severity::Error);
    assert!(
        d.fix
            .as_deref()
            .is_some_and(|f| f.contains("usermod -aG docker"))
    );

    // With a working Podman, minikube uses it: Docker's problem is only a warning.
    script(&m.bin(), "podman", "echo 'podman version 5.4.0'\n");
    let r = run(&cluster(1), &[], &m.env()).await;
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
    let r = run(&cluster(3), &[], &m.env()).await;
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
    let r = run(&existing, &[], &m.env()).await;
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
    let r = run(&other, &[], &m.env()).await;
    let c = by_check(&r, "cluster/context");
    assert_eq!(c.severity, Severity::Error);
    assert_eq!(
        c.message,
        "context `prod` is not in the kubeconfig (available: sim)"
    );
}

/// A release of `kind` pinned at `version` in `repository`.
fn pinned(kind: crate::addons::Kind, version: &str, repository: &str) -> Release {
    Release {
        kind,
        name: kind.release().into(),
        chart: kind.chart().into(),
        repository: repository.into(),
        version: version.into(),
        namespace: kind.namespace().into(),
        values: serde_json::Value::Null,
        credentials: None,
    }
}

#[tokio::test]
async fn chart_versions_are_asked_of_the_helm_platformctl_runs() {
    use crate::addons::Kind;
    // A fake helm answering `version --short`, and `show chart metrics-server --repo R
    // [--version V]` as helm 3.19 does: the Chart.yaml of the version an exact pin or a constraint resolves to (releases
    // 3.13.0 and 3.13.1), the index's "not found" error, or no answer from an unknown host.
    let m = Machine::new().all_tools();
    let helm = m.dir.path().join("real-helm");
    script(
        m.dir.path(),
        "real-helm",
        "[ \"$1\" = version ] && { echo 'v3.19.0+gfake'; exit 0; }\n\
         repo=; v=\n\
         while [ $# -gt 0 ]; do\n\
           case \"$1\" in --repo) repo=$2 ;; --version) v=$2 ;; esac; shift\n\
         done\n\
         case \"$repo\" in http://unreachable*)\n\
           echo \"Error: looks like \\\"$repo\\\" is not a valid chart repository or cannot be reached: Get \\\"$repo/index.yaml\\\": dial tcp: lookup unreachable: no such host\" >&2; exit 1 ;;\n\
         esac\n\
         case \"$v\" in\n\
           3.13.0) printf 'apiVersion: v2\\nname: metrics-server\\nversion: 3.13.0\\n' ;;\n\
           3.13.1|'~3.13.0'|'') printf 'apiVersion: v2\\nname: metrics-server\\nversion: 3.13.1\\n' ;;\n\
           *) echo \"Error: chart \\\"metrics-server\\\" version \\\"$v\\\" not found in $repo repository\" >&2; exit 1 ;;\n\
         esac\n",
    );
    let env = Env {
        helm: Some(helm.clone()),
        ..m.env()
    };
    let repo = "http://127.0.0.1:8879";
    let releases = [
        pinned(Kind::MetricsServer, "3.13.0", repo),
        pinned(Kind::MetricsServer, "3.13.7", repo),
        pinned(Kind::MetricsServer, "4.0.5", repo),
        pinned(Kind::MetricsServer, "3.13.0", "http://unreachable.invalid"),
    ];
    let findings = charts::versions(&releases, &env).await;
    let got: Vec<(Severity, &str, Option<&str>)> = findings
        .iter()
        .map(|f| (f.severity, f.message.as_str(), f.fix.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (
                Severity::Ok,
                "chart metrics-server 3.13.0 is in http://127.0.0.1:8879",
                None
            ),
            (
                Severity::Error,
                "chart metrics-server 3.13.7 is not in http://127.0.0.1:8879: `up` cannot install \
                 it (addons.metricsServer.version)",
                Some(
                    "pin a version that exists, e.g. the newest of its 3.13 line in \
                     http://127.0.0.1:8879: `addons.metricsServer.version: 3.13.1`"
                )
            ),
            (
                Severity::Error,
                "chart metrics-server 4.0.5 is not in http://127.0.0.1:8879: `up` cannot install \
                 it (addons.metricsServer.version)",
                Some(
                    "pin a version that exists: http://127.0.0.1:8879 has no release of the 4.0 \
                     line; its newest is `addons.metricsServer.version: 3.13.1`"
                )
            ),
            (
                Severity::Warn,
                "chart metrics-server 3.13.0: could not ask http://unreachable.invalid: Get \
                 \"http://unreachable.invalid/index.yaml\": dial tcp: lookup unreachable: no \
                 such host",
                Some(
                    "check the network and the repository (addons.metricsServer.repository); \
                     `platformctl doctor --offline` skips this check"
                )
            ),
        ]
    );
    assert!(findings.iter().all(|f| f.check == "chart/metricsServer"));

    // tool/helm reports the same binary; one that is not executable is an error naming it.
    let r = run(&cluster(1), &[], &env).await;
    assert_eq!(by_check(&r, "tool/helm").message, "helm v3.19.0+gfake");
    let missing = Env {
        helm: Some(m.dir.path().join("no-such-helm")),
        ..m.env()
    };
    let r = run(&cluster(1), &releases[..1], &missing).await;
    let tool = by_check(&r, "tool/helm");
    assert_eq!(tool.severity, Severity::Error);
    assert!(
        tool.message.contains("PLATFORMCTL_HELM names") && tool.message.contains("no-such-helm"),
        "{tool:?}"
    );
    let charts = by_check(&r, "chart/versions");
    assert_eq!(charts.severity, Severity::Warn);
    assert_eq!(
        charts.message,
        "chart versions: not checked, there is no helm to ask the repositories with"
    );
}
