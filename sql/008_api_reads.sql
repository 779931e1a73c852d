-- 008_api_reads.sql: the GET's statement starts from the key, not from a
-- one-row stub.
--
-- 004's api_webhook_get always returns a row, so its query joined the key
-- and the webhook to "(SELECT 1)" with two LEFT JOINs: a plan of six nodes
-- (a Result, two nested loops, the two index scans), all set up by the
-- executor again at every call. Here the query starts from the key's index
-- scan and LEFT JOINs the webhook, and a key that is unknown or revoked
-- finds no row at all (NOT FOUND): three nodes, bench/ref.c's bare join
-- with the webhook's side outer. The backend's CPU for a GET, one client
-- calling in a loop: 31.2 µs against 32.3 (docs/BENCHMARKS.md, finding
-- 18). api_secret_get, not a hot path, keeps 004's form.
--
-- The results are those of 004, outcome for outcome: 'unauthorized' for an
-- unknown, NULL or revoked key hash, 'no_webhook' for a key whose account
-- has none, 'ok' with the webhook. Grants stay: CREATE OR REPLACE keeps
-- them.
CREATE OR REPLACE FUNCTION dlrhook.api_webhook_get(p_key bytea) RETURNS dlrhook.api_result
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	r	api_result;
BEGIN
	SELECT CASE WHEN w.id IS NULL THEN 'no_webhook' ELSE 'ok' END,
	    w.id, w.callback_url, w.status, rfc3339(w.created_at),
	    rfc3339(w.updated_at), NULL
	INTO r
	FROM api_keys k
	LEFT JOIN webhooks w ON w.account_id = k.account_id
	WHERE k.key_hash = p_key AND k.revoked_at IS NULL;
	IF NOT FOUND THEN
		r.outcome := 'unauthorized';
	END IF;
	RETURN r;
END
$$;
