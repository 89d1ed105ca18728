//! `platform.yaml`: loading, strict deserialisation and validation, with every problem located
//! by file, key path and line.
//!
//! This module owns the configuration model and its rules. It does not know about rendering,
//! clusters or the CLI; it never prints.

mod alerting;
pub mod edit;
mod locate;
mod model;
mod validate;
pub use validate::{UNROUTED_RECEIVER, chart_repository, duration_seconds, is_semver};

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::*;

/// Default file name, looked up in the current directory.
pub const FILE_NAME: &str = "platform.yaml";

/// One located problem in a configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        if self.path.is_empty() || self.path == "." {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read `{}`", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", invalid_summary(.0))]
    Invalid(Vec<Problem>),
}

fn invalid_summary(problems: &[Problem]) -> String {
    let file = problems
        .first()
        .map(|p| p.file.display().to_string())
        .unwrap_or_default();
    let n = problems.len();
    let mut s = format!(
        "`{file}` is invalid ({n} problem{})",
        if n == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    s
}

/// Reads, deserialises and validates `file`.
pub fn load(file: &Path) -> Result<Platform, Error> {
    let bytes = std::fs::read(file).map_err(|source| Error::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let source = utf8(file, bytes)?;
    parse(file, &source)
}

/// The file's text; bytes that are not UTF-8 are a configuration problem at their position.
fn utf8(file: &Path, bytes: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = String::from_utf8_lossy(&bytes[..valid]);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Error::Invalid(vec![Problem {
            file: file.to_path_buf(),
            line: Some(line),
            column: Some(column),
            path: String::new(),
            message: format!(
                "is not UTF-8 text (byte 0x{:02x}): save it as UTF-8",
                bytes[valid]
            ),
        }])
    })
}

/// Deserialises and validates `source`, naming `file` in problems.
pub fn parse(file: &Path, source: &str) -> Result<Platform, Error> {
    let index = locate::Index::build(source);
    if let Some(pos) = index.too_deep {
        return Err(Error::Invalid(vec![Problem {
            file: file.to_path_buf(),
            line: Some(pos.line),
            column: Some(pos.column),
            path: String::new(),
            message: format!(
                "nests mappings and sequences deeper than {} levels",
                locate::MAX_DEPTH
            ),
        }]));
    }
    let locate = |path: String, message: String| {
        let pos = index.find(&path);
        Problem {
            file: file.to_path_buf(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            path,
            message,
        }
    };
    let de = serde_yaml::Deserializer::from_str(source);
    let platform: Platform = match serde_path_to_error::deserialize(de) {
        Ok(p) => p,
        Err(e) => {
            // serde_path_to_error writes `?` for a key it never got to read (a syntax error).
            let path = e.path().to_string();
            let path = path
                .split(".?")
                .next()
                .unwrap_or_default()
                .trim_end_matches('?')
                .to_string();
            let inner = e.into_inner();
            let message = strip_yaml_position(&inner.to_string());
            let mut problem = locate(path, message);
            // The parser's own position is exact for syntax and type errors.
            if let Some(loc) = inner.location() {
                problem.line = Some(loc.line());
                problem.column = Some(loc.column());
            }
            return Err(Error::Invalid(vec![problem]));
        }
    };
    let problems: Vec<Problem> = validate::validate(&platform)
        .into_iter()
        .map(|p| locate(p.path, p.message))
        .collect();
    if problems.is_empty() {
        Ok(platform)
    } else {
        Err(Error::Invalid(problems))
    }
}

/// serde_yaml appends ` at line L column C` and may prefix its own path; both are reported
/// separately here.
fn strip_yaml_position(msg: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    // serde_yaml prefixes the path of the enclosing mapping (`environments[1].hpa: ...`).
    match msg.split_once(": ") {
        Some((head, rest)) if !head.is_empty() && !head.contains(char::is_whitespace) => {
            rest.to_string()
        }
        _ => msg.to_string(),
    }
}

impl Platform {
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }
}
