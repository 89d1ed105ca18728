//! `platformctl up --driver existing` end to end, on a cluster of its own: the real control
//! plane, the real Argo CD (application controller, repo server) and the real Argo Rollouts
//! controller (reconciling every Rollout), the real metrics-server behind the metrics API (prod's
//! HPA scales its Rollout on the pods' CPU, as kwok simulates it), the real helm installing the
//! addons' stand-in charts from a chart repository on loopback, and the GitOps tree in a git
//! repository served over the git protocol on loopback (`gitops.remote`; `gitops.local`, with
//! the pods running for real, is up_for_real.rs). "Synced and Healthy" is Argo CD's own verdict.
//! Pods are kwok's (status only), and so is the ingress controller: kwok publishes each
//! Ingress's address in its status, as ingress-nginx would, and nothing serves it
//! (tests/sim/cluster says why).
//!
//! Stages, one after the other on the same cluster: a server dry run; up from nothing; a second
//! up changes nothing; status; down --keep-cluster; 20 runs of up killed with SIGKILL at random
//! moments, then up converges; down --keep-cluster leaves nothing of the platform. The
//! microservices platform runs on a cluster of its own whose pods run for real, with
//! monitoring, for `validate` and then for a blue-green release through its gate (blue_green.rs).

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::Api;
use libtest_mimic::Trial;
use serde_json::Value;

use crate::own::{
    Gitops, Setup, all_ready, argo, down_and_check, fingerprint, one_at_a_time, status_is_healthy,
    steps_of,
};
use crate::support::{TestResult, wait_for};

/// The harness's options for these tests: every pod is kwok's.
const WITH: &str = "rollouts,argocd,metrics";

pub fn trials() -> Vec<Trial> {
    vec![
        crate::support::trial(
            "up_converges_the_reference_platform_survives_20_kills_and_down_removes_it",
            || Ok(one_at_a_time(end_to_end)?),
        ),
        crate::support::trial(
            "up_converges_the_microservices_platform_and_a_blue_green_release_waits_at_its_gate",
            || Ok(one_at_a_time(microservices)?),
        ),
    ]
}

/// Prod's Ingress and HPA: among the resources of prod's Application (whose health, Healthy by
/// all_ready, is the worst of theirs: Argo CD 3 keeps the per-resource health out of the
/// Application's status), the Ingress with the address kwok published, and the HPA reading its
/// Rollout's pods' CPU through the metrics API, which metrics-server first has about 30 s after
/// the pods start.
async fn prod_ingress_and_hpa(client: &Client) -> TestResult {
    let apps = argo(client, "Application", "applications");
    let prod = apps
        .get("customer-platform-prod")
        .await
        .map_err(|e| format!("Application customer-platform-prod: {e}"))?;
    let resources = prod.data["status"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for kind in ["Ingress", "HorizontalPodAutoscaler"] {
        let sync = resources
            .iter()
            .find(|r| r["kind"] == kind && r["name"] == "customer-api")
            .map(|r| r["status"].clone());
        if sync != Some(Value::from("Synced")) {
            return Err(format!(
                "prod's {kind} customer-api in its Application: {sync:?}"
            ));
        }
    }
    let ingress = Api::<Ingress>::namespaced(client.clone(), "prod")
        .get("customer-api")
        .await
        .map_err(|e| e.to_string())?;
    let lb = serde_json::to_value(&ingress).map_err(|e| e.to_string())?["status"]["loadBalancer"]
        ["ingress"][0]["ip"]
        .clone();
    if lb != "127.0.0.1" {
        return Err(format!("prod's Ingress has no published address: {lb}"));
    }
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "prod");
    wait_for(
        "prod's HPA to read its pods' CPU (ScalingActive: ValidMetricFound)",
        Duration::from_secs(120),
        || async {
            let hpa = hpas.get("customer-api").await.map_err(|e| e.to_string())?;
            let hpa = serde_json::to_value(&hpa).map_err(|e| e.to_string())?;
            let status = &hpa["status"];
            let active = status["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "ScalingActive"))
                .cloned()
                .unwrap_or_default();
            let cpu = &status["currentMetrics"][0]["resource"]["current"]["averageUtilization"];
            if active["status"] == "True" && active["reason"] == "ValidMetricFound" && cpu.is_u64()
            {
                Ok(true)
            } else {
                Err(format!(
                    "ScalingActive {} {}: {}; current CPU {cpu}",
                    active["status"], active["reason"], active["message"]
                ))
            }
        },
    )
    .await
}

/// A small xorshift generator: kill moments that differ per run, printed so a failure can be
/// replayed with PLATFORMCTL_TEST_KILL_SEED.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The examples/microservices platform: four services with blue-green Rollouts (the
/// controller owns each active and preview Service's selector) and HPAs in both environments,
/// up from nothing to Synced and Healthy, a second up changes nothing, status, down.
/// The microservices platform runs for real: its pods are the service processes, scraped by
/// the real Prometheus (every 2 s), so `validate` can check all of it.
fn microservices() -> TestResult {
    let s = Setup::new(
        "sim-up-micro",
        "workloads,rollouts,argocd,metrics,monitoring",
        "examples/microservices/platform.yaml",
        Gitops::Remote("microservices"),
        |p| {
            p["addons"]["kubePrometheusStack"]["values"] = serde_yaml::from_str(
                "prometheus: {prometheusSpec: {scrapeInterval: 2s, evaluationInterval: 2s}}",
            )
            .expect("valid YAML");
            crate::blue_green::short_analysis(p);
        },
    )?;
    let (runtime, client, project) = (&s.runtime, &s.client, &s.project);
    let first = project.must(&["up", "-o", "json", "--timeout", "3m"])?;
    eprintln!(
        "microservices: up from nothing: {:.1} s",
        first.took.as_secs_f64()
    );
    if first.json["status"] != "Applied" {
        return Err(format!("first up: {}", first.json));
    }
    runtime.block_on(all_ready(client, "microservices", 8))?;
    let before = runtime.block_on(fingerprint(client, project))?;
    let again = project.must(&["up", "-o", "json"])?;
    if again.json["status"] != "Converged" {
        return Err(format!("a second up changed something: {}", again.json));
    }
    let after = runtime.block_on(fingerprint(client, project))?;
    if before != after {
        return Err(format!(
            "a second up changed objects: {before:?} -> {after:?}"
        ));
    }
    status_is_healthy(project, 2, 8)?;
    runtime.block_on(crate::operate::microservices_validate_passes(
        client, project,
    ))?;
    let repo = format!(
        "git://127.0.0.1:{}/microservices.git",
        s.cluster.port_base + 14
    );
    crate::blue_green::blue_green(&s, &repo)?;
    down_and_check(runtime, client, project, "microservices")
}

/// The ValidatingWebhookConfiguration the ingress-nginx chart renders, made without Helm.
async fn made_by_hand(client: &Client) -> TestResult {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    let hook: ValidatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "ingress-nginx-admission"},
        "webhooks": [{
            "name": "validate.nginx.ingress.kubernetes.io",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "objectSelector": {"matchLabels": {"platformctl.dev/stand-in-webhook": "never"}},
            "clientConfig": {"service": {"namespace": "ingress-nginx", "name": "ingress-nginx-controller-admission"}},
        }],
    }))
    .map_err(|e| e.to_string())?;
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&Default::default(), &hook)
        .await
        .map(|_| ())
        .map_err(|e| format!("creating the webhook configuration by hand: {e}"))
}

fn end_to_end() -> TestResult {
    let s = Setup::new(
        "sim-up",
        WITH,
        "platform.yaml",
        Gitops::Remote("customer-platform"),
        |_| {},
    )?;
    let (runtime, client, project) = (&s.runtime, &s.client, &s.project);

    // 0. A server dry run on the fresh cluster: every object the API server can check is sent
    // with dryRun (the Argo CD objects into the harness's argocd namespace); what needs a
    // namespace or a CRD that a real run would make first is reported unchecked, and nothing
    // is left behind.
    let dry = project.must(&["up", "--dry-run=server", "-o", "json"])?;
    let unchecked: Vec<String> = dry.json["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["changes"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c.as_str().map(str::to_string))
        .filter(|c| c.contains("not checked"))
        .collect();
    let sent_apps = steps_of(&dry)
        .iter()
        .find(|(n, _, _)| n == "apps")
        .map_or(0, |s| s.2);
    if !unchecked
        .iter()
        .any(|c| c.contains("namespace `prod` does not exist yet"))
        || sent_apps != 4
    {
        return Err(format!(
            "up --dry-run=server on a fresh cluster: {}",
            dry.json
        ));
    }
    let left = runtime.block_on(fingerprint(client, project))?;
    if !left.is_empty() {
        return Err(format!("the server dry run left: {left:?}"));
    }

    // 0b. An object of an addon's chart that someone else made (the admission webhook
    // configuration of ingress-nginx, created here without Helm's metadata): up stops at the
    // addons step, naming it, its owner and the two ways out (exit 2).
    runtime.block_on(made_by_hand(client))?;
    let refused = project.run(&["up", "-o", "json", "--timeout", "3m"])?;
    let said = "ValidatingWebhookConfiguration `ingress-nginx-admission` already exists in the cluster, made by something other than Helm (it has no Helm ownership metadata): release `ingress-nginx` cannot install it";
    if refused.code != Some(2)
        || refused.json["message"] != "step `addons` failed"
        || refused.json["causes"][0] != said
        || !refused.json["hint"].as_str().is_some_and(|h| {
            h.contains("`platformctl up --adopt`")
                && h.contains("meta.helm.sh/release-name=ingress-nginx")
                && h.contains("`addons.ingressNginx.enabled: false`")
        })
    {
        return Err(format!(
            "up over an object made by hand: exit {:?}: {}\n{}",
            refused.code, refused.json, refused.stderr
        ));
    }

    // 1. To Synced and Healthy, adopting that object into its release.
    let first = project.must(&["up", "-o", "json", "--timeout", "3m", "--adopt"])?;
    eprintln!("up after the refusal: {:.1} s", first.took.as_secs_f64());
    if first.json["status"] != "Applied" {
        return Err(format!("first up: status {}", first.json["status"]));
    }
    let steps = steps_of(&first);
    let names: Vec<&str> = steps.iter().map(|(n, _, _)| n.as_str()).collect();
    if names
        != [
            "preflight",
            "cluster",
            "namespaces",
            "secrets",
            "addons",
            "images",
            "gitops",
            "apps",
            "wait",
        ]
    {
        return Err(format!("steps: {names:?}"));
    }
    let addons = steps
        .iter()
        .find(|(n, _, _)| n == "addons")
        .map_or(0, |s| s.2);
    let addons_step = first.json["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "addons"))
        .cloned()
        .unwrap_or_default();
    // The refused up installed the five other releases before it stopped: this one adopts the
    // object and installs the sixth.
    let adopted = addons_step["changes"]
        == serde_json::json!([
            "ValidatingWebhookConfiguration `ingress-nginx-admission` adopted into release `ingress-nginx`; it was made by something other than Helm (it has no Helm ownership metadata)",
            "release `ingress-nginx` (ingress-nginx 4.14.1) installed",
        ]);
    // Before the gitops step, the addons served: every workload available, ingress-nginx's
    // webhook backed by a ready endpoint, the metrics APIService Available.
    let serving = addons_step["detail"].as_str().is_some_and(|d| {
        d.starts_with("6 releases, 2 changed") && d.ends_with(", 1 webhook, 1 APIService serving")
    });
    if !adopted || !serving {
        return Err(format!("the addons step: {addons_step}"));
    }
    if addons != 2 {
        return Err(format!(
            "expected one adoption and one release installed, got {addons} changes: {}",
            first.json
        ));
    }
    runtime.block_on(all_ready(client, "customer-platform", 2))?;
    runtime.block_on(prod_ingress_and_hpa(client))?;

    // 2. Again: nothing changes, nothing is reported changed.
    let before = runtime.block_on(fingerprint(client, project))?;
    let again = project.must(&["up", "-o", "json"])?;
    eprintln!("no-op up: {:.2} s", again.took.as_secs_f64());
    if again.json["status"] != "Converged"
        || steps_of(&again)
            .iter()
            .any(|(_, status, changes)| status == "changed" || *changes > 0)
    {
        return Err(format!("a second up changed something: {}", again.json));
    }
    let after = runtime.block_on(fingerprint(client, project))?;
    if before != after {
        let diff: Vec<String> = before
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: {v} -> {:?}", after.get(k)))
            .collect();
        return Err(format!("a second up changed objects: {diff:?}"));
    }
    if before
        .keys()
        .filter(|k| k.starts_with("HelmRelease"))
        .count()
        != 6
    {
        return Err(format!("expected 6 Helm releases: {before:?}"));
    }

    // 3. status says the same.
    status_is_healthy(project, 2, 2)?;

    // 4. down --keep-cluster removes it all (Argo CD prunes what the applications deployed).
    down_and_check(runtime, client, project, "customer-platform")?;

    // 5. Killed at random moments, 20 times; then up converges, and once more changes nothing.
    let seed = std::env::var("PLATFORMCTL_TEST_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("kill test: seed {seed} (PLATFORMCTL_TEST_KILL_SEED replays it)");
    let mut rng = Rng(seed);
    // Each killed run starts where the previous one left off (nothing is reset between kills),
    // so every kill lands on a partly converged platform. A run that finishes before its kill
    // moment ends that chain: `down` resets to nothing. After every fifth kill, `up` must run to
    // the end, the platform must be Synced and Healthy, and one more `up` must change nothing;
    // then `down` resets for the next five.
    let window = first.took.max(Duration::from_millis(500)).as_millis() as u64;
    let stderr_file = project.dir.path().join("killed-up.stderr");
    let (mut kills, mut attempts, mut chain) = (0, 0, 0u64);
    while kills < 20 {
        attempts += 1;
        if attempts > 60 {
            return Err(format!("only {kills} of 60 runs could be killed mid-way"));
        }
        // Each run in a chain has less left to do than the one before: the window shrinks.
        let at = Duration::from_millis(rng.next() % (window / (chain + 1)).max(100));
        let mut child = project
            .command(&["up", "--timeout", "5m"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_file).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| e.to_string())?;
        std::thread::sleep(at);
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if !status.success() {
                return Err(format!(
                    "an up after {kills} kills failed ({status}):\n{}",
                    std::fs::read_to_string(&stderr_file).unwrap_or_default()
                ));
            }
            eprintln!("kill test: up finished before {at:?}; resetting with down");
            down_and_check(runtime, client, project, "customer-platform")?;
            chain = 0;
            continue;
        }
        child.kill().map_err(|e| e.to_string())?; // SIGKILL
        child.wait().map_err(|e| e.to_string())?;
        kills += 1;
        chain += 1;
        eprintln!("kill {kills}: SIGKILL at {at:?}");
        if kills % 5 == 0 {
            let resumed = project.must(&["up", "-o", "json", "--timeout", "5m"])?;
            runtime.block_on(all_ready(client, "customer-platform", 2))?;
            let converged = project.must(&["up", "-o", "json"])?;
            if converged.json["status"] != "Converged" {
                return Err(format!(
                    "up after {kills} kills did not converge: {}",
                    converged.json
                ));
            }
            eprintln!(
                "kill test: after {kills} kills up converged in {:.1} s",
                resumed.took.as_secs_f64()
            );
            if kills < 20 {
                down_and_check(runtime, client, project, "customer-platform")?;
                chain = 0;
            }
        }
    }

    // 6. And down --keep-cluster again leaves nothing behind.
    down_and_check(runtime, client, project, "customer-platform")
}
