//! `LoopLogger` installed as the process's logger (its own test binary: a process has
//! one logger): a panic's message comes after the lines logged before it.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::LevelFilter;
use squall_ioloop::logger::{Filter, LoopLogger};
use squall_ioloop::IoLoop;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn buffered_lines_are_written_before_a_panic_message() {
    let cap = Capture::default();
    // Stands for the default hook, which prints the panic message: it appends a marker
    // to the same sink, so the order can be read back.
    let marker = cap.clone();
    std::panic::set_hook(Box::new(move |_| {
        marker
            .0
            .lock()
            .unwrap()
            .extend_from_slice(b"<panic message>\n");
    }));
    let filter = Filter::new(LevelFilter::Info).directive("noisy", LevelFilter::Off);
    LoopLogger::with_sink(filter, cap.clone()).init().unwrap();
    assert_eq!(log::max_level(), LevelFilter::Info);
    assert!(
        LoopLogger::with_sink(Filter::new(LevelFilter::Info), io::sink())
            .init()
            .is_err(),
        "a second logger is refused"
    );

    let io_loop = IoLoop::new().unwrap();
    io_loop
        .run_sync(
            async {
                log::info!(target: "app", "first");
                log::info!(target: "noisy", "filtered out");
                let l = IoLoop::current().unwrap();
                l.add_callback(|| {
                    log::info!(target: "app", "second");
                    panic!("boom");
                });
                squall_ioloop::sleep(Duration::from_millis(1)).await;
                log::info!(target: "app", "after");
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    let _ = std::panic::take_hook();

    // The byte fast path: same filter, same buffer, same line shape.
    assert!(squall_ioloop::logger::log_bytes(
        log::Level::Info,
        "app",
        |b| b.extend_from_slice(b"raw bytes")
    ));
    assert!(
        squall_ioloop::logger::log_bytes(log::Level::Info, "noisy", |_| unreachable!()),
        "filtered out, and handled: the caller must not log it again"
    );
    assert!(squall_ioloop::logger::log_bytes(
        log::Level::Debug,
        "app",
        |_| unreachable!()
    ));
    // The cheap check agrees with the filter, across targets and levels asked in turn
    // (the thread remembers one answer), and follows a lowered `max_level`.
    use squall_ioloop::logger::enabled_static;
    for _ in 0..2 {
        assert_eq!(enabled_static(log::Level::Info, "app"), Some(true));
        assert_eq!(enabled_static(log::Level::Info, "noisy"), Some(false));
        assert_eq!(enabled_static(log::Level::Debug, "app"), Some(false));
        assert_eq!(enabled_static(log::Level::Warn, "app"), Some(true));
    }
    log::set_max_level(LevelFilter::Warn);
    assert_eq!(enabled_static(log::Level::Info, "app"), Some(false));
    assert_eq!(enabled_static(log::Level::Warn, "app"), Some(true));
    log::set_max_level(LevelFilter::Info);
    assert_eq!(enabled_static(log::Level::Info, "app"), Some(true));
    let text = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        ["[INFO app] first", "[INFO app] second", "<panic message>"],
        "{text}"
    );
    assert!(lines[3].starts_with("[ERROR squall_ioloop"), "{text}");
    assert!(lines[3].contains("boom"), "{text}");
    assert_eq!(
        lines[4..],
        ["[INFO app] after", "[INFO app] raw bytes"],
        "{text}"
    );
}
