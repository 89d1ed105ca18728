//! Rendering: `platform.yaml` in, the GitOps tree (`argocd/`, `envs/`, `chaos/`) out, in memory.
//!
//! This module computes every derived value (names, selectors, SLO windows, burn-rate
//! thresholds) and hands templates plain data; templates only lay it out. Every rendered file
//! from an overriding template is checked to be YAML before anything is written. Writing lives in `tree.rs`.

mod alerting;
mod context;
mod templates;
mod tree;

use std::fmt;

use minijinja::Value;

pub use templates::{EMBEDDED, Templates};
pub use tree::{Action, Changes, ROOTS, Tree, apply, compare, read, unified_diff, write_atomic};

use crate::config::Platform;

/// A template failed to compile or render, or produced something that is not YAML/JSON.
#[derive(Debug, Clone, thiserror::Error)]
pub struct TemplateError {
    /// Override path or `<embedded>/templates/NAME`.
    pub template: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "template `{}` line {l}: {}", self.template, self.message),
            None => write!(f, "template `{}`: {}", self.template, self.message),
        }
    }
}

impl TemplateError {
    fn from_minijinja(template: &str, e: &minijinja::Error) -> Self {
        let mut message = e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string());
        if let Some(name) = e.name()
            && !template.ends_with(name)
        {
            message = format!("{message} (in {name})");
        }
        TemplateError {
            template: template.to_string(),
            line: e.line(),
            message,
        }
    }
}

/// Renders the whole tree for `platform`.
pub fn render(platform: &Platform, templates: &Templates) -> Result<Tree, TemplateError> {
    let ctx = context::Platform::new(platform);
    let platform_value = Value::from_serialize(&ctx);
    let mut tree = Tree::new();
    let mut emit = |path: String, template: &str, value: &Value| -> Result<(), TemplateError> {
        let text = templates.render(template, value)?;
        // Embedded templates are proven to emit YAML by the test suite (golden trees and lint
        // over both references), and every free-form value goes through `tojson`; an override
        // is the user's own text, so its output is parsed on every render.
        if templates.is_override(template) {
            check_yaml(&text).map_err(|message| TemplateError {
                template: templates.origin(template),
                line: None,
                message: format!("rendered `{path}` is not valid YAML: {message}"),
            })?;
        }
        tree.insert(path, text);
        Ok(())
    };
    for env in &ctx.environments {
        let env_value = Value::from_serialize(env);
        let base =
            minijinja::context! { platform => platform_value.clone(), env => env_value.clone() };
        emit(
            format!("argocd/project-{}.yaml", env.name),
            "project.yaml.j2",
            &base,
        )?;
        emit(
            format!("argocd/app-{}.yaml", env.name),
            "app.yaml.j2",
            &base,
        )?;
        if env.alerting.is_some() {
            // Its own directory: no service renders a file of this name.
            emit(
                format!("envs/{}/alerting/alertmanagerconfig.yaml", env.name),
                "alertmanagerconfig.yaml.j2",
                &base,
            )?;
        }
        for svc in ctx.services(env) {
            let dir = format!("envs/{}/{}", env.name, svc.name);
            let mut value = minijinja::context! { platform => platform_value.clone(), env => env_value.clone(), svc => Value::from_serialize(&svc) };
            emit(format!("{dir}/rollout.yaml"), "rollout.yaml.j2", &value)?;
            emit(format!("{dir}/service.yaml"), "service.yaml.j2", &value)?;
            emit(format!("{dir}/configmap.yaml"), "configmap.yaml.j2", &value)?;
            if env.ingress.is_some() {
                emit(format!("{dir}/ingress.yaml"), "ingress.yaml.j2", &value)?;
            }
            if env.hpa.is_some() {
                emit(format!("{dir}/hpa.yaml"), "hpa.yaml.j2", &value)?;
            }
            if env.monitoring {
                emit(
                    format!("{dir}/servicemonitor.yaml"),
                    "servicemonitor.yaml.j2",
                    &value,
                )?;
                if svc.analysis.is_some() {
                    emit(
                        format!("{dir}/analysis-template.yaml"),
                        "analysis-template.yaml.j2",
                        &value,
                    )?;
                }
                if !svc.slos.is_empty() {
                    emit(format!("{dir}/slo-rules.yaml"), "slo-rules.yaml.j2", &value)?;
                }
                let json = templates.render("dashboard.json.j2", &value)?;
                let json = pretty_json(&json).map_err(|message| TemplateError {
                    template: templates.origin("dashboard.json.j2"),
                    line: None,
                    message: format!("rendered dashboard for `{dir}` is not valid JSON: {message}"),
                })?;
                value = minijinja::context! { dashboard_json => json, ..value };
                emit(format!("{dir}/dashboard.yaml"), "dashboard.yaml.j2", &value)?;
            }
        }
    }
    for exp in &ctx.chaos {
        let value = minijinja::context! { platform => platform_value.clone(), exp => Value::from_serialize(exp) };
        emit(format!("chaos/{}.yaml", exp.name), "chaos.yaml.j2", &value)?;
    }
    Ok(tree)
}

/// Every document of `text` parses as YAML.
fn check_yaml(text: &str) -> Result<(), String> {
    use serde::Deserialize;
    for doc in serde_yaml::Deserializer::from_str(text) {
        serde::de::IgnoredAny::deserialize(doc).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn pretty_json(text: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
}
