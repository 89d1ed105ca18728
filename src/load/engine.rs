//! The open-model engine: requests sent at their due times over keep-alive HTTP/1.1
//! connections, latency measured from each due time.
//!
//! A run has a thread of its own with a single-threaded runtime: the pacer ([`super::pacer`])
//! releases each request at its due time to the workers there, which wait for it without
//! spinning; the worker that takes it sends it and reads the whole answer. A worker that leaves
//! fewer than [`SPARE`] idle starts one more (one at a time), up to the connection limit, so a
//! request falling due finds a worker waiting: the pool grows with the server's latency and the
//! arrivals never wait for answers. A request still unsent `timeout` after its due time fails as
//! "not sent in time", so a stalled server shows up as failures and as latency, never as a lower
//! rate quietly measured.
//!
//! Each connection goes to one endpoint, chosen round-robin among the current ones when it
//! opens (as kube-proxy balances connections, not requests). A connection whose endpoint has
//! left the set is closed before its next request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::conn::{Conn, exchange};
pub use super::conn::{Endpoints, Request};
use super::pacer::{self, Pacing};
use super::schedule::Schedule;

/// Idle workers kept ready: the pool grows when fewer are left, so a burst of answers slower
/// than usual still finds a connection for each request falling due.
const SPARE: usize = 4;

#[derive(Debug, Clone)]
pub struct Plan {
    pub schedule: Schedule,
    pub requests: Vec<Request>,
    /// For each whole exchange, connecting included.
    pub timeout: Duration,
    pub max_connections: usize,
}

/// Live counts, per second of the run (by due time), read by progress while the run goes on.
#[derive(Debug)]
pub struct Live {
    seconds: Vec<Bucket>,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub workers: AtomicUsize,
    /// Workers waiting for a request.
    idle: AtomicUsize,
    /// A worker started and not yet waiting: the pool grows by one at a time.
    growing: AtomicBool,
}

#[derive(Debug, Default)]
struct Bucket {
    requests: AtomicU64,
    errors: AtomicU64,
    latency_us_sum: AtomicU64,
    latency_us_max: AtomicU64,
}

/// One second of a run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Second {
    /// From the start: this second is [at, at + 1).
    pub at: u64,
    pub requests: u64,
    pub errors: u64,
    pub mean_latency_ms: f64,
    pub max_latency_ms: f64,
}

impl Live {
    fn new(duration: Duration) -> Live {
        let n = duration.as_secs() as usize + 1;
        Live {
            seconds: (0..n).map(|_| Bucket::default()).collect(),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            workers: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            growing: AtomicBool::new(false),
        }
    }

    fn record(&self, due: Duration, latency: Duration, failed: bool) {
        let i = (due.as_secs() as usize).min(self.seconds.len() - 1);
        let b = &self.seconds[i];
        let us = latency.as_micros() as u64;
        b.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            b.errors.fetch_add(1, Ordering::Relaxed);
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        b.latency_us_sum.fetch_add(us, Ordering::Relaxed);
        b.latency_us_max.fetch_max(us, Ordering::Relaxed);
    }

    /// The seconds so far (the last may be partial).
    pub fn seconds(&self) -> Vec<Second> {
        self.seconds
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let n = b.requests.load(Ordering::Relaxed);
                let sum = b.latency_us_sum.load(Ordering::Relaxed);
                Second {
                    at: i as u64,
                    requests: n,
                    errors: b.errors.load(Ordering::Relaxed),
                    mean_latency_ms: if n == 0 {
                        0.0
                    } else {
                        sum as f64 / n as f64 / 1e3
                    },
                    max_latency_ms: b.latency_us_max.load(Ordering::Relaxed) as f64 / 1e3,
                }
            })
            .collect()
    }
}

/// What one worker saw; merged at the end.
struct Tally {
    latency: Histogram<u64>,
    /// How late each request was sent after its due time: the generator's own delay.
    lateness: Histogram<u64>,
    ok: u64,
    failed: u64,
    in_window: u64,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 1 hour at 3 significant figures (bounds that new_with_bounds always accepts).
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: histogram(),
            lateness: histogram(),
            ok: 0,
            failed: 0,
            in_window: 0,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    fn merge(&mut self, o: Tally) {
        let _ = self.latency.add(&o.latency);
        let _ = self.lateness.add(&o.lateness);
        self.ok += o.ok;
        self.failed += o.failed;
        self.in_window += o.in_window;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

/// A finished (or stopped) run.
#[derive(Debug)]
pub struct Outcome {
    pub planned: u64,
    pub ok: u64,
    pub failed: u64,
    /// Requests sent within the run's window (their send began before its end).
    pub in_window: u64,
    pub latency: Histogram<u64>,
    pub lateness: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    /// Failures without a status: `connection refused`, `timed out`, …, counted.
    pub errors: BTreeMap<String, u64>,
    pub seconds: Vec<Second>,
    /// From the start until the last answer.
    pub elapsed: Duration,
    pub window: Duration,
    pub peak_connections: usize,
    pub stopped: bool,
}

struct Shared {
    plan: Plan,
    endpoints: Arc<Endpoints>,
    start: Instant,
    next: AtomicU64,
    total: u64,
    live: Arc<Live>,
    pacing: Pacing,
    /// Sent when every worker has ended.
    done: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    tallies: Mutex<Vec<Tally>>,
    tasks: Mutex<tokio::task::JoinSet<()>>,
    peak: AtomicUsize,
}

/// A run under way: its live counts, and a way to stop it early (through any clone).
#[derive(Clone)]
pub struct Run {
    shared: Arc<Shared>,
}

impl Run {
    /// Starts `plan` against `endpoints` now, on a thread of its own (an error only when that
    /// thread or its runtime cannot start).
    pub fn start(plan: Plan, endpoints: Arc<Endpoints>) -> std::io::Result<Run> {
        let total = plan.schedule.total();
        let live = Arc::new(Live::new(plan.schedule.duration()));
        let peak_rate = plan
            .schedule
            .stages()
            .iter()
            .map(|s| s.from.max(s.to))
            .fold(0.0, f64::max);
        let first = ((peak_rate / 1000.0).ceil() as usize).clamp(1, plan.max_connections.max(1));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (done, finished) = tokio::sync::oneshot::channel();
        let shared = Arc::new(Shared {
            plan,
            endpoints,
            start: Instant::now(),
            next: AtomicU64::new(0),
            total,
            live,
            pacing: Pacing::new(),
            done: Mutex::new(Some(finished)),
            tallies: Mutex::new(Vec::new()),
            tasks: Mutex::new(tokio::task::JoinSet::new()),
            peak: AtomicUsize::new(0),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("load".into())
            .spawn(move || {
                runtime.block_on(drive(&s, first));
                let _ = done.send(());
            })?;
        Ok(Run { shared })
    }

    /// The outcome of a run that sent nothing (a journal's figures before any run).
    pub fn empty_outcome() -> Outcome {
        let t = Tally::new();
        Outcome {
            planned: 0,
            ok: 0,
            failed: 0,
            in_window: 0,
            latency: t.latency,
            lateness: t.lateness,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            seconds: Vec::new(),
            elapsed: Duration::ZERO,
            window: Duration::ZERO,
            peak_connections: 0,
            stopped: false,
        }
    }

    pub fn live(&self) -> Arc<Live> {
        self.shared.live.clone()
    }

    pub fn started(&self) -> Instant {
        self.shared.start
    }

    /// Sends no more requests; those in flight finish (or time out).
    pub fn stop(&self) {
        self.shared.pacing.stop();
    }

    /// Waits for every worker, then tallies the run.
    pub async fn finish(self) -> Outcome {
        let done = self
            .shared
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(done) = done {
            let _ = done.await;
        }
        let elapsed = self.shared.start.elapsed();
        let mut all = Tally::new();
        for t in std::mem::take(
            &mut *self
                .shared
                .tallies
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        ) {
            all.merge(t);
        }
        Outcome {
            planned: self.shared.total,
            ok: all.ok,
            failed: all.failed,
            in_window: all.in_window,
            latency: all.latency,
            lateness: all.lateness,
            statuses: all.statuses,
            errors: all.errors,
            seconds: self.shared.live.seconds(),
            elapsed,
            window: self.shared.plan.schedule.duration(),
            peak_connections: self.shared.peak.load(Ordering::Relaxed),
            stopped: self.shared.pacing.stop.load(Ordering::Acquire),
        }
    }
}

/// The run on its own runtime: the first workers, the pacer, then every worker to its end.
async fn drive(s: &Arc<Shared>, first: usize) {
    for _ in 0..first {
        spawn_worker(s);
    }
    pacer::pace(&s.plan.schedule, s.start.into_std(), s.total, &s.pacing).await;
    loop {
        let next = {
            let mut tasks = s.tasks.lock().unwrap_or_else(|e| e.into_inner());
            if tasks.is_empty() {
                break;
            }
            // (a worker may start another while this one is awaited: take them one by one)
            let mut set = std::mem::take(&mut *tasks);
            async move { while set.join_next().await.is_some() {} }
        };
        next.await;
    }
}

fn spawn_worker(shared: &Arc<Shared>) -> bool {
    let n = shared.live.workers.fetch_add(1, Ordering::AcqRel);
    if n >= shared.plan.max_connections {
        shared.live.workers.fetch_sub(1, Ordering::AcqRel);
        return false;
    }
    shared.peak.fetch_max(n + 1, Ordering::Relaxed);
    let s = shared.clone();
    shared
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .spawn(async move {
            let tally = worker(&s).await;
            s.tallies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(tally);
        });
    true
}

async fn worker(s: &Arc<Shared>) -> Tally {
    let mut tally = Tally::new();
    let mut conn: Option<Conn> = None;
    let window_end = s.start + s.plan.schedule.duration();
    let mut fresh = true;
    loop {
        s.live.idle.fetch_add(1, Ordering::AcqRel);
        if std::mem::take(&mut fresh) {
            s.live.growing.store(false, Ordering::Release);
        }
        let permit = s.pacing.released.acquire().await;
        let few_idle = s.live.idle.fetch_sub(1, Ordering::AcqRel) <= SPARE;
        let Ok(permit) = permit else {
            break;
        };
        permit.forget();
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= s.total || s.pacing.stop.load(Ordering::Acquire) {
            // (the run's end: the next waiting worker finds it too)
            s.pacing.released.add_permits(1);
            break;
        }
        // (spawn_worker refuses past the connection limit)
        if few_idle && !s.live.growing.swap(true, Ordering::AcqRel) && !spawn_worker(s) {
            s.live.growing.store(false, Ordering::Release);
        }
        let offset = s.plan.schedule.due(i);
        let due = s.start + offset;
        let sent = Instant::now();
        let late = sent.saturating_duration_since(due);
        let _ = tally.lateness.record((late.as_micros() as u64).max(1));
        if late >= s.plan.timeout {
            s.live.sent.fetch_add(1, Ordering::Relaxed);
            fail(
                &mut tally,
                s,
                offset,
                late,
                "not sent in time: every connection was busy",
            );
            continue;
        }
        if sent < window_end {
            tally.in_window += 1;
        }
        s.live.sent.fetch_add(1, Ordering::Relaxed);
        let req = &s.plan.requests[(i as usize) % s.plan.requests.len()];
        let left = s.plan.timeout - late;
        let answer = tokio::time::timeout(left, exchange(&s.endpoints, &mut conn, req)).await;
        let latency = due.elapsed();
        match answer {
            Ok(Ok(status)) => {
                *tally.statuses.entry(status).or_default() += 1;
                if status >= 400 {
                    tally.failed += 1;
                    s.live.record(offset, latency, true);
                } else {
                    tally.ok += 1;
                    s.live.record(offset, latency, false);
                }
                let _ = tally.latency.record((latency.as_micros() as u64).max(1));
            }
            Ok(Err(why)) => {
                conn = None;
                fail(&mut tally, s, offset, latency, &why);
            }
            Err(_) => {
                conn = None;
                fail(&mut tally, s, offset, latency, "timed out");
            }
        }
    }
    s.live.workers.fetch_sub(1, Ordering::AcqRel);
    tally
}

fn fail(tally: &mut Tally, s: &Shared, offset: Duration, latency: Duration, why: &str) {
    tally.failed += 1;
    *tally.errors.entry(why.to_string()).or_default() += 1;
    let _ = tally.latency.record((latency.as_micros() as u64).max(1));
    s.live.record(offset, latency, true);
}
