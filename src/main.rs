use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = quorum::cli::Cli::parse();
    let default = match cli.verbose {
        0 => "info,llama_cpp_2=warn,llama-cpp-2=warn",
        1 => "debug,llama_cpp_2=info,hyper=info,h2=info,reqwest=info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Logs go to stderr: stdout carries answers (`chat`) and the bound address (`serve`).
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(quorum::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
