//! What a Rollout is doing, read from the objects the Argo Rollouts controller keeps: the Rollout
//! (phase, step, weight, pause conditions, abort), the ReplicaSets it owns (one per revision) and
//! the AnalysisRuns it started (metrics and their measurements). Pure: [`Info::of`] turns a
//! [`Snapshot`] into the view `rollout get`/`status`/`watch` and `promote --wait` print, and
//! [`Info::verdict`] says whether the rollout is done, needs a person, or failed.
//!
//! The rules are the controller's and the kubectl plugin's (Argo Rollouts v1.9.0): the phase is
//! `GetRolloutPhase` (via [`crate::ready`]), the weight `GetCurrentSetWeight`, a revision is the
//! `rollout.argoproj.io/revision` annotation, and the pause reasons are the controller's
//! (`CanaryPauseStep`, `BlueGreenPause`, `InconclusiveAnalysisRun`, `InconclusiveExperiment`).

use serde::Serialize;
use serde_json::Value;

use crate::ready::{self, Readiness};

/// The annotation on ReplicaSets and AnalysisRuns naming the Rollout revision they belong to.
pub const REVISION: &str = "rollout.argoproj.io/revision";
/// The label the controller adds to a revision's pods, ReplicaSet and AnalysisRuns.
pub const POD_TEMPLATE_HASH: &str = "rollouts-pod-template-hash";

/// The live objects of one Rollout.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub rollout: Value,
    /// The platform's environment the Rollout is in (for the commands messages suggest).
    pub environment: Option<String>,
    /// The ReplicaSets the Rollout controls.
    pub replica_sets: Vec<Value>,
    /// The AnalysisRuns the Rollout owns.
    pub analysis_runs: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    Healthy,
    Progressing,
    Paused,
    Degraded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    Canary,
    BlueGreen,
}

/// Where a Rollout stands, as `rollout get` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    pub name: String,
    pub namespace: String,
    pub environment: Option<String>,
    pub strategy: Strategy,
    pub phase: Phase,
    pub message: String,
    /// `status.abort`: the controller has rolled the update back to the stable revision.
    pub aborted: bool,
    /// Paused until a person (or `rollout promote`) continues; what it waits for.
    pub gate: Option<String>,
    /// Canary: the step the controller is at.
    pub step: Option<Step>,
    /// Canary: the weight of the current step (100 once every step is done).
    pub set_weight: Option<i64>,
    /// Canary with traffic routing: the weight the router was last set to.
    pub actual_weight: Option<i64>,
    /// Pod-template hash of the stable revision.
    pub stable: Option<String>,
    /// Pod-template hash of the revision being rolled out (the stable one when done).
    pub current: Option<String>,
    pub active_service: Option<String>,
    pub preview_service: Option<String>,
    pub replicas: Replicas,
    /// Newest first.
    pub revisions: Vec<Revision>,
    /// Newest first.
    pub analysis_runs: Vec<AnalysisRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// 0-based; `total` once every step is done.
    pub index: usize,
    pub total: usize,
    /// `setWeight 20`, `pause`, `pause 30s`, `analysis`; empty when done.
    pub action: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replicas {
    pub desired: i64,
    pub current: i64,
    pub updated: i64,
    pub ready: i64,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub revision: i64,
    pub pod_template_hash: String,
    pub images: Vec<String>,
    /// `stable`, `canary`, `active`, `preview`; empty for an old revision.
    pub roles: Vec<&'static str>,
    pub replicas: i64,
    pub ready: i64,
    pub replica_set: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRun {
    pub name: String,
    pub revision: Option<i64>,
    /// Pending, Running, Successful, Failed, Error, Inconclusive.
    pub phase: String,
    pub message: String,
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    pub name: String,
    pub phase: String,
    pub success_condition: Option<String>,
    pub failure_condition: Option<String>,
    pub successful: i64,
    pub failed: i64,
    pub inconclusive: i64,
    pub error: i64,
    pub message: String,
    /// Oldest first.
    pub measurements: Vec<Measurement>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    pub phase: String,
    pub value: String,
    pub message: String,
    pub finished_at: Option<String>,
}

/// What a rollout's state means for someone waiting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every replica runs the desired revision and it is stable.
    Healthy,
    /// Still moving (or pausing for a set time); the message says on what.
    Progressing(String),
    /// Stopped until a person continues (a pause without duration, the blue-green gate, an
    /// inconclusive analysis, `rollout pause`).
    Gate(String),
    /// The controller aborted the update and went back to the stable revision.
    Aborted(String),
    /// Degraded for another reason (progress deadline, invalid spec).
    Degraded(String),
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

fn revision_of(object: &Value) -> Option<i64> {
    object["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
}

/// `GetCurrentSetWeight`: the last `setWeight` at or before the current step, 100 once every step
/// is done; `None` for a Rollout that is not a canary with steps.
pub fn set_weight(rollout: &Value) -> Option<i64> {
    let steps = rollout["spec"]["strategy"]["canary"]["steps"].as_array()?;
    let current =
        (rollout["status"]["currentStepIndex"].as_u64().unwrap_or(0) as usize).min(steps.len());
    if rollout["status"]["abort"] == true {
        return Some(0);
    }
    Some(if current >= steps.len() {
        100
    } else {
        steps[..=current]
            .iter()
            .rev()
            .find_map(|s| s["setWeight"].as_i64())
            .unwrap_or(0)
    })
}

/// A canary step in words: `setWeight 20`, `pause`, `pause 30s`, `analysis`.
pub fn step_action(step: &Value) -> String {
    if let Some(w) = step["setWeight"].as_i64() {
        return format!("setWeight {w}");
    }
    if let Some(p) = step.get("pause") {
        return match &p["duration"] {
            Value::String(d) => format!("pause {d}"),
            Value::Number(n) => format!("pause {n}s"),
            _ => "pause".into(),
        };
    }
    if step.get("analysis").is_some() {
        return "analysis".into();
    }
    step.as_object()
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_default()
}

impl Info {
    pub fn of(s: &Snapshot) -> Info {
        let r = &s.rollout;
        let status = &r["status"];
        let strategy = if r["spec"]["strategy"]["blueGreen"].is_object() {
            Strategy::BlueGreen
        } else {
            Strategy::Canary
        };
        let (phase, message) = match ready::of(r) {
            Some(Readiness::Ready) | None => (Phase::Healthy, String::new()),
            Some(Readiness::Waiting(m)) => (Phase::Progressing, m),
            Some(Readiness::Paused(m)) => (Phase::Paused, m),
            Some(Readiness::Failed(m)) => (Phase::Degraded, m),
        };
        let steps = r["spec"]["strategy"]["canary"]["steps"]
            .as_array()
            .filter(|s| !s.is_empty());
        let step = steps.map(|steps| {
            let index =
                (status["currentStepIndex"].as_u64().unwrap_or(0) as usize).min(steps.len());
            Step {
                index,
                total: steps.len(),
                action: steps.get(index).map(step_action).unwrap_or_default(),
            }
        });
        let stable = opt_str(&status["stableRS"]);
        let current = opt_str(&status["currentPodHash"]);
        let bg = &status["blueGreen"];
        let (active, preview) = (
            opt_str(&bg["activeSelector"]),
            opt_str(&bg["previewSelector"]),
        );
        let mut revisions: Vec<Revision> = s
            .replica_sets
            .iter()
            .map(|rs| {
                let hash = str_of(&rs["metadata"]["labels"][POD_TEMPLATE_HASH]);
                let mut roles = Vec::new();
                if stable.as_deref() == Some(&hash) {
                    roles.push("stable");
                }
                if strategy == Strategy::Canary
                    && current.as_deref() == Some(&hash)
                    && stable.as_deref() != Some(&hash)
                {
                    roles.push("canary");
                }
                if active.as_deref() == Some(&hash) {
                    roles.push("active");
                }
                if preview.as_deref() == Some(&hash) && active.as_deref() != Some(&hash) {
                    roles.push("preview");
                }
                Revision {
                    revision: revision_of(rs).unwrap_or(0),
                    images: rs["spec"]["template"]["spec"]["containers"]
                        .as_array()
                        .map(|cs| cs.iter().map(|c| str_of(&c["image"])).collect())
                        .unwrap_or_default(),
                    roles,
                    replicas: rs["status"]["replicas"].as_i64().unwrap_or(0),
                    ready: rs["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    replica_set: str_of(&rs["metadata"]["name"]),
                    pod_template_hash: hash,
                }
            })
            .collect();
        revisions.sort_by_key(|r| std::cmp::Reverse(r.revision));
        let mut analysis_runs: Vec<(String, AnalysisRun)> = s
            .analysis_runs
            .iter()
            .map(|a| (str_of(&a["metadata"]["creationTimestamp"]), analysis_run(a)))
            .collect();
        analysis_runs
            .sort_by(|(ta, a), (tb, b)| (b.revision, tb, &b.name).cmp(&(a.revision, ta, &a.name)));
        let mut info = Info {
            name: str_of(&r["metadata"]["name"]),
            namespace: str_of(&r["metadata"]["namespace"]),
            environment: s.environment.clone(),
            strategy,
            phase,
            message,
            aborted: status["abort"] == true,
            gate: None,
            step,
            set_weight: set_weight(r),
            actual_weight: status["canary"]["weights"]["canary"]["weight"].as_i64(),
            stable,
            current,
            active_service: opt_str(&r["spec"]["strategy"]["blueGreen"]["activeService"]),
            preview_service: opt_str(&r["spec"]["strategy"]["blueGreen"]["previewService"]),
            replicas: Replicas {
                desired: r["spec"]["replicas"].as_i64().unwrap_or(1),
                current: status["replicas"].as_i64().unwrap_or(0),
                updated: status["updatedReplicas"].as_i64().unwrap_or(0),
                ready: status["readyReplicas"].as_i64().unwrap_or(0),
                available: status["availableReplicas"].as_i64().unwrap_or(0),
            },
            revisions,
            analysis_runs: analysis_runs.into_iter().map(|(_, a)| a).collect(),
        };
        info.gate = gate(r, &info);
        info
    }

    /// The platformctl command line that does `verb` to this rollout.
    pub fn command(&self, verb: &str) -> String {
        match &self.environment {
            Some(env) => format!("platformctl rollout {verb} {} --env {env}", self.name),
            None => format!(
                "platformctl rollout {verb} {} -n {}",
                self.name, self.namespace
            ),
        }
    }

    /// The revision with `role` (`stable`, `canary`, `active`, `preview`).
    pub fn revision(&self, role: &str) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.roles.contains(&role))
    }

    /// The image the stable revision runs (its first container's).
    pub fn stable_image(&self) -> Option<&str> {
        self.revision("stable")
            .and_then(|r| r.images.first())
            .map(String::as_str)
    }

    /// The newest AnalysisRun of the revision being rolled out.
    pub fn current_analysis(&self) -> Option<&AnalysisRun> {
        let current = self
            .revisions
            .iter()
            .find(|r| self.current.as_deref() == Some(&r.pod_template_hash))?;
        self.analysis_runs
            .iter()
            .find(|a| a.revision == Some(current.revision))
    }

    pub fn verdict(&self) -> Verdict {
        if self.aborted {
            let why = self
                .analysis_runs
                .iter()
                .find(|a| matches!(a.phase.as_str(), "Failed" | "Error"))
                .map(AnalysisRun::failure);
            let mut message = format!(
                "rollout `{}` in namespace `{}` was aborted and rolled back to the stable revision",
                self.name, self.namespace
            );
            match why {
                Some(w) => message.push_str(&format!(": {w}")),
                None if !self.message.is_empty() => {
                    message.push_str(&format!(": {}", self.message))
                }
                None => {}
            }
            return Verdict::Aborted(message);
        }
        match self.phase {
            Phase::Healthy => Verdict::Healthy,
            Phase::Degraded => Verdict::Degraded(format!(
                "rollout `{}` in namespace `{}` is Degraded: {}",
                self.name, self.namespace, self.message
            )),
            Phase::Paused | Phase::Progressing => match &self.gate {
                Some(g) => Verdict::Gate(g.clone()),
                None => Verdict::Progressing(self.progress()),
            },
        }
    }

    /// One line on where the rollout is: `step 2/5 setWeight 50, weight 50, analysis Running`.
    pub fn progress(&self) -> String {
        let mut parts = vec![format!("{:?}", self.phase)];
        if let Some(s) = &self.step {
            if s.index < s.total {
                parts.push(format!("step {}/{} {}", s.index + 1, s.total, s.action));
            } else {
                parts.push(format!("step {}/{}", s.total, s.total));
            }
        }
        if let Some(w) = self.set_weight {
            match self.actual_weight {
                Some(a) if a != w => parts.push(format!("weight {w} (router at {a})")),
                _ => parts.push(format!("weight {w}")),
            }
        }
        if let Some(a) = self.current_analysis() {
            parts.push(format!("analysis `{}` {}", a.name, a.phase));
        }
        let ready = &self.replicas;
        parts.push(format!(
            "{}/{} ready, {} updated",
            ready.ready, ready.desired, ready.updated
        ));
        if !self.message.is_empty() && self.phase != Phase::Healthy {
            parts.push(self.message.clone());
        }
        parts.join(", ")
    }
}

impl AnalysisRun {
    /// Why the run failed: each failed metric with its last failing value and its condition.
    pub fn failure(&self) -> String {
        let failed: Vec<String> = self
            .metrics
            .iter()
            .filter(|m| matches!(m.phase.as_str(), "Failed" | "Error"))
            .map(Metric::describe)
            .collect();
        if failed.is_empty() {
            format!(
                "analysis run `{}` {}: {}",
                self.name, self.phase, self.message
            )
        } else {
            format!(
                "analysis run `{}` {}: {}",
                self.name,
                self.phase.to_lowercase(),
                failed.join("; ")
            )
        }
    }
}

impl Metric {
    /// `success-rate 0.79 failed (success condition result[0] >= 0.99; 2 failed, limit reached)`.
    pub fn describe(&self) -> String {
        let last = self
            .measurements
            .iter()
            .rev()
            .find(|m| m.phase == "Failed" || m.phase == "Error")
            .or(self.measurements.last());
        let value = last
            .map(|m| {
                if m.value.is_empty() {
                    m.message.clone()
                } else {
                    m.value.clone()
                }
            })
            .unwrap_or_default();
        let condition = match (&self.success_condition, &self.failure_condition) {
            (Some(s), _) => format!("success condition `{s}`"),
            (None, Some(f)) => format!("failure condition `{f}`"),
            (None, None) => "no condition".into(),
        };
        format!(
            "metric `{}` = {value} ({}; {condition}; {} of {} measurements failed{})",
            self.name,
            self.phase.to_lowercase(),
            self.failed,
            self.measurements.len(),
            if self.error > 0 {
                format!(", {} errored", self.error)
            } else {
                String::new()
            }
        )
    }
}

fn analysis_run(a: &Value) -> AnalysisRun {
    let conditions: Vec<(String, Option<String>, Option<String>)> = a["spec"]["metrics"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        str_of(&m["name"]),
                        opt_str(&m["successCondition"]),
                        opt_str(&m["failureCondition"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let results = a["status"]["metricResults"].as_array();
    let mut metrics: Vec<Metric> = conditions
        .iter()
        .map(|(name, success, failure)| {
            let result = results
                .and_then(|rs| rs.iter().find(|r| r["name"] == name.as_str()))
                .unwrap_or(&Value::Null);
            Metric {
                name: name.clone(),
                phase: opt_str(&result["phase"]).unwrap_or_else(|| "Pending".into()),
                success_condition: success.clone(),
                failure_condition: failure.clone(),
                successful: result["successful"].as_i64().unwrap_or(0),
                failed: result["failed"].as_i64().unwrap_or(0),
                inconclusive: result["inconclusive"].as_i64().unwrap_or(0),
                error: result["error"].as_i64().unwrap_or(0),
                message: str_of(&result["message"]),
                measurements: result["measurements"]
                    .as_array()
                    .map(|ms| {
                        ms.iter()
                            .map(|m| Measurement {
                                phase: str_of(&m["phase"]),
                                value: str_of(&m["value"]),
                                message: str_of(&m["message"]),
                                finished_at: opt_str(&m["finishedAt"]),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    metrics.sort_by(|a, b| a.name.cmp(&b.name));
    AnalysisRun {
        name: str_of(&a["metadata"]["name"]),
        revision: revision_of(a),
        phase: opt_str(&a["status"]["phase"]).unwrap_or_else(|| "Pending".into()),
        message: str_of(&a["status"]["message"]),
        metrics,
    }
}

/// What a paused rollout waits for, when it is a person: `rollout pause` (spec.paused), a canary
/// pause step without duration, the blue-green gate without auto-promotion, an inconclusive
/// analysis. A timed pause is no gate: it ends by itself.
fn gate(r: &Value, info: &Info) -> Option<String> {
    let continue_with = format!("`{}` continues it", info.command("promote"));
    if r["spec"]["paused"] == true {
        return Some(format!(
            "rollout `{}` is paused (spec.paused): `{}` resumes it",
            info.name,
            info.command("resume")
        ));
    }
    let reasons: Vec<&str> = r["status"]["pauseConditions"]
        .as_array()
        .map(|p| p.iter().filter_map(|c| c["reason"].as_str()).collect())
        .unwrap_or_default();
    for reason in reasons {
        match reason {
            "BlueGreenPause"
                if r["spec"]["strategy"]["blueGreen"]["autoPromotionSeconds"].is_null() =>
            {
                let preview = info.preview_service.as_deref().unwrap_or("(none)");
                let image = info
                    .revisions
                    .iter()
                    .find(|rev| info.current.as_deref() == Some(&rev.pod_template_hash))
                    .and_then(|rev| rev.images.first().cloned())
                    .unwrap_or_default();
                return Some(format!(
                    "rollout `{}` waits at the blue-green gate: the new revision ({image}) serves on the preview Service `{preview}` while the active Service `{}` still serves the stable one; {continue_with}",
                    info.name,
                    info.active_service.as_deref().unwrap_or("(none)")
                ));
            }
            "CanaryPauseStep" => {
                let index = r["status"]["currentStepIndex"].as_u64().unwrap_or(0) as usize;
                let step = &r["spec"]["strategy"]["canary"]["steps"][index];
                if step["pause"]["duration"].is_null() {
                    return Some(format!(
                        "rollout `{}` is paused at step {} without a duration (weight {}); {continue_with}",
                        info.name,
                        index + 1,
                        info.set_weight.unwrap_or(0)
                    ));
                }
            }
            "InconclusiveAnalysisRun" | "InconclusiveExperiment" => {
                return Some(format!(
                    "rollout `{}` is paused: its analysis was inconclusive; {continue_with}, `{}` rolls it back",
                    info.name,
                    info.command("abort")
                ));
            }
            _ => {}
        }
    }
    None
}

/// One thing that changed between two views of a rollout, as `rollout watch` and `promote
/// --wait` print it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    /// Phase, step, weight or replicas moved: the new [`Info::progress`] line.
    #[serde(rename_all = "camelCase")]
    Progress {
        phase: Phase,
        step: Option<Step>,
        set_weight: Option<i64>,
        message: String,
    },
    #[serde(rename_all = "camelCase")]
    AnalysisStarted {
        analysis_run: String,
        revision: Option<i64>,
    },
    /// A metric got a new measurement.
    #[serde(rename_all = "camelCase")]
    Measured {
        analysis_run: String,
        metric: String,
        phase: String,
        value: String,
        condition: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    AnalysisFinished {
        analysis_run: String,
        phase: String,
        message: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Progress { message, .. } => write!(f, "{message}"),
            Event::AnalysisStarted {
                analysis_run,
                revision,
            } => match revision {
                Some(r) => write!(f, "analysis run `{analysis_run}` started (revision {r})"),
                None => write!(f, "analysis run `{analysis_run}` started"),
            },
            Event::Measured {
                analysis_run,
                metric,
                phase,
                value,
                condition,
            } => {
                write!(f, "  {metric} = {value}: {phase}")?;
                if let Some(c) = condition {
                    write!(f, " (`{c}`)")?;
                }
                write!(f, " [{analysis_run}]")
            }
            Event::AnalysisFinished {
                analysis_run,
                phase,
                message,
            } => {
                write!(f, "analysis run `{analysis_run}` {phase}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
        }
    }
}

fn finished(phase: &str) -> bool {
    matches!(phase, "Successful" | "Failed" | "Error" | "Inconclusive")
}

/// What changed from `before` (none: the first view) to `now`.
pub fn changes(before: Option<&Info>, now: &Info) -> Vec<Event> {
    let mut events = Vec::new();
    let progress = now.progress();
    if before.is_none_or(|b| b.progress() != progress) {
        events.push(Event::Progress {
            phase: now.phase,
            step: now.step.clone(),
            set_weight: now.set_weight,
            message: progress,
        });
    }
    for run in now.analysis_runs.iter().rev() {
        let old = before.and_then(|b| b.analysis_runs.iter().find(|a| a.name == run.name));
        if old.is_none() && before.is_some() {
            events.push(Event::AnalysisStarted {
                analysis_run: run.name.clone(),
                revision: run.revision,
            });
        }
        // On the first view only the runs still going are news.
        if before.is_none() && finished(&run.phase) {
            continue;
        }
        for m in &run.metrics {
            let seen = old
                .and_then(|o| o.metrics.iter().find(|x| x.name == m.name))
                .map_or(0, |x| {
                    x.measurements
                        .iter()
                        .filter(|y| !y.phase.is_empty() && y.phase != "Running")
                        .count()
                });
            for measured in m
                .measurements
                .iter()
                .filter(|y| !y.phase.is_empty() && y.phase != "Running")
                .skip(seen)
            {
                events.push(Event::Measured {
                    analysis_run: run.name.clone(),
                    metric: m.name.clone(),
                    phase: measured.phase.clone(),
                    value: if measured.value.is_empty() {
                        measured.message.clone()
                    } else {
                        measured.value.clone()
                    },
                    condition: m.success_condition.clone().or(m.failure_condition.clone()),
                });
            }
        }
        if finished(&run.phase) && old.is_none_or(|o| o.phase != run.phase) {
            events.push(Event::AnalysisFinished {
                analysis_run: run.name.clone(),
                phase: run.phase.clone(),
                message: if run.phase == "Successful" {
                    run.message.clone()
                } else {
                    run.failure()
                },
            });
        }
    }
    events
}
