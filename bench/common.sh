# bench/common.sh: what bench/api and bench/sender share (bash, sourced).
#
# On top of dev/lib.sh: a private state directory under $TMPDIR (removed at
# exit unless BENCH_KEEP=1), snapshots of the built programs (so that a
# rebuild in the tree during a run changes nothing that is measured; they
# come from BENCH_BUILD/src when set, another build of the same tree), wrk
# runs parsed into figures, and the RESULT lines printed at the end.

DLR_PROG=${DLR_PROG:-bench/$(basename "$0")}
. "$(dirname "${BASH_SOURCE[0]}")/../dev/lib.sh"

BENCH_DIR=$DLR_ROOT/bench
BENCH_SMOKE=${BENCH_SMOKE:-0}
BENCH_T=""
BENCH_RESULTS=""

# bench_args "$@": --smoke (or BENCH_SMOKE=1) selects the small counts.
bench_args() {
	local a
	for a in "$@"; do
		case $a in
		--smoke) BENCH_SMOKE=1 ;;
		-h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
		*) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
		esac
	done
}

# Stops what the run started, shows the results, removes the state.
bench_finish() {
	local rc=$?
	trap - EXIT
	set +e
	if [ -n "$BENCH_T" ]; then
		bench_stop_extra 2>/dev/null
		stack_stop "$BENCH_T" 2>/dev/null
	fi
	if [ -n "$BENCH_RESULTS" ] && [ -s "$BENCH_RESULTS.lines" ]; then
		echo
		cat "$BENCH_RESULTS.lines"
	fi
	if [ -n "$BENCH_T" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
			say "state kept in $BENCH_T"
		else
			rm -rf "$BENCH_T"
		fi
	fi
	exit "$rc"
}

# Scripts that start more than the stack redefine this.
bench_stop_extra() { :; }

# bench_init: the state directory, the snapshots, the build when missing.
bench_init() {
	install_deps
	if [ ! -x "$DLR_ROOT/src/dlrhook.fcgi" ] || [ ! -x "$DLR_ROOT/src/dlrhook-send" ] ||
	    [ ! -x "$DLR_ROOT/src/dlrhook-migrate" ]; then
		build incremental
	fi
	# Short: unix socket paths live under it.
	BENCH_T=$(mktemp -d "${TMPDIR:-/tmp}/dlrbench.XXXXXX")
	chmod 755 "$BENCH_T"
	trap bench_finish EXIT
	trap 'exit 130' INT TERM HUP
	mkdir -p "$BENCH_T/bin"
	cp "${BENCH_BUILD:-$DLR_ROOT}/src/dlrhook.fcgi" \
	    "${BENCH_BUILD:-$DLR_ROOT}/src/dlrhook-send" "$BENCH_T/bin/" ||
	    die "no programs to measure in ${BENCH_BUILD:-$DLR_ROOT}/src"
	chmod -R a+rX "$BENCH_T/bin"
	BENCH_RESULTS=$BENCH_T/results
	: > "$BENCH_RESULTS.lines"
}

# Overrides dev/lib.sh: the web servers run the snapshot, not the tree's
# binary, which may be rebuilt while we measure.
stage_app() {
	local dir=$1 data="$DLR_ROOT/apache"
	rm -rf "$dir/stage"
	mkdir -p "$dir/stage/data"
	cp "$BENCH_T/bin/dlrhook.fcgi" "$dir/stage/dlrhook.fcgi"
	cp -R "$data/errors" "$data"/*.lua "$dir/stage/data/"
	chmod -R a+rX "$dir/stage"
	STAGED_FCGI=$dir/stage/dlrhook.fcgi STAGED_DATADIR=$dir/stage/data
}

# result NAME VALUE: one figure, printed as "RESULT name=value" at the end.
result() {
	printf 'RESULT %s=%s\n' "$1" "$2" >> "$BENCH_RESULTS.lines"
}

# median [FILE]: of lines that start with a number (FILE or stdin), the
# line with the median first field (the lower middle one for an even
# count): the figures of the median round, where each line is a round.
median() {
	sort -g "$@" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'
}

# ratio A B: A / B with two decimals ("nan" when B is 0).
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.2f\n", a / b }'
}

# wrk_run ARGS...: wrk --latency with ARGS; sets WRK_RPS, WRK_P50, WRK_P99
# (milliseconds), WRK_N (requests), WRK_NON2XX (answers other than 2xx and
# 3xx), WRK_SOCKERR (socket errors: a server closing a keep-alive
# connection shows as a read error) and WRK_OVERTAKEN (404 and 409 that a
# script using bench/keys.lua counted: see there). Its output is kept in $BENCH_T/wrk.log.
wrk_run() {
	local out
	out=$(wrk --latency "$@" 2>&1) || { printf '%s\n' "$out" >&2; die "wrk failed"; }
	{ echo "### wrk $*"; printf '%s\n' "$out"; } >> "$BENCH_T/wrk.log"
	WRK_RPS=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
	WRK_P50=$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }' | wrk_ms)
	WRK_P99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }' | wrk_ms)
	WRK_N=$(printf '%s\n' "$out" | awk '/requests in/ { print $1 }')
	WRK_NON2XX=$(printf '%s\n' "$out" | awk '/Non-2xx or 3xx responses:/ { n += $NF } END { print n + 0 }')
	WRK_SOCKERR=$(printf '%s\n' "$out" | awk '/Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }')
	WRK_OVERTAKEN=$(printf '%s\n' "$out" | awk '/^Overtaken:/ { n += $2 + $4 } END { print n + 0 }')
	[ -n "$WRK_RPS" ] && [ -n "$WRK_P99" ] || { printf '%s\n' "$out" >&2; die "cannot read wrk's output"; }
}

# wrk's "1.23ms" / "850.00us" / "1.02s" on stdin as milliseconds.
wrk_ms() {
	awk '{ v = $1 + 0
		if ($1 ~ /us$/) v /= 1000
		else if ($1 ~ /ms$/) v = v
		else if ($1 ~ /m$/) v *= 60000
		else if ($1 ~ /s$/) v *= 1000
		printf "%.2f\n", v }'
}

# Distinct free ports: bench_ports N sets PORTS (an array).
bench_ports() {
	local n=$1 p seen=" "
	PORTS=()
	while [ ${#PORTS[@]} -lt "$n" ]; do
		p=$(free_port)
		case $seen in *" $p "*) continue ;; esac
		seen="$seen$p "
		PORTS+=("$p")
	done
}

# The machine, for the record.
bench_machine() {
	say "machine: $(nproc) cores, $(awk '/model name/ { $1 = $2 = $3 = ""; print; exit }' /proc/cpuinfo | sed 's/^ *//'), $(free -g | awk '/^Mem:/ { print $2 }') GiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# tree_cpu PID...: CPU seconds used so far by these processes and all their
# descendants, those already reaped included (cutime and cstime).
tree_cpu() {
	python3 - "$@" <<'PY'
import os, sys
kids = {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        with open(f"/proc/{p}/stat") as f:
            st = f.read()
    except OSError:
        continue
    fields = st[st.rindex(")") + 2:].split()
    kids.setdefault(int(fields[1]), []).append((int(p), fields))
stats = {p: f for l in kids.values() for p, f in l}
todo, seen, ticks = [int(a) for a in sys.argv[1:] if a], set(), 0
while todo:
    p = todo.pop()
    if p in seen or p not in stats:
        continue
    seen.add(p)
    f = stats[p]
    ticks += sum(int(x) for x in f[11:15])	# utime stime cutime cstime
    todo += [c for c, _ in kids.get(p, [])]
print(f"{ticks / os.sysconf('SC_CLK_TCK'):.2f}")
PY
}

# The postmaster of the private cluster in DIR.
pg_pid() { head -n 1 "$1/pg/data/postmaster.pid"; }
