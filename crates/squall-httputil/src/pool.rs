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

use http::HeaderMap;

/// The most maps one thread keeps.
pub const MAX_POOLED: usize = 64;
/// Maps with room for more entries than this are dropped instead of pooled.
pub const MAX_POOLED_CAPACITY: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// An empty map: one from this thread's pool (with its allocation) if there is one,
/// else `HeaderMap::new()` (which allocates nothing until used).
pub fn take_headers() -> HeaderMap {
    POOL.try_with(|p| p.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Give a map back to this thread's pool: it is cleared (its values dropped) and kept
/// for the next [`take_headers`], unless the pool is full or the map is oversized (then
/// it is simply dropped).
pub fn recycle_headers(mut headers: HeaderMap) {
    if headers.capacity() == 0 || headers.capacity() > MAX_POOLED_CAPACITY {
        return;
    }
    headers.clear();
    // During thread teardown the pool may be gone: the map is then dropped here.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < MAX_POOLED {
            p.push(headers);
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
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PooledHeaders(HeaderMap);

impl PooledHeaders {
    /// An empty map from this thread's pool (see [`take_headers`]).
    pub fn new() -> PooledHeaders {
        PooledHeaders(take_headers())
    }

    /// The map itself, which will then not go back to the pool.
    pub fn into_inner(mut self) -> HeaderMap {
        std::mem::take(&mut self.0)
    }
}

impl Drop for PooledHeaders {
    fn drop(&mut self) {
        recycle_headers(std::mem::take(&mut self.0));
    }
}

impl Deref for PooledHeaders {
    type Target = HeaderMap;
    fn deref(&self) -> &HeaderMap {
        &self.0
    }
}

impl DerefMut for PooledHeaders {
    fn deref_mut(&mut self) -> &mut HeaderMap {
        &mut self.0
    }
}

impl From<HeaderMap> for PooledHeaders {
    fn from(map: HeaderMap) -> PooledHeaders {
        PooledHeaders(map)
    }
}

impl From<PooledHeaders> for HeaderMap {
    fn from(headers: PooledHeaders) -> HeaderMap {
        headers.into_inner()
    }
}

impl PartialEq<HeaderMap> for PooledHeaders {
    fn eq(&self, other: &HeaderMap) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for PooledHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a> IntoIterator for &'a PooledHeaders {
    type Item = (&'a http::HeaderName, &'a http::HeaderValue);
    type IntoIter = http::header::Iter<'a, http::HeaderValue>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// How many maps this thread's pool holds (for tests and monitoring).
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
    fn per_thread() {
        let mut m = HeaderMap::new();
        m.insert(HOST, HeaderValue::from_static("a"));
        recycle_headers(m);
        let other = std::thread::spawn(pooled).join().unwrap();
        assert_eq!(other, 0, "another thread has its own pool");
    }
}
