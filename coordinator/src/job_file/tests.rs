//! Tests of the job file: the committed example, defaults, every invalid key named, unknown
//! keys refused, conversion into the coordinator's `JobConfig`.

use std::time::Duration;

use cairn_protocol::round::{Aggregation, SecureSettings};
use cairn_protocol::server_opt::{AdaptiveParams, ServerOptimizer};

use super::*;

const EXAMPLE: &str = include_str!("../../../examples/job.toml");

#[test]
fn the_committed_example_parses_and_converts() {
    let file = JobFile::from_toml(EXAMPLE).expect("examples/job.toml is valid");
    assert_eq!(file.name, "eth-fraud-fedadam");
    assert_eq!(file.rounds, 50);
    assert_eq!(
        file.server,
        ServerOptimizer::FedAdam(AdaptiveParams {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.99,
            tau: 0.001
        })
    );
    assert_eq!(file.min_participants(), 3);
    let r = file.to_config("job-1", 45, 2).expect("to_config");
    let c = &r.config;
    assert_eq!(c.job_id, "job-1");
    assert_eq!(c.model, ModelSpec::mlp(45, vec![16]));
    assert_eq!((c.rounds, c.participants, c.min_participants), (50, 5, 3));
    assert_eq!(
        c.hyper,
        HyperParams {
            local_steps: 20,
            batch_size: 32,
            learning_rate: 0.1,
            clip_norm: 10.0
        }
    );
    assert_eq!(c.server, file.server, "the job runs the file's optimiser");
    assert_eq!(c.server.name(), "fedadam");
    assert_eq!(c.round_timeout, Duration::from_secs(120));
    assert_eq!(c.join_timeout, Duration::from_secs(300));
    assert_eq!(c.seed, 7);
    assert_eq!(
        c.aggregation,
        Aggregation::Secure(SecureSettings {
            dropout: 0.2,
            corruption: 0.1,
            scale_bits: 16
        })
    );
    assert_eq!(r.server, file.server);
    assert!(!r.proofs.enabled);
    assert_eq!(r.proofs.tolerance, 0.001);
    assert_eq!(
        (r.load.label.as_str(), r.load.test_fraction, r.load.seed),
        ("FLAG", 0.2, 7)
    );
}

#[test]
fn proofs_and_the_allow_list_reach_the_coordinator() {
    const KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let file = JobFile::from_toml(&format!(
        "[proofs]\nenabled = true\ntolerance = 0.002\ntree_depth = 6\n[enrolment]\nallowed = [\"{KEY}\"]\n"
    ))
    .expect("valid");
    let r = file.to_config("j", 3, 2).expect("to_config");
    let p = r.config.proof.expect("proofs enabled");
    assert_eq!((p.tolerance, p.tree_depth), (0.002, 6));
    let key = cairn_protocol::enrolment::parse_identity(KEY).expect("key");
    assert_eq!(r.enrolment, Enrolment::allow([key]));
    // Written out and read back, the list survives; without it enrolment is open.
    let again = JobFile::from_toml(&file.to_toml().expect("toml")).expect("reparse");
    assert_eq!(again, file);
    let open = JobFile::default().to_config("j", 3, 2).expect("to_config");
    assert_eq!(open.enrolment, Enrolment::Open);
    assert!(open.config.proof.is_none());
}

#[test]
fn an_empty_file_gives_the_demo_defaults() {
    let file = JobFile::from_toml("").expect("empty file");
    assert_eq!(file, JobFile::default());
    let c = file.to_config("j", 12, 2).expect("to_config").config;
    assert_eq!((c.rounds, c.participants, c.min_participants), (20, 5, 3));
    assert_eq!(c.hyper, HyperParams::default());
    assert_eq!(c.model.hidden, vec![16]);
    assert_eq!(c.server, ServerOptimizer::FedAvg { lr: 1.0 });
    assert_eq!(
        c.aggregation,
        Aggregation::Secure(SecureSettings::default())
    );
    // Defaults of one table do not need the others; a FedAvg server rate carries over.
    let f = JobFile::from_toml(
        "[server]\noptimizer = \"fedavg\"\nlr = 0.5\n[aggregation]\nmode = \"plain\"\n",
    )
    .expect("parse");
    let c = f.to_config("j", 3, 2).expect("to_config").config;
    assert_eq!(
        (c.server, c.aggregation),
        (ServerOptimizer::FedAvg { lr: 0.5 }, Aggregation::Plain)
    );
    let y = JobFile::from_toml("[server]\noptimizer = \"fedyogi\"\n").expect("yogi");
    assert_eq!(
        y.server,
        ServerOptimizer::FedYogi(AdaptiveParams::default())
    );
    let m = JobFile::from_toml("[participants]\nper_round = 7\n").expect("parse");
    assert_eq!(m.min_participants(), 4, "half, rounded up");
}

/// Parses `text` and returns the field errors it must produce.
fn field_errors(text: &str) -> Vec<FieldError> {
    match JobFile::from_toml(text) {
        Err(JobFileError::Invalid(v)) => v,
        other => panic!("{text:?} should be invalid, got {other:?}"),
    }
}

#[test]
fn every_invalid_value_is_named_with_the_reason() {
    let cases: &[(&str, &str, &str)] = &[
        ("name = \"\"", "name", "1 to 64 characters"),
        ("name = \"a\\u0007b\"", "name", "control characters"),
        ("rounds = 0", "rounds", "must be at least 1"),
        ("[data]\nlabel = \" \"", "data.label", "label column"),
        ("[data]\nfeatures = []", "data.features", "at least one column"),
        ("[data]\nfeatures = [\"a\", \"b\", \"a\"]", "data.features", "\"a\" is listed twice"),
        ("[data]\nfeatures = [\"a\", \"\"]", "data.features", "entry 2 is empty"),
        ("[data]\nfeatures = [\"a\", \"FLAG\"]", "data.features", "contains the label column"),
        ("[data]\ndrop_columns = [\"\"]", "data.drop_columns", "entry 1 is empty"),
        ("[data]\ntest_fraction = 1.0", "data.test_fraction", "must be in (0, 1), got 1"),
        ("[data]\ntest_fraction = 0.0", "data.test_fraction", "got 0"),
        ("[data]\nsynthetic = true\npath = \"t.csv\"", "data.synthetic", "data.path"),
        ("[data]\npath = \"\"", "data.path", "empty"),
        // A transaction export's labels need the export, and a delimiter a CSV to read.
        ("[data]\nlabels = \"labels.csv\"", "data.labels", "needs data.path"),
        ("[data]\nsynthetic = true\nlabels = \"labels.csv\"", "data.labels", "not synthetic data"),
        ("[data]\npath = \"t.csv.gz\"\nlabels = \"\"", "data.labels", "is empty"),
        ("[data]\npath = \"t.csv\"\ndelimiter = \"::\"", "data.delimiter", "expected `,` `;` `|` or `tab`"),
        ("[data]\npath = \"t.csv\"\ndelimiter = \"\"", "data.delimiter", "got \"\""),
        ("[data]\npath = \"t.csv\"\ndelimiter = \"tabs\"", "data.delimiter", "got \"tabs\""),
        ("[data]\nsynthetic = true\ndelimiter = \";\"", "data.delimiter", "not to synthetic data"),
        (
            "[data]\npath = \"t.csv.gz\"\nlabels = \"l.csv\"\ndelimiter = \";\"",
            "data.delimiter",
            "read with commas",
        ),
        ("[model]\nhidden = [16, 0]", "model.hidden", "layer 2 has width 0"),
        ("[participants]\nper_round = 0\nmin = 1", "participants.per_round", "at least 1"),
        ("[participants]\nmin = 6", "participants.min", "between 1 and participants.per_round (5), got 6"),
        ("[participants]\nmin = 0", "participants.min", "got 0"),
        ("[train]\nsteps = 0", "train.steps", "at least 1"),
        ("[train]\nbatch = 0", "train.batch", "at least 1"),
        ("[train]\nlr = -1", "train.lr", "must be positive, got -1"),
        ("[train]\nlr = nan", "train.lr", "got NaN"),
        ("[train]\nclip = 0", "train.clip", "must be positive, got 0"),
        // #12 item 9: what every holder would refuse, or turn into non-finite updates, is
        // refused at submit instead of waiting out the job's deadlines.
        ("[train]\nsteps = 200000", "train.steps", "must be at most 100000 (holders refuse more), got 200000"),
        ("[train]\nbatch = 65537", "train.batch", "must be at most 65536 (holders refuse more), got 65537"),
        ("[train]\nlr = 1e30", "train.lr", "must be at most 1000 (SGD diverges to non-finite updates past it)"),
        // And what the proofs' fixed point cannot hold (a clip bound of 128 or more).
        ("[train]\nclip = 200\n[proofs]\nenabled = true", "proofs", "clip bound 200 outside [0, 128)"),
        ("[server]\noptimizer = \"fedavg\"\nlr = 0", "server.lr", "must be positive, got 0"),
        ("[server]\noptimizer = \"fedadam\"\nlr = -0.1", "server.lr", "got -0.1"),
        ("[server]\noptimizer = \"fedadam\"\nbeta1 = 1.0", "server.beta1", "must be in [0, 1), got 1"),
        ("[server]\noptimizer = \"fedyogi\"\nbeta2 = 1.5", "server.beta2", "got 1.5"),
        ("[server]\noptimizer = \"fedyogi\"\ntau = 0", "server.tau", "must be positive, got 0"),
        ("[aggregation]\nmode = \"secure\"\ndropout = 1.0", "aggregation.dropout", "must be in [0, 1), got 1"),
        ("[aggregation]\nmode = \"secure\"\ncorruption = -0.1", "aggregation.corruption", "got -0.1"),
        (
            "[aggregation]\nmode = \"secure\"\ndropout = 0.6\ncorruption = 0.5",
            "aggregation.corruption",
            "dropout + corruption must be below 1",
        ),
        ("[aggregation]\nmode = \"secure\"\nscale_bits = 0", "aggregation.scale_bits", "1..=30, got 0"),
        (
            "[train]\nclip = 1e5\n[aggregation]\nmode = \"secure\"\nscale_bits = 30",
            "aggregation.scale_bits",
            "too fine for train.clip",
        ),
        ("[participants]\nper_round = 2\nmin = 2", "participants.per_round", "at least 3 participants, got 2"),
        ("[participants]\nper_round = 10001\nmin = 2\n[aggregation]\nmode = \"plain\"", "participants.per_round", "at most 10000, got 10001"),
        (
            "[participants]\nper_round = 3\n[aggregation]\nmode = \"secure\"\ndropout = 0.6\ncorruption = 0.3",
            "aggregation",
            "no SecAgg+ parameters",
        ),
        (
            // Feasible for a semi-honest coordinator ((6, 3)), not for a malicious one.
            "[participants]\nper_round = 10\n[aggregation]\nmode = \"secure\"\ndropout = 0.3\ncorruption = 0.2",
            "aggregation",
            "against a malicious coordinator",
        ),
        ("[proofs]\ntolerance = -1", "proofs.tolerance", "non-negative, got -1"),
        ("[proofs]\nenabled = true\n[aggregation]\nmode = \"plain\"", "proofs.enabled", "secure"),
        // The holders commit rows clamped to ±8: 18 bits hold ±2 only.
        ("[proofs]\nenabled = true\nfeature_bits = 18", "proofs.feature_bits", "hold features to ±2, but the data is clamped to ±8: use at least 20"),
        ("[proofs]\ntree_depth = 7", "proofs.tree_depth", "even and in 2..=32, got 7"),
        ("[proofs]\ntree_depth = 34", "proofs.tree_depth", "got 34"),
        ("[enrolment]\nallowed = []", "enrolment.allowed", "at least one identity key"),
        ("[enrolment]\nallowed = [\"abc\"]", "enrolment.allowed", "entry 1: expected 64 hex digits"),
        (
            "[enrolment]\nallowed = [\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\", \"0100000000000000000000000000000000000000000000000000000000000000\"]",
            "enrolment.allowed",
            "entry 2: 0100000000000000000000000000000000000000000000000000000000000000 is not a valid Ed25519 public key",
        ),
        (
            "[enrolment]\nallowed = [\"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\", \" D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A \"]",
            "enrolment.allowed",
            "entry 2: key D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A is listed twice",
        ),
        ("[deadlines]\nround_timeout_secs = 0", "deadlines.round_timeout_secs", "got 0"),
        ("[deadlines]\njoin_timeout_secs = 1e9", "deadlines.join_timeout_secs", "at most 604800 seconds"),
        ("[deadlines]\nround_timeout_secs = inf", "deadlines.round_timeout_secs", "got inf"),
    ];
    for (text, field, reason) in cases {
        let errors = field_errors(text);
        assert!(
            errors
                .iter()
                .any(|e| e.field == *field && e.reason.contains(reason)),
            "{text:?}: expected `{field}: …{reason}…`, got {errors:?}"
        );
        // Nothing else is blamed: the error names the key that is wrong.
        assert!(
            errors.iter().all(|e| e.field == *field),
            "{text:?}: {errors:?}"
        );
    }
    // The messages read as the issue asks.
    let e = JobFile::from_toml("rounds = 0\n[train]\nlr = -1\n").expect_err("two errors");
    assert_eq!(
        e.to_string(),
        "rounds: must be at least 1\ntrain.lr: must be positive, got -1"
    );
    assert_eq!(e.fields().len(), 2);
    // Plain aggregation needs no secure minimum.
    assert!(
        JobFile::from_toml("[participants]\nper_round = 1\n[aggregation]\nmode = \"plain\"")
            .is_ok()
    );
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_naming_the_key() {
    let cases: &[(&str, &str)] = &[
        ("runds = 3", "runds"),
        ("[nonsense]\nx = 1", "nonsense"),
        ("[train]\nlearning_rate = 0.1", "learning_rate"),
        ("[data]\nlabel_file = \"labels.csv\"", "label_file"),
        ("[data]\npath = \"t.csv\"\ndelimiter = 59", "delimiter"),
        ("[server]\noptimizer = \"fedavg\"\nbeta1 = 0.9", "beta1"),
        (
            "[server]\noptimizer = \"fedadam\"\nmomentum = 0.9",
            "momentum",
        ),
        ("[server]\noptimizer = \"sgd\"", "sgd"),
        ("[aggregation]\nmode = \"plain\"\ndropout = 0.1", "dropout"),
        ("[aggregation]\nmode = \"homomorphic\"", "homomorphic"),
        ("[deadlines]\nround_timeout = 10", "round_timeout"),
        ("rounds = \"ten\"", "rounds"),
        ("rounds = -1", "rounds"),
        ("[model]\nhidden = 16", "hidden"),
    ];
    for (text, key) in cases {
        match JobFile::from_toml(text) {
            Err(e @ JobFileError::Parse(_)) => {
                assert!(e.to_string().contains(key), "{text:?}: {e}");
                assert!(e.fields().is_empty());
            }
            other => panic!("{text:?} should be refused at parsing, got {other:?}"),
        }
    }
}

#[test]
fn a_tree_too_small_for_a_holders_share_is_refused_naming_the_smallest_depth() {
    // 4 800 training rows among 3 holders: 1 600 rows each, 200 blocks of 8 (batch 32).
    let file = |depth: u32, enabled: bool| {
        JobFile::from_toml(&format!(
            "[participants]\nper_round = 3\nmin = 3\n[train]\nbatch = 32\n\
             [proofs]\nenabled = {enabled}\ntree_depth = {depth}\n"
        ))
        .expect("parse")
    };
    let need = cairn_circuits::merkle::depth_for_rows(1600, 8);
    assert_eq!(need, 8, "200 leaves need 4^4 = 256 of them");
    for depth in (2..need).step_by(2) {
        let e = file(depth, true)
            .check_tree_depth(4800)
            .expect_err("too small");
        assert_eq!(e.fields()[0].field, "proofs.tree_depth");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("smallest depth that holds them is {need}"))
                && msg.contains("1600 rows")
                && msg.contains(&format!("depth {depth} holds {} blocks", 1u64 << depth)),
            "{msg}"
        );
    }
    // The depth it names works, and so does any deeper one; a proof-free job has no tree.
    for depth in [need, need + 2, 32] {
        assert!(file(depth, true).check_tree_depth(4800).is_ok(), "{depth}");
    }
    assert!(file(2, false).check_tree_depth(4800).is_ok());
    // One more full block than the depth below holds needs the next depth.
    let at = |rows: usize| file(8, true).check_tree_depth(rows);
    assert!(at(3 * 256 * 8).is_ok(), "256 blocks each fit depth 8");
    assert!(at(3 * 256 * 8 + 3 * 8).is_err(), "257 blocks each do not");
}

#[test]
fn conversion_checks_the_coordinators_table() {
    let file = JobFile::from_toml("[data]\nfeatures = [\"a\", \"b\", \"c\"]\n").expect("parse");
    let e = file
        .to_config("j", 4, 2)
        .expect_err("3 listed, 4 in the table");
    assert_eq!(
        e.to_string(),
        "data.features: lists 3 columns, the table has 4"
    );
    assert!(file.to_config("j", 3, 2).is_ok());
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(file.check_schema(&names(&["a", "b", "c"])).is_ok());
    let e = file
        .check_schema(&names(&["b", "a", "c"]))
        .expect_err("order");
    assert!(e.to_string().starts_with("data.features: ") && e.to_string().contains("order"));
    let e = file
        .check_schema(&names(&["a", "b", "d"]))
        .expect_err("missing");
    assert!(
        e.to_string().contains("[\"c\"]") && e.to_string().contains("[\"d\"]"),
        "{e}"
    );
    // Without a listed schema any table goes.
    assert!(JobFile::default().check_schema(&names(&["x"])).is_ok());

    let e = JobFile::default()
        .to_config("j", 0, 2)
        .expect_err("no columns");
    assert_eq!(e.fields()[0].field, "data");
    let huge = JobFile::from_toml("[model]\nhidden = [100000, 100000]").expect("parse");
    let e = huge.to_config("j", 45, 2).expect_err("too many parameters");
    assert_eq!(e.fields()[0].field, "model.hidden");
    assert!(e.to_string().contains("more than the limit"), "{e}");
    // An invalid file is refused by to_config too, not only by from_toml.
    let mut bad = JobFile::default();
    bad.train.lr = 0.0;
    assert_eq!(
        bad.to_config("j", 3, 2).expect_err("lr").fields()[0].field,
        "train.lr"
    );
}

#[test]
fn a_file_round_trips_through_its_normalised_toml() {
    let file = JobFile::from_toml(EXAMPLE).expect("example");
    let text = file.to_toml().expect("to_toml");
    assert_eq!(JobFile::from_toml(&text).expect("reparse"), file);
    let plain =
        JobFile::from_toml("[aggregation]\nmode = \"plain\"\n[server]\noptimizer = \"fedyogi\"\n")
            .expect("parse");
    let text = plain.to_toml().expect("to_toml");
    assert!(
        text.contains("optimizer = \"fedyogi\"") && text.contains("mode = \"plain\""),
        "{text}"
    );
    assert_eq!(JobFile::from_toml(&text).expect("reparse"), plain);
}

#[test]
fn loading_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let e = JobFile::load(&missing).expect_err("missing");
    assert!(matches!(e, JobFileError::Read { .. }));
    assert!(e.to_string().contains("nope.toml"), "{e}");
    let path = dir.path().join("job.toml");
    std::fs::write(&path, EXAMPLE).expect("write");
    assert_eq!(JobFile::load(&path).expect("load").rounds, 50);
}

#[test]
fn a_data_path_outside_the_data_root_is_refused_naming_the_field() {
    // #12 item 8: a job submitted through the admin interface names data.path; it must lie
    // under the directory the operator named, links followed.
    let root = tempfile::tempdir().expect("root");
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    let inside = root.path().join("table.csv");
    let outside = elsewhere.path().join("secret.csv");
    for f in [&inside, &outside] {
        std::fs::write(f, "a,FLAG\n1,0\n").expect("write");
    }
    let link = root.path().join("link.csv");
    std::os::unix::fs::symlink(&outside, &link).expect("symlink");
    let with_path = |p: &std::path::Path| {
        JobFile::from_toml(&format!(
            "[data]\npath = {:?}\n",
            p.to_str().expect("utf-8")
        ))
        .expect("valid file")
    };
    assert!(with_path(&inside).check_data_root(root.path()).is_ok());
    // No path at all (synthetic data) is fine.
    assert!(JobFile::from_toml("[data]\nsynthetic = true\n")
        .expect("valid")
        .check_data_root(root.path())
        .is_ok());
    for (bad, why) in [
        (
            outside.clone(),
            "is outside the coordinator's data directory",
        ),
        (link, "is outside the coordinator's data directory"),
        (root.path().join("../nope.csv"), "No such file"),
        (
            // Climbing out with `..`.
            root.path()
                .join("..")
                .join(elsewhere.path().file_name().expect("a name"))
                .join("secret.csv"),
            "is outside",
        ),
    ] {
        let e = with_path(&bad)
            .check_data_root(root.path())
            .expect_err("refused");
        let f = e.fields();
        assert_eq!(f.len(), 1, "{e}");
        assert_eq!(f[0].field, "data.path");
        assert!(
            f[0].reason.contains(why),
            "{}: {}",
            bad.display(),
            f[0].reason
        );
    }
}

#[test]
fn a_transaction_exports_labels_and_a_tables_delimiter_reach_the_loader() {
    // #14: the keys `--labels` and `--delimiter` have on the command line.
    let file = JobFile::from_toml(
        "[data]\npath = \"txs.csv.gz\"\nlabels = \"labels.csv\"\nlabel = \"is_scam\"\n",
    )
    .expect("valid");
    assert_eq!(file.data.labels, Some(PathBuf::from("labels.csv")));
    assert_eq!(file.load_options().label, "is_scam");
    assert_eq!(
        file.load_options().delimiter,
        None,
        "chosen by the file's name"
    );
    for (text, byte) in [
        (",", b','),
        (";", b';'),
        ("|", b'|'),
        ("tab", b'\t'),
        ("TAB", b'\t'),
        ("\\t", b'\t'),
        ("\t", b'\t'),
    ] {
        let file = JobFile::from_toml(&format!(
            "[data]\npath = \"t.csv\"\ndelimiter = {:?}\n",
            text
        ))
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(file.data.delimiter_byte(), Some(byte), "{text:?}");
        assert_eq!(file.load_options().delimiter, Some(byte), "{text:?}");
        assert_eq!(parse_delimiter(&delimiter_text(byte)), Ok(byte), "{text:?}");
        // What a coordinator stores reads back as the same file.
        let stored = file.to_toml().expect("to_toml");
        assert_eq!(JobFile::from_toml(&stored).expect("reparse"), file);
    }
    // Absent keys are not written (a stored job of an older version reads the same).
    let plain = JobFile::default().to_toml().expect("to_toml");
    assert!(
        !plain.contains("labels") && !plain.contains("delimiter"),
        "{plain}"
    );
    let with_labels = file.to_toml().expect("to_toml");
    assert!(
        with_labels.contains("labels = \"labels.csv\""),
        "{with_labels}"
    );
}

#[test]
fn a_labels_file_outside_the_data_root_is_refused_naming_the_field() {
    // data.labels is a file the coordinator reads, held to --data-root as data.path is.
    let root = tempfile::tempdir().expect("root");
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    let txs = root.path().join("txs.csv");
    let labels = root.path().join("labels.csv");
    let outside = elsewhere.path().join("labels.csv");
    for f in [&txs, &labels, &outside] {
        std::fs::write(f, "address,FLAG\n0xaa,1\n").expect("write");
    }
    let link = root.path().join("link.csv");
    std::os::unix::fs::symlink(&outside, &link).expect("symlink");
    let utf8 = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();
    let file = |path: &std::path::Path, labels: &std::path::Path| {
        JobFile::from_toml(&format!(
            "[data]\npath = {:?}\nlabels = {:?}\n",
            utf8(path),
            utf8(labels)
        ))
        .expect("valid file")
    };
    assert!(file(&txs, &labels).check_data_root(root.path()).is_ok());
    for (bad, why) in [
        (
            outside.clone(),
            "is outside the coordinator's data directory",
        ),
        (link, "is outside the coordinator's data directory"),
        (root.path().join("nope.csv"), "No such file"),
        (
            root.path()
                .join("..")
                .join(elsewhere.path().file_name().expect("a name"))
                .join("labels.csv"),
            "is outside",
        ),
    ] {
        let e = file(&txs, &bad)
            .check_data_root(root.path())
            .expect_err("refused");
        let f = e.fields();
        assert_eq!(f.len(), 1, "{e}");
        assert_eq!(f[0].field, "data.labels", "{e}");
        assert!(
            f[0].reason.contains(why),
            "{}: {}",
            bad.display(),
            f[0].reason
        );
    }
    // Both outside: both named.
    let e = file(&elsewhere.path().join("labels.csv"), &outside)
        .check_data_root(root.path())
        .expect_err("refused");
    let fields: Vec<&str> = e.fields().iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["data.path", "data.labels"], "{e}");
}

#[test]
fn a_proven_job_whose_circuit_is_too_large_to_set_up_is_refused_at_once() {
    // #12 item 8: 20 proved steps of 2,048 rows through a 38→256→1 MLP would take a setup
    // of hundreds of GiB; the job is refused, naming the field, before any key exists.
    let file = JobFile::from_toml(
        "[model]\nhidden = [256]\n[train]\nsteps = 20\nbatch = 2048\n[proofs]\nenabled = true\nsteps = \"all\"\n",
    )
    .expect("parses");
    let t = std::time::Instant::now();
    let e = file.to_config("j", 38, 2).expect_err("too large");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "refused unbuilt"
    );
    let JobFileError::Invalid(fields) = &e else {
        panic!("{e}")
    };
    assert_eq!(fields[0].field, "proofs", "{e}");
    assert!(fields[0].reason.contains("constraints"), "{e}");
    // The demo's default proven job fits.
    let fine = JobFile::from_toml("[proofs]\nenabled = true\n").expect("parses");
    assert!(fine.to_config("j", 38, 2).is_ok());
}

#[test]
fn the_metrics_threshold_defaults_to_a_half_and_is_checked_naming_the_key() {
    let default = JobFile::from_toml("").expect("empty file");
    assert_eq!(default.metrics.threshold, 0.5);
    let chosen = JobFile::from_toml("[metrics]\nthreshold = 0.3").expect("threshold 0.3");
    assert_eq!(chosen.metrics.threshold, 0.3);
    chosen.validate().expect("0.3 is valid");
    // It survives the normalised TOML the store keeps.
    let again = JobFile::from_toml(&chosen.to_toml().expect("toml")).expect("reparse");
    assert_eq!(again.metrics.threshold, 0.3);
    for (text, got) in [
        ("[metrics]\nthreshold = 0", "got 0"),
        ("[metrics]\nthreshold = 1", "got 1"),
        ("[metrics]\nthreshold = -0.5", "got -0.5"),
        ("[metrics]\nthreshold = nan", "got NaN"),
    ] {
        let errors = field_errors(text);
        let e = errors
            .iter()
            .find(|e| e.field == "metrics.threshold")
            .unwrap_or_else(|| panic!("{text}: no metrics.threshold error in {errors:?}"));
        assert!(
            e.reason.contains("strictly between 0 and 1") && e.reason.contains(got),
            "{text}: {}",
            e.reason
        );
    }
    let e = JobFile::from_toml("[metrics]\ncutoff = 0.3")
        .expect_err("unknown key")
        .to_string();
    assert!(e.contains("cutoff"), "{e}");
}

#[test]
fn a_privacy_target_becomes_the_noise_that_meets_it() {
    // #16: [privacy] epsilon → the smallest noise multiplier whose rounds stay within it,
    // and the job stops before passing it.
    let text = "rounds = 10\n[aggregation]\nmode = \"secure\"\n[participants]\nper_round = 5\nmin = 4\n[privacy]\nepsilon = 3.0\ndelta = 1e-6\n";
    let file = JobFile::from_toml(text).expect("parses");
    let r = file.to_config("dp", 45, 2).expect("to_config");
    let dp = r.config.privacy.expect("DP settings");
    assert_eq!(dp.delta, 1e-6);
    assert_eq!(dp.budget, Some(3.0));
    assert_eq!(dp.params.min_survivors, 4);
    assert_eq!(dp.params.dim, r.config.model.param_count());
    assert_eq!(dp.params.clip, f64::from(r.config.hyper.clip_norm));
    let spent = dp.epsilon_after(10).expect("ε");
    assert!(spent <= 3.0 && spent > 2.99, "{spent}");
    // Less noise would overspend.
    let mut less = dp;
    less.params.noise_multiplier *= 0.99;
    assert!(less.epsilon_after(10).expect("ε") > 3.0);

    // A noise multiplier instead: ε is reported, nothing to stop at.
    let z = "[aggregation]\nmode = \"secure\"\n[privacy]\nnoise_multiplier = 1.5\n";
    let r = JobFile::from_toml(z)
        .expect("parses")
        .to_config("dp", 45, 2)
        .expect("to_config");
    let dp = r.config.privacy.expect("DP settings");
    assert_eq!((dp.params.noise_multiplier, dp.budget), (1.5, None));
}

#[test]
fn privacy_settings_that_cannot_run_are_refused_naming_the_field() {
    let named =
        |text: &str| -> Vec<String> { field_errors(text).into_iter().map(|f| f.field).collect() };
    let secure = "[aggregation]\nmode = \"secure\"\n";
    // Both: the noise given, epsilon a budget to stop at; meaningless without stopping.
    assert_eq!(
        named(&format!(
            "{secure}[privacy]\nepsilon = 1.0\nnoise_multiplier = 2.0\nstop_when_spent = false\n"
        )),
        ["privacy"]
    );
    let budget = JobFile::from_toml(&format!(
        "rounds = 50\n{secure}[model]\nhidden = []\n[privacy]\nepsilon = 2.0\nnoise_multiplier = 1.5\n"
    ))
    .expect("noise with a budget parses");
    let dp = budget
        .to_config("j", 5, 2)
        .expect("resolves")
        .config
        .privacy
        .expect("DP");
    assert_eq!((dp.params.noise_multiplier, dp.budget), (1.5, Some(2.0)));
    // The budget is below what the 50 rounds spend: the job stops before it.
    assert!(dp.epsilon_after(50).expect("ε") > 2.0);
    assert_eq!(
        named(&format!("{secure}[privacy]\ndelta = 1e-5\n")),
        ["privacy"]
    );
    assert_eq!(
        named(&format!("{secure}[privacy]\nepsilon = -1.0\n")),
        ["privacy.epsilon"]
    );
    assert_eq!(
        named(&format!("{secure}[privacy]\nepsilon = 1.0\ndelta = 0.5\n")),
        ["privacy.delta"]
    );
    assert_eq!(
        named(&format!(
            "{secure}[participants]\nper_round = 5\nmin = 3\n[privacy]\nepsilon = 1.0\nmin_survivors = 4\n"
        )),
        ["privacy.min_survivors"]
    );
    assert_eq!(
        named("[aggregation]\nmode = \"plain\"\n[privacy]\nepsilon = 1.0\n"),
        ["privacy"]
    );
    // A proven DP job: the proofs carry the job's mechanism, on a grid the circuit checks.
    let proven = JobFile::from_toml(&format!(
        "{secure}[model]\nhidden = []\n[train]\nclip = 1.0\n[proofs]\nenabled = true\n[privacy]\nepsilon = 3.0\n"
    ))
    .expect("a proven DP job parses");
    let c = proven.to_config("j", 5, 2).expect("resolves").config;
    let dp = c.privacy.expect("DP");
    assert_eq!(c.proof.and_then(|p| p.noise), Some(dp.params));
    let grid = cairn_proofs::noise::proven_grid(&dp.params).expect("an integral grid");
    // The default C/(4√d_pad) moved to the nearest checkable grid: 2^16·C/4 here (C = 1).
    assert_eq!(grid, 1 << 14);
    // A hand-set granularity off the circuit's grid is refused, naming it.
    let off = JobFile::from_toml(&format!(
        "{secure}[model]\nhidden = []\n[proofs]\nenabled = true\n[privacy]\nepsilon = 3.0\ngranularity = 0.0123\n"
    ))
    .expect("parses");
    match off.to_config("j", 5, 2) {
        Err(JobFileError::Invalid(v)) => {
            assert_eq!(v[0].field, "privacy.granularity", "{v:?}");
            assert!(v[0].reason.contains("not an integer"), "{v:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        JobFile::from_toml(&format!("{secure}[privacy]\nepsilon = 1.0\nsigma = 2\n")).is_err(),
        "an unknown key is refused"
    );
}
