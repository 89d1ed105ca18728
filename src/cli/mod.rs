//! The command line: global flags, the command enum, one file per command. Each command's
//! `run` resolves its arguments, calls one domain operation and builds a report.

pub mod chaos;
pub mod doctor;
pub mod down;
pub mod init;
pub mod lint;
pub mod load;
pub mod promote;
pub mod render;
pub mod rollout;
pub mod set_image;
pub mod slo;
pub mod status;
pub mod up;
pub mod validate;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::{Format, Printer};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  a check said no (lint violation, drift, a failed validate check, a spent SLO budget,
     a failed load threshold, a chaos verdict that failed or a service not in steady state)
  2  usage or configuration error
  3  environment error (file system, cluster or endpoint unreachable, tool missing)
  4  timed out waiting      5  rollout aborted or rolled back
  6  paused awaiting manual promotion      130  interrupted

Start with `platformctl init --example customer-platform` (writes, renders and commits the
project), then `platformctl up` (`--driver existing` for any kubeconfig context).";

/// Stand up and operate a production-shaped Kubernetes platform from one platform.yaml.
#[derive(Debug, Parser)]
#[command(name = "platformctl", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The platform definition; the rendered tree lives in its directory.
    #[arg(short = 'f', long, global = true, env = "PLATFORMCTL_FILE", default_value = crate::config::FILE_NAME)]
    pub file: PathBuf,
    /// Result format on stdout: human text or a versioned JSON report.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Print only the result: no notes on stderr.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// More logging on stderr (-v info, -vv debug); PLATFORMCTL_LOG takes a filter.
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// A command's help comes from one doc comment: the variant's, or, where the variant has none,
/// its `Args` struct's (a doc on the variant would replace the struct's long description).
#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::Args),
    Render(render::Args),
    Lint(lint::Args),
    /// Stand the platform up (or converge it again): cluster, addons, GitOps, applications.
    ///
    /// Runs the plan preflight → cluster → namespaces → secrets → addons → images → gitops →
    /// apps → wait, printing each step's timing. Every step is idempotent: on a converged platform
    /// `up` changes nothing, and a run that was interrupted (Ctrl-C, a lost connection, a kill) is
    /// finished by running `up` again. `--driver existing` uses any kubeconfig context instead of
    /// minikube. Exits 0 when the platform is up, 2 on bad input, 3 when the cluster or a tool is
    /// unreachable, 4 when a wait timed out.
    Up(up::Args),
    /// Show nodes, addons, applications per environment and rollouts on one screen.
    ///
    /// Nodes, addons against their pinned chart versions, the platform's Argo CD applications
    /// per environment (sync and health), and rollouts with phase, canary step and weight. Reads
    /// only; exits 0 whatever it finds (`-o json`: status `Healthy` or `Degraded`).
    Status(status::Args),
    /// Remove the platform: the minikube profile, or only what `up` installed (--keep-cluster).
    ///
    /// `--keep-cluster` removes the platform's Argo CD applications (Argo CD deletes what they
    /// deployed), its projects, the Helm releases and the namespaces and Secrets `up` labelled.
    /// Asks first on a terminal; `--yes` for CI. With `--driver existing` only `--keep-cluster`
    /// is allowed: platformctl never deletes a cluster it did not create.
    Down(down::Args),
    /// Check prerequisites and known local-cluster pitfalls, before and after `up`.
    ///
    /// Tools and versions (minikube, Docker or Podman, helm, kubectl); this machine's CPUs and
    /// memory against the nodes platform.yaml asks for (with minikube's docker driver every node
    /// shares this host); multi-node minikube pitfalls (inotify limits, hostPath storage on the
    /// control plane only); the cluster as it is now: the minikube profile's state and node
    /// count, or the kubeconfig context with `--driver existing`; and, unless `--offline`,
    /// whether each addon's chart repository holds the pinned version (a repository that cannot
    /// be reached is a warning). Every finding that is not fine comes with a fix. Changes
    /// nothing. Exits 1 when a finding is an error; warnings alone exit 0.
    Doctor(doctor::Args),
    SetImage(set_image::Args),
    Promote(promote::Args),
    Rollout(rollout::Args),
    Validate(validate::Args),
    Slo(slo::Args),
    Load(load::Args),
    Chaos(chaos::Args),
}

/// What every command gets besides its own arguments.
pub struct Context<'a> {
    pub file: PathBuf,
    pub printer: &'a Printer,
}

impl Context<'_> {
    /// Directory holding platform.yaml: the root of the rendered tree.
    pub fn project_dir(&self) -> PathBuf {
        match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM, caught from the moment [`Signals::install`] is called: a signal
/// that comes while a command is busy (a push, a commit) is kept until it asks.
pub struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Resolves at the next signal, naming it; never, where the handlers could not be installed.
    pub async fn recv(&mut self) -> &'static str {
        let int = async {
            match self.int.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        let term = async {
            match self.term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = int => "interrupted (SIGINT)",
            () = term => "terminated (SIGTERM)",
        }
    }

    /// A signal that came since the last ask, if one did.
    pub fn pending(&mut self) -> Option<&'static str> {
        use futures::FutureExt;
        self.recv().now_or_never()
    }
}
