"""The three stages as plain functions: discover, fetch, process. No Celery here.

`deps` holds what every stage needs (`Deps`: Redis, settings, sources);
`discover`, `fetch` and `process` are one module per stage.
"""
