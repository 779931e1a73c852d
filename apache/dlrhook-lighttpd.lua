-- dlrhook-lighttpd.lua: marks every response of the API's mount no-store.
--
-- The program does so itself; this covers what lighttpd answers on its own
-- (413 for a body over the cap, 5xx when the program is unreachable), which
-- mod_setenv cannot reach: lighttpd refuses a declared Content-Length over
-- the cap before any module sees the request. dlrhook-lighttpd.conf runs it
-- with magnet.attract-response-start-to (mod_magnet).

lighty.r.resp_header["Cache-Control"] = "no-store"
return 0
