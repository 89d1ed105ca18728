//! The AppProjects' `deployer` roles mean what they say, on the real argocd-server (same module
//! and version as the harness's Argo CD, `tests/sim/cluster up --with argocd`, plain HTTP on
//! loopback): the admin signs in with the initial password argocd-server generated, creates a
//! token of each environment's deployer role through Argo CD's API (as `argocd proj role
//! create-token` does), and each token may sync and refresh its own environment's Application
//! and is refused, permission denied, for the other's.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use serde_json::{Value, json};

use crate::support::TestResult;

/// The deployer roles of `platform`'s projects `own` and `other` (its environments), against
/// the argocd-server at `server`.
pub async fn deployer_roles(
    server: SocketAddr,
    client: &Client,
    platform: &str,
    own: &str,
    other: &str,
) -> TestResult {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "argocd");
    let initial = secrets
        .get("argocd-initial-admin-secret")
        .await
        .map_err(|e| format!("argocd-server's initial admin secret: {e}"))?;
    let password = initial
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|p| String::from_utf8_lossy(&p.0).into_owned())
        .ok_or("argocd-initial-admin-secret has no password")?;
    let (code, session) = call(
        server,
        "POST",
        "/api/v1/session",
        None,
        &json!({"username": "admin", "password": password}),
    )
    .await?;
    let admin = session["token"]
        .as_str()
        .filter(|_| code == 200)
        .ok_or_else(|| format!("admin sign-in: {code} {session}"))?
        .to_string();
    for (mine, theirs) in [(own, other), (other, own)] {
        let path = format!("/api/v1/projects/{mine}/roles/deployer/token");
        let (code, created) = call(
            server,
            "POST",
            &path,
            Some(&admin),
            &json!({"project": mine, "role": "deployer", "description": "platformctl test", "expiresIn": 3600}),
        )
        .await?;
        let token = created["token"]
            .as_str()
            .filter(|_| code == 200)
            .ok_or_else(|| format!("a token of {mine}'s deployer role: {code} {created}"))?
            .to_string();
        let app = format!("{platform}-{mine}");
        let sync = format!("/api/v1/applications/{app}/sync");
        let (code, body) = call(server, "POST", &sync, Some(&token), &json!({})).await?;
        if code != 200 {
            return Err(format!("{mine}'s deployer syncing {app}: {code} {body}"));
        }
        let refresh = format!("/api/v1/applications/{app}?refresh=normal");
        let (code, body) = call(server, "GET", &refresh, Some(&token), &Value::Null).await?;
        if code != 200 || body["metadata"]["name"] != app.as_str() {
            return Err(format!("{mine}'s deployer refreshing {app}: {code} {body}"));
        }
        let foreign = format!("{platform}-{theirs}");
        for (method, path, body) in [
            (
                "POST",
                format!("/api/v1/applications/{foreign}/sync"),
                json!({}),
            ),
            (
                "GET",
                format!("/api/v1/applications/{foreign}?refresh=normal"),
                Value::Null,
            ),
        ] {
            let (code, answer) = call(server, method, &path, Some(&token), &body).await?;
            let said = answer["message"].as_str().unwrap_or_default();
            if code != 403 || !said.contains("permission denied") {
                return Err(format!(
                    "{mine}'s deployer: {method} {path} answered {code} {answer}, not 403 permission denied"
                ));
            }
        }
    }
    Ok(())
}

/// One request to Argo CD's REST API (HTTP/1.0: the whole body, never chunked): status and JSON.
async fn call(
    server: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<(u16, Value), String> {
    let payload = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {server}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    );
    let out = crate::monitoring::exchange(server, &request).await?;
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{method} {path}: not HTTP: {out}"))?;
    let json = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok((code, json))
}
