//! Which resource serves a kind: one discovery request per group-version, cached for the run and
//! shared by concurrent appliers (the first asker fetches, the others wait for its answer).
//!
//! A group-version that is not served yet (its CRD is still being applied) is not cached as
//! missing: after the CRD phase, the next lookup asks again.

use std::collections::HashMap;
use std::sync::Arc;

use kube::Client;
use kube::core::GroupVersion;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use tokio::sync::{Mutex, OnceCell};

/// What the apply engine needs to address a kind.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

type Entry = Arc<OnceCell<Option<Vec<(ApiResource, ApiCapabilities)>>>>;

#[derive(Clone, Default)]
pub struct Discovery {
    groups: Arc<Mutex<HashMap<(String, String), Entry>>>,
}

impl Discovery {
    /// The resource for `kind` in `group/version`; `Ok(None)` when the API server does not serve
    /// that kind (yet).
    pub async fn resolve(
        &self,
        client: &Client,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Result<Option<Resolved>, kube::Error> {
        let key = (group.to_string(), version.to_string());
        let entry = {
            let mut groups = self.groups.lock().await;
            groups.entry(key.clone()).or_default().clone()
        };
        let resources = entry
            .get_or_try_init(|| async {
                let gv = GroupVersion::gv(group, version);
                match kube::discovery::pinned_group(client, &gv).await {
                    Ok(g) => Ok(Some(g.versioned_resources(version))),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        let Some(resources) = resources else {
            // Not served: forget the answer so a later lookup (after CRDs) asks again.
            self.groups.lock().await.remove(&key);
            return Ok(None);
        };
        Ok(resources
            .iter()
            .find(|(ar, _)| ar.kind == kind)
            .map(|(ar, caps)| Resolved {
                resource: ar.clone(),
                namespaced: caps.scope == Scope::Namespaced,
            }))
    }

    /// Forgets what is known about `group` (all versions): its CRDs have just changed.
    pub async fn invalidate(&self, group: &str) {
        self.groups.lock().await.retain(|(g, _), _| g != group);
    }
}
