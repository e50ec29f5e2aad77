//! The local server against slow and idle clients, in process and as the `ingest` binary with
//! few file descriptors. Everything listens on 127.0.0.1; every wait is bounded.

use std::net::SocketAddr;

use eventlake_ingest::server::{ServerLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// Reads until the peer closes or `limit` passes; the bytes read, and whether it closed.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// `GET /healthz` on a new connection; the status line, within `limit`.
async fn healthz(addr: SocketAddr, limit: Duration) -> String {
    tokio::time::timeout(limit, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut got = String::new();
        let _ = s.read_to_string(&mut got).await;
        got.lines().next().unwrap_or("").to_owned()
    })
    .await
    .unwrap_or_else(|_| format!("no answer within {limit:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_timed_out_and_healthz_answers_meanwhile() {
    let e = env_with(
        Limits {
            body_timeout: Duration::from_secs(1),
            ..test_limits()
        },
        "lake",
        Some("dlq"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ServerLimits {
        header_timeout: Duration::from_secs(1),
        stall_timeout: Duration::from_secs(3),
        max_connections: 8,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(e.state.clone()), limits, async {
        let _ = stopped.await;
    }));

    // More idle connections than the server holds, a client sending its headers a byte at a
    // time, and one whose body stops half-way.
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let drip = tokio::spawn(async move {
        for b in b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: yes" {
            if slow.write_all(&[*b]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    });
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"events\":",
            e.token_a
        )
        .as_bytes(),
    )
    .await
    .unwrap();

    assert_eq!(
        healthz(addr, Duration::from_secs(5)).await,
        "HTTP/1.1 200 OK"
    );

    // The body that stopped is answered 408 after the body timeout.
    let (answer, closed) = read_until_closed(&mut half, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(closed || answer.contains("request_timeout"));
    // The slow header sender is cut off by the header timeout (1 s), long before it is done.
    assert!(
        tokio::time::timeout(Duration::from_secs(8), drip)
            .await
            .unwrap()
            .unwrap(),
        "the slow client could send all its headers"
    );
    // Idle connections are closed: for room, or by the header timeout.
    for mut s in idle {
        let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(closed);
    }
    assert_eq!(
        healthz(addr, Duration::from_secs(5)).await,
        "HTTP/1.1 200 OK"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .unwrap()
        .unwrap();
}

/// The server process, stopped when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_with_64_descriptors_answers_healthz_behind_70_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_ingest");
    let tokens = dir.path().join("tokens.json");
    let out = std::process::Command::new(bin)
        .args(["--tokens", tokens.to_str().unwrap()])
        .args(["token", "create", "--team", "checkout"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 64 && exec \"$@\"", "sh", bin])
        .args(["--tokens", tokens.to_str().unwrap()])
        .args(["--lake", dir.path().join("lake").to_str().unwrap()])
        .args(["serve", "--addr", "127.0.0.1:0", "--header-timeout", "60s"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Process(child);
    let addr: SocketAddr = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let line = lines.next().unwrap().unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        // Keep draining, so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        addr
    })
    .await
    .unwrap()
    .parse()
    .unwrap();

    let mut idle = Vec::new();
    for _ in 0..70 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    assert_eq!(
        healthz(addr, Duration::from_secs(10)).await,
        "HTTP/1.1 200 OK"
    );
    drop(idle);
    drop(server);
}
