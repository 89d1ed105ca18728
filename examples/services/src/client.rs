//! Calls to other services, with a timeout; a failure becomes a clear 5xx for the caller and
//! counts in `downstream_requests_total{dependency,outcome}` (and, through the response,
//! `app_errors_total{kind="downstream"}`).

use std::sync::Arc;

use axum::http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::server::{AppError, Shared};

#[derive(Clone)]
pub struct Downstream {
    name: &'static str,
    base: String,
    http: reqwest::Client,
    shared: Arc<Shared>,
}

/// What a dependency answered, when it answered with a status the caller should act on.
pub enum Reply<T> {
    Ok(T),
    /// A 4xx: the caller decides (e.g. auth's 401 passes through).
    Refused(StatusCode, String),
}

impl Downstream {
    pub fn new(
        shared: &Arc<Shared>,
        name: &'static str,
        url_key: &str,
    ) -> Result<Downstream, String> {
        let base = shared.config.require(url_key).map_err(|e| e.0)?;
        let http = reqwest::Client::builder()
            .timeout(shared.config.downstream_timeout)
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Downstream {
            name,
            base,
            http,
            shared: shared.clone(),
        })
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        bearer: Option<&str>,
    ) -> Result<Reply<T>, AppError> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Reply<T>, AppError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Reply<T>, AppError> {
        let name = self.name;
        let fail = |outcome: &str, status: StatusCode, message: String| {
            self.shared.metrics.downstream(name, outcome);
            AppError::downstream(status, message)
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                let ms = self.shared.config.downstream_timeout.as_millis();
                return Err(fail(
                    "timeout",
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("{name} did not answer within {ms} ms"),
                ));
            }
            Err(e) => {
                let why = if e.is_connect() {
                    "is unavailable (connection failed)"
                } else {
                    "failed"
                };
                return Err(fail(
                    "unavailable",
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{name} {why}: {e}"),
                ));
            }
        };
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        if status.is_server_error() {
            return Err(fail(
                "error",
                StatusCode::BAD_GATEWAY,
                format!("{name} answered {status}"),
            ));
        }
        if status.is_client_error() {
            self.shared.metrics.downstream(name, "refused");
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(text);
            return Ok(Reply::Refused(status, message));
        }
        match response.json::<T>().await {
            Ok(body) => {
                self.shared.metrics.downstream(name, "ok");
                Ok(Reply::Ok(body))
            }
            Err(e) if e.is_timeout() => {
                let ms = self.shared.config.downstream_timeout.as_millis();
                let message = format!("{name} did not finish its answer within {ms} ms");
                Err(fail("timeout", StatusCode::GATEWAY_TIMEOUT, message))
            }
            Err(e) => Err(fail(
                "error",
                StatusCode::BAD_GATEWAY,
                format!("{name} sent an unreadable answer: {e}"),
            )),
        }
    }
}
