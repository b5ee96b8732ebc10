//! TLS for the registry tests: a test CA made here (python3 `cryptography`), server
//! certificates signed by it for an IP address (valid, or expired), Debian's
//! `docker-registry` serving TLS with one on 127.0.0.1 or inside a network namespace
//! (a veth pair on 10.231.0.0/16, addresses of this machine only). Everything is
//! removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MAKE_CERTS: &str = r#"
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
out, ip, expired = sys.argv[1], sys.argv[2], sys.argv[3] == "expired"
now = datetime.datetime.now(datetime.timezone.utc)
def key():
    return ec.generate_private_key(ec.SECP256R1())
def write_key(k, path):
    open(path, "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
for label in ["ca", "other-ca"]:
    k = key()
    cert = (x509.CertificateBuilder().subject_name(name("kiln test " + label)).issuer_name(name("kiln test " + label))
        .public_key(k.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(k, hashes.SHA256()))
    open(f"{out}/{label}.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    if label == "ca":
        ca_key, ca_cert = k, cert
k = key()
start, end = (now - datetime.timedelta(days=3), now - datetime.timedelta(days=1)) if expired else (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
cert = (x509.CertificateBuilder().subject_name(name(ip)).issuer_name(ca_cert.subject)
    .public_key(k.public_key()).serial_number(x509.random_serial_number())
    .not_valid_before(start).not_valid_after(end)
    .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)), x509.DNSName("localhost")]), critical=False)
    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    .sign(ca_key, hashes.SHA256()))
open(f"{out}/server.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
write_key(k, f"{out}/server.key")
"#;

/// Which server certificate to serve.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cert {
    Valid,
    Expired,
}

/// `ca.crt` (the server's CA), `other-ca.crt` (an unrelated CA), `server.crt`/`server.key`
/// for `ip`, in `dir`.
pub fn make_certs(dir: &Path, ip: &str, cert: Cert) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(MAKE_CERTS)
        .arg(dir)
        .arg(ip)
        .arg(if cert == Cert::Expired {
            "expired"
        } else {
            "valid"
        })
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "making test certificates failed (python3-cryptography missing? scripts/setup.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A network namespace joined to this one by a veth pair: the host end is
/// `10.231.A.B+1/30`, the namespace's `10.231.A.B+2/30`.
pub struct Netns {
    pub name: String,
    host_if: String,
    pub ip: String,
}

impl Netns {
    pub fn create(tag: &str) -> Netns {
        let idx = (std::process::id() as usize * 7 + tag.len()) % 16384;
        let (a, b) = (idx / 64, (idx % 64) * 4);
        let id = std::process::id() % 100_000;
        let ns = Netns {
            name: format!("kiln-tls-{tag}-{id}"),
            host_if: format!("kt{id}h"),
            ip: format!("10.231.{a}.{}", b + 2),
        };
        let peer = format!("kt{id}n");
        let host_ip = format!("10.231.{a}.{}/30", b + 1);
        let ns_ip = format!("{}/30", ns.ip);
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &ns.name],
            vec![
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
            ],
            vec!["link", "set", &peer, "netns", &ns.name],
            vec!["addr", "add", &host_ip, "dev", &ns.host_if],
            vec!["link", "set", &ns.host_if, "up"],
            vec!["-n", &ns.name, "addr", "add", &ns_ip, "dev", &peer],
            vec!["-n", &ns.name, "link", "set", &peer, "up"],
            vec!["-n", &ns.name, "link", "set", "lo", "up"],
        ];
        for step in steps {
            let out = Command::new("ip").args(&step).output().expect("running ip");
            assert!(
                out.status.success(),
                "ip {}: {}",
                step.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A TLS registry (anonymous) on `ip:port`, in `netns` when given.
pub struct TlsRegistry {
    child: Option<Child>,
    pub ip: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl TlsRegistry {
    pub fn start(ip: &str, cert: Cert, netns: Option<&Netns>) -> TlsRegistry {
        TlsRegistry::spawn(ip, Some(cert), netns, 5443)
    }

    /// The same registry in plain HTTP (`port` used inside a namespace only).
    pub fn start_plain(ip: &str, netns: Option<&Netns>, port: u16) -> TlsRegistry {
        TlsRegistry::spawn(ip, None, netns, port)
    }

    fn spawn(ip: &str, cert: Option<Cert>, netns: Option<&Netns>, ns_port: u16) -> TlsRegistry {
        let dir = tempfile::tempdir().unwrap();
        make_certs(dir.path(), ip, cert.unwrap_or(Cert::Valid));
        // In a fresh namespace every port is free; on loopback ask the kernel.
        let port = if netns.is_some() {
            ns_port
        } else {
            free_port()
        };
        let tls = if cert.is_some() {
            format!(
                "  tls:\n    certificate: {d}/server.crt\n    key: {d}/server.key\n",
                d = dir.path().display()
            )
        } else {
            String::new()
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n{tls}",
                data = dir.path().join("data").display(),
            ),
        )
        .unwrap();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.name, "docker-registry"]);
                c
            }
            None => Command::new("docker-registry"),
        };
        let child = cmd
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("registry.log")).unwrap(),
            ))
            .spawn()
            .expect("starting docker-registry");
        let reg = TlsRegistry {
            child: Some(child),
            ip: ip.to_string(),
            port,
            dir,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect((ip, port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry (TLS) did not start: {}",
                std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// `ip:port`.
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The CA that signed the server certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A CA that did not.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.crt")
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A certs.d directory for one host, removed on drop (the real `/etc/docker/certs.d`
/// in the namespace test, since the engine reads it there).
pub struct CertsD {
    pub dir: PathBuf,
}

impl CertsD {
    pub fn install(root: &Path, host: &str, ca: &Path) -> CertsD {
        let dir = root.join(host);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(ca, dir.join("ca.crt")).unwrap();
        CertsD { dir }
    }
}

impl Drop for CertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
