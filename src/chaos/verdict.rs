//! The verdict of an experiment, in SLO terms, from the figures of its window.
//!
//! Continuity held when the availability measured during the window (from the probe traffic,
//! and from Prometheus when it could be asked) is at least the SLO's objective, or, for a
//! service with an SLO, when the error budget the window's failures burned is below the
//! experiment's `maxBudgetBurn`. The budget burned is the window's failed requests over the
//! failures the SLO allows in its whole window at the rate measured: `(1 - objective) × rate ×
//! window`. Recovery must also have finished within `recoveryTimeout`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Probe requests due in the experiment's window, and those that failed.
    pub requests: u64,
    pub failed: u64,
    /// Seconds the window lasted (from the kill until recovery, or until the timeout).
    pub window_seconds: f64,
    /// Server-side availability over the window from Prometheus, when it was asked.
    pub prometheus_availability: Option<f64>,
    /// Seconds from the kill until ready equalled desired and the probe answered again;
    /// `None` when that did not happen in time.
    pub recovery_seconds: Option<f64>,
}

/// What the figures are judged against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// The availability objective, a fraction (0.999).
    pub objective: f64,
    /// Whether an SLO gives that objective (else it is the platform's default) and so an error
    /// budget.
    pub from_slo: bool,
    /// The SLO window in seconds (30 d).
    pub slo_window_seconds: f64,
    /// The share of the SLO window's budget the experiment may burn (0.01).
    pub max_budget_burn: f64,
    pub recovery_timeout_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub passed: bool,
    /// Probe availability over the window.
    pub availability: f64,
    /// The share of the SLO window's error budget burned in the window (with an SLO).
    pub budget_burned: Option<f64>,
    pub continuity: bool,
    pub recovered: bool,
    /// One line per finding, the failing ones first.
    pub reasons: Vec<String>,
}

pub fn judge(f: &Figures, l: &Limits) -> Verdict {
    let availability = if f.requests == 0 {
        1.0
    } else {
        1.0 - f.failed as f64 / f.requests as f64
    };
    let rate = if f.window_seconds > 0.0 {
        f.requests as f64 / f.window_seconds
    } else {
        0.0
    };
    let allowed = (1.0 - l.objective) * rate * l.slo_window_seconds;
    let budget_burned = l.from_slo.then(|| {
        if f.failed == 0 {
            0.0
        } else if allowed > 0.0 {
            f.failed as f64 / allowed
        } else {
            f64::INFINITY
        }
    });
    let measured = f
        .prometheus_availability
        .map_or(availability, |p| p.min(availability));
    let within_objective = measured >= l.objective;
    let within_budget = budget_burned.is_some_and(|b| b < l.max_budget_burn);
    let continuity = within_objective || within_budget;
    let recovered = f
        .recovery_seconds
        .is_some_and(|r| r <= l.recovery_timeout_seconds);
    let pct = |x: f64| format!("{:.3}%", x * 100.0);
    let mut reasons = Vec::new();
    let mut fine = Vec::new();
    let avail_line = format!(
        "availability during the window {} ({} of {} probe requests failed{}) against the objective {}",
        pct(availability),
        f.failed,
        f.requests,
        f.prometheus_availability
            .map(|p| format!("; Prometheus saw {}", pct(p)))
            .unwrap_or_default(),
        pct(l.objective)
    );
    if within_objective {
        fine.push(avail_line)
    } else {
        reasons.push(avail_line)
    }
    if let Some(b) = budget_burned {
        let line = format!(
            "error budget burned {} of the SLO window's, limit {}",
            pct(b),
            pct(l.max_budget_burn)
        );
        if within_budget {
            fine.push(line)
        } else {
            reasons.push(line)
        }
    }
    match f.recovery_seconds {
        Some(r) if recovered => fine.push(format!(
            "recovered in {r:.1} s (limit {:.0} s)",
            l.recovery_timeout_seconds
        )),
        Some(r) => reasons.push(format!(
            "recovered in {r:.1} s, over the limit of {:.0} s",
            l.recovery_timeout_seconds
        )),
        None => reasons.push(format!(
            "did not recover within {:.0} s",
            l.recovery_timeout_seconds
        )),
    }
    let passed = continuity && recovered;
    reasons.extend(fine);
    Verdict {
        passed,
        availability,
        budget_burned,
        continuity,
        recovered,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLO: Limits = Limits {
        objective: 0.999,
        from_slo: true,
        slo_window_seconds: 30.0 * 86_400.0,
        max_budget_burn: 0.01,
        recovery_timeout_seconds: 60.0,
    };

    fn figures(requests: u64, failed: u64, recovery: Option<f64>) -> Figures {
        Figures {
            requests,
            failed,
            window_seconds: 10.0,
            prometheus_availability: None,
            recovery_seconds: recovery,
        }
    }

    #[test]
    fn a_few_failures_within_the_budget_pass_though_below_the_objective() {
        // 3 of 500 at 50/s: 99.4%, but 3 of the 129.6k failures 30 days allow at 50/s.
        let v = judge(&figures(500, 3, Some(4.0)), &SLO);
        assert!(v.passed && v.continuity && v.recovered, "{v:?}");
        assert!(v.availability < 0.999);
        let b = v.budget_burned.expect("with an SLO");
        assert!((b - 3.0 / 129_600.0).abs() < 1e-9, "{b}");
    }

    #[test]
    fn without_an_slo_the_objective_alone_judges() {
        let l = Limits {
            from_slo: false,
            ..SLO
        };
        let v = judge(&figures(500, 3, Some(4.0)), &l);
        assert!(
            !v.passed && !v.continuity && v.budget_burned.is_none(),
            "{v:?}"
        );
        assert!(
            v.reasons[0].contains("99.400%") && v.reasons[0].contains("3 of 500"),
            "{:?}",
            v.reasons
        );
        assert!(judge(&figures(500, 0, Some(4.0)), &l).passed);
    }

    #[test]
    fn a_slow_or_missing_recovery_fails() {
        let v = judge(&figures(500, 0, Some(75.0)), &SLO);
        assert!(!v.passed && v.continuity && !v.recovered);
        assert!(
            v.reasons[0].contains("over the limit of 60 s"),
            "{:?}",
            v.reasons
        );
        let v = judge(&figures(500, 0, None), &SLO);
        assert!(
            v.reasons[0].contains("did not recover within 60 s"),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn prometheus_availability_counts_when_lower() {
        let mut f = figures(500, 0, Some(2.0));
        f.prometheus_availability = Some(0.99);
        let l = Limits {
            from_slo: false,
            ..SLO
        };
        let v = judge(&f, &l);
        assert!(
            !v.passed && v.reasons[0].contains("Prometheus saw 99.000%"),
            "{:?}",
            v.reasons
        );
    }
}
