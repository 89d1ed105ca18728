//! The HTTP server every service runs: its routes plus probes, `/metrics` and `/admin/faults`,
//! measured and fault-injected by one middleware, with graceful shutdown on SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::Config;
use crate::metrics::Metrics;

/// Why a request failed on the service's side; becomes `app_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Injected,
    Downstream,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Injected => "injected",
            ErrorKind::Downstream => "downstream",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error response: `{"error": message}` with a status. A 5xx carries its kind to the metrics.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
    pub kind: ErrorKind,
}

impl AppError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> AppError {
        AppError {
            status,
            message: message.into(),
            kind: ErrorKind::Internal,
        }
    }

    pub fn downstream(status: StatusCode, message: impl Into<String>) -> AppError {
        AppError {
            status,
            message: message.into(),
            kind: ErrorKind::Downstream,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({"error": self.message}))).into_response();
        response.extensions_mut().insert(self.kind);
        response
    }
}

/// Faults in force; changed at runtime through `/admin/faults`.
pub struct Faults {
    /// f64 bits of the error rate.
    error_rate: AtomicU64,
    latency_ms: AtomicU64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSettings {
    pub error_rate: f64,
    pub latency_ms: u64,
}

impl Faults {
    fn get(&self) -> FaultSettings {
        FaultSettings {
            error_rate: f64::from_bits(self.error_rate.load(Ordering::Relaxed)),
            latency_ms: self.latency_ms.load(Ordering::Relaxed),
        }
    }

    fn set(&self, s: &FaultSettings) {
        self.error_rate
            .store(s.error_rate.to_bits(), Ordering::Relaxed);
        self.latency_ms.store(s.latency_ms, Ordering::Relaxed);
    }
}

pub struct Shared {
    pub config: Config,
    pub metrics: Metrics,
    pub faults: Faults,
    draining: AtomicBool,
}

/// Paths that are not the service's own traffic: neither measured nor fault-injected.
fn is_operational(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics") || route.starts_with("/admin/")
}

async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_string(),
        None => "unmatched".to_string(),
    };
    if is_operational(&route) {
        return next.run(request).await;
    }
    // A fixed set of label values: a client cannot mint new series with made-up methods.
    let method = match request.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    };
    let start = Instant::now();
    // Faults apply to the service's routes only: a typo or a scanner's path gets its plain 404.
    let faults = if route == "unmatched" {
        FaultSettings {
            error_rate: 0.0,
            latency_ms: 0,
        }
    } else {
        shared.faults.get()
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let response = if faults.error_rate > 0.0 && fastrand::f64() < faults.error_rate {
        AppError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "injected fault".into(),
            kind: ErrorKind::Injected,
        }
        .into_response()
    } else {
        as_json_error(next.run(request).await).await
    };
    let status = response.status();
    let kind = status.is_server_error().then(|| {
        response
            .extensions()
            .get::<ErrorKind>()
            .copied()
            .unwrap_or(ErrorKind::Internal)
            .as_str()
    });
    shared
        .metrics
        .observe(method, &route, status.as_u16(), start.elapsed(), kind);
    response
}

/// Errors the framework answers itself (a body that is not JSON, a wrong content type, an
/// unknown method) come as plain text; every error a client sees is `{"error": message}`.
async fn as_json_error(response: Response) -> Response {
    let status = response.status();
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error())
        || !is_text
        || response.extensions().get::<ErrorKind>().is_some()
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_string();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_lowercase();
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(
        parts,
        axum::body::Body::from(json!({"error": message}).to_string()),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        "ok\n".into_response()
    }
}

async fn metrics_text(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(),
    )
        .into_response()
}

fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(token) = shared.config.admin_token.as_deref() else {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "the admin endpoint is disabled: ADMIN_TOKEN is not set",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time comparison: the token is a credential.
    let same = given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if same {
        Ok(())
    } else {
        Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ))
    }
}

async fn get_faults(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<FaultSettings>, AppError> {
    authorize(&shared, &headers)?;
    Ok(Json(shared.faults.get()))
}

async fn put_faults(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<FaultSettings>, AppError> {
    authorize(&shared, &headers)?;
    let settings: FaultSettings = serde_json::from_slice(&body).map_err(|e| {
        AppError::new(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"errorRate\": 0..1, \"latencyMs\": n}}: {e}"),
        )
    })?;
    if !(0.0..=1.0).contains(&settings.error_rate) || settings.latency_ms > 60_000 {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            "errorRate must be within 0..1 and latencyMs at most 60000",
        ));
    }
    shared.faults.set(&settings);
    log(
        &shared.config.service,
        "faults changed",
        json!({"errorRate": settings.error_rate, "latencyMs": settings.latency_ms}),
    );
    Ok(Json(settings))
}

/// One JSON line on stdout.
pub fn log(service: &str, message: &str, fields: serde_json::Value) {
    let mut line = json!({"service": service, "msg": message});
    if let (Some(line), serde_json::Value::Object(fields)) = (line.as_object_mut(), fields) {
        line.extend(fields);
    }
    // A closed stdout must not take a request down with it.
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Why a service could not run: its configuration (exit 2) or the system (exit 1).
#[derive(Debug)]
pub enum ServeError {
    Config(String),
    Io(std::io::Error),
}

impl From<std::io::Error> for ServeError {
    fn from(e: std::io::Error) -> ServeError {
        ServeError::Io(e)
    }
}

/// Runs `routes` (whose state is `S`) with the shared endpoints until SIGTERM or SIGINT: then
/// reports not-ready, keeps serving for `SHUTDOWN_DELAY_MS`, stops accepting, lets in-flight
/// requests finish and returns.
pub async fn serve<S, F, Fut>(config: Config, version: &str, build: F) -> Result<(), ServeError>
where
    S: Clone + Send + Sync + 'static,
    F: FnOnce(Arc<Shared>) -> Fut,
    Fut: Future<Output = Result<(Router<S>, S), String>>,
{
    let metrics = Metrics::new(
        &config.service,
        version,
        &config.environment,
        config.buckets.clone(),
    );
    let faults = Faults {
        error_rate: AtomicU64::new(config.error_rate.to_bits()),
        latency_ms: AtomicU64::new(config.latency.as_millis() as u64),
    };
    let shared = Arc::new(Shared {
        config,
        metrics,
        faults,
        draining: AtomicBool::new(false),
    });
    let (routes, state) = build(shared.clone()).await.map_err(ServeError::Config)?;
    let operational = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/admin/faults", get(get_faults).put(put_faults))
        .with_state(shared.clone());
    let app = routes
        .with_state(state)
        .merge(operational)
        .layer(middleware::from_fn_with_state(shared.clone(), observe));

    let signals = Signals::register()?;
    let addr = SocketAddr::new(shared.config.bind, shared.config.port);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    log(
        &shared.config.service,
        "listening",
        json!({"addr": local.to_string(), "version": version}),
    );
    let draining = shared.clone();
    let stopped_accepting = Arc::new(tokio::sync::Notify::new());
    let notify = stopped_accepting.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let signal = signals.recv().await;
        draining.draining.store(true, Ordering::Relaxed);
        let delay = draining.config.shutdown_delay;
        log(
            &draining.config.service,
            "draining",
            json!({"signal": signal, "delayMs": delay.as_millis() as u64}),
        );
        tokio::time::sleep(delay).await;
        log(
            &draining.config.service,
            "stopped accepting; finishing in-flight requests",
            json!({}),
        );
        notify.notify_one();
    });
    // In-flight requests get SHUTDOWN_TIMEOUT_MS to finish; then the service exits anyway, before
    // the kubelet's SIGKILL would, and says so.
    let timeout = shared.config.shutdown_timeout;
    tokio::select! {
        served = server => served?,
        () = async {
            stopped_accepting.notified().await;
            tokio::time::sleep(timeout).await;
        } => {
            log(&shared.config.service, "gave up on in-flight requests", json!({"timeoutMs": timeout.as_millis() as u64}));
            return Ok(());
        }
    }
    log(&shared.config.service, "stopped", json!({}));
    Ok(())
}

/// SIGTERM and SIGINT, registered before the service says it listens: until a handler exists a
/// SIGTERM keeps its default action and kills the process without draining.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// The `main` of every service binary: configuration errors exit 2, server errors 1.
pub fn main<S, F, Fut>(default_service: &str, build: F) -> std::process::ExitCode
where
    S: Clone + Send + Sync + 'static,
    F: FnOnce(Arc<Shared>) -> Fut,
    Fut: Future<Output = Result<(Router<S>, S), String>>,
{
    let config = match Config::from_env(default_service) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{default_service}: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{default_service}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let version = config.version.clone();
    match runtime.block_on(serve(config, &version, build)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(ServeError::Config(e)) => {
            eprintln!("{default_service}: configuration error: {e}");
            std::process::ExitCode::from(2)
        }
        Err(ServeError::Io(e)) => {
            eprintln!("{default_service}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
