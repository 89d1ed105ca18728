//! The apply engine: server-side apply of a set of manifests with field manager `platformctl`.
//!
//! Phases: namespaces, then CRDs (waited to Established, so their objects can be addressed), then
//! everything else, each phase with bounded concurrency. Kinds are found by discovery. Transient
//! failures (429, 5xx, dropped connections) are retried with exponential backoff; a field owned
//! by another manager is reported with that manager's name and only taken over with `force`; a
//! field the schema does not know is a configuration error, never retried.
//!
//! It does not decide what to apply (that is `up`'s plan) and never prints: the caller gets one
//! callback per applied object.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::Status;
use serde_json::Value;

use super::discovery::{Discovery, Resolved};
use super::manifest::{Key, Manifest};
use super::wait;

pub const FIELD_MANAGER: &str = "platformctl";

#[derive(Debug, Clone)]
pub struct Options {
    /// Take over fields owned by other managers (`--force-conflicts`).
    pub force_conflicts: bool,
    /// The API server validates and defaults, and persists nothing (`--dry-run=server`).
    pub dry_run: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How long a CRD may take to become Established.
    pub crd_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            force_conflicts: false,
            dry_run: false,
            concurrency: 16,
            crd_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Configured,
    Unchanged,
}

/// One applied object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    #[serde(flatten)]
    pub key: Key,
    pub source: String,
    pub action: Action,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{key} (from {source_name}) has fields owned by {}: {}",
        managers.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
        fields.join(", ")
    )]
    Conflict {
        key: Key,
        source_name: String,
        managers: Vec<String>,
        fields: Vec<String>,
    },
    #[error("{key} (from {source_name}) is invalid: {message}")]
    Invalid {
        key: Key,
        source_name: String,
        message: String,
    },
    #[error(
        "{key} (from {source_name}): the cluster serves no kind `{}` in `{}`",
        key.kind,
        key.api_version
    )]
    UnknownKind { key: Key, source_name: String },
    #[error("{key} (from {source_name}): the API server answered {code} {reason}: {message}")]
    Refused {
        key: Key,
        source_name: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error("cannot reach the API server while applying {key} (gave up after {attempts} attempts)")]
    Unreachable {
        key: Key,
        attempts: u32,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Wait(#[from] wait::Error),
}

impl Error {
    /// The command-line hint for this error, if there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Conflict { .. } => Some(
                "another controller or person manages these fields; re-run with `--force-conflicts` to take them over, or leave them out of the manifest".into(),
            ),
            Error::UnknownKind { key, .. } => Some(format!(
                "install the CRD that defines `{}` first (is its addon enabled?), or fix `apiVersion`",
                key.kind
            )),
            _ => None,
        }
    }
}

/// Applies manifests by server-side apply.
pub struct Applier {
    client: Client,
    discovery: Discovery,
    options: Options,
    /// Groups whose CRDs this run applied: the API server may report a CRD Established a few
    /// tens of milliseconds before discovery serves its group, so a miss there is asked again.
    new_groups: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How long a kind of a just-Established CRD may take to appear in discovery.
const NEW_GROUP_GRACE: Duration = Duration::from_secs(10);

impl Applier {
    pub fn new(client: Client, options: Options) -> Self {
        Applier {
            client,
            discovery: Discovery::default(),
            options,
            new_groups: std::sync::Mutex::default(),
        }
    }

    /// Applies every manifest (already in `manifest::order`), calling `on_applied` as each
    /// finishes. Stops at the first error of a phase, after the requests in flight complete.
    pub async fn apply(
        &self,
        manifests: &[Manifest],
        on_applied: &(dyn Fn(&Applied) + Sync),
    ) -> Result<Vec<Applied>, Error> {
        let mut done = Vec::with_capacity(manifests.len());
        for tier in 0..=2u8 {
            let phase: Vec<&Manifest> = manifests.iter().filter(|m| m.tier() == tier).collect();
            if phase.is_empty() {
                continue;
            }
            let applied: Vec<Applied> = stream::iter(phase.iter().map(|m| async move {
                let a = self.apply_one(m).await?;
                on_applied(&a);
                Ok::<_, Error>(a)
            }))
            .buffer_unordered(self.options.concurrency.max(1))
            .try_collect()
            .await?;
            if tier == 1 {
                self.after_crds(&phase).await?;
            }
            done.extend(applied);
        }
        Ok(done)
    }

    /// CRDs must be Established before any object of theirs is applied; discovery then forgets
    /// what it knew about their groups.
    async fn after_crds(&self, crds: &[&Manifest]) -> Result<(), Error> {
        if !self.options.dry_run {
            let api: Api<DynamicObject> = Api::all_with(
                self.client.clone(),
                &kube::discovery::ApiResource::erase::<
                    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
                >(&()),
            );
            let targets = crds
                .iter()
                .map(|m| wait::Target {
                    key: m.key(),
                    api: api.clone(),
                    name: m.name().to_string(),
                })
                .collect();
            wait::all_ready(targets, self.options.crd_timeout, &|_, _| {}).await?;
        }
        for m in crds {
            if let Some(group) = m.object["spec"]["group"].as_str() {
                self.discovery.invalidate(group).await;
                self.new_groups
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(group.to_string());
            }
        }
        Ok(())
    }

    /// Whether the API server serves the manifest's kind now, without the wait for CRD groups
    /// this engine just created.
    pub async fn served(&self, m: &Manifest) -> Result<bool, Error> {
        Ok(self.lookup(m).await?.is_some())
    }

    /// The manifest's kind as discovery knows it (one request per group-version, cached).
    async fn lookup(&self, m: &Manifest) -> Result<Option<Resolved>, Error> {
        let (group, version) = m.group_version();
        retry(&m.key(), || {
            self.discovery
                .resolve(&self.client, group, version, m.kind())
        })
        .await
        .map_err(|e| self.error(m, e))
    }

    async fn resolve(&self, m: &Manifest) -> Result<Resolved, Error> {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(found) = self.lookup(m).await? {
                return Ok(found);
            }
            let new = self
                .new_groups
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(m.group_version().0);
            if !new || started.elapsed() >= NEW_GROUP_GRACE {
                return Err(Error::UnknownKind {
                    key: m.key(),
                    source_name: m.source.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn api(&self, m: &Manifest, resolved: &Resolved) -> Api<DynamicObject> {
        if resolved.namespaced {
            let ns = m
                .namespace()
                .unwrap_or_else(|| self.client.default_namespace());
            Api::namespaced_with(self.client.clone(), ns, &resolved.resource)
        } else {
            Api::all_with(self.client.clone(), &resolved.resource)
        }
    }

    async fn apply_one(&self, m: &Manifest) -> Result<Applied, Error> {
        let resolved = self.resolve(m).await?;
        let api = self.api(m, &resolved);
        let key = m.key();
        let name = m.name();
        let before = retry(&key, || api.get_opt(name))
            .await
            .map_err(|e| self.error(m, e))?;
        let mut object = m.object.clone();
        if !resolved.namespaced
            && let Some(meta) = object["metadata"].as_object_mut()
        {
            meta.remove("namespace");
        }
        let mut params = PatchParams::apply(FIELD_MANAGER).validation_strict();
        params.force = self.options.force_conflicts;
        params.dry_run = self.options.dry_run;
        let patch = Patch::Apply(&object);
        let after = match retry(&key, || api.patch(name, &params, &patch)).await {
            Ok(after) => after,
            Err(e) => match self.error(m, e) {
                Error::Conflict {
                    ref managers,
                    ref fields,
                    ..
                } if !params.force && mirrored_by_argocd(&key, managers, fields) => {
                    params.force = true;
                    retry(&key, || api.patch(name, &params, &patch))
                        .await
                        .map_err(|e| self.error(m, e))?
                }
                other => return Err(other),
            },
        };
        let action = match before {
            None => Action::Created,
            Some(before) if changed(&before, &after, self.options.dry_run) => Action::Configured,
            Some(_) => Action::Unchanged,
        };
        Ok(Applied {
            key,
            source: m.source.clone(),
            action,
        })
    }

    fn error(&self, m: &Manifest, e: Retried) -> Error {
        let key = m.key();
        let source_name = m.source.clone();
        match e {
            Retried::Unreachable { attempts, source } => Error::Unreachable {
                key,
                attempts,
                source,
            },
            Retried::Final(kube::Error::Api(status)) => from_status(key, source_name, &status),
            Retried::Final(other) => Error::Unreachable {
                key,
                attempts: 1,
                source: other,
            },
        }
    }
}

/// Whether the apply changed the object. A real apply that changed nothing is not written, so
/// the resourceVersion stays; a dry run is compared by content.
fn changed(before: &DynamicObject, after: &DynamicObject, dry_run: bool) -> bool {
    if !dry_run {
        return before.metadata.resource_version != after.metadata.resource_version;
    }
    let strip = |o: &DynamicObject| {
        let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
        if let Some(meta) = v["metadata"].as_object_mut() {
            for f in ["managedFields", "resourceVersion", "generation"] {
                meta.remove(f);
            }
        }
        v
    };
    strip(before) != strip(after)
}

fn from_status(key: Key, source_name: String, status: &Status) -> Error {
    let message = status.message.clone();
    if status.code == 409 && status.reason == "Conflict" {
        let causes = status
            .details
            .as_ref()
            .map(|d| d.causes.as_slice())
            .unwrap_or_default();
        let mut managers: Vec<String> = causes
            .iter()
            .filter_map(|c| manager_in(&c.message))
            .collect();
        if managers.is_empty() {
            managers.extend(manager_in(&message));
        }
        managers.sort();
        managers.dedup();
        let fields: Vec<String> = causes
            .iter()
            .map(|c| c.field.clone())
            .filter(|f| !f.is_empty())
            .collect();
        return Error::Conflict {
            key,
            source_name,
            managers,
            fields,
        };
    }
    if is_invalid(status) {
        return Error::Invalid {
            key,
            source_name,
            message,
        };
    }
    Error::Refused {
        key,
        source_name,
        code: status.code,
        reason: status.reason.clone(),
        message,
    }
}

/// A conflict that is no one's intent: argocd-server, issuing or revoking a project role's token
/// (`argocd proj role create-token`), updates the whole AppProject and so becomes the owner of
/// `.spec.roles` (an atomic list), which platformctl's manifest sets. The tokens are kept, and
/// checked, in the AppProject's `status.jwtTokensByRole` (Argo CD's `GetJWTToken`); the copy in
/// `spec.roles[].jwtTokens` is a mirror Argo CD writes back from the status on its next update.
/// So the roles are taken back, and every issued token stays valid.
fn mirrored_by_argocd(key: &Key, managers: &[String], fields: &[String]) -> bool {
    key.kind == "AppProject"
        && key.api_version.starts_with("argoproj.io/")
        && managers == ["argocd-server"]
        && !fields.is_empty()
        && fields.iter().all(|f| f == ".spec.roles")
}

/// `conflict with "rollouts-controller" using v1` -> `rollouts-controller`.
fn manager_in(message: &str) -> Option<String> {
    let rest = message.split_once("conflict with \"")?.1;
    Some(rest.split_once('"')?.0.to_string())
}

/// The object itself is wrong: retrying cannot help. Server-side apply answers a field its schema
/// does not declare with 500 "failed to create typed patch object", whatever the validation level.
fn is_invalid(status: &Status) -> bool {
    matches!(status.code, 400 | 422)
        || (status.code == 500
            && (status
                .message
                .contains("failed to create typed patch object")
                || status.message.contains("field not declared in schema")))
}

fn retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            !is_invalid(s) && (s.code == 429 || s.code >= 500 || s.reason == "ServerTimeout")
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Why a retried call finally failed.
#[derive(Debug)]
pub(crate) enum Retried {
    /// A transient failure that outlasted every attempt.
    Unreachable { attempts: u32, source: kube::Error },
    /// A failure retrying cannot mend.
    Final(kube::Error),
}

const ATTEMPTS: u32 = 6;

/// Runs `call` until it succeeds, fails for good, or has failed transiently `ATTEMPTS` times,
/// sleeping 100 ms, 200 ms, ... (capped at 3 s) between attempts.
pub(crate) async fn retry<T, F, Fut>(key: &Key, mut call: F) -> Result<T, Retried>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e) && attempt < ATTEMPTS => {
                tracing::debug!(%key, attempt, error = %e, "transient failure; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            Err(e) if retryable(&e) => {
                return Err(Retried::Unreachable {
                    attempts: attempt,
                    source: e,
                });
            }
            Err(e) => return Err(Retried::Final(e)),
        }
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: Some("prod".into()),
            name: "orders-active".into(),
        }
    }

    #[test]
    fn only_argocd_servers_roles_of_an_app_project_are_taken_back() {
        let project = Key {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "AppProject".into(),
            namespace: Some("argocd".into()),
            name: "dev".into(),
        };
        let server = ["argocd-server".to_string()];
        let roles = [".spec.roles".to_string()];
        assert!(mirrored_by_argocd(&project, &server, &roles));
        let more = [".spec.roles".to_string(), ".spec.destinations".to_string()];
        assert!(!mirrored_by_argocd(&project, &server, &more));
        assert!(!mirrored_by_argocd(
            &project,
            &["kubectl".to_string()],
            &roles
        ));
        assert!(!mirrored_by_argocd(&project, &server, &[]));
        assert!(!mirrored_by_argocd(&key(), &server, &roles));
    }

    fn status(code: u16, reason: &str, message: &str) -> Status {
        Status {
            code,
            reason: reason.into(),
            message: message.into(),
            ..Status::default()
        }
    }

    #[test]
    fn a_conflict_names_the_other_manager_and_field() {
        // As the API server answered in the cluster tier when the Rollouts controller owned a
        // blue-green Service's selector.
        let mut s = status(
            409,
            "Conflict",
            "Apply failed with 1 conflict: conflict with \"rollouts-controller\" using v1: .spec.selector",
        );
        s.details = serde_json::from_value(serde_json::json!({
            "causes": [{
                "reason": "FieldManagerConflict",
                "message": "conflict with \"rollouts-controller\" using v1",
                "field": ".spec.selector",
            }],
        }))
        .expect("a StatusDetails");
        let err = from_status(key(), "envs/prod/orders/service.yaml".into(), &s);
        assert_eq!(
            err.to_string(),
            "Service `prod/orders-active` (from envs/prod/orders/service.yaml) has fields owned by `rollouts-controller`: .spec.selector"
        );
        assert!(err.hint().is_some_and(|h| h.contains("--force-conflicts")));
    }

    #[test]
    fn an_undeclared_field_is_invalid_not_transient() {
        let s = status(
            500,
            "",
            "failed to create typed patch object (/v1, Kind=Service): .spec.replicaz: field not declared in schema",
        );
        assert!(!retryable(&kube::Error::Api(Box::new(s.clone()))));
        assert!(matches!(
            from_status(key(), "f".into(), &s),
            Error::Invalid { .. }
        ));
    }

    #[test]
    fn overload_and_server_errors_are_retried() {
        for (code, reason) in [
            (429, "TooManyRequests"),
            (503, "ServiceUnavailable"),
            (504, "Timeout"),
        ] {
            assert!(retryable(&kube::Error::Api(Box::new(status(
                code, reason, "busy"
            )))));
        }
        for (code, reason) in [(403, "Forbidden"), (404, "NotFound"), (422, "Invalid")] {
            assert!(!retryable(&kube::Error::Api(Box::new(status(
                code, reason, "no"
            )))));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_gives_up_after_the_last_attempt() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let r: Result<(), _> = retry(&key(), || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                Err(kube::Error::Api(Box::new(status(
                    503,
                    "ServiceUnavailable",
                    "busy",
                ))))
            }
        })
        .await;
        assert!(matches!(
            r,
            Err(Retried::Unreachable {
                attempts: ATTEMPTS,
                ..
            })
        ));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), ATTEMPTS);
    }
}
