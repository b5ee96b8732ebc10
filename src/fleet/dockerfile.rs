//! Just enough Dockerfile reading for the plan and lint: instructions with their line
//! numbers, `ARG`/`ENV` names, and the images a Dockerfile builds on (`FROM`,
//! `COPY --from`) with build args substituted.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// One instruction: its keyword (upper case), its arguments (continuations joined) and
/// the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    pub keyword: String,
    pub args: String,
    /// The bodies of the heredocs it opens (`RUN python3 <<EOF` … `EOF`), lines joined.
    pub heredoc: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
    /// What [`Dockerfile::bases`] reads, picked out once: a plan asks for every image.
    steps: Vec<Step>,
}

/// An instruction that names a base or a value a base can use, already split into words.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// One `ARG name[=default]` word before the first `FROM` (the default unquoted).
    Arg {
        name: String,
        default: Option<String>,
    },
    /// `FROM <image> [AS <alias>]` (alias empty when there is none).
    From {
        line: usize,
        image: String,
        alias: String,
    },
    /// `COPY --from=<image>` or `ADD --from=<image>`.
    CopyFrom { line: usize, image: String },
}

fn steps(instructions: &[Instruction]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut seen_from = false;
    for ins in instructions {
        match ins.keyword.as_str() {
            "ARG" if !seen_from => {
                for word in ins.args.split_whitespace() {
                    let (name, default) = match word.split_once('=') {
                        Some((n, d)) => (n, Some(unquote(d))),
                        None => (word, None),
                    };
                    let name = name.to_string();
                    steps.push(Step::Arg { name, default });
                }
            }
            "FROM" => {
                seen_from = true;
                let mut words = ins.args.split_whitespace().filter(|w| !w.starts_with("--"));
                let Some(image) = words.next() else {
                    continue;
                };
                let alias = match (words.next(), words.next(), words.next()) {
                    (Some(kw), Some(alias), None) if kw.eq_ignore_ascii_case("as") => alias,
                    _ => "",
                };
                steps.push(Step::From {
                    line: ins.line,
                    image: image.to_string(),
                    alias: alias.to_string(),
                });
            }
            "COPY" | "ADD" => {
                let flags = ins
                    .args
                    .split_whitespace()
                    .take_while(|w| w.starts_with("--"));
                for from in flags.filter_map(|w| w.strip_prefix("--from=")) {
                    steps.push(Step::CopyFrom {
                        line: ins.line,
                        image: from.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    steps
}

/// An image a Dockerfile builds on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRef {
    pub line: usize,
    /// The reference as written (`${BASE_IMAGE}`).
    pub written: String,
    /// With build args and `ARG` defaults substituted.
    pub image: String,
}

impl Dockerfile {
    pub fn parse(text: &str) -> Dockerfile {
        let mut escape = '\\';
        let mut instructions = Vec::new();
        let mut pending: Option<(usize, String)> = None;
        let mut in_directives = true;
        // Heredoc bodies (`RUN cat > f <<'EOF'` … `EOF`) still to skip, in order: their
        // lines are file content, never instructions (a Python `from x import y` is no FROM).
        let mut heredocs: std::collections::VecDeque<(String, bool)> = Default::default();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            if let Some((word, strip_tabs)) = heredocs.front() {
                let body = if *strip_tabs {
                    raw.trim_start_matches('\t')
                } else {
                    raw
                };
                if body == word {
                    heredocs.pop_front();
                } else if let Some(last) = instructions.last_mut() {
                    let last: &mut Instruction = last;
                    last.heredoc.push_str(body);
                    last.heredoc.push('\n');
                }
                continue;
            }
            let trimmed = raw.trim();
            if in_directives {
                if let Some(d) = trimmed.strip_prefix('#') {
                    if let Some((k, v)) = d.split_once('=') {
                        if k.trim().eq_ignore_ascii_case("escape") && v.trim() == "`" {
                            escape = '`';
                        }
                        continue;
                    }
                }
                in_directives = false;
            }
            if pending.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            if pending.is_some() && trimmed.starts_with('#') {
                continue; // comment lines inside a continuation are dropped
            }
            let (body, continues) = match trimmed.strip_suffix(escape) {
                Some(b) => (b, true),
                None => (trimmed, false),
            };
            let (start, mut acc) = pending.take().unwrap_or((line_no, String::new()));
            if !acc.is_empty() {
                acc.push(' ');
            }
            acc.push_str(body.trim());
            if continues {
                pending = Some((start, acc));
            } else {
                heredocs.extend(heredoc_words(&acc));
                instructions.push(split_instruction(start, &acc));
            }
        }
        if let Some((start, acc)) = pending {
            instructions.push(split_instruction(start, &acc));
        }
        let steps = steps(&instructions);
        Dockerfile {
            instructions,
            steps,
        }
    }

    /// `(line, name)` of every `ARG` and `ENV` variable the Dockerfile declares.
    pub fn declared_variables(&self) -> Vec<(usize, &'static str, String)> {
        let mut out = Vec::new();
        for ins in &self.instructions {
            match ins.keyword.as_str() {
                "ARG" => {
                    for word in ins.args.split_whitespace() {
                        let name = word.split_once('=').map_or(word, |(n, _)| n);
                        out.push((ins.line, "ARG", name.to_string()));
                    }
                }
                "ENV" => {
                    let words: Vec<&str> = ins.args.split_whitespace().collect();
                    if words.first().is_some_and(|w| !w.contains('=')) {
                        out.push((ins.line, "ENV", words[0].to_string())); // legacy `ENV k v`
                    } else {
                        for w in words {
                            if let Some((name, _)) = w.split_once('=') {
                                out.push((ins.line, "ENV", name.to_string()));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The images this Dockerfile builds on: every `FROM` and `COPY/ADD --from=` that is not
    /// an earlier stage, a stage index or `scratch`, with `args` (then `ARG` defaults before the
    /// first `FROM`) substituted.
    pub fn bases(&self, args: &BTreeMap<String, String>) -> Vec<BaseRef> {
        let mut out = Vec::new();
        self.each_base(args, |line, written, image| {
            out.push(BaseRef {
                line,
                written: written.to_string(),
                image,
            })
        });
        out
    }

    /// [`Dockerfile::bases`] one at a time: `(line, as written, image)`.
    pub fn each_base(
        &self,
        args: &BTreeMap<String, String>,
        mut push: impl FnMut(usize, &str, String),
    ) {
        let mut meta: Vec<(&str, Cow<str>)> = Vec::new();
        let mut stages: Vec<&str> = Vec::new();
        for step in &self.steps {
            match step {
                Step::Arg { name, default } => {
                    let value = match args.get(name) {
                        Some(v) => Some(Cow::Borrowed(v.as_str())),
                        None => default
                            .as_ref()
                            .map(|d| expand(d, |n| find(&meta, n)).into()),
                    };
                    if let Some(v) = value {
                        meta.push((name, v));
                    }
                }
                Step::From { line, image, alias } => {
                    let expanded = expand(image, |n| find(&meta, n));
                    let is_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(&expanded));
                    stages.push(alias);
                    if !is_stage && expanded != "scratch" {
                        push(*line, image, expanded);
                    }
                }
                Step::CopyFrom { line, image } => {
                    let expanded = expand(image, |n| find(&meta, n));
                    let is_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(&expanded))
                        || expanded.bytes().all(|b| b.is_ascii_digit());
                    if !is_stage {
                        push(*line, image, expanded);
                    }
                }
            }
        }
    }
}

impl Dockerfile {
    /// The `LABEL`s of the final stage (what the built image carries from its Dockerfile),
    /// with `args` and the `ARG` defaults in scope substituted; a later key wins.
    pub fn labels(&self, args: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut global: BTreeMap<String, String> = BTreeMap::new();
        let mut stage: BTreeMap<String, String> = BTreeMap::new();
        let mut labels = BTreeMap::new();
        let mut seen_from = false;
        for ins in &self.instructions {
            match ins.keyword.as_str() {
                "FROM" => {
                    seen_from = true;
                    stage.clear();
                    labels.clear();
                }
                "ARG" => {
                    for word in ins.args.split_whitespace() {
                        let (name, default) = match word.split_once('=') {
                            Some((n, d)) => (n, Some(unquote(d))),
                            None => (word, None),
                        };
                        let value = args
                            .get(name)
                            .cloned()
                            .or(default)
                            .or_else(|| global.get(name).cloned());
                        let scope = if seen_from { &mut stage } else { &mut global };
                        if let Some(v) = value {
                            scope.insert(name.to_string(), v);
                        }
                    }
                }
                "LABEL" => {
                    let words = split_words(&ins.args);
                    let pairs: Vec<(String, String)> =
                        if words.len() >= 2 && !words[0].contains('=') {
                            vec![(words[0].clone(), words[1..].join(" "))] // legacy `LABEL k v`
                        } else {
                            words
                                .iter()
                                .filter_map(|w| w.split_once('='))
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect()
                        };
                    for (k, v) in pairs {
                        let v = expand(&v, |n| stage.get(n).map(String::as_str));
                        labels.insert(k, v);
                    }
                }
                _ => {}
            }
        }
        labels
    }
}

/// Splits `k="a b" c=d` into shell-like words: quotes grouped and removed, `\` escapes
/// the next character outside single quotes.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The terminators of the heredocs an instruction opens (`<<EOF`, `<<-EOF`, `<<'EOF'`,
/// `<<"EOF"`), with whether tabs before the terminator are allowed (`<<-`).
fn heredoc_words(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("<<") {
        let mut after = &rest[at + 2..];
        let strip_tabs = after.starts_with('-');
        if strip_tabs {
            after = &after[1..];
        }
        let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"');
        let body = if quote.is_some() { &after[1..] } else { after };
        let end = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let word = &body[..end];
        if !word.is_empty() && word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            out.push((word.to_string(), strip_tabs));
        }
        rest = &body[end..];
    }
    out
}

/// The value of `name` among the `ARG`s read so far (the last one wins).
fn find<'m>(meta: &'m [(&str, Cow<str>)], name: &str) -> Option<&'m str> {
    meta.iter()
        .rev()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_ref())
}

fn split_instruction(line: usize, text: &str) -> Instruction {
    let (kw, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    Instruction {
        line,
        keyword: kw.to_ascii_uppercase(),
        args: rest.trim().to_string(),
        heredoc: String::new(),
    }
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

/// `inner.split_once(":-")` (or `":+"`) without building a substring searcher: a plan
/// expands the `FROM` lines of every image.
fn split_at_op(inner: &str, op: u8) -> Option<(&str, &str)> {
    let at = inner.as_bytes().windows(2).position(|w| w == [b':', op])?;
    Some((&inner[..at], &inner[at + 2..]))
}

/// Substitutes `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}` with what `get`
/// says; unknown variables become empty, as in a Dockerfile.
pub fn expand<'v>(s: &str, get: impl Fn(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            if let Some(end) = braced.find('}') {
                let inner = &braced[..end];
                if let Some((name, default)) = split_at_op(inner, b'-') {
                    out.push_str(get(name).filter(|v| !v.is_empty()).unwrap_or(default));
                } else if let Some((name, alt)) = split_at_op(inner, b'+') {
                    if get(name).is_some_and(|v| !v.is_empty()) {
                        out.push_str(alt);
                    }
                } else {
                    out.push_str(get(inner).unwrap_or_default());
                }
                rest = &braced[end + 1..];
                continue;
            }
        } else if after.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic()) {
            let end = after
                .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                .unwrap_or(after.len());
            out.push_str(get(&after[..end]).unwrap_or_default());
            rest = &after[end..];
            continue;
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredoc_bodies_are_not_instructions() {
        let df = Dockerfile::parse(
            "FROM a\nRUN cat > /x.py <<'PY' && python3 <<-EOF\nfrom os import path\nLABEL no=1\nPY\n\tfrom b\n\tEOF\nLABEL yes=1\n",
        );
        let kw: Vec<&str> = df.instructions.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(kw, ["FROM", "RUN", "LABEL"]);
        assert_eq!(df.labels(&BTreeMap::new())["yes"], "1");
        assert_eq!(heredoc_words("echo a << b"), []); // `<< b` is no heredoc word
    }

    #[test]
    fn labels_of_the_final_stage_with_args() {
        let df = Dockerfile::parse(
            "ARG REG=r\nFROM ${REG}/a AS data\nLABEL eval.type=\"data\"\nFROM ${REG}/b\nARG V=1.2\nLABEL eval.type=\"agent\" \\\n  eval.agent.version=\"${V}\" d='two words'\nLABEL maintainer someone else\n",
        );
        let got = df.labels(&BTreeMap::new());
        assert_eq!(got["eval.type"], "agent");
        assert_eq!(got["eval.agent.version"], "1.2");
        assert_eq!(got["d"], "two words");
        assert_eq!(got["maintainer"], "someone else");
        let args = BTreeMap::from([("V".to_string(), "9".to_string())]);
        assert_eq!(df.labels(&args)["eval.agent.version"], "9");
    }

    #[test]
    fn bases_with_args_stages_and_lines() {
        let df = Dockerfile::parse(
            "# syntax=docker/dockerfile:1\nARG BENCH\nARG AGENT=x/agent:1\nFROM ${AGENT} AS agent\n\
             FROM scratch AS empty\nFROM $BENCH\nCOPY --from=agent /a /a\nCOPY --from=other/img:2 \\\n  /b /b\n",
        );
        let args = BTreeMap::from([("BENCH".to_string(), "r/b:dev".to_string())]);
        let bases: Vec<(usize, String)> = df
            .bases(&args)
            .into_iter()
            .map(|b| (b.line, b.image))
            .collect();
        assert_eq!(
            bases,
            vec![
                (4, "x/agent:1".to_string()),
                (6, "r/b:dev".to_string()),
                (8, "other/img:2".to_string())
            ]
        );
    }

    #[test]
    fn expands_like_a_dockerfile() {
        let get = |n: &str| match n {
            "A" => Some("a"),
            "EMPTY" => Some(""),
            _ => None,
        };
        for (s, want) in [
            ("$A/${A}:${EMPTY:-d}${A:-d}", "a/a:da"),
            ("${A:+alt}${EMPTY:+alt}${NONE:+alt}", "alt"),
            ("$A_B-$NONE-", "--"),
            ("$1 $ ${A", "$1 $ ${A"),
            ("x$", "x$"),
        ] {
            assert_eq!(expand(s, get), want, "{s}");
        }
    }

    #[test]
    fn declared_variables() {
        let df = Dockerfile::parse("FROM a\nARG A=1 B\nENV X=1 Y=2\nENV LEGACY value here\n");
        let names: Vec<String> = df
            .declared_variables()
            .into_iter()
            .map(|(_, _, n)| n)
            .collect();
        assert_eq!(names, ["A", "B", "X", "Y", "LEGACY"]);
    }
}
