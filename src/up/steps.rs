//! The step implementations. Each reads the cluster first and changes only what differs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Secret, Service};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, PostParams};

use super::gitserver::{self, Pushed};
use super::objects::{self, Source};
use super::{Credential, Endpoint, Progress, Settings, Step, StepStatus};
use crate::addons::{self, Change, Helm};
use crate::cluster::{self, Target};
use crate::config::Driver;
use crate::kube::{Action, Applied, Applier, Manifest, Options, manifest, wait};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn err(message: impl Into<String>) -> BoxError {
    message.into().into()
}

/// What earlier steps learned, for later ones.
#[derive(Default)]
pub struct State {
    target: Option<Target>,
    client: Option<Client>,
    facts: addons::Facts,
    /// Under `--dry-run=server`: the namespaces the plan needs that do not exist (a dry run
    /// creates none, so nothing is sent into them).
    absent: BTreeSet<String>,
    /// The commit the GitOps source's branch is at (pushed, or read), for the wait on the
    /// Applications to sync it.
    revision: Option<String>,
}

pub struct Outcome {
    pub changes: Vec<String>,
    pub detail: String,
    pub skipped: bool,
}

impl Outcome {
    pub fn status(&self) -> StepStatus {
        if self.skipped {
            StepStatus::Skipped
        } else if self.changes.is_empty() {
            StepStatus::Unchanged
        } else {
            StepStatus::Changed
        }
    }
    fn skipped(detail: impl Into<String>) -> Outcome {
        Outcome {
            changes: Vec::new(),
            detail: detail.into(),
            skipped: true,
        }
    }
    fn done(changes: Vec<String>, detail: impl Into<String>) -> Outcome {
        Outcome {
            changes,
            detail: detail.into(),
            skipped: false,
        }
    }
}

pub async fn run(
    step: Step,
    settings: &Settings,
    state: &mut State,
    progress: &dyn Progress,
) -> Result<Outcome, BoxError> {
    match step {
        Step::Preflight => preflight(settings).await,
        Step::Cluster => cluster_step(settings, state).await,
        Step::Namespaces => namespaces(settings, state, progress).await,
        Step::Secrets => secrets(settings, state).await,
        Step::Addons => addons_step(settings, state, progress).await,
        Step::Images => images(settings, state, progress).await,
        Step::Gitops => gitops(settings, state, progress).await,
        Step::Apps => {
            let client = connect(settings, state).await?;
            apply(
                settings,
                client,
                argocd_manifests(settings)?,
                progress,
                step,
                &state.absent,
            )
            .await
        }
        Step::Wait => wait_apps(settings, state, progress).await,
    }
}

/// What the step would do, without touching anything.
pub fn preview(step: Step, settings: &Settings) -> String {
    let p = &settings.platform;
    match step {
        Step::Cluster => match p.cluster.driver {
            Driver::Minikube => format!(
                "minikube profile `{}`: {} nodes, {} CPUs and {} MiB each, Kubernetes {}",
                p.cluster.profile,
                p.cluster.nodes,
                p.cluster.cpus,
                p.cluster.memory,
                p.cluster.kubernetes_version
            ),
            Driver::Existing => format!(
                "existing cluster, context {}",
                p.cluster
                    .context
                    .as_deref()
                    .map_or("(current)".to_string(), |c| format!("`{c}`"))
            ),
        },
        Step::Addons => addons::plan(p, &addons::Facts::default())
            .iter()
            .map(|r| format!("{} {} ({})", r.chart, r.version, r.namespace))
            .collect::<Vec<_>>()
            .join(", "),
        Step::Namespaces => objects::namespaces(p)
            .iter()
            .filter(|m| m.kind() == "Namespace")
            .map(|m| m.name().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        Step::Secrets => objects::secrets(
            p,
            &settings.project,
            &addons::plan(p, &addons::Facts::default()),
        )
        .iter()
        .map(|s| format!("{}/{}", s.namespace, s.name))
        .collect::<Vec<_>>()
        .join(", "),
        Step::Gitops => match (&p.gitops.remote, &p.gitops.local) {
            (Some(r), _) => format!("{} branch {}", r.url, r.branch),
            (None, Some(l)) => format!(
                "in-cluster git server (Deployment and Service `{}` in namespace {}, image {}); pushes the project's HEAD to branch {}; Argo CD reads {}",
                gitserver::NAME,
                l.namespace,
                gitserver::IMAGE,
                l.branch,
                l.url(&p.metadata.name)
            ),
            (None, None) => "no source".into(),
        },
        Step::Apps | Step::Wait => argocd_manifests(settings)
            .map(|ms| {
                ms.iter()
                    .filter(|m| step == Step::Apps || m.kind() == "Application")
                    .map(|m| format!("{} {}", m.kind(), m.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|e| e.to_string()),
        Step::Images if p.cluster.driver == Driver::Existing => {
            "skipped: an existing cluster pulls its images from their registry".into()
        }
        Step::Images | Step::Preflight => step.describe().into(),
    }
}

async fn preflight(settings: &Settings) -> Result<Outcome, BoxError> {
    let on_disk = crate::render::read(&settings.project).map_err(|e| {
        err(format!(
            "cannot read the rendered tree in `{}`: {e}",
            settings.project.display()
        ))
    })?;
    let stale: Vec<&String> = settings
        .tree
        .iter()
        .filter(|(path, text)| on_disk.get(*path) != Some(*text))
        .map(|(path, _)| path)
        .chain(on_disk.keys().filter(|p| !settings.tree.contains_key(*p)))
        .collect();
    if !stale.is_empty() {
        return Err(crate::exit::UsageError::new(format!(
            "the rendered tree on disk differs from platform.yaml in {} file(s), e.g. `{}`: Argo CD would deploy the old one",
            stale.len(),
            stale[0]
        ))
        .hint("run `platformctl render`, commit and push the tree, then `platformctl up` again")
        .into());
    }
    if settings.steps.contains(&Step::Secrets) {
        secret_sources(settings)?;
    }
    let mut found = Vec::new();
    if settings.steps.contains(&Step::Addons)
        && !addons::plan(&settings.platform, &addons::Facts::default()).is_empty()
    {
        let helm = Helm::locate()?;
        found.push(format!("helm {}", helm.version().await?));
    }
    if settings.steps.contains(&Step::Gitops) {
        which("git")?;
        found.push("git".into());
        source_path_in_repository(settings).await?;
        if settings.platform.gitops.local.is_some() {
            found.push(format!(
                "HEAD {}",
                short(&local_source_ready(settings).await?)
            ));
        }
    }
    Ok(Outcome::done(
        Vec::new(),
        format!(
            "{} rendered files match platform.yaml; {}",
            settings.tree.len(),
            if found.is_empty() {
                "no tools needed".into()
            } else {
                found.join(", ")
            }
        ),
    ))
}

/// The alert receivers' Secrets have source files holding their keys (a webhook URL or an SMTP
/// password cannot be generated): checked in preflight, before anything changes, and again by
/// the secrets step (`--only secrets` skips preflight). No value is ever shown.
fn secret_sources(settings: &Settings) -> Result<(), BoxError> {
    let specs = objects::secrets(&settings.platform, &settings.project, &[]);
    objects::check_sources(&settings.project, &specs).map_err(|problems| {
        let n = problems.len();
        crate::exit::UsageError::new(format!(
            "alert receivers need Secret values platformctl cannot generate ({n} problem{}):\n  {}",
            if n == 1 { "" } else { "s" },
            problems.join("\n  ")
        ))
        .hint(format!(
            "write `KEY=value` lines into those files under {} (git-ignored); `up` creates the Secrets from them and never shows a value",
            objects::SECRETS_DIR
        ))
        .into()
    })
}

fn which(tool: &str) -> Result<std::path::PathBuf, BoxError> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            err(format!(
                "`{tool}` is not on PATH: install it (the GitOps source is read with git)"
            ))
        })
}

async fn target(settings: &Settings, state: &mut State) -> Result<Target, BoxError> {
    if let Some(t) = &state.target {
        return Ok(t.clone());
    }
    // Without the cluster step (`--only`/`--skip`), connect without starting anything.
    let t = cluster::locate(&settings.platform.cluster)?;
    state.target = Some(t.clone());
    Ok(t)
}

async fn connect(settings: &Settings, state: &mut State) -> Result<Client, BoxError> {
    if let Some(c) = &state.client {
        return Ok(c.clone());
    }
    let t = target(settings, state).await?;
    let client = crate::kube::client_for(&t).await?;
    state.client = Some(client.clone());
    Ok(client)
}

async fn cluster_step(settings: &Settings, state: &mut State) -> Result<Outcome, BoxError> {
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

/// Applies `manifests` in the engine's order. Under `--dry-run=server`, what cannot be checked
/// because an earlier step would have made room for it (its namespace, or its kind's CRD, which
/// comes with an addon) is not sent, and said so.
async fn apply(
    settings: &Settings,
    client: Client,
    manifests: Vec<Manifest>,
    progress: &dyn Progress,
    step: Step,
    absent: &BTreeSet<String>,
) -> Result<Outcome, BoxError> {
    let manifests = manifest::order(manifests)?;
    let engine = Applier::new(
        client,
        Options {
            force_conflicts: settings.force_conflicts,
            dry_run: settings.server_dry_run,
            ..Options::default()
        },
    );
    let mut unchecked = Vec::new();
    let manifests = if settings.server_dry_run {
        let mut send = Vec::new();
        for m in manifests {
            let why = match m.namespace() {
                Some(ns) if !m.is_namespace() && absent.contains(ns) => {
                    Some(format!("namespace `{ns}` does not exist yet"))
                }
                _ if !engine.served(&m).await? => Some(format!(
                    "kind {} is not served yet (its CRD comes with an addon)",
                    m.kind()
                )),
                _ => None,
            };
            match why {
                Some(why) => unchecked.push(format!("{} not checked: {why}", m.key())),
                None => send.push(m),
            }
        }
        send
    } else {
        manifests
    };
    let applied = engine
        .apply(&manifests, &|a: &Applied| {
            if a.action != Action::Unchanged {
                progress.message(step, &format!("{} {:?}", a.key, a.action).to_lowercase());
            }
        })
        .await?;
    let mut changes: Vec<String> = applied
        .iter()
        .filter(|a| a.action != Action::Unchanged)
        .map(|a| format!("{} {}", a.key, format!("{:?}", a.action).to_lowercase()))
        .collect();
    let mut detail = format!(
        "{}, {} changed{}",
        crate::output::counted(applied.len(), "object"),
        changes.len(),
        if settings.server_dry_run {
            " (server dry run)"
        } else {
            ""
        }
    );
    if !unchecked.is_empty() {
        detail.push_str(&format!(
            "; {} not sent: a server dry run creates nothing they need",
            unchecked.len()
        ));
        changes.extend(unchecked);
    }
    Ok(Outcome::done(changes, detail))
}

fn argocd_manifests(settings: &Settings) -> Result<Vec<Manifest>, BoxError> {
    let mut out = Vec::new();
    for (path, text) in settings.tree.range("argocd/".to_string()..) {
        if !path.starts_with("argocd/") {
            break;
        }
        out.extend(manifest::parse(path, text)?);
    }
    Ok(out)
}

/// `gitops.local` pushes the project's HEAD commit: there must be one, and the rendered tree
/// must be in it (else Argo CD would deploy an older tree than the one on disk). Said in
/// preflight, before anything in the cluster changes. The HEAD commit.
/// The Applications read `gitops.path` of the repository: with the project in a git
/// repository (the one `gitops.local` pushes, or the clone of `gitops.remote`), that must be
/// where the project's rendered tree is in it, or Argo CD would sync a path that is not there
/// and deploy nothing.
async fn source_path_in_repository(settings: &Settings) -> Result<(), BoxError> {
    let Some(prefix) = gitserver::prefix(&settings.project).await? else {
        return Ok(());
    };
    let wanted = normal_path(&settings.platform.gitops.path);
    if wanted == prefix {
        return Ok(());
    }
    let set = if prefix == "." {
        "remove `gitops.path` (the tree is at the repository's root)".to_string()
    } else {
        format!("set `gitops.path: {prefix}`")
    };
    let envs = |dir: &str| {
        if dir == "." {
            "envs/…".to_string()
        } else {
            format!("{dir}/envs/…")
        }
    };
    Err(crate::exit::UsageError::new(format!(
        "the Applications read `{}` of the repository, but the rendered tree is at `{}` in it: Argo CD would deploy nothing",
        envs(&wanted),
        envs(&prefix)
    ))
    .hint(format!("{set} in platform.yaml, then `platformctl render`, commit, and `platformctl up` again"))
    .into())
}

/// `gitops.path` as git names a directory: `.` for the root, no leading `./` or trailing `/`.
fn normal_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

async fn local_source_ready(settings: &Settings) -> Result<String, BoxError> {
    let head = gitserver::head(&settings.project).await.map_err(|e| {
        crate::exit::UsageError::new(format!("gitops.local pushes your project's HEAD commit: {e}"))
            .hint("commit the project (`git init -b main && git add -A && git commit -m platform`), or set `gitops.remote`")
    })?;
    let dirty = gitserver::uncommitted(&settings.project).await?;
    if let Some(first) = dirty.first() {
        return Err(crate::exit::UsageError::new(format!(
            "the rendered tree has {} uncommitted file(s), e.g. `{first}`: gitops.local pushes your HEAD commit, so Argo CD would deploy the tree without them",
            dirty.len()
        ))
        .hint("commit the rendered tree (`git add -A && git commit`), then `platformctl up` again")
        .into());
    }
    Ok(head)
}

/// Namespaces and RBAC. A namespace that exists without `up`'s label was made by someone else:
/// it is used as it is, never labelled, so `down --keep-cluster` leaves it alone.
async fn namespaces(
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

async fn secrets(settings: &Settings, state: &mut State) -> Result<Outcome, BoxError> {
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

struct NoProgress;
impl Progress for NoProgress {
    fn started(&self, _: Step, _: usize, _: usize) {}
    fn message(&self, _: Step, _: &str) {}
    fn finished(&self, _: Step, _: &super::StepReport) {}
}

/// Objects adopted per release at most, in one `up --adopt`.
const MAX_ADOPTIONS: usize = 100;

async fn addons_step(
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
fn served_summary(needs: &[addons::served::Need]) -> String {
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

async fn images(
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

async fn gitops(
    settings: &Settings,
    state: &mut State,
    progress: &dyn Progress,
) -> Result<Outcome, BoxError> {
    let g = &settings.platform.gitops;
    let Some(remote) = &g.remote else {
        let Some(local) = &g.local else {
            return Ok(Outcome::skipped("no GitOps source"));
        };
        return local_server(settings, state, progress, local).await;
    };
    let refname = format!("refs/heads/{}", remote.branch);
    let out = gitserver::git(
        &settings.project,
        &["ls-remote", "--exit-code", &remote.url, &refname],
        Duration::from_secs(30),
    )
    .await?;
    if !out.success() {
        let what = if out.code == Some(2) {
            format!(
                "branch `{}` does not exist in `{}`",
                remote.branch, remote.url
            )
        } else {
            format!("cannot read `{}`: {}", remote.url, out.stderr.trim())
        };
        return Err(err(what));
    }
    state.revision = out.stdout.split_whitespace().next().map(str::to_string);
    Ok(Outcome::done(
        Vec::new(),
        format!("{} {} at {}", remote.url, remote.branch, short(&out.stdout)),
    ))
}

/// The in-cluster git server: its objects applied, its pod waited Ready, the project's HEAD
/// pushed to it.
async fn local_server(
    settings: &Settings,
    state: &mut State,
    progress: &dyn Progress,
    local: &crate::config::LocalGit,
) -> Result<Outcome, BoxError> {
    // (again: `--only` may have left preflight out, and nothing is applied without a commit)
    let head = local_source_ready(settings).await?;
    let client = connect(settings, state).await?;
    let manifests = gitserver::manifests(&settings.platform, local);
    let applied = apply(
        settings,
        client.clone(),
        manifests.clone(),
        progress,
        Step::Gitops,
        &state.absent,
    )
    .await?;
    if settings.server_dry_run {
        return Ok(applied);
    }
    let targets = manifests
        .iter()
        .filter(|m| m.kind() == "Deployment")
        .map(|m| wait::Target {
            key: m.key(),
            api: Api::<DynamicObject>::namespaced_with(
                client.clone(),
                &local.namespace,
                &kube::core::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            ),
            name: m.name().to_string(),
        })
        .collect();
    wait::all_ready(targets, settings.timeout, &|key, readiness| {
        progress.message(Step::Gitops, &format!("{key}: {readiness:?}"));
    })
    .await?;
    progress.message(Step::Gitops, "pushing HEAD to the in-cluster repository");
    let url = local.url(&settings.platform.metadata.name);
    let mut changes = applied.changes;
    let detail = match gitserver::push(&client, &settings.platform, local, &settings.project, &head)
        .await?
    {
        Pushed::Unchanged(head) => {
            let detail = format!("{url} {} at {}", local.branch, short(&head));
            state.revision = Some(head);
            detail
        }
        Pushed::Updated(before, head) => {
            state.revision = Some(head.clone());
            changes.push(format!(
                "pushed {} to {url} {}{}",
                short(&head),
                local.branch,
                before
                    .map(|b| format!(" (was {})", short(&b)))
                    .unwrap_or_default()
            ));
            format!("{url} {} at {}", local.branch, short(&head))
        }
    };
    Ok(Outcome::done(changes, detail))
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

async fn wait_apps(
    settings: &Settings,
    state: &mut State,
    progress: &dyn Progress,
) -> Result<Outcome, BoxError> {
    if settings.server_dry_run {
        return Ok(Outcome::skipped("server dry run: nothing to wait for"));
    }
    let client = connect(settings, state).await?;
    let apps: Vec<Manifest> = argocd_manifests(settings)?
        .into_iter()
        .filter(|m| m.kind() == "Application")
        .collect();
    if apps.is_empty() {
        return Ok(Outcome::skipped("no Argo CD application"));
    }
    // Synced at the commit the source has (asked to refresh where it is not: a push is seen
    // at once rather than at Argo CD's next poll), then Healthy.
    let timeout = settings.timeout;
    let wait = async {
        if let Some(revision) = state.revision.clone() {
            super::apps::synced_at(&settings.platform, &client, &apps, &revision, progress).await?;
        }
        super::apps::healthy(&settings.platform, &client, &apps, progress).await
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(Box::new(wait::Error::TimedOut {
                after: timeout,
                waiting: apps
                    .iter()
                    .map(|m| (m.key(), "not Synced and Healthy".to_string()))
                    .collect(),
            }));
        }
    }
    Ok(Outcome::done(
        Vec::new(),
        format!(
            "{} Synced and Healthy",
            crate::output::counted(apps.len(), "application")
        ),
    ))
}

/// How to reach Argo CD, Grafana, Prometheus and the services: port-forwards to the Services
/// found in the addons' namespaces, ingress hosts for environments that have one.
pub async fn endpoints(settings: &Settings, state: &State) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let Some(client) = &state.client else {
        return out;
    };
    let context = state
        .target
        .as_ref()
        .and_then(|t| t.context.as_ref())
        .map(|c| format!(" --context {c}"))
        .unwrap_or_default();
    let releases = addons::plan(&settings.platform, &state.facts);
    let wanted: [(&str, addons::Kind, &str, u16); 3] = [
        ("Argo CD", addons::Kind::Argocd, "argocd-server", 8080),
        (
            "Grafana",
            addons::Kind::KubePrometheusStack,
            "grafana",
            3000,
        ),
        (
            "Prometheus",
            addons::Kind::KubePrometheusStack,
            "prometheus",
            9090,
        ),
    ];
    for (name, kind, suffix, local) in wanted {
        let Some(release) = releases.iter().find(|r| r.kind == kind) else {
            continue;
        };
        let services: Vec<Service> =
            match Api::<Service>::namespaced(client.clone(), &release.namespace)
                .list(&ListParams::default())
                .await
            {
                Ok(l) => l.items,
                Err(_) => continue,
            };
        let found = services.iter().find(|s| {
            s.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with(suffix))
        });
        if let Some(svc) = found {
            let port = svc
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .and_then(|p| p.first())
                .map_or(80, |p| p.port);
            out.push(Endpoint {
                name: name.to_string(),
                how: format!(
                    "kubectl{context} -n {} port-forward svc/{} {local}:{port}  (then http://localhost:{local})",
                    release.namespace,
                    svc.metadata.name.as_deref().unwrap_or_default()
                ),
            });
        }
    }
    for env in &settings.platform.environments {
        for service in &settings.platform.services {
            if !service.tags.contains_key(&env.name) {
                continue;
            }
            let how = match &env.ingress {
                Some(i) => format!(
                    "http://{}.{}/ (ingress class {})",
                    service.name, i.domain, i.class_name
                ),
                None => format!(
                    "kubectl{context} -n {} port-forward svc/{} 8080:{}",
                    env.namespace, service.name, service.port
                ),
            };
            out.push(Endpoint {
                name: format!("{} ({})", service.name, env.name),
                how,
            });
        }
    }
    out
}

/// The generated logins: Argo CD's initial admin password and each addon's Secret.
pub async fn credentials(settings: &Settings) -> Result<Vec<Credential>, BoxError> {
    let mut state = State::default();
    let client = connect(settings, &mut state).await?;
    let mut out = Vec::new();
    let releases = addons::plan(&settings.platform, &addons::Facts::default());
    let read = |ns: String, name: &'static str| {
        let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
        async move { api.get_opt(name).await }
    };
    if releases.iter().any(|r| r.kind == addons::Kind::Argocd)
        && let Some(s) = read(
            addons::namespace(&settings.platform, addons::Kind::Argocd).to_string(),
            "argocd-initial-admin-secret",
        )
        .await?
    {
        out.push(Credential {
            name: "Argo CD".into(),
            user: "admin".into(),
            password: value(&s, "password"),
        });
    }
    for r in &releases {
        if let Some(c) = &r.credentials {
            let api: Api<Secret> = Api::namespaced(client.clone(), &c.namespace);
            if let Some(s) = api.get_opt(&c.name).await? {
                out.push(Credential {
                    name: format!("{} ({})", r.chart, c.name),
                    user: value(&s, &c.user_key),
                    password: value(&s, &c.password_key),
                });
            }
        }
    }
    Ok(out)
}

fn value(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d: &BTreeMap<String, k8s_openapi::ByteString>| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}
