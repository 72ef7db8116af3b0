//! Joining: admission of holders, their dataset commitments, and the job's randomness
//! drawn by commit-reveal from the roster's contributions.

use super::*;

impl Job {
    pub(super) fn connected(&self) -> Vec<ParticipantId> {
        self.members
            .iter()
            .filter(|(_, m)| m.connected)
            .map(|(&p, _)| p)
            .collect()
    }

    /// Connected members that can take part in a round: those that committed to their
    /// contribution to the job's randomness and, in a proven job, to their dataset.
    pub(super) fn ready(&self) -> Vec<ParticipantId> {
        let proven = self.cfg.proof.is_some();
        self.members
            .iter()
            .filter(|(_, m)| {
                m.connected && m.commitment.is_some() && (!proven || m.dataset.is_some())
            })
            .map(|(&p, _)| p)
            .collect()
    }

    pub(super) fn maybe_start(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Joining { .. })
            && self.ready().len() >= self.cfg.participants
        {
            self.close_enrolment(now);
        }
    }

    /// Enrolment is over: members not ready are let go; the ready ones reveal their
    /// contributions (a resumed job whose randomness is fixed sends it at once).
    pub(super) fn close_enrolment(&mut self, now: Instant) {
        let ready = self.ready();
        let late: Vec<ParticipantId> = self
            .connected()
            .into_iter()
            .filter(|p| !ready.contains(p))
            .collect();
        for p in late {
            if let Some(m) = self.members.get_mut(&p) {
                m.connected = false;
            }
            self.refuse(
                p,
                "enrolment closed before this holder committed to its randomness contribution (and, in a proven job, to its dataset)".into(),
            );
        }
        if self.beacon.is_some() {
            for p in ready {
                self.transmits.push_back(Transmit {
                    to: p,
                    msg: ToParticipant::Randomness {
                        contributions: self.randomness.clone(),
                    },
                    close: false,
                });
            }
            self.start_round(now);
            return;
        }
        let mut roster: Vec<(ParticipantId, IdentityPublic, [u8; 32])> = ready
            .iter()
            .filter_map(|p| {
                let m = self.members.get(p)?;
                Some((*p, m.identity, m.commitment?))
            })
            .collect();
        roster.sort_by_key(|(_, id, _)| id.0);
        let shown: Vec<(IdentityPublic, [u8; 32])> =
            roster.iter().map(|(_, id, c)| (*id, *c)).collect();
        for (p, ..) in &roster {
            self.transmits.push_back(Transmit {
                to: *p,
                msg: ToParticipant::Reveal {
                    roster: shown.clone(),
                },
                close: false,
            });
        }
        self.phase = Phase::Revealing(Box::new(Revealing {
            roster,
            reveals: BTreeMap::new(),
            deadline: now + self.cfg.round_timeout,
        }));
    }

    /// A member's commitment to its contribution to the job's randomness: once, before
    /// enrolment closes; after a resume, the one it made before.
    pub(super) fn on_commit(&mut self, from: ParticipantId, commitment: [u8; 32], now: Instant) {
        let Some(member) = self.members.get(&from) else {
            return;
        };
        let recorded = self
            .randomness
            .iter()
            .find(|c| c.identity == member.identity)
            .map(|c| c.commitment);
        let reason = if member.commitment.is_some() {
            Some("the randomness commitment cannot change during the job".to_string())
        } else if !matches!(self.phase, Phase::Joining { .. } | Phase::Running(_)) {
            Some("randomness commitments close when enrolment closes".to_string())
        } else if matches!(self.phase, Phase::Running(_)) && recorded != Some(commitment) {
            Some("a holder joining a running job again must make the randomness commitment it made before".to_string())
        } else if recorded.is_some_and(|c| c != commitment) {
            Some("this identity committed to another randomness contribution before the coordinator restarted".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            if let Some(m) = self.members.get_mut(&from) {
                m.connected = false;
            }
            self.refuse(from, reason);
            return;
        }
        if let Some(m) = self.members.get_mut(&from) {
            m.commitment = Some(commitment);
        }
        if matches!(self.phase, Phase::Running(_)) {
            // Back in a running job: the randomness is fixed; the next round takes it.
            self.transmits.push_back(Transmit {
                to: from,
                msg: ToParticipant::Randomness {
                    contributions: self.randomness.clone(),
                },
                close: false,
            });
            return;
        }
        self.maybe_start(now);
    }

    /// A roster member's revealed contribution. Once every member has revealed, the
    /// randomness is fixed, sent to all, recorded, and the first round starts. A reveal
    /// that does not open its commitment ends the job (leaving its sender out would let
    /// whoever saw the other reveals choose between two beacons).
    pub(super) fn on_reveal(
        &mut self,
        from: ParticipantId,
        contribution: [u8; 32],
        now: Instant,
    ) -> Result<(), RoundError> {
        let Phase::Revealing(r) = &mut self.phase else {
            return Err(RoundError::Unexpected {
                from,
                what: "a randomness reveal outside the reveal",
            });
        };
        let Some(&(_, _, commitment)) = r.roster.iter().find(|(p, ..)| *p == from) else {
            return Err(RoundError::Unexpected {
                from,
                what: "a reveal from outside the roster",
            });
        };
        if randomness::commit(&contribution) != commitment {
            self.finish(
                Some(format!(
                    "participant {from} revealed a contribution that does not open its commitment"
                )),
                now,
            );
            return Err(RoundError::Unexpected {
                from,
                what: "a reveal that does not open its commitment",
            });
        }
        r.reveals.insert(from, contribution);
        if r.reveals.len() < r.roster.len() {
            return Ok(());
        }
        let contributions: Vec<Contribution> = r
            .roster
            .iter()
            .filter_map(|(p, identity, commitment)| {
                Some(Contribution {
                    identity: *identity,
                    commitment: *commitment,
                    reveal: *r.reveals.get(p)?,
                })
            })
            .collect();
        let members: Vec<ParticipantId> = r.roster.iter().map(|(p, ..)| *p).collect();
        self.beacon = Some(randomness::beacon(&self.cfg.job_id, &contributions));
        for p in members {
            self.transmits.push_back(Transmit {
                to: p,
                msg: ToParticipant::Randomness {
                    contributions: contributions.clone(),
                },
                close: false,
            });
        }
        self.randomness = contributions.clone();
        self.events
            .push_back(JobEvent::Randomness { contributions });
        self.start_round(now);
        Ok(())
    }

    /// A member's dataset commitment: once, before the first round, signed with its
    /// identity key, of whole blocks, at least one batch of rows and at most what its tree
    /// holds ([`ProofSpec::refuse_rows`]).
    pub(super) fn enrol(&mut self, from: ParticipantId, d: DatasetCommitment, now: Instant) {
        let Some(spec) = self.cfg.proof else {
            self.refuse(from, "this job takes no dataset commitment".into());
            return;
        };
        let Some(member) = self.members.get(&from) else {
            return;
        };
        let reason = if member.dataset.is_some() {
            Some("the dataset commitment cannot change during the job".to_string())
        } else if !matches!(self.phase, Phase::Joining { .. })
            && self
                .committed
                .get(&member.identity)
                .is_none_or(|f| *f != d.facts())
        {
            Some("dataset commitments close when the first round starts (a holder joining again must commit to its dataset of before)".to_string())
        } else if self
            .committed
            .get(&member.identity)
            .is_some_and(|f| *f != d.facts())
        {
            Some("this identity committed to another dataset before the coordinator restarted; a holder's dataset is fixed for the job".to_string())
        } else if let Some(reason) = spec.refuse_rows(d.n_rows, self.cfg.hyper.batch_size) {
            Some(reason)
        } else {
            d.verify(&self.cfg.job_id, &member.identity).err()
        };
        if let Some(reason) = reason {
            if let Some(m) = self.members.get_mut(&from) {
                m.connected = false;
            }
            self.refuse(from, reason);
            return;
        }
        let identity = member.identity;
        if let Some(m) = self.members.get_mut(&from) {
            m.dataset = Some(d.clone());
        }
        if !matches!(self.phase, Phase::Joining { .. }) {
            // Joined again with its recorded commitment: nothing new to record.
            return;
        }
        self.events.push_back(JobEvent::Enrolled {
            participant: from,
            identity,
            dataset: d,
        });
        self.maybe_start(now);
    }

    pub(super) fn admit(&mut self, from: ParticipantId, h: Hello, now: Instant) {
        let reason = if h.version != PROTOCOL_VERSION {
            Some(format!(
                "protocol version {} is not supported (coordinator speaks {PROTOCOL_VERSION})",
                h.version
            ))
        } else if h.name.len() > MAX_NAME_BYTES {
            Some(format!("name longer than {MAX_NAME_BYTES} bytes"))
        } else if h.n_features as usize != self.cfg.model.n_features {
            Some(format!(
                "data has {} features, the job's model expects {}",
                h.n_features, self.cfg.model.n_features
            ))
        } else if h.n_rows == 0 {
            Some("participant holds no rows".to_string())
        } else if matches!(self.phase, Phase::Done) {
            Some("the job is over".to_string())
        } else if !matches!(self.phase, Phase::Joining { .. }) && !self.may_rejoin(&h.identity) {
            Some("the job has already started".to_string())
        } else if matches!(self.phase, Phase::Joining { .. })
            && self.members.len() >= self.cfg.participants
        {
            Some(format!(
                "the job is full ({} participants)",
                self.cfg.participants
            ))
        } else if !self.randomness.is_empty()
            && randomness::holder_index(&self.randomness, &h.identity).is_none()
        {
            Some("this job's randomness was fixed among other holders before the coordinator restarted; only they may join again".to_string())
        } else if self
            .members
            .values()
            .any(|m| m.connected && m.identity == h.identity)
        {
            Some(format!(
                "identity key {} is already in the job on another connection",
                hex::encode(h.identity.0)
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            self.refuse(from, reason);
            return;
        }
        if !matches!(self.phase, Phase::Joining { .. }) {
            // A roster holder back after losing its connection: its old entry goes, and
            // its dataset commitment is the one it must make again.
            let old: Vec<ParticipantId> = self
                .members
                .iter()
                .filter(|(_, m)| m.identity == h.identity)
                .map(|(&p, _)| p)
                .collect();
            for p in old {
                if let Some(d) = self.members.remove(&p).and_then(|m| m.dataset) {
                    self.committed.insert(h.identity, d.facts());
                }
            }
        }
        self.members.insert(
            from,
            Member {
                connected: true,
                identity: h.identity,
                dataset: None,
                commitment: None,
            },
        );
        self.transmits.push_back(Transmit {
            to: from,
            msg: ToParticipant::Welcome(Welcome {
                participant: from,
                job_id: self.cfg.job_id.clone(),
                model: self.cfg.model.clone(),
                rounds: self.cfg.rounds,
                hyper: self.cfg.hyper.clone(),
                proof: self.cfg.proof,
            }),
            close: false,
        });
        self.events.push_back(JobEvent::Joined {
            participant: from,
            // What reaches the coordinator's terminal, logs and status page: no escape
            // sequences or forged log lines from a holder's chosen name.
            name: wire::printable(&h.name, MAX_NAME_BYTES),
            n_rows: h.n_rows,
        });
        self.maybe_start(now);
    }

    /// Whether a holder may join the running job again: one of the holders its randomness
    /// was drawn among (so its rows and statements are fixed by it), not connected now.
    /// It takes part from the next round on.
    pub(super) fn may_rejoin(&self, identity: &IdentityPublic) -> bool {
        matches!(self.phase, Phase::Running(_))
            && randomness::holder_index(&self.randomness, identity).is_some()
            && !self
                .members
                .values()
                .any(|m| m.connected && m.identity == *identity)
    }

    pub(super) fn refuse(&mut self, to: ParticipantId, reason: String) {
        self.transmits.push_back(Transmit {
            to,
            msg: ToParticipant::Rejected {
                reason: reason.clone(),
            },
            close: true,
        });
        self.events.push_back(JobEvent::Refused {
            participant: to,
            reason,
        });
    }
}
