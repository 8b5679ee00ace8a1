//! The request-head parser on arbitrary bytes, checked against httparse: whatever
//! squall accepts, httparse accepts too, with the same method, target and fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use squall_httputil::{parse_request_head, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(Some((head, used))) = parse_request_head(data, &limits) else {
        return;
    };
    assert!(used <= data.len());
    // squall skips empty lines before a request, as Tornado does; httparse does not.
    let start = data.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let mut fields = vec![httparse::EMPTY_HEADER; limits.max_headers.max(1)];
    let mut req = httparse::Request::new(&mut fields);
    let status = req
        .parse(&data[start..used])
        .expect("httparse rejects a head squall accepted");
    assert!(status.is_complete(), "httparse wants more of a head squall took whole");
    assert_eq!(req.method, Some(head.method.as_str()));
    let n_fields = req.headers.len();
    assert_eq!(n_fields, head.headers.len(), "field count differs");
});
