# The documentation site, warnings as errors (Sphinx; pages in docs/, packages in the docs extra).
python -m pip install -q ".[docs]"
python -m sphinx -W --keep-going -q -b html docs "$CI_WORK/docs-html"
