//! Distributed DP: what proving the noise costs (issue #16 item 4, proven jobs).
//!
//! R3's shape (`cairn demo`'s: MLP 38→8→1, 321 parameters rotated in d_pad = 512, K = 10,
//! B = 32, one sampled step per proof, trees of depth 12 over blocks of 8 rows) without
//! noise, and with the noise of a proven DP job at ε = 1, 3, 8 (δ = 1e-5, 20 rounds, q = 1)
//! for 5 and for 50 holders, `min_survivors` = the holders, clip 1.0. The DP settings come
//! from `JobFile::to_config` exactly as a coordinator derives them (`dp_settings`: z from ε
//! over the rounds, the proven default grid γ = `proven_granularity(C / (4 √d_pad), d_pad)`,
//! β = e^−1/2) and the shape from `cairn_proofs::rounds::shape`. A job file the check refuses
//! as too large to set up (over `MAX_SETUP_CONSTRAINTS`) is resolved again proof-free with
//! the same γ given by hand, which `dp_settings` turns into the same parameters, and only
//! counted.
//!
//! Prints, per configuration: the holder variance V_h, the sampler's support K, z, the
//! constraints of the noise part (`Breakdown::noise`) and per rotated coordinate (one draw,
//! measured alone; a third of a PRG block; the rest: sign, z's range, the grid checks, y²),
//! the total and its ratio to no noise; then for no noise and ε = 3 at 5 and 50 holders the
//! setup time, the prove time (CPU-seconds, median of 3 proofs) and the verify time.
//!
//! Run: `. scripts/torch-env.sh && cargo bench -p cairn-benches --bench dp_proof_cost`;
//! `CAIRN_DP_PROOF=count` only counts constraints.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ark_bn254::Fr;
use ark_r1cs_std::{alloc::AllocVar, fields::fp::FpVar};
use cairn_circuits::training::circuit::{Breakdown, TrainingCircuit};
use cairn_circuits::training::prover::Prover;
use cairn_circuits::training::{proof, NoiseInput, Shape};
use cairn_coordinator::job_file::{JobFile, JobFileError};
use cairn_proofs::spec::ProofSpec;
use cairn_protocol::privacy::SkellamParams;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

mod common;
use common::{cpu_seconds, median};

const ROUNDS: u32 = 20;
const DELTA: f64 = 1e-5;
const CLIP: f64 = 1.0;
/// R3's model: 38 features, one hidden layer of 8.
const FEATURES: usize = 38;
/// Rows of the synthetic dataset the witnesses open (as `prove`).
const ROWS: usize = 10_000;
/// Proofs timed per proved configuration.
const PROOFS: usize = 3;
/// Verifications timed per proof.
const VERIFIES: usize = 20;

/// One configuration: no noise, or a DP job's.
struct Config {
    holders: Option<usize>,
    epsilon: Option<f64>,
}

impl Config {
    fn label(&self) -> String {
        match (self.holders, self.epsilon) {
            (Some(n), Some(e)) => format!("ε = {e}, {n} holders"),
            _ => "no noise".into(),
        }
    }

    /// Set up and proved (not only counted).
    fn timed(&self) -> bool {
        self.epsilon.is_none_or(|e| e == 3.0)
    }
}

/// The job file of R3 (20 rounds, K = 10, B = 32, lr 0.5, clip 1, proofs on: trees of depth
/// 12, blocks of 8 rows, one sampled step), with `[privacy]` for `holders` at `epsilon` when
/// given (`min_survivors` = holders; `granularity` only when given).
fn job_toml(dp: Option<(usize, f64)>, proofs: bool, granularity: Option<f64>) -> String {
    let n = dp.map_or(5, |(n, _)| n);
    let mut toml = format!(
        "rounds = {ROUNDS}\n[model]\nhidden = [8]\n\
         [participants]\nper_round = {n}\nmin = {n}\n\
         [train]\nsteps = 10\nbatch = 32\nlr = 0.5\nclip = {CLIP:?}\n\
         [aggregation]\nmode = \"secure\"\n\
         [proofs]\nenabled = {proofs}\ntree_depth = 12\nblock_rows = 8\nsteps = 1\n"
    );
    if let Some((n, epsilon)) = dp {
        toml +=
            &format!("[privacy]\nepsilon = {epsilon:?}\ndelta = {DELTA:?}\nmin_survivors = {n}\n");
        if let Some(g) = granularity {
            // `{:?}` prints the shortest decimal that reads back as the same f64.
            toml += &format!("granularity = {g:?}\n");
        }
    }
    toml
}

/// The proof settings and DP parameters of `config`, as `JobFile::to_config` derives them;
/// with whether the proven job file was refused as too large to set up.
fn resolve(config: &Config) -> Result<(ProofSpec, Option<SkellamParams>, bool)> {
    let dp = config.holders.zip(config.epsilon);
    let file = JobFile::from_toml(&job_toml(dp, true, None)).context("the job file")?;
    let proven = file.to_config("dp-proof-cost", FEATURES, 2);
    let Some((n, epsilon)) = dp else {
        let job = proven.context("resolving the job file without noise")?;
        let spec = job
            .config
            .proof
            .context("a proven job without proof settings")?;
        return Ok((spec, None, false));
    };
    // The same job proof-free, with the grid the proven job defaults to given by hand:
    // `dp_settings` derives the same parameters for it (and the size check does not run).
    let dim = cairn_protocol::model::ModelSpec::mlp(FEATURES, vec![8]).param_count();
    let padded = dim.next_power_of_two();
    let gamma =
        cairn_proofs::noise::proven_granularity(CLIP / (4.0 * (padded as f64).sqrt()), padded);
    let free = JobFile::from_toml(&job_toml(Some((n, epsilon)), false, Some(gamma)))
        .context("the proof-free job file")?
        .to_config("dp-proof-cost", FEATURES, 2)
        .context("resolving the proof-free job file")?;
    let params = free
        .config
        .privacy
        .context("the proof-free job resolved without privacy")?
        .params;
    ensure!(
        params.padded_dim().ok() == Some(padded),
        "d_pad {padded} is not the parameters'"
    );
    match proven {
        Ok(job) => {
            let spec = job
                .config
                .proof
                .context("a proven job without proof settings")?;
            ensure!(
                spec.noise == Some(params),
                "the proven job's parameters {:?} differ from {params:?}",
                spec.noise
            );
            Ok((spec, Some(params), false))
        }
        Err(JobFileError::Invalid(problems))
            if problems
                .iter()
                .any(|p| p.field == "proofs" && p.reason.contains("the most a job may have")) =>
        {
            // R3's proof settings, as the job file without noise resolves them.
            let (spec, _, _) = resolve(&Config {
                holders: None,
                epsilon: None,
            })?;
            Ok((
                ProofSpec {
                    noise: Some(params),
                    ..spec
                },
                Some(params),
                true,
            ))
        }
        Err(e) => bail!("resolving the proven job file: {e}"),
    }
}

/// The constraints of one draw from `shape`'s table, alone (the sampler gadget on a
/// witness word).
fn draw_constraints(shape: &Shape) -> Result<usize> {
    let Some(noise) = &shape.noise else {
        return Ok(0);
    };
    let cs = ark_relations::gr1cs::ConstraintSystem::<Fr>::new_ref();
    let u = FpVar::new_witness(cs.clone(), || Ok(Fr::from(0x9e37_79b9_7f4a_7c15_u64)))?;
    let _draw = cairn_circuits::noise::constraints::sample(&noise.thresholds, noise.k, &u)?;
    ensure!(cs.is_satisfied()?, "a lone draw is unsatisfied");
    Ok(cs.num_constraints())
}

/// What one configuration measured.
struct Row {
    label: String,
    z: Option<f64>,
    variance: Option<f64>,
    k: Option<i64>,
    draw: usize,
    bd: Breakdown,
    refused: bool,
    times: Option<Times>,
}

struct Times {
    setup_wall: f64,
    setup_cpu: f64,
    setup_peak_mib: f64,
    prove_peak_mib: f64,
    prove_cpu: f64,
    prove_wall: f64,
    prove_cpus: Vec<f64>,
    /// Medians over the proofs, wall seconds: witness synthesis, `A·z, B·z, C·z` and the
    /// check, FFTs, MSMs.
    phases: [f64; 4],
    verify_ms: f64,
    pk_mib: f64,
}

fn measure(config: &Config, count_only: bool) -> Result<Row> {
    let (spec, params, refused) = resolve(config)?;
    let r3 = common::reference_shape("R3");
    let hyper = cairn_protocol::model::HyperParams {
        local_steps: r3.local_steps,
        batch_size: r3.batch_size,
        learning_rate: 0.5,
        clip_norm: CLIP as f32,
    };
    let shape = cairn_proofs::rounds::shape(&r3.model, &hyper, &spec)?;
    ensure!(
        Shape {
            noise: None,
            ..shape.clone()
        } == r3,
        "the job file's shape is not R3's: {shape:?}"
    );
    let t = Instant::now();
    let bd = TrainingCircuit::shape_breakdown(&shape)?;
    eprintln!(
        "{}: {} constraints counted in {:.1} s",
        config.label(),
        bd.total,
        t.elapsed().as_secs_f64()
    );
    let mut row = Row {
        label: config.label(),
        z: params.map(|p| p.noise_multiplier),
        variance: params.map(|p| p.holder_variance()),
        k: shape.noise.as_ref().map(|n| n.k),
        draw: draw_constraints(&shape)?,
        bd,
        refused,
        times: None,
    };
    if count_only || !config.timed() {
        return Ok(row);
    }
    if refused || bd.total as u64 > proof::MAX_SETUP_CONSTRAINTS {
        eprintln!("{}: too large to set up, counted only", row.label);
        return Ok(row);
    }
    row.times = Some(prove(&shape, &bd)?);
    Ok(row)
}

/// Sets up `shape`, proves an honest (noised) witness [`PROOFS`] times and verifies it.
fn prove(shape: &Shape, bd: &Breakdown) -> Result<Times> {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let (mut witness, _) = common::synthetic_witness(shape, ROWS, &mut rng);
    let norm = witness
        .private
        .update
        .iter()
        .map(|&v| (v as f64 / 65536.0).powi(2))
        .sum::<f64>()
        .sqrt();
    eprintln!("the synthetic update's L2 norm: {norm:.3} (clip {CLIP})");
    if shape.noise.is_some() {
        let dim = shape.model.param_count();
        let input = NoiseInput {
            seed: Fr::from(0x5eed_u64),
            round: 1,
            negative: cairn_proofs::noise::round_signs(&[1; 32], dim)?,
        };
        witness = witness
            .noised(shape, input, &mut rng)
            .context("noising the witness")?;
    }
    let circuit = TrainingCircuit {
        shape: shape.clone(),
        public: witness.public.clone(),
        private: witness.private.clone(),
    };
    let (counted, satisfied) = circuit.count()?;
    ensure!(satisfied, "the honest witness does not satisfy the circuit");
    ensure!(
        counted == *bd,
        "setup-mode and witness counts differ: {counted:?} vs {bd:?}"
    );

    common::reset_peak_rss();
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let (pk, vk) = proof::setup(shape, &mut rng)?;
    let setup_wall = t.elapsed().as_secs_f64();
    let setup_cpu = cpu_seconds() - cpu;
    let setup_peak_mib = common::peak_rss_mib();
    let pk_mib = proof::pk_to_bytes(shape, &pk).len() as f64 / f64::from(1 << 20);
    eprintln!("setup: {setup_wall:.1} s wall, {setup_cpu:.1} CPU-s");

    let prover = Prover::new(shape, pk)?;
    let pvk = proof::prepare(&vk);
    let mut prove_cpus = Vec::with_capacity(PROOFS);
    let mut prove_walls = Vec::with_capacity(PROOFS);
    let mut phases: Vec<[f64; 4]> = Vec::with_capacity(PROOFS);
    let mut verifies: Vec<Duration> = Vec::with_capacity(PROOFS * VERIFIES);
    common::reset_peak_rss();
    for _ in 0..PROOFS {
        let (t, cpu) = (Instant::now(), cpu_seconds());
        let (p, ph) = prover.prove_timed(&witness, &mut rng)?;
        prove_walls.push(t.elapsed().as_secs_f64());
        prove_cpus.push(cpu_seconds() - cpu);
        phases.push([ph.synthesis, ph.evaluate, ph.fft, ph.msm].map(|d| d.as_secs_f64()));
        eprintln!(
            "prove: {:.1} s wall, {:.1} CPU-s",
            prove_walls[prove_walls.len() - 1],
            prove_cpus[prove_cpus.len() - 1]
        );
        for _ in 0..VERIFIES {
            let t = Instant::now();
            let ok = proof::verify(&pvk, &witness.public, &p)?;
            verifies.push(t.elapsed());
            ensure!(ok, "an honest proof does not verify");
        }
    }
    let prove_peak_mib = common::peak_rss_mib();
    verifies.sort();
    Ok(Times {
        setup_wall,
        setup_cpu,
        setup_peak_mib,
        prove_peak_mib,
        prove_cpu: median(&prove_cpus),
        prove_wall: median(&prove_walls),
        prove_cpus,
        phases: [0, 1, 2, 3].map(|i| median(&phases.iter().map(|p| p[i]).collect::<Vec<_>>())),
        verify_ms: verifies[verifies.len() / 2].as_secs_f64() * 1e3,
        pk_mib,
    })
}

fn opt(x: Option<String>) -> String {
    x.unwrap_or_else(|| "—".into())
}

fn print(rows: &[Row], base: &Breakdown, n_params: usize, d_pad: usize) {
    println!(
        "\n| configuration | z | V_h (grid units²) | K | noise constraints | per coordinate: draw + PRG share + rest | total | × no noise |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    let prg = (cairn_circuits::noise::BLOCK_CONSTRAINTS + 3) as f64
        / cairn_circuits::noise::WORDS_PER_BLOCK as f64;
    for r in rows {
        let per = r.bd.noise as f64 / d_pad as f64;
        let split = if r.bd.noise == 0 {
            "—".into()
        } else {
            format!(
                "{per:.1} = {} + {prg:.1} + {:.1}",
                r.draw,
                per - r.draw as f64 - prg
            )
        };
        println!(
            "| {} | {} | {} | {} | {} | {split} | {}{} | {:.2} |",
            r.label,
            opt(r.z.map(|z| format!("{z:.3}"))),
            opt(r.variance.map(|v| format!("{v:.0}"))),
            opt(r.k.map(|k| k.to_string())),
            r.bd.noise,
            r.bd.total,
            if r.refused || r.bd.total as u64 > proof::MAX_SETUP_CONSTRAINTS {
                " (too large to set up)"
            } else {
                ""
            },
            r.bd.total as f64 / base.total as f64
        );
    }
    println!(
        "\ntraining part of R3 (one sampled step and the final rescale): {} constraints; commitment {} without noise (over {} values), {} with (over d_pad = {d_pad})",
        base.training,
        base.commitment,
        n_params,
        rows.iter().find(|r| r.bd.noise > 0).map_or(0, |r| r.bd.commitment),
    );
    let timed: Vec<&Row> = rows.iter().filter(|r| r.times.is_some()).collect();
    if timed.is_empty() {
        return;
    }
    println!(
        "\n| configuration | constraints | setup (peak memory) | prove, median of {PROOFS} (peak memory) | prove CPU-s, each | of which synthesis / A·z, B·z, C·z / FFTs / MSMs (s wall, medians) | verify (median of {}) | proving key |",
        PROOFS * VERIFIES
    );
    println!("|---|---:|---:|---:|---|---|---:|---:|");
    for r in timed {
        let Some(t) = &r.times else { continue };
        println!(
            "| {} | {} | {:.1} s wall, {:.1} CPU-s ({:.0} MiB) | {:.1} CPU-s, {:.1} s wall ({:.0} MiB) | {} | {} | {:.2} ms | {:.1} MiB |",
            r.label,
            r.bd.total,
            t.setup_wall,
            t.setup_cpu,
            t.setup_peak_mib,
            t.prove_cpu,
            t.prove_wall,
            t.prove_peak_mib,
            t.prove_cpus
                .iter()
                .map(|c| format!("{c:.1}"))
                .collect::<Vec<_>>()
                .join(" / "),
            t.phases
                .iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" / "),
            t.verify_ms,
            t.pk_mib
        );
    }
}

fn main() -> Result<()> {
    // `cargo test --benches` runs bench targets with `--test` (or `--list`): nothing to do.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return Ok(());
    }
    let count_only = std::env::var("CAIRN_DP_PROOF").is_ok_and(|v| v.contains("count"));
    let started = Instant::now();
    let mut configs = vec![Config {
        holders: None,
        epsilon: None,
    }];
    for holders in [5, 50] {
        for epsilon in [1.0, 3.0, 8.0] {
            configs.push(Config {
                holders: Some(holders),
                epsilon: Some(epsilon),
            });
        }
    }
    let mut rows = Vec::with_capacity(configs.len());
    for c in &configs {
        rows.push(measure(c, count_only)?);
    }
    let r3 = common::reference_shape("R3");
    let d_pad = r3.model.param_count().next_power_of_two();
    println!(
        "{}, d_pad = {d_pad}; DP: δ = {DELTA}, {ROUNDS} rounds, q = 1, clip {CLIP}, min_survivors = holders",
        common::shape_heading("R3", &r3)
    );
    let base = rows[0].bd;
    print(&rows, &base, r3.model.param_count(), d_pad);
    println!(
        "\n{} s in all, {:.0} CPU-s; load average {}; {} threads",
        started.elapsed().as_secs(),
        cpu_seconds(),
        common::load_average(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
