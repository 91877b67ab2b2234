-- A live page's poll: GET with an admin session and the page's ETag (the floor: neither).
-- wrk -s bench/wrk/live.lua URL -- [<session key> [<etag>]]
function init(args)
  if args[1] then
    wrk.headers["Cookie"] = "sessionid=" .. args[1]
  end
  if args[2] then
    wrk.headers["If-None-Match"] = args[2]
  end
end
