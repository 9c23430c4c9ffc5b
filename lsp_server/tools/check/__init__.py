"""`vllm-ls check`: headless completion checks for CI.

A spec file lists cases (a document, a cursor, settings, expectations); the check runs them in one
real LSP session against a real `vllm-ls` server and reports in the formats CI systems read.
`spec`, `expect` and `report` are pure; `runner` owns the session; `cli` wires them together.
"""
