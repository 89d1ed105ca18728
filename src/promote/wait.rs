//! Following a promotion: the Application until Argo CD has synced the pushed revision, then each
//! Rollout step by step until its verdict is final. Watches only; what changes is reported
//! through a callback as it happens. The caller bounds both with its timeout and its signals.

use futures::StreamExt;
use kube::Client;
use kube::runtime::watcher;

use super::{Error, app_line};
use crate::config::Platform;
use crate::rollout::info::{Event, changes};
use crate::rollout::{self, Info, Verdict};

/// What the wait saw.
#[derive(Debug, Clone)]
pub enum Seen {
    /// The Application's state, as [`app_line`] words it.
    Application(String),
    Rollout {
        service: String,
        info: Box<Info>,
        event: Event,
    },
}

/// Until the Application `app` is Synced at `revision` with no operation running.
pub async fn synced(
    client: &Client,
    platform: &Platform,
    app: &str,
    revision: &str,
    seen: &(dyn Fn(Seen) + Sync),
) -> Result<(), Error> {
    let api = super::applications(client, platform);
    let mut events = std::pin::pin!(watcher::watch_object(api, app));
    let mut last = String::new();
    while let Some(event) = events.next().await {
        let object = match event {
            Ok(Some(o)) => o,
            Ok(None) => {
                return Err(Error::Refused(format!(
                    "the Argo CD application `{app}` is gone"
                )));
            }
            Err(e) if crate::kube::wait::transient(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => {
                return Err(Error::Refused(format!(
                    "watching the Argo CD application `{app}` failed: {e}"
                )));
            }
        };
        let data = &object.data;
        let line = app_line(data);
        if line != last {
            seen(Seen::Application(line.clone()));
            last = line;
        }
        let status = &data["status"];
        let at = status["sync"]["revision"].as_str() == Some(revision);
        let operating = status["operationState"]["phase"] == "Running";
        if at && status["sync"]["status"] == "Synced" && !operating {
            return Ok(());
        }
    }
    Err(Error::Refused(format!(
        "the watch of application `{app}` ended"
    )))
}

/// Follows the Rollout `service` in `namespace` until it is Healthy, aborted, Degraded or at a
/// gate; returns that verdict and the last view.
pub async fn rollout(
    client: &Client,
    namespace: &str,
    environment: &str,
    service: &str,
    seen: &(dyn Fn(Seen) + Sync),
) -> Result<(Verdict, Info), Error> {
    let mut rx = rollout::follow(client, namespace, service, Some(environment)).await?;
    let mut last: Option<Info> = None;
    while let Some(next) = rx.recv().await {
        let info = next?;
        for event in changes(last.as_ref(), &info) {
            seen(Seen::Rollout {
                service: service.to_string(),
                info: Box::new(info.clone()),
                event,
            });
        }
        let verdict = info.verdict();
        if !matches!(verdict, Verdict::Progressing(_)) {
            return Ok((verdict, info));
        }
        last = Some(info);
    }
    Err(Error::Refused(format!(
        "the watch of rollout `{service}` ended"
    )))
}
