//! Errors. Inside the crate an error is either an HCL-style diagnostic tied to a span or a
//! plain message (as buildx prints them); at the API boundary it becomes `BakeError`, whose
//! `Display` is the exact text buildx prints after `ERROR: `.

use crate::source::{render_range, SourceFile, Span};

/// A failed read or resolution; `to_string()` is the message buildx prints after `ERROR: `.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BakeError {
    pub message: String,
}

impl BakeError {
    pub fn new(message: impl Into<String>) -> BakeError {
        BakeError {
            message: message.into(),
        }
    }
}

/// An HCL diagnostic: `<range>: <summary>; <detail>[, and N other diagnostic(s)]`.
#[derive(Clone, Debug)]
pub struct Diag {
    pub span: Span,
    pub summary: String,
    pub detail: String,
    /// How many further error diagnostics HCL would have reported with this one.
    pub others: usize,
    /// A second range, rendered where `detail` says `{range}`.
    pub related: Option<Span>,
}

#[derive(Clone, Debug)]
pub enum Error {
    Diag(Box<Diag>),
    Msg(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn diag(span: Span, summary: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Diag(Box::new(Diag {
            span,
            summary: summary.into(),
            detail: detail.into(),
            others: 0,
            related: None,
        }))
    }

    pub fn msg(message: impl Into<String>) -> Error {
        Error::Msg(message.into())
    }

    /// Sets the count of other diagnostics (HCL reports evaluation failures in target
    /// blocks twice: once for the attribute and once for the block decode).
    pub fn with_others(mut self, n: usize) -> Error {
        if let Error::Diag(d) = &mut self {
            d.others = n;
        }
        self
    }

    pub fn with_related(mut self, span: Span) -> Error {
        if let Error::Diag(d) = &mut self {
            d.related = Some(span);
        }
        self
    }

    pub fn render(&self, files: &[SourceFile]) -> BakeError {
        match self {
            Error::Msg(m) => BakeError::new(m.clone()),
            Error::Diag(d) => {
                let detail = match d.related {
                    Some(r) => d.detail.replace("{range}", &render_range(files, r)),
                    None => d.detail.clone(),
                };
                let mut s = format!("{}: {}; {}", render_range(files, d.span), d.summary, detail);
                if d.others > 0 {
                    s.push_str(&format!(", and {} other diagnostic(s)", d.others));
                }
                BakeError::new(s)
            }
        }
    }
}
