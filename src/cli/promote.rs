//! `platformctl promote ENV`: the version running healthy in ENV's predecessor becomes ENV's,
//! through Git, and with `--wait` is followed to the end.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::exit::{Code, Interrupted, UsageError};
use crate::output::{Outcome, Report};
use crate::promote::{self, Gate, Source, wait::Seen};
use crate::rollout::{Info, Verdict};

/// Promote what runs healthy in the previous environment to ENV, through Git.
///
/// The source is ENV's predecessor in platform.yaml's order of environments. For each service
/// (all, or `--service`), the version is read from the cluster: the Rollout there is Healthy,
/// its stable ReplicaSet's image gives the tag, and the environment's Application is Synced at a
/// known revision; a service that is not is refused (exit 1, saying why). The tags are written
/// into ENV's in platform.yaml (in place; a tag's `versionConfig` comes with it), the tree is
/// re-rendered, committed ("promote customer-api 0.2.0 to prod") and pushed where Argo CD reads
/// it (`gitops.local`: the in-cluster server, through a port-forward; `gitops.remote`: with your
/// git credentials; fast-forward only), and the Application is refreshed at once, through the
/// Kubernetes API (its `argocd.argoproj.io/refresh` annotation: `patch` on that Application,
/// no Argo CD account or token).
///
/// Before a `production` environment two gates must be open: each of ENV's SLOs for the service
/// has at least `promotion.minErrorBudget` (default 25%) of its error budget left, live from
/// Prometheus, and the predecessor's last AnalysisRun was Successful. A closed gate exits 1 with
/// its figures; `--force` passes it and the report records that it did.
///
/// `--wait` follows Argo CD's sync to the pushed revision and then the Rollout step by step
/// (weights, analysis runs, each measurement against its condition) and exits 0 promoted; 5
/// when the analysis failed and the controller rolled back, after pushing a revert of the
/// promotion commit so that Git says what runs again (`--no-revert` keeps it); 6 when the
/// rollout waits for a person (the blue-green gate, a pause without duration: the message names
/// the preview Service and the command that continues); 4 at `--timeout`; 130 on Ctrl-C, saying
/// what was pushed. Running it again converges: a tag already promoted is not committed twice.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment to promote to.
    pub env: String,
    /// Only these services (repeatable); default every service.
    #[arg(long = "service", value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Follow the sync and the rollout to the end; the exit code says how it ended.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` follows before giving up (exit 4): 90s, 10m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = crate::cli::up::parse_duration)]
    pub timeout: Duration,
    /// Read the source and judge the gates, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Pass closed gates (recorded in the report).
    #[arg(long)]
    pub force: bool,
    /// After an abort, keep the promotion commit instead of pushing its revert.
    #[arg(long)]
    pub no_revert: bool,
    #[command(flatten)]
    pub cluster: crate::cli::up::ClusterArgs,
}

/// Steps with their time since the start, for the report.
struct Journal<'a> {
    ctx: &'a crate::cli::Context<'a>,
    started: Instant,
    steps: Mutex<Vec<Value>>,
}

impl Journal<'_> {
    fn step(&self, kind: &str, text: &str, mut fields: Value) {
        let at = self.started.elapsed().as_secs_f64();
        self.ctx
            .printer
            .note(&format!("promote: {at:>7.2}s  {text}"));
        fields["seconds"] = at.into();
        fields["type"] = kind.into();
        fields["message"] = text.into();
        self.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fields);
    }

    fn seen(&self, s: Seen) {
        match s {
            Seen::Application(line) => self.step("sync", &format!("application {line}"), json!({})),
            Seen::Rollout { service, event, .. } => {
                let fields = serde_json::to_value(&event).unwrap_or_default();
                let kind = fields["type"].as_str().unwrap_or("rollout").to_string();
                let mut fields = fields;
                fields["service"] = service.clone().into();
                self.step(&kind, &format!("{service}: {event}"), fields);
            }
        }
    }

    fn steps(&self) -> Vec<Value> {
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub async fn run(ctx: &crate::cli::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args {
        env,
        services,
        wait,
        timeout,
        dry_run,
        force,
        no_revert,
        cluster,
    } = args;
    let mut signals = crate::cli::Signals::install();
    let journal = Journal {
        ctx,
        started: Instant::now(),
        steps: Mutex::new(Vec::new()),
    };
    let platform = cluster.platform(ctx)?;
    super::validate::check_environment(&platform, Some(&env))?;
    let Some(from) = promote::predecessor(&platform, &env).map(|e| e.name.clone()) else {
        return Err(UsageError::new(format!(
            "`{env}` is the first environment: there is nothing before it to promote from"
        ))
        .hint(format!(
            "set its versions with `platformctl set-image {env} SERVICE=TAG --commit`"
        ))
        .into());
    };
    let services = if services.is_empty() {
        platform.services.iter().map(|s| s.name.clone()).collect()
    } else {
        for s in &services {
            super::validate::check_service(&platform, s)?;
        }
        services
    };
    let production = platform.environment(&env).is_some_and(|e| e.production);
    let target = crate::cluster::locate(&platform.cluster)?;
    let client = crate::kube::client_for(&target).await?;
    let sources = match promote::source(&client, &platform, &from, &env, &services).await {
        Ok(s) => s,
        Err(promote::Error::Refused(why)) => {
            return Ok(refused(&env, &from, &why));
        }
        Err(e) => return Err(e).context("cannot read what runs in the source environment"),
    };
    for s in &sources {
        journal.step(
            "source",
            &format!(
                "{}: {} runs {} (Healthy, {from} synced at {})",
                s.service,
                from,
                s.version,
                s.revision.get(..12).unwrap_or(&s.revision)
            ),
            json!({"service": s.service, "version": s.version}),
        );
    }
    // Gates before production.
    let mut gates: Vec<Gate> = Vec::new();
    if production {
        let specs: Vec<crate::slo::Spec> = crate::slo::specs(&platform)
            .into_iter()
            .filter(|s| s.environment == env && services.contains(&s.service))
            .collect();
        if !specs.is_empty() {
            let namespace =
                crate::addons::namespace(&platform, crate::addons::Kind::KubePrometheusStack);
            let prometheus = crate::prom::connect::prometheus(&client, namespace, None)
                .await
                .context("cannot ask the platform's Prometheus for the error budgets")?;
            let statuses = crate::slo::collect(&prometheus, &specs)
                .await
                .context("cannot ask the platform's Prometheus for the error budgets")?;
            gates.extend(promote::budget_gates(&platform, &statuses));
        }
        gates.extend(sources.iter().map(|s| promote::analysis_gate(&from, s)));
        for g in gates.iter_mut().filter(|g| !g.passed) {
            if force {
                g.forced = true;
            }
        }
        for g in &gates {
            let mark = match (g.passed, g.forced) {
                (true, _) => "open",
                (false, true) => "closed, passed with --force",
                (false, false) => "closed",
            };
            journal.step(
                "gate",
                &format!("gate {}: {mark}: {}", g.name, g.message),
                json!({"gate": g.name}),
            );
        }
        if gates.iter().any(|g| !g.passed && !g.forced) {
            let closed: Vec<&str> = gates
                .iter()
                .filter(|g| !g.passed)
                .map(|g| g.message.as_str())
                .collect();
            let message = format!(
                "promotion to {env} refused: {} (`--force` passes it)",
                closed.join("; ")
            );
            return Ok(report(&Summary::before_push(
                &env,
                &from,
                &sources,
                &gates,
                journal.steps(),
                "GateClosed",
                Code::CheckFailed,
                message,
            )));
        }
    }
    let tags: Vec<(String, String, String)> = sources
        .iter()
        .map(|s| (s.service.clone(), env.clone(), s.version.clone()))
        .collect();
    let what: Vec<String> = sources
        .iter()
        .filter(|s| s.version != s.current)
        .map(|s| format!("{} {}", s.service, s.version))
        .collect();
    if dry_run {
        let message = if what.is_empty() {
            format!("dry run: {env} already has every version {from} runs")
        } else {
            format!("dry run: would promote {} to {env}", what.join(", "))
        };
        return Ok(report(&Summary::before_push(
            &env,
            &from,
            &sources,
            &gates,
            journal.steps(),
            "DryRun",
            Code::Success,
            message,
        )));
    }
    if let Some(signal) = signals.pending() {
        return Err(Interrupted(format!(
            "{signal} before anything was written: run `platformctl promote {env}` again"
        ))
        .into());
    }
    // Git: edit, render, commit, push, refresh.
    let project = ctx.project_dir();
    let written = crate::release::write(&ctx.file, &tags, &super::up::templates_dir(&project))?;
    let mut message_of_commit = format!("promote {} to {env}", what.join(", "));
    if gates.iter().any(|g| g.forced) {
        message_of_commit.push_str("\n\nGates passed with --force:\n");
        for g in gates.iter().filter(|g| g.forced) {
            message_of_commit.push_str(&format!("- {}\n", g.message));
        }
    }
    let commit = if written.changes.is_empty() {
        None
    } else {
        crate::release::commit(&ctx.file, &message_of_commit)
            .await
            .context("cannot commit the promotion")?
    };
    if let Some(c) = &commit {
        journal.step(
            "commit",
            &format!(
                "committed {} \"promote {} to {env}\"",
                short(c),
                what.join(", ")
            ),
            json!({"commit": c}),
        );
    } else {
        journal.step(
            "commit",
            &format!("{env} already has these versions: nothing to commit"),
            json!({}),
        );
    }
    let push = promote::git::push(&client, &platform, &project)
        .await
        .context("cannot push the promotion")?;
    journal.step(
        "push",
        &format!(
            "{} {} to {} {}",
            if push.changed { "pushed" } else { "already at" },
            short(&push.commit),
            push.url,
            push.branch
        ),
        json!({"commit": push.commit, "url": push.url}),
    );
    let app = promote::application(&platform, &env);
    promote::git::refresh(&client, &platform, &app)
        .await
        .context("cannot refresh the application")?;
    journal.step(
        "refresh",
        &format!("asked Argo CD to refresh application `{app}` (its refresh annotation, through the Kubernetes API: `patch` on that Application only)"),
        json!({"application": app}),
    );
    let base = Summary {
        env: &env,
        from: &from,
        sources: &sources,
        gates: &gates,
        commit: commit.clone(),
        push: Some(push.clone()),
        revert: None,
        steps: Vec::new(),
        outcome: "Pushed",
        code: Code::Success,
        message: String::new(),
        rollouts: Vec::new(),
    };
    if !wait {
        if let Some(signal) = signals.pending() {
            return Err(Interrupted(format!(
                "{signal}: {} was pushed to {} {} and Argo CD deploys it on its own; `platformctl promote {env} --wait` follows it",
                short(&push.commit), push.url, push.branch
            ))
            .into());
        }
        return Ok(report(&Summary {
            steps: journal.steps(),
            message: format!(
                "pushed {}; Argo CD deploys it (`--wait` follows it, `platformctl rollout status SERVICE --env {env}` too)",
                short(&push.commit)
            ),
            ..base
        }));
    }
    // --wait: the sync, then each rollout, under the timeout and the signals.
    let namespace = platform
        .environment(&env)
        .map(|e| e.namespace.clone())
        .unwrap_or_default();
    let follow = async {
        promote::wait::synced(&client, &platform, &app, &push.commit, &|s| journal.seen(s)).await?;
        // Every service's Rollout at once: each step is reported as it happens, whichever
        // service it belongs to, and the wait lasts as long as the slowest.
        let seen = |x| journal.seen(x);
        let each = sources
            .iter()
            .map(|s| promote::wait::rollout(&client, &namespace, &env, &s.service, &seen));
        futures::future::try_join_all(each).await
    };
    let ended = tokio::select! {
        r = follow => Some(r),
        () = tokio::time::sleep(timeout) => None,
        signal = signals.recv() => {
            return Err(Interrupted(format!(
                "{signal} while following the promotion: {} was pushed to {} {} and Argo CD deploys it on its own; `platformctl promote {env} --wait` follows it again (nothing is committed twice)",
                short(&push.commit), push.url, push.branch
            )).into());
        }
    };
    let Some(ended) = ended else {
        return Ok(report(&Summary {
            steps: journal.steps(),
            outcome: "TimedOut",
            code: Code::TimedOut,
            message: format!(
                "the promotion to {env} was not done after {}: {} is pushed; `platformctl promote {env} --wait` follows it again",
                crate::slo::duration(timeout.as_secs_f64()),
                short(&push.commit)
            ),
            ..base
        }));
    };
    let results = ended.context("cannot follow the promotion")?;
    let rollouts: Vec<Info> = results.iter().map(|(_, i)| i.clone()).collect();
    if let Some((Verdict::Gate(why), _)) =
        results.iter().find(|(v, _)| matches!(v, Verdict::Gate(_)))
    {
        return Ok(report(&Summary {
            steps: journal.steps(),
            outcome: "Paused",
            code: Code::Paused,
            message: why.clone(),
            rollouts,
            ..base
        }));
    }
    let failed = results
        .iter()
        .find(|(v, _)| matches!(v, Verdict::Aborted(_) | Verdict::Degraded(_)));
    let Some((Verdict::Aborted(why) | Verdict::Degraded(why), _)) = failed else {
        let done: Vec<String> = results
            .iter()
            .map(|(_, i)| format!("{} {}", i.name, i.stable_image().unwrap_or("?")))
            .collect();
        return Ok(report(&Summary {
            steps: journal.steps(),
            outcome: "Promoted",
            code: Code::Success,
            message: format!("promoted to {env}: {}", done.join(", ")),
            rollouts,
            ..base
        }));
    };
    // Rolled back by the controller: Git goes back too, so that Argo CD does not deploy the bad
    // version again.
    let mut message = why.clone();
    let mut revert = None;
    match (&commit, no_revert) {
        (Some(c), false) => {
            let reverted = promote::git::revert(&project, c)
                .await
                .context("cannot revert the promotion commit")?;
            journal.step("revert", &format!("committed {} reverting {}", short(&reverted), short(c)), json!({"commit": reverted}));
            let pushed = promote::git::push(&client, &platform, &project)
                .await
                .context("cannot push the revert")?;
            journal.step("push", &format!("pushed {} to {} {}", short(&pushed.commit), pushed.url, pushed.branch), json!({"commit": pushed.commit}));
            promote::git::refresh(&client, &platform, &app).await?;
            let settle = async {
                promote::wait::synced(&client, &platform, &app, &pushed.commit, &|s| journal.seen(s))
                    .await
            };
            match tokio::time::timeout(Duration::from_secs(120), settle).await {
                Ok(r) => r.context("cannot follow the revert's sync")?,
                Err(_) => journal.step("sync", "the revert was not synced within 2 min: Argo CD syncs it on its own", json!({})),
            }
            message.push_str(&format!(
                "; pushed {} reverting the promotion commit {}, so Git says what runs again",
                short(&pushed.commit),
                short(c)
            ));
            revert = Some(pushed.commit);
        }
        (Some(c), true) => message.push_str(&format!(
            "; the promotion commit {} stays (`--no-revert`): Argo CD keeps the new version as desired, revert it yourself (`git revert {}`) and push",
            short(c), short(c)
        )),
        (None, _) => message.push_str("; this run made no commit, so there is none to revert"),
    }
    Ok(report(&Summary {
        steps: journal.steps(),
        outcome: "Aborted",
        code: Code::RolledBack,
        message,
        rollouts,
        revert,
        ..base
    }))
}

fn short(c: &str) -> &str {
    c.get(..12).unwrap_or(c)
}

impl<'a> Summary<'a> {
    /// A promotion that ended before anything was pushed.
    #[allow(clippy::too_many_arguments)]
    fn before_push(
        env: &'a str,
        from: &'a str,
        sources: &'a [Source],
        gates: &'a [Gate],
        steps: Vec<Value>,
        outcome: &'static str,
        code: Code,
        message: String,
    ) -> Summary<'a> {
        Summary {
            env,
            from,
            sources,
            gates,
            commit: None,
            push: None,
            revert: None,
            steps,
            outcome,
            code,
            message,
            rollouts: Vec::new(),
        }
    }
}

struct Summary<'a> {
    env: &'a str,
    from: &'a str,
    sources: &'a [Source],
    gates: &'a [Gate],
    commit: Option<String>,
    push: Option<promote::git::Push>,
    revert: Option<String>,
    steps: Vec<Value>,
    outcome: &'static str,
    code: Code,
    message: String,
    rollouts: Vec<Info>,
}

fn refused(env: &str, from: &str, why: &str) -> Outcome {
    report(&Summary::before_push(
        env,
        from,
        &[],
        &[],
        Vec::new(),
        "Refused",
        Code::CheckFailed,
        format!("promotion from {from} to {env} refused: {why}"),
    ))
}

fn report(s: &Summary<'_>) -> Outcome {
    let services: Vec<Value> = s
        .sources
        .iter()
        .map(|x| {
            json!({
                "service": x.service,
                "from": x.current,
                "to": x.version,
                "image": x.image,
                "sourceRevision": x.revision,
            })
        })
        .collect();
    let analysis: Vec<Value> = s
        .rollouts
        .iter()
        .map(|i| json!({"service": i.name, "analysisRuns": i.analysis_runs}))
        .collect();
    Outcome {
        code: s.code,
        report: Report {
            kind: "PromotionReport",
            status: s.outcome,
            fields: json!({
                "environment": s.env,
                "source": s.from,
                "services": services,
                "gates": s.gates,
                "commit": s.commit,
                "push": s.push,
                "revert": s.revert,
                "steps": s.steps,
                "analysis": analysis,
                "message": s.message,
                "exitCode": s.code as u8,
            }),
            text: s.message.clone(),
        },
    }
}
