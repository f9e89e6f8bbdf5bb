//! The state directory: initialise, seal, unseal with either credential, atomic writes.

use strongroom_crypto::passphrase::Argon2Params;
use strongroom_crypto::secret::SecretBytes;
use strongroom_hsm::state::{
    Credential, InitOptions, NodeStore, STATE_FILE, StateError, create_unseal_key_file,
    write_atomically,
};

fn password() -> SecretBytes {
    SecretBytes::copy_from(b"officer-password-1")
}

fn init(dir: &std::path::Path, unseal: Option<&SecretBytes>) -> NodeStore {
    let pw = password();
    NodeStore::init(
        dir,
        &InitOptions {
            zone: "zone-a",
            password: &pw,
            unseal_key: unseal,
            kdf: Argon2Params::INSECURE_FOR_TESTS,
        },
    )
    .unwrap()
    .0
}

#[test]
fn a_node_unseals_with_its_password_or_its_unseal_key_and_nothing_else() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("node");
    let key_file = scratch.path().join("unseal.key");
    let Credential::UnsealKey(key) = create_unseal_key_file(&key_file).unwrap() else {
        panic!("not an unseal key")
    };
    let store = init(&dir, Some(&key));
    let node_id = store.node_id().to_owned();
    drop(store);

    let mut store = NodeStore::open(&dir).unwrap();
    assert!(!store.is_unsealed());
    assert_eq!(store.node_id(), node_id);
    let wrong = Credential::Password(SecretBytes::copy_from(b"officer-password-2"));
    assert!(matches!(
        store.unseal(&wrong),
        Err(StateError::WrongCredential)
    ));
    let other_key = Credential::UnsealKey(SecretBytes::copy_from(&[7u8; 32]));
    assert!(matches!(
        store.unseal(&other_key),
        Err(StateError::WrongCredential)
    ));
    assert!(!store.is_unsealed());

    let by_password = store.unseal(&Credential::Password(password())).unwrap();
    let by_key = store
        .unseal(&Credential::from_unseal_key_file(&key_file).unwrap())
        .unwrap();
    assert_eq!(by_password.domain_key, by_key.domain_key);
    assert!(by_password.domain_key.is_some());

    // The file on disk holds no secret in the clear.
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).unwrap();
    assert!(!text.contains(by_password.domain_key.as_deref().unwrap()));
    assert!(!text.contains(&by_password.enrollment_key));
}

#[test]
fn a_node_without_an_unseal_key_slot_says_so() {
    let scratch = tempfile::tempdir().unwrap();
    drop(init(scratch.path(), None));
    let mut store = NodeStore::open(scratch.path()).unwrap();
    let key = Credential::UnsealKey(SecretBytes::copy_from(&[7u8; 32]));
    assert!(matches!(
        store.unseal(&key),
        Err(StateError::NoSuchSlot("unseal-key"))
    ));
}

#[test]
fn writes_are_durable_and_a_second_process_is_locked_out() {
    let scratch = tempfile::tempdir().unwrap();
    let mut store = init(scratch.path(), None);
    assert!(matches!(
        NodeStore::open(scratch.path()),
        Err(StateError::Locked(_))
    ));
    let mut state = store.unseal(&Credential::Password(password())).unwrap();
    state.client_certificates.push("PEM".to_owned());
    let generation = store.generation();
    store.save(&state).unwrap();
    assert_eq!(store.generation(), generation + 1);
    drop(store);
    // A crash between writing the temp file and the rename leaves a stray temp file:
    // the node starts with the last complete state.
    std::fs::write(scratch.path().join(format!("{STATE_FILE}.tmp")), b"{ torn").unwrap();
    let mut store = NodeStore::open(scratch.path()).unwrap();
    let state = store.unseal(&Credential::Password(password())).unwrap();
    assert_eq!(state.client_certificates, vec!["PEM".to_owned()]);
}

#[test]
fn corrupt_and_missing_state_are_typed_errors() {
    let scratch = tempfile::tempdir().unwrap();
    assert!(matches!(
        NodeStore::open(scratch.path()),
        Err(StateError::NotInitialised(_))
    ));
    write_atomically(scratch.path(), STATE_FILE, b"not json").unwrap();
    assert!(matches!(
        NodeStore::open(scratch.path()),
        Err(StateError::Corrupt { .. })
    ));
    let fresh = tempfile::tempdir().unwrap();
    drop(init(fresh.path(), None));
    let pw = password();
    assert!(matches!(
        NodeStore::init(
            fresh.path(),
            &InitOptions {
                zone: "z",
                password: &pw,
                unseal_key: None,
                kdf: Argon2Params::INSECURE_FOR_TESTS,
            }
        ),
        Err(StateError::AlreadyInitialised(_))
    ));
    // A flipped byte in the sealed part does not open.
    let path = fresh.path().join(STATE_FILE);
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let sealed = file["sealed"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        &sealed[..20],
        if &sealed[20..21] == "0" { "1" } else { "0" }
    ) + &sealed[21..];
    file["sealed"] = flipped.into();
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let mut store = NodeStore::open(fresh.path()).unwrap();
    assert!(matches!(
        store.unseal(&Credential::Password(password())),
        Err(StateError::Corrupt { .. })
    ));
}

#[test]
fn unseal_key_files_are_checked() {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("k");
    std::fs::write(&path, "abcd\n").unwrap();
    assert!(matches!(
        Credential::from_unseal_key_file(&path),
        Err(StateError::BadUnsealKey { .. })
    ));
    std::fs::write(&path, "zz".repeat(32)).unwrap();
    assert!(matches!(
        Credential::from_unseal_key_file(&path),
        Err(StateError::BadUnsealKey { .. })
    ));
    // An existing file is never overwritten.
    assert!(create_unseal_key_file(&path).is_err());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let fresh = scratch.path().join("fresh");
        create_unseal_key_file(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
