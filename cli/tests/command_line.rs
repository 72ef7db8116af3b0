//! The command line tells the truth (#14 item 5): `cairn demo --help` shows the defaults
//! the demo runs with; `--admin` takes the loopback addresses users type, on the coordinator
//! and on `cairn job`, and refuses any other before anything is written; `cairn job submit`
//! prints a follow-up command that reaches the same coordinator; a tree depth too small for
//! the holders' rows is refused before any key setup, naming the depth that fits; and
//! `cairn audit --store` reads the store of a coordinator that is running.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use cairn_circuits::merkle::{depth_for_rows, MerkleTree};
use cairn_cli::demo::{demo_default_values, demo_defaults};
use cairn_cli::options::{DataArgs, TrainArgs};
use cairn_cli::service::plan_job;
use cairn_protocol::job::JobConfig;

mod common;
use common::{cairn, Proc};

const LIMIT: Duration = Duration::from_secs(120);

/// Each long option's help text in `help` (the lines under `--name`, joined).
fn options_help(help: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in help.lines() {
        let t = line.trim_start();
        if t.starts_with('-') {
            // `-h, --help`, `--steps <STEPS>`, `--steps <STEPS>  Local SGD steps…`
            let long = t
                .split_whitespace()
                .find_map(|w| w.strip_prefix("--"))
                .map(|w| w.trim_end_matches(',').to_string());
            let rest = t
                .split_once("  ")
                .map(|(_, r)| r.trim().to_string())
                .unwrap_or_default();
            if let Some(name) = &long {
                out.insert(name.clone(), rest);
            }
            current = long;
        } else if t.is_empty() {
            current = None;
        } else if let Some(name) = &current {
            let text = out.entry(name.clone()).or_default();
            text.push(' ');
            text.push_str(t.trim());
        }
    }
    out
}

/// The `[default: …]` of an option's help.
fn shown_default(help: &BTreeMap<String, String>, flag: &str) -> String {
    let text = help
        .get(flag)
        .unwrap_or_else(|| panic!("--{flag} is not in the help: {help:?}"));
    let start = text
        .rfind("[default: ")
        .unwrap_or_else(|| panic!("--{flag} shows no default: {text}"));
    let rest = &text[start + "[default: ".len()..];
    rest[..rest.find(']').expect("closing bracket")].to_string()
}

#[test]
fn demo_help_shows_the_defaults_the_demo_runs_with() {
    let o = cairn()
        .args(["demo", "--help"])
        .output()
        .expect("cairn demo --help");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{text}");
    let help = options_help(&text);

    // What the demo runs with when no flag is given (38 features: the fraud table's), and
    // what it runs with under `--proofs false` alone.
    let features = 38;
    let proven = demo_defaults(TrainArgs::default())
        .job("demo", features, 5, 3)
        .expect("the demo's job");
    let free = demo_defaults(TrainArgs {
        proofs: Some(false),
        ..TrainArgs::default()
    })
    .job("demo", features, 5, 3)
    .expect("the proof-free demo's job");
    let spec = proven.proof.expect("the demo is proven by default");
    assert!(free.proof.is_none());

    // `[default: A; B with --proofs false]`, or `[default: A]` when both are A.
    let both = |flag: &str| {
        let d = shown_default(&help, flag);
        match d.split_once("; ") {
            Some((a, b)) => (
                a.to_string(),
                b.strip_suffix(" with --proofs false")
                    .unwrap_or_else(|| panic!("--{flag}: {d}"))
                    .to_string(),
            ),
            None => (d.clone(), d),
        }
    };
    // As the flag parses it (an f32 for --lr; the others are small whole numbers).
    let num = |flag: &str, s: &str| -> f64 {
        f64::from(
            s.parse::<f32>()
                .unwrap_or_else(|_| panic!("--{flag}: {s:?} is not a number")),
        )
    };
    let hidden = |s: &str| -> Vec<usize> {
        s.split(',')
            .filter(|w| !matches!(w.trim(), "" | "none" | "0"))
            .map(|w| w.trim().parse().expect("a width"))
            .collect()
    };
    let (a, b) = both("hidden");
    assert_eq!(hidden(&a), proven.model.hidden, "--hidden shows {a}");
    assert_eq!(
        hidden(&b),
        free.model.hidden,
        "--hidden under --proofs false: {b}"
    );
    type Of = fn(&JobConfig) -> f64;
    let numbers: [(&str, Of); 5] = [
        ("steps", |c| f64::from(c.hyper.local_steps)),
        ("batch", |c| f64::from(c.hyper.batch_size)),
        ("lr", |c| f64::from(c.hyper.learning_rate)),
        ("rounds", |c| f64::from(c.rounds)),
        ("round-timeout", |c| c.round_timeout.as_secs_f64()),
    ];
    for (flag, of) in numbers {
        let (a, b) = both(flag);
        assert_eq!(num(flag, &a), of(&proven), "--{flag} shows {a}");
        assert_eq!(
            num(flag, &b),
            of(&free),
            "--{flag} under --proofs false shows {b}"
        );
    }
    assert_eq!(shown_default(&help, "proofs"), "true");
    assert_eq!(
        num("tree-depth", &shown_default(&help, "tree-depth")),
        f64::from(spec.tree_depth)
    );
    // Every option the demo sets itself is one the help was checked for above.
    for (id, _) in demo_default_values() {
        let flag = id.replace('_', "-");
        assert!(
            [
                "hidden",
                "steps",
                "batch",
                "lr",
                "rounds",
                "round-timeout",
                "proofs"
            ]
            .contains(&flag.as_str()),
            "--{flag} is set by the demo and unchecked here"
        );
    }
}

/// The names of the entries of `dir`.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn refused(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    text
}

#[test]
fn a_refused_admin_address_writes_nothing() {
    for admin in [
        "0.0.0.0:7401",
        "10.1.2.3:7401",
        "[2001:db8::1]:7401",
        "http://192.168.0.1:7401",
        "example.com:7401",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = cairn()
            .current_dir(dir.path())
            .args(["coordinator", "--serve", "--listen", "127.0.0.1:0"])
            .args(["--admin", admin, "--out", "out"])
            .output()
            .expect("cairn coordinator");
        let e = refused(&o);
        assert!(
            e.contains("--admin") && e.contains("loopback"),
            "{admin}: {e}"
        );
        assert!(
            entries(dir.path()).is_empty(),
            "{admin}: wrote {:?}",
            entries(dir.path())
        );
    }
    // A refused flag combination writes nothing either.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("job.toml"), "rounds = 2\n").expect("job file");
    let o = cairn()
        .current_dir(dir.path())
        .args(["coordinator", "--job", "job.toml", "--rounds", "3"])
        .args(["--listen", "127.0.0.1:0", "--out", "out"])
        .output()
        .expect("cairn coordinator");
    assert!(refused(&o).contains("--rounds"));
    assert_eq!(entries(dir.path()), ["job.toml"]);
}

/// A coordinator with `--serve` in `dir/out`, its admin interface at `admin`; returns it and
/// the admin address it printed.
fn serve(dir: &Path, admin: &str) -> (Proc, String) {
    let mut c = cairn();
    c.current_dir(dir)
        .args(["coordinator", "--serve", "--listen", "127.0.0.1:0"])
        .args(["--admin", admin, "--out", "out"]);
    let mut p = Proc::spawn(c);
    let line = p.wait_for(LIMIT, |l| l.starts_with("admin interface http://"));
    let addr = line
        .strip_prefix("admin interface http://")
        .and_then(|r| r.split_whitespace().next())
        .expect("address")
        .to_string();
    p.wait_for(LIMIT, |l| l.starts_with("waiting for jobs"));
    (p, addr)
}

/// `cairn job ARGS…` run in `dir`.
fn job(dir: &Path, args: &[&str]) -> Output {
    cairn()
        .current_dir(dir)
        .arg("job")
        .args(args)
        .env_remove("CAIRN_ADMIN_TOKEN")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("cairn job")
}

/// The command after `prefix` on a line of `text`, as words (without `cairn`).
fn hint(text: &str, prefix: &str) -> Vec<String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {text}"));
    let words: Vec<String> = line.split_whitespace().map(String::from).collect();
    assert_eq!(words[0], "cairn", "{line}");
    words[1..].to_vec()
}

#[test]
fn admin_takes_loopback_addresses_and_the_submit_hint_reaches_the_same_coordinator() {
    let dir = tempfile::tempdir().expect("tempdir");
    // `localhost:PORT` on the coordinator (port 0: a free one).
    let (mut coord, addr) = serve(dir.path(), "localhost:0");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let port = addr.rsplit(':').next().expect("port");
    std::fs::write(
        dir.path().join("job.toml"),
        "name = \"hinted\"\nrounds = 1\n[data]\nsynthetic = true\n[model]\nhidden = []\n\
         [participants]\nper_round = 3\nmin = 3\n[deadlines]\njoin_timeout_secs = 600\n",
    )
    .expect("job file");

    // `cairn job --admin` takes the address as the coordinator printed it, bare or as a
    // URL, and localhost; the token comes from --token-file.
    for given in [
        format!("http://{addr}"),
        format!("http://{addr}/"),
        addr.clone(),
        format!("localhost:{port}"),
    ] {
        let o = job(
            dir.path(),
            &["--admin", &given, "--token-file", "out/admin.token", "list"],
        );
        assert!(ok(&o).contains("no jobs"), "{given}");
    }
    // Anything off loopback is refused, naming why, before any request is made.
    for given in ["10.0.0.1:7401", "http://203.0.113.9:80", "example.com:7401"] {
        let e = refused(&job(
            dir.path(),
            &["--admin", given, "--token-file", "out/admin.token", "list"],
        ));
        assert!(e.contains("loopback"), "{given}: {e}");
    }

    // Submitted with --dir, the hints carry --dir; run as printed, they reach the job.
    let s = ok(&job(dir.path(), &["--dir", "out", "submit", "job.toml"]));
    assert!(s.contains("submitted job 1 (hinted)"), "{s}");
    let follow = hint(&s, "follow it with: ");
    assert_eq!(follow, ["job", "--dir", "out", "watch", "1"], "{s}");
    let pull = hint(&s, "and fetch its results with: ");
    assert_eq!(pull, ["job", "--dir", "out", "pull", "1"], "{s}");
    // (`watch` would follow the job until it ends: `status` with the same connection.)
    let mut args: Vec<&str> = follow[1..follow.len() - 2]
        .iter()
        .map(String::as_str)
        .collect();
    args.extend(["status", "1"]);
    assert!(ok(&job(dir.path(), &args)).contains("job 1 (hinted)"));
    // Run from elsewhere without --dir, the same command finds no coordinator: the hint
    // needed it.
    let e = refused(&job(dir.path(), &["status", "1"]));
    assert!(e.contains("cairn-out"), "{e}");

    // Submitted with --admin and --token-file, the hints carry both.
    let s = ok(&job(
        dir.path(),
        &[
            "--admin",
            &format!("localhost:{port}"),
            "--token-file",
            "out/admin.token",
            "submit",
            "job.toml",
        ],
    ));
    let follow = hint(&s, "follow it with: ");
    assert_eq!(
        follow,
        [
            "job",
            "--admin",
            &addr,
            "--token-file",
            "out/admin.token",
            "watch",
            "2"
        ],
        "{s}"
    );
    let mut args: Vec<&str> = follow[1..follow.len() - 2]
        .iter()
        .map(String::as_str)
        .collect();
    args.extend(["status", "2"]);
    assert!(ok(&job(dir.path(), &args)).contains("job 2 (hinted)"));

    // `cairn audit --store` while this coordinator holds its store open and runs job 1
    // (waiting for holders): the store opens and is read, and nothing is written beside it.
    coord.wait_for(LIMIT, |l| l.starts_with("started job 1"));
    let before = entries(&dir.path().join("out"));
    let o = cairn()
        .current_dir(dir.path())
        .args(["audit", "--store", "out/cairn.redb", "--job", "1"])
        .output()
        .expect("cairn audit");
    let e = refused(&o);
    assert!(
        e.contains("job 1 (hinted, running)") && e.contains("has no transcript"),
        "the store was read: {e}"
    );
    assert!(!e.contains("already open"), "{e}");
    let e = refused(
        &cairn()
            .current_dir(dir.path())
            .args(["audit", "--store", "out/cairn.redb", "--job", "9"])
            .output()
            .expect("cairn audit"),
    );
    assert!(e.contains("no job 9"), "{e}");
    assert_eq!(entries(&dir.path().join("out")), before);
    // The coordinator went on: it still answers, and job 2 is still queued behind job 1.
    let list = ok(&job(dir.path(), &["--dir", "out", "list"]));
    assert!(list.contains("queued"), "{list}");
    // An audit of a store that is not there creates none.
    let e = refused(
        &cairn()
            .current_dir(dir.path())
            .args(["audit", "--store", "nowhere.redb"])
            .output()
            .expect("cairn audit"),
    );
    assert!(e.contains("nowhere.redb"), "{e}");
    assert!(!dir.path().join("nowhere.redb").exists());
}

/// A proven job file on the synthetic table with trees of `depth`.
fn proven_job(depth: u32) -> String {
    format!(
        "name = \"deep\"\nrounds = 1\n[data]\nsynthetic = true\n[model]\nhidden = []\n\
         [participants]\nper_round = 3\nmin = 3\n[train]\nsteps = 1\nbatch = 8\n\
         [proofs]\nenabled = true\ntree_depth = {depth}\n\
         [deadlines]\nround_timeout_secs = 30\njoin_timeout_secs = 5\n"
    )
}

/// The depth a refusal names as the smallest that holds the rows.
fn named_depth(e: &str, before: &str) -> u32 {
    let at = e
        .find(before)
        .unwrap_or_else(|| panic!("no {before:?} in {e}"));
    e[at + before.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no depth after {before:?} in {e}"))
}

#[test]
fn a_coordinator_refuses_a_tree_too_small_before_the_setup_naming_the_depth_that_fits() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("job.toml"), proven_job(2)).expect("job file");
    let o = cairn()
        .current_dir(dir.path())
        .args([
            "coordinator",
            "--job",
            "job.toml",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--keys", "keys", "--out", "out"])
        .output()
        .expect("cairn coordinator");
    let e = refused(&o);
    assert!(e.contains("proofs.tree_depth"), "{e}");
    let need = named_depth(&e, "the smallest depth that holds them is ");
    assert!(
        !dir.path().join("keys").exists() && !dir.path().join("out").exists(),
        "nothing set up or written: {:?}",
        entries(dir.path())
    );
    // The depth named is the smallest the coordinator takes: two less is refused.
    assert!(need > 2, "{e}");
    assert!(plan_job(&proven_job(need), "j", None).is_ok(), "{need}");
    assert!(
        plan_job(&proven_job(need - 2), "j", None).is_err(),
        "{need}"
    );

    // The same from the flags' job, naming the flag.
    let o = cairn()
        .current_dir(dir.path())
        .args([
            "coordinator",
            "--synthetic",
            "--proofs",
            "--tree-depth",
            "2",
        ])
        .args(["--participants", "3", "--hidden", "none", "--batch", "8"])
        .args(["--listen", "127.0.0.1:0", "--keys", "keys", "--out", "out"])
        .output()
        .expect("cairn coordinator");
    let e = refused(&o);
    assert_eq!(named_depth(&e, "--tree-depth "), need, "{e}");
    assert_eq!(entries(dir.path()), ["job.toml"]);
}

#[test]
fn the_demo_refuses_a_tree_too_small_before_the_setup_naming_the_depth_that_fits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = cairn()
        .current_dir(dir.path())
        .args([
            "demo",
            "--synthetic",
            "--participants",
            "3",
            "--device",
            "cpu",
        ])
        .args(["--tree-depth", "4", "--keys", "keys", "--out", "out"])
        .output()
        .expect("cairn demo");
    let e = refused(&o);
    assert!(e.contains("--tree-depth 4 is too small"), "{e}");
    let need = named_depth(&e, "the smallest depth that holds every holder's rows is ");
    assert!(
        entries(dir.path()).is_empty(),
        "no keys set up, nothing written: {:?}",
        entries(dir.path())
    );
    // The holders' rows as the demo deals them (the synthetic table, 3 holders, seed 7):
    // the largest one's blocks fit a tree of the depth named, not one of two less.
    let data = DataArgs {
        synthetic: true,
        ..DataArgs::default()
    };
    let (prepared, _) = data.load().expect("synthetic table");
    let holders =
        cairn_datasets::partition(&prepared.train, 3, &data.partition().expect("partition"), 7)
            .expect("partition");
    let most = holders.iter().map(|h| h.n_rows()).max().expect("holders") as u64;
    let spec = demo_defaults(TrainArgs::default())
        .job("demo", prepared.train.n_features, 3, 2)
        .expect("job")
        .proof
        .expect("proven");
    let leaves = vec![ark_bn254::Fr::from(1u64); (most / u64::from(spec.block_rows)) as usize];
    assert!(
        MerkleTree::from_leaves(leaves.clone(), need).is_ok(),
        "{need}"
    );
    assert!(MerkleTree::from_leaves(leaves, need - 2).is_err(), "{need}");
    assert_eq!(depth_for_rows(most, spec.block_rows), need);
}
