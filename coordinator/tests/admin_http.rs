//! The admin interface over real HTTP on loopback: the status page's table of rounds,
//! holders, settings and links, the job's JSON with its holders and no round in flight once
//! cancelled, the plots (SVG) and the model with the name a browser saves it under.
//! Holder text that reaches the page is escaped.

use std::net::SocketAddr;
use std::sync::Arc;

use cairn_coordinator::admin::{
    self, AdminState, AggregationSettings, HolderBoard, HolderState, JobPlan, JobReport,
    JobSettings, JobStatus,
};
use cairn_coordinator::store::{JobId, RoundCommit, Store};
use cairn_coordinator::RoundRecord;
use cairn_protocol::metrics::Metrics;
use cairn_protocol::model::ModelSpec;
use cairn_protocol::server_opt::{ServerOptState, ServerOptimizer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// An answer: status, headers (lower-cased names), body.
struct Answer {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `method path` over a fresh connection, with the token as a bearer when given.
async fn http(addr: SocketAddr, method: &str, path: &str, bearer: bool) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = if bearer {
        format!("Authorization: Bearer {TOKEN}\r\n")
    } else {
        String::new()
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "bodies here have a length"
    );
    Answer {
        status,
        headers: head,
        body: raw[split + 4..].to_vec(),
    }
}

fn record(round: u32) -> RoundRecord {
    RoundRecord {
        round,
        selected: 3,
        contributors: 2,
        dropped: vec![(2, "<img src=x onerror=alert(1)>: timed out".into())],
        train_loss: 0.61,
        test: Some(Metrics {
            loss: 0.52,
            accuracy: 0.81,
            auc: 0.77,
            pr_auc: Some(0.66),
            f1: Some(0.5),
            ..Metrics::default()
        }),
        seconds: 3.25,
        failure: None,
        verify_seconds: None,
        rss_bytes: None,
        epsilon: None,
    }
}

/// A running job with round 1 recorded and round 2 in flight, and its holders on `board`.
fn running_job(store: &Store, board: &HolderBoard) -> JobId {
    let id = store
        .submit("fraud <b>v2</b>", b"name = \"fraud\"\n")
        .expect("submit");
    let model = ModelSpec::mlp(4, vec![]);
    let params = vec![0.25f32; model.param_count()];
    let opt = ServerOptState::new(ServerOptimizer::FedAvg { lr: 1.0 }, params.len())
        .expect("optimiser state");
    store.start_job(id, &params, &opt).expect("start");
    let plan = JobPlan {
        job_id: "fraud-1".into(),
        model,
        rounds: 5,
        participants: 3,
        min_participants: 2,
        server: "fedavg".into(),
        aggregation: "SecAgg+".into(),
        proofs: false,
        test_rows: 40,
        settings: Some(JobSettings {
            aggregation: AggregationSettings::Secure {
                dropout: 0.2,
                corruption: 0.1,
                scale_bits: 16,
                k: Some(2),
                t: Some(2),
            },
            proofs: None,
            local_steps: 5,
            batch_size: 16,
            learning_rate: 0.1,
            clip_norm: 10.0,
            round_timeout_secs: 60.0,
            join_timeout_secs: 120.0,
            privacy: None,
        }),
        data: None,
    };
    store
        .put_artifact(id, admin::PLAN, &serde_json::to_vec(&plan).expect("json"))
        .expect("plan");
    store.begin_round(id, 1).expect("round 1");
    let rec = record(1);
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
    store.begin_round(id, 2).expect("round 2");

    let h = board.job(id);
    for (p, name) in [
        (0u32, "alice"),
        (1, "<script>alert(1)</script>"),
        (2, "carol"),
    ] {
        h.connected(p, &[p as u8 + 0xa0; 32]);
        h.joined(p, name, 100 + u64::from(p));
    }
    h.round_started(1, &[0, 1, 2]);
    h.round_ended(1, &[0, 1], &[(2, "timed out".into())]);
    h.round_started(2, &[0, 1]);
    h.left(2, Some("connection lost"));
    id
}

async fn serve(store: Arc<Store>, board: HolderBoard) -> SocketAddr {
    let listener = admin::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (changed, _) = watch::channel(0u64);
    let state = Arc::new(AdminState {
        store,
        token: TOKEN.into(),
        validate: Arc::new(|_: &str| Err(admin::Refusal::Other("not in this test".into()))),
        changed,
        holders: board,
    });
    tokio::spawn(admin::serve(listener, state, std::future::pending()));
    addr
}

#[tokio::test]
async fn the_status_page_shows_rounds_holders_settings_and_links_and_the_api_agrees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(dir.path().join("cairn.redb")).expect("store"));
    let board = HolderBoard::default();
    let id = running_job(&store, &board);
    // A second job, queued: 0 rounds, no plan.
    store
        .submit("later", b"name = \"later\"\n")
        .expect("submit");
    let addr = serve(Arc::clone(&store), board).await;

    // No token, no page.
    let refused = http(addr, "GET", "/", false).await;
    assert_eq!(refused.status, 401);
    assert!(!refused.text().contains("fraud"));

    let page = http(addr, "GET", &format!("/?token={TOKEN}"), false).await;
    assert_eq!(page.status, 200);
    assert!(page.headers.contains("content-type: text/html"));
    assert!(page.headers.contains("referrer-policy: no-referrer"));
    let html = page.text();
    for want in [
        "#1 fraud &lt;b&gt;v2&lt;/b&gt;",
        "1 / 5 completed, 0 failed; round 2 in flight",
        // The table of rounds: participants, the drop and why (escaped), losses, accuracy,
        // AUC, PR-AUC, F1, seconds.
        "<table class=\"rounds\">",
        "<td>2 of 3</td>",
        "participant 2: &lt;img src=x onerror=alert(1)&gt;: timed out",
        "<td class=\"n\">0.6100</td><td class=\"n\">0.5200</td><td class=\"n\">0.8100</td><td class=\"n\">0.7700</td><td class=\"n\">0.6600</td><td class=\"n\">0.5000</td><td class=\"n\">3.25</td>",
        // The holders with their state.
        "<table class=\"holders\">",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "training (round 2)",
        "left: connection lost",
        // The settings.
        "tolerates dropout 20% and corruption 10%; 2 neighbours each, threshold t = 2 with all 3",
        "<tr><th>proofs</th><td>off</td></tr>",
        // Links, with the token.
        &format!("href=\"/api/jobs/{id}/model?token={TOKEN}\""),
        &format!("href=\"/api/jobs/{id}/model?round=1&amp;token={TOKEN}\""),
        &format!("href=\"/api/jobs/{id}/metrics.csv?token={TOKEN}\""),
        &format!("href=\"/api/jobs/{id}/plots/rounds.svg?token={TOKEN}\""),
        // The chart's round axis.
        ">round</text>",
        // The queued job, with no rounds.
        "#2 later",
        "Shown once the job starts",
    ] {
        assert!(html.contains(want), "the page lacks {want:?}:\n{html}");
    }
    assert!(!html.contains("<script"), "holder text is escaped");
    assert!(!html.contains("<img"), "holder text is escaped");
    assert!(!html.contains("roc.svg"), "no ROC before the report");

    // The JSON the page is made from.
    let st: JobStatus = serde_json::from_slice(
        &http(addr, "GET", &format!("/api/jobs/{id}"), true)
            .await
            .body,
    )
    .expect("a job status");
    assert_eq!(st.round_in_flight(), Some(2));
    let live = st.live.expect("the holders this coordinator saw");
    assert_eq!(live.holders.len(), 3);
    assert_eq!(live.holders[0].state, HolderState::Training { round: 2 });
    assert_eq!(live.holders[0].rounds_answered, 1);
    assert_eq!(
        live.holders[0].identity.as_deref(),
        Some("a0".repeat(32).as_str())
    );
    assert_eq!(
        live.holders[1].name, "<script>alert(1)</script>",
        "raw in JSON"
    );
    assert!(st.plan.and_then(|p| p.settings).is_some());
    assert!(!st.has_report);

    // The plots: the rounds' now, the ROC once there is a report.
    let svg = http(
        addr,
        "GET",
        &format!("/api/jobs/{id}/plots/rounds.svg"),
        true,
    )
    .await;
    assert_eq!(svg.status, 200);
    assert!(svg.headers.contains("content-type: image/svg+xml"));
    assert!(svg
        .text()
        .starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.text().contains(">round</text>"));
    let roc = http(addr, "GET", &format!("/api/jobs/{id}/plots/roc.svg"), true).await;
    assert_eq!(roc.status, 404, "{}", roc.text());
    let report = JobReport {
        federated: Metrics {
            loss: 0.5,
            accuracy: 0.8,
            auc: 0.77,
            ..Metrics::default()
        },
        roc: vec![(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)],
        centralised: None,
        centralised_roc: None,
        test_rows: 40,
        classes: Vec::new(),
        privacy: None,
    };
    store
        .put_artifact(
            id,
            admin::REPORT,
            &serde_json::to_vec(&report).expect("json"),
        )
        .expect("report");
    let roc = http(addr, "GET", &format!("/api/jobs/{id}/plots/roc.svg"), true).await;
    assert_eq!(roc.status, 200);
    assert!(roc.text().contains("federated (AUC 0.7700)"));
    assert!(roc.text().contains("false-positive rate"));
    let html = http(addr, "GET", &format!("/?token={TOKEN}"), false)
        .await
        .text();
    assert!(html.contains(&format!(
        "href=\"/api/jobs/{id}/plots/roc.svg?token={TOKEN}\""
    )));

    // The model, named for a browser's download.
    let model = http(addr, "GET", &format!("/api/jobs/{id}/model"), true).await;
    assert_eq!(model.status, 200);
    assert!(
        model
            .headers
            .contains("content-disposition: attachment; filename=\"job-1-round-001.safetensors\""),
        "{}",
        model.headers
    );

    // Cancelled during round 2: no round in flight, in the JSON or on the page.
    let c = http(addr, "POST", &format!("/api/jobs/{id}/cancel"), true).await;
    assert_eq!(c.status, 200, "{}", c.text());
    let st: JobStatus = serde_json::from_slice(
        &http(addr, "GET", &format!("/api/jobs/{id}"), true)
            .await
            .body,
    )
    .expect("a job status");
    assert_eq!(st.info.in_flight, None);
    assert_eq!(st.round_in_flight(), None);
    assert_eq!(st.interrupted_round, Some(2));
    let html = http(addr, "GET", &format!("/?token={TOKEN}"), false)
        .await
        .text();
    assert!(!html.contains("in flight"), "{html}");
    assert!(
        html.contains("1 / 5 completed, 0 failed; stopped during round 2 (nothing of it applied)")
    );
}
