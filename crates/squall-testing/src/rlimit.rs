//! Lowering `RLIMIT_NOFILE` and filling the fd table, for tests of running out of file
//! descriptors (EMFILE).

use std::fs::File;

/// Set the soft open-file limit to `soft` (capped at the hard limit) and return the old
/// soft limit.
///
/// # Panics
/// If `getrlimit` or `setrlimit` fails.
pub fn set_nofile(soft: libc::rlim_t) -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    let old = lim.rlim_cur;
    lim.rlim_cur = soft.min(lim.rlim_max);
    // SAFETY: setrlimit reads one valid rlimit; lowering the soft limit is always allowed.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
    old
}

/// Open `/dev/null` until the process has no fd left (EMFILE); the files hold the table
/// full until dropped.
///
/// # Panics
/// On an error other than EMFILE.
pub fn fill_fd_table() -> Vec<File> {
    let mut hog = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => hog.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return hog,
            Err(e) => panic!("unexpected error filling the fd table: {e}"),
        }
    }
}
