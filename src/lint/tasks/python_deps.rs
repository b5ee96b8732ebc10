//! Python dependencies: which packages a pip, uv, uvx or pipx command installs, whether a
//! requirement is pinned to one version, and the dependencies a script declares inline
//! (PEP 723, what `uv run script.py` installs).

use super::shell::Command;

/// A command that installs Python packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub kind: Kind,
    /// The requirements as written (`requests`, `pytest==8.4.1`, `git+https://…`).
    pub packages: Vec<String>,
    /// `-c constraints.txt`: versions come from that file.
    pub constrained: bool,
    /// `--no-index` / `--offline`: nothing is fetched.
    pub offline: bool,
    /// `uv run`: a script's inline dependencies may be installed too.
    pub runs_script: Option<String>,
}

/// Options that take a value (the value is not a package).
const VALUE_FLAGS: &[&str] = &[
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "--cache-dir",
    "--python",
    "-p",
    "--log",
    "--src",
    "--find-links",
    "-f",
    "--platform",
    "--config-settings",
    "-C",
    "--index",
    "--default-index",
    "--python-version",
    "--only-binary",
    "--no-binary",
    "--upgrade-package",
    "-P",
    "--with-requirements",
    "--with-editable",
    "--directory",
    "--project",
    "--env-file",
    "--spec",
    "--retries",
    "--timeout",
    "--proxy",
    "--cert",
    "--client-cert",
    "--trusted-host",
    "--progress-bar",
    "--upgrade-strategy",
    "--root-user-action",
    "--report",
    "--global-option",
    "--install-option",
    "--implementation",
    "--abi",
    "--exists-action",
    "--keyring-provider",
    "--use-feature",
    "--use-deprecated",
    "--log-file",
    "--resume-retries",
    "--index-strategy",
    "--resolution",
    "--prerelease",
    "--exclude-newer",
    "--link-mode",
    "--reinstall-package",
    "--refresh-package",
    "--no-build-package",
    "--no-binary-package",
    "--only-binary-package",
    "--torch-backend",
    "--group",
    "--extra",
    "--build-constraint",
    "--override",
    "--overrides",
];

/// The packages `cmd` installs, if it is a Python install: `pip install`, `python -m pip
/// install`, `uv pip install`, `uv tool install`, `uv run --with`, `uvx` / `uv tool run`,
/// `pipx install` / `pipx run`.
pub fn install(cmd: &Command) -> Option<Install> {
    let prog = cmd.program();
    let args: Vec<&str> = cmd.args().iter().map(String::as_str).collect();
    let is_pip = |p: &str| p == "pip" || p.strip_prefix("pip").is_some_and(is_version);
    let is_python = |p: &str| p == "python" || p.strip_prefix("python").is_some_and(is_version);
    let (kind, rest): (Kind, &[&str]) = match (prog, args.as_slice()) {
        (p, ["install", rest @ ..]) if is_pip(p) => (Kind::Pip, rest),
        (p, ["-m", "pip", "install", rest @ ..]) if is_python(p) => (Kind::Pip, rest),
        ("uv", ["pip", "install", rest @ ..]) => (Kind::Pip, rest),
        ("uv", ["tool", "install", rest @ ..]) => (Kind::Pip, rest),
        ("uv", ["run", rest @ ..]) => (Kind::UvRun, rest),
        ("uvx", rest) => (Kind::Tool, rest),
        ("uv", ["tool", "run", rest @ ..]) => (Kind::Tool, rest),
        ("pipx", ["install", rest @ ..]) => (Kind::Pip, rest),
        ("pipx", ["run", rest @ ..]) => (Kind::Tool, rest),
        _ => return None,
    };
    let mut packages = Vec::new();
    let mut constrained = false;
    let mut offline = false;
    let mut runs_script = None;
    let mut from = None;
    let mut tool = None;
    let mut it = rest.iter();
    while let Some(&word) = it.next() {
        let (flag, value) = match word.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some(v.to_string())),
            _ => (word, None),
        };
        let mut take = |value: Option<String>| value.or_else(|| it.next().map(|s| s.to_string()));
        match flag {
            "--with" | "-w" => packages.extend(take(value)),
            "--from" if kind == Kind::Tool => from = take(value),
            "-c" | "--constraint" => {
                constrained = true;
                take(value);
            }
            "-e" | "--editable" => {
                // A local checkout, unless it is a URL.
                packages.extend(take(value).filter(|p| p.contains("://")));
            }
            "--no-index" | "--offline" => offline = true,
            f if VALUE_FLAGS.contains(&f) => {
                take(value);
            }
            f if f.starts_with('-') => {}
            _ => match kind {
                Kind::Pip => packages.push(word.to_string()),
                // The first word is the command (uv run) or the tool (uvx); the rest are
                // its own arguments.
                Kind::UvRun => {
                    runs_script = Some(word.to_string());
                    break;
                }
                Kind::Tool => {
                    tool = Some(word.to_string());
                    break;
                }
            },
        }
    }
    if let Some(t) = tool {
        // `uvx ruff@0.5.0`; `--from 'pkg==1'` names the package; `--with pytest==8` pins
        // the tool `pytest` itself.
        let name = requirement_name(&t);
        let pinned_by_with = packages
            .iter()
            .any(|p| requirement_name(p) == name && is_pinned(p));
        match from {
            Some(f) => packages.push(f),
            None if t.contains('@') => {
                let (_, version) = t.split_once('@').unwrap_or_default();
                if version == "latest" || version.is_empty() {
                    packages.push(t.clone());
                }
            }
            None if !pinned_by_with => packages.push(t),
            None => {}
        }
    }
    // Upgrading pip itself is how pip is bootstrapped, not a dependency of the task.
    let upgrade = rest.iter().any(|w| *w == "-U" || *w == "--upgrade");
    if upgrade && packages.iter().all(|p| requirement_name(p) == "pip") {
        packages.clear();
    }
    Some(Install {
        kind,
        packages,
        constrained,
        offline,
        runs_script,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Installs into an environment (`pip install`, `uv tool install`, `pipx install`).
    Pip,
    /// `uv run`: installs its `--with` packages and the script's inline dependencies.
    UvRun,
    /// Runs a tool from a fresh environment (`uvx`, `uv tool run`, `pipx run`).
    Tool,
}

/// `3`, `3.12`: the suffix of `pip3.12` or `python3`.
fn is_version(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// The normalized project name of a requirement (`Pytest_JSON[x]>=1` → `pytest-json`).
pub fn requirement_name(spec: &str) -> String {
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(spec.len());
    spec[..end].to_ascii_lowercase().replace(['_', '.'], "-")
}

/// Whether `spec` installs one known version: `==1.2` (not `==1.*`) or `===1.2`, a URL
/// at a full commit or with a sha256. A local path, a wheel or archive file, or a value
/// chosen at build time (`$VERSION`) is not a registry dependency and counts as pinned.
pub fn is_pinned(spec: &str) -> bool {
    let spec = spec.trim();
    if spec.is_empty()
        || spec.contains('$')
        || spec.starts_with(['.', '/', '~'])
        || spec.starts_with("file:")
    {
        return true;
    }
    if spec.contains("://") {
        return pinned_url(spec);
    }
    if [".whl", ".tar.gz", ".zip"]
        .iter()
        .any(|x| spec.ends_with(x))
    {
        return true;
    }
    // Markers (`; python_version < "3.11"`) say when, not which version.
    let spec = spec.split(';').next().unwrap_or(spec);
    let after_name = spec.trim_start_matches(|c: char| {
        c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
    });
    let versions = match after_name.trim_start().strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or("", |(_, v)| v),
        None => after_name,
    };
    versions.split(',').any(|v| {
        let v = v.trim().trim_start_matches('(').trim_end_matches(')');
        v.strip_prefix("===").is_some_and(|x| !x.trim().is_empty())
            || v.strip_prefix("==")
                .is_some_and(|x| !x.trim().is_empty() && !x.contains('*'))
    })
}

/// `git+https://…@<40 hex>` or `…#sha256=<64 hex>`.
fn pinned_url(spec: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    if let Some((_, sha)) = spec.rsplit_once("#sha256=") {
        return hex(sha, 64);
    }
    let without_fragment = spec.split('#').next().unwrap_or(spec);
    let path = without_fragment
        .split_once("://")
        .map_or(without_fragment, |(_, p)| p);
    path.rsplit_once('@').is_some_and(|(_, rev)| hex(rev, 40))
}

/// The dependencies a script declares inline (`# /// script` … `dependencies = [...]` …
/// `# ///`): `(line, requirement)`, 1-based.
pub fn script_dependencies(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut in_deps = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if !in_block {
            in_block = t == "# /// script";
            continue;
        }
        if t == "# ///" {
            break;
        }
        let Some(body) = t.strip_prefix('#') else {
            break;
        };
        let body = body.trim();
        if let Some(rest) = body.strip_prefix("dependencies") {
            in_deps = rest.trim_start().starts_with('=');
        } else if !in_deps {
            continue;
        }
        for (n, part) in body.split('"').enumerate() {
            // Every other piece between quotes is a string.
            if n % 2 == 1 && !part.is_empty() {
                out.push((i + 1, part.to_string()));
            }
        }
        if body.contains(']') {
            in_deps = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::shell::commands;
    use super::*;

    fn packages(line: &str) -> Vec<String> {
        install(&commands(line)[0]).map_or(Vec::new(), |i| i.packages)
    }

    #[test]
    fn packages_of_each_installer() {
        assert_eq!(
            packages("pip install --no-cache-dir -r req.txt requests numpy==2.0.2"),
            ["requests", "numpy==2.0.2"]
        );
        assert_eq!(
            packages("python3 -m pip install -i https://mirror flask"),
            ["flask"]
        );
        assert_eq!(
            packages("pip install --retries 5 --timeout=60 uv==0.5.14"),
            ["uv==0.5.14"]
        );
        assert_eq!(
            packages("uv pip install --system --python /v/bin/python 'setuptools<81' x==1"),
            ["setuptools<81", "x==1"]
        );
        assert_eq!(
            packages("uvx --with pytest==8.4.1 --with pytest-json-ctrf==0.3.5 pytest --ctrf x"),
            ["pytest==8.4.1", "pytest-json-ctrf==0.3.5"]
        );
        assert_eq!(packages("uvx ruff check ."), ["ruff"]);
        assert_eq!(packages("uvx ruff@0.5.0 check"), Vec::<String>::new());
        assert_eq!(
            packages("uvx --from 'black==24.1' black ."),
            ["black==24.1"]
        );
        assert_eq!(packages("pip install -U pip"), Vec::<String>::new());
        assert_eq!(
            packages("pip3.12 install -e . -e git+https://g.com/r"),
            ["git+https://g.com/r"]
        );
        let run = install(&commands("uv run --with rich /tests/judge.py")[0]).unwrap();
        assert_eq!(run.packages, ["rich"]);
        assert_eq!(run.runs_script.as_deref(), Some("/tests/judge.py"));
        assert!(install(&commands("pip download x")[0]).is_none());
        assert!(
            install(&commands("pip install --no-index x")[0])
                .unwrap()
                .offline
        );
    }

    #[test]
    fn pins() {
        for yes in [
            "a==1.2",
            "a[x]==1",
            "a===1",
            "a>=1,==1.5",
            "a==1 ; python_version<'3.11'",
            "git+https://github.com/o/r.git@59a200c6d575d595120f1cb70fea53cef0632f6b",
            "https://h/x.tar.gz#sha256=0000000000000000000000000000000000000000000000000000000000000000",
            "./local",
            "/wheels/a.whl",
            "a.whl",
            "a==${V}",
        ] {
            assert!(is_pinned(yes), "{yes}");
        }
        for no in [
            "a",
            "a>=1",
            "a==1.*",
            "a~=1.2",
            "a[cli]",
            "git+https://github.com/o/r",
            "setuptools<81",
        ] {
            assert!(!is_pinned(no), "{no}");
        }
    }

    #[test]
    fn inline_script_dependencies() {
        let text = "# /// script\n# requires-python = \">=3.12\"\n# dependencies = [\n#   \"anthropic>=0.75.0\",\n#   \"pydantic==2.12.5\",\n# ]\n# ///\nimport x\n";
        assert_eq!(
            script_dependencies(text),
            [
                (4, "anthropic>=0.75.0".into()),
                (5, "pydantic==2.12.5".into())
            ]
        );
        assert!(script_dependencies("import x\n").is_empty());
    }
}
