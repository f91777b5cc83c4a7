//! Slow and greedy clients at the connection level: a request head that never finishes, a
//! connection that says nothing, and too many connections from one address.
use std::time::Duration;

use figment::providers::Serialized;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{TestApp, spawn_app_with};

async fn app_with(header_timeout: u64, max_per_ip: u32, proxies: &[&str]) -> TestApp {
    let proxies: Vec<String> = proxies.iter().map(|p| (*p).to_owned()).collect();
    spawn_app_with(move |f| {
        f.merge(Serialized::default(
            "server.header_read_timeout_secs",
            header_timeout,
        ))
        .merge(Serialized::default(
            "server.max_connections_per_ip",
            max_per_ip,
        ))
        .merge(Serialized::default("server.trusted_proxies", proxies))
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Whether the server closes the connection within `within` (reading whatever it sends).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

async fn healthz_over(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Opens HTTP/2 on `stream` (the client preface and an empty SETTINGS frame), then sends a
/// PING every 300 ms (traffic for any idle timer) and never a request. Whether the server
/// closes the connection within `within`.
pub async fn pings_until_closed<S>(stream: &mut S, within: Duration) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const SETTINGS: [u8; 9] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0];
    const PING: [u8; 17] = [0, 0, 8, 0x6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    stream.write_all(PREFACE).await.unwrap();
    stream.write_all(&SETTINGS).await.unwrap();
    let pinging = async {
        loop {
            if stream.write_all(&PING).await.is_err() {
                return;
            }
            let mut buf = [0u8; 256];
            let next_ping = tokio::time::Instant::now() + Duration::from_millis(300);
            while let Ok(read) = tokio::time::timeout_at(next_ping, stream.read(&mut buf)).await {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(within, pinging).await.is_ok()
}

#[tokio::test]
async fn an_h2c_connection_that_never_sends_a_request_is_closed_though_it_pings() {
    let app = spawn_app_with(|f| {
        f.merge(Serialized::default("server.header_read_timeout_secs", 1))
            .merge(Serialized::default("server.http2_cleartext", true))
    })
    .await;
    let mut stream = connect(&app).await;
    // The header-read timeout to the GOAWAY, as long again to the drop, and a margin.
    assert!(
        pings_until_closed(&mut stream, Duration::from_secs(4)).await,
        "the connection is still open"
    );
}

#[tokio::test]
async fn a_request_head_that_never_finishes_is_cut_off() {
    let app = app_with(1, 64, &[]).await;
    // Headers that stop short of the blank line.
    let mut stalled = connect(&app).await;
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut stalled, Duration::from_secs(5)).await);
    // Past the first line at once, then headers dripped a byte at a time: the traffic does
    // not extend the deadline.
    let mut dripping = connect(&app).await;
    dripping
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    let drip = async {
        for byte in b"x-slow: 1\r\n".iter().cycle() {
            if dripping.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(5), drip)
            .await
            .is_ok(),
        "the dripping connection was closed"
    );
    // A connection that sends nothing at all.
    let mut silent = connect(&app).await;
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    // Prompt clients are served as before.
    let mut prompt = connect(&app).await;
    assert!(healthz_over(&mut prompt).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn one_address_holds_a_limited_number_of_connections() {
    let app = app_with(10, 3, &[]).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect(&app).await);
    }
    let mut extra = connect(&app).await;
    let mut answer = String::new();
    extra.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("application/problem+json"));
    // A closed connection gives its slot back.
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect(&app).await;
    assert!(healthz_over(&mut again).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_trusted_proxy_is_not_capped_since_it_carries_many_clients() {
    let app = app_with(10, 1, &["127.0.0.1/32"]).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect(&app).await);
    }
    for stream in &mut open {
        assert!(healthz_over(stream).await.starts_with("HTTP/1.1 200"));
    }
}
