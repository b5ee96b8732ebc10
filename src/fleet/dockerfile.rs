//! Just enough Dockerfile reading for the plan and lint: instructions with their line
//! numbers, `ARG`/`ENV` names, and the images a Dockerfile builds on (`FROM`,
//! `COPY --from`) with build args substituted.

use std::collections::BTreeMap;

/// One instruction: its keyword (upper case), its arguments (continuations joined) and
/// the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    pub keyword: String,
    pub args: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
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
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
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
                instructions.push(split_instruction(start, &acc));
            }
        }
        if let Some((start, acc)) = pending {
            instructions.push(split_instruction(start, &acc));
        }
        Dockerfile { instructions }
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
        let mut meta: BTreeMap<String, String> = BTreeMap::new();
        let mut stages: Vec<String> = Vec::new();
        let mut out: Vec<BaseRef> = Vec::new();
        let mut seen_from = false;
        for ins in &self.instructions {
            match ins.keyword.as_str() {
                "ARG" if !seen_from => {
                    for word in ins.args.split_whitespace() {
                        let (name, default) = match word.split_once('=') {
                            Some((n, d)) => (n, Some(unquote(d))),
                            None => (word, None),
                        };
                        let value = args
                            .get(name)
                            .cloned()
                            .or_else(|| default.map(|d| expand(&d, &meta)));
                        if let Some(v) = value {
                            meta.insert(name.to_string(), v);
                        }
                    }
                }
                "FROM" => {
                    seen_from = true;
                    let words: Vec<&str> = ins
                        .args
                        .split_whitespace()
                        .filter(|w| !w.starts_with("--"))
                        .collect();
                    let Some(written) = words.first() else {
                        continue;
                    };
                    let image = expand(written, &meta);
                    if let [_, kw, alias] = words[..] {
                        if kw.eq_ignore_ascii_case("as") {
                            stages.push(alias.to_ascii_lowercase());
                        }
                    } else {
                        stages.push(String::new());
                    }
                    let is_stage = stages[..stages.len() - 1].contains(&image.to_ascii_lowercase());
                    if !is_stage && image != "scratch" {
                        out.push(BaseRef {
                            line: ins.line,
                            written: written.to_string(),
                            image,
                        });
                    }
                }
                "COPY" | "ADD" => {
                    for word in ins
                        .args
                        .split_whitespace()
                        .take_while(|w| w.starts_with("--"))
                    {
                        if let Some(from) = word.strip_prefix("--from=") {
                            let image = expand(from, &meta);
                            let is_stage = stages.contains(&image.to_ascii_lowercase())
                                || image.bytes().all(|b| b.is_ascii_digit());
                            if !is_stage {
                                out.push(BaseRef {
                                    line: ins.line,
                                    written: from.to_string(),
                                    image,
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn split_instruction(line: usize, text: &str) -> Instruction {
    let (kw, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    Instruction {
        line,
        keyword: kw.to_ascii_uppercase(),
        args: rest.trim().to_string(),
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

/// Substitutes `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}`; unknown variables
/// become empty, as in a Dockerfile.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'{' {
                if let Some(end) = s[i + 2..].find('}') {
                    let inner = &s[i + 2..i + 2 + end];
                    let value = if let Some((name, def)) = inner.split_once(":-") {
                        vars.get(name)
                            .filter(|v| !v.is_empty())
                            .cloned()
                            .unwrap_or_else(|| def.to_string())
                    } else if let Some((name, alt)) = inner.split_once(":+") {
                        if vars.get(name).is_some_and(|v| !v.is_empty()) {
                            alt.to_string()
                        } else {
                            String::new()
                        }
                    } else {
                        vars.get(inner).cloned().unwrap_or_default()
                    };
                    out.push_str(&value);
                    i += 3 + end;
                    continue;
                }
            } else if b[i + 1] == b'_' || b[i + 1].is_ascii_alphabetic() {
                let end = s[i + 1..]
                    .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                    .map_or(s.len(), |e| i + 1 + e);
                out.push_str(vars.get(&s[i + 1..end]).map_or("", String::as_str));
                i = end;
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
