//! String templates between parsing and the tree: the flat pieces the parser reads (text,
//! `${ }`, `%{ }` markers) become nested `Part`s, the way Go's HCL does it: escapes are
//! decoded per piece, `~` trims only the neighbouring piece (a heredoc piece is at most
//! one line), `<<-` heredocs lose their common indentation, and directives are matched up.

use unicode_segmentation::UnicodeSegmentation;

use crate::ast::{Expr, Part};
use crate::error::{Error, Result};
use crate::source::Span;

/// One piece of a template as read, before directives are matched.
pub enum Piece {
    Lit(String),
    Interp(Expr),
    If(Expr, Span),
    Else(Span),
    EndIf(Span),
    For(Box<ForDirective>),
    EndFor(Span),
}

/// `%{ for key_var, value_var in collection }`, and where it is.
pub struct ForDirective {
    pub key_var: Option<String>,
    pub value_var: String,
    pub collection: Expr,
    pub span: Span,
}

/// An escape sequence that cannot be decoded: its byte range in the text, and why.
pub struct BadEscape {
    pub range: std::ops::Range<usize>,
    pub detail: String,
}

/// The value of a literal piece. Quoted strings decode backslash escapes; every template
/// turns `$${` and `%%{` into `${` and `%{`.
pub fn literal_value(text: &str, quoted: bool) -> Result<String, BadEscape> {
    let special = |c: &u8| matches!(c, b'$' | b'%') || (quoted && *c == b'\\');
    if !text.as_bytes().iter().any(special) {
        return Ok(text.to_string());
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Copies plain text in runs; `i` only ever stops on ASCII bytes, so slices are valid.
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            c @ (b'$' | b'%') if b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&b'{') => {
                out.push_str(&text[copied..i]);
                out.push(c as char);
                out.push('{');
                i += 3;
                copied = i;
            }
            b'\\' if quoted => {
                out.push_str(&text[copied..i]);
                i = escape(text, i, &mut out)?;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// Decodes the backslash escape at `at` into `out`; returns the offset after it.
fn escape(text: &str, at: usize, out: &mut String) -> Result<usize, BadEscape> {
    let Some(sel) = text[at + 1..].chars().next() else {
        return Err(BadEscape {
            range: at..at + 1,
            detail: "Backslash must be followed by an escape sequence selector character.".into(),
        });
    };
    let simple = match sel {
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        '"' => Some('"'),
        '\\' => Some('\\'),
        _ => None,
    };
    if let Some(c) = simple {
        out.push(c);
        return Ok(at + 2);
    }
    let want = match sel {
        'u' => 4,
        'U' => 8,
        _ => {
            let end = at + 1 + sel.len_utf8();
            return Err(BadEscape {
                range: at..end,
                detail: format!(
                    "The symbol {:?} is not a valid escape sequence selector.",
                    sel.to_string()
                ),
            });
        }
    };
    let digits = text[at + 2..]
        .bytes()
        .take(want)
        .take_while(u8::is_ascii_hexdigit)
        .count();
    let end = at + 2 + digits;
    if digits != want {
        let words = if want == 4 {
            ("u", "four")
        } else {
            ("U", "eight")
        };
        return Err(BadEscape {
            range: at..end,
            detail: format!(
                "The \\{} escape sequence must be followed by {} hexadecimal digits.",
                words.0, words.1
            ),
        });
    }
    let code = u32::from_str_radix(&text[at + 2..end], 16).unwrap_or(u32::MAX);
    match char::from_u32(code) {
        Some(c) => out.push(c),
        None => {
            return Err(BadEscape {
                range: at..end,
                detail: format!("Cannot encode character U+{code:04x} in UTF-8."),
            })
        }
    }
    Ok(end)
}

/// `<<-`: finds the least indentation of the lines (blank lines and lines starting with
/// an interpolation count as Go counts them) and removes that many leading characters
/// from each line's first piece.
pub fn flush_heredoc(pieces: &mut [Piece]) {
    let mut min = usize::MAX;
    let mut at_line_start = true;
    let mut adjust = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        if at_line_start {
            at_line_start = false;
            let spaces = match p {
                Piece::Lit(s) => {
                    let rest = s.trim_start();
                    if rest.is_empty() && s.ends_with('\n') {
                        usize::MAX
                    } else {
                        adjust.push(i);
                        indent_width(&s[..s.len() - rest.len()])
                    }
                }
                _ => 0,
            };
            min = min.min(spaces);
        }
        if let Piece::Lit(s) = p {
            at_line_start = s.ends_with('\n');
        }
    }
    for i in adjust {
        if let Piece::Lit(s) = &mut pieces[i] {
            let cut = if s.is_ascii() {
                min.min(s.len())
            } else {
                s.grapheme_indices(true)
                    .nth(min)
                    .map_or(s.len(), |(at, _)| at)
            };
            s.drain(..cut);
        }
    }
}

/// Columns of indentation: characters as the eye counts them (grapheme clusters).
fn indent_width(space: &str) -> usize {
    if space.is_ascii() {
        space.len()
    } else {
        space.graphemes(true).count()
    }
}

/// Joins literal pieces that ended up next to each other.
pub fn meld(pieces: &mut Vec<Piece>) {
    pieces.dedup_by(|next, prev| match (next, prev) {
        (Piece::Lit(next), Piece::Lit(prev)) => {
            prev.push_str(next);
            true
        }
        _ => false,
    });
}

/// Matches `if`/`else`/`endif` and `for`/`endfor` into nested parts. `end` is the closing
/// quote or heredoc marker, where an unclosed directive is reported. Like Go's template
/// parser it carries on after a mismatch, so the count of further errors is Go's.
pub fn nest(pieces: Vec<Piece>, end: Span) -> Result<Vec<Part>> {
    let mut n = Nester {
        it: pieces.into_iter(),
        end,
        errors: Vec::new(),
    };
    let mut out = Vec::new();
    while let Some(p) = n.it.next() {
        n.piece(p, &mut out);
    }
    let others = n.errors.len().saturating_sub(1);
    match n.errors.into_iter().next() {
        Some(e) => Err(e.with_others(others)),
        None => Ok(out),
    }
}

struct Nester {
    it: std::vec::IntoIter<Piece>,
    end: Span,
    errors: Vec<Error>,
}

impl Nester {
    fn error(&mut self, span: Span, summary: &str, detail: &str, related: Option<Span>) {
        let e = Error::diag(span, summary, detail);
        self.errors.push(match related {
            Some(r) => e.with_related(r),
            None => e,
        });
    }

    /// Adds one piece; an opening directive takes its body from the pieces that follow.
    fn piece(&mut self, p: Piece, out: &mut Vec<Part>) {
        const UNBALANCED: &str = "The control directives within this template are unbalanced.";
        match p {
            Piece::Lit(s) if s.is_empty() => {}
            Piece::Lit(s) => out.push(Part::Lit(s)),
            Piece::Interp(e) => out.push(Part::Interp(e)),
            Piece::If(cond, open) => self.if_directive(cond, open, out),
            Piece::For(f) => self.for_directive(*f, out),
            Piece::Else(s) => self.error(s, "Unexpected else directive", UNBALANCED, None),
            Piece::EndIf(s) => self.error(s, "Unexpected endif directive", UNBALANCED, None),
            Piece::EndFor(s) => self.error(s, "Unexpected endfor directive", UNBALANCED, None),
        }
    }

    fn if_directive(&mut self, cond: Expr, open: Span, out: &mut Vec<Part>) {
        let (mut then, mut otherwise, mut in_else) = (Vec::new(), Vec::new(), false);
        loop {
            match self.it.next() {
                None => {
                    let detail =
                        "The if directive at {range} is missing its corresponding endif directive.";
                    return self.error(self.end, "Unexpected end of template", detail, Some(open));
                }
                Some(Piece::Else(_)) if !in_else => in_else = true,
                Some(Piece::Else(s)) => {
                    let detail = "Already in the else clause for the if started at {range}.";
                    return self.error(s, "Unexpected else directive", detail, Some(open));
                }
                Some(Piece::EndIf(_)) => break,
                Some(Piece::EndFor(s)) => {
                    let detail = "Expecting an endif directive for the if started at {range}.";
                    return self.error(s, "Unexpected endfor directive", detail, Some(open));
                }
                Some(p) => self.piece(p, if in_else { &mut otherwise } else { &mut then }),
            }
        }
        out.push(Part::If {
            cond,
            then,
            otherwise,
        });
    }

    fn for_directive(&mut self, f: ForDirective, out: &mut Vec<Part>) {
        let ForDirective {
            key_var,
            value_var,
            collection,
            span: open,
        } = f;
        let mut body = Vec::new();
        loop {
            match self.it.next() {
                None => {
                    let detail = "The for directive at {range} is missing its corresponding \
                                  endfor directive.";
                    return self.error(self.end, "Unexpected end of template", detail, Some(open));
                }
                Some(Piece::EndFor(_)) => break,
                Some(Piece::Else(s)) => {
                    let detail = "An else clause is not expected for a for directive.";
                    return self.error(s, "Unexpected else directive", detail, None);
                }
                Some(Piece::EndIf(s)) => {
                    let detail = "Expecting an endfor directive corresponding to the for \
                                  directive at {range}.";
                    return self.error(s, "Unexpected endif directive", detail, Some(open));
                }
                Some(p) => self.piece(p, &mut body),
            }
        }
        out.push(Part::For {
            key_var,
            value_var,
            collection,
            body,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Piece {
        Piece::Lit(s.to_string())
    }

    fn texts(pieces: &[Piece]) -> Vec<&str> {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Lit(s) => s.as_str(),
                _ => "<expr>",
            })
            .collect()
    }

    #[test]
    fn escapes_decode_as_in_go() {
        assert_eq!(
            literal_value(r#"a\n\t\"\\\u00e9\U0001F600$${x}%%{y}$$$"#, true).ok(),
            Some("a\n\t\"\\é😀${x}%{y}$$$".to_string())
        );
        // Heredocs keep backslashes.
        assert_eq!(
            literal_value(r"a\n$${b}", false).ok(),
            Some(r"a\n${b}".to_string())
        );
        let bad = literal_value(r"ab\q", true).err().unwrap();
        assert_eq!(bad.range, 2..4);
        assert_eq!(
            bad.detail,
            "The symbol \"q\" is not a valid escape sequence selector."
        );
        let bad = literal_value(r"\u12", true).err().unwrap();
        assert_eq!(bad.range, 0..4);
        let bad = literal_value(r"\ud800", true).err().unwrap();
        assert_eq!(bad.detail, "Cannot encode character U+d800 in UTF-8.");
    }

    #[test]
    fn flush_removes_the_least_indentation_of_line_starts() {
        let mut p = vec![lit("    a\n"), lit("  b\n"), lit("\n"), lit("   c")];
        flush_heredoc(&mut p);
        assert_eq!(texts(&p), ["  a\n", "b\n", "\n", " c"]);
        // A line that starts with an interpolation has no indentation to give.
        let mut p = vec![lit("  a\n"), Piece::Else(Span::default()), lit("b\n")];
        flush_heredoc(&mut p);
        assert_eq!(texts(&p), ["  a\n", "<expr>", "b\n"]);
    }
}
