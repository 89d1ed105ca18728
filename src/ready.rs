//! Readiness of applied objects: small predicates over an object's live JSON, each saying what it
//! is still waiting for. Used by the waits of `up` (a watch re-evaluates the predicate on every
//! change, under a timeout that reports the last message).
//!
//! The rules follow the owners' own: `kubectl rollout status` for Deployments, StatefulSets and
//! DaemonSets; the Job and CRD conditions; Argo Rollouts' `GetRolloutPhase`
//! (utils/rollout/rolloututil.go, v1.9.0); Argo CD's sync and health status.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Still converging; the message says on what.
    Waiting(String),
    /// Stopped on purpose (a paused Rollout, a suspended Application); needs a person.
    Paused(String),
    /// Will not get there without a change (deadline exceeded, degraded, failed job).
    Failed(String),
}

use Readiness::{Failed, Paused, Ready, Waiting};

/// The readiness of `object`, or `None` for a kind that has no notion of it (it is ready once it
/// exists).
pub fn of(object: &Value) -> Option<Readiness> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Some(match (group, object["kind"].as_str().unwrap_or_default()) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("batch", "Job") => job(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        ("argoproj.io", "Rollout") => rollout(object),
        ("argoproj.io", "Application") => application(object),
        ("apiregistration.k8s.io", "APIService") => api_service(object),
        ("", "Endpoints") => endpoints(object),
        _ => return None,
    })
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn is_true(object: &Value, type_: &str) -> bool {
    condition(object, type_).is_some_and(|c| c["status"] == "True")
}

fn message(condition: &Value) -> String {
    condition["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// metadata.generation not yet seen by the controller (status.observedGeneration behind).
fn unobserved(object: &Value, what: &str) -> Option<Readiness> {
    let generation = int(&object["metadata"]["generation"]);
    let observed = int(&object["status"]["observedGeneration"]);
    (observed < generation).then(|| {
        Waiting(format!(
            "waiting for the {what} controller to observe generation {generation}"
        ))
    })
}

fn desired_replicas(object: &Value) -> i64 {
    object["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn deployment(d: &Value) -> Readiness {
    if let Some(waiting) = unobserved(d, "deployment") {
        return waiting;
    }
    if let Some(c) = condition(d, "Progressing")
        && c["reason"] == "ProgressDeadlineExceeded"
    {
        return Failed(format!("progress deadline exceeded: {}", message(c)));
    }
    let status = &d["status"];
    let (want, updated) = (desired_replicas(d), int(&status["updatedReplicas"]));
    let (replicas, available) = (int(&status["replicas"]), int(&status["availableReplicas"]));
    if updated < want {
        return Waiting(format!("{updated} of {want} replicas updated"));
    }
    if replicas > updated {
        return Waiting(format!(
            "{} old replicas pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Waiting(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Ready
}

fn stateful_set(s: &Value) -> Readiness {
    if let Some(waiting) = unobserved(s, "statefulset") {
        return waiting;
    }
    let status = &s["status"];
    let want = desired_replicas(s);
    let ready = int(&status["readyReplicas"]);
    if ready < want {
        return Waiting(format!("{ready} of {want} pods ready"));
    }
    let strategy = &s["spec"]["updateStrategy"];
    if strategy["type"].as_str().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return Ready; // OnDelete: nothing rolls by itself
    }
    let partition = int(&strategy["rollingUpdate"]["partition"]);
    if partition > 0 {
        // Only the pods at or above the partition are updated.
        let updated = int(&status["updatedReplicas"]);
        let expected = want - partition;
        return if updated < expected {
            Waiting(format!(
                "{updated} of {expected} pods above partition {partition} updated"
            ))
        } else {
            Ready
        };
    }
    let (current, update) = (&status["currentRevision"], &status["updateRevision"]);
    if current != update {
        let updated = int(&status["updatedReplicas"]);
        return Waiting(format!(
            "{updated} of {want} pods at revision {}",
            update.as_str().unwrap_or("?")
        ));
    }
    Ready
}

fn daemon_set(d: &Value) -> Readiness {
    if let Some(waiting) = unobserved(d, "daemonset") {
        return waiting;
    }
    let status = &d["status"];
    let desired = int(&status["desiredNumberScheduled"]);
    let updated = int(&status["updatedNumberScheduled"]);
    let available = int(&status["numberAvailable"]);
    if updated < desired {
        return Waiting(format!("{updated} of {desired} pods updated"));
    }
    if available < desired {
        return Waiting(format!("{available} of {desired} updated pods available"));
    }
    Ready
}

fn job(j: &Value) -> Readiness {
    if is_true(j, "Complete") {
        return Ready;
    }
    if let Some(c) = condition(j, "Failed").filter(|c| c["status"] == "True") {
        let reason = c["reason"].as_str().unwrap_or("Failed");
        return Failed(format!("{reason}: {}", message(c)));
    }
    let completions = j["spec"]["completions"].as_i64().unwrap_or(1);
    let succeeded = int(&j["status"]["succeeded"]);
    let active = int(&j["status"]["active"]);
    Waiting(format!(
        "{succeeded} of {completions} completions ({active} running)"
    ))
}

/// kube-aggregator's `Available` condition: the API server reaches the APIService's backend
/// and its discovery answers. Not available is never final (the backend may come up).
fn api_service(a: &Value) -> Readiness {
    match condition(a, "Available") {
        Some(c) if c["status"] == "True" => Ready,
        Some(c) => Waiting(format!(
            "not Available: {}: {}",
            c["reason"].as_str().unwrap_or("unknown"),
            message(c)
        )),
        None => Waiting("not Available yet".into()),
    }
}

/// A Service's endpoints, as the endpoints controller keeps them: ready once one address is
/// (what an admission webhook's Service needs before the API server can call it).
fn endpoints(e: &Value) -> Readiness {
    let subsets = e["subsets"].as_array().cloned().unwrap_or_default();
    let count = |key: &str| -> usize {
        subsets
            .iter()
            .map(|s| s[key].as_array().map_or(0, Vec::len))
            .sum()
    };
    match (count("addresses"), count("notReadyAddresses")) {
        (0, 0) => Waiting("no endpoint: no pod behind the Service yet".into()),
        (0, n) => Waiting(format!("no ready endpoint ({n} not ready)")),
        _ => Ready,
    }
}

fn crd(c: &Value) -> Readiness {
    if is_true(c, "Established") {
        return Ready;
    }
    if let Some(names) = condition(c, "NamesAccepted").filter(|n| n["status"] == "False") {
        return Failed(format!("names not accepted: {}", message(names)));
    }
    Waiting("waiting to be Established".into())
}

/// Argo Rollouts' `GetRolloutPhase`: the controller's phase, once it has seen the current spec.
fn rollout(r: &Value) -> Readiness {
    let generation = int(&r["metadata"]["generation"]);
    // status.observedGeneration is a string in Rollouts; non-numeric means "observed" (v0.9).
    let observed = r["status"]["observedGeneration"]
        .as_str()
        .and_then(|s| s.parse::<i64>().ok());
    if observed.is_some_and(|o| o < generation) || r["status"].is_null() {
        return Waiting(format!(
            "waiting for the Argo Rollouts controller to observe generation {generation}"
        ));
    }
    let status = &r["status"];
    let pause_conditions = status["pauseConditions"]
        .as_array()
        .is_some_and(|p| !p.is_empty());
    if status["controllerPause"] == true && !pause_conditions {
        return Waiting("waiting for the rollout to unpause".into());
    }
    let message = status["message"].as_str().unwrap_or_default().to_string();
    match status["phase"].as_str().unwrap_or_default() {
        "Healthy" => Ready,
        "Paused" => Paused(if message.is_empty() {
            "paused".into()
        } else {
            message
        }),
        "Degraded" => Failed(if message.is_empty() {
            "degraded".into()
        } else {
            message
        }),
        "Progressing" => Waiting(if message.is_empty() {
            "progressing".into()
        } else {
            message
        }),
        "" => Waiting("waiting for the Argo Rollouts controller".into()),
        other => Waiting(format!("phase {other}: {message}")),
    }
}

/// Argo CD: Synced and Healthy is ready; a failed sync or a degraded app has failed; a suspended
/// one (e.g. a paused Rollout) waits for a person.
fn application(a: &Value) -> Readiness {
    let status = &a["status"];
    let sync = status["sync"]["status"].as_str().unwrap_or("Unknown");
    let health = status["health"]["status"].as_str().unwrap_or("Unknown");
    let operation = &status["operationState"];
    if matches!(operation["phase"].as_str(), Some("Failed" | "Error")) {
        let message = operation["message"].as_str().unwrap_or_default();
        return Failed(format!(
            "sync {}: {message}",
            operation["phase"].as_str().unwrap_or_default()
        ));
    }
    match (sync, health) {
        ("Synced", "Healthy") => Ready,
        (_, "Degraded") => {
            // The Application's own message is often empty: name the degraded resources.
            let degraded: Vec<String> = status["resources"]
                .as_array()
                .map(|rs| {
                    rs.iter()
                        .filter(|r| r["health"]["status"] == "Degraded")
                        .map(|r| {
                            let m = r["health"]["message"].as_str().unwrap_or_default();
                            format!(
                                "{} {}{}{m}",
                                r["kind"].as_str().unwrap_or_default(),
                                r["name"].as_str().unwrap_or_default(),
                                if m.is_empty() { "" } else { ": " }
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let own = status["health"]["message"].as_str().unwrap_or_default();
            let joined = degraded.join("; ");
            let message = if own.is_empty() { joined.as_str() } else { own };
            // Still a wait: Argo CD re-evaluates health on every change, and an Application is
            // Degraded for a moment while what it deployed restarts (seen with the real Argo CD
            // after an interrupted `up`). The wait's timeout gives the verdict, with this message.
            Waiting(format!(
                "sync {sync}, health Degraded{}{message}",
                if message.is_empty() { "" } else { ": " }
            ))
        }
        (_, "Suspended") => Paused(format!(
            "sync {sync}, health Suspended (a paused Rollout waits for promotion)"
        )),
        _ => {
            // An error condition (ComparisonError: the path or repository cannot be read;
            // InvalidSpecError) keeps an Application from syncing; Argo CD retries it, so it is
            // still a wait, but the wait must say why.
            let error = status["conditions"].as_array().and_then(|cs| {
                cs.iter()
                    .find(|c| c["type"].as_str().is_some_and(|t| t.ends_with("Error")))
            });
            match error {
                Some(c) => Waiting(format!(
                    "sync {sync}, health {health}; {}: {}",
                    c["type"].as_str().unwrap_or_default(),
                    c["message"].as_str().unwrap_or_default()
                )),
                None => {
                    // Which resources differ from git, and what the last sync said: what a
                    // person looks at first when an Application stays OutOfSync.
                    let mut why = String::new();
                    let differing: Vec<String> = status["resources"]
                        .as_array()
                        .map(|rs| {
                            rs.iter()
                                .filter(|r| r["status"] == "OutOfSync")
                                .map(|r| {
                                    format!(
                                        "{} {}",
                                        r["kind"].as_str().unwrap_or_default(),
                                        r["name"].as_str().unwrap_or_default()
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    if sync == "OutOfSync" && !differing.is_empty() {
                        why.push_str(&format!(" ({} differ)", differing.join(", ")));
                    }
                    if let Some(m) = operation["message"].as_str().filter(|m| !m.is_empty())
                        && operation["phase"] == "Running"
                    {
                        why.push_str(&format!("; sync running: {m}"));
                    }
                    Waiting(format!("sync {sync}, health {health}{why}"))
                }
            }
        }
    }
}
