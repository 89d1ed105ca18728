//! `validate`: the platform's operational checklist, asked live of the cluster, Prometheus and
//! Alertmanager, for what `render` wrote: every Argo CD Application Synced and Healthy, every
//! Rollout Healthy (or paused where its strategy waits), every ServiceMonitor scraping, every
//! rule group loaded and evaluating, Alertmanager reachable with the platform's receivers and
//! known to Prometheus, every dashboard loadable by Grafana's sidecar with each panel's query
//! answering, HPAs reading their metric, Ingresses with an address, and each SLO within its
//! budget.
//!
//! Each check is `pass`, `fail` or `skip` with one line of why. The checks run concurrently,
//! each object read once. It never changes anything, does not print, and does not decide exit
//! codes: a cluster or Prometheus that cannot be asked at all is an [`Error`]; anything else is
//! a failed check.

mod argo;
mod dashboards;
mod monitoring;
mod promql;
mod workloads;

use kube::Client;
use serde::Serialize;
use serde_json::Value;

use crate::config::Platform;
use crate::kube::manifest::{self, Manifest};
use crate::prom;
use crate::render::Tree;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not applicable, or nothing to judge by yet (an SLO without traffic).
    Skip,
}

/// One named check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What is checked, e.g. `application`, `rollout`, `scrape`, `rules`, `alertmanager`,
    /// `dashboard`, `hpa`, `ingress`, `slo`.
    pub category: &'static str,
    /// `<category>/<object>`: stable, unique, what JUnit names the test case.
    pub name: String,
    /// The environment the object belongs to; none for the platform's own (Alertmanager).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub verdict: Verdict,
    /// Why, in one line.
    pub message: String,
}

impl Check {
    fn new(
        category: &'static str,
        object: &str,
        environment: Option<&str>,
        verdict: Verdict,
        message: impl Into<String>,
    ) -> Check {
        Check {
            category,
            name: format!("{category}/{object}"),
            environment: environment.map(str::to_string),
            verdict,
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {what} from the cluster")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Prometheus(#[from] prom::Error),
    #[error("the rendered tree does not parse")]
    Manifest(#[from] manifest::Error),
}

/// What the checks ask.
pub struct Inputs<'a> {
    pub platform: &'a Platform,
    /// The tree rendered from platform.yaml: what should be running.
    pub tree: &'a Tree,
    pub client: &'a Client,
    /// The platform's Prometheus; `None` when it has no kube-prometheus-stack addon.
    pub prometheus: Option<&'a prom::Client>,
    /// Its Alertmanager, or why it cannot be reached (a failed check, not an error).
    pub alertmanager: Option<Result<prom::alertmanager::Client, String>>,
    /// Only this environment's objects (and the platform's own).
    pub environment: Option<&'a str>,
}

/// The rendered objects, by environment.
struct Rendered {
    objects: Vec<(Option<String>, Manifest)>,
}

impl Rendered {
    fn of(platform: &Platform, tree: &Tree, only: Option<&str>) -> Result<Rendered, Error> {
        let mut objects = Vec::new();
        for (path, text) in tree {
            if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
                continue;
            }
            for m in manifest::parse(path, text)? {
                let env = environment_of(platform, &m);
                if only.is_some_and(|o| env.as_deref() != Some(o)) {
                    continue;
                }
                objects.push((env, m));
            }
        }
        Ok(Rendered { objects })
    }

    /// The rendered objects of `kind`, with their environment.
    fn kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (Option<&'a str>, &'a Manifest)> {
        self.objects
            .iter()
            .filter(move |(_, m)| m.kind() == kind)
            .map(|(e, m)| (e.as_deref(), m))
    }
}

/// An object's environment: its `platformctl.dev/environment` label, else the environment
/// whose namespace it is in.
fn environment_of(platform: &Platform, m: &Manifest) -> Option<String> {
    if let Some(e) = m.object["metadata"]["labels"]["platformctl.dev/environment"].as_str() {
        return Some(e.to_string());
    }
    let ns = m.namespace()?;
    platform
        .environments
        .iter()
        .find(|e| e.namespace == ns)
        .map(|e| e.name.clone())
}

/// Every check, in a stable order (by category as listed in the module doc, then name).
pub async fn run(inputs: Inputs<'_>) -> Result<Vec<Check>, Error> {
    let rendered = Rendered::of(inputs.platform, inputs.tree, inputs.environment)?;
    let kube = inputs.client;
    let (apps, rollouts, hpas, ingresses) = tokio::join!(
        argo::applications(kube, &rendered),
        argo::rollouts(kube, &rendered),
        workloads::hpas(kube, &rendered),
        workloads::ingresses(kube, &rendered),
    );
    let mut checks = Vec::new();
    checks.extend(apps?);
    checks.extend(rollouts?);
    match inputs.prometheus {
        Some(p) => {
            let specs: Vec<crate::slo::Spec> = crate::slo::specs(inputs.platform)
                .into_iter()
                .filter(|s| inputs.environment.is_none_or(|e| s.environment == e))
                .collect();
            // (the rule groups, read once: the rule checks, the dashboards' recorded metrics and
            // the SLOs' reasons for missing data all read them)
            let groups = p.rules().await?;
            let (scrape, am, dashboards, slos) = tokio::join!(
                monitoring::scraping(p, &rendered),
                monitoring::alertmanager(p, inputs.alertmanager, &rendered),
                dashboards::dashboards(kube, p, inputs.platform, &rendered, &groups),
                crate::slo::collect_with(p, &specs, &groups),
            );
            checks.extend(scrape?);
            checks.extend(monitoring::rules(&groups, &rendered));
            checks.extend(am?);
            checks.extend(dashboards?);
            checks.extend(hpas?);
            checks.extend(ingresses?);
            checks.extend(slos?.iter().map(slo_check));
        }
        None => {
            checks.push(Check::new(
                "prometheus",
                "kube-prometheus-stack",
                None,
                Verdict::Skip,
                "the kube-prometheus-stack addon is disabled: no scrape, rule, Alertmanager, dashboard or SLO checks",
            ));
            checks.extend(hpas?);
            checks.extend(ingresses?);
        }
    }
    Ok(checks)
}

fn slo_check(s: &crate::slo::Status) -> Check {
    use crate::slo::State;
    let object = format!("{}/{}", s.spec.environment, s.spec.name);
    let env = Some(s.spec.environment.as_str());
    match (s.state, &s.budget) {
        (State::Met, Some(b)) => Check::new(
            "slo",
            &object,
            env,
            Verdict::Pass,
            format!(
                "{:.1}% of the {} error budget left ({} of {})",
                b.remaining * 100.0,
                s.spec.window,
                crate::slo::duration(b.remaining_seconds),
                crate::slo::duration(b.total_seconds)
            ),
        ),
        (State::Exhausted, _) => Check::new("slo", &object, env, Verdict::Fail, &s.reason),
        _ => Check::new("slo", &object, env, Verdict::Skip, &s.reason),
    }
}

/// How many checks have each verdict: (pass, fail, skip).
pub fn counts(checks: &[Check]) -> (usize, usize, usize) {
    let n = |v| checks.iter().filter(|c| c.verdict == v).count();
    (n(Verdict::Pass), n(Verdict::Fail), n(Verdict::Skip))
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

/// `GET` of one object; `None` when it (or its kind) does not exist.
async fn get(
    client: &Client,
    ar: &kube::discovery::ApiResource,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, Error> {
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client.clone(), namespace, ar);
    match api.get_opt(name).await {
        Ok(o) => Ok(o.map(|o| crate::kube::typed_value(&o, &ar.api_version, &ar.kind))),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(kube_err(format!("{} `{namespace}/{name}`", ar.kind))(e)),
    }
}

/// The ApiResource of a rendered object's kind, its plural as kube-rs derives it.
fn resource_of(m: &Manifest) -> kube::discovery::ApiResource {
    let (group, version) = m.group_version();
    kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        group,
        version,
        m.kind(),
    ))
}

#[cfg(test)]
mod tests;
