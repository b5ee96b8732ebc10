//! Which runs of a results directory a `kiln regrade` means, and which of them can be
//! regraded: the runs are found the way `kiln report` finds them, narrowed by
//! `--benchmark`/`--task-id` (a name with no results is refused, naming it), and a run
//! is regradable when its run.json names kept state and its benchmark, task and agent
//! are still in the fleet. The image store is asked later ([`super::run`]).

use std::path::{Path, PathBuf};

use crate::error::Failure;
use crate::fleet::{suggest, Env, Fleet};
use crate::printer::errln;
use crate::report;
use crate::run::kept_state::{self, Kept};

/// One run found under the results directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Its directory (holding result.json and run.json).
    pub dir: PathBuf,
    pub benchmark: String,
    /// As result.json spells it.
    pub task: String,
    pub agent: String,
    pub repeat: Option<u32>,
    /// The run's own verdict (its result.json, whatever regrades followed).
    pub score: f64,
    pub passed: bool,
    /// run.json's `kept_state`.
    pub kept: Option<Kept>,
}

impl Found {
    /// `benchmark/task × agent` (`#k` for a repeat), as progress lines name runs.
    pub fn label(&self) -> String {
        let mut s = format!("{}/{} × {}", self.benchmark, self.task, self.agent);
        if let Some(k) = self.repeat {
            s.push_str(&format!(" #{k}"));
        }
        s
    }
}

/// A result.json that could not be read, and why.
pub type Unreadable = (PathBuf, String);

/// Every run under `dir` (refused, naming `dir`, when there is none), and the
/// result.json files that could not be read.
pub fn find(dir: &Path) -> anyhow::Result<(Vec<Found>, Vec<Unreadable>)> {
    let collected = report::collect(dir).map_err(|e| Failure::usage(format!("{e:#}")))?;
    if collected.results.is_empty() {
        return Err(Failure::usage(format!(
            "{} holds no results (no readable result.json under it; `kiln run` writes them)",
            dir.display()
        )));
    }
    let found = collected
        .results
        .into_iter()
        .map(|row| {
            let run_dir = row.path.parent().unwrap_or(Path::new(".")).to_path_buf();
            let (score, passed) = match &row.regraded {
                Some(g) => (g.original_score, g.original_passed),
                None => (row.score, row.passed),
            };
            Found {
                kept: kept_state::recorded(&run_dir),
                dir: run_dir,
                benchmark: row.benchmark,
                task: row.task,
                agent: row.agent,
                repeat: row.repeat,
                score,
                passed,
            }
        })
        .collect();
    Ok((found, collected.unreadable))
}

/// The runs of `benchmarks` (all when empty) and `tasks` (all when empty). A name
/// that matches no run is refused (exit status 2), naming it and what there is.
pub fn select(
    found: Vec<Found>,
    dir: &Path,
    benchmarks: &[String],
    tasks: &[String],
) -> anyhow::Result<Vec<Found>> {
    for b in benchmarks {
        if !found.iter().any(|f| &f.benchmark == b) {
            return Err(Failure::usage(format!(
                "--benchmark {b}: no results of it in {} ({})",
                dir.display(),
                near(b, found.iter().map(|f| f.benchmark.as_str()))
            )));
        }
    }
    let found: Vec<Found> = found
        .into_iter()
        .filter(|f| benchmarks.is_empty() || benchmarks.contains(&f.benchmark))
        .collect();
    for t in tasks {
        crate::naming::validate_task_id(t).map_err(|e| Failure::usage(e.to_string()))?;
        if !found.iter().any(|f| &f.task == t) {
            return Err(Failure::usage(format!(
                "--task-id {t}: no results of it in {}{} ({})",
                dir.display(),
                if benchmarks.is_empty() {
                    String::new()
                } else {
                    format!(" for {}", benchmarks.join(", "))
                },
                near(t, found.iter().map(|f| f.task.as_str()))
            )));
        }
    }
    Ok(found
        .into_iter()
        .filter(|f| tasks.is_empty() || tasks.contains(&f.task))
        .collect())
}

/// `closest: a, b` among `names` (deduplicated).
fn near<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> String {
    let mut all: Vec<&str> = names.collect();
    all.sort_unstable();
    all.dedup();
    format!("closest: {}", suggest::closest(name, all).join(", "))
}

/// The kept state run.json names, or why there is none.
pub fn kept_image(run: &Found) -> Result<String, String> {
    match &run.kept {
        None => Err("no kept state (it ran without --keep-state)".into()),
        Some(Kept {
            image: Some(image), ..
        }) => Ok(image.clone()),
        Some(k) => Err(format!(
            "its state was not kept: {}",
            k.error.as_deref().unwrap_or("run.json names no image")
        )),
    }
}

/// The eval image a run's current graders come from, or why the run cannot be
/// regraded: no kept state, or a benchmark, task or agent the fleet no longer has.
pub fn regradable(run: &Found, fleet: &Fleet) -> Result<(String, String), String> {
    let image = kept_image(run)?;
    let b = fleet
        .benchmark(&run.benchmark)
        .map_err(|e| format!("the fleet has no such benchmark any more ({})", e.0))?;
    b.task(&run.task)
        .map_err(|e| format!("the fleet has no such task any more ({e:#})"))?;
    fleet
        .agent(&run.agent)
        .map_err(|e| format!("the fleet has no such agent any more ({})", e.0))?;
    let per_task = (b.env == Env::PerTask).then_some(run.task.as_str());
    Ok((image, fleet.naming.eval(&b.name, per_task, &run.agent)))
}

/// The runs of `opts.results` that `opts` selects; a result that cannot be read is left
/// out with a note.
pub fn selected(opts: &super::Options) -> anyhow::Result<Vec<Found>> {
    let (found, unreadable) = find(&opts.results)?;
    let selected = select(found, &opts.results, &opts.benchmarks, &opts.tasks)?;
    for (path, why) in &unreadable {
        errln!("note: {} is not a result ({why}); left out", path.display());
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(benchmark: &str, task: &str, kept: Option<Kept>) -> Found {
        Found {
            dir: PathBuf::from("r"),
            benchmark: benchmark.into(),
            task: task.into(),
            agent: "oracle".into(),
            repeat: None,
            score: 1.0,
            passed: true,
            kept,
        }
    }

    fn refusal(e: anyhow::Error) -> String {
        let f = e.downcast_ref::<Failure>().expect("a Failure");
        assert_eq!(f.code, 2);
        f.message.clone()
    }

    #[test]
    fn selection_refuses_names_without_results() {
        let all = vec![
            found("terminal-lite", "count-lines", None),
            found("terminal-lite", "parse-log", None),
            found("metric-backfill", "m1", None),
        ];
        let dir = Path::new("results");
        let picked = select(all.clone(), dir, &["terminal-lite".into()], &[]).unwrap();
        assert_eq!(picked.len(), 2);
        let picked = select(all.clone(), dir, &[], &["m1".into()]).unwrap();
        assert_eq!(picked[0].benchmark, "metric-backfill");
        let err = refusal(select(all.clone(), dir, &["terminal-lit".into()], &[]).unwrap_err());
        assert!(
            err.contains("--benchmark terminal-lit: no results of it in results"),
            "{err}"
        );
        assert!(err.contains("closest: terminal-lite"), "{err}");
        let err = refusal(
            select(all.clone(), dir, &["terminal-lite".into()], &["m1".into()]).unwrap_err(),
        );
        assert!(
            err.contains("--task-id m1") && err.contains("for terminal-lite"),
            "{err}"
        );
        let err = refusal(select(all, dir, &[], &["../x".into()]).unwrap_err());
        assert!(err.contains("../x"), "{err}");
    }

    #[test]
    fn only_kept_state_in_the_fleet_is_regradable() {
        let fleet = Fleet::load(Path::new(env!("CARGO_MANIFEST_DIR")), Default::default()).unwrap();
        let kept = Kept {
            image: Some("kiln.local/kept-state/terminal-lite--oracle:count-lines-ab".into()),
            image_id: None,
            run_id: Some("ab".into()),
            error: None,
        };
        let (image, eval) = regradable(
            &found("terminal-lite", "count-lines", Some(kept.clone())),
            &fleet,
        )
        .unwrap();
        assert_eq!(image, kept.image.clone().unwrap());
        assert!(
            eval.ends_with("/evals/terminal-lite-count-lines--oracle:dev"),
            "{eval}"
        );
        let why = regradable(&found("terminal-lite", "count-lines", None), &fleet).unwrap_err();
        assert!(why.contains("without --keep-state"), "{why}");
        let why = regradable(
            &found(
                "terminal-lite",
                "count-lines",
                Some(Kept::failed("commit failed")),
            ),
            &fleet,
        )
        .unwrap_err();
        assert!(why.contains("commit failed"), "{why}");
        let why =
            regradable(&found("gone", "count-lines", Some(kept.clone())), &fleet).unwrap_err();
        assert!(why.contains("no such benchmark"), "{why}");
        let why = regradable(&found("terminal-lite", "gone", Some(kept)), &fleet).unwrap_err();
        assert!(why.contains("no such task"), "{why}");
    }
}
