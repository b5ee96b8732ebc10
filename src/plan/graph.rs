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
    /// Parsed Dockerfiles by `<context>\0<dockerfile>` as the targets write them (hashing
    /// a string, not a joined path: a plan looks one up for every image).
    dockerfiles: HashMap<String, Rc<Dockerfile>>,
    dockerfile_key: String,
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
            dockerfile_key: String::new(),
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

    /// The Dockerfile of a target (`dockerfile` relative to `context` unless absolute).
    fn dockerfile(&mut self, context: &str, dockerfile: &str) -> anyhow::Result<Rc<Dockerfile>> {
        let key = &mut self.dockerfile_key;
        key.clear();
        key.extend([context, "\0", dockerfile]);
        if let Some(d) = self.dockerfiles.get(key.as_str()) {
            return Ok(d.clone());
        }
        let d = Path::new(dockerfile);
        let path = if d.is_absolute() {
            d.to_path_buf()
        } else {
            self.fleet.root.join(context).join(d)
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading Dockerfile {}", path.display()))?;
        let d = Rc::new(Dockerfile::parse(&text));
        self.dockerfiles
            .insert(self.dockerfile_key.clone(), d.clone());
        Ok(d)
    }

    /// The images a Dockerfile builds on with these args, each once.
    fn bases(&mut self, target: &Target) -> anyhow::Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let args = &target.args;
        self.dockerfile(&target.context, &target.dockerfile)?
            .each_base(args, |_, _, image| {
                if !out.contains(&image) {
                    out.push(image);
                }
            });
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

        // Sorted layers, a later one winning where a key repeats: the benchmark's (or
        // per-task base's) and the agent's labels for an eval (shared strings: copying
        // them copies no text), the target's, then kiln's own.
        let mut own: Vec<(Arc<str>, Arc<str>)> = Vec::with_capacity(16);
        if let Node::Eval {
            benchmark,
            agent,
            task: t,
        } = node
        {
            // Two labels per eval image, tens of thousands of them: no `format!`.
            let title = naming::eval_path(benchmark, t.as_deref(), agent);
            let (sep, task) = t.as_deref().map_or(("", ""), |t| (", task ", t));
            let description = naming::concat(&[
                "Eval image: benchmark ",
                benchmark,
                sep,
                task,
                ", agent ",
                agent,
            ]);
            own.push((self.shared(labels::OCI_TITLE), title.into()));
            own.push((self.shared(labels::OCI_DESCRIPTION), description.into()));
        }
        own.push((self.shared(labels::TYPE), self.shared(kind.as_str())));
        own.extend(self.build_time.iter().cloned());
        // `labels(task)` is `labels(None)` followed by the task's own label.
        let info = self.info;
        for (k, v) in info.labels(task).skip(self.build_time.len()) {
            own.push((self.shared(k), self.shared(v)));
        }
        own.sort_by(|a, b| a.0.cmp(&b.0)); // stable: the later of equal keys stays later
        let targets: Vec<(Arc<str>, Arc<str>)> = target
            .labels
            .iter()
            .map(|(k, v)| (self.shared(k), self.shared(v)))
            .collect();
        let mut layers: Vec<&[(Arc<str>, Arc<str>)]> = Vec::with_capacity(4);
        if matches!(node, Node::Eval { .. }) {
            for &d in &deps {
                if matches!(self.extras[d].node, Node::Benchmark(..) | Node::Agent(..)) {
                    layers.push(self.builds[d].labels.as_slice());
                }
            }
        }
        layers.extend([&targets[..], &own[..]]);
        let labels = Labels::from_sorted_store_unchecked(merge_sorted(&layers));

        // Both sorted by key: one walk finds the labels the target lacks or has otherwise.
        let mut theirs = target.labels.iter().peekable();
        let mut added_labels = Vec::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            while theirs.next_if(|(tk, _)| tk.as_str() < k.as_ref()).is_some() {}
            if theirs
                .peek()
                .is_none_or(|(tk, tv)| tk.as_str() != k.as_ref() || tv.as_str() != v.as_ref())
            {
                added_labels.push(i);
            }
        }

        let bases = self.bases(&target)?;
        // The target is this image's own (resolved for it): its parts move into the spec.
        let spec = BuildSpec {
            name: display_name(node),
            bake_target: target.name,
            image,
            context: PathBuf::from(target.context),
            dockerfile: PathBuf::from(target.dockerfile),
            target: target.stage,
            // Already sorted by name (a `BTreeMap`).
            args: super::Args::from_sorted_store_unchecked(
                target
                    .args
                    .iter()
                    .map(|(k, v)| (self.shared(k), self.shared(v)))
                    .collect(),
            ),
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

/// Merges key-sorted layers into one key-sorted list, exactly as long as it is (tens of
/// thousands live until the plan ends); where a key is in several layers, the value of
/// the last one (and, within a layer, the last entry) wins.
fn merge_sorted(layers: &[&[(Arc<str>, Arc<str>)]]) -> Vec<(Arc<str>, Arc<str>)> {
    let mut next = vec![0; layers.len()];
    let mut out = Vec::with_capacity(layers.iter().map(|l| l.len()).sum());
    loop {
        // The smallest key at the head of any layer, and the last entry holding it.
        let mut smallest: Option<&str> = None;
        for (layer, &at) in layers.iter().zip(&next) {
            if let Some((k, _)) = layer.get(at) {
                if smallest.is_none_or(|s| k.as_ref() < s) {
                    smallest = Some(k);
                }
            }
        }
        let Some(key) = smallest else { break };
        let mut winner = None;
        for (layer, at) in layers.iter().zip(&mut next) {
            while let Some(entry) = layer.get(*at).filter(|(k, _)| k.as_ref() == key) {
                winner = Some(entry);
                *at += 1;
            }
        }
        out.push(winner.expect("a layer holds the smallest key").clone());
    }
    out.shrink_to_fit();
    out
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
            task,
        } => {
            let (sep, task) = task.as_deref().map_or(("", ""), |t| ("/", t));
            naming::concat(&["eval[", benchmark, sep, task, "--", agent, "]"])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(pairs: &[(&str, &str)]) -> Vec<(Arc<str>, Arc<str>)> {
        pairs.iter().map(|&(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn merged_layers_stay_sorted_and_the_last_value_wins() {
        let bench = layer(&[("a", "bench"), ("c", "bench")]);
        let agent = layer(&[("b", "agent"), ("c", "agent")]);
        let own = layer(&[("a", "own"), ("d", "first"), ("d", "second")]);
        let merged = merge_sorted(&[&bench, &agent, &[], &own]);
        assert_eq!(
            merged,
            layer(&[
                ("a", "own"),
                ("b", "agent"),
                ("c", "agent"),
                ("d", "second")
            ])
        );
        assert_eq!(merged.capacity(), merged.len());
        assert!(merge_sorted(&[&[], &[]]).is_empty());
    }
}
