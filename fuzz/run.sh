#!/usr/bin/env bash
# Runs fuzz targets for a bounded time each; fails on any crash, panic, overflow, timeout or
# out-of-memory. CI runs it briefly (.ci/run); a long local run uses the same script.
#
#   fuzz/run.sh SECONDS [TARGET...]     every target when none is named
#
# Works on the stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags; stable
# ships the AddressSanitizer runtime). Each target starts from fuzz/seeds/<target> plus what
# earlier runs kept in fuzz/corpus/<target> (not in git); a failing input is written to
# fuzz/artifacts/<target>/ and the reproduction command printed. FUZZ_TARGET_DIR sets the
# cargo target dir (default: cargo-fuzz's fuzz/target). At the end a table gives each
# target's executions and coverage (cov: edges, ft: features).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
export RUSTC_BOOTSTRAP=1
target_dir=(${FUZZ_TARGET_DIR:+--target-dir "$FUZZ_TARGET_DIR"})

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi

started=$SECONDS
cargo fuzz build "${target_dir[@]}"
echo "fuzz: built in $((SECONDS - started)) s; ${#targets[@]} targets × ${seconds} s"

logs=$(mktemp -d)
failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    if cargo fuzz run "${target_dir[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$logs/$t.log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$t")
        grep -E 'panicked at|ERROR: |SUMMARY|Test unit written' -A2 "$logs/$t.log" | head -20 || true
        echo "reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run $t fuzz/artifacts/$t/<file>"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$logs/$t.log" | tail -1)
    printf '%-16s %-6s execs %-10s %s\n' "$t" "$status" "${execs:-?}" "${cov:-?}" | tee -a "$logs/table"
done
echo "---- fuzz summary ($((SECONDS - started)) s)"
cat "$logs/table"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (logs in $logs)"
    exit 1
fi
awk '{s += $4} END {print "fuzz: total executions " s}' "$logs/table"
