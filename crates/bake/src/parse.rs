//! Reading bake files into the syntax tree: HCL native syntax through hcl-edit (which keeps
//! spans), HCL-JSON through serde_json (every JSON string is a template, as in HCL's JSON
//! syntax). Also reports what Go's HCL parser rejects at this stage: syntax errors and an
//! attribute set twice in one block.

use hcl_edit::expr::{Expression, ObjectKey as HKey, TraversalOperator};
use hcl_edit::structure::{BlockLabel, Structure};
use hcl_edit::template::{Directive, Element, Strip, Template};
use hcl_edit::Span as _;

use crate::ast::*;
use crate::error::{Error, Result};
use crate::source::Span;
use crate::value::{Number, Value};

pub fn parse_hcl(file: u32, text: &str) -> Result<Body> {
    // hcl-edit rejects an attribute set twice in one block without saying where the first
    // one was; rename each duplicate (same length, so spans hold), parse again, and let
    // `check_redefined` report it as Go HCL does.
    let mut renamed: Vec<(usize, String)> = Vec::new();
    let mut src = std::borrow::Cow::Borrowed(text);
    let body = loop {
        match hcl_edit::parser::parse_body(&src) {
            Ok(b) => break b,
            Err(e) if e.message().contains("redefined attribute") && renamed.len() < 64 => {
                let at = e.location().offset();
                let Some(tail) = src.get(at..) else {
                    return Err(syntax_error(file, text, &e));
                };
                let len = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(tail.len());
                if len == 0 {
                    return Err(syntax_error(file, text, &e));
                }
                renamed.push((at, src[at..at + len].to_string()));
                let mut fill = format!("_{}", renamed.len());
                while fill.len() < len {
                    fill.push('_');
                }
                if fill.len() > len {
                    return Err(syntax_error(file, text, &e));
                }
                src.to_mut().replace_range(at..at + len, &fill);
            }
            Err(e) => return Err(syntax_error(file, text, &e)),
        }
    };
    let conv = Conv {
        file,
        text,
        renamed,
    };
    conv.body(&body)
}

/// Builds the diagnostic for text hcl-edit rejected. The common mistake of a string left
/// open at the end of a line gets Go HCL's own wording; anything else keeps hcl-edit's.
fn syntax_error(file: u32, text: &str, e: &hcl_edit::parser::Error) -> Error {
    if let Some(nl) = unclosed_string_newline(text) {
        let span = Span::new(file, nl..nl + 1);
        return Error::diag(
            span,
            "Invalid multi-line string",
            "Quoted strings may not be split over multiple lines. To produce a multi-line string, \
             either use the \\n escape to represent a newline character or use the \"heredoc\" \
             multi-line template syntax.",
        )
        .with_others(2);
    }
    let loc = e.location();
    let offset = loc.offset().min(text.len());
    let span = Span::new(file, offset..offset);
    Error::diag(span, "Invalid syntax", e.message().to_string())
}

/// Finds a newline inside a quoted string (scanning like HCL's lexer: strings, `${ }`
/// nesting, comments and heredocs), returning its byte offset.
fn unclosed_string_newline(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = 0;
    // Stack of contexts: true = inside a quoted string, false = inside `${`/`%{` braces.
    let mut stack: Vec<bool> = Vec::new();
    let mut depth_braces: Vec<usize> = Vec::new();
    let mut braces = 0usize;
    while i < b.len() {
        let in_str = stack.last() == Some(&true);
        let c = b[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'\n' => return Some(i),
                b'$' | b'%' if b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&b'{') => i += 2,
                b'$' | b'%' if b.get(i + 1) == Some(&b'{') => {
                    stack.push(false);
                    depth_braces.push(braces);
                    braces += 1;
                    i += 1;
                }
                _ => {}
            }
        } else {
            match c {
                b'"' => stack.push(true),
                b'#' => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    i += 2;
                    while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                        i += 1;
                    }
                    i += 1;
                }
                b'<' if b.get(i + 1) == Some(&b'<') => {
                    // Heredoc: skip to the closing marker line.
                    let mut j = i + 2;
                    if b.get(j) == Some(&b'-') {
                        j += 1;
                    }
                    let start = j;
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                    let marker = &text[start..j];
                    if marker.is_empty() {
                        i += 1;
                    } else {
                        let mut k = j;
                        loop {
                            let nl = text[k..].find('\n')?;
                            k += nl + 1;
                            let line_end = text[k..].find('\n').map_or(text.len(), |n| k + n);
                            if text[k..line_end].trim() == marker {
                                i = line_end;
                                break;
                            }
                        }
                    }
                }
                b'{' => braces += 1,
                b'}' => {
                    braces = braces.saturating_sub(1);
                    if depth_braces.last() == Some(&braces) {
                        depth_braces.pop();
                        stack.pop();
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

struct Conv<'a> {
    file: u32,
    text: &'a str,
    /// Attribute names hidden from hcl-edit (offset, real name); see `parse_hcl`.
    renamed: Vec<(usize, String)>,
}

impl Conv<'_> {
    fn span(&self, r: Option<std::ops::Range<usize>>) -> Span {
        Span::new(self.file, r.unwrap_or(0..0))
    }

    fn body(&self, body: &hcl_edit::structure::Body) -> Result<Body> {
        let mut out = Body::default();
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let start = a.key.span().map_or(usize::MAX, |r| r.start);
                    let name = match self.renamed.iter().find(|(at, _)| *at == start) {
                        Some((_, real)) => real.clone(),
                        None => a.key.as_str().to_string(),
                    };
                    let attr = Attribute {
                        name,
                        name_span: self.span(a.key.span()),
                        expr: self.expr(&a.value)?,
                    };
                    check_redefined(&out.attrs, &attr)?;
                    out.attrs.push(attr);
                }
                Structure::Block(b) => {
                    let inner = self.body(&b.body)?;
                    let labels: Vec<String> =
                        b.labels.iter().map(|l| l.as_str().to_string()).collect();
                    let label_spans = b
                        .labels
                        .iter()
                        .map(|l| match l {
                            BlockLabel::Ident(i) => self.span(i.span()),
                            BlockLabel::String(s) => self.span(s.span()),
                        })
                        .collect();
                    // The body's `{` follows the last label (or the block type).
                    let after = b
                        .labels
                        .last()
                        .and_then(|l| l.span())
                        .or_else(|| b.ident.span())
                        .map_or(0, |r| r.end);
                    let brace = self
                        .text
                        .get(after..)
                        .and_then(|t| t.find('{'))
                        .map_or(after, |n| after + n);
                    out.blocks.push(Block {
                        kind: b.ident.as_str().to_string(),
                        labels,
                        label_spans,
                        attrs: inner.attrs,
                        blocks: inner.blocks,
                        open_brace: Span::new(self.file, brace..brace),
                    });
                }
            }
        }
        Ok(out)
    }

    fn expr(&self, e: &Expression) -> Result<Expr> {
        let span = self.span(e.span());
        let kind = match e {
            Expression::Null(_) => ExprKind::Literal(Value::Null),
            Expression::Bool(b) => ExprKind::Literal(Value::Bool(*b.value())),
            Expression::Number(n) => {
                let src = e.span().and_then(|r| self.text.get(r)).unwrap_or("");
                let Some(num) = Number::parse(src.trim())
                    .or_else(|| n.value().as_f64().and_then(Number::from_f64))
                else {
                    return Err(Error::diag(
                        span,
                        "Invalid number literal",
                        format!("{src} is out of range."),
                    ));
                };
                ExprKind::Literal(Value::Number(num))
            }
            Expression::String(s) => ExprKind::Literal(Value::String(s.value().clone())),
            Expression::Array(a) => {
                ExprKind::Tuple(a.iter().map(|x| self.expr(x)).collect::<Result<_>>()?)
            }
            Expression::Object(o) => {
                let mut items = Vec::new();
                for (k, v) in o.iter() {
                    let key = match k {
                        HKey::Ident(i) => ObjectKey::Ident(i.as_str().to_string()),
                        HKey::Expression(x) => ObjectKey::Expr(self.expr(x)?),
                    };
                    items.push((key, self.expr(v.expr())?));
                }
                ExprKind::Object(items)
            }
            Expression::StringTemplate(t) => ExprKind::Template(self.template(t)?),
            Expression::HeredocTemplate(h) => ExprKind::Template(self.template(&h.template)?),
            Expression::Parenthesis(p) => ExprKind::Paren(Box::new(self.expr(p.inner())?)),
            Expression::Variable(v) => ExprKind::Var(v.as_str().to_string()),
            Expression::Conditional(c) => ExprKind::Cond(Box::new([
                self.expr(&c.cond_expr)?,
                self.expr(&c.true_expr)?,
                self.expr(&c.false_expr)?,
            ])),
            Expression::FuncCall(f) => {
                let mut name = String::new();
                for ns in &f.name.namespace {
                    name.push_str(ns.as_str());
                    name.push_str("::");
                }
                name.push_str(f.name.name.as_str());
                ExprKind::Call(Box::new(Call {
                    name,
                    name_span: self.span(f.name.name.span()),
                    args: f.args.iter().map(|x| self.expr(x)).collect::<Result<_>>()?,
                    expand_final: f.args.expand_final(),
                }))
            }
            Expression::Traversal(t) => {
                let mut ops = Vec::new();
                for op in &t.operators {
                    ops.push(match op.value() {
                        TraversalOperator::AttrSplat(_) => Op::AttrSplat,
                        TraversalOperator::FullSplat(_) => Op::FullSplat,
                        TraversalOperator::GetAttr(i) => {
                            Op::Attr(i.as_str().to_string(), self.span(op.span()))
                        }
                        TraversalOperator::Index(x) => Op::Index(self.expr(x)?),
                        TraversalOperator::LegacyIndex(n) => {
                            Op::LegacyIndex(*n.value(), self.span(op.span()))
                        }
                    });
                }
                ExprKind::Traverse(Box::new(self.expr(&t.expr)?), ops)
            }
            Expression::UnaryOp(u) => {
                let op = match u.operator.value() {
                    hcl_edit::expr::UnaryOperator::Neg => UnaryOp::Neg,
                    hcl_edit::expr::UnaryOperator::Not => UnaryOp::Not,
                };
                ExprKind::Unary(op, Box::new(self.expr(&u.expr)?))
            }
            Expression::BinaryOp(b) => {
                use hcl_edit::expr::BinaryOperator as B;
                let op = match b.operator.value() {
                    B::Eq => BinaryOp::Eq,
                    B::NotEq => BinaryOp::NotEq,
                    B::LessEq => BinaryOp::LessEq,
                    B::GreaterEq => BinaryOp::GreaterEq,
                    B::Less => BinaryOp::Less,
                    B::Greater => BinaryOp::Greater,
                    B::Plus => BinaryOp::Plus,
                    B::Minus => BinaryOp::Minus,
                    B::Mul => BinaryOp::Mul,
                    B::Div => BinaryOp::Div,
                    B::Mod => BinaryOp::Mod,
                    B::And => BinaryOp::And,
                    B::Or => BinaryOp::Or,
                };
                ExprKind::Binary(
                    op,
                    Box::new([self.expr(&b.lhs_expr)?, self.expr(&b.rhs_expr)?]),
                )
            }
            Expression::ForExpr(f) => ExprKind::For(Box::new(ForExpr {
                key_var: f.intro.key_var.as_ref().map(|k| k.as_str().to_string()),
                value_var: f.intro.value_var.as_str().to_string(),
                collection: self.expr(&f.intro.collection_expr)?,
                key_expr: f.key_expr.as_ref().map(|k| self.expr(k)).transpose()?,
                value_expr: self.expr(&f.value_expr)?,
                cond: f.cond.as_ref().map(|c| self.expr(&c.expr)).transpose()?,
                grouping: f.grouping,
            })),
        };
        Ok(Expr { kind, span })
    }

    fn template(&self, t: &Template) -> Result<Vec<Part>> {
        let mut flat = Vec::new();
        self.flatten(t, &mut flat)?;
        apply_strips(&mut flat);
        let mut it = flat.into_iter();
        Ok(nest(&mut it, true).0)
    }

    fn flatten(&self, t: &Template, out: &mut Vec<Tok>) -> Result<()> {
        for el in t.iter() {
            match el {
                Element::Literal(s) => out.push(Tok::Lit(s.value().clone())),
                Element::Interpolation(i) => out.push(Tok::Interp(self.expr(&i.expr)?, i.strip)),
                Element::Directive(d) => match d.as_ref() {
                    Directive::If(d) => {
                        out.push(Tok::If(self.expr(&d.if_expr.cond_expr)?, d.if_expr.strip));
                        self.flatten(&d.if_expr.template, out)?;
                        if let Some(e) = &d.else_expr {
                            out.push(Tok::Else(e.strip));
                            self.flatten(&e.template, out)?;
                        }
                        out.push(Tok::EndIf(d.endif_expr.strip));
                    }
                    Directive::For(d) => {
                        let f = &d.for_expr;
                        out.push(Tok::For(
                            f.key_var.as_ref().map(|k| k.as_str().to_string()),
                            f.value_var.as_str().to_string(),
                            self.expr(&f.collection_expr)?,
                            f.strip,
                        ));
                        self.flatten(&f.template, out)?;
                        out.push(Tok::EndFor(d.endfor_expr.strip));
                    }
                },
            }
        }
        Ok(())
    }
}

/// Flat template tokens, before `~` markers are applied and directives nested.
enum Tok {
    Lit(String),
    Interp(Expr, Strip),
    If(Expr, Strip),
    Else(Strip),
    EndIf(Strip),
    For(Option<String>, String, Expr, Strip),
    EndFor(Strip),
}

impl Tok {
    fn strip(&self) -> Strip {
        match self {
            Tok::Lit(_) => Strip::None,
            Tok::Interp(_, s)
            | Tok::If(_, s)
            | Tok::Else(s)
            | Tok::EndIf(s)
            | Tok::For(.., s)
            | Tok::EndFor(s) => *s,
        }
    }
}

/// `~` on the left of a marker trims the end of the literal before it; on the right, the
/// start of the literal after it (HCL applies this to the flat token stream).
fn apply_strips(toks: &mut [Tok]) {
    for i in 0..toks.len() {
        let s = toks[i].strip();
        if matches!(s, Strip::Start | Strip::Both) && i > 0 {
            if let Tok::Lit(l) = &mut toks[i - 1] {
                let n = l.trim_end().len();
                l.truncate(n);
            }
        }
        if matches!(s, Strip::End | Strip::Both) && i + 1 < toks.len() {
            if let Tok::Lit(l) = &mut toks[i + 1] {
                *l = l.trim_start().to_string();
            }
        }
    }
}

/// Collects parts up to the matching `else`/`endif`/`endfor`; true when stopped at `else`.
/// At the top level (`top`) there is nothing to match, and stray closers are ignored.
fn nest(it: &mut std::vec::IntoIter<Tok>, top: bool) -> (Vec<Part>, bool) {
    let mut out = Vec::new();
    while let Some(t) = it.next() {
        match t {
            Tok::Lit(s) => {
                if !s.is_empty() {
                    out.push(Part::Lit(s));
                }
            }
            Tok::Interp(e, _) => out.push(Part::Interp(e)),
            Tok::If(cond, _) => {
                let (then, ended_by_else) = nest(it, false);
                let otherwise = if ended_by_else {
                    nest(it, false).0
                } else {
                    Vec::new()
                };
                out.push(Part::If {
                    cond,
                    then,
                    otherwise,
                });
            }
            Tok::For(key_var, value_var, collection, _) => {
                let (body, _) = nest(it, false);
                out.push(Part::For {
                    key_var,
                    value_var,
                    collection,
                    body,
                });
            }
            Tok::Else(_) | Tok::EndIf(_) | Tok::EndFor(_) if top => {}
            Tok::Else(_) => return (out, true),
            Tok::EndIf(_) | Tok::EndFor(_) => return (out, false),
        }
    }
    (out, false)
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

// ---------------------------------------------------------------------------------------
// HCL-JSON

pub fn parse_json(file: u32, text: &str) -> Result<Body> {
    let root: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::diag(Span::new(file, 0..0), "Invalid JSON", e.to_string()))?;
    let serde_json::Value::Object(root) = root else {
        return Err(Error::diag(
            Span::new(file, 0..0),
            "Invalid JSON",
            "the root must be an object",
        ));
    };
    let j = JsonConv { file };
    let mut body = Body::default();
    for (key, val) in &root {
        match key.as_str() {
            "variable" | "target" | "group" | "function" => {
                let serde_json::Value::Object(items) = val else {
                    return Err(j.err(format!("{key} must be an object keyed by name")));
                };
                for (name, content) in items {
                    body.blocks.push(j.block(key, Some(name), content)?);
                }
            }
            _ => body.attrs.push(Attribute {
                name: key.clone(),
                name_span: j.span(),
                expr: j.expr(val)?,
            }),
        }
    }
    Ok(body)
}

struct JsonConv {
    file: u32,
}

impl JsonConv {
    fn span(&self) -> Span {
        Span::new(self.file, 0..0)
    }

    fn err(&self, detail: String) -> Error {
        Error::diag(self.span(), "Invalid JSON bake file", detail)
    }

    fn block(&self, kind: &str, label: Option<&str>, content: &serde_json::Value) -> Result<Block> {
        let serde_json::Value::Object(attrs) = content else {
            return Err(self.err(format!("{kind} body must be an object")));
        };
        let mut block = Block {
            kind: kind.to_string(),
            labels: label.map(|l| vec![l.to_string()]).unwrap_or_default(),
            label_spans: label.map(|_| vec![self.span()]).unwrap_or_default(),
            attrs: Vec::new(),
            blocks: Vec::new(),
            open_brace: self.span(),
        };
        for (k, v) in attrs {
            if kind == "variable" && k == "validation" {
                let items: Vec<&serde_json::Value> = match v {
                    serde_json::Value::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                for item in items {
                    block.blocks.push(self.block("validation", None, item)?);
                }
                continue;
            }
            let expr = if (kind == "variable" && k == "type")
                || (kind == "function" && (k == "params" || k == "variadic_params"))
            {
                self.raw_expr(v)?
            } else {
                self.expr(v)?
            };
            block.attrs.push(Attribute {
                name: k.clone(),
                name_span: self.span(),
                expr,
            });
        }
        Ok(block)
    }

    /// A JSON value whose strings are expressions rather than templates (`type`, params).
    fn raw_expr(&self, v: &serde_json::Value) -> Result<Expr> {
        match v {
            serde_json::Value::String(s) => {
                let parsed = hcl_edit::parser::parse_expr(s)
                    .map_err(|e| self.err(e.message().to_string()))?;
                let conv = Conv {
                    file: self.file,
                    text: s,
                    renamed: Vec::new(),
                };
                let mut e = conv.expr(&parsed)?;
                zero_spans(&mut e, self.span());
                Ok(e)
            }
            serde_json::Value::Array(a) => Ok(Expr {
                kind: ExprKind::Tuple(a.iter().map(|x| self.raw_expr(x)).collect::<Result<_>>()?),
                span: self.span(),
            }),
            other => self.expr(other),
        }
    }

    fn expr(&self, v: &serde_json::Value) -> Result<Expr> {
        let kind = match v {
            serde_json::Value::String(s) => {
                let t = hcl_edit::parser::parse_template(s)
                    .map_err(|e| self.err(e.message().to_string()))?;
                let conv = Conv {
                    file: self.file,
                    text: s,
                    renamed: Vec::new(),
                };
                let mut e = Expr {
                    kind: ExprKind::Template(conv.template(&t)?),
                    span: self.span(),
                };
                zero_spans(&mut e, self.span());
                return Ok(e);
            }
            serde_json::Value::Array(a) => {
                ExprKind::Tuple(a.iter().map(|x| self.expr(x)).collect::<Result<_>>()?)
            }
            serde_json::Value::Object(o) => ExprKind::Object(
                o.iter()
                    .map(|(k, v)| Ok((ObjectKey::Ident(k.clone()), self.expr(v)?)))
                    .collect::<Result<_>>()?,
            ),
            other => ExprKind::Literal(Value::from_json(other)),
        };
        Ok(Expr {
            kind,
            span: self.span(),
        })
    }
}

/// Spans inside a JSON string point into the string, not the file: reset them.
fn zero_spans(e: &mut Expr, span: Span) {
    e.span = span;
    match &mut e.kind {
        ExprKind::Literal(_) | ExprKind::Var(_) => {}
        ExprKind::Tuple(items) => items.iter_mut().for_each(|x| zero_spans(x, span)),
        ExprKind::Object(items) => items.iter_mut().for_each(|(k, v)| {
            if let ObjectKey::Expr(k) = k {
                zero_spans(k, span);
            }
            zero_spans(v, span);
        }),
        ExprKind::Template(parts) => zero_parts(parts, span),
        ExprKind::Cond(c) => c.iter_mut().for_each(|x| zero_spans(x, span)),
        ExprKind::Call(c) => {
            c.name_span = span;
            c.args.iter_mut().for_each(|x| zero_spans(x, span));
        }
        ExprKind::Traverse(base, ops) => {
            zero_spans(base, span);
            for op in ops {
                match op {
                    Op::Attr(_, s) | Op::LegacyIndex(_, s) => *s = span,
                    Op::Index(x) => zero_spans(x, span),
                    _ => {}
                }
            }
        }
        ExprKind::Unary(_, x) | ExprKind::Paren(x) => zero_spans(x, span),
        ExprKind::Binary(_, b) => b.iter_mut().for_each(|x| zero_spans(x, span)),
        ExprKind::For(f) => {
            zero_spans(&mut f.collection, span);
            if let Some(k) = &mut f.key_expr {
                zero_spans(k, span);
            }
            zero_spans(&mut f.value_expr, span);
            if let Some(c) = &mut f.cond {
                zero_spans(c, span);
            }
        }
    }
}

fn zero_parts(parts: &mut [Part], span: Span) {
    for p in parts {
        match p {
            Part::Lit(_) => {}
            Part::Interp(e) => zero_spans(e, span),
            Part::If {
                cond,
                then,
                otherwise,
            } => {
                zero_spans(cond, span);
                zero_parts(then, span);
                zero_parts(otherwise, span);
            }
            Part::For {
                collection, body, ..
            } => {
                zero_spans(collection, span);
                zero_parts(body, span);
            }
        }
    }
}
