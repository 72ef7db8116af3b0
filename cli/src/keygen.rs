//! `cairn keygen`: the keys a job needs before its first round.
//!
//! - `cairn keygen proof`: the Groth16 proving and verifying keys of one job shape (model,
//!   K, B, tree depth) — the circuit-specific trusted setup, run once per shape by the job
//!   operator. Keys are cached under `--out` by shape hash (`training-<hash>.{pk,vk}`); keys
//!   already there are reused, never regenerated, and never used for another shape.
//! - `cairn keygen identity`: a data holder's Ed25519 identity key, the one the operator
//!   allow-lists. The secret seed is written owner-only (mode 0600); the public key is
//!   printed and written beside it as `<file>.pub`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cairn_circuits::training::circuit::TrainingCircuit;
use cairn_circuits::training::proof::KeyStore;
use cairn_circuits::training::Shape;
use cairn_crypto::sign::{IdentityKey, IdentityPublic};
use cairn_protocol::model::ModelSpec;
use clap::{Args, Subcommand};
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// `cairn keygen` arguments.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Which keys.
    #[command(subcommand)]
    pub command: KeygenCommand,
}

/// The kinds of keys `cairn keygen` makes.
#[derive(Subcommand, Debug)]
pub enum KeygenCommand {
    /// Groth16 proving and verifying keys for one job shape (the trusted setup; reused if
    /// already present).
    Proof(ProofKeygenArgs),
    /// An Ed25519 identity key for a data holder.
    Identity(IdentityKeygenArgs),
}

/// Hidden layer widths: `16,8`, or empty / `none` for logistic regression.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HiddenLayers(pub Vec<usize>);

impl FromStr for HiddenLayers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(Self(Vec::new()));
        }
        s.split(',')
            .map(|w| match w.trim().parse::<usize>() {
                Ok(0) => Err("hidden widths must be positive".to_owned()),
                Ok(n) => Ok(n),
                Err(_) => Err(format!(
                    "hidden width {w:?} is not a number (expected e.g. 16,8, or none)"
                )),
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// `cairn keygen proof`: the job shape and where the keys go.
#[derive(Args, Debug)]
pub struct ProofKeygenArgs {
    /// Features per row (the model's input width).
    #[arg(long)]
    pub features: usize,
    /// Hidden layer widths, e.g. `16,8`; empty or `none` for logistic regression.
    #[arg(long, default_value = "")]
    pub hidden: HiddenLayers,
    /// Local SGD steps K per round.
    #[arg(long)]
    pub local_steps: u32,
    /// Batch size B (rows per step).
    #[arg(long)]
    pub batch: u32,
    /// Depth of the holders' Merkle trees in index bits (even; 2^depth blocks at most).
    #[arg(long)]
    pub depth: u32,
    /// Signed bits of each committed fixed-point feature (20: features in [−8, 8)).
    #[arg(long, default_value_t = cairn_circuits::rows::DEFAULT_FEATURE_BITS)]
    pub feature_bits: u32,
    /// Rows per leaf of the holders' trees; divides the batch size [default: the largest of
    /// 8, 4, 2, 1 that does]
    #[arg(long)]
    pub block_rows: Option<u32>,
    /// Local steps each proof covers: `all`, or a number s < K of steps the coordinator
    /// challenges after the holder commits to all K (sampled-step proofs).
    #[arg(long, default_value = "all")]
    pub proved_steps: cairn_protocol::challenge::ProvedSteps,
    /// Key directory.
    #[arg(long, default_value = "cairn-keys")]
    pub out: PathBuf,
}

impl ProofKeygenArgs {
    /// The circuit shape these flags name.
    pub fn shape(&self) -> Result<Shape> {
        let shape = Shape {
            model: ModelSpec::mlp(self.features, self.hidden.0.clone()),
            local_steps: self.local_steps,
            batch_size: self.batch,
            tree_depth: self.depth,
            feature_bits: self.feature_bits,
            block_rows: self
                .block_rows
                .unwrap_or_else(|| cairn_proofs::rounds::default_block_rows(self.batch)),
            sampled_steps: self.proved_steps.sampled(self.local_steps),
            noise: None,
        };
        shape.validate().context("invalid job shape")?;
        Ok(shape)
    }
}

/// `cairn keygen identity`: where the key goes.
#[derive(Args, Debug)]
pub struct IdentityKeygenArgs {
    /// File for the secret key (hex seed, mode 0600); the public key goes to `<file>.pub`.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing key file.
    #[arg(long)]
    pub force: bool,
}

/// What `cairn keygen proof` produced.
#[derive(Clone, Debug)]
pub struct ProofKeys {
    /// The shape hash in hex (the keys' name).
    pub shape_id: String,
    /// The proving key file.
    pub pk_path: PathBuf,
    /// The verifying key file (published in the job's transcript).
    pub vk_path: PathBuf,
    /// Size of the proving key file in bytes.
    pub pk_bytes: u64,
    /// Size of the verifying key file in bytes.
    pub vk_bytes: u64,
    /// Constraints of the circuit (counted when the setup ran).
    pub constraints: Option<usize>,
    /// Whether existing keys were loaded instead of running the setup.
    pub reused: bool,
    /// Seconds spent loading or setting up.
    pub seconds: f64,
}

/// Runs `cairn keygen`.
pub fn run(args: KeygenArgs) -> Result<()> {
    match args.command {
        KeygenCommand::Proof(a) => {
            let k = proof_keys(&a)?;
            if k.reused {
                println!(
                    "keys for shape {} already exist in {}: reused (loaded and checked in {:.1} s)",
                    k.shape_id,
                    a.out.display(),
                    k.seconds
                );
            } else {
                println!("Groth16 setup for shape {}: {:.1} s", k.shape_id, k.seconds);
            }
            println!("shape         {}", k.shape_id);
            if let Some(n) = k.constraints {
                println!("constraints   {n}");
            }
            println!(
                "proving key   {} ({})",
                k.pk_path.display(),
                human_bytes(k.pk_bytes)
            );
            println!(
                "verifying key {} ({})",
                k.vk_path.display(),
                human_bytes(k.vk_bytes)
            );
            if !k.reused {
                println!(
                    "publish the verifying key with the job; the setup's randomness was not kept"
                );
            }
            Ok(())
        }
        KeygenCommand::Identity(a) => {
            let public = identity_key(&a.out, a.force)?;
            println!("identity key written to {} (mode 0600)", a.out.display());
            println!(
                "public key {} (also in {})",
                hex::encode(public.0),
                pub_path(&a.out).display()
            );
            Ok(())
        }
    }
}

/// Loads the keys of the flags' shape from `--out`, or runs the setup and stores them
/// (`KeyStore::load_or_setup`, with the operating system's randomness).
pub fn proof_keys(args: &ProofKeygenArgs) -> Result<ProofKeys> {
    let shape = args.shape()?;
    let store = KeyStore::new(&args.out);
    let (pk_path, vk_path) = store.paths(&shape);
    let reused = pk_path.exists() && vk_path.exists();
    // The size of the circuit, reported with a fresh setup (synthesising costs seconds on
    // the large shapes, not worth it when the keys are only loaded).
    let constraints = if reused {
        None
    } else {
        let breakdown =
            TrainingCircuit::shape_breakdown(&shape).context("synthesising the circuit")?;
        Some(breakdown.total)
    };
    let t0 = Instant::now();
    store.load_or_setup(&shape, &mut OsRng).with_context(|| {
        if reused {
            format!("loading the keys in {}", args.out.display())
        } else {
            format!("Groth16 setup into {}", args.out.display())
        }
    })?;
    let seconds = t0.elapsed().as_secs_f64();
    let size = |p: &Path| -> Result<u64> {
        Ok(std::fs::metadata(p)
            .with_context(|| format!("reading {}", p.display()))?
            .len())
    };
    Ok(ProofKeys {
        shape_id: shape.id(),
        pk_bytes: size(&pk_path)?,
        vk_bytes: size(&vk_path)?,
        pk_path,
        vk_path,
        constraints,
        reused,
        seconds,
    })
}

fn human_bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / MIB)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// `<file>.pub`: where the public half of an identity key goes.
pub fn pub_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Writes a fresh identity key to `out` (its 32-byte seed in hex, owner-only) and its
/// public key to `<out>.pub`; refuses to replace an existing key unless `force`.
pub fn identity_key(out: &Path, force: bool) -> Result<IdentityPublic> {
    let public_file = pub_path(out);
    if !force {
        for p in [out, public_file.as_path()] {
            if p.exists() {
                bail!(
                    "{} already exists: refusing to overwrite a key (use --force to replace it)",
                    p.display()
                );
            }
        }
    }
    let key = IdentityKey::random(&mut OsRng);
    let secret = Zeroizing::new(format!("{}\n", hex::encode(*key.to_seed())));
    write_private(out, secret.as_bytes(), force)?;
    let public = key.public();
    std::fs::write(&public_file, format!("{}\n", hex::encode(public.0)))
        .with_context(|| format!("writing {}", public_file.display()))?;
    Ok(public)
}

/// Writes `bytes` to a new file readable by its owner only. With `replace`, an existing
/// file is replaced atomically (write beside it, then rename), so its old permissions do
/// not carry over.
fn write_private(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let target = if replace {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        PathBuf::from(tmp)
    } else {
        path.to_owned()
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f: File = opts.open(&target).with_context(|| {
        if target.exists() {
            format!(
                "{} already exists: refusing to overwrite a key (use --force to replace it)",
                target.display()
            )
        } else {
            format!("creating {}", target.display())
        }
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", target.display()))?;
    if replace {
        std::fs::rename(&target, path).with_context(|| format!("replacing {}", path.display()))?;
    }
    Ok(())
}

/// Reads an identity key written by `cairn keygen identity`. On Unix, refuses a key file
/// that others can read or write (as ssh does).
pub fn read_identity(path: &Path) -> Result<IdentityKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("reading identity key {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "identity key {} is accessible to others (mode {:o}): chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading identity key {}", path.display()))?,
    );
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut()).with_context(|| {
        format!(
            "{} is not an identity key (expected 64 hex digits)",
            path.display()
        )
    })?;
    Ok(IdentityKey::from_seed(&seed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hidden_layers_parse() {
        assert_eq!(HiddenLayers::from_str("").unwrap().0, Vec::<usize>::new());
        assert_eq!(
            HiddenLayers::from_str("none").unwrap().0,
            Vec::<usize>::new()
        );
        assert_eq!(HiddenLayers::from_str("16, 8").unwrap().0, vec![16, 8]);
        assert!(HiddenLayers::from_str("16,x").is_err());
        assert!(HiddenLayers::from_str("0").is_err());
        assert!(HiddenLayers::from_str("16,").is_err());
    }

    #[test]
    fn identity_round_trips_and_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/holder.key");
        let public = identity_key(&path, false).unwrap();
        assert_eq!(read_identity(&path).unwrap().public(), public);
        let published = std::fs::read_to_string(pub_path(&path)).unwrap();
        assert_eq!(published.trim(), hex::encode(public.0));
        assert!(identity_key(&path, false).is_err());
        let replaced = identity_key(&path, true).unwrap();
        assert_ne!(replaced, public);
        assert_eq!(read_identity(&path).unwrap().public(), replaced);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = read_identity(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
        std::fs::write(&path, "not hex\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(read_identity(&path).is_err());
    }
}
