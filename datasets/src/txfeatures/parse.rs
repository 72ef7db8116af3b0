//! Parsing one row of an Etherscan `txlist` export: column lookup, wei amounts beyond 2^64, direction.

use crate::error::DatasetError;

use super::account::Tx;

/// Column positions in the transaction export.
pub(super) struct Cols {
    pub(super) time: usize,
    pub(super) hash: usize,
    from: usize,
    to: usize,
    value: usize,
    gas: usize,
    gas_price: usize,
    is_error: usize,
    contract: usize,
    gas_used: usize,
    method: usize,
    kind: usize,
    pub(super) account: usize,
}

impl Cols {
    pub(super) fn find(header: &csv::ByteRecord) -> Result<Cols, DatasetError> {
        let names: Vec<String> = header
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        let col = |name: &str| {
            names
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| DatasetError::MissingLabel {
                    label: name.to_string(),
                    available: names.clone(),
                })
        };
        Ok(Cols {
            time: col("timeStamp")?,
            hash: col("hash")?,
            from: col("from")?,
            to: col("to")?,
            value: col("value")?,
            gas: col("gas")?,
            gas_price: col("gasPrice")?,
            is_error: col("isError")?,
            contract: col("contractAddress")?,
            gas_used: col("gasUsed")?,
            method: col("methodId")?,
            kind: col("txn type")?,
            account: col("AccountId")?,
        })
    }
}

/// One field of a record as text.
pub(super) fn field<'r>(
    rec: &'r csv::ByteRecord,
    i: usize,
    name: &str,
    line: u64,
) -> Result<&'r str, DatasetError> {
    let bytes = rec.get(i).unwrap_or_default();
    std::str::from_utf8(bytes)
        .map(str::trim)
        .map_err(|_| DatasetError::BadTransaction {
            line,
            column: name.to_string(),
            value: String::from_utf8_lossy(bytes).into_owned(),
        })
}

/// A non-negative decimal amount (wei, gas): exact through `u128`, else as a float; empty is 0.
fn amount(s: &str, name: &str, line: u64) -> Result<f64, DatasetError> {
    if s.is_empty() {
        return Ok(0.0);
    }
    s.parse::<u128>()
        .map(|v| v as f64)
        .or_else(|_| {
            s.parse::<f64>().map_err(|_| ()).and_then(|v| {
                if v.is_finite() && v >= 0.0 {
                    Ok(v)
                } else {
                    Err(())
                }
            })
        })
        .map_err(|()| DatasetError::BadTransaction {
            line,
            column: name.to_string(),
            value: s.to_string(),
        })
}

/// Parses one non-placeholder row of `account`'s history.
pub(super) fn parse_tx(
    rec: &csv::ByteRecord,
    c: &Cols,
    account: &str,
    line: u64,
) -> Result<Tx, DatasetError> {
    let f = |i: usize, name: &str| field(rec, i, name, line);
    let time = f(c.time, "timeStamp")?;
    let timestamp = time
        .parse::<u64>()
        .map_err(|_| DatasetError::BadTransaction {
            line,
            column: "timeStamp".to_string(),
            value: time.to_string(),
        })?;
    let from = f(c.from, "from")?.to_ascii_lowercase();
    let to = f(c.to, "to")?.to_ascii_lowercase();
    let contract = f(c.contract, "contractAddress")?.to_ascii_lowercase();
    let sent = match f(c.kind, "txn type")? {
        "sent" => true,
        "received" => false,
        _ => from == account,
    };
    let counterparty = if !sent {
        from
    } else if to.is_empty() {
        contract.clone()
    } else {
        to.clone()
    };
    let method = f(c.method, "methodId")?;
    Ok(Tx {
        sent,
        timestamp,
        counterparty,
        value_wei: amount(f(c.value, "value")?, "value", line)?,
        gas_limit: amount(f(c.gas, "gas")?, "gas", line)?,
        gas_price_wei: amount(f(c.gas_price, "gasPrice")?, "gasPrice", line)?,
        gas_used: amount(f(c.gas_used, "gasUsed")?, "gasUsed", line)?,
        failed: f(c.is_error, "isError")? == "1",
        contract_creation: sent && to.is_empty() && !contract.is_empty(),
        method_call: !method.is_empty() && method != "0x",
    })
}
