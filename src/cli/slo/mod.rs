//! `platformctl slo …`: the platform's SLOs, live.

pub mod status;

/// The platform's SLOs, live from Prometheus: `slo status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Status(status::Args),
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<crate::output::Outcome> {
    match args.command {
        Command::Status(a) => status::run(ctx, a).await,
    }
}
