//! A line-based chat server: every line a client sends goes to every other client.
//!
//! ```text
//! cargo run -p squall-tcpserver --example chat -- --port 8889
//! ```
//!
//! Then connect two terminals with `nc 127.0.0.1 8889` and type. A client that reads
//! too slowly (more than 1 MiB waiting for it) is disconnected rather than buffered
//! without bound.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::rc::Rc;

use bytes::Bytes;
use squall_ioloop::IoLoop;
use squall_iostream::{IoStream, StreamError};
use squall_tcpserver::{PeerAddr, TcpServer};

/// Everyone connected, by id.
#[derive(Default)]
struct Room {
    next_id: u64,
    members: BTreeMap<u64, IoStream>,
}

impl Room {
    /// Queues `line` for everyone but `from` and starts sending it.
    fn broadcast(&self, from: u64, line: Bytes) {
        for (&id, stream) in &self.members {
            if id == from {
                continue;
            }
            // write() queues and sends at once; we do not wait for slow readers.
            if let Err(StreamError::WriteBufferFull { .. }) = stream.write_buffered(line.clone()) {
                log::info!("client {id} is too slow; disconnecting it");
                stream.close();
                continue;
            }
            drop(stream.flush());
        }
    }
}

async fn member(
    room: Rc<RefCell<Room>>,
    stream: IoStream,
    addr: PeerAddr,
) -> Result<(), StreamError> {
    stream.set_max_write_buffer_size(Some(1024 * 1024));
    let id = {
        let mut r = room.borrow_mut();
        r.next_id += 1;
        let id = r.next_id;
        r.members.insert(id, stream.clone());
        id
    };
    stream
        .write(format!(
            "welcome, {addr}; {} here\n",
            room.borrow().members.len()
        ))
        .await?;
    room.borrow()
        .broadcast(id, Bytes::from(format!("* {addr} joined\n")));
    let result = loop {
        match stream.read_until(b"\n", Some(4096)).await {
            Ok(line) => {
                let mut msg = format!("{addr}: ").into_bytes();
                msg.extend_from_slice(&line);
                room.borrow().broadcast(id, Bytes::from(msg));
            }
            Err(StreamError::Closed(c)) if c.is_peer_gone() => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    room.borrow_mut().members.remove(&id);
    room.borrow()
        .broadcast(id, Bytes::from(format!("* {addr} left\n")));
    result
}

fn main() -> ExitCode {
    let mut port: u16 = 8889;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().map(|v| v.parse::<u16>())) {
            ("--port", Some(Ok(p))) => port = p,
            _ => {
                eprintln!("usage: chat [--port PORT]");
                return ExitCode::from(2);
            }
        }
    }
    let io_loop = match IoLoop::new() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("chat: cannot create the loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let room = Rc::new(RefCell::new(Room::default()));
    let server = TcpServer::with_io_loop(&io_loop, move |stream, addr| {
        member(room.clone(), stream, addr)
    });
    match server.listen(port, "127.0.0.1") {
        Ok(addrs) => println!("chat: listening on {addrs:?}"),
        Err(e) => {
            eprintln!("chat: cannot listen on port {port}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = io_loop.start() {
        eprintln!("chat: loop failed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
