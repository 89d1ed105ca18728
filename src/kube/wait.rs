//! Waits: a watch per object, the `ready` predicate re-evaluated on every change, all under one
//! timeout that, when it runs out, says what each object is still waiting for.
//!
//! A watch, not a poll: a change is seen as soon as the API server sends it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::{StreamExt, future};
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;

use super::manifest::Key;
use crate::ready::{self, Readiness};

/// One object to wait for.
#[derive(Clone)]
pub struct Target {
    pub key: Key,
    pub api: Api<DynamicObject>,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("timed out after {}: still waiting for {}", humantime(*.after), describe(.waiting))]
    TimedOut {
        after: Duration,
        /// Each object not ready yet, with what it is waiting for.
        waiting: Vec<(Key, String)>,
    },
    #[error("{key} failed: {message}")]
    Failed { key: Key, message: String },
    #[error("{key} is paused: {message}")]
    Paused { key: Key, message: String },
    #[error("watching {key} failed")]
    Watch {
        key: Key,
        #[source]
        source: watcher::Error,
    },
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn describe(waiting: &[(Key, String)]) -> String {
    waiting
        .iter()
        .map(|(k, why)| format!("{k} ({why})"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits until every target is Ready. `on_change` is called with each target's readiness as it
/// changes (for progress). A Failed or Paused target ends the wait at once with that error.
pub async fn all_ready(
    targets: Vec<Target>,
    timeout: Duration,
    on_change: &(dyn Fn(&Key, &Readiness) + Sync),
) -> Result<(), Error> {
    let last: Mutex<BTreeMap<Key, String>> = Mutex::new(
        targets
            .iter()
            .map(|t| (t.key.clone(), "not created yet".to_string()))
            .collect(),
    );
    let waits = targets.into_iter().map(|t| one(t, &last, on_change));
    match tokio::time::timeout(timeout, future::try_join_all(waits)).await {
        Ok(result) => result.map(|_| ()),
        Err(_) => Err(Error::TimedOut {
            after: timeout,
            waiting: last
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .into_iter()
                .collect(),
        }),
    }
}

/// An error the watch recovers from on its own: the API server cannot be reached, answers
/// that it is not ready or overloaded (5xx, 429) while it starts, or, back from a restart,
/// that the watch's resource version is gone (410: the watcher lists again).
pub(crate) fn transient(e: &watcher::Error) -> bool {
    let recovers = |code: u16| code == 410 || code == 429 || code >= 500;
    if let watcher::Error::WatchError(status) = e
        && recovers(status.code)
    {
        return true;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(kube::Error::Api(s)) = c.downcast_ref::<kube::Error>()
            && recovers(s.code)
        {
            return true;
        }
        cause = c.source();
    }
    crate::exit::is_unreachable(e)
}

async fn one(
    target: Target,
    last: &Mutex<BTreeMap<Key, String>>,
    on_change: &(dyn Fn(&Key, &Readiness) + Sync),
) -> Result<(), Error> {
    let Target { key, api, name } = target;
    let set = |why: Option<String>| {
        let mut map = last.lock().unwrap_or_else(|e| e.into_inner());
        match why {
            Some(w) => map.insert(key.clone(), w),
            None => map.remove(&key),
        };
    };
    let mut events = std::pin::pin!(watcher::watch_object(api, &name));
    let mut previous: Option<Readiness> = None;
    while let Some(event) = events.next().await {
        // The API server went away (a restart, a lost connection): the watcher re-lists when
        // it is back, so the wait rides it out under its timeout, saying so meanwhile.
        // Anything else (forbidden, a kind not served) ends the wait at once.
        let object = match event {
            Ok(object) => object,
            Err(e) if transient(&e) => {
                set(Some(format!("cannot reach the API server: {e}")));
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
            Err(source) => {
                return Err(Error::Watch {
                    key: key.clone(),
                    source,
                });
            }
        };
        let readiness = match object {
            None => Readiness::Waiting("not created yet".into()),
            Some(o) => ready::of(&super::typed_value(&o, &key.api_version, &key.kind))
                .unwrap_or(Readiness::Ready),
        };
        if previous.as_ref() != Some(&readiness) {
            on_change(&key, &readiness);
            previous = Some(readiness.clone());
        }
        match readiness {
            Readiness::Ready => {
                set(None);
                return Ok(());
            }
            Readiness::Waiting(why) => set(Some(why)),
            Readiness::Paused(message) => return Err(Error::Paused { key, message }),
            Readiness::Failed(message) => return Err(Error::Failed { key, message }),
        }
    }
    // The watcher retries on its own and never ends; if it did, the timeout reports it.
    future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_rides_out_a_restarting_api_server_and_stops_on_anything_else() {
        let status = |code: u16| {
            let mut s = kube::core::Status::failure("x", "y");
            s.code = code;
            watcher::Error::WatchError(s.boxed())
        };
        // Back from a restart: the resource version expired; starting: 503; overloaded: 429.
        for code in [410, 503, 500, 429] {
            assert!(transient(&status(code)), "{code}");
        }
        for code in [403, 404, 400] {
            assert!(!transient(&status(code)), "{code}");
        }
    }

    #[test]
    fn a_timeout_says_what_each_object_waits_for() {
        let key = |kind: &str, name: &str| Key {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: kind.into(),
            namespace: Some("argocd".into()),
            name: name.into(),
        };
        let err = Error::TimedOut {
            after: Duration::from_secs(300),
            waiting: vec![
                (
                    key("Application", "shop-dev"),
                    "sync status OutOfSync".into(),
                ),
                (key("Application", "shop-prod"), "health Progressing".into()),
            ],
        };
        assert_eq!(
            err.to_string(),
            "timed out after 5 min: still waiting for Application `argocd/shop-dev` (sync status OutOfSync); Application `argocd/shop-prod` (health Progressing)"
        );
    }
}
