//! `down --keep-cluster`: removes exactly what `up` created, in the order that lets each owner
//! clean up after itself: the platform's Argo CD applications first (their finalizer has Argo CD
//! delete what they deployed), then the projects, then the Helm releases, then the namespaces
//! and Secrets carrying `up`'s labels. Deleting the whole minikube profile is the cluster
//! driver's job, not this module's.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use serde::Serialize;

use crate::addons::{self, Helm, Removal};
use crate::config::Platform;

#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot delete {what}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Helm(#[from] addons::Error),
    #[error("{what}s still exist after {} s: {}", timeout.as_secs(), names.join(", "))]
    Stuck {
        what: &'static str,
        names: Vec<String>,
        timeout: Duration,
    },
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Stuck { what: "namespace", names, .. } => Some(format!(
                "a namespace stays Terminating while something in it keeps a finalizer or an \
                 API it serves is unavailable: see `kubectl get namespace {} -o yaml` \
                 (status.conditions); `platformctl down --keep-cluster` may be run again",
                names.first().map_or("NAME", String::as_str)
            )),
            Error::Stuck { .. } => Some(
                "Argo CD removes an application's finalizer once it has deleted what the application deployed; is its application controller running? `platformctl down --keep-cluster` may be run again".into(),
            ),
            _ => None,
        }
    }
}

fn selector(platform: &Platform) -> String {
    format!(
        "app.kubernetes.io/managed-by=platformctl,app.kubernetes.io/part-of={}",
        platform.metadata.name
    )
}

/// Removes what `up` created; `on_removed` hears of each thing as it goes.
pub async fn keep_cluster(
    platform: &Platform,
    client: &Client,
    helm: &Helm,
    timeout: Duration,
    on_removed: &(dyn Fn(&Removed) + Sync),
) -> Result<Vec<Removed>, Error> {
    let mut removed = Vec::new();
    let mut note = |kind: &str, name: String| {
        let r = Removed {
            kind: kind.to_string(),
            name,
        };
        on_removed(&r);
        removed.push(r);
    };
    let argocd_ns = addons::namespace(platform, addons::Kind::Argocd);
    let lp = ListParams::default().labels(&selector(platform));
    // Applications, then projects: each waited until gone (finalizers run).
    for (kind, plural) in [
        ("Application", "applications"),
        ("AppProject", "appprojects"),
    ] {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), argocd_ns, &crate::kube::argo(kind, plural));
        let items = match api.list(&lp).await {
            Ok(l) => l.items,
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(source) => {
                return Err(Error::Kube {
                    what: format!("{kind}s"),
                    source,
                });
            }
        };
        for item in &items {
            let name = item.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::foreground()).await {
                Ok(_) => note(kind, format!("{argocd_ns}/{name}")),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(source) => {
                    return Err(Error::Kube {
                        what: format!("{kind} `{name}`"),
                        source,
                    });
                }
            }
        }
        gone(&api, &lp, kind, timeout).await?;
    }
    for release in addons::plan(platform, &addons::Facts::default()) {
        if helm.uninstall(&release.name, &release.namespace).await? == Removal::Uninstalled {
            note(
                "HelmRelease",
                format!("{}/{}", release.namespace, release.name),
            );
        }
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let list = namespaces.list(&lp).await.map_err(|source| Error::Kube {
        what: "namespaces".into(),
        source,
    })?;
    let mut deleted = Vec::new();
    for ns in list.items {
        let name = ns.metadata.name.unwrap_or_default();
        if crate::up::SYSTEM_NAMESPACES.contains(&name.as_str()) {
            continue;
        }
        match namespaces.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                deleted.push(name.clone());
                note("Namespace", name);
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(Error::Kube {
                    what: format!("namespace `{name}`"),
                    source,
                });
            }
        }
    }
    // As `kubectl delete` does, wait until they are gone (not only Terminating): a next `up`
    // cannot create in a namespace that is still terminating.
    gone_named(&namespaces, &lp, &deleted, "namespace", timeout).await?;
    // Secrets `up` made in namespaces that are not its own (none by default; kept for a
    // platform whose environment lives in a shared namespace).
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::all(client.clone());
    if let Ok(list) = secrets.list(&lp).await {
        for s in list.items {
            let (ns, name) = (
                s.metadata.namespace.unwrap_or_default(),
                s.metadata.name.unwrap_or_default(),
            );
            let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
            if api.delete(&name, &DeleteParams::default()).await.is_ok() {
                note("Secret", format!("{ns}/{name}"));
            }
        }
    }
    Ok(removed)
}

async fn gone(
    api: &Api<DynamicObject>,
    lp: &ListParams,
    what: &'static str,
    timeout: Duration,
) -> Result<(), Error> {
    gone_where(api, lp, |_| true, what, timeout).await
}

/// Waits until none of `names` is listed any more.
async fn gone_named<K>(
    api: &Api<K>,
    lp: &ListParams,
    names: &[String],
    what: &'static str,
    timeout: Duration,
) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    gone_where(api, lp, |n| names.iter().any(|m| m == n), what, timeout).await
}

async fn gone_where<K>(
    api: &Api<K>,
    lp: &ListParams,
    counts: impl Fn(&str) -> bool,
    what: &'static str,
    timeout: Duration,
) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let names: Vec<String> = match api.list(lp).await {
            Ok(l) => l
                .items
                .into_iter()
                .filter_map(|o| o.meta().name.clone())
                .filter(|n| counts(n))
                .collect(),
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(source) => {
                return Err(Error::Kube {
                    what: what.to_string(),
                    source,
                });
            }
        };
        if names.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Stuck {
                what,
                names,
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
