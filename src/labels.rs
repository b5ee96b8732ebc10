//! The label contract (RULES.md, "Labels"): every label key, the labels each image
//! kind must carry, and the build-time labels kiln computes itself.

use std::path::Path;

use anyhow::Context as _;

use crate::naming::Kind;

pub const OCI_SOURCE: &str = "org.opencontainers.image.source";
pub const OCI_REVISION: &str = "org.opencontainers.image.revision";
pub const OCI_VERSION: &str = "org.opencontainers.image.version";
pub const OCI_CREATED: &str = "org.opencontainers.image.created";
pub const OCI_TITLE: &str = "org.opencontainers.image.title";
pub const OCI_DESCRIPTION: &str = "org.opencontainers.image.description";

pub const TYPE: &str = "eval.type";
pub const BENCHMARK_NAME: &str = "eval.benchmark.name";
pub const BENCHMARK_DESCRIPTION: &str = "eval.benchmark.description";
/// The number of tasks of the benchmark, in decimal.
pub const BENCHMARK_TASKS: &str = "eval.benchmark.tasks";
/// `shared-env` or `per-task`.
pub const BENCHMARK_ENV: &str = "eval.benchmark.env";
pub const BENCHMARK_DATA_REVISION: &str = "eval.benchmark.data_revision";
/// `"true"` only on benchmarks that have earned it (RULES.md, "Released").
pub const BENCHMARK_RELEASED: &str = "eval.benchmark.released";
/// The original, un-lowercased task id, on per-task and per-task eval images.
pub const TASK_ID: &str = "eval.task.id";
pub const AGENT_NAME: &str = "eval.agent.name";
pub const AGENT_VERSION: &str = "eval.agent.version";
/// The input digest the backends stamp (issue 4); listed here so every key lives in one place.
pub const INPUTS_DIGEST: &str = "kiln.inputs.digest";

pub const ENV_SHARED: &str = "shared-env";
pub const ENV_PER_TASK: &str = "per-task";

/// Labels every image carries.
pub const COMMON: &[&str] = &[
    OCI_SOURCE,
    OCI_REVISION,
    OCI_VERSION,
    OCI_CREATED,
    OCI_TITLE,
    OCI_DESCRIPTION,
    TYPE,
];
/// Labels a benchmark (and per-task, and eval) image carries.
pub const BENCHMARK: &[&str] = &[
    BENCHMARK_NAME,
    BENCHMARK_DESCRIPTION,
    BENCHMARK_TASKS,
    BENCHMARK_ENV,
    BENCHMARK_DATA_REVISION,
];
/// Labels an agent (and eval) image carries.
pub const AGENT: &[&str] = &[AGENT_NAME, AGENT_VERSION];

/// Labels kiln computes at build time and adds on every backend; authors do not write them.
pub const BUILD_TIME: &[&str] = &[OCI_SOURCE, OCI_REVISION, OCI_VERSION, OCI_CREATED];

/// Every label an image of `kind` must carry once built (non-empty).
/// `per_task` matters for eval images: an eval image of a per-task benchmark also carries the task id.
pub fn required(kind: Kind, per_task: bool) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = COMMON.to_vec();
    match kind {
        Kind::Core => {}
        Kind::Benchmark => keys.extend(BENCHMARK),
        Kind::Task => {
            keys.extend(BENCHMARK);
            keys.push(TASK_ID);
        }
        Kind::Agent => keys.extend(AGENT),
        Kind::Eval => {
            keys.extend(BENCHMARK);
            keys.extend(AGENT);
            if per_task {
                keys.push(TASK_ID);
            }
        }
    }
    keys
}

/// The labels an author must write in the bake target of `kind` (the required set minus
/// what kiln adds at build time). The combination recipe needs only `eval.type`: kiln
/// gives eval images the benchmark's and the agent's labels.
pub fn authored(kind: Kind) -> Vec<&'static str> {
    match kind {
        Kind::Eval => vec![TYPE],
        Kind::Task => authored(Kind::Benchmark),
        _ => required(kind, false)
            .into_iter()
            .filter(|k| !BUILD_TIME.contains(k))
            .collect(),
    }
}

/// The build-time values shared by every image of one build: where the source is, which
/// commit, which version, and when that commit was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub source: String,
    pub revision: String,
    pub version: String,
    /// RFC 3339, UTC, second precision: the commit time (or SOURCE_DATE_EPOCH), so rebuilding
    /// a commit gives identical labels.
    pub created: String,
}

/// What the caller may fix instead of asking git (from flags or the environment).
#[derive(Debug, Clone, Default)]
pub struct BuildInfoOverrides {
    pub source: Option<String>,
    pub revision: Option<String>,
    pub version: Option<String>,
    /// Seconds since the epoch (SOURCE_DATE_EPOCH).
    pub source_date_epoch: Option<i64>,
}

impl BuildInfo {
    /// Reads git (three cheap `git` commands at most, run at once) for whatever the
    /// overrides leave open. Outside a git checkout the unknown parts are `unknown` and
    /// created is the epoch.
    pub fn from_git(repo: &Path, o: &BuildInfoOverrides) -> anyhow::Result<BuildInfo> {
        let start = |wanted: bool, args: &[&str]| {
            wanted
                .then(|| {
                    duct::cmd("git", args)
                        .dir(repo)
                        .stdout_capture()
                        .stderr_null()
                        .unchecked()
                        .start()
                        .ok()
                })
                .flatten()
        };
        let finish = |h: Option<duct::Handle>| -> Option<String> {
            let out = h?.into_output().ok()?;
            let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
            (out.status.success() && !s.is_empty()).then_some(s)
        };
        let head = start(
            o.revision.is_none() || o.source_date_epoch.is_none(),
            &["log", "-1", "--format=%H %ct"],
        );
        let origin = start(
            o.source.is_none(),
            &["config", "--get", "remote.origin.url"],
        );
        let describe = start(o.version.is_none(), &["describe", "--tags", "--always"]);
        let head = finish(head);
        let head_part = |i: usize| head.as_deref().and_then(|s| s.split(' ').nth(i));
        let revision = match &o.revision {
            Some(r) => r.clone(),
            None => head_part(0).unwrap_or("unknown").to_string(),
        };
        let epoch = match o.source_date_epoch {
            Some(e) => e,
            None => match head_part(1) {
                Some(s) => s
                    .parse()
                    .with_context(|| format!("git commit time {s:?}"))?,
                None => 0,
            },
        };
        let source = match &o.source {
            Some(s) => s.clone(),
            None => finish(origin)
                .map(|u| public_source_url(&u))
                .unwrap_or_else(|| "unknown".into()),
        };
        let version = match &o.version {
            Some(v) => v.clone(),
            None => finish(describe).unwrap_or_else(|| "unknown".into()),
        };
        Ok(BuildInfo {
            source,
            revision,
            version,
            created: rfc3339_utc(epoch),
        })
    }

    /// The build-time labels for one image; `task_id` for per-task images and their evals.
    /// Pairs, not a map: a plan adds them to each of its (tens of thousands of) images' labels.
    pub fn labels<'a>(
        &'a self,
        task_id: Option<&'a str>,
    ) -> impl Iterator<Item = (&'static str, &'a str)> {
        [
            (OCI_SOURCE, self.source.as_str()),
            (OCI_REVISION, self.revision.as_str()),
            (OCI_VERSION, self.version.as_str()),
            (OCI_CREATED, self.created.as_str()),
        ]
        .into_iter()
        .chain(task_id.map(|t| (TASK_ID, t)))
    }
}

/// Drops credentials from a remote URL (`https://user:token@host/…` → `https://host/…`):
/// a label is public.
fn public_source_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if !userinfo.contains('/') {
                return format!("{scheme}://{host}");
            }
        }
    }
    url.to_string()
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_utc(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn source_url_loses_credentials() {
        assert_eq!(
            public_source_url("https://x:tok@github.com/a/b"),
            "https://github.com/a/b"
        );
        assert_eq!(
            public_source_url("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
    }

    #[test]
    fn eval_needs_both_sides() {
        let r = required(Kind::Eval, true);
        for k in [BENCHMARK_ENV, AGENT_NAME, TASK_ID, OCI_CREATED] {
            assert!(r.contains(&k), "{k}");
        }
        assert!(!authored(Kind::Agent).contains(&OCI_REVISION));
    }
}
