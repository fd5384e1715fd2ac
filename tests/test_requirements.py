"""Unit tests of machci.inputs.requirements: pip requirements files and pyproject.toml inputs."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.requirements import Requirement

from machci.errors import InputError, Location
from machci.inputs.requirements import (
    RequirementLine,
    RequirementSet,
    read_pyproject,
    read_requirements_file,
)
from machci.inputs.spec import read_inputs

SHA_A = "a" * 64
SHA_B = "0123456789abcdef" * 4


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def read(tmp_path: Path, text: str, name: str = "req.txt") -> RequirementSet:
    return read_requirements_file(write(tmp_path / name, text))


def read_error(tmp_path: Path, text: str, name: str = "req.txt") -> str:
    path = write(tmp_path / name, text)
    with pytest.raises(InputError) as info:
        read_requirements_file(path)
    return str(info.value)


def specs(result: RequirementSet) -> list[str]:
    return [str(line.requirement) for line in result.requirements]


# --- plain PEP 508 lines -------------------------------------------------------------------------


def test_simple_requirements_in_file_order_with_locations(tmp_path: Path) -> None:
    path = write(
        tmp_path / "req.txt",
        """\
        requests>=2.31

        Flask_Login==0.6.3
        """,
    )
    result = read_requirements_file(path)
    assert specs(result) == ["requests>=2.31", "Flask_Login==0.6.3"]
    assert [line.name for line in result.requirements] == ["requests", "flask-login"]
    assert [line.location for line in result.requirements] == [
        Location(str(path), 1),
        Location(str(path), 3),
    ]
    assert result.constraints == ()
    assert result.files == (path,)
    assert result.index_url is None
    assert result.extra_index_urls == ()
    assert result.pre is False


def test_requirement_line_str_names_its_origin(tmp_path: Path) -> None:
    path = write(tmp_path / "req.txt", "\n\nattrs==23.2.0\n")
    (line,) = read_requirements_file(path).requirements
    assert str(line) == f"attrs==23.2.0 (from {path}:3)"


def test_extras_with_spaces_inside_brackets(tmp_path: Path) -> None:
    result = read(tmp_path, "uvicorn[ standard , Socks ] >= 0.30\n")
    (line,) = result.requirements
    assert line.name == "uvicorn"
    assert line.requirement.extras == {"standard", "Socks"}
    assert str(line.requirement.specifier) == ">=0.30"


def test_markers_are_parsed(tmp_path: Path) -> None:
    result = read(
        tmp_path,
        """\
        tomli>=1.1 ; python_version < "3.11"
        pywin32==306; sys_platform == "win32" and platform_machine != "ARM64"
        """,
    )
    first, second = result.requirements
    assert first.requirement.marker is not None
    assert first.requirement.marker.evaluate({"python_version": "3.10"})
    assert not first.requirement.marker.evaluate({"python_version": "3.12"})
    assert second.name == "pywin32"
    assert second.requirement.marker is not None
    assert not second.requirement.marker.evaluate(
        {"sys_platform": "linux", "platform_machine": "x86_64"}
    )


def test_arbitrary_equality(tmp_path: Path) -> None:
    (line,) = read(tmp_path, "legacy-thing===1.0.foo-bar\n").requirements
    (spec,) = line.requirement.specifier
    assert spec.operator == "==="
    assert spec.version == "1.0.foo-bar"


# --- comments and continuations ------------------------------------------------------------------


def test_comments_full_line_and_trailing(tmp_path: Path) -> None:
    path = write(
        tmp_path / "req.txt",
        """\
        # a full-line comment
            # an indented comment
        six==1.16.0  # trailing comment with -r other.txt and --index-url inside
        idna==3.7\t# tab before the hash
        #no-space-comment
        """,
    )
    result = read_requirements_file(path)
    assert specs(result) == ["six==1.16.0", "idna==3.7"]
    assert [line.location.line for line in result.requirements] == [3, 4]
    assert result.files == (path,)
    assert result.index_url is None


def test_hash_fragment_inside_url_is_not_a_comment(tmp_path: Path) -> None:
    url = f"https://files.example.org/packages/foo-1.0.tar.gz#sha256={SHA_B}"
    (line,) = read(tmp_path, f"foo @ {url}  # pinned archive\n").requirements
    assert line.requirement.url == url
    assert line.name == "foo"


def test_backslash_continuation_reports_first_physical_line(tmp_path: Path) -> None:
    result = read(
        tmp_path,
        """\
        # header
        numpy\\
        >=1.26 \\
          ; python_version >= "3.9"
        scipy==1.13.0
        """,
    )
    first, second = result.requirements
    assert first.name == "numpy"
    assert str(first.requirement.specifier) == ">=1.26"
    assert first.requirement.marker is not None
    assert first.location.line == 2
    assert second.location.line == 5


def test_continuation_on_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "req.txt"
    path.write_text("x==1\nattrs \\", encoding="utf-8")
    result = read_requirements_file(path)
    assert specs(result) == ["x==1", "attrs"]
    assert result.requirements[1].location.line == 2


def test_invalid_requirement_error_after_continuation_names_first_line(tmp_path: Path) -> None:
    message = read_error(tmp_path, "ok==1\n\nbroken \\\n  >=\n")
    assert f"{tmp_path / 'req.txt'}:3" in message
    assert "invalid requirement" in message


def test_comment_ending_in_backslash_does_not_continue(tmp_path: Path) -> None:
    result = read(tmp_path, "# see below \\\nattrs==23.2.0\n")
    assert specs(result) == ["attrs==23.2.0"]
    assert result.requirements[0].location.line == 2


# --- includes ------------------------------------------------------------------------------------


def test_includes_are_relative_to_the_including_file(tmp_path: Path) -> None:
    top = write(
        tmp_path / "req.txt",
        """\
        -r sub/dev.txt
        top==1
        """,
    )
    dev = write(
        tmp_path / "sub" / "dev.txt",
        """\
        dev==1
        --requirement deeper/more.txt
        -c ../constraints/pins.txt
        """,
    )
    more = write(tmp_path / "sub" / "deeper" / "more.txt", "more==1\n")
    pins = write(tmp_path / "constraints" / "pins.txt", "# pins\n\npinned==2.0\n")
    result = read_requirements_file(top)
    assert specs(result) == ["dev==1", "more==1", "top==1"]
    assert [str(c.requirement) for c in result.constraints] == ["pinned==2.0"]
    assert Path(result.constraints[0].location.where).resolve() == pins.resolve()
    assert result.constraints[0].location.line == 3
    assert result.requirements[0].location == Location(str(dev), 1)
    assert result.requirements[1].location == Location(str(more), 1)
    assert result.requirements[2].location == Location(str(top), 2)
    assert [p.resolve() for p in result.files] == [p.resolve() for p in (top, dev, more, pins)]


@pytest.mark.parametrize(
    "line",
    ["--requirement=other.txt", "--requirement other.txt", "-r other.txt", "-rother.txt"],
)
def test_requirement_option_spellings(tmp_path: Path, line: str) -> None:
    write(tmp_path / "other.txt", "included==1\n")
    result = read(tmp_path, f"{line}\n")
    assert specs(result) == ["included==1"]
    assert result.constraints == ()


@pytest.mark.parametrize("line", ["--constraint=c.txt", "--constraint c.txt", "-c c.txt"])
def test_constraint_option_spellings(tmp_path: Path, line: str) -> None:
    write(tmp_path / "c.txt", "urllib3<3\n")
    result = read(tmp_path, f"{line}\nrequests\n")
    assert specs(result) == ["requests"]
    assert [str(c.requirement) for c in result.constraints] == ["urllib3<3"]


def test_same_file_included_twice_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "common.txt", "common==1\n")
    write(tmp_path / "a.txt", "-r common.txt\n")
    result = read(tmp_path, "-r a.txt\n-r common.txt\n")
    assert specs(result) == ["common==1", "common==1"]
    assert len(result.files) == 3


def test_include_cycle_names_the_cycle(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "bee==1\n-r sub/c.txt\n")
    write(tmp_path / "sub" / "c.txt", "-r ../a.txt\n")
    message = read_error(tmp_path, "-r b.txt\n", name="a.txt")
    assert "include cycle" in message
    cycle = message.split("include cycle:", 1)[1]
    assert "a.txt" in cycle
    assert "b.txt" in cycle
    assert "c.txt" in cycle
    # Reported where the cycle closes: the include line in sub/c.txt.
    assert message.startswith(f"{tmp_path / 'sub' / 'c.txt'}:1:")


def test_self_include_is_a_cycle(tmp_path: Path) -> None:
    message = read_error(tmp_path, "x==1\n-r req.txt\n")
    assert "include cycle" in message
    assert f"{tmp_path / 'req.txt'}:2" in message


def test_missing_include_names_including_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "sub" / "dev.txt", "dev==1\n\n-c missing-constraints.txt\n")
    message = read_error(tmp_path, "x==1\n-r sub/dev.txt\n")
    assert f"{tmp_path / 'sub' / 'dev.txt'}:3" in message
    assert "missing-constraints.txt" in message
    assert "not found" in message


def test_missing_top_level_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not found") as info:
        read_requirements_file(tmp_path / "nope.txt")
    assert "nope.txt" in str(info.value)


def test_undecodable_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "req.txt"
    path.write_bytes(b"ok\ncaf\xe9==1\n")
    with pytest.raises(InputError) as info:
        read_requirements_file(path)
    assert str(info.value) == f"{path}:2: not UTF-8 text (byte 0xe9 cannot be decoded)"


# --- hashes --------------------------------------------------------------------------------------

PIP_COMPILE_OUTPUT = """\
#
# This file is autogenerated by pip-compile with Python 3.12
# by the following command:
#
#    pip-compile --generate-hashes --output-file=requirements.txt requirements.in
#
certifi==2024.8.30 \\
    --hash=sha256:922820b53db7a7257ffbda3f597266d435245903d80737e34f8a45ff3e3230d8 \\
    --hash=sha256:bec941d2aa8195e248a60b31ff9f0558284cf01a52591ceda73ea9afffd11fd9
    # via requests
charset-normalizer==3.4.0 \\
    --hash=sha256:0099d79bdfcf5c1f0c2c72f91516702ebf8b0b8ddd8905f97a8aecf49712c621 \\
    --hash=sha256:e31d3c6e0b9fa5a36ea0f4d89b88a8b4f2c3b4e5c1ad8a6ca7b6e3a0d2d5e8f1
    # via requests
idna==3.10 \\
    --hash=sha256:12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9 \\
    --hash=sha256:946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3
    # via
    #   -r requirements.in
    #   requests
requests[socks]==2.32.3 ; python_version >= "3.8" \\
    --hash=sha256:55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760 \\
    --hash=sha256:70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6
    # via -r requirements.in
urllib3==2.2.3 \\
    --hash=sha256:ca899ca043dcb1bafa3e262d73aa25c465bfb49e0bd9dd5d59f1d0acba2f8fac \\
    --hash=sha256:e7d814a81dad81e6caf2ec9fdedb0ecd1d7a23cb2d8dfc1b2a7ea8f8a4a8a1a1
    # via requests
"""


def test_pip_compile_generate_hashes_output(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(PIP_COMPILE_OUTPUT, encoding="utf-8")
    result = read_requirements_file(path)
    assert [line.name for line in result.requirements] == [
        "certifi",
        "charset-normalizer",
        "idna",
        "requests",
        "urllib3",
    ]
    assert [line.location.line for line in result.requirements] == [7, 11, 15, 21, 25]
    by_name = {line.name: line for line in result.requirements}
    assert by_name["certifi"].hashes == {
        "922820b53db7a7257ffbda3f597266d435245903d80737e34f8a45ff3e3230d8",
        "bec941d2aa8195e248a60b31ff9f0558284cf01a52591ceda73ea9afffd11fd9",
    }
    assert all(len(line.hashes) == 2 for line in result.requirements)
    requests = by_name["requests"].requirement
    assert requests.extras == {"socks"}
    assert str(requests.specifier) == "==2.32.3"
    assert str(requests.marker) == 'python_version >= "3.8"'
    assert result.constraints == ()


def test_hash_with_space_separated_value_and_uppercase_hex(tmp_path: Path) -> None:
    (line,) = read(
        tmp_path, f"foo==1 --hash sha256:{SHA_B.upper()} --hash=sha256:{SHA_A}\n"
    ).requirements
    assert line.hashes == frozenset({SHA_B, SHA_A})


def test_hashes_in_constraints_file(tmp_path: Path) -> None:
    write(tmp_path / "c.txt", f"bar==2 --hash=sha256:{SHA_A}\n")
    result = read(tmp_path, "-c c.txt\nbar\n")
    assert result.requirements[0].hashes == frozenset()
    assert result.constraints[0].hashes == frozenset({SHA_A})


def test_requirement_without_hashes_has_empty_set(tmp_path: Path) -> None:
    (line,) = read(tmp_path, "foo==1\n").requirements
    assert line.hashes == frozenset()
    assert isinstance(line, RequirementLine)


@pytest.mark.parametrize(
    "value",
    [
        "md5:0123456789abcdef0123456789abcdef",
        "sha256:abc",
        f"sha256:{SHA_A}0",
        f"sha256:{'g' * 64}",
        f"sha512:{SHA_A}",
        SHA_A,
    ],
)
def test_invalid_hash_format(tmp_path: Path, value: str) -> None:
    message = read_error(tmp_path, f"ok==1\nfoo==1 \\\n  --hash={value}\n")
    assert f"{tmp_path / 'req.txt'}:2" in message
    assert "invalid --hash" in message
    assert "sha256:<64 hex digits>" in message


def test_hash_option_without_value(tmp_path: Path) -> None:
    message = read_error(tmp_path, "foo==1 --hash\n")
    assert "--hash needs a value" in message
    assert f"{tmp_path / 'req.txt'}:1" in message


def test_other_option_after_requirement_rejected(tmp_path: Path) -> None:
    message = read_error(tmp_path, "foo==1 --index-url https://example.org/simple\n")
    assert "--index-url is not allowed after a requirement" in message
    assert f"{tmp_path / 'req.txt'}:1" in message


# --- URLs and local paths ------------------------------------------------------------------------


def test_direct_reference_with_sha256_fragment(tmp_path: Path) -> None:
    url = f"https://files.example.org/p/torch-2.3.0-cp312-cp312-linux_x86_64.whl#sha256={SHA_A}"
    (line,) = read(tmp_path, f"torch @ {url} ; sys_platform == 'linux'\n").requirements
    assert line.name == "torch"
    assert line.requirement.url == url
    assert line.requirement.marker is not None


def test_bare_wheel_url_takes_name_from_file_name(tmp_path: Path) -> None:
    url = f"https://files.example.org/p/Foo_Bar-1.0-py3-none-any.whl#sha256={SHA_A}"
    (line,) = read(tmp_path, f"{url}\n").requirements
    assert line.name == "foo-bar"
    assert line.requirement.url == url


def test_bare_sdist_url_takes_name_from_file_name(tmp_path: Path) -> None:
    url = "https://files.example.org/p/zope.interface-6.4.tar.gz"
    (line,) = read(tmp_path, f"{url} --hash=sha256:{SHA_A}\n").requirements
    assert line.name == "zope-interface"
    assert line.requirement.url == url
    assert line.hashes == frozenset({SHA_A})


def test_bare_url_without_recognisable_file_name(tmp_path: Path) -> None:
    message = read_error(tmp_path, "https://example.org/download?id=3\n")
    assert "cannot tell the package name" in message
    assert "name @ URL" in message
    assert f"{tmp_path / 'req.txt'}:1" in message


def test_bare_wheel_url_with_marker(tmp_path: Path) -> None:
    url = "https://files.example.org/p/foo-1.0-py3-none-any.whl"
    (line,) = read(tmp_path, f'{url} ; python_version >= "3.8"\n').requirements
    assert line.name == "foo"
    assert line.requirement.url == url
    assert str(line.requirement.marker) == 'python_version >= "3.8"'


@pytest.mark.parametrize(
    "text",
    [
        "git+https://github.com/psf/requests.git@v2.32.3#egg=requests",
        "requests @ git+https://github.com/psf/requests.git@v2.32.3",
        "hg+https://hg.example.org/repo#egg=repo",
        "git+ssh://git@github.com/psf/requests.git",
    ],
)
def test_vcs_urls_rejected(tmp_path: Path, text: str) -> None:
    message = read_error(tmp_path, f"ok==1\n{text}\n")
    assert "VCS requirement" in message
    assert "cannot be pinned" in message
    assert f"{tmp_path / 'req.txt'}:2" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("foo @ file:///tmp/foo-1.0.tar.gz", "local paths cannot be pinned"),
        ("file:///tmp/foo-1.0-py3-none-any.whl", "local paths cannot be pinned"),
        ("./dist/foo-1.0.tar.gz", "invalid requirement"),
        ("/abs/path/to/project", "invalid requirement"),
        (".", "invalid requirement"),
    ],
)
def test_local_paths_rejected(tmp_path: Path, text: str, fragment: str) -> None:
    message = read_error(tmp_path, f"{text}\n")
    assert fragment in message
    assert f"{tmp_path / 'req.txt'}:1" in message


@pytest.mark.parametrize("line", ["-e .", "-e git+https://github.com/a/b.git", "--editable=./pkg"])
def test_editable_rejected(tmp_path: Path, line: str) -> None:
    message = read_error(tmp_path, f"\n{line}\n")
    assert "editable installs cannot be pinned" in message
    assert f"{tmp_path / 'req.txt'}:2" in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "pkg @ https://x.example/pkg-1.0.tar.gz#sha256=../../etc",
            "expected #sha256=<64 hex digits>",
        ),
        ("pkg @ https://x.example/pkg-1.0.tar.gz#sha256=abc", "expected #sha256=<64 hex digits>"),
        ("https://x.example/pkg-1.0.tar.gz#sha256=zz", "expected #sha256=<64 hex digits>"),
        ("pkg @ https:///pkg-1.0.tar.gz", "is not a usable URL: it names no host"),
        ("https://x.example:0x50/pkg-1.0.tar.gz", "is not a usable URL: Port could not be cast"),
    ],
)
def test_direct_references_must_be_usable_urls(tmp_path: Path, text: str, problem: str) -> None:
    message = read_error(tmp_path, text + "\n")
    assert message.startswith(f"{tmp_path / 'req.txt'}:1: direct reference ")
    assert problem in message


# --- options -------------------------------------------------------------------------------------


def test_index_options_recorded(tmp_path: Path) -> None:
    result = read(
        tmp_path,
        """\
        --index-url https://mirror.example.org/simple
        --extra-index-url https://extra.example.org/simple
        --extra-index-url=https://extra2.example.org/simple
        --extra-index-url https://extra.example.org/simple
        --trusted-host mirror.example.org
        requests
        """,
    )
    assert result.index_url == "https://mirror.example.org/simple"
    assert result.extra_index_urls == (
        "https://extra.example.org/simple",
        "https://extra2.example.org/simple",
    )
    assert specs(result) == ["requests"]


@pytest.mark.parametrize(
    "line",
    [
        "-i https://a.example/simple",
        "-ihttps://a.example/simple",
        "--index-url=https://a.example/simple",
    ],
)
def test_index_url_spellings(tmp_path: Path, line: str) -> None:
    assert read(tmp_path, f"{line}\n").index_url == "https://a.example/simple"


def test_same_index_url_twice_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "sub.txt", "-i https://a.example/simple\n")
    result = read(tmp_path, "--index-url https://a.example/simple\n-r sub.txt\n")
    assert result.index_url == "https://a.example/simple"


def test_two_different_index_urls_rejected(tmp_path: Path) -> None:
    write(tmp_path / "sub.txt", "x==1\n-i https://b.example/simple\n")
    message = read_error(tmp_path, "--index-url https://a.example/simple\n-r sub.txt\n")
    assert "https://b.example/simple" in message
    assert "--index-url" in message
    assert f"{tmp_path / 'sub.txt'}:2" in message


def test_pre_flag(tmp_path: Path) -> None:
    assert read(tmp_path, "foo\n").pre is False
    result = read(tmp_path, "--pre --extra-index-url https://x.example/simple\nfoo\n")
    assert result.pre is True
    assert result.extra_index_urls == ("https://x.example/simple",)


def test_pre_in_included_file(tmp_path: Path) -> None:
    write(tmp_path / "sub.txt", "--pre\n")
    assert read(tmp_path, "-r sub.txt\n").pre is True


def test_env_var_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACHCI_TEST_HOST", "mirror.example.org")
    monkeypatch.setenv("MACHCI_TEST_DIR", "sub")
    monkeypatch.setenv("MACHCI_TEST_VERSION", "2.0")
    monkeypatch.delenv("MACHCI_TEST_UNSET", raising=False)
    write(tmp_path / "sub" / "inc.txt", "included==1\n")
    result = read(
        tmp_path,
        """\
        --index-url https://${MACHCI_TEST_HOST}/simple
        --extra-index-url https://${MACHCI_TEST_UNSET}/simple
        -r ${MACHCI_TEST_DIR}/inc.txt
        foo==${MACHCI_TEST_VERSION}
        """,
    )
    assert result.index_url == "https://mirror.example.org/simple"
    assert result.extra_index_urls == ("https://${MACHCI_TEST_UNSET}/simple",)
    assert specs(result) == ["included==1", "foo==2.0"]


def test_lowercase_variables_are_not_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("machci_lower", "nope")
    result = read(tmp_path, "--extra-index-url https://${machci_lower}/simple\n")
    assert result.extra_index_urls == ("https://${machci_lower}/simple",)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("--find-links https://example.org/wheels", "--find-links is not supported"),
        ("-f ./wheels", "--find-links is not supported"),
        ("--no-index", "--no-index is not supported"),
        ("--no-binary :all:", "--no-binary is not supported"),
        ("--only-binary=:all:", "--only-binary is not supported"),
        ("--prefer-binary", "--prefer-binary is not needed"),
    ],
)
def test_unsupported_options_have_reasons(tmp_path: Path, line: str, fragment: str) -> None:
    message = read_error(tmp_path, f"x==1\n{line}\n")
    assert fragment in message
    assert f"{tmp_path / 'req.txt'}:2" in message


@pytest.mark.parametrize("line", ["--frobnicate=yes", "--frobnicate yes", "-x value"])
def test_unknown_options(tmp_path: Path, line: str) -> None:
    message = read_error(tmp_path, f"x==1\n\n{line}\n")
    assert "unknown option" in message
    assert line.split("=")[0].split()[0] in message
    assert f"{tmp_path / 'req.txt'}:3" in message


def test_unknown_flag_without_value(tmp_path: Path) -> None:
    message = read_error(tmp_path, "--frobnicate\n")
    assert "unknown option --frobnicate" in message


def test_require_hashes_is_ignored(tmp_path: Path) -> None:
    result = read(tmp_path, f"--require-hashes\nfoo==1 --hash=sha256:{SHA_A}\n")
    assert specs(result) == ["foo==1"]


def test_include_without_file_name(tmp_path: Path) -> None:
    message = read_error(tmp_path, "-r\n")
    assert "option -r needs a value" in message
    assert f"{tmp_path / 'req.txt'}:1" in message


def test_unbalanced_quote_in_options(tmp_path: Path) -> None:
    message = read_error(tmp_path, '-r "unterminated.txt\n')
    assert "cannot split options" in message
    assert f"{tmp_path / 'req.txt'}:1" in message


# --- invalid lines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["foo>=", "foo==1.0 bar", "foo[extra", "foo ; python_version >", "!!!"],
)
def test_invalid_requirement_lines(tmp_path: Path, text: str) -> None:
    message = read_error(tmp_path, f"# comment\nok==1\n{text}\n")
    assert message.startswith(f"{tmp_path / 'req.txt'}:3: invalid requirement")
    assert repr(text) in message


# --- pyproject.toml ------------------------------------------------------------------------------

PYPROJECT = """\
[project]
name = "demo"
version = "0.1"
dependencies = [
    "httpx>=0.27",
    "pydantic[email] >=2 ; python_version >= '3.9'",
]

[project.optional-dependencies]
Fast_IO = ["orjson>=3"]
docs = ["sphinx>=7"]

[dependency-groups]
test = ["pytest>=8", {include-group = "lint"}]
lint = ["ruff"]
Type_Check = ["mypy", {include-group = "test"}]
"""


def pyproject(tmp_path: Path, text: str = PYPROJECT) -> Path:
    return write(tmp_path / "pyproject.toml", text)


def test_pyproject_dependencies(tmp_path: Path) -> None:
    path = pyproject(tmp_path)
    result = read_pyproject(path)
    assert specs(result) == ["httpx>=0.27", 'pydantic[email]>=2; python_version >= "3.9"']
    assert [line.location for line in result.requirements] == [
        Location(str(path), 5),
        Location(str(path), 6),
    ]
    assert result.files == (path,)
    assert result.constraints == ()


def test_pyproject_selected_extras_canonicalised(tmp_path: Path) -> None:
    path = pyproject(tmp_path)
    result = read_pyproject(path, extras=["fast-io"])
    assert [line.name for line in result.requirements] == ["httpx", "pydantic", "orjson"]
    assert result.requirements[2].location == Location(str(path), 10)


def test_pyproject_unknown_extra_lists_available(tmp_path: Path) -> None:
    path = pyproject(tmp_path)
    with pytest.raises(InputError) as info:
        read_pyproject(path, extras=["gpu"])
    message = str(info.value)
    assert "'gpu'" in message
    assert "available: docs, fast-io" in message
    assert str(path) in message


def test_pyproject_unknown_extra_when_none_defined(tmp_path: Path) -> None:
    path = pyproject(tmp_path, '[project]\nname = "x"\ndependencies = []\n')
    with pytest.raises(InputError, match=r"available: none"):
        read_pyproject(path, extras=["gpu"])


def test_pyproject_dependency_groups_with_include_group(tmp_path: Path) -> None:
    path = pyproject(tmp_path)
    result = read_pyproject(path, groups=["type-check"])
    assert [line.name for line in result.requirements] == [
        "httpx",
        "pydantic",
        "mypy",
        "pytest",
        "ruff",
    ]
    assert result.requirements[-1].location == Location(str(path), 15)


def test_pyproject_group_without_project_table(tmp_path: Path) -> None:
    path = pyproject(tmp_path, '[dependency-groups]\ndev = ["black"]\n')
    result = read_pyproject(path, groups=["dev"])
    assert specs(result) == ["black"]


def test_pyproject_group_include_cycle(tmp_path: Path) -> None:
    path = pyproject(
        tmp_path,
        """\
        [dependency-groups]
        a = ["x", {include-group = "b"}]
        b = [{include-group = "C"}]
        c = [{include-group = "a"}]
        """,
    )
    with pytest.raises(InputError) as info:
        read_pyproject(path, groups=["a"])
    message = str(info.value)
    assert "include cycle: a -> b -> c -> a" in message
    assert str(path) in message


def test_pyproject_unknown_group_lists_available(tmp_path: Path) -> None:
    path = pyproject(tmp_path)
    with pytest.raises(InputError) as info:
        read_pyproject(path, groups=["bench"])
    message = str(info.value)
    assert "'bench'" in message
    assert "available: lint, test, type-check" in message


def test_pyproject_unknown_included_group(tmp_path: Path) -> None:
    path = pyproject(tmp_path, '[dependency-groups]\ndev = [{include-group = "missing"}]\n')
    with pytest.raises(InputError, match=r"no dependency group 'missing' \(available: dev\)"):
        read_pyproject(path, groups=["dev"])


def test_pyproject_unsupported_group_entry(tmp_path: Path) -> None:
    path = pyproject(tmp_path, "[dependency-groups]\ndev = [3]\n")
    with pytest.raises(InputError, match=r"unsupported entry 3"):
        read_pyproject(path, groups=["dev"])


def test_pyproject_invalid_requirement_names_line(tmp_path: Path) -> None:
    path = pyproject(
        tmp_path,
        """\
        [project]
        name = "x"
        dependencies = [
            "good",
            "bad >=",
        ]
        """,
    )
    with pytest.raises(InputError) as info:
        read_pyproject(path)
    assert str(info.value).startswith(f"{path}:5: invalid requirement 'bad >='")


def test_pyproject_dependencies_must_be_list_of_strings(tmp_path: Path) -> None:
    path = pyproject(tmp_path, '[project]\ndependencies = "requests"\n')
    with pytest.raises(InputError, match=r"\[project\]\.dependencies must be a list of strings"):
        read_pyproject(path)


def test_pyproject_vcs_dependency_rejected(tmp_path: Path) -> None:
    path = pyproject(tmp_path, '[project]\ndependencies = ["x @ git+https://github.com/a/x.git"]\n')
    with pytest.raises(InputError) as info:
        read_pyproject(path)
    assert "VCS requirement" in str(info.value)
    assert f"{path}:2" in str(info.value)


def test_pyproject_invalid_toml_names_file(tmp_path: Path) -> None:
    path = pyproject(tmp_path, "[project\nname = 1\n")
    with pytest.raises(InputError) as info:
        read_pyproject(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML")
    assert "line 1" in message


def test_pyproject_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not found"):
        read_pyproject(tmp_path / "pyproject.toml")


def test_pyproject_optional_dependencies_must_be_a_table(tmp_path: Path) -> None:
    path = pyproject(tmp_path, '[project]\noptional-dependencies = ["x"]\n')
    with pytest.raises(InputError, match=r"optional-dependencies"):
        read_pyproject(path, extras=["x"])


# --- read_inputs ---------------------------------------------------------------------------------


def test_read_inputs_mixes_files(tmp_path: Path) -> None:
    req = write(
        tmp_path / "requirements.txt",
        """\
        --index-url https://mirror.example.org/simple
        --extra-index-url https://extra.example.org/simple
        -c constraints.txt
        requests
        """,
    )
    write(tmp_path / "constraints.txt", "urllib3<3\n")
    proj = pyproject(tmp_path)
    dev = write(
        tmp_path / "dev.txt",
        "--pre\n--extra-index-url https://extra.example.org/simple\nblack\n",
    )
    result = read_inputs([req, proj, dev], extras=["docs"], groups=["lint"])
    assert [line.name for line in result.requirements] == [
        "requests",
        "httpx",
        "pydantic",
        "sphinx",
        "ruff",
        "black",
    ]
    assert [c.name for c in result.constraints] == ["urllib3"]
    assert result.index_url == "https://mirror.example.org/simple"
    assert result.extra_index_urls == ("https://extra.example.org/simple",)
    assert result.pre is True
    assert result.files == (req, tmp_path / "constraints.txt", proj, dev)


def test_read_inputs_empty() -> None:
    assert read_inputs([]) == RequirementSet()


def test_read_inputs_conflicting_index_urls(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "-i https://a.example/simple\n")
    b = write(tmp_path / "b.txt", "-i https://b.example/simple\n")
    with pytest.raises(InputError) as info:
        read_inputs([a, b])
    message = str(info.value)
    assert "conflicting --index-url" in message
    assert "https://a.example/simple" in message
    assert "https://b.example/simple" in message


def test_read_inputs_index_from_later_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "x\n")
    b = write(tmp_path / "b.txt", "-i https://b.example/simple\ny\n")
    result = read_inputs([a, b])
    assert result.index_url == "https://b.example/simple"
    assert specs(result) == ["x", "y"]


def test_requirement_set_merged_keeps_order_and_deduplicates(tmp_path: Path) -> None:
    loc = Location.of(tmp_path / "x.txt", 1)
    one = RequirementSet(
        requirements=(RequirementLine(Requirement("a"), loc),),
        extra_index_urls=("https://e1", "https://e2"),
        files=(tmp_path / "x.txt",),
    )
    two = RequirementSet(
        requirements=(RequirementLine(Requirement("b"), loc),),
        extra_index_urls=("https://e2", "https://e3"),
        files=(tmp_path / "x.txt", tmp_path / "y.txt"),
        pre=True,
    )
    merged = one.merged(two)
    assert specs(merged) == ["a", "b"]
    assert merged.extra_index_urls == ("https://e1", "https://e2", "https://e3")
    assert merged.files == (tmp_path / "x.txt", tmp_path / "y.txt")
    assert merged.pre is True


# --- cost ----------------------------------------------------------------------------------------


def test_a_line_of_millions_of_spaces_parses_in_linear_time(tmp_path: Path) -> None:
    """The parse runs in a child, so a regression fails on the timeout instead of hanging."""
    path = tmp_path / "req.txt"
    path.write_text("app" + " " * 3_000_000 + "\n" + " " * 3_000_000 + "x\n" + "# " * 1_000_000)
    code = (
        "import sys, time; from pathlib import Path;"
        " from machci.inputs.requirements import read_requirements_file as read;"
        " start = time.perf_counter(); result = read(Path(sys.argv[1]));"
        " print(time.perf_counter() - start, *(str(r.requirement) for r in result.requirements))"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=Path(__file__).resolve().parents[1],  # this checkout's machci, whatever is installed
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seconds, *names = child.stdout.split()
    assert names == ["app", "x"]
    assert float(seconds) < 1.0


@given(st.text(alphabet=" \t#a\\", max_size=30))
def test_comments_are_stripped_as_pip_strips_them(line: str) -> None:
    """The scan is what pip's regular expression `(^|\\s+)#.*$` does, without its backtracking."""
    from machci.inputs.requirements import _strip_comment

    assert _strip_comment(line) == re.sub(r"(^|\s+)#.*$", "", line)
