//! HCL native syntax, first stage: text to tokens, cut where Go's hashicorp/hcl v2 scanner
//! (buildx's) cuts, so the parser sees the same stream and errors land where buildx puts
//! them.
//!
//! The scanner has modes: expressions (`Main`), quoted strings, heredocs, and bare
//! templates (the strings of HCL-JSON files). `${` and `%{` switch a template to `Main`;
//! the `}` that ends them is told from an ordinary one by counting braces, as Go does.
//! Like Go's, the scanner never fails: text it cannot use becomes a token that `check`
//! reports and the parser refuses.

/// What a token is; its text is the source between `start` and `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ident,
    Number,
    OBrace,
    CBrace,
    OBrack,
    CBrack,
    OParen,
    CParen,
    /// `"` opening a quoted template, and the one closing it.
    OQuote,
    CQuote,
    /// `<<EOT` or `<<-EOT` with its newline, and the line holding the closing marker.
    OHeredoc,
    CHeredoc,
    Star,
    Slash,
    Plus,
    Minus,
    Percent,
    Equal,
    EqualOp,
    NotEqual,
    Less,
    LessEq,
    Greater,
    GreaterEq,
    And,
    Or,
    Bang,
    Dot,
    Comma,
    Ellipsis,
    FatArrow,
    Question,
    Colon,
    /// `${` or `${~`.
    TemplateInterp,
    /// `%{` or `%{~`.
    TemplateControl,
    /// The `}` or `~}` closing an interpolation or directive.
    TemplateSeqEnd,
    /// Literal text of a quoted string, escapes not yet decoded.
    QuotedLit,
    /// Literal text of a heredoc or bare template, at most one line (with its newline).
    StringLit,
    /// A newline, or a `#`/`//` comment with the newline that ends it (Go's parser reads
    /// such a comment as a newline).
    Newline,
    Eof,
    // Tokens that are always errors, kept so that the parser fails on them as Go's does.
    /// A newline inside a quoted string.
    QuotedNewline,
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
    BitwiseNot,
    Semicolon,
    Backtick,
    Apostrophe,
    Invalid,
}

#[derive(Clone, Copy, Debug)]
pub struct Token {
    pub kind: Kind,
    pub start: u32,
    pub end: u32,
}

/// Where scanning starts: a whole file, or a bare template (a JSON string).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Config,
    Template,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Main,
    Quoted,
    Heredoc,
    Bare,
}

struct Heredoc {
    marker: std::ops::Range<usize>,
    /// Whether the next literal starts a line (only such a line can close the heredoc).
    start_of_line: bool,
}

/// Cuts `src` into tokens; the last one is always `Eof`.
pub fn lex(src: &str, start: Start) -> Vec<Token> {
    let mut lx = Lexer {
        b: src.as_bytes(),
        src,
        pos: 0,
        toks: Vec::with_capacity(src.len() / 4 + 4),
        modes: vec![match start {
            Start::Config => Mode::Main,
            Start::Template => Mode::Bare,
        }],
        braces: 0,
        ret_braces: Vec::new(),
        heredocs: Vec::new(),
    };
    lx.run();
    let end = src.len() as u32;
    lx.toks.push(Token {
        kind: Kind::Eof,
        start: end,
        end,
    });
    lx.toks
}

struct Lexer<'a> {
    b: &'a [u8],
    src: &'a str,
    pos: usize,
    toks: Vec<Token>,
    /// The mode stack: `${` pushes `Main`, its closing `}` pops back to the template.
    modes: Vec<Mode>,
    /// Open braces, and the brace count at which each open `${`/`%{` closes (Go's scheme:
    /// the count may go negative on stray `}`s).
    braces: i64,
    ret_braces: Vec<i64>,
    heredocs: Vec<Heredoc>,
}

impl Lexer<'_> {
    fn push(&mut self, kind: Kind, start: usize, end: usize) {
        self.toks.push(Token {
            kind,
            start: start as u32,
            end: end as u32,
        });
        self.pos = end;
    }

    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    fn run(&mut self) {
        while self.pos < self.b.len() {
            match *self.modes.last().unwrap_or(&Mode::Main) {
                Mode::Main => self.main(),
                Mode::Quoted => self.quoted(),
                Mode::Heredoc => self.heredoc(),
                Mode::Bare => self.bare(),
            }
        }
    }

    /// `${` / `%{` (with an optional `~`) at `pos`: emits it and enters `Main`.
    fn open_template_seq(&mut self, kind: Kind) {
        let start = self.pos;
        let len = if self.at(start + 2) == b'~' { 3 } else { 2 };
        self.push(kind, start, start + len);
        self.braces += 1;
        self.ret_braces.push(self.braces);
        if let Some(h) = self.heredocs.last_mut() {
            h.start_of_line = false;
        }
        self.modes.push(Mode::Main);
    }

    /// A `}` or `~}` in `Main`: it ends the innermost `${`/`%{` if the brace count says so.
    fn close_brace(&mut self, len: usize) {
        let start = self.pos;
        let ends_seq = self.ret_braces.last() == Some(&self.braces);
        let kind = if ends_seq || len == 2 {
            Kind::TemplateSeqEnd
        } else {
            Kind::CBrace
        };
        self.push(kind, start, start + len);
        self.braces -= 1;
        if ends_seq {
            self.ret_braces.pop();
            self.modes.pop();
        }
    }

    fn main(&mut self) {
        let i = self.pos;
        let c = self.b[i];
        // Names are the commonest tokens: take ASCII ones without the table below.
        if c.is_ascii_alphabetic() || c == b'_' {
            let n = ident_len(&self.src[i..]);
            return self.push(Kind::Ident, i, i + n);
        }
        let next = self.at(i + 1);
        let one = |k| (k, 1);
        let (kind, len) = match c {
            b' ' | b'\t' => {
                let mut j = i + 1;
                while j < self.b.len() && matches!(self.b[j], b' ' | b'\t') {
                    j += 1;
                }
                self.pos = j;
                return;
            }
            b'\n' => one(Kind::Newline),
            b'\r' if next == b'\n' => (Kind::Newline, 2),
            b'0'..=b'9' => (Kind::Number, number_len(&self.b[i..])),
            b'#' => return self.line_comment(),
            b'/' if next == b'/' => return self.line_comment(),
            b'/' if next == b'*' => match self.src[i + 2..].find("*/") {
                Some(n) => {
                    self.pos = i + 2 + n + 2;
                    return;
                }
                None => one(Kind::Slash),
            },
            b'"' => {
                self.push(Kind::OQuote, i, i + 1);
                self.modes.push(Mode::Quoted);
                return;
            }
            b'<' if next == b'<' => match heredoc_intro(&self.src[i..]) {
                Some((len, marker)) => {
                    self.push(Kind::OHeredoc, i, i + len);
                    self.heredocs.push(Heredoc {
                        marker: i + marker.start..i + marker.end,
                        start_of_line: true,
                    });
                    self.modes.push(Mode::Heredoc);
                    return;
                }
                None => one(Kind::Less),
            },
            b'{' => {
                self.push(Kind::OBrace, i, i + 1);
                self.braces += 1;
                return;
            }
            b'}' => return self.close_brace(1),
            b'~' if next == b'}' => return self.close_brace(2),
            b'=' if next == b'=' => (Kind::EqualOp, 2),
            b'=' if next == b'>' => (Kind::FatArrow, 2),
            b'!' if next == b'=' => (Kind::NotEqual, 2),
            b'<' if next == b'=' => (Kind::LessEq, 2),
            b'>' if next == b'=' => (Kind::GreaterEq, 2),
            b'&' if next == b'&' => (Kind::And, 2),
            b'|' if next == b'|' => (Kind::Or, 2),
            b'.' if next == b'.' && self.at(i + 2) == b'.' => (Kind::Ellipsis, 3),
            b'[' => one(Kind::OBrack),
            b']' => one(Kind::CBrack),
            b'(' => one(Kind::OParen),
            b')' => one(Kind::CParen),
            b'.' => one(Kind::Dot),
            b',' => one(Kind::Comma),
            b'*' => one(Kind::Star),
            b'/' => one(Kind::Slash),
            b'%' => one(Kind::Percent),
            b'+' => one(Kind::Plus),
            b'-' => one(Kind::Minus),
            b'=' => one(Kind::Equal),
            b'<' => one(Kind::Less),
            b'>' => one(Kind::Greater),
            b'!' => one(Kind::Bang),
            b'?' => one(Kind::Question),
            b':' => one(Kind::Colon),
            b'&' => one(Kind::BitwiseAnd),
            b'|' => one(Kind::BitwiseOr),
            b'~' => one(Kind::BitwiseNot),
            b'^' => one(Kind::BitwiseXor),
            b';' => one(Kind::Semicolon),
            b'`' => one(Kind::Backtick),
            b'\'' => one(Kind::Apostrophe),
            _ => match ident_len(&self.src[i..]) {
                0 => (Kind::Invalid, char_len(c)),
                n => (Kind::Ident, n),
            },
        };
        self.push(kind, i, i + len);
    }

    /// `#` or `//` to the end of the line: a newline token when a newline ends it.
    fn line_comment(&mut self) {
        let i = self.pos;
        match self.b[i..].iter().position(|&c| c == b'\n') {
            Some(n) => self.push(Kind::Newline, i, i + n + 1),
            None => self.pos = self.b.len(),
        }
    }

    fn quoted(&mut self) {
        let i = self.pos;
        match self.b[i] {
            b'"' => {
                self.push(Kind::CQuote, i, i + 1);
                self.modes.pop();
            }
            b'$' if self.at(i + 1) == b'{' => self.open_template_seq(Kind::TemplateInterp),
            b'%' if self.at(i + 1) == b'{' => self.open_template_seq(Kind::TemplateControl),
            b'\r' | b'\n' => {
                let n = self.b[i..]
                    .iter()
                    .take_while(|&&c| c == b'\r' || c == b'\n')
                    .count();
                self.push(Kind::QuotedNewline, i, i + n);
            }
            _ => {
                let mut j = i;
                while j < self.b.len() {
                    if !QUOTED_STOPS[usize::from(self.b[j])] {
                        j += 1;
                        continue;
                    }
                    match self.b[j] {
                        b'"' | b'\r' | b'\n' => break,
                        b'$' | b'%' => match template_escape_len(&self.b[j..]) {
                            0 => break,
                            n => j += n,
                        },
                        // A backslash escapes the next character, but never a newline.
                        b'\\' => match self.b.get(j + 1) {
                            None | Some(b'\r' | b'\n') => break,
                            Some(&c) => j += 1 + char_len(c),
                        },
                        _ => j += 1,
                    }
                }
                if j == i {
                    // A backslash before a newline or the end: Go's scanner has no use for it.
                    self.push(Kind::Invalid, i, i + 1);
                } else {
                    self.push(Kind::QuotedLit, i, j);
                }
            }
        }
    }

    /// Literal text up to the next `${`, `%{`, carriage return or newline.
    fn literal_run(&self, i: usize) -> usize {
        let mut j = i;
        while j < self.b.len() {
            if !TEXT_STOPS[usize::from(self.b[j])] {
                j += 1;
                continue;
            }
            match self.b[j] {
                b'\r' | b'\n' => break,
                b'$' | b'%' => match template_escape_len(&self.b[j..]) {
                    0 => break,
                    n => j += n,
                },
                _ => j += 1,
            }
        }
        j
    }

    fn heredoc(&mut self) {
        let i = self.pos;
        match self.b[i] {
            b'$' if self.at(i + 1) == b'{' => return self.open_template_seq(Kind::TemplateInterp),
            b'%' if self.at(i + 1) == b'{' => return self.open_template_seq(Kind::TemplateControl),
            _ => {}
        }
        let j = self.literal_run(i);
        let eol = match (self.at(j), self.at(j + 1)) {
            (b'\n', _) => 1,
            (b'\r', b'\n') => 2,
            _ => 0,
        };
        let lone_cr = eol == 0 && self.at(j) == b'\r';
        let Some(doc) = self.heredocs.last_mut() else {
            self.push(Kind::Invalid, i, self.b.len());
            return;
        };
        if eol == 0 {
            if lone_cr {
                // A carriage return alone: Go's scanner stops here and gives up on the rest.
                if j > i {
                    self.push(Kind::StringLit, i, j);
                }
                self.push(Kind::Invalid, j, self.b.len());
                return;
            }
            doc.start_of_line = false;
            self.push(Kind::StringLit, i, j);
            return;
        }
        let marker = &self.src[doc.marker.clone()];
        if doc.start_of_line && self.src[i..j].trim() == marker {
            self.heredocs.pop();
            self.modes.pop();
            self.push(Kind::CHeredoc, i, j);
            self.push(Kind::Newline, j, j + eol);
            return;
        }
        doc.start_of_line = true;
        self.push(Kind::StringLit, i, j + eol);
    }

    fn bare(&mut self) {
        let i = self.pos;
        match self.b[i] {
            b'$' if self.at(i + 1) == b'{' => return self.open_template_seq(Kind::TemplateInterp),
            b'%' if self.at(i + 1) == b'{' => return self.open_template_seq(Kind::TemplateControl),
            _ => {}
        }
        let j = self.literal_run(i);
        let end = match (self.at(j), self.at(j + 1)) {
            (b'\n', _) => j + 1,
            (b'\r', b'\n') => j + 2,
            // A carriage return alone ends Go's scan; the rest is literal text.
            (b'\r', _) => self.b.len(),
            _ => j,
        };
        self.push(Kind::StringLit, i, end);
    }
}

/// Bytes that end a run of plain text in a quoted string, and in a heredoc or bare
/// template (the scanning loops skip other bytes one table lookup each).
const QUOTED_STOPS: [bool; 256] = stops(b"\"\r\n$%\\");
const TEXT_STOPS: [bool; 256] = stops(b"\r\n$%");

const fn stops(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

/// Length of a `$`/`%` that starts no template sequence: `$${` (with an optional `~`,
/// which then stays literal) or a lone `$`; 0 when it starts `${`.
fn template_escape_len(b: &[u8]) -> usize {
    let c = b[0];
    match (b.get(1), b.get(2)) {
        (Some(b'{'), _) => 0,
        (Some(&d), Some(b'{')) if d == c => {
            if b.get(3) == Some(&b'~') {
                4
            } else {
                3
            }
        }
        _ => 1,
    }
}

/// A number literal: a digit, then digits, `.` and exponents (`e5`, `E-3`), never ending
/// on a `.` (so `a.0.b` is an index and not `0.`). `1.2.3` is one (invalid) token, as in Go.
fn number_len(b: &[u8]) -> usize {
    let mut j = 1;
    let mut good = 1;
    while j < b.len() {
        match b[j] {
            b'0'..=b'9' => {
                j += 1;
                good = j;
            }
            b'.' => j += 1,
            b'e' | b'E' => {
                let k = if matches!(b.get(j + 1), Some(b'+' | b'-')) {
                    j + 2
                } else {
                    j + 1
                };
                if b.get(k).is_some_and(u8::is_ascii_digit) {
                    j = k + 1;
                    good = j;
                } else {
                    break;
                }
            }
            _ => break,
        }
    }
    good
}

/// Length of the identifier at the start of `s` (0 if none): a letter or `_`, then
/// letters, digits, `_` and `-` (Unicode identifier characters included).
pub fn ident_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = match b.first() {
        Some(&c) if c.is_ascii_alphabetic() || c == b'_' => 1,
        Some(&c) if c >= 0x80 => match s.chars().next() {
            Some(ch) if unicode_ident::is_xid_start(ch) => ch.len_utf8(),
            _ => return 0,
        },
        _ => return 0,
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' {
            i += 1;
        } else if c < 0x80 {
            break;
        } else {
            match s[i..].chars().next() {
                Some(ch) if unicode_ident::is_xid_continue(ch) => i += ch.len_utf8(),
                _ => break,
            }
        }
    }
    i
}

/// `<<EOT` or `<<-EOT` followed by a newline: (its length, the marker's range in it).
fn heredoc_intro(s: &str) -> Option<(usize, std::ops::Range<usize>)> {
    let b = s.as_bytes();
    let mut i = 2;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    let n = ident_len(&s[i..]);
    if n == 0 {
        return None;
    }
    let marker = i..i + n;
    match (b.get(i + n), b.get(i + n + 1)) {
        (Some(b'\n'), _) => Some((i + n + 1, marker)),
        (Some(b'\r'), Some(b'\n')) => Some((i + n + 2, marker)),
        _ => None,
    }
}

/// Byte length of the UTF-8 character starting with byte `c`.
fn char_len(c: u8) -> usize {
    match c {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}

/// The diagnostics Go's scanner stage gives for the tokens that are always errors, in
/// file order (buildx reports the first and counts the rest): (range, summary, detail).
pub fn check(toks: &[Token], src: &str) -> Vec<(Token, &'static str, &'static str)> {
    let mut out = Vec::new();
    let (mut bitwise, mut backtick, mut apostrophe, mut semicolon) = (0, 0, 0, 0);
    for &t in toks {
        match t.kind {
            Kind::BitwiseAnd | Kind::BitwiseOr | Kind::BitwiseXor | Kind::BitwiseNot
                if bitwise < 4 =>
            {
                let detail = match t.kind {
                    Kind::BitwiseAnd => {
                        "Bitwise operators are not supported. Did you mean boolean AND (\"&&\")?"
                    }
                    Kind::BitwiseOr => {
                        "Bitwise operators are not supported. Did you mean boolean OR (\"||\")?"
                    }
                    Kind::BitwiseNot => {
                        "Bitwise operators are not supported. Did you mean boolean NOT (\"!\")?"
                    }
                    _ => "Bitwise operators are not supported.",
                };
                out.push((t, "Unsupported operator", detail));
                bitwise += 1;
            }
            Kind::Backtick => {
                // Go reports every other one: the opening backtick of a would-be string.
                if backtick % 2 == 0 {
                    out.push((
                        t,
                        "Invalid character",
                        "The \"`\" character is not valid. To create a multi-line string, use \
                         the \"heredoc\" syntax, like \"<<EOT\".",
                    ));
                }
                if backtick <= 2 {
                    backtick += 1;
                }
            }
            Kind::Apostrophe => {
                if apostrophe % 2 == 0 {
                    out.push((
                        t,
                        "Invalid character",
                        "Single quotes are not valid. Use double quotes (\") to enclose strings.",
                    ));
                }
                if apostrophe <= 2 {
                    apostrophe += 1;
                }
            }
            Kind::Semicolon if semicolon < 1 => {
                out.push((
                    t,
                    "Invalid character",
                    "The \";\" character is not valid. Use newlines to separate arguments and \
                     blocks, and commas to separate items in collection values.",
                ));
                semicolon += 1;
            }
            Kind::QuotedNewline => out.push((
                t,
                "Invalid multi-line string",
                "Quoted strings may not be split over multiple lines. To produce a multi-line \
                 string, either use the \\n escape to represent a newline character or use the \
                 \"heredoc\" multi-line template syntax.",
            )),
            Kind::Invalid => {
                let text = &src[t.start as usize..t.end as usize];
                let detail = if text == "\u{201c}" || text == "\u{201d}" {
                    "\"Curly quotes\" are not valid here. These can sometimes be inadvertently \
                     introduced when sharing code via documents or discussion forums. It might \
                     help to replace the character with a \"straight quote\"."
                } else {
                    "This character is not used within the language."
                };
                out.push((t, "Invalid character", detail));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Kind> {
        lex(src, Start::Config).iter().map(|t| t.kind).collect()
    }

    #[test]
    fn numbers_never_end_on_a_dot() {
        assert_eq!(number_len(b"1.5e3x"), 5);
        assert_eq!(number_len(b"0.b"), 1);
        assert_eq!(number_len(b"1.2.3"), 5);
        assert_eq!(number_len(b"1e+"), 1);
    }

    #[test]
    fn a_closing_brace_ends_the_interpolation_it_matches() {
        use Kind::*;
        assert_eq!(
            kinds(r#"a = "x${ {b = 1} }y""#),
            [
                Ident,
                Equal,
                OQuote,
                QuotedLit,
                TemplateInterp,
                OBrace,
                Ident,
                Equal,
                Number,
                CBrace,
                TemplateSeqEnd,
                QuotedLit,
                CQuote,
                Eof
            ]
        );
    }

    #[test]
    fn a_heredoc_ends_on_its_marker_line_only_at_the_start_of_a_line() {
        use Kind::*;
        assert_eq!(
            kinds("a = <<EOT\nx${1}EOT\n  EOT\n"),
            [
                Ident,
                Equal,
                OHeredoc,
                StringLit,
                TemplateInterp,
                Number,
                TemplateSeqEnd,
                StringLit,
                CHeredoc,
                Newline,
                Eof
            ]
        );
    }

    #[test]
    fn comments_ending_in_a_newline_are_newlines() {
        use Kind::*;
        assert_eq!(
            kinds("a = 1 # x\n/* y\n */ b // z"),
            [Ident, Equal, Number, Newline, Ident, Eof]
        );
    }
}
