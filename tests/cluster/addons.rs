//! The addons (`platformctl::addons`) through the real `helm` (PLATFORMCTL_HELM, else PATH; the
//! test runner puts the harness's build there) against the real API server. The charts are the
//! stand-ins in tests/fixtures/charts (the upstream names at the versions platform.yaml pins),
//! packaged with `helm package`, indexed with `helm repo index` and served over HTTP on loopback
//! by a small file server in this test: installing from a chart repository needs the network
//! otherwise. Under kwok the charts' pods are simulated.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use libtest_mimic::Trial;
use platformctl::addons::{Change, Facts, Helm, Kind, Release, Removal, Status, plan};
use platformctl::config::{ContainerRuntime, Driver};
use serde_json::{Value, json};

use crate::platform::ChartRepo;
use crate::support::{self, Cluster, Namespaces, TestResult, wait_for};

pub fn trials() -> Vec<Trial> {
    vec![
        crate::support::trial(
            "addons_install_then_stay_unchanged_then_only_the_changed_one_upgrades",
            || support::run(install_unchanged_upgrade),
        ),
        crate::support::trial(
            "addons_release_left_pending_by_a_killed_helm_is_recovered",
            || support::run(pending_releases_are_recovered),
        ),
    ]
}

/// The test's namespace base names, by addon.
const BASES: [(Kind, &str); 6] = [
    (Kind::Argocd, "argocd"),
    (Kind::ArgoRollouts, "rollouts"),
    (Kind::KubePrometheusStack, "monitoring"),
    (Kind::ChaosMesh, "chaos"),
    (Kind::IngressNginx, "ingress"),
    (Kind::MetricsServer, "metrics"),
];

/// A helm with its own cache, config and data directories, and the chart repository it installs
/// from.
struct Fixture {
    helm: Helm,
    repo: ChartRepo,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Fixture {
    fn new(cluster: &Cluster) -> Result<Fixture, String> {
        let home = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut helm = locate_helm()?.kubeconfig(&cluster.kubeconfig);
        for (var, dir) in [
            ("HELM_CACHE_HOME", "cache"),
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_DATA_HOME", "data"),
        ] {
            helm = helm.env(var, home.path().join(dir));
        }
        let repo = ChartRepo::start(&helm, home.path())?;
        Ok(Fixture {
            helm,
            repo,
            kubeconfig: cluster.kubeconfig.clone(),
            home,
        })
    }

    /// The helm CLI directly, for what platformctl itself never asks (history, manifests).
    fn cli(&self, args: &[&str]) -> Result<String, String> {
        let home = self.home.path();
        let out = Command::new(self.helm.binary())
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .output()
            .map_err(|e| format!("helm {args:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "helm {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn revisions(&self, r: &Release) -> Result<usize, String> {
        let out = self.cli(&["history", &r.name, "-n", &r.namespace, "-o", "json"])?;
        let history: Vec<Value> = serde_json::from_str(&out).map_err(|e| e.to_string())?;
        Ok(history.len())
    }
}

/// $PLATFORMCTL_HELM when set; else the helm the harness built (its pinned version, which the
/// cluster fixture has built by now); else helm on PATH.
pub(crate) fn locate_helm() -> Result<Helm, String> {
    if std::env::var_os(platformctl::addons::HELM_ENV).is_none() {
        let env = support::harness_command(&["env"])
            .output()
            .map_err(|e| format!("tests/sim/cluster env: {e}"))?;
        let env = String::from_utf8_lossy(&env.stdout);
        let built = env
            .lines()
            .filter_map(|l| l.strip_prefix("export PATH="))
            .flat_map(|l| l.split(':'))
            .map(|dir| Path::new(dir.trim_matches(['\'', '"'])).join("helm"))
            .find(|helm| helm.is_file());
        if let Some(helm) = built {
            return Ok(Helm::new(helm));
        }
    }
    Helm::locate().map_err(|e| {
        format!("{e} (run `tests/sim/cluster build`, set PLATFORMCTL_HELM or put helm v3 on PATH)")
    })
}

/// The releases platform.yaml plans for the test's namespaces, pointed at the local repository. `driver: existing` with the nodes' facts: the harness labels its first node as
/// minikube's primary, and kwok names no container runtime, so Chaos Mesh falls back to the
/// configured one (cri-o here, to see it).
async fn releases(
    client: &Client,
    namespaces: &Namespaces,
    repo_url: &str,
) -> Result<Vec<Release>, String> {
    let mut platform = platformctl::config::load(&support::repo_root().join("platform.yaml"))
        .map_err(|e| e.to_string())?;
    platform.cluster.driver = Driver::Existing;
    platform.cluster.container_runtime = ContainerRuntime::CriO;
    let a = &mut platform.addons;
    for (base, addon) in [
        ("argocd", &mut a.argocd),
        ("rollouts", &mut a.argo_rollouts),
        ("monitoring", &mut a.kube_prometheus_stack),
        ("chaos", &mut a.chaos_mesh),
        ("ingress", &mut a.ingress_nginx),
        ("metrics", &mut a.metrics_server),
    ] {
        let addon = addon
            .as_mut()
            .ok_or_else(|| format!("platform.yaml has no addon for {base}"))?;
        // An addon without a namespace of the test's own is not installed by it.
        match namespaces.names.get(base) {
            Some(namespace) => addon.namespace = Some(namespace.clone()),
            None => addon.enabled = false,
        }
        addon.repository = Some(repo_url.to_string());
    }
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let facts = Facts::from_nodes(&nodes.items);
    if !facts.minikube {
        return Err("the harness's nodes should carry minikube's primary label".into());
    }
    Ok(plan(&platform, &facts))
}

/// The Grafana admin Secret, as `up` creates it before the install: a random password.
async fn grafana_secret(client: &Client, releases: &[Release]) -> TestResult {
    let kps = find(releases, Kind::KubePrometheusStack)?;
    let c = kps
        .credentials
        .as_ref()
        .ok_or("kube-prometheus-stack has no credentials")?;
    let mut random = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .map_err(|e| e.to_string())?;
    let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": c.name},
        "stringData": {c.user_key.clone(): c.user, c.password_key.clone(): password},
    }))
    .map_err(|e| e.to_string())?;
    Api::<Secret>::namespaced(client.clone(), &c.namespace)
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| format!("create Secret {}: {e}", c.name))?;
    Ok(())
}

fn find(releases: &[Release], kind: Kind) -> Result<&Release, String> {
    releases
        .iter()
        .find(|r| r.kind == kind)
        .ok_or_else(|| format!("no release planned for {kind:?}"))
}

async fn converge_all(helm: &Helm, releases: &[Release]) -> Result<Vec<(String, Change)>, String> {
    let results = helm.converge_all(releases, 3, |_, _| {}).await;
    releases
        .iter()
        .zip(results)
        .map(|(r, result)| {
            result
                .map(|c| (r.name.clone(), c))
                .map_err(|e| format!("{}: {e}", r.name))
        })
        .collect()
}

fn expect_all(changes: &[(String, Change)], want: Change) -> TestResult {
    let wrong: Vec<_> = changes.iter().filter(|(_, c)| *c != want).collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("expected every release {want:?}, got {wrong:?}"))
    }
}

/// One object by kind and name, as JSON; `None` when absent.
async fn object(
    client: &Client,
    namespace: &str,
    (group, version, kind, plural): (&str, &str, &str, &str),
    name: &str,
) -> Result<Option<Value>, String> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let found = api
        .get_opt(name)
        .await
        .map_err(|e| format!("get {kind} {namespace}/{name}: {e}"))?;
    found
        .map(|o| serde_json::to_value(o).map_err(|e| e.to_string()))
        .transpose()
}

const DEPLOYMENT: (&str, &str, &str, &str) = ("apps", "v1", "Deployment", "deployments");
const DAEMONSET: (&str, &str, &str, &str) = ("apps", "v1", "DaemonSet", "daemonsets");
const SERVICE: (&str, &str, &str, &str) = ("", "v1", "Service", "services");
const SECRET: (&str, &str, &str, &str) = ("", "v1", "Secret", "secrets");
const PROMETHEUS: (&str, &str, &str, &str) =
    ("monitoring.coreos.com", "v1", "Prometheus", "prometheuses");
const ALERTMANAGER: (&str, &str, &str, &str) = (
    "monitoring.coreos.com",
    "v1",
    "Alertmanager",
    "alertmanagers",
);
const SERVICE_MONITOR: (&str, &str, &str, &str) = (
    "monitoring.coreos.com",
    "v1",
    "ServiceMonitor",
    "servicemonitors",
);

async fn must(
    client: &Client,
    namespace: &str,
    kind: (&str, &str, &str, &str),
    name: &str,
) -> Result<Value, String> {
    object(client, namespace, kind, name)
        .await?
        .ok_or_else(|| format!("{} {namespace}/{name} was not created", kind.2))
}

fn check(ok: bool, what: impl FnOnce() -> String) -> TestResult {
    if ok { Ok(()) } else { Err(what()) }
}

/// platformctl's values reached the charts: what each stand-in rendered from them.
async fn values_took_effect(client: &Client, ns: &Namespaces) -> TestResult {
    let server = must(client, ns.get("argocd"), DEPLOYMENT, "argocd-server").await?;
    let args = &server["spec"]["template"]["spec"]["containers"][0]["args"];
    check(
        args.as_array()
            .is_some_and(|a| a.contains(&json!("--insecure"))),
        || format!("argocd-server runs without --insecure: {args}"),
    )?;
    check(
        object(client, ns.get("argocd"), DEPLOYMENT, "argocd-dex-server")
            .await?
            .is_none(),
        || "Dex runs although platformctl disables it".into(),
    )?;
    let rollouts = must(client, ns.get("rollouts"), DEPLOYMENT, "argo-rollouts").await?;
    check(rollouts["spec"]["replicas"] == json!(1), || {
        format!("argo-rollouts replicas: {}", rollouts["spec"]["replicas"])
    })?;

    let monitoring = ns.get("monitoring");
    let prometheus = must(
        client,
        monitoring,
        PROMETHEUS,
        "kube-prometheus-stack-prometheus",
    )
    .await?;
    let spec = &prometheus["spec"];
    for selector in [
        "serviceMonitorSelector",
        "podMonitorSelector",
        "ruleSelector",
        "probeSelector",
        "scrapeConfigSelector",
    ] {
        check(spec[selector] == json!({}), || {
            format!("Prometheus {selector} is restricted: {}", spec[selector])
        })?;
    }
    check(spec["retention"] == json!("30d"), || {
        format!("Prometheus retention: {}", spec["retention"])
    })?;
    // What prometheus-operator reconciles, named as the real chart names it.
    check(
        spec["image"] == json!("quay.io/prometheus/prometheus:v3.9.1")
            && spec["serviceAccountName"] == json!("kube-prometheus-stack-prometheus"),
        || format!("Prometheus image and service account: {spec}"),
    )?;
    let alerting = &spec["alerting"]["alertmanagers"][0];
    check(
        alerting["name"] == json!("kube-prometheus-stack-alertmanager")
            && alerting["namespace"] == json!(monitoring)
            && alerting["port"] == json!("http-web"),
        || format!("Prometheus alerts to {alerting}"),
    )?;
    for service in [
        "kube-prometheus-stack-prometheus",
        "kube-prometheus-stack-alertmanager",
    ] {
        must(client, monitoring, SERVICE, service).await?;
    }
    let alertmanager = must(
        client,
        monitoring,
        ALERTMANAGER,
        "kube-prometheus-stack-alertmanager",
    )
    .await?;
    check(
        alertmanager["spec"]["image"] == json!("quay.io/prometheus/alertmanager:v0.30.1"),
        || format!("Alertmanager image: {}", alertmanager["spec"]["image"]),
    )?;
    let config = must(
        client,
        monitoring,
        SECRET,
        "alertmanager-kube-prometheus-stack-alertmanager",
    )
    .await?;
    check(config["data"]["alertmanager.yaml"].is_string(), || {
        format!("Alertmanager's configuration Secret: {}", config["data"])
    })?;
    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get_opt("kube-prometheus-stack-prometheus")
        .await
        .map_err(|e| format!("get ClusterRoleBinding kube-prometheus-stack-prometheus: {e}"))?
        .ok_or("ClusterRoleBinding kube-prometheus-stack-prometheus was not created")?;
    let subject = binding.subjects.unwrap_or_default();
    check(
        subject.iter().any(|s| {
            s.name == "kube-prometheus-stack-prometheus"
                && s.namespace.as_deref() == Some(monitoring)
        }),
        || format!("ClusterRoleBinding kube-prometheus-stack-prometheus binds {subject:?}"),
    )?;
    for component in [
        "kube-etcd",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ] {
        let name = format!("kube-prometheus-stack-{component}");
        check(
            object(client, monitoring, SERVICE_MONITOR, &name)
                .await?
                .is_none(),
            || format!("ServiceMonitor {name} scrapes what minikube does not expose"),
        )?;
    }
    // Grafana's login comes from the generated Secret; the chart's own (with a password of its
    // making) is never rendered.
    let grafana = must(
        client,
        monitoring,
        DEPLOYMENT,
        "kube-prometheus-stack-grafana",
    )
    .await?;
    let env = &grafana["spec"]["template"]["spec"]["containers"][0]["env"];
    let from = |var: &str| -> Value {
        env.as_array()
            .and_then(|e| e.iter().find(|v| v["name"] == json!(var)))
            .map(|v| v["valueFrom"]["secretKeyRef"].clone())
            .unwrap_or(Value::Null)
    };
    check(
        from("GF_SECURITY_ADMIN_PASSWORD")
            == json!({"name": "grafana-admin", "key": "admin-password"}),
        || format!("Grafana's password is not read from grafana-admin: {env}"),
    )?;
    check(
        object(client, monitoring, SECRET, "kube-prometheus-stack-grafana")
            .await?
            .is_none(),
        || "the chart's own Grafana Secret (default password) was rendered".into(),
    )?;

    let daemon = must(client, ns.get("chaos"), DAEMONSET, "chaos-daemon").await?;
    let pod = &daemon["spec"]["template"]["spec"];
    check(
        pod["containers"][0]["command"].as_array().is_some_and(|c| {
            c.windows(2)
                .any(|w| w == [json!("--runtime"), json!("crio")])
        }),
        || format!("chaos-daemon runtime: {}", pod["containers"][0]["command"]),
    )?;
    check(
        pod["volumes"][0]["hostPath"]["path"] == json!("/var/run/crio/crio.sock"),
        || format!("chaos-daemon socket: {}", pod["volumes"][0]),
    )?;
    let controller = must(
        client,
        ns.get("chaos"),
        DEPLOYMENT,
        "chaos-controller-manager",
    )
    .await?;
    check(controller["spec"]["replicas"] == json!(1), || {
        format!(
            "chaos-controller-manager replicas: {}",
            controller["spec"]["replicas"]
        )
    })?;

    let service = must(
        client,
        ns.get("ingress"),
        SERVICE,
        "ingress-nginx-controller",
    )
    .await?;
    check(service["spec"]["type"] == json!("NodePort"), || {
        format!("ingress-nginx Service type: {}", service["spec"]["type"])
    })?;
    let metrics = must(client, ns.get("metrics"), DEPLOYMENT, "metrics-server").await?;
    let args = &metrics["spec"]["template"]["spec"]["containers"][0]["args"];
    check(
        args.as_array()
            .is_some_and(|a| a.contains(&json!("--kubelet-insecure-tls"))),
        || format!("metrics-server args: {args}"),
    )
}

/// Every addon installs; a second converge changes nothing (no new helm revision); a changed
/// value upgrades that one release only; uninstalling twice is fine.
async fn install_unchanged_upgrade(cluster: &'static Cluster, client: Client) -> TestResult {
    let bases: Vec<&str> = BASES.iter().map(|(_, b)| *b).collect();
    let namespaces = Namespaces::create(&client, "addons", &bases).await?;
    let result = async {
        let fixture = Fixture::new(cluster)?;
        let mut releases = releases(&client, &namespaces, &fixture.repo.url).await?;
        if releases.len() != 6 {
            return Err(format!("planned {} releases, expected 6", releases.len()));
        }
        grafana_secret(&client, &releases).await?;

        expect_all(
            &converge_all(&fixture.helm, &releases).await?,
            Change::Installed,
        )?;
        for r in &releases {
            let deployed = fixture
                .helm
                .release(&r.name, &r.namespace)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{} is not listed after its install", r.name))?;
            check(
                deployed.status == Status::Deployed && deployed.version == r.version,
                || format!("{} is listed as {deployed:?}", r.name),
            )?;
        }
        values_took_effect(&client, &namespaces).await?;

        expect_all(
            &converge_all(&fixture.helm, &releases).await?,
            Change::Unchanged,
        )?;
        for r in &releases {
            let n = fixture.revisions(r)?;
            check(n == 1, || {
                format!("{} has {n} revisions after an unchanged converge", r.name)
            })?;
        }

        let rollouts = releases
            .iter_mut()
            .find(|r| r.kind == Kind::ArgoRollouts)
            .ok_or("no argo-rollouts release")?;
        rollouts.values["controller"]["replicas"] = json!(2);
        let changes = converge_all(&fixture.helm, &releases).await?;
        for (name, change) in &changes {
            let want = if name == "argo-rollouts" {
                Change::Upgraded
            } else {
                Change::Unchanged
            };
            check(*change == want, || {
                format!("{name}: {change:?}, expected {want:?}")
            })?;
        }
        let rollouts = find(&releases, Kind::ArgoRollouts)?;
        check(fixture.revisions(rollouts)? == 2, || {
            "argo-rollouts should have a second revision".into()
        })?;
        let deployment = must(
            &client,
            namespaces.get("rollouts"),
            DEPLOYMENT,
            "argo-rollouts",
        )
        .await?;
        check(deployment["spec"]["replicas"] == json!(2), || {
            format!("upgraded replicas: {}", deployment["spec"]["replicas"])
        })?;

        for r in &releases {
            for want in [Removal::Uninstalled, Removal::Absent] {
                let got = fixture
                    .helm
                    .uninstall(&r.name, &r.namespace)
                    .await
                    .map_err(|e| e.to_string())?;
                check(got == want, || {
                    format!("uninstall {}: {got:?}, expected {want:?}", r.name)
                })?;
            }
        }
        let left = fixture.helm.list().await.map_err(|e| e.to_string())?;
        check(
            !left
                .iter()
                .any(|d| namespaces.names.values().any(|n| *n == d.namespace)),
            || format!("releases left after uninstall: {left:?}"),
        )
    }
    .await;
    namespaces.delete().await;
    result
}

/// Runs `converge` of `hanging` (whose hook Pod never finishes) until helm has recorded the
/// release as `status`, then drops it: the helm process is killed with SIGKILL mid-operation.
async fn kill_while(helm: &Helm, hanging: &Release, status: Status) -> TestResult {
    let what = format!("{} to be {status:?}", hanging.name);
    let watch = wait_for(&what, Duration::from_secs(60), || async {
        let current = helm
            .release(&hanging.name, &hanging.namespace)
            .await
            .map_err(|e| e.to_string())?;
        Ok(current.is_some_and(|d| d.status == status))
    });
    tokio::select! {
        done = helm.converge(hanging) => Err(format!(
            "helm finished although its hook never completes: {done:?}"
        )),
        seen = watch => seen,
    }
}

/// A release an interrupted helm left `pending-install`, then one left `pending-upgrade`, are
/// both brought to `deployed` by the next converge. A failing helm names the release.
async fn pending_releases_are_recovered(cluster: &'static Cluster, client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "pending", &["metrics"]).await?;
    let result = async {
        let fixture = Fixture::new(cluster)?;
        let releases = releases(&client, &namespaces, &fixture.repo.url).await?;
        let wanted = find(&releases, Kind::MetricsServer)?.clone();
        let with = |key: &str| {
            let mut r = wanted.clone();
            r.values["testHooks"] = json!({ key: true });
            r
        };

        kill_while(&fixture.helm, &with("hangInstall"), Status::PendingInstall).await?;
        recovers(&fixture.helm, &wanted, Change::Installed).await?;

        kill_while(&fixture.helm, &with("hangUpgrade"), Status::PendingUpgrade).await?;
        let mut changed = wanted.clone();
        changed.values["replicas"] = json!(2);
        recovers(&fixture.helm, &changed, Change::Upgraded).await?;
        let deployment = must(
            &client,
            namespaces.get("metrics"),
            DEPLOYMENT,
            "metrics-server",
        )
        .await?;
        check(deployment["spec"]["replicas"] == json!(2), || {
            format!(
                "replicas after recovery: {}",
                deployment["spec"]["replicas"]
            )
        })?;
        let again = fixture
            .helm
            .converge(&changed)
            .await
            .map_err(|e| e.to_string())?;
        check(again == Change::Unchanged, || format!("then: {again:?}"))?;

        let mut missing = changed.clone();
        missing.version = "9.9.9".into();
        let message = match fixture.helm.converge(&missing).await {
            Ok(change) => return Err(format!("a missing chart version converged: {change:?}")),
            Err(e) => e.to_string(),
        };
        check(
            message.contains(&format!(
                "`helm upgrade` of release `metrics-server` in namespace `{}` failed",
                wanted.namespace
            )) && message.contains("version \"9.9.9\" not found"),
            || format!("error: {message}"),
        )?;

        fixture
            .helm
            .uninstall(&wanted.name, &wanted.namespace)
            .await
            .map_err(|e| e.to_string())
            .map(drop)
    }
    .await;
    namespaces.delete().await;
    result
}

/// The converge after a killed helm recovers the release: it reports `want` and leaves the
/// release deployed.
async fn recovers(helm: &Helm, release: &Release, want: Change) -> TestResult {
    let change = helm.converge(release).await.map_err(|e| e.to_string())?;
    check(change == want, || format!("recovery: {change:?}"))?;
    let deployed = helm
        .release(&release.name, &release.namespace)
        .await
        .map_err(|e| e.to_string())?;
    check(
        deployed
            .as_ref()
            .is_some_and(|d| d.status == Status::Deployed),
        || format!("after recovery: {deployed:?}"),
    )
}
