//! The loaded bake definitions (`Config`, built once from the parsed files) and one
//! evaluation of them (`Session`, built per resolve with its own variable values).
//!
//! A session evaluates like buildx's HCL parser: variables lazily with cycle detection,
//! env / `--var` overrides, validations, then every target and group block, so an error
//! anywhere in the files fails the resolution as it does with the real tool.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::ast::{Attribute, Block, Body, Expr, ExprKind};
use crate::attrs::{as_field_type, decode_attr, string_list, string_scalar, KNOWN_ATTRS};
use crate::error::{Error, Result};
use crate::eval::{type_expr, Evaluator, Globals, Locals, UserFunction};
use crate::fast_hash::{HashMap, HashSet};
use crate::refs::{find_function_cycles, is_pure, param_names};
use crate::source::{SourceFile, Span};
use crate::target::Target;
use crate::value::{convert, Type, Value};
use crate::vars::{override_value, parse_go_bool};

#[derive(Debug)]
pub(crate) struct VarDecl {
    pub default: Option<Expr>,
    pub ty: Option<Type>,
    pub validations: Vec<(Expr, Option<Expr>)>,
    pub open_brace: Span,
}

/// A `target` block (one of possibly several with the same label).
#[derive(Debug)]
pub(crate) struct TargetBlock {
    pub label: String,
    pub label_span: Span,
    pub block: Block,
    /// The block's value depends only on global values: no matrix, no `target.x.y`
    /// reference, no impure function (see `OwnCache`).
    pub cacheable: bool,
}

#[derive(Debug)]
pub(crate) struct GroupBlock {
    pub label: String,
    pub label_span: Span,
    pub block: Block,
}

/// Everything read from the files; immutable, shared by all resolutions.
#[derive(Debug)]
pub(crate) struct Config {
    pub files: Vec<SourceFile>,
    pub var_order: Vec<String>,
    pub vars: HashMap<String, VarDecl>,
    pub attrs: HashMap<String, Expr>,
    pub attr_order: Vec<String>,
    pub functions: HashMap<String, UserFunction>,
    pub cyclic_functions: HashSet<String>,
    pub targets: Vec<TargetBlock>,
    pub groups: Vec<GroupBlock>,
}

const BUILTINS: [&str; 2] = ["BAKE_CMD_CONTEXT", "BAKE_LOCAL_PLATFORM"];

fn local_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    format!("linux/{arch}")
}

impl Config {
    pub fn build(
        files: Vec<SourceFile>,
        bodies: Vec<Body>,
    ) -> std::result::Result<Config, crate::BakeError> {
        let mut cfg = Config {
            files,
            var_order: Vec::new(),
            vars: HashMap::default(),
            attrs: HashMap::default(),
            attr_order: Vec::new(),
            functions: HashMap::default(),
            cyclic_functions: HashSet::default(),
            targets: Vec::new(),
            groups: Vec::new(),
        };
        for body in bodies {
            for a in body.attrs {
                if !cfg.attrs.contains_key(&a.name) {
                    cfg.attr_order.push(a.name.clone());
                }
                cfg.attrs.insert(a.name, a.expr);
            }
            for b in body.blocks {
                if let Err(e) = cfg.add_block(b) {
                    return Err(e.render(&cfg.files));
                }
            }
        }
        cfg.cyclic_functions = find_function_cycles(&cfg.functions);
        for i in 0..cfg.targets.len() {
            let b = &cfg.targets[i].block;
            let cacheable = b.attr("matrix").is_none()
                && b.attrs
                    .iter()
                    .all(|a| is_pure(&a.expr, &cfg.functions, &mut HashSet::default()));
            cfg.targets[i].cacheable = cacheable;
        }
        Ok(cfg)
    }

    fn add_block(&mut self, b: Block) -> Result<()> {
        let label = b.labels.first().cloned().unwrap_or_default();
        let label_span = b.label_spans.first().copied().unwrap_or(b.open_brace);
        match b.kind.as_str() {
            "variable" => {
                if BUILTINS.contains(&label.as_str()) {
                    return Ok(());
                }
                let ty = b.attr("type").map(|a| type_expr(&a.expr)).transpose()?;
                let validations = b
                    .blocks
                    .iter()
                    .filter(|v| v.kind == "validation")
                    .filter_map(|v| {
                        let cond = v.attr("condition")?.expr.clone();
                        Some((cond, v.attr("error_message").map(|m| m.expr.clone())))
                    })
                    .collect();
                let decl = VarDecl {
                    default: b.attr("default").map(|a| a.expr.clone()),
                    ty,
                    validations,
                    open_brace: b.open_brace,
                };
                if !self.vars.contains_key(&label) {
                    self.var_order.push(label.clone());
                }
                self.vars.insert(label, decl);
            }
            "function" => {
                let params = match b.attr("params") {
                    Some(a) => param_names(&a.expr)?,
                    None => {
                        return Err(Error::diag(
                            b.open_brace,
                            "Missing required argument",
                            "The argument \"params\" is required, but no definition was found.",
                        ))
                    }
                };
                let variadic = match b.attr("variadic_params") {
                    Some(a) => match &a.expr.kind {
                        ExprKind::Var(n) => Some(n.clone()),
                        _ => param_names(&a.expr)?.into_iter().next(),
                    },
                    None => None,
                };
                let result = match b.attr("result") {
                    Some(a) => a.expr.clone(),
                    None => {
                        return Err(Error::diag(
                            b.open_brace,
                            "Missing required argument",
                            "The argument \"result\" is required, but no definition was found.",
                        ))
                    }
                };
                self.functions.insert(
                    label.clone(),
                    UserFunction {
                        name: label,
                        params,
                        variadic,
                        result,
                    },
                );
            }
            "target" => self.targets.push(TargetBlock {
                label,
                label_span,
                block: b,
                cacheable: false,
            }),
            "group" => self.groups.push(GroupBlock {
                label,
                label_span,
                block: b,
            }),
            _ => {}
        }
        Ok(())
    }
}

enum Slot {
    InProgress,
    Done(Value),
}

/// Own target values kept between resolutions of the same files: an entry is reused while
/// every global it read still has the same value (so resolving one per-task target 2,000
/// times re-evaluates only the blocks that read `EVAL_TASK_ID`).
#[derive(Debug, Default)]
pub(crate) struct OwnCache {
    entries: std::sync::Mutex<HashMap<usize, CachedOwn>>,
    /// Resolutions started: the first fills nothing, since a single resolution (what
    /// `kiln bake` makes) would only pay for the bookkeeping.
    resolutions: std::sync::atomic::AtomicUsize,
}

impl OwnCache {
    /// The cache for a new resolution, from the second one on.
    pub fn for_resolution(&self) -> Option<&OwnCache> {
        let earlier = self
            .resolutions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (earlier > 0).then_some(self)
    }
}

#[derive(Debug)]
struct CachedOwn {
    reads: Vec<(String, Value)>,
    target: Target,
}

/// Where variable override texts come from.
pub(crate) struct Inputs<'a> {
    pub vars: &'a BTreeMap<String, String>,
    pub env: &'a BTreeMap<String, String>,
    pub env_lookup: bool,
}

/// A target generated from a block: its name, block and matrix bindings.
pub(crate) struct Instance {
    pub name: String,
    pub block: usize,
    pub locals: Locals,
}

/// One evaluation of the config.
pub(crate) struct Session<'c> {
    pub cfg: &'c Config,
    inputs: Inputs<'c>,
    vars: RefCell<HashMap<String, Slot>>,
    /// Own attribute values by (target block, attribute name), and the attributes being
    /// evaluated (target label, attribute name), for reference cycles.
    target_attrs: RefCell<HashMap<(usize, &'c str), Slot>>,
    attr_stack: RefCell<Vec<(&'c str, &'c str)>>,
    cache: Option<&'c OwnCache>,
    /// Globals read while evaluating a cacheable block (innermost block last).
    reads: RefCell<Vec<Vec<String>>>,
}

/// A group a matrix block creates: its name and the targets it expands to.
pub type MatrixGroup = (String, Vec<String>);

impl<'c> Session<'c> {
    pub fn new(cfg: &'c Config, inputs: Inputs<'c>, cache: Option<&'c OwnCache>) -> Session<'c> {
        Session {
            cfg,
            inputs,
            vars: RefCell::new(HashMap::default()),
            // Every target attribute is evaluated once: no rehashing on the way.
            target_attrs: RefCell::new(HashMap::with_capacity_and_hasher(
                cfg.targets.iter().map(|t| t.block.attrs.len()).sum(),
                Default::default(),
            )),
            attr_stack: RefCell::new(Vec::new()),
            cache,
            reads: RefCell::new(Vec::new()),
        }
    }

    fn ev(&self) -> Evaluator<'_> {
        Evaluator::new(self)
    }

    /// Resolves every variable and checks the validation blocks.
    pub fn check_variables(&self) -> Result<()> {
        for name in &self.cfg.var_order {
            self.variable(name, self.cfg.vars[name].open_brace)?;
        }
        for name in &self.cfg.attr_order {
            self.global(name, Span::default())?;
        }
        for name in &self.cfg.var_order {
            for (cond, msg) in &self.cfg.vars[name].validations {
                let v = self.ev().eval(cond, &mut Vec::new())?;
                let ok = match convert(v, &Type::Bool) {
                    Ok(Value::Bool(b)) => b,
                    _ => {
                        return Err(Error::diag(
                            cond.span,
                            "Invalid condition result",
                            "Invalid validation condition result value: a bool is required.",
                        ))
                    }
                };
                if !ok {
                    let text = match msg {
                        Some(m) => {
                            let v = self.ev().eval(m, &mut Vec::new())?;
                            v.to_template_string().unwrap_or_default()
                        }
                        None => String::new(),
                    };
                    return Err(Error::diag(cond.span, "Validation failed", text));
                }
            }
        }
        Ok(())
    }

    fn lookup_override(&self, name: &str) -> Option<&'c str> {
        if let Some(v) = self.inputs.vars.get(name) {
            return Some(v.as_str());
        }
        if self.inputs.env_lookup {
            return self.inputs.env.get(name).map(String::as_str);
        }
        None
    }

    fn variable(&self, name: &str, span: Span) -> Result<Value> {
        match self.vars.borrow().get(name) {
            Some(Slot::Done(v)) => return Ok(v.clone()),
            Some(Slot::InProgress) => {
                return Err(Error::diag(
                    span,
                    "Invalid expression",
                    format!("variable cycle not allowed for {name}"),
                ))
            }
            None => {}
        }
        self.vars
            .borrow_mut()
            .insert(name.to_string(), Slot::InProgress);
        let r = self.compute_variable(name);
        match &r {
            Ok(v) => self
                .vars
                .borrow_mut()
                .insert(name.to_string(), Slot::Done(v.clone())),
            Err(_) => self.vars.borrow_mut().remove(name),
        };
        r
    }

    fn compute_variable(&self, name: &str) -> Result<Value> {
        if let Some(decl) = self.cfg.vars.get(name) {
            let ty = decl.ty.as_ref();
            let mut found = self.lookup_override(name).map(|t| (t, false));
            let json_name = format!("{name}_JSON");
            if (ty.is_some() || found.is_none()) && !self.cfg.vars.contains_key(&json_name) {
                if let Some(j) = self.lookup_override(&json_name) {
                    // Typed: JSON decoding; untyped: the text is used like a plain value.
                    found = Some((j, ty.is_some()));
                }
            }
            let default = match &decl.default {
                Some(e) => {
                    let v = self.ev().eval(e, &mut Vec::new())?;
                    let v = match ty {
                        Some(t) => convert(v, t).map_err(|err| {
                            Error::diag(
                                e.span,
                                "Invalid default value for variable",
                                format!(
                                    "This default value is not compatible with the variable's type constraint: {err}."
                                ),
                            )
                        })?,
                        None => v,
                    };
                    Some(v)
                }
                None => None,
            };
            return match found {
                Some((text, is_json)) => override_value(name, text, is_json, ty, default.as_ref())
                    .map_err(|m| Error::diag(decl.open_brace, "Invalid value", m)),
                None => Ok(default.unwrap_or(if ty.is_some() {
                    Value::Null
                } else {
                    Value::string("")
                })),
            };
        }
        if let Some(e) = self.cfg.attrs.get(name) {
            return self.ev().eval(e, &mut Vec::new());
        }
        Ok(Value::Null)
    }

    /// The value of `block`'s attribute `attr` for `target.<name>.<attr>` and for the
    /// block's own evaluation, cached, with reference-cycle detection.
    fn block_attr(&self, block: usize, attr: &'c Attribute, locals: &mut Locals) -> Result<Value> {
        let tb = &self.cfg.targets[block];
        if !locals.is_empty() {
            return self.ev().eval(&attr.expr, locals);
        }
        let key = (block, attr.name.as_str());
        match self.target_attrs.borrow().get(&key) {
            Some(Slot::Done(v)) => return Ok(v.clone()),
            Some(Slot::InProgress) => {
                let (t, a) = self
                    .attr_stack
                    .borrow()
                    .last()
                    .copied()
                    .unwrap_or((tb.label.as_str(), attr.name.as_str()));
                return Err(Error::diag(
                    attr.expr.span,
                    "Invalid expression",
                    format!("reference cycle not allowed for target.{t}.{a}"),
                ));
            }
            None => {}
        }
        self.target_attrs.borrow_mut().insert(key, Slot::InProgress);
        self.attr_stack
            .borrow_mut()
            .push((tb.label.as_str(), attr.name.as_str()));
        let r = self.ev().eval(&attr.expr, &mut Vec::new());
        self.attr_stack.borrow_mut().pop();
        match &r {
            Ok(v) => self
                .target_attrs
                .borrow_mut()
                .insert(key, Slot::Done(v.clone())),
            Err(_) => self.target_attrs.borrow_mut().remove(&key),
        };
        r
    }

    /// Expands every target block (matrix included) into named instances, in file order,
    /// and returns the groups matrix blocks create.
    pub fn instances(&self) -> Result<(Vec<Instance>, Vec<MatrixGroup>)> {
        let mut out = Vec::new();
        let mut matrix_groups = Vec::new();
        for (i, tb) in self.cfg.targets.iter().enumerate() {
            let b = &tb.block;
            let Some(m) = b.attr("matrix") else {
                if let Some(n) = b.attr("name") {
                    return Err(Error::diag(
                        n.name_span,
                        "Invalid name",
                        "name requires matrix",
                    ));
                }
                check_name(&tb.label, tb.label_span)?;
                out.push(Instance {
                    name: tb.label.clone(),
                    block: i,
                    locals: Vec::new(),
                });
                continue;
            };
            let mv = self
                .ev()
                .eval(&m.expr, &mut Vec::new())
                .map_err(|e| e.with_others(1))?;
            let combos = matrix_combinations(&mv, m.expr.span)?;
            let mut names: Vec<String> = Vec::new();
            for locals in combos {
                let mut locals = locals;
                let name = match b.attr("name") {
                    Some(n) => {
                        let v = self
                            .ev()
                            .eval(&n.expr, &mut locals)
                            .map_err(|e| e.with_others(1))?;
                        v.to_template_string().unwrap_or_default()
                    }
                    None => tb.label.clone(),
                };
                check_name(&name, tb.label_span)?;
                if names.contains(&name) {
                    return Err(Error::diag(
                        tb.label_span,
                        "Invalid name",
                        format!("duplicate name \"{name}\""),
                    ));
                }
                names.push(name.clone());
                out.push(Instance {
                    name,
                    block: i,
                    locals,
                });
            }
            matrix_groups.push((tb.label.clone(), names));
        }
        Ok((out, matrix_groups))
    }

    /// The own value of one instance (its block's attributes, no inheritance).
    pub fn own_target(&self, inst: &mut Instance) -> Result<Target> {
        let cacheable = inst.locals.is_empty() && self.cfg.targets[inst.block].cacheable;
        let Some(cache) = self.cache.filter(|_| cacheable) else {
            return self.eval_own_target(inst);
        };
        if let Some(hit) = cache.entries.lock().ok().and_then(|entries| {
            let c = entries.get(&inst.block)?;
            let same = c.reads.iter().all(
                |(n, v)| matches!(self.global(n, Span::default()), Ok(Some(cur)) if cur.equals(v)),
            );
            same.then(|| c.target.clone())
        }) {
            return Ok(hit);
        }
        self.reads.borrow_mut().push(Vec::new());
        let r = self.eval_own_target(inst);
        let mut names = self.reads.borrow_mut().pop().unwrap_or_default();
        let t = r?;
        names.sort();
        names.dedup();
        let mut reads = Vec::with_capacity(names.len());
        for n in names {
            if let Ok(Some(v)) = self.global(&n, Span::default()) {
                reads.push((n, v));
            }
        }
        if let Ok(mut entries) = cache.entries.lock() {
            entries.insert(
                inst.block,
                CachedOwn {
                    reads,
                    target: t.clone(),
                },
            );
        }
        Ok(t)
    }

    fn eval_own_target(&self, inst: &mut Instance) -> Result<Target> {
        let tb = &self.cfg.targets[inst.block];
        let mut t = Target {
            name: inst.name.clone(),
            ..Target::default()
        };
        for attr in &tb.block.attrs {
            if !KNOWN_ATTRS.contains(&attr.name.as_str()) {
                continue;
            }
            let v = self
                .block_attr(inst.block, attr, &mut inst.locals)
                .map_err(|e| e.with_others(1))?;
            decode_attr(&mut t, attr, v)?;
        }
        Ok(t)
    }

    /// Evaluates every group block: (name, description, targets), last definition wins.
    pub fn groups(&self) -> Result<Vec<(String, String, Vec<String>)>> {
        let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
        for g in &self.cfg.groups {
            check_name(&g.label, g.label_span)?;
            let mut targets = Vec::new();
            let mut description = String::new();
            if let Some(a) = g.block.attr("targets") {
                let v = self
                    .ev()
                    .eval(&a.expr, &mut Vec::new())
                    .map_err(|e| e.with_others(1))?;
                targets = string_list(&v, a)?;
            }
            if let Some(a) = g.block.attr("description") {
                let v = self
                    .ev()
                    .eval(&a.expr, &mut Vec::new())
                    .map_err(|e| e.with_others(1))?;
                description = string_scalar(v, a)?.unwrap_or_default();
            }
            out.retain(|(n, _, _)| n != &g.label);
            out.push((g.label.clone(), description, targets));
        }
        Ok(out)
    }
}

fn check_name(name: &str, span: Span) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::diag(
            span,
            "Invalid name",
            "only \"[a-zA-Z0-9_-]+\" are allowed",
        ));
    }
    Ok(())
}

/// All combinations of a matrix object, first key varying slowest (keys in sorted order).
fn matrix_combinations(m: &Value, span: Span) -> Result<Vec<Locals>> {
    let entries = m
        .as_entries()
        .ok_or_else(|| Error::diag(span, "Invalid matrix", "matrix must be a map of lists"))?;
    let mut combos: Vec<Locals> = vec![Vec::new()];
    for (k, v) in entries {
        let items = v.as_seq().ok_or_else(|| {
            Error::diag(
                span,
                "Invalid matrix",
                format!("matrix values must be a list, got {}", v.kind_name()),
            )
        })?;
        let mut next = Vec::with_capacity(combos.len() * items.len());
        for c in &combos {
            for item in items {
                let mut c2 = c.clone();
                c2.push((k.clone(), item.clone()));
                next.push(c2);
            }
        }
        combos = next;
    }
    Ok(combos)
}

impl Globals for Session<'_> {
    fn global(&self, name: &str, span: Span) -> Result<Option<Value>> {
        match name {
            "BAKE_CMD_CONTEXT" => return Ok(Some(Value::string("cwd://"))),
            "BAKE_LOCAL_PLATFORM" => return Ok(Some(Value::string(local_platform()))),
            _ => {}
        }
        if let Some(frame) = self.reads.borrow_mut().last_mut() {
            frame.push(name.to_string());
        }
        if self.cfg.vars.contains_key(name) || self.cfg.attrs.contains_key(name) {
            return self.variable(name, span).map(Some);
        }
        Ok(None)
    }

    fn global_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .cfg
            .vars
            .keys()
            .chain(self.cfg.attrs.keys())
            .cloned()
            .collect();
        names.extend(BUILTINS.iter().map(|s| s.to_string()));
        names
    }

    fn target_attr(&self, target: &str, attr: &str, span: Span) -> Result<Value> {
        let blocks: Vec<usize> = (0..self.cfg.targets.len())
            .filter(|&i| self.cfg.targets[i].label == target)
            .collect();
        if blocks.is_empty() {
            return Err(Error::diag(
                span,
                "Invalid expression",
                format!("target {target} not found"),
            ));
        }
        for &i in blocks.iter().rev() {
            if let Some(a) = self.cfg.targets[i].block.attr(attr) {
                let v = self.block_attr(i, a, &mut Vec::new())?;
                return Ok(as_field_type(attr, v));
            }
        }
        Ok(Value::Null)
    }

    fn user_function(&self, name: &str) -> Option<&UserFunction> {
        self.cfg.functions.get(name)
    }

    fn check_function_cycle(&self, name: &str, span: Span) -> Result<()> {
        if self.cfg.cyclic_functions.contains(name) {
            return Err(Error::diag(
                span,
                "Invalid expression",
                format!("function cycle not allowed for {name}"),
            ));
        }
        Ok(())
    }
}

/// Go's `ParseBool` for `BUILDX_BAKE_DISABLE_VARS_ENV_LOOKUP` and friends.
pub(crate) fn env_flag(env: &BTreeMap<String, String>, name: &str) -> bool {
    env.get(name)
        .and_then(|v| parse_go_bool(v))
        .unwrap_or(false)
}
