//! `platformctl init`: writes platform.yaml from a reference example, and nothing else.

use anyhow::Context as _;
use serde_json::json;

use crate::exit::{Code, UsageError};
use crate::output::{Outcome, Report};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Example {
    /// One service, customer-api: dev and prod, canary with analysis, SLOs, pod-kill chaos.
    CustomerPlatform,
    /// auth, orders, payments, notifications: blue-green with a manual gate, HPA, load tests.
    Microservices,
}

impl Example {
    pub fn source(self) -> &'static str {
        match self {
            Example::CustomerPlatform => include_str!("../../platform.yaml"),
            Example::Microservices => include_str!("../../examples/microservices/platform.yaml"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Example::CustomerPlatform => "customer-platform",
            Example::Microservices => "microservices",
        }
    }
}

/// Write platform.yaml (at --file) from a reference example.
///
/// Only platform.yaml is written: run `platformctl render` next to produce the GitOps tree.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which reference platform to start from.
    #[arg(long, value_enum, default_value_t = Example::CustomerPlatform)]
    pub example: Example,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args { example, force } = args;
    let file = &ctx.file;
    if file.exists() && !force {
        return Err(
            UsageError::new(format!("`{}` already exists", file.display()))
                .hint("pass --force to replace it")
                .into(),
        );
    }
    crate::render::write_atomic(file, example.source().as_bytes())
        .with_context(|| format!("cannot write `{}`", file.display()))?;
    Ok(Outcome {
        code: Code::Success,
        report: Report {
            kind: "InitReport",
            status: "Written",
            fields: json!({ "file": file.display().to_string(), "example": example.name() }),
            text: format!(
                "wrote {} ({} example)\nnext: platformctl render",
                file.display(),
                example.name()
            ),
        },
    })
}
