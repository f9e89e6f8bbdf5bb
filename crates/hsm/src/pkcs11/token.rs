//! The token itself: loading the module, finding the token, the session pool, the
//! capability set, the domain and binding keys, and the mapping of `CKR_*` codes to the
//! link's error codes.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use strongroom_crypto::hash;
use strongroom_proto::hsm::v1::error::Code;

use super::keys::{KeyCache, Loaded};
use crate::error::{HsmError, Result};

/// How long a call waits for a free session before it gives up with `UNAVAILABLE`.
const SESSION_WAIT: Duration = Duration::from_secs(30);

/// Length of the random `CKA_ID` given to the domain and binding keys.
const KEY_ID_LEN: usize = 16;

/// Loads a module once per process and initialises it.
///
/// PKCS#11 allows one `C_Initialize` per process and module, and `C_Finalize` ends it
/// for every user, so modules are loaded into a process-wide table, shared by every
/// backend over the same module, and never finalised: they live as long as the
/// process. A module another part of the process already initialised
/// (`CKR_CRYPTOKI_ALREADY_INITIALIZED`) is used as it is.
pub(super) fn module(path: &Path) -> Result<Pkcs11> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut modules = MODULES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(loaded) = modules.get(&key) {
        return Ok(loaded.clone());
    }
    let loaded = Pkcs11::new(&key).map_err(|e| {
        HsmError::invalid(format!(
            "cannot load the PKCS#11 module {}: {e}",
            path.display()
        ))
    })?;
    match loaded.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(token_error("C_Initialize", &e)),
    }
    modules.insert(key, loaded.clone());
    Ok(loaded)
}

/// The one slot whose token has `label`.
pub(super) fn find_token(ctx: &Pkcs11, label: &str) -> Result<(Slot, TokenInfo)> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| token_error("C_GetSlotList", &e))?;
    let mut found = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| token_error("C_GetTokenInfo", &e))?;
        if info.label() == label {
            found.push((slot, info));
        }
    }
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(HsmError::invalid(format!(
            "no PKCS#11 token is labelled {label:?}"
        ))),
        (Some(_), Some(_)) => Err(HsmError::invalid(format!(
            "more than one PKCS#11 token is labelled {label:?}"
        ))),
    }
}

/// The `CKR_*` code of an error, if it came from the token.
pub(super) fn return_value(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Whether an error means the session (or the objects it holds) can no longer be
/// trusted, so it must be closed rather than returned to the pool.
fn is_fatal(e: &CkError) -> bool {
    matches!(
        return_value(e),
        Some(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::CryptokiNotInitialized
                | RvError::UserNotLoggedIn
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
        )
    )
}

/// An error of `function` in words, without the library's paragraph-long descriptions.
pub(super) fn token_error(function: &str, e: &CkError) -> HsmError {
    let what = match e {
        CkError::Pkcs11(rv, _) => format!("{rv:?}"),
        other => other.to_string(),
    };
    let code = if is_fatal(e) {
        Code::Unavailable
    } else {
        Code::Internal
    };
    HsmError::new(code, format!("PKCS#11 {function} failed: {what}"))
}

/// Whether a token refused the parameters of a mechanism at `*Init` time (SoftHSM2
/// answers `CKR_ARGUMENTS_BAD` for OAEP with SHA-256).
pub(super) fn refused_mechanism(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::ArgumentsBad | RvError::MechanismInvalid | RvError::MechanismParamInvalid,
            Function::EncryptInit
                | Function::DecryptInit
                | Function::SignInit
                | Function::UnwrapKey
                | Function::GenerateKey
                | Function::GenerateKeyPair
        )
    )
}

/// The mechanisms the token lists, and what probing found.
#[derive(Debug, Clone)]
pub(super) struct Capabilities {
    mechanisms: Vec<MechanismType>,
    /// Whether the token accepts RSA-OAEP with SHA-256 and MGF1-SHA-256.
    pub(super) oaep_sha256: bool,
}

impl Capabilities {
    pub(super) fn new(mechanisms: Vec<MechanismType>) -> Self {
        Self {
            mechanisms,
            oaep_sha256: false,
        }
    }

    /// Whether the token lists `mechanism`.
    pub(super) fn has(&self, mechanism: MechanismType) -> bool {
        self.mechanisms.contains(&mechanism)
    }
}

/// One session of the pool, with the keys it has unwrapped.
#[derive(Debug)]
pub(super) struct TokenSession {
    session: Session,
    broken: Cell<bool>,
    pub(super) cache: KeyCache,
}

impl TokenSession {
    /// The PKCS#11 session.
    pub(super) fn session(&self) -> &Session {
        &self.session
    }

    /// Maps an error of `function`; a fatal one also retires this session.
    pub(super) fn fail(&self, function: &str, e: &CkError) -> HsmError {
        if is_fatal(e) {
            self.broken.set(true);
        }
        token_error(function, e)
    }

    /// Maps an error with `otherwise` unless it is fatal to the session.
    pub(super) fn fail_or(
        &self,
        function: &str,
        e: &CkError,
        otherwise: impl FnOnce() -> HsmError,
    ) -> HsmError {
        if is_fatal(e) {
            self.fail(function, e)
        } else {
            otherwise()
        }
    }

    /// Runs a token call's result through [`TokenSession::fail`].
    pub(super) fn call<T>(&self, function: &str, r: cryptoki::error::Result<T>) -> Result<T> {
        r.map_err(|e| self.fail(function, &e))
    }

    /// Caches a loaded key in this session.
    pub(super) fn remember(&mut self, id: [u8; 32], loaded: Loaded) {
        self.cache.insert(&self.session, id, loaded);
    }

    /// `len` random bytes from the token's generator.
    pub(super) fn random(&self, len: usize) -> Result<Vec<u8>> {
        let mut out = vec![0u8; len];
        self.call(
            "C_GenerateRandom",
            self.session.generate_random_slice(&mut out),
        )?;
        Ok(out)
    }
}

/// A bounded pool of logged-in sessions. A PKCS#11 session serves one thread at a time;
/// each call checks one out, and sessions are opened on demand up to the bound.
#[derive(Debug)]
pub(super) struct Pool {
    ctx: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    max: usize,
    cache_capacity: usize,
    state: Mutex<PoolState>,
    available: Condvar,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<TokenSession>,
    open: usize,
}

impl Pool {
    pub(super) fn new(
        ctx: Pkcs11,
        slot: Slot,
        pin: AuthPin,
        max: usize,
        cache_capacity: usize,
    ) -> Self {
        Self {
            ctx,
            slot,
            pin,
            max: max.max(1),
            cache_capacity,
            state: Mutex::default(),
            available: Condvar::new(),
        }
    }

    /// Runs `f` on a session of the pool. A session that failed fatally is closed
    /// instead of being returned.
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut TokenSession) -> Result<T>) -> Result<T> {
        let mut lease = Lease {
            pool: self,
            session: Some(self.checkout()?),
        };
        match lease.session.as_mut() {
            Some(session) => f(session),
            None => Err(HsmError::internal("session lease is empty")),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state is a list and a counter updated in single steps; a panic elsewhere
        // while holding the lock cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn checkout(&self) -> Result<TokenSession> {
        let mut state = self.lock();
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(session);
            }
            if state.open < self.max {
                state.open += 1;
                break;
            }
            let (next, timeout) = self
                .available
                .wait_timeout(state, SESSION_WAIT)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            if timeout.timed_out() && state.idle.is_empty() && state.open >= self.max {
                return Err(HsmError::new(
                    Code::Unavailable,
                    "every PKCS#11 session of this backend stayed busy",
                ));
            }
        }
        drop(state);
        self.open_session().inspect_err(|_| self.forget())
    }

    fn checkin(&self, session: TokenSession) {
        self.lock().idle.push(session);
        self.available.notify_one();
    }

    fn forget(&self) {
        let mut state = self.lock();
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.available.notify_one();
    }

    /// A new read-write session, logged in. Login is per application and token, so
    /// only the first session (or the first after every session was closed) logs in.
    fn open_session(&self) -> Result<TokenSession> {
        let session = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(|e| token_error("C_OpenSession", &e))?;
        let state = session
            .get_session_info()
            .map_err(|e| token_error("C_GetSessionInfo", &e))?
            .session_state();
        if !matches!(state, SessionState::RwUser | SessionState::RoUser) {
            match session.login(UserType::User, Some(&self.pin)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(CkError::Pkcs11(
                    rv @ (RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange),
                    _,
                )) => {
                    return Err(HsmError::invalid(format!(
                        "the token refused the user PIN ({rv:?})"
                    )));
                }
                Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                    return Err(HsmError::new(
                        Code::Unavailable,
                        "the token's user PIN is locked",
                    ));
                }
                Err(e) => return Err(token_error("C_Login", &e)),
            }
        }
        Ok(TokenSession {
            session,
            broken: Cell::new(false),
            cache: KeyCache::new(self.cache_capacity),
        })
    }
}

/// Returns its session to the pool when dropped, or closes it if it broke.
struct Lease<'a> {
    pool: &'a Pool,
    session: Option<TokenSession>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        match self.session.take() {
            Some(session) if !session.broken.get() => self.pool.checkin(session),
            // Dropping the session closes it; the token destroys its session objects.
            _ => self.pool.forget(),
        }
    }
}

/// The two token keys every blob depends on.
#[derive(Debug, Clone, Copy)]
pub(super) struct DomainKeys {
    /// AES-256, wraps and unwraps key material.
    pub(super) wrap: ObjectHandle,
    /// HMAC-SHA-256 key of the blobs' binding tags.
    pub(super) binding: ObjectHandle,
}

/// Finds the domain key and its binding key by label, or creates them.
///
/// The binding key is created first: a domain key without a binding key could only
/// come from outside Strongroom, and is refused rather than completed (blobs made with
/// another binding key would silently stop opening).
///
/// Returns the keys and the fingerprint: the first 16 bytes of SHA-256 over the labels,
/// `CKA_ID`s (random, set at creation) and, where the token offers it,
/// `CKA_CHECK_VALUE` (a check value computed from the key itself) of both keys, in
/// hex. The keys are not extractable, so they cannot be hashed directly. The token's
/// serial is deliberately left out: a token cluster that replicates the keys reports
/// one fingerprint, and the node id names the token.
pub(super) fn domain_keys(
    s: &TokenSession,
    caps: &Capabilities,
    label: &str,
) -> Result<(DomainKeys, String)> {
    let binding_label = format!("{label}-binding");
    let domain = find_key(s, label)?;
    let binding = match find_key(s, &binding_label)? {
        Some(found) => found,
        None if domain.is_some() => {
            return Err(HsmError::internal(format!(
                "the token holds a domain key {label:?} but no binding key {binding_label:?}; \
                 Strongroom did not create that domain key"
            )));
        }
        None => create_key(s, caps, &binding_label, KeyRole::Binding)?,
    };
    let domain = match domain {
        Some(found) => found,
        None => create_key(s, caps, label, KeyRole::Domain)?,
    };
    let mut fingerprint_input = b"strongroom/pkcs11/domain-key".to_vec();
    for (role, handle, key_label) in [
        (KeyRole::Domain, domain, label),
        (KeyRole::Binding, binding, binding_label.as_str()),
    ] {
        let facts = check_key(s, role, handle, key_label)?;
        for field in [key_label.as_bytes(), &facts.id, &facts.check_value] {
            fingerprint_input
                .extend_from_slice(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
            fingerprint_input.extend_from_slice(field);
        }
    }
    let digest = hash::sha256(&fingerprint_input);
    let fingerprint = hex::encode(digest.get(..16).unwrap_or(&digest));
    Ok((
        DomainKeys {
            wrap: domain,
            binding,
        },
        fingerprint,
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRole {
    Domain,
    Binding,
}

fn find_key(s: &TokenSession, label: &str) -> Result<Option<ObjectHandle>> {
    let found = s.call(
        "C_FindObjects",
        s.session().find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ]),
    )?;
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (first, None) => Ok(first),
        (Some(_), Some(_)) | (None, Some(_)) => Err(HsmError::internal(format!(
            "more than one secret key on the token is labelled {label:?}"
        ))),
    }
}

fn create_key(
    s: &TokenSession,
    caps: &Capabilities,
    label: &str,
    role: KeyRole,
) -> Result<ObjectHandle> {
    let (mechanism, key_type) = match role {
        KeyRole::Domain => (Mechanism::AesKeyGen, KeyType::AES),
        KeyRole::Binding => (Mechanism::GenericSecretKeyGen, KeyType::GENERIC_SECRET),
    };
    if !caps.has(mechanism.mechanism_type()) {
        return Err(HsmError::unsupported(format!(
            "the token cannot create the {label:?} key: it has no {}",
            mechanism.mechanism_type()
        )));
    }
    let wraps = role == KeyRole::Domain;
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::ValueLen(32.into()),
        Attribute::Wrap(wraps),
        Attribute::Unwrap(wraps),
        Attribute::Sign(!wraps),
        Attribute::Verify(!wraps),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(s.random(KEY_ID_LEN)?),
    ];
    s.call(
        "C_GenerateKey",
        s.session().generate_key(&mechanism, &template),
    )
}

/// What the fingerprint uses of a token key.
struct KeyFacts {
    id: Vec<u8>,
    check_value: Vec<u8>,
}

/// Refuses a key found by label that is not what Strongroom would have created: the
/// wrong type, extractable, not sensitive, or without the functions it needs.
fn check_key(
    s: &TokenSession,
    role: KeyRole,
    handle: ObjectHandle,
    label: &str,
) -> Result<KeyFacts> {
    let attributes = s.call(
        "C_GetAttributeValue",
        s.session().get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::Extractable,
                AttributeType::Sensitive,
                AttributeType::Wrap,
                AttributeType::Unwrap,
                AttributeType::Sign,
                AttributeType::Verify,
                AttributeType::Id,
                AttributeType::CheckValue,
            ],
        ),
    )?;
    let mut facts = KeyFacts {
        id: Vec::new(),
        check_value: Vec::new(),
    };
    let (mut key_type, mut extractable, mut sensitive) = (None, true, false);
    let (mut wrap, mut unwrap, mut sign, mut verify) = (false, false, false, false);
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Extractable(b) => extractable = b,
            Attribute::Sensitive(b) => sensitive = b,
            Attribute::Wrap(b) => wrap = b,
            Attribute::Unwrap(b) => unwrap = b,
            Attribute::Sign(b) => sign = b,
            Attribute::Verify(b) => verify = b,
            Attribute::Id(id) => facts.id = id,
            Attribute::CheckValue(value) => facts.check_value = value,
            _ => {}
        }
    }
    let fits = match role {
        KeyRole::Domain => key_type == Some(KeyType::AES) && wrap && unwrap,
        KeyRole::Binding => key_type == Some(KeyType::GENERIC_SECRET) && sign && verify,
    };
    if extractable || !sensitive || !fits {
        return Err(HsmError::internal(format!(
            "the token key {label:?} is not a Strongroom {} key (it must be a sensitive, \
             non-extractable {})",
            match role {
                KeyRole::Domain => "domain",
                KeyRole::Binding => "binding",
            },
            match role {
                KeyRole::Domain => "AES key with CKA_WRAP and CKA_UNWRAP",
                KeyRole::Binding => "generic secret with CKA_SIGN and CKA_VERIFY",
            }
        )));
    }
    Ok(facts)
}

/// Whether the token accepts RSA-OAEP with SHA-256: a session public key with a
/// throwaway modulus is offered to `C_EncryptInit`. SoftHSM2 2.6.1 lists
/// `CKM_RSA_PKCS_OAEP` but accepts only SHA-1 and answers `CKR_ARGUMENTS_BAD`. A probe
/// that cannot run counts as "no".
pub(super) fn probe_oaep_sha256(s: &TokenSession, caps: &Capabilities) -> bool {
    if !caps.has(MechanismType::RSA_PKCS_OAEP) {
        return false;
    }
    let mut modulus = vec![0xC5u8; 256];
    if let Some(last) = modulus.last_mut() {
        *last = 0x01;
    }
    let Ok(probe) = s.session().create_object(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(false),
        Attribute::Modulus(modulus),
        Attribute::PublicExponent(vec![1, 0, 1]),
        Attribute::Encrypt(true),
    ]) else {
        return false;
    };
    let mechanism = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ));
    let accepted = match s.session().encrypt(&mechanism, probe, b"probe") {
        Ok(_) => true,
        // The parameters passed C_EncryptInit; only the throwaway key failed after.
        Err(CkError::Pkcs11(_, Function::Encrypt)) => true,
        Err(_) => false,
    };
    let _ = s.session().destroy_object(probe);
    accepted
}
