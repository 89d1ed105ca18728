//! What an SLO is, once, for `render` (the recording and alerting rules it writes) and for
//! `slo status`, `validate` and `status` (which read those rules' series back): the SLI windows,
//! the multi-window multi-burn-rate alert table, and each SLO of `platform.yaml` with its name,
//! objective and window.
//!
//! It does not write PromQL (render's templates and context do) nor ask Prometheus (`slo`).

use crate::config::{self, Platform, Severity};

/// Windows of the SLI recording rules (`slo:sli_error:ratio_rate<window>`); the SLO window is
/// added when it is not one of them.
pub const SLI_WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// Multi-window multi-burn-rate alerts for a 30-day budget (SRE workbook, table 5-8):
/// severity, long window, short window, burn-rate factor. An alert fires when the error ratio
/// over both windows exceeds `factor` times the budget. The severities are the ones
/// `alerting.routes` route by.
pub const BURN_ALERTS: [(Severity, &str, &str, f64); 4] = [
    (Severity::Page, "1h", "5m", 14.4),
    (Severity::Page, "6h", "30m", 6.0),
    (Severity::Ticket, "1d", "2h", 3.0),
    (Severity::Ticket, "3d", "6h", 1.0),
];

/// The name of the alerting rule of every burn-rate pair.
pub const BURN_ALERT: &str = "SLOErrorBudgetBurn";

/// The windows `slo status` reports the SLI over, before the SLO's own window.
pub const REPORTED_WINDOWS: [&str; 4] = ["5m", "1h", "6h", "1d"];

/// The window the time to exhaustion is computed at.
pub const EXHAUSTION_WINDOW: &str = "1h";

/// Which indicator an SLO measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sli {
    /// Requests answered without an error.
    Availability,
    /// Requests answered within the latency threshold.
    Latency,
}

impl Sli {
    pub fn as_str(self) -> &'static str {
        match self {
            Sli::Availability => "availability",
            Sli::Latency => "latency",
        }
    }
}

/// One SLO as rendered: `platform.yaml`'s `slos[]` entry gives one per indicator it names.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// `<service>-<sli>`: the `slo` label of every series and alert of it.
    pub name: String,
    pub sli: Sli,
    pub service: String,
    pub environment: String,
    pub namespace: String,
    /// The share of good events promised, e.g. `0.999`.
    pub objective: f64,
    /// The SLO window as written, e.g. `30d`.
    pub window: String,
    #[serde(skip)]
    pub window_seconds: u64,
    /// For a latency SLO, the threshold in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

impl Spec {
    /// The error budget: the share of events allowed to be bad, e.g. `0.001`.
    pub fn budget(&self) -> f64 {
        1.0 - self.objective
    }

    /// The PrometheusRule group render writes this SLO's rules into.
    pub fn group(&self) -> String {
        format!("slo-{}", self.name)
    }

    /// The PrometheusRule object holding the group (one per service and environment).
    pub fn rule_object(&self) -> String {
        format!("{}-slo", self.service)
    }
}

/// `<service>-<sli>`.
pub fn name(service: &str, sli: Sli) -> String {
    format!("{service}-{}", sli.as_str())
}

/// Every SLO render writes rules for: those of environments with monitoring, in
/// `platform.yaml` order.
pub fn specs(p: &Platform) -> Vec<Spec> {
    let mut out = Vec::new();
    for slo in &p.slos {
        let Some(env) = p.environments.iter().find(|e| e.name == slo.environment) else {
            continue;
        };
        if !env.monitoring || !p.services.iter().any(|s| s.name == slo.service) {
            continue;
        }
        let spec = |sli, objective: f64, threshold| Spec {
            name: name(&slo.service, sli),
            sli,
            service: slo.service.clone(),
            environment: env.name.clone(),
            namespace: env.namespace.clone(),
            // (rounded: 99.9 / 100 is 0.9990000000000001 in binary)
            objective: (objective / 100.0 * 1e9).round() / 1e9,
            window: slo.window.clone(),
            window_seconds: config::duration_seconds(&slo.window).unwrap_or(0),
            threshold,
        };
        if let Some(a) = &slo.availability {
            out.push(spec(Sli::Availability, a.objective, None));
        }
        if let Some(l) = &slo.latency {
            out.push(spec(Sli::Latency, l.percentile, Some(l.threshold)));
        }
    }
    out
}

/// The windows recorded for an SLO of `window`: [`SLI_WINDOWS`], then `window` when it is
/// not one of them.
pub fn recorded_windows(window: &str) -> Vec<String> {
    let mut windows: Vec<String> = SLI_WINDOWS.iter().map(|w| w.to_string()).collect();
    if !windows.iter().any(|w| w == window) {
        windows.push(window.to_string());
    }
    windows
}

/// The recording rule of the error ratio over `window`.
pub fn error_ratio_series(window: &str) -> String {
    format!("slo:sli_error:ratio_rate{window}")
}

/// The recording rule of the remaining budget over the SLO window.
pub const BUDGET_REMAINING_SERIES: &str = "slo:error_budget_remaining:ratio";

/// The SLOs of the reference platform (this repository's platform.yaml), for tests.
#[cfg(test)]
pub(crate) fn reference() -> Vec<Spec> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/platform.yaml"))
        .expect("platform.yaml");
    specs(&config::parse(std::path::Path::new("platform.yaml"), &text).expect("valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_platform_has_two_slos_in_prod() {
        let specs = reference();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["customer-api-availability", "customer-api-latency"]);
        let a = &specs[0];
        assert_eq!((a.namespace.as_str(), a.window.as_str()), ("prod", "30d"));
        assert!((a.budget() - 0.001).abs() < 1e-12);
        assert_eq!(a.window_seconds, 30 * 86_400);
        assert_eq!(a.group(), "slo-customer-api-availability");
        assert_eq!(specs[1].threshold, Some(0.3));
        assert!((specs[1].objective - 0.95).abs() < 1e-12);
    }

    #[test]
    fn the_slo_window_is_recorded_once() {
        assert_eq!(recorded_windows("30d").len(), 8);
        assert_eq!(recorded_windows("1d").len(), 7);
        assert_eq!(error_ratio_series("5m"), "slo:sli_error:ratio_rate5m");
    }
}
