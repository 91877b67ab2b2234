-- POST the same kind of body to the floor view that INSERTs it as one row.
-- wrk -s bench/wrk/insert.lua URL -- <first number>
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  first = tonumber(args[1])
  wrk.headers["Content-Type"] = "application/json"
  wrk.method = "POST"
end

function request()
  counter = counter + 1
  local number = first + id * 10000000 + counter
  local body = string.format(
    '{"build_number": %d, "build_status": "success", "repo": "org/probe", ' ..
    '"apps": [{"name": "probe-%03d", "image_tag": "p%d"}]}', number, number % 200, number)
  return wrk.format(nil, nil, nil, body)
end
