//! Tests of the durable store, including a writer process killed with SIGKILL.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use cairn_protocol::server_opt::{AdaptiveParams, ServerOptState, ServerOptimizer};

use super::*;

/// A round record as a driver would keep (metrics and counts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Rec {
    round: u32,
    loss: f64,
    dropped: Vec<u32>,
}

impl RecordLayout for Rec {}

fn rec(round: u32) -> Rec {
    Rec {
        round,
        loss: 1.0 / f64::from(round),
        dropped: vec![round % 3],
    }
}

/// A record whose serialisation fails.
struct Unserialisable;

impl RecordLayout for Unserialisable {}

impl Serialize for Unserialisable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this record cannot be encoded"))
    }
}

const D: usize = 6;

fn optimizer() -> ServerOptimizer {
    ServerOptimizer::FedAdam(AdaptiveParams::default())
}

/// The mean update of round `r` (deterministic, so a replay can recompute every model).
fn delta(round: u32, d: usize) -> Vec<f32> {
    (0..d)
        .map(|i| ((round as f32) * 0.7 + i as f32 * 0.13).sin() * 0.05)
        .collect()
}

/// The transcript entries of round `r`: 1 to 3 of them.
fn entries(round: u32) -> Vec<Vec<u8>> {
    (0..=round % 3)
        .map(|i| format!("round {round} entry {i}").into_bytes())
        .collect()
}

fn abandoned_entries(round: u32) -> Vec<Vec<u8>> {
    vec![format!("round {round} abandoned").into_bytes()]
}

fn head(round: u32) -> TranscriptHead {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&round.to_le_bytes());
    h[31] = 0xAB;
    h
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coordinator.redb");
    Fixture { _dir: dir, path }
}

/// A started job of dimension `D` and the initial model and state.
fn started(store: &Store) -> (JobId, Vec<f32>, ServerOptState) {
    let id = store.submit("fraud", b"rounds = 3").expect("submit");
    let model = vec![0.5f32; D];
    let opt = ServerOptState::new(optimizer(), D).expect("opt");
    store.start_job(id, &model, &opt).expect("start");
    (id, model, opt)
}

/// Runs and commits round `round`: applies its update to `model`/`opt`.
fn run_round(
    store: &Store,
    job: JobId,
    round: u32,
    model: &mut [f32],
    opt: &mut ServerOptState,
) -> Result<Range<u64>, StoreError> {
    store.begin_round(job, round)?;
    opt.apply(model, &delta(round, model.len())).expect("apply");
    store.commit_round(
        job,
        &RoundCommit {
            round,
            record: &rec(round),
            model,
            opt_state: opt,
            transcript: &entries(round),
            transcript_head: head(round),
        },
    )
}

fn all_transcript(store: &Store, job: JobId) -> Vec<(u64, Vec<u8>)> {
    store.transcript(job, 0..u64::MAX).expect("transcript")
}

#[test]
fn a_job_and_its_rounds_round_trip() {
    let f = fixture();
    let store = Store::open(&f.path).expect("open");
    let (job, mut model, mut opt) = started(&store);
    let initial = model.clone();
    assert_eq!(store.config(job).expect("config"), b"rounds = 3");

    let s1 = run_round(&store, job, 1, &mut model, &mut opt).expect("round 1");
    let after1 = model.clone();
    store.begin_round(job, 2).expect("begin 2");
    let s2 = store
        .commit_failed_round(job, 2, &rec(2), &entries(2), head(2))
        .expect("failed round 2");
    let s3 = run_round(&store, job, 3, &mut model, &mut opt).expect("round 3");
    // entries(r) has r % 3 + 1 entries: 2, 3 and 1.
    assert_eq!((s1, s2.clone(), s3.clone()), (0..2, 2..5, 5..6));

    let info = store.job(job).expect("job");
    assert_eq!(info.state, JobState::Running);
    assert_eq!(
        (
            info.rounds_completed,
            info.rounds_failed,
            info.last_completed
        ),
        (2, 1, Some(3))
    );
    assert_eq!(
        (info.next_round, info.in_flight, info.transcript_len),
        (4, None, 6)
    );
    assert_eq!(info.transcript_head, head(3));
    assert_eq!(info.params, Some(D));

    let rounds: Vec<RoundEntry<Rec>> = store.rounds(job).expect("rounds");
    assert_eq!(rounds.len(), 3);
    assert_eq!(
        rounds
            .iter()
            .map(|r| (r.round, r.outcome))
            .collect::<Vec<_>>(),
        vec![
            (1, RoundOutcome::Completed),
            (2, RoundOutcome::Failed),
            (3, RoundOutcome::Completed)
        ]
    );
    assert_eq!(rounds[1].record, Some(rec(2)));
    assert_eq!(rounds[1].transcript, s2);
    assert_eq!(rounds[2].transcript_head, head(3));

    assert_eq!(store.model(job, 0).expect("m0"), Some(initial));
    assert_eq!(store.model(job, 1).expect("m1"), Some(after1));
    assert_eq!(
        store.model(job, 2).expect("m2"),
        None,
        "a failed round has no model"
    );
    assert_eq!(store.model(job, 3).expect("m3"), Some(model.clone()));
    assert_eq!(store.opt_state(job, 3).expect("o3"), Some(opt.clone()));

    let t = all_transcript(&store, job);
    let want: Vec<Vec<u8>> = [entries(1), entries(2), entries(3)].concat();
    assert_eq!(
        t.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    assert_eq!(t.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), want);
    assert_eq!(store.transcript(job, 2..4).expect("t").len(), 2);

    let r = store.resume(job).expect("resume");
    assert_eq!(
        (r.last_completed, r.next_round, r.in_flight),
        (Some(3), 4, None)
    );
    assert_eq!((r.model, r.opt_state), (model, opt));
    assert_eq!((r.transcript_len, r.transcript_head), (6, head(3)));

    let done = store.finish_job(job, None).expect("finish");
    assert_eq!(done.state, JobState::Finished);
    assert_eq!(store.jobs().expect("jobs"), vec![done]);
}

#[test]
fn reopening_the_file_after_drop_sees_everything() {
    let f = fixture();
    let (job, model, opt, before, rounds_before) = {
        let store = Store::open(&f.path).expect("open");
        let (job, mut model, mut opt) = started(&store);
        for r in 1..=4 {
            run_round(&store, job, r, &mut model, &mut opt).expect("round");
        }
        store.begin_round(job, 5).expect("begin 5");
        let queued = store.submit("second", b"{}").expect("submit");
        assert_eq!(queued, job + 1);
        let rounds: Vec<RoundEntry<Rec>> = store.rounds(job).expect("rounds");
        (job, model, opt, store.jobs().expect("jobs"), rounds)
    };
    let store = Store::open(&f.path).expect("reopen");
    assert_eq!(store.jobs().expect("jobs"), before);
    assert_eq!(store.rounds::<Rec>(job).expect("rounds"), rounds_before);
    assert_eq!(store.queue().expect("queue"), vec![job + 1]);
    assert_eq!(store.config(job + 1).expect("config"), b"{}");
    let r = store.resume(job).expect("resume");
    assert_eq!((r.model, r.opt_state), (model, opt));
    assert_eq!(
        (r.last_completed, r.in_flight, r.transcript_len),
        (Some(4), Some(5), 2 + 3 + 1 + 2)
    );
    // Ids keep increasing across reopenings.
    assert_eq!(store.submit("third", b"").expect("submit"), job + 2);
}

#[test]
fn commit_round_is_all_or_nothing() {
    let f = fixture();
    let store = Store::open(&f.path).expect("open");
    let (job, mut model, mut opt) = started(&store);
    run_round(&store, job, 1, &mut model, &mut opt).expect("round 1");
    store.begin_round(job, 2).expect("begin 2");

    let snapshot = |store: &Store| {
        (
            store.job(job).expect("job"),
            store.rounds::<Rec>(job).expect("rounds"),
            all_transcript(store, job),
            store.model(job, 2).expect("model"),
            store.opt_state(job, 2).expect("opt"),
        )
    };
    let before = snapshot(&store);
    assert_eq!(before.3, None);

    let mut next_model = model.clone();
    let mut next_opt = opt.clone();
    next_opt
        .apply(&mut next_model, &delta(2, D))
        .expect("apply");
    let commit = RoundCommit {
        round: 2,
        record: &rec(2),
        model: &next_model,
        opt_state: &next_opt,
        transcript: &entries(2),
        transcript_head: head(2),
    };
    // A failure after each write inside the transaction, and just before its commit.
    for stage in [
        "after model",
        "after optimiser state",
        "after transcript",
        "after round",
        "before commit",
    ] {
        *store.fail_at.lock().expect("lock") = Some(stage);
        let e = store.commit_round(job, &commit).expect_err("injected");
        assert!(matches!(e, StoreError::Injected(s) if s == stage), "{e}");
        *store.fail_at.lock().expect("lock") = None;
        assert_eq!(
            snapshot(&store),
            before,
            "partial round left after failure {stage}"
        );
    }
    // A record that cannot be encoded: refused before anything is written.
    let e = store
        .commit_round(
            job,
            &RoundCommit {
                round: 2,
                record: &Unserialisable,
                model: &next_model,
                opt_state: &next_opt,
                transcript: &entries(2),
                transcript_head: head(2),
            },
        )
        .expect_err("unserialisable");
    assert!(
        matches!(
            e,
            StoreError::Encode {
                what: "round record",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(snapshot(&store), before);
    // A model of the wrong length is refused in the transaction.
    let e = store
        .commit_round(
            job,
            &RoundCommit {
                model: &next_model[..D - 1],
                ..commit
            },
        )
        .expect_err("short model");
    assert!(matches!(e, StoreError::Length { what: "model", got, want: D, .. } if got == D - 1));
    assert_eq!(snapshot(&store), before);

    // The same commit then goes through whole, at the next sequence numbers.
    let span = store.commit_round(job, &commit).expect("commit");
    assert_eq!(span, before.0.transcript_len..before.0.transcript_len + 3);
    let after = snapshot(&store);
    assert_eq!(after.0.last_completed, Some(2));
    assert_eq!(after.3, Some(next_model));
    assert_eq!(after.4, Some(next_opt));
    assert_eq!(after.1.len(), 2);
}

#[test]
fn a_round_is_recorded_once() {
    let f = fixture();
    let store = Store::open(&f.path).expect("open");
    let (job, mut model, mut opt) = started(&store);
    run_round(&store, job, 1, &mut model, &mut opt).expect("round 1");
    let before = (
        store.resume(job).expect("resume"),
        all_transcript(&store, job),
    );

    // The same round again (as a coordinator replaying it after a restart would): refused,
    // and the stored model is not advanced a second time.
    let mut again = model.clone();
    let mut again_opt = opt.clone();
    again_opt.apply(&mut again, &delta(1, D)).expect("apply");
    let twice = RoundCommit {
        round: 1,
        record: &rec(1),
        model: &again,
        opt_state: &again_opt,
        transcript: &entries(1),
        transcript_head: head(1),
    };
    let e = store.commit_round(job, &twice).expect_err("twice");
    assert!(
        matches!(
            e,
            StoreError::RoundAlreadyRecorded {
                round: 1,
                next: 2,
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        store.commit_round(job, &RoundCommit { round: 0, ..twice }),
        Err(StoreError::RoundAlreadyRecorded { round: 0, .. })
    ));
    assert!(matches!(
        store.commit_failed_round(job, 1, &rec(1), &[], head(1)),
        Err(StoreError::RoundAlreadyRecorded { .. })
    ));
    assert!(matches!(
        store.begin_round(job, 1),
        Err(StoreError::RoundAlreadyRecorded { .. })
    ));
    assert_eq!(
        (
            store.resume(job).expect("resume"),
            all_transcript(&store, job)
        ),
        before
    );

    // A round in flight blocks any other number until it is recorded or abandoned.
    store.begin_round(job, 2).expect("begin 2");
    assert!(matches!(
        store.commit_round(job, &RoundCommit { round: 3, ..twice }),
        Err(StoreError::InFlight {
            in_flight: 2,
            round: 3,
            ..
        })
    ));
    assert!(matches!(
        store.begin_round(job, 3),
        Err(StoreError::InFlight { in_flight: 2, .. })
    ));
    assert!(matches!(
        store.finish_job(job, None),
        Err(StoreError::InFlight { in_flight: 2, .. })
    ));
    // Abandoning consumes the number: round 2 can never be committed afterwards.
    assert_eq!(
        store
            .abandon_in_flight(job, &abandoned_entries(2), head(2))
            .expect("abandon"),
        Some(2)
    );
    assert_eq!(
        store
            .abandon_in_flight(job, &abandoned_entries(2), head(2))
            .expect("none"),
        None
    );
    assert!(matches!(
        store.commit_round(job, &RoundCommit { round: 2, ..twice }),
        Err(StoreError::RoundAlreadyRecorded {
            round: 2,
            next: 3,
            ..
        })
    ));
    // Round numbers may skip (the job numbers failed rounds too), never go back.
    run_round(&store, job, 5, &mut model, &mut opt).expect("round 5");
    assert_eq!(store.job(job).expect("job").next_round, 6);
    let kinds: Vec<_> = store
        .rounds::<Rec>(job)
        .expect("rounds")
        .into_iter()
        .map(|r| (r.round, r.outcome))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, RoundOutcome::Completed),
            (2, RoundOutcome::Abandoned),
            (5, RoundOutcome::Completed)
        ]
    );
}

#[test]
fn transcript_sequence_numbers_are_dense_and_unique() {
    let f = fixture();
    let store = Store::open(&f.path).expect("open");
    let (job, mut model, mut opt) = started(&store);
    let mut want: Vec<Vec<u8>> = Vec::new();
    let mut spans = Vec::new();
    for r in 1..=12u32 {
        match r % 4 {
            0 => {
                store.begin_round(job, r).expect("begin");
                spans.push(
                    store
                        .commit_failed_round(job, r, &rec(r), &entries(r), head(r))
                        .expect("failed"),
                );
                want.extend(entries(r));
            }
            1 => {
                // A commit that fails first (its entries must not be kept), then succeeds.
                store.begin_round(job, r).expect("begin");
                *store.fail_at.lock().expect("lock") = Some("after round");
                let mut m = model.clone();
                let mut o = opt.clone();
                o.apply(&mut m, &delta(r, D)).expect("apply");
                let c = RoundCommit {
                    round: r,
                    record: &rec(r),
                    model: &m,
                    opt_state: &o,
                    transcript: &entries(r),
                    transcript_head: head(r),
                };
                assert!(store.commit_round(job, &c).is_err());
                *store.fail_at.lock().expect("lock") = None;
                spans.push(store.commit_round(job, &c).expect("commit"));
                (model, opt) = (m, o);
                want.extend(entries(r));
            }
            2 => {
                // A round with no transcript entries of its own.
                store.begin_round(job, r).expect("begin");
                opt.apply(&mut model, &delta(r, D)).expect("apply");
                spans.push(
                    store
                        .commit_round(
                            job,
                            &RoundCommit {
                                round: r,
                                record: &rec(r),
                                model: &model,
                                opt_state: &opt,
                                transcript: &[],
                                transcript_head: head(r),
                            },
                        )
                        .expect("commit"),
                );
            }
            _ => {
                spans.push(run_round(&store, job, r, &mut model, &mut opt).expect("round"));
                want.extend(entries(r));
            }
        }
    }
    // The spans tile 0..len with no gap or overlap.
    let mut next = 0;
    for s in &spans {
        assert_eq!(s.start, next, "{spans:?}");
        next = s.end;
    }
    let t = all_transcript(&store, job);
    assert_eq!(next, want.len() as u64);
    assert_eq!(store.job(job).expect("job").transcript_len, next);
    assert_eq!(
        t.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (0..next).collect::<Vec<_>>()
    );
    assert_eq!(t.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), want);
    // Another job's transcript is separate and starts at 0.
    store.finish_job(job, None).expect("finish");
    let (other, mut m2, mut o2) = started(&store);
    assert_eq!(
        run_round(&store, other, 1, &mut m2, &mut o2).expect("round"),
        0..2
    );
    assert_eq!(all_transcript(&store, job).len() as u64, next);
}

#[test]
fn queued_jobs_run_first_in_first_out() {
    let f = fixture();
    let store = Store::open(&f.path).expect("open");
    let ids: Vec<JobId> = (0..4)
        .map(|i| store.submit(&format!("job {i}"), b"").expect("submit"))
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    assert_eq!(store.queue().expect("queue"), ids);
    assert_eq!(store.cancel(2).expect("cancel"), JobState::Queued);
    assert_eq!(store.queue().expect("queue"), vec![1, 3, 4]);
    assert_eq!(store.next_queued().expect("next"), Some(1));

    let opt = ServerOptState::new(optimizer(), D).expect("opt");
    let model = vec![0.0; D];
    store.start_job(1, &model, &opt).expect("start 1");
    assert_eq!(store.running().expect("running"), vec![1]);
    assert_eq!(store.next_queued().expect("next"), Some(3));
    // One job at a time.
    assert!(matches!(
        store.start_job(3, &model, &opt),
        Err(StoreError::Busy { job: 3, running: 1 })
    ));
    assert!(matches!(
        store.start_job(2, &model, &opt),
        Err(StoreError::WrongState {
            job: 2,
            state: JobState::Cancelled,
            ..
        })
    ));
    store
        .finish_job(1, Some("3 rounds in a row failed".into()))
        .expect("finish");
    assert_eq!(
        store.job(1).expect("job").state,
        JobState::Failed("3 rounds in a row failed".into())
    );
    store.start_job(3, &model, &opt).expect("start 3");
    assert!(matches!(
        store.start_job(3, &model, &opt),
        Err(StoreError::WrongState {
            state: JobState::Running,
            ..
        })
    ));
    assert_eq!(store.queue().expect("queue"), vec![4]);
    let states: Vec<String> = store
        .jobs()
        .expect("jobs")
        .iter()
        .map(|j| j.state.to_string())
        .collect();
    assert_eq!(
        states,
        vec![
            "failed: 3 rounds in a row failed",
            "cancelled",
            "running",
            "queued"
        ]
    );
}

#[test]
fn operations_in_the_wrong_state_are_refused() {
    let f = fixture();
    let store = Store::open(&f.path).expect("open");
    let opt = ServerOptState::new(optimizer(), D).expect("opt");
    let model = vec![0.0f32; D];
    let commit = RoundCommit {
        round: 1,
        record: &rec(1),
        model: &model,
        opt_state: &opt,
        transcript: &entries(1),
        transcript_head: head(1),
    };
    assert!(matches!(store.job(9), Err(StoreError::NoSuchJob(9))));
    assert!(matches!(store.config(9), Err(StoreError::NoSuchJob(9))));
    assert!(matches!(store.cancel(9), Err(StoreError::NoSuchJob(9))));
    assert!(matches!(
        store.rounds::<Rec>(9),
        Err(StoreError::NoSuchJob(9))
    ));
    assert!(matches!(
        store.commit_round(9, &commit),
        Err(StoreError::NoSuchJob(9))
    ));

    let queued = store.submit("q", b"").expect("submit");
    assert!(matches!(
        store.commit_round(queued, &commit),
        Err(StoreError::WrongState {
            state: JobState::Queued,
            ..
        })
    ));
    assert!(matches!(
        store.resume(queued),
        Err(StoreError::WrongState {
            state: JobState::Queued,
            ..
        })
    ));
    assert!(matches!(
        store.start_job(queued, &model[..2], &opt),
        Err(StoreError::Length {
            what: "optimiser state",
            got: D,
            want: 2,
            ..
        })
    ));

    // Cancelling a running job stops its driver at the next record.
    let (job, _, _) = {
        store.cancel(queued).expect("cancel");
        started(&store)
    };
    store.begin_round(job, 1).expect("begin");
    assert_eq!(store.cancel(job).expect("cancel"), JobState::Running);
    let e = store.commit_round(job, &commit).expect_err("cancelled");
    assert_eq!(
        e.to_string(),
        format!("job {job} is cancelled: cannot record a round")
    );
    assert!(store.model(job, 1).expect("model").is_none());
    assert!(matches!(
        store.cancel(job),
        Err(StoreError::WrongState {
            state: JobState::Cancelled,
            ..
        })
    ));
    assert!(matches!(
        store.finish_job(job, None),
        Err(StoreError::WrongState { .. })
    ));
    // A cancelled job's data stays readable.
    assert_eq!(store.resume(job).expect("resume").in_flight, Some(1));

    // A job's named files: stored, replaced, read back; an unknown job is an error.
    store.put_artifact(job, "plan.json", b"{}").expect("put");
    store
        .put_artifact(job, "plan.json", b"{\"x\":1}")
        .expect("replace");
    assert_eq!(
        store.artifact(job, "plan.json").expect("get").as_deref(),
        Some(&b"{\"x\":1}"[..])
    );
    assert_eq!(store.artifact(job, "report.json").expect("get"), None);
    assert!(matches!(
        store.put_artifact(99, "x", b""),
        Err(StoreError::NoSuchJob(99))
    ));

    // A job that cannot run is failed with the reason, from the queue or while running.
    let q = store.submit("bad", b"").expect("submit");
    let info = store.fail(q, "data file gone").expect("fail");
    assert_eq!(info.state, JobState::Failed("data file gone".into()));
    assert!(!store.queue().expect("queue").contains(&q));
    let (r, _, _) = started(&store);
    store.begin_round(r, 1).expect("begin");
    let info = store.fail(r, "x").expect("fail");
    assert_eq!(info.state, JobState::Failed("x".into()));
    assert_eq!(store.job(r).expect("job").state, info.state);
    assert!(matches!(
        store.fail(r, "again"),
        Err(StoreError::WrongState { .. })
    ));
}

#[test]
fn the_database_file_cannot_be_opened_twice_at_once() {
    let f = fixture();
    let _store = Store::open(&f.path).expect("open");
    assert!(matches!(Store::open(&f.path), Err(StoreError::Db(_))));
}

/// The files in `dir` with their bytes, to show that an open wrote nothing.
fn files_in(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let p = e.expect("entry").path();
            let bytes = std::fs::read(&p).expect("read file");
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_reader_opens_the_store_beside_its_writer_and_follows_its_commits() {
    let f = fixture();
    let writer = Store::open(&f.path).expect("open");
    let (job, mut model, mut opt) = started(&writer);
    run_round(&writer, job, 1, &mut model, &mut opt).expect("round 1");
    // `cairn audit --store` while the coordinator runs.
    let reader = Store::open_read_only(&f.path).expect("a reader beside the writer");
    assert_eq!(reader.jobs().expect("jobs"), writer.jobs().expect("jobs"));
    assert_eq!(
        all_transcript(&reader, job),
        all_transcript(&writer, job),
        "the reader sees what the writer committed"
    );
    // The writer goes on while the reader is open, and the reader sees its next commit.
    run_round(&writer, job, 2, &mut model, &mut opt).expect("round 2 beside a reader");
    assert_eq!(reader.job(job).expect("job").rounds_completed, 2);
    assert_eq!(reader.model(job, 2).expect("model").as_ref(), Some(&model));
    // The reader writes nothing, and a second writer is still refused.
    assert!(matches!(reader.submit("x", b""), Err(StoreError::ReadOnly)));
    assert!(matches!(reader.cancel(job), Err(StoreError::ReadOnly)));
    assert!(matches!(Store::open(&f.path), Err(StoreError::Db(_))));
    drop(reader);
    run_round(&writer, job, 3, &mut model, &mut opt).expect("round 3");
}

#[test]
fn opening_read_only_writes_nothing_and_creates_no_file() {
    let f = fixture();
    let dir = f.path.parent().expect("dir").to_path_buf();
    assert!(
        Store::open_read_only(&f.path).is_err(),
        "no store there: an error"
    );
    assert!(files_in(&dir).is_empty(), "and nothing was created");
    {
        let writer = Store::open(&f.path).expect("open");
        let (job, mut model, mut opt) = started(&writer);
        run_round(&writer, job, 1, &mut model, &mut opt).expect("round");
    }
    let before = files_in(&dir);
    {
        let reader = Store::open_read_only(&f.path).expect("read-only");
        assert_eq!(reader.jobs().expect("jobs").len(), 1);
        assert_eq!(reader.rounds::<Rec>(1).expect("rounds").len(), 1);
    }
    assert_eq!(files_in(&dir), before, "the directory is as it was");
}

// --- A writer killed with SIGKILL -------------------------------------------------------

const CHILD_ENV: &str = "CAIRN_STORE_CRASH_CHILD_DB";
const READY: &str = "cairn-store-child: committing";
const CRASH_DIM: usize = 4096;

/// Run by the child process only (the variable is unset in a normal test run): resumes the
/// job in the database (abandoning a round left in flight) and commits rounds in a loop
/// until it is killed (or 10 s pass).
#[test]
fn crash_child_commits_until_killed() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(&path).expect("open");
    let job = match store.running().expect("running").first() {
        Some(&j) => j,
        None => {
            let j = store.submit("crash", b"").expect("submit");
            let opt = ServerOptState::new(optimizer(), CRASH_DIM).expect("opt");
            store
                .start_job(j, &vec![0.0; CRASH_DIM], &opt)
                .expect("start");
            j
        }
    };
    let mut r = store.resume(job).expect("resume");
    if let Some(round) = r.in_flight {
        store
            .abandon_in_flight(job, &abandoned_entries(round), head(round))
            .expect("abandon");
        r = store.resume(job).expect("resume");
    }
    let (mut model, mut opt, first) = (r.model, r.opt_state, r.next_round);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut round = first;
    while Instant::now() < deadline {
        run_round(&store, job, round, &mut model, &mut opt).expect("round");
        if round == first + 1 {
            let mut out = std::io::stdout();
            writeln!(out, "{READY}").expect("stdout");
            out.flush().expect("flush");
        }
        round += 1;
    }
}

/// Replays the stored rounds from the initial model and checks every stored model,
/// optimiser state and transcript entry against the replay; returns the rounds recorded.
fn check_consistent_prefix(store: &Store) -> u32 {
    let job = *store
        .running()
        .expect("running")
        .first()
        .expect("a running job");
    let info = store.job(job).expect("job");
    let rounds: Vec<RoundEntry<Rec>> = store.rounds(job).expect("rounds");
    let transcript = all_transcript(store, job);
    assert_eq!(transcript.len() as u64, info.transcript_len);
    let mut model = vec![0.0f32; CRASH_DIM];
    let mut opt = ServerOptState::new(optimizer(), CRASH_DIM).expect("opt");
    let mut seq = 0u64;
    let mut last_completed = None;
    for (i, e) in rounds.iter().enumerate() {
        assert_eq!(
            e.round,
            i as u32 + 1,
            "every round number is used once, in order"
        );
        let want = match e.outcome {
            RoundOutcome::Completed => {
                assert_eq!(e.record, Some(rec(e.round)));
                opt.apply(&mut model, &delta(e.round, CRASH_DIM))
                    .expect("apply");
                assert_eq!(
                    store.model(job, e.round).expect("model").as_ref(),
                    Some(&model)
                );
                assert_eq!(
                    store.opt_state(job, e.round).expect("opt").as_ref(),
                    Some(&opt)
                );
                last_completed = Some(e.round);
                entries(e.round)
            }
            RoundOutcome::Abandoned => {
                assert_eq!(store.model(job, e.round).expect("model"), None);
                abandoned_entries(e.round)
            }
            RoundOutcome::Failed => panic!("the child records no failed round"),
        };
        assert_eq!(e.transcript.start, seq);
        for w in &want {
            assert_eq!(transcript[seq as usize], (seq, w.clone()));
            seq += 1;
        }
        assert_eq!(e.transcript.end, seq);
        assert_eq!(e.transcript_head, head(e.round));
    }
    assert_eq!(
        seq, info.transcript_len,
        "no transcript entry outside a round"
    );
    let r = store.resume(job).expect("resume");
    assert_eq!(r.last_completed, last_completed);
    assert_eq!(
        r.model, model,
        "resumed model = replay of each recorded round once"
    );
    assert_eq!(r.opt_state, opt);
    assert_eq!(r.next_round, rounds.len() as u32 + 1);
    assert!(
        r.in_flight.is_none() || r.in_flight == Some(r.next_round),
        "{:?}",
        r.in_flight
    );
    rounds.len() as u32
}

#[test]
fn a_killed_writer_leaves_a_consistent_prefix() {
    let f = fixture();
    let exe = std::env::current_exe().expect("test binary");
    let mut recorded = 0;
    // Kill at different points after the child is committing: each kill lands between two
    // transactions or inside one (often inside commit_round, the bulk of the work). Bounded:
    // about 0.5 s of pauses, and a child stops by itself after 10 s.
    for (attempt, pause_ms) in [3u64, 11, 29, 47, 83, 131].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "store::tests::crash_child_commits_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &f.path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // libtest may print "test NAME ... " before the line on the same line.
            .any(|l| l.ends_with(READY));
        if !ready {
            let out = child.wait_with_output().expect("child output");
            panic!(
                "attempt {attempt}: the child never started committing: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(pause_ms));
        child.kill().expect("SIGKILL"); // std sends SIGKILL on Unix
        let status = child.wait().expect("wait");
        assert!(!status.success(), "the child was killed, not finished");

        // The store as the killed writer left it reads the same without a writer's repair
        // (`cairn audit --store` after the coordinator died), and stays as it was.
        let left = std::fs::read(&f.path).expect("the file");
        assert!(
            matches!(
                redb::Builder::new()
                    .set_concurrency_mode(SHARING)
                    .open_read_only(&f.path),
                Err(redb::DatabaseError::RepairAborted)
            ),
            "in place, the file needs a writer's repair"
        );
        let reader = Store::open_read_only(&f.path).expect("read-only after kill");
        let seen = check_consistent_prefix(&reader);
        drop(reader);
        assert_eq!(
            std::fs::read(&f.path).expect("the file"),
            left,
            "a reader repairs nothing in place"
        );

        let store = Store::open(&f.path).expect("reopen after kill");
        let now = check_consistent_prefix(&store);
        assert_eq!(now, seen, "the reader saw every recorded round");
        let info = store
            .job(store.running().expect("running")[0])
            .expect("job");
        eprintln!(
            "attempt {attempt}: killed {pause_ms} ms after start; {now} rounds recorded, \
             {} abandoned, in flight: {:?}",
            info.rounds_failed, info.in_flight
        );
        assert!(
            now >= recorded + 2,
            "attempt {attempt}: {recorded} → {now} rounds"
        );
        recorded = now;
    }
}

/// Replaces the stored row of `(job, round)` with `bytes`, as an older build would have
/// written it.
fn put_raw_row(store: &Store, job: JobId, round: u32, bytes: &[u8]) {
    store
        .write(|txn| {
            txn.open_table(ROUNDS)?.insert((job, round), bytes)?;
            Ok(())
        })
        .expect("raw row");
}

/// A row as builds before layouts wrote it: the row's bincode, no layout number after it.
fn row_without_layout(
    outcome: RoundOutcome,
    record: Option<&[u8]>,
    span: Range<u64>,
    round: u32,
) -> Vec<u8> {
    encode(
        "round",
        &RoundRow {
            outcome,
            record: record.map(<[u8]>::to_vec),
            transcript_start: span.start,
            transcript_end: span.end,
            transcript_head: head(round),
            committed_unix_ms: 1,
        },
    )
    .expect("encode row")
}

#[test]
fn a_store_written_before_record_layouts_is_read_and_its_job_resumes() {
    use crate::progress::RoundRecord;
    use cairn_protocol::metrics::Metrics;

    let f = fixture();
    let (job, mut model, mut opt) = {
        let store = Store::open(&f.path).expect("open");
        let (job, mut model, mut opt) = started(&store);
        // Rounds 1 (completed) and 2 (failed) as the build before PR-AUC recorded them:
        // the other tables are as today, the rows hold layout-0 records and no layout.
        store.begin_round(job, 1).expect("begin 1");
        opt.apply(&mut model, &delta(1, D)).expect("apply");
        let placeholder = RoundRecord::decode_layout(0, layouts::V0_COMPLETED).expect("v0");
        let span1 = store
            .commit_round(
                job,
                &RoundCommit {
                    round: 1,
                    record: &placeholder,
                    model: &model,
                    opt_state: &opt,
                    transcript: &entries(1),
                    transcript_head: head(1),
                },
            )
            .expect("commit 1");
        put_raw_row(
            &store,
            job,
            1,
            &row_without_layout(
                RoundOutcome::Completed,
                Some(layouts::V0_COMPLETED),
                span1,
                1,
            ),
        );
        store.begin_round(job, 2).expect("begin 2");
        let span2 = store
            .commit_failed_round(job, 2, &placeholder, &entries(2), head(2))
            .expect("commit 2");
        put_raw_row(
            &store,
            job,
            2,
            &row_without_layout(RoundOutcome::Failed, Some(layouts::V0_FAILED), span2, 2),
        );
        // Round 3 was in flight when that coordinator stopped.
        store.begin_round(job, 3).expect("begin 3");
        (job, model, opt)
    };

    // A coordinator of this build restarts on that store.
    let store = Store::open(&f.path).expect("reopen");
    let resume = store.resume(job).expect("resume");
    assert_eq!(resume.model, model);
    assert_eq!(resume.in_flight, Some(3));
    let rounds: Vec<RoundEntry<RoundRecord>> = store.rounds(job).expect("old rows read");
    assert_eq!(rounds.len(), 2);
    let old = rounds[0].record.as_ref().expect("record 1");
    let m = old.test.expect("round 1's metrics");
    assert_eq!((m.loss, m.accuracy, m.auc), (0.4, 0.9, 0.8));
    assert_eq!((m.pr_auc, m.f1, m.threshold), (None, None, 0.5));
    assert_eq!(old.rss_bytes, Some(1024));
    let failed = rounds[1].record.as_ref().expect("record 2");
    assert_eq!(failed.failure.as_deref(), Some("few"));
    assert_eq!(rounds[1].outcome, RoundOutcome::Failed);

    // The job goes on: the round in flight abandoned, round 4 recorded in this build's layout.
    assert_eq!(
        store
            .abandon_in_flight(job, &abandoned_entries(3), head(3))
            .expect("abandon"),
        Some(3)
    );
    store.begin_round(job, 4).expect("begin 4");
    opt.apply(&mut model, &delta(4, D)).expect("apply");
    let new = RoundRecord {
        round: 4,
        test: Some(Metrics::of_scores_at(&[0.2, 0.7], &[0.0, 1.0], 0.6)),
        ..old.clone()
    };
    store
        .commit_round(
            job,
            &RoundCommit {
                round: 4,
                record: &new,
                model: &model,
                opt_state: &opt,
                transcript: &entries(4),
                transcript_head: head(4),
            },
        )
        .expect("commit 4");
    let rounds: Vec<RoundEntry<RoundRecord>> = store.rounds(job).expect("mixed layouts");
    let outcomes: Vec<_> = rounds.iter().map(|r| (r.round, r.outcome)).collect();
    assert_eq!(
        outcomes,
        vec![
            (1, RoundOutcome::Completed),
            (2, RoundOutcome::Failed),
            (3, RoundOutcome::Abandoned),
            (4, RoundOutcome::Completed)
        ]
    );
    assert_eq!(rounds[0].record.as_ref(), Some(old));
    assert_eq!(rounds[3].record.as_ref(), Some(&new));
    let m4 = new.test.expect("metrics 4");
    assert_eq!(
        (m4.threshold, m4.pr_auc, m4.f1),
        (0.6, Some(1.0), Some(1.0))
    );
}

#[test]
fn a_record_layout_newer_than_the_build_is_refused_naming_it() {
    use crate::progress::RoundRecord;

    let f = fixture();
    let store = Store::open(&f.path).expect("open");
    let (job, mut model, mut opt) = started(&store);
    run_round(&store, job, 1, &mut model, &mut opt).expect("round 1");
    let row = RoundRow {
        outcome: RoundOutcome::Completed,
        record: Some(vec![0; 4]),
        transcript_start: 0,
        transcript_end: 1,
        transcript_head: head(1),
        committed_unix_ms: 1,
    };
    put_raw_row(&store, job, 1, &encode_row(&row, 9).expect("row"));
    let e = store.rounds::<RoundRecord>(job).expect_err("layout 9");
    let msg = e.to_string();
    assert!(
        msg.contains("layout 9") && msg.contains("newer build"),
        "{msg}"
    );
    // A row cut short inside its layout number is damage, not an old row.
    let mut bytes = encode_row(&row, 300).expect("row");
    bytes.pop();
    put_raw_row(&store, job, 1, &bytes);
    assert!(matches!(
        store.rounds::<RoundRecord>(job),
        Err(StoreError::Corrupt { .. })
    ));
}
