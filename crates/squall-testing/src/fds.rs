//! Counting the process's open file descriptors, to prove a test left none behind.

/// The most fd numbers [`open_fds`] probes.
const MAX_PROBED_FD: u64 = 1 << 16;

/// The open fds of this process, on any Unix: every fd number below the soft
/// `RLIMIT_NOFILE` (at most 65,536) that `fcntl(F_GETFD)` accepts. No fd is opened to
/// count them (`/proc/self/fd` exists on Linux only and opens one itself). Compare two
/// counts taken while nothing else in the process opens fds (a test binary of its own).
///
/// # Panics
/// If `getrlimit` fails.
pub fn open_fds() -> Vec<i32> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live, writable rlimit.
    let res = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(res, 0, "getrlimit: {}", std::io::Error::last_os_error());
    // rlim_t is u64 on Linux and macOS, i64 on FreeBSD.
    #[allow(clippy::unnecessary_cast)]
    let top = (lim.rlim_cur as u64).min(MAX_PROBED_FD);
    (0..top as i32)
        .filter(|&fd| squall_poller::sys::check_fd(fd).is_ok())
        .collect()
}
