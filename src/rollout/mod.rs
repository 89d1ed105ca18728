//! Argo Rollouts as platformctl operates them: what a Rollout is doing ([`info`]), the changes the
//! kubectl plugin makes to it ([`actions`]), and a watch that reports every change of the Rollout,
//! its ReplicaSets and its AnalysisRuns as it happens ([`follow`]). Reads and patches only:
//! printing is the CLI's, and the Git side of a change (what Argo CD syncs) is `promote`'s.

pub mod actions;
pub mod info;

use std::collections::BTreeMap;

use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

pub use actions::{Action, Plan};
pub use info::{Info, Phase, Snapshot, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rollout `{name}` not found in namespace `{namespace}`")]
    NotFound { name: String, namespace: String },
    #[error("cannot {what}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("watching rollout `{name}` failed")]
    Watch {
        name: String,
        #[source]
        source: watcher::Error,
    },
    /// The rollout cannot do what was asked (no such revision, nothing to go back to).
    #[error("{0}")]
    Refused(String),
}

impl Error {
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NotFound { .. } => Some(
                "is the environment deployed? `platformctl status` lists the rollouts Argo CD has synced"
                    .into(),
            ),
            _ => None,
        }
    }
}

fn value<K: serde::Serialize>(object: &K) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

fn rollout_value(o: &DynamicObject) -> Value {
    crate::kube::typed_value(o, "argoproj.io/v1alpha1", "Rollout")
}

fn owned_by(object: &Value, uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
}

fn selector(rollout: &Value) -> String {
    rollout["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn analysis_runs(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &crate::kube::argo("AnalysisRun", "analysisruns"),
    )
}

/// The Rollout `name` in `namespace`, the ReplicaSets it controls and the AnalysisRuns it owns.
pub async fn snapshot(
    client: &Client,
    namespace: &str,
    name: &str,
    environment: Option<&str>,
) -> Result<Snapshot, Error> {
    let api = actions::api(client, namespace);
    let rollout = match api.get_opt(name).await {
        Ok(Some(r)) => rollout_value(&r),
        Ok(None) => {
            return Err(Error::NotFound {
                name: name.into(),
                namespace: namespace.into(),
            });
        }
        Err(source) => {
            return Err(Error::Api {
                what: format!("read rollout `{name}` in namespace `{namespace}`"),
                source,
            });
        }
    };
    let uid = rollout["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let rs_api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let ar_api = analysis_runs(client, namespace);
    let (by_selector, all) = (
        ListParams::default().labels(&selector(&rollout)),
        ListParams::default(),
    );
    let (sets, runs) = tokio::join!(rs_api.list(&by_selector), ar_api.list(&all));
    let sets = sets.map_err(|source| Error::Api {
        what: format!("list the ReplicaSets of rollout `{name}`"),
        source,
    })?;
    let runs = runs.map_err(|source| Error::Api {
        what: format!("list the AnalysisRuns of rollout `{name}`"),
        source,
    })?;
    Ok(Snapshot {
        environment: environment.map(str::to_string),
        replica_sets: sets
            .items
            .iter()
            .map(value)
            .filter(|rs| owned_by(rs, &uid))
            .collect(),
        analysis_runs: runs
            .items
            .iter()
            .map(value)
            .filter(|a| owned_by(a, &uid))
            .collect(),
        rollout,
    })
}

/// Where a watched object went.
enum Change {
    Rollout(watcher::Event<DynamicObject>),
    ReplicaSet(Box<watcher::Event<ReplicaSet>>),
    AnalysisRun(watcher::Event<DynamicObject>),
}

/// The objects one watch has seen: each map complete once its list has been read.
#[derive(Default)]
struct Seen {
    objects: BTreeMap<String, Value>,
    listing: Option<BTreeMap<String, Value>>,
    listed: bool,
}

impl Seen {
    fn apply<K: serde::Serialize + kube::Resource>(&mut self, event: watcher::Event<K>) {
        use watcher::Event as E;
        let key = |o: &K| o.meta().name.clone().unwrap_or_default();
        match event {
            E::Init => self.listing = Some(BTreeMap::new()),
            E::InitApply(o) => {
                if let Some(l) = self.listing.as_mut() {
                    l.insert(key(&o), value(&o));
                }
            }
            E::InitDone => {
                self.objects = self.listing.take().unwrap_or_default();
                self.listed = true;
            }
            E::Apply(o) => {
                self.objects.insert(key(&o), value(&o));
            }
            E::Delete(o) => {
                self.objects.remove(&key(&o));
            }
        }
    }
}

/// Follows the Rollout `name`: an [`Info`] first, then one each time what it shows changes, as
/// the watches of the Rollout, its ReplicaSets and its AnalysisRuns report it (no polling). The
/// watches ride out an API server that goes away; another error ends them, reported last. Ends
/// when the receiver is dropped.
pub async fn follow(
    client: &Client,
    namespace: &str,
    name: &str,
    environment: Option<&str>,
) -> Result<tokio::sync::mpsc::Receiver<Result<Info, Error>>, Error> {
    // The selector of its ReplicaSets comes from the Rollout: read it once first.
    let first = snapshot(client, namespace, name, environment).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let rollouts = watcher::watcher(
        actions::api(client, namespace),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .map(|e| e.map(Change::Rollout));
    let sets = watcher::watcher(
        Api::<ReplicaSet>::namespaced(client.clone(), namespace),
        watcher::Config::default().labels(&selector(&first.rollout)),
    )
    .default_backoff()
    .map(|e| e.map(|e| Change::ReplicaSet(Box::new(e))));
    let runs = watcher::watcher(analysis_runs(client, namespace), watcher::Config::default())
        .default_backoff()
        .map(|e| e.map(Change::AnalysisRun));
    let (name, environment) = (name.to_string(), environment.map(str::to_string));
    tokio::spawn(async move {
        let mut changes = stream::select_all([rollouts.boxed(), sets.boxed(), runs.boxed()]);
        let mut last = Info::of(&first);
        if tx.send(Ok(last.clone())).await.is_err() {
            return;
        }
        let (mut rollout, mut replica_sets, mut runs) =
            (Seen::default(), Seen::default(), Seen::default());
        while let Some(change) = changes.next().await {
            match change {
                Ok(Change::Rollout(e)) => rollout.apply(e),
                Ok(Change::ReplicaSet(e)) => replica_sets.apply(*e),
                Ok(Change::AnalysisRun(e)) => runs.apply(e),
                Err(e) if crate::kube::wait::transient(&e) => continue,
                Err(source) => {
                    let _ = tx.send(Err(Error::Watch { name, source })).await;
                    return;
                }
            }
            if !(rollout.listed && replica_sets.listed && runs.listed) {
                continue;
            }
            let Some(r) = rollout.objects.get(&name) else {
                let _ = tx
                    .send(Err(Error::NotFound {
                        name: name.clone(),
                        namespace: first.rollout["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    }))
                    .await;
                return;
            };
            let mut r = r.clone();
            r["apiVersion"] = "argoproj.io/v1alpha1".into();
            r["kind"] = "Rollout".into();
            let uid = r["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let snapshot = Snapshot {
                environment: environment.clone(),
                replica_sets: replica_sets
                    .objects
                    .values()
                    .filter(|rs| owned_by(rs, &uid))
                    .cloned()
                    .collect(),
                analysis_runs: runs
                    .objects
                    .values()
                    .filter(|a| owned_by(a, &uid))
                    .cloned()
                    .collect(),
                rollout: r,
            };
            let info = Info::of(&snapshot);
            if info != last {
                last = info.clone();
                if tx.send(Ok(info)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// The Argo CD Application that deploys this object, from the tracking annotation Argo CD v3
/// writes by default (`<app>:<group>/<kind>:<namespace>/<name>`).
pub fn managed_by(object: &Value) -> Option<String> {
    object["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"]
        .as_str()
        .and_then(|id| id.split(':').next())
        .filter(|app| !app.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
