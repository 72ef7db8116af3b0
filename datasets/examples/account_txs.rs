//! Extracts per-account features from the shared raw transaction export and prints the load report:
//! `cargo run -p cairn-datasets --example account_txs -- [MAX_ACCOUNTS] [keep]`.

use cairn_datasets::{default_account_labels, default_account_txs, load_account_txs, LoadOptions};
use cairn_datasets::{ExtractOptions, Placeholders};

fn main() -> Result<(), cairn_datasets::DatasetError> {
    let mut args = std::env::args().skip(1);
    let max_accounts = args.next().and_then(|s| s.parse().ok());
    let placeholders = if args.next().as_deref() == Some("keep") {
        Placeholders::Keep
    } else {
        Placeholders::Drop
    };
    let start = std::time::Instant::now();
    let extract = ExtractOptions {
        max_accounts,
        placeholders,
        ..ExtractOptions::default()
    };
    let p = load_account_txs(
        &default_account_txs(),
        &default_account_labels(),
        &extract,
        &LoadOptions::default(),
    )?;
    print!("{}", p.report);
    println!("  extracted and prepared in {:.2?}", start.elapsed());
    Ok(())
}
