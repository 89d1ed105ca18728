//! The cluster, its namespaces and RBAC, and the Secrets the platform needs.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ListParams, PostParams};

use super::*;
use installs::NoProgress;
use preflight::secret_sources;

pub(super) async fn cluster_step(
    settings: &Settings,
    state: &mut State,
) -> Result<Outcome, BoxError> {
    let ensured = cluster::ensure(&settings.platform.cluster).await?;
    state.target = Some(ensured.target);
    let client = connect(settings, state).await?;
    let version = client
        .apiserver_version()
        .await
        .map_err(|e| err(format!("the API server does not answer: {e}")))?;
    let nodes: Vec<Node> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    state.facts = addons::Facts::from_nodes(&nodes);
    let ready = nodes
        .iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    let changes: Vec<String> = ensured.change.into_iter().collect();
    Ok(Outcome::done(
        changes,
        format!(
            "Kubernetes {}, {ready}/{} nodes Ready",
            version.git_version,
            nodes.len()
        ),
    ))
}

/// Namespaces and RBAC. A namespace that exists without `up`'s label was made by someone else:
/// it is used as it is, never labelled, so `down --keep-cluster` leaves it alone.
pub(super) async fn namespaces(
    settings: &Settings,
    state: &mut State,
    progress: &dyn Progress,
) -> Result<Outcome, BoxError> {
    let client = connect(settings, state).await?;
    let api = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    let wanted = objects::namespaces(&settings.platform);
    // A namespace still terminating (right after `down`) refuses new objects: wait it out.
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let existing = loop {
        let list = api.list(&ListParams::default()).await?;
        let terminating: Vec<String> = list
            .items
            .iter()
            .filter(|ns| ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating"))
            .filter_map(|ns| ns.metadata.name.clone())
            .filter(|n| wanted.iter().any(|m| m.is_namespace() && m.name() == n))
            .collect();
        if terminating.is_empty() {
            break list;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(err(format!(
                "namespaces still terminating after {} s: {}",
                settings.timeout.as_secs(),
                terminating.join(", ")
            )));
        }
        progress.message(
            Step::Namespaces,
            &format!(
                "waiting for namespaces to finish terminating: {}",
                terminating.join(", ")
            ),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let theirs: Vec<String> = existing
        .items
        .iter()
        .filter(|ns| {
            ns.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app.kubernetes.io/managed-by"))
                .is_none_or(|v| v != "platformctl")
        })
        .filter_map(|ns| ns.metadata.name.clone())
        .collect();
    if settings.server_dry_run {
        state.absent = wanted
            .iter()
            .filter(|m| m.is_namespace())
            .map(|m| m.name().to_string())
            .filter(|n| {
                !existing
                    .items
                    .iter()
                    .any(|ns| ns.metadata.name.as_deref() == Some(n))
            })
            .collect();
    }
    let (kept, ours): (Vec<Manifest>, Vec<Manifest>) = wanted
        .into_iter()
        .partition(|m| m.is_namespace() && theirs.iter().any(|n| n == m.name()));
    let mut outcome = apply(
        settings,
        client,
        ours,
        progress,
        Step::Namespaces,
        &state.absent,
    )
    .await?;
    if !kept.is_empty() {
        let names: Vec<&str> = kept.iter().map(Manifest::name).collect();
        outcome.detail.push_str(&format!(
            "; not ours, left as they are: {}",
            names.join(", ")
        ));
    }
    Ok(outcome)
}

pub(super) async fn secrets(settings: &Settings, state: &mut State) -> Result<Outcome, BoxError> {
    secret_sources(settings)?;
    let client = connect(settings, state).await?;
    let releases = addons::plan(&settings.platform, &state.facts);
    let specs = objects::secrets(&settings.platform, &settings.project, &releases);
    let mut changes = Vec::new();
    let mut from_files = Vec::new();
    for spec in &specs {
        if state.absent.contains(&spec.namespace) {
            changes.push(format!(
                "Secret `{}/{}` not checked: namespace `{}` does not exist yet",
                spec.namespace, spec.name, spec.namespace
            ));
            continue;
        }
        let api: Api<Secret> = Api::namespaced(client.clone(), &spec.namespace);
        match &spec.source {
            Source::File(path) => {
                let mut values = spec.fixed.clone();
                values.extend(
                    objects::read_env_file(path)
                        .map_err(|e| Box::new(crate::exit::UsageError::new(e)) as BoxError)?,
                );
                from_files.push(Manifest::new(
                    path.display().to_string(),
                    objects::secret_object(&settings.platform, spec, &values),
                )?);
            }
            Source::Missing(_) => {
                return Err(err(format!(
                    "Secret `{}/{}` has no source file",
                    spec.namespace, spec.name
                )));
            }
            Source::Generated(keys) => {
                if api.get_opt(&spec.name).await?.is_some() {
                    continue;
                }
                let mut values = spec.fixed.clone();
                for k in keys {
                    values.insert(k.clone(), objects::random_value()?);
                }
                let secret: Secret = serde_json::from_value(objects::secret_object(
                    &settings.platform,
                    spec,
                    &values,
                ))?;
                let mut pp = PostParams::default();
                if settings.server_dry_run {
                    pp.dry_run = true;
                }
                match api.create(&pp, &secret).await {
                    Ok(_) => changes.push(format!(
                        "Secret `{}/{}` generated",
                        spec.namespace, spec.name
                    )),
                    // Created by a run that was interrupted after the request: keep that one.
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    let mut detail = format!("{} Secrets", specs.len());
    if !from_files.is_empty() {
        let applied = apply(
            settings,
            client,
            from_files,
            &NoProgress,
            Step::Secrets,
            &state.absent,
        )
        .await?;
        changes.extend(applied.changes);
        detail.push_str(" (some from .platformctl/secrets)");
    }
    Ok(Outcome::done(changes, detail))
}
