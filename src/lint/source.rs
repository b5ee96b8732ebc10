//! Line numbers in bake files: where a `target`/`group` block starts and where a key or
//! a word appears inside it. A plain text scan: bake files are HCL written by people,
//! and a line number is a pointer for them, not a parse.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub(crate) struct BakeSource {
    /// Relative to the repository root.
    pub path: PathBuf,
    pub lines: Vec<String>,
}

/// A block header found in a bake file.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub kind: String,
    pub name: String,
    /// 1-based line of the header.
    pub line: usize,
    /// 1-based line of the last line of the block (its closing brace, or the file's end).
    pub end: usize,
}

impl BakeSource {
    pub fn new(path: PathBuf, text: &str) -> BakeSource {
        BakeSource {
            path,
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    /// Every `target "x"`, `group "x"`, `variable "x"` and `function "x"` block, in order.
    pub fn blocks(&self) -> Vec<Block> {
        let mut out: Vec<Block> = Vec::new();
        let mut depth: i64 = 0;
        for (i, line) in self.lines.iter().enumerate() {
            let code = strip_comment(line);
            if depth == 0 {
                let t = code.trim_start();
                for kind in ["target", "group", "variable", "function"] {
                    if let Some(rest) = t.strip_prefix(kind) {
                        let rest = rest.trim_start();
                        if let Some(rest) = rest.strip_prefix('"') {
                            if let Some(end) = rest.find('"') {
                                out.push(Block {
                                    kind: kind.into(),
                                    name: rest[..end].to_string(),
                                    line: i + 1,
                                    end: self.lines.len(),
                                });
                            }
                        }
                    }
                }
            }
            for c in code.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            if let Some(b) = out.last_mut() {
                                if b.end == self.lines.len() && b.line <= i + 1 {
                                    b.end = i + 1;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// The first line in `from..=to` (1-based) containing `needle`, if any.
    pub fn find(&self, from: usize, to: usize, needle: &str) -> Option<usize> {
        (from..=to.min(self.lines.len()))
            .find(|&n| strip_comment(&self.lines[n - 1]).contains(needle))
    }

    /// Every line (1-based) containing `word` as a whole identifier, outside comments.
    pub fn word_lines(&self, word: &str) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let code = strip_comment(line);
            let mut start = 0;
            while let Some(pos) = code[start..].find(word) {
                let a = start + pos;
                let b = a + word.len();
                let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
                let before = code[..a].chars().next_back().is_none_or(|c| !ident(c));
                let after = code[b..].chars().next().is_none_or(|c| !ident(c));
                if before && after {
                    out.push(i + 1);
                    break;
                }
                start = b;
            }
        }
        out
    }
}

/// The line without a `#` or `//` comment (ignoring markers inside strings).
fn strip_comment(line: &str) -> &str {
    let mut in_str = false;
    let mut prev = '\0';
    for (i, c) in line.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '#' if !in_str => return &line[..i],
            '/' if !in_str && prev == '/' => return &line[..i - 1],
            _ => {}
        }
        prev = c;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_words() {
        let src = BakeSource::new(
            "x.hcl".into(),
            "# target \"no\"\nvariable \"A\" {\n  default = \"\"\n}\n\ntarget \"t\" {\n  labels = {\n    \"k\" = A # A\n  }\n}\n",
        );
        let blocks = src.blocks();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[1].name.as_str(), blocks[1].line, blocks[1].end),
            ("t", 6, 10)
        );
        assert_eq!(src.word_lines("A"), vec![2, 8]);
        assert_eq!(src.find(6, 10, "\"k\""), Some(8));
    }
}
