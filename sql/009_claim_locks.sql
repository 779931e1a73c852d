-- 009_claim_locks.sql: a claim with a per-webhook cap locks only the rows
-- it takes; the webhook's row is read once per claimed row, not carried.
--
-- 007's claim locked every row its scan found (FOR UPDATE SKIP LOCKED,
-- up to p_batch) and then took at most p_per_webhook of each webhook. The
-- rows over the cap were locked for nothing: each lock writes the tuple
-- and a WAL record, the next claim locked them again, and until the claim
-- committed another sender's claim skipped them. bench/sender's drain,
-- 4 webhooks, 500 looked at and 148 taken: 3.4 locks for each row taken.
-- A claim loop over 100 000 rows (docs/BENCHMARKS.md, finding 24): 18.3
-- µs a row instead of 22.2 with a cap of 37, 12.4 instead of 13.8 with
-- none.
--
-- Now, with a cap, the scan only looks (seen), the cap picks (capped),
-- and the picked rows are locked by their key with SKIP LOCKED; a row
-- another claim took in between fails the recheck of state and
-- next_attempt_at under the lock (READ COMMITTED) or is skipped, so a
-- claim may come back short, never twice. Without a cap every row found
-- is taken, so it is locked as the scan finds it (locked), as before. Only
-- one of the two scans runs (a one-time filter on p_per_webhook). The
-- webhook's URL and secrets are joined in the UPDATE for the rows taken,
-- where 007 read each looked-at row's whole webhook row into the scan.
--
-- Otherwise 007's claim: the same rows, in the same order, the same lease.
-- Grants stay: CREATE OR REPLACE keeps them.
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
	RETURN QUERY
	-- No cap: every row found is taken, locked as the scan finds it.
	WITH locked AS MATERIALIZED (
		SELECT n.id
		FROM notifications n
		WHERE p_per_webhook IS NULL
		    AND n.state = 'pending' AND n.next_attempt_at <= now()
		    AND n.webhook_id <> ALL (coalesce(p_skip, '{}'))
		    AND (SELECT w.status FROM webhooks w
			WHERE w.id = n.webhook_id) = 'ACTIVE'
		ORDER BY n.next_attempt_at
		LIMIT p_batch
		FOR UPDATE OF n SKIP LOCKED
	-- A cap: the scan looks, the cap picks, and only the picked are
	-- locked, rechecked under the lock.
	), seen AS MATERIALIZED (
		SELECT n.id, n.webhook_id
		FROM notifications n
		WHERE p_per_webhook IS NOT NULL
		    AND n.state = 'pending' AND n.next_attempt_at <= now()
		    AND n.webhook_id <> ALL (coalesce(p_skip, '{}'))
		    AND (SELECT w.status FROM webhooks w
			WHERE w.id = n.webhook_id) = 'ACTIVE'
		ORDER BY n.next_attempt_at
		LIMIT p_batch
	), found AS (
		SELECT s.id, s.webhook_id, row_number() OVER () AS seq
		FROM seen s
	), capped AS MATERIALIZED (
		SELECT n.id, f.seq
		FROM (SELECT f.id, f.seq, row_number() OVER (
			PARTITION BY f.webhook_id ORDER BY f.seq) AS k
		    FROM found f) AS f
		JOIN notifications n ON n.id = f.id
		WHERE f.k <= p_per_webhook
		    AND n.state = 'pending' AND n.next_attempt_at <= now()
		FOR UPDATE OF n SKIP LOCKED
	-- seq: the row's place in its scan, numbered on the way out of the
	-- materialized CTE, which gives its rows back in the order stored.
	), pick AS (
		SELECT l.id, row_number() OVER () AS seq FROM locked l
		UNION ALL
		SELECT c.id, c.seq FROM capped c
	), claimed AS (
		UPDATE notifications n
		    SET attempts = n.attempts + 1,
			next_attempt_at = now() + make_interval(secs => p_lease_seconds)
		    FROM pick, webhooks w
		    WHERE n.id = pick.id AND w.id = n.webhook_id
		    RETURNING n.id AS c_id, n.attempts AS c_attempt,
			n.webhook_id AS c_webhook, w.callback_url AS c_url,
			n.payload AS c_payload, w.signing_secret AS c_secret,
			CASE WHEN w.previous_secret_expires_at > now()
			    THEN w.previous_secret END AS c_previous,
			pick.seq AS c_seq
	)
	SELECT c.c_id, c.c_attempt, c.c_webhook, c.c_url, c.c_payload,
	    c.c_secret, c.c_previous
	FROM claimed c
	ORDER BY c.c_seq;
END
$$;
