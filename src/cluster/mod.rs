//! Cluster drivers: where the platform runs, and how platformctl reaches it.
//!
//! `minikube` creates, starts and inspects a local profile by running the `minikube` binary;
//! `existing` resolves a context of any kubeconfig. Both end in a [`Target`]: the kubeconfig
//! and context the rest of platformctl connects with. This module owns cluster lifecycle and
//! the minikube command lines; it does not talk to the Kubernetes API (that is `kube`), install
//! anything into the cluster, print, or know about the command line.

pub mod existing;
pub mod minikube;
pub(crate) mod process;

use std::path::PathBuf;

use crate::config::Cluster;
pub use crate::config::Driver;

/// Where the platform runs: what a Kubernetes client needs to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// An explicit kubeconfig file; `None` means the standard loading rules (`KUBECONFIG`,
    /// then `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// The context to use; `None` means the kubeconfig's current context.
    pub context: Option<String>,
    pub driver: Driver,
}

/// A cluster made to run: how to reach it, and what had to be done for that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    pub target: Target,
    /// `None` when it already ran as configured; else what was done (`minikube start`, ...).
    pub change: Option<String>,
}

/// Makes the configured cluster exist and run, and says how to reach it.
///
/// With `driver: minikube` this starts or creates the profile (see [`minikube::Minikube::ensure`]);
/// with `driver: existing` it only checks that the context is in the kubeconfig.
pub async fn ensure(cluster: &Cluster) -> Result<Ensured, Error> {
    match cluster.driver {
        Driver::Minikube => minikube::Minikube::from_env().ensure(cluster).await,
        Driver::Existing => Ok(Ensured {
            target: existing::resolve(cluster.context.as_deref())?,
            change: None,
        }),
    }
}

/// How to reach the configured cluster without starting or creating anything (for `status`,
/// `down` and steps run with `--only`): minikube's context is its profile name.
pub fn locate(cluster: &Cluster) -> Result<Target, Error> {
    match cluster.driver {
        Driver::Minikube => Ok(Target {
            kubeconfig: None,
            context: Some(cluster.profile.clone()),
            driver: Driver::Minikube,
        }),
        Driver::Existing => existing::resolve(cluster.context.as_deref()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program could not be started at all (usually: not installed).
    #[error("cannot run `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The program ran and failed; `output` is the tail of what it printed.
    #[error("`{command}` failed ({})\n{output}", exit_text(*.code))]
    Command {
        command: String,
        code: Option<i32>,
        output: String,
    },
    #[error("`{command}` did not finish within {seconds} s")]
    TimedOut { command: String, seconds: u64 },
    #[error("cannot understand the output of `{command}`: {reason}")]
    Parse { command: String, reason: String },
    #[error(
        "minikube profile `{profile}` has {actual} node{}, but platform.yaml asks for {wanted}",
        if *.actual == 1 { "" } else { "s" }
    )]
    NodeCount {
        profile: String,
        actual: usize,
        wanted: u32,
    },
    #[error("minikube profile `{profile}` is not running after `minikube start`: {reason}")]
    NotRunning { profile: String, reason: String },
    #[error(
        "image `{image}` is not on node{} {} after `minikube image build`",
        if .nodes.len() == 1 { "" } else { "s" },
        .nodes.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    )]
    ImageMissing {
        profile: String,
        image: String,
        nodes: Vec<String>,
    },
    /// The cause is in the message, once (kube's own text quotes the path a second time).
    #[error("{}", crate::kube::kubeconfig_problem(.0))]
    Kubeconfig(::kube::config::KubeconfigError),
    #[error("context `{context}` is not in the kubeconfig{}", available_text(.available))]
    ContextNotFound {
        context: String,
        available: Vec<String>,
    },
    #[error("the kubeconfig sets no current context{}", available_text(.available))]
    NoCurrentContext { available: Vec<String> },
}

impl Error {
    /// Whether the user's input (platform.yaml, flags) is what has to change: exit code 2.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::NodeCount { .. }
                | Error::ContextNotFound { .. }
                | Error::NoCurrentContext { .. }
        )
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Kubeconfig(_) => Some(crate::kube::KUBECONFIG_HINT.into()),
            Error::Spawn { program, source } if source.kind() == std::io::ErrorKind::NotFound => {
                Some(format!(
                    "install it (minikube: https://minikube.sigs.k8s.io/docs/start/), or set \
                     PLATFORMCTL_MINIKUBE to its path; `platformctl doctor` checks every tool \
                     (looked for `{program}`)"
                ))
            }
            Error::NodeCount {
                profile,
                actual,
                wanted,
            } => Some(if (*wanted as usize) > *actual {
                format!(
                    "minikube cannot change the node count of an existing profile on start: \
                     add nodes with `minikube node add -p {profile}` ({} times), or recreate it \
                     with `minikube delete -p {profile}` and run `platformctl up` again, or set \
                     `cluster.nodes: {actual}`",
                    *wanted as usize - actual
                )
            } else {
                format!(
                    "remove nodes with `minikube node delete <node> -p {profile}`, or recreate \
                     the profile with `minikube delete -p {profile}` and run `platformctl up` \
                     again, or set `cluster.nodes: {actual}`"
                )
            }),
            Error::NotRunning { profile, .. } => Some(format!(
                "see `minikube logs -p {profile}`; `minikube delete -p {profile}` and \
                 `platformctl up` start from scratch"
            )),
            Error::ImageMissing { profile, nodes, .. } => Some(format!(
                "minikube reports success when the build fails on some nodes, and a second \
                 build there failed too; pods scheduled on {} would sit in ImagePullBackOff. \
                 What went wrong is in `minikube logs -p {profile} -n {}`; `platformctl up` \
                 builds only what is missing when run again",
                if nodes.len() == 1 { "it" } else { "them" },
                nodes[0]
            )),
            Error::ContextNotFound { .. } => Some(
                "pass `--context` or set `cluster.context` to one of the contexts listed, or \
                 point KUBECONFIG at the kubeconfig that has it"
                    .into(),
            ),
            Error::NoCurrentContext { .. } => Some(
                "pass `--context`, set `cluster.context`, or run `kubectl config use-context NAME`"
                    .into(),
            ),
            _ => None,
        }
    }
}

fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".into(),
    }
}

fn available_text(available: &[String]) -> String {
    if available.is_empty() {
        " (it has no contexts)".into()
    } else {
        format!(" (available: {})", available.join(", "))
    }
}
