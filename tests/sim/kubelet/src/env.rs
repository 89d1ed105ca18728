//! A container's environment as the kubelet resolves it (pkg/kubelet/kubelet_pods.go,
//! `makeEnvironmentVariables`): `envFrom` sources in order (a key that is not a valid variable
//! name is skipped), then `env` in order, each value with `$(VAR)` expanded against what is
//! defined so far; `fieldRef`, `resourceFieldRef`, `configMapKeyRef` and `secretKeyRef`. The
//! ConfigMaps and Secrets are fetched by the caller; this module only computes.
//!
//! Deliberately not done: the Docker-links service variables (`<SVC>_SERVICE_HOST`, ...), which
//! would carry ClusterIPs that nothing routes here; `KUBERNETES_SERVICE_HOST`/`_PORT` are set
//! by the caller to where the API server listens.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The ConfigMaps and Secrets of a pod's namespace that its containers name; one missing from
/// the map does not exist.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// What the kubelet reports as `CreateContainerConfigError`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

/// The names of the ConfigMaps and Secrets a container's environment reads.
pub fn references(container: &Container) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut cms, mut secrets) = (BTreeSet::new(), BTreeSet::new());
    for from in container.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            cms.insert(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            secrets.insert(r.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(r) = &from.config_map_key_ref {
            cms.insert(r.name.clone());
        }
        if let Some(r) = &from.secret_key_ref {
            secrets.insert(r.name.clone());
        }
    }
    (cms, secrets)
}

/// The environment of `container` in `pod`, over `base` (the image's own variables).
pub fn resolve(
    pod: &Pod,
    pod_ip: &str,
    container: &Container,
    base: &[(String, String)],
    sources: &Sources,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, k: String, v: String| {
        if let Some(slot) = vars.iter_mut().find(|(name, _)| *name == k) {
            slot.1 = v;
        } else {
            vars.push((k, v));
        }
    };
    for (k, v) in base {
        set(&mut vars, k.clone(), v.clone());
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, name, optional, what) = if let Some(r) = &from.config_map_ref {
            (
                sources.config_maps.get(&r.name),
                &r.name,
                r.optional,
                "configmap",
            )
        } else if let Some(r) = &from.secret_ref {
            (sources.secrets.get(&r.name), &r.name, r.optional, "secret")
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (k, v) in data {
                    let key = format!("{prefix}{k}");
                    if valid_name(&key) {
                        set(&mut vars, key, v.clone());
                    }
                }
            }
            None if optional == Some(true) => {}
            None => return Err(ConfigError(format!("{what} \"{name}\" not found"))),
        }
    }
    for var in container.env.iter().flatten() {
        let value = value_of(pod, pod_ip, container, var, &vars, sources)?;
        if let Some(value) = value {
            set(&mut vars, var.name.clone(), value);
        }
    }
    Ok(vars)
}

fn value_of(
    pod: &Pod,
    pod_ip: &str,
    container: &Container,
    var: &EnvVar,
    vars: &[(String, String)],
    sources: &Sources,
) -> Result<Option<String>, ConfigError> {
    let Some(from) = &var.value_from else {
        return Ok(Some(expand(var.value.as_deref().unwrap_or(""), vars)));
    };
    if let Some(f) = &from.field_ref {
        return field(pod, pod_ip, &f.field_path)
            .map(Some)
            .ok_or_else(|| ConfigError(format!("unsupported fieldPath {:?}", f.field_path)));
    }
    if let Some(r) = &from.resource_field_ref {
        let target = match &r.container_name {
            Some(name) if !name.is_empty() => pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.iter().find(|c| &c.name == name))
                .ok_or_else(|| {
                    ConfigError(format!("no container {name:?} for resourceFieldRef"))
                })?,
            _ => container,
        };
        return resource(target, &r.resource, r.divisor.as_ref()).map(Some);
    }
    let (data, name, key, optional, what) = if let Some(r) = &from.config_map_key_ref {
        (
            sources.config_maps.get(&r.name),
            &r.name,
            &r.key,
            r.optional,
            "configmap",
        )
    } else if let Some(r) = &from.secret_key_ref {
        (
            sources.secrets.get(&r.name),
            &r.name,
            &r.key,
            r.optional,
            "secret",
        )
    } else {
        return Ok(None);
    };
    match data.map(|d| d.get(key)) {
        Some(Some(v)) => Ok(Some(v.clone())),
        _ if optional == Some(true) => Ok(None),
        Some(None) => Err(ConfigError(format!(
            "couldn't find key {key} in {what} {}/{name}",
            namespace(pod)
        ))),
        None => Err(ConfigError(format!("{what} \"{name}\" not found"))),
    }
}

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

/// The downward API's fields (pkg/api/v1/pod/util.go `ConvertDownwardAPIFieldLabel` and the
/// kubelet's `podFieldSelectorRuntimeValue`).
pub fn field(pod: &Pod, pod_ip: &str, path: &str) -> Option<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let label = |map: &Option<BTreeMap<String, String>>, key: &str| {
        Some(
            map.as_ref()
                .and_then(|m| m.get(key))
                .cloned()
                .unwrap_or_default(),
        )
    };
    if let Some(key) = bracketed(path, "metadata.labels") {
        return label(&meta.labels, key);
    }
    if let Some(key) = bracketed(path, "metadata.annotations") {
        return label(&meta.annotations, key);
    }
    match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => Some(namespace(pod).to_string()),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.podIPs" => Some(pod_ip.to_string()),
        "status.hostIP" | "status.hostIPs" => Some("127.0.0.1".to_string()),
        _ => None,
    }
}

fn bracketed<'a>(path: &'a str, field: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(field)?.strip_prefix("['")?;
    rest.strip_suffix("']")
}

/// `resourceFieldRef`: requests and limits, in units of the divisor, rounded up as the kubelet
/// does (`ExtractContainerResourceValue`). A limit that is not set reads as the node's
/// capacity in the kubelet; this runner has no capacity to give, so it reports the request.
fn resource(
    container: &Container,
    resource: &str,
    divisor: Option<&Quantity>,
) -> Result<String, ConfigError> {
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| ConfigError(format!("unsupported resource {resource:?}")))?;
    let r = container.resources.as_ref();
    let pick = |m: Option<&BTreeMap<String, Quantity>>| m.and_then(|m| m.get(name)).cloned();
    let q = match kind {
        "limits" => pick(r.and_then(|r| r.limits.as_ref()))
            .or_else(|| pick(r.and_then(|r| r.requests.as_ref()))),
        "requests" => pick(r.and_then(|r| r.requests.as_ref())),
        _ => None,
    };
    let value = q.as_ref().map_or(Some(0.0), |q| quantity(&q.0));
    let div = divisor.map_or(Some(1.0), |d| quantity(&d.0));
    match (value, div) {
        (Some(v), Some(d)) if d > 0.0 => Ok(format!("{}", (v / d).ceil() as i64)),
        _ => Err(ConfigError(format!(
            "cannot read {resource} of {}",
            container.name
        ))),
    }
}

/// A Kubernetes quantity as a number (`500m`, `64Mi`, `1e3`, `2`).
pub fn quantity(q: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (s, f) in SUFFIXES {
        if let Some(n) = q.strip_suffix(s) {
            return n.parse::<f64>().ok().map(|n| n * f);
        }
    }
    q.parse().ok()
}

fn valid_name(key: &str) -> bool {
    // C_IDENTIFIER-or-relaxed: what the API server accepts for env names (no '=')
    !key.is_empty() && !key.contains('=') && !key.starts_with(|c: char| c.is_ascii_digit())
}

/// `$(VAR)` → VAR's value when defined (else left as written); `$$` → `$`
/// (third_party/forked/golang/expansion).
pub fn expand(input: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "api-1", "namespace": "prod", "uid": "u-1",
                         "labels": {"app": "api"}},
            "spec": {"nodeName": "minikube-m02", "serviceAccountName": "sa", "containers": containers}
        }))
        .expect("pod")
    }

    fn sources() -> Sources {
        let mut s = Sources::default();
        s.config_maps.insert(
            "cfg".into(),
            [("PORT", "8080"), ("1BAD", "x"), ("LEVEL", "info")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        );
        s.secrets.insert(
            "sec".into(),
            [("TOKEN", "t0p")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        );
        s
    }

    fn env(containers: serde_json::Value) -> Result<Vec<(String, String)>, ConfigError> {
        let p = pod(containers);
        let c = p.spec.as_ref().expect("spec").containers[0].clone();
        resolve(
            &p,
            "127.100.0.2",
            &c,
            &[("IMG".into(), "1".into())],
            &sources(),
        )
    }

    #[test]
    fn env_from_then_env_with_expansion_and_downward_api() {
        let vars = env(json!([{
            "name": "c",
            "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "sec"}, "prefix": "S_"}],
            "env": [
                {"name": "LEVEL", "value": "debug"},
                {"name": "URL", "value": "http://$(POD_IP):$(PORT)/$(NOPE)$$(PORT)"},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "TOKEN"}}},
                {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "none", "key": "k", "optional": true}}},
            ],
            "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}}
        }]))
        .expect("resolves");
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("IMG"), Some("1"));
        assert_eq!(get("PORT"), Some("8080"));
        assert_eq!(get("1BAD"), None, "invalid names are skipped");
        assert_eq!(get("LEVEL"), Some("debug"), "env overrides envFrom");
        assert_eq!(get("S_TOKEN"), Some("t0p"));
        // POD_IP is defined after URL: not expanded, as the kubelet leaves it
        assert_eq!(get("URL"), Some("http://$(POD_IP):8080/$(NOPE)$(PORT)"));
        assert_eq!(get("POD_IP"), Some("127.100.0.2"));
        assert_eq!(get("NAME"), Some("api-1"));
        assert_eq!(get("APP"), Some("api"));
        assert_eq!(get("KEY"), Some("t0p"));
        assert_eq!(get("OPT"), None);
    }

    #[test]
    fn missing_sources_are_config_errors() {
        let e = env(json!([{"name": "c", "envFrom": [{"configMapRef": {"name": "gone"}}]}]))
            .expect_err("missing configmap");
        assert_eq!(e.0, "configmap \"gone\" not found");
        let e = env(json!([{"name": "c", "env": [
            {"name": "K", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "NOPE"}}}]}]))
        .expect_err("missing key");
        assert_eq!(e.0, "couldn't find key NOPE in secret prod/sec");
        assert!(env(json!([{"name": "c", "envFrom": [{"secretRef": {"name": "gone", "optional": true}}]}])).is_ok());
    }

    #[test]
    fn resource_fields_round_up_in_divisor_units() {
        let vars = env(json!([{"name": "c",
            "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
            "env": [
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            ]}]))
        .expect("resolves");
        assert!(vars.contains(&("CPU".into(), "1".into())));
        assert!(vars.contains(&("MEM".into(), "128".into())));
    }
}
