//! The coordinator's durable state: jobs, their rounds, models, server-optimiser states and
//! transcripts, in one embedded ACID database file (redb).
//!
//! # What a crash can leave
//!
//! Every change is one transaction, committed with an fsync before the call returns. The one
//! that matters is [`Store::commit_round`]: it stores the round's record, the new model, the
//! optimiser state and the round's transcript entries, and advances the job, all together.
//! A coordinator killed at any point therefore restarts with either the whole round or none
//! of it, and [`Store::resume`] hands back the last completed round's model and optimiser
//! state and the transcript length. A round number is recorded at most once, so no model is
//! applied twice; transcript sequence numbers are assigned here, densely from 0, so no entry
//! is lost or duplicated.
//!
//! # A job's life
//!
//! ```text
//! submit → Queued ─start_job→ Running ─finish_job→ Finished | Failed
//!            │                   │ begin_round → commit_round | commit_failed_round
//!            │                   │ (after a restart: resume → abandon_in_flight)
//!            └──────cancel───────┴→ Cancelled
//! ```
//!
//! Jobs run one after another: [`Store::next_queued`] is the oldest queued job, and
//! [`Store::start_job`] refuses while another job is running.
//!
//! # Layout
//!
//! | table | key | value |
//! |---|---|---|
//! | `jobs` | job id | [`JobInfo`] (bincode) |
//! | `job_configs` | job id | the submitted configuration, as given |
//! | `queue` | job id | — (FIFO by id) |
//! | `rounds` | (job, round) | outcome, record, transcript span and head, then the record's layout (bincode); see [`RoundEntry`], [`RecordLayout`] |
//! | `models` | (job, round) | parameters, f32 little-endian (round 0: the initial model) |
//! | `opt_states` | (job, round) | [`ServerOptState`] (bincode) |
//! | `transcript` | (job, seq) | one entry, as given |
//! | `artifacts` | (job, name) | a named file of the job (its plan, final report, audit), as given |
//!
//! The calls block (disk writes with fsync): from async code, run them on a blocking thread.
//!
//! # Reading a store an older build wrote
//!
//! bincode has no optional fields: a record type that gains a field cannot read its older
//! bytes. So each round row ends with the layout number of its record ([`RecordLayout`]),
//! and a record of an older layout is decoded by its type's
//! [`RecordLayout::decode_layout`]. Rows written before layouts were numbered end without
//! one: their bytes stop where the number would begin, so they are told apart exactly
//! (layout 0). A coordinator restarted on a store an older build wrote thus reads its
//! rounds and resumes its job; a build reading a layout newer than its own refuses it,
//! naming both.

use std::ops::Range;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use cairn_protocol::server_opt::ServerOptState;

mod layouts;
mod read;
mod types;

use types::RoundRow;
pub use types::{
    JobId, JobInfo, JobState, Resume, RoundCommit, RoundEntry, RoundOutcome, StoreError,
    TranscriptHead,
};

const JOBS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("jobs");
const JOB_CONFIGS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("job_configs");
const QUEUE: TableDefinition<'_, u64, ()> = TableDefinition::new("queue");
const ROUNDS: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("rounds");
const MODELS: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("models");
const OPT_STATES: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("opt_states");
const TRANSCRIPT: TableDefinition<'_, (u64, u64), &[u8]> = TableDefinition::new("transcript");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const ARTIFACTS: TableDefinition<'_, (u64, &str), &[u8]> = TableDefinition::new("artifacts");

const NEXT_JOB_ID: &str = "next_job_id";

/// Memory redb may use as a page cache: bounded, so the coordinator's memory stays flat over
/// a long job (the default is 1 GiB).
const CACHE_BYTES: usize = 32 << 20;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn encode<T: Serialize + ?Sized>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|source| StoreError::Encode { what, source })
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    match bincode::serde::decode_from_slice(bytes, bincode::config::standard()) {
        Ok((v, used)) if used == bytes.len() => Ok(v),
        Ok((_, used)) => Err(StoreError::Corrupt {
            what,
            reason: format!("{} trailing bytes", bytes.len() - used),
        }),
        Err(e) => Err(StoreError::Corrupt {
            what,
            reason: e.to_string(),
        }),
    }
}

/// A round record's layout in the store: its bincode encoding, numbered, so that a type
/// that changes (a field added) still reads what an older build wrote.
///
/// A type's first layout is 0 (the default, and what every row written before layouts
/// were numbered holds). Changing the type's encoding means raising [`Self::LAYOUT`] and
/// decoding the older layouts in [`Self::decode_layout`].
pub trait RecordLayout: Sized {
    /// The layout this build writes.
    const LAYOUT: u32 = 0;

    /// Decodes `bytes` (the whole record) written in `layout`, older than
    /// [`Self::LAYOUT`]. The error says why it cannot.
    fn decode_layout(layout: u32, bytes: &[u8]) -> Result<Self, String> {
        let _ = bytes;
        Err(format!("layout {layout} is not readable by this build"))
    }
}

/// A round row and its record's layout, as stored: the row's bincode, then the layout.
fn encode_row(row: &RoundRow, layout: u32) -> Result<Vec<u8>, StoreError> {
    encode("round", &(row, layout))
}

/// Decodes a stored round row and its record's layout: 0 when the row ends where the
/// layout would begin (written before layouts were numbered).
fn decode_row(bytes: &[u8]) -> Result<(RoundRow, u32), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        what: "round",
        reason,
    };
    let (row, used): (RoundRow, usize) =
        bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|e| corrupt(e.to_string()))?;
    if used == bytes.len() {
        return Ok((row, 0));
    }
    let layout = decode("round record layout", &bytes[used..])?;
    Ok((row, layout))
}

/// Decodes a round record of `layout`: this build's own, or an older one through
/// [`RecordLayout::decode_layout`].
fn decode_record<R: DeserializeOwned + RecordLayout>(
    layout: u32,
    bytes: &[u8],
) -> Result<R, StoreError> {
    match layout.cmp(&R::LAYOUT) {
        std::cmp::Ordering::Equal => decode("round record", bytes),
        std::cmp::Ordering::Less => {
            R::decode_layout(layout, bytes).map_err(|reason| StoreError::Corrupt {
                what: "round record",
                reason: format!("layout {layout}: {reason}"),
            })
        }
        std::cmp::Ordering::Greater => Err(StoreError::Corrupt {
            what: "round record",
            reason: format!(
                "layout {layout} was written by a newer build; this one reads layouts up to {}",
                R::LAYOUT
            ),
        }),
    }
}

fn model_bytes(model: &[f32]) -> Vec<u8> {
    model.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn model_from_bytes(bytes: &[u8]) -> Result<Vec<f32>, StoreError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt {
            what: "model",
            reason: format!("{} bytes is not a whole number of f32", bytes.len()),
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn load_job(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: JobId,
) -> Result<JobInfo, StoreError> {
    let guard = table.get(id)?.ok_or(StoreError::NoSuchJob(id))?;
    decode("job", guard.value())
}

fn save_job(txn: &WriteTransaction, info: &mut JobInfo) -> Result<(), StoreError> {
    info.updated_unix_ms = now_ms();
    let bytes = encode("job", &*info)?;
    txn.open_table(JOBS)?.insert(info.id, bytes.as_slice())?;
    Ok(())
}

/// Checks `job` is running and `round` may be recorded now (above every recorded round, and
/// the round in flight if there is one).
fn check_recordable(info: &JobInfo, round: u32, action: &'static str) -> Result<(), StoreError> {
    if info.state != JobState::Running {
        return Err(StoreError::WrongState {
            job: info.id,
            state: info.state.clone(),
            action,
        });
    }
    if round < info.next_round {
        return Err(StoreError::RoundAlreadyRecorded {
            job: info.id,
            round,
            next: info.next_round,
        });
    }
    match info.in_flight {
        Some(r) if r != round => Err(StoreError::InFlight {
            job: info.id,
            in_flight: r,
            round,
        }),
        _ => Ok(()),
    }
}

/// Appends `entries` to the job's transcript at the next sequence numbers; returns them.
fn append_transcript(
    txn: &WriteTransaction,
    info: &mut JobInfo,
    entries: &[Vec<u8>],
) -> Result<Range<u64>, StoreError> {
    let start = info.transcript_len;
    let mut table = txn.open_table(TRANSCRIPT)?;
    for (i, e) in entries.iter().enumerate() {
        let seq = start + i as u64;
        if table.insert((info.id, seq), e.as_slice())?.is_some() {
            return Err(StoreError::Corrupt {
                what: "transcript",
                reason: format!(
                    "job {} already has entry {seq} beyond its length {start}",
                    info.id
                ),
            });
        }
    }
    info.transcript_len = start + entries.len() as u64;
    Ok(start..info.transcript_len)
}

/// The database handle: the coordinator's, which writes, or a reader's beside it.
enum Db {
    /// Opened for reading and writing (the coordinator; one process at a time).
    Write(redb::Database),
    /// Opened read-only beside the writer, if there is one ([`Store::open_read_only`]).
    Read(redb::ReadOnlyDatabase),
}

impl Db {
    fn begin_read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        use redb::ReadableDatabase;
        match self {
            Db::Write(db) => db.begin_read(),
            Db::Read(db) => db.begin_read(),
        }
    }
}

/// How the coordinator and readers share the file: one writer (the coordinator) and any
/// number of read-only handles in other processes (`cairn audit --store`), which follow its
/// commits. A second writer is refused, as in the default mode.
const SHARING: redb::ConcurrencyMode = redb::ConcurrencyMode::SingleWriter;

/// The durable store. `Send + Sync`: share it behind an `Arc`.
pub struct Store {
    db: Db,
    /// Opened with [`Store::open_read_only`]: every write is refused.
    read_only: bool,
    #[cfg(test)]
    fail_at: std::sync::Mutex<Option<&'static str>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database file at `path`, creating it (and its tables) if absent. After an
    /// unclean stop redb repairs the file on open; a file another process holds open for
    /// writing is an error (readers beside it are not: [`Store::open_read_only`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .set_concurrency_mode(SHARING)
            .create(path)?;
        let store = Store {
            db: Db::Write(db),
            read_only: false,
            #[cfg(test)]
            fail_at: std::sync::Mutex::new(None),
        };
        store.write(|txn| {
            txn.open_table(JOBS)?;
            txn.open_table(JOB_CONFIGS)?;
            txn.open_table(QUEUE)?;
            txn.open_table(ROUNDS)?;
            txn.open_table(MODELS)?;
            txn.open_table(OPT_STATES)?;
            txn.open_table(TRANSCRIPT)?;
            txn.open_table(META)?;
            txn.open_table(ARTIFACTS)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Opens an existing database file at `path` to read it, beside the coordinator that
    /// may be writing it (`cairn audit --store` of a running coordinator's store): no lock
    /// the writer needs is taken and nothing is written, to the file or beside it. Each
    /// query reads the latest commit. A file left unclean by a coordinator that died (and
    /// that no writer holds now) cannot be read in place without the repair a writer's open
    /// makes: it is read from a copy in memory, repaired there, and the file stays as it
    /// was. Every call that would write is refused with [`StoreError::ReadOnly`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let mut builder = redb::Builder::new();
        builder
            .set_cache_size(CACHE_BYTES)
            .set_concurrency_mode(SHARING);
        let db = match builder.open_read_only(path) {
            Ok(db) => Db::Read(db),
            Err(redb::DatabaseError::RepairAborted) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| StoreError::Db(redb::StorageError::from(e).into()))?;
                let backend = redb::backends::InMemoryBackend::new();
                {
                    use redb::StorageBackend;
                    backend
                        .set_len(bytes.len() as u64)
                        .and_then(|()| backend.write(0, &bytes))
                        .map_err(|e| StoreError::Corrupt {
                            what: "store copy",
                            reason: e.to_string(),
                        })?;
                }
                let mut copy = redb::Builder::new();
                copy.set_cache_size(CACHE_BYTES);
                Db::Write(copy.create_with_backend(backend)?)
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Store {
            db,
            read_only: true,
            #[cfg(test)]
            fail_at: std::sync::Mutex::new(None),
        })
    }

    /// Runs `f` in one write transaction: committed if it succeeds, aborted (nothing
    /// written) if it fails.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = match &self.db {
            Db::Write(db) if !self.read_only => db,
            _ => return Err(StoreError::ReadOnly),
        };
        let txn = db.begin_write()?;
        match f(&txn) {
            Ok(v) => {
                self.fail_point("before commit")?;
                txn.commit()?;
                Ok(v)
            }
            Err(e) => {
                // Dropping aborts too; an abort error would only hide the cause.
                let _ = txn.abort();
                Err(e)
            }
        }
    }

    #[cfg(test)]
    fn fail_point(&self, stage: &'static str) -> Result<(), StoreError> {
        match self.fail_at.lock() {
            Ok(g) if *g == Some(stage) => Err(StoreError::Injected(stage)),
            _ => Ok(()),
        }
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn fail_point(&self, _stage: &'static str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Adds a job to the end of the queue; `config` is kept as given (e.g. the job file's
    /// TOML) for [`Store::config`].
    pub fn submit(&self, name: &str, config: &[u8]) -> Result<JobId, StoreError> {
        self.write(|txn| {
            let id = {
                let mut meta = txn.open_table(META)?;
                let id = meta.get(NEXT_JOB_ID)?.map_or(1, |g| g.value());
                meta.insert(NEXT_JOB_ID, id + 1)?;
                id
            };
            let now = now_ms();
            let mut info = JobInfo {
                id,
                name: name.to_string(),
                state: JobState::Queued,
                created_unix_ms: now,
                updated_unix_ms: now,
                params: None,
                rounds_completed: 0,
                rounds_failed: 0,
                last_completed: None,
                next_round: 1,
                in_flight: None,
                transcript_len: 0,
                transcript_head: [0; 32],
            };
            save_job(txn, &mut info)?;
            txn.open_table(JOB_CONFIGS)?.insert(id, config)?;
            txn.open_table(QUEUE)?.insert(id, ())?;
            Ok(id)
        })
    }

    /// Starts a queued job from `initial` parameters and optimiser state (stored as round
    /// 0, what [`Store::resume`] gives before any round completes). Refused while another
    /// job is running.
    pub fn start_job(
        &self,
        id: JobId,
        initial: &[f32],
        opt_state: &ServerOptState,
    ) -> Result<JobInfo, StoreError> {
        if opt_state.dim() != initial.len() {
            return Err(StoreError::Length {
                job: id,
                what: "optimiser state",
                got: opt_state.dim(),
                want: initial.len(),
            });
        }
        let opt = encode("optimiser state", opt_state)?;
        let model = model_bytes(initial);
        self.write(|txn| {
            let mut info = load_job(&txn.open_table(JOBS)?, id)?;
            if info.state != JobState::Queued {
                return Err(StoreError::WrongState {
                    job: id,
                    state: info.state,
                    action: "start",
                });
            }
            {
                let jobs = txn.open_table(JOBS)?;
                for entry in jobs.iter()? {
                    let (k, v) = entry?;
                    let other: JobInfo = decode("job", v.value())?;
                    if other.state == JobState::Running {
                        return Err(StoreError::Busy {
                            job: id,
                            running: k.value(),
                        });
                    }
                }
            }
            txn.open_table(QUEUE)?.remove(id)?;
            txn.open_table(MODELS)?.insert((id, 0), model.as_slice())?;
            txn.open_table(OPT_STATES)?
                .insert((id, 0), opt.as_slice())?;
            info.state = JobState::Running;
            info.params = Some(initial.len());
            save_job(txn, &mut info)?;
            Ok(info)
        })
    }

    /// Marks `round` as in flight: if the coordinator stops before recording it,
    /// [`Store::resume`] reports it for abandoning.
    pub fn begin_round(&self, job: JobId, round: u32) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut info = load_job(&txn.open_table(JOBS)?, job)?;
            check_recordable(&info, round, "begin a round")?;
            info.in_flight = Some(round);
            save_job(txn, &mut info)
        })
    }

    /// Records a completed round in one transaction: its record, the new model and
    /// optimiser state, its transcript entries (at the next sequence numbers, returned), and
    /// the job's progress. A crash at any point leaves all of it or none of it.
    ///
    /// Refused when the job is not running, when the round number is already used (so no
    /// update is applied twice), when another round is in flight, or when the model or
    /// state does not have the job's parameter count.
    pub fn commit_round<R: Serialize + RecordLayout>(
        &self,
        job: JobId,
        c: &RoundCommit<'_, R>,
    ) -> Result<Range<u64>, StoreError> {
        let record = encode("round record", c.record)?;
        let opt = encode("optimiser state", c.opt_state)?;
        let model = model_bytes(c.model);
        self.write(|txn| {
            let mut info = load_job(&txn.open_table(JOBS)?, job)?;
            check_recordable(&info, c.round, "record a round")?;
            let want = info.params.unwrap_or(c.model.len());
            for (what, got) in [
                ("model", c.model.len()),
                ("optimiser state", c.opt_state.dim()),
            ] {
                if got != want {
                    return Err(StoreError::Length {
                        job,
                        what,
                        got,
                        want,
                    });
                }
            }
            txn.open_table(MODELS)?
                .insert((job, c.round), model.as_slice())?;
            self.fail_point("after model")?;
            txn.open_table(OPT_STATES)?
                .insert((job, c.round), opt.as_slice())?;
            self.fail_point("after optimiser state")?;
            let span = append_transcript(txn, &mut info, c.transcript)?;
            self.fail_point("after transcript")?;
            let row = RoundRow {
                outcome: RoundOutcome::Completed,
                record: Some(record),
                transcript_start: span.start,
                transcript_end: span.end,
                transcript_head: c.transcript_head,
                committed_unix_ms: now_ms(),
            };
            txn.open_table(ROUNDS)?
                .insert((job, c.round), encode_row(&row, R::LAYOUT)?.as_slice())?;
            self.fail_point("after round")?;
            info.rounds_completed += 1;
            info.last_completed = Some(c.round);
            info.next_round = c.round + 1;
            info.in_flight = None;
            info.transcript_head = c.transcript_head;
            save_job(txn, &mut info)?;
            Ok(span)
        })
    }

    /// Records a failed round (nothing applied): its record and transcript entries, in one
    /// transaction, under the same rules as [`Store::commit_round`].
    pub fn commit_failed_round<R: Serialize + RecordLayout>(
        &self,
        job: JobId,
        round: u32,
        record: &R,
        transcript: &[Vec<u8>],
        transcript_head: TranscriptHead,
    ) -> Result<Range<u64>, StoreError> {
        let record = encode("round record", record)?;
        self.write(|txn| {
            let mut info = load_job(&txn.open_table(JOBS)?, job)?;
            check_recordable(&info, round, "record a round")?;
            self.record_unapplied(
                txn,
                &mut info,
                round,
                RoundOutcome::Failed,
                Some((record, R::LAYOUT)),
                transcript,
                transcript_head,
            )
        })
    }

    /// After a restart: records the round that was in flight as abandoned (nothing
    /// applied; its number is not reused) with the given transcript entries, and clears the
    /// marker. Returns the round, or `None` (and changes nothing) when none was in flight.
    pub fn abandon_in_flight(
        &self,
        job: JobId,
        transcript: &[Vec<u8>],
        transcript_head: TranscriptHead,
    ) -> Result<Option<u32>, StoreError> {
        self.write(|txn| {
            let mut info = load_job(&txn.open_table(JOBS)?, job)?;
            let Some(round) = info.in_flight else {
                return Ok(None);
            };
            check_recordable(&info, round, "abandon a round")?;
            self.record_unapplied(
                txn,
                &mut info,
                round,
                RoundOutcome::Abandoned,
                None,
                transcript,
                transcript_head,
            )?;
            Ok(Some(round))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn record_unapplied(
        &self,
        txn: &WriteTransaction,
        info: &mut JobInfo,
        round: u32,
        outcome: RoundOutcome,
        record: Option<(Vec<u8>, u32)>,
        transcript: &[Vec<u8>],
        transcript_head: TranscriptHead,
    ) -> Result<Range<u64>, StoreError> {
        let span = append_transcript(txn, info, transcript)?;
        self.fail_point("after transcript")?;
        let (record, layout) = record.map_or((None, 0), |(r, l)| (Some(r), l));
        let row = RoundRow {
            outcome,
            record,
            transcript_start: span.start,
            transcript_end: span.end,
            transcript_head,
            committed_unix_ms: now_ms(),
        };
        txn.open_table(ROUNDS)?
            .insert((info.id, round), encode_row(&row, layout)?.as_slice())?;
        info.rounds_failed += 1;
        info.next_round = round + 1;
        info.in_flight = None;
        info.transcript_head = transcript_head;
        save_job(txn, info)?;
        Ok(span)
    }

    /// Ends a running job: finished (`error` is `None`) or failed with the reason. Refused
    /// while a round is in flight (record or abandon it first).
    pub fn finish_job(&self, job: JobId, error: Option<String>) -> Result<JobInfo, StoreError> {
        self.finish_job_with(job, error, &[], None)
    }

    /// [`Store::finish_job`], appending the transcript's last `entries` (the seal) and
    /// moving its head to `transcript_head`, in the same transaction.
    pub fn finish_job_with(
        &self,
        job: JobId,
        error: Option<String>,
        entries: &[Vec<u8>],
        transcript_head: Option<TranscriptHead>,
    ) -> Result<JobInfo, StoreError> {
        self.write(|txn| {
            let mut info = load_job(&txn.open_table(JOBS)?, job)?;
            if info.state != JobState::Running {
                return Err(StoreError::WrongState {
                    job,
                    state: info.state,
                    action: "finish",
                });
            }
            if let Some(r) = info.in_flight {
                return Err(StoreError::InFlight {
                    job,
                    in_flight: r,
                    round: info.next_round,
                });
            }
            append_transcript(txn, &mut info, entries)?;
            if let Some(head) = transcript_head {
                info.transcript_head = head;
            }
            info.state = match error {
                None => JobState::Finished,
                Some(reason) => JobState::Failed(reason),
            };
            save_job(txn, &mut info)?;
            Ok(info)
        })
    }

    /// Stores (or replaces) the job's file `name`: what the coordinator derives from a job
    /// beside its rounds (e.g. its plan when it starts, its report and audit when it ends).
    pub fn put_artifact(&self, job: JobId, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.write(|txn| {
            load_job(&txn.open_table(JOBS)?, job)?;
            txn.open_table(ARTIFACTS)?.insert((job, name), bytes)?;
            Ok(())
        })
    }

    /// Ends a queued or running job as failed without running (more of) it, e.g. when its
    /// configuration cannot run on this coordinator. A round in flight stays unrecorded
    /// (nothing of it was applied). Returns the job as it is now. A job that has ended is
    /// refused.
    pub fn fail(&self, job: JobId, reason: &str) -> Result<JobInfo, StoreError> {
        let mut info = self.end_early(job, JobState::Failed(reason.to_string()), "fail")?;
        info.state = JobState::Failed(reason.to_string());
        Ok(info)
    }

    /// Cancels a queued or running job (a running job's driver sees it when it next
    /// records a round, which is refused). Returns the state it had. A job that has ended
    /// cannot be cancelled.
    pub fn cancel(&self, job: JobId) -> Result<JobState, StoreError> {
        Ok(self.end_early(job, JobState::Cancelled, "cancel")?.state)
    }

    /// Takes a queued or running job out of the queue into the terminal `state`; returns
    /// the job as it was.
    fn end_early(
        &self,
        job: JobId,
        state: JobState,
        action: &'static str,
    ) -> Result<JobInfo, StoreError> {
        self.write(|txn| {
            let mut info = load_job(&txn.open_table(JOBS)?, job)?;
            if info.state.is_terminal() {
                return Err(StoreError::WrongState {
                    job,
                    state: info.state,
                    action,
                });
            }
            txn.open_table(QUEUE)?.remove(job)?;
            let before = info.clone();
            info.state = state;
            save_job(txn, &mut info)?;
            Ok(before)
        })
    }
}

#[cfg(test)]
mod tests;
