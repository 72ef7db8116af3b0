//! Keeping a running job in the [`Store`] as it goes: the job is submitted and started with
//! its initial model; each round is marked in flight when it starts, and recorded when it
//! ends — its record, the new model and, for a proven job, the transcript records appended
//! since the last round (the job header and enrolments go with round 1) — in one
//! transaction. A coordinator that stops at any point leaves a store that
//! [`transcript_of`] reads back as a hash-chained transcript `cairn audit` can check.
//!
//! The store's calls block on disk (fsync); they run on tokio's blocking threads.

use std::sync::Arc;

use cairn_protocol::server_opt::{ServerOptState, ServerOptimizer};
use cairn_protocol::transcript::{Record, Transcript};

use crate::progress::RoundRecord;
use crate::store::{JobId, RoundCommit, Store, StoreError};

/// A job being recorded in a store.
#[derive(Debug)]
pub struct Persist {
    store: Arc<Store>,
    job: JobId,
    opt: ServerOptState,
    /// Transcript records already stored.
    written: usize,
}

impl Persist {
    /// Submits `config` (kept as given, e.g. the job file) as job `name` and starts it from
    /// `initial` with plain FedAvg at `server_lr`.
    pub fn start(
        store: Arc<Store>,
        name: &str,
        config: &[u8],
        initial: &[f32],
        server_lr: f32,
    ) -> Result<Self, StoreError> {
        let opt = ServerOptState::new(ServerOptimizer::FedAvg { lr: server_lr }, initial.len())
            .map_err(|e| StoreError::Corrupt {
                what: "optimiser state",
                reason: e.to_string(),
            })?;
        // Resuming a job after a restart is not built yet: a job an earlier coordinator
        // left running ends as failed (its rounds and transcript stay readable).
        for old in store.running()? {
            let head = store.job(old)?.transcript_head;
            store.abandon_in_flight(old, &[], head)?;
            store.finish_job(
                old,
                Some("the coordinator stopped before the job ended".into()),
            )?;
        }
        let job = store.submit(name, config)?;
        store.start_job(job, initial, &opt)?;
        Ok(Self {
            store,
            job,
            opt,
            written: 0,
        })
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

    /// Records a round: completed with `model` when `model` is `Some`, failed otherwise.
    pub async fn end_round(
        &mut self,
        rec: &RoundRecord,
        model: Option<&[f32]>,
        transcript: Option<&Transcript>,
    ) -> Result<(), StoreError> {
        let records =
            transcript.map_or(&[][..], |t| &t.records[self.written.min(t.records.len())..]);
        let entries: Vec<Vec<u8>> = records.iter().map(Record::to_bytes).collect();
        let head = transcript.map_or([0; 32], Transcript::head);
        let (store, job, rec, opt) = (
            Arc::clone(&self.store),
            self.job,
            rec.clone(),
            self.opt.clone(),
        );
        let model = model.map(<[f32]>::to_vec);
        blocking(move || match model {
            Some(model) => store
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
        self.written += records.len();
        Ok(())
    }

    /// Ends the job (finished, or failed with `error`).
    pub async fn finish(&self, error: Option<String>) -> Result<(), StoreError> {
        let (store, job) = (Arc::clone(&self.store), self.job);
        blocking(move || store.finish_job(job, error).map(drop)).await
    }
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
    use cairn_protocol::transcript::Entry;

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
        let mut p = Persist::start(Arc::clone(&store), "j", b"cfg", &[0.0; 4], 1.0).unwrap();
        let mut t = Transcript::default();
        failed(&mut t, 1);
        failed(&mut t, 1);
        p.begin_round(1).await.unwrap();
        assert_eq!(store.job(p.job()).unwrap().in_flight, Some(1));
        p.end_round(&record(1), None, Some(&t)).await.unwrap();
        failed(&mut t, 2);
        p.begin_round(2).await.unwrap();
        p.end_round(&record(2), Some(&[1.0; 4]), Some(&t))
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
            .end_round(&record(2), Some(&[2.0; 4]), Some(&t))
            .await
            .is_err());
        p.finish(None).await.unwrap();
        assert_eq!(store.job(p.job()).unwrap().state, JobState::Finished);
    }

    #[tokio::test]
    async fn a_job_left_running_by_a_stopped_coordinator_ends_as_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("db")).unwrap());
        let old = Persist::start(Arc::clone(&store), "old", b"", &[0.0; 2], 1.0).unwrap();
        old.begin_round(1).await.unwrap();
        let new = Persist::start(Arc::clone(&store), "new", b"", &[0.0; 2], 1.0).unwrap();
        let info = store.job(old.job()).unwrap();
        assert!(matches!(&info.state, JobState::Failed(why) if why.contains("stopped")));
        assert_eq!(info.in_flight, None);
        assert_eq!(store.job(new.job()).unwrap().state, JobState::Running);
    }
}
