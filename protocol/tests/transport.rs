//! Mutual TLS over real QUIC on loopback: a participant's certificate carries its Ed25519
//! identity key; the coordinator admits only allow-listed keys (or any key when open),
//! refuses a client without a certificate, and hands the driver the connection's key.

use std::net::SocketAddr;
use std::time::Duration;

use cairn_crypto::sign::{IdentityKey, IdentityPublic};
use cairn_protocol::enrolment::Enrolment;
use cairn_protocol::transport::{
    client_endpoint, peer_identity, read_frame, server_endpoint, write_frame, ClientIdentity,
    ServerIdentity, TransportError, SERVER_NAME,
};
use cairn_protocol::wire::{self, ToCoordinator, MAX_FRAME_BYTES};
use rand::SeedableRng;

const LIMIT: Duration = Duration::from_secs(20);

fn key(seed: u64) -> IdentityKey {
    IdentityKey::random(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

/// A coordinator that answers one frame per connection with the connection's identity key
/// (hex), and reports each handshake's outcome.
struct Server {
    addr: SocketAddr,
    fingerprint: String,
    outcomes: tokio::sync::mpsc::UnboundedReceiver<Result<IdentityPublic, String>>,
    _endpoint: quinn::Endpoint,
}

fn start(enrolment: Enrolment) -> Server {
    let identity = ServerIdentity::generate().expect("identity");
    let endpoint =
        server_endpoint("127.0.0.1:0".parse().expect("addr"), &identity, &enrolment).expect("bind");
    let addr = endpoint.local_addr().expect("addr");
    let (tx, outcomes) = tokio::sync::mpsc::unbounded_channel();
    let ep = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = ep.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let conn = match incoming.await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(TransportError::from(e).to_string()));
                        return;
                    }
                };
                let id = match peer_identity(&conn) {
                    Ok(id) => id,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = tx.send(Ok(id));
                // The coordinator opens the connection's stream and speaks first.
                if let Ok((mut send, _recv)) = conn.open_bi().await {
                    let reply = ToCoordinator::Leave {
                        reason: hex::encode(id.0),
                    };
                    let frame = wire::encode(&reply).expect("encode");
                    let _ = write_frame(&mut send, &frame).await;
                    let _ = send.finish();
                    let _ = send.stopped().await;
                }
            });
        }
    });
    Server {
        addr,
        fingerprint: identity.fingerprint,
        outcomes,
        _endpoint: endpoint,
    }
}

/// Connects as `identity` (or without a certificate) and reads the coordinator's first
/// frame: the identity key it saw, in hex.
async fn exchange(
    server: &Server,
    identity: Option<&IdentityKey>,
) -> Result<String, TransportError> {
    let cert = identity.map(|k| ClientIdentity::new(k).expect("certificate"));
    let ep = client_endpoint(&server.fingerprint, cert.as_ref())?;
    let conn = ep.connect(server.addr, SERVER_NAME)?.await?;
    let (_send, mut recv) = conn.accept_bi().await?;
    let body = read_frame(&mut recv, MAX_FRAME_BYTES)
        .await?
        .ok_or(TransportError::NoPeerCertificate)?;
    conn.close(0u32.into(), b"bye");
    match wire::decode_body::<ToCoordinator>(&body)? {
        ToCoordinator::Leave { reason } => Ok(reason),
        other => panic!("unexpected {other:?}"),
    }
}

async fn outcome(server: &mut Server) -> Result<IdentityPublic, String> {
    tokio::time::timeout(LIMIT, server.outcomes.recv())
        .await
        .expect("the server saw the handshake")
        .expect("server running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_listed_key_connects_and_the_driver_learns_it() {
    let (a, b) = (key(1), key(2));
    let mut server = start(Enrolment::allow([a.public(), b.public()]));
    let seen = tokio::time::timeout(LIMIT, exchange(&server, Some(&a)))
        .await
        .expect("in time")
        .expect("listed key connects");
    assert_eq!(seen, hex::encode(a.public().0));
    assert_eq!(outcome(&mut server).await, Ok(a.public()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlisted_key_is_refused_at_the_handshake_with_its_key_named() {
    let (listed, stranger) = (key(3), key(4));
    let mut server = start(Enrolment::allow([listed.public()]));
    let err = tokio::time::timeout(LIMIT, exchange(&server, Some(&stranger)))
        .await
        .expect("in time")
        .expect_err("refused");
    let named = hex::encode(stranger.public().0);
    match &err {
        TransportError::Refused { reason, .. } => {
            assert!(
                reason.contains(&named) && reason.contains("allow-list"),
                "{reason}"
            )
        }
        other => panic!("not a handshake refusal: {other:?}"),
    }
    let seen = outcome(&mut server)
        .await
        .expect_err("refused on the server");
    assert!(seen.contains("refused") && seen.contains(&named), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused() {
    let mut server = start(Enrolment::Open);
    let err = tokio::time::timeout(LIMIT, exchange(&server, None))
        .await
        .expect("in time")
        .expect_err("refused");
    // TLS 1.3's certificate_required alert (116).
    assert!(
        matches!(err, TransportError::Refused { alert: 116, .. }),
        "{err:?}"
    );
    assert!(outcome(&mut server).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_enrolment_admits_a_fresh_key_and_still_reads_it() {
    let fresh = key(5);
    let mut server = start(Enrolment::Open);
    let seen = tokio::time::timeout(LIMIT, exchange(&server, Some(&fresh)))
        .await
        .expect("in time")
        .expect("open enrolment admits any key");
    assert_eq!(seen, hex::encode(fresh.public().0));
    assert_eq!(outcome(&mut server).await, Ok(fresh.public()));
}

#[test]
fn the_client_certificate_carries_the_identity_key() {
    let k = key(6);
    let id = ClientIdentity::new(&k).expect("certificate");
    assert_eq!(id.public(), k.public());
    assert_eq!(
        cairn_protocol::enrolment::identity_from_cert(id.certificate()),
        Ok(k.public())
    );
    assert!(!format!("{id:?}").contains(&hex::encode(*k.to_seed())));
}

#[tokio::test]
async fn a_saved_server_identity_keeps_its_fingerprint_and_serves_pinned_clients() {
    let identity = ServerIdentity::generate().expect("identity");
    let text = identity.to_text();
    let again = ServerIdentity::from_text(&text).expect("read back");
    assert_eq!(again.fingerprint, identity.fingerprint);
    // A coordinator restarted with the saved identity accepts a client pinned to it.
    let endpoint = server_endpoint(
        "127.0.0.1:0".parse().expect("addr"),
        &again,
        &Enrolment::Open,
    )
    .expect("bind");
    let addr = endpoint.local_addr().expect("addr");
    let ep = endpoint.clone();
    tokio::spawn(async move {
        if let Some(incoming) = ep.accept().await {
            let _ = incoming.await;
        }
    });
    let client = client_endpoint(
        &identity.fingerprint,
        Some(&ClientIdentity::new(&key(3)).expect("client")),
    )
    .expect("client endpoint");
    let conn = tokio::time::timeout(LIMIT, client.connect(addr, SERVER_NAME).expect("connect"))
        .await
        .expect("in time");
    assert!(conn.is_ok(), "{conn:?}");

    // Damaged text is a clear error, not a panic.
    for bad in ["", "cert zz\nkey 00\n", "cert 00\n"] {
        let e = ServerIdentity::from_text(bad).expect_err("refused");
        assert!(e.to_string().contains("server identity"), "{e}");
    }
    let no_key = format!(
        "{}key 0011\n",
        text.lines().next().expect("cert line").to_owned() + "\n"
    );
    assert!(ServerIdentity::from_text(&no_key).is_err());
}
