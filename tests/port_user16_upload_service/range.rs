//! The `Range` header of a GET (RFC 9110 14.1.2): one byte range, `a-b`, `a-` or `-n`.

/// What a GET with this `Range` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    /// No range, or one the server ignores (not bytes, several ranges, malformed): 200
    /// with the whole file, as RFC 9110 allows.
    Whole,
    /// 206 with bytes `first..=last`.
    Part { first: u64, last: u64 },
    /// 416: no byte of the file is in the range.
    Unsatisfiable,
}

/// Resolves the `Range` field `value` against a file of `len` bytes.
pub fn resolve(value: Option<&[u8]>, len: u64) -> Ranged {
    let Some(value) = value.and_then(|v| std::str::from_utf8(v).ok()) else {
        return Ranged::Whole;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (a.is_empty(), b.is_empty()) {
        // `-n`: the last n bytes (all of them if the file is shorter).
        (true, false) => match num(b) {
            None => Ranged::Whole,
            Some(0) => Ranged::Unsatisfiable,
            Some(_) if len == 0 => Ranged::Unsatisfiable,
            Some(n) => Ranged::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
        },
        // `a-`: from a to the end.
        (false, true) => match num(a) {
            None => Ranged::Whole,
            Some(first) if first >= len => Ranged::Unsatisfiable,
            Some(first) => Ranged::Part {
                first,
                last: len - 1,
            },
        },
        // `a-b`: a last before the first is invalid, so ignored; b is cut to the end.
        (false, false) => match (num(a), num(b)) {
            (Some(first), Some(last)) if first <= last => {
                if first >= len {
                    Ranged::Unsatisfiable
                } else {
                    Ranged::Part {
                        first,
                        last: last.min(len - 1),
                    }
                }
            }
            _ => Ranged::Whole,
        },
        (true, true) => Ranged::Whole,
    }
}
