-- keys.lua: what put.lua and post-delete.lua share: the keys of
-- BENCH_KEYS (a file, one API key a line), dealt out to wrk's threads so
-- that no two threads ever use the same key, and taken in turn, so that
-- each key's previous request is over before its next one (keep more keys
-- per thread than connections per thread).

local M = {}
local next_id = 0

local threads = {}

-- In wrk's main state: numbers the threads.
function M.setup(thread)
	thread:set("bench_tid", next_id)
	next_id = next_id + 1
	threads[#threads + 1] = thread
end

-- In a thread: counts the answers 404 and 409. Taking keys in turn keeps
-- a key's requests apart, but not always: when one answer takes longer
-- than a turn of the keys, the key's next request overtakes it (a DELETE
-- before its POST is done: 404, then the POST after the POST: 409).
overtaken404, overtaken409 = 0, 0
function M.response(status, headers, body)
	if status == 404 then
		overtaken404 = overtaken404 + 1
	elseif status == 409 then
		overtaken409 = overtaken409 + 1
	end
end

-- In wrk's main state, at the end: the counts, for bench/api.
function M.done(summary, latency, requests)
	local a, b = 0, 0
	for _, t in ipairs(threads) do
		a = a + (t:get("overtaken404") or 0)
		b = b + (t:get("overtaken409") or 0)
	end
	io.write(string.format("Overtaken: %d 404, %d 409\n", a, b))
end

-- In a thread: its share of the keys (every BENCH_WRK_THREADS-th line).
function M.mine()
	local n = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
	local keys, i = {}, 0
	for line in io.lines(os.getenv("BENCH_KEYS")) do
		if i % n == bench_tid then
			keys[#keys + 1] = line
		end
		i = i + 1
	end
	assert(#keys > 0, "no keys for thread " .. tostring(bench_tid))
	return keys
end

-- In a thread: the next of its keys in turn, and its index in mine().
local turn = 0
function M.next(keys)
	local i = turn % #keys + 1
	turn = turn + 1
	return keys[i], i
end

return M
