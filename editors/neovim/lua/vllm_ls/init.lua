-- vllm-ls for Neovim: AI code completions from vLLM through the vllm-ls language server.
--
--   require('vllm_ls').setup({ cmd = { 'vllm-ls', 'serve' }, settings = { scheduling = { debounceMs = 300 } } })
--
-- Neovim 0.12+ shows the suggestion as ghost text (textDocument/inlineCompletion through
-- vim.lsp.config / vim.lsp.enable / vim.lsp.inline_completion). Neovim 0.11 shows it in the
-- completion menu as you type (vim.lsp.completion with autotrigger). Older Neovim has neither:
-- the same suggestion arrives as a completion item through the built-in client's omnifunc
-- (<C-x><C-o>). See docs/editors.md.

local M = {}

M.defaults = {
  -- The server command. With a virtual environment: { '/path/to/venv/bin/vllm-ls', 'serve' }.
  -- A remote engine: { 'vllm-ls', '--engine-url', 'http://gpu-box:8000', 'serve' }.
  cmd = { 'vllm-ls', 'serve' },
  -- nil: every buffer with a filetype (the model completes any language).
  filetypes = nil,
  -- Server settings (docs/configuration.md), sent as initializationOptions.
  settings = {},
  -- Keys in insert mode. Neovim 0.12+: accept / next / previous ghost text. Older Neovim:
  -- `trigger` asks for the suggestion at once; <C-y> accepts it, <C-n>/<C-p> move in the menu.
  keys = { accept = '<Tab>', next = '<M-]>', prev = '<M-[>', trigger = '<C-Space>' },
  -- 'completeopt' once vllm-ls attaches: the buffer's on Neovim 0.11; the global option before,
  -- without 'popup' where Neovim does not know it. The default ('menu,popup', 'menu,preview'
  -- before 0.10) would insert a lone suggestion as you type (0.11) or show no menu for it, so
  -- <C-y> inserts the character above the cursor (0.7-0.10); this shows it in the menu until
  -- <C-y>. false leaves 'completeopt' alone.
  completeopt = 'menuone,noinsert,popup',
  -- Client capabilities; nvim-cmp users pass require('cmp_nvim_lsp').default_capabilities().
  capabilities = nil,
  -- Called with every `vllm-ls/status` notification ({ state, message, engine, lastLatencyMs }).
  on_status = nil,
}

-- The last `vllm-ls/status` notification; `require('vllm_ls').statusline()` renders it.
M.status = { state = 'starting', message = 'vllm-ls is starting' }

local function merge(defaults, opts)
  local merged = vim.tbl_deep_extend('force', {}, defaults, opts or {})
  -- cmd is a list: a user's list replaces the default one instead of being merged into it.
  merged.cmd = (opts and opts.cmd) or defaults.cmd
  return merged
end

--- Settings as a JSON object: an empty Lua table would be encoded as the array [].
function M.init_options(settings)
  if settings == nil or vim.tbl_isempty(settings) then
    return vim.empty_dict()
  end
  return settings
end

function M.status_handler(opts)
  local told_failure = nil
  return function(_, result, _)
    if type(result) ~= 'table' then
      return
    end
    M.status = result
    vim.g.vllm_ls_status = result.state
    if result.state == 'failed' and told_failure ~= result.message then
      told_failure = result.message
      vim.notify('vllm-ls: ' .. tostring(result.message), vim.log.levels.ERROR)
    end
    if opts.on_status then
      opts.on_status(result)
    end
  end
end

--- A short status for 'statusline': "vllm-ls 412ms", "vllm-ls loading", "vllm-ls failed".
function M.statusline()
  local status = M.status or {}
  if status.state == 'ready' and type(status.lastLatencyMs) == 'number' then
    return string.format('vllm-ls %dms', math.floor(status.lastLatencyMs + 0.5))
  end
  return 'vllm-ls ' .. tostring(status.state or '')
end

function M.setup(opts)
  opts = merge(M.defaults, opts)
  M.options = opts
  if vim.fn.has('nvim-0.12') == 1 and vim.lsp.inline_completion ~= nil then
    require('vllm_ls.inline').setup(opts)
  elseif vim.fn.has('nvim-0.11') == 1 then
    require('vllm_ls.completion').setup(opts)
  else
    require('vllm_ls.legacy').setup(opts)
  end
end

return M
