//! The ecosystem's I/O traits over TLS: a TLS stream is an `IoStream` with a layer, so
//! tokio's and futures-io's `AsyncRead`/`AsyncWrite` (squall-iostream's `tokio` and
//! `futures-io` features) carry plaintext through rustls. Here tokio-util's
//! `LinesCodec` runs on both ends of a TLS connection.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Pki;
use futures_util::{SinkExt, StreamExt};
use squall_ioloop::IoLoop;
use squall_iostream::IoStream;
use squall_tcpserver::{TcpClient, TcpServer};
use squall_tls::{TlsAcceptor, TlsConnector};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec};

#[test]
fn lines_codec_both_ends_of_a_tls_connection() {
    let pki = Pki::localhost();
    let answers = IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                // The server answers each line with its length, through the codec.
                let server = TcpServer::new(|stream: IoStream, _| async move {
                    let mut lines = FramedRead::new(stream.clone(), LinesCodec::new());
                    let mut out = FramedWrite::new(stream, LinesCodec::new());
                    while let Some(Ok(line)) = lines.next().await {
                        out.send(format!("{} {}", line.len(), line)).await.unwrap();
                    }
                })
                .unwrap();
                server.set_stream_setup(Arc::new(TlsAcceptor::new(pki.server_config())));
                let addr = server.listen(0, "127.0.0.1").unwrap()[0];

                let client = TlsConnector::new(pki.client_config())
                    .connect(&TcpClient::new(), "localhost", addr.port(), None, None)
                    .await
                    .unwrap();
                let mut to_server = FramedWrite::new(client.clone(), LinesCodec::new());
                let mut from_server = FramedRead::new(client, LinesCodec::new());
                let mut answers = Vec::new();
                for word in ["tls", "through", "the tokio traits"] {
                    to_server.send(word).await.unwrap();
                    answers.push(from_server.next().await.unwrap().unwrap());
                }
                answers
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    assert_eq!(answers, ["3 tls", "7 through", "16 the tokio traits"]);
}
