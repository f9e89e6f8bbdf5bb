//! Message digests: SHA-2 through aws-lc-rs, SM3 through RustCrypto `sm3`.

use aws_lc_rs::digest;
use sm3::Digest as _;

use crate::spec::HashAlgorithm;

/// Hashes `data` with `algorithm`.
pub fn hash(algorithm: HashAlgorithm, data: &[u8]) -> Vec<u8> {
    match algorithm {
        HashAlgorithm::Sha256 => digest::digest(&digest::SHA256, data).as_ref().to_vec(),
        HashAlgorithm::Sha384 => digest::digest(&digest::SHA384, data).as_ref().to_vec(),
        HashAlgorithm::Sha512 => digest::digest(&digest::SHA512, data).as_ref().to_vec(),
        HashAlgorithm::Sm3 => sm3::Sm3::digest(data).to_vec(),
    }
}

/// SHA-256 of `data`, as a fixed array.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_algorithm() {
        for algorithm in HashAlgorithm::ALL {
            assert_eq!(hash(*algorithm, b"x").len(), algorithm.output_len());
        }
    }

    /// FIPS 180-2 Appendix B.1 ("abc").
    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            hex::encode(hash(HashAlgorithm::Sha256, b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
