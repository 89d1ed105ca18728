//! `platformctl init`: a project `up` can stand up — platform.yaml from a reference example, its
//! rendered tree, and a git repository holding both (see `crate::init`).

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;

use crate::exit::{Code, UsageError};
use crate::init::{self, Repository};
use crate::output::{Outcome, Report};
use crate::render;

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

/// Start a project from a reference platform, ready for `platformctl up`.
///
/// Writes platform.yaml (at --file) and renders its GitOps tree (argocd/, envs/, chaos/) beside
/// it, adds `.platformctl/secrets/` (the logins `up` generates) to .gitignore, and, when the
/// directory is in no git repository, makes it one (on `gitops.local`'s branch, default main)
/// and commits all of it: `gitops.local` pushes HEAD and Argo CD deploys only what is
/// committed. Inside an existing repository nothing is committed unless --commit; init says
/// what to commit. git must be installed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which reference platform to start from.
    #[arg(long, value_enum, default_value_t = Example::CustomerPlatform)]
    pub example: Example,
    /// Replace an existing platform.yaml.
    #[arg(long)]
    pub force: bool,
    /// Inside an existing git repository, commit what init wrote (a new repository always gets
    /// its first commit).
    #[arg(long)]
    pub commit: bool,
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args {
        example,
        force,
        commit,
    } = args;
    let file = &ctx.file;
    if file.exists() && !force {
        return Err(
            UsageError::new(format!("`{}` already exists", file.display()))
                .hint("pass --force to replace it")
                .into(),
        );
    }
    let project = ctx.project_dir();
    // Nothing is written on a machine without git.
    crate::up::gitserver::git(&project, &["--version"], std::time::Duration::from_secs(10)).await?;
    // The Applications read the tree where the project sits in its repository.
    let place = init::place_in_repository(&project).await?;
    let source = init::with_gitops_path(example.source(), &place);
    let platform = crate::config::parse(file, &source)?;
    let templates = render::Templates::load(Some(&super::up::templates_dir(&project)))?;
    let tree = render::render(&platform, &templates)?;
    render::write_atomic(file, source.as_bytes())
        .with_context(|| format!("cannot write `{}`", file.display()))?;
    let changes = render::compare(&project, &tree)
        .with_context(|| format!("cannot read the tree in `{}`", project.display()))?;
    render::apply(&project, &tree, &changes)
        .with_context(|| format!("cannot write the tree in `{}`", project.display()))?;
    init::ignore_secrets(&project)
        .with_context(|| format!("cannot write `{}`", project.join(".gitignore").display()))?;

    let name = file.file_name().map_or_else(|| file.clone(), PathBuf::from);
    let mut paths = vec![name, PathBuf::from(".gitignore")];
    paths.extend(
        render::ROOTS
            .iter()
            .filter(|r| project.join(r).is_dir())
            .map(PathBuf::from),
    );
    let branch = platform
        .gitops
        .local
        .as_ref()
        .map_or("main", |l| l.branch.as_str());
    let message = format!("platformctl init: the {} platform", example.name());
    let repository = init::commit(&project, branch, &paths, &message, commit).await?;

    let mut text = format!(
        "wrote {} ({} example) and rendered {}",
        file.display(),
        example.name(),
        crate::output::counted(tree.len(), "file")
    );
    let git = match &repository {
        Repository::Created { branch, commit } => {
            let here = if project == std::path::Path::new(".") {
                "the directory".to_string()
            } else {
                format!("`{}`", project.display())
            };
            text.push_str(&format!(
                "\nmade {here} a git repository: committed on {branch} as {}\nnext: platformctl up",
                &commit[..12.min(commit.len())]
            ));
            json!({"repository": "created", "branch": branch, "commit": commit})
        }
        Repository::Committed { commit } => {
            text.push_str(&format!(
                "\ncommitted as {}\nnext: platformctl up",
                &commit[..12.min(commit.len())]
            ));
            json!({"repository": "existing", "commit": commit})
        }
        Repository::Uncommitted { paths } => {
            text.push_str(&format!(
                "\nin an existing git repository: nothing committed\nnext: git add {0} && git commit -m \"{message}\" (or platformctl init --force --commit), then platformctl up",
                paths.join(" ")
            ));
            json!({"repository": "existing", "commit": null, "uncommitted": paths})
        }
    };
    Ok(Outcome {
        code: Code::Success,
        report: Report {
            kind: "InitReport",
            status: "Written",
            fields: json!({
                "file": file.display().to_string(),
                "example": example.name(),
                "rendered": tree.len(),
                "git": git,
            }),
            text,
        },
    })
}
