use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    bound_allocator();
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
    let result = runtime.block_on(quorum::cli::run(cli));
    // Tasks still holding models' handles end with the runtime; then the model workers
    // free their contexts before the process exits.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    quorum::engine::wait_for_workers(std::time::Duration::from_secs(10));
    match result {
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

/// glibc raises its mmap threshold after each large free, so a 1 MB request body or schema
/// afterwards lives on a heap that never shrinks, and every blocking thread may get an arena of
/// its own: resident memory then grows with the requests seen rather than the work in flight.
/// A fixed threshold returns large buffers to the OS, and one arena per core bounds the rest.
/// `MALLOC_MMAP_THRESHOLD_` / `MALLOC_ARENA_MAX` in the environment still win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_allocator() {
    const MMAP_THRESHOLD: libc::c_int = 256 * 1024;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    // SAFETY: mallopt only changes allocator parameters; it runs before any other thread starts.
    unsafe {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, cores as libc::c_int);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_allocator() {}
