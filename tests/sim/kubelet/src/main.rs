//! sim-kubelet: the simulated cluster's stand-in for a kubelet and its container runtime, the one
//! piece of `tests/sim/cluster` that is not the real component (no container runtime can run on
//! these machines). kwok plays the nodes and every other pod's status; this runner takes the
//! pods whose every container has an image it knows (the reference services, and what
//! `tests/sim/cluster` adds) and runs each container as the real program, as one OS process, in
//! the pod's own network namespace on the cluster's pod network — see `pod` for the life it
//! leads, `net` for its network, `process` for what it shares with the host, `hosts` for the
//! cluster names it gives processes. It also relays the pod network's gateway, at the API
//! server's port, to the API server (the `kubernetes` Service of a real cluster).
//!
//!   sim-kubelet --kubeconfig FILE --config FILE
//!
//! It runs until SIGTERM or SIGINT, then kills what it started (the processes also die with it
//! if it is killed).

mod config;
mod env;
mod hosts;
mod ipam;
mod net;
mod pod;
mod probe;
mod process;
mod volumes;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;

use pod::{Ctx, Supervisor, Update};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut kubeconfig, mut config) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--kubeconfig" => kubeconfig = args.next().map(PathBuf::from),
            "--config" => config = args.next().map(PathBuf::from),
            _ => {
                anyhow::bail!("usage: sim-kubelet --kubeconfig FILE --config FILE (unknown {a:?})")
            }
        }
    }
    let (Some(kubeconfig), Some(config)) = (kubeconfig, config) else {
        anyhow::bail!("usage: sim-kubelet --kubeconfig FILE --config FILE");
    };
    let config = config::Config::read(&config)?;
    // One thread: the processes are started from it, and PR_SET_PDEATHSIG follows the thread
    // that started a process, not the whole runner.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(kubeconfig, config))
}

async fn run(kubeconfig: PathBuf, config: config::Config) -> anyhow::Result<()> {
    let kc = Kubeconfig::read_from(&kubeconfig)
        .with_context(|| format!("cannot read {}", kubeconfig.display()))?;
    let client_config =
        kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    let client = kube::Client::try_from(client_config)?;
    let hosts = hosts::Hosts::new(config.state.join("hosts"))?;
    let net = net::Net {
        prefix: config.pod_network.netns_prefix.clone(),
        bridge: config.pod_network.bridge.clone(),
        prefix_len: 16,
    };
    let relay = tokio::net::TcpListener::bind((config.pod_network.gateway, config.api_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (the API server relay)",
                config.pod_network.gateway, config.api_port
            )
        })?;
    tokio::spawn(relay_to((config.api_host, config.api_port), relay));
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        pool: Mutex::new(ipam::Pool::new(config.pod_network.base, &config.nodes)),
        config,
        hosts,
        net,
    });
    eprintln!(
        "sim-kubelet: running pods of {:?} on {:?}",
        ctx.config.images.keys().collect::<Vec<_>>(),
        ctx.config.nodes
    );

    let services = watcher::watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let slices = watcher::watcher(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default(),
    );
    let pods = watcher::watcher(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields("spec.nodeName!="),
    );
    let mut services = std::pin::pin!(services);
    let mut slices = std::pin::pin!(slices);
    let mut pods = std::pin::pin!(pods);

    let mut running: BTreeMap<String, mpsc::UnboundedSender<Update>> = BTreeMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
    let mut listed: Option<Vec<String>> = None;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            Some(uid) = done_rx.recv() => { running.remove(&uid); }
            Some(e) = services.next() => match e {
                Ok(Event::Apply(s) | Event::InitApply(s)) => ctx.hosts.service(&s, true),
                Ok(Event::Delete(s)) => ctx.hosts.service(&s, false),
                Ok(_) => {}
                Err(e) => eprintln!("sim-kubelet: watching services: {e}"),
            },
            Some(e) = slices.next() => match e {
                Ok(Event::Apply(s) | Event::InitApply(s)) => ctx.hosts.slice(&s, true),
                Ok(Event::Delete(s)) => ctx.hosts.slice(&s, false),
                Ok(_) => {}
                Err(e) => eprintln!("sim-kubelet: watching endpointslices: {e}"),
            },
            Some(e) = pods.next() => match e {
                Ok(Event::Init) => listed = Some(Vec::new()),
                Ok(Event::InitApply(p)) => {
                    if let (Some(l), Some(uid)) = (listed.as_mut(), &p.metadata.uid) {
                        l.push(uid.clone());
                    }
                    apply(&ctx, &mut running, &mut tasks, &done_tx, p).await;
                }
                Ok(Event::InitDone) => {
                    // A pod that went while the watch was down is gone.
                    if let Some(l) = listed.take() {
                        for (uid, tx) in &running {
                            if !l.contains(uid) {
                                let _ = tx.send(Update::Gone);
                            }
                        }
                    }
                }
                Ok(Event::Apply(p)) => apply(&ctx, &mut running, &mut tasks, &done_tx, p).await,
                Ok(Event::Delete(p)) => {
                    if let Some(tx) = p.metadata.uid.as_ref().and_then(|u| running.get(u)) {
                        let _ = tx.send(Update::Gone);
                    }
                }
                Err(e) => eprintln!("sim-kubelet: watching pods: {e}"),
            },
        }
    }
    eprintln!("sim-kubelet: stopping {} pod(s)", running.len());
    for tx in running.values() {
        let _ = tx.send(Update::Gone);
    }
    drop(running);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn apply(
    ctx: &Arc<Ctx>,
    running: &mut BTreeMap<String, mpsc::UnboundedSender<Update>>,
    tasks: &mut tokio::task::JoinSet<()>,
    done: &mpsc::UnboundedSender<String>,
    p: Pod,
) {
    let Some(uid) = p.metadata.uid.clone() else {
        return;
    };
    if let Some(tx) = running.get(&uid) {
        let _ = tx.send(Update::Pod(Box::new(p)));
        return;
    }
    if !pod::runs(&ctx.config, &p) {
        return;
    }
    if p.metadata.deletion_timestamp.is_some() {
        // Deleted before it ever ran here (or while this runner was down): nothing to stop.
        if let (Some(ns), Some(name)) = (&p.metadata.namespace, &p.metadata.name) {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
            let _ = api
                .delete(
                    name,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                        ..DeleteParams::default()
                    },
                )
                .await;
        }
        return;
    }
    let Some(sup) = Supervisor::new(ctx.clone(), p) else {
        eprintln!("sim-kubelet: no pod IP left for a pod, or it lacks a name, namespace or node");
        return;
    };
    let (tx, rx) = mpsc::unbounded_channel();
    running.insert(uid.clone(), tx);
    let done = done.clone();
    tasks.spawn(async move {
        sup.run(rx).await;
        let _ = done.send(uid);
    });
}

/// Every connection to `listener` is piped to `target`.
async fn relay_to(target: (std::net::Ipv4Addr, u16), listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
