# Lint and types over everything CI runs.
python -m pip install -q ruff mypy typing_extensions
ruff check src tests bench compliance integrations scripts fuzz
mypy
