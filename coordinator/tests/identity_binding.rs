//! The coordinator's driver binds each connection to the identity key of its TLS client
//! certificate: a participant whose certificate is allow-listed but whose Hello names
//! another key is refused with a clear reason and its connection closed; one whose Hello
//! names its certificate's key is welcomed.

use std::time::{Duration, Instant};

use cairn_coordinator::{run_job, Progress};
use cairn_crypto::sign::{IdentityKey, IdentityPublic};
use cairn_datasets::{synthetic, LoadOptions};
use cairn_protocol::enrolment::Enrolment;
use cairn_protocol::job::{Job, JobConfig};
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::round::Aggregation;
use cairn_protocol::transport::{
    client_endpoint, read_frame, server_endpoint, write_frame, ClientIdentity, ServerIdentity,
    SERVER_NAME,
};
use cairn_protocol::wire::{self, Hello, ToCoordinator, ToParticipant, MAX_FRAME_BYTES};
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(20);

/// Connects with `cert_key`'s certificate, says Hello as `hello_key`, returns the answer.
async fn hello(
    addr: std::net::SocketAddr,
    fingerprint: &str,
    cert_key: &IdentityKey,
    hello_key: IdentityPublic,
) -> ToParticipant {
    let cert = ClientIdentity::new(cert_key).expect("certificate");
    let ep = client_endpoint(fingerprint, Some(&cert)).expect("endpoint");
    let conn = ep
        .connect(addr, SERVER_NAME)
        .expect("connect")
        .await
        .expect("handshake");
    // The coordinator opens the stream and speaks first: the job's offer.
    let (mut send, mut recv) = conn.accept_bi().await.expect("stream");
    let offer = read_frame(&mut recv, MAX_FRAME_BYTES)
        .await
        .expect("read")
        .expect("the offer");
    assert!(matches!(
        wire::decode_body::<ToParticipant>(&offer).expect("decode"),
        ToParticipant::Offer(_)
    ));
    let msg = ToCoordinator::Hello(Hello {
        version: wire::PROTOCOL_VERSION,
        name: "p".into(),
        n_rows: 10,
        n_features: 3,
        identity: hello_key,
    });
    write_frame(&mut send, &wire::encode(&msg).expect("encode"))
        .await
        .expect("write");
    let body = read_frame(&mut recv, MAX_FRAME_BYTES)
        .await
        .expect("read")
        .expect("an answer");
    wire::decode_body(&body).expect("decode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_naming_another_key_than_the_certificate_is_refused() {
    let (alice, bob) = (
        IdentityKey::from_seed(&[1; 32]),
        IdentityKey::from_seed(&[2; 32]),
    );
    let data = synthetic(200, 3, 1, &LoadOptions::default());
    let cfg = JobConfig {
        privacy: None,
        job_id: "binding".into(),
        model: ModelSpec::logistic(3),
        rounds: 1,
        participants: 2,
        min_participants: 1,
        hyper: HyperParams::default(),
        server: cairn_protocol::server_opt::ServerOptimizer::FedAvg { lr: 1.0 },
        round_timeout: Duration::from_secs(5),
        join_timeout: Duration::from_secs(5),
        seed: 1,
        aggregation: Aggregation::Plain,
        proof: None,
        data: None,
    };
    let initial = cfg.model.init_params(1);
    let server = ServerIdentity::generate().expect("identity");
    // Both keys are listed: the refusal comes from the binding, not the allow-list.
    let endpoint = server_endpoint(
        "127.0.0.1:0".parse().expect("addr"),
        &server,
        &Enrolment::allow([alice.public(), bob.public()]),
    )
    .expect("bind");
    let addr = endpoint.local_addr().expect("addr");
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let job = Job::new(cfg, initial, Instant::now());
    let test = data.test.clone();
    let coordinator = tokio::spawn(async move {
        run_job(endpoint, job, &test, ptx, std::future::pending(), None).await
    });

    // Alice's certificate, Bob's key in the Hello: refused, naming both.
    let answer = tokio::time::timeout(
        LIMIT,
        hello(addr, &server.fingerprint, &alice, bob.public()),
    )
    .await
    .expect("in time");
    let ToParticipant::Rejected { reason } = answer else {
        panic!("expected a refusal, got {answer:?}")
    };
    assert!(
        reason.contains(&hex::encode(bob.public().0))
            && reason.contains(&hex::encode(alice.public().0))
            && reason.contains("TLS certificate"),
        "{reason}"
    );

    // Alice as herself: welcomed.
    let answer = tokio::time::timeout(
        LIMIT,
        hello(addr, &server.fingerprint, &alice, alice.public()),
    )
    .await
    .expect("in time");
    assert!(matches!(answer, ToParticipant::Welcome(_)), "{answer:?}");

    let mut refused = Vec::new();
    while let Ok(p) = prx.try_recv() {
        if let Progress::Refused { reason, .. } = p {
            refused.push(reason);
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    coordinator.abort();
}
