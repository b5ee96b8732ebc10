//! Grouping the plan's builds into `docker buildx bake` invocations.
//!
//! bake variables are global to one invocation, so builds group by the variables they
//! need: one request for everything that needs none (core, agents, shared-env
//! benchmarks), one per eval image (with its per-task base when that is new), and one per
//! per-task base that no eval image of the plan builds on. Every image of the plan is a
//! listed target, so `--load` puts each one in the image store, as the other backends do.

use std::collections::BTreeMap;

use super::graph::{bake_vars, Extra};
use super::{BakeRequest, BuildSpec, Node};
use crate::fleet::Fleet;

pub(crate) fn bake_requests(
    fleet: &Fleet,
    builds: &[BuildSpec],
    extras: &[Extra],
) -> Vec<BakeRequest> {
    let files = fleet.layout.bake_files.clone();
    let request = |vars: BTreeMap<String, String>| BakeRequest {
        files: files.clone(),
        vars,
        sets: Vec::new(),
        targets: Vec::new(),
        builds: Vec::new(),
    };
    let add = |r: &mut BakeRequest, i: usize| {
        let spec = &builds[i];
        let t = &spec.bake_target;
        r.sets.push(format!("{t}.tags={}", spec.image));
        let added = &extras[i].added_labels;
        for (_, (key, value)) in spec
            .labels
            .iter()
            .enumerate()
            .filter(|(j, _)| added.binary_search(j).is_ok())
        {
            r.sets.push(format!("{t}.labels.{key}={value}"));
        }
        r.targets.push(t.clone());
        r.builds.push(i);
    };

    // A per-task base goes with the first eval image of the plan that builds on it.
    let mut taken_by_eval = vec![false; builds.len()];
    for (i, e) in extras.iter().enumerate() {
        if matches!(e.node, Node::Eval { .. }) {
            for &d in &builds[i].deps {
                if matches!(extras[d].node, Node::Benchmark(_, Some(_))) {
                    taken_by_eval[d] = true;
                }
            }
        }
    }

    let mut plain = request(fleet.vars.clone());
    let mut others: Vec<BakeRequest> = Vec::new();
    let mut placed = vec![false; builds.len()];
    for (i, e) in extras.iter().enumerate() {
        match &e.node {
            Node::Core(_) | Node::Agent(_) | Node::Benchmark(_, None) => {
                add(&mut plain, i);
                placed[i] = true;
            }
            Node::Benchmark(_, Some(_)) if taken_by_eval[i] => {}
            Node::Benchmark(_, Some(_)) | Node::Eval { .. } => {
                let mut vars = fleet.vars.clone();
                vars.extend(bake_vars(&e.node));
                let mut r = request(vars);
                for &d in &builds[i].deps {
                    if !placed[d] && matches!(extras[d].node, Node::Benchmark(_, Some(_))) {
                        add(&mut r, d);
                        placed[d] = true;
                    }
                }
                add(&mut r, i);
                placed[i] = true;
                others.push(r);
            }
        }
    }
    let mut out = Vec::with_capacity(others.len() + 1);
    if !plain.builds.is_empty() {
        out.push(plain);
    }
    out.extend(others);
    out
}
