//! The code a `select!` expands to.
//!
//! ```text
//! {
//!     enum Out<T0, T1> { _0(T0), _1(T1), Disabled, Idle }
//!     let mut off: u64 = 0;                  // bit i: branch i is disabled
//!     if !(precondition_0) { off |= 1; }     // every precondition first, then
//!     let mut f0 = pin!(into_future(fut_0)); // every future, disabled or not
//!     let mut f1 = ByName(&mut named).by_name(); // by name: borrowed, if `Unpin`
//!     let out = poll_fn(|cx| {
//!         for each branch i, from a random one (the first if biased):
//!             skip it if disabled; disable it if it is a fused future that has ended;
//!             if it is ready: disable it if the output fails the pattern, else
//!             return Ready(Out::_i(output));
//!         Pending if any branch is, else Ready(Out::Disabled)
//!         (Ready(Out::Idle) instead of Pending with a `default` branch)
//!     }).await;
//!     match out { Out::_0(pattern_0) => handler_0, .., Out::Disabled => else_handler }
//! }
//! ```
//!
//! The handlers run after the `poll_fn`, in the caller's body, so `return`, `break`, `?`
//! and `.await` in them mean what they mean there. Helper names start with `__overlap_`.

use proc_macro::{Delimiter, Group, Span, TokenStream, TokenTree};

use super::{is_ident, is_punct, Branch, Select};

/// Rust source for one balanced piece of the expansion.
fn code(src: &str) -> TokenStream {
    src.parse()
        .expect("select! expansion pieces are valid Rust tokens")
}

fn group(delimiter: Delimiter, inner: TokenStream) -> TokenStream {
    TokenStream::from(TokenTree::Group(Group::new(delimiter, inner)))
}

fn stream(tokens: &[TokenTree]) -> TokenStream {
    tokens.iter().cloned().collect()
}

/// `tokens` with their spans (not inside groups) set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect()
}

/// `$crate::__private::select::<item>`
fn private(select: &Select, item: &str) -> TokenStream {
    let mut ts = select.krate.clone();
    ts.extend(code(&format!("::__private::select::{item}")));
    ts
}

pub(super) fn expand(select: Select) -> TokenStream {
    let n = select.branches.len();
    let mut body = TokenStream::new();
    body.extend(code("#[allow(unused_imports)] use "));
    body.extend(private(&select, "{FusedProbe as _, PlainProbe as _};"));
    let params: Vec<String> = (0..n).map(|i| format!("T{i}")).collect();
    let variants: Vec<String> = (0..n).map(|i| format!("_{i}(T{i}),")).collect();
    body.extend(code(&format!(
        "#[allow(non_camel_case_types, dead_code)] enum __OverlapSelectOut<{}> {{ {} Disabled, Idle }}",
        params.join(", "),
        variants.concat()
    )));
    // The futures live in a block of their own, dropped before a handler runs: a handler
    // may use what a future borrowed.
    // The primitive types by their full paths, as every other name here: a caller may
    // have a type of its own named `u64` or `usize` in scope.
    let mut polled = code("let mut __overlap_select_off: ::core::primitive::u64 = 0;");
    for (i, branch) in select.branches.iter().enumerate() {
        if let Some(cond) = &branch.cond {
            polled.extend(code("if !"));
            polled.extend(group(Delimiter::Parenthesis, stream(cond)));
            polled.extend(group(
                Delimiter::Brace,
                code(&format!("__overlap_select_off |= {}u64;", 1u64 << i)),
            ));
        }
    }
    for (i, branch) in select.branches.iter().enumerate() {
        let by_name = is_path(&branch.fut);
        if !by_name {
            polled.extend(code(&format!("let __overlap_select_e{i} = ")));
            polled.extend(stream(&branch.fut));
            polled.extend(code(";"));
        }
        polled.extend(code(&format!("let mut __overlap_select_f{i} = ")));
        if by_name {
            // `{ use ByNameFallback as _; ByName(&mut fut).by_name() }`: the inherent
            // `by_name` for an `Unpin` future, else the fallback trait's, whose bound no
            // type meets, so that the error is that bound's message (`{ fut }` moves it
            // in), not rustc's own about `Unpin`.
            // At the future's name, where an error that it is not `Unpin` points.
            let at = branch.fut[0].span();
            let mut body = code("#[allow(unused_imports)] use ");
            // (`$crate` keeps its own span: that span is what names the crate.)
            body.extend(select.krate.clone());
            body.extend(code("::__private::select::ByNameFallback as _;"));
            body.extend(select.krate.clone());
            body.extend(respan(code("::__private::select::ByName"), at));
            let mut args = Group::new(
                Delimiter::Parenthesis,
                // `&mut` at the name too, so that the error's span is the name's.
                [respan(code("&mut "), at), stream(&branch.fut)]
                    .into_iter()
                    .collect(),
            );
            args.set_span(at);
            body.extend([TokenTree::Group(args)]);
            body.extend(respan(code(".by_name()"), at));
            polled.extend(group(Delimiter::Brace, body));
            polled.extend(code(";"));
        } else {
            // Bound first, as the initializer of a `let`, so that temporaries in it live
            // as long as the binding does (`pin!(fut)` as the future).
            polled.extend(code(&format!(
                "::core::pin::pin!(::core::future::IntoFuture::into_future(__overlap_select_e{i}));"
            )));
        }
    }
    // Bound, not the block's tail: a tail's temporaries (the closure) would outlive the
    // futures they borrow, in edition 2021.
    polled.extend(code("let __overlap_select_r = ::core::future::poll_fn"));
    polled.extend(group(Delimiter::Parenthesis, poll_closure(&select)));
    polled.extend(code(".await; __overlap_select_r"));
    // `mut`, so that a `ref mut` binding can borrow the output in place as in tokio's.
    body.extend(code("#[allow(unused_mut)] let mut __overlap_select_out = "));
    body.extend(group(Delimiter::Brace, polled));
    body.extend(code(";"));
    body.extend(code("match __overlap_select_out"));
    body.extend(group(Delimiter::Brace, arms(&select)));
    group(Delimiter::Brace, body)
}

/// `|cx| { .. }`: polls the branches once, each at most once.
fn poll_closure(select: &Select) -> TokenStream {
    let n = select.branches.len();
    let mut closure = code("|__overlap_select_cx|");
    let mut inner = TokenStream::new();
    if select.biased {
        inner.extend(code(
            "let __overlap_select_start: ::core::primitive::usize = 0;",
        ));
    } else {
        inner.extend(code(
            "let __overlap_select_start: ::core::primitive::usize = ",
        ));
        inner.extend(private(select, "start"));
        inner.extend(code(&format!("({n});")));
    }
    inner.extend(code("let mut __overlap_select_pending = false;"));
    let mut cases = TokenStream::new();
    for (i, branch) in select.branches.iter().enumerate() {
        cases.extend(code(&format!("{i} =>")));
        cases.extend(group(Delimiter::Brace, poll_branch(select, i, branch)));
    }
    cases.extend(code("_ => {}"));
    // The branch's index, wrapped past the last (`start < n`, `i < n`).
    let mut each = code(&format!(
        "let __overlap_select_b = __overlap_select_start + __overlap_select_i; \
         match if __overlap_select_b >= {n} {{ __overlap_select_b - {n} }} else {{ __overlap_select_b }}"
    ));
    each.extend(group(Delimiter::Brace, cases));
    inner.extend(code(&format!("for __overlap_select_i in 0..{n}")));
    inner.extend(group(Delimiter::Brace, each));
    let idle = if select.on_idle.is_some() {
        "::core::task::Poll::Ready(__OverlapSelectOut::Idle)"
    } else {
        "::core::task::Poll::Pending"
    };
    inner.extend(code(&format!(
        "if __overlap_select_pending {{ {idle} }} else {{ \
         ::core::task::Poll::Ready(__OverlapSelectOut::Disabled) }}"
    )));
    // Under the task's budget, as the `sync` types' operations are: a `select!` that
    // finds a branch ready spends a unit (one that waits gives it back), so a loop whose
    // branches never wait and know nothing of the budget (a ready stream, CPU work) still
    // lets the other tasks run every so often. tokio's only checks the budget up front.
    let mut budgeted = private(select, "budgeted");
    let mut args = code("__overlap_select_cx, |__overlap_select_cx|");
    args.extend(group(Delimiter::Brace, inner));
    budgeted.extend(group(Delimiter::Parenthesis, args));
    closure.extend(group(Delimiter::Brace, budgeted));
    closure
}

/// One branch's turn in the closure.
fn poll_branch(select: &Select, i: usize, branch: &Branch) -> TokenStream {
    let bit = 1u64 << i;
    let f = format!("__overlap_select_f{i}");
    let mut ts = code(&format!(
        "if __overlap_select_off & {bit}u64 != 0 {{ continue; }} if"
    ));
    let mut probe = code("&");
    probe.extend(private(select, "Probe"));
    probe.extend(code(&format!("({f}.as_ref().get_ref())")));
    ts.extend(group(Delimiter::Parenthesis, probe));
    ts.extend(code(&format!(
        ".is_terminated_branch() \
         {{ __overlap_select_off |= {bit}u64; continue; }} \
         if let ::core::task::Poll::Ready(__overlap_select_v) = \
         ::core::future::Future::poll({f}.as_mut(), __overlap_select_cx)"
    )));
    let mut ready = TokenStream::new();
    if !is_irrefutable(&branch.pat) {
        // The pattern is checked on the output itself, as tokio's matches it, but with its
        // bindings made `_` so that the check moves nothing: a branch whose output does
        // not match is disabled and the output dropped where it is.
        let mut arms = stream(&without_bindings(&branch.pat, false));
        arms.extend(code(&format!(
            "=> {{}} #[allow(unreachable_patterns)] _ => {{ __overlap_select_off |= {bit}u64; continue; }}"
        )));
        ready.extend(code("match __overlap_select_v"));
        ready.extend(group(Delimiter::Brace, arms));
    }
    ready.extend(code(&format!(
        "return ::core::task::Poll::Ready(__OverlapSelectOut::_{i}(__overlap_select_v));"
    )));
    ts.extend(group(Delimiter::Brace, ready));
    ts.extend(code("__overlap_select_pending = true;"));
    ts
}

/// The final `match`'s arms: each branch's handler, then `else` and `default`.
fn arms(select: &Select) -> TokenStream {
    let mut ts = TokenStream::new();
    for (i, branch) in select.branches.iter().enumerate() {
        ts.extend(code(&format!("__OverlapSelectOut::_{i}")));
        ts.extend(group(Delimiter::Parenthesis, stream(&branch.pat)));
        ts.extend(code("=>"));
        ts.extend(handler(&branch.handler));
        ts.extend(code(","));
    }
    ts.extend(code("__OverlapSelectOut::Disabled =>"));
    match &select.on_disabled {
        Some(h) => ts.extend(handler(h)),
        None => ts.extend(code(
            "::core::panic!(\"select!: all branches are disabled and there is no `else` branch\")",
        )),
    }
    ts.extend(code(", __OverlapSelectOut::Idle =>"));
    match &select.on_idle {
        Some(h) => ts.extend(handler(h)),
        None => ts.extend(code("::core::unreachable!()")),
    }
    ts.extend(code(","));
    for i in 0..select.branches.len() {
        // Reached only by an output that passed the check and fails the pattern: one
        // with a lowercase constant, which the check took for a binding.
        ts.extend(code(&format!(
            "#[allow(unreachable_patterns)] __OverlapSelectOut::_{i}(_) => ::core::panic!(\
             \"select!: branch {i}'s output passed its check and failed its pattern: \
             a lowercase constant in it is taken for a binding; name it in upper case\"),"
        )));
    }
    ts.extend(code(
        "#[allow(unreachable_patterns)] _ => ::core::unreachable!(),",
    ));
    ts
}

/// A handler as a block.
fn handler(tokens: &[TokenTree]) -> TokenStream {
    match tokens {
        [TokenTree::Group(g)] if g.delimiter() == Delimiter::Brace => stream(tokens),
        _ => group(Delimiter::Brace, stream(tokens)),
    }
}

/// Whether the future is given by name (`fut`, `self::fut`): borrowed then, as
/// futures-util's `select!` does, so that a loop can poll it again.
fn is_path(tokens: &[TokenTree]) -> bool {
    tokens.iter().any(|t| matches!(t, TokenTree::Ident(_)))
        && tokens.iter().all(|t| match t {
            TokenTree::Ident(i) => !matches!(i.to_string().as_str(), "async" | "move"),
            TokenTree::Punct(p) => p.as_char() == ':',
            _ => false,
        })
}

/// `_` or a plain binding: no check needed before taking the branch.
fn is_irrefutable(pat: &[TokenTree]) -> bool {
    match pat {
        [TokenTree::Ident(i)] => {
            let name = i.to_string();
            // `None` or a constant is refutable, and so are the literals `true` and
            // `false`; a binding starts lowercase or with `_`.
            !matches!(name.as_str(), "true" | "false")
                && name.starts_with(|c: char| c == '_' || c.is_lowercase())
        }
        [m, TokenTree::Ident(_)] => is_ident(m, "mut"),
        _ => false,
    }
}

/// The pattern with its bindings made `_` (`x @ sub` made `sub`, a field's shorthand `x`
/// made `x: _`) and `ref`/`mut` dropped (`&mut` patterns kept), recursing into groups:
/// what the output must match, with nothing bound. A lowercase name not followed by `::`,
/// `(`, `{` or `!` is a binding (a lowercase constant would be taken for one, and the
/// branch would then panic on an output it does not match). `in_braces`: inside a struct
/// pattern's fields.
fn without_bindings(pat: &[TokenTree], in_braces: bool) -> Vec<TokenTree> {
    let mut out: Vec<TokenTree> = Vec::with_capacity(pat.len());
    let mut i = 0;
    while i < pat.len() {
        let t = &pat[i];
        let next = pat.get(i + 1);
        match t {
            TokenTree::Ident(id) => {
                let name = id.to_string();
                let after_path = out.last().is_some_and(|prev| is_punct(prev, ':'))
                    && out.len() >= 2
                    && is_punct(&out[out.len() - 2], ':');
                let before_path = match next {
                    Some(TokenTree::Punct(p)) => {
                        (p.as_char() == ':' && pat.get(i + 2).is_some_and(|n| is_punct(n, ':')))
                            || p.as_char() == '!'
                    }
                    Some(TokenTree::Group(g)) => {
                        matches!(g.delimiter(), Delimiter::Parenthesis | Delimiter::Brace)
                    }
                    _ => false,
                };
                let a_field_name = in_braces
                    && next.is_some_and(|n| matches!(n, TokenTree::Punct(p) if p.as_char() == ':'))
                    && !before_path;
                let binding = !after_path
                    && !before_path
                    && !a_field_name
                    && !matches!(name.as_str(), "true" | "false" | "_" | "box" | "const")
                    && name
                        .chars()
                        .next()
                        .is_some_and(|c| c == '_' || c.is_lowercase());
                if name == "ref" || (name == "mut" && !out.last().is_some_and(|p| is_punct(p, '&')))
                {
                    // dropped
                } else if binding && next.is_some_and(|n| is_punct(n, '@')) {
                    i += 1; // `x @ sub`: `sub`
                } else if binding && in_braces && out.last().is_none_or(|prev| is_punct(prev, ','))
                {
                    // A field's shorthand: `x` is `x: _`.
                    out.push(t.clone());
                    out.extend(code(": _"));
                } else if binding {
                    out.extend(respan(code("_"), id.span()));
                } else {
                    out.push(t.clone());
                }
            }
            TokenTree::Group(g) => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                let braces = g.delimiter() == Delimiter::Brace;
                let mut regrouped =
                    Group::new(g.delimiter(), stream(&without_bindings(&inner, braces)));
                regrouped.set_span(g.span());
                out.push(TokenTree::Group(regrouped));
            }
            _ => out.push(t.clone()),
        }
        i += 1;
    }
    out
}
