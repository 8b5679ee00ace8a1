//! `wss://`: squall-websocket's client against its server over TLS (the server's TLS
//! from `TlsAcceptor`, a self-signed certificate the client is told to trust). Here
//! rather than in squall-websocket, whose `tls` feature is off by default.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::PrivateKeyDer;
use squall_httpserver::{HttpServer, HttpServerConfig};
use squall_ioloop::IoLoop;
use squall_tls::{certified_key, TlsAcceptor, TlsClientConfig, TlsServerConfig};
use squall_websocket::{
    websocket_connect, websocket_response_with, ClientOptions, DeflateConfig, Message,
    WebSocketConfig, WebSocketError,
};

#[test]
fn wss_echo_with_a_verified_certificate() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der()).unwrap();
    let server_tls = TlsServerConfig::builder()
        .certificate(certified_key(vec![generated.cert.der().clone()], key).unwrap())
        .build()
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(generated.cert.der().clone()).unwrap();
    let client_tls = TlsClientConfig::with_roots(roots).unwrap();

    IoLoop::new()
        .unwrap()
        .run_sync(
            async move {
                let mut ws_config = WebSocketConfig::default();
                ws_config.compression = Some(DeflateConfig::default());
                let config = HttpServerConfig {
                    stream_setup: Some(Arc::new(TlsAcceptor::new(server_tls))),
                    ..HttpServerConfig::default()
                };
                let mut server = HttpServer::new(move |req| {
                    let ws_config = ws_config.clone();
                    async move {
                        websocket_response_with(&req, &ws_config, |ws| async move {
                            while let Some(m) = ws.next().await {
                                if ws.send(m).await.is_err() {
                                    break;
                                }
                            }
                        })
                    }
                })
                .with_config(config);
                let addr = server.listen(0, "127.0.0.1").unwrap();
                let url = format!("wss://localhost:{}/", addr.port());

                let mut options = ClientOptions::default();
                options.config.compression = Some(DeflateConfig::default());
                options.tls = Some(client_tls);
                let ws = websocket_connect(&url, &options).await.unwrap();
                for m in [
                    Message::Text("over TLS".into()),
                    Message::Binary(vec![7; 100_000]),
                ] {
                    ws.send(m.clone()).await.unwrap();
                    assert_eq!(ws.next().await, Some(m));
                }
                ws.close(None, "").unwrap();
                assert_eq!(ws.next().await, None);

                // Without the certificate in its trust store, the client refuses.
                let untrusting = ClientOptions::default();
                match websocket_connect(&url, &untrusting).await {
                    Err(WebSocketError::Io(_)) => {}
                    other => panic!("{other:?}"),
                }
            },
            Some(Duration::from_secs(60)),
        )
        .unwrap();
}
