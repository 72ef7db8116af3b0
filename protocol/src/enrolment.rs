//! Who may join a job: data holders are known by their Ed25519 identity keys, which the
//! operator allow-lists, and each connection is bound to one such key by mutual TLS.
//!
//! A participant presents a self-signed X.509 certificate whose subject public key is its
//! identity key (`transport::ClientIdentity`); the coordinator reads the key out of the
//! certificate ([`identity_from_cert`]), admits the connection only if [`Enrolment`]
//! permits the key, and the TLS 1.3 handshake signature proves the participant holds the
//! matching secret key. The job then refuses a Hello that names another identity key than
//! the connection's certificate (`job::Job::handle_connected`), so the key that signs the
//! secure-aggregation messages and the dataset commitment is the allow-listed one.
//!
//! Only the key matters: the certificate's names, validity dates and self-signature are
//! not checked (the handshake signature is the proof of possession), and certificates
//! are never chained to an authority.
//!
//! The certificate is parsed with a small DER reader (this module), not by searching for
//! the Ed25519 key prefix: Certificate → TBSCertificate → the seventh field (after the
//! optional version, serial, signature algorithm, issuer, validity and subject) is the
//! SubjectPublicKeyInfo, which must be exactly `SEQUENCE { SEQUENCE { OID 1.3.101.112 },
//! BIT STRING (0 unused bits, 32 bytes) }` (RFC 8410). No X.509 parsing crate is in the
//! dependency tree and this is all cairn needs from a certificate.

use std::collections::BTreeSet;

use cairn_crypto::sign::IdentityPublic;

/// DER encoding of the Ed25519 algorithm identifier's OID, 1.3.101.112 (RFC 8410).
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// Why a certificate does not carry a usable identity key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The bytes are not a DER X.509 certificate.
    #[error("malformed certificate: {0}")]
    Malformed(&'static str),
    /// The certificate's key is not an Ed25519 key.
    #[error("the certificate's key is not an Ed25519 identity key")]
    NotEd25519,
    /// The 32 bytes are not a usable Ed25519 public key.
    #[error("the certificate's Ed25519 key {0} is not a valid public key")]
    InvalidKey(String),
}

/// Why an identity key in text form was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Not 64 hexadecimal digits.
    #[error("expected 64 hex digits (an Ed25519 public key, as `cairn keygen identity` prints it), got {0:?}")]
    NotHex(String),
    /// Hex, but not a valid Ed25519 public key.
    #[error("{0} is not a valid Ed25519 public key")]
    InvalidKey(String),
}

/// Why a participant was refused enrolment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnrolmentError {
    /// Its certificate carries no usable identity key.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// Its identity key is not on the job's allow-list.
    #[error("identity key {} is not on this job's allow-list", hex::encode(.0 .0))]
    NotAllowed(IdentityPublic),
}

/// The coordinator's admission policy for identity keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Enrolment {
    /// Any participant with a self-signed Ed25519 certificate (demos and tests whose
    /// holders draw fresh keys). The key is still read from the certificate and bound to
    /// the participant's Hello.
    #[default]
    Open,
    /// Only these identity keys.
    AllowList(BTreeSet<IdentityPublic>),
}

impl Enrolment {
    /// An allow-list of `keys`.
    pub fn allow(keys: impl IntoIterator<Item = IdentityPublic>) -> Self {
        Self::AllowList(keys.into_iter().collect())
    }

    /// Whether `key` may join.
    pub fn check(&self, key: &IdentityPublic) -> Result<(), EnrolmentError> {
        match self {
            Enrolment::Open => Ok(()),
            Enrolment::AllowList(keys) if keys.contains(key) => Ok(()),
            Enrolment::AllowList(_) => Err(EnrolmentError::NotAllowed(*key)),
        }
    }

    /// The identity key of `cert` (DER), if this policy admits it.
    pub fn admit(&self, cert: &[u8]) -> Result<IdentityPublic, EnrolmentError> {
        let key = identity_from_cert(cert)?;
        self.check(&key)?;
        Ok(key)
    }

    /// A line for logs: `open` or `allow-list of N keys`.
    pub fn describe(&self) -> String {
        match self {
            Enrolment::Open => "open (any identity key)".into(),
            Enrolment::AllowList(k) => format!("allow-list of {} identity key(s)", k.len()),
        }
    }
}

/// Parses an identity public key written as 64 hex digits (surrounding whitespace
/// ignored), checking that it is a valid Ed25519 key.
pub fn parse_identity(text: &str) -> Result<IdentityPublic, KeyFormatError> {
    let t = text.trim();
    let mut bytes = [0u8; 32];
    if t.len() != 64 || hex::decode_to_slice(t, &mut bytes).is_err() {
        return Err(KeyFormatError::NotHex(t.chars().take(80).collect()));
    }
    let key = IdentityPublic(bytes);
    key.validate()
        .map_err(|_| KeyFormatError::InvalidKey(t.to_string()))?;
    Ok(key)
}

/// The identity key a participant's certificate (DER) carries: its SubjectPublicKeyInfo,
/// which must be an Ed25519 key. See the module documentation for what is checked.
pub fn identity_from_cert(der: &[u8]) -> Result<IdentityPublic, CertificateError> {
    use CertificateError::Malformed;
    let (cert, rest) = Tlv::read(der)?;
    if !rest.is_empty() {
        return Err(Malformed("bytes after the certificate"));
    }
    let cert = cert.expect(SEQUENCE, "certificate is not a SEQUENCE")?;
    let (tbs, _) = Tlv::read(cert)?;
    let mut fields = tbs.expect(SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let (first, rest) = Tlv::read(fields)?;
    // The version ([0] EXPLICIT) is optional; the serial number comes next either way.
    if first.tag == VERSION_TAG {
        fields = rest;
    }
    for (tag, what) in [
        (INTEGER, "serial number is not an INTEGER"),
        (SEQUENCE, "signature algorithm is not a SEQUENCE"),
        (SEQUENCE, "issuer is not a SEQUENCE"),
        (SEQUENCE, "validity is not a SEQUENCE"),
        (SEQUENCE, "subject is not a SEQUENCE"),
    ] {
        let (field, rest) = Tlv::read(fields)?;
        field.expect(tag, what)?;
        fields = rest;
    }
    let (spki, _) = Tlv::read(fields)?;
    let spki = spki.expect(SEQUENCE, "subjectPublicKeyInfo is not a SEQUENCE")?;
    let (algorithm, rest) = Tlv::read(spki)?;
    let algorithm = algorithm.expect(SEQUENCE, "key algorithm is not a SEQUENCE")?;
    // RFC 8410: the Ed25519 algorithm identifier has no parameters.
    if algorithm != ED25519_OID {
        return Err(CertificateError::NotEd25519);
    }
    let (bits, rest) = Tlv::read(rest)?;
    if !rest.is_empty() {
        return Err(Malformed("bytes after the subject public key"));
    }
    let bits = bits.expect(BIT_STRING, "subject public key is not a BIT STRING")?;
    let key: [u8; 32] = match bits {
        [0, key @ ..] => key
            .try_into()
            .map_err(|_| Malformed("an Ed25519 key is 32 bytes"))?,
        _ => return Err(Malformed("subject public key has unused bits")),
    };
    let key = IdentityPublic(key);
    key.validate()
        .map_err(|_| CertificateError::InvalidKey(hex::encode(key.0)))?;
    Ok(key)
}

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const SEQUENCE: u8 = 0x30;
const VERSION_TAG: u8 = 0xa0;

/// One DER tag-length-value (single-byte tags, definite lengths of up to 4 bytes).
struct Tlv<'a> {
    tag: u8,
    value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Reads one TLV from the front of `input`; returns it and what follows.
    fn read(input: &'a [u8]) -> Result<(Self, &'a [u8]), CertificateError> {
        use CertificateError::Malformed;
        let [tag, first, rest @ ..] = input else {
            return Err(Malformed("truncated"));
        };
        if tag & 0x1f == 0x1f {
            return Err(Malformed("multi-byte tags are not used in certificates"));
        }
        let (len, rest) = if first & 0x80 == 0 {
            (usize::from(*first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(Malformed("bad length"));
            }
            let (digits, rest) = rest.split_at(n);
            let len = digits
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            // DER: the shortest form, no leading zero byte.
            if len < 0x80 || digits[0] == 0 {
                return Err(Malformed("non-minimal length"));
            }
            (len, rest)
        };
        if rest.len() < len {
            return Err(Malformed("truncated"));
        }
        let (value, rest) = rest.split_at(len);
        Ok((Tlv { tag: *tag, value }, rest))
    }

    /// The value, if the tag is `tag`.
    fn expect(self, tag: u8, what: &'static str) -> Result<&'a [u8], CertificateError> {
        if self.tag == tag {
            Ok(self.value)
        } else {
            Err(CertificateError::Malformed(what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_crypto::sign::IdentityKey;
    use rand::SeedableRng;

    fn key(seed: u64) -> IdentityPublic {
        IdentityKey::random(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed)).public()
    }

    /// A minimal certificate around `spki` (content of the SubjectPublicKeyInfo SEQUENCE).
    fn cert_with_spki(spki: &[u8]) -> Vec<u8> {
        fn tlv(tag: u8, v: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            if v.len() < 0x80 {
                out.push(v.len() as u8);
            } else if v.len() < 0x100 {
                out.extend([0x81, v.len() as u8]);
            } else {
                out.extend([0x82, (v.len() >> 8) as u8, v.len() as u8]);
            }
            out.extend_from_slice(v);
            out
        }
        let mut tbs = tlv(VERSION_TAG, &tlv(INTEGER, &[2]));
        tbs.extend(tlv(INTEGER, &[1, 2, 3]));
        tbs.extend(tlv(SEQUENCE, &ED25519_OID));
        tbs.extend(tlv(SEQUENCE, &[]));
        tbs.extend(tlv(SEQUENCE, &[]));
        tbs.extend(tlv(SEQUENCE, &[]));
        tbs.extend(tlv(SEQUENCE, spki));
        let mut cert = tlv(SEQUENCE, &tbs);
        cert.extend(tlv(SEQUENCE, &ED25519_OID));
        cert.extend(tlv(BIT_STRING, &[0; 65]));
        tlv(SEQUENCE, &cert)
    }

    fn ed25519_spki(k: &IdentityPublic) -> Vec<u8> {
        let mut spki = vec![0x30, 0x05];
        spki.extend(ED25519_OID);
        spki.extend([0x03, 0x21, 0x00]);
        spki.extend(k.0);
        spki
    }

    #[test]
    fn the_key_is_read_from_a_minimal_certificate() {
        let k = key(1);
        assert_eq!(
            identity_from_cert(&cert_with_spki(&ed25519_spki(&k))),
            Ok(k)
        );
    }

    #[test]
    fn other_keys_and_malformed_certificates_are_refused() {
        let k = key(2);
        // An ECDSA P-256 key (OID 1.2.840.10045.2.1 with the curve parameter).
        let mut p256 = vec![
            0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
        ];
        p256.extend([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
        p256.extend([0x03, 0x03, 0x00, 0x04, 0x01]);
        assert_eq!(
            identity_from_cert(&cert_with_spki(&p256)),
            Err(CertificateError::NotEd25519)
        );
        // Unused bits, a short key, a trailing byte, truncation, garbage.
        let mut spki = ed25519_spki(&k);
        spki[9] = 1;
        assert!(identity_from_cert(&cert_with_spki(&spki)).is_err());
        let mut spki = ed25519_spki(&k);
        spki.pop();
        spki[8] = 0x20;
        assert!(identity_from_cert(&cert_with_spki(&spki)).is_err());
        let mut der = cert_with_spki(&ed25519_spki(&k));
        der.push(0);
        assert!(identity_from_cert(&der).is_err());
        let der = cert_with_spki(&ed25519_spki(&k));
        for cut in [0, 1, 2, 10, der.len() - 1] {
            assert!(identity_from_cert(&der[..cut]).is_err(), "cut at {cut}");
        }
        assert!(identity_from_cert(b"not a certificate").is_err());
        // The key must be a usable point: the neutral element (y = 1) has small order.
        let mut bad = [0u8; 32];
        bad[0] = 1;
        let r = identity_from_cert(&cert_with_spki(&ed25519_spki(&IdentityPublic(bad))));
        assert!(matches!(r, Err(CertificateError::InvalidKey(_))), "{r:?}");
    }

    #[test]
    fn the_allow_list_names_the_refused_key() {
        let (a, b) = (key(3), key(4));
        let list = Enrolment::allow([a]);
        assert_eq!(list.check(&a), Ok(()));
        let e = list.check(&b).expect_err("not listed");
        assert!(e.to_string().contains(&hex::encode(b.0)), "{e}");
        assert_eq!(Enrolment::Open.check(&b), Ok(()));
    }

    #[test]
    fn identity_keys_parse_from_hex() {
        let k = key(5);
        assert_eq!(parse_identity(&format!("  {}\n", hex::encode(k.0))), Ok(k));
        assert!(matches!(
            parse_identity("abc"),
            Err(KeyFormatError::NotHex(_))
        ));
        assert!(matches!(
            parse_identity(&"zz".repeat(32)),
            Err(KeyFormatError::NotHex(_))
        ));
        let mut bad = [0u8; 32];
        bad[0] = 1;
        assert!(matches!(
            parse_identity(&hex::encode(bad)),
            Err(KeyFormatError::InvalidKey(_))
        ));
    }
}
