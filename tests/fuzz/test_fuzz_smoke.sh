#!/usr/bin/env bash
# test_fuzz_smoke.sh: every libFuzzer target of mk/fuzz.mk, built by `make test` (fuzz-build),
# replays its seeds and runs a few thousand fresh mutations from a random seed, in TAP for
# tests/run.sh. A harness that no longer builds, links or runs fails here rather than in the
# next long `make fuzz`. Targets are skipped, with the reason, where clang is not installed.
set -u
fuzz=${LQA_BUILD:-build}/fuzz
fix=tests/fixtures
targets=(shard ingest_text ingest_qaset safetensors state manifest config
         xml_html xml_docbook xml_jats xml_tei xml_mallard xml_mediawiki xml_epub)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seed=${LQA_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "# libFuzzer -seed=$seed (LQA_FUZZ_SEED=$seed repeats it)"

# The seed folders of target $1 (read only: libFuzzer writes new inputs to the first folder).
seeds_of() {
    case $1 in
    shard) mkdir -p "$work/shard" && "$fuzz/make_seeds" "$work/shard" >/dev/null && echo "$work/shard" ;;
    ingest_text) echo "$fix/text" ;;
    ingest_qaset) echo "$fix/qaset" ;;
    xml_html) echo "$fix/xml tests/fuzz/findings" ;;
    xml_epub) tests/fuzz/make_epub_seeds.sh "$work/epub" && echo "$work/epub" ;;
    xml_*) echo "$fix/xml" ;;
    *) echo "tests/fuzz/seeds/$1" ;;
    esac
}

n=0
for t in "${targets[@]}"; do
    n=$((n + 1))
    bin=$fuzz/fuzz_$t
    if [ ! -x "$bin" ]; then
        echo "ok $n # SKIP fuzz_$t: not built ($(command -v clang >/dev/null || echo 'clang is not installed; ')make fuzz-build)"
        continue
    fi
    mkdir -p "$work/new-$t"
    # shellcheck disable=SC2046 # seed folders are word lists on purpose
    if timeout 300 "$bin" -runs=3000 -seed="$seed" -max_len=4096 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -artifact_prefix="$fuzz/smoke-$t-" "$work/new-$t" $(seeds_of "$t") >"$work/log-$t" 2>&1; then
        echo "ok $n - fuzz_$t: seeds and 3000 mutations $(grep -o 'cov: [0-9]*' "$work/log-$t" | tail -1)"
    else
        tail -n 40 "$work/log-$t"
        echo "not ok $n - fuzz_$t: the failing input is $fuzz/smoke-$t-*; LQA_FUZZ_SEED=$seed repeats the run"
    fi
done
