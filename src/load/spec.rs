//! What platform.yaml's `load:` section says about a run: the entry for a service in an
//! environment (or by its name), and its thresholds as k6-style expressions.

use crate::config::{LoadTest, Platform};

/// The `load:` entry named `name`, else the one for service `name` in `env` (the first, when
/// several are).
pub fn find<'a>(platform: &'a Platform, name: &str, env: Option<&str>) -> Option<&'a LoadTest> {
    platform
        .load
        .iter()
        .find(|l| l.name == name && env.is_none_or(|e| e == l.environment))
        .or_else(|| {
            platform
                .load
                .iter()
                .find(|l| l.service == name && env.is_none_or(|e| e == l.environment))
        })
}

/// The entry's thresholds, written as `--threshold` takes them: `maxErrorRate` as
/// `errors<=N%`, `latency` as `pN<Tms`, then its `expressions`.
pub fn thresholds(l: &LoadTest) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = l.thresholds.max_error_rate {
        out.push(format!("errors<={e}%"));
    }
    if let Some(lat) = &l.thresholds.latency {
        out.push(format!(
            "p{}<{}ms",
            lat.percentile,
            (lat.threshold * 1000.0 * 1000.0).round() / 1000.0
        ));
    }
    out.extend(l.thresholds.expressions.iter().cloned());
    out
}
