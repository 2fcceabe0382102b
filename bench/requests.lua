-- wrk script: a POST of a bench/workloads.py workload (getmessage, integrations/call, Planfix
-- newMessage) whose key (channel id, call id, chat id) is an existing one or a new one.
-- Arguments (after `--`, passed by bench/load.py):
--   token  mode(existing|new)  channels  prefix  body_head  body_tail  content_type
--   new_marker  problem_marker
-- The body is body_head .. key .. body_tail, so the body is built once in Python. An empty
-- token sends no Authorization (Planfix's key is in the body). An answer holding new_marker
-- made a new task; one holding problem_marker carried a warning.
-- On exit it prints one line "BENCH_JSON {...}" that bench/load.py parses.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  token, mode, channels, prefix, head, tail = args[1], args[2], tonumber(args[3]), args[4], args[5], args[6]
  new_marker, problem_marker = args[8], args[9]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = args[7]
  if token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  counter = 0
  non2xx, problems, new_tasks = 0, 0, 0
  if mode == "existing" then
    -- Pre-format one request per existing key; threads start at different keys.
    cache = {}
    for i = 0, channels - 1 do
      cache[i] = wrk.format(nil, nil, nil, head .. prefix .. i .. tail)
    end
    counter = (tid - 1) * 7919
  end
end

function request()
  counter = counter + 1
  if mode == "existing" then
    return cache[counter % channels]
  end
  -- A key never sent before: run prefix, thread id and a per-thread counter.
  return wrk.format(nil, nil, nil, head .. prefix .. tid .. "-" .. counter .. tail)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
  if body then
    if string.find(body, problem_marker, 1, true) then
      problems = problems + 1
    end
    if string.find(body, new_marker, 1, true) then
      new_tasks = new_tasks + 1
    end
  end
end

function done(summary, latency, requests)
  local sums = { non2xx = 0, problems = 0, new_tasks = 0 }
  for _, thread in ipairs(threads) do
    for key in pairs(sums) do
      sums[key] = sums[key] + (thread:get(key) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%.0f,"p99_us":%.0f,"max_us":%.0f,'
      .. '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,'
      .. '"non2xx":%d,"problems":%d,"new_tasks":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status, sums.non2xx, sums.problems, sums.new_tasks))
end
