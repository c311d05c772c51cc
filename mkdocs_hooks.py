"""MkDocs hooks (mkdocs.yml: `hooks:`), run by `mkdocs build`.

ssljax's docstrings are prose, not Markdown: `parents[l][c]` or
`[--methods=mveb,vicreg,...]` in a docstring reads to Markdown as a
reference link, and mkdocs-autorefs warns that no such target exists,
which `--strict` turns into an error. This hook lowers to INFO exactly
those warnings whose text comes from a docstring in the ssljax package;
an unresolved link written in a page under docs/ still fails the build.
"""

import logging
import re

_FROM_DOCSTRING = re.compile(
    r"from \S*ssljax/\S+\.py:\d+: .*Could not find cross-reference target")


class _DocstringBrackets(logging.Filter):

  def filter(self, record):
    if record.levelno == logging.WARNING and _FROM_DOCSTRING.search(
        record.getMessage()):
      record.levelno, record.levelname = logging.INFO, "INFO"
    return True


def on_startup(command, dirty):  # pylint: disable=unused-argument
  f = _DocstringBrackets()
  # mkdocs-autorefs logs through "mkdocs.plugins.<its module>" (1.4:
  # mkdocs_autorefs._internal.plugin; older: mkdocs_autorefs.plugin).
  for name in ("mkdocs.plugins.mkdocs_autorefs._internal.plugin",
               "mkdocs.plugins.mkdocs_autorefs.plugin"):
    logging.getLogger(name).addFilter(f)
