//! `hsm_certificate_generate -dir ./certs -pswd 12345678`: the guide's certificate tool.

fn main() -> std::process::ExitCode {
    strongroom_cli::hsm_certificate_generate()
}
