-- put.lua: wrk script, PUT /webhooks/delivery-status with a callbackUrl
-- that alternates between two URLs per key; the thread's keys are taken in
-- turn, so each key's previous request is over before its next one (keep
-- more keys per thread than connections per thread). Every key must have a
-- webhook: every answer is then a 200.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local keys = require("keys")

local mine, turn, flip = nil, 0, {}
local urls = {
	'{"callbackUrl":"https://hooks-a.example.com/dlr"}',
	'{"callbackUrl":"https://hooks-b.example.com/dlr"}',
}

setup = keys.setup

function init(args)
	mine = keys.mine()
end

function request()
	local i = turn % #mine + 1
	turn = turn + 1
	flip[i] = (flip[i] or 0) % 2 + 1
	return wrk.format("PUT", wrk.path, {
		["X-API-Key"] = mine[i],
		["Content-Type"] = "application/json",
	}, urls[flip[i]])
end
