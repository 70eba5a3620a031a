//! `switchmanctl`: the operators' companion to switchman (groups, hosts, crontabs and the
//! prefix data). The logic is in [`switchman::ctl`].

fn main() {
    // A bug of ours is an internal error (70) with one line, as for switchman.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("switchmanctl: internal error: {info}; please report this");
        std::process::exit(switchman::exit::INTERNAL.value);
    }));
    std::process::exit(switchman::ctl::main());
}
