//! `kiln release` when things go wrong, against a real registry (Debian's
//! `docker-registry`, basic auth) and the real engine, on one fleet built once:
//!
//! 1. a multi-platform OCI index already at the version tag is refused, untouched;
//! 2. a registry that fails every blob upload (a fault proxy in front of the real one
//!    answers 500 to every upload `PATCH`/`PUT`) stops the release after a few
//!    failures (fail-fast), naming the registry, with nothing under the version tag;
//! 3. Ctrl-C once pushing has started stops within seconds with exit 130, a manifest of
//!    what the registry serves, no half-published version tag and no local temporary
//!    tag; then a SIGKILL mid-push leaves a temporary tag, which the next release
//!    removes (and says so) while it completes the release.
//!
//! Opt-in: `KILN_TEST_DOCKER=1`.

mod fleet_support;
mod registry_support;
mod release_support;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use registry_support::{TestRegistry, USER};
use release_support::*;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// One HTTP/1.1 request on its own connection: (status, headers lowercased, body).
fn http(
    host: &str,
    auth: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = content_type {
        head.push_str(&format!("Content-Type: {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let text = String::from_utf8_lossy(&all[..split]).to_string();
    let mut lines = text.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, all[split + 4..].to_vec())
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Uploads a blob to `repo` (POST, then PUT with its digest).
fn put_blob(host: &str, auth: &str, repo: &str, blob: &[u8]) -> String {
    let digest = sha(blob);
    let (status, headers, _) = http(
        host,
        auth,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        None,
        b"",
    );
    assert_eq!(status, 202, "starting an upload");
    let location = &headers["location"];
    let path = &location[location.find("/v2/").unwrap()..];
    let sep = if path.contains('?') { '&' } else { '?' };
    let (status, _, body) = http(
        host,
        auth,
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        None,
        blob,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    digest
}

/// Puts an OCI image index (one linux/amd64 image) at `repo:tag`; returns its digest.
fn put_index(host: &str, auth: &str, repo: &str, tag: &str) -> String {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
    let layer = b"kiln release-faults test layer";
    let config_digest = put_blob(host, auth, repo, config);
    let layer_digest = put_blob(host, auth, repo, layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = sha(&manifest);
    let media = "application/vnd.oci.image.manifest.v1+json";
    let (status, _, body) = http(
        host,
        auth,
        "PUT",
        &format!("/v2/{repo}/manifests/{manifest_digest}"),
        Some(media),
        &manifest,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": media, "digest": manifest_digest, "size": manifest.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let (status, _, body) = http(
        host,
        auth,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        Some("application/vnd.oci.image.index.v1+json"),
        &index,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    sha(&index)
}

/// The digest `repo:tag` resolves to, asked with an Accept of every manifest kind.
fn head_digest(host: &str, auth: &str, repo: &str, tag: &str) -> Option<String> {
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "HEAD /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nAccept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    if !text.starts_with("HTTP/1.1 200") {
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Docker-Content-Digest: "))
        .map(|d| d.trim().to_string())
}

/// A proxy in front of the registry that answers 500 to every blob upload `PATCH` or
/// `PUT` and passes everything else through, one request per connection. It serves
/// until the test process ends.
fn fault_proxy(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let upstream = upstream.clone();
            std::thread::spawn(move || proxy_one(client, &upstream));
        }
    });
    addr
}

fn proxy_one(mut client: TcpStream, upstream: &str) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let split = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let first = head.lines().next().unwrap_or("").to_string();
    let upload = first.contains("/blobs/uploads/")
        && (first.starts_with("PATCH ") || first.starts_with("PUT "));
    if upload {
        let body = "kiln test fault proxy: the disk is full\n";
        let _ = write!(
            client,
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        // Read what the client still sends, so closing does not reset the answer away.
        let _ = client.set_read_timeout(Some(Duration::from_millis(300)));
        while matches!(client.read(&mut chunk), Ok(n) if n > 0) {}
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let mut rewritten: String = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    rewritten.push_str("Connection: close\r\n\r\n");
    if up.write_all(rewritten.as_bytes()).is_err() || up.write_all(&buf[split + 4..]).is_err() {
        return;
    }
    let (mut from_client, mut to_up) = (client.try_clone().unwrap(), up.try_clone().unwrap());
    let _ = from_client.set_read_timeout(None);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_up);
    });
    let _ = std::io::copy(&mut up, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.shutdown(Shutdown::Both);
}

/// Local tags whose name starts with `prefix` (the registry host).
fn local_tags(prefix: &str, tag: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(prefix) && l.ends_with(&format!(":{tag}")))
        .map(str::to_string)
        .collect()
}

fn listed(manifest: &Path) -> usize {
    std::fs::read_to_string(manifest)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map_or(0, |m| m["images"].as_array().map_or(0, |a| a.len()))
}

/// Every version tag the registry serves is a whole image (manifest, config, layers),
/// and every reference the manifest lists is served with the digest listed.
fn nothing_half_published(reg: &TestRegistry, manifest: &Value, version: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = client(reg);
    for repo in expected_repositories("") {
        let Some(digest) = rt.block_on(c.manifest_digest(&repo, version)).unwrap() else {
            continue;
        };
        let m = rt.block_on(c.manifest(&repo, &digest)).unwrap().unwrap();
        assert!(rt.block_on(c.blob_exists(&repo, &m.config.digest)).unwrap());
        for layer in &m.layers {
            assert!(
                rt.block_on(c.blob_exists(&repo, &layer.digest)).unwrap(),
                "{repo}:{version} points at a missing layer {}",
                layer.digest
            );
        }
    }
    for image in manifest["images"].as_array().unwrap() {
        let r = kiln::registry::Reference::parse(image["reference"].as_str().unwrap()).unwrap();
        let served = rt
            .block_on(c.manifest_digest(&r.repository, &r.tag))
            .unwrap();
        assert_eq!(served.as_deref(), image["digest"].as_str(), "{r}");
    }
}

#[test]
fn release_faults_index_fail_fast_interrupt_and_leftovers() {
    if !registry_support::gate() {
        return;
    }
    let reg = TestRegistry::start();
    let fleet = Fleet::new(&format!("faults-{}", reg.port));
    let conf = reg.docker_config();
    let host = reg.host();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{}", reg.password));
    let manifest = fleet.path().join("release-manifest.json");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut outputs = String::new();

    // 1. An OCI index at v2.0.0 of an eval image's repository: refused, nothing
    //    pushed, the index still there. (This release also builds and validates.)
    let repo = "evals/rel-shared--oracle";
    let index = put_index(&host, &auth, repo, "v2.0.0");
    let out = fleet.kiln(
        &conf,
        "v2.0.0",
        &["release", "--registry", &host, "--jobs", "2"],
    );
    let all = text(&out);
    outputs.push_str(&all);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("{host}/{repo}:v2.0.0"))
            && all.contains("multi-platform index")
            && all.contains(&index)
            && all.contains("immutable"),
        "{all}"
    );
    assert_eq!(
        rt.block_on(client(&reg).catalog()).unwrap(),
        vec![repo.to_string()],
        "the refused release pushed something"
    );
    assert_eq!(head_digest(&host, &auth, repo, "v2.0.0"), Some(index));

    // 2. Every blob upload fails (500): the release stops after a few failures, in
    //    bounded time, naming the registry; nothing under v3.0.0, no local tag left.
    let proxy = fault_proxy(host.clone());
    let proxy_conf = reg.dir.path().join("docker-config-proxy");
    std::fs::create_dir_all(&proxy_conf).unwrap();
    std::fs::write(
        proxy_conf.join("config.json"),
        json!({ "auths": { proxy.clone(): { "auth": auth } } }).to_string(),
    )
    .unwrap();
    let start = Instant::now();
    let out = fleet.kiln(
        &proxy_conf,
        "v3.0.0",
        &["release", "--registry", &proxy, "--jobs", "2"],
    );
    let took = start.elapsed();
    let all = text(&out);
    outputs.push_str(&all);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        took < Duration::from_secs(90),
        "fail-fast took {took:?}: {all}"
    );
    assert!(
        all.contains("fail-fast")
            && all.contains(&format!("registry {proxy}"))
            && all.contains("500"),
        "{all}"
    );
    for r in expected_repositories("") {
        assert_eq!(
            head_digest(&host, &auth, &r, "v3.0.0"),
            None,
            "{r}:v3.0.0 exists"
        );
    }
    assert_eq!(local_tags(&proxy, "v3.0.0"), Vec::<String>::new());
    assert_eq!(read_manifest(&manifest)["complete"], false);

    // 3. Ctrl-C after a few pushes: exit 130 within seconds, the manifest lists what
    //    the registry serves, no version tag half-published, no local tag left.
    let _ = std::fs::remove_file(&manifest);
    let mut child = fleet
        .command(
            &conf,
            "v4.0.0",
            &["release", "--registry", &host, "--jobs", "1"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let collect = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    while listed(&manifest) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "nothing published in 4 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    let stopped_in = signalled.elapsed();
    let all = collect.join().unwrap();
    outputs.push_str(&all);
    assert_eq!(status.code(), Some(130), "{all}");
    assert!(
        stopped_in < Duration::from_secs(10),
        "stopped after {stopped_in:?}"
    );
    assert!(all.contains("interrupted"), "{all}");
    let partial = read_manifest(&manifest);
    assert_eq!(partial["complete"], false);
    let n = partial["images"].as_array().unwrap().len();
    assert!((3..13).contains(&n), "{partial}");
    nothing_half_published(&reg, &partial, "v4.0.0");
    assert_eq!(local_tags(&host, "v4.0.0"), Vec::<String>::new(), "{all}");

    // 4. SIGKILL while a push holds its temporary tag: the tag stays; the next release
    //    removes it, says so, and completes the release.
    let child = fleet
        .command(
            &conf,
            "v4.0.0",
            &["release", "--registry", &host, "--jobs", "1"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let record = fleet
        .path()
        .join(format!(".kiln/release-tags/{}.json", child.id()));
    let start = Instant::now();
    let leftover = loop {
        let tagged: Option<String> = std::fs::read(&record)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["tags"][0][1].as_str().map(str::to_string));
        if let Some(t) = tagged {
            let there = Command::new("docker")
                .args(["image", "inspect", &t])
                .output()
                .unwrap();
            if there.status.success() {
                break t;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no push started in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(local_tags(&host, "v4.0.0"), vec![leftover.clone()]);
    let out = fleet.kiln(
        &conf,
        "v4.0.0",
        &["release", "--registry", &host, "--jobs", "2"],
    );
    let all = text(&out);
    outputs.push_str(&all);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains(&format!("removed the temporary tag {leftover}")),
        "{all}"
    );
    assert_eq!(local_tags(&host, "v4.0.0"), Vec::<String>::new());
    let m = read_manifest(&manifest);
    assert_eq!(m["complete"], true);
    assert_eq!(m["images"].as_array().unwrap().len(), 13);
    nothing_half_published(&reg, &m, "v4.0.0");
    // The index at v2.0.0 is still there, and no password was printed.
    assert!(head_digest(&host, &auth, repo, "v2.0.0").is_some());
    assert!(!outputs.contains(&reg.password));
}
