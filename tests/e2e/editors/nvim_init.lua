-- The user's init.lua for the Neovim test: the shipped plugin on the runtimepath, set up with the
-- server command of this installation. tests/e2e/test_editors.py passes the paths in the environment.
vim.opt.runtimepath:prepend(os.getenv('VLLM_LS_NVIM_PLUGIN'))
vim.cmd('filetype on')

_G.vllm_ls_statuses = {}
local settings = os.getenv('VLLM_LS_NVIM_SETTINGS')
require('vllm_ls').setup({
  cmd = vim.json.decode(os.getenv('VLLM_LS_NVIM_CMD')),
  settings = settings and vim.json.decode(settings) or nil,
  on_status = function(status)
    table.insert(_G.vllm_ls_statuses, status)
  end,
})
