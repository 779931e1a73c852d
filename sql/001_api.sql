-- 001_api.sql: accounts, API keys, webhooks, the API's functions, roles.
--
-- The API's database role holds no table privileges: it may only call the
-- api_* functions below, each of which authenticates a key hash and acts on
-- that key's own account. So the API role cannot read or change another
-- account's data, whatever the application does.

CREATE TABLE dlrhook.accounts (
	id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name		text NOT NULL CHECK (name <> ''),
	created_at	timestamptz NOT NULL DEFAULT now()
);

-- Keys are stored only as SHA-256 hashes; prefix lets admins tell them apart.
CREATE TABLE dlrhook.api_keys (
	key_hash	bytea PRIMARY KEY CHECK (octet_length(key_hash) = 32),
	account_id	bigint NOT NULL REFERENCES dlrhook.accounts ON DELETE CASCADE,
	prefix		text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	revoked_at	timestamptz
);
CREATE INDEX api_keys_account_idx ON dlrhook.api_keys (account_id);

CREATE TABLE dlrhook.webhooks (
	id		text PRIMARY KEY
			DEFAULT 'wh_' || replace(gen_random_uuid()::text, '-', ''),
	account_id	bigint NOT NULL REFERENCES dlrhook.accounts ON DELETE CASCADE,
	callback_url	text NOT NULL CHECK (callback_url LIKE 'https://%'
			    AND octet_length(callback_url) <= 2048),
	status		text NOT NULL DEFAULT 'ACTIVE'
			CHECK (status IN ('ACTIVE', 'DISABLED')),
	disabled_reason	text,
	signing_secret	text NOT NULL CHECK (signing_secret LIKE 'whsec\_%'),
	previous_secret	text CHECK (previous_secret LIKE 'whsec\_%'),
	previous_secret_expires_at timestamptz,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now(),
	-- One webhook per account: concurrent creates get exactly one winner.
	CONSTRAINT webhooks_one_per_account UNIQUE (account_id)
);

-- RFC 3339 UTC with milliseconds, the API's only timestamp format.
CREATE FUNCTION dlrhook.rfc3339(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- What every api_* function returns: outcome is 'ok', 'unauthorized',
-- 'no_webhook' or 'conflict'; the other fields are set when there is a webhook.
CREATE TYPE dlrhook.api_result AS (
	outcome		text,
	id		text,
	callback_url	text,
	status		text,
	created_at	text,
	updated_at	text,
	signing_secret	text
);

-- A result that carries only an outcome.
CREATE FUNCTION dlrhook.api_outcome(p_outcome text) RETURNS dlrhook.api_result
LANGUAGE sql IMMUTABLE AS $$
	SELECT p_outcome, NULL::text, NULL::text, NULL::text, NULL::text,
	    NULL::text, NULL::text
$$;

-- The account a live key belongs to, or NULL.
CREATE FUNCTION dlrhook.api_account(p_key bytea) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
	SELECT account_id FROM api_keys WHERE key_hash = p_key AND revoked_at IS NULL
$$;

CREATE FUNCTION dlrhook.api_check(p_key bytea) RETURNS dlrhook.api_result
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
	SELECT CASE WHEN api_account(p_key) IS NULL THEN 'unauthorized' ELSE 'ok' END,
	    NULL, NULL, NULL, NULL, NULL, NULL
$$;

CREATE FUNCTION dlrhook.api_webhook_get(p_key bytea) RETURNS dlrhook.api_result
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
	SELECT CASE WHEN k.account_id IS NULL THEN 'unauthorized'
		    WHEN w.id IS NULL THEN 'no_webhook' ELSE 'ok' END,
	    w.id, w.callback_url, w.status, rfc3339(w.created_at),
	    rfc3339(w.updated_at), NULL
	FROM (SELECT 1) AS one
	LEFT JOIN api_keys k ON k.key_hash = p_key AND k.revoked_at IS NULL
	LEFT JOIN webhooks w ON w.account_id = k.account_id
$$;

CREATE FUNCTION dlrhook.api_webhook_create(p_key bytea, p_url text, p_secret text)
RETURNS dlrhook.api_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	v_account	bigint := api_account(p_key);
	w		webhooks;
BEGIN
	IF v_account IS NULL THEN
		RETURN api_outcome('unauthorized');
	END IF;
	INSERT INTO webhooks (account_id, callback_url, signing_secret)
	    VALUES (v_account, p_url, p_secret)
	    ON CONFLICT ON CONSTRAINT webhooks_one_per_account DO NOTHING
	    RETURNING * INTO w;
	IF NOT FOUND THEN
		RETURN api_outcome('conflict');
	END IF;
	RETURN ROW('ok'::text, w.id, w.callback_url, w.status, rfc3339(w.created_at),
	    rfc3339(w.updated_at), w.signing_secret);
END
$$;

-- PUT: replaces the URL, never creates; a DISABLED webhook becomes ACTIVE.
CREATE FUNCTION dlrhook.api_webhook_replace(p_key bytea, p_url text)
RETURNS dlrhook.api_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	v_account	bigint := api_account(p_key);
	w		webhooks;
BEGIN
	IF v_account IS NULL THEN
		RETURN api_outcome('unauthorized');
	END IF;
	UPDATE webhooks SET callback_url = p_url, status = 'ACTIVE',
	    disabled_reason = NULL, updated_at = clock_timestamp()
	    WHERE account_id = v_account
	    RETURNING * INTO w;
	IF NOT FOUND THEN
		RETURN api_outcome('no_webhook');
	END IF;
	RETURN ROW('ok'::text, w.id, w.callback_url, w.status, rfc3339(w.created_at),
	    rfc3339(w.updated_at), NULL::text);
END
$$;

-- DELETE: pending notifications go with the webhook (foreign keys cascade).
CREATE FUNCTION dlrhook.api_webhook_delete(p_key bytea) RETURNS dlrhook.api_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	v_account	bigint := api_account(p_key);
	v_id		text;
BEGIN
	IF v_account IS NULL THEN
		RETURN api_outcome('unauthorized');
	END IF;
	DELETE FROM webhooks WHERE account_id = v_account RETURNING id INTO v_id;
	IF NOT FOUND THEN
		RETURN api_outcome('no_webhook');
	END IF;
	RETURN ROW('ok'::text, v_id, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text);
END
$$;

CREATE FUNCTION dlrhook.api_secret_get(p_key bytea) RETURNS dlrhook.api_result
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
	SELECT CASE WHEN k.account_id IS NULL THEN 'unauthorized'
		    WHEN w.id IS NULL THEN 'no_webhook' ELSE 'ok' END,
	    w.id, NULL, NULL, NULL, NULL, w.signing_secret
	FROM (SELECT 1) AS one
	LEFT JOIN api_keys k ON k.key_hash = p_key AND k.revoked_at IS NULL
	LEFT JOIN webhooks w ON w.account_id = k.account_id
$$;

-- Rotation: the old secret keeps signing (alongside the new) for 24 hours.
CREATE FUNCTION dlrhook.api_secret_rotate(p_key bytea, p_secret text)
RETURNS dlrhook.api_result
LANGUAGE plpgsql SECURITY DEFINER SET search_path = dlrhook, pg_temp AS $$
DECLARE
	v_account	bigint := api_account(p_key);
	w		webhooks;
BEGIN
	IF v_account IS NULL THEN
		RETURN api_outcome('unauthorized');
	END IF;
	UPDATE webhooks SET previous_secret = signing_secret,
	    previous_secret_expires_at = now() + interval '24 hours',
	    signing_secret = p_secret
	    WHERE account_id = v_account
	    RETURNING * INTO w;
	IF NOT FOUND THEN
		RETURN api_outcome('no_webhook');
	END IF;
	RETURN ROW('ok'::text, w.id, NULL::text, NULL::text, NULL::text, NULL::text, w.signing_secret);
END
$$;

-- Admin: a new account; returns its id.
CREATE FUNCTION dlrhook.create_account(p_name text) RETURNS bigint
LANGUAGE sql SET search_path = dlrhook, pg_temp AS $$
	INSERT INTO accounts (name) VALUES (p_name) RETURNING id
$$;

-- Admin: a new API key for an account. The plaintext is returned once and
-- never stored; 32 bytes from PostgreSQL's strong random source.
CREATE FUNCTION dlrhook.create_api_key(p_account bigint) RETURNS text
LANGUAGE plpgsql SET search_path = dlrhook, pg_temp AS $$
DECLARE
	v_key	text := 'dlr_' || encode(uuid_send(gen_random_uuid()) ||
		    uuid_send(gen_random_uuid()), 'hex');
BEGIN
	IF NOT EXISTS (SELECT 1 FROM accounts WHERE id = p_account) THEN
		RAISE EXCEPTION 'account % does not exist', p_account
		    USING ERRCODE = 'foreign_key_violation';
	END IF;
	INSERT INTO api_keys (key_hash, account_id, prefix)
	    VALUES (sha256(convert_to(v_key, 'UTF8')), p_account, left(v_key, 12));
	RETURN v_key;
END
$$;

-- Admin: revokes a key given in plaintext; false when no live key matched.
CREATE FUNCTION dlrhook.revoke_api_key(p_key text) RETURNS boolean
LANGUAGE sql SET search_path = dlrhook, pg_temp AS $$
	WITH r AS (
		UPDATE api_keys SET revoked_at = now()
		WHERE key_hash = sha256(convert_to(p_key, 'UTF8'))
		    AND revoked_at IS NULL
		RETURNING 1)
	SELECT EXISTS (SELECT 1 FROM r)
$$;

-- Roles. dlrhook_api and dlrhook_sender log in (set a password or use peer/
-- cert auth in production); dlrhook_admin is a group for people.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dlrhook_api') THEN
		CREATE ROLE dlrhook_api LOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dlrhook_sender') THEN
		CREATE ROLE dlrhook_sender LOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dlrhook_admin') THEN
		CREATE ROLE dlrhook_admin NOLOGIN;
	END IF;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA dlrhook FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA dlrhook FROM PUBLIC;
GRANT USAGE ON SCHEMA dlrhook TO dlrhook_api, dlrhook_sender, dlrhook_admin;
GRANT EXECUTE ON FUNCTION dlrhook.api_check(bytea),
    dlrhook.api_webhook_get(bytea),
    dlrhook.api_webhook_create(bytea, text, text),
    dlrhook.api_webhook_replace(bytea, text),
    dlrhook.api_webhook_delete(bytea),
    dlrhook.api_secret_get(bytea),
    dlrhook.api_secret_rotate(bytea, text)
    TO dlrhook_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA dlrhook TO dlrhook_admin;
GRANT EXECUTE ON FUNCTION dlrhook.create_account(text),
    dlrhook.create_api_key(bigint), dlrhook.revoke_api_key(text),
    dlrhook.rfc3339(timestamptz)
    TO dlrhook_admin;
