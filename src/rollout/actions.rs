//! The changes `rollout promote|abort|retry|pause|resume|undo` make, as the Argo Rollouts
//! kubectl plugin makes them (v1.9.0, `pkg/kubectl-argo-rollouts/cmd/*`): the same merge patches,
//! status ones to the `status` subresource first and to the object when the subresource is not
//! served, and undo's JSON patch replacing `/spec/template` with an older revision's. `resume` is
//! Argo CD's resource action of that name (v3.3.6, `resource_customizations/argoproj.io/Rollout/
//! actions/resume`): the plugin has none. [`plan`] is pure; [`apply`] sends what it planned.

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};

use super::Error;
use super::info::{POD_TEMPLATE_HASH, REVISION};

/// What a command asks of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Promote,
    PromoteFull,
    Abort,
    Retry,
    Pause,
    Resume,
    /// To this revision, or (0) the one before the newest.
    Undo(i64),
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::PromoteFull => "promote --full",
            Action::Abort => "abort",
            Action::Retry => "retry",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Undo(_) => "undo",
        }
    }
}

/// The patches of one action: a merge patch of `status` (through the subresource), one of the
/// spec, and the one that replaces the status patch where the subresource is not served; or
/// undo's JSON patch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub status: Option<Value>,
    pub spec: Option<Value>,
    pub unified: Option<Value>,
    pub template: Option<Value>,
    /// Set when there is nothing to change, saying why.
    pub nothing: Option<String>,
}

fn current_step(r: &Value) -> Option<u64> {
    let steps = r["spec"]["strategy"]["canary"]["steps"].as_array()?;
    if steps.is_empty() {
        return None;
    }
    Some(r["status"]["currentStepIndex"].as_u64().unwrap_or(0))
}

/// `GetCurrentCanaryStep`'s index moved one step on (never past the last).
fn next_step(r: &Value) -> Option<u64> {
    let len = r["spec"]["strategy"]["canary"]["steps"].as_array()?.len() as u64;
    current_step(r).map(|i| if i < len { i + 1 } else { i })
}

fn paused(r: &Value) -> bool {
    r["spec"]["paused"] == true
}

fn pause_conditions(r: &Value) -> bool {
    r["status"]["pauseConditions"]
        .as_array()
        .is_some_and(|p| !p.is_empty())
}

fn fully_promoted(r: &Value) -> bool {
    r["status"]["currentPodHash"] == r["status"]["stableRS"]
}

/// The patches `action` makes to the Rollout `r`; `replica_sets` (the ones it controls) for undo.
pub fn plan(action: Action, r: &Value, replica_sets: &[Value]) -> Result<Plan, Error> {
    let unpause = json!({"spec": {"paused": false}});
    let mut plan = Plan::default();
    match action {
        Action::Promote => {
            // getPatches, default branch.
            plan.unified =
                Some(json!({"spec": {"paused": false}, "status": {"pauseConditions": null}}));
            if paused(r) {
                plan.spec = Some(unpause);
            }
            let canary = r["spec"]["strategy"]["canary"].is_object();
            let inconclusive = canary
                && r["status"]["canary"]["currentStepAnalysisRunStatus"]["status"]
                    == "Inconclusive";
            if inconclusive && pause_conditions(r) && r["status"]["controllerPause"] == true {
                if let Some(i) = next_step(r) {
                    plan.status = Some(
                        json!({"status": {"pauseConditions": null, "controllerPause": false, "currentStepIndex": i}}),
                    );
                }
            } else if pause_conditions(r) {
                plan.status = Some(json!({"status": {"pauseConditions": null}}));
            } else if canary && let Some(i) = next_step(r) {
                plan.status =
                    Some(json!({"status": {"pauseConditions": null, "currentStepIndex": i}}));
                plan.unified = Some(
                    json!({"spec": {"paused": false}, "status": {"pauseConditions": null, "currentStepIndex": i}}),
                );
            }
        }
        Action::PromoteFull => {
            if paused(r) {
                plan.spec = Some(unpause);
            }
            if !fully_promoted(r) {
                plan.status = Some(json!({"status": {"promoteFull": true}}));
            }
            plan.unified =
                Some(json!({"spec": {"paused": false}, "status": {"promoteFull": true}}));
            if plan.spec.is_none() && plan.status.is_none() {
                plan.nothing = Some("it is fully promoted".into());
            }
        }
        Action::Abort => {
            plan.status = Some(json!({"status": {"abort": true}}));
            plan.unified = plan.status.clone();
        }
        Action::Retry => {
            plan.status = Some(json!({"status": {"abort": false}}));
            plan.unified = plan.status.clone();
        }
        Action::Pause => plan.spec = Some(json!({"spec": {"paused": true}})),
        Action::Resume => {
            if pause_conditions(r) {
                plan.status = Some(json!({"status": {"pauseConditions": null}}));
                plan.unified =
                    Some(json!({"spec": {"paused": false}, "status": {"pauseConditions": null}}));
            }
            if paused(r) {
                plan.spec = Some(unpause);
            }
            if plan.spec.is_none() && plan.status.is_none() {
                plan.nothing = Some("it is not paused".into());
            }
        }
        Action::Undo(to) => return undo(r, replica_sets, to),
    }
    Ok(plan)
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `rolloutRevision`: the ReplicaSet of revision `to`, or (0) the second newest; its pod template
/// without the hash label replaces the Rollout's (`equalIgnoreHash`: nothing when they match).
fn undo(r: &Value, replica_sets: &[Value], to: i64) -> Result<Plan, Error> {
    let name = r["metadata"]["name"].as_str().unwrap_or_default();
    let target = if to > 0 {
        replica_sets
            .iter()
            .find(|rs| revision(rs) == to)
            .ok_or_else(|| {
                Error::Refused(format!(
                    "rollout `{name}` has no revision {to} in its history (revisions: {})",
                    revisions(replica_sets)
                ))
            })?
    } else {
        let mut sorted: Vec<&Value> = replica_sets.iter().collect();
        sorted.sort_by_key(|rs| std::cmp::Reverse(revision(rs)));
        sorted.get(1).copied().ok_or_else(|| {
            Error::Refused(format!(
                "rollout `{name}` has no earlier revision to go back to"
            ))
        })?
    };
    let mut template = target["spec"]["template"].clone();
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove(POD_TEMPLATE_HASH);
    }
    let mut current = r["spec"]["template"].clone();
    if let Some(labels) = current["metadata"]["labels"].as_object_mut() {
        labels.remove(POD_TEMPLATE_HASH);
    }
    if derivative(&current, &template) {
        return Ok(Plan {
            nothing: Some(format!(
                "its template already matches revision {}",
                revision(target)
            )),
            ..Plan::default()
        });
    }
    Ok(Plan {
        template: Some(template),
        ..Plan::default()
    })
}

fn revisions(replica_sets: &[Value]) -> String {
    let mut all: Vec<i64> = replica_sets.iter().map(revision).collect();
    all.sort();
    all.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `apiequality.Semantic.DeepDerivative(a, b)`: every field set in `a` equals `b`'s (fields `a`
/// leaves unset, e.g. defaults the API server filled into `b`, are ignored).
fn derivative(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, _) => true,
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| derivative(v, b.get(k).unwrap_or(&Value::Null))),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| derivative(x, y))
        }
        (Value::String(s), _) if s.is_empty() => b.is_null() || b == "",
        (a, b) => a == b,
    }
}

/// What became of a sent plan: whether the Rollout changed after the last write (the
/// controller, or anyone, wrote it: its informer then holds the change) or platformctl had to
/// touch it for that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Something wrote the Rollout after the change: the controller sees it.
    Observed,
    /// Nothing did within [`SETTLE`]; the [`NUDGE`] annotation was written, and then something did.
    Nudged,
    /// Not even after the nudges: the controller may be down.
    Unobserved,
    /// Nothing did, and the nudge was refused (why).
    NudgeFailed(String),
}

/// The annotation a nudge writes: when platformctl last touched the Rollout so that its
/// controller reads it afresh.
pub const NUDGE: &str = "platformctl.dev/nudged-at";
/// How long a change may stand with no write after it before it is nudged.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(3);

/// Sends `plan` to the Rollout `name`, then makes sure its controller will act on it.
///
/// The Argo Rollouts controller v1.9 writes each Rollout it has just patched back into its
/// informer cache; a change made while that reconcile runs (a `promote` the instant a gate
/// pauses, as CI does) can be overwritten there by the older copy and is then never acted on —
/// the Rollout stays paused until something writes it again (argoproj/argo-rollouts#4694,
/// fixed upstream by #4786 after v1.9.1). The controller always writes the status after one of
/// these changes, so a Rollout that nobody writes for [`SETTLE`] after it is nudged: an
/// annotation write, whose watch event refreshes the cache and queues a reconcile.
pub async fn apply(api: &Api<DynamicObject>, name: &str, plan: &Plan) -> Result<Sent, Error> {
    let pp = PatchParams::default();
    let failed = |what: &str| {
        let what = format!("{what} rollout `{name}`");
        move |source| Error::Api { what, source }
    };
    let mut spec = plan.spec.clone();
    let mut last = None;
    if let Some(status) = &plan.status {
        match api.patch_status(name, &pp, &Patch::Merge(status)).await {
            Ok(o) => last = o.metadata.resource_version,
            Err(kube::Error::Api(e)) if e.code == 404 => spec = plan.unified.clone(),
            Err(e) => return Err(failed("patch the status of")(e)),
        }
    }
    if let Some(spec) = &spec {
        let o = api
            .patch(name, &pp, &Patch::Merge(spec))
            .await
            .map_err(failed("patch"))?;
        last = o.metadata.resource_version;
    }
    if let Some(template) = &plan.template {
        let ops: json_patch::Patch = serde_json::from_value(
            json!([{"op": "replace", "path": "/spec/template", "value": template}]),
        )
        .map_err(|e| Error::Refused(format!("cannot build the undo patch: {e}")))?;
        let o = api
            .patch(name, &pp, &Patch::<()>::Json(ops))
            .await
            .map_err(failed("restore the template of"))?;
        last = o.metadata.resource_version;
    }
    let Some(mut last) = last else {
        return Ok(Sent::Observed);
    };
    for nudges in 0..=2 {
        if written_after(api, name, &last).await? {
            return Ok(if nudges == 0 {
                Sent::Observed
            } else {
                Sent::Nudged
            });
        }
        if nudges == 2 {
            break;
        }
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let touch = json!({"metadata": {"annotations": {NUDGE: now}}});
        // (the change itself is made: a nudge that is refused is reported, not an error)
        match api.patch(name, &pp, &Patch::Merge(&touch)).await {
            Ok(o) => last = o.metadata.resource_version.unwrap_or(last),
            Err(e) => return Ok(Sent::NudgeFailed(e.to_string())),
        }
    }
    Ok(Sent::Unobserved)
}

/// Whether the Rollout's resourceVersion moves on from `rv` within [`SETTLE`].
async fn written_after(api: &Api<DynamicObject>, name: &str, rv: &str) -> Result<bool, Error> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let now = api.get(name).await.map_err(|source| Error::Api {
            what: format!("read rollout `{name}`"),
            source,
        })?;
        if now.metadata.resource_version.as_deref() != Some(rv) {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The client's Rollout API in `namespace`.
pub fn api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &crate::kube::argo("Rollout", "rollouts"),
    )
}
