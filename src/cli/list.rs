//! `kiln list benchmarks|agents|tasks <b>|images [--json]`. The first three read the
//! repository only; `images` asks the image stores (Docker Engine, podman) read-only.

use crate::printer::errln;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use crate::fleet::{Env, Fleet};
use crate::labels;
use crate::store::Store;

use super::build::{env_vars, refused_to_usage};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,

    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum What {
    /// Benchmarks: name, kind (shared-env or per-task), number of tasks, description.
    Benchmarks,
    /// Agents: name, version, description.
    Agents,
    /// The tasks of one benchmark, with the image each runs in.
    Tasks { benchmark: String },
    /// Fleet images in the local image stores (Docker Engine and podman), from their labels.
    Images,
}

#[derive(Serialize)]
struct BenchmarkRow<'a> {
    name: &'a str,
    env: Env,
    tasks: usize,
    /// False when only the benchmark's build knows its task ids (a per-task
    /// eval-containers benchmark without tasks.txt).
    tasks_listed: bool,
    description: &'a str,
    released: bool,
    image: String,
    /// Every `eval.*` label its image gets (bake file or Dockerfile).
    labels: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct AgentRow<'a> {
    name: &'a str,
    version: &'a str,
    description: &'a str,
    image: String,
    labels: BTreeMap<&'a str, &'a str>,
}

/// The `eval.*` labels of an image.
fn eval_labels(all: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    all.iter()
        .filter(|(k, _)| k.starts_with("eval."))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[derive(Serialize)]
struct TaskRow<'a> {
    id: &'a str,
    /// The image the task runs in: the per-task base, or the shared benchmark image.
    image: String,
}

pub fn run(repo: &Path, args: Args) -> anyhow::Result<ExitCode> {
    if let What::Images = args.what {
        return images(args.json);
    }
    let fleet = Fleet::load(repo, env_vars())?;
    let mut out = crate::printer::stdout();
    // eval-containers' own label column (may the agent reach the internet).
    let wide = fleet.layout.kind.name() == crate::fleet::layout::eval_containers::NAME;
    match &args.what {
        What::Benchmarks => {
            let rows: Vec<BenchmarkRow> = fleet
                .benchmarks
                .iter()
                .map(|b| BenchmarkRow {
                    name: &b.name,
                    env: b.env,
                    tasks: b.task_count,
                    tasks_listed: b.tasks_known,
                    description: &b.description,
                    released: b.released,
                    labels: eval_labels(&b.labels),
                    image: match b.env {
                        Env::SharedEnv => fleet.naming.benchmark(&b.name, None),
                        Env::PerTask => fleet.naming.benchmark(&b.name, Some("<task>")),
                    },
                })
                .collect();
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
                        let mut row = vec![
                            r.name.to_string(),
                            r.env.as_str().to_string(),
                            r.tasks.to_string(),
                            yes_no(r.released),
                        ];
                        if wide {
                            // eval-containers' own labels: may the agent reach the internet.
                            let internet = r.labels.get("eval.benchmark.internet");
                            row.push(internet.unwrap_or(&"").to_string());
                        }
                        row.push(r.description.to_string());
                        row
                    })
                    .collect();
                let header: &[&str] = if wide {
                    &[
                        "NAME",
                        "ENV",
                        "TASKS",
                        "RELEASED",
                        "INTERNET",
                        "DESCRIPTION",
                    ]
                } else {
                    &["NAME", "ENV", "TASKS", "RELEASED", "DESCRIPTION"]
                };
                print_table(&mut out, header, &table)?;
            }
        }
        What::Agents => {
            let rows: Vec<AgentRow> = fleet
                .agents
                .iter()
                .map(|a| AgentRow {
                    name: &a.name,
                    version: &a.version,
                    description: &a.description,
                    image: fleet.naming.agent(&a.name),
                    labels: eval_labels(&a.labels),
                })
                .collect();
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        let mut row = vec![r.name.to_string(), r.version.to_string()];
                        if wide {
                            let runtime = r.labels.get("eval.agent.runtime");
                            row.push(runtime.unwrap_or(&"").to_string());
                        }
                        row.push(r.description.to_string());
                        row
                    })
                    .collect();
                let header: &[&str] = if wide {
                    &["NAME", "VERSION", "RUNTIME", "DESCRIPTION"]
                } else {
                    &["NAME", "VERSION", "DESCRIPTION"]
                };
                print_table(&mut out, header, &table)?;
            }
        }
        What::Tasks { benchmark } => {
            let b = fleet
                .benchmark(benchmark)
                .map_err(|e| refused_to_usage(e.into()))?;
            if !b.tasks_known {
                drop(out);
                report_problems(&fleet.problems);
                return Err(refused_to_usage(
                    crate::fleet::Refused(format!(
                        "benchmark {:?} is per-task with {} tasks whose ids only its build knows (no tasks.txt): kiln cannot list them; build one with --task-id",
                        b.name, b.task_count
                    ))
                    .into(),
                ));
            }
            let rows: Vec<TaskRow> = b
                .tasks
                .iter()
                .map(|t| TaskRow {
                    id: t,
                    image: match b.env {
                        Env::SharedEnv => fleet.naming.benchmark(&b.name, None),
                        Env::PerTask => fleet.naming.benchmark(&b.name, Some(t)),
                    },
                })
                .collect();
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| vec![r.id.to_string(), r.image.clone()])
                    .collect();
                print_table(&mut out, &["ID", "IMAGE"], &table)?;
            }
        }
        What::Images => unreachable!(),
    }
    drop(out);
    if report_problems(&fleet.problems) {
        return Ok(super::Exit::Failed.into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the image directories the fleet left out (stderr); true when there were any.
fn report_problems(problems: &[String]) -> bool {
    for p in problems {
        errln!("error: {p}");
    }
    if !problems.is_empty() {
        errln!(
            "error: {} image director{} left out; the rest is listed above",
            problems.len(),
            if problems.len() == 1 { "y" } else { "ies" }
        );
    }
    !problems.is_empty()
}

fn print_table(
    out: &mut impl std::io::Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len() - 1;
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(
            out,
            "{}",
            line(row.iter().map(String::as_str).collect()).trim_end()
        )?;
    }
    Ok(())
}

/// One fleet image found in a local store.
#[derive(Debug, Serialize)]
struct ImageRow {
    store: &'static str,
    reference: String,
    id: String,
    #[serde(rename = "type")]
    kind: String,
    labels: BTreeMap<String, String>,
}

/// Lists images carrying `eval.type` in Docker's store (bollard) and podman's (`podman images`).
fn images(json: bool) -> anyhow::Result<ExitCode> {
    let listing = crate::store::list_images();
    let rows: Vec<ImageRow> = listing
        .images
        .into_iter()
        .map(|i| ImageRow {
            store: i.store.name(),
            kind: i.labels.get(labels::TYPE).cloned().unwrap_or_default(),
            reference: i.name,
            id: i.id,
            labels: i.labels,
        })
        .collect();
    let unreachable: Vec<String> = listing
        .unreachable
        .iter()
        .map(|(store, why)| match store {
            Store::Docker => format!("Docker Engine: {why}"),
            Store::Podman => format!("podman: {why}"),
        })
        .collect();

    let mut out = crate::printer::stdout();
    if json {
        let doc = serde_json::json!({ "images": rows, "unreachable": unreachable });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        for why in &unreachable {
            errln!("note: no answer from {why}");
        }
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let get = |k: &str| r.labels.get(k).cloned().unwrap_or_default();
                vec![
                    r.reference.clone(),
                    r.store.to_string(),
                    r.kind.clone(),
                    get(labels::TASK_ID),
                    get(labels::OCI_REVISION).chars().take(12).collect(),
                    get(labels::OCI_CREATED),
                ]
            })
            .collect();
        print_table(
            &mut out,
            &["IMAGE", "STORE", "TYPE", "TASK", "REVISION", "CREATED"],
            &table,
        )?;
    }
    if unreachable.len() == 2 {
        errln!("error: no image store answered (neither the Docker Engine nor podman); no images listed");
        return Ok(super::Exit::NoBackend.into());
    }
    Ok(ExitCode::SUCCESS)
}
