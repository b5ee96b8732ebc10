//! Just enough shell reading for the task rules: a script as logical lines (continuations
//! joined; comments, blank lines and heredoc bodies left out — a heredoc is usually
//! another language), and a line as simple commands (quotes removed, split at `;`, `&&`,
//! `||`, `|`, `&`, subshells and command substitutions). Not a shell parser: what a rule
//! cannot see this way (a URL built in Python, a command in a variable) it does not report.

/// One logical line: where it starts (1-based) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub text: String,
}

/// One simple command: its words, without the prefixes that only run it (`sudo`, `if`,
/// `VAR=value`, …), and whether its output is piped into the next command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<String>,
    pub piped: bool,
}

impl Command {
    /// The program's file name (`/usr/bin/pip3` → `pip3`).
    pub fn program(&self) -> &str {
        let first = self.words.first().map(String::as_str).unwrap_or("");
        first.rsplit('/').next().unwrap_or(first)
    }
    pub fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or(&[])
    }
}

/// The logical lines of `script`.
pub fn lines(script: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    // Heredoc terminators still to skip, in order, with whether `<<-` allows tabs.
    let mut heredocs: std::collections::VecDeque<(String, bool)> = Default::default();
    for (i, raw) in script.lines().enumerate() {
        if let Some((word, tabs)) = heredocs.front() {
            let body = if *tabs {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if body.trim_end() == word {
                heredocs.pop_front();
            }
            continue;
        }
        let trimmed = raw.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if pending.is_empty() {
            start = i + 1;
        }
        let continued = trimmed.ends_with('\\') && !trimmed.ends_with("\\\\");
        if continued {
            pending.push_str(&trimmed[..trimmed.len() - 1]);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        heredocs.extend(heredoc_openers(&pending));
        out.push(Line {
            number: start,
            text: std::mem::take(&mut pending),
        });
    }
    if !pending.is_empty() {
        out.push(Line {
            number: start,
            text: pending,
        });
    }
    out
}

/// The terminators of the heredocs `line` opens, outside quotes (`<<EOF`, `<<-'EOF'`; a
/// here-string `<<<` opens none).
fn heredoc_openers(line: &str) -> Vec<(String, bool)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let (mut single, mut double) = (false, false);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if !single => i += 1,
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'<' if !single && !double && b.get(i + 1) == Some(&b'<') => {
                if b.get(i + 2) == Some(&b'<') {
                    i += 3;
                    continue;
                }
                let mut j = i + 2;
                let tabs = b.get(j) == Some(&b'-');
                if tabs {
                    j += 1;
                }
                while b.get(j).is_some_and(|c| *c == b' ' || *c == b'\t') {
                    j += 1;
                }
                if matches!(b.get(j), Some(b'\'') | Some(b'"')) {
                    j += 1;
                }
                let w0 = j;
                while b
                    .get(j)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    j += 1;
                }
                if j > w0 {
                    out.push((line[w0..j].to_string(), tabs));
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Words that only say how or whether the command runs: left out so the program comes first.
const PREFIXES: &[&str] = &[
    "if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "time", "exec", "sudo",
    "nohup", "command", "env", "timeout", "xargs",
];

/// The simple commands of one logical line.
pub fn commands(line: &str) -> Vec<Command> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut single = false;
    let mut double = false;
    // Double-quote states to restore when a `$(…)` opened inside quotes closes.
    let mut subst: Vec<bool> = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let finish_word = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    let finish = |out: &mut Vec<Command>, words: &mut Vec<String>, piped: bool| {
        let cmd = strip_prefixes(std::mem::take(words));
        if !cmd.is_empty() {
            out.push(Command { words: cmd, piped });
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if single {
            if c == '\'' {
                single = false;
            } else {
                word.push(c);
            }
            i += 1;
            continue;
        }
        match c {
            '\\' => {
                if let Some(n) = next {
                    word.push(n);
                    in_word = true;
                }
                i += 2;
                continue;
            }
            '\'' if !double => {
                single = true;
                in_word = true;
            }
            '"' => {
                // Only an opening quote makes a word (`""` alone is none; fine here).
                in_word |= !double;
                double = !double;
            }
            '$' if next == Some('(') => {
                // A command substitution: its command is a command of its own.
                finish_word(&mut words, &mut word, &mut in_word);
                finish(&mut out, &mut words, false);
                subst.push(double);
                double = false;
                i += 2;
                continue;
            }
            ')' if !double && !subst.is_empty() => {
                finish_word(&mut words, &mut word, &mut in_word);
                finish(&mut out, &mut words, false);
                double = subst.pop().unwrap_or(false);
            }
            _ if double => word.push(c),
            '#' if !in_word => break, // a comment to the end of the line
            ' ' | '\t' => finish_word(&mut words, &mut word, &mut in_word),
            ';' | '(' | ')' | '`' => {
                finish_word(&mut words, &mut word, &mut in_word);
                finish(&mut out, &mut words, false);
            }
            '|' => {
                finish_word(&mut words, &mut word, &mut in_word);
                let or = next == Some('|');
                finish(&mut out, &mut words, !or);
                if or || next == Some('&') {
                    i += 1;
                }
            }
            '&' if word.ends_with('>') || word.ends_with('<') || next == Some('>') => {
                word.push(c); // `2>&1`, `&>file`: a redirection
                in_word = true;
            }
            '&' => {
                finish_word(&mut words, &mut word, &mut in_word);
                finish(&mut out, &mut words, false);
                if next == Some('&') {
                    i += 1;
                }
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    finish_word(&mut words, &mut word, &mut in_word);
    finish(&mut out, &mut words, false);
    out
}

/// Leaves out keywords, `sudo -E`, `env -i`, `timeout 60` and `VAR=value` before the program.
fn strip_prefixes(words: Vec<String>) -> Vec<String> {
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        if PREFIXES.contains(&w) {
            i += 1;
            // Their own options and, for timeout, the duration.
            while i < words.len()
                && (words[i].starts_with('-')
                    || (w == "timeout" && words[i].starts_with(|c: char| c.is_ascii_digit())))
            {
                i += 1;
            }
        } else if is_assignment(w) {
            i += 1;
        } else {
            break;
        }
    }
    words[i..].to_vec()
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<String>> {
        commands(line).into_iter().map(|c| c.words).collect()
    }

    #[test]
    fn lines_join_continuations_and_skip_comments_and_heredocs() {
        let script = "#!/bin/bash\n# a comment\n\napt-get install -y \\\n  curl\npython3 - <<'PY'\nimport os\nPY\ncat <<-EOF > x\n\tpip install y\n\tEOF\necho done\n";
        let got: Vec<(usize, String)> = lines(script)
            .into_iter()
            .map(|l| (l.number, l.text))
            .collect();
        let got: Vec<(usize, &str)> = got.iter().map(|(n, t)| (*n, t.as_str())).collect();
        assert_eq!(
            got,
            [
                (4, "apt-get install -y  curl"),
                (6, "python3 - <<'PY'"),
                (9, "cat <<-EOF > x"),
                (12, "echo done")
            ]
        );
    }

    #[test]
    fn commands_split_at_operators_quotes_and_substitutions() {
        assert_eq!(
            words("curl -LsSf https://x.org/i.sh | sh && echo 'a; b' 2>&1 # c"),
            [
                vec!["curl", "-LsSf", "https://x.org/i.sh"],
                vec!["sh"],
                vec!["echo", "a; b", "2>&1"]
            ]
        );
        let c = commands("curl https://x.org | bash");
        assert!(c[0].piped && !c[1].piped);
        assert_eq!(
            words(
                "if sudo -E FOO=1 pip install \"a==1\"; then x=\"$(wget -qO- https://h.io/f)\"; fi"
            ),
            [
                vec!["pip", "install", "a==1"],
                vec!["wget", "-qO-", "https://h.io/f"],
                vec!["fi"]
            ]
        );
        assert_eq!(commands("/usr/bin/pip3 install x")[0].program(), "pip3");
        assert_eq!(words("timeout 60 uvx ruff"), [vec!["uvx", "ruff"]]);
    }
}
