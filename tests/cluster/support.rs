//! The cluster fixture: one real control plane per test run, started by `tests/sim/cluster`
//! (etcd, kube-apiserver, kube-controller-manager, kube-scheduler built from their Go modules;
//! kwok simulates the three nodes' kubelets), and a namespace set per test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The nodes the harness registers, in the shape of `minikube start --nodes 3`.
pub const NODES: [&str; 3] = ["minikube", "minikube-m02", "minikube-m03"];

/// The Argo Rollouts controller of the test run reconciles only Rollouts with this
/// `argo-rollouts.argoproj.io/controller-instance-id` label: the reference-tree tests apply Rollouts too and
/// must not have a controller rewrite their Services under them.
pub const ROLLOUTS_INSTANCE_ID: &str = "platformctl-tests";

/// Ports for the test run's cluster: apart from the default (26400) that a cluster started by
/// hand uses, so the two never collide. `PLATFORMCTL_TEST_SIM_PORT_BASE` and
/// `PLATFORMCTL_TEST_SIM_DIR` move the run's cluster elsewhere, so two runs of this tier can go
/// on side by side.
const PORT_BASE: u16 = 26500;

fn port_base() -> u16 {
    std::env::var("PLATFORMCTL_TEST_SIM_PORT_BASE")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(PORT_BASE)
}

pub type TestResult = Result<(), String>;

/// The first two octets of the run's pod network (tests/sim/lib/workloads.sh: 10.<n>.0.0/16,
/// the n its `up` chose and recorded in the state directory's `pod-net`).
pub fn pod_network() -> Result<[u8; 2], String> {
    let file = state_dir().join("pod-net");
    let n = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let n = n
        .trim()
        .parse()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok([10, n])
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn harness() -> PathBuf {
    repo_root().join("tests/sim/cluster")
}

fn state_dir() -> PathBuf {
    std::env::var_os("PLATFORMCTL_TEST_SIM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("sim-cluster"))
}

/// The harness as the fixture runs it (same state directory and ports).
pub fn harness_command(args: &[&str]) -> Command {
    let mut cmd = harness_command_in(&state_dir(), port_base(), args);
    cmd.env("PLATFORMCTL_SIM_ROLLOUTS_INSTANCE_ID", ROLLOUTS_INSTANCE_ID);
    cmd
}

/// The harness on a state directory and ports of the caller's choosing.
pub fn harness_command_in(dir: &Path, port_base: u16, args: &[&str]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(harness())
        .args(args)
        .env("PLATFORMCTL_SIM_DIR", dir)
        .env("PLATFORMCTL_SIM_PORT_BASE", port_base.to_string())
        .stdin(Stdio::null());
    cmd
}

pub struct Cluster {
    pub kubeconfig: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The run's cluster, started on first use. Its start-up progress goes to stderr.
pub fn cluster() -> Result<&'static Cluster, String> {
    CLUSTER
        .get_or_init(|| {
            hold_run_lock()?;
            // With pods that run (the reference services as real processes), the real Argo
            // Rollouts controller (Rollouts reach their phases by Argo's rules), the real
            // Argo CD (Applications sync and report health by Argo CD's rules) and the real
            // prometheus-operator, whose Prometheus and Alertmanager run as pods, and the real
            // Chaos Mesh controller manager (it kills the pods a PodChaos selects).
            let out =
                harness_command(&["up", "--with", "workloads,rollouts,argocd,monitoring,chaos"])
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| format!("could not run {}: {e}", harness().display()))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                return Err(format!(
                    "tests/sim/cluster up failed ({}); its error is above",
                    out.status
                ));
            }
            let line = stdout.lines().last().unwrap_or_default();
            let path = line.strip_prefix("KUBECONFIG=").ok_or_else(|| {
                format!("tests/sim/cluster up did not end with KUBECONFIG=: {stdout:?}")
            })?;
            Ok(Cluster {
                kubeconfig: PathBuf::from(path),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// One test run at a time per state directory: two runs in one checkout would share the
/// cluster, and the first to finish would stop it under the other. Held until the process exits.
fn hold_run_lock() -> Result<(), String> {
    static LOCK: OnceLock<std::fs::File> = OnceLock::new();
    let dir = state_dir();
    let path = dir.with_extension("lock");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if file.try_lock().is_err() {
        eprintln!(
            "cluster tier: another test run holds {}; waiting for it to finish",
            path.display()
        );
        file.lock()
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let _ = LOCK.set(file);
    Ok(())
}

/// Stops the run's cluster (its own state directory under target/tmp) if a test used it.
pub fn stop() {
    if CLUSTER.get().is_some() {
        match harness_command(&["down"]).stdout(Stdio::null()).status() {
            Ok(s) if s.success() => {}
            other => eprintln!("tests/sim/cluster down failed: {other:?}"),
        }
    }
}

impl Cluster {
    pub async fn client(&self) -> Result<Client, String> {
        let config = self.config().await?;
        Client::try_from(config).map_err(|e| format!("client: {e}"))
    }

    pub async fn config(&self) -> Result<kube::Config, String> {
        let kubeconfig =
            Kubeconfig::read_from(&self.kubeconfig).map_err(|e| format!("kubeconfig: {e}"))?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| format!("kubeconfig: {e}"))
    }

    /// A client that authenticates as ServiceAccount `name` of `namespace` (a 10-minute token
    /// from the TokenRequest API, asked with the admin `client`).
    pub async fn client_as(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<Client, String> {
        let request: k8s_openapi::api::authentication::v1::TokenRequest = serde_json::from_value(
            serde_json::json!({"spec": {"audiences": [], "expirationSeconds": 600}}),
        )
        .map_err(|e| e.to_string())?;
        let token = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(|e| format!("TokenRequest: {e}"))?
            .status
            .ok_or("TokenRequest has no status")?
            .token;
        let mut config = self.config().await?;
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.into()),
            ..Default::default()
        };
        Client::try_from(config).map_err(|e| e.to_string())
    }
}

thread_local! {
    /// The trial running on this thread (for messages about it, such as its waits).
    pub static TRIAL: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// A trial that says on stderr how long it took, so a run's log shows what each test costs.
pub fn trial(
    name: &str,
    body: impl FnOnce() -> Result<(), libtest_mimic::Failed> + Send + 'static,
) -> libtest_mimic::Trial {
    let label = name.to_string();
    libtest_mimic::Trial::test(name, move || {
        TRIAL.with(|t| t.replace(label.clone()));
        let start = Instant::now();
        let result = body();
        let verdict = if result.is_ok() { "ok" } else { "failed" };
        eprintln!(
            "trial {label}: {verdict} in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        result
    })
}

/// Runs one async test body on its own runtime, with the cluster's admin client.
pub fn run<F, Fut>(body: F) -> Result<(), libtest_mimic::Failed>
where
    F: FnOnce(&'static Cluster, Client) -> Fut,
    Fut: std::future::Future<Output = TestResult>,
{
    let cluster = cluster()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(async {
            let client = cluster.client().await?;
            body(cluster, client).await
        })
        .map_err(Into::into)
}

/// Namespaces owned by one test: named `<test>-<base>-<run id>` so runs never meet. A test calls
/// [`Namespaces::delete`] at its end, whatever the outcome.
pub struct Namespaces {
    client: Client,
    pub names: BTreeMap<String, String>,
}

fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{:x}", (nanos ^ u128::from(std::process::id())) & 0xff_ffff)
    })
}

impl Namespaces {
    /// Creates one namespace per base name (`<test>-<base>-<run id>`) and waits until its
    /// `default` ServiceAccount exists (pods are refused before that).
    pub async fn create(client: &Client, test: &str, bases: &[&str]) -> Result<Namespaces, String> {
        let api: Api<Namespace> = Api::all(client.clone());
        let mut names = BTreeMap::new();
        for base in bases {
            let name = format!("{test}-{base}-{}", run_id());
            let ns: Namespace = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "labels": {"platformctl.dev/test": test}}
            }))
            .map_err(|e| e.to_string())?;
            if let Err(e) = api.create(&PostParams::default(), &ns).await {
                Namespaces {
                    client: client.clone(),
                    names,
                }
                .delete()
                .await;
                return Err(format!("create namespace {name}: {e}"));
            }
            names.insert((*base).to_string(), name);
        }
        let namespaces = Namespaces {
            client: client.clone(),
            names,
        };
        for name in namespaces.names.values() {
            let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
            let waited = wait_for(
                &format!("ServiceAccount default in {name}"),
                Duration::from_secs(60),
                || async {
                    Ok(sa
                        .get_opt("default")
                        .await
                        .map_err(|e| e.to_string())?
                        .is_some())
                },
            )
            .await;
            if let Err(e) = waited {
                namespaces.delete().await;
                return Err(e);
            }
        }
        Ok(namespaces)
    }

    pub fn get(&self, base: &str) -> &str {
        &self.names[base]
    }

    pub async fn delete(self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        for name in self.names.values() {
            if let Err(e) = api.delete(name, &DeleteParams::default()).await {
                eprintln!("warning: could not delete namespace {name}: {e}");
            }
        }
    }
}

/// Polls `check` every 200 ms until it says true; fails after `timeout`, naming what it awaited.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, String>>,
{
    let start = Instant::now();
    let mut last_error = String::new();
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_error = e,
        }
        if start.elapsed() > timeout {
            let detail = if last_error.is_empty() {
                String::new()
            } else {
                format!(" (last error: {last_error})")
            };
            return Err(format!(
                "timed out after {timeout:?} waiting for {what}{detail}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `value` as a `T` (a Kubernetes object written as JSON in a test).
pub fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// A ServiceAccount `name` in `ns`, with a Role of `rules` (also `name`) bound to it.
pub async fn bound_service_account(
    client: &Client,
    ns: &str,
    name: &str,
    rules: serde_json::Value,
) -> TestResult {
    let pp = PostParams::default();
    let sa: ServiceAccount = from_json(serde_json::json!({"metadata": {"name": name}}))?;
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create(&pp, &sa)
        .await
        .map_err(|e| e.to_string())?;
    let role: k8s_openapi::api::rbac::v1::Role =
        from_json(serde_json::json!({"metadata": {"name": name}, "rules": rules}))?;
    Api::namespaced(client.clone(), ns)
        .create(&pp, &role)
        .await
        .map_err(|e| e.to_string())?;
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = from_json(serde_json::json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }))?;
    Api::namespaced(client.clone(), ns)
        .create(&pp, &binding)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}
