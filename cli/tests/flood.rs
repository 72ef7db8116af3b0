//! Resource limits (security review, issue 12 item 8): handshaken peers flooding the
//! coordinator — many connections, each beginning a Hello it never finishes and opening
//! every further stream quinn allows, each pushing as much as flow control lets it —
//! cannot make it buffer without bound, nor hold its connection slots. The coordinator runs as its own process (`cairn coordinator`), so its
//! RSS is its own; the flood comes from this test over loopback.

mod common;

use std::time::{Duration, Instant};

use cairn_coordinator::rss::sample_from;
use cairn_crypto::sign::IdentityKey;
use cairn_protocol::transport::{client_endpoint, ClientIdentity, SERVER_NAME};
use cairn_protocol::wire;
use common::{cairn, Proc};
use rand::rngs::OsRng;

/// Peers in the flood, and the streams each tries to open.
const PEERS: usize = 40;
const STREAMS: usize = 8;
/// Bytes each extra stream tries to push.
const PUSH: usize = 2 << 20;
/// The bound the coordinator's RSS growth must stay under (the flood offers
/// PEERS × STREAMS × PUSH = 640 MiB; quinn's default windows would buffer ~1.25 MB per
/// stream, ~400 MB here).
const BOUND: u64 = 96 << 20;

fn rss(pid: u32) -> u64 {
    sample_from(std::path::Path::new(&format!("/proc/{pid}/status")))
        .expect("the coordinator's /proc status")
        .rss_bytes
}

/// One peer: handshakes with its own identity and pushes on every stream it can open.
async fn flood_peer(addr: std::net::SocketAddr, fingerprint: String) {
    let Ok(cert) = ClientIdentity::new(&IdentityKey::random(&mut OsRng)) else {
        return;
    };
    let Ok(ep) = client_endpoint(&fingerprint, Some(&cert)) else {
        return;
    };
    let Ok(connecting) = ep.connect(addr, SERVER_NAME) else {
        return;
    };
    let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(10), connecting).await else {
        return;
    };
    // The stream the coordinator opened (its offer arrives on it): a frame header begun
    // and never finished in answer (a peer that is slow to say Hello).
    let Ok(Ok((mut first, _first_recv))) =
        tokio::time::timeout(Duration::from_secs(10), conn.accept_bi()).await
    else {
        return;
    };
    let header = wire::PROTOCOL_VERSION.to_be_bytes();
    let _ = first.write_all(&header).await;
    // Every further stream it can open (the coordinator grants none), each pushing as much
    // as flow control allows.
    let mut tasks = Vec::new();
    for _ in 1..STREAMS {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(Ok((mut send, _recv))) =
                tokio::time::timeout(Duration::from_secs(10), conn.open_bi()).await
            else {
                return;
            };
            let chunk = vec![0xab; 64 << 10];
            for _ in 0..PUSH / chunk.len() {
                if send.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }));
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(12), t).await;
    }
    // Held open until the test has measured.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_handshaken_peers_keeps_the_coordinator_within_its_bound() {
    let out = tempfile::tempdir().expect("tempdir");
    let mut cmd = cairn();
    cmd.args(["coordinator", "--listen", "127.0.0.1:0"])
        .args(["--synthetic", "--hidden", "none", "--participants", "3"])
        .args(["--join-timeout", "120", "--aggregation", "plain"])
        .arg("--out")
        .arg(out.path());
    let mut coord = Proc::spawn(cmd);
    let (addr, fp) = coord.address(Duration::from_secs(60));
    let addr: std::net::SocketAddr = addr.parse().expect("address");
    let pid = coord.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss(pid);

    let peers: Vec<_> = (0..PEERS)
        .map(|_| tokio::spawn(flood_peer(addr, fp.clone())))
        .collect();
    let t0 = Instant::now();
    let mut peak = before;
    while t0.elapsed() < Duration::from_secs(15) {
        peak = peak.max(rss(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in peers {
        let _ = p.await;
    }
    let growth = peak.saturating_sub(before);
    eprintln!(
        "coordinator RSS {:.1} MiB before the flood, peak {:.1} MiB (+{:.1} MiB)",
        before as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        growth as f64 / 1048576.0
    );
    assert!(
        growth < BOUND,
        "the flood grew the coordinator by {growth} bytes (bound {BOUND})"
    );
    // Still serving: the process is alive and still waiting for its participants.
    assert!(
        coord.guard.0.try_wait().expect("try_wait").is_none(),
        "the coordinator died: {:?}",
        coord.drain()
    );
}
