//! GitOps promotion: the version running healthy in an environment's predecessor becomes the
//! environment's, through Git. This module reads what runs ([`source`]: the Rollout Healthy, its
//! stable ReplicaSet's image, the Application Synced at a known revision), judges the gates before
//! a production environment ([`gates`]: error budget left, the predecessor's last analysis),
//! pushes and refreshes ([`git`]), and follows the sync and the rollout ([`wait`]). The file edits
//! are [`crate::release`]'s; printing is the CLI's.

pub mod git;
pub mod wait;

use kube::Client;
use kube::api::{Api, DynamicObject};
use serde::Serialize;
use serde_json::Value;

use crate::config::Platform;
use crate::rollout::{self, Info, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A service cannot be promoted from where it runs (not healthy, not synced).
    #[error("{0}")]
    Refused(String),
    #[error("cannot read the Application `{app}`")]
    Application {
        app: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Rollout(#[from] rollout::Error),
}

/// What one service ships: the version running in the source environment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub service: String,
    /// The tag of the stable image in the source environment.
    pub version: String,
    pub image: String,
    /// What the target environment has now (platform.yaml).
    pub current: String,
    /// The Git revision the source environment's Application is synced to.
    pub revision: String,
    #[serde(skip)]
    pub info: Info,
}

/// The environment before `env` in platform.yaml's order (the promotion order).
pub fn predecessor<'a>(
    platform: &'a Platform,
    env: &str,
) -> Option<&'a crate::config::Environment> {
    let i = platform.environments.iter().position(|e| e.name == env)?;
    i.checked_sub(1).map(|p| &platform.environments[p])
}

/// The Argo CD Application of an environment, as `render` names it.
pub fn application(platform: &Platform, env: &str) -> String {
    format!("{}-{env}", platform.metadata.name)
}

pub fn applications(client: &Client, platform: &Platform) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        crate::addons::namespace(platform, crate::addons::Kind::Argocd),
        &crate::kube::argo("Application", "applications"),
    )
}

/// `repo:tag[@digest]` of service image `repo` → `tag[@digest]`.
fn version_of(repo: &str, image: &str) -> Option<String> {
    let rest = image.strip_prefix(repo)?;
    if let Some(tag) = rest.strip_prefix(':') {
        return Some(tag.to_string());
    }
    rest.strip_prefix('@').map(str::to_string)
}

/// Reads, for each of `services`, what runs in `from` (an environment's name): refused unless the
/// Rollout is Healthy and the environment's Application is Synced (and not mid-operation) at a
/// revision.
pub async fn source(
    client: &Client,
    platform: &Platform,
    from: &str,
    to: &str,
    services: &[String],
) -> Result<Vec<Source>, Error> {
    let env = platform
        .environment(from)
        .ok_or_else(|| Error::Refused(format!("no environment `{from}`")))?;
    let app_name = application(platform, from);
    let app = applications(client, platform)
        .get_opt(&app_name)
        .await
        .map_err(|source| Error::Application {
            app: app_name.clone(),
            source,
        })?
        .ok_or_else(|| {
            Error::Refused(format!(
                "{from} has no Argo CD application `{app_name}`: is it deployed (`platformctl up`)?"
            ))
        })?;
    let sync = app.data["status"]["sync"]["status"]
        .as_str()
        .unwrap_or("Unknown");
    let revision = app.data["status"]["sync"]["revision"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if sync != "Synced" || revision.is_empty() {
        return Err(Error::Refused(format!(
            "{from}'s application `{app_name}` is {sync}{}: what runs there is not what Git says, so there is no known version to promote",
            if revision.is_empty() {
                " at no revision"
            } else {
                ""
            }
        )));
    }
    let mut out = Vec::new();
    for name in services {
        let service = platform
            .services
            .iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| Error::Refused(format!("no service `{name}`")))?;
        let snapshot = rollout::snapshot(client, &env.namespace, name, Some(from)).await?;
        let info = Info::of(&snapshot);
        match info.verdict() {
            Verdict::Healthy => {}
            Verdict::Progressing(m)
            | Verdict::Gate(m)
            | Verdict::Aborted(m)
            | Verdict::Degraded(m) => {
                return Err(Error::Refused(format!(
                    "`{name}` is not healthy in {from}, so it is not promoted: {m}"
                )));
            }
        }
        let image = info.stable_image().unwrap_or_default().to_string();
        let version = version_of(&service.image, &image).ok_or_else(|| {
            Error::Refused(format!(
                "`{name}` runs `{image}` in {from}, not an image of `{}`",
                service.image
            ))
        })?;
        out.push(Source {
            service: name.clone(),
            current: service.tags.get(to).cloned().unwrap_or_default(),
            version,
            image,
            revision: revision.clone(),
            info,
        });
    }
    Ok(out)
}

/// One gate before a production environment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// `error-budget/<slo>` or `analysis/<service>`.
    pub name: String,
    pub passed: bool,
    /// Closed, and passed with `--force`.
    pub forced: bool,
    pub message: String,
    /// The figure judged (percent of budget left; absent where there is none).
    pub value: Option<f64>,
    pub threshold: Option<f64>,
}

/// The error-budget gates: each SLO of the target environment for a promoted service keeps at
/// least `promotion.minErrorBudget` percent of its budget, as Prometheus has it now. An SLO
/// without data yet passes, saying so.
pub fn budget_gates(platform: &Platform, statuses: &[crate::slo::Status]) -> Vec<Gate> {
    let min = platform.promotion.min_error_budget;
    statuses
        .iter()
        .map(|s| {
            let name = format!("error-budget/{}/{}", s.spec.environment, s.spec.name);
            match &s.budget {
                Some(b) => {
                    let left = b.remaining * 100.0;
                    let passed = left >= min;
                    Gate {
                        message: format!(
                            "{}: {left:.1}% of the error budget left ({} of {} in {}), {} the {min}% promotion.minErrorBudget",
                            s.spec.name,
                            crate::slo::duration(b.remaining_seconds.max(0.0)),
                            crate::slo::duration(b.total_seconds),
                            s.spec.window,
                            if passed { "at least" } else { "below" }
                        ),
                        name,
                        passed,
                        forced: false,
                        value: Some(left),
                        threshold: Some(min),
                    }
                }
                None => Gate {
                    message: format!("{}: no data yet ({}); the gate is open", s.spec.name, s.reason),
                    name,
                    passed: true,
                    forced: false,
                    value: None,
                    threshold: Some(min),
                },
            }
        })
        .collect()
}

/// The analysis gate of one service: the last AnalysisRun in the source environment Successful
/// (an environment without analysis passes, saying so).
pub fn analysis_gate(from: &str, source: &Source) -> Gate {
    let name = format!("analysis/{from}/{}", source.service);
    match source.info.analysis_runs.first() {
        None => Gate {
            name,
            passed: true,
            forced: false,
            message: format!(
                "{}: no analysis runs in {from} (no analysis there); the gate is open",
                source.service
            ),
            value: None,
            threshold: None,
        },
        Some(run) => {
            let passed = run.phase == "Successful";
            Gate {
                name,
                passed,
                forced: false,
                message: if passed {
                    format!(
                        "{}: the last analysis run in {from}, `{}`, was Successful",
                        source.service, run.name
                    )
                } else {
                    format!(
                        "{}: the last analysis run in {from} was not Successful: {}",
                        source.service,
                        run.failure()
                    )
                },
                value: None,
                threshold: None,
            }
        }
    }
}

/// The Application's sync status and revision, health and operation phase, as one line.
pub fn app_line(app: &Value) -> String {
    let s = &app["status"];
    format!(
        "{} at {}, {}{}",
        s["sync"]["status"].as_str().unwrap_or("Unknown"),
        s["sync"]["revision"]
            .as_str()
            .map(|r| r.get(..12).unwrap_or(r))
            .unwrap_or("?"),
        s["health"]["status"].as_str().unwrap_or("Unknown"),
        s["operationState"]["phase"]
            .as_str()
            .map(|p| format!(", operation {p}"))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_the_tag_of_the_services_own_image() {
        assert_eq!(
            version_of("platformctl/customer-api", "platformctl/customer-api:0.2.0").as_deref(),
            Some("0.2.0")
        );
        assert_eq!(
            version_of(
                "platformctl/customer-api",
                "platformctl/customer-api-x:0.2.0"
            ),
            None
        );
        assert_eq!(
            version_of("repo/a", "repo/a@sha256:abc").as_deref(),
            Some("sha256:abc")
        );
    }
}
