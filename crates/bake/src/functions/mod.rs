//! Built-in functions of bake: the go-cty stdlib set plus buildx's additions
//! (FEATURES.md §1.6, F1–F11). Owned by the functions engineer; the evaluator only
//! calls `exists` and `call`.

use crate::value::Value;

/// Why a call failed. The evaluator renders it as HCL does:
/// * `Arg` → `Invalid function argument; Invalid value for "<param>" parameter: <message>.`
///   with the range of argument `index` (0-based; for a variadic parameter, the index of
///   the offending argument in the call).
/// * `NotEnoughArgs` → `Not enough function arguments; Function "<name>" expects <expected>
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

/// True when `name` is a built-in function.
pub fn exists(name: &str) -> bool {
    let _ = name;
    false
}

/// Calls built-in `name` with already evaluated arguments (a trailing `...` expansion has
/// already been spread into `args`).
pub fn call(name: &str, args: Vec<Value>) -> Result<Value, FnError> {
    let _ = args;
    Err(FnError::Failed {
        message: format!("function {name} is not implemented"),
    })
}
