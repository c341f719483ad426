use clap::Parser;

fn main() {
    let cli = appraise::cli::Cli::parse();
    std::process::exit(appraise::cli::run(cli));
}
