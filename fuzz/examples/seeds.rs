//! Writes the seed corpora (`cairn_fuzz::seeds::all`) to `fuzz/corpus/<target>/seed-<name>`,
//! or under the folder given as the first argument. Run after a wire format change:
//! `cargo run -p cairn-fuzz --example seeds`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"),
        PathBuf::from,
    );
    for (target, seeds) in cairn_fuzz::seeds::all() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds {
            std::fs::write(dir.join(format!("seed-{name}")), &bytes)?;
        }
    }
    println!("seeds written under {}", root.display());
    Ok(())
}
