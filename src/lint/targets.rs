//! Checks on resolved targets: labels, tags, `target:` contexts against the Dockerfile's
//! bases, secret-shaped args, per-task environments, groups, and who uses `EVAL_TASK_ID`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use super::layout::{first_line, locate, Entry, LintFleet};
use super::secrets::is_secret_shaped;
use super::{rules, Report, Sink};
use crate::fleet::dockerfile::Dockerfile;
use crate::fleet::layout as fl;
use crate::fleet::{Env, Target};
use crate::labels;
use crate::naming::{self, Kind};

struct Checker<'a> {
    root: &'a Path,
    fleet: &'a LintFleet,
    /// Benchmark name → kind, from the `eval.benchmark.env` label.
    envs: BTreeMap<String, Env>,
    dockerfiles_seen: HashSet<PathBuf>,
}

pub(crate) fn check(root: &Path, fleet: &LintFleet, sink: &mut Sink, report: &mut Report) {
    let mut c = Checker {
        root,
        fleet,
        envs: BTreeMap::new(),
        dockerfiles_seen: HashSet::new(),
    };
    let none = BTreeMap::new();

    // First pass: every image target alone, with no EVAL_* variable.
    let mut resolved: Vec<(&Entry, Target)> = Vec::new();
    // Entries without their target were reported by the layout check already.
    for e in fleet
        .entries
        .iter()
        .filter(|e| e.kind != Kind::Eval && fleet.blocks.contains_key(&e.target))
    {
        if let Some(t) = c.resolve(e, &none, sink) {
            if e.kind == Kind::Benchmark {
                let env_label = t
                    .labels
                    .get(labels::BENCHMARK_ENV)
                    .cloned()
                    .unwrap_or_default();
                match Env::parse(&env_label) {
                    Some(env) => {
                        c.envs.insert(e.name.clone(), env);
                    }
                    None => {
                        let (f, l) =
                            fleet.line_in_target(&e.target, labels::BENCHMARK_ENV, &e.bake_file);
                        sink.add(rules::KILN_LABELS,
                            f,
                            l,
                            format!(
                                "target {:?}: label {} is {env_label:?}; expected \"shared-env\" or \"per-task\"",
                                e.target,
                                labels::BENCHMARK_ENV
                            ),
                        );
                    }
                }
            }
            resolved.push((e, t));
        }
    }
    report.targets = resolved.len();

    for (e, t) in &resolved {
        match (e.kind, c.envs.get(&e.name)) {
            (Kind::Benchmark, Some(Env::PerTask)) => {
                // The target without a task is never built; each task's base is.
                for task in &e.tasks {
                    report.tasks += 1;
                    let env_df = Path::new(fl::BENCHMARKS_DIR)
                        .join(&e.name)
                        .join(fl::TASKS_DIR)
                        .join(task)
                        .join("environment/Dockerfile");
                    if !root.join(&env_df).is_file() {
                        sink.add(rules::KILN_LAYOUT,
                            env_df.parent().unwrap_or(&env_df),
                            1,
                            format!("task {task:?} of per-task benchmark {:?} has no environment/Dockerfile", e.name),
                        );
                        continue;
                    }
                    let vars = BTreeMap::from([(naming::VAR_TASK_ID.to_string(), task.clone())]);
                    if let Some(tt) = c.resolve(e, &vars, sink) {
                        c.target(e, &tt, Kind::Task, Some(task), sink);
                    }
                }
            }
            (kind, _) => {
                report.tasks += e.tasks.len();
                c.target(e, t, kind, None, sink);
            }
        }
    }

    // The combination recipe, resolved for one real benchmark × agent.
    if let Some(e) = fleet.entries.iter().find(|e| e.kind == Kind::Eval) {
        let bench = fleet
            .entries
            .iter()
            .find(|b| b.kind == Kind::Benchmark && c.envs.contains_key(&b.name));
        let agent = fleet.entries.iter().find(|a| a.kind == Kind::Agent);
        if let (Some(b), Some(a)) = (bench, agent) {
            let task = match c.envs[&b.name] {
                Env::PerTask => b.tasks.first().cloned(),
                Env::SharedEnv => None,
            };
            let vars = BTreeMap::from([
                (naming::VAR_BENCHMARK.to_string(), b.name.clone()),
                (naming::VAR_AGENT.to_string(), a.name.clone()),
                (
                    naming::VAR_TASK_ID.to_string(),
                    task.clone().unwrap_or_default(),
                ),
            ]);
            if let Some(t) = c.resolve(e, &vars, sink) {
                c.target(e, &t, Kind::Eval, task.as_deref(), sink);
                let expected = fleet.naming.eval(&b.name, task.as_deref(), &a.name);
                c.tags(e, &t, &expected, sink);
            }
        }
    }
    report.dockerfiles = c.dockerfiles_seen.len();

    c.groups(sink);
    c.task_id_users(sink);
}

impl Checker<'_> {
    fn resolve(
        &self,
        e: &Entry,
        vars: &BTreeMap<String, String>,
        sink: &mut Sink,
    ) -> Option<Target> {
        match self
            .fleet
            .resolver
            .resolve(std::slice::from_ref(&e.target), vars)
        {
            Ok(mut m) => m.remove(&e.target),
            Err(err) => {
                let msg = format!("{err:#}");
                let files: Vec<PathBuf> =
                    self.fleet.sources.iter().map(|s| s.path.clone()).collect();
                let (file, line) = if msg.contains(".hcl:") {
                    locate(&msg, &files)
                } else {
                    self.fleet.target_line(&e.target, &e.bake_file)
                };
                let with = if vars.is_empty() {
                    String::new()
                } else {
                    let v: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!(" with {}", v.join(" "))
                };
                sink.add(
                    rules::KILN_LAYOUT,
                    file,
                    line,
                    format!(
                        "target {:?} does not resolve{with}: {}",
                        e.target,
                        first_line(&msg)
                    ),
                );
                None
            }
        }
    }

    /// Checks one resolved target built as an image of `kind`.
    fn target(&mut self, e: &Entry, t: &Target, kind: Kind, task: Option<&str>, sink: &mut Sink) {
        let fleet = self.fleet;
        let at = |needle: &str| fleet.line_in_target(&e.target, needle, &e.bake_file);

        // Labels.
        for key in labels::authored(kind) {
            if t.labels.get(key).is_none_or(|v| v.trim().is_empty()) {
                let (f, l) = fleet.target_line(&e.target, &e.bake_file);
                sink.add(rules::KILN_LABELS, f, l, format!("target {:?}: missing label {key:?} (required on {kind} images; RULES.md, Labels)", e.target));
            }
        }
        let mut expect = |key: &str, want: &str, why: &str| {
            if let Some(v) = t.labels.get(key) {
                if !v.trim().is_empty() && v != want {
                    let (f, l) = at(&format!("\"{key}\""));
                    sink.add(
                        rules::KILN_LABELS,
                        f,
                        l,
                        format!(
                            "target {:?}: label {key} is {v:?}, expected {want:?} ({why})",
                            e.target
                        ),
                    );
                }
            }
        };
        expect(labels::TYPE, kind.as_str(), "the image's kind");
        match kind {
            Kind::Benchmark | Kind::Task => {
                expect(labels::BENCHMARK_NAME, &e.name, "the directory name");
                expect(
                    labels::BENCHMARK_TASKS,
                    &e.task_count.to_string(),
                    "the number of task directories",
                );
                if let Some(task) = task {
                    expect(labels::TASK_ID, task, "the task id, not lowercased");
                }
            }
            Kind::Agent => expect(labels::AGENT_NAME, &e.name, "the directory name"),
            _ => {}
        }
        if let Some(v) = t.labels.get(labels::BENCHMARK_RELEASED) {
            if v != "true" {
                let (f, l) = at(labels::BENCHMARK_RELEASED);
                sink.add(rules::KILN_LABELS, f, l, format!("target {:?}: label {} may only be \"true\" (leave it out until earned), not {v:?}", e.target, labels::BENCHMARK_RELEASED));
            }
        }

        // Tags say what naming says.
        if kind != Kind::Eval {
            let naming = &fleet.naming;
            let expected = match kind {
                Kind::Core => naming.core(&e.name),
                Kind::Agent => naming.agent(&e.name),
                _ => naming.benchmark(&e.name, task),
            };
            self.tags(e, t, &expected, sink);
        }

        // Secret-shaped bake args.
        for key in t.args.keys() {
            if is_secret_shaped(key) {
                let (f, l) = at(key);
                sink.add(rules::KILN_SECRETS, f, l, format!("target {:?}: build arg {key} looks like a secret; build args are stored in the image: use a bake `secret` entry", e.target));
            }
        }

        // target: contexts name the image kiln gives the linked target.
        for (key, linked) in t.linked_targets() {
            let task_of_linked = |b: &str| match self.envs.get(b) {
                Some(Env::PerTask) => task,
                _ => None,
            };
            let want = match naming::parse_target(linked) {
                Some((Kind::Core, c)) => Some(fleet.naming.core(c)),
                Some((Kind::Agent, a)) => Some(fleet.naming.agent(a)),
                Some((Kind::Benchmark, b)) => Some(fleet.naming.benchmark(b, task_of_linked(b))),
                _ => None,
            };
            let (f, l) = at(&format!("target:{linked}"));
            match want {
                None => sink.add(rules::KILN_CONTEXTS, f, l, format!("target {:?} links {linked:?}, which is not a fleet image target", e.target)),
                Some(want) if want != key && format!("{key}:latest") != want => sink.add(rules::KILN_CONTEXTS,
                    f,
                    l,
                    format!("target {:?}: context key {key:?} for target:{linked} should be {want:?}, the image kiln builds", e.target),
                ),
                _ => {}
            }
        }

        // The Dockerfile: readable, no secret-shaped ARG/ENV, in-fleet bases declared.
        let df_rel = {
            let d = Path::new(&t.dockerfile);
            if d.is_absolute() {
                d.to_path_buf()
            } else {
                Path::new(&t.context).join(d)
            }
        };
        let text = match std::fs::read_to_string(self.root.join(&df_rel)) {
            Ok(s) => s,
            Err(err) => {
                let (f, l) = fleet.target_line(&e.target, &e.bake_file);
                sink.add(
                    rules::KILN_LAYOUT,
                    f,
                    l,
                    format!(
                        "target {:?}: Dockerfile {} cannot be read: {err}",
                        e.target,
                        df_rel.display()
                    ),
                );
                return;
            }
        };
        let df = Dockerfile::parse(&text);
        if self.dockerfiles_seen.insert(df_rel.clone()) {
            for (line, what, name) in df.declared_variables() {
                if is_secret_shaped(&name) {
                    sink.add(rules::KILN_SECRETS, &df_rel, line, format!("{what} {name} looks like a secret; {what} values are stored in the image: use RUN --mount=type=secret"));
                }
            }
        }
        let prefix = format!("{}/", fleet.naming.registry);
        for base in df.bases(&t.args) {
            if !base.image.starts_with(&prefix) {
                continue;
            }
            let declared = t.contexts.get(&base.image).or_else(|| {
                base.image
                    .strip_suffix(":latest")
                    .and_then(|i| t.contexts.get(i))
            });
            if !declared.is_some_and(|v| v.starts_with("target:")) {
                sink.add(rules::KILN_CONTEXTS,
                    &df_rel,
                    base.line,
                    format!(
                        "{} is the in-fleet image {}, but target {:?} does not declare it: add contexts {{ \"{}\" = \"target:<its target>\" }}",
                        base.written, base.image, e.target, base.image
                    ),
                );
            }
        }
    }

    fn tags(&self, e: &Entry, t: &Target, expected: &str, sink: &mut Sink) {
        if !t.tags.iter().any(|x| x == expected) {
            let (f, l) = self.fleet.line_in_target(&e.target, "tags", &e.bake_file);
            sink.add(
                rules::KILN_TAGS,
                f,
                l,
                format!(
                    "target {:?}: tags {:?} should include {expected:?} (RULES.md, Image names)",
                    e.target, t.tags
                ),
            );
        }
    }

    fn groups(&self, sink: &mut Sink) {
        let fleet = self.fleet;
        let root_file = PathBuf::from(fl::ROOT_BAKE_FILE);
        let group_line = |g: &str| -> usize {
            fleet
                .sources
                .iter()
                .find(|s| s.path == root_file)
                .and_then(|s| {
                    s.blocks()
                        .into_iter()
                        .find(|b| b.kind == "group" && b.name == g)
                        .map(|b| b.line)
                })
                .unwrap_or(1)
        };
        let empty = BTreeSet::new();
        let members = |g: &str| fleet.groups.get(g).unwrap_or(&empty);
        for e in &fleet.entries {
            let want: Option<&str> = match (e.kind, self.envs.get(&e.name)) {
                (Kind::Core, _) => Some("core"),
                (Kind::Agent, _) => Some("agents"),
                (Kind::Benchmark, Some(Env::SharedEnv)) => Some("benchmarks"),
                _ => None,
            };
            if let Some(g) = want {
                if fleet.groups.contains_key(g) && !members(g).contains(&e.target) {
                    sink.add(
                        rules::KILN_GROUPS,
                        &root_file,
                        group_line(g),
                        format!("group {g:?} should list target {:?}", e.target),
                    );
                }
            }
            let is_unbuildable_alone =
                e.kind == Kind::Eval || self.envs.get(&e.name) == Some(&Env::PerTask);
            if is_unbuildable_alone {
                for (g, m) in &fleet.groups {
                    if m.contains(&e.target) {
                        sink.add(rules::KILN_GROUPS, &root_file, group_line(g), format!("group {g:?} lists {:?}, which cannot be built without EVAL_* variables", e.target));
                    }
                }
            }
        }
        if let Some(default) = fleet.groups.get("default") {
            for g in ["core", "benchmarks", "agents"] {
                for t in members(g) {
                    if !default.contains(t) {
                        sink.add(
                            rules::KILN_GROUPS,
                            &root_file,
                            group_line("default"),
                            format!("group \"default\" should include {t:?} (from group {g:?})"),
                        );
                    }
                }
            }
        }
        for (g, m) in &fleet.groups {
            for t in m {
                if !fleet.blocks.contains_key(t) && !fleet.groups.contains_key(t) {
                    sink.add(
                        rules::KILN_GROUPS,
                        &root_file,
                        group_line(g),
                        format!("group {g:?} lists {t:?}, which is not a target"),
                    );
                }
            }
        }
    }

    /// `EVAL_TASK_ID` belongs to the root file, core-eval and per-task benchmarks.
    fn task_id_users(&self, sink: &mut Sink) {
        let mut allowed: BTreeSet<PathBuf> = [
            PathBuf::from(fl::ROOT_BAKE_FILE),
            fl::bake_file_of(fl::CORE_DIR, "eval"),
        ]
        .into();
        for e in &self.fleet.entries {
            if self.envs.get(&e.name) == Some(&Env::PerTask) {
                allowed.insert(e.bake_file.clone());
            }
        }
        for src in &self.fleet.sources {
            if allowed.contains(&src.path) {
                continue;
            }
            for line in src.word_lines(naming::VAR_TASK_ID) {
                sink.add(rules::KILN_VARIABLES, &src.path, line, "only per-task benchmarks and core-eval may use EVAL_TASK_ID (see RULES.md, Building on other images)");
            }
        }
    }
}
