//! Where the real Alertmanager delivers the platform's alerts in the cluster tier, on this
//! host's address on the pod network (the Alertmanager pod reaches nothing else of the host):
//! an HTTP endpoint of the shape of Slack's incoming webhooks (`POST` JSON, `200 ok`), which is
//! the test's own, and a real SMTP server, Debian's aiosmtpd, writing every mail it accepts
//! into a maildir.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// Bodies posted to the webhook, in order.
pub struct Webhook {
    pub addr: SocketAddr,
    pub bodies: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    pub fn start(ip: Ipv4Addr) -> Result<Webhook, String> {
        let listener = TcpListener::bind((ip, 0)).map_err(|e| format!("webhook on {ip}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &kept);
                });
            }
        });
        Ok(Webhook { addr, bodies })
    }

    /// Slack's incoming-webhook URL shape, on this endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/services/T0000/B0000/platformctl", self.addr)
    }
}

fn serve(stream: std::net::TcpStream, kept: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    kept.lock()
        .expect("bodies")
        .push(String::from_utf8_lossy(&body).into_owned());
    let mut stream = stream;
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
}

/// aiosmtpd on `ip`, killed when dropped.
pub struct Smtp {
    pub addr: SocketAddr,
    child: Child,
    maildir: tempfile::TempDir,
}

impl Smtp {
    pub fn start(ip: Ipv4Addr) -> Result<Smtp, String> {
        let port = TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port on {ip}: {e}"))?
            .port();
        let maildir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // Debian's python3-aiosmtpd is installed for Debian's python3 (tests/run).
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("{ip}:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("aiosmtpd (apt-get install python3-aiosmtpd): {e}"))?;
        let addr = SocketAddr::from((ip, port));
        let smtp = Smtp {
            addr,
            child,
            maildir,
        };
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if start.elapsed() > std::time::Duration::from_secs(20) {
                return Err(format!("aiosmtpd does not listen on {addr}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Ok(smtp)
    }

    /// Every mail received, as written (headers and body).
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.maildir.path().join("mail").join(sub);
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if let Ok(text) = std::fs::read_to_string(e.path()) {
                    out.push(text);
                }
            }
        }
        out
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
