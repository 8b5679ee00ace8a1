//! The WebSocket protocol on arbitrary bytes in arbitrary splits, as a server and as a
//! client, with and without permessage-deflate: never a panic, never an event after an
//! error, and any split gives the same events and the same verdict as the whole input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use squall_websocket::{DeflateParams, Event, Protocol, ProtocolError, Role};

fn protocol(flags: u8) -> Protocol {
    let role = if flags & 1 == 0 { Role::Server } else { Role::Client };
    let deflate = (flags & 2 != 0).then(|| {
        let params = DeflateParams {
            server_no_context_takeover: flags & 4 != 0,
            client_no_context_takeover: flags & 8 != 0,
            server_max_window_bits: 9 + (flags >> 4) % 7,
            client_max_window_bits: 9 + (flags >> 4) % 7,
        };
        (params, 1)
    });
    // A small cap, so that inflation bombs are caught quickly.
    Protocol::new(role, deflate, 4096)
}

fn decode(proto: &mut Protocol, input: &[u8], cuts: &[u8]) -> (Vec<Event>, Option<ProtocolError>) {
    let mut events = Vec::new();
    let mut rest = input;
    let mut cuts = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = (usize::from(*cuts.next().unwrap_or(&255)) + 1).min(rest.len());
        let mut piece = &rest[..n];
        rest = &rest[n..];
        loop {
            match proto.decode(&mut piece) {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    (events, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else { return };
    let (cuts, input) = data.split_at(usize::from(flags % 5).min(data.len()));
    let whole = decode(&mut protocol(flags), input, &[255]);
    let split = decode(&mut protocol(flags), input, if cuts.is_empty() { &[0] } else { cuts });
    assert_eq!(whole, split);
});
