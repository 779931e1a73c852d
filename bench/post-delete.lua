-- post-delete.lua: wrk script, POST /webhooks/delivery-status (201) then
-- DELETE it (204), per key, the thread's keys taken in turn (keep more keys
-- per thread than connections per thread). The keys must start without a
-- webhook.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local keys = require("keys")

local mine, turn, posted = nil, 0, {}
local body = '{"callbackUrl":"https://hooks.example.com/dlr"}'

setup = keys.setup

function init(args)
	mine = keys.mine()
end

function request()
	local i = turn % #mine + 1
	turn = turn + 1
	posted[i] = not posted[i]
	if posted[i] then
		return wrk.format("POST", wrk.path, {
			["X-API-Key"] = mine[i],
			["Content-Type"] = "application/json",
		}, body)
	end
	return wrk.format("DELETE", wrk.path, { ["X-API-Key"] = mine[i] })
end
