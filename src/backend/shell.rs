//! Rendering an argv as one line a person can paste into a POSIX shell.
//! Every printed command (dry runs, logs, error messages) goes through here, so
//! what is printed and what runs never drift apart.

use std::collections::BTreeMap;

/// Quotes one word for a POSIX shell; words made only of characters no shell
/// treats specially (image references, paths, `k=v`) stay as they are.
pub fn quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    push_quoted(&mut out, &[word]);
    out
}

/// Joins an argv into one shell line, quoting each word as needed.
pub fn join(argv: &[String]) -> String {
    let mut line = Line::default();
    for word in argv {
        line.word(&[word]);
    }
    line.text
}

/// Bytes no shell treats specially, as a table (a dry run checks every byte it prints).
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'/' | b':' | b'=' | b'@' | b'%' | b'+' | b','
            );
        c += 1;
    }
    t
};

fn is_plain(part: &str) -> bool {
    // Eight bytes at a time without a branch per byte: almost every word is plain.
    let mut chunks = part.as_bytes().chunks_exact(8);
    let plain = |bytes: &[u8]| {
        bytes
            .iter()
            .fold(true, |all, &c| all & PLAIN[usize::from(c)])
    };
    chunks.all(plain) && plain(chunks.remainder())
}

/// Appends the word made of `parts` (concatenated) to `out`, quoted as [`quote`] says;
/// parts spare a dry run one `format!` per `k=v` word.
fn push_quoted(out: &mut String, parts: &[&str]) {
    if parts.iter().any(|p| !p.is_empty()) && parts.iter().all(|p| is_plain(p)) {
        parts.iter().for_each(|p| out.push_str(p));
        return;
    }
    out.push('\'');
    for p in parts {
        // Split at each `'` rather than `replace`, which would allocate.
        let mut pieces = p.split('\'');
        out.push_str(pieces.next().unwrap_or_default());
        for piece in pieces {
            out.push_str(r"'\''");
            out.push_str(piece);
        }
    }
    out.push('\'');
}

/// One shell line built word by word, quoted as it grows (what [`join`] returns, with
/// no intermediate argv; see [`crate::backend::Argv`]).
#[derive(Debug, Default)]
pub struct Line {
    pub text: String,
}

impl Line {
    /// Appends one word made of `parts`, concatenated.
    pub fn word(&mut self, parts: &[&str]) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        push_quoted(&mut self.text, parts);
    }
}

/// Like [`join`], prefixed with `NAME=value` environment assignments (sorted by name).
pub fn join_with_env(env: &BTreeMap<String, String>, argv: &[String]) -> String {
    let mut words: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    words.push(join(argv));
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        let argv: Vec<String> = [
            "podman",
            "build",
            "--label",
            "a=b c",
            "it's",
            "--build-arg",
            "X=$HOME",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            join(&argv),
            r#"podman build --label 'a=b c' 'it'\''s' --build-arg 'X=$HOME'"#
        );
    }

    #[test]
    fn empty_word_is_visible() {
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn env_prefix() {
        let env = BTreeMap::from([("EVAL_TASK_ID".to_string(), "Task One".to_string())]);
        assert_eq!(
            join_with_env(&env, &["docker".into()]),
            "EVAL_TASK_ID='Task One' docker"
        );
    }
}
