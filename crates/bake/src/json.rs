//! HCL-JSON bake files, read through serde_json into the same syntax tree as HCL native
//! syntax. As in HCL's JSON syntax, every JSON string is a template; `type`, `params` and
//! `variadic_params` strings are expressions. Spans inside those strings would point into
//! the string, not the file, so they are all reset to the file's start.

use crate::ast::*;
use crate::error::{Error, Result};
use crate::parse;
use crate::source::Span;
use crate::value::Value;

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
                let mut e =
                    parse::parse_expression(self.file, s).map_err(|e| self.err(message(e)))?;
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
                let mut e =
                    parse::parse_template(self.file, s).map_err(|e| self.err(message(e)))?;
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

/// The text of a syntax error in a JSON string (its position would be inside the string).
fn message(e: Error) -> String {
    match e {
        Error::Diag(d) => format!("{}; {}", d.summary, d.detail),
        Error::Msg(m) => m,
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
