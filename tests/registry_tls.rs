//! The registry client over TLS against a real `docker-registry` serving a
//! certificate from a test CA made here: trusted through `--ca-bundle` and through
//! docker's certs.d layout; a wrong CA, an expired certificate and a port nobody
//! answers on each fail with an error naming the host; a tag holding an OCI index is
//! found by its digest and fetched as an index. Opt-in: `KILN_TEST_DOCKER=1`
//! (the registry gate).

mod registry_support;

use kiln::registry::{Client, Registry, Transport};
use registry_support::client;
use registry_support::tls::{free_port, Cert, CertsD, TlsRegistry};

/// Pushes a one-platform OCI index at `tag` (config blob, image manifest, index) with
/// Python's HTTP client; returns the index digest.
fn push_index(host: &str, ca: &std::path::Path, repo: &str, tag: &str) -> String {
    const SCRIPT: &str = r#"
import hashlib, json, ssl, sys, urllib.request
host, ca, repo, tag = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
base = f"https://{host}/v2/{repo}"
def req(method, url, body=b"", ctype=None):
    r = urllib.request.Request(url, data=body if method in ("POST", "PUT") else None, method=method)
    if ctype: r.add_header("Content-Type", ctype)
    return urllib.request.urlopen(r, context=ctx)
def digest(b): return "sha256:" + hashlib.sha256(b).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "config": {}}).encode()
loc = req("POST", base + "/blobs/uploads/").headers["Location"]
loc = loc if loc.startswith("http") else f"https://{host}{loc}"
req("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + digest(config), config, "application/octet-stream")
oci_m = "application/vnd.oci.image.manifest.v1+json"
manifest = json.dumps({"schemaVersion": 2, "mediaType": oci_m,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)}, "layers": []}).encode()
req("PUT", base + "/manifests/" + digest(manifest), manifest, oci_m)
oci_i = "application/vnd.oci.image.index.v1+json"
index = json.dumps({"schemaVersion": 2, "mediaType": oci_i, "manifests": [{"mediaType": oci_m,
    "digest": digest(manifest), "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
req("PUT", base + "/manifests/" + tag, index, oci_i)
print(digest(index))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .args([host, ca.to_str().unwrap(), repo, tag])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pushing an index failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn tls_registry_trust_and_refusals() {
    if !registry_support::gate() {
        return;
    }
    // One test function: KILN_DOCKER_CERTS_D is process-wide.
    let certs_d = tempfile::tempdir().unwrap();
    std::env::set_var("KILN_DOCKER_CERTS_D", certs_d.path());
    std::env::remove_var("KILN_CA_BUNDLE");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reg = TlsRegistry::start("127.0.0.1", Cert::Valid, None);
    let host = reg.host();

    // --ca-bundle: HTTPS works, and the client stays on HTTPS.
    let with_bundle = Transport::new(Some(reg.ca()), vec![]).unwrap();
    let c = client(&host, &with_bundle);
    rt.block_on(c.ping()).unwrap();
    assert_eq!(rt.block_on(c.catalog()).unwrap(), Vec::<String>::new());
    // An unknown repository: absent for a manifest HEAD, and a 404 with the
    // registry's own message for a blob read — at once, one request.
    assert_eq!(
        rt.block_on(c.manifest_digest("nobody/here", "v1")).unwrap(),
        None
    );
    let before = c.request_count();
    let err = format!(
        "{:#}",
        rt.block_on(c.config_labels("nobody/here", &format!("sha256:{}", "0".repeat(64))))
            .unwrap_err()
    );
    assert!(
        err.contains(&host) && err.contains("404") && err.contains("_UNKNOWN"),
        "{err}"
    );
    assert_eq!(c.request_count() - before, 1, "a 404 must not be retried");

    // A multi-platform tag (an OCI index) is present, and is told apart when fetched.
    let index_digest = push_index(&host, &reg.ca(), "multi/app", "v2.0.0");
    assert_eq!(
        rt.block_on(c.manifest_digest("multi/app", "v2.0.0"))
            .unwrap()
            .as_deref(),
        Some(index_digest.as_str())
    );
    let m = rt
        .block_on(c.manifest("multi/app", "v2.0.0"))
        .unwrap()
        .unwrap();
    assert!(m.is_index() && m.manifests.len() == 1, "{m:?}");
    assert_eq!(m.digest, index_digest);

    // certs.d/<host:port>/ca.crt alone.
    let none = Transport::new(None, vec![]).unwrap();
    let err = format!(
        "{:#}",
        rt.block_on(client(&host, &none).ping()).unwrap_err()
    );
    assert!(
        err.contains(&host) && err.contains("unknown authority"),
        "{err}"
    );
    let installed = CertsD::install(certs_d.path(), &host, &reg.ca());
    rt.block_on(client(&host, &none).ping()).unwrap();
    drop(installed);

    // A wrong CA.
    let wrong = Transport::new(Some(reg.other_ca()), vec![]).unwrap();
    let err = format!(
        "{:#}",
        rt.block_on(client(&host, &wrong).ping()).unwrap_err()
    );
    assert!(
        err.contains(&format!("registry {host}")) && err.contains("unknown authority"),
        "{err}"
    );

    // An expired certificate, even from a trusted CA.
    let expired = TlsRegistry::start("127.0.0.1", Cert::Expired, None);
    let t = Transport::new(Some(expired.ca()), vec![]).unwrap();
    let err = format!(
        "{:#}",
        rt.block_on(client(&expired.host(), &t).ping()).unwrap_err()
    );
    assert!(
        err.contains(&expired.host()) && err.contains("expired"),
        "{err}"
    );

    // Nobody listening.
    let silent = format!("127.0.0.1:{}", free_port());
    let err = format!(
        "{:#}",
        rt.block_on(client(&silent, &none).ping()).unwrap_err()
    );
    assert!(
        err.contains(&silent) && err.contains("does not answer"),
        "{err}"
    );

    // A bundle that is not a certificate file is named.
    let junk = certs_d.path().join("junk.pem");
    std::fs::write(&junk, "hello\n").unwrap();
    let err = format!(
        "{:#}",
        Client::with_credentials(&Registry::parse(&host).unwrap(), None)
            .unwrap()
            .over(&Transport::new(Some(junk), vec![]).unwrap())
            .err()
            .unwrap()
    );
    assert!(err.contains("junk.pem"), "{err}");
}
