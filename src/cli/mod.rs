//! The command line: global flags, the command enum, one file per command. Each command's
//! `run` resolves its arguments, calls one domain operation and builds a report.

pub mod init;
pub mod lint;
pub mod render;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::{Format, Printer};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  a check said no (lint violation, drift, failed validation)
  2  usage or configuration error
  3  environment error (file system, cluster or endpoint unreachable, tool missing)
  4  timed out waiting      5  rollout aborted or rolled back
  6  paused awaiting manual promotion      130  interrupted

Start with `platformctl init --example customer-platform`, then `platformctl render`.";

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a platform.yaml from a reference example (and nothing else).
    Init(init::Args),
    /// Render the GitOps tree (argocd/, envs/, chaos/) from platform.yaml.
    Render(render::Args),
    /// Check the rendered tree offline: strict schemas and platform policy.
    Lint(lint::Args),
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
