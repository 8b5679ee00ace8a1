//! A chat room (Tornado's websocket chat demo): every message posted reaches everyone in
//! the room, and newcomers get the last 200.
//!
//! ```text
//! cargo run -p squall-websocket --example ws_chat -- [--port 8888]
//! ```
//!
//! Then open <http://127.0.0.1:8888/> in two browser windows: the page is served by the
//! same server, at `/`, and talks to the room at `/chatsocket`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::process::ExitCode;
use std::rc::Rc;

use squall_httpserver::{HttpServer, Response};
use squall_ioloop::IoLoop;
use squall_websocket::{websocket_response, Message, WebSocket, WebSocketConfig, WebSocketHandler};

/// The page, embedded in the binary.
const PAGE: &str = include_str!("ws_chat.html");
/// How many past messages a newcomer gets.
const CACHE_SIZE: usize = 200;
/// The longest message accepted.
const MAX_MESSAGE: usize = 4096;

/// The room: who is in it, and what was said last.
#[derive(Default)]
struct Room {
    members: RefCell<Vec<(u64, WebSocket)>>,
    next_id: std::cell::Cell<u64>,
    cache: RefCell<VecDeque<String>>,
}

impl Room {
    fn say(&self, text: String) {
        // A member whose queue is full is dropped by write_message; the rest go on.
        for (_, member) in self.members.borrow().iter() {
            let _ = member.write_message(text.as_str());
        }
        let mut cache = self.cache.borrow_mut();
        if cache.len() == CACHE_SIZE {
            cache.pop_front();
        }
        cache.push_back(text);
    }
}

/// One member's connection.
struct Member {
    room: Rc<Room>,
    id: u64,
}

impl WebSocketHandler for Member {
    async fn open(&mut self, ws: &WebSocket) {
        for line in self.room.cache.borrow().iter() {
            let _ = ws.write_message(line.as_str());
        }
        self.id = self.room.next_id.get();
        self.room.next_id.set(self.id + 1);
        self.room.members.borrow_mut().push((self.id, ws.clone()));
    }

    async fn on_message(&mut self, _ws: &WebSocket, message: Message) {
        if let Message::Text(text) = message {
            let text = text.trim();
            if !text.is_empty() {
                self.room.say(text.to_owned());
            }
        }
    }

    fn on_close(&mut self, _ws: &WebSocket) {
        self.room
            .members
            .borrow_mut()
            .retain(|(id, _)| *id != self.id);
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let port: u16 = match (args.next().as_deref(), args.next()) {
        (None, _) => 8888,
        (Some("--port"), Some(p)) if p.parse::<u16>().is_ok() => p.parse().unwrap_or(8888),
        _ => {
            eprintln!("usage: ws_chat [--port PORT]");
            return ExitCode::from(2);
        }
    };
    let io_loop = match IoLoop::new() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ws_chat: {e}");
            return ExitCode::FAILURE;
        }
    };
    let serve = async move {
        let room = Rc::new(Room::default());
        let mut config = WebSocketConfig::default();
        config.max_message_size = MAX_MESSAGE;
        let mut server = HttpServer::new(move |req| {
            let room = room.clone();
            let config = config.clone();
            async move {
                match req.path() {
                    "/" => Response::html(PAGE),
                    "/chatsocket" => websocket_response(&req, &config, Member { room, id: 0 }),
                    _ => Response::text("not found").with_status(http::StatusCode::NOT_FOUND),
                }
            }
        });
        let addr = server.listen(port, "127.0.0.1")?;
        println!("ws_chat: open http://{addr}/ in two browser windows");
        std::future::pending::<std::io::Result<()>>().await
    };
    match io_loop.run_sync(serve, None) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("ws_chat: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ws_chat: {e}");
            ExitCode::FAILURE
        }
    }
}
