-- 009_webhook_changes.sql: the sender hears of a webhook's change at once.
--
-- A sender keeps claimed notifications in memory until their host has a
-- free slot, with the URL and secret read at the claim. A PUT, a DELETE,
-- a rotation or a webhook disabled meanwhile must reach those too: only
-- an attempt already sent may still go to the old URL (the contract's
-- "in-flight" requests). So every such change notifies channel
-- dlrhook_webhook with the webhook's id, on commit; the sender LISTENs and
-- gives back (sender_release) what it holds of that webhook, to be claimed
-- again as the webhook now is, or not at all.
CREATE FUNCTION dlrhook.webhook_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = dlrhook, pg_temp AS $$
BEGIN
	PERFORM pg_notify('dlrhook_webhook', OLD.id);
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION dlrhook.webhook_changed() FROM PUBLIC;

CREATE TRIGGER webhooks_changed AFTER UPDATE ON dlrhook.webhooks
FOR EACH ROW WHEN (OLD.callback_url IS DISTINCT FROM NEW.callback_url
    OR OLD.signing_secret IS DISTINCT FROM NEW.signing_secret
    OR OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION dlrhook.webhook_changed();

CREATE TRIGGER webhooks_deleted AFTER DELETE ON dlrhook.webhooks
FOR EACH ROW EXECUTE FUNCTION dlrhook.webhook_changed();
