//! The request bodies: the timed pool's, and for the APIs that need material, the
//! material requests' and how their answers become timed bodies.

use prost::Message as _;
use strongroom_proto::dkms;
use strongroom_proto::instance::encode;

use super::InstanceApi;

/// What every body of one run shares.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) api: InstanceApi,
    pub(super) key_id: String,
    pub(super) algorithm: String,
    pub(super) payload_bytes: usize,
}

impl Plan {
    /// The `index`th body of the timed pool, for an API that needs no material.
    /// `None` for Decrypt, Verify and AdvanceDecrypt (see [`Self::timed_from_material`]).
    pub(super) fn timed(&self, index: usize) -> Option<Vec<u8>> {
        self.direct(self.api, index)
    }

    /// The `index`th material request (Encrypt, Sign or AdvanceEncrypt), if the API
    /// needs material.
    pub(super) fn material(&self, index: usize) -> Option<Vec<u8>> {
        self.direct(self.api.material()?, index)
    }

    /// The timed body made from the answer to the `index`th material request.
    pub(super) fn timed_from_material(
        &self,
        index: usize,
        answer: &[u8],
    ) -> Result<Vec<u8>, String> {
        let undecodable = |what: &str| format!("the {what} answer does not decode");
        let key_id = self.key_id.clone();
        match self.api {
            InstanceApi::Decrypt => {
                let made =
                    dkms::EncryptResponse::decode(answer).map_err(|_| undecodable("Encrypt"))?;
                Ok(encode(&dkms::DecryptRequest {
                    ciphertext_blob: made.ciphertext_blob,
                    key_id,
                    algorithm: self.answered_or_chosen(made.algorithm),
                    aad: Vec::new(),
                    iv: made.iv,
                    padding_mode: made.padding_mode,
                }))
            }
            InstanceApi::Verify => {
                let made = dkms::SignResponse::decode(answer).map_err(|_| undecodable("Sign"))?;
                Ok(encode(&dkms::VerifyRequest {
                    key_id,
                    digest: Vec::new(),
                    signature: made.signature,
                    algorithm: self.answered_or_chosen(made.algorithm),
                    message: payload(index, self.payload_bytes),
                    message_type: if made.message_type.is_empty() {
                        "RAW".to_owned()
                    } else {
                        made.message_type
                    },
                }))
            }
            InstanceApi::AdvanceDecrypt => {
                let made = dkms::AdvanceEncryptResponse::decode(answer)
                    .map_err(|_| undecodable("AdvanceEncrypt"))?;
                Ok(encode(&dkms::AdvanceDecryptRequest {
                    ciphertext_blob: made.ciphertext_blob,
                    ..dkms::AdvanceDecryptRequest::default()
                }))
            }
            _ => Err(format!("{} needs no material", self.api)),
        }
    }

    fn answered_or_chosen(&self, answered: String) -> String {
        if answered.is_empty() {
            self.algorithm.clone()
        } else {
            answered
        }
    }

    /// The `index`th body of an API whose request is made from the options alone.
    fn direct(&self, api: InstanceApi, index: usize) -> Option<Vec<u8>> {
        let key_id = self.key_id.clone();
        let algorithm = self.algorithm.clone();
        let data = || payload(index, self.payload_bytes);
        // The generating APIs take the size as an int32; the options cap it at 1 MiB.
        let length = i32::try_from(self.payload_bytes).unwrap_or(i32::MAX);
        let body = match api {
            InstanceApi::Encrypt => encode(&dkms::EncryptRequest {
                key_id,
                plaintext: data(),
                algorithm,
                ..dkms::EncryptRequest::default()
            }),
            InstanceApi::AdvanceEncrypt => encode(&dkms::AdvanceEncryptRequest {
                key_id,
                plaintext: data(),
                algorithm,
                ..dkms::AdvanceEncryptRequest::default()
            }),
            InstanceApi::Sign => encode(&dkms::SignRequest {
                key_id,
                algorithm,
                message: data(),
                message_type: "RAW".to_owned(),
                ..dkms::SignRequest::default()
            }),
            InstanceApi::GenerateRandom => encode(&dkms::GenerateRandomRequest { length }),
            InstanceApi::GenerateDataKey => encode(&dkms::GenerateDataKeyRequest {
                key_id,
                algorithm,
                number_of_bytes: length,
                aad: counter(index),
            }),
            InstanceApi::AdvanceGenerateDataKey => encode(&dkms::AdvanceGenerateDataKeyRequest {
                key_id,
                number_of_bytes: length,
                aad: counter(index),
            }),
            InstanceApi::GetPublicKey => encode(&dkms::GetPublicKeyRequest { key_id }),
            InstanceApi::GetSecretValue => encode(&dkms::GetSecretValueRequest {
                secret_name: key_id,
                ..dkms::GetSecretValueRequest::default()
            }),
            InstanceApi::Hash => encode(&dkms::HashRequest {
                message: data(),
                algorithm,
            }),
            InstanceApi::Decrypt | InstanceApi::Verify | InstanceApi::AdvanceDecrypt => {
                return None;
            }
        };
        Some(body)
    }
}

/// `len` bytes starting with `index` (little-endian, as many bytes as fit), the rest a
/// fixed filler: distinct for every index below 256^min(len, 8).
pub(super) fn payload(index: usize, len: usize) -> Vec<u8> {
    let mut out = vec![0x5a; len];
    for (slot, byte) in out.iter_mut().zip(counter(index)) {
        *slot = byte;
    }
    out
}

/// `index` as 8 little-endian bytes.
fn counter(index: usize) -> Vec<u8> {
    u64::try_from(index)
        .unwrap_or(u64::MAX)
        .to_le_bytes()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use strongroom_proto::instance::{ApiName, Body, decode_body};

    use super::*;

    fn plan(api: InstanceApi, payload_bytes: usize) -> Plan {
        Plan {
            api,
            key_id: "alias/bench".to_owned(),
            algorithm: String::new(),
            payload_bytes,
        }
    }

    #[test]
    fn payloads_carry_the_counter() {
        assert_eq!(payload(0x0102, 4), vec![0x02, 0x01, 0, 0]);
        assert_eq!(payload(7, 10).len(), 10);
        assert_eq!(payload(0x0102, 1), vec![0x02]);
        let distinct: HashSet<Vec<u8>> = (0..1000).map(|i| payload(i, 3)).collect();
        assert_eq!(distinct.len(), 1000);
    }

    #[test]
    fn every_direct_body_decodes_as_its_api_and_varies_where_it_can() {
        for api in InstanceApi::ALL {
            let plan = plan(api, 32);
            let Some(first) = plan.timed(0) else {
                assert!(api.material().is_some(), "{api}");
                assert!(plan.material(0).is_some());
                continue;
            };
            let decoded = decode_body(api.api_name(), &first).unwrap();
            assert_eq!(decoded.api(), api.api_name());
            let second = plan.timed(1).unwrap();
            let repeats = matches!(
                api,
                InstanceApi::GenerateRandom
                    | InstanceApi::GetPublicKey
                    | InstanceApi::GetSecretValue
            );
            assert_eq!(first == second, repeats, "{api}");
        }
    }

    #[test]
    fn material_answers_become_timed_bodies() {
        let decrypt = plan(InstanceApi::Decrypt, 16);
        let answer = encode(&dkms::EncryptResponse {
            ciphertext_blob: vec![1, 2, 3],
            iv: vec![9; 12],
            algorithm: "AES_GCM".to_owned(),
            ..dkms::EncryptResponse::default()
        });
        let body = decrypt.timed_from_material(5, &answer).unwrap();
        let Ok(Body::Decrypt(request)) = decode_body(ApiName::Decrypt, &body) else {
            panic!("not a Decrypt body");
        };
        assert_eq!(request.ciphertext_blob, vec![1, 2, 3]);
        assert_eq!(request.iv, vec![9; 12]);
        assert_eq!(request.algorithm, "AES_GCM");
        assert_eq!(request.key_id, "alias/bench");

        let verify = plan(InstanceApi::Verify, 16);
        let answer = encode(&dkms::SignResponse {
            signature: vec![7; 64],
            ..dkms::SignResponse::default()
        });
        let body = verify.timed_from_material(5, &answer).unwrap();
        let Ok(Body::Verify(request)) = decode_body(ApiName::Verify, &body) else {
            panic!("not a Verify body");
        };
        assert_eq!(request.message, payload(5, 16));
        assert_eq!(request.message_type, "RAW");
        assert!(verify.timed_from_material(0, &[0x0c]).is_err());
    }
}
