//! One pod's life, as the kubelet leads it (pkg/kubelet: `syncPod`, the prober, the status
//! manager): an IP, init containers one after another to completion, then every container as a
//! process; probes decide readiness and liveness; an exited or unhealthy container restarts per
//! `restartPolicy` with the kubelet's back-off (10 s doubling to 5 min, `CrashLoopBackOff` while
//! waiting); a deletion sends SIGTERM, waits up to the grace period, sends SIGKILL, and only then
//! removes the pod object (grace 0, with the pod's UID as precondition). The status written is
//! derived from the containers' state every time, and written only when it changed.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::config::{Config, Image};
use crate::env::{self, Sources};
use crate::hosts::Hosts;
use crate::ipam::Pool;
use crate::net::Net;
use crate::probe::{self, Tracker};
use crate::process::{self, Spec};
use crate::volumes::Volumes;

pub struct Ctx {
    pub client: Client,
    pub config: Config,
    pub hosts: Hosts,
    pub pool: Mutex<Pool>,
    pub net: Net,
}

pub enum Update {
    Pod(Box<Pod>),
    /// The object is gone (a force delete, or the end of a graceful one).
    Gone,
}

const TICK: Duration = Duration::from_millis(100);
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A back-off entry older than this is forgotten (the kubelet's `2 * MaxContainerBackOff`).
const BACKOFF_RESET: Duration = Duration::from_secs(600);

fn now_rfc3339() -> String {
    rfc3339(Timestamp::now())
}

/// RFC 3339 in whole seconds, as the API server stores times.
fn rfc3339(t: Timestamp) -> String {
    format!("{t:.0}")
}

#[derive(Clone)]
struct Terminated {
    exit_code: i32,
    signal: Option<i32>,
    reason: String,
    started_at: String,
    finished_at: String,
    container_id: String,
}

enum State {
    Waiting {
        reason: String,
        message: String,
        until: Option<Instant>,
    },
    Running {
        child: tokio::process::Child,
        pid: u32,
        started_at: String,
        id: String,
    },
    Terminated(Terminated),
}

struct Ctr {
    spec: Container,
    image: Image,
    tag: String,
    init: bool,
    state: State,
    restarts: i32,
    last: Option<Terminated>,
    /// (last restart, current back-off).
    backoff: Option<(Instant, Duration)>,
    readiness: Option<Tracker>,
    liveness: Option<Tracker>,
    startup: Option<Tracker>,
    /// SIGTERM sent at … (a liveness kill or the pod's deletion); SIGKILL after the grace.
    stopping: Option<(Instant, Duration)>,
    runs: u32,
}

impl Ctr {
    fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    fn ready(&self) -> bool {
        self.running()
            && self.startup.as_ref().is_none_or(|t| t.ok)
            && self.readiness.as_ref().is_none_or(|t| t.ok)
    }

    fn succeeded(&self) -> bool {
        matches!(&self.state, State::Terminated(t) if t.exit_code == 0)
    }
}

struct Condition {
    status: bool,
    since: String,
    reason: Option<String>,
    message: Option<String>,
}

pub struct Supervisor {
    ctx: Arc<Ctx>,
    pods: Api<Pod>,
    pod: Pod,
    name: String,
    ns: String,
    uid: String,
    ip: Ipv4Addr,
    hosts_file: PathBuf,
    resolv_file: PathBuf,
    log_dir: PathBuf,
    root_dir: PathBuf,
    volumes: Volumes,
    /// Volumes written (else why not, and when to try again).
    volumes_ready: Result<Instant, (String, Instant)>,
    containers: Vec<Ctr>,
    conditions: BTreeMap<&'static str, Condition>,
    start_time: String,
    written: Option<Value>,
    deleting: bool,
    /// When this runner first saw the pod (bound to its node): the log says how long its first
    /// process took from there.
    seen: Option<Instant>,
}

/// What this runner runs: a pod on one of its nodes with a known image in every container.
pub fn runs(config: &Config, pod: &Pod) -> bool {
    let Some(spec) = &pod.spec else { return false };
    let on_node = spec
        .node_name
        .as_ref()
        .is_some_and(|n| config.nodes.contains(n));
    let images = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .all(|c| config.runnable(c).is_some());
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    on_node && images && !finished
}

impl Supervisor {
    pub fn new(ctx: Arc<Ctx>, pod: Pod) -> Option<Supervisor> {
        let name = pod.metadata.name.clone()?;
        let ns = pod.metadata.namespace.clone()?;
        let uid = pod.metadata.uid.clone()?;
        let spec = pod.spec.clone()?;
        let node = spec.node_name.clone()?;
        // An address it already had (this runner restarted), else a new one.
        let base = ctx.config.pod_network.base.octets();
        let had = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
            .filter(|ip| ip.octets()[..2] == base[..2]);
        let ip = {
            let mut pool = ctx.pool.lock().expect("pool");
            match had {
                Some(ip) => {
                    pool.claim(ip);
                    ip
                }
                None => pool.allocate(&node)?,
            }
        };
        let previous: BTreeMap<String, i32> = pod
            .status
            .iter()
            .flat_map(|s| {
                s.container_statuses
                    .iter()
                    .flatten()
                    .chain(s.init_container_statuses.iter().flatten())
            })
            .map(|s| {
                (
                    s.name.clone(),
                    s.restart_count
                        + i32::from(s.state.as_ref().is_some_and(|st| st.running.is_some())),
                )
            })
            .collect();
        let containers = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| (c, true))
            .chain(spec.containers.iter().map(|c| (c, false)))
            .filter_map(|(c, init)| {
                let (image, tag) = ctx.config.runnable(c)?;
                Some(Ctr {
                    spec: c.clone(),
                    image: image.clone(),
                    tag,
                    init,
                    state: State::Waiting {
                        reason: if init {
                            "PodInitializing"
                        } else {
                            "ContainerCreating"
                        }
                        .into(),
                        message: String::new(),
                        until: None,
                    },
                    restarts: previous.get(&c.name).copied().unwrap_or(0),
                    last: None,
                    backoff: None,
                    readiness: None,
                    liveness: None,
                    startup: None,
                    stopping: None,
                    runs: 0,
                })
            })
            .collect();
        let dir = ctx
            .config
            .state
            .join("pods")
            .join(format!("{ns}_{name}_{uid}"));
        let now = now_rfc3339();
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| rfc3339(t.0))
            .unwrap_or_else(|| now.clone());
        let mut conditions = BTreeMap::new();
        for (t, s) in [
            ("PodReadyToStartContainers", true),
            ("Initialized", false),
            ("ContainersReady", false),
            ("Ready", false),
        ] {
            conditions.insert(
                t,
                Condition {
                    status: s,
                    since: now.clone(),
                    reason: None,
                    message: None,
                },
            );
        }
        Some(Supervisor {
            pods: Api::namespaced(ctx.client.clone(), &ns),
            hosts_file: dir.join("etc-hosts"),
            resolv_file: dir.join("resolv.conf"),
            log_dir: dir.join("logs"),
            root_dir: dir.join("rootfs"),
            volumes: Volumes::new(ctx.client.clone(), dir.join("volumes")),
            volumes_ready: Err((String::new(), Instant::now())),
            ctx,
            pod,
            name,
            ns,
            uid,
            ip,
            containers,
            conditions,
            start_time,
            written: None,
            deleting: false,
            seen: Some(Instant::now()),
        })
    }

    pub async fn run(mut self, mut updates: mpsc::UnboundedReceiver<Update>) {
        if let Err(e) = self.prepare().await {
            eprintln!("sim-kubelet: pod {}/{}: {e:#}", self.ns, self.name);
        }
        // The containers start at once; the port-forwards come after (nothing waits on them).
        let done = self.step().await;
        if let Err(e) = self.port_forwards().await {
            eprintln!(
                "sim-kubelet: pod {}/{}: port-forwards: {e:#}",
                self.ns, self.name
            );
        }
        let mut done = done;
        while !done {
            tokio::select! {
                u = updates.recv() => match u {
                    Some(Update::Pod(p)) => {
                        if p.metadata.deletion_timestamp.is_some() && !self.deleting {
                            self.begin_deletion(&p);
                        }
                        self.pod = *p;
                    }
                    Some(Update::Gone) | None => {
                        self.kill_all().await;
                        break;
                    }
                },
                _ = tokio::time::sleep(TICK) => {}
            }
            done = self.step().await;
        }
        self.ctx.hosts.unregister_pod(&self.hosts_file);
        self.ctx.net.detach(&self.uid).await;
        let _ = std::fs::remove_dir_all(&self.root_dir);
        self.ctx.pool.lock().expect("pool").release(self.ip);
    }

    async fn prepare(&mut self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.log_dir)?;
        self.ctx.net.attach(&self.uid, self.ip).await?;
        std::fs::write(
            &self.resolv_file,
            format!(
                "# No cluster DNS here: names come from /etc/hosts (tests/sim/kubelet).\nnameserver {}\noptions timeout:1 attempts:1\n",
                self.ctx.config.resolver
            ),
        )?;
        let spec = self.pod.spec.as_ref();
        let hostname = spec
            .and_then(|s| s.hostname.clone())
            .unwrap_or_else(|| self.name.clone());
        self.ctx
            .hosts
            .register_pod(&self.hosts_file, &self.ns, IpAddr::V4(self.ip), &hostname);
        Ok(())
    }

    /// kwok answers the API server's port-forwards to this pod: to its address, port by port.
    async fn port_forwards(&self) -> anyhow::Result<()> {
        let ports: Vec<i32> = self
            .containers
            .iter()
            .flat_map(|c| c.spec.ports.iter().flatten().map(|p| p.container_port))
            .collect();
        if ports.is_empty() {
            return Ok(());
        }
        let gvk = GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "PortForward");
        let ar = ApiResource::from_gvk_with_plural(&gvk, "portforwards");
        let api: Api<DynamicObject> = Api::namespaced_with(self.ctx.client.clone(), &self.ns, &ar);
        let forwards: Vec<Value> = ports
            .iter()
            .map(|p| json!({"ports": [p], "target": {"address": self.ip.to_string(), "port": p}}))
            .collect();
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "PortForward",
            "metadata": {
                "name": self.name,
                "namespace": self.ns,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid}],
            },
            "spec": {"forwards": forwards},
        }))?;
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                api.patch(
                    &self.name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": obj.data["spec"]})),
                )
                .await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn grace(&self) -> Duration {
        let secs = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        Duration::from_secs(secs.max(0) as u64)
    }

    fn begin_deletion(&mut self, pod: &Pod) {
        self.deleting = true;
        self.pod.metadata.deletion_grace_period_seconds =
            pod.metadata.deletion_grace_period_seconds;
        let grace = self.grace();
        let now = Instant::now();
        for c in &mut self.containers {
            if let State::Running { pid, .. } = c.state
                && c.stopping.is_none()
            {
                process::signal(pid, libc::SIGTERM);
                c.stopping = Some((now, grace));
            }
        }
    }

    async fn kill_all(&mut self) {
        for c in &mut self.containers {
            if let State::Running { child, pid, .. } = &mut c.state {
                process::signal(*pid, libc::SIGKILL);
                let _ = child.wait().await;
            }
        }
    }

    /// One pass; true when the pod is done with.
    async fn step(&mut self) -> bool {
        let now = Instant::now();
        self.reap(now);
        if self.deleting {
            for c in &mut self.containers {
                if let (State::Running { pid, .. }, Some((since, grace))) = (&c.state, c.stopping)
                    && now >= since + grace
                {
                    process::signal(*pid, libc::SIGKILL);
                }
            }
            if !self.containers.iter().any(Ctr::running) {
                self.write_status().await;
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(self.uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                if let Err(e) = self.pods.delete(&self.name, &params).await
                    && !matches!(&e, kube::Error::Api(a) if a.code == 404 || a.code == 409)
                {
                    eprintln!(
                        "sim-kubelet: cannot delete pod {}/{}: {e}",
                        self.ns, self.name
                    );
                    return false;
                }
                return true;
            }
        } else {
            self.start_due(now).await;
            self.probe_due(now).await;
        }
        self.write_status().await;
        false
    }

    /// Collects exited processes and decides what follows (restart, back-off, done).
    fn reap(&mut self, now: Instant) {
        let policy = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into());
        let deleting = self.deleting;
        for c in &mut self.containers {
            let State::Running {
                child,
                started_at,
                id,
                ..
            } = &mut c.state
            else {
                continue;
            };
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            use std::os::unix::process::ExitStatusExt;
            let signal = status.signal();
            let exit_code = status.code().unwrap_or(128 + signal.unwrap_or(0));
            let t = Terminated {
                exit_code,
                signal,
                reason: if exit_code == 0 { "Completed" } else { "Error" }.into(),
                started_at: started_at.clone(),
                finished_at: now_rfc3339(),
                container_id: id.clone(),
            };
            c.stopping = None;
            c.readiness = None;
            c.liveness = None;
            c.startup = None;
            let restart = !deleting
                && match (policy.as_str(), c.init) {
                    (_, true) => exit_code != 0 && policy != "Never",
                    ("Always", false) => true,
                    ("OnFailure", false) => exit_code != 0,
                    _ => false,
                };
            if !restart {
                c.state = State::Terminated(t);
                continue;
            }
            // pkg/kubelet/kuberuntime: in back-off while less than the back-off has passed
            // since the last restart.
            let until = match c.backoff {
                Some((last, d)) if now.duration_since(last) < d => Some(last + d),
                _ => None,
            };
            c.last = Some(t.clone());
            c.state = match until {
                Some(until) => State::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!(
                        "back-off {}s restarting failed container={} pod={}_{}({})",
                        c.backoff.map_or(0, |(_, d)| d.as_secs()),
                        c.spec.name,
                        self.name,
                        self.ns,
                        self.uid
                    ),
                    until: Some(until),
                },
                None => State::Waiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                    until: None,
                },
            };
        }
    }

    /// Writes the volumes before the first container starts, retried every 2 s while a source
    /// is missing (FailedMount), and again every 10 s (configMap and secret changes reach
    /// running containers, as the kubelet's sync does).
    async fn sync_volumes(&mut self, now: Instant) {
        let due = match &self.volumes_ready {
            Ok(at) => now.duration_since(*at) >= Duration::from_secs(10),
            Err((_, at)) => now >= *at,
        };
        if !due {
            return;
        }
        match self.volumes.write(&self.pod).await {
            Ok(()) => self.volumes_ready = Ok(now),
            Err(e) => {
                if self.volumes_ready.is_err() {
                    self.volumes_ready = Err((format!("{e:#}"), now + Duration::from_secs(2)));
                } else {
                    eprintln!("sim-kubelet: pod {}/{}: {e:#}", self.ns, self.name);
                    self.volumes_ready = Ok(now);
                }
            }
        }
    }

    async fn start_due(&mut self, now: Instant) {
        self.sync_volumes(now).await;
        if let Err((why, _)) = &self.volumes_ready {
            let why = why.clone();
            for c in &mut self.containers {
                if let State::Waiting { message, .. } = &mut c.state {
                    *message = why.clone();
                }
            }
            return;
        }
        // Init containers one at a time, in order; the others once every init one succeeded.
        let inits_done = self
            .containers
            .iter()
            .filter(|c| c.init)
            .all(Ctr::succeeded);
        let first_pending_init = self
            .containers
            .iter()
            .position(|c| c.init && !c.succeeded());
        self.set_condition("Initialized", inits_done, None, None);
        for i in 0..self.containers.len() {
            let c = &self.containers[i];
            let eligible = if c.init {
                Some(i) == first_pending_init
            } else {
                inits_done
            };
            let due = match &c.state {
                State::Waiting { until, .. } => until.is_none_or(|u| now >= u),
                _ => false,
            };
            if eligible && due {
                self.start(i, now).await;
            }
        }
    }

    async fn sources(&self, container: &Container) -> Sources {
        let (cms, secrets) = env::references(container);
        let mut s = Sources::default();
        let cm_api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        for name in cms {
            if let Ok(Some(cm)) = cm_api.get_opt(&name).await {
                s.config_maps.insert(name, cm.data.unwrap_or_default());
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &self.ns);
        for name in secrets {
            if let Ok(Some(secret)) = secret_api.get_opt(&name).await {
                let mut data: BTreeMap<String, String> = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect();
                data.extend(secret.string_data.unwrap_or_default());
                s.secrets.insert(name, data);
            }
        }
        s
    }

    async fn start(&mut self, i: usize, now: Instant) {
        let container = self.containers[i].spec.clone();
        let sources = self.sources(&container).await;
        let c = &self.containers[i];
        let ip = self.ip.to_string();
        let mut base: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("HOSTNAME".into(), self.name.clone()),
            (
                "KUBERNETES_SERVICE_HOST".into(),
                self.ctx.config.pod_network.gateway.to_string(),
            ),
            (
                "KUBERNETES_SERVICE_PORT".into(),
                self.ctx.config.api_port.to_string(),
            ),
            (
                "KUBERNETES_SERVICE_PORT_HTTPS".into(),
                self.ctx.config.api_port.to_string(),
            ),
        ];
        let pod_ip = [("POD_IP".to_string(), ip.clone())];
        for (k, v) in &c.image.env {
            base.push((k.clone(), env::expand(v, &pod_ip)));
        }
        if let Some(var) = &c.image.version_env {
            base.push((var.clone(), c.tag.clone()));
        }
        let vars = match env::resolve(&self.pod, &ip, &container, &base, &sources) {
            Ok(v) => v,
            Err(e) => {
                self.containers[i].state = State::Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message: e.0,
                    until: Some(now + Duration::from_secs(2)),
                };
                return;
            }
        };
        // The container's command replaces the image's entrypoint (and drops its CMD); its args
        // replace the CMD. Both expand $(VAR) against the container's environment.
        let mut argv: Vec<String> = match (&container.command, &container.args) {
            (Some(cmd), Some(args)) if !cmd.is_empty() => cmd.iter().chain(args).cloned().collect(),
            (Some(cmd), _) if !cmd.is_empty() => cmd.clone(),
            (_, Some(args)) => c.image.entrypoint.iter().chain(args).cloned().collect(),
            _ => c
                .image
                .entrypoint
                .iter()
                .chain(&c.image.cmd)
                .cloned()
                .collect(),
        };
        for a in &mut argv {
            *a = env::expand(a, &vars);
        }
        let c = &mut self.containers[i];
        c.runs += 1;
        let Some((program, args)) = argv.split_first() else {
            c.state = State::Waiting {
                reason: "RunContainerError".into(),
                message: "no command to run".into(),
                until: Some(now + BACKOFF_START),
            };
            return;
        };
        let spec = Spec {
            program: program.clone(),
            args: args.to_vec(),
            env: vars,
            cwd: container.working_dir.as_ref().map(PathBuf::from),
            log: self
                .log_dir
                .join(format!("{}-{}.log", container.name, c.runs)),
            hosts: self.hosts_file.clone(),
            resolv: self.resolv_file.clone(),
            netns: self.ctx.net.path(&self.uid),
            mounts: container
                .volume_mounts
                .iter()
                .flatten()
                .map(|m| {
                    let mut host = self.volumes.path(&m.name);
                    if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                        host.push(sub);
                    }
                    (host, PathBuf::from(&m.mount_path))
                })
                .chain(
                    c.image
                        .files
                        .iter()
                        .map(|(inside, host)| (host.clone(), inside.clone())),
                )
                .collect(),
        };
        let root = self.root_dir.join(&container.name);
        // A restart counts from here on, and moves the back-off along (kubelet: backOff.Next).
        if c.last.is_some() {
            c.restarts += 1;
            let d = match c.backoff {
                Some((last, d)) if now.duration_since(last) <= BACKOFF_RESET => {
                    (d * 2).min(BACKOFF_MAX)
                }
                _ => BACKOFF_START,
            };
            c.backoff = Some((now, d));
        }
        match process::spawn(&spec, &root) {
            Ok(child) => {
                let pid = child.id().unwrap_or(0);
                if let Some(seen) = self.seen.take() {
                    eprintln!(
                        "sim-kubelet: pod {}/{}: container {} started (pid {pid}) {} ms after the pod was seen",
                        self.ns,
                        self.name,
                        container.name,
                        seen.elapsed().as_millis()
                    );
                }
                c.state = State::Running {
                    child,
                    pid,
                    started_at: now_rfc3339(),
                    id: format!(
                        "sim://{}/{}/{}-{}",
                        self.ns, self.name, container.name, c.runs
                    ),
                };
                c.readiness = container
                    .readiness_probe
                    .clone()
                    .map(|p| Tracker::new(p, now, false));
                c.liveness = container
                    .liveness_probe
                    .clone()
                    .map(|p| Tracker::new(p, now, true));
                c.startup = container
                    .startup_probe
                    .clone()
                    .map(|p| Tracker::new(p, now, false));
            }
            Err(e) => {
                c.last = Some(Terminated {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    started_at: now_rfc3339(),
                    finished_at: now_rfc3339(),
                    container_id: String::new(),
                });
                c.state = State::Waiting {
                    reason: "RunContainerError".into(),
                    message: format!("exec {program}: {e}"),
                    until: Some(now + c.backoff.map_or(BACKOFF_START, |(_, d)| d)),
                };
            }
        }
    }

    async fn probe_due(&mut self, now: Instant) {
        let ip = IpAddr::V4(self.ip);
        let grace = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        for c in &mut self.containers {
            let State::Running { pid, .. } = c.state else {
                continue;
            };
            if let Some((since, g)) = c.stopping {
                if now >= since + g {
                    process::signal(pid, libc::SIGKILL);
                }
                continue;
            }
            // Until the startup probe succeeds, the others wait (and liveness cannot kill).
            if let Some(t) = c.startup.as_mut().filter(|t| !t.ok && t.due(now)) {
                let r = probe::run(&t.probe, &c.spec, ip).await;
                t.record(now, r);
                continue;
            }
            if c.startup.as_ref().is_some_and(|t| !t.ok) {
                continue;
            }
            if let Some(t) = c.readiness.as_mut().filter(|t| t.due(now)) {
                let r = probe::run(&t.probe, &c.spec, ip).await;
                t.record(now, r);
            }
            if let Some(t) = c.liveness.as_mut().filter(|t| t.due(now)) {
                let r = probe::run(&t.probe, &c.spec, ip).await;
                if t.record(now, r) && !t.ok {
                    // Liveness failed: the kubelet kills the container and restarts it.
                    let g = t.probe.termination_grace_period_seconds.unwrap_or(grace);
                    process::signal(pid, libc::SIGTERM);
                    c.stopping = Some((now, Duration::from_secs(g.max(0) as u64)));
                }
            }
        }
    }

    fn set_condition(
        &mut self,
        kind: &'static str,
        status: bool,
        reason: Option<String>,
        message: Option<String>,
    ) {
        let c = self.conditions.entry(kind).or_insert_with(|| Condition {
            status: !status,
            since: String::new(),
            reason: None,
            message: None,
        });
        if c.status != status {
            c.status = status;
            c.since = now_rfc3339();
        }
        c.reason = reason;
        c.message = message;
    }

    fn status(&mut self) -> Value {
        let unready: Vec<String> = self
            .containers
            .iter()
            .filter(|c| !c.init && !c.ready())
            .map(|c| c.spec.name.clone())
            .collect();
        let all_ready = unready.is_empty();
        let (reason, message) = if all_ready {
            (None, None)
        } else {
            (
                Some("ContainersNotReady".to_string()),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        };
        let gates_ok = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.as_ref())
            .is_none_or(|gates| {
                gates.iter().all(|g| {
                    self.pod
                        .status
                        .iter()
                        .flat_map(|s| s.conditions.iter().flatten())
                        .any(|c| c.type_ == g.condition_type && c.status == "True")
                })
            });
        self.set_condition(
            "ContainersReady",
            all_ready,
            reason.clone(),
            message.clone(),
        );
        self.set_condition("Ready", all_ready && gates_ok, reason, message);
        let main: Vec<&Ctr> = self.containers.iter().filter(|c| !c.init).collect();
        let policy = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always");
        let terminated = main.iter().all(|c| matches!(c.state, State::Terminated(_)));
        let phase = if terminated && policy != "Always" && !main.is_empty() {
            if main.iter().all(|c| c.succeeded()) {
                "Succeeded"
            } else {
                "Failed"
            }
        } else if main
            .iter()
            .any(|c| c.running() || c.last.is_some() || matches!(c.state, State::Terminated(_)))
        {
            "Running"
        } else {
            "Pending"
        };
        let mut conditions: Vec<Value> = self
            .conditions
            .iter()
            .map(|(t, c)| {
                let mut v = json!({"type": t, "status": if c.status { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": c.since});
                if let Some(r) = &c.reason {
                    v["reason"] = json!(r);
                }
                if let Some(m) = &c.message {
                    v["message"] = json!(m);
                }
                v
            })
            .collect();
        // Conditions others own (PodScheduled, readiness gates) stay as they are.
        for c in self
            .pod
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
        {
            if !self.conditions.contains_key(c.type_.as_str()) {
                conditions.push(serde_json::to_value(c).unwrap_or(Value::Null));
            }
        }
        let statuses = |init: bool| -> Vec<Value> {
            self.containers
                .iter()
                .filter(|c| c.init == init)
                .map(|c| container_status(c, init))
                .collect()
        };
        let ip = self.ip.to_string();
        let host = self.ctx.config.host_ip.to_string();
        let mut status = json!({
            "phase": phase,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "hostIP": host,
            "hostIPs": [{"ip": host}],
            "startTime": self.start_time,
            "conditions": conditions,
            "containerStatuses": statuses(false),
        });
        let inits = statuses(true);
        if !inits.is_empty() {
            status["initContainerStatuses"] = json!(inits);
        }
        status
    }

    async fn write_status(&mut self) {
        let status = self.status();
        if self.written.as_ref() == Some(&status) {
            return;
        }
        let patch = Patch::Merge(json!({"status": status}));
        match self
            .pods
            .patch_status(&self.name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => self.written = Some(status),
            Err(kube::Error::Api(e)) if e.code == 404 => self.written = Some(status),
            Err(e) => eprintln!(
                "sim-kubelet: cannot write the status of pod {}/{}: {e}",
                self.ns, self.name
            ),
        }
    }
}

fn terminated_json(t: &Terminated) -> Value {
    let mut v = json!({
        "exitCode": t.exit_code,
        "reason": t.reason,
        "startedAt": t.started_at,
        "finishedAt": t.finished_at,
        "containerID": t.container_id,
    });
    if let Some(s) = t.signal {
        v["signal"] = json!(s);
    }
    v
}

fn container_status(c: &Ctr, init: bool) -> Value {
    let (state, id) = match &c.state {
        State::Waiting {
            reason, message, ..
        } => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            (
                json!({"waiting": w}),
                c.last.as_ref().map(|t| t.container_id.clone()),
            )
        }
        State::Running { started_at, id, .. } => (
            json!({"running": {"startedAt": started_at}}),
            Some(id.clone()),
        ),
        State::Terminated(t) => (
            json!({"terminated": terminated_json(t)}),
            Some(t.container_id.clone()),
        ),
    };
    let image = c.spec.image.clone().unwrap_or_default();
    let mut v = json!({
        "name": c.spec.name,
        "image": image,
        "imageID": format!("sim://{image}"),
        "ready": if init { c.succeeded() } else { c.ready() },
        "restartCount": c.restarts,
        "started": c.running() && c.startup.as_ref().is_none_or(|t| t.ok),
        "state": state,
        "lastState": c.last.as_ref().map_or(json!({}), |t| json!({"terminated": terminated_json(t)})),
    });
    if let Some(id) = id.filter(|i| !i.is_empty()) {
        v["containerID"] = json!(id);
    }
    v
}
