-- 004_perf.sql: plans the API keeps; slow hosts give back what they cannot take.
--
-- Two findings of bench/api and bench/sender (docs/BENCHMARKS.md).
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

-- The sender holds at most --per-host attempts in flight to one host, so
-- that a host that never answers cannot take every slot (bench/sender,
-- "isolation"). What it claimed beyond that for a slow host comes back
-- here: due again after p_seconds, unattempted (the attempt number the
-- claim took is undone, so the retry schedule does not move). Fenced as
-- sender_finish is: only rows still pending at that attempt change.
-- Returns the number given back.
CREATE FUNCTION dlrhook.sender_defer(p_ids uuid[], p_attempts integer[],
    p_seconds double precision) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = dlrhook, pg_temp SET enable_seqscan = off SET jit = off AS $$
DECLARE
	v_n	integer;
BEGIN
	IF coalesce(cardinality(p_ids), 0) <> coalesce(cardinality(p_attempts), 0)
	    OR p_seconds IS NULL OR p_seconds < 0 THEN
		RAISE EXCEPTION 'sender_defer: ids and attempts must have the same length, seconds must be 0 or more'
		    USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE notifications n SET attempts = n.attempts - 1,
	    next_attempt_at = now() + make_interval(secs => p_seconds)
	FROM unnest(p_ids, p_attempts) AS x(id, attempt)
	WHERE n.id = x.id AND n.attempts = x.attempt AND n.attempts > 0
	    AND n.state = 'pending';
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END
$$;

REVOKE ALL ON FUNCTION dlrhook.sender_defer(uuid[], integer[], double precision)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dlrhook.sender_defer(uuid[], integer[], double precision)
    TO dlrhook_sender;
