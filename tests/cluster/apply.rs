//! The apply engine (`platformctl::kube::apply`) against the real API server: CRDs Established
//! before their objects, created/configured/unchanged verdicts, field-manager conflicts named,
//! `--dry-run=server` persisting nothing, bounded concurrency over many objects.

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use libtest_mimic::Trial;
use platformctl::kube::apply::Error as ApplyError;
use platformctl::kube::discovery::Discovery;
use platformctl::kube::{Action, Applied, Applier, Manifest, Options, wait};
use serde_json::{Value, json};

use std::time::Duration;

use crate::support::{self, Namespaces, TestResult};

pub fn trials() -> Vec<Trial> {
    vec![
        crate::support::trial(
            "apply_engine_waits_for_a_new_crd_before_its_objects",
            || support::run(|_, client| crd_then_its_objects(client)),
        ),
        crate::support::trial(
            "apply_engine_names_the_other_field_manager_and_forces_only_when_asked",
            || support::run(|_, client| conflicts(client)),
        ),
        crate::support::trial("apply_engine_dry_run_persists_nothing", || {
            support::run(|_, client| dry_run(client))
        }),
        crate::support::trial("apply_engine_reports_created_configured_unchanged", || {
            support::run(|_, client| verdicts(client))
        }),
        crate::support::trial(
            "wait_holds_for_an_existing_deployment_that_is_not_available",
            || support::run(|_, client| wait_for_existing(client)),
        ),
    ]
}

/// The objects of a rendered tree as manifests, their namespaces mapped to the test's own;
/// `edit` may change each object first.
pub fn manifests(
    objects: &[(String, Value)],
    namespaces: &Namespaces,
    edit: impl Fn(&mut Value),
) -> Result<Vec<Manifest>, String> {
    let mut out = Vec::new();
    for (file, object) in objects {
        let mut object = object.clone();
        if let Some(ns) = object["metadata"]["namespace"].as_str() {
            object["metadata"]["namespace"] = json!(namespaces.get(ns));
        }
        edit(&mut object);
        out.push(Manifest::new(file.clone(), object).map_err(|e| e.to_string())?);
    }
    platformctl::kube::manifest::order(out).map_err(|e| e.to_string())
}

pub async fn run(engine: &Applier, manifests: &[Manifest]) -> Result<Vec<Applied>, String> {
    engine
        .apply(manifests, &|_| {})
        .await
        .map_err(|e| format!("apply failed: {e}"))
}

/// Every object got `action`.
pub fn expect_actions(applied: &[Applied], action: Action) -> TestResult {
    let wrong: Vec<String> = applied
        .iter()
        .filter(|a| a.action != action)
        .map(|a| format!("{} was {:?}", a.key, a.action))
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "expected every object {action:?}: {}",
            wrong.join(", ")
        ))
    }
}

/// The API of `m`'s kind, in its namespace.
pub async fn api(client: &Client, m: &Manifest) -> Result<Api<DynamicObject>, String> {
    let (group, version) = m.group_version();
    let resolved = Discovery::default()
        .resolve(client, group, version, m.kind())
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is not served", m.key()))?;
    Ok(match m.namespace() {
        Some(ns) if resolved.namespaced => {
            Api::namespaced_with(client.clone(), ns, &resolved.resource)
        }
        _ => Api::all_with(client.clone(), &resolved.resource),
    })
}

pub async fn live(client: &Client, m: &Manifest) -> Result<DynamicObject, String> {
    api(client, m)
        .await?
        .get(m.name())
        .await
        .map_err(|e| format!("{}: {e}", m.key()))
}

fn manifest(source: &str, object: Value) -> Result<Manifest, String> {
    Manifest::new(source, object).map_err(|e| e.to_string())
}

/// A CRD and an object of it in one apply: the engine applies the CRD, waits until it is
/// Established, re-discovers its group, then applies the object. Without the wait the object's
/// kind would not be served yet.
async fn crd_then_its_objects(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "crd", &["w"]).await?;
    let ns = namespaces.get("w").to_string();
    // A group of this run alone, so the CRD is new every time.
    let group = format!("{}.test.platformctl.dev", ns.replace('-', ""));
    let crd_name = format!("widgets.{group}");
    let result = async {
        let crd = manifest(
            "crd.yaml",
            json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": crd_name},
                "spec": {
                    "group": group,
                    "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
                    "scope": "Namespaced",
                    "versions": [{
                        "name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                        }}}
                    }]
                }
            }),
        )?;
        let widget = manifest(
            "widget.yaml",
            json!({
                "apiVersion": format!("{group}/v1"),
                "kind": "Widget",
                "metadata": {"name": "w1", "namespace": ns},
                "spec": {"size": 3}
            }),
        )?;
        let all = platformctl::kube::manifest::order(vec![widget, crd]).map_err(|e| e.to_string())?;
        let engine = Applier::new(client.clone(), Options::default());
        let applied = run(&engine, &all).await?;
        expect_actions(&applied, Action::Created)?;
        let live = live(&client, &all[1]).await?;
        if live.data["spec"]["size"] != json!(3) {
            return Err(format!("the Widget was applied wrong: {:?}", live.data));
        }
        // And the schema of the new CRD is enforced strictly.
        let mut bad = all[1].clone();
        bad.object["spec"]["colour"] = json!("red");
        match engine.apply(std::slice::from_ref(&bad), &|_| {}).await {
            Err(ApplyError::Invalid { message, .. }) if message.contains("colour") => Ok(()),
            other => Err(format!("an unknown Widget field was not refused as invalid: {other:?}")),
        }
    }
    .await;
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::discovery::ApiResource::erase::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(&()),
    );
    let _ = crds.delete(&crd_name, &Default::default()).await;
    namespaces.delete().await;
    result
}

fn config_map(ns: &str, name: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"mode": value}
    })
}

/// A field another manager owns: the engine names that manager and the field, changes nothing,
/// and takes the field over only with `force_conflicts`.
async fn conflicts(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "conflict", &["c"]).await?;
    let ns = namespaces.get("c").to_string();
    let result = async {
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            &ns,
            &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        );
        api.patch(
            "settings",
            &PatchParams::apply("team-b"),
            &Patch::Apply(config_map(&ns, "settings", "theirs")),
        )
        .await
        .map_err(|e| e.to_string())?;
        let ours = [manifest(
            "settings.yaml",
            config_map(&ns, "settings", "ours"),
        )?];
        let engine = Applier::new(client.clone(), Options::default());
        match engine.apply(&ours, &|_| {}).await {
            Err(e @ ApplyError::Conflict { .. }) => {
                let text = e.to_string();
                if !text.contains("`team-b`") || !text.contains(".data.mode") {
                    return Err(format!(
                        "the conflict does not name team-b and .data.mode: {text}"
                    ));
                }
            }
            other => return Err(format!("expected a conflict, got {other:?}")),
        }
        let now = api.get("settings").await.map_err(|e| e.to_string())?;
        if now.data["data"]["mode"] != "theirs" {
            return Err("a refused apply changed the object".into());
        }
        let force = Applier::new(
            client.clone(),
            Options {
                force_conflicts: true,
                ..Options::default()
            },
        );
        let applied = run(&force, &ours).await?;
        expect_actions(&applied, Action::Configured)?;
        let now = api.get("settings").await.map_err(|e| e.to_string())?;
        if now.data["data"]["mode"] != "ours" {
            return Err(format!(
                "forcing did not take the field over: {:?}",
                now.data
            ));
        }
        Ok(())
    }
    .await;
    namespaces.delete().await;
    result
}

/// `--dry-run=server`: the server validates and answers, nothing is stored; an invalid object
/// is still refused.
async fn dry_run(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "dry", &["d"]).await?;
    let ns = namespaces.get("d").to_string();
    let result = async {
        let engine = Applier::new(
            client.clone(),
            Options {
                dry_run: true,
                ..Options::default()
            },
        );
        let cm = [manifest("cm.yaml", config_map(&ns, "dry", "x"))?];
        expect_actions(&run(&engine, &cm).await?, Action::Created)?;
        let api: Api<DynamicObject> = api(&client, &cm[0]).await?;
        if api
            .get_opt("dry")
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Err("a dry run stored the object".into());
        }
        let real = Applier::new(client.clone(), Options::default());
        run(&real, &cm).await?;
        expect_actions(&run(&engine, &cm).await?, Action::Unchanged)?;
        let changed = [manifest("cm.yaml", config_map(&ns, "dry", "y"))?];
        expect_actions(&run(&engine, &changed).await?, Action::Configured)?;
        let stored = api.get("dry").await.map_err(|e| e.to_string())?;
        if stored.data["data"]["mode"] != "x" {
            return Err("a dry run changed the stored object".into());
        }
        Ok(())
    }
    .await;
    namespaces.delete().await;
    result
}

/// 60 objects at once (bounded concurrency): all Created, then a change to 3 of them gives
/// exactly 3 Configured, the rest Unchanged.
async fn verdicts(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "verdicts", &["v"]).await?;
    let ns = namespaces.get("v").to_string();
    let result = async {
        let build = |changed: usize| -> Result<Vec<Manifest>, String> {
            (0..60)
                .map(|i| {
                    let value = if i < changed { "b" } else { "a" };
                    manifest(
                        &format!("cm-{i}.yaml"),
                        config_map(&ns, &format!("cm-{i:02}"), value),
                    )
                })
                .collect()
        };
        let engine = Applier::new(client.clone(), Options::default());
        let started = std::time::Instant::now();
        expect_actions(&run(&engine, &build(0)?).await?, Action::Created)?;
        let took = started.elapsed();
        let applied = run(&engine, &build(3)?).await?;
        let configured: Vec<_> = applied
            .iter()
            .filter(|a| a.action == Action::Configured)
            .map(|a| a.key.name.clone())
            .collect();
        let mut configured = configured;
        configured.sort();
        if configured != ["cm-00", "cm-01", "cm-02"] {
            return Err(format!("expected cm-00..02 Configured, got {configured:?}"));
        }
        if applied
            .iter()
            .filter(|a| a.action == Action::Unchanged)
            .count()
            != 57
        {
            return Err("expected 57 Unchanged".into());
        }
        eprintln!("apply engine: 60 ConfigMaps created in {took:?}");
        Ok(())
    }
    .await;
    namespaces.delete().await;
    result
}

/// A Deployment that exists before the wait starts reaches the wait through the watcher's
/// first list, whose items of built-in kinds carry no apiVersion or kind: the readiness rules
/// must still see a Deployment. Its pods can never schedule (no node has the label), so the
/// wait runs out and says what it waited for.
async fn wait_for_existing(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "wait", &["w"]).await?;
    let ns = namespaces.get("w").to_string();
    let result = async {
        let object = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "unschedulable", "namespace": ns},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "unschedulable"}},
                "template": {
                    "metadata": {"labels": {"app": "unschedulable"}},
                    "spec": {
                        "nodeSelector": {"platformctl.dev/no-such-node": "true"},
                        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                    },
                },
            },
        });
        let m = manifest("deployment.yaml", object)?;
        let engine = Applier::new(client.clone(), Options::default());
        expect_actions(
            &run(&engine, std::slice::from_ref(&m)).await?,
            Action::Created,
        )?;
        let target = wait::Target {
            key: m.key(),
            api: Api::namespaced_with(
                client.clone(),
                &ns,
                &kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                    "apps",
                    "v1",
                    "Deployment",
                )),
            ),
            name: "unschedulable".into(),
        };
        match wait::all_ready(vec![target], Duration::from_secs(5), &|_, _| {}).await {
            Err(wait::Error::TimedOut { waiting, .. })
                if waiting.len() == 1 && waiting[0].1.contains("available") =>
            {
                Ok(())
            }
            other => Err(format!(
                "want a timeout waiting for the Deployment to be available, got {other:?}"
            )),
        }
    }
    .await;
    namespaces.delete().await;
    result
}
