//! Enrolment by allow-listed identity keys and a proven job, each side its own process:
//! four holders make identity keys with `cairn keygen identity`; a job file allow-lists
//! three of them and proves its rounds; `cairn coordinator --job` sets up the keys, the
//! three listed holders join with `--identity` and `--keys` and prove every update, the
//! job completes and `cairn audit` passes its transcript. The fourth holder is refused at
//! the TLS handshake with its key named, and its process fails. A holder without the
//! proving key is told which file it lacks; bad enrolment settings are named.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cairn_protocol::transcript::Transcript;

mod common;
use common::{cairn, wait_with_timeout, Guard};

/// A small labelled table (200 rows, 3 features): 160 training rows, about 53 per holder,
/// so that the holders' trees have depth 6, the smallest proof shape the tests use.
fn write_table(path: &Path) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let mut csv = String::from("a,b,c,FLAG\n");
    for _ in 0..200 {
        let (a, b, c) = (next(), next(), next());
        let flag = u8::from(a + 0.5 * b - c + 0.3 * next() > 0.0);
        csv.push_str(&format!("{a:.6},{b:.6},{c:.6},{flag}\n"));
    }
    std::fs::write(path, csv).expect("write table");
}

/// `cairn keygen identity --out FILE`; returns the public key (hex) from `FILE.pub`.
fn keygen(path: &Path) -> String {
    let o = cairn()
        .args(["keygen", "identity", "--out"])
        .arg(path)
        .output()
        .expect("run keygen");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut public = path.as_os_str().to_owned();
    public.push(".pub");
    std::fs::read_to_string(PathBuf::from(public))
        .expect("public key file")
        .trim()
        .to_string()
}

type Lines = std::io::Lines<BufReader<std::process::ChildStdout>>;

/// Starts `cairn coordinator --job JOB` on an ephemeral loopback port; returns it, the rest
/// of its stdout, its address and fingerprint, and the lines read so far.
fn spawn_coordinator(
    job: &Path,
    keys: &Path,
    out: &Path,
) -> (Guard, Lines, String, String, Vec<String>) {
    let mut coord = Guard(
        cairn()
            .args(["coordinator", "--listen", "127.0.0.1:0", "--job"])
            .arg(job)
            .arg("--keys")
            .arg(keys)
            .arg("--out")
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn coordinator"),
    );
    let mut lines = BufReader::new(coord.0.stdout.take().expect("stdout")).lines();
    let (mut addr, mut fp, mut seen) = (None, None, Vec::new());
    // Address and fingerprint first, then the job's enrolment once it is planned.
    while addr.is_none()
        || fp.is_none()
        || !seen.iter().any(|l: &String| l.starts_with("enrolment:"))
    {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("coordinator printed its address: {seen:?}"))
            .expect("utf-8");
        if let Some(a) = line.strip_prefix("listening on ") {
            addr = Some(a.to_string());
        }
        if let Some(f) = line.strip_prefix("fingerprint ") {
            fp = Some(f.to_string());
        }
        seen.push(line);
    }
    (coord, lines, addr.expect("addr"), fp.expect("fp"), seen)
}

/// The job file of the proven tests: logistic regression on `table`, 2 rounds of K = 1,
/// B = 2, trees of depth 6, three holders, and `enrolment` as its `[enrolment]` table.
fn proven_job(path: &Path, table: &Path, enrolment: &str) {
    std::fs::write(
        path,
        format!(
            r#"name = "enrolled"
rounds = 2
[data]
path = "{}"
[model]
hidden = []
[participants]
per_round = 3
min = 3
[train]
steps = 1
batch = 2
[server]
optimizer = "fedavg"
lr = 1.0
[proofs]
enabled = true
tree_depth = 6
[enrolment]
{enrolment}
[deadlines]
round_timeout_secs = 90
join_timeout_secs = 120
"#,
            table.display()
        ),
    )
    .expect("write job file");
}

#[test]
fn allow_listed_holders_prove_a_job_across_processes_and_a_stranger_is_refused() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let table = dir.path().join("table.csv");
    write_table(&table);
    let keys = dir.path().join("keys");
    let out = dir.path().join("out");
    let identities: Vec<PathBuf> = (0..4)
        .map(|i| dir.path().join(format!("holder-{i}.key")))
        .collect();
    let public: Vec<String> = identities.iter().map(|p| keygen(p)).collect();

    let job = dir.path().join("job.toml");
    let allowed = public[..3]
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    proven_job(&job, &table, &format!("allowed = [{allowed}]"));

    let (mut coord, lines, addr, fp, seen) = spawn_coordinator(&job, &keys, &out);
    assert!(
        seen.iter().any(|l| l.contains("allow-list of 3")),
        "{seen:?}"
    );
    let participant = |i: usize, identity: &Path| {
        let mut c = cairn();
        c.args(["participant", "--coordinator", &addr, "--fingerprint", &fp])
            .args(["--device", "cpu", "--data"])
            .arg(&table)
            .args(["--holder", &(i % 3).to_string(), "--of", "3", "--identity"])
            .arg(identity)
            .arg("--keys")
            .arg(&keys);
        c
    };

    // The holder who is not on the list never gets past the handshake.
    let stranger = participant(0, &identities[3])
        .output()
        .expect("run the unlisted participant");
    let err = String::from_utf8_lossy(&stranger.stderr);
    assert!(!stranger.status.success(), "{err}");
    assert!(
        err.contains("TLS handshake refused")
            && err.contains("not on this job's allow-list")
            && err.contains(&public[3]),
        "{err}"
    );

    // The listed holders join with their keys, prove both rounds, and finish.
    let holders: Vec<Guard> = (0..3)
        .map(|i| {
            Guard(
                participant(i, &identities[i])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn participant"),
            )
        })
        .collect();
    for mut h in holders {
        let status = wait_with_timeout(&mut h.0, Duration::from_secs(240));
        let mut text = String::new();
        if let Some(mut o) = h.0.stdout.take() {
            std::io::Read::read_to_string(&mut o, &mut text).ok();
        }
        assert!(status.success(), "{text}");
        assert_eq!(text.matches("proved in").count(), 2, "{text}");
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        wait_with_timeout(&mut coord.0, Duration::from_secs(60)).success(),
        "{rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.starts_with("job complete: 2 rounds")),
        "{rest:?}"
    );

    // The transcript the coordinator wrote audits clean, from the file alone.
    let transcript = out.join("transcript.cairn");
    let audit = cairn()
        .arg("audit")
        .arg(&transcript)
        .output()
        .expect("run audit");
    assert!(
        audit.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
    // The store the coordinator recorded round by round holds the same transcript.
    let db = out.join("cairn.redb");
    let store = cairn_coordinator::store::Store::open(&db).expect("store");
    let jobs = store.jobs().expect("jobs");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].rounds_completed, 2);
    let stored = cairn_coordinator::persist::transcript_of(&store, jobs[0].id).expect("read");
    let file = Transcript::from_bytes(&std::fs::read(&transcript).expect("file")).expect("decode");
    assert_eq!(stored, file, "the store and the exported file agree");
    drop(store);
    let audit = cairn()
        .args(["audit", "--store"])
        .arg(&db)
        .output()
        .expect("run audit");
    let stdout = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success() && stdout.contains("verdict: PASS"),
        "{stdout}"
    );
    eprintln!("whole test: {:.1} s", t0.elapsed().as_secs_f64());
}

/// A holder without the proving key of the job's shape is told which file it lacks, and
/// leaves; it never runs a setup of its own.
#[test]
fn a_holder_without_the_proving_key_is_told_which_file_it_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table = dir.path().join("table.csv");
    write_table(&table);
    let job = dir.path().join("job.toml");
    proven_job(&job, &table, "");
    let (keys, empty) = (dir.path().join("keys"), dir.path().join("empty"));
    std::fs::create_dir_all(&empty).expect("mkdir");
    let (_coord, _lines, addr, fp, _) = spawn_coordinator(&job, &keys, &dir.path().join("out"));
    let o = cairn()
        .args(["participant", "--coordinator", &addr, "--fingerprint", &fp])
        .args(["--device", "cpu", "--data"])
        .arg(&table)
        .args(["--holder", "0", "--of", "3", "--keys"])
        .arg(&empty)
        .output()
        .expect("run participant");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("no proving key for this job's circuit shape")
            && err.contains(&empty.display().to_string())
            && err.contains(".pk"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&empty).expect("read dir").count(),
        0,
        "the participant wrote no keys"
    );
}

#[test]
fn bad_enrolment_settings_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "[data]\nsynthetic = true\n[enrolment]\nallowed = [\"not-a-key\"]\n",
    )
    .expect("write");
    let out = dir.path().join("out");
    let o = cairn()
        .args(["coordinator", "--listen", "127.0.0.1:0", "--job"])
        .arg(&job)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("enrolment.allowed")
            && err.contains("entry 1")
            && err.contains("64 hex digits"),
        "{err}"
    );
    assert!(
        !out.exists(),
        "a refused job file leaves no coordinator state"
    );

    // The job file sets the whole job: its flags beside it are refused by name.
    let o = cairn()
        .args(["coordinator", "--job"])
        .arg(&job)
        .args(["--rounds", "3", "--out"])
        .arg(&out)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--rounds"), "{err}");

    // A participant's identity file must be a key from `cairn keygen identity`.
    let bogus = dir.path().join("bogus.key");
    std::fs::write(&bogus, "hello\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bogus, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let o = cairn()
        .args(["participant", "--coordinator", "127.0.0.1:9"])
        .args([
            "--fingerprint",
            &"00".repeat(32),
            "--synthetic",
            "--identity",
        ])
        .arg(&bogus)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("not an identity key"),
        "{err}"
    );
}

/// A proven job of three rounds (three holders, each its own process with its identity
/// key) whose coordinator is killed (SIGKILL) once round `kill_at` is durably in flight,
/// then started again: the holders reconnect by themselves and the job completes. Returns
/// the coordinator's line saying where it resumed, the transcript file (which `cairn
/// audit` passed), and the holders' identity key files.
fn killed_proven_job(dir: &Path, kill_at: u32) -> (String, Transcript, Vec<PathBuf>) {
    use common::Proc;

    let table = dir.join("table.csv");
    write_table(&table);
    let (keys, out) = (dir.join("keys"), dir.join("out"));
    let job = dir.join("job.toml");
    proven_job(&job, &table, "");
    let text = std::fs::read_to_string(&job)
        .expect("job")
        .replace("rounds = 2", "rounds = 3");
    std::fs::write(&job, text).expect("job");
    let identities: Vec<PathBuf> = (0..3)
        .map(|i| dir.join(format!("holder-{i}.key")))
        .collect();
    for p in &identities {
        keygen(p);
    }
    let limit = Duration::from_secs(240);
    let start = |listen: &str| {
        let mut c = cairn();
        c.args(["coordinator", "--listen", listen, "--job"])
            .arg(&job)
            .arg("--keys")
            .arg(&keys)
            .arg("--out")
            .arg(&out);
        let mut p = Proc::spawn(c);
        let (addr, fp) = p.address(limit);
        (p, addr, fp)
    };
    let (mut coord, addr, fp) = start("127.0.0.1:0");
    let mut holders: Vec<Proc> = identities
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut c = cairn();
            c.args(["participant", "--coordinator", &addr, "--fingerprint", &fp])
                .args(["--device", "cpu", "--data"])
                .arg(&table)
                .args(["--holder", &i.to_string(), "--of", "3", "--identity"])
                .arg(id)
                .arg("--keys")
                .arg(&keys);
            Proc::spawn(c)
        })
        .collect();
    let started = format!("round={kill_at} ");
    coord.wait_for(limit, |l| {
        l.contains("round started") && l.contains(&started)
    });
    coord.signal("KILL");
    coord.wait(limit);
    let (mut coord, _, _) = start(&addr);
    let line = coord.wait_for(limit, |l| l.starts_with("resumed job "));
    assert!(coord.wait(limit).success(), "{}", coord.seen.join("\n"));
    assert!(
        coord.seen.iter().any(|l| l.contains("audit passed")),
        "the coordinator audits what it wrote: {}",
        coord.seen.join("\n")
    );
    for h in &mut holders {
        assert!(h.wait(limit).success(), "{}", h.seen.join("\n"));
    }
    let path = out.join("transcript.cairn");
    let audit = cairn().arg("audit").arg(&path).output().expect("audit");
    let stdout = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success() && stdout.contains("verdict: PASS"),
        "{stdout}"
    );
    let t = Transcript::from_bytes(&std::fs::read(&path).expect("file")).expect("decode");
    (line, t, identities)
}

/// The kinds of a transcript's records, in order.
fn kinds(t: &Transcript) -> Vec<&'static str> {
    use cairn_protocol::transcript::Entry;
    t.records
        .iter()
        .map(|r| match &r.entry {
            Entry::Job { .. } => "job",
            Entry::Enrolled { .. } => "enrolled",
            Entry::Randomness { .. } => "randomness",
            Entry::Resumed { .. } => "resumed",
            Entry::Round { .. } => "round",
            Entry::RoundFailed { .. } => "failed",
            Entry::Finished { .. } => "finished",
        })
        .collect()
}

/// Killed during round 1, before anything of the transcript was stored: the restarted
/// coordinator abandons round 1 and starts the transcript afresh (header, the abandonment
/// of round 1, enrolments), which audits clean over rounds 2 to 4 and ends sealed.
#[test]
fn a_proven_job_killed_in_its_first_round_starts_its_transcript_afresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (line, t, _) = killed_proven_job(dir.path(), 1);
    assert!(
        line.contains("at round 2 (0 completed; round 1 was in flight and is abandoned)"),
        "{line}"
    );
    assert_eq!(
        kinds(&t),
        [
            "job",
            "resumed",
            "enrolled",
            "enrolled",
            "enrolled",
            "randomness",
            "round",
            "round",
            "round",
            "finished"
        ]
    );
}

/// A proven job whose coordinator is killed while its holders prove round 2: the restarted
/// coordinator abandons round 2, the holders (same processes, same identity keys) join and
/// commit to the same datasets again, rounds 3 and 4 are proven, and the transcript — with
/// its resume marker — audits clean. A re-enrolment under another dataset root is caught.
#[test]
fn a_proven_job_resumed_after_a_kill_audits_clean_across_the_restart() {
    use cairn_protocol::transcript::Entry;
    use cairn_protocol::wire::DatasetCommitment;

    let dir = tempfile::tempdir().expect("tempdir");
    let (line, t, identities) = killed_proven_job(dir.path(), 2);
    assert!(
        line.contains("at round 3 (1 completed; round 2 was in flight and is abandoned)"),
        "{line}"
    );
    assert_eq!(
        kinds(&t),
        [
            "job", "enrolled", "enrolled", "enrolled", "randomness", "round", "resumed", "enrolled",
            "enrolled", "enrolled", "round", "round", "finished"
        ],
        "round 2 left no record but the resume marker; rounds 3 and 4 make three; the seal ends it; the randomness drawn before the kill is kept"
    );
    assert!(matches!(
        t.records[6].entry,
        Entry::Resumed {
            next_round: 3,
            abandoned: Some(2)
        }
    ));

    // After the resume, a holder re-enrols under another root (validly signed by its own
    // key): the audit names it even though every signature holds.
    let key0 = cairn_cli::keygen::read_identity(&identities[0]).expect("key");
    let job_id = match &t.records[0].entry {
        Entry::Job { job_id, .. } => job_id.clone(),
        _ => unreachable!(),
    };
    let mut forged = Transcript::default();
    for r in &t.records {
        let mut entry = r.entry.clone();
        if r.seq > 6 {
            if let Entry::Enrolled {
                identity, dataset, ..
            } = &mut entry
            {
                if *identity == key0.public() {
                    let mut root = dataset.root;
                    root[0] ^= 1;
                    *dataset = DatasetCommitment::sign(&job_id, root, dataset.n_rows, &key0);
                }
            }
        }
        forged.append(entry);
    }
    let report = cairn_coordinator::audit::audit(&forged);
    assert!(
        report.problems.iter().any(|f| matches!(
            f.kind,
            cairn_coordinator::audit::FindingKind::DatasetChanged { identity, .. }
                if identity == key0.public()
        )),
        "{:#?}",
        report.problems
    );
}
