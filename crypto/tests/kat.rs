//! Known-answer tests from the RFCs, run through this crate's own wrappers.

use cairn_crypto::aead::{open, seal, AeadKey};
use cairn_crypto::keys::{hkdf_sha256, AgreementPublic, AgreementSecret, KeyError};
use cairn_crypto::prg::{aes256_ctr_xor, expand, MaskSeed};
use cairn_crypto::ring::RingElem;
use cairn_crypto::sign::{IdentityKey, Signature};

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let v = hex::decode(s.split_whitespace().collect::<String>()).expect("valid hex");
    v.try_into().expect("right length")
}

fn unhex_vec(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("valid hex")
}

/// RFC 7748 §5.2, both single-iteration vectors.
#[test]
fn x25519_rfc7748() {
    let cases = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ];
    for (scalar, point, expected) in cases {
        let shared = AgreementSecret::from_bytes(unhex(scalar))
            .agree(&AgreementPublic(unhex(point)))
            .expect("contributory");
        assert_eq!(shared.as_bytes(), &unhex::<32>(expected));
    }
    let err = AgreementSecret::from_bytes([1; 32])
        .agree(&AgreementPublic([0; 32]))
        .err();
    assert_eq!(err, Some(KeyError::NonContributory));
}

/// RFC 5869 Appendix A, test cases 1 and 3 (SHA-256).
#[test]
fn hkdf_sha256_rfc5869() {
    let ikm = [0x0b; 22];
    let mut okm = [0u8; 42];
    hkdf_sha256(
        &unhex::<13>("000102030405060708090a0b0c"),
        &ikm,
        &unhex::<10>("f0f1f2f3f4f5f6f7f8f9"),
        &mut okm,
    )
    .expect("42 bytes");
    assert_eq!(
        okm.to_vec(),
        unhex_vec(
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        )
    );
    hkdf_sha256(&[], &ikm, &[], &mut okm).expect("42 bytes");
    assert_eq!(
        okm.to_vec(),
        unhex_vec(
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        )
    );
    let mut too_long = vec![0u8; 255 * 32 + 1];
    assert!(hkdf_sha256(&[], &ikm, &[], &mut too_long).is_err());
}

/// RFC 8439 §2.8.2 AEAD vector.
#[test]
fn chacha20poly1305_rfc8439() {
    let key = AeadKey::from_bytes(unhex(
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
    ));
    let nonce: [u8; 12] = unhex("070000004041424344454647");
    let aad = unhex_vec("50515253c0c1c2c3c4c5c6c7");
    let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let expected = unhex_vec(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b
         1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
         3ff4def08e4b7a9de576d26586cec64b6116
         1ae10b594f09e26a7e902ecbd0600691",
    );
    let ct = seal(&key, &nonce, &aad, pt).expect("short");
    assert_eq!(ct, expected);
    assert_eq!(
        &open(&key, &nonce, &aad, &ct).expect("authentic")[..],
        &pt[..]
    );
    assert!(open(&key, &nonce, b"other aad", &ct).is_err());
}

/// NIST SP 800-38A F.5.5 (CTR-AES256.Encrypt) and FIPS-197 C.3 (AES-256) through the
/// PRG's primitive, then the PRG itself: the keystream from the all-zero counter block
/// read as little-endian ring elements.
#[test]
fn prg_is_nist_aes256_ctr() {
    let key: [u8; 32] = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
    let mut data = unhex_vec(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51
         30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
    );
    aes256_ctr_xor(&key, &unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"), &mut data);
    assert_eq!(
        data,
        unhex_vec(
            "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5
             2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
        )
    );
    // One block of keystream at counter P is AES_K(P): FIPS-197 C.3.
    let fips_key: [u8; 32] =
        unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    let mut block = [0u8; 16];
    aes256_ctr_xor(
        &fips_key,
        &unhex("00112233445566778899aabbccddeeff"),
        &mut block,
    );
    assert_eq!(block, unhex::<16>("8ea2b7ca516745bfeafc49904b496089"));

    let mut stream = vec![0u8; 4 * 40];
    aes256_ctr_xor(&fips_key, &[0; 16], &mut stream);
    let expected: Vec<RingElem> = stream
        .chunks_exact(4)
        .map(|w| RingElem::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    assert_eq!(
        expand(&MaskSeed::from_bytes(fips_key), expected.len()).expect("short"),
        expected
    );
}

/// RFC 8032 §7.1 TEST 1 and TEST 2.
#[test]
fn ed25519_rfc8032() {
    let cases = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ];
    for (sk, pk, msg, sig) in cases {
        let key = IdentityKey::from_seed(&unhex(sk));
        assert_eq!(key.public().0, unhex::<32>(pk));
        let msg = unhex_vec(msg);
        let s = key.sign(&msg);
        assert_eq!(s, Signature(unhex_vec(sig)));
        assert_eq!(key.public().verify(&msg, &s), Ok(()));
    }
}
