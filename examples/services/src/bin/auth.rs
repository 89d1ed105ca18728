//! auth: POST /tokens {user} issues a bearer token; GET /verify checks one (200 {user} or 401).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use platform_services::AppError;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user: String,
}

#[derive(Serialize)]
struct Token {
    token: String,
}

#[derive(Serialize)]
struct Identity {
    user: String,
}

type Tokens = Arc<RwLock<HashMap<String, String>>>;

async fn issue(
    State(tokens): State<Tokens>,
    Json(req): Json<TokenRequest>,
) -> Result<(StatusCode, Json<Token>), AppError> {
    if req.user.trim().is_empty() {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user must not be empty",
        ));
    }
    // A bearer credential: from the operating system's CSPRNG, not a fast PRNG.
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no randomness: {e}"),
        )
    })?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    tokens
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), req.user);
    Ok((StatusCode::CREATED, Json(Token { token })))
}

async fn verify(
    State(tokens): State<Tokens>,
    headers: HeaderMap,
) -> Result<Json<Identity>, AppError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| AppError::new(StatusCode::UNAUTHORIZED, "no bearer token"))?;
    let tokens = tokens.read().unwrap_or_else(|e| e.into_inner());
    let user = tokens
        .get(token)
        .ok_or_else(|| AppError::new(StatusCode::UNAUTHORIZED, "unknown token"))?;
    Ok(Json(Identity { user: user.clone() }))
}

fn main() -> std::process::ExitCode {
    platform_services::server::main("auth", |_| async {
        Ok((
            Router::new()
                .route("/tokens", post(issue))
                .route("/verify", get(verify)),
            Tokens::default(),
        ))
    })
}
