//! Ctrl-C: the first one asks appraise to stop cleanly (training stops at the next step, no
//! file is left half-written, exit code 130); the default behaviour is restored for a second.
//! The library never catches signals: the CLI holds the process's [`Cancel`] and passes it
//! into every run it starts.

use std::sync::OnceLock;

use appraise::runtime::cancel::Cancel;

static CANCEL: OnceLock<Cancel> = OnceLock::new();

/// The process's stop flag: set by Ctrl-C or SIGTERM once [`install`] has run.
pub fn cancel() -> Cancel {
    CANCEL.get_or_init(Cancel::new).clone()
}

/// Catches Ctrl-C (SIGINT) and SIGTERM from now on. Safe to call more than once.
pub fn install() {
    let flag = cancel().flag();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal after the flag is set terminates at once, as users expect.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone());
        let _ = signal_hook::flag::register(signal, flag.clone());
    }
}
