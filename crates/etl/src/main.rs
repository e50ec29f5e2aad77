// Long runs allocate and free many batches from several threads; with the system allocator the
// resident size crept up with the length of the run (fragmentation across arenas), with mimalloc it
// stays flat.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    eventlake_etl::tune_allocator();
    eventlake_etl::main()
}
