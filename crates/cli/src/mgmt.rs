//! The management API's client commands: `instance`, `hsm-cluster`, `vpc`,
//! `access-key`, `key`, `alias`, `network-rule`, `policy`, `aap`, `client-key` and `secret`. Each turns its arguments into one or a few calls of
//! `strongroom_server::client::ManagementClient` and prints the answer readably (or, with
//! `--json`, as it came).

pub mod aap;
pub mod access;
pub mod access_key;
pub mod alias;
pub mod cluster;
pub mod instance;
pub mod key;
mod profile;
pub mod secret;
pub mod vpc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;
use strongroom_server::client::{ClientError, Credentials, ManagementClient, SignatureScheme};

/// Printed under the `--help` of every client command.
pub const CONNECTION_HELP: &str = "\
Connection and credentials, first found wins:
  1. flags: --endpoint, --ca-file (or --insecure-http), --access-key-id,
     --access-key-secret-file (the secret is never taken as a flag value);
  2. environment: STRONGROOM_ENDPOINT, STRONGROOM_CA_FILE, STRONGROOM_INSECURE_HTTP=1,
     STRONGROOM_ACCESS_KEY_ID, STRONGROOM_ACCESS_KEY_SECRET (also ALIBABA_CLOUD_ACCESS_KEY_ID
     and ALIBABA_CLOUD_ACCESS_KEY_SECRET);
  3. the profile file: --profile-file, else STRONGROOM_PROFILE_FILE, else
     ~/.strongroom/profile.toml (written by `strongroom init --write-profile`), section
     [profile.NAME] chosen by --profile (default \"default\"; without sections the
     top-level keys are the default profile):

       [profile.default]
       endpoint = \"127.0.0.1:8443\"
       ca_file = \"/path/to/strongroom-data/management-ca.pem\"
       # insecure_http = true      (plain HTTP to a loopback node instead of ca_file)
       # server_name = \"kms.example\"
       access_key_id = \"…\"
       access_key_secret = \"…\"

The endpoint defaults to 127.0.0.1:8443. API errors print `Code: Message (request id)`
on stderr and exit with status 1.";

/// Where the management API is and who calls it; plus `--json`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection and output")]
pub struct ConnectArgs {
    /// The management API, HOST:PORT.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    endpoint: Option<String>,
    /// The management CA file to trust (`<data dir>/management-ca.pem`).
    #[arg(long, global = true, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// The name to check the server certificate against (default: the endpoint's host).
    #[arg(long, global = true, value_name = "NAME")]
    server_name: Option<String>,
    /// Plain HTTP (a node started with --insecure-http on loopback).
    #[arg(long, global = true)]
    insecure_http: bool,
    /// The AccessKey id.
    #[arg(long, global = true, value_name = "ID")]
    access_key_id: Option<String>,
    /// A file holding the AccessKey secret.
    #[arg(long, global = true, value_name = "FILE")]
    access_key_secret_file: Option<PathBuf>,
    /// The profile file (default $STRONGROOM_PROFILE_FILE or ~/.strongroom/profile.toml).
    #[arg(long, global = true, value_name = "FILE")]
    profile_file: Option<PathBuf>,
    /// The profile's name.
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    /// Sign with v1 HMAC-SHA1 instead of ACS3-HMAC-SHA256.
    #[arg(long, global = true)]
    v1_signature: bool,
    /// Seconds one call may take.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    timeout_secs: u64,
    /// Print the API's JSON answer as it came.
    #[arg(long, global = true)]
    json: bool,
}

/// `--page` and `--page-size` of the list commands.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// The page, from 1.
    #[arg(long, value_name = "N", default_value_t = 1)]
    page: u32,
    /// Entries per page, 1 to 100.
    #[arg(long, value_name = "N", default_value_t = 20)]
    page_size: u32,
}

impl PageArgs {
    fn params(&self) -> [(&'static str, String); 2] {
        [
            ("PageNumber", self.page.to_string()),
            ("PageSize", self.page_size.to_string()),
        ]
    }
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The API refused.
    Api {
        /// Its code.
        code: String,
        /// Its message.
        message: String,
        /// The request id.
        request_id: String,
    },
    /// Anything else, said plainly.
    Other(String),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api {
                code,
                message,
                request_id,
                ..
            } => Self::Api {
                code,
                message,
                request_id,
            },
            other => Self::Other(other.to_string()),
        }
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Self::Other(e)
    }
}

/// A connected command: the client, the runtime it runs on, and the output style.
#[derive(Debug)]
pub struct Session {
    client: ManagementClient,
    runtime: tokio::runtime::Runtime,
    /// Print raw JSON.
    pub json: bool,
}

impl Session {
    /// Calls `action`.
    ///
    /// # Errors
    /// [`Failure::Api`] for a refusal, [`Failure::Other`] when the node is unreachable.
    pub fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<Value, Failure> {
        Ok(self.runtime.block_on(self.client.call(action, params))?)
    }

    /// Calls `action` with owned parameter values.
    ///
    /// # Errors
    /// As [`Session::call`].
    pub fn call_owned(&self, action: &str, params: &[(&str, String)]) -> Result<Value, Failure> {
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
        self.call(action, &borrowed)
    }

    /// Prints `value` as JSON if `--json` was given; returns whether it did.
    pub fn printed_json(&self, value: &Value) -> bool {
        if self.json {
            print_json(value);
        }
        self.json
    }
}

pub fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(_) => println!("{value}"),
    }
}

/// Connects as `connect` says and runs `body`; maps its outcome to an exit status.
pub fn run(connect: &ConnectArgs, body: impl FnOnce(&Session) -> Result<(), Failure>) -> ExitCode {
    let outcome = session(connect)
        .map_err(Failure::Other)
        .and_then(|s| body(&s));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Api {
            code,
            message,
            request_id,
        }) => {
            eprintln!("{code}: {message} (request {request_id})");
            ExitCode::FAILURE
        }
        Err(Failure::Other(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn session(connect: &ConnectArgs) -> Result<Session, String> {
    let resolved = profile::resolve(connect)?;
    let client = ManagementClient::new(
        &resolved.endpoint,
        resolved.transport,
        Credentials {
            access_key_id: resolved.access_key_id,
            access_key_secret: resolved.access_key_secret,
        },
    )
    .map_err(|e| e.to_string())?
    .with_scheme(if connect.v1_signature {
        SignatureScheme::V1
    } else {
        SignatureScheme::Acs3
    })
    .with_timeout(Duration::from_secs(connect.timeout_secs.max(1)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(Session {
        client,
        runtime,
        json: connect.json,
    })
}

/// The value at `path` (object keys) in `value`.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// The value at `path` as text: strings as they are, numbers and booleans printed,
/// arrays joined by `,`, `-` when absent, null or empty.
pub fn text(value: &Value, path: &[&str]) -> String {
    let shown = match at(value, path) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    };
    if shown.is_empty() {
        "-".to_owned()
    } else {
        shown
    }
}

/// The array at `path`, empty when absent.
pub fn list<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Prints the paging line of a list answer.
pub fn print_paging(answer: &Value, shown: usize) {
    println!(
        "({shown} shown; page {} of size {}, {} in total)",
        text(answer, &["PageNumber"]),
        text(answer, &["PageSize"]),
        text(answer, &["TotalCount"])
    );
}

/// Prints `label` and the value at `path`, aligned.
pub fn field(value: &Value, label: &str, path: &[&str]) {
    println!("{label:<22}{}", text(value, path));
}
