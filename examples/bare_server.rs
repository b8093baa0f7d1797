//! The throughput baseline for `loadtest/bench.sh`: a bare axum server that answers every GET with the same
//! bytes and headers the gateway sends for a warm L1 hit (a stored gzip body), and nothing else — no
//! middleware, no cache lookup, no pipeline. The gateway's warm-hit throughput is reported as a fraction of
//! this server's, measured with the same load generator in the same run.
//!
//! Usage: `bare_server ADDR BODY_FILE` (BODY_FILE holds the gzip body to serve). Uses the gateway's
//! allocator (mimalloc).

use bytes::Bytes;

#[path = "support/bare.rs"]
mod bare;

/// The same allocator as the gateway binary, so that the baseline differs from it only by the gateway's work.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_server ADDR BODY_FILE");
        std::process::exit(2);
    };
    let body = Bytes::from(std::fs::read(&file)?);
    let app = bare::router(body);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare_server listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
