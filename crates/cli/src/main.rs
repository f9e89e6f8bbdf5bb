//! `strongroom`: one binary for every role of a self-hosted dedicated KMS.

fn main() -> std::process::ExitCode {
    strongroom_cli::strongroom()
}
