//! `cairn job status` of a job cancelled while a round was in flight: the round is named as
//! where the job stopped, never as in flight (#14 item 5). The admin interface runs in this
//! process on loopback over a real store; the command is the real binary.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use cairn_coordinator::admin::{self, AdminState, HolderBoard, JobPlan};
use cairn_coordinator::store::{RoundCommit, Store};
use cairn_coordinator::RoundRecord;
use cairn_protocol::metrics::Metrics;
use cairn_protocol::model::ModelSpec;
use cairn_protocol::server_opt::{ServerOptState, ServerOptimizer};

const TOKEN: &str = "fedcba9876543210fedcba9876543210";

fn status(admin: &str, token_file: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["job", "--admin", admin, "--token-file"])
        .arg(token_file)
        .args(["status", "1"])
        .output()
        .expect("cairn job status");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn a_cancelled_job_shows_no_round_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path().join("cairn.redb")).expect("store"));
    let id = store
        .submit("fraud", b"name = \"fraud\"\n")
        .expect("submit");
    let model = ModelSpec::mlp(3, vec![]);
    let params = vec![0.0f32; model.param_count()];
    let opt = ServerOptState::new(ServerOptimizer::FedAvg { lr: 1.0 }, params.len())
        .expect("optimiser state");
    store.start_job(id, &params, &opt).expect("start");
    let plan = JobPlan {
        job_id: "fraud-1".into(),
        model,
        rounds: 4,
        participants: 3,
        min_participants: 2,
        server: "fedavg".into(),
        aggregation: "plain".into(),
        proofs: false,
        test_rows: 10,
        settings: None,
        data: None,
    };
    store
        .put_artifact(id, admin::PLAN, &serde_json::to_vec(&plan).expect("json"))
        .expect("plan");
    store.begin_round(id, 1).expect("round 1");
    let rec = RoundRecord {
        round: 1,
        selected: 3,
        contributors: 3,
        dropped: vec![],
        train_loss: 0.6,
        test: Some(Metrics {
            loss: 0.5,
            accuracy: 0.8,
            auc: 0.75,
            ..Metrics::default()
        }),
        seconds: 1.0,
        failure: None,
        verify_seconds: None,
        rss_bytes: None,
        epsilon: None,
    };
    store
        .commit_round(
            id,
            &RoundCommit {
                round: 1,
                record: &rec,
                model: &params,
                opt_state: &opt,
                transcript: &[],
                transcript_head: [0; 32],
            },
        )
        .expect("round 1 recorded");
    store.begin_round(id, 2).expect("round 2 in flight");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(admin::bind("127.0.0.1:0".parse().expect("addr")))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (changed, _) = tokio::sync::watch::channel(0u64);
    let state = Arc::new(AdminState {
        store: Arc::clone(&store),
        token: TOKEN.into(),
        validate: Arc::new(|_: &str| Err(admin::Refusal::Other("not in this test".into()))),
        changed,
        holders: HolderBoard::default(),
    });
    rt.spawn(admin::serve(listener, state, std::future::pending()));
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    let url = format!("http://{addr}");

    let running = status(&url, &token_file);
    assert!(running.contains("round 2 in flight"), "{running}");

    store.cancel(id).expect("cancel");
    let cancelled = status(&url, &token_file);
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    assert!(!cancelled.contains("in flight"), "{cancelled}");
    assert!(
        cancelled.contains("stopped during round 2 (nothing of it applied)"),
        "{cancelled}"
    );
}
