-- GET with a bearer token. wrk -s bench/wrk/bearer.lua URL -- <token>
function init(args)
  if args[1] then
    wrk.headers["Authorization"] = "Bearer " .. args[1]
  end
end
