//! `#[overlap::main]` and `#[overlap::test]`: an `async fn` run on a fresh runtime; and
//! `select_impl!`, the expansion of the facade's `select!` (see `select/mod.rs`).
//!
//! Both rewrite `async fn name(args) -> R { body }` into `fn name(args) -> R` whose body is
//! `overlap::block_on(async move { body })`, keeping the body's spans so errors point at
//! the user's code. Written on the bare `proc_macro` API: no parser dependency.
//!
//! Use them through the `overlap` facade, which re-exports them.

mod args;
mod select;

use args::{parse_args, Settings};
use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

/// Runs an `async fn main` on a runtime built for the current thread.
///
/// ```ignore
/// #[overlap::main]
/// async fn main() -> std::io::Result<()> {
///     let listener = overlap::net::TcpListener::bind("127.0.0.1:0").await?;
///     println!("listening on {}", listener.local_addr()?);
///     Ok(())
/// }
/// ```
///
/// The same as wrapping the body in `overlap::block_on`: the runtime is dropped (with any
/// task still pending) when the body returns. `main` takes no arguments; any other function
/// may (`self` too), moved into the body's `async move` block as tokio's are. The attribute
/// takes `start_paused = true`, which starts the runtime with its clock paused (see
/// `overlap::time::pause`), and two of tokio's settings, for code moving over: `flavor =
/// "current_thread"`, which is what overlap always is (`"multi_thread"` is refused), and
/// `crate = "path"`, the path the `overlap` crate is reached by where it is not `::overlap`
/// (a dependency renamed in `Cargo.toml`, `my_rt = { package = "overlap", .. }`, takes
/// `#[my_rt::main(crate = "my_rt")]`; a re-export, `crate = "crate::rt"`). For other
/// settings, build a `Runtime` with `Runtime::builder()`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, "main", false)
}

/// Runs an `async fn` test on a fresh runtime: `#[test]` plus [`main`]'s rewrite.
///
/// The attribute adds the `#[test]`, so a `#[test]` of the function's own after it is
/// refused (it would register the test twice and run its body twice, as tokio's refuses it).
/// It takes the same settings as [`main`]: `start_paused`, `flavor` and `crate`.
///
/// As with tokio's, a panic in a spawned task fails the test only where the test awaits the
/// task's `JoinHandle`, which gives it back as a `JoinError`; a detached task's panic is
/// reported by the panic hook and the test goes on.
///
/// ```ignore
/// #[overlap::test]
/// async fn answers() {
///     assert_eq!(overlap::spawn(async { 42 }).await.unwrap(), 42);
/// }
///
/// // The clock starts paused: the timeout fires at once, in no real time.
/// #[overlap::test(start_paused = true)]
/// async fn gives_up_after_a_minute() {
///     let never = std::future::pending::<()>();
///     let res = overlap::time::timeout(std::time::Duration::from_secs(60), never).await;
///     assert!(res.is_err());
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, "test", true)
}

/// The expansion of the facade's `select!` and `select_biased!` (documented there), which
/// call it as `select_impl!(($crate) biased tokens..)`.
#[doc(hidden)]
#[proc_macro]
pub fn select_impl(input: TokenStream) -> TokenStream {
    select::select(input)
}

fn expand(args: TokenStream, item: TokenStream, name: &str, add_test: bool) -> TokenStream {
    match rewrite(args, item.clone(), name, add_test) {
        Ok(out) => out,
        Err(mut error) => {
            // With the error, a stand-in for the function, so that the error is the only
            // one: without a `main`, rustc would add "`main` function not found".
            if !add_test {
                error.extend(stand_in(item));
            }
            error
        }
    }
}

/// The rewrite, or the error to report.
fn rewrite(
    args: TokenStream,
    item: TokenStream,
    name: &str,
    add_test: bool,
) -> Result<TokenStream, TokenStream> {
    let settings = parse_args(args, name)?;
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    let body = match tokens.pop().map(unwrap_invisible) {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g,
        other => {
            let span = other.map_or_else(Span::call_site, |t| t.span());
            return Err(error(
                span,
                &format!("#[overlap::{name}] goes on an `async fn`"),
            ));
        }
    };
    let Some(fn_at) = tokens.iter().position(|t| is_ident(t, "fn")) else {
        return Err(error(
            body.span(),
            &format!("#[overlap::{name}] goes on an `async fn`"),
        ));
    };
    // `async` sits right before `fn`, or before `unsafe`/`extern "C"` that precede it.
    let Some(async_at) = tokens[..fn_at].iter().rposition(|t| is_ident(t, "async")) else {
        return Err(error(
            tokens[fn_at].span(),
            &format!("#[overlap::{name}] needs an `async fn` (add `async` before `fn`)"),
        ));
    };
    // A test or `main` takes no arguments; any other function may, as with tokio's: the
    // body's `async move` block takes them over.
    let params = params_at(&tokens, fn_at).map(|i| &tokens[i]);
    let is_main = tokens.get(fn_at + 1).is_some_and(|t| is_ident(t, "main"));
    if let Some(p) = params.filter(|p| !matches!(p, TokenTree::Group(g) if g.stream().is_empty())) {
        if add_test {
            return Err(error(
                p.span(),
                "#[overlap::test] functions take no arguments",
            ));
        }
        if is_main {
            return Err(error(
                p.span(),
                "`main` takes no arguments (read the command line with `std::env::args()`)",
            ));
        }
    }
    if add_test {
        if let Some(attr) = test_attribute(&tokens[..fn_at]) {
            return Err(error(
                attr.span(),
                "#[overlap::test] adds `#[test]` itself: a second one would run the test \
                 twice; remove this `#[test]`",
            ));
        }
    }
    if let Some(attr) = runtime_attribute(&tokens[..fn_at]) {
        return Err(error(
            attr.span(),
            &format!(
                "#[overlap::{name}] turns the `async fn` into a plain `fn`, so a second \
                 async entry attribute on it (this one) would get a plain `fn`: keep one of \
                 the two"
            ),
        ));
    }
    tokens.remove(async_at);

    let mut out = TokenStream::new();
    if add_test {
        out.extend(attribute(&["core", "prelude", "v1", "test"]));
    }
    out.extend(tokens);
    out.extend([TokenTree::Group(Group::new(
        Delimiter::Brace,
        block_on_call(body, &settings),
    ))]);
    Ok(out)
}

/// Where the parameter list of the `fn` at `fn_at` is: the first parenthesis group after it
/// outside the generics (`fn f<F: Fn(u8)>(f: F)` has `(u8)` inside them).
fn params_at(tokens: &[TokenTree], fn_at: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(fn_at) {
        match t {
            TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
            // Not the `>` of an arrow (`Fn(u8) -> u8` in a bound).
            TokenTree::Punct(p) if p.as_char() == '>' && !is_arrow_end(tokens, i) => {
                depth = depth.saturating_sub(1)
            }
            TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis && depth == 0 => {
                return Some(i)
            }
            _ => {}
        }
    }
    None
}

/// The first `#[test]` among the attributes `tokens` (what precedes `fn`) hold, written
/// `test` or by its prelude path (`::core::prelude::v1::test`, `std::prelude::rust_2021::test`):
/// the group of its brackets.
fn test_attribute(tokens: &[TokenTree]) -> Option<&TokenTree> {
    tokens.windows(2).find_map(|pair| match pair {
        [TokenTree::Punct(hash), attr @ TokenTree::Group(g)]
            if hash.as_char() == '#' && g.delimiter() == Delimiter::Bracket =>
        {
            let path: Vec<String> = g
                .stream()
                .into_iter()
                .filter(|t| !matches!(t, TokenTree::Punct(p) if p.as_char() == ':'))
                .map(|t| match t {
                    TokenTree::Ident(i) => i.to_string(),
                    // Anything else (arguments, `=`) is no plain path: not `#[test]`.
                    _ => String::new(),
                })
                .collect();
            let is_test = match path.as_slice() {
                [test] => test == "test",
                [root, prelude, _, test] => {
                    (root == "core" || root == "std") && prelude == "prelude" && test == "test"
                }
                _ => false,
            };
            is_test.then_some(attr)
        }
        _ => None,
    })
}

/// The brace group inside the invisible group that a `macro_rules!` macro wraps a
/// `$body:block` in, or `t` as it is.
fn unwrap_invisible(t: TokenTree) -> TokenTree {
    if let TokenTree::Group(g) = &t {
        if g.delimiter() == Delimiter::None {
            let mut inner = g.stream().into_iter();
            if let (Some(block @ TokenTree::Group(_)), None) = (inner.next(), inner.next()) {
                return block;
            }
        }
    }
    t
}

/// The first attribute among `tokens` that looks like an async runtime's entry point, as ours
/// (or tokio's) are: a path of two names or more ending in `main` or `test` (not the prelude's
/// `#[test]`), arguments allowed: the group of its brackets.
fn runtime_attribute(tokens: &[TokenTree]) -> Option<&TokenTree> {
    tokens.windows(2).find_map(|pair| match pair {
        [TokenTree::Punct(hash), attr @ TokenTree::Group(g)]
            if hash.as_char() == '#' && g.delimiter() == Delimiter::Bracket =>
        {
            let mut names = Vec::new();
            let mut inner = g.stream().into_iter().peekable();
            while let Some(t) = inner.next_if(|t| !matches!(t, TokenTree::Group(_))) {
                match t {
                    TokenTree::Ident(i) => names.push(i.to_string()),
                    TokenTree::Punct(p) if p.as_char() == ':' => {}
                    // `=` or another sign: not a plain path.
                    _ => return None,
                }
            }
            // At most the arguments' group after the path.
            inner.next();
            let is_entry = inner.next().is_none()
                && names.len() >= 2
                && !matches!(names[0].as_str(), "core" | "std")
                && matches!(names[names.len() - 1].as_str(), "main" | "test");
            is_entry.then_some(attr)
        }
        _ => None,
    })
}

fn is_arrow_end(tokens: &[TokenTree], i: usize) -> bool {
    i > 0
        && matches!(&tokens[i - 1], TokenTree::Punct(p)
            if p.as_char() == '-' && p.spacing() == Spacing::Joint)
}

/// `fn name() RETURN { loop {} }` for a function the attribute could not rewrite: it stands
/// in for the user's, so that the attribute's error is the only one reported. Nothing if
/// there is no `fn` to stand in for.
fn stand_in(item: TokenStream) -> TokenStream {
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    if matches!(tokens.last().cloned().map(unwrap_invisible),
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace)
    {
        tokens.pop();
    }
    let Some(fn_at) = tokens.iter().position(|t| is_ident(t, "fn")) else {
        return TokenStream::new();
    };
    let Some(params) = params_at(&tokens, fn_at) else {
        return TokenStream::new();
    };
    let span = Span::call_site();
    // Without `async`, and without any runtime attribute after ours, which would only
    // complain again of the stand-in.
    let mut attrs: Vec<TokenTree> = tokens[..fn_at]
        .iter()
        .filter(|t| !is_ident(t, "async"))
        .cloned()
        .collect();
    while let Some(at) = attrs
        .windows(2)
        .position(|pair| runtime_attribute(pair).is_some())
    {
        attrs.drain(at..at + 2);
    }
    let mut out: TokenStream = attrs.into_iter().collect();
    out.extend(tokens[fn_at..params].iter().cloned());
    out.extend([TokenTree::Group(Group::new(
        Delimiter::Parenthesis,
        TokenStream::new(),
    ))]);
    out.extend(tokens[params + 1..].iter().cloned());
    let endless: TokenStream = [
        TokenTree::Ident(Ident::new("loop", span)),
        TokenTree::Group(Group::new(Delimiter::Brace, TokenStream::new())),
    ]
    .into_iter()
    .collect();
    out.extend([TokenTree::Group(Group::new(Delimiter::Brace, endless))]);
    out
}

/// `::overlap::block_on(async move BODY)` (or `block_on_start_paused`, and `(PATH::block_on)`
/// for a `crate` path), spanned at the body.
fn block_on_call(body: Group, settings: &Settings) -> TokenStream {
    let span = body.span();
    let run = if settings.start_paused {
        "block_on_start_paused"
    } else {
        "block_on"
    };
    let mut call = match &settings.krate {
        Some(krate) => {
            // The whole path at the `crate` string, so that a path lacking the function is
            // reported there, in parentheses spanned at the body, so that the call (and a
            // type error in its result) is still spanned at the body alone.
            let at = krate.clone().into_iter().last().map_or(span, |t| t.span());
            let mut callee = krate.clone();
            callee.extend(path(&[run], at));
            let mut callee = Group::new(Delimiter::Parenthesis, callee);
            callee.set_span(span);
            TokenStream::from(TokenTree::Group(callee))
        }
        None => path(&["overlap", run], span),
    };
    let inner: TokenStream = [
        TokenTree::Ident(Ident::new("async", span)),
        TokenTree::Ident(Ident::new("move", span)),
        TokenTree::Group(body),
    ]
    .into_iter()
    .collect();
    let mut args = Group::new(Delimiter::Parenthesis, inner);
    args.set_span(span);
    call.extend([TokenTree::Group(args)]);
    call
}

/// `::a::b::c`
fn path(segments: &[&str], span: Span) -> TokenStream {
    let mut ts = TokenStream::new();
    for seg in segments {
        ts.extend(colons(span));
        ts.extend([TokenTree::Ident(Ident::new(seg, span))]);
    }
    ts
}

/// `::`
fn colons(span: Span) -> [TokenTree; 2] {
    let mut colon = Punct::new(':', Spacing::Joint);
    colon.set_span(span);
    let mut colon2 = Punct::new(':', Spacing::Alone);
    colon2.set_span(span);
    [TokenTree::Punct(colon), TokenTree::Punct(colon2)]
}

/// `#[::a::b]`
fn attribute(segments: &[&str]) -> TokenStream {
    let span = Span::call_site();
    [
        TokenTree::Punct(Punct::new('#', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Bracket, path(segments, span))),
    ]
    .into_iter()
    .collect()
}

fn is_ident(t: &TokenTree, name: &str) -> bool {
    matches!(t, TokenTree::Ident(i) if i.to_string() == name)
}

/// `::core::compile_error!("msg");` at `span`.
fn error(span: Span, msg: &str) -> TokenStream {
    let mut lit = proc_macro::Literal::string(msg);
    lit.set_span(span);
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    let mut semi = Punct::new(';', Spacing::Alone);
    semi.set_span(span);
    // The group too: a group keeps the call site's span otherwise, and rustc then points
    // at the whole attribute instead of the offending token.
    let mut args = Group::new(
        Delimiter::Parenthesis,
        TokenStream::from(TokenTree::Literal(lit)),
    );
    args.set_span(span);
    let mut ts = path(&["core", "compile_error"], span);
    ts.extend([
        TokenTree::Punct(bang),
        TokenTree::Group(args),
        TokenTree::Punct(semi),
    ]);
    ts
}
