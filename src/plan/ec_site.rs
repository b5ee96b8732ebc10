//! The site copy of an eval-containers Dockerfile: what kiln builds from on an
//! air-gapped site, written into kiln's cache (never into the fleet) and passed to bake
//! as `--set <target>.dockerfile=<copy>`. Two changes, each only where needed:
//!
//! - a `# syntax=docker/dockerfile:1…` parser directive is dropped: it makes BuildKit
//!   pull Docker's frontend image from Docker Hub before anything builds, which an
//!   air-gapped builder cannot. The builder's built-in frontend (BuildKit ≥ 0.10 here,
//!   the same 1.x syntax: heredocs, `RUN --mount`) reads the file instead.
//! - with `--ca-bundle`, every `RUN` mounts the build secret `ca-bundle` and every stage
//!   declares `ARG SSL_CERT_FILE` and `ARG PIP_CERT` pointing at it, so pip, uv and curl
//!   trust the site's TLS-intercepting proxy during the build. ARGs, not ENVs: neither
//!   the bundle nor the variables reach the image's configuration (the history names
//!   the path only).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::fleet::dockerfile::Dockerfile;

use super::ca_bundle;

/// Where the secret is mounted (BuildKit's default for id `ca-bundle`).
pub const SECRET_PATH: &str = "/run/secrets/ca-bundle";

/// What the copy changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub drop_syntax: bool,
    pub ca_bundle: bool,
}

/// True for Docker's own Dockerfile frontend (`docker/dockerfile:1`, `…:1.7`,
/// `docker.io/docker/dockerfile:1@sha256:…`): the syntax the built-in frontend speaks.
fn docker_frontend(image: &str) -> bool {
    let name = image
        .trim_start_matches("docker.io/")
        .split(['@', ':'])
        .next()
        .unwrap_or("");
    name == "docker/dockerfile"
}

/// The parser directive `# syntax=IMAGE` among the file's leading comments, as
/// (line index, image).
fn syntax_line(text: &str) -> Option<(usize, String)> {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        let Some(comment) = t.strip_prefix('#') else {
            return None; // directives end at the first non-comment line
        };
        let (key, value) = comment.split_once('=')?;
        let key = key.trim();
        if key.eq_ignore_ascii_case("syntax") {
            return Some((i, value.trim().to_string()));
        }
        if !key.eq_ignore_ascii_case("escape") && !key.eq_ignore_ascii_case("check") {
            return None;
        }
    }
    None
}

/// The copy of `text` with `changes` applied, or `None` when it would be the same.
pub fn rewrite(text: &str, changes: Changes) -> Option<String> {
    let mut drop = None;
    if changes.drop_syntax {
        drop = syntax_line(text)
            .filter(|(_, image)| docker_frontend(image))
            .map(|(i, _)| i);
    }
    // 0-based line indexes of the instructions to change (heredoc bodies are skipped by
    // the parser, so a body line reading `RUN …` is left alone).
    let (mut runs, mut froms) = (Vec::new(), Vec::new());
    if changes.ca_bundle {
        for ins in &Dockerfile::parse(text).instructions {
            match ins.keyword.as_str() {
                "RUN" => runs.push(ins.line - 1),
                "FROM" => froms.push(ins.line - 1),
                _ => {}
            }
        }
    }
    if drop.is_none() && runs.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 256);
    let mut arg_pending = false;
    for (i, line) in text.lines().enumerate() {
        if Some(i) == drop {
            out.push_str(
                "# (kiln: `# syntax=` dropped; the builder's own frontend reads this file)\n",
            );
            continue;
        }
        if runs.contains(&i) {
            let indent = line.len() - line.trim_start().len();
            let (lead, rest) = line.split_at(indent);
            // `RUN` and what follows it, whatever its case.
            let (kw, args) = rest.split_at(3.min(rest.len()));
            out.push_str(&format!(
                "{lead}{kw} --mount=type=secret,id={} {}\n",
                ca_bundle::ID,
                args.trim_start()
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
        if froms.contains(&i) {
            arg_pending = true;
        }
        // The ARGs go after the whole FROM instruction (it may continue on more lines).
        if arg_pending && !line.trim_end().ends_with('\\') {
            out.push_str(&format!(
                "ARG SSL_CERT_FILE={SECRET_PATH}\nARG PIP_CERT={SECRET_PATH}\n"
            ));
            arg_pending = false;
        }
    }
    Some(out)
}

/// Where kiln keeps the site copies of the fleet at `root`:
/// `$XDG_CACHE_HOME/kiln/eval-containers/<digest of the fleet's absolute path>`.
pub fn state_dir(root: &Path) -> anyhow::Result<PathBuf> {
    super::fleet_cache_dir("eval-containers", root)
}

/// Writes the copy of `target`'s Dockerfile (unless it is already there as it should
/// be) and returns its absolute path; `None` when no change applies.
pub fn write(
    root: &Path,
    target: &str,
    text: &str,
    changes: Changes,
) -> anyhow::Result<Option<PathBuf>> {
    let Some(copy) = rewrite(text, changes) else {
        return Ok(None);
    };
    let dir = state_dir(root)?.join(target);
    let path = dir.join("Dockerfile");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(copy.as_str()) {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(&path, copy).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Changes = Changes {
        drop_syntax: true,
        ca_bundle: true,
    };

    #[test]
    fn drops_only_dockers_own_frontend() {
        let t = "# syntax=docker/dockerfile:1\nFROM x\n";
        let c = Changes {
            drop_syntax: true,
            ca_bundle: false,
        };
        assert!(!rewrite(t, c).unwrap().contains("syntax=docker"));
        assert_eq!(rewrite("# syntax=example/frontend:2\nFROM x\n", c), None);
        assert_eq!(rewrite("FROM x\n# syntax=docker/dockerfile:1\n", c), None);
        assert!(docker_frontend("docker.io/docker/dockerfile:1.7@sha256:ab"));
    }

    #[test]
    fn ca_bundle_mounts_every_run_and_declares_args_per_stage() {
        let t = "# syntax=docker/dockerfile:1\nFROM a AS b\nrun pip install x\nRUN cat > /f <<'I'\nRUN not an instruction\nI\nFROM \\\n  c\nRUN true\n";
        let out = rewrite(t, ALL).unwrap();
        assert_eq!(
            out,
            "# (kiln: `# syntax=` dropped; the builder's own frontend reads this file)\n\
             FROM a AS b\nARG SSL_CERT_FILE=/run/secrets/ca-bundle\nARG PIP_CERT=/run/secrets/ca-bundle\n\
             run --mount=type=secret,id=ca-bundle pip install x\n\
             RUN --mount=type=secret,id=ca-bundle cat > /f <<'I'\nRUN not an instruction\nI\n\
             FROM \\\n  c\nARG SSL_CERT_FILE=/run/secrets/ca-bundle\nARG PIP_CERT=/run/secrets/ca-bundle\n\
             RUN --mount=type=secret,id=ca-bundle true\n"
        );
    }

    #[test]
    fn nothing_to_change_writes_nothing() {
        assert_eq!(rewrite("FROM a\nCOPY x y\n", ALL), None);
    }
}
