//! Small pieces every backend needs: timeout rounding, the EINTR retry loop, and the
//! errors the contract names.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Turns the `-1` that a libc call returns on failure into the OS error (`errno`).
///
/// The `unsafe` block stays at the call site, where its `// SAFETY:` comment belongs.
///
/// ```
/// # use squall_poller::syscall;
/// // SAFETY: getpid has no preconditions.
/// let pid = syscall!(unsafe { libc::getpid() }).unwrap();
/// assert!(pid > 0);
/// ```
#[macro_export]
macro_rules! syscall {
    ($call:expr) => {{
        let res = $call;
        if res == -1 {
            Err(::std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

/// A timeout in whole milliseconds for `epoll_wait`/`poll`: `-1` for `None`, rounded
/// **up** so that a poll never returns before the asked time, and capped at `i32::MAX`.
pub fn timeout_millis(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(t) => {
            // Round up: 0.2 ms waits 1 ms, not 0 (mio does the same).
            let ms = t
                .as_secs()
                .saturating_mul(1000)
                .saturating_add(u64::from(t.subsec_nanos().div_ceil(1_000_000)));
            ms.min(i32::MAX as u64) as i32
        }
    }
}

/// Runs a blocking wait, retrying it when a signal interrupts it (`EINTR`) with the
/// time that remains of `timeout`.
///
/// `wait` gets the remaining timeout and returns the number of ready fds; on `EINTR`
/// the loop goes round again, and once the deadline has passed it retries with a zero
/// timeout (one last non-blocking look), so a signal never shortens or lengthens the
/// wait beyond the retry itself.
pub fn retry_eintr<F>(timeout: Option<Duration>, mut wait: F) -> io::Result<usize>
where
    F: FnMut(Option<Duration>) -> io::Result<usize>,
{
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut remaining = timeout;
    loop {
        match wait(remaining) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if let Some(deadline) = deadline {
                    remaining = Some(deadline.saturating_duration_since(Instant::now()));
                }
            }
            other => return other,
        }
    }
}

/// The error for registering an fd twice ([`io::ErrorKind::AlreadyExists`]).
pub fn already_registered(fd: RawFd) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("fd {fd} is already registered with this poller"),
    )
}

/// The error for modifying or unregistering an unknown fd ([`io::ErrorKind::NotFound`]).
pub fn not_registered(fd: RawFd) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("fd {fd} is not registered with this poller"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_upwards() {
        assert_eq!(timeout_millis(None), -1);
        assert_eq!(timeout_millis(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_millis(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_millis(Some(Duration::from_micros(1500))), 2);
        assert_eq!(timeout_millis(Some(Duration::from_millis(50))), 50);
        assert_eq!(timeout_millis(Some(Duration::MAX)), i32::MAX);
    }

    #[test]
    fn eintr_is_retried_with_less_time() {
        let mut calls = Vec::new();
        let n = retry_eintr(Some(Duration::from_secs(10)), |t| {
            calls.push(t);
            if calls.len() < 3 {
                Err(io::Error::from_raw_os_error(libc::EINTR))
            } else {
                Ok(7)
            }
        })
        .unwrap();
        assert_eq!(n, 7);
        assert_eq!(calls.len(), 3);
        assert!(calls[2].unwrap() <= calls[0].unwrap());
        let other = retry_eintr(None, |_| Err(io::Error::from_raw_os_error(libc::EBADF)));
        assert_eq!(other.unwrap_err().raw_os_error(), Some(libc::EBADF));
    }
}
