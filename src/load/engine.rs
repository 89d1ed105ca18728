//! The open-model engine: requests sent at their due times over keep-alive HTTP/1.1
//! connections, latency measured from each due time.
//!
//! Workers share one counter of the next request. A worker takes a request, waits for its due
//! time (coarsely on the timer, the last millisecond by yielding, so it is sent within
//! microseconds of it), sends it and reads the whole answer. A worker that takes a request
//! already late (every worker was busy when it fell due) starts one more worker, up to the
//! connection limit: the pool grows with the server's latency and the arrivals never wait for
//! answers. A request still unsent `timeout` after its due time fails as "not sent in time", so a
//! stalled server shows up as failures and as latency, never as a lower rate quietly measured.
//!
//! Each connection goes to one endpoint, chosen round-robin among the current ones when it
//! opens (as kube-proxy balances connections, not requests). A connection whose endpoint has
//! left the set is closed before its next request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::schedule::Schedule;

/// How late a request may be taken before the pool grows.
const GROW_LAG: Duration = Duration::from_millis(2);
/// The part of a wait done by yielding rather than on the (millisecond) timer.
const SPIN: Duration = Duration::from_micros(1500);

/// One kind of request; a run sends them in turn.
#[derive(Debug, Clone)]
pub struct Request {
    /// Path and query.
    pub path: String,
    /// The Host header.
    pub host: String,
}

/// Where requests go: a set of endpoints that may change while the run goes on (a Service's
/// ready endpoints as pods come and go).
#[derive(Debug, Default)]
pub struct Endpoints {
    set: RwLock<Arc<Vec<SocketAddr>>>,
    version: AtomicU64,
    next: AtomicUsize,
}

impl Endpoints {
    pub fn new(addrs: Vec<SocketAddr>) -> Endpoints {
        Endpoints {
            set: RwLock::new(Arc::new(addrs)),
            version: AtomicU64::new(0),
            next: AtomicUsize::new(0),
        }
    }

    /// Replaces the set (a no-op when it is the same).
    pub fn set(&self, mut addrs: Vec<SocketAddr>) {
        addrs.sort();
        addrs.dedup();
        let mut set = self.set.write().unwrap_or_else(|e| e.into_inner());
        if **set != addrs {
            *set = Arc::new(addrs);
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    pub fn current(&self) -> Arc<Vec<SocketAddr>> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn pick(&self) -> Option<SocketAddr> {
        let set = self.current();
        if set.is_empty() {
            return None;
        }
        Some(set[self.next.fetch_add(1, Ordering::Relaxed) % set.len()])
    }

    fn contains(&self, addr: &SocketAddr) -> bool {
        self.current().contains(addr)
    }
}

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
    stop: AtomicBool,
    stopped: tokio::sync::Notify,
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
    /// Starts `plan` against `endpoints` now.
    pub fn start(plan: Plan, endpoints: Arc<Endpoints>) -> Run {
        let total = plan.schedule.total();
        let live = Arc::new(Live::new(plan.schedule.duration()));
        let peak_rate = plan
            .schedule
            .stages()
            .iter()
            .map(|s| s.from.max(s.to))
            .fold(0.0, f64::max);
        let first = ((peak_rate / 500.0).ceil() as usize).clamp(1, plan.max_connections.max(1));
        let shared = Arc::new(Shared {
            plan,
            endpoints,
            start: Instant::now(),
            next: AtomicU64::new(0),
            total,
            live,
            stop: AtomicBool::new(false),
            stopped: tokio::sync::Notify::new(),
            tallies: Mutex::new(Vec::new()),
            tasks: Mutex::new(tokio::task::JoinSet::new()),
            peak: AtomicUsize::new(0),
        });
        for _ in 0..first {
            spawn_worker(&shared);
        }
        Run { shared }
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
        self.shared.stop.store(true, Ordering::Release);
        self.shared.stopped.notify_waiters();
    }

    /// Waits for every worker, then tallies the run.
    pub async fn finish(self) -> Outcome {
        loop {
            let next = {
                let mut tasks = self.shared.tasks.lock().unwrap_or_else(|e| e.into_inner());
                if tasks.is_empty() {
                    break;
                }
                // (a worker may start another while this one is awaited: take them one by one)
                let mut set = std::mem::take(&mut *tasks);
                async move { while set.join_next().await.is_some() {} }
            };
            next.await;
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
            stopped: self.shared.stop.load(Ordering::Acquire),
        }
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

struct Conn {
    addr: SocketAddr,
    version: u64,
    sender: SendRequest<Empty<Bytes>>,
}

async fn worker(s: &Arc<Shared>) -> Tally {
    let mut tally = Tally::new();
    let mut conn: Option<Conn> = None;
    let window_end = s.start + s.plan.schedule.duration();
    loop {
        if s.stop.load(Ordering::Acquire) {
            break;
        }
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= s.total {
            break;
        }
        let offset = s.plan.schedule.due(i);
        let due = s.start + offset;
        if !wait_until(s, due).await {
            break;
        }
        let sent = Instant::now();
        let late = sent.saturating_duration_since(due);
        if late > GROW_LAG && s.live.workers.load(Ordering::Relaxed) < s.plan.max_connections {
            spawn_worker(s);
        }
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
        let answer = tokio::time::timeout(left, exchange(s, &mut conn, req)).await;
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

/// Waits for `due`; false when the run was stopped meanwhile.
async fn wait_until(s: &Shared, due: Instant) -> bool {
    let now = Instant::now();
    if due > now + SPIN {
        let coarse = due - SPIN;
        tokio::select! {
            _ = tokio::time::sleep_until(coarse) => {}
            _ = s.stopped.notified() => return false,
        }
        if s.stop.load(Ordering::Acquire) {
            return false;
        }
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
    !s.stop.load(Ordering::Acquire)
}

/// One request on the worker's connection, opened (or re-opened) as needed: the answer's status,
/// the body read whole.
async fn exchange(s: &Shared, conn: &mut Option<Conn>, req: &Request) -> Result<u16, String> {
    let version = s.endpoints.version.load(Ordering::Acquire);
    if let Some(c) = conn
        && c.version != version
    {
        if s.endpoints.contains(&c.addr) {
            c.version = version;
        } else {
            *conn = None;
        }
    }
    if conn.as_ref().is_some_and(|c| c.sender.is_closed()) {
        *conn = None;
    }
    let c = match conn {
        Some(c) => c,
        None => {
            let addr = s
                .endpoints
                .pick()
                .ok_or_else(|| "no endpoint to send to".to_string())?;
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| connect_error(&e))?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            conn.insert(Conn {
                addr,
                version,
                sender,
            })
        }
    };
    c.sender
        .ready()
        .await
        .map_err(|e| format!("connection closed: {}", reason(&e)))?;
    let request = hyper::Request::get(&req.path)
        .header(hyper::header::HOST, &req.host)
        .header(
            hyper::header::USER_AGENT,
            concat!("platformctl-load/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = c
        .sender
        .send_request(request)
        .await
        .map_err(|e| format!("no answer: {}", reason(&e)))?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {}", reason(&e)))?;
    Ok(status)
}

fn connect_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "connect timed out".into(),
        _ => format!("connect: {e}"),
    }
}

/// hyper's error, with its cause (`connection closed before message completed`, `connection
/// reset by peer`), in a few stable words so that the counts group.
fn reason(e: &hyper::Error) -> String {
    use std::error::Error as _;
    match e.source() {
        Some(io) => match io.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
                "connection reset".into()
            }
            _ => format!("{e}: {io}"),
        },
        None => e.to_string(),
    }
}
