//! The cluster as it is now, as far as doctor sees it without the Kubernetes API: the minikube
//! profile's state and node count, or the kubeconfig context of an existing cluster.

use ::kube::config::KubeconfigError;

use super::{Env, Finding};
use crate::cluster::existing;
use crate::cluster::minikube::{self, Minikube, ProfileStatus};
use crate::config::Cluster;

/// The profile as it is now: absent before the first `up`, running with the configured node
/// count after it.
pub async fn profile(cluster: &Cluster, mk: &Minikube) -> Finding {
    const CHECK: &str = "cluster/profile";
    let p = &cluster.profile;
    let status = match mk.status(p).await {
        Ok(s) => s,
        Err(e) => {
            return Finding::warn(
                CHECK,
                format!("minikube profile `{p}`: cannot read its status: {e}"),
                format!("run `minikube status -p {p}` to see what minikube says"),
            );
        }
    };
    if let Err(e) = minikube::check_node_count(p, &status, cluster.nodes) {
        return Finding::error(CHECK, e.to_string(), e.hint().unwrap_or_default());
    }
    match status {
        ProfileStatus::Absent => Finding::ok(
            CHECK,
            format!(
                "minikube profile `{p}` does not exist yet: `platformctl up` creates it with {} \
                 node{}",
                cluster.nodes,
                if cluster.nodes == 1 { "" } else { "s" }
            ),
        ),
        ProfileStatus::Running { nodes } => Finding::ok(
            CHECK,
            format!(
                "minikube profile `{p}` is running: {}",
                nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        ProfileStatus::Stopped { .. } => Finding::warn(
            CHECK,
            format!("minikube profile `{p}` is stopped"),
            "`platformctl up` starts it".into(),
        ),
        ref s @ ProfileStatus::Degraded { ref reason, .. } => {
            if s.only_kubeconfig_stale() {
                Finding::warn(
                    CHECK,
                    format!(
                        "minikube profile `{p}` runs, but the kubeconfig points elsewhere: {reason}"
                    ),
                    format!("`minikube update-context -p {p}` (`platformctl up` does it too)"),
                )
            } else {
                Finding::error(
                    CHECK,
                    format!("minikube profile `{p}` is degraded: {reason}"),
                    format!(
                        "`platformctl up` restarts it; if it stays so, see `minikube logs -p {p}`"
                    ),
                )
            }
        }
    }
}

pub fn context(cluster: &Cluster, env: &Env) -> Finding {
    const CHECK: &str = "cluster/context";
    let files = env
        .kubeconfig
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let kubeconfig = match existing::read(&env.kubeconfig) {
        Ok(k) => k,
        Err(e) => {
            let message = match &e {
                crate::cluster::Error::Kubeconfig(KubeconfigError::ReadConfig(io, path))
                    if io.kind() == std::io::ErrorKind::NotFound =>
                {
                    format!("no kubeconfig at `{}`", path.display())
                }
                crate::cluster::Error::Kubeconfig(KubeconfigError::FindPath) => {
                    "no kubeconfig: KUBECONFIG is not set and there is no home directory".into()
                }
                _ => {
                    let cause = std::error::Error::source(&e)
                        .map(|s| format!(": {s}"))
                        .unwrap_or_default();
                    format!("{e} (`{files}`){cause}")
                }
            };
            return Finding::error(
                CHECK,
                message,
                "point KUBECONFIG at the kubeconfig of the cluster to use".into(),
            );
        }
    };
    match existing::select(&kubeconfig, cluster.context.as_deref()) {
        Ok(name) => Finding::ok(CHECK, format!("kubeconfig context `{name}`")),
        Err(e) => Finding::error(CHECK, e.to_string(), e.hint().unwrap_or_default()),
    }
}
