//! Resolving per-task bases and eval images fast: one bake resolution with placeholder
//! values for `EVAL_TASK_ID` / `EVAL_BENCHMARK` / `EVAL_AGENT`, then the real values
//! substituted into every string of the resolved target.
//!
//! That is exact when the bake files use those variables only as text (interpolation,
//! `lower()`, comparison with `""`), which RULES.md asks for. Correctness first: the
//! first use of a benchmark and of an agent (and the first task of a per-task benchmark)
//! is also resolved for real and compared; on any difference the plan drops the
//! templates and resolves every node for real. The first 16 benchmarks and agents of each
//! shape are checked (more would make planning quadratic: a real resolution reads the
//! whole fleet).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use crate::fleet::layout as fl;
use crate::fleet::{Fleet, Resolver, Target};
use crate::naming;

const TASK: &str = "KilnTaskPlaceholder";
/// [`TASK`] lowercased, as `lower(EVAL_TASK_ID)` and image names show it.
const TASK_LOWER: &str = "kilntaskplaceholder";
const BENCH: &str = "kilnbenchplaceholder";
const AGENT: &str = "kilnagentplaceholder";
/// Every placeholder contains this: one search rules out most strings of a target.
const MARK: &str = "laceholder";

pub(crate) struct Templates {
    /// False once a check failed: every node is then resolved for real.
    enabled: bool,
    eval_resolver: Option<Resolver>,
    /// core-eval resolved with placeholders: [shared-env, per-task].
    eval: [Option<Template>; 2],
    per_task: BTreeMap<String, Template>,
    /// The names seen so far in each group (at most [`CHECKS_PER_GROUP`] each).
    checked: BTreeMap<&'static str, HashSet<String>>,
}

/// How many benchmarks (and agents) per shape are checked against a real resolution.
const CHECKS_PER_GROUP: usize = 16;

impl Templates {
    pub fn new() -> Self {
        Templates {
            enabled: crate::env::PLAN_EXACT.get_os().is_none(),
            eval_resolver: None,
            eval: [None, None],
            per_task: BTreeMap::new(),
            checked: BTreeMap::new(),
        }
    }

    /// True the first time `name` is seen in `group`, for the first [`CHECKS_PER_GROUP`]
    /// names of the group (each real resolution costs a pass over the whole fleet, so
    /// checking every name would make planning quadratic in the fleet's size).
    fn first_use(&mut self, group: &'static str, name: &str) -> bool {
        // This runs for every node: a name already seen or a full group allocates nothing.
        let seen = self.checked.entry(group).or_default();
        if seen.len() >= CHECKS_PER_GROUP || seen.contains(name) {
            return false;
        }
        seen.insert(name.to_string());
        true
    }

    /// The base of `task` of per-task benchmark `b`.
    pub fn per_task(&mut self, fleet: &Fleet, b: &str, task: &str) -> anyhow::Result<Target> {
        let target = naming::benchmark_target(b);
        let exact =
            |t: &str| resolve_one(fleet, &fleet.resolver, &target, &[(naming::VAR_TASK_ID, t)]);
        if !self.enabled {
            return exact(task);
        }
        if !self.per_task.contains_key(b) {
            let template = Template::new(&exact(TASK)?);
            self.per_task.insert(b.to_string(), template);
        }
        let made = self.per_task[b].fill(&values(Some(task), None, None));
        if self.first_use("task", b) {
            let real = exact(task)?;
            if real != made {
                self.enabled = false;
                return Ok(real);
            }
        }
        Ok(made)
    }

    /// core-eval for benchmark × agent (× task).
    pub fn eval(
        &mut self,
        fleet: &Fleet,
        b: &str,
        a: &str,
        task: Option<&str>,
    ) -> anyhow::Result<Target> {
        let vars = [
            (naming::VAR_BENCHMARK, b),
            (naming::VAR_AGENT, a),
            (naming::VAR_TASK_ID, task.unwrap_or("")),
        ];
        let exact = || resolve_one(fleet, &fleet.resolver, naming::EVAL_TARGET, &vars);
        if !self.enabled {
            return exact();
        }
        let slot = usize::from(task.is_some());
        if self.eval[slot].is_none() {
            if self.eval_resolver.is_none() {
                self.eval_resolver = Some(eval_resolver(fleet)?);
            }
            let resolver = self.eval_resolver.as_ref().expect("just set");
            let placeholders = [
                (naming::VAR_BENCHMARK, BENCH),
                (naming::VAR_AGENT, AGENT),
                (naming::VAR_TASK_ID, if task.is_some() { TASK } else { "" }),
            ];
            match resolve_one(fleet, resolver, naming::EVAL_TARGET, &placeholders) {
                Ok(t) => self.eval[slot] = Some(Template::new(&t)),
                Err(_) => {
                    // core-eval needs more than the core files: resolve for real.
                    self.enabled = false;
                    return exact();
                }
            }
        }
        let made =
            self.eval[slot]
                .as_ref()
                .expect("just set")
                .fill(&values(task, Some(b), Some(a)));
        let new_b = self.first_use(["eval-b:0", "eval-b:1"][slot], b);
        let new_a = self.first_use(["eval-a:0", "eval-a:1"][slot], a);
        if new_b || new_a {
            let real = exact()?;
            if real != made {
                self.enabled = false;
                return Ok(real);
            }
        }
        Ok(made)
    }
}

/// The root file and the core images' files, plus stand-in benchmark and agent targets
/// for the placeholders to link to.
fn eval_resolver(fleet: &Fleet) -> anyhow::Result<Resolver> {
    let files: Vec<PathBuf> = fleet
        .layout
        .bake_files
        .iter()
        .filter(|f| {
            f.as_path() == std::path::Path::new(fl::ROOT_BAKE_FILE) || f.starts_with(fl::CORE_DIR)
        })
        .cloned()
        .collect();
    let stubs = format!(
        "target \"{}\" {{\n}}\ntarget \"{}\" {{\n}}\n",
        naming::benchmark_target(BENCH),
        naming::agent_target(AGENT)
    );
    Resolver::read_with(
        &fleet.root,
        &files,
        vec![("<kiln: placeholders>.hcl".into(), stubs)],
    )
}

fn resolve_one(
    fleet: &Fleet,
    resolver: &Resolver,
    target: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<Target> {
    let mut vars = fleet.vars.clone();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    let name = target.to_string();
    resolver
        .resolve(std::slice::from_ref(&name), &vars)?
        .remove(&name)
        .ok_or_else(|| anyhow::anyhow!("bake did not resolve target {name:?}"))
}

/// The placeholders, in the order [`Values`] holds their values.
const PLACEHOLDERS: [&str; 4] = [TASK, TASK_LOWER, BENCH, AGENT];

/// What each of [`PLACEHOLDERS`] becomes for one node; `None` leaves it as it is.
type Values<'a> = [Option<Cow<'a, str>>; 4];

fn values<'a>(task: Option<&'a str>, b: Option<&'a str>, a: Option<&'a str>) -> Values<'a> {
    [
        task.map(Cow::Borrowed),
        task.map(|t| Cow::Owned(naming::task_component(t))),
        b.map(Cow::Borrowed),
        a.map(Cow::Borrowed),
    ]
}

/// One string of a template target, split at its placeholders once, so that each node
/// costs one copy per string and no search.
#[derive(Debug)]
struct Text {
    text: String,
    /// `(start, end, which)`: `text[start..end]` is `PLACEHOLDERS[which]`, in order.
    holes: Vec<(usize, usize, usize)>,
}

impl Text {
    /// Each placeholder ends with [`MARK`], so each occurrence of the mark is checked
    /// for the placeholder that ends there.
    fn new(text: &str) -> Text {
        let mut holes = Vec::new();
        let mut searched = 0;
        while let Some(i) = text[searched..].find(MARK) {
            let end = searched + i + MARK.len();
            let after_last = holes.last().map_or(0, |&(_, e, _)| e);
            if let Some(which) = PLACEHOLDERS
                .iter()
                .position(|p| text[after_last..end].ends_with(p))
            {
                holes.push((end - PLACEHOLDERS[which].len(), end, which));
            }
            searched = end;
        }
        Text {
            text: text.to_string(),
            holes,
        }
    }

    fn fill(&self, values: &Values) -> String {
        if self.holes.is_empty() {
            return self.text.clone();
        }
        let mut out = String::with_capacity(self.text.len() + 32);
        let mut copied = 0;
        for &(start, end, which) in &self.holes {
            if let Some(v) = &values[which] {
                out.push_str(&self.text[copied..start]);
                out.push_str(v);
                copied = end;
            }
        }
        out.push_str(&self.text[copied..]);
        out
    }
}

/// A map of a template target; `plain` when no key or value holds a placeholder.
#[derive(Debug)]
enum Map {
    Plain(BTreeMap<String, String>),
    Holes(Vec<(Text, Text)>),
}

impl Map {
    fn new(m: &BTreeMap<String, String>) -> Map {
        if !m.iter().any(|(k, v)| k.contains(MARK) || v.contains(MARK)) {
            return Map::Plain(m.clone());
        }
        Map::Holes(
            m.iter()
                .map(|(k, v)| (Text::new(k), Text::new(v)))
                .collect(),
        )
    }

    fn fill(&self, values: &Values) -> BTreeMap<String, String> {
        match self {
            Map::Plain(m) => m.clone(),
            Map::Holes(pairs) => pairs
                .iter()
                .map(|(k, v)| (k.fill(values), v.fill(values)))
                .collect(),
        }
    }
}

/// A target resolved with placeholder values, ready to be filled in for each node.
#[derive(Debug)]
struct Template {
    name: String,
    context: Text,
    dockerfile: Text,
    contexts: Map,
    args: Map,
    labels: Map,
    tags: Vec<Text>,
    stage: Option<Text>,
    secrets: Vec<(Text, Option<Text>, Option<Text>)>,
}

impl Template {
    fn new(t: &Target) -> Template {
        let opt = |x: &Option<String>| x.as_deref().map(Text::new);
        Template {
            name: t.name.clone(),
            context: Text::new(&t.context),
            dockerfile: Text::new(&t.dockerfile),
            contexts: Map::new(&t.contexts),
            args: Map::new(&t.args),
            labels: Map::new(&t.labels),
            tags: t.tags.iter().map(|x| Text::new(x)).collect(),
            stage: opt(&t.stage),
            secrets: t
                .secrets
                .iter()
                .map(|s| (Text::new(&s.id), opt(&s.env), opt(&s.src)))
                .collect(),
        }
    }

    fn fill(&self, values: &Values) -> Target {
        let opt = |x: &Option<Text>| x.as_ref().map(|x| x.fill(values));
        Target {
            name: self.name.clone(),
            context: self.context.fill(values),
            dockerfile: self.dockerfile.fill(values),
            contexts: self.contexts.fill(values),
            args: self.args.fill(values),
            labels: self.labels.fill(values),
            tags: self.tags.iter().map(|x| x.fill(values)).collect(),
            stage: opt(&self.stage),
            secrets: self
                .secrets
                .iter()
                .map(|(id, env, src)| crate::fleet::TargetSecret {
                    id: id.fill(values),
                    env: opt(env),
                    src: opt(src),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_ends_with_the_mark() {
        assert_eq!(TASK.to_ascii_lowercase(), TASK_LOWER);
        for p in [TASK, TASK_LOWER, BENCH, AGENT] {
            assert!(p.ends_with(MARK) && p.matches(MARK).count() == 1);
        }
    }

    #[test]
    fn substitutes_every_placeholder_once() {
        let subst = |s: &str, v: &Values| Text::new(s).fill(v);
        let v = values(Some("Task.One"), Some("bench"), Some("agent"));
        assert_eq!(
            subst(
                "r/benchmarks/kilnbenchplaceholder-kilntaskplaceholder--kilnagentplaceholder:KilnTaskPlaceholder laceholder",
                &v
            ),
            "r/benchmarks/bench-task.one--agent:Task.One laceholder"
        );
        assert_eq!(subst("no placeholder", &v), "no placeholder");
        assert_eq!(
            subst("kilnbenchplaceholderkilnagentplaceholder$", &v),
            "benchagent$"
        );
        // Without a task, its placeholder is left as it is.
        let v = values(None, Some("b"), None);
        assert_eq!(
            subst("KilnTaskPlaceholder/kilnbenchplaceholder", &v),
            "KilnTaskPlaceholder/b"
        );
    }
}
