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

/// `source` (an example's platform.yaml) with `gitops.path` set to `path`, the project's place
/// in the repository it will be committed to: the Applications read the tree there, wherever
/// the example lands. Only that line changes (`.` drops it: the default); comments stay.
pub fn with_gitops_path(source: &str, path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut in_gitops = false;
    let mut placed = path == ".";
    for line in source.lines() {
        let top_level = !line.starts_with([' ', '#']) && !line.is_empty();
        if in_gitops && top_level {
            if !placed {
                // Before the blank lines that end the block.
                let blanks = out.iter().rev().take_while(|l| l.is_empty()).count();
                out.insert(out.len() - blanks, format!("  path: {path}"));
                placed = true;
            }
            in_gitops = false;
        }
        if top_level && line.trim_end() == "gitops:" {
            in_gitops = true;
        }
        if in_gitops && line.starts_with("  path:") {
            if !placed {
                out.push(format!("  path: {path}"));
                placed = true;
            }
            continue;
        }
        out.push(line.to_string());
    }
    if in_gitops && !placed {
        out.push(format!("  path: {path}"));
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// Where `project` will sit in the repository init commits to: its place in the one it is
/// in, or `.` (init makes it a repository of its own).
pub async fn place_in_repository(project: &Path) -> Result<String, Error> {
    Ok(gitserver::prefix(project)
        .await?
        .unwrap_or_else(|| ".".into()))
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
    let mut args = gitserver::identity(project).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_gitops_path_follows_the_project_into_any_repository() {
        let micro = include_str!("../examples/microservices/platform.yaml");
        let at_root = with_gitops_path(micro, ".");
        assert!(!at_root.contains("\n  path:"), "{at_root}");
        assert_eq!(
            with_gitops_path(micro, "ops/shop"),
            micro.replace("  path: examples/microservices", "  path: ops/shop")
        );
        let customer = include_str!("../platform.yaml");
        assert_eq!(with_gitops_path(customer, "."), customer);
        let moved = with_gitops_path(customer, "platform");
        assert!(
            moved.contains("gitops:\n  local: {}\n  path: platform\n\nenvironments:"),
            "{moved}"
        );
        for (text, path) in [(at_root, "."), (moved, "platform")] {
            let p = crate::config::parse(Path::new("platform.yaml"), &text).expect("valid");
            assert_eq!(p.gitops.path, path);
        }
    }
}
