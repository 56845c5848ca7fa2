use clap::Parser;

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
