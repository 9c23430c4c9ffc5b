-- A suggestion accepted from the completion menu, made into real lines.
--
-- The server answers `textDocument/completion` with one item whose text edit may span several
-- lines. The menu inserts one line: Neovim 0.7 puts a literal ^@ where each line break was (split
-- afterwards: `split_after_accept`), Neovim 0.11 inserts the line breaks as if typed, so
-- 'autoindent' adds to the indentation the suggestion already has. There the menu gets the
-- first line only and the other lines are added exactly as they are (`insert_rest_after_accept`).
-- Neither applies the text edit's range for a plain-text item: the closers after the cursor that a
-- suggestion covers (`foo(|)` + `a) + b`, the item's `data.covers`) are removed here too.

local M = {}

--- Whether an LSP completion item is one of vllm-ls's suggestions.
function M.is_ours_lsp(completion_item)
  return type(completion_item) == 'table' and completion_item.detail == 'vllm-ls'
end

--- Whether a |complete-items| entry (v:completed_item) carries one of vllm-ls's suggestions.
function M.is_ours(item)
  local lsp = type(item) == 'table' and type(item.user_data) == 'table' and item.user_data.nvim
    and item.user_data.nvim.lsp
  return lsp and M.is_ours_lsp(lsp.completion_item) or false
end

-- The closers after the cursor that the item's text edit replaces ('' if none).
local function covered(item)
  local data = item.user_data.nvim.lsp.completion_item.data
  return type(data) == 'table' and type(data.covers) == 'string' and data.covers or ''
end

-- Remove `covers` right after (row, col) if it is still there.
local function remove_covered(bufnr, row, col, covers)
  if covers == '' then
    return
  end
  local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, true)[1]
  if line:sub(col + 1, col + #covers) == covers then
    vim.api.nvim_buf_set_text(bufnr, row - 1, col, row - 1, col + #covers, { '' })
  end
end

-- The menu inserted each "\n" of the suggestion as a NUL byte (^@) inside one line, ending at the
-- cursor. The split runs once the completion machinery is done with the line (scheduled), at the
-- position recorded now: by then <Esc> may have moved the cursor.
local function split_multiline(bufnr)
  local item = vim.v.completed_item
  if not M.is_ours(item) or not item.word then
    return
  end
  local covers = covered(item)
  local multiline = item.word:find('\n', 1, true) ~= nil
  if not multiline and covers == '' then
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
    remove_covered(bufnr, row, col, covers)
    if not multiline then
      return
    end
    local parts = vim.split(word, '\n', { plain = true })
    vim.api.nvim_buf_set_text(bufnr, row - 1, start, row - 1, col, parts)
    local last_col = (#parts == 1 and start or 0) + #parts[#parts]
    if vim.fn.mode() ~= 'i' then
      last_col = math.max(last_col - 1, 0) -- normal mode rests on the last character
    end
    vim.api.nvim_win_set_cursor(0, { row - 1 + #parts, last_col })
  end)
end

-- The menu inserted the suggestion's first line, ending at the cursor: add the other lines.
local function insert_rest(bufnr)
  local item = vim.v.completed_item
  if not M.is_ours(item) then
    return
  end
  local edit = item.user_data.nvim.lsp.completion_item.textEdit
  local text = edit and edit.newText or ''
  local covers = covered(item)
  local first, rest = text:match('^([^\n]*)\n(.*)$')
  if not first then
    first = text -- one line: only what it covers is left to do
  end
  if item.word ~= first or (not rest and covers == '') then
    return
  end
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  vim.schedule(function()
    if not vim.api.nvim_buf_is_valid(bufnr) or vim.api.nvim_get_current_buf() ~= bufnr then
      return
    end
    local line = vim.api.nvim_buf_get_lines(bufnr, row - 1, row, true)[1]
    if col < #first or line:sub(col - #first + 1, col) ~= first then
      return -- the text changed since; leave it alone
    end
    remove_covered(bufnr, row, col, covers)
    if not rest then
      return
    end
    local parts = vim.split(rest, '\n', { plain = true })
    table.insert(parts, 1, '')
    vim.api.nvim_buf_set_text(bufnr, row - 1, col, row - 1, col, parts)
    vim.api.nvim_win_set_cursor(0, { row - 1 + #parts, #parts[#parts] })
  end)
end

--- The menu item's word for a suggestion whose first line only goes through the menu.
function M.first_line(text)
  return (text:match('^[^\n]*'))
end

--- Neovim 0.11: add the other lines of an accepted suggestion whose first line the menu inserted.
function M.insert_rest_after_accept(bufnr)
  vim.api.nvim_create_autocmd('CompleteDone', {
    buffer = bufnr,
    group = vim.api.nvim_create_augroup('vllm_ls_lines_' .. bufnr, { clear = true }),
    callback = function()
      if vim.v.event.reason == 'accept' then
        insert_rest(bufnr)
      end
    end,
  })
end

--- Neovim 0.7-0.10: tell the server a suggestion was accepted by running the item's command, as
--- 0.11's vim.lsp.completion does by itself (the omnifunc path runs no commands).
function M.report_accept(bufnr)
  local item = vim.v.completed_item
  if not M.is_ours(item) then
    return
  end
  local command = item.user_data.nvim.lsp.completion_item.command
  if type(command) == 'table' and command.command then
    vim.lsp.buf_request(bufnr, 'workspace/executeCommand',
      { command = command.command, arguments = command.arguments }, function() end)
  end
end

--- Neovim 0.7-0.10: split accepted multi-line suggestions (^@ for each line break) into lines.
function M.split_after_accept(bufnr)
  vim.api.nvim_create_autocmd('CompleteDone', {
    buffer = bufnr,
    group = vim.api.nvim_create_augroup('vllm_ls_lines_' .. bufnr, { clear = true }),
    callback = function()
      M.report_accept(bufnr)
      split_multiline(bufnr)
    end,
  })
end

return M
