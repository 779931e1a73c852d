-- 002_delivery.sql: event intake, the delivery queue, the sender's functions,
-- the attempts log, admin functions and views (docs/sender-contract.md).
--
-- The platform records an event inside its own transaction (transactional
-- outbox); the payload is built once there, so every retry sends the same
-- bytes. The sender role has no table privileges: it claims due rows with a
-- lease and reports a whole batch of outcomes in one call, fenced by the
-- attempt number so a late finisher of an older attempt changes nothing.

ALTER TABLE dlrhook.webhooks ADD COLUMN failing_since timestamptz;

-- One row per event still to deliver ('pending') or given up on ('dead').
-- Delivered rows are deleted. account_id is the webhook's account, copied
-- for the admin views; the webhook's foreign key does the cascading.
CREATE TABLE dlrhook.notifications (
	id		uuid PRIMARY KEY,
	account_id	bigint NOT NULL,
	webhook_id	text NOT NULL REFERENCES dlrhook.webhooks ON DELETE CASCADE,
	payload		text NOT NULL,
	attempts	integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	state		text NOT NULL DEFAULT 'pending'
			CHECK (state IN ('pending', 'dead')),
	next_attempt_at	timestamptz NOT NULL DEFAULT now(),
	created_at	timestamptz NOT NULL DEFAULT now(),
	last_error	text,
	last_status	integer
) WITH (
	-- A queue: every claim and finish leaves dead row versions behind,
	-- which the due-order scan must step over until vacuum removes them.
	autovacuum_vacuum_scale_factor = 0.02,
	autovacuum_vacuum_insert_scale_factor = 0.02
);
-- The sender's hot path: only pending rows, in due order.
CREATE INDEX notifications_due_idx ON dlrhook.notifications (next_attempt_at)
    WHERE state = 'pending';
-- DELETE of a webhook cascades, and disabling one dead-letters its rows.
CREATE INDEX notifications_webhook_idx ON dlrhook.notifications (webhook_id);

-- Every attempt the sender made, kept after the notification is gone (no
-- foreign keys: webhook and account may be NULL when the notification was
-- cancelled while in flight). The key makes a repeated sender_finish of the
-- same batch harmless, while a replayed notification (attempts start at 1
-- again) still logs each new attempt, which starts at another time.
CREATE TABLE dlrhook.attempts (
	notification_id	uuid NOT NULL,
	attempt		integer NOT NULL,
	started_at	timestamptz NOT NULL,
	webhook_id	text,
	account_id	bigint,
	duration_ms	integer,
	http_status	integer,
	error		text,
	response_excerpt text,
	url		text,
	PRIMARY KEY (notification_id, attempt, started_at)
);
CREATE INDEX attempts_started_idx ON dlrhook.attempts (started_at);

-- The first n bytes of t, cut at a character boundary.
CREATE FUNCTION dlrhook.clip_bytes(t text, n integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT CASE WHEN octet_length(t) <= n THEN t ELSE (
		SELECT left(t, k) FROM generate_series(least(n, char_length(t)), 0, -1) AS k
		WHERE octet_length(left(t, k)) <= n LIMIT 1) END
$$;

-- A text as a JSON value: a compact, escaped string, or null. The payload is
-- assembled from these so that it is compact JSON in a fixed key order
-- (json_build_object would put spaces around every colon).
CREATE FUNCTION dlrhook.json_value(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT coalesce(to_json(t)::text, 'null')
$$;

-- Intake, called by the platform in its own transaction. Returns the event
-- id, or NULL when the account has no ACTIVE webhook (nothing is queued:
-- events while no webhook is configured are never delivered). The webhook
-- row is share-locked on its key, so a concurrent DELETE either waits for
-- this transaction or wins and leaves nothing to queue, never an error.
CREATE FUNCTION dlrhook.record_delivery_status(p_account bigint,
    p_message_id text, p_channel text, p_status text,
    p_occurred_at timestamptz,
    p_error_code text DEFAULT NULL, p_error_description text DEFAULT NULL,
    p_customer_message_id text DEFAULT NULL, p_destination text DEFAULT NULL,
    p_channel_status text DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	v_webhook	text;
	v_id		uuid;
BEGIN
	IF p_account IS NULL THEN
		RAISE EXCEPTION 'record_delivery_status: account id is NULL'
		    USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF p_message_id IS NULL OR btrim(p_message_id) = '' THEN
		RAISE EXCEPTION 'record_delivery_status: message id is NULL or empty'
		    USING ERRCODE = CASE WHEN p_message_id IS NULL
			THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END;
	END IF;
	IF p_channel IS NULL OR p_channel NOT IN ('SMS', 'RCS', 'WHATSAPP') THEN
		RAISE EXCEPTION 'record_delivery_status: unknown channel %',
		    coalesce(quote_literal(p_channel), 'NULL')
		    USING ERRCODE = 'invalid_parameter_value',
			  HINT = 'channel is one of SMS, RCS, WHATSAPP';
	END IF;
	IF p_status IS NULL OR p_status NOT IN
	    ('SENT', 'DELIVERED', 'READ', 'FAILED', 'EXPIRED') THEN
		RAISE EXCEPTION 'record_delivery_status: unknown status %',
		    coalesce(quote_literal(p_status), 'NULL')
		    USING ERRCODE = 'invalid_parameter_value',
			  HINT = 'status is one of SENT, DELIVERED, READ, FAILED, EXPIRED';
	END IF;
	IF p_status = 'READ' AND p_channel = 'SMS' THEN
		RAISE EXCEPTION 'record_delivery_status: status READ does not exist for channel SMS'
		    USING ERRCODE = 'invalid_parameter_value',
			  HINT = 'SMS reports SENT, DELIVERED, FAILED or EXPIRED';
	END IF;
	IF p_occurred_at IS NULL THEN
		RAISE EXCEPTION 'record_delivery_status: occurred_at is NULL'
		    USING ERRCODE = 'null_value_not_allowed';
	END IF;

	SELECT id INTO v_webhook FROM webhooks
	    WHERE account_id = p_account AND status = 'ACTIVE' FOR KEY SHARE;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;

	v_id := gen_random_uuid();
	INSERT INTO notifications (id, account_id, webhook_id, payload)
	VALUES (v_id, p_account, v_webhook,
	    '{"eventId":' || json_value(v_id::text) ||
	    ',"eventType":"DELIVERY_STATUS"' ||
	    ',"messageId":' || json_value(p_message_id) ||
	    ',"customerMessageId":' || json_value(p_customer_message_id) ||
	    ',"channel":' || json_value(p_channel) ||
	    ',"status":' || json_value(p_status) ||
	    ',"channelStatus":' || json_value(p_channel_status) ||
	    ',"timestamp":' || json_value(rfc3339(p_occurred_at)) ||
	    ',"destination":' || json_value(p_destination) ||
	    ',"error":' || CASE WHEN p_error_code IS NULL
		AND p_error_description IS NULL THEN 'null'
		ELSE '{"code":' || json_value(p_error_code) ||
		    ',"description":' || json_value(p_error_description) || '}'
		END || '}');
	PERFORM pg_notify('dlrhook_pending', '');
	RETURN v_id;
END
$$;

-- Claims up to p_batch due notifications of ACTIVE webhooks. The lease
-- (next_attempt_at moved p_lease_seconds ahead) makes a crashed sender's rows
-- due again; attempts + 1 is this attempt's number and its fencing token.
-- URL and secrets are the webhook's current ones, so a PUT redirects
-- everything not yet claimed. The caller commits before any network I/O.
--
-- The only good plan is an ordered scan of notifications_due_idx that stops
-- after p_batch rows, with a primary-key lookup per row. A queue's
-- statistics are always stale (analyzed while nearly empty, then 300 000
-- rows arrive in a burst), and with them the planner prefers to fetch and
-- sort every due row and to scan webhooks per row: seconds per claim just
-- when the backlog is largest. So sorts and sequential scans are ruled out
-- here (as in the other sender_* functions), and the plan is made for the
-- actual batch size (a generic plan guesses 10% of the table). The cost
-- estimate of the whole index range is large, which would make PostgreSQL
-- JIT-compile the query on every call (a quarter of a second); no JIT.
CREATE FUNCTION dlrhook.sender_claim(p_batch integer, p_lease_seconds integer)
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
	-- The webhook is looked up per row by its key (a subquery, never a
	-- join the planner could turn into a scan of all webhooks).
	RETURN QUERY
	WITH due AS (
		SELECT n.id,
		    (SELECT w FROM webhooks w WHERE w.id = n.webhook_id) AS w
		FROM notifications n
		WHERE n.state = 'pending' AND n.next_attempt_at <= now()
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

-- Records a batch of attempts (element i of every array is one attempt) and
-- applies each outcome where the notification is still pending at that
-- attempt number. Webhook rows are locked first, in id order, so concurrent
-- finishers (and PUT/DELETE) never deadlock; webhook state is then derived
-- from the applied outcomes only: failing_since is the first failure after
-- the latest success, and a 410 or 5 days of failures disables the webhook,
-- dead-lettering whatever it still had pending. Returns the number applied.
CREATE FUNCTION dlrhook.sender_finish(p_ids uuid[], p_attempts integer[],
    p_outcomes text[], p_retry_seconds double precision[],
    p_http_status integer[], p_errors text[], p_excerpts text[],
    p_duration_ms integer[], p_started_at timestamptz[], p_urls text[])
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = dlrhook, pg_temp SET enable_seqscan = off SET jit = off AS $$
DECLARE
	v_n		integer := coalesce(cardinality(p_ids), 0);
	v_applied	integer;
	v_disabled	text[];
BEGIN
	IF v_n = 0 THEN
		RETURN 0;
	END IF;
	IF coalesce(cardinality(p_attempts), 0) <> v_n
	    OR coalesce(cardinality(p_outcomes), 0) <> v_n
	    OR coalesce(cardinality(p_retry_seconds), 0) <> v_n
	    OR coalesce(cardinality(p_http_status), 0) <> v_n
	    OR coalesce(cardinality(p_errors), 0) <> v_n
	    OR coalesce(cardinality(p_excerpts), 0) <> v_n
	    OR coalesce(cardinality(p_duration_ms), 0) <> v_n
	    OR coalesce(cardinality(p_started_at), 0) <> v_n
	    OR coalesce(cardinality(p_urls), 0) <> v_n THEN
		RAISE EXCEPTION 'sender_finish: the ten arrays must have the same length (% ids)', v_n
		    USING ERRCODE = 'array_subscript_error';
	END IF;
	IF EXISTS (SELECT 1 FROM unnest(p_ids, p_attempts, p_outcomes,
		    p_retry_seconds) AS x(id, attempt, outcome, retry_seconds)
		WHERE x.id IS NULL OR x.attempt IS NULL OR x.outcome IS NULL
		    OR x.outcome NOT IN ('delivered', 'retry', 'dead', 'gone')
		    OR (x.outcome = 'retry' AND x.retry_seconds IS NULL)) THEN
		RAISE EXCEPTION 'sender_finish: every element needs an id, an attempt and an outcome (delivered, retry, dead, gone); retry needs retry seconds'
		    USING ERRCODE = 'invalid_parameter_value';
	END IF;

	PERFORM 1 FROM webhooks w
	    WHERE w.id = ANY (ARRAY(SELECT DISTINCT n.webhook_id
		FROM notifications n WHERE n.id = ANY (p_ids)))
	    ORDER BY w.id
	    FOR NO KEY UPDATE;

	INSERT INTO attempts (notification_id, attempt, started_at, webhook_id,
	    account_id, duration_ms, http_status, error, response_excerpt, url)
	SELECT x.id, x.attempt, coalesce(x.started_at, now()), n.webhook_id,
	    n.account_id, x.duration_ms, nullif(x.http_status, 0), x.error,
	    CASE WHEN octet_length(x.excerpt) > 256
		THEN clip_bytes(x.excerpt, 256) ELSE x.excerpt END, x.url
	FROM unnest(p_ids, p_attempts, p_http_status, p_errors, p_excerpts,
	    p_duration_ms, p_started_at, p_urls)
	    AS x(id, attempt, http_status, error, excerpt, duration_ms,
		started_at, url)
	LEFT JOIN notifications n ON n.id = x.id
	ON CONFLICT DO NOTHING;

	WITH u AS (
		SELECT DISTINCT ON (x.id, x.attempt) x.id, x.attempt, x.outcome,
		    greatest(x.retry_seconds, 0) AS retry_seconds,
		    nullif(x.http_status, 0) AS http_status, x.error,
		    coalesce(x.started_at, now()) AS started_at, x.url
		FROM unnest(p_ids, p_attempts, p_outcomes, p_retry_seconds,
		    p_http_status, p_errors, p_started_at, p_urls)
		    WITH ORDINALITY AS x(id, attempt, outcome, retry_seconds,
			http_status, error, started_at, url, ord)
		ORDER BY x.id, x.attempt, x.ord
	), del AS (
		DELETE FROM notifications n USING u
		WHERE n.id = u.id AND n.attempts = u.attempt
		    AND n.state = 'pending' AND u.outcome = 'delivered'
		RETURNING n.webhook_id, u.outcome, u.started_at, u.url
	), upd AS (
		UPDATE notifications n SET
		    state = CASE WHEN u.outcome = 'retry' THEN 'pending' ELSE 'dead' END,
		    next_attempt_at = CASE WHEN u.outcome = 'retry'
			THEN now() + make_interval(secs => u.retry_seconds)
			ELSE n.next_attempt_at END,
		    last_error = u.error,
		    last_status = u.http_status
		FROM u
		WHERE n.id = u.id AND n.attempts = u.attempt
		    AND n.state = 'pending' AND u.outcome <> 'delivered'
		RETURNING n.webhook_id, u.outcome, u.started_at, u.url
	), done AS (
		SELECT * FROM del UNION ALL SELECT * FROM upd
	), ok AS (
		SELECT d.webhook_id,
		    max(d.started_at) FILTER (WHERE d.outcome = 'delivered') AS last_ok
		FROM done d GROUP BY d.webhook_id
	), per AS (
		SELECT d.webhook_id, o.last_ok,
		    bool_or(d.outcome <> 'delivered') AS failed,
		    min(d.started_at) FILTER (WHERE d.outcome <> 'delivered'
			AND (o.last_ok IS NULL OR d.started_at > o.last_ok)) AS first_fail,
		    min(d.url) FILTER (WHERE d.outcome = 'gone') AS gone_url
		FROM done d JOIN ok o ON o.webhook_id = d.webhook_id
		GROUP BY d.webhook_id, o.last_ok
	), fs AS (
		SELECT p.webhook_id, p.failed, p.gone_url,
		    w.status = 'ACTIVE' AS was_active,
		    CASE WHEN p.last_ok IS NOT NULL AND (w.failing_since IS NULL
			    OR p.last_ok >= w.failing_since)
			THEN p.first_fail
			ELSE least(w.failing_since, p.first_fail) END AS failing_since
		FROM per p JOIN webhooks w ON w.id = p.webhook_id
	), verdict AS (
		SELECT f.*, CASE WHEN NOT f.was_active THEN NULL
			WHEN f.gone_url IS NOT NULL
			THEN 'HTTP 410 Gone from ' || f.gone_url
			WHEN f.failed AND f.failing_since < now() - interval '5 days'
			THEN 'no successful delivery since ' || rfc3339(f.failing_since)
			    || ' (5 days of failures)' END AS reason
		FROM fs f
	), wup AS (
		UPDATE webhooks w SET
		    failing_since = v.failing_since,
		    status = CASE WHEN v.reason IS NULL THEN w.status ELSE 'DISABLED' END,
		    disabled_reason = coalesce(v.reason, w.disabled_reason),
		    updated_at = CASE WHEN v.reason IS NULL THEN w.updated_at
			ELSE clock_timestamp() END
		FROM verdict v
		WHERE w.id = v.webhook_id AND (v.reason IS NOT NULL
		    OR w.failing_since IS DISTINCT FROM v.failing_since)
		RETURNING w.id, v.reason IS NOT NULL AS disabled
	)
	SELECT (SELECT count(*) FROM done),
	    (SELECT array_agg(wup.id) FROM wup WHERE wup.disabled)
	INTO v_applied, v_disabled;

	IF v_disabled IS NOT NULL THEN
		UPDATE notifications n
		    SET state = 'dead',
			last_error = 'webhook disabled: ' || w.disabled_reason
		    FROM webhooks w
		    WHERE w.id = ANY (v_disabled) AND n.webhook_id = w.id
			AND n.state = 'pending';
	END IF;
	RETURN v_applied;
END
$$;

-- When the follow-mode sender should wake up next (leases included, so a
-- crashed sender's rows are picked up when they expire), or NULL. Planned
-- as sender_claim is, for the same reason.
CREATE FUNCTION dlrhook.sender_next_due() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = dlrhook, pg_temp SET enable_sort = off
SET enable_seqscan = off SET jit = off AS $$
	SELECT n.next_attempt_at FROM notifications n
	WHERE n.state = 'pending'
	    AND (SELECT w.status FROM webhooks w
		WHERE w.id = n.webhook_id) = 'ACTIVE'
	ORDER BY n.next_attempt_at
	LIMIT 1
$$;

-- Admin: dead notifications of an account created since p_since get a new
-- full retry schedule, due now. A still-DISABLED webhook keeps them waiting
-- until a PUT makes it ACTIVE again, which the notice says.
CREATE FUNCTION dlrhook.replay_failed(p_account bigint, p_since timestamptz)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	w	webhooks;
	v_n	integer;
BEGIN
	IF p_account IS NULL OR p_since IS NULL THEN
		RAISE EXCEPTION 'replay_failed: account and since must not be NULL'
		    USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO w FROM webhooks WHERE account_id = p_account;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	UPDATE notifications SET state = 'pending', attempts = 0,
	    next_attempt_at = now()
	    WHERE webhook_id = w.id AND state = 'dead' AND created_at >= p_since;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	IF v_n > 0 THEN
		PERFORM pg_notify('dlrhook_pending', '');
		IF w.status <> 'ACTIVE' THEN
			RAISE NOTICE 'webhook % is DISABLED (%); the % replayed notification(s) wait until a PUT makes it ACTIVE',
			    w.id, w.disabled_reason, v_n;
		END IF;
	END IF;
	RETURN v_n;
END
$$;

-- Admin: deletes attempts log rows older than p_days days.
CREATE FUNCTION dlrhook.prune_attempts(p_days integer DEFAULT 14) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	v_n	bigint;
BEGIN
	IF p_days IS NULL OR p_days < 0 THEN
		RAISE EXCEPTION 'prune_attempts: days must be 0 or more'
		    USING ERRCODE = 'invalid_parameter_value';
	END IF;
	DELETE FROM attempts WHERE started_at < now() - make_interval(days => p_days);
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END
$$;

-- PUT: replaces the URL, never creates; a DISABLED webhook becomes ACTIVE
-- and its failure streak starts afresh.
CREATE OR REPLACE FUNCTION dlrhook.api_webhook_replace(p_key bytea, p_url text)
RETURNS dlrhook.api_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	v_account	bigint := api_account(p_key);
	w		webhooks;
BEGIN
	IF v_account IS NULL THEN
		RETURN ROW('unauthorized'::text, NULL::text, NULL::text,
		    NULL::text, NULL::text, NULL::text, NULL::text);
	END IF;
	UPDATE webhooks SET callback_url = p_url, status = 'ACTIVE',
	    disabled_reason = NULL, failing_since = NULL,
	    updated_at = clock_timestamp()
	    WHERE account_id = v_account
	    RETURNING * INTO w;
	IF NOT FOUND THEN
		RETURN ROW('no_webhook'::text, NULL::text, NULL::text,
		    NULL::text, NULL::text, NULL::text, NULL::text);
	END IF;
	RETURN ROW('ok'::text, w.id, w.callback_url, w.status,
	    rfc3339(w.created_at), rfc3339(w.updated_at), NULL::text);
END
$$;

-- Per account: what is waiting. "scheduled" includes rows in flight (leased).
CREATE VIEW dlrhook.backlog AS
SELECT n.account_id, a.name AS account_name, n.webhook_id,
    w.status AS webhook_status,
    count(*) FILTER (WHERE n.state = 'pending'
	AND n.next_attempt_at <= now()) AS due_now,
    count(*) FILTER (WHERE n.state = 'pending'
	AND n.next_attempt_at > now()) AS scheduled,
    count(*) FILTER (WHERE n.state = 'dead') AS dead,
    now() - min(n.created_at) FILTER (WHERE n.state = 'pending')
	AS oldest_pending_age
FROM dlrhook.notifications n
JOIN dlrhook.webhooks w ON w.id = n.webhook_id
LEFT JOIN dlrhook.accounts a ON a.id = n.account_id
GROUP BY n.account_id, a.name, n.webhook_id, w.status;

-- Notifications given up on; replay_failed() sends them again.
CREATE VIEW dlrhook.dead_letters AS
SELECT n.id AS notification_id, n.account_id, n.webhook_id, w.callback_url,
    w.status AS webhook_status, n.attempts, n.last_status, n.last_error,
    n.created_at, n.payload
FROM dlrhook.notifications n
JOIN dlrhook.webhooks w ON w.id = n.webhook_id
WHERE n.state = 'dead'
ORDER BY n.created_at DESC;

CREATE VIEW dlrhook.recent_attempts AS
SELECT started_at, account_id, webhook_id, notification_id, attempt,
    http_status, duration_ms, error, url, response_excerpt
FROM dlrhook.attempts
WHERE started_at > now() - interval '24 hours'
ORDER BY started_at DESC;

-- The platform's role: may record events and nothing else.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dlrhook_platform') THEN
		CREATE ROLE dlrhook_platform NOLOGIN;
	END IF;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA dlrhook FROM PUBLIC;
REVOKE ALL ON dlrhook.notifications, dlrhook.attempts, dlrhook.backlog,
    dlrhook.dead_letters, dlrhook.recent_attempts FROM PUBLIC;
GRANT USAGE ON SCHEMA dlrhook TO dlrhook_platform;
GRANT EXECUTE ON FUNCTION dlrhook.record_delivery_status(bigint, text, text,
    text, timestamptz, text, text, text, text, text)
    TO dlrhook_platform, dlrhook_admin;
GRANT EXECUTE ON FUNCTION dlrhook.sender_claim(integer, integer),
    dlrhook.sender_finish(uuid[], integer[], text[], double precision[],
	integer[], text[], text[], integer[], timestamptz[], text[]),
    dlrhook.sender_next_due()
    TO dlrhook_sender;
GRANT SELECT, INSERT, UPDATE, DELETE ON dlrhook.notifications,
    dlrhook.attempts TO dlrhook_admin;
GRANT SELECT ON dlrhook.backlog, dlrhook.dead_letters, dlrhook.recent_attempts
    TO dlrhook_admin;
GRANT EXECUTE ON FUNCTION dlrhook.replay_failed(bigint, timestamptz),
    dlrhook.prune_attempts(integer)
    TO dlrhook_admin;
-- So that the sender's cron job can prune the log with its own credentials.
GRANT EXECUTE ON FUNCTION dlrhook.prune_attempts(integer) TO dlrhook_sender;
