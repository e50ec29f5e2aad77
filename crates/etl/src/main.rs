fn main() -> std::process::ExitCode {
    eventlake_etl::cli::main()
}
