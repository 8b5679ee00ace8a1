//! tokio echo server (current-thread runtime), the peer of squall's echo example in
//! `cargo xtask bench`.
//!
//! `tokio-echo [--port P]` writes back every byte it reads, on every connection, until
//! the peer closes. It prints `listening on ADDR` once bound and runs until killed.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

async fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            if let Err(e) = echo(stream).await {
                if e.kind() != std::io::ErrorKind::ConnectionReset {
                    eprintln!("tokio-echo: connection: {e}");
                }
            }
        });
    }
}

fn main() {
    let mut port = 0u16;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match (flag.as_str(), it.next().map(|v| v.parse::<u16>())) {
            ("--port", Some(Ok(p))) => port = p,
            _ => {
                eprintln!("usage: tokio-echo [--port P]");
                std::process::exit(2);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("tokio-echo: runtime: {e}");
            std::process::exit(1);
        });
    if let Err(e) = rt.block_on(serve(port)) {
        eprintln!("tokio-echo: {e}");
        std::process::exit(1);
    }
}
