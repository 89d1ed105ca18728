//! The minijinja templates: embedded in the binary, each overridable by a file of the same name
//! in the project's `templates/` directory.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::TemplateError;

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

/// Every template platformctl renders, by file name.
pub const EMBEDDED: &[(&str, &str)] = embedded![
    "project.yaml.j2",
    "app.yaml.j2",
    "rollout.yaml.j2",
    "service.yaml.j2",
    "configmap.yaml.j2",
    "ingress.yaml.j2",
    "hpa.yaml.j2",
    "servicemonitor.yaml.j2",
    "analysis-template.yaml.j2",
    "slo-rules.yaml.j2",
    "dashboard.json.j2",
    "dashboard.yaml.j2",
    "chaos.yaml.j2",
    "alertmanagerconfig.yaml.j2",
];

/// A compiled template set and where each template came from.
pub struct Templates {
    env: Environment<'static>,
    origins: Vec<(&'static str, Option<PathBuf>)>,
}

impl Templates {
    /// The embedded templates, with overrides from `dir` when it exists.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Every `{{ … }}` is written as a JSON scalar (strings quoted), so no name or value
        // from platform.yaml (`"123"`, `"true"`, `"on"`, `"null"`) can be read back by YAML as
        // another type; raw text (PromQL inside a block scalar, a rendered document) says
        // `| safe`.
        env.set_auto_escape_callback(|_| AutoEscape::Json);
        let mut origins = Vec::with_capacity(EMBEDDED.len());
        for (name, source) in EMBEDDED {
            let file = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            let source = match &file {
                Some(path) => std::fs::read_to_string(path).map_err(|e| TemplateError {
                    template: path.display().to_string(),
                    line: None,
                    message: format!("cannot read: {e}"),
                })?,
                None => (*source).to_string(),
            };
            env.add_template_owned(*name, source)
                .map_err(|e| TemplateError::from_minijinja(&origin_name(name, &file), &e))?;
            origins.push((*name, file));
        }
        Ok(Templates { env, origins })
    }

    /// Renders template `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| TemplateError::from_minijinja(&self.origin(name), &e))?;
        tmpl.render(ctx)
            .map_err(|e| TemplateError::from_minijinja(&self.origin(name), &e))
    }

    /// Where template `name` came from, for messages: the override's path or `<embedded>/name`.
    pub fn origin(&self, name: &str) -> String {
        let file = self
            .origins
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, f)| f.clone());
        origin_name(name, &file)
    }

    /// Whether template `name` comes from the project's `templates/` rather than the binary.
    pub fn is_override(&self, name: &str) -> bool {
        self.origins.iter().any(|(n, f)| *n == name && f.is_some())
    }
}

fn origin_name(name: &str, file: &Option<PathBuf>) -> String {
    match file {
        Some(p) => p.display().to_string(),
        None => format!("<embedded>/templates/{name}"),
    }
}
