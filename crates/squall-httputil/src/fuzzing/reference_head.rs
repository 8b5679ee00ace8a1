//! An independent reference for the request-head parser: RFC 9112's grammar written out
//! the slow, obvious way, sharing no code with squall's parser or with httparse. The
//! `head` fuzz target and the differential proptest in `tests/head.rs` hold squall to
//! it: whatever squall accepts, this accepts too, with the same method, target and
//! fields.
#![allow(dead_code, unreachable_pub)]

/// What the reference read from a head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefHead {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    /// `(1, 0)` or `(1, 1)`.
    pub version: (u8, u8),
    /// `(lower-case name, value with surrounding spaces and tabs removed)`, in order.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes the head took, leading empty lines included.
    pub used: usize,
}

/// The most empty lines skipped before a request line (squall's documented bound).
pub const MAX_EMPTY_LINES: usize = 8;

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_field_vchar(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Parse a complete head at the front of `data`, or `None` if it is not one.
pub fn parse(data: &[u8]) -> Option<RefHead> {
    // Split into lines, each ended by LF with an optional CR before it.
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut at = 0;
    let mut used = None;
    let mut seen_request_line = false;
    let mut empty_before = 0;
    while at < data.len() {
        let nl = data[at..].iter().position(|&b| b == b'\n')? + at;
        let mut line = &data[at..nl];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        at = nl + 1;
        if line.is_empty() {
            if seen_request_line {
                used = Some(at);
                break;
            }
            empty_before += 1;
            if empty_before > MAX_EMPTY_LINES {
                return None;
            }
            continue;
        }
        seen_request_line = true;
        lines.push(line);
    }
    let used = used?;
    let (request_line, field_lines) = lines.split_first()?;

    // request-line = method SP request-target SP HTTP-version
    let parts: Vec<&[u8]> = request_line.split(|&b| b == b' ').collect();
    let [method, target, version] = parts[..] else {
        return None;
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return None;
    }
    if target.is_empty()
        || !target
            .iter()
            .all(|&b| (0x21..=0x7e).contains(&b) && b != b'#')
    {
        return None;
    }
    let version = match version {
        b"HTTP/1.0" => (1, 0),
        // RFC 9110 §2.5: a later minor version is served as the highest one supported.
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'1'..=b'9'] => (1, 1),
        _ => return None,
    };

    // field-line = field-name ":" OWS field-value OWS
    let mut fields = Vec::new();
    for line in field_lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, rest) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return None;
        }
        let start = rest
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .unwrap_or(rest.len());
        let end = rest
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(start, |i| i + 1);
        let value = &rest[start..end.max(start)];
        if !value.iter().all(|&b| is_field_vchar(b)) {
            return None;
        }
        fields.push((name.to_ascii_lowercase(), value.to_vec()));
    }
    Some(RefHead {
        method: method.to_vec(),
        target: target.to_vec(),
        version,
        fields,
        used,
    })
}

/// Check squall's verdict on `data` against the reference: if squall accepted a head,
/// the reference accepts the same bytes as one, with the same method, target, version
/// and fields (as multisets: a `HeaderMap` groups values by name). Returns a
/// description of the first disagreement.
pub fn compare(
    data: &[u8],
    squall: &Result<Option<(crate::RequestHead, usize)>, crate::ParseError>,
) -> Result<(), String> {
    let Ok(Some((head, used))) = squall else {
        return Ok(());
    };
    let Some(reference) = parse(data) else {
        return Err(format!(
            "squall accepted a head the reference refuses: {head:?}"
        ));
    };
    if *used != reference.used {
        return Err(format!(
            "squall took {used} bytes, the reference {}",
            reference.used
        ));
    }
    if head.method.as_str().as_bytes() != reference.method {
        return Err(format!("method {} vs {:?}", head.method, reference.method));
    }
    let version = match head.version {
        http::Version::HTTP_10 => (1, 0),
        http::Version::HTTP_11 => (1, 1),
        v => return Err(format!("version {v:?}")),
    };
    if version != reference.version {
        return Err(format!("version {version:?} vs {:?}", reference.version));
    }
    let target = String::from_utf8_lossy(&reference.target).into_owned();
    let absolute = !target.starts_with('/') && target != "*";
    let shown = head.uri().to_string();
    let target_ok = if absolute {
        // http::Uri shows an absolute URI with an empty path with the path "/" (before
        // any query), and the schemes it knows (http, https) in lower case (schemes
        // are case-insensitive, RFC 3986 §3.1).
        let with_path = |t: &str| match t.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                let slash = if rest[end..].starts_with('/') {
                    ""
                } else {
                    "/"
                };
                format!("{scheme}://{}{slash}{}", &rest[..end], &rest[end..])
            }
            None => t.to_owned(),
        };
        let lower = match target.split_once("://") {
            Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
            None => target.clone(),
        };
        [&target, &lower]
            .iter()
            .any(|t| shown == **t || shown == with_path(t))
    } else if target == "*" {
        shown == "*"
    } else {
        // Origin-form: the target as sent, and its `Uri` the same but for the bytes the
        // `Uri` grammar refuses, escaped.
        let escaped: String = target
            .chars()
            .map(|c| match c {
                '"' | '<' | '>' | '`' => format!("%{:02X}", u32::from(c)),
                c => c.to_string(),
            })
            .collect();
        head.target() == target
            && head.uri().path_and_query().map(|p| p.as_str()) == Some(escaped.as_str())
    };
    if !target_ok {
        return Err(format!("target {shown:?} vs {target:?}"));
    }
    let mut ours: Vec<(Vec<u8>, Vec<u8>)> = head
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let mut theirs = reference.fields.clone();
    if absolute && head.uri().scheme().is_some() {
        // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host.
        let authority = head
            .uri()
            .authority()
            .map(|a| a.as_str().as_bytes().to_vec());
        theirs.retain(|(n, _)| n != b"host");
        theirs.push((b"host".to_vec(), authority.unwrap_or_default()));
    }
    ours.sort();
    theirs.sort();
    if ours != theirs {
        return Err(format!("fields {ours:?} vs {theirs:?}"));
    }
    Ok(())
}
