# dev/lib.sh: shared functions of dev/up, dev/down and dev/test (bash).
#
# Sourced, not run. Every service it starts lives in a state directory of
# its own (a private PostgreSQL cluster, Apache, lighttpd), listens on
# 127.0.0.1 only, and is stopped by the pid it recorded; nothing here touches
# the system's own services or configs. When run as root, PostgreSQL runs as
# the postgres user and the web servers as www-data.

set -eu

DLR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DLR_PG_BIN=/usr/lib/postgresql/15/bin
DLR_APACHE_MODULES=/usr/lib/apache2/modules
DLR_WEB_USER=www-data
DLR_PROG=${DLR_PROG:-$(basename "$0")}

# Debian packages: build, run, test and benchmark.
DLR_PACKAGES="build-essential autoconf automake pkg-config
	libfcgi-dev libjson-c-dev libpq-dev libcurl4-openssl-dev libssl-dev
	libcmocka-dev
	postgresql postgresql-15 postgresql-client-15
	apache2 libapache2-mod-fcgid lighttpd lighttpd-modules-lua media-types
	curl python3 procps wrk util-linux
	clang libclang-rt-14-dev llvm-14 valgrind openssl ca-certificates
	nginx apache2-utils time gnuplot-nox"

say() { printf '%s: %s\n' "$DLR_PROG" "$*" >&2; }
die() { say "error: $*"; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as USER (root only; otherwise as ourselves), from /, so a
# working directory that user cannot enter does not get in the way.
as_user() {
	local user=$1; shift
	if is_root; then
		(cd / && runuser -u "$user" -- "$@")
	else
		(cd / && "$@")
	fi
}

# ---------------------------------------------------------------------------
# waiting

# wait_until SECONDS WHAT COMMAND...: polls COMMAND until it succeeds; fails
# with a message after SECONDS.
wait_until() {
	local limit=$1 what=$2; shift 2
	local end=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$end" ]; then
			say "timed out after ${limit}s waiting for $what"
			return 1
		fi
		sleep 0.2
	done
}

http_answers() { curl -s -o /dev/null --max-time 2 "$1"; }
pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
pid_gone() { ! pid_alive "$1"; }

# The pid in FILE if that process is still running and its command line
# mentions MARK (guards against a stale file and a recycled pid).
pid_of() {
	local file=$1 mark=$2 pid
	[ -s "$file" ] || return 1
	pid=$(head -n 1 "$file" | tr -dc 0-9)
	pid_alive "$pid" || return 1
	tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$mark" || return 1
	printf '%s\n' "$pid"
}

# stop_pid PID WHAT [SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
	local pid=$1 what=$2 limit=${3:-20}
	kill -TERM "$pid" 2>/dev/null || return 0
	if ! wait_until "$limit" "$what to exit" pid_gone "$pid"; then
		say "killing $what (pid $pid)"
		kill -KILL "$pid" 2>/dev/null || true
		wait_until 5 "$what to die" pid_gone "$pid" || true
	fi
}

# A free TCP port on 127.0.0.1 (the kernel picks it; fine for tests).
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Fails if something already listens on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------
# packages and build

# Installs the missing Debian packages (apt-get update once, only if needed).
# Not root: lists what is missing and fails.
install_deps() {
	local missing="" p
	for p in $DLR_PACKAGES; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
		    grep -q '^install ok installed$' || missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	if ! is_root; then
		die "missing Debian packages; install them with:
    sudo apt-get install -y$missing"
	fi
	say "installing:$missing"
	# Keep the packages' own services (apache2, lighttpd, postgresql on the
	# standard ports) from starting during the install: we run our own.
	local policy=/usr/sbin/policy-rc.d added=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy"
		chmod 755 "$policy"
		added=1
	fi
	local rc=0
	{ DEBIAN_FRONTEND=noninteractive apt-get update -q &&
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing; } || rc=$?
	[ -z "$added" ] || rm -f "$policy"
	[ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
}

# build full|incremental [configure flags...]: full runs autoreconf and
# configure first; incremental does so only when the tree is not configured.
build() {
	local mode=$1; shift
	(
		cd "$DLR_ROOT"
		if [ "$mode" = full ] || [ ! -f Makefile ]; then
			say "autoreconf -fi && ./configure $*"
			autoreconf -fi
			./configure -q "$@"
		fi
		say "make -j2"
		make -j2
	)
}

# ---------------------------------------------------------------------------
# state directories

# The root of all state: .run in the checkout, unless the service users
# cannot reach it or its path is too long for unix sockets (sun_path holds
# 107 bytes); then a directory under /var/tmp named after the checkout.
# .run/state points there either way.
state_root() {
	local base="$DLR_ROOT/.run" ok=1
	mkdir -p "$base"
	if is_root; then
		as_user postgres test -x "$DLR_ROOT/." || ok=0
		as_user "$DLR_WEB_USER" test -x "$DLR_ROOT/." || ok=0
	fi
	[ ${#DLR_ROOT} -le 48 ] || ok=0
	if [ $ok -eq 0 ]; then
		local h
		h=$(printf '%s' "$DLR_ROOT" | cksum | cut -d' ' -f1)
		base=/var/tmp/dlrhook-$h
		mkdir -p "$base"
		[ -O "$base" ] && [ ! -L "$base" ] || die "$base is not ours"
		ln -sfn "$base" "$DLR_ROOT/.run/state"
	fi
	chmod 755 "$base"
	printf '%s\n' "$base"
}

# The program and the web server data (apache/errors, the Lua hooks) as
# the web server user can reach them: in the checkout when it can, else
# copied under DIR (refreshed each start). Sets STAGED_FCGI, STAGED_DATADIR.
# DLRHOOK_FCGI_BIN serves another build of the program (dev/test: ASan).
stage_app() {
	local dir=$1 fcgi="${DLRHOOK_FCGI_BIN:-$DLR_ROOT/src/dlrhook.fcgi}"
	local data="$DLR_ROOT/apache"
	[ -x "$fcgi" ] || die "$fcgi is missing: build first"
	if is_root && ! as_user "$DLR_WEB_USER" test -x "$fcgi" -a -r "$data/errors/413.html"; then
		rm -rf "$dir/stage"
		mkdir -p "$dir/stage/data"
		cp "$fcgi" "$dir/stage/dlrhook.fcgi"
		cp -R "$data/errors" "$data"/*.lua "$dir/stage/data/"
		chmod -R a+rX "$dir/stage"
		fcgi="$dir/stage/dlrhook.fcgi" data="$dir/stage/data"
	fi
	STAGED_FCGI=$fcgi STAGED_DATADIR=$data
}

# The generated server config shipped to users, brought up to date by make.
shipped_conf() {
	make -s -C "$DLR_ROOT" "apache/$1" >/dev/null
	printf '%s\n' "$DLR_ROOT/apache/$1"
}

# ---------------------------------------------------------------------------
# PostgreSQL: a private cluster in DIR/pg, listening on 127.0.0.1:PORT and a
# socket in DIR/pg, trusting every local connection (dev and tests only).

pg_ctl_cmd() { # pg_ctl_cmd DIR start|stop: the command as one shell string
	local dir=$1 data="$1/pg/data" cmd
	case $2 in
	start) cmd=$(printf '%q ' "$DLR_PG_BIN/pg_ctl" -D "$data" -l "$dir/pg/postgresql.log" -w -t 60 start) ;;
	stop) cmd=$(printf '%q ' "$DLR_PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop) ;;
	esac
	if is_root; then
		printf 'cd / && runuser -u postgres -- %s\n' "$cmd"
	else
		printf 'cd / && %s\n' "$cmd"
	fi
}

pg_running() {
	[ -f "$1/pg/data/PG_VERSION" ] &&
	    as_user postgres "$DLR_PG_BIN/pg_ctl" -D "$1/pg/data" status >/dev/null 2>&1
}

# pg_start DIR PORT [fast]: creates the cluster if needed, (re)writes its
# settings, starts it, creates database dlrhook and migrates it. "fast"
# turns off fsync (test clusters: a crash loses nothing we keep).
pg_start() {
	local dir=$1 port=$2 fast=${3:-} pg="$1/pg"
	mkdir -p "$pg"
	if [ ! -f "$pg/data/PG_VERSION" ]; then
		say "initdb $pg/data"
		rm -rf "$pg/data"
		if is_root; then chown postgres: "$pg"; fi
		as_user postgres "$DLR_PG_BIN/initdb" -D "$pg/data" -U postgres \
		    -A trust -E UTF8 --locale=C.UTF-8 >"$pg/initdb.log" 2>&1 ||
		    { cat "$pg/initdb.log" >&2; die "initdb failed"; }
		as_user postgres sh -c 'printf "%s\n" "include_if_exists = '\''dlrhook.conf'\''" >> "$1/postgresql.conf"' sh "$pg/data"
	fi
	if is_root; then chown postgres: "$pg"; fi
	# Written each start, so a new port takes effect.
	local settings
	settings="# written by dev/lib.sh at each start
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pg'
max_connections = 100
log_line_prefix = '%m [%p] %u@%d '
log_min_messages = warning"
	[ "$fast" != fast ] || settings="$settings
fsync = off
synchronous_commit = off
full_page_writes = off"
	printf '%s\n' "$settings" | as_user postgres sh -c 'cat > "$1"' sh "$pg/data/dlrhook.conf"
	printf '%s\n' "# written by dev/lib.sh: trust on the private socket and loopback only" \
	    "local all all trust" "host all all 127.0.0.1/32 trust" |
	    as_user postgres sh -c 'cat > "$1"' sh "$pg/data/pg_hba.conf"

	if ! pg_running "$dir"; then
		port_free "$port" || die "port $port is in use (PostgreSQL)"
		say "starting PostgreSQL on 127.0.0.1:$port"
		sh -c "$(pg_ctl_cmd "$dir" start)" >/dev/null ||
		    { tail -n 20 "$pg/postgresql.log" >&2; die "PostgreSQL did not start"; }
	fi
	local psql=("$DLR_PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres)
	if [ -z "$("${psql[@]}" -d postgres -At -c "SELECT 1 FROM pg_database WHERE datname = 'dlrhook'")" ]; then
		"$DLR_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres dlrhook
	fi
	[ -x "$DLR_ROOT/src/dlrhook-migrate" ] || die "src/dlrhook-migrate is missing: build first"
	env -u DLRHOOK_DATABASE PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres \
	    PGDATABASE=dlrhook "$DLR_ROOT/src/dlrhook-migrate" >"$pg/migrate.log" 2>&1 ||
	    { cat "$pg/migrate.log" >&2; die "dlrhook-migrate failed"; }
}

pg_stop() {
	local dir=$1
	pg_running "$dir" || return 0
	say "stopping PostgreSQL"
	sh -c "$(pg_ctl_cmd "$dir" stop)" >/dev/null || say "pg_ctl stop failed"
}

# psql as the cluster's superuser: pg_sql DIR PORT SQL
pg_sql() {
	"$DLR_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$2" \
	    -U postgres -d dlrhook -c "$3"
}

# The conninfo of a role of the private cluster.
pg_conninfo() { printf 'host=127.0.0.1 port=%s dbname=dlrhook user=%s\n' "$1" "$2"; }

# ---------------------------------------------------------------------------
# Apache + mod_fcgid: a minimal server config in DIR/apache that includes
# the shipped apache/dlrhook-apache.conf.

# apache_start DIR PORT PGPORT [PREFIX] [ALLOW_PRIVATE(0|1)]
apache_start() {
	local dir=$1 port=$2 pgport=$3 prefix=${4:-} private=${5:-0}
	local d="$dir/apache" conf
	conf=$(shipped_conf dlrhook-apache.conf)
	port_free "$port" || die "port $port is in use (Apache)"
	mkdir -p "$d/htdocs" "$d/ipc"
	chmod 755 "$d" "$d/htdocs"
	if is_root; then chown "$DLR_WEB_USER:" "$d/ipc"; fi
	stage_app "$d"
	{
		echo "# written by dev/lib.sh: the server around the shipped config"
		echo "ServerRoot \"$d\""
		echo "ServerName 127.0.0.1"
		echo "Listen 127.0.0.1:$port"
		echo "PidFile \"$d/httpd.pid\""
		echo "DefaultRuntimeDir \"$d\""
		echo "ErrorLog \"$d/error.log\""
		echo "LogLevel warn"
		echo "LogFormat \"%h %t \\\"%r\\\" %>s %b %Dus\" dlrhook"
		echo "CustomLog \"$d/access.log\" dlrhook"
		for m in mpm_event authz_core mime alias headers fcgid lua; do
			echo "LoadModule ${m}_module $DLR_APACHE_MODULES/mod_$m.so"
		done
		if is_root; then
			echo "User $DLR_WEB_USER"
			echo "Group $DLR_WEB_USER"
		fi
		# 24 request threads in one process against mod_fcgid's pool of
		# 24: a request then always finds an idle process and waits in
		# Apache's queue, never in mod_fcgid's one-second sleep, and 16 busy
		# clients do not make mpm_event close kept-alive connections (see
		# dlrhook-apache.conf).
		echo "StartServers 1"
		echo "ServerLimit 1"
		echo "ThreadLimit 24"
		echo "ThreadsPerChild 24"
		echo "MaxRequestWorkers 24"
		echo "MinSpareThreads 1"
		echo "MaxSpareThreads 24"
		echo "TypesConfig /etc/mime.types"
		echo "DocumentRoot \"$d/htdocs\""
		echo "<Directory />"
		echo "    AllowOverride None"
		echo "    Require all denied"
		echo "</Directory>"
		# Granted, so mod_fcgid's PATH_TRANSLATED lookups stay out of the log.
		echo "<Directory \"$d/htdocs\">"
		echo "    Require all granted"
		echo "</Directory>"
		echo "FcgidIPCDir \"$d/ipc\""
		echo "FcgidProcessTableFile \"$d/ipc/shm\""
		echo "Define DLRHOOK_FCGI \"$STAGED_FCGI\""
		echo "Define DLRHOOK_DATADIR \"$STAGED_DATADIR\""
		echo "Define DLRHOOK_DATABASE \"$(pg_conninfo "$pgport" dlrhook_api)\""
		[ -z "$prefix" ] || echo "Define DLRHOOK_PREFIX \"$prefix\""
		[ "$private" != 1 ] || echo "Define DLRHOOK_ALLOW_PRIVATE"
		echo "Include \"$conf\""
	} > "$d/httpd.conf"
	rm -f "$d/httpd.pid"	# stale: apache2 -k start trusts any live pid in it
	/usr/sbin/apache2 -t -f "$d/httpd.conf" >"$d/configtest.log" 2>&1 ||
	    { cat "$d/configtest.log" >&2; die "Apache config test failed"; }
	say "starting Apache on 127.0.0.1:$port${prefix:+ (prefix $prefix)}"
	/usr/sbin/apache2 -f "$d/httpd.conf" -k start ||
	    { tail -n 20 "$d/error.log" >&2; die "Apache did not start"; }
	wait_until 30 "Apache on port $port" http_answers "http://127.0.0.1:$port/" ||
	    { tail -n 20 "$d/error.log" >&2; die "Apache does not answer"; }
}

apache_stop() {
	local d="$1/apache" pid
	pid=$(pid_of "$d/httpd.pid" "$d/httpd.conf") || return 0
	say "stopping Apache"
	# The parent takes its children, mod_fcgid's process manager and the
	# FastCGI processes down with it.
	stop_pid "$pid" Apache 30
	rm -f "$d/httpd.pid"
}

# mod_fcgid starts processes only on demand, one more each time a request
# finds all of them busy (after that request slept a second), so the first
# burst of load is slow. A few seconds of truly parallel requests (wrk; curl
# loops if it is missing) grow the pool beforehand.
# warm_pool URL [CONNECTIONS] [SECONDS]
warm_pool() {
	local url=$1 n=${2:-48} secs=${3:-5} j
	if command -v wrk >/dev/null 2>&1; then
		wrk -t 2 -c "$n" -d "${secs}s" "$url" >/dev/null 2>&1 || true
		return 0
	fi
	for ((j = 0; j < n; j++)); do
		(
			end=$((SECONDS + secs))
			while [ "$SECONDS" -lt "$end" ]; do
				curl -s -o /dev/null --max-time 5 "$url" || true
			done
		) &
	done
	wait
}

# ---------------------------------------------------------------------------
# lighttpd: the same idea, including apache/dlrhook-lighttpd.conf.

# lighttpd_start DIR PORT PGPORT [PREFIX] [ALLOW_PRIVATE(0|1)]
lighttpd_start() {
	local dir=$1 port=$2 pgport=$3 prefix=${4:-} private=${5:-0}
	local d="$dir/lighttpd" conf
	conf=$(shipped_conf dlrhook-lighttpd.conf)
	port_free "$port" || die "port $port is in use (lighttpd)"
	mkdir -p "$d/htdocs" "$d/sock"
	chmod 755 "$d" "$d/htdocs"
	# lighttpd opens its log and sockets after dropping privileges.
	if is_root; then chown "$DLR_WEB_USER:" "$d" "$d/sock"; fi
	stage_app "$d"
	{
		echo "# written by dev/lib.sh: the server around the shipped config"
		echo "server.document-root = \"$d/htdocs\""
		echo "server.bind = \"127.0.0.1\""
		echo "server.port = $port"
		echo "server.pid-file = \"$d/lighttpd.pid\""
		echo "server.errorlog = \"$d/error.log\""
		echo "server.modules = ( \"mod_accesslog\" )"
		echo "accesslog.filename = \"$d/access.log\""
		if is_root; then
			echo "server.username = \"$DLR_WEB_USER\""
			echo "server.groupname = \"$DLR_WEB_USER\""
		fi
		echo "var.dlrhook_prefix = \"$prefix\""
		echo "var.dlrhook_database = \"$(pg_conninfo "$pgport" dlrhook_api)\""
		echo "var.dlrhook_allow_private = \"$private\""
		echo "var.dlrhook_fcgi = \"$STAGED_FCGI\""
		echo "var.dlrhook_socket = \"$d/sock/api.sock\""
		echo "var.dlrhook_datadir = \"$STAGED_DATADIR\""
		echo "include \"$conf\""
	} > "$d/lighttpd.conf"
	/usr/sbin/lighttpd -tt -f "$d/lighttpd.conf" >"$d/configtest.log" 2>&1 ||
	    { cat "$d/configtest.log" >&2; die "lighttpd config test failed"; }
	say "starting lighttpd on 127.0.0.1:$port${prefix:+ (prefix $prefix)}"
	# Daemonises; exits non-zero when the server did not come up.
	/usr/sbin/lighttpd -f "$d/lighttpd.conf" ||
	    { tail -n 20 "$d/error.log" >&2; die "lighttpd did not start"; }
	wait_until 30 "lighttpd on port $port" http_answers "http://127.0.0.1:$port/" ||
	    { tail -n 20 "$d/error.log" >&2; die "lighttpd does not answer"; }
}

lighttpd_stop() {
	local d="$1/lighttpd" pid
	pid=$(pid_of "$d/lighttpd.pid" "$d/lighttpd.conf") || return 0
	say "stopping lighttpd"
	# lighttpd stops the FastCGI processes it spawned on its way out.
	stop_pid "$pid" lighttpd 30
	rm -f "$d/lighttpd.pid"
}

# ---------------------------------------------------------------------------
# the development CA: DIR/ca holds a private CA (ca.pem, ca.key) and a server
# certificate it signed for 127.0.0.1 and localhost (server.pem, server.key),
# for HTTPS receivers on this machine. Development only: the CA's key sits
# unprotected on disk.

# dev_ca_paths DIR: sets DEV_CA_CERT, DEV_SERVER_CERT and DEV_SERVER_KEY.
dev_ca_paths() {
	DEV_CA_CERT=$1/ca/ca.pem
	DEV_SERVER_CERT=$1/ca/server.pem
	DEV_SERVER_KEY=$1/ca/server.key
}

# dev_ca_ensure DIR: creates the CA once (again only when it expires within
# 30 days) and the server certificate when it is missing, expires within a
# day, or was not signed by this CA. Sets the variables of dev_ca_paths.
dev_ca_ensure() {
	local d="$1/ca"
	dev_ca_paths "$1"
	mkdir -p "$d"
	chmod 755 "$d"
	if ! { [ -s "$d/ca.key" ] &&
	    openssl x509 -in "$d/ca.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; }; then
		say "creating the development CA in $d"
		rm -f "$d"/ca.* "$d"/server.*
		_dev_ca_openssl "$d" req -x509 -config "$d/openssl.cnf" -extensions ca_ext \
		    -newkey rsa:2048 -nodes -days 3650 -keyout ca.key -out ca.pem \
		    -subj "/O=dlrhook development/CN=dlrhook development CA"
	fi
	if ! { [ -s "$d/server.key" ] &&
	    openssl x509 -in "$d/server.pem" -noout -checkend 86400 >/dev/null 2>&1 &&
	    openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null 2>&1; }; then
		say "creating a server certificate for 127.0.0.1 and localhost"
		rm -f "$d"/server.*
		_dev_ca_openssl "$d" req -new -config "$d/openssl.cnf" -newkey rsa:2048 -nodes \
		    -keyout server.key -out server.csr \
		    -subj "/O=dlrhook development/CN=127.0.0.1"
		_dev_ca_openssl "$d" x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
		    -set_serial "0x$(openssl rand -hex 12)" -days 825 \
		    -extfile openssl.cnf -extensions server_ext -out server.pem
		rm -f "$d/server.csr"
	fi
	chmod 644 "$d/ca.pem" "$d/server.pem"
	chmod 600 "$d/ca.key" "$d/server.key"
}

# _dev_ca_openssl DIR ARGS...: openssl in DIR with the config both steps use;
# new keys are created private (umask 077); output only on failure.
_dev_ca_openssl() {
	local d=$1 out; shift
	cat > "$d/openssl.cnf" <<-'EOF'
	# written by dev/lib.sh: the development CA and its server certificate
	[req]
	distinguished_name = dn
	[dn]
	[ca_ext]
	basicConstraints = critical, CA:TRUE, pathlen:0
	keyUsage = critical, keyCertSign, cRLSign
	subjectKeyIdentifier = hash
	[server_ext]
	basicConstraints = critical, CA:FALSE
	keyUsage = critical, digitalSignature, keyEncipherment
	extendedKeyUsage = serverAuth
	subjectAltName = IP:127.0.0.1, DNS:localhost
	subjectKeyIdentifier = hash
	authorityKeyIdentifier = keyid
	EOF
	out=$(cd "$d" && umask 077 && openssl "$@" 2>&1) ||
	    { printf '%s\n' "$out" >&2; die "openssl $1 failed"; }
}

# ---------------------------------------------------------------------------
# the sender (started by dev/up once src/dlrhook-send exists)

# sender_start DIR PGPORT [ALLOW_PRIVATE(0|1)] [CA_FILE]: dlrhook-send
# --follow in the background, as the dlrhook_sender role, logging to
# DIR/sender/sender.log; CA_FILE (DLRHOOK_CA_FILE) is trusted besides the
# system's CA bundle.
sender_start() {
	local dir=$1 pgport=$2 private=${3:-0} ca=${4:-} d="$1/sender" pid
	mkdir -p "$d"
	say "starting the sender (dlrhook-send --follow)"
	(
		export DLRHOOK_DATABASE
		DLRHOOK_DATABASE=$(pg_conninfo "$pgport" dlrhook_sender)
		if [ "$private" = 1 ]; then export DLRHOOK_ALLOW_PRIVATE=1; else unset DLRHOOK_ALLOW_PRIVATE; fi
		if [ -n "$ca" ]; then export DLRHOOK_CA_FILE=$ca; else unset DLRHOOK_CA_FILE; fi
		# Its own session: a ^C in the terminal that ran dev/up leaves it be.
		exec setsid "$DLR_ROOT/src/dlrhook-send" --follow </dev/null >>"$d/sender.log" 2>&1
	) &
	pid=$!
	echo "$pid" > "$d/sender.pid"
	sleep 1
	if ! pid_of "$d/sender.pid" dlrhook-send >/dev/null; then
		tail -n 20 "$d/sender.log" >&2
		say "warning: the sender exited at start (log: $d/sender.log)"
		return 1
	fi
}

sender_stop() {
	local d="$1/sender" pid
	pid=$(pid_of "$d/sender.pid" dlrhook-send) || return 0
	say "stopping the sender"
	stop_pid "$pid" "the sender" 20
	rm -f "$d/sender.pid"
}

# Stops whatever runs from state directory DIR; harmless when nothing does.
stack_stop() {
	sender_stop "$1"
	apache_stop "$1"
	lighttpd_stop "$1"
	pg_stop "$1"
}
