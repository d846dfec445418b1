"""saescope's test suite, a package so that helpers are imported by name (`tests.sae_builders`,
`tests.server.viewer_run`) from the repository root, which pytest puts on sys.path
(pyproject.toml: pythonpath; --import-mode=importlib adds no test folder there).

Helpers shared by several test folders live at this level: paths (where files are), checks
(shared assertions), ports, postgres_server, sae_builders. A folder's own helpers live in that
folder (tests/store/store_data.py, tests/server/viewer_run.py, ...); another folder may import
them by their package name (the dashboards tests use tests.store.store_data).
"""
