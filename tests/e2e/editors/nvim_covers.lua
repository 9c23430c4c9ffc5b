-- Accept one vllm-ls menu item whose edit covers closers after the cursor (`max(|)` + `a, b) + 1`)
-- through lines.lua, with no server: the menu inserts at the cursor only, the plugin removes what the
-- item covers. CASE (JSON): mode ("split": 0.7-0.10, "rest": 0.11), before, col, new_text, covers.
vim.opt.runtimepath:prepend(os.getenv('PLUGIN_DIR'))
local lines = require('vllm_ls.lines')
local case = vim.fn.json_decode(os.getenv('CASE'))
local buf = vim.api.nvim_get_current_buf()
vim.api.nvim_buf_set_lines(buf, 0, -1, true, case.before)
if case.mode == 'split' then lines.split_after_accept(buf) else lines.insert_rest_after_accept(buf) end
local item = { detail = 'vllm-ls', textEdit = { newText = case.new_text }, data = { covers = case.covers } }
local word = case.mode == 'split' and case.new_text or lines.first_line(case.new_text)
_G.vllm_ls_menu = function()
  vim.fn.complete(case.col + 1, { { word = word, user_data = { nvim = { lsp = { completion_item = item } } } } })
  return ''
end
vim.api.nvim_set_keymap('i', '<F5>', '<C-R>=v:lua.vllm_ls_menu()<CR>', { noremap = true })
vim.api.nvim_win_set_cursor(0, { 1, case.col })
vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('i<F5><C-y><Esc>', true, false, true), 'x', false)
vim.wait(200, function() return false end)
local out = io.open(os.getenv('RESULT'), 'w')
out:write(vim.fn.json_encode(vim.api.nvim_buf_get_lines(buf, 0, -1, true)))
out:close()
vim.cmd('qa!')
