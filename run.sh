#!/usr/bin/env bash
# The project's two entry points, each installing what it needs (idempotently):
#
#   ./run.sh demo [ARGS…]   build cairn (release) and run `cairn demo ARGS…`
#   ./run.sh test           the whole test suite: rustfmt and clippy (warnings are
#                           errors), cargo test, rustdoc (warnings are errors), then the
#                           status page in headless Chromium
#
# Both first make sure .venv holds torch 2.11.0 (libtorch for tch, from PyPI; pip's
# cache makes a re-install fast), then build with LIBTORCH_USE_PYTORCH=1. The cairn
# binary carries an rpath to that libtorch: no LD_LIBRARY_PATH needed to run it.
set -euo pipefail
cd "$(dirname "$0")"

# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh

cmd=${1:-}
shift || true
case "$cmd" in
    demo)
        cargo build --release --locked -p cairn
        exec ./target/release/cairn demo "$@"
        ;;
    test)
        # A clean clone gains nothing from incremental artefacts (they were half of
        # the test build's disk); cargo's registry cache in ~ is what CI keeps.
        export CARGO_INCREMENTAL=0
        # The workspace lints hold the line: formatting, then clippy with every warning
        # an error (before the long test build, so a lint fails CI in minutes).
        cargo fmt --all --check
        cargo clippy --workspace --all-targets --locked -- -D warnings
        cargo test --workspace --locked "$@"
        RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
        # The coordinator's status page in a real headless browser (installs Debian's
        # chromium when missing); uses the debug binary the tests just built.
        scripts/status-page-check.sh
        ;;
    *)
        echo "usage: ./run.sh demo [ARGS…] | ./run.sh test" >&2
        exit 2
        ;;
esac
