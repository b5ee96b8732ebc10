//! Rendering an argv as one line a person can paste into a POSIX shell.
//! Every printed command (dry runs, logs, error messages) goes through here, so
//! what is printed and what runs never drift apart.

use std::collections::BTreeMap;

/// Quotes one word for a POSIX shell; words made only of characters no shell
/// treats specially (image references, paths, `k=v`) stay as they are.
pub fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Joins an argv into one shell line, quoting each word as needed.
pub fn join(argv: &[String]) -> String {
    argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
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
