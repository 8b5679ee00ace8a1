//! No allocation per request on the keep-alive and pipelined `GET` path of a hello
//! server, once warm: a counting global allocator watches the server's thread while a
//! client sends 10,000 requests one at a time and 10,000 more in batches of 16.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use squall_httpserver::{HttpServer, Response};

/// Counts the allocations (and reallocations) made on threads that opted in.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if WATCHED.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to the system allocator with the caller's arguments;
// counting touches only a const thread-local `Cell` and an atomic, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`; `ptr` came from this allocator, which is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const HELLO: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: allocations\r\n\r\n";

/// Sends `batches` writes of `depth` requests each, reading every response.
fn run(client: &mut common::Client, batches: usize, depth: usize) {
    let batch = HELLO.repeat(depth);
    for _ in 0..batches {
        client.send(&batch);
        for _ in 0..depth {
            let resp = client.read_response_to(false);
            assert_eq!(resp.status, 200);
            assert_eq!(resp.body, b"Hello, world!");
        }
    }
}

#[test]
fn hello_allocates_nothing_per_request_once_warm() {
    let server = common::serve(|| {
        WATCHED.set(true);
        HttpServer::new(|_req| async { Response::text("Hello, world!") })
    });
    let mut client = server.client();
    let mut made_all = Vec::new();
    for (name, depth) in [("keep-alive", 1), ("pipelined 16", 16)] {
        // Warm-up: first buffers, pools, the loop's slots, the Date cache.
        run(&mut client, 2_000 / depth, depth);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        run(&mut client, 10_000 / depth, depth);
        let made = ALLOCATIONS.load(Ordering::Relaxed) - before;
        println!("{name}: {made} allocations for 10,000 requests");
        made_all.push((name, made));
    }
    for (name, made) in made_all {
        assert_eq!(made, 0, "{name}: {made} allocations for 10,000 requests");
    }
    drop(client);
}
