//! Regression tests of issue 11, one per class of defect, each named after it: bad input
//! that panicked or passed, valid input that was refused, exit codes a closed pipe lost.
//! Each runs the built binary on a mutated reference `platform.yaml`.

use std::path::Path;

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

/// Renders `config` in a scratch directory and lints the tree: both must pass.
fn rendered_and_linted(config: &str) -> tempfile::TempDir {
    let (dir, run) = with_config(config, &["render"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let lint = platformctl(dir.path(), &["lint"]);
    assert_eq!(lint.code, 0, "{}", lint.transcript());
    dir
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
    let dir = rendered_and_linted(&config);
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
    let dir = rendered_and_linted(&config);
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

/// Exit code of `args` in `dir` with stdout a pipe nobody reads (closed before the command
/// starts, as `| head -1` closes it after one line) and stderr one too.
fn code_with_closed_pipes(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> i32 {
    let (out_reader, out_writer) = std::io::pipe().expect("pipe");
    let (err_reader, err_writer) = std::io::pipe().expect("pipe");
    drop((out_reader, err_reader));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_platformctl"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("PLATFORMCTL_FILE")
        .env("NO_COLOR", "1")
        .stdout(out_writer)
        .stderr(err_writer);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().expect("the binary runs");
    status.code().unwrap_or(-1)
}

#[test]
fn a_closed_stdout_keeps_the_commands_exit_code() {
    let (dir, run) = with_config(&base_config(), &["render"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    // Drift: a rendered file edited by hand.
    let rollout = dir.path().join("envs/prod/customer-api/rollout.yaml");
    let text = std::fs::read_to_string(&rollout).expect("read");
    std::fs::write(&rollout, text.replace("replicas: 3", "replicas: 1")).expect("write");
    for args in [
        &["render", "--check"][..],
        &["render", "--check", "-o", "json"],
    ] {
        assert_eq!(code_with_closed_pipes(dir.path(), args, &[]), 1, "{args:?}");
    }
    // No tools on PATH: doctor says no (1); no cluster: status cannot reach it (3).
    let empty = scratch();
    let path = empty.path().to_str().expect("utf-8 path");
    assert_eq!(
        code_with_closed_pipes(dir.path(), &["doctor", "--offline"], &[("PATH", path)]),
        1
    );
    let kubeconfig = empty.path().join("no-kubeconfig");
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");
    for args in [&["status"][..], &["status", "-o", "json"]] {
        assert_eq!(
            code_with_closed_pipes(dir.path(), args, &[("KUBECONFIG", kubeconfig)]),
            3,
            "{args:?}"
        );
    }
    // A usage error keeps its 2.
    assert_eq!(
        code_with_closed_pipes(dir.path(), &["render", "--bogus"], &[]),
        2
    );
}

/// Every Application of the tree in `project` reads a path of its repository (rooted at
/// `repo`) that holds rendered files.
fn applications_read_the_tree(repo: &Path, project: &Path) {
    let mut apps = 0;
    for entry in std::fs::read_dir(project.join("argocd")).expect("argocd/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        if doc["kind"] != "Application" {
            continue;
        }
        apps += 1;
        let source = doc["spec"]["source"]["path"].as_str().expect("source path");
        let dir = repo.join(source);
        let files = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: `{source}` is not in the repository: {e}",
                    path.display()
                )
            })
            .count();
        assert!(files > 0, "{source} is empty");
    }
    assert_eq!(apps, 2);
}

#[test]
fn init_of_any_example_deploys_the_tree_it_rendered_wherever_it_lands() {
    let unreachable = [("KUBECONFIG", Path::new("/nonexistent/kubeconfig"))];
    let up = ["up", "--driver", "existing", "--skip", "addons"];
    let passes_preflight = |dir: &Path| {
        let run = platformctl_env(dir, &up, &unreachable);
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(run.stderr.contains("no kubeconfig at"), "{}", run.stderr);
    };
    // A new directory: init makes it a repository; the tree is at its root.
    let fresh = scratch();
    for example in ["microservices", "customer-platform"] {
        let dir = fresh.path().join(example);
        std::fs::create_dir(&dir).expect("mkdir");
        let init = platformctl(&dir, &["init", "--example", example]);
        assert_eq!(init.code, 0, "{}", init.transcript());
        applications_read_the_tree(&dir, &dir);
        passes_preflight(&dir);
    }
    // A directory deep in a repository the user has: the tree's place in it.
    let repo = scratch();
    git_in(repo.path(), &["init", "-q", "-b", "main"]);
    let dir = repo.path().join("ops/shop");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let init = platformctl(&dir, &["init", "--example", "microservices", "--commit"]);
    assert_eq!(init.code, 0, "{}", init.transcript());
    let config = std::fs::read_to_string(dir.join("platform.yaml")).expect("read");
    assert!(config.contains("\n  path: ops/shop\n"), "{config}");
    applications_read_the_tree(repo.path(), &dir);
    passes_preflight(&dir);
    // A path the tree is not at is refused before anything is touched.
    let dir = fresh.path().join("microservices");
    let config = std::fs::read_to_string(dir.join("platform.yaml")).expect("read");
    std::fs::write(
        dir.join("platform.yaml"),
        config.replace(
            "  local: {}\n",
            "  local: {}\n  path: examples/microservices\n",
        ),
    )
    .expect("write");
    assert_eq!(platformctl(&dir, &["render"]).code, 0);
    git_in(&dir, &["add", "-A"]);
    git_in(
        &dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            "moved",
        ],
    );
    let run = platformctl_env(&dir, &up, &unreachable);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "the Applications read `examples/microservices/envs/…` of the repository, but the rendered tree is at `envs/…` in it"
        ) && run.stderr.contains("remove `gitops.path`"),
        "{}",
        run.stderr
    );
}

#[test]
fn every_commands_help_keeps_the_long_description_its_doc_comment_holds() {
    let dir = scratch();
    let top = platformctl(dir.path(), &["--help"]);
    let commands: Vec<String> = top
        .stdout
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 7, "{commands:?}");
    for c in &commands {
        let short = platformctl(dir.path(), &[c, "-h"]).stdout;
        let long = platformctl(dir.path(), &[c, "--help"]).stdout;
        let about = long.split("\n\nUsage:").next().unwrap_or_default();
        assert!(
            about.contains("\n\n") && long.len() > short.len(),
            "`{c} --help` has no description beyond its one line:\n{long}"
        );
    }
}

#[test]
fn a_file_that_is_not_utf8_is_a_located_configuration_error() {
    let dir = scratch();
    let mut bytes = base_config().into_bytes();
    let at = bytes
        .windows(9)
        .position(|w| w == b"nodes: 3\n")
        .expect("nodes line");
    bytes[at + 7] = 0xff;
    std::fs::write(dir.path().join("platform.yaml"), &bytes).expect("write");
    let run = platformctl(dir.path(), &["render"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("platform.yaml:11:10: is not UTF-8 text (byte 0xff)"),
        "{}",
        run.stderr
    );
}

#[test]
fn deeply_nested_flow_collections_are_refused_at_their_depth() {
    let config = mutated(&[(
        "name: customer-platform",
        &format!("name: {}", "[".repeat(32_000)),
    )]);
    let (dir, run) = with_config(&config, &["render"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("platform.yaml:6:73: nests mappings and sequences deeper than 64 levels"),
        "{}",
        run.stderr
    );
    assert_eq!(files(dir.path()), ["platform.yaml"]);
}

#[test]
fn json_mode_gives_a_versioned_error_report_for_usage_errors() {
    let dir = scratch();
    for args in [
        &["render", "-o", "json", "--bogus"][..],
        &["--output=json", "frobnicate"],
        &["-ojson", "up", "--timeout"],
    ] {
        let run = platformctl(dir.path(), args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.transcript());
        let report: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", run.stdout));
        assert_eq!(report["apiVersion"], "platformctl.dev/v1alpha1");
        assert_eq!(report["kind"], "Error");
        assert_eq!(report["exitCode"], 2);
        assert!(report["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    }
    // Without -o json, stdout stays empty; --help still exits 0.
    let run = platformctl(dir.path(), &["render", "--bogus"]);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""));
    assert_eq!(platformctl(dir.path(), &["render", "--help"]).code, 0);
}

#[test]
fn lint_with_no_rendered_tree_has_nothing_to_lint_and_exits_1() {
    let (_dir, run) = with_config(&base_config(), &["lint"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stdout
            .starts_with("nothing to lint: no rendered tree in"),
        "{}",
        run.stdout
    );
    let (_dir, run) = with_config(&base_config(), &["lint", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!((run.code, report["status"].as_str()), (1, Some("Empty")));
}

#[test]
fn a_secret_looking_config_key_is_a_lint_warning_pointing_at_secrets() {
    let config = mutated(&[(
        "LOG_LEVEL: info",
        "LOG_LEVEL: info\n      DB_PASSWORD: hunter2\n      stripe-api-secret-key: x\n      GITHUB_TOKEN: y",
    )]);
    let (dir, run) = with_config(&config, &["render"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let lint = platformctl(dir.path(), &["lint"]);
    // Warnings are shown and fail nothing: 3 keys in each of the two environments.
    assert_eq!(lint.code, 0, "{}", lint.transcript());
    let warned: Vec<&str> = lint
        .stdout
        .lines()
        .filter(|l| l.contains("[config-secret] warning:"))
        .collect();
    assert_eq!(warned.len(), 6, "{}", lint.stdout);
    assert!(
        warned[0].contains("ConfigMap/practice/customer-api-config")
            && warned.iter().any(|w| w.contains("key `DB_PASSWORD`"))
            && warned[0].contains("name it under the service's `secrets` in platform.yaml"),
        "{warned:?}"
    );
    assert!(
        lint.stdout.ends_with("no problems, 6 warnings\n"),
        "{}",
        lint.stdout
    );
    let json = platformctl(dir.path(), &["lint", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(report["status"], "Passed");
    assert_eq!(report["findings"][0]["severity"], "warning");
}

#[test]
fn one_problem_is_one_problem_not_1_problems() {
    let (dir, run) = with_config(&base_config(), &["render"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let rollout = dir.path().join("envs/prod/customer-api/rollout.yaml");
    let text = std::fs::read_to_string(&rollout).expect("read");
    std::fs::write(&rollout, text.replace("replicas: 3", "replicas: 1")).expect("write");
    let lint = platformctl(dir.path(), &["lint"]);
    assert_eq!(lint.code, 1);
    assert!(lint.stdout.ends_with(": 1 problem\n"), "{}", lint.stdout);
    let (_dir, run) = with_config(&mutated(&[("replicas: 3", "replicas: 0")]), &["render"]);
    assert!(
        run.stderr.contains("is invalid (1 problem)"),
        "{}",
        run.stderr
    );
}

#[test]
fn status_without_a_cluster_says_what_to_run_and_names_the_kubeconfig_once() {
    let (dir, _) = with_config(&base_config(), &["render"]);
    let kubeconfig = dir.path().join("missing-kubeconfig");
    let run = platformctl_env(dir.path(), &["status"], &[("KUBECONFIG", &kubeconfig)]);
    assert_eq!(run.code, 3, "{}", run.transcript());
    let shown = kubeconfig.display().to_string();
    assert_eq!(run.stderr.matches(&shown).count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("error: no kubeconfig at `{shown}`"))
            && run.stderr.contains(
                "hint: no cluster yet? `platformctl up` creates one; `platformctl doctor`"
            ),
        "{}",
        run.stderr
    );
}
