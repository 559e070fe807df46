# Sphinx configuration of artnb's documentation site. Build it with `bash scripts/build_docs.sh [OUT]` (default
# `_docs/`), which stages the notebooks (scripts/build_docs.py) and runs `sphinx-build -c docs` on them.
#
# Why Sphinx + MyST-NB (+ the Furo theme), not nbdev's own Quarto site: Quarto (`nbdev-docs`) cannot be installed
# offline (quarto-cli ships no wheel; its sdist downloads a binary). Of the maintained tools that render .ipynb with
# their outputs and install from the registry here, measured on the 33 notebooks of this repository (2-core CPU):
#   * Sphinx 9 + MyST-NB 1.4 + Furo: 23 packages into the dev venv, ~7 s to build all pages, and the result loads
#     nothing from outside (Furo uses system fonts; Sphinx's search is a local index, searchindex.js). Sphinx's Python
#     domain also gives every exported function an entry in the general index and the search.
#   * MkDocs + mkdocs-jupyter + mkdocs-material: 14 packages, but ~27 s to build, ~850 KB of inline CSS per page, and the
#     nbconvert template it uses imports Mermaid from a CDN (offline pages need extra switches); MkDocs 1.x itself has
#     seen no release since 2024 and mkdocs-material is in maintenance mode.
#   * Jupyter Book 1: Sphinx + MyST-NB underneath plus 17 more packages (and it pins markdown-it-py back a major
#     version); Jupyter Book 2 needs Node.js.
# Notebooks are rendered as committed (no execution at build time: `nb_execution_mode = 'off'`); committed notebooks
# are cleaned, so most have no outputs. The experiment notebooks' committed figures (figures/<notebook>/) and each
# exported definition's signature and docstring are added by scripts/build_docs.py while staging.
project = 'artnb'
author = 'artnb contributors'
copyright = 'artnb contributors (Apache-2.0)'
extensions = ['myst_nb']

nb_execution_mode = 'off'                  # render the notebooks as stored
nb_render_markdown_format = 'myst'         # text/markdown outputs (the index's results table) with tables
myst_enable_extensions = []                # no dollarmath: prose with "$" stays text and no MathJax is loaded
myst_heading_anchors = 3                   # ids on headings, so Markdown links to #sections resolve
suppress_warnings = ['myst.header', 'mystnb.unknown_mime_type']   # notebooks jump heading levels; widget outputs

html_theme = 'furo'                        # maintained, responsive, system fonts only (nothing fetched at view time)
html_title = 'artnb'
html_copy_source = False                   # no _sources/*.ipynb.txt copies
html_show_sourcelink = False
html_static_path = []
html_theme_options = {'navigation_with_keys': True}
pygments_style = 'default'
exclude_patterns = ['_build', '**.ipynb_checkpoints']
