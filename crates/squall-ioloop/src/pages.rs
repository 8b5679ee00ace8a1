//! [`Pages`]: a table indexed by small numbers (fds) that grows one page at a time.
//!
//! A `Vec` indexed by fd doubles as it grows, so with 10,000 connections it holds 16,384
//! entries, most of them never used, and copies the whole table at each doubling. Pages
//! of [`PAGE`] entries waste at most one page, never move an entry, and cost one more
//! pointer hop per lookup (a page that is almost always in cache).

/// Entries per page (a power of two).
pub(crate) const PAGE: usize = 256;
const SHIFT: u32 = PAGE.trailing_zeros();
const MASK: usize = PAGE - 1;

pub(crate) struct Pages<T> {
    /// Fixed-size pages: the index within a page needs no bounds check.
    pages: Vec<Box<[T; PAGE]>>,
}

impl<T> Default for Pages<T> {
    fn default() -> Self {
        Pages { pages: Vec::new() }
    }
}

impl<T: Default> Pages<T> {
    /// The entry at `i`, if its page exists.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.pages.get(i >> SHIFT).map(|p| &p[i & MASK])
    }

    /// The entry at `i`, if its page exists.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.pages.get_mut(i >> SHIFT).map(|p| &mut p[i & MASK])
    }

    /// The entry at `i`, adding default-filled pages up to it if needed.
    #[inline]
    pub(crate) fn get_or_grow(&mut self, i: usize) -> &mut T {
        let page = i >> SHIFT;
        if self.pages.len() <= page {
            self.grow(page);
        }
        &mut self.pages[page][i & MASK]
    }

    #[cold]
    fn grow(&mut self, page: usize) {
        while self.pages.len() <= page {
            let entries: Box<[T]> = (0..PAGE).map(|_| T::default()).collect();
            let Ok(page) = Box::<[T; PAGE]>::try_from(entries) else {
                unreachable!("a page has PAGE entries")
            };
            self.pages.push(page);
        }
    }

    /// Every entry, in index order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.pages.iter_mut().flat_map(|p| p.iter_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_pages_and_keeps_entries() {
        let mut t: Pages<u32> = Pages::default();
        assert!(t.get(0).is_none());
        *t.get_or_grow(3) = 7;
        assert_eq!(t.pages.len(), 1);
        assert_eq!(t.get(3), Some(&7));
        assert_eq!(t.get(PAGE - 1), Some(&0));
        assert!(t.get(PAGE).is_none());
        *t.get_or_grow(2 * PAGE + 1) = 9;
        assert_eq!(t.pages.len(), 3);
        assert_eq!(t.get(3), Some(&7));
        assert_eq!(t.get(2 * PAGE + 1), Some(&9));
        *t.get_mut(PAGE).unwrap() = 5;
        let sum: u32 = t.iter_mut().map(|v| *v).sum();
        assert_eq!(sum, 21);
    }
}
