//! Tornado's httputil_test.py, in our own words: url_concat, multipart, format_timestamp,
//! parse_cookie, query strings, split_host_and_port.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use squall_httputil::{
    format_timestamp, parse_body_arguments, parse_cookie, parse_multipart_form_data,
    parse_qs_bytes, split_host_and_port, url_concat, Arguments, Files, MultipartConfig, ParseError,
    URLENCODED_BYTES_PER_FIELD,
};

// ---- TestUrlConcat ----

/// A base URL, the arguments to add, the expected result.
type ConcatCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn test_url_concat() {
    let cases: &[ConcatCase] = &[
        (
            "https://localhost/path",
            &[("y", "y"), ("z", "z")],
            "https://localhost/path?y=y&z=z",
        ), // no_query_params
        (
            "https://localhost/path",
            &[("y", "/y"), ("z", "z")],
            "https://localhost/path?y=%2Fy&z=z",
        ), // encode_args
        (
            "https://localhost/path?",
            &[("y", "y"), ("z", "z")],
            "https://localhost/path?y=y&z=z",
        ), // trailing_q
        (
            "https://localhost/path?x",
            &[("y", "y"), ("z", "z")],
            "https://localhost/path?x=&y=y&z=z",
        ), // q_with_no_trailing_amp
        (
            "https://localhost/path?x&",
            &[("y", "y"), ("z", "z")],
            "https://localhost/path?x=&y=y&z=z",
        ), // trailing_amp
        (
            "https://localhost/path?a=1&b=2",
            &[("y", "y"), ("z", "z")],
            "https://localhost/path?a=1&b=2&y=y&z=z",
        ), // mult_params
        (
            "https://localhost/path?r=1&t=2",
            &[],
            "https://localhost/path?r=1&t=2",
        ), // no_params
        (
            "https://localhost/path#tab",
            &[("y", "y")],
            "https://localhost/path?y=y#tab",
        ), // with_frag
        (
            "https://localhost/path",
            &[("y", "y1"), ("y", "y2")],
            "https://localhost/path?y=y1&y=y2",
        ), // multi_same_params
        (
            "https://localhost/path?r=1&r=2",
            &[("y", "y")],
            "https://localhost/path?r=1&r=2&y=y",
        ), // multi_same_query_params
        (
            "https://localhost/path",
            &[("y", "a b")],
            "https://localhost/path?y=a+b",
        ),
    ];
    for (url, args, expected) in cases {
        assert_eq!(
            url_concat(url, args.iter().copied()),
            *expected,
            "{url} + {args:?}"
        );
    }
}

// ---- QsParseTest and friends ----

#[test]
fn test_parse_qs() {
    let args = parse_qs_bytes(b"a=1&b=2&a=3", false);
    assert_eq!(args["a"], ["1", "3"]);
    assert_eq!(args["b"], ["2"]);
    // Tornado: HTTPServerTest.test_query_string_encoding (values stay bytes).
    assert_eq!(
        parse_qs_bytes(b"foo=%C3%A9", true)["foo"],
        [Bytes::from("é")]
    );
    // Blank values only when asked for.
    assert!(parse_qs_bytes(b"a=&b", false).is_empty());
    assert_eq!(parse_qs_bytes(b"a=&b", true).len(), 2);
    // Bad escapes are kept literally, never an error.
    assert_eq!(parse_qs_bytes(b"a=%&b=%g1&c=100%", true)["b"], ["%g1"]);
    // Non-UTF-8 in names is replaced, not refused.
    assert!(parse_qs_bytes(b"%ff=1", true).contains_key("\u{fffd}"));
}

// An urlencoded body of more fields than `max_fields` is refused before it is parsed:
// each field costs allocations, so tiny fields held some thirty times the body's size.
#[test]
fn urlencoded_fields_are_capped() {
    let parse = |body: &[u8], max_fields: usize| {
        let mut args = Arguments::new();
        let config = MultipartConfig {
            max_fields,
            ..MultipartConfig::default()
        };
        parse_body_arguments(
            "application/x-www-form-urlencoded",
            &Bytes::copy_from_slice(body),
            &mut args,
            &mut Files::new(),
            None,
            &config,
        )
        .map(|()| args)
    };
    assert_eq!(MultipartConfig::default().max_fields, 1000);
    let at_cap = vec!["k=v"; 1000].join("&");
    assert_eq!(parse(at_cap.as_bytes(), 1000).unwrap()["k"].len(), 1000);
    let past = vec!["k=v"; 1001].join("&");
    assert_eq!(
        parse(past.as_bytes(), 1000).unwrap_err(),
        ParseError::TooManyFields
    );
    assert_eq!(
        ParseError::TooManyFields.status(),
        http::StatusCode::BAD_REQUEST
    );
    assert!(parse(past.as_bytes(), usize::MAX).is_ok());
    // Past the cap, one field per 64 bytes: a large body whose fields are not tiny (a
    // file sent with curl's default form type) is parsed as before.
    let field = format!("k={}", "v".repeat(URLENCODED_BYTES_PER_FIELD - 2));
    let large = vec![field.as_str(); 5000].join("&");
    assert_eq!(parse(large.as_bytes(), 1000).unwrap()["k"].len(), 5000);
    let tiny_past = vec!["k=v"; 5000].join("&");
    assert_eq!(
        parse(tiny_past.as_bytes(), 1000).unwrap_err(),
        ParseError::TooManyFields
    );
}

// ---- MultipartFormDataTest ----

fn multipart(data: &str) -> Result<(Arguments, Files), ParseError> {
    let (mut args, mut files) = (Arguments::new(), Files::new());
    let data = Bytes::from(data.replace('\n', "\r\n"));
    parse_multipart_form_data(
        b"1234",
        &data,
        &mut args,
        &mut files,
        &MultipartConfig::default(),
    )?;
    Ok((args, files))
}

#[test]
fn test_file_upload() {
    let (_, files) = multipart("--1234\nContent-Disposition: form-data; name=\"files\"; filename=\"ab.txt\"\n\nFoo\n--1234--").unwrap();
    let f = &files["files"][0];
    assert_eq!(f.filename, "ab.txt");
    assert_eq!(f.body, "Foo");
    assert_eq!(f.content_type, "application/unknown");
}

// RFC 2046 §5.1.1: a preamble before the first delimiter is ignored, and a delimiter
// line may carry spaces or tabs (transport padding) before its CRLF.
#[test]
fn preamble_and_transport_padding() {
    let (args, files) = multipart(
        "This is the preamble.\n--1234 \t\nContent-Disposition: form-data; name=\"a\"\n\n1\n--1234  \nContent-Disposition: form-data; name=\"files\"; filename=\"ab.txt\"\n\nFoo\n--1234--\nepilogue",
    )
    .unwrap();
    assert_eq!(args["a"], [b"1".to_vec()]);
    assert_eq!(files["files"][0].body, "Foo");
    // `--1234` inside a line is data, not a delimiter.
    let (args, _) =
        multipart("--1234\nContent-Disposition: form-data; name=\"a\"\n\nx --1234 y\n--1234--")
            .unwrap();
    assert_eq!(args["a"], [b"x --1234 y".to_vec()]);
}

// HTTPConnectionTest.test_multipart_form: a body whose first field comes before the
// first delimiter, with its own header block, has that field read as a part (Tornado
// splits the body on the delimiters and reads every piece); text before the first
// delimiter that is not a form-data part is still RFC 2046's preamble, and ignored.
#[test]
fn a_part_before_the_first_delimiter_is_read() {
    let (args, files) = multipart(
        "Content-Disposition: form-data; name=argument\n\n\u{e1}\n--1234\nContent-Disposition: form-data; name=\"files\"; filename=\"\u{f3}\"\n\n\u{fa}\n--1234--\n",
    )
    .unwrap();
    assert_eq!(args["argument"], ["\u{e1}".as_bytes().to_vec()]);
    assert_eq!(files["files"][0].filename, "\u{f3}");
    assert_eq!(files["files"][0].body, "\u{fa}".as_bytes());
    // A preamble with an empty line that is no form-data part stays ignored.
    let (args, _) = multipart(
        "Preamble\n\nmore\n--1234\nContent-Disposition: form-data; name=\"a\"\n\n1\n--1234--",
    )
    .unwrap();
    assert_eq!(args.len(), 1);
    assert_eq!(args["a"], [b"1".to_vec()]);
    // The part cap counts a part read there, and not a preamble that is none.
    let one = MultipartConfig {
        max_parts: 1,
        ..MultipartConfig::default()
    };
    let (mut args, mut files) = (Arguments::new(), Files::new());
    let body = Bytes::from_static(
        b"Content-Disposition: form-data; name=a\r\n\r\n1\r\n--1234\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n--1234--",
    );
    let r = parse_multipart_form_data(b"1234", &body, &mut args, &mut files, &one);
    assert_eq!(r, Err(ParseError::TooManyParts));
    let body = Bytes::from_static(
        b"Preamble\r\n--1234\r\nContent-Disposition: form-data; name=c\r\n\r\n3\r\n--1234--",
    );
    let (mut args, mut files) = (Arguments::new(), Files::new());
    let r = parse_multipart_form_data(b"1234", &body, &mut args, &mut files, &one);
    assert_eq!(r, Ok(()));
    assert_eq!(args["c"], [b"3".to_vec()]);
}

#[test]
fn test_unquoted_names() {
    let (_, files) = multipart(
        "--1234\nContent-Disposition: form-data; name=files; filename=ab.txt\n\nFoo\n--1234--",
    )
    .unwrap();
    assert_eq!(files["files"][0].filename, "ab.txt");
    assert_eq!(files["files"][0].body, "Foo");
}

#[test]
fn test_special_filenames() {
    for filename in [
        "a;b.txt",
        "a\"b.txt",
        "a\";b.txt",
        "a;\"b.txt",
        "a\";\";.txt",
        "a\\\"b.txt",
        "a\\b.txt",
    ] {
        let escaped = filename.replace('\\', "\\\\").replace('"', "\\\"");
        let data = format!("--1234\nContent-Disposition: form-data; name=\"files\"; filename=\"{escaped}\"\n\nFoo\n--1234--");
        let (_, files) = multipart(&data).unwrap();
        assert_eq!(files["files"][0].filename, filename);
        assert_eq!(files["files"][0].body, "Foo");
    }
}

#[test]
fn test_non_ascii_filename() {
    let (_, files) = multipart(
        "--1234\nContent-Disposition: form-data; name=\"files\"; filename=\"ab.txt\"; filename*=UTF-8''%C3%A1b.txt\n\nFoo\n--1234--",
    )
    .unwrap();
    assert_eq!(files["files"][0].filename, "áb.txt");
}

#[test]
fn test_boundary_starts_and_ends_with_quotes() {
    let data = Bytes::from("--1234\r\nContent-Disposition: form-data; name=\"files\"; filename=\"ab.txt\"\r\n\r\nFoo\r\n--1234--");
    let (mut args, mut files) = (Arguments::new(), Files::new());
    parse_multipart_form_data(
        b"\"1234\"",
        &data,
        &mut args,
        &mut files,
        &MultipartConfig::default(),
    )
    .unwrap();
    assert_eq!(files["files"][0].filename, "ab.txt");
}

#[test]
fn test_missing_headers() {
    assert_eq!(
        multipart("--1234\n\nFoo\n--1234--").unwrap_err(),
        ParseError::InvalidMultipart
    );
}

#[test]
fn test_invalid_content_disposition() {
    let r = multipart("--1234\nContent-Disposition: invalid; name=\"files\"; filename=\"ab.txt\"\n\nFoo\n--1234--");
    assert_eq!(r.unwrap_err(), ParseError::InvalidMultipart);
}

#[test]
fn test_line_does_not_end_with_correct_line_break() {
    let r = multipart("--1234\nContent-Disposition: form-data; name=\"files\"; filename=\"ab.txt\"\n\nFoo--1234--");
    assert_eq!(r.unwrap_err(), ParseError::InvalidMultipart);
}

#[test]
fn test_content_disposition_header_without_name_parameter() {
    let r =
        multipart("--1234\nContent-Disposition: form-data; filename=\"ab.txt\"\n\nFoo\n--1234--");
    assert_eq!(r.unwrap_err(), ParseError::InvalidMultipart);
}

#[test]
fn bare_cr_ending_a_part_header_block() {
    // The header block is `...\r\n\r`: its last line is a bare CR (Tornado: no colon).
    let body = Bytes::from_static(
        b"--1234\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\r\n\r\nv\r\n--1234--",
    );
    let r = parse_multipart_form_data(
        b"1234",
        &body,
        &mut Arguments::new(),
        &mut Files::new(),
        &MultipartConfig::default(),
    );
    assert_eq!(r, Err(ParseError::InvalidMultipart));
}

#[test]
fn test_data_after_final_boundary() {
    let (_, files) = multipart("--1234\nContent-Disposition: form-data; name=\"files\"; filename=\"ab.txt\"\n\nFoo\n--1234--\n").unwrap();
    assert_eq!(files["files"][0].body, "Foo");
}

#[test]
fn final_boundary_is_required() {
    let r = multipart("--1234\nContent-Disposition: form-data; name=\"a\"\n\nFoo\n--1234\n");
    assert_eq!(r.unwrap_err(), ParseError::InvalidMultipart);
}

#[test]
fn fields_and_files_together() {
    let (args, files) = multipart(
        "--1234\nContent-Disposition: form-data; name=\"a\"\n\n1\n\
         --1234\nContent-Disposition: form-data; name=\"a\"\n\n\n\
         --1234\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\nContent-Type: application/octet-stream\n\n\x00\x01\n\
         --1234--",
    )
    .unwrap();
    assert_eq!(args["a"], ["1", ""]);
    assert_eq!(files["f"][0].content_type, "application/octet-stream");
    assert_eq!(files["f"][0].body, &b"\x00\x01"[..]);
}

#[test]
fn multipart_caps_and_switch() {
    let many: String = (0..101)
        .map(|i| format!("--1234\nContent-Disposition: form-data; name=\"f{i}\"\n\nv\n"))
        .collect::<String>()
        + "--1234--";
    assert_eq!(multipart(&many).unwrap_err(), ParseError::TooManyParts);
    let big_header = format!(
        "--1234\nContent-Disposition: form-data; name=\"a\"\nX: {}\n\nv\n--1234--",
        "h".repeat(11 * 1024)
    );
    assert_eq!(
        multipart(&big_header).unwrap_err(),
        ParseError::PartHeaderTooLarge
    );
    let off = MultipartConfig {
        enabled: false,
        ..MultipartConfig::default()
    };
    let r = parse_body_arguments(
        "multipart/form-data; boundary=1234",
        &Bytes::new(),
        &mut Arguments::new(),
        &mut Files::new(),
        None,
        &off,
    );
    assert_eq!(r, Err(ParseError::MultipartDisabled));
    // The multipart parser itself honours the switch too, whoever calls it.
    let body = Bytes::from_static(
        b"--1234\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--1234--\r\n",
    );
    let (mut args, mut files) = (Arguments::new(), Files::new());
    let r = parse_multipart_form_data(b"1234", &body, &mut args, &mut files, &off);
    assert_eq!(r, Err(ParseError::MultipartDisabled));
    assert!(args.is_empty() && files.is_empty());
}

#[test]
fn body_arguments_by_content_type() {
    let cfg = MultipartConfig::default();
    let (mut args, mut files) = (Arguments::new(), Files::new());
    parse_body_arguments(
        "application/x-www-form-urlencoded; charset=utf-8",
        &Bytes::from("a=1&b=&a=2"),
        &mut args,
        &mut files,
        None,
        &cfg,
    )
    .unwrap();
    assert_eq!(args["a"], ["1", "2"]);
    assert_eq!(args["b"], [""]);
    let body =
        Bytes::from("--xx\r\nContent-Disposition: form-data; name=\"m\"\r\n\r\nv\r\n--xx--\r\n");
    parse_body_arguments(
        "Multipart/Form-Data; boundary=\"xx\"",
        &body,
        &mut args,
        &mut files,
        None,
        &cfg,
    )
    .unwrap();
    assert_eq!(args["m"], ["v"]);
    // Other types add nothing; a multipart type without boundary is an error.
    parse_body_arguments(
        "application/json",
        &Bytes::from("{}"),
        &mut args,
        &mut files,
        None,
        &cfg,
    )
    .unwrap();
    let r = parse_body_arguments(
        "multipart/form-data",
        &body,
        &mut args,
        &mut files,
        None,
        &cfg,
    );
    assert_eq!(r, Err(ParseError::InvalidMultipart));
}

// ---- FormatTimestampTest ----

#[test]
fn test_format_timestamp() {
    let t = UNIX_EPOCH + Duration::from_secs_f64(1359312200.503611);
    assert_eq!(format_timestamp(t), "Sun, 27 Jan 2013 18:43:20 GMT");
    assert_eq!(
        format_timestamp(UNIX_EPOCH + Duration::from_secs(1359312200)),
        "Sun, 27 Jan 2013 18:43:20 GMT"
    );
}

// ---- ParseCookieTest ----

#[test]
fn test_invalid_cookies() {
    let c = parse_cookie("abc=def; unnamed; xyz=123");
    assert_eq!(c.len(), 3);
    assert_eq!(c[""], "unnamed");
    let c = parse_cookie("a=b; =; c=d; ;");
    assert_eq!(c.len(), 2);
    assert_eq!(c["c"], "d");
}

#[test]
fn test_unquote() {
    let cases = [
        (r#"a="b=\"""#, "b=\""),
        (r#"a="b=\\""#, "b=\\"),
        (r#"a="b=\=""#, "b=="),
        (r#"a="b=\n""#, "b=n"),
        (r#"a="b=\042""#, "b=\""),
        (r#"a="b=\134""#, "b=\\"),
        (r#"a="b=\377""#, "b=\u{ff}"),
        (r#"a="b=\400""#, "b=400"),
        (r#"a="b=\42""#, "b=42"),
        (r#"a="b=\\042""#, "b=\\042"),
        (r#"a="b=\\134""#, "b=\\134"),
        (r#"a="b=\\\"""#, "b=\\\""),
        (r#"a="b=\\\042""#, "b=\\\""),
        (r#"a="b=\134\"""#, "b=\\\""),
        (r#"a="b=\134\042""#, "b=\\\""),
    ];
    for (header, expected) in cases {
        assert_eq!(parse_cookie(header)["a"], expected, "{header}");
    }
}

#[test]
fn test_unquote_large() {
    let n = 100_000;
    for encoded in [r"\\", r"\134"] {
        let data = format!("a=\"b={}\"", encoded.repeat(n));
        let value = &parse_cookie(&data)["a"];
        assert!(value.starts_with("b=\\"));
        assert!(value.ends_with("\\\\\\"));
        assert_eq!(value.chars().count(), n + 2);
    }
}

// ---- split_host_and_port ----

#[test]
fn test_split_host_and_port() {
    assert_eq!(split_host_and_port("localhost"), ("localhost", None));
    assert_eq!(split_host_and_port("localhost:80"), ("localhost", Some(80)));
    assert_eq!(
        split_host_and_port("1.2.3.4:65535"),
        ("1.2.3.4", Some(65535))
    );
    assert_eq!(split_host_and_port("a:65536"), ("a:65536", None));
    assert_eq!(split_host_and_port(":80"), (":80", None));
    assert_eq!(split_host_and_port("a:"), ("a:", None));
    assert_eq!(split_host_and_port("a:8x"), ("a:8x", None));
}

// ---- no panics on arbitrary input ----

mod arbitrary {
    use super::*;
    use proptest::prelude::*;
    #[cfg(feature = "gzip")]
    use squall_httputil::GzipInflater;
    use squall_httputil::{parse_header_params, url_unescape};

    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec![
                'a', '=', ';', '"', '\\', ' ', '%', '&', '+', '0', '7', 'é', ':', '\t', '-', '\r',
                '\n',
            ]),
            0..80,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn cookies_queries_and_urls(s in text(), bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_cookie(&s);
            let _ = parse_qs_bytes(&bytes, true);
            let _ = parse_qs_bytes(s.as_bytes(), false);
            let _ = url_unescape(&bytes, true);
            let _ = url_concat(&s, [(s.as_str(), s.as_str())]);
            let _ = split_host_and_port(&s);
            let _ = parse_header_params(&s);
        }

        #[test]
        fn multipart_bodies(
            parts in proptest::collection::vec(("[a-z]{0,3}", proptest::collection::vec(any::<u8>(), 0..30), any::<bool>()), 0..5),
            noise in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            header in text(),
        ) {
            let mut body = Vec::new();
            for (name, value, file) in &parts {
                body.extend_from_slice(b"--bb\r\nContent-Disposition: form-data; name=\"");
                body.extend_from_slice(name.as_bytes());
                body.extend_from_slice(if *file { &b"\"; filename=\"f\"\r\n\r\n"[..] } else { &b"\"\r\n\r\n"[..] });
                body.extend_from_slice(value);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"--bb--\r\n");
            for (at, b) in noise {
                let n = body.len();
                body[at % n] = b;
            }
            let body = Bytes::from(body);
            let cfg = MultipartConfig::default();
            let _ = parse_body_arguments(&format!("multipart/form-data; boundary=bb; {header}"), &body, &mut Arguments::new(), &mut Files::new(), None, &cfg);
            let _ = parse_body_arguments(&header, &body, &mut Arguments::new(), &mut Files::new(), None, &cfg);
            let _ = parse_multipart_form_data(header.as_bytes(), &body, &mut Arguments::new(), &mut Files::new(), &cfg);
        }

        #[cfg(feature = "gzip")]
        #[test]
        fn gzip_streams(input in proptest::collection::vec(any::<u8>(), 0..300), split in any::<usize>()) {
            let mut with_header = vec![0x1f, 0x8b, 8, 0x1e, 0, 0, 0, 0, 0, 3];
            with_header.extend_from_slice(&input);
            for data in [&input[..], &with_header[..]] {
                let mut inf = GzipInflater::new(10_000);
                let mut out = Vec::new();
                let cut = split % (data.len() + 1);
                if inf.inflate_all(&data[..cut], &mut out).is_ok() && inf.inflate_all(&data[cut..], &mut out).is_ok() {
                    let _ = inf.finish();
                }
                prop_assert!(out.len() <= 10_001 + 8192);
            }
        }
    }
}

// Tornado: HTTPHeadersTest.test_multi_line, test_optional_cr, test_malformed_continuation
// and the "no colon" case, for the public header-block parser.
#[test]
fn parse_headers_contracts() {
    use squall_httputil::parse_headers;
    let data = "Foo: bar\n baz\nAsdf: qwer\n\tzxcv\nFoo: even\n     more\n     lines\n"
        .replace('\n', "\r\n");
    let h = parse_headers(data.as_bytes()).unwrap();
    assert_eq!(h["asdf"], "qwer zxcv");
    let foo: Vec<_> = h.get_all("foo").iter().collect();
    assert_eq!(foo, ["bar baz", "even more lines"]);
    // CRLF and bare LF both end lines; empty lines are skipped; values are trimmed.
    let h = parse_headers(b"CRLF: crlf\r\nLF: lf\n\r\n  \nX:  padded \t\r\n").unwrap();
    assert_eq!(h["crlf"], "crlf");
    assert_eq!(h["lf"], "lf");
    assert_eq!(h["x"], "padded");
    assert_eq!(h.len(), 3);
    // A bare CR is not a line end, and not allowed in a value.
    assert_eq!(
        parse_headers(b"CR: cr\rMore: more\r\n"),
        Err(ParseError::InvalidHeaderValue)
    );
    // Nor at the end of the block, with no LF after it.
    assert_eq!(
        parse_headers(b"CR: cr\r"),
        Err(ParseError::InvalidHeaderValue)
    );
    assert_eq!(
        parse_headers(b"Foo: bar\r\n\r"),
        Err(ParseError::InvalidHeaderName)
    );
    assert_eq!(
        parse_headers(b" Foo: bar\r\n"),
        Err(ParseError::ObsoleteLineFolding)
    );
    assert_eq!(
        parse_headers(b"Foo bar\r\n"),
        Err(ParseError::InvalidHeaderName)
    );
    assert_eq!(
        parse_headers(b"Foo : bar\r\n"),
        Err(ParseError::WhitespaceBeforeColon)
    );
    assert_eq!(
        parse_headers(b"F@o: bar\r\n"),
        Err(ParseError::InvalidHeaderName)
    );
    assert_eq!(parse_headers(b"").unwrap().len(), 0);
    // Values may be empty, and obs-text bytes are kept.
    let h = parse_headers(b"Empty:\r\nLatin: caf\xe9\r\n").unwrap();
    assert_eq!(h["empty"], "");
    assert_eq!(h["latin"].as_bytes(), b"caf\xe9");
    // More fields than a HeaderMap can hold is an error, not a panic.
    let many: String = (0..40_000).map(|i| format!("X-{i}: b\n")).collect();
    assert!(matches!(
        parse_headers(many.as_bytes()),
        Err(ParseError::TooManyHeaders)
    ));
}
