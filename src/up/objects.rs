//! The objects `up` itself owns (not Argo CD): namespaces with labels, a deployer identity per
//! environment, and the Secrets that must never be in git.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use serde_json::{Value, json};

use crate::addons::{self, Credentials};
use crate::config::Platform;
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
                    {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "prometheusrules"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecretSpec {
    pub namespace: String,
    pub name: String,
    /// Fixed values besides the source (a login's user name).
    pub fixed: BTreeMap<String, String>,
    pub source: Source,
}

/// The directory of local Secret sources, beside platform.yaml; `up` never writes there.
pub const SECRETS_DIR: &str = ".platformctl/secrets";

/// Every Secret the platform needs: the services' (per environment they run in) and the addons'
/// generated logins. A service Secret comes from `.platformctl/secrets/<env>/<name>.env` or
/// `.platformctl/secrets/<name>.env` when one exists, else it is generated with one random key:
/// `ADMIN_TOKEN` for a name ending in `-admin` (what the reference services read), `TOKEN`
/// otherwise.
pub fn secrets(
    platform: &Platform,
    project: &Path,
    releases: &[addons::Release],
) -> Vec<SecretSpec> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let dir = project.join(SECRETS_DIR);
    for env in &platform.environments {
        for service in &platform.services {
            if !service.tags.contains_key(&env.name) {
                continue;
            }
            for name in &service.secrets {
                if !seen.insert((env.namespace.clone(), name.clone())) {
                    continue;
                }
                let file = [
                    dir.join(&env.name).join(format!("{name}.env")),
                    dir.join(format!("{name}.env")),
                ]
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
            });
        }
    }
    out
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
