//! The platform lists squall's crates share, each written once: which OSes have the
//! epoll backend, which the kqueue backend, and which have the atomic-flag syscalls
//! (`accept4`, `SOCK_NONBLOCK`, `pipe2`).
//!
//! Each list is a pair of macros that keep or drop the items they wrap (a `cfg` alias
//! any crate above can use, since they all depend on this one), and a `bool` constant
//! for run-time choices. A crate that needs a list uses these instead of writing its own
//! `#[cfg(any(target_os = ...))]`, so the lists cannot drift apart.
//!
//! ```
//! squall_poller::cfg_epoll! {
//!     fn native() -> &'static str { "epoll" }
//! }
//! squall_poller::cfg_not_epoll! {
//!     fn native() -> &'static str { "something else" }
//! }
//! assert_eq!(native() == "epoll", squall_poller::os::EPOLL);
//! ```

/// Applies one list: `yes` keeps the items where the predicate holds, `no` where it
/// does not. Each list below is written once, in the macro that names it.
#[doc(hidden)]
#[macro_export]
macro_rules! __cfg_list {
    (yes [$pred:meta] $($item:item)*) => { $( #[cfg($pred)] $item )* };
    (no [$pred:meta] $($item:item)*) => { $( #[cfg(not($pred))] $item )* };
}

/// The epoll systems: Linux and Android.
#[doc(hidden)]
#[macro_export]
macro_rules! __epoll_list {
    ($mode:ident $($item:item)*) => {
        $crate::__cfg_list! { $mode [any(target_os = "linux", target_os = "android")] $($item)* }
    };
}

/// The systems where squall-kqueue has its backend: macOS, iOS, tvOS, watchOS and
/// FreeBSD (the targets its `kevent` glue is checked for; NetBSD, OpenBSD and DragonFly
/// have kqueue too, with other `kevent` field types, and use poll(2) until someone
/// checks them).
#[doc(hidden)]
#[macro_export]
macro_rules! __kqueue_list {
    ($mode:ident $($item:item)*) => {
        $crate::__cfg_list! {
            $mode [any(
                target_os = "macos",
                target_os = "ios",
                target_os = "tvos",
                target_os = "watchos",
                target_os = "freebsd"
            )]
            $($item)*
        }
    };
}

/// The systems that create fds with their flags in one call (`accept4`,
/// `SOCK_NONBLOCK | SOCK_CLOEXEC`, `pipe2`): Linux, Android, FreeBSD, DragonFly,
/// NetBSD, OpenBSD, illumos.
#[doc(hidden)]
#[macro_export]
macro_rules! __accept4_list {
    ($mode:ident $($item:item)*) => {
        $crate::__cfg_list! {
            $mode [any(
                target_os = "linux",
                target_os = "android",
                target_os = "freebsd",
                target_os = "dragonfly",
                target_os = "netbsd",
                target_os = "openbsd",
                target_os = "illumos"
            )]
            $($item)*
        }
    };
}

/// Keeps the wrapped items only where `squall-epoll` has its backend: Linux and
/// Android.
#[macro_export]
macro_rules! cfg_epoll {
    ($($item:item)*) => { $crate::__epoll_list! { yes $($item)* } };
}

/// Keeps the wrapped items only where [`cfg_epoll!`](crate::cfg_epoll) drops them.
#[macro_export]
macro_rules! cfg_not_epoll {
    ($($item:item)*) => { $crate::__epoll_list! { no $($item)* } };
}

/// Keeps the wrapped items only where `squall-kqueue` has its backend: macOS, iOS,
/// tvOS, watchOS and FreeBSD (the targets its `kevent` glue is checked for; NetBSD,
/// OpenBSD and DragonFly have kqueue too, with other `kevent` field types, and use
/// poll(2) until someone checks them).
#[macro_export]
macro_rules! cfg_kqueue {
    ($($item:item)*) => { $crate::__kqueue_list! { yes $($item)* } };
}

/// Keeps the wrapped items only where [`cfg_kqueue!`](crate::cfg_kqueue) drops them.
#[macro_export]
macro_rules! cfg_not_kqueue {
    ($($item:item)*) => { $crate::__kqueue_list! { no $($item)* } };
}

/// Keeps the wrapped items only where the OS creates fds with their flags in one call:
/// `accept4`, `SOCK_NONBLOCK | SOCK_CLOEXEC` and `pipe2` (Linux, Android, FreeBSD,
/// DragonFly, NetBSD, OpenBSD, illumos). Elsewhere (Apple's systems among them) a
/// second call sets the flags.
#[macro_export]
macro_rules! cfg_accept4 {
    ($($item:item)*) => { $crate::__accept4_list! { yes $($item)* } };
}

/// Keeps the wrapped items only where [`cfg_accept4!`](crate::cfg_accept4) drops them.
#[macro_export]
macro_rules! cfg_not_accept4 {
    ($($item:item)*) => { $crate::__accept4_list! { no $($item)* } };
}

crate::cfg_epoll! {
    /// Whether `squall-epoll` has its backend here ([`cfg_epoll!`](crate::cfg_epoll)).
    pub const EPOLL: bool = true;
}
crate::cfg_not_epoll! {
    /// Whether `squall-epoll` has its backend here ([`cfg_epoll!`](crate::cfg_epoll)).
    pub const EPOLL: bool = false;
}
crate::cfg_kqueue! {
    /// Whether `squall-kqueue` has its backend here ([`cfg_kqueue!`](crate::cfg_kqueue)).
    pub const KQUEUE: bool = true;
}
crate::cfg_not_kqueue! {
    /// Whether `squall-kqueue` has its backend here ([`cfg_kqueue!`](crate::cfg_kqueue)).
    pub const KQUEUE: bool = false;
}
crate::cfg_accept4! {
    /// Whether the OS has `accept4`, `SOCK_NONBLOCK` and `pipe2`
    /// ([`cfg_accept4!`](crate::cfg_accept4)).
    pub const ACCEPT4: bool = true;
}
crate::cfg_not_accept4! {
    /// Whether the OS has `accept4`, `SOCK_NONBLOCK` and `pipe2`
    /// ([`cfg_accept4!`](crate::cfg_accept4)).
    pub const ACCEPT4: bool = false;
}

// The lists are consistent: no OS has both backends, and every epoll OS has the
// atomic-flag calls.
const _: () = assert!(!(EPOLL && KQUEUE) && (!EPOLL || ACCEPT4));
