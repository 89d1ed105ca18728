//! Configuration from the environment. `PLATFORM_*` keys come from `platformctl render`; the rest
//! are the service's own keys in `platform.yaml` (`services.<name>.config`) or its Secret.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// The default histogram buckets: they include the latency thresholds the examples' SLOs use.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone)]
pub struct Config {
    pub service: String,
    /// What `app_build_info` reports: `PLATFORM_VERSION` where the one binary stands in for
    /// every image tag (the simulated cluster's process runner sets the tag), else the crate's.
    pub version: String,
    pub environment: String,
    pub bind: IpAddr,
    pub port: u16,
    pub buckets: Vec<f64>,
    /// Share of counted requests answered with an injected 500 (0 to 1).
    pub error_rate: f64,
    /// Added to every counted request.
    pub latency: Duration,
    /// Bearer token for `/admin`; without one the admin endpoint is disabled.
    pub admin_token: Option<String>,
    /// How long the service keeps serving after SIGTERM while reporting not-ready, so load
    /// balancers stop sending before it stops accepting.
    pub shutdown_delay: Duration,
    /// How long in-flight requests may take to finish after the service stops accepting.
    pub shutdown_timeout: Duration,
    pub downstream_timeout: Duration,
    vars: HashMap<String, String>,
}

/// A configuration error: names the variable; the service exits 2.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    pub fn from_env(default_service: &str) -> Result<Config, ConfigError> {
        Config::from_vars(default_service, std::env::vars().collect())
    }

    pub fn from_vars(
        default_service: &str,
        vars: HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let get = |key: &str| vars.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        fn parse<T: std::str::FromStr>(
            key: &str,
            value: &str,
            what: &str,
        ) -> Result<T, ConfigError> {
            value
                .parse()
                .map_err(|_| ConfigError(format!("{key}={value:?}: expected {what}")))
        }
        let number = |key: &str, default: u64| -> Result<u64, ConfigError> {
            get(key).map_or(Ok(default), |v| parse(key, v, "a whole number"))
        };
        let error_rate: f64 = match get("FAULT_ERROR_RATE") {
            Some(v) => parse("FAULT_ERROR_RATE", v, "a number from 0 to 1")?,
            None => 0.0,
        };
        if !(0.0..=1.0).contains(&error_rate) {
            return Err(ConfigError(format!(
                "FAULT_ERROR_RATE={error_rate}: expected a number from 0 to 1"
            )));
        }
        let buckets = match get("PLATFORM_METRICS_BUCKETS") {
            Some(v) => parse_buckets(v)?,
            None => DEFAULT_BUCKETS.to_vec(),
        };
        let port = match get("PLATFORM_PORT") {
            Some(v) => parse("PLATFORM_PORT", v, "a port number")?,
            None => 8080,
        };
        let bind = match get("BIND_ADDRESS") {
            Some(v) => parse("BIND_ADDRESS", v, "an IP address")?,
            None => IpAddr::from([0, 0, 0, 0]),
        };
        Ok(Config {
            service: get("PLATFORM_SERVICE")
                .unwrap_or(default_service)
                .to_string(),
            version: get("PLATFORM_VERSION")
                .unwrap_or(env!("CARGO_PKG_VERSION"))
                .to_string(),
            environment: get("PLATFORM_ENVIRONMENT").unwrap_or("local").to_string(),
            bind,
            port,
            buckets,
            error_rate,
            latency: Duration::from_millis(number("FAULT_LATENCY_MS", 0)?),
            admin_token: get("ADMIN_TOKEN").map(str::to_string),
            shutdown_delay: Duration::from_millis(number("SHUTDOWN_DELAY_MS", 5000)?),
            shutdown_timeout: Duration::from_millis(number("SHUTDOWN_TIMEOUT_MS", 20_000)?),
            downstream_timeout: Duration::from_millis(number("DOWNSTREAM_TIMEOUT_MS", 2000)?),
            vars,
        })
    }

    /// A required variable (e.g. a dependency's URL).
    pub fn require(&self, key: &str) -> Result<String, ConfigError> {
        self.vars
            .get(key)
            .map(|v| v.trim().trim_end_matches('/').to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ConfigError(format!(
                    "{key} is not set (the {} service needs it)",
                    self.service
                ))
            })
    }
}

fn parse_buckets(value: &str) -> Result<Vec<f64>, ConfigError> {
    let mut buckets = Vec::new();
    for part in value.split(',') {
        let b: f64 = part.trim().parse().map_err(|_| {
            ConfigError(format!(
                "PLATFORM_METRICS_BUCKETS={value:?}: {part:?} is not a number"
            ))
        })?;
        if !(b > 0.0 && b.is_finite()) || buckets.last().is_some_and(|last| *last >= b) {
            return Err(ConfigError(format!(
                "PLATFORM_METRICS_BUCKETS={value:?}: buckets must be positive and increasing"
            )));
        }
        buckets.push(b);
    }
    Ok(buckets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_rendered_keys() {
        let c = Config::from_vars("auth", vars(&[])).expect("defaults");
        assert_eq!(
            (c.service.as_str(), c.port, c.error_rate),
            ("auth", 8080, 0.0)
        );
        assert_eq!(c.buckets, DEFAULT_BUCKETS);
        let c = Config::from_vars(
            "x",
            vars(&[
                ("PLATFORM_SERVICE", "customer-api"),
                ("PLATFORM_PORT", "9000"),
                ("PLATFORM_METRICS_BUCKETS", "0.1,0.3,1"),
                ("FAULT_ERROR_RATE", "0.2"),
                ("FAULT_LATENCY_MS", "400"),
            ]),
        )
        .expect("valid");
        assert_eq!((c.service.as_str(), c.port), ("customer-api", 9000));
        assert_eq!(c.buckets, vec![0.1, 0.3, 1.0]);
        assert_eq!((c.error_rate, c.latency), (0.2, Duration::from_millis(400)));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (key, value, needle) in [
            ("FAULT_ERROR_RATE", "1.5", "FAULT_ERROR_RATE=1.5"),
            ("FAULT_ERROR_RATE", "lots", "FAULT_ERROR_RATE=\"lots\""),
            ("FAULT_LATENCY_MS", "-3", "FAULT_LATENCY_MS=\"-3\""),
            ("PLATFORM_PORT", "70000", "PLATFORM_PORT=\"70000\""),
            ("PLATFORM_METRICS_BUCKETS", "0.5,0.1", "increasing"),
        ] {
            let err = Config::from_vars("s", vars(&[(key, value)])).expect_err(key);
            assert!(err.0.contains(needle), "{err}");
        }
    }
}
