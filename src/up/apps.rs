//! `up`'s wait on the Argo CD Applications: each Synced at the commit the GitOps source has (a
//! refresh asked for where it is not, so that a push is seen at once rather than at Argo CD's
//! next poll), then Healthy. An Application is Suspended while one of its Rollouts pauses; that
//! is a wait for a person only when the Rollout is at a gate (a pause without duration, the
//! blue-green gate): a timed canary pause is waited out. Watches, no polling; the caller bounds
//! it with `up`'s timeout.

use futures::StreamExt;
use kube::Client;
use kube::runtime::watcher;

use super::{Progress, Step};
use crate::config::Platform;
use crate::kube::{Manifest, wait};
use crate::promote::{self, wait::Seen};
use crate::ready::{self, Readiness};
use crate::rollout::{self, Info, Verdict};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub async fn synced_at(
    platform: &Platform,
    client: &Client,
    apps: &[Manifest],
    revision: &str,
    progress: &dyn Progress,
) -> Result<(), BoxError> {
    let api = promote::applications(client, platform);
    for m in apps {
        let live = api.get_opt(m.name()).await?;
        if live.is_some_and(|a| a.data["status"]["sync"]["revision"] == revision) {
            continue;
        }
        promote::git::refresh(client, platform, m.name()).await?;
    }
    for m in apps {
        promote::wait::synced(client, platform, m.name(), revision, &|seen| {
            if let Seen::Application(line) = seen {
                progress.message(Step::Wait, &format!("application {}: {line}", m.name()));
            }
        })
        .await?;
    }
    Ok(())
}

/// Until every Application is Synced and Healthy; a failed one, or one whose Rollout waits at a
/// gate, ends the wait with that error.
pub async fn healthy(
    platform: &Platform,
    client: &Client,
    apps: &[Manifest],
    progress: &dyn Progress,
) -> Result<(), BoxError> {
    for m in apps {
        one(platform, client, m, progress).await?;
    }
    Ok(())
}

async fn one(
    platform: &Platform,
    client: &Client,
    m: &Manifest,
    progress: &dyn Progress,
) -> Result<(), BoxError> {
    let key = m.key();
    let namespace = m.object["spec"]["destination"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let env = platform
        .environments
        .iter()
        .find(|e| e.namespace == namespace)
        .map(|e| e.name.clone());
    let api = promote::applications(client, platform);
    let mut events = std::pin::pin!(watcher::watch_object(api, m.name()));
    let mut last: Option<Readiness> = None;
    while let Some(event) = events.next().await {
        let object = match event {
            Ok(Some(o)) => o,
            Ok(None) => continue,
            Err(e) if wait::transient(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
            Err(source) => return Err(Box::new(wait::Error::Watch { key, source })),
        };
        let value = crate::kube::typed_value(&object, "argoproj.io/v1alpha1", "Application");
        let readiness = ready::of(&value).unwrap_or(Readiness::Ready);
        if last.as_ref() != Some(&readiness) {
            progress.message(Step::Wait, &format!("{key}: {readiness:?}"));
            last = Some(readiness.clone());
        }
        match readiness {
            Readiness::Ready => return Ok(()),
            Readiness::Waiting(_) => {}
            Readiness::Failed(message) => {
                return Err(Box::new(wait::Error::Failed { key, message }));
            }
            Readiness::Paused(message) => {
                if let Some(gate) = gate(platform, client, &namespace, env.as_deref()).await? {
                    return Err(Box::new(wait::Error::Paused {
                        key,
                        message: format!("{message}: {gate}"),
                    }));
                }
            }
        }
    }
    Ok(())
}

/// The gate one of the environment's Rollouts waits at, if one does.
async fn gate(
    platform: &Platform,
    client: &Client,
    namespace: &str,
    env: Option<&str>,
) -> Result<Option<String>, BoxError> {
    for s in &platform.services {
        match rollout::snapshot(client, namespace, &s.name, env).await {
            Ok(snapshot) => {
                if let Verdict::Gate(g) = Info::of(&snapshot).verdict() {
                    return Ok(Some(g));
                }
            }
            Err(rollout::Error::NotFound { .. }) => {}
            Err(e) => return Err(Box::new(e)),
        }
    }
    Ok(None)
}
