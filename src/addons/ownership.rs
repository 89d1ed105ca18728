//! An object an addon's chart renders that already exists in the cluster without being the
//! release's: helm refuses it ("exists and cannot be imported into the current release: invalid
//! ownership metadata", helm v3.19.0 `pkg/action/validate.go`). This module reads which object
//! and who owns it from helm's error, and adopts it when asked: Helm takes over an object
//! that carries its label `app.kubernetes.io/managed-by: Helm` and the annotations
//! `meta.helm.sh/release-name` and `meta.helm.sh/release-namespace` of the release.

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};

/// The object helm would not import, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub kind: String,
    pub name: String,
    /// `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    pub owner: Owner,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// No Helm ownership metadata: made by hand, by kubectl, or by another tool.
    NotHelm,
    /// Another Helm release (`meta.helm.sh/release-name` and `-namespace`, where set).
    Release {
        name: String,
        namespace: Option<String>,
    },
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} `{ns}/{}`", self.kind, self.name),
            None => write!(f, "{} `{}`", self.kind, self.name),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::NotHelm => write!(
                f,
                "something other than Helm (it has no Helm ownership metadata)"
            ),
            Owner::Release {
                name,
                namespace: Some(ns),
            } => write!(f, "the Helm release `{name}` in namespace `{ns}`"),
            Owner::Release {
                name,
                namespace: None,
            } => write!(f, "the Helm release `{name}`"),
        }
    }
}

const MARK: &str = " exists and cannot be imported into the current release: ";

/// The conflict in helm's stderr, if that is why it failed. Helm formats it as
/// `<Kind> "<name>" in namespace "<ns>" exists and cannot be imported into the current release:
/// invalid ownership metadata; <errors>`, each error `missing key "<k>": must be set to "<v>"`
/// or `key "<k>" must equal "<v>": current value is "<actual>"`.
pub fn parse(stderr: &str) -> Option<Conflict> {
    let line = stderr.lines().find(|l| l.contains(MARK))?;
    let (object, why) = line.split_once(MARK)?;
    // `…: Unable to continue with install: CustomResourceDefinition "x" in namespace ""`
    let object = object.rsplit(": ").next().unwrap_or(object);
    let (kind, rest) = object.split_once(" \"")?;
    let (name, rest) = rest.split_once('"')?;
    let namespace = rest
        .strip_prefix(" in namespace \"")
        .and_then(|r| r.strip_suffix('"'))
        .filter(|ns| !ns.is_empty())
        .map(str::to_string);
    let current = |key: &str| {
        let marker = format!("key \"{key}\" must equal ");
        let after = why.split(&marker).nth(1)?;
        let value = after.split("current value is \"").nth(1)?;
        value.split('"').next().map(str::to_string)
    };
    let owner = match current("meta.helm.sh/release-name") {
        Some(name) => Owner::Release {
            name,
            namespace: current("meta.helm.sh/release-namespace"),
        },
        None => Owner::NotHelm,
    };
    Some(Conflict {
        kind: kind.trim().to_string(),
        name: name.to_string(),
        namespace,
        owner,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error("cannot find the API of kind `{kind}` to adopt {conflict}")]
    Kind { kind: String, conflict: Conflict },
    #[error("cannot adopt {conflict}")]
    Patch {
        conflict: Conflict,
        #[source]
        source: kube::Error,
    },
}

/// Marks the conflicting object as the release's, as Helm's own adoption expects it; the next
/// `helm upgrade --install` then takes it over.
pub async fn adopt(
    client: &Client,
    conflict: &Conflict,
    release: &str,
    release_namespace: &str,
) -> Result<(), AdoptError> {
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .map_err(|_| AdoptError::Kind {
            kind: conflict.kind.clone(),
            conflict: conflict.clone(),
        })?;
    let resource = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(r, _)| r.kind == conflict.kind)
        .map(|(r, _)| r)
        .ok_or_else(|| AdoptError::Kind {
            kind: conflict.kind.clone(),
            conflict: conflict.clone(),
        })?;
    let api: Api<DynamicObject> = match &conflict.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let patch = serde_json::json!({
        "metadata": {
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {
                "meta.helm.sh/release-name": release,
                "meta.helm.sh/release-namespace": release_namespace,
            }
        }
    });
    api.patch(
        &conflict.name,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
    .map_err(|source| AdoptError::Patch {
        conflict: conflict.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helms_ownership_errors_name_the_object_and_its_owner() {
        // As helm v3.19.0 words them (pkg/action/install.go, validate.go).
        let not_helm = "Error: INSTALLATION FAILED: Unable to continue with install: CustomResourceDefinition \"rollouts.argoproj.io\" in namespace \"\" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \"Helm\"; annotation validation error: missing key \"meta.helm.sh/release-name\": must be set to \"argo-rollouts\"; annotation validation error: missing key \"meta.helm.sh/release-namespace\": must be set to \"argo-rollouts\"";
        assert_eq!(
            parse(not_helm),
            Some(Conflict {
                kind: "CustomResourceDefinition".into(),
                name: "rollouts.argoproj.io".into(),
                namespace: None,
                owner: Owner::NotHelm,
            })
        );
        let other = "Error: UPGRADE FAILED: Unable to continue with update: ConfigMap \"argocd-cm\" in namespace \"argocd\" exists and cannot be imported into the current release: invalid ownership metadata; annotation validation error: key \"meta.helm.sh/release-name\" must equal \"argocd\": current value is \"argo\"; annotation validation error: key \"meta.helm.sh/release-namespace\" must equal \"argocd\": current value is \"gitops\"";
        let c = parse(other).expect("a conflict");
        assert_eq!(c.namespace.as_deref(), Some("argocd"));
        assert_eq!(
            c.owner,
            Owner::Release {
                name: "argo".into(),
                namespace: Some("gitops".into())
            }
        );
        assert_eq!(c.to_string(), "ConfigMap `argocd/argocd-cm`");
        assert_eq!(parse("Error: some other failure"), None);
    }
}
