//! The `brief` binary: everything is in the library; this only hands over to `cli::main`.

fn main() -> std::process::ExitCode {
    brief::cli::main()
}
