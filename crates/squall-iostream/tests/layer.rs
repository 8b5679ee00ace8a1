//! The `Layer` seam on its own, without TLS: a toy layer that XORs every byte and holds
//! back nothing, so the stream's reads, writes, limits and close causes can be checked
//! through a layer on every backend; `set_layer`'s "idle only" rule; and a layer with a
//! handshake of its own, which starts when it is installed.

use std::any::Any;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use squall_iostream::{CloseCause, IoLoop, IoStream, Layer, StreamError, GOODBYE_TIMEOUT};
use squall_testing::tcp_pair;

const KEY: u8 = 0x5a;

fn xor(data: &[u8]) -> Vec<u8> {
    data.iter().map(|b| b ^ KEY).collect()
}

/// XOR both ways; ready from the start; nothing buffered, nothing held back.
#[derive(Default)]
struct Xor {
    closed: bool,
}

impl Layer for Xor {
    fn read(&mut self, fd: &File, dst: &mut [u8]) -> io::Result<usize> {
        let n = (&*fd).read(dst)?;
        for b in &mut dst[..n] {
            *b ^= KEY;
        }
        Ok(n)
    }

    fn write(&mut self, fd: &File, src: &[IoSlice<'_>]) -> io::Result<usize> {
        let plain: Vec<u8> = src.iter().flat_map(|s| s.iter().copied()).collect();
        (&*fd).write(&xor(&plain))
    }

    fn flush(&mut self, _fd: &File) -> io::Result<()> {
        Ok(())
    }

    fn drive(&mut self, _fd: &File) -> io::Result<bool> {
        Ok(false)
    }

    fn wants_write(&self) -> bool {
        false
    }

    fn has_buffered_input(&mut self) -> bool {
        false
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn close(&mut self) {
        self.closed = true;
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

// Every read kind, and writes, go through the layer; the peer sees only XORed bytes.
async fn reads_and_writes_go_through_the_layer() {
    let (layered, plain) = tcp_pair().await;
    assert!(layered.set_layer(Box::new(Xor::default())).is_ok());
    assert!(layered.has_layer());
    plain
        .write(xor(b"line one\nline two\n12345"))
        .await
        .unwrap();
    assert_eq!(
        &layered.read_until(b"\n", Some(64)).await.unwrap()[..],
        b"line one\n"
    );
    assert_eq!(
        &layered.read_until(b"\n", None).await.unwrap()[..],
        b"line two\n"
    );
    assert_eq!(&layered.read_bytes(5, false).await.unwrap()[..], b"12345");
    layered.write(&b"reply"[..]).await.unwrap();
    assert_eq!(
        &plain.read_bytes(5, false).await.unwrap()[..],
        &xor(b"reply")[..]
    );
    // The stream's limits still apply to what the layer produces.
    plain.write(xor(b"no newline in sight")).await.unwrap();
    let err = layered.read_until(b"\n", Some(4)).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Unsatisfiable { max_bytes: 4 }),
        "{err:?}"
    );
    assert!(matches!(layered.error(), Some(CloseCause::Unsatisfiable)));
    // A local close told the layer (its goodbye), before the fd closed.
    let said_goodbye = layered
        .with_layer(|l| l.as_any().downcast_ref::<Xor>().is_some_and(|x| x.closed))
        .unwrap_or(false);
    assert!(!said_goodbye, "a limit is not a local close");
}

// Tornado's start_tls rule: only an idle stream takes a layer.
async fn set_layer_needs_an_idle_stream() {
    let (a, b) = tcp_pair().await;
    b.write(&b"x\nleftover"[..]).await.unwrap();
    assert_eq!(&a.read_until(b"\n", None).await.unwrap()[..], b"x\n");
    // Bytes buffered, unread.
    assert!(a.buffered_len() > 0);
    assert!(a.set_layer(Box::new(Xor::default())).is_err());
    // Writes queued.
    let (c, _d) = tcp_pair().await;
    c.write_buffered(&b"queued"[..]).unwrap();
    assert!(c.set_layer(Box::new(Xor::default())).is_err());
    // Closed.
    let (e, _f) = tcp_pair().await;
    e.close();
    assert!(e.set_layer(Box::new(Xor::default())).is_err());
    // Twice.
    let (g, _h) = tcp_pair().await;
    assert!(g.set_layer(Box::new(Xor::default())).is_ok());
    assert!(g.set_layer(Box::new(Xor::default())).is_err());
    // A local close reaches the layer.
    g.close();
    let said_goodbye = g
        .with_layer(|l| l.as_any().downcast_ref::<Xor>().is_some_and(|x| x.closed))
        .unwrap_or(false);
    assert!(said_goodbye);
}

// A layer's error closes the stream with it as the cause, kind and all.
async fn a_layer_error_is_the_close_cause() {
    struct Broken;
    impl Layer for Broken {
        fn read(&mut self, _fd: &File, _dst: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::InvalidData, "bad record"))
        }
        fn write(&mut self, _fd: &File, _src: &[IoSlice<'_>]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::InvalidData, "bad record"))
        }
        fn flush(&mut self, _fd: &File) -> io::Result<()> {
            Ok(())
        }
        fn drive(&mut self, _fd: &File) -> io::Result<bool> {
            Ok(false)
        }
        fn wants_write(&self) -> bool {
            false
        }
        fn has_buffered_input(&mut self) -> bool {
            false
        }
        fn is_ready(&self) -> bool {
            true
        }
        fn close(&mut self) {}
        fn as_any(&self) -> &dyn Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn Any {
            self
        }
    }
    let (s, peer) = tcp_pair().await;
    assert!(s.set_layer(Box::new(Broken)).is_ok());
    peer.write(&b"anything"[..]).await.unwrap();
    let err = s.read_bytes(1, false).await.unwrap_err();
    assert_eq!(
        err.io_error().map(io::Error::kind),
        Some(io::ErrorKind::InvalidData)
    );
    assert!(s.closed());
    // close_with_error keeps an owner's error as the cause too.
    let (t, _u) = tcp_pair().await;
    t.close_with_error(io::Error::new(io::ErrorKind::TimedOut, "handshake timeout"));
    let cause = t.error().unwrap();
    assert_eq!(
        cause.io_error().map(io::Error::kind),
        Some(io::ErrorKind::TimedOut)
    );
    let _: IoStream = t;
}

/// Plain bytes both ways, and a goodbye far larger than the socket buffers: what a TLS
/// stream's `close_notify` is behind records the fd had no room for.
struct Farewell {
    outbox: Vec<u8>,
    sent: usize,
}

/// The goodbye [`Farewell`] sends: 8 MiB of a counting pattern, then a last word.
fn farewell() -> Vec<u8> {
    let mut v: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    v.extend_from_slice(b"goodbye");
    v
}

impl Layer for Farewell {
    fn read(&mut self, fd: &File, dst: &mut [u8]) -> io::Result<usize> {
        (&*fd).read(dst)
    }
    fn write(&mut self, fd: &File, src: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*fd).write_vectored(src)
    }
    fn flush(&mut self, fd: &File) -> io::Result<()> {
        while self.sent < self.outbox.len() {
            self.sent += (&*fd).write(&self.outbox[self.sent..])?;
        }
        Ok(())
    }
    fn drive(&mut self, _fd: &File) -> io::Result<bool> {
        Ok(false)
    }
    fn wants_write(&self) -> bool {
        self.sent < self.outbox.len()
    }
    fn has_buffered_input(&mut self) -> bool {
        false
    }
    fn is_ready(&self) -> bool {
        true
    }
    fn close(&mut self) {
        if self.outbox.is_empty() {
            self.outbox = farewell();
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

fn install_farewell(s: &IoStream) {
    let layer = Farewell {
        outbox: Vec::new(),
        sent: 0,
    };
    assert!(s.set_layer(Box::new(layer)).is_ok());
}

fn layer_owes(s: &IoStream) -> bool {
    s.with_layer(|l| l.wants_write()) == Some(true)
}

// A layer's goodbye that the fd has no room for when the stream closes goes out after
// the close, whole, then the fd closes: on `close`, and on dropping the last handle.
async fn a_goodbye_the_fd_has_no_room_for_goes_out_after_the_close() {
    let io_loop = IoLoop::current().unwrap();
    for drop_it in [false, true] {
        let (layered, plain) = tcp_pair().await;
        let fd = layered.as_raw_fd();
        install_farewell(&layered);
        layered.write(&b"data;"[..]).await.unwrap();
        if drop_it {
            drop(layered);
        } else {
            layered.close();
            assert!(layered.closed());
            // The premise: the fd took only part of it in the close.
            assert!(layer_owes(&layered), "the goodbye went out in one try");
        }
        assert!(
            io_loop.has_handler(fd),
            "drop={drop_it}: the fd did not linger"
        );
        let got = plain.read_until_close().await.unwrap();
        assert_eq!(&got[..5], b"data;");
        assert!(
            got[5..] == farewell()[..],
            "drop={drop_it}: the goodbye was cut"
        );
        assert!(
            !io_loop.has_handler(fd),
            "drop={drop_it}: the fd outlived its goodbye"
        );
    }
}

// A peer that never reads holds the fd no longer than `GOODBYE_TIMEOUT`: then the
// goodbye is dropped and the fd closed, and the peer reads a part and its end.
async fn a_goodbye_nobody_reads_is_dropped_at_its_deadline() {
    let io_loop = IoLoop::current().unwrap();
    let (layered, plain) = tcp_pair().await;
    let fd = layered.as_raw_fd();
    install_farewell(&layered);
    layered.close();
    assert!(layer_owes(&layered) && io_loop.has_handler(fd));
    // The deadline was set in the close: it comes first.
    io_loop
        .sleep(GOODBYE_TIMEOUT + Duration::from_secs(1))
        .await;
    assert!(!io_loop.has_handler(fd), "the fd outlived its deadline");
    assert!(layer_owes(&layered), "the goodbye cannot have gone out");
    let got = plain.read_until_close().await.unwrap();
    assert!(got.len() < farewell().len() && got[..] == farewell()[..got.len()]);
}

// A loop closed while a goodbye lingers closes its fd (nothing holds the loop in a
// cycle): the peer then reads to its end. With `close(false)` too, which keeps the
// sources of live registrations: this fd's owner is the stream, which closed.
#[test]
fn a_closed_loop_closes_a_lingering_goodbye() {
    let io_loop = IoLoop::new().unwrap();
    let mut peer = io_loop
        .run_sync(
            async {
                let (layered, peer) = squall_testing::tcp_with_std_peer().await;
                install_farewell(&layered);
                layered.close();
                assert!(layer_owes(&layered), "the goodbye went out in one try");
                peer
            },
            None,
        )
        .unwrap();
    io_loop.close(false).unwrap();
    drop(io_loop);
    peer.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got)
        .expect("the lingering fd was not closed with its loop");
    assert!(got.len() < farewell().len() && got[..] == farewell()[..got.len()]);
}

/// A layer with a handshake of its own: it greets the peer (`HELLO`), is ready once the
/// peer answers `!`, and then says `READY`; plain bytes after that.
#[derive(Default)]
struct Greeter {
    out: Vec<u8>,
    greeted: bool,
    ready: bool,
}

impl Greeter {
    fn new() -> Greeter {
        Greeter {
            out: b"HELLO".to_vec(),
            ..Greeter::default()
        }
    }
}

impl Layer for Greeter {
    fn read(&mut self, fd: &File, dst: &mut [u8]) -> io::Result<usize> {
        if !self.ready {
            if self.drive(fd)? {
                return Ok(0);
            }
            if !self.ready {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        (&*fd).read(dst)
    }

    fn write(&mut self, fd: &File, src: &[IoSlice<'_>]) -> io::Result<usize> {
        if !self.ready {
            return Ok(0);
        }
        (&*fd).write_vectored(src)
    }

    fn flush(&mut self, fd: &File) -> io::Result<()> {
        while !self.out.is_empty() {
            let n = (&*fd).write(&self.out)?;
            self.out.drain(..n);
        }
        self.greeted = true;
        Ok(())
    }

    fn drive(&mut self, fd: &File) -> io::Result<bool> {
        self.flush(fd)?;
        if self.ready {
            return Ok(false);
        }
        let mut answer = [0u8; 1];
        match (&*fd).read(&mut answer) {
            Ok(0) => Ok(true),
            Ok(_) if answer[0] == b'!' => {
                self.ready = true;
                self.out.extend_from_slice(b"READY");
                Ok(false)
            }
            Ok(_) => Err(io::Error::new(io::ErrorKind::InvalidData, "not a greeting")),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    fn has_buffered_input(&mut self) -> bool {
        false
    }

    fn is_ready(&self) -> bool {
        self.ready
    }

    fn close(&mut self) {}

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

// A layer starts when it is installed, as Tornado's SSLIOStream starts its handshake
// on the next loop iteration: its first output goes at once, and the fd handler moves
// it on as the peer answers, with nobody reading from or writing to the stream. (It
// did nothing until the stream was first used, so a peer waiting for the greeting
// waited forever.)
async fn a_layer_starts_when_installed_with_nobody_using_the_stream() {
    let (layered, peer) = tcp_pair().await;
    assert!(layered.set_layer(Box::new(Greeter::new())).is_ok());
    let io_loop = IoLoop::current().unwrap();
    let patience = Duration::from_secs(10);
    let hello = io_loop.with_timeout(patience, peer.read_bytes(5, false));
    let hello = hello.await.expect("the greeting never left").unwrap();
    assert_eq!(&hello[..], b"HELLO");
    peer.write(&b"!"[..]).await.unwrap();
    let ready = io_loop.with_timeout(patience, peer.read_bytes(5, false));
    let ready = ready.await.expect("the answer was never read").unwrap();
    assert_eq!(&ready[..], b"READY");
    assert_eq!(
        layered.with_layer(|l| l.is_ready()),
        Some(true),
        "the fd handler made it ready"
    );
    // Then plain bytes both ways.
    peer.write(&b"ping"[..]).await.unwrap();
    assert_eq!(&layered.read_bytes(4, false).await.unwrap()[..], b"ping");
    layered.write(&b"pong"[..]).await.unwrap();
    assert_eq!(&peer.read_bytes(4, false).await.unwrap()[..], b"pong");
}

squall_testing::backend_tests!(
    reads_and_writes_go_through_the_layer,
    set_layer_needs_an_idle_stream,
    a_layer_error_is_the_close_cause,
    a_goodbye_the_fd_has_no_room_for_goes_out_after_the_close,
    a_goodbye_nobody_reads_is_dropped_at_its_deadline,
    a_layer_starts_when_installed_with_nobody_using_the_stream,
);
