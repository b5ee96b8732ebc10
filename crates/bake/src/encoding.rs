//! The bytes of an HCL file as Go's HCL reads them: a leading byte-order mark is skipped
//! (it counts for no column), and a byte that is not UTF-8 is an error unless it sits in
//! a comment, whose bytes the scanner never decodes.

use crate::error::Error;
use crate::source::Span;

const BOM: &str = "\u{feff}";

/// Drops a leading UTF-8 byte-order mark.
pub fn strip_bom(text: String) -> String {
    match text.strip_prefix(BOM) {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// Decodes an HCL file. `Err` carries the byte offset, in the lossily decoded text
/// (each bad sequence becomes one U+FFFD), of the first bad sequence outside a comment.
pub fn decode_hcl(raw: Vec<u8>) -> (String, Option<usize>) {
    let raw = match String::from_utf8(raw) {
        Ok(text) => return (text, None),
        Err(e) => e.into_bytes(),
    };
    let raw = raw.as_slice();
    let text = String::from_utf8_lossy(raw).into_owned();
    // The lossy text has the same comment structure (U+FFFD is no delimiter), so scan it.
    let comments = comment_ranges(text.as_bytes());
    let bad = text
        .char_indices()
        .filter(|&(_, c)| c == char::REPLACEMENT_CHARACTER)
        .map(|(i, _)| i)
        // A U+FFFD that was in the file itself is no encoding error.
        .filter(|&i| is_replacement_of_bad_bytes(raw, i))
        .find(|&i| !comments.iter().any(|r| r.contains(&i)));
    (text, bad)
}

/// Whether the U+FFFD at `at` in the lossy `text` stands for undecodable bytes of `raw`.
fn is_replacement_of_bad_bytes(raw: &[u8], at: usize) -> bool {
    // Map `at` back to raw: walk the chunks of valid text and bad bytes in order.
    let mut lossy = 0;
    for chunk in raw.utf8_chunks() {
        let valid = chunk.valid();
        if at < lossy + valid.len() {
            return false;
        }
        lossy += valid.len();
        if !chunk.invalid().is_empty() {
            if at == lossy {
                return true;
            }
            lossy += char::REPLACEMENT_CHARACTER.len_utf8();
        }
        if lossy > at {
            return false;
        }
    }
    false
}

/// The error buildx gives for a bad byte at lossy offset `at` of file `file`.
pub fn bad_encoding_error(file: u32, at: usize) -> Error {
    Error::diag(
        Span::new(file, at..at + char::REPLACEMENT_CHARACTER.len_utf8()),
        "Invalid character encoding",
        "All input files must be UTF-8 encoded. Ensure that UTF-8 encoding is selected in your \
         editor.",
    )
    .with_others(1)
}

/// Byte ranges of the comments of an HCL file: `#` and `//` to the end of the line and
/// `/* */`, outside quoted strings and heredocs (interpolations inside strings are code).
fn comment_ranges(b: &[u8]) -> Vec<std::ops::Range<usize>> {
    enum Ctx {
        Str,
        /// Inside `${ }` / `%{ }`: the count of `{` opened within it.
        Interp(usize),
    }
    let mut out = Vec::new();
    let mut stack: Vec<Ctx> = Vec::new();
    let mut top_braces = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(Ctx::Str) = stack.last() {
            match c {
                b'\\' => i += 1,
                b'"' | b'\n' => {
                    stack.pop();
                }
                b'$' | b'%' if b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&b'{') => i += 2,
                b'$' | b'%' if b.get(i + 1) == Some(&b'{') => {
                    stack.push(Ctx::Interp(0));
                    i += 1;
                }
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => stack.push(Ctx::Str),
            b'#' => i = line_comment(b, i, &mut out),
            b'/' if b.get(i + 1) == Some(&b'/') => i = line_comment(b, i, &mut out),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = b[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(b.len(), |n| i + 2 + n + 2);
                out.push(i..end);
                i = end - 1;
            }
            b'<' if b.get(i + 1) == Some(&b'<') => i = skip_heredoc(b, i),
            b'{' => match stack.last_mut() {
                Some(Ctx::Interp(n)) => *n += 1,
                _ => top_braces += 1,
            },
            b'}' => match stack.last_mut() {
                Some(Ctx::Interp(0)) => {
                    stack.pop();
                }
                Some(Ctx::Interp(n)) => *n -= 1,
                _ => top_braces = top_braces.saturating_sub(1),
            },
            _ => {}
        }
        i += 1;
    }
    out
}

fn line_comment(b: &[u8], start: usize, out: &mut Vec<std::ops::Range<usize>>) -> usize {
    let end = b[start..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |n| start + n);
    out.push(start..end);
    end
}

/// From `<<` at `i`, the offset of the end of the heredoc's closing line (or of `<<` + 1
/// when no marker follows).
fn skip_heredoc(b: &[u8], i: usize) -> usize {
    let mut j = i + 2;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    let start = j;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    let marker = &b[start..j];
    if marker.is_empty() {
        return i + 1;
    }
    let mut k = j;
    loop {
        let Some(nl) = b[k..].iter().position(|&c| c == b'\n') else {
            return b.len();
        };
        k += nl + 1;
        let end = b[k..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(b.len(), |n| k + n);
        if b[k..end].trim_ascii() == marker {
            return end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bytes_outside_comments_are_found_at_their_lossy_offset() {
        assert_eq!(decode_hcl(b"a = \"x\xff\"\n".to_vec()).1, Some(6));
        assert_eq!(decode_hcl(b"a = \"\xc3\xa9\xff\"\n".to_vec()).1, Some(7));
        assert_eq!(
            decode_hcl(b"# \xff\na = <<EOT\n\xfe\nEOT\n".to_vec()).1,
            Some(16)
        );
    }

    #[test]
    fn bad_bytes_in_comments_and_real_replacement_chars_pass() {
        for ok in [
            &b"# \xff\na = 1\n"[..],
            b"// \xff\n",
            b"/* \xff\n\xfe */ a = 1",
            b"a = \"\xef\xbf\xbd\" # \xff",
            b"a = \"${b} # \" // \xff",
        ] {
            assert_eq!(
                decode_hcl(ok.to_vec()).1,
                None,
                "{}",
                String::from_utf8_lossy(ok)
            );
        }
        // `#` inside a string starts no comment.
        assert_eq!(decode_hcl(b"a = \"# \xff\"".to_vec()).1, Some(7));
    }

    #[test]
    fn a_leading_bom_is_dropped() {
        assert_eq!(strip_bom("\u{feff}a = 1".into()), "a = 1");
        assert_eq!(strip_bom("a = \u{feff}".into()), "a = \u{feff}");
    }
}
