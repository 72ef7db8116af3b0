//! `cairn keygen` as a user runs it: proof keys for a tiny job shape (written once, then
//! reused), identity keys (owner-only, never silently replaced), and clear errors.

use std::path::Path;
use std::process::{Command, Output};

fn cairn(args: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run cairn")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Logistic regression on 2 features, K = 1, B = 1, a depth-2 tree: a setup of a few
/// thousand constraints.
const TINY: [&str; 10] = [
    "keygen",
    "proof",
    "--features",
    "2",
    "--hidden",
    "",
    "--local-steps",
    "1",
    "--batch",
    "1",
];

fn tiny(extra: &[&str], out: &Path) -> Output {
    let args: Vec<&str> = TINY.iter().copied().chain(extra.iter().copied()).collect();
    cairn(&args, out)
}

#[test]
fn proof_keys_are_written_once_then_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let first = tiny(&["--depth", "2"], &keys);
    assert!(first.status.success(), "{}", stderr(&first));
    let text = stdout(&first);
    assert!(text.contains("Groth16 setup for shape"), "{text}");
    assert!(text.contains("constraints"), "{text}");

    // Both files, named by the shape hash printed, with the shape header the store checks.
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("shape"))
        .map(str::trim)
        .expect("the shape id is printed");
    assert_eq!(id.len(), 64, "{text}");
    let pk = keys.join(format!("training-{id}.pk"));
    let vk = keys.join(format!("training-{id}.vk"));
    let pk_bytes = std::fs::read(&pk).expect("proving key written");
    let vk_bytes = std::fs::read(&vk).expect("verifying key written");
    assert_eq!(&pk_bytes[..8], b"cairnPK1");
    assert_eq!(&vk_bytes[..8], b"cairnVK1");
    assert_eq!(hex_of(&vk_bytes[8..40]), id);
    assert!(text.contains(&pk.display().to_string()), "{text}");

    // A second run reuses them: same files, untouched.
    let second = tiny(&["--depth", "2"], &keys);
    assert!(second.status.success(), "{}", stderr(&second));
    let text2 = stdout(&second);
    assert!(text2.contains("already exist"), "{text2}");
    assert!(text2.contains("reused"), "{text2}");
    assert_eq!(std::fs::read(&vk).expect("still there"), vk_bytes);
    assert_eq!(std::fs::read(&pk).expect("still there"), pk_bytes);

    // Another shape (depth 4) gets its own keys beside them.
    let other = tiny(&["--depth", "4"], &keys);
    assert!(other.status.success(), "{}", stderr(&other));
    assert!(
        stdout(&other).contains("Groth16 setup"),
        "{}",
        stdout(&other)
    );
    let files = std::fs::read_dir(&keys).expect("key dir").count();
    assert_eq!(files, 4);
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn identity_key_is_owner_only_and_not_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("holder.key");
    let made = cairn(&["keygen", "identity"], &key);
    assert!(made.status.success(), "{}", stderr(&made));
    let text = stdout(&made);
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("public key "))
        .and_then(|l| l.split_whitespace().next())
        .expect("public key printed")
        .to_owned();
    assert_eq!(public.len(), 64, "{text}");
    let secret = std::fs::read_to_string(&key).expect("secret written");
    assert_eq!(secret.trim().len(), 64);
    assert_ne!(secret.trim(), public);
    let pub_file = dir.path().join("holder.key.pub");
    assert_eq!(
        std::fs::read_to_string(&pub_file).expect(".pub").trim(),
        public
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    // The written key is the one printed.
    let loaded = cairn_cli::keygen::read_identity(&key).expect("readable key");
    assert_eq!(hex_of(&loaded.public().0), public);

    // Refused without --force; the key is untouched.
    let again = cairn(&["keygen", "identity"], &key);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&key).expect("kept"), secret);

    // With --force: a new key, still owner-only.
    let forced = cairn(&["keygen", "identity", "--force"], &key);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_ne!(std::fs::read_to_string(&key).expect("replaced"), secret);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
}

#[test]
fn bad_flags_give_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    // An odd tree depth: the shape is refused before any setup.
    let odd = tiny(&["--depth", "3"], &keys);
    assert!(!odd.status.success());
    assert!(
        stderr(&odd).contains("tree_depth: must be even and in 2..=32, got 3"),
        "{}",
        stderr(&odd)
    );
    assert!(!keys.exists(), "nothing written for a refused shape");
    // A hidden width that is not a number.
    let bad = cairn(
        &[
            "keygen",
            "proof",
            "--features",
            "2",
            "--hidden",
            "16,x",
            "--local-steps",
            "1",
            "--batch",
            "1",
            "--depth",
            "2",
        ],
        &keys,
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("\"x\" is not a number"),
        "{}",
        stderr(&bad)
    );
    // A missing shape flag.
    let missing = cairn(&["keygen", "proof", "--features", "2"], &keys);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("--local-steps"),
        "{}",
        stderr(&missing)
    );
    // K = 0.
    let zero = cairn(
        &[
            "keygen",
            "proof",
            "--features",
            "2",
            "--local-steps",
            "0",
            "--batch",
            "1",
            "--depth",
            "2",
        ],
        &keys,
    );
    assert!(!zero.status.success());
    assert!(
        stderr(&zero).contains("K and B must be positive"),
        "{}",
        stderr(&zero)
    );
}
