//! `up`: the plan of named, idempotent steps that takes a `platform.yaml` to a running platform.
//!
//! preflight → cluster → namespaces (and RBAC) → secrets → addons → images → gitops → apps → wait.
//! Every step converges: run again on a converged platform it changes nothing, and a run killed
//! at any moment is finished by the next one (there is no state outside the cluster and git).
//! Steps report through [`Progress`]; this module never prints.

mod apps;
pub mod gitserver;
mod objects;
mod steps;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use objects::SYSTEM_NAMESPACES;

use crate::config::Platform;

/// The steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Preflight,
    Cluster,
    Namespaces,
    Secrets,
    Addons,
    Images,
    Gitops,
    Apps,
    Wait,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::Preflight,
        Step::Cluster,
        Step::Namespaces,
        Step::Secrets,
        Step::Addons,
        Step::Images,
        Step::Gitops,
        Step::Apps,
        Step::Wait,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Cluster => "cluster",
            Step::Namespaces => "namespaces",
            Step::Secrets => "secrets",
            Step::Addons => "addons",
            Step::Images => "images",
            Step::Gitops => "gitops",
            Step::Apps => "apps",
            Step::Wait => "wait",
        }
    }

    pub fn parse(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.name() == name)
    }

    /// What the step does, for `--dry-run` and `--help`.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Preflight => {
                "render the GitOps tree in memory and compare it with the one on disk; check the alert receivers' Secret files; find the tools"
            }
            Step::Cluster => {
                "start or reuse the minikube profile, or check the existing context; read the nodes"
            }
            Step::Namespaces => {
                "namespaces with labels, and a deployer ServiceAccount and Role per environment"
            }
            Step::Secrets => {
                "create missing Secrets from .platformctl/secrets/ or with random values; never replace one"
            }
            Step::Addons => {
                "install or upgrade the Helm addons at their pinned chart versions, independent ones in parallel"
            }
            Step::Images => {
                "build the workload images a minikube node lacks, on that node; check every node has them"
            }
            Step::Gitops => {
                "the GitOps source: Argo CD can read the remote repository, or the in-cluster git server runs and has the project's HEAD"
            }
            Step::Apps => "apply the Argo CD projects and applications of the rendered tree",
            Step::Wait => "wait until every application is Synced and Healthy",
        }
    }
}

/// Everything `up` needs, resolved from flags, environment and platform.yaml.
#[derive(Debug, Clone)]
pub struct Settings {
    pub platform: Platform,
    /// The directory of platform.yaml: the rendered tree, `examples/services`, `.platformctl/`.
    pub project: PathBuf,
    /// The tree rendered from platform.yaml and the templates, in memory.
    pub tree: crate::render::Tree,
    pub steps: Vec<Step>,
    pub timeout: Duration,
    pub force_conflicts: bool,
    /// `--adopt`: objects of an addon's chart that exist without being its release's are
    /// given to the release instead of stopping `up`.
    pub adopt: bool,
    /// `--dry-run=server`: objects are sent with dryRun; no Helm release, Secret or image changes.
    pub server_dry_run: bool,
}

/// The outcome of one step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub name: &'static str,
    pub status: StepStatus,
    pub seconds: f64,
    /// One line per thing created or changed.
    pub changes: Vec<String>,
    /// A one-line summary.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Changed,
    Unchanged,
    Skipped,
}

/// How to reach what `up` stood up.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub name: String,
    /// A URL, or the command that makes one (a port-forward).
    pub how: String,
}

/// A generated login; only reported when asked for.
#[derive(Debug, Clone, Serialize)]
pub struct Credential {
    pub name: String,
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub steps: Vec<StepReport>,
    pub endpoints: Vec<Endpoint>,
    /// Filled by the caller on request only.
    #[serde(skip)]
    pub credentials: Vec<Credential>,
}

impl Report {
    pub fn changed(&self) -> bool {
        self.steps.iter().any(|s| s.status == StepStatus::Changed)
    }
}

/// Hears what `up` does, as it does it.
pub trait Progress: Sync {
    fn started(&self, step: Step, index: usize, total: usize);
    /// Something the step is doing or waiting for now.
    fn message(&self, step: Step, message: &str);
    fn finished(&self, step: Step, report: &StepReport);
}

#[derive(Debug, thiserror::Error)]
#[error("step `{}` failed", step.name())]
pub struct Error {
    pub step: Step,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Runs the selected steps in order; the first failure stops the run.
pub async fn run(settings: &Settings, progress: &dyn Progress) -> Result<Report, Error> {
    let mut state = steps::State::default();
    let mut reports = Vec::new();
    let total = settings.steps.len();
    for (i, step) in settings.steps.iter().copied().enumerate() {
        progress.started(step, i + 1, total);
        let start = Instant::now();
        let outcome = steps::run(step, settings, &mut state, progress)
            .await
            .map_err(|source| Error { step, source })?;
        let report = StepReport {
            name: step.name(),
            status: outcome.status(),
            seconds: (start.elapsed().as_secs_f64() * 100.0).round() / 100.0,
            changes: outcome.changes,
            detail: outcome.detail,
        };
        progress.finished(step, &report);
        reports.push(report);
    }
    let endpoints = steps::endpoints(settings, &state).await;
    Ok(Report {
        steps: reports,
        endpoints,
        credentials: Vec::new(),
    })
}

/// The generated logins, read back from the cluster (never from a log).
pub async fn credentials(settings: &Settings) -> Result<Vec<Credential>, Error> {
    steps::credentials(settings).await.map_err(|source| Error {
        step: Step::Secrets,
        source,
    })
}

/// The plan as `--dry-run` prints it: each selected step and what it would do here.
pub fn plan(settings: &Settings) -> Vec<(Step, String)> {
    settings
        .steps
        .iter()
        .map(|s| (*s, steps::preview(*s, settings)))
        .collect()
}

/// Labels on everything `up` creates, so `down --keep-cluster` finds exactly that.
pub fn labels(platform: &Platform) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_string(),
            "platformctl".to_string(),
        ),
        (
            "app.kubernetes.io/part-of".to_string(),
            platform.metadata.name.clone(),
        ),
    ])
}
