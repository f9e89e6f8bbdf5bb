//! `strongroom`: one binary for every role of a self-hosted dedicated KMS.

/// mimalloc: the KMS node's request path allocates small, short-lived buffers on many
/// threads, where it is measurably cheaper than the system allocator
/// (`docs/performance.md`, "Instance API").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    strongroom_cli::quiet_on_closed_stdout();
    strongroom_cli::strongroom()
}
