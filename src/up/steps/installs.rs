//! The addons (helm releases, adopted objects) and the service images.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use super::*;

pub(super) struct NoProgress;
impl Progress for NoProgress {
    fn started(&self, _: Step, _: usize, _: usize) {}
    fn message(&self, _: Step, _: &str) {}
    fn finished(&self, _: Step, _: &super::super::StepReport) {}
}

/// Objects adopted per release at most, in one `up --adopt`.
pub(super) const MAX_ADOPTIONS: usize = 100;

pub(super) async fn addons_step(
    settings: &Settings,
    state: &mut State,
    progress: &dyn Progress,
) -> Result<Outcome, BoxError> {
    let releases = addons::plan(&settings.platform, &state.facts);
    if releases.is_empty() {
        return Ok(Outcome::skipped("no addon is enabled"));
    }
    if settings.server_dry_run {
        return Ok(Outcome::skipped(
            "server dry run: Helm releases are left alone",
        ));
    }
    let t = target(settings, state).await?;
    let helm = Helm::for_target(&t)?;
    let results = helm
        .converge_all(&releases, 3, |r, result| {
            if let Ok(change) = result {
                progress.message(
                    Step::Addons,
                    &format!("{} {:?}", r.name, change).to_lowercase(),
                );
            }
        })
        .await;
    let mut changes = Vec::new();
    let mut unchanged = 0;
    for (release, mut result) in releases.iter().zip(results) {
        // --adopt: each object helm will not import is given to the release, then the release
        // is converged again (helm names one object per refusal).
        let mut adopted = 0;
        while settings.adopt && adopted < MAX_ADOPTIONS {
            let Err(addons::Error::Owned { conflict, .. }) = &result else {
                break;
            };
            let client = connect(settings, state).await?;
            addons::ownership::adopt(&client, conflict, &release.name, &release.namespace).await?;
            progress.message(
                Step::Addons,
                &format!("adopted {conflict} into release `{}`", release.name),
            );
            changes.push(format!(
                "{conflict} adopted into release `{}`; it was made by {}",
                release.name, conflict.owner
            ));
            adopted += 1;
            result = helm.converge(release).await;
        }
        match result? {
            Change::Unchanged => unchanged += 1,
            c => changes.push(format!(
                "release `{}` ({} {}) {}",
                release.name,
                release.chart,
                release.version,
                format!("{c:?}").to_lowercase()
            )),
        }
    }
    // Before Argo CD syncs anything: every release's workloads available, its webhooks and
    // APIServices served (a first sync that races an admission webhook fails).
    let client = connect(settings, state).await?;
    let installed: Vec<(String, String)> = releases
        .iter()
        .map(|r| (r.name.clone(), r.namespace.clone()))
        .collect();
    let needs = addons::served::of_releases(&client, &installed).await?;
    let waiting = std::sync::Mutex::new(std::collections::BTreeSet::new());
    progress.message(
        Step::Addons,
        &format!(
            "waiting for {} of the addons to serve",
            served_summary(&needs)
        ),
    );
    addons::served::wait(&client, &needs, settings.timeout, &|need, readiness| {
        let mut left = waiting.lock().unwrap_or_else(|e| e.into_inner());
        match readiness {
            crate::ready::Readiness::Ready => left.remove(&need.what),
            _ => left.insert(need.what.clone()),
        };
        let now = match readiness {
            crate::ready::Readiness::Ready => "ready".to_string(),
            crate::ready::Readiness::Waiting(why)
            | crate::ready::Readiness::Paused(why)
            | crate::ready::Readiness::Failed(why) => why.clone(),
        };
        progress.message(
            Step::Addons,
            &format!("{}: {now}; {} still waiting", need.what, left.len()),
        );
    })
    .await?;
    let detail = format!(
        "{}, {} changed, {unchanged} unchanged; {} serving",
        crate::output::counted(releases.len(), "release"),
        changes.len(),
        served_summary(&needs)
    );
    Ok(Outcome::done(changes, detail))
}

/// "12 workloads, 1 webhook, 1 APIService".
pub(super) fn served_summary(needs: &[addons::served::Need]) -> String {
    let count = |kinds: &[&str]| {
        needs
            .iter()
            .filter(|n| kinds.contains(&n.key.kind.as_str()))
            .count()
    };
    let mut parts = vec![crate::output::counted(
        count(&["Deployment", "StatefulSet", "DaemonSet"]),
        "workload",
    )];
    let hooks = count(&["Endpoints"]);
    if hooks > 0 {
        parts.push(crate::output::counted(hooks, "webhook"));
    }
    let apis = count(&["APIService"]);
    if apis > 0 {
        parts.push(crate::output::counted(apis, "APIService"));
    }
    parts.join(", ")
}

pub(super) async fn images(
    settings: &Settings,
    state: &mut State,
    progress: &dyn Progress,
) -> Result<Outcome, BoxError> {
    if settings.platform.cluster.driver == Driver::Existing {
        return Ok(Outcome::skipped(
            "existing cluster: images are pulled from their registry",
        ));
    }
    if settings.server_dry_run {
        return Ok(Outcome::skipped("server dry run: no image is built"));
    }
    let client = connect(settings, state).await?;
    // What each node is known to hold; `ensure_images` asks the runtime where this falls short.
    let known = Api::<Node>::all(client)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|n| {
            let images = n
                .status
                .and_then(|s| s.images)
                .unwrap_or_default()
                .into_iter()
                .flat_map(|i| i.names.unwrap_or_default())
                .map(|name| cluster::minikube::image_key(&name))
                .collect();
            (n.metadata.name.unwrap_or_default(), images)
        })
        .collect();
    let minikube = cluster::minikube::Minikube::from_env();
    let services = settings.project.join("examples/services");
    let builds = cluster::minikube::args::image_builds(&settings.platform, &services);
    let built = minikube
        .ensure_images(
            &settings.platform.cluster.profile,
            &builds,
            known,
            &|what: &str| progress.message(Step::Images, what),
        )
        .await?;
    let detail = format!(
        "{}, {} already on every node",
        crate::output::counted(builds.len(), "image"),
        builds.len() - built.len()
    );
    let changes = built
        .into_iter()
        .map(|image| format!("image {image} built on every node"))
        .collect();
    Ok(Outcome::done(changes, detail))
}
