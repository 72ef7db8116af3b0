//! A job's end: a proven job's holders countersign its transcript head before it finishes.

use super::*;

impl Job {
    /// The rounds are over. A proven job with holders still connected first collects
    /// their countersignatures on the transcript head ([`JobEvent::Sealing`]).
    pub(super) fn finish(&mut self, error: Option<String>, now: Instant) {
        let connected = self.connected();
        if self.cfg.proof.is_none() || connected.is_empty() {
            self.finish_now(error, Vec::new());
            return;
        }
        let last_round = self.next_round.saturating_sub(1);
        self.phase = Phase::Sealing(Box::new(Sealing {
            error,
            last_round,
            deadline: now + SEAL_TIMEOUT,
            payload: None,
            waiting: connected.into_iter().collect(),
            signatures: Vec::new(),
        }));
        self.events.push_back(JobEvent::Sealing {
            last_round,
            rounds_completed: self.completed,
        });
    }

    /// The driver's answer to [`JobEvent::Sealing`]: `head` is the hash of the
    /// transcript's last record. Each connected holder is asked to countersign it; the job
    /// finishes when all have answered, left, or [`SEAL_TIMEOUT`] passed.
    pub fn seal(&mut self, head: [u8; 32], now: Instant) {
        let final_model_hash = crate::transcript::model_hash(&self.global);
        let (job_id, completed) = (self.cfg.job_id.clone(), self.completed);
        let Phase::Sealing(sealing) = &mut self.phase else {
            return;
        };
        if sealing.payload.is_some() {
            return;
        }
        sealing.payload = Some(crate::transcript::seal_payload(
            &job_id,
            &head,
            sealing.last_round,
            completed,
            &final_model_hash,
        ));
        sealing.deadline = sealing.deadline.max(now + SEAL_TIMEOUT);
        for &to in &sealing.waiting {
            self.transmits.push_back(Transmit {
                to,
                msg: ToParticipant::Seal {
                    head,
                    last_round: sealing.last_round,
                    rounds_completed: completed,
                    final_model_hash,
                },
                close: false,
            });
        }
    }

    /// A countersignature (or anything else) from `from` while sealing.
    pub(super) fn on_sealing_message(
        &mut self,
        from: ParticipantId,
        msg: ToCoordinator,
    ) -> Result<(), RoundError> {
        let identity = self.members.get(&from).map(|m| m.identity);
        let Phase::Sealing(sealing) = &mut self.phase else {
            return Err(RoundError::NotInRound(from));
        };
        let (ToCoordinator::Countersign { signature }, Some(payload), Some(identity)) =
            (msg, &sealing.payload, identity)
        else {
            return Err(RoundError::NotInRound(from));
        };
        if !sealing.waiting.remove(&from) {
            return Err(RoundError::Unexpected {
                from,
                what: "a second countersignature",
            });
        }
        let valid = identity.verify(payload, &signature).is_ok();
        if valid {
            sealing.signatures.push((identity, signature));
        }
        self.after_sealing_input();
        if valid {
            Ok(())
        } else {
            Err(RoundError::Unexpected {
                from,
                what: "a countersignature that does not verify",
            })
        }
    }

    pub(super) fn after_sealing_input(&mut self) {
        if let Phase::Sealing(s) = &self.phase {
            if s.payload.is_some() && s.waiting.is_empty() {
                self.end_sealing();
            }
        }
    }

    pub(super) fn end_sealing(&mut self) {
        if let Phase::Sealing(s) = std::mem::replace(&mut self.phase, Phase::Done) {
            let Sealing {
                error, signatures, ..
            } = *s;
            self.finish_now(error, signatures);
        }
    }

    pub(super) fn finish_now(
        &mut self,
        error: Option<String>,
        countersignatures: Vec<(IdentityPublic, Signature)>,
    ) {
        let message = match &error {
            None => format!("job complete after {} rounds", self.completed),
            Some(e) => format!("job stopped after {} rounds: {e}", self.completed),
        };
        for p in self.connected() {
            self.transmits.push_back(Transmit {
                to: p,
                msg: ToParticipant::Finished {
                    rounds: self.completed,
                    completed: error.is_none(),
                    message: message.clone(),
                },
                close: true,
            });
        }
        self.phase = Phase::Done;
        self.events.push_back(JobEvent::Finished {
            rounds_completed: self.completed,
            last_round: self.next_round.saturating_sub(1),
            error,
            countersignatures,
        });
    }
}
