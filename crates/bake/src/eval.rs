//! Expression and template evaluation, with HCL's semantics and diagnostics.
//!
//! Names that are not local (for-expression variables, function parameters, matrix
//! values) are asked of a `Globals` implementation: bake variables, top-level attributes,
//! `target.<name>.<attr>` references and user functions live there (see `config.rs`).

use std::collections::BTreeMap;

use crate::ast::*;
use crate::error::{Error, Result};
use crate::functions::{self, FnError};
use crate::source::Span;
use crate::value::{convert, Number, Type, Value};

/// What an expression can see beyond its locals.
pub trait Globals {
    /// A global name (variable, top-level attribute, built-in). `None` if it does not exist.
    fn global(&self, name: &str, span: Span) -> Result<Option<Value>>;
    /// Every global name, for "Did you mean" suggestions.
    fn global_names(&self) -> Vec<String>;
    /// `target.<name>.<attr>`: the own block value of another target's attribute.
    fn target_attr(&self, target: &str, attr: &str, span: Span) -> Result<Value>;
    /// A user-defined `function` block.
    fn user_function(&self, name: &str) -> Option<&UserFunction>;
    /// Reports a user-function call cycle before the call is made.
    fn check_function_cycle(&self, name: &str, span: Span) -> Result<()>;
}

/// A `function "name" { params = [...] variadic_params = x result = expr }` block.
#[derive(Clone, Debug)]
pub struct UserFunction {
    pub name: String,
    pub params: Vec<String>,
    pub variadic: Option<String>,
    pub result: Expr,
}

/// Local bindings, innermost last.
pub type Locals = Vec<(String, Value)>;

pub struct Evaluator<'g> {
    pub globals: &'g dyn Globals,
}

fn invalid(span: Span, summary: &str, detail: impl Into<String>) -> Error {
    Error::diag(span, summary, detail)
}

impl<'g> Evaluator<'g> {
    pub fn new(globals: &'g dyn Globals) -> Self {
        Evaluator { globals }
    }

    pub fn eval(&self, e: &Expr, locals: &mut Locals) -> Result<Value> {
        match &e.kind {
            ExprKind::Literal(v) => Ok(v.clone()),
            ExprKind::Tuple(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    out.push(self.eval(i, locals)?);
                }
                Ok(Value::Tuple(out))
            }
            ExprKind::Object(items) => {
                let mut out = BTreeMap::new();
                for (k, v) in items {
                    let key = self.object_key(k, locals)?;
                    let val = self.eval(v, locals)?;
                    out.insert(key, val);
                }
                Ok(Value::Object(out))
            }
            ExprKind::Template(parts) => self.template(parts, locals),
            ExprKind::Var(name) => self.var(name, e.span, locals),
            ExprKind::Paren(inner) => self.eval(inner, locals),
            ExprKind::Cond(c) => {
                let cond = self.eval(&c[0], locals)?;
                let b =
                    match convert(cond, &Type::Bool) {
                        Ok(Value::Bool(b)) => b,
                        Ok(Value::Null) => return Err(invalid(
                            c[0].span,
                            "Null condition",
                            "The condition value is null. Conditions must either be true or false.",
                        )),
                        _ => {
                            return Err(invalid(
                                c[0].span,
                                "Incorrect condition type",
                                "The condition expression must be of type bool.",
                            ))
                        }
                    };
                self.eval(if b { &c[1] } else { &c[2] }, locals)
            }
            ExprKind::Call(call) => self.call(call, e.span, locals),
            ExprKind::Traverse(base, ops) => self.traverse(base, ops, e.span, locals),
            ExprKind::Unary(op, x) => {
                let v = self.eval(x, locals)?;
                match op {
                    UnaryOp::Neg => Ok(Value::Number(
                        self.operand_number(v, x.span, "operand")?.neg(),
                    )),
                    UnaryOp::Not => Ok(Value::Bool(!self.operand_bool(v, x.span, "operand")?)),
                }
            }
            ExprKind::Binary(op, sides) => self.binary(*op, &sides[0], &sides[1], e.span, locals),
            ExprKind::For(f) => self.for_expr(f, e.span, locals),
        }
    }

    fn object_key(&self, k: &ObjectKey, locals: &mut Locals) -> Result<String> {
        match k {
            ObjectKey::Ident(s) => Ok(s.clone()),
            ObjectKey::Expr(x) => {
                let v = self.eval(x, locals)?;
                match v.to_template_string() {
                    Some(s) => Ok(s),
                    None if v.is_null() => Err(invalid(
                        x.span,
                        "Invalid object key",
                        "Key expression result must not be null.",
                    )),
                    None => Err(invalid(
                        x.span,
                        "Incorrect key type",
                        "Can't use this value as a key: string required.",
                    )),
                }
            }
        }
    }

    fn var(&self, name: &str, span: Span, locals: &Locals) -> Result<Value> {
        if let Some((_, v)) = locals.iter().rev().find(|(n, _)| n == name) {
            return Ok(v.clone());
        }
        match self.globals.global(name, span)? {
            Some(v) => Ok(v),
            None => {
                let mut detail = format!("There is no variable named \"{name}\".");
                let mut names: Vec<String> = self.globals.global_names();
                names.extend(locals.iter().map(|(n, _)| n.clone()));
                names.sort();
                if let Some(s) = names.iter().find(|n| strsim::levenshtein(n, name) < 3) {
                    detail.push_str(&format!(" Did you mean \"{s}\"?"));
                }
                Err(invalid(span, "Unknown variable", detail))
            }
        }
    }

    pub fn template(&self, parts: &[Part], locals: &mut Locals) -> Result<Value> {
        if let [Part::Interp(e)] = parts {
            return self.eval(e, locals);
        }
        let mut out = String::new();
        self.render_parts(parts, locals, &mut out)?;
        Ok(Value::String(out))
    }

    fn render_parts(&self, parts: &[Part], locals: &mut Locals, out: &mut String) -> Result<()> {
        for p in parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Interp(e) => {
                    let v = self.eval(e, locals)?;
                    out.push_str(&self.interp_string(v, e.span)?);
                }
                Part::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    let v = self.eval(cond, locals)?;
                    let b = match convert(v, &Type::Bool) {
                        Ok(Value::Bool(b)) => b,
                        _ => {
                            return Err(invalid(
                                cond.span,
                                "Invalid template if condition",
                                "The condition expression must be of type bool.",
                            ))
                        }
                    };
                    self.render_parts(if b { then } else { otherwise }, locals, out)?;
                }
                Part::For {
                    key_var,
                    value_var,
                    collection,
                    body,
                } => {
                    let coll = self.eval(collection, locals)?;
                    let items = iterate(&coll).ok_or_else(|| {
                        invalid(
                            collection.span,
                            "Invalid template for collection",
                            "A for directive can only iterate over a list, set, tuple, map or object.",
                        )
                    })?;
                    for (k, v) in items {
                        let n = locals.len();
                        if let Some(kv) = key_var {
                            locals.push((kv.clone(), k));
                        }
                        locals.push((value_var.clone(), v));
                        let r = self.render_parts(body, locals, out);
                        locals.truncate(n);
                        r?;
                    }
                }
            }
        }
        Ok(())
    }

    fn interp_string(&self, v: Value, span: Span) -> Result<String> {
        match v.to_template_string() {
            Some(s) => Ok(s),
            None if v.is_null() => Err(invalid(
                span,
                "Invalid template interpolation value",
                "The expression result is null. Cannot include a null value in a string template.",
            )),
            None => Err(invalid(
                span,
                "Invalid template interpolation value",
                "Cannot include the given value in a string template: string required.",
            )),
        }
    }

    fn call(&self, call: &Call, span: Span, locals: &mut Locals) -> Result<Value> {
        if self.globals.user_function(&call.name).is_none() {
            if let Some(r) = self.special_call(call, span, locals) {
                return r;
            }
        }
        let mut args = Vec::with_capacity(call.args.len());
        for a in &call.args {
            args.push(self.eval(a, locals)?);
        }
        if call.expand_final {
            let last = args.pop().unwrap_or(Value::Null);
            match last.as_seq() {
                Some(items) => args.extend(items.iter().cloned()),
                None => {
                    let span = call.args.last().map_or(call.name_span, |a| a.span);
                    return Err(invalid(
                        span,
                        "Invalid expanding argument value",
                        "The expanding argument (indicated by ...) must be of a tuple, list, or set type.",
                    ));
                }
            }
        }
        if let Some(f) = self.globals.user_function(&call.name) {
            self.globals
                .check_function_cycle(&call.name, call.name_span)?;
            return self.call_user(f, args, call);
        }
        if !functions::exists(&call.name) {
            return Err(invalid(
                call.name_span,
                "Call to unknown function",
                format!("There is no function named \"{}\".", call.name),
            ));
        }
        functions::call(&call.name, args).map_err(|e| self.fn_error(call, span, e))
    }

    fn call_user(&self, f: &UserFunction, args: Vec<Value>, call: &Call) -> Result<Value> {
        if args.len() < f.params.len() {
            return Err(invalid(
                call.name_span,
                "Not enough function arguments",
                format!(
                    "Function \"{}\" expects {} argument(s). Missing value for \"{}\".",
                    f.name,
                    f.params.len(),
                    f.params[args.len()]
                ),
            ));
        }
        if args.len() > f.params.len() && f.variadic.is_none() {
            return Err(invalid(
                call.name_span,
                "Too many function arguments",
                format!(
                    "Function \"{}\" expects only {} argument(s).",
                    f.name,
                    f.params.len()
                ),
            ));
        }
        let mut args = args.into_iter();
        let mut locals: Locals = f
            .params
            .iter()
            .map(|p| (p.clone(), args.next().unwrap_or_default()))
            .collect();
        if let Some(v) = &f.variadic {
            locals.push((v.clone(), Value::Tuple(args.collect())));
        }
        self.eval(&f.result, &mut locals)
    }

    /// HCL's diagnostic for a failed built-in call: argument errors point at the argument,
    /// missing arguments at the closing parenthesis, other failures at the whole call.
    fn fn_error(&self, call: &Call, span: Span, e: FnError) -> Error {
        let (summary, detail) = e.render(&call.name);
        let at = match &e {
            FnError::Arg { index, .. } => call
                .args
                .get(*index)
                .or(call.args.last())
                .map_or(span, |a| a.span),
            FnError::NotEnoughArgs { .. } => Span {
                start: span.end.saturating_sub(1),
                ..span
            },
            FnError::TooManyArgs { expected } => call.args.get(*expected).map_or(span, |a| a.span),
            FnError::Failed { .. } => span,
        };
        invalid(at, &summary, detail)
    }

    /// `try`, `can` and `convert` look at expressions, not values.
    fn special_call(&self, call: &Call, span: Span, locals: &mut Locals) -> Option<Result<Value>> {
        match call.name.as_str() {
            "try" => {
                let mut last = None;
                for a in &call.args {
                    match self.eval(a, locals) {
                        Ok(v) => return Some(Ok(v)),
                        Err(e) => last = Some(e),
                    }
                }
                Some(Err(match last {
                    None => invalid(
                        span,
                        "Not enough function arguments",
                        "Function \"try\" expects at least 1 argument(s). Missing value for \"expressions\".",
                    ),
                    Some(_) => invalid(
                        span,
                        "Error in function call",
                        "Call to function \"try\" failed: no expression succeeded.",
                    ),
                }))
            }
            "can" => match call.args.as_slice() {
                [a] => Some(Ok(Value::Bool(self.eval(a, locals).is_ok()))),
                _ => Some(Err(invalid(
                    span,
                    "Invalid function argument",
                    "Function \"can\" expects 1 argument(s).",
                ))),
            },
            "convert" => match call.args.as_slice() {
                [v, t] => Some((|| {
                    let ty = type_expr(t)?;
                    let val = self.eval(v, locals)?;
                    convert(val, &ty).map_err(|e| {
                        invalid(
                            v.span,
                            "Invalid function argument",
                            format!("Invalid value for \"value\" parameter: {e}."),
                        )
                    })
                })()),
                _ => Some(Err(invalid(
                    span,
                    "Invalid function argument",
                    "Function \"convert\" expects 2 argument(s).",
                ))),
            },
            _ => None,
        }
    }

    fn traverse(&self, base: &Expr, ops: &[Op], span: Span, locals: &mut Locals) -> Result<Value> {
        // `target.<name>.<attr>` reads another block's own attribute value.
        if let ExprKind::Var(n) = &base.kind {
            if n == "target" && !locals.iter().any(|(l, _)| l == "target") {
                return match ops {
                    [Op::Attr(t, _), Op::Attr(a, _), rest @ ..] => {
                        let v = self.globals.target_attr(t, a, span)?;
                        self.apply_ops(v, rest, locals)
                    }
                    _ => Err(invalid(
                        span,
                        "Invalid expression",
                        "cannot traverse target without attribute",
                    )),
                };
            }
        }
        let v = self.eval(base, locals)?;
        self.apply_ops(v, ops, locals)
    }

    fn apply_ops(&self, mut v: Value, ops: &[Op], locals: &mut Locals) -> Result<Value> {
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Attr(name, span) => v = get_attr(v, name, *span)?,
                Op::LegacyIndex(n, span) => {
                    v = index(v, &Value::Number(Number::from_i64(*n as i64)), *span)?
                }
                Op::Index(e) => {
                    let k = self.eval(e, locals)?;
                    v = index(v, &k, e.span)?;
                }
                Op::AttrSplat | Op::FullSplat => {
                    let rest = &ops[i + 1..];
                    // `.*` only carries the attribute lookups that follow it.
                    let (inner, after) = if matches!(op, Op::AttrSplat) {
                        let n = rest
                            .iter()
                            .position(|o| !matches!(o, Op::Attr(..) | Op::LegacyIndex(..)))
                            .unwrap_or(rest.len());
                        (&rest[..n], &rest[n..])
                    } else {
                        (rest, &rest[rest.len()..])
                    };
                    let items: Vec<Value> = match v {
                        Value::Null => Vec::new(),
                        Value::List(x) | Value::Tuple(x) | Value::Set(x) => x,
                        other => vec![other],
                    };
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(self.apply_ops(item, inner, locals)?);
                    }
                    return self.apply_ops(Value::Tuple(out), after, locals);
                }
            }
        }
        Ok(v)
    }

    fn operand_number(&self, v: Value, span: Span, which: &str) -> Result<Number> {
        match convert(v, &Type::Number) {
            Ok(Value::Number(n)) => Ok(n),
            Ok(_) => Err(invalid(
                span,
                "Invalid operand",
                format!("Unsuitable value for {which}: a number is required."),
            )),
            Err(e) => Err(invalid(
                span,
                "Invalid operand",
                format!("Unsuitable value for {which}: {e}."),
            )),
        }
    }

    fn operand_bool(&self, v: Value, span: Span, which: &str) -> Result<bool> {
        match convert(v, &Type::Bool) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(_) => Err(invalid(
                span,
                "Invalid operand",
                format!("Unsuitable value for {which}: a bool is required."),
            )),
            Err(e) => Err(invalid(
                span,
                "Invalid operand",
                format!("Unsuitable value for {which}: {e}."),
            )),
        }
    }

    fn binary(
        &self,
        op: BinaryOp,
        l: &Expr,
        r: &Expr,
        span: Span,
        locals: &mut Locals,
    ) -> Result<Value> {
        let lv = self.eval(l, locals)?;
        let rv = self.eval(r, locals)?;
        use BinaryOp::*;
        Ok(match op {
            Eq => Value::Bool(lv.equals(&rv)),
            NotEq => Value::Bool(!lv.equals(&rv)),
            And | Or => {
                let a = self.operand_bool(lv, l.span, "left operand")?;
                let b = self.operand_bool(rv, r.span, "right operand")?;
                Value::Bool(if op == And { a && b } else { a || b })
            }
            _ => {
                let a = self.operand_number(lv, l.span, "left operand")?;
                let b = self.operand_number(rv, r.span, "right operand")?;
                let div0 = || {
                    invalid(
                        span,
                        "Operation failed",
                        "Error during operation: can't divide by zero.",
                    )
                };
                match op {
                    Plus => Value::Number(a.add(&b)),
                    Minus => Value::Number(a.sub(&b)),
                    Mul => Value::Number(a.mul(&b)),
                    Div => Value::Number(a.div(&b).ok_or_else(div0)?),
                    Mod => Value::Number(a.rem(&b).ok_or_else(div0)?),
                    Less => Value::Bool(a < b),
                    LessEq => Value::Bool(a <= b),
                    Greater => Value::Bool(a > b),
                    GreaterEq => Value::Bool(a >= b),
                    Eq | NotEq | And | Or => unreachable!("handled above"),
                }
            }
        })
    }

    fn for_expr(&self, f: &ForExpr, span: Span, locals: &mut Locals) -> Result<Value> {
        let coll = self.eval(&f.collection, locals)?;
        let items = iterate(&coll).ok_or_else(|| {
            invalid(
                f.collection.span,
                "Iteration over non-iterable value",
                "A value of type ".to_string()
                    + coll.kind_name()
                    + " cannot be used as the collection in a 'for' expression.",
            )
        })?;
        let mut tuple = Vec::new();
        let mut object: BTreeMap<String, Value> = BTreeMap::new();
        let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (k, v) in items {
            let n = locals.len();
            if let Some(kv) = &f.key_var {
                locals.push((kv.clone(), k));
            }
            locals.push((f.value_var.clone(), v));
            let r = (|| -> Result<()> {
                if let Some(c) = &f.cond {
                    let cv = self.eval(c, locals)?;
                    let keep = match convert(cv, &Type::Bool) {
                        Ok(Value::Bool(b)) => b,
                        _ => {
                            return Err(invalid(
                                c.span,
                                "Invalid 'for' condition",
                                "The 'if' clause value is invalid: bool required.",
                            ))
                        }
                    };
                    if !keep {
                        return Ok(());
                    }
                }
                match &f.key_expr {
                    None => tuple.push(self.eval(&f.value_expr, locals)?),
                    Some(ke) => {
                        let kv = self.eval(ke, locals)?;
                        let key = self.interp_string(kv, ke.span).map_err(|_| {
                            invalid(
                                ke.span,
                                "Invalid object key",
                                "Key expression in 'for' expression must be a string.",
                            )
                        })?;
                        let val = self.eval(&f.value_expr, locals)?;
                        if f.grouping {
                            groups.entry(key).or_default().push(val);
                        } else {
                            match object.entry(key) {
                                std::collections::btree_map::Entry::Occupied(e) => {
                                    return Err(invalid(
                                        span,
                                        "Duplicate object key",
                                        format!("Two different items produced the key \"{}\" in this 'for' expression. If duplicates are expected, use the ellipsis (...) after the value expression to enable grouping by key.", e.key()),
                                    ));
                                }
                                std::collections::btree_map::Entry::Vacant(e) => {
                                    e.insert(val);
                                }
                            }
                        }
                    }
                }
                Ok(())
            })();
            locals.truncate(n);
            r?;
        }
        Ok(match &f.key_expr {
            None => Value::Tuple(tuple),
            Some(_) if f.grouping => Value::Object(
                groups
                    .into_iter()
                    .map(|(k, v)| (k, Value::Tuple(v)))
                    .collect(),
            ),
            Some(_) => Value::Object(object),
        })
    }
}

/// (key, value) pairs of a collection: index keys for sequences, sorted keys for maps.
fn iterate(v: &Value) -> Option<Vec<(Value, Value)>> {
    match v {
        Value::List(x) | Value::Tuple(x) | Value::Set(x) => Some(
            x.iter()
                .enumerate()
                .map(|(i, v)| (Value::number(i as i64), v.clone()))
                .collect(),
        ),
        Value::Map(m) | Value::Object(m) => Some(
            m.iter()
                .map(|(k, v)| (Value::string(k.clone()), v.clone()))
                .collect(),
        ),
        _ => None,
    }
}

fn get_attr(v: Value, name: &str, span: Span) -> Result<Value> {
    match v {
        Value::Object(mut m) => m.remove(name).ok_or_else(|| {
            invalid(
                span,
                "Unsupported attribute",
                format!("This object does not have an attribute named \"{name}\"."),
            )
        }),
        Value::Map(mut m) => m.remove(name).ok_or_else(|| {
            invalid(
                span,
                "Missing map element",
                format!("This map does not have an element with the key \"{name}\"."),
            )
        }),
        Value::Null => Err(invalid(
            span,
            "Attempt to get attribute from null value",
            "This value is null, so it does not have any attributes.",
        )),
        other => Err(invalid(
            span,
            "Unsupported attribute",
            format!(
                "Can't access attributes on a primitive-typed value ({}).",
                other.kind_name()
            ),
        )),
    }
}

fn index(v: Value, key: &Value, span: Span) -> Result<Value> {
    match v {
        Value::List(mut x) | Value::Tuple(mut x) => {
            let i = match convert(key.clone(), &Type::Number) {
                Ok(Value::Number(n)) => n.to_i64(),
                _ => None,
            };
            match i {
                Some(i) if i >= 0 && (i as usize) < x.len() => Ok(x.swap_remove(i as usize)),
                _ => Err(invalid(
                    span,
                    "Invalid index",
                    "The given key does not identify an element in this collection value.",
                )),
            }
        }
        Value::Map(mut m) | Value::Object(mut m) => {
            let k = key.to_template_string().unwrap_or_default();
            m.remove(&k).ok_or_else(|| {
                invalid(
                    span,
                    "Invalid index",
                    "The given key does not identify an element in this collection value.",
                )
            })
        }
        Value::Null => Err(invalid(
            span,
            "Attempt to index null value",
            "This value is null, so it does not have any indices.",
        )),
        _ => Err(invalid(
            span,
            "Invalid index",
            "This value does not have any indices.",
        )),
    }
}

/// Reads a type expression (`string`, `list(string)`, `object({a = number})`, `any`).
pub fn type_expr(e: &Expr) -> Result<Type> {
    let bad = || {
        invalid(
            e.span,
            "Invalid type specification",
            "The keyword is not a valid type specification.",
        )
    };
    match &e.kind {
        ExprKind::Var(n) => match n.as_str() {
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "any" => Ok(Type::Any),
            "list" => Ok(Type::List(Box::new(Type::Any))),
            "map" => Ok(Type::Map(Box::new(Type::Any))),
            "set" => Ok(Type::Set(Box::new(Type::Any))),
            _ => Err(bad()),
        },
        ExprKind::Paren(x) => type_expr(x),
        ExprKind::Call(c) => {
            let arg = c.args.first().ok_or_else(bad)?;
            match c.name.as_str() {
                "list" => Ok(Type::List(Box::new(type_expr(arg)?))),
                "set" => Ok(Type::Set(Box::new(type_expr(arg)?))),
                "map" => Ok(Type::Map(Box::new(type_expr(arg)?))),
                "tuple" => match &arg.kind {
                    ExprKind::Tuple(items) => Ok(Type::Tuple(
                        items.iter().map(type_expr).collect::<Result<_>>()?,
                    )),
                    _ => Err(bad()),
                },
                "object" => match &arg.kind {
                    ExprKind::Object(items) => {
                        let mut attrs = BTreeMap::new();
                        for (k, v) in items {
                            let name = match k {
                                ObjectKey::Ident(s) => s.clone(),
                                ObjectKey::Expr(Expr {
                                    kind: ExprKind::Var(s),
                                    ..
                                }) => s.clone(),
                                ObjectKey::Expr(Expr {
                                    kind: ExprKind::Literal(Value::String(s)),
                                    ..
                                }) => s.clone(),
                                _ => return Err(bad()),
                            };
                            attrs.insert(name, type_expr(v)?);
                        }
                        Ok(Type::Object(attrs))
                    }
                    _ => Err(bad()),
                },
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}
