# Shared by the bench scripts (sourced): build once, start and stop an emulator.
# Needs $root set to the repository root.

# bench_setup: build, make a scratch directory ($work), and clean both it and any emulator
# up on exit.
bench_setup() {
    "$root/scripts/build.sh" "$root/build" >/dev/null
    work=$(mktemp -d)
    trap 'stop_emulator; rm -rf "$work"' EXIT
}

# start_emulator DIR [emulator flags...]: starts `prefsync emulator` on a free loopback
# port; sets emu_pid and addr (HOST:PORT, the emulator's first output line).
start_emulator() {
    local dir=$1
    shift
    rm -f "$dir/addr"
    "$root/build/prefsync" emulator --listen 127.0.0.1:0 "$@" > "$dir/addr" 2>/dev/null &
    emu_pid=$!
    for _ in $(seq 100); do [ -s "$dir/addr" ] && break; sleep 0.1; done
    addr=$(head -1 "$dir/addr")
    [ -n "$addr" ] || { echo "the emulator did not start" >&2; return 1; }
}

stop_emulator() {
    [ -n "${emu_pid:-}" ] || return 0
    kill "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
    emu_pid=
}
