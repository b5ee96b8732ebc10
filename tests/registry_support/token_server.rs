//! A token service for the tests, as the distribution spec describes it: `GET /token`
//! (anonymous, or Basic with the test user's password) and the OAuth2 `POST /token`
//! (`grant_type=refresh_token`, or `password`). Tokens are JWTs signed ES256 with a key
//! made here by `openssl`, whose self-signed certificate the registry trusts
//! (`auth.token.rootcertbundle`); the header carries it as `x5c`, which is how
//! distribution 2.8 finds the signing key. Anonymous callers get `pull` on repositories
//! under `public/` only. Every request is recorded, so tests can count token fetches.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, StatusCode};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

pub const SERVICE: &str = "kiln-auth-test-registry";
pub const ISSUER: &str = "kiln-auth-test-issuer";

/// One request the token service answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// `anonymous`, `basic:<user>`, `refresh_token`, `password`, or `refused`.
    pub how: String,
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
}

struct State {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    user: String,
    password: String,
    refresh_token: String,
    expires_in: u64,
    /// The next this many tokens grant nothing (a token "short of its scope").
    deny_next: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    serial: AtomicUsize,
}

pub struct TokenServer {
    state: Arc<State>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TokenServer {
    /// Starts the service on a free 127.0.0.1 port; tokens live `expires_in` seconds.
    pub fn start(user: &str, password: &str, refresh_token: &str, expires_in: u64) -> TokenServer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "key.pem",
            ],
        );
        openssl(
            d,
            &[
                "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out",
                "key.p8",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "key.pem",
                "-subj",
                "/CN=kiln-auth-test-token-signer",
                "-days",
                "2",
                "-out",
                "cert.pem",
            ],
        );
        openssl(
            d,
            &[
                "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
            ],
        );
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &std::fs::read(d.join("key.p8")).unwrap(),
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        let state = Arc::new(State {
            key,
            cert_der: std::fs::read(d.join("cert.der")).unwrap(),
            user: user.into(),
            password: password.into(),
            refresh_token: refresh_token.into(),
            expires_in,
            deny_next: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            serial: AtomicUsize::new(0),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move { Ok::<_, Infallible>(answer(&s, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TokenServer {
            state,
            port,
            dir,
            runtime: Some(runtime),
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The certificate the registry must trust.
    pub fn cert_pem(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The registry's `auth:` section for this service.
    pub fn registry_auth_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm(),
            self.cert_pem().display()
        )
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The next `n` tokens grant no access.
    pub fn deny_next(&self, n: usize) {
        self.state.deny_next.store(n, Ordering::SeqCst);
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn query_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

async fn answer(s: &State, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let authz = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let query = req.uri().query().unwrap_or("").to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let params = if method == "POST" {
        query_pairs(&String::from_utf8_lossy(&body))
    } else {
        query_pairs(&query)
    };
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .collect();
    // Who is asking.
    let who: Result<(String, Option<String>), ()> = if method == "POST" {
        match get("grant_type").as_deref() {
            Some("refresh_token") if get("refresh_token").as_deref() == Some(&s.refresh_token) => {
                Ok(("refresh_token".into(), Some(s.user.clone())))
            }
            Some("password")
                if get("username").as_deref() == Some(&s.user)
                    && get("password").as_deref() == Some(&s.password) =>
            {
                Ok(("password".into(), Some(s.user.clone())))
            }
            _ => Err(()),
        }
    } else {
        match authz {
            None => Ok(("anonymous".into(), None)),
            Some(a) => {
                let decoded = a
                    .strip_prefix("Basic ")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                if decoded == format!("{}:{}", s.user, s.password) {
                    Ok((format!("basic:{}", s.user), Some(s.user.clone())))
                } else {
                    Err(())
                }
            }
        }
    };
    let mut seen = Seen {
        method: method.clone(),
        how: "refused".into(),
        scopes: scopes.clone(),
        client_id: get("client_id"),
    };
    let Ok((how, user)) = who else {
        s.seen.lock().unwrap().push(seen);
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}),
        );
    };
    seen.how = how;
    s.seen.lock().unwrap().push(seen);
    let denied = s
        .deny_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let access: Vec<serde_json::Value> = if denied {
        Vec::new()
    } else {
        scopes
            .iter()
            .filter_map(|sc| {
                let mut parts = sc.splitn(3, ':');
                let (t, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                let actions: Vec<&str> = actions
                    .split(',')
                    .filter(|a| user.is_some() || (*a == "pull" && name.starts_with("public/")))
                    .collect();
                Some(serde_json::json!({"type": t, "name": name, "actions": actions}))
            })
            .collect()
    };
    let token = sign(s, user.as_deref().unwrap_or(""), &access);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let issued = chrono::DateTime::from_timestamp(now.as_secs() as i64, 0)
        .unwrap()
        .to_rfc3339();
    let field = if method == "POST" {
        "access_token"
    } else {
        "token"
    };
    json(
        StatusCode::OK,
        serde_json::json!({ field: token, "expires_in": s.expires_in, "issued_at": issued }),
    )
}

fn sign(s: &State, subject: &str, access: &[serde_json::Value]) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&s.cert_der)],
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + s.expires_in,
        "nbf": now - 1,
        "iat": now,
        "jti": format!("kiln-test-{}", s.serial.fetch_add(1, Ordering::SeqCst)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = s
        .key
        .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
        .unwrap();
    format!("{signing_input}.{}", b64(sig.as_ref()))
}

/// Seen requests grouped by their scopes (for counting token fetches per scope).
pub fn by_scope(seen: &[Seen]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in seen {
        *m.entry(s.scopes.join(" ")).or_insert(0) += 1;
    }
    m
}
