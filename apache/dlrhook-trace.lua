-- dlrhook-trace.lua: answers TRACE on the API's routes as the API answers
-- any method a route does not serve: 405, problem+json, Allow.
--
-- Apache handles TRACE in its core, before any handler runs, so the program
-- never sees it; with "TraceEnable off" Apache's own answer is an HTML 405
-- with an empty Allow. dlrhook-apache.conf runs this as a quick handler
-- (mod_lua), which comes first. It cannot see where the API is mounted, so
-- it matches the route at the end of the path, under any prefix.

local allow = {
	["/delivery-status"] = "GET, POST, PUT, DELETE",
	["/delivery-status/secret"] = "GET",
	["/delivery-status/secret/rotate"] = "POST",
}

local body = '{"type":"urn:problem-type:dlrhook:method-not-allowed",' ..
	'"title":"Method Not Allowed","status":405,' ..
	'"detail":"This method is not supported on this resource; ' ..
	'see the Allow header."}'

function dlrhook_trace(r, lookup)
	if lookup or r.method ~= "TRACE" then
		return apache2.DECLINED
	end
	local route = r.uri:match("/webhooks(/[%w/-]*)$")
	local methods = route and allow[route]
	if not methods then
		return apache2.DECLINED
	end
	r.status = 405
	r.content_type = "application/problem+json"
	r.headers_out["Allow"] = methods
	r.headers_out["Cache-Control"] = "no-store"
	r:puts(body)
	return apache2.OK
end
