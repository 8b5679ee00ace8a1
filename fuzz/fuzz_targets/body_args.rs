//! Body arguments (urlencoded and multipart/form-data), query strings and cookies on
//! arbitrary bytes: never a panic, and the caps hold (parts, fields).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use squall_httputil::{
    parse_body_arguments, parse_cookie, parse_qs_bytes, Arguments, Files, MultipartConfig,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let config = MultipartConfig {
        max_parts: 8,
        ..MultipartConfig::default()
    };
    let (mut args, mut files) = (Arguments::default(), Files::default());
    match mode % 4 {
        0 => {
            // The boundary is the input up to the first newline, the body the rest.
            let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let boundary = String::from_utf8_lossy(&rest[..cut]).into_owned();
            let body = Bytes::copy_from_slice(rest.get(cut + 1..).unwrap_or_default());
            let content_type = format!("multipart/form-data; boundary={boundary}");
            if parse_body_arguments(&content_type, &body, &mut args, &mut files, None, &config)
                .is_ok()
            {
                let parts: usize = args.values().map(Vec::len).sum::<usize>()
                    + files.values().map(Vec::len).sum::<usize>();
                assert!(parts <= config.max_parts, "{parts} parts parsed");
            }
        }
        1 => {
            let body = Bytes::copy_from_slice(rest);
            parse_body_arguments(
                "application/x-www-form-urlencoded",
                &body,
                &mut args,
                &mut files,
                None,
                &config,
            )
            .expect("urlencoded bodies are never rejected");
            assert!(files.is_empty());
        }
        2 => {
            let _ = parse_qs_bytes(rest, mode & 4 != 0);
        }
        _ => {
            let _ = parse_cookie(&String::from_utf8_lossy(rest));
        }
    }
});
