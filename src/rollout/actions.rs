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

/// Sends `plan` to the Rollout `name`.
pub async fn apply(api: &Api<DynamicObject>, name: &str, plan: &Plan) -> Result<(), Error> {
    let pp = PatchParams::default();
    let failed = |what: &str| {
        let what = format!("{what} rollout `{name}`");
        move |source| Error::Api { what, source }
    };
    let mut spec = plan.spec.clone();
    if let Some(status) = &plan.status {
        match api.patch_status(name, &pp, &Patch::Merge(status)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => spec = plan.unified.clone(),
            Err(e) => return Err(failed("patch the status of")(e)),
        }
    }
    if let Some(spec) = &spec {
        api.patch(name, &pp, &Patch::Merge(spec))
            .await
            .map_err(failed("patch"))?;
    }
    if let Some(template) = &plan.template {
        let ops: json_patch::Patch = serde_json::from_value(
            json!([{"op": "replace", "path": "/spec/template", "value": template}]),
        )
        .map_err(|e| Error::Refused(format!("cannot build the undo patch: {e}")))?;
        api.patch(name, &pp, &Patch::<()>::Json(ops))
            .await
            .map_err(failed("restore the template of"))?;
    }
    Ok(())
}

/// The client's Rollout API in `namespace`.
pub fn api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &crate::kube::argo("Rollout", "rollouts"),
    )
}
