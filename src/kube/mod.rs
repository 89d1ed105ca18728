//! Talking to a Kubernetes cluster: the client for a kubeconfig context, manifests, discovery, the
//! server-side apply engine, watch-based waits and port-forwards to pods.
//!
//! What to apply and in which step is decided by `up`; this module only knows how.

pub mod apply;
pub mod discovery;
pub mod manifest;
pub mod portforward;
pub mod wait;

use std::path::PathBuf;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use apply::{Action, Applied, Applier, Options};
pub use manifest::{Key, Manifest};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cause is in the message, once.
    #[error("{}", kubeconfig_problem(.problem))]
    Kubeconfig {
        path: Option<PathBuf>,
        // Not `source`: thiserror would chain it, and its text would be said twice.
        problem: kube::config::KubeconfigError,
    },
    #[error("cannot build a client for {}", context.as_deref().map(|c| format!("context `{c}`")).unwrap_or_else(|| "the current context".into()))]
    Client {
        context: Option<String>,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Kubeconfig { .. } => Some(KUBECONFIG_HINT.into()),
            Error::Client { .. } => None,
        }
    }
}

/// What to do when there is no kubeconfig to read.
pub const KUBECONFIG_HINT: &str = "no cluster yet? `platformctl up` creates one; `platformctl \
     doctor` checks the kubeconfig and its context (KUBECONFIG, else ~/.kube/config)";

/// A kubeconfig that cannot be read, said once: kube's own text quotes the path twice and
/// repeats its cause.
pub fn kubeconfig_problem(e: &kube::config::KubeconfigError) -> String {
    use kube::config::KubeconfigError as K;
    match e {
        K::ReadConfig(io, path) if io.kind() == std::io::ErrorKind::NotFound => {
            format!("no kubeconfig at `{}`", path.display())
        }
        K::ReadConfig(io, path) => {
            format!("cannot read the kubeconfig `{}`: {io}", path.display())
        }
        K::FindPath => "no kubeconfig: KUBECONFIG is not set and there is no home directory".into(),
        other => format!("cannot read the kubeconfig: {other}"),
    }
}

/// An Argo kind (`argoproj.io/v1alpha1`: Application, AppProject, Rollout), addressed without a
/// discovery request: its CRD is pinned.
pub fn argo(kind: &str, plural: &str) -> kube::discovery::ApiResource {
    kube::discovery::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind),
        plural,
    )
}

/// An object as JSON with the apiVersion and kind it was asked for. The readiness rules go by
/// them, and the API server leaves them out of list items of built-in kinds (a watcher's first
/// list included): a Deployment read that way would match no rule.
pub fn typed_value(
    object: &kube::api::DynamicObject,
    api_version: &str,
    kind: &str,
) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    value["apiVersion"] = api_version.into();
    value["kind"] = kind.into();
    value
}

/// A client for the cluster a driver resolved.
pub async fn client_for(target: &crate::cluster::Target) -> Result<Client, Error> {
    client(target.kubeconfig.as_ref(), target.context.as_deref()).await
}

/// A client for `context` of the kubeconfig at `path` (or `KUBECONFIG`/`~/.kube/config`).
pub async fn client(path: Option<&PathBuf>, context: Option<&str>) -> Result<Client, Error> {
    let kubeconfig = match path {
        Some(p) => Kubeconfig::read_from(p),
        None => Kubeconfig::read(),
    }
    .map_err(|problem| Error::Kubeconfig {
        path: path.cloned(),
        problem,
    })?;
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| Error::Client {
            context: context.map(str::to_string),
            source: kube::Error::InferKubeconfig(source),
        })?;
    Client::try_from(config).map_err(|source| Error::Client {
        context: context.map(str::to_string),
        source,
    })
}
