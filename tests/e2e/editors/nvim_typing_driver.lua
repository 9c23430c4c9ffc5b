-- Plays a user in the Neovim 0.11 test: waits for the engine, types code in insert mode with no
-- key to ask for a suggestion, waits for vllm-ls's suggestion in the completion menu, accepts it
-- with <C-y> and writes what happened to a JSON file.
-- Everything is driven by a timer: answers only land while Neovim waits for keys, so the driver
-- must not block the main loop. A server that cannot start, or stops, ends the run at once.

local vllm_ls = require('vllm_ls')
local result_path = assert(os.getenv('VLLM_LS_NVIM_RESULT'))
local typed = os.getenv('VLLM_LS_NVIM_TYPE') or 'if'
local deadline = vim.uv.now() + 1000 * tonumber(os.getenv('VLLM_LS_NVIM_TIMEOUT_S') or '600')
local start_grace_ms = 30000 -- a client must exist by then: vim.lsp.enable starts it at once
local per_try_ms = 250000 -- longer than the time limit the test gives the server

local result = { tries = 0, items = {}, filetype = vim.bo.filetype, notifications = {}, version = vim.version() }
local phase = 'wait_ready'
local phase_started = vim.uv.now()
local started = vim.uv.now()
local seen_client = false
local timer = vim.uv.new_timer()

-- What the editor told the user (a failed start is only a notification).
local notify = vim.notify
vim.notify = function(message, level, opts)
  table.insert(result.notifications, { message = tostring(message), level = level })
  return notify(message, level, opts)
end

local function keys(s)
  return vim.api.nvim_replace_termcodes(s, true, false, true)
end

local function our_clients()
  return vim.lsp.get_clients({ name = 'vllm_ls' })
end

local function finish(ok, message)
  timer:stop()
  result.ok = ok
  result.message = message
  result.lines = vim.api.nvim_buf_get_lines(0, 0, -1, true)
  result.statuses = _G.vllm_ls_statuses
  result.clients = {}
  for _, client in ipairs(vim.lsp.get_clients({ bufnr = 0 })) do
    table.insert(result.clients, client.name)
    result.trigger_characters = vim.tbl_get(client.server_capabilities, 'completionProvider', 'triggerCharacters')
    if ok then
      local answer = client:request_sync('vllm-ls/stats', vim.empty_dict(), 10000, 0)
      result.stats = answer and answer.result
    end
  end
  local file = assert(io.open(result_path, 'w'))
  file:write(vim.json.encode(result))
  file:close()
  vim.cmd('qa!')
end

local function type_code()
  result.tries = result.tries + 1
  -- Where the user types: the indented empty line inside fibonacci ('A' appends to it).
  local header = vim.fn.search('^def fibonacci(', 'w')
  assert(header > 0, 'the example defines fibonacci')
  vim.api.nvim_win_set_cursor(0, { header + 1, 0 })
  result.before = vim.api.nvim_buf_get_lines(0, 0, -1, true)
  result.row = header + 1
  -- 't': as if typed, one key at a time, so InsertCharPre and TextChangedI fire as for a person.
  vim.api.nvim_feedkeys('A', 'nt', false)
  for i = 1, #typed do
    vim.api.nvim_feedkeys(typed:sub(i, i), 'nt', false)
  end
  phase, phase_started = 'wait_menu', vim.uv.now()
end

local function ours(items)
  local found = {}
  for _, item in ipairs(items or {}) do
    local lsp = vim.tbl_get(item, 'user_data', 'nvim', 'lsp', 'completion_item')
    if lsp and lsp.detail == 'vllm-ls' then
      table.insert(found, item)
    end
  end
  return found
end

local function step()
  local now = vim.uv.now()
  if now > deadline then
    return finish(false, 'timed out in phase ' .. phase .. ' (status: ' .. vim.inspect(vllm_ls.status) .. ')')
  end
  local clients = our_clients()
  if #clients > 0 then
    seen_client = true
  elseif seen_client then
    return finish(false, 'the vllm-ls client stopped (server exited) in phase ' .. phase)
  elseif now - started > start_grace_ms then
    return finish(false, 'no vllm-ls client started in ' .. start_grace_ms .. ' ms: '
      .. vim.inspect(result.notifications))
  end
  if phase == 'wait_ready' then
    if vllm_ls.status.state == 'failed' then
      return finish(false, 'engine failed: ' .. tostring(vllm_ls.status.message))
    end
    if vllm_ls.status.state == 'ready' then
      type_code()
    end
  elseif phase == 'wait_menu' then
    local info = vim.fn.complete_info({ 'items', 'mode', 'pum_visible' })
    local found = ours(info.items)
    if info.pum_visible == 1 and #found > 0 then
      result.items = found
      result.mode = vim.fn.mode()
      result.completeopt = vim.bo.completeopt
      result.typed_line = vim.api.nvim_get_current_line()
      vim.api.nvim_feedkeys(keys('<C-y>'), 'nt', false)
      phase, phase_started = 'accepted', now
    elseif now - phase_started > per_try_ms then
      -- No menu (e.g. an empty answer): undo the typing and type again.
      vim.api.nvim_feedkeys(keys('<Esc>u'), 'nt', false)
      phase, phase_started = 'retry', now
    end
  elseif phase == 'accepted' then
    -- The plugin splits a multi-line suggestion in a callback scheduled on CompleteDone; leave
    -- insert mode once it ran (one more tick).
    if vim.fn.pumvisible() == 0 then
      result.accepted_line = vim.api.nvim_get_current_line()
      vim.api.nvim_feedkeys(keys('<Esc>'), 'nt', false)
      phase, phase_started = 'leaving', now
    end
  elseif phase == 'leaving' then
    if vim.fn.mode() == 'n' then
      return finish(true, 'accepted')
    end
  elseif phase == 'retry' then
    if vim.fn.mode() == 'n' then
      type_code()
    end
  end
end

timer:start(100, 100, vim.schedule_wrap(step))
