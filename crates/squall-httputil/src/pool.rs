//! A per-thread pool of cleared [`HeaderMap`]s, so that a server does not allocate two
//! fresh maps (a table of indices and a vector of entries) for every request and every
//! response.
//!
//! [`ServerConn`](crate::h1::ServerConn) parses each request head into a map taken from
//! here; a server gives each response's map back once the head is written, and builds
//! the next response in a map taken from here. The pool is bounded twice over: it holds
//! at most [`MAX_POOLED`] maps, and a map that has grown past [`MAX_POOLED_CAPACITY`]
//! entries is dropped rather than kept, so one huge request cannot pin memory for good.
//!
//! ```
//! use http::header::HOST;
//! use squall_httputil::pool;
//!
//! let mut map = pool::take_headers();
//! map.insert(HOST, "example.com".parse().unwrap());
//! let capacity = map.capacity();
//! pool::recycle_headers(map);
//!
//! let again = pool::take_headers();
//! assert!(again.is_empty(), "maps come back cleared");
//! assert_eq!(again.capacity(), capacity, "with their allocation");
//! ```

use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue};

/// The most maps one thread keeps.
pub const MAX_POOLED: usize = 64;
/// Maps with room for more entries than this are dropped instead of pooled.
pub const MAX_POOLED_CAPACITY: usize = 64;

/// A map that the pool keeps filled in: one `Content-Type` field and nothing else, the
/// headers of squall-httpserver's `Response::text` and `Response::html`. A map given
/// back holding exactly that is kept as it is, and [`take_headers_with`] hands it out
/// again without a `clear` and an `insert` (a few hundred instructions a response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Prefilled {
    /// `content-type: text/plain; charset=utf-8`.
    TextPlain,
    /// `content-type: text/html; charset=utf-8`.
    TextHtml,
}

/// How many kinds of [`Prefilled`] maps there are.
const KINDS: usize = 2;

impl Prefilled {
    /// The `Content-Type` value the map holds.
    pub const fn content_type(self) -> &'static str {
        match self {
            Prefilled::TextPlain => "text/plain; charset=utf-8",
            Prefilled::TextHtml => "text/html; charset=utf-8",
        }
    }

    fn index(self) -> usize {
        match self {
            Prefilled::TextPlain => 0,
            Prefilled::TextHtml => 1,
        }
    }

    /// The map's one field as a response head writes it with lower-case names.
    pub(crate) const fn header_line(self) -> &'static [u8] {
        match self {
            Prefilled::TextPlain => b"content-type: text/plain; charset=utf-8\r\n",
            Prefilled::TextHtml => b"content-type: text/html; charset=utf-8\r\n",
        }
    }

    /// The kind of map `headers` is: exactly one `Content-Type` of a kind, or `None`.
    #[inline]
    pub(crate) fn of(headers: &HeaderMap) -> Option<Prefilled> {
        if headers.len() != 1 {
            return None;
        }
        let (name, value) = headers.iter().next()?;
        if *name != CONTENT_TYPE || value.is_sensitive() {
            return None;
        }
        let v = value.as_bytes();
        [Prefilled::TextPlain, Prefilled::TextHtml]
            .into_iter()
            .find(|k| {
                let c = k.content_type().as_bytes();
                // A value the pool put there points at the constant itself: equal
                // without comparing the bytes.
                v.len() == c.len() && (v.as_ptr() == c.as_ptr() || v == c)
            })
    }
}

/// This thread's maps: cleared ones, and filled-in ones by kind.
struct Pools {
    cleared: Vec<HeaderMap>,
    filled: [Vec<HeaderMap>; KINDS],
}

impl Pools {
    fn len(&self) -> usize {
        self.cleared.len() + self.filled.iter().map(Vec::len).sum::<usize>()
    }
}

thread_local! {
    static POOL: RefCell<Pools> = const {
        RefCell::new(Pools { cleared: Vec::new(), filled: [Vec::new(), Vec::new()] })
    };
}

/// An empty map: one from this thread's pool (with its allocation) if there is one,
/// else `HeaderMap::new()` (which allocates nothing until used).
pub fn take_headers() -> HeaderMap {
    match POOL.try_with(|p| p.borrow_mut().cleared.pop()) {
        Ok(Some(map)) => map,
        _ => take_filled_and_clear(),
    }
}

/// No cleared map left: a filled-in one, emptied, or a new one.
#[cold]
fn take_filled_and_clear() -> HeaderMap {
    let filled = POOL
        .try_with(|p| p.borrow_mut().filled.iter_mut().find_map(Vec::pop))
        .ok()
        .flatten();
    match filled {
        Some(mut map) => {
            map.clear();
            map
        }
        None => HeaderMap::new(),
    }
}

/// A map holding the one field of `kind` (see [`Prefilled`]): a pooled one as it was
/// given back if there is one, else an empty one from [`take_headers`] with the field
/// inserted.
///
/// ```
/// use http::header::CONTENT_TYPE;
/// use squall_httputil::pool::{self, Prefilled};
///
/// let map = pool::take_headers_with(Prefilled::TextPlain);
/// assert_eq!(map[CONTENT_TYPE], "text/plain; charset=utf-8");
/// assert_eq!(map.len(), 1);
/// ```
#[inline]
pub fn take_headers_with(kind: Prefilled) -> HeaderMap {
    match POOL.try_with(|p| p.borrow_mut().filled[kind.index()].pop()) {
        Ok(Some(map)) => map,
        _ => fill(kind),
    }
}

#[cold]
fn fill(kind: Prefilled) -> HeaderMap {
    let mut map = take_headers();
    map.insert(CONTENT_TYPE, HeaderValue::from_static(kind.content_type()));
    map
}

/// Give a map back to this thread's pool: it is cleared (its values dropped) and kept
/// for the next [`take_headers`], unless the pool is full or the map is oversized (then
/// it is simply dropped). A map holding exactly the field of a [`Prefilled`] kind is
/// kept as it is, for [`take_headers_with`].
#[inline]
pub fn recycle_headers(mut headers: HeaderMap) {
    if headers.capacity() == 0 || headers.capacity() > MAX_POOLED_CAPACITY {
        return;
    }
    let kind = Prefilled::of(&headers).map(Prefilled::index);
    if kind.is_none() {
        headers.clear();
    }
    // During thread teardown the pool may be gone: the map is then dropped here.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < MAX_POOLED {
            match kind {
                Some(k) => p.filled[k].push(headers),
                None => p.cleared.push(headers),
            }
        }
    });
}

/// A [`HeaderMap`] that goes back to its thread's pool when dropped: the type of a
/// parsed request's headers ([`RequestHead::headers`](crate::RequestHead::headers),
/// [`HttpServerRequest::headers`](crate::HttpServerRequest::headers)), so that a server
/// whose handlers drop their requests reuses the same few maps for every request and
/// response instead of allocating two fresh ones.
///
/// It dereferences to the map, so `req.headers.get(HOST)` and `&req.headers` where a
/// `&HeaderMap` is expected work as before; [`into_inner`](Self::into_inner) takes the
/// map out (it is then not pooled).
///
/// ```
/// use http::header::HOST;
/// use squall_httputil::pool::{self, PooledHeaders};
///
/// let mut headers = PooledHeaders::new();
/// headers.insert(HOST, "example.com".parse().unwrap());
/// assert_eq!(headers[HOST], "example.com");
/// let before = pool::pooled();
/// drop(headers);
/// assert_eq!(pool::pooled(), before + 1, "the map is kept for the next request");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PooledHeaders(
    // Always `Some` until the map leaves (`drop`, `into_inner`): an `Option` so that
    // taking it out leaves nothing to drop, where `mem::take` would build an empty
    // `HeaderMap` and drop it (about 60 instructions a request).
    Option<HeaderMap>,
);

impl PooledHeaders {
    /// An empty map from this thread's pool (see [`take_headers`]).
    pub fn new() -> PooledHeaders {
        PooledHeaders(Some(take_headers()))
    }

    /// The map itself, which will then not go back to the pool.
    pub fn into_inner(mut self) -> HeaderMap {
        self.0.take().unwrap_or_default()
    }

    #[inline]
    fn map(&self) -> &HeaderMap {
        match &self.0 {
            Some(map) => map,
            None => unreachable!("a PooledHeaders holds its map until dropped"),
        }
    }
}

impl Default for PooledHeaders {
    fn default() -> Self {
        PooledHeaders(Some(HeaderMap::new()))
    }
}

impl Drop for PooledHeaders {
    fn drop(&mut self) {
        if let Some(map) = self.0.take() {
            recycle_headers(map);
        }
    }
}

impl Deref for PooledHeaders {
    type Target = HeaderMap;
    #[inline]
    fn deref(&self) -> &HeaderMap {
        self.map()
    }
}

impl DerefMut for PooledHeaders {
    #[inline]
    fn deref_mut(&mut self) -> &mut HeaderMap {
        match &mut self.0 {
            Some(map) => map,
            None => unreachable!("a PooledHeaders holds its map until dropped"),
        }
    }
}

impl From<HeaderMap> for PooledHeaders {
    fn from(map: HeaderMap) -> PooledHeaders {
        PooledHeaders(Some(map))
    }
}

impl From<PooledHeaders> for HeaderMap {
    fn from(headers: PooledHeaders) -> HeaderMap {
        headers.into_inner()
    }
}

impl PartialEq<HeaderMap> for PooledHeaders {
    fn eq(&self, other: &HeaderMap) -> bool {
        self.map() == other
    }
}

impl fmt::Debug for PooledHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.map().fmt(f)
    }
}

impl<'a> IntoIterator for &'a PooledHeaders {
    type Item = (&'a http::HeaderName, &'a http::HeaderValue);
    type IntoIter = http::header::Iter<'a, http::HeaderValue>;
    fn into_iter(self) -> Self::IntoIter {
        self.map().iter()
    }
}

/// How many maps this thread's pool holds, cleared and filled-in (for tests and
/// monitoring).
pub fn pooled() -> usize {
    POOL.try_with(|p| p.borrow().len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderName, HOST};
    use http::HeaderValue;

    #[test]
    fn bounded_in_count_and_size() {
        // Empty maps (no allocation) are not worth keeping.
        let before = pooled();
        recycle_headers(HeaderMap::new());
        assert_eq!(pooled(), before);

        let mut big = HeaderMap::new();
        for i in 0..200 {
            let name = HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap();
            big.insert(name, HeaderValue::from_static("v"));
        }
        recycle_headers(big);
        assert_eq!(pooled(), before, "an oversized map is dropped");

        for _ in 0..MAX_POOLED + 10 {
            let mut m = HeaderMap::new();
            m.insert(HOST, HeaderValue::from_static("a"));
            recycle_headers(m);
        }
        assert_eq!(pooled(), MAX_POOLED);
        while pooled() > 0 {
            let m = take_headers();
            assert!(m.is_empty() && m.capacity() > 0);
        }
        assert_eq!(take_headers().capacity(), 0);
    }

    #[test]
    fn prefilled_maps_are_kept_filled() {
        while pooled() > 0 {
            take_headers();
        }
        let text = take_headers_with(Prefilled::TextPlain);
        assert_eq!(text.len(), 1);
        assert_eq!(text[CONTENT_TYPE], "text/plain; charset=utf-8");
        recycle_headers(text);
        assert_eq!(pooled(), 1);
        let again = take_headers_with(Prefilled::TextPlain);
        assert_eq!(pooled(), 0, "the filled-in map, as it was given back");
        assert_eq!(again.len(), 1);
        recycle_headers(again);
        // A plain take empties a filled-in map when no cleared one is left.
        let plain = take_headers();
        assert!(plain.is_empty() && plain.capacity() > 0);
        assert_eq!(pooled(), 0);
        let html = take_headers_with(Prefilled::TextHtml);
        assert_eq!(html[CONTENT_TYPE], "text/html; charset=utf-8");

        // Anything else is cleared: another value, a sensitive one, a second field.
        let mut other = take_headers_with(Prefilled::TextHtml);
        other.insert(CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        let mut sensitive = take_headers_with(Prefilled::TextHtml);
        sensitive.get_mut(CONTENT_TYPE).unwrap().set_sensitive(true);
        let mut two = take_headers_with(Prefilled::TextPlain);
        two.append(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        for map in [other, sensitive, two] {
            recycle_headers(map);
        }
        assert_eq!(pooled(), 3);
        for _ in 0..3 {
            assert!(take_headers().is_empty());
        }
        let fresh = take_headers_with(Prefilled::TextPlain);
        assert_eq!(fresh.len(), 1, "built afresh");
    }

    #[test]
    fn per_thread() {
        let mut m = HeaderMap::new();
        m.insert(HOST, HeaderValue::from_static("a"));
        recycle_headers(m);
        let other = std::thread::spawn(pooled).join().unwrap();
        assert_eq!(other, 0, "another thread has its own pool");
    }
}
