//! The step implementations. Each reads the cluster first and changes only what differs.

mod foundation;
mod gitops;
mod installs;
mod preflight;
mod report;

use foundation::{cluster_step, namespaces, secrets};
use gitops::{gitops, wait_apps};
use installs::{addons_step, images};
use preflight::preflight;
pub use report::{credentials, endpoints};

use std::collections::BTreeSet;

use kube::Client;

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
