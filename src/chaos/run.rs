//! One run of an experiment, as a journal of timed phases: steady state before, inject, recovery,
//! verdict, clean-up. Probe traffic (the open-model engine of `load`) goes to the service's
//! ready endpoints from the first phase to the last, so continuity is measured as a client
//! sees it.
//!
//! The chaos object is removed however the run ends: after the verdict, on an error, and when
//! `cancel` fires (SIGINT, SIGTERM); one an earlier run left (it was SIGKILLed) is found by its
//! labels and removed before anything else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::object::{self, Deleted};
use super::verdict::{self, Figures, Limits, Verdict};
use super::workload;
use crate::load;

/// How often the workload is looked at during recovery.
const POLL: Duration = Duration::from_millis(200);
/// How long the probe must succeed before injecting.
const STEADY: Duration = Duration::from_secs(2);
/// How long each step of a deletion waits (see [`object::delete`]).
const DELETE_PATIENCE: Duration = Duration::from_secs(10);

/// Everything a run needs, resolved from platform.yaml and the rendered tree.
pub struct Inputs {
    pub client: kube::Client,
    pub experiment: String,
    pub kind: String,
    /// The rendered object (chaos/<name>.yaml).
    pub rendered: String,
    /// Where the chaos object lives (the Chaos Mesh addon's namespace).
    pub chaos_namespace: String,
    pub service: String,
    pub environment: String,
    pub target_namespace: String,
    pub grace_period: Option<u32>,
    pub probe: Probe,
    pub limits: Limits,
    /// The SLO's page burn check of the steady state (None without an SLO or Prometheus).
    pub burn: Option<BurnCheck>,
    pub prometheus: Option<crate::prom::Client>,
}

/// The probe traffic: requests per second to these paths of the service.
#[derive(Debug, Clone)]
pub struct Probe {
    pub rate: f64,
    pub paths: Vec<String>,
    pub timeout: Duration,
    pub via: load::target::Via,
}

/// The SLO's page burn rate over 5m against its threshold, read before injecting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnCheck {
    pub burn_5m: Option<f64>,
    pub threshold: f64,
}

/// Progress of a run, for a person (the CLI prints it on stderr).
pub trait Progress: Send + Sync {
    fn phase(&self, name: &str, line: &str);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PhaseOutcome {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub name: String,
    /// Seconds from the run's start.
    pub started_at: f64,
    pub seconds: f64,
    pub outcome: PhaseOutcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

/// A replacement pod and when it turned Ready, seconds after the kill.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replacement {
    pub pod: String,
    pub uid: String,
    pub ready_after: Option<f64>,
}

/// Unavailable replicas at a moment, seconds after the kill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub at: f64,
    pub ready: u64,
    pub desired: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum End {
    /// The verdict passed.
    Passed,
    /// The verdict failed.
    Failed,
    /// Not in steady state: nothing was injected.
    NotSteady,
    /// Stopped by a signal.
    Interrupted,
    /// Chaos Mesh did not inject (no target selected, no controller).
    NotInjected,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    pub experiment: String,
    pub run: String,
    pub object: String,
    pub service: String,
    pub environment: String,
    pub end: End,
    pub phases: Vec<Phase>,
    pub killed: Vec<String>,
    pub replacements: Vec<Replacement>,
    pub unavailable: Vec<Sample>,
    pub recovery_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    pub probe: load::Summary,
    /// The probe's whole outcome (its histogram, for thresholds).
    #[serde(skip)]
    pub probe_outcome: Option<load::Outcome>,
    /// Objects of earlier runs removed first.
    pub removed_leftovers: Vec<String>,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<String>,
}

struct Clock {
    start: Instant,
}

impl Clock {
    fn at(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

fn phase(
    name: &str,
    from: f64,
    clock: &Clock,
    outcome: PhaseOutcome,
    detail: String,
    data: Value,
) -> Phase {
    Phase {
        name: name.into(),
        started_at: from,
        seconds: clock.at() - from,
        outcome,
        detail,
        data,
    }
}

/// A run id: short, lower case, unique enough per experiment (time and process).
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32);
    let mut s = String::new();
    for _ in 0..8 {
        let d = (x % 36) as u8;
        s.push(if d < 10 {
            (b'0' + d) as char
        } else {
            (b'a' + d - 10) as char
        });
        x /= 36;
    }
    s
}

/// Runs the experiment. `cancel` resolves with the signal's description when the run must stop:
/// the object is removed, and the journal ends `Interrupted`.
pub async fn run(
    inputs: Inputs,
    progress: &dyn Progress,
    cancel: impl std::future::Future<Output = &'static str>,
) -> Result<Journal, anyhow::Error> {
    let clock = Clock {
        start: Instant::now(),
    };
    let run = run_id();
    let api = object::api(&inputs.client, &inputs.chaos_namespace, &inputs.kind);
    let mut phases = Vec::new();
    tokio::pin!(cancel);

    // Leftovers of runs that could not clean up.
    let mut removed_leftovers = Vec::new();
    for name in object::leftovers(&api, &inputs.experiment).await? {
        let how = object::delete(&api, &name, DELETE_PATIENCE).await?;
        progress.phase(
            "clean-up",
            &format!(
                "removed {} `{name}` left by an earlier run ({how:?})",
                inputs.kind
            ),
        );
        removed_leftovers.push(name);
    }

    // Probe traffic from now to the end.
    let endpoints = Arc::new(load::Endpoints::default());
    let follower = load::target::Service {
        client: inputs.client.clone(),
        namespace: inputs.target_namespace.clone(),
        name: inputs.service.clone(),
        port_name: "http".into(),
        via: inputs.probe.via,
    }
    .follow(endpoints.clone())
    .await;
    let host = format!("{}.{}.svc", inputs.service, inputs.target_namespace);
    // (planned far past any run; stopped when the run ends)
    let horizon =
        Duration::from_secs_f64(inputs.limits.recovery_timeout_seconds) + Duration::from_secs(600);
    let probe = load::Run::start(
        load::Plan {
            schedule: load::Schedule::constant(inputs.probe.rate, horizon),
            requests: inputs
                .probe
                .paths
                .iter()
                .map(|p| load::Request {
                    path: p.clone(),
                    host: host.clone(),
                })
                .collect(),
            timeout: inputs.probe.timeout,
            max_connections: 256,
        },
        endpoints.clone(),
    )
    .context("cannot start the probe traffic")?;
    let live = probe.live();
    let counts = || {
        (
            live.sent.load(Ordering::Relaxed),
            live.failed.load(Ordering::Relaxed),
        )
    };

    let mut journal = Journal {
        experiment: inputs.experiment.clone(),
        run: run.clone(),
        object: format!("{}-{run}", inputs.experiment),
        service: inputs.service.clone(),
        environment: inputs.environment.clone(),
        end: End::NotSteady,
        phases: Vec::new(),
        killed: Vec::new(),
        replacements: Vec::new(),
        unavailable: Vec::new(),
        recovery_seconds: None,
        verdict: None,
        probe: load::Summary::of(&empty_outcome(), inputs.probe.rate),
        probe_outcome: None,
        removed_leftovers,
        seconds: 0.0,
        interrupted_by: None,
    };

    // --- steady state before ---
    let from = clock.at();
    let steady = tokio::select! {
        s = steady_state(&inputs, follower.is_ok(), &counts) => s,
        why = &mut cancel => Err(Stop(why)),
    };
    let steady = match steady {
        Ok(s) => s,
        Err(Stop(why)) => {
            return Ok(finish(
                journal,
                phases,
                probe,
                &clock,
                End::Interrupted,
                Some(why),
                inputs.probe.rate,
            )
            .await);
        }
    };
    let steady_ok = steady.problems.is_empty();
    progress.phase("steady-state", &steady.summary());
    phases.push(phase(
        "steady-state",
        from,
        &clock,
        if steady_ok { PhaseOutcome::Passed } else { PhaseOutcome::Failed },
        steady.summary(),
        json!({ "desired": steady.desired, "ready": steady.ready, "probe": { "requests": steady.probe_requests, "failed": steady.probe_failed }, "burn5m": steady.burn_5m }),
    ));
    if !steady_ok {
        return Ok(finish(
            journal,
            phases,
            probe,
            &clock,
            End::NotSteady,
            None,
            inputs.probe.rate,
        )
        .await);
    }
    let before: BTreeMap<String, workload::PodState> =
        workload::pods(&inputs.client, &inputs.target_namespace, &inputs.service).await?;
    let desired = steady.desired;

    // --- inject, recovery, verdict: whatever happens, clean up after ---
    let object = object::for_run(
        &inputs.rendered,
        &inputs.experiment,
        &run,
        &inputs.target_namespace,
        inputs.grace_period,
    )?;
    let body = experiment(
        &inputs,
        &api,
        &object,
        &before,
        desired,
        &clock,
        progress,
        &counts,
        &mut phases,
        &mut journal,
    );
    let result = tokio::select! {
        r = body => r.map(Some),
        why = &mut cancel => { journal.interrupted_by = Some(why.to_string()); Ok(None) }
    };

    // --- clean-up, always ---
    let from = clock.at();
    let mut cleaned = Vec::new();
    let mut failure = None;
    let names: BTreeSet<String> = object::leftovers(&api, &inputs.experiment)
        .await
        .map(|v| v.into_iter().filter(|n| n.ends_with(&run)).collect())
        .unwrap_or_else(|_| [journal.object.clone()].into());
    for name in names {
        match object::delete(&api, &name, DELETE_PATIENCE).await {
            Ok(Deleted::Absent) => {}
            Ok(how) => cleaned.push(format!("{name} ({how:?})")),
            Err(e) => failure = Some(e),
        }
    }
    let detail = if cleaned.is_empty() {
        format!("no {} left", inputs.kind)
    } else {
        format!("deleted {}", cleaned.join(", "))
    };
    progress.phase("clean-up", &detail);
    phases.push(phase(
        "clean-up",
        from,
        &clock,
        if failure.is_none() {
            PhaseOutcome::Passed
        } else {
            PhaseOutcome::Failed
        },
        failure.as_ref().map_or(detail, |e| e.to_string()),
        Value::Null,
    ));
    if let Some(e) = failure {
        probe.stop();
        return Err(e.into());
    }
    let end = match result {
        Ok(None) => End::Interrupted,
        Ok(Some(end)) => end,
        Err(e) => {
            probe.stop();
            return Err(e);
        }
    };
    let why = journal.interrupted_by.clone();
    drop(follower);
    let mut j = finish(journal, phases, probe, &clock, end, None, inputs.probe.rate).await;
    if j.interrupted_by.is_none() {
        j.interrupted_by = why;
    }
    Ok(j)
}

struct Stop(&'static str);

fn empty_outcome() -> load::Outcome {
    load::Run::empty_outcome()
}

async fn finish(
    mut journal: Journal,
    phases: Vec<Phase>,
    probe: load::Run,
    clock: &Clock,
    end: End,
    interrupted_by: Option<&'static str>,
    rate: f64,
) -> Journal {
    probe.stop();
    let outcome = probe.finish().await;
    journal.probe = load::Summary::of(&outcome, rate);
    journal.probe_outcome = Some(outcome);
    journal.phases = phases;
    journal.end = end;
    if let Some(w) = interrupted_by {
        journal.interrupted_by = Some(w.to_string());
    }
    journal.seconds = clock.at();
    journal
}

struct Steady {
    desired: u64,
    ready: u64,
    probe_requests: u64,
    probe_failed: u64,
    burn_5m: Option<f64>,
    problems: Vec<String>,
}

impl Steady {
    fn summary(&self) -> String {
        let base = format!(
            "{}/{} replicas ready, probe {} requests {} failed{}",
            self.ready,
            self.desired,
            self.probe_requests,
            self.probe_failed,
            self.burn_5m
                .map(|b| format!(", SLO burn over 5m {b:.2}"))
                .unwrap_or_default()
        );
        if self.problems.is_empty() {
            format!("in steady state: {base}")
        } else {
            format!("not in steady state: {}; {base}", self.problems.join("; "))
        }
    }
}

async fn steady_state(
    inputs: &Inputs,
    endpoints_found: bool,
    counts: &dyn Fn() -> (u64, u64),
) -> Result<Steady, Stop> {
    let (sent0, failed0) = counts();
    tokio::time::sleep(STEADY).await;
    let (sent1, failed1) = counts();
    let mut problems = Vec::new();
    let (desired, _) =
        workload::rollout_replicas(&inputs.client, &inputs.target_namespace, &inputs.service)
            .await
            .unwrap_or_else(|e| {
                problems.push(format!("its Rollout cannot be read: {e}"));
                (0, 0)
            });
    let pods = workload::pods(&inputs.client, &inputs.target_namespace, &inputs.service)
        .await
        .unwrap_or_default();
    let ready = pods.values().filter(|p| p.ready).count() as u64;
    if desired > 0 && ready < desired {
        problems.push(format!(
            "{} of {desired} replicas are not ready",
            desired - ready
        ));
    }
    if !endpoints_found {
        problems.push("the service has no ready endpoint".into());
    }
    let (requests, failed) = (sent1 - sent0, failed1 - failed0);
    if failed > 0 || requests == 0 {
        problems.push(format!("the probe failed {failed} of {requests} requests"));
    }
    let mut burn_5m = None;
    if let Some(b) = inputs.burn {
        burn_5m = b.burn_5m;
        if let Some(v) = b.burn_5m
            && v >= b.threshold
        {
            problems.push(format!(
                "the SLO burns its budget {v:.1}× over 5m, at or above the page threshold {:.1}×",
                b.threshold
            ));
        }
    }
    Ok(Steady {
        desired,
        ready,
        probe_requests: requests,
        probe_failed: failed,
        burn_5m,
        problems,
    })
}

#[allow(clippy::too_many_arguments)]
async fn experiment(
    inputs: &Inputs,
    api: &kube::Api<kube::api::DynamicObject>,
    object: &Value,
    before: &BTreeMap<String, workload::PodState>,
    desired: u64,
    clock: &Clock,
    progress: &dyn Progress,
    counts: &dyn Fn() -> (u64, u64),
    phases: &mut Vec<Phase>,
    journal: &mut Journal,
) -> Result<End, anyhow::Error> {
    // --- inject ---
    let from = clock.at();
    object::create(api, object).await?;
    let name = journal.object.clone();
    progress.phase(
        "inject",
        &format!(
            "created {} `{name}` in namespace `{}`",
            inputs.kind, inputs.chaos_namespace
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let (records, kill_at, window_start) = loop {
        let obj = api.get(&name).await?;
        let records = object::records(&obj);
        if !records.is_empty() && records.iter().all(|r| r.phase == "Injected") {
            break (records, clock.at(), counts());
        }
        if Instant::now() >= deadline {
            let why = object::warning(&inputs.client, &inputs.chaos_namespace, &name)
                .await
                .unwrap_or_else(|| {
                    "no record of any target (is the Chaos Mesh controller running?)".into()
                });
            let detail = format!("Chaos Mesh did not inject within 30 s: {why}");
            progress.phase("inject", &detail);
            phases.push(phase(
                "inject",
                from,
                clock,
                PhaseOutcome::Failed,
                detail,
                json!({ "records": records }),
            ));
            return Ok(End::NotInjected);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    journal.killed = records
        .iter()
        .map(|r| r.id.rsplit('/').next().unwrap_or(&r.id).to_string())
        .collect();
    let detail = format!(
        "Chaos Mesh injected every target: killed {}",
        journal.killed.join(", ")
    );
    progress.phase("inject", &detail);
    phases.push(phase(
        "inject",
        from,
        clock,
        PhaseOutcome::Passed,
        detail,
        json!({ "records": records }),
    ));

    // --- during and recovery ---
    let from = clock.at();
    let timeout = inputs.limits.recovery_timeout_seconds;
    let killed_uids: BTreeSet<String> = before
        .values()
        .filter(|p| journal.killed.contains(&p.name))
        .map(|p| p.uid.clone())
        .collect();
    let mut replacements: BTreeMap<String, Replacement> = BTreeMap::new();
    let mut last = None;
    let recovery = loop {
        let since = clock.at() - kill_at;
        let pods = workload::pods(&inputs.client, &inputs.target_namespace, &inputs.service)
            .await
            .unwrap_or_default();
        for (uid, p) in &pods {
            if !before.contains_key(uid) {
                let r = replacements
                    .entry(uid.clone())
                    .or_insert_with(|| Replacement {
                        pod: p.name.clone(),
                        uid: uid.clone(),
                        ready_after: None,
                    });
                if p.ready && r.ready_after.is_none() {
                    r.ready_after = Some(since);
                    progress.phase(
                        "recovery",
                        &format!("replacement {} Ready after {since:.1} s", p.name),
                    );
                }
            }
        }
        let ready = pods.values().filter(|p| p.ready).count() as u64;
        let sample = Sample {
            at: since,
            ready,
            desired,
        };
        if last != Some((ready, desired)) {
            journal.unavailable.push(sample);
            last = Some((ready, desired));
        }
        let killed_gone = killed_uids
            .iter()
            .all(|u| pods.get(u).is_none_or(|p| p.terminating));
        let probe_ok = {
            // the probe answered in the last poll interval
            let (s, f) = counts();
            tokio::time::sleep(POLL).await;
            let (s2, f2) = counts();
            s2 > s && f2 == f
        };
        if ready >= desired && killed_gone && probe_ok {
            break Some(clock.at() - kill_at - POLL.as_secs_f64());
        }
        if since > timeout {
            break None;
        }
    };
    let window_end = counts();
    let window_seconds = clock.at() - kill_at;
    journal.replacements = replacements.into_values().collect();
    journal.recovery_seconds = recovery;
    let detail = match recovery {
        Some(r) => format!(
            "recovered in {r:.1} s: {desired}/{desired} ready, {} replacement(s), the probe answering",
            journal.replacements.len()
        ),
        None => format!("not recovered within {timeout:.0} s"),
    };
    progress.phase("recovery", &detail);
    phases.push(phase(
        "recovery",
        from,
        clock,
        if recovery.is_some() {
            PhaseOutcome::Passed
        } else {
            PhaseOutcome::Failed
        },
        detail,
        Value::Null,
    ));

    // --- verdict ---
    let from = clock.at();
    let requests = window_end.0.saturating_sub(window_start.0);
    let failed = window_end.1.saturating_sub(window_start.1);
    let prometheus_availability = match &inputs.prometheus {
        Some(p) => {
            server_availability(p, &inputs.target_namespace, &inputs.service, window_seconds).await
        }
        None => None,
    };
    let v = verdict::judge(
        &Figures {
            requests,
            failed,
            window_seconds,
            prometheus_availability,
            recovery_seconds: recovery,
        },
        &inputs.limits,
    );
    let detail = format!(
        "{}: {}",
        if v.passed { "passed" } else { "failed" },
        v.reasons.join("; ")
    );
    progress.phase("verdict", &detail);
    phases.push(phase(
        "verdict",
        from,
        clock,
        if v.passed {
            PhaseOutcome::Passed
        } else {
            PhaseOutcome::Failed
        },
        detail,
        json!({
            "requests": requests,
            "failed": failed,
            "windowSeconds": window_seconds,
            "prometheusAvailability": prometheus_availability,
        }),
    ));
    let end = if v.passed { End::Passed } else { End::Failed };
    journal.verdict = Some(v);
    Ok(end)
}

/// The service's availability over the last `seconds` as Prometheus recorded it (its own
/// `http_requests_total`, 5xx as failures); `None` without data.
async fn server_availability(
    p: &crate::prom::Client,
    namespace: &str,
    service: &str,
    seconds: f64,
) -> Option<f64> {
    let w = format!("{}s", (seconds.ceil() as u64).max(1) + 30);
    let sel = format!("namespace=\"{namespace}\",service=\"{service}\"");
    let q = format!(
        "1 - (sum(increase(http_requests_total{{{sel},status=~\"5..\"}}[{w}])) or vector(0)) / sum(increase(http_requests_total{{{sel}}}[{w}]))"
    );
    match p.query(&q, None).await {
        Ok(a) => a
            .data
            .vector()
            .and_then(|v| v.first())
            .map(|s| s.value.value)
            .filter(|x| x.is_finite()),
        Err(e) => {
            tracing::debug!("chaos: Prometheus availability: {e}");
            None
        }
    }
}
