//! CA trust on a non-loopback address (the engine treats 127.0.0.0/8 as insecure, so
//! a loopback registry proves nothing about verification): a network namespace joined
//! by a veth pair (10.231.0.0/16, this machine only) runs a TLS `docker-registry` with
//! a certificate from a test CA. A kiln push through the engine fails with a clear
//! error naming the host until the CA is in `/etc/docker/certs.d/<ip:port>/ca.crt`,
//! then works and verifies. A plain-HTTP registry there is refused (no downgrade)
//! unless listed with `--insecure-registry`. With `KILN_TEST_PODMAN=1` the same for a
//! podman push (`--tls-verify=true`, the CA in a `--cert-dir`). The namespace, the certs.d directory and
//! the registries are removed in all cases (drop guards).
//! Opt-in: `KILN_TEST_DOCKER=1`; needs root and `ip`.

mod registry_support;

use kiln::registry::{PushRequest, Reference, Transport};
use kiln::store::Store;
use registry_support::tls::{Cert, CertsD, Netns, TlsRegistry};
use registry_support::{client, tiny_image};

#[test]
fn engine_push_trusts_certs_d_on_a_namespace_address() {
    if !registry_support::gate() {
        return;
    }
    if unsafe { libc::geteuid() } != 0 || which::which("ip").is_err() {
        eprintln!("skipped: network namespaces need root and iproute2's `ip`");
        return;
    }
    std::env::remove_var("KILN_DOCKER_CERTS_D");
    std::env::remove_var("KILN_CA_BUNDLE");
    let ns = Netns::create("push");
    let reg = TlsRegistry::start(&ns.ip, Cert::Valid, Some(&ns));
    let host = reg.host();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let transport = Transport::new(None, vec![]).unwrap();
    let local = format!("kiln.local/test-tls-netns/tiny:{}", std::process::id());
    tiny_image(&local);
    let target = Reference::parse(&format!("{host}/tls/tiny:v1")).unwrap();
    let req = PushRequest {
        source: local.clone(),
        store: Store::Docker,
        target: target.clone(),
        required_labels: vec!["kiln.test".into()],
    };

    // Without the CA: kiln's client and the engine both refuse, naming the host.
    let c = client(&host, &transport);
    let err = format!("{:#}", rt.block_on(c.ping()).unwrap_err());
    assert!(
        err.contains(&format!("registry {host}")) && err.contains("unknown authority"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        rt.block_on(kiln::registry::push_and_verify(&c, &req))
            .unwrap_err()
    );
    assert!(
        err.contains(&host) && (err.contains("x509") || err.contains("certificate")),
        "{err}"
    );

    // With certs.d/<ip:port>/ca.crt: the engine pushes over verified TLS, kiln verifies.
    let certs_d = CertsD::install(
        std::path::Path::new("/etc/docker/certs.d"),
        &host,
        &reg.ca(),
    );
    let c = client(&host, &transport);
    let published = rt
        .block_on(kiln::registry::push_and_verify(&c, &req))
        .unwrap();
    assert_eq!(
        rt.block_on(c.manifest_digest("tls/tiny", "v1"))
            .unwrap()
            .as_deref(),
        Some(published.digest.as_str())
    );

    // podman's store (KILN_TEST_PODMAN=1): the push verifies TLS, with the certs.d CA
    // handed over in a --cert-dir.
    if std::env::var("KILN_TEST_PODMAN").is_ok_and(|v| v == "1") {
        assert!(
            which::which("podman").is_ok(),
            "KILN_TEST_PODMAN=1 but podman is missing: scripts/setup.sh installs it"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "podman").unwrap();
        std::fs::write(
            dir.path().join("Containerfile"),
            "FROM scratch\nCOPY f /f\nLABEL kiln.test=yes\n",
        )
        .unwrap();
        let out = std::process::Command::new("podman")
            .args(["build", "-q", "-t", &local])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut preq = req.clone();
        preq.store = Store::Podman;
        preq.target = target.with_tag("podman");
        let published = rt
            .block_on(kiln::registry::push_and_verify(&c, &preq))
            .unwrap();
        assert!(published.pushed);
        drop(certs_d);
        let err = format!(
            "{:#}",
            rt.block_on(kiln::registry::push_and_verify(&c, &preq))
                .unwrap_err()
        );
        assert!(
            err.contains(&host) && (err.contains("x509") || err.contains("certificate")),
            "{err}"
        );
        let _ = std::process::Command::new("podman")
            .args(["rmi", "-f", &local])
            .output();
    } else {
        eprintln!("skipped (podman part): set KILN_TEST_PODMAN=1");
        drop(certs_d);
    }

    // Plain HTTP on a verified host: refused, never a downgrade; listed as insecure: used.
    let plain = TlsRegistry::start_plain(&ns.ip, Some(&ns), 5080);
    let err = format!(
        "{:#}",
        rt.block_on(client(&plain.host(), &transport).ping())
            .unwrap_err()
    );
    assert!(
        err.contains(&plain.host()) && err.contains("does not speak TLS"),
        "{err}"
    );
    let insecure = Transport::new(None, vec![plain.host()]).unwrap();
    rt.block_on(client(&plain.host(), &insecure).ping())
        .unwrap();
    let cidr = Transport::new(None, vec!["10.231.0.0/16".into()]).unwrap();
    rt.block_on(client(&plain.host(), &cidr).ping()).unwrap();

    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &local])
        .output();
}
