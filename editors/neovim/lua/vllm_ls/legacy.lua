-- Neovim 0.7–0.11: no inline completion, so the suggestion comes as a completion item through the
-- built-in client's omnifunc. <C-x><C-o> (or keys.trigger) asks for it, <C-y> accepts it.
-- nvim-cmp users get it through cmp-nvim-lsp instead (pass its capabilities to setup).
--
-- The server answers `textDocument/completion` with one item whose text edit may span several
-- lines. The omnifunc menu can only insert one line (a newline becomes a literal ^@), so after
-- the item is accepted the inserted text is split back into real lines.

local vllm_ls = require('vllm_ls')

local M = {}

local SERVER_NAME = 'vllm_ls'
local legacy_client_id = nil -- Neovim 0.7: one client shared by every buffer

local function is_ours(item)
  local lsp = type(item) == 'table' and type(item.user_data) == 'table' and item.user_data.nvim
    and item.user_data.nvim.lsp
  local completion_item = lsp and lsp.completion_item
  return type(completion_item) == 'table' and completion_item.detail == 'vllm-ls'
end

-- The closers after the cursor that the item's text edit replaces (`foo(|)` + `a) + b`): the
-- omnifunc menu only replaces the word before the cursor, so they are removed here.
local function covered(item)
  local data = item.user_data.nvim.lsp.completion_item.data
  return type(data) == 'table' and type(data.covers) == 'string' and data.covers or ''
end

-- The menu inserted each "\n" of the suggestion as a NUL byte (^@) inside one line, ending at the
-- cursor. The split runs once the completion machinery is done with the line (scheduled), at the
-- position recorded now: by then <Esc> may have moved the cursor.
local function split_multiline(bufnr)
  local item = vim.v.completed_item
  if not is_ours(item) or not item.word then
    return
  end
  local covers = covered(item)
  if not item.word:find('\n', 1, true) and covers == '' then
    return
  end
  local word = item.word
  local inserted = word:gsub('\n', '\0')
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  vim.schedule(function()
    if not vim.api.nvim_buf_is_valid(bufnr) or vim.api.nvim_get_current_buf() ~= bufnr then
      return
    end
    local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, true)[1]
    local start = col - #inserted
    if start < 0 or line:sub(start + 1, col) ~= inserted then
      return -- the text changed since; leave it alone
    end
    if covers ~= '' and line:sub(col + 1, col + #covers) == covers then
      vim.api.nvim_buf_set_text(bufnr, row - 1, col, row - 1, col + #covers, { '' })
    end
    if not word:find('\n', 1, true) then
      return
    end
    local lines = vim.split(word, '\n', { plain = true })
    vim.api.nvim_buf_set_text(bufnr, row - 1, start, row - 1, col, lines)
    local last_col = (#lines == 1 and start or 0) + #lines[#lines]
    if vim.fn.mode() ~= 'i' then
      last_col = math.max(last_col - 1, 0) -- normal mode rests on the last character
    end
    vim.api.nvim_win_set_cursor(0, { row - 1 + #lines, last_col })
  end)
end

local function on_attach(opts)
  return function(_, bufnr)
    vim.api.nvim_buf_set_option(bufnr, 'omnifunc', 'v:lua.vim.lsp.omnifunc')
    vim.api.nvim_create_autocmd('CompleteDone', {
      buffer = bufnr,
      group = vim.api.nvim_create_augroup('vllm_ls_legacy_' .. bufnr, { clear = true }),
      callback = function()
        split_multiline(bufnr)
      end,
    })
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
