//! `kiln release --dry-run`: contacts no registry and changes nothing; prints, in
//! order, what each gate would check and the plain commands a person could type for
//! the same result (`docker tag` + `docker push`, or `podman push` for images in
//! podman's store). Lines starting with `#` explain. With `--pin` (Harbor datasets),
//! each `task.toml` edit follows as a unified diff.

use std::io::Write;

use crate::fleet::Fleet;
use crate::store::{State, Store};

use super::select::Selection;
use super::{gates, target, Options};

pub fn print(
    out: &mut impl Write,
    fleet: &Fleet,
    opts: &Options,
    sel: &Selection,
    tags: &[String],
    version: &str,
) -> std::io::Result<()> {
    writeln!(
        out,
        "# kiln release --dry-run: registry {}, tags {} (the first is the version)",
        opts.registry,
        tags.join(", ")
    )?;
    if !sel.unreleased.is_empty() {
        writeln!(
            out,
            "# not released (no {}=\"true\"), never pushed: {}",
            crate::labels::BENCHMARK_RELEASED,
            sel.unreleased.join(", ")
        )?;
    }
    if let Some(tasks) = &sel.harbor {
        for (task, why) in &tasks.left_out {
            writeln!(out, "# task {task}: not published: cannot run here: {why}")?;
        }
    }
    writeln!(out, "# gates, all checked before the first push:")?;
    let benchmarks: Vec<(String, usize)> = sel
        .benchmarks
        .iter()
        .filter(|_| sel.harbor.is_none())
        .map(|b| (b.name.clone(), b.tasks.len()))
        .collect();
    let mut described = gates::describe(opts.allow_dirty, &benchmarks, version);
    if let Some(tasks) = &sel.harbor {
        // Before the last gate (the immutable version).
        let at = described.len() - 1;
        described.insert(at, super::harbor::validation_gate(tasks));
    }
    for (i, g) in described.iter().enumerate() {
        writeln!(out, "#   {}. {g}", i + 1)?;
    }
    writeln!(
        out,
        "# {} image(s) x {} tag(s); run from the repository root after the gates pass (`docker login {}` first):",
        sel.items.len(),
        tags.len(),
        opts.registry.host
    )?;
    let state = State::load(&fleet.root);
    for item in &sel.items {
        let store = state.store_of(&item.local).unwrap_or(Store::Docker);
        for tag in tags {
            let t = target(&opts.registry, item, tag);
            match store {
                Store::Docker => {
                    writeln!(out, "docker tag {} {t}", item.local)?;
                    writeln!(out, "docker push {t}")?;
                }
                Store::Podman => writeln!(out, "podman push {} docker://{t}", item.local)?,
            }
        }
    }
    writeln!(out, "# then kiln reads every tag back from the registry (manifest, config labels, layers) and writes {}", opts.manifest.display())?;
    if opts.pin {
        super::harbor::preview_pins(out, fleet, opts, sel, version)?;
    }
    Ok(())
}
