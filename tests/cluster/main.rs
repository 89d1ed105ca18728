//! The cluster tier: tests against a real Kubernetes 1.34 control plane (see `tests/sim/cluster`).
//! Started once per run on first use, stopped at the end; each test works in namespaces of its
//! own. Only the kubelets are simulated (kwok); everything a test asserts about the API, the
//! scheduler, the controllers, validation and RBAC comes from the real components.

mod addons;
mod apply;
mod argocd;
mod blue_green;
mod chaos;
mod deployer;
mod faults;
mod monitoring;
mod nudge;
mod operate;
mod own;
#[path = "../common/platform.rs"]
mod platform;
mod promote;
mod readme;
mod receivers;
mod refresh;
mod support;
mod traffic;
mod up;
mod up_for_real;
mod workloads;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use libtest_mimic::Arguments;
use platformctl::kube::apply::Error as ApplyError;
use platformctl::kube::portforward::is_ready;
use platformctl::kube::{Action, Applier, Options as ApplyOptions};
use platformctl::ready::Readiness;
use serde_json::{Value, json};

use support::{NODES, Namespaces, TestResult, from_json, wait_for};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let trials = vec![
        crate::support::trial("reference_tree_customer_platform_applies_strictly", || {
            support::run(|_, client| {
                apply_reference_tree(client, "cp", support::repo_root().to_path_buf())
            })
        }),
        crate::support::trial("reference_tree_microservices_applies_strictly", || {
            support::run(|_, client| {
                apply_reference_tree(
                    client,
                    "ms",
                    support::repo_root().join("examples/microservices"),
                )
            })
        }),
        crate::support::trial(
            "deployment_pods_schedule_onto_the_nodes_and_become_ready",
            || support::run(|_, client| deployment_schedules_and_becomes_ready(client)),
        ),
        crate::support::trial("deleted_pod_is_replaced_by_its_replicaset", || {
            support::run(|_, client| deleted_pod_is_replaced(client))
        }),
        crate::support::trial(
            "service_account_bound_in_practice_cannot_write_in_prod",
            || support::run(rbac_practice_cannot_write_prod),
        ),
        crate::support::trial(
            "rollout_phases_come_from_the_real_argo_rollouts_controller",
            || support::run(|_, client| rollout_phases(client)),
        ),
        crate::support::trial("harness_up_again_reuses_the_running_cluster", || {
            Ok(harness_up_again()?)
        }),
        crate::support::trial("harness_refuses_a_busy_port_and_starts_nothing", || {
            Ok(harness_busy_port()?)
        }),
        crate::support::trial("harness_reports_a_failed_component_and_cleans_up", || {
            Ok(harness_failed_component_is_reported_and_cleaned_up()?)
        }),
    ];
    let mut trials = trials;
    // A long shared-cluster trial (30 interrupted runs): early, beside the first own cluster.
    trials.splice(0..0, chaos::trials());
    // First of the tests on clusters of their own: it waits minutes for its error budget to
    // burn, and lets the next ones run meanwhile.
    trials.extend(up_for_real::trials());
    trials.extend(promote::trials());
    trials.extend(apply::trials());
    trials.extend(argocd::trials());
    trials.extend(addons::trials());
    trials.extend(up::trials());
    trials.extend(faults::trials());
    trials.extend(workloads::trials());
    trials.extend(readme::trials());
    trials.extend(refresh::trials());
    trials.extend(nudge::trials());
    let conclusion = libtest_mimic::run(&args, trials);
    support::stop();
    conclusion.exit_code()
}

// --- reference trees -------------------------------------------------------------------------

/// Renders the platform in `project` with the real binary, then applies every object with
/// server-side apply and strict field validation against the upstream CRDs, twice: the second
/// apply must change nothing. Namespaces are mapped to the test's own.
/// Renders the platform in `project` with the real binary; every object with its file.
fn render_tree(project: &Path) -> Result<Vec<(String, Value)>, String> {
    let out = tempfile::tempdir().map_err(|e| e.to_string())?;
    let render = std::process::Command::new(env!("CARGO_BIN_EXE_platformctl"))
        .args(["-q", "render", "--out"])
        .arg(out.path())
        .current_dir(project)
        .output()
        .map_err(|e| e.to_string())?;
    if !render.status.success() {
        return Err(format!(
            "render failed: {}",
            String::from_utf8_lossy(&render.stderr)
        ));
    }
    read_tree(out.path())
}

async fn apply_reference_tree(client: Client, test: &str, project: PathBuf) -> TestResult {
    let objects = render_tree(&project)?;
    if objects.len() < 15 {
        return Err(format!("only {} objects rendered", objects.len()));
    }
    let wanted: BTreeSet<&str> = objects
        .iter()
        .filter_map(|(_, o)| o["metadata"]["namespace"].as_str())
        .collect();
    let bases: Vec<&str> = wanted.into_iter().collect();
    let namespaces = Namespaces::create(&client, test, &bases).await?;
    let result = apply_all(&client, &namespaces, &objects).await;
    namespaces.delete().await;
    result
}

async fn apply_all(
    client: &Client,
    namespaces: &Namespaces,
    objects: &[(String, Value)],
) -> TestResult {
    let manifests = apply::manifests(objects, namespaces, |_| {})?;
    let engine = Applier::new(client.clone(), ApplyOptions::default());
    let first = apply::run(&engine, &manifests).await?;
    apply::expect_actions(&first, Action::Created)?;
    let mut before = BTreeMap::new();
    for m in &manifests {
        before.insert(m.key(), fingerprint(&apply::live(client, m).await?));
    }
    // A second apply of the same objects is a no-op: the engine says Unchanged, and neither the
    // generation nor platformctl's Apply entry in managedFields (its fields and time) moves.
    // (resourceVersion may: the HPA controller writes status on its own schedule.)
    let second = apply::run(&engine, &manifests).await?;
    apply::expect_actions(&second, Action::Unchanged)?;
    let mut failures = Vec::new();
    for m in &manifests {
        if fingerprint(&apply::live(client, m).await?) != before[&m.key()] {
            failures.push(format!("{}: {} changed on re-apply", m.source, m.key()));
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    // The controls: the upstream Rollout schema is enforced, at the top and deep inside the pod
    // template, so the applies above would have been refused had render emitted a stray field.
    // The engine reports them as invalid objects, not as transient server errors.
    let rollout = manifests
        .iter()
        .find(|m| m.kind() == "Rollout")
        .ok_or("the tree has no Rollout")?;
    let mut top = rollout.clone();
    top.object["spec"]["replicaz"] = json!(3);
    let mut deep = rollout.clone();
    deep.object["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] =
        json!({"periodSeconds": 5});
    for (bad, path) in [
        (top, ".spec.replicaz"),
        (deep, ".spec.template.spec.containers[name="),
    ] {
        match engine.apply(std::slice::from_ref(&bad), &|_| {}).await {
            Err(ApplyError::Invalid { message, .. })
                if message.contains(path) && message.contains("field not declared in schema") => {}
            other => failures.push(format!(
                "{}: a Rollout with a stray field at {path} was not refused as invalid: {other:?}",
                bad.source
            )),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// What a no-op apply must leave alone: the generation and platformctl's Apply entry.
fn fingerprint(live: &DynamicObject) -> String {
    let entry = live.metadata.managed_fields.iter().flatten().find(|m| {
        m.manager.as_deref() == Some("platformctl") && m.operation.as_deref() == Some("Apply")
    });
    let entry = entry.map(|m| {
        (
            m.time.as_ref().map(|t| format!("{t:?}")),
            m.fields_v1.as_ref().map(|f| f.0.to_string()),
        )
    });
    format!("{:?} {:?}", live.metadata.generation, entry)
}

/// Every YAML document of the tree under `dir` (read as `render` and `lint` read it), with the
/// file it came from, in path order.
fn read_tree(dir: &Path) -> Result<Vec<(String, Value)>, String> {
    let tree = platformctl::render::read(dir).map_err(|e| e.to_string())?;
    let mut objects = Vec::new();
    for (file, text) in tree {
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value =
                serde::Deserialize::deserialize(doc).map_err(|e| format!("{file}: {e}"))?;
            if !value.is_null() {
                objects.push((file.clone(), value));
            }
        }
    }
    Ok(objects)
}

// --- scheduling and the kwok kubelets --------------------------------------------------------

fn deployment(name: &str, replicas: i32, spread: bool) -> Result<Deployment, String> {
    let mut spec = json!({
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
    });
    if spread {
        spec["topologySpreadConstraints"] = json!([{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": name}},
        }]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }))
    .map_err(|e| e.to_string())
}

async fn ready_pods(pods: &Api<Pod>, app: &str) -> Result<Vec<Pod>, String> {
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map_err(|e| e.to_string())?;
    Ok(list.items.into_iter().filter(is_ready).collect())
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Three replicas that must spread one per node: the scheduler places them on the three kwok
/// nodes, kwok reports them Ready, and the deployment controller counts them.
async fn deployment_schedules_and_becomes_ready(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "sched", &["apps"]).await?;
    let result = async {
        let ns = namespaces.get("apps");
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        deployments
            .create(&PostParams::default(), &deployment("spread", 3, true)?)
            .await
            .map_err(|e| e.to_string())?;
        wait_for(
            "3 Ready pods and readyReplicas=3",
            Duration::from_secs(90),
            || async {
                let ready = ready_pods(&pods, "spread").await?;
                let d = deployments.get("spread").await.map_err(|e| e.to_string())?;
                let counted = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
                Ok(ready.len() == 3 && counted == 3)
            },
        )
        .await?;
        let placed: BTreeSet<String> = ready_pods(&pods, "spread")
            .await?
            .iter()
            .map(|p| node_of(p).to_string())
            .collect();
        let expected: BTreeSet<String> = NODES.iter().map(|n| n.to_string()).collect();
        if placed != expected {
            return Err(format!(
                "pods were placed on {placed:?}, expected one on each of {expected:?}"
            ));
        }
        Ok(())
    }
    .await;
    namespaces.delete().await;
    result
}

/// Deleting a Ready pod: the ReplicaSet makes a replacement, which is scheduled and turns Ready.
async fn deleted_pod_is_replaced(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "heal", &["apps"]).await?;
    let result = async {
        let ns = namespaces.get("apps");
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        deployments
            .create(&PostParams::default(), &deployment("heal", 2, false)?)
            .await
            .map_err(|e| e.to_string())?;
        wait_for("2 Ready pods", Duration::from_secs(90), || async {
            Ok(ready_pods(&pods, "heal").await?.len() == 2)
        })
        .await?;
        let before = ready_pods(&pods, "heal").await?;
        let victim = before[0].metadata.name.clone().ok_or("pod without name")?;
        let owner = |p: &Pod| {
            p.metadata
                .owner_references
                .as_ref()
                .and_then(|o| o.first())
                .map(|o| o.uid.clone())
        };
        let replica_set = owner(&before[0]).ok_or("pod has no owner")?;
        pods.delete(&victim, &DeleteParams::default())
            .await
            .map_err(|e| e.to_string())?;
        wait_for(
            &format!("{victim} gone and a Ready replacement"),
            Duration::from_secs(90),
            || async {
                let gone = pods
                    .get_opt(&victim)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_none();
                let ready = ready_pods(&pods, "heal").await?;
                Ok(gone && ready.len() == 2)
            },
        )
        .await?;
        let after = ready_pods(&pods, "heal").await?;
        let survivors: BTreeSet<_> = before
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        let replacement = after
            .iter()
            .find(|p| !survivors.contains(p.metadata.name.as_deref().unwrap_or("")))
            .ok_or("no new pod among the Ready ones")?;
        if owner(replacement).as_deref() != Some(replica_set.as_str()) {
            return Err("the replacement is not owned by the same ReplicaSet".into());
        }
        if !NODES.contains(&node_of(replacement)) {
            return Err(format!(
                "the replacement runs on {:?}, not a kwok node",
                node_of(replacement)
            ));
        }
        Ok(())
    }
    .await;
    namespaces.delete().await;
    result
}

// --- RBAC ------------------------------------------------------------------------------------

/// A ServiceAccount in `practice`, bound to a Role there, authenticates with a real bound token
/// (TokenRequest, signed by the API server's key) and may write in `practice` but not in `prod`.
async fn rbac_practice_cannot_write_prod(
    cluster: &'static support::Cluster,
    client: Client,
) -> TestResult {
    let namespaces = Namespaces::create(&client, "rbac", &["practice", "prod"]).await?;
    let result = async {
        let practice = namespaces.get("practice");
        let prod = namespaces.get("prod");
        let pp = PostParams::default();
        let sa: ServiceAccount = from_json(json!({"metadata": {"name": "deployer"}}))?;
        Api::<ServiceAccount>::namespaced(client.clone(), practice).create(&pp, &sa).await.map_err(|e| e.to_string())?;
        let role: Role = from_json(json!({
            "metadata": {"name": "deployer"},
            "rules": [{
                "apiGroups": ["", "apps"],
                "resources": ["configmaps", "deployments"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
            }],
        }))?;
        Api::<Role>::namespaced(client.clone(), practice).create(&pp, &role).await.map_err(|e| e.to_string())?;
        let binding: RoleBinding = from_json(json!({
            "metadata": {"name": "deployer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": practice}],
        }))?;
        Api::<RoleBinding>::namespaced(client.clone(), practice).create(&pp, &binding).await.map_err(|e| e.to_string())?;

        let as_sa = cluster.client_as(&client, practice, "deployer").await?;

        let cm = |name: &str| from_json::<ConfigMap>(json!({"metadata": {"name": name}, "data": {"k": "v"}}));
        // Allowed in practice (retried briefly: the authorizer learns of new bindings from a watch).
        let in_practice: Api<ConfigMap> = Api::namespaced(as_sa.clone(), practice);
        wait_for("the ServiceAccount may write in practice", Duration::from_secs(15), || async {
            match in_practice.create(&pp, &cm("allowed")?).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 403 => Ok(false),
                Err(e) => Err(e.to_string()),
            }
        })
        .await?;
        // Forbidden in prod: writes of both kinds the Role names, and reads.
        let mut outcomes = BTreeMap::new();
        let in_prod: Api<ConfigMap> = Api::namespaced(as_sa.clone(), prod);
        outcomes.insert("create configmap", in_prod.create(&pp, &cm("denied")?).await.err());
        let deployments: Api<Deployment> = Api::namespaced(as_sa.clone(), prod);
        outcomes.insert("create deployment", deployments.create(&pp, &deployment("denied", 1, false)?).await.err());
        outcomes.insert("list configmaps", in_prod.list(&ListParams::default()).await.err());
        for (what, outcome) in outcomes {
            match outcome {
                Some(kube::Error::Api(e)) if e.code == 403 && e.reason == "Forbidden" => {}
                other => return Err(format!("{what} in prod as the practice ServiceAccount: expected 403 Forbidden, got {other:?}")),
            }
        }
        Ok(())
    }
    .await;
    namespaces.delete().await;
    result
}

// --- Argo Rollouts ---------------------------------------------------------------------------

/// The rendered dev Rollout of customer-api, run by the real Argo Rollouts controller (v1.9.0,
/// built from its Go module): its first revision goes straight to Healthy; a new image goes to
/// the first canary step and pauses there. `platformctl::ready` reads both phases as `up` will.
async fn rollout_phases(client: Client) -> TestResult {
    let objects: Vec<(String, Value)> = render_tree(support::repo_root())?
        .into_iter()
        .filter(|(file, _)| file.starts_with("envs/dev/"))
        .collect();
    let namespaces = Namespaces::create(&client, "ro", &["practice"]).await?;
    let result = async {
        let params = PatchParams::apply("platformctl").validation_strict();
        let manifests = apply::manifests(&objects, &namespaces, |object| {
            if object["kind"] == "Rollout" {
                object["metadata"]["labels"]["argo-rollouts.argoproj.io/controller-instance-id"] =
                    json!(support::ROLLOUTS_INSTANCE_ID);
            }
        })?;
        // The service's admin Secret, as `up`'s secrets step makes it (its pods run for real and
        // read it; without it they wait in CreateContainerConfigError).
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "customer-api-admin"}, "stringData": {"ADMIN_TOKEN": "t"}}))
        .map_err(|e| e.to_string())?;
        Api::<Secret>::namespaced(client.clone(), namespaces.get("practice"))
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| format!("secret: {e}"))?;
        let engine = Applier::new(client.clone(), ApplyOptions::default());
        apply::run(&engine, &manifests).await?;
        let rollout = manifests
            .iter()
            .find(|m| m.kind() == "Rollout")
            .ok_or("the dev tree has no Rollout")?;
        let api = apply::api(&client, rollout).await?;
        let (name, object) = (rollout.name().to_string(), rollout.object.clone());
        let rollout = Some((api, name, object));
        let (api, name, mut object) = rollout.ok_or("the dev tree has no Rollout")?;
        let readiness = || async {
            let live = api.get(&name).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(platformctl::ready::of(
                &serde_json::to_value(&live).map_err(|e| e.to_string())?,
            ))
        };
        wait_for(
            "the first revision to be Healthy",
            Duration::from_secs(90),
            || async { Ok(readiness().await? == Some(Readiness::Ready)) },
        )
        .await?;
        // A new version: the controller starts the canary, sets 20% and pauses (30 s).
        let image = object["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .ok_or("no image")?
            .replace(":0.1.0", ":0.1.1");
        object["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        api.patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| e.to_string())?;
        let seen = std::cell::RefCell::new(Vec::new());
        wait_for(
            "the new revision to pause at its first canary step",
            Duration::from_secs(25),
            || async {
                let now = readiness().await?;
                let mut seen = seen.borrow_mut();
                if seen.last() != Some(&now) {
                    seen.push(now.clone());
                }
                Ok(now == Some(Readiness::Paused("CanaryPauseStep".into())))
            },
        )
        .await
        .map_err(|e| format!("{e}; readiness went {:?}", seen.borrow()))?;
        Ok(())
    }
    .await;
    namespaces.delete().await;
    result
}

// --- the harness itself ----------------------------------------------------------------------

/// `up` on a running cluster starts nothing and hands back the same kubeconfig; `status` reports
/// every component running (the control plane, kwok, sim-kubelet, Argo Rollouts, Argo CD's
/// redis, repo server and application controller, prometheus-operator) and the three nodes
/// Ready.
fn harness_up_again() -> TestResult {
    let cluster = support::cluster()?;
    let out = support::harness_command(&["up"])
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stderr.contains("already running") {
        return Err(format!("second up: {}\n{stderr}", out.status));
    }
    if stdout.lines().last() != Some(&format!("KUBECONFIG={}", cluster.kubeconfig.display())) {
        return Err(format!("second up printed {stdout:?}"));
    }
    let status = support::harness_command(&["status"])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&status.stdout);
    let running = text.lines().filter(|l| l.contains(" running ")).count();
    let ready_nodes = NODES
        .iter()
        .filter(|n| text.contains(&format!("{:<30} Ready", format!("node {n}"))))
        .count();
    // etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, sim-kubelet,
    // argo-rollouts, Argo CD's redis, repo server, application controller and API server,
    // prometheus-operator and chaos-controller-manager: the shared cluster's `--with
    // workloads,rollouts,argocd,monitoring,chaos`.
    if !status.status.success() || running != 13 || ready_nodes != 3 {
        return Err(format!(
            "status ({}), {running} running, {ready_nodes} nodes Ready:\n{text}",
            status.status
        ));
    }
    Ok(())
}

/// How many consecutive loopback ports a harness cluster uses (tests/sim/cluster's PORT_COUNT).
const PORTS: u16 = 21;

/// A port base whose `PORTS` ports are free now.
pub(crate) fn free_port_base() -> Result<u16, String> {
    // Below the kernel's ephemeral range: a base from it (a port the kernel just handed out)
    // can be taken again by any outgoing connection between this probe and the harness binding
    // it (seen: kube-controller-manager's port taken, "address already in use"). Clear of the
    // default cluster (26400) and the test run's own (26500) too.
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (first, last) = (10_000u16, low.saturating_sub(PORTS));
    let slots = (last.saturating_sub(first) / PORTS).max(1);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    for k in 0..slots {
        let base = first + ((seed as u16 % slots + k) % slots) * PORTS;
        let reserved = |b: u16| {
            (26_400..26_500 + PORTS).contains(&b)
                || (26_400..26_500 + PORTS).contains(&(b + PORTS - 1))
        };
        if reserved(base) {
            continue;
        }
        if (0..PORTS).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return Ok(base);
        }
    }
    Err(format!(
        "no {PORTS} free consecutive ports in {first}..{last}"
    ))
}

/// Runs `tests/sim/cluster up` in a fresh state directory of its own.
fn isolated_up(
    dir: &Path,
    base: u16,
    extra_env: &[(&str, &str)],
) -> Result<std::process::Output, String> {
    support::harness_command_in(dir, base, &["up"])
        .envs(extra_env.iter().copied())
        .output()
        .map_err(|e| e.to_string())
}

/// Processes whose command line names `dir` (every component's does: data dir, kubeconfig).
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec!["cannot read /proc".into()];
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect()
}

/// A port the cluster needs is taken: `up` names the port, the component and the process holding
/// it, exits 1 and starts nothing.
fn harness_busy_port() -> TestResult {
    support::cluster()?; // the binaries are built (a cold build happens once, in the fixture)
    let base = free_port_base()?;
    // The API server's port is base + 2; this test process holds it.
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", base + 2)).map_err(|e| e.to_string())?;
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = state.path().join("sim");
    let out = isolated_up(&dir, base, &[])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "port {} on 127.0.0.1, needed by kube-apiserver, is already in use (by cluster-",
        base + 2
    );
    let holder = format!("pid {})", std::process::id());
    if out.status.code() != Some(1)
        || !stderr.contains(&expected)
        || !stderr.contains(&holder)
        || !stderr.contains("PLATFORMCTL_SIM_PORT_BASE")
    {
        return Err(format!(
            "up with port {} taken: {}\n{stderr}",
            base + 2,
            out.status
        ));
    }
    if dir.exists() || !processes_naming(&dir).is_empty() {
        return Err("up with a busy port started something".into());
    }
    drop(listener);
    Ok(())
}

/// A component that dies during start-up: `up` names it, shows its log, exits 1, and stops what
/// it had already started (etcd) and removes its state.
fn harness_failed_component_is_reported_and_cleaned_up() -> TestResult {
    support::cluster()?;
    let base = free_port_base()?;
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = state.path().join("sim");
    let out = isolated_up(
        &dir,
        base,
        &[("PLATFORMCTL_SIM_APISERVER_ARGS", "--no-such-flag")],
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1)
        || !stderr.contains("cluster: error: kube-apiserver exited during start-up")
        || !stderr.contains("logs/kube-apiserver.log ---")
        || !stderr.contains("unknown flag: --no-such-flag")
    {
        return Err(format!(
            "up with a failing kube-apiserver: {}\n{stderr}",
            out.status
        ));
    }
    let left = processes_naming(&dir);
    if dir.exists() || !left.is_empty() {
        return Err(format!(
            "left behind: state dir exists={}, processes {left:?}",
            dir.exists()
        ));
    }
    Ok(())
}
