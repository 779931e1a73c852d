#!/usr/bin/env python3
"""test_api: integration tests of the webhook API against a running server.

Usage: python3 tests/integration/test_api.py [-k substring] [--list] [name...]

Environment: DLRHOOK_URL (base; the resource is $DLRHOOK_URL/webhooks/
delivery-status), DLRHOOK_SERVER_NAME (for messages), PGHOST/PGPORT/
PGDATABASE/PGUSER (superuser psql), DLRHOOK_PG_STOP and DLRHOOK_PG_START
(shell commands; the restart test runs last). DLRHOOK_ALLOW_PRIVATE=1 says
the servers run with private callback URLs allowed (by default the suite
expects them refused). DLRHOOK_TEST_DEBUG=1 prints each test's time and the
traceback of unexpected errors.

Each test makes its own accounts and keys, so tests are independent and may
run against a database that other runs use too.
"""

import collections
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dlrtest import (BODY_MAX, CONFIG, RESOURCE, ROTATE, SECRET, Api, Db,  # noqa: E402
                     Failure, callback_body, check, expect_allow, expect_json,
                     expect_no_store, expect_problem, expect_secret,
                     expect_status, expect_webhook, fail, fcgi_pids, note,
                     padded_body, parallel, run, shell, test)

api = Api(CONFIG)
db = Db()

HOOK = "https://example.com/hook"
HOOK2 = "https://example.com/other-hook?x=1"
MIB = 1024 * 1024
JSON_1MIB = padded_body(HOOK, MIB)


def each_keyed_route(url=HOOK):
    """(label, method, path, body, ctype) for every request the API serves."""
    body = callback_body(url)
    return [
        ("GET resource", "GET", RESOURCE, None, None),
        ("POST resource", "POST", RESOURCE, body, "application/json"),
        ("PUT resource", "PUT", RESOURCE, body, "application/json"),
        ("DELETE resource", "DELETE", RESOURCE, None, None),
        ("GET secret", "GET", SECRET, None, None),
        ("POST rotate", "POST", ROTATE, None, None),
    ]


def assert_unchanged(key, before, secret_before):
    """The account's webhook and secret are exactly as they were."""
    now = api.current(key)
    check(now == before, "webhook changed: was %r, now %r" % (before, now))
    s = api.current_secret(key)
    check(s == secret_before, "signing secret changed")


def assert_none(key):
    """The account has no webhook: GET gives 404."""
    expect_problem(api.get(key), 404)


def public(obj):
    """The webhook object without the secret, as GET returns it."""
    return {k: v for k, v in obj.items() if k != "signingSecret"}


def errors_or_pass(errors):
    if errors:
        fail("; ".join(errors))


# --- authentication (401) ----------------------------------------------------

def assert_401_everywhere(key, label):
    """Every route answers 401 problem+json for this key; the webhook holds."""
    owner = db.account(label)
    made = api.create(owner.key, HOOK)
    errors = []
    for name, method, path, body, ctype in each_keyed_route(HOOK2):
        r = api.request(method, path, body=body, key=key, ctype=ctype)
        try:
            expect_problem(r, 401)
        except Failure as e:
            errors.append("%s: %s" % (name, e))
    errors_or_pass(errors)
    assert_unchanged(owner.key, public(made), made["signingSecret"])


@test
def missing_key_gives_401_on_every_route():
    assert_401_everywhere(None, "nokey")


@test
def empty_key_gives_401_on_every_route():
    assert_401_everywhere("", "emptykey")


@test
def key_in_other_headers_is_not_accepted():
    a = db.account("otherhdr")
    api.create(a.key, HOOK)
    for hdrs in ({"Authorization": "Bearer " + a.key},
                 {"Authorization": a.key}, {"X-Api-Token": a.key}):
        r = api.get(None, headers=hdrs)
        expect_problem(r, 401)


@test
def unknown_keys_give_401_on_every_route():
    a = db.account("near")
    k = a.key
    flipped = k[:-1] + ("A" if k[-1] != "A" else "B")
    variants = [("never existed", "dlr_" + secrets.token_urlsafe(24)),
                ("last char changed", flipped),
                ("truncated", k[:-1]),
                ("extended", k + "x"),
                ("5000 bytes long", "k" * 5000),
                ("blank", "   ")]
    errors = []
    for label, key in variants:
        try:
            assert_401_everywhere(key, "unknown")
        except Failure as e:
            errors.append("%s key: %s" % (label, e))
    errors_or_pass(errors)
    # The real key still works, so the variants failed for being wrong.
    expect_problem(api.get(k), 404)


@test
def revoked_key_gives_401_and_other_key_still_works():
    a = db.account("revoke")
    made = api.create(a.key, HOOK)
    other = db.new_key(a.id)
    db.revoke(a.key)
    errors = []
    for name, method, path, body, ctype in each_keyed_route(HOOK2):
        r = api.request(method, path, body=body, key=a.key, ctype=ctype)
        try:
            expect_problem(r, 401)
        except Failure as e:
            errors.append("%s with revoked key: %s" % (name, e))
    errors_or_pass(errors)
    assert_unchanged(other, public(made), made["signingSecret"])


@test
def second_key_of_same_account_shares_the_webhook():
    a = db.account("twokeys")
    made = api.create(a.key, HOOK)
    k2 = db.new_key(a.id)
    check(api.current(k2) == public(made),
          "the account's second key sees a different webhook")
    expect_problem(api.post(k2, HOOK2), 409)


# --- POST --------------------------------------------------------------------

@test
def post_creates_webhook_with_201_and_signing_secret():
    a = db.account("create")
    r = api.post(a.key, HOOK)
    obj = expect_json(r, 201)
    expect_webhook(obj, r, secret=True, url=HOOK)
    check(obj["status"] == "ACTIVE", "new webhook status %r, want ACTIVE"
          % obj["status"])
    loc = r.header("Location")
    check(loc is not None and loc.rstrip().endswith(RESOURCE),
          "%s: Location %r must end in %s" % (r.describe(), loc, RESOURCE))
    got = api.current(a.key)
    check(got == public(obj), "GET after POST gives %r, POST gave %r"
          % (got, obj))


@test
def post_location_points_at_resource_under_base_prefix():
    a = db.account("location")
    r = api.post(a.key, HOOK)
    expect_status(r, 201)
    loc = r.header("Location") or ""
    path = urllib.parse.urlsplit(
        urllib.parse.urljoin(api.url(RESOURCE), loc.strip())).path
    want = CONFIG.base_path + RESOURCE
    check(path == want, "Location %r resolves to path %r, want %r"
          % (loc, path, want))


@test
def post_in_absolute_form_gets_location_under_base_prefix():
    # A client talking to a proxy sends "POST http://host/path"; Apache
    # hands that target on as REQUEST_URI, and Location must still be the
    # path of the resource, the prefix included.
    a = db.account("location-absolute")
    r = api.request("POST", RESOURCE, body=callback_body(HOOK), key=a.key,
                    ctype="application/json", absolute_form=True)
    expect_status(r, 201)
    loc = (r.header("Location") or "").strip()
    want = CONFIG.base_path + RESOURCE
    check(loc == want, "Location %r, want %r" % (loc, want))


@test
def post_twice_gives_409_and_keeps_first_webhook():
    a = db.account("twice")
    made = api.create(a.key, HOOK)
    expect_problem(api.post(a.key, HOOK2), 409)
    expect_problem(api.post(a.key, HOOK), 409)
    assert_unchanged(a.key, public(made), made["signingSecret"])


def assert_json_types_accepted(label, types):
    """POST then PUT with each Content-Type succeed (fresh account each)."""
    accts = db.accounts(label, len(types))
    errors = []
    for a, ct in zip(accts, types):
        r = api.post(a.key, HOOK, ctype=ct)
        if r.status != 201:
            errors.append("POST with %r: %s" % (ct, r.describe()))
            continue
        r = api.put(a.key, HOOK2, ctype=ct)
        if r.status != 200:
            errors.append("PUT with %r: %s" % (ct, r.describe()))
    errors_or_pass(errors)


@test
def json_content_type_with_parameters_is_accepted():
    assert_json_types_accepted("ctype", ["application/json; charset=utf-8",
                                         "application/json;charset=UTF-8"])


@test
def json_content_type_is_matched_case_insensitively():
    # RFC 9110 8.3.1: type and subtype are case-insensitive.
    assert_json_types_accepted("ctcase", ["Application/JSON",
                                          "APPLICATION/json; Charset=UTF-8"])


BAD_TYPES = [None, "", "text/plain", "application/x-www-form-urlencoded",
             "multipart/form-data; boundary=x", "text/json", "application/jsonx",
             "application/json-patch+json", "application/problem+json", "json"]


@test
def post_without_json_content_type_gives_415_and_creates_nothing():
    a = db.account("post415")
    errors = []
    for ct in BAD_TYPES:
        r = api.post(a.key, HOOK, ctype=ct)
        try:
            expect_problem(r, 415)
        except Failure as e:
            errors.append("Content-Type %r: %s" % (ct, e))
            if r.status == 201:
                api.delete(a.key)
    errors_or_pass(errors)
    assert_none(a.key)


@test
def post_body_of_exactly_64_kib_is_accepted():
    a = db.account("post64k")
    url = "https://example.com/hook?pad=" + "a" * (2048 - 29)
    check(len(url) == 2048, "test bug: url is %d bytes" % len(url))
    body = padded_body(url, BODY_MAX)
    check(len(body) == 65536, "test bug")
    r = api.request("POST", RESOURCE, body=body, key=a.key,
                    ctype="application/json")
    obj = expect_json(r, 201)
    expect_webhook(obj, r, secret=True, url=url)


@test
def post_body_of_65537_bytes_gives_413():
    a = db.account("post413")
    body = padded_body(HOOK, BODY_MAX + 1)
    r = api.request("POST", RESOURCE, body=body, key=a.key,
                    ctype="application/json")
    expect_problem(r, 413)
    assert_none(a.key)


@test
def post_1_mib_body_gives_413_problem_not_500():
    a = db.account("post1m")
    r = api.request("POST", RESOURCE, body=JSON_1MIB, key=a.key,
                    ctype="application/json")
    expect_problem(r, 413)
    assert_none(a.key)


@test
def body_over_web_server_cap_gives_413_problem_with_no_store():
    # Far past 64 KiB the web server may refuse the body itself, before the
    # program sees it; that answer still follows the contract.
    a = db.account("huge")
    huge = padded_body(HOOK, 3 * MIB)
    errors = []
    for chunked in (False, True):
        r = api.request("POST", RESOURCE, body=huge, key=a.key,
                        ctype="application/json", chunked=chunked)
        try:
            expect_problem(r, 413)
            expect_no_store(r)
        except Failure as e:
            errors.append("%s: %s" % ("chunked" if chunked else
                                      "Content-Length", e))
    errors_or_pass(errors)
    assert_none(a.key)


@test
def declared_length_over_web_server_cap_is_413_whatever_the_key():
    # The documented exception to "401 first": the web server refuses a
    # declared length over its cap (2 MiB shipped) before the program, so
    # before the key is known to be bad. Only the headers are sent.
    for key in (None, "wrong"):
        conn = api.connect()
        try:
            conn.putrequest("POST", CONFIG.base_path + RESOURCE,
                            skip_accept_encoding=True)
            if key is not None:
                conn.putheader("X-API-Key", key)
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(3 * MIB))
            conn.endheaders()
            resp = conn.getresponse()
            body = resp.read()
            check(resp.status == 413, "key %r, Content-Length 3 MiB: %d %r, "
                  "want 413" % (key, resp.status, body[:200]))
            check(resp.getheader("Content-Type", "").startswith(
                "application/problem+json"), "key %r: 413 is %r, not "
                  "problem+json" % (key, resp.getheader("Content-Type")))
        finally:
            conn.close()


@test
def chunked_bodies_follow_the_same_rules():
    a = db.account("chunked")
    r = api.request("POST", RESOURCE, body=padded_body(HOOK, BODY_MAX + 1),
                    key=a.key, ctype="application/json", chunked=True)
    expect_problem(r, 413)
    r = api.request("POST", RESOURCE, body=JSON_1MIB, key="wrong",
                    ctype="application/json", chunked=True)
    expect_problem(r, 401)
    r = api.request("POST", RESOURCE, body=b'{"callbackUrl":"http://x/"}',
                    key=a.key, ctype="application/json", chunked=True)
    expect_problem(r, 400)
    assert_none(a.key)
    r = api.request("POST", RESOURCE, body=padded_body(HOOK, BODY_MAX),
                    key=a.key, ctype="application/json", chunked=True)
    obj = expect_json(r, 201)
    expect_webhook(obj, r, secret=True, url=HOOK)
    r = api.request("PUT", RESOURCE, body=callback_body(HOOK2), key=a.key,
                    ctype="application/json", chunked=True)
    expect_webhook(expect_json(r, 200), r, url=HOOK2)


def deep_array(n):
    return "[" * n + "]" * n


# Bodies that must give 400, with why.
BAD_BODIES = [
    ("empty body", b""),
    ("whitespace only", b"   \n"),
    ("not JSON", b"callbackUrl=https://example.com/hook"),
    ("truncated JSON", b'{"callbackUrl":"https://example.com/hook"'),
    ("trailing data", b'{"callbackUrl":"https://example.com/hook"} {}'),
    ("JSON array", b'["https://example.com/hook"]'),
    ("JSON string", b'"https://example.com/hook"'),
    ("JSON null", b"null"),
    ("deep nesting", deep_array(5000).encode()),
    ("empty object", b"{}"),
    ("wrong key case", b'{"CallbackUrl":"https://example.com/hook"}'),
    ("unknown field", b'{"callbackUrl":"https://example.com/hook","x":1}'),
    ("callbackUrl null", b'{"callbackUrl":null}'),
    ("callbackUrl number", b'{"callbackUrl":123}'),
    ("callbackUrl array", b'{"callbackUrl":["https://example.com/hook"]}'),
    ("callbackUrl object", b'{"callbackUrl":{"url":"https://example.com/"}}'),
    ("callbackUrl empty", b'{"callbackUrl":""}'),
    ("NUL inside URL", b'{"callbackUrl":"https://example.com/\\u0000x"}'),
    ("NUL inside field name", b'{"callbackUrl\\u0000x":"https://example.com/hook"}'),
    ("http scheme", b'{"callbackUrl":"http://example.com/hook"}'),
    ("ftp scheme", b'{"callbackUrl":"ftp://example.com/hook"}'),
    ("not absolute", b'{"callbackUrl":"example.com/hook"}'),
    ("relative path", b'{"callbackUrl":"/hook"}'),
    ("empty host", b'{"callbackUrl":"https://:443/hook"}'),
    ("scheme only", b'{"callbackUrl":"https://"}'),
    ("space in host", b'{"callbackUrl":"https://exa mple.com/hook"}'),
    ("user and password", b'{"callbackUrl":"https://u:p@example.com/hook"}'),
    ("user only", b'{"callbackUrl":"https://u@example.com/hook"}'),
    ("fragment", b'{"callbackUrl":"https://example.com/hook#frag"}'),
    ("2049-byte URL", callback_body("https://example.com/" + "a" * 2029)),
    ("port 0", b'{"callbackUrl":"https://example.com:0/hook"}'),
    ("port 65536", b'{"callbackUrl":"https://example.com:65536/hook"}'),
    ("port not a number", b'{"callbackUrl":"https://example.com:x/hook"}'),
]

# Callback URLs whose host is a private, loopback or reserved address (or
# localhost): 400 unless the server runs with DLRHOOK_ALLOW_PRIVATE=1.
PRIVATE_URLS = [
    ("loopback IPv4", "https://127.0.0.1/x"),
    ("loopback short form", "https://127.1/x"),
    ("loopback as integer", "https://2130706433/x"),
    ("localhost", "https://localhost/x"),
    ("localhost any case", "https://LocalHost/x"),
    ("localhost with port", "https://localhost:8443/x"),
    ("private 10/8", "https://10.1.2.3/x"),
    ("private 172.16/12", "https://172.16.0.1/x"),
    ("private 192.168/16", "https://192.168.1.1/x"),
    ("link-local metadata", "https://169.254.169.254/x"),
    ("CGNAT 100.64/10", "https://100.64.0.1/x"),
    ("this network 0/8", "https://0.0.0.0/x"),
    ("multicast", "https://224.0.0.1/x"),
    ("IPv6 loopback", "https://[::1]/x"),
    ("IPv6 unique local", "https://[fd00::1]/x"),
    ("IPv6 link-local", "https://[fe80::1]/x"),
    ("IPv4-mapped loopback", "https://[::ffff:127.0.0.1]/x"),
]


def bad_rows():
    """BAD_BODIES, plus the private URLs when the server refuses them."""
    rows = list(BAD_BODIES)
    if not CONFIG.allow_private:
        rows += [(label, callback_body(url)) for label, url in PRIVATE_URLS]
    return rows


def bad_body_errors(method, key):
    """Sends each bad body; returns (errors, details) for rows that passed."""
    errors, details = [], set()
    for label, body in bad_rows():
        r = api.request(method, RESOURCE, body=body, key=key,
                        ctype="application/json")
        try:
            p = expect_problem(r, 400)
            details.add(p["detail"])
        except Failure as e:
            errors.append("%s: %s" % (label, e))
            if method == "POST" and r.status == 201:
                api.delete(key)
    return errors, details


@test
def post_bad_bodies_and_urls_give_400_and_create_nothing():
    a = db.account("post400")
    errors, details = bad_body_errors("POST", a.key)
    if not errors:
        check(len(details) >= 4, "all %d bad bodies share %d detail(s) %r; "
              "the detail must say what to fix" % (len(bad_rows()),
                                                   len(details), details))
    errors_or_pass(errors)
    assert_none(a.key)


@test
def private_addresses_are_refused_unless_allowed():
    a = db.account("private")
    if CONFIG.allow_private:
        # The server runs with DLRHOOK_ALLOW_PRIVATE=1: all are accepted.
        api.create(a.key, HOOK)
        errors = []
        for label, url in PRIVATE_URLS:
            r = api.put(a.key, url)
            if r.status != 200:
                errors.append("%s: %s" % (label, r.describe()))
        errors_or_pass(errors)
        return
    why = re.compile(r"(?i)private|loopback|localhost|internal|reserved|"
                     r"local|public")
    for url in ("https://127.0.0.1/x", "https://localhost/x"):
        p = expect_problem(api.post(a.key, url), 400)
        check(why.search(p["detail"]),
              "POST %s: detail %r does not say the address is "
              "private/loopback" % (url, p["detail"]))
    assert_none(a.key)
    api.create(a.key, HOOK)


@test
def urls_at_the_limits_are_accepted():
    urls = ["https://example.com/" + "a" * 2028,       # exactly 2048 bytes
            "https://example.com:1/hook",
            "https://example.com:65535/hook",
            "https://example.com:8443/hook?a=1&b=two",
            "https://93.184.216.34/hook",              # public IPv4 literal
            "https://[2606:4700:4700::1111]/hook"]     # public IPv6 literal
    accts = db.accounts("limits", len(urls))
    errors = []
    for a, url in zip(accts, urls):
        r = api.post(a.key, url)
        try:
            obj = expect_json(r, 201)
            expect_webhook(obj, r, secret=True, url=url)
        except Failure as e:
            errors.append("%s: %s" % (url[:60], e))
    errors_or_pass(errors)


# --- GET ---------------------------------------------------------------------

@test
def get_without_webhook_gives_404():
    a = db.account("get404")
    expect_problem(api.get(a.key), 404)


@test
def get_returns_webhook_without_secret():
    a = db.account("get")
    made = api.create(a.key, HOOK)
    r = api.get(a.key)
    obj = expect_json(r, 200)
    expect_webhook(obj, r, secret=False, url=HOOK)
    check("signingSecret" not in obj, "GET must not show the secret")
    check(obj == public(made), "GET gives %r, POST gave %r" % (obj, made))


# --- PUT ---------------------------------------------------------------------

@test
def put_without_webhook_gives_404_and_creates_nothing():
    a = db.account("put404")
    expect_problem(api.put(a.key, HOOK), 404)
    assert_none(a.key)
    expect_problem(api.secret(a.key), 404)
    api.create(a.key, HOOK2)


@test
def put_replaces_url_keeping_id_created_at_and_secret():
    a = db.account("put")
    made = api.create(a.key, HOOK)
    time.sleep(0.02)
    r = api.put(a.key, HOOK2)
    obj = expect_json(r, 200)
    expect_webhook(obj, r, secret=False, url=HOOK2)
    check(obj["id"] == made["id"], "PUT changed the id")
    check(obj["createdAt"] == made["createdAt"], "PUT changed createdAt")
    check(obj["updatedAt"] > made["updatedAt"],
          "PUT did not advance updatedAt (%s -> %s)"
          % (made["updatedAt"], obj["updatedAt"]))
    check(obj["status"] == "ACTIVE", "status %r after PUT" % obj["status"])
    check(api.current(a.key) == obj, "GET after PUT differs from PUT's answer")
    check(api.current_secret(a.key) == made["signingSecret"],
          "PUT changed the signing secret")


@test
def put_bad_bodies_and_urls_give_400_and_change_nothing():
    a = db.account("put400")
    made = api.create(a.key, HOOK)
    errors, _ = bad_body_errors("PUT", a.key)
    errors_or_pass(errors)
    assert_unchanged(a.key, public(made), made["signingSecret"])


@test
def put_without_json_content_type_gives_415_and_changes_nothing():
    a = db.account("put415")
    made = api.create(a.key, HOOK)
    errors = []
    for ct in BAD_TYPES:
        r = api.put(a.key, HOOK2, ctype=ct)
        try:
            expect_problem(r, 415)
        except Failure as e:
            errors.append("Content-Type %r: %s" % (ct, e))
    errors_or_pass(errors)
    assert_unchanged(a.key, public(made), made["signingSecret"])


@test
def put_over_64_kib_gives_413_and_64_kib_is_accepted():
    a = db.account("put413")
    made = api.create(a.key, HOOK)
    for body in (padded_body(HOOK2, BODY_MAX + 1), JSON_1MIB):
        r = api.request("PUT", RESOURCE, body=body, key=a.key,
                        ctype="application/json")
        expect_problem(r, 413)
    assert_unchanged(a.key, public(made), made["signingSecret"])
    r = api.request("PUT", RESOURCE, body=padded_body(HOOK2, BODY_MAX),
                    key=a.key, ctype="application/json")
    obj = expect_json(r, 200)
    expect_webhook(obj, r, url=HOOK2)


# --- DELETE ------------------------------------------------------------------

@test
def delete_gives_204_with_empty_body_then_everything_404():
    a = db.account("delete")
    api.create(a.key, HOOK)
    r = api.delete(a.key)
    expect_status(r, 204)
    check(r.body == b"", "%s: 204 must have no body" % r.describe())
    expect_problem(api.get(a.key), 404)
    expect_problem(api.secret(a.key), 404)
    expect_problem(api.rotate(a.key), 404)
    expect_problem(api.put(a.key, HOOK2), 404)
    expect_problem(api.delete(a.key), 404)


@test
def delete_without_webhook_gives_404():
    a = db.account("delete404")
    expect_problem(api.delete(a.key), 404)


@test
def post_after_delete_gives_201_with_new_id():
    a = db.account("recreate")
    first = api.create(a.key, HOOK)
    expect_status(api.delete(a.key), 204)
    second = api.create(a.key, HOOK2)
    check(second["id"] != first["id"], "re-created webhook kept id %s"
          % first["id"])
    check(api.current(a.key) == public(second), "GET shows the old webhook")
    check(api.current_secret(a.key) == second["signingSecret"],
          "GET secret differs from the secret of the 201")


# --- secret and rotation -----------------------------------------------------

@test
def get_secret_returns_the_secret_from_201():
    a = db.account("secret")
    made = api.create(a.key, HOOK)
    s = api.current_secret(a.key)
    check(s == made["signingSecret"], "GET secret %r != 201's %r"
          % (s, made["signingSecret"]))


@test
def secret_routes_without_webhook_give_404():
    a = db.account("secret404")
    expect_problem(api.secret(a.key), 404)
    expect_problem(api.rotate(a.key), 404)
    assert_none(a.key)


@test
def rotate_returns_new_secret_that_get_secret_then_returns():
    a = db.account("rotate")
    made = api.create(a.key, HOOK)
    seen = [made["signingSecret"]]
    for _ in range(2):
        r = api.rotate(a.key)
        obj = expect_json(r, 200)
        check(set(obj) == {"signingSecret"}, "%s: want exactly signingSecret"
              % r.describe())
        expect_secret(obj["signingSecret"], r)
        check(obj["signingSecret"] not in seen,
              "rotation returned a secret already used")
        seen.append(obj["signingSecret"])
        check(api.current_secret(a.key) == obj["signingSecret"],
              "GET secret does not return the rotated secret")
    now = api.current(a.key)
    check(now["id"] == made["id"] and now["callbackUrl"] == HOOK,
          "rotation changed the webhook: %r" % now)


# --- routing: 405 and 404 ----------------------------------------------------

ROUTE_ALLOW = [
    (RESOURCE, ["GET", "POST", "PUT", "DELETE"]),
    (SECRET, ["GET"]),
    (ROTATE, ["POST"]),
]
OTHER_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


@test
def other_methods_give_405_with_allow_before_key_check():
    a = db.account("m405")
    api.create(a.key, HOOK)
    errors = []
    for path, allowed in ROUTE_ALLOW:
        for method in OTHER_METHODS:
            if method in allowed:
                continue
            for key in (a.key, None, "wrong"):
                body = callback_body(HOOK2) if method != "HEAD" else None
                r = api.request(method, path, key=key, body=body,
                                ctype="application/json")
                try:
                    if method == "HEAD":
                        expect_status(r, 405)
                    else:
                        expect_problem(r, 405)
                    expect_allow(r, allowed)
                except Failure as e:
                    errors.append("%s %s key=%s: %s"
                                  % (method, path,
                                     "valid" if key == a.key else key, e))
    errors_or_pass(errors)
    api.current(a.key)


@test
def trace_gives_405_problem_with_allow():
    # TRACE is "any other method" too; web servers tend to answer it
    # themselves (echo, or a bare 405 of their own).
    a = db.account("trace")
    errors = []
    for path, allowed in ROUTE_ALLOW:
        r = api.request("TRACE", path, key=a.key)
        try:
            expect_problem(r, 405)
            expect_allow(r, allowed)
            expect_no_store(r)
        except Failure as e:
            errors.append(str(e))
    errors_or_pass(errors)


UNKNOWN_PATHS = ["/webhooks/nope", "/webhooks/delivery-status/x",
                 "/webhooks/delivery-statusx", "/webhooks/delivery-status/",
                 "/webhooks/delivery-status/secret/x",
                 "/webhooks/delivery-status/secret/rotate/x",
                 "/webhooks/delivery-status/rotate",
                 "/webhooks/Delivery-Status", "/webhooks", "/webhooks/"]


@test
def unknown_paths_give_404_problem_before_key_check():
    a = db.account("p404")
    api.create(a.key, HOOK)
    errors = []
    for path in UNKNOWN_PATHS:
        for method in ("GET", "POST", "DELETE", "PATCH"):
            for key in (a.key, None):
                body = callback_body(HOOK2) if method in ("POST", "PATCH") \
                    else None
                r = api.request(method, path, key=key, body=body,
                                ctype="application/json" if body else None)
                try:
                    expect_problem(r, 404)
                except Failure as e:
                    errors.append("%s %s key=%s: %s"
                                  % (method, path, "valid" if key else key, e))
    errors_or_pass(errors)
    api.current(a.key)


@test
def encoded_slash_path_gives_404_problem():
    # Web servers tend to refuse %2F in a path themselves, in their own
    # format; it is still a path the API does not serve.
    a = db.account("enc404")
    errors = []
    for key in (a.key, None):
        r = api.get(key, path="/webhooks/delivery-status%2Fx")
        try:
            expect_problem(r, 404)
            expect_no_store(r)
        except Failure as e:
            errors.append(str(e))
    errors_or_pass(errors)


@test
def query_string_does_not_change_routing():
    a = db.account("query")
    made = api.create(a.key, HOOK)
    obj = expect_json(api.get(a.key, path=RESOURCE + "?x=1"), 200)
    check(obj == public(made), "GET with a query gives %r" % obj)
    s = expect_json(api.get(a.key, path=SECRET + "?x=1"), 200)
    check(s.get("signingSecret") == made["signingSecret"],
          "GET secret with a query gives %r" % s)


# --- order of checks ---------------------------------------------------------

@test
def bad_key_is_401_before_content_type_size_and_body():
    cases = [("text/plain", callback_body(HOOK)),
             (None, callback_body(HOOK)),
             ("application/json", b"{not json"),
             ("application/json", JSON_1MIB),
             ("text/plain", JSON_1MIB)]
    errors = []
    for method in ("POST", "PUT"):
        for key in ("no-such-key-" + secrets.token_hex(8), None):
            for ct, body in cases:
                r = api.request(method, RESOURCE, body=body, key=key,
                                ctype=ct)
                try:
                    expect_problem(r, 401)
                except Failure as e:
                    errors.append("%s key=%s ctype=%s %d bytes: %s"
                                  % (method, "bad" if key else None, ct,
                                     len(body), e))
    errors_or_pass(errors)


@test
def content_type_is_415_before_size_and_body():
    a = db.account("order415")
    for body in (JSON_1MIB, b"{not json", padded_body(HOOK, BODY_MAX + 1)):
        expect_problem(api.request("POST", RESOURCE, body=body, key=a.key,
                                   ctype="text/plain"), 415)
    assert_none(a.key)


@test
def size_is_413_before_body_validation():
    a = db.account("order413")
    big_bad = b'{"callbackUrl":"http://x"' + b" " * (BODY_MAX + 10)
    for method in ("POST", "PUT"):
        r = api.request(method, RESOURCE, body=big_bad, key=a.key,
                        ctype="application/json")
        expect_problem(r, 413)
    assert_none(a.key)


@test
def body_errors_come_before_404_and_409():
    a = db.account("order400")
    # PUT with nothing configured: a bad body is 400, not 404.
    r = api.request("PUT", RESOURCE, body=b"{}", key=a.key,
                    ctype="application/json")
    expect_problem(r, 400)
    expect_problem(api.put(a.key, "http://example.com/hook"), 400)
    expect_problem(api.put(a.key, HOOK, ctype="text/plain"), 415)
    r = api.request("PUT", RESOURCE, body=JSON_1MIB, key=a.key,
                    ctype="application/json")
    expect_problem(r, 413)
    made = api.create(a.key, HOOK)
    # POST with one configured: a bad body is 400, not 409.
    r = api.request("POST", RESOURCE, body=b"{}", key=a.key,
                    ctype="application/json")
    expect_problem(r, 400)
    expect_problem(api.post(a.key, "https://example.com/hook#f"), 400)
    expect_problem(api.post(a.key, HOOK2, ctype="text/plain"), 415)
    r = api.request("POST", RESOURCE, body=JSON_1MIB, key=a.key,
                    ctype="application/json")
    expect_problem(r, 413)
    assert_unchanged(a.key, public(made), made["signingSecret"])


# --- tenant isolation --------------------------------------------------------

@test
def other_account_cannot_see_or_change_webhook():
    a, b = db.accounts("tenant", 2)
    made = api.create(a.key, HOOK)
    time.sleep(0.01)
    errors = []
    for name, method, path, body, ctype in each_keyed_route(HOOK2):
        if method == "POST" and path == RESOURCE:
            continue  # B creating its own is the next test
        r = api.request(method, path, body=body, key=b.key, ctype=ctype)
        try:
            expect_problem(r, 404)
        except Failure as e:
            errors.append("B's %s while A has one: %s" % (name, e))
    errors_or_pass(errors)
    assert_unchanged(a.key, public(made), made["signingSecret"])


@test
def accounts_have_independent_webhooks():
    a, b = db.accounts("indep", 2)
    wa = api.create(a.key, HOOK)
    wb = api.create(b.key, HOOK2)
    check(wa["id"] != wb["id"], "two accounts got the same webhook id")
    check(wa["signingSecret"] != wb["signingSecret"],
          "two accounts got the same signing secret")
    expect_json(api.rotate(b.key), 200)
    expect_json(api.put(b.key, HOOK), 200)
    expect_status(api.delete(b.key), 204)
    assert_unchanged(a.key, public(wa), wa["signingSecret"])
    assert_none(b.key)


# --- concurrency -------------------------------------------------------------

@test
def fifty_concurrent_posts_give_one_201_and_49_409():
    n = 50
    a = db.account("race")
    barrier = threading.Barrier(n)
    body = callback_body(HOOK)

    def one(i):
        conn = api.connect(timeout=30)
        try:
            barrier.wait(timeout=20)
        except threading.BrokenBarrierError:
            conn.close()
            raise
        return api.request("POST", RESOURCE, body=body, key=a.key,
                           ctype="application/json", conn=conn, timeout=30)

    results = parallel(one, n)
    broken = [r for r in results if isinstance(r, Exception)]
    check(not broken, "%d of %d requests failed: %s" % (
        len(broken), n, "; ".join(sorted({str(e) for e in broken})[:3])))
    counts = collections.Counter(r.status for r in results)
    check(counts == collections.Counter({201: 1, 409: n - 1}),
          "statuses %s, want {201: 1, 409: %d}" % (dict(counts), n - 1))
    errors = []
    for r in results:
        try:
            if r.status == 409:
                expect_problem(r, 409)
        except Failure as e:
            errors.append(str(e))
    errors_or_pass(errors[:3])
    won = [r for r in results if r.status == 201][0].json()
    check(api.current(a.key) == public(won),
          "GET does not show the webhook of the one 201")
    check(api.current_secret(a.key) == won["signingSecret"],
          "stored secret is not the one the 201 returned")


# --- headers -----------------------------------------------------------------

@test
def every_response_has_cache_control_no_store():
    a = db.account("nostore")
    rs = []
    rs.append(api.get(a.key))                              # 404 none
    rs.append(api.post(a.key, HOOK))                       # 201
    rs.append(api.get(a.key))                              # 200
    rs.append(api.put(a.key, HOOK2))                       # 200
    rs.append(api.secret(a.key))                           # 200
    rs.append(api.rotate(a.key))                           # 200
    rs.append(api.post(a.key, HOOK))                       # 409
    rs.append(api.post(a.key, "http://x/"))                # 400
    rs.append(api.post(a.key, HOOK, ctype="text/plain"))   # 415
    rs.append(api.request("PUT", RESOURCE, body=JSON_1MIB, key=a.key,
                          ctype="application/json"))       # 413
    rs.append(api.get("wrong"))                            # 401
    rs.append(api.request("PATCH", RESOURCE, key=a.key))   # 405
    rs.append(api.get(a.key, path="/webhooks/nope"))       # 404 path
    rs.append(api.delete(a.key))                           # 204
    want = [404, 201, 200, 200, 200, 200, 409, 400, 415, 413, 401, 405, 404,
            204]
    got = [r.status for r in rs]
    check(got == want, "statuses %s, want %s" % (got, want))
    errors = []
    for r in rs:
        try:
            expect_no_store(r)
        except Failure as e:
            errors.append(str(e))
    errors_or_pass(errors)


# --- PostgreSQL restart (disturbs the database: runs last) -------------------

def burst(fn, n):
    """n concurrent calls of fn(); returns their results (or exceptions)."""
    return parallel(lambda i: fn(), n, timeout=30)


@test(last=True)
def postgres_restart_gives_fast_500s_then_recovers_in_same_processes():
    check(CONFIG.pg_stop and CONFIG.pg_start,
          "DLRHOOK_PG_STOP and DLRHOOK_PG_START must be set to run this test")
    a = db.account("pgrestart")
    made = api.create(a.key, HOOK)
    # Give every FastCGI process a database connection for the restart to
    # break, then note who they are.
    warm = burst(lambda: api.get(a.key), 16)
    check(all(not isinstance(r, Exception) and r.status == 200 for r in warm),
          "warm-up GETs failed: %s" % [getattr(r, "status", r) for r in warm])
    pids_before = fcgi_pids(CONFIG.port)

    down_error = None
    shell(CONFIG.pg_stop, "DLRHOOK_PG_STOP")
    try:
        body = callback_body(HOOK2)
        probes = [("GET", RESOURCE, None), ("GET", SECRET, None),
                  ("POST", ROTATE, None), ("PUT", RESOURCE, body),
                  ("POST", RESOURCE, body), ("DELETE", RESOURCE, None)]
        for _ in range(2):
            for method, path, b in probes:
                r = api.request(method, path, body=b, key=a.key,
                                ctype="application/json" if b else None,
                                timeout=5)
                check(r.elapsed < 2.0, "%s %s took %.2f s with PostgreSQL "
                      "down (limit 2 s)" % (method, path, r.elapsed))
                expect_problem(r, 500)
                expect_no_store(r)
        for r in burst(lambda: api.get(a.key, timeout=5), 8):
            if isinstance(r, Exception):
                raise r
            check(r.elapsed < 2.0, "concurrent GET took %.2f s with "
                  "PostgreSQL down" % r.elapsed)
            expect_problem(r, 500)
    except Failure as e:
        down_error = e
    finally:
        shell(CONFIG.pg_start, "DLRHOOK_PG_START")
    started = time.monotonic()
    if down_error:
        raise down_error

    # A 2xx within 2 s of PostgreSQL accepting connections.
    seen = []
    while True:
        try:
            r = api.get(a.key, timeout=2)
            seen.append(r.status)
            if r.status == 200:
                break
        except Failure as e:
            seen.append(str(e))
        if time.monotonic() - started > 2.0:
            fail("no 2xx within 2 s after PostgreSQL came back; got %s"
                 % seen[-5:])
        time.sleep(0.1)
    recovered = time.monotonic() - started

    # No 5xx persists: within 2 more seconds a whole concurrent burst (which
    # reaches every process) is 2xx.
    transient = collections.Counter()
    settle_by = time.monotonic() + 2.0
    while True:
        rs = burst(lambda: api.get(a.key, timeout=2), 16)
        bad = [getattr(r, "status", str(r)) for r in rs
               if isinstance(r, Exception) or r.status != 200]
        if not bad:
            break
        transient.update(map(str, bad))
        check(time.monotonic() < settle_by,
              "errors persist 2 s after recovery: %s" % dict(transient))
        time.sleep(0.1)
    if transient:
        note("after the restart, transient answers before settling: %s"
             % dict(transient))
    note("first 2xx %.2f s after PostgreSQL started" % recovered)

    # Every statement works again, and the data survived.
    check(api.current(a.key) == public(made), "webhook changed by restart")
    check(api.current_secret(a.key) == made["signingSecret"],
          "secret changed by restart")
    expect_json(api.put(a.key, HOOK2), 200)
    expect_json(api.rotate(a.key), 200)
    expect_status(api.delete(a.key), 204)
    api.create(a.key, HOOK)
    for r in burst(lambda: api.get(a.key, timeout=5), 16):
        if isinstance(r, Exception):
            raise r
        expect_status(r, 200)

    # The same FastCGI processes: none was restarted to recover.
    pids_after = fcgi_pids(CONFIG.port)
    if pids_before is None or pids_after is None:
        note("could not identify this server's dlrhook.fcgi processes; "
             "pid check skipped")
        return
    gone = sorted(pids_before - pids_after)
    check(not gone, "dlrhook.fcgi processes %s were replaced during the "
          "restart (before %s, after %s)"
          % (gone, sorted(pids_before), sorted(pids_after)))
    note("all %d dlrhook.fcgi processes survived the restart"
         % len(pids_before))


@test(last=True)
def writes_right_after_a_quiet_restart_succeed():
    """
    PostgreSQL restarts while no request comes: every process still holds a
    connection the server has closed. The first request of each is then a
    write, which must not fail (nor be run twice): the program notices the
    closed connection before sending and reconnects.
    """
    check(CONFIG.pg_stop and CONFIG.pg_start,
          "DLRHOOK_PG_STOP and DLRHOOK_PG_START must be set to run this test")
    a = db.account("quietrestart")
    api.create(a.key, HOOK)
    warm = burst(lambda: api.get(a.key), 16)
    check(all(not isinstance(r, Exception) and r.status == 200 for r in warm),
          "warm-up GETs failed: %s" % [getattr(r, "status", r) for r in warm])
    shell(CONFIG.pg_stop, "DLRHOOK_PG_STOP")
    shell(CONFIG.pg_start, "DLRHOOK_PG_START")
    urls = [HOOK, HOOK2]
    rs = parallel(lambda i: api.put(a.key, urls[i % 2], timeout=5), 16,
                  timeout=30)
    statuses = [getattr(r, "status", repr(r)) for r in rs]
    check(all(st == 200 for st in statuses),
          "PUTs right after the restart: %s" % statuses)

if __name__ == "__main__":
    try:
        sys.exit(run(sys.argv[1:], api, db))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
