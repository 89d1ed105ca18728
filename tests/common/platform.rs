//! What the cluster tests, doctor's CLI test and the `up` benchmark stand on: the test platform
//! (a platform.yaml of this repository, pointed at loopback services), a chart repository of the
//! stand-in charts served over HTTP on loopback, and git run without the developer's
//! configuration (git.rs). Included with `#[path]` by tests/cluster, tests/cli.rs and
//! benches/up.rs, so it names nothing of them.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use platformctl::addons::Helm;

#[path = "git.rs"]
mod git;
pub use self::git::git;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A platform.yaml of this repository (`source`, relative: `platform.yaml` is customer-platform)
/// for an existing cluster, its GitOps tree in `repo_url` (`gitops.remote`; none: `gitops.local`)
/// and its charts from `charts`. Prod's
/// Ingress and the HPAs need a cluster that publishes Ingress addresses and serves the metrics
/// API: `tests/sim/cluster up --with metrics`.
pub fn test_platform_from(
    source: &str,
    repo_url: Option<&str>,
    charts: &str,
) -> Result<String, String> {
    let text = std::fs::read_to_string(repo_root().join(source)).map_err(|e| e.to_string())?;
    let mut p: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    p["cluster"]["driver"] = "existing".into();
    let gitops = match repo_url {
        Some(url) => format!("remote: {{url: \"{url}\", branch: main}}"),
        None => "local: {}".to_string(),
    };
    p["gitops"] = serde_yaml::from_str(&gitops).map_err(|e| e.to_string())?;
    let addons = p["addons"]
        .as_mapping_mut()
        .ok_or("platform.yaml has no addons")?;
    for (_, addon) in addons.iter_mut() {
        addon["repository"] = charts.into();
    }
    serde_yaml::to_string(&p).map_err(|e| e.to_string())
}

/// The stand-in charts, packaged and indexed in a directory served over HTTP on 127.0.0.1 until
/// dropped.
pub struct ChartRepo {
    pub url: String,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
}

impl ChartRepo {
    pub fn start(helm: &Helm, home: &Path) -> Result<ChartRepo, String> {
        let root = home.join("repo");
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let url = format!("http://{addr}");
        let charts = repo_root().join("tests/fixtures/charts");
        let mut packaged = 0;
        for entry in std::fs::read_dir(&charts).map_err(|e| e.to_string())? {
            let dir = entry.map_err(|e| e.to_string())?.path();
            if dir.join("Chart.yaml").is_file() {
                helm_tool(
                    helm,
                    home,
                    &[
                        "package".as_ref(),
                        dir.as_os_str(),
                        "-d".as_ref(),
                        root.as_os_str(),
                    ],
                )?;
                packaged += 1;
            }
        }
        if packaged != 6 {
            return Err(format!(
                "expected 6 charts in {}, found {packaged}",
                charts.display()
            ));
        }
        helm_tool(
            helm,
            home,
            &[
                "repo".as_ref(),
                "index".as_ref(),
                root.as_os_str(),
                "--url".as_ref(),
                url.as_ref(),
            ],
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &root);
                    }
                }
            })
        };
        Ok(ChartRepo {
            url,
            addr,
            stop,
            server: Some(server),
        })
    }
}

impl Drop for ChartRepo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// `helm` for local work (package, repo index), with the fixture's helm directories.
fn helm_tool(helm: &Helm, home: &Path, args: &[&OsStr]) -> Result<(), String> {
    let out = Command::new(helm.binary())
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .map_err(|e| format!("helm {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "helm {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Answers one GET with a file under `root` (index.yaml and the chart archives), 404 otherwise.
fn serve(stream: TcpStream, root: &Path) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // The headers are not needed; read them so that the client sees a complete exchange.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("").trim_start_matches('/');
    let file = (!path.is_empty() && !path.split('/').any(|c| c == ".." || c.is_empty()))
        .then(|| root.join(path))
        .and_then(|f| std::fs::read(f).ok());
    let mut stream = &stream;
    let _ = match file {
        Some(body) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .and_then(|()| stream.write_all(&body)),
        None => stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ),
    };
}
