//! Benchmark: `platformctl load` against wrk and vegeta on the same target in the same run.
//! Budgets: `load` sends within 20% of wrk's requests per second per core (at least 0.8× wrk's
//! requests per CPU-second at full speed), at least 2× vegeta's, and its own latency overhead
//! (how late it sends a request after its due time, `sendDelayUs`) is under 50 µs at p99.
//!
//! The target is the real customer-api (release build, `GET /customers`), pinned to CPU 1; each
//! generator is pinned to CPU 0 (`taskset`), so "per core" is what one core of generator buys. A
//! generator's cost is its own CPU time (user + system, from `wait4`); requests per CPU-second =
//! requests answered / that time. Each round runs, one after the other:
//! - full speed, 16 connections each: wrk (Debian's, closed model) `-t1 -c16` for DURATION;
//!   `load` at twice wrk's rate with `--max-connections 16` for DURATION (it falls behind at
//!   once and sends as fast as it can until the planned requests are out, each late one's
//!   lateness counted); vegeta (built from its Go module at VEGETA_VERSION) at `-rate 0
//!   -max-workers 16`, its own full-speed mode, for DURATION;
//! - open model at each of RATES (1000 and 10000 requests per second by default), `load` then
//!   vegeta for DURATION: the rate each achieved against the plan (accuracy), the cores each kept
//!   busy per 10k requests per second, and `load`'s send delay p99.
//!
//! The figures printed are medians over the rounds. At a fixed rate `load` waits the last stretch
//! before each due time by yielding rather than sleeping (the kernel's wake-up latency, hundreds
//! of µs in a VM, would otherwise be its delay), so its CPU per 10k req/s there is the price of
//! its precision.
//!
//! Run: `cargo bench --bench load` (ROUNDS=3, DURATION=5s, RATES="1000 10000" by default). It
//! installs wrk with apt-get when missing and builds vegeta into the simulated cluster's cache
//! (`~/.cache/platformctl-sim/vegeta-<version>`, PLATFORMCTL_SIM_CACHE) on first use. Exit 0
//! even over budget, unless BENCH_ENFORCE=1; exit 2 when a tool fails or a `load` or wrk run has
//! errors (vegeta's failures at a rate beyond it are printed, and only its answers count).

#[allow(dead_code)]
#[path = "common/sim.rs"]
mod sim;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The vegeta release compared against (a tag of github.com/tsenart/vegeta).
const VEGETA_VERSION: &str = "v12.13.0";
/// `load` at least this share of wrk's requests per CPU-second.
const WRK_SHARE: f64 = 0.8;
/// `load` at least this many times vegeta's requests per CPU-second.
const VEGETA_TIMES: f64 = 2.0;
/// `load`'s own delay at p99, microseconds.
const SEND_DELAY_P99_US: f64 = 50.0;

fn main() -> ExitCode {
    sim::exit("load", run())
}

/// One generator's run.
#[derive(Debug, Clone, Copy)]
struct Figures {
    requests: f64,
    seconds: f64,
    cpu: f64,
}

impl Figures {
    fn per_cpu_second(&self) -> f64 {
        self.requests / self.cpu
    }

    fn rate(&self) -> f64 {
        self.requests / self.seconds
    }

    /// Cores busy per 10k requests per second.
    fn cpu_per_10k(&self) -> f64 {
        (self.cpu / self.seconds) * 10_000.0 / self.rate()
    }
}

fn run() -> Result<bool, String> {
    let duration = std::env::var("DURATION").unwrap_or_else(|_| "5s".into());
    let secs = parse_seconds(&duration)?;
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3usize)
        .max(1);
    let rates: Vec<f64> = std::env::var("RATES")
        .unwrap_or_else(|_| "1000 10000".into())
        .split_whitespace()
        .map(|r| r.parse().map_err(|_| format!("RATES: `{r}` is no rate")))
        .collect::<Result<_, _>>()?;
    let wrk = wrk()?;
    let vegeta = vegeta()?;
    let platformctl = PathBuf::from(env!("CARGO_BIN_EXE_platformctl"));
    let service = Target::build()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let results = dir.path().join("vegeta.bin");
    // Each tool's run gets a customer-api of its own, warmed up by a second of wrk (not
    // counted): no run inherits another's connections or backlog.
    let fresh = || -> Result<Target, String> {
        let t = Target::start(&service)?;
        measure(pinned(&wrk).args(["-t1", "-c16", "-d1s", &t.url()]))?;
        Ok(t)
    };

    let mut full: [Vec<Figures>; 3] = Default::default();
    // per rate: load's figures, its send delay p99, vegeta's figures
    let mut fixed: Vec<(Vec<Figures>, Vec<f64>, Vec<Figures>)> =
        rates.iter().map(|_| Default::default()).collect();
    for round in 1..=rounds {
        let w = run_wrk(&wrk, &fresh()?.url(), &duration, secs)?;
        let full_rate = (w.rate() * 2.0).round();
        let (l, _) = run_load(&platformctl, &fresh()?.url(), full_rate, &duration, true)?;
        let v = run_vegeta(&vegeta, &fresh()?.url(), None, &duration, &results)?;
        println!(
            "round {round}, full speed: wrk {:.0} req/s on {:.2} CPU-s; load {:.0} req/s on {:.2} CPU-s; vegeta {:.0} req/s on {:.2} CPU-s",
            w.rate(),
            w.cpu,
            l.rate(),
            l.cpu,
            v.rate(),
            v.cpu
        );
        for (f, x) in full.iter_mut().zip([w, l, v]) {
            f.push(x);
        }
        for (k, &rate) in rates.iter().enumerate() {
            let (l, p99) = run_load(&platformctl, &fresh()?.url(), rate, &duration, false)?;
            let v = run_vegeta(&vegeta, &fresh()?.url(), Some(rate), &duration, &results)?;
            println!(
                "round {round}, {rate:.0}/s: load {:.1} req/s on {:.2} CPU-s, send delay p99 {p99:.0} µs; vegeta {:.1} req/s on {:.2} CPU-s",
                l.rate(),
                l.cpu,
                v.rate(),
                v.cpu
            );
            fixed[k].0.push(l);
            fixed[k].1.push(p99);
            fixed[k].2.push(v);
        }
    }

    let per = |f: &[Figures]| median(f.iter().map(Figures::per_cpu_second).collect());
    let rate = |f: &[Figures]| median(f.iter().map(Figures::rate).collect());
    let (wp, lp, vp) = (per(&full[0]), per(&full[1]), per(&full[2]));
    println!("full speed, 16 connections, one core:");
    for (name, f, p) in [
        ("wrk -t1 -c16", &full[0], wp),
        ("platformctl load", &full[1], lp),
        ("vegeta -rate 0", &full[2], vp),
    ] {
        println!(
            "  {name}: {:.0} req/s, {p:.0} requests per CPU-second",
            rate(f)
        );
    }
    let mut delays_ok = true;
    for (k, &r) in rates.iter().enumerate() {
        let (l, delay, v) = &fixed[k];
        let p99 = median(delay.clone());
        delays_ok &= p99 < SEND_DELAY_P99_US;
        println!("open model at {r:.0}/s:");
        for (name, f) in [("platformctl load", l), ("vegeta", v)] {
            println!(
                "  {name}: {:.1} req/s, rate accuracy {:.2}%, CPU per 10k req/s {:.3} cores",
                rate(f),
                median(f.iter().map(|f| f.rate() / r * 100.0).collect()),
                median(f.iter().map(Figures::cpu_per_10k).collect())
            );
        }
        println!(
            "  load's own send delay p99: {p99:.1} µs, budget < {SEND_DELAY_P99_US} µs: {}",
            verdict(p99 < SEND_DELAY_P99_US)
        );
    }
    let (vs_wrk, vs_vegeta) = (lp / wp, lp / vp);
    println!(
        "ratio load / wrk per core: {vs_wrk:.2}x, budget >= {WRK_SHARE}x: {}",
        verdict(vs_wrk >= WRK_SHARE)
    );
    println!(
        "ratio load / vegeta per core: {vs_vegeta:.2}x, budget >= {VEGETA_TIMES}x: {}",
        verdict(vs_vegeta >= VEGETA_TIMES)
    );
    Ok(vs_wrk >= WRK_SHARE && vs_vegeta >= VEGETA_TIMES && delays_ok)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "pass" } else { "FAIL" }
}

/// customer-api (release) on a free loopback port, pinned to CPU 1; killed when dropped.
struct Target {
    child: Child,
    port: u16,
}

impl Target {
    /// Builds customer-api (release): its binary.
    fn build() -> Result<PathBuf, String> {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "-p", "platform-services"])
            .args(["--bin", "customer-api"])
            .current_dir(sim::root())
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("building customer-api failed".into());
        }
        Ok(PathBuf::from(env!("CARGO_BIN_EXE_platformctl")).with_file_name("customer-api"))
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/customers", self.port)
    }

    fn start(bin: &Path) -> Result<Target, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("taskset")
            .args(["-c", "1"])
            .arg(bin)
            .env("PLATFORM_PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let target = Target { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("customer-api did not listen on {port}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(target)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tool` pinned to CPU 0.
fn pinned(tool: &Path) -> Command {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"]).arg(tool).stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to its end: its stdout and its CPU seconds (user + system, from `wait4`; taskset
/// execs the tool, so the process is the tool's). Fails on a non-zero exit.
fn measure(cmd: &mut Command) -> Result<(String, f64, f64), String> {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.ok_or("no stdout")?;
    let mut stderr = child.stderr.ok_or("no stderr")?;
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut out = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut out).map_err(|e| e.to_string())?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it and `status` for our own child, which
    // std never waits for (its Child was taken apart above).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    if r != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    let err = err.join().unwrap_or_default();
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{cmd:?} failed ({status}): {err}"));
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok((out, secs(usage.ru_utime) + secs(usage.ru_stime), wall))
}

fn run_wrk(wrk: &Path, url: &str, duration: &str, secs: f64) -> Result<Figures, String> {
    let (out, cpu, _) = measure(pinned(wrk).args(["-t1", "-c16", "-d", duration, url]))?;
    if out.contains("Socket errors") || out.contains("Non-2xx") {
        return Err(format!("wrk saw errors:\n{out}"));
    }
    // "  136245 requests in 5.00s, 16.11MB read"
    let requests = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no request count in wrk's output:\n{out}"))?;
    Ok(Figures {
        requests,
        seconds: secs,
        cpu,
    })
}

/// `platformctl load` at `rate` (at `full` speed: 16 connections, falling behind at once): its
/// figures and its send delay p99 (µs). Every request must be answered.
fn run_load(
    bin: &Path,
    url: &str,
    rate: f64,
    duration: &str,
    full: bool,
) -> Result<(Figures, f64), String> {
    let rate_arg = format!("{rate}");
    let mut cmd = pinned(bin);
    cmd.args(["load", url, "--rate", &rate_arg, "--duration", duration])
        .args(["-o", "json"]);
    if full {
        cmd.args(["--max-connections", "16", "--timeout", "10m"]);
    }
    let (out, cpu, _) = measure(&mut cmd)?;
    let report: Value =
        serde_json::from_str(&out).map_err(|e| format!("load's report: {e}:\n{out}"))?;
    let s = &report["summary"];
    let number = |v: &Value, what: &str| {
        v.as_f64()
            .ok_or_else(|| format!("no {what} in load's report:\n{out}"))
    };
    if number(&s["failed"], "failed")? > 0.0 {
        return Err(format!("load saw failures:\n{out}"));
    }
    // (at full speed the run lasts until the last planned request is answered)
    let seconds = if full {
        number(&s["elapsedSeconds"], "elapsedSeconds")?
    } else {
        number(&s["durationSeconds"], "durationSeconds")?
    };
    Ok((
        Figures {
            requests: number(&s["ok"], "ok")?,
            seconds,
            cpu,
        },
        number(&s["sendDelayUs"][1], "sendDelayUs")?,
    ))
}

/// vegeta at `rate`, or at full speed with 16 workers.
fn run_vegeta(
    bin: &Path,
    url: &str,
    rate: Option<f64>,
    duration: &str,
    results: &Path,
) -> Result<Figures, String> {
    let targets = results.with_extension("targets");
    std::fs::write(&targets, format!("GET {url}\n")).map_err(|e| e.to_string())?;
    let mut cmd = pinned(bin);
    cmd.arg("attack");
    match rate {
        Some(r) => cmd.args(["-rate", &format!("{r}/1s")]),
        None => cmd.args(["-rate", "0", "-max-workers", "16"]),
    };
    // (at a fixed rate, at most as many workers as load's default --max-connections)
    if rate.is_some() {
        cmd.args(["-max-workers", "512"]);
    }
    cmd.args(["-duration", duration, "-targets"])
        .arg(&targets)
        .arg("-output")
        .arg(results);
    let (_, cpu, _) = measure(&mut cmd)?;
    let out = Command::new(bin)
        .args(["report", "-type", "json"])
        .arg(results)
        .output()
        .map_err(|e| e.to_string())?;
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "vegeta's report: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let requests = report["requests"]
        .as_f64()
        .ok_or("no requests in vegeta's report")?;
    let success = report["success"]
        .as_f64()
        .ok_or("no success in vegeta's report")?;
    if success < 1.0 {
        // (vegeta's own overload at a rate beyond it: only answered requests count)
        println!(
            "  (vegeta at {}: {:.1}% of {requests} requests answered; errors {})",
            rate.map_or("full speed".into(), |r| format!("{r}/s")),
            success * 100.0,
            report["errors"]
        );
    }
    let requests = requests * success;
    // (vegeta's duration: from the first request to the last sent)
    let seconds = report["duration"]
        .as_f64()
        .ok_or("no duration in vegeta's report")?
        / 1e9;
    Ok(Figures {
        requests,
        seconds,
        cpu,
    })
}

/// wrk from Debian's package, installed when missing (as tests/run installs its packages).
fn wrk() -> Result<PathBuf, String> {
    if let Some(p) = on_path("wrk") {
        return Ok(p);
    }
    eprintln!("bench load: installing wrk (Debian package)");
    let sudo = if unsafe { libc::geteuid() } == 0 {
        vec![]
    } else {
        vec!["sudo"]
    };
    for args in [
        vec!["apt-get", "update", "-qq"],
        vec![
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "wrk",
        ],
    ] {
        let all: Vec<&str> = sudo.iter().copied().chain(args).collect();
        let status = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("{} failed", all.join(" ")));
        }
    }
    on_path("wrk").ok_or_else(|| "wrk is not on PATH after installing it".into())
}

/// vegeta built from its module at VEGETA_VERSION, cached by version beside the simulated
/// cluster's components.
fn vegeta() -> Result<PathBuf, String> {
    let cache = match std::env::var_os("PLATFORMCTL_SIM_CACHE") {
        Some(c) => PathBuf::from(c),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .ok_or("HOME is not set; set PLATFORMCTL_SIM_CACHE")?
            .join("platformctl-sim"),
    };
    let dir = cache.join(format!("vegeta-{VEGETA_VERSION}"));
    let bin = dir.join("vegeta");
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!("bench load: building vegeta {VEGETA_VERSION} from github.com/tsenart/vegeta");
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    let work = tempfile::tempdir_in(&cache).map_err(|e| e.to_string())?;
    let out = Command::new("go")
        .args(["install", "-trimpath", "-ldflags", "-s -w"])
        .arg(format!("github.com/tsenart/vegeta/v12@{VEGETA_VERSION}"))
        .env("GOBIN", work.path().join("out"))
        .env("GOFLAGS", "-mod=mod -buildvcs=false")
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|e| format!("go: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building vegeta failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // (renamed whole: a cache entry is complete or absent)
    std::fs::rename(work.path().join("out"), &dir).map_err(|e| e.to_string())?;
    Ok(bin)
}

fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// `5s`, `10s`, `1m` as seconds.
fn parse_seconds(d: &str) -> Result<f64, String> {
    let bad = || format!("DURATION `{d}`: give whole seconds or minutes, like 5s or 1m");
    if let Some(m) = d.strip_suffix('m') {
        return m.parse::<f64>().map(|m| m * 60.0).map_err(|_| bad());
    }
    d.strip_suffix('s')
        .ok_or_else(bad)?
        .parse::<f64>()
        .map_err(|_| bad())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
