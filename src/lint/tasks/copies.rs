//! What the `COPY`/`ADD` instructions of an image's final stage take from its build
//! context (after `.dockerignore`) and where each entry lands in the image: the agent
//! sees exactly these files, so the leak and file-reference rules read them from here.

use globset::GlobBuilder;

use crate::context::{Context, EntryKind};
use crate::fleet::dockerfile::Dockerfile;

/// One context entry a `COPY`/`ADD` puts into the image.
#[derive(Debug, Clone)]
pub struct Copied {
    /// The instruction's line (1-based).
    pub line: usize,
    /// Index into the context's entries.
    pub entry: usize,
    /// Where it lands (absolute; variables kept as written).
    pub dest: String,
}

/// The entries the final stage (and the stages it is built `FROM`) copies from the
/// context. A source outside the context, a URL, a heredoc or another stage's files
/// (`--from`) is not the context's.
pub fn copied(df: &Dockerfile, ctx: &Context) -> Vec<Copied> {
    let mut out = Vec::new();
    for (ins, workdir) in final_stage_copies(df) {
        let words = arguments(&ins.args);
        if words.len() < 2 {
            continue;
        }
        let (sources, dest) = words.split_at(words.len() - 1);
        let dest = absolute(&dest[0], &workdir);
        let many = sources.len() > 1;
        for source in sources {
            if source.starts_with("<<") || source.contains("://") || source.starts_with("git@") {
                continue;
            }
            let Some(pattern) = clean(source) else {
                continue;
            };
            let glob = pattern.contains(['*', '?', '[']);
            let matcher = glob
                .then(|| {
                    GlobBuilder::new(&pattern)
                        .literal_separator(true)
                        .build()
                        .ok()
                        .map(|g| g.compile_matcher())
                })
                .flatten();
            for (i, e) in ctx.entries.iter().enumerate() {
                let hit = match &matcher {
                    Some(m) => m.is_match(&e.rel),
                    None => pattern.is_empty() || e.rel == pattern,
                };
                if !hit {
                    continue;
                }
                if pattern.is_empty() || e.kind == EntryKind::Dir {
                    // A directory: its contents, into the destination.
                    let prefix = if pattern.is_empty() {
                        String::new()
                    } else {
                        format!("{}/", e.rel)
                    };
                    for (j, sub) in ctx.entries.iter().enumerate() {
                        if let Some(rest) = sub.rel.strip_prefix(&prefix) {
                            if sub.kind != EntryKind::Dir && !rest.is_empty() {
                                out.push(Copied {
                                    line: ins.line,
                                    entry: j,
                                    dest: join(&dest, rest),
                                });
                            }
                        }
                    }
                    if pattern.is_empty() {
                        break;
                    }
                } else {
                    let name = e.rel.rsplit('/').next().unwrap_or(&e.rel);
                    let into_dir = dest.ends_with('/') || many || glob;
                    out.push(Copied {
                        line: ins.line,
                        entry: i,
                        dest: if into_dir {
                            join(&dest, name)
                        } else {
                            dest.clone()
                        },
                    });
                }
            }
        }
    }
    out
}

/// The context `COPY`/`ADD` instructions of the final stage and its `FROM` ancestors in
/// this file, each with the working directory it runs in.
fn final_stage_copies(df: &Dockerfile) -> Vec<(&crate::fleet::dockerfile::Instruction, String)> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut workdir = "/".to_string();
    for (i, ins) in df.instructions.iter().enumerate() {
        match ins.keyword.as_str() {
            "FROM" => {
                let words: Vec<&str> = ins
                    .args
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let base = words.first().unwrap_or(&"").to_ascii_lowercase();
                let alias = match words.as_slice() {
                    [_, kw, a] if kw.eq_ignore_ascii_case("as") => a.to_ascii_lowercase(),
                    _ => String::new(),
                };
                // A stage built on an earlier one starts in its working directory.
                workdir = stages
                    .iter()
                    .rev()
                    .find(|s| !s.alias.is_empty() && s.alias == base)
                    .map_or_else(|| "/".to_string(), |s| s.workdir.clone());
                stages.push(Stage {
                    alias,
                    base,
                    copies: Vec::new(),
                    workdir: workdir.clone(),
                });
            }
            "WORKDIR" => {
                workdir = absolute(ins.args.trim(), &workdir);
                if let Some(s) = stages.last_mut() {
                    s.workdir = workdir.clone();
                }
            }
            "COPY" | "ADD" if !ins.args.split_whitespace().any(|w| w.starts_with("--from")) => {
                if let Some(s) = stages.last_mut() {
                    s.copies.push((i, workdir.clone()));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut want = stages.len().checked_sub(1);
    while let Some(k) = want {
        let stage = &stages[k];
        for (i, w) in stage.copies.iter().rev() {
            out.push((&df.instructions[*i], w.clone()));
        }
        want = stages[..k]
            .iter()
            .rposition(|s| !s.alias.is_empty() && s.alias == stage.base);
    }
    out.reverse();
    out
}

struct Stage {
    alias: String,
    base: String,
    /// Context copies: instruction index and the working directory they run in.
    copies: Vec<(usize, String)>,
    /// The working directory at the stage's end.
    workdir: String,
}

/// The sources and destination: JSON form or words, without `--chown=` and friends.
fn arguments(args: &str) -> Vec<String> {
    let rest: Vec<&str> = args
        .split_whitespace()
        .skip_while(|w| w.starts_with("--"))
        .collect();
    let rest = rest.join(" ");
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(&rest) {
            return v;
        }
    }
    rest.split_whitespace()
        .map(|w| w.trim_matches('"').to_string())
        .collect()
}

/// The source relative to the context (`""` for the whole context), or `None` when it
/// leaves the context.
fn clean(source: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in source.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn absolute(path: &str, workdir: &str) -> String {
    if path.starts_with('/') || path.starts_with('$') {
        path.to_string()
    } else {
        join(workdir, path)
    }
}

fn join(dir: &str, rest: &str) -> String {
    let rest = rest.trim_start_matches("./");
    if rest.is_empty() || rest == "." {
        return dir.to_string();
    }
    format!("{}/{}", dir.trim_end_matches('/'), rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn sources_destinations_and_stages() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "Dockerfile",
            "app/a.py",
            "app/sub/b.py",
            "data.csv",
            "x.txt",
            "y.txt",
            "skip/z",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        std::fs::write(root.join(".dockerignore"), "skip\n").unwrap();
        let df = Dockerfile::parse(
            "FROM a AS build\nCOPY x.txt /build/\nFROM b AS unused\nCOPY y.txt /u\nFROM build\nWORKDIR /srv\nCOPY app/ app\nCOPY [\"data.csv\", \"/in/d.csv\"]\nCOPY *.txt skip /t/\nCOPY --from=build /build /b\n",
        );
        let ctx = crate::context::walk(root, Path::new("Dockerfile")).unwrap();
        let mut got: Vec<(usize, String, String)> = copied(&df, &ctx)
            .into_iter()
            .map(|c| (c.line, ctx.entries[c.entry].rel.clone(), c.dest))
            .collect();
        got.sort();
        let want: Vec<(usize, String, String)> = [
            (2, "x.txt", "/build/x.txt"),
            (7, "app/a.py", "/srv/app/a.py"),
            (7, "app/sub/b.py", "/srv/app/sub/b.py"),
            (8, "data.csv", "/in/d.csv"),
            (9, "x.txt", "/t/x.txt"),
            (9, "y.txt", "/t/y.txt"),
        ]
        .iter()
        .map(|(l, a, b)| (*l, a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
    }
}
