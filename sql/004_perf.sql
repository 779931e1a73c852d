-- 004_perf.sql: plans the API keeps.
--
-- Findings of bench/api (docs/BENCHMARKS.md).
--
-- The API's key lookups, in PL/pgSQL. A LANGUAGE sql function that cannot
-- be inlined (these are SECURITY DEFINER with their own search_path) is
-- parsed and planned again at every call; PL/pgSQL prepares each statement
-- once per session and keeps the plan, and the API's processes keep their
-- sessions. For api_webhook_get, the only statement of a GET, planning was
-- three quarters of its database time (0.19-0.25 ms a call against 0.07).
-- The queries and their results are those of 001_api.sql; only the
-- language changes. Grants stay: CREATE OR REPLACE keeps them.
--
-- rfc3339() is STABLE, as to_char(timestamp, text) in its body is. Declared
-- IMMUTABLE, it could not be inlined (the planner refuses an IMMUTABLE SQL
-- function whose body is not), so every call parsed and planned its body
-- again: a sixth of all the CPU of a GET, API, web server and PostgreSQL
-- together (perf), twice per webhook rendered and once per event
-- recorded. Nothing needs it IMMUTABLE (no index or constraint uses it).
ALTER FUNCTION dlrhook.rfc3339(timestamptz) STABLE;

-- The account a live key belongs to, or NULL.
CREATE OR REPLACE FUNCTION dlrhook.api_account(p_key bytea) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
BEGIN
	RETURN (SELECT account_id FROM api_keys
	    WHERE key_hash = p_key AND revoked_at IS NULL);
END
$$;

CREATE OR REPLACE FUNCTION dlrhook.api_check(p_key bytea) RETURNS dlrhook.api_result
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
BEGIN
	RETURN ROW(CASE WHEN api_account(p_key) IS NULL THEN 'unauthorized'
	    ELSE 'ok' END, NULL::text, NULL::text, NULL::text, NULL::text,
	    NULL::text, NULL::text);
END
$$;

CREATE OR REPLACE FUNCTION dlrhook.api_webhook_get(p_key bytea) RETURNS dlrhook.api_result
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	r	api_result;
BEGIN
	SELECT CASE WHEN k.account_id IS NULL THEN 'unauthorized'
		    WHEN w.id IS NULL THEN 'no_webhook' ELSE 'ok' END,
	    w.id, w.callback_url, w.status, rfc3339(w.created_at),
	    rfc3339(w.updated_at), NULL
	INTO r
	FROM (SELECT 1) AS one
	LEFT JOIN api_keys k ON k.key_hash = p_key AND k.revoked_at IS NULL
	LEFT JOIN webhooks w ON w.account_id = k.account_id;
	RETURN r;
END
$$;

CREATE OR REPLACE FUNCTION dlrhook.api_secret_get(p_key bytea) RETURNS dlrhook.api_result
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	r	api_result;
BEGIN
	SELECT CASE WHEN k.account_id IS NULL THEN 'unauthorized'
		    WHEN w.id IS NULL THEN 'no_webhook' ELSE 'ok' END,
	    w.id, NULL, NULL, NULL, NULL, w.signing_secret
	INTO r
	FROM (SELECT 1) AS one
	LEFT JOIN api_keys k ON k.key_hash = p_key AND k.revoked_at IS NULL
	LEFT JOIN webhooks w ON w.account_id = k.account_id;
	RETURN r;
END
$$;
