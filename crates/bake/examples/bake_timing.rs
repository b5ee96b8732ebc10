//! Timing helper for the bake benchmark (see `benches/run.sh`).
//!
//! * `bake_timing parse DIR FILE...`: read-and-parse loop (`BakeFiles::from_sources`: the
//!   files parsed and their blocks collected, nothing resolved), for comparison with the
//!   full `kiln bake --print`.
//! * `bake_timing resolve N TARGET DIR FILE...`: parse once, then resolve TARGET N times
//!   with a different `EVAL_TASK_ID` each time (the per-task plan's use of the library).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("parse") => {
            let dir = Path::new(&args[1]);
            let sources: Vec<(String, String)> = args[2..]
                .iter()
                .map(|f| {
                    (
                        f.clone(),
                        std::fs::read_to_string(dir.join(f)).expect("read"),
                    )
                })
                .collect();
            let rounds = 200;
            let start = Instant::now();
            for _ in 0..rounds {
                let files = kiln_bake::BakeFiles::from_sources(sources.clone()).expect("parse");
                std::hint::black_box(files);
            }
            let per = start.elapsed() / rounds;
            println!(
                "parse of {} files: {:.3} ms per round",
                sources.len(),
                per.as_secs_f64() * 1e3
            );
        }
        Some("resolve") => {
            let n: usize = args[1].parse().expect("N");
            let target = args[2].clone();
            let dir = Path::new(&args[3]);
            let start = Instant::now();
            let files = kiln_bake::BakeFiles::read(dir, &args[4..]).expect("read");
            let read = start.elapsed();
            let start = Instant::now();
            for i in 0..n {
                let env = BTreeMap::from([("EVAL_TASK_ID".to_string(), format!("Task-{i}"))]);
                let opts = kiln_bake::ResolveOptions {
                    targets: vec![target.clone()],
                    env,
                    ..Default::default()
                };
                let r = files.resolve(&opts).expect("resolve");
                std::hint::black_box(r);
            }
            let total = start.elapsed();
            println!(
                "read+parse {} files: {:.3} ms; {n} resolutions of {target}: {:.1} ms total, {:.3} ms each",
                args.len() - 4,
                read.as_secs_f64() * 1e3,
                total.as_secs_f64() * 1e3,
                total.as_secs_f64() * 1e3 / n as f64
            );
        }
        _ => eprintln!("usage: bake_timing parse DIR FILE... | resolve N TARGET DIR FILE..."),
    }
}
