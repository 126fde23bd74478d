""".dockerignore: moby/patternmatcher rules and the context walker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockerbank.build.dockerignore import PatternMatcher, included_paths, read_patterns


def test_read_patterns_cleans_lines():
    text = "# comment\n\n  node_modules/  \n/abs/path\n./rel\n!  keep.txt\n*.log\n a/../b \n"
    assert read_patterns(text) == ["node_modules", "abs/path", "rel", "!keep.txt", "*.log", "b"]


@pytest.mark.parametrize("patterns, path, excluded", [
    (["*.log"], "a.log", True),
    (["*.log"], "dir/a.log", False),          # * never crosses a directory
    (["**/*.log"], "dir/sub/a.log", True),
    (["**/*.log"], "a.log", True),            # **/ matches zero directories too
    (["dir/**"], "dir/x/y", True),
    (["dir"], "dir/x/y", True),               # a parent match excludes everything below
    (["d?r"], "dir", True),
    (["d?r"], "d/r", False),
    (["[a-c]*.txt"], "b1.txt", True),
    (["[!a]*.txt"], "a1.txt", False),
    (["[!a]*.txt"], "b1.txt", True),
    (["*", "!keep"], "keep", False),
    (["*", "!keep", "keep"], "keep", True),   # the last matching line wins
    (["!keep"], "other", False),
    (["secret.*", "!secret.pub"], "secret.key", True),
    (["secret.*", "!secret.pub"], "secret.pub", False),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs", "!docs/README.md"], "docs/other.md", True),
    (["a\\*b"], "a*b", True),
    (["a\\*b"], "axb", False),
    (["**"], "anything/at/all", True),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["a.(x)"], "a.(x)", True),
])
def test_matching(patterns, path, excluded):
    assert PatternMatcher(patterns).excluded(path) is excluded


def make_tree(root: Path, paths: list[str]) -> None:
    for rel in paths:
        target = root / rel
        if rel.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rel)


def test_walker_excludes_and_reincludes(tmp_path: Path):
    make_tree(tmp_path, ["app.py", "node_modules/x/index.js", "logs/a.log", "docs/README.md", "docs/api.md",
                         ".git/HEAD", "src/main.py", "src/test_main.py"])
    patterns = read_patterns(".git\nnode_modules\n**/*.log\ndocs\n!docs/README.md\nsrc/test_*\n")
    assert included_paths(tmp_path, patterns) == [
        "app.py", "docs/README.md", "logs", "src", "src/main.py",
    ]


def test_walker_without_patterns_lists_everything(tmp_path: Path):
    make_tree(tmp_path, ["a", "b/c", "b/d/"])
    os.symlink("a", tmp_path / "link")
    assert included_paths(tmp_path, []) == ["a", "b", "b/c", "b/d", "link"]


def test_bare_exclamation_is_an_error():
    with pytest.raises(Exception, match="illegal exclusion"):
        PatternMatcher(["!"])
