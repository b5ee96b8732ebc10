//! Building the graph: each [`Node`] is resolved (from the fleet's one resolution, or
//! again with its task/eval variables), its `target:` contexts become dependencies
//! added first, and it becomes one [`BuildSpec`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use anyhow::Context as _;

use super::{BuildSpec, Labels, Node, Secret};
use crate::fleet::dockerfile::Dockerfile;
use crate::fleet::{Env, Fleet, Target};
use crate::labels::{self, BuildInfo};
use crate::naming::{self, Kind};

// The graph's tables are hashed tens of thousands of times per plan with keys kiln made
// itself: a fast hasher, not the default one that resists crafted keys.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// What the bake request builder needs to know about each build besides its spec.
#[derive(Debug, Clone)]
pub(crate) struct Extra {
    pub node: Node,
    /// Positions, in the spec's `labels` (key order), of the labels kiln sets that the
    /// resolved bake target does not already have with that value (passed to bake as
    /// `--set <target>.labels.<key>=<value>`). Positions, not keys: one allocation per
    /// image instead of one per label.
    pub added_labels: Vec<usize>,
}

/// The index of a node whose dependencies are still being added (seeing it again is a cycle).
const IN_PROGRESS: usize = usize::MAX;

pub(crate) struct Graph<'a> {
    fleet: &'a Fleet,
    info: &'a BuildInfo,
    /// Each node added (or being added: [`IN_PROGRESS`]) and its index in `builds`.
    index: HashMap<Node, usize>,
    builds: Vec<BuildSpec>,
    extras: Vec<Extra>,
    dockerfiles: HashMap<PathBuf, Rc<Dockerfile>>,
    /// One copy of each label key and value the targets and the build info repeat.
    strings: HashSet<Arc<str>>,
    /// `info.labels(None)`, made once: every image carries them.
    build_time: Vec<(Arc<str>, Arc<str>)>,
    templates: super::template::Templates,
}

impl<'a> Graph<'a> {
    pub fn new(fleet: &'a Fleet, info: &'a BuildInfo) -> Self {
        Graph {
            fleet,
            info,
            index: HashMap::default(),
            builds: Vec::new(),
            extras: Vec::new(),
            dockerfiles: HashMap::default(),
            strings: HashSet::default(),
            build_time: info
                .labels(None)
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            templates: super::template::Templates::new(),
        }
    }

    /// Makes room for `n` more nodes at once (growing a table of 44k nodes step by step
    /// copies it over and over).
    pub fn reserve(&mut self, n: usize) {
        self.index.reserve(n);
        self.builds.reserve(n);
        self.extras.reserve(n);
    }

    pub fn into_builds(self) -> (Vec<BuildSpec>, Vec<Extra>) {
        (self.builds, self.extras)
    }

    /// Adds `node` after everything it builds on; returns its index.
    pub fn add(&mut self, node: &Node) -> anyhow::Result<usize> {
        match self.index.get(node) {
            Some(&IN_PROGRESS) => anyhow::bail!(
                "{} builds on itself through target: contexts",
                display_name(node)
            ),
            Some(&i) => return Ok(i),
            None => {}
        }
        self.index.insert(node.clone(), IN_PROGRESS);
        let target = self.resolve(node)?;
        let mut deps = Vec::new();
        for (_, linked) in target.linked_targets() {
            let dep = self.node_of_target(linked, node, &target)?;
            let i = self.add(&dep)?;
            if !deps.contains(&i) {
                deps.push(i);
            }
        }
        let (spec, added_labels) = self.spec(node, target, deps)?;
        let i = self.builds.len();
        self.builds.push(spec);
        self.extras.push(Extra {
            node: node.clone(),
            added_labels,
        });
        *self.index.get_mut(node).expect("inserted above") = i;
        Ok(i)
    }

    fn resolve(&mut self, node: &Node) -> anyhow::Result<Target> {
        let fleet = self.fleet;
        let from_fleet = |name: String| {
            fleet
                .targets
                .get(&name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no bake target {name:?}"))
        };
        match node {
            Node::Core(c) => from_fleet(naming::core_target(c)),
            Node::Agent(a) => from_fleet(naming::agent_target(a)),
            Node::Benchmark(b, None) => from_fleet(naming::benchmark_target(b)),
            Node::Benchmark(b, Some(t)) => self
                .templates
                .per_task(fleet, b, t)
                .with_context(|| format!("resolving {}", display_name(node))),
            Node::Eval {
                benchmark,
                agent,
                task,
            } => self
                .templates
                .eval(fleet, benchmark, agent, task.as_deref())
                .with_context(|| format!("resolving {}", display_name(node))),
        }
    }

    /// The node a `target:<linked>` context of `from` stands for.
    fn node_of_target(
        &self,
        linked: &str,
        from: &Node,
        from_target: &Target,
    ) -> anyhow::Result<Node> {
        let task = match from {
            Node::Benchmark(_, t) | Node::Eval { task: t, .. } => t.clone(),
            _ => None,
        };
        match naming::parse_target(linked) {
            Some((Kind::Core, c)) => Ok(Node::Core(c.to_string())),
            Some((Kind::Agent, a)) => Ok(Node::Agent(a.to_string())),
            Some((Kind::Benchmark, b)) => {
                let bench = self.fleet.benchmark(b)?;
                match (bench.env, task) {
                    (Env::SharedEnv, _) => Ok(Node::Benchmark(b.to_string(), None)),
                    (Env::PerTask, Some(t)) => Ok(Node::Benchmark(b.to_string(), Some(t))),
                    (Env::PerTask, None) => anyhow::bail!(
                        "target {:?} builds on per-task benchmark {b:?}, which needs a task",
                        from_target.name
                    ),
                }
            }
            _ => anyhow::bail!(
                "target {:?} links target {linked:?}, which is not a fleet image (see RULES.md, Layout)",
                from_target.name
            ),
        }
    }

    /// The shared copy of `s` (made on first use).
    fn shared(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a: Arc<str> = s.into();
        self.strings.insert(a.clone());
        a
    }

    fn dockerfile(&mut self, path: &Path) -> anyhow::Result<Rc<Dockerfile>> {
        if let Some(d) = self.dockerfiles.get(path) {
            return Ok(d.clone());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading Dockerfile {}", path.display()))?;
        let d = Rc::new(Dockerfile::parse(&text));
        self.dockerfiles.insert(path.to_path_buf(), d.clone());
        Ok(d)
    }

    /// The images a Dockerfile builds on with these args, each once.
    fn bases(
        &mut self,
        path: &Path,
        args: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for b in self.dockerfile(path)?.bases(args) {
            if !out.contains(&b.image) {
                out.push(b.image);
            }
        }
        Ok(out)
    }

    fn spec(
        &mut self,
        node: &Node,
        target: Target,
        deps: Vec<usize>,
    ) -> anyhow::Result<(BuildSpec, Vec<usize>)> {
        let naming = &self.fleet.naming;
        let (image, kind, task) = match node {
            Node::Core(c) => (naming.core(c), Kind::Core, None),
            Node::Agent(a) => (naming.agent(a), Kind::Agent, None),
            Node::Benchmark(b, None) => (naming.benchmark(b, None), Kind::Benchmark, None),
            Node::Benchmark(b, Some(t)) => {
                (naming.benchmark(b, Some(t)), Kind::Task, Some(t.as_str()))
            }
            Node::Eval {
                benchmark,
                agent,
                task,
            } => (
                naming.eval(benchmark, task.as_deref(), agent),
                Kind::Eval,
                task.as_deref(),
            ),
        };

        let mut labels = Labels::new();
        if let Node::Eval {
            benchmark,
            agent,
            task: t,
        } = node
        {
            // The union of the benchmark's (or per-task base's) and the agent's labels:
            // shared strings, so copying them copies no text.
            for &d in &deps {
                if matches!(self.extras[d].node, Node::Benchmark(..) | Node::Agent(..)) {
                    let theirs = &self.builds[d].labels;
                    labels.extend(theirs.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            for (k, v) in &target.labels {
                labels.insert(self.shared(k), self.shared(v));
            }
            let (title, what) = match t {
                Some(t) => (
                    format!("evals/{benchmark}-{}--{agent}", naming::task_component(t)),
                    format!("benchmark {benchmark}, task {t}"),
                ),
                None => (
                    format!("evals/{benchmark}--{agent}"),
                    format!("benchmark {benchmark}"),
                ),
            };
            labels.insert(self.shared(labels::OCI_TITLE), title.into());
            labels.insert(
                self.shared(labels::OCI_DESCRIPTION),
                format!("Eval image: {what}, agent {agent}").into(),
            );
        } else {
            for (k, v) in &target.labels {
                labels.insert(self.shared(k), self.shared(v));
            }
        }
        labels.insert(self.shared(labels::TYPE), self.shared(kind.as_str()));
        for (k, v) in &self.build_time {
            labels.insert(k.clone(), v.clone());
        }
        // `labels(task)` is `labels(None)` followed by the task's own label.
        let info = self.info;
        for (k, v) in info.labels(task).skip(self.build_time.len()) {
            labels.insert(self.shared(k), self.shared(v));
        }

        // Exactly as long as it is (inserting grew it by doubling): tens of thousands of
        // these live until the plan ends.
        let mut exact = Vec::with_capacity(labels.len());
        exact.extend(labels.into_tuple_vec());
        let labels = Labels::from_sorted_store_unchecked(exact);

        let added_labels: Vec<usize> = labels
            .iter()
            .enumerate()
            .filter(|(_, (k, v))| target.labels.get(k.as_ref()).map(String::as_str) != Some(v))
            .map(|(i, _)| i)
            .collect();

        let dockerfile_path = {
            let d = Path::new(&target.dockerfile);
            if d.is_absolute() {
                d.to_path_buf()
            } else {
                self.fleet.root.join(&target.context).join(d)
            }
        };
        let bases = self.bases(&dockerfile_path, &target.args)?;
        // The target is this image's own (resolved for it): its parts move into the spec.
        let spec = BuildSpec {
            name: display_name(node),
            bake_target: target.name,
            image,
            context: PathBuf::from(target.context),
            dockerfile: PathBuf::from(target.dockerfile),
            target: target.stage,
            args: target
                .args
                .iter()
                .map(|(k, v)| (self.shared(k), self.shared(v)))
                .collect(),
            labels,
            secrets: target
                .secrets
                .into_iter()
                .map(|s| Secret {
                    id: s.id,
                    env: s.env,
                    src: s.src.map(PathBuf::from),
                })
                .collect(),
            bases,
            deps,
        };
        Ok((spec, added_labels))
    }
}

/// The bake variables a node is resolved (and built by bake) with, beyond the fleet's own.
pub(crate) fn bake_vars(node: &Node) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    match node {
        Node::Benchmark(_, Some(t)) => {
            vars.insert(naming::VAR_TASK_ID.to_string(), t.clone());
        }
        Node::Eval {
            benchmark,
            agent,
            task,
        } => {
            vars.insert(naming::VAR_BENCHMARK.to_string(), benchmark.clone());
            vars.insert(naming::VAR_AGENT.to_string(), agent.clone());
            // Set even when empty, so a value exported in the user's shell cannot leak in.
            vars.insert(
                naming::VAR_TASK_ID.to_string(),
                task.clone().unwrap_or_default(),
            );
        }
        _ => {}
    }
    vars
}

/// How a build is shown to people: the bake target, with the task for per-task bases.
pub(crate) fn display_name(node: &Node) -> String {
    match node {
        Node::Core(c) => naming::core_target(c),
        Node::Agent(a) => naming::agent_target(a),
        Node::Benchmark(b, None) => naming::benchmark_target(b),
        Node::Benchmark(b, Some(t)) => format!("{}[{t}]", naming::benchmark_target(b)),
        Node::Eval {
            benchmark,
            agent,
            task: None,
        } => format!("eval[{benchmark}--{agent}]"),
        Node::Eval {
            benchmark,
            agent,
            task: Some(t),
        } => format!("eval[{benchmark}/{t}--{agent}]"),
    }
}
