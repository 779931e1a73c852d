-- 007_claim_order.sql: a claim returns its rows in the order it found them,
-- due order, rather than grouped by webhook.
--
-- 006's per-webhook cap numbers the rows of each webhook with a window
-- partitioned by webhook, and the UPDATE's RETURNING came out in that
-- order: a claim of 290 rows over 19 webhooks returned some 15 of the
-- first webhook, then 15 of the next, and so on. The sender starts jobs in
-- claim order, so its 64 slots went to 4 or 5 hosts at a time, 16 each
-- (their --per-host cap), and over a claim every host needed 16
-- connections: 19 hosts, 304 connections, more than libcurl keeps idle
-- (256), and it closed the oldest, the ones the next claim needed.
-- bench/sender's isolation case: a new TLS connection for one request in
-- three, 4 500 events/s instead of 17 000 (docs/BENCHMARKS.md, finding 17).
-- In due order the slots go round the hosts as their events came, and the
-- oldest event of each webhook starts first.
--
-- Otherwise 006's claim: the same rows, the same lease, the same cap.
-- Ties in next_attempt_at (events recorded in one transaction) keep the
-- order of the index scan.
CREATE OR REPLACE FUNCTION dlrhook.sender_claim(p_batch integer,
    p_lease_seconds integer, p_skip text[] DEFAULT '{}',
    p_per_webhook integer DEFAULT NULL)
RETURNS TABLE (notification_id uuid, attempt integer, webhook_id text,
    callback_url text, payload text, secret text, previous_secret text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = dlrhook, pg_temp SET enable_sort = off
SET enable_seqscan = off SET jit = off
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	IF p_batch IS NULL OR p_batch < 1 OR p_lease_seconds IS NULL
	    OR p_lease_seconds < 1 OR p_per_webhook < 1 THEN
		RAISE EXCEPTION 'sender_claim: batch (%), lease seconds (%) and rows per webhook (%) must be positive',
		    p_batch, p_lease_seconds, p_per_webhook
		    USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- See 002 and 005 for the scan, 006 for the cap. seq is the row's
	-- place in the scan: a window cannot go beside FOR UPDATE, so it is
	-- numbered on the way out of the materialized CTE, which gives its
	-- rows back in the order they were stored. The sorts are of at most
	-- p_batch rows.
	RETURN QUERY
	WITH due AS MATERIALIZED (
		SELECT n.id, n.webhook_id, n.next_attempt_at,
		    (SELECT w FROM webhooks w WHERE w.id = n.webhook_id) AS w
		FROM notifications n
		WHERE n.state = 'pending' AND n.next_attempt_at <= now()
		    AND n.webhook_id <> ALL (coalesce(p_skip, '{}'))
		    AND (SELECT w.status FROM webhooks w
			WHERE w.id = n.webhook_id) = 'ACTIVE'
		ORDER BY n.next_attempt_at
		LIMIT p_batch
		FOR UPDATE OF n SKIP LOCKED
	), found AS (
		SELECT d.id, d.webhook_id, d.w, row_number() OVER () AS seq
		FROM due d
	), pick AS (
		SELECT f.id, f.w, f.seq
		FROM (SELECT f.id, f.w, f.seq, row_number() OVER (
			PARTITION BY f.webhook_id ORDER BY f.seq) AS k
		    FROM found f) AS f
		WHERE p_per_webhook IS NULL OR f.k <= p_per_webhook
	), claimed AS (
		UPDATE notifications n
		    SET attempts = n.attempts + 1,
			next_attempt_at = now() + make_interval(secs => p_lease_seconds)
		    FROM pick
		    WHERE n.id = pick.id
		    RETURNING n.id AS c_id, n.attempts AS c_attempt,
			n.webhook_id AS c_webhook, (pick.w).callback_url AS c_url,
			n.payload AS c_payload, (pick.w).signing_secret AS c_secret,
			CASE WHEN (pick.w).previous_secret_expires_at > now()
			    THEN (pick.w).previous_secret END AS c_previous,
			pick.seq AS c_seq
	)
	SELECT c.c_id, c.c_attempt, c.c_webhook, c.c_url, c.c_payload,
	    c.c_secret, c.c_previous
	FROM claimed c
	ORDER BY c.c_seq;
END
$$;
