//! `select!`: tokio's syntax (refutable patterns, `if` preconditions, `else`, `biased;`)
//! that also takes futures-util's (`complete`, `default`, fused futures given by name).
//!
//! The facade's `select!` and `select_biased!` are `macro_rules!` that call
//! [`select_impl`](crate::select_impl) with the facade's `$crate` path in parentheses and
//! whether the call is biased, then the user's tokens. This module reads those tokens into
//! a [`Select`]; `expand` writes the code.

mod expand;

use proc_macro::{Delimiter, Spacing, Span, TokenStream, TokenTree};

use crate::error;

/// The most branches one `select!` takes: which are disabled is one `u64`'s bits.
const MAX_BRANCHES: usize = 64;

/// One `pattern = future, if precondition => handler` branch.
struct Branch {
    /// What the future's output must match for the branch to be taken.
    pat: Vec<TokenTree>,
    /// The future (anything `IntoFuture`), or a fused `Unpin` future given by name.
    fut: Vec<TokenTree>,
    /// The `if` precondition: `false` disables the branch for this call.
    cond: Option<Vec<TokenTree>>,
    /// What the branch evaluates to, a block or an expression.
    handler: Vec<TokenTree>,
}

/// A whole `select!` call.
struct Select {
    /// The path of the `overlap` crate (the facade's `$crate`).
    krate: TokenStream,
    /// Polls in the order written rather than from a random branch.
    biased: bool,
    branches: Vec<Branch>,
    /// `else =>` (tokio) or `complete =>` (futures-util): every branch is disabled.
    on_disabled: Option<Vec<TokenTree>>,
    /// `default =>` (futures-util): no branch was ready on the first poll.
    on_idle: Option<Vec<TokenTree>>,
}

/// Expands a `select!` call, or reports what is wrong with it.
pub(crate) fn select(input: TokenStream) -> TokenStream {
    match parse(input) {
        Ok(select) => expand::expand(select),
        // Without the `;` that ends an item: `select!` is an expression, and rustc would
        // add that it ignores the `;` and that the call is likely invalid there.
        Err(e) => e.into_iter().filter(|t| !is_punct(t, ';')).collect(),
    }
}

fn parse(input: TokenStream) -> Result<Select, TokenStream> {
    let mut tokens = input.into_iter();
    let krate = match tokens.next() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => g.stream(),
        _ => {
            return Err(error(
                Span::call_site(),
                "select_impl! is called by select!",
            ))
        }
    };
    let mut biased = match tokens.next() {
        Some(TokenTree::Ident(i)) => i.to_string() == "true",
        _ => {
            return Err(error(
                Span::call_site(),
                "select_impl! is called by select!",
            ))
        }
    };
    let tokens: Vec<TokenTree> = tokens.collect();
    let mut at = 0;
    // `biased` before `=` or `@` is a binding of that name in a branch's pattern, as
    // tokio's reads it (its keyword is `biased;`).
    let binds_biased = tokens
        .get(1)
        .is_some_and(|t| is_binding_eq(&tokens, 1, t) || is_punct(t, '@'));
    if tokens.first().is_some_and(|t| is_ident(t, "biased")) && !binds_biased {
        match tokens.get(1) {
            Some(t) if is_punct(t, ';') => {}
            other => {
                let span = other.map_or(tokens[0].span(), TokenTree::span);
                return Err(error(span, "`biased` is followed by `;`"));
            }
        }
        biased = true;
        at = 2;
    }
    let mut select = Select {
        krate,
        biased,
        branches: Vec::new(),
        on_disabled: None,
        on_idle: None,
    };
    while at < tokens.len() {
        at = parse_branch(&tokens, at, &mut select)?;
    }
    if select.branches.is_empty() {
        return Err(error(
            Span::call_site(),
            "select! needs at least one `pattern = future => handler` branch",
        ));
    }
    if select.branches.len() > MAX_BRANCHES {
        return Err(error(
            select.branches[MAX_BRANCHES].pat[0].span(),
            "select! takes at most 64 branches",
        ));
    }
    Ok(select)
}

/// Reads the branch that starts at `at` into `select`; returns where the next one starts.
fn parse_branch(
    tokens: &[TokenTree],
    at: usize,
    select: &mut Select,
) -> Result<usize, TokenStream> {
    let rest = &tokens[at..];
    // `else =>`, `complete =>`, `default =>`.
    if let [TokenTree::Ident(word), eq, gt, ..] = rest {
        let word_str = word.to_string();
        let special = matches!(word_str.as_str(), "else" | "complete" | "default");
        if special && is_fat_arrow(eq, gt) {
            let (handler, next) = handler_at(tokens, at + 3)?;
            let slot = if word_str == "default" {
                &mut select.on_idle
            } else {
                &mut select.on_disabled
            };
            if slot.is_some() {
                let what = if word_str == "default" {
                    "a second `default` branch"
                } else {
                    "a second `else` (or `complete`) branch: both run when every branch is disabled"
                };
                return Err(error(word.span(), what));
            }
            *slot = Some(handler);
            return Ok(next);
        }
    }
    if let [first, semi, ..] = rest {
        if is_ident(first, "biased") && is_punct(semi, ';') {
            return Err(error(
                first.span(),
                "`biased;` goes before the first branch",
            ));
        }
    }
    let Some(eq) = rest
        .iter()
        .enumerate()
        .position(|(i, t)| is_binding_eq(rest, i, t))
    else {
        return Err(error(
            rest[0].span(),
            "expected `pattern = future => handler` (or `else => handler`)",
        ));
    };
    if eq == 0 {
        return Err(error(rest[0].span(), "a pattern goes before the `=`"));
    }
    let pat = rest[..eq].to_vec();
    let after_eq = &rest[eq + 1..];
    let Some(arrow) = (0..after_eq.len().saturating_sub(1))
        .find(|&i| is_fat_arrow(&after_eq[i], &after_eq[i + 1]))
    else {
        return Err(error(
            rest[eq].span(),
            "expected `=> handler` after the future",
        ));
    };
    let head = &after_eq[..arrow];
    // `future, if precondition`
    let comma_if = (0..head.len().saturating_sub(1))
        .find(|&i| is_punct(&head[i], ',') && is_ident(&head[i + 1], "if"));
    let (fut, cond) = match comma_if {
        Some(i) => (head[..i].to_vec(), Some(head[i + 2..].to_vec())),
        None => (head.to_vec(), None),
    };
    if let Some(bare_if) = precondition_without_comma(&fut) {
        return Err(error(
            bare_if.span(),
            "a precondition goes after a comma: `pattern = future, if condition => handler`",
        ));
    }
    if fut.is_empty() {
        return Err(error(rest[eq].span(), "a future goes after the `=`"));
    }
    if cond.as_ref().is_some_and(Vec::is_empty) {
        return Err(error(
            head[comma_if.unwrap_or(0)].span(),
            "a condition goes after `if`",
        ));
    }
    let (handler, next) = handler_at(tokens, at + eq + 1 + arrow + 2)?;
    select.branches.push(Branch {
        pat,
        fut,
        cond,
        handler,
    });
    Ok(next)
}

/// An `if` in the future's tokens that no expression can continue with (after a name, a
/// literal or a bracketed group, other than `else if` and the keywords an `if` may follow):
/// a precondition written without its comma, which would otherwise fail as a parse error
/// inside the expansion that does not say what is wrong.
fn precondition_without_comma(fut: &[TokenTree]) -> Option<&TokenTree> {
    const MAY_PRECEDE_IF: [&str; 6] = ["else", "return", "break", "in", "yield", "move"];
    fut.windows(2).find_map(|pair| {
        let follows_operand = match &pair[0] {
            TokenTree::Ident(word) => !MAY_PRECEDE_IF.contains(&word.to_string().as_str()),
            TokenTree::Literal(_) | TokenTree::Group(_) => true,
            TokenTree::Punct(_) => false,
        };
        (follows_operand && is_ident(&pair[1], "if")).then_some(&pair[1])
    })
}

/// The handler that starts at `at`: a block (the comma after it optional) or an expression
/// up to the next top-level comma. Returns it and where the next branch starts.
fn handler_at(tokens: &[TokenTree], at: usize) -> Result<(Vec<TokenTree>, usize), TokenStream> {
    match tokens.get(at) {
        None => Err(error(
            tokens[at - 1].span(),
            "a handler goes after the `=>`",
        )),
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
            // A block is the whole handler (as in tokio's and futures-util's), the comma
            // after it optional.
            let comma = tokens.get(at + 1).is_some_and(|t| is_punct(t, ','));
            Ok((vec![tokens[at].clone()], at + 1 + usize::from(comma)))
        }
        Some(_) => expression_at(tokens, at),
    }
}

/// The expression from `at` to the next comma outside a turbofish's or a qualified path's
/// `<..>` (nested ones included) and a leading closure's parameters.
fn expression_at(tokens: &[TokenTree], at: usize) -> Result<(Vec<TokenTree>, usize), TokenStream> {
    let mut angle = 0usize;
    let mut end = at;
    // A closure's parameters (`|a, b| ..`, `move |a, b| ..`) hold commas of their own.
    let closure_at = at + usize::from(tokens.get(at).is_some_and(|t| is_ident(t, "move")));
    if tokens.get(closure_at).is_some_and(|t| is_punct(t, '|')) {
        let close = tokens[closure_at + 1..]
            .iter()
            .position(|t| is_punct(t, '|'));
        end = close.map_or(tokens.len(), |i| closure_at + 2 + i);
    }
    while end < tokens.len() {
        let t = &tokens[end];
        // `::<` opens a turbofish and a leading `<` a qualified path (`<T as U>::f`);
        // inside either, every `<` opens a nested generic list.
        let opens_list = end == at || (end >= 2 && is_punct(&tokens[end - 1], ':'));
        if is_punct(t, '<') && (angle > 0 || opens_list) {
            angle += 1;
        } else if is_punct(t, '>') && angle > 0 && !(end > 0 && is_punct(&tokens[end - 1], '-')) {
            angle -= 1;
        } else if is_punct(t, ',') && angle == 0 {
            break;
        }
        end += 1;
    }
    if end == at {
        return Err(error(tokens[at].span(), "a handler goes after the `=>`"));
    }
    Ok((tokens[at..end].to_vec(), (end + 1).min(tokens.len())))
}

/// Whether `t`, at `i` in `tokens`, is the `=` between a pattern and its future: a lone
/// `=`, not the end of `==`, `<=`, `..=` and the like.
fn is_binding_eq(tokens: &[TokenTree], i: usize, t: &TokenTree) -> bool {
    let TokenTree::Punct(p) = t else {
        return false;
    };
    let joined_to_previous = i > 0
        && matches!(&tokens[i - 1], TokenTree::Punct(prev) if prev.spacing() == Spacing::Joint);
    p.as_char() == '=' && p.spacing() == Spacing::Alone && !joined_to_previous
}

/// `=>`
fn is_fat_arrow(a: &TokenTree, b: &TokenTree) -> bool {
    matches!(a, TokenTree::Punct(p) if p.as_char() == '=' && p.spacing() == Spacing::Joint)
        && is_punct(b, '>')
}

fn is_punct(t: &TokenTree, c: char) -> bool {
    matches!(t, TokenTree::Punct(p) if p.as_char() == c)
}

fn is_ident(t: &TokenTree, name: &str) -> bool {
    matches!(t, TokenTree::Ident(i) if i.to_string() == name)
}
