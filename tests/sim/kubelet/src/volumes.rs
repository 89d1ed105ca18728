//! A pod's volumes, as the kubelet's volume plugins lay them out: `emptyDir` (a directory of the
//! pod's), `configMap`, `secret`, `downwardAPI` and `projected` (service account token from the
//! TokenRequest API, bound to the pod; the `kube-root-ca.crt` ConfigMap; the namespace) written
//! as files and rewritten when their sources change (`refresh`, as the kubelet's periodic sync
//! does), and `hostPath`. Other kinds (persistent volumes) are refused: the pod waits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, Volume,
};
use kube::Client;
use kube::api::{Api, PostParams};

pub struct Volumes {
    client: Client,
    dir: PathBuf,
}

impl Volumes {
    pub fn new(client: Client, dir: PathBuf) -> Volumes {
        Volumes { client, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes every volume of `pod`; an error says which volume cannot be made (FailedMount).
    pub async fn write(&self, pod: &Pod) -> anyhow::Result<()> {
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            self.write_one(pod, v)
                .await
                .with_context(|| format!("MountVolume.SetUp failed for volume {:?}", v.name))?;
        }
        Ok(())
    }

    async fn write_one(&self, pod: &Pod, v: &Volume) -> anyhow::Result<()> {
        let dir = self.path(&v.name);
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        if v.empty_dir.is_some() {
            std::fs::create_dir_all(&dir)?;
            return Ok(());
        }
        if let Some(h) = &v.host_path {
            // (a link in the pod's volume directory; the mount follows it)
            let _ = std::fs::remove_file(&dir);
            std::os::unix::fs::symlink(&h.path, &dir)?;
            return Ok(());
        }
        if let Some(cm) = &v.config_map {
            let data = self.config_map(ns, &cm.name).await?;
            add(
                &mut files,
                data,
                cm.items.as_deref(),
                cm.optional,
                "configmap",
                &cm.name,
            )?;
        } else if let Some(sec) = &v.secret {
            let name = sec.secret_name.clone().unwrap_or_default();
            let data = self.secret(ns, &name).await?;
            add(
                &mut files,
                data,
                sec.items.as_deref(),
                sec.optional,
                "secret",
                &name,
            )?;
        } else if let Some(d) = &v.downward_api {
            downward(&mut files, pod, d.items.as_deref());
        } else if let Some(p) = &v.projected {
            for source in p.sources.iter().flatten() {
                if let Some(cm) = &source.config_map {
                    let data = self.config_map(ns, &cm.name).await?;
                    add(
                        &mut files,
                        data,
                        cm.items.as_deref(),
                        cm.optional,
                        "configmap",
                        &cm.name,
                    )?;
                }
                if let Some(sec) = &source.secret {
                    let data = self.secret(ns, &sec.name).await?;
                    add(
                        &mut files,
                        data,
                        sec.items.as_deref(),
                        sec.optional,
                        "secret",
                        &sec.name,
                    )?;
                }
                if let Some(d) = &source.downward_api {
                    downward(&mut files, pod, d.items.as_deref());
                }
                if let Some(t) = &source.service_account_token {
                    // A token is renewed when it is ten minutes old (it lives an hour or more).
                    let current = dir.join(&t.path);
                    let fresh = std::fs::metadata(&current)
                        .and_then(|m| m.modified())
                        .is_ok_and(|m| m.elapsed().is_ok_and(|age| age.as_secs() < 600));
                    let token = if fresh {
                        std::fs::read(&current)?
                    } else {
                        self.token(pod, t.audience.clone(), t.expiration_seconds)
                            .await?
                            .into_bytes()
                    };
                    files.insert(t.path.clone(), token);
                }
            }
        } else {
            bail!("this kind of volume is not supported by the simulated kubelet");
        }
        write_files(&dir, &files)
    }

    async fn config_map(
        &self,
        ns: &str,
        name: &str,
    ) -> anyhow::Result<Option<BTreeMap<String, Vec<u8>>>> {
        let cm = Api::<ConfigMap>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await?;
        Ok(cm.map(|cm| {
            let mut d: BTreeMap<String, Vec<u8>> = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            d.extend(
                cm.binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0)),
            );
            d
        }))
    }

    async fn secret(
        &self,
        ns: &str,
        name: &str,
    ) -> anyhow::Result<Option<BTreeMap<String, Vec<u8>>>> {
        let s = Api::<Secret>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await?;
        Ok(s.map(|s| {
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        }))
    }

    /// A token for the pod's service account, bound to the pod (TokenRequest).
    async fn token(
        &self,
        pod: &Pod,
        audience: Option<String>,
        seconds: Option<i64>,
    ) -> anyhow::Result<String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.into_iter().filter(|a| !a.is_empty()).collect(),
                expiration_seconds: seconds,
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..TokenRequest::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), ns);
        let out = api
            .create_token_request(&sa, &PostParams::default(), &request)
            .await?;
        out.status
            .map(|s| s.token)
            .context("the API server returned no token")
    }
}

/// A ConfigMap's or Secret's keys as files; one that does not exist is an error unless optional.
fn add(
    files: &mut BTreeMap<String, Vec<u8>>,
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    what: &str,
    name: &str,
) -> anyhow::Result<()> {
    match data {
        Some(d) => pick(files, &d, items),
        None if optional == Some(true) => {}
        None => bail!("{what} {name:?} not found"),
    }
    Ok(())
}

/// Downward API items: each field of the pod as a file.
fn downward(
    files: &mut BTreeMap<String, Vec<u8>>,
    pod: &Pod,
    items: Option<&[DownwardAPIVolumeFile]>,
) {
    for item in items.into_iter().flatten() {
        if let Some(f) = &item.field_ref {
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .unwrap_or_default();
            let value = crate::env::field(pod, ip, &f.field_path).unwrap_or_default();
            files.insert(item.path.clone(), value.into_bytes());
        }
    }
}

/// `items` pick and rename keys; without them every key is a file.
fn pick(
    files: &mut BTreeMap<String, Vec<u8>>,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
) {
    match items {
        Some(items) => {
            for i in items {
                if let Some(v) = data.get(&i.key) {
                    files.insert(i.path.clone(), v.clone());
                }
            }
        }
        None => files.extend(data.iter().map(|(k, v)| (k.clone(), v.clone()))),
    }
}

/// Makes `dir` hold exactly `files`, each replaced by a rename only when it changed (a watcher
/// such as prometheus-config-reloader sees one change per real change).
fn write_files(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, content) in files {
        let path = dir.join(name);
        if std::fs::read(&path).ok().as_ref() == Some(content) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = dir.join(format!(".{}.tmp", name.replace('/', "_")));
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, &path)?;
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file()
            && !files.contains_key(&name)
            && !files.keys().any(|k| k.starts_with(&format!("{name}/")))
        {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_follow_their_source() {
        let dir = std::env::temp_dir().join(format!("sim-kubelet-vol-{}", std::process::id()));
        let mut files = BTreeMap::new();
        files.insert("a.yaml".to_string(), b"one".to_vec());
        files.insert("b".to_string(), b"two".to_vec());
        write_files(&dir, &files).expect("write");
        files.remove("b");
        files.insert("a.yaml".to_string(), b"uno".to_vec());
        write_files(&dir, &files).expect("rewrite");
        assert_eq!(std::fs::read(dir.join("a.yaml")).expect("a"), b"uno");
        assert!(
            !dir.join("b").exists(),
            "a key gone from the source is gone from the volume"
        );
        let data: BTreeMap<String, Vec<u8>> = [
            ("k".to_string(), b"v".to_vec()),
            ("x".to_string(), b"y".to_vec()),
        ]
        .into();
        let mut picked = BTreeMap::new();
        let items: Vec<KeyToPath> =
            serde_json::from_value(serde_json::json!([{"key": "k", "path": "sub/renamed"}]))
                .expect("items");
        pick(&mut picked, &data, Some(&items));
        assert_eq!(picked.keys().collect::<Vec<_>>(), ["sub/renamed"]);
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}
