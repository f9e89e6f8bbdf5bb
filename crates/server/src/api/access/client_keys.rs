//! `CreateClientKey`, `GetClientKey`, `ListClientKeys`, `DeleteClientKey`.
//!
//! A client key is made here: an RSA-2048 key pair, a self-signed certificate for it and
//! a PKCS#12 of both under the caller's password (`strongroom_certs::client_key`). The
//! PKCS#12 goes back in the answer, once; the store keeps **only the certificate**. The
//! password and the private key live in this process only while the answer is built
//! (the password in a [`Password`], the PKCS#12 in a wiped buffer until it is copied
//! into the answer).

use std::sync::Arc;

use serde_json::{Value, json};
use strongroom_certs::client_key;
use strongroom_certs::error::CertsError;
use strongroom_certs::password::Password;
use strongroom_store::{ClientKey, Store, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ACCESS_POINT, CLIENT_KEY, missing, points, policies};
use crate::api::{Answer, Params, answer};
use crate::app::{App, iso, now};
use crate::error::ApiError;

/// Most client keys one access point has.
pub const MAX_PER_ACCESS_POINT: u32 = 3;
/// The only key algorithm.
pub const RSA_2048: &str = "RSA_2048";
/// Who made the key: always this service.
pub const KMS_PROVIDED: &str = "KMS_PROVIDED";
/// Shortest and longest password, in characters.
pub const PASSWORD_LEN: (usize, usize) = (8, 64);
/// The special characters a password may hold.
pub const PASSWORD_SPECIALS: &str = "~!@#$%^&*?_-";

/// Checks a client key's password as the cloud does: 8 to 64 characters, each a letter,
/// a digit or one of [`PASSWORD_SPECIALS`], with at least two of those three classes.
///
/// # Errors
/// [`ApiError::InvalidParameter`] naming `Password`; the message never holds the
/// password.
pub fn check_password(password: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::invalid("Password", why.to_owned());
    let count = password.chars().count();
    if count < PASSWORD_LEN.0 || count > PASSWORD_LEN.1 {
        return Err(bad("must be 8 to 64 characters"));
    }
    let (mut letters, mut digits, mut specials) = (false, false, false);
    for c in password.chars() {
        if c.is_ascii_alphabetic() {
            letters = true;
        } else if c.is_ascii_digit() {
            digits = true;
        } else if PASSWORD_SPECIALS.contains(c) {
            specials = true;
        } else {
            return Err(bad(
                "may hold only letters, digits and the special characters ~!@#$%^&*?_-",
            ));
        }
    }
    if u8::from(letters) + u8::from(digits) + u8::from(specials) < 2 {
        return Err(bad(
            "must hold at least two of: letters, digits, special characters ~!@#$%^&*?_-",
        ));
    }
    Ok(())
}

/// `NotBefore` / `NotAfter`: both or neither (then from now for five years); in the
/// ISO 8601 UTC form `yyyy-MM-ddTHH:mm:ssZ`; `NotBefore` earlier than `NotAfter`, and
/// `NotAfter` in the future.
fn validity(p: &Params, at: i64) -> Result<(OffsetDateTime, OffsetDateTime), ApiError> {
    let parse = |name: &str, text: &str| {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            ApiError::invalid(
                name,
                format!("{text:?}: use the UTC form yyyy-MM-ddTHH:mm:ssZ"),
            )
        })
    };
    let (not_before, not_after) = match (p.optional("NotBefore"), p.optional("NotAfter")) {
        (None, None) => return Ok(client_key::default_validity()),
        (Some(_), None) => return Err(ApiError::MissingParameter("NotAfter".into())),
        (None, Some(_)) => return Err(ApiError::MissingParameter("NotBefore".into())),
        (Some(b), Some(a)) => (parse("NotBefore", b)?, parse("NotAfter", a)?),
    };
    if not_before >= not_after {
        return Err(ApiError::invalid(
            "NotAfter",
            "must be later than NotBefore",
        ));
    }
    if not_after.unix_timestamp() <= at {
        return Err(ApiError::invalid("NotAfter", "must be in the future"));
    }
    Ok((not_before, not_after))
}

fn view(key: &ClientKey) -> Value {
    json!({
        "ClientKeyId": key.id,
        "AapName": key.aap_name,
        "CreateTime": iso(Some(key.created_at)),
        "KeyAlgorithm": key.key_algorithm,
        "KeyOrigin": key.key_origin,
        "NotBefore": iso(Some(key.not_before)),
        "NotAfter": iso(Some(key.not_after)),
        "PublicKeyData": key.certificate_pem,
    })
}

fn certs_error(e: CertsError) -> ApiError {
    match e {
        CertsError::InvalidValidity { reason } => ApiError::invalid("NotAfter", reason),
        CertsError::PasswordNotEncodable => {
            ApiError::invalid("Password", "cannot be encoded for PKCS#12")
        }
        other => ApiError::Internal(format!("client key generation: {other}")),
    }
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let aap_name = p.required("AapName")?;
    let password = Password::new(p.required("Password")?.to_owned());
    check_password(password.expose_secret())?;
    let at = now();
    let (not_before, not_after) = validity(p, at)?;
    let point = points::load(app, aap_name).await?;
    // The certificate's subject names the instance of the access point's first policy
    // (an access point has 1–3 policies; the name is for people reading the
    // certificate, nothing checks it).
    let first = point
        .policies
        .first()
        .ok_or_else(|| ApiError::Internal(format!("the access point {aap_name} has no policy")))?;
    let instance_id = policies::load(app, first).await?.kms_instance_id;
    let made = tokio::task::spawn_blocking(move || {
        client_key::generate(&instance_id, &password, not_before, not_after)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("client key generation: {e}")))?
    .map_err(certs_error)?;
    let record = ClientKey {
        id: made.key_id.clone(),
        aap_name: point.name.clone(),
        key_algorithm: RSA_2048.to_owned(),
        key_origin: KMS_PROVIDED.to_owned(),
        certificate_pem: made.certificate_pem.clone(),
        not_before: made.not_before.unix_timestamp(),
        not_after: made.not_after.unix_timestamp(),
        created_at: at,
    };
    app.store
        .create_client_key(&record, MAX_PER_ACCESS_POINT)
        .await
        .map_err(|e| match e {
            StoreError::QuotaExceeded(_) => ApiError::LimitExceeded(format!(
                "The application access point {aap_name} has {MAX_PER_ACCESS_POINT} client \
                 keys already; delete one first."
            )),
            other => missing(ACCESS_POINT, aap_name)(other),
        })?;
    Ok(answer([
        ("ClientKeyId", Value::from(record.id.clone())),
        ("KeyAlgorithm", Value::from(RSA_2048)),
        (
            "PrivateKeyData",
            Value::from(made.private_key_data.as_str()),
        ),
        ("NotBefore", Value::from(iso(Some(record.not_before)))),
        ("NotAfter", Value::from(iso(Some(record.not_after)))),
    ]))
}

pub(crate) async fn get<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let id = p.required("ClientKeyId")?;
    let key = app
        .store
        .get_client_key(id)
        .await
        .map_err(missing(CLIENT_KEY, id))?;
    match view(&key) {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::Internal("client key view".into())),
    }
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let aap_name = p.required("AapName")?;
    let keys = app
        .store
        .list_client_keys(aap_name)
        .await
        .map_err(missing(ACCESS_POINT, aap_name))?;
    Ok(answer([(
        "ClientKeys",
        Value::Array(keys.iter().map(view).collect()),
    )]))
}

pub(crate) async fn delete<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let id = p.required("ClientKeyId")?;
    app.store
        .delete_client_key(id)
        .await
        .map_err(missing(CLIENT_KEY, id))?;
    Ok(answer([]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn passwords_follow_the_cloud_rules() {
        for good in [
            "abcdefg1",
            "12345678-",
            "abc_defgh",
            &format!("a1{}", "x".repeat(62)),
            "e0f3c1a9b2d84c7f9a6e5d4c3b2a1f0e",
        ] {
            assert!(check_password(good).is_ok(), "{good}");
        }
        for bad in [
            "abc1",
            "abcdefgh",
            "12345678",
            "~~~~~~~~",
            "abcdefg 1",
            "abcdéfg1",
            &format!("a1{}", "x".repeat(63)),
        ] {
            let e = check_password(bad).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter");
            assert!(
                !e.to_string().contains(bad),
                "the message shows the password"
            );
        }
    }

    #[test]
    fn validity_is_both_or_neither_and_ends_in_the_future() {
        let p = |pairs: &[(&str, &str)]| {
            Params(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        let at = 1_800_000_000; // 2027-01-15
        let (b, a) = validity(&p(&[]), now()).unwrap();
        let years = (a - b).whole_days() / 365;
        assert_eq!(years, 5);
        let (b, a) = validity(
            &p(&[
                ("NotBefore", "2027-01-01T00:00:00Z"),
                ("NotAfter", "2028-01-01T00:00:00Z"),
            ]),
            at,
        )
        .unwrap();
        assert_eq!(b.unix_timestamp(), 1_798_761_600);
        assert_eq!(a.unix_timestamp(), 1_830_297_600);
        for (pairs, code) in [
            (
                vec![("NotBefore", "2027-01-01T00:00:00Z")],
                "MissingParameter",
            ),
            (
                vec![("NotAfter", "2028-01-01T00:00:00Z")],
                "MissingParameter",
            ),
            (
                vec![
                    ("NotBefore", "2027-01-01"),
                    ("NotAfter", "2028-01-01T00:00:00Z"),
                ],
                "InvalidParameter",
            ),
            (
                vec![
                    ("NotBefore", "2028-01-01T00:00:00Z"),
                    ("NotAfter", "2027-01-01T00:00:00Z"),
                ],
                "InvalidParameter",
            ),
            (
                vec![
                    ("NotBefore", "2020-01-01T00:00:00Z"),
                    ("NotAfter", "2021-01-01T00:00:00Z"),
                ],
                "InvalidParameter",
            ),
        ] {
            assert_eq!(
                validity(&p(&pairs), at).unwrap_err().code(),
                code,
                "{pairs:?}"
            );
        }
    }
}
