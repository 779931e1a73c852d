-- 006_claim_ahead.sql: the sender claims ahead of its free slots, in
-- larger batches, and can give back what it claimed and did not send.
--
-- Findings of bench/sender (docs/BENCHMARKS.md). A drain was bound by the
-- claim: one at a time, a few rows each, while most transfer slots stood
-- empty waiting for it. The sender now keeps about a second batch of
-- claimed jobs ready beside those in flight; these are what make it safe.

-- sender_claim, as 005, with a cap on the rows of one webhook in a claim:
-- of the due rows it looks at (p_batch, in due order), it takes at most
-- p_per_webhook of each webhook and leaves the others as they were (locked
-- only until the claim commits, no attempt counted, no lease). A large
-- claim then cannot fill the sender with one host's rows, which it could
-- not send faster than its --per-host cap allows. NULL: no cap.
--
-- Its plan is now made once per session and kept: with sorts and
-- sequential scans ruled out, the only plan is the ordered scan of
-- notifications_due_idx (checked with statistics of an empty table and
-- 300 000 rows queued), so planning it again at every call bought nothing
-- and cost 0.3-0.4 ms, a third of a 16-row claim.
DROP FUNCTION dlrhook.sender_claim(integer, integer, text[]);

CREATE FUNCTION dlrhook.sender_claim(p_batch integer, p_lease_seconds integer,
    p_skip text[] DEFAULT '{}', p_per_webhook integer DEFAULT NULL)
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
	-- See 002 and 005 for the scan. The cap counts rows per webhook in
	-- due order among the locked ones (at most p_batch: a small sort).
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
	), pick AS (
		SELECT d.id, d.w
		FROM (SELECT d.id, d.w, row_number() OVER (
			PARTITION BY d.webhook_id ORDER BY d.next_attempt_at) AS k
		    FROM due d) AS d
		WHERE p_per_webhook IS NULL OR d.k <= p_per_webhook
	)
	UPDATE notifications n
	    SET attempts = n.attempts + 1,
		next_attempt_at = now() + make_interval(secs => p_lease_seconds)
	    FROM pick
	    WHERE n.id = pick.id
	    RETURNING n.id, n.attempts, n.webhook_id, (pick.w).callback_url,
		n.payload, (pick.w).signing_secret,
		CASE WHEN (pick.w).previous_secret_expires_at > now()
		    THEN (pick.w).previous_secret END;
END
$$;

REVOKE ALL ON FUNCTION dlrhook.sender_claim(integer, integer, text[], integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dlrhook.sender_claim(integer, integer, text[], integer)
    TO dlrhook_sender;

-- sender_finish keeps its plans too (every statement's plan is the same
-- for any batch: index lookups per element). Under the default, PostgreSQL
-- planned each of the first calls of a session for its arrays and
-- sometimes went on doing so: 1.9 ms for one element against 0.75.
ALTER FUNCTION dlrhook.sender_finish(uuid[], integer[], text[],
    double precision[], integer[], text[], text[], integer[], timestamptz[],
    text[]) SET plan_cache_mode = force_generic_plan;

-- Gives back claimed notifications that were never sent (element i of both
-- arrays is one): each is due again now, with the attempt it was claimed
-- for not counted, so that a sender that stops (--max-seconds, SIGTERM)
-- with jobs still waiting for a slot neither delays them by a lease nor
-- uses up a step of their retry schedule. Fenced by the attempt number as
-- sender_finish is: once the lease ran out and another claim took the row,
-- a late release changes nothing. Nothing is logged in attempts: no
-- attempt was made. Returns the number given back.
CREATE FUNCTION dlrhook.sender_release(p_ids uuid[], p_attempts integer[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = dlrhook, pg_temp SET enable_seqscan = off SET jit = off AS $$
DECLARE
	v_n	integer;
BEGIN
	IF coalesce(cardinality(p_ids), 0) <> coalesce(cardinality(p_attempts), 0)
	    THEN
		RAISE EXCEPTION 'sender_release: % ids but % attempts',
		    coalesce(cardinality(p_ids), 0),
		    coalesce(cardinality(p_attempts), 0)
		    USING ERRCODE = 'array_subscript_error';
	END IF;
	UPDATE notifications n
	    SET attempts = n.attempts - 1, next_attempt_at = now()
	    FROM unnest(p_ids, p_attempts) AS x(id, attempt)
	    WHERE n.id = x.id AND n.attempts = x.attempt AND x.attempt > 0
		AND n.state = 'pending';
	GET DIAGNOSTICS v_n = ROW_COUNT;
	IF v_n > 0 THEN
		PERFORM pg_notify('dlrhook_pending', '');
	END IF;
	RETURN v_n;
END
$$;

REVOKE ALL ON FUNCTION dlrhook.sender_release(uuid[], integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dlrhook.sender_release(uuid[], integer[])
    TO dlrhook_sender;
