//! Built-in functions of bake: the go-cty stdlib set plus buildx's additions
//! (FEATURES.md §1.6, F1–F11). Owned by the functions engineer; the evaluator only
//! calls `exists`, `call` and `FnError::render`.
//!
//! Every function has a signature (fixed parameters, an optional variadic parameter,
//! each with a cty type). `call` checks the arity, converts each argument to its
//! parameter's type and rejects nulls where cty does, exactly in HCL's order, before
//! the function body runs. Error texts are go-cty's.
//!
//! Three buildx functions need the evaluator's help because they look at expressions,
//! not values: `try`, `can` and `convert`. `exists` reports them (so they are never an
//! "unknown function"); the evaluator should intercept them before evaluating the
//! arguments. When called here with plain values, `try` returns its first argument,
//! `can` returns true and `convert` fails.

mod collections;
mod encoding;
mod expressions;
mod format;
pub mod json;
mod network;
mod numbers;
mod regex;
mod semver;
mod sets;
mod strings;
mod support;
mod text;
mod time;

#[cfg(test)]
mod tests;

use crate::value::{convert, Type, Value};

/// Why a call failed. The evaluator renders it as HCL does (see `render`):
/// * `Arg` → `Invalid function argument; Invalid value for "<param>" parameter: <message>.`
///   with the range of argument `index` (0-based; for a variadic parameter, the index of
///   the offending argument in the call).
/// * `NotEnoughArgs` → `Not enough function arguments; Function "<name>" expects [at least ]<expected>
///   argument(s). Missing value for "<missing_param>".`
/// * `TooManyArgs` → `Too many function arguments; Function "<name>" expects only
///   <expected> argument(s).`
/// * `Failed` → `Error in function call; Call to function "<name>" failed: <message>.`
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FnError {
    Arg {
        index: usize,
        param: String,
        message: String,
    },
    NotEnoughArgs {
        expected: usize,
        missing_param: String,
    },
    TooManyArgs {
        expected: usize,
    },
    Failed {
        message: String,
    },
}

impl FnError {
    /// The HCL diagnostic `(summary, detail)` for this error raised by built-in `name`.
    pub fn render(&self, name: &str) -> (String, String) {
        match self {
            FnError::Arg { param, message, .. } => (
                "Invalid function argument".into(),
                format!("Invalid value for \"{param}\" parameter: {message}."),
            ),
            FnError::NotEnoughArgs {
                expected,
                missing_param,
            } => {
                let variadic = lookup(name).is_some_and(|(sig, _)| sig.var.is_some());
                let qual = if variadic { " at least" } else { "" };
                (
                    "Not enough function arguments".into(),
                    format!(
                        "Function \"{name}\" expects{qual} {expected} argument(s). Missing value for \"{missing_param}\"."
                    ),
                )
            }
            FnError::TooManyArgs { expected } => (
                "Too many function arguments".into(),
                format!("Function \"{name}\" expects only {expected} argument(s)."),
            ),
            FnError::Failed { message } => (
                "Error in function call".into(),
                format!("Call to function \"{name}\" failed: {message}."),
            ),
        }
    }

    /// `summary; detail`, the way bake prints a diagnostic after its range.
    pub fn to_message(&self, name: &str) -> String {
        let (summary, detail) = self.render(name);
        format!("{summary}; {detail}")
    }
}

/// True when `name` is a built-in function.
pub fn exists(name: &str) -> bool {
    lookup(name).is_some()
}

/// True for `try` and `can`, whose arguments are expressions that may fail: the
/// evaluator must evaluate them itself (`try`: the first argument that evaluates without
/// error, else an error; `can`: whether the argument evaluates without error).
pub fn needs_expressions(name: &str) -> bool {
    matches!(name, "try" | "can")
}

/// `convert(value, type)` once the evaluator has read the type expression: HCL's
/// `typeexpr` conversion with cty's error text on the `value` argument.
pub fn convert_value(value: Value, ty: &Type) -> Result<Value, FnError> {
    convert(value, ty).map_err(|e| arg_err(0, "value", e.message))
}

/// Names of all built-in functions, sorted.
pub fn names() -> Vec<&'static str> {
    let mut v = NAMES.to_vec();
    v.sort_unstable();
    v
}

/// Calls built-in `name` with already evaluated arguments (a trailing `...` expansion has
/// already been spread into `args`).
pub fn call(name: &str, args: Vec<Value>) -> Result<Value, FnError> {
    let Some((sig, body)) = lookup(name) else {
        return Err(failed(format!("There is no function named \"{name}\"")));
    };
    let args = sig.check(args)?;
    body(args)
}

/// One parameter: its name (used in error texts), its cty type, and whether null passes.
pub(crate) struct Param {
    pub name: &'static str,
    pub ty: Type,
    pub allow_null: bool,
}

pub(crate) struct Signature {
    pub params: Vec<Param>,
    pub var: Option<Param>,
}

impl Signature {
    /// HCL's argument handling: arity, then conversion to the parameter types, then
    /// go-cty's null check.
    fn check(&self, args: Vec<Value>) -> Result<Vec<Value>, FnError> {
        if args.len() < self.params.len() {
            return Err(FnError::NotEnoughArgs {
                expected: self.params.len(),
                missing_param: self.params[args.len()].name.to_string(),
            });
        }
        if self.var.is_none() && args.len() > self.params.len() {
            return Err(FnError::TooManyArgs {
                expected: self.params.len(),
            });
        }
        let mut out = Vec::with_capacity(args.len());
        let mut conv_err = None;
        for (i, arg) in args.into_iter().enumerate() {
            let param = self.param(i);
            match convert(arg, &param.ty) {
                Ok(v) => out.push(v),
                Err(e) => {
                    // HCL reports the first argument that fails to convert.
                    conv_err.get_or_insert(arg_err(i, param.name, e.message));
                    out.push(Value::Null);
                }
            }
        }
        if let Some(e) = conv_err {
            return Err(e);
        }
        for (i, v) in out.iter().enumerate() {
            let param = self.param(i);
            if v.is_null() && !param.allow_null {
                return Err(arg_err(i, param.name, "argument must not be null"));
            }
        }
        Ok(out)
    }

    fn param(&self, i: usize) -> &Param {
        self.params
            .get(i)
            .or(self.var.as_ref())
            .expect("arity checked")
    }
}

pub(crate) type Body = fn(Vec<Value>) -> Result<Value, FnError>;

pub(crate) fn p(name: &'static str, ty: Type) -> Param {
    Param {
        name,
        ty,
        allow_null: false,
    }
}

pub(crate) fn p_null(name: &'static str, ty: Type) -> Param {
    Param {
        name,
        ty,
        allow_null: true,
    }
}

pub(crate) fn sig(params: Vec<Param>) -> Signature {
    Signature { params, var: None }
}

pub(crate) fn sig_var(params: Vec<Param>, var: Param) -> Signature {
    Signature {
        params,
        var: Some(var),
    }
}

pub(crate) fn arg_err(index: usize, param: &str, message: impl Into<String>) -> FnError {
    FnError::Arg {
        index,
        param: param.to_string(),
        message: message.into(),
    }
}

pub(crate) fn failed(message: impl Into<String>) -> FnError {
    FnError::Failed {
        message: message.into(),
    }
}

pub(crate) fn list_of(t: Type) -> Type {
    Type::List(Box::new(t))
}

pub(crate) fn set_of(t: Type) -> Type {
    Type::Set(Box::new(t))
}

/// Shorthands for the types used in signatures.
pub(crate) const S: Type = Type::String;
pub(crate) const N: Type = Type::Number;
pub(crate) const B: Type = Type::Bool;
pub(crate) const ANY: Type = Type::Any;

const NAMES: &[&str] = &[
    "absolute",
    "add",
    "and",
    "base64decode",
    "base64encode",
    "basename",
    "bcrypt",
    "byteslen",
    "bytesslice",
    "can",
    "ceil",
    "chomp",
    "chunklist",
    "cidrhost",
    "cidrnetmask",
    "cidrsubnet",
    "cidrsubnets",
    "coalesce",
    "coalescelist",
    "compact",
    "concat",
    "contains",
    "convert",
    "csvdecode",
    "dirname",
    "distinct",
    "divide",
    "element",
    "equal",
    "flatten",
    "floor",
    "format",
    "formatdate",
    "formatlist",
    "greaterthan",
    "greaterthanorequalto",
    "hasindex",
    "homedir",
    "indent",
    "index",
    "indexof",
    "int",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lessthan",
    "lessthanorequalto",
    "log",
    "lookup",
    "lower",
    "max",
    "md5",
    "merge",
    "min",
    "modulo",
    "multiply",
    "negate",
    "not",
    "notequal",
    "or",
    "parseint",
    "pow",
    "range",
    "regex_replace",
    "regex",
    "regexall",
    "replace",
    "reverse",
    "reverselist",
    "rsadecrypt",
    "sanitize",
    "semvercmp",
    "sethaselement",
    "setintersection",
    "setproduct",
    "setsubtract",
    "setsymmetricdifference",
    "setunion",
    "sha1",
    "sha256",
    "sha512",
    "signum",
    "slice",
    "sort",
    "split",
    "strlen",
    "substr",
    "subtract",
    "timeadd",
    "timestamp",
    "title",
    "trim",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "try",
    "upper",
    "urlencode",
    "uuidv4",
    "uuidv5",
    "values",
    "zipmap",
];

/// The signature and body of built-in `name`.
pub(crate) fn lookup(name: &str) -> Option<(Signature, Body)> {
    strings::lookup(name)
        .or_else(|| regex::lookup(name))
        .or_else(|| collections::lookup(name))
        .or_else(|| sets::lookup(name))
        .or_else(|| numbers::lookup(name))
        .or_else(|| encoding::lookup(name))
        .or_else(|| format::lookup(name))
        .or_else(|| time::lookup(name))
        .or_else(|| network::lookup(name))
        .or_else(|| semver::lookup(name))
        .or_else(|| expressions::lookup(name))
}
