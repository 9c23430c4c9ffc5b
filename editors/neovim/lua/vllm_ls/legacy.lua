-- Neovim 0.7–0.10: no inline completion, so the suggestion comes as a completion item through the
-- built-in client's omnifunc. <C-x><C-o> (or keys.trigger) asks for it, <C-y> accepts it.
-- nvim-cmp users get it through cmp-nvim-lsp instead (pass its capabilities to setup).
-- A multi-line suggestion is split into real lines after it is accepted (lines.lua).

local vllm_ls = require('vllm_ls')
local lines = require('vllm_ls.lines')

local M = {}

local SERVER_NAME = 'vllm_ls'
local legacy_client_id = nil -- Neovim 0.7: one client shared by every buffer

-- init.lua's `completeopt`. Vim's default ('menu,preview') shows no menu for a lone match, and
-- then <C-y> is not "accept" but "insert the character above the cursor". Before 0.11 the option
-- is global, and 'popup' is only known from 0.10: the first value this Neovim takes is set.
local function set_completeopt(opts, bufnr)
  local value = opts.completeopt
  if not value then
    return
  end
  local without_popup = (value:gsub(',?popup', ''):gsub('^,', ''))
  for _, candidate in ipairs({ value, without_popup }) do
    if pcall(vim.api.nvim_buf_set_option, bufnr, 'completeopt', candidate)
      or pcall(vim.api.nvim_set_option, 'completeopt', candidate) then
      return
    end
  end
end

local function on_attach(opts)
  return function(_, bufnr)
    vim.api.nvim_buf_set_option(bufnr, 'omnifunc', 'v:lua.vim.lsp.omnifunc')
    set_completeopt(opts, bufnr)
    lines.split_after_accept(bufnr)
    local trigger = opts.keys and opts.keys.trigger
    if trigger then
      vim.keymap.set('i', trigger, '<C-x><C-o>', { buffer = bufnr, desc = 'vllm-ls: suggest' })
    end
  end
end

local function client_config(opts, root_dir)
  return {
    name = SERVER_NAME,
    cmd = opts.cmd,
    root_dir = root_dir,
    init_options = vllm_ls.init_options(opts.settings),
    capabilities = opts.capabilities,
    handlers = { ['vllm-ls/status'] = vllm_ls.status_handler(opts) },
    on_attach = on_attach(opts),
  }
end

local function attach(opts, bufnr)
  if vim.api.nvim_buf_get_option(bufnr, 'buftype') ~= '' then
    return -- help, terminal, prompt and scratch buffers
  end
  local root_dir = vim.fn.getcwd()
  if vim.lsp.start then -- 0.8+: reuses a running client with the same name and root
    vim.lsp.start(client_config(opts, root_dir), { bufnr = bufnr })
    return
  end
  if not (legacy_client_id and vim.lsp.get_client_by_id(legacy_client_id)) then
    legacy_client_id = vim.lsp.start_client(client_config(opts, root_dir))
  end
  if legacy_client_id then
    vim.lsp.buf_attach_client(bufnr, legacy_client_id)
  end
end

function M.setup(opts)
  vim.api.nvim_create_autocmd('FileType', {
    group = vim.api.nvim_create_augroup('vllm_ls_legacy', { clear = true }),
    pattern = opts.filetypes or '*',
    callback = function(args)
      attach(opts, args.buf)
    end,
  })
end

return M
