//! `lint`: offline checks of the rendered tree on disk. Every object must parse strictly into its
//! API type (`strict.rs`) and hold the platform policy (`policy.rs`).
//!
//! Lint reads what is committed, not a fresh render, so hand edits and template overrides are
//! checked too. It never contacts a cluster.

mod policy;
mod strict;

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

pub use policy::RULES;
pub use strict::Violation;

use crate::config::Platform;

/// One problem: the file, the object and the rule it breaks.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub file: String,
    /// `Kind/namespace/name`, or `document N` when the document has no identity.
    pub object: String,
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
}

/// An error fails lint (exit 1); a warning is shown and fails nothing.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Finding {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A parsed document of the tree.
pub struct Object {
    pub file: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub doc: Value,
}

impl Object {
    fn id(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }

    fn finding(&self, rule: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            file: self.file.clone(),
            object: self.id(),
            rule,
            severity: policy::severity(rule),
            message: message.into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub files: usize,
    pub objects: usize,
    pub findings: Vec<Finding>,
}

/// Lints the tree under `root` for `platform`.
pub fn lint(root: &Path, platform: &Platform) -> std::io::Result<Summary> {
    Ok(lint_tree(&crate::render::read(root)?, platform))
}

/// Lints `tree` (relative path → text, as `render` makes it or `render::read` reads it).
pub fn lint_tree(tree: &crate::render::Tree, platform: &Platform) -> Summary {
    let mut findings = Vec::new();
    let mut objects = Vec::new();
    for (file, text) in tree {
        parse_file(file, text, &mut objects, &mut findings);
    }
    let ctx = policy::Context {
        env_namespaces: platform
            .environments
            .iter()
            .map(|e| (e.name.clone(), e.namespace.clone()))
            .collect(),
        production: platform
            .environments
            .iter()
            .filter(|e| e.production)
            .map(|e| e.namespace.clone())
            .collect(),
    };
    findings.extend(policy::check(&objects, &ctx));
    Summary {
        files: tree.len(),
        objects: objects.len(),
        findings,
    }
}

fn parse_file(file: &str, text: &str, objects: &mut Vec<Object>, findings: &mut Vec<Finding>) {
    use serde::Deserialize;
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let anonymous = |message: String| Finding {
            file: file.to_string(),
            object: format!("document {}", i + 1),
            rule: "schema",
            severity: Severity::Error,
            message,
        };
        let doc = match serde_yaml::Value::deserialize(de) {
            Ok(serde_yaml::Value::Null) => continue,
            Ok(v) => v,
            Err(e) => {
                findings.push(anonymous(format!("is not valid YAML: {e}")));
                // The rest of the stream cannot be trusted after a syntax error.
                return;
            }
        };
        let doc: Value = match serde_json::to_value(&doc) {
            Ok(v) => v,
            Err(e) => {
                findings.push(anonymous(format!("cannot be represented as JSON: {e}")));
                continue;
            }
        };
        let field = |p: &str| {
            doc.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let object = Object {
            file: file.to_string(),
            kind: field("/kind"),
            namespace: field("/metadata/namespace"),
            name: field("/metadata/name"),
            doc: doc.clone(),
        };
        let api_version = field("/apiVersion");
        if object.kind.is_empty() || api_version.is_empty() {
            findings.push(anonymous("has no apiVersion or kind".into()));
            continue;
        }
        match strict::check(&api_version, &object.kind, &doc) {
            Ok(()) => {}
            Err(Violation::UnknownKind) => findings.push(object.finding(
                "schema",
                format!(
                    "no schema is known for apiVersion `{api_version}` kind `{}`",
                    object.kind
                ),
            )),
            Err(Violation::Invalid { path, message }) => {
                findings.push(object.finding("schema", format!("{path}: {message}")))
            }
            Err(Violation::UnknownField { path }) => findings.push(object.finding(
                "schema",
                format!(
                    "{path}: unknown field `{}`",
                    path.rsplit(['.', ']']).next().unwrap_or(&path)
                ),
            )),
        }
        objects.push(object);
    }
}
