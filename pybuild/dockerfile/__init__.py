"""The Dockerfile front end: bytes → nodes → typed instructions in stages; nothing here builds.

    keywords.py       KEYWORDS, the one table of instructions: keyword → line splitter, reader,
                      record, heredocs, ONBUILD, expansion (and the readers themselves)
    parser.py         bytes → `Node`s with line ranges (BuildKit's parser, byte for byte)
    heredocs.py       heredoc markers (`<<EOF`, `<<-'EOF'`) and chomping
    lines.py          one logical line → keyword, flag words, arguments (BuildKit's line parsers)
    instructions.py   the typed, frozen instruction records (`RunInstr`, `CopyInstr`, …) and `Stage`
    stages.py         `Node` → typed instruction (its row's reader), stages, `--target`
    flags.py          instruction flags as BuildKit's BFlags checks them; Go durations
    shell_words.py    `$VAR`/`${VAR:-x}` expansion and word splitting (BuildKit's shell lexer)
    shell_patterns.py the `${VAR#pattern}`-style patterns shell_words needs

Every check of what a Dockerfile says happens in this package, once; the build steps take the
typed records and only expand and execute them.
"""
