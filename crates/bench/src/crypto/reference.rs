//! Reference figures: the development machine's measured limits, copied from
//! `guides/limits.md` §1 ("Primitives, per core"; AMD EPYC Zen 5 KVM guest, 2 vCPUs,
//! measured 2026-11-28 in a scratch crate calling each library directly).
//!
//! Each entry names the rows of this benchmark that run the same primitive through the
//! same implementation, so "ours / reference" is what our wrapper costs on top of the
//! primitive (key setup, random IVs, allocation, policy checks, re-parsing keys). On
//! another machine the figures are only a scale: they were not measured there.
//!
//! When limits.md is remeasured, update the numbers here; a unit test checks that every
//! entry still names existing rows.

/// One figure from `guides/limits.md` §1.
#[derive(Debug)]
pub(crate) struct Reference {
    /// Row names of this benchmark it applies to.
    pub(crate) cases: &'static [&'static str],
    /// The limits.md row it comes from, with the implementation.
    pub(crate) figure: &'static str,
    /// Calls per second on one thread.
    pub(crate) one_thread: u32,
    /// Calls per second, total, on two threads (both cores), where measured.
    pub(crate) two_threads: Option<u32>,
}

impl Reference {
    /// The figure to compare a run on `threads` threads with, and how it was obtained.
    /// The development machine has two cores, so more than two threads compare with the
    /// two-thread figure; where that was not measured, twice the one-thread figure
    /// stands in (limits.md: "two threads scale about 2× for every primitive").
    pub(crate) fn for_threads(&self, threads: u32) -> (f64, &'static str) {
        match (threads, self.two_threads) {
            (0 | 1, _) => (f64::from(self.one_thread), "1 thread"),
            (_, Some(two)) => (f64::from(two), "2 threads"),
            (_, None) => (2.0 * f64::from(self.one_thread), "2 x 1 thread (estimate)"),
        }
    }
}

/// The reference entry for a row, if limits.md measured that primitive.
pub(crate) fn find(case: &str) -> Option<&'static Reference> {
    REFERENCES.iter().find(|r| r.cases.contains(&case))
}

/// From `guides/limits.md` §1, same implementation as the crypto core uses.
pub(crate) const REFERENCES: &[Reference] = &[
    Reference {
        cases: &["Aliyun_AES_256 Encrypt AES_GCM 32 B"],
        figure: "AES-256-GCM seal 32 B, aws-lc-rs",
        one_thread: 12_712_615,
        two_threads: None,
    },
    Reference {
        cases: &["Aliyun_AES_256 Encrypt AES_GCM 1024 B"],
        figure: "AES-256-GCM seal 1024 B, aws-lc-rs",
        one_thread: 6_726_855,
        two_threads: Some(13_537_437),
    },
    Reference {
        cases: &["Aliyun_AES_256 Decrypt AES_GCM 1024 B"],
        figure: "AES-256-GCM open 1024 B, aws-lc-rs",
        one_thread: 5_360_985,
        two_threads: None,
    },
    Reference {
        cases: &["Aliyun_AES_192 Encrypt AES_GCM 1024 B"],
        figure: "AES-192-GCM seal 1024 B, aws-lc-rs",
        one_thread: 7_215_845,
        two_threads: None,
    },
    Reference {
        cases: &["Aliyun_AES_128 Encrypt AES_GCM 1024 B"],
        figure: "AES-128-GCM seal 1024 B, aws-lc-rs",
        one_thread: 7_443_694,
        two_threads: None,
    },
    Reference {
        cases: &["Aliyun_SM4 Encrypt SM4_GCM 32 B"],
        figure: "SM4-GCM seal 32 B, RustCrypto sm4 + aes-gcm generic",
        one_thread: 2_138_283,
        two_threads: None,
    },
    Reference {
        cases: &["Aliyun_SM4 Encrypt SM4_GCM 1024 B"],
        figure: "SM4-GCM seal 1024 B, RustCrypto sm4 + aes-gcm generic",
        one_thread: 115_884,
        two_threads: Some(234_624),
    },
    Reference {
        cases: &["Aliyun_SM4 Encrypt SM4_CBC 32 B"],
        figure: "SM4-CBC+PKCS7 encrypt 32 B, RustCrypto sm4 + cbc",
        one_thread: 1_597_091,
        two_threads: None,
    },
    Reference {
        cases: &["Aliyun_SM4 Encrypt SM4_CBC 1024 B"],
        figure: "SM4-CBC+PKCS7 encrypt 1024 B, RustCrypto sm4 + cbc",
        one_thread: 99_322,
        two_threads: None,
    },
    Reference {
        cases: &[
            "RSA_2048 Encrypt RSAES_OAEP_SHA_256 32 B",
            "RSA_2048 Encrypt RSAES_OAEP_SHA_256 32 B via PublicKey",
        ],
        figure: "RSA-2048 OAEP-SHA-256 encrypt, aws-lc-rs",
        one_thread: 78_044,
        two_threads: None,
    },
    Reference {
        cases: &["RSA_2048 Decrypt RSAES_OAEP_SHA_256 32 B"],
        figure: "RSA-2048 OAEP-SHA-256 decrypt, aws-lc-rs",
        one_thread: 4_767,
        two_threads: Some(9_355),
    },
    Reference {
        cases: &["RSA_2048 Decrypt RSAES_OAEP_SHA_1 32 B"],
        figure: "RSA-2048 OAEP-SHA-1 decrypt, aws-lc-rs",
        one_thread: 4_843,
        two_threads: None,
    },
    Reference {
        cases: &["RSA_2048 Sign RSA_PSS_SHA_256 RAW 32 B"],
        figure: "RSA-2048 sign PSS-SHA256, aws-lc-rs",
        one_thread: 4_703,
        two_threads: None,
    },
    Reference {
        cases: &[
            "RSA_2048 Verify RSA_PSS_SHA_256 RAW 32 B",
            "RSA_2048 Verify RSA_PSS_SHA_256 RAW 32 B via PublicKey",
        ],
        figure: "RSA-2048 verify PSS-SHA256, aws-lc-rs",
        one_thread: 68_486,
        two_threads: None,
    },
    Reference {
        cases: &["RSA_2048 Sign RSA_PKCS1_SHA_256 RAW 32 B"],
        figure: "RSA-2048 sign PKCS1v15-SHA256, aws-lc-rs",
        one_thread: 4_670,
        two_threads: Some(9_289),
    },
    Reference {
        cases: &["RSA_2048 Verify RSA_PKCS1_SHA_256 RAW 32 B"],
        figure: "RSA-2048 verify PKCS1v15-SHA256, aws-lc-rs",
        one_thread: 71_841,
        two_threads: Some(137_052),
    },
    Reference {
        cases: &["RSA_2048 generate key"],
        figure: "RSA-2048 keygen, aws-lc-rs (large spread)",
        one_thread: 20,
        two_threads: None,
    },
    Reference {
        cases: &["RSA_3072 Sign RSA_PKCS1_SHA_256 RAW 32 B"],
        figure: "RSA-3072 sign PKCS1v15-SHA256, aws-lc-rs",
        one_thread: 1_668,
        two_threads: None,
    },
    Reference {
        cases: &["RSA_4096 Sign RSA_PKCS1_SHA_256 RAW 32 B"],
        figure: "RSA-4096 sign PKCS1v15-SHA256, aws-lc-rs",
        one_thread: 777,
        two_threads: None,
    },
    Reference {
        cases: &["EC_P256 Sign ECDSA_SHA_256 RAW 32 B"],
        figure: "ECDSA P-256 sign SHA-256, aws-lc-rs",
        one_thread: 83_719,
        two_threads: Some(170_416),
    },
    Reference {
        cases: &[
            "EC_P256 Verify ECDSA_SHA_256 RAW 32 B",
            "EC_P256 Verify ECDSA_SHA_256 RAW 32 B via PublicKey",
        ],
        figure: "ECDSA P-256 verify SHA-256, aws-lc-rs",
        one_thread: 28_647,
        two_threads: Some(56_484),
    },
    Reference {
        cases: &["EC_P256K Sign ECDSA_SHA_256 RAW 32 B"],
        figure: "ECDSA secp256k1 sign SHA-256, RustCrypto k256",
        one_thread: 41_431,
        two_threads: Some(82_872),
    },
    Reference {
        cases: &[
            "EC_P256K Verify ECDSA_SHA_256 RAW 32 B",
            "EC_P256K Verify ECDSA_SHA_256 RAW 32 B via PublicKey",
        ],
        figure: "ECDSA secp256k1 verify SHA-256, RustCrypto k256",
        one_thread: 21_119,
        two_threads: Some(42_352),
    },
    Reference {
        cases: &["EC_SM2 Sign SM2DSA RAW 32 B"],
        figure: "SM2DSA sign SM3 w/ ID, RustCrypto sm2",
        one_thread: 14_332,
        two_threads: Some(28_437),
    },
    Reference {
        cases: &[
            "EC_SM2 Verify SM2DSA RAW 32 B",
            "EC_SM2 Verify SM2DSA RAW 32 B via PublicKey",
        ],
        figure: "SM2DSA verify SM3 w/ ID, RustCrypto sm2",
        one_thread: 5_792,
        two_threads: Some(11_368),
    },
    Reference {
        cases: &[
            "EC_SM2 Encrypt SM2PKE 32 B",
            "EC_SM2 Encrypt SM2PKE 32 B via PublicKey",
        ],
        figure: "SM2 encrypt 32 B, RustCrypto sm2",
        one_thread: 3_048,
        two_threads: None,
    },
    Reference {
        cases: &["EC_SM2 Decrypt SM2PKE 32 B"],
        figure: "SM2 decrypt 32 B, RustCrypto sm2",
        one_thread: 3_887,
        two_threads: None,
    },
    Reference {
        cases: &["SHA_256 hash 1024 B"],
        figure: "SHA-256 1024 B, aws-lc-rs",
        one_thread: 1_863_496,
        two_threads: None,
    },
    Reference {
        cases: &["SM3 hash 1024 B"],
        figure: "SM3 1024 B, RustCrypto sm3",
        one_thread: 457_055,
        two_threads: None,
    },
    Reference {
        cases: &["random fill 32 B"],
        figure: "CSPRNG fill 32 B, aws-lc-rs SystemRandom",
        one_thread: 3_158_995,
        two_threads: None,
    },
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::crypto::cases;

    #[test]
    fn every_reference_names_existing_rows_once() {
        let names: HashSet<String> = cases::all().iter().map(cases::Case::name).collect();
        let mut seen = HashSet::new();
        for reference in REFERENCES {
            assert!(!reference.cases.is_empty());
            for case in reference.cases {
                assert!(names.contains(*case), "no row named {case:?}");
                assert!(seen.insert(*case), "{case:?} has two references");
            }
        }
    }

    #[test]
    fn more_threads_compare_with_both_cores() {
        let aes = find("Aliyun_AES_256 Encrypt AES_GCM 1024 B").unwrap();
        assert_eq!(aes.for_threads(1).0, 6_726_855.0);
        assert_eq!(aes.for_threads(2).0, 13_537_437.0);
        assert_eq!(aes.for_threads(8).0, 13_537_437.0);
        let sha = find("SHA_256 hash 1024 B").unwrap();
        assert_eq!(sha.for_threads(2).0, 2.0 * 1_863_496.0);
        assert!(find("Aliyun_AES_256 Encrypt AES_CBC 32 B").is_none());
    }
}
