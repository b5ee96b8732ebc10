//! The network hosts an image's build reaches, read from its Dockerfile: URLs in `RUN`
//! commands (and the heredoc scripts they run) and `ADD <url>`, plus the registries of the
//! package managers a `RUN` calls. What an air-gapped site must mirror (or map away)
//! before it builds; a heuristic, so a maintainer reads it as "at least these".

use std::collections::BTreeSet;

use super::dockerfile::Dockerfile;

/// Package managers and the hosts they reach by default (an explicit `--index-url` or
/// registry URL in the command shows up as a URL as well).
const MANAGERS: &[(&[&str], &[&str])] = &[
    (
        &[
            "pip install",
            "pip3 install",
            "uv pip install",
            "uv tool install",
            "pipx install",
        ],
        &["pypi.org", "files.pythonhosted.org"],
    ),
    (
        &["npm install", "npm i ", "npx ", "pnpm add", "yarn add"],
        &["registry.npmjs.org"],
    ),
    (
        &["apt-get install", "apt install"],
        &["apt mirrors of the base image"],
    ),
    (&["apk add"], &["dl-cdn.alpinelinux.org"]),
    (&["cargo install"], &["crates.io", "static.crates.io"]),
    (&["go install"], &["proxy.golang.org"]),
    (&["hf://"], &["huggingface.co"]),
];

/// The hosts `df`'s build reaches, sorted.
pub fn build_hosts(df: &Dockerfile) -> BTreeSet<String> {
    let mut hosts = BTreeSet::new();
    for ins in &df.instructions {
        let text = match ins.keyword.as_str() {
            "RUN" => {
                // A heredoc written to a file (`cat > run.sh <<EOF`) is a script for run
                // time; one fed to an interpreter runs now.
                let written = ins.args.contains("cat >") || ins.args.contains("tee ");
                if written {
                    ins.args.clone()
                } else {
                    format!("{}\n{}", ins.args, ins.heredoc)
                }
            }
            "ADD" => ins.args.clone(),
            _ => continue,
        };
        if ins.keyword == "RUN" {
            hosts.extend(script_hosts(&text));
        } else {
            hosts.extend(urls(&text));
        }
    }
    hosts
}

/// The hosts a shell script reaches when it runs (a task's test or solution script):
/// its URLs and the registries of the package managers it calls.
pub fn script_hosts(text: &str) -> BTreeSet<String> {
    let mut hosts: BTreeSet<String> = urls(text).into_iter().collect();
    for (commands, reached) in MANAGERS {
        if commands.iter().any(|c| text.contains(c)) {
            hosts.extend(reached.iter().map(|h| h.to_string()));
        }
    }
    hosts
}

/// Hosts of the `http://`, `https://` and `git@host:` references in `text` (variables in
/// a host are kept as written: `${MIRROR}`).
pub fn urls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("://") {
        let scheme_start = text[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+'))
            .map_or(0, |i| i + 1);
        let scheme = &text[scheme_start..at];
        if !(scheme.ends_with("http") || scheme.ends_with("https")) {
            continue;
        }
        let rest = &text[at + 3..];
        let end = rest
            .find(|c: char| {
                c == '/' || c == ':' || c == '"' || c == '\'' || c == '?' || c.is_whitespace()
            })
            .unwrap_or(rest.len());
        let host = rest[..end].rsplit('@').next().unwrap_or("");
        if host.contains('.') || host.starts_with("${") {
            out.push(host.to_string());
        }
    }
    for (at, _) in text.match_indices("git@") {
        let rest = &text[at + 4..];
        if let Some(end) = rest.find(':') {
            out.push(rest[..end].to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_managers_and_heredocs() {
        let df = Dockerfile::parse(
            "FROM x\nLABEL url=\"https://arxiv.org/abs/1\"\n\
             RUN curl -fsSL https://github.com/a/b/releases/x.tgz | tar xz && pip install uv\n\
             ADD https://example.org/data.bin /data\n\
             RUN cat > /run.sh <<'E'\ncurl http://model:4000/v1\nE\n\
             RUN python3 <<'PY'\nurllib.request.urlopen('https://huggingface.co/x')\nPY\n\
             RUN uv pip install git+https://github.com/org/repo && git clone git@gitlab.com:o/r\n",
        );
        let got: Vec<String> = build_hosts(&df).into_iter().collect();
        assert_eq!(
            got,
            [
                "example.org",
                "files.pythonhosted.org",
                "github.com",
                "gitlab.com",
                "huggingface.co",
                "pypi.org"
            ]
        );
    }
}
