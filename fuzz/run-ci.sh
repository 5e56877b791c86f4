#!/usr/bin/env bash
# CI lane for the fuzz targets: build them with cargo-fuzz on nightly, then run each for
# FUZZ_SECONDS (30 by default) from the committed seeds. Fails when any target crashes, panics
# on an invariant, times out on one input or runs out of memory; the input that did it is left
# in fuzz/artifacts/<target>/ and printed.
#
#   fuzz/run-ci.sh                 # every target, 30 s each
#   FUZZ_SECONDS=600 fuzz/run-ci.sh cookie_header
set -euo pipefail
cd "$(dirname "$0")"

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

seconds="${FUZZ_SECONDS:-30}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(payload_decode cookie_header cookie_open)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

start=$(date +%s)
# Every target, with cargo-fuzz's defaults (release, debug assertions, AddressSanitizer), into
# fuzz/target: the workspace's target directory is never touched.
cargo +nightly fuzz build
echo "fuzz: build took $(($(date +%s) - start)) s"

failed=()
for t in "${targets[@]}"; do
  case "$t" in
    payload_decode) dict=dict/json.dict ;;
    *) dict=dict/cookie.dict ;;
  esac
  # New inputs go to a scratch directory: the committed seed directory stays as it is.
  scratch="$(mktemp -d)"
  log="$(mktemp)"
  echo "fuzz: $t for ${seconds} s"
  if cargo +nightly fuzz run "$t" "$scratch" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -dict="$dict" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|#[0-9]+[[:space:]]+DONE)' "$log" || true
  else
    echo "fuzz: $t FAILED"
    tail -n 60 "$log"
    failed+=("$t")
  fi
  rm -rf "$scratch" "$log"
done

echo "fuzz: total $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failing targets: ${failed[*]} (reproduce: cd fuzz && cargo +nightly fuzz run <target> artifacts/<target>/<file>)"
  exit 1
fi
