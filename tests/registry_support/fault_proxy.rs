//! A fault-injecting HTTP proxy in front of a registry, on a free 127.0.0.1 port:
//! each request head is read and matched against the rules; a matching rule answers
//! a status itself (429 with `Retry-After`, 503, …) or cuts the connection; anything
//! else is piped to the registry byte for byte (with `Connection: close`, so every
//! request comes through here again). Stopped when dropped.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status (with `Retry-After` when given) and a distribution error body.
    Status(u16, Option<String>),
    /// Close the connection without an answer (after the head; a body is left unread).
    Cut,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    /// A substring of the request path.
    pub path: String,
    pub fault: Fault,
    /// How many matching requests get the fault.
    pub times: usize,
    /// How many did.
    pub fired: usize,
}

impl Rule {
    pub fn new(method: &'static str, path: &str, fault: Fault, times: usize) -> Rule {
        Rule {
            method,
            path: path.to_string(),
            fault,
            times,
            fired: 0,
        }
    }
}

pub struct FaultProxy {
    pub port: u16,
    pub rules: Arc<Mutex<Vec<Rule>>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> FaultProxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let shared = rules.clone();
        rt.spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let rules = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, upstream_port, rules).await;
                });
            }
        });
        FaultProxy {
            port,
            rules,
            rt: Some(rt),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn add(&self, rule: Rule) {
        self.rules.lock().unwrap().push(rule);
    }

    /// `(method path, fired)` of every rule.
    pub fn fired(&self) -> Vec<(String, usize)> {
        self.rules
            .lock()
            .unwrap()
            .iter()
            .map(|r| (format!("{} {}", r.method, r.path), r.fired))
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn serve(
    mut conn: TcpStream,
    upstream_port: u16,
    rules: Arc<Mutex<Vec<Rule>>>,
) -> std::io::Result<()> {
    // Read the head.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head[0] == 0x16 {
            // A TLS hello: answer in plain HTTP, as a plain-HTTP registry does.
            conn.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await?;
            return Ok(());
        }
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let (head_bytes, rest) = head.split_at(end);
    let text = String::from_utf8_lossy(head_bytes).to_string();
    let mut first = text.lines().next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let fault = {
        let mut rules = rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| r.method == method && path.contains(&r.path) && r.fired < r.times)
            .map(|r| {
                r.fired += 1;
                r.fault.clone()
            })
    };
    match fault {
        Some(Fault::Cut) => return Ok(()),
        Some(Fault::Status(code, retry_after)) => {
            let body = format!(
                r#"{{"errors":[{{"code":"TOOMANYREQUESTS","message":"injected {code}"}}]}}"#
            );
            let mut resp = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(r) = retry_after {
                resp.push_str(&format!("Retry-After: {r}\r\n"));
            }
            resp.push_str("\r\n");
            if method != "HEAD" {
                resp.push_str(&body);
            }
            conn.write_all(resp.as_bytes()).await?;
            conn.shutdown().await?;
            return Ok(());
        }
        None => {}
    }
    // Forward with `Connection: close`.
    let mut rewritten = String::new();
    for line in text.trim_end_matches("\r\n").split("\r\n") {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        rewritten.push_str(line);
        rewritten.push_str("\r\n");
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(("127.0.0.1", upstream_port)).await?;
    up.write_all(rewritten.as_bytes()).await?;
    up.write_all(rest).await?;
    tokio::io::copy_bidirectional(&mut conn, &mut up).await?;
    Ok(())
}
