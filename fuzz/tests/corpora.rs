//! The fuzzers' CI smoke run (issue #12 item 10): every committed corpus file
//! (`fuzz/corpus/<target>/`) and every fixed crash's reproducer (`fuzz/regressions/<target>/`)
//! goes through its target, with a bounded number of deterministic mutants of each. No
//! input may panic. The seeds the generator builds now must still decode, so a change of
//! an encoding shows up here as seeds to regenerate (`cargo run -p cairn-fuzz --example
//! seeds`), not as fuzzers quietly starting from garbage.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cairn_fuzz::{seeds, Target, TARGETS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Mutants of each corpus file (fewer for the targets that do curve arithmetic or touch
/// the file system, so the whole run stays within seconds).
fn mutants(target: &str) -> usize {
    match target {
        "proving_key" => 2,
        "verifying_key" | "groth16_proof" => 4,
        "csv_table" | "account_txs" => 16,
        _ => 32,
    }
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files directly under `dir`, sorted (none when it is absent).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A mutant of `seed`: one to four edits (bit flips, byte changes, truncations, insertions,
/// deletions, length bytes pushed to their extremes).
fn mutate(seed: &[u8], rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        if b.is_empty() {
            b.push(rng.gen());
            continue;
        }
        let i = rng.gen_range(0..b.len());
        match rng.gen_range(0..6) {
            0 => b[i] ^= 1 << rng.gen_range(0..8),
            1 => b[i] = rng.gen(),
            2 => b.truncate(i),
            3 => b.insert(i, rng.gen()),
            4 => b[i] = [0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0x80][rng.gen_range(0..7)],
            _ => {
                let n = rng.gen_range(1..=8).min(b.len() - i);
                b.drain(i..i + n);
            }
        }
    }
    b
}

/// Runs `target` on `data`; a panic is returned as a line naming the input.
fn run(target: Target, data: &[u8], what: &str) -> Option<String> {
    catch_unwind(AssertUnwindSafe(|| target(data)))
        .err()
        .map(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            format!("{what}: panicked: {msg}")
        })
}

#[test]
fn every_corpus_file_and_regression_and_their_mutants_run_without_a_panic() {
    let mut failures = Vec::new();
    for &(name, target) in TARGETS {
        let t0 = Instant::now();
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "{name}: no corpus committed under fuzz/corpus/{name}"
        );
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        let mut rng = ChaCha20Rng::seed_from_u64(0xf022);
        let mut runs = 0usize;
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).expect("a corpus file reads");
            let what = path.display().to_string();
            failures.extend(run(target, &data, &what));
            for m in 0..mutants(name) {
                let mutant = mutate(&data, &mut rng);
                failures.extend(run(target, &mutant, &format!("{what}, mutant {m}")));
            }
            runs += 1 + mutants(name);
        }
        eprintln!(
            "{name}: {} corpus files, {} regressions, {runs} runs in {:.2} s",
            corpus.len(),
            regressions.len(),
            t0.elapsed().as_secs_f64()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_corpus_folder_names_a_target() {
    for dir in ["corpus", "regressions"] {
        for entry in std::fs::read_dir(fuzz_dir().join(dir)).expect("the folder exists") {
            let name = entry.expect("an entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                cairn_fuzz::target(&name).is_some() || name.starts_with('.') || name == "README.md",
                "fuzz/{dir}/{name} is no target's"
            );
        }
    }
}

#[test]
fn every_target_has_seeds_and_the_seeds_still_decode() {
    use cairn_circuits::training::proof::{self, Proof};
    use cairn_protocol::transcript::{Record, Transcript};
    use cairn_protocol::wire::{self, ToCoordinator, ToParticipant, MAX_FRAME_BYTES};

    let all = seeds::all();
    for &(name, target) in TARGETS {
        let Some((_, s)) = all.iter().find(|(n, _)| *n == name) else {
            panic!("{name}: no seeds");
        };
        assert!(!s.is_empty(), "{name}: no seeds");
        for (file, data) in s {
            assert!(run(target, data, file).is_none(), "{name}/{file} panics");
            let ok = match name {
                "wire_to_coordinator" => {
                    wire::decode::<ToCoordinator>(data, MAX_FRAME_BYTES).is_ok()
                }
                "wire_to_participant" => {
                    wire::decode::<ToParticipant>(data, MAX_FRAME_BYTES).is_ok()
                }
                "transcript" => Transcript::from_bytes(data).is_ok(),
                "transcript_record" => Record::from_bytes(data).is_ok(),
                "cert_identity" => cairn_protocol::enrolment::identity_from_cert(data).is_ok(),
                "identity_text" => std::str::from_utf8(data)
                    .is_ok_and(|t| cairn_protocol::enrolment::parse_identity(t).is_ok()),
                "server_identity" => std::str::from_utf8(data)
                    .is_ok_and(|t| cairn_protocol::transport::ServerIdentity::from_text(t).is_ok()),
                "job_file" => std::str::from_utf8(data)
                    .is_ok_and(|t| cairn_coordinator::job_file::JobFile::from_toml(t).is_ok()),
                "verifying_key" => proof::vk_from_bytes(&seeds::key_shape(), data).is_ok(),
                "proving_key" => proof::pk_from_bytes(&seeds::key_shape(), data).is_ok(),
                "groth16_proof" => Proof::from_bytes(data).is_ok(),
                "csv_table" => {
                    let path = std::env::temp_dir()
                        .join(format!("cairn-fuzz-seed-{}-{file}", std::process::id()));
                    std::fs::write(&path, data).expect("a temporary file");
                    let ok = cairn_datasets::load_csv(&path, &Default::default()).is_ok();
                    let _ = std::fs::remove_file(&path);
                    ok
                }
                // The JSON files (each of which only one of the three parsers takes) and the
                // model of another shape.
                _ => true,
            };
            assert!(
                ok,
                "the seed {name}/{file} no longer decodes: regenerate the seeds"
            );
        }
    }
    let model = &all
        .iter()
        .find(|(n, _)| *n == "model_safetensors")
        .expect("model seeds")
        .1[0]
        .1;
    assert!(
        cairn_coordinator::export::from_safetensors(&seeds::model_spec(), model).is_ok(),
        "the model seed no longer reads"
    );
}

#[test]
fn the_data_spec_seeds_are_what_they_claim() {
    use cairn_coordinator::export::read_model;
    use cairn_protocol::wire::{self, ToCoordinator, ToParticipant, MAX_FRAME_BYTES};

    assert_eq!(seeds::data_spec().validate(), Ok(()));
    for (name, spec, valid) in seeds::data_spec_near_misses() {
        assert_eq!(
            spec.validate().is_ok(),
            valid,
            "{name}: {:?}",
            spec.validate()
        );
    }
    // Every Offer seed decodes, and its spec passes or fails the holder's check as claimed.
    let down = seeds::to_participant();
    let offers: Vec<_> = down
        .iter()
        .filter_map(|m| match m {
            ToParticipant::Offer(o) => Some(o),
            _ => None,
        })
        .collect();
    assert_eq!(offers.len(), 2 + seeds::data_spec_near_misses().len());
    for o in &offers {
        let frame = wire::encode(&ToParticipant::Offer((*o).clone())).expect("encodes");
        assert!(wire::decode::<ToParticipant>(&frame, MAX_FRAME_BYTES).is_ok());
    }
    let passing = offers
        .iter()
        .filter(|o| o.data.as_ref().is_some_and(|d| d.validate().is_ok()))
        .count();
    let claimed = seeds::data_spec_near_misses()
        .iter()
        .filter(|(_, _, v)| *v)
        .count();
    assert_eq!(
        passing,
        1 + claimed,
        "the valid Offer seeds reach the property"
    );
    // CannotJoin: a plain one and near misses the coordinator must clean up.
    let cannot: Vec<(String, String)> = seeds::to_coordinator()
        .into_iter()
        .filter_map(|m| match m {
            ToCoordinator::CannotJoin { name, reason } => Some((name, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(cannot.len(), 3);
    assert!(cannot
        .iter()
        .any(|(n, _)| wire::printable(n, wire::MAX_NAME_BYTES) != *n));
    assert!(cannot.iter().any(|(_, r)| r.len() > wire::MAX_REASON_BYTES));

    // The model files: the one with a data spec reads whole with its spec; each near miss
    // is refused unless its spec is one that validates.
    let models = &seeds::all()
        .into_iter()
        .find(|(n, _)| *n == "model_safetensors")
        .expect("model seeds")
        .1;
    let read = |file: &str| {
        let (_, bytes) = models
            .iter()
            .find(|(n, _)| n == file)
            .unwrap_or_else(|| panic!("no seed {file}"));
        read_model(bytes)
    };
    let m = read("with-data.safetensors").expect("the model with a data spec reads");
    assert_eq!(m.data, Some(seeds::data_spec()));
    assert_eq!(m.model, seeds::model_spec());
    for bad in [
        "data-two-columns",
        "data-not-json",
        "format-other",
        "no-hidden",
        "hidden-zero",
        "n-features-text",
    ] {
        let file = format!("{bad}.safetensors");
        assert!(read(&file).is_err(), "{file} reads");
    }
    // A spec that validates reads with the (binary) model unless its label has other
    // classes than the model predicts.
    for (name, spec, valid) in seeds::data_spec_near_misses() {
        let file = format!("data-{name}.safetensors");
        if models.iter().any(|(n, _)| *n == file) {
            assert_eq!(read(&file).is_ok(), valid && spec.is_binary(), "{file}");
        }
    }
    // The softmax model reads with its three outputs; its near misses do not.
    let m = read("softmax.safetensors").expect("the softmax model reads");
    assert_eq!((m.model.outputs, m.model.classes()), (3, 3));
    for bad in [
        "softmax-one-output",
        "softmax-no-outputs",
        "output-other",
        "softmax-binary-data",
    ] {
        let file = format!("{bad}.safetensors");
        assert!(read(&file).is_err(), "{file} reads");
    }
}
