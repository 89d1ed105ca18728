//! `init`'s project: platform.yaml from a reference example, its GitOps tree rendered beside it,
//! and the directory a git repository whose HEAD holds both, so that the next command, `up`,
//! finds what its preflight asks for (`gitops.local` pushes HEAD; Argo CD deploys only what is
//! committed), as `flux bootstrap` and `argocd-autopilot repo bootstrap` leave a repository
//! ready. Inside a repository the user already has, nothing is committed unless asked: init
//! says what to commit instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::up::gitserver::{self, Error};

/// What init's `.gitignore` holds: the generated credentials `up` keeps beside platform.yaml.
pub const IGNORED: &str = ".platformctl/secrets/";

/// How long one git command may take.
const GIT_LIMIT: Duration = Duration::from_secs(60);

/// Where the project's repository stands after init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repository {
    /// A new repository, made here, with one commit of everything init wrote.
    Created { branch: String, commit: String },
    /// The project is inside an existing repository, and init committed what it wrote
    /// (`--commit`).
    Committed { commit: String },
    /// The project is inside an existing repository and nothing was committed: these paths
    /// (relative to the project) are what to commit.
    Uncommitted { paths: Vec<String> },
}

/// Adds `.platformctl/secrets/` to the project's `.gitignore` (made if absent); whether it
/// changed the file.
pub fn ignore_secrets(project: &Path) -> std::io::Result<bool> {
    let path = project.join(".gitignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    if text
        .lines()
        .any(|l| l.trim() == IGNORED || l.trim() == ".platformctl/")
    {
        return Ok(false);
    }
    let mut out = text;
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("# generated credentials (platformctl up)\n");
    out.push_str(IGNORED);
    out.push('\n');
    crate::render::write_atomic(&path, out.as_bytes())?;
    Ok(true)
}

/// Makes `project` a repository if it is in none, and commits `paths` (relative to it) when
/// the repository is new or `commit` is set.
pub async fn commit(
    project: &Path,
    branch: &str,
    paths: &[PathBuf],
    message: &str,
    commit: bool,
) -> Result<Repository, Error> {
    let inside = gitserver::git(project, &["rev-parse", "--show-toplevel"], GIT_LIMIT).await?;
    let created = !inside.success();
    if created {
        run(project, &["init", "-q", "-b", branch]).await?;
    } else if !commit {
        return Ok(Repository::Uncommitted {
            paths: paths.iter().map(|p| p.display().to_string()).collect(),
        });
    }
    let mut add = vec!["add", "--"];
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    add.extend(names.iter().map(String::as_str));
    run(project, &add).await?;
    // An identity of its own when the user has none configured (a fresh machine, CI).
    let identity = gitserver::git(project, &["config", "user.email"], GIT_LIMIT)
        .await?
        .success();
    let mut args = Vec::new();
    if !identity {
        args.extend([
            "-c",
            "user.name=platformctl",
            "-c",
            "user.email=platformctl@localhost",
        ]);
    }
    args.extend(["commit", "-q", "--no-verify", "-m", message, "--"]);
    args.extend(names.iter().map(String::as_str));
    run(project, &args).await?;
    let head = gitserver::head(project).await?;
    Ok(if created {
        Repository::Created {
            branch: branch.to_string(),
            commit: head,
        }
    } else {
        Repository::Committed { commit: head }
    })
}

async fn run(project: &Path, args: &[&str]) -> Result<(), Error> {
    let out = gitserver::git(project, args, GIT_LIMIT).await?;
    if !out.success() {
        return Err(Error::Git(format!(
            "`git {}` failed: {}",
            args.join(" "),
            out.stderr.trim()
        )));
    }
    Ok(())
}
