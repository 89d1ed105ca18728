//! Where a run's requests go and how one is sent: the endpoint set (which may change while the
//! run goes on), and one exchange on a worker's keep-alive HTTP/1.1 connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// One kind of request; a run sends them in turn.
#[derive(Debug, Clone)]
pub struct Request {
    /// Path and query.
    pub path: String,
    /// The Host header.
    pub host: String,
}

/// Where requests go: a set of endpoints that may change while the run goes on (a Service's
/// ready endpoints as pods come and go).
#[derive(Debug, Default)]
pub struct Endpoints {
    set: RwLock<Arc<Vec<SocketAddr>>>,
    version: AtomicU64,
    next: AtomicUsize,
}

impl Endpoints {
    pub fn new(addrs: Vec<SocketAddr>) -> Endpoints {
        Endpoints {
            set: RwLock::new(Arc::new(addrs)),
            version: AtomicU64::new(0),
            next: AtomicUsize::new(0),
        }
    }

    /// Replaces the set (a no-op when it is the same).
    pub fn set(&self, mut addrs: Vec<SocketAddr>) {
        addrs.sort();
        addrs.dedup();
        let mut set = self.set.write().unwrap_or_else(|e| e.into_inner());
        if **set != addrs {
            *set = Arc::new(addrs);
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    pub fn current(&self) -> Arc<Vec<SocketAddr>> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn pick(&self) -> Option<SocketAddr> {
        let set = self.current();
        if set.is_empty() {
            return None;
        }
        Some(set[self.next.fetch_add(1, Ordering::Relaxed) % set.len()])
    }

    fn contains(&self, addr: &SocketAddr) -> bool {
        self.current().contains(addr)
    }
}

/// A worker's keep-alive connection, to the endpoint it opened to, as of a version of the set.
pub(super) struct Conn {
    addr: SocketAddr,
    version: u64,
    sender: SendRequest<Empty<Bytes>>,
}

/// One request on the worker's connection, opened (or re-opened) as needed: the answer's status,
/// the body read whole.
pub(super) async fn exchange(
    endpoints: &Endpoints,
    conn: &mut Option<Conn>,
    req: &Request,
) -> Result<u16, String> {
    let version = endpoints.version.load(Ordering::Acquire);
    if let Some(c) = conn
        && c.version != version
    {
        if endpoints.contains(&c.addr) {
            c.version = version;
        } else {
            *conn = None;
        }
    }
    if conn.as_ref().is_some_and(|c| c.sender.is_closed()) {
        *conn = None;
    }
    let c = match conn {
        Some(c) => c,
        None => {
            let addr = endpoints
                .pick()
                .ok_or_else(|| "no endpoint to send to".to_string())?;
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| connect_error(&e))?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            conn.insert(Conn {
                addr,
                version,
                sender,
            })
        }
    };
    c.sender
        .ready()
        .await
        .map_err(|e| format!("connection closed: {}", reason(&e)))?;
    let request = hyper::Request::get(&req.path)
        .header(hyper::header::HOST, &req.host)
        .header(
            hyper::header::USER_AGENT,
            concat!("platformctl-load/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = c
        .sender
        .send_request(request)
        .await
        .map_err(|e| format!("no answer: {}", reason(&e)))?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {}", reason(&e)))?;
    Ok(status)
}

fn connect_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "connect timed out".into(),
        _ => format!("connect: {e}"),
    }
}

/// hyper's error, with its cause (`connection closed before message completed`, `connection
/// reset by peer`), in a few stable words so that the counts group.
fn reason(e: &hyper::Error) -> String {
    use std::error::Error as _;
    match e.source() {
        Some(io) => match io.downcast_ref::<std::io::Error>() {
            Some(io) if io.kind() == std::io::ErrorKind::ConnectionReset => {
                "connection reset".into()
            }
            _ => format!("{e}: {io}"),
        },
        None => e.to_string(),
    }
}
