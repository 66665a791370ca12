//! The `brief` binary: everything is in the library; this only hands over to `cli::main`.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    brief::cli::main()
}
