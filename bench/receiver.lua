-- receiver.lua: wrk script, POSTs BENCH_PAYLOAD_FILE (one notification's
-- payload) to the benchmark's receiver, as the sender does: its ceiling.
local f = assert(io.open(os.getenv("BENCH_PAYLOAD_FILE")))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["webhook-id"] = "0b9c8d1e-0000-4000-8000-000000000000"
wrk.headers["webhook-timestamp"] = "1775730600"
wrk.headers["webhook-signature"] = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
