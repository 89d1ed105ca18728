//! `platformctl rollout …`: a service's Rollout in one environment, operated as the Argo Rollouts
//! kubectl plugin operates it (the same patches), with exit codes CI can act on and `-o json`.

mod act;
mod show;
mod undo;

use std::time::Duration;

use crate::exit::{Code, UsageError};
use crate::rollout::Verdict;

/// A service's Rollout: get, status, watch, promote, abort, retry, undo, pause, resume.
///
/// The same effects as `kubectl argo rollouts`, by the same patches, on the Rollout of SERVICE in
/// the environment `--env` (its namespace comes from platform.yaml). `get` shows revisions,
/// ReplicaSets, weights and analysis runs with each measurement; `status` waits until the rollout
/// is done and `watch` prints every change on the way. Exit codes of `status` and `watch`: 0
/// Healthy, 5 aborted or Degraded, 6 paused until a person promotes it, 4 timed out, 130
/// interrupted.
///
/// Argo CD owns the Rollout's spec: a status change (promote, abort, retry) sticks, a spec change
/// Git does not have (undo, pause) is put back by an Application that self-heals; `undo` says so,
/// and `undo --git` makes the rollback a Git change that lasts.
///
/// A change nothing writes the Rollout after for 3 s is nudged: platformctl touches its
/// `platformctl.dev/nudged-at` annotation, so that a controller that lost the change from its
/// cache (Argo Rollouts v1.9 can, when the change comes while it reconciles) reads it afresh.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show the rollout: phase, step and weight, revisions with their images and ReplicaSets,
    /// analysis runs with each metric's measurements against its condition. Reads only; exits 0.
    Get(Target),
    /// Wait until the rollout is done: exits 0 Healthy, 5 aborted or Degraded (saying why: the
    /// failed metric, its value and condition), 6 paused for a person, 4 at `--timeout`.
    Status(Wait),
    /// Print each change of the rollout as the watch reports it (steps, weights, analysis
    /// measurements) until it is done; the exit codes of `status`. `-o json`: one JSON object
    /// per line.
    Watch(Wait),
    /// Continue a paused rollout: the next canary step, or past the blue-green gate (`--full`:
    /// skip every remaining step and analysis).
    Promote(Promote),
    /// Abort the update: the controller scales the new revision down and routes all traffic to
    /// the stable one.
    Abort(Target),
    /// Retry an aborted update from its first step.
    Retry(Target),
    /// Go back to an earlier revision's pod template (default: the one before the newest);
    /// `--git`: by a Git change, which lasts where Argo CD self-heals.
    Undo(Undo),
    /// Pause the rollout where it is (spec.paused).
    Pause(Target),
    /// Resume a paused rollout (clears spec.paused and its pause conditions, as Argo CD's
    /// `resume` action).
    Resume(Target),
}

#[derive(Debug, clap::Args)]
pub struct Target {
    /// The service (its Rollout has its name).
    pub service: String,
    /// The environment of platform.yaml the Rollout runs in.
    #[arg(long, value_name = "ENV")]
    pub env: String,
    #[command(flatten)]
    pub cluster: crate::cli::up::ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct Wait {
    #[command(flatten)]
    pub target: Target,
    /// Give up after this long (exit 4): 90s, 10m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::cli::up::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, clap::Args)]
pub struct Promote {
    #[command(flatten)]
    pub target: Target,
    /// Skip every remaining step, pause and analysis: straight to 100%.
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, clap::Args)]
pub struct Undo {
    #[command(flatten)]
    pub target: Target,
    /// The revision to go back to (`rollout get` lists them); default the one before the newest.
    #[arg(long, value_name = "N")]
    pub to_revision: Option<i64>,
    /// Go back through Git instead of patching the live Rollout: that revision's tag is written
    /// into platform.yaml, the tree re-rendered, committed ("roll back SERVICE to TAG in ENV")
    /// and pushed where Argo CD reads (as `promote` pushes), and the Application refreshed.
    /// Argo CD deploys it as a new release, through the strategy's steps and gates (a blue-green
    /// rollback within `scaleDownDelaySeconds` of the switch, while the old ReplicaSet still
    /// runs, is switched back at once, as the controller fast-tracks it); the change lasts where
    /// the Application self-heals, which a live undo does not.
    #[arg(long)]
    pub git: bool,
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<crate::output::Outcome> {
    use crate::rollout::Action;
    match args.command {
        Command::Get(t) => show::get(ctx, t).await,
        Command::Status(w) => show::wait(ctx, w, false).await,
        Command::Watch(w) => show::wait(ctx, w, true).await,
        Command::Promote(p) => {
            let action = if p.full {
                Action::PromoteFull
            } else {
                Action::Promote
            };
            act::run(ctx, p.target, action).await
        }
        Command::Abort(t) => act::run(ctx, t, Action::Abort).await,
        Command::Retry(t) => act::run(ctx, t, Action::Retry).await,
        Command::Undo(u) => {
            if u.to_revision.is_some_and(|n| n < 1) {
                return Err(
                    UsageError::new("`--to-revision` is a revision number, 1 or more").into(),
                );
            }
            let to = u.to_revision.unwrap_or(0);
            if u.git {
                undo::in_git(ctx, u.target, to).await
            } else {
                act::run(ctx, u.target, Action::Undo(to)).await
            }
        }
        Command::Pause(t) => act::run(ctx, t, Action::Pause).await,
        Command::Resume(t) => act::run(ctx, t, Action::Resume).await,
    }
}

/// The resolved target: platform, client, environment and namespace.
struct Resolved {
    platform: crate::config::Platform,
    client: kube::Client,
    service: String,
    env: String,
    namespace: String,
}

async fn resolve(ctx: &super::Context<'_>, t: Target) -> anyhow::Result<Resolved> {
    let Target {
        service,
        env,
        cluster,
    } = t;
    let platform = cluster.platform(ctx)?;
    crate::cli::validate::check_environment(&platform, Some(&env))?;
    crate::cli::validate::check_service(&platform, &service)?;
    let namespace = platform
        .environments
        .iter()
        .find(|e| e.name == env)
        .map(|e| e.namespace.clone())
        .unwrap_or_default();
    let target = crate::cluster::locate(&platform.cluster)?;
    let client = crate::kube::client_for(&target).await?;
    Ok(Resolved {
        platform,
        client,
        service,
        env,
        namespace,
    })
}

/// The documented exit code of a verdict (a rollout still progressing has timed out when this is
/// asked).
pub fn code(verdict: &Verdict) -> Code {
    match verdict {
        Verdict::Healthy => Code::Success,
        Verdict::Aborted(_) | Verdict::Degraded(_) => Code::RolledBack,
        Verdict::Gate(_) => Code::Paused,
        Verdict::Progressing(_) => Code::TimedOut,
    }
}

/// `status` of a JSON report for a verdict.
pub fn status_word(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Healthy => "Healthy",
        Verdict::Aborted(_) => "Aborted",
        Verdict::Degraded(_) => "Degraded",
        Verdict::Gate(_) => "Paused",
        Verdict::Progressing(_) => "TimedOut",
    }
}
