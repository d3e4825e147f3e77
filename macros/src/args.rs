//! The attribute's arguments: `start_paused`, `flavor` and `crate`.

use proc_macro::{Ident, TokenStream, TokenTree};

use crate::{colons, error};

/// What the attribute's arguments ask for.
pub(crate) struct Settings {
    /// `start_paused = true`: the runtime's clock starts paused.
    pub(crate) start_paused: bool,
    /// `crate = "path"`: the path the `overlap` crate is reached by, `::overlap` if `None`.
    pub(crate) krate: Option<TokenStream>,
}

/// The settings, as the messages list them.
const SETTINGS: &str =
    "`start_paused = true|false`, `flavor = \"current_thread\"` and `crate = \"path\"`";

/// Reads the attribute's arguments: nothing, or comma-separated `start_paused = true|false`,
/// tokio's `flavor = "current_thread"` (what overlap always is) and tokio's `crate = "path"`.
/// Returns the settings, or the error to report.
pub(crate) fn parse_args(args: TokenStream, name: &str) -> Result<Settings, TokenStream> {
    let tokens: Vec<TokenTree> = args.into_iter().collect();
    let mut settings = Settings {
        start_paused: false,
        krate: None,
    };
    let mut seen: Vec<String> = Vec::new();
    for arg in tokens.split(|t| is_punct(t, ',')) {
        let [first, rest @ ..] = arg else {
            continue;
        };
        let key = match first {
            TokenTree::Ident(key) => key.to_string(),
            _ => String::new(),
        };
        let form = match key.as_str() {
            "start_paused" => "start_paused = true",
            "flavor" => "flavor = \"current_thread\"",
            "crate" => "crate = \"my_rt\"",
            // tokio's setting for its multi-threaded runtime, which overlap has not.
            "worker_threads" => {
                return Err(error(
                    first.span(),
                    &format!(
                        "`worker_threads` sets up tokio's multi-threaded runtime; overlap runs \
                         one runtime on the current thread, so #[overlap::{name}] takes only \
                         {SETTINGS}; for more cores, run a `Runtime` per thread (see the \
                         `tcp_echo_per_core` example)"
                    ),
                ))
            }
            _ => {
                return Err(error(
                    first.span(),
                    &format!(
                        "#[overlap::{name}] takes only {SETTINGS}; build a `Runtime` with \
                         `Runtime::builder()` for other settings"
                    ),
                ))
            }
        };
        let value = match rest {
            [eq, value] if is_punct(eq, '=') => value,
            // `start_paused = true flavor = ..`: the next setting, with no comma before it.
            [eq, TokenTree::Ident(_) | TokenTree::Literal(_), next @ TokenTree::Ident(_), eq2, ..]
                if is_punct(eq, '=') && is_punct(eq2, '=') =>
            {
                return Err(error(
                    next.span(),
                    &format!("a `,` goes between two settings, before `{next}`"),
                ))
            }
            _ => {
                // At what stands where the value should, past an `=`.
                let at = match rest {
                    [eq, value, ..] if is_punct(eq, '=') => value,
                    [at, ..] => at,
                    [] => first,
                };
                return Err(error(at.span(), &format!("`{key}` is set as `{form}`")));
            }
        };
        // A setting given twice is refused, as tokio does, rather than the last one winning
        // unseen (`start_paused = true, start_paused = false` would run unpaused).
        if seen.contains(&key) {
            return Err(error(
                first.span(),
                &format!("`{key}` is set more than once"),
            ));
        }
        seen.push(key.clone());
        match key.as_str() {
            "start_paused" => {
                settings.start_paused = match value.to_string().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(error(
                            value.span(),
                            "`start_paused` takes `true` or `false`",
                        ))
                    }
                }
            }
            "flavor" if !is_string(value) => {
                return Err(error(
                    value.span(),
                    "`flavor` takes a string: `flavor = \"current_thread\"`",
                ))
            }
            "flavor" => {
                if value.to_string() != "\"current_thread\"" {
                    return Err(error(
                        value.span(),
                        "overlap runs one runtime on the current thread: only \
                         `flavor = \"current_thread\"` is accepted; for more cores, run a \
                         `Runtime` per thread (see the `tcp_echo_per_core` example)",
                    ));
                }
            }
            _ => settings.krate = Some(crate_path(value)?),
        }
    }
    Ok(settings)
}

/// Whether `t` is a plain or raw string literal.
fn is_string(t: &TokenTree) -> bool {
    let TokenTree::Literal(lit) = t else {
        return false;
    };
    let text = lit.to_string();
    text.starts_with('"') || text.starts_with("r\"") || text.starts_with("r#")
}

fn is_punct(t: &TokenTree, c: char) -> bool {
    matches!(t, TokenTree::Punct(p) if p.as_char() == c)
}

/// The words that cannot name a crate or module (`crate`, `self`, `super` and `Self` can).
const KEYWORDS: &[&str] = &[
    "_", "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where",
    "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof",
    "unsized", "virtual", "yield", "try", "gen",
];

/// The path in `crate = "path"` (`"my_rt"`, `"::my_rt"`, `"crate::rt"`) as tokens spanned at
/// the string, so that a path that does not resolve is reported there; or the error to report.
fn crate_path(value: &TokenTree) -> Result<TokenStream, TokenStream> {
    let refuse = |what: &str| {
        error(
            value.span(),
            &format!(
                "`crate` takes the path the overlap crate is reached by, as a string: \
                 `crate = \"my_rt\"`; {what}"
            ),
        )
    };
    let text = match value {
        TokenTree::Literal(lit) => lit.to_string(),
        _ => String::new(),
    };
    // A plain or raw string with nothing escaped: an escape has no place in a path.
    let unraw = text
        .strip_prefix('r')
        .map_or(&*text, |t| t.trim_matches('#'));
    let Some(inner) = unraw.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return Err(refuse("this is not a string"));
    };
    if inner.contains('\\') {
        return Err(refuse("a path has no escapes"));
    }
    let span = value.span();
    let mut path = TokenStream::new();
    for (i, segment) in inner.split("::").map(str::trim).enumerate() {
        // A leading `::` leaves an empty first segment: a path from the crate root.
        if i == 0 && segment.is_empty() && inner.trim_start().starts_with("::") {
            continue;
        }
        let is_ident = segment.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !KEYWORDS.contains(&segment);
        if !is_ident {
            return Err(refuse(&format!(
                "`{}` is not a path of names separated by `::`",
                inner.trim()
            )));
        }
        if i > 0 {
            path.extend(colons(span));
        }
        path.extend([TokenTree::Ident(Ident::new(segment, span))]);
    }
    Ok(path)
}
