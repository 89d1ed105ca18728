//! Platform policy over the parsed objects of a tree: what a production platform must hold
//! beyond schema validity. Each rule has a stable id shown in findings.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Finding, Object};

/// Rule ids, as printed in findings and documented in docs/lint.md.
pub const RULES: [(&str, &str); 8] = [
    (
        "prod-replicas",
        "workloads in production environments run at least 2 replicas",
    ),
    (
        "resources",
        "every container sets cpu and memory requests and limits",
    ),
    (
        "probes",
        "every long-running container has readiness and liveness probes",
    ),
    (
        "image-tag",
        "every image is pinned: a tag other than `latest`, or a digest",
    ),
    (
        "app-destination",
        "an Application deploys only to a namespace its AppProject allows",
    ),
    (
        "secret-data",
        "no Secret with data in the tree: secrets are created by `up`, never committed",
    ),
    (
        "env-namespace",
        "objects under envs/<env>/ live in that environment's namespace",
    ),
    (
        "config-secret",
        "(warning) no ConfigMap key that names a secret (`*_PASSWORD`, `*_TOKEN`, `*SECRET*`): secrets belong in `services[].secrets`",
    ),
];

/// Rules whose findings are warnings: shown, and lint still passes.
const WARNINGS: [&str; 1] = ["config-secret"];

pub fn severity(rule: &str) -> super::Severity {
    if WARNINGS.contains(&rule) {
        super::Severity::Warning
    } else {
        super::Severity::Error
    }
}

/// What policy needs to know from platform.yaml.
pub struct Context {
    /// Environment name to namespace.
    pub env_namespaces: BTreeMap<String, String>,
    /// Namespaces of environments marked `production: true`.
    pub production: Vec<String>,
}

pub fn check(objects: &[Object], ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    let hpa_min: BTreeMap<(String, String), i64> = objects
        .iter()
        .filter(|o| o.kind == "HorizontalPodAutoscaler")
        .filter_map(|o| {
            let target = o.doc.pointer("/spec/scaleTargetRef/name")?.as_str()?;
            let min = o
                .doc
                .pointer("/spec/minReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            Some(((o.namespace.clone(), target.to_string()), min))
        })
        .collect();
    for o in objects {
        env_namespace(o, ctx, &mut out);
        match o.kind.as_str() {
            "Rollout" | "Deployment" | "StatefulSet" => {
                replicas(o, ctx, &hpa_min, &mut out);
                containers(o, "/spec/template/spec", true, &mut out);
            }
            "DaemonSet" => containers(o, "/spec/template/spec", true, &mut out),
            "Job" => containers(o, "/spec/template/spec", false, &mut out),
            "CronJob" => containers(o, "/spec/jobTemplate/spec/template/spec", false, &mut out),
            "Secret" => secret(o, &mut out),
            "ConfigMap" => config_secrets(o, &mut out),
            "Application" => destination(o, objects, &mut out),
            _ => {}
        }
    }
    out
}

/// A ConfigMap key that names a secret: its value is in git in plain text.
fn config_secrets(o: &Object, out: &mut Vec<Finding>) {
    let Some(data) = o.doc.get("data").and_then(Value::as_object) else {
        return;
    };
    for key in data.keys() {
        let upper = key.to_ascii_uppercase();
        let words: Vec<&str> = upper.split(['_', '-', '.']).collect();
        let last = words.last().copied().unwrap_or("");
        let secret = ["PASSWORD", "PASSWD", "TOKEN"].contains(&last)
            || words.iter().any(|w| w.starts_with("SECRET"));
        if secret {
            out.push(o.finding(
                "config-secret",
                format!(
                    "key `{key}` looks like a secret, and a ConfigMap is committed in plain text: create a Secret and name it under the service's `secrets` in platform.yaml"
                ),
            ));
        }
    }
}

fn env_namespace(o: &Object, ctx: &Context, out: &mut Vec<Finding>) {
    let mut parts = o.file.split('/');
    if parts.next() != Some("envs") {
        return;
    }
    let Some(env) = parts.next() else { return };
    match ctx.env_namespaces.get(env) {
        Some(ns) if *ns != o.namespace => out.push(o.finding(
            "env-namespace",
            format!(
                "is in namespace `{}` but environment `{env}` deploys to `{ns}`",
                o.namespace
            ),
        )),
        None => out.push(o.finding(
            "env-namespace",
            format!("`{env}` is not an environment of platform.yaml"),
        )),
        Some(_) => {}
    }
}

fn replicas(
    o: &Object,
    ctx: &Context,
    hpa_min: &BTreeMap<(String, String), i64>,
    out: &mut Vec<Finding>,
) {
    if !ctx.production.contains(&o.namespace) {
        return;
    }
    let replicas = o
        .doc
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if replicas < 2 {
        out.push(o.finding(
            "prod-replicas",
            format!("runs {replicas} replica in production; run at least 2"),
        ));
    }
    if let Some(min) = hpa_min.get(&(o.namespace.clone(), o.name.clone()))
        && *min < 2
    {
        out.push(o.finding(
            "prod-replicas",
            format!("its HorizontalPodAutoscaler may scale it down to {min} replica in production; set minReplicas to at least 2"),
        ));
    }
}

fn containers(o: &Object, pod_spec: &str, long_running: bool, out: &mut Vec<Finding>) {
    let Some(spec) = o.doc.pointer(pod_spec) else {
        return;
    };
    let lists = [("containers", true), ("initContainers", false)];
    for (list, main) in lists {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
            for kind in ["requests", "limits"] {
                for res in ["cpu", "memory"] {
                    if c.pointer(&format!("/resources/{kind}/{res}")).is_none() {
                        out.push(o.finding(
                            "resources",
                            format!("container `{name}` sets no {res} {kind}"),
                        ));
                    }
                }
            }
            if main && long_running {
                for probe in ["readinessProbe", "livenessProbe"] {
                    if c.get(probe).is_none() {
                        out.push(o.finding("probes", format!("container `{name}` has no {probe}")));
                    }
                }
            }
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            if let Some(problem) = image_problem(image) {
                out.push(o.finding(
                    "image-tag",
                    format!("container `{name}` image `{image}` {problem}"),
                ));
            }
        }
    }
}

fn image_problem(image: &str) -> Option<&'static str> {
    if image.contains("@sha256:") {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Some("has no tag; pin a version"),
        Some((_, "latest")) => Some("uses `latest`; pin a version"),
        Some(_) => None,
    }
}

fn secret(o: &Object, out: &mut Vec<Finding>) {
    let non_empty = |key: &str| {
        o.doc
            .get(key)
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
    };
    if non_empty("data") || non_empty("stringData") {
        out.push(o.finding(
            "secret-data",
            "carries secret values; reference the Secret by name and let `up` create it",
        ));
    }
}

fn destination(o: &Object, objects: &[Object], out: &mut Vec<Finding>) {
    let project = o
        .doc
        .pointer("/spec/project")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let dest_ns = o
        .doc
        .pointer("/spec/destination/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let dest_server = o
        .doc
        .pointer("/spec/destination/server")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(proj) = objects
        .iter()
        .find(|p| p.kind == "AppProject" && p.name == project)
    else {
        out.push(o.finding(
            "app-destination",
            format!("project `{project}` is not in the tree"),
        ));
        return;
    };
    let allowed = proj
        .doc
        .pointer("/spec/destinations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|d| {
            let ns = d.get("namespace").and_then(Value::as_str).unwrap_or("");
            let server = d.get("server").and_then(Value::as_str).unwrap_or("*");
            glob(ns, dest_ns) && glob(server, dest_server)
        });
    if !allowed {
        out.push(o.finding(
            "app-destination",
            format!("deploys to namespace `{dest_ns}`, which project `{project}` does not allow"),
        ));
    }
}

/// Argo CD destination patterns: `*` matches any run of characters.
fn glob(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, tail)) => {
            // Every suffix after `head`, cut at character boundaries (values are any text).
            value.strip_prefix(head).is_some_and(|rest| {
                rest.char_indices()
                    .map(|(i, _)| i)
                    .chain([rest.len()])
                    .any(|i| glob(tail, &rest[i..]))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "prod") && glob("prod-*", "prod-eu") && glob("prod", "prod"));
        assert!(!glob("prod", "practice") && !glob("prod-*", "prod"));
        // Non-ASCII text in an edited tree is matched by character, not cut inside one.
        assert!(glob("*é*", "présent") && glob("p*t", "prés€nt") && !glob("é*x", "éclair"));
    }

    #[test]
    fn images() {
        assert_eq!(image_problem("a/b:1.0"), None);
        assert_eq!(
            image_problem("registry:5000/b"),
            Some("has no tag; pin a version")
        );
        assert_eq!(
            image_problem("b:latest"),
            Some("uses `latest`; pin a version")
        );
        assert_eq!(image_problem("b@sha256:abc"), None);
    }
}
