"""`vllm-ls bench`: what the server saves, measured on a replay of real typing, and what it gets right.

The bench drives real `vllm-ls` servers over LSP stdio exactly as editors do (`lsp_server.tools.client`),
one server per settings profile, against the real engine; the direct engine call that is the floor
for overhead goes through `engine/` directly. Pure parts (schedules, holes, scoring, figures,
rendering) are separate modules with unit tests; `cli.py` wires them to the I/O.
"""
