//! The `postie` binary: everything lives in the library; this only hands over the
//! process arguments and turns the outcome into the process exit status.

fn main() -> std::process::ExitCode {
    postie::app::main(std::env::args_os().collect())
}
