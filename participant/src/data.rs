//! [`HolderData`]: the rows a holder brings to each job it is offered.
//!
//! A job's offer names its data ([`DataSpec`]: label, input columns, fitted transforms);
//! the holder prepares its own table with it, or says why it cannot. Rows prepared
//! beforehand (the demo, simulations, tests) are a [`Dataset`]; a holder serving job after
//! job from its own file implements this trait (the CLI's holder re-reads its file for
//! each job, with the job's label and columns).

use std::sync::Arc;

use cairn_datasets::{DataSpec, Dataset};
use cairn_protocol::wire::Offer;

/// The rows a holder trains on in a job.
pub trait HolderData: Send + Sync {
    /// Its rows for the job `offer` names, prepared as the offer's data spec says. An
    /// error is the reason it cannot take part, which the coordinator shows.
    fn for_job(&self, offer: &Offer) -> Result<Arc<Dataset>, String>;
}

/// Rows already prepared: used as they are when the job names no data spec, or names one
/// with exactly these columns.
impl HolderData for Dataset {
    fn for_job(&self, offer: &Offer) -> Result<Arc<Dataset>, String> {
        if let Some(spec) = &offer.data {
            check_columns(spec, &self.feature_names)?;
        }
        Ok(Arc::new(self.clone()))
    }
}

/// `Err` naming the first difference between the job's input columns and `have`.
fn check_columns(spec: &DataSpec, have: &[String]) -> Result<(), String> {
    let want = spec.columns();
    if want.as_slice() == have {
        return Ok(());
    }
    let missing = spec.lacking(have);
    Err(match missing.first() {
        Some(first) => format!(
            "this holder's prepared rows lack {} of the job's {} columns (first: {first:?})",
            missing.len(),
            want.len()
        ),
        None => format!(
            "this holder's prepared rows have {} columns, the job's model takes {} in another order",
            have.len(),
            want.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_datasets::{prepare, synthetic_table, LoadOptions, LoadReport};

    #[test]
    fn prepared_rows_serve_a_job_with_their_columns_and_decline_others() {
        let report = LoadReport {
            label: "label".into(),
            ..LoadReport::default()
        };
        let p =
            prepare(synthetic_table(400, 4, 1), report, &LoadOptions::default()).expect("prepare");
        let spec = DataSpec::of(&p);
        let offer = |data| Offer {
            job_id: "j".into(),
            data,
        };
        let rows = p
            .train
            .for_job(&offer(Some(spec.clone())))
            .expect("same columns");
        assert_eq!(*rows, p.train);
        assert!(p.train.for_job(&offer(None)).is_ok());
        let mut other = spec;
        other.normalizer.columns[0].name = "not in the table".into();
        let why = p
            .train
            .for_job(&offer(Some(other)))
            .expect_err("a column it lacks");
        assert!(why.contains("lack 1 of"), "{why}");
    }
}
