//! One round after another: selection, the round state machine, and applying (or
//! counting the failure of) each round's outcome.

use super::*;

impl Job {
    pub(super) fn start_round(&mut self, now: Instant) {
        if self.next_round > self.cfg.rounds.saturating_add(self.abandoned) {
            self.finish(None, now);
            return;
        }
        if let Some(reason) = self.budget_spent() {
            self.finish(Some(reason), now);
            return;
        }
        // Every ready member trains in every round (cross-silo FL: few, reliable holders).
        let selected = self.ready();
        if selected.len() < self.cfg.min_participants.max(1) {
            self.finish(
                Some(format!(
                    "only {} participant(s) still connected; the job needs at least {}",
                    selected.len(),
                    self.cfg.min_participants
                )),
                now,
            );
            return;
        }
        let Some(beacon) = self.beacon else {
            self.finish(
                Some("no round can start before the job's randomness is fixed".into()),
                now,
            );
            return;
        };
        let round_seed = randomness::round_seed(&beacon, self.next_round);
        // From the holders' randomness, fixed after the roster was.
        let graph_seed = randomness::graph_seed(&beacon, self.next_round);
        let cfg = RoundConfig {
            round: self.next_round,
            model: self.cfg.model.clone(),
            hyper: self.cfg.hyper.clone(),
            round_seed,
            timeout: self.cfg.round_timeout,
            min_participants: self.cfg.min_participants,
            proof: self.cfg.proof,
            privacy: self.cfg.privacy,
        };
        self.statement = self.cfg.proof.map(|proof| {
            Arc::new(RoundStatement {
                round: self.next_round,
                model: self.cfg.model.clone(),
                global: self.global.clone(),
                hyper: self.cfg.hyper.clone(),
                round_seed,
                proof,
            })
        });
        self.events.push_back(JobEvent::RoundStarted {
            round: self.next_round,
            participants: selected.clone(),
            round_seed,
        });
        self.next_round += 1;
        let round = match &self.cfg.aggregation {
            Aggregation::Plain => {
                AnyRound::Plain(Box::new(Round::new(cfg, &self.global, &selected, now)))
            }
            Aggregation::Secure(settings) => {
                let roster: Vec<_> = selected
                    .iter()
                    .filter_map(|p| Some((*p, self.members.get(p)?.identity)))
                    .collect();
                AnyRound::Secure(Box::new(SecureRound::new(
                    cfg,
                    *settings,
                    &self.cfg.job_id,
                    &self.global,
                    &roster,
                    graph_seed,
                    fresh_beacon(),
                    now,
                )))
            }
        };
        self.phase = Phase::Running(round);
        self.after_round_input(now);
    }

    pub(super) fn after_round_input(&mut self, now: Instant) {
        let Phase::Running(round) = &mut self.phase else {
            return;
        };
        let Some(outcome) = round.outcome().cloned() else {
            return;
        };
        if let AnyRound::Secure(r) = &mut *round {
            while let Some(p) = r.poll_phase() {
                self.events.push_back(JobEvent::PhaseClosed(p));
            }
        }
        while let Some((to, msg)) = round.poll_transmit() {
            self.transmits.push_back(Transmit {
                to,
                msg,
                close: false,
            });
        }
        let number = round.number();
        let dropped: Vec<_> = round
            .dropped()
            .iter()
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        // A proven round's update is applied only after Σ C_u = commit(S, R) holds: the
        // driver checks it off the event loop.
        let outcome = match outcome {
            RoundOutcome::Completed(a) if self.cfg.proof.is_some() => match a.proven.clone() {
                Some(sum) => {
                    self.work.push_back(Work::SumCheck(SumCheck { round: number, sum }));
                    self.phase = Phase::Checking(Box::new(Checking {
                        round: number,
                        aggregate: a,
                        dropped,
                    }));
                    return;
                }
                None => RoundOutcome::Failed {
                    reason: "aggregate commitment check failed, nothing applied: the round produced no proven sum".into(),
                },
            },
            o => o,
        };
        self.end_round(number, outcome, dropped, now);
    }

    /// A round ended: applies its update (or counts its failure) and starts the next.
    pub(super) fn end_round(
        &mut self,
        number: u32,
        outcome: RoundOutcome,
        dropped: Vec<(ParticipantId, DropReason)>,
        now: Instant,
    ) {
        match outcome {
            RoundOutcome::Completed(aggregate) => {
                if let Err(e) = self.opt.apply(&mut self.global, &aggregate.mean_delta) {
                    // A length mismatch (ruled out by the round's own checks) or a
                    // non-finite mean: nothing is applied and the job stops.
                    self.finish(Some(format!("server optimiser: {e}")), now);
                    return;
                }
                self.completed += 1;
                self.consecutive_failures = 0;
                self.events.push_back(JobEvent::RoundCompleted {
                    round: number,
                    aggregate,
                    dropped,
                    model: self.global.clone(),
                    opt_state: Box::new(self.opt.clone()),
                });
            }
            RoundOutcome::Failed { reason } => {
                self.consecutive_failures += 1;
                self.events.push_back(JobEvent::RoundFailed {
                    round: number,
                    reason,
                    dropped,
                });
                if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
                    self.finish(
                        Some(format!("{MAX_CONSECUTIVE_FAILURES} rounds in a row failed")),
                        now,
                    );
                    return;
                }
            }
        }
        self.start_round(now);
    }

    /// A DP job with a budget: why the next round may not start (its ε would pass the
    /// budget), or `None`. Every round number started counts, abandoned ones included (the
    /// coordinator may have learned their sums), so the count never undercounts.
    pub(super) fn budget_spent(&self) -> Option<String> {
        let dp = self.cfg.privacy?;
        let budget = dp.budget?;
        let rounds = self.next_round;
        match dp.epsilon_after(rounds) {
            Ok(eps) if eps <= budget => None,
            Ok(eps) => Some(format!(
                "privacy budget spent: round {rounds} would take ε to {eps:.3} (δ = {}), past the budget of {budget}",
                dp.delta
            )),
            Err(e) => Some(format!("privacy accountant: {e}")),
        }
    }
}
