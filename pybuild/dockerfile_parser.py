"""The public name of pybuild's Dockerfile parser (a required path of the project layout).

The parser itself lives in `pybuild.dockerfile.parser` (its heredoc markers in `heredocs`),
beside the rest of the Dockerfile front end (`keywords`, `lines`, `stages`, `instructions`,
`flags`, `shell_words`); this module re-exports its API so that
`from pybuild.dockerfile_parser import parse` keeps working for tools and readers.
"""

from pybuild.dockerfile.heredocs import Heredoc, chomp_heredoc, must_parse_heredoc, parse_heredoc
from pybuild.dockerfile.parser import Node, Result, Warning, dump, parse

__all__ = ["Heredoc", "Node", "Result", "Warning", "chomp_heredoc", "dump", "must_parse_heredoc", "parse",
           "parse_heredoc"]
