//! Connected stream pairs on loopback.

use std::net::TcpListener;

use squall_iostream::IoStream;

/// A connected TCP pair on loopback, both on the current loop: `(server side, client
/// side)`.
///
/// # Panics
/// If loopback cannot be bound or connected (a broken test machine).
pub async fn tcp_pair() -> (IoStream, IoStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let client = IoStream::connect(addr).await.expect("connect");
    let (conn, _) = listener.accept().expect("accept");
    (IoStream::new(conn).expect("wrap"), client)
}

/// A TCP stream on the current loop and a plain blocking std socket as its peer.
///
/// # Panics
/// As [`tcp_pair`].
pub async fn tcp_with_std_peer() -> (IoStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let client = IoStream::connect(addr).await.expect("connect");
    let (conn, _) = listener.accept().expect("accept");
    (client, conn)
}
