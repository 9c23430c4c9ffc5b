-- Neovim 0.12+: ghost text through textDocument/inlineCompletion.
--
-- Written against the 0.12 API (vim.lsp.config, vim.lsp.enable, vim.lsp.inline_completion.enable /
-- get / select). The project's tests run Debian's Neovim 0.7.2, which exercises legacy.lua instead.
--
-- Neovim sends no $/cancelRequest while you keep typing: each keystroke's request simply
-- supersedes the previous one, and the server aborts the superseded engine work itself.

local vllm_ls = require('vllm_ls')

local M = {}

function M.setup(opts)
  vim.lsp.config('vllm_ls', {
    cmd = opts.cmd,
    filetypes = opts.filetypes,
    root_markers = { '.git' },
    init_options = vllm_ls.init_options(opts.settings),
    capabilities = opts.capabilities,
    handlers = { ['vllm-ls/status'] = vllm_ls.status_handler(opts) },
  })
  vim.lsp.enable('vllm_ls')

  vim.api.nvim_create_autocmd('LspAttach', {
    group = vim.api.nvim_create_augroup('vllm_ls_inline', { clear = true }),
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if not client or client.name ~= 'vllm_ls' then
        return
      end
      local bufnr = args.buf
      vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
      local keys = opts.keys or {}
      if keys.accept then
        vim.keymap.set('i', keys.accept, function()
          -- get() accepts the shown suggestion and returns true; otherwise the key types itself.
          if not vim.lsp.inline_completion.get() then
            return keys.accept
          end
        end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = 'vllm-ls: accept suggestion' })
      end
      if keys.next then
        vim.keymap.set('i', keys.next, function()
          vim.lsp.inline_completion.select({ count = 1 })
        end, { buffer = bufnr, desc = 'vllm-ls: next suggestion' })
      end
      if keys.prev then
        vim.keymap.set('i', keys.prev, function()
          vim.lsp.inline_completion.select({ count = -1 })
        end, { buffer = bufnr, desc = 'vllm-ls: previous suggestion' })
      end
    end,
  })
end

return M
