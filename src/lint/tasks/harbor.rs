//! The task rules over a Harbor dataset: per task, its `task.toml`, its environment
//! (`environment/Dockerfile`, the compose file's services, `docker_image`), its tests
//! (`tests/`, `steps/<s>/tests/`, and the verifier's own Dockerfile) and its solution.
//! Tasks kiln cannot read are reported from the dataset's problems, by kind; the others
//! are checked in parallel.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::leak::Kind as Hidden;
use super::{images, toml_lines, Findings};
use crate::fleet::layout::harbor::config::{Os, TaskConfig};
use crate::fleet::layout::harbor::dataset::{
    COMPOSE_FILES, DOCKERFILE, ENVIRONMENT_DIR, INSTRUCTION, SOLUTION_DIR, STEPS_DIR, TASK_FILE,
    TESTS_DIR,
};
use crate::fleet::layout::harbor::{Dataset, ProblemKind, Task};
use crate::lint::{rules, Report, Sink, Violation};

/// Where Harbor puts the tests in the container.
const TESTS_MOUNT: &str = "/tests";

pub(crate) fn check(root: &Path, sink: &mut Sink, report: &mut Report) -> anyhow::Result<()> {
    let ds = Dataset::read(root)?;
    report.tasks = ds.tasks.len() + ds.problems.len();
    for p in &ds.problems {
        let rule = match p.kind {
            ProblemKind::Config => rules::INVALID_TASK_CONFIG,
            ProblemKind::UnknownField => rules::UNKNOWN_CONFIG_FIELD,
            ProblemKind::Files => rules::INVALID_TASK_FILES,
            ProblemKind::Naming => rules::KILN_LAYOUT,
        };
        sink.add(rule, &p.file, p.line.unwrap_or(1), p.message.clone());
    }
    for (found, dockerfiles) in super::parallel(&ds.tasks, |t| task(root, t)) {
        report.dockerfiles += dockerfiles;
        sink.violations.extend(found);
    }
    Ok(())
}

/// The findings of one task after its allow list, and how many Dockerfiles it has.
fn task(root: &Path, t: &Task) -> (Vec<Violation>, usize) {
    let c = &t.config;
    let dir = &t.dir;
    let file = dir.join(TASK_FILE);
    let text = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
    let mut out = Findings::default();
    let mut allow = super::allow_list(&c.metadata, &file, &text, &mut out);
    allow.extend(harbor_ignores(c));
    let linux = c.environment.os != Some(Os::Windows);

    missing_timeouts(t, &file, &text, &mut out);
    prebuilt_images(c, &file, &text, &mut out);

    // The agent's image.
    let env_dir = dir.join(ENVIRONMENT_DIR);
    let env_df = env_dir.join(DOCKERFILE);
    let mut dockerfiles = 0;
    let mut final_user = None;
    let mut provided = Vec::new();
    if let Some(df) = super::read_dockerfile(root, &env_df) {
        dockerfiles += 1;
        super::dockerfile(&env_df, &df, linux, &[], &mut out);
        final_user = Some(images::final_user(&df));
        let hidden = hidden_dirs(t);
        provided = super::agent_image(root, &env_df, &env_dir, &hidden, None, &mut out);
    }
    let compose_user = compose(root, t, &mut out, &mut dockerfiles);
    // Separate verifiers' images.
    let mut verifier_dfs = BTreeSet::new();
    for step in t.phases() {
        if t.separate_for(step) {
            verifier_dfs.insert(t.verifier_dir(root, step).join(DOCKERFILE));
        }
    }
    for vdf in &verifier_dfs {
        if let Some(df) = super::read_dockerfile(root, vdf) {
            dockerfiles += 1;
            super::dockerfile(vdf, &df, linux, &[], &mut out);
        }
    }
    root_agent(t, &file, &text, final_user, compose_user, &mut out);

    // Tests and solution.
    let mut tests: Vec<(PathBuf, String)> = Vec::new();
    for tests_dir in in_steps(t, TESTS_DIR) {
        for (f, text) in super::files(root, &tests_dir, super::is_script) {
            if f.extension().is_some_and(|x| x == "sh") && linux {
                let mount = Some((TESTS_MOUNT, tests_dir.as_path()));
                super::script(root, &f, &text, true, mount, &mut out);
            }
            if f.extension().is_some_and(|x| x == "py") {
                super::inline_dependencies(&f, &text, &mut out);
            }
            if f.extension().is_some_and(|x| x == "sh" || x == "py") {
                tests.push((f, text));
            }
        }
    }
    for sol_dir in in_steps(t, SOLUTION_DIR) {
        for (f, text) in super::files(root, &sol_dir, super::is_script) {
            if f.extension().is_some_and(|x| x == "sh") && linux {
                super::script(root, &f, &text, false, None, &mut out);
            }
            if f.extension().is_some_and(|x| x == "py") {
                super::inline_dependencies(&f, &text, &mut out);
            }
        }
    }
    let instructions: Vec<PathBuf> = if t.steps.is_empty() {
        vec![dir.join(INSTRUCTION)]
    } else {
        t.steps
            .iter()
            .map(|s| dir.join(STEPS_DIR).join(s).join(INSTRUCTION))
            .collect()
    };
    let instruction: String = instructions
        .iter()
        .filter_map(|p| std::fs::read_to_string(root.join(p)).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let unnamed = if t.steps.is_empty() {
        format!("{} never names it", dir.join(INSTRUCTION).display())
    } else {
        format!("no step's {INSTRUCTION} names it")
    };
    // What the environment makes: its files, and the verifiers' Dockerfiles.
    let environment = || {
        let mut texts: Vec<String> = super::files(root, &env_dir, |_| true)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        texts.extend(
            verifier_dfs
                .iter()
                .filter_map(|p| std::fs::read_to_string(root.join(p)).ok()),
        );
        texts
    };
    super::mentions(
        &tests,
        &instruction,
        &unnamed,
        &provided,
        &environment,
        &mut out,
    );
    (out.allowed(&allow), dockerfiles)
}

/// Harbor's own per-task switch, `[metadata.harbor.lint] ignore = [...]`: the rules kiln
/// shares with Harbor are allowed too.
fn harbor_ignores(c: &TaskConfig) -> Vec<String> {
    let ignore = c
        .metadata
        .get("harbor")
        .and_then(|h| h.get("lint"))
        .and_then(|l| l.get("ignore"))
        .and_then(|i| i.as_array());
    ignore
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .filter(|r| rules::ALLOWABLE.contains(r))
        .map(str::to_string)
        .collect()
}

/// The task's folder `sub` and each step's (`tests`, `solution`).
fn in_steps(t: &Task, sub: &str) -> Vec<PathBuf> {
    let mut dirs = vec![t.dir.join(sub)];
    dirs.extend(
        t.steps
            .iter()
            .map(|s| t.dir.join(STEPS_DIR).join(s).join(sub)),
    );
    dirs
}

/// What the agent must not see.
fn hidden_dirs(t: &Task) -> Vec<(PathBuf, Hidden)> {
    let tests = in_steps(t, TESTS_DIR)
        .into_iter()
        .map(|d| (d, Hidden::Tests));
    let solution = in_steps(t, SOLUTION_DIR)
        .into_iter()
        .map(|d| (d, Hidden::Solution));
    tests.chain(solution).collect()
}

/// `missing-timeout`: the agent's and the verifier's limits, per step when it has steps.
fn missing_timeouts(t: &Task, file: &Path, text: &str, out: &mut Findings) {
    let c = &t.config;
    let mut report = |phase: &str, table: &str, nth: usize, why: &str| {
        out.add(
            rules::MISSING_TIMEOUT,
            file,
            toml_lines::line_of(text, table, nth, None),
            format!("{phase}.timeout_sec is not set: {why}; set it for this task"),
        );
    };
    let agent_why = "Harbor then lets the agent run without a limit";
    let verifier_why = "the verifier gets Harbor's default of 600 s, whatever the tests need";
    if c.steps.is_empty() {
        if c.agent.timeout_sec.is_none() {
            report("agent", "agent", 0, agent_why);
        }
        if c.verifier.timeout_sec.is_none() {
            report("verifier", "verifier", 0, verifier_why);
        }
        return;
    }
    for (i, s) in c.steps.iter().enumerate() {
        if s.agent.timeout_sec.or(c.agent.timeout_sec).is_none() {
            report(&format!("steps[{i}].agent"), "steps", i, agent_why);
        }
        if s.verifier.timeout_sec.or(c.verifier.timeout_sec).is_none() {
            report(&format!("steps[{i}].verifier"), "steps", i, verifier_why);
        }
    }
}

/// `unpinned-image` for the prebuilt images `task.toml` names.
fn prebuilt_images(c: &TaskConfig, file: &Path, text: &str, out: &mut Findings) {
    let mut images = vec![("environment", 0, c.environment.docker_image.as_deref())];
    if let Some(v) = &c.verifier.environment {
        images.push(("verifier.environment", 0, v.docker_image.as_deref()));
    }
    for (i, s) in c.steps.iter().enumerate() {
        if let Some(v) = &s.verifier.environment {
            images.push(("steps.verifier.environment", i, v.docker_image.as_deref()));
        }
    }
    for (table, nth, image) in images {
        let Some(image) = image else { continue };
        if let Some(why) = images::unpinned(image) {
            out.add(
                rules::UNPINNED_IMAGE,
                file,
                toml_lines::line_of(text, table, nth, Some("docker_image")),
                format!(
                    "{table}.docker_image {image} {why}: pin a version tag or a digest (@sha256:…)"
                ),
            );
        }
    }
}

/// The compose file's services: their images (`unpinned-image`) and the Dockerfiles they
/// build; returns the `user` its `main` service sets, if any.
fn compose(root: &Path, t: &Task, out: &mut Findings, dockerfiles: &mut usize) -> Option<String> {
    let env_dir = t.dir.join(ENVIRONMENT_DIR);
    let file = COMPOSE_FILES
        .iter()
        .map(|f| env_dir.join(f))
        .find(|p| root.join(p).is_file())?;
    let text = std::fs::read_to_string(root.join(&file)).ok()?;
    for (i, line) in text.lines().enumerate() {
        let Some(image) = line.trim().strip_prefix("image:") else {
            continue;
        };
        let image = image.trim().trim_matches(['"', '\'']);
        if let Some(why) = images::unpinned(image) {
            out.add(
                rules::UNPINNED_IMAGE,
                &file,
                i + 1,
                format!("image {image} {why}: pin a version tag or a digest (@sha256:…)"),
            );
        }
    }
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    let services = doc.get("services")?.as_mapping()?;
    for (_, service) in services {
        let (context, name) = match service.get("build") {
            Some(serde_yaml::Value::String(c)) => (c.clone(), DOCKERFILE.to_string()),
            Some(b) => (
                b.get("context")
                    .and_then(|c| c.as_str())
                    .unwrap_or(".")
                    .to_string(),
                b.get("dockerfile")
                    .and_then(|d| d.as_str())
                    .unwrap_or(DOCKERFILE)
                    .to_string(),
            ),
            None => continue,
        };
        let df_path = env_dir
            .join(context.trim_start_matches("./"))
            .join(name.trim_start_matches("./"));
        if let Some(df) = super::read_dockerfile(root, &df_path) {
            *dockerfiles += 1;
            super::dockerfile(&df_path, &df, true, &[], out);
        }
    }
    let main = services.get("main")?;
    main.get("user").and_then(|u| match u {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// `root-agent`: a phase whose agent runs as root, by `agent.user` (or a step's), or, with
/// none set, by the environment's Dockerfile (`final_user`: `None` when the task has no
/// Dockerfile, so its image's user is not known here; `Some(None)` when no stage sets
/// one) or its compose file's `main` service.
fn root_agent(
    t: &Task,
    file: &Path,
    text: &str,
    final_user: Option<Option<(usize, String)>>,
    compose_user: Option<String>,
    out: &mut Findings,
) {
    let c = &t.config;
    let phases: Vec<(String, String, usize, Option<String>)> = if c.steps.is_empty() {
        vec![(
            "agent".into(),
            "agent".into(),
            0,
            c.agent.user.as_ref().map(|u| u.as_arg()),
        )]
    } else {
        c.steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let own = s.agent.user.as_ref().map(|u| (u.as_arg(), "steps.agent"));
                let (user, table) = match own {
                    Some((u, tb)) => (Some(u), tb),
                    None => (c.agent.user.as_ref().map(|u| u.as_arg()), "agent"),
                };
                (format!("steps[{i}].agent"), table.to_string(), i, user)
            })
            .collect()
    };
    let mut unset = Vec::new();
    for (field, table, nth, user) in phases {
        match user {
            Some(u) if images::is_root(&u) => out.add(
                rules::ROOT_AGENT,
                file,
                toml_lines::line_of(text, &table, nth, Some("user")),
                format!("{field}.user is {u:?}: the agent runs as root and can read or change anything the verifier relies on; set a non-root user"),
            ),
            Some(_) => {}
            None => unset.push(field),
        }
    }
    if unset.is_empty() {
        return;
    }
    // The image decides: its final stage's USER, or compose's main service.
    let by_image = match (compose_user, final_user) {
        (Some(u), _) => Some((u, "the compose file's main service".to_string())),
        (None, Some(Some((line, u)))) => Some((u, format!("environment/Dockerfile:{line}"))),
        (None, Some(None)) => None,
        (None, None) => return, // no Dockerfile: the image's user is not known here
    };
    let why = match by_image {
        Some((u, _)) if !images::is_root(&u) => return,
        Some((u, at)) => format!("{at} sets USER {u}"),
        None => "no stage of environment/Dockerfile sets a USER".to_string(),
    };
    let fields = match unset.len() {
        1 => format!("{}.user is", unset[0]),
        _ => format!("{}.user are", unset.join(".user, ")),
    };
    out.add(
        rules::ROOT_AGENT,
        file,
        toml_lines::line_of(text, "agent", 0, None),
        format!("the agent runs as root: {fields} not set and {why}; set agent.user (or a USER in the Dockerfile) to a non-root user"),
    );
}
