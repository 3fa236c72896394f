"""The public name of pybuild's Dockerfile parser (a required path of the project layout).

The parser itself lives in `pybuild.dockerfile.parser`, beside the rest of the Dockerfile front
end (`lines`, `stages`, `instructions`, `flags`, `shell_words`); this module re-exports its API
so that `from pybuild.dockerfile_parser import parse` keeps working for tools and readers.
"""

from pybuild.dockerfile.parser import (Heredoc, Node, Result, Warning, chomp_heredoc, dump, must_parse_heredoc,
                                       parse, parse_heredoc)

__all__ = ["Heredoc", "Node", "Result", "Warning", "chomp_heredoc", "dump", "must_parse_heredoc", "parse",
           "parse_heredoc"]
