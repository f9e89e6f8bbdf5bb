//! `strongroom certs generate` and `hsm_certificate_generate`: argument parsing for the
//! certificate tool of `strongroom-certs`.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use strongroom_certs::password::Password;
use strongroom_certs::pkcs12::Pkcs12Format;
use strongroom_certs::pki::{KeyType, ServerNames};
use strongroom_certs::tool::{self, GenerateOptions};

/// The tool's long options that take a value.
const VALUE_OPTIONS: &[&str] = &[
    "dir", "pswd", "password", "host", "key-type", "days", "ca-days",
];
/// The tool's long flags.
const FLAG_OPTIONS: &[&str] = &["force", "legacy"];

/// Rewrites `-dir` to `--dir` (and the tool's other options), so the guide's command
/// works verbatim. Only exact option names in option position are rewritten, never the
/// value that follows an option (a password may well be `-dir`).
pub fn normalize_single_dash(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut expecting_value = false;
    for arg in args {
        if expecting_value {
            expecting_value = false;
            out.push(arg);
            continue;
        }
        let text = arg.to_str().unwrap_or_default();
        let long = text
            .strip_prefix("--")
            .or_else(|| text.strip_prefix('-'))
            .unwrap_or_default();
        let name = long.split('=').next().unwrap_or_default();
        let is_value_option = VALUE_OPTIONS.contains(&name);
        let known = is_value_option || FLAG_OPTIONS.contains(&name);
        if known && text.starts_with('-') {
            expecting_value = is_value_option && !long.contains('=');
            out.push(OsString::from(format!("--{long}")));
        } else {
            out.push(arg);
        }
    }
    out
}

/// `strongroom certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Write client.p12, client.pem, rootca.key, rootca.pem and server.p12 for mutual
    /// TLS between the KMS and its HSMs.
    Generate(GenerateArgs),
}

/// `hsm_certificate_generate`, the same tool under the guide's name.
#[derive(Debug, Parser)]
#[command(
    name = "hsm_certificate_generate",
    version,
    about = "Write client.p12, client.pem, rootca.key, rootca.pem and server.p12 for mutual TLS between a KMS and its HSMs."
)]
pub struct StandaloneGenerate {
    #[command(flatten)]
    pub args: GenerateArgs,
}

/// Options of the certificate tool. Long options may also be written with one dash,
/// as in the guide (`-dir ./certs -pswd 12345678`).
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output directory (created if missing; refused if not empty, unless --force).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Password of client.p12 and server.p12, at least 8 characters.
    #[arg(long = "pswd", visible_alias = "password", value_name = "PASSWORD")]
    pswd: String,
    /// Host name or IP address of the HSM server certificate (repeat, or separate by
    /// commas). Default: localhost and 127.0.0.1.
    #[arg(long = "host", value_name = "NAME|IP", value_delimiter = ',')]
    hosts: Vec<String>,
    /// Key type of the CA, server and client keys.
    #[arg(long = "key-type", value_enum, default_value_t = KeyKind::Rsa2048)]
    key_type: KeyKind,
    /// Validity of the server and client certificates, in days.
    #[arg(long, default_value_t = tool::DEFAULT_LEAF_VALIDITY_DAYS)]
    days: u32,
    /// Validity of the CA certificate, in days.
    #[arg(long = "ca-days", default_value_t = tool::DEFAULT_CA_VALIDITY_DAYS)]
    ca_days: u32,
    /// Write the PKCS#12 files in the legacy layout (3DES, SHA-1 MAC) for old readers.
    #[arg(long)]
    legacy: bool,
    /// Replace the files in a directory that is not empty.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyKind {
    /// RSA, 2048 bits.
    #[value(name = "rsa2048")]
    Rsa2048,
    /// ECDSA on NIST P-256.
    #[value(name = "ec-p256")]
    EcP256,
}

/// Runs `strongroom certs …`.
pub fn run(args: CertsArgs) -> ExitCode {
    match args.command {
        CertsCommand::Generate(args) => run_generate(args),
    }
}

/// Runs the certificate tool.
pub fn run_generate(args: GenerateArgs) -> ExitCode {
    let mut names = ServerNames::default();
    if !args.hosts.is_empty() {
        names.dns_names.clear();
        names.ip_addresses.clear();
        for host in args
            .hosts
            .iter()
            .map(|h| h.trim())
            .filter(|h| !h.is_empty())
        {
            match host.parse::<IpAddr>() {
                Ok(ip) => names.ip_addresses.push(ip),
                Err(_) => names.dns_names.push(host.to_owned()),
            }
        }
    }
    let mut options = GenerateOptions::new(args.dir, Password::new(args.pswd));
    options.server_names = names;
    options.key_type = match args.key_type {
        KeyKind::Rsa2048 => KeyType::Rsa2048,
        KeyKind::EcP256 => KeyType::EcP256,
    };
    options.leaf_validity_days = args.days;
    options.ca_validity_days = args.ca_days;
    options.force = args.force;
    if args.legacy {
        options.pkcs12_format = Pkcs12Format::Legacy;
    }
    match tool::generate(&options) {
        Ok(files) => {
            for path in [
                &files.client_p12,
                &files.client_pem,
                &files.rootca_key,
                &files.rootca_pem,
                &files.server_p12,
            ] {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("certificate tool: {err}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_guides_single_dash_flags_are_accepted() {
        let normalized = normalize_single_dash(os(&[
            "hsm_certificate_generate",
            "-dir",
            "./certs",
            "-pswd",
            "12345678",
        ]));
        assert_eq!(
            normalized,
            os(&[
                "hsm_certificate_generate",
                "--dir",
                "./certs",
                "--pswd",
                "12345678"
            ])
        );
        // Values are never rewritten, even when they look like an option.
        let normalized = normalize_single_dash(os(&["x", "--pswd", "-dir", "-h", "--force"]));
        assert_eq!(normalized, os(&["x", "--pswd", "-dir", "-h", "--force"]));
        let normalized = normalize_single_dash(os(&["x", "-pswd=12345678", "-dir", "d"]));
        assert_eq!(normalized, os(&["x", "--pswd=12345678", "--dir", "d"]));
    }
}
