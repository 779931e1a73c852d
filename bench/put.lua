-- put.lua: wrk script, PUT /webhooks/delivery-status with a callbackUrl
-- that alternates between two URLs per key (keys.lua deals the keys out).
-- Every key must have a webhook: every answer is then a 200.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local keys = require("keys")

local mine, flip = nil, {}
local urls = {
	'{"callbackUrl":"https://hooks-a.example.com/dlr"}',
	'{"callbackUrl":"https://hooks-b.example.com/dlr"}',
}

setup = keys.setup

function init(args)
	mine = keys.mine()
end

function request()
	local key, i = keys.next(mine)
	flip[i] = (flip[i] or 0) % 2 + 1
	return wrk.format("PUT", wrk.path, {
		["X-API-Key"] = key,
		["Content-Type"] = "application/json",
	}, urls[flip[i]])
end
