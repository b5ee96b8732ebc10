//! The syntax tree the evaluator walks, built straight from the source by kiln's HCL
//! parser (`lexer.rs`, `parse.rs`) or the JSON reader (`json.rs`): byte spans for
//! diagnostics, templates with `~` strip markers and heredoc indentation already applied,
//! and literal numbers taken from their source text so they keep full precision.

use crate::source::Span;
use crate::value::Value;

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Literal(Value),
    Tuple(Vec<Expr>),
    Object(Vec<(ObjectKey, Expr)>),
    Template(Vec<Part>),
    Var(String),
    Cond(Box<[Expr; 3]>),
    Call(Box<Call>),
    Traverse(Box<Expr>, Vec<Op>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<[Expr; 2]>),
    For(Box<ForExpr>),
    Paren(Box<Expr>),
}

#[derive(Clone, Debug)]
pub enum ObjectKey {
    /// A bare identifier key is the literal name.
    Ident(String),
    Expr(Expr),
}

#[derive(Clone, Debug)]
pub struct Call {
    pub name: String,
    pub name_span: Span,
    pub args: Vec<Expr>,
    /// `f(list...)`: the last argument is spread.
    pub expand_final: bool,
}

#[derive(Clone, Debug)]
pub enum Op {
    Attr(String, Span),
    Index(Expr),
    LegacyIndex(u64, Span),
    /// `.*`: following attribute lookups apply to each element.
    AttrSplat,
    /// `[*]`: all following operations apply to each element.
    FullSplat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Eq,
    NotEq,
    LessEq,
    GreaterEq,
    Less,
    Greater,
    Plus,
    Minus,
    Mul,
    Div,
    Mod,
    And,
    Or,
}

#[derive(Clone, Debug)]
pub struct ForExpr {
    pub key_var: Option<String>,
    pub value_var: String,
    pub collection: Expr,
    pub key_expr: Option<Expr>,
    pub value_expr: Expr,
    pub cond: Option<Expr>,
    pub grouping: bool,
}

/// A piece of a string template.
#[derive(Clone, Debug)]
pub enum Part {
    Lit(String),
    Interp(Expr),
    If {
        cond: Expr,
        then: Vec<Part>,
        otherwise: Vec<Part>,
    },
    For {
        key_var: Option<String>,
        value_var: String,
        collection: Expr,
        body: Vec<Part>,
    },
}

#[derive(Clone, Debug)]
pub struct Attribute {
    pub name: String,
    pub name_span: Span,
    pub expr: Expr,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub label_spans: Vec<Span>,
    pub attrs: Vec<Attribute>,
    pub blocks: Vec<Block>,
    /// The `{` that opens the body (an empty range there), used by variable errors.
    pub open_brace: Span,
}

impl Block {
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

/// One parsed file: top-level attributes and blocks in source order.
#[derive(Clone, Debug, Default)]
pub struct Body {
    pub attrs: Vec<Attribute>,
    pub blocks: Vec<Block>,
}
