//! `kiln run --on kubernetes` against a real one-node Kubernetes (`../shared/tools/k8s`,
//! brought up here when `KILN_TEST_K8S=1`) and a real registry that needs a login
//! (Debian's `docker-registry` with htpasswd on a free 127.0.0.1 port, started and
//! stopped by the test; the login in a `DOCKER_CONFIG` of the test's own): the same
//! scores and report as local runs, the pods pull with the run's image pull secret, a
//! killed pod becomes an infrastructure error that a re-run completes, Ctrl-C leaves no
//! Job, pod or secret. `--dry-run` needs nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod fleet_support;
mod registry_support;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Longest any one kiln command of these tests may take: a hang fails the test with what
/// kiln printed, instead of holding CI until its own limit.
const KILN_LIMIT: Duration = Duration::from_secs(600);

/// A kiln started in the background; its output is read as it comes (a full pipe would
/// stop it).
struct Running {
    child: Child,
    stdout: Drained,
    stderr: Drained,
}

/// A pipe read into a buffer by a thread of its own.
type Drained = (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>);

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> Drained {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (buf, reader)
}

/// The static runner the eval images of the cluster part get (built once).
static RUNNER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn spawn_kiln(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    if let Some(runner) = RUNNER.get() {
        cmd.env("KILN_RUNNER", runner);
    }
    let mut child = cmd
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Running {
        stdout: drain(child.stdout.take().unwrap()),
        stderr: drain(child.stderr.take().unwrap()),
        child,
    }
}

/// Waits for kiln at most KILN_LIMIT; past it, kills it and fails with its output.
fn finish(mut run: Running) -> Output {
    let deadline = Instant::now() + KILN_LIMIT;
    let text = |b: &Drained| String::from_utf8_lossy(&b.0.lock().unwrap()).to_string();
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = run.child.kill();
            let _ = run.child.wait();
            panic!(
                "kiln still ran after {}s; killed it. It printed:\n{}{}",
                KILN_LIMIT.as_secs(),
                text(&run.stdout),
                text(&run.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let take = |(buf, reader): Drained| {
        reader.join().unwrap();
        std::mem::take(&mut *buf.lock().unwrap())
    };
    Output {
        status,
        stdout: take(run.stdout),
        stderr: take(run.stderr),
    }
}

fn kiln(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = finish(spawn_kiln(args, env));
    eprintln!(
        "$ kiln {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn dry_run_prints_manifests_and_contacts_nothing() {
    // A Docker client configuration of the test's own, without logins (never the
    // machine's).
    let no_login = tempfile::tempdir().unwrap();
    let out = kiln(
        &[
            "run",
            "metric-definition-audit",
            "terminal-lite",
            "--agent",
            "oracle",
            "--agent",
            "null",
            "--on",
            "kubernetes",
            "--registry",
            "127.0.0.1:1/kiln",
            "--dry-run",
        ],
        &[
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
            ("DOCKER_CONFIG", &no_login.path().to_string_lossy()),
        ],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // metric-definition-audit: 2 Jobs (one per agent); terminal-lite: 3 tasks × 2 agents.
    assert_eq!(text.matches("kind: Job\n").count(), 2 + 6, "{text}");
    assert_eq!(text.matches("kind: ConfigMap\n").count(), 1 + 3, "{text}");
    assert!(text.contains("KILN_TASK_TABLE"));
    assert!(text.contains("completionMode: Indexed"));
    assert!(text.contains("automountServiceAccountToken: false"));
    assert!(text.contains("image: 127.0.0.1:1/kiln/evals/terminal-lite-count-lines--null:inputs-"));
    assert!(text.contains("# kubectl create -n default -f manifests.yaml"));
    assert!(
        !text.contains("kind: Secret"),
        "no login, no pull secret: {text}"
    );
    assert!(!text.contains("imagePullSecrets"), "{text}");

    // With a login for the registry: the pull secret's shape, never the login.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"auths":{"127.0.0.1:1":{"auth":"a2lsbjpkcnktcnVuLXNlY3JldC03Nw=="}}}"#,
    )
    .unwrap();
    let out = kiln(
        &[
            "run",
            "terminal-lite",
            "--agent",
            "null",
            "--on",
            "kubernetes",
            "--registry",
            "127.0.0.1:1/kiln",
            "--dry-run",
        ],
        &[
            ("KUBECONFIG", "/nonexistent/kubeconfig"),
            ("DOCKER_CONFIG", &dir.path().to_string_lossy()),
        ],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("kind: Secret\n").count(), 1, "{text}");
    assert!(
        text.contains("type: kubernetes.io/dockerconfigjson"),
        "{text}"
    );
    assert_eq!(text.matches("imagePullSecrets:").count(), 3, "{text}");
    for secret in ["dry-run-secret-77", "a2lsbjpkcnktcnVuLXNlY3JldC03Nw"] {
        assert!(!text.contains(secret), "the login leaked: {text}");
    }
}

#[test]
fn bad_kubernetes_flags_are_refused() {
    for (args, needle) in [
        (
            vec![
                "run",
                "terminal-lite",
                "--agent",
                "null",
                "--on",
                "kubernetes",
            ],
            "--registry",
        ),
        (
            vec![
                "run",
                "terminal-lite",
                "--agent",
                "null",
                "--on",
                "kubernetes",
                "--registry",
                "http://r:5000",
            ],
            "without a scheme",
        ),
        (
            vec![
                "run",
                "terminal-lite",
                "--agent",
                "null",
                "--task-id",
                "nope",
                "--on",
                "kubernetes",
                "--registry",
                "r:5000",
                "--dry-run",
            ],
            "nope",
        ),
        (
            vec!["run", "terminal-lite", "--agent", "null", "--dry-run"],
            "--on kubernetes only",
        ),
    ] {
        let out = kiln(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

// --- the real cluster ---------------------------------------------------------------

fn gate() -> bool {
    let on = std::env::var("KILN_TEST_K8S").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("skipped: set KILN_TEST_K8S=1 to run against a real Kubernetes");
    }
    on
}

fn k8s_tools() -> PathBuf {
    if let Some(d) = std::env::var_os("KILN_K8S_TOOLS") {
        return PathBuf::from(d);
    }
    let beside = repo().join("../shared/tools/k8s");
    if beside.is_dir() {
        beside
    } else {
        PathBuf::from("/work/shared/tools/k8s")
    }
}

/// The cluster (up.sh is idempotent; scripts/test.sh tears it down at the end) and a
/// registry of this test's own.
struct Cluster {
    kubeconfig: String,
    registry: String,
    /// The login for `registry`.
    docker_config: String,
}

impl Cluster {
    /// What kiln needs to reach the cluster and log in to the registry.
    fn env(&self) -> [(&str, &str); 2] {
        [
            ("KUBECONFIG", self.kubeconfig.as_str()),
            ("DOCKER_CONFIG", self.docker_config.as_str()),
        ]
    }
}

/// The cluster's KUBECONFIG; up.sh runs once even when two tests ask at once.
fn cluster_up() -> String {
    static UP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    UP.get_or_init(run_up_sh).clone()
}

fn run_up_sh() -> String {
    let out = Command::new("bash")
        .arg(k8s_tools().join("up.sh"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "up.sh failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .trim()
        .strip_prefix("export KUBECONFIG=")
        .expect("up.sh prints export KUBECONFIG=…")
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string()
}

/// One test for the whole cluster part: the scenarios share the cluster and the registry
/// (and the node's CPU), so they run one after the other.
#[test]
fn kubernetes_end_to_end() {
    if !gate() {
        return;
    }
    RUNNER.get_or_init(fleet_support::static_runner);
    let registry = registry_support::TestRegistry::start();
    let c = Cluster {
        kubeconfig: cluster_up(),
        registry: registry.host(),
        docker_config: registry.docker_config().to_string_lossy().to_string(),
    };
    let t = Instant::now();
    matrix_on_kubernetes_scores_like_local_runs(&c);
    eprintln!("matrix: {:.1}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    killed_pod_is_an_infra_error_and_a_rerun_completes_it(&c);
    eprintln!("killed pod: {:.1}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    ctrl_c_leaves_no_job_or_pod(&c);
    eprintln!("ctrl-c: {:.1}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    replay_runs_the_gateway_beside_the_agent(&c);
    eprintln!("replay: {:.1}s", t.elapsed().as_secs_f64());
}

/// kiln's image pull secret with the real kubelet: a pod whose image sits in a registry
/// that needs a login pulls it with the secret, and cannot without it. (The image is one
/// file, so its container cannot start; what matters is that the pull got past the
/// login.) Cheap: no fleet build.
#[test]
fn pull_secret_lets_the_node_pull() {
    if !gate() {
        return;
    }
    use kiln::registry::{Client, Credentials, PushRequest, Reference};
    let reg = registry_support::TestRegistry::start();
    let kubeconfig = cluster_up();
    let local = format!("kiln.local/test-pull-secret/tiny:{}", reg.port);
    let mut import = Command::new("docker")
        .args(["import", "--change", "LABEL kiln.test=pull", "-", &local])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut tarball = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_cksum();
    tarball
        .append_data(&mut header, "tag", &b"hi\n"[..])
        .unwrap();
    std::io::Write::write_all(
        &mut import.stdin.take().unwrap(),
        &tarball.into_inner().unwrap(),
    )
    .unwrap();
    assert!(import.wait().unwrap().success());
    let creds = Credentials::basic(registry_support::USER, reg.password.clone());
    let registry = kiln::registry::Registry::parse(&reg.host()).unwrap();
    let registry_client = Client::with_credentials(&registry, Some(creds.clone())).unwrap();
    let target = format!("{}/pull-secret/tiny:v1", reg.host());
    let published = rt()
        .block_on(kiln::registry::push_and_verify(
            &registry_client,
            &PushRequest {
                source: local.clone(),
                store: kiln::store::Store::Docker,
                target: Reference::parse(&target).unwrap(),
                required_labels: vec![],
            },
        ))
        .unwrap();
    let _ = Command::new("docker").args(["rmi", &local]).output();
    let image = format!("{}/pull-secret/tiny@{}", reg.host(), published.digest);

    let ns = TestNamespace::new(&kubeconfig, "pullsecret");
    let secret =
        kiln::run::kubernetes::pull_secret::for_login("t1", &ns.name, &reg.host(), &creds).unwrap();
    let outcome = |with_secret: bool| -> String {
        rt().block_on(async {
            let c = client(&kubeconfig).await;
            let pods: Api<Pod> = Api::namespaced(c, &ns.name);
            let name = format!("pull-{with_secret}");
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kiln"}},
                "spec": {
                    "restartPolicy": "Never",
                    "imagePullSecrets": if with_secret { serde_json::json!([{"name": "kiln-t1-pull"}]) } else { serde_json::json!([]) },
                    "containers": [{"name": "c", "image": image, "command": ["/nonexistent"]}]
                }
            }))
            .unwrap();
            pods.create(&PostParams::default(), &pod).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                let p = pods.get(&name).await.unwrap();
                let st = p
                    .status
                    .and_then(|s| s.container_statuses)
                    .and_then(|c| c.into_iter().next())
                    .and_then(|c| c.state);
                let reason = st.and_then(|s| {
                    s.waiting
                        .and_then(|w| w.reason)
                        .or(s.terminated.map(|t| t.reason.unwrap_or("Terminated".into())))
                });
                if let Some(r) = reason.filter(|r| r != "ContainerCreating") {
                    return r;
                }
                assert!(Instant::now() < deadline, "pod {name} did not get anywhere");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let without = outcome(false);
    assert!(
        matches!(without.as_str(), "ErrImagePull" | "ImagePullBackOff"),
        "the registry let the node pull without a login: {without}"
    );
    rt().block_on(async {
        let secrets: Api<Secret> = Api::namespaced(client(&kubeconfig).await, &ns.name);
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    });
    let with = outcome(true);
    assert!(
        !matches!(with.as_str(), "ErrImagePull" | "ImagePullBackOff"),
        "the node could not pull with the secret: {with}"
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(kubeconfig: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// A namespace of its own for one test, deleted at the end.
struct TestNamespace {
    name: String,
    kubeconfig: String,
}

impl TestNamespace {
    fn new(kubeconfig: &str, what: &str) -> TestNamespace {
        let name = format!("kiln-test-{what}-{}", std::process::id());
        rt().block_on(async {
            let ns: Api<Namespace> = Api::all(client(kubeconfig).await);
            let obj: Namespace = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
            }))
            .unwrap();
            ns.create(&PostParams::default(), &obj).await.unwrap();
        });
        TestNamespace {
            name,
            kubeconfig: kubeconfig.to_string(),
        }
    }

    /// kiln's Jobs and pods in the namespace once they are gone, or after 60 s: deleted
    /// objects take a moment to disappear (background deletion, the kubelet's stop).
    fn objects_left(&self) -> (usize, usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n = self.objects();
            if n == (0, 0) || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// kiln's Secrets in the namespace (the run's image pull secret).
    fn secrets(&self) -> usize {
        rt().block_on(async {
            let c = client(&self.kubeconfig).await;
            let lp = ListParams::default().labels("app.kubernetes.io/managed-by=kiln");
            Api::<Secret>::namespaced(c, &self.name)
                .list(&lp)
                .await
                .unwrap()
                .items
                .len()
        })
    }

    /// The `imagePullSecrets` of kiln's pods in the namespace.
    fn pull_secrets_of_pods(&self) -> Vec<String> {
        rt().block_on(async {
            let c = client(&self.kubeconfig).await;
            let lp = ListParams::default().labels("app.kubernetes.io/managed-by=kiln");
            Api::<Pod>::namespaced(c, &self.name)
                .list(&lp)
                .await
                .unwrap()
                .items
                .iter()
                .flat_map(|p| {
                    p.spec
                        .iter()
                        .flat_map(|s| s.image_pull_secrets.iter().flatten())
                })
                .map(|r| r.name.clone())
                .collect()
        })
    }

    fn objects(&self) -> (usize, usize) {
        rt().block_on(async {
            let c = client(&self.kubeconfig).await;
            let lp = ListParams::default().labels("app.kubernetes.io/managed-by=kiln");
            let jobs = Api::<Job>::namespaced(c.clone(), &self.name)
                .list(&lp)
                .await
                .unwrap();
            let pods = Api::<Pod>::namespaced(c, &self.name)
                .list(&lp)
                .await
                .unwrap();
            (jobs.items.len(), pods.items.len())
        })
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        rt().block_on(async {
            let ns: Api<Namespace> = Api::all(client(&self.kubeconfig).await);
            let _ = ns.delete(&self.name, &DeleteParams::background()).await;
        });
    }
}

fn report_rows(dir: &Path) -> Vec<serde_json::Value> {
    let out = kiln(&["report", &dir.to_string_lossy(), "--format", "json"], &[]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut rows = v["results"].as_array().unwrap().clone();
    // What differs between two runs of the same matrix: times, ids, paths.
    for r in &mut rows {
        let o = r.as_object_mut().unwrap();
        for k in [
            "wall_sec",
            "agent_wall_sec",
            "run_wall_sec",
            "started_at",
            "run_id",
            "path",
        ] {
            o.remove(k);
        }
    }
    rows
}

fn on_k8s<'a>(c: &'a Cluster, ns: &'a str, out: &'a str) -> Vec<String> {
    [
        "--on",
        "kubernetes",
        "--registry",
        &c.registry,
        "--namespace",
        ns,
        "--output",
        out,
        "--poll-interval",
        "0.5",
        "--quiet",
        "--backend",
        "engine",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn args<'a>(head: &[&'a str], tail: &'a [String]) -> Vec<&'a str> {
    head.iter()
        .copied()
        .chain(tail.iter().map(String::as_str))
        .collect()
}

fn matrix_on_kubernetes_scores_like_local_runs(c: &Cluster) {
    let ns = TestNamespace::new(&c.kubeconfig, "matrix");
    let results = tempfile::tempdir().unwrap();
    let k8s_out = results.path().join("k8s").to_string_lossy().to_string();
    let local_out = results.path().join("local");
    let env = c.env();
    let tail = on_k8s(c, &ns.name, &k8s_out);
    let matrix = [
        "run",
        "metric-definition-audit",
        "terminal-lite",
        "--agent",
        "oracle",
        "--agent",
        "null",
        "--parallelism",
        "2",
    ];
    let out = kiln(&args(&matrix, &tail), &env);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .filter(|l| l.contains(" × ") && l.contains(" → "))
        .count();
    assert_eq!(lines, 10, "one line per run");
    assert_eq!(ns.objects_left(), (0, 0), "kiln deleted its Jobs and pods");
    assert_eq!(ns.secrets(), 0, "kiln deleted its image pull secret");
    // A re-run finds every result complete and current, and runs nothing.
    let out = kiln(&args(&matrix, &tail), &env);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("10 run(s) already have a complete, current result"));

    // The same matrix locally.
    let local_out_s = local_out.to_string_lossy().to_string();
    let local_tail = [
        "--jobs".to_string(),
        "2".to_string(),
        "--quiet".to_string(),
        "--backend".to_string(),
        "engine".to_string(),
        "--output".to_string(),
        local_out_s,
    ];
    let out = kiln(&args(&matrix[..7], &local_tail), &[]);
    assert!(out.status.success());
    let (k8s_rows, local_rows) = (report_rows(Path::new(&k8s_out)), report_rows(&local_out));
    assert_eq!(k8s_rows.len(), 10);
    assert_eq!(k8s_rows, local_rows, "kiln report: kubernetes vs local");
    assert!(k8s_rows
        .iter()
        .any(|r| r["agent"] == "oracle" && r["passed"] == true));
}

/// Deletes the run's first pod as soon as it runs (the runner is at work then).
fn kill_first_pod(kubeconfig: &str, ns: &str, timeout: Duration) -> Option<String> {
    rt().block_on(async {
        let pods: Api<Pod> = Api::namespaced(client(kubeconfig).await, ns);
        let lp = ListParams::default().labels("app.kubernetes.io/managed-by=kiln");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let list = pods.list(&lp).await.ok()?;
            let running = list
                .items
                .iter()
                // Pending counts too: a fast task's pod can finish between two looks
                // once it runs, while creating its container takes longer.
                .find(|p| {
                    matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Running" | "Pending")
                    )
                });
            if let Some(p) = running {
                let name = p.metadata.name.clone()?;
                pods.delete(&name, &DeleteParams::default().grace_period(0))
                    .await
                    .ok()?;
                return Some(name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    })
}

fn killed_pod_is_an_infra_error_and_a_rerun_completes_it(c: &Cluster) {
    let ns = TestNamespace::new(&c.kubeconfig, "kill");
    let results = tempfile::tempdir().unwrap();
    let out_dir = results.path().to_string_lossy().to_string();
    let env = c.env();
    let tail = on_k8s(c, &ns.name, &out_dir);
    let cmd = [
        "run",
        "terminal-lite",
        "--agent",
        "oracle",
        "--task-id",
        "count-lines",
    ];
    // Build and push first, so the pod is there to kill right after the Job is created.
    let child = spawn_kiln(&args(&cmd, &tail), &env);
    let killed = kill_first_pod(&c.kubeconfig, &ns.name, Duration::from_secs(240));
    let out = finish(child);
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let killed = killed.expect("a pod to kill");
    assert_eq!(out.status.code(), Some(1), "an infra error fails the run");
    let result = results
        .path()
        .join("terminal-lite/count-lines/oracle/result.json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(r["status"], "infra_error");
    let why = r["errors"][0]["message"].as_str().unwrap();
    assert!(why.contains("Job kiln-") || why.contains(&killed), "{why}");
    assert_eq!(ns.objects_left(), (0, 0));

    let out = kiln(&args(&cmd, &tail), &env);
    assert!(out.status.success());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(r["status"], "completed");
    assert_eq!(r["score"]["passed"], true);
}

fn ctrl_c_leaves_no_job_or_pod(c: &Cluster) {
    let ns = TestNamespace::new(&c.kubeconfig, "interrupt");
    let results = tempfile::tempdir().unwrap();
    let out_dir = results.path().to_string_lossy().to_string();
    let tail = on_k8s(c, &ns.name, &out_dir);
    let cmd = [
        "run",
        "terminal-lite",
        "--agent",
        "null",
        "--parallelism",
        "1",
    ];
    let child = spawn_kiln(&args(&cmd, &tail), &c.env());
    // Interrupt once kiln's first pod exists.
    let deadline = Instant::now() + Duration::from_secs(240);
    while ns.objects().1 == 0 {
        assert!(Instant::now() < deadline, "no pod appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The registry needs the login: the pods pull with the run's secret.
    assert_eq!(ns.secrets(), 1, "the run's image pull secret");
    let used = ns.pull_secrets_of_pods();
    assert!(
        !used.is_empty() && used.iter().all(|n| n.ends_with("-pull")),
        "{used:?}"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = finish(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(ns.objects_left(), (0, 0), "Jobs and pods left behind");
    assert_eq!(ns.secrets(), 0, "the image pull secret was left behind");
}

/// A real agent (mini-swe-agent) replaying a recorded fixture: the gateway runs as a
/// second container of the pod, the score equals the recorded one, and result.json's
/// `model` section holds the gateway's counters, as in a local replay.
fn replay_runs_the_gateway_beside_the_agent(c: &Cluster) {
    // The agent with bake (build secrets); the eval image is then built on the engine.
    let out = kiln(fleet_support::BUILD_MINI_SWE_AGENT, &[]);
    assert!(out.status.success(), "building mini-swe-agent");
    let ns = TestNamespace::new(&c.kubeconfig, "replay");
    let results = tempfile::tempdir().unwrap();
    let out_dir = results.path().to_string_lossy().to_string();
    let env = c.env();
    let tail = on_k8s(c, &ns.name, &out_dir);
    let fixture = "fixtures/replay/terminal-lite/count-lines/mini-swe-agent.jsonl";
    let cmd = [
        "run",
        "terminal-lite",
        "--task-id",
        "count-lines",
        "--agent",
        "mini-swe-agent",
        "--model",
        "gpt-test",
        "--replay",
        fixture,
    ];
    let out = kiln(&args(&cmd, &tail), &env);
    assert!(out.status.success());
    let dir = results
        .path()
        .join("terminal-lite/count-lines/mini-swe-agent");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["status"], "completed", "{r:#}");
    assert_eq!(r["score"]["passed"], true, "{r:#}");
    let model = &r["model"];
    assert_eq!(model["mode"], "replay", "{r:#}");
    assert_eq!(model["replay"]["score_equals_recorded"], true, "{r:#}");
    assert_eq!(
        model["replay"]["turns_served"], model["replay"]["turns_recorded"],
        "{r:#}"
    );
    assert!(dir.join("gateway.log").is_file());
    assert_eq!(ns.objects_left(), (0, 0), "Jobs and pods left behind");

    // --record stays local, and says so.
    let out = kiln(
        &args(
            &[
                "run",
                "terminal-lite",
                "--agent",
                "mini-swe-agent",
                "--model",
                "m",
                "--record",
                "/tmp/x.jsonl",
                "--upstream",
                "http://127.0.0.1:9",
            ],
            &tail,
        ),
        &env,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--record runs locally only"));
}
