//! Addons: the Helm releases `up` installs (Argo CD, Argo Rollouts, kube-prometheus-stack,
//! Chaos Mesh, ingress-nginx, metrics-server) at the chart versions pinned in platform.yaml.
//!
//! `plan` turns the platform and what the cluster says about itself into releases, with
//! platformctl's values for a local production-shaped platform under the user's own; `Helm`
//! converges them through the `helm` CLI, leaving a release that is already current alone and
//! recovering one an interrupted helm left pending. This module does not create namespaces or
//! the Grafana admin Secret (`up` does, from [`Release::credentials`]), does not wait for the
//! addons' pods to be ready, and does not order releases: a CRD another release needs is the
//! apply engine's concern. It never prints.

mod helm;
pub mod ownership;
mod plan;
pub mod served;
#[cfg(test)]
mod upstream;
mod values;

use std::path::PathBuf;
use std::time::Duration;

pub use helm::{Change, Deployed, ENV as HELM_ENV, Helm, Removal, Status};
pub use plan::{
    Credentials, Facts, GRAFANA_ADMIN_SECRET, Kind, Release, chaos_daemon, namespace, plan,
    runtime_of,
};

/// The release a helm command was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub namespace: String,
}

impl Target {
    fn new(name: &str, namespace: &str) -> Target {
        Target {
            name: name.to_string(),
            namespace: namespace.to_string(),
        }
    }

    fn of(release: &Release) -> Target {
        Target::new(&release.name, &release.namespace)
    }
}

fn on(target: &Option<Target>) -> String {
    match target {
        Some(t) => format!(" of release `{}` in namespace `{}`", t.name, t.namespace),
        None => String::new(),
    }
}

fn exit_status(status: &Option<i32>) -> String {
    match status {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`helm` was not found on PATH")]
    HelmNotFound,
    #[error("`{}` (from {HELM_ENV}) is not an executable file", .0.display())]
    HelmNotExecutable(PathBuf),
    #[error("could not run `{}`", binary.display())]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`helm {action}`{} failed ({}):\n{stderr}",
        on(target),
        exit_status(status)
    )]
    Failed {
        action: &'static str,
        target: Option<Target>,
        status: Option<i32>,
        /// The last lines of helm's stderr.
        stderr: String,
    },
    #[error("`helm {action}`{} did not finish within {}s and was stopped", on(target), timeout.as_secs())]
    TimedOut {
        action: &'static str,
        target: Option<Target>,
        timeout: Duration,
    },
    #[error(
        "{conflict} already exists in the cluster, made by {}: release `{}` cannot install it",
        conflict.owner,
        release.name
    )]
    Owned {
        release: Target,
        conflict: Box<ownership::Conflict>,
    },
    #[error("`helm {action}` printed output platformctl cannot read")]
    Output {
        action: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// What the user can do about it, where that is known.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::HelmNotFound | Error::HelmNotExecutable(_) => Some(format!(
                "install Helm 3 (https://helm.sh/docs/intro/install/), or point {HELM_ENV} at a helm binary"
            )),
            Error::Owned { release, .. } => {
                let key = Kind::ALL
                    .iter()
                    .find(|k| k.release() == release.name)
                    .map_or("<addon>", |k| k.key());
                Some(format!(
                    "two ways out: adopt it, so that the release manages it from now on \
                     (`platformctl up --adopt` gives it Helm's label \
                     app.kubernetes.io/managed-by=Helm and the annotations \
                     meta.helm.sh/release-name={} and meta.helm.sh/release-namespace={}); or \
                     turn the addon off (`addons.{key}.enabled: false` in platform.yaml) and keep \
                     what is installed",
                    release.name, release.namespace
                ))
            }
            Error::Failed {
                target: Some(t), ..
            } => Some(format!(
                "`helm history {} -n {}` shows the release's revisions; re-running converges it again",
                t.name, t.namespace
            )),
            _ => None,
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::TimedOut { .. })
    }

    /// helm could not reach the API server: it says so (`Kubernetes cluster unreachable`,
    /// helm v3 pkg/kube), or its client's dial or read failed under another message.
    pub fn is_unreachable(&self) -> bool {
        const SIGNS: [&str; 5] = [
            "Kubernetes cluster unreachable",
            "connect: connection refused",
            "connection reset by peer",
            "i/o timeout",
            "client connection lost",
        ];
        matches!(self, Error::Failed { stderr, .. } if SIGNS.iter().any(|s| stderr.contains(s)))
    }
}
