//! One account's running aggregates over its transaction history, and the feature vector they produce.
//!
//! Everything is from the account's point of view: `sent` rows spend from it, `received` rows pay into it.
//! Failed transactions (`isError` = 1) move no value but still cost the sender gas, so they count towards
//! the error rate and fees, not towards value totals.

use std::collections::HashSet;

/// Wei per ether.
const WEI_PER_ETH: f64 = 1e18;
/// Wei per gwei.
const WEI_PER_GWEI: f64 = 1e9;

/// The feature columns, in output order.
pub const FEATURE_NAMES: [&str; 24] = [
    "sent_tx",
    "received_tx",
    "contract_creations",
    "unique_sent_to",
    "unique_received_from",
    "eth_sent_total",
    "eth_sent_mean",
    "eth_sent_max",
    "eth_received_total",
    "eth_received_mean",
    "eth_received_max",
    "eth_received_min",
    "eth_net_flow",
    "fees_eth_total",
    "gas_price_gwei_mean",
    "gas_used_mean",
    "gas_limit_mean",
    "error_rate",
    "method_call_share",
    "zero_value_share",
    "span_minutes",
    "mean_gap_minutes",
    "mean_gap_sent_minutes",
    "mean_gap_received_minutes",
];

/// One parsed transaction row, as seen from the account it belongs to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tx {
    pub sent: bool,
    pub timestamp: u64,
    pub counterparty: String,
    pub value_wei: f64,
    pub gas_limit: f64,
    pub gas_price_wei: f64,
    pub gas_used: f64,
    pub failed: bool,
    pub contract_creation: bool,
    pub method_call: bool,
}

/// Running aggregates of one account.
#[derive(Debug, Default)]
pub(crate) struct Account {
    /// Rows seen for this account, placeholder rows included.
    pub rows: usize,
    /// Rows with every field empty but the account id (upstream found no transaction).
    pub placeholders: usize,
    sent_times: Vec<u64>,
    received_times: Vec<u64>,
    sent_to: HashSet<String>,
    received_from: HashSet<String>,
    contract_creations: usize,
    sent_values: Vec<f64>,
    received_values: Vec<f64>,
    fees_wei: f64,
    gas_price_sum: f64,
    gas_used_sum: f64,
    gas_limit_sum: f64,
    failed: usize,
    method_calls: usize,
    zero_value: usize,
}

fn mean_gap_minutes(times: &mut [u64]) -> f64 {
    if times.len() < 2 {
        return 0.0;
    }
    times.sort_unstable();
    let span = times[times.len() - 1] - times[0];
    span as f64 / 60.0 / (times.len() - 1) as f64
}

impl Account {
    /// Adds one real transaction.
    pub fn add(&mut self, tx: Tx) {
        self.rows += 1;
        self.failed += usize::from(tx.failed);
        let moved = if tx.failed {
            0.0
        } else {
            tx.value_wei / WEI_PER_ETH
        };
        self.zero_value += usize::from(moved == 0.0);
        if tx.sent {
            self.sent_times.push(tx.timestamp);
            self.contract_creations += usize::from(tx.contract_creation);
            self.method_calls += usize::from(tx.method_call);
            self.fees_wei += tx.gas_used * tx.gas_price_wei;
            self.gas_price_sum += tx.gas_price_wei / WEI_PER_GWEI;
            self.gas_used_sum += tx.gas_used;
            self.gas_limit_sum += tx.gas_limit;
            self.sent_values.push(moved);
            if !tx.counterparty.is_empty() {
                self.sent_to.insert(tx.counterparty);
            }
        } else {
            self.received_times.push(tx.timestamp);
            self.received_values.push(moved);
            if !tx.counterparty.is_empty() {
                self.received_from.insert(tx.counterparty);
            }
        }
    }

    /// Adds one placeholder row.
    pub fn add_placeholder(&mut self) {
        self.rows += 1;
        self.placeholders += 1;
    }

    /// Whether the account has no real transaction, only placeholder rows.
    pub fn is_placeholder_only(&self) -> bool {
        self.placeholders == self.rows
    }

    /// The feature vector, in [`FEATURE_NAMES`] order (all zeros for a placeholder-only account).
    pub fn features(mut self) -> Vec<f32> {
        let n_sent = self.sent_values.len();
        let n_recv = self.received_values.len();
        let n = (n_sent + n_recv).max(1) as f64;
        let per_sent = |x: f64| if n_sent > 0 { x / n_sent as f64 } else { 0.0 };
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let sent_total = sum(&self.sent_values);
        let recv_total = sum(&self.received_values);
        let recv_mean = if n_recv > 0 {
            recv_total / n_recv as f64
        } else {
            0.0
        };
        let recv_min = self
            .received_values
            .iter()
            .copied()
            .reduce(f64::min)
            .unwrap_or(0.0);
        let fees = self.fees_wei / WEI_PER_ETH;
        let mut all: Vec<u64> = self
            .sent_times
            .iter()
            .chain(&self.received_times)
            .copied()
            .collect();
        let span = match (all.iter().min(), all.iter().max()) {
            (Some(lo), Some(hi)) => (hi - lo) as f64 / 60.0,
            _ => 0.0,
        };
        let values = [
            n_sent as f64,
            n_recv as f64,
            self.contract_creations as f64,
            self.sent_to.len() as f64,
            self.received_from.len() as f64,
            sent_total,
            per_sent(sent_total),
            max(&self.sent_values),
            recv_total,
            recv_mean,
            max(&self.received_values),
            recv_min,
            recv_total - sent_total - fees,
            fees,
            per_sent(self.gas_price_sum),
            per_sent(self.gas_used_sum),
            per_sent(self.gas_limit_sum),
            self.failed as f64 / n,
            per_sent(self.method_calls as f64),
            self.zero_value as f64 / n,
            span,
            mean_gap_minutes(&mut all),
            mean_gap_minutes(&mut self.sent_times),
            mean_gap_minutes(&mut self.received_times),
        ];
        if self.is_placeholder_only() {
            return vec![0.0; FEATURE_NAMES.len()];
        }
        // Saturated into f32's range: an amount needs only be a finite f64, and a fee is a
        // product of two, so a feature could pass f32::MAX, and cast it was ±∞, which the
        // normaliser turned into NaN features (found by the `account_txs` fuzz target). A NaN
        // (∞ − ∞ of two overflowing f64 sums) stays NaN: missing, filled like any other.
        values
            .iter()
            .map(|&v| v.clamp(f64::from(f32::MIN), f64::from(f32::MAX)) as f32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(sent: bool, t: u64, who: &str, eth: f64) -> Tx {
        Tx {
            sent,
            timestamp: t,
            counterparty: who.to_string(),
            value_wei: eth * WEI_PER_ETH,
            gas_limit: 30_000.0,
            gas_price_wei: 2e10,
            gas_used: 21_000.0,
            ..Tx::default()
        }
    }

    #[test]
    fn features_past_the_range_of_f32_saturate() {
        let mut a = Account::default();
        a.add(Tx {
            gas_price_wei: 1e200,
            gas_used: 1e200,
            ..tx(true, 0, "0xa", 1e250)
        });
        a.add(tx(false, 60, "0xb", 1e250));
        let f = a.features();
        assert!(f.iter().all(|x| !x.is_infinite()), "{f:?}");
        let fees = FEATURE_NAMES
            .iter()
            .position(|n| *n == "fees_eth_total")
            .expect("known name");
        assert_eq!(f[fees], f32::MAX);
    }

    #[test]
    fn aggregates_from_the_accounts_point_of_view() {
        let mut a = Account::default();
        a.add(tx(false, 0, "0xa", 2.0));
        a.add(tx(false, 600, "0xa", 1.0));
        a.add(tx(true, 1200, "0xb", 0.5));
        a.add(Tx {
            failed: true,
            ..tx(true, 1800, "0xc", 9.0)
        });
        let f = a.features();
        let get = |name: &str| {
            f[FEATURE_NAMES
                .iter()
                .position(|n| *n == name)
                .expect("known name")]
        };
        assert_eq!((get("sent_tx"), get("received_tx")), (2.0, 2.0));
        assert_eq!(
            (get("unique_sent_to"), get("unique_received_from")),
            (2.0, 1.0)
        );
        assert_eq!(
            (get("eth_sent_total"), get("eth_sent_max")),
            (0.5, 0.5),
            "the failed send moved nothing"
        );
        assert_eq!(
            (get("eth_received_total"), get("eth_received_min")),
            (3.0, 1.0)
        );
        let fees = 2.0 * 21_000.0 * 2e10 / WEI_PER_ETH;
        assert!((f64::from(get("fees_eth_total")) - fees).abs() < 1e-9);
        assert!((f64::from(get("eth_net_flow")) - (3.0 - 0.5 - fees)).abs() < 1e-6);
        assert_eq!((get("error_rate"), get("zero_value_share")), (0.25, 0.25));
        assert_eq!((get("span_minutes"), get("mean_gap_minutes")), (30.0, 10.0));
        assert_eq!(
            (
                get("mean_gap_sent_minutes"),
                get("mean_gap_received_minutes")
            ),
            (10.0, 10.0)
        );
        assert_eq!(get("gas_price_gwei_mean"), 20.0);
    }

    #[test]
    fn placeholder_only_accounts_are_all_zero() {
        let mut a = Account::default();
        a.add_placeholder();
        assert!(a.is_placeholder_only());
        assert_eq!(a.features(), vec![0.0; FEATURE_NAMES.len()]);
    }
}
