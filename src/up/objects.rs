//! The objects `up` itself owns (not Argo CD): namespaces with labels, a deployer identity per
//! environment, and the Secrets that must never be in git: the services', the addons' generated
//! logins, and the alert receivers' (a webhook URL or an SMTP password cannot be generated, so
//! those come from a local file or `up` stops before it changes anything).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use serde_json::{Value, json};

use crate::addons::{self, Credentials};
use crate::config::{Platform, SecretUse};
use crate::kube::Manifest;

/// Namespaces that exist in every cluster and belong to it (metrics-server installs into
/// `kube-system`).
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Namespaces: every environment's (labelled with it), every enabled addon's, the GitOps
/// server's. Then per environment a `deployer` ServiceAccount with a Role on its own namespace.
pub fn namespaces(platform: &Platform) -> Vec<Manifest> {
    let labels = super::labels(platform);
    let mut names: BTreeMap<String, Option<String>> = BTreeMap::new();
    for env in &platform.environments {
        names.insert(env.namespace.clone(), Some(env.name.clone()));
    }
    for release in addons::plan(platform, &addons::Facts::default()) {
        names.entry(release.namespace).or_insert(None);
    }
    if let Some(local) = &platform.gitops.local {
        names.entry(local.namespace.clone()).or_insert(None);
    }
    // The cluster's own namespaces are never labelled as ours: `down --keep-cluster` deletes
    // what carries the label.
    names.retain(|n, _| !SYSTEM_NAMESPACES.contains(&n.as_str()));
    let mut out = Vec::new();
    for (name, env) in names {
        let mut l = labels.clone();
        if let Some(env) = env {
            l.insert("platformctl.dev/environment".into(), env);
        }
        out.push(manifest(
            format!("namespace/{name}"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": l}}),
        ));
    }
    for env in &platform.environments {
        let ns = &env.namespace;
        let meta = |name: &str| json!({"name": name, "namespace": ns, "labels": labels});
        out.push(manifest(
            format!("rbac/{ns}/serviceaccount"),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("deployer")}),
        ));
        out.push(manifest(
            format!("rbac/{ns}/role"),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta("deployer"),
                "rules": [
                    {"apiGroups": [""], "resources": ["configmaps", "services", "pods", "pods/log", "events", "serviceaccounts"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                    {"apiGroups": ["argoproj.io"], "resources": ["rollouts", "rollouts/status", "analysisruns", "analysistemplates", "experiments"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                    {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "prometheusrules", "alertmanagerconfigs"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}
                ]
            }),
        ));
        out.push(manifest(
            format!("rbac/{ns}/rolebinding"),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta("deployer"),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
                "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}]
            }),
        ));
    }
    out
}

fn manifest(source: String, object: Value) -> Manifest {
    Manifest::new(source, object).expect("built with apiVersion, kind and name")
}

/// Where a Secret's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A local `KEY=value` file (git-ignored): applied, so an edit reaches the cluster.
    File(PathBuf),
    /// Random values for these keys, created once and never replaced.
    Generated(Vec<String>),
    /// No file at any of these paths, and the values cannot be generated: [`check_sources`]
    /// refuses the plan.
    Missing(Vec<PathBuf>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecretSpec {
    pub namespace: String,
    pub name: String,
    /// Fixed values besides the source (a login's user name).
    pub fixed: BTreeMap<String, String>,
    pub source: Source,
    /// Keys the source file must hold, each with what reads it.
    pub required: Vec<Required>,
}

/// A key an alert receiver reads from its Secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Required {
    pub key: String,
    pub receiver: String,
    pub what: SecretUse,
}

impl Required {
    fn describe(&self) -> String {
        match self.what {
            SecretUse::SlackWebhookUrl => {
                format!("the Slack webhook URL of receiver `{}`", self.receiver)
            }
            SecretUse::SmtpPassword => format!("the SMTP password of receiver `{}`", self.receiver),
        }
    }
}

/// The directory of local Secret sources, beside platform.yaml; `up` never writes there.
pub const SECRETS_DIR: &str = ".platformctl/secrets";

/// Every Secret the platform needs: the services' (per environment they run in), the alert
/// receivers' (per environment whose AlertmanagerConfig names them) and the addons' generated
/// logins. A service or receiver Secret comes from `.platformctl/secrets/<env>/<name>.env` or
/// `.platformctl/secrets/<name>.env` when one exists. Else a service Secret is generated with
/// one random key: `ADMIN_TOKEN` for a name ending in `-admin` (what the reference services
/// read), `TOKEN` otherwise; a receiver Secret is [`Source::Missing`].
pub fn secrets(
    platform: &Platform,
    project: &Path,
    releases: &[addons::Release],
) -> Vec<SecretSpec> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let dir = project.join(SECRETS_DIR);
    let candidates = |env: &str, name: &str| {
        [
            dir.join(env).join(format!("{name}.env")),
            dir.join(format!("{name}.env")),
        ]
    };
    for env in &platform.environments {
        for service in &platform.services {
            if !service.tags.contains_key(&env.name) {
                continue;
            }
            for name in &service.secrets {
                if !seen.insert((env.namespace.clone(), name.clone())) {
                    continue;
                }
                let file = candidates(&env.name, name)
                    .into_iter()
                    .find(|p| p.is_file());
                let source = match file {
                    Some(f) => Source::File(f),
                    None if name.ends_with("-admin") => {
                        Source::Generated(vec!["ADMIN_TOKEN".into()])
                    }
                    None => Source::Generated(vec!["TOKEN".into()]),
                };
                out.push(SecretSpec {
                    namespace: env.namespace.clone(),
                    name: name.clone(),
                    fixed: BTreeMap::new(),
                    source,
                    required: Vec::new(),
                });
            }
        }
    }
    // Receiver Secrets are named by no service (config validation refuses that); one Secret
    // may serve several receivers of an environment, each with its own key.
    let first_receiver = out.len();
    for env in &platform.environments {
        for receiver in platform.alerting.receivers_in(env) {
            for (name, key, what) in receiver.secret_keys() {
                let required = Required {
                    key: key.to_string(),
                    receiver: receiver.name.clone(),
                    what,
                };
                if let Some(spec) = out[first_receiver..]
                    .iter_mut()
                    .find(|s| s.namespace == env.namespace && s.name == name)
                {
                    if !spec.required.iter().any(|r| r.key == required.key) {
                        spec.required.push(required);
                    }
                    continue;
                }
                let paths = candidates(&env.name, name);
                let source = match paths.iter().find(|p| p.is_file()) {
                    Some(f) => Source::File(f.clone()),
                    None => Source::Missing(paths.to_vec()),
                };
                out.push(SecretSpec {
                    namespace: env.namespace.clone(),
                    name: name.to_string(),
                    fixed: BTreeMap::new(),
                    source,
                    required: vec![required],
                });
            }
        }
    }
    for release in releases {
        if let Some(Credentials {
            namespace,
            name,
            user_key,
            user,
            password_key,
        }) = &release.credentials
        {
            out.push(SecretSpec {
                namespace: namespace.clone(),
                name: name.clone(),
                fixed: BTreeMap::from([(user_key.clone(), user.clone())]),
                source: Source::Generated(vec![password_key.clone()]),
                required: Vec::new(),
            });
        }
    }
    out
}

/// Every Secret whose keys cannot be generated has a source file holding them: each problem
/// (a missing file, a key the file lacks, a webhook URL that is not one), with paths relative
/// to `project`. Values are read, never shown.
pub fn check_sources(project: &Path, specs: &[SecretSpec]) -> Result<(), Vec<String>> {
    let shown = |p: &Path| p.strip_prefix(project).unwrap_or(p).display().to_string();
    let mut problems = Vec::new();
    for spec in specs.iter().filter(|s| !s.required.is_empty()) {
        let needs = |r: &Required| format!("`{}` ({})", r.key, r.describe());
        match &spec.source {
            Source::Missing(paths) => {
                let keys: Vec<String> = spec.required.iter().map(needs).collect();
                let paths: Vec<String> = paths.iter().map(|p| format!("`{}`", shown(p))).collect();
                problems.push(format!(
                    "Secret `{}/{}` has no source: write {} with {}",
                    spec.namespace,
                    spec.name,
                    paths.join(" or "),
                    keys.join(" and ")
                ));
            }
            Source::File(path) => match read_env_file(path) {
                Err(e) => problems.push(e),
                Ok(values) => {
                    for r in &spec.required {
                        match values.get(&r.key).map(|v| v.trim()) {
                            None | Some("") => problems.push(format!(
                                "`{}` has no value for {}",
                                shown(path),
                                needs(r)
                            )),
                            Some(v) if r.what == SecretUse::SlackWebhookUrl && !is_http_url(v) => {
                                problems.push(format!(
                                    "`{}`: `{}` ({}) is not an https:// or http:// URL",
                                    shown(path),
                                    r.key,
                                    r.describe()
                                ))
                            }
                            Some(_) => {}
                        }
                    }
                }
            },
            Source::Generated(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// What Alertmanager takes as a webhook URL: an http(s) scheme and a host.
fn is_http_url(v: &str) -> bool {
    ["https://", "http://"].iter().any(|scheme| {
        v.strip_prefix(scheme).is_some_and(|rest| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !rest.contains(char::is_whitespace)
        })
    })
}

/// Reads a `KEY=value` file: blank lines and `#` comments skipped, no quoting rules.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("`{}` line {}: expected KEY=value", path.display(), i + 1))?;
        let k = k.trim();
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "`{}` line {}: `{k}` is not a valid Secret key",
                path.display(),
                i + 1
            ));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// 24 random bytes from the operating system's CSPRNG, as 48 hex digits.
pub fn random_value() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the operating system's random source failed".to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The Secret object for `spec` with these values.
pub fn secret_object(
    platform: &Platform,
    spec: &SecretSpec,
    values: &BTreeMap<String, String>,
) -> Value {
    let data: BTreeMap<&String, ByteString> = values
        .iter()
        .map(|(k, v)| (k, ByteString(v.clone().into_bytes())))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": super::labels(platform)},
        "type": "Opaque",
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> Platform {
        crate::config::parse(
            std::path::Path::new("platform.yaml"),
            include_str!("../../platform.yaml"),
        )
        .expect("the reference platform parses")
    }

    #[test]
    fn namespaces_are_labelled_and_each_environment_gets_a_deployer() {
        let p = platform();
        let ms = namespaces(&p);
        let prod = ms
            .iter()
            .find(|m| m.kind() == "Namespace" && m.name() == "prod")
            .expect("prod namespace");
        assert_eq!(
            prod.object["metadata"]["labels"]["platformctl.dev/environment"],
            "prod"
        );
        assert_eq!(
            prod.object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "platformctl"
        );
        for ns in ["argocd", "monitoring", "chaos", "practice"] {
            assert!(
                ms.iter().any(|m| m.kind() == "Namespace" && m.name() == ns),
                "{ns}"
            );
        }
        // metrics-server goes to kube-system, which is the cluster's, not ours.
        assert!(!ms.iter().any(|m| m.name() == "kube-system"));
        let bindings: Vec<_> = ms
            .iter()
            .filter(|m| m.kind() == "RoleBinding")
            .map(|m| m.namespace())
            .collect();
        assert_eq!(bindings, [Some("practice"), Some("prod")]);
    }

    #[test]
    fn service_secrets_are_generated_unless_a_local_file_exists() {
        let p = platform();
        let dir = tempfile::tempdir().expect("tempdir");
        let specs = secrets(&p, dir.path(), &[]);
        assert_eq!(specs.len(), 2, "{specs:?}");
        assert!(
            specs
                .iter()
                .all(|s| s.source == Source::Generated(vec!["ADMIN_TOKEN".into()]))
        );
        let prod = dir.path().join(SECRETS_DIR).join("prod");
        std::fs::create_dir_all(&prod).expect("mkdir");
        std::fs::write(
            prod.join("customer-api-admin.env"),
            "# ours\nADMIN_TOKEN=abc=d\n",
        )
        .expect("write");
        let specs = secrets(&p, dir.path(), &[]);
        let file = specs.iter().find(|s| s.namespace == "prod").expect("prod");
        let Source::File(path) = &file.source else {
            panic!("{file:?}")
        };
        assert_eq!(read_env_file(path).expect("valid")["ADMIN_TOKEN"], "abc=d");
    }

    fn alerting_platform() -> Platform {
        crate::config::parse(
            std::path::Path::new("platform.yaml"),
            include_str!("../../tests/fixtures/alerting/platform.yaml"),
        )
        .expect("the alerting fixture parses")
    }

    #[test]
    fn receiver_secrets_are_wanted_where_a_route_names_the_receiver_and_never_generated() {
        let p = alerting_platform();
        let dir = tempfile::tempdir().expect("tempdir");
        let specs = secrets(&p, dir.path(), &[]);
        let receivers: Vec<(&str, &str, Vec<&str>)> = specs
            .iter()
            .filter(|s| !s.required.is_empty())
            .map(|s| {
                let keys = s.required.iter().map(|r| r.key.as_str()).collect();
                (s.namespace.as_str(), s.name.as_str(), keys)
            })
            .collect();
        // Staging's only route is tickets to email; the `unused` receiver is in no route.
        assert_eq!(
            receivers,
            [
                ("staging", "alerting-smtp", vec!["password"]),
                ("prod", "alerting-slack", vec!["url"]),
                ("prod", "alerting-smtp", vec!["password"]),
            ]
        );
        let slack = specs
            .iter()
            .find(|s| s.name == "alerting-slack")
            .expect("slack");
        let secrets_dir = dir.path().join(SECRETS_DIR);
        assert_eq!(
            slack.source,
            Source::Missing(vec![
                secrets_dir.join("prod/alerting-slack.env"),
                secrets_dir.join("alerting-slack.env"),
            ])
        );
        // The service's Secret is still generated.
        assert!(specs.iter().any(|s| s.name == "customer-api-admin"
            && matches!(s.source, Source::Generated(_))));
    }

    #[test]
    fn missing_or_incomplete_receiver_sources_are_named_with_their_key_and_no_value() {
        let p = alerting_platform();
        let dir = tempfile::tempdir().expect("tempdir");
        let problems =
            check_sources(dir.path(), &secrets(&p, dir.path(), &[])).expect_err("no source files");
        assert_eq!(
            problems,
            [
                "Secret `staging/alerting-smtp` has no source: write `.platformctl/secrets/staging/alerting-smtp.env` or `.platformctl/secrets/alerting-smtp.env` with `password` (the SMTP password of receiver `team-email`)",
                "Secret `prod/alerting-slack` has no source: write `.platformctl/secrets/prod/alerting-slack.env` or `.platformctl/secrets/alerting-slack.env` with `url` (the Slack webhook URL of receiver `oncall-slack`)",
                "Secret `prod/alerting-smtp` has no source: write `.platformctl/secrets/prod/alerting-smtp.env` or `.platformctl/secrets/alerting-smtp.env` with `password` (the SMTP password of receiver `team-email`)",
            ]
        );
        let secrets_dir = dir.path().join(SECRETS_DIR);
        std::fs::create_dir_all(secrets_dir.join("prod")).expect("mkdir");
        // One file for every environment, one for prod only; a key misspelt, a URL that is not.
        std::fs::write(secrets_dir.join("alerting-smtp.env"), "pasword=hunter2\n").expect("write");
        std::fs::write(
            secrets_dir.join("prod/alerting-slack.env"),
            "url=hooks.slack.com/services/T0/B0/secret-token\n",
        )
        .expect("write");
        let problems =
            check_sources(dir.path(), &secrets(&p, dir.path(), &[])).expect_err("incomplete");
        assert_eq!(
            problems,
            [
                "`.platformctl/secrets/alerting-smtp.env` has no value for `password` (the SMTP password of receiver `team-email`)",
                "`.platformctl/secrets/prod/alerting-slack.env`: `url` (the Slack webhook URL of receiver `oncall-slack`) is not an https:// or http:// URL",
                "`.platformctl/secrets/alerting-smtp.env` has no value for `password` (the SMTP password of receiver `team-email`)",
            ]
        );
        assert!(
            problems
                .iter()
                .all(|m| !m.contains("hunter2") && !m.contains("secret-token"))
        );
        std::fs::write(secrets_dir.join("alerting-smtp.env"), "password=hunter2\n").expect("write");
        std::fs::write(
            secrets_dir.join("prod/alerting-slack.env"),
            "url=https://hooks.slack.com/services/T0/B0/secret-token\n",
        )
        .expect("write");
        let specs = secrets(&p, dir.path(), &[]);
        assert_eq!(check_sources(dir.path(), &specs), Ok(()));
        let smtp: Vec<&Source> = specs
            .iter()
            .filter(|s| s.name == "alerting-smtp")
            .map(|s| &s.source)
            .collect();
        assert_eq!(
            smtp,
            [&Source::File(secrets_dir.join("alerting-smtp.env")); 2],
            "one file for staging and prod"
        );
    }

    #[test]
    fn one_secret_may_serve_two_receivers_with_a_key_each() {
        let text = include_str!("../../tests/fixtures/alerting/platform.yaml")
            .replace("webhookSecret: alerting-slack", "webhookSecret: alerting");
        let text = text.replace("passwordSecret: alerting-smtp", "passwordSecret: alerting");
        let p = crate::config::parse(std::path::Path::new("platform.yaml"), &text).expect("valid");
        let dir = tempfile::tempdir().expect("tempdir");
        let specs = secrets(&p, dir.path(), &[]);
        let prod = specs
            .iter()
            .find(|s| s.namespace == "prod" && s.name == "alerting")
            .expect("prod");
        let keys: Vec<&str> = prod.required.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["url", "password"]);
        assert_eq!(specs.iter().filter(|s| s.name == "alerting").count(), 2);
    }

    #[test]
    fn env_files_name_their_bad_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("x.env");
        std::fs::write(&f, "A=1\nnot a pair\n").expect("write");
        let err = read_env_file(&f).expect_err("bad line");
        assert!(err.ends_with("line 2: expected KEY=value"), "{err}");
    }

    #[test]
    fn random_values_differ() {
        let a = random_value().expect("random");
        assert_eq!(a.len(), 48);
        assert_ne!(a, random_value().expect("random"));
    }
}
