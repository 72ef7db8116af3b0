//! The layouts of the coordinator's round record ([`RoundRecord`]) in the store, and how the
//! older ones are read.
//!
//! | layout | written by | [`Metrics`] holds |
//! |---|---|---|
//! | 0 | builds before PR-AUC (rows without a layout number) | loss, accuracy (at 0.5), AUC |
//! | 1 | builds before DP | loss, accuracy, AUC, PR-AUC, threshold, precision, recall, F1 |
//! | 2 | this build | as layout 1; the record ends with a DP job's ε after the round |
//!
//! A change to [`RoundRecord`] or [`Metrics`] changes the encoding: raise
//! [`RecordLayout::LAYOUT`] and decode the layout it replaces here (the test
//! `layout_2_is_pinned` fails until then).

use serde::Deserialize;

use cairn_protocol::metrics::{Metrics, DEFAULT_THRESHOLD};

use super::RecordLayout;
use crate::progress::RoundRecord;

/// [`Metrics`] as layout 0 encoded it.
#[derive(Deserialize)]
struct MetricsV0 {
    loss: f64,
    accuracy: f64,
    auc: f64,
}

/// [`RoundRecord`] as layout 0 encoded it (field for field, in order).
#[derive(Deserialize)]
struct RoundRecordV0 {
    round: u32,
    selected: usize,
    contributors: usize,
    dropped: Vec<(u32, String)>,
    /// `None` for NaN (a failed round), as `RoundRecord::train_loss` is encoded.
    train_loss: Option<f64>,
    test: Option<MetricsV0>,
    seconds: f64,
    failure: Option<String>,
    verify_seconds: Option<Vec<f64>>,
    rss_bytes: Option<u64>,
}

impl From<RoundRecordV0> for RoundRecordV1 {
    fn from(r: RoundRecordV0) -> Self {
        RoundRecordV1 {
            round: r.round,
            selected: r.selected,
            contributors: r.contributors,
            dropped: r.dropped,
            train_loss: r.train_loss,
            // Layout 0's accuracy was at 0.5; the metrics it did not have stay unknown.
            test: r.test.map(|m| Metrics {
                loss: m.loss,
                accuracy: m.accuracy,
                auc: m.auc,
                pr_auc: None,
                threshold: DEFAULT_THRESHOLD,
                precision: None,
                recall: None,
                f1: None,
            }),
            seconds: r.seconds,
            failure: r.failure,
            verify_seconds: r.verify_seconds,
            rss_bytes: r.rss_bytes,
        }
    }
}

/// [`RoundRecord`] as layout 1 encoded it: today's fields but the ε of DP jobs (which
/// layout 1's builds did not run).
#[derive(Deserialize)]
struct RoundRecordV1 {
    round: u32,
    selected: usize,
    contributors: usize,
    dropped: Vec<(u32, String)>,
    train_loss: Option<f64>,
    test: Option<Metrics>,
    seconds: f64,
    failure: Option<String>,
    verify_seconds: Option<Vec<f64>>,
    rss_bytes: Option<u64>,
}

impl From<RoundRecordV1> for RoundRecord {
    fn from(r: RoundRecordV1) -> Self {
        RoundRecord {
            round: r.round,
            selected: r.selected,
            contributors: r.contributors,
            dropped: r.dropped,
            train_loss: r.train_loss.unwrap_or(f64::NAN),
            test: r.test,
            seconds: r.seconds,
            failure: r.failure,
            verify_seconds: r.verify_seconds,
            rss_bytes: r.rss_bytes,
            epsilon: None,
        }
    }
}

/// Decodes the whole of `bytes` as `T`.
fn whole<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bincode::serde::decode_from_slice::<T, _>(bytes, bincode::config::standard()) {
        Ok((r, used)) if used == bytes.len() => Ok(r),
        Ok((_, used)) => Err(format!("{} trailing bytes", bytes.len() - used)),
        Err(e) => Err(e.to_string()),
    }
}

impl RecordLayout for RoundRecord {
    const LAYOUT: u32 = 2;

    fn decode_layout(layout: u32, bytes: &[u8]) -> Result<Self, String> {
        match layout {
            0 => whole::<RoundRecordV0>(bytes).map(|r| RoundRecordV1::from(r).into()),
            1 => whole::<RoundRecordV1>(bytes).map(Into::into),
            other => Err(format!("no round record was written in layout {other}")),
        }
    }
}

#[cfg(test)]
/// A completed round's record in layout 0, byte for byte as the build before PR-AUC
/// wrote it (bincode, standard configuration: integers as varints, f64 as 8
/// little-endian bytes, `Option` as a 0/1 byte then the value).
pub(super) const V0_COMPLETED: &[u8] = &[
    1, // round: 1
    5, // selected: 5
    4, // contributors: 4
    1, // dropped: 1 entry
    2, // …participant 2
    4, b'g', b'o', b'n', b'e', // …reason "gone" (length 4)
    1, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f, // train_loss: Some(0.5)
    1,    // test: Some(
    0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xd9, 0x3f, // loss 0.4
    0xcd, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xec, 0x3f, // accuracy 0.9
    0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xe9, 0x3f, // auc 0.8 )
    0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // seconds: 1.5
    0,    // failure: None
    1, 1, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // verify_seconds: Some([1.0])
    1, 0xfb, 0x00, 0x04, // rss_bytes: Some(1024) (varint: 251 then u16 LE)
];

/// A failed round's record in layout 0.
#[cfg(test)]
pub(super) const V0_FAILED: &[u8] = &[
    2, // round: 2
    5, // selected
    0, // contributors
    0, // dropped: none
    0, // train_loss: None (NaN)
    0, // test: None
    0, 0, 0, 0, 0, 0, 0, 0x40, // seconds: 2.0
    1, 3, b'f', b'e', b'w', // failure: Some("few")
    0,    // verify_seconds: None
    0,    // rss_bytes: None
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_0_bytes_read_as_today_s_record() {
        let r = RoundRecord::decode_layout(0, V0_COMPLETED).expect("layout 0");
        assert_eq!(
            r,
            RoundRecord {
                round: 1,
                selected: 5,
                contributors: 4,
                dropped: vec![(2, "gone".into())],
                train_loss: 0.5,
                test: Some(Metrics {
                    loss: 0.4,
                    accuracy: 0.9,
                    auc: 0.8,
                    pr_auc: None,
                    threshold: 0.5,
                    precision: None,
                    recall: None,
                    f1: None,
                }),
                seconds: 1.5,
                failure: None,
                verify_seconds: Some(vec![1.0]),
                rss_bytes: Some(1024),
                epsilon: None,
            }
        );
        let f = RoundRecord::decode_layout(0, V0_FAILED).expect("layout 0, failed round");
        assert_eq!(
            (f.round, f.test, f.failure.as_deref()),
            (2, None, Some("few"))
        );
        assert!(f.train_loss.is_nan());
    }

    #[test]
    fn layout_0_bytes_are_not_today_s_layout() {
        // Today's decoder reads Metrics' new fields out of the bytes that follow and runs
        // out (or misreads them): the layout number is what tells them apart, not luck.
        let today = bincode::serde::decode_from_slice::<RoundRecord, _>(
            V0_COMPLETED,
            bincode::config::standard(),
        );
        assert!(
            !matches!(today, Ok((_, used)) if used == V0_COMPLETED.len()),
            "layout 0 must not decode as layout 1"
        );
    }

    #[test]
    fn damaged_or_unknown_layouts_are_refused() {
        let e = RoundRecord::decode_layout(0, &V0_COMPLETED[..V0_COMPLETED.len() - 1])
            .expect_err("truncated");
        assert!(!e.is_empty());
        let mut long = V0_FAILED.to_vec();
        long.push(0);
        let e = RoundRecord::decode_layout(0, &long).expect_err("trailing byte");
        assert!(e.contains("1 trailing bytes"), "{e}");
        let e = RoundRecord::decode_layout(7, V0_FAILED).expect_err("layout 7");
        assert!(e.contains("layout 7"), "{e}");
    }

    /// A record's layout-1 bytes: layout 2's without the trailing ε.
    fn layout_1_bytes(r: &RoundRecord) -> Vec<u8> {
        assert_eq!(r.epsilon, None);
        let mut b = bincode::serde::encode_to_vec(r, bincode::config::standard()).expect("encode");
        assert_eq!(b.pop(), Some(0), "ε: None is one 0 byte at the end");
        b
    }

    #[test]
    fn layout_1_bytes_read_as_today_s_record_without_epsilon() {
        let mut r = RoundRecord::decode_layout(0, V0_COMPLETED).expect("layout 0");
        r.test = r.test.map(|m| Metrics {
            pr_auc: Some(0.7),
            f1: Some(0.6),
            ..m
        });
        let v1 = layout_1_bytes(&r);
        assert_eq!(RoundRecord::decode_layout(1, &v1).expect("layout 1"), r);
        let failed = RoundRecord::decode_layout(0, V0_FAILED).expect("layout 0, failed round");
        let back = RoundRecord::decode_layout(1, &layout_1_bytes(&failed)).expect("layout 1");
        assert!(back.train_loss.is_nan() && back.epsilon.is_none());
        let e = RoundRecord::decode_layout(1, &v1[..v1.len() - 1]).expect_err("truncated");
        assert!(!e.is_empty());
    }

    #[test]
    fn layout_2_is_pinned() {
        // Fails when RoundRecord's or Metrics' encoding changes: then raise LAYOUT and
        // read layout 2 in decode_layout (see the module's documentation).
        let r = RoundRecord {
            round: 1,
            selected: 2,
            contributors: 2,
            dropped: vec![],
            train_loss: 0.5,
            test: Some(Metrics {
                loss: 0.5,
                accuracy: 0.5,
                auc: 0.5,
                pr_auc: Some(0.5),
                threshold: 0.5,
                precision: Some(0.5),
                recall: None,
                f1: Some(0.5),
            }),
            seconds: 0.5,
            failure: None,
            verify_seconds: None,
            rss_bytes: None,
            epsilon: Some(0.5),
        };
        let half = [0, 0, 0, 0, 0, 0, 0xe0, 0x3f];
        let mut want = vec![1, 2, 2, 0, 1];
        want.extend(half); // train_loss
        want.push(1); // test: Some(
        for field in 0..8 {
            match field {
                // loss, accuracy, auc, threshold
                0 | 1 | 2 | 4 => want.extend(half),
                // pr_auc, precision, f1: Some(0.5)
                3 | 5 | 7 => {
                    want.push(1);
                    want.extend(half);
                }
                // recall: None
                _ => want.push(0),
            }
        }
        want.extend(half); // seconds
        want.extend([0, 0, 0]); // failure, verify_seconds, rss_bytes: None
        want.push(1); // epsilon: Some(0.5)
        want.extend(half);
        let got = bincode::serde::encode_to_vec(&r, bincode::config::standard()).expect("encode");
        assert_eq!(got, want);
        assert_eq!(RoundRecord::LAYOUT, 2);
    }
}
