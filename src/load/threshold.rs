//! k6-style thresholds on a load run: `p95<300ms`, `errors<1%`, `rate>=0.99*target`.
//!
//! `METRIC OP VALUE`, OP one of `<` `<=` `>` `>=`:
//! - latency, measured from each request's due time: `pN` (any percentile, `p99.9`), `med`,
//!   `avg`, `min`, `max`; VALUE a duration (`300ms`, `1.5s`, `800us`; a bare number is
//!   milliseconds, as in k6);
//! - `errors`: the share of requests that failed (no answer, or a status of 400 or more); VALUE a
//!   percentage (`1%`) or a fraction (`0.01`);
//! - `rate`: the requests per second sent in the run's window; VALUE requests per second, or
//!   `F*target` (a share of the planned rate).

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    Percentile(f64),
    Avg,
    Min,
    Max,
    Errors,
    Rate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// Seconds.
    Latency(f64),
    /// A fraction in 0..=1.
    Share(f64),
    PerSecond(f64),
    /// A multiple of the planned rate.
    OfTarget(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written.
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    pub bound: Bound,
}

/// Why a threshold does not parse; shown with the threshold and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("threshold `{text}`: {reason}")]
pub struct ParseError {
    pub text: String,
    pub reason: String,
}

/// The figures a threshold is judged on.
#[derive(Clone, Copy)]
pub struct Figures<'a> {
    /// Latency at a percentile (0..=100).
    pub percentile: &'a dyn Fn(f64) -> Duration,
    pub avg: Duration,
    pub min: Duration,
    pub max: Duration,
    /// Failed requests over requests.
    pub error_share: f64,
    pub rate: f64,
    pub target_rate: f64,
}

/// A threshold judged.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Judged {
    pub threshold: String,
    pub passed: bool,
    /// The figure it was judged on, with its unit: `212.4ms`, `0.30%`, `49.9/s`.
    pub actual: String,
    /// The bound, resolved: `300ms`, `1%`, `49.5/s`.
    pub limit: String,
}

impl Threshold {
    pub fn parse(text: &str) -> Result<Threshold, ParseError> {
        let fail = |reason: String| ParseError {
            text: text.to_string(),
            reason,
        };
        let t = text.trim();
        let at = t
            .find(['<', '>'])
            .ok_or_else(|| fail("needs a comparison: one of < <= > >=".into()))?;
        let (name, rest) = (t[..at].trim(), &t[at..]);
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            return Err(fail("needs a comparison: one of < <= > >=".into()));
        };
        let value = value.trim();
        let metric = match name {
            "avg" => Metric::Avg,
            "min" => Metric::Min,
            "max" => Metric::Max,
            "med" => Metric::Percentile(50.0),
            "errors" => Metric::Errors,
            "rate" => Metric::Rate,
            p if p.starts_with('p') => match p[1..].parse::<f64>() {
                Ok(q) if q > 0.0 && q <= 100.0 => Metric::Percentile(q),
                _ => {
                    return Err(fail(format!(
                        "`{p}` is no percentile: p followed by a number in (0, 100], like p95 or p99.9"
                    )));
                }
            },
            other => {
                return Err(fail(format!(
                    "unknown metric `{other}` (known: pN such as p95, med, avg, min, max, errors, rate)"
                )));
            }
        };
        let bound = match metric {
            Metric::Errors => Bound::Share(share(value).map_err(fail)?),
            Metric::Rate => match value.strip_suffix("*target") {
                Some(f) => Bound::OfTarget(
                    number(f.trim())
                        .filter(|f| *f >= 0.0)
                        .ok_or_else(|| fail(format!("`{f}` before `*target` is no number")))?,
                ),
                None => Bound::PerSecond(
                    number(value.strip_suffix("/s").unwrap_or(value))
                        .filter(|r| *r >= 0.0)
                        .ok_or_else(|| {
                            fail(format!(
                                "`{value}` is no rate: requests per second (`50`) or a share of the planned rate (`0.99*target`)"
                            ))
                        })?,
                ),
            },
            _ => Bound::Latency(latency(value).map_err(fail)?),
        };
        Ok(Threshold {
            text: t.to_string(),
            metric,
            op,
            bound,
        })
    }

    pub fn judge(&self, f: &Figures<'_>) -> Judged {
        let (actual, limit, shown_actual, shown_limit) = match (self.metric, self.bound) {
            (Metric::Errors, Bound::Share(s)) => {
                (f.error_share, s, percent(f.error_share), percent(s))
            }
            (Metric::Rate, Bound::PerSecond(r)) => (f.rate, r, per_second(f.rate), per_second(r)),
            (Metric::Rate, Bound::OfTarget(k)) => {
                let r = k * f.target_rate;
                (f.rate, r, per_second(f.rate), per_second(r))
            }
            (m, Bound::Latency(s)) => {
                let d = match m {
                    Metric::Percentile(q) => (f.percentile)(q),
                    Metric::Avg => f.avg,
                    Metric::Min => f.min,
                    _ => f.max,
                };
                let a = d.as_secs_f64();
                (a, s, seconds(a), seconds(s))
            }
            // (parse pairs every metric with its kind of bound)
            _ => (f64::NAN, f64::NAN, "?".into(), "?".into()),
        };
        let passed = match self.op {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
        };
        Judged {
            threshold: self.text.clone(),
            passed,
            actual: shown_actual,
            limit: shown_limit,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn share(value: &str) -> Result<f64, String> {
    let (v, scale) = match value.strip_suffix('%') {
        Some(p) => (p.trim(), 100.0),
        None => (value, 1.0),
    };
    match number(v).map(|x| x / scale) {
        Some(s) if (0.0..=1.0).contains(&s) => Ok(s),
        _ => Err(format!(
            "`{value}` is no share of requests: a percentage (`1%`) or a fraction (`0.01`)"
        )),
    }
}

/// Seconds, from `300ms`, `1.5s`, `800us`, `2m` or a bare number of milliseconds.
fn latency(value: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "`{value}` is no duration: a number with a unit (`300ms`, `1.5s`, `800us`), or milliseconds"
        )
    };
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let n = number(&value[..split])
        .filter(|n| *n >= 0.0)
        .ok_or_else(bad)?;
    let scale = match value[split..].trim() {
        "" | "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(bad()),
    };
    Ok(n * scale)
}

pub fn percent(share: f64) -> String {
    format!("{:.2}%", share * 100.0)
}

pub fn per_second(r: f64) -> String {
    format!("{r:.1}/s")
}

/// `212.4ms`, `1.25s`, `480µs`.
pub fn seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2}s")
    } else if s >= 1e-3 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{:.0}µs", s * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(p: &dyn Fn(f64) -> Duration) -> Figures<'_> {
        Figures {
            percentile: p,
            avg: Duration::from_millis(120),
            min: Duration::from_millis(2),
            max: Duration::from_millis(900),
            error_share: 0.004,
            rate: 49.6,
            target_rate: 50.0,
        }
    }

    fn judge(t: &str) -> Judged {
        let p = |q: f64| Duration::from_micros((q * 3000.0) as u64);
        Threshold::parse(t).expect("ok").judge(&figures(&p))
    }

    #[test]
    fn thresholds_pass_and_fail_as_written() {
        // p95 = 285 ms
        assert!(judge("p95<300ms").passed);
        assert!(!judge("p95<280ms").passed);
        assert!(judge("p95 < 0.3s").passed);
        assert!(!judge("p95<200").passed, "a bare number is milliseconds");
        assert!(judge("p99.9<=300ms").passed);
        assert!(judge("med<151ms").passed);
        assert!(!judge("avg<120ms").passed);
        assert!(judge("avg<=120ms").passed);
        assert!(judge("max<1s").passed);
        assert!(judge("min>1ms").passed);
        assert!(judge("errors<1%").passed);
        assert!(!judge("errors<0.4%").passed);
        assert!(judge("errors<=0.004").passed);
        assert!(judge("rate>=0.99*target").passed);
        assert!(!judge("rate>=0.995*target").passed);
        assert!(judge("rate>49").passed);
        assert!(!judge("rate>=50/s").passed);
    }

    #[test]
    fn what_is_judged_is_shown_with_its_unit() {
        let j = judge("p95<300ms");
        assert_eq!(
            (j.actual.as_str(), j.limit.as_str()),
            ("285.0ms", "300.0ms")
        );
        let j = judge("errors<1%");
        assert_eq!((j.actual.as_str(), j.limit.as_str()), ("0.40%", "1.00%"));
        let j = judge("rate>=0.99*target");
        assert_eq!((j.actual.as_str(), j.limit.as_str()), ("49.6/s", "49.5/s"));
    }

    #[test]
    fn bad_thresholds_say_what_is_wrong() {
        for (t, says) in [
            ("p95", "needs a comparison"),
            ("p95=300ms", "needs a comparison"),
            ("p0<3ms", "no percentile"),
            ("p101<3ms", "no percentile"),
            ("latency<3ms", "unknown metric `latency`"),
            ("p95<3 parsecs", "no duration"),
            ("errors<150%", "no share"),
            ("rate>=lots*target", "before `*target` is no number"),
            ("rate>fast", "no rate"),
        ] {
            let e = Threshold::parse(t).expect_err("fails");
            assert!(e.to_string().contains(says), "{t}: {e}");
            assert!(e.to_string().contains(t), "{t}: {e}");
        }
    }
}
