//! The command line as a user meets it: stdout, stderr and exit code of real invocations of the
//! built binary, in a scratch directory each.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/platform.rs"]
mod platform;

#[path = "common/run.rs"]
mod run;
use run::*;

#[test]
fn help_tree() {
    let dir = scratch();
    let mut all = String::new();
    for args in [
        &["--help"][..],
        &["init", "--help"],
        &["render", "--help"],
        &["lint", "--help"],
        &["up", "--help"],
        &["status", "--help"],
        &["down", "--help"],
        &["doctor", "--help"],
        &["validate", "--help"],
        &["slo", "--help"],
        &["slo", "status", "--help"],
        &["set-image", "--help"],
        &["promote", "--help"],
        &["rollout", "--help"],
        &["rollout", "get", "--help"],
        &["rollout", "status", "--help"],
        &["rollout", "watch", "--help"],
        &["rollout", "promote", "--help"],
        &["rollout", "undo", "--help"],
    ] {
        let run = platformctl(dir.path(), args);
        assert_eq!(run.code, 0, "{args:?}");
        all.push_str(&format!(
            "$ platformctl {}\n{}\n",
            args.join(" "),
            run.stdout
        ));
    }
    insta::assert_snapshot!("help", all);
}

#[test]
fn version_is_the_crate_version() {
    let run = platformctl(Path::new(ROOT), &["--version"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, concat!("platformctl ", env!("CARGO_PKG_VERSION"), "\n"))
    );
}

/// What `git` says in `dir` (a test's own repository; no user configuration read).

#[test]
fn init_writes_renders_and_commits_a_new_repository_and_refuses_to_overwrite() {
    let dir = scratch();
    let run = platformctl(dir.path(), &["init", "--example", "microservices"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("wrote platform.yaml (microservices example) and rendered ")
            && run
                .stdout
                .contains("made the directory a git repository: committed on main as ")
            && run.stdout.ends_with("next: platformctl up\n"),
        "{}",
        run.stdout
    );
    let written = std::fs::read_to_string(dir.path().join("platform.yaml")).expect("written");
    assert!(written.contains("name: microservices"));
    // Everything init wrote is in the one commit, and nothing is left over.
    let committed = git_in(dir.path(), &["ls-files"]);
    let mut on_disk: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|f| !f.starts_with(".git/"))
        .collect();
    on_disk.sort();
    let mut tracked: Vec<String> = committed.lines().map(str::to_string).collect();
    tracked.sort();
    assert_eq!(tracked, on_disk);
    assert!(
        tracked.iter().any(|f| f == "argocd/app-prod.yaml"),
        "{tracked:?}"
    );
    assert_eq!(git_in(dir.path(), &["status", "--porcelain"]), "");
    assert_eq!(
        git_in(dir.path(), &["rev-list", "--count", "HEAD"]).trim(),
        "1"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).expect(".gitignore"),
        "# generated credentials (platformctl up)\n.platformctl/secrets/\n"
    );

    let again = platformctl(dir.path(), &["init"]);
    insta::assert_snapshot!("init_exists", again.transcript());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("platform.yaml")).expect("kept"),
        written,
        "not overwritten"
    );

    // --force in the repository init made: replaced and rendered, and (an existing
    // repository now) not committed without --commit.
    let forced = platformctl(
        dir.path(),
        &["init", "--force", "--example", "customer-platform"],
    );
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        forced
            .stdout
            .contains("in an existing git repository: nothing committed")
            && forced
                .stdout
                .contains("next: git add platform.yaml .gitignore argocd envs chaos"),
        "{}",
        forced.stdout
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("platform.yaml")).expect("replaced"),
        base_config()
    );
    assert_eq!(
        git_in(dir.path(), &["rev-list", "--count", "HEAD"]).trim(),
        "1"
    );
    let committed = platformctl(
        dir.path(),
        &[
            "init",
            "--force",
            "--commit",
            "--example",
            "customer-platform",
            "-o",
            "json",
        ],
    );
    assert_eq!(committed.code, 0, "{}", committed.stderr);
    let report: serde_json::Value = serde_json::from_str(&committed.stdout).expect("json");
    assert_eq!(report["git"]["repository"], "existing");
    assert_eq!(
        git_in(dir.path(), &["rev-list", "--count", "HEAD"]).trim(),
        "2"
    );
    // (the microservices tree's files that customer-platform does not have are gone, and
    // committed as gone)
    assert_eq!(git_in(dir.path(), &["status", "--porcelain"]), "");
}

#[test]
fn init_in_an_existing_repository_commits_nothing_and_keeps_its_gitignore() {
    let dir = scratch();
    git_in(dir.path(), &["init", "-q", "-b", "trunk"]);
    std::fs::write(dir.path().join(".gitignore"), "target/").expect("write");
    let run = platformctl(dir.path(), &["init"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("nothing committed"), "{}", run.stdout);
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).expect(".gitignore"),
        "target/\n# generated credentials (platformctl up)\n.platformctl/secrets/\n"
    );
    let out = Command::new("git")
        .args(["rev-parse", "--verify", "HEAD"])
        .current_dir(dir.path())
        .output()
        .expect("git runs");
    assert!(
        !out.status.success(),
        "init committed in the user's repository"
    );
}

#[test]
fn init_then_render_gives_the_committed_reference_tree() {
    let dir = scratch();
    assert_eq!(
        platformctl(dir.path(), &["init", "--example", "customer-platform"]).code,
        0
    );
    let run = platformctl(dir.path(), &["render", "--check"]);
    assert_eq!(
        run.code, 0,
        "init left a tree render would change: {}",
        run.stdout
    );
    // The repository root is the customer-platform: its committed tree must be identical.
    for f in files(dir.path()) {
        if f.starts_with(".git") {
            continue;
        }
        let committed = std::fs::read_to_string(Path::new(ROOT).join(&f)).unwrap_or_default();
        let fresh = std::fs::read_to_string(dir.path().join(&f)).expect("rendered");
        assert!(committed == fresh, "{f} differs from the committed tree");
    }
}

/// The README's main job is `platformctl init --example customer-platform && platformctl up`:
/// init must leave everything up's preflight asks of a gitops.local project (the tree rendered
/// and committed), so up goes on to the cluster (here an unreachable one: exit 3).
#[test]
fn readme_main_job_init_leaves_ups_preflight_satisfied() {
    let dir = scratch();
    let init = platformctl(dir.path(), &["init", "--example", "customer-platform"]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let unreachable = [("KUBECONFIG", Path::new("/nonexistent/kubeconfig"))];
    let run = platformctl_env(
        dir.path(),
        &["up", "--driver", "existing", "--skip", "addons"],
        &unreachable,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no kubeconfig at `/nonexistent/kubeconfig`"),
        "{}",
        run.stderr
    );
}

#[test]
fn render_is_idempotent_and_check_passes_on_a_fresh_tree() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    assert_eq!(platformctl(dir.path(), &["render"]).code, 0);
    let again = platformctl(dir.path(), &["render"]);
    assert_eq!(again.code, 0);
    assert_eq!(
        again.stdout,
        "rendered 17 files into .: 0 created, 0 updated, 0 removed, 17 unchanged\n"
    );
    let check = platformctl(dir.path(), &["render", "--check"]);
    assert_eq!(
        (check.code, check.stdout.as_str(), check.stderr.as_str()),
        (0, "", "")
    );
}

#[test]
fn render_check_reports_drift_as_a_diff_and_exit_1() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    assert_eq!(platformctl(dir.path(), &["render"]).code, 0);
    // A hand edit, a stale file and a missing file.
    let rollout = dir.path().join("envs/prod/customer-api/rollout.yaml");
    let text = std::fs::read_to_string(&rollout).expect("read");
    std::fs::write(&rollout, text.replace("replicas: 3", "replicas: 5")).expect("edit");
    std::fs::write(
        dir.path().join("envs/prod/customer-api/extra.yaml"),
        "kind: Stale\n",
    )
    .expect("stale");
    std::fs::remove_file(dir.path().join("chaos/pod-kill.yaml")).expect("remove");
    let before = files(dir.path());

    let run = platformctl(dir.path(), &["render", "--check"]);
    insta::assert_snapshot!("render_check_drift", run.transcript());
    assert_eq!(files(dir.path()), before, "--check writes nothing");

    let json = platformctl(dir.path(), &["render", "--check", "-o", "json"]);
    assert_eq!(json.code, 1);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("json report");
    assert_eq!(report["kind"], "RenderReport");
    assert_eq!(report["status"], "Drift");
    assert_eq!(
        report["summary"],
        serde_json::json!({"created": 1, "updated": 1, "removed": 1, "unchanged": 15})
    );

    // render repairs all three.
    let fix = platformctl(dir.path(), &["render"]);
    assert_eq!(fix.code, 0);
    assert!(
        !dir.path()
            .join("envs/prod/customer-api/extra.yaml")
            .exists()
    );
    assert_eq!(platformctl(dir.path(), &["render", "--check"]).code, 0);
}

#[test]
fn render_json_lists_what_was_written() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    let run = platformctl(dir.path(), &["render", "-o", "json"]);
    assert_eq!(run.code, 0);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(report["apiVersion"], "platformctl.dev/v1alpha1");
    assert_eq!(report["status"], "Rendered");
    let files = report["files"].as_array().expect("files");
    assert_eq!(files.len(), 17);
    assert!(files.iter().all(|f| f["action"] == "created"));
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "argocd/project-prod.yaml")
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn lint_passes_on_both_reference_trees() {
    for dir in [
        PathBuf::from(ROOT),
        Path::new(ROOT).join("examples/microservices"),
    ] {
        let run = platformctl(&dir, &["lint", "-o", "json"]);
        assert_eq!(run.code, 0, "{}: {}", dir.display(), run.stdout);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
        assert_eq!(report["status"], "Passed");
        assert!(report["objects"].as_u64().expect("count") >= 19);
    }
}

#[test]
fn lint_names_file_object_and_rule_and_exits_1() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    assert_eq!(platformctl(dir.path(), &["render"]).code, 0);
    let edit = |file: &str, from: &str, to: &str| {
        let p = dir.path().join(file);
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.contains(from), "{file} has no `{from}`");
        std::fs::write(&p, text.replacen(from, to, 1)).expect("write");
    };
    edit(
        "envs/prod/customer-api/rollout.yaml",
        "replicas: 3",
        "replicas: 1",
    );
    edit(
        "envs/prod/customer-api/rollout.yaml",
        "\"readinessProbe\":",
        "\"readinesProbe\":",
    );
    edit(
        "envs/prod/customer-api/rollout.yaml",
        "customer-api:0.1.0",
        "customer-api:latest",
    );
    edit(
        "envs/dev/customer-api/rollout.yaml",
        "              memory: \"128Mi\"\n",
        "",
    );
    edit(
        "envs/prod/customer-api/servicemonitor.yaml",
        "honorLabels",
        "honorLabel",
    );
    edit(
        "argocd/app-dev.yaml",
        "namespace: \"practice\"",
        "namespace: \"prod\"",
    );
    std::fs::write(
        dir.path().join("envs/prod/customer-api/secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: admin\n  namespace: prod\nstringData:\n  token: hunter2\n",
    )
    .expect("secret");
    let run = platformctl(dir.path(), &["lint"]);
    insta::assert_snapshot!("lint_findings", run.transcript());
    let json = platformctl(dir.path(), &["lint", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["rule"].as_str().expect("rule"))
        .collect();
    for rule in [
        "schema",
        "prod-replicas",
        "probes",
        "image-tag",
        "resources",
        "app-destination",
        "secret-data",
    ] {
        assert!(rules.contains(&rule), "no `{rule}` finding in {rules:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = scratch();
    let run = platformctl(dir.path(), &["render", "--no-such-flag"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unexpected argument '--no-such-flag'"),
        "{}",
        run.stderr
    );
    let missing = platformctl(dir.path(), &["render"]);
    insta::assert_snapshot!("missing_config", missing.transcript());
}

#[test]
fn environment_errors_exit_3_and_leave_nothing() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    std::fs::write(dir.path().join("occupied"), "a file, not a directory").expect("write");
    let run = platformctl(dir.path(), &["render", "--out", "occupied/tree"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "error: cannot read the tree in `occupied/tree`\n  caused by: Not a directory (os error 20)\n"
    );
    assert_eq!(files(dir.path()), vec!["occupied", "platform.yaml"]);
}

/// A failed render, whether it fails in a template or while writing, leaves the previous tree
/// byte for byte as it was, with no temporary files.
#[test]
fn failed_render_leaves_previous_tree_intact() {
    let dir = scratch();
    let config = dir.path().join("platform.yaml");
    std::fs::write(&config, base_config()).expect("write");
    assert_eq!(platformctl(dir.path(), &["render"]).code, 0);
    let snapshot = |d: &Path| -> Vec<(String, Vec<u8>)> {
        files(d)
            .into_iter()
            .map(|f| (f.clone(), std::fs::read(d.join(&f)).expect("read")))
            .collect()
    };
    let before = snapshot(dir.path());

    // The change touches every environment's files, and the template that fails (chaos) is
    // rendered last: a non-atomic writer would already have written the others.
    std::fs::write(&config, base_config().replace("0.1.0", "0.2.0")).expect("bump");
    std::fs::create_dir(dir.path().join("templates")).expect("templates");
    std::fs::write(
        dir.path().join("templates/chaos.yaml.j2"),
        "kind: [unclosed\n",
    )
    .expect("bad template");
    let run = platformctl(dir.path(), &["render"]);
    insta::assert_snapshot!("render_template_error", run.transcript());
    let mut after = snapshot(dir.path());
    after.retain(|(f, _)| f != "platform.yaml" && !f.starts_with("templates/"));
    let mut expected = before.clone();
    expected.retain(|(f, _)| f != "platform.yaml");
    assert_eq!(after, expected, "template error: tree changed");

    // Now a write failure: a directory is missing because a file stands in its place.
    std::fs::remove_dir_all(dir.path().join("templates")).expect("rm");
    std::fs::remove_dir_all(dir.path().join("envs/dev")).expect("rm");
    std::fs::write(dir.path().join("envs/dev"), "blocks the directory").expect("block");
    let run = platformctl(dir.path(), &["render"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let after: Vec<_> = snapshot(dir.path())
        .into_iter()
        .filter(|(f, _)| f != "platform.yaml" && f != "envs/dev")
        .collect();
    let expected: Vec<_> = expected
        .into_iter()
        .filter(|(f, _)| !f.starts_with("envs/dev/"))
        .collect();
    assert_eq!(after, expected, "write error: tree changed");
    assert!(
        files(dir.path())
            .iter()
            .all(|f| !f.ends_with(".platformctl-tmp")),
        "temporary files left"
    );
}

/// Each invalid configuration: the edit applied to the reference platform.yaml, and the exact
/// problem line the user must see (file, line, column, key path, message).
/// (case name, text replacements, expected problem line)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const INVALID: &[Case] = &[
    (
        "unknown top-level key",
        &[("services:", "servics:")],
        "platform.yaml:50:1: servics: unknown field `servics`, expected one of `apiVersion`, `kind`, `metadata`, `cluster`, `addons`, `gitops`, `environments`, `services`, `slos`, `chaos`, `load`, `alerting`, `promotion`",
    ),
    (
        "unknown nested key",
        &[("    image: platformctl", "    imagee: platformctl")],
        "platform.yaml:52:5: services[0].imagee: unknown field `imagee`, expected one of `name`, `image`, `tags`, `port`, `resources`, `probes`, `config`, `versionConfig`, `secrets`, `metrics`, `strategy`",
    ),
    (
        "wrong type",
        &[("port: 8080", "port: http")],
        "platform.yaml:56:11: services[0].port: invalid type: string \"http\", expected u16",
    ),
    (
        "missing required key",
        &[("    port: 8080\n", "")],
        "platform.yaml:51:5: services[0]: missing field `port`",
    ),
    (
        "yaml syntax",
        &[("  nodes: 3", "  nodes: 3: 4")],
        "platform.yaml:11:11: cluster: mapping values are not allowed in this context",
    ),
    (
        "wrong apiVersion",
        &[("platformctl.dev/v1alpha1", "platformctl.dev/v2")],
        "platform.yaml:3:1: apiVersion: must be `platformctl.dev/v1alpha1`, found `platformctl.dev/v2`",
    ),
    (
        "invalid service name",
        &[
            ("- name: customer-api", "- name: Customer_API"),
            (
                "service: customer-api\n    environment: prod\n    window",
                "service: Customer_API\n    environment: prod\n    window",
            ),
            (
                "    service: customer-api\n    environment: prod\n    action",
                "    service: Customer_API\n    environment: prod\n    action",
            ),
        ],
        "platform.yaml:51:5: services[0].name: `Customer_API` is not a valid name: use at most 40 lowercase letters, digits and '-', starting and ending with a letter or digit",
    ),
    (
        "invalid namespace",
        &[("namespace: practice", "namespace: Practice")],
        "platform.yaml:36:5: environments[0].namespace: `Practice` is not a valid name: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
    ),
    (
        "canary weights not increasing",
        &[("steps: [20, 50, 100]", "steps: [20, 50, 50]")],
        "platform.yaml:68:25: services[0].strategy.canary.steps[2]: canary weights must increase: 50 after 50",
    ),
    (
        "canary weight over 100",
        &[("steps: [20, 50, 100]", "steps: [20, 50, 120]")],
        "platform.yaml:68:25: services[0].strategy.canary.steps[2]: weight must be between 1 and 100, found 120",
    ),
    (
        "objective of 100",
        &[("objective: 99.9", "objective: 100")],
        "platform.yaml:81:7: slos[0].availability.objective: must be a percentage between 0 and 100 (exclusive), found 100",
    ),
    (
        "negative objective",
        &[("objective: 99.9", "objective: -5")],
        "platform.yaml:81:7: slos[0].availability.objective: must be a percentage between 0 and 100 (exclusive), found -5",
    ),
    (
        "latency threshold not a bucket",
        &[(
            "      percentile: 95\n      threshold: 0.3\n\nchaos",
            "      percentile: 95\n      threshold: 0.35\n\nchaos",
        )],
        "platform.yaml:84:7: slos[0].latency.threshold: 0.35s is not a histogram bucket of service `customer-api` (buckets: 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5, 10); a latency SLI can only count requests under a bucket boundary",
    ),
    (
        "percentile of 100",
        &[(
            "      percentile: 95\n      threshold: 0.3\n\nchaos",
            "      percentile: 100\n      threshold: 0.3\n\nchaos",
        )],
        "platform.yaml:83:7: slos[0].latency.percentile: must be between 0 and 100 (exclusive), found 100",
    ),
    (
        "slo in unknown environment",
        &[(
            "    environment: prod\n    window",
            "    environment: staging\n    window",
        )],
        "platform.yaml:78:5: slos[0].environment: unknown environment `staging`",
    ),
    (
        "slo without monitoring",
        &[(
            "    environment: prod\n    window",
            "    environment: dev\n    window",
        )],
        "platform.yaml:78:5: slos[0].environment: environment `dev` has no monitoring: set `monitoring: true` on it",
    ),
    (
        "duplicate environment",
        &[(
            "  - name: prod\n    namespace: prod",
            "  - name: dev\n    namespace: prod",
        )],
        "platform.yaml:38:5: environments[1].name: duplicate environment name `dev`",
    ),
    (
        "latest tag",
        &[("      prod: 0.1.0", "      prod: latest")],
        "platform.yaml:55:7: services[0].tags.prod: `latest` is not allowed: pin a version (or a digest) so that promotion is reproducible",
    ),
    (
        "missing tag",
        &[("      prod: 0.1.0\n", "")],
        "platform.yaml:53:5: services[0].tags: missing a tag for environment `prod`",
    ),
    (
        "image with tag",
        &[(
            "image: platformctl/customer-api",
            "image: platformctl/customer-api:1.0",
        )],
        "platform.yaml:52:5: services[0].image: `platformctl/customer-api:1.0` carries a tag or digest: give the repository here and the tag (or digest) under `tags`",
    ),
    (
        "hpa bounds",
        &[("maxReplicas: 10", "maxReplicas: 2")],
        "platform.yaml:47:7: environments[1].hpa.maxReplicas: must be at least minReplicas (3), found 2",
    ),
    (
        "two strategies",
        &[(
            "    strategy:\n      canary:",
            "    strategy:\n      blueGreen: {}\n      canary:",
        )],
        "platform.yaml:66:5: services[0].strategy: set either `canary` or `blueGreen`, not both",
    ),
    (
        "pod-failure without duration",
        &[("action: pod-kill", "action: pod-failure")],
        "platform.yaml:87:5: chaos[0].duration: `pod-failure` needs a duration such as `30s`",
    ),
    (
        "chaos on unknown service",
        &[(
            "    service: customer-api\n    environment: prod\n    action",
            "    service: billing\n    environment: prod\n    action",
        )],
        "platform.yaml:88:5: chaos[0].service: unknown service `billing`",
    ),
    (
        "bad memory quantity",
        &[("memory: 64Mi", "memory: 64MB")],
        "platform.yaml:58:30: services[0].resources.requests.memory: `64MB` is not a memory quantity such as `128Mi`, `1Gi` or `1e9`",
    ),
    (
        "requests above limits",
        &[("cpu: 100m", "cpu: 800m")],
        "platform.yaml:58:19: services[0].resources.requests.cpu: 800m exceeds the limit 500m",
    ),
    (
        "both git sources",
        &[(
            "  local: {}",
            "  local: {}\n  remote: {url: https://example.com/p.git}",
        )],
        "platform.yaml:31:1: gitops: set either `local` or `remote`, not both",
    ),
    (
        "reserved config key",
        &[("LOG_LEVEL: info", "PLATFORM_PORT: \"1\"")],
        "platform.yaml:61:7: services[0].config.PLATFORM_PORT: keys starting with PLATFORM_ are set by platformctl",
    ),
    (
        "unknown chaos action",
        &[("action: pod-kill", "action: node-kill")],
        "platform.yaml:90:13: chaos[0].action: unknown variant `node-kill`, expected one of `pod-kill`, `pod-failure`, `container-kill`",
    ),
];

#[test]
fn invalid_configurations_are_located_and_exit_2_writing_nothing() {
    assert!(INVALID.len() >= 15);
    let base = base_config();
    let mut wrong = Vec::new();
    for (name, edits, expected) in INVALID {
        let mut text = base.clone();
        for (from, to) in *edits {
            assert!(
                text.contains(from),
                "case `{name}`: the base config has no `{from}`"
            );
            text = text.replacen(from, to, 1);
        }
        let dir = scratch();
        std::fs::write(dir.path().join("platform.yaml"), &text).expect("write");
        let run = platformctl(dir.path(), &["render"]);
        assert_eq!(run.code, 2, "case `{name}`: {}", run.stderr);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert!(
            lines[0].starts_with("error: `platform.yaml` is invalid ("),
            "case `{name}`: {}",
            run.stderr
        );
        let got = lines.get(1).map(|l| l.trim()).unwrap_or_default();
        if got != *expected {
            wrong.push(format!(
                "case `{name}`:\n  expected: {expected}\n       got: {got}"
            ));
        }
        assert_eq!(run.stdout, "", "case `{name}`: stdout carries no result");
        assert_eq!(
            files(dir.path()),
            vec!["platform.yaml"],
            "case `{name}`: something was written"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn config_errors_as_json() {
    let dir = scratch();
    std::fs::write(
        dir.path().join("platform.yaml"),
        base_config().replace("steps: [20, 50, 100]", "steps: [50, 20, 100]"),
    )
    .expect("write");
    let run = platformctl(dir.path(), &["render", "-o", "json"]);
    assert_eq!(run.code, 2);
    insta::assert_snapshot!("config_error_json", run.stdout);
}

/// A machine for `doctor`: a `bin/` that will be the whole PATH, and a fake `proc/` (2 CPUs,
/// 32,000 MiB, the given inotify instance limit).
fn doctor_machine(inotify_instances: u32) -> tempfile::TempDir {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    std::fs::create_dir(dir.path().join("bin")).expect("bin");
    let proc = dir.path().join("proc");
    std::fs::create_dir_all(proc.join("sys/fs/inotify")).expect("proc");
    std::fs::write(proc.join("cpuinfo"), "processor\t: 0\n\nprocessor\t: 1\n").expect("w");
    std::fs::write(
        proc.join("meminfo"),
        "MemTotal:       32768000 kB\nMemAvailable:   30000000 kB\n",
    )
    .expect("w");
    std::fs::write(
        proc.join("sys/fs/inotify/max_user_instances"),
        format!("{inotify_instances}\n"),
    )
    .expect("w");
    std::fs::write(proc.join("sys/fs/inotify/max_user_watches"), "524288\n").expect("w");
    dir
}

/// A fake tool in the machine's `bin/`. PATH holds only fake tools, so scripts use shell
/// builtins only.
fn fake_tool(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("bin").join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The tools as they answer upstream: minikube's `version -o json` and `status -o json` shapes
/// (tests/fixtures/minikube/), Docker 28.2.2's `--version` and a `docker info --format`
/// answer, helm's `version --short` format (`v<version>+g<commit>`), kubectl 1.34.4's
/// `version --client -o json`, `git --version`.
fn fake_tools(dir: &Path) {
    let status = std::fs::read_to_string(
        Path::new(ROOT).join("tests/fixtures/minikube/status-multi-running.json"),
    )
    .expect("fixture");
    fake_tool(
        dir,
        "minikube",
        &format!(
            "case \"$1\" in\n\
             version) echo '{{\"commit\":\"f8f52f5de11fc6ad8244afac475e1d0f96841df1\",\"minikubeVersion\":\"v1.36.0\"}}' ;;\n\
             status) printf '%s' '{status}' ;;\n\
             *) exit 64 ;;\n\
             esac\n"
        ),
    );
    fake_tool(
        dir,
        "docker",
        "case \"$1\" in\n\
         --version) echo 'Docker version 28.2.2, build e6534b4' ;;\n\
         info) echo '28.2.2 8 33554432000' ;;\n\
         *) exit 64 ;;\n\
         esac\n",
    );
    fake_tool(dir, "helm", "echo 'v3.19.0+g3d8990f'\n");
    fake_tool(dir, "git", "echo 'git version 2.47.3'\n");
    fake_tool(
        dir,
        "kubectl",
        "echo '{\"clientVersion\":{\"major\":\"1\",\"minor\":\"34\",\"gitVersion\":\"v1.34.4\",\"platform\":\"linux/amd64\"},\"kustomizeVersion\":\"v5.7.1\"}'\n",
    );
}

#[test]
fn doctor_passes_with_every_tool_and_warns_about_multi_node_storage() {
    let dir = doctor_machine(8192);
    fake_tools(dir.path());
    let env = [
        ("PATH", dir.path().join("bin")),
        ("PLATFORMCTL_PROC", dir.path().join("proc")),
    ];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    // The tools and the host; the chart repositories are asked in the test below.
    let run = platformctl_env(dir.path(), &["doctor", "--offline"], &env);
    insta::assert_snapshot!("doctor_ok", run.transcript());

    let json = platformctl_env(dir.path(), &["doctor", "--offline", "-o", "json"], &env);
    assert_eq!(json.code, 0);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(report["kind"], "DoctorReport");
    assert_eq!(report["status"], "Passed");
    assert_eq!(
        report["summary"],
        serde_json::json!({"ok": 9, "warn": 1, "error": 0})
    );
    assert_eq!(report["findings"][0]["check"], "tool/minikube");
}

#[test]
fn doctor_without_tools_names_each_with_its_fix_and_exits_1() {
    let dir = doctor_machine(128);
    let env = [
        ("PATH", dir.path().join("bin")),
        ("PLATFORMCTL_PROC", dir.path().join("proc")),
    ];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let run = platformctl_env(dir.path(), &["doctor"], &env);
    insta::assert_snapshot!("doctor_missing_tools", run.transcript());
}

#[test]
fn doctor_with_an_existing_cluster_checks_the_context() {
    let dir = doctor_machine(128);
    fake_tools(dir.path());
    std::fs::remove_file(dir.path().join("bin/minikube")).expect("rm");
    std::fs::remove_file(dir.path().join("bin/docker")).expect("rm");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: minikube\ncontexts:\n- name: minikube\n  context: {cluster: sim, user: admin}\nclusters:\n- name: sim\n  cluster: {server: \"https://127.0.0.1:26400\"}\nusers:\n- name: admin\n  user: {token: t}\n",
    )
    .expect("kubeconfig");
    let env = [
        ("PATH", dir.path().join("bin")),
        ("PLATFORMCTL_PROC", dir.path().join("proc")),
        ("KUBECONFIG", kubeconfig),
    ];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let run = platformctl_env(
        dir.path(),
        &["doctor", "--driver", "existing", "--offline"],
        &env,
    );
    insta::assert_snapshot!("doctor_existing", run.transcript());

    let missing = platformctl_env(
        dir.path(),
        &[
            "doctor",
            "--driver",
            "existing",
            "--context",
            "prod",
            "--offline",
        ],
        &env,
    );
    assert_eq!(missing.code, 1);
    assert!(
        missing.stdout.contains(
            "✗ context `prod` is not in the kubeconfig (available: minikube)\n  fix: pass `--context`"
        ),
        "{}",
        missing.stdout
    );

    // `--context` is meaningless for minikube: a usage error.
    let usage = platformctl_env(dir.path(), &["doctor", "--context", "prod"], &env);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}

/// The real helm the cluster tier runs: `$PLATFORMCTL_HELM`, else the harness's build
/// (`tests/sim/cluster build`, which tests/run does first), else `helm` on PATH.
fn real_helm() -> PathBuf {
    if let Some(p) = std::env::var_os("PLATFORMCTL_HELM").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let env = Command::new("bash")
        .arg(Path::new(ROOT).join("tests/sim/cluster"))
        .arg("env")
        .output()
        .expect("tests/sim/cluster env runs");
    let path = String::from_utf8_lossy(&env.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export PATH="))
        .flat_map(|l| l.split(':'))
        .map(|dir| dir.trim_matches(['\'', '"']).to_string())
        .chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|p| p.display().to_string()),
        )
        .map(|dir| Path::new(&dir).join("helm"))
        .find(|helm| helm.is_file());
    path.expect("these tests need helm v3: run tests/sim/cluster build, or set PLATFORMCTL_HELM")
}

/// `doctor` asks each addon's chart repository for the pinned version, with the real helm: a
/// repository of the stand-in charts (tests/fixtures/charts) served on 127.0.0.1 holds
/// kube-prometheus-stack 81.4.3 and not the 81.4.5 this platform pins (which upstream never
/// released either), and metrics-server's repository is a loopback port nothing listens on.
/// Traffic stays on 127.0.0.0/8.
#[test]
fn doctor_says_when_a_pinned_chart_version_is_not_in_its_repository() {
    let helm = real_helm();
    let home = scratch();
    let charts = platform::ChartRepo::start(&platformctl::addons::Helm::new(&helm), home.path())
        .expect("chart repository on loopback");
    // A port nothing listens on once the listener is dropped.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .to_string();
    let dir = doctor_machine(8192);
    fake_tools(dir.path());
    let platform = platform::test_platform_from(
        "platform.yaml",
        Some("git://127.0.0.1:9/unused.git"),
        &charts.url,
    )
    .expect("test platform");
    let mut platform: serde_yaml::Value = serde_yaml::from_str(&platform).expect("YAML");
    platform["addons"]["kubePrometheusStack"]["version"] = "81.4.5".into();
    platform["addons"]["metricsServer"]["repository"] = format!("http://{closed}").into();
    std::fs::write(
        dir.path().join("platform.yaml"),
        serde_yaml::to_string(&platform).expect("YAML"),
    )
    .expect("write");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: sim\ncontexts:\n- name: sim\n  context: {cluster: sim, user: admin}\nclusters:\n- name: sim\n  cluster: {server: \"https://127.0.0.1:26400\"}\nusers:\n- name: admin\n  user: {token: t}\n",
    )
    .expect("kubeconfig");
    let env = [
        ("PATH", dir.path().join("bin")),
        ("PLATFORMCTL_PROC", dir.path().join("proc")),
        ("KUBECONFIG", kubeconfig),
        ("PLATFORMCTL_HELM", helm),
        ("HELM_CACHE_HOME", home.path().join("cache")),
        ("HELM_CONFIG_HOME", home.path().join("config")),
        ("HELM_DATA_HOME", home.path().join("data")),
    ];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let run = platformctl_env(dir.path(), &["doctor"], &env);
    assert_eq!(run.code, 1, "{}", run.transcript());
    // The chart findings (the others are the tools' and the context's), with the ports named.
    let mut charts_text = String::new();
    let mut in_chart = false;
    for line in run.stdout.lines() {
        if !line.starts_with("  fix: ") {
            in_chart = line
                .split_once(' ')
                .is_some_and(|(_, l)| l.starts_with("chart "));
        }
        if in_chart {
            charts_text.push_str(line);
            charts_text.push('\n');
        }
    }
    let charts_text = charts_text
        .replace(&charts.url, "http://127.0.0.1:REPO")
        .replace(&closed, "127.0.0.1:CLOSED");
    insta::assert_snapshot!("doctor_charts", charts_text);
    assert!(
        run.stdout
            .trim_end()
            .ends_with("1 error, 1 warning (driver existing)"),
        "{}",
        run.stdout
    );

    let json = platformctl_env(dir.path(), &["doctor", "-o", "json"], &env);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let failing: Vec<(&str, &str)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] != "ok")
        .map(|f| {
            (
                f["check"].as_str().unwrap_or(""),
                f["severity"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        failing,
        [
            ("chart/kubePrometheusStack", "error"),
            ("chart/metricsServer", "warn")
        ]
    );

    // Offline: no repository is asked, and the rest passes.
    let offline = platformctl_env(dir.path(), &["doctor", "--offline"], &env);
    assert_eq!(offline.code, 0, "{}", offline.transcript());
    assert!(!offline.stdout.contains("chart "), "{}", offline.stdout);
}

#[test]
fn up_dry_run_prints_the_plan_and_touches_nothing() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    assert_eq!(platformctl(dir.path(), &["-q", "render"]).code, 0);
    let before = files(dir.path());
    // No kubeconfig, no minikube, no helm: a plan needs none of them.
    let run = platformctl(dir.path(), &["up", "--dry-run", "--skip", "images"]);
    assert_eq!(files(dir.path()), before);
    insta::assert_snapshot!("up_dry_run", run.transcript());
    let json = platformctl(dir.path(), &["up", "--dry-run", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        (v["kind"].as_str(), v["status"].as_str()),
        (Some("UpPlan"), Some("Planned"))
    );
    assert_eq!(v["steps"].as_array().map(Vec::len), Some(9));
}

#[test]
fn up_status_down_refuse_bad_usage_with_exit_2() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    let unknown = platformctl(dir.path(), &["up", "--only", "adons"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("there is no step `adons`"),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown
            .stderr
            .contains("hint: the steps are: preflight, cluster,"),
        "{}",
        unknown.stderr
    );
    let context = platformctl(dir.path(), &["status", "--context", "x"]);
    assert_eq!(context.code, 2, "{}", context.stderr);
    assert!(
        context
            .stderr
            .contains("`--context` is for `--driver existing`")
    );
    // down never deletes a cluster it did not create, and never without confirmation.
    let existing = platformctl(dir.path(), &["down", "--driver", "existing"]);
    assert_eq!(existing.code, 2, "{}", existing.stderr);
    assert!(
        existing
            .stderr
            .contains("never deletes a cluster it did not create")
    );
    let unconfirmed = platformctl(dir.path(), &["down"]);
    assert_eq!(unconfirmed.code, 2, "{}", unconfirmed.stderr);
    assert!(
        unconfirmed
            .stderr
            .contains("hint: pass `--yes` to confirm (CI)"),
        "{}",
        unconfirmed.stderr
    );
}

#[test]
fn up_refuses_a_stale_tree_before_touching_the_cluster() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    assert_eq!(platformctl(dir.path(), &["-q", "render"]).code, 0);
    let config = base_config().replace("replicas: 3", "replicas: 4");
    std::fs::write(dir.path().join("platform.yaml"), config).expect("write");
    // The kubeconfig names nothing reachable: the preflight must stop before it is read.
    let run = platformctl_env(
        dir.path(),
        &["up", "--driver", "existing"],
        &[("KUBECONFIG", Path::new("/nonexistent/kubeconfig"))],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the rendered tree on disk differs from platform.yaml"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: run `platformctl render`"),
        "{}",
        run.stderr
    );
}

#[test]
fn up_with_gitops_local_needs_the_tree_committed_before_touching_the_cluster() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    assert_eq!(platformctl(dir.path(), &["-q", "render"]).code, 0);
    let unreachable = [("KUBECONFIG", Path::new("/nonexistent/kubeconfig"))];
    let up = ["up", "--driver", "existing", "--skip", "addons"];
    // Not a git repository: nothing to push.
    let run = platformctl_env(dir.path(), &up, &unreachable);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("gitops.local pushes your project's HEAD commit"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: commit the project"),
        "{}",
        run.stderr
    );
    // A commit without the rendered tree: Argo CD would deploy a tree without it.
    let git = |args: &[&str]| platform::git(dir.path(), args).expect("git");
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "platform.yaml"]);
    git(&["commit", "-q", "-m", "platform"]);
    let run = platformctl_env(dir.path(), &up, &unreachable);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the rendered tree has 17 uncommitted file(s), e.g. `argocd/app-dev.yaml`"),
        "{}",
        run.stderr
    );
    // Committed, the preflight passes and the next step needs the cluster (exit 3).
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "tree"]);
    let run = platformctl_env(dir.path(), &up, &unreachable);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no kubeconfig at `/nonexistent/kubeconfig`"),
        "{}",
        run.stderr
    );
}

#[test]
fn up_charts_must_be_a_chart_repository_url() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    let unreachable = [("KUBECONFIG", Path::new("/nonexistent/kubeconfig"))];
    let run = platformctl_env(
        dir.path(),
        &[
            "up",
            "--driver",
            "existing",
            "--charts",
            "ftp://mirror/charts",
        ],
        &unreachable,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "`--charts ftp://mirror/charts`: not an https://, http:// or oci:// chart repository URL"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(files(dir.path()), vec!["platform.yaml"], "nothing written");
}

/// A kubeconfig whose API server is a closed loopback port.
fn unreachable_kubeconfig(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
    )
    .expect("write");
    path
}

#[test]
fn validate_and_slo_status_exit_2_on_bad_usage_and_3_when_the_cluster_is_unreachable() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), base_config()).expect("write");
    let kubeconfig = unreachable_kubeconfig(dir.path());
    let env = [("KUBECONFIG", kubeconfig.as_path())];
    let run = |args: &[&str]| platformctl_env(dir.path(), args, &env);

    let unknown = run(&["validate", "--driver", "existing", "--env", "staging"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert_eq!(
        unknown.stderr,
        "error: platform.yaml has no environment `staging`\nhint: its environments: dev, prod\n"
    );
    let unknown = run(&[
        "slo",
        "status",
        "--driver",
        "existing",
        "--service",
        "billing",
    ]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown.stderr.contains("no service `billing`"),
        "{}",
        unknown.stderr
    );
    assert_eq!(run(&["slo", "status", "--env", "staging"]).code, 2);
    assert_eq!(run(&["slo"]).code, 2, "a subcommand is required");
    let bad_url = run(&[
        "slo",
        "status",
        "--driver",
        "existing",
        "--prometheus-url",
        "prometheus:9090",
    ]);
    assert_eq!(bad_url.code, 2, "{}", bad_url.stderr);
    assert!(
        bad_url
            .stderr
            .contains("`prometheus:9090` is not a usable Prometheus address"),
        "{}",
        bad_url.stderr
    );

    for args in [
        &["validate", "--driver", "existing"][..],
        &["slo", "status", "--driver", "existing"],
        &["validate", "--driver", "existing", "-o", "json"],
        &["validate", "--driver", "existing", "--junit", "v.xml"],
    ] {
        let down = run(args);
        assert_eq!(down.code, 3, "{args:?}: {}", down.stderr);
        assert!(
            down.stderr
                .contains("hint: cannot reach the cluster's API server"),
            "{args:?}: {}",
            down.stderr
        );
    }
    // Prometheus that cannot be reached is exit 3 too, said as such.
    let no_prometheus = run(&[
        "slo",
        "status",
        "--driver",
        "existing",
        "--prometheus-url",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(no_prometheus.code, 3, "{}", no_prometheus.stderr);
    assert!(
        no_prometheus
            .stderr
            .starts_with("error: cannot ask the platform's Prometheus\n  caused by: cannot connect to Prometheus at http://127.0.0.1:1"),
        "{}",
        no_prometheus.stderr
    );
    let json = run(&["validate", "--driver", "existing", "-o", "json"]);
    let report: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("a JSON error report");
    assert_eq!(report["kind"], "Error", "{report}");
    // No SLOs to ask about: nothing to reach, exit 0.
    let none = platformctl_env(
        dir.path(),
        &["slo", "status", "--driver", "existing", "--env", "dev"],
        &env,
    );
    assert_eq!(none.code, 0, "{}", none.stderr);
    assert!(none.stdout.starts_with("no SLOs"), "{}", none.stdout);
    // A JUnit file is not written when the run could not ask.
    assert!(!dir.path().join("v.xml").exists());
}

fn alerting_fixture() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("tests/fixtures/alerting/platform.yaml"))
        .expect("the alerting fixture")
}

#[test]
fn render_refuses_a_route_to_an_unknown_receiver_with_its_key_path_and_line() {
    let dir = scratch();
    let config = alerting_fixture().replacen(
        "receivers: [oncall-slack, team-email]",
        "receivers: [pager, team-email]",
        1,
    );
    let (line, column) = config
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("[pager").map(|c| (i + 1, c + 2)))
        .expect("edited");
    std::fs::write(dir.path().join("platform.yaml"), &config).expect("write");
    let run = platformctl(dir.path(), &["render"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr.lines().take(2).collect::<Vec<_>>(),
        [
            "error: `platform.yaml` is invalid (1 problem)".to_string(),
            format!(
                "  platform.yaml:{line}:{column}: alerting.routes[0].receivers[0]: unknown receiver `pager` (receivers: oncall-slack, team-email, unused)"
            ),
        ],
        "{}",
        run.stderr
    );
    assert_eq!(files(dir.path()), ["platform.yaml"], "nothing written");
}

#[test]
fn up_refuses_missing_receiver_secret_files_before_touching_the_cluster() {
    let dir = scratch();
    std::fs::write(dir.path().join("platform.yaml"), alerting_fixture()).expect("write");
    assert_eq!(platformctl(dir.path(), &["-q", "render"]).code, 0);
    let unreachable = [("KUBECONFIG", Path::new("/nonexistent/kubeconfig"))];
    let up = ["up", "--driver", "existing", "--skip", "addons,gitops"];
    let run = platformctl_env(dir.path(), &up, &unreachable);
    assert_eq!(run.code, 2, "{}", run.transcript());
    for want in [
        "alert receivers need Secret values platformctl cannot generate (3 problems)",
        "Secret `prod/alerting-slack` has no source: write `.platformctl/secrets/prod/alerting-slack.env` or `.platformctl/secrets/alerting-slack.env` with `url` (the Slack webhook URL of receiver `oncall-slack`)",
        "Secret `staging/alerting-smtp` has no source",
        "with `password` (the SMTP password of receiver `team-email`)",
        "hint: write `KEY=value` lines",
    ] {
        assert!(run.stderr.contains(want), "no `{want}` in:\n{}", run.stderr);
    }
    assert!(
        !run.stderr.contains("kubeconfig"),
        "the cluster was not read"
    );
    // `--only secrets` skips preflight: the step itself refuses before it connects.
    let only = ["up", "--driver", "existing", "--only", "secrets"];
    let run = platformctl_env(dir.path(), &only, &unreachable);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("Secret `prod/alerting-slack` has no source")
    );

    let secrets = dir.path().join(".platformctl/secrets");
    std::fs::create_dir_all(secrets.join("prod")).expect("mkdir");
    std::fs::write(
        secrets.join("prod/alerting-slack.env"),
        "url=https://hooks.slack.com/services/T0/B0/not-shown\n",
    )
    .expect("write");
    std::fs::write(secrets.join("alerting-smtp.env"), "password=not-shown\n").expect("write");
    let run = platformctl_env(dir.path(), &up, &unreachable);
    // Preflight passes; the cluster step is the first to need the cluster (exit 3).
    assert_eq!(run.code, 3, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("no kubeconfig at `/nonexistent/kubeconfig`"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("not-shown") && !run.stderr.contains("not-shown"));
}

/// `set-image`: only the tag's text changes in platform.yaml (the microservices example writes
/// its tags as flow mappings), the tree is re-rendered, `--commit` commits both and nothing
/// else; bad input is exit 2 with nothing written.
#[test]
fn set_image_edits_the_tag_in_place_renders_and_commits_and_refuses_bad_input() {
    let dir = scratch();
    assert_eq!(
        platformctl(dir.path(), &["init", "--example", "microservices"]).code,
        0
    );
    let file = dir.path().join("platform.yaml");
    let before = std::fs::read_to_string(&file).expect("platform.yaml");
    // An unrelated change in the work tree stays out of the commit.
    std::fs::write(dir.path().join("notes.txt"), "mine\n").expect("write");
    let run = platformctl(
        dir.path(),
        &[
            "set-image",
            "dev",
            "orders=0.2.0",
            "payments=0.2.1",
            "--commit",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let after = std::fs::read_to_string(&file).expect("platform.yaml");
    let want = before
        .replacen(
            "image: platformctl/orders\n    tags: { dev: 0.1.0,",
            "image: platformctl/orders\n    tags: { dev: 0.2.0,",
            1,
        )
        .replacen(
            "image: platformctl/payments\n    tags: { dev: 0.1.0,",
            "image: platformctl/payments\n    tags: { dev: 0.2.1,",
            1,
        );
    assert_ne!(
        want, before,
        "the example writes its tags as this test expects"
    );
    assert_eq!(after, want, "only the two tags changed");
    let rollout =
        std::fs::read_to_string(dir.path().join("envs/dev/orders/rollout.yaml")).expect("rendered");
    assert!(
        rollout.contains("image: \"platformctl/orders:0.2.0\""),
        "{rollout}"
    );
    let log =
        platform::git(dir.path(), &["log", "-1", "--format=%s", "--name-only"]).expect("git log");
    assert_eq!(
        log.trim(),
        "set-image dev: orders 0.2.0, payments 0.2.1\n\nenvs/dev/orders/rollout.yaml\nenvs/dev/payments/rollout.yaml\nplatform.yaml",
    );
    let status = platform::git(dir.path(), &["status", "--porcelain"]).expect("git status");
    assert_eq!(status.trim(), "?? notes.txt");
    // Again: nothing to change, nothing committed.
    let again = platformctl(
        dir.path(),
        &["-o", "json", "set-image", "dev", "orders=0.2.0"],
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("\"status\": \"Unchanged\""),
        "{}",
        again.stdout
    );
    // Bad input: exit 2, nothing written.
    let files = files(dir.path());
    for (args, says) in [
        (
            &["set-image", "qa", "orders=1.0.0"][..],
            "no environment `qa`",
        ),
        (&["set-image", "dev", "basket=1.0.0"], "no service `basket`"),
        (
            &["set-image", "dev", "orders"],
            "`orders` is not SERVICE=TAG",
        ),
        (
            &["set-image", "dev", "orders=not/a/tag"],
            "services[1].tags.dev: `not/a/tag` is not a valid image tag",
        ),
    ] {
        let run = platformctl(dir.path(), args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    assert_eq!(files, self::files(dir.path()));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), after);
}
