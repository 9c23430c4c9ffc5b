-- Neovim 0.11: suggestions pop up in the completion menu while you type.
--
-- vim.lsp.config / vim.lsp.enable start the server; vim.lsp.completion.enable(..., { autotrigger
-- = true }) asks on the server's trigger characters and again as you type while the menu is open
-- (the server marks its lists incomplete). Ordinary typing (letters, Enter) is not a trigger
-- character, so a TextChangedI hook asks too whenever the menu is closed: the
-- server debounces and supersedes, and 0.11 cancels the previous request itself.
--
-- Two things 0.11 does not do for a plain-text item: insert the whole text edit (it inserts the
-- text's first word only) and insert its line breaks as they are (it types them, so 'autoindent'
-- indents lines that already have their indentation). `convert` gives the menu the whole first
-- line; the other lines are added after <C-y> (lines.lua).

local vllm_ls = require('vllm_ls')
local lines = require('vllm_ls.lines')

local M = {}

local SERVER_NAME = 'vllm_ls'

-- The menu item for one of our suggestions: the text edit's first line is the word to insert.
local function convert(item)
  if lines.is_ours_lsp(item) and item.textEdit and item.textEdit.newText then
    return { word = lines.first_line(item.textEdit.newText) }
  end
  return {}
end

local function ask_while_typing(bufnr)
  local group = vim.api.nvim_create_augroup('vllm_ls_typing_' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd('TextChangedI', {
    group = group,
    buffer = bufnr,
    callback = function()
      -- With the menu open, vim.lsp.completion asks again by itself (incomplete lists).
      if vim.fn.pumvisible() == 0 then
        vim.lsp.completion.get({ ctx = { triggerKind = vim.lsp.protocol.CompletionTriggerKind.Invoked } })
      end
    end,
  })
end

local function on_attach(opts, client, bufnr)
  vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true, convert = convert })
  if opts.completeopt then
    -- 0.11's default ('menu,popup') would insert a single match as you type: show it instead.
    vim.bo[bufnr].completeopt = opts.completeopt
  end
  lines.insert_rest_after_accept(bufnr)
  ask_while_typing(bufnr)
  local trigger = opts.keys and opts.keys.trigger
  if trigger then
    vim.keymap.set('i', trigger, function()
      vim.lsp.completion.get()
    end, { buffer = bufnr, desc = 'vllm-ls: suggest' })
  end
end

function M.setup(opts)
  vim.lsp.config(SERVER_NAME, {
    cmd = opts.cmd,
    filetypes = opts.filetypes,
    root_markers = { '.git' },
    init_options = vllm_ls.init_options(opts.settings),
    capabilities = opts.capabilities,
    handlers = { ['vllm-ls/status'] = vllm_ls.status_handler(opts) },
  })
  vim.lsp.enable(SERVER_NAME)

  vim.api.nvim_create_autocmd('LspAttach', {
    group = vim.api.nvim_create_augroup('vllm_ls_completion', { clear = true }),
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == SERVER_NAME then
        on_attach(opts, client, args.buf)
      end
    end,
  })
end

return M
