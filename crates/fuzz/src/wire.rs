//! The text shape of request inputs: header lines `name: value`, an empty line, the body.

use std::borrow::Cow;

/// Splits an input at its first empty line into the header block and the body (all of
/// it is headers when there is no empty line).
pub(crate) fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => {
            let (head, rest) = data.split_at_checked(at).unwrap_or((data, &[]));
            (head, rest.get(2..).unwrap_or(&[]))
        }
        None => (data, &[]),
    }
}

/// The header lines of a header block: the name before the first `:` (lossy UTF-8,
/// as an HTTP library would refuse or map it), the value after it with one leading space
/// removed, as raw bytes. A line without `:` is a header with an empty value.
pub(crate) fn headers(head: &[u8]) -> Vec<(Cow<'_, str>, &[u8])> {
    head.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = match line.iter().position(|b| *b == b':') {
                Some(at) => {
                    let (name, rest) = line.split_at_checked(at).unwrap_or((line, &[]));
                    let value = rest.get(1..).unwrap_or(&[]);
                    (name, value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &[][..]),
            };
            (String::from_utf8_lossy(name), value)
        })
        .collect()
}

/// Writes headers and a body in the input shape.
pub(crate) fn encode<'a>(
    first_line: Option<&str>,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(line) = first_line {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}
