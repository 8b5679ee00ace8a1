//! Tornado's `tornado.netutil`: listening sockets and the accept loop.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};
use squall_ioloop::{Interest, IoLoop, Timeout};

use crate::sys;

/// The default listen backlog. Tornado uses 128; squall takes 1024 so that a burst of
/// connections (a benchmark opening 1,000 at once) is not dropped by a full queue. The
/// kernel caps it at `net.core.somaxconn`.
pub const DEFAULT_BACKLOG: i32 = 1024;

/// The most connections one readiness event accepts (Tornado's `_DEFAULT_BACKLOG`
/// bound in `add_accept_handler`), so one busy listener cannot starve the loop.
pub const ACCEPTS_PER_EVENT: usize = 128;

/// First and longest pause of a listener that ran out of fds.
const BACKOFF_START: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one "out of file descriptors" warning per this interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Which address families [`bind_sockets`] binds. Tornado's `family` argument
/// (`socket.AF_UNSPEC`, `AF_INET`, `AF_INET6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Family {
    /// IPv4 and IPv6, whatever the address resolves to.
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Family {
    pub(crate) fn admits(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// Whether `ip` is a numeric IPv4 or IPv6 address. Tornado's `netutil.is_valid_ip`:
/// nothing is looked up, so a host name is not an IP.
///
/// IPv4 is the dotted quad; the shorthand forms `inet_aton` also takes (`127.1`,
/// `0x7f.0.0.1`) are refused, as they are in URLs. IPv6 may carry a zone
/// (`fe80::1%eth0`), as `getaddrinfo` accepts: an interface name (at most 15 bytes,
/// Linux's `IFNAMSIZ` less its NUL) or an index. Empty strings, surrounding spaces and
/// NUL bytes are refused.
pub fn is_valid_ip(ip: &str) -> bool {
    if ip.parse::<IpAddr>().is_ok() {
        return true;
    }
    match ip.split_once('%') {
        Some((addr, zone)) => {
            let zone_ok = if zone.bytes().all(|b| b.is_ascii_digit()) {
                zone.parse::<u32>().is_ok()
            } else {
                zone.len() <= MAX_ZONE_NAME
                    && zone
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            };
            zone_ok && addr.parse::<std::net::Ipv6Addr>().is_ok()
        }
        None => false,
    }
}

/// The longest interface name a zone may be (`IFNAMSIZ` is 16 with its NUL).
const MAX_ZONE_NAME: usize = 15;

/// Creates listening sockets bound to `port` on every address `address` resolves to.
/// Tornado's `netutil.bind_sockets`.
///
/// An empty `address` binds all interfaces (`0.0.0.0` and `::`); `"localhost"` gives
/// `127.0.0.1` and `::1` where both exist. The IPv4 sockets come first, then the IPv6
/// ones, each family in the resolver's order (Tornado sorts by family the same way).
/// Each socket has `SO_REUSEADDR`, IPv6 ones `IPV6_V6ONLY` (so the two families do not
/// collide), `SO_REUSEPORT` if `reuse_port`, and is non-blocking and close-on-exec.
/// With port 0 the first socket's kernel-chosen port is used for the others, so every
/// family shares one port, as in Tornado; should another family's socket hold that
/// port already, another port is taken (up to 16 tries), where Tornado fails.
/// Addresses are deduplicated; an IPv6 address the host cannot bind
/// (`EADDRNOTAVAIL`/`EAFNOSUPPORT`) is skipped when another address was bound.
///
/// Resolving a host name calls `getaddrinfo`, which blocks: bind before starting the
/// loop.
///
/// # Errors
///
/// The resolver's error, `InvalidInput` if nothing matches `family`, or the first OS
/// error of `socket`, `bind` or `listen` (`EADDRINUSE`...), as it is: its `raw_os_error()`
/// is the errno.
pub fn bind_sockets(
    port: u16,
    address: &str,
    family: Family,
    backlog: i32,
    reuse_port: bool,
) -> io::Result<Vec<TcpListener>> {
    let mut addrs: Vec<SocketAddr> = if address.is_empty() {
        vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        ]
    } else {
        (address, port).to_socket_addrs()?.collect()
    };
    addrs.retain(|a| family.admits(&a.ip()));
    // IPv4 first, as Tornado sorts them: with port 0 the kernel then picks a port free
    // for IPv4, where the host's other sockets are. A port picked for a V6ONLY socket
    // may be the local port of an IPv4 connection, and the IPv4 bind on it would fail.
    addrs.sort_by_key(SocketAddr::is_ipv6);
    let mut seen = Vec::with_capacity(addrs.len());
    addrs.retain(|a| {
        if seen.contains(a) {
            false
        } else {
            seen.push(*a);
            true
        }
    });
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address:?} has no address of family {family:?}"),
        ));
    }
    // With port 0 the kernel picks the first socket's port, free for that socket only:
    // a listener of the other family may hold it (an IPv6-only socket does not stop an
    // IPv4 bind, nor the reverse), and the next bind then fails. Tornado gives up
    // there; a new port is taken instead, a few times.
    let mut attempt = 1;
    loop {
        match bind_addrs(&addrs, port, backlog, reuse_port) {
            Err(Failed::OnChosenPort(e)) if attempt < PORT_ZERO_ATTEMPTS => {
                log::debug!("bind_sockets: the kernel's port is taken for another family ({e}); trying another");
                attempt += 1;
            }
            Err(Failed::OnChosenPort(e) | Failed::Other(e)) => return Err(e),
            Ok(out) => return Ok(out),
        }
    }
}

/// How many ports [`bind_sockets`] tries with port 0 before it gives up.
const PORT_ZERO_ATTEMPTS: usize = 16;

/// Why [`bind_addrs`] failed.
enum Failed {
    /// `EADDRINUSE` on the port the kernel chose for an earlier address.
    OnChosenPort(io::Error),
    /// Anything else.
    Other(io::Error),
}

/// Binds every address of `addrs` on `port` (port 0: the kernel's choice for the first,
/// then the same for the others).
fn bind_addrs(
    addrs: &[SocketAddr],
    port: u16,
    backlog: i32,
    reuse_port: bool,
) -> Result<Vec<TcpListener>, Failed> {
    let mut out: Vec<TcpListener> = Vec::with_capacity(addrs.len());
    let mut bound_port = port;
    let mut skipped: Option<io::Error> = None;
    for mut addr in addrs.iter().copied() {
        if bound_port != 0 {
            addr.set_port(bound_port);
        }
        match bind_one(addr, backlog, reuse_port) {
            Ok(l) => {
                if bound_port == 0 {
                    bound_port = l.local_addr().map_err(Failed::Other)?.port();
                }
                out.push(l);
            }
            Err(e)
                if addr.is_ipv6()
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)
                    ) =>
            {
                log::debug!("bind_sockets: skipping {addr}: {e}");
                skipped = Some(e);
            }
            // The OS error itself, so that `raw_os_error()` gives its errno.
            Err(e) => {
                log::debug!("bind_sockets: {addr}: {e}");
                let chosen = port == 0 && bound_port != 0;
                return Err(if chosen && e.raw_os_error() == Some(libc::EADDRINUSE) {
                    Failed::OnChosenPort(e)
                } else {
                    Failed::Other(e)
                });
            }
        }
    }
    match (out.is_empty(), skipped) {
        (true, Some(e)) => Err(Failed::Other(e)),
        _ => Ok(out),
    }
}

/// The first listeners of a group that threads of this process share with
/// `SO_REUSEPORT` (each thread then binds its own with [`bind_sockets`] and
/// `reuse_port`). A port some other socket already listens on is refused, as a plain
/// bind refuses it: `SO_REUSEPORT` alone would let a second server started on the same
/// port join the first one's group without a word, and the kernel would split the
/// connections between them (Tornado binds with `reuse_port=False` unless asked).
///
/// # Errors
///
/// As [`bind_sockets`]; `EADDRINUSE` for a port in use.
pub fn bind_reuse_port_group(
    port: u16,
    address: &str,
    family: Family,
    backlog: i32,
) -> io::Result<Vec<TcpListener>> {
    if port != 0 {
        // A bind without `SO_REUSEPORT` fails where anything listens already; it is
        // let go at once, and the group is bound in its place.
        drop(bind_sockets(port, address, family, backlog, false)?);
    }
    bind_sockets(port, address, family, backlog, true)
}

fn bind_one(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
    // `Socket::new` sets close-on-exec (atomically where `SOCK_CLOEXEC` exists).
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Creates a listening Unix socket at `path` with permissions `mode` (Tornado's
/// default is `0o600`). Tornado's `netutil.bind_unix_socket`.
///
/// A socket file already at `path` is replaced only if it is stale (nobody accepts on
/// it: a connect is refused); a live one is `AddrInUse` (also when its backlog is full),
/// and a path that is not a socket is `AlreadyExists`. The probe connect does not block.
/// A `path` that starts with a NUL byte is a Linux abstract name, as in Tornado: it has
/// no file, so nothing is checked, replaced or given `mode`. The listener is
/// non-blocking and close-on-exec.
///
/// # Errors
///
/// As above, or the OS error of the probe connect (other than a refusal), `socket`,
/// `bind`, `chmod` or `listen`.
pub fn bind_unix_socket(
    path: impl AsRef<Path>,
    mode: u32,
    backlog: i32,
) -> io::Result<UnixListener> {
    let path = path.as_ref();
    let is_abstract = path.as_os_str().as_bytes().first() == Some(&0);
    if !is_abstract {
        remove_stale_socket(path)?;
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    if !is_abstract {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    socket.listen(backlog)?;
    Ok(UnixListener::from(OwnedFd::from(socket)))
}

/// Makes room for a Unix socket at `path`: removes a socket file nobody accepts on,
/// refuses a live one or a file that is not a socket.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let in_use = || {
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{}: a server is listening on this socket", path.display()),
        )
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // Non-blocking, so that a live server whose backlog is full answers
            // `EAGAIN` instead of blocking this call until it accepts.
            let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            probe.set_nonblocking(true)?;
            match probe.connect(&SockAddr::unix(path)?) {
                Ok(()) => Err(in_use()),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path)
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::EINPROGRESS) =>
                {
                    Err(in_use())
                }
                Err(e) => Err(e),
            }
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{}: exists and is not a socket", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The address of an accepted connection: what Tornado passes as `address`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddr {
    /// An IPv4 or IPv6 peer.
    Inet(SocketAddr),
    /// A Unix-socket peer (normally unnamed).
    Unix,
}

impl PeerAddr {
    /// The IP address and port, for a TCP peer.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Inet(a) => Some(*a),
            PeerAddr::Unix => None,
        }
    }

    fn from_sockaddr(a: &SockAddr) -> PeerAddr {
        a.as_socket().map_or(PeerAddr::Unix, PeerAddr::Inet)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Inet(a) => a.fmt(f),
            PeerAddr::Unix => f.write_str("unix"),
        }
    }
}

struct AcceptState {
    io_loop: IoLoop,
    fd: RawFd,
    removed: Cell<bool>,
    paused: Cell<bool>,
    backoff: Cell<Duration>,
    resume: Cell<Option<Timeout>>,
    accept_calls: Cell<u64>,
    last_log: Cell<Option<Instant>>,
    suppressed: Cell<u64>,
}

/// The registration made by [`add_accept_handler`]: remove it to stop accepting (which
/// also closes the listener). Dropping the handle does not stop accepting: the loop
/// keeps the registration until [`remove`](AcceptHandle::remove) or its own close.
pub struct AcceptHandle {
    state: Rc<AcceptState>,
}

impl AcceptHandle {
    /// Stops accepting: unregisters the listener and drops it (closing it), and cancels
    /// a pending resume. Idempotent, and safe from inside the accept callback (the
    /// current batch stops after the connection being handled).
    pub fn remove(&self) {
        let s = &self.state;
        if s.removed.replace(true) {
            return;
        }
        if let Some(t) = s.resume.take() {
            s.io_loop.remove_timeout(t);
        }
        drop(s.io_loop.remove_handler(s.fd));
    }

    /// How many `accept4` calls the handler has made (successful or not): what a test
    /// counts to prove that a listener out of fds does not spin.
    pub fn accept_calls(&self) -> u64 {
        self.state.accept_calls.get()
    }

    /// Whether the listener is paused after running out of fds.
    pub fn is_paused(&self) -> bool {
        self.state.paused.get()
    }

    /// The listener's fd.
    pub fn fd(&self) -> RawFd {
        self.state.fd
    }
}

impl fmt::Debug for AcceptHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptHandle")
            .field("fd", &self.state.fd)
            .field("removed", &self.state.removed.get())
            .field("paused", &self.state.paused.get())
            .finish()
    }
}

/// Calls `callback(connection, address)` for every connection accepted on `listener`
/// (a [`TcpListener`], [`UnixListener`], or any listening socket fd the loop may own).
/// Tornado's `netutil.add_accept_handler`.
///
/// Each readiness event accepts in a loop, up to [`ACCEPTS_PER_EVENT`] connections,
/// with `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`, so an accepted fd is ready for
/// [`IoStream::from_nonblocking`](squall_iostream::IoStream::from_nonblocking) with no
/// further syscall. `ECONNABORTED`, `EPROTO` and `EINTR` are skipped.
///
/// **Out of fds** (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), where Tornado and tokio
/// spin on a listener that stays readable: the listener is paused (its READ interest
/// removed), a timer resumes it after a backoff that doubles from 10 ms to 1 s and
/// resets after a successful accept, and a warning is logged at most once every 10 s
/// (with the count of those suppressed). The pending client waits in the backlog and
/// is served once fds free up.
///
/// The loop owns `listener` from now on; [`AcceptHandle::remove`] drops it (dropping
/// the handle does not: accepting goes on).
///
/// # Errors
///
/// The loop's error registering the fd (`AlreadyExists`, a closed loop...).
#[track_caller]
pub fn add_accept_handler<L, F>(
    io_loop: &IoLoop,
    listener: L,
    callback: F,
) -> io::Result<AcceptHandle>
where
    L: AsRawFd + 'static,
    F: FnMut(OwnedFd, PeerAddr) + 'static,
{
    let fd = listener.as_raw_fd();
    let state = Rc::new(AcceptState {
        io_loop: io_loop.clone(),
        fd,
        removed: Cell::new(false),
        paused: Cell::new(false),
        backoff: Cell::new(BACKOFF_START),
        resume: Cell::new(None),
        accept_calls: Cell::new(0),
        last_log: Cell::new(None),
        suppressed: Cell::new(0),
    });
    // The registration keeps the state: accepting goes on when the handle is dropped,
    // as Tornado's goes on when its remove callable is dropped. (A state dropped with
    // the handle would leave a readable listener nobody accepts on, and the loop
    // spinning on it.)
    let accepting = state.clone();
    let mut callback = callback;
    io_loop.add_handler(listener, Interest::READ, move |fd, _ready| {
        accept_batch(&accepting, fd, &mut callback);
    })?;
    Ok(AcceptHandle { state })
}

fn accept_batch(state: &Rc<AcceptState>, fd: RawFd, callback: &mut dyn FnMut(OwnedFd, PeerAddr)) {
    for _ in 0..ACCEPTS_PER_EVENT {
        if state.removed.get() || state.paused.get() {
            return;
        }
        state.accept_calls.set(state.accept_calls.get() + 1);
        match sys::accept(fd) {
            Ok((conn, addr)) => {
                state.backoff.set(BACKOFF_START);
                callback(conn, PeerAddr::from_sockaddr(&addr));
            }
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) => return,
                #[allow(unreachable_patterns)]
                Some(libc::EWOULDBLOCK) => return,
                Some(libc::ECONNABORTED | libc::EPROTO | libc::EINTR) => continue,
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    pause(state, &e);
                    return;
                }
                _ => {
                    // Unknown: do not spin on it either.
                    log::error!("accept on fd {fd} failed: {e}");
                    pause(state, &e);
                    return;
                }
            },
        }
    }
}

fn pause(state: &Rc<AcceptState>, e: &io::Error) {
    let now = Instant::now();
    let delay = state.backoff.get();
    let due = state
        .last_log
        .get()
        .is_none_or(|t| now.duration_since(t) >= LOG_INTERVAL);
    if due {
        let suppressed = state.suppressed.replace(0);
        log::warn!(
            "accept on fd {} failed: {e}; pausing the listener for {delay:?} ({suppressed} similar warnings suppressed)",
            state.fd
        );
        state.last_log.set(Some(now));
    } else {
        state.suppressed.set(state.suppressed.get() + 1);
    }
    if let Err(err) = state.io_loop.update_handler(state.fd, Interest::NONE) {
        log::error!("could not pause listener fd {}: {err}", state.fd);
    }
    state.paused.set(true);
    state.backoff.set((delay * 2).min(BACKOFF_MAX));
    let weak = Rc::downgrade(state);
    let t = state.io_loop.call_later(delay, move || {
        let Some(state) = weak.upgrade() else { return };
        state.resume.set(None);
        if state.removed.get() {
            return;
        }
        state.paused.set(false);
        if let Err(err) = state.io_loop.update_handler(state.fd, Interest::READ) {
            log::error!("could not resume listener fd {}: {err}", state.fd);
        }
    });
    if let Some(old) = state.resume.replace(Some(t)) {
        state.io_loop.remove_timeout(old);
    }
}
