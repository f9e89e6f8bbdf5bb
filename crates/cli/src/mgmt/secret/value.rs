//! A secret's value: read from a file or standard input for `secret create` and
//! `secret put` (never from a flag), and written back by `secret get`.

use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::mgmt::{Failure, Session, text};

/// The most `SecretData` may hold (`docs/secrets.md`): the text's bytes, or the
/// base64 text of a binary value (the server counts what it is sent).
const MAX_VALUE_BYTES: usize = 30_720;

/// Where the value of `create` and `put` comes from: exactly one file.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ValueArgs {
    /// The value as UTF-8 text, exactly the bytes of FILE (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    data_file: Option<PathBuf>,
    /// The value as any bytes, exactly those of FILE (`-`: standard input); sent base64
    /// with the data type `binary`.
    #[arg(long, value_name = "FILE")]
    binary_file: Option<PathBuf>,
}

/// A value as the API takes it.
pub struct SecretValue {
    /// `SecretData`: the text, or the bytes in base64.
    encoded: Zeroizing<String>,
    binary: bool,
}

impl SecretValue {
    /// `SecretData`.
    pub fn encoded(&self) -> &str {
        &self.encoded
    }

    /// `SecretDataType`.
    pub const fn data_type(&self) -> &'static str {
        if self.binary { "binary" } else { "text" }
    }
}

impl ValueArgs {
    /// Reads the value.
    ///
    /// # Errors
    /// An unreadable or too large file, or a `--data-file` that is not UTF-8.
    pub fn read(&self) -> Result<SecretValue, String> {
        match (&self.data_file, &self.binary_file) {
            (Some(file), _) => {
                let bytes = read_source(file)?;
                let text = std::str::from_utf8(&bytes).map_err(|e| {
                    format!(
                        "{}: not UTF-8 text (byte {} is not): use --binary-file for a binary value",
                        source_name(file),
                        e.valid_up_to()
                    )
                })?;
                Ok(SecretValue {
                    encoded: Zeroizing::new(text.to_owned()),
                    binary: false,
                })
            }
            (None, Some(file)) => {
                let bytes = read_source(file)?;
                let encoded = Zeroizing::new(STANDARD.encode(&*bytes));
                // The limit is on `SecretData` as sent: the base64 text.
                if encoded.len() > MAX_VALUE_BYTES {
                    return Err(format!(
                        "{}: {} bytes; a binary value is sent as base64, which may hold at \
                         most {MAX_VALUE_BYTES} characters ({} bytes)",
                        source_name(file),
                        bytes.len(),
                        MAX_VALUE_BYTES / 4 * 3
                    ));
                }
                Ok(SecretValue {
                    encoded,
                    binary: true,
                })
            }
            (None, None) => {
                Err("give the value with --data-file FILE or --binary-file FILE".into())
            }
        }
    }
}

fn is_stdin(file: &Path) -> bool {
    file.as_os_str() == "-"
}

fn source_name(file: &Path) -> String {
    if is_stdin(file) {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    }
}

/// The bytes of `file` (standard input for `-`), at most [`MAX_VALUE_BYTES`].
fn read_source(file: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let name = source_name(file);
    let mut bytes = Zeroizing::new(Vec::new());
    // One byte more than allowed tells a value that is too large.
    let limit = u64::try_from(MAX_VALUE_BYTES + 1).unwrap_or(u64::MAX);
    let read = if is_stdin(file) {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|e| format!("{name}: {e}"))?;
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "{name}: more than {MAX_VALUE_BYTES} bytes, the most a secret value may hold"
        ));
    }
    Ok(bytes)
}

/// `strongroom secret get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The secret.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// The version to read.
    #[arg(long, value_name = "V", conflicts_with = "stage")]
    version_id: Option<String>,
    /// The stage whose version to read (default ACSCurrent).
    #[arg(long, value_name = "S")]
    stage: Option<String>,
    /// Write the value's bytes (decoded, for a binary value) to FILE, created readable
    /// by its owner only, instead of printing it.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long, requires = "output")]
    force: bool,
}

/// Reads a version; prints it (stdout holds the value only) or writes it to a file.
pub fn get(s: &Session, args: &GetArgs) -> Result<(), Failure> {
    if let Some(output) = &args.output
        && !args.force
        && output.symlink_metadata().is_ok()
    {
        return Err(exists(output).into());
    }
    let mut params = vec![("SecretName", args.name.as_str())];
    if let Some(version) = &args.version_id {
        params.push(("VersionId", version));
    }
    if let Some(stage) = &args.stage {
        params.push(("VersionStage", stage));
    }
    let answer = s.call("GetSecretValue", &params)?;
    let binary = match answer.get("SecretDataType").and_then(Value::as_str) {
        Some("binary") => true,
        Some("text") | None => false,
        Some(other) => {
            return Err(format!("the answer's SecretDataType {other:?} is unknown").into());
        }
    };
    let data = answer
        .get("SecretData")
        .and_then(Value::as_str)
        .ok_or_else(|| "the answer carries no SecretData".to_owned())?;
    let about = format!(
        "{} version {} (stages {})",
        text(&answer, &["SecretName"]),
        text(&answer, &["VersionId"]),
        text(&answer, &["VersionStages", "VersionStage"])
    );
    if let Some(output) = &args.output {
        let bytes = if binary {
            Zeroizing::new(
                STANDARD
                    .decode(data)
                    .map_err(|e| format!("the answer's binary SecretData is not base64: {e}"))?,
            )
        } else {
            Zeroizing::new(data.as_bytes().to_vec())
        };
        write_private(output, &bytes, args.force)?;
        // On stderr, so that `--json` output stays one JSON document.
        eprintln!(
            "wrote the {} bytes of {about} to {}",
            bytes.len(),
            output.display()
        );
        s.printed_json(&answer);
        return Ok(());
    }
    if s.printed_json(&answer) {
        return Ok(());
    }
    eprintln!("{about}");
    if binary {
        eprintln!("a binary value, printed as base64 (--output FILE writes its bytes)");
        write_stdout(format!("{data}\n").as_bytes())
    } else {
        write_stdout(data.as_bytes())
    }
}

fn exists(output: &Path) -> String {
    format!(
        "{}: the file exists (--force replaces it)",
        output.display()
    )
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Other(format!("standard output: {e}")))
}

/// Creates `path` readable by its owner only (replacing it with `force`) holding `bytes`.
fn write_private(path: &Path, bytes: &[u8], force: bool) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    if force {
        // A new file, not the old one truncated: the old one's mode and owner go too.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(failed(e)),
            _ => {}
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == ErrorKind::AlreadyExists {
            exists(path)
        } else {
            failed(e)
        }
    })?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(failed(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn args(data: Option<&Path>, binary: Option<&Path>) -> ValueArgs {
        ValueArgs {
            data_file: data.map(Path::to_path_buf),
            binary_file: binary.map(Path::to_path_buf),
        }
    }

    #[test]
    fn values_are_read_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let text_file = dir.path().join("text");
        let binary_file = dir.path().join("binary");
        std::fs::write(&text_file, " p\u{e4}ssword \n\n").unwrap();
        std::fs::write(&binary_file, [0u8, 0xff, 0x10]).unwrap();

        let text = args(Some(&text_file), None).read().unwrap();
        assert_eq!(text.encoded(), " p\u{e4}ssword \n\n");
        assert_eq!(text.data_type(), "text");
        let binary = args(None, Some(&binary_file)).read().unwrap();
        assert_eq!(binary.encoded(), "AP8Q");
        assert_eq!(binary.data_type(), "binary");

        // Bytes that are not UTF-8 are refused as text, with advice.
        let refused = args(Some(&binary_file), None).read().err().unwrap();
        assert!(refused.contains("--binary-file"), "{refused}");
        // At most MAX_VALUE_BYTES.
        let large = dir.path().join("large");
        std::fs::write(&large, vec![b'a'; MAX_VALUE_BYTES + 1]).unwrap();
        assert!(args(Some(&large), None).read().is_err());
        std::fs::write(&large, vec![b'a'; MAX_VALUE_BYTES]).unwrap();
        assert!(args(Some(&large), None).read().is_ok());
        // Binary values: the base64 text is what counts.
        let blob = dir.path().join("blob");
        std::fs::write(&blob, vec![0u8; MAX_VALUE_BYTES / 4 * 3]).unwrap();
        let encoded = args(None, Some(&blob)).read().unwrap();
        assert_eq!(encoded.encoded().len(), MAX_VALUE_BYTES);
        std::fs::write(&blob, vec![0u8; MAX_VALUE_BYTES / 4 * 3 + 1]).unwrap();
        let refused = args(None, Some(&blob)).read().err().unwrap();
        assert!(refused.contains("base64"), "{refused}");
        // A missing file is named.
        let missing = args(None, Some(&dir.path().join("missing")))
            .read()
            .err()
            .unwrap();
        assert!(missing.contains("missing"), "{missing}");
    }

    #[test]
    fn output_files_are_private_and_not_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("value");
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        write_private(&out, b"one", false).unwrap();
        assert_eq!(mode(&out), 0o600);
        let refused = write_private(&out, b"two", false).err().unwrap();
        assert!(refused.contains("--force"), "{refused}");
        assert_eq!(std::fs::read(&out).unwrap(), b"one");
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&out, b"two", true).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"two");
        assert_eq!(mode(&out), 0o600);
    }
}
