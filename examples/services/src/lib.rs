//! What every reference service shares: configuration from the environment (the ConfigMap and
//! Secret that `platformctl render` wires in), the HTTP server with its probes, metrics, fault
//! injection and admin endpoint, graceful shutdown, and calls to other services.
//!
//! The signals, identical in every service and exactly what the rendered SLO rules and
//! AnalysisTemplates query:
//! - `http_requests_total{service,method,route,status}`
//! - `http_request_duration_seconds{service,method,route}` (histogram, buckets from
//!   `PLATFORM_METRICS_BUCKETS`)
//! - `app_errors_total{service,kind}`: one per 5xx response; kind is `injected`, `downstream` or
//!   `internal`
//! - `app_build_info{service,version,environment}` (always 1)
//!
//! Probes, `/metrics` and `/admin` are not counted: they would dilute the request and latency
//! signals an SLO is computed from.

pub mod client;
pub mod config;
pub mod metrics;
pub mod server;

pub use config::Config;
pub use server::{AppError, ErrorKind, serve};
