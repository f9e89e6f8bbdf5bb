//! Our encoder of the legacy PKCS#12 layout that every dedicated-KMS SDK reads,
//! including Go's `golang.org/x/crypto/pkcs12` (spec/instance-api.md §4.1):
//!
//! ```text
//! PFX v3, authSafe = data {
//!   [0] encryptedData (pbeWithSHAAnd3-KeyTripleDES-CBC) { certBag (leaf, localKeyID), certBag… }
//!   [1] data { pkcs8ShroudedKeyBag (pbeWithSHAAnd3-KeyTripleDES-CBC, localKeyID) }
//! }
//! macData = HMAC-SHA1, 8-byte salt
//! ```
//!
//! p12-keystore writes friendlyName attributes on every bag and offers no way to leave
//! them out; this encoder writes only localKeyID (SHA-1 of the leaf certificate, as
//! OpenSSL does), so the bags look exactly like the cloud's. It reuses the RustCrypto
//! types p12-keystore is built on (`pkcs12`, `cms`, `der`, `des`, `cbc`, `hmac`, `sha1`).

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeEncrypt as _, KeyIvInit as _};
use cms::cert::x509::attr::{Attribute, Attributes};
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::encrypted_data::EncryptedData;
use cms::enveloped_data::EncryptedContentInfo;
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Encode as _};
use hmac::{KeyInit as _, Mac as _};
use pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
use pkcs12::pbe_params::{EncryptedPrivateKeyInfo, Pkcs12PbeParams};
use pkcs12::pfx::{Pfx, Version};
use pkcs12::{CertBag, DigestInfo, MacData, SafeBag};
use rustls::pki_types::CertificateDer;
use sha1::{Digest as _, Sha1};
use strongroom_crypto::secret::SecretBytes;
use zeroize::Zeroizing;

use crate::error::{CertsError, Result};

/// Iteration count of the PKCS#12 KDF, for encryption and for the MAC (OpenSSL's
/// default; the cloud's files use 2048 for encryption).
const ITERATIONS: i32 = 2048;
/// Salt length for encryption and MAC (OpenSSL's and the cloud's).
const SALT_LEN: usize = 8;

/// PKCS#7 `data`.
const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// PKCS#7 `encryptedData`.
const OID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
/// `pbeWithSHAAnd3-KeyTripleDES-CBC`.
const OID_PBE_SHA1_3DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
/// PKCS#12 `certBag`.
const OID_CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
/// PKCS#12 `pkcs8ShroudedKeyBag`.
const OID_SHROUDED_KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
/// PKCS#9 `x509Certificate` certificate type.
const OID_X509_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
/// PKCS#9 `localKeyID`.
const OID_LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");
/// SHA-1.
const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");

/// Encodes `private_key` (PKCS#8 DER) and `certificates` (leaf first) in the legacy
/// layout. The caller has checked that the list is not empty, that the leaf matches
/// the key, and that the password is BMP-encodable.
pub(crate) fn encode(
    private_key: &SecretBytes,
    certificates: &[CertificateDer<'_>],
    password: &str,
) -> Result<Vec<u8>> {
    let local_key_id = Sha1::digest(certificates.first().map_or(&[][..], |c| c.as_ref()));

    let mut cert_bags = Vec::with_capacity(certificates.len());
    for (i, certificate) in certificates.iter().enumerate() {
        let bag = CertBag {
            cert_id: OID_X509_CERTIFICATE,
            cert_value: OctetString::new(certificate.as_ref())?,
        };
        cert_bags.push(SafeBag {
            bag_id: OID_CERT_BAG,
            bag_value: bag.to_der()?,
            bag_attributes: if i == 0 {
                Some(local_key_id_attribute(&local_key_id)?)
            } else {
                None
            },
        });
    }
    let (algorithm, ciphertext) = pbe_encrypt(&cert_bags.to_der()?, password)?;
    let encrypted_certs = EncryptedData {
        version: CmsVersion::V0,
        enc_content_info: EncryptedContentInfo {
            content_type: OID_DATA,
            content_enc_alg: algorithm,
            encrypted_content: Some(OctetString::new(ciphertext)?),
        },
        unprotected_attrs: None,
    };
    let cert_safe = ContentInfo {
        content_type: OID_ENCRYPTED_DATA,
        content: Any::encode_from(&encrypted_certs)?,
    };

    let (algorithm, ciphertext) = pbe_encrypt(private_key.expose_secret(), password)?;
    let shrouded_key = EncryptedPrivateKeyInfo {
        encryption_algorithm: algorithm,
        encrypted_data: OctetString::new(ciphertext)?,
    };
    let key_bags = vec![SafeBag {
        bag_id: OID_SHROUDED_KEY_BAG,
        bag_value: shrouded_key.to_der()?,
        bag_attributes: Some(local_key_id_attribute(&local_key_id)?),
    }];
    let key_safe = ContentInfo {
        content_type: OID_DATA,
        content: Any::encode_from(&OctetString::new(key_bags.to_der()?)?)?,
    };

    let authenticated_safe = vec![cert_safe, key_safe].to_der()?;
    let mac_data = mac(&authenticated_safe, password)?;
    let pfx = Pfx {
        version: Version::V3,
        auth_safe: ContentInfo {
            content_type: OID_DATA,
            content: Any::encode_from(&OctetString::new(authenticated_safe)?)?,
        },
        mac_data: Some(mac_data),
    };
    Ok(pfx.to_der()?)
}

fn local_key_id_attribute(id: &[u8]) -> Result<Attributes> {
    let values = SetOfVec::try_from(vec![Any::encode_from(&OctetString::new(id)?)?])?;
    Ok(SetOfVec::try_from(vec![Attribute {
        oid: OID_LOCAL_KEY_ID,
        values,
    }])?)
}

/// pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 Appendix B and C) of `plaintext`.
fn pbe_encrypt(plaintext: &[u8], password: &str) -> Result<(AlgorithmIdentifierOwned, Vec<u8>)> {
    let salt = strongroom_crypto::random::public_bytes(SALT_LEN).map_err(CertsError::Random)?;
    let key = Zeroizing::new(derive_key_utf8::<Sha1>(
        password,
        &salt,
        Pkcs12KeyType::EncryptionKey,
        ITERATIONS,
        24,
    )?);
    let iv = Zeroizing::new(derive_key_utf8::<Sha1>(
        password,
        &salt,
        Pkcs12KeyType::Iv,
        ITERATIONS,
        8,
    )?);
    let cipher = cbc::Encryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
        .map_err(|_| CertsError::Internal("3DES key or IV length"))?;
    let ciphertext = cipher.encrypt_padded_vec::<Pkcs7>(plaintext);
    let params = Pkcs12PbeParams {
        salt: OctetString::new(salt)?,
        iterations: ITERATIONS,
    };
    let algorithm = AlgorithmIdentifierOwned {
        oid: OID_PBE_SHA1_3DES,
        parameters: Some(Any::encode_from(&params)?),
    };
    Ok((algorithm, ciphertext))
}

/// The PKCS#12 MAC (HMAC-SHA1, key from the PKCS#12 KDF) over the authenticated safe.
fn mac(authenticated_safe: &[u8], password: &str) -> Result<MacData> {
    let salt = strongroom_crypto::random::public_bytes(SALT_LEN).map_err(CertsError::Random)?;
    let key = Zeroizing::new(derive_key_utf8::<Sha1>(
        password,
        &salt,
        Pkcs12KeyType::Mac,
        ITERATIONS,
        20,
    )?);
    let mut hmac = hmac::Hmac::<Sha1>::new_from_slice(&key)
        .map_err(|_| CertsError::Internal("HMAC key length"))?;
    hmac.update(authenticated_safe);
    let tag = hmac.finalize().into_bytes();
    Ok(MacData {
        mac: DigestInfo {
            algorithm: AlgorithmIdentifierOwned {
                oid: OID_SHA1,
                parameters: Some(Any::null()),
            },
            digest: OctetString::new(tag.as_slice())?,
        },
        mac_salt: OctetString::new(salt)?,
        iterations: ITERATIONS,
    })
}
