//! What an installed release serves, and when it is serving: its workloads available, every
//! admission webhook it registered backed by a ready endpoint, every APIService it registered
//! Available. `up` waits for all of it after the addons step, before Argo CD syncs anything
//! (a first sync that races an addon's webhook fails: "failed calling webhook").
//!
//! A release's objects are read from Helm's own storage through the API — the Secret Helm 3
//! writes per revision (`sh.helm.release.v1.<release>.v<revision>`, labels `owner=helm`,
//! `name=<release>`, `status=deployed`; its `release` key is base64 of gzipped JSON, as
//! `helm get manifest` decodes it) — so no helm process is spawned to find them.

use std::io::Read;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;

use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};

use crate::kube::{Key, wait};
use crate::ready::Readiness;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read release `{namespace}/{release}` from Helm's storage")]
    Read {
        release: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("release `{namespace}/{release}` has no deployed revision in Helm's storage")]
    NotDeployed { release: String, namespace: String },
    #[error("release `{namespace}/{release}`'s record in Helm's storage cannot be decoded: {why}")]
    Decode {
        release: String,
        namespace: String,
        why: String,
    },
}

/// The decoded record of a release's deployed revision: Helm's `release.Release` as JSON
/// (`name`, `version`, `info.status`, `chart.metadata.version`, `config`, `manifest`).
pub async fn deployed(client: &Client, release: &str, namespace: &str) -> Result<Value, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams::default().labels(&format!("owner=helm,name={release},status=deployed"));
    let list = api.list(&lp).await.map_err(|source| Error::Read {
        release: release.into(),
        namespace: namespace.into(),
        source,
    })?;
    // The newest deployed revision (Helm keeps one; a crash mid-upgrade may leave two).
    let newest = list
        .items
        .into_iter()
        .max_by_key(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("version"))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .ok_or_else(|| Error::NotDeployed {
            release: release.into(),
            namespace: namespace.into(),
        })?;
    let data = newest
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .map(|b| b.0.clone())
        .unwrap_or_default();
    decode(&data).map_err(|why| Error::Decode {
        release: release.into(),
        namespace: namespace.into(),
        why,
    })
}

/// Helm's encoding of a release record: base64 text of (usually gzipped) JSON.
pub fn decode(data: &[u8]) -> Result<Value, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(data.trim_ascii())
        .map_err(|e| format!("not base64: {e}"))?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("not gzip: {e}"))?;
        out
    } else {
        raw
    };
    serde_json::from_slice(&json).map_err(|e| format!("not JSON: {e}"))
}

/// The objects of a release's manifest (`---`-separated YAML, as Helm stores it), as JSON.
pub fn objects(manifest: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(manifest)
        .filter_map(|doc| serde_yaml::Value::deserialize(doc).ok())
        .filter_map(|doc| serde_json::to_value(doc).ok())
        .filter(|v: &Value| v.is_object())
        .collect()
}

/// One thing a release serves that `up` waits for, with the object whose readiness tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The object to watch (a workload, an APIService, a webhook Service's Endpoints).
    pub key: Key,
    /// What it stands for, for progress and errors.
    pub what: String,
}

fn key(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Key {
    Key {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(str::to_string),
        name: name.into(),
    }
}

/// What the objects of a release installed into `namespace` serve: each Deployment,
/// StatefulSet and DaemonSet; the Endpoints of each Service an admission webhook calls; each
/// APIService backed by a Service. Webhooks that call a URL, and local APIServices, need
/// nothing from the cluster.
pub fn needs(objects: &[Value], namespace: &str) -> Vec<Need> {
    let mut out: Vec<Need> = Vec::new();
    let mut push = |need: Need| {
        if !out.contains(&need) {
            out.push(need);
        }
    };
    for o in objects {
        let kind = o["kind"].as_str().unwrap_or_default();
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        let ns = o["metadata"]["namespace"].as_str().unwrap_or(namespace);
        match (api_version, kind) {
            ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet") => push(Need {
                key: key(api_version, kind, Some(ns), name),
                what: format!("{kind} {ns}/{name}"),
            }),
            (
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
            ) => {
                for hook in o["webhooks"].as_array().into_iter().flatten() {
                    let service = &hook["clientConfig"]["service"];
                    let (Some(svc), Some(svc_ns)) =
                        (service["name"].as_str(), service["namespace"].as_str())
                    else {
                        continue;
                    };
                    push(Need {
                        key: key("v1", "Endpoints", Some(svc_ns), svc),
                        what: format!(
                            "webhook {} (Service {svc_ns}/{svc})",
                            hook["name"].as_str().unwrap_or(name)
                        ),
                    });
                }
            }
            ("apiregistration.k8s.io/v1", "APIService") if o["spec"]["service"].is_object() => {
                push(Need {
                    key: key(api_version, kind, None, name),
                    what: format!("APIService {name}"),
                })
            }
            _ => {}
        }
    }
    out
}

/// The API of a need's object.
fn api(client: &Client, key: &Key) -> Api<DynamicObject> {
    let (group, version) = key
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", key.api_version.as_str()));
    // The kinds `needs` yields: Deployment, StatefulSet, DaemonSet, APIService, Endpoints.
    let plural = match key.kind.as_str() {
        "Endpoints" => "endpoints".to_string(),
        kind => format!("{}s", kind.to_lowercase()),
    };
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, &key.kind),
        &plural,
    );
    match &key.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// What every release in `releases` (name, namespace) serves, read from Helm's storage
/// concurrently.
pub async fn of_releases(
    client: &Client,
    releases: &[(String, String)],
) -> Result<Vec<Need>, Error> {
    let records = futures::future::try_join_all(
        releases
            .iter()
            .map(|(name, ns)| async move { deployed(client, name, ns).await.map(|r| (r, ns)) }),
    )
    .await?;
    let mut out = Vec::new();
    for (record, ns) in records {
        for need in needs(
            &objects(record["manifest"].as_str().unwrap_or_default()),
            ns,
        ) {
            if !out.contains(&need) {
                out.push(need);
            }
        }
    }
    Ok(out)
}

/// Waits until every need is met, under one timeout; `on_change` hears each one's readiness as
/// it changes. A timeout names what each unmet need still waits for.
pub async fn wait(
    client: &Client,
    needs: &[Need],
    timeout: std::time::Duration,
    on_change: &(dyn Fn(&Need, &Readiness) + Sync),
) -> Result<(), wait::Error> {
    let targets = needs
        .iter()
        .map(|n| wait::Target {
            key: n.key.clone(),
            api: api(client, &n.key),
            name: n.key.name.clone(),
        })
        .collect();
    let by_key = |key: &Key| needs.iter().find(|n| &n.key == key);
    wait::all_ready(targets, timeout, &|key, readiness| {
        if let Some(need) = by_key(key) {
            on_change(need, readiness);
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"---
# Source: ingress-nginx/templates/controller-deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
---
apiVersion: v1
kind: Service
metadata:
  name: ingress-nginx-controller-admission
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: ingress-nginx-admission
webhooks:
  - name: validate.nginx.ingress.kubernetes.io
    clientConfig:
      service: {namespace: ingress-nginx, name: ingress-nginx-controller-admission, path: /networking/v1/ingresses, port: 443}
  - name: by-url.example.com
    clientConfig:
      url: https://example.com/validate
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
spec:
  service: {name: metrics-server, namespace: kube-system}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1.local.example.com
spec: {}
"#;

    #[test]
    fn a_release_needs_its_workloads_webhook_services_and_apiservices() {
        let needs = needs(&objects(MANIFEST), "ingress-nginx");
        let what: Vec<&str> = needs.iter().map(|n| n.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "Deployment ingress-nginx/ingress-nginx-controller",
                "webhook validate.nginx.ingress.kubernetes.io (Service ingress-nginx/ingress-nginx-controller-admission)",
                "APIService v1beta1.metrics.k8s.io",
            ]
        );
        assert_eq!(needs[1].key.kind, "Endpoints");
        assert_eq!(needs[1].key.namespace.as_deref(), Some("ingress-nginx"));
    }

    #[test]
    fn helm_release_records_decode_as_helm_writes_them() {
        use std::io::Write;
        let record = serde_json::json!({"name": "x", "version": 3, "manifest": MANIFEST});
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(record.to_string().as_bytes()).expect("gzip");
        let stored = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
        assert_eq!(decode(stored.as_bytes()), Ok(record.clone()));
        // Helm 3's first releases stored plain JSON.
        let plain = base64::engine::general_purpose::STANDARD.encode(record.to_string());
        assert_eq!(decode(plain.as_bytes()), Ok(record));
        assert!(decode(b"not base64!").is_err());
    }
}
