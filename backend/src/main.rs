use clap::Parser;

/// mimalloc: the ingest path allocates many small, short-lived buffers per request and glibc
/// malloc showed up as ~20 % of worker CPU in the collect benchmark.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    // One TLS crypto provider for every client library (see shared/spec/rust-stack.md G4).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = ghosttrack::cli::Cli::parse();
    if let Err(error) = ghosttrack::cli::run(cli).await {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
