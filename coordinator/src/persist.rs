//! Keeping a running job in the [`Store`] as it goes: the job is submitted and started with
//! its initial model; each round is marked in flight when it starts, and recorded when it
//! ends — its record, the new model and, for a proven job, the transcript records appended
//! since the last round (the job header and enrolments go with round 1) — in one
//! transaction. A coordinator that stops at any point leaves a store that
//! [`transcript_of`] reads back as a hash-chained transcript `cairn audit` can check.
//!
//! After a restart, [`Persist::resume`] picks a running job up where it stopped: the round in
//! flight is recorded as abandoned and the rounds go on from the last completed one.
//!
//! The store's calls block on disk (fsync); they run on tokio's blocking threads.

use std::sync::Arc;

use cairn_protocol::job::ResumePoint;
use cairn_protocol::server_opt::{ServerOptState, ServerOptimizer};
use cairn_protocol::transcript::{Entry, Record, Transcript};

use crate::progress::RoundRecord;
use crate::store::{JobId, RoundCommit, RoundOutcome, Store, StoreError};
use crate::transcript::Recorder;

/// A job being recorded in a store.
#[derive(Debug)]
pub struct Persist {
    store: Arc<Store>,
    job: JobId,
    /// Transcript records already stored.
    written: usize,
    /// A resumed proven job's transcript so far, for the driver to go on recording.
    recorder: Option<Recorder>,
}

/// Where [`Persist::resume`] picked a job up.
#[derive(Debug)]
pub struct Resumed {
    /// Where the job's rounds go on from.
    pub point: ResumePoint,
    /// The round that was in flight and is now recorded as abandoned.
    pub abandoned: Option<u32>,
}

impl Persist {
    /// Submits `config` (kept as given, e.g. the job file) as job `name` and starts it at
    /// once from `initial` with a fresh state of `server`.
    pub fn start(
        store: Arc<Store>,
        name: &str,
        config: &[u8],
        initial: &[f32],
        server: ServerOptimizer,
    ) -> Result<Self, StoreError> {
        let job = store.submit(name, config)?;
        Self::start_queued(store, job, initial, server)
    }

    /// Starts queued job `job` from `initial` with a fresh state of `server` (refused while
    /// another job runs).
    pub fn start_queued(
        store: Arc<Store>,
        job: JobId,
        initial: &[f32],
        server: ServerOptimizer,
    ) -> Result<Self, StoreError> {
        let opt = ServerOptState::new(server, initial.len()).map_err(|e| StoreError::Corrupt {
            what: "optimiser state",
            reason: e.to_string(),
        })?;
        store.start_job(job, initial, &opt)?;
        Ok(Self {
            store,
            job,
            written: 0,
            recorder: None,
        })
    }

    /// Picks up running job `job` after a restart: the last completed round's model and
    /// optimiser state, and for a proven job (`proven`) its transcript so far, continued
    /// with an [`Entry::Resumed`] marker. A
    /// round that was in flight is recorded as abandoned (nothing applied) together with
    /// the marker, in one transaction; otherwise the marker is stored with the next round.
    /// A proven job stopped before its first round was recorded has no transcript yet: it
    /// gets no marker, and the driver starts its transcript as for a new job.
    pub fn resume(
        store: Arc<Store>,
        job: JobId,
        proven: bool,
    ) -> Result<(Self, Resumed), StoreError> {
        let r = store.resume(job)?;
        let abandoned_before = store
            .rounds::<RoundRecord>(job)?
            .iter()
            .filter(|r| r.outcome == RoundOutcome::Abandoned)
            .count();
        let mut point = ResumePoint {
            model: r.model,
            opt_state: r.opt_state,
            next_round: r.in_flight.map_or(r.next_round, |f| f + 1),
            completed: r.info.rounds_completed,
            committed: Default::default(),
            abandoned: u32::try_from(abandoned_before).unwrap_or(u32::MAX)
                + u32::from(r.in_flight.is_some()),
            randomness: Vec::new(),
        };
        // A proven job's transcript is stored from its first recorded round on (the header
        // and enrolments go with it): before that there is nothing to continue, and the
        // driver starts the transcript afresh.
        let mut recorder = if proven && r.transcript_len > 0 {
            let so_far = transcript_of(&store, job)?;
            so_far.verify_chain().map_err(|e| StoreError::Corrupt {
                what: "transcript",
                reason: e.to_string(),
            })?;
            // Each identity's dataset so far, and the job's randomness: the resumed job
            // holds holders to both.
            for rec in &so_far.records {
                match &rec.entry {
                    Entry::Enrolled {
                        identity, dataset, ..
                    } => {
                        point.committed.entry(*identity).or_insert(dataset.facts());
                    }
                    Entry::Randomness { contributions } => {
                        point.randomness.clone_from(contributions);
                    }
                    _ => {}
                }
            }
            Some(Recorder::resume(
                so_far,
                &point.model,
                point.next_round,
                r.in_flight,
            ))
        } else {
            None
        };
        let mut written = usize::try_from(r.transcript_len).unwrap_or(usize::MAX);
        let abandoned = if r.in_flight.is_some() {
            let (entries, head) = match &recorder {
                Some(rec) => (
                    unwritten(rec.transcript(), written),
                    rec.transcript().head(),
                ),
                None => (Vec::new(), r.transcript_head),
            };
            written += entries.len();
            store.abandon_in_flight(job, &entries, head)?
        } else {
            None
        };
        if let Some(rec) = &mut recorder {
            debug_assert!(written <= rec.transcript().records.len());
        }
        Ok((
            Self {
                store,
                job,
                written,
                recorder,
            },
            Resumed { point, abandoned },
        ))
    }

    /// The resumed transcript, for the driver (once).
    pub fn take_recorder(&mut self) -> Option<Recorder> {
        self.recorder.take()
    }

    /// The job's id in the store.
    pub fn job(&self) -> JobId {
        self.job
    }

    /// Marks `round` in flight.
    pub async fn begin_round(&self, round: u32) -> Result<(), StoreError> {
        let (store, job) = (Arc::clone(&self.store), self.job);
        blocking(move || store.begin_round(job, round)).await
    }

    /// Records a round: completed with the new model and optimiser state when `applied` is
    /// `Some`, failed otherwise.
    pub async fn end_round(
        &mut self,
        rec: &RoundRecord,
        applied: Option<(&[f32], &ServerOptState)>,
        transcript: Option<&Transcript>,
    ) -> Result<(), StoreError> {
        let entries = transcript.map_or(Vec::new(), |t| unwritten(t, self.written));
        let entries_len = entries.len();
        let head = transcript.map_or([0; 32], Transcript::head);
        let (store, job, rec) = (Arc::clone(&self.store), self.job, rec.clone());
        let applied = applied.map(|(m, o)| (m.to_vec(), o.clone()));
        blocking(move || match applied {
            Some((model, opt)) => store
                .commit_round(
                    job,
                    &RoundCommit {
                        round: rec.round,
                        record: &rec,
                        model: &model,
                        opt_state: &opt,
                        transcript: &entries,
                        transcript_head: head,
                    },
                )
                .map(drop),
            None => store
                .commit_failed_round(job, rec.round, &rec, &entries, head)
                .map(drop),
        })
        .await?;
        self.written += entries_len;
        Ok(())
    }

    /// Ends the job (finished, or failed with `error`).
    pub async fn finish(
        &self,
        error: Option<String>,
        transcript: Option<&Transcript>,
    ) -> Result<(), StoreError> {
        // The transcript's last records (its seal) go in with the job's final state.
        let entries = transcript.map_or(Vec::new(), |t| unwritten(t, self.written));
        let head = transcript.map(Transcript::head);
        let (store, job) = (Arc::clone(&self.store), self.job);
        blocking(move || store.finish_job_with(job, error, &entries, head).map(drop)).await
    }
}

/// The encodings of `t`'s records from position `written` on: what the store lacks.
fn unwritten(t: &Transcript, written: usize) -> Vec<Vec<u8>> {
    t.records[written.min(t.records.len())..]
        .iter()
        .map(Record::to_bytes)
        .collect()
}

/// The transcript of `job` as the store holds it (the chain is not checked here).
pub fn transcript_of(store: &Store, job: JobId) -> Result<Transcript, StoreError> {
    let len = store.job(job)?.transcript_len;
    let records = store
        .transcript(job, 0..len)?
        .into_iter()
        .map(|(seq, bytes)| {
            Record::from_bytes(&bytes).map_err(|e| StoreError::Corrupt {
                what: "transcript",
                reason: format!("entry {seq}: {e}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Transcript { records })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Corrupt {
            what: "store task",
            reason: e.to_string(),
        })?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::JobState;
    use cairn_protocol::job::JobEvent;

    const FEDAVG: ServerOptimizer = ServerOptimizer::FedAvg { lr: 1.0 };

    fn record(round: u32) -> RoundRecord {
        RoundRecord {
            round,
            selected: 3,
            contributors: 3,
            dropped: vec![],
            train_loss: 0.5,
            test: None,
            seconds: 1.0,
            failure: None,
            verify_seconds: None,
            rss_bytes: None,
            epsilon: None,
        }
    }

    fn failed(t: &mut Transcript, round: u32) {
        t.append(Entry::RoundFailed {
            round,
            reason: "test".into(),
            dropped: vec![(1, "gone".into())],
        });
    }

    #[tokio::test]
    async fn rounds_and_their_transcript_records_are_stored_as_they_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("db")).unwrap());
        let mut p = Persist::start(Arc::clone(&store), "j", b"cfg", &[0.0; 4], FEDAVG).unwrap();
        let opt = ServerOptState::new(FEDAVG, 4).unwrap();
        let mut t = Transcript::default();
        failed(&mut t, 1);
        failed(&mut t, 1);
        p.begin_round(1).await.unwrap();
        assert_eq!(store.job(p.job()).unwrap().in_flight, Some(1));
        p.end_round(&record(1), None, Some(&t)).await.unwrap();
        failed(&mut t, 2);
        p.begin_round(2).await.unwrap();
        p.end_round(&record(2), Some((&[1.0; 4], &opt)), Some(&t))
            .await
            .unwrap();
        assert_eq!(
            transcript_of(&store, p.job()).unwrap(),
            t,
            "each record once, in order"
        );
        assert_eq!(store.model(p.job(), 2).unwrap(), Some(vec![1.0; 4]));
        // A round number is never recorded twice.
        assert!(p
            .end_round(&record(2), Some((&[2.0; 4], &opt)), Some(&t))
            .await
            .is_err());
        p.finish(None, None).await.unwrap();
        assert_eq!(store.job(p.job()).unwrap().state, JobState::Finished);
    }

    #[tokio::test]
    async fn a_resumed_job_abandons_its_round_in_flight_and_goes_on_from_the_last_model() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("db")).unwrap());
        let adam = ServerOptimizer::FedAdam(Default::default());
        let mut p = Persist::start(Arc::clone(&store), "j", b"", &[0.0; 3], adam).unwrap();
        let mut opt = ServerOptState::new(adam, 3).unwrap();
        let mut model = vec![0.0; 3];
        opt.apply(&mut model, &[0.1, -0.2, 0.3]).unwrap();
        p.begin_round(1).await.unwrap();
        p.end_round(&record(1), Some((&model, &opt)), None)
            .await
            .unwrap();
        p.begin_round(2).await.unwrap();
        drop(p); // the coordinator dies with round 2 in flight

        let (_, resumed) = Persist::resume(Arc::clone(&store), 1, false).unwrap();
        assert_eq!(resumed.abandoned, Some(2));
        assert_eq!(
            resumed.point.model, model,
            "the last completed round's model"
        );
        assert_eq!(resumed.point.opt_state, opt, "and its optimiser moments");
        assert_eq!((resumed.point.next_round, resumed.point.completed), (3, 1));
        assert_eq!(
            resumed.point.abandoned, 1,
            "round 2's number is made up for"
        );
        let rounds = store.rounds::<RoundRecord>(1).unwrap();
        assert_eq!(
            rounds
                .iter()
                .map(|r| (r.round, r.outcome))
                .collect::<Vec<_>>(),
            [(1, RoundOutcome::Completed), (2, RoundOutcome::Abandoned)]
        );
        // A second restart with nothing in flight abandons nothing and changes nothing.
        let (_, again) = Persist::resume(Arc::clone(&store), 1, false).unwrap();
        assert_eq!((again.abandoned, again.point.next_round), (None, 3));
        assert_eq!(again.point.abandoned, 1, "counted from the store");
        assert_eq!(store.rounds::<RoundRecord>(1).unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_proven_job_stopped_before_its_first_record_starts_its_transcript_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("db")).unwrap());
        let p = Persist::start(Arc::clone(&store), "j", b"", &[0.0; 2], FEDAVG).unwrap();
        p.begin_round(1).await.unwrap();
        drop(p); // killed during round 1: nothing of the transcript stored yet
        let (mut p, resumed) = Persist::resume(Arc::clone(&store), 1, true).unwrap();
        assert_eq!(resumed.abandoned, Some(1));
        assert!(
            p.take_recorder().is_none(),
            "no marker without a header: the driver writes the header first"
        );
        assert_eq!(store.job(1).unwrap().transcript_len, 0);
    }

    #[tokio::test]
    async fn a_resumed_proven_job_continues_its_transcript_with_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("db")).unwrap());
        let mut p = Persist::start(Arc::clone(&store), "j", b"", &[0.0; 2], FEDAVG).unwrap();
        let mut t = Transcript::default();
        failed(&mut t, 1);
        p.begin_round(1).await.unwrap();
        p.end_round(&record(1), None, Some(&t)).await.unwrap();
        p.begin_round(2).await.unwrap();
        drop(p);

        let (mut p, resumed) = Persist::resume(Arc::clone(&store), 1, true).unwrap();
        assert_eq!(resumed.abandoned, Some(2));
        let rec = p.take_recorder().expect("a proven job's transcript");
        let t = rec.transcript();
        assert_eq!(t.records.len(), 2);
        assert!(matches!(
            t.records[1].entry,
            Entry::Resumed {
                next_round: 3,
                abandoned: Some(2)
            }
        ));
        // The marker went in with the abandoned round: the store's transcript is the same.
        assert_eq!(&transcript_of(&store, 1).unwrap(), t);
        assert_eq!(t.verify_chain(), Ok(()));

        // Stopped again with nothing in flight: the marker waits for the next entry, so a
        // job with nothing left to record leaves its transcript as the store holds it.
        drop(p);
        let (mut p, resumed) = Persist::resume(Arc::clone(&store), 1, true).unwrap();
        assert_eq!(resumed.abandoned, None);
        let mut rec = p.take_recorder().expect("transcript");
        assert_eq!(rec.transcript(), &transcript_of(&store, 1).unwrap());
        rec.on_event(&JobEvent::RoundFailed {
            round: 3,
            reason: "test".into(),
            dropped: vec![],
        });
        let kinds: Vec<bool> = rec.transcript().records[2..]
            .iter()
            .map(|r| matches!(r.entry, Entry::Resumed { .. }))
            .collect();
        assert_eq!(kinds, [true, false], "the marker, then the round");
    }
}
