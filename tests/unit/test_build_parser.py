"""The Dockerfile parser suite: directives, continuations, comments, exec vs shell form,
heredocs, flags, case-insensitivity, line numbers and errors."""

from __future__ import annotations

import pytest

from berth.build.instructions import (
    Arg,
    Cmd,
    Copy,
    Env,
    Healthcheck,
    Label,
    OnBuild,
    Run,
    parse_instruction,
    parse_stages,
)
from berth.build.parser import DockerfileSyntaxError, parse


def nodes(text: str):  # noqa: ANN201 - short helper
    return parse(text).nodes


# --- directives ------------------------------------------------------------------------

def test_syntax_and_escape_directives_at_the_top() -> None:
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo a `\n  b\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert df.escape == "`"
    assert df.nodes[1].value == "echo a   b"


def test_directive_names_are_case_insensitive_and_spacing_free() -> None:
    df = parse("#   ESCAPE   =   `\nFROM x\n")
    assert df.escape == "`"


def test_directive_after_a_comment_is_just_a_comment() -> None:
    df = parse("# a comment\n# escape=`\nFROM busybox\nRUN a \\\n b\n")
    assert df.escape == "\\"
    assert "escape" not in df.directives
    assert df.nodes[1].value == "a  b"


def test_directive_after_an_instruction_or_blank_line_is_a_comment() -> None:
    assert parse("FROM x\n# escape=`\n").escape == "\\"
    assert parse("\n# escape=`\nFROM x\n").escape == "\\"


def test_unknown_directive_ends_the_directive_block() -> None:
    df = parse("# foo=bar\n# escape=`\nFROM x\n")
    assert df.escape == "\\" and df.directives == {}


def test_duplicate_directive_is_an_error_with_its_line() -> None:
    with pytest.raises(DockerfileSyntaxError) as ei:
        parse("# escape=\\\n# escape=`\nFROM x\n")
    assert str(ei.value) == "Dockerfile:2: only one escape parser directive can be used"


def test_invalid_escape_token() -> None:
    with pytest.raises(DockerfileSyntaxError, match="invalid escape token"):
        parse("# escape=x\nFROM x\n")


def test_byte_order_mark_is_ignored() -> None:
    df = parse("\ufeff# escape=`\nFROM x\n")
    assert df.escape == "`"
    assert df.nodes[0].instruction == "from"


# --- continuations, comments, blank lines ---------------------------------------------

def test_line_continuation_joins_lines_and_records_the_range() -> None:
    (f, r) = nodes("FROM busybox\nRUN echo one \\\n    two \\\n    three\n")
    assert r.value == "echo one     two     three"
    assert (r.start_line, r.end_line) == (2, 4)


def test_comments_and_blank_lines_inside_a_continuation_are_dropped() -> None:
    df = parse("FROM x\nRUN apt-get update && \\\n# a comment\n    # an indented comment\n\n    apt-get install -y curl\nCMD x\n")
    r = df.nodes[1]
    assert r.value == "apt-get update &&     apt-get install -y curl"
    assert (r.start_line, r.end_line) == (2, 6)
    assert df.nodes[2].start_line == 7
    assert any("empty continuation line" in w for w in df.warnings)


def test_whitespace_after_the_escape_still_continues() -> None:
    (_, r) = nodes("FROM x\nRUN a \\   \n b\n")
    assert r.value == "a  b"


def test_backslash_is_literal_with_backtick_escape() -> None:
    df = parse("# escape=`\nFROM x\nWORKDIR c:\\windows\nRUN dir c:\\ `\n  /b\n")
    assert df.nodes[1].value == "c:\\windows"
    assert df.nodes[2].value == "dir c:\\   /b"


def test_continuation_at_end_of_file() -> None:
    (_, r) = nodes("FROM x\nRUN echo a \\")
    assert r.value == "echo a"


def test_comment_lines_and_blank_lines_between_instructions() -> None:
    ns = nodes("# c1\n\nFROM x\n   # indented comment\n\nRUN true\n")
    assert [(n.instruction, n.start_line) for n in ns] == [("from", 3), ("run", 6)]


def test_a_hash_inside_an_instruction_is_not_a_comment() -> None:
    (_, r) = nodes("FROM x\nRUN echo a # not a comment\n")
    assert r.value == "echo a # not a comment"


def test_crlf_line_endings() -> None:
    (_, r) = nodes("FROM x\r\nRUN a \\\r\n b\r\n")
    assert r.value == "a  b"


# --- instruction names, forms ----------------------------------------------------------

def test_instruction_names_are_case_insensitive() -> None:
    ns = nodes("from x AS Base\nrUn true\nCmd [\"a\"]\n")
    assert [n.instruction for n in ns] == ["from", "run", "cmd"]
    meta, stages = parse_stages(parse("from x AS Base\nrUn true\n"))
    assert stages[0].name == "base"


def test_exec_form_versus_shell_form() -> None:
    ns = nodes('FROM x\nRUN ["echo", "a b"]\nRUN echo "a b"\nCMD ["x"]\nENTRYPOINT top -b\n')
    assert ns[1].json and ns[1].args == ["echo", "a b"]
    assert not ns[2].json and ns[2].args == ['echo "a b"']
    assert ns[3].json and ns[3].args == ["x"]
    assert not ns[4].json and ns[4].args == ["top -b"]
    run = parse_instruction(ns[1])
    assert isinstance(run, Run) and not run.prepend_shell


def test_invalid_json_falls_back_to_shell_form() -> None:
    ns = nodes("FROM x\nRUN [a, b]\nCMD [\"a\", 1]\nCMD ['a']\n")
    assert not ns[1].json and ns[1].args == ["[a, b]"]
    assert not ns[2].json
    assert not ns[3].json


def test_shell_must_be_json() -> None:
    with pytest.raises(DockerfileSyntaxError) as ei:
        parse("FROM x\nSHELL /bin/bash -c\n")
    assert "Dockerfile:2:" in str(ei.value) and "JSON" in str(ei.value)
    assert nodes('FROM x\nSHELL ["/bin/bash", "-c"]\n')[1].args == ["/bin/bash", "-c"]


def test_copy_json_form_and_shell_form_words() -> None:
    ns = nodes('FROM x\nCOPY ["a b", "/c d/"]\nCOPY a "b c" /d/\n')
    assert ns[1].json and ns[1].args == ["a b", "/c d/"]
    assert ns[2].args == ["a", '"b c"', "/d/"]


# --- flags -----------------------------------------------------------------------------

def test_flags_are_separated_from_arguments() -> None:
    ns = nodes("FROM --platform=linux/amd64 busybox AS b\nCOPY --from=b --chown=1:2 --chmod=755 a /a\n")
    assert ns[0].flags == ["--platform=linux/amd64"] and ns[0].args == ["busybox", "AS", "b"]
    c = parse_instruction(ns[1])
    assert isinstance(c, Copy)
    assert (c.from_, c.chown, c.chmod, c.sources, c.dest) == ("b", "1:2", "755", ["a"], "/a")


def test_unknown_flag_is_an_error_with_its_line() -> None:
    df = parse("FROM x\nRUN --security=insecure true\n")
    with pytest.raises(DockerfileSyntaxError) as ei:
        parse_stages(df)
    assert str(ei.value) == "Dockerfile:2: Unknown flag: security"


def test_double_dash_ends_flags() -> None:
    (_, c) = nodes("FROM x\nCOPY -- --weird /d\n")
    assert c.flags == [] and c.args == ["--weird", "/d"]


# --- ENV / LABEL / ARG -----------------------------------------------------------------

def test_env_both_forms() -> None:
    ns = nodes('FROM x\nENV A=1 B="two words" C=three\\ words\nENV KEY value with spaces\n')
    e1 = parse_instruction(ns[1])
    e2 = parse_instruction(ns[2])
    assert isinstance(e1, Env) and e1.pairs == [("A", "1"), ("B", '"two words"'), ("C", "three\\ words")]
    assert isinstance(e2, Env) and e2.pairs == [("KEY", "value with spaces")]


def test_env_without_value_is_an_error() -> None:
    with pytest.raises(DockerfileSyntaxError) as ei:
        parse("FROM x\nENV ONLYKEY\n")
    assert str(ei.value) == "Dockerfile:2: ENV must have two arguments"


def test_label_pairs() -> None:
    (_, lab) = nodes('FROM x\nLABEL "com.example.vendor"="ACME" version=1.0\n')
    ins = parse_instruction(lab)
    assert isinstance(ins, Label) and ins.pairs == [('"com.example.vendor"', '"ACME"'), ("version", "1.0")]


def test_arg_with_and_without_defaults_and_before_from() -> None:
    meta, stages = parse_stages(parse("ARG V=1\nARG W\nFROM x:$V\nARG A B=2\n"))
    assert [a.args for a in meta] == [[("V", "1")], [("W", None)]]
    a = stages[0].instructions[0]
    assert isinstance(a, Arg) and a.args == [("A", None), ("B", "2")]


# --- heredocs --------------------------------------------------------------------------

def test_run_heredoc() -> None:
    df = parse("FROM x\nRUN <<EOF\necho hello\necho $HOME\nEOF\nCMD x\n")
    r = df.nodes[1]
    assert len(r.heredocs) == 1
    h = r.heredocs[0]
    assert (h.name, h.content, h.expand, h.chomp) == ("EOF", "echo hello\necho $HOME\n", True, False)
    assert (r.start_line, r.end_line) == (2, 5)
    assert df.nodes[2].start_line == 6


def test_heredoc_with_dash_strips_leading_tabs() -> None:
    r = nodes("FROM x\nRUN <<-EOT\n\techo a\n\t\techo b\n\tEOT\n")[1]
    assert r.heredocs[0].content == "echo a\necho b\n"
    assert r.heredocs[0].chomp


@pytest.mark.parametrize("marker", ['"EOF"', "'EOF'"])
def test_quoted_heredoc_delimiter_disables_expansion(marker: str) -> None:
    r = nodes(f"FROM x\nRUN <<{marker}\necho $HOME\nEOF\n")[1]
    assert r.heredocs[0].name == "EOF" and not r.heredocs[0].expand


def test_several_heredocs_in_one_instruction() -> None:
    r = nodes("FROM x\nRUN cat <<A > /a && cat <<B > /b\nfirst\nA\nsecond\nB\n")[1]
    assert [(h.name, h.content) for h in r.heredocs] == [("A", "first\n"), ("B", "second\n")]


def test_copy_heredoc_names_inline_sources() -> None:
    df = parse("FROM x\nCOPY <<conf.txt <<other /etc/app/\nk=v\nconf.txt\nx\nother\n")
    c = parse_instruction(df.nodes[1])
    assert isinstance(c, Copy)
    assert c.sources == ["conf.txt", "other"] and c.dest == "/etc/app/"
    assert [h.content for h in c.heredocs] == ["k=v\n", "x\n"]


def test_heredoc_markers_are_not_parsed_for_other_instructions_or_json() -> None:
    ns = nodes('FROM x\nCMD cat <<EOF\nRUN ["cat", "<<EOF"]\n')
    assert ns[1].heredocs == [] and ns[2].heredocs == []


def test_heredoc_body_keeps_comments_and_backslashes() -> None:
    r = nodes("FROM x\nRUN <<EOF\n# kept\necho a \\\nEOF\n")[1]
    assert r.heredocs[0].content == "# kept\necho a \\\n"


def test_unterminated_heredoc_reports_its_line() -> None:
    with pytest.raises(DockerfileSyntaxError) as ei:
        parse("FROM x\nRUN true\nRUN <<EOF\necho\n")
    assert str(ei.value) == "Dockerfile:3: unterminated heredoc EOF"


# --- errors with line numbers -----------------------------------------------------------

def test_unknown_instruction_reports_its_line() -> None:
    with pytest.raises(DockerfileSyntaxError) as ei:
        parse("FROM busybox\nRUN true\nFORM x\n")
    assert str(ei.value) == "Dockerfile:3: unknown instruction: FORM"
    assert ei.value.line == 3 and ei.value.status == 400


def test_error_names_the_file() -> None:
    with pytest.raises(DockerfileSyntaxError, match="^build.Dockerfile:1: unknown instruction: BOGUS$"):
        parse("BOGUS\n", "build.Dockerfile")


def test_from_argument_count_error() -> None:
    with pytest.raises(DockerfileSyntaxError) as ei:
        parse_stages(parse("FROM a b\n"))
    assert str(ei.value) == "Dockerfile:1: FROM requires either one or three arguments"


def test_instruction_before_from_and_empty_file() -> None:
    with pytest.raises(DockerfileSyntaxError, match="Dockerfile:2: no build stage in current context"):
        parse_stages(parse("ARG X\nRUN true\nFROM x\n"))
    with pytest.raises(DockerfileSyntaxError, match="cannot be empty"):
        parse_stages(parse("# only a comment\n\n"))


def test_duplicate_stage_name() -> None:
    with pytest.raises(DockerfileSyntaxError, match='Dockerfile:2: duplicate stage name "a"'):
        parse_stages(parse("FROM x AS a\nFROM y AS A\n"))


def test_onbuild_wraps_an_instruction_and_refuses_chaining() -> None:
    (_, o) = nodes("FROM x\nONBUILD RUN echo hi\n")
    assert o.sub is not None and o.sub.instruction == "run"
    ins = parse_instruction(o)
    assert isinstance(ins, OnBuild) and ins.expression == "RUN echo hi"
    with pytest.raises(DockerfileSyntaxError, match="Chaining ONBUILD"):
        parse("FROM x\nONBUILD ONBUILD RUN x\n")
    with pytest.raises(DockerfileSyntaxError, match="isn't allowed as an ONBUILD trigger"):
        parse("FROM x\nONBUILD FROM y\n")


def test_healthcheck_forms() -> None:
    ns = nodes('FROM x\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/ || exit 1\n'
               'HEALTHCHECK CMD ["/bin/check", "a"]\nHEALTHCHECK NONE\n')
    h1, h2, h3 = (parse_instruction(n) for n in ns[1:])
    assert isinstance(h1, Healthcheck)
    assert h1.test == ["CMD-SHELL", "curl -f http://x/ || exit 1"]
    assert (h1.interval, h1.retries) == (5_000_000_000, 3)
    assert isinstance(h2, Healthcheck) and h2.test == ["CMD", "/bin/check", "a"]
    assert isinstance(h3, Healthcheck) and h3.test == ["NONE"]
    with pytest.raises(DockerfileSyntaxError, match="Dockerfile:2: .*invalid duration"):
        parse_stages(parse("FROM x\nHEALTHCHECK --interval=5x CMD true\n"))


def test_cmd_shell_and_exec_form_instructions() -> None:
    c1 = parse_instruction(nodes('FROM x\nCMD ["python", "./hello.py"]\n')[1])
    c2 = parse_instruction(nodes("FROM x\nCMD python ./hello.py\n")[1])
    assert isinstance(c1, Cmd) and c1.cmd == ["python", "./hello.py"] and not c1.prepend_shell
    assert isinstance(c2, Cmd) and c2.cmd == ["python ./hello.py"] and c2.prepend_shell


def test_stages_split_and_named() -> None:
    meta, stages = parse_stages(parse("FROM a AS one\nRUN x\nFROM one\nCOPY --from=one /a /b\n"))
    assert [(s.index, s.name, s.base, len(s.instructions)) for s in stages] == [
        (0, "one", "a", 1), (1, None, "one", 1)]


def test_flag_values_are_required_except_for_booleans() -> None:
    with pytest.raises(DockerfileSyntaxError, match="^Dockerfile:2: missing a value on flag: chown$"):
        parse_stages(parse("FROM x\nCOPY --chown user a /b\n"))
    with pytest.raises(DockerfileSyntaxError, match="Duplicate flag specified: from"):
        parse_stages(parse("FROM x\nCOPY --from=a --from=b a /b\n"))
    (_, stages) = parse_stages(parse("FROM x\nCOPY --link a /b\n"))
    assert isinstance(stages[0].instructions[0], Copy)
