//! `file-reference-mentioned`: a file the tests look at must be named in the instruction,
//! or the agent cannot know to make it. A test's paths are its absolute paths outside the
//! system and harness directories (and, for kiln's graders, `$WORKSPACE/…`); a path is
//! named when the instruction holds it or its file name. Not something the agent makes,
//! so not reported: a file the image already holds (copied from the build context), one
//! the environment's files name (an entrypoint or a `RUN` writes it), one the runner
//! provides, and one the tests write themselves (`> f`, `-o f`, `tee f`, `touch f`).

/// Directories of the system and of the harnesses: never a file the agent makes.
const NOT_TASK_FILES: &[&str] = &[
    "/logs",
    "/tests",
    "/solution",
    "/oracle",
    "/dev",
    "/proc",
    "/sys",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/var",
    "/run",
    "/tmp",
    "/nix",
    "/snap",
    "/kiln",
    "/output",
    "/opt/agent",
    "/opt/kiln",
];

/// A path a test refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// 1-based line in the test file.
    pub line: usize,
    /// As written (`/app/out.txt`), or relative to the workspace (`out.txt` for
    /// `$WORKSPACE/out.txt`).
    pub path: String,
    /// The tests write it somewhere (then it is theirs, not the agent's).
    pub written: bool,
}

/// The task files `text` (a test script) refers to, first occurrence of each.
pub fn references(text: &str) -> Vec<Reference> {
    let mut out: Vec<Reference> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#!") {
            continue;
        }
        for (path, written) in paths_in(line) {
            match out.iter_mut().find(|r| r.path == path) {
                Some(r) => r.written |= written,
                None => out.push(Reference {
                    line: i + 1,
                    path,
                    written,
                }),
            }
        }
    }
    out
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '+' | '@' | '%')
}

/// Words after which a path is written, not read.
const WRITES: &[&str] = &[">", ">>", "-o", "--output", "tee", "touch", "mkdir", "-p"];

/// Whether the word before byte `at` of `line` (quotes, commas and `=` aside) writes.
fn written_at(line: &str, at: usize) -> bool {
    let before = line[..at].trim_end_matches([' ', '\t', '"', '\'', ',', '=']);
    let word = before
        .rsplit([' ', '\t', '"', '\'', ',', '[', '(', '='])
        .next()
        .unwrap_or("");
    WRITES.contains(&word) || word.ends_with('>')
}

/// The absolute and workspace paths in one line, each with whether it is written there.
fn paths_in(line: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut k = 0;
    while k < chars.len() {
        let (at, c) = chars[k];
        let before = k.checked_sub(1).map(|j| chars[j].1);
        let mut start = None;
        let mut relative = false;
        if c == '/'
            && before.is_none_or(|b| {
                matches!(
                    b,
                    ' ' | '\t' | '"' | '\'' | '`' | '=' | '(' | '[' | ',' | '>' | '<'
                )
            })
        {
            start = Some(at);
        } else if c == '$' {
            for var in ["$WORKSPACE/", "${WORKSPACE}/"] {
                if line[at..].starts_with(var) {
                    start = Some(at + var.len());
                    relative = true;
                }
            }
        }
        let Some(s) = start else {
            k += 1;
            continue;
        };
        let end = line[s..]
            .find(|c: char| !is_path_char(c))
            .map_or(line.len(), |e| s + e);
        let next = line[end..].chars().next();
        let path = line[s..end].trim_end_matches(['.', '/', ',']);
        // A path built from a variable or a glob is not one file.
        let partial = matches!(next, Some('$') | Some('*') | Some('{') | Some('?'));
        if !partial && !path.starts_with("//") && (relative || wanted(path)) && !path.is_empty() {
            let from = if relative { at } else { s };
            out.push((path.to_string(), written_at(line, from)));
        }
        k = chars.partition_point(|(i, _)| *i < end.max(at + 1));
    }
    out
}

/// An absolute path that can be a task file: not a system or harness directory, and a
/// file (`/app/out.txt`, `/srv/data/x`), not a lone top directory (`/app`).
fn wanted(path: &str) -> bool {
    let components = path.split('/').filter(|c| !c.is_empty()).count();
    let top_file = components == 1 && path.contains('.');
    (components >= 2 || top_file)
        && !NOT_TASK_FILES
            .iter()
            .any(|d| path == *d || path.starts_with(&format!("{d}/")))
        // Dotfiles under root's home: tool caches and settings.
        && !path.starts_with("/root/.")
}

/// Whether `instruction` names `path`: the path itself, or its file name as a word.
pub fn is_named(instruction: &str, path: &str) -> bool {
    if instruction.contains(path) {
        return true;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    instruction.match_indices(name).any(|(at, _)| {
        let before = instruction[..at].chars().next_back();
        let mut rest = instruction[at + name.len()..].chars();
        let after = rest.next();
        let word = |c: Option<char>| {
            c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        };
        // `a.txt` in `Write a.txt.` ends a sentence: a dot then no word is punctuation.
        word(before)
            && (word(after) && after != Some('.') || (after == Some('.') && word(rest.next())))
    })
}

/// Whether the image or the runner provides `path` (a file or a directory above one).
pub fn is_provided(provided: &[String], path: &str) -> bool {
    provided
        .iter()
        .any(|p| p == path || p.strip_prefix(path).is_some_and(|r| r.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str) -> Vec<String> {
        references(text).into_iter().map(|r| r.path).collect()
    }

    #[test]
    fn paths_the_tests_write_are_theirs() {
        let t = "subprocess.run([\"nvcc\", \"/app/a.cu\", \"-o\", \"/app/a_test\"])\necho x > /app/config.txt\ncat /app/out.txt | tee /srv/copy.txt\ntouch /app/t\n";
        let written: Vec<(String, bool)> = references(t)
            .into_iter()
            .map(|r| (r.path, r.written))
            .collect();
        assert_eq!(
            written,
            [
                ("/app/a.cu".to_string(), false),
                ("/app/a_test".to_string(), true),
                ("/app/config.txt".to_string(), true),
                ("/app/out.txt".to_string(), false),
                ("/srv/copy.txt".to_string(), true),
                ("/app/t".to_string(), true),
            ]
        );
    }

    #[test]
    fn the_paths_a_test_refers_to() {
        let t = "#!/bin/bash\nif [ -f /app/hello.txt ] && grep -q ok \"/app/out/result.json\"; then\n  echo 1 > /logs/verifier/reward.txt\nfi\npath = Path(\"/app/hello.txt\")\ncurl http://localhost:8080/app/x\nls /app/$NAME /data/*.csv /usr/bin/env /app\ncat $WORKSPACE/answer.txt ${WORKSPACE}/in/a.csv /root/.local/bin/env\nopen file:///app/page.html\n";
        assert_eq!(
            paths(t),
            [
                "/app/hello.txt",
                "/app/out/result.json",
                "answer.txt",
                "in/a.csv"
            ]
        );
        assert_eq!(references(t)[0].line, 2);
    }

    #[test]
    fn named_by_path_or_file_name() {
        let i = "Create a file called hello.txt in /app. Write `/srv/out.json`.\n";
        assert!(is_named(i, "/app/hello.txt"));
        assert!(is_named(i, "/srv/out.json"));
        assert!(!is_named(i, "/app/result.txt"));
        assert!(!is_named("see hello.txt.bak", "/app/hello.txt"));
        assert!(is_named("Write hello.txt.", "/app/hello.txt"));
    }

    #[test]
    fn provided_files_and_their_directories() {
        let provided = vec!["/app/data/in.csv".to_string()];
        assert!(is_provided(&provided, "/app/data/in.csv"));
        assert!(is_provided(&provided, "/app/data"));
        assert!(!is_provided(&provided, "/app/dat"));
    }
}
