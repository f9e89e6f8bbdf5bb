//! Where the client commands find the endpoint, CA file and AccessKey: flags, then the
//! environment, then the profile file (`mgmt::CONNECTION_HELP` documents the order and
//! the file's format).

use std::path::{Path, PathBuf};

use strongroom_server::client::Transport;
use zeroize::Zeroizing;

use super::ConnectArgs;

/// The default endpoint, the server's default listener.
const DEFAULT_ENDPOINT: &str = "127.0.0.1:8443";

/// Everything a client needs.
pub struct Resolved {
    pub endpoint: String,
    pub transport: Transport,
    pub access_key_id: String,
    pub access_key_secret: Zeroizing<String>,
}

/// One profile's keys.
#[derive(Default)]
struct Profile {
    /// The file it came from (for relative `ca_file` paths and messages).
    file: Option<PathBuf>,
    endpoint: Option<String>,
    ca_file: Option<PathBuf>,
    server_name: Option<String>,
    insecure_http: Option<bool>,
    access_key_id: Option<String>,
    access_key_secret: Option<Zeroizing<String>>,
}

/// A non-empty environment variable.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_flag(name: &str) -> Option<bool> {
    env(name).map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// Resolves the connection of a client command.
pub fn resolve(args: &ConnectArgs) -> Result<Resolved, String> {
    let profile = load(args.profile_file.as_deref(), args.profile.as_deref())?;
    let endpoint = args
        .endpoint
        .clone()
        .or_else(|| env("STRONGROOM_ENDPOINT"))
        .or_else(|| profile.endpoint.clone())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
    let endpoint = endpoint
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let server_name = args
        .server_name
        .clone()
        .or_else(|| profile.server_name.clone());
    let https = |ca_file: PathBuf| Transport::Https {
        ca_file,
        server_name: server_name.clone(),
    };
    let transport = if args.insecure_http {
        Transport::InsecureHttp
    } else if let Some(ca) = &args.ca_file {
        https(ca.clone())
    } else if env_flag("STRONGROOM_INSECURE_HTTP") == Some(true) {
        Transport::InsecureHttp
    } else if let Some(ca) = env("STRONGROOM_CA_FILE") {
        https(PathBuf::from(ca))
    } else if profile.insecure_http == Some(true) {
        Transport::InsecureHttp
    } else if let Some(ca) = &profile.ca_file {
        https(relative_to(profile.file.as_deref(), ca))
    } else {
        return Err(
            "no management CA file: give --ca-file, set STRONGROOM_CA_FILE, or put ca_file in \
             the profile (it is <data dir>/management-ca.pem); --insecure-http for a plain-HTTP \
             loopback node"
                .to_owned(),
        );
    };
    if endpoint.starts_with("http://") {
        return Err(format!(
            "endpoint {endpoint:?}: give HOST:PORT (plain HTTP is chosen with --insecure-http)"
        ));
    }
    let access_key_id = args
        .access_key_id
        .clone()
        .or_else(|| env("STRONGROOM_ACCESS_KEY_ID"))
        .or_else(|| env("ALIBABA_CLOUD_ACCESS_KEY_ID"))
        .or_else(|| profile.access_key_id.clone())
        .ok_or_else(|| {
            "no AccessKey id: give --access-key-id, set STRONGROOM_ACCESS_KEY_ID, or use a \
             profile (`strongroom init --write-profile`)"
                .to_owned()
        })?;
    let access_key_secret = match &args.access_key_secret_file {
        Some(file) => read_secret_file(file)?,
        None => match env("STRONGROOM_ACCESS_KEY_SECRET")
            .or_else(|| env("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
        {
            Some(secret) => Zeroizing::new(secret),
            None => profile.access_key_secret.clone().ok_or_else(|| {
                "no AccessKey secret: give --access-key-secret-file, set \
                 STRONGROOM_ACCESS_KEY_SECRET, or use a profile"
                    .to_owned()
            })?,
        },
    };
    Ok(Resolved {
        endpoint,
        transport,
        access_key_id,
        access_key_secret,
    })
}

fn read_secret_file(file: &Path) -> Result<Zeroizing<String>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?,
    );
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{} is empty", file.display()));
    }
    Ok(Zeroizing::new(secret.to_owned()))
}

fn relative_to(profile_file: Option<&Path>, path: &Path) -> PathBuf {
    match profile_file.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// Reads the profile `name` from the profile file; an absent default file is an empty
/// profile, an absent file named explicitly is an error.
fn load(file: Option<&Path>, name: Option<&str>) -> Result<Profile, String> {
    let (path, explicit) = match (file, env("STRONGROOM_PROFILE_FILE")) {
        (Some(file), _) => (file.to_path_buf(), true),
        (None, Some(file)) => (PathBuf::from(file), true),
        (None, None) => match std::env::var_os("HOME") {
            Some(home) => (PathBuf::from(home).join(".strongroom/profile.toml"), false),
            None => return Ok(Profile::default()),
        },
    };
    if !explicit && !path.exists() {
        if let Some(name) = name {
            return Err(format!(
                "profile {name:?} asked for, but there is no profile file {}",
                path.display()
            ));
        }
        return Ok(Profile::default());
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(&path)
            .map_err(|e| format!("profile file {}: {e}", path.display()))?,
    );
    warn_if_readable_by_others(&path);
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("profile file {}: {e}", path.display()))?;
    let sections = table.get("profile").and_then(toml::Value::as_table);
    let chosen = name.unwrap_or("default");
    let section = match sections.and_then(|s| s.get(chosen)) {
        Some(toml::Value::Table(section)) => section,
        Some(_) => {
            return Err(format!(
                "profile file {}: [profile.{chosen}] is not a table",
                path.display()
            ));
        }
        None if chosen == "default" => &table,
        None => {
            return Err(format!(
                "profile file {} has no [profile.{chosen}]",
                path.display()
            ));
        }
    };
    let string = |key: &str| -> Result<Option<String>, String> {
        match section.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!(
                "profile file {}: {key} must be a string",
                path.display()
            )),
        }
    };
    let insecure_http = match section.get("insecure_http") {
        None => None,
        Some(toml::Value::Boolean(b)) => Some(*b),
        Some(_) => {
            return Err(format!(
                "profile file {}: insecure_http must be true or false",
                path.display()
            ));
        }
    };
    Ok(Profile {
        endpoint: string("endpoint")?,
        ca_file: string("ca_file")?.map(PathBuf::from),
        server_name: string("server_name")?,
        insecure_http,
        access_key_id: string("access_key_id")?,
        access_key_secret: string("access_key_secret")?.map(Zeroizing::new),
        file: Some(path),
    })
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            eprintln!(
                "warning: the profile file {} can be read by others; chmod 600 it",
                path.display()
            );
        }
    }
}
