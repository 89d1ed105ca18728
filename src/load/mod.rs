//! `platformctl load`: an open-model HTTP load generator (constant or ramping arrival rate),
//! latency from each request's due time (no coordinated omission), percentiles from an HDR
//! histogram, judged by k6-style thresholds. Never prints: the CLI shows progress from
//! [`engine::Live`] and the report from [`Summary`].

mod conn;
pub mod engine;
mod pacer;
pub mod schedule;
pub mod spec;
pub mod target;
pub mod threshold;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

pub use engine::{Endpoints, Outcome, Plan, Request, Run};
pub use schedule::{Schedule, Stage};
pub use threshold::{Judged, Threshold};

/// Latency figures, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// A run's figures, as the report gives them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Requests the schedule planned.
    pub planned: u64,
    /// Requests that got an answer below 400.
    pub ok: u64,
    pub failed: u64,
    /// failed / (ok + failed).
    pub error_share: f64,
    /// Planned requests per second (mean over the run).
    pub target_rate: f64,
    /// Requests sent within the run's window, per second of it.
    pub rate: f64,
    /// Measured from each request's due time.
    pub latency_ms: Latency,
    /// How late the generator itself sent requests after their due times, microseconds (p50,
    /// p99, max): its own overhead, included in the latencies.
    pub send_delay_us: [f64; 3],
    pub statuses: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub seconds: Vec<engine::Second>,
    pub duration_seconds: f64,
    pub elapsed_seconds: f64,
    pub peak_connections: usize,
    /// Stopped before its end (SIGINT, SIGTERM).
    pub stopped: bool,
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q / 100.0) as f64 / 1e3
}

impl Summary {
    pub fn of(o: &Outcome, target_rate: f64) -> Summary {
        let h = &o.latency;
        let done = o.ok + o.failed;
        let window = o.window.as_secs_f64();
        Summary {
            planned: o.planned,
            ok: o.ok,
            failed: o.failed,
            error_share: if done == 0 {
                0.0
            } else {
                o.failed as f64 / done as f64
            },
            target_rate,
            rate: if window > 0.0 {
                o.in_window as f64 / window
            } else {
                0.0
            },
            latency_ms: Latency {
                min: if h.is_empty() {
                    0.0
                } else {
                    h.min() as f64 / 1e3
                },
                mean: if h.is_empty() { 0.0 } else { h.mean() / 1e3 },
                p50: ms(h, 50.0),
                p90: ms(h, 90.0),
                p95: ms(h, 95.0),
                p99: ms(h, 99.0),
                p999: ms(h, 99.9),
                max: if h.is_empty() {
                    0.0
                } else {
                    h.max() as f64 / 1e3
                },
            },
            send_delay_us: [
                ms(&o.lateness, 50.0) * 1e3,
                ms(&o.lateness, 99.0) * 1e3,
                if o.lateness.is_empty() {
                    0.0
                } else {
                    o.lateness.max() as f64
                },
            ],
            statuses: o
                .statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            errors: o.errors.clone(),
            seconds: o.seconds.clone(),
            duration_seconds: window,
            elapsed_seconds: o.elapsed.as_secs_f64(),
            peak_connections: o.peak_connections,
            stopped: o.stopped,
        }
    }
}

/// Judges `thresholds` on a finished run.
pub fn judge(thresholds: &[Threshold], o: &Outcome, s: &Summary) -> Vec<Judged> {
    let percentile = |q: f64| {
        if o.latency.is_empty() {
            Duration::ZERO
        } else {
            Duration::from_micros(o.latency.value_at_quantile(q / 100.0))
        }
    };
    let figures = threshold::Figures {
        percentile: &percentile,
        avg: Duration::from_secs_f64(s.latency_ms.mean / 1e3),
        min: Duration::from_secs_f64(s.latency_ms.min / 1e3),
        max: Duration::from_secs_f64(s.latency_ms.max / 1e3),
        error_share: s.error_share,
        rate: s.rate,
        target_rate: s.target_rate,
    };
    thresholds.iter().map(|t| t.judge(&figures)).collect()
}

/// `--stages 10s:50,1m:50,10s:0`: each `DURATION:RATE`, ramping linearly from the rate before it
/// (the first from `start`).
pub fn parse_stages(text: &str, start: f64) -> Result<Vec<Stage>, String> {
    let mut from = start;
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (d, r) = part
            .split_once(':')
            .ok_or_else(|| format!("stage `{part}`: write DURATION:RATE, like 30s:50"))?;
        let duration = parse_duration(d.trim())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("stage `{part}`: `{d}` is no duration (like 30s, 2m, 500ms)"))?;
        let to = r
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r >= 0.0)
            .ok_or_else(|| format!("stage `{part}`: `{r}` is no rate (requests per second)"))?;
        out.push(Stage { duration, from, to });
        from = to;
    }
    if out.is_empty() {
        return Err("no stages: write DURATION:RATE[,DURATION:RATE…], like 10s:50,1m:50".into());
    }
    Ok(out)
}

/// `500ms`, `30s`, `2m`, `1m30s`, `1h`: whole numbers, each with a unit (ms, s, m, h).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = &rest[unit..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_compose() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        for bad in ["", "10", "s", "1.5s", "3 s", "5x"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn stages_ramp_from_the_rate_before_them() {
        let s = parse_stages("10s:50, 1m:50,500ms:0", 0.0).expect("ok");
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].from, s[0].to), (0.0, 50.0));
        assert_eq!((s[1].from, s[1].to), (50.0, 50.0));
        assert_eq!(s[2].duration, Duration::from_millis(500));
        for (bad, says) in [
            ("10s", "DURATION:RATE"),
            ("ten:5", "no duration"),
            ("0s:5", "no duration"),
            ("5s:-1", "no rate"),
            ("", "no stages"),
        ] {
            let e = parse_stages(bad, 0.0).expect_err("fails");
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
