//! A release written into the project: tags set in platform.yaml in place (the user's comments
//! and formatting kept), the GitOps tree re-rendered, and both committed. Shared by `set-image`
//! (a tag from CI) and `promote` (the tag running in the previous environment). Writes files and
//! runs git; never prints, never talks to the cluster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Platform};
use crate::render::{self, Templates};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read `{}`", .0.display())]
    Read(PathBuf, #[source] std::io::Error),
    #[error("cannot edit `{}`", .0.display())]
    Edit(PathBuf, #[source] config::edit::Error),
    #[error("cannot write the tree in `{}`", .0.display())]
    Write(PathBuf, #[source] std::io::Error),
    #[error("{0}")]
    Git(String),
}

/// One tag to set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagChange {
    pub service: String,
    pub environment: String,
    /// What platform.yaml had.
    pub from: String,
    pub to: String,
}

/// What [`write`] did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Written {
    /// Only the tags that changed.
    pub changes: Vec<TagChange>,
    /// Files of the rendered tree that changed, relative to the project.
    pub files: Vec<String>,
}

/// The platform.yaml text with `tags` set (`(service, environment, tag)`), parsed and validated
/// as `load` would: a tag that is not valid is the usual configuration error (file, key path,
/// line). Writes nothing.
pub fn edit(
    file: &Path,
    source: &str,
    platform: &Platform,
    tags: &[(String, String, String)],
) -> Result<(String, Vec<TagChange>, Platform), anyhow::Error> {
    let mut text = source.to_string();
    let mut changes = Vec::new();
    for (service, env, tag) in tags {
        let index = platform
            .services
            .iter()
            .position(|s| &s.name == service)
            .ok_or_else(|| {
                crate::exit::UsageError::new(format!("platform.yaml has no service `{service}`"))
            })?;
        let from = platform.services[index]
            .tags
            .get(env)
            .cloned()
            .unwrap_or_default();
        if &from == tag {
            continue;
        }
        text = config::edit::set(&text, &format!("services[{index}].tags.{env}"), tag)
            .map_err(|e| Error::Edit(file.to_path_buf(), e))?;
        changes.push(TagChange {
            service: service.clone(),
            environment: env.clone(),
            from,
            to: tag.clone(),
        });
    }
    let edited = config::parse(file, &text)?;
    Ok((text, changes, edited))
}

/// Sets `tags` in `file` and renders the tree beside it: the tree first (atomically), then
/// platform.yaml (a rename), so that an error leaves both as they were.
pub fn write(
    file: &Path,
    tags: &[(String, String, String)],
    templates_dir: &Path,
) -> Result<Written, anyhow::Error> {
    let source = std::fs::read_to_string(file).map_err(|e| Error::Read(file.to_path_buf(), e))?;
    let platform = config::parse(file, &source)?;
    let (text, changes, edited) = edit(file, &source, &platform, tags)?;
    let project = project_dir(file);
    let templates = Templates::load(Some(templates_dir))?;
    let tree = render::render(&edited, &templates)?;
    let diff = render::compare(&project, &tree).map_err(|e| Error::Write(project.clone(), e))?;
    let files: Vec<String> = diff
        .files
        .iter()
        .filter(|(_, a)| **a != render::Action::Unchanged)
        .map(|(p, _)| p.clone())
        .collect();
    if !diff.is_empty() {
        render::apply(&project, &tree, &diff).map_err(|e| Error::Write(project.clone(), e))?;
    }
    if text != source {
        render::write_atomic(file, text.as_bytes())
            .map_err(|e| Error::Write(file.to_path_buf(), e))?;
    }
    Ok(Written { changes, files })
}

/// The directory holding platform.yaml.
pub fn project_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

const GIT_LIMIT: Duration = Duration::from_secs(60);

async fn git(dir: &Path, args: &[&str]) -> Result<crate::cluster::process::Output, Error> {
    crate::up::gitserver::git(dir, args, GIT_LIMIT)
        .await
        .map_err(|e| Error::Git(e.to_string()))
}

/// Commits platform.yaml and the rendered tree (only those: other changes in the work tree are
/// left alone) with `message`; returns the new commit, or `None` when there was nothing to
/// commit.
pub async fn commit(file: &Path, message: &str) -> Result<Option<String>, Error> {
    let dir = project_dir(file);
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| config::FILE_NAME.into());
    let mut paths = vec![name.as_str()];
    paths.extend(render::ROOTS.iter().filter(|r| dir.join(r).exists()));
    let mut add = vec!["add", "-A", "--"];
    add.extend(&paths);
    let added = git(&dir, &add).await?;
    if !added.success() {
        return Err(Error::Git(format!("git add: {}", added.stderr.trim())));
    }
    let mut staged = vec!["diff", "--cached", "--quiet", "--"];
    staged.extend(&paths);
    if git(&dir, &staged).await?.success() {
        return Ok(None);
    }
    let mut commit = crate::up::gitserver::identity(&dir)
        .await
        .map_err(|e| Error::Git(e.to_string()))?;
    commit.extend(["commit", "-q", "-m", message, "--"]);
    commit.extend(&paths);
    let out = git(&dir, &commit).await?;
    if !out.success() {
        return Err(Error::Git(format!(
            "git commit: {}{}",
            out.stderr.trim(),
            out.stdout.trim()
        )));
    }
    let head = git(&dir, &["rev-parse", "HEAD"]).await?;
    Ok(Some(head.stdout.trim().to_string()))
}
