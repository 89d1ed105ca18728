//! `platformctl slo …`: the platform's SLOs, live.

pub mod status;

/// The platform's SLOs, live from Prometheus: `slo status`.
///
/// Each SLO of platform.yaml (`slos:`, in an environment with `monitoring: true`) is read back
/// from the recording and alerting rules `render` wrote into its PrometheusRule: the SLI, the
/// error budget left, the burn rates of the page and ticket alerts and the alerts firing.
/// `platformctl status` shows the budget left; `platformctl validate` fails a spent one.
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
