//! `rollout get`, `status` and `watch`: the rollout as it is, and followed until it is done.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;

use super::{Target, Wait, code, resolve, status_word};
use crate::output::{Outcome, Report};
use crate::rollout::info::{Event, changes};
use crate::rollout::{self, Info, Verdict};

pub async fn get(ctx: &crate::cli::Context<'_>, t: Target) -> anyhow::Result<Outcome> {
    let r = resolve(ctx, t).await?;
    let snapshot = rollout::snapshot(&r.client, &r.namespace, &r.service, Some(&r.env)).await?;
    let info = Info::of(&snapshot);
    Ok(Outcome {
        code: crate::exit::Code::Success,
        report: Report {
            kind: "RolloutReport",
            status: phase_word(&info),
            fields: json!({ "environment": r.env, "rollout": info }),
            text: text(&info),
        },
    })
}

fn phase_word(info: &Info) -> &'static str {
    match info.phase {
        rollout::Phase::Healthy => "Healthy",
        rollout::Phase::Progressing => "Progressing",
        rollout::Phase::Paused => "Paused",
        rollout::Phase::Degraded => "Degraded",
    }
}

/// `rollout get` as text: a header, the revisions, the analysis runs with their measurements.
pub fn text(info: &Info) -> String {
    let mut out = String::new();
    let env = info.environment.as_deref().unwrap_or("?");
    let _ = writeln!(
        out,
        "rollout {} in {env} (namespace {}): {:?}{}",
        info.name,
        info.namespace,
        info.phase,
        if info.aborted { ", aborted" } else { "" }
    );
    if !info.message.is_empty() {
        let _ = writeln!(out, "  message   {}", info.message);
    }
    if let Some(g) = &info.gate {
        let _ = writeln!(out, "  waiting   {g}");
    }
    let strategy = match info.strategy {
        rollout::info::Strategy::Canary => "canary",
        rollout::info::Strategy::BlueGreen => "blue-green",
    };
    let mut line = format!("  strategy  {strategy}");
    if let Some(s) = &info.step {
        if s.index < s.total {
            let _ = write!(line, ", step {}/{} ({})", s.index + 1, s.total, s.action);
        } else {
            let _ = write!(line, ", every step done ({})", s.total);
        }
    }
    if let Some(w) = info.set_weight {
        let _ = write!(line, ", weight {w}");
        if let Some(a) = info.actual_weight.filter(|a| *a != w) {
            let _ = write!(line, " (router at {a})");
        }
    }
    let _ = writeln!(out, "{line}");
    if let (Some(a), Some(p)) = (&info.active_service, &info.preview_service) {
        let _ = writeln!(out, "  services  active {a}, preview {p}");
    }
    let rp = &info.replicas;
    let _ = writeln!(
        out,
        "  replicas  {} desired, {} current, {} updated, {} ready, {} available",
        rp.desired, rp.current, rp.updated, rp.ready, rp.available
    );
    if !info.revisions.is_empty() {
        let _ = writeln!(
            out,
            "\nREVISION  ROLE            READY  IMAGE  (REPLICASET)"
        );
        for rev in &info.revisions {
            let _ = writeln!(
                out,
                "{:<9} {:<15} {:<6} {}  ({})",
                rev.revision,
                rev.roles.join(","),
                format!("{}/{}", rev.ready, rev.replicas),
                rev.images.join(", "),
                rev.replica_set
            );
        }
    }
    if !info.analysis_runs.is_empty() {
        let _ = writeln!(out, "\nANALYSIS RUN (REVISION): PHASE");
        for run in &info.analysis_runs {
            let _ = writeln!(
                out,
                "{} ({}): {}{}",
                run.name,
                run.revision.map(|r| r.to_string()).unwrap_or("?".into()),
                run.phase,
                if run.message.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", run.message)
                }
            );
            for m in &run.metrics {
                let values: Vec<String> = m
                    .measurements
                    .iter()
                    .map(|x| {
                        let mark = match x.phase.as_str() {
                            "Successful" => "ok",
                            "Failed" => "FAILED",
                            "Error" => "error",
                            "Inconclusive" => "inconclusive",
                            other => other,
                        };
                        let v = if x.value.is_empty() {
                            &x.message
                        } else {
                            &x.value
                        };
                        format!("{v} {mark}")
                    })
                    .collect();
                let condition = m
                    .success_condition
                    .as_deref()
                    .or(m.failure_condition.as_deref())
                    .unwrap_or("-");
                let _ = writeln!(
                    out,
                    "  {} {} ({}): {}",
                    m.name,
                    m.phase,
                    condition,
                    if values.is_empty() {
                        "no measurement yet".to_string()
                    } else {
                        values.join(", ")
                    }
                );
            }
        }
    }
    out
}

/// `status` (progress on stderr, the end on stdout) and `watch` (every change on stdout): follow
/// the rollout until its verdict is final or `timeout` runs out.
pub async fn wait(ctx: &crate::cli::Context<'_>, w: Wait, events: bool) -> anyhow::Result<Outcome> {
    let Wait { target, timeout } = w;
    let mut signals = crate::cli::Signals::install();
    let r = resolve(ctx, target).await?;
    let started = Instant::now();
    let mut rx = rollout::follow(&r.client, &r.namespace, &r.service, Some(&r.env))
        .await
        .context("cannot watch the rollout")?;
    let mut last: Option<Info> = None;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let verdict = loop {
        tokio::select! {
            next = rx.recv() => {
                let Some(next) = next else {
                    anyhow::bail!("the watch of rollout `{}` ended", r.service);
                };
                let info = next.context("cannot watch the rollout")?;
                for e in changes(last.as_ref(), &info) {
                    show(ctx, &info, &e, events, started);
                }
                let verdict = info.verdict();
                last = Some(info);
                if !matches!(verdict, Verdict::Progressing(_)) {
                    break verdict;
                }
            }
            () = &mut deadline => {
                let now = last.as_ref().map(Info::progress).unwrap_or_default();
                break Verdict::Progressing(format!(
                    "rollout `{}` in {} not done after {}: {now}",
                    r.service, r.env, crate::slo::duration(timeout.as_secs_f64())
                ));
            }
            signal = signals.recv() => {
                return Err(crate::exit::Interrupted(format!(
                    "{signal}: stopped watching rollout `{}` in {} (nothing was changed)",
                    r.service, r.env
                )).into());
            }
        }
    };
    let info = last.expect("a verdict comes from a view");
    let message = match &verdict {
        Verdict::Healthy => format!(
            "rollout `{}` in {} is Healthy: {}",
            r.service,
            r.env,
            info.stable_image().unwrap_or("(no image)")
        ),
        Verdict::Progressing(m) | Verdict::Gate(m) | Verdict::Aborted(m) | Verdict::Degraded(m) => {
            m.clone()
        }
    };
    Ok(Outcome {
        code: code(&verdict),
        report: Report {
            kind: "RolloutStatusReport",
            status: status_word(&verdict),
            fields: json!({
                "environment": r.env,
                "message": message,
                "seconds": started.elapsed().as_secs_f64(),
                "rollout": info,
            }),
            text: message,
        },
    })
}

/// One change: on stdout for `watch`, as a note on stderr for `status`.
fn show(ctx: &crate::cli::Context<'_>, info: &Info, e: &Event, events: bool, started: Instant) {
    let at = started.elapsed().as_secs_f64();
    let line = format!("{at:>7.2}s  {e}");
    if events {
        let mut event = serde_json::to_value(e).unwrap_or_default();
        event["kind"] = "RolloutEvent".into();
        event["rollout"] = info.name.clone().into();
        event["namespace"] = info.namespace.clone().into();
        event["seconds"] = at.into();
        ctx.printer.event(&line, &event);
    } else {
        ctx.printer.note(&format!("rollout: {line}"));
    }
}
