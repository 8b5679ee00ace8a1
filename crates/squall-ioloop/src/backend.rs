//! Choosing a poller: by name, from `SQUALL_POLLER`, or the platform's default.

use std::io;

use squall_poller::Poller;

/// The poller [`IoLoop::new`](crate::IoLoop::new) would use: `SQUALL_POLLER` if set, else the platform
/// default (see [`IoLoop::new`](crate::IoLoop::new)).
///
/// # Errors
///
/// As [`IoLoop::new`](crate::IoLoop::new).
pub fn default_poller() -> io::Result<Box<dyn Poller>> {
    match std::env::var("SQUALL_POLLER") {
        Ok(name) if !name.trim().is_empty() => poller_by_name(name.trim()),
        Ok(_) | Err(std::env::VarError::NotPresent) => platform_default(),
        Err(std::env::VarError::NotUnicode(v)) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("SQUALL_POLLER is not valid UTF-8: {v:?}"),
        )),
    }
}

/// A poller by name: `"epoll"`, `"kqueue"`, `"poll"` or `"select"`.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`] for another name, [`io::ErrorKind::Unsupported`] for
/// a backend not available on this platform or in this build, or the OS error of
/// creating it.
pub fn poller_by_name(name: &str) -> io::Result<Box<dyn Poller>> {
    match name {
        "epoll" => epoll(),
        "kqueue" => kqueue(),
        "poll" => poll(),
        "select" => select(),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "unknown poller {other:?} (SQUALL_POLLER): expected epoll, kqueue, poll or select"
            ),
        )),
    }
}

fn platform_default() -> io::Result<Box<dyn Poller>> {
    if squall_poller::os::EPOLL {
        epoll()
    } else if squall_poller::os::KQUEUE {
        kqueue()
    } else {
        poll()
    }
}

squall_poller::cfg_epoll! {
    fn epoll() -> io::Result<Box<dyn Poller>> {
        Ok(Box::new(squall_epoll::Epoll::new()?))
    }
}

squall_poller::cfg_not_epoll! {
    fn epoll() -> io::Result<Box<dyn Poller>> {
        Err(unsupported("epoll", "squall-epoll, Linux only"))
    }
}

squall_poller::cfg_kqueue! {
    fn kqueue() -> io::Result<Box<dyn Poller>> {
        Ok(Box::new(squall_kqueue::Kqueue::new()?))
    }
}

squall_poller::cfg_not_kqueue! {
    fn kqueue() -> io::Result<Box<dyn Poller>> {
        Err(unsupported(
            "kqueue",
            "squall-kqueue, macOS and FreeBSD only",
        ))
    }
}

fn poll() -> io::Result<Box<dyn Poller>> {
    Ok(Box::new(squall_poll::Poll::new()))
}

fn select() -> io::Result<Box<dyn Poller>> {
    Ok(Box::new(squall_select::Select::new()))
}

fn unsupported(name: &str, krate: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("the {name} poller ({krate}) is not available in this build"),
    )
}
