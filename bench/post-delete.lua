-- post-delete.lua: wrk script, POST /webhooks/delivery-status (201) then
-- DELETE it (204), per key (keys.lua deals the keys out). The keys must
-- start without a webhook. A key's request that overtakes its last one
-- gets 404 or 409: keys.lua counts them.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local keys = require("keys")

local mine, posted = nil, {}
local body = '{"callbackUrl":"https://hooks.example.com/dlr"}'

setup = keys.setup
response = keys.response
done = keys.done

function init(args)
	mine = keys.mine()
end

function request()
	local key, i = keys.next(mine)
	posted[i] = not posted[i]
	if posted[i] then
		return wrk.format("POST", wrk.path, {
			["X-API-Key"] = key,
			["Content-Type"] = "application/json",
		}, body)
	end
	return wrk.format("DELETE", wrk.path, { ["X-API-Key"] = key })
end
