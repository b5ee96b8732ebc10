//! The rules over a Dockerfile: images it builds on without a fixed version, Python
//! packages its `RUN`s install without one, and the user its final stage runs as.

use std::collections::BTreeMap;

use super::scripts::{self, Hit, Script};
use crate::fleet::dockerfile::Dockerfile;
use crate::lint::rules;

/// Why `image` (as written) is not pinned, or `None`: a digest, or a tag other than
/// `latest`. A reference that starts with a variable (`${BASE_IMAGE}`, `${REGISTRY}/…`)
/// is chosen by the fleet at build time, and a tag with a variable by a build arg: kiln
/// cannot tell, so neither is reported.
pub fn unpinned(image: &str) -> Option<&'static str> {
    if image.starts_with('$') || image.eq_ignore_ascii_case("scratch") || image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Some("has no tag, so it is whatever `latest` is when it is built"),
        Some((_, "latest")) => Some("is `latest`, which moves"),
        Some(_) => None,
    }
}

/// Every image the Dockerfile builds on (`FROM`, `COPY --from=<image>`, `RUN
/// --mount=from=<image>`) that is not pinned: `(line, message)`. Stages of the same file
/// are not images, and neither are images under one of the `local` prefixes (made on
/// this machine, never pulled).
pub fn unpinned_images(df: &Dockerfile, local: &[String]) -> Vec<(usize, String)> {
    let mut stages: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut check = |line: usize, what: &str, image: &str, stages: &[String]| {
        let is_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(image))
            || image.chars().all(|c| c.is_ascii_digit());
        if is_stage || local.iter().any(|p| image.starts_with(p.as_str())) {
            return;
        }
        if let Some(why) = unpinned(image) {
            out.push((
                line,
                format!("{what} {image} {why}: pin a version tag or a digest (@sha256:…)"),
            ));
        }
    };
    for ins in &df.instructions {
        let words: Vec<&str> = ins.args.split_whitespace().collect();
        match ins.keyword.as_str() {
            "FROM" => {
                let mut rest = words.iter().filter(|w| !w.starts_with("--"));
                if let Some(image) = rest.next() {
                    check(ins.line, "FROM", image, &stages);
                }
                if let (Some(kw), Some(alias)) = (rest.next(), rest.next()) {
                    if kw.eq_ignore_ascii_case("as") {
                        stages.push(alias.to_string());
                    }
                }
            }
            "COPY" | "ADD" => {
                for from in words
                    .iter()
                    .take_while(|w| w.starts_with("--"))
                    .filter_map(|w| w.strip_prefix("--from="))
                {
                    check(ins.line, "COPY --from", from, &stages);
                }
            }
            "RUN" => {
                for mount in words
                    .iter()
                    .take_while(|w| w.starts_with("--"))
                    .filter_map(|w| w.strip_prefix("--mount="))
                {
                    if let Some(from) = mount.split(',').find_map(|kv| kv.strip_prefix("from=")) {
                        check(ins.line, "RUN --mount from", from, &stages);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The unpinned Python installs of the `RUN` instructions (a `RUN <<EOF` script's body
/// too): one finding per instruction.
pub fn unpinned_python(df: &Dockerfile) -> Vec<Hit> {
    let mut hits = Vec::new();
    let none = |_: &str| None;
    let script = Script {
        verifier: false,
        read: &none,
    };
    for ins in df.instructions.iter().filter(|i| i.keyword == "RUN") {
        // Options (`--mount=…`) are not the command.
        let command: Vec<&str> = ins
            .args
            .split_whitespace()
            .skip_while(|w| w.starts_with("--"))
            .collect();
        let command = command.join(" ");
        let mut texts = vec![command.clone()];
        if command.starts_with("<<") {
            texts.extend(
                super::shell::lines(&ins.heredoc)
                    .into_iter()
                    .map(|l| l.text),
            );
        }
        for text in texts {
            scripts::check_line(&text, ins.line, script, &mut hits);
        }
    }
    hits.retain(|h| h.rule == rules::UNPINNED_PYTHON_DEPENDENCY);
    hits.dedup_by(|a, b| a.line == b.line);
    hits
}

/// Who the final stage runs as: `Some((line, user))` from its last `USER` (a stage built
/// `FROM` an earlier stage inherits that stage's), `None` when no stage of the file sets
/// one (the base image's user, root for the usual bases).
pub fn final_user(df: &Dockerfile) -> Option<(usize, String)> {
    let mut by_stage: BTreeMap<String, Option<(usize, String)>> = BTreeMap::new();
    let mut current: Option<(usize, String)> = None;
    let mut alias = String::new();
    for ins in &df.instructions {
        match ins.keyword.as_str() {
            "FROM" => {
                by_stage.insert(alias.to_ascii_lowercase(), current.take());
                let words: Vec<&str> = ins
                    .args
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let base = words
                    .first()
                    .map(|w| w.to_ascii_lowercase())
                    .unwrap_or_default();
                current = by_stage.get(&base).cloned().flatten();
                alias = match words.as_slice() {
                    [_, kw, a] if kw.eq_ignore_ascii_case("as") => a.to_string(),
                    _ => String::new(),
                };
            }
            "USER" => {
                let user = ins.args.split_whitespace().next().unwrap_or("").to_string();
                current = Some((ins.line, user));
            }
            _ => {}
        }
    }
    current
}

/// Whether a user (`root`, `0`, `root:root`, `0:0`; as USER or `agent.user` write it) is root.
pub fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user).trim();
    name == "root" || name == "0" || name.eq_ignore_ascii_case("ContainerAdministrator")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_or_not() {
        for (image, pinned) in [
            ("ubuntu:24.04", true),
            ("python:3.12-slim", true),
            ("ghcr.io/a/b:latest", false),
            ("ubuntu", false),
            ("localhost:5000/x", false),
            ("localhost:5000/x:1", true),
            ("x@sha256:abc", true),
            ("${BASE_IMAGE}", true),
            ("${REGISTRY}/core/x:latest", true),
            ("ghcr.io/e/swe.${ID}:latest", false),
            ("plandex:server-v${V}", true),
            ("scratch", true),
        ] {
            assert_eq!(unpinned(image).is_none(), pinned, "{image}");
        }
    }

    #[test]
    fn images_of_a_dockerfile_skip_its_stages() {
        let df = Dockerfile::parse(
            "FROM golang:1.25 AS build\nFROM --platform=linux/amd64 python AS py\nFROM build\nCOPY --from=ghcr.io/astral-sh/uv:latest /uv /bin/\nCOPY --from=build /x /x\nCOPY --from=0 /y /y\nRUN --mount=type=cache,from=py,target=/c true\n",
        );
        let lines: Vec<usize> = unpinned_images(&df, &[])
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        assert_eq!(lines, [2, 4]);
        let local = Dockerfile::parse("FROM kiln.local/bases/busybox:latest\n");
        assert!(unpinned_images(&local, &["kiln.local/".into()]).is_empty());
        assert_eq!(unpinned_images(&local, &[]).len(), 1);
    }

    #[test]
    fn python_installs_in_run_and_heredoc() {
        let df = Dockerfile::parse(
            "FROM x\nRUN pip install flask\nRUN --mount=type=cache,target=/c pip install a==1\nRUN <<EOF\nset -e\nuv pip install --system rich\nEOF\nRUN python3 <<EOF\nimport os # pip install nothing\nEOF\n",
        );
        let lines: Vec<usize> = unpinned_python(&df).into_iter().map(|h| h.line).collect();
        assert_eq!(lines, [2, 4]);
    }

    #[test]
    fn the_final_stage_user() {
        let df = Dockerfile::parse("FROM a AS base\nUSER agent\nFROM base\nRUN true\n");
        assert_eq!(final_user(&df), Some((2, "agent".into())));
        let df = Dockerfile::parse("FROM a AS b\nUSER agent\nFROM c\n");
        assert_eq!(final_user(&df), None);
        let df = Dockerfile::parse("FROM a\nUSER 1000:1000\nUSER root\n");
        assert!(is_root(&final_user(&df).unwrap().1));
        assert!(!is_root("1000:0") && is_root("0:0"));
    }
}
