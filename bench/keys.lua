-- keys.lua: what put.lua and post-delete.lua share: the keys of
-- BENCH_KEYS (a file, one API key a line), dealt out to wrk's threads so
-- that no two threads ever use the same key.

local M = {}
local next_id = 0

-- In wrk's main state: numbers the threads.
function M.setup(thread)
	thread:set("bench_tid", next_id)
	next_id = next_id + 1
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

return M
