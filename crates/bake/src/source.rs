//! Source files and positions: byte spans, and their rendering as HCL ranges
//! (`file:L,C-C2` or `file:L,C-L2,C2`, 1-based, columns counted in characters).

/// A byte range inside one of the loaded files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub file: u32,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: u32, range: std::ops::Range<usize>) -> Span {
        Span {
            file,
            start: range.start as u32,
            end: range.end as u32,
        }
    }
}

/// One loaded bake file: its name as given (`-f` argument or discovered name) and text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    /// Offsets where lines start, computed on first use (only diagnostics need them).
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    pub fn new(name: String, text: String) -> SourceFile {
        SourceFile {
            name,
            text,
            line_starts: std::sync::OnceLock::new(),
        }
    }

    /// 1-based line and character column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_starts = self.line_starts.get_or_init(|| {
            let mut starts = vec![0];
            starts.extend(self.text.match_indices('\n').map(|(i, _)| i + 1));
            starts
        });
        let line = line_starts.partition_point(|&s| s <= offset) - 1;
        let start = line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }
}

/// Renders `span` as HCL does in diagnostics: `name:L,C-C2` or `name:L,C-L2,C2`.
pub fn render_range(files: &[SourceFile], span: Span) -> String {
    let Some(file) = files.get(span.file as usize) else {
        return String::new();
    };
    let (l1, c1) = file.line_col(span.start as usize);
    let (l2, c2) = file.line_col(span.end as usize);
    if l1 == l2 {
        format!("{}:{l1},{c1}-{c2}", file.name)
    } else {
        format!("{}:{l1},{c1}-{l2},{c2}", file.name)
    }
}
