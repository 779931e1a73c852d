#!/usr/bin/env python3
"""test_privilege: what each database role of dlrhook can and cannot do.

Usage: python3 tests/integration/test_privilege.py [-k substring] [--list] [name...]

Connects with psql as dlrhook_api and dlrhook_sender (PGUSER overridden on
the cluster of the PG* environment, which must let those roles in, as the
trust-on-loopback test cluster does) and, since dlrhook_platform cannot log
in, as a throwaway login role that is a member of it (what the docs tell
the platform to do). Proves, each by the precise SQLSTATE or outcome:

  - the grants are exactly the documented ones (catalog checks) and no
    dlrhook function is executable by PUBLIC;
  - dlrhook_api cannot read or write any table or view, call sender_*,
    admin functions or record_delivery_status, create objects or change
    role; through the api_* functions an unknown, NULL or revoked key hash
    is 'unauthorized' and a key reaches its own account only; the table
    constraints hold even for a caller that skips the program's checks;
  - dlrhook_sender cannot read tables or call api_*/admin functions, and
    through sender_finish it can change a webhook's status only (never its
    URL or secrets), fenced by the attempt number;
  - dlrhook_platform can call record_delivery_status and nothing else;
  - dlrhook-migrate refuses a database that is not in UTF8, and changes
    nothing in it.

Environment: PGHOST/PGPORT/PGDATABASE/PGUSER (a superuser, for set-up and
for checking what changed). Does not need the web server. Prints one line
per test and "N passed, N failed"; exits non-zero on failure. Everything
it creates (accounts, a login role) is removed at the end.
"""

import hashlib
import os
import re
import secrets
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dlrtest import (check, fail, main_of, plain_suite, run_plain,  # noqa: E402
                     sql_literal)

API, SENDER, PLATFORM = "dlrhook_api", "dlrhook_sender", "dlrhook_platform"
DENIED = "42501"            # insufficient_privilege
CHECK_VIOLATION = "23514"
INVALID_PARAMETER = "22023"

TABLES = ["accounts", "api_keys", "webhooks", "notifications", "attempts",
          "schema_migrations"]
VIEWS = ["backlog", "dead_letters", "recent_attempts"]

API_FUNCS = {"api_check", "api_webhook_get", "api_webhook_create",
             "api_webhook_replace", "api_webhook_delete", "api_secret_get",
             "api_secret_rotate"}
SENDER_FUNCS = {"sender_claim", "sender_finish", "sender_next_due",
                "sender_release", "prune_attempts"}
PLATFORM_FUNCS = {"record_delivery_status"}
EXPECTED_EXECUTE = {API: API_FUNCS, SENDER: SENDER_FUNCS,
                    PLATFORM: PLATFORM_FUNCS}

# One call of every function in the schema, by name.
CALLS = {
    "api_check": "dlrhook.api_check('\\x00'::bytea)",
    "api_webhook_get": "dlrhook.api_webhook_get('\\x00'::bytea)",
    "api_webhook_create": "dlrhook.api_webhook_create('\\x00'::bytea, "
                          "'https://example.com/', 'whsec_x')",
    "api_webhook_replace": "dlrhook.api_webhook_replace('\\x00'::bytea, "
                           "'https://example.com/')",
    "api_webhook_delete": "dlrhook.api_webhook_delete('\\x00'::bytea)",
    "api_secret_get": "dlrhook.api_secret_get('\\x00'::bytea)",
    "api_secret_rotate": "dlrhook.api_secret_rotate('\\x00'::bytea, "
                         "'whsec_x')",
    "api_account": "dlrhook.api_account('\\x00'::bytea)",
    "api_outcome": "dlrhook.api_outcome('ok')",
    "sender_claim": "dlrhook.sender_claim(1, 60)",
    "sender_finish": "dlrhook.sender_finish(NULL::uuid[], NULL::int[], "
                     "NULL::text[], NULL::float8[], NULL::int[], "
                     "NULL::text[], NULL::text[], NULL::int[], "
                     "NULL::timestamptz[], NULL::text[])",
    "sender_next_due": "dlrhook.sender_next_due()",
    "sender_release": "dlrhook.sender_release(NULL::uuid[], NULL::int[])",
    "record_delivery_status": "dlrhook.record_delivery_status(-1, 'm', 'SMS', "
                              "'SENT', now())",
    "create_account": "dlrhook.create_account('privilege test')",
    "create_api_key": "dlrhook.create_api_key(-1)",
    "revoke_api_key": "dlrhook.revoke_api_key('dlr_x')",
    "replay_failed": "dlrhook.replay_failed(-1, now())",
    "prune_attempts": "dlrhook.prune_attempts(100000)",
    "rfc3339": "dlrhook.rfc3339(now())",
    "clip_bytes": "dlrhook.clip_bytes('x', 1)",
    "json_value": "dlrhook.json_value('x')",
    # 009's trigger function: run by the trigger only, by no role.
    "webhook_changed": "dlrhook.webhook_changed()",
}


# --- psql --------------------------------------------------------------------

class Psql:
    """psql as some role, on the cluster and database of the PG* env."""

    def __init__(self, user=None):
        self.user = user

    def _run(self, script, stop=True):
        env = dict(os.environ)
        if self.user is not None:
            env["PGUSER"] = self.user
        args = ["psql", "-X", "-q", "-At", "-F", "|",
                "-v", "VERBOSITY=verbose"]
        if stop:
            args += ["-v", "ON_ERROR_STOP=1"]
        try:
            return subprocess.run(args, input=script, capture_output=True,
                                  text=True, env=env, timeout=60)
        except FileNotFoundError:
            fail("psql is not installed or not on PATH")
        except subprocess.TimeoutExpired:
            fail("psql as %s did not finish within 60 s" % self.user)

    def rows(self, sql):
        """The rows of the last statement; Failure on any error."""
        p = self._run(sql)
        if p.returncode != 0:
            fail("psql as %s failed: %s [SQL: %s]"
                 % (self.user or "superuser", p.stderr.strip(), sql.strip()))
        return [ln.split("|") for ln in p.stdout.splitlines()]

    def value(self, sql):
        r = self.rows(sql)
        check(len(r) == 1 and len(r[0]) == 1, "want one value from %r, got %r"
              % (sql.strip()[:80], r))
        return r[0][0]

    def error(self, sql):
        """(SQLSTATE or None, stdout, stderr) of one statement."""
        p = self._run(sql)
        m = re.search(r"(?:ERROR|FATAL):\s+([0-9A-Z]{5}):", p.stderr)
        if p.returncode != 0 and m is None:
            fail("psql as %s failed without a SQLSTATE: %s"
                 % (self.user, p.stderr.strip()))
        return (m.group(1) if m else None), p.stdout, p.stderr

    def states(self, stmts):
        """
        Runs each statement in one session, in a transaction that is rolled
        back at the end (ON_ERROR_ROLLBACK: each failure undoes only itself),
        so a statement that wrongly succeeds changes nothing. Returns each
        statement's SQLSTATE, or None when it succeeded.
        """
        parts = ["\\set ON_ERROR_ROLLBACK on", "BEGIN;"]
        for i, s in enumerate(stmts):
            parts.append("\\warn @@%d" % i)
            parts.append(s.rstrip().rstrip(";") + ";")
        parts += ["\\warn @@end", "ROLLBACK;"]
        p = self._run("\n".join(parts) + "\n", stop=False)
        chunks = re.split(r"^@@(\d+|end)$", p.stderr, flags=re.M)
        found = {}
        for tag, text in zip(chunks[1::2], chunks[2::2]):
            if tag == "end":
                continue
            m = re.search(r"ERROR:\s+([0-9A-Z]{5}):", text)
            found[int(tag)] = m.group(1) if m else None
        if len(found) != len(stmts):
            fail("psql as %s ran %d of %d statements: %s"
                 % (self.user, len(found), len(stmts),
                    (p.stderr or p.stdout).strip()[-500:]))
        return [found[i] for i in range(len(stmts))]


su = Psql()
as_api = Psql(API)
as_sender = Psql(SENDER)
PLATFORM_LOGIN = "it_platform_%d_%s" % (os.getpid(), secrets.token_hex(3))
as_platform = Psql(PLATFORM_LOGIN)


def expect_states(who, stmts, want):
    """Every statement fails with SQLSTATE want; lists those that do not."""
    got = who.states(stmts)
    bad = ["%s -> %s" % (s, g or "succeeded") for s, g in zip(stmts, got)
           if g != want]
    check(not bad, "as %s, want SQLSTATE %s for every statement; got: %s"
          % (who.user, want, "; ".join(bad)))


def table_statements():
    out = []
    for t in TABLES:
        q = "dlrhook." + t
        out += ["SELECT 1 FROM %s LIMIT 0" % q,
                "INSERT INTO %s DEFAULT VALUES" % q,
                "UPDATE %s SET %s WHERE false" % (q, first_column(t)),
                "DELETE FROM %s WHERE false" % q,
                "TRUNCATE %s" % q,
                "COPY %s TO STDOUT" % q]
    out += ["SELECT 1 FROM dlrhook.%s LIMIT 0" % v for v in VIEWS]
    return out


def first_column(table):
    return {"accounts": "name = name", "api_keys": "prefix = prefix",
            "webhooks": "callback_url = callback_url",
            "notifications": "payload = payload",
            "attempts": "error = error",
            "schema_migrations": "version = version"}[table]


def calls_except(allowed):
    return ["SELECT %s" % c for name, c in sorted(CALLS.items())
            if name not in allowed]


# Statements that change the schema, a role, or the session's identity.
DDL = ["CREATE TABLE dlrhook.it_x (i int)",
       "CREATE FUNCTION dlrhook.it_f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
       "CREATE VIEW dlrhook.it_v AS SELECT 1 AS one",
       "CREATE TABLE public.it_x (i int)",
       "ALTER FUNCTION dlrhook.api_account(bytea) SECURITY INVOKER",
       "ALTER FUNCTION dlrhook.record_delivery_status(bigint, text, text, "
       "text, timestamptz, text, text, text, text, text) "
       "RESET search_path",
       "DROP TABLE dlrhook.webhooks",
       "ALTER TABLE dlrhook.webhooks DROP CONSTRAINT webhooks_one_per_account",
       "CREATE INDEX it_i ON dlrhook.webhooks (callback_url)",
       "SET ROLE dlrhook_admin",
       "SET ROLE postgres",
       "SET SESSION AUTHORIZATION postgres",
       "SET log_parameter_max_length = -1",
       "GRANT dlrhook_admin TO CURRENT_USER",
       "CREATE ROLE it_evil LOGIN SUPERUSER"]


# --- fixtures ----------------------------------------------------------------

CREATED_ACCOUNTS = []


def key_hash(key):
    return "decode('%s', 'hex')" % hashlib.sha256(key.encode()).hexdigest()


def random_hash():
    return "decode('%s', 'hex')" % secrets.token_hex(32)


def new_secret():
    return "whsec_" + secrets.token_urlsafe(32)


class Acct:
    """An account with one key and, if url is given, a webhook."""

    def __init__(self, label, url=None, previous=False):
        name = "it-privilege-%s-%d-%s" % (label, os.getpid(),
                                          secrets.token_hex(3))
        r = su.rows("SELECT id, dlrhook.create_api_key(id) FROM "
                    "(SELECT dlrhook.create_account(%s) AS id) s"
                    % sql_literal(name))
        self.id, self.key = int(r[0][0]), r[0][1]
        CREATED_ACCOUNTS.append(self.id)
        self.webhook = None
        self.secret = self.previous = None
        if url is not None:
            self.secret = new_secret()
            self.previous = new_secret() if previous else None
            self.webhook = su.value(
                "INSERT INTO dlrhook.webhooks (account_id, callback_url, "
                "signing_secret, previous_secret, previous_secret_expires_at)"
                " VALUES (%d, %s, %s, %s, now() + interval '1 hour') "
                "RETURNING id"
                % (self.id, sql_literal(url), sql_literal(self.secret),
                   sql_literal(self.previous) if previous else "NULL"))

    def row(self):
        """The webhook row as the superuser sees it (a dict), or None."""
        r = su.rows("SELECT id, account_id, callback_url, status, "
                    "coalesce(disabled_reason, ''), signing_secret, "
                    "coalesce(previous_secret, ''), created_at, updated_at "
                    "FROM dlrhook.webhooks WHERE account_id = %d" % self.id)
        if not r:
            return None
        keys = ["id", "account_id", "callback_url", "status",
                "disabled_reason", "signing_secret", "previous_secret",
                "created_at", "updated_at"]
        return dict(zip(keys, r[0]))


def cleanup():
    if CREATED_ACCOUNTS:
        ids = ",".join(str(i) for i in CREATED_ACCOUNTS)
        su.rows("DELETE FROM dlrhook.attempts WHERE account_id IN (%s);"
                "DELETE FROM dlrhook.notifications WHERE account_id IN (%s);"
                "DELETE FROM dlrhook.accounts WHERE id IN (%s)"
                % (ids, ids, ids))
    su.rows("DROP ROLE IF EXISTS %s" % PLATFORM_LOGIN)


API_COLUMNS = ("SELECT outcome, coalesce(id, ''), coalesce(callback_url, "
               "''), coalesce(signing_secret, '') FROM %s;")


def api_result(who, call):
    """(outcome, id, callback_url, signing_secret) of an api_* call."""
    return api_results(who, [call])[0]


def api_results(who, calls):
    """api_result of each call, in order, in one session."""
    r = who.rows("\n".join(API_COLUMNS % c for c in calls))
    check(len(r) == len(calls) and all(len(x) == 4 for x in r),
          "%d calls gave %r" % (len(calls), r))
    return [tuple(x) for x in r]


# --- tests -------------------------------------------------------------------

TESTS, test = plain_suite()


@test
def roles_have_no_special_attributes_or_memberships():
    r = su.rows("SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, "
                "rolreplication, rolbypassrls, rolcanlogin, "
                "(SELECT count(*) FROM pg_auth_members m "
                "WHERE m.member = r.oid) FROM pg_roles r WHERE rolname IN "
                "('%s', '%s', '%s') ORDER BY 1" % (API, PLATFORM, SENDER))
    check(len(r) == 3, "want the three roles, got %r" % r)
    errors = []
    for name, sup, crole, cdb, repl, bypass, login, member in r:
        if "t" in (sup, crole, cdb, repl, bypass):
            errors.append("%s has superuser/createrole/createdb/replication/"
                          "bypassrls: %s" % (name, (sup, crole, cdb, repl,
                                                    bypass)))
        want_login = "f" if name == PLATFORM else "t"
        if login != want_login:
            errors.append("%s rolcanlogin=%s, want %s" % (name, login,
                                                          want_login))
        if member != "0":
            errors.append("%s is a member of %s role(s): it would inherit "
                          "their privileges" % (name, member))
    check(not errors, "; ".join(errors))


@test
def platform_role_itself_cannot_log_in():
    p = Psql(PLATFORM)._run("SELECT 1")
    check(p.returncode != 0 and "not permitted to log in" in p.stderr,
          "logging in as %s: want 'not permitted to log in', got exit %d %r"
          % (PLATFORM, p.returncode, (p.stderr or p.stdout).strip()))


@test
def execute_grants_are_exactly_the_documented_ones():
    errors = []
    for role, want in EXPECTED_EXECUTE.items():
        got = {x[0] for x in su.rows(
            "SELECT DISTINCT p.proname FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace WHERE n.nspname = 'dlrhook' AND "
            "has_function_privilege('%s', p.oid, 'EXECUTE')" % role)}
        if got != want:
            errors.append("%s may execute %s, want exactly %s (extra %s, "
                          "missing %s)" % (role, sorted(got), sorted(want),
                                           sorted(got - want),
                                           sorted(want - got)))
    known = set(CALLS)
    names = {x[0] for x in su.rows(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = "
        "p.pronamespace WHERE n.nspname = 'dlrhook'")}
    if names - known:
        errors.append("functions this test does not know yet (add them to "
                      "CALLS and decide who may run them): %s"
                      % sorted(names - known))
    check(not errors, "; ".join(errors))


@test
def no_dlrhook_function_is_executable_by_public():
    # A NULL proacl means the default: EXECUTE for PUBLIC.
    r = su.rows(
        "SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON "
        "n.oid = p.pronamespace WHERE n.nspname = 'dlrhook' AND "
        "(p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a "
        "WHERE a.grantee = 0))")
    check(not r, "executable by PUBLIC: %s" % [x[0] for x in r])


@test
def no_table_view_or_sequence_privileges_for_any_app_role():
    errors = []
    for role in (API, SENDER, PLATFORM):
        r = su.rows(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = 'dlrhook' AND ("
            "(c.relkind IN ('r', 'v', 'm', 'p') AND has_table_privilege("
            "'%s', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, "
            "REFERENCES, TRIGGER')) OR (c.relkind = 'S' AND "
            "has_sequence_privilege('%s', c.oid, 'USAGE, SELECT, UPDATE')))"
            % (role, role))
        if r:
            errors.append("%s has privileges on %s" % (role,
                                                       [x[0] for x in r]))
        r = su.rows("SELECT has_schema_privilege('%s', 'dlrhook', 'USAGE'), "
                    "has_schema_privilege('%s', 'dlrhook', 'CREATE'), "
                    "has_schema_privilege('%s', 'public', 'CREATE')"
                    % (role, role, role))
        if r[0] != ["t", "f", "f"]:
            errors.append("%s: USAGE on dlrhook, CREATE on dlrhook, CREATE on "
                          "public are %s, want t, f, f" % (role, r[0]))
    check(not errors, "; ".join(errors))


@test
def security_definer_functions_pin_search_path_and_are_not_app_owned():
    r = su.rows(
        "SELECT p.oid::regprocedure, coalesce(array_to_string(p.proconfig, "
        "' '), ''), o.rolname, o.rolsuper FROM pg_proc p JOIN pg_namespace n "
        "ON n.oid = p.pronamespace JOIN pg_roles o ON o.oid = p.proowner "
        "WHERE n.nspname = 'dlrhook' AND p.prosecdef")
    check(len(r) >= 10, "only %d SECURITY DEFINER functions?" % len(r))
    errors = []
    for fn, config, owner, owner_super in r:
        if "search_path=dlrhook, pg_temp" not in config:
            errors.append("%s: search_path not pinned to 'dlrhook, pg_temp' "
                          "(%r)" % (fn, config))
        if owner in (API, SENDER, PLATFORM):
            errors.append("%s is owned by %s" % (fn, owner))
    r = su.rows(
        "SELECT 'relation ' || c.relname FROM pg_class c JOIN pg_roles o ON "
        "o.oid = c.relowner WHERE o.rolname IN ('%s', '%s', '%s') UNION ALL "
        "SELECT 'function ' || p.proname FROM pg_proc p JOIN pg_roles o ON "
        "o.oid = p.proowner WHERE o.rolname IN ('%s', '%s', '%s')"
        % (API, SENDER, PLATFORM, API, SENDER, PLATFORM))
    if r:
        errors.append("objects owned by app roles: %s" % [x[0] for x in r])
    check(not errors, "; ".join(errors))


@test
def api_role_cannot_touch_tables_or_views():
    expect_states(as_api, table_statements(), DENIED)


@test
def api_role_cannot_call_sender_admin_or_intake_functions():
    expect_states(as_api, calls_except(API_FUNCS), DENIED)


@test
def api_role_cannot_create_objects_or_change_identity():
    expect_states(as_api, DDL, DENIED)


@test
def api_role_cannot_undo_its_log_settings():
    # 003_log_hygiene: the API role's bind parameters (new secrets) are
    # never logged, and the role cannot change that.
    r = as_api.rows("SHOW log_parameter_max_length; "
                    "SHOW log_parameter_max_length_on_error")
    check(r == [["0"], ["0"]], "log_parameter_max_length(_on_error) for %s "
          "are %r, want 0 and 0 (sql/003_log_hygiene.sql)" % (API, r))
    # (log_parameter_max_length_on_error may be set by any role; the
    # program never does.)
    expect_states(as_api, [
        "ALTER ROLE CURRENT_USER SET log_parameter_max_length = -1",
        "ALTER ROLE CURRENT_USER RESET log_parameter_max_length",
        "SET log_parameter_max_length = -1"], DENIED)


@test
def api_functions_refuse_unknown_null_and_revoked_key_hashes():
    a = Acct("a", "https://a.example/hook", previous=True)
    revoked = Acct("revoked", "https://r.example/hook")
    su.rows("SELECT dlrhook.revoke_api_key(%s)" % sql_literal(revoked.key))
    before = {x.id: x.row() for x in (a, revoked)}
    n_before = su.value("SELECT count(*) FROM dlrhook.webhooks")
    errors, calls = [], []
    for label, h in [("a random hash", random_hash()), ("NULL", "NULL"),
                     ("an empty hash", "''::bytea"),
                     ("the revoked key's hash", key_hash(revoked.key)),
                     ("the plaintext key as bytes",
                      "convert_to(%s, 'UTF8')" % sql_literal(a.key))]:
        for call in ["dlrhook.api_check(%s)" % h,
                     "dlrhook.api_webhook_get(%s)" % h,
                     "dlrhook.api_secret_get(%s)" % h,
                     "dlrhook.api_webhook_replace(%s, "
                     "'https://evil.example/')" % h,
                     "dlrhook.api_secret_rotate(%s, %s)"
                     % (h, sql_literal(new_secret())),
                     "dlrhook.api_webhook_delete(%s)" % h,
                     "dlrhook.api_webhook_create(%s, 'https://evil.example/',"
                     " %s)" % (h, sql_literal(new_secret()))]:
            calls.append((label, call))
    for (label, call), got in zip(calls, api_results(as_api,
                                                     [c for _, c in calls])):
        if got != ("unauthorized", "", "", ""):
            errors.append("%s with %s: %r, want only 'unauthorized'"
                          % (call.split("(")[0], label, got))
    check(not errors, "; ".join(errors))
    for x in (a, revoked):
        check(x.row() == before[x.id], "webhook of account %d changed: %r -> "
              "%r" % (x.id, before[x.id], x.row()))
    check(su.value("SELECT count(*) FROM dlrhook.webhooks") == n_before,
          "an unauthorized api_webhook_create made a webhook")


@test
def api_functions_reach_only_the_keys_own_account():
    a = Acct("own-a", "https://a.example/hook")
    b = Acct("own-b", "https://b.example/hook")
    c = Acct("own-c")
    got = api_result(as_api, "dlrhook.api_webhook_get(%s)" % key_hash(a.key))
    check(got[:3] == ("ok", a.webhook, "https://a.example/hook"),
          "A's key gets %r, want A's webhook %s" % (got, a.webhook))
    got = api_result(as_api, "dlrhook.api_secret_get(%s)" % key_hash(b.key))
    check(got[0] == "ok" and got[1] == b.webhook and got[3] == b.secret,
          "B's key gets %r, want B's webhook and secret" % (got,))
    # C has no webhook: nothing of A's or B's shows through.
    for call in ("api_webhook_get", "api_secret_get", "api_webhook_delete"):
        got = api_result(as_api, "dlrhook.%s(%s)" % (call, key_hash(c.key)))
        check(got == ("no_webhook", "", "", ""),
              "%s with C's key (no webhook): %r" % (call, got))
    got = api_result(as_api, "dlrhook.api_webhook_replace(%s, "
                     "'https://evil.example/')" % key_hash(c.key))
    check(got[0] == "no_webhook", "PUT by C: %r" % (got,))
    b_before = b.row()
    # A changes, rotates and deletes its own: B is untouched throughout.
    got = api_result(as_api, "dlrhook.api_webhook_replace(%s, "
                     "'https://a.example/new')" % key_hash(a.key))
    check(got[:3] == ("ok", a.webhook, "https://a.example/new"), "A's PUT: %r"
          % (got,))
    s = new_secret()
    got = api_result(as_api, "dlrhook.api_secret_rotate(%s, %s)"
                     % (key_hash(a.key), sql_literal(s)))
    check(got[0] == "ok" and got[3] == s, "A's rotation: %r" % (got,))
    got = api_result(as_api, "dlrhook.api_webhook_delete(%s)"
                     % key_hash(a.key))
    check(got[0] == "ok" and got[1] == a.webhook, "A's DELETE: %r" % (got,))
    check(a.row() is None, "A's webhook is still there")
    check(b.row() == b_before, "B's webhook changed: %r -> %r"
          % (b_before, b.row()))


@test
def table_constraints_hold_for_a_caller_that_skips_the_programs_checks():
    # A compromised web tier holds the API role's credentials and can call
    # the api_* functions with anything; the tables still refuse what the
    # program would have refused with 400.
    b = Acct("constraints", "https://b.example/hook")
    d = Acct("constraints-new")
    before = b.row()
    stmts = ["SELECT * FROM dlrhook.api_webhook_replace(%s, "
             "'http://evil.example/')" % key_hash(b.key),
             "SELECT * FROM dlrhook.api_webhook_replace(%s, "
             "'https://example.com/' || repeat('a', 2029))" % key_hash(b.key),
             "SELECT * FROM dlrhook.api_secret_rotate(%s, 'not-a-secret')"
             % key_hash(b.key),
             "SELECT * FROM dlrhook.api_webhook_create(%s, 'ftp://x/', %s)"
             % (key_hash(d.key), sql_literal(new_secret())),
             "SELECT * FROM dlrhook.api_webhook_create(%s, "
             "'https://x.example/', 'plain')" % key_hash(d.key)]
    expect_states(as_api, stmts, CHECK_VIOLATION)
    check(b.row() == before, "B's webhook changed: %r -> %r"
          % (before, b.row()))
    check(d.row() is None, "a webhook was created for D")


@test
def sender_role_cannot_touch_tables_or_views():
    expect_states(as_sender, table_statements(), DENIED)


@test
def sender_role_cannot_call_api_admin_or_intake_functions():
    expect_states(as_sender, calls_except(SENDER_FUNCS), DENIED)


@test
def sender_role_cannot_create_objects_or_change_identity():
    expect_states(as_sender, DDL, DENIED)


def record(acct, message="m-1"):
    return su.value("SELECT dlrhook.record_delivery_status(%d, %s, 'SMS', "
                    "'DELIVERED', now())" % (acct.id, sql_literal(message)))


def finish(n_id, attempt, outcome, url="https://evil.example/x",
           status=410, retry="NULL"):
    return ("SELECT dlrhook.sender_finish(ARRAY['%s'::uuid], ARRAY[%d], "
            "ARRAY['%s'], ARRAY[%s]::float8[], ARRAY[%d], "
            "ARRAY['injected error text'], ARRAY['excerpt'], ARRAY[5], "
            "ARRAY[clock_timestamp()], ARRAY[%s])"
            % (n_id, attempt, outcome, retry, status, sql_literal(url)))


def claimed(n_id, attempt):
    """Makes a notification look claimed for that attempt (as sender_claim
    would), without claiming anybody else's rows."""
    su.rows("UPDATE dlrhook.notifications SET attempts = %d, "
            "next_attempt_at = now() + interval '60 seconds' WHERE id = '%s'"
            % (attempt, n_id))


@test
def sender_finish_changes_only_a_webhooks_status():
    e = Acct("sender", "https://e.example/hook", previous=True)
    before = e.row()
    n = record(e)
    check(re.match(r"^[0-9a-f-]{36}$", n or ""), "record gave %r" % n)
    claimed(n, 1)
    applied = as_sender.value(finish(n, 1, "gone"))
    check(applied == "1", "sender_finish(gone) applied %s, want 1" % applied)
    after = e.row()
    check(after["status"] == "DISABLED", "status %r after 410, want DISABLED"
          % after["status"])
    check(after["disabled_reason"] == "HTTP 410 Gone from "
          "https://evil.example/x", "disabled_reason %r"
          % after["disabled_reason"])
    for k in ("id", "account_id", "callback_url", "signing_secret",
              "previous_secret", "created_at"):
        check(after[k] == before[k], "sender_finish changed %s: %r -> %r"
              % (k, before[k], after[k]))
    # No outcome brings it back: 'delivered' for the same attempt finds the
    # notification dead and applies nothing.
    applied = as_sender.value(finish(n, 1, "delivered", status=204))
    check(applied == "0", "a late 'delivered' applied %s, want 0" % applied)
    check(e.row()["status"] == "DISABLED", "the sender re-enabled a webhook")


@test
def sender_finish_is_fenced_by_the_attempt_number():
    f = Acct("fence", "https://f.example/hook")
    n = record(f)
    claimed(n, 2)
    applied = as_sender.value(finish(n, 1, "gone"))
    check(applied == "0", "a stale attempt's 'gone' applied %s, want 0"
          % applied)
    check(f.row()["status"] == "ACTIVE", "a stale attempt disabled the "
          "webhook")
    state, _, err = as_sender.error(finish(n, 2, "enable"))
    check(state == INVALID_PARAMETER, "an unknown outcome gave %s, want %s: "
          "%s" % (state, INVALID_PARAMETER, err.strip()))
    applied = as_sender.value(finish(n, 2, "delivered", status=204))
    check(applied == "1", "the current attempt's 'delivered' applied %s"
          % applied)
    check(su.value("SELECT count(*) FROM dlrhook.notifications WHERE "
                   "id = '%s'" % n) == "0", "delivered notification kept")


@test
def platform_member_can_record_events_and_nothing_else():
    su.rows("CREATE ROLE %s LOGIN IN ROLE %s" % (PLATFORM_LOGIN, PLATFORM))
    g = Acct("platform", "https://g.example/hook")
    h = Acct("platform-none")
    ev = as_platform.value(
        "SELECT dlrhook.record_delivery_status(%d, 'm-1', 'WHATSAPP', 'READ',"
        " now(), p_channel_status => 'read')" % g.id)
    check(re.match(r"^[0-9a-f-]{36}$", ev), "record_delivery_status gave %r"
          % ev)
    check(su.value("SELECT count(*) FROM dlrhook.notifications WHERE id = "
                   "'%s' AND account_id = %d" % (ev, g.id)) == "1",
          "the event was not queued")
    ev = as_platform.value("SELECT dlrhook.record_delivery_status(%d, 'm-2', "
                           "'SMS', 'SENT', now())" % h.id)
    check(ev == "", "an account without a webhook got event %r, want NULL"
          % ev)
    state, _, err = as_platform.error(
        "SELECT dlrhook.record_delivery_status(%d, 'm-3', 'SMS', 'READ', "
        "now())" % g.id)
    check(state == INVALID_PARAMETER, "READ on SMS gave %s, want %s: %s"
          % (state, INVALID_PARAMETER, err.strip()))
    expect_states(as_platform, table_statements()
                  + calls_except(PLATFORM_FUNCS) + DDL, DENIED)


MIGRATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "src", "dlrhook-migrate")


@test
def migrate_refuses_a_database_not_in_utf8_and_changes_nothing():
    # In LATIN1, a callback URL such as https://example.com/€ that the API
    # accepts could not be stored: every such POST would be a 500.
    name = "it_latin1_%d_%s" % (os.getpid(), secrets.token_hex(3))
    su.rows("CREATE DATABASE %s ENCODING 'LATIN1' LC_COLLATE 'C' "
            "LC_CTYPE 'C' TEMPLATE template0" % name)
    try:
        env = dict(os.environ, PGDATABASE=name)
        env.pop("DLRHOOK_DATABASE", None)
        p = subprocess.run([MIGRATE], env=env, capture_output=True,
                           text=True, timeout=60)
        check(p.returncode == 1, "dlrhook-migrate on a LATIN1 database "
              "exited %d, want 1: %s" % (p.returncode, p.stderr.strip()))
        check("encoding is LATIN1" in p.stderr
              and "createdb -E UTF8 -T template0" in p.stderr,
              "dlrhook-migrate's message does not say what to do: %r"
              % p.stderr.strip())
        q = subprocess.run(["psql", "-XAtq", "-d", name, "-c",
                            "SELECT count(*) FROM pg_namespace "
                            "WHERE nspname = 'dlrhook'"],
                           capture_output=True, text=True, timeout=60)
        check(q.returncode == 0 and q.stdout.strip() == "0",
              "after the refusal the database has the dlrhook schema (%r %r)"
              % (q.stdout.strip(), q.stderr.strip()))
    finally:
        su.rows("DROP DATABASE IF EXISTS %s" % name)


# --- runner ------------------------------------------------------------------

def precheck():
    if su.value("SELECT to_regproc('dlrhook.create_api_key') IS NOT NULL "
                "AND (SELECT rolsuper FROM pg_roles WHERE rolname = "
                "current_user)") != "t":
        return "PG* does not reach a migrated dlrhook database as superuser"
    return None


def main(argv):
    return run_plain(argv, TESTS,
                     "# dlrhook privilege tests (PGHOST=%s PGPORT=%s "
                     "PGDATABASE=%s)" % (os.environ.get("PGHOST", ""),
                                         os.environ.get("PGPORT", ""),
                                         os.environ.get("PGDATABASE", "")),
                     precheck, cleanup)


if __name__ == "__main__":
    main_of(main)
