-- Plays a user in the Neovim test: waits for the engine, then in insert mode presses the shipped
-- trigger key (omnifunc), accepts the suggestion with <C-y>, and writes what happened to a JSON file.
-- Everything is driven by a timer: the completion answer only lands while Neovim is in insert
-- mode waiting for keys, so the driver must not block the main loop.

local vllm_ls = require('vllm_ls')
local result_path = assert(os.getenv('VLLM_LS_NVIM_RESULT'))
local deadline = vim.loop.now() + 1000 * tonumber(os.getenv('VLLM_LS_NVIM_TIMEOUT_S') or '600')
local per_try_ms = 120000

local result = { tries = 0, items = {}, filetype = vim.bo.filetype }
local phase = 'wait_ready'
local phase_started = vim.loop.now()
local timer = vim.loop.new_timer()

local function keys(s)
  return vim.api.nvim_replace_termcodes(s, true, false, true)
end

local function finish(ok, message)
  timer:stop()
  result.ok = ok
  result.message = message
  result.lines = vim.api.nvim_buf_get_lines(0, 0, -1, true)
  result.statuses = _G.vllm_ls_statuses
  result.clients = {}
  for _, client in pairs(vim.lsp.buf_get_clients(0)) do
    table.insert(result.clients, client.name)
    if ok then
      local answer = client.request_sync('vllm-ls/stats', vim.empty_dict(), 10000, 0)
      result.stats = answer and answer.result
    end
  end
  local file = assert(io.open(result_path, 'w'))
  file:write(vim.json.encode(result))
  file:close()
  vim.cmd('qa!')
end

local function ask()
  result.tries = result.tries + 1
  result.before = vim.api.nvim_buf_get_lines(0, 0, -1, true)
  -- Where the user types: the indented empty line inside fibonacci ('A' appends to it).
  local header = vim.fn.search('^def fibonacci(', 'w')
  assert(header > 0, 'the example defines fibonacci')
  vim.api.nvim_win_set_cursor(0, { header + 1, 0 })
  -- 'm': through mappings, so the plugin's trigger key (-> <C-x><C-o>) is what runs.
  vim.api.nvim_feedkeys(keys('A' .. vllm_ls.options.keys.trigger), 'm', false)
  phase, phase_started = 'wait_items', vim.loop.now()
end

local function step()
  local now = vim.loop.now()
  if now > deadline then
    return finish(false, 'timed out in phase ' .. phase .. ' (status: ' .. vim.inspect(vllm_ls.status) .. ')')
  end
  if phase == 'wait_ready' then
    if vllm_ls.status.state == 'failed' then
      return finish(false, 'engine failed: ' .. tostring(vllm_ls.status.message))
    end
    if vllm_ls.status.state == 'ready' then
      ask()
    end
  elseif phase == 'wait_items' then
    local info = vim.fn.complete_info({ 'items', 'mode' })
    if info.items and #info.items > 0 then
      result.items = info.items
      result.mode = vim.fn.mode()
      result.omnifunc = vim.bo.omnifunc
      vim.api.nvim_feedkeys(keys('<C-y><Esc>'), 'n', false)
      phase, phase_started = 'accepted', now
    elseif now - phase_started > per_try_ms then
      -- An empty answer (e.g. superseded) leaves no menu: leave insert mode and ask again.
      vim.api.nvim_feedkeys(keys('<Esc>'), 'n', false)
      phase, phase_started = 'retry', now
    end
  elseif phase == 'retry' then
    if vim.fn.mode() == 'n' then
      ask()
    end
  elseif phase == 'accepted' then
    -- The plugin splits a multi-line suggestion in a callback it scheduled on CompleteDone; this
    -- step was scheduled after it, so the split has run once insert mode is left.
    if vim.fn.mode() == 'n' then
      return finish(true, 'accepted')
    end
  end
end

timer:start(100, 100, vim.schedule_wrap(step))
