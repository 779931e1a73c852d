#!/bin/bash
# tests/fuzz/run.sh: builds the libFuzzer targets (clang, ASan + UBSan) in a
# build directory of their own and runs each for SECONDS on a copy of its
# seed corpus, so that the repository is never written to. A crash, leak,
# sanitizer report, broken invariant or timeout fails the target; its input
# is kept under BUILDDIR/artifacts. The last line is "N passed, N failed"
# over the targets; the exit status is non-zero on any failure.
#
# usage: tests/fuzz/run.sh SECONDS [BUILDDIR]
#   BUILDDIR  default _build-fuzz in the source tree (ignored by git)
#
# The source tree is used as it is in the working tree, uncommitted changes
# included: in a git checkout its files are copied to BUILDDIR/tree (a tree
# configured in place cannot host a VPATH build), elsewhere (an unpacked
# tarball) it is built from directly. Needs clang and libclang-rt-14-dev.
set -u

usage() { echo "usage: tests/fuzz/run.sh SECONDS [BUILDDIR]" >&2; exit 2; }
say() { printf 'fuzz: %s\n' "$*" >&2; }

[ $# -ge 1 ] && [ $# -le 2 ] || usage
secs=$1
[[ $secs =~ ^[1-9][0-9]*$ ]] || usage
src=$(cd "$(dirname "$0")/../.." && pwd -P)
build=${2:-$src/_build-fuzz}
mkdir -p "$build" || exit 1
build=$(cd "$build" && pwd -P)

targets=""
for f in "$src"/tests/fuzz/fuzz_*.c; do
	[ -f "$f" ] || continue
	t=${f##*/fuzz_}
	targets="$targets ${t%.c}"
done
[ -n "$targets" ] || { say "no targets in $src/tests/fuzz"; exit 1; }
ntargets=$(echo $targets | wc -w)

passed=0 failed=0
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# ---------------------------------------------------------------------------
# build

# Copies the working tree's files (tracked, and untracked but not ignored)
# to DEST, keeping their times so that make rebuilds only what changed.
snapshot() {
	local from=$1 dest=$2
	mkdir -p "$dest" &&
	git -C "$from" ls-files -z --cached --others --exclude-standard |
	    while IFS= read -r -d '' f; do
		[ -f "$from/$f" ] && printf '%s\0' "$f"
	    done |
	    tar -C "$from" --null -T - -cf - |
	    tar -C "$dest" -xf -
}

build_fuzzers() {
	local tree obj n
	if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		tree=$build/tree
		obj=$build/obj
		snapshot "$src" "$tree" || return 1
		if [ ! -x "$tree/configure" ]; then
			say "autoreconf -fi (in $tree)"
			(cd "$tree" && autoreconf -fi) || return 1
		fi
	else
		tree=$src
		obj=$build
		if [ -f "$src/config.status" ]; then
			say "$src is configured in place; run 'make distclean' there"
			return 1
		fi
	fi
	mkdir -p "$obj" || return 1
	if [ ! -f "$obj/Makefile" ]; then
		say "configure --enable-fuzzing CC=clang (in $obj)"
		(cd "$obj" && "$tree/configure" -q --enable-fuzzing CC=clang) ||
		    return 1
	fi
	say "make (in $obj)"
	if ! make -C "$obj" -j"$(nproc 2>/dev/null || echo 2)" \
	    >"$build/build.log" 2>&1; then
		tail -n 40 "$build/build.log"
		return 1
	fi
	n=$(grep -c 'warning:' "$build/build.log")
	[ "$n" -eq 0 ] || say "$n compiler warnings: see $build/build.log"
	bindir=$obj/tests/fuzz
}

bindir=""
if ! build_fuzzers; then
	say "the fuzzing build failed"
	failed=$ntargets
	finish
	exit 1
fi

# ---------------------------------------------------------------------------
# run

work=$(mktemp -d "${TMPDIR:-/tmp}/dlrhook-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP
artifacts=$build/artifacts
mkdir -p "$artifacts"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
for s in llvm-symbolizer llvm-symbolizer-14; do
	if command -v "$s" >/dev/null; then
		export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v "$s")}
		break
	fi
done

for t in $targets; do
	bin=$bindir/fuzz_$t
	log=$work/$t.log
	if [ ! -x "$bin" ]; then
		echo "not ok - fuzz_$t: not built"
		failed=$((failed + 1))
		continue
	fi
	mkdir -p "$work/corpus-$t"
	if [ -d "$src/tests/fuzz/corpus/$t" ]; then
		cp -R "$src/tests/fuzz/corpus/$t/." "$work/corpus-$t/"
	fi
	dict=()
	[ ! -f "$src/tests/fuzz/dict/$t.dict" ] ||
	    dict=("-dict=$src/tests/fuzz/dict/$t.dict")
	rc=0
	"$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
	    "${dict[@]}" "$work/corpus-$t" >"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		echo "ok - fuzz_$t: ${runs:-?} runs in ${secs}s, ${cov:-no coverage line}"
		passed=$((passed + 1))
	else
		echo "not ok - fuzz_$t: exit $rc after ${runs:-?} runs"
		grep -E 'ERROR|invariant violated|runtime error|SUMMARY|Test unit written' \
		    "$log" | head -n 20
		echo "--- last lines of its log"
		tail -n 40 "$log"
		for a in $(sed -n 's/.*Test unit written to //p' "$log"); do
			echo "reproduce: $bin $a"
		done
		failed=$((failed + 1))
	fi
done
finish
