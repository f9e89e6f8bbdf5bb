//! Passwords that protect PKCS#12 files: wiped on drop, never printed.

use core::fmt;

use zeroize::Zeroizing;

use crate::error::{CertsError, Result};

/// Number of random bytes in a generated password (32 hex characters, like the cloud's).
const GENERATED_BYTES: usize = 16;

/// A PKCS#12 password.
///
/// `Debug` prints `Password([REDACTED])`; there is no `Display`. The text is wiped on
/// drop. Reading it is an explicit [`Password::expose_secret`] call.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Takes ownership of `text` as a password.
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// A fresh random password: 32 lower-case hex characters (128 bits), the shape of
    /// the passwords the cloud hands out with client keys.
    ///
    /// # Errors
    /// [`CertsError::Random`] if the system random generator fails.
    pub fn generate() -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; GENERATED_BYTES]);
        strongroom_crypto::random::fill(bytes.as_mut_slice()).map_err(CertsError::Random)?;
        let mut text = Zeroizing::new(String::with_capacity(2 * GENERATED_BYTES));
        for byte in bytes.iter() {
            text.push(hex_digit(byte >> 4));
            text.push(hex_digit(byte & 0x0f));
        }
        Ok(Self(text))
    }

    /// Reads a password from the text of a password file, removing surrounding
    /// whitespace (the cloud's `clientKey_<KeyId>_Password.txt` ends with a newline).
    pub fn from_file_text(text: &str) -> Self {
        Self::new(text.trim().to_owned())
    }

    /// The password text. Call this only where the text is needed.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Number of characters (Unicode scalar values), the unit of the tool's minimum.
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl From<&str> for Password {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// The lower-case hex digit of a nibble (`0..=15`).
fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_32_lower_hex_and_differ() {
        let a = Password::generate().unwrap();
        let b = Password::generate().unwrap();
        assert_eq!(a.expose_secret().len(), 32);
        assert!(
            a.expose_secret()
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn debug_never_shows_the_text() {
        let password = Password::from("hunter2-hunter2");
        let printed = format!("{password:?}");
        assert_eq!(printed, "Password([REDACTED])");
    }

    #[test]
    fn file_text_is_trimmed_and_chars_counted() {
        let password = Password::from_file_text("3641891 37fa72dcd\n");
        assert_eq!(password.expose_secret(), "3641891 37fa72dcd");
        assert_eq!(Password::from("äöü1234").char_count(), 7);
    }
}
