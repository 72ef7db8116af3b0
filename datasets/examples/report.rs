//! Prints the load report of a labelled CSV: `cargo run -p cairn-datasets --example report -- [PATH] [LABEL]`.

use std::path::PathBuf;

fn main() -> Result<(), cairn_datasets::DatasetError> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .map_or_else(cairn_datasets::default_fraud_csv, PathBuf::from);
    let label = args.next().unwrap_or_else(|| "FLAG".to_string());
    let start = std::time::Instant::now();
    let prepared =
        cairn_datasets::load_csv(&path, &cairn_datasets::LoadOptions::with_label(label))?;
    print!("{}", prepared.report);
    println!("  loaded in {:.2?}", start.elapsed());
    Ok(())
}
