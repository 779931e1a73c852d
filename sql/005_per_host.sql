-- 005_per_host.sql: a claim can leave out the webhooks the sender cannot
-- send to now.
--
-- The sender holds at most --per-host attempts in flight to one host, so
-- that a host that does not answer cannot take every slot (bench/sender,
-- "isolation"). Rows it claimed for a host at its cap would wait in the
-- sender, holding slots; so it names the webhooks of such hosts here and
-- the claim passes over their rows, leaving them untouched (no attempt
-- counted, no lease) for a later claim. p_skip is empty unless a host is
-- at its cap. Otherwise this is 002's sender_claim: same rows, same order,
-- same lease. Called with two arguments, it is exactly that.
DROP FUNCTION dlrhook.sender_claim(integer, integer);

CREATE FUNCTION dlrhook.sender_claim(p_batch integer, p_lease_seconds integer,
    p_skip text[] DEFAULT '{}')
RETURNS TABLE (notification_id uuid, attempt integer, webhook_id text,
    callback_url text, payload text, secret text, previous_secret text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = dlrhook, pg_temp SET enable_sort = off
SET enable_seqscan = off SET jit = off
SET plan_cache_mode = force_custom_plan AS $$
BEGIN
	IF p_batch IS NULL OR p_batch < 1 OR p_lease_seconds IS NULL
	    OR p_lease_seconds < 1 THEN
		RAISE EXCEPTION 'sender_claim: batch (%) and lease seconds (%) must be positive',
		    p_batch, p_lease_seconds
		    USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- See 002: an ordered scan of notifications_due_idx, the webhook
	-- looked up per row by its key.
	RETURN QUERY
	WITH due AS (
		SELECT n.id,
		    (SELECT w FROM webhooks w WHERE w.id = n.webhook_id) AS w
		FROM notifications n
		WHERE n.state = 'pending' AND n.next_attempt_at <= now()
		    AND n.webhook_id <> ALL (coalesce(p_skip, '{}'))
		    AND (SELECT w.status FROM webhooks w
			WHERE w.id = n.webhook_id) = 'ACTIVE'
		ORDER BY n.next_attempt_at
		LIMIT p_batch
		FOR UPDATE OF n SKIP LOCKED
	)
	UPDATE notifications n
	    SET attempts = n.attempts + 1,
		next_attempt_at = now() + make_interval(secs => p_lease_seconds)
	    FROM due
	    WHERE n.id = due.id
	    RETURNING n.id, n.attempts, n.webhook_id, (due.w).callback_url,
		n.payload, (due.w).signing_secret,
		CASE WHEN (due.w).previous_secret_expires_at > now()
		    THEN (due.w).previous_secret END;
END
$$;

REVOKE ALL ON FUNCTION dlrhook.sender_claim(integer, integer, text[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dlrhook.sender_claim(integer, integer, text[])
    TO dlrhook_sender;
