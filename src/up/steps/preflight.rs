//! Preflight: the rendered tree matches platform.yaml, the tools and the GitOps source are there,
//! before anything in the cluster changes.

use super::*;
use gitops::short;

pub(super) async fn preflight(settings: &Settings) -> Result<Outcome, BoxError> {
    let on_disk = crate::render::read(&settings.project).map_err(|e| {
        err(format!(
            "cannot read the rendered tree in `{}`: {e}",
            settings.project.display()
        ))
    })?;
    let stale: Vec<&String> = settings
        .tree
        .iter()
        .filter(|(path, text)| on_disk.get(*path) != Some(*text))
        .map(|(path, _)| path)
        .chain(on_disk.keys().filter(|p| !settings.tree.contains_key(*p)))
        .collect();
    if !stale.is_empty() {
        return Err(crate::exit::UsageError::new(format!(
            "the rendered tree on disk differs from platform.yaml in {} file(s), e.g. `{}`: Argo CD would deploy the old one",
            stale.len(),
            stale[0]
        ))
        .hint("run `platformctl render`, commit and push the tree, then `platformctl up` again")
        .into());
    }
    if settings.steps.contains(&Step::Secrets) {
        secret_sources(settings)?;
    }
    let mut found = Vec::new();
    if settings.steps.contains(&Step::Addons)
        && !addons::plan(&settings.platform, &addons::Facts::default()).is_empty()
    {
        let helm = Helm::locate()?;
        found.push(format!("helm {}", helm.version().await?));
    }
    if settings.steps.contains(&Step::Gitops) {
        which("git")?;
        found.push("git".into());
        source_path_in_repository(settings).await?;
        if settings.platform.gitops.local.is_some() {
            found.push(format!(
                "HEAD {}",
                short(&local_source_ready(settings).await?)
            ));
        }
    }
    Ok(Outcome::done(
        Vec::new(),
        format!(
            "{} rendered files match platform.yaml; {}",
            settings.tree.len(),
            if found.is_empty() {
                "no tools needed".into()
            } else {
                found.join(", ")
            }
        ),
    ))
}

/// The alert receivers' Secrets have source files holding their keys (a webhook URL or an SMTP
/// password cannot be generated): checked in preflight, before anything changes, and again by
/// the secrets step (`--only secrets` skips preflight). No value is ever shown.
pub(super) fn secret_sources(settings: &Settings) -> Result<(), BoxError> {
    let specs = objects::secrets(&settings.platform, &settings.project, &[]);
    objects::check_sources(&settings.project, &specs).map_err(|problems| {
        let n = problems.len();
        crate::exit::UsageError::new(format!(
            "alert receivers need Secret values platformctl cannot generate ({n} problem{}):\n  {}",
            if n == 1 { "" } else { "s" },
            problems.join("\n  ")
        ))
        .hint(format!(
            "write `KEY=value` lines into those files under {} (git-ignored); `up` creates the Secrets from them and never shows a value",
            objects::SECRETS_DIR
        ))
        .into()
    })
}

pub(super) fn which(tool: &str) -> Result<std::path::PathBuf, BoxError> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            err(format!(
                "`{tool}` is not on PATH: install it (the GitOps source is read with git)"
            ))
        })
}

/// The Applications read `gitops.path` of the repository: with the project in a git
/// repository (the one `gitops.local` pushes, or the clone of `gitops.remote`), that must be
/// where the project's rendered tree is in it, or Argo CD would sync a path that is not there
/// and deploy nothing.
pub(super) async fn source_path_in_repository(settings: &Settings) -> Result<(), BoxError> {
    let Some(prefix) = gitserver::prefix(&settings.project).await? else {
        return Ok(());
    };
    let wanted = normal_path(&settings.platform.gitops.path);
    if wanted == prefix {
        return Ok(());
    }
    let set = if prefix == "." {
        "remove `gitops.path` (the tree is at the repository's root)".to_string()
    } else {
        format!("set `gitops.path: {prefix}`")
    };
    let envs = |dir: &str| {
        if dir == "." {
            "envs/…".to_string()
        } else {
            format!("{dir}/envs/…")
        }
    };
    Err(crate::exit::UsageError::new(format!(
        "the Applications read `{}` of the repository, but the rendered tree is at `{}` in it: Argo CD would deploy nothing",
        envs(&wanted),
        envs(&prefix)
    ))
    .hint(format!("{set} in platform.yaml, then `platformctl render`, commit, and `platformctl up` again"))
    .into())
}

/// `gitops.path` as git names a directory: `.` for the root, no leading `./` or trailing `/`.
pub(super) fn normal_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// `gitops.local` pushes the project's HEAD commit: there must be one, and the rendered tree
/// must be in it (else Argo CD would deploy an older tree than the one on disk). Said in
/// preflight, before anything in the cluster changes. The HEAD commit.
pub(super) async fn local_source_ready(settings: &Settings) -> Result<String, BoxError> {
    let head = gitserver::head(&settings.project).await.map_err(|e| {
        crate::exit::UsageError::new(format!("gitops.local pushes your project's HEAD commit: {e}"))
            .hint("commit the project (`git init -b main && git add -A && git commit -m platform`), or set `gitops.remote`")
    })?;
    let dirty = gitserver::uncommitted(&settings.project).await?;
    if let Some(first) = dirty.first() {
        return Err(crate::exit::UsageError::new(format!(
            "the rendered tree has {} uncommitted file(s), e.g. `{first}`: gitops.local pushes your HEAD commit, so Argo CD would deploy the tree without them",
            dirty.len()
        ))
        .hint("commit the rendered tree (`git add -A && git commit`), then `platformctl up` again")
        .into());
    }
    Ok(head)
}
