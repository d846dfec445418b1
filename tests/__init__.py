"""saescope's test suite, a package so that helpers are imported by name (`tests.sae_builders`,
`tests.server.viewer_run`) from the repository root, which pytest puts on sys.path
(pyproject.toml: pythonpath).

Helpers shared by several test folders live at this level (paths, checks, sae_builders,
postgres_server); a folder's own helpers live in that folder (tests/store/store_data.py, ...).
"""
