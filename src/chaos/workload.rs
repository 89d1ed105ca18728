//! The target workload as the experiment watches it: the service's pods in its environment
//! (their UIDs, readiness and since when), against the replicas its Rollout wants.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

/// One pod, as seen at one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    pub name: String,
    pub uid: String,
    pub ready: bool,
    /// Being deleted (a deletion timestamp).
    pub terminating: bool,
}

/// The service's pods at one look, by UID.
pub async fn pods(
    client: &kube::Client,
    namespace: &str,
    service: &str,
) -> Result<BTreeMap<String, PodState>, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={service}")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|p| {
            let uid = p.metadata.uid.clone()?;
            let terminating = p.metadata.deletion_timestamp.is_some();
            let phase_ok = p
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|ph| ph == "Running");
            let ready = phase_ok && !terminating && crate::kube::portforward::is_ready(&p);
            Some((
                uid.clone(),
                PodState {
                    name: p.metadata.name.unwrap_or_default(),
                    uid,
                    ready,
                    terminating,
                },
            ))
        })
        .collect())
}

/// The replicas the service's Rollout wants (`spec.replicas`, 1 when unset, as the controller
/// defaults it), and its `status.readyReplicas`.
pub async fn rollout_replicas(
    client: &kube::Client,
    namespace: &str,
    service: &str,
) -> Result<(u64, u64), kube::Error> {
    let api = crate::rollout::actions::api(client, namespace);
    let r = api.get(service).await?;
    let desired = r.data["spec"]["replicas"].as_u64().unwrap_or(1);
    let ready = r.data["status"]["readyReplicas"].as_u64().unwrap_or(0);
    Ok((desired, ready))
}
