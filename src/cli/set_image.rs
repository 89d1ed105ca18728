//! `platformctl set-image ENV SERVICE=TAG…`: the CI step after an image build.

use anyhow::Context as _;
use serde_json::json;

use crate::exit::{Code, UsageError};
use crate::output::{Outcome, Report};

/// Set image tags in one environment (platform.yaml edited in place) and re-render.
///
/// Only the tag values change in platform.yaml: comments, key order and formatting stay as you
/// wrote them. The GitOps tree is re-rendered beside it (atomically: on any error neither file
/// is touched). `--commit` commits both, and nothing else, as "set-image dev: customer-api
/// 0.2.0"; push it (`platformctl up` pushes to `gitops.local`) and Argo CD deploys it. A tag of
/// `versionConfig` brings its configuration along. Exits 0 (also when every tag already was
/// so: nothing is written or committed), 2 for an unknown environment or service or an invalid
/// tag, with nothing written.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The environment whose tags change.
    pub env: String,
    /// One or more SERVICE=TAG (a tag, TAG@sha256:…, or a digest alone).
    #[arg(required = true, value_name = "SERVICE=TAG")]
    pub images: Vec<String>,
    /// Commit platform.yaml and the rendered tree.
    #[arg(long)]
    pub commit: bool,
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args {
        env,
        images,
        commit,
    } = args;
    let platform = crate::config::load(&ctx.file)?;
    super::validate::check_environment(&platform, Some(&env))?;
    let mut tags = Vec::new();
    for image in &images {
        let Some((service, tag)) = image.split_once('=') else {
            return Err(UsageError::new(format!("`{image}` is not SERVICE=TAG"))
                .hint("for example `platformctl set-image dev customer-api=0.2.0`")
                .into());
        };
        super::validate::check_service(&platform, service)?;
        if tags
            .iter()
            .any(|(s, _, _): &(String, String, String)| s == service)
        {
            return Err(UsageError::new(format!("`{service}` is given twice")).into());
        }
        tags.push((service.to_string(), env.clone(), tag.to_string()));
    }
    let project = ctx.project_dir();
    let written = crate::release::write(&ctx.file, &tags, &super::up::templates_dir(&project))?;
    let what: Vec<String> = written
        .changes
        .iter()
        .map(|c| format!("{} {}", c.service, c.to))
        .collect();
    let message = format!("set-image {env}: {}", what.join(", "));
    let committed = if commit && !written.changes.is_empty() {
        crate::release::commit(&ctx.file, &message)
            .await
            .context("cannot commit the new tags")?
    } else {
        None
    };
    let text = if written.changes.is_empty() {
        format!("{env}: every tag already is as given; nothing written")
    } else {
        let mut t = written
            .changes
            .iter()
            .map(|c| format!("{}: {} → {} in {env}", c.service, c.from, c.to))
            .collect::<Vec<_>>()
            .join("\n");
        t.push_str(&format!(
            "\n{} of the tree re-rendered",
            crate::output::counted(written.files.len(), "file")
        ));
        match &committed {
            Some(c) => t.push_str(&format!(
                "\ncommitted {} \"{message}\"",
                c.get(..12).unwrap_or(c)
            )),
            None if commit => {}
            None => t.push_str("\nnot committed (`--commit` commits platform.yaml and the tree)"),
        }
        t
    };
    Ok(Outcome {
        code: Code::Success,
        report: Report {
            kind: "SetImageReport",
            status: if written.changes.is_empty() {
                "Unchanged"
            } else {
                "Changed"
            },
            fields: json!({
                "environment": env,
                "changes": written.changes,
                "files": written.files,
                "commit": committed,
            }),
            text,
        },
    })
}
