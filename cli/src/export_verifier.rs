//! `cairn export-verifier`: a verifying key and proofs in the formats independent verifiers
//! read: snarkjs JSON (`snarkjs groth16 verify`) and a Solidity verifier contract with the
//! calldata of each proof. The formats are `cairn_circuits::export`; this module only picks
//! what to export.
//!
//! Sources of the key and proofs:
//! - `--transcript PATH`: a proven job's transcript: the job's verifying key and every
//!   survivor's proof with the public inputs the transcript fixes for it (named
//!   `r<round>_p<participant>`), so each can be checked by snarkjs or on chain;
//! - `--demo-shape`: a tiny training circuit (logistic regression, K = 1, B = 2, tree depth
//!   2) with throwaway keys and one honest proof, for checking the tools
//!   (`scripts/check-verifiers.sh`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, ensure, Context, Result};
use cairn_circuits::export::{self, NamedProof};
use cairn_circuits::fixed::{quantize_all, quantize_row};
use cairn_circuits::merkle::MerkleTree;
use cairn_circuits::pedersen::random_blinding;
use cairn_circuits::rows::DEFAULT_FEATURE_BITS;
use cairn_circuits::training::proof::{self, VerifyingKey};
use cairn_circuits::training::prover::Prover;
use cairn_circuits::training::{replayed_update, FixedHyper, Shape, Witness};
use cairn_coordinator::audit::proof_items;
use cairn_proofs::rounds;
use cairn_protocol::model::{HyperParams, ModelSpec};
use cairn_protocol::sampling::block_indices;
use cairn_protocol::transcript::Transcript;
use clap::Args;

/// `cairn export-verifier` arguments.
#[derive(Args, Debug)]
pub struct ExportVerifierArgs {
    /// Directory to write into (created if absent; files of the same names are replaced).
    #[arg(long, default_value = "verifier")]
    pub out: PathBuf,
    /// Where the key and proofs come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Features of the demo model (with --demo-shape; 1 to 64).
    #[arg(long, default_value_t = DEMO_FEATURES)]
    pub demo_features: usize,
}

/// Where the key and proofs come from (exactly one).
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct SourceArgs {
    /// Set up a tiny training circuit (logistic regression, K = 1, B = 2, tree depth 2) with
    /// throwaway keys, prove one honest update, and export them (proof name `demo`).
    #[arg(long)]
    pub demo_shape: bool,
    /// A proven job's transcript (`cairn-out/transcript.cairn`): its key and every proof.
    #[arg(long)]
    pub transcript: Option<PathBuf>,
}

/// Where to take the key and proofs from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A tiny circuit set up on the spot, with `features` features.
    Demo {
        /// Features of the logistic-regression model.
        features: usize,
    },
    /// A job's transcript file.
    Transcript(PathBuf),
}

/// A verifying key and the proofs to export for it.
#[derive(Clone, Debug)]
pub struct Export {
    /// The key.
    pub vk: VerifyingKey,
    /// The proofs with their names and public inputs.
    pub proofs: Vec<NamedProof>,
    /// One line for the contract's header (what the key is for).
    pub note: String,
}

/// Features of the demo model when not given.
pub const DEMO_FEATURES: usize = 4;
/// Name of the demo's proof (`proof_demo.json`, …).
pub const DEMO_PROOF: &str = "demo";

/// Runs `cairn export-verifier`.
pub async fn run(args: ExportVerifierArgs) -> Result<()> {
    let source = match (&args.source.transcript, args.source.demo_shape) {
        (Some(path), _) => Source::Transcript(path.clone()),
        (None, true) => Source::Demo {
            features: args.demo_features,
        },
        (None, false) => {
            bail!("say where the key and proofs come from: --transcript PATH or --demo-shape")
        }
    };
    let out = args.out.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let started = Instant::now();
        let export = collect(&source)?;
        let files = write(&out, &export)?;
        println!("{}", export.note);
        println!(
            "exported {} proof(s) in {:.1} s:",
            export.proofs.len(),
            started.elapsed().as_secs_f64()
        );
        for f in &files {
            println!("  {}", f.display());
        }
        if let Some(p) = export.proofs.first() {
            let d = out.display();
            println!(
                "check: snarkjs groth16 verify {d}/{} {d}/public_{n}.json {d}/proof_{n}.json",
                export::VK_FILE,
                n = p.name
            );
        }
        Ok(())
    })
    .await
    .context("the export task failed")?
}

/// Gathers the key and proofs from `source`.
pub fn collect(source: &Source) -> Result<Export> {
    match source {
        Source::Demo { features } => demo(*features),
        Source::Transcript(path) => from_transcript(path),
    }
}

/// The key and every proof of a transcript file, each with the public inputs of the
/// statement the transcript fixes for it.
pub fn from_transcript(path: &Path) -> Result<Export> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let t =
        Transcript::from_bytes(&bytes).with_context(|| format!("decoding {}", path.display()))?;
    let (vk_bytes, items) = proof_items(&t).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let Some(first) = items.first() else {
        bail!("{} holds no proofs (no completed round)", path.display());
    };
    let st = &first.statement;
    let shape = rounds::shape(&st.model, &st.hyper, &st.proof)?;
    let vk = proof::vk_from_bytes(&shape, &vk_bytes)
        .with_context(|| format!("the verifying key in {}", path.display()))?;
    let proofs = items
        .iter()
        .map(|it| {
            let (_, public) = rounds::statement(&it.statement, it.index, &it.dataset, &it.input)
                .map_err(|e| anyhow!("round {} participant {}: {e}", it.round, it.participant))?;
            let p = proof::Proof::from_bytes(&it.input.proof)
                .with_context(|| format!("round {} participant {}", it.round, it.participant))?;
            Ok(NamedProof {
                name: format!("r{}_p{}", it.round, it.participant),
                proof: p.0,
                inputs: public.to_inputs(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Export {
        vk,
        note: format!(
            "Job transcript {} (shape {}: {}, K = {}, B = {}, depth {}); {} proofs.",
            path.display(),
            shape.id(),
            st.model.describe(),
            st.hyper.local_steps,
            st.hyper.batch_size,
            st.proof.tree_depth,
            proofs.len()
        ),
        proofs,
    })
}

/// Writes `export` into `dir` (see `cairn_circuits::export::write_bundle`).
pub fn write(dir: &Path, export: &Export) -> Result<Vec<PathBuf>> {
    export::write_bundle(dir, &export.vk, &export.proofs, &export.note)
        .with_context(|| format!("writing the verifier bundle into {}", dir.display()))
}

/// The demo's rows: `features` values in [-1, 1) and a 0/1 label, deterministic.
fn demo_rows(features: usize, n: usize) -> Result<Vec<Vec<i64>>> {
    (0..n)
        .map(|i| {
            let x: Vec<f32> = (0..features)
                .map(|j| ((i * 7 + j * 3) % 11) as f32 / 5.5 - 1.0)
                .collect();
            quantize_row(&x, (i % 2) as f32).context("quantising a demo row")
        })
        .collect()
}

/// A tiny training circuit with fresh throwaway keys and one honest proof, checked natively.
pub fn demo(features: usize) -> Result<Export> {
    ensure!(
        (1..=64).contains(&features),
        "the demo model takes 1 to 64 features, not {features}"
    );
    let shape = Shape {
        model: ModelSpec::mlp(features, vec![]),
        local_steps: 1,
        batch_size: 2,
        tree_depth: 2,
        feature_bits: DEFAULT_FEATURE_BITS,
        block_rows: 2,
        sampled_steps: None,
        noise: None,
    };
    shape.validate().context("demo shape")?;
    let rows = demo_rows(features, 4)?;
    let leaves = shape.row_format().leaves(&rows).context("demo rows")?;
    let tree = MerkleTree::from_leaves(leaves, shape.tree_depth).context("demo Merkle tree")?;
    let indices = block_indices(
        [7; 32],
        0,
        rows.len(),
        shape.local_steps,
        shape.batch_size,
        shape.block_rows,
    );
    let model = quantize_all(&shape.model.init_params(1)).context("demo model")?;
    let hyper = FixedHyper::new(
        &HyperParams {
            local_steps: shape.local_steps,
            batch_size: shape.batch_size,
            learning_rate: 0.1,
            clip_norm: 5.0,
        },
        1e-3,
    )
    .context("demo hyper-parameters")?;
    let update = replayed_update(&shape, &rows, &indices, &model, &hyper).context("demo replay")?;

    let mut rng = rand::rngs::OsRng;
    let witness = Witness::new(
        &shape,
        &tree,
        &rows,
        indices,
        model,
        hyper,
        update,
        random_blinding(&mut rng),
    )
    .context("demo witness")?;
    let (pk, vk) = proof::setup(&shape, &mut rng).context("demo setup")?;
    let prover = Prover::new(&shape, pk).context("demo prover")?;
    let p = prover.prove(&witness, &mut rng).context("demo proof")?;
    let ok = proof::verify(&proof::prepare(&vk), &witness.public, &p).context("demo verify")?;
    ensure!(ok, "the demo proof does not verify natively");
    Ok(Export {
        vk,
        proofs: vec![NamedProof {
            name: DEMO_PROOF.into(),
            proof: p.0,
            inputs: witness.public.to_inputs(),
        }],
        note: format!(
            "Demo shape {} (logistic regression, {features} features, K = 1, B = 2, depth 2; \
             throwaway keys).",
            shape.id()
        ),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cairn_circuits::export::snarkjs;

    #[test]
    fn demo_exports_files_that_read_back_to_the_proven_statement() {
        let export = demo(2).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = write(dir.path(), &export).unwrap();
        assert_eq!(files.len(), 5);

        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        let vk = snarkjs::parse_verification_key(&read(export::VK_FILE)).unwrap();
        assert_eq!(vk, export.vk);
        assert_eq!(vk.gamma_abc_g1.len(), 7, "six public inputs");
        let p = snarkjs::parse_proof(&read("proof_demo.json")).unwrap();
        assert_eq!(p, export.proofs[0].proof);
        let inputs = snarkjs::parse_public_inputs(&read("public_demo.json")).unwrap();
        assert_eq!(inputs, export.proofs[0].inputs);
        let sol = read(export::CONTRACT_FILE);
        assert!(sol.contains("uint256[6] calldata input"));
        assert!(sol.contains("Demo shape"));

        assert!(demo(0).is_err());
        assert!(demo(65).is_err());
    }
}
