//! `platformctl render`: writes the GitOps tree, or with `--check` compares it (CI).

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;

use crate::exit::Code;
use crate::output::{Outcome, Report};
use crate::render::{self, Action};

/// Render the GitOps tree (argocd/, envs/, chaos/) from platform.yaml and templates/.
///
/// The tree is written beside platform.yaml (or into --out). Rendering is deterministic and
/// atomic: every file is rendered and checked in memory first, so on any error the tree on
/// disk is left as it was. Files under templates/ replace the embedded templates of the same
/// name; in a template, `{{ … }}` writes its value as a JSON scalar (strings quoted, so a name
/// such as `"123"` or `"on"` stays a string) and `| safe` writes raw text.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write nothing; exit 1 and print a unified diff when the tree on disk differs (for CI).
    #[arg(long)]
    pub check: bool,
    /// Directory to render into, instead of the one holding platform.yaml.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let Args { check, out } = args;
    let platform = crate::config::load(&ctx.file)?;
    let project = ctx.project_dir();
    let root = out.unwrap_or_else(|| project.clone());
    let template_dir = if project == std::path::Path::new(".") {
        PathBuf::from("templates")
    } else {
        project.join("templates")
    };
    let templates = render::Templates::load(Some(&template_dir))?;
    let tree = render::render(&platform, &templates)?;
    let changes = render::compare(&root, &tree)
        .with_context(|| format!("cannot read the tree in `{}`", root.display()))?;
    let files: Vec<_> = changes
        .files
        .iter()
        .map(|(path, action)| json!({ "path": path, "action": action }))
        .collect();
    let counts = json!({
        "created": changes.count(Action::Created),
        "updated": changes.count(Action::Updated),
        "removed": changes.count(Action::Removed),
        "unchanged": changes.count(Action::Unchanged),
    });
    let fields = json!({ "root": root.display().to_string(), "summary": counts, "files": files });
    let summary = format!(
        "{} created, {} updated, {} removed, {} unchanged",
        changes.count(Action::Created),
        changes.count(Action::Updated),
        changes.count(Action::Removed),
        changes.count(Action::Unchanged)
    );
    if check {
        if changes.is_empty() {
            return Ok(Outcome {
                code: Code::Success,
                report: Report {
                    kind: "RenderReport",
                    status: "UpToDate",
                    fields,
                    text: String::new(),
                },
            });
        }
        let diff = render::unified_diff(&tree, &changes);
        ctx.printer.note(&format!(
            "the rendered tree in `{}` is out of date ({summary})",
            root.display()
        ));
        ctx.printer
            .note("hint: run `platformctl render` and commit the result");
        let mut fields = fields;
        fields["diff"] = json!(diff);
        return Ok(Outcome {
            code: Code::CheckFailed,
            report: Report {
                kind: "RenderReport",
                status: "Drift",
                fields,
                text: colorize(&diff, ctx.printer.color_stdout()),
            },
        });
    }
    if !changes.is_empty() {
        render::apply(&root, &tree, &changes).with_context(|| {
            format!(
                "cannot write the tree in `{}`; it was left as it was",
                root.display()
            )
        })?;
    }
    let mut text = String::new();
    for (path, action) in &changes.files {
        if *action != Action::Unchanged {
            text.push_str(&format!(
                "{:<9} {path}\n",
                format!("{action:?}").to_lowercase()
            ));
        }
    }
    text.push_str(&format!(
        "rendered {} into {}: {summary}",
        crate::output::counted(tree.len(), "file"),
        root.display()
    ));
    Ok(Outcome {
        code: Code::Success,
        report: Report {
            kind: "RenderReport",
            status: "Rendered",
            fields,
            text,
        },
    })
}

fn colorize(diff: &str, color: bool) -> String {
    if !color {
        return diff.to_string();
    }
    diff.lines()
        .map(|l| match l.as_bytes().first() {
            Some(b'+') if !l.starts_with("+++") => format!("\x1b[32m{l}\x1b[0m"),
            Some(b'-') if !l.starts_with("---") => format!("\x1b[31m{l}\x1b[0m"),
            Some(b'@') => format!("\x1b[36m{l}\x1b[0m"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
