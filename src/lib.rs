//! platformctl: one binary that renders, stands up and operates a production-shaped Kubernetes
//! platform from one `platform.yaml`.
//!
//! `run` dispatches a parsed command line; domain modules never import clap and never print:
//! `output` is the only place that writes to the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

pub mod addons;
pub mod chaos;
pub mod child;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod crd;
pub mod doctor;
pub mod down;
pub mod exit;
pub mod init;
pub mod junit;
pub mod kube;
pub mod lint;
pub mod load;
pub mod output;
pub mod prom;
pub mod promote;
pub mod ready;
pub mod release;
pub mod render;
pub mod rollout;
pub mod slo;
pub mod status;
pub mod up;
pub mod validate;

use std::process::ExitCode;

use cli::{Cli, Command};
use output::Printer;

/// A command line that did not parse: `--help` and `--version` print as clap prints them
/// (exit 0); anything else is a usage error (exit 2), with a JSON report on stdout when the
/// arguments ask for `-o json`.
pub fn parse_failed(
    err: clap::Error,
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        let code = if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            exit::Code::Usage
        } else {
            exit::Code::Success
        };
        return ExitCode::from(code as u8);
    }
    output::usage_error(&err, asks_for_json(args));
    ExitCode::from(exit::Code::Usage as u8)
}

/// Whether raw arguments set `-o json`/`--output json` (in any of clap's spellings), for when
/// they did not parse.
fn asks_for_json(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    args.iter().enumerate().any(|(i, a)| {
        let next_is_json = || args.get(i + 1).is_some_and(|n| n == "json");
        match a.as_str() {
            "-o" | "--output" => next_is_json(),
            "-ojson" | "-o=json" | "--output=json" => true,
            _ => false,
        }
    })
}

/// Runs `cli` to completion and maps the outcome to the documented exit code.
pub fn main(cli: Cli) -> ExitCode {
    if cli.global.output == output::Format::Json {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            output::panic_report(info);
        }));
    }
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
        Command::Validate(args) => cli::validate::run(&ctx, args).await,
        Command::Slo(args) => cli::slo::run(&ctx, args).await,
        Command::Rollout(args) => cli::rollout::run(&ctx, args).await,
        Command::SetImage(args) => cli::set_image::run(&ctx, args).await,
        Command::Promote(args) => cli::promote::run(&ctx, args).await,
        Command::Load(args) => cli::load::run(&ctx, args).await,
        Command::Chaos(args) => cli::chaos::run(&ctx, args).await,
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // kube's client logs each failed request itself; platformctl says what failed, once, in
    // its own words: its lines show from -vv on.
    let default = if verbose < 2 {
        format!("{default},kube_client=off")
    } else {
        default.to_string()
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
