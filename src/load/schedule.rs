//! When each request of an open-model run is due: the arrival schedule of a list of stages, each
//! holding or ramping the rate linearly (k6's constant- and ramping-arrival-rate executors).
//!
//! Request `i` (from 0) is due at the time `t` where the planned arrivals up to `t`, the integral
//! of the rate, reach `i`. A run's latencies are measured from these due times, not from when a
//! request could be sent: a server that stalls makes the requests due meanwhile late, and their
//! lateness counts (no coordinated omission).

use std::time::Duration;

/// One stage: `duration` long, the rate going linearly from `from` to `to` requests per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub from: f64,
    pub to: f64,
}

impl Stage {
    /// Arrivals planned over the whole stage.
    fn arrivals(&self) -> f64 {
        self.duration.as_secs_f64() * (self.from + self.to) / 2.0
    }

    /// Seconds into the stage at which `n` arrivals (fractional) have been planned.
    fn time_of(&self, n: f64) -> f64 {
        let d = self.duration.as_secs_f64();
        let slope = (self.to - self.from) / d;
        if slope.abs() < 1e-12 {
            return n / self.from;
        }
        // from·t + slope·t²/2 = n
        let disc = (self.from * self.from + 2.0 * slope * n).max(0.0);
        ((disc.sqrt() - self.from) / slope).clamp(0.0, d)
    }
}

/// The whole run's schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    stages: Vec<Stage>,
    /// Arrivals planned before each stage, and after the last (one more entry than stages).
    before: Vec<f64>,
    /// Seconds from the start to the start of each stage.
    starts: Vec<f64>,
}

impl Schedule {
    pub fn new(stages: Vec<Stage>) -> Schedule {
        let mut before = vec![0.0];
        let mut starts = Vec::with_capacity(stages.len());
        let mut t = 0.0;
        for s in &stages {
            starts.push(t);
            t += s.duration.as_secs_f64();
            before.push(before.last().copied().unwrap_or(0.0) + s.arrivals());
        }
        Schedule {
            stages,
            before,
            starts,
        }
    }

    /// A constant `rate` for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Schedule {
        Schedule::new(vec![Stage {
            duration,
            from: rate,
            to: rate,
        }])
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// How many requests the run sends: every arrival due before its end.
    pub fn total(&self) -> u64 {
        let all = self.before.last().copied().unwrap_or(0.0);
        // Request i is due when i arrivals have been planned: 0, 1, … while i < all.
        // (less a hair: 50/s for 10 s is 500 requests, not 501 after rounding)
        (all - 1e-6).ceil().max(0.0) as u64
    }

    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The mean rate the run is planned at: its arrivals over its duration.
    pub fn target_rate(&self) -> f64 {
        let d = self.duration().as_secs_f64();
        if d > 0.0 {
            self.before.last().copied().unwrap_or(0.0) / d
        } else {
            0.0
        }
    }

    /// When request `i` is due, from the start of the run.
    pub fn due(&self, i: u64) -> Duration {
        let n = i as f64;
        // The stage where the i-th arrival falls: the last one starting at or before it that
        // plans any arrivals.
        let k = match self.before[1..].iter().position(|&b| b > n) {
            Some(k) => k,
            None => return self.duration(),
        };
        let s = &self.stages[k];
        Duration::from_secs_f64(self.starts[k] + s.time_of(n - self.before[k]))
    }

    /// The planned rate at `t` from the start.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        for (k, s) in self.stages.iter().enumerate() {
            let d = s.duration.as_secs_f64();
            if t < self.starts[k] + d {
                let f = (t - self.starts[k]) / d;
                return s.from + (s.to - s.from) * f;
            }
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn a_constant_rate_spaces_requests_evenly() {
        let s = Schedule::constant(50.0, Duration::from_secs(10));
        assert_eq!(s.total(), 500);
        assert_eq!(s.due(0), Duration::ZERO);
        assert!((secs(s.due(1)) - 0.02).abs() < 1e-9);
        assert!((secs(s.due(499)) - 9.98).abs() < 1e-9);
        assert!((s.target_rate() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_from_zero_plans_its_arrivals_by_the_integral() {
        // 0 → 100/s over 10 s: 500 arrivals, n(t) = 5 t², so the 125th is due at 5 s.
        let s = Schedule::new(vec![Stage {
            duration: Duration::from_secs(10),
            from: 0.0,
            to: 100.0,
        }]);
        assert_eq!(s.total(), 500);
        assert!((secs(s.due(125)) - 5.0).abs() < 1e-6, "{:?}", s.due(125));
        assert!((secs(s.due(499)) - (499.0f64 / 5.0).sqrt()).abs() < 1e-6);
        assert!((s.rate_at(Duration::from_secs(5)) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn stages_follow_each_other_and_due_times_never_go_back() {
        let s = Schedule::new(vec![
            Stage {
                duration: Duration::from_secs(2),
                from: 10.0,
                to: 10.0,
            },
            Stage {
                duration: Duration::from_secs(2),
                from: 10.0,
                to: 30.0,
            },
            Stage {
                duration: Duration::from_secs(1),
                from: 30.0,
                to: 0.0,
            },
        ]);
        // 20 + 40 + 15
        assert_eq!(s.total(), 75);
        assert!((secs(s.due(20)) - 2.0).abs() < 1e-9);
        let mut last = Duration::ZERO;
        for i in 0..s.total() {
            let d = s.due(i);
            assert!(d >= last, "request {i} due at {d:?} before {last:?}");
            assert!(d <= s.duration());
            last = d;
        }
        assert!((s.target_rate() - 15.0).abs() < 1e-9);
    }

    #[test]
    fn a_stage_at_rate_zero_plans_nothing_and_the_next_starts_after_it() {
        let s = Schedule::new(vec![
            Stage {
                duration: Duration::from_secs(3),
                from: 0.0,
                to: 0.0,
            },
            Stage {
                duration: Duration::from_secs(1),
                from: 4.0,
                to: 4.0,
            },
        ]);
        assert_eq!(s.total(), 4);
        assert!((secs(s.due(0)) - 3.0).abs() < 1e-9);
        assert!((secs(s.due(3)) - 3.75).abs() < 1e-9);
    }
}
