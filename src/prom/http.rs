//! The one HTTP client behind [`super::Client`] and [`super::alertmanager::Client`]: plain
//! HTTP/1.1 (hyper, the stack kube already links) to a base URL that may carry a path prefix
//! (a route prefix), one timeout over each whole exchange, and the transport's failures turned
//! into [`Error`]s naming the server and its address.
//!
//! It does not know either API: envelopes, status codes and JSON shapes are the clients'. No
//! TLS, authentication, redirects or retries: the servers are reached over a loopback
//! port-forward, and a caller that wants to retry decides when.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{Error, Server};
use crate::kube::portforward::{self, Backend, Forward};

/// How long one request may take, connecting and reading the whole answer included, unless the
/// client is told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub(super) struct Http {
    server: Server,
    /// `http://host:port`, no trailing slash.
    origin: String,
    /// The route prefix: empty, or `/prefix` without a trailing slash.
    prefix: String,
    /// What errors call the server's address: the base URL, or the pod behind a forward.
    address: String,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Keeps the port-forward's listener open for as long as a clone of this client lives.
    _forward: Option<Arc<Forward>>,
}

/// Plain HTTP/1.1; idle connections kept for 30 s when `pool`, else none.
fn client(pool: bool) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30));
    if !pool {
        builder.pool_max_idle_per_host(0);
    }
    builder.build(connector)
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("server", &self.server)
            .field("address", &self.address)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// An answer, whole.
pub(super) struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    /// `GET /api/v1/query`: what errors about this answer name.
    pub endpoint: String,
}

impl Http {
    /// A client for `base` (`http://127.0.0.1:9090`, or with a route prefix
    /// `http://127.0.0.1:9090/prometheus`).
    pub fn new(server: Server, base: &str) -> Result<Http, Error> {
        let invalid = |reason: &'static str| Error::Url {
            server,
            url: base.to_string(),
            reason,
        };
        let uri: hyper::Uri = base.parse().map_err(|_| invalid("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(invalid(
                "only `http://` is supported (the servers are reached over a loopback port-forward)",
            ));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if uri.query().is_some() {
            return Err(invalid("a base URL has no query"));
        }
        Ok(Http {
            server,
            origin: format!("http://{authority}"),
            prefix: uri.path().trim_end_matches('/').to_string(),
            address: base.trim_end_matches('/').to_string(),
            timeout: DEFAULT_TIMEOUT,
            client: client(true),
            _forward: None,
        })
    }

    /// A client for the pod behind `forward`, named as that pod in errors. Connections are not
    /// kept for reuse: each request is a new port-forward stream. An idle stream whose pod
    /// stopped listening is not always closed by the other end (kwok's is not), and a request
    /// on it would wait for its timeout; a new stream fails at once.
    fn through(server: Server, forward: Forward, namespace: &str) -> Result<Http, Error> {
        let mut http = Http::new(server, &format!("http://{}", forward.addr()))?;
        http.client = client(false);
        http.address = format!(
            "pod `{}` in namespace `{namespace}` (forwarded to {})",
            forward.pod(),
            forward.addr()
        );
        http._forward = Some(Arc::new(forward));
        Ok(http)
    }

    /// A client for a ready pod of `backend` in `namespace`, through a port-forward that lives
    /// as long as the client and its clones. The pod is looked for once: none ready is an error
    /// now, not a wait.
    pub async fn via_port_forward(
        server: Server,
        client: &kube::Client,
        namespace: &str,
        backend: &Backend,
        port: u16,
    ) -> Result<Http, Error> {
        let forward = portforward::to_backend(client, namespace, backend, port)
            .await
            .map_err(|source| Error::PortForward {
                server,
                backend: backend.clone(),
                namespace: namespace.to_string(),
                source: Box::new(source),
            })?;
        Http::through(server, forward, namespace)
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Http {
        self.timeout = timeout;
        self
    }

    pub fn with_prefix(mut self, prefix: &str) -> Http {
        let prefix = prefix.trim_matches('/');
        self.prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{prefix}")
        };
        self
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// `GET path?query`; `path` is the API's (`/api/v1/query`), the prefix is added here.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Reply, Error> {
        self.send(Method::GET, path, query, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: Vec<u8>) -> Result<Reply, Error> {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, Error> {
        let endpoint = format!("{method} {}{path}", self.prefix);
        let mut uri = format!("{}{}{path}", self.origin, self.prefix);
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        let mut request = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("platformctl/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if self._forward.is_some() {
            // The server closes the connection after answering, which ends the port-forward
            // stream. Closing only our side would not: a port-forward cannot pass a half-close
            // on, so the server would hold the connection open until its idle timeout
            // (Prometheus: 5 minutes), and a few hundred requests later refuse new ones at its
            // connection limit.
            request = request.header(header::CONNECTION, "close");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|_| Error::Url {
                server: self.server,
                url: uri.clone(),
                reason: "not a valid request URL",
            })?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    Error::Unreachable {
                        server: self.server,
                        address: self.address.clone(),
                        source: Box::new(e),
                    }
                } else {
                    self.transport(&endpoint, Box::new(e))
                }
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.transport(&endpoint, Box::new(e)))?
                .to_bytes();
            Ok(Reply {
                status,
                body,
                endpoint: endpoint.clone(),
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(reply) => reply,
            Err(_) => Err(Error::TimedOut {
                server: self.server,
                address: self.address.clone(),
                endpoint,
                after: self.timeout,
            }),
        }
    }

    fn transport(&self, endpoint: &str, source: Box<dyn std::error::Error + Send + Sync>) -> Error {
        Error::Transport {
            server: self.server,
            address: self.address.clone(),
            endpoint: endpoint.to_string(),
            source,
        }
    }

    /// An error for an answer with an unexpected status, carrying the start of its body (a JSON
    /// string, as Alertmanager sends its errors, is unquoted).
    pub fn status_error(&self, reply: &Reply) -> Error {
        let text = String::from_utf8_lossy(&reply.body);
        let text = serde_json::from_str::<String>(&text).unwrap_or_else(|_| text.into_owned());
        let mut body: String = text.trim().chars().take(300).collect();
        if text.trim().chars().count() > 300 {
            body.push('…');
        }
        Error::Status {
            server: self.server,
            address: self.address.clone(),
            endpoint: reply.endpoint.clone(),
            status: reply.status.as_u16(),
            body,
        }
    }

    /// `reply`'s body as JSON of type `T`, or an error naming the endpoint and where in the
    /// document it went wrong.
    pub fn parse<T: serde::de::DeserializeOwned>(&self, reply: &Reply) -> Result<T, Error> {
        let mut de = serde_json::Deserializer::from_slice(&reply.body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| Error::Parse {
            server: self.server,
            address: self.address.clone(),
            endpoint: reply.endpoint.clone(),
            path: e.path().to_string(),
            source: e.into_inner(),
        })
    }

    /// Readiness (`/-/ready`): 200 is ready, 503 is starting (or shutting down).
    pub async fn ready(&self) -> Result<bool, Error> {
        let reply = self.get("/-/ready", &[]).await?;
        match reply.status {
            s if s.is_success() => Ok(true),
            StatusCode::SERVICE_UNAVAILABLE => Ok(false),
            _ => Err(self.status_error(&reply)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_keep_their_route_prefix() {
        let http = Http::new(Server::Prometheus, "http://127.0.0.1:9090/prom/").expect("url");
        assert_eq!(http.origin, "http://127.0.0.1:9090");
        assert_eq!(http.prefix, "/prom");
        assert_eq!(http.address(), "http://127.0.0.1:9090/prom");
        let http = Http::new(Server::Prometheus, "http://localhost:9090").expect("url");
        assert_eq!(http.prefix, "");
        for (prefix, want) in [("", ""), ("/", ""), ("x", "/x"), ("/x/y/", "/x/y")] {
            let http = http.clone().with_prefix(prefix);
            assert_eq!(http.prefix, want, "{prefix}");
        }
    }

    #[test]
    fn only_plain_http_base_urls() {
        for url in [
            "https://127.0.0.1:9090",
            "127.0.0.1:9090",
            "http://",
            "http://h:1/?a=b",
        ] {
            let err = Http::new(Server::Alertmanager, url).expect_err(url);
            assert!(matches!(err, Error::Url { .. }), "{url}: {err}");
            assert!(err.to_string().contains(url), "{err}");
        }
    }
}
