//! Regression tests of issue 11, one per class of defect, each named after it: bad input
//! that panicked or passed, valid input that was refused, exit codes a closed pipe lost.
//! Each runs the built binary on a mutated reference `platform.yaml`.

#[path = "common/run.rs"]
mod run;
use run::*;

/// The reference platform.yaml with each `(from, to)` replaced once (each must match).
fn mutated(edits: &[(&str, &str)]) -> String {
    let mut text = base_config();
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "the reference platform.yaml has no `{from}`"
        );
        text = text.replacen(from, to, 1);
    }
    text
}

/// Writes `config` as platform.yaml into a scratch directory and runs `args` there.
fn with_config(config: &str, args: &[&str]) -> (tempfile::TempDir, Run) {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), config).expect("write platform.yaml");
    let run = platformctl(dir.path(), args);
    (dir, run)
}

/// `render` refuses `config` with exit 2, naming `path` at a line and saying `message`, and
/// writes nothing but platform.yaml.
fn refused(config: &str, path: &str, message: &str) {
    let (dir, run) = with_config(config, &["render"]);
    assert_eq!(run.code, 2, "{path}: {}", run.transcript());
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains(&format!(": {path}: ")))
        .unwrap_or_else(|| panic!("no problem at `{path}`: {}", run.transcript()));
    assert!(
        line.starts_with("  platform.yaml:") && line.contains(message),
        "want `platform.yaml:LINE:COL: {path}: …{message}…`, got {line:?}"
    );
    assert_eq!(files(dir.path()), ["platform.yaml"], "nothing half-written");
}

#[test]
fn a_duration_followed_by_non_ascii_text_is_exit_2_not_a_panic() {
    for (from, to, path) in [
        (
            "interval: 30s",
            "interval: 30é",
            "services[0].strategy.canary.analysis.interval",
        ),
        (
            "interval: 30s",
            "interval: \"30s\u{feff}\"",
            "services[0].strategy.canary.analysis.interval",
        ),
        ("window: 30d", "window: \"30d\u{feff}\"", "slos[0].window"),
        ("window: 30d", "window: 3é0d", "slos[0].window"),
        (
            "mode: one",
            "mode: one\n    duration: 1ms",
            "chaos[0].duration",
        ),
    ] {
        let message = if path == "slos[0].window" {
            "must be days or weeks"
        } else {
            "must be a duration"
        };
        refused(&mutated(&[(from, to)]), path, message);
    }
}

#[test]
fn values_out_of_range_are_refused_when_the_file_is_loaded() {
    for (from, to, path, message) in [
        (
            "replicas: 3",
            "replicas: 4000000000",
            "environments[1].replicas",
            "32-bit integer",
        ),
        (
            "maxReplicas: 10",
            "maxReplicas: 3000000000",
            "environments[1].hpa.maxReplicas",
            "32-bit integer",
        ),
        (
            "    port: 8080\n",
            "    port: 8080\n    metrics:\n      buckets: [0.1, .nan, 0.3]\n",
            "services[0].metrics.buckets[1]",
            "finite number",
        ),
        (
            "    port: 8080\n",
            "    port: 8080\n    metrics:\n      buckets: [0.1, 0.3, .inf]\n",
            "services[0].metrics.buckets[2]",
            "finite number",
        ),
        (
            "failureLimit: 1",
            "failureLimit: 4",
            "services[0].strategy.canary.analysis.failureLimit",
            "could never fail",
        ),
        (
            "interval: 30s",
            "interval: 00s",
            "services[0].strategy.canary.analysis.interval",
            "must be a duration",
        ),
        (
            "interval: 30s",
            "interval: 99999999999999999999s",
            "services[0].strategy.canary.analysis.interval",
            "at most 292 years",
        ),
    ] {
        refused(&mutated(&[(from, to)]), path, message);
    }
}

#[test]
fn cross_object_collisions_are_refused_with_the_key_path() {
    // A second service whose stable Service is the first one's canary Service in prod.
    let second = "\n  - name: customer-api-canary\n    image: platformctl/customer-api\n    tags: {dev: 0.1.0, prod: 0.1.0}\n    port: 8080\n    resources:\n      requests: { cpu: 100m, memory: 64Mi }\n      limits: { cpu: 500m, memory: 128Mi }\n    strategy:\n      canary:\n        steps: [50, 100]\n\nslos:";
    refused(
        &mutated(&[("\n\nslos:", second)]),
        "services[1].name",
        "renders Service `prod/customer-api-canary` (its Service), which service `customer-api` renders too (its canary Service)",
    );
    refused(
        &mutated(&[
            ("- name: dev", "- name: default"),
            ("dev: 0.1.0", "default: 0.1.0"),
        ]),
        "environments[0].name",
        "Argo CD's built-in `default` project",
    );
    for (namespace, owner) in [
        ("argocd", "the argocd addon"),
        ("monitoring", "the kubePrometheusStack addon"),
        ("kube-system", "the metricsServer addon"),
        ("chaos", "the chaosMesh addon"),
        ("platformctl", "the in-cluster git server"),
        ("kube-public", "Kubernetes itself"),
    ] {
        refused(
            &mutated(&[("namespace: practice", &format!("namespace: {namespace}"))]),
            "environments[0].namespace",
            &format!("namespace `{namespace}` belongs to {owner}"),
        );
    }
    // An addon moved to a namespace of its own frees its default one.
    let (_dir, run) = with_config(
        &mutated(&[
            (
                "chaosMesh:\n    version: 2.8.2",
                "chaosMesh:\n    version: 2.8.2\n    namespace: chaos-mesh",
            ),
            ("namespace: practice", "namespace: chaos"),
        ]),
        &["render"],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
}

/// Every scalar in `doc` that sits where Kubernetes wants a string (names, namespaces, label
/// values, ConfigMap data) is one.
fn strings_stay_strings(file: &str, doc: &serde_yaml::Value) {
    let meta = &doc["metadata"];
    for key in ["name", "namespace"] {
        assert!(
            meta[key].is_string() || meta[key].is_null() && key == "namespace",
            "{file}: metadata.{key} is {:?}",
            meta[key]
        );
    }
    if let Some(labels) = meta["labels"].as_mapping() {
        for (k, v) in labels {
            assert!(k.is_string() && v.is_string(), "{file}: label {k:?}: {v:?}");
        }
    }
    if let Some(data) = doc["data"].as_mapping() {
        for (k, v) in data {
            assert!(k.is_string() && v.is_string(), "{file}: data {k:?}: {v:?}");
        }
    }
}

#[test]
fn valid_names_that_yaml_reads_as_other_types_render_into_a_tree_lint_accepts() {
    let config = mutated(&[
        ("name: customer-platform", "name: \"null\""),
        ("namespace: practice", "namespace: \"123\""),
        ("- name: dev", "- name: \"on\""),
        ("dev: 0.1.0", "\"on\": 0.1.0"),
        ("namespace: prod", "namespace: \"y\""),
        ("- name: pod-kill", "- name: \"404\""),
        (
            "LOG_LEVEL: info",
            "\"true\": \"false\"\n      \"1e3\": \"0x1F\"",
        ),
    ]);
    let (dir, run) = with_config(&config, &["render"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let lint = platformctl(dir.path(), &["lint"]);
    assert_eq!(lint.code, 0, "{}", lint.transcript());
    let mut checked = 0;
    for file in files(dir.path()) {
        if !file.ends_with(".yaml") || file == "platform.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(dir.path().join(&file)).expect("read");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let doc = <serde_yaml::Value as serde::Deserialize>::deserialize(doc).expect("YAML");
            strings_stay_strings(&file, &doc);
            checked += 1;
        }
    }
    assert!(checked > 15, "only {checked} documents");
    let config = std::fs::read_to_string(dir.path().join("envs/on/customer-api/configmap.yaml"))
        .expect("dev's ConfigMap");
    let data: serde_yaml::Value = serde_yaml::from_str(&config).expect("YAML");
    assert_eq!(data["data"]["true"], "false");
    assert_eq!(data["data"]["1e3"], "0x1F");
    assert_eq!(data["metadata"]["namespace"], "123");
}

#[test]
fn images_pinned_by_digest_and_kubernetes_quantities_are_valid() {
    let sha = "0123456789abcdef".repeat(4);
    let config = mutated(&[
        ("dev: 0.1.0", &format!("dev: \"0.1.0@sha256:{sha}\"")),
        ("prod: 0.1.0", &format!("prod: \"sha256:{sha}\"")),
        (
            "memory: 64Mi }\n      limits: { cpu: 500m, memory: 128Mi }",
            "memory: 1e8 }\n      limits: { cpu: 500m, memory: 1Pi }",
        ),
    ]);
    let (dir, run) = with_config(&config, &["render"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let lint = platformctl(dir.path(), &["lint"]);
    assert_eq!(lint.code, 0, "{}", lint.transcript());
    let rollout = |env: &str| -> serde_yaml::Value {
        let text = std::fs::read_to_string(
            dir.path()
                .join(format!("envs/{env}/customer-api/rollout.yaml")),
        )
        .expect("rollout");
        serde_yaml::from_str(&text).expect("YAML")
    };
    let dev = rollout("dev");
    let container = &dev["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        format!("platformctl/customer-api:0.1.0@sha256:{sha}").as_str()
    );
    assert_eq!(container["resources"]["requests"]["memory"], "1e8");
    assert_eq!(
        dev["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"],
        "0.1.0"
    );
    let prod = rollout("prod");
    assert_eq!(
        prod["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("platformctl/customer-api@sha256:{sha}").as_str()
    );
    // A malformed digest is still refused.
    refused(
        &mutated(&[("prod: 0.1.0", "prod: \"sha256:abc\"")]),
        "services[0].tags.prod",
        "is not an image digest",
    );
}
