//! The rendered tree on disk: comparing it with a fresh render, and replacing it so that it is
//! either fully updated or untouched.
//!
//! Only `*.yaml` files under the rendered roots (`argocd/`, `envs/`, `chaos/`) belong to the
//! tree; anything else in the project directory is never read or removed.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Relative path (with `/`) to file content.
pub type Tree = BTreeMap<String, String>;

/// The directories platformctl owns.
pub const ROOTS: [&str; 3] = ["argocd", "envs", "chaos"];

const TMP_SUFFIX: &str = ".platformctl-tmp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Removed,
}

#[derive(Debug, Default)]
pub struct Changes {
    /// Every path of the new tree and of the old one, with what happens to it.
    pub files: BTreeMap<String, Action>,
    /// Content on disk now, for the paths that change.
    pub old: BTreeMap<String, String>,
}

impl Changes {
    pub fn count(&self, action: Action) -> usize {
        self.files.values().filter(|a| **a == action).count()
    }
    pub fn is_empty(&self) -> bool {
        self.files.values().all(|a| *a == Action::Unchanged)
    }
}

/// Reads the tree currently under `root`.
pub fn read(root: &Path) -> io::Result<Tree> {
    let mut tree = Tree::new();
    for top in ROOTS {
        walk(root, &root.join(top), &mut tree)?;
    }
    Ok(tree)
}

fn walk(root: &Path, dir: &Path, tree: &mut Tree) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, tree)?;
        } else if path.extension().is_some_and(|e| e == "yaml") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            tree.insert(rel, std::fs::read_to_string(&path)?);
        }
    }
    Ok(())
}

/// Compares `new` with what is under `root`.
pub fn compare(root: &Path, new: &Tree) -> io::Result<Changes> {
    let mut old = read(root)?;
    let mut changes = Changes::default();
    for (path, content) in new {
        let action = match old.remove(path) {
            None => Action::Created,
            Some(o) if o == *content => Action::Unchanged,
            Some(o) => {
                changes.old.insert(path.clone(), o);
                Action::Updated
            }
        };
        changes.files.insert(path.clone(), action);
    }
    for (path, content) in old {
        changes.files.insert(path.clone(), Action::Removed);
        changes.old.insert(path, content);
    }
    Ok(changes)
}

/// Makes the tree under `root` equal to `new`. All new content is first written beside its
/// target (or, for a root directory that does not exist yet, into a staging directory renamed
/// into place whole); only when every write succeeded are files moved into place and stale
/// files removed. On a failed write, everything created is removed again and the tree is as it
/// was.
pub fn apply(root: &Path, new: &Tree, changes: &Changes) -> io::Result<()> {
    let stage = root.join(format!(".platformctl-stage-{}", std::process::id()));
    let fresh: Vec<&str> = ROOTS
        .iter()
        .copied()
        .filter(|r| !root.join(r).exists())
        .collect();
    let mut writes: Vec<(PathBuf, &str)> = Vec::new();
    let mut renames: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (path, action) in &changes.files {
        if !matches!(action, Action::Created | Action::Updated) {
            continue;
        }
        let top = path.split('/').next().unwrap_or_default();
        if fresh.contains(&top) {
            writes.push((stage.join(path), new[path].as_str()));
        } else {
            let target = root.join(path);
            let tmp = tmp_path(&target);
            writes.push((tmp.clone(), new[path].as_str()));
            renames.push((tmp, target));
        }
    }
    let mut created_dirs: Vec<PathBuf> = Vec::new();
    let staged = prepare(&stage, &renames, &writes, &mut created_dirs);
    if let Err(e) = staged {
        for (tmp, _) in &renames {
            let _ = std::fs::remove_file(tmp);
        }
        for dir in created_dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        let _ = std::fs::remove_dir_all(&stage);
        return Err(e);
    }
    for (tmp, target) in &renames {
        std::fs::rename(tmp, target)?;
    }
    for top in &fresh {
        if stage.join(top).exists() {
            std::fs::rename(stage.join(top), root.join(top))?;
        }
    }
    let _ = std::fs::remove_dir_all(&stage);
    for (path, action) in &changes.files {
        if *action == Action::Removed {
            let target = root.join(path);
            std::fs::remove_file(&target)?;
            remove_empty_parents(root, &target);
        }
    }
    Ok(())
}

/// Creates the directories and writes every file, on all cores.
fn prepare(
    stage: &Path,
    renames: &[(PathBuf, PathBuf)],
    writes: &[(PathBuf, &str)],
    created: &mut Vec<PathBuf>,
) -> io::Result<()> {
    for (_, target) in renames {
        if target.is_dir() {
            // Found now, not when renaming: by then other files would already be replaced.
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("`{}` is a directory", target.display()),
            ));
        }
    }
    let mut dirs: Vec<&Path> = writes.iter().filter_map(|(p, _)| p.parent()).collect();
    dirs.dedup();
    for dir in dirs {
        if dir.starts_with(stage) {
            std::fs::create_dir_all(dir)?;
        } else {
            create_dirs(dir, created)?;
        }
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = writes.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = writes
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .try_for_each(|(path, text)| std::fs::write(path, text))
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(io::Error::other("a writer thread panicked")))
        })
    })
}

/// Writes one file atomically: a temporary file beside it, then a rename.
pub fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, content).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn tmp_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(TMP_SUFFIX);
    PathBuf::from(s)
}

fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent, created)?;
    }
    std::fs::create_dir(dir)?;
    created.push(dir.to_path_buf());
    Ok(())
}

fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// A unified diff of every changed file, with `git diff`'s a/ and b/ prefixes.
pub fn unified_diff(new: &Tree, changes: &Changes) -> String {
    let mut out = String::new();
    for (path, action) in &changes.files {
        let (old, new_text, a, b) = match action {
            Action::Unchanged => continue,
            Action::Created => (
                "",
                new[path].as_str(),
                "/dev/null".to_string(),
                format!("b/{path}"),
            ),
            Action::Removed => (
                changes.old[path].as_str(),
                "",
                format!("a/{path}"),
                "/dev/null".to_string(),
            ),
            Action::Updated => (
                changes.old[path].as_str(),
                new[path].as_str(),
                format!("a/{path}"),
                format!("b/{path}"),
            ),
        };
        let diff = similar::TextDiff::from_lines(old, new_text);
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&a, &b)
                .to_string(),
        );
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
