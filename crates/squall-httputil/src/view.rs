//! A parsed request head as a *view* into its own bytes: the request-target and every
//! header field are kept as offsets into the head, which shares the connection's read
//! buffer. Method, path, query and header lookups read the bytes where they lie; a
//! [`HeaderMap`] and a [`Uri`] are built only for a caller that asks for one.
//!
//! [`RequestHead`](crate::RequestHead) and [`HttpServerRequest`](crate::HttpServerRequest)
//! both carry a [`View`] and give its methods to their users.

use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Uri};

use crate::pool::PooledHeaders;
use crate::request::Extras;

/// A header field's name and value as offsets into the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: (u32, u32),
    pub(crate) value: (u32, u32),
}

/// The most view boxes one thread keeps for later heads.
const MAX_POOLED_VIEWS: usize = 64;
/// A box whose field list has room for more than this is dropped instead of pooled.
const MAX_POOLED_FIELD_CAPACITY: usize = 128;

thread_local! {
    // The boxes themselves are what is kept: a view holds one, and taking it out of
    // (or putting it back in) the pool moves a pointer, not its parts.
    #[expect(clippy::vec_box, reason = "the pool keeps the boxes views hold")]
    static VIEW_POOL: RefCell<Vec<Box<Parts>>> = const { RefCell::new(Vec::new()) };
}

/// Everything a [`View`] holds, in one box taken from (and given back to) a per-thread
/// pool. A head moves several times on its way to a handler (out of the parser, into
/// the delegate's `RequestStart`, into the request, into the handler's future); with
/// its parts here a `RequestHead` is 56 bytes, moved in a few registers, where a
/// `View` held by value made it 152, copied by a call to `memcpy` each time and read
/// back right after (a store-forwarding stall). The pool keeps the field list's
/// allocation with the box, so a server parses head after head allocating nothing.
#[derive(Clone, Default)]
struct Parts {
    /// The head, from the request line through the empty line.
    raw: Bytes,
    /// The request-target in `raw`.
    target: (u32, u32),
    /// Origin-form targets only: where `?` is in `raw`, or the target's end.
    query: u32,
    /// The target is origin-form (`/path?query`): path and query are read from `raw`.
    /// Any other form has its `Uri` built at parse time.
    origin: bool,
    /// The map is the truth (it was built from parts, or handed out mutably).
    map_owned: bool,
    /// An absolute-form target's authority in `raw`: it replaces Host (RFC 9112 §3.2.2).
    host: Option<(u32, u32)>,
    fields: Vec<Field>,
    lazy: OnceLock<Box<Lazy>>,
    /// A whole request's own out-of-line state; untouched for a head.
    extras: Extras,
}

/// A pooled [`Parts`] box: always `Some` until dropped, when the box goes back to the
/// thread's pool emptied (an `Option` so that drop can take it out).
struct Pooled(Option<Box<Parts>>);

impl Pooled {
    /// An empty box: a pooled one if the thread has one.
    fn take() -> Pooled {
        let pooled = VIEW_POOL.try_with(|p| p.borrow_mut().pop()).ok().flatten();
        Pooled(Some(pooled.unwrap_or_default()))
    }
}

impl std::ops::Deref for Pooled {
    type Target = Parts;
    #[inline]
    fn deref(&self) -> &Parts {
        match &self.0 {
            Some(p) => p,
            None => unreachable!("a view holds its parts until dropped"),
        }
    }
}

impl std::ops::DerefMut for Pooled {
    #[inline]
    fn deref_mut(&mut self) -> &mut Parts {
        match &mut self.0 {
            Some(p) => p,
            None => unreachable!("a view holds its parts until dropped"),
        }
    }
}

impl Clone for Pooled {
    fn clone(&self) -> Pooled {
        let mut copy = Pooled::take();
        copy.clone_from(self);
        copy
    }
}

impl Default for Pooled {
    fn default() -> Pooled {
        Pooled::take()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(mut p) = self.0.take() else {
            return;
        };
        if p.fields.capacity() > MAX_POOLED_FIELD_CAPACITY {
            return;
        }
        // Emptied here, to what `Parts::default()` holds: what the head shared (its
        // bytes, a built map) goes now.
        p.raw = Bytes::new();
        p.fields.clear();
        p.target = (0, 0);
        p.query = 0;
        p.origin = false;
        p.map_owned = false;
        p.host = None;
        if p.lazy.get().is_some() {
            p.lazy = OnceLock::new();
        }
        p.extras.reset();
        // During thread teardown the pool may be gone: the box is then dropped here.
        let _ = VIEW_POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < MAX_POOLED_VIEWS {
                pool.push(p);
            }
        });
    }
}

/// The list of a head's fields as the parser finds them, in the box its [`View`] will
/// keep (taken from the thread's pool, and given back there if the head fails).
#[derive(Default)]
pub(crate) struct Fields(Pooled);

impl Fields {
    /// An empty list, in a pooled box if the thread has one.
    pub(crate) fn take() -> Fields {
        Fields(Pooled::take())
    }

    pub(crate) fn push(&mut self, f: Field) {
        self.0.fields.push(f);
    }

    pub(crate) fn as_slice(&self) -> &[Field] {
        &self.0.fields
    }
}

/// The `Uri` of a target that is not origin-form, built by the parser, already in the
/// box a [`View`] keeps it in.
#[derive(Debug)]
pub(crate) struct ParsedUri(Box<Lazy>);

impl ParsedUri {
    pub(crate) fn new(uri: Uri) -> ParsedUri {
        ParsedUri(Box::new(Lazy {
            uri: OnceLock::from(uri),
            ..Lazy::default()
        }))
    }

    pub(crate) fn uri(&self) -> &Uri {
        self.0.uri.get().expect("built with its Uri")
    }
}

/// What is built on demand: the `Uri` and the `HeaderMap`.
#[derive(Debug, Default, Clone)]
struct Lazy {
    uri: OnceLock<Uri>,
    map: OnceLock<PooledHeaders>,
    /// A built view's target as text, when its `Uri` is not origin-form.
    text: OnceLock<String>,
}

/// The request-target and the header fields of a head, read in place.
///
/// Two forms: *parsed* (the head's bytes, with offsets; the usual case) and *built*
/// (from a `Uri` and a `HeaderMap` given by a caller, with no bytes). Once a caller
/// has asked for the map mutably, the map is what every lookup reads. Its parts live
/// in a pooled box ([`Parts`]).
#[derive(Clone, Default)]
pub(crate) struct View(Pooled);

/// The parts of a parsed head that make a [`View`].
pub(crate) struct ViewParts {
    pub(crate) target: (u32, u32),
    pub(crate) query: Option<u32>,
    /// A target that is not origin-form, its `Uri` built at parse time (boxed as it
    /// will be kept: the parts travel by value, and stay small without it).
    pub(crate) uri: Option<ParsedUri>,
    pub(crate) host: Option<(u32, u32)>,
    pub(crate) fields: Fields,
}

pub(crate) fn slice(raw: &[u8], (a, b): (u32, u32)) -> &[u8] {
    raw.get(a as usize..b as usize).unwrap_or_default()
}

/// Bytes of a request-target the parser takes (as Tornado does) and the `http` crate's
/// `Uri` does not, in the path or in the query: four of visible ASCII, and those of
/// UTF-8 past ASCII.
fn uri_escaped(b: u8) -> bool {
    matches!(b, b'"' | b'<' | b'>' | b'`') || !b.is_ascii()
}

/// Text the parser checked (a target is UTF-8, a field name ASCII) as `&str`.
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

impl View {
    /// A view of the head `raw` with the offsets the parser found.
    #[inline]
    pub(crate) fn parsed(raw: Bytes, parts: ViewParts) -> View {
        let Fields(mut p) = parts.fields;
        p.raw = raw;
        p.target = parts.target;
        p.query = parts.query.unwrap_or(parts.target.1);
        p.origin = parts.query.is_some();
        p.map_owned = false;
        p.host = parts.host;
        if let Some(ParsedUri(built)) = parts.uri {
            p.lazy = OnceLock::from(built);
        }
        View(p)
    }

    /// A view over a target and a map given whole.
    pub(crate) fn built(uri: Uri, headers: HeaderMap) -> View {
        let mut p = Pooled::take();
        p.map_owned = true;
        p.lazy = OnceLock::from(Box::new(Lazy {
            uri: OnceLock::from(uri),
            map: OnceLock::from(PooledHeaders::from(headers)),
            text: OnceLock::new(),
        }));
        View(p)
    }

    /// A request's out-of-line state (see [`Extras`]).
    #[inline]
    pub(crate) fn extras(&self) -> &Extras {
        &self.0.extras
    }

    /// [`extras`](Self::extras), for changes.
    #[inline]
    pub(crate) fn extras_mut(&mut self) -> &mut Extras {
        &mut self.0.extras
    }

    fn lazy(&self) -> &Lazy {
        self.0.lazy.get_or_init(Box::default)
    }

    /// The request-target as a `Uri`, built on first use for an origin-form target.
    pub(crate) fn uri(&self) -> &Uri {
        self.lazy().uri.get_or_init(|| {
            let target = self
                .0
                .raw
                .slice(self.0.target.0 as usize..self.0.target.1 as usize);
            // The `Uri` grammar refuses a few of the bytes the parser let through
            // (UTF-8 past ASCII, four of visible ASCII), which are sent escaped to it.
            if target.iter().any(|&b| uri_escaped(b)) {
                Uri::try_from(crate::url::percent_encode(&target, uri_escaped)).unwrap_or_default()
            } else {
                Uri::from_maybe_shared(target).unwrap_or_default()
            }
        })
    }

    /// The target as sent; for a built view, the `Uri` as text.
    pub(crate) fn target(&self) -> &str {
        if self.0.map_owned && self.0.raw.is_empty() {
            let uri = self.uri();
            return match (uri.scheme(), uri.path_and_query()) {
                (None, Some(pq)) => pq.as_str(),
                _ => self.lazy().text.get_or_init(|| uri.to_string()),
            };
        }
        text(slice(&self.0.raw, self.0.target))
    }

    /// [`target`](Self::target) as bytes, without the UTF-8 check.
    pub(crate) fn target_raw(&self) -> &[u8] {
        if self.0.map_owned && self.0.raw.is_empty() {
            return self.target().as_bytes();
        }
        slice(&self.0.raw, self.0.target)
    }

    /// [`target`](Self::target), sharing the head's bytes.
    pub(crate) fn target_bytes(&self) -> Bytes {
        if self.0.map_owned && self.0.raw.is_empty() {
            return Bytes::copy_from_slice(self.target().as_bytes());
        }
        self.0
            .raw
            .slice(self.0.target.0 as usize..self.0.target.1 as usize)
    }

    /// The target's path.
    #[inline]
    pub(crate) fn path(&self) -> &str {
        if self.0.origin {
            text(slice(&self.0.raw, (self.0.target.0, self.0.query)))
        } else {
            self.uri().path()
        }
    }

    /// The target's query without `?`, or `""`.
    pub(crate) fn query(&self) -> &str {
        if self.0.origin {
            if self.0.query < self.0.target.1 {
                text(slice(&self.0.raw, (self.0.query + 1, self.0.target.1)))
            } else {
                ""
            }
        } else {
            self.uri().query().unwrap_or("")
        }
    }

    /// The path and query as sent (`/a?b`); for other forms, the `Uri`'s path and
    /// query.
    pub(crate) fn path_and_query(&self) -> &str {
        if self.0.origin {
            text(slice(&self.0.raw, self.0.target))
        } else {
            let uri = self.uri();
            uri.path_and_query()
                .map_or_else(|| uri.path(), |p| p.as_str())
        }
    }

    /// The header map, built on first use.
    pub(crate) fn headers(&self) -> &HeaderMap {
        self.lazy()
            .map
            .get_or_init(|| PooledHeaders::from(self.build_map()))
    }

    /// The header map, for changes: from now on it is what lookups read.
    pub(crate) fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers();
        self.0.map_owned = true;
        self.0
            .lazy
            .get_mut()
            .and_then(|l| l.map.get_mut())
            .map(|m| &mut **m)
            .expect("`headers` just built the map")
    }

    fn build_map(&self) -> HeaderMap {
        let mut map = crate::pool::take_headers();
        map.reserve(self.0.fields.as_slice().len());
        for f in self.0.fields.as_slice() {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(slice(&self.0.raw, f.name)),
                HeaderValue::from_maybe_shared(
                    self.0.raw.slice(f.value.0 as usize..f.value.1 as usize),
                ),
            ) else {
                // The parser took only what these accept; nothing is dropped in practice.
                continue;
            };
            if self.0.host.is_some() && name == http::header::HOST {
                continue;
            }
            map.append(name, value);
        }
        if let Some(h) = self.0.host {
            if let Ok(v) =
                HeaderValue::from_maybe_shared(self.0.raw.slice(h.0 as usize..h.1 as usize))
            {
                map.insert(http::header::HOST, v);
            }
        }
        map
    }

    /// The first value of `name` (any case).
    pub(crate) fn first(&self, name: &str) -> Option<&[u8]> {
        if self.0.map_owned {
            return self.headers().get(name).map(HeaderValue::as_bytes);
        }
        if let Some(h) = self.0.host {
            if name.eq_ignore_ascii_case("host") {
                return Some(slice(&self.0.raw, h));
            }
        }
        let name = name.as_bytes();
        self.0.fields.as_slice().iter().find_map(|f| {
            let n = slice(&self.0.raw, f.name);
            n.eq_ignore_ascii_case(name)
                .then(|| slice(&self.0.raw, f.value))
        })
    }

    /// Every value of `name` (any case), in order.
    pub(crate) fn values<'a>(&'a self, name: &'a str) -> HeaderValues<'a> {
        if self.0.map_owned {
            return HeaderValues(Inner::Map(self.headers().get_all(name).into_iter()));
        }
        if let Some(h) = self.0.host {
            if name.eq_ignore_ascii_case("host") {
                return HeaderValues(Inner::One(Some(slice(&self.0.raw, h))));
            }
        }
        HeaderValues(Inner::Fields {
            raw: &self.0.raw,
            fields: self.0.fields.as_slice().iter(),
            name: name.as_bytes(),
        })
    }

    /// Every field as (name as sent, value), in order; after a change to the map, the
    /// map's fields (names in lower case).
    pub(crate) fn fields(&self) -> FieldIter<'_> {
        if self.0.map_owned {
            FieldIter(FieldInner::Map(self.headers().iter()))
        } else {
            FieldIter(FieldInner::Fields {
                view: self,
                fields: self.0.fields.as_slice().iter(),
            })
        }
    }

    /// How many fields the head has.
    pub(crate) fn len(&self) -> usize {
        if self.0.map_owned {
            self.headers().len()
        } else {
            self.0.fields.as_slice().len()
        }
    }
}

/// The values of one header name (any case), in order: what
/// [`RequestHead::header_values`](crate::RequestHead::header_values) returns.
pub struct HeaderValues<'a>(Inner<'a>);

enum Inner<'a> {
    Fields {
        raw: &'a [u8],
        fields: std::slice::Iter<'a, Field>,
        name: &'a [u8],
    },
    One(Option<&'a [u8]>),
    Map(http::header::ValueIter<'a, HeaderValue>),
}

impl<'a> Iterator for HeaderValues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            Inner::Fields { raw, fields, name } => fields.find_map(|f| {
                let n = slice(raw, f.name);
                n.eq_ignore_ascii_case(name).then(|| slice(raw, f.value))
            }),
            Inner::One(v) => v.take(),
            Inner::Map(it) => it.next().map(HeaderValue::as_bytes),
        }
    }
}

impl fmt::Debug for HeaderValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeaderValues")
    }
}

/// A head's fields as (name, value) in order: what
/// [`RequestHead::fields`](crate::RequestHead::fields) returns.
pub struct FieldIter<'a>(FieldInner<'a>);

enum FieldInner<'a> {
    Fields {
        view: &'a View,
        fields: std::slice::Iter<'a, Field>,
    },
    Map(http::header::Iter<'a, HeaderValue>),
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<(&'a str, &'a [u8])> {
        match &mut self.0 {
            FieldInner::Fields { view, fields } => fields.next().map(|f| {
                let name = text(slice(&view.0.raw, f.name));
                let value = match view.0.host {
                    Some(h) if name.eq_ignore_ascii_case("host") => slice(&view.0.raw, h),
                    _ => slice(&view.0.raw, f.value),
                };
                (name, value)
            }),
            FieldInner::Map(it) => it.next().map(|(n, v)| (n.as_str(), v.as_bytes())),
        }
    }
}

impl fmt::Debug for FieldIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FieldIter")
    }
}

/// The target and the fields' names, never their values: a request printed in a log
/// line or a panic message must not give away its credentials (`Authorization`,
/// `Cookie`), as Tornado's `test_repr_does_not_contain_headers` asks.
impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("target", &self.path_and_query())
            .field(
                "field_names",
                &self.fields().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}
