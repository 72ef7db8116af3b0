//! The participant's side of SecAgg+, as a typestate: each phase is a type, and each
//! transition consumes the previous state, so a client cannot mask twice or answer two
//! unmask requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand_core::{CryptoRng, RngCore};

use super::messages::*;
use super::{Phase, RoundConfig, SecAggError};
use crate::aead::{self, AeadKey};
use crate::keys::{AgreementPublic, AgreementSecret};
use crate::prg::{apply_masks, MaskSeed, MaskSign};
use crate::ring::RingElem;
use crate::shamir::{self, Share, SHARE_BYTES};
use crate::sign::IdentityKey;
use crate::ParticipantId;

/// After advertising keys: holds the two fresh agreement secrets.
#[derive(Debug)]
pub struct ClientAdvertised {
    config: Arc<RoundConfig>,
    me: ParticipantId,
    c_sk: AgreementSecret,
    s_sk: AgreementSecret,
}

/// After sending shares: holds b, s_sk and, for each live neighbour, the key its shares
/// to us are encrypted under and its s_pk. (c_sk is gone: each X25519 agreement on c is
/// done once, for both directions.)
#[derive(Debug)]
pub struct ClientShared {
    config: Arc<RoundConfig>,
    me: ParticipantId,
    s_sk: AgreementSecret,
    b: MaskSeed,
    /// Neighbours that advertised valid keys: (the key of their shares to us, s_pk).
    peers: BTreeMap<ParticipantId, (AeadKey, AgreementPublic)>,
}

/// The shares this client holds of one neighbour's secrets.
#[derive(Debug)]
pub(super) struct HeldShares {
    pub(super) b: Share,
    pub(super) s_sk: Share,
}

/// After sending the masked input: holds the neighbours' shares (its own secrets are gone).
#[derive(Debug)]
pub struct ClientMasked {
    pub(super) config: Arc<RoundConfig>,
    pub(super) me: ParticipantId,
    pub(super) held: BTreeMap<ParticipantId, HeldShares>,
}

/// After signing the survivor list: ready to answer one unmask request.
#[derive(Debug)]
pub struct ClientConsistent {
    pub(super) inner: ClientMasked,
    pub(super) survivors: Vec<ParticipantId>,
}

impl ClientAdvertised {
    /// Starts a round: two fresh agreement key pairs, signed with the identity key.
    pub fn new<R: RngCore + CryptoRng>(
        config: Arc<RoundConfig>,
        me: ParticipantId,
        identity: &IdentityKey,
        rng: &mut R,
    ) -> Result<(Self, AdvertiseKeys), SecAggError> {
        config.identity(me)?;
        let c_sk = AgreementSecret::random(rng);
        let s_sk = AgreementSecret::random(rng);
        let (c_pk, s_pk) = (c_sk.public(), s_sk.public());
        let signature = identity.sign(&advertise_payload(config.round(), me, &c_pk, &s_pk));
        let msg = AdvertiseKeys {
            sender: me,
            c_pk,
            s_pk,
            signature,
        };
        Ok((
            Self {
                config,
                me,
                c_sk,
                s_sk,
            },
            msg,
        ))
    }

    /// Given the coordinator's roster of advertised keys, checks the neighbours' signatures
    /// and sends each live neighbour its encrypted shares of a fresh b and of s_sk.
    ///
    /// The roster need only hold our neighbours' keys ([`ShareRouting::roster_for`]);
    /// entries of other participants (a whole roster) are skipped unchecked, an entry of
    /// someone outside the round is refused, and so is a neighbour's entry with a bad
    /// signature, a reused key or a second entry. A neighbour missing from the roster is
    /// one that did not advertise: fewer than t left and we refuse to go on.
    ///
    /// [`ShareRouting::roster_for`]: super::ShareRouting::roster_for
    pub fn share_keys<R: RngCore + CryptoRng>(
        self,
        roster: &[AdvertiseKeys],
        rng: &mut R,
    ) -> Result<(ClientShared, ShareKeys), SecAggError> {
        let cfg = &self.config;
        let mut peers = BTreeMap::new();
        for entry in roster {
            let id = entry.sender;
            let identity = cfg.identity(id)?;
            if !cfg.graph().are_neighbours(self.me, id) {
                continue;
            }
            identity
                .verify(
                    &advertise_payload(cfg.round(), id, &entry.c_pk, &entry.s_pk),
                    &entry.signature,
                )
                .map_err(|_| SecAggError::BadSignature(id))?;
            if entry.c_pk == entry.s_pk {
                return Err(SecAggError::WeakKey(id));
            }
            if peers.insert(id, (entry.c_pk, entry.s_pk)).is_some() {
                return Err(SecAggError::Duplicate {
                    id,
                    phase: Phase::AdvertiseKeys,
                });
            }
        }
        let t = cfg.threshold();
        if peers.len() < t {
            return Err(SecAggError::TooFewNeighbours {
                have: peers.len(),
                need: t,
            });
        }
        let b = MaskSeed::random(rng);
        let xs: Vec<u64> = peers.keys().map(|&id| RoundConfig::share_x(id)).collect();
        let shape_err = |source| SecAggError::BadShare {
            from: self.me,
            source,
        };
        let b_shares = shamir::split(b.as_bytes(), t, &xs, rng).map_err(shape_err)?;
        let s_shares = shamir::split(&self.s_sk.to_bytes(), t, &xs, rng).map_err(shape_err)?;
        let mut shares = Vec::with_capacity(peers.len());
        let mut live = BTreeMap::new();
        for ((&peer, (c_pk, s_pk)), (bs, ss)) in peers.iter().zip(b_shares.iter().zip(&s_shares)) {
            let shared = self
                .c_sk
                .agree(c_pk)
                .map_err(|source| SecAggError::Key { peer, source })?;
            let key = shared.aead_key(cfg.round(), self.me, peer);
            live.insert(peer, (shared.aead_key(cfg.round(), peer, self.me), *s_pk));
            let mut plaintext = zeroize::Zeroizing::new([0u8; SHARE_PLAINTEXT_BYTES]);
            plaintext[..SHARE_BYTES].copy_from_slice(&bs.to_bytes()[..]);
            plaintext[SHARE_BYTES..].copy_from_slice(&ss.to_bytes()[..]);
            let ciphertext = aead::encrypt_for(&key, cfg.round(), self.me, peer, &plaintext[..])
                .map_err(|_| SecAggError::BadConfig("share encryption failed".into()))?;
            shares.push(EncryptedShare {
                sender: self.me,
                receiver: peer,
                ciphertext,
            });
        }
        let msg = ShareKeys {
            sender: self.me,
            shares,
        };
        let Self {
            config, me, s_sk, ..
        } = self;
        Ok((
            ClientShared {
                config,
                me,
                s_sk,
                b,
                peers: live,
            },
            msg,
        ))
    }
}

impl ClientShared {
    /// Decrypts the shares neighbours sent us, then masks the quantised update `x`:
    /// y = x + PRG(b) + Σ_{v live neighbour} ±PRG(s_uv), + when our id is below v's.
    /// `x` is masked in place and moved into the message.
    pub fn mask(
        self,
        inbox: &[EncryptedShare],
        mut x: Vec<RingElem>,
    ) -> Result<(ClientMasked, MaskedInput), SecAggError> {
        let cfg = &self.config;
        if x.len() != cfg.vector_len() {
            return Err(SecAggError::WrongSize {
                from: self.me,
                what: "input vector",
                got: x.len(),
                expected: cfg.vector_len(),
            });
        }
        let mut held = BTreeMap::new();
        for enc in inbox {
            let from = enc.sender;
            if enc.receiver != self.me {
                return Err(SecAggError::WrongRecipients {
                    from,
                    detail: format!("routed to us for {}", enc.receiver),
                });
            }
            let Some((key, _)) = self.peers.get(&from) else {
                return Err(SecAggError::NotExpected {
                    id: from,
                    phase: Phase::ShareKeys,
                });
            };
            if held.contains_key(&from) {
                return Err(SecAggError::Duplicate {
                    id: from,
                    phase: Phase::ShareKeys,
                });
            }
            let plain = aead::decrypt_from(key, cfg.round(), from, self.me, &enc.ciphertext)
                .map_err(|_| SecAggError::Decryption(from))?;
            if plain.len() != SHARE_PLAINTEXT_BYTES {
                return Err(SecAggError::WrongSize {
                    from,
                    what: "share plaintext",
                    got: plain.len(),
                    expected: SHARE_PLAINTEXT_BYTES,
                });
            }
            let parse = |bytes: &[u8]| {
                let share = Share::from_bytes(bytes)
                    .map_err(|source| SecAggError::BadShare { from, source })?;
                if share.x() != RoundConfig::share_x(self.me) {
                    return Err(SecAggError::BadShare {
                        from,
                        source: shamir::ShamirError::InvalidX(share.x()),
                    });
                }
                Ok(share)
            };
            let b = parse(&plain[..SHARE_BYTES])?;
            let s_sk = parse(&plain[SHARE_BYTES..])?;
            held.insert(from, HeldShares { b, s_sk });
        }
        let t = cfg.threshold();
        if held.len() < t {
            return Err(SecAggError::TooFewNeighbours {
                have: held.len(),
                need: t,
            });
        }
        let mut seeds = Vec::with_capacity(held.len() + 1);
        for &peer in held.keys() {
            let (_, s_pk) = &self.peers[&peer];
            let shared = self
                .s_sk
                .agree(s_pk)
                .map_err(|source| SecAggError::Key { peer, source })?;
            let sign = if self.me < peer {
                MaskSign::Add
            } else {
                MaskSign::Sub
            };
            seeds.push((shared.mask_seed(cfg.round(), self.me, peer), sign));
        }
        let mut masks: Vec<(&MaskSeed, MaskSign)> = vec![(&self.b, MaskSign::Add)];
        masks.extend(seeds.iter().map(|(seed, sign)| (seed, *sign)));
        apply_masks(&masks, &mut x)?;
        let msg = MaskedInput {
            sender: self.me,
            y: x,
        };
        Ok((
            ClientMasked {
                config: self.config.clone(),
                me: self.me,
                held,
            },
            msg,
        ))
    }
}
