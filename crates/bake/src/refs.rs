//! What the files' expressions refer to, read without evaluating them: the names a
//! function's `params` lists, the variables and function calls inside an expression,
//! which user functions call themselves (directly or not), and which target blocks are
//! pure (no `target.…` reference, no impure function): those are evaluated once.

use crate::ast::{Expr, ExprKind, ObjectKey, Part};
use crate::error::{Error, Result};
use crate::eval::UserFunction;
use crate::fast_hash::{HashMap, HashSet};
use crate::value::Value;

/// `params = [a, b]`: bare names (or strings, in JSON files).
pub(crate) fn param_names(e: &Expr) -> Result<Vec<String>> {
    let bad = || Error::diag(e.span, "Invalid params", "params must be a list of names");
    match &e.kind {
        ExprKind::Tuple(items) => items
            .iter()
            .map(|i| match &i.kind {
                ExprKind::Var(n) => Ok(n.clone()),
                ExprKind::Literal(Value::String(s)) => Ok(s.clone()),
                ExprKind::Template(p) => match p.as_slice() {
                    [Part::Lit(s)] => Ok(s.clone()),
                    [Part::Interp(Expr {
                        kind: ExprKind::Var(n),
                        ..
                    })] => Ok(n.clone()),
                    _ => Err(bad()),
                },
                _ => Err(bad()),
            })
            .collect(),
        ExprKind::Var(n) => Ok(vec![n.clone()]),
        _ => Err(bad()),
    }
}

/// Functions that can reach themselves through calls (any recursion is an error in bake).
pub(crate) fn find_function_cycles(funcs: &HashMap<String, UserFunction>) -> HashSet<String> {
    let calls: HashMap<&str, Vec<String>> = funcs
        .iter()
        .map(|(n, f)| {
            let mut out = Vec::new();
            collect_calls(&f.result, &mut out);
            out.retain(|c| funcs.contains_key(c));
            (n.as_str(), out)
        })
        .collect();
    let mut cyclic = HashSet::default();
    for start in funcs.keys() {
        let mut stack: Vec<&str> = calls[start.as_str()].iter().map(String::as_str).collect();
        let mut seen = HashSet::default();
        while let Some(n) = stack.pop() {
            if n == start {
                cyclic.insert(start.clone());
                break;
            }
            if seen.insert(n) {
                stack.extend(calls[n].iter().map(String::as_str));
            }
        }
    }
    cyclic
}

/// Functions whose result changes from call to call.
const IMPURE_FUNCTIONS: [&str; 4] = ["timestamp", "uuid", "uuidv4", "bcrypt"];

/// No `target.` reference and no impure call, following user functions.
pub(crate) fn is_pure<'f>(
    e: &Expr,
    funcs: &'f HashMap<String, UserFunction>,
    seen: &mut HashSet<&'f str>,
) -> bool {
    let mut uses_target = false;
    visit_vars(e, &mut |n| uses_target |= n == "target");
    if uses_target {
        return false;
    }
    let mut calls = Vec::new();
    collect_calls(e, &mut calls);
    calls.iter().all(|c| {
        if IMPURE_FUNCTIONS.contains(&c.as_str()) {
            return false;
        }
        match funcs.get_key_value(c) {
            Some((k, f)) => !seen.insert(k.as_str()) || is_pure(&f.result, funcs, seen),
            None => true,
        }
    })
}

fn visit_vars(e: &Expr, f: &mut dyn FnMut(&str)) {
    match &e.kind {
        ExprKind::Literal(_) => {}
        ExprKind::Var(n) => f(n),
        ExprKind::Tuple(items) => items.iter().for_each(|x| visit_vars(x, f)),
        ExprKind::Object(items) => items.iter().for_each(|(k, v)| {
            if let ObjectKey::Expr(k) = k {
                visit_vars(k, f);
            }
            visit_vars(v, f);
        }),
        ExprKind::Template(parts) => visit_part_vars(parts, f),
        ExprKind::Cond(c) => c.iter().for_each(|x| visit_vars(x, f)),
        ExprKind::Call(c) => c.args.iter().for_each(|x| visit_vars(x, f)),
        ExprKind::Traverse(b, ops) => {
            visit_vars(b, f);
            for op in ops {
                if let crate::ast::Op::Index(x) = op {
                    visit_vars(x, f);
                }
            }
        }
        ExprKind::Unary(_, x) | ExprKind::Paren(x) => visit_vars(x, f),
        ExprKind::Binary(_, b) => b.iter().for_each(|x| visit_vars(x, f)),
        ExprKind::For(fe) => {
            visit_vars(&fe.collection, f);
            if let Some(k) = &fe.key_expr {
                visit_vars(k, f);
            }
            visit_vars(&fe.value_expr, f);
            if let Some(c) = &fe.cond {
                visit_vars(c, f);
            }
        }
    }
}

fn visit_part_vars(parts: &[Part], f: &mut dyn FnMut(&str)) {
    for p in parts {
        match p {
            Part::Lit(_) => {}
            Part::Interp(e) => visit_vars(e, f),
            Part::If {
                cond,
                then,
                otherwise,
            } => {
                visit_vars(cond, f);
                visit_part_vars(then, f);
                visit_part_vars(otherwise, f);
            }
            Part::For {
                collection, body, ..
            } => {
                visit_vars(collection, f);
                visit_part_vars(body, f);
            }
        }
    }
}

fn collect_calls(e: &Expr, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Literal(_) | ExprKind::Var(_) => {}
        ExprKind::Tuple(items) => items.iter().for_each(|x| collect_calls(x, out)),
        ExprKind::Object(items) => items.iter().for_each(|(k, v)| {
            if let ObjectKey::Expr(k) = k {
                collect_calls(k, out);
            }
            collect_calls(v, out);
        }),
        ExprKind::Template(parts) => collect_part_calls(parts, out),
        ExprKind::Cond(c) => c.iter().for_each(|x| collect_calls(x, out)),
        ExprKind::Call(c) => {
            out.push(c.name.clone());
            c.args.iter().for_each(|x| collect_calls(x, out));
        }
        ExprKind::Traverse(b, ops) => {
            collect_calls(b, out);
            for op in ops {
                if let crate::ast::Op::Index(x) = op {
                    collect_calls(x, out);
                }
            }
        }
        ExprKind::Unary(_, x) | ExprKind::Paren(x) => collect_calls(x, out),
        ExprKind::Binary(_, b) => b.iter().for_each(|x| collect_calls(x, out)),
        ExprKind::For(f) => {
            collect_calls(&f.collection, out);
            if let Some(k) = &f.key_expr {
                collect_calls(k, out);
            }
            collect_calls(&f.value_expr, out);
            if let Some(c) = &f.cond {
                collect_calls(c, out);
            }
        }
    }
}

fn collect_part_calls(parts: &[Part], out: &mut Vec<String>) {
    for p in parts {
        match p {
            Part::Lit(_) => {}
            Part::Interp(e) => collect_calls(e, out),
            Part::If {
                cond,
                then,
                otherwise,
            } => {
                collect_calls(cond, out);
                collect_part_calls(then, out);
                collect_part_calls(otherwise, out);
            }
            Part::For {
                collection, body, ..
            } => {
                collect_calls(collection, out);
                collect_part_calls(body, out);
            }
        }
    }
}
