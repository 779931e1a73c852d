-- 003_log_hygiene.sql: keeps signing secrets out of PostgreSQL's log.
--
-- A statement that fails on a row of dlrhook.webhooks makes PostgreSQL log
-- "DETAIL: Failing row contains (...)", which quotes the whole row: the
-- signing secret and the previous one included (seen with a callbackUrl that
-- passed the API's checks but not the table's CHECK). The functions that
-- write webhook rows now log their errors tersely (no DETAIL). The function
-- owner (the superuser that runs dlrhook-migrate) may set this
-- superuser-only parameter, and it holds while the error is logged. A later
-- CREATE OR REPLACE of one of these functions must repeat the SET clause.
--
-- The API passes each new secret (POST, rotation) as a bind parameter;
-- with statement logging turned on (log_min_duration_statement,
-- log_statement) PostgreSQL would log the parameters too. Not for the API
-- role: its parameters are never logged, on success or error.

ALTER FUNCTION dlrhook.api_webhook_create(bytea, text, text)
    SET log_error_verbosity = terse;
ALTER FUNCTION dlrhook.api_webhook_replace(bytea, text)
    SET log_error_verbosity = terse;
ALTER FUNCTION dlrhook.api_secret_rotate(bytea, text)
    SET log_error_verbosity = terse;
ALTER FUNCTION dlrhook.sender_finish(uuid[], integer[], text[],
    double precision[], integer[], text[], text[], integer[], timestamptz[],
    text[])
    SET log_error_verbosity = terse;

ALTER ROLE dlrhook_api SET log_parameter_max_length = 0;
ALTER ROLE dlrhook_api SET log_parameter_max_length_on_error = 0;
