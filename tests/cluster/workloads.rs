//! Pods that run (`tests/sim/cluster up --with workloads`): a pod of a reference service is the
//! real service process in a network namespace of its own with its pod IP, started by sim-kubelet
//! (the stand-in for a kubelet and its container runtime, tests/sim/kubelet) with the
//! environment the API server resolves, readiness from its probe, restarts with back-off, and
//! SIGTERM before SIGKILL. Every request below goes to the process itself, at its pod IP on the
//! harness's pod network (a bridge on this machine; see tests/sim/lib/workloads.sh).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use libtest_mimic::Trial;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{self, Namespaces, TestResult, wait_for};
use platformctl::kube::portforward::is_ready;

pub fn trials() -> Vec<Trial> {
    vec![
        crate::support::trial(
            "workload_pods_run_the_service_on_their_own_pod_ip_with_the_resolved_environment",
            || support::run(|_, client| pods_run_the_service(client)),
        ),
        crate::support::trial(
            "workload_deleted_pod_drains_and_its_replacement_turns_ready_after_its_probe",
            || support::run(|_, client| deleted_pod_drains(client)),
        ),
        crate::support::trial(
            "workload_container_that_exits_at_start_goes_into_crash_loop_back_off",
            || support::run(|_, client| crash_loop(client)),
        ),
        crate::support::trial(
            "workload_status_reports_a_crash_looping_rollout_as_not_healthy_with_the_reason",
            || support::run(status_names_the_crash_loop),
        ),
    ]
}

/// A Deployment of a reference service as the platform renders one: port `http`, probes on
/// `/readyz` and `/healthz`, configuration from a ConfigMap and a Secret.
fn service_deployment(
    name: &str,
    image: &str,
    replicas: i32,
    extra_env: serde_json::Value,
) -> Result<Deployment, String> {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": name,
                        "image": image,
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "envFrom": [{"configMapRef": {"name": format!("{name}-config")}},
                                    {"secretRef": {"name": format!("{name}-admin")}}],
                        "env": extra_env,
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1, "failureThreshold": 1},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2},
                    }],
                },
            },
        },
    }))
    .map_err(|e| e.to_string())
}

async fn create_config(
    client: &Client,
    ns: &str,
    name: &str,
    data: serde_json::Value,
) -> TestResult {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": format!("{name}-config")}, "data": data}),
    )
    .map_err(|e| e.to_string())?;
    cms.create(&PostParams::default(), &cm)
        .await
        .map_err(|e| format!("configmap: {e}"))?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-admin")}, "stringData": {"ADMIN_TOKEN": "s3cret-token"}}))
    .map_err(|e| e.to_string())?;
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| format!("secret: {e}"))?;
    Ok(())
}

async fn pods_of(pods: &Api<Pod>, app: &str) -> Result<Vec<Pod>, String> {
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/name={app}"));
    Ok(pods.list(&lp).await.map_err(|e| e.to_string())?.items)
}

fn pod_ip(p: &Pod) -> Result<IpAddr, String> {
    p.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .ok_or("pod without podIP")?
        .parse()
        .map_err(|e| format!("podIP: {e}"))
}

/// One HTTP/1.1 request to a process; (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad response {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

async fn pods_run_the_service(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "work", &["apps"]).await?;
    let result = async {
        let ns = namespaces.get("apps");
        create_config(&client, ns, "customer-api", json!({"PLATFORM_ENVIRONMENT": "staging", "PLATFORM_PORT": "8080"})).await?;
        let env = json!([
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "PLATFORM_SERVICE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app.kubernetes.io/name']"}}},
        ]);
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        deployments
            .create(&PostParams::default(), &service_deployment("customer-api", "platformctl/customer-api:0.3.0", 3, env)?)
            .await
            .map_err(|e| e.to_string())?;
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": "customer-api"}, "spec": {
            "selector": {"app.kubernetes.io/name": "customer-api"}, "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}}))
        .map_err(|e| e.to_string())?;
        services.create(&PostParams::default(), &svc).await.map_err(|e| e.to_string())?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        wait_for("3 Ready customer-api pods", Duration::from_secs(60), || async {
            Ok(pods_of(&pods, "customer-api").await?.iter().filter(|p| is_ready(p)).count() == 3)
        })
        .await?;
        let mut ips = Vec::new();
        for p in pods_of(&pods, "customer-api").await? {
            let ip = pod_ip(&p)?;
            let IpAddr::V4(v4) = ip else { return Err(format!("{ip} is not IPv4")) };
            let net = support::pod_network()?;
            if v4.octets()[..2] != net[..] || v4.octets()[2] >= 3 {
                return Err(format!("pod IP {ip} is not in a node's range of the pod network {}.{}.0.0/16", net[0], net[1]));
            }
            let addr = SocketAddr::new(ip, 8080);
            let (code, body) = http(addr, "GET", "/healthz", &[], "").await?;
            if code != 200 {
                return Err(format!("/healthz on {addr}: {code} {body}"));
            }
            // The image tag is the version; the ConfigMap (envFrom) and the downward API (env)
            // reached the process.
            let (_, metrics) = http(addr, "GET", "/metrics", &[], "").await?;
            let info = r#"app_build_info{service="customer-api",version="0.3.0",environment="staging"} 1"#;
            if !metrics.contains(info) {
                return Err(format!("{addr}/metrics lacks {info}:\n{metrics}"));
            }
            // The Secret (envFrom) gave the admin token.
            let faults = r#"{"errorRate":0,"latencyMs":0}"#;
            let (code, body) = http(addr, "PUT", "/admin/faults", &[("Authorization", "Bearer s3cret-token"), ("Content-Type", "application/json")], faults).await?;
            if code != 200 {
                return Err(format!("PUT /admin/faults with the Secret's token on {addr}: {code} {body}"));
            }
            let (code, _) = http(addr, "PUT", "/admin/faults", &[("Authorization", "Bearer wrong"), ("Content-Type", "application/json")], faults).await?;
            if code != 401 {
                return Err(format!("PUT /admin/faults with a wrong token on {addr}: {code}, want 401"));
            }
            ips.push(ip.to_string());
        }
        ips.sort();
        ips.dedup();
        if ips.len() != 3 {
            return Err(format!("3 pods share addresses: {ips:?}"));
        }
        // The Service's endpoints are the pods' own addresses (the real EndpointSlice controller).
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
        wait_for("the Service's EndpointSlice to list the 3 pod IPs as ready", Duration::from_secs(30), || async {
            let lp = ListParams::default().labels("kubernetes.io/service-name=customer-api");
            let mut ready: Vec<String> = slices.list(&lp).await.map_err(|e| e.to_string())?.items.iter()
                .flat_map(|s| s.endpoints.clone())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .flat_map(|e| e.addresses)
                .collect();
            ready.sort();
            Ok(ready == ips)
        })
        .await
    }
    .await;
    namespaces.delete().await;
    result
}

async fn deleted_pod_drains(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "drain", &["apps"]).await?;
    let result = async {
        let ns = namespaces.get("apps");
        // Every request takes 2 s; after SIGTERM the service serves on for 1.5 s, then finishes
        // what is in flight and exits.
        create_config(&client, ns, "customer-api", json!({"FAULT_LATENCY_MS": "2000", "SHUTDOWN_DELAY_MS": "1500"})).await?;
        let mut deployment = service_deployment("customer-api", "platformctl/customer-api:0.1.0", 1, json!([]))?;
        // The replacement must wait for its readiness probe: the first one comes 3 s after start.
        let container = &mut deployment.spec.as_mut().ok_or("spec")?.template.spec.as_mut().ok_or("pod spec")?.containers[0];
        if let Some(p) = container.readiness_probe.as_mut() {
            p.initial_delay_seconds = Some(3);
        }
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        deployments.create(&PostParams::default(), &deployment).await.map_err(|e| e.to_string())?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        wait_for("a Ready pod", Duration::from_secs(60), || async {
            Ok(pods_of(&pods, "customer-api").await?.iter().any(is_ready))
        })
        .await?;
        let victim = pods_of(&pods, "customer-api").await?.into_iter().find(is_ready).ok_or("no ready pod")?;
        let name = victim.metadata.name.clone().ok_or("pod without name")?;
        let addr = SocketAddr::new(pod_ip(&victim)?, 8080);
        // A request in flight when the pod is deleted.
        let in_flight = tokio::spawn(async move { http(addr, "GET", "/customers", &[], "").await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let deleted = Instant::now();
        pods.delete(&name, &DeleteParams::default()).await.map_err(|e| e.to_string())?;
        // The object stays while the process drains (SIGTERM, not SIGKILL).
        tokio::time::sleep(Duration::from_millis(800)).await;
        let during = pods.get_opt(&name).await.map_err(|e| e.to_string())?;
        if during.is_none() {
            return Err("the pod object went before its process had drained".into());
        }
        match in_flight.await.map_err(|e| e.to_string())? {
            Ok((200, _)) => {}
            other => return Err(format!("the request in flight during the deletion: {other:?}, want 200")),
        }
        wait_for(&format!("pod {name} to go once its process exited"), Duration::from_secs(30), || async {
            Ok(pods.get_opt(&name).await.map_err(|e| e.to_string())?.is_none())
        })
        .await?;
        let gone_after = deleted.elapsed();
        if gone_after < Duration::from_millis(1500) {
            return Err(format!("pod gone {gone_after:?} after the delete: before its 1.5 s shutdown delay"));
        }
        if gone_after > Duration::from_secs(25) {
            return Err(format!("pod gone {gone_after:?} after the delete: SIGKILL at the grace period, not a drain"));
        }
        // The replacement: a new process on a new address, Running but not Ready until its
        // readiness probe passes.
        let mut seen_unready_while_serving = false;
        let started = Instant::now();
        loop {
            let fresh: Vec<Pod> = pods_of(&pods, "customer-api").await?.into_iter().filter(|p| p.metadata.name.as_deref() != Some(&name)).collect();
            if let Some(p) = fresh.first() {
                if is_ready(p) {
                    break;
                }
                let running = p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()).any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
                if running
                    && let Ok(ip) = pod_ip(p)
                    && let Ok((200, _)) = http(SocketAddr::new(ip, 8080), "GET", "/healthz", &[], "").await
                {
                    seen_unready_while_serving = true;
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err("the replacement pod did not turn Ready within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !seen_unready_while_serving {
            return Err("the replacement was never seen serving while not yet Ready: readiness did not wait for the probe".into());
        }
        let fresh = pods_of(&pods, "customer-api").await?.into_iter().find(is_ready).ok_or("no ready replacement")?;
        if pod_ip(&fresh)? == addr.ip() {
            return Err(format!("the replacement got the old pod's address {}", addr.ip()));
        }
        Ok(())
    }
    .await;
    namespaces.delete().await;
    result
}

async fn crash_loop(client: Client) -> TestResult {
    let namespaces = Namespaces::create(&client, "crash", &["apps"]).await?;
    let result = async {
        let ns = namespaces.get("apps");
        // orders needs AUTH_URL (and the others): without it, it exits 2 at start.
        create_config(&client, ns, "orders", json!({})).await?;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        deployments
            .create(
                &PostParams::default(),
                &service_deployment("orders", "platformctl/orders:0.1.0", 1, json!([]))?,
            )
            .await
            .map_err(|e| e.to_string())?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        wait_for(
            "orders in CrashLoopBackOff after a restart, exit code 2",
            Duration::from_secs(60),
            || async {
                let p = pods_of(&pods, "orders").await?;
                let Some(status) = p.first().and_then(|p| p.status.as_ref()) else {
                    return Ok(false);
                };
                let Some(c) = status.container_statuses.iter().flatten().next() else {
                    return Ok(false);
                };
                let waiting = c
                    .state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref());
                let exit = c
                    .last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code);
                Ok(c.restart_count >= 1
                    && waiting == Some("CrashLoopBackOff")
                    && exit == Some(2)
                    && !c.ready)
            },
        )
        .await
    }
    .await;
    namespaces.delete().await;
    result
}

/// `platformctl status` on a platform whose dev namespace holds a Rollout of `orders` without
/// its configuration: the Rollout is not Healthy, and the row says why (the pod's crash loop).
async fn status_names_the_crash_loop(
    cluster: &'static support::Cluster,
    client: Client,
) -> TestResult {
    let namespaces = Namespaces::create(&client, "crashst", &["practice"]).await?;
    let result = async {
        let ns = namespaces.get("practice");
        create_config(&client, ns, "orders", json!({})).await?;
        let template = service_deployment("orders", "platformctl/orders:0.1.0", 1, json!([]))?;
        let mut rollout = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "orders", "namespace": ns,
                         "labels": {"argo-rollouts.argoproj.io/controller-instance-id": support::ROLLOUTS_INSTANCE_ID}},
            "spec": serde_json::to_value(template.spec).map_err(|e| e.to_string())?,
        });
        rollout["spec"]["strategy"] = json!({"canary": {"steps": [{"setWeight": 50}]}});
        let ar = kube::core::ApiResource::from_gvk_with_plural(&kube::core::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"), "rollouts");
        let api: Api<kube::core::DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        let obj: kube::core::DynamicObject = serde_json::from_value(rollout).map_err(|e| e.to_string())?;
        api.create(&PostParams::default(), &obj).await.map_err(|e| format!("rollout: {e}"))?;

        let project = tempfile::tempdir().map_err(|e| e.to_string())?;
        let platform = std::fs::read_to_string(support::repo_root().join("platform.yaml")).map_err(|e| e.to_string())?
            .replace("driver: minikube", "driver: existing")
            .replace("namespace: practice", &format!("namespace: {ns}"));
        std::fs::write(project.path().join("platform.yaml"), platform).map_err(|e| e.to_string())?;
        let helm = crate::addons::locate_helm()?;
        let last = std::cell::RefCell::new(Value::Null);
        wait_for("status to report the orders Rollout not Healthy because of its crash loop", Duration::from_secs(60), || async {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_platformctl"))
                .args(["status", "-o", "json"])
                .current_dir(project.path())
                .env("KUBECONFIG", &cluster.kubeconfig)
                .env("PLATFORMCTL_HELM", helm.binary())
                .env("NO_COLOR", "1")
                .output()
                .map_err(|e| e.to_string())?;
            let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("status -o json: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
            let row = report["rollouts"].as_array().into_iter().flatten().find(|r| r["name"] == "orders" && r["namespace"] == ns).cloned();
            *last.borrow_mut() = row.clone().unwrap_or(Value::Null);
            Ok(row.is_some_and(|r| {
                r["phase"] != "Healthy"
                    && r["message"].as_str().is_some_and(|m| m.contains("container `orders`: CrashLoopBackOff (last exit code 2"))
            }) && report["status"] == "Degraded")
        })
        .await
        .map_err(|e| format!("{e}; last row: {}", last.borrow()))
    }
    .await;
    namespaces.delete().await;
    result
}
