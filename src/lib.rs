//! platformctl: one binary that renders, stands up and operates a production-shaped Kubernetes
//! platform from one `platform.yaml`.
//!
//! `run` dispatches a parsed command line; domain modules never import clap and never print:
//! `output` is the only place that writes to the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

pub mod addons;
pub mod child;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod crd;
pub mod doctor;
pub mod down;
pub mod exit;
pub mod init;
pub mod kube;
pub mod lint;
pub mod output;
pub mod prom;
pub mod ready;
pub mod render;
pub mod status;
pub mod up;

use std::process::ExitCode;

use cli::{Cli, Command};
use output::Printer;

/// Runs `cli` to completion and maps the outcome to the documented exit code.
pub fn main(cli: Cli) -> ExitCode {
    let printer = Printer::new(cli.global.output, cli.global.quiet);
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(&anyhow::Error::new(e).context("cannot start the async runtime"));
            return ExitCode::from(exit::Code::Environment as u8);
        }
    };
    let result = runtime.block_on(run(cli, &printer));
    let code = match result {
        Ok(outcome) => {
            printer.report(&outcome.report);
            outcome.code
        }
        Err(err) => {
            printer.error(&err);
            exit::classify(&err)
        }
    };
    ExitCode::from(code as u8)
}

/// The one flat dispatch over commands.
pub async fn run(cli: Cli, printer: &Printer) -> anyhow::Result<output::Outcome> {
    let ctx = cli::Context {
        file: cli.global.file,
        printer,
    };
    match cli.command {
        Command::Init(args) => cli::init::run(&ctx, args).await,
        Command::Render(args) => cli::render::run(&ctx, args).await,
        Command::Lint(args) => cli::lint::run(&ctx, args).await,
        Command::Doctor(args) => cli::doctor::run(&ctx, args).await,
        Command::Up(args) => cli::up::run(&ctx, args).await,
        Command::Status(args) => cli::status::run(&ctx, args).await,
        Command::Down(args) => cli::down::run(&ctx, args).await,
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLATFORMCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(output::color_enabled_stderr())
        .without_time()
        .try_init();
}
