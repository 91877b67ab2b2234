-- POST one-app build notifications, every request a new build number (first seen, success),
-- each for one of 200 probe apps that sit in open batches.
-- wrk -s bench/wrk/notify.lua URL -- <first build number> <bearer token>
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  first = tonumber(args[1])
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/json"
  wrk.method = "POST"
end

function request()
  counter = counter + 1
  local number = first + id * 10000000 + counter
  local app = string.format("probe-%03d", number % 200)
  local body = string.format(
    '{"build_number": %d, "build_status": "success", "repo": "org/probe", ' ..
    '"apps": [{"name": "%s", "image_tag": "p%d"}]}', number, app, number)
  return wrk.format(nil, nil, nil, body)
end
