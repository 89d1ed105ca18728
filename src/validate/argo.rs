//! Argo CD Applications Synced and Healthy; Rollouts Healthy, or paused where their strategy
//! waits (a blue-green rollout without auto-promotion at its gate, a canary at a pause step
//! without a duration).

use kube::Client;
use serde_json::Value;

use super::{Check, Error, Rendered, Verdict, get, resource_of};
use crate::ready::{self, Readiness};

pub(super) async fn applications(
    client: &Client,
    rendered: &Rendered,
) -> Result<Vec<Check>, Error> {
    let asks = rendered.kind("Application").map(|(env, m)| async move {
        let ns = m.namespace().unwrap_or("argocd");
        let ar = resource_of(m);
        let live = get(client, &ar, ns, m.name()).await?;
        let Some(app) = live else {
            return Ok(Check::new(
                "application",
                m.name(),
                env,
                Verdict::Fail,
                format!(
                    "Application `{}` is not in namespace `{ns}` (run `platformctl up`)",
                    m.name()
                ),
            ));
        };
        let object: kube::api::DynamicObject =
            serde_json::from_value(app).map_err(|e| Error::Kube {
                what: format!("Application `{}`", m.name()),
                source: kube::Error::SerdeError(e),
            })?;
        let row = crate::status::app_row(&object, &ar);
        let (verdict, message) = if row.sync == "Synced" && row.health == "Healthy" {
            (Verdict::Pass, "Synced and Healthy".to_string())
        } else if row.message.is_empty() {
            (
                Verdict::Fail,
                format!("sync {}, health {}", row.sync, row.health),
            )
        } else {
            (Verdict::Fail, row.message)
        };
        Ok::<Check, Error>(Check::new("application", m.name(), env, verdict, message))
    });
    futures::future::try_join_all(asks).await
}

pub(super) async fn rollouts(client: &Client, rendered: &Rendered) -> Result<Vec<Check>, Error> {
    let asks = rendered.kind("Rollout").map(|(env, m)| async move {
        let ns = m.namespace().unwrap_or("default");
        let object = format!("{ns}/{}", m.name());
        let live = get(client, &resource_of(m), ns, m.name()).await?;
        let Some(r) = live else {
            return Ok(Check::new(
                "rollout",
                &object,
                env,
                Verdict::Fail,
                format!("Rollout `{object}` is not in the cluster (has its Application synced?)"),
            ));
        };
        let (verdict, message) = rollout_verdict(&r);
        Ok::<Check, Error>(Check::new("rollout", &object, env, verdict, message))
    });
    futures::future::try_join_all(asks).await
}

/// Healthy passes; a pause the strategy asks for passes, saying what it waits for; anything
/// else fails with the controller's message.
pub(super) fn rollout_verdict(r: &Value) -> (Verdict, String) {
    let row = crate::status::rollout_row("", r);
    let ready = format!("{}/{} ready", row.ready_replicas, row.replicas);
    match ready::of(r) {
        Some(Readiness::Ready) | None => (Verdict::Pass, format!("Healthy, {ready}")),
        Some(Readiness::Paused(m)) => match strategy_pause(r) {
            Some(why) => (Verdict::Pass, format!("{why}, {ready}")),
            None => (
                Verdict::Fail,
                format!("Paused ({m}), not by its strategy, {ready}"),
            ),
        },
        Some(Readiness::Waiting(m)) => (Verdict::Fail, format!("Progressing: {m}, {ready}")),
        Some(Readiness::Failed(m)) => (Verdict::Fail, format!("Degraded: {m}, {ready}")),
    }
}

/// Why a paused rollout waits by its strategy: every pause condition is one its steps or its
/// blue-green gate set (`spec.paused` set by hand is not).
fn strategy_pause(r: &Value) -> Option<String> {
    if r["spec"]["paused"] == true {
        return None;
    }
    let conditions = r["status"]["pauseConditions"].as_array()?;
    let reasons: Vec<&str> = conditions
        .iter()
        .filter_map(|c| c["reason"].as_str())
        .collect();
    if reasons.is_empty() {
        return None;
    }
    let blue_green = &r["spec"]["strategy"]["blueGreen"];
    if reasons.iter().all(|r| *r == "BlueGreenPause")
        && blue_green.is_object()
        && blue_green["autoPromotionEnabled"] == false
    {
        return Some(
            "paused at its blue-green gate: the preview waits for `promote` (autoPromotionEnabled: false)"
                .into(),
        );
    }
    if reasons.iter().all(|r| *r == "CanaryPauseStep") {
        let steps = r["spec"]["strategy"]["canary"]["steps"].as_array()?;
        let index = r["status"]["currentStepIndex"].as_u64()? as usize;
        let step = steps.get(index)?;
        if step["pause"].is_object() {
            return Some(match step["pause"]["duration"].as_str() {
                Some(d) => format!("paused at canary step {index}/{} for {d}", steps.len()),
                None => format!(
                    "paused at canary step {index}/{} (a pause without a duration waits for `promote`)",
                    steps.len()
                ),
            });
        }
    }
    None
}
