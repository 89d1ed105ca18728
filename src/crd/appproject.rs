//! `argoproj.io/v1alpha1` `AppProject`, as defined by Argo CD v3.3.6 (the app version of Helm
//! chart argo-cd 9.4.17), `manifests/crds/appproject-crd.yaml`.
//!
//! Owns the project spec: allowed sources and destinations, resource allow/deny lists, roles,
//! sync windows and orphaned-resource monitoring. Does not own `Application`
//! ([`super::application`]) or `status` (rejected). Finalizers live in `metadata` (`ObjectMeta`).

use serde::{Deserialize, Serialize};

use super::application::Destination;

custom_resource!(
    /// Who may deploy what, from where, to where.
    AppProject,
    AppProjectSpec
);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppProjectSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_repos: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_namespaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations: Option<Vec<Destination>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_service_accounts: Option<Vec<DestinationServiceAccount>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_resource_whitelist: Option<Vec<ClusterResource>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_resource_blacklist: Option<Vec<ClusterResource>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_resource_whitelist: Option<Vec<GroupKind>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_resource_blacklist: Option<Vec<GroupKind>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_windows: Option<Vec<SyncWindow>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphaned_resources: Option<OrphanedResources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_keys: Option<Vec<SignatureKey>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_only_project_scoped_clusters: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationServiceAccount {
    pub server: String,
    pub default_service_account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A namespaced resource kind (`group` may be `""` for the core group, `*` for all).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupKind {
    pub group: String,
    pub kind: String,
}

/// A cluster-scoped resource kind, optionally narrowed to one name (new in Argo CD 3.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterResource {
    pub group: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Role {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_tokens: Option<Vec<JwtToken>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtToken {
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncWindow {
    /// `allow` or `deny`; upstream declares no enum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_sync: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and_operator: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrphanedResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<OrphanedIgnore>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrphanedIgnore {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignatureKey {
    #[serde(rename = "keyID")]
    pub key_id: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::crd::test_support::*;

    /// The customer-platform dev project: may only deploy to `practice`, no cluster resources.
    const DEV: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: dev
  namespace: argocd
  finalizers:
    - resources-finalizer.argocd.argoproj.io
spec:
  description: customer-platform dev environment
  sourceRepos:
    - https://github.com/example/customer-platform.git
  destinations:
    - server: https://kubernetes.default.svc
      namespace: practice
  clusterResourceWhitelist: []
  namespaceResourceBlacklist:
    - group: ""
      kind: ResourceQuota
  orphanedResources:
    warn: true
  roles:
    - name: ci
      description: CI may sync dev applications
      policies:
        - p, proj:dev:ci, applications, sync, dev/*, allow
        - p, proj:dev:ci, applications, get, dev/*, allow
      groups:
        - platform-engineers
  syncWindows:
    - kind: allow
      schedule: "0 6 * * 1-5"
      duration: 12h
      applications: ["*"]
      manualSync: true
  signatureKeys:
    - keyID: 4AEE18F83AFDEB23
"#;

    #[test]
    fn dev_project_round_trips() {
        let d = doc(DEV);
        assert_round_trips(&d);
        // An empty whitelist (no cluster resources at all) must survive as `[]`, not vanish.
        let out = trip(&d).expect("valid");
        assert_eq!(
            out.pointer("/spec/clusterResourceWhitelist"),
            Some(&json!([]))
        );
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        assert_unknown(
            &doc(DEV),
            &[
                "/status",
                "/spec/sourceRepo",
                "/spec/roles/0/policy",
                "/spec/destinations/0/cluster",
                "/spec/syncWindows/0/timezone",
                // Only cluster-scoped entries may be narrowed to a name.
                "/spec/namespaceResourceBlacklist/0/name",
                "/spec/signatureKeys/0/keyId",
            ],
        );
    }

    #[test]
    fn unknown_field_in_object_meta_is_dropped_by_the_round_trip() {
        assert_drops(&doc(DEV), "/metadata/finalisers");
    }

    #[test]
    fn wrong_types_and_missing_required_fields_are_rejected() {
        let d = doc(DEV);
        assert_invalid(
            &d,
            &[
                ("/spec/clusterResourceWhitelist", json!({})),
                ("/spec/orphanedResources/warn", json!("true")),
            ],
        );
        assert_required(&d, "/spec/roles/0/name");
        assert_required(&d, "/spec/signatureKeys/0/keyID");
        assert_required(&d, "/spec/namespaceResourceBlacklist/0/group");
    }
}
