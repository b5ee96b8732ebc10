//! A real registry for the tests: Debian's `docker-registry` (distribution 2.8) on a
//! free 127.0.0.1 port, with htpasswd (bcrypt) basic authentication, and a
//! `DOCKER_CONFIG` directory written the way `docker login` writes it. Stopped on drop.
#![allow(dead_code)]

pub mod token_server;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

pub mod fault_proxy;
pub mod tls;

pub const USER: &str = "kiln-release";

/// True when the registry tests may run: they need the engine (`KILN_TEST_DOCKER=1`)
/// and the `docker-registry` and `htpasswd` binaries.
pub fn gate() -> bool {
    if std::env::var("KILN_TEST_DOCKER").map_or(true, |v| v != "1") {
        eprintln!(
            "skipped: set KILN_TEST_DOCKER=1 to run against the real engine and a real registry"
        );
        return false;
    }
    for tool in ["docker-registry", "htpasswd"] {
        assert!(
            which::which(tool).is_ok(),
            "{tool} is missing: scripts/setup.sh installs docker-registry and apache2-utils"
        );
    }
    true
}

pub struct TestRegistry {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub password: String,
    /// The registry's `auth:` section (`None`: htpasswd).
    auth_yaml: Option<String>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestRegistry {
    /// Starts a registry with one user (`USER`, a random password) in an htpasswd file.
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(None)
    }

    /// A random password for `USER`, as `start` makes it (for a token service's user).
    pub fn new_password() -> String {
        format!("pw-{}-{}", std::process::id(), free_port())
    }

    /// Starts a registry whose `auth:` section is `auth_yaml` (e.g. a token service's)
    /// and whose logins use `password`.
    pub fn start_with_auth(auth_yaml: String, password: String) -> TestRegistry {
        let mut reg = TestRegistry::start_with(Some(auth_yaml));
        reg.password = password;
        reg.write_login("docker-config", &reg.password.clone());
        reg
    }

    fn start_with(auth_yaml: Option<String>) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let password = TestRegistry::new_password();
        let mut htpasswd = Command::new("htpasswd")
            .args(["-B", "-i", "-c"])
            .arg(dir.path().join("htpasswd"))
            .arg(USER)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        htpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        assert!(htpasswd.wait().unwrap().success(), "htpasswd failed");
        let mut reg = TestRegistry {
            child: None,
            port: free_port(),
            dir,
            password,
            auth_yaml,
        };
        reg.write_login("docker-config", &reg.password.clone());
        reg.write_login("docker-config-wrong", "not-the-password");
        reg.resume();
        reg
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A `DOCKER_CONFIG` directory logged in with the right password.
    pub fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker-config")
    }

    /// A `DOCKER_CONFIG` directory logged in with a wrong password.
    pub fn wrong_docker_config(&self) -> PathBuf {
        self.dir.path().join("docker-config-wrong")
    }

    /// Writes `DOCKER_CONFIG` directory `name` (under the registry's directory) holding
    /// `config` as its config.json; returns the directory.
    pub fn write_config(&self, name: &str, config: &serde_json::Value) -> PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.json"), config.to_string()).unwrap();
        d
    }

    fn write_login(&self, name: &str, password: &str) {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        std::fs::write(
            d.join("config.json"),
            serde_json::json!({ "auths": { self.host(): { "auth": auth } } }).to_string(),
        )
        .unwrap();
    }

    /// (Re)starts the registry process on the same port and storage.
    pub fn resume(&mut self) {
        let config = self.dir.path().join("config.yml");
        let auth = self.auth_yaml.clone().unwrap_or_else(|| {
            format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                self.dir.path().join("htpasswd").display()
            )
        });
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n{auth}",
                self.dir.path().join("data").display(),
                self.port,
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.path().join("registry.log")).unwrap(),
            ))
            .spawn()
            .expect("starting docker-registry");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker-registry did not start: {}",
                std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the registry process (storage kept).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The catalog, read with `curl`-free plain HTTP through kiln's own client is what
    /// the tests compare; this is the raw storage view for a second opinion.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A one-file image from scratch (no base image needed), built by the engine as `tag`.
pub fn tiny_image(tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), tag).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY f /f\nLABEL kiln.test=yes\n",
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An anonymous client for `host` over `transport`.
pub fn client(host: &str, transport: &kiln::registry::Transport) -> kiln::registry::Client {
    kiln::registry::Client::with_credentials(&kiln::registry::Registry::parse(host).unwrap(), None)
        .unwrap()
        .over(transport)
        .unwrap()
}
