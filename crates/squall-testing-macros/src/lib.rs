//! The `#[gen_test]` attribute of `squall-testing` (use it from there:
//! `squall_testing::gen_test`). Tornado's `tornado.testing.gen_test`.
//!
//! It turns an `async fn` into a `#[test]` that runs the body on a fresh `IoLoop` with
//! a timeout, through `squall_testing::run_test`. Written on `proc_macro` alone (no
//! `syn`): the grammar it accepts is small, and the attribute costs no build time.
//!
//! ```ignore
//! #[squall_testing::gen_test]
//! async fn test_sleep() {
//!     squall_ioloop::sleep(std::time::Duration::from_millis(1)).await;
//! }
//!
//! #[squall_testing::gen_test(timeout = 30, backends)]
//! async fn test_on_every_poller() -> Result<(), Box<dyn std::error::Error>> {
//!     Ok(())
//! }
//! ```

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// Run an `async fn` test on a fresh `IoLoop`, failing it with a clear message if it
/// runs longer than its timeout. Tornado's `gen_test`.
///
/// Arguments, all optional: `timeout = <seconds>` (an integer or a float; default
/// `ASYNC_TEST_TIMEOUT` from the environment, else 10 s), and `backends` to run the
/// body once on every poller backend of the platform, each on its own loop. The function
/// takes no parameters; it may return `()` or a `Result`.
#[proc_macro_attribute]
pub fn gen_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr, item) {
        Ok(ts) => ts,
        Err((span, msg)) => compile_error(span, &msg),
    }
}

type Failure = (Span, String);

fn expand(attr: TokenStream, item: TokenStream) -> Result<TokenStream, Failure> {
    let (timeout, backends) = parse_args(attr)?;
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    // Find `async fn name`.
    let async_at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "async"))
        .ok_or_else(|| {
            (
                Span::call_site(),
                "#[gen_test] goes on an `async fn`".to_owned(),
            )
        })?;
    match tokens.get(async_at + 1) {
        Some(TokenTree::Ident(i)) if i.to_string() == "fn" => {}
        _ => {
            return Err((
                tokens[async_at].span(),
                "expected `fn` after `async`".to_owned(),
            ))
        }
    }
    let name = match tokens.get(async_at + 2) {
        Some(TokenTree::Ident(i)) => i.clone(),
        _ => {
            return Err((
                tokens[async_at].span(),
                "expected the function's name".to_owned(),
            ))
        }
    };
    match tokens.get(async_at + 3) {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => {
            if !g.stream().is_empty() {
                return Err((
                    g.span(),
                    "a #[gen_test] function takes no parameters".to_owned(),
                ));
            }
        }
        Some(TokenTree::Punct(p)) if p.as_char() == '<' => {
            return Err((
                p.span(),
                "a #[gen_test] function cannot be generic".to_owned(),
            ))
        }
        _ => return Err((name.span(), "expected `()` after the name".to_owned())),
    }
    let Some(TokenTree::Group(body)) = tokens.last() else {
        return Err((name.span(), "expected the function's body".to_owned()));
    };
    if body.delimiter() != Delimiter::Brace {
        return Err((body.span(), "expected the function's body".to_owned()));
    }
    // Everything before `async` (attributes, `pub`), and the return type between `()`
    // and the body, are kept as they are.
    let before: TokenStream = tokens[..async_at].iter().cloned().collect();
    let ret: TokenStream = tokens[async_at + 4..tokens.len() - 1]
        .iter()
        .cloned()
        .collect();
    let timeout_expr = match timeout {
        Some(lit) => format!(
            "::core::option::Option::Some(::std::time::Duration::from_secs_f64({lit} as f64))"
        ),
        None => "::core::option::Option::None".to_owned(),
    };
    let runner = if backends {
        "run_test_on_every_backend"
    } else {
        "run_test"
    };
    // Rebuilt from tokens, not text, so the body keeps its spans (errors point at the
    // test's own lines).
    let parse = |src: &str| -> Result<TokenStream, Failure> {
        src.parse()
            .map_err(|e| (name.span(), format!("#[gen_test] could not expand: {e:?}")))
    };
    let mut args = parse(&format!(
        "::core::concat!(::core::module_path!(), \"::{name}\"), {timeout_expr}, || async move"
    ))?;
    args.extend([TokenTree::Group(body.clone())]);
    let mut call = parse(&format!("::squall_testing::{runner}"))?;
    call.extend([TokenTree::Group(Group::new(Delimiter::Parenthesis, args))]);
    // The attributes first, then `#[test]`, then the visibility (`pub #[test] fn` is
    // not Rust).
    let before: Vec<TokenTree> = before.into_iter().collect();
    let mut attrs_end = 0;
    while let (Some(TokenTree::Punct(p)), Some(TokenTree::Group(g))) =
        (before.get(attrs_end), before.get(attrs_end + 1))
    {
        if p.as_char() != '#' || g.delimiter() != Delimiter::Bracket {
            break;
        }
        attrs_end += 2;
    }
    let mut out: TokenStream = before[..attrs_end].iter().cloned().collect();
    out.extend(parse("#[test]")?);
    out.extend(before[attrs_end..].iter().cloned());
    let mut generated = parse("fn")?;
    generated.extend([
        TokenTree::Ident(name.clone()),
        TokenTree::Group(Group::new(Delimiter::Parenthesis, TokenStream::new())),
    ]);
    generated.extend(ret);
    generated.extend([TokenTree::Group(Group::new(Delimiter::Brace, call))]);
    out.extend(generated);
    Ok(out)
}

fn parse_args(attr: TokenStream) -> Result<(Option<String>, bool), Failure> {
    let mut timeout = None;
    let mut backends = false;
    let mut it = attr.into_iter().peekable();
    while let Some(t) = it.next() {
        match t {
            TokenTree::Ident(i) if i.to_string() == "timeout" => {
                match it.next() {
                    Some(TokenTree::Punct(p)) if p.as_char() == '=' => {}
                    _ => return Err((i.span(), "expected `timeout = <seconds>`".to_owned())),
                }
                match it.next() {
                    Some(TokenTree::Literal(l)) => {
                        // `1_0` and `2.5` alike; a number `Duration` can hold.
                        let s = l.to_string().replace('_', "");
                        match s.parse::<f64>() {
                            Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e15 => {}
                            _ => {
                                return Err((
                                    l.span(),
                                    "the timeout is a positive number of seconds".to_owned(),
                                ))
                            }
                        }
                        timeout = Some(s);
                    }
                    _ => return Err((i.span(), "expected a number of seconds".to_owned())),
                }
            }
            TokenTree::Ident(i) if i.to_string() == "backends" => backends = true,
            TokenTree::Punct(p) if p.as_char() == ',' => {}
            other => {
                return Err((
                    other.span(),
                    format!("unknown #[gen_test] argument `{other}` (expected `timeout = <seconds>` or `backends`)"),
                ))
            }
        }
    }
    Ok((timeout, backends))
}

fn compile_error(span: Span, msg: &str) -> TokenStream {
    let mut lit = Literal::string(msg);
    lit.set_span(span);
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    let mut args = Group::new(Delimiter::Parenthesis, TokenTree::Literal(lit).into());
    args.set_span(span);
    let mut semi = Punct::new(';', Spacing::Alone);
    semi.set_span(span);
    [
        TokenTree::Ident(Ident::new("compile_error", span)),
        TokenTree::Punct(bang),
        TokenTree::Group(args),
        TokenTree::Punct(semi),
    ]
    .into_iter()
    .collect()
}
