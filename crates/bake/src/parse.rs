//! HCL native syntax, second stage: tokens (`lexer.rs`) to the syntax tree (`ast.rs`), by
//! recursive descent. The grammar, precedence, newline rules and error wording follow Go's
//! hashicorp/hcl v2 parser (the one buildx uses), so the tree evaluates as buildx's does
//! and a syntax error names the place buildx names. Unlike Go's parser this one stops at
//! the first error: the count of further diagnostics buildx appends is exact only for the
//! scanner's (see `parse_hcl`).
//!
//! Nesting is limited to `MAX_DEPTH` levels: Go has no limit, but kiln recurses over the
//! tree (here, in the evaluator, when dropping it) and must not run out of stack.

use crate::ast::*;
use crate::error::{Error, Result};
use crate::lexer::{self, Kind, Start, Token};
use crate::source::Span;
use crate::template::{self, ForDirective, Piece};
use crate::value::{Number, Value};

/// How deep expressions may nest: brackets, calls, templates, directives, unary operators
/// and each operator of a chain (`1+1+1` is three levels: the tree is left-deep) count.
/// Go's parser has no limit, but the parser, the evaluator and `Drop` recurse over the
/// tree, and real bake files stay under 20 levels. At 500 the deepest tree of any kind
/// needs at most 2.8 MB of stack to parse and resolve in a debug build (about 0.7 MB in a
/// release build): a third of the 8 MB main thread, and the fuzz target's.
pub const MAX_DEPTH: u32 = 500;

/// A parsed expression and its height (levels of nesting, a leaf being 1).
type Node = (Expr, u32);

/// Parses one HCL file. buildx reports the scanner's errors (stray characters, newlines in
/// quoted strings) before any parse error, then "and N other diagnostic(s)"; the parse
/// error, if any, counts as one of those.
pub fn parse_hcl(file: u32, text: &str) -> Result<Body> {
    let toks = lexer::lex(text, Start::Config);
    let parsed = Parser::new(file, text, &toks, true).body(Kind::Eof, None);
    let lex_errors = lexer::check(&toks, text);
    match lex_errors.first() {
        None => parsed,
        Some(&(t, summary, detail)) => {
            let others = lex_errors.len() - 1 + usize::from(parsed.is_err());
            Err(Error::diag(
                Span::new(file, t.start as usize..t.end as usize),
                summary,
                detail,
            )
            .with_others(others))
        }
    }
}

/// Parses a standalone expression (an HCL-JSON `type` or `params` string).
pub fn parse_expression(file: u32, text: &str) -> Result<Expr> {
    let toks = lexer::lex(text, Start::Config);
    first_lex_error(file, &toks, text)?;
    let mut p = Parser::new(file, text, &toks, false);
    let (e, _) = p.expr()?;
    let t = p.peek();
    if t.kind != Kind::Eof {
        return Err(p.err(
            t,
            "Extra characters after expression",
            "An expression was successfully parsed, but extra characters were found after it.",
        ));
    }
    Ok(e)
}

/// Parses a standalone template (an HCL-JSON string): always a template expression, even
/// when it is plain text.
pub fn parse_template(file: u32, text: &str) -> Result<Expr> {
    let toks = lexer::lex(text, Start::Template);
    first_lex_error(file, &toks, text)?;
    let mut p = Parser::new(file, text, &toks, false);
    let (pieces, close, _) = p.pieces(Kind::Eof)?;
    let kind = p.template_kind(pieces, false, p.tspan(close), true)?;
    Ok(Expr {
        kind,
        span: p.span(0, text.len() as u32),
    })
}

fn first_lex_error(file: u32, toks: &[Token], text: &str) -> Result<()> {
    match lexer::check(toks, text).first() {
        Some(&(t, summary, detail)) => Err(Error::diag(
            Span::new(file, t.start as usize..t.end as usize),
            summary,
            detail,
        )),
        None => Ok(()),
    }
}

struct Parser<'a> {
    file: u32,
    src: &'a str,
    toks: &'a [Token],
    pos: usize,
    /// Whether newlines are tokens here (bodies, object braces) or skipped (brackets,
    /// parentheses, templates); the innermost context decides.
    newlines: Vec<bool>,
    /// Current nesting, checked against `MAX_DEPTH` on the way down.
    depth: u32,
}

fn binary_op(kind: Kind) -> Option<(BinaryOp, u8)> {
    // Go's precedence levels, loosest first; all are left-associative.
    Some(match kind {
        Kind::Or => (BinaryOp::Or, 0),
        Kind::And => (BinaryOp::And, 1),
        Kind::EqualOp => (BinaryOp::Eq, 2),
        Kind::NotEqual => (BinaryOp::NotEq, 2),
        Kind::Greater => (BinaryOp::Greater, 3),
        Kind::GreaterEq => (BinaryOp::GreaterEq, 3),
        Kind::Less => (BinaryOp::Less, 3),
        Kind::LessEq => (BinaryOp::LessEq, 3),
        Kind::Plus => (BinaryOp::Plus, 4),
        Kind::Minus => (BinaryOp::Minus, 4),
        Kind::Star => (BinaryOp::Mul, 5),
        Kind::Slash => (BinaryOp::Div, 5),
        Kind::Percent => (BinaryOp::Mod, 5),
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    fn new(file: u32, src: &'a str, toks: &'a [Token], newlines: bool) -> Parser<'a> {
        Parser {
            file,
            src,
            toks,
            pos: 0,
            newlines: vec![newlines],
            depth: 0,
        }
    }

    // --- tokens ---

    fn next_index(&self) -> usize {
        let mut i = self.pos;
        if !self.newlines.last().copied().unwrap_or(false) {
            while self.toks[i].kind == Kind::Newline {
                i += 1;
            }
        }
        i
    }

    fn peek(&self) -> Token {
        self.toks[self.next_index()]
    }

    /// Takes the next token; at the end it keeps returning `Eof`.
    fn read(&mut self) -> Token {
        let i = self.next_index();
        let t = self.toks[i];
        if t.kind != Kind::Eof {
            self.pos = i + 1;
        }
        t
    }

    fn text(&self, t: Token) -> &'a str {
        &self.src[t.start as usize..t.end as usize]
    }

    fn is_keyword(&self, t: Token, word: &str) -> bool {
        t.kind == Kind::Ident && self.text(t) == word
    }

    fn span(&self, start: u32, end: u32) -> Span {
        Span {
            file: self.file,
            start,
            end,
        }
    }

    fn tspan(&self, t: Token) -> Span {
        self.span(t.start, t.end)
    }

    fn err(&self, t: Token, summary: &str, detail: impl Into<String>) -> Error {
        Error::diag(self.tspan(t), summary, detail)
    }

    fn too_deep(&self, span: Span) -> Error {
        Error::diag(
            span,
            "Nesting too deep",
            format!(
                "kiln reads expressions nested at most {MAX_DEPTH} levels deep (brackets, calls, \
                 templates and each operator of a chain count as levels)."
            ),
        )
    }

    /// One level down, for constructs that recurse: refused past `MAX_DEPTH`.
    fn enter(&mut self, at: Token) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.too_deep(self.tspan(at)));
        }
        Ok(())
    }

    fn checked(&self, kind: ExprKind, span: Span, height: u32) -> Result<Node> {
        if height > MAX_DEPTH {
            return Err(self.too_deep(span));
        }
        Ok((Expr { kind, span }, height))
    }

    // --- bodies ---

    /// Attributes and blocks up to `end`: the end of the file, or the `}` matching `open`.
    fn body(&mut self, end: Kind, open: Option<Token>) -> Result<Body> {
        let mut out = Body::default();
        loop {
            let t = self.peek();
            if t.kind == end {
                self.read();
                return Ok(out);
            }
            match t.kind {
                Kind::Newline => {
                    self.read();
                }
                Kind::Ident => self.body_item(&mut out)?,
                Kind::OQuote => {
                    return Err(self.err(
                        t,
                        "Invalid argument name",
                        "Argument names must not be quoted.",
                    ))
                }
                Kind::Eof => {
                    return Err(self.err(
                        open.unwrap_or(t),
                        "Unclosed configuration block",
                        "There is no closing brace for this block before the end of the file. \
                         This may be caused by incorrect brace nesting elsewhere in this file.",
                    ))
                }
                _ => {
                    return Err(self.err(
                        t,
                        "Argument or block definition required",
                        "An argument or block definition is required here.",
                    ))
                }
            }
        }
    }

    fn body_item(&mut self, out: &mut Body) -> Result<()> {
        let ident = self.read();
        match self.peek().kind {
            Kind::Equal => {
                let attr = self.attribute(ident, false)?;
                check_redefined(&out.attrs, &attr)?;
                out.attrs.push(attr);
            }
            Kind::OQuote | Kind::OBrace | Kind::Ident => out.blocks.push(self.block(ident)?),
            _ => {
                return Err(self.err(
                    ident,
                    "Argument or block definition required",
                    MISSING_EQUALS,
                ))
            }
        }
        Ok(())
    }

    /// `name = expr`, which must end the line unless it is a one-line block's only item.
    fn attribute(&mut self, name: Token, single_line: bool) -> Result<Attribute> {
        self.read(); // `=`
        let (expr, _) = self.expr()?;
        if !single_line {
            let end = self.peek();
            match end.kind {
                Kind::Newline => {
                    self.read();
                }
                Kind::Eof => {}
                Kind::Comma => {
                    return Err(self.err(
                        end,
                        "Unexpected comma after argument",
                        "Argument definitions must be separated by newlines, not commas. An \
                         argument definition must end with a newline.",
                    ))
                }
                _ => {
                    return Err(self.err(
                        end,
                        "Missing newline after argument",
                        "An argument definition must end with a newline.",
                    ))
                }
            }
        }
        Ok(Attribute {
            name: self.text(name).to_string(),
            name_span: self.tspan(name),
            expr,
        })
    }

    fn block(&mut self, kind: Token) -> Result<Block> {
        let mut labels = Vec::new();
        let mut label_spans = Vec::new();
        let open = loop {
            let t = self.peek();
            match t.kind {
                Kind::OBrace => break self.read(),
                Kind::OQuote => {
                    let (label, span) = self.quoted_label()?;
                    labels.push(label);
                    label_spans.push(span);
                }
                Kind::Ident => {
                    self.read();
                    labels.push(self.text(t).to_string());
                    label_spans.push(self.tspan(t));
                }
                _ => {
                    let detail = match t.kind {
                        Kind::Equal => {
                            "The equals sign \"=\" indicates an argument definition, and must not \
                             be used when defining a block."
                        }
                        Kind::Newline => {
                            "A block definition must have block content delimited by \"{\" and \
                             \"}\", starting on the same line as the block header."
                        }
                        _ => {
                            "Either a quoted string block label or an opening brace (\"{\") is \
                             expected here."
                        }
                    };
                    return Err(self.err(t, "Invalid block definition", detail));
                }
            }
        };
        let body = match self.peek().kind {
            Kind::Newline | Kind::Eof | Kind::CBrace => self.body(Kind::CBrace, Some(open))?,
            _ => {
                let body = self.single_attr_body()?;
                let t = self.peek();
                let detail = match t.kind {
                    Kind::CBrace => "",
                    Kind::Comma => {
                        "Single-line block syntax can include only one argument definition. To \
                         define multiple arguments, use the multi-line block syntax with one \
                         argument definition per line."
                    }
                    Kind::Newline => {
                        "An argument definition on the same line as its containing block \
                         creates a single-line block definition, which must also be closed on \
                         the same line. Place the block's closing brace immediately after the \
                         argument definition."
                    }
                    _ => {
                        "A single-line block definition must end with a closing brace \
                         immediately after its single argument definition."
                    }
                };
                if !detail.is_empty() {
                    return Err(self.err(t, "Invalid single-argument block definition", detail));
                }
                self.read();
                body
            }
        };
        let eol = self.peek();
        match eol.kind {
            Kind::Newline => {
                self.read();
            }
            Kind::Eof => {}
            _ => {
                return Err(self.err(
                    eol,
                    "Missing newline after block definition",
                    "A block definition must end with a newline.",
                ))
            }
        }
        Ok(Block {
            kind: self.text(kind).to_string(),
            labels,
            label_spans,
            attrs: body.attrs,
            blocks: body.blocks,
            open_brace: self.span(open.start, open.start),
        })
    }

    /// The body of `name "label" { attr = value }`: exactly one attribute.
    fn single_attr_body(&mut self) -> Result<Body> {
        let ident = self.read();
        if ident.kind != Kind::Ident {
            return Err(self.err(
                ident,
                "Argument or block definition required",
                "An argument or block definition is required here.",
            ));
        }
        let next = self.peek();
        match next.kind {
            Kind::Equal => Ok(Body {
                attrs: vec![self.attribute(ident, true)?],
                blocks: Vec::new(),
            }),
            Kind::OQuote | Kind::OBrace | Kind::Ident => Err(Error::diag(
                self.span(ident.start, next.end),
                "Argument definition required",
                format!(
                    "A single-line block definition can contain only a single argument. If you \
                     meant to define argument {:?}, use an equals sign to assign it a value. To \
                     define a nested block, place it on a line of its own within its parent \
                     block.",
                    self.text(ident)
                ),
            )),
            _ => Err(self.err(
                ident,
                "Argument or block definition required",
                MISSING_EQUALS,
            )),
        }
    }

    /// A block label: a quoted string without template sequences.
    fn quoted_label(&mut self) -> Result<(String, Span)> {
        let open = self.read();
        let mut label = String::new();
        loop {
            let t = self.read();
            match t.kind {
                Kind::CQuote => return Ok((label, self.span(open.start, t.end))),
                Kind::QuotedLit => label.push_str(&self.literal(t, true)?),
                Kind::TemplateInterp | Kind::TemplateControl => {
                    let which = if t.kind == Kind::TemplateInterp {
                        '$'
                    } else {
                        '%'
                    };
                    return Err(self.err(
                        t,
                        "Invalid string literal",
                        format!(
                            "Template sequences are not allowed in this string. To include a \
                             literal \"{which}\", double it (as \"{which}{which}\") to escape it."
                        ),
                    ));
                }
                Kind::Eof => return Err(self.err(t, "Unterminated template string", UNTERMINATED)),
                _ => {
                    return Err(self.err(
                        t,
                        "Invalid string literal",
                        "A quoted string is required here.",
                    ))
                }
            }
        }
    }

    // --- expressions ---

    // The functions from here to `paren` recurse once per nesting level, so they keep
    // their frames small (debug builds give every temporary its own stack slot): the
    // rarer and bulkier work is in separate functions.

    /// A whole expression: operators, then an optional `? :` (right-associative).
    fn expr(&mut self) -> Result<Node> {
        if let Some(node) = self.lone_term()? {
            return Ok(node);
        }
        let first = self.peek();
        self.enter(first)?;
        let mut node = self.binary(0)?;
        if self.peek().kind == Kind::Question {
            node = self.conditional(node)?;
        }
        self.depth -= 1;
        Ok(node)
    }

    /// Most expressions are one string, number or name with nothing after it: those are
    /// built here, without descending through the operator levels.
    #[inline(never)]
    fn lone_term(&mut self) -> Result<Option<Node>> {
        let at = self.next_index();
        let t = self.toks[at];
        // Where the term would end: a plain string is `"`, text, `"`.
        let last = match t.kind {
            Kind::Number | Kind::Ident => at,
            Kind::OQuote => match self.plain_string_end(at) {
                Some(close) => close,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        let mut after = last + 1;
        if !self.newlines.last().copied().unwrap_or(false) {
            while self.toks[after].kind == Kind::Newline {
                after += 1;
            }
        }
        let ends = matches!(
            self.toks[after].kind,
            Kind::Newline
                | Kind::Comma
                | Kind::CBrace
                | Kind::CBrack
                | Kind::CParen
                | Kind::Eof
                | Kind::TemplateSeqEnd
                | Kind::Equal
                | Kind::Colon
        );
        if !ends {
            return Ok(None);
        }
        self.pos = last + 1;
        let expr = match t.kind {
            Kind::Number => literal(self.number(t)?, self.tspan(t)),
            Kind::Ident => self.name(t),
            _ => self.plain_string(at, last)?,
        };
        Ok(Some((expr, 1)))
    }

    /// A name that is not a call: `true`, `false`, `null`, or a variable.
    fn name(&self, t: Token) -> Expr {
        let kind = match self.text(t) {
            "true" => ExprKind::Literal(Value::Bool(true)),
            "false" => ExprKind::Literal(Value::Bool(false)),
            "null" => ExprKind::Literal(Value::Null),
            name => ExprKind::Var(name.to_string()),
        };
        Expr {
            kind,
            span: self.tspan(t),
        }
    }

    /// `? yes : no` after the condition.
    #[inline(never)]
    fn conditional(&mut self, (cond, hc): Node) -> Result<Node> {
        self.read();
        let (yes, hy) = self.expr()?;
        let colon = self.peek();
        if colon.kind != Kind::Colon {
            return Err(self.err(
                colon,
                "Missing false expression in conditional",
                "The conditional operator (...?...:...) requires a false expression, delimited \
                 by a colon.",
            ));
        }
        self.read();
        let (no, hn) = self.expr()?;
        let span = self.span(cond.span.start, no.span.end);
        let height = hc.max(hy).max(hn) + 1;
        self.checked(ExprKind::Cond(Box::new([cond, yes, no])), span, height)
    }

    /// Binary operators of level `min` and tighter, by precedence climbing: each level
    /// loops left-associatively, as Go's parser does.
    fn binary(&mut self, min: u8) -> Result<Node> {
        let mut lhs = self.operand()?;
        while let Some((op, level)) = binary_op(self.peek().kind) {
            if level < min {
                break;
            }
            self.read();
            let rhs = self.binary(level + 1)?;
            lhs = self.binary_node(op, lhs, rhs)?;
        }
        Ok(lhs)
    }

    #[inline(never)]
    fn binary_node(&self, op: BinaryOp, (lhs, hl): Node, (rhs, hr): Node) -> Result<Node> {
        let span = self.span(lhs.span.start, rhs.span.end);
        let height = hl.max(hr) + 1;
        self.checked(ExprKind::Binary(op, Box::new([lhs, rhs])), span, height)
    }

    /// A term and the attribute, index and splat operations after it.
    fn operand(&mut self) -> Result<Node> {
        let node = self.term()?;
        if matches!(self.peek().kind, Kind::Dot | Kind::OBrack) {
            return self.traversals(node);
        }
        Ok(node)
    }

    fn term(&mut self) -> Result<Node> {
        let t = self.peek();
        match t.kind {
            Kind::OParen => self.paren(),
            Kind::Number => self.number_term(t),
            Kind::Ident => self.ident_term(t),
            Kind::OQuote | Kind::OHeredoc => self.template(),
            Kind::Minus | Kind::Bang => self.unary(t),
            Kind::OBrack => self.tuple(),
            Kind::OBrace => self.object(),
            _ => Err(self.no_term(t)),
        }
    }

    fn paren(&mut self) -> Result<Node> {
        let open = self.read();
        self.newlines.push(false);
        let inner = self.expr()?;
        self.newlines.pop();
        self.close_paren(open, inner)
    }

    #[inline(never)]
    fn close_paren(&mut self, open: Token, (inner, h): Node) -> Result<Node> {
        let close = self.peek();
        if close.kind != Kind::CParen {
            return Err(self.err(
                close,
                "Unbalanced parentheses",
                "Expected a closing parenthesis to terminate the expression.",
            ));
        }
        self.read();
        let span = self.span(open.start, close.end);
        self.checked(ExprKind::Paren(Box::new(inner)), span, h + 1)
    }

    #[inline(never)]
    fn no_term(&self, t: Token) -> Error {
        if t.kind == Kind::Eof {
            return self.err(
                t,
                "Missing expression",
                "Expected the start of an expression, but found the end of the file.",
            );
        }
        self.err(
            t,
            "Invalid expression",
            "Expected the start of an expression, but found an invalid expression token.",
        )
    }

    #[inline(never)]
    fn number_term(&mut self, t: Token) -> Result<Node> {
        self.read();
        let v = self.number(t)?;
        Ok((literal(v, self.tspan(t)), 1))
    }

    /// A name: a function call, `true`/`false`/`null`, or a variable.
    #[inline(never)]
    fn ident_term(&mut self, t: Token) -> Result<Node> {
        self.read();
        if self.peek().kind == Kind::OParen {
            return self.call(t);
        }
        Ok((self.name(t), 1))
    }

    /// `-x` or `!x`. The operand is a term with its traversals, not a binary expression:
    /// `-a.b` is `-(a.b)` and `-1+2` is `(-1)+2`.
    fn unary(&mut self, t: Token) -> Result<Node> {
        self.enter(t)?;
        self.read();
        let operand = self.operand()?;
        self.depth -= 1;
        self.unary_node(t, operand)
    }

    #[inline(never)]
    fn unary_node(&self, t: Token, (x, h): Node) -> Result<Node> {
        let op = if t.kind == Kind::Minus {
            UnaryOp::Neg
        } else {
            UnaryOp::Not
        };
        let span = self.span(t.start, x.span.end);
        self.checked(ExprKind::Unary(op, Box::new(x)), span, h + 1)
    }

    fn number(&self, t: Token) -> Result<Value> {
        let text = self.text(t);
        if let Some(n) = Number::parse(text) {
            return Ok(Value::Number(n));
        }
        // `Number::parse` refuses huge exponents; as a float they are 0 or out of range.
        match text.parse::<f64>() {
            Ok(f) => Number::from_f64(f).map(Value::Number).ok_or_else(|| {
                self.err(
                    t,
                    "Invalid number literal",
                    format!("{text} is out of range."),
                )
            }),
            Err(_) => Err(self.err(
                t,
                "Invalid number literal",
                "Failed to recognize the value of this number literal.",
            )),
        }
    }

    fn call(&mut self, name: Token) -> Result<Node> {
        let open = self.read();
        self.newlines.push(false);
        let mut args = Vec::new();
        let mut height = 0;
        let mut expand_final = false;
        let close = loop {
            if self.peek().kind == Kind::CParen {
                break self.read();
            }
            let (arg, h) = self.expr()?;
            args.push(arg);
            height = height.max(h);
            let sep = self.read();
            match sep.kind {
                Kind::CParen => break sep,
                Kind::Comma if self.peek().kind == Kind::CParen => break self.read(),
                Kind::Comma => {}
                Kind::Ellipsis => {
                    expand_final = true;
                    if self.peek().kind != Kind::CParen {
                        return Err(self.err(
                            sep,
                            "Missing closing parenthesis",
                            "An expanded function argument (with ...) must be immediately \
                             followed by closing parentheses.",
                        ));
                    }
                    break self.read();
                }
                Kind::Eof => {
                    return Err(Error::diag(
                        self.span(name.start, open.end),
                        "Unterminated function call",
                        // Go's wording, typo included.
                        "There is no closing parenthesis for this function call before the end \
                         of the file. This may be caused by incorrect parethesis nesting \
                         elsewhere in this file.",
                    ));
                }
                _ => {
                    return Err(self.err(
                        sep,
                        "Missing argument separator",
                        "A comma is required to separate each function argument from the next.",
                    ))
                }
            }
        };
        self.newlines.pop();
        let call = Call {
            name: self.text(name).to_string(),
            name_span: self.tspan(name),
            args,
            expand_final,
        };
        let span = self.span(name.start, close.end);
        self.checked(ExprKind::Call(Box::new(call)), span, height + 1)
    }

    fn tuple(&mut self) -> Result<Node> {
        let open = self.read();
        self.newlines.push(false);
        if self.is_keyword(self.peek(), "for") {
            let r = self.for_expr(open, Kind::CBrack);
            self.newlines.pop();
            return r;
        }
        let mut items = Vec::new();
        let mut height = 0;
        let close =
            loop {
                if self.peek().kind == Kind::CBrack {
                    break self.read();
                }
                let (item, h) = self.expr()?;
                items.push(item);
                height = height.max(h);
                let next = self.peek();
                match next.kind {
                    Kind::CBrack => break self.read(),
                    Kind::Comma => {
                        self.read();
                    }
                    Kind::Eof => return Err(self.err(
                        open,
                        "Unterminated tuple constructor expression",
                        "There is no corresponding closing bracket before the end of the file. \
                         This may be caused by incorrect bracket nesting elsewhere in this file.",
                    )),
                    _ => {
                        return Err(self.err(
                            next,
                            "Missing item separator",
                            "Expected a comma to mark the beginning of the next item.",
                        ))
                    }
                }
            };
        self.newlines.pop();
        let span = self.span(open.start, close.end);
        self.checked(ExprKind::Tuple(items), span, height + 1)
    }

    fn object(&mut self) -> Result<Node> {
        let open = self.read();
        self.newlines.push(true);
        if self.is_keyword(self.peek(), "for") {
            let r = self.for_expr(open, Kind::CBrace);
            self.newlines.pop();
            return r;
        }
        let unterminated = |p: &Self| {
            p.err(
                open,
                "Unterminated object constructor expression",
                "There is no corresponding closing brace before the end of the file. This may be \
                 caused by incorrect brace nesting elsewhere in this file.",
            )
        };
        let mut items = Vec::new();
        let mut height = 0;
        let close =
            loop {
                let next = self.peek();
                match next.kind {
                    Kind::Newline => {
                        self.read();
                        continue;
                    }
                    Kind::CBrace => break self.read(),
                    _ => {}
                }
                // Parentheses make even a bare name a key expression.
                let forced = next.kind == Kind::OParen;
                let (key, hk) = self.expr()?;
                let sep = self.peek();
                if !matches!(sep.kind, Kind::Equal | Kind::Colon) {
                    return Err(match sep.kind {
                    Kind::Newline | Kind::Comma => self.err(
                        sep,
                        "Missing attribute value",
                        "Expected an attribute value, introduced by an equals sign (\"=\").",
                    ),
                    Kind::Ident => self.err(
                        sep,
                        "Missing key/value separator",
                        "Expected an equals sign (\"=\") to mark the beginning of the attribute \
                         value. If you intended to given an attribute name containing periods or \
                         spaces, write the name in quotes to create a string literal.",
                    ),
                    Kind::Eof => unterminated(self),
                    _ => self.err(
                        sep,
                        "Missing key/value separator",
                        "Expected an equals sign (\"=\") to mark the beginning of the attribute \
                         value.",
                    ),
                });
                }
                self.read();
                let (value, hv) = self.expr()?;
                height = height.max(hk).max(hv);
                items.push((object_key(key, forced), value));
                let next = self.peek();
                match next.kind {
                    Kind::CBrace => break self.read(),
                    Kind::Comma | Kind::Newline => {
                        self.read();
                    }
                    Kind::Eof => return Err(unterminated(self)),
                    _ => return Err(self.err(
                        next,
                        "Missing attribute separator",
                        "Expected a newline or comma to mark the beginning of the next attribute.",
                    )),
                }
            };
        self.newlines.pop();
        let span = self.span(open.start, close.end);
        self.checked(ExprKind::Object(items), span, height + 1)
    }

    /// `[for k, v in coll : expr if cond]` or `{for k, v in coll : key => value... if cond}`,
    /// after its opening bracket. Built in place in a box, piece by piece, to keep the
    /// recursing frame small.
    #[inline(never)]
    fn for_expr(&mut self, open: Token, close_kind: Kind) -> Result<Node> {
        self.newlines.push(false);
        self.read(); // `for`
        let mut f = self.for_intro()?;
        let mut height = self.expr_into(&mut f.collection)?;
        self.for_colon()?;
        height = height.max(self.expr_into(&mut f.value_expr)?);
        if self.peek().kind == Kind::FatArrow {
            self.read();
            let key = std::mem::replace(&mut f.value_expr, placeholder());
            f.key_expr = Some(key);
            height = height.max(self.expr_into(&mut f.value_expr)?);
        }
        let ellipsis = self.peek();
        f.grouping = ellipsis.kind == Kind::Ellipsis;
        if f.grouping {
            self.read();
        }
        if self.is_keyword(self.peek(), "if") {
            self.read();
            let mut cond = placeholder();
            height = height.max(self.expr_into(&mut cond)?);
            f.cond = Some(cond);
        }
        let close = self.for_close(&f, close_kind, ellipsis)?;
        self.newlines.pop();
        let span = self.span(open.start, close.end);
        self.checked(ExprKind::For(f), span, height + 1)
    }

    /// Parses an expression into `slot`, returning its height.
    fn expr_into(&mut self, slot: &mut Expr) -> Result<u32> {
        let (e, h) = self.expr()?;
        *slot = e;
        Ok(h)
    }

    /// `k, v in` (or `v in`) after `for`: a `ForExpr` with its names and placeholders.
    #[inline(never)]
    fn for_intro(&mut self) -> Result<Box<ForExpr>> {
        let bad = |p: &Self, t: Token, detail: &str| p.err(t, "Invalid 'for' expression", detail);
        let name = self.peek();
        if name.kind != Kind::Ident {
            return Err(bad(
                self,
                name,
                "For expression requires variable name after 'for'.",
            ));
        }
        self.read();
        let mut key_var = None;
        let mut value_var = self.text(name).to_string();
        if self.peek().kind == Kind::Comma {
            self.read();
            let name = self.peek();
            if name.kind != Kind::Ident {
                return Err(bad(
                    self,
                    name,
                    "For expression requires value variable name after comma.",
                ));
            }
            self.read();
            key_var = Some(std::mem::replace(
                &mut value_var,
                self.text(name).to_string(),
            ));
        }
        let t = self.peek();
        if !self.is_keyword(t, "in") {
            return Err(bad(
                self,
                t,
                "For expression requires the 'in' keyword after its name declarations.",
            ));
        }
        self.read();
        Ok(Box::new(ForExpr {
            key_var,
            value_var,
            collection: placeholder(),
            key_expr: None,
            value_expr: placeholder(),
            cond: None,
            grouping: false,
        }))
    }

    #[inline(never)]
    fn for_colon(&mut self) -> Result<()> {
        let t = self.peek();
        if t.kind != Kind::Colon {
            return Err(self.err(
                t,
                "Invalid 'for' expression",
                "For expression requires a colon after the collection expression.",
            ));
        }
        self.read();
        Ok(())
    }

    /// The closing bracket, and Go's checks of what a tuple or object `for` may hold.
    #[inline(never)]
    fn for_close(&mut self, f: &ForExpr, close_kind: Kind, ellipsis: Token) -> Result<Token> {
        let bad = |p: &Self, t: Token, detail: &str| p.err(t, "Invalid 'for' expression", detail);
        let close = self.peek();
        if close.kind != close_kind {
            return Err(bad(
                self,
                close,
                "Extra characters after the end of the 'for' expression.",
            ));
        }
        self.read();
        if close_kind == Kind::CBrack {
            if let Some(k) = &f.key_expr {
                return Err(Error::diag(
                    k.span,
                    "Invalid 'for' expression",
                    "Key expression is not valid when building a tuple.",
                ));
            }
            if f.grouping {
                return Err(bad(
                    self,
                    ellipsis,
                    "Grouping ellipsis (...) cannot be used when building a tuple.",
                ));
            }
        } else if f.key_expr.is_none() {
            return Err(Error::diag(
                f.value_expr.span,
                "Invalid 'for' expression",
                "Key expression is required when building an object.",
            ));
        }
        Ok(close)
    }

    /// `.name`, `.0` (legacy index), `.*` (attribute splat), `[key]` and `[*]` after `base`.
    #[inline(never)]
    fn traversals(&mut self, (base, height): Node) -> Result<Node> {
        let mut ops = Vec::new();
        // Splats recurse in the evaluator, so each is a level; so is an index expression.
        let mut levels = height;
        let mut splats = 0;
        loop {
            let t = self.peek();
            match t.kind {
                Kind::Dot => {
                    self.read();
                    let name = self.peek();
                    match name.kind {
                        Kind::Ident => ops.push(self.attr(t)),
                        Kind::Number => ops.push(self.legacy_index(t)?),
                        Kind::Star => {
                            self.read();
                            ops.push(Op::AttrSplat);
                            splats += 1;
                            // Only `.name` and `.0` belong to an attribute splat.
                            while self.peek().kind == Kind::Dot {
                                let dot = self.read();
                                let next = self.peek();
                                match next.kind {
                                    Kind::Number => ops.push(self.legacy_index(dot)?),
                                    Kind::Ident => ops.push(self.attr(dot)),
                                    Kind::Star => {
                                        return Err(self.err(
                                            next,
                                            "Nested splat expression not allowed",
                                            "A splat expression (*) cannot be used inside another \
                                             attribute-only splat expression.",
                                        ))
                                    }
                                    _ => {
                                        return Err(self.err(
                                            name,
                                            "Invalid attribute name",
                                            NEED_NAME,
                                        ))
                                    }
                                }
                            }
                        }
                        _ => return Err(self.err(name, "Invalid attribute name", NEED_NAME)),
                    }
                }
                Kind::OBrack => {
                    self.read();
                    if self.peek().kind == Kind::Star {
                        self.read();
                        let close = self.read();
                        if close.kind != Kind::CBrack {
                            return Err(self.err(
                                close,
                                "Missing close bracket on splat index",
                                "The star for a full splat operator must be immediately followed \
                                 by a closing bracket (\"]\").",
                            ));
                        }
                        ops.push(Op::FullSplat);
                        splats += 1;
                        continue;
                    }
                    self.newlines.push(false);
                    let (key, h) = self.expr()?;
                    let close = self.read();
                    if close.kind != Kind::CBrack {
                        return Err(self.err(
                            close,
                            "Missing close bracket on index",
                            "The index operator must end with a closing bracket (\"]\").",
                        ));
                    }
                    self.newlines.pop();
                    levels = levels.max(h);
                    ops.push(Op::Index(key));
                }
                _ => break,
            }
        }
        if ops.is_empty() {
            return Ok((base, height));
        }
        // The last token read ends the last operation.
        let span = self.span(base.span.start, self.toks[self.pos - 1].end);
        self.checked(
            ExprKind::Traverse(Box::new(base), ops),
            span,
            levels + splats + 1,
        )
    }

    fn attr(&mut self, dot: Token) -> Op {
        let name = self.read();
        Op::Attr(self.text(name).to_string(), self.span(dot.start, name.end))
    }

    /// `.0`: HCL's old index syntax. `.0.1` scans as one number and is refused, as in Go.
    fn legacy_index(&mut self, dot: Token) -> Result<Op> {
        let t = self.read();
        let text = self.text(t);
        if let Some((first, second)) = text.split_once('.') {
            return Err(self.err(
                t,
                "Invalid legacy index syntax",
                format!(
                    "When using the legacy index syntax, chaining two indexes together is not \
                     permitted. Use the proper index syntax instead, like [{first}][{second}]."
                ),
            ));
        }
        // An index that is no whole number in range fails when applied, like any bad index.
        let n = match self.number(t)? {
            Value::Number(n) => n.to_i64().and_then(|n| u64::try_from(n).ok()),
            _ => None,
        };
        Ok(Op::LegacyIndex(
            n.unwrap_or(u64::MAX),
            self.span(dot.start, t.end),
        ))
    }

    // --- templates ---

    fn template(&mut self) -> Result<Node> {
        let open = self.read();
        if open.kind == Kind::OQuote {
            let at = self.pos - 1;
            if let Some(close) = self.plain_string_end(at) {
                self.pos = close + 1;
                return Ok((self.plain_string(at, close)?, 1));
            }
        }
        let (end, flush) = match open.kind {
            Kind::OQuote => (Kind::CQuote, false),
            _ => (Kind::CHeredoc, self.text(open).starts_with("<<-")),
        };
        let (pieces, close, height) = self.pieces(end)?;
        let kind = self.template_kind(pieces, flush, self.tspan(close), false)?;
        let span = self.span(open.start, close.end);
        self.checked(kind, span, height)
    }

    /// Most quoted strings are plain text, `""` or `"text"`, and become a string literal
    /// without the template machinery: where the one opened by token `open` closes, if it
    /// is plain. (No newline tokens occur inside quotes.)
    fn plain_string_end(&self, open: usize) -> Option<usize> {
        match (self.toks[open + 1].kind, self.toks.get(open + 2)) {
            (Kind::CQuote, _) => Some(open + 1),
            (Kind::QuotedLit, Some(c)) if c.kind == Kind::CQuote => Some(open + 2),
            _ => None,
        }
    }

    /// The literal of the plain string from token `open` to `close` ([`Self::plain_string_end`]).
    fn plain_string(&self, open: usize, close: usize) -> Result<Expr> {
        let value = if close == open + 2 {
            self.literal(self.toks[open + 1], true)?
        } else {
            String::new()
        };
        let span = self.span(self.toks[open].start, self.toks[close].end);
        Ok(literal(Value::String(value), span))
    }

    /// Go's template token pass: the pieces up to `end`, with `~` trimming applied to the
    /// neighbouring literal piece. Returns the pieces, the closing token and the height.
    fn pieces(&mut self, end: Kind) -> Result<(Vec<Piece>, Token, u32)> {
        let first = self.peek();
        let base = self.depth;
        let mut out: Vec<Piece> = Vec::new();
        let (mut ltrim_next, mut can_trim_prev) = (false, false);
        let mut height = 0;
        loop {
            let t = self.read();
            if t.kind == end {
                self.depth = base;
                return Ok((out, t, height + 1));
            }
            let ltrim = std::mem::take(&mut ltrim_next);
            let trim_prev = std::mem::take(&mut can_trim_prev);
            match t.kind {
                Kind::QuotedLit | Kind::StringLit => {
                    self.literal_piece(t, ltrim, &mut out)?;
                    can_trim_prev = true;
                }
                Kind::TemplateInterp | Kind::TemplateControl => {
                    if trim_prev && t.end - t.start == 3 {
                        if let Some(Piece::Lit(prev)) = out.last_mut() {
                            prev.truncate(prev.trim_end().len());
                        }
                    }
                    height = height.max(self.sequence(t, first, end, base, &mut out)?);
                    ltrim_next = self.text(self.toks[self.pos - 1]) == "~}";
                }
                _ => return Err(self.err(t, "Unterminated template string", UNTERMINATED)),
            }
        }
    }

    #[inline(never)]
    fn literal_piece(&self, t: Token, ltrim: bool, out: &mut Vec<Piece>) -> Result<()> {
        let s = self.literal(t, t.kind == Kind::QuotedLit)?;
        out.push(Piece::Lit(if ltrim {
            s.trim_start().to_string()
        } else {
            s
        }));
        Ok(())
    }

    /// A `${ }` or `%{ }` sequence after its opening token, and its height counting the
    /// directives around it (each open `if`/`for` is a level for what it holds).
    fn sequence(
        &mut self,
        t: Token,
        first: Token,
        end: Kind,
        base: u32,
        out: &mut Vec<Piece>,
    ) -> Result<u32> {
        self.newlines.push(false);
        let level = self.depth - base;
        let h = if t.kind == Kind::TemplateInterp {
            self.interp(first, end, out)?
        } else {
            self.directive(t, base, out)?
        };
        self.newlines.pop();
        Ok(h + level)
    }

    fn interp(&mut self, first: Token, end: Kind, out: &mut Vec<Piece>) -> Result<u32> {
        let (e, h) = self.expr()?;
        self.interp_close(first, end)?;
        out.push(Piece::Interp(e));
        Ok(h)
    }

    /// The `}` after an interpolation's expression, or Go's error for what is there instead.
    fn interp_close(&mut self, first: Token, end: Kind) -> Result<()> {
        let close = self.peek();
        let escape = "If this is an embedded sequence for another language, escape it by \
                      starting with \"$${\" instead of just \"${\".";
        match close.kind {
            Kind::TemplateSeqEnd => {
                self.read();
                Ok(())
            }
            Kind::Eof => Err(self.err(
                first,
                "Unclosed template interpolation sequence",
                "There is no closing brace for this interpolation sequence before the end of the \
                 file. This might be caused by incorrect nesting inside the given expression.",
            )),
            Kind::Colon => Err(self.err(
                close,
                "Extra characters after interpolation expression",
                "Template interpolation doesn't expect a colon at this location. Did you intend \
                 this to be a literal sequence to be processed as part of another language? If \
                 so, you can escape it by starting with \"$${\" instead of just \"${\".",
            )),
            Kind::CQuote | Kind::OQuote if end == Kind::CQuote => Err(self.err(
                first,
                "Unclosed template interpolation sequence",
                "There is no closing brace for this interpolation sequence before the end of the \
                 quoted template. This might be caused by incorrect nesting inside the given \
                 expression.",
            )),
            _ => Err(self.err(
                close,
                "Extra characters after interpolation expression",
                format!(
                    "Expected a closing brace to end the interpolation expression, but found \
                     extra characters.\n\nThis can happen when you include interpolation syntax \
                     for another language, such as shell scripting, but forget to escape the \
                     interpolation start token. {escape}"
                ),
            )),
        }
    }

    /// A `%{ ... }` directive after its opening token; `base` is the template's depth, under
    /// which `endif`/`endfor` never go.
    #[inline(never)]
    fn directive(&mut self, open: Token, base: u32, out: &mut Vec<Piece>) -> Result<u32> {
        let kw = self.peek();
        if kw.kind != Kind::Ident {
            return Err(self.err(
                kw,
                "Invalid template directive",
                "A template directive keyword (\"if\", \"for\", etc) is expected at the beginning \
                 of a %{ sequence.",
            ));
        }
        self.read();
        let word = self.text(kw);
        let to_close = |p: &Self| p.span(open.start, p.peek().end);
        let mut height = 0;
        let piece = match word {
            "if" => {
                let (cond, h) = self.expr()?;
                height = h;
                self.enter(open)?;
                Piece::If(cond, to_close(self))
            }
            "else" => Piece::Else(to_close(self)),
            "endif" | "endfor" => {
                if self.depth > base {
                    self.depth -= 1;
                }
                if word == "endif" {
                    Piece::EndIf(to_close(self))
                } else {
                    Piece::EndFor(to_close(self))
                }
            }
            "for" => {
                let bad =
                    |p: &Self, detail: &str| p.err(p.peek(), "Invalid 'for' directive", detail);
                if self.peek().kind != Kind::Ident {
                    return Err(bad(
                        self,
                        "For directive requires variable name after 'for'.",
                    ));
                }
                let name = self.read();
                let mut value_var = self.text(name).to_string();
                let mut key_var = None;
                if self.peek().kind == Kind::Comma {
                    self.read();
                    if self.peek().kind != Kind::Ident {
                        return Err(bad(
                            self,
                            "For directive requires value variable name after comma.",
                        ));
                    }
                    let name = self.read();
                    let v = self.text(name).to_string();
                    key_var = Some(std::mem::replace(&mut value_var, v));
                }
                if !self.is_keyword(self.peek(), "in") {
                    return Err(bad(
                        self,
                        "For directive requires 'in' keyword after names.",
                    ));
                }
                self.read();
                let (collection, h) = self.expr()?;
                height = h;
                self.enter(open)?;
                Piece::For(Box::new(ForDirective {
                    key_var,
                    value_var,
                    collection,
                    span: to_close(self),
                }))
            }
            other => {
                let suggestion = ["if", "for", "else", "endif", "endfor"]
                    .into_iter()
                    .find(|s| strsim::levenshtein(other, s) < 3)
                    .map(|s| format!(" Did you mean \"{s}\"?"))
                    .unwrap_or_default();
                return Err(self.err(
                    kw,
                    "Invalid template control keyword",
                    format!("{other:?} is not a valid template control keyword.{suggestion}"),
                ));
            }
        };
        let close = self.peek();
        if close.kind != Kind::TemplateSeqEnd {
            return Err(self.err(
                close,
                &format!("Extra characters in {word} marker"),
                "Expected a closing brace to end the sequence, but found extra characters.",
            ));
        }
        self.read();
        out.push(piece);
        Ok(height)
    }

    /// The value of a literal token, or Go's diagnostic for a bad escape in it.
    fn literal(&self, t: Token, quoted: bool) -> Result<String> {
        template::literal_value(self.text(t), quoted).map_err(|bad| {
            let start = t.start as usize;
            Error::diag(
                Span::new(self.file, start + bad.range.start..start + bad.range.end),
                "Invalid escape sequence",
                bad.detail,
            )
        })
    }

    /// The tree for a template's pieces. A quoted string or heredoc of plain text becomes a
    /// string literal (unless `always_template`); a template that is one interpolation and
    /// nothing else keeps its value's type (Go's pass-through), any other is a string.
    fn template_kind(
        &self,
        mut pieces: Vec<Piece>,
        flush: bool,
        end: Span,
        always_template: bool,
    ) -> Result<ExprKind> {
        if flush {
            template::flush_heredoc(&mut pieces);
        }
        template::meld(&mut pieces);
        let passthrough = matches!(pieces.as_slice(), [Piece::Interp(_)]);
        if !always_template {
            match pieces.as_mut_slice() {
                [] => return Ok(ExprKind::Literal(Value::String(String::new()))),
                [Piece::Lit(s)] => return Ok(ExprKind::Literal(Value::String(std::mem::take(s)))),
                _ => {}
            }
        }
        let mut parts = template::nest(pieces, end)?;
        if !passthrough && matches!(parts.as_slice(), [Part::Interp(_)]) {
            // An empty text piece beside the interpolation (left by `~`) makes it a string.
            parts.push(Part::Lit(String::new()));
        }
        Ok(ExprKind::Template(parts))
    }
}

const UNTERMINATED: &str = "No closing marker was found for the string.";
const NEED_NAME: &str = "An attribute name is required after a dot.";
const MISSING_EQUALS: &str = "An argument or block definition is required here. To set an \
                              argument, use the equals sign \"=\" to introduce the argument value.";

/// Stands in for a part not parsed yet.
fn placeholder() -> Expr {
    literal(Value::Null, Span::default())
}

fn literal(v: Value, span: Span) -> Expr {
    Expr {
        kind: ExprKind::Literal(v),
        span,
    }
}

/// A bare name (or `true`, `false`, `null`) is a literal key, unless in parentheses.
fn object_key(key: Expr, forced: bool) -> ObjectKey {
    if !forced {
        match &key.kind {
            ExprKind::Var(name) => return ObjectKey::Ident(name.clone()),
            ExprKind::Literal(Value::Bool(b)) => return ObjectKey::Ident(b.to_string()),
            ExprKind::Literal(Value::Null) => return ObjectKey::Ident("null".into()),
            _ => {}
        }
    }
    ObjectKey::Expr(key)
}

fn check_redefined(existing: &[Attribute], attr: &Attribute) -> Result<()> {
    match existing.iter().find(|a| a.name == attr.name) {
        Some(prev) => Err(Error::diag(
            attr.name_span,
            "Attribute redefined",
            format!(
                "The argument \"{}\" was already set at {{range}}. Each argument may be set only once.",
                attr.name
            ),
        )
        .with_related(prev.name_span)),
        None => Ok(()),
    }
}
