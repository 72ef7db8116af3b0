//! The store's read-only queries: job status and listing, the queue, resuming, rounds,
//! models, optimiser states and the transcript. Each reads one consistent snapshot.

use std::ops::Range;

use redb::ReadableTable;
use serde::de::DeserializeOwned;

use cairn_protocol::server_opt::ServerOptState;

use super::{
    decode, decode_record, decode_row, load_job, model_from_bytes, JobId, JobInfo, JobState,
    RecordLayout, Resume, RoundEntry, Store, StoreError, ARTIFACTS, JOBS, JOB_CONFIGS, MODELS,
    OPT_STATES, QUEUE, ROUNDS, TRANSCRIPT,
};

impl Store {
    /// A job's status.
    pub fn job(&self, id: JobId) -> Result<JobInfo, StoreError> {
        let txn = self.db.begin_read()?;
        load_job(&txn.open_table(JOBS)?, id)
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobInfo>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(JOBS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            out.push(decode("job", v.value())?);
        }
        Ok(out)
    }

    /// The configuration a job was submitted with.
    pub fn config(&self, id: JobId) -> Result<Vec<u8>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(JOB_CONFIGS)?;
        let guard = table.get(id)?.ok_or(StoreError::NoSuchJob(id))?;
        Ok(guard.value().to_vec())
    }

    /// The queued jobs in the order they will run (first submitted, first run).
    pub fn queue(&self) -> Result<Vec<JobId>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(QUEUE)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(entry?.0.value());
        }
        Ok(out)
    }

    /// The job to run next: the oldest queued one.
    pub fn next_queued(&self) -> Result<Option<JobId>, StoreError> {
        let txn = self.db.begin_read()?;
        let first = txn.open_table(QUEUE)?.first()?.map(|(k, _)| k.value());
        Ok(first)
    }

    /// Jobs in the running state: after a restart, the job to resume.
    pub fn running(&self) -> Result<Vec<JobId>, StoreError> {
        Ok(self
            .jobs()?
            .into_iter()
            .filter(|j| j.state == JobState::Running)
            .map(|j| j.id)
            .collect())
    }

    /// Where to continue a started job: the last completed round's model and optimiser
    /// state (or the initial ones), the transcript length and head, and the round in flight
    /// if the coordinator stopped during one.
    pub fn resume(&self, job: JobId) -> Result<Resume, StoreError> {
        let txn = self.db.begin_read()?;
        let info = load_job(&txn.open_table(JOBS)?, job)?;
        if info.params.is_none() {
            return Err(StoreError::WrongState {
                job,
                state: info.state,
                action: "resume (it never started)",
            });
        }
        let at = info.last_completed.unwrap_or(0);
        let model = {
            let table = txn.open_table(MODELS)?;
            let guard = table.get((job, at))?.ok_or_else(|| StoreError::Corrupt {
                what: "model",
                reason: format!("job {job} has no model for round {at}"),
            })?;
            model_from_bytes(guard.value())?
        };
        let opt_state: ServerOptState = {
            let table = txn.open_table(OPT_STATES)?;
            let guard = table.get((job, at))?.ok_or_else(|| StoreError::Corrupt {
                what: "optimiser state",
                reason: format!("job {job} has no optimiser state for round {at}"),
            })?;
            decode("optimiser state", guard.value())?
        };
        Ok(Resume {
            last_completed: info.last_completed,
            next_round: info.next_round,
            model,
            opt_state,
            transcript_len: info.transcript_len,
            transcript_head: info.transcript_head,
            in_flight: info.in_flight,
            info,
        })
    }

    /// Every recorded round of a job, in order, with its record decoded as `R` (a record an
    /// older build wrote, in an older layout of `R`, through [`RecordLayout::decode_layout`]).
    pub fn rounds<R: DeserializeOwned + RecordLayout>(
        &self,
        job: JobId,
    ) -> Result<Vec<RoundEntry<R>>, StoreError> {
        let txn = self.db.begin_read()?;
        load_job(&txn.open_table(JOBS)?, job)?;
        let table = txn.open_table(ROUNDS)?;
        let mut out = Vec::new();
        for entry in table.range((job, 0)..=(job, u32::MAX))? {
            let (k, v) = entry?;
            let (row, layout) = decode_row(v.value())?;
            let record = match &row.record {
                Some(bytes) => Some(decode_record(layout, bytes)?),
                None => None,
            };
            out.push(RoundEntry {
                round: k.value().1,
                outcome: row.outcome,
                record,
                transcript: row.transcript_start..row.transcript_end,
                transcript_head: row.transcript_head,
                committed_unix_ms: row.committed_unix_ms,
            });
        }
        Ok(out)
    }

    /// The model after round `round` (0: the initial model), if stored.
    pub fn model(&self, job: JobId, round: u32) -> Result<Option<Vec<f32>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MODELS)?;
        let model = table.get((job, round))?;
        model.map(|g| model_from_bytes(g.value())).transpose()
    }

    /// The optimiser state after round `round` (0: the initial state), if stored.
    pub fn opt_state(&self, job: JobId, round: u32) -> Result<Option<ServerOptState>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OPT_STATES)?;
        let state = table.get((job, round))?;
        state
            .map(|g| decode("optimiser state", g.value()))
            .transpose()
    }

    /// Transcript entries with sequence numbers in `seqs` (clipped to what exists), in order.
    pub fn transcript(
        &self,
        job: JobId,
        seqs: Range<u64>,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TRANSCRIPT)?;
        let mut out = Vec::new();
        if seqs.is_empty() {
            return Ok(out);
        }
        for entry in table.range((job, seqs.start)..(job, seqs.end))? {
            let (k, v) = entry?;
            out.push((k.value().1, v.value().to_vec()));
        }
        Ok(out)
    }

    /// The job's file `name` ([`Store::put_artifact`]), if stored.
    pub fn artifact(&self, job: JobId, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        load_job(&txn.open_table(JOBS)?, job)?;
        let table = txn.open_table(ARTIFACTS)?;
        let bytes = table.get((job, name))?.map(|g| g.value().to_vec());
        Ok(bytes)
    }
}
