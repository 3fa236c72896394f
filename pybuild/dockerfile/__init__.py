"""The Dockerfile front end: bytes → nodes → typed instructions in stages; nothing here builds.

    parser.py         bytes → `Node`s with line ranges (BuildKit's parser, byte for byte)
    lines.py          one logical line → keyword, flag words, arguments (BuildKit's line parsers)
    instructions.py   the typed, frozen instruction records (`RunInstr`, `CopyInstr`, …) and `Stage`
    stages.py         `Node` → typed instruction (one parser per keyword: `PARSERS`), stages, `--target`
    flags.py          instruction flags as BuildKit's BFlags checks them; Go durations
    shell_words.py    `$VAR`/`${VAR:-x}` expansion and word splitting (BuildKit's shell lexer)
    shell_patterns.py the `${VAR#pattern}`-style patterns shell_words needs

Every check of what a Dockerfile says happens in this package, once; the build steps take the
typed records and only expand and execute them.
"""
