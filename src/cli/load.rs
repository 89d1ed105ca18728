//! `platformctl load`: an open-model load run against a URL or a platform service, judged by
//! thresholds, as text, a `LoadReport` or JUnit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use crate::exit::{Code, UsageError};
use crate::load::{self, Endpoints, Judged, Plan, Request, Run, Schedule, Summary, Threshold};
use crate::output::{Outcome, Report, Ticker};

/// Send HTTP load at a fixed arrival rate, judged by thresholds.
///
/// Requests are due at their planned times whatever the server does: arrivals never wait for
/// answers, and each latency is measured from the request's due time, so a server that stalls
/// shows its stall in the percentiles (no coordinated omission). Percentiles come from an HDR
/// histogram. Each request goes out within microseconds of its due time (the report's
/// `sendDelayUs` is the generator's own delay): the last stretch before a due time is waited
/// without sleeping, so at thousands of requests per second one core stays busy. The connection
/// pool grows while requests fall due with every connection busy, up to `--max-connections`; a
/// request still unsent `--timeout` after its due time fails.
///
/// TARGET is an http:// URL; or a service of platform.yaml with `--env`, reached through its
/// Service's ready endpoints as a client in the cluster would be (at the pods' addresses where
/// this host routes to them, else through a port-forward per pod), followed as pods come and
/// go; or the name of a `load:` entry. A `load:` entry for the service and environment gives
/// the path(s), rate, duration and thresholds, so `platformctl load customer-api --env prod`
/// needs no flags; flags override it.
///
/// Thresholds, k6's way (`--threshold` again for more): `p95<300ms` (any pN, med, avg, min,
/// max; a bare number is milliseconds), `errors<1%` (failed = no answer, or status >= 400),
/// `rate>=0.99*target` (requests per second sent within the run, against the planned rate).
///
/// Progress is a live line on a terminal only. Exits 0 when every threshold holds, 1 when one
/// fails, 2 on bad input, 3 when the target cannot be reached at all, 130 when interrupted
/// (the report covers what was sent). `--junit FILE` writes one test case per threshold.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  platformctl load customer-api --env prod
  platformctl load http://127.0.0.1:8080/ --rate 200 --duration 30s --threshold 'p95<300ms' --threshold 'errors<1%'
  platformctl load orders --env prod --stages 10s:50,1m:50,10s:0 -o json")]
pub struct Args {
    /// An http:// URL, a service of platform.yaml (with --env), or a `load:` entry's name.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// The environment whose Service is loaded.
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Requests per second (with --stages: the rate the first stage ramps from).
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// How long to send at --rate: 30s, 2m, 1m30s, 500ms.
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// Ramps instead of one rate: DURATION:RATE,… each going linearly from the rate before.
    #[arg(long, value_name = "STAGES", conflicts_with = "duration")]
    pub stages: Option<String>,
    /// A path to request (again for more, requested in turn); a service's default is its
    /// `load:` entry's, else `/`.
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
    /// A threshold such as `p95<300ms`, `errors<1%`, `rate>=0.99*target` (again for more).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Longest wait for one answer, counted from its due time.
    #[arg(long, value_name = "D", default_value = "10s")]
    pub timeout: String,
    /// Most connections open at once.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_connections: usize,
    /// How a service's endpoints are reached.
    #[arg(long, value_enum, default_value_t = Via::Auto)]
    pub via: Via,
    /// Also write the thresholds as JUnit XML here, one test case each.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: super::up::ClusterArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// The pods' addresses when this host reaches them, else port-forwards.
    Auto,
    /// The pods' own addresses.
    Endpoints,
    /// A port-forward per ready pod, through the API server.
    PortForward,
}

/// What a run is aimed at, for the report.
struct Aim {
    /// `http://127.0.0.1:8080/` or `service customer-api in prod (namespace prod)`.
    describe: String,
    json: serde_json::Value,
    _follower: Option<load::target::Follower>,
}

fn usage(message: impl Into<String>, hint: &str) -> anyhow::Error {
    UsageError::new(message).hint(hint).into()
}

pub async fn run(ctx: &super::Context<'_>, args: Args) -> anyhow::Result<Outcome> {
    let mut signals = super::Signals::install();
    let is_url = args.target.contains("://");
    let timeout = load::parse_duration(&args.timeout)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            usage(
                format!("--timeout `{}` is no duration", args.timeout),
                "like 10s or 500ms",
            )
        })?;
    let endpoints = Arc::new(Endpoints::default());
    let (entry, aim, host, paths) = if is_url {
        if args.env.is_some() {
            return Err(usage(
                "--env is for a service, not a URL",
                "give a service name with --env, or a URL alone",
            ));
        }
        let url =
            load::target::parse_url(&args.target).map_err(|e| UsageError::new(e.to_string()))?;
        let addrs = load::target::resolve(&url).await?;
        endpoints.set(addrs);
        let host = if url.port == 80 {
            url.host.clone()
        } else {
            format!("{}:{}", url.host, url.port)
        };
        let mut paths = args.paths.clone();
        if paths.is_empty() {
            paths.push(url.path.clone());
        }
        let aim = Aim {
            describe: args.target.clone(),
            json: json!({ "url": args.target }),
            _follower: None,
        };
        (None, aim, host, paths)
    } else {
        let platform = args.cluster.platform(ctx)?;
        let entry = load::spec::find(&platform, &args.target, args.env.as_deref()).cloned();
        let (service, env) = match &entry {
            Some(l) => (l.service.clone(), l.environment.clone()),
            None => {
                super::validate::check_service(&platform, &args.target)?;
                let Some(env) = args.env.clone() else {
                    return Err(usage(
                        format!("which environment of `{}`?", args.target),
                        "add --env ENV (or a `load:` entry for it in platform.yaml)",
                    ));
                };
                (args.target.clone(), env)
            }
        };
        super::validate::check_environment(&platform, Some(&env))?;
        let namespace = platform
            .environments
            .iter()
            .find(|e| e.name == env)
            .map(|e| e.namespace.clone())
            .unwrap_or_default();
        let target = crate::cluster::locate(&platform.cluster)?;
        let client = crate::kube::client_for(&target).await?;
        let ready = load::target::ready_endpoints(&client, &namespace, &service, "http").await?;
        let via = match args.via {
            Via::Endpoints => load::target::Via::Endpoints,
            Via::PortForward => load::target::Via::PortForward,
            Via::Auto => match ready.first() {
                Some(r) if load::target::reachable(r.addr).await => load::target::Via::Endpoints,
                Some(_) => load::target::Via::PortForward,
                None => load::target::Via::Endpoints,
            },
        };
        let follower = load::target::Service {
            client,
            namespace: namespace.clone(),
            name: service.clone(),
            port_name: "http".into(),
            via,
        }
        .follow(endpoints.clone())
        .await?;
        let mut paths = args.paths.clone();
        if paths.is_empty() {
            paths = match &entry {
                Some(l) => l.paths().into_iter().map(String::from).collect(),
                None => vec!["/".into()],
            };
        }
        let via_name = match via {
            load::target::Via::Endpoints => "its endpoints",
            load::target::Via::PortForward => "port-forwards to its pods",
        };
        let aim = Aim {
            describe: format!(
                "service {service} in {env} (namespace {namespace}) through {via_name}"
            ),
            json: json!({ "service": service, "environment": env, "namespace": namespace, "via": via }),
            _follower: Some(follower),
        };
        (entry, aim, format!("{service}.{namespace}.svc"), paths)
    };
    for p in &paths {
        if !p.starts_with('/') {
            return Err(usage(
                format!("--path `{p}` must start with /"),
                "like --path /orders",
            ));
        }
    }

    // The schedule: flags over the `load:` entry.
    let rate = args.rate.or(entry.as_ref().map(|l| f64::from(l.rate)));
    let stages = match (&args.stages, &args.duration) {
        (Some(s), _) => load::parse_stages(s, rate.unwrap_or(0.0))
            .map_err(|e| usage(format!("--stages: {e}"), "like --stages 10s:50,1m:50,10s:0"))?,
        (None, d) => {
            let d = d.clone().or(entry.as_ref().map(|l| l.duration.clone()));
            let (Some(rate), Some(d)) = (rate, d) else {
                return Err(usage(
                    "a run needs a rate and a duration",
                    "give --rate R --duration D (or --stages), or a `load:` entry in platform.yaml",
                ));
            };
            let duration = load::parse_duration(&d)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    usage(
                        format!("duration `{d}` is no duration"),
                        "like 30s, 2m or 1m30s",
                    )
                })?;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(usage(
                    format!("--rate {rate}: must be more than 0"),
                    "requests per second, like --rate 50",
                ));
            }
            vec![load::Stage {
                duration,
                from: rate,
                to: rate,
            }]
        }
    };
    let schedule = Schedule::new(stages);
    if schedule.total() == 0 {
        return Err(usage(
            "the run plans no request",
            "raise the rate or the duration",
        ));
    }
    let mut texts = args.thresholds.clone();
    if texts.is_empty()
        && let Some(l) = &entry
    {
        texts = load::spec::thresholds(l);
    }
    let thresholds = texts
        .iter()
        .map(|t| Threshold::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            usage(
                format!("--threshold: {e}"),
                "like 'p95<300ms', 'errors<1%', 'rate>=0.99*target'",
            )
        })?;
    if args.max_connections == 0 {
        return Err(usage(
            "--max-connections must be at least 1",
            "the default is 512",
        ));
    }
    let target_rate = schedule.target_rate();
    let window = schedule.duration();
    let plan = Plan {
        requests: paths
            .iter()
            .map(|p| Request {
                path: p.clone(),
                host: host.clone(),
            })
            .collect(),
        schedule,
        timeout,
        max_connections: args.max_connections,
    };
    ctx.printer.note(&format!(
        "load: {} at {:.1}/s for {:.1} s ({} requests) against {}",
        paths.join(", "),
        target_rate,
        window.as_secs_f64(),
        plan.schedule.total(),
        aim.describe
    ));

    let run = Run::start(plan, endpoints.clone()).context("cannot start the load run")?;
    let outcome = drive(ctx, &run, window, &mut signals).await;
    let summary = Summary::of(&outcome, target_rate);
    let judged = load::judge(&thresholds, &outcome, &summary);
    if let Some(path) = &args.junit {
        crate::junit::write(
            path,
            "platformctl load",
            summary.elapsed_seconds,
            &cases(&judged, &summary),
        )
        .with_context(|| format!("cannot write the JUnit report `{}`", path.display()))?;
    }
    if outcome.stopped {
        ctx.printer.note(&format!(
            "load: stopped after {:.1} s of {:.1} s; the report covers what was sent",
            summary.elapsed_seconds, summary.duration_seconds
        ));
        return Ok(report(&aim, &summary, &judged, Code::Interrupted));
    }
    if summary.ok == 0 && outcome.statuses.is_empty() {
        let why = outcome.errors.keys().next().cloned().unwrap_or_default();
        ctx.printer
            .note(&format!("load: no request reached {}: {why}", aim.describe));
        return Ok(report(&aim, &summary, &judged, Code::Environment));
    }
    let code = if judged.iter().all(|j| j.passed) {
        Code::Success
    } else {
        Code::CheckFailed
    };
    Ok(report(&aim, &summary, &judged, code))
}

/// Waits for the run's end with a live line on a terminal; a signal stops it early.
async fn drive(
    ctx: &super::Context<'_>,
    run: &Run,
    window: Duration,
    signals: &mut super::Signals,
) -> load::Outcome {
    let ticker = Ticker::new(ctx.printer);
    let live = run.live();
    let started = run.started();
    let mut finish = std::pin::pin!(run.clone().finish());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            outcome = &mut finish => return outcome,
            _ = tick.tick() => {
                let t = started.elapsed().min(window);
                let seconds = live.seconds();
                let last = seconds.get(t.as_secs().saturating_sub(1) as usize);
                ticker.set(format!(
                    "load {:>4.0}/{:.0} s  sent {}  failed {}  connections {}  last second: {} requests, mean {:.1} ms",
                    t.as_secs_f64(),
                    window.as_secs_f64(),
                    live.sent.load(std::sync::atomic::Ordering::Relaxed),
                    live.failed.load(std::sync::atomic::Ordering::Relaxed),
                    live.workers.load(std::sync::atomic::Ordering::Relaxed),
                    last.map_or(0, |s| s.requests),
                    last.map_or(0.0, |s| s.mean_latency_ms),
                ));
            }
            why = signals.recv() => {
                ctx.printer.note(&format!("load: {why}: no more requests; waiting for those in flight"));
                run.stop();
            }
        }
    }
}

fn cases(judged: &[Judged], s: &Summary) -> Vec<crate::junit::Case> {
    let output = format!(
        "{} requests, {} failed, {:.1}/s, p95 {:.1} ms",
        s.ok + s.failed,
        s.failed,
        s.rate,
        s.latency_ms.p95
    );
    if judged.is_empty() {
        return vec![crate::junit::Case {
            classname: "load".into(),
            name: "run (no thresholds)".into(),
            time: s.elapsed_seconds,
            outcome: crate::junit::Outcome::Passed,
            output,
        }];
    }
    judged
        .iter()
        .map(|j| crate::junit::Case {
            classname: "load.threshold".into(),
            name: j.threshold.clone(),
            time: 0.0,
            outcome: if j.passed {
                crate::junit::Outcome::Passed
            } else {
                crate::junit::Outcome::Failed(format!(
                    "{}: {} (limit {})",
                    j.threshold, j.actual, j.limit
                ))
            },
            output: format!("{}: {}; {output}", j.threshold, j.actual),
        })
        .collect()
}

fn report(aim: &Aim, s: &Summary, judged: &[Judged], code: Code) -> Outcome {
    let l = &s.latency_ms;
    let mut text = format!(
        "load {}\n  requests    {} planned, {} answered below 400, {} failed ({})\n  rate        {:.1}/s sent (target {:.1}/s), {} connections at most\n  latency     min {:.2} ms  p50 {:.2}  p90 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}  (from each due time)\n",
        aim.describe,
        s.planned,
        s.ok,
        s.failed,
        load::threshold::percent(s.error_share),
        s.rate,
        s.target_rate,
        s.peak_connections,
        l.min,
        l.p50,
        l.p90,
        l.p95,
        l.p99,
        l.max,
    );
    if !s.statuses.is_empty() {
        let st: Vec<String> = s
            .statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        text.push_str(&format!("  statuses    {}\n", st.join(", ")));
    }
    for (why, n) in &s.errors {
        text.push_str(&format!("  failed      {n} × {why}\n"));
    }
    if judged.is_empty() {
        text.push_str("no thresholds (add --threshold, or thresholds to the `load:` entry)\n");
    }
    for j in judged {
        let mark = if j.passed { "pass" } else { "FAIL" };
        text.push_str(&format!(
            "  {mark}  {:<22} {} (limit {})\n",
            j.threshold, j.actual, j.limit
        ));
    }
    let status = match code {
        Code::Success => "Passed",
        Code::Interrupted => "Interrupted",
        Code::Environment => "Unreachable",
        _ => "Failed",
    };
    Outcome {
        code,
        report: Report {
            kind: "LoadReport",
            status,
            fields: json!({ "target": aim.json, "summary": s, "thresholds": judged }),
            text,
        },
    }
}
